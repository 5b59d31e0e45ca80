//! Configs (spec 02 §3): create, update with AWG version conversion, delete, reads with the
//! node counters that need no topology. The mesh feature adds the topology fields of the list
//! (`topology_invalid`, `topology_error_count`) through [`ConfigView`]'s public fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use wfm_domain::awg::random::{self as awg_random, GenericPackets, OsRng};
use wfm_domain::awg::{self, AwgVersion, NodeParams, OptionLevel, ProtocolChoice, SharedParams, Strategy};
use wfm_domain::{ip, names};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::nodes::{self, NODE_AWG_KEYS, NodeAwgPatch, Patch, hint, patch};
use crate::service::refresh::{self, PublishPlan};
use crate::state::AppState;
use crate::store::configs::{self as store, ConfigRow, NodeCounters};
use crate::store::nodes as node_store;
use crate::util;

/// Default virtual subnet.
pub const DEFAULT_SUBNET: &str = "10.66.0.0/24";
/// Default listen port.
pub const DEFAULT_LISTEN_PORT: i64 = 51820;

/// A config as the API shows it, with its counters (spec 02 §2.1, §9.2).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigView {
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
    pub awg_options: Map<String, Value>,
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
    pub node_count: i64,
    pub dynamic_node_count: i64,
    pub online_node_count: i64,
    pub offline_node_count: i64,
    pub disabled_node_count: i64,
    pub topology_invalid: bool,
    pub topology_error_count: i64,
}

/// Shared AWG values of a stored config.
pub fn shared_params(row: &ConfigRow) -> SharedParams {
    SharedParams {
        awg_s1: row.awg_s1,
        awg_s2: row.awg_s2,
        awg_s3: row.awg_s3,
        awg_s4: row.awg_s4,
        awg_h1: row.awg_h1.clone(),
        awg_h2: row.awg_h2.clone(),
        awg_h3: row.awg_h3.clone(),
        awg_h4: row.awg_h4.clone(),
        awg_options: nodes::json_map(&row.awg_options_json),
    }
}

fn set_shared(row: &mut ConfigRow, p: &SharedParams) {
    row.awg_s1 = p.awg_s1;
    row.awg_s2 = p.awg_s2;
    row.awg_s3 = p.awg_s3;
    row.awg_s4 = p.awg_s4;
    row.awg_h1 = p.awg_h1.clone();
    row.awg_h2 = p.awg_h2.clone();
    row.awg_h3 = p.awg_h3.clone();
    row.awg_h4 = p.awg_h4.clone();
    row.awg_options_json = serde_json::to_string(&p.awg_options).unwrap_or_else(|_| "{}".into());
}

fn set_choice(row: &mut ConfigRow, choice: ProtocolChoice) {
    row.tunnel_protocol = choice.protocol.as_str().into();
    row.awg_version = choice.awg_version().map(|v| v.as_str().to_string());
}

/// The API view with list counters. MQTT off: dynamic/online/offline are 0; a disabled config
/// has no online nodes.
pub fn view(row: &ConfigRow, c: &NodeCounters, mqtt_enabled: bool) -> ConfigView {
    let dynamic = if mqtt_enabled { c.dynamic_node_count } else { 0 };
    let online = if mqtt_enabled && row.enabled { c.online_node_count } else { 0 };
    let choice = ProtocolChoice::from_stored(&row.tunnel_protocol, row.awg_version.as_deref());
    ConfigView {
        id: row.id.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        enabled: row.enabled,
        virtual_subnet: row.virtual_subnet.clone(),
        default_listen_port: row.default_listen_port,
        default_mtu: row.default_mtu,
        default_dns: row.default_dns.clone(),
        auto_sync: row.auto_sync,
        tunnel_protocol: choice.protocol.as_str().into(),
        awg_version: choice.awg_version().map(|v| v.as_str().to_string()),
        awg_options: nodes::json_map(&row.awg_options_json),
        awg_s1: row.awg_s1,
        awg_s2: row.awg_s2,
        awg_s3: row.awg_s3,
        awg_s4: row.awg_s4,
        awg_h1: row.awg_h1.clone(),
        awg_h2: row.awg_h2.clone(),
        awg_h3: row.awg_h3.clone(),
        awg_h4: row.awg_h4.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        node_count: c.node_count,
        dynamic_node_count: dynamic,
        online_node_count: online,
        offline_node_count: (dynamic - online).max(0),
        disabled_node_count: c.disabled_node_count,
        topology_invalid: false,
        topology_error_count: 0,
    }
}

