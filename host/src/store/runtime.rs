//! `endpoint_runtime_status`: what the server knows about a node's agent and interface.

use serde::Serialize;

use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};

/// One runtime row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Runtime {
    pub node_id: String,
    pub config_id: String,
    pub online: bool,
    pub connectivity_state: String,
    pub wg_running: bool,
    pub wg_runtime_state: String,
    pub config_sync_state: String,
    pub peers_online: i64,
    pub peers_total: i64,
    pub last_seen: Option<String>,
    pub last_probe_sent_at: Option<String>,
    pub last_probe_ack_at: Option<String>,
    pub last_control_channel_seen_at: Option<String>,
    pub heartbeat_client_online: bool,
    pub heartbeat_wg_online: bool,
    pub detect_client_online: bool,
    pub detect_wg_online: bool,
    pub last_config_sync_error: String,
    pub last_connectivity_reason: String,
    pub client_downloaded: bool,
    pub client_downloaded_at: Option<String>,
}

const COLS: &str = "node_id, config_id, online, connectivity_state, wg_running, wg_runtime_state, config_sync_state, \
    peers_online, peers_total, last_seen, last_probe_sent_at, last_probe_ack_at, last_control_channel_seen_at, \
    heartbeat_client_online, heartbeat_wg_online, detect_client_online, detect_wg_online, last_config_sync_error, \
    last_connectivity_reason, client_downloaded, client_downloaded_at";

/// Reads one row.
pub async fn get(db: &Db, node_id: &str) -> StoreResult<Option<Runtime>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, Runtime>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM endpoint_runtime_status WHERE node_id = $1"
    )))
    .bind(node_id)
    .fetch_optional(c)
    .await)?)
}

/// Rows of a config.
pub async fn list_for_config(db: &Db, config_id: &str) -> StoreResult<Vec<Runtime>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, Runtime>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM endpoint_runtime_status WHERE config_id = $1"
    )))
    .bind(config_id)
    .fetch_all(c)
    .await)?)
}

/// Creates the row if missing.
pub async fn ensure(tx: &mut Tx, node_id: &str, config_id: &str) -> StoreResult<()> {
    let id = crate::util::new_id("ert");
    let now = crate::util::now_iso();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO endpoint_runtime_status (id, config_id, node_id, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (node_id) DO NOTHING"
    )
    .bind(&id)
    .bind(config_id)
    .bind(node_id)
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// A runtime change; `None` fields are left alone, `Some(None)` timestamps are cleared.
#[derive(Debug, Default, Clone)]
pub struct RuntimeWrite {
    pub online: Option<bool>,
    pub connectivity_state: Option<&'static str>,
    pub wg_running: Option<bool>,
    pub wg_runtime_state: Option<&'static str>,
    pub config_sync_state: Option<&'static str>,
    pub last_seen: Option<Option<String>>,
    pub last_probe_sent_at: Option<Option<String>>,
    pub last_probe_ack_at: Option<Option<String>>,
    pub last_control_channel_seen_at: Option<Option<String>>,
    pub heartbeat_client_online: Option<bool>,
    pub heartbeat_wg_online: Option<bool>,
    pub detect_client_online: Option<bool>,
    pub detect_wg_online: Option<bool>,
    pub last_config_sync_error: Option<String>,
    pub reason: Option<String>,
    pub client_downloaded: Option<bool>,
}

/// Applies a change (creating the row first if needed).
pub async fn apply(tx: &mut Tx, node_id: &str, config_id: &str, w: &RuntimeWrite) -> StoreResult<()> {
    ensure(tx, node_id, config_id).await?;
    let now = crate::util::now_iso();
    // Two flags per clearable timestamp: "touch" and the value (NULL clears).
    let ts = |v: &Option<Option<String>>| (v.is_some(), v.clone().flatten());
    let (s_seen, v_seen) = ts(&w.last_seen);
    let (s_sent, v_sent) = ts(&w.last_probe_sent_at);
    let (s_ack, v_ack) = ts(&w.last_probe_ack_at);
    let (s_ctl, v_ctl) = ts(&w.last_control_channel_seen_at);
    on_tx!(tx, |c| sqlx::query(
        "UPDATE endpoint_runtime_status SET \
         online = COALESCE($2, online), connectivity_state = COALESCE($3, connectivity_state), \
         wg_running = COALESCE($4, wg_running), wg_runtime_state = COALESCE($5, wg_runtime_state), \
         config_sync_state = COALESCE($6, config_sync_state), \
         last_seen = CASE WHEN $7 THEN $8 ELSE last_seen END, \
         last_probe_sent_at = CASE WHEN $9 THEN $10 ELSE last_probe_sent_at END, \
         last_probe_ack_at = CASE WHEN $11 THEN $12 ELSE last_probe_ack_at END, \
         last_control_channel_seen_at = CASE WHEN $13 THEN $14 ELSE last_control_channel_seen_at END, \
         heartbeat_client_online = COALESCE($15, heartbeat_client_online), \
         heartbeat_wg_online = COALESCE($16, heartbeat_wg_online), \
         detect_client_online = COALESCE($17, detect_client_online), detect_wg_online = COALESCE($18, detect_wg_online), \
         last_config_sync_error = COALESCE($19, last_config_sync_error), \
         last_connectivity_reason = COALESCE($20, last_connectivity_reason), \
         client_downloaded = COALESCE($21, client_downloaded), updated_at = $22 WHERE node_id = $1"
    )
    .bind(node_id)
    .bind(w.online)
    .bind(w.connectivity_state)
    .bind(w.wg_running)
    .bind(w.wg_runtime_state)
    .bind(w.config_sync_state)
    .bind(s_seen)
    .bind(v_seen)
    .bind(s_sent)
    .bind(v_sent)
    .bind(s_ack)
    .bind(v_ack)
    .bind(s_ctl)
    .bind(v_ctl)
    .bind(w.heartbeat_client_online)
    .bind(w.heartbeat_wg_online)
    .bind(w.detect_client_online)
    .bind(w.detect_wg_online)
    .bind(w.last_config_sync_error.as_deref())
    .bind(w.reason.as_deref())
    .bind(w.client_downloaded)
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The reset applied by reset-client / type changes (spec 03 §2.4).
pub fn reset_write(reason: &str) -> RuntimeWrite {
    RuntimeWrite {
        online: Some(false),
        connectivity_state: Some("offline"),
        wg_running: Some(false),
        wg_runtime_state: Some("unknown"),
        last_seen: Some(None),
        last_probe_sent_at: Some(None),
        last_probe_ack_at: Some(None),
        last_control_channel_seen_at: Some(None),
        heartbeat_client_online: Some(false),
        heartbeat_wg_online: Some(false),
        detect_client_online: Some(false),
        detect_wg_online: Some(false),
        reason: Some(reason.to_string()),
        client_downloaded: Some(false),
        ..Default::default()
    }
}

/// Every runtime row offline (snapshot restore).
pub async fn all_offline(tx: &mut Tx, reason: &str) -> StoreResult<()> {
    let now = crate::util::now_iso();
    on_tx!(tx, |c| sqlx::query(
        "UPDATE endpoint_runtime_status SET online = $1, connectivity_state = 'offline', wg_running = $1, \
         wg_runtime_state = 'unknown', last_connectivity_reason = $2, updated_at = $3"
    )
    .bind(false)
    .bind(reason)
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}
