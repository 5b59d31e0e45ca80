//! `endpoint_control_logs`: one row per command or client event; newest 20 per node kept.

use serde::Serialize;

use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};

/// Rows kept per node.
pub const KEEP_PER_NODE: i64 = 20;

/// One log row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ControlLog {
    pub id: String,
    pub request_id: String,
    pub config_id: String,
    pub node_id: String,
    pub action: String,
    pub status: String,
    pub requested_by: String,
    pub summary: String,
    pub detail: String,
    pub config_sha256: String,
    pub config_version: i64,
    pub requested_at: String,
    pub ack_at: Option<String>,
    /// Same as `requested_at` (the table has no separate column).
    #[sqlx(skip)]
    pub created_at: String,
    /// Last change (`ack_at` or `requested_at`).
    #[sqlx(skip)]
    pub updated_at: String,
}

impl ControlLog {
    fn fill(mut self) -> Self {
        self.created_at = self.requested_at.clone();
        self.updated_at = self.ack_at.clone().unwrap_or_else(|| self.requested_at.clone());
        self
    }
}

const COLS: &str = "id, request_id, config_id, node_id, action, status, requested_by, summary, detail, config_sha256, \
    config_version, requested_at, ack_at";

/// A new row.
pub struct NewLog<'a> {
    pub request_id: &'a str,
    pub config_id: &'a str,
    pub node_id: &'a str,
    pub action: &'a str,
    pub status: &'a str,
    pub requested_by: &'a str,
    pub summary: &'a str,
    pub detail: &'a str,
    pub config_sha256: &'a str,
    pub config_version: i64,
    pub ack_at: Option<&'a str>,
}

/// Inserts a row and trims the node's history to the newest [`KEEP_PER_NODE`].
pub async fn insert(tx: &mut Tx, n: &NewLog<'_>) -> StoreResult<ControlLog> {
    let id = crate::util::new_id("elog");
    let now = crate::util::now_iso();
    let row = on_tx!(tx, |c| sqlx::query_as::<_, ControlLog>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO endpoint_control_logs (id, request_id, config_id, node_id, action, status, requested_by, summary, \
         detail, config_sha256, config_version, requested_at, ack_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) \
         RETURNING {COLS}"
    )))
    .bind(&id)
    .bind(n.request_id)
    .bind(n.config_id)
    .bind(n.node_id)
    .bind(n.action)
    .bind(n.status)
    .bind(n.requested_by)
    .bind(n.summary)
    .bind(n.detail)
    .bind(n.config_sha256)
    .bind(n.config_version)
    .bind(&now)
    .bind(n.ack_at)
    .fetch_one(c)
    .await)?;
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM endpoint_control_logs WHERE node_id = $1 AND id NOT IN \
         (SELECT id FROM endpoint_control_logs WHERE node_id = $1 ORDER BY requested_at DESC, id DESC LIMIT $2)"
    )
    .bind(n.node_id)
    .bind(KEEP_PER_NODE)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(row.fill())
}

/// Reads by request id.
pub async fn get_by_request(tx: &mut Tx, request_id: &str) -> StoreResult<Option<ControlLog>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, ControlLog>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM endpoint_control_logs WHERE request_id = $1"
    )))
    .bind(request_id)
    .fetch_optional(c)
    .await)?
    .map(ControlLog::fill))
}

/// Completes a row (ACK, failure, timeout); `only_pending` leaves finished rows alone.
pub async fn complete(
    tx: &mut Tx,
    request_id: &str,
    status: &str,
    summary: &str,
    detail: Option<&str>,
    ack_at: Option<&str>,
    only_pending: bool,
) -> StoreResult<Option<ControlLog>> {
    let sql = format!(
        "UPDATE endpoint_control_logs SET status = $2, summary = $3, detail = COALESCE($4, detail), ack_at = $5 \
         WHERE request_id = $1{} RETURNING {COLS}",
        if only_pending { " AND status = 'pending'" } else { "" }
    );
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, ControlLog>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(request_id)
        .bind(status)
        .bind(summary)
        .bind(detail)
        .bind(ack_at)
        .fetch_optional(c)
        .await)?
    .map(ControlLog::fill))
}

/// Newest rows of a node.
pub async fn list_for_node(db: &Db, node_id: &str, limit: i64) -> StoreResult<Vec<ControlLog>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, ControlLog>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM endpoint_control_logs WHERE node_id = $1 ORDER BY requested_at DESC, id DESC LIMIT $2"
    )))
    .bind(node_id)
    .bind(limit)
    .fetch_all(c)
    .await)?
    .into_iter()
    .map(ControlLog::fill)
    .collect())
}

/// Pending rows requested before `before` (ISO), oldest first.
pub async fn pending_before(db: &Db, before: &str) -> StoreResult<Vec<ControlLog>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, ControlLog>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM endpoint_control_logs WHERE status = 'pending' AND requested_at < $1 ORDER BY requested_at LIMIT 500"
    )))
    .bind(before)
    .fetch_all(c)
    .await)?
    .into_iter()
    .map(ControlLog::fill)
    .collect())
}
