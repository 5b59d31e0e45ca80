//! Sync / apply flow (spec 03 §8.2-8.4): sync status, the server "applied" text (staged),
//! staging one node or all, then the pending push to online agents.
//!
//! WFM keeps the staged text in the database only (`node_config_state.staged_text`); upstream's
//! server-side `.conf` file copy is not written, so `applied-conf.exists` means "staged text
//! present".

use serde_json::{Value, json};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::{endpoint, projections, render};
use crate::state::AppState;
use crate::store::client_state::{self, NodeFacts};
use crate::store::config_state::{self, ConfigState};
use crate::store::runtime::{self, RuntimeWrite};

/// [`endpoint::facts`], and the node must be enabled.
async fn facts(app: &AppState, config_id: &str, node_id: &str) -> AppResult<NodeFacts> {
    let f = endpoint::facts(app, config_id, node_id).await?;
    if !f.node_enabled {
        return Err(AppError::new(ErrorCode::NodeDisabled, "Node is disabled").with("node_id", node_id));
    }
    Ok(f)
}

/// `server_apply_status` / sync `status` of a node from its desired and staged hashes
/// (spec 03 §8.1). The one definition every projection uses.
pub fn apply_status(desired_sha256: &str, staged_sha256: &str) -> &'static str {
    if desired_sha256.is_empty() {
        "empty"
    } else if staged_sha256.is_empty() {
        "pending"
    } else if staged_sha256 == desired_sha256 {
        "in_sync"
    } else {
        "staged_outdated"
    }
}

async fn topology(app: &AppState, config_id: &str) -> AppResult<wfm_domain::topology::Analysis> {
    let Some(config) = crate::store::configs::get(&app.db, config_id).await? else {
        return Err(AppError::new(ErrorCode::ConfigNotFound, "Config not found").with("config_id", config_id));
    };
    projections::topology_summary(app, &config).await
}

async fn item(app: &AppState, f: &NodeFacts, topo: &wfm_domain::topology::Analysis) -> AppResult<Value> {
    render::ensure_desired(app, &f.node_id).await?;
    let cs = config_state::get(&app.db, &f.node_id).await?.unwrap_or_default();
    let rt = runtime::get(&app.db, &f.node_id).await?.unwrap_or_default();
    let valid = topo.errors.is_empty();
    let auto_sync = crate::store::nodes::get(&app.db, &f.node_id).await?.map(|n| n.auto_sync).unwrap_or(true);
    Ok(json!({
        "node_id": f.node_id, "node_name": f.node_name, "node_type": f.node_type, "auto_sync": auto_sync,
        "desired_version": cs.desired_version, "desired_sha256": cs.desired_sha256,
        "staged_version": cs.staged_version, "staged_sha256": cs.staged_sha256,
        "confirmed_version": cs.confirmed_version, "confirmed_sha256": cs.confirmed_sha256,
        "reported_local_sha256": cs.reported_local_sha256, "reported_local_version": cs.reported_local_version,
        "status": apply_status(&cs.desired_sha256, &cs.staged_sha256),
        "runtime_status": if rt.online { "online" } else { "offline" },
        "topology_valid": valid,
        "topology_messages": if valid { topo.warnings.clone() } else { topo.errors.clone() },
    }))
}

/// `GET /configs/{c}/sync-status`: enabled nodes.
pub async fn config_status(app: &AppState, config_id: &str) -> AppResult<Value> {
    let topo = topology(app, config_id).await?;
    let mut out = vec![];
    for f in client_state::config_node_facts(&app.db, config_id).await?.iter().filter(|f| f.node_enabled) {
        out.push(item(app, f, &topo).await?);
    }
    Ok(Value::Array(out))
}

/// `GET /configs/{c}/nodes/{n}/sync-status`.
pub async fn node_status(app: &AppState, config_id: &str, node_id: &str) -> AppResult<Value> {
    let f = facts(app, config_id, node_id).await?;
    let topo = topology(app, config_id).await?;
    item(app, &f, &topo).await
}

/// `GET .../applied-conf`.
pub async fn applied_conf(app: &AppState, config_id: &str, node_id: &str) -> AppResult<Value> {
    let f = facts(app, config_id, node_id).await?;
    let cs = config_state::get(&app.db, node_id).await?.unwrap_or_default();
    Ok(json!({
        "exists": !cs.staged_text.is_empty(), "content": cs.staged_text, "node_name": f.node_name,
        "node_type": f.node_type, "source": "server_applied",
        "desired_version": cs.desired_version, "staged_version": cs.staged_version,
    }))
}

async fn stage(app: &AppState, f: &NodeFacts, text: &str) -> AppResult<ConfigState> {
    let mut tx = app.db.begin().await?;
    let cs = stage_tx(&mut tx, f, text).await?;
    tx.commit().await?;
    Ok(cs)
}

