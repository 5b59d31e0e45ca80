//! Console hosting and fallbacks: unknown `/api` paths answer a 404 envelope, wrong methods a
//! 405 envelope, everything else is served from the built console (`WFM_WEB_DIR`) with the SPA
//! fallback to `index.html`.

use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::{AppError, ErrorCode};
use crate::state::AppState;

fn is_api_path(path: &str) -> bool {
    let p = path.trim_start_matches('/');
    p == "api" || p.starts_with("api/") || p.starts_with("docs") || p.starts_with("redoc") || p == "mcp" || p.starts_with("mcp/")
}

/// Router fallback.
pub async fn fallback(State(app): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if is_api_path(&path) {
        return AppError::new(ErrorCode::NotFound, "Not Found").with("path", path).into_response();
    }
    let dir = &app.settings.web_dir;
    let index = dir.join("index.html");
    if !index.is_file() {
        return (
            StatusCode::NOT_FOUND,
            Html("<!doctype html><title>WFM</title><p>The WFM console is not built on this server. The API is under <code>/api/v1</code>.</p>"),
        )
            .into_response();
    }
    let svc = ServeDir::new(dir).fallback(ServeFile::new(index));
    let mut resp = match svc.oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(e) => return AppError::internal(e).into_response(),
    };
    if !path.starts_with("/assets/") {
        // index.html must not be cached, or a new deployment keeps serving stale bundles.
        resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    }
    resp
}

/// 405 for known paths with a wrong method.
pub async fn method_not_allowed(uri: Uri) -> Response {
    AppError::new(ErrorCode::MethodNotAllowed, "Method Not Allowed").with("path", uri.path()).into_response()
}