/// The single-config view of `GET /configs/{id}`: only node, dynamic and disabled counts.
pub fn detail_view(row: &ConfigRow, c: &NodeCounters, mqtt_enabled: bool) -> ConfigView {
    let mut v = view(row, c, mqtt_enabled);
    v.online_node_count = 0;
    v.offline_node_count = 0;
    v
}

pub(crate) fn config_not_found(id: &str) -> AppError {
    AppError::new(ErrorCode::ConfigNotFound, "Config not found").with("config_id", id)
}

/// Reads a config or `CONFIG_NOT_FOUND`.
pub async fn load(app: &AppState, id: &str) -> AppResult<ConfigRow> {
    store::get(&app.db, id).await?.ok_or_else(|| config_not_found(id))
}

/// `GET /configs`: newest first, with counters (topology fields are the mesh feature's).
pub async fn list(app: &AppState) -> AppResult<Vec<ConfigView>> {
    let rows = store::list(&app.db).await?;
    let counters: BTreeMap<String, NodeCounters> =
        store::counters_all(&app.db).await?.into_iter().map(|c| (c.config_id.clone(), c)).collect();
    let mqtt = app.settings.enable_mqtt_services;
    Ok(rows
        .iter()
        .map(|r| view(r, counters.get(&r.id).unwrap_or(&NodeCounters::default()), mqtt))
        .collect())
}

/// `GET /configs/{id}`.
pub async fn get(app: &AppState, id: &str) -> AppResult<ConfigView> {
    let row = load(app, id).await?;
    let c = store::counters(&app.db, id).await?;
    Ok(detail_view(&row, &c, app.settings.enable_mqtt_services))
}

/// Body of `POST /configs` and `PUT /configs/{id}` (spec 02 §3.1). On PUT only sent fields
/// apply; `null` clears a nullable field.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigInput {
    pub name: String,
    #[serde(default, deserialize_with = "patch")]
    pub description: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub enabled: Patch<bool>,
    #[serde(default, deserialize_with = "patch")]
    pub virtual_subnet: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub default_listen_port: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub default_mtu: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub default_dns: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub auto_sync: Patch<bool>,
    #[serde(default, deserialize_with = "patch")]
    pub tunnel_protocol: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_version: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_options: Patch<Map<String, Value>>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_s1: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_s2: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_s3: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_s4: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_h1: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_h2: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_h3: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub awg_h4: Patch<String>,
    /// PUT only: node id → subset of the node AWG fields.
    #[serde(default)]
    pub awg_node_updates: Option<Map<String, Value>>,
}

impl ConfigInput {
    fn s_patches(&self) -> [&Patch<i64>; 4] {
        [&self.awg_s1, &self.awg_s2, &self.awg_s3, &self.awg_s4]
    }
    fn h_patches(&self) -> [&Patch<String>; 4] {
        [&self.awg_h1, &self.awg_h2, &self.awg_h3, &self.awg_h4]
    }
    /// Request S/H (and options) over `base`: a sent value, `null` included, wins.
    fn shared_over(&self, base: &SharedParams) -> SharedParams {
        let mut out = base.clone();
        for (slot, p) in out.s_mut().into_iter().zip(self.s_patches()) {
            if let Some(v) = p {
                *slot = *v;
            }
        }
        for (slot, p) in out.h_mut().into_iter().zip(self.h_patches()) {
            if let Some(v) = p {
                *slot = v.clone();
            }
        }
        out
    }
    fn request_options(&self) -> Map<String, Value> {
        self.awg_options.clone().flatten().unwrap_or_default()
    }
}

fn subnet(value: Option<&str>) -> AppResult<String> {
    let v = value.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(DEFAULT_SUBNET);
    // Kept as written (spec open point 3); only parsability is required.
    ip::parse_subnet(v)?;
    Ok(v.to_string())
}

fn name_exists(name: &str) -> AppError {
    AppError::new(ErrorCode::ConfigNameExists, "Config name already exists").with("name", name)
}

