//! `peer_links` rows (spec 02 §2.4) and the mesh queries: pairs, Quick Mesh bulk writes, the
//! light rows topology validation needs, the rows one node's file is rendered from, and the
//! desired-config slot of `node_config_state`.
//!
//! Bulk inserts are batched: SQLite takes many `VALUES` tuples per prepared statement (below
//! its 32766-parameter limit), PostgreSQL one `UNNEST` of column arrays per batch, so a Quick
//! Mesh of a million rows costs a few hundred statements, not a million round trips.

use serde::de::SeqAccess;

use super::packed::{Packed, col, unpack};
use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};

/// One stored link row.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkRow {
    pub id: String,
    pub config_id: String,
    pub local_node_id: String,
    pub peer_node_id: String,
    pub link_group_id: String,
    pub direction: String,
    pub enabled: bool,
    pub allowed_ips: String,
    pub persistent_keepalive: Option<i64>,
    pub preshared_key: Option<String>,
    pub endpoint_mode: String,
    pub endpoint_ref_family: Option<String>,
    pub endpoint_manual_host: Option<String>,
    pub endpoint_port_mode: String,
    pub endpoint_manual_port: Option<i64>,
    pub notes: String,
    pub created_at: String,
    pub updated_at: String,
}

const COLS: &str = "id, config_id, local_node_id, peer_node_id, link_group_id, direction, enabled, allowed_ips, \
    persistent_keepalive, preshared_key, endpoint_mode, endpoint_ref_family, endpoint_manual_host, endpoint_port_mode, \
    endpoint_manual_port, notes, created_at, updated_at";

/// Rows of a config in link order.
pub async fn list_for_config(db: &Db, config_id: &str) -> StoreResult<Vec<LinkRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, LinkRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM peer_links WHERE config_id = $1 ORDER BY created_at ASC, id ASC"
    )))
    .bind(config_id)
    .fetch_all(c)
    .await)?)
}

/// Rows of one group (link order), inside a write.
pub async fn group_tx(tx: &mut Tx, group_id: &str) -> StoreResult<Vec<LinkRow>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, LinkRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM peer_links WHERE link_group_id = $1 ORDER BY created_at ASC, id ASC"
    )))
    .bind(group_id)
    .fetch_all(c)
    .await)?)
}

