//! `nodes` rows (spec 02 §2.2), the per-node rows made with a node, and the few link/runtime
//! writes that node lifecycle changes imply (disable, type change, endpoint recalculation).

use serde::de::SeqAccess;

use super::packed::{Packed, col, flag, unpack};
use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};

/// One stored node, columns as in the table.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRow {
    pub id: String,
    pub config_id: String,
    pub name: String,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub listen_port: Option<i64>,
    pub virtual_ip: Option<String>,
    pub mtu: Option<i64>,
    pub dns: Option<String>,
    pub auto_sync: bool,
    pub enabled: bool,
    pub node_type: String,
    pub public_key: String,
    pub private_key: String,
    pub tags_json: String,
    pub pre_up_json: String,
    pub post_up_json: String,
    pub pre_down_json: String,
    pub post_down_json: String,
    pub awg_jc: Option<i64>,
    pub awg_jmin: Option<i64>,
    pub awg_jmax: Option<i64>,
    pub awg_i1: Option<String>,
    pub awg_i2: Option<String>,
    pub awg_i3: Option<String>,
    pub awg_i4: Option<String>,
    pub awg_i5: Option<String>,
    pub awg_options_json: String,
    pub created_at: String,
    pub updated_at: String,
}

const COLS: &str = "id, config_id, name, ipv4_address, ipv6_address, listen_port, virtual_ip, mtu, dns, auto_sync, \
    enabled, node_type, public_key, private_key, tags_json, pre_up_json, post_up_json, pre_down_json, post_down_json, \
    awg_jc, awg_jmin, awg_jmax, awg_i1, awg_i2, awg_i3, awg_i4, awg_i5, awg_options_json, created_at, updated_at";

/// Reads one node.
pub async fn get(db: &Db, id: &str) -> StoreResult<Option<NodeRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, NodeRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM nodes WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// Reads one node inside a write.
pub async fn get_tx(tx: &mut Tx, id: &str) -> StoreResult<Option<NodeRow>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, NodeRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM nodes WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// Locks a node row against deletion for the rest of the write (PostgreSQL `FOR KEY SHARE`;
/// SQLite writes are serialised anyway). False when the node is gone. Taking it first orders a
/// write on the node's dependent rows behind a node or config delete instead of deadlocking
/// with its cascade.
pub async fn lock_key_tx(tx: &mut Tx, id: &str) -> StoreResult<bool> {
    let found: Option<String> = match tx {
        Tx::Sqlite(t) => sqlx::query_scalar("SELECT id FROM nodes WHERE id = $1").bind(id).fetch_optional(&mut **t).await?,
        Tx::Pg(t) => sqlx::query_scalar("SELECT id FROM nodes WHERE id = $1 FOR KEY SHARE").bind(id).fetch_optional(&mut **t).await?,
    };
    Ok(found.is_some())
}

impl Packed for NodeRow {
    /// Columns in [`COLS`] order.
    fn read<'de, A: SeqAccess<'de>>(s: &mut A) -> Result<NodeRow, A::Error> {
        Ok(NodeRow {
            id: col(s)?,
            config_id: col(s)?,
            name: col(s)?,
            ipv4_address: col(s)?,
            ipv6_address: col(s)?,
            listen_port: col(s)?,
            virtual_ip: col(s)?,
            mtu: col(s)?,
            dns: col(s)?,
            auto_sync: flag(s)?,
            enabled: flag(s)?,
            node_type: col(s)?,
            public_key: col(s)?,
            private_key: col(s)?,
            tags_json: col(s)?,
            pre_up_json: col(s)?,
            post_up_json: col(s)?,
            pre_down_json: col(s)?,
            post_down_json: col(s)?,
            awg_jc: col(s)?,
            awg_jmin: col(s)?,
            awg_jmax: col(s)?,
            awg_i1: col(s)?,
            awg_i2: col(s)?,
            awg_i3: col(s)?,
            awg_i4: col(s)?,
            awg_i5: col(s)?,
            awg_options_json: col(s)?,
            created_at: col(s)?,
            updated_at: col(s)?,
        })
    }
}

/// SQLite: a config's nodes packed into one value (see [`super::packed`]), in creation order.
fn packed_list_sql() -> String {
    format!("SELECT json_group_array(json_array({COLS}) ORDER BY created_at ASC, id ASC) FROM nodes WHERE config_id = $1")
}

