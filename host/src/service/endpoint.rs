//! Endpoint control and state (spec 03 §6.5-6.6, §7): control commands, logs, status object,
//! runtime snapshot, probes and the detect loop.

use std::time::Duration;

use serde_json::{Value, json};
use wfm_mqtt_proto::message::{self as msg, ConfigPush, Control, Detect, Info, TunnelFields};
use wfm_mqtt_proto::topic::Kind;
use wfm_mqtt_proto::tunnel::wire_protocol;
use wfm_mqtt_proto::CLIENT_ONLINE_TTL;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::mqtt::dispatch::{self, Command};
use crate::service::binding::interface_name;
use crate::service::mqtt_settings::require_enabled;
use crate::state::AppState;
use crate::store::client_state::{self, ClientState, NodeFacts};
use crate::store::config_state::{self, ConfigState};
use crate::store::control_logs;
use crate::store::runtime::{self, Runtime, RuntimeWrite};

/// The node's facts, checked to exist and to belong to `config_id` (404 / 409 otherwise).
pub(crate) async fn facts(app: &AppState, config_id: &str, node_id: &str) -> AppResult<NodeFacts> {
    if client_state::config_enabled(&app.db, config_id).await?.is_none() {
        return Err(AppError::new(ErrorCode::ConfigNotFound, "Config not found").with("config_id", config_id));
    }
    let Some(f) = client_state::node_facts(&app.db, node_id).await? else {
        return Err(AppError::new(ErrorCode::NodeNotFound, "Node not found").with("node_id", node_id));
    };
    if f.config_id != config_id {
        return Err(AppError::new(ErrorCode::NodeConfigMismatch, "Node does not belong to this config"));
    }
    Ok(f)
}

fn tunnel(app: &AppState, f: &NodeFacts) -> TunnelFields {
    let current = wire_protocol(&f.tunnel_protocol);
    let awg = if current == "wireguard" { None } else { f.awg_version.clone() };
    TunnelFields {
        tunnel_protocol: Some(current.clone()),
        awg_version: awg,
        previous_tunnel_protocol: Some(wire_protocol(&app.mqtt.previous_protocol(&f.config_id, &f.tunnel_protocol))),
    }
}

/// `POST .../endpoint/control`.
pub async fn control(app: &AppState, config_id: &str, node_id: &str, action: &str, requested_by: &str) -> AppResult<Value> {
    require_enabled(app)?;
    let f = facts(app, config_id, node_id).await?;
    if !f.node_enabled {
        return Err(AppError::new(ErrorCode::NodeDisabled, "Node is disabled").with("node_id", node_id));
    }
    if !f.is_dynamic() {
        return Err(AppError::new(ErrorCode::InvalidAction, "Static nodes have no control channel").with("node_id", node_id));
    }
    let t = tunnel(app, &f);
    let iface = interface_name(&f.config_name, &f.node_name);
    let (request_id, message) = match action {
        msg::ACTION_START | msg::ACTION_STOP => {
            let payload = Control { action: action.into(), tunnel: t, interface_name: iface };
            let cmd = Command { config_id, node_id, kind: Kind::Control, action, requested_by, payload, config_sha256: "", config_version: 0 };
            (dispatch::send(app, cmd).await?, "Control command sent over MQTT")
        }
        msg::ACTION_WG_SHOW => {
            let payload = Info { action: action.into(), tunnel: t };
            let cmd = Command { config_id, node_id, kind: Kind::Info, action, requested_by, payload, config_sha256: "", config_version: 0 };
            (dispatch::send(app, cmd).await?, "Control command sent over MQTT")
        }
        msg::ACTION_PUSH_CONFIG => (push_config(app, &f, requested_by).await?, "Config push sent over MQTT"),
        other => return Err(AppError::new(ErrorCode::InvalidAction, format!("Unsupported action: {other}"))),
    };
    Ok(json!({"request_id": request_id, "message": message}))
}

