//! Plugin tools: the one catalogue REST (and later MCP) read, tool calls with their effects
//! applied in one transaction, and the mapping of plugin failures to API codes.
//!
//! A call runs in the plugin runtime with a [`DbHost`] for reads; the writes the plugin asked
//! for come back as [`Effects`] and are applied here in one transaction after the call
//! succeeded, then refresh hints are scheduled. A failed call leaves nothing behind.

use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::{Value, json};
use wfm_plugin_runtime::{
    CallRequest, Effects, HostApi, HostCallError, HostFuture, LoadFailure, PluginError, PluginInfo, PluginRuntime,
    RecordRow, RefreshHint, RenderedConfig, RuntimeConfig, ToolErrorKind,
};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::refresh::{self, PublishPlan};
use crate::state::AppState;
use crate::store::{self, Db};

/// The loaded plugin runtime, set once at start-up.
#[derive(Default)]
pub struct Plugins {
    runtime: OnceLock<PluginRuntime>,
}

impl Plugins {
    /// The runtime, if plugins were loaded.
    pub fn runtime(&self) -> Option<&PluginRuntime> {
        self.runtime.get()
    }
}

/// Loads the plugins (`WFM_PLUGIN_DIR`, default: what `scripts/build-plugins.sh` built). A
/// plugin that fails to load is reported in the catalogue; only an engine failure is an error.
pub async fn load(app: &AppState) -> anyhow::Result<()> {
    // Every knob comes from `Settings`, which validated it at start-up.
    let s = &app.settings;
    let plugin_dir = s.plugin_dir.clone().unwrap_or_else(RuntimeConfig::default_plugin_dir);
    let cache_dir = match &s.plugin_cache_dir {
        None => Some(plugin_dir.join(".cache")),
        Some(dir) => dir.clone(),
    };
    let mut limits = wfm_plugin_runtime::Limits::default();
    limits.call_timeout = std::time::Duration::from_millis(s.plugin_timeout_ms);
    limits.max_memory_bytes = s.plugin_memory_mb << 20;
    let config = RuntimeConfig { plugin_dir, cache_dir, limits };
    let runtime = PluginRuntime::load(config).await?;
    let stats = runtime.stats();
    tracing::info!(
        plugins = runtime.plugins().count(),
        failed = runtime.failures().len(),
        compiled = stats.compiled,
        from_cache = stats.from_cache,
        elapsed_ms = stats.elapsed_ms as u64,
        "plugins loaded"
    );
    // A second load (tests building state twice) keeps the first runtime.
    let _ = app.plugins.runtime.set(runtime);
    Ok(())
}

/// One tool in the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct ToolEntry {
    /// Plugin id.
    pub plugin_id: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Tool name.
    pub name: String,
    /// `<plugin id>.<tool>`, the name MCP exposes.
    pub qualified_name: String,
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: String,
    /// JSON Schema of the input.
    pub input_schema: Value,
    /// JSON Schema of the output.
    pub output_schema: Option<Value>,
    /// No side effects.
    pub read_only: bool,
    /// May destroy data.
    pub destructive: bool,
    /// Repeatable.
    pub idempotent: bool,
    /// `POST` path that invokes the tool.
    pub call_path: String,
}

/// A plugin and its load status.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// Plugin id (null when the file could not be identified).
    pub id: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// File in the plugin directory.
    pub file: String,
    /// `loaded` or `failed`.
    pub status: &'static str,
    /// Why it failed (`PLUGIN_UNAVAILABLE`).
    pub error: Option<Value>,
    /// ABI version.
    pub abi_version: Option<String>,
    /// Declared capabilities.
    pub capabilities: Vec<String>,
    /// SHA-256 of the component.
    pub sha256: Option<String>,
    /// Tool names.
    pub tools: Vec<String>,
}

/// The catalogue: every tool of every loaded plugin and every plugin's status.
#[derive(Debug, Clone, Serialize)]
pub struct Catalogue {
    /// Tools, by plugin then registration order.
    pub tools: Vec<ToolEntry>,
    /// Plugins, loaded ones first.
    pub plugins: Vec<PluginStatus>,
    /// ABI version the host supports.
    pub abi_version: &'static str,
}

fn loaded_status(p: &PluginInfo) -> PluginStatus {
    PluginStatus {
        id: Some(p.id.clone()),
        version: Some(p.version.clone()),
        name: Some(p.name.clone()),
        description: Some(p.description.clone()),
        file: p.file.clone(),
        status: "loaded",
        error: None,
        abi_version: Some(p.abi_version.clone()),
        capabilities: p.capabilities.iter().map(|c| c.to_string()).collect(),
        sha256: Some(p.sha256.clone()),
        tools: p.tools.iter().map(|t| t.name.clone()).collect(),
    }
}

