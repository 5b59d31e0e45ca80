//! Per-node config downloads (spec 01 §7.5 download rows, §9 node token): the package the
//! console shows, a short-lived node-scoped download token, and the `.conf` it unlocks.
//!
//! The downloadable text is the server-side staged ("applied") config, the same text the
//! bulk packages and pushes use; a node with nothing staged has nothing to download yet.

use serde::Serialize;
use serde_json::json;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{auth, configs, nodes};
use crate::state::AppState;
use crate::store::configs::ConfigRow;
use crate::store::nodes::{self as node_store, NodeRow};
use crate::store::config_state;

/// Permission carried by node-config download tokens.
pub const PERMISSION: &str = "config.node.download";

/// The file a node downloads.
#[derive(Debug, Clone, Serialize)]
pub struct Package {
    pub config_id: String,
    pub config_name: String,
    pub node_id: String,
    pub node_name: String,
    /// `<config name>.conf`: wg-quick names the interface after the file, which is why config
    /// names follow the interface-name rules.
    pub filename: String,
    pub content: String,
    pub staged_version: i64,
    pub staged_sha256: String,
    /// Path of the token-protected download (without the token).
    pub download_path: String,
}

/// A node-config download token (spec 01 §9).
#[derive(Debug, Clone, Serialize)]
pub struct DownloadToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_at: String,
    pub filename: String,
    pub download_path: String,
}

fn conf_path(config_id: &str, node_id: &str) -> String {
    format!("/api/v1/configs/{config_id}/nodes/{node_id}/download-conf")
}

/// The config and node of a `/configs/{c}/nodes/{n}/…` path, checked to belong together.
async fn pair(app: &AppState, config_id: &str, node_id: &str) -> AppResult<(ConfigRow, NodeRow)> {
    let config = configs::load(app, config_id).await?;
    let node = node_store::get(&app.db, node_id).await?.ok_or_else(|| nodes::node_not_found(node_id))?;
    if node.config_id != config_id {
        return Err(AppError::new(ErrorCode::NodeConfigMismatch, "Node does not belong to this config")
            .with("config_id", config_id)
            .with("node_id", node_id));
    }
    Ok((config, node))
}

fn disabled(node_id: &str) -> AppError {
    AppError::new(ErrorCode::NodeDisabled, "Node is disabled").with("node_id", node_id)
}

/// `GET N/download-package`.
pub async fn package(app: &AppState, config_id: &str, node_id: &str) -> AppResult<Package> {
    let (config, node) = pair(app, config_id, node_id).await?;
    if !node.enabled {
        return Err(disabled(node_id));
    }
    let state = config_state::get(&app.db, node_id).await?.unwrap_or_default();
    Ok(Package {
        config_id: config.id.clone(),
        config_name: config.name.clone(),
        node_id: node.id.clone(),
        node_name: node.name.clone(),
        filename: format!("{}.conf", config.name),
        content: state.staged_text,
        staged_version: state.staged_version,
        staged_sha256: state.staged_sha256,
        download_path: conf_path(config_id, node_id),
    })
}

/// `POST N/download-token`.
pub async fn token(app: &AppState, config_id: &str, node_id: &str) -> AppResult<DownloadToken> {
    let (config, node) = pair(app, config_id, node_id).await?;
    if !node.enabled {
        return Err(disabled(node_id));
    }
    let (access_token, expires_at) =
        auth::issue_download_token(app, PERMISSION, json!({"config_id": config_id, "node_id": node_id})).await?;
    Ok(DownloadToken {
        download_path: format!("{}?download_token={access_token}", conf_path(config_id, node_id)),
        access_token,
        token_type: "download",
        expires_at,
        filename: format!("{}.conf", config.name),
    })
}

/// `GET N/download-conf` with a node download token (a session token is not accepted):
/// returns `(filename, text)`.
pub async fn conf(app: &AppState, config_id: &str, node_id: &str, token: Option<&str>) -> AppResult<(String, String)> {
    let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| {
        AppError::new(ErrorCode::DownloadTokenRequired, "Download token required")
    })?;
    let resource = auth::verify_download_token(app, token, PERMISSION).await?;
    let bound = |k: &str| resource.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    if bound("config_id") != config_id || bound("node_id") != node_id {
        return Err(AppError::new(ErrorCode::DownloadTokenScopeMismatch, "Download token is bound to another node"));
    }
    let (config, node) = pair(app, config_id, node_id).await?;
    if !node.enabled {
        return Err(disabled(node_id));
    }
    let state = config_state::get(&app.db, node_id).await?.unwrap_or_default();
    if state.staged_text.trim().is_empty() || state.staged_sha256.is_empty() {
        return Err(AppError::new(ErrorCode::NoStagedConfig, "Node has no staged config to download").with("node_id", node_id));
    }
    Ok((format!("{}.conf", config.name), state.staged_text))
}
