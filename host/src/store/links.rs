//! Peer links (spec 02 §2.4) and the mesh queries: pairs, Quick Mesh bulk writes, the light
//! rows topology validation needs, the rows one node's file is rendered from, and the
//! desired-config slot of `node_config_state`.
//!
//! Storage: one `peer_pairs` row per pair (migration `20261201160000_peer_pairs`). The
//! directed rows of the API are the `peer_links` view over it (forward = A→B, reverse = B→A),
//! which the read queries use; writes go to the table. Group and link ids are stored as the
//! integers of their 12 hex digits ([`util::id_value`]), timestamps as microseconds.
//!
//! Link order: `created_at`, then the pair, forward before reverse ([`LINK_ORDER`]).
//!
//! Bulk inserts are batched: SQLite takes many `VALUES` tuples per prepared statement (below
//! its 32766-parameter limit), PostgreSQL one `UNNEST` of column arrays per batch, so a Quick
//! Mesh of half a million pairs costs a few hundred statements, not a million round trips.

use serde::de::SeqAccess;

use super::packed::{Packed, col, flag, unpack};
use super::{Db, StoreError, StoreResult, Tx};
use crate::util;
use crate::{on_pool, on_tx};

/// Id prefix of a pair (`link_group_id`).
pub const GROUP_PREFIX: &str = "group";
/// Id prefix of a directed link row.
pub const LINK_PREFIX: &str = "plink";

/// `ORDER BY` of `peer_links` rows in link order.
pub const LINK_ORDER: &str = "sort_us, pair_gid, sort_dir";

/// One directed link row (a `peer_links` view row).
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

/// The stored integer of a group id; a text WFM never generates names no pair.
fn gid(group_id: &str) -> Option<i64> {
    util::id_value(GROUP_PREFIX, group_id)
}

fn bad_id(what: &str, id: &str) -> StoreError {
    StoreError::Other(format!("{what} id {id:?} is not of the <prefix>_<12 hex> form"))
}

fn micros(ts: &str) -> StoreResult<i64> {
    util::iso_micros(ts).ok_or_else(|| StoreError::Other(format!("timestamp {ts:?} is not ISO-8601")))
}

/// Rows of a config in link order.
pub async fn list_for_config(db: &Db, config_id: &str) -> StoreResult<Vec<LinkRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, LinkRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM peer_links WHERE config_id = $1 ORDER BY {LINK_ORDER}"
    )))
    .bind(config_id)
    .fetch_all(c)
    .await)?)
}

/// `peer_links` rows of the pairs node `$1` is part of (both directions of each).
const TOUCHING: &str = "local_node_id = $1 OR peer_node_id = $1";

/// Both rows of every pair the node is part of, in link order (read side).
pub async fn rows_touching(db: &Db, node_id: &str) -> StoreResult<Vec<LinkRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, LinkRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM peer_links WHERE {TOUCHING} ORDER BY {LINK_ORDER}"
    )))
    .bind(node_id)
    .fetch_all(c)
    .await)?)
}

/// The parts of a link row that node and config writes look at.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkRef {
    pub id: String,
    pub link_group_id: String,
    pub direction: String,
    pub local_node_id: String,
    pub peer_node_id: String,
    pub enabled: bool,
    pub endpoint_mode: String,
    pub endpoint_ref_family: Option<String>,
    pub persistent_keepalive: Option<i64>,
}

const REF_COLS: &str =
    "id, link_group_id, direction, local_node_id, peer_node_id, enabled, endpoint_mode, endpoint_ref_family, persistent_keepalive";

/// [`LinkRef`]s of the pairs the node is part of, in link order, inside a write.
pub async fn refs_touching(tx: &mut Tx, node_id: &str) -> StoreResult<Vec<LinkRef>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, LinkRef>(sqlx::AssertSqlSafe(format!(
        "SELECT {REF_COLS} FROM peer_links WHERE {TOUCHING} ORDER BY {LINK_ORDER}"
    )))
    .bind(node_id)
    .fetch_all(c)
    .await)?)
}

/// [`LinkRef`]s of a config, in link order, inside a write.
pub async fn refs_of_config(tx: &mut Tx, config_id: &str) -> StoreResult<Vec<LinkRef>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, LinkRef>(sqlx::AssertSqlSafe(format!(
        "SELECT {REF_COLS} FROM peer_links WHERE config_id = $1 ORDER BY {LINK_ORDER}"
    )))
    .bind(config_id)
    .fetch_all(c)
    .await)?)
}

/// The two rows of one pair (forward first), inside a write; empty when there is no such pair.
pub async fn group_tx(tx: &mut Tx, group_id: &str) -> StoreResult<Vec<LinkRow>> {
    let Some(gid) = gid(group_id) else { return Ok(Vec::new()) };
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, LinkRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM peer_links WHERE pair_gid = $1 ORDER BY sort_dir"
    )))
    .bind(gid)
    .fetch_all(c)
    .await)?)
}

/// Whether every one of `node_ids` is a node of `config_id`, checked inside the write that is
/// about to link them (pairs carry no foreign keys). PostgreSQL also key-share-locks the rows,
/// so a concurrent delete waits for this transaction; SQLite's single writer already does.
pub async fn nodes_in_config(tx: &mut Tx, config_id: &str, node_ids: &[&str]) -> StoreResult<bool> {
    let mut wanted: Vec<&str> = node_ids.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let found: i64 = match tx {
        Tx::Sqlite(t) => {
            let list = serde_json::to_string(&wanted).map_err(|e| StoreError::Other(e.to_string()))?;
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM nodes WHERE config_id = ? AND id IN (SELECT value FROM json_each(?))",
            )
            .bind(config_id)
            .bind(list)
            .fetch_one(&mut **t)
            .await?
        }
        Tx::Pg(t) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT id FROM nodes WHERE config_id = $1 AND id = ANY($2) FOR KEY SHARE) n",
            )
            .bind(config_id)
            .bind(&wanted)
            .fetch_one(&mut **t)
            .await?
        }
    };
    Ok(found == wanted.len() as i64)
}