/// PostgreSQL: one row per node (its driver decodes rows in the task; packing them through
/// `json_build_array` measured slower there).
fn rows_list_sql() -> String {
    format!("SELECT {COLS} FROM nodes WHERE config_id = $1 ORDER BY created_at ASC, id ASC")
}

/// Nodes of a config in creation order (on SQLite read as one packed value: the rows of a
/// large config cost their decoding, not a driver round per row).
pub async fn list_for_config(db: &Db, config_id: &str) -> StoreResult<Vec<NodeRow>> {
    match db {
        Db::Sqlite { read, .. } => {
            unpack(sqlx::query_scalar(sqlx::AssertSqlSafe(packed_list_sql())).bind(config_id).fetch_one(read).await?)
        }
        Db::Pg(p) => Ok(sqlx::query_as(sqlx::AssertSqlSafe(rows_list_sql())).bind(config_id).fetch_all(p).await?),
    }
}

/// Nodes of a config in creation order, inside a write.
pub async fn list_for_config_tx(tx: &mut Tx, config_id: &str) -> StoreResult<Vec<NodeRow>> {
    match tx {
        Tx::Sqlite(t) => {
            unpack(sqlx::query_scalar(sqlx::AssertSqlSafe(packed_list_sql())).bind(config_id).fetch_one(&mut **t).await?)
        }
        Tx::Pg(t) => Ok(sqlx::query_as(sqlx::AssertSqlSafe(rows_list_sql())).bind(config_id).fetch_all(&mut **t).await?),
    }
}

const VIPS_SQLITE: &str =
    "SELECT group_concat(virtual_ip, char(10)), COUNT(virtual_ip) FROM nodes WHERE config_id = $1 AND id <> $2";
const VIPS_PG: &str = "SELECT string_agg(virtual_ip, E'\\n'), COUNT(virtual_ip) FROM nodes WHERE config_id = $1 AND id <> $2";
const VIPS_ROWS: &str = "SELECT virtual_ip FROM nodes WHERE config_id = $1 AND id <> $2 AND virtual_ip IS NOT NULL";
const HOLDERS: &str = "SELECT name, virtual_ip FROM nodes WHERE config_id = $1 AND id <> $2 AND virtual_ip IS NOT NULL \
    ORDER BY created_at ASC, id ASC";

/// Splits the joined virtual IPs; `None` when a stored value contained the separator.
fn split_vips(joined: Option<String>, count: i64) -> Option<Vec<String>> {
    let split: Vec<String> = match joined {
        Some(j) => j.split('\n').map(str::to_string).collect(),
        None => Vec::new(),
    };
    (split.len() as i64 == count).then_some(split)
}

/// The stored virtual IPs of a config's nodes (`except` left out), inside a write, without
/// loading the nodes: the database joins them into one row, so each existing node costs a scan
/// step in the database rather than a row decoded by the application. Falls back to one row
/// per node in the (garbage-only) case where a stored value contains the separator.
pub async fn virtual_ips_tx(tx: &mut Tx, config_id: &str, except: Option<&str>) -> StoreResult<Vec<String>> {
    let except = except.unwrap_or("");
    let (joined, count): (Option<String>, i64) = match tx {
        Tx::Sqlite(t) => sqlx::query_as(VIPS_SQLITE).bind(config_id).bind(except).fetch_one(&mut **t).await?,
        Tx::Pg(t) => sqlx::query_as(VIPS_PG).bind(config_id).bind(except).fetch_one(&mut **t).await?,
    };
    if let Some(v) = split_vips(joined, count) {
        return Ok(v);
    }
    Ok(on_tx!(tx, |c| sqlx::query_scalar::<_, String>(VIPS_ROWS).bind(config_id).bind(except).fetch_all(c).await)?)
}

/// [`virtual_ips_tx`] on the read pool.
pub async fn virtual_ips(db: &Db, config_id: &str) -> StoreResult<Vec<String>> {
    let (joined, count): (Option<String>, i64) = match db {
        Db::Sqlite { read, .. } => sqlx::query_as(VIPS_SQLITE).bind(config_id).bind("").fetch_one(read).await?,
        Db::Pg(p) => sqlx::query_as(VIPS_PG).bind(config_id).bind("").fetch_one(p).await?,
    };
    if let Some(v) = split_vips(joined, count) {
        return Ok(v);
    }
    Ok(on_pool!(db, |c| sqlx::query_scalar::<_, String>(VIPS_ROWS).bind(config_id).bind("").fetch_all(c).await)?)
}

