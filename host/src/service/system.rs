//! System health, status and timezone (spec 04 §5, spec 01 §5).
//!
//! Fields that depend on features not present report their real current state: the MQTT
//! ingress is `disabled` when MQTT services are off and `unavailable` until a broker
//! connection exists; the update check is off unless a release feed is configured.

use serde_json::{Value, json};

use crate::error::AppResult;
use crate::state::AppState;
use crate::store::status;
use crate::util;

/// Service name reported by health.
pub const SERVICE_NAME: &str = "WG Free Mesh API";
/// Backend version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GET /system/health`.
pub fn health(app: &AppState) -> Value {
    json!({
        "status": "ok",
        "service": SERVICE_NAME,
        "version": VERSION,
        "timestamp": util::now_iso(),
        "timezone": app.settings.timezone.name(),
        "dev_test_api_enabled": app.settings.enable_dev_test_api,
        "mqtt_services_enabled": app.settings.enable_mqtt_services,
    })
}

/// `GET /system/timezone`.
pub fn timezone(app: &AppState) -> Value {
    json!({ "timezone": app.settings.timezone.name() })
}

/// `system.clock.sync` payload.
pub fn clock(app: &AppState) -> Value {
    json!({ "timestamp": util::now_iso(), "timezone": app.settings.timezone.name() })
}

/// Status of the MQTT ingress as shown in `services.mqtt`: `disabled`, `connecting`,
/// `connected` or `error`.
pub fn mqtt_status(app: &AppState) -> String {
    if !app.settings.enable_mqtt_services { "disabled".into() } else { app.mqtt.status().status }
}

/// `GET /system/status` (also the `system.status.updated` payload).
pub async fn status(app: &AppState) -> AppResult<Value> {
    let (summary, db_ok) = match status::summary(&app.db).await {
        // With MQTT services off every node is presented as static (spec 02 §2.2).
        Ok(s) if !app.settings.enable_mqtt_services => (status::Summary { dynamic_nodes: 0, online_nodes: 0, ..s }, true),
        Ok(s) => (s, true),
        Err(e) => {
            tracing::warn!(error = %e, "status summary failed");
            (status::Summary::default(), false)
        }
    };
    let topology = match crate::service::projections::system_topology(app).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "topology section failed");
            json!({"valid": true, "invalid_config_count": 0, "invalid_node_count": 0, "invalid_configs": []})
        }
    };
    let sync_issues = sync_issues(app, &topology).await;
    Ok(json!({
        "summary": summary,
        "sync": { "issue_count": sync_issues.len(), "issues": sync_issues },
        "topology": topology,
        "services": {
            "database": if db_ok { "ok" } else { "error" },
            "mqtt": mqtt_status(app),
            "wireguard": "deferred",
        },
        "update": {
            "has_update": false,
            "current_version": VERSION,
            "latest_version": null,
            "is_prerelease": false,
            "release_url": null,
            "name": null,
            "published_at": null,
        },
        "timestamp": util::now_iso(),
    }))
}

/// `sync.issues`: enabled auto-sync nodes of enabled configs whose apply status is not
/// `in_sync` (spec 04 §5), with their config's topology verdict.
async fn sync_issues(app: &AppState, topology: &Value) -> Vec<Value> {
    let rows = match status::sync_candidates(&app.db).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "sync issues failed");
            return Vec::new();
        }
    };
    let invalid: std::collections::HashMap<&str, &Value> = topology["invalid_configs"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| Some((c["config_id"].as_str()?, &c["errors"]))).collect())
        .unwrap_or_default();
    let mqtt = app.settings.enable_mqtt_services;
    rows.into_iter()
        .filter_map(|r| {
            let status = crate::service::sync::apply_status(&r.desired_sha256, &r.staged_sha256);
            if status == "in_sync" {
                return None;
            }
            let errors = invalid.get(r.config_id.as_str());
            Some(json!({
                "config_id": r.config_id,
                "config_name": r.config_name,
                "node_id": r.node_id,
                "node_name": r.node_name,
                "node_type": if mqtt { r.node_type.as_str() } else { "static" },
                "status": status,
                "topology_valid": errors.is_none(),
                "messages": errors.cloned().cloned().unwrap_or_else(|| json!([])),
            }))
        })
        .collect()
}