fn conflict_to_name_exists(name: &str) -> impl Fn(crate::store::StoreError) -> AppError + '_ {
    move |e| match e {
        crate::store::StoreError::Conflict(_) => name_exists(name),
        other => other.into(),
    }
}

/// `POST /configs` (spec 02 §3.3).
pub async fn create(app: &AppState, input: ConfigInput) -> AppResult<ConfigView> {
    let name = names::validate_config_name(&input.name)?;
    let choice = awg::resolve_protocol(
        input.tunnel_protocol.clone().flatten().as_deref(),
        input.awg_version.clone().flatten().as_deref(),
        None,
    )?;
    let mut rng = OsRng;
    let shared = match choice.awg_version() {
        Some(v) => {
            let mut s = input.shared_over(&SharedParams::default());
            s.awg_options = input.request_options();
            let mut s = s.normalized()?;
            awg::gate_options(OptionLevel::Config, v, &s.awg_options, &Map::new())?;
            awg_random::backfill_shared(v, &mut s, &mut rng);
            if v == AwgVersion::V3_1 {
                awg_random::ensure_header_protection_key(&mut s.awg_options, &mut rng);
            }
            awg::validate_config_params(v, &s)?;
            s
        }
        None => SharedParams::cleared(),
    };
    let now = util::now_iso();
    let mut row = ConfigRow {
        id: util::new_id("cfg"),
        name: name.clone(),
        description: input.description.clone().flatten().map(|d| d.trim().to_string()).unwrap_or_default(),
        enabled: input.enabled.flatten().unwrap_or(true),
        virtual_subnet: subnet(input.virtual_subnet.clone().flatten().as_deref())?,
        default_listen_port: input.default_listen_port.flatten().unwrap_or(DEFAULT_LISTEN_PORT),
        default_mtu: input.default_mtu.flatten(),
        default_dns: names::optional_text(input.default_dns.clone().flatten().as_deref()),
        auto_sync: input.auto_sync.flatten().unwrap_or(true),
        created_at: now.clone(),
        updated_at: now,
        ..Default::default()
    };
    set_choice(&mut row, choice);
    set_shared(&mut row, &shared);

    let mut tx = app.db.begin().await?;
    if store::name_taken(&mut tx, &name, None).await? {
        return Err(name_exists(&name));
    }
    store::insert(&mut tx, &row).await.map_err(conflict_to_name_exists(&name))?;
    tx.commit().await?;
    refresh::schedule(app, PublishPlan::config_change(&row.id, &[], false));
    Ok(detail_view(&row, &NodeCounters::default(), app.settings.enable_mqtt_services))
}

/// Response of `PUT /configs/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigUpdated {
    #[serde(flatten)]
    pub config: ConfigView,
    pub adjustments: Vec<Value>,
    pub change_hints: Vec<Value>,
    pub affected_node_ids: Vec<String>,
}

fn param_error(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidAwgParameter, message)
}

/// Parses `awg_node_updates` (§3.4 step 5): ids must be nodes of the config, inner keys the
/// AWG node fields; everything else is `INVALID_AWG_PARAMETER`.
fn node_drafts(raw: &Map<String, Value>, node_ids: &[String]) -> AppResult<BTreeMap<String, NodeAwgPatch>> {
    let mut out = BTreeMap::new();
    for (id, value) in raw {
        if !node_ids.contains(id) {
            return Err(param_error(format!("Node {id} is not part of this config")).with("node_id", id.as_str()));
        }
        let Value::Object(fields) = value else {
            return Err(param_error(format!("AWG updates of node {id} must be an object")).with("node_id", id.as_str()));
        };
        if let Some(k) = fields.keys().find(|k| !NODE_AWG_KEYS.contains(&k.as_str())) {
            return Err(param_error(format!("{k} is not an AWG node field")).with("node_id", id.as_str()).with("field", k.as_str()));
        }
        let patch: NodeAwgPatch = serde_json::from_value(value.clone())
            .map_err(|e| param_error(format!("Invalid AWG updates for node {id}: {e}")).with("node_id", id.as_str()))?;
        out.insert(id.clone(), patch);
    }
    Ok(out)
}

