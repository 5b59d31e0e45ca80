//! Read projections (spec 02 §9): the config overview, the topology counters of the config
//! list, the topology section of the system status, and the SSE payload builders the refresh
//! worker calls after writes (spec 04 §1.4).
//!
//! Runtime fields report the stored runtime rows as they are (offline/unknown until an agent
//! reports), never invented values.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::AppResult;
use crate::events::Payload;
use crate::service::configs::{self, ConfigView};
use crate::service::mesh;
use crate::service::nodes;
use crate::service::refresh::{BoxFut, PlanPayloads, Projections};
use crate::service::render;
use crate::service::tags;
use crate::state::AppState;
use crate::store::configs::{ConfigRow, NodeCounters};
use crate::store::links as link_store;
use crate::store::nodes::{self as node_store, NodeRow};
use crate::store::status;

/// Topology summary of a config (§6.6), read fresh.
pub async fn topology_summary(app: &AppState, config: &ConfigRow) -> AppResult<wfm_domain::topology::Analysis> {
    mesh::analyze_config(app, config).await
}

/// `GET /configs` with the topology counters filled in (a disabled config reports valid).
pub async fn config_list(app: &AppState) -> AppResult<Vec<ConfigView>> {
    let mut views = configs::list(app).await?;
    let linked: HashSet<String> = crate::store::configs::ids_with_links(&app.db).await?.into_iter().collect();
    for v in views.iter_mut().filter(|v| v.enabled) {
        // A config without links can only carry the no-links warning, never an error.
        if !linked.contains(&v.id) {
            continue;
        }
        let row = configs::load(app, &v.id).await?;
        let a = topology_summary(app, &row).await?;
        v.topology_invalid = !a.errors.is_empty();
        v.topology_error_count = a.errors.len() as i64;
    }
    Ok(views)
}

/// The `topology` section of the system status: invalid enabled configs.
pub async fn system_topology(app: &AppState) -> AppResult<Value> {
    let mut items = Vec::new();
    let mut invalid_nodes = 0usize;
    let linked: HashSet<String> = crate::store::configs::ids_with_links(&app.db).await?.into_iter().collect();
    for row in crate::store::configs::list(&app.db).await? {
        if !row.enabled || !linked.contains(&row.id) {
            continue;
        }
        let s = topology_summary(app, &row).await?.summary();
        if !s.valid {
            invalid_nodes += s.invalid_node_count;
            items.push(json!({
                "config_id": row.id,
                "config_name": row.name,
                "error_count": s.error_count,
                "invalid_node_count": s.invalid_node_count,
                "errors": s.errors,
            }));
        }
    }
    Ok(json!({
        "valid": items.is_empty(),
        "invalid_config_count": items.len(),
        "invalid_node_count": invalid_nodes,
        "invalid_configs": items,
    }))
}

/// What the projections of one config read once: the config, its nodes and links, the
/// topology analysis, counters and tags. Built once per plan run (SSE) or per request (REST).
pub struct ConfigMemo {
    config: ConfigRow,
    nodes: Vec<NodeRow>,
    index: HashMap<String, usize>,
    topo: Vec<link_store::TopoRow>,
    analysis: wfm_domain::topology::Analysis,
    /// Nodes that own a link row (the local side): their mesh workspaces list connections.
    /// Built on first use (mesh workspaces only).
    linked: OnceLock<HashSet<String>>,
    counters: NodeCounters,
    mqtt: bool,
    /// The `nodes` list (node views), serialised once and shared by the overview and every
    /// mesh workspace of the run.
    node_views: OnceLock<Payload>,
    validation: OnceLock<Value>,
}

impl ConfigMemo {
    /// Reads a config's rows; `None` when the config does not exist.
    pub async fn load(app: &AppState, config_id: &str) -> AppResult<Option<ConfigMemo>> {
        let Some(config) = crate::store::configs::get(&app.db, config_id).await? else { return Ok(None) };
        Ok(Some(Self::of(app, config).await?))
    }

