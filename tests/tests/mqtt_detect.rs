//! End-to-end: the server's detect loop and the probe-batch endpoint (spec 03 §5.4, §6.1
//! `detect/ack`, §6.5, §6.6, §7.5) with the real server (SQLite and PostgreSQL), a real
//! Mosquitto (dynamic security, one per test) and the reference agent.
//!
//! A spy connected as the server identity watches `wfm/+/+/detect`, so the tests see exactly
//! what the server sends. Timing is shortened through `MqttService::set_detect_interval` /
//! `set_detect_wait`; the 90-minute online TTL is exercised by ageing `last_reachable_at`.

mod mqtt_support;

use std::time::Duration;

use futures_util::StreamExt;
use mqtt_support::{ADMIN, ADMIN_PW, Mosquitto, RawClient, Seen, wait_until};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wfm_agent::runner::Runner;
use wfm_agent::session::{AgentEvent, AgentOptions, run_profile};
use wfm_e2e::{Backend, TestServer, both_backends};
use wfm_mqtt_proto::topic::{Kind, topic};

const CFG: &str = "cfg_detect000001";
/// Bound, runs the reference agent.
const A: &str = "node_aaaaaaaaaaaa";
/// Bound, a raw client that receives detects but never answers.
const B: &str = "node_bbbbbbbbbbbb";
/// Dynamic, never bound.
const C: &str = "node_cccccccccccc";
/// Dynamic, bound, then disabled.
const D: &str = "node_dddddddddddd";
/// Static.
const S: &str = "node_ssssssssssss";

/// The config and its nodes (A–D dynamic, S static).
async fn seed(s: &TestServer, protocol: &str, awg_version: Option<&str>) {
    let texts: Vec<String> = ["a", "b", "c", "d", "s"].iter().map(|n| format!("[Interface]\nPrivateKey = {n}\n")).collect();
    let nodes = [(A, "a", "dynamic", texts[0].as_str()), (B, "b", "dynamic", &texts[1]), (C, "c", "dynamic", &texts[2]), (D, "d", "dynamic", &texts[3]), (S, "s", "static", &texts[4])];
    mqtt_support::seed(s, CFG, protocol, awg_version, &nodes).await;
}

async fn start(backend: Backend, b: &Mosquitto) -> (TestServer, String) {
    mqtt_support::start_server(backend, b).await
}

fn np(node: &str) -> String {
    format!("/api/v1/configs/{CFG}/nodes/{node}")
}

fn probe_path() -> String {
    format!("/api/v1/configs/{CFG}/endpoint/probe-batch")
}

async fn status(s: &TestServer, token: &str, node: &str) -> Value {
    s.get(&format!("{}/endpoint/status", np(node)), Some(token)).await.ok().clone()
}

async fn snapshot(s: &TestServer, token: &str) -> Vec<Value> {
    s.get(&format!("/api/v1/configs/{CFG}/endpoint/runtime-snapshot"), Some(token)).await.ok().as_array().unwrap().clone()
}

fn item<'a>(snap: &'a [Value], node: &str) -> &'a Value {
    snap.iter().find(|i| i["node_id"] == node).unwrap_or_else(|| panic!("{node} not in snapshot: {snap:?}"))
}

async fn bind(s: &TestServer, token: &str, node: &str, root: &std::path::Path) -> wfm_agent::profile::Bound {
    let cmd = s.post(&format!("{}/bind-command", np(node)), Some(token), json!({})).await;
    let t = cmd.ok()["token"].as_str().unwrap().to_string();
    wfm_agent::profile::bind(&s.base, &t, root).await.expect("bind")
}

/// A spy with the server identity subscribed to every detect topic.
async fn spy(b: &Mosquitto) -> RawClient {
    let mut spy = RawClient::connect(b.port, "wfm-detect-spy", ADMIN, ADMIN_PW);
    assert_eq!(spy.next(5).await, Some(Seen::Connected));
    assert!(spy.subscribe("wfm/+/+/detect").await);
    spy
}

