//! The MQTT session of one profile (spec 03 §3, §5, §11).
//!
//! One session = one MQTT v5 connection with fresh `boot_id`/`session_id`. After CONNACK it
//! subscribes to the four command topics (QoS 1), publishes event `online` and a heartbeat,
//! then serves commands one at a time (interface changes must not interleave) while the
//! connection loop keeps polling. Any failure ends the session; [`run_profile`] starts a new
//! one after the reconnect delay until shut down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Filter, LastWill, Packet, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use wfm_mqtt_proto::envelope::agent_time;
use wfm_mqtt_proto::message::{self as msg, Ack, AckStatus, ConfigPush, Control, Detect, Heartbeat, Info};
use wfm_mqtt_proto::topic::{Kind, TopicRef, node_subscribe_topics, topic};
use wfm_mqtt_proto::tunnel::{self, TunnelProtocol};
use wfm_mqtt_proto::{Envelope, PUBLISH_TIMEOUT};

use crate::profile::{ProfileFile, conf_path, load_profile, save_profile, write_confs};
use crate::runner::Runner;

/// Tunables (defaults from the spec; tests shorten them).
#[derive(Clone)]
pub struct AgentOptions {
    /// Heartbeat period (spec: 30 min).
    pub heartbeat: Duration,
    /// Pause between sessions (spec: 5 s).
    pub reconnect_delay: Duration,
    /// MQTT keep-alive (spec: 60 s).
    pub keep_alive: Duration,
    /// Interface runner.
    pub runner: Runner,
    /// Reported platform.
    pub platform: String,
    /// Reported version.
    pub version: String,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            heartbeat: wfm_mqtt_proto::HEARTBEAT_INTERVAL,
            reconnect_delay: wfm_mqtt_proto::RECONNECT_DELAY,
            keep_alive: wfm_mqtt_proto::KEEP_ALIVE,
            runner: Runner::dry_run(None),
            platform: crate::platform().to_string(),
            version: crate::VERSION.to_string(),
        }
    }
}

/// What a session reports to whoever watches it (the CLI logs it, tests assert on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// CONNACK success; subscriptions sent.
    Connected {
        /// New session id.
        session_id: String,
    },
    /// The broker refused the connection (e.g. bad credentials).
    Refused(String),
    /// The connection failed or dropped.
    Disconnected(String),
    /// SUBACK: `(topic, granted)` per requested topic.
    Subscribed(Vec<(String, bool)>),
    /// A command was handled and answered.
    Handled {
        /// Kind of the command.
        kind: String,
        /// Its request id.
        request_id: String,
        /// ACK status sent.
        status: String,
        /// ACK message.
        message: String,
    },
}

/// Identity of a session, stamped on every envelope.
#[derive(Clone)]
struct Ids {
    config_id: String,
    node_id: String,
    boot_id: String,
    session_id: String,
}

impl Ids {
    fn envelope<P: Serialize>(&self, kind: Kind, request_id: &str, payload: P) -> Vec<u8> {
        let e = Envelope {
            kind: kind.as_str().to_string(),
            request_id: request_id.to_string(),
            config_id: self.config_id.clone(),
            node_id: self.node_id.clone(),
            boot_id: self.boot_id.clone(),
            session_id: self.session_id.clone(),
            sent_at: agent_time(chrono::Utc::now()),
            payload,
        };
        e.to_bytes().unwrap_or_default()
    }

    fn topic(&self, kind: Kind) -> String {
        topic(&self.config_id, &self.node_id, kind)
    }
}

struct Ctx {
    ids: Ids,
    dir: PathBuf,
    file: ProfileFile,
    opts: AgentOptions,
}

fn nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

impl Ctx {
    fn envelope<P: Serialize>(&self, kind: Kind, request_id: &str, payload: P) -> Vec<u8> {
        self.ids.envelope(kind, request_id, payload)
    }

    fn topic(&self, kind: Kind) -> String {
        self.ids.topic(kind)
    }

    fn iface(&self) -> String {
        self.file.profile.interface_name.clone()
    }

