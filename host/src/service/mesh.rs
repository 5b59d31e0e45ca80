//! Mesh pairs, drafts, the node mesh workspace, topology validation and Quick Mesh
//! (spec 02 §6–§7).
//!
//! The rules live in `wfm_domain` (`peer_link`, `endpoint`, `topology`, `quick_mesh`); this
//! module looks rows up, owns the transaction and publishes after commit. A write marks stale
//! only the nodes whose files it changes: the two ends of a pair, or every node of the config
//! for Quick Mesh.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};
use wfm_domain::awg::random::OsRng;
use wfm_domain::endpoint::{EndpointFamily, EndpointSettings, PeerAddress, keepalive_display, resolve};
use wfm_domain::peer_link::{self, DirectionValues, DraftNode, PairInput, PairValues};
use wfm_domain::quick_mesh::{self, QmNode};
use wfm_domain::topology::{self, Analysis, TopoLink, TopoNode};
use wfm_domain::{keys, render::Hooks};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::configs;
use crate::service::nodes;
use crate::service::refresh::{self, PublishPlan};
use crate::state::AppState;
use crate::store::configs::ConfigRow;
use crate::store::StoreError;
use crate::store::links::{self as store, BulkPair, BulkRun, LinkRow, TopoRow};
use crate::store::nodes::{self as node_store, NodeRow};
use crate::util;

/// A link row as the API shows it (spec 02 §2.4).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LinkView {
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

/// The API view of a row (legacy family `domain` reads as `ipv4`).
pub fn link_view(r: &LinkRow) -> LinkView {
    LinkView {
        id: r.id.clone(),
        config_id: r.config_id.clone(),
        local_node_id: r.local_node_id.clone(),
        peer_node_id: r.peer_node_id.clone(),
        link_group_id: r.link_group_id.clone(),
        direction: r.direction.clone(),
        enabled: r.enabled,
        allowed_ips: r.allowed_ips.clone(),
        persistent_keepalive: r.persistent_keepalive,
        preshared_key: r.preshared_key.clone(),
        endpoint_mode: r.endpoint_mode.clone(),
        endpoint_ref_family: r
            .endpoint_ref_family
            .as_deref()
            .map(|f| EndpointFamily::from_stored(Some(f)).as_str().to_string()),
        endpoint_manual_host: r.endpoint_manual_host.clone(),
        endpoint_port_mode: r.endpoint_port_mode.clone(),
        endpoint_manual_port: r.endpoint_manual_port,
        notes: r.notes.clone(),
        created_at: r.created_at.clone(),
        updated_at: r.updated_at.clone(),
    }
}

fn settings_of(r: &LinkRow) -> EndpointSettings<'_> {
    EndpointSettings::from_stored(
        &r.endpoint_mode,
        r.endpoint_ref_family.as_deref(),
        r.endpoint_manual_host.as_deref(),
        &r.endpoint_port_mode,
        r.endpoint_manual_port,
    )
}

/// A node as an Endpoint target.
pub fn address(n: &NodeRow) -> PeerAddress<'_> {
    PeerAddress {
        name: &n.name,
        ipv4_address: n.ipv4_address.as_deref(),
        ipv6_address: n.ipv6_address.as_deref(),
        listen_port: n.listen_port,
    }
}

fn peer_link_not_found(group_id: &str) -> AppError {
    AppError::new(ErrorCode::PeerLinkNotFound, "Peer link group not found").with("link_group_id", group_id)
}

fn mismatch(node_id: &str, config_id: &str) -> AppError {
    AppError::new(ErrorCode::NodeConfigMismatch, "Node does not belong to this config")
        .with("node_id", node_id)
        .with("config_id", config_id)
}

fn disabled_400(node: &NodeRow) -> AppError {
    AppError::new(ErrorCode::NodeDisabled, format!("Node {} is disabled", node.name))
        .with("node_id", node.id.as_str())
        .with_status(axum::http::StatusCode::BAD_REQUEST)
}