/// Detect messages `(node_id, envelope)` seen by `c` within `ms` after the first one (which
/// must come within `first_secs`); `on_first` runs as soon as the first one is seen.
async fn detects(c: &mut RawClient, first_secs: u64, ms: u64, on_first: impl FnOnce()) -> Vec<(String, Value)> {
    let parse = |s: Seen| match s {
        Seen::Message(t, body) => {
            let node = t.split('/').nth(2).unwrap().to_string();
            assert_eq!(t, topic(CFG, &node, Kind::Detect));
            (node, serde_json::from_slice::<Value>(&body).unwrap())
        }
        other => panic!("not a message: {other:?}"),
    };
    let first = c.wait_for(first_secs, |s| matches!(s, Seen::Message(..))).await.expect("no detect published");
    on_first();
    let mut out = vec![parse(first)];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, c.rx.recv()).await {
            Ok(Some(s @ Seen::Message(..))) => out.push(parse(s)),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    out.sort_by(|x, y| x.0.cmp(&y.0));
    out
}

fn assert_hex32(s: &str) {
    assert!(s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "not a 32-hex request id: {s:?}");
}

/// The server envelope of a detect (spec 03 §4, §5.4).
fn assert_detect_envelope(e: &Value, node: &str, payload: Value) {
    assert_eq!(e["type"], "detect", "{e}");
    assert_hex32(e["request_id"].as_str().unwrap());
    assert_eq!(e["config_id"], CFG);
    assert_eq!(e["node_id"], node);
    assert_eq!(e["boot_id"], "");
    assert_eq!(e["session_id"], "");
    let sent = e["sent_at"].as_str().unwrap();
    assert!(sent.ends_with("+00:00") && wfm::util::parse_iso(sent).is_some(), "sent_at {sent}");
    assert_eq!(e["payload"], payload, "{e}");
}

/// The agent's `Handled` report for a detect with this id.
async fn agent_handled(rx: &mut mpsc::UnboundedReceiver<AgentEvent>, rid: &str) -> (String, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(AgentEvent::Handled { kind, request_id, status, message })) if request_id == rid => {
                assert_eq!(kind, "detect");
                return (status, message);
            }
            Ok(Some(_)) => continue,
            other => panic!("agent never answered detect {rid}: {other:?}"),
        }
    }
}

/// Starts the reference agent for a bound profile.
fn run_agent(bound: &wfm_agent::profile::Bound, runner: Runner) -> (mpsc::UnboundedReceiver<AgentEvent>, tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (etx, erx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = AgentOptions {
        runner,
        reconnect_delay: Duration::from_millis(300),
        platform: "darwin".into(),
        version: "9.8.7-detect".into(),
        ..Default::default()
    };
    let task = tokio::spawn(run_profile(bound.dir.clone(), opts, Some(etx), stop_rx));
    (erx, stop_tx, task)
}

/// Reads the SSE stream in the background and forwards each event object.
fn sse(s: &TestServer, token: &str) -> (mpsc::UnboundedReceiver<Value>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let req = s.client.get(s.url("/api/v1/events/stream")).bearer_auth(token).timeout(Duration::from_secs(120));
    let task = tokio::spawn(async move {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(i) = buf.find("\n\n") {
                let frame: String = buf.drain(..i + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: "))
                    && tx.send(serde_json::from_str(data).unwrap()).is_err()
                {
                    return;
                }
            }
        }
    });
    (rx, task)
}

/// Waits for an SSE event of `kind` whose payload satisfies `f`.
async fn sse_wait(rx: &mut mpsc::UnboundedReceiver<Value>, kind: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(e)) if e["type"] == kind && f(&e["payload"]) => return e,
            Ok(Some(_)) => {}
            other => panic!("no SSE {kind} matching: {other:?}"),
        }
    }
}

async fn set_last_reachable(s: &TestServer, node: &str, minutes_ago: u64) {
    let at = wfm::util::iso(wfm::util::now() - Duration::from_secs(minutes_ago * 60));
    let mut tx = s.state.db.begin().await.unwrap();
    assert_eq!(wfm::exec!(&mut tx, "UPDATE node_client_state SET last_reachable_at = $2 WHERE node_id = $1", node, &at).unwrap(), 1);
    tx.commit().await.unwrap();
}