/// Inserts one pair from its two rows (pair create). The forward row's nodes, group id and
/// `created_at`/`updated_at` are the pair's; the PSK, `enabled` and notes are shared.
pub async fn insert_pair(tx: &mut Tx, fwd: &LinkRow, rev: &LinkRow) -> StoreResult<()> {
    let g = gid(&fwd.link_group_id).ok_or_else(|| bad_id("group", &fwd.link_group_id))?;
    let f = util::id_value(LINK_PREFIX, &fwd.id).ok_or_else(|| bad_id("link", &fwd.id))?;
    let r = util::id_value(LINK_PREFIX, &rev.id).ok_or_else(|| bad_id("link", &rev.id))?;
    let (created, updated) = (micros(&fwd.created_at)?, micros(&fwd.updated_at)?);
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO peer_pairs (gid, config_id, a_node_id, b_node_id, fwd_id, rev_id, enabled, preshared_key, notes, \
         created_us, updated_us, fwd_allowed_ips, fwd_keepalive, fwd_endpoint_mode, fwd_ref_family, fwd_manual_host, \
         fwd_port_mode, fwd_manual_port, rev_allowed_ips, rev_keepalive, rev_endpoint_mode, rev_ref_family, \
         rev_manual_host, rev_port_mode, rev_manual_port) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
    )
    .bind(g)
    .bind(&fwd.config_id)
    .bind(&fwd.local_node_id)
    .bind(&fwd.peer_node_id)
    .bind(f)
    .bind(r)
    .bind(fwd.enabled)
    .bind(&fwd.preshared_key)
    .bind(&fwd.notes)
    .bind(created)
    .bind(updated)
    .bind(&fwd.allowed_ips)
    .bind(fwd.persistent_keepalive)
    .bind(&fwd.endpoint_mode)
    .bind(&fwd.endpoint_ref_family)
    .bind(&fwd.endpoint_manual_host)
    .bind(&fwd.endpoint_port_mode)
    .bind(fwd.endpoint_manual_port)
    .bind(&rev.allowed_ips)
    .bind(rev.persistent_keepalive)
    .bind(&rev.endpoint_mode)
    .bind(&rev.endpoint_ref_family)
    .bind(&rev.endpoint_manual_host)
    .bind(&rev.endpoint_port_mode)
    .bind(rev.endpoint_manual_port)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Rewrites the mutable values of one directed row: its direction's AllowedIPs, keepalive and
/// endpoint, and the pair's `enabled`, PSK, notes and `updated_at` (ids, nodes, direction and
/// `created_at` never change).
pub async fn update(tx: &mut Tx, r: &LinkRow) -> StoreResult<()> {
    let g = gid(&r.link_group_id).ok_or_else(|| bad_id("group", &r.link_group_id))?;
    let d = if r.direction == "reverse" { "rev" } else { "fwd" };
    let updated = micros(&r.updated_at)?;
    on_tx!(tx, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE peer_pairs SET enabled = $2, preshared_key = $3, notes = $4, updated_us = $5, {d}_allowed_ips = $6, \
         {d}_keepalive = $7, {d}_endpoint_mode = $8, {d}_ref_family = $9, {d}_manual_host = $10, {d}_port_mode = $11, \
         {d}_manual_port = $12 WHERE gid = $1"
    )))
    .bind(g)
    .bind(r.enabled)
    .bind(&r.preshared_key)
    .bind(&r.notes)
    .bind(updated)
    .bind(&r.allowed_ips)
    .bind(r.persistent_keepalive)
    .bind(&r.endpoint_mode)
    .bind(&r.endpoint_ref_family)
    .bind(&r.endpoint_manual_host)
    .bind(&r.endpoint_port_mode)
    .bind(r.endpoint_manual_port)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Clears the keepalive of these directed rows (`(group id, direction)`), whose Endpoint no
/// longer resolves.
pub async fn clear_keepalive(tx: &mut Tx, rows: &[(&str, &str)], now: &str) -> StoreResult<()> {
    let updated = micros(now)?;
    for (group_id, direction) in rows {
        let g = gid(group_id).ok_or_else(|| bad_id("group", group_id))?;
        let d = if *direction == "reverse" { "rev" } else { "fwd" };
        on_tx!(tx, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE peer_pairs SET {d}_keepalive = NULL, updated_us = $2 WHERE gid = $1"
        )))
        .bind(g)
        .bind(updated)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Disables every pair touching the node (node disable, spec 02 §4.2); returns how many rows
