//! End-to-end over TLS: a real Mosquitto with a TLS listener (throwaway CA, certificate for
//! localhost / 127.0.0.1), the real server and the reference agent.
//!
//! - The server's own connection (`mqtts://`) verifies the broker against `WFM_MQTT_CA_FILE`;
//!   a foreign CA keeps it out, `WFM_MQTT_TLS_VERIFY=false` restores upstream's unverified mode.
//! - Bind hands out `tls: true` and the CA; the agent connects over TLS trusting only that CA,
//!   and push_config round-trips; a profile with a foreign CA cannot connect.
//! - `/settings/mqtt/test` performs a real (unverified) TLS handshake.

mod mqtt_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mqtt_support::{ADMIN, ADMIN_PW, Mosquitto, eventually};
use serde_json::json;
use wfm_agent::runner::Runner;
use wfm_agent::session::{AgentEvent, AgentOptions, run_profile};
use wfm_e2e::{Backend, TestServer, both_backends};

const CFG: &str = "cfg_tls000000001";
const NODE: &str = "node_tls00000001";

async fn seed(s: &TestServer, text: &str) {
    mqtt_support::seed(s, CFG, "wireguard", None, &[(NODE, "edge", "dynamic", text)]).await;
}

/// A CA nobody used to sign the broker's certificate.
fn foreign_ca(dir: &Path) -> PathBuf {
    let (key, crt) = (dir.join("other-ca.key"), dir.join("other-ca.crt"));
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=Foreign CA"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl");
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    crt
}

async fn server(backend: Backend, b: &Mosquitto, ca: &Path, extra: &[(&str, &str)]) -> TestServer {
    let url = format!("mqtts://127.0.0.1:{}", b.tls_port.unwrap());
    let tls_port = b.tls_port.unwrap().to_string();
    let ca = ca.display().to_string();
    let mut env = vec![
        ("WFM_MQTT_BROKER", "mosquitto"),
        ("WFM_MQTT_URL", url.as_str()),
        ("WFM_EMQX_USERNAME", ADMIN),
        ("WFM_EMQX_PASSWORD", ADMIN_PW),
        ("WFM_MQTT_CA_FILE", ca.as_str()),
        ("WFM_MQTT_TLS_ENABLED", "true"),
        ("WFM_MQTT_PUBLIC_TLS_PORT", tls_port.as_str()),
    ];
    env.extend_from_slice(extra);
    let s = TestServer::start_with(backend, &env).await;
    s.state.mqtt.set_retry_delay(Duration::from_millis(300));
    s
}

fn np() -> String {
    format!("/api/v1/configs/{CFG}/nodes/{NODE}")
}

async fn wait_acked(s: &TestServer, token: &str, rid: &str) {
    let acked = eventually(15, || async {
        let logs = s.get(&format!("{}/endpoint/logs", np()), Some(token)).await;
        logs.ok().as_array().is_some_and(|a| a.iter().any(|l| l["request_id"] == rid && l["status"] == "acked"))
    })
    .await;
    assert!(acked, "push {rid} was never acked");
}