/// Inserts rows one statement each (pair create: two rows).
pub async fn insert(tx: &mut Tx, rows: &[LinkRow]) -> StoreResult<()> {
    for r in rows {
        on_tx!(tx, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO peer_links ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        )))
        .bind(&r.id)
        .bind(&r.config_id)
        .bind(&r.local_node_id)
        .bind(&r.peer_node_id)
        .bind(&r.link_group_id)
        .bind(&r.direction)
        .bind(r.enabled)
        .bind(&r.allowed_ips)
        .bind(r.persistent_keepalive)
        .bind(&r.preshared_key)
        .bind(&r.endpoint_mode)
        .bind(&r.endpoint_ref_family)
        .bind(&r.endpoint_manual_host)
        .bind(&r.endpoint_port_mode)
        .bind(r.endpoint_manual_port)
        .bind(&r.notes)
        .bind(&r.created_at)
        .bind(&r.updated_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Rewrites the mutable columns of a row (ids, nodes, direction and `created_at` never change).
pub async fn update(tx: &mut Tx, r: &LinkRow) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE peer_links SET enabled = $2, allowed_ips = $3, persistent_keepalive = $4, preshared_key = $5, \
         endpoint_mode = $6, endpoint_ref_family = $7, endpoint_manual_host = $8, endpoint_port_mode = $9, \
         endpoint_manual_port = $10, notes = $11, updated_at = $12 WHERE id = $1"
    )
    .bind(&r.id)
    .bind(r.enabled)
    .bind(&r.allowed_ips)
    .bind(r.persistent_keepalive)
    .bind(&r.preshared_key)
    .bind(&r.endpoint_mode)
    .bind(&r.endpoint_ref_family)
    .bind(&r.endpoint_manual_host)
    .bind(&r.endpoint_port_mode)
    .bind(r.endpoint_manual_port)
    .bind(&r.notes)
    .bind(&r.updated_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a group's rows; returns how many.
pub async fn delete_group(tx: &mut Tx, group_id: &str) -> StoreResult<u64> {
    let r = on_tx!(tx, |c| sqlx::query("DELETE FROM peer_links WHERE link_group_id = $1").bind(group_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(r)
}

/// Deletes every row of a config; returns how many (Quick Mesh `deleted_links`).
pub async fn delete_for_config(tx: &mut Tx, config_id: &str) -> StoreResult<u64> {
    let r = on_tx!(tx, |c| sqlx::query("DELETE FROM peer_links WHERE config_id = $1").bind(config_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(r)
}

/// A row for [`bulk_insert`]: the columns that vary per row. The rest are Quick Mesh constants:
/// enabled, `auto` + family, `ref_peer_listen_port`, no manual host/port, notes `""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkLink<'a> {
    pub id: String,
    pub local_node_id: &'a str,
    pub peer_node_id: &'a str,
    pub link_group_id: &'a str,
    pub forward: bool,
    pub allowed_ips: &'a str,
    pub persistent_keepalive: Option<i64>,
    pub preshared_key: Option<&'a str>,
    pub created_at: &'a str,
}

/// Parameters per row in the SQLite multi-row insert (the per-config constants are bound once
/// per statement, three more).
#[cfg(test)]
const SQLITE_ROW_PARAMS: usize = 9;
/// Rows per SQLite statement: 3 + 9 × 3640 = 32763 ≤ 32766 (SQLite's parameter limit).
const SQLITE_BATCH: usize = 3640;
/// Rows per PostgreSQL `UNNEST` statement.
const PG_BATCH: usize = 20_000;

/// The SQLite statement uses anonymous `?` placeholders: SQLite resolves named or numbered
/// ones (`$N`, `?N`) through a linear list per parameter, which makes preparing a statement
/// with 30k of them quadratic (seconds); anonymous ones are just counted. The three constants
/// (config, family, `updated_at`) come first, once per statement; each row binds only what
/// varies, with the direction as 1/0, so a statement carries 3640 rows instead of 2700 (fewer
/// statements, fewer statement-journal rounds, less binding).
fn sqlite_insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(400 + rows * 20);
    sql.push_str(
        "INSERT INTO peer_links (config_id, endpoint_ref_family, updated_at, id, local_node_id, peer_node_id, \
         link_group_id, direction, allowed_ips, persistent_keepalive, preshared_key, created_at, enabled, \
         endpoint_mode, endpoint_port_mode, notes) \
         SELECT ?, ?, ?, column1, column2, column3, column4, CASE column5 WHEN 1 THEN 'forward' ELSE 'reverse' END, \
         column6, column7, column8, column9, 1, 'auto', 'ref_peer_listen_port', '' FROM (VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?)");
    }
    sql.push(')');
    sql
}

/// Inserts many Quick Mesh rows of one config in batches.
pub async fn bulk_insert(tx: &mut Tx, config_id: &str, family: &str, now: &str, rows: &[BulkLink<'_>]) -> StoreResult<()> {
    match tx {
        Tx::Sqlite(t) => {
            // The writer connection's page cache is sized in `Db::connect`.
            let full_sql = sqlite_insert_sql(SQLITE_BATCH);
            for chunk in rows.chunks(SQLITE_BATCH) {
                let sql = if chunk.len() == SQLITE_BATCH { full_sql.clone() } else { sqlite_insert_sql(chunk.len()) };
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(config_id).bind(family).bind(now);
                for r in chunk {
                    q = q
                        .bind(&r.id)
                        .bind(r.local_node_id)
                        .bind(r.peer_node_id)
                        .bind(r.link_group_id)
                        .bind(r.forward)
                        .bind(r.allowed_ips)
                        .bind(r.persistent_keepalive)
                        .bind(r.preshared_key)
                        .bind(r.created_at);
                }
                q.execute(&mut **t).await?;
            }
        }
        Tx::Pg(t) => {
            for chunk in rows.chunks(PG_BATCH) {
                let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
                let locals: Vec<&str> = chunk.iter().map(|r| r.local_node_id).collect();
                let peers: Vec<&str> = chunk.iter().map(|r| r.peer_node_id).collect();
                let groups: Vec<&str> = chunk.iter().map(|r| r.link_group_id).collect();
                let dirs: Vec<&str> = chunk.iter().map(|r| if r.forward { "forward" } else { "reverse" }).collect();
                let allowed: Vec<&str> = chunk.iter().map(|r| r.allowed_ips).collect();
                let keepalive: Vec<Option<i64>> = chunk.iter().map(|r| r.persistent_keepalive).collect();
                let psk: Vec<Option<&str>> = chunk.iter().map(|r| r.preshared_key).collect();
                let created: Vec<&str> = chunk.iter().map(|r| r.created_at).collect();
                sqlx::query(
                    "INSERT INTO peer_links (id, local_node_id, peer_node_id, link_group_id, direction, allowed_ips, \
                     persistent_keepalive, preshared_key, created_at, config_id, endpoint_ref_family, updated_at, enabled, \
                     endpoint_mode, endpoint_port_mode, notes) \
                     SELECT u.*, $10, $11, $12, TRUE, 'auto', 'ref_peer_listen_port', '' FROM UNNEST(\
                     $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], \
                     $9::text[]) AS u",
                )
                .bind(&ids)
                .bind(&locals)
                .bind(&peers)
                .bind(&groups)
                .bind(&dirs)
                .bind(&allowed)
                .bind(&keepalive)
                .bind(&psk)
                .bind(&created)
                .bind(config_id)
                .bind(family)
                .bind(now)
                .execute(&mut **t)
                .await?;
            }
        }
    }
    Ok(())
}

/// Secondary indexes a large SQLite replace drops and builds again instead of maintaining row
/// by row. Their keys start with a node id, so a Quick Mesh scatters its inserts (and the
/// deletes of the old rows) over a thousand positions of each; a sort-based `CREATE INDEX`
/// writes them packed in a fraction of the time. The config index (which the delete uses) and
/// the group index receive Quick Mesh rows in key order anyway and stay.
const SQLITE_REBUILT_INDEXES: [&str; 2] = ["ix_peer_links_local", "ix_peer_links_peer"];

/// Whether a replace rebuilds [`SQLITE_REBUILT_INDEXES`]: the build sorts every row of the
/// table, so only when this config's deleted and inserted rows outweigh twice the rows of the
/// other configs (measured at 1000 nodes: a replace next to an equally large config breaks
/// even, an insert next to one loses).
fn sqlite_rebuilds(deleted: u64, inserted: u64, others: u64) -> bool {
    others.saturating_mul(2) < deleted.saturating_add(inserted)
}

/// Replaces every row of a config with Quick Mesh rows (one transaction, the caller's):
/// deletes the old rows, inserts `rows`; returns how many were deleted.
///
/// On SQLite a replace that dominates the table drops the node-keyed secondary indexes first
/// and creates them again from their stored definitions after the insert. DDL is
/// transactional: a failure (or a rollback) restores the indexes with the old rows, and
/// readers on the WAL keep their snapshot, indexes included. PostgreSQL maintains its indexes.
pub async fn replace_for_config(
    tx: &mut Tx,
    config_id: &str,
    family: &str,
    now: &str,
    rows: &[BulkLink<'_>],
) -> StoreResult<u64> {
    let Tx::Sqlite(t) = tx else {
        let deleted = delete_for_config(tx, config_id).await?;
        bulk_insert(tx, config_id, family, now, rows).await?;
        return Ok(deleted);
    };
    let (mine, total): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM peer_links WHERE config_id = ?), (SELECT COUNT(*) FROM peer_links)",
    )
    .bind(config_id)
    .fetch_one(&mut **t)
    .await?;
    let (mine, total) = (mine.max(0) as u64, total.max(0) as u64);
    let mut rebuild: Vec<String> = Vec::new();
    if sqlite_rebuilds(mine, rows.len() as u64, total.saturating_sub(mine)) {
        let defs: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'peer_links' \
             AND name IN (?, ?) AND sql IS NOT NULL ORDER BY name",
        )
        .bind(SQLITE_REBUILT_INDEXES[0])
        .bind(SQLITE_REBUILT_INDEXES[1])
        .fetch_all(&mut **t)
        .await?;
        for (name, sql) in defs {
            // The names come from the constant above, not from input.
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX \"{name}\""))).execute(&mut **t).await?;
            rebuild.push(sql);
        }
    }
    let deleted = delete_for_config(tx, config_id).await?;
    bulk_insert(tx, config_id, family, now, rows).await?;
    if let Tx::Sqlite(t) = tx {
        for sql in rebuild {
            // The stored definition from the migrations, as read above.
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **t).await?;
        }
    }
    Ok(deleted)
}

