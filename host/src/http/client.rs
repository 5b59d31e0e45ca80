//! `/api/client/v1/bind` (and the documented alias `/api/client/bind`): the agent's bind call.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

use super::extract::{ApiJson, ApiOk, ApiResult};
use crate::service::binding::{self, BindRequest};
use crate::state::AppState;
use crate::validate;

/// Routes mounted at the root (the source guard applies).
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/client/v1/bind", post(bind)).route("/api/client/bind", post(bind))
}

async fn bind(State(app): State<AppState>, ApiJson(body): ApiJson<BindRequest>) -> ApiResult<Value> {
    if body.token.is_empty() {
        return Err(validate::field_custom("token", "Token is required"));
    }
    Ok(ApiOk(binding::bind(&app, body).await?))
}
