//! The upstream-compatible stateless AmneziaWG routes (spec 02 §5.8), served by the
//! `awg-params` plugin through `service::awg`.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::post;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{ApiJson, ApiOk, ApiResult};
use crate::service::awg;
use crate::state::AppState;

/// Admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configs/awg/random", post(random_config))
        .route("/nodes/awg/random", post(random_node))
        .route("/configs/awg/generate", post(generate))
        .route("/configs/awg/convert", post(convert))
}

#[derive(Deserialize)]
struct RandomQuery {
    #[serde(default)]
    awg_version: Option<String>,
    #[serde(default)]
    regenerate_key: Option<String>,
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v.map(|s| s.trim().to_ascii_lowercase()).as_deref(), Some("true" | "1" | "yes" | "on"))
}

async fn random_config(State(app): State<AppState>, Query(q): Query<RandomQuery>) -> ApiResult<Value> {
    Ok(ApiOk(awg::random_config(&app, q.awg_version.as_deref(), truthy(q.regenerate_key.as_deref())).await?))
}

async fn random_node(State(app): State<AppState>, Query(q): Query<RandomQuery>) -> ApiResult<Value> {
    Ok(ApiOk(awg::random_node(&app, q.awg_version.as_deref()).await?))
}

async fn generate(State(app): State<AppState>, ApiJson(body): ApiJson<Value>) -> ApiResult<Value> {
    Ok(ApiOk(awg::generate(&app, body).await?))
}

async fn convert(State(app): State<AppState>, ApiJson(body): ApiJson<Value>) -> ApiResult<Value> {
    let mut body = body;
    if let Value::Object(m) = &mut body {
        m.entry("name").or_insert_with(|| Value::String("conversion".into()));
    }
    Ok(ApiOk(awg::convert(&app, body).await?))
}
