//! Read projections (spec 02 §9): the config overview, the topology counters of the config
//! list, the topology section of the system status, and the SSE payload builders the refresh
//! worker calls after writes (spec 04 §1.4).
//!
//! Runtime fields report the stored runtime rows as they are (offline/unknown until an agent
//! reports), never invented values.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::AppResult;
use crate::service::configs::{self, ConfigView};
use crate::service::mesh;
use crate::service::nodes;
use crate::service::refresh::{BoxFut, Projections};
use crate::service::render;
use crate::service::tags;
use crate::state::AppState;
use crate::store::configs::ConfigRow;
use crate::store::links as link_store;
use crate::store::nodes as node_store;
use crate::store::{client_state, runtime};

/// `server_apply_status` of a node (spec 03 §8.1).
pub fn apply_status(s: &link_store::SyncRow) -> &'static str {
    crate::service::sync::apply_status(&s.desired_sha256, &s.staged_sha256)
}

/// Topology summary of a config (§6.6), read fresh.
pub async fn topology_summary(app: &AppState, config: &ConfigRow) -> AppResult<wfm_domain::topology::Analysis> {
    mesh::analyze_config(app, config).await
}

/// `GET /configs` with the topology counters filled in (a disabled config reports valid).
pub async fn config_list(app: &AppState) -> AppResult<Vec<ConfigView>> {
    let mut views = configs::list(app).await?;
    let counts: HashMap<String, i64> = link_store::counts(&app.db).await?.into_iter().collect();
    for v in views.iter_mut().filter(|v| v.enabled) {
        // A config without links can only carry the no-links warning, never an error.
        if counts.get(&v.id).copied().unwrap_or(0) == 0 {
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
    let counts: HashMap<String, i64> = link_store::counts(&app.db).await?.into_iter().collect();
    for row in crate::store::configs::list(&app.db).await? {
        if !row.enabled || counts.get(&row.id).copied().unwrap_or(0) == 0 {
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

/// `GET /configs/{id}/overview`.
pub async fn overview(app: &AppState, config_id: &str) -> AppResult<Value> {
    let row = configs::load(app, config_id).await?;
    let mqtt = app.settings.enable_mqtt_services;
    let node_rows = node_store::list_for_config(&app.db, config_id).await?;
    let topo_rows = link_store::topo_rows(&app.db, config_id).await?;
    let analysis = mesh::analyze_rows(&row, &node_rows, &topo_rows);
    let summary = analysis.summary();
    let runtimes: HashMap<String, runtime::Runtime> =
        runtime::list_for_config(&app.db, config_id).await?.into_iter().map(|r| (r.node_id.clone(), r)).collect();
    let clients: HashMap<String, client_state::ClientState> =
        client_state::list_for_config(&app.db, config_id).await?.into_iter().map(|c| (c.node_id.clone(), c)).collect();
    let syncs: HashMap<String, link_store::SyncRow> =
        link_store::sync_rows(&app.db, config_id).await?.into_iter().map(|s| (s.node_id.clone(), s)).collect();
    let invalid: std::collections::HashSet<&str> = summary.invalid_node_ids.iter().map(String::as_str).collect();

    let node_type = |n: &node_store::NodeRow| if mqtt { n.node_type.clone() } else { "static".to_string() };
    let online = |n: &node_store::NodeRow| {
        n.enabled && mqtt && n.node_type == "dynamic" && runtimes.get(&n.id).is_some_and(|r| r.online)
    };
    let (mut dynamic, mut static_, mut disabled, mut online_n) = (0, 0, 0, 0);
    let mut node_cards = Vec::new();
    let mut disabled_cards = Vec::new();
    let mut snapshot = Vec::new();
    let mut sync_items = Vec::new();
    for n in &node_rows {
        let rt = runtimes.get(&n.id);
        let cl = clients.get(&n.id);
        let sy = syncs.get(&n.id).cloned().unwrap_or_default();
        if !n.enabled {
            disabled += 1;
        } else if node_type(n) == "dynamic" {
            dynamic += 1;
        } else {
            static_ += 1;
        }
        if online(n) {
            online_n += 1;
        }
        let card = json!({
            "id": n.id,
            "name": n.name,
            "node_type": node_type(n),
            "enabled": n.enabled,
            "virtual_ip": n.virtual_ip,
            "ipv4_address": n.ipv4_address,
            "ipv6_address": n.ipv6_address,
            "tags": nodes::json_list(&n.tags_json),
            "created_at": n.created_at,
            "online": online(n),
            "peers_total": if n.enabled { rt.map(|r| r.peers_total).unwrap_or(0) } else { 0 },
            "mesh_error": invalid.contains(n.id.as_str()),
        });
        if n.enabled { node_cards.push(card) } else { disabled_cards.push(card) }
        snapshot.push(json!({
            "node_id": n.id,
            "node_name": n.name,
            "node_type": node_type(n),
            "online": rt.is_some_and(|r| r.online),
            "connectivity_state": rt.map(|r| r.connectivity_state.as_str()).unwrap_or("unknown"),
            "wg_running": rt.is_some_and(|r| r.wg_running),
            "wg_runtime_state": rt.map(|r| r.wg_runtime_state.as_str()).unwrap_or("unknown"),
            "config_sync_state": rt.map(|r| r.config_sync_state.as_str()).unwrap_or("unknown"),
            "server_apply_status": if n.enabled { apply_status(&sy) } else { "unknown" },
            "peers_online": rt.map(|r| r.peers_online).unwrap_or(0),
            "peers_total": rt.map(|r| r.peers_total).unwrap_or(0),
            "last_seen": rt.and_then(|r| r.last_seen.clone()),
            "last_probe_sent_at": rt.and_then(|r| r.last_probe_sent_at.clone()),
            "last_probe_ack_at": rt.and_then(|r| r.last_probe_ack_at.clone()),
            "client_initialized": cl.is_some_and(|c| c.client_initialized),
            "client_presence_state": cl.map(|c| c.client_presence_state.as_str()).unwrap_or("offline"),
        }));
        if n.enabled {
            sync_items.push(json!({
                "node_id": n.id,
                "node_name": n.name,
                "node_type": node_type(n),
                "auto_sync": n.auto_sync,
                "desired_sha256": sy.desired_sha256,
                "desired_version": sy.desired_version,
                "staged_sha256": sy.staged_sha256,
                "staged_version": sy.staged_version,
                "confirmed_sha256": sy.confirmed_sha256,
                "confirmed_version": sy.confirmed_version,
                "reported_local_sha256": sy.reported_local_sha256,
                "reported_local_version": sy.reported_local_version,
                "status": apply_status(&sy),
                "runtime_status": rt.map(|r| r.config_sync_state.as_str()).unwrap_or("unknown"),
                "topology_valid": summary.valid,
                "topology_messages": analysis.sync_messages(),
            }));
        }
    }
    let counters = crate::store::configs::counters(&app.db, config_id).await?;
    Ok(json!({
        "config": configs::detail_view(&row, &counters, mqtt),
        "stats": {
            "total_nodes": node_rows.len(),
            "dynamic_nodes": dynamic,
            "static_nodes": static_,
            "disabled_nodes": disabled,
            "online_nodes": online_n,
            "peer_links": topo_rows.len() / 2,
        },
        "nodes": node_rows.iter().map(|n| nodes::view(n, mqtt)).collect::<Vec<_>>(),
        "node_cards": node_cards,
        "disabled_node_cards": disabled_cards,
        "runtime_snapshot": snapshot,
        "sync_status": sync_items,
        "topology": summary,
    }))
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

    fn config_list<'a>(&'a self, app: &'a AppState) -> BoxFut<'a, AppResult<Value>> {
        Box::pin(async move { Ok(json!({"configs": config_list(app).await?})) })
    }

    fn overview<'a>(&'a self, app: &'a AppState, config_id: &'a str) -> BoxFut<'a, AppResult<Option<Value>>> {
        Box::pin(async move {
            if crate::store::configs::get(&app.db, config_id).await?.is_none() {
                return Ok(None);
            }
            let ov = overview(app, config_id).await?;
            let tags = tags::list(app, config_id).await?;
            Ok(Some(json!({"config_id": config_id, "overview": ov, "tags": tags})))
        })
    }

    fn node_workspace<'a>(&'a self, app: &'a AppState, config_id: &'a str, node_id: &'a str) -> BoxFut<'a, AppResult<Option<Value>>> {
        Box::pin(async move {
            let Some(node) = node_store::get(&app.db, node_id).await? else { return Ok(None) };
            let config = crate::store::configs::get(&app.db, config_id).await?;
            let mqtt = app.settings.enable_mqtt_services;
            let config_view = match &config {
                Some(c) => Some(configs::detail_view(c, &crate::store::configs::counters(&app.db, config_id).await?, mqtt)),
                None => None,
            };
            let endpoint_status = if node.enabled {
                crate::service::endpoint::endpoint_status(app, config_id, node_id).await.ok()
            } else {
                None
            };
            let tags = tags::list(app, config_id).await?;
            Ok(Some(json!({
                "config_id": config_id,
                "node_id": node_id,
                "workspace": {"config": config_view, "node": nodes::view(&node, mqtt), "endpoint_status": endpoint_status, "tags": tags},
            })))
        })
    }

    fn node_apply<'a>(&'a self, app: &'a AppState, config_id: &'a str, node_id: &'a str) -> BoxFut<'a, AppResult<Option<Value>>> {
        Box::pin(async move {
            let Some(node) = node_store::get(&app.db, node_id).await? else { return Ok(None) };
            if !node.enabled {
                return Ok(None);
            }
            let preview = render::preview(app, config_id, node_id).await?;
            let state = crate::store::config_state::get(&app.db, node_id).await?.unwrap_or_default();
            let sync = link_store::SyncRow {
                node_id: node_id.to_string(),
                desired_sha256: state.desired_sha256.clone(),
                desired_version: state.desired_version,
                staged_sha256: state.staged_sha256.clone(),
                staged_version: state.staged_version,
                confirmed_sha256: state.confirmed_sha256.clone(),
                confirmed_version: state.confirmed_version,
                reported_local_sha256: state.reported_local_sha256.clone(),
                reported_local_version: state.reported_local_version,
            };
            let mqtt = app.settings.enable_mqtt_services;
            Ok(Some(json!({
                "config_id": config_id,
                "node_id": node_id,
                "sync_status": {"node_id": node_id, "status": apply_status(&sync), "desired_version": sync.desired_version,
                    "staged_version": sync.staged_version, "desired_sha256": sync.desired_sha256, "staged_sha256": sync.staged_sha256},
                "preview": preview,
                "applied": {
                    "content": state.staged_text,
                    "exists": !state.staged_text.is_empty(),
                    "node_name": node.name,
                    "node_type": if mqtt { node.node_type.as_str() } else { "static" },
                    "desired_version": state.desired_version,
                    "staged_version": state.staged_version,
                },
            })))
        })
    }

    fn mesh_workspace<'a>(&'a self, app: &'a AppState, config_id: &'a str, node_id: &'a str) -> BoxFut<'a, AppResult<Option<Value>>> {
        Box::pin(async move {
            if node_store::get(&app.db, node_id).await?.is_none() || crate::store::configs::get(&app.db, config_id).await?.is_none() {
                return Ok(None);
            }
            let ws = mesh::workspace(app, config_id, node_id).await?;
            let mqtt = app.settings.enable_mqtt_services;
            let nodes: Vec<_> = node_store::list_for_config(&app.db, config_id).await?.iter().map(|n| nodes::view(n, mqtt)).collect();
            Ok(Some(json!({"config_id": config_id, "node_id": node_id, "workspace": ws, "nodes": nodes})))
        })
    }
}

/// Registers the payload builders with the refresh worker (once per server).
pub fn register(app: &AppState) {
    app.refresher.register(Arc::new(MeshProjections));
}
