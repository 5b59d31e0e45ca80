//! `node_config_state`: desired / staged / confirmed config slots of a node (spec 03 §8.1).
//! The mesh side writes desired and staged; the MQTT side reads staged and writes confirmed.

use serde::Serialize;

use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};

/// The slots of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ConfigState {
    pub node_id: String,
    pub config_id: String,
    pub desired_text: String,
    pub desired_sha256: String,
    pub desired_version: i64,
    pub staged_text: String,
    pub staged_sha256: String,
    pub staged_version: i64,
    pub confirmed_text: String,
    pub confirmed_sha256: String,
    pub confirmed_version: i64,
    pub reported_local_sha256: String,
    pub reported_local_version: i64,
}

const COLS: &str = "node_id, config_id, desired_text, desired_sha256, desired_version, staged_text, staged_sha256, \
    staged_version, confirmed_text, confirmed_sha256, confirmed_version, reported_local_sha256, reported_local_version";

/// Reads a node's slots.
pub async fn get(db: &Db, node_id: &str) -> StoreResult<Option<ConfigState>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, ConfigState>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM node_config_state WHERE node_id = $1"
    )))
    .bind(node_id)
    .fetch_optional(c)
    .await)?)
}

/// Reads a node's slots in a transaction.
pub async fn get_tx(tx: &mut Tx, node_id: &str) -> StoreResult<Option<ConfigState>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, ConfigState>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM node_config_state WHERE node_id = $1"
    )))
    .bind(node_id)
    .fetch_optional(c)
    .await)?)
}

/// Records an applied push: `confirmed` := the pushed version. The text is copied from
/// staged only when staged still holds that exact hash (otherwise staged moved on and the
/// confirmed text is unknown to the server; hash and version are what drift checks use).
pub async fn confirm(tx: &mut Tx, node_id: &str, sha256: &str, version: i64) -> StoreResult<()> {
    let now = crate::util::now_iso();
    on_tx!(tx, |c| sqlx::query(
        "UPDATE node_config_state SET \
         confirmed_text = CASE WHEN staged_sha256 = $2 THEN staged_text ELSE '' END, \
         confirmed_sha256 = $2, confirmed_version = $3, reported_local_sha256 = $2, reported_local_version = $3, \
         confirmed_updated_at = $4 WHERE node_id = $1"
    )
    .bind(node_id)
    .bind(sha256)
    .bind(version)
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Stages `text`: `staged_version = max(staged, desired) + 1` (increments even if unchanged).
pub async fn stage(tx: &mut Tx, node_id: &str, text: &str) -> StoreResult<Option<ConfigState>> {
    let now = crate::util::now_iso();
    let sha = crate::util::sha256_hex(text);
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, ConfigState>(sqlx::AssertSqlSafe(format!(
        "UPDATE node_config_state SET staged_text = $2, staged_sha256 = $3, \
         staged_version = (CASE WHEN staged_version > desired_version THEN staged_version ELSE desired_version END) + 1, \
         staged_updated_at = $4 WHERE node_id = $1 RETURNING {COLS}"
    )))
    .bind(node_id)
    .bind(text)
    .bind(&sha)
    .bind(&now)
    .fetch_optional(c)
    .await)?)
}
