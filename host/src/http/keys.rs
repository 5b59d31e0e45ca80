//! Key tools (spec 02 §4.4): `/nodes/keys/generate`, `/nodes/keys/derive-public`.

use axum::Router;
use axum::routing::post;
use serde::Deserialize;
use wfm_domain::keys::KeyPair;

use super::extract::{ApiJson, ApiOk, ApiResult};
use crate::service::keys;
use crate::state::AppState;
use crate::validate;

/// Admin key routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/nodes/keys/generate", post(generate)).route("/nodes/keys/derive-public", post(derive_public))
}

async fn generate() -> ApiResult<KeyPair> {
    Ok(ApiOk(keys::generate()?))
}

#[derive(Deserialize)]
struct DeriveBody {
    private_key: String,
}

async fn derive_public(ApiJson(b): ApiJson<DeriveBody>) -> ApiResult<KeyPair> {
    validate::not_blank("private_key", &b.private_key, 1, 256)?;
    Ok(ApiOk(keys::derive_public(&b.private_key)?))
}