/// The server-side detect loop (spec 03 §6.6): it probes only while connected **and** watched
/// by an SSE subscriber, only bound, enabled, dynamic nodes; an answer is recorded (§6.1),
/// silence becomes `detect-timeout` with presence unchanged (§6.5), and each round first
/// applies the online TTL.
async fn detect_loop(backend: Backend) {
    let b = Mosquitto::start();
    let (s, token) = start(backend, &b).await;
    s.state.mqtt.set_detect_wait(Duration::from_millis(5000));
    seed(&s, "wireguard", None).await;
    let root = tempfile::tempdir().unwrap();

    // A runs the reference agent.
    let bound_a = bind(&s, &token, A, root.path()).await;
    let runner = Runner::dry_run(None);
    let (mut erx, stop_tx, agent) = run_agent(&bound_a, runner.clone());
    wait_until(45, || async { status(&s, &token, A).await["client_state"]["client_presence_state"] == "online" }).await;
    let st = status(&s, &token, A).await;
    assert_eq!(st["client_state"]["last_detect_ack_at"], Value::Null);
    assert_eq!(st["runtime"]["last_probe_sent_at"], Value::Null);
    assert_ne!(st["client_state"]["client_version"], "9.8.7-detect", "bind already reported the detect version");

    // B: bound; a raw client that says it is running, then stays mute.
    let bound_b = bind(&s, &token, B, root.path()).await;
    let mb = &bound_b.file.mqtt;
    let mut mute = RawClient::connect(b.port, &mb.client_id, &mb.username, &mb.password);
    assert_eq!(mute.next(5).await, Some(Seen::Connected));
    assert!(mute.subscribe(&topic(CFG, B, Kind::Detect)).await);
    let hb = json!({"type": "heartbeat", "request_id": "", "config_id": CFG, "node_id": B, "boot_id": "boot-1", "session_id": "session-1",
        "sent_at": "2026-01-01T00:00:00Z", "payload": {"client_online": true, "wg_online": true}});
    mute.publish(&topic(CFG, B, Kind::Heartbeat), hb.to_string()).await;
    wait_until(30, || async { status(&s, &token, B).await["runtime"]["wg_running"] == true }).await;

    // D: bound, then disabled; C never bound; S static.
    bind(&s, &token, D, root.path()).await;
    let mut tx = s.state.db.begin().await.unwrap();
    wfm::exec!(&mut tx, "UPDATE nodes SET enabled = $2 WHERE id = $1", D, false).unwrap();
    tx.commit().await.unwrap();

    let mut spy = spy(&b).await;

    // Connected but nobody watching: rounds run and send nothing.
    assert_eq!(s.state.events.subscriber_count(), 0);
    s.state.mqtt.set_detect_interval(Duration::from_millis(250));
    assert_eq!(spy.wait_for(1, |m| matches!(m, Seen::Message(..))).await, None, "detect sent without an SSE subscriber");

    // A console subscribes: the next round probes A and B only.
    let (mut events, sse_task) = sse(&s, &token);
    wait_until(15, || async { s.state.events.subscriber_count() == 1 }).await;
    let mqtt = &s.state.mqtt;
    let round = detects(&mut spy, 15, 2100, || mqtt.set_detect_interval(Duration::from_secs(3600))).await;
    let nodes: Vec<&str> = round.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(nodes, vec![A, B], "one round must probe exactly the bound, enabled, dynamic nodes");
    let wg = json!({"tunnel_protocol": "wireguard", "awg_version": null});
    assert_detect_envelope(&round[0].1, A, wg.clone());
    assert_detect_envelope(&round[1].1, B, wg);
    let rid_a = round[0].1["request_id"].as_str().unwrap().to_string();
    assert_ne!(rid_a, round[1].1["request_id"].as_str().unwrap(), "each probe has its own request id");

    // While B's probe is open it reads `probing`.
    let snap = snapshot(&s, &token).await;
    let ib = item(&snap, B);
    assert_eq!(ib["connectivity_state"], "probing", "{ib}");
    assert!(ib["last_probe_sent_at"].is_string());
    assert_eq!(status(&s, &token, B).await["runtime"]["last_connectivity_reason"], "detect-sent");
    // The mute client got its detect too.
    assert!(matches!(mute.wait_for(5, |m| matches!(m, Seen::Message(..))).await, Some(Seen::Message(t, _)) if t == topic(CFG, B, Kind::Detect)));

    // The agent answers; the answer is recorded (spec 03 §6.1 `detect/ack`).
    assert_eq!(agent_handled(&mut erx, &rid_a).await, ("applied".to_string(), "Detect completed.".to_string()));
    wait_until(30, || async { status(&s, &token, A).await["client_state"]["last_detect_ack_at"].is_string() }).await;
    let st = status(&s, &token, A).await;
    let (rt, cs) = (&st["runtime"], &st["client_state"]);
    assert_eq!(rt["last_connectivity_reason"], "detect-ack", "{st}");
    assert_eq!(rt["online"], true);
    assert_eq!(rt["connectivity_state"], "online");
    assert_eq!(rt["detect_client_online"], true);
    assert_eq!(rt["detect_wg_online"], false, "the dry-run interface is down");
    assert_eq!(rt["wg_running"], false);
    assert_eq!(rt["wg_runtime_state"], "stopped");
    let (sent, acked) = (rt["last_probe_sent_at"].as_str().unwrap(), rt["last_probe_ack_at"].as_str().unwrap());
    assert!(acked >= sent, "ack {acked} before probe {sent}");
    assert_eq!(cs["client_presence_state"], "online");
    assert_eq!(cs["last_reachable_at"], cs["last_detect_ack_at"]);
    assert_eq!(cs["client_platform"], "darwin");
    assert_eq!(cs["client_version"], "9.8.7-detect");
    assert_eq!(cs["client_version_label"], "macOS 9.8.7-detect");
    // The agent's `detect` event is logged before its ACK.
    assert_eq!(cs["last_event"], "detect: wg_online=false");
    let logs = s.get(&format!("{}/endpoint/logs", np(A)), Some(&token)).await.ok().clone();
    assert!(logs.as_array().unwrap().iter().any(|l| l["summary"] == "Client event: detect" && l["detail"] == "wg_online=false"), "{logs}");
    sse_wait(&mut events, "endpoint.status.updated", |p| {
        p["node_id"] == A && p["status"]["runtime"]["last_connectivity_reason"] == "detect-ack"
    })
    .await;

    // B never answers: detect timeout; runtime offline, presence unchanged (spec 03 §6.5).
    let ev = sse_wait(&mut events, "endpoint.status.updated", |p| {
        p["node_id"] == B && p["status"]["runtime"]["last_connectivity_reason"] == "detect-timeout"
    })
    .await;
    assert_eq!(ev["payload"]["config_id"], CFG);
    sse_wait(&mut events, "runtime.snapshot.updated", |p| {
        p["config_id"] == CFG && p["items"].as_array().is_some_and(|a| a.iter().any(|i| i["node_id"] == B && i["connectivity_state"] == "offline"))
    })
    .await;
    let st = status(&s, &token, B).await;
    let rt = &st["runtime"];
    assert_eq!(rt["last_connectivity_reason"], "detect-timeout", "{st}");
    assert_eq!(rt["online"], false);
    assert_eq!(rt["connectivity_state"], "offline");
    assert_eq!(rt["wg_runtime_state"], "unknown");
    assert_eq!(rt["detect_client_online"], false);
    assert_eq!(rt["detect_wg_online"], false);
    assert_eq!(rt["last_probe_ack_at"], Value::Null);
    assert_eq!(rt["heartbeat_wg_online"], true, "heartbeat flags are not detect flags");
    assert_eq!(st["client_state"]["client_presence_state"], "online", "a detect timeout leaves presence alone");
    assert_eq!(st["client_state"]["last_detect_ack_at"], Value::Null);
    // Never-probed nodes are untouched.
    let snap = snapshot(&s, &token).await;
    assert_eq!(item(&snap, C)["last_probe_sent_at"], Value::Null);
    assert_eq!(item(&snap, D)["last_probe_sent_at"], Value::Null);
    assert_eq!(item(&snap, S)["last_probe_sent_at"], Value::Null);
    assert_eq!(item(&snap, A)["connectivity_state"], "online");

    // Online TTL (90 min on last_reachable_at), applied lazily by the REST reads.
    set_last_reachable(&s, A, 89).await;
    assert_eq!(item(&snapshot(&s, &token).await, A)["client_presence_state"], "online", "expired before the TTL");
    set_last_reachable(&s, A, 91).await;
    let snap = snapshot(&s, &token).await;
    let ia = item(&snap, A);
    assert_eq!(ia["client_presence_state"], "offline", "{ia}");
    assert_eq!(ia["online"], false);
    assert_eq!(ia["connectivity_state"], "offline");
    assert_eq!(ia["wg_runtime_state"], "unknown");
    assert_eq!(ia["heartbeat_client_online"], false);
    assert_eq!(ia["last_connectivity_reason"], "client-reachable-timeout");

    // A detect answer revives the expired node.
    let r = s.post(&probe_path(), Some(&token), json!({"node_ids": [A]})).await;
    assert_eq!(r.ok()["dispatched"].as_array().unwrap().len(), 1);
    let round = detects(&mut spy, 15, 1000, || {}).await;
    agent_handled(&mut erx, round[0].1["request_id"].as_str().unwrap()).await;
    wait_until(30, || async { status(&s, &token, A).await["client_state"]["client_presence_state"] == "online" }).await;
    assert_eq!(status(&s, &token, A).await["runtime"]["last_connectivity_reason"], "detect-ack");

    // With the interface up the answer says so.
    s.post(&format!("{}/endpoint/control", np(A)), Some(&token), json!({"action": "start"})).await.ok();
    wait_until(30, || async { status(&s, &token, A).await["runtime"]["wg_running"] == true }).await;
    let r = s.post(&probe_path(), Some(&token), json!({"node_ids": [A]})).await;
    assert_eq!(r.ok()["dispatched"].as_array().unwrap().len(), 1);
    let round = detects(&mut spy, 15, 1000, || {}).await;
    agent_handled(&mut erx, round[0].1["request_id"].as_str().unwrap()).await;
    wait_until(30, || async { status(&s, &token, A).await["runtime"]["detect_wg_online"] == true }).await;
    let rt = status(&s, &token, A).await["runtime"].clone();
    assert_eq!(rt["wg_runtime_state"], "running");
    assert_eq!(rt["wg_running"], true);

    // Each round applies the TTL before probing. The agent stops first (its will is the last
    // upstream message: every upstream message re-reads the snapshot, which applies the TTL
    // too), then B expires inside the round with no REST read or upstream message in between.
    stop_tx.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    // The snapshot published after the will is the last TTL pass before B is aged.
    sse_wait(&mut events, "runtime.snapshot.updated", |p| {
        p["items"].as_array().is_some_and(|a| a.iter().any(|i| i["node_id"] == A && i["last_connectivity_reason"] == "client-will-message"))
    })
    .await;
    set_last_reachable(&s, B, 91).await;
    s.state.mqtt.set_detect_interval(Duration::from_millis(200));
    let round = detects(&mut spy, 15, 1000, || mqtt.set_detect_interval(Duration::from_secs(3600))).await;
    let cs_b = wfm::store::client_state::get(&s.state.db, B).await.unwrap().unwrap();
    assert_eq!(round.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), vec![A, B], "offline but bound nodes are probed too");
    assert_eq!(cs_b.client_presence_state, "offline", "the round did not apply the TTL");
    let rt_b = wfm::store::runtime::get(&s.state.db, B).await.unwrap().unwrap();
    assert_eq!(rt_b.last_connectivity_reason, "detect-sent", "TTL expiry is written before the probe");

    sse_task.abort();
    drop(mute);
    s.stop().await;
}

