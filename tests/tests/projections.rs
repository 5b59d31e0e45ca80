//! SSE payloads of the refresh worker (spec 04 §1.3-1.4) against the projections they stand
//! for, on SQLite and PostgreSQL. The worker builds a plan's payloads from one read of each
//! config (and serialises shared parts once); these tests keep its output equal to the
//! straightforward per-event builders it replaced (kept below as the reference), and to REST.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wfm::AppState;
use wfm::service::{configs, endpoint, mesh, nodes, render, tags};
use wfm::store::{client_state, runtime};
use wfm_e2e::{Backend, TestServer, both_backends};

const API: &str = "/api/v1";

/// The reference builders: the per-event projections as they were before plan runs shared
/// their reads (same JSON, built from fresh reads for every event).
mod reference {
    use super::*;
    use wfm::store::links as link_store;
    use wfm::store::nodes as node_store;

    pub async fn overview(app: &AppState, config_id: &str) -> Value {
        let row = configs::load(app, config_id).await.unwrap();
        let mqtt = app.settings.enable_mqtt_services;
        let node_rows = node_store::list_for_config(&app.db, config_id).await.unwrap();
        let topo_rows = link_store::topo_rows(&app.db, config_id).await.unwrap();
        let analysis = mesh::analyze_rows(&row, &node_rows, &topo_rows);
        let summary = analysis.summary();
        let runtimes: HashMap<String, runtime::Runtime> =
            runtime::list_for_config(&app.db, config_id).await.unwrap().into_iter().map(|r| (r.node_id.clone(), r)).collect();
        let clients: HashMap<String, client_state::ClientState> = client_state::list_for_config(&app.db, config_id)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.node_id.clone(), c))
            .collect();
        let syncs: HashMap<String, link_store::SyncRow> =
            link_store::sync_rows(&app.db, config_id).await.unwrap().into_iter().map(|s| (s.node_id.clone(), s)).collect();
        let invalid: std::collections::HashSet<&str> = summary.invalid_node_ids.iter().map(String::as_str).collect();
        let node_type = |n: &node_store::NodeRow| if mqtt { n.node_type.clone() } else { "static".to_string() };
        let online =
            |n: &node_store::NodeRow| n.enabled && mqtt && n.node_type == "dynamic" && runtimes.get(&n.id).is_some_and(|r| r.online);
        let (mut dynamic, mut static_, mut disabled, mut online_n) = (0, 0, 0, 0);
        let (mut node_cards, mut disabled_cards, mut snapshot, mut sync_items) = (vec![], vec![], vec![], vec![]);
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
                "id": n.id, "name": n.name, "node_type": node_type(n), "enabled": n.enabled, "virtual_ip": n.virtual_ip,
                "ipv4_address": n.ipv4_address, "ipv6_address": n.ipv6_address, "tags": nodes::json_list(&n.tags_json),
                "created_at": n.created_at, "online": online(n),
                "peers_total": if n.enabled { rt.map(|r| r.peers_total).unwrap_or(0) } else { 0 },
                "mesh_error": invalid.contains(n.id.as_str()),
            });
            if n.enabled { node_cards.push(card) } else { disabled_cards.push(card) }
            snapshot.push(json!({
                "node_id": n.id, "node_name": n.name, "node_type": node_type(n), "online": rt.is_some_and(|r| r.online),
                "connectivity_state": rt.map(|r| r.connectivity_state.as_str()).unwrap_or("unknown"),
                "wg_running": rt.is_some_and(|r| r.wg_running),
                "wg_runtime_state": rt.map(|r| r.wg_runtime_state.as_str()).unwrap_or("unknown"),
                "config_sync_state": rt.map(|r| r.config_sync_state.as_str()).unwrap_or("unknown"),
                "server_apply_status": if n.enabled { wfm::service::sync::apply_status(&sy.desired_sha256, &sy.staged_sha256) } else { "unknown" },
                "peers_online": rt.map(|r| r.peers_online).unwrap_or(0), "peers_total": rt.map(|r| r.peers_total).unwrap_or(0),
                "last_seen": rt.and_then(|r| r.last_seen.clone()),
                "last_probe_sent_at": rt.and_then(|r| r.last_probe_sent_at.clone()),
                "last_probe_ack_at": rt.and_then(|r| r.last_probe_ack_at.clone()),
                "client_initialized": cl.is_some_and(|c| c.client_initialized),
                "client_presence_state": cl.map(|c| c.client_presence_state.as_str()).unwrap_or("offline"),
            }));
            if n.enabled {
                sync_items.push(json!({
                    "node_id": n.id, "node_name": n.name, "node_type": node_type(n), "auto_sync": n.auto_sync,
                    "desired_sha256": sy.desired_sha256, "desired_version": sy.desired_version,
                    "staged_sha256": sy.staged_sha256, "staged_version": sy.staged_version,
                    "confirmed_sha256": sy.confirmed_sha256, "confirmed_version": sy.confirmed_version,
                    "reported_local_sha256": sy.reported_local_sha256, "reported_local_version": sy.reported_local_version,
                    "status": wfm::service::sync::apply_status(&sy.desired_sha256, &sy.staged_sha256),
                    "runtime_status": rt.map(|r| r.config_sync_state.as_str()).unwrap_or("unknown"),
                    "topology_valid": summary.valid, "topology_messages": analysis.sync_messages(),
                }));
            }
        }
        let counters = wfm::store::configs::counters(&app.db, config_id).await.unwrap();
        json!({
            "config": configs::detail_view(&row, &counters, mqtt),
            "stats": {"total_nodes": node_rows.len(), "dynamic_nodes": dynamic, "static_nodes": static_,
                "disabled_nodes": disabled, "online_nodes": online_n, "peer_links": topo_rows.len() / 2},
            "nodes": node_rows.iter().map(|n| nodes::view(n, mqtt)).collect::<Vec<_>>(),
            "node_cards": node_cards,
            "disabled_node_cards": disabled_cards,
            "runtime_snapshot": snapshot,
            "sync_status": sync_items,
            "topology": summary,
        })
    }

    pub async fn overview_event(app: &AppState, config_id: &str) -> Value {
        json!({"config_id": config_id, "overview": overview(app, config_id).await, "tags": tags::list(app, config_id).await.unwrap()})
    }

    pub async fn node_workspace(app: &AppState, config_id: &str, node_id: &str) -> Value {
        let node = node_store::get(&app.db, node_id).await.unwrap().unwrap();
        let config = wfm::store::configs::get(&app.db, config_id).await.unwrap().unwrap();
        let mqtt = app.settings.enable_mqtt_services;
        let counters = wfm::store::configs::counters(&app.db, config_id).await.unwrap();
        let endpoint_status =
            if node.enabled { endpoint::endpoint_status(app, config_id, node_id).await.ok() } else { None };
        json!({
            "config_id": config_id, "node_id": node_id,
            "workspace": {"config": configs::detail_view(&config, &counters, mqtt), "node": nodes::view(&node, mqtt),
                "endpoint_status": endpoint_status, "tags": tags::list(app, config_id).await.unwrap()},
        })
    }

    pub async fn node_apply(app: &AppState, config_id: &str, node_id: &str) -> Option<Value> {
        let node = node_store::get(&app.db, node_id).await.unwrap().unwrap();
        if !node.enabled {
            return None;
        }
        let preview = render::preview(app, config_id, node_id).await.unwrap();
        let s = wfm::store::config_state::get(&app.db, node_id).await.unwrap().unwrap_or_default();
        let status = wfm::service::sync::apply_status(&s.desired_sha256, &s.staged_sha256);
        let mqtt = app.settings.enable_mqtt_services;
        Some(json!({
            "config_id": config_id, "node_id": node_id,
            "sync_status": {"node_id": node_id, "status": status, "desired_version": s.desired_version,
                "staged_version": s.staged_version, "desired_sha256": s.desired_sha256, "staged_sha256": s.staged_sha256},
            "preview": preview,
            "applied": {"content": s.staged_text, "exists": !s.staged_text.is_empty(), "node_name": node.name,
                "node_type": if mqtt { node.node_type.as_str() } else { "static" },
                "desired_version": s.desired_version, "staged_version": s.staged_version},
        }))
    }

    pub async fn mesh_workspace(app: &AppState, config_id: &str, node_id: &str) -> Value {
        let ws = mesh::workspace(app, config_id, node_id).await.unwrap();
        let mqtt = app.settings.enable_mqtt_services;
        let nodes: Vec<_> =
            node_store::list_for_config(&app.db, config_id).await.unwrap().iter().map(|n| nodes::view(n, mqtt)).collect();
        json!({"config_id": config_id, "node_id": node_id, "workspace": ws, "nodes": nodes})
    }
}

