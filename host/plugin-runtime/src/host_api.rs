//! What the server provides to plugins, and what a successful call asks it to apply.
//!
//! Reads go through [`HostApi`], implemented by the server on top of its store. Writes are
//! never performed while the plugin runs: the runtime checks them, collects them in
//! [`Effects`], and hands them back with the output, so the server applies them in the
//! caller's transaction (records, files) and publishes refresh hints after commit. A call that
//! fails leaves nothing behind.

use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so [`HostApi`] stays object safe.
pub type HostFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HostCallError>> + Send + 'a>>;

/// Failure of a host read, reported to the plugin as `host-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostCallError {
    /// The entity does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The arguments were refused.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The host could not serve the call.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A stored plugin record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordRow {
    /// Collection.
    pub collection: String,
    /// Key.
    pub key: String,
    /// Owning config.
    pub config_id: Option<String>,
    /// JSON text.
    pub value_json: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A node's rendered config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfig {
    /// Node id.
    pub node_id: String,
    /// Node name.
    pub node_name: String,
    /// Text.
    pub content: String,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: String,
}

/// Reads the host serves to plugins. Every method is called only after the runtime has
/// checked the plugin's capability. Entities are the REST API's JSON objects.
pub trait HostApi: Send + Sync {
    /// All configs, newest first.
    fn list_configs(&self) -> HostFuture<'_, Vec<Value>>;
    /// One config.
    fn get_config<'a>(&'a self, config_id: &'a str) -> HostFuture<'a, Value>;
    /// Nodes of a config.
    fn list_nodes<'a>(&'a self, config_id: &'a str) -> HostFuture<'a, Vec<Value>>;
    /// One node.
    fn get_node<'a>(&'a self, node_id: &'a str) -> HostFuture<'a, Value>;
    /// Peer-link rows of a config.
    fn list_peer_links<'a>(&'a self, config_id: &'a str) -> HostFuture<'a, Vec<Value>>;
    /// A node's rendered config.
    fn rendered_config<'a>(&'a self, node_id: &'a str) -> HostFuture<'a, RenderedConfig>;
    /// One committed record of a plugin.
    fn get_record<'a>(&'a self, plugin_id: &'a str, collection: &'a str, key: &'a str)
    -> HostFuture<'a, Option<RecordRow>>;
    /// Committed records of a plugin's collection (optionally of one config), by key.
    fn list_records<'a>(
        &'a self,
        plugin_id: &'a str,
        collection: &'a str,
        config_id: Option<&'a str>,
    ) -> HostFuture<'a, Vec<RecordRow>>;
}

/// A host that serves nothing: every read is `unavailable`. Used for `describe` at load time
/// and by callers that grant plugins no mesh or record access.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHost;

fn unavailable<'a, T: Send + 'a>() -> HostFuture<'a, T> {
    Box::pin(async { Err(HostCallError::Unavailable("no host data in this context".to_string())) })
}

impl HostApi for NoHost {
    fn list_configs(&self) -> HostFuture<'_, Vec<Value>> {
        unavailable()
    }
    fn get_config<'a>(&'a self, _: &'a str) -> HostFuture<'a, Value> {
        unavailable()
    }
    fn list_nodes<'a>(&'a self, _: &'a str) -> HostFuture<'a, Vec<Value>> {
        unavailable()
    }
    fn get_node<'a>(&'a self, _: &'a str) -> HostFuture<'a, Value> {
        unavailable()
    }
    fn list_peer_links<'a>(&'a self, _: &'a str) -> HostFuture<'a, Vec<Value>> {
        unavailable()
    }
    fn rendered_config<'a>(&'a self, _: &'a str) -> HostFuture<'a, RenderedConfig> {
        unavailable()
    }
    fn get_record<'a>(&'a self, _: &'a str, _: &'a str, _: &'a str) -> HostFuture<'a, Option<RecordRow>> {
        unavailable()
    }
    fn list_records<'a>(&'a self, _: &'a str, _: &'a str, _: Option<&'a str>) -> HostFuture<'a, Vec<RecordRow>> {
        unavailable()
    }
}

/// A record write to apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum RecordWrite {
    /// Insert or replace.
    Put {
        /// Collection.
        collection: String,
        /// Key.
        key: String,
        /// Owning config.
        config_id: Option<String>,
        /// JSON text (checked to parse).
        value_json: String,
    },
    /// Delete.
    Delete {
        /// Collection.
        collection: String,
        /// Key.
        key: String,
    },
}

/// A file to store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileWrite {
    /// Host id, `file_<24 hex>`, already returned to the plugin.
    pub id: String,
    /// `<plugin id>:<kind>`.
    pub kind: String,
    /// Attachment name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Owning config.
    pub config_id: Option<String>,
    /// JSON object text.
    pub meta_json: String,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// The bytes.
    #[serde(skip)]
    pub content: Vec<u8>,
}

/// A refresh hint for the events bus.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum RefreshHint {
    /// System status.
    System,
    /// Config list and one overview.
    Config {
        /// Config id.
        config_id: String,
    },
    /// One node's projections.
    Node {
        /// Config id.
        config_id: String,
        /// Node id.
        node_id: String,
    },
}

/// Side effects of a successful call, to apply in the caller's transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Effects {
    /// Record writes in call order (later writes to the same key win).
    pub records: Vec<RecordWrite>,
    /// Files to store.
    pub files: Vec<FileWrite>,
    /// Refresh hints, de-duplicated, in first-seen order.
    pub refresh: Vec<RefreshHint>,
}

impl Effects {
    /// True when the call asked for nothing.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.files.is_empty() && self.refresh.is_empty()
    }
}