/// Loads a node of `config_id`: `NODE_NOT_FOUND`, `NODE_CONFIG_MISMATCH`.
async fn node_in_config(app: &AppState, config_id: &str, node_id: &str) -> AppResult<NodeRow> {
    let n = node_store::get(&app.db, node_id.trim()).await?.ok_or_else(|| nodes::node_not_found(node_id.trim()))?;
    if n.config_id != config_id {
        return Err(mismatch(&n.id, config_id));
    }
    Ok(n)
}

fn mqtt(app: &AppState) -> bool {
    app.settings.enable_mqtt_services
}

// ---------------------------------------------------------------------------------------------
// Pairs (§6.1–6.2)
// ---------------------------------------------------------------------------------------------

/// `GET /configs/{id}/peer-links`.
pub async fn list(app: &AppState, config_id: &str) -> AppResult<Vec<LinkView>> {
    configs::load(app, config_id).await?;
    Ok(store::list_for_config(&app.db, config_id).await?.iter().map(link_view).collect())
}

fn row_from(
    config: &ConfigRow,
    d: &DirectionValues,
    peer: &NodeRow,
    group_id: &str,
    direction: &str,
    v: &PairValues,
    created_at: &str,
) -> LinkRow {
    LinkRow {
        id: util::new_id("plink"),
        config_id: config.id.clone(),
        local_node_id: d.local_node_id.clone(),
        peer_node_id: d.peer_node_id.clone(),
        link_group_id: group_id.to_string(),
        direction: direction.to_string(),
        enabled: v.enabled,
        allowed_ips: d.allowed_ips.clone(),
        persistent_keepalive: d.effective_keepalive(&address(peer), config.default_listen_port),
        preshared_key: v.preshared_key.clone(),
        endpoint_mode: d.endpoint_mode.as_str().to_string(),
        endpoint_ref_family: d.endpoint_ref_family.map(|f| f.as_str().to_string()),
        endpoint_manual_host: d.endpoint_manual_host.clone(),
        endpoint_port_mode: d.endpoint_port_mode.as_str().to_string(),
        endpoint_manual_port: d.endpoint_manual_port,
        notes: v.notes.clone(),
        created_at: created_at.to_string(),
        updated_at: created_at.to_string(),
    }
}

/// `POST /configs/{id}/peer-links`: both rows of a new group.
pub async fn create(app: &AppState, config_id: &str, input: PairInput) -> AppResult<Vec<LinkView>> {
    let config = configs::load(app, config_id).await?;
    // Node checks first (spec order), on the forward direction's nodes.
    let a = node_in_config(app, config_id, &input.forward.local_node_id).await?;
    let b = node_in_config(app, config_id, &input.forward.peer_node_id).await?;
    for n in [&a, &b] {
        if !n.enabled {
            return Err(disabled_400(n));
        }
    }
    let v = peer_link::normalize_pair(&input)?;
    let group = util::new_id("group");
    // Both rows of a pair share their timestamps; link order puts forward first.
    let t0 = util::now_iso();
    let fwd = row_from(&config, &v.forward, &b, &group, "forward", &v, &t0);
    let rev = row_from(&config, &v.reverse, &a, &group, "reverse", &v, &t0);
    let mut tx = app.db.begin().await?;
    // The nodes were read outside the write: make sure they are still there.
    if !store::nodes_in_config(&mut tx, config_id, &[&a.id, &b.id]).await? {
        return Err(nodes::node_not_found(&input.forward.local_node_id));
    }
    store::insert_pair(&mut tx, &fwd, &rev).await?;
    node_store::mark_stale(&mut tx, &[a.id.clone(), b.id.clone()]).await?;
    tx.commit().await?;
    refresh::schedule(app, PublishPlan::config_change(config_id, &[a.id, b.id], false));
    Ok(vec![link_view(&fwd), link_view(&rev)])
}