    async fn of(app: &AppState, config: ConfigRow) -> AppResult<ConfigMemo> {
        let nodes = node_store::list_for_config(&app.db, &config.id).await?;
        let topo = link_store::topo_rows(&app.db, &config.id).await?;
        let analysis = mesh::analyze_rows(&config, &nodes, &topo);
        let index = nodes.iter().enumerate().map(|(i, n)| (n.id.clone(), i)).collect();
        let counters = crate::store::configs::counters(&app.db, &config.id).await?;
        Ok(ConfigMemo {
            config,
            nodes,
            index,
            topo,
            analysis,
            linked: OnceLock::new(),
            counters,
            mqtt: app.settings.enable_mqtt_services,
            node_views: OnceLock::new(),
            validation: OnceLock::new(),
        })
    }

    fn has_links(&self, node_id: &str) -> bool {
        self.linked
            .get_or_init(|| {
                let mut set = HashSet::with_capacity(self.nodes.len());
                for r in &self.topo {
                    if !set.contains(r.local_node_id.as_str()) {
                        set.insert(r.local_node_id.clone());
                    }
                }
                set
            })
            .contains(node_id)
    }

    fn node(&self, node_id: &str) -> Option<&NodeRow> {
        self.index.get(node_id).map(|&i| &self.nodes[i])
    }

    fn node_views(&self) -> Payload {
        self.node_views
            .get_or_init(|| Payload::raw(&self.nodes.iter().map(|n| nodes::view(n, self.mqtt)).collect::<Vec<_>>()))
            .clone()
    }

    fn node_type<'r>(&self, n: &'r NodeRow) -> &'r str {
        if self.mqtt { n.node_type.as_str() } else { "static" }
    }
}

// Overview items, serialised straight from the rows. Fields are in alphabetical order: the
// order the JSON objects these replace were written in.

#[derive(Serialize)]
struct NodeCard<'a> {
    created_at: &'a str,
    enabled: bool,
    id: &'a str,
    ipv4_address: &'a Option<String>,
    ipv6_address: &'a Option<String>,
    mesh_error: bool,
    name: &'a str,
    node_type: &'a str,
    online: bool,
    peers_total: i64,
    tags: Vec<String>,
    virtual_ip: &'a Option<String>,
}

#[derive(Serialize)]
struct SnapshotItem<'a> {
    client_initialized: bool,
    client_presence_state: &'a str,
    config_sync_state: &'a str,
    connectivity_state: &'a str,
    last_probe_ack_at: Option<&'a str>,
    last_probe_sent_at: Option<&'a str>,
    last_seen: Option<&'a str>,
    node_id: &'a str,
    node_name: &'a str,
    node_type: &'a str,
    online: bool,
    peers_online: i64,
    peers_total: i64,
    server_apply_status: &'a str,
    wg_runtime_state: &'a str,
    wg_running: bool,
}

#[derive(Serialize)]
struct SyncItem<'a> {
    auto_sync: bool,
    confirmed_sha256: &'a str,
    confirmed_version: i64,
    desired_sha256: &'a str,
    desired_version: i64,
    node_id: &'a str,
    node_name: &'a str,
    node_type: &'a str,
    reported_local_sha256: &'a str,
    reported_local_version: i64,
    runtime_status: &'a str,
    staged_sha256: &'a str,
    staged_version: i64,
    status: &'a str,
    topology_messages: &'a [String],
    topology_valid: bool,
}

/// `GET /configs/{id}/overview`.
pub async fn overview(app: &AppState, config_id: &str) -> AppResult<Payload> {
    let row = configs::load(app, config_id).await?;
    let memo = ConfigMemo::of(app, row).await?;
    overview_of(app, &memo).await
}

