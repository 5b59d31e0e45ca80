//! The data of one store (one call): WASI context with nothing granted, memory limiter,
//! capability set, host reads, and the effects collected for the caller. Also the
//! implementation of the `wfm:plugin/host` imports.

use crate::bindings::wfm::plugin::{host, types};
use crate::capability::Capability;
use crate::host_api::{Effects, FileWrite, HostApi, HostCallError, RecordRow, RecordWrite, RefreshHint};
use crate::limits::Limits;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Memory limiter that remembers whether it refused a growth, so a failed call is reported
/// as `PLUGIN_MEMORY_EXCEEDED` rather than as a generic trap.
pub(crate) struct Limiter {
    pub(crate) max_memory: usize,
    pub(crate) exceeded: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.exceeded = true;
            return Err(wasmtime::Error::msg(format!("memory limit of {} bytes exceeded", self.max_memory)));
        }
        Ok(true)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A capability violation: the call is aborted and reported as `PLUGIN_CAPABILITY_DENIED`.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub(crate) capability: Capability,
    pub(crate) import: &'static str,
}

pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) stderr: MemoryOutputPipe,
    plugin_id: String,
    request_id: String,
    caps: Arc<HashSet<Capability>>,
    host: Arc<dyn HostApi>,
    limits: Arc<Limits>,
    pub(crate) effects: Effects,
    /// Record writes of this call, visible to its own later reads: `None` = deleted.
    pending: BTreeMap<(String, String), Option<RecordRow>>,
    file_bytes: usize,
    pub(crate) violation: Option<Violation>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl CallState {
    pub(crate) fn new(
        plugin_id: &str,
        request_id: &str,
        caps: Arc<HashSet<Capability>>,
        host: Arc<dyn HostApi>,
        limits: Arc<Limits>,
    ) -> Self {
        // No preopened directories, no network, no environment, no arguments, no stdin. Only
        // stderr is captured (bounded) so a panicking plugin's message reaches the error.
        let stderr = MemoryOutputPipe::new(4096);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new().stderr(stderr.clone()).build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter { max_memory: limits.max_memory_bytes, exceeded: false },
            stderr,
            plugin_id: plugin_id.to_string(),
            request_id: request_id.to_string(),
            caps,
            host,
            limits,
            effects: Effects::default(),
            pending: BTreeMap::new(),
            file_bytes: 0,
            violation: None,
        }
    }

    /// Checks a capability; a missing one aborts the call with a trap.
    fn require(&mut self, capability: Capability, import: &'static str) -> wasmtime::Result<()> {
        if self.caps.contains(&capability) {
            return Ok(());
        }
        tracing::warn!(plugin = %self.plugin_id, request_id = %self.request_id, %capability, import,
            "plugin called an import without its capability");
        self.violation = Some(Violation { capability, import });
        Err(wasmtime::Error::msg(format!("capability {capability} not granted for {import}")))
    }
}

fn host_err(e: HostCallError) -> types::HostError {
    match e {
        HostCallError::NotFound(m) => types::HostError::NotFound(m),
        HostCallError::Invalid(m) => types::HostError::Invalid(m),
        HostCallError::Unavailable(m) => types::HostError::Unavailable(m),
    }
}

