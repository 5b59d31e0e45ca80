//! Envelope, JSON body extraction with the upstream 422 rules, and the admin-auth middleware.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{AppError, ErrorCode};
use crate::service::auth::{self, Principal};
use crate::state::AppState;
use crate::validate;

/// `{"success": true, "data": ...}` with HTTP 200.
pub struct ApiOk<T>(pub T);

impl<T: Serialize> IntoResponse for ApiOk<T> {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Env<'a, T> {
            success: bool,
            data: &'a T,
        }
        axum::Json(Env { success: true, data: &self.0 }).into_response()
    }
}

/// Handler result.
pub type ApiResult<T> = Result<ApiOk<T>, AppError>;

/// A JSON body: invalid JSON, missing fields and type errors become 422 `VALIDATION_ERROR`
/// with the upstream message rules; an over-size body is 413.
pub struct ApiJson<T>(pub T);

fn is_json_or_untyped(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(ct) => {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json") || ct.contains("+json") || ct.starts_with("text/plain")
        }
    }
}

/// Parses JSON syntax; errors with the 422 for invalid JSON.
pub fn parse_json_syntax(bytes: &[u8]) -> Result<serde_json::Value, AppError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(validate::errors(vec![validate::FieldError::standard("missing", vec!["body".into()], "is required")]));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let mut fe = validate::FieldError::standard("json_invalid", vec!["body".into(), e.column().to_string()], "is invalid");
        fe.msg = format!("JSON decode error: {e}");
        fe.display = "Field is invalid".into();
        validate::errors(vec![fe])
    })
}

/// A request body must be a JSON object: serde would otherwise fill a struct from an array
/// (`["start"]` read as `{"action": "start"}`), which the upstream schemas reject with 422.
pub fn require_object(value: &serde_json::Value) -> Result<(), AppError> {
    if value.is_object() {
        return Ok(());
    }
    let mut e = validate::FieldError::standard("model_attributes_type", vec!["body".into()], "is invalid");
    e.msg = "Input should be a valid dictionary or object to extract fields from".into();
    Err(validate::errors(vec![e]))
}

/// Deserialises a JSON value into `T` with path-aware 422 errors.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        validate::from_serde(&path, e.inner())
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(ErrorCode::PayloadTooLarge, "Request body is too large")
            } else {
                AppError::new(ErrorCode::ValidationError, "Field is invalid")
            }
        })?;
        let value = parse_json_syntax(&bytes)?;
        require_object(&value)?;
        Ok(ApiJson(from_value(value)?))
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    auth::bearer_token(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
}

/// Middleware for `S` routes. Order (spec 01 §1): a body that is not valid JSON fails 422
/// first, then auth (428 before 401), then the handler's schema checks. The checked
/// [`Principal`] is put in the request extensions.
pub async fn require_admin(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let has_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let body = if has_body && is_json_or_untyped(&parts.headers) {
        let bytes = match axum::body::to_bytes(body, app.settings.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => return AppError::new(ErrorCode::PayloadTooLarge, "Request body is too large").into_response(),
        };
        if !bytes.iter().all(|b| b.is_ascii_whitespace())
            && let Err(e) = parse_json_syntax(&bytes)
        {
            return e.into_response();
        }
        Body::from(bytes)
    } else {
        body
    };
    match auth::require_admin(&app, bearer(&parts.headers)).await {
        Ok(p) => {
            parts.extensions.insert::<Principal>(p);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    }
}

/// Turns a panic in a handler into a 500 envelope instead of a dropped connection.
pub async fn catch_panics(req: Request, next: Next) -> Response {
    match std::panic::AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => AppError::internal("handler panicked").into_response(),
    }
}
