//! Counters for the system status summary (spec 04 §5).

use serde::de::SeqAccess;

use super::packed::{Packed, col, opt_flag, unpack};
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
           AND NOT (COALESCE(s.desired_sha256, '') <> '' AND COALESCE(s.staged_sha256, '') = COALESCE(s.desired_sha256, '')) \
         ORDER BY c.created_at DESC, n.created_at ASC"
    )
    .fetch_all(c)
    .await)?)
}

/// What the overview shows of one node besides the node row: its runtime, client and sync
/// rows, joined in the database (one row per node; `None`/empty where a row is missing).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct OverviewRow {
    pub node_id: String,
    /// Set when the node has a runtime row.
    pub rt_node_id: Option<String>,
    pub online: Option<bool>,
    pub connectivity_state: Option<String>,
    pub wg_running: Option<bool>,
    pub wg_runtime_state: Option<String>,
    pub config_sync_state: Option<String>,
    pub peers_online: Option<i64>,
    pub peers_total: Option<i64>,
    pub last_seen: Option<String>,
    pub last_probe_sent_at: Option<String>,
    pub last_probe_ack_at: Option<String>,
    /// Set when the node has a client-state row.
    pub cl_node_id: Option<String>,
    pub client_initialized: Option<bool>,
    pub client_presence_state: Option<String>,
    pub desired_sha256: String,
    pub desired_version: i64,
    pub staged_sha256: String,
    pub staged_version: i64,
    pub confirmed_sha256: String,
    pub confirmed_version: i64,
    pub reported_local_sha256: String,
    pub reported_local_version: i64,
}

impl Packed for OverviewRow {
    /// Columns in [`OVERVIEW_COLUMNS`] order.
    fn read<'de, A: SeqAccess<'de>>(s: &mut A) -> Result<OverviewRow, A::Error> {
        Ok(OverviewRow {
            node_id: col(s)?,
            rt_node_id: col(s)?,
            online: opt_flag(s)?,
            connectivity_state: col(s)?,
            wg_running: opt_flag(s)?,
            wg_runtime_state: col(s)?,
            config_sync_state: col(s)?,
            peers_online: col(s)?,
            peers_total: col(s)?,
            last_seen: col(s)?,
            last_probe_sent_at: col(s)?,
            last_probe_ack_at: col(s)?,
            cl_node_id: col(s)?,
            client_initialized: opt_flag(s)?,
            client_presence_state: col(s)?,
            desired_sha256: col(s)?,
            desired_version: col(s)?,
            staged_sha256: col(s)?,
            staged_version: col(s)?,
            confirmed_sha256: col(s)?,
            confirmed_version: col(s)?,
            reported_local_sha256: col(s)?,
            reported_local_version: col(s)?,
        })
    }
}

/// `(expression, name)` of each overview column, in [`OverviewRow`] field order (the packed
/// SQLite read decodes by position, the PostgreSQL read by name).
const OVERVIEW_COLUMNS: [(&str, &str); 23] = [
    ("n.id", "node_id"),
    ("r.node_id", "rt_node_id"),
    ("r.online", "online"),
    ("r.connectivity_state", "connectivity_state"),
    ("r.wg_running", "wg_running"),
    ("r.wg_runtime_state", "wg_runtime_state"),
    ("r.config_sync_state", "config_sync_state"),
    ("r.peers_online", "peers_online"),
    ("r.peers_total", "peers_total"),
    ("r.last_seen", "last_seen"),
    ("r.last_probe_sent_at", "last_probe_sent_at"),
    ("r.last_probe_ack_at", "last_probe_ack_at"),
    ("cl.node_id", "cl_node_id"),
    ("cl.client_initialized", "client_initialized"),
    ("cl.client_presence_state", "client_presence_state"),
    ("COALESCE(s.desired_sha256, '')", "desired_sha256"),
    ("COALESCE(s.desired_version, 0)", "desired_version"),
    ("COALESCE(s.staged_sha256, '')", "staged_sha256"),
    ("COALESCE(s.staged_version, 0)", "staged_version"),
    ("COALESCE(s.confirmed_sha256, '')", "confirmed_sha256"),
    ("COALESCE(s.confirmed_version, 0)", "confirmed_version"),
    ("COALESCE(s.reported_local_sha256, '')", "reported_local_sha256"),
    ("COALESCE(s.reported_local_version, 0)", "reported_local_version"),
];

const OVERVIEW_FROM: &str = "FROM nodes n \
    LEFT JOIN endpoint_runtime_status r ON r.node_id = n.id \
    LEFT JOIN node_client_state cl ON cl.node_id = n.id \
    LEFT JOIN node_config_state s ON s.node_id = n.id \
    WHERE n.config_id = $1";

/// [`OverviewRow`]s of a config's nodes: one query instead of the runtime, client-state and
/// sync-slot lists, and only the columns the overview shows. On SQLite the rows are packed into
/// one value (see [`super::packed`]) so a large config costs no driver round per row; the
/// PostgreSQL driver decodes rows in the task and reads them as they are (packing them through
/// `json_build_array` measured slower there).
pub async fn overview_rows(db: &Db, config_id: &str) -> StoreResult<Vec<OverviewRow>> {
    match db {
        Db::Sqlite { read, .. } => {
            let exprs: Vec<&str> = OVERVIEW_COLUMNS.iter().map(|(e, _)| *e).collect();
            let sql = format!("SELECT json_group_array(json_array({})) {OVERVIEW_FROM}", exprs.join(", "));
            unpack(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(config_id).fetch_one(read).await?)
        }
        Db::Pg(p) => {
            let cols: Vec<String> = OVERVIEW_COLUMNS.iter().map(|(e, n)| format!("{e} AS {n}")).collect();
            let sql = format!("SELECT {} {OVERVIEW_FROM}", cols.join(", "));
            Ok(sqlx::query_as::<_, OverviewRow>(sqlx::AssertSqlSafe(sql)).bind(config_id).fetch_all(p).await?)
        }
    }
}
