//! `/api/v1/auth` (spec 01 §3).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::extract::{ApiJson, ApiOk, ApiResult, bearer};
use crate::error::AppError;
use crate::service::auth::{self, AuthStateView, SetupInput, TokenSession};
use crate::service::settings::{DEFAULT_LOCALE, LOCALES};
use crate::state::AppState;
use crate::validate;

/// Client address of the connection (not of `X-Forwarded-For`, which a client can forge).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

/// Public auth routes.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/auth/state", get(state))
        .route("/auth/session", get(state))
        .route("/auth/setup", post(setup))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
}

/// Admin auth routes.
pub fn admin_routes() -> Router<AppState> {
    Router::new().route("/auth/password", post(change_password))
}

async fn state(State(app): State<AppState>, headers: HeaderMap) -> ApiResult<AuthStateView> {
    Ok(ApiOk(auth::state(&app, bearer(&headers)).await?))
}

#[derive(Deserialize)]
struct SetupBody {
    password: String,
    #[serde(default)]
    locale: Option<String>,
}

/// Password rule shared by setup and password change: length in characters, not
/// whitespace-only, never trimmed.
pub fn check_password(field: &str, value: &str, min: usize, max: usize) -> Result<(), AppError> {
    validate::not_blank(field, value, min, max)
}

/// Locale rule: trimmed, blank → default, else one of the supported values.
pub fn check_locale(value: Option<String>) -> Result<String, AppError> {
    let v = value.map(|s| s.trim().to_string()).unwrap_or_default();
    if v.is_empty() {
        return Ok(DEFAULT_LOCALE.into());
    }
    if LOCALES.contains(&v.as_str()) { Ok(v) } else { Err(validate::field_custom("locale", "Unsupported locale")) }
}

async fn setup(State(app): State<AppState>, ApiJson(body): ApiJson<SetupBody>) -> ApiResult<TokenSession> {
    check_password("password", &body.password, 6, 256)?;
    let locale = check_locale(body.locale)?;
    Ok(ApiOk(auth::setup(&app, SetupInput { password: body.password, locale }).await?))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(State(app): State<AppState>, ClientIp(ip): ClientIp, ApiJson(body): ApiJson<LoginBody>) -> ApiResult<TokenSession> {
    let username = body.username.trim().to_string();
    validate::str_len("username", &username, 1, 64)?;
    check_password("password", &body.password, 1, 256)?;
    Ok(ApiOk(auth::login(&app, ip, &username, body.password).await?))
}

async fn logout() -> ApiResult<serde_json::Value> {
    Ok(ApiOk(json!({"message": "Logged out"})))
}

/// Body of a password change.
#[derive(Deserialize)]
pub struct PasswordChangeBody {
    /// Current password.
    pub current_password: String,
    /// New password.
    pub new_password: String,
}

/// Shared by `/auth/password` and `/settings/password` (`max_new` differs: spec 01 §4).
pub async fn do_change_password(app: &AppState, ip: IpAddr, body: PasswordChangeBody, max: usize) -> ApiResult<TokenSession> {
    check_password("current_password", &body.current_password, 1, max)?;
    check_password("new_password", &body.new_password, 6, max)?;
    Ok(ApiOk(auth::change_password(app, ip, body.current_password, body.new_password).await?))
}

async fn change_password(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<PasswordChangeBody>,
) -> ApiResult<TokenSession> {
    do_change_password(&app, ip, body, 256).await
}