/// The columns topology validation reads.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TopoRow {
    pub link_group_id: String,
    pub local_node_id: String,
    pub peer_node_id: String,
    pub direction: String,
    pub enabled: bool,
    pub endpoint_mode: String,
    pub endpoint_ref_family: Option<String>,
    pub endpoint_manual_host: Option<String>,
    pub endpoint_port_mode: String,
    pub endpoint_manual_port: Option<i64>,
}

/// Light rows of a config in link order.
pub async fn topo_rows(db: &Db, config_id: &str) -> StoreResult<Vec<TopoRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, TopoRow>(
        "SELECT link_group_id, local_node_id, peer_node_id, direction, enabled, endpoint_mode, endpoint_ref_family, \
         endpoint_manual_host, endpoint_port_mode, endpoint_manual_port FROM peer_links WHERE config_id = $1 \
         ORDER BY created_at ASC, id ASC"
    )
    .bind(config_id)
    .fetch_all(c)
    .await)?)
}

/// Number of rows per config.
pub async fn counts(db: &Db) -> StoreResult<Vec<(String, i64)>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, (String, i64)>(
        "SELECT config_id, COUNT(*) FROM peer_links GROUP BY config_id"
    )
    .fetch_all(c)
    .await)?)
}

/// What one `[Peer]` section is made of: an enabled row of the local node joined with its
/// enabled peer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RenderRow {
    pub local_node_id: String,
    pub allowed_ips: String,
    pub persistent_keepalive: Option<i64>,
    pub preshared_key: Option<String>,
    pub endpoint_mode: String,
    pub endpoint_ref_family: Option<String>,
    pub endpoint_manual_host: Option<String>,
    pub endpoint_port_mode: String,
    pub endpoint_manual_port: Option<i64>,
    pub peer_name: String,
    pub peer_public_key: String,
    pub peer_ipv4_address: Option<String>,
    pub peer_ipv6_address: Option<String>,
    pub peer_listen_port: Option<i64>,
}

