//! End-to-end: the real server (SQLite and PostgreSQL) with a real Mosquitto (dynamic
//! security, started per test on a free loopback port) and the reference agent.
//!
//! bind → agent connects with the returned credentials → push_config reaches it and the ACK
//! confirms the pushed version → start/stop/wg_show round trips → a node cannot subscribe to
//! another node's topics → reset-client makes the broker refuse the old credentials → broker
//! outage: control answers 503, the rest keeps working, reconcile catches up on recovery →
//! unanswered commands time out.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::{ADMIN, ADMIN_PW, Mosquitto, RawClient, Seen, wait_until};
use serde_json::{Value, json};
use wfm_agent::runner::Runner;
use wfm_agent::session::{AgentEvent, AgentOptions, run_profile};
use wfm_e2e::{Backend, TestServer, both_backends};
use wfm_mqtt_proto::topic::{Kind, topic};

const CFG: &str = "cfg_e2e000000001";

/// The config and dynamic nodes `(id, name, staged text)`.
async fn seed(s: &TestServer, nodes: &[(&str, &str, &str)]) {
    let nodes: Vec<_> = nodes.iter().map(|(id, name, staged)| (*id, *name, "dynamic", *staged)).collect();
    mqtt_support::seed(s, CFG, "wireguard", None, &nodes).await;
}

async fn start(backend: Backend, b: &Mosquitto) -> (TestServer, String) {
    mqtt_support::start_server(backend, b).await
}

fn np(node: &str) -> String {
    format!("/api/v1/configs/{CFG}/nodes/{node}")
}

async fn log_of(s: &TestServer, token: &str, node: &str, rid: &str) -> Option<Value> {
    let r = s.get(&format!("{}/endpoint/logs", np(node)), Some(token)).await;
    r.ok().as_array().and_then(|a| a.iter().find(|l| l["request_id"] == rid).cloned())
}