/// (two per pair).
pub async fn disable_touching(tx: &mut Tx, node_id: &str, now: &str) -> StoreResult<u64> {
    let updated = micros(now)?;
    let r = on_tx!(tx, |c| sqlx::query(
        "UPDATE peer_pairs SET enabled = $2, updated_us = $3 WHERE (a_node_id = $1 OR b_node_id = $1) AND enabled = $4"
    )
    .bind(node_id)
    .bind(false)
    .bind(updated)
    .bind(true)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(r * 2)
}

/// Deletes a pair; returns how many rows (0 or 2).
pub async fn delete_group(tx: &mut Tx, group_id: &str) -> StoreResult<u64> {
    let Some(g) = gid(group_id) else { return Ok(0) };
    let r = on_tx!(tx, |c| sqlx::query("DELETE FROM peer_pairs WHERE gid = $1").bind(g).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(r * 2)
}

/// Deletes every pair of a config; returns how many rows (Quick Mesh `deleted_links`).
pub async fn delete_for_config(tx: &mut Tx, config_id: &str) -> StoreResult<u64> {
    let r = on_tx!(tx, |c| sqlx::query("DELETE FROM peer_pairs WHERE config_id = $1").bind(config_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(r * 2)
}

/// A pair for [`bulk_insert`]: what varies per pair. The rest are Quick Mesh constants
/// (enabled, `auto` + family, `ref_peer_listen_port`, no manual host/port, notes `""`) or
/// follow from the pair's place `k` in the batch ([`BulkRun`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkPair<'a> {
    /// Forward local node (A).
    pub a: &'a str,
    /// Forward peer node (B).
    pub b: &'a str,
    pub allowed_ab: &'a str,
    pub allowed_ba: &'a str,
    pub keepalive_ab: Option<i64>,
    pub keepalive_ba: Option<i64>,
    pub preshared_key: Option<&'a str>,
}

/// What a bulk insert derives per pair from its index `k`: group id `group_base + k`, link ids
/// `link_base + 2k` (forward) and `+ 1` (reverse), all within 48 bits, and `created_at`
/// `created_base_us + k`, so ids are consecutive (the table is appended to) and link order is
/// the batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkRun {
    pub group_base: i64,
    pub link_base: i64,
    pub created_base_us: i64,
    pub updated_us: i64,
}

/// Parameters per pair in the SQLite multi-row insert.
#[cfg(test)]
const SQLITE_PAIR_PARAMS: usize = 8;
/// Parameters bound once per SQLite statement.
#[cfg(test)]
const SQLITE_CONST_PARAMS: usize = 6;
/// Pairs per SQLite statement: 6 + 8 × 4000 = 32006 ≤ 32766 (SQLite's parameter limit).
const SQLITE_BATCH: usize = 4000;
/// Pairs per PostgreSQL `UNNEST` statement.
const PG_BATCH: usize = 50_000;
/// 48-bit id mask, as SQL text.
const ID_MASK: &str = "281474976710655";

/// The SQLite statement uses anonymous `?` placeholders: SQLite resolves named or numbered
/// ones (`$N`, `?N`) through a linear list per parameter, which makes preparing a statement
/// with 30k of them quadratic (seconds); anonymous ones are just counted. The per-batch
/// constants come first, once per statement, in a one-row subquery; each pair binds only what
/// varies.
fn sqlite_insert_sql(pairs: usize) -> String {
    let mut sql = String::with_capacity(1000 + pairs * 18);
    sql.push_str(&format!(
        "INSERT INTO peer_pairs (gid, config_id, a_node_id, b_node_id, fwd_id, rev_id, enabled, preshared_key, notes, \
         created_us, updated_us, fwd_allowed_ips, fwd_keepalive, fwd_endpoint_mode, fwd_ref_family, fwd_port_mode, \
         rev_allowed_ips, rev_keepalive, rev_endpoint_mode, rev_ref_family, rev_port_mode) \
         SELECT (k.g + v.column1) & {ID_MASK}, k.cfg, v.column2, v.column3, (k.l + 2 * v.column1) & {ID_MASK}, \
         (k.l + 2 * v.column1 + 1) & {ID_MASK}, 1, v.column8, '', k.c + v.column1, k.u, v.column4, v.column6, 'auto', \
         k.fam, 'ref_peer_listen_port', v.column5, v.column7, 'auto', k.fam, 'ref_peer_listen_port' \
         FROM (SELECT ? AS g, ? AS l, ? AS c, ? AS u, ? AS cfg, ? AS fam) k, (VALUES "
    ));
    for r in 0..pairs {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?)");
    }
    sql.push_str(") v");
    sql
}

/// Inserts many Quick Mesh pairs of one config in batches; pair `k` of `pairs` gets the ids
/// and time of [`BulkRun`].
pub async fn bulk_insert(tx: &mut Tx, config_id: &str, family: &str, run: BulkRun, pairs: &[BulkPair<'_>]) -> StoreResult<()> {
    match tx {
        Tx::Sqlite(t) => {
            // The writer connection's page cache is sized in `Db::connect`.
            let full_sql = sqlite_insert_sql(SQLITE_BATCH);
            for (n, chunk) in pairs.chunks(SQLITE_BATCH).enumerate() {
                let sql = if chunk.len() == SQLITE_BATCH { full_sql.clone() } else { sqlite_insert_sql(chunk.len()) };
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(run.group_base)
                    .bind(run.link_base)
                    .bind(run.created_base_us)
                    .bind(run.updated_us)
                    .bind(config_id)
                    .bind(family);
                for (i, p) in chunk.iter().enumerate() {
                    q = q
                        .bind((n * SQLITE_BATCH + i) as i64)
                        .bind(p.a)
                        .bind(p.b)
                        .bind(p.allowed_ab)
                        .bind(p.allowed_ba)
                        .bind(p.keepalive_ab)
                        .bind(p.keepalive_ba)
                        .bind(p.preshared_key);
                }
                q.execute(&mut **t).await?;
            }
        }
        Tx::Pg(t) => {
            for (n, chunk) in pairs.chunks(PG_BATCH).enumerate() {
                let ks: Vec<i64> = (0..chunk.len()).map(|i| (n * PG_BATCH + i) as i64).collect();
                let a: Vec<&str> = chunk.iter().map(|p| p.a).collect();
                let b: Vec<&str> = chunk.iter().map(|p| p.b).collect();
                let ab: Vec<&str> = chunk.iter().map(|p| p.allowed_ab).collect();
                let ba: Vec<&str> = chunk.iter().map(|p| p.allowed_ba).collect();
                let ka_ab: Vec<Option<i64>> = chunk.iter().map(|p| p.keepalive_ab).collect();
                let ka_ba: Vec<Option<i64>> = chunk.iter().map(|p| p.keepalive_ba).collect();
                let psk: Vec<Option<&str>> = chunk.iter().map(|p| p.preshared_key).collect();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO peer_pairs (gid, config_id, a_node_id, b_node_id, fwd_id, rev_id, enabled, preshared_key, \
                     notes, created_us, updated_us, fwd_allowed_ips, fwd_keepalive, fwd_endpoint_mode, fwd_ref_family, \
                     fwd_port_mode, rev_allowed_ips, rev_keepalive, rev_endpoint_mode, rev_ref_family, rev_port_mode) \
                     SELECT ($9 + u.k) & {ID_MASK}, $13, u.a, u.b, ($10 + 2 * u.k) & {ID_MASK}, ($10 + 2 * u.k + 1) & {ID_MASK}, \
                     TRUE, u.psk, '', $11 + u.k, $12, u.ab, u.ka_ab, 'auto', $14, 'ref_peer_listen_port', u.ba, u.ka_ba, \
                     'auto', $14, 'ref_peer_listen_port' FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], \
                     $5::text[], $6::bigint[], $7::bigint[], $8::text[]) AS u(k, a, b, ab, ba, ka_ab, ka_ba, psk)"
                )))
                .bind(&ks)
                .bind(&a)
                .bind(&b)
                .bind(&ab)
                .bind(&ba)
                .bind(&ka_ab)
                .bind(&ka_ba)
                .bind(&psk)
                .bind(run.group_base)
                .bind(run.link_base)
                .bind(run.created_base_us)
                .bind(run.updated_us)
                .bind(config_id)
                .bind(family)
                .execute(&mut **t)
                .await?;
            }
        }
    }
    Ok(())
}

