//! Shared helpers of the MQTT end-to-end tests: a throwaway Mosquitto with dynamic security
//! (via `scripts/mosquitto-test-broker.sh`) and a raw MQTT v5 test client.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use tokio::sync::mpsc;

/// Server broker identity used by every test broker.
pub const ADMIN: &str = "admin";
/// Its password.
pub const ADMIN_PW: &str = "public";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/mosquitto-test-broker.sh")
}

/// A running test broker; stopped and removed on drop.
pub struct Mosquitto {
    pub dir: PathBuf,
    pub port: u16,
    /// The TLS listener (brokers from [`Mosquitto::start_tls`]).
    pub tls_port: Option<u16>,
    /// The CA that signed the TLS listener's certificate (localhost, 127.0.0.1).
    pub ca_file: Option<PathBuf>,
}

impl Mosquitto {
    /// A broker with a plain listener.
    pub fn start() -> Mosquitto {
        Self::launch(false)
    }

    /// A broker with a plain and a TLS listener.
    pub fn start_tls() -> Mosquitto {
        Self::launch(true)
    }

    fn launch(tls: bool) -> Mosquitto {
        let dir = std::env::temp_dir().join(format!("wfm-mosq-{}", uuid::Uuid::new_v4().simple()));
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&dir)
            .env("WFM_EMQX_USERNAME", ADMIN)
            .env("WFM_EMQX_PASSWORD", ADMIN_PW)
            .env("WFM_TEST_MOSQUITTO_TLS", if tls { "1" } else { "0" })
            .output()
            .expect("run mosquitto-test-broker.sh");
        assert!(out.status.success(), "broker start failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string());
        let port = value("WFM_TEST_MOSQUITTO_PORT=").and_then(|p| p.parse().ok()).expect("port in script output");
        let tls_port = value("WFM_TEST_MOSQUITTO_TLS_PORT=").and_then(|p| p.parse().ok());
        let ca_file = value("WFM_TEST_MOSQUITTO_CA_FILE=").map(PathBuf::from);
        assert_eq!(tls, tls_port.is_some() && ca_file.is_some(), "TLS listener in script output: {text}");
        Mosquitto { dir, port, tls_port, ca_file }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    fn run(&self, cmd: &str) {
        let out = Command::new("bash")
            .arg(script())
            .arg(cmd)
            .arg(&self.dir)
            .env("WFM_EMQX_USERNAME", ADMIN)
            .env("WFM_EMQX_PASSWORD", ADMIN_PW)
            .output()
            .expect("run mosquitto-test-broker.sh");
        assert!(out.status.success(), "broker {cmd} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Simulates an outage: the process goes, its state stays.
    pub fn halt(&self) {
        self.run("halt");
    }

    /// Ends the outage on the same port with the same state.
    pub fn resume(&self) {
        self.run("resume");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.dir).output();
    }
}

/// What a raw client saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Connected,
    Refused(String),
    SubAck(Vec<bool>),
    Message(String, Vec<u8>),
    Disconnected(String),
}

/// A raw MQTT v5 client driven by a background task that reports what it sees.
pub struct RawClient {
    pub client: AsyncClient,
    pub rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawClient {
    /// Connects once (no reconnect: the first error ends the task).
    pub fn connect(port: u16, client_id: &str, user: &str, pass: &str) -> RawClient {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_credentials(user, pass);
        o.set_keep_alive(Duration::from_secs(30));
        let (client, mut el) = AsyncClient::new(o, 256);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(a))) => {
                        let _ = tx.send(if a.code == ConnectReturnCode::Success { Seen::Connected } else { Seen::Refused(format!("{:?}", a.code)) });
                    }
                    Ok(Event::Incoming(Packet::SubAck(a))) => {
                        let _ = tx.send(Seen::SubAck(a.return_codes.iter().map(|c| matches!(c, SubscribeReasonCode::Success(_))).collect()));
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Seen::Message(String::from_utf8_lossy(&p.topic).into_owned(), p.payload.to_vec()));
                    }
                    Ok(Event::Incoming(Packet::Disconnect(d))) => {
                        let _ = tx.send(Seen::Disconnected(format!("{:?}", d.reason_code)));
                        return;
                    }
                    Ok(_) => {}
                    Err(ConnectionError::ConnectionRefused(c)) => {
                        let _ = tx.send(Seen::Refused(format!("{c:?}")));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Seen::Disconnected(e.to_string()));
                        return;
                    }
                }
            }
        });
        RawClient { client, rx, task }
    }

    /// Next event within `secs`.
    pub async fn next(&mut self, secs: u64) -> Option<Seen> {
        tokio::time::timeout(Duration::from_secs(secs), self.rx.recv()).await.ok().flatten()
    }

    /// Waits for an event matching `f`, skipping others.
    pub async fn wait_for(&mut self, secs: u64, f: impl Fn(&Seen) -> bool) -> Option<Seen> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(s)) if f(&s) => return Some(s),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Subscribes to one filter and returns whether the broker granted it.
    pub async fn subscribe(&mut self, filter: &str) -> bool {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.expect("queue subscribe");
        match self.wait_for(5, |s| matches!(s, Seen::SubAck(_))).await {
            Some(Seen::SubAck(v)) => v.first().copied().unwrap_or(false),
            other => panic!("no SUBACK: {other:?}"),
        }
    }

    pub async fn publish(&self, topic: &str, body: impl Into<Vec<u8>>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, body.into()).await.expect("queue publish");
    }
}

