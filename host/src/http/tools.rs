//! `/api/v1/tools`: the plugin tool catalogue, tool calls and stored files. Paths are chosen so
//! they never collide with the upstream-compatible `/tools/download/*` and
//! `/tools/port-forwards/*` routes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::extract::{ApiOk, ApiResult, parse_json_syntax};
use crate::error::AppError;
use crate::service::tools::{self, CallResult, Caller, Catalogue, PluginStatus};
use crate::state::AppState;

/// Admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tools", get(list))
        .route("/tools/plugins", get(plugins))
        .route("/tools/call/{plugin_id}/{tool}", post(call))
        .route("/tools/files/{file_id}", get(file))
}

async fn list(State(app): State<AppState>) -> ApiResult<Catalogue> {
    Ok(ApiOk(tools::catalogue(&app)))
}

async fn plugins(State(app): State<AppState>) -> ApiResult<Vec<PluginStatus>> {
    Ok(ApiOk(tools::catalogue(&app).plugins))
}

async fn call(State(app): State<AppState>, Path((plugin_id, tool)): Path<(String, String)>, body: Bytes) -> ApiResult<CallResult> {
    // An empty body means "no arguments".
    let input = if body.iter().all(u8::is_ascii_whitespace) { Value::Object(Default::default()) } else { parse_json_syntax(&body)? };
    Ok(ApiOk(tools::call(&app, &Caller::admin(), &plugin_id, &tool, input).await?))
}

async fn file(State(app): State<AppState>, Path(file_id): Path<String>) -> Result<Response, AppError> {
    let f = tools::file(&app, &file_id).await?;
    let mut resp = f.content.into_response();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&f.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let safe: String = f.filename.chars().filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\').collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", f.sha256)) {
        headers.insert(header::ETAG, v);
    }
    Ok(resp)
}