fn failed_status(f: &LoadFailure) -> PluginStatus {
    PluginStatus {
        id: f.plugin_id.clone(),
        version: None,
        name: None,
        description: None,
        file: f.file.clone(),
        status: "failed",
        error: Some(json!({"code": f.code, "message": f.reason})),
        abi_version: None,
        capabilities: Vec::new(),
        sha256: None,
        tools: Vec::new(),
    }
}

/// The catalogue REST and MCP read.
pub fn catalogue(app: &AppState) -> Catalogue {
    let Some(rt) = app.plugins.runtime() else {
        return Catalogue { tools: Vec::new(), plugins: Vec::new(), abi_version: wfm_plugin_runtime::SUPPORTED_ABI };
    };
    let mut tools = Vec::new();
    for p in rt.plugins() {
        for t in &p.tools {
            tools.push(ToolEntry {
                plugin_id: p.id.clone(),
                plugin_version: p.version.clone(),
                name: t.name.clone(),
                qualified_name: format!("{}.{}", p.id, t.name),
                title: t.title.clone(),
                description: t.description.clone(),
                input_schema: t.input_schema.clone(),
                output_schema: t.output_schema.clone(),
                read_only: t.read_only,
                destructive: t.destructive,
                idempotent: t.idempotent,
                call_path: format!("/api/v1/tools/call/{}/{}", p.id, t.name),
            });
        }
    }
    let plugins = rt.plugins().map(loaded_status).chain(rt.failures().iter().map(failed_status)).collect();
    Catalogue { tools, plugins, abi_version: wfm_plugin_runtime::SUPPORTED_ABI }
}

/// A file a call stored.
#[derive(Debug, Clone, Serialize)]
pub struct StoredFileRef {
    /// `file_…`.
    pub id: String,
    /// Attachment name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Bytes.
    pub size: usize,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// API path that serves it.
    pub download_path: String,
}

/// The result of a tool call.
#[derive(Debug, Clone, Serialize)]
pub struct CallResult {
    /// Plugin id.
    pub plugin_id: String,
    /// Tool.
    pub tool: String,
    /// The tool's output.
    pub output: Value,
    /// Files the call stored.
    pub files: Vec<StoredFileRef>,
    /// Wall time of the plugin call.
    pub elapsed_ms: f64,
}

/// Who calls a tool.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `admin`, `mcp:<token name>`, `system`.
    pub principal: String,
    /// Only read-only tools (MCP read tokens).
    pub read_only: bool,
    /// Request id for logs.
    pub request_id: String,
}

impl Caller {
    /// The admin session.
    pub fn admin() -> Self {
        Self { principal: "admin".into(), read_only: false, request_id: crate::util::new_request_id() }
    }
}

/// Calls a tool: input schema check, sandboxed call, effects applied in one transaction,
/// refresh hints scheduled after commit.
pub async fn call(app: &AppState, caller: &Caller, plugin_id: &str, tool: &str, input: Value) -> AppResult<CallResult> {
    let rt = app.plugins.runtime().ok_or_else(|| {
        AppError::new(ErrorCode::PluginNotFound, format!("Plugin {plugin_id} not found")).with("plugin_id", plugin_id)
    })?;
    let req = CallRequest {
        plugin_id: plugin_id.to_string(),
        tool: tool.to_string(),
        input,
        request_id: caller.request_id.clone(),
        principal: Some(caller.principal.clone()),
        read_only: caller.read_only,
        timeout: None,
    };
    let host: Arc<dyn HostApi> = Arc::new(DbHost { db: app.db.clone() });
    let outcome = rt.call_tool(req, host).await.map_err(|e| map_error(plugin_id, tool, e))?;
    let files = apply(app, plugin_id, &outcome.effects).await?;
    Ok(CallResult {
        plugin_id: plugin_id.to_string(),
        tool: tool.to_string(),
        output: outcome.output,
        files,
        elapsed_ms: outcome.elapsed.as_secs_f64() * 1e3,
    })
}

async fn apply(app: &AppState, plugin_id: &str, effects: &Effects) -> AppResult<Vec<StoredFileRef>> {
    if effects.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = app.db.begin().await?;
    store::plugins::apply_effects(&mut tx, plugin_id, effects).await.map_err(|e| match e {
        store::StoreError::Conflict(m) => {
            AppError::new(ErrorCode::PluginInvalidOutput, "Plugin writes refer to missing data").with("reason", m)
        }
        other => other.into(),
    })?;
    tx.commit().await?;
    let mut plan = PublishPlan::default();
    for hint in &effects.refresh {
        match hint {
            RefreshHint::System => plan.refresh_system_status = true,
            RefreshHint::Config { config_id } => plan.merge(PublishPlan::config_change(config_id, &[], false)),
            RefreshHint::Node { config_id, node_id } => {
                plan.merge(PublishPlan::config_change(config_id, std::slice::from_ref(node_id), false))
            }
        }
    }
    refresh::schedule(app, plan);
    let prefix = &app.plugins.runtime().map(|r| r.limits().file_download_prefix.clone()).unwrap_or_default();
    Ok(effects
        .files
        .iter()
        .map(|f| StoredFileRef {
            id: f.id.clone(),
            filename: f.filename.clone(),
            content_type: f.content_type.clone(),
            size: f.content.len(),
            sha256: f.sha256.clone(),
            download_path: format!("{prefix}/{}", f.id),
        })
        .collect())
}

