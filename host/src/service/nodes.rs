//! Nodes (spec 02 §4): create, partial update, delete, reads, IP suggestion and checks.
//!
//! Writes cost what they change: a write marks `desired_stale` only for nodes whose rendered
//! file it changes (the node itself and/or the nodes that render it as a peer); rendering
//! happens lazily in the refresh worker.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};
use wfm_domain::awg::random::{self as awg_random, GenericPackets, IPacketSource, OsRng, Rng};
use wfm_domain::awg::{self, AwgVersion, Direction, NodeParams, OptionLevel, ProtocolChoice, Strategy};
use wfm_domain::{DomainResult, ip, keys, names};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::configs::{self, shared_params};
use crate::service::refresh::{self, PublishPlan};
use crate::state::AppState;
use crate::store::configs::ConfigRow;
use crate::store::links::{self as link_store, LinkRef};
use crate::store::nodes::{self as store, NodeRow};
use crate::store::{Tx, configs as config_store, tags as tag_store};
use crate::util;

/// A field that may be omitted (keep), `null` (clear) or set: spec 02 open point 1.
pub type Patch<T> = Option<Option<T>>;

/// Deserialises a present field (even `null`) as `Some(..)`; absence stays `None` through
/// `#[serde(default)]`.
pub fn patch<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Patch<T>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `node_type` values.
pub const NODE_TYPES: [&str; 2] = ["dynamic", "static"];

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

/// Port-forward hook lists of a node (read-only).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ManagedHooks {
    pub pre_up: Vec<Value>,
    pub post_up: Vec<Value>,
    pub pre_down: Vec<Value>,
    pub post_down: Vec<Value>,
}

/// A node as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeView {
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
    pub tags: Vec<String>,
    pub pre_up: Vec<String>,
    pub post_up: Vec<String>,
    pub pre_down: Vec<String>,
    pub post_down: Vec<String>,
    pub awg_jc: Option<i64>,
    pub awg_jmin: Option<i64>,
    pub awg_jmax: Option<i64>,
    pub awg_i1: Option<String>,
    pub awg_i2: Option<String>,
    pub awg_i3: Option<String>,
    pub awg_i4: Option<String>,
    pub awg_i5: Option<String>,
    pub awg_options: Map<String, Value>,
    pub managed_hooks: ManagedHooks,
    pub created_at: String,
    pub updated_at: String,
}