async fn wait_log(s: &TestServer, token: &str, node: &str, rid: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(l) = log_of(s, token, node, rid).await
            && l["status"] == status
        {
            return l;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("log {rid} never reached {status}: {:?}", log_of(s, token, node, rid).await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn control(s: &TestServer, token: &str, node: &str, action: &str) -> String {
    let r = s.post(&format!("{}/endpoint/control", np(node)), Some(token), json!({"action": action})).await;
    r.ok()["request_id"].as_str().unwrap().to_string()
}

async fn status(s: &TestServer, token: &str, node: &str) -> Value {
    s.get(&format!("{}/endpoint/status", np(node)), Some(token)).await.ok().clone()
}

async fn bind(s: &TestServer, token: &str, node: &str, root: &std::path::Path) -> wfm_agent::profile::Bound {
    let cmd = s.post(&format!("{}/bind-command", np(node)), Some(token), json!({})).await;
    let t = cmd.ok()["token"].as_str().unwrap().to_string();
    assert!(cmd.ok()["command"].as_str().unwrap().starts_with("wfmctl bind --server \""));
    wfm_agent::profile::bind(&s.base, &t, root).await.expect("bind")
}

async fn e2e_channel(backend: Backend) {
    let b = Mosquitto::start();
    let (s, token) = start(backend, &b).await;
    let (a, other) = ("node_aaaaaaaaaaaa", "node_bbbbbbbbbbbb");
    let text = "[Interface]\nPrivateKey = a\n";
    seed(&s, &[(a, "a", text), (other, "b", "[Interface]\nPrivateKey = b\n")]).await;

    // Bind; the token is single use.
    let root = tempfile::tempdir().unwrap();
    let cmd = s.post(&format!("{}/bind-command", np(a)), Some(&token), json!({"server_url": "http://wfm.test/"})).await;
    let tok = cmd.ok()["token"].as_str().unwrap().to_string();
    assert_eq!(cmd.ok()["command"], format!("wfmctl bind --server \"http://wfm.test\" --token \"{tok}\""));
    let bound = wfm_agent::profile::bind(&s.base, &tok, root.path()).await.expect("bind");
    assert_eq!(bound.file.mqtt.port, b.port);
    assert_eq!(bound.file.mqtt.client_id, format!("wfm-{a}"));
    assert_eq!(bound.desired_conf, text);
    assert_eq!(bound.file.profile.interface_name, "mesh-a");
    let again = s.post("/api/client/v1/bind", None, json!({"token": tok})).await;
    again.err(409, "CLIENT_BIND_TOKEN_USED");
    s.post("/api/client/bind", None, json!({"token": "nope"})).await.err(401, "CLIENT_BIND_TOKEN_INVALID");

    // Agent connects with the returned credentials.
    let runner = Runner::dry_run(None);
    let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = AgentOptions { runner: runner.clone(), reconnect_delay: Duration::from_millis(300), ..Default::default() };
    let agent = tokio::spawn(run_profile(bound.dir.clone(), opts, Some(etx), stop_rx));
    wait_until(45, || async { status(&s, &token, a).await["client_state"]["client_presence_state"] == "online" }).await;
    let st = status(&s, &token, a).await;
    assert_eq!(st["client_state"]["client_initialized"], true);
    assert!(st["client_state"]["boot_id"].as_str().unwrap().starts_with("boot-"));
    assert_eq!(st["mqtt_service"]["status"], "connected");

    // push_config reaches the agent; its ACK confirms the pushed version.
    let rid = control(&s, &token, a, "push_config").await;
    let l = wait_log(&s, &token, a, &rid, "acked").await;
    assert_eq!(l["config_sha256"], wfm::util::sha256_hex(text));
    let st = status(&s, &token, a).await;
    assert_eq!(st["config_state"]["confirmed_sha256"], wfm::util::sha256_hex(text));
    assert_eq!(st["config_state"]["wg_config_version_state"], "latest");
    assert_eq!(std::fs::read_to_string(bound.dir.join("mesh-a.conf")).unwrap(), text);

    // A manual stage (hand-edited applied config) is pushed to the online agent by itself and
    // its ACK confirms the new version (the pending push of spec 03 §8.5).
    let edited = "[Interface]\nPrivateKey = a\n# hand edit\n";
    let put = s.put(&format!("{}/applied-conf", np(a)), Some(&token), json!({"content": edited})).await.ok().clone();
    assert_eq!(put["status"], "staged_outdated");
    wait_until(45, || async { status(&s, &token, a).await["config_state"]["confirmed_sha256"] == wfm::util::sha256_hex(edited) }).await;
    assert_eq!(std::fs::read_to_string(bound.dir.join("mesh-a.conf")).unwrap(), edited);

    // start / wg_show / stop round trips.
    let rid = control(&s, &token, a, "start").await;
    wait_log(&s, &token, a, &rid, "acked").await;
    assert_eq!(status(&s, &token, a).await["runtime"]["wg_running"], true);
    let rid = control(&s, &token, a, "wg_show").await;
    wait_log(&s, &token, a, &rid, "acked").await;
    let logs = s.get(&format!("{}/endpoint/logs", np(a)), Some(&token)).await.ok().clone();
    assert!(logs.as_array().unwrap().iter().any(|l| l["summary"] == "Client event: command_output" && l["detail"].as_str().unwrap().contains(&format!("request_id={rid}"))), "{logs}");
    let rid = control(&s, &token, a, "stop").await;
    wait_log(&s, &token, a, &rid, "acked").await;
    let st = status(&s, &token, a).await;
    assert_eq!(st["runtime"]["wg_running"], false);
    assert_eq!(st["runtime"]["wg_runtime_state"], "stopped");
    assert!(runner.commands().iter().any(|c| c.starts_with("wg-quick up")));
    let snap = s.get(&format!("/api/v1/configs/{CFG}/endpoint/runtime-snapshot"), Some(&token)).await.ok().clone();
    assert_eq!(snap.as_array().unwrap().len(), 2);

    // The authz callback agrees with the broker.
    let authz = |key: &'static str, body: Value| {
        let c = s.client.clone();
        let url = s.url("/api/internal/emqx/authz");
        async move { c.post(url).header("x-wfm-internal-key", key).json(&body).send().await.unwrap() }
    };
    let own = json!({"username": a, "clientid": format!("wfm-{a}"), "topic": topic(CFG, a, Kind::Control), "action": "subscribe"});
    let r = authz("wfm-internal-emqx-authz", own.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"result": "allow"}));
    let foreign = json!({"username": a, "clientid": format!("wfm-{a}"), "topic": topic(CFG, other, Kind::Control), "action": "subscribe"});
    assert_eq!(authz("wfm-internal-emqx-authz", foreign).await.json::<Value>().await.unwrap(), json!({"result": "deny"}));
    assert_eq!(authz("wrong", own.clone()).await.status(), 401);

    // The broker itself refuses a node's subscription to another node's topics.
    let mut raw = RawClient::connect(b.port, "wfm-node_aaaaaaaaaaaa-x", &bound.file.mqtt.username, &bound.file.mqtt.password);
    assert!(matches!(raw.next(5).await, Some(Seen::Refused(_))), "foreign client id accepted");
    drop(raw);

    // reset-client: the agent is kicked and refused; the old credentials are dead.
    let r = s.post(&format!("{}/reset-client", np(a)), Some(&token), json!({})).await;
    assert_eq!(r.ok()["client_state"]["client_initialized"], false);
    let refused = loop {
        match tokio::time::timeout(Duration::from_secs(15), erx.recv()).await {
            Ok(Some(AgentEvent::Refused(r))) => break r,
            Ok(Some(_)) => continue,
            other => panic!("agent not refused after reset: {other:?}"),
        }
    };
    assert!(!refused.is_empty());
    let mut old = RawClient::connect(b.port, &bound.file.mqtt.client_id, &bound.file.mqtt.username, &bound.file.mqtt.password);
    assert!(matches!(old.next(5).await, Some(Seen::Refused(_))));
    assert_eq!(authz("wfm-internal-emqx-authz", own.clone()).await.json::<Value>().await.unwrap(), json!({"result": "deny"}));
    stop_tx.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), agent).await;

    // Broker outage: control answers 503 with a failed log; the rest keeps working.
    let bound_b = bind(&s, &token, other, root.path()).await;
    b.halt();
    wait_until(45, || async { !s.state.mqtt.is_connected() }).await;
    let r = s.post(&format!("{}/endpoint/control", np(other)), Some(&token), json!({"action": "start"})).await;
    let e = r.err(503, "MQTT_CONTROL_UNAVAILABLE").clone();
    assert!(e["detail"]["detail"].is_string());
    let logs = s.get(&format!("{}/endpoint/logs", np(other)), Some(&token)).await.ok().clone();
    assert_eq!(logs[0]["status"], "failed");
    assert_eq!(status(&s, &token, other).await["mqtt_service"]["status"], "error");
    // Binding during the outage succeeds (database first).
    let bound_a2 = bind(&s, &token, a, root.path()).await;
    assert_ne!(bound_a2.file.mqtt.password, bound.file.mqtt.password);
    // Recovery: reconnect + reconcile creates the user bound during the outage.
    b.resume();
    wait_until(60, || async { s.state.mqtt.is_connected() }).await;
    let mut fresh = RawClient::connect(b.port, &bound_a2.file.mqtt.client_id, &bound_a2.file.mqtt.username, &bound_a2.file.mqtt.password);
    assert_eq!(fresh.next(5).await, Some(Seen::Connected), "reconcile did not restore the user bound during the outage");
    assert!(!fresh.subscribe(&topic(CFG, other, Kind::Control)).await, "broker granted a foreign subscription");
    assert!(fresh.subscribe(&topic(CFG, a, Kind::Control)).await);
    drop(fresh);

    // Commands nobody answers end as `timeout`.
    s.state.mqtt.set_command_timeout(Duration::from_millis(800));
    let rid = control(&s, &token, other, "wg_show").await;
    let l = wait_log(&s, &token, other, &rid, "timeout").await;
    assert!(l["summary"].as_str().unwrap().contains("No answer"));
    let _ = bound_b;
    s.stop().await;
}

