//! `node_client_state`: binding, MQTT credentials and presence of dynamic nodes (spec 03
//! §2, §6), plus the node/config facts the MQTT side needs (read from `nodes`/`configs`).

use serde::Serialize;

use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};

/// One client-state row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ClientState {
    pub node_id: String,
    pub config_id: String,
    pub client_initialized: bool,
    pub client_platform: String,
    pub client_version: String,
    pub client_hostname: String,
    pub mqtt_username: String,
    pub mqtt_client_id: String,
    #[serde(skip)]
    pub mqtt_password: String,
    #[serde(skip)]
    pub bind_token_hash: Option<String>,
    #[serde(skip)]
    pub bind_token_expires_at: Option<String>,
    #[serde(skip)]
    pub bind_token_used_at: Option<String>,
    pub client_presence_state: String,
    pub boot_id: String,
    pub session_id: String,
    pub last_heartbeat_at: Option<String>,
    pub last_detect_ack_at: Option<String>,
    pub last_reachable_at: Option<String>,
    pub last_offline_at: Option<String>,
    pub last_will_at: Option<String>,
    pub last_event: String,
    pub last_event_at: Option<String>,
}

const COLS: &str = "node_id, config_id, client_initialized, client_platform, client_version, client_hostname, \
    mqtt_username, mqtt_client_id, mqtt_password, bind_token_hash, bind_token_expires_at, bind_token_used_at, \
    client_presence_state, boot_id, session_id, last_heartbeat_at, last_detect_ack_at, last_reachable_at, \
    last_offline_at, last_will_at, last_event, last_event_at";

/// Node and config facts for the MQTT side.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeFacts {
    pub node_id: String,
    pub config_id: String,
    pub node_name: String,
    pub node_type: String,
    pub node_enabled: bool,
    pub config_name: String,
    pub config_enabled: bool,
    pub tunnel_protocol: String,
    pub awg_version: Option<String>,
}

impl NodeFacts {
    /// Dynamic node.
    pub fn is_dynamic(&self) -> bool {
        self.node_type == "dynamic"
    }
}

macro_rules! facts_select {
    () => {
        "SELECT n.id AS node_id, n.config_id AS config_id, n.name AS node_name, n.node_type AS node_type, \
         n.enabled AS node_enabled, c.name AS config_name, c.enabled AS config_enabled, c.tunnel_protocol AS tunnel_protocol, \
         c.awg_version AS awg_version"
    };
}
const FACTS_SELECT: &str = facts_select!();
const FACTS: &str = concat!(facts_select!(), " FROM nodes n JOIN configs c ON c.id = n.config_id");

/// Facts of one node (`None` when the node or its config is gone).
pub async fn node_facts(db: &Db, node_id: &str) -> StoreResult<Option<NodeFacts>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, NodeFacts>(sqlx::AssertSqlSafe(format!("{FACTS} WHERE n.id = $1")))
        .bind(node_id)
        .fetch_optional(c)
        .await)?)
}

/// Facts of one node inside a transaction.
pub async fn node_facts_tx(tx: &mut Tx, node_id: &str) -> StoreResult<Option<NodeFacts>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, NodeFacts>(sqlx::AssertSqlSafe(format!("{FACTS} WHERE n.id = $1")))
        .bind(node_id)
        .fetch_optional(c)
        .await)?)
}

/// Facts of every node of a config.
pub async fn config_node_facts(db: &Db, config_id: &str) -> StoreResult<Vec<NodeFacts>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, NodeFacts>(sqlx::AssertSqlSafe(format!(
        "{FACTS} WHERE n.config_id = $1 ORDER BY n.created_at, n.id"
    )))
    .bind(config_id)
    .fetch_all(c)
    .await)?)
}

/// Facts of the nodes of a config that auto-sync would stage now: enabled, `auto_sync`, with a
/// desired config that differs from the staged one. Found from the partial index of due state
/// rows (`ix_node_config_state_due`), so a config costs its due nodes, not a step per node.
pub async fn auto_sync_due(db: &Db, config_id: &str) -> StoreResult<Vec<NodeFacts>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, NodeFacts>(sqlx::AssertSqlSafe(format!(
        "{FACTS_SELECT} FROM node_config_state s JOIN nodes n ON n.id = s.node_id JOIN configs c ON c.id = n.config_id \
         WHERE s.config_id = $1 AND s.desired_sha256 <> '' AND s.desired_sha256 <> s.staged_sha256 \
         AND n.enabled = $2 AND n.auto_sync = $2 ORDER BY n.created_at, n.id"
    )))
    .bind(config_id)
    .bind(true)
    .fetch_all(c)
    .await)?)
}

