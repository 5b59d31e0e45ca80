//! The server side of the MQTT control channel (spec 03 §6, §9.2).
//!
//! [`MqttService`] lives in `AppState`: it owns the in-memory authz engine, the broker-sync
//! backend, the server's own MQTT connection (status and publisher), and the command
//! timeout sweeper. Layout: [`client`] (connection loop: reconcile, connect, subscribe, poll),
//! [`ingress`] (upstream messages → stored state), [`dispatch`] (commands → broker).

pub mod client;
pub mod dispatch;
pub mod ingress;
pub mod tls;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use serde::Serialize;
use tokio::sync::{Notify, watch};

use crate::broker::BrokerSync;
use crate::broker::authz::AuthzEngine;
use crate::broker::emqx::EmqxClient;
use crate::broker::mosquitto::DynsecClient;
use crate::config::{MqttBroker, Settings};

/// `mqtt_service` status object (spec 03 §7.4).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MqttStatus {
    pub enabled: bool,
    pub connected: bool,
    /// `disabled`, `connecting`, `connected`, `error`.
    pub status: String,
    pub last_error: String,
    pub last_connected_at: Option<String>,
    /// Broker backend (`emqx` / `mosquitto`).
    pub broker: String,
}

/// Default time a command may stay `pending` before it becomes `timeout` (WFM addition).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between connection attempts (spec 03 §9.2).
pub const RETRY_DELAY: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match m.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match m.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// MQTT side of the server.
pub struct MqttService {
    /// `WFM_ENABLE_MQTT_SERVICES`.
    pub enabled: bool,
    /// Authz decisions from memory.
    pub authz: AuthzEngine,
    /// Serializes every "read the database, then update [`Self::authz`]" step, so an update
    /// computed from an older read can never overwrite one computed from a newer read (a
    /// reconcile racing a bind would otherwise deny a freshly bound node until the next one).
    pub(crate) authz_sync: tokio::sync::Mutex<()>,
    broker: RwLock<Option<BrokerSync>>,
    broker_kind: MqttBroker,
    status: RwLock<MqttStatus>,
    publisher: RwLock<Option<AsyncClient>>,
    command_timeout_ms: AtomicU64,
    retry_delay_ms: AtomicU64,
    detect_interval_ms: AtomicU64,
    detect_wait_ms: AtomicU64,
    /// Re-arms the detect loop's sleep after [`Self::set_detect_interval`].
    pub(crate) detect_wake: Notify,
    prev_protocol: Mutex<HashMap<String, String>>,
    stop: watch::Sender<bool>,
    /// Wakes the connection loop to reconnect and reconcile now.
    pub(crate) wake: Notify,
}

impl MqttService {
    /// Built once from settings; nothing runs until [`client::start`].
    pub fn new(settings: &Settings) -> Self {
        let enabled = settings.enable_mqtt_services;
        let broker = match (enabled, settings.mqtt_broker) {
            (true, MqttBroker::Emqx) => {
                match EmqxClient::new(&settings.emqx_api_base_url, &settings.emqx_username, settings.emqx_password.expose()) {
                    Ok(c) => Some(BrokerSync::Emqx(c)),
                    Err(e) => {
                        tracing::error!(error = %e, "EMQX client unavailable");
                        None
                    }
                }
            }
            _ => None,
        };
        let (stop, _) = watch::channel(false);
        MqttService {
            enabled,
            authz: AuthzEngine::new(&settings.emqx_username, settings.emqx_authz_shared_key.expose(), enabled),
            authz_sync: tokio::sync::Mutex::new(()),
            broker: RwLock::new(broker),
            broker_kind: settings.mqtt_broker,
            status: RwLock::new(MqttStatus {
                enabled,
                connected: false,
                status: if enabled { "connecting".into() } else { "disabled".into() },
                last_error: String::new(),
                last_connected_at: None,
                broker: match settings.mqtt_broker {
                    MqttBroker::Emqx => "emqx".into(),
                    MqttBroker::Mosquitto => "mosquitto".into(),
                },
            }),
            publisher: RwLock::new(None),
            command_timeout_ms: AtomicU64::new(DEFAULT_COMMAND_TIMEOUT.as_millis() as u64),
            retry_delay_ms: AtomicU64::new(RETRY_DELAY.as_millis() as u64),
            detect_interval_ms: AtomicU64::new(wfm_mqtt_proto::DETECT_INTERVAL.as_millis() as u64),
            detect_wait_ms: AtomicU64::new(wfm_mqtt_proto::DETECT_WAIT.as_millis() as u64),
            detect_wake: Notify::new(),
            prev_protocol: Mutex::new(HashMap::new()),
            stop,
            wake: Notify::new(),
        }
    }

