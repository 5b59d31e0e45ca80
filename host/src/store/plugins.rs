//! Plugin data: plugin-owned records (`plugin_records`), stored files (`stored_files`), and the
//! read-only mesh views served to plugins through their `mesh-read` capability.

use serde_json::{Value, json};

use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};
use wfm_plugin_runtime::{Effects, RecordRow, RecordWrite};

type RecordTuple = (String, String, Option<String>, String, String, String);

fn record(r: RecordTuple) -> RecordRow {
    RecordRow { collection: r.0, key: r.1, config_id: r.2, value_json: r.3, created_at: r.4, updated_at: r.5 }
}

/// One committed record of a plugin.
pub async fn get_record(db: &Db, plugin_id: &str, collection: &str, key: &str) -> StoreResult<Option<RecordRow>> {
    let row: Option<RecordTuple> = on_pool!(db, |c| sqlx::query_as(
        "SELECT collection, record_key, config_id, value_json, created_at, updated_at FROM plugin_records \
         WHERE plugin_id = $1 AND collection = $2 AND record_key = $3"
    )
    .bind(plugin_id)
    .bind(collection)
    .bind(key)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(record))
}

/// Committed records of a plugin's collection, optionally of one config, by key.
pub async fn list_records(
    db: &Db,
    plugin_id: &str,
    collection: &str,
    config_id: Option<&str>,
) -> StoreResult<Vec<RecordRow>> {
    let rows: Vec<RecordTuple> = on_pool!(db, |c| sqlx::query_as(
        "SELECT collection, record_key, config_id, value_json, created_at, updated_at FROM plugin_records \
         WHERE plugin_id = $1 AND collection = $2 AND ($3 IS NULL OR config_id = $3) ORDER BY record_key"
    )
    .bind(plugin_id)
    .bind(collection)
    .bind(config_id)
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(record).collect())
}

/// Applies a successful call's record writes and files in the caller's transaction.
pub async fn apply_effects(tx: &mut Tx, plugin_id: &str, effects: &Effects) -> StoreResult<()> {
    let now = crate::util::now_iso();
    for w in &effects.records {
        match w {
            RecordWrite::Put { collection, key, config_id, value_json } => {
                on_tx!(tx, |c| sqlx::query(
                    "INSERT INTO plugin_records (plugin_id, collection, record_key, config_id, value_json, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) \
                     ON CONFLICT (plugin_id, collection, record_key) DO UPDATE SET \
                     config_id = excluded.config_id, value_json = excluded.value_json, updated_at = excluded.updated_at"
                )
                .bind(plugin_id)
                .bind(collection)
                .bind(key)
                .bind(config_id.as_deref())
                .bind(value_json)
                .bind(&now)
                .execute(c)
                .await
                .map(|_| ()))?;
            }
            RecordWrite::Delete { collection, key } => {
                on_tx!(tx, |c| sqlx::query(
                    "DELETE FROM plugin_records WHERE plugin_id = $1 AND collection = $2 AND record_key = $3"
                )
                .bind(plugin_id)
                .bind(collection)
                .bind(key)
                .execute(c)
                .await
                .map(|_| ()))?;
            }
        }
    }
    for f in &effects.files {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO stored_files (id, kind, owner, config_id, filename, content_type, size, sha256, content, meta_json, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )
        .bind(&f.id)
        .bind(&f.kind)
        .bind(format!("plugin:{plugin_id}"))
        .bind(f.config_id.as_deref())
        .bind(&f.filename)
        .bind(&f.content_type)
        .bind(f.content.len() as i64)
        .bind(&f.sha256)
        .bind(&f.content)
        .bind(&f.meta_json)
        .bind(&now)
        .execute(c)
        .await
        .map(|_| ()))?;
    }
    Ok(())
}

/// A stored file with its bytes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredFile {
    /// `file_…`.
    pub id: String,
    /// `<owner>:<kind>`.
    pub kind: String,
    /// Attachment name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Bytes.
    pub content: Vec<u8>,
}