/// `PUT /configs/{id}` (spec 02 §3.4).
pub async fn update(app: &AppState, id: &str, input: ConfigInput) -> AppResult<ConfigUpdated> {
    let mut tx = app.db.begin().await?;
    let old = store::get_tx(&mut tx, id).await?.ok_or_else(|| config_not_found(id))?;
    let name = names::validate_config_name(&input.name)?;
    let current = ProtocolChoice::from_stored(&old.tunnel_protocol, old.awg_version.as_deref());
    let target = awg::resolve_protocol(
        input.tunnel_protocol.clone().flatten().as_deref(),
        input.awg_version.clone().flatten().as_deref(),
        Some(current),
    )?;
    let stored = shared_params(&old);
    let mut rng = OsRng;
    let mut adjustments = Vec::new();
    let version_changed = target.awg_version() != current.awg_version();

    let shared = match target.awg_version() {
        Some(v) => {
            let base = if version_changed {
                let converted = awg_random::convert_shared(current.awg_version(), v, &stored, &mut rng);
                let mut base = converted.clone();
                base.awg_options = awg::merge_options(&stored.awg_options, &converted.awg_options);
                let reason = format!("Adapted to AWG {v}");
                let s_changed = base.s().into_iter().zip(stored.s()).map(|(a, b)| a != b);
                let h_changed = base.h().into_iter().zip(stored.h()).map(|(a, b)| a != b);
                for (field, changed) in awg::S_FIELDS.iter().zip(s_changed).chain(awg::H_FIELDS.iter().zip(h_changed)) {
                    if changed {
                        adjustments.push(json!({"field": field, "reason": reason}));
                    }
                }
                if base.awg_options != stored.awg_options {
                    adjustments.push(json!({"field": "awg_options", "reason": reason}));
                }
                base
            } else {
                stored.clone()
            };
            let incoming = awg::normalize_options(OptionLevel::Config, &input.request_options())?;
            awg::gate_options(OptionLevel::Config, v, &incoming, &base.awg_options)?;
            let mut s = input.shared_over(&base);
            s.awg_options = awg::merge_options(&base.awg_options, &incoming);
            let mut s = s.normalized()?;
            if version_changed {
                awg_random::backfill_shared(v, &mut s, &mut rng);
            }
            awg::validate_config_params(v, &s)?;
            s
        }
        None => SharedParams::cleared(),
    };

    let node_rows = node_store::list_for_config_tx(&mut tx, id).await?;
    let node_ids: Vec<String> = node_rows.iter().map(|n| n.id.clone()).collect();
    let drafts = match input.awg_node_updates.as_ref().filter(|m| !m.is_empty()) {
        Some(_) if target.awg_version().is_none() => {
            return Err(param_error("AWG node updates need an AmneziaWG config"));
        }
        Some(raw) => node_drafts(raw, &node_ids)?,
        None => BTreeMap::new(),
    };

    // Node AWG rows: drafts over stored values, then validate (and backfill on a version
    // change without a draft). Only rows whose values change are written.
    let mut node_writes: Vec<(String, NodeParams)> = Vec::new();
    for n in &node_rows {
        let before = nodes::node_params(n);
        let after = match target.awg_version() {
            Some(v) => {
                let draft = drafts.get(&n.id);
                let mut p = match draft {
                    Some(d) => d.draft_over(v, &before)?,
                    None => before.clone(),
                };
                if v == AwgVersion::V3_1
                    && let Some(rt) = shared.random_trailers()
                {
                    p.awg_options.insert(awg::OPT_RANDOM_TRAILERS.into(), Value::Bool(rt));
                }
                if version_changed && draft.is_none() {
                    awg_random::backfill_node(v, &shared.awg_options, &mut p, Strategy::default(), &mut GenericPackets, &mut rng)?;
                }
                awg::validate_node_params(v, &shared, &p).map_err(|e| {
                    let mut e = AppError::from(e);
                    e.detail.insert("node_id".into(), Value::String(n.id.clone()));
                    e
                })?;
                p
            }
            None => NodeParams::cleared(),
        };
        if after != before {
            node_writes.push((n.id.clone(), after));
        }
    }

    let now = util::now_iso();
    let mut row = old.clone();
    row.name = name.clone();
    if let Some(d) = &input.description {
        row.description = d.as_deref().map(str::trim).unwrap_or_default().to_string();
    }
    if let Some(Some(v)) = input.enabled {
        row.enabled = v;
    }
    if let Some(v) = &input.virtual_subnet {
        row.virtual_subnet = subnet(v.as_deref())?;
    }
    if let Some(v) = input.default_listen_port {
        row.default_listen_port = v.unwrap_or(DEFAULT_LISTEN_PORT);
    }
    if let Some(v) = input.default_mtu {
        row.default_mtu = v;
    }
    if let Some(v) = &input.default_dns {
        row.default_dns = names::optional_text(v.as_deref());
    }
    if let Some(Some(v)) = input.auto_sync {
        row.auto_sync = v;
    }
    set_choice(&mut row, target);
    set_shared(&mut row, &shared);
    row.updated_at = now.clone();

    // Change hint: nodes without their own port follow the default; auto links pointing at
    // them change Endpoint.
    let mut change_hints = Vec::new();
    let mut endpoint_nodes: Vec<String> = Vec::new();
    if row.default_listen_port != old.default_listen_port {
        let portless: Vec<&str> = node_rows.iter().filter(|n| n.listen_port.is_none()).map(|n| n.id.as_str()).collect();
        let links = crate::store::links::refs_of_config(&mut tx, id).await?;
        endpoint_nodes.extend(portless.iter().map(|s| s.to_string()));
        endpoint_nodes.extend(
            links
                .iter()
                .filter(|l| l.endpoint_mode == "auto" && portless.contains(&l.peer_node_id.as_str()))
                .map(|l| l.local_node_id.clone()),
        );
        endpoint_nodes.sort();
        endpoint_nodes.dedup();
        if !endpoint_nodes.is_empty() {
            change_hints.push(hint("CONFIG_ENDPOINTS_RECALCULATED", "info", endpoint_nodes.len()));
        }
    }

    if name != old.name && store::name_taken(&mut tx, &name, Some(id)).await? {
        return Err(name_exists(&name));
    }
    store::update(&mut tx, &row).await.map_err(conflict_to_name_exists(&name))?;
    for (node_id, p) in &node_writes {
        if let Some(mut n) = node_rows.iter().find(|n| &n.id == node_id).cloned() {
            nodes::set_node_params(&mut n, p);
            n.updated_at = now.clone();
            node_store::update(&mut tx, &n).await?;
        }
    }
    // Every file carries the shared values and defaults; otherwise only the rewritten nodes.
    let everyone = target != current
        || shared != stored
        || row.default_listen_port != old.default_listen_port
        || row.default_mtu != old.default_mtu
        || row.default_dns != old.default_dns;
    if everyone {
        node_store::mark_stale_config(&mut tx, id).await?;
    } else {
        let ids: Vec<String> = node_writes.iter().map(|(i, _)| i.clone()).chain(endpoint_nodes).collect();
        node_store::mark_stale(&mut tx, &ids).await?;
    }
    tx.commit().await?;

    let mut affected = node_ids;
    affected.sort();
    refresh::schedule(app, PublishPlan::config_change(id, &affected, false));
    let previous_protocol = (old.tunnel_protocol != row.tunnel_protocol).then_some(old.tunnel_protocol.as_str());
    crate::service::binding::on_config_changed(app, id, previous_protocol).await;
    let c = store::counters(&app.db, id).await?;
    Ok(ConfigUpdated {
        config: detail_view(&row, &c, app.settings.enable_mqtt_services),
        adjustments,
        change_hints,
        affected_node_ids: affected,
    })
}

/// `DELETE /configs/{id}`: the config and every row hanging off it (spec 02 §2.6).
pub async fn delete(app: &AppState, id: &str) -> AppResult<Value> {
    let mut tx = app.db.begin().await?;
    if !store::delete(&mut tx, id).await? {
        return Err(config_not_found(id));
    }
    tx.commit().await?;
    refresh::schedule(app, PublishPlan::config_change(id, &[], true));
    crate::service::binding::on_config_deleted(app, id).await;
    Ok(json!({"message": "Config deleted"}))
}

/// `GET /configs/protocol-options`.
pub fn protocol_options() -> Value {
    awg::protocol_options()
}
