//! Endpoint control routes (spec 03 §7, spec 01 §7.5): bind command, reset, control, logs,
//! status, runtime snapshot, probe batch; plus an on-demand broker reconcile.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use axum::body::Bytes;

use super::extract::{ApiJson, ApiOk, ApiResult, from_value, parse_json_syntax};
use crate::service::{binding, endpoint, mqtt_settings, sync};
use crate::state::AppState;
use crate::validate;

/// Admin routes (under `/api/v1`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configs/{config_id}/nodes/{node_id}/bind-command", post(bind_command))
        .route("/configs/{config_id}/nodes/{node_id}/reset-client", post(reset_client))
        .route("/configs/{config_id}/nodes/{node_id}/endpoint/control", post(control))
        .route("/configs/{config_id}/nodes/{node_id}/endpoint/logs", get(logs))
        .route("/configs/{config_id}/nodes/{node_id}/endpoint/status", get(status))
        .route("/configs/{config_id}/endpoint/runtime-snapshot", get(snapshot))
        .route("/configs/{config_id}/endpoint/probe-batch", post(probe_batch))
        .route("/settings/mqtt/reconcile", post(reconcile))
        .merge(sync_routes())
}

/// An optional JSON body: empty means defaults. A present body must be an object: serde
/// would otherwise fill a struct from an array (`[["node_x"]]`), which the upstream schema
/// rejects with 422.
fn optional_body<T: serde::de::DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, crate::error::AppError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    let value = parse_json_syntax(bytes)?;
    crate::http::extract::require_object(&value)?;
    from_value(value)
}

#[derive(Deserialize, Default)]
struct BindCommandBody {
    #[serde(default)]
    server_url: Option<String>,
}

fn request_base(headers: &HeaderMap) -> String {
    let host = headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("http");
    format!("{proto}://{host}")
}

async fn bind_command(
    State(app): State<AppState>,
    Path((config_id, node_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Value> {
    let b: BindCommandBody = optional_body(&body)?;
    let server_url = b.server_url.unwrap_or_default();
    Ok(ApiOk(binding::bind_command(&app, &config_id, &node_id, &server_url, &request_base(&headers)).await?))
}

async fn reset_client(State(app): State<AppState>, Path((config_id, node_id)): Path<(String, String)>) -> ApiResult<Value> {
    Ok(ApiOk(binding::reset_client(&app, &config_id, &node_id).await?))
}

#[derive(Deserialize)]
struct ControlBody {
    action: String,
}

async fn control(
    State(app): State<AppState>,
    Path((config_id, node_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ControlBody>,
) -> ApiResult<Value> {
    if !["start", "stop", "push_config", "wg_show"].contains(&body.action.as_str()) {
        return Err(validate::field_custom("action", "Action value is invalid"));
    }
    Ok(ApiOk(endpoint::control(&app, &config_id, &node_id, &body.action, "admin").await?))
}

async fn logs(State(app): State<AppState>, Path((config_id, node_id)): Path<(String, String)>) -> ApiResult<Value> {
    Ok(ApiOk(endpoint::logs(&app, &config_id, &node_id).await?))
}

async fn status(State(app): State<AppState>, Path((config_id, node_id)): Path<(String, String)>) -> ApiResult<Value> {
    Ok(ApiOk(endpoint::endpoint_status(&app, &config_id, &node_id).await?))
}

async fn snapshot(State(app): State<AppState>, Path(config_id): Path<String>) -> ApiResult<Value> {
    Ok(ApiOk(endpoint::runtime_snapshot(&app, &config_id).await?))
}

#[derive(Deserialize, Default)]
struct ProbeBody {
    #[serde(default)]
    node_ids: Vec<String>,
}

async fn probe_batch(State(app): State<AppState>, Path(config_id): Path<String>, body: Bytes) -> ApiResult<Value> {
    let ids = optional_body::<ProbeBody>(&body)?.node_ids;
    Ok(ApiOk(endpoint::probe_batch(&app, &config_id, &ids).await?))
}

async fn reconcile(State(app): State<AppState>) -> ApiResult<Value> {
    mqtt_settings::require_enabled(&app)?;
    let r = binding::reconcile_all(&app).await;
    Ok(ApiOk(json!({"report": r, "mqtt_service": app.mqtt.status()})))
}

/// Sync / apply routes (spec 03 §8.2-8.4).
pub fn sync_routes() -> Router<AppState> {
    Router::new()
        .route("/configs/{config_id}/sync-status", get(sync_status_all))
        .route("/configs/{config_id}/nodes/{node_id}/sync-status", get(sync_status_node))
        .route("/configs/{config_id}/nodes/{node_id}/applied-conf", get(applied_get).put(applied_put))
        .route("/configs/{config_id}/nodes/{node_id}/sync", post(sync_node))
        .route("/configs/{config_id}/sync-all", post(sync_all))
}

async fn sync_status_all(State(app): State<AppState>, Path(config_id): Path<String>) -> ApiResult<Value> {
    Ok(ApiOk(sync::config_status(&app, &config_id).await?))
}

async fn sync_status_node(State(app): State<AppState>, Path((c, n)): Path<(String, String)>) -> ApiResult<Value> {
    Ok(ApiOk(sync::node_status(&app, &c, &n).await?))
}

async fn applied_get(State(app): State<AppState>, Path((c, n)): Path<(String, String)>) -> ApiResult<Value> {
    Ok(ApiOk(sync::applied_conf(&app, &c, &n).await?))
}

#[derive(Deserialize)]
struct AppliedBody {
    content: String,
}

async fn applied_put(State(app): State<AppState>, Path((c, n)): Path<(String, String)>, ApiJson(b): ApiJson<AppliedBody>) -> ApiResult<Value> {
    Ok(ApiOk(sync::put_applied_conf(&app, &c, &n, &b.content).await?))
}

async fn sync_node(State(app): State<AppState>, Path((c, n)): Path<(String, String)>) -> ApiResult<Value> {
    Ok(ApiOk(sync::sync_node(&app, &c, &n).await?))
}

async fn sync_all(State(app): State<AppState>, Path(c): Path<String>) -> ApiResult<Value> {
    Ok(ApiOk(sync::sync_all(&app, &c).await?))
}