/// A first group id for a run of `len` consecutive ones that sorts after every stored pair
/// (`MAX(gid)` + 1 + `jitter`), or `None` when that would not fit in the 48 bits of an id.
///
/// The pairs table is keyed by the group id. Appended at its right end, B-tree pages split by
/// moving the new row alone and stay full; a run inserted in the middle of the key range (a
/// random base below the ids of another config's mesh) splits every page in two, which made a
/// 1000-node mesh beside a 500-node one ~60 % slower to insert.
pub async fn append_base(tx: &mut Tx, len: usize, jitter: u16) -> StoreResult<Option<i64>> {
    let max: Option<i64> = on_tx!(tx, |c| sqlx::query_scalar("SELECT MAX(gid) FROM peer_pairs").fetch_one(c).await)?;
    let base = max.map_or(0, |m| m.saturating_add(1)).saturating_add(i64::from(jitter));
    let end = base.saturating_add(len as i64);
    Ok((end <= 1 << 48).then_some(base))
}

/// Node-keyed indexes a large SQLite replace drops and builds again instead of maintaining
/// pair by pair: a full mesh inserts in (A, B) order, so every pair lands somewhere else in the
/// B index (and the deletes of the old pairs scatter over both); a sort-based `CREATE INDEX`
/// writes them packed in a fraction of the time. The config index receives a Quick Mesh in
/// key order anyway and stays.
const SQLITE_REBUILT_INDEXES: [&str; 2] = ["ix_peer_pairs_a", "ix_peer_pairs_b"];

/// Whether a replace rebuilds [`SQLITE_REBUILT_INDEXES`]: the build sorts every pair of the
/// table, so only when this config's deleted and inserted pairs outweigh twice the pairs of the
/// other configs.
fn sqlite_rebuilds(deleted: u64, inserted: u64, others: u64) -> bool {
    others.saturating_mul(2) < deleted.saturating_add(inserted)
}

/// Replaces every pair of a config with Quick Mesh pairs (one transaction, the caller's):
/// deletes the old pairs, inserts `pairs`; returns how many rows (two per pair) were deleted.
/// The caller has checked the nodes with [`nodes_in_config`] in the same transaction.
///
/// On SQLite a replace that dominates the table drops the node-keyed indexes first and creates
/// them again from their stored definitions after the insert; when the config is the only one
/// with pairs, the old pairs go with one unqualified `DELETE` (SQLite then frees the table's
/// pages instead of deleting row by row). DDL is transactional: a failure (or a rollback)
/// restores the indexes with the old pairs, and readers on the WAL keep their snapshot.
/// PostgreSQL maintains its indexes.
pub async fn replace_for_config(
    tx: &mut Tx,
    config_id: &str,
    family: &str,
    run: BulkRun,
    pairs: &[BulkPair<'_>],
) -> StoreResult<u64> {
    let Tx::Sqlite(t) = tx else {
        let deleted = delete_for_config(tx, config_id).await?;
        bulk_insert(tx, config_id, family, run, pairs).await?;
        return Ok(deleted);
    };
    let (mine, total): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM peer_pairs WHERE config_id = ?), (SELECT COUNT(*) FROM peer_pairs)",
    )
    .bind(config_id)
    .fetch_one(&mut **t)
    .await?;
    let (mine, total) = (mine.max(0) as u64, total.max(0) as u64);
    let others = total.saturating_sub(mine);
    let mut rebuild: Vec<String> = Vec::new();
    if sqlite_rebuilds(mine, pairs.len() as u64, others) {
        let defs: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'peer_pairs' \
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
    let deleted = if others == 0 {
        sqlx::query("DELETE FROM peer_pairs").execute(&mut **t).await?;
        mine * 2
    } else {
        delete_for_config(tx, config_id).await?
    };
    bulk_insert(tx, config_id, family, run, pairs).await?;
    if let Tx::Sqlite(t) = tx {
        for sql in rebuild {
            // The stored definition from the migrations, as read above.
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **t).await?;
        }
    }
    Ok(deleted)
}