/// One node for [`seed`]: id, name, node type, and the text stored as its desired and staged
/// config (version 1).
pub type SeedNode<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Inserts a config and its nodes straight into the store, in one transaction (the model
/// services have their own tests), then reloads the authz table. Nodes are created a
/// microsecond apart in the given order, which keeps dispatch order stable.
pub async fn seed(s: &wfm_e2e::TestServer, cfg: &str, protocol: &str, awg_version: Option<&str>, nodes: &[SeedNode<'_>]) {
    let mut tx = s.state.db.begin().await.unwrap();
    let now = wfm::util::now_iso();
    wfm::exec!(
        &mut tx,
        "INSERT INTO configs (id, name, tunnel_protocol, awg_version, created_at, updated_at) VALUES ($1, 'mesh', $2, $3, $4, $4)",
        cfg,
        protocol,
        awg_version,
        &now
    )
    .unwrap();
    for (i, (id, name, kind, staged)) in nodes.iter().enumerate() {
        let at = format!("2026-01-01T00:00:00.{i:06}+00:00");
        wfm::exec!(
            &mut tx,
            "INSERT INTO nodes (id, config_id, name, node_type, public_key, private_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'pub', 'priv', $5, $5)",
            *id,
            cfg,
            *name,
            *kind,
            &at
        )
        .unwrap();
        wfm::exec!(
            &mut tx,
            "INSERT INTO node_config_state (id, config_id, node_id, desired_text, desired_sha256, desired_version, \
             staged_text, staged_sha256, staged_version) VALUES ($1, $2, $3, $4, $5, 1, $4, $5, 1)",
            format!("ncs_{id}"),
            cfg,
            *id,
            *staged,
            wfm::util::sha256_hex(staged)
        )
        .unwrap();
    }
    tx.commit().await.unwrap();
    wfm::service::binding::reload_authz(&s.state).await.unwrap();
}

/// A server in Mosquitto mode against `b`'s plain listener, connected, with an admin token and
/// the client settings pointing agents at that listener.
pub async fn start_server(backend: wfm_e2e::Backend, b: &Mosquitto) -> (wfm_e2e::TestServer, String) {
    let port = b.port.to_string();
    let url = b.url();
    let s = wfm_e2e::TestServer::start_with(
        backend,
        &[
            ("WFM_MQTT_BROKER", "mosquitto"),
            ("WFM_MQTT_URL", &url),
            ("WFM_EMQX_USERNAME", ADMIN),
            ("WFM_EMQX_PASSWORD", ADMIN_PW),
            ("WFM_MQTT_PUBLIC_PORT", &port),
            ("WFM_MQTT_TLS_ENABLED", "false"),
        ],
    )
    .await;
    s.state.mqtt.set_retry_delay(Duration::from_millis(300));
    let token = s.setup_admin().await;
    wait_until(20, || async { s.state.mqtt.is_connected() }).await;
    s.put("/api/v1/settings/mqtt", Some(&token), serde_json::json!({"host": "127.0.0.1", "port": b.port, "tls": false})).await.ok();
    (s, token)
}

/// True once `f` holds, polled every 50 ms; false after `secs`.
pub async fn eventually<F, Fut>(secs: u64, f: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// [`eventually`], failing the test when the condition is not met.
pub async fn wait_until<F, Fut>(secs: u64, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    assert!(eventually(secs, f).await, "condition not met within {secs}s");
}
