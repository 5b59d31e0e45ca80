//! Rendering node files (spec 02 §8) and the desired slot of `node_config_state` (spec 03 §8.1).
//!
//! `wg-preview` renders the node fresh from the database (one join over the node's own rows).
//! The desired slot is computed lazily: writes only mark the nodes whose files they change
//! (`desired_stale`), and [`regenerate`] (run by the refresh worker) renders just those, in
//! small transactions, bumping `desired_version` only when the hash changes.

use std::collections::HashMap;

use serde::Serialize;
use wfm_domain::awg::{AwgVersion, ProtocolChoice};
use wfm_domain::endpoint::EndpointSettings;
use wfm_domain::render::{self as dr, AwgLines, Hooks, Interface, Peer, RenderInput};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::configs::{self, shared_params};
use crate::service::mesh::{ManagedHooksProvider, NoManagedHooks};
use crate::service::nodes::{self, json_list, node_params};
use crate::state::AppState;
use crate::store::configs::ConfigRow;
use crate::store::links::{self as store, RenderRow};
use crate::store::nodes::{self as node_store, NodeRow};
use crate::util;

/// `wg-preview` response.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Preview {
    pub node_id: String,
    pub node_name: String,
    pub content: String,
    pub sha256: String,
}

/// The managed-hooks provider of this server. The seam for port forwarding: it answers with
/// no commands until a provider is plugged in.
pub fn managed_hooks_provider(app: &AppState) -> &'static dyn ManagedHooksProvider {
    match app.plugins.runtime() {
        Some(rt) if rt.has_config_hooks() => &crate::service::tools::PluginManagedHooks,
        _ => &NoManagedHooks,
    }
}

/// The AWG version of a config, if it is an AmneziaWG config.
pub fn awg_version(config: &ConfigRow) -> Option<AwgVersion> {
    ProtocolChoice::from_stored(&config.tunnel_protocol, config.awg_version.as_deref()).awg_version()
}

/// Renders one node's file from its rows. `rows` are the node's active rows in link order.
pub fn render_node(config: &ConfigRow, node: &NodeRow, rows: &[RenderRow], managed: &Hooks) -> String {
    let own = Hooks {
        pre_up: json_list(&node.pre_up_json),
        post_up: json_list(&node.post_up_json),
        pre_down: json_list(&node.pre_down_json),
        post_down: json_list(&node.post_down_json),
    };
    let awg = awg_version(config).map(|v| AwgLines::from_params(v, &shared_params(config), &node_params(node)));
    let port = config.default_listen_port;
    let peers: Vec<Peer<'_>> = rows
        .iter()
        .map(|r| {
            let settings = EndpointSettings::from_stored(
                &r.endpoint_mode,
                r.endpoint_ref_family.as_deref(),
                r.endpoint_manual_host.as_deref(),
                &r.endpoint_port_mode,
                r.endpoint_manual_port,
            );
            let peer = wfm_domain::endpoint::PeerAddress {
                name: &r.peer_name,
                ipv4_address: r.peer_ipv4_address.as_deref(),
                ipv6_address: r.peer_ipv6_address.as_deref(),
                listen_port: r.peer_listen_port,
            };
            Peer {
                name: &r.peer_name,
                public_key: &r.peer_public_key,
                allowed_ips: &r.allowed_ips,
                preshared_key: r.preshared_key.as_deref(),
                endpoint: wfm_domain::endpoint::resolve(&settings, &peer, port).endpoint,
                persistent_keepalive: r.persistent_keepalive,
            }
        })
        .collect();
    dr::render(&RenderInput {
        interface: Interface {
            private_key: &node.private_key,
            address: node.virtual_ip.as_deref(),
            listen_port: node.listen_port.unwrap_or(port),
            dns: node.dns.as_deref().or(config.default_dns.as_deref()),
            mtu: node.mtu.or(config.default_mtu),
        },
        node_hooks: &own,
        managed_hooks: managed,
        awg: awg.as_ref(),
        peers: &peers,
    })
}

async fn managed_for(app: &AppState, config_id: &str, node_ids: &[String]) -> AppResult<HashMap<String, Hooks>> {
    managed_hooks_provider(app).hooks(app, config_id, node_ids).await
}