/// `(name, virtual_ip)` of a config's nodes that have one (`except` left out), in creation
/// order: the holders a virtual-IP conflict message names.
pub async fn ip_holders_tx(tx: &mut Tx, config_id: &str, except: Option<&str>) -> StoreResult<Vec<(String, String)>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, (String, String)>(HOLDERS)
        .bind(config_id)
        .bind(except.unwrap_or(""))
        .fetch_all(c)
        .await)?)
}

/// [`ip_holders_tx`] on the read pool.
pub async fn ip_holders(db: &Db, config_id: &str) -> StoreResult<Vec<(String, String)>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, (String, String)>(HOLDERS).bind(config_id).bind("").fetch_all(c).await)?)
}

/// `(tags_json, number of nodes)` of a config: nodes grouped by their tag list, so tag counts
/// need one row per distinct list instead of one per node.
pub async fn tag_lists(db: &Db, config_id: &str) -> StoreResult<Vec<(String, i64)>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, (String, i64)>(
        "SELECT tags_json, COUNT(*) FROM nodes WHERE config_id = $1 GROUP BY tags_json"
    )
    .bind(config_id)
    .fetch_all(c)
    .await)?)
}

/// Inserts a node.
pub async fn insert(tx: &mut Tx, r: &NodeRow) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO nodes ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)"
    )))
    .bind(&r.id)
    .bind(&r.config_id)
    .bind(&r.name)
    .bind(&r.ipv4_address)
    .bind(&r.ipv6_address)
    .bind(r.listen_port)
    .bind(&r.virtual_ip)
    .bind(r.mtu)
    .bind(&r.dns)
    .bind(r.auto_sync)
    .bind(r.enabled)
    .bind(&r.node_type)
    .bind(&r.public_key)
    .bind(&r.private_key)
    .bind(&r.tags_json)
    .bind(&r.pre_up_json)
    .bind(&r.post_up_json)
    .bind(&r.pre_down_json)
    .bind(&r.post_down_json)
    .bind(r.awg_jc)
    .bind(r.awg_jmin)
    .bind(r.awg_jmax)
    .bind(&r.awg_i1)
    .bind(&r.awg_i2)
    .bind(&r.awg_i3)
    .bind(&r.awg_i4)
    .bind(&r.awg_i5)
    .bind(&r.awg_options_json)
    .bind(&r.created_at)
    .bind(&r.updated_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Rewrites every mutable column of a node.
pub async fn update(tx: &mut Tx, r: &NodeRow) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE nodes SET name = $2, ipv4_address = $3, ipv6_address = $4, listen_port = $5, virtual_ip = $6, mtu = $7, \
         dns = $8, auto_sync = $9, enabled = $10, node_type = $11, public_key = $12, private_key = $13, tags_json = $14, \
         pre_up_json = $15, post_up_json = $16, pre_down_json = $17, post_down_json = $18, awg_jc = $19, awg_jmin = $20, \
         awg_jmax = $21, awg_i1 = $22, awg_i2 = $23, awg_i3 = $24, awg_i4 = $25, awg_i5 = $26, awg_options_json = $27, \
         updated_at = $28 WHERE id = $1"
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.ipv4_address)
    .bind(&r.ipv6_address)
    .bind(r.listen_port)
    .bind(&r.virtual_ip)
    .bind(r.mtu)
    .bind(&r.dns)
    .bind(r.auto_sync)
    .bind(r.enabled)
    .bind(&r.node_type)
    .bind(&r.public_key)
    .bind(&r.private_key)
    .bind(&r.tags_json)
    .bind(&r.pre_up_json)
    .bind(&r.post_up_json)
    .bind(&r.pre_down_json)
    .bind(&r.post_down_json)
    .bind(r.awg_jc)
    .bind(r.awg_jmin)
    .bind(r.awg_jmax)
    .bind(&r.awg_i1)
    .bind(&r.awg_i2)
    .bind(&r.awg_i3)
    .bind(&r.awg_i4)
    .bind(&r.awg_i5)
    .bind(&r.awg_options_json)
    .bind(&r.updated_at)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Writes only a node's tag list.
pub async fn set_tags(tx: &mut Tx, id: &str, tags_json: &str, now: &str) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE nodes SET tags_json = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(tags_json)
        .bind(now)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a node; links (either side), port-forward rules, config state, runtime, client state