/// The render rows query, one row per `[Peer]` in link order (the `ix_peer_links_local` order).
macro_rules! render_select {
    () => {
        "SELECT l.local_node_id, l.allowed_ips, l.persistent_keepalive, l.preshared_key, l.endpoint_mode, \
    l.endpoint_ref_family, l.endpoint_manual_host, l.endpoint_port_mode, l.endpoint_manual_port, p.name AS peer_name, \
    p.public_key AS peer_public_key, p.ipv4_address AS peer_ipv4_address, p.ipv6_address AS peer_ipv6_address, \
    p.listen_port AS peer_listen_port FROM peer_links l JOIN nodes p ON p.id = l.peer_node_id \
    WHERE l.local_node_id = $1 AND l.enabled = $2 AND p.enabled = $2 ORDER BY l.created_at ASC, l.id ASC"
    };
}

/// PostgreSQL: one row per `[Peer]`.
const RENDER_SQL: &str = render_select!();

/// SQLite: the same rows packed into one value (see [`super::packed`]), in [`RenderRow`] field
/// order. The aggregate reads the ordered subquery (walked along `ix_peer_links_local`, no
/// sort) in its order: SQLite keeps a FROM subquery's ORDER BY when the outer query aggregates
/// with anything but count/min/max; `render_rows_packed_keep_order_and_values` checks it.
const RENDER_PACKED_SQL: &str = concat!(
    "SELECT json_group_array(json_array(local_node_id, allowed_ips, persistent_keepalive, preshared_key, \
     endpoint_mode, endpoint_ref_family, endpoint_manual_host, endpoint_port_mode, endpoint_manual_port, peer_name, \
     peer_public_key, peer_ipv4_address, peer_ipv6_address, peer_listen_port)) FROM (",
    render_select!(),
    ")"
);