async fn mqtt_disabled(backend: Backend) {
    let s = TestServer::start_with(backend, &[("WFM_ENABLE_MQTT_SERVICES", "false")]).await;
    let token = s.setup_admin().await;
    seed(&s, &[("node_cccccccccccc", "c", "x")]).await;
    let n = np("node_cccccccccccc");
    s.post(&format!("{n}/bind-command"), Some(&token), json!({})).await.err(409, "MQTT_DISABLED");
    s.post(&format!("{n}/reset-client"), Some(&token), json!({})).await.err(409, "MQTT_DISABLED");
    s.post(&format!("{n}/endpoint/control"), Some(&token), json!({"action": "start"})).await.err(409, "MQTT_DISABLED");
    s.get(&format!("{n}/endpoint/logs"), Some(&token)).await.err(409, "MQTT_DISABLED");
    s.post(&format!("/api/v1/configs/{CFG}/endpoint/probe-batch"), Some(&token), json!({})).await.err(409, "MQTT_DISABLED");
    s.get("/api/v1/settings/mqtt", Some(&token)).await.err(409, "MQTT_DISABLED");
    s.post("/api/v1/settings/mqtt/test", Some(&token), json!({"host": "x"})).await.err(409, "MQTT_DISABLED");
    s.post("/api/client/v1/bind", None, json!({"token": "t"})).await.err(409, "MQTT_DISABLED");
    s.stop().await;
}

