//! Upstream messages → stored state (spec 03 §6). Never fails: malformed or foreign messages
//! are logged and dropped, database errors are logged, the connection loop goes on.
//!
//! Ids come from the topic, never from the envelope. Messages for unknown nodes, or for nodes
//! that may not talk MQTT (static, disabled, config disabled, not bound), change nothing.

use wfm_mqtt_proto::Inbound;
use wfm_mqtt_proto::topic::{Kind, TopicRef};

use crate::state::AppState;
use crate::store::client_state::{self, NodeFacts, PresenceWrite};
use crate::store::runtime::{self, RuntimeWrite};
use crate::store::{Tx, config_state, control_logs};

/// Handles one message.
pub async fn handle(app: &AppState, topic: &str, payload: &[u8]) {
    let Some(t) = TopicRef::parse(topic) else {
        tracing::debug!(topic, "ignoring non-WFM topic");
        return;
    };
    let Some(kind) = t.known_kind().filter(|k| !k.is_downstream()) else {
        tracing::debug!(topic, "ignoring unknown kind");
        return;
    };
    let facts = match client_state::node_facts(&app.db, t.node_id).await {
        Ok(Some(f)) if f.config_id == t.config_id => f,
        Ok(_) => {
            tracing::warn!(topic, "dropping message for an unknown node or a foreign config");
            return;
        }
        Err(e) => {
            tracing::warn!(topic, error = %e, "ingress: node lookup failed");
            return;
        }
    };
    if !(facts.is_dynamic() && facts.node_enabled && facts.config_enabled) {
        tracing::debug!(topic, "dropping message for a node that may not use MQTT");
        return;
    }
    let msg = Inbound::parse(payload);
    if !msg.well_formed {
        tracing::warn!(topic, "malformed JSON on an upstream topic; read as {{}}");
    }
    if let Err(e) = apply(app, &facts, kind, &msg).await {
        tracing::warn!(topic, error = %e, "ingress: applying message failed");
        return;
    }
    crate::service::endpoint::publish_runtime_events(app, &facts.config_id, &facts.node_id).await;
}

fn ids(msg: &Inbound, w: &mut PresenceWrite) {
    let b = msg.text_or_empty("boot_id");
    let s = msg.text_or_empty("session_id");
    if !b.is_empty() {
        w.boot_id = Some(b);
    }
    if !s.is_empty() {
        w.session_id = Some(s);
    }
}

/// "Mark reachable (reason)".
fn reachable(now: &str, reason: &str) -> (PresenceWrite, RuntimeWrite) {
    (
        PresenceWrite { presence: Some("online"), reachable_at: Some(now.into()), ..Default::default() },
        RuntimeWrite {
            online: Some(true),
            connectivity_state: Some("online"),
            last_seen: Some(Some(now.into())),
            last_control_channel_seen_at: Some(Some(now.into())),
            reason: Some(reason.into()),
            ..Default::default()
        },
    )
}

async fn write(tx: &mut Tx, f: &NodeFacts, p: &PresenceWrite, r: &RuntimeWrite) -> Result<(), crate::store::StoreError> {
    client_state::apply_presence(tx, &f.node_id, p).await?;
    runtime::apply(tx, &f.node_id, &f.config_id, r).await
}

fn wg_state(client: bool, wg: bool) -> &'static str {
    if wg {
        "running"
    } else if client {
        "stopped"
    } else {
        "unknown"
    }
}