impl Packed for RenderRow {
    /// Columns in [`RENDER_PACKED_SQL`] order.
    fn read<'de, A: SeqAccess<'de>>(s: &mut A) -> Result<RenderRow, A::Error> {
        Ok(RenderRow {
            local_node_id: col(s)?,
            allowed_ips: col(s)?,
            persistent_keepalive: col(s)?,
            preshared_key: col(s)?,
            endpoint_mode: col(s)?,
            endpoint_ref_family: col(s)?,
            endpoint_manual_host: col(s)?,
            endpoint_port_mode: col(s)?,
            endpoint_manual_port: col(s)?,
            peer_name: col(s)?,
            peer_public_key: col(s)?,
            peer_ipv4_address: col(s)?,
            peer_ipv6_address: col(s)?,
            peer_listen_port: col(s)?,
        })
    }
}

/// Active rows of one node's file, in link order (read side). On SQLite read as one packed
/// value (a node with 999 peers cost ~5 µs per row through the driver); PostgreSQL reads rows.
pub async fn render_rows(db: &Db, node_id: &str) -> StoreResult<Vec<RenderRow>> {
    match db {
        Db::Sqlite { read, .. } => {
            unpack(sqlx::query_scalar(RENDER_PACKED_SQL).bind(node_id).bind(true).fetch_one(read).await?)
        }
        Db::Pg(p) => Ok(sqlx::query_as::<_, RenderRow>(RENDER_SQL).bind(node_id).bind(true).fetch_all(p).await?),
    }
}

/// Active rows of one node's file, inside a write.
pub async fn render_rows_tx(tx: &mut Tx, node_id: &str) -> StoreResult<Vec<RenderRow>> {
    match tx {
        Tx::Sqlite(t) => {
            unpack(sqlx::query_scalar(RENDER_PACKED_SQL).bind(node_id).bind(true).fetch_one(&mut **t).await?)
        }
        Tx::Pg(t) => Ok(sqlx::query_as::<_, RenderRow>(RENDER_SQL).bind(node_id).bind(true).fetch_all(&mut **t).await?),
    }
}

/// Node ids of a config whose desired config is stale.
pub async fn stale_node_ids(db: &Db, config_id: &str) -> StoreResult<Vec<String>> {
    Ok(on_pool!(db, |c| sqlx::query_scalar::<_, String>(
        "SELECT s.node_id FROM node_config_state s JOIN nodes n ON n.id = s.node_id \
         WHERE s.config_id = $1 AND s.desired_stale = $2 ORDER BY n.created_at ASC, n.id ASC"
    )
    .bind(config_id)
    .bind(true)
    .fetch_all(c)
    .await)?)
}

/// Locks the state rows of these nodes until commit (PostgreSQL), so a concurrent write that
/// marks them stale waits for this render to finish and is not lost. SQLite needs nothing: its
/// single writer connection already serialises the render transaction with every write.
pub async fn lock_states(tx: &mut Tx, node_ids: &[String]) -> StoreResult<()> {
    if let Tx::Pg(t) = tx {
        sqlx::query("SELECT node_id FROM node_config_state WHERE node_id = ANY($1) FOR UPDATE")
            .bind(node_ids)
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// The desired slot of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Desired {
    pub desired_text: String,
    pub desired_sha256: String,
    pub desired_version: i64,
    pub desired_stale: bool,
}

/// Reads the desired slot inside a write.
pub async fn desired_tx(tx: &mut Tx, node_id: &str) -> StoreResult<Option<Desired>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, Desired>(
        "SELECT desired_text, desired_sha256, desired_version, desired_stale FROM node_config_state WHERE node_id = $1"
    )
    .bind(node_id)
    .fetch_optional(c)
    .await)?)
}

