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
use crate::service::auth;
use crate::service::tools::{self, CallResult, Caller, Catalogue, PluginStatus};
use crate::state::AppState;

/// Admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tools", get(list))
        .route("/tools/plugins", get(plugins))
        .route("/tools/call/{plugin_id}/{tool}", post(call))
        .route("/tools/files/{file_id}/download-grant", post(file_grant))
}

/// Public routes with their own `S/FT` check.
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/tools/files/{file_id}", get(file))
}

/// Download-token kind of plugin-produced files.
const FILE_KIND: &str = "plugin_file";

/// `?download_token=`.
#[derive(serde::Deserialize)]
struct TokenQuery {
    download_token: Option<String>,
}

async fn file_grant(State(app): State<AppState>, Path(file_id): Path<String>) -> ApiResult<Value> {
    let f = tools::file(&app, &file_id).await?;
    let (token, expires_at) = auth::issue_file_token(&app, FILE_KIND, &f.id).await?;
    Ok(ApiOk(serde_json::json!({
        "file_id": f.id,
        "filename": f.filename,
        "download_token": token,
        "download_token_expires_at": expires_at,
        "token_type": "download",
        "download_path": format!("/api/v1/tools/files/{}?download_token={token}", f.id),
    })))
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

async fn file(
    State(app): State<AppState>,
    Path(file_id): Path<String>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<TokenQuery>,
) -> Result<Response, AppError> {
    // Setup pending: nothing can be downloaded (the same 428 as every `S` route).
    if auth::setup_required(&app).await? {
        return Err(AppError::new(crate::error::ErrorCode::AuthSetupRequired, "Admin password setup is required"));
    }
    auth::require_file_access(&app, super::extract::bearer(&headers), q.download_token.as_deref(), FILE_KIND, &file_id).await?;
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