    async fn wg_online(&self) -> bool {
        let iface = self.iface();
        self.opts.runner.is_running(TunnelProtocol::WireGuard, &iface).await
            || self.opts.runner.is_running(TunnelProtocol::AmneziaWg2, &iface).await
    }
}

async fn publish(client: &AsyncClient, topic: String, body: Vec<u8>) -> Result<(), String> {
    match tokio::time::timeout(PUBLISH_TIMEOUT, client.publish(topic, QoS::AtLeastOnce, false, body)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("publish failed: {e}")),
        Err(_) => Err("publish timed out".into()),
    }
}

/// The connection's transport (spec 03 §3): plain TCP, or TLS ≥ 1.2 that trusts only the CA
/// handed out at bind, with the server name = the bound host. A TLS profile without a usable
/// CA is refused with a request to re-bind.
pub fn transport(mqtt: &crate::profile::MqttInfo) -> Result<rumqttc::Transport, String> {
    if !mqtt.tls {
        return Ok(rumqttc::Transport::Tcp);
    }
    let pem = mqtt.ca_cert.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let Some(pem) = pem else {
        return Err("the profile asks for TLS but holds no CA certificate; re-bind the node".into());
    };
    let ca = native_tls::Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("the profile's CA certificate is invalid ({e}); re-bind the node"))?;
    let connector = native_tls::TlsConnector::builder()
        .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
        .disable_built_in_roots(true)
        .add_root_certificate(ca)
        .build()
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    Ok(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::NativeConnector(connector)))
}