/// `PUT /peer-links/{group_id}`.
pub async fn update(app: &AppState, group_id: &str, input: PairInput) -> AppResult<Vec<LinkView>> {
    let v = peer_link::normalize_pair(&input)?;
    let mut tx = app.db.begin().await?;
    let mut rows = store::group_tx(&mut tx, group_id).await?;
    if rows.is_empty() {
        return Err(peer_link_not_found(group_id));
    }
    let stored_fwd = rows.iter().position(|r| r.direction == "forward").unwrap_or(0);
    let (sa, sb) = (rows[stored_fwd].local_node_id.clone(), rows[stored_fwd].peer_node_id.clone());
    let payload_fwd_is_stored_fwd = peer_link::match_update_directions(&v, (&sa, &sb))?;
    let config = config_store_get(&mut tx, &rows[0].config_id).await?;
    let mut by_id: HashMap<String, NodeRow> = HashMap::new();
    for id in [&sa, &sb] {
        if let Some(n) = node_store::get_tx(&mut tx, id).await? {
            by_id.insert(n.id.clone(), n);
        }
    }
    let now = util::now_iso();
    for r in rows.iter_mut() {
        // Match the payload direction whose (local, peer) is this row's.
        let d = if (r.local_node_id == sa) == payload_fwd_is_stored_fwd { &v.forward } else { &v.reverse };
        if d.local_node_id != r.local_node_id || d.peer_node_id != r.peer_node_id {
            return Err(AppError::new(ErrorCode::InvalidPeerLink, "Bidirectional link node direction mismatch"));
        }
        r.enabled = v.enabled;
        r.notes = v.notes.clone();
        r.allowed_ips = d.allowed_ips.clone();
        r.persistent_keepalive = match by_id.get(&r.peer_node_id) {
            Some(peer) => d.effective_keepalive(&address(peer), config.default_listen_port),
            None => None,
        };
        r.endpoint_mode = d.endpoint_mode.as_str().to_string();
        r.endpoint_ref_family = d.endpoint_ref_family.map(|f| f.as_str().to_string());
        r.endpoint_manual_host = d.endpoint_manual_host.clone();
        r.endpoint_port_mode = d.endpoint_port_mode.as_str().to_string();
        r.endpoint_manual_port = d.endpoint_manual_port;
        if v.clear_preshared_key {
            r.preshared_key = None;
        } else if let Some(psk) = &v.preshared_key {
            r.preshared_key = Some(psk.clone());
        }
        r.updated_at = now.clone();
        store::update(&mut tx, r).await?;
    }
    let ends = vec![sa, sb];
    node_store::mark_stale(&mut tx, &ends).await?;
    tx.commit().await?;
    refresh::schedule(app, PublishPlan::config_change(&config.id, &ends, false));
    Ok(rows.iter().map(link_view).collect())
}

async fn config_store_get(tx: &mut crate::store::Tx, id: &str) -> AppResult<ConfigRow> {
    crate::store::configs::get_tx(tx, id).await?.ok_or_else(|| configs::config_not_found(id))
}

/// `DELETE /peer-links/{group_id}`.
pub async fn delete(app: &AppState, group_id: &str) -> AppResult<Value> {
    let mut tx = app.db.begin().await?;
    let rows = store::group_tx(&mut tx, group_id).await?;
    if rows.is_empty() {
        return Err(peer_link_not_found(group_id));
    }
    store::delete_group(&mut tx, group_id).await?;
    let mut ends: Vec<String> = rows.iter().flat_map(|r| [r.local_node_id.clone(), r.peer_node_id.clone()]).collect();
    ends.sort();
    ends.dedup();
    node_store::mark_stale(&mut tx, &ends).await?;
    tx.commit().await?;
    refresh::schedule(app, PublishPlan::config_change(&rows[0].config_id, &ends, false));
    Ok(json!({"message": "Peer link group deleted"}))
}

/// `POST /peer-links/psk/generate`.
pub fn generate_psk() -> Value {
    json!({"preshared_key": keys::generate_psk(&mut OsRng)})
}

// ---------------------------------------------------------------------------------------------
// Draft (§6.4) and workspace (§6.5)
// ---------------------------------------------------------------------------------------------

fn draft_node(n: &NodeRow) -> DraftNode<'_> {
    DraftNode {
        id: &n.id,
        name: &n.name,
        virtual_ip: n.virtual_ip.as_deref(),
        ipv4_address: n.ipv4_address.as_deref(),
        ipv6_address: n.ipv6_address.as_deref(),
        listen_port: n.listen_port,
    }
}