async fn emqx_mode(backend: Backend) {
    let b = Mosquitto::start();
    let fake = wfm::broker::emqx_fake::EmqxFake::start(ADMIN, ADMIN_PW).await.unwrap();
    fake.insert_user("node_stale0000000", "x", false);
    fake.connect_session("wfm-node_stale0000000");
    let url = b.url();
    let base = fake.base_url();
    let s = TestServer::start_with(
        backend,
        &[
            ("WFM_MQTT_BROKER", "emqx"),
            ("WFM_EMQX_API_BASE_URL", &base),
            ("WFM_MQTT_URL", &url),
            ("WFM_EMQX_USERNAME", ADMIN),
            ("WFM_EMQX_PASSWORD", ADMIN_PW),
            ("WFM_EMQX_AUTHZ_SHARED_KEY", "k-123"),
        ],
    )
    .await;
    s.state.mqtt.set_retry_delay(Duration::from_millis(300));
    let token = s.setup_admin().await;
    wait_until(60, || async { s.state.mqtt.is_connected() }).await;
    // Start-up reconcile: server superuser created, stale node user deleted and kicked.
    let users = fake.users();
    assert!(users[ADMIN].is_superuser);
    assert!(!users.contains_key("node_stale0000000"));
    assert!(fake.sessions().is_empty());

    let a = "node_dddddddddddd";
    seed(&s, &[(a, "d", "[Interface]\n")]).await;
    let root = tempfile::tempdir().unwrap();
    let bound = bind(&s, &token, a, root.path()).await;
    assert_eq!(fake.users()[a].password, bound.file.mqtt.password);
    assert!(!fake.users()[a].is_superuser);
    // Re-bind: POST answers 409, the server updates with PUT.
    fake.clear_calls();
    let bound2 = bind(&s, &token, a, root.path()).await;
    let calls: Vec<(String, u16)> = fake.calls().iter().map(|c| (c.method.clone(), c.status)).collect();
    assert_eq!(calls, vec![("POST".to_string(), 409), ("PUT".to_string(), 200)]);
    assert_eq!(fake.users()[a].password, bound2.file.mqtt.password);

    let authz = |key: &'static str, body: Value| {
        let c = s.client.clone();
        let url = s.url("/api/internal/emqx/authz");
        async move { c.post(url).header("x-wfm-internal-key", key).json(&body).send().await.unwrap() }
    };
    let own = json!({"username": a, "clientid": format!("wfm-{a}"), "topic": topic(CFG, a, Kind::Heartbeat), "action": "publish"});
    assert_eq!(authz("k-123", own.clone()).await.json::<Value>().await.unwrap(), json!({"result": "allow"}));
    let r = authz("wfm-internal-emqx-authz", own.clone()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"detail": "Unauthorized"}));
    let bad = json!({"username": a, "clientid": format!("wfm-{a}"), "topic": "t", "action": "all"});
    assert_eq!(authz("k-123", bad).await.status(), 422);
    let superuser = json!({"username": ADMIN, "clientid": "x", "topic": "#", "action": "subscribe"});
    assert_eq!(authz("k-123", superuser).await.json::<Value>().await.unwrap(), json!({"result": "allow"}));

    // reset-client: user deleted and session kicked through the API; authz denies at once.
    fake.connect_session(&format!("wfm-{a}"));
    fake.clear_calls();
    s.post(&format!("{}/reset-client", np(a)), Some(&token), json!({})).await.ok();
    let calls: Vec<(String, String)> = fake.calls().iter().map(|c| (c.method.clone(), c.path.clone())).collect();
    assert!(calls.contains(&("DELETE".into(), format!("{}/{a}", wfm::broker::emqx::USERS_PATH))), "{calls:?}");
    assert!(calls.contains(&("DELETE".into(), format!("/api/v5/clients/wfm-{a}"))), "{calls:?}");
    assert!(!fake.users().contains_key(a));
    assert_eq!(authz("k-123", own.clone()).await.json::<Value>().await.unwrap(), json!({"result": "deny"}));

    // EMQX down: bind still succeeds; on-demand reconcile catches up once it is back.
    fake.set_down(true);
    let bound3 = bind(&s, &token, a, root.path()).await;
    assert!(!fake.users().contains_key(a));
    assert_eq!(authz("k-123", own.clone()).await.json::<Value>().await.unwrap(), json!({"result": "allow"}));
    fake.set_down(false);
    let r = s.post("/api/v1/settings/mqtt/reconcile", Some(&token), json!({})).await;
    assert_eq!(r.ok()["report"]["node_users_synced"], 1);
    assert_eq!(fake.users()[a].password, bound3.file.mqtt.password);
    s.stop().await;
}