/// One stored file.
pub async fn get_file(db: &Db, id: &str) -> StoreResult<Option<StoredFile>> {
    let f: Option<StoredFile> = on_pool!(db, |c| sqlx::query_as(
        "SELECT id, kind, filename, content_type, sha256, content FROM stored_files WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// Mesh views for plugins (`mesh-read`). The main fields of each entity; the SDK keeps unknown
// fields, so later additions reach plugins without an ABI change.
// ---------------------------------------------------------------------------------------------

type ConfigTuple = (String, String, String, bool, String, i64, String, Option<String>, String, String, String);

fn config_json(r: ConfigTuple) -> Value {
    json!({
        "id": r.0, "name": r.1, "description": r.2, "enabled": r.3, "virtual_subnet": r.4,
        "default_listen_port": r.5, "tunnel_protocol": r.6, "awg_version": r.7,
        "awg_options": serde_json::from_str::<Value>(&r.8).unwrap_or_else(|_| json!({})),
        "created_at": r.9, "updated_at": r.10,
    })
}

const CONFIG_COLS: &str = "SELECT id, name, description, enabled, virtual_subnet, default_listen_port, tunnel_protocol, \
     awg_version, awg_options_json, created_at, updated_at FROM configs";

/// Every config, newest first.
pub async fn mesh_configs(db: &Db) -> StoreResult<Vec<Value>> {
    let rows: Vec<ConfigTuple> = on_pool!(db, |c| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CONFIG_COLS} ORDER BY created_at DESC"
    )))
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(config_json).collect())
}

/// One config.
pub async fn mesh_config(db: &Db, id: &str) -> StoreResult<Option<Value>> {
    let row: Option<ConfigTuple> = on_pool!(db, |c| sqlx::query_as(sqlx::AssertSqlSafe(format!("{CONFIG_COLS} WHERE id = $1")))
        .bind(id)
        .fetch_optional(c)
        .await)?;
    Ok(row.map(config_json))
}

type NodeTuple = (String, String, String, Option<String>, Option<String>, Option<i64>, Option<String>, bool, String, String, String);

fn node_json(r: NodeTuple) -> Value {
    json!({
        "id": r.0, "config_id": r.1, "name": r.2, "ipv4_address": r.3, "ipv6_address": r.4,
        "listen_port": r.5, "virtual_ip": r.6, "enabled": r.7, "node_type": r.8,
        "public_key": r.9, "created_at": r.10,
    })
}

const NODE_COLS: &str = "SELECT id, config_id, name, ipv4_address, ipv6_address, listen_port, virtual_ip, enabled, \
     node_type, public_key, created_at FROM nodes";

/// The nodes of a config, creation order.
pub async fn mesh_nodes(db: &Db, config_id: &str) -> StoreResult<Vec<Value>> {
    let rows: Vec<NodeTuple> = on_pool!(db, |c| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{NODE_COLS} WHERE config_id = $1 ORDER BY created_at, id"
    )))
    .bind(config_id)
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(node_json).collect())
}

/// One node.
pub async fn mesh_node(db: &Db, id: &str) -> StoreResult<Option<Value>> {
    let row: Option<NodeTuple> = on_pool!(db, |c| sqlx::query_as(sqlx::AssertSqlSafe(format!("{NODE_COLS} WHERE id = $1")))
        .bind(id)
        .fetch_optional(c)
        .await)?;
    Ok(row.map(node_json))
}

/// The peer-link rows of a config, creation order.
pub async fn mesh_links(db: &Db, config_id: &str) -> StoreResult<Vec<Value>> {
    type LinkTuple = (String, String, String, String, String, bool, String, Option<i64>, String, String);
    let rows: Vec<LinkTuple> = on_pool!(db, |c| sqlx::query_as(
        "SELECT id, local_node_id, peer_node_id, link_group_id, direction, enabled, allowed_ips, \
         persistent_keepalive, endpoint_mode, created_at FROM peer_links WHERE config_id = $1 ORDER BY sort_us, pair_gid, sort_dir"
    )
    .bind(config_id)
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.0, "config_id": config_id, "local_node_id": r.1, "peer_node_id": r.2, "link_group_id": r.3,
                "direction": r.4, "enabled": r.5, "allowed_ips": r.6, "persistent_keepalive": r.7,
                "endpoint_mode": r.8, "created_at": r.9,
            })
        })
        .collect())
}

/// A node's rendered (desired) config: `(node name, text, sha256)`.
pub async fn rendered_config(db: &Db, node_id: &str) -> StoreResult<Option<(String, String, String)>> {
    let row: Option<(String, String, String)> = on_pool!(db, |c| sqlx::query_as(
        "SELECT n.name, s.desired_text, s.desired_sha256 FROM nodes n \
         JOIN node_config_state s ON s.node_id = n.id WHERE n.id = $1"
    )
    .bind(node_id)
    .fetch_optional(c)
    .await)?;
    Ok(row)
}