/// `GET /configs/{id}/nodes/{node_id}/wg-preview`.
pub async fn preview(app: &AppState, config_id: &str, node_id: &str) -> AppResult<Preview> {
    let config = configs::load(app, config_id).await?;
    let node = node_store::get(&app.db, node_id).await?.ok_or_else(|| nodes::node_not_found(node_id))?;
    if node.config_id != config.id {
        return Err(AppError::new(ErrorCode::NodeConfigMismatch, "Node does not belong to this config")
            .with("node_id", node_id)
            .with("config_id", config_id));
    }
    if !node.enabled {
        return Err(AppError::new(ErrorCode::NodeDisabled, format!("Node {} is disabled", node.name)).with("node_id", node_id));
    }
    let rows = store::render_rows(&app.db, node_id).await?;
    let ids = [node.id.clone()];
    let managed = managed_for(app, config_id, &ids).await?.remove(&node.id).unwrap_or_default();
    let content = render_node(&config, &node, &rows, &managed);
    Ok(Preview { sha256: util::sha256_hex(&content), node_id: node.id, node_name: node.name, content })
}

/// Nodes rendered per transaction in [`regenerate`]: small enough that writes waiting on the
/// SQLite writer are not held up long.
const REGENERATE_CHUNK: usize = 32;

/// Renders the desired config of every stale node of a config; returns how many were rendered.
/// Disabled nodes have no file: their stale mark is cleared and their slot left as it was.
pub async fn regenerate(app: &AppState, config_id: &str) -> AppResult<usize> {
    let stale = store::stale_node_ids(&app.db, config_id).await?;
    if stale.is_empty() {
        return Ok(0);
    }
    let managed = managed_for(app, config_id, &stale).await?;
    let mut rendered = 0;
    for chunk in stale.chunks(REGENERATE_CHUNK) {
        let mut tx = app.db.begin().await?;
        store::lock_states(&mut tx, chunk).await?;
        let Some(config) = crate::store::configs::get_tx(&mut tx, config_id).await? else {
            return Ok(rendered);
        };
        let now = util::now_iso();
        for id in chunk {
            let Some(node) = node_store::get_tx(&mut tx, id).await? else { continue };
            if !node.enabled {
                store::clear_stale(&mut tx, id).await?;
                continue;
            }
            let rows = store::render_rows_tx(&mut tx, id).await?;
            let empty = Hooks::default();
            let text = render_node(&config, &node, &rows, managed.get(id).unwrap_or(&empty));
            store::write_desired(&mut tx, id, &text, &util::sha256_hex(&text), &now).await?;
            rendered += 1;
        }
        tx.commit().await?;
    }
    Ok(rendered)
}

/// Makes sure one node's desired slot is current (for callers about to stage or push it) and
/// returns it.
pub async fn ensure_desired(app: &AppState, node_id: &str) -> AppResult<Option<store::Desired>> {
    let Some(node) = node_store::get(&app.db, node_id).await? else { return Ok(None) };
    let mut tx = app.db.begin().await?;
    store::lock_states(&mut tx, std::slice::from_ref(&node.id)).await?;
    let Some(state) = store::desired_tx(&mut tx, node_id).await? else { return Ok(None) };
    if !state.desired_stale || !node.enabled {
        return Ok(Some(state));
    }
    let Some(config) = crate::store::configs::get_tx(&mut tx, &node.config_id).await? else { return Ok(None) };
    let Some(node) = node_store::get_tx(&mut tx, node_id).await? else { return Ok(None) };
    let rows = store::render_rows_tx(&mut tx, node_id).await?;
    let ids = [node.id.clone()];
    let managed = managed_for(app, &node.config_id, &ids).await?.remove(&node.id).unwrap_or_default();
    let text = render_node(&config, &node, &rows, &managed);
    store::write_desired(&mut tx, node_id, &text, &util::sha256_hex(&text), &util::now_iso()).await?;
    let fresh = store::desired_tx(&mut tx, node_id).await?;
    tx.commit().await?;
    Ok(fresh)
}
