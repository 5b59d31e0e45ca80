//! Client-facing MQTT settings (spec 03 §10.2, spec 01 §4): what bind answers tell agents.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::mqtt::tls::ProbeError;
use crate::state::AppState;
use crate::store::settings as kv;

/// Setting key.
pub const KEY: &str = "mqtt_client";

/// `{host, port, tls}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MqttClientSettings {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

#[derive(Deserialize, Default)]
struct Stored {
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default)]
    tls: Option<bool>,
}

/// `MQTT_DISABLED` 409 when MQTT services are off.
pub fn require_enabled(app: &AppState) -> AppResult<()> {
    if app.mqtt.enabled { Ok(()) } else { Err(AppError::new(ErrorCode::MqttDisabled, "MQTT services are disabled")) }
}

fn default_host(app: &AppState) -> String {
    url::Url::parse(&app.settings.public_origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into())
}

/// Effective values: stored non-empty host / non-zero port / flag, else defaults.
pub async fn effective(app: &AppState) -> AppResult<MqttClientSettings> {
    let stored: Stored = kv::get(&app.db, KEY).await?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
    let s = &app.settings;
    let host = if stored.host.trim().is_empty() { default_host(app) } else { stored.host.trim().to_string() };
    let port = match stored.port {
        Some(p) if p > 0 && p <= 65535 => p as u16,
        _ if s.mqtt_tls_enabled => s.mqtt_public_tls_port,
        _ => s.mqtt_public_port,
    };
    let tls = stored.tls.unwrap_or(s.mqtt_tls_enabled);
    Ok(MqttClientSettings { host, port, tls })
}

fn changed(app: &AppState, v: &MqttClientSettings) {
    app.events.publish("settings.mqtt.updated", serde_json::json!({"mqtt": v, "enabled": app.mqtt.enabled}));
    crate::service::refresh::system_status_changed(app);
}

/// Stores the values, reconciles the server client, returns the effective values.
pub async fn put(app: &AppState, v: MqttClientSettings) -> AppResult<MqttClientSettings> {
    require_enabled(app)?;
    let mut tx = app.db.begin().await?;
    kv::set(&mut tx, KEY, &serde_json::to_string(&v).map_err(AppError::internal)?).await?;
    tx.commit().await?;
    app.mqtt.request_reconcile();
    let e = effective(app).await?;
    changed(app, &e);
    Ok(e)
}

/// Drops the stored value.
pub async fn reset(app: &AppState) -> AppResult<MqttClientSettings> {
    require_enabled(app)?;
    let mut tx = app.db.begin().await?;
    kv::delete(&mut tx, &[KEY]).await?;
    tx.commit().await?;
    app.mqtt.request_reconcile();
    let e = effective(app).await?;
    changed(app, &e);
    Ok(e)
}

/// `{success, message, latency_ms}` of a reachability probe from the server.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TestResult {
    pub success: bool,
    pub message: String,
    pub latency_ms: u64,
}

/// TCP connect, plus an unverified TLS handshake (SNI = host) when `tls`; 3 s for both
/// (spec 03 §10.3). It checks reachability from the server only.
pub async fn test(app: &AppState, host: &str, port: i64, tls: bool) -> AppResult<TestResult> {
    require_enabled(app)?;
    let host = host.trim();
    if host.is_empty() {
        return Ok(TestResult { success: false, message: "Host is required".into(), latency_ms: 0 });
    }
    if port <= 0 {
        return Ok(TestResult { success: false, message: "Port must be greater than 0".into(), latency_ms: 0 });
    }
    let Ok(port) = u16::try_from(port) else {
        return Ok(TestResult { success: false, message: "Port must be at most 65535".into(), latency_ms: 0 });
    };
    let start = Instant::now();
    let r = crate::mqtt::tls::probe(host, port, tls, Duration::from_secs(3)).await;
    let ms = start.elapsed().as_millis() as u64;
    Ok(match r {
        Err(ProbeError::Timeout) => TestResult { success: false, message: "Connection timed out.".into(), latency_ms: ms },
        Err(ProbeError::Failed(e)) => TestResult { success: false, message: e, latency_ms: ms },
        Ok(()) if tls => TestResult { success: true, message: "TLS handshake succeeded.".into(), latency_ms: ms },
        Ok(()) => TestResult { success: true, message: "TCP connection succeeded.".into(), latency_ms: ms },
    })
}
