//! `/api/v1/settings/mqtt` (spec 03 §10.2, spec 01 §4).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;

use super::extract::{ApiJson, ApiOk, ApiResult};
use crate::service::mqtt_settings::{self, MqttClientSettings, TestResult};
use crate::state::AppState;
use crate::validate;

/// Admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings/mqtt", get(get_s).put(put_s))
        .route("/settings/mqtt/reset", post(reset))
        .route("/settings/mqtt/test", post(test))
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default)]
    tls: Option<bool>,
}

fn check(b: Body) -> Result<MqttClientSettings, crate::error::AppError> {
    let port = b.port.unwrap_or(8883);
    if !(1..=65535).contains(&port) {
        return Err(validate::field_custom("port", if port < 1 { "Port must be greater than or equal to 1" } else { "Port must be less than or equal to 65535" }));
    }
    Ok(MqttClientSettings { host: b.host.unwrap_or_default().trim().to_string(), port: port as u16, tls: b.tls.unwrap_or(true) })
}

async fn get_s(State(app): State<AppState>) -> ApiResult<MqttClientSettings> {
    mqtt_settings::require_enabled(&app)?;
    Ok(ApiOk(mqtt_settings::effective(&app).await?))
}

async fn put_s(State(app): State<AppState>, ApiJson(b): ApiJson<Body>) -> ApiResult<MqttClientSettings> {
    mqtt_settings::require_enabled(&app)?;
    Ok(ApiOk(mqtt_settings::put(&app, check(b)?).await?))
}

async fn reset(State(app): State<AppState>) -> ApiResult<MqttClientSettings> {
    Ok(ApiOk(mqtt_settings::reset(&app).await?))
}

async fn test(State(app): State<AppState>, ApiJson(b): ApiJson<Body>) -> ApiResult<TestResult> {
    mqtt_settings::require_enabled(&app)?;
    let host = b.host.unwrap_or_default();
    let port = b.port.unwrap_or(8883);
    Ok(ApiOk(mqtt_settings::test(&app, &host, port, b.tls.unwrap_or(true)).await?))
}
