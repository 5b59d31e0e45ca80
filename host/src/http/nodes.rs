//! Node routes (spec 01 §7.2, spec 02 §4) except `/nodes/awg/random` (awg-params plugin).

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use wfm_domain::ip::IpCheck;

use super::extract::{ApiJson, ApiOk, ApiResult};
use crate::error::AppError;
use crate::service::nodes::{self, NodeCreate, NodePatch, NodeUpdated, NodeView};
use crate::state::AppState;
use crate::validate;

/// Admin node routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configs/{config_id}/nodes", get(list).post(create))
        .route("/configs/{config_id}/nodes/suggest-ip", post(suggest_ip))
        .route("/configs/{config_id}/nodes/validate-ip", post(validate_ip))
        .route("/nodes/{node_id}", get(read).put(update).delete(remove))
}

fn ints(fields: &[(&str, Option<i64>, i64, i64)]) -> Result<(), AppError> {
    for (name, v, lo, hi) in fields {
        if let Some(v) = v {
            validate::int_range(name, *v, *lo, *hi)?;
        }
    }
    Ok(())
}

fn check_create(b: &NodeCreate) -> Result<(), AppError> {
    validate::str_len("name", &b.name, 0, 128)?;
    ints(&[
        ("listen_port", b.listen_port, 1, 65535),
        ("mtu", b.mtu, 576, 65535),
        ("awg_jc", b.awg_jc, 0, 65535),
        ("awg_jmin", b.awg_jmin, 0, 65535),
        ("awg_jmax", b.awg_jmax, 0, 65535),
    ])?;
    if let Some(t) = &b.node_type {
        nodes::node_type_input(&Some(Some(t.clone())))?;
    }
    Ok(())
}

fn check_patch(b: &NodePatch) -> Result<(), AppError> {
    match &b.name {
        Some(Some(n)) => validate::str_len("name", n, 0, 128)?,
        Some(None) => return Err(validate::field("name", "missing", "is required")),
        None => {}
    }
    for (name, v) in [("auto_sync", &b.auto_sync), ("enabled", &b.enabled)] {
        if matches!(v, Some(None)) {
            return Err(validate::field(name, "bool_type", "is invalid"));
        }
    }
    ints(&[
        ("listen_port", b.listen_port.flatten(), 1, 65535),
        ("mtu", b.mtu.flatten(), 576, 65535),
        ("awg_jc", b.awg.awg_jc.flatten(), 0, 65535),
        ("awg_jmin", b.awg.awg_jmin.flatten(), 0, 65535),
        ("awg_jmax", b.awg.awg_jmax.flatten(), 0, 65535),
    ])?;
    nodes::node_type_input(&b.node_type)?;
    Ok(())
}

async fn list(State(app): State<AppState>, Path(config_id): Path<String>) -> ApiResult<Vec<NodeView>> {
    Ok(ApiOk(nodes::list(&app, &config_id).await?))
}

async fn create(State(app): State<AppState>, Path(config_id): Path<String>, ApiJson(body): ApiJson<NodeCreate>) -> ApiResult<NodeView> {
    check_create(&body)?;
    Ok(ApiOk(nodes::create(&app, &config_id, body).await?))
}

async fn read(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<NodeView> {
    Ok(ApiOk(nodes::get(&app, &id).await?))
}

async fn update(State(app): State<AppState>, Path(id): Path<String>, ApiJson(body): ApiJson<NodePatch>) -> ApiResult<NodeUpdated> {
    check_patch(&body)?;
    Ok(ApiOk(nodes::update(&app, &id, body).await?))
}

async fn remove(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Value> {
    Ok(ApiOk(nodes::delete(&app, &id).await?))
}

async fn suggest_ip(State(app): State<AppState>, Path(config_id): Path<String>) -> ApiResult<Value> {
    Ok(ApiOk(nodes::suggest_ip(&app, &config_id).await?))
}

#[derive(Deserialize)]
struct ValidateIpBody {
    #[serde(default)]
    virtual_ip: Option<String>,
}

async fn validate_ip(State(app): State<AppState>, Path(config_id): Path<String>, ApiJson(body): ApiJson<ValidateIpBody>) -> ApiResult<IpCheck> {
    Ok(ApiOk(nodes::validate_ip(&app, &config_id, body.virtual_ip.as_deref().unwrap_or("")).await?))
}