/// Facts of the nodes of a config whose staged config awaits a push (spec 03 §8.5 pending
/// push): enabled dynamic nodes of an enabled config, bound, online, with a staged config that
/// is not the confirmed one. One query for the config, not three reads per node.
pub async fn push_candidates(db: &Db, config_id: &str) -> StoreResult<Vec<NodeFacts>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, NodeFacts>(sqlx::AssertSqlSafe(format!(
        "{FACTS} JOIN node_client_state cs ON cs.node_id = n.id \
         JOIN endpoint_runtime_status r ON r.node_id = n.id \
         JOIN node_config_state s ON s.node_id = n.id \
         WHERE n.config_id = $1 AND n.node_type = 'dynamic' AND n.enabled = $2 AND c.enabled = $2 \
         AND cs.client_initialized = $2 AND r.online = $2 \
         AND s.staged_sha256 <> '' AND s.staged_sha256 <> s.confirmed_sha256 \
         ORDER BY n.created_at, n.id"
    )))
    .bind(config_id)
    .bind(true)
    .fetch_all(c)
    .await)?)
}

/// Whether a config exists, and whether it is enabled.
pub async fn config_enabled(db: &Db, config_id: &str) -> StoreResult<Option<bool>> {
    let r: Option<(bool,)> = on_pool!(db, |c| sqlx::query_as("SELECT enabled FROM configs WHERE id = $1")
        .bind(config_id)
        .fetch_optional(c)
        .await)?;
    Ok(r.map(|r| r.0))
}

/// Facts joined with client state, for the authz table and reconcile.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthRow {
    pub node_id: String,
    pub config_id: String,
    pub node_type: String,
    pub node_enabled: bool,
    pub config_enabled: bool,
    pub client_initialized: Option<bool>,
    pub mqtt_username: Option<String>,
    pub mqtt_client_id: Option<String>,
    pub mqtt_password: Option<String>,
}

const AUTH: &str = "SELECT n.id AS node_id, n.config_id AS config_id, n.node_type AS node_type, n.enabled AS node_enabled, \
    c.enabled AS config_enabled, s.client_initialized AS client_initialized, s.mqtt_username AS mqtt_username, \
    s.mqtt_client_id AS mqtt_client_id, s.mqtt_password AS mqtt_password \
    FROM nodes n JOIN configs c ON c.id = n.config_id LEFT JOIN node_client_state s ON s.node_id = n.id";

/// Every node with its binding state.
pub async fn auth_rows(db: &Db) -> StoreResult<Vec<AuthRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, AuthRow>(AUTH).fetch_all(c).await)?)
}

/// One node with its binding state.
pub async fn auth_row(db: &Db, node_id: &str) -> StoreResult<Option<AuthRow>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, AuthRow>(sqlx::AssertSqlSafe(format!("{AUTH} WHERE n.id = $1")))
        .bind(node_id)
        .fetch_optional(c)
        .await)?)
}

/// Reads a node's row.
pub async fn get(db: &Db, node_id: &str) -> StoreResult<Option<ClientState>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, ClientState>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM node_client_state WHERE node_id = $1"
    )))
    .bind(node_id)
    .fetch_optional(c)
    .await)?)
}

/// Reads a node's row in a transaction.
pub async fn get_tx(tx: &mut Tx, node_id: &str) -> StoreResult<Option<ClientState>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, ClientState>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM node_client_state WHERE node_id = $1"
    )))
    .bind(node_id)
    .fetch_optional(c)
    .await)?)
}

/// Rows of a config.
pub async fn list_for_config(db: &Db, config_id: &str) -> StoreResult<Vec<ClientState>> {
    Ok(on_pool!(db, |c| sqlx::query_as::<_, ClientState>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM node_client_state WHERE config_id = $1"
    )))
    .bind(config_id)
    .fetch_all(c)
    .await)?)
}

/// Creates the row if missing.
pub async fn ensure(tx: &mut Tx, node_id: &str, config_id: &str) -> StoreResult<()> {
    let now = crate::util::now_iso();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO node_client_state (node_id, config_id, created_at, updated_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (node_id) DO NOTHING"
    )
    .bind(node_id)
    .bind(config_id)
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Stores a new bind token (hash only); the previous one is invalidated.
pub async fn set_bind_token(tx: &mut Tx, node_id: &str, config_id: &str, hash: &str, expires_at: &str) -> StoreResult<()> {
    ensure(tx, node_id, config_id).await?;
    let now = crate::util::now_iso();
    on_tx!(tx, |c| sqlx::query(
        "UPDATE node_client_state SET bind_token_hash = $2, bind_token_expires_at = $3, bind_token_used_at = NULL, \
         updated_at = $4 WHERE node_id = $1"
    )
    .bind(node_id)
    .bind(hash)
    .bind(expires_at)
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The row holding a token hash.
pub async fn find_by_token_hash(tx: &mut Tx, hash: &str) -> StoreResult<Option<ClientState>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, ClientState>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM node_client_state WHERE bind_token_hash = $1"
    )))
    .bind(hash)
    .fetch_optional(c)
    .await)?)
}

