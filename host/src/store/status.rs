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