async fn tls_channel(backend: Backend) {
    let b = Mosquitto::start_tls();
    let ca = b.ca_file.clone().unwrap();
    let s = server(backend, &b, &ca, &[]).await;
    let token = s.setup_admin().await;
    // The server's own mqtts:// connection, verified against WFM_MQTT_CA_FILE.
    assert!(eventually(20, || async { s.state.mqtt.is_connected() }).await, "server did not connect over TLS: {:?}", s.state.mqtt.status());
    let text = "[Interface]\nPrivateKey = tls\n";
    seed(&s, text).await;

    // Effective client settings default to TLS on the TLS port.
    let eff = s.get("/api/v1/settings/mqtt", Some(&token)).await.ok().clone();
    assert_eq!(eff["tls"], true);
    assert_eq!(eff["port"], b.tls_port.unwrap());
    s.put("/api/v1/settings/mqtt", Some(&token), json!({"host": "127.0.0.1", "port": b.tls_port.unwrap(), "tls": true})).await.ok();

    // The TLS probe: a real handshake on the TLS listener, a clear failure on the plain one.
    let probe = |port: u16, tls: bool| {
        let body = json!({"host": "127.0.0.1", "port": port, "tls": tls});
        let (s, token) = (&s, token.clone());
        async move { s.post("/api/v1/settings/mqtt/test", Some(&token), body).await.ok().clone() }
    };
    let r = probe(b.tls_port.unwrap(), true).await;
    assert_eq!((r["success"].clone(), r["message"].clone()), (json!(true), json!("TLS handshake succeeded.")), "{r}");
    let r = probe(b.port, true).await;
    assert_eq!(r["success"], false, "{r}");
    assert!(r["message"].as_str().unwrap().starts_with("TLS handshake failed"), "{r}");
    let r = probe(b.tls_port.unwrap(), false).await;
    assert_eq!(r["message"], "TCP connection succeeded.");

    // Bind: TLS on, the CA handed out.
    let cmd = s.post(&format!("{}/bind-command", np()), Some(&token), json!({})).await;
    let t = cmd.ok()["token"].as_str().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let bound = wfm_agent::profile::bind(&s.base, &t, root.path()).await.expect("bind");
    assert!(bound.file.mqtt.tls);
    assert_eq!(bound.file.mqtt.port, b.tls_port.unwrap());
    assert_eq!(bound.file.mqtt.ca_cert.as_deref(), Some(std::fs::read_to_string(&ca).unwrap().trim()));

    // A profile trusting another CA cannot connect (only the bound CA is trusted).
    let wrong_dir = tempfile::tempdir().unwrap();
    let mut wrong = bound.file.clone();
    wrong.mqtt.ca_cert = Some(std::fs::read_to_string(foreign_ca(wrong_dir.path())).unwrap());
    let opts = AgentOptions { runner: Runner::dry_run(None), reconnect_delay: Duration::from_millis(300), ..Default::default() };
    let (_never, stop_rx) = tokio::sync::watch::channel(false);
    let end = tokio::time::timeout(Duration::from_secs(15), wfm_agent::session::run_session(&bound.dir, wrong, opts.clone(), None, stop_rx.clone())).await.expect("session ended");
    assert!(matches!(end, AgentEvent::Refused(_)), "connected with a foreign CA: {end:?}");
    // A TLS profile without a CA is refused with a request to re-bind.
    let mut no_ca = bound.file.clone();
    no_ca.mqtt.ca_cert = None;
    let end = wfm_agent::session::run_session(&bound.dir, no_ca, opts.clone(), None, stop_rx.clone()).await;
    assert!(matches!(&end, AgentEvent::Refused(m) if m.contains("re-bind")), "{end:?}");

    // The real profile connects over TLS; push_config round-trips.
    let (etx, _erx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(run_profile(bound.dir.clone(), opts, Some(etx), stop_rx));
    let online = eventually(15, || async {
        let st = s.get(&format!("{}/endpoint/status", np()), Some(&token)).await;
        st.ok()["client_state"]["client_presence_state"] == "online"
    })
    .await;
    assert!(online, "agent never came online over TLS");
    let r = s.post(&format!("{}/endpoint/control", np()), Some(&token), json!({"action": "push_config"})).await;
    let rid = r.ok()["request_id"].as_str().unwrap().to_string();
    wait_acked(&s, &token, &rid).await;
    let conf = bound.dir.join(format!("{}.conf", bound.file.profile.interface_name));
    assert_eq!(std::fs::read_to_string(conf).unwrap(), text);
    stop_tx.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), agent).await;
    s.stop().await;
}

async fn server_verifies_the_broker(backend: Backend) {
    let b = Mosquitto::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let other = foreign_ca(dir.path());
    // Pinned to a CA that did not sign the broker's certificate: never connects.
    let s = server(backend, &b, &other, &[]).await;
    // The reconcile before each connect fails first (the dynamic-security client cannot
    // connect either), which marks the status `error`.
    assert!(eventually(20, || async { s.state.mqtt.status().status == "error" }).await, "{:?}", s.state.mqtt.status());
    let st = s.state.mqtt.status();
    assert!(!st.connected && !s.state.mqtt.is_connected(), "server trusted a broker its CA did not sign");
    assert!(!st.last_error.is_empty());
    s.stop().await;
    // Upstream's unverified mode, on request.
    let s = server(backend, &b, &other, &[("WFM_MQTT_TLS_VERIFY", "false")]).await;
    assert!(eventually(20, || async { s.state.mqtt.is_connected() }).await, "{:?}", s.state.mqtt.status());
    s.stop().await;
}

both_backends!(tls_channel, server_verifies_the_broker);
