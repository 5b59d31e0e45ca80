//! UI settings (spec 01 §4). MQTT client settings live with the MQTT service.

use serde::Serialize;

use crate::error::AppResult;
use crate::service::auth::keys;
use crate::state::AppState;
use crate::store::settings as kv;

/// Supported locales.
pub const LOCALES: [&str; 2] = ["zh-CN", "en-US"];
/// Supported theme modes.
pub const THEMES: [&str; 3] = ["system", "light", "dark"];
/// Default locale.
pub const DEFAULT_LOCALE: &str = "zh-CN";
/// Default theme.
pub const DEFAULT_THEME: &str = "system";

/// `{locale, theme_mode}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UiSettings {
    /// Locale.
    pub locale: String,
    /// Theme mode.
    pub theme_mode: String,
}

/// Reads UI settings; invalid or missing stored values read as defaults.
pub async fn get_ui(app: &AppState) -> AppResult<UiSettings> {
    let rows = kv::get_many(&app.db, &[keys::UI_LOCALE, keys::UI_THEME_MODE]).await?;
    let get = |k: &str| rows.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let locale = get(keys::UI_LOCALE).filter(|v| LOCALES.contains(&v.as_str())).unwrap_or_else(|| DEFAULT_LOCALE.into());
    let theme_mode = get(keys::UI_THEME_MODE).filter(|v| THEMES.contains(&v.as_str())).unwrap_or_else(|| DEFAULT_THEME.into());
    Ok(UiSettings { locale, theme_mode })
}

/// Stores UI settings (values already validated). No SSE (spec 01 §4).
pub async fn put_ui(app: &AppState, ui: UiSettings) -> AppResult<UiSettings> {
    let mut tx = app.db.begin().await?;
    kv::set(&mut tx, keys::UI_LOCALE, &ui.locale).await?;
    kv::set(&mut tx, keys::UI_THEME_MODE, &ui.theme_mode).await?;
    tx.commit().await?;
    Ok(ui)
}