/// Codes a plugin may not raise itself: they would impersonate the host or its auth.
fn reserved(code: ErrorCode) -> bool {
    let s = code.as_str();
    matches!(code, ErrorCode::InternalError | ErrorCode::ServiceUnavailable | ErrorCode::NotImplemented)
        || s.starts_with("AUTH_")
        || s.contains("TOKEN")
        || s.starts_with("PUBLIC_")
        || (s.starts_with("PLUGIN_") && !matches!(code, ErrorCode::PluginInvalidInput | ErrorCode::PluginToolNotFound))
}

/// Maps a plugin failure to the API error (stable `PLUGIN_*` codes; a plugin's own typed
/// error keeps its code when it is a non-reserved code of the host catalogue).
pub fn map_error(plugin_id: &str, tool: &str, e: PluginError) -> AppError {
    let code = match &e {
        PluginError::NotFound { .. } => ErrorCode::PluginNotFound,
        PluginError::ToolNotFound { .. } => ErrorCode::PluginToolNotFound,
        PluginError::Unavailable { .. } => ErrorCode::PluginUnavailable,
        PluginError::InvalidInput { .. } => ErrorCode::PluginInvalidInput,
        PluginError::Denied(_) => ErrorCode::PluginDenied,
        PluginError::Timeout { .. } => ErrorCode::PluginTimeout,
        PluginError::MemoryExceeded { .. } => ErrorCode::PluginMemoryExceeded,
        PluginError::OutputTooLarge { .. } => ErrorCode::PluginOutputTooLarge,
        PluginError::Trapped { .. } => ErrorCode::PluginTrapped,
        PluginError::CapabilityDenied { .. } => ErrorCode::PluginCapabilityDenied,
        PluginError::InvalidOutput { .. } => ErrorCode::PluginInvalidOutput,
        PluginError::Host(m) => return AppError::internal(format!("plugin {plugin_id}.{tool}: {m}")),
        PluginError::Tool { kind, code, message, detail } => {
            let known = ErrorCode::all().iter().copied().find(|c| c.as_str() == code).filter(|c| !reserved(*c));
            let mut err = match known {
                Some(c) => AppError::new(c, message.clone()),
                None => {
                    let status = match kind {
                        ToolErrorKind::InvalidInput | ToolErrorKind::Failed => http::StatusCode::BAD_REQUEST,
                        ToolErrorKind::NotFound => http::StatusCode::NOT_FOUND,
                        ToolErrorKind::Conflict => http::StatusCode::CONFLICT,
                        ToolErrorKind::Denied => http::StatusCode::FORBIDDEN,
                    };
                    AppError::new(ErrorCode::PluginToolFailed, message.clone())
                        .with("plugin_code", code)
                        .with("kind", kind)
                        .with_status(status)
                }
            };
            if let Some(Value::Object(d)) = detail {
                for (k, v) in d {
                    err.detail.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            return err.with("plugin_id", plugin_id).with("tool", tool);
        }
    };
    let mut err = AppError::new(code, e.to_string()).with("plugin_id", plugin_id).with("tool", tool);
    match e {
        PluginError::InvalidInput { errors } => err = err.with("errors", errors),
        PluginError::CapabilityDenied { capability, import } => {
            err = err.with("capability", capability).with("import", import)
        }
        PluginError::Timeout { timeout_ms } => err = err.with("timeout_ms", timeout_ms),
        PluginError::MemoryExceeded { limit_bytes } => err = err.with("limit_bytes", limit_bytes),
        PluginError::OutputTooLarge { size, limit } => err = err.with("size", size).with("limit", limit),
        _ => {}
    }
    if matches!(code, ErrorCode::PluginTrapped | ErrorCode::PluginTimeout | ErrorCode::PluginMemoryExceeded
        | ErrorCode::PluginCapabilityDenied | ErrorCode::PluginOutputTooLarge | ErrorCode::PluginInvalidOutput)
    {
        tracing::warn!(plugin = plugin_id, tool, code = code.as_str(), error = %err.message, "plugin call failed");
    }
    err
}

/// A stored file by id (for the download route).
pub async fn file(app: &AppState, id: &str) -> AppResult<store::plugins::StoredFile> {
    store::plugins::get_file(&app.db, id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "File not found").with("file_id", id))
}

/// Reads served to plugins, straight from the database's committed state.
pub struct DbHost {
    db: Db,
}

fn host_err(e: store::StoreError) -> HostCallError {
    match e {
        store::StoreError::NotFound => HostCallError::NotFound("not found".into()),
        other => {
            tracing::error!(error = %other, "plugin host read failed");
            HostCallError::Unavailable("database unavailable".into())
        }
    }
}

fn found<T>(v: Option<T>, what: &str, id: &str) -> Result<T, HostCallError> {
    v.ok_or_else(|| HostCallError::NotFound(format!("{what} {id}")))
}

impl HostApi for DbHost {
    fn list_configs(&self) -> HostFuture<'_, Vec<Value>> {
        Box::pin(async move { store::plugins::mesh_configs(&self.db).await.map_err(host_err) })
    }
    fn get_config<'a>(&'a self, id: &'a str) -> HostFuture<'a, Value> {
        Box::pin(async move { found(store::plugins::mesh_config(&self.db, id).await.map_err(host_err)?, "config", id) })
    }
    fn list_nodes<'a>(&'a self, config_id: &'a str) -> HostFuture<'a, Vec<Value>> {
        Box::pin(async move { store::plugins::mesh_nodes(&self.db, config_id).await.map_err(host_err) })
    }
    fn get_node<'a>(&'a self, id: &'a str) -> HostFuture<'a, Value> {
        Box::pin(async move { found(store::plugins::mesh_node(&self.db, id).await.map_err(host_err)?, "node", id) })
    }
    fn list_peer_links<'a>(&'a self, config_id: &'a str) -> HostFuture<'a, Vec<Value>> {
        Box::pin(async move { store::plugins::mesh_links(&self.db, config_id).await.map_err(host_err) })
    }
    fn rendered_config<'a>(&'a self, node_id: &'a str) -> HostFuture<'a, RenderedConfig> {
        Box::pin(async move {
            let (node_name, content, sha256) =
                found(store::plugins::rendered_config(&self.db, node_id).await.map_err(host_err)?, "node", node_id)?;
            Ok(RenderedConfig { node_id: node_id.to_string(), node_name, content, sha256 })
        })
    }
    fn get_record<'a>(&'a self, plugin: &'a str, coll: &'a str, key: &'a str) -> HostFuture<'a, Option<RecordRow>> {
        Box::pin(async move { store::plugins::get_record(&self.db, plugin, coll, key).await.map_err(host_err) })
    }
    fn list_records<'a>(
        &'a self,
        plugin: &'a str,
        coll: &'a str,
        config_id: Option<&'a str>,
    ) -> HostFuture<'a, Vec<RecordRow>> {
        Box::pin(async move { store::plugins::list_records(&self.db, plugin, coll, config_id).await.map_err(host_err) })
    }
}

