//! Public source guard (Host / Origin) and CORS (spec 01 §10).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

use crate::config::{Settings, authority_of};
use crate::error::{AppError, ErrorCode};
use crate::state::AppState;

/// Decides whether a request passes the guard; `Err` carries the rejection.
pub fn check(settings: &Settings, path: &str, host: Option<&str>, origin: Option<&str>) -> Result<(), AppError> {
    if !settings.guard_active() || path.starts_with("/api/internal/") {
        return Ok(());
    }
    let host = host.map(authority_of).unwrap_or_default();
    if host != settings.public_origin_host() {
        return Err(AppError::new(ErrorCode::PublicHostRejected, "Request host is not allowed"));
    }
    let origin = origin.map(|o| o.trim().trim_end_matches('/')).unwrap_or("");
    if !origin.is_empty() && !settings.allowed_origins().iter().any(|a| a == origin) {
        return Err(AppError::new(ErrorCode::PublicOriginRejected, "Request origin is not allowed"));
    }
    Ok(())
}

/// Middleware form of [`check`].
pub async fn source_guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    // HTTP/2 carries the authority in the URI, not in a Host header.
    let host = host.or_else(|| req.uri().authority().map(|a| a.as_str()));
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match check(&app.settings, req.uri().path(), host, origin) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// CORS: allow-list = allowed origins, credentials allowed, all methods and headers.
pub fn cors_layer(settings: &Settings) -> CorsLayer {
    let origins: Vec<HeaderValue> = settings.allowed_origins().iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_source(&Env::from_pairs(pairs.iter().map(|(k, v)| (*k, v.to_string())))).unwrap()
    }

    #[test]
    fn rules() {
        let s = settings(&[
            ("WFM_PUBLIC_ORIGIN", "https://wfm.example.com"),
            ("WFM_EXTRA_ALLOWED_ORIGINS", r#"["http://localhost:5173"]"#),
        ]);
        let code = |p: &str, h: Option<&str>, o: Option<&str>| check(&s, p, h, o).err().map(|e| e.code);
        assert_eq!(code("/api/v1/x", Some("wfm.example.com"), None), None);
        assert_eq!(code("/api/v1/x", Some("WFM.example.com"), Some("https://wfm.example.com/")), None);
        assert_eq!(code("/api/v1/x", Some("wfm.example.com"), Some("http://localhost:5173")), None);
        assert_eq!(code("/api/v1/x", Some("evil.com"), None), Some(ErrorCode::PublicHostRejected));
        assert_eq!(code("/api/v1/x", Some("wfm.example.com:8443"), None), Some(ErrorCode::PublicHostRejected));
        assert_eq!(code("/api/v1/x", Some("localhost:5173"), None), Some(ErrorCode::PublicHostRejected));
        assert_eq!(code("/", Some("wfm.example.com"), Some("https://evil.com")), Some(ErrorCode::PublicOriginRejected));
        assert_eq!(code("/", Some("wfm.example.com"), Some("https://WFM.example.com")), Some(ErrorCode::PublicOriginRejected));
        assert_eq!(code("/api/internal/emqx/authz", Some("emqx"), None), None);
        let dev = settings(&[("WFM_PUBLIC_ORIGIN", "https://wfm.example.com"), ("WFM_ENABLE_DEV_TEST_API", "true")]);
        assert!(check(&dev, "/", Some("evil"), Some("https://evil")).is_ok());
    }
}