/// Stores a freshly rendered desired config: the version moves only when the hash changes;
/// the stale mark is cleared.
pub async fn write_desired(tx: &mut Tx, node_id: &str, text: &str, sha256: &str, now: &str) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE node_config_state SET desired_version = CASE WHEN desired_sha256 = $3 THEN desired_version \
         ELSE desired_version + 1 END, desired_text = $2, desired_sha256 = $3, desired_generated_at = $4, \
         desired_stale = $5 WHERE node_id = $1"
    )
    .bind(node_id)
    .bind(text)
    .bind(sha256)
    .bind(now)
    .bind(false)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Clears the stale mark without rendering (disabled nodes have no file).
pub async fn clear_stale(tx: &mut Tx, node_id: &str) -> StoreResult<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE node_config_state SET desired_stale = $2 WHERE node_id = $1")
        .bind(node_id)
        .bind(false)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The desired/staged/confirmed hashes and versions of a config's nodes (overview sync items).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct SyncRow {
    pub node_id: String,
    pub desired_sha256: String,
    pub desired_version: i64,
    pub staged_sha256: String,
    pub staged_version: i64,
    pub confirmed_sha256: String,
    pub confirmed_version: i64,
    pub reported_local_sha256: String,
    pub reported_local_version: i64,
}