struct Ctx {
    s: TestServer,
    token: String,
}

impl Ctx {
    async fn new(b: Backend) -> Ctx {
        let s = TestServer::start_with(b, &[("WFM_ENABLE_MQTT_SERVICES", "false")]).await;
        let token = s.setup_admin().await;
        Ctx { s, token }
    }
    async fn get(&self, p: &str) -> Value {
        self.s.get(&format!("{API}{p}"), Some(&self.token)).await.ok().clone()
    }
    async fn post(&self, p: &str, b: Value) -> Value {
        self.s.post(&format!("{API}{p}"), Some(&self.token), b).await.ok().clone()
    }
    async fn node(&self, cfg: &str, body: Value) -> String {
        self.post(&format!("/configs/{cfg}/nodes"), body).await["id"].as_str().unwrap().to_string()
    }
    async fn exec(&self, sql: &str) {
        let mut tx = self.s.state.db.begin().await.unwrap();
        wfm::on_tx!(&mut tx, |c| sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(c).await.map(|_| ())).unwrap();
        tx.commit().await.unwrap();
    }
    async fn idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.s.state.refresher.idle() {
            assert!(Instant::now() < deadline, "refresh worker never went idle");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Every event kind of a plan equals its reference builder, whether the node has links, none,
/// or is disabled; the REST overview equals the reference too; events keep the spec's order.
async fn plan_payloads_match_reference(b: Backend) {
    let c = Ctx::new(b).await;
    let cfg = c.post("/configs", json!({"name": "proj", "virtual_subnet": "10.94.0.0/24"})).await["id"].as_str().unwrap().to_string();
    let other = c.post("/configs", json!({"name": "proj-2", "virtual_subnet": "10.95.0.0/24"})).await["id"].as_str().unwrap().to_string();
    let n1 = c.node(&cfg, json!({"name": "n1", "ipv4_address": "198.51.100.1", "node_type": "static", "tags": ["edge"]})).await;
    let n2 = c.node(&cfg, json!({"name": "n2", "ipv4_address": "198.51.100.2", "node_type": "static"})).await;
    let n3 = c.node(&cfg, json!({"name": "n3", "node_type": "static"})).await;
    let n4 = c.node(&cfg, json!({"name": "n4", "node_type": "static", "enabled": false})).await;
    let o1 = c.node(&other, json!({"name": "o1", "node_type": "static"})).await;
    c.post(
        &format!("/configs/{cfg}/peer-links"),
        json!({
            "forward": {"local_node_id": n1, "peer_node_id": n2, "allowed_ips": "10.94.0.3/32", "persistent_keepalive": 25},
            "reverse": {"local_node_id": n2, "peer_node_id": n1, "allowed_ips": "10.94.0.2/32", "persistent_keepalive": 25},
        }),
    )
    .await;
    c.idle().await;
    // Runtime and client rows with values (n1), a client row without a runtime row (n2), and
    // none at all (n3), so every overview column is read from a real row or its default.
    c.exec(&format!(
        "UPDATE endpoint_runtime_status SET online = TRUE, connectivity_state = 'online', wg_running = TRUE, \
         wg_runtime_state = 'running', config_sync_state = 'in_sync', peers_online = 1, peers_total = 2, \
         last_seen = '2026-12-01T10:00:00Z', last_probe_sent_at = '2026-12-01T10:00:01Z', last_probe_ack_at = '2026-12-01T10:00:02Z' \
         WHERE node_id = '{n1}'"
    ))
    .await;
    for n in [&n1, &n2] {
        c.exec(&format!(
            "INSERT INTO node_client_state (node_id, config_id, client_initialized, client_presence_state, created_at, updated_at) \
             VALUES ('{n}', '{cfg}', TRUE, 'offline', '2026-12-01T10:00:00Z', '2026-12-01T10:00:00Z')"
        ))
        .await;
    }
    c.exec(&format!("DELETE FROM endpoint_runtime_status WHERE node_id IN ('{n2}', '{n3}')")).await;
    let snapshot = c.get(&format!("/configs/{cfg}/overview")).await["runtime_snapshot"].clone();
    let item = |id: &str| snapshot.as_array().unwrap().iter().find(|i| i["node_id"] == id).unwrap().clone();
    assert_eq!((item(&n1)["online"].clone(), item(&n1)["peers_total"].clone(), item(&n1)["client_initialized"].clone()), (json!(true), json!(2), json!(true)));
    assert_eq!((item(&n3)["connectivity_state"].clone(), item(&n3)["client_presence_state"].clone()), (json!("unknown"), json!("offline")));

    let app = &c.s.state;
    let mut rx = app.events.subscribe();
    let all = [n1.clone(), n2.clone(), n3.clone(), n4.clone()];
    c.post(&format!("/configs/{cfg}/tags/apply"), json!({"tag": "t", "node_ids": all})).await;
    c.post(&format!("/configs/{other}/tags/apply"), json!({"tag": "t", "node_ids": [o1]})).await;
    c.idle().await;
    let mut events: Vec<(String, Value)> = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        // Through the wire form, as a subscriber gets it.
        let wire: Value = serde_json::from_str(&serde_json::to_string(&*ev).unwrap()).unwrap();
        assert_eq!(wire["type"], ev.kind.as_str());
        events.push((ev.kind.clone(), wire["payload"].clone()));
    }
    // The last event of each (kind, config, node): state is settled, so it must equal the
    // reference built now.
    let last = |kind: &str, config: &str, node: Option<&str>| -> Value {
        events
            .iter()
            .rev()
            .find(|(k, p)| k == kind && p["config_id"] == config && node.is_none_or(|n| p["node_id"] == n))
            .unwrap_or_else(|| panic!("no {kind} for {config}/{node:?} in {:?}", events.iter().map(|e| &e.0).collect::<Vec<_>>()))
            .1
            .clone()
    };
    for config in [&cfg, &other] {
        assert_eq!(last("config.overview.updated", config, None), reference::overview_event(app, config).await, "overview {config}");
        assert_eq!(c.get(&format!("/configs/{config}/overview")).await, reference::overview(app, config).await, "REST overview");
    }
    for (config, node) in all.iter().map(|n| (&cfg, n)).chain([(&other, &o1)]) {
        assert_eq!(last("node.workspace.updated", config, Some(node)), reference::node_workspace(app, config, node).await, "node ws {node}");
        assert_eq!(last("mesh.workspace.updated", config, Some(node)), reference::mesh_workspace(app, config, node).await, "mesh ws {node}");
        match reference::node_apply(app, config, node).await {
            Some(r) => assert_eq!(last("node.apply.updated", config, Some(node)), r, "apply {node}"),
            None => assert!(!events.iter().any(|(k, p)| k == "node.apply.updated" && p["node_id"] == node.as_str()), "disabled: no apply"),
        }
    }
    // A linked node lists its connection; the linkless ones none.
    assert_eq!(last("mesh.workspace.updated", &cfg, Some(&n1))["workspace"]["connections"].as_array().unwrap().len(), 1);
    assert_eq!(last("mesh.workspace.updated", &cfg, Some(&n3))["workspace"]["connections"], json!([]));

    // Order within each run: status, list, overviews, node workspaces, applies, mesh workspaces.
    let rank = |k: &str| {
        ["system.status.updated", "config.list.updated", "config.overview.updated", "node.workspace.updated", "node.apply.updated", "mesh.workspace.updated"]
            .iter()
            .position(|x| *x == k)
            .unwrap()
    };
    let mut runs: Vec<Vec<&str>> = vec![];
    for (k, _) in &events {
        if k == "system.status.updated" || runs.is_empty() {
            runs.push(vec![]);
        }
        runs.last_mut().unwrap().push(k);
    }
    for run in runs {
        assert!(run.windows(2).all(|w| rank(w[0]) <= rank(w[1])), "order {run:?}");
    }
    c.s.stop().await;
}

/// A plan run reads each config once: a node created while a run is building sees its own
/// events in the next run, with itself in the `nodes` lists; writes within one coalescing
/// window share a run.
async fn created_nodes_appear_in_their_events(b: Backend) {
    let c = Ctx::new(b).await;
    let cfg = c.post("/configs", json!({"name": "proj", "virtual_subnet": "10.96.0.0/16"})).await["id"].as_str().unwrap().to_string();
    let app = &c.s.state;
    let mut rx = app.events.subscribe();
    let mut ids = Vec::new();
    let started = Instant::now();
    for i in 0..30 {
        ids.push(c.node(&cfg, json!({"name": format!("n{i}"), "node_type": "static"})).await);
    }
    let writing = started.elapsed();
    c.idle().await;
    let mut mesh: HashMap<String, Value> = HashMap::new();
    let mut last_overview = Value::Null;
    let mut overviews = 0u32;
    while let Ok(ev) = rx.try_recv() {
        let p = ev.payload.to_value();
        match ev.kind.as_str() {
            "mesh.workspace.updated" => {
                mesh.insert(p["node_id"].as_str().unwrap().to_string(), p);
            }
            "config.overview.updated" => {
                overviews += 1;
                last_overview = p;
            }
            _ => {}
        }
    }
    // With a subscriber the worker gathers the writes of each coalescing window into one run:
    // at most one overview per window the writes spanned, plus the one still open.
    let windows = (writing.as_millis() / wfm::service::refresh::COALESCE_WINDOW.as_millis()) as u32 + 2;
    assert!(overviews <= windows, "{overviews} overview events for 30 writes in {writing:?}");
    for (i, id) in ids.iter().enumerate() {
        let p = mesh.get(id).unwrap_or_else(|| panic!("no mesh workspace for node {i}"));
        let listed: Vec<&str> = p["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
        assert!(listed.contains(&id.as_str()), "node {i} in its own nodes list");
        assert_eq!(p["workspace"]["node"]["id"], id.as_str());
    }
    assert_eq!(last_overview["overview"]["stats"]["total_nodes"], 30);
    assert_eq!(last_overview["overview"]["nodes"].as_array().unwrap().len(), 30);
    c.s.stop().await;
}

both_backends!(plan_payloads_match_reference, created_nodes_appear_in_their_events);
