//! Per-node config download routes (spec 01 §7.5, §9): package and token need the admin
//! session; `download-conf` only takes the node token in `download_token`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::extract::{ApiOk, ApiResult};
use crate::service::downloads::{self, DownloadToken, Package};
use crate::state::AppState;

/// Admin routes.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/configs/{config_id}/nodes/{node_id}/download-package", get(package))
        .route("/configs/{config_id}/nodes/{node_id}/download-token", post(token))
}

/// Token-only route (mounted outside the admin middleware).
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/configs/{config_id}/nodes/{node_id}/download-conf", get(conf))
}

async fn package(State(app): State<AppState>, Path((c, n)): Path<(String, String)>) -> ApiResult<Package> {
    Ok(ApiOk(downloads::package(&app, &c, &n).await?))
}

async fn token(State(app): State<AppState>, Path((c, n)): Path<(String, String)>) -> ApiResult<DownloadToken> {
    Ok(ApiOk(downloads::token(&app, &c, &n).await?))
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    download_token: Option<String>,
}

async fn conf(State(app): State<AppState>, Path((c, n)): Path<(String, String)>, Query(q): Query<TokenQuery>) -> Response {
    match downloads::conf(&app, &c, &n, q.download_token.as_deref()).await {
        Ok((filename, text)) => {
            let mut resp = text.into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // Config names are limited to [A-Za-z0-9_=+.-], so the value needs no escaping.
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}
