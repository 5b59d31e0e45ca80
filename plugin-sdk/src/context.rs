//! The call context and the typed host calls.
//!
//! Every host call needs a capability the plugin declared in [`Plugin::CAPABILITIES`]
//! (crate::Plugin); without it the call fails with [`HostError::CapabilityDenied`] and the
//! host reports the tool call as `PLUGIN_CAPABILITY_DENIED`. Writes (records, files, refresh
//! hints) take effect only if the tool call succeeds, inside the caller's transaction.

use crate::export::bindings::wfm::plugin::host;
use crate::export::bindings::wfm::plugin::types as wit;
use crate::mesh::{Config, Node, PeerLink, RenderedConfig};
use crate::HostError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// A refresh hint for the realtime bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshHint {
    /// The system status.
    System,
    /// The config list and this config's overview.
    Config(String),
    /// One node's projections: (config id, node id).
    Node(String, String),
}

/// A plugin record as stored by the host, with its value decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    /// Collection.
    pub collection: String,
    /// Key within the collection.
    pub key: String,
    /// Owning config, if any.
    pub config_id: Option<String>,
    /// The value.
    pub value: T,
    /// RFC 3339, empty while not yet committed.
    pub created_at: String,
    /// RFC 3339, empty while not yet committed.
    pub updated_at: String,
}

/// A file to hand to the host.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutput {
    /// Kind (namespaced by the host with the plugin id), e.g. `config_bulk_package`.
    pub kind: String,
    /// Attachment file name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Owning config: the file is deleted with it.
    pub config_id: Option<String>,
    /// Extra JSON object kept with the file.
    pub meta: Option<serde_json::Value>,
    /// The bytes.
    pub content: Vec<u8>,
}

/// Where the host stored a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// Host id (`file_<hex>`).
    pub id: String,
    /// API path that serves the file (with a download grant).
    pub download_path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// The context of one call: who calls, until when, and the host calls.
#[derive(Debug, Clone)]
pub struct Context {
    request_id: String,
    principal: Option<String>,
    deadline_ms: u64,
}

fn decode<T: DeserializeOwned>(json: &str) -> Result<T, HostError> {
    serde_json::from_str(json).map_err(|e| HostError::Decode(e.to_string()))
}

fn decode_record<T: DeserializeOwned>(r: wit::PluginRecord) -> Result<Record<T>, HostError> {
    Ok(Record {
        value: decode(&r.value)?,
        collection: r.collection,
        key: r.key,
        config_id: r.config_id,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

impl Context {
    pub(crate) fn from_wit(ctx: wit::CallContext) -> Self {
        Self { request_id: ctx.request_id, principal: ctx.principal, deadline_ms: ctx.deadline_ms }
    }

    /// A context for native unit tests of tools that make no host calls.
    pub fn for_test() -> Self {
        Self { request_id: "test".to_string(), principal: Some("test".to_string()), deadline_ms: 60_000 }
    }

    /// Request id of the originating request.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
    /// `admin`, `mcp:<token name>`, `system`, or none.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }
    /// Milliseconds the call had left when it started.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// Writes to the host log (capability `log`; silently dropped without it).
    pub fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        host::log(level, message);
    }
    /// [`Context::log`] at info level.
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }
    /// [`Context::log`] at warn level.
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    /// All configs, newest first (capability `mesh-read`).
    pub fn configs(&self) -> Result<Vec<Config>, HostError> {
        host::list_configs().map_err(HostError::from_wit)?.iter().map(|j| decode(j)).collect()
    }
    /// One config (capability `mesh-read`).
    pub fn config(&self, config_id: &str) -> Result<Config, HostError> {
        decode(&host::get_config(config_id).map_err(HostError::from_wit)?)
    }
    /// The nodes of a config, in creation order (capability `mesh-read`).
    pub fn nodes(&self, config_id: &str) -> Result<Vec<Node>, HostError> {
        host::list_nodes(config_id).map_err(HostError::from_wit)?.iter().map(|j| decode(j)).collect()
    }
    /// One node (capability `mesh-read`).
    pub fn node(&self, node_id: &str) -> Result<Node, HostError> {
        decode(&host::get_node(node_id).map_err(HostError::from_wit)?)
    }
    /// The peer-link rows of a config (capability `mesh-read`).
    pub fn peer_links(&self, config_id: &str) -> Result<Vec<PeerLink>, HostError> {
        host::list_peer_links(config_id).map_err(HostError::from_wit)?.iter().map(|j| decode(j)).collect()
    }
    /// A node's rendered config (capability `mesh-read`).
    pub fn rendered_config(&self, node_id: &str) -> Result<RenderedConfig, HostError> {
        let r = host::get_rendered_config(node_id).map_err(HostError::from_wit)?;
        Ok(RenderedConfig { node_id: r.node_id, node_name: r.node_name, content: r.content, sha256: r.sha256 })
    }

    /// One of this plugin's records (capability `records-read`).
    pub fn record<T: DeserializeOwned>(&self, collection: &str, key: &str) -> Result<Option<Record<T>>, HostError> {
        match host::get_record(collection, key).map_err(HostError::from_wit)? {
            Some(r) => Ok(Some(decode_record(r)?)),
            None => Ok(None),
        }
    }
    /// This plugin's records of a collection, optionally of one config, ordered by key
    /// (capability `records-read`).
    pub fn records<T: DeserializeOwned>(
        &self,
        collection: &str,
        config_id: Option<&str>,
    ) -> Result<Vec<Record<T>>, HostError> {
        host::list_records(collection, config_id)
            .map_err(HostError::from_wit)?
            .into_iter()
            .map(decode_record)
            .collect()
    }
    /// Creates or replaces a record (capability `records-write`).
    pub fn put_record<T: Serialize>(
        &self,
        collection: &str,
        key: &str,
        config_id: Option<&str>,
        value: &T,
    ) -> Result<(), HostError> {
        let json = serde_json::to_string(value).map_err(|e| HostError::Invalid(e.to_string()))?;
        host::put_record(collection, key, config_id, &json).map_err(HostError::from_wit)
    }
    /// Deletes a record; true if it existed (capability `records-write`).
    pub fn delete_record(&self, collection: &str, key: &str) -> Result<bool, HostError> {
        host::delete_record(collection, key).map_err(HostError::from_wit)
    }

    /// Hands a file to the host (capability `files-write`).
    pub fn put_file(&self, file: FileOutput) -> Result<FileRef, HostError> {
        let out = wit::FileOutput {
            kind: file.kind,
            filename: file.filename,
            content_type: file.content_type,
            config_id: file.config_id,
            meta: file.meta.map(|m| m.to_string()),
            content: file.content,
        };
        let r = host::put_file(&out).map_err(HostError::from_wit)?;
        Ok(FileRef { id: r.id, download_path: r.download_path, size: r.size, sha256: r.sha256 })
    }

    /// Asks the host to refresh projections after the call (capability `events-publish`).
    pub fn refresh(&self, hint: RefreshHint) -> Result<(), HostError> {
        let hint = match hint {
            RefreshHint::System => wit::RefreshHint::System,
            RefreshHint::Config(id) => wit::RefreshHint::Config(id),
            RefreshHint::Node(c, n) => wit::RefreshHint::Node((c, n)),
        };
        host::refresh(&hint).map_err(HostError::from_wit)
    }
}
