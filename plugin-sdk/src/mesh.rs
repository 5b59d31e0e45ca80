//! Typed views of the mesh entities the host hands to plugins (the REST API's objects,
//! spec 02 §2). The fields a plugin commonly needs are typed; everything else is kept in
//! `extra`, so a newer host never breaks an older plugin.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A config (one mesh).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// `cfg_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Enabled flag.
    #[serde(default)]
    pub enabled: bool,
    /// `wireguard` or `amneziawg`.
    #[serde(default)]
    pub tunnel_protocol: String,
    /// `1.5`, `2.0`, `3.1` for AmneziaWG.
    #[serde(default)]
    pub awg_version: Option<String>,
    /// Virtual subnet (CIDR).
    #[serde(default)]
    pub virtual_subnet: String,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A node (endpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `node_…`.
    pub id: String,
    /// Owning config.
    pub config_id: String,
    /// Name (not unique).
    pub name: String,
    /// Enabled flag.
    #[serde(default)]
    pub enabled: bool,
    /// Virtual IP with optional prefix.
    #[serde(default)]
    pub virtual_ip: Option<String>,
    /// `dynamic` or `static`.
    #[serde(default)]
    pub node_type: String,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One direction of a mesh pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerLink {
    /// `plink_…`.
    pub id: String,
    /// The node whose file this row is rendered into.
    pub local_node_id: String,
    /// The node it describes.
    pub peer_node_id: String,
    /// `group_…`.
    #[serde(default)]
    pub link_group_id: String,
    /// Enabled flag.
    #[serde(default)]
    pub enabled: bool,
    /// Normalised CIDR list.
    #[serde(default)]
    pub allowed_ips: String,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A node's rendered config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfig {
    /// Node id.
    pub node_id: String,
    /// Node name.
    pub node_name: String,
    /// Config text.
    pub content: String,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: String,
}
