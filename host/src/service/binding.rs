//! Client binding and broker access (spec 03 §2, §9.5): bind commands, the bind call,
//! reset-client, the revoke/restore triggers of §2.5, and the full reconcile.
//!
//! Other services call the hooks after their commit: [`on_node_changed`] (create, update,
//! delete of a node), [`on_config_changed`] (enabled toggled), [`on_config_deleted`],
//! [`on_snapshot_restored`]. Each updates the in-memory authz table before returning, so
//! the broker's authz callback is right from the moment the write is visible.

use std::collections::HashMap;

use chrono::Duration as ChronoDuration;
use serde::Deserialize;
use serde_json::{Value, json};
use wfm_mqtt_proto::topic::{node_publish_topics, node_subscribe_topics};

use crate::broker::NodeCredential;
use crate::broker::authz::NodeAuth;
use crate::broker::reconcile::{ReconcileReport, reconcile};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::mqtt_settings::{effective, require_enabled};
use crate::state::AppState;
use crate::store::client_state::{self, AuthRow, BindWrite, NodeFacts};
use crate::store::{config_state, runtime};

/// Bind token lifetime.
pub const BIND_TOKEN_MINUTES: i64 = 5;
/// Linux interface names are at most 15 bytes.
pub const IFNAME_MAX: usize = 15;

/// Interface name rule (spec 03 open point): `<config name>-<node name>`, characters outside
/// `[A-Za-z0-9_=+.-]` replaced by `-`, cut to 15 characters (the Linux limit), `wfm0` if empty.
pub fn interface_name(config_name: &str, node_name: &str) -> String {
    let raw = format!("{config_name}-{node_name}");
    let s: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_=+.-".contains(c) { c } else { '-' })
        .take(IFNAME_MAX)
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "wfm0".into() } else { s }
}

async fn node_in_config(app: &AppState, config_id: &str, node_id: &str) -> AppResult<NodeFacts> {
    if client_state::config_enabled(&app.db, config_id).await?.is_none() {
        return Err(AppError::new(ErrorCode::ConfigNotFound, "Config not found").with("config_id", config_id));
    }
    let Some(f) = client_state::node_facts(&app.db, node_id).await? else {
        return Err(AppError::new(ErrorCode::NodeNotFound, "Node not found").with("node_id", node_id));
    };
    if f.config_id != config_id {
        return Err(AppError::new(ErrorCode::NodeConfigMismatch, "Node does not belong to this config")
            .with("config_id", config_id)
            .with("node_id", node_id));
    }
    Ok(f)
}

fn node_disabled(node_id: &str) -> AppError {
    AppError::new(ErrorCode::NodeDisabled, "Node is disabled").with("node_id", node_id)
}

/// `POST .../bind-command`: a 5-minute one-shot token (only its hash is stored).
pub async fn bind_command(app: &AppState, config_id: &str, node_id: &str, server_url: &str, request_base: &str) -> AppResult<Value> {
    require_enabled(app)?;
    let f = node_in_config(app, config_id, node_id).await?;
    if !f.node_enabled {
        return Err(node_disabled(node_id));
    }
    if !f.is_dynamic() {
        return Err(AppError::new(ErrorCode::ClientBindStaticNode, "Static nodes cannot be bound").with("node_id", node_id));
    }
    let server = if server_url.trim().is_empty() { request_base } else { server_url.trim() };
    let server = server.trim_end_matches('/').to_string();
    let token = crate::util::random_token::<32>();
    let expires = crate::util::now() + ChronoDuration::minutes(BIND_TOKEN_MINUTES);
    let expires_at = crate::util::iso(expires);
    let mut tx = app.db.begin().await?;
    client_state::set_bind_token(&mut tx, node_id, config_id, &crate::util::sha256_hex(&token), &expires_at).await?;
    tx.commit().await?;
    Ok(json!({
        "command": format!("wfmctl bind --server \"{server}\" --token \"{token}\""),
        "token": token,
        "expires_at": expires_at,
    }))
}

/// Body of the bind call.
#[derive(Debug, Deserialize)]
pub struct BindRequest {
    pub token: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub client_version: String,
}