/// `POST /configs/{c}/endpoint/probe-batch` (spec 03 §7.5) with a connected agent, plus its
/// request validation (spec 01 §1, §11).
async fn probe_batch(backend: Backend) {
    let b = Mosquitto::start();
    let (s, token) = start(backend, &b).await;
    s.state.mqtt.set_detect_wait(Duration::from_millis(1000));
    seed(&s, "amneziawg", Some("2.0")).await;
    let root = tempfile::tempdir().unwrap();
    let bound_a = bind(&s, &token, A, root.path()).await;
    let (mut erx, stop_tx, agent) = run_agent(&bound_a, Runner::dry_run(None));
    wait_until(45, || async { status(&s, &token, A).await["client_state"]["client_presence_state"] == "online" }).await;
    let mut tx = s.state.db.begin().await.unwrap();
    wfm::exec!(&mut tx, "UPDATE nodes SET enabled = $2 WHERE id = $1", D, false).unwrap();
    tx.commit().await.unwrap();
    let mut spy = spy(&b).await;

    // No SSE subscriber needed: probe-batch starts detects on its own. Every enabled dynamic
    // node, bound or not; never disabled or static ones.
    let before = wfm::util::now().timestamp();
    let r = s.post(&probe_path(), Some(&token), json!({})).await;
    let data = r.ok().clone();
    assert_eq!(data["skipped"], json!([]));
    let dispatched = data["dispatched"].as_array().unwrap();
    assert_eq!(dispatched.iter().map(|d| d["node_id"].as_str().unwrap()).collect::<Vec<_>>(), vec![A, B, C], "{data}");
    for d in dispatched {
        let rid = d["request_id"].as_str().unwrap();
        let epoch = rid.strip_prefix(&format!("probe-{}-", d["node_id"].as_str().unwrap())).unwrap_or_else(|| panic!("bad probe id {rid}"));
        let (secs, frac) = epoch.split_once('.').unwrap_or_else(|| panic!("epoch is not a float: {rid}"));
        assert!(!frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit()), "{rid}");
        let secs: i64 = secs.parse().unwrap();
        assert!((before..=before + 5).contains(&secs), "{rid}");
    }
    let round = detects(&mut spy, 15, 2100, || {}).await;
    assert_eq!(round.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), vec![A, B, C]);
    let awg = json!({"tunnel_protocol": "amneziawg_2", "awg_version": "2.0"});
    for (node, env) in &round {
        assert_detect_envelope(env, node, awg.clone());
    }
    // The id on the wire is not the one returned (spec 03 §7.5, open point).
    let rid_a = round[0].1["request_id"].as_str().unwrap().to_string();
    assert!(dispatched.iter().all(|d| d["request_id"] != rid_a.as_str()));

    assert_eq!(agent_handled(&mut erx, &rid_a).await.0, "applied");
    wait_until(30, || async { status(&s, &token, A).await["client_state"]["last_detect_ack_at"].is_string() }).await;
    let rt = status(&s, &token, A).await["runtime"].clone();
    assert_eq!(rt["last_connectivity_reason"], "detect-ack");
    assert_eq!(rt["detect_client_online"], true);
    // Unbound C times out after the wait.
    wait_until(15, || async {
        item(&snapshot(&s, &token).await, C)["connectivity_state"] == "offline"
            && status(&s, &token, C).await["runtime"]["last_connectivity_reason"] == "detect-timeout"
    })
    .await;
    let st = status(&s, &token, C).await;
    assert_eq!(st["client_state"]["client_presence_state"], "offline");
    assert_eq!(st["runtime"]["last_probe_ack_at"], Value::Null);
    // A answered, so its probe did not time out.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(status(&s, &token, A).await["runtime"]["last_connectivity_reason"], "detect-ack");

    // node_ids restricts; ids that are unknown, foreign, disabled or static are dropped.
    let r = s.post(&probe_path(), Some(&token), json!({"node_ids": [C, "node_unknown00000"]})).await;
    let d = r.ok()["dispatched"].as_array().unwrap().clone();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["node_id"], C);
    assert_eq!(detects(&mut spy, 15, 1000, || {}).await.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), vec![C.to_string()]);
    let r = s.post(&probe_path(), Some(&token), json!({"node_ids": [D, S, "node_unknown00000"]})).await;
    assert_eq!(r.ok().clone(), json!({"dispatched": [], "skipped": []}));
    assert_eq!(spy.wait_for(1, |m| matches!(m, Seen::Message(..))).await, None, "a detect went to a disabled/static node");
    let snap = snapshot(&s, &token).await;
    assert_eq!(item(&snap, D)["last_probe_sent_at"], Value::Null);
    assert_eq!(item(&snap, S)["last_probe_sent_at"], Value::Null);

    // Validation (spec 01 §1: schema failures are 422 VALIDATION_ERROR with detail.errors).
    for bad in [json!({"node_ids": "node_aaaaaaaaaaaa"}), json!({"node_ids": [1]}), json!({"node_ids": null}), json!({"node_ids": {}}), json!([]), json!("x")] {
        let r = s.post(&probe_path(), Some(&token), bad.clone()).await;
        let e = r.err(422, "VALIDATION_ERROR");
        assert!(e["detail"]["errors"].as_array().is_some_and(|a| !a.is_empty()), "{bad}: {e}");
    }
    let raw = s.client.post(s.url(&probe_path())).bearer_auth(&token).header("content-type", "application/json").body("{\"node_ids\": [").send().await.unwrap();
    TestServer::read(raw).await.err(422, "VALIDATION_ERROR");
    // Auth before everything else; unknown config.
    s.post(&probe_path(), None, json!({})).await.err(401, "AUTH_REQUIRED");
    s.post(&probe_path(), Some("nope"), json!({})).await.err(401, "INVALID_TOKEN");
    let r = s.post("/api/v1/configs/cfg_missing0000000/endpoint/probe-batch", Some(&token), json!({})).await;
    assert_eq!(r.err(404, "CONFIG_NOT_FOUND")["detail"]["config_id"], "cfg_missing0000000");
    assert_eq!(spy.wait_for(1, |m| matches!(m, Seen::Message(..))).await, None, "a rejected request sent a detect");

    stop_tx.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    s.stop().await;
}

