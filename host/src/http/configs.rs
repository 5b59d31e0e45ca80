//! `/api/v1/configs` (spec 01 §7.1, spec 02 §3) except the stateless `/configs/awg/*`
//! generators, which the awg-params plugin serves.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::Value;

use super::extract::{ApiJson, ApiOk, ApiResult};
use crate::error::AppError;
use crate::service::configs::{self, ConfigInput, ConfigUpdated, ConfigView};
use crate::state::AppState;
use crate::validate;

/// Admin config routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configs", get(list).post(create))
        .route("/configs/protocol-options", get(protocol_options))
        .route("/configs/{config_id}", get(read).put(update).delete(remove))
}

/// Schema bounds of the body (422 before any business rule, spec 01 §1).
fn check(input: &ConfigInput) -> Result<(), AppError> {
    if let Some(Some(p)) = input.default_listen_port {
        validate::int_range("default_listen_port", p, 1, 65535)?;
    }
    if let Some(Some(m)) = input.default_mtu {
        validate::int_range("default_mtu", m, 576, 65535)?;
    }
    for (name, v) in [("awg_s1", input.awg_s1), ("awg_s2", input.awg_s2), ("awg_s3", input.awg_s3), ("awg_s4", input.awg_s4)] {
        if let Some(Some(v)) = v {
            validate::int_range(name, v, 0, 65535)?;
        }
    }
    if let Some(Some(d)) = &input.description {
        validate::str_len("description", d, 0, 1024)?;
    }
    Ok(())
}

async fn list(State(app): State<AppState>) -> ApiResult<Vec<ConfigView>> {
    Ok(ApiOk(crate::service::projections::config_list(&app).await?))
}

async fn create(State(app): State<AppState>, ApiJson(input): ApiJson<ConfigInput>) -> ApiResult<ConfigView> {
    check(&input)?;
    Ok(ApiOk(configs::create(&app, input).await?))
}

async fn protocol_options() -> ApiResult<Value> {
    Ok(ApiOk(configs::protocol_options()))
}

async fn read(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<ConfigView> {
    Ok(ApiOk(configs::get(&app, &id).await?))
}

async fn update(State(app): State<AppState>, Path(id): Path<String>, ApiJson(input): ApiJson<ConfigInput>) -> ApiResult<ConfigUpdated> {
    check(&input)?;
    Ok(ApiOk(configs::update(&app, &id, input).await?))
}

async fn remove(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Value> {
    Ok(ApiOk(configs::delete(&app, &id).await?))
}