/// Stages `text` for a node and marks its runtime `in_sync`, inside a write. Lock order: the
/// node row (key share, so a node or config delete waits for this write or this write for it),
/// then the runtime row, then the state slot, the order `PUT /nodes` takes the latter two in
/// (it resets the runtime, then marks state slots stale); other orders deadlocked against node
/// updates and deletes on PostgreSQL.
async fn stage_tx(tx: &mut crate::store::Tx, f: &NodeFacts, text: &str) -> AppResult<ConfigState> {
    if !crate::store::nodes::lock_key_tx(tx, &f.node_id).await? {
        return Err(AppError::new(ErrorCode::NodeNotFound, "Node not found").with("node_id", &f.node_id));
    }
    runtime::apply(tx, &f.node_id, &f.config_id, &RuntimeWrite { config_sync_state: Some("in_sync"), ..Default::default() }).await?;
    let cs = config_state::stage(tx, &f.node_id, text).await?.ok_or_else(|| AppError::internal("node has no config state row"))?;
    Ok(cs)
}


fn push_later(app: &AppState, config_id: &str) {
    let app = app.clone();
    let config_id = config_id.to_string();
    tokio::spawn(async move {
        endpoint::push_pending(&app, &config_id, "manual-sync").await;
    });
}

/// `PUT .../applied-conf`: stage the given text, return the node's sync status, push later.
pub async fn put_applied_conf(app: &AppState, config_id: &str, node_id: &str, content: &str) -> AppResult<Value> {
    let f = facts(app, config_id, node_id).await?;
    stage(app, &f, content).await?;
    let out = node_status(app, config_id, node_id).await?;
    push_later(app, config_id);
    Ok(out)
}

fn topology_invalid(topo: &wfm_domain::topology::Analysis) -> AppError {
    AppError::new(ErrorCode::TopologyInvalid, "Mesh topology is invalid").with("messages", &topo.errors)
}

/// `POST .../sync`: staged := desired.
pub async fn sync_node(app: &AppState, config_id: &str, node_id: &str) -> AppResult<Value> {
    let f = facts(app, config_id, node_id).await?;
    let topo = topology(app, config_id).await?;
    if !topo.errors.is_empty() {
        return Err(topology_invalid(&topo));
    }
    let desired = render::ensure_desired(app, node_id).await?.map(|d| d.desired_text).unwrap_or_default();
    let cs = stage(app, &f, &desired).await?;
    let status = item(app, &f, &topo).await?;
    push_later(app, config_id);
    Ok(json!({"message": "Node config synced", "staged_version": cs.staged_version, "staged_sha256": cs.staged_sha256, "sync_status": status}))
}

/// `POST /configs/{c}/sync-all`.
pub async fn sync_all(app: &AppState, config_id: &str) -> AppResult<Value> {
    let topo = topology(app, config_id).await?;
    if !topo.errors.is_empty() {
        return Err(topology_invalid(&topo));
    }
    let mut synced = vec![];
    for f in client_state::config_node_facts(&app.db, config_id).await?.iter().filter(|f| f.node_enabled) {
        let desired = render::ensure_desired(app, &f.node_id).await?.map(|d| d.desired_text).unwrap_or_default();
        stage(app, f, &desired).await?;
        synced.push(f.node_id.clone());
    }
    push_later(app, config_id);
    Ok(json!({"message": "All node configs synced", "synced_count": synced.len(), "failed_count": 0, "synced": synced, "failed": []}))
}

/// Auto-sync after a model change (spec 03 §8.4): for enabled nodes with `auto_sync` in an
/// enabled config with a valid topology, staged := desired; then the pending push
/// (`auto-sync`). Run by the refresh worker after regeneration. Costs one hash query when
/// nothing changed; the topology is only analysed when some node needs staging.
pub async fn auto_sync(app: &AppState, config_id: &str) -> AppResult<usize> {
    let Some(config) = crate::store::configs::get(&app.db, config_id).await? else { return Ok(0) };
    if !config.enabled {
        return Ok(0);
    }
    let due = client_state::auto_sync_due(&app.db, config_id).await?;
    let mut staged = 0;
    if !due.is_empty() {
        // Invalid topology blocks auto-staging; the sync status shows why. Without links a
        // config has no topology errors (at most the no-links warning): the nodes are not read.
        let topo = crate::store::links::topo_rows(&app.db, config_id).await?;
        if !topo.is_empty() {
            let nodes = crate::store::nodes::list_for_config(&app.db, config_id).await?;
            if !crate::service::mesh::analyze_rows(&config, &nodes, &topo).errors.is_empty() {
                return Ok(0);
            }
        }
        for f in &due {
            // One transaction per node. The desired slot was just regenerated, so it is normally
            // read and staged at once; a node that went stale meanwhile is rendered first.
            let mut tx = app.db.begin().await?;
            if !crate::store::nodes::lock_key_tx(&mut tx, &f.node_id).await? {
                continue;
            }
            match crate::store::links::desired_tx(&mut tx, &f.node_id).await? {
                Some(d) if !d.desired_stale => {
                    stage_tx(&mut tx, f, &d.desired_text).await?;
                    tx.commit().await?;
                }
                Some(_) => {
                    drop(tx);
                    let Some(d) = render::ensure_desired(app, &f.node_id).await? else { continue };
                    stage(app, f, &d.desired_text).await?;
                }
                None => continue,
            }
            staged += 1;
        }
    }
    endpoint::push_pending(app, config_id, "auto-sync").await;
    Ok(staged)
}
