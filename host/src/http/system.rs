//! `/api/v1/system` (spec 01 §5, spec 04 §5).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::Value;

use super::extract::{ApiOk, ApiResult};
use crate::service::system;
use crate::state::AppState;

/// Public system routes.
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/system/health", get(health)).route("/system/timezone", get(timezone))
}

/// Admin system routes.
pub fn admin_routes() -> Router<AppState> {
    Router::new().route("/system/status", get(status))
}

async fn health(State(app): State<AppState>) -> ApiResult<Value> {
    Ok(ApiOk(system::health(&app)))
}

async fn timezone(State(app): State<AppState>) -> ApiResult<Value> {
    Ok(ApiOk(system::timezone(&app)))
}

async fn status(State(app): State<AppState>) -> ApiResult<Value> {
    Ok(ApiOk(system::status(&app).await?))
}