/// A stored JSON list; unreadable text reads as empty so one odd row cannot break a listing.
pub fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// A stored JSON object; unreadable text reads as `{}`.
pub fn json_map(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// The API view of a row. With MQTT services off every node is presented as `static`.
pub fn view(row: &NodeRow, mqtt_enabled: bool) -> NodeView {
    NodeView {
        id: row.id.clone(),
        config_id: row.config_id.clone(),
        name: row.name.clone(),
        ipv4_address: row.ipv4_address.clone(),
        ipv6_address: row.ipv6_address.clone(),
        listen_port: row.listen_port,
        virtual_ip: row.virtual_ip.clone(),
        mtu: row.mtu,
        dns: row.dns.clone(),
        auto_sync: row.auto_sync,
        enabled: row.enabled,
        node_type: if mqtt_enabled { row.node_type.clone() } else { "static".into() },
        public_key: row.public_key.clone(),
        private_key: row.private_key.clone(),
        tags: json_list(&row.tags_json),
        pre_up: json_list(&row.pre_up_json),
        post_up: json_list(&row.post_up_json),
        pre_down: json_list(&row.pre_down_json),
        post_down: json_list(&row.post_down_json),
        awg_jc: row.awg_jc,
        awg_jmin: row.awg_jmin,
        awg_jmax: row.awg_jmax,
        awg_i1: row.awg_i1.clone(),
        awg_i2: row.awg_i2.clone(),
        awg_i3: row.awg_i3.clone(),
        awg_i4: row.awg_i4.clone(),
        awg_i5: row.awg_i5.clone(),
        awg_options: json_map(&row.awg_options_json),
        // Port-forward rules are another feature's rows; until it provides them the lists
        // are empty rather than guessed.
        managed_hooks: ManagedHooks::default(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    }
}

/// AWG values of a stored node.
pub fn node_params(row: &NodeRow) -> NodeParams {
    NodeParams {
        awg_jc: row.awg_jc,
        awg_jmin: row.awg_jmin,
        awg_jmax: row.awg_jmax,
        awg_i1: row.awg_i1.clone(),
        awg_i2: row.awg_i2.clone(),
        awg_i3: row.awg_i3.clone(),
        awg_i4: row.awg_i4.clone(),
        awg_i5: row.awg_i5.clone(),
        awg_options: json_map(&row.awg_options_json),
    }
}

/// Writes AWG values into a row.
pub fn set_node_params(row: &mut NodeRow, p: &NodeParams) {
    row.awg_jc = p.awg_jc;
    row.awg_jmin = p.awg_jmin;
    row.awg_jmax = p.awg_jmax;
    row.awg_i1 = p.awg_i1.clone();
    row.awg_i2 = p.awg_i2.clone();
    row.awg_i3 = p.awg_i3.clone();
    row.awg_i4 = p.awg_i4.clone();
    row.awg_i5 = p.awg_i5.clone();
    row.awg_options_json = serde_json::to_string(&p.awg_options).unwrap_or_else(|_| "{}".into());
}

pub(crate) fn node_not_found(id: &str) -> AppError {
    AppError::new(ErrorCode::NodeNotFound, "Node not found").with("node_id", id)
}

async fn load(app: &AppState, id: &str) -> AppResult<NodeRow> {
    store::get(&app.db, id).await?.ok_or_else(|| node_not_found(id))
}

async fn load_tx(tx: &mut Tx, id: &str) -> AppResult<NodeRow> {
    store::get_tx(tx, id).await?.ok_or_else(|| node_not_found(id))
}

/// `GET /nodes/{id}`.
pub async fn get(app: &AppState, id: &str) -> AppResult<NodeView> {
    Ok(view(&load(app, id).await?, app.settings.enable_mqtt_services))
}

/// `GET /configs/{id}/nodes`.
pub async fn list(app: &AppState, config_id: &str) -> AppResult<Vec<NodeView>> {
    configs::load(app, config_id).await?;
    let mqtt = app.settings.enable_mqtt_services;
    Ok(store::list_for_config(&app.db, config_id).await?.iter().map(|r| view(r, mqtt)).collect())
}

// ---------------------------------------------------------------------------------------------
// I packets for backfill
// ---------------------------------------------------------------------------------------------

/// I packets for node-creation backfill. Generic packets are built here; the protocol
/// imitations (dns/stun/rtp/quic) come from the awg-params plugin, asked before the write
/// transaction opens so a plugin call never holds the writer.
struct HostPackets {
    /// The chain the plugin generated for the config's saved strategy, when it is not generic.
    imitated: Option<Vec<String>>,
}

impl HostPackets {
    /// Asks the awg-params plugin for an I-packet chain when the config (read outside the write
    /// transaction) is AmneziaWG with a non-generic saved direction. Without the plugin such a
    /// node cannot be created as asked: `PLUGIN_NOT_FOUND`, never silently generic packets.
    async fn prepare(app: &AppState, config_id: &str) -> AppResult<HostPackets> {
        let Some(config) = config_store::get(&app.db, config_id).await? else { return Ok(HostPackets { imitated: None }) };
        let Some(v) = ProtocolChoice::from_stored(&config.tunnel_protocol, config.awg_version.as_deref()).awg_version() else {
            return Ok(HostPackets { imitated: None });
        };
        let shared = shared_params(&config);
        if Strategy::from_config_options(&shared.awg_options).direction == Direction::Generic {
            return Ok(HostPackets { imitated: None });
        }
        let input = serde_json::json!({"awg_version": v.as_str(), "config_options": shared.awg_options, "node": {}});
        let out = crate::service::tools::call(app, &crate::service::tools::Caller::admin(), "awg-params", "backfill_node", input).await?;
        let chain: Vec<String> = (1..=5)
            .filter_map(|i| out.output.get(format!("awg_i{i}")).and_then(Value::as_str).map(str::to_string))
            .collect();
        Ok(HostPackets { imitated: Some(chain) })
    }
}

impl IPacketSource for HostPackets {
    fn i_packets(&mut self, direction: Direction, count: usize, rng: &mut dyn Rng) -> DomainResult<Vec<String>> {
        match (&self.imitated, direction) {
            (_, Direction::Generic) => GenericPackets.i_packets(Direction::Generic, count, rng),
            (Some(chain), _) if !chain.is_empty() => Ok(chain.iter().take(count).cloned().collect()),
            // Not prepared for this direction (the config changed between the two reads).
            _ => GenericPackets.i_packets(direction, count, rng),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

/// Body of `POST /configs/{id}/nodes` (spec 02 §4.1). Schema bounds are the route's.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeCreate {
    pub name: String,
    #[serde(default)]
    pub ipv4_address: Option<String>,
    #[serde(default)]
    pub ipv6_address: Option<String>,
    #[serde(default)]
    pub listen_port: Option<i64>,
    #[serde(default)]
    pub virtual_ip: Option<String>,
    #[serde(default)]
    pub mtu: Option<i64>,
    #[serde(default)]
    pub dns: Option<String>,
    #[serde(default)]
    pub auto_sync: Option<bool>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub node_type: Option<String>,
    #[serde(default)]
    pub public_key: Option<String>,
    #[serde(default)]
    pub private_key: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub pre_up: Option<Vec<String>>,
    #[serde(default)]
    pub post_up: Option<Vec<String>>,
    #[serde(default)]
    pub pre_down: Option<Vec<String>>,
    #[serde(default)]
    pub post_down: Option<Vec<String>>,
    #[serde(default)]
    pub awg_jc: Option<i64>,
    #[serde(default)]
    pub awg_jmin: Option<i64>,
    #[serde(default)]
    pub awg_jmax: Option<i64>,
    #[serde(default)]
    pub awg_i1: Option<String>,
    #[serde(default)]
    pub awg_i2: Option<String>,
    #[serde(default)]
    pub awg_i3: Option<String>,
    #[serde(default)]
    pub awg_i4: Option<String>,
    #[serde(default)]
    pub awg_i5: Option<String>,
    #[serde(default)]
    pub awg_options: Option<Map<String, Value>>,
}

/// The node type a write may store: MQTT off forces `static` and refuses `dynamic`.
fn effective_node_type(app: &AppState, requested: Option<&str>, default: &str) -> AppResult<String> {
    let requested = requested.map(str::trim).filter(|s| !s.is_empty());
    if requested.is_some_and(|t| !NODE_TYPES.contains(&t)) {
        return Err(crate::validate::field("node_type", "enum", "value is invalid"));
    }
    if !app.settings.enable_mqtt_services {
        if requested == Some("dynamic") {
            return Err(AppError::new(ErrorCode::MqttDisabled, "MQTT services are disabled; dynamic nodes are unavailable"));
        }
        return Ok("static".into());
    }
    Ok(requested.unwrap_or(default).to_string())
}

fn ip_holders(pairs: &[(String, String)]) -> Vec<ip::IpHolder<'_>> {
    pairs.iter().map(|(name, vip)| ip::IpHolder { name, virtual_ip: vip }).collect()
}

/// The other nodes' virtual IPs as holders without names. A check passes or fails on the
/// addresses alone; the names only go into the failure message.
fn nameless(used: &[String]) -> Vec<ip::IpHolder<'_>> {
    used.iter().map(|vip| ip::IpHolder { name: "", virtual_ip: vip }).collect()
}

/// `value` checked against the other nodes' virtual IPs (`used`, read without the nodes).
/// Only a rejected value loads the holders' names, so the message names the same node a check
/// over the loaded nodes would.
async fn require_unique_vip(tx: &mut Tx, config_id: &str, except: Option<&str>, value: &str, used: &[String]) -> AppResult<String> {
    if let Ok(v) = ip::require_virtual_ip(value, &nameless(used)) {
        return Ok(v);
    }
    let pairs = store::ip_holders_tx(tx, config_id, except).await?;
    Ok(ip::require_virtual_ip(value, &ip_holders(&pairs))?)
}

/// `POST /configs/{id}/nodes`.
pub async fn create(app: &AppState, config_id: &str, input: NodeCreate) -> AppResult<NodeView> {
    let mut packets = HostPackets::prepare(app, config_id).await?;
    let mut tx = app.db.begin().await?;
    let config = config_store::get_tx(&mut tx, config_id).await?.ok_or_else(|| configs::config_not_found(config_id))?;
    let node_type = effective_node_type(app, input.node_type.as_deref(), "dynamic")?;
    let mut rng = OsRng;
    let pair = keys::resolve_key_pair(input.private_key.as_deref(), input.public_key.as_deref(), &mut rng)?;
    let name = names::validate_node_name(&input.name)?;
    // The other nodes matter only through their virtual IPs: read just those (the cost of a
    // create must not grow with the rows of every node in the config).
    let used = store::virtual_ips_tx(&mut tx, config_id, None).await?;
    let virtual_ip = match names::optional_text(input.virtual_ip.as_deref()) {
        Some(v) => v,
        None => ip::suggest_ip(&config.virtual_subnet, used.iter().map(String::as_str))?,
    };

    let params = NodeParams {
        awg_jc: input.awg_jc,
        awg_jmin: input.awg_jmin,
        awg_jmax: input.awg_jmax,
        awg_i1: input.awg_i1,
        awg_i2: input.awg_i2,
        awg_i3: input.awg_i3,
        awg_i4: input.awg_i4,
        awg_i5: input.awg_i5,
        awg_options: input.awg_options.unwrap_or_default(),
    };
    let params = match ProtocolChoice::from_stored(&config.tunnel_protocol, config.awg_version.as_deref()).awg_version() {
        Some(v) => {
            let shared = shared_params(&config);
            let mut p = params.normalized()?;
            awg::gate_options(OptionLevel::Node, v, &p.awg_options, &Map::new())?;
            let strategy = Strategy::from_config_options(&shared.awg_options);
            awg_random::backfill_node(v, &shared.awg_options, &mut p, strategy, &mut packets, &mut rng)?;
            awg::validate_node_params(v, &shared, &p)?;
            p
        }
        None => NodeParams::cleared(),
    };

    let virtual_ip = require_unique_vip(&mut tx, config_id, None, &virtual_ip, &used).await?;

    let now = util::now_iso();
    let tags = names::normalize_tags(&input.tags.unwrap_or_default());
    let mut row = NodeRow {
        id: util::new_id("node"),
        config_id: config_id.to_string(),
        name,
        ipv4_address: names::optional_text(input.ipv4_address.as_deref()),
        ipv6_address: names::optional_text(input.ipv6_address.as_deref()),
        listen_port: input.listen_port,
        virtual_ip: Some(virtual_ip),
        mtu: input.mtu,
        dns: names::optional_text(input.dns.as_deref()),
        auto_sync: input.auto_sync.unwrap_or(config.auto_sync),
        enabled: input.enabled.unwrap_or(true),
        node_type,
        public_key: pair.public_key,
        private_key: pair.private_key,
        tags_json: to_json(&tags),
        pre_up_json: to_json(&names::normalize_commands(&input.pre_up.unwrap_or_default())),
        post_up_json: to_json(&names::normalize_commands(&input.post_up.unwrap_or_default())),
        pre_down_json: to_json(&names::normalize_commands(&input.pre_down.unwrap_or_default())),
        post_down_json: to_json(&names::normalize_commands(&input.post_down.unwrap_or_default())),
        created_at: now.clone(),
        updated_at: now.clone(),
        ..Default::default()
    };
    set_node_params(&mut row, &params);

    store::insert(&mut tx, &row).await?;
    tag_store::add(&mut tx, config_id, &tags, &now).await?;
    store::insert_config_state(&mut tx, &row.id, config_id).await?;
    store::insert_runtime(&mut tx, &row.id, config_id, &now).await?;
    config_store::touch(&mut tx, config_id, &now).await?;
    tx.commit().await?;

    refresh::schedule(app, PublishPlan::config_change(config_id, std::slice::from_ref(&row.id), false));
    crate::service::binding::on_node_changed(app, &row.id, None).await;
    Ok(view(&row, app.settings.enable_mqtt_services))
}

// ---------------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------------

/// Body of `PUT /nodes/{id}`: every field optional; `null` clears a nullable field.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodePatch {
    #[serde(default, deserialize_with = "patch")]
    pub name: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub ipv4_address: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub ipv6_address: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub listen_port: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub virtual_ip: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub mtu: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub dns: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub auto_sync: Patch<bool>,
    #[serde(default, deserialize_with = "patch")]
    pub enabled: Patch<bool>,
    #[serde(default, deserialize_with = "patch")]
    pub node_type: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub public_key: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub private_key: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub tags: Patch<Vec<String>>,
    #[serde(default, deserialize_with = "patch")]
    pub pre_up: Patch<Vec<String>>,
    #[serde(default, deserialize_with = "patch")]
    pub post_up: Patch<Vec<String>>,
    #[serde(default, deserialize_with = "patch")]
    pub pre_down: Patch<Vec<String>>,
    #[serde(default, deserialize_with = "patch")]
    pub post_down: Patch<Vec<String>>,
    #[serde(flatten)]
    pub awg: NodeAwgPatch,
}

/// AWG node fields of a partial update (`PUT /nodes/{id}` and config `awg_node_updates`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeAwgPatch {
    #[serde(default, deserialize_with = "patch")]
    pub awg_jc: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_jmin: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_jmax: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_i1: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_i2: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_i3: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_i4: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_i5: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_options: Patch<Map<String, Value>>,
}