fn to_json_list(values: Vec<serde_json::Value>) -> Vec<String> {
    values.into_iter().map(|v| v.to_string()).collect()
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_key(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= 128 && !s.chars().any(char::is_control)
}

fn to_wit_record(r: RecordRow) -> types::PluginRecord {
    types::PluginRecord {
        collection: r.collection,
        key: r.key,
        config_id: r.config_id,
        value: r.value_json,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

impl types::Host for CallState {}

impl host::Host for CallState {
    async fn log(&mut self, level: types::Level, message: String) -> wasmtime::Result<()> {
        if !self.caps.contains(&Capability::Log) {
            // Logging is harmless: without the capability the line is dropped, not trapped.
            return Ok(());
        }
        let message: String = message.chars().take(self.limits.max_log_chars).collect();
        let (plugin, req) = (&self.plugin_id, &self.request_id);
        match level {
            types::Level::Trace => tracing::trace!(target: "wfm::plugin", plugin = %plugin, request_id = %req, "{message}"),
            types::Level::Debug => tracing::debug!(target: "wfm::plugin", plugin = %plugin, request_id = %req, "{message}"),
            types::Level::Info => tracing::info!(target: "wfm::plugin", plugin = %plugin, request_id = %req, "{message}"),
            types::Level::Warn => tracing::warn!(target: "wfm::plugin", plugin = %plugin, request_id = %req, "{message}"),
            types::Level::Error => tracing::error!(target: "wfm::plugin", plugin = %plugin, request_id = %req, "{message}"),
        }
        Ok(())
    }

    async fn list_configs(&mut self) -> wasmtime::Result<Result<Vec<String>, types::HostError>> {
        self.require(Capability::MeshRead, "list-configs")?;
        Ok(self.host.list_configs().await.map(to_json_list).map_err(host_err))
    }

    async fn get_config(&mut self, config_id: String) -> wasmtime::Result<Result<String, types::HostError>> {
        self.require(Capability::MeshRead, "get-config")?;
        Ok(self.host.get_config(&config_id).await.map(|v| v.to_string()).map_err(host_err))
    }

    async fn list_nodes(&mut self, config_id: String) -> wasmtime::Result<Result<Vec<String>, types::HostError>> {
        self.require(Capability::MeshRead, "list-nodes")?;
        Ok(self.host.list_nodes(&config_id).await.map(to_json_list).map_err(host_err))
    }

    async fn get_node(&mut self, node_id: String) -> wasmtime::Result<Result<String, types::HostError>> {
        self.require(Capability::MeshRead, "get-node")?;
        Ok(self.host.get_node(&node_id).await.map(|v| v.to_string()).map_err(host_err))
    }

    async fn list_peer_links(&mut self, config_id: String) -> wasmtime::Result<Result<Vec<String>, types::HostError>> {
        self.require(Capability::MeshRead, "list-peer-links")?;
        Ok(self.host.list_peer_links(&config_id).await.map(to_json_list).map_err(host_err))
    }

    async fn get_rendered_config(
        &mut self,
        node_id: String,
    ) -> wasmtime::Result<Result<types::RenderedConfig, types::HostError>> {
        self.require(Capability::MeshRead, "get-rendered-config")?;
        Ok(self
            .host
            .rendered_config(&node_id)
            .await
            .map(|r| types::RenderedConfig {
                node_id: r.node_id,
                node_name: r.node_name,
                content: r.content,
                sha256: r.sha256,
            })
            .map_err(host_err))
    }

    async fn get_record(
        &mut self,
        collection: String,
        key: String,
    ) -> wasmtime::Result<Result<Option<types::PluginRecord>, types::HostError>> {
        self.require(Capability::RecordsRead, "get-record")?;
        if let Some(pending) = self.pending.get(&(collection.clone(), key.clone())) {
            return Ok(Ok(pending.clone().map(to_wit_record)));
        }
        Ok(self
            .host
            .get_record(&self.plugin_id, &collection, &key)
            .await
            .map(|r| r.map(to_wit_record))
            .map_err(host_err))
    }

    async fn list_records(
        &mut self,
        collection: String,
        config_id: Option<String>,
    ) -> wasmtime::Result<Result<Vec<types::PluginRecord>, types::HostError>> {
        self.require(Capability::RecordsRead, "list-records")?;
        let stored = match self.host.list_records(&self.plugin_id, &collection, config_id.as_deref()).await {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(host_err(e))),
        };
        // Merge this call's own writes over the committed rows, keeping key order.
        let mut merged: BTreeMap<String, RecordRow> = stored.into_iter().map(|r| (r.key.clone(), r)).collect();
        for ((coll, key), row) in &self.pending {
            if coll != &collection {
                continue;
            }
            match row {
                Some(r) if config_id.is_none() || r.config_id == config_id => {
                    merged.insert(key.clone(), r.clone());
                }
                _ => {
                    merged.remove(key);
                }
            }
        }
        Ok(Ok(merged.into_values().map(to_wit_record).collect()))
    }

    async fn put_record(
        &mut self,
        collection: String,
        key: String,
        config_id: Option<String>,
        value: String,
    ) -> wasmtime::Result<Result<(), types::HostError>> {
        self.require(Capability::RecordsWrite, "put-record")?;
        if !valid_name(&collection, 64) {
            return Ok(Err(types::HostError::Invalid(format!("invalid collection name {collection:?}"))));
        }
        if !valid_key(&key) {
            return Ok(Err(types::HostError::Invalid("record key must be 1-128 printable characters".into())));
        }
        if value.len() > self.limits.max_record_bytes {
            return Ok(Err(types::HostError::Invalid(format!(
                "record value of {} bytes exceeds {} bytes",
                value.len(),
                self.limits.max_record_bytes
            ))));
        }
        if serde_json::from_str::<serde_json::Value>(&value).is_err() {
            return Ok(Err(types::HostError::Invalid("record value is not JSON".into())));
        }
        if self.effects.records.len() >= self.limits.max_writes_per_call {
            return Ok(Err(types::HostError::Invalid("too many record writes in one call".into())));
        }
        let row = RecordRow {
            collection: collection.clone(),
            key: key.clone(),
            config_id: config_id.clone(),
            value_json: value.clone(),
            created_at: String::new(),
            updated_at: String::new(),
        };
        self.pending.insert((collection.clone(), key.clone()), Some(row));
        self.effects.records.push(RecordWrite::Put { collection, key, config_id, value_json: value });
        Ok(Ok(()))
    }

    async fn delete_record(&mut self, collection: String, key: String) -> wasmtime::Result<Result<bool, types::HostError>> {
        self.require(Capability::RecordsWrite, "delete-record")?;
        if !valid_name(&collection, 64) || !valid_key(&key) {
            return Ok(Err(types::HostError::Invalid("invalid collection or key".into())));
        }
        let existed = match self.pending.get(&(collection.clone(), key.clone())) {
            Some(p) => p.is_some(),
            None => match self.host.get_record(&self.plugin_id, &collection, &key).await {
                Ok(r) => r.is_some(),
                Err(e) => return Ok(Err(host_err(e))),
            },
        };
        self.pending.insert((collection.clone(), key.clone()), None);
        self.effects.records.push(RecordWrite::Delete { collection, key });
        Ok(Ok(existed))
    }

    async fn put_file(&mut self, file: types::FileOutput) -> wasmtime::Result<Result<types::FileRef, types::HostError>> {
        self.require(Capability::FilesWrite, "put-file")?;
        let size = file.content.len();
        if self.file_bytes + size > self.limits.max_file_bytes {
            return Ok(Err(types::HostError::Invalid(format!(
                "files of this call exceed {} bytes",
                self.limits.max_file_bytes
            ))));
        }
        if self.effects.files.len() >= self.limits.max_files_per_call {
            return Ok(Err(types::HostError::Invalid("too many files in one call".into())));
        }
        if !valid_name(&file.kind, 64) {
            return Ok(Err(types::HostError::Invalid(format!("invalid file kind {:?}", file.kind))));
        }
        let filename = file.filename.trim();
        if filename.is_empty()
            || filename.len() > 255
            || filename.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Ok(Err(types::HostError::Invalid("invalid file name".into())));
        }
        let meta_json = match file.meta.as_deref() {
            None => "{}".to_string(),
            Some(m) => match serde_json::from_str::<serde_json::Value>(m) {
                Ok(v @ serde_json::Value::Object(_)) => v.to_string(),
                _ => return Ok(Err(types::HostError::Invalid("file meta must be a JSON object".into()))),
            },
        };
        let sha256 = hex::encode(Sha256::digest(&file.content));
        let id = format!("file_{}", &uuid::Uuid::new_v4().simple().to_string()[..24]);
        let download_path = format!("{}/{}", self.limits.file_download_prefix, id);
        self.file_bytes += size;
        self.effects.files.push(FileWrite {
            id: id.clone(),
            kind: format!("{}:{}", self.plugin_id, file.kind),
            filename: filename.to_string(),
            content_type: if file.content_type.trim().is_empty() {
                "application/octet-stream".to_string()
            } else {
                file.content_type
            },
            config_id: file.config_id,
            meta_json,
            sha256: sha256.clone(),
            content: file.content,
        });
        Ok(Ok(types::FileRef { id, download_path, size: size as u64, sha256 }))
    }

    async fn refresh(&mut self, hint: types::RefreshHint) -> wasmtime::Result<Result<(), types::HostError>> {
        self.require(Capability::EventsPublish, "refresh")?;
        let hint = match hint {
            types::RefreshHint::System => RefreshHint::System,
            types::RefreshHint::Config(config_id) => RefreshHint::Config { config_id },
            types::RefreshHint::Node((config_id, node_id)) => RefreshHint::Node { config_id, node_id },
        };
        if !self.effects.refresh.contains(&hint) {
            if self.effects.refresh.len() >= self.limits.max_writes_per_call {
                return Ok(Err(types::HostError::Invalid("too many refresh hints in one call".into())));
            }
            self.effects.refresh.push(hint);
        }
        Ok(Ok(()))
    }
}