    /// Starts the Mosquitto dynsec connection when that backend is selected (needs a runtime).
    pub(crate) async fn init_broker(&self, settings: &Settings) {
        if self.enabled && self.broker_kind == MqttBroker::Mosquitto && read(&self.broker).is_none() {
            let transport = match tls::server_transport(settings).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "Mosquitto dynamic-security client unavailable");
                    return;
                }
            };
            match DynsecClient::start(&settings.mqtt_url, &settings.emqx_username, settings.emqx_password.expose(), transport) {
                Ok(c) => *write(&self.broker) = Some(BrokerSync::Mosquitto(c)),
                Err(e) => tracing::error!(error = %e, "Mosquitto dynamic-security client unavailable"),
            }
        }
    }

    /// The broker-sync backend (`None` when MQTT is off).
    pub fn broker(&self) -> Option<BrokerSync> {
        read(&self.broker).clone()
    }

    /// Current status.
    pub fn status(&self) -> MqttStatus {
        read(&self.status).clone()
    }

    pub(crate) fn set_status(&self, f: impl FnOnce(&mut MqttStatus)) {
        f(&mut write(&self.status));
    }

    /// True while the server's MQTT client is connected.
    pub fn is_connected(&self) -> bool {
        read(&self.publisher).is_some()
    }

    pub(crate) fn set_publisher(&self, c: Option<AsyncClient>) {
        *write(&self.publisher) = c;
    }

    /// Publishes QoS 1, retain false. Fails when the server client is not connected.
    pub async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<(), String> {
        let Some(c) = read(&self.publisher).clone() else {
            return Err("MQTT client is not connected".into());
        };
        match tokio::time::timeout(Duration::from_secs(3), c.publish(topic, QoS::AtLeastOnce, false, payload)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("MQTT publish failed: {e}")),
            Err(_) => Err("MQTT publish timed out".into()),
        }
    }

    /// How long a command may stay pending.
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms.load(Ordering::Relaxed))
    }

    /// Changes the command timeout (tests, tuning).
    pub fn set_command_timeout(&self, d: Duration) {
        self.command_timeout_ms.store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// Pause between connection attempts.
    pub fn retry_delay(&self) -> Duration {
        Duration::from_millis(self.retry_delay_ms.load(Ordering::Relaxed))
    }

    /// Changes the retry pause (tests).
    pub fn set_retry_delay(&self, d: Duration) {
        self.retry_delay_ms.store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// Period of the detect loop (spec 03 §6.6: 120 s).
    pub fn detect_interval(&self) -> Duration {
        Duration::from_millis(self.detect_interval_ms.load(Ordering::Relaxed))
    }

    /// Changes the detect period (tests); the loop's current wait restarts with it.
    pub fn set_detect_interval(&self, d: Duration) {
        self.detect_interval_ms.store(d.as_millis() as u64, Ordering::Relaxed);
        self.detect_wake.notify_one();
    }

    /// How long one detect waits for its ACK (spec 03 §6.6: 10 s).
    pub fn detect_wait(&self) -> Duration {
        Duration::from_millis(self.detect_wait_ms.load(Ordering::Relaxed))
    }

    /// Changes the detect ACK wait (tests).
    pub fn set_detect_wait(&self, d: Duration) {
        self.detect_wait_ms.store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// Remembers a config's protocol before a change (memory only, spec 03 §5).
    pub fn remember_previous_protocol(&self, config_id: &str, protocol: &str) {
        lock(&self.prev_protocol).insert(config_id.to_string(), protocol.to_string());
    }

    /// The protocol before the last change, else `current`.
    pub fn previous_protocol(&self, config_id: &str, current: &str) -> String {
        lock(&self.prev_protocol).get(config_id).cloned().unwrap_or_else(|| current.to_string())
    }

    /// Asks the connection loop to reconnect and run a full reconcile now.
    pub fn request_reconcile(&self) {
        self.wake.notify_one();
    }

    /// Stops the background tasks.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.set_publisher(None);
    }

    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}