/// Pushes the staged config (spec 03 §5.1, §8.4); the log row records the pushed hash and
/// version so the ACK confirms exactly that version.
pub async fn push_config(app: &AppState, f: &NodeFacts, requested_by: &str) -> AppResult<String> {
    let cs = config_state::get(&app.db, &f.node_id).await?.unwrap_or_default();
    if cs.staged_text.is_empty() || cs.staged_sha256.is_empty() {
        let mut tx = app.db.begin().await?;
        let rid = wfm_mqtt_proto::new_request_id();
        let log = control_logs::insert(
            &mut tx,
            &control_logs::NewLog {
                request_id: &rid,
                config_id: &f.config_id,
                node_id: &f.node_id,
                action: "push_config",
                status: "failed",
                requested_by,
                summary: "No staged config to push",
                detail: "",
                config_sha256: "",
                config_version: 0,
                ack_at: Some(&crate::util::now_iso()),
            },
        )
        .await?;
        tx.commit().await?;
        dispatch::log_event(app, "control.log.created", &log);
        return Err(AppError::new(ErrorCode::NoStagedConfig, "No staged config to push").with("node_id", &f.node_id));
    }
    let payload = ConfigPush {
        action: msg::ACTION_PUSH_CONFIG.into(),
        tunnel: tunnel(app, f),
        interface_name: interface_name(&f.config_name, &f.node_name),
        config_version: cs.staged_version,
        config_sha256: cs.staged_sha256.clone(),
        config_text: cs.staged_text.clone(),
    };
    dispatch::send(
        app,
        Command {
            config_id: &f.config_id,
            node_id: &f.node_id,
            kind: Kind::ConfigPush,
            action: "push_config",
            requested_by,
            payload,
            config_sha256: &cs.staged_sha256,
            config_version: cs.staged_version,
        },
    )
    .await
}

/// Pending push for every eligible node of a config (spec 03 §8.5); failures only logged.
pub async fn push_pending(app: &AppState, config_id: &str, requested_by: &str) -> usize {
    if !app.mqtt.enabled || !app.mqtt.is_connected() {
        return 0;
    }
    let Ok(nodes) = client_state::push_candidates(&app.db, config_id).await else { return 0 };
    let mut n = 0;
    for f in &nodes {
        match push_config(app, f, requested_by).await {
            Ok(_) => n += 1,
            Err(e) => tracing::warn!(node_id = %f.node_id, error = %e.message, "pending push failed"),
        }
    }
    n
}

/// `GET .../endpoint/logs`: newest first, at most 50.
pub async fn logs(app: &AppState, config_id: &str, node_id: &str) -> AppResult<Value> {
    require_enabled(app)?;
    facts(app, config_id, node_id).await?;
    Ok(serde_json::to_value(control_logs::list_for_node(&app.db, node_id, 50).await?).map_err(AppError::internal)?)
}

fn ttl_expired(cs: &ClientState) -> bool {
    if cs.client_presence_state != "online" {
        return false;
    }
    let Ok(ttl) = chrono::Duration::from_std(CLIENT_ONLINE_TTL) else { return false };
    cs.last_reachable_at.as_deref().and_then(crate::util::parse_iso).is_none_or(|t| crate::util::now() - t > ttl)
}