/// Keys a `NodeAwgPatch` accepts.
pub const NODE_AWG_KEYS: [&str; 9] =
    ["awg_jc", "awg_jmin", "awg_jmax", "awg_i1", "awg_i2", "awg_i3", "awg_i4", "awg_i5", "awg_options"];

fn apply<T: Clone>(slot: &mut Option<T>, p: &Patch<T>) {
    if let Some(v) = p {
        *slot = v.clone();
    }
}

impl NodeAwgPatch {
    /// Whether any field was sent.
    pub fn is_empty(&self) -> bool {
        self.awg_jc.is_none()
            && self.awg_jmin.is_none()
            && self.awg_jmax.is_none()
            && self.awg_i1.is_none()
            && self.awg_i2.is_none()
            && self.awg_i3.is_none()
            && self.awg_i4.is_none()
            && self.awg_i5.is_none()
            && self.awg_options.is_none()
    }

    /// The stored values with this draft over them: options merged key by key after the
    /// version gate (§5.2), I values normalised.
    pub fn draft_over(&self, version: AwgVersion, stored: &NodeParams) -> DomainResult<NodeParams> {
        let mut p = stored.clone();
        apply(&mut p.awg_jc, &self.awg_jc);
        apply(&mut p.awg_jmin, &self.awg_jmin);
        apply(&mut p.awg_jmax, &self.awg_jmax);
        apply(&mut p.awg_i1, &self.awg_i1);
        apply(&mut p.awg_i2, &self.awg_i2);
        apply(&mut p.awg_i3, &self.awg_i3);
        apply(&mut p.awg_i4, &self.awg_i4);
        apply(&mut p.awg_i5, &self.awg_i5);
        p.awg_options = Map::new();
        let mut p = p.normalized()?;
        if let Some(Some(opts)) = &self.awg_options {
            let incoming = awg::normalize_options(OptionLevel::Node, opts)?;
            awg::gate_options(OptionLevel::Node, version, &incoming, &stored.awg_options)?;
            p.awg_options = awg::merge_options(&stored.awg_options, &incoming);
        } else {
            p.awg_options = stored.awg_options.clone();
        }
        Ok(p)
    }
}