/// Runs sessions for the profile in `dir` until `shutdown` becomes true.
pub async fn run_profile(dir: PathBuf, opts: AgentOptions, events: Option<mpsc::UnboundedSender<AgentEvent>>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let stop_now = *shutdown.borrow();
        if stop_now {
            return;
        }
        let file = match load_profile(&dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot read profile");
                return;
            }
        };
        let end = run_session(&dir, file, opts.clone(), events.clone(), shutdown.clone()).await;
        if let Some(tx) = &events {
            let _ = tx.send(end.clone());
        }
        tracing::info!(dir = %dir.display(), reason = ?end, "session ended");
        tokio::select! {
            _ = tokio::time::sleep(opts.reconnect_delay) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// One session; returns why it ended.
pub async fn run_session(
    dir: &Path,
    file: ProfileFile,
    opts: AgentOptions,
    events: Option<mpsc::UnboundedSender<AgentEvent>>,
    mut shutdown: watch::Receiver<bool>,
) -> AgentEvent {
    let transport = match transport(&file.mqtt) {
        Ok(t) => t,
        Err(e) => return AgentEvent::Refused(e),
    };
    let n = nanos();
    let ids = Ids {
        config_id: file.profile.config_id.clone(),
        node_id: file.profile.node_id.clone(),
        boot_id: format!("boot-{n}"),
        session_id: format!("session-{n}"),
    };
    let mut mo = MqttOptions::new(file.mqtt.client_id.clone(), file.mqtt.host.clone(), file.mqtt.port);
    mo.set_transport(transport);
    mo.set_credentials(file.mqtt.username.clone(), file.mqtt.password.clone());
    mo.set_keep_alive(opts.keep_alive);
    mo.set_clean_start(false);
    mo.set_connection_timeout(10);
    let will = ids.envelope(Kind::Event, "", msg::Event::new(msg::LEVEL_INFO, msg::EVENT_OFFLINE, "client connection lost"));
    mo.set_last_will(LastWill::new(ids.topic(Kind::Event), will, QoS::AtLeastOnce, false, None));
    let (client, mut eventloop) = AsyncClient::new(mo, 64);
    let subs = node_subscribe_topics(&ids.config_id, &ids.node_id);
    let heartbeat_every = opts.heartbeat;
    let ctx = Arc::new(tokio::sync::Mutex::new(Ctx { ids: ids.clone(), dir: dir.to_path_buf(), file, opts }));
    let report = |e: AgentEvent| {
        if let Some(tx) = &events {
            let _ = tx.send(e);
        }
    };
    let mut heartbeat = tokio::time::interval(heartbeat_every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connected = false;

    // Commands are served one at a time on a worker task (interface changes must not
    // interleave) while this task keeps polling the connection.
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<(String, Vec<u8>)>(64);
    let (done_tx, mut done_rx) = mpsc::channel::<AgentEvent>(4);
    let worker = {
        let client = client.clone();
        let events = events.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            while let Some((t, payload)) = cmd_rx.recv().await {
                let mut c = ctx.lock().await;
                match handle(&mut c, &client, &t, &payload).await {
                    Ok(Some(h)) => {
                        if let Some(tx) = &events {
                            let _ = tx.send(h);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = done_tx.send(AgentEvent::Disconnected(e)).await;
                        return;
                    }
                }
            }
        })
    };

    let end = loop {
        tokio::select! {
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if ack.code != ConnectReturnCode::Success {
                        break AgentEvent::Refused(format!("{:?}", ack.code));
                    }
                    connected = true;
                    report(AgentEvent::Connected { session_id: ids.session_id.clone() });
                    let filters = subs.iter().map(|s| Filter::new(s.clone(), QoS::AtLeastOnce));
                    if let Err(e) = client.subscribe_many(filters).await {
                        break AgentEvent::Disconnected(format!("subscribe failed: {e}"));
                    }
                    let online = ids.envelope(Kind::Event, "", msg::Event::new(msg::LEVEL_INFO, msg::EVENT_ONLINE, "client connected"));
                    if let Err(e) = publish(&client, ids.topic(Kind::Event), online).await {
                        break AgentEvent::Disconnected(e);
                    }
                    let wg = ctx.lock().await.wg_online().await;
                    let hb = ids.envelope(Kind::Heartbeat, "", Heartbeat { client_online: true, wg_online: wg });
                    if let Err(e) = publish(&client, ids.topic(Kind::Heartbeat), hb).await {
                        break AgentEvent::Disconnected(e);
                    }
                    heartbeat.reset();
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let granted = subs.iter().cloned().zip(ack.return_codes.iter().map(|c| matches!(c, SubscribeReasonCode::Success(_)))).collect();
                    report(AgentEvent::Subscribed(granted));
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let t = String::from_utf8_lossy(&p.topic).into_owned();
                    if cmd_tx.try_send((t, p.payload.to_vec())).is_err() {
                        tracing::warn!("command queue full, dropping a command");
                    }
                }
                Ok(Event::Incoming(Packet::Disconnect(d))) => {
                    break AgentEvent::Disconnected(format!("server disconnect: {:?}", d.reason_code));
                }
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => break AgentEvent::Refused(format!("{code:?}")),
                Err(e) => break if connected { AgentEvent::Disconnected(e.to_string()) } else { AgentEvent::Refused(e.to_string()) },
            },
            _ = heartbeat.tick(), if connected => {
                let wg = ctx.lock().await.wg_online().await;
                let hb = ids.envelope(Kind::Heartbeat, "", Heartbeat { client_online: true, wg_online: wg });
                if let Err(e) = publish(&client, ids.topic(Kind::Heartbeat), hb).await {
                    break AgentEvent::Disconnected(e);
                }
            }
            Some(e) = done_rx.recv() => break e,
            _ = stopped(&mut shutdown) => {
                if connected {
                    let bye = ids.envelope(Kind::Event, "", msg::Event::new(msg::LEVEL_INFO, msg::EVENT_OFFLINE, "client stopped"));
                    let _ = publish(&client, ids.topic(Kind::Event), bye).await;
                    let _ = client.disconnect().await;
                    // Flush the offline event and the DISCONNECT.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        loop {
                            match eventloop.poll().await {
                                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                                _ => {}
                            }
                        }
                    }).await;
                }
                break AgentEvent::Disconnected("shutdown".into());
            }
        }
    };
    worker.abort();
    end
}

