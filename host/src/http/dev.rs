//! Dev API under `/api/v0`, mounted only with `WFM_ENABLE_DEV_TEST_API=true` (spec 01 §6).

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use super::extract::{ApiOk, ApiResult};
use crate::service::auth;
use crate::state::AppState;

/// Dev routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/dev/reset-bootstrap", post(reset_bootstrap))
}

async fn reset_bootstrap(State(app): State<AppState>) -> ApiResult<Value> {
    let st = auth::reset_bootstrap(&app).await?;
    Ok(ApiOk(json!({"message": "Bootstrap state has been reset", "auth_state": st})))
}