/// A hint inside a successful update.
pub fn hint(code: &str, level: &str, count: usize) -> Value {
    json!({"code": code, "level": level, "count": count})
}

/// Response of `PUT /nodes/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeUpdated {
    #[serde(flatten)]
    pub node: NodeView,
    pub change_hints: Vec<Value>,
    pub affected_node_ids: Vec<String>,
}

fn host_for(row: &NodeRow, family: Option<&str>) -> Option<String> {
    let h = if family == Some("ipv6") { &row.ipv6_address } else { &row.ipv4_address };
    h.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A sent node type: `dynamic` or `static` (anything else, `null` included, is a 422).
pub fn node_type_input(p: &Patch<String>) -> AppResult<Option<String>> {
    match p {
        None => Ok(None),
        Some(Some(t)) if NODE_TYPES.contains(&t.trim()) => Ok(Some(t.trim().to_string())),
        Some(_) => Err(crate::validate::field("node_type", "enum", "value is invalid")),
    }
}

/// `PUT /nodes/{id}` (spec 02 §4.2).
pub async fn update(app: &AppState, id: &str, input: NodePatch) -> AppResult<NodeUpdated> {
    let mut tx = app.db.begin().await?;
    let old = load_tx(&mut tx, id).await?;
    let config = config_store::get_tx(&mut tx, &old.config_id).await?.ok_or_else(|| configs::config_not_found(&old.config_id))?;
    let mut row = old.clone();
    let now = util::now_iso();

    if let Some(name) = &input.name {
        row.name = names::validate_node_name(name.as_deref().unwrap_or(""))?;
    }
    if let Some(v) = &input.ipv4_address {
        row.ipv4_address = names::optional_text(v.as_deref());
    }
    if let Some(v) = &input.ipv6_address {
        row.ipv6_address = names::optional_text(v.as_deref());
    }
    apply(&mut row.listen_port, &input.listen_port);
    apply(&mut row.mtu, &input.mtu);
    if let Some(v) = &input.dns {
        row.dns = names::optional_text(v.as_deref());
    }
    if let Some(v) = &input.virtual_ip {
        row.virtual_ip = names::optional_text(v.as_deref());
    }
    if let Some(Some(v)) = input.auto_sync {
        row.auto_sync = v;
    }
    if let Some(Some(v)) = input.enabled {
        row.enabled = v;
    }
    match node_type_input(&input.node_type)? {
        Some(t) if app.settings.enable_mqtt_services => row.node_type = t,
        // MQTT off: a sent type is ignored, but asking for dynamic is refused.
        Some(t) => {
            effective_node_type(app, Some(t.as_str()), &old.node_type)?;
        }
        None => {}
    }
    let list = |p: &Patch<Vec<String>>, current: &str| -> String {
        match p {
            Some(v) => to_json(&names::normalize_commands(v.as_deref().unwrap_or(&[]))),
            None => current.to_string(),
        }
    };
    row.pre_up_json = list(&input.pre_up, &old.pre_up_json);
    row.post_up_json = list(&input.post_up, &old.post_up_json);
    row.pre_down_json = list(&input.pre_down, &old.pre_down_json);
    row.post_down_json = list(&input.post_down, &old.post_down_json);
    let new_tags = input.tags.as_ref().map(|t| names::normalize_tags(t.as_deref().unwrap_or(&[])));
    if let Some(t) = &new_tags {
        row.tags_json = to_json(t);
    }

    // Keys: a new private key without a public key re-derives it; a public key must match.
    let private_in = input.private_key.clone().flatten().filter(|k| !k.trim().is_empty());
    let public_in = input.public_key.clone().flatten().filter(|k| !k.trim().is_empty());
    match (private_in, public_in) {
        (Some(private), public) => {
            let pair = keys::resolve_key_pair(Some(&private), public.as_deref(), &mut OsRng)?;
            row.private_key = pair.private_key;
            row.public_key = pair.public_key;
        }
        (None, Some(public)) => {
            keys::check_key_pair(&row.private_key, &public)?;
            row.public_key = public.trim().to_string();
        }
        (None, None) => {}
    }

    // AWG: options merged and gated by version, validated, never backfilled.
    match ProtocolChoice::from_stored(&config.tunnel_protocol, config.awg_version.as_deref()).awg_version() {
        Some(v) => {
            let shared = shared_params(&config);
            let p = input.awg.draft_over(v, &node_params(&old))?;
            awg::validate_node_params(v, &shared, &p)?;
            set_node_params(&mut row, &p);
        }
        None => set_node_params(&mut row, &NodeParams::cleared()),
    }

    // Virtual IP: required, unique among the other nodes of the config.
    let Some(vip) = row.virtual_ip.clone() else {
        return Err(AppError::new(ErrorCode::InvalidVirtualIp, "Virtual IP is required"));
    };
    let used = store::virtual_ips_tx(&mut tx, &row.config_id, Some(id)).await?;
    row.virtual_ip = Some(require_unique_vip(&mut tx, &row.config_id, Some(id), &vip, &used).await?);

    let links = link_store::refs_touching(&mut tx, id).await?;
    let mut neighbours: Vec<String> =
        links.iter().flat_map(|l| [l.local_node_id.clone(), l.peer_node_id.clone()]).filter(|n| n != id).collect();
    neighbours.sort();
    neighbours.dedup();

    let mut hints = Vec::new();
    let addresses_changed =
        row.ipv4_address != old.ipv4_address || row.ipv6_address != old.ipv6_address || row.listen_port != old.listen_port;
    if addresses_changed {
        let auto: Vec<&LinkRef> = links.iter().filter(|l| l.peer_node_id == id && l.endpoint_mode == "auto").collect();
        if !auto.is_empty() {
            let cleared: Vec<(&str, &str)> = auto
                .iter()
                .filter(|l| l.persistent_keepalive.is_some() && host_for(&row, l.endpoint_ref_family.as_deref()).is_none())
                .map(|l| (l.link_group_id.as_str(), l.direction.as_str()))
                .collect();
            link_store::clear_keepalive(&mut tx, &cleared, &now).await?;
            let mut locals: Vec<&str> = auto.iter().map(|l| l.local_node_id.as_str()).collect();
            locals.sort();
            locals.dedup();
            let mut h = hint("NODE_ENDPOINTS_RECALCULATED", "info", locals.len());
            h["cleared_keepalive_count"] = json!(cleared.len());
            hints.push(h);
        }
    }
    if row.virtual_ip != old.virtual_ip && !links.is_empty() {
        let mut groups: Vec<&str> = links.iter().map(|l| l.link_group_id.as_str()).collect();
        groups.sort();
        groups.dedup();
        hints.push(hint("VIRTUAL_IP_CHANGED_REVIEW_ALLOWED_IPS", "warning", groups.len()));
    }

    if old.enabled && !row.enabled {
        link_store::disable_touching(&mut tx, id, &now).await?;
        store::reset_runtime(&mut tx, id, "Node disabled", &now).await?;
        store::clear_presence_and_bind_token(&mut tx, id, &now).await?;
    }
    let type_changed = row.node_type != old.node_type;
    if type_changed {
        // Reset with the write so no stale binding outlives it; the binding hook after commit
        // revokes or reconciles broker access (spec 03 §2.5, same reasons).
        let reason = if row.node_type == "static" { "static-node" } else { "dynamic-node-uninitialized" };
        store::wipe_client_state(&mut tx, id, &now).await?;
        store::reset_runtime(&mut tx, id, reason, &now).await?;
    }

    // Staleness: what this node renders, and what its peers render about it.
    let self_changed = row.private_key != old.private_key
        || row.virtual_ip != old.virtual_ip
        || row.listen_port != old.listen_port
        || row.mtu != old.mtu
        || row.dns != old.dns
        || row.enabled != old.enabled
        || row.pre_up_json != old.pre_up_json
        || row.post_up_json != old.post_up_json
        || row.pre_down_json != old.pre_down_json
        || row.post_down_json != old.post_down_json
        || node_params(&row) != node_params(&old);
    let peers_changed = row.name != old.name
        || row.public_key != old.public_key
        || addresses_changed
        || row.enabled != old.enabled;
    let mut stale = Vec::new();
    if self_changed || peers_changed {
        stale.push(id.to_string());
    }
    if peers_changed {
        stale.extend(neighbours.iter().cloned());
    }
    store::mark_stale(&mut tx, &stale).await?;

    row.updated_at = now.clone();
    store::update(&mut tx, &row).await?;
    if let Some(t) = &new_tags {
        tag_store::add(&mut tx, &row.config_id, t, &now).await?;
    }
    config_store::touch(&mut tx, &row.config_id, &now).await?;
    tx.commit().await?;

    let mut affected = neighbours;
    affected.push(id.to_string());
    affected.sort();
    refresh::schedule(app, PublishPlan::config_change(&row.config_id, &affected, false));
    let before = crate::service::binding::NodeBefore { dynamic: old.node_type == "dynamic", enabled: old.enabled };
    crate::service::binding::on_node_changed(app, id, Some(before)).await;
    Ok(NodeUpdated { node: view(&row, app.settings.enable_mqtt_services), change_hints: hints, affected_node_ids: affected })
}

// ---------------------------------------------------------------------------------------------
// Delete, IPs
// ---------------------------------------------------------------------------------------------

/// `DELETE /nodes/{id}`: the node and everything hanging off it (spec 02 §2.6).
pub async fn delete(app: &AppState, id: &str) -> AppResult<Value> {
    let mut tx = app.db.begin().await?;
    let row = load_tx(&mut tx, id).await?;
    let links = link_store::refs_touching(&mut tx, id).await?;
    let mut neighbours: Vec<String> =
        links.iter().flat_map(|l| [l.local_node_id.clone(), l.peer_node_id.clone()]).filter(|n| n != id).collect();
    neighbours.sort();
    neighbours.dedup();
    // The neighbours' files lose this peer.
    store::mark_stale(&mut tx, &neighbours).await?;
    store::delete(&mut tx, id).await?;
    config_store::touch(&mut tx, &row.config_id, &util::now_iso()).await?;
    tx.commit().await?;
    let before = crate::service::binding::NodeBefore { dynamic: row.node_type == "dynamic", enabled: row.enabled };
    crate::service::binding::on_node_changed(app, id, Some(before)).await;
    refresh::schedule(app, PublishPlan::config_change(&row.config_id, &neighbours, false));
    Ok(json!({"message": "Node deleted"}))
}

/// `POST /configs/{id}/nodes/suggest-ip`.
pub async fn suggest_ip(app: &AppState, config_id: &str) -> AppResult<Value> {
    let config: ConfigRow = configs::load(app, config_id).await?;
    let used = store::virtual_ips(&app.db, config_id).await?;
    let ip = ip::suggest_ip(&config.virtual_subnet, used.iter().map(String::as_str))?;
    Ok(json!({"ip": ip}))
}

/// `POST /configs/{id}/nodes/validate-ip`: every node counts, the caller's own included.
pub async fn validate_ip(app: &AppState, config_id: &str, value: &str) -> AppResult<ip::IpCheck> {
    configs::load(app, config_id).await?;
    let used = store::virtual_ips(&app.db, config_id).await?;
    let check = ip::check_virtual_ip(value, &nameless(&used));
    if check.valid {
        return Ok(check);
    }
    // Rejected: check again with the holders' names, for the message.
    let pairs = store::ip_holders(&app.db, config_id).await?;
    Ok(ip::check_virtual_ip(value, &ip_holders(&pairs)))
}