/// The columns topology validation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// One pair as topology reads it (both directions' endpoint settings).
struct TopoPair {
    gid: i64,
    a: String,
    b: String,
    enabled: bool,
    fwd: (String, Option<String>, Option<String>, String, Option<i64>),
    rev: (String, Option<String>, Option<String>, String, Option<i64>),
}

impl Packed for TopoPair {
    /// Columns in [`TOPO_SELECT`] order.
    fn read<'de, A: SeqAccess<'de>>(s: &mut A) -> Result<TopoPair, A::Error> {
        Ok(TopoPair {
            gid: col(s)?,
            a: col(s)?,
            b: col(s)?,
            enabled: flag(s)?,
            fwd: (col(s)?, col(s)?, col(s)?, col(s)?, col(s)?),
            rev: (col(s)?, col(s)?, col(s)?, col(s)?, col(s)?),
        })
    }
}

impl TopoPair {
    fn rows(self) -> [TopoRow; 2] {
        let group = util::id_text(GROUP_PREFIX, self.gid);
        let row = |local: String, peer: String, direction: &str, e: (String, Option<String>, Option<String>, String, Option<i64>)| TopoRow {
            link_group_id: group.clone(),
            local_node_id: local,
            peer_node_id: peer,
            direction: direction.to_string(),
            enabled: self.enabled,
            endpoint_mode: e.0,
            endpoint_ref_family: e.1,
            endpoint_manual_host: e.2,
            endpoint_port_mode: e.3,
            endpoint_manual_port: e.4,
        };
        [row(self.a.clone(), self.b.clone(), "forward", self.fwd), row(self.b, self.a, "reverse", self.rev)]
    }
}

/// The pair columns of [`TopoPair`].
const TOPO_COLS: &str = "gid, a_node_id, b_node_id, enabled, fwd_endpoint_mode, fwd_ref_family, fwd_manual_host, \
    fwd_port_mode, fwd_manual_port, rev_endpoint_mode, rev_ref_family, rev_manual_host, rev_port_mode, rev_manual_port";

/// Light rows of a config in link order. SQLite reads the pairs packed into one value (a full
/// mesh of 1000 nodes is half a million pairs; row by row through the driver cost ~10 µs each).
pub async fn topo_rows(db: &Db, config_id: &str) -> StoreResult<Vec<TopoRow>> {
    let pairs: Vec<TopoPair> = match db {
        Db::Sqlite { read, .. } => {
            unpack(
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT json_group_array(json_array({TOPO_COLS})) FROM (SELECT {TOPO_COLS} FROM peer_pairs \
                     WHERE config_id = ? ORDER BY created_us, gid)"
                )))
                .bind(config_id)
                .fetch_one(read)
                .await?,
            )?
        }
        Db::Pg(p) => {
            type T = (i64, String, String, bool, String, Option<String>, Option<String>, String, Option<i64>, String, Option<String>, Option<String>, String, Option<i64>);
            let rows: Vec<T> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {TOPO_COLS} FROM peer_pairs WHERE config_id = $1 ORDER BY created_us, gid"
            )))
            .bind(config_id)
            .fetch_all(p)
            .await?;
            rows.into_iter()
                .map(|r| TopoPair { gid: r.0, a: r.1, b: r.2, enabled: r.3, fwd: (r.4, r.5, r.6, r.7, r.8), rev: (r.9, r.10, r.11, r.12, r.13) })
                .collect()
        }
    };
    Ok(pairs.into_iter().flat_map(TopoPair::rows).collect())
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

/// One arm of the render query: the pairs where the node is `$local` (`a` forward, `b`
/// reverse), joined with the peer on the other side.
macro_rules! render_arm {
    ($d:literal, $local:literal, $peer:literal) => {
        concat!(
            "SELECT l.", $local, " AS local_node_id, l.", $d, "_allowed_ips AS allowed_ips, l.", $d,
            "_keepalive AS persistent_keepalive, l.preshared_key, l.", $d, "_endpoint_mode AS endpoint_mode, l.", $d,
            "_ref_family AS endpoint_ref_family, l.", $d, "_manual_host AS endpoint_manual_host, l.", $d,
            "_port_mode AS endpoint_port_mode, l.", $d, "_manual_port AS endpoint_manual_port, p.name AS peer_name, \
             p.public_key AS peer_public_key, p.ipv4_address AS peer_ipv4_address, p.ipv6_address AS peer_ipv6_address, \
             p.listen_port AS peer_listen_port, l.created_us AS s_us, l.gid AS s_gid FROM peer_pairs l JOIN nodes p ON p.id = l.",
            $peer, " WHERE l.", $local, " = $1 AND l.enabled = $2 AND p.enabled = $2"
        )
    };
}

/// The render rows with their sort keys, one per `[Peer]`, in link order (a node is the local
/// side of a pair's forward row when it is A, of its reverse row when it is B).
macro_rules! render_select {
    () => {
        concat!(render_arm!("fwd", "a_node_id", "b_node_id"), " UNION ALL ", render_arm!("rev", "b_node_id", "a_node_id"), " ORDER BY s_us, s_gid")
    };
}

/// The [`RenderRow`] columns.
macro_rules! render_cols {
    () => {
        "local_node_id, allowed_ips, persistent_keepalive, preshared_key, endpoint_mode, endpoint_ref_family, \
         endpoint_manual_host, endpoint_port_mode, endpoint_manual_port, peer_name, peer_public_key, peer_ipv4_address, \
         peer_ipv6_address, peer_listen_port"
    };
}

/// PostgreSQL: one row per `[Peer]`.
const RENDER_SQL: &str = concat!("SELECT ", render_cols!(), " FROM (", render_select!(), ") r");