/// Resolves once `rx` holds true (never, if the sender is gone while false).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        let now = *rx.borrow_and_update();
        if now {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

async fn ack(ctx: &Ctx, client: &AsyncClient, kind: Kind, request_id: &str, a: &Ack) -> Result<AgentEvent, String> {
    let Some(ack_kind) = kind.ack() else { return Err("not a command".into()) };
    publish(client, ctx.topic(ack_kind), ctx.envelope(ack_kind, request_id, a)).await?;
    Ok(AgentEvent::Handled {
        kind: kind.as_str().into(),
        request_id: request_id.into(),
        status: a.status.as_str().into(),
        message: a.message.clone(),
    })
}

async fn event(ctx: &Ctx, client: &AsyncClient, e: msg::Event) -> Result<(), String> {
    publish(client, ctx.topic(Kind::Event), ctx.envelope(Kind::Event, "", e)).await
}

fn outcome_event(name: &str, r: &Result<String, String>) -> msg::Event {
    match r {
        Ok(m) => msg::Event::new(msg::LEVEL_INFO, name, m.clone()),
        Err(m) => msg::Event::new(msg::LEVEL_ERROR, name, m.clone()),
    }
}

fn status_of(r: &Result<String, String>) -> (AckStatus, String) {
    match r {
        Ok(m) => (AckStatus::Applied, m.clone()),
        Err(m) => (AckStatus::Failed, m.clone()),
    }
}

/// Handles one command; `Err` ends the session (a publish failed).
async fn handle(ctx: &mut Ctx, client: &AsyncClient, t: &str, payload: &[u8]) -> Result<Option<AgentEvent>, String> {
    let Some(tr) = TopicRef::parse(t) else { return Ok(None) };
    if tr.config_id != ctx.file.profile.config_id || tr.node_id != ctx.file.profile.node_id {
        return Ok(None);
    }
    let Some(kind) = tr.known_kind().filter(|k| k.is_downstream()) else { return Ok(None) };
    let env: Envelope<serde_json::Value> = match Envelope::from_slice(payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(topic = t, error = %e, "dropping unreadable command");
            return Ok(None);
        }
    };
    let rid = env.request_id.clone();
    let a = match kind {
        Kind::ConfigPush => on_push(ctx, client, env.payload).await?,
        Kind::Control => on_control(ctx, client, env.payload).await?,
        Kind::Info => on_info(ctx, client, &rid, env.payload).await?,
        Kind::Detect => on_detect(ctx, client, env.payload).await?,
        _ => return Ok(None),
    };
    ack(ctx, client, kind, &rid, &a).await.map(Some)
}

async fn on_push(ctx: &mut Ctx, client: &AsyncClient, payload: serde_json::Value) -> Result<Ack, String> {
    let p: ConfigPush = match serde_json::from_value(payload) {
        Ok(p) => p,
        Err(e) => return Ok(Ack::new(AckStatus::Failed, format!("invalid config push: {e}"))),
    };
    let t = match tunnel::validate(&p.tunnel) {
        Ok(t) => t,
        Err(m) => return Ok(Ack::new(AckStatus::Failed, m)),
    };
    if p.config_text.is_empty() {
        return Ok(Ack::new(AckStatus::Failed, "config_text is empty"));
    }
    let runner = ctx.opts.runner.clone();
    let old_iface = ctx.iface();
    let old_conf = conf_path(&ctx.dir, &old_iface);
    let mut was_running = None;
    for proto in [t.previous, t.target] {
        if runner.is_running(proto, &old_iface).await {
            was_running = Some(proto);
            break;
        }
    }
    let mut result: Result<String, String> = Ok(String::new());
    if let Some(proto) = was_running
        && let Err(e) = runner.down(proto, &old_conf).await
    {
        result = Err(e);
    }
    if result.is_ok() {
        if !p.interface_name.is_empty() && p.interface_name != old_iface {
            ctx.file.profile.interface_name = p.interface_name.clone();
            if let Err(e) = save_profile(&ctx.dir, &ctx.file) {
                result = Err(format!("saving profile: {e}"));
            }
        }
        if result.is_ok() {
            result = match write_confs(&ctx.dir, &ctx.iface(), &p.config_text) {
                Ok(()) => Ok(format!("Config version {} written", p.config_version)),
                Err(e) => Err(format!("writing config: {e}")),
            };
        }
        if result.is_ok() && was_running.is_some() {
            let conf = conf_path(&ctx.dir, &ctx.iface());
            result = runner.up(t.target, &conf).await.map(|_| format!("Config version {} applied and interface restarted", p.config_version));
        }
    }
    event(ctx, client, outcome_event("config_push", &result)).await?;
    let (status, message) = status_of(&result);
    let mut a = Ack::new(status, message);
    if status == AckStatus::Applied {
        a.config_sha256 = Some(sha256_hex(&p.config_text));
        a.config_version = Some(p.config_version);
    }
    Ok(a)
}