/// Applies the online TTL (spec 03 §6.5) to one node, writing the expiry when due.
async fn apply_ttl(app: &AppState, f: &NodeFacts, cs: &Option<ClientState>) -> AppResult<bool> {
    let Some(c) = cs else { return Ok(false) };
    if !ttl_expired(c) {
        return Ok(false);
    }
    let mut tx = app.db.begin().await?;
    client_state::apply_presence(&mut tx, &f.node_id, &client_state::PresenceWrite { presence: Some("offline"), ..Default::default() }).await?;
    runtime::apply(
        &mut tx,
        &f.node_id,
        &f.config_id,
        &RuntimeWrite {
            online: Some(false),
            connectivity_state: Some("offline"),
            wg_runtime_state: Some("unknown"),
            heartbeat_client_online: Some(false),
            heartbeat_wg_online: Some(false),
            reason: Some("client-reachable-timeout".into()),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

fn snapshot_item(f: &NodeFacts, rt: &Runtime, cs: Option<&ClientState>, cfg: &ConfigState) -> Value {
    let initialized = cs.is_some_and(|c| c.client_initialized);
    let presence = cs.map(|c| c.client_presence_state.clone()).unwrap_or_else(|| "offline".into());
    let staged_ok = !cfg.staged_sha256.is_empty() && cfg.staged_sha256 == cfg.desired_sha256;
    let mut v = json!({
        "node_id": f.node_id, "node_name": f.node_name, "node_type": f.node_type,
        "online": rt.online, "connectivity_state": rt.connectivity_state,
        "wg_running": rt.wg_running, "wg_runtime_state": rt.wg_runtime_state,
        "config_sync_state": if staged_ok { "in_sync" } else { "pending" },
        "server_apply_status": crate::service::sync::apply_status(&cfg.desired_sha256, &cfg.staged_sha256),
        "peers_online": rt.peers_online, "peers_total": rt.peers_total,
        "last_seen": rt.last_seen, "last_probe_sent_at": rt.last_probe_sent_at, "last_probe_ack_at": rt.last_probe_ack_at,
        "heartbeat_client_online": rt.heartbeat_client_online, "heartbeat_wg_online": rt.heartbeat_wg_online,
        "detect_client_online": rt.detect_client_online, "detect_wg_online": rt.detect_wg_online,
        "client_initialized": initialized, "client_presence_state": presence,
        "last_control_channel_seen_at": rt.last_control_channel_seen_at,
        "last_config_sync_error": rt.last_config_sync_error,
        "last_connectivity_reason": rt.last_connectivity_reason,
        "client_downloaded": rt.client_downloaded, "client_downloaded_at": rt.client_downloaded_at,
    });
    let mask = |v: &mut Value, reason: &str, sync: &str| {
        v["online"] = json!(false);
        v["connectivity_state"] = json!(if reason == "node-disabled" { "unknown" } else { "offline" });
        v["wg_running"] = json!(false);
        v["wg_runtime_state"] = json!("unknown");
        v["config_sync_state"] = json!(sync);
        v["last_connectivity_reason"] = json!(reason);
    };
    if !f.node_enabled {
        mask(&mut v, "node-disabled", "unknown");
    } else if !f.is_dynamic() {
        let sync = v["config_sync_state"].as_str().unwrap_or("pending").to_string();
        mask(&mut v, "static-node", &sync);
        v["client_initialized"] = json!(false);
        v["client_presence_state"] = json!("offline");
    }
    v
}

/// `GET /configs/{c}/endpoint/runtime-snapshot`.
pub async fn runtime_snapshot(app: &AppState, config_id: &str) -> AppResult<Value> {
    if client_state::config_enabled(&app.db, config_id).await?.is_none() {
        return Err(AppError::new(ErrorCode::ConfigNotFound, "Config not found").with("config_id", config_id));
    }
    let nodes = client_state::config_node_facts(&app.db, config_id).await?;
    let mut out = Vec::with_capacity(nodes.len());
    for f in &nodes {
        let mut cs = client_state::get(&app.db, &f.node_id).await?;
        if apply_ttl(app, f, &cs).await? {
            cs = client_state::get(&app.db, &f.node_id).await?;
        }
        let rt = runtime::get(&app.db, &f.node_id).await?.unwrap_or_default();
        let cfg = config_state::get(&app.db, &f.node_id).await?.unwrap_or_default();
        out.push(snapshot_item(f, &rt, cs.as_ref(), &cfg));
    }
    Ok(Value::Array(out))
}

/// The `client_state` object (spec 03 §7.4).
pub async fn client_state_json(app: &AppState, f: &NodeFacts) -> AppResult<Value> {
    let cs = client_state::get(&app.db, &f.node_id).await?.unwrap_or_else(|| ClientState {
        // A never-bound node has no row yet; it reads as the stored default (spec 02).
        client_presence_state: "offline".into(),
        ..Default::default()
    });
    if !f.is_dynamic() {
        return Ok(json!({"client_initialized": false, "client_presence_state": "offline"}));
    }
    let label = {
        let p = match cs.client_platform.as_str() {
            "linux" => "Linux",
            "windows" => "Windows",
            "darwin" => "macOS",
            other => other,
        };
        format!("{p} {}", cs.client_version).trim().to_string()
    };
    Ok(json!({
        "client_initialized": cs.client_initialized, "client_platform": cs.client_platform,
        "client_version": cs.client_version, "client_hostname": cs.client_hostname, "client_version_label": label,
        "mqtt_username": cs.mqtt_username, "mqtt_client_id": cs.mqtt_client_id,
        "client_presence_state": cs.client_presence_state, "boot_id": cs.boot_id, "session_id": cs.session_id,
        "last_heartbeat_at": cs.last_heartbeat_at, "last_detect_ack_at": cs.last_detect_ack_at,
        "last_reachable_at": cs.last_reachable_at, "last_offline_at": cs.last_offline_at,
        "last_will_at": cs.last_will_at, "last_event": cs.last_event, "last_event_at": cs.last_event_at,
    }))
}

async fn status_object(app: &AppState, f: &NodeFacts) -> AppResult<Value> {
    let mut cs = client_state::get(&app.db, &f.node_id).await?;
    if apply_ttl(app, f, &cs).await? {
        cs = client_state::get(&app.db, &f.node_id).await?;
    }
    let rt = runtime::get(&app.db, &f.node_id).await?.unwrap_or_default();
    let cfg = config_state::get(&app.db, &f.node_id).await?.unwrap_or_default();
    let item = snapshot_item(f, &rt, cs.as_ref(), &cfg);
    let last = control_logs::list_for_node(&app.db, &f.node_id, 1).await?.into_iter().next();
    let version_state = if !f.is_dynamic() || cfg.confirmed_sha256 == cfg.staged_sha256 { "latest" } else { "pending" };
    Ok(json!({
        "node": {"id": f.node_id, "config_id": f.config_id, "name": f.node_name, "node_type": f.node_type, "enabled": f.node_enabled},
        "runtime": item,
        "client_state": client_state_json(app, f).await?,
        "mqtt_service": app.mqtt.status(),
        "config_state": {
            "desired_version": cfg.desired_version, "desired_sha256": cfg.desired_sha256,
            "staged_version": cfg.staged_version, "staged_sha256": cfg.staged_sha256,
            "confirmed_version": cfg.confirmed_version, "confirmed_sha256": cfg.confirmed_sha256,
            "reported_local_sha256": cfg.reported_local_sha256, "reported_local_version": cfg.reported_local_version,
            "status": item["config_sync_state"], "server_apply_status": crate::service::sync::apply_status(&cfg.desired_sha256, &cfg.staged_sha256),
            "wg_config_version_state": version_state,
        },
        "last_control": last,
    }))
}

/// `GET .../endpoint/status`.
pub async fn endpoint_status(app: &AppState, config_id: &str, node_id: &str) -> AppResult<Value> {
    let f = facts(app, config_id, node_id).await?;
    if !f.node_enabled {
        return Err(AppError::new(ErrorCode::NodeDisabled, "Node is disabled").with("node_id", node_id));
    }
    status_object(app, &f).await
}

/// SSE after a runtime change: `endpoint.status.updated` → `runtime.snapshot.updated` →
/// `system.status.updated`. Skipped entirely when nobody listens.
pub async fn publish_runtime_events(app: &AppState, config_id: &str, node_id: &str) {
    if app.events.subscriber_count() == 0 {
        return;
    }
    let status = match client_state::node_facts(&app.db, node_id).await {
        Ok(Some(f)) if f.node_enabled => status_object(app, &f).await.ok(),
        _ => None,
    };
    app.events.publish("endpoint.status.updated", json!({"config_id": config_id, "node_id": node_id, "status": status}));
    if let Ok(items) = runtime_snapshot(app, config_id).await {
        app.events.publish("runtime.snapshot.updated", json!({"config_id": config_id, "items": items}));
    }
    // The full SystemStatus follows through the refresh worker (spec 04 §1.3 order kept:
    // it is queued after the two events above).
    crate::service::refresh::system_status_changed(app);
}

/// One detect probe: mark probing, publish, wait, time out if no ACK newer than the send.
pub async fn detect_one(app: AppState, f: NodeFacts) {
    let sent = crate::util::now_iso();
    let probing = RuntimeWrite {
        connectivity_state: Some("probing"),
        last_probe_sent_at: Some(Some(sent.clone())),
        reason: Some("detect-sent".into()),
        ..Default::default()
    };
    let write = async {
        let mut tx = app.db.begin().await?;
        runtime::apply(&mut tx, &f.node_id, &f.config_id, &probing).await?;
        tx.commit().await
    };
    if let Err(e) = write.await {
        tracing::warn!(node_id = %f.node_id, error = %e, "detect: marking probe failed");
        return;
    }
    let t = tunnel(&app, &f);
    let payload = Detect { tunnel_protocol: t.tunnel_protocol, awg_version: t.awg_version };
    let body = wfm_mqtt_proto::Envelope::from_server(Kind::Detect, &wfm_mqtt_proto::new_request_id(), &f.config_id, &f.node_id, payload).to_bytes();
    let published = match body {
        Ok(b) => app.mqtt.publish(wfm_mqtt_proto::topic::topic(&f.config_id, &f.node_id, Kind::Detect), b).await.is_ok(),
        Err(_) => false,
    };
    if published {
        tokio::time::sleep(app.mqtt.detect_wait()).await;
    }
    let acked = runtime::get(&app.db, &f.node_id).await.ok().flatten().and_then(|r| r.last_probe_ack_at).is_some_and(|a| a >= sent);
    if !acked {
        let timeout = RuntimeWrite {
            online: Some(false),
            connectivity_state: Some("offline"),
            wg_runtime_state: Some("unknown"),
            detect_client_online: Some(false),
            detect_wg_online: Some(false),
            reason: Some("detect-timeout".into()),
            ..Default::default()
        };
        let write = async {
            let mut tx = app.db.begin().await?;
            runtime::apply(&mut tx, &f.node_id, &f.config_id, &timeout).await?;
            tx.commit().await
        };
        if let Err(e) = write.await {
            tracing::warn!(node_id = %f.node_id, error = %e, "detect: recording timeout failed");
        }
        publish_runtime_events(&app, &f.config_id, &f.node_id).await;
    }
}

/// `POST /configs/{c}/endpoint/probe-batch`.
pub async fn probe_batch(app: &AppState, config_id: &str, node_ids: &[String]) -> AppResult<Value> {
    require_enabled(app)?;
    if client_state::config_enabled(&app.db, config_id).await?.is_none() {
        return Err(AppError::new(ErrorCode::ConfigNotFound, "Config not found").with("config_id", config_id));
    }
    let nodes = client_state::config_node_facts(&app.db, config_id).await?;
    let epoch = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    let mut dispatched = vec![];
    for f in nodes.into_iter().filter(|f| f.node_enabled && f.is_dynamic() && (node_ids.is_empty() || node_ids.contains(&f.node_id))) {
        // `{epoch:?}` always has a fractional part, like Python's `str(time.time())`
        // (`Display` prints a whole second as `1700000000`).
        dispatched.push(json!({"node_id": f.node_id, "request_id": format!("probe-{}-{epoch:?}", f.node_id)}));
        tokio::spawn(detect_one(app.clone(), f));
    }
    Ok(json!({"dispatched": dispatched, "skipped": []}))
}

/// Every 120 s while connected and watched: TTL check, then probe every bound node.
pub async fn detect_loop(app: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(app.mqtt.detect_interval()) => {}
            // The period changed: start waiting again with the new one.
            _ = app.mqtt.detect_wake.notified() => continue,
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
        if !app.mqtt.is_connected() || app.events.subscriber_count() == 0 {
            continue;
        }
        let Ok(rows) = client_state::auth_rows(&app.db).await else { continue };
        for r in rows.into_iter().filter(|r| r.node_type == "dynamic" && r.node_enabled && r.config_enabled && r.client_initialized.unwrap_or(false)) {
            if let Ok(Some(f)) = client_state::node_facts(&app.db, &r.node_id).await {
                let cs = client_state::get(&app.db, &f.node_id).await.ok().flatten();
                let _ = apply_ttl(&app, &f, &cs).await;
                tokio::spawn(detect_one(app.clone(), f));
            }
        }
        let _ = Duration::ZERO;
    }
}