/// `GET /configs/{id}/nodes/{node_id}/peer-link-draft`.
pub async fn draft(app: &AppState, config_id: &str, node_id: &str, peer_node_id: &str, family: EndpointFamily) -> AppResult<Value> {
    let config = configs::load(app, config_id).await?;
    let local = node_in_config(app, config_id, node_id).await?;
    let peer = node_in_config(app, config_id, peer_node_id).await?;
    for n in [&local, &peer] {
        if !n.enabled {
            return Err(disabled_400(n));
        }
    }
    if local.id == peer.id {
        return Err(AppError::new(ErrorCode::InvalidPeerLink, "A node cannot link to itself"));
    }
    let (l, p) = (draft_node(&local), draft_node(&peer));
    let port = config.default_listen_port;
    Ok(json!({
        "local_node": nodes::view(&local, mqtt(app)),
        "peer_node": nodes::view(&peer, mqtt(app)),
        "endpoint_ref_family": family.as_str(),
        "forward": peer_link::direction_draft(&l, &p, family, port),
        "reverse": peer_link::direction_draft(&p, &l, family, port),
        "warnings": peer_link::draft_warnings(&l, &p, family),
    }))
}

fn card(r: &LinkRow, peer: Option<&NodeRow>, default_port: i64) -> Value {
    let (summary, has_ep) = match peer {
        Some(p) => {
            let res = resolve(&settings_of(r), &address(p), default_port);
            (res.summary, res.endpoint.is_some())
        }
        None => ("No Endpoint".to_string(), false),
    };
    json!({
        "link_id": r.id,
        "local_node_id": r.local_node_id,
        "peer_node_id": r.peer_node_id,
        "allowed_ips": r.allowed_ips,
        "persistent_keepalive": r.persistent_keepalive,
        "endpoint_mode": r.endpoint_mode,
        "endpoint_ref_family": r.endpoint_ref_family.as_deref().map(|f| EndpointFamily::from_stored(Some(f)).as_str()),
        "endpoint_manual_host": r.endpoint_manual_host,
        "endpoint_port_mode": r.endpoint_port_mode,
        "endpoint_manual_port": r.endpoint_manual_port,
        "endpoint_summary": summary,
        "keepalive_display": keepalive_display(has_ep, r.persistent_keepalive),
    })
}

/// Topology analysis of already loaded nodes and rows.
pub fn analyze_rows(config: &ConfigRow, nodes: &[NodeRow], rows: &[TopoRow]) -> Analysis {
    let tn: Vec<TopoNode<'_>> = nodes
        .iter()
        .map(|n| TopoNode {
            id: &n.id,
            name: &n.name,
            enabled: n.enabled,
            ipv4_address: n.ipv4_address.as_deref(),
            ipv6_address: n.ipv6_address.as_deref(),
            listen_port: n.listen_port,
        })
        .collect();
    let tl: Vec<TopoLink<'_>> = rows
        .iter()
        .map(|r| TopoLink {
            group_id: &r.link_group_id,
            local_node_id: &r.local_node_id,
            peer_node_id: &r.peer_node_id,
            forward: r.direction == "forward",
            enabled: r.enabled,
            endpoint: EndpointSettings::from_stored(
                &r.endpoint_mode,
                r.endpoint_ref_family.as_deref(),
                r.endpoint_manual_host.as_deref(),
                &r.endpoint_port_mode,
                r.endpoint_manual_port,
            ),
        })
        .collect();
    topology::analyze(&tn, &tl, config.default_listen_port)
}

/// Topology analysis of a config, read fresh.
pub async fn analyze_config(app: &AppState, config: &ConfigRow) -> AppResult<Analysis> {
    let nodes = node_store::list_for_config(&app.db, &config.id).await?;
    let rows = store::topo_rows(&app.db, &config.id).await?;
    Ok(analyze_rows(config, &nodes, &rows))
}

/// `POST /configs/{id}/mesh/validate`.
pub async fn validate(app: &AppState, config_id: &str) -> AppResult<topology::ValidationResult> {
    let config = configs::load(app, config_id).await?;
    Ok(analyze_config(app, &config).await?.validation())
}