async fn on_control(ctx: &mut Ctx, client: &AsyncClient, payload: serde_json::Value) -> Result<Ack, String> {
    let c: Control = match serde_json::from_value(payload) {
        Ok(c) => c,
        Err(e) => return Ok(Ack::new(AckStatus::Failed, format!("invalid control: {e}"))),
    };
    let t = match tunnel::validate(&c.tunnel) {
        Ok(t) => t,
        Err(m) => return Ok(Ack::new(AckStatus::Failed, m).with_action(&c.action)),
    };
    let runner = ctx.opts.runner.clone();
    let iface = ctx.iface();
    let conf = conf_path(&ctx.dir, &iface);
    let result = match c.action.as_str() {
        msg::ACTION_START => runner.up(t.target, &conf).await.map(|_| format!("Interface {iface} started")),
        msg::ACTION_STOP => {
            let mut proto = t.target;
            for p in [t.previous, t.target] {
                if runner.is_running(p, &iface).await {
                    proto = p;
                    break;
                }
            }
            runner.down(proto, &conf).await.map(|_| format!("Interface {iface} stopped"))
        }
        other => Err(format!("unsupported control action: {other}")),
    };
    event(ctx, client, outcome_event("control", &result)).await?;
    let (status, message) = status_of(&result);
    Ok(Ack::new(status, message).with_action(&c.action))
}

async fn on_info(ctx: &mut Ctx, client: &AsyncClient, rid: &str, payload: serde_json::Value) -> Result<Ack, String> {
    let i: Info = match serde_json::from_value(payload) {
        Ok(i) => i,
        Err(e) => return Ok(Ack::new(AckStatus::Failed, format!("invalid info: {e}")).with_action(msg::ACTION_WG_SHOW)),
    };
    let t = match tunnel::validate(&i.tunnel) {
        Ok(t) => t,
        Err(m) => return Ok(Ack::new(AckStatus::Failed, m).with_action(&i.action)),
    };
    if i.action != msg::ACTION_WG_SHOW {
        return Ok(Ack::new(AckStatus::Failed, format!("unsupported info action: {}", i.action)).with_action(&i.action));
    }
    let r = ctx.opts.runner.show_all(t.target).await;
    let (level, message, output) = match &r {
        Ok(o) => (msg::LEVEL_INFO, "wg_show completed".to_string(), o.clone()),
        Err(e) => (msg::LEVEL_ERROR, e.clone(), String::new()),
    };
    let ev = msg::Event {
        level: level.into(),
        event: msg::EVENT_COMMAND_OUTPUT.into(),
        message: message.clone(),
        request_id: rid.into(),
        action: msg::ACTION_WG_SHOW.into(),
        stream: "stdout".into(),
        output,
    };
    event(ctx, client, ev).await?;
    let status = if r.is_ok() { AckStatus::Applied } else { AckStatus::Failed };
    Ok(Ack::new(status, message).with_action(msg::ACTION_WG_SHOW))
}

async fn on_detect(ctx: &mut Ctx, client: &AsyncClient, payload: serde_json::Value) -> Result<Ack, String> {
    let d: Detect = serde_json::from_value(payload).unwrap_or_default();
    let t = match tunnel::validate(&d.tunnel()) {
        Ok(t) => t,
        Err(m) => return Ok(Ack::new(AckStatus::Failed, m)),
    };
    let wg_online = ctx.opts.runner.is_running(t.target, &ctx.iface()).await;
    event(ctx, client, msg::Event::new(msg::LEVEL_INFO, "detect", format!("wg_online={wg_online}"))).await?;
    let mut a = Ack::new(AckStatus::Applied, "Detect completed.");
    a.client_online = Some(true);
    a.wg_online = Some(wg_online);
    a.platform = Some(ctx.opts.platform.clone());
    a.client_version = Some(ctx.opts.version.clone());
    Ok(a)
}
