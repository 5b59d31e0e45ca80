//! `configs` rows (spec 02 §2.1) and the node counters of the config list (§9.2).

use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};

/// One stored config, columns as in the table.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ConfigRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub virtual_subnet: String,
    pub default_listen_port: i64,
    pub default_mtu: Option<i64>,
    pub default_dns: Option<String>,
    pub auto_sync: bool,
    pub tunnel_protocol: String,
    pub awg_version: Option<String>,
    pub awg_options_json: String,
    pub awg_s1: Option<i64>,
    pub awg_s2: Option<i64>,
    pub awg_s3: Option<i64>,
    pub awg_s4: Option<i64>,
    pub awg_h1: Option<String>,
    pub awg_h2: Option<String>,
    pub awg_h3: Option<String>,
    pub awg_h4: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const COLS: &str = "id, name, description, enabled, virtual_subnet, default_listen_port, default_mtu, default_dns, \
    auto_sync, tunnel_protocol, awg_version, awg_options_json, awg_s1, awg_s2, awg_s3, awg_s4, awg_h1, awg_h2, awg_h3, \
    awg_h4, created_at, updated_at";

/// Reads one config.
pub async fn get(db: &Db, id: &str) -> StoreResult<Option<ConfigRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, ConfigRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM configs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// Reads one config inside a write.
pub async fn get_tx(tx: &mut Tx, id: &str) -> StoreResult<Option<ConfigRow>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, ConfigRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM configs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// Every config, newest first.
pub async fn list(db: &Db) -> StoreResult<Vec<ConfigRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, ConfigRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM configs ORDER BY created_at DESC, id DESC"
    )))
    .fetch_all(c)
    .await)?)
}

/// Whether another config already uses `name`.
pub async fn name_taken(tx: &mut Tx, name: &str, except_id: Option<&str>) -> StoreResult<bool> {
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar("SELECT COUNT(*) FROM configs WHERE name = $1 AND id <> $2")
        .bind(name)
        .bind(except_id.unwrap_or(""))
        .fetch_one(c)
        .await)?;
    Ok(n > 0)
}

/// Inserts a config.
pub async fn insert(tx: &mut Tx, r: &ConfigRow) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO configs ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         $17, $18, $19, $20, $21, $22)"
    )))
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.enabled)
    .bind(&r.virtual_subnet)
    .bind(r.default_listen_port)
    .bind(r.default_mtu)
    .bind(&r.default_dns)
    .bind(r.auto_sync)
    .bind(&r.tunnel_protocol)
    .bind(&r.awg_version)
    .bind(&r.awg_options_json)
    .bind(r.awg_s1)
    .bind(r.awg_s2)
    .bind(r.awg_s3)
    .bind(r.awg_s4)
    .bind(&r.awg_h1)
    .bind(&r.awg_h2)
    .bind(&r.awg_h3)
    .bind(&r.awg_h4)
    .bind(&r.created_at)
    .bind(&r.updated_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Rewrites every mutable column of a config.
pub async fn update(tx: &mut Tx, r: &ConfigRow) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE configs SET name = $2, description = $3, enabled = $4, virtual_subnet = $5, default_listen_port = $6, \
         default_mtu = $7, default_dns = $8, auto_sync = $9, tunnel_protocol = $10, awg_version = $11, \
         awg_options_json = $12, awg_s1 = $13, awg_s2 = $14, awg_s3 = $15, awg_s4 = $16, awg_h1 = $17, awg_h2 = $18, \
         awg_h3 = $19, awg_h4 = $20, updated_at = $21 WHERE id = $1"
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.enabled)
    .bind(&r.virtual_subnet)
    .bind(r.default_listen_port)
    .bind(r.default_mtu)
    .bind(&r.default_dns)
    .bind(r.auto_sync)
    .bind(&r.tunnel_protocol)
    .bind(&r.awg_version)
    .bind(&r.awg_options_json)
    .bind(r.awg_s1)
    .bind(r.awg_s2)
    .bind(r.awg_s3)
    .bind(r.awg_s4)
    .bind(&r.awg_h1)
    .bind(&r.awg_h2)
    .bind(&r.awg_h3)
    .bind(&r.awg_h4)
    .bind(&r.updated_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Bumps `updated_at` (a node write changes what the config contains).
pub async fn touch(tx: &mut Tx, id: &str, now: &str) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE configs SET updated_at = $2 WHERE id = $1").bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a config; every dependent row goes with it through `ON DELETE CASCADE`. Returns
/// whether a row was deleted.
pub async fn delete(tx: &mut Tx, id: &str) -> StoreResult<bool> {
    let r = on_tx!(tx, |c| sqlx::query("DELETE FROM configs WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(r > 0)
}

/// Node counters of one config (§9.2), computed in SQL so the list costs one query.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeCounters {
    pub config_id: String,
    /// All nodes.
    pub node_count: i64,
    /// Enabled dynamic nodes.
    pub dynamic_node_count: i64,
    /// Disabled nodes.
    pub disabled_node_count: i64,
    /// Enabled dynamic nodes whose runtime is online.
    pub online_node_count: i64,
}

const COUNTERS: &str = "SELECT n.config_id AS config_id, COUNT(*) AS node_count, \
    COALESCE(SUM(CASE WHEN n.enabled = $1 AND n.node_type = 'dynamic' THEN 1 ELSE 0 END), 0) AS dynamic_node_count, \
    COALESCE(SUM(CASE WHEN n.enabled = $2 THEN 1 ELSE 0 END), 0) AS disabled_node_count, \
    COALESCE(SUM(CASE WHEN n.enabled = $1 AND n.node_type = 'dynamic' AND r.online = $1 THEN 1 ELSE 0 END), 0) \
    AS online_node_count \
    FROM nodes n LEFT JOIN endpoint_runtime_status r ON r.node_id = n.id";

/// Counters of every config that has nodes.
pub async fn counters_all(db: &Db) -> StoreResult<Vec<NodeCounters>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, NodeCounters>(sqlx::AssertSqlSafe(format!(
        "{COUNTERS} GROUP BY n.config_id"
    )))
    .bind(true)
    .bind(false)
    .fetch_all(c)
    .await)?)
}

/// Counters of one config (zeros when it has no nodes).
pub async fn counters(db: &Db, config_id: &str) -> StoreResult<NodeCounters> {
    let row = on_pool!(db, |c| sqlx::query_as::<_, NodeCounters>(sqlx::AssertSqlSafe(format!(
        "{COUNTERS} WHERE n.config_id = $3 GROUP BY n.config_id"
    )))
    .bind(true)
    .bind(false)
    .bind(config_id)
    .fetch_optional(c)
    .await)?;
    Ok(row.unwrap_or_else(|| NodeCounters { config_id: config_id.to_string(), ..Default::default() }))
}

/// Ids of the configs that have at least one link row: one index probe per config (the config
/// list and the system status only need to know whether a config has links, not how many, and
/// counting them cost a step per link of every config).
pub async fn ids_with_links(db: &Db) -> StoreResult<Vec<String>> {
    Ok(on_pool!(db, |c| sqlx::query_scalar::<_, String>(
        "SELECT c.id FROM configs c WHERE EXISTS (SELECT 1 FROM peer_pairs l WHERE l.config_id = c.id)"
    )
    .fetch_all(c)
    .await)?)
}