/// Managed hook lines contributed by plugins with the `config-hooks` capability (the seam
/// port forwarding uses): asked per node at render time. A plugin that fails is logged and
/// contributes nothing for that node; with no such plugin this costs nothing.
pub struct PluginManagedHooks;

impl crate::service::mesh::ManagedHooksProvider for PluginManagedHooks {
    fn hooks<'a>(
        &'a self,
        app: &'a AppState,
        config_id: &'a str,
        node_ids: &'a [String],
    ) -> refresh::BoxFut<'a, AppResult<std::collections::HashMap<String, wfm_domain::render::Hooks>>> {
        Box::pin(async move {
            let mut out = std::collections::HashMap::new();
            let Some(rt) = app.plugins.runtime() else { return Ok(out) };
            if !rt.has_config_hooks() {
                return Ok(out);
            }
            let host: Arc<dyn HostApi> = Arc::new(DbHost { db: app.db.clone() });
            for node_id in node_ids {
                let request_id = crate::util::new_request_id();
                let mut hooks = wfm_domain::render::Hooks::default();
                for ph in rt.node_hooks(config_id, node_id, &request_id, host.clone()).await {
                    match ph.result {
                        Ok(lines) => {
                            for h in lines {
                                let slot = match h.phase {
                                    wfm_plugin_runtime::HookPhase::PreUp => &mut hooks.pre_up,
                                    wfm_plugin_runtime::HookPhase::PostUp => &mut hooks.post_up,
                                    wfm_plugin_runtime::HookPhase::PreDown => &mut hooks.pre_down,
                                    wfm_plugin_runtime::HookPhase::PostDown => &mut hooks.post_down,
                                };
                                slot.push(h.command);
                            }
                        }
                        Err(e) => tracing::warn!(plugin = %ph.plugin_id, node_id = %node_id, error = %e, "plugin hooks failed"),
                    }
                }
                if !hooks.is_empty() {
                    out.insert(node_id.clone(), hooks);
                }
            }
            Ok(out)
        })
    }
}