async fn apply(app: &AppState, f: &NodeFacts, kind: Kind, msg: &Inbound) -> Result<(), crate::store::StoreError> {
    let now = crate::util::now_iso();
    let mut tx = app.db.begin().await?;
    let state = client_state::get_tx(&mut tx, &f.node_id).await?;
    if !state.as_ref().is_some_and(|s| s.client_initialized) {
        tracing::debug!(node_id = %f.node_id, "dropping message from an unbound node");
        return Ok(());
    }
    let mut updated_logs = vec![];
    let mut created_logs = vec![];
    match kind {
        Kind::Heartbeat => {
            let client = msg.flag("client_online", true);
            let wg = msg.flag("wg_online", false);
            let mut p = PresenceWrite {
                presence: Some("online"),
                heartbeat_at: Some(now.clone()),
                reachable_at: Some(now.clone()),
                ..Default::default()
            };
            ids(msg, &mut p);
            let r = RuntimeWrite {
                online: Some(true),
                connectivity_state: Some("online"),
                heartbeat_client_online: Some(client),
                heartbeat_wg_online: Some(client && wg),
                wg_running: Some(client && wg),
                wg_runtime_state: Some(wg_state(client, wg)),
                last_seen: Some(Some(now.clone())),
                reason: Some("client-heartbeat".into()),
                ..Default::default()
            };
            write(&mut tx, f, &p, &r).await?;
        }
        Kind::Event => {
            let name = msg.text_or_empty("event");
            let message = msg.text("message").unwrap_or_default();
            let (mut p, r) = if name == "offline" {
                (
                    PresenceWrite { presence: Some("offline"), will_at: Some(now.clone()), offline_at: Some(now.clone()), ..Default::default() },
                    RuntimeWrite {
                        online: Some(false),
                        connectivity_state: Some("offline"),
                        wg_running: Some(false),
                        wg_runtime_state: Some("unknown"),
                        heartbeat_client_online: Some(false),
                        heartbeat_wg_online: Some(false),
                        detect_client_online: Some(false),
                        detect_wg_online: Some(false),
                        reason: Some("client-will-message".into()),
                        ..Default::default()
                    },
                )
            } else {
                (
                    PresenceWrite { presence: Some("online"), reachable_at: Some(now.clone()), ..Default::default() },
                    RuntimeWrite {
                        online: Some(true),
                        connectivity_state: Some("online"),
                        last_seen: Some(Some(now.clone())),
                        reason: Some(format!("client-event:{name}")),
                        ..Default::default()
                    },
                )
            };
            ids(msg, &mut p);
            p.last_event = Some(format!("{name}: {message}"));
            p.last_event_at = Some(now.clone());
            write(&mut tx, f, &p, &r).await?;
            let rid = msg.request_id();
            let body = msg.text("output").filter(|s| !s.is_empty()).unwrap_or_else(|| message.clone());
            let detail = if rid.is_empty() { body } else { format!("request_id={rid}\n{body}") };
            let log_rid = wfm_mqtt_proto::new_request_id();
            let summary = format!("Client event: {name}");
            let log = control_logs::insert(
                &mut tx,
                &control_logs::NewLog {
                    request_id: &log_rid,
                    config_id: &f.config_id,
                    node_id: &f.node_id,
                    action: "event",
                    status: "acked",
                    requested_by: "client",
                    summary: &summary,
                    detail: &detail,
                    config_sha256: "",
                    config_version: 0,
                    ack_at: Some(&now),
                },
            )
            .await?;
            created_logs.push(log);
        }
        Kind::DetectAck => {
            let client = msg.flag("client_online", true);
            let wg = msg.flag("wg_online", false);
            let mut p = PresenceWrite {
                presence: Some("online"),
                detect_ack_at: Some(now.clone()),
                reachable_at: Some(now.clone()),
                ..Default::default()
            };
            ids(msg, &mut p);
            let platform = msg.text_or_empty("platform");
            let version = msg.text_or_empty("client_version");
            if !platform.is_empty() {
                p.platform = Some(platform.chars().take(64).collect());
            }
            if !version.is_empty() {
                p.version = Some(version.chars().take(64).collect());
            }
            let r = RuntimeWrite {
                online: Some(true),
                connectivity_state: Some("online"),
                detect_client_online: Some(client),
                detect_wg_online: Some(client && wg),
                wg_running: Some(client && wg),
                wg_runtime_state: Some(wg_state(client, wg)),
                last_seen: Some(Some(now.clone())),
                last_probe_ack_at: Some(Some(now.clone())),
                reason: Some("detect-ack".into()),
                ..Default::default()
            };
            write(&mut tx, f, &p, &r).await?;
        }
        Kind::ControlAck | Kind::InfoAck => {
            let rid = msg.request_id();
            let default_action = if kind == Kind::InfoAck { "wg_show" } else { "control" };
            if rid.is_empty() {
                let reason = if kind == Kind::InfoAck { "wg_show-ack" } else { "control-ack" };
                let (mut p, r) = reachable(&now, reason);
                ids(msg, &mut p);
                write(&mut tx, f, &p, &r).await?;
            } else {
                let status_in = msg.text_or_empty("status");
                let status = if status_in.eq_ignore_ascii_case("failed") { "failed" } else { "acked" };
                let summary = msg.text("message").filter(|s| !s.is_empty()).unwrap_or_else(|| status_in.clone());
                let action = msg.text("action").filter(|s| !s.is_empty()).unwrap_or_else(|| default_action.to_string());
                // Only a row of this node with this id is completed; foreign ids are ignored.
                let own = control_logs::get_by_request(&mut tx, &rid).await?.filter(|l| l.node_id == f.node_id);
                if own.is_some() {
                    let detail = serde_json::to_string(&msg.payload()).unwrap_or_default();
                    if let Some(l) = control_logs::complete(&mut tx, &rid, status, &summary, Some(&detail), Some(&now), false).await? {
                        updated_logs.push(l);
                    }
                }
                let (mut p, mut r) = reachable(&now, &format!("{action}-ack"));
                if status == "acked" && action == "start" {
                    r.wg_running = Some(true);
                    r.wg_runtime_state = Some("running");
                } else if status == "acked" && action == "stop" {
                    r.wg_running = Some(false);
                    r.wg_runtime_state = Some("stopped");
                    r.reason = Some("manual-stop-wg".into());
                }
                ids(msg, &mut p);
                write(&mut tx, f, &p, &r).await?;
            }
        }
        Kind::ConfigPushAck => {
            let rid = msg.request_id();
            if !rid.is_empty() {
                let status_in = msg.text("status").unwrap_or_else(|| "failed".into());
                let log = control_logs::get_by_request(&mut tx, &rid).await?.filter(|l| l.node_id == f.node_id);
                if status_in.eq_ignore_ascii_case("applied") {
                    // WFM: the ACK confirms the version this request pushed (recorded in the log),
                    // not whatever is staged now. An agent that echoes a hash must echo that one.
                    let echoed = msg.text_or_empty("config_sha256");
                    let pushed = log.as_ref().map(|l| (l.config_sha256.clone(), l.config_version));
                    let (status, summary) = match &pushed {
                        Some((sha, _)) if !echoed.is_empty() && !echoed.eq_ignore_ascii_case(sha) => {
                            ("failed", format!("Client applied a different config (sha256 {echoed})"))
                        }
                        _ => ("acked", msg.text("message").filter(|s| !s.is_empty()).unwrap_or_else(|| "Config applied by client".into())),
                    };
                    if status == "acked" {
                        match &pushed {
                            Some((sha, ver)) if !sha.is_empty() => config_state::confirm(&mut tx, &f.node_id, sha, *ver).await?,
                            _ => {
                                // Unknown request (upstream behaviour): confirm the current staged text.
                                if let Some(cs) = config_state::get_tx(&mut tx, &f.node_id).await?
                                    && !cs.staged_sha256.is_empty()
                                {
                                    config_state::confirm(&mut tx, &f.node_id, &cs.staged_sha256, cs.staged_version).await?;
                                }
                            }
                        }
                    }
                    if log.is_some()
                        && let Some(l) = control_logs::complete(&mut tx, &rid, status, &summary, None, Some(&now), false).await?
                    {
                        updated_logs.push(l);
                    }
                } else if log.is_some() {
                    let summary = msg.text("message").filter(|s| !s.is_empty()).unwrap_or(status_in);
                    if let Some(l) = control_logs::complete(&mut tx, &rid, "failed", &summary, None, Some(&now), false).await? {
                        updated_logs.push(l);
                    }
                }
            }
            let (mut p, r) = reachable(&now, "config-push-ack");
            ids(msg, &mut p);
            write(&mut tx, f, &p, &r).await?;
        }
        _ => {
            let (mut p, r) = reachable(&now, "generic-ack");
            ids(msg, &mut p);
            write(&mut tx, f, &p, &r).await?;
        }
    }
    tx.commit().await?;
    for l in &created_logs {
        crate::mqtt::dispatch::log_event(app, "control.log.created", l);
    }
    for l in &updated_logs {
        crate::mqtt::dispatch::log_event(app, "control.log.updated", l);
    }
    Ok(())
}