/// `GET /configs/{id}/nodes/{node_id}/mesh-workspace`.
pub async fn workspace(app: &AppState, config_id: &str, node_id: &str) -> AppResult<Value> {
    let config = configs::load(app, config_id).await?;
    let viewer = node_in_config(app, config_id, node_id).await?;
    let nodes = node_store::list_for_config(&app.db, config_id).await?;
    let analysis = analyze_rows(&config, &nodes, &store::topo_rows(&app.db, config_id).await?);
    let rows = store::rows_touching(&app.db, node_id).await?;
    Ok(workspace_of(&config, &viewer, &nodes, &analysis, &rows, mqtt(app)))
}

/// The mesh workspace of `viewer` from the config's nodes, its topology analysis (config-wide)
/// and the link rows of the pairs the viewer is part of (both directions): what the REST
/// answer and the SSE projection (which reads the rest once per plan) share.
pub fn workspace_of(
    config: &ConfigRow,
    viewer: &NodeRow,
    nodes: &[NodeRow],
    analysis: &Analysis,
    rows: &[LinkRow],
    mqtt_on: bool,
) -> Value {
    let by_id: HashMap<&str, &NodeRow> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut groups: HashMap<&str, Vec<&LinkRow>> = HashMap::new();
    for r in rows {
        groups.entry(r.link_group_id.as_str()).or_default().push(r);
    }
    let port = config.default_listen_port;
    let readonly = !viewer.enabled;
    let mut connections = Vec::new();
    for r in rows.iter().filter(|r| r.local_node_id == viewer.id) {
        let other = groups.get(r.link_group_id.as_str()).and_then(|g| g.iter().find(|o| o.id != r.id)).copied();
        let peer = by_id.get(r.peer_node_id.as_str()).copied();
        let local = by_id.get(r.local_node_id.as_str()).copied();
        let finding = analysis.groups.get(&r.link_group_id);
        let broken = finding.and_then(|f| f.broken_message.clone());
        let duplicate = finding.and_then(|f| f.duplicate_message.clone());
        let psk = r.preshared_key.clone().or_else(|| other.and_then(|o| o.preshared_key.clone()));
        let notes = if r.notes.is_empty() { other.map(|o| o.notes.clone()).unwrap_or_default() } else { r.notes.clone() };
        let updated_at = match other {
            Some(o) if o.updated_at > r.updated_at => o.updated_at.clone(),
            _ => r.updated_at.clone(),
        };
        connections.push(json!({
            "link_group_id": r.link_group_id,
            "peer_node": peer.map(|p| nodes::view(p, mqtt_on)),
            "enabled": r.enabled,
            "has_preshared_key": psk.is_some(),
            "preshared_key": psk,
            "notes": notes,
            "updated_at": updated_at,
            "forward": card(r, peer, port),
            "reverse": other.map(|o| card(o, local, port)),
            "integrity_status": if broken.is_some() { "broken" } else { "healthy" },
            "integrity_message": broken.unwrap_or_default(),
            "duplicate_enabled_pair": duplicate.is_some(),
            "duplicate_message": duplicate.unwrap_or_default(),
            "readonly": readonly,
            "peer_disabled": peer.is_none_or(|p| !p.enabled),
        }));
    }
    json!({
        "node": nodes::view(viewer, mqtt_on),
        "connections": connections,
        "readonly": readonly,
        "validation": analysis.validation(),
    })
}

// ---------------------------------------------------------------------------------------------
// Quick Mesh (§7)
// ---------------------------------------------------------------------------------------------