/// What a successful bind writes.
pub struct BindWrite<'a> {
    pub platform: &'a str,
    pub version: &'a str,
    pub hostname: &'a str,
    pub username: &'a str,
    pub client_id: &'a str,
    pub password: &'a str,
}

/// Marks the client bound with fresh credentials and consumes the token.
pub async fn complete_bind(tx: &mut Tx, node_id: &str, w: &BindWrite<'_>) -> StoreResult<()> {
    let now = crate::util::now_iso();
    on_tx!(tx, |c| sqlx::query(
        "UPDATE node_client_state SET client_initialized = $2, client_platform = $3, client_version = $4, \
         client_hostname = $5, mqtt_username = $6, mqtt_client_id = $7, mqtt_password = $8, bind_token_used_at = $9, \
         client_presence_state = 'offline', boot_id = '', session_id = '', last_heartbeat_at = NULL, \
         last_detect_ack_at = NULL, last_reachable_at = NULL, last_offline_at = NULL, last_will_at = NULL, \
         last_event_at = NULL, updated_at = $9 WHERE node_id = $1"
    )
    .bind(node_id)
    .bind(true)
    .bind(w.platform)
    .bind(w.version)
    .bind(w.hostname)
    .bind(w.username)
    .bind(w.client_id)
    .bind(w.password)
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Wipes the row (reset-client, node made static/dynamic).
pub async fn reset(tx: &mut Tx, node_id: &str) -> StoreResult<()> {
    let now = crate::util::now_iso();
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
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// A presence change from an upstream message; `None` fields are left alone.
#[derive(Debug, Default, Clone)]
pub struct PresenceWrite {
    pub presence: Option<&'static str>,
    pub boot_id: Option<String>,
    pub session_id: Option<String>,
    pub heartbeat_at: Option<String>,
    pub detect_ack_at: Option<String>,
    pub reachable_at: Option<String>,
    pub offline_at: Option<String>,
    pub will_at: Option<String>,
    pub last_event: Option<String>,
    pub last_event_at: Option<String>,
    pub platform: Option<String>,
    pub version: Option<String>,
}

/// Applies a presence change.
pub async fn apply_presence(tx: &mut Tx, node_id: &str, w: &PresenceWrite) -> StoreResult<()> {
    let now = crate::util::now_iso();
    on_tx!(tx, |c| sqlx::query(
        "UPDATE node_client_state SET \
         client_presence_state = COALESCE($2, client_presence_state), boot_id = COALESCE($3, boot_id), \
         session_id = COALESCE($4, session_id), last_heartbeat_at = COALESCE($5, last_heartbeat_at), \
         last_detect_ack_at = COALESCE($6, last_detect_ack_at), last_reachable_at = COALESCE($7, last_reachable_at), \
         last_offline_at = COALESCE($8, last_offline_at), last_will_at = COALESCE($9, last_will_at), \
         last_event = COALESCE($10, last_event), last_event_at = COALESCE($11, last_event_at), \
         client_platform = COALESCE($12, client_platform), client_version = COALESCE($13, client_version), \
         updated_at = $14 WHERE node_id = $1"
    )
    .bind(node_id)
    .bind(w.presence)
    .bind(w.boot_id.as_deref())
    .bind(w.session_id.as_deref())
    .bind(w.heartbeat_at.as_deref())
    .bind(w.detect_ack_at.as_deref())
    .bind(w.reachable_at.as_deref())
    .bind(w.offline_at.as_deref())
    .bind(w.will_at.as_deref())
    .bind(w.last_event.as_deref())
    .bind(w.last_event_at.as_deref())
    .bind(w.platform.as_deref())
    .bind(w.version.as_deref())
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Sets presence offline for every row (snapshot restore) or one config.
pub async fn all_offline(tx: &mut Tx) -> StoreResult<()> {
    let now = crate::util::now_iso();
    on_tx!(tx, |c| sqlx::query("UPDATE node_client_state SET client_presence_state = 'offline', updated_at = $1")
        .bind(&now)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}
