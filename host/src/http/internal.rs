//! `/api/internal/emqx/authz` (spec 03 §9.3): EMQX's HTTP authorization source. Exempt from the
//! public source guard; protected by the shared key (constant-time check); answers the bare
//! `{"result": "allow"|"deny"}` body. Served from the in-memory engine: no database access.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use wfm_mqtt_proto::topic::Action;

use crate::error::{AppError, ErrorCode};
use crate::state::AppState;

/// Routes mounted at the root.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/internal/emqx/authz", post(authz))
}

#[derive(Deserialize)]
struct AuthzBody<'a> {
    #[serde(borrow)]
    username: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    clientid: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    topic: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    action: std::borrow::Cow<'a, str>,
}

const ALLOW: &[u8] = br#"{"result":"allow"}"#;
const DENY: &[u8] = br#"{"result":"deny"}"#;

fn json(status: StatusCode, body: &'static [u8]) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

async fn authz(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let key = headers.get("x-wfm-internal-key").map(|v| v.as_bytes()).unwrap_or(b"");
    if !app.mqtt.authz.key_matches(key) {
        return json(StatusCode::UNAUTHORIZED, br#"{"detail":"Unauthorized"}"#);
    }
    let parsed: Result<AuthzBody<'_>, _> = serde_json::from_slice(&body);
    let Ok(b) = parsed else {
        return AppError::new(ErrorCode::ValidationError, "username, clientid, topic and action are required").into_response();
    };
    let Some(action) = Action::parse(&b.action) else {
        return AppError::new(ErrorCode::ValidationError, "Action value is invalid").with("field", "action").into_response();
    };
    match app.mqtt.authz.decide(&b.username, &b.clientid, &b.topic, action) {
        crate::broker::authz::Decision::Allow => json(StatusCode::OK, ALLOW),
        crate::broker::authz::Decision::Deny => json(StatusCode::OK, DENY),
    }
}