/// Sync slots (without texts) of a config's nodes.
pub async fn sync_rows(db: &Db, config_id: &str) -> StoreResult<Vec<SyncRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, SyncRow>(
        "SELECT node_id, desired_sha256, desired_version, staged_sha256, staged_version, confirmed_sha256, \
         confirmed_version, reported_local_sha256, reported_local_version FROM node_config_state WHERE config_id = $1"
    )
    .bind(config_id)
    .fetch_all(c)
    .await)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_batch_fits_the_parameter_limit() {
        assert!(3 + SQLITE_BATCH * SQLITE_ROW_PARAMS <= 32_766);
        let sql = sqlite_insert_sql(2);
        assert_eq!(sql.matches('?').count(), 3 + 2 * SQLITE_ROW_PARAMS);
        assert!(sql.ends_with("FROM (VALUES (?,?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?,?))"), "{sql}");
    }

    /// The peer_links index definitions as the writer connection sees them.
    const T0: &str = "2026-01-01T00:00:00.000000+00:00";

    /// A fresh SQLite database (in a temp dir kept alive by the returned guard) holding config
    /// `cfg_1`.
    async fn sqlite_with_config() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&super::super::DbTarget::Sqlite(dir.path().join("t.db"))).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        on_tx!(&mut tx, |c| sqlx::query("INSERT INTO configs (id, name, created_at, updated_at) VALUES ('cfg_1', 'c', $1, $1)")
            .bind(T0)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .unwrap();
        tx.commit().await.unwrap();
        (dir, db)
    }

    async fn index_sql(db: &Db) -> Vec<(String, String)> {
        let mut tx = db.begin().await.unwrap();
        let r = on_tx!(&mut tx, |c| sqlx::query_as::<_, (String, String)>(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'peer_links' \
             AND sql IS NOT NULL ORDER BY name"
        )
        .fetch_all(c)
        .await)
        .unwrap();
        tx.rollback().await.unwrap();
        r
    }

    fn link<'a>(id: &str, a: &'a str, b: &'a str, created_at: &'a str) -> BulkLink<'a> {
        BulkLink {
            id: id.to_string(),
            local_node_id: a,
            peer_node_id: b,
            link_group_id: "group_000000000001",
            forward: true,
            allowed_ips: "10.0.0.2/32",
            persistent_keepalive: None,
            preshared_key: None,
            created_at,
        }
    }

    /// A SQLite replace that drops and rebuilds the node-keyed indexes: on success they are
    /// back with the same definitions; a failure after the drop (a duplicate id) rolls back to
    /// the old rows and the old indexes.
    #[tokio::test]
    async fn sqlite_replace_rebuilds_indexes_and_a_failure_restores_them() {
        let (_dir, db) = sqlite_with_config().await;
        let t = T0;
        let mut tx = db.begin().await.unwrap();
        for n in ["node_a", "node_b"] {
            on_tx!(&mut tx, |c| sqlx::query(
                "INSERT INTO nodes (id, config_id, name, public_key, private_key, created_at, updated_at) \
                 VALUES ($1, 'cfg_1', $1, 'pk', 'sk', $2, $2)"
            )
            .bind(n)
            .bind(t)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
            .unwrap();
        }
        tx.commit().await.unwrap();
        let before = index_sql(&db).await;
        assert!(before.iter().any(|(n, _)| n == "ix_peer_links_local"), "{before:?}");

        let mut tx = db.begin().await.unwrap();
        let rows = [link("plink_1", "node_a", "node_b", t), link("plink_2", "node_b", "node_a", t)];
        assert_eq!(replace_for_config(&mut tx, "cfg_1", "ipv4", t, &rows).await.unwrap(), 0);
        tx.commit().await.unwrap();
        assert_eq!(index_sql(&db).await, before);

        let mut tx = db.begin().await.unwrap();
        let dup = [link("plink_3", "node_a", "node_b", t), link("plink_3", "node_b", "node_a", t)];
        assert!(replace_for_config(&mut tx, "cfg_1", "ipv4", t, &dup).await.is_err());
        tx.rollback().await.unwrap();
        assert_eq!(index_sql(&db).await, before);
        let ids: Vec<String> = list_for_config(&db, "cfg_1").await.unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["plink_1", "plink_2"]);
    }

    /// SQLite reads the render rows packed: same rows, values and order as the row query
    /// (links inserted out of order, a `created_at` tie broken by id; disabled rows and peers
    /// and other nodes' rows left out; text that looks like JSON, NULLs and a 2^53+1 integer).
    #[tokio::test]
    async fn render_rows_packed_keep_order_and_values() {
        let (_dir, db) = sqlite_with_config().await;
        let t = T0;
        let mut tx = db.begin().await.unwrap();
        let nodes: [(&str, bool, Option<&str>, Option<i64>); 7] = [
            ("node_l", true, None, None),
            ("node_p1", true, Some("198.51.100.1"), Some(51820)),
            ("node_p2", true, None, None),
            ("node_p3", true, Some("[\"x\"]"), Some(0)),
            ("node_p4", false, None, None),
            ("node_p5", true, Some("null"), Some(65535)),
            ("node_o", true, None, None),
        ];
        for (n, enabled, v4, port) in nodes {
            on_tx!(&mut tx, |c| sqlx::query(
                "INSERT INTO nodes (id, config_id, name, ipv4_address, listen_port, enabled, public_key, private_key, \
                 created_at, updated_at) VALUES ($1, 'cfg_1', $1 || '_name', $2, $3, $4, $1 || '_pk', 'sk', $5, $5)"
            )
            .bind(n)
            .bind(v4)
            .bind(port)
            .bind(enabled)
            .bind(t)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
            .unwrap();
        }
        // (id, local, peer, enabled, created_at, allowed_ips, keepalive, psk, manual host, manual port)
        type Opt = Option<&'static str>;
        type L = (&'static str, &'static str, &'static str, bool, &'static str, &'static str, Option<i64>, Opt, Opt, Option<i64>);
        let links: [L; 7] = [
            ("plink_f", "node_l", "node_p5", true, "2026-01-04", "{\"a\":1}", Some(9_007_199_254_740_993), None, Some("null"), Some(0)),
            ("plink_c", "node_l", "node_p1", true, "2026-01-03", "10.0.0.1/32", Some(25), Some("psk\n\"c\""), None, None),
            ("plink_a", "node_l", "node_p3", true, "2026-01-03", "10.0.0.3/32, fd00::3/128", None, None, Some("h.example"), Some(-1)),
            ("plink_e", "node_l", "node_p4", true, "2026-01-01", "10.0.0.4/32", None, None, None, None),
            ("plink_d", "node_l", "node_p2", false, "2026-01-01", "10.0.0.2/32", None, None, None, None),
            ("plink_g", "node_o", "node_p1", true, "2026-01-01", "10.0.0.9/32", None, None, None, None),
            ("plink_b", "node_l", "node_p2", true, "2026-01-02", "", Some(i64::MIN), Some(""), Some(""), Some(i64::MAX)),
        ];
        for (id, a, b, enabled, at, ips, ka, psk, host, port) in links {
            on_tx!(&mut tx, |c| sqlx::query(
                "INSERT INTO peer_links (id, config_id, local_node_id, peer_node_id, link_group_id, direction, enabled, \
                 allowed_ips, persistent_keepalive, preshared_key, endpoint_manual_host, endpoint_manual_port, \
                 created_at, updated_at) VALUES ($1, 'cfg_1', $2, $3, 'g', 'forward', $4, $5, $6, $7, $8, $9, $10, $10)"
            )
            .bind(id)
            .bind(a)
            .bind(b)
            .bind(enabled)
            .bind(ips)
            .bind(ka)
            .bind(psk)
            .bind(host)
            .bind(port)
            .bind(at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
            .unwrap();
        }
        tx.commit().await.unwrap();

        let plain: Vec<RenderRow> = on_pool!(&db, |c| sqlx::query_as::<_, RenderRow>(RENDER_SQL)
            .bind("node_l")
            .bind(true)
            .fetch_all(c)
            .await)
        .unwrap();
        let packed = render_rows(&db, "node_l").await.unwrap();
        let names: Vec<&str> = packed.iter().map(|r| r.peer_name.as_str()).collect();
        assert_eq!(names, ["node_p2_name", "node_p3_name", "node_p1_name", "node_p5_name"]);
        assert_eq!(packed, plain);
        assert_eq!(packed[3].allowed_ips, "{\"a\":1}");
        assert_eq!(packed[3].persistent_keepalive, Some(9_007_199_254_740_993));
        assert_eq!(packed[3].preshared_key, None);
        assert_eq!(packed[3].endpoint_manual_host.as_deref(), Some("null"));
        assert_eq!(packed[3].peer_ipv4_address.as_deref(), Some("null"));
        assert_eq!(packed[1].peer_ipv4_address.as_deref(), Some("[\"x\"]"));
        assert_eq!((packed[0].persistent_keepalive, packed[0].endpoint_manual_port), (Some(i64::MIN), Some(i64::MAX)));
        assert_eq!(packed[0].preshared_key.as_deref(), Some(""));
        assert_eq!(packed[2].preshared_key.as_deref(), Some("psk\n\"c\""));

        let mut tx = db.begin().await.unwrap();
        assert_eq!(render_rows_tx(&mut tx, "node_l").await.unwrap(), plain);
        assert!(render_rows_tx(&mut tx, "node_p4").await.unwrap().is_empty());
        tx.rollback().await.unwrap();
        assert!(render_rows(&db, "node_missing").await.unwrap().is_empty());
    }

    #[test]
    fn rebuild_only_when_the_config_dominates() {
        assert!(sqlite_rebuilds(0, 10, 0));
        assert!(sqlite_rebuilds(999_000, 999_000, 0));
        assert!(!sqlite_rebuilds(999_000, 999_000, 999_000));
        assert!(!sqlite_rebuilds(0, 999_000, 999_000));
        assert!(sqlite_rebuilds(0, 999_000, 400_000));
        assert!(!sqlite_rebuilds(0, 0, 0));
    }
}