/// Broker unreachable: probe-batch still answers 200 (detects run in the background), and a
/// probe whose publish fails times out at once instead of after the wait (spec 03 §6.6);
/// control commands answer 503 `MQTT_CONTROL_UNAVAILABLE` (spec 03 §7.1).
async fn probe_batch_broker_down(backend: Backend) {
    let s = TestServer::start_with(backend, &[("WFM_EMQX_API_BASE_URL", "http://127.0.0.1:9"), ("WFM_MQTT_URL", "mqtt://127.0.0.1:9")]).await;
    let token = s.setup_admin().await;
    s.state.mqtt.set_detect_wait(Duration::from_secs(60));
    seed(&s, "wireguard", None).await;
    assert!(!s.state.mqtt.is_connected());
    let r = s.post(&probe_path(), Some(&token), json!({"node_ids": [A, C]})).await;
    let d = r.ok()["dispatched"].as_array().unwrap().clone();
    assert_eq!(d.iter().map(|x| x["node_id"].clone()).collect::<Vec<_>>(), vec![json!(A), json!(C)]);
    wait_until(9, || async {
        let snap = snapshot(&s, &token).await;
        [A, C].iter().all(|n| item(&snap, n)["last_probe_sent_at"].is_string() && item(&snap, n)["last_connectivity_reason"] == "detect-timeout")
    })
    .await;
    let st = status(&s, &token, A).await;
    assert_eq!(st["runtime"]["connectivity_state"], "offline");
    assert_ne!(st["mqtt_service"]["status"], "connected");
    let r = s.post(&format!("{}/endpoint/control", np(A)), Some(&token), json!({"action": "start"})).await;
    assert!(r.err(503, "MQTT_CONTROL_UNAVAILABLE")["detail"]["detail"].is_string());
    s.stop().await;
}

/// MQTT services off: probe-batch is `MQTT_DISABLED` 409, after the schema check (422 first).
async fn probe_batch_mqtt_disabled(backend: Backend) {
    let s = TestServer::start_with(backend, &[("WFM_ENABLE_MQTT_SERVICES", "false")]).await;
    let token = s.setup_admin().await;
    seed(&s, "wireguard", None).await;
    s.post(&probe_path(), Some(&token), json!({})).await.err(409, "MQTT_DISABLED");
    s.post(&probe_path(), Some(&token), json!({"node_ids": [A]})).await.err(409, "MQTT_DISABLED");
    s.post(&probe_path(), Some(&token), json!({"node_ids": "x"})).await.err(422, "VALIDATION_ERROR");
    s.post("/api/v1/configs/cfg_missing0000000/endpoint/probe-batch", Some(&token), json!({})).await.err(409, "MQTT_DISABLED");
    let snap = snapshot(&s, &token).await;
    assert_eq!(item(&snap, A)["last_probe_sent_at"], Value::Null);
    s.stop().await;
}

both_backends!(detect_loop, probe_batch, probe_batch_broker_down, probe_batch_mqtt_disabled);