/// The overview of a loaded config: the per-node runtime, client and sync rows are read here,
/// everything else comes from the memo.
async fn overview_of(app: &AppState, memo: &ConfigMemo) -> AppResult<Payload> {
    let config_id = memo.config.id.as_str();
    let mqtt = memo.mqtt;
    let node_rows = &memo.nodes;
    let analysis = &memo.analysis;
    let summary = analysis.summary();
    let rows: HashMap<String, status::OverviewRow> =
        status::overview_rows(&app.db, config_id).await?.into_iter().map(|r| (r.node_id.clone(), r)).collect();
    // The node's runtime and client rows, when it has them; its sync slots (empty when missing).
    let runtime_of = |n: &NodeRow| rows.get(&n.id).filter(|r| r.rt_node_id.is_some());
    let client_of = |n: &NodeRow| rows.get(&n.id).filter(|r| r.cl_node_id.is_some());
    // Sync slots read as empty when the node has no state row.
    let no_row = status::OverviewRow::default();
    let sync_of = |n: &NodeRow| rows.get(&n.id).unwrap_or(&no_row);
    let status_of = |r: &status::OverviewRow| crate::service::sync::apply_status(&r.desired_sha256, &r.staged_sha256);
    let invalid: HashSet<&str> = summary.invalid_node_ids.iter().map(String::as_str).collect();
    let topology_messages = analysis.sync_messages();

    let online = |n: &NodeRow| {
        n.enabled && mqtt && n.node_type == "dynamic" && runtime_of(n).is_some_and(|r| r.online == Some(true))
    };
    let (mut dynamic, mut static_, mut disabled, mut online_n) = (0, 0, 0, 0);
    let mut node_cards = Vec::new();
    let mut disabled_cards = Vec::new();
    let mut snapshot = Vec::with_capacity(node_rows.len());
    let mut sync_items = Vec::new();
    for n in node_rows {
        let rt = runtime_of(n);
        let cl = client_of(n);
        let sy = sync_of(n);
        let node_type = memo.node_type(n);
        if !n.enabled {
            disabled += 1;
        } else if node_type == "dynamic" {
            dynamic += 1;
        } else {
            static_ += 1;
        }
        let is_online = online(n);
        if is_online {
            online_n += 1;
        }
        let card = NodeCard {
            created_at: &n.created_at,
            enabled: n.enabled,
            id: &n.id,
            ipv4_address: &n.ipv4_address,
            ipv6_address: &n.ipv6_address,
            mesh_error: invalid.contains(n.id.as_str()),
            name: &n.name,
            node_type,
            online: is_online,
            peers_total: if n.enabled { rt.and_then(|r| r.peers_total).unwrap_or(0) } else { 0 },
            tags: nodes::json_list(&n.tags_json),
            virtual_ip: &n.virtual_ip,
        };
        if n.enabled { node_cards.push(card) } else { disabled_cards.push(card) }
        snapshot.push(SnapshotItem {
            client_initialized: cl.and_then(|c| c.client_initialized).unwrap_or(false),
            client_presence_state: cl.and_then(|c| c.client_presence_state.as_deref()).unwrap_or("offline"),
            config_sync_state: rt.and_then(|r| r.config_sync_state.as_deref()).unwrap_or("unknown"),
            connectivity_state: rt.and_then(|r| r.connectivity_state.as_deref()).unwrap_or("unknown"),
            last_probe_ack_at: rt.and_then(|r| r.last_probe_ack_at.as_deref()),
            last_probe_sent_at: rt.and_then(|r| r.last_probe_sent_at.as_deref()),
            last_seen: rt.and_then(|r| r.last_seen.as_deref()),
            node_id: &n.id,
            node_name: &n.name,
            node_type,
            online: rt.and_then(|r| r.online).unwrap_or(false),
            peers_online: rt.and_then(|r| r.peers_online).unwrap_or(0),
            peers_total: rt.and_then(|r| r.peers_total).unwrap_or(0),
            server_apply_status: if n.enabled { status_of(sy) } else { "unknown" },
            wg_runtime_state: rt.and_then(|r| r.wg_runtime_state.as_deref()).unwrap_or("unknown"),
            wg_running: rt.and_then(|r| r.wg_running).unwrap_or(false),
        });
        if n.enabled {
            sync_items.push(SyncItem {
                auto_sync: n.auto_sync,
                confirmed_sha256: &sy.confirmed_sha256,
                confirmed_version: sy.confirmed_version,
                desired_sha256: &sy.desired_sha256,
                desired_version: sy.desired_version,
                node_id: &n.id,
                node_name: &n.name,
                node_type,
                reported_local_sha256: &sy.reported_local_sha256,
                reported_local_version: sy.reported_local_version,
                runtime_status: rt.and_then(|r| r.config_sync_state.as_deref()).unwrap_or("unknown"),
                staged_sha256: &sy.staged_sha256,
                staged_version: sy.staged_version,
                status: status_of(sy),
                topology_messages: &topology_messages,
                topology_valid: summary.valid,
            });
        }
    }
    let json = |v: Value| Payload::Json(v);
    Ok(Payload::Object(vec![
        ("config", json(json!(configs::detail_view(&memo.config, &memo.counters, mqtt)))),
        ("disabled_node_cards", Payload::raw(&disabled_cards)),
        ("node_cards", Payload::raw(&node_cards)),
        ("nodes", memo.node_views()),
        ("runtime_snapshot", Payload::raw(&snapshot)),
        (
            "stats",
            json(json!({
                "total_nodes": node_rows.len(),
                "dynamic_nodes": dynamic,
                "static_nodes": static_,
                "disabled_nodes": disabled,
                "online_nodes": online_n,
                "peer_links": memo.topo.len() / 2,
            })),
        ),
        ("sync_status", Payload::raw(&sync_items)),
        ("topology", json(json!(summary))),
    ]))
}