/// and logs go with it through `ON DELETE CASCADE`.
pub async fn delete(tx: &mut Tx, id: &str) -> StoreResult<bool> {
    let r = on_tx!(tx, |c| sqlx::query("DELETE FROM nodes WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(r > 0)
}

/// Creates the node's `node_config_state` row (empty slots, desired stale).
pub async fn insert_config_state(tx: &mut Tx, node_id: &str, config_id: &str) -> StoreResult<()> {
    let id = crate::util::new_id("ncs");
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO node_config_state (id, config_id, node_id, desired_stale) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (node_id) DO NOTHING"
    )
    .bind(&id)
    .bind(config_id)
    .bind(node_id)
    .bind(true)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Creates the node's runtime row (offline, unknown, `pending`: the table defaults).
pub async fn insert_runtime(tx: &mut Tx, node_id: &str, config_id: &str, now: &str) -> StoreResult<()> {
    let id = crate::util::new_id("rt");
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO endpoint_runtime_status (id, config_id, node_id, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (node_id) DO NOTHING"
    )
    .bind(&id)
    .bind(config_id)
    .bind(node_id)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Marks the desired config of these nodes stale, so the renderer recomputes only them.
pub async fn mark_stale(tx: &mut Tx, node_ids: &[String]) -> StoreResult<()> {
    if node_ids.is_empty() {
        return Ok(());
    }
    let sql = format!("UPDATE node_config_state SET desired_stale = $1 WHERE node_id IN ({})", placeholders(2, node_ids.len()));
    on_tx!(tx, |c| {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(true);
        for id in node_ids {
            q = q.bind(id);
        }
        q.execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Marks every node of a config stale (a shared value every file contains changed).
pub async fn mark_stale_config(tx: &mut Tx, config_id: &str) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE node_config_state SET desired_stale = $1 WHERE config_id = $2")
        .bind(true)
        .bind(config_id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Runtime reset of a disabled node: flags off, states `unknown`, peer counts 0, reason set.
pub async fn reset_runtime(tx: &mut Tx, node_id: &str, reason: &str, now: &str) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE endpoint_runtime_status SET online = $2, connectivity_state = 'unknown', wg_running = $2, \
         wg_runtime_state = 'unknown', config_sync_state = 'unknown', peers_online = 0, peers_total = 0, \
         heartbeat_client_online = $2, heartbeat_wg_online = $2, detect_client_online = $2, detect_wg_online = $2, \
         last_connectivity_reason = $3, updated_at = $4 WHERE node_id = $1"
    )
    .bind(node_id)
    .bind(false)
    .bind(reason)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Presence offline and bind token cleared; the MQTT identity stays (node disable).
pub async fn clear_presence_and_bind_token(tx: &mut Tx, node_id: &str, now: &str) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE node_client_state SET client_presence_state = 'offline', bind_token_hash = NULL, \
         bind_token_expires_at = NULL, updated_at = $2 WHERE node_id = $1"
    )
    .bind(node_id)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Forgets the binding entirely (node type change): client state wiped, identity included.
pub async fn wipe_client_state(tx: &mut Tx, node_id: &str, now: &str) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE node_client_state SET client_initialized = $2, client_platform = '', client_version = '', \
         client_hostname = '', mqtt_username = '', mqtt_client_id = '', mqtt_password = '', bind_token_hash = NULL, \
         bind_token_expires_at = NULL, bind_token_used_at = NULL, client_presence_state = 'offline', boot_id = '', \
         session_id = '', last_heartbeat_at = NULL, last_detect_ack_at = NULL, last_reachable_at = NULL, \
         last_offline_at = NULL, last_will_at = NULL, last_event = '', last_event_at = NULL, updated_at = $3 \
         WHERE node_id = $1"
    )
    .bind(node_id)
    .bind(false)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_vips;

    #[test]
    fn joined_virtual_ips_split_back_exactly() {
        assert_eq!(split_vips(None, 0), Some(Vec::new()));
        assert_eq!(split_vips(Some("10.0.0.1/32".into()), 1), Some(vec!["10.0.0.1/32".to_string()]));
        assert_eq!(
            split_vips(Some("10.0.0.1/32\n\n10.0.0.3".into()), 3),
            Some(vec!["10.0.0.1/32".to_string(), String::new(), "10.0.0.3".to_string()])
        );
        // A stored value holding the separator: the caller falls back to one row per node.
        assert_eq!(split_vips(Some("a\nb\nc".into()), 2), None);
    }
}
