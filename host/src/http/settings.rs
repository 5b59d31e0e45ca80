//! `/api/v1/settings` UI and password (spec 01 §4).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;

use super::auth::{ClientIp, PasswordChangeBody, check_locale, do_change_password};
use super::extract::{ApiJson, ApiOk, ApiResult};
use crate::service::auth::TokenSession;
use crate::service::settings::{self, DEFAULT_THEME, THEMES, UiSettings};
use crate::state::AppState;
use crate::validate;

/// Admin settings routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/settings/ui", get(get_ui).put(put_ui)).route("/settings/password", post(password))
}

async fn get_ui(State(app): State<AppState>) -> ApiResult<UiSettings> {
    Ok(ApiOk(settings::get_ui(&app).await?))
}

#[derive(Deserialize)]
struct UiBody {
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    theme_mode: Option<String>,
}

async fn put_ui(State(app): State<AppState>, ApiJson(body): ApiJson<UiBody>) -> ApiResult<UiSettings> {
    let locale = check_locale(body.locale)?;
    let theme = body.theme_mode.map(|s| s.trim().to_string()).unwrap_or_default();
    let theme_mode = if theme.is_empty() {
        DEFAULT_THEME.to_string()
    } else if THEMES.contains(&theme.as_str()) {
        theme
    } else {
        return Err(validate::field_custom("theme_mode", "Unsupported theme mode"));
    };
    Ok(ApiOk(settings::put_ui(&app, UiSettings { locale, theme_mode }).await?))
}

async fn password(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<PasswordChangeBody>,
) -> ApiResult<TokenSession> {
    // Upstream has no 256-character maximum on this route; keep a generous bound anyway.
    do_change_password(&app, ip, body, 4096).await
}