/// The SSE payload builders of configs, overviews and mesh workspaces, and the desired-config
/// regeneration the refresh worker runs first.
pub struct MeshProjections;

impl Projections for MeshProjections {
    fn regenerate<'a>(&'a self, app: &'a AppState, config_id: &'a str) -> BoxFut<'a, AppResult<()>> {
        Box::pin(async move {
            render::regenerate(app, config_id).await?;
            crate::service::sync::auto_sync(app, config_id).await.map(|_| ())
        })
    }

    fn begin<'a>(&'a self, app: &'a AppState) -> Box<dyn PlanPayloads + 'a> {
        Box::new(MeshPlan { app, memos: HashMap::new() })
    }
}

/// Config-scoped data of one config in a plan run: the memo plus what node workspaces share.
struct PlanConfig {
    memo: ConfigMemo,
    config_view: Value,
    tags: Value,
}

/// One plan run: configs are read once, on their first event.
struct MeshPlan<'a> {
    app: &'a AppState,
    memos: HashMap<String, Option<Arc<PlanConfig>>>,
}

impl MeshPlan<'_> {
    async fn config(&mut self, config_id: &str) -> AppResult<Option<Arc<PlanConfig>>> {
        if let Some(m) = self.memos.get(config_id) {
            return Ok(m.clone());
        }
        let app = self.app;
        let m = match ConfigMemo::load(app, config_id).await? {
            Some(memo) => {
                let config_view = json!(configs::detail_view(&memo.config, &memo.counters, memo.mqtt));
                let tags = json!(tags::list(app, config_id).await?);
                Some(Arc::new(PlanConfig { memo, config_view, tags }))
            }
            None => None,
        };
        self.memos.insert(config_id.to_string(), m.clone());
        Ok(m)
    }
}