fn clip(s: &str, n: usize) -> String {
    s.trim().chars().take(n).collect()
}

fn ca_path(app: &AppState) -> &std::path::Path {
    &app.settings.mqtt_ca_file
}

/// `POST /api/client/v1/bind`.
pub async fn bind(app: &AppState, req: BindRequest) -> AppResult<Value> {
    require_enabled(app)?;
    let hash = crate::util::sha256_hex(req.token.trim());
    let mut tx = app.db.begin().await?;
    let Some(row) = client_state::find_by_token_hash(&mut tx, &hash).await? else {
        return Err(AppError::new(ErrorCode::ClientBindTokenInvalid, "Bind token is invalid"));
    };
    if row.bind_token_used_at.is_some() {
        return Err(AppError::new(ErrorCode::ClientBindTokenUsed, "Bind token was already used"));
    }
    let expired = row.bind_token_expires_at.as_deref().and_then(crate::util::parse_iso).is_none_or(|t| t <= crate::util::now());
    if expired {
        return Err(AppError::new(ErrorCode::ClientBindTokenExpired, "Bind token has expired"));
    }
    let Some(f) = client_state::node_facts_tx(&mut tx, &row.node_id).await? else {
        return Err(AppError::new(ErrorCode::ClientBindTokenInvalid, "Bind token is invalid"));
    };
    if !f.is_dynamic() || !f.node_enabled || !f.config_enabled {
        return Err(AppError::new(ErrorCode::ClientBindNotAllowed, "This node may not bind a client"));
    }
    let mqtt = effective(app).await?;
    let ca_cert = if mqtt.tls {
        match tokio::fs::read_to_string(ca_path(app)).await {
            Ok(pem) if !pem.trim().is_empty() => Some(pem.trim().to_string()),
            _ => return Err(AppError::new(ErrorCode::MqttTlsCaNotReady, "MQTT TLS CA certificate is not available")),
        }
    } else {
        None
    };
    let password = crate::util::random_token::<32>();
    let username = f.node_id.clone();
    let client_id = wfm_mqtt_proto::client_id(&f.node_id);
    let (hostname, platform, version) = (clip(&req.hostname, 128), clip(&req.platform, 64), clip(&req.client_version, 64));
    client_state::complete_bind(
        &mut tx,
        &f.node_id,
        &BindWrite { platform: &platform, version: &version, hostname: &hostname, username: &username, client_id: &client_id, password: &password },
    )
    .await?;
    runtime::ensure(&mut tx, &f.node_id, &f.config_id).await?;
    let desired_conf = config_state::get_tx(&mut tx, &f.node_id).await?.map(|c| c.staged_text).unwrap_or_default();
    tx.commit().await?;
    refresh_node(app, &f.node_id).await;
    // Best effort (spec 03 §2.2 step 3): a broker failure neither fails nor undoes the bind.
    if let Some(b) = app.mqtt.broker() {
        let cred = NodeCredential {
            config_id: f.config_id.clone(),
            node_id: f.node_id.clone(),
            username: username.clone(),
            password: password.clone(),
            client_id: client_id.clone(),
        };
        if let Err(e) = b.upsert_node(&cred).await {
            tracing::warn!(node_id = %f.node_id, error = %e, "bind: broker user sync failed; reconcile will retry");
        }
    }
    crate::service::endpoint::publish_runtime_events(app, &f.config_id, &f.node_id).await;
    let iface = interface_name(&f.config_name, &f.node_name);
    Ok(json!({
        "profile": {
            "profile_id": wfm_mqtt_proto::profile_id(&f.config_id, &f.node_id),
            "server_url": "",
            "config_id": f.config_id, "config_name": f.config_name,
            "node_id": f.node_id, "node_name": f.node_name,
            "interface_name": iface,
            "hostname": hostname, "platform": platform, "client_version": version,
        },
        "mqtt": {
            "host": mqtt.host, "port": mqtt.port, "tls": mqtt.tls, "ca_cert": ca_cert,
            "username": username, "password": password, "client_id": client_id,
            "topics": {
                "subscribe": node_subscribe_topics(&f.config_id, &f.node_id),
                "publish": node_publish_topics(&f.config_id, &f.node_id),
            },
        },
        "desired_conf": desired_conf,
    }))
}