/// SQLite: the same rows packed into one value (see [`super::packed`]), in [`RenderRow`] field
/// order. The aggregate reads the ordered subquery in its order: SQLite keeps a FROM
/// subquery's ORDER BY when the outer query aggregates with anything but count/min/max;
/// `render_rows_packed_keep_order_and_values` checks it.
const RENDER_PACKED_SQL: &str =
    concat!("SELECT json_group_array(json_array(", render_cols!(), ")) FROM (", render_select!(), ")");

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
        assert!(SQLITE_CONST_PARAMS + SQLITE_BATCH * SQLITE_PAIR_PARAMS <= 32_766);
        let sql = sqlite_insert_sql(2);
        assert_eq!(sql.matches('?').count(), SQLITE_CONST_PARAMS + 2 * SQLITE_PAIR_PARAMS);
        assert!(sql.ends_with("(VALUES (?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?)) v"), "{sql}");
    }

    const T0: &str = "2026-01-01T00:00:00.000000+00:00";

    /// A fresh SQLite database (in a temp dir kept alive by the returned guard) holding configs
    /// `cfg_1` and `cfg_2`.
    async fn sqlite_with_config() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&super::super::DbTarget::Sqlite(dir.path().join("t.db"))).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        for (id, name) in [("cfg_1", "c1"), ("cfg_2", "c2")] {
            on_tx!(&mut tx, |c| sqlx::query("INSERT INTO configs (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)")
                .bind(id)
                .bind(name)
                .bind(T0)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))
            .unwrap();
        }
        tx.commit().await.unwrap();
        (dir, db)
    }

    /// The peer_pairs index definitions as the writer connection sees them.
    async fn index_sql(db: &Db) -> Vec<(String, String)> {
        let mut tx = db.begin().await.unwrap();
        let r = on_tx!(&mut tx, |c| sqlx::query_as::<_, (String, String)>(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'peer_pairs' \
             AND sql IS NOT NULL ORDER BY name"
        )
        .fetch_all(c)
        .await)
        .unwrap();
        tx.rollback().await.unwrap();
        r
    }

    async fn add_node(tx: &mut Tx, id: &str, config_id: &str) {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO nodes (id, config_id, name, public_key, private_key, created_at, updated_at) \
             VALUES ($1, $2, $1, 'pk', 'sk', $3, $3)"
        )
        .bind(id)
        .bind(config_id)
        .bind(T0)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
        .unwrap();
    }

    fn pair<'a>(a: &'a str, b: &'a str) -> BulkPair<'a> {
        BulkPair {
            a,
            b,
            allowed_ab: "10.0.0.2/32",
            allowed_ba: "10.0.0.1/32",
            keepalive_ab: Some(25),
            keepalive_ba: None,
            preshared_key: Some("psk"),
        }
    }

    fn run(group_base: i64) -> BulkRun {
        BulkRun { group_base, link_base: 0x100, created_base_us: 1_000_000, updated_us: 2_000_000 }
    }

    /// A SQLite replace that drops and rebuilds the node-keyed indexes: on success they are
    /// back with the same definitions and the view shows both directions of each pair; a
    /// failure after the drop (a group id taken by another config) rolls back to the old pairs
    /// and the old indexes; nodes outside the config are refused before anything is written.
    #[tokio::test]
    async fn sqlite_replace_rebuilds_indexes_and_a_failure_restores_them() {
        let (_dir, db) = sqlite_with_config().await;
        let mut tx = db.begin().await.unwrap();
        for n in ["node_a", "node_b", "node_c"] {
            add_node(&mut tx, n, "cfg_1").await;
        }
        add_node(&mut tx, "node_x", "cfg_2").await;
        add_node(&mut tx, "node_y", "cfg_2").await;
        tx.commit().await.unwrap();
        let before = index_sql(&db).await;
        assert!(before.iter().any(|(n, _)| n == "ix_peer_pairs_b"), "{before:?}");

        let mut tx = db.begin().await.unwrap();
        let nodes = ["node_a", "node_b", "node_c"];
        assert!(nodes_in_config(&mut tx, "cfg_1", &nodes).await.unwrap());
        let pairs = [pair("node_a", "node_b"), pair("node_a", "node_c")];
        assert_eq!(replace_for_config(&mut tx, "cfg_1", "ipv4", run(1), &pairs).await.unwrap(), 0);
        tx.commit().await.unwrap();
        assert_eq!(index_sql(&db).await, before);
        let rows = list_for_config(&db, "cfg_1").await.unwrap();
        let seen: Vec<(&str, &str, &str, &str, &str)> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.link_group_id.as_str(), r.direction.as_str(), r.local_node_id.as_str(), r.peer_node_id.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("plink_000000000100", "group_000000000001", "forward", "node_a", "node_b"),
                ("plink_000000000101", "group_000000000001", "reverse", "node_b", "node_a"),
                ("plink_000000000102", "group_000000000002", "forward", "node_a", "node_c"),
                ("plink_000000000103", "group_000000000002", "reverse", "node_c", "node_a"),
            ]
        );
        assert_eq!(rows[0].created_at, "1970-01-01T00:00:01.000000+00:00");
        assert_eq!(rows[3].created_at, "1970-01-01T00:00:01.000001+00:00");
        assert_eq!(rows[3].updated_at, "1970-01-01T00:00:02.000000+00:00");
        assert_eq!((rows[0].persistent_keepalive, rows[1].persistent_keepalive), (Some(25), None));
        assert_eq!((rows[0].allowed_ips.as_str(), rows[1].allowed_ips.as_str()), ("10.0.0.2/32", "10.0.0.1/32"));
        assert_eq!(rows[1].preshared_key.as_deref(), Some("psk"));
        assert_eq!(rows[1].endpoint_ref_family.as_deref(), Some("ipv4"));

        // The next run appends after the highest group id (2), when it fits in 48 bits.
        let mut tx = db.begin().await.unwrap();
        assert_eq!(append_base(&mut tx, 10, 5).await.unwrap(), Some(8));
        assert_eq!(append_base(&mut tx, (1 << 48) - 3, 0).await.unwrap(), Some(3));
        assert_eq!(append_base(&mut tx, (1 << 48) - 2, 0).await.unwrap(), None);
        tx.rollback().await.unwrap();

        // cfg_2 holds group 3; a cfg_1 replace from base 2 collides on its second pair.
        let mut tx = db.begin().await.unwrap();
        replace_for_config(&mut tx, "cfg_2", "ipv4", run(3), &[pair("node_x", "node_y")]).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let err = replace_for_config(&mut tx, "cfg_1", "ipv4", run(2), &pairs).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        tx.rollback().await.unwrap();
        assert_eq!(index_sql(&db).await, before);
        let ids: Vec<String> = list_for_config(&db, "cfg_1").await.unwrap().into_iter().map(|r| r.link_group_id).collect();
        assert_eq!(ids, ["group_000000000001", "group_000000000001", "group_000000000002", "group_000000000002"]);

        // The node check: a node of another config or a missing one fails it.
        let mut tx = db.begin().await.unwrap();
        assert!(nodes_in_config(&mut tx, "cfg_1", &nodes).await.unwrap());
        assert!(nodes_in_config(&mut tx, "cfg_1", &["node_a", "node_a", "node_b"]).await.unwrap());
        assert!(!nodes_in_config(&mut tx, "cfg_1", &["node_a", "node_x"]).await.unwrap());
        assert!(!nodes_in_config(&mut tx, "cfg_1", &["node_a", "node_gone"]).await.unwrap());
        tx.rollback().await.unwrap();

        // Deleting a node deletes its pairs (trigger), also through a config delete.
        let mut tx = db.begin().await.unwrap();
        on_tx!(&mut tx, |c| sqlx::query("DELETE FROM nodes WHERE id = 'node_c'").execute(c).await.map(|r| r.rows_affected())).unwrap();
        on_tx!(&mut tx, |c| sqlx::query("DELETE FROM configs WHERE id = 'cfg_2'").execute(c).await.map(|r| r.rows_affected())).unwrap();
        tx.commit().await.unwrap();
        let left: Vec<String> = list_for_config(&db, "cfg_1").await.unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(left, ["plink_000000000100", "plink_000000000101"]);
        assert!(list_for_config(&db, "cfg_2").await.unwrap().is_empty());
    }

    /// The pair migration converts stored directed rows: a forward row and its reverse row
    /// become one pair, read back through the view with the same ids, values and order (PSK
    /// of either row, the forward row's timestamps); a row without its other direction or
    /// with an id WFM never generates is dropped.
    #[tokio::test]
    async fn sqlite_pair_migration_converts_directed_rows() {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        use std::str::FromStr;
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", dir.path().join("m.db").display()))
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap();
        let all = sqlx::migrate!("../migrations/sqlite");
        let mut before = sqlx::migrate!("../migrations/sqlite");
        before.migrations = all.migrations.iter().filter(|m| m.version < 20261201160000).cloned().collect::<Vec<_>>().into();
        before.run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO configs (id, name, created_at, updated_at) VALUES ('cfg_1', 'c', 't', 't')",
            "INSERT INTO nodes (id, config_id, name, public_key, private_key, created_at, updated_at) VALUES \
             ('node_a', 'cfg_1', 'a', 'p', 's', 't', 't'), ('node_b', 'cfg_1', 'b', 'p', 's', 't', 't'), \
             ('node_c', 'cfg_1', 'c', 'p', 's', 't', 't')",
            "INSERT INTO peer_links (id, config_id, local_node_id, peer_node_id, link_group_id, direction, enabled, \
             allowed_ips, persistent_keepalive, preshared_key, endpoint_mode, endpoint_ref_family, endpoint_manual_host, \
             endpoint_port_mode, endpoint_manual_port, notes, created_at, updated_at) VALUES \
             ('plink_00000000abcd', 'cfg_1', 'node_a', 'node_b', 'group_0123456789ab', 'forward', 1, '10.0.0.2/32', 25, \
              NULL, 'auto', 'ipv6', NULL, 'ref_peer_listen_port', NULL, 'n', '2025-01-02T03:04:05.123456+00:00', \
              '2025-01-03T00:00:00.000001+00:00'), \
             ('plink_ffffffffffff', 'cfg_1', 'node_b', 'node_a', 'group_0123456789ab', 'reverse', 1, '10.0.0.1/32', NULL, \
              'psk=', 'manual', NULL, 'h.example', 'manual', 51000, 'n', '2025-01-02T03:04:05.123457+00:00', \
              '2025-01-03T00:00:00.000001+00:00'), \
             ('plink_000000000001', 'cfg_1', 'node_a', 'node_c', 'group_000000000001', 'forward', 0, '10.0.0.3/32', NULL, \
              NULL, 'none', NULL, NULL, 'ref_peer_listen_port', NULL, '', '2025-01-01T00:00:00.000000+00:00', \
              '2025-01-01T00:00:00.000000+00:00'), \
             ('plink_000000000002', 'cfg_1', 'node_c', 'node_a', 'group_000000000001', 'reverse', 0, '10.0.0.1/32', NULL, \
              NULL, 'none', NULL, NULL, 'ref_peer_listen_port', NULL, '', '2025-01-01T00:00:00.000001+00:00', \
              '2025-01-01T00:00:00.000000+00:00'), \
             ('plink_000000000003', 'cfg_1', 'node_b', 'node_c', 'group_000000000002', 'forward', 1, '10.0.0.3/32', NULL, \
              NULL, 'auto', 'ipv4', NULL, 'ref_peer_listen_port', NULL, '', '2025-01-01T00:00:00.000000+00:00', \
              '2025-01-01T00:00:00.000000+00:00'), \
             ('odd', 'cfg_1', 'node_c', 'node_b', 'group_000000000003', 'forward', 1, '10.0.0.2/32', NULL, \
              NULL, 'auto', 'ipv4', NULL, 'ref_peer_listen_port', NULL, '', '2025-01-01T00:00:00.000000+00:00', \
              '2025-01-01T00:00:00.000000+00:00')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        all.run(&pool).await.unwrap();
        let rows: Vec<LinkRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM peer_links ORDER BY {LINK_ORDER}")))
            .fetch_all(&pool)
            .await
            .unwrap();
        let ids: Vec<(&str, &str, &str, bool)> =
            rows.iter().map(|r| (r.id.as_str(), r.link_group_id.as_str(), r.direction.as_str(), r.enabled)).collect();
        assert_eq!(
            ids,
            [
                ("plink_000000000001", "group_000000000001", "forward", false),
                ("plink_000000000002", "group_000000000001", "reverse", false),
                ("plink_00000000abcd", "group_0123456789ab", "forward", true),
                ("plink_ffffffffffff", "group_0123456789ab", "reverse", true),
            ]
        );
        let (f, r) = (&rows[2], &rows[3]);
        assert_eq!((f.local_node_id.as_str(), f.peer_node_id.as_str()), ("node_a", "node_b"));
        assert_eq!((r.local_node_id.as_str(), r.peer_node_id.as_str()), ("node_b", "node_a"));
        assert_eq!((f.persistent_keepalive, r.persistent_keepalive), (Some(25), None));
        assert_eq!((f.preshared_key.as_deref(), r.preshared_key.as_deref()), (Some("psk="), Some("psk=")));
        assert_eq!((f.endpoint_ref_family.as_deref(), r.endpoint_mode.as_str()), (Some("ipv6"), "manual"));
        assert_eq!((r.endpoint_manual_host.as_deref(), r.endpoint_port_mode.as_str(), r.endpoint_manual_port), (Some("h.example"), "manual", Some(51000)));
        assert_eq!((f.created_at.as_str(), r.created_at.as_str()), ("2025-01-02T03:04:05.123456+00:00", "2025-01-02T03:04:05.123456+00:00"));
        assert_eq!(r.updated_at, "2025-01-03T00:00:00.000001+00:00");
        assert_eq!((f.notes.as_str(), f.config_id.as_str()), ("n", "cfg_1"));
    }

    /// SQLite reads the render rows packed: same rows, values and order as the row query
    /// (pairs inserted out of order, a `created_at` tie broken by the pair; the node on either
    /// side of a pair; disabled pairs and peers and other nodes' pairs left out; text that looks
    /// like JSON, NULLs and a 2^53+1 integer).
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
        // (gid, local, peer, local is A, enabled, created_us, allowed_ips, keepalive, psk, manual host, manual port):
        // the local side's direction gets these values, the other direction a decoy.
        type Opt = Option<&'static str>;
        type L = (i64, &'static str, &'static str, bool, bool, i64, &'static str, Option<i64>, Opt, Opt, Option<i64>);
        let links: [L; 7] = [
            (6, "node_l", "node_p5", true, true, 4, "{\"a\":1}", Some(9_007_199_254_740_993), None, Some("null"), Some(0)),
            (3, "node_l", "node_p1", false, true, 3, "10.0.0.1/32", Some(25), Some("psk\n\"c\""), None, None),
            (1, "node_l", "node_p3", true, true, 3, "10.0.0.3/32, fd00::3/128", None, None, Some("h.example"), Some(-1)),
            (5, "node_l", "node_p4", true, true, 1, "10.0.0.4/32", None, None, None, None),
            (4, "node_l", "node_p2", false, false, 1, "10.0.0.2/32", None, None, None, None),
            (7, "node_o", "node_p1", true, true, 1, "10.0.0.9/32", None, None, None, None),
            (2, "node_l", "node_p2", true, true, 2, "", Some(i64::MIN), Some(""), Some(""), Some(i64::MAX)),
        ];
        for (gid, local, peer, local_is_a, enabled, at, ips, ka, psk, host, port) in links {
            let (a, b, mine, other) = if local_is_a { (local, peer, "fwd", "rev") } else { (peer, local, "rev", "fwd") };
            on_tx!(&mut tx, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO peer_pairs (gid, config_id, a_node_id, b_node_id, fwd_id, rev_id, enabled, preshared_key, \
                 created_us, updated_us, {mine}_allowed_ips, {mine}_keepalive, {mine}_manual_host, {mine}_manual_port, \
                 {other}_allowed_ips, {other}_keepalive, {other}_manual_host, {other}_manual_port) \
                 VALUES ($1, 'cfg_1', $2, $3, $1 * 2, $1 * 2 + 1, $4, $5, $6, $6, $7, $8, $9, $10, 'decoy', 7, 'decoy', 7)"
            )))
            .bind(gid)
            .bind(a)
            .bind(b)
            .bind(enabled)
            .bind(psk)
            .bind(at)
            .bind(ips)
            .bind(ka)
            .bind(host)
            .bind(port)
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
        // The other side of a pair reads its own direction (the decoy values), once: its
        // disabled pair stays out.
        let other = render_rows_tx(&mut tx, "node_p2").await.unwrap();
        let seen: Vec<(&str, &str, Option<i64>, &str)> =
            other.iter().map(|r| (r.local_node_id.as_str(), r.allowed_ips.as_str(), r.persistent_keepalive, r.peer_name.as_str())).collect();
        assert_eq!(seen, [("node_p2", "decoy", Some(7), "node_l_name")]);
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