fn ids(config_id: &str, node_id: &str) -> [(&'static str, Payload); 2] {
    [("config_id", Payload::Json(json!(config_id))), ("node_id", Payload::Json(json!(node_id)))]
}

impl PlanPayloads for MeshPlan<'_> {
    fn config_list(&mut self) -> BoxFut<'_, AppResult<Payload>> {
        Box::pin(async move { Ok(Payload::Json(json!({"configs": config_list(self.app).await?}))) })
    }

    fn overview<'a>(&'a mut self, config_id: &'a str) -> BoxFut<'a, AppResult<Option<Payload>>> {
        Box::pin(async move {
            let Some(c) = self.config(config_id).await? else { return Ok(None) };
            let ov = overview_of(self.app, &c.memo).await?;
            Ok(Some(Payload::Object(vec![
                ("config_id", Payload::Json(json!(config_id))),
                ("overview", ov),
                ("tags", Payload::Json(c.tags.clone())),
            ])))
        })
    }

    fn node_workspace<'a>(&'a mut self, config_id: &'a str, node_id: &'a str) -> BoxFut<'a, AppResult<Option<Payload>>> {
        Box::pin(async move {
            let Some(c) = self.config(config_id).await? else { return Ok(None) };
            let Some(node) = c.memo.node(node_id) else { return Ok(None) };
            let endpoint_status = if node.enabled {
                crate::service::endpoint::endpoint_status(self.app, config_id, node_id).await.ok()
            } else {
                None
            };
            Ok(Some(Payload::Json(json!({
                "config_id": config_id,
                "node_id": node_id,
                "workspace": {"config": c.config_view, "node": nodes::view(node, c.memo.mqtt), "endpoint_status": endpoint_status, "tags": c.tags},
            }))))
        })
    }

    fn node_apply<'a>(&'a mut self, config_id: &'a str, node_id: &'a str) -> BoxFut<'a, AppResult<Option<Payload>>> {
        Box::pin(async move {
            let app = self.app;
            let Some(c) = self.config(config_id).await? else { return Ok(None) };
            let Some(node) = c.memo.node(node_id) else { return Ok(None) };
            if !node.enabled {
                return Ok(None);
            }
            let preview = render::preview(app, config_id, node_id).await?;
            let state = crate::store::config_state::get(&app.db, node_id).await?.unwrap_or_default();
            Ok(Some(Payload::Json(json!({
                "config_id": config_id,
                "node_id": node_id,
                "sync_status": {"node_id": node_id, "status": crate::service::sync::apply_status(&state.desired_sha256, &state.staged_sha256),
                    "desired_version": state.desired_version, "staged_version": state.staged_version,
                    "desired_sha256": state.desired_sha256, "staged_sha256": state.staged_sha256},
                "preview": preview,
                "applied": {
                    "content": state.staged_text,
                    "exists": !state.staged_text.is_empty(),
                    "node_name": node.name,
                    "node_type": c.memo.node_type(node),
                    "desired_version": state.desired_version,
                    "staged_version": state.staged_version,
                },
            }))))
        })
    }

    fn mesh_workspace<'a>(&'a mut self, config_id: &'a str, node_id: &'a str) -> BoxFut<'a, AppResult<Option<Payload>>> {
        Box::pin(async move {
            let app = self.app;
            let Some(c) = self.config(config_id).await? else { return Ok(None) };
            let memo = &c.memo;
            let Some(node) = memo.node(node_id) else { return Ok(None) };
            let ws = if memo.has_links(node_id) {
                // The config-wide parts come from the memo; only the node's own pairs are read.
                let rows = link_store::rows_touching(&app.db, node_id).await?;
                mesh::workspace_of(&memo.config, node, &memo.nodes, &memo.analysis, &rows, memo.mqtt)
            } else {
                linkless_workspace(memo, node)
            };
            let [cid, nid] = ids(config_id, node_id);
            Ok(Some(Payload::Object(vec![cid, nid, ("nodes", memo.node_views()), ("workspace", Payload::Json(ws))])))
        })
    }
}

/// The mesh workspace (spec 02 §6.5) of a node that owns no link row: no connections, and the
/// config-wide validation. What `mesh::workspace` answers for such a node, from the memo (a
/// test keeps the two equal).
fn linkless_workspace(memo: &ConfigMemo, node: &NodeRow) -> Value {
    let validation = memo.validation.get_or_init(|| json!(memo.analysis.validation()));
    json!({
        "node": nodes::view(node, memo.mqtt),
        "connections": [],
        "readonly": !node.enabled,
        "validation": validation,
    })
}

/// Registers the payload builders with the refresh worker (once per server).
pub fn register(app: &AppState) {
    app.refresher.register(Arc::new(MeshProjections));
}
