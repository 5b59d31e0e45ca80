//! Counters for the system status summary (spec 04 §5).

use super::{Db, StoreResult};
use crate::on_pool;

/// Summary counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// All configs.
    pub configs: i64,
    /// All nodes.
    pub nodes: i64,
    /// Enabled dynamic nodes (all configs).
    pub dynamic_nodes: i64,
    /// Enabled dynamic nodes of enabled configs whose runtime is online.
    pub online_nodes: i64,
}

/// Reads the counters in one round trip.
pub async fn summary(db: &Db) -> StoreResult<Summary> {
    let row: (i64, i64, i64, i64) = on_pool!(db, |c| sqlx::query_as(
        "SELECT \
           (SELECT COUNT(*) FROM configs), \
           (SELECT COUNT(*) FROM nodes), \
           (SELECT COUNT(*) FROM nodes n WHERE n.enabled = TRUE AND n.node_type = 'dynamic'), \
           (SELECT COUNT(*) FROM nodes n JOIN configs c ON c.id = n.config_id \
              JOIN endpoint_runtime_status r ON r.node_id = n.id \
              WHERE n.enabled = TRUE AND c.enabled = TRUE AND n.node_type = 'dynamic' AND r.online = TRUE)"
    )
    .fetch_one(c)
    .await)?;
    Ok(Summary { configs: row.0, nodes: row.1, dynamic_nodes: row.2, online_nodes: row.3 })
}

/// One enabled, auto-sync node of an enabled config with its sync slots (for `sync.issues`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SyncCandidate {
    /// Config id.
    pub config_id: String,
    /// Config name.
    pub config_name: String,
    /// Node id.
    pub node_id: String,
    /// Node name.
    pub node_name: String,
    /// `dynamic` / `static`.
    pub node_type: String,
    /// Desired hash (`""` = nothing generated).
    pub desired_sha256: String,
    /// Staged hash.
    pub staged_sha256: String,
}

/// Every node that can be a sync issue, in one query (config order, then node order).
pub async fn sync_candidates(db: &Db) -> StoreResult<Vec<SyncCandidate>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, SyncCandidate>(
        "SELECT c.id AS config_id, c.name AS config_name, n.id AS node_id, n.name AS node_name, n.node_type, \
           COALESCE(s.desired_sha256, '') AS desired_sha256, COALESCE(s.staged_sha256, '') AS staged_sha256 \
         FROM nodes n JOIN configs c ON c.id = n.config_id \
         LEFT JOIN node_config_state s ON s.node_id = n.id \
         WHERE c.enabled = TRUE AND n.enabled = TRUE AND n.auto_sync = TRUE \
         ORDER BY c.created_at DESC, n.created_at ASC"
    )
    .fetch_all(c)
    .await)?)
}