/// Wipes client + runtime rows (reason given) in one transaction.
async fn wipe(app: &AppState, f: &NodeFacts, reason: &str) -> AppResult<()> {
    let mut tx = app.db.begin().await?;
    client_state::ensure(&mut tx, &f.node_id, &f.config_id).await?;
    client_state::reset(&mut tx, &f.node_id).await?;
    runtime::apply(&mut tx, &f.node_id, &f.config_id, &runtime::reset_write(reason)).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST .../reset-client`.
pub async fn reset_client(app: &AppState, config_id: &str, node_id: &str) -> AppResult<Value> {
    let f = node_in_config(app, config_id, node_id).await?;
    if !f.node_enabled {
        return Err(node_disabled(node_id));
    }
    require_enabled(app)?;
    wipe(app, &f, "client-reset").await?;
    refresh_node(app, node_id).await;
    if let Some(b) = app.mqtt.broker() {
        b.revoke(node_id).await;
    }
    crate::service::endpoint::publish_runtime_events(app, config_id, node_id).await;
    let state = crate::service::endpoint::client_state_json(app, &f).await?;
    Ok(json!({ "client_state": state }))
}

fn auth_of(r: &AuthRow) -> NodeAuth {
    NodeAuth {
        config_id: r.config_id.clone(),
        dynamic: r.node_type == "dynamic",
        node_enabled: r.node_enabled,
        config_enabled: r.config_enabled,
        client_initialized: r.client_initialized.unwrap_or(false),
        mqtt_username: r.mqtt_username.clone().unwrap_or_default(),
        mqtt_client_id: r.mqtt_client_id.clone().unwrap_or_default(),
    }
}

fn restorable(r: &AuthRow) -> Option<NodeCredential> {
    let a = auth_of(r);
    let pw = r.mqtt_password.clone().unwrap_or_default();
    if a.client_initialized && a.dynamic && a.node_enabled && a.config_enabled && !a.mqtt_username.is_empty() && !a.mqtt_client_id.is_empty() && !pw.is_empty() {
        Some(NodeCredential {
            config_id: r.config_id.clone(),
            node_id: r.node_id.clone(),
            username: a.mqtt_username,
            password: pw,
            client_id: a.mqtt_client_id,
        })
    } else {
        None
    }
}

/// Reloads the whole authz table from the database.
pub async fn reload_authz(app: &AppState) -> AppResult<Vec<AuthRow>> {
    let _order = app.mqtt.authz_sync.lock().await;
    let rows = client_state::auth_rows(&app.db).await?;
    let map: HashMap<String, NodeAuth> = rows.iter().map(|r| (r.node_id.clone(), auth_of(r))).collect();
    app.mqtt.authz.replace_all(map);
    Ok(rows)
}

/// Refreshes one node's authz record from the database.
pub async fn refresh_node(app: &AppState, node_id: &str) {
    let _order = app.mqtt.authz_sync.lock().await;
    match client_state::auth_row(&app.db, node_id).await {
        Ok(Some(r)) => app.mqtt.authz.set_node(node_id, auth_of(&r)),
        Ok(None) => app.mqtt.authz.remove_node(node_id),
        Err(e) => {
            // Fail closed: without a fresh record the node is denied until the next reload.
            tracing::warn!(node_id, error = %e, "authz refresh failed; denying the node until reload");
            app.mqtt.authz.remove_node(node_id);
        }
    }
}

/// Full reconcile (spec 03 §9.5): authz table and broker users from the database.
pub async fn reconcile_all(app: &AppState) -> ReconcileReport {
    let rows = match reload_authz(app).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e.message, "reconcile: loading credentials failed");
            return ReconcileReport { enabled: app.mqtt.enabled, server_users_failed: 1, ..Default::default() };
        }
    };
    let expected: Vec<NodeCredential> = rows.iter().filter_map(restorable).collect();
    match app.mqtt.broker() {
        Some(b) => reconcile(&b, app.mqtt.enabled, &expected).await,
        None => ReconcileReport { enabled: app.mqtt.enabled, mqtt_credentials: expected.len(), ..Default::default() },
    }
}

fn spawn_reconcile(app: &AppState) {
    let app = app.clone();
    tokio::spawn(async move {
        let r = reconcile_all(&app).await;
        tracing::debug!(report = ?r, "reconcile after a model change");
    });
}

/// What a node was before a write (for [`on_node_changed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeBefore {
    pub dynamic: bool,
    pub enabled: bool,
}

/// Hook for node writes, called after commit. `before` is `None` for a new node.
pub async fn on_node_changed(app: &AppState, node_id: &str, before: Option<NodeBefore>) {
    let now = client_state::node_facts(&app.db, node_id).await.ok().flatten();
    let Some(f) = now else {
        // Deleted.
        {
            let _order = app.mqtt.authz_sync.lock().await;
            app.mqtt.authz.remove_node(node_id);
        }
        if before.is_none_or(|b| b.dynamic)
            && let Some(b) = app.mqtt.broker()
        {
            b.revoke(node_id).await;
        }
        return;
    };
    let mut revoke = false;
    let mut full = false;
    if let Some(b) = before {
        if b.dynamic && !f.is_dynamic() {
            if let Err(e) = wipe(app, &f, "static-node").await {
                tracing::warn!(node_id, error = %e.message, "resetting a node made static failed");
            }
            revoke = true;
        } else if !b.dynamic && f.is_dynamic() {
            if let Err(e) = wipe(app, &f, "dynamic-node-uninitialized").await {
                tracing::warn!(node_id, error = %e.message, "resetting a node made dynamic failed");
            }
            full = true;
        }
        if b.enabled && !f.node_enabled {
            revoke = true;
        } else if !b.enabled && f.node_enabled {
            full = true;
        }
    }
    refresh_node(app, node_id).await;
    if revoke && let Some(b) = app.mqtt.broker() {
        b.revoke(node_id).await;
    }
    if full {
        spawn_reconcile(app);
    }
    if revoke || full {
        crate::service::endpoint::publish_runtime_events(app, &f.config_id, node_id).await;
    }
}

/// Hook for config writes that toggle `enabled` (or change the protocol: pass `previous`).
pub async fn on_config_changed(app: &AppState, config_id: &str, previous_protocol: Option<&str>) {
    if let Some(p) = previous_protocol {
        app.mqtt.remember_previous_protocol(config_id, p);
    }
    {
        let _order = app.mqtt.authz_sync.lock().await;
        let enabled = client_state::config_enabled(&app.db, config_id).await.ok().flatten();
        match enabled {
            Some(en) => app.mqtt.authz.update_config(config_id, |n| n.config_enabled = en),
            None => app.mqtt.authz.remove_config(config_id),
        }
    }
    spawn_reconcile(app);
}

/// Hook for config deletion.
pub async fn on_config_deleted(app: &AppState, config_id: &str) {
    {
        let _order = app.mqtt.authz_sync.lock().await;
        app.mqtt.authz.remove_config(config_id);
    }
    spawn_reconcile(app);
}

/// Hook for snapshot restore: everything offline, full reconcile.
pub async fn on_snapshot_restored(app: &AppState) -> AppResult<ReconcileReport> {
    let mut tx = app.db.begin().await?;
    client_state::all_offline(&mut tx).await?;
    runtime::all_offline(&mut tx, "snapshot-restore").await?;
    tx.commit().await?;
    Ok(reconcile_all(app).await)
}

#[cfg(test)]
mod tests {
    use super::interface_name;

    #[test]
    fn interface_names() {
        assert_eq!(interface_name("mesh", "a"), "mesh-a");
        assert_eq!(interface_name("main", "node a/b"), "main-node-a-b");
        assert_eq!(interface_name("averyverylongconfig", "node"), "averyverylongco");
        assert_eq!(interface_name("", ""), "wfm0");
    }
}