async fn sync_flow(backend: Backend) {
    let s = TestServer::start_with(backend, &[("WFM_EMQX_API_BASE_URL", "http://127.0.0.1:9"), ("WFM_MQTT_URL", "mqtt://127.0.0.1:9")]).await;
    let token = s.setup_admin().await;
    let cfg = s.post("/api/v1/configs", Some(&token), json!({"name": "syncmesh", "auto_sync": false})).await.ok()["id"].as_str().unwrap().to_string();
    let n1 = s.post(&format!("/api/v1/configs/{cfg}/nodes"), Some(&token), json!({"name": "n1", "node_type": "dynamic"})).await.ok()["id"].as_str().unwrap().to_string();
    let base = format!("/api/v1/configs/{cfg}/nodes/{n1}");
    let st = s.get(&format!("{base}/sync-status"), Some(&token)).await.ok().clone();
    assert_eq!(st["node_id"], n1.as_str());
    assert!(!st["desired_sha256"].as_str().unwrap().is_empty(), "{st}");
    assert_eq!(st["status"], "pending");
    let r = s.post(&format!("{base}/sync"), Some(&token), json!({})).await.ok().clone();
    assert_eq!(r["message"], "Node config synced");
    assert_eq!(r["sync_status"]["status"], "in_sync");
    let v1 = r["staged_version"].as_i64().unwrap();
    let a = s.get(&format!("{base}/applied-conf"), Some(&token)).await.ok().clone();
    assert_eq!(a["exists"], true);
    assert_eq!(a["source"], "server_applied");
    assert!(a["content"].as_str().unwrap().contains("[Interface]"));
    let put = s.put(&format!("{base}/applied-conf"), Some(&token), json!({"content": "[Interface]\n# hand edit\n"})).await.ok().clone();
    assert_eq!(put["status"], "staged_outdated");
    assert!(put["staged_version"].as_i64().unwrap() > v1);
    let all = s.post(&format!("/api/v1/configs/{cfg}/sync-all"), Some(&token), json!({})).await.ok().clone();
    assert_eq!(all["synced_count"], 1);
    let list = s.get(&format!("/api/v1/configs/{cfg}/sync-status"), Some(&token)).await.ok().clone();
    assert_eq!(list[0]["status"], "in_sync");
    // Pushing with the broker down: 503 and a failed log row; configs keep working.
    let r = s.post(&format!("{base}/endpoint/control"), Some(&token), json!({"action": "push_config"})).await;
    r.err(503, "MQTT_CONTROL_UNAVAILABLE");
    s.get(&format!("/api/v1/configs/{cfg}"), Some(&token)).await.ok();
    s.stop().await;
}

both_backends!(e2e_channel, mqtt_disabled, emqx_mode, sync_flow);