/// `POST /configs/{id}/mesh/quick-generate`: replaces every link of the config in one
/// transaction; a failure anywhere leaves the old links in place.
pub async fn quick_generate(app: &AppState, config_id: &str, req: quick_mesh::Request) -> AppResult<Value> {
    let config = configs::load(app, config_id).await?;
    let node_rows = node_store::list_for_config(&app.db, config_id).await?;
    let qm: Vec<QmNode<'_>> = node_rows
        .iter()
        .map(|n| QmNode {
            id: &n.id,
            name: &n.name,
            enabled: n.enabled,
            virtual_ip: n.virtual_ip.as_deref(),
            ipv4_address: n.ipv4_address.as_deref(),
            ipv6_address: n.ipv6_address.as_deref(),
        })
        .collect();
    let plan = quick_mesh::plan(&qm, &config.virtual_subnet, &req)?;

    // PSKs are drawn before the transaction: the write holds the database only for the
    // statements themselves.
    let now = util::now();
    let psks: Vec<Option<String>> =
        plan.pairs.iter().map(|_| req.use_preshared_key.then(|| keys::generate_psk(&mut OsRng))).collect();
    let pairs: Vec<BulkPair<'_>> = plan
        .pairs
        .iter()
        .zip(&psks)
        .map(|(p, psk)| BulkPair {
            a: qm[p.a].id,
            b: qm[p.b].id,
            allowed_ab: &p.allowed_ab,
            allowed_ba: &p.allowed_ba,
            keepalive_ab: p.keepalive_ab,
            keepalive_ba: p.keepalive_ba,
            preshared_key: psk.as_deref(),
        })
        .collect();
    let participants: Vec<&str> = plan.affected_node_ids.iter().map(String::as_str).collect();
    // Each pair gets its own microsecond so link order is the plan's; the last is `now`.
    let created_base_us = util::micros(now) - plan.pairs.len() as i64 + 1;
    // Group and link ids are consecutive within the batch, so the insert appends to the table
    // instead of scattering over it. A base that collides with an existing id fails the insert
    // with a conflict: retry with fresh bases (a new transaction; the failed one is rolled back
    // on drop).
    const ATTEMPTS: usize = 3;
    let mut attempt = 0;
    let deleted = loop {
        attempt += 1;
        let (link_ids, group_ids) = (util::IdRun::new(), util::IdRun::new());
        let mut tx = app.db.begin().await?;
        // Group ids continue after the highest stored one (random gap below 2^16) when there
        // is room, so the pairs are appended to the table; else a random base.
        let jitter = (group_ids.value(0) & 0xffff) as u16;
        let group_base = store::append_base(&mut tx, pairs.len(), jitter).await?.unwrap_or(group_ids.value(0));
        let run = BulkRun { group_base, link_base: link_ids.value(0), created_base_us, updated_us: util::micros(now) };
        // The nodes were read outside the write: make sure none was deleted or moved since.
        if !store::nodes_in_config(&mut tx, config_id, &participants).await? {
            return Err(AppError::new(ErrorCode::NodeNotFound, "A node of the mesh was deleted meanwhile; run Quick Mesh again"));
        }
        let deleted = match store::replace_for_config(&mut tx, config_id, plan.family.as_str(), run, &pairs).await {
            Ok(deleted) => deleted,
            Err(StoreError::Conflict(msg)) if attempt < ATTEMPTS => {
                tracing::warn!(config_id, attempt, error = %msg, "quick mesh insert conflicted; retrying with fresh ids");
                drop(tx);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        node_store::mark_stale_config(&mut tx, config_id).await?;
        tx.commit().await?;
        break deleted;
    };
    refresh::schedule(app, PublishPlan::config_change(config_id, &plan.affected_node_ids, false));
    Ok(json!({
        "mode": plan.mode.as_str(),
        "endpoint_ref_family": plan.family.as_str(),
        "use_preshared_key": req.use_preshared_key,
        "generated_groups": plan.pairs.len(),
        "deleted_links": deleted,
        "affected_node_ids": plan.affected_node_ids,
        "message": "Mesh links regenerated",
    }))
}

/// Managed hook commands per node id (spec 02 §2.2 `managed_hooks`, rendered after the node's
/// own commands). The seam for port forwarding: today no feature contributes lines, so every
/// node gets none; a provider (the port-forward plugin) plugs in here.
pub trait ManagedHooksProvider: Send + Sync {
    /// Commands for these nodes of `config_id`; nodes without any may be absent.
    fn hooks<'a>(
        &'a self,
        app: &'a AppState,
        config_id: &'a str,
        node_ids: &'a [String],
    ) -> refresh::BoxFut<'a, AppResult<HashMap<String, Hooks>>>;
}

/// The provider used when no feature contributes managed hooks.
pub struct NoManagedHooks;

impl ManagedHooksProvider for NoManagedHooks {
    fn hooks<'a>(
        &'a self,
        _app: &'a AppState,
        _config_id: &'a str,
        _node_ids: &'a [String],
    ) -> refresh::BoxFut<'a, AppResult<HashMap<String, Hooks>>> {
        Box::pin(async { Ok(HashMap::new()) })
    }
}
