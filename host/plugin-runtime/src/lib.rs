//! # wfm-plugin-runtime
//!
//! Loads WFM plugins (WebAssembly components built against the `wfm:plugin@0.1.0` ABI in
//! `plugin-sdk/wit`), keeps a catalogue of their tools, and runs tool calls in a sandbox.
//!
//! - **Discovery**: every `*.wasm` in [`RuntimeConfig::plugin_dir`]. A file that fails to
//!   compile, link, declare a supported ABI or a valid manifest is listed in
//!   [`PluginRuntime::failures`]; loading never fails as a whole.
//! - **Compile cache** (`cache.rs`): precompiled artefacts keyed by the wasm's SHA-256 and
//!   the engine's compatibility hash.
//! - **Isolation**: one fresh instance per call, from a pre-instantiated component; WASI with
//!   nothing granted (no preopens, network, environment or arguments); typed host imports,
//!   each checked against the plugin's declared capabilities (`state.rs`).
//! - **Limits** ([`Limits`]): epoch-based deadline (a ticker thread advances the epoch every
//!   10 ms), a memory limiter, output size, record/file sizes, concurrent calls.
//! - **Effects**: writes a plugin asks for are collected and returned in [`Effects`] with the
//!   output, for the caller to apply in its own transaction (`host_api.rs`).
//!
//! The server implements [`HostApi`] (mesh and record reads) and maps [`PluginError::code`]
//! to its error envelope.

mod bindings {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../../plugin-sdk/wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}
mod cache;
mod capability;
mod error;
mod host_api;
mod limits;
mod state;
#[cfg(feature = "testing")]
pub mod testing;

pub use cache::CompileSource;
pub use capability::Capability;
pub use error::{LoadError, PluginError, ToolErrorKind};
pub use host_api::{
    Effects, FileWrite, HostApi, HostCallError, HostFuture, NoHost, RecordRow, RecordWrite, RefreshHint,
    RenderedConfig,
};
pub use limits::{Limits, RuntimeConfig};

use bindings::wfm::plugin::types as wit;
use serde::Serialize;
use serde_json::Value;
use state::CallState;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

/// The ABI versions this host supports: `wfm:plugin@0.1.x`.
pub const SUPPORTED_ABI: &str = "0.1.0";
const GUEST_INTERFACE: &str = "wfm:plugin/guest@";
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A tool in the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    /// Tool name (unique in its plugin).
    pub name: String,
    /// Short title.
    pub title: Option<String>,
    /// Description.
    pub description: String,
    /// JSON Schema of the input.
    pub input_schema: Value,
    /// JSON Schema of the output, if declared.
    pub output_schema: Option<Value>,
    /// No side effects.
    pub read_only: bool,
    /// May destroy data.
    pub destructive: bool,
    /// Repeatable.
    pub idempotent: bool,
}

/// A loaded plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// Plugin id.
    pub id: String,
    /// Plugin version.
    pub version: String,
    /// Human name.
    pub name: String,
    /// Description.
    pub description: String,
    /// ABI version from the manifest (agrees with the export name).
    pub abi_version: String,
    /// Declared (and granted) capabilities.
    pub capabilities: Vec<Capability>,
    /// File name in the plugin directory.
    pub file: String,
    /// SHA-256 of the `.wasm`.
    pub sha256: String,
    /// Whether the compiled code came from the cache.
    pub compile: CompileSource,
    /// Tools.
    pub tools: Vec<ToolInfo>,
}

/// A plugin file that could not be loaded.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFailure {
    /// File name in the plugin directory.
    pub file: String,
    /// Plugin id, when the manifest could be read.
    pub plugin_id: Option<String>,
    /// Always `PLUGIN_UNAVAILABLE`.
    pub code: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// Figures of the last load.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LoadStats {
    /// Components compiled.
    pub compiled: usize,
    /// Components taken from the cache.
    pub from_cache: usize,
    /// Wall time of the whole load.
    pub elapsed_ms: u128,
}

/// A tool call.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// Plugin id.
    pub plugin_id: String,
    /// Tool name.
    pub tool: String,
    /// Input (validated against the tool's input schema before the call).
    pub input: Value,
    /// Request id for logs.
    pub request_id: String,
    /// Who calls (`admin`, `mcp:<name>`, ...).
    pub principal: Option<String>,
    /// Refuse tools that are not read-only (for read-only principals).
    pub read_only: bool,
    /// Shorter deadline than the configured one.
    pub timeout: Option<Duration>,
}

impl CallRequest {
    /// A request with a random request id, `admin` principal and default deadline.
    pub fn new(plugin_id: impl Into<String>, tool: impl Into<String>, input: Value) -> Self {
        Self {
            plugin_id: plugin_id.into(),
            tool: tool.into(),
            input,
            request_id: uuid::Uuid::new_v4().simple().to_string(),
            principal: Some("admin".to_string()),
            read_only: false,
            timeout: None,
        }
    }
}

/// A successful call.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The tool's output (valid against its output schema).
    pub output: Value,
    /// Effects to apply in the caller's transaction.
    pub effects: Effects,
    /// Wall time of the call.
    pub elapsed: Duration,
}

/// Lifecycle phase of a managed hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookPhase {
    /// `PreUp`.
    PreUp,
    /// `PostUp`.
    PostUp,
    /// `PreDown`.
    PreDown,
    /// `PostDown`.
    PostDown,
}

/// A managed hook a plugin contributes to a node's rendered config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedHook {
    /// Phase.
    pub phase: HookPhase,
    /// The plugin's source id (e.g. a rule id).
    pub source_id: String,
    /// Command.
    pub command: String,
    /// Label.
    pub label: String,
}

/// The hooks of one plugin for one node.
#[derive(Debug)]
pub struct PluginHooks {
    /// Plugin id.
    pub plugin_id: String,
    /// Hooks, or why the plugin could not provide them.
    pub result: Result<Vec<ManagedHook>, PluginError>,
}

struct LoadedPlugin {
    info: PluginInfo,
    caps: Arc<HashSet<Capability>>,
    pre: bindings::PluginPre<CallState>,
    validators: HashMap<String, ToolValidators>,
}

struct ToolValidators {
    input: jsonschema::Validator,
    output: Option<jsonschema::Validator>,
}

struct Inner {
    engine: Engine,
    limits: Arc<Limits>,
    plugins: Vec<LoadedPlugin>,
    by_id: HashMap<String, usize>,
    failures: Vec<LoadFailure>,
    stats: LoadStats,
    permits: tokio::sync::Semaphore,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The plugin runtime: an engine, the loaded plugins and their catalogue. Cheap to clone.
#[derive(Clone)]
pub struct PluginRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("plugins", &self.inner.plugins.iter().map(|p| &p.info.id).collect::<Vec<_>>())
            .field("failures", &self.inner.failures.len())
            .finish()
    }
}

/// The runtime could not be created at all (engine configuration).
#[derive(Debug, thiserror::Error)]
#[error("plugin runtime: {0}")]
pub struct RuntimeError(String);

fn new_engine() -> Result<Engine, RuntimeError> {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.max_wasm_stack(1 << 20);
    Engine::new(&config).map_err(|e| RuntimeError(format!("{e:#}")))
}

fn new_linker(engine: &Engine) -> Result<Linker<CallState>, RuntimeError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| RuntimeError(format!("{e:#}")))?;
    bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
        .map_err(|e| RuntimeError(format!("{e:#}")))?;
    Ok(linker)
}

fn spawn_ticker(engine: Engine, stop: Arc<AtomicBool>) -> Result<(), RuntimeError> {
    std::thread::Builder::new()
        .name("wfm-plugin-epoch".to_string())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .map(|_| ())
        .map_err(|e| RuntimeError(format!("cannot start epoch ticker: {e}")))
}

/// Reads the ABI version from the component's exports (`wfm:plugin/guest@X.Y.Z`).
fn exported_abi(engine: &Engine, component: &Component) -> Option<String> {
    component
        .component_type()
        .exports(engine)
        .find_map(|(name, _)| name.strip_prefix(GUEST_INTERFACE).map(str::to_string))
}

/// `0.1.x` is compatible with `0.1.0`; any other minor or major is not.
fn abi_compatible(version: &str) -> bool {
    let mut ours = SUPPORTED_ABI.split('.');
    let mut theirs = version.split('.');
    ours.next() == theirs.next() && ours.next() == theirs.next() && theirs.next().is_some_and(|p| p.parse::<u32>().is_ok())
}

fn valid_id(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_tool_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn compile_schema(schema: &Value, what: &str) -> Result<jsonschema::Validator, LoadError> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(schema)
        .map_err(|e| LoadError::Manifest(format!("{what}: invalid JSON Schema: {e}")))
}

impl PluginRuntime {
    /// Creates the engine and loads every plugin in `config.plugin_dir`. A missing directory
    /// means no plugins; failures of single plugins are reported, not returned.
    pub async fn load(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let started = Instant::now();
        let engine = new_engine()?;
        let linker = new_linker(&engine)?;
        let limits = Arc::new(config.limits.clone());
        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), stop_ticker.clone())?;

        let mut files: Vec<_> = match std::fs::read_dir(&config.plugin_dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "wasm"))
                .collect(),
            Err(e) => {
                tracing::warn!(dir = %config.plugin_dir.display(), error = %e, "plugin directory not readable; no plugins loaded");
                Vec::new()
            }
        };
        files.sort();

        let engine_key = cache::engine_key(&engine);
        let mut plugins: Vec<LoadedPlugin> = Vec::new();
        let mut by_id = HashMap::new();
        let mut failures = Vec::new();
        let mut stats = LoadStats::default();
        for path in files {
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            match load_one(&engine, &engine_key, &linker, &limits, config.cache_dir.as_deref(), &path, &file).await {
                Ok(p) => {
                    if by_id.contains_key(&p.info.id) {
                        let err = LoadError::Duplicate(p.info.id.clone());
                        tracing::error!(file, error = %err, "plugin not loaded");
                        failures.push(LoadFailure {
                            file,
                            plugin_id: Some(p.info.id.clone()),
                            code: "PLUGIN_UNAVAILABLE",
                            reason: err.to_string(),
                        });
                        continue;
                    }
                    match p.info.compile {
                        CompileSource::Cache => stats.from_cache += 1,
                        CompileSource::Compiled => stats.compiled += 1,
                    }
                    tracing::info!(plugin = %p.info.id, version = %p.info.version, tools = p.info.tools.len(), "plugin loaded");
                    by_id.insert(p.info.id.clone(), plugins.len());
                    plugins.push(p);
                }
                Err((plugin_id, err)) => {
                    tracing::error!(file, error = %err, "plugin not loaded");
                    failures.push(LoadFailure { file, plugin_id, code: "PLUGIN_UNAVAILABLE", reason: err.to_string() });
                }
            }
        }
        stats.elapsed_ms = started.elapsed().as_millis();
        let permits = tokio::sync::Semaphore::new(limits.max_concurrent_calls.max(1));
        Ok(Self { inner: Arc::new(Inner { engine, limits, plugins, by_id, failures, stats, permits, stop_ticker }) })
    }

    /// Loaded plugins, in file-name order.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginInfo> {
        self.inner.plugins.iter().map(|p| &p.info)
    }

    /// One loaded plugin.
    pub fn plugin(&self, plugin_id: &str) -> Option<&PluginInfo> {
        self.inner.by_id.get(plugin_id).map(|&i| &self.inner.plugins[i].info)
    }

    /// Files that failed to load.
    pub fn failures(&self) -> &[LoadFailure] {
        &self.inner.failures
    }

    /// Figures of the load.
    pub fn stats(&self) -> LoadStats {
        self.inner.stats
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// One tool.
    pub fn tool(&self, plugin_id: &str, tool: &str) -> Option<&ToolInfo> {
        self.plugin(plugin_id).and_then(|p| p.tools.iter().find(|t| t.name == tool))
    }

    fn find(&self, plugin_id: &str) -> Result<&LoadedPlugin, PluginError> {
        if let Some(&i) = self.inner.by_id.get(plugin_id) {
            return Ok(&self.inner.plugins[i]);
        }
        if let Some(f) = self.inner.failures.iter().find(|f| f.plugin_id.as_deref() == Some(plugin_id)) {
            return Err(PluginError::Unavailable { plugin_id: plugin_id.to_string(), reason: f.reason.clone() });
        }
        Err(PluginError::NotFound { plugin_id: plugin_id.to_string() })
    }

    /// Validates `input` against a tool's input schema without calling it.
    pub fn validate_input(&self, plugin_id: &str, tool: &str, input: &Value) -> Result<(), PluginError> {
        let plugin = self.find(plugin_id)?;
        let v = plugin.validators.get(tool).ok_or_else(|| PluginError::ToolNotFound {
            plugin_id: plugin_id.to_string(),
            tool: tool.to_string(),
        })?;
        let errors: Vec<String> = v
            .input
            .iter_errors(input)
            .take(20)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() { e.to_string() } else { format!("{path}: {e}") }
            })
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(PluginError::InvalidInput { errors }) }
    }

    /// Runs one tool: schema check, fresh instance, deadline and limits, output check.
    pub async fn call_tool(&self, req: CallRequest, host: Arc<dyn HostApi>) -> Result<CallOutcome, PluginError> {
        let started = Instant::now();
        let plugin = self.find(&req.plugin_id)?;
        let tool = plugin.info.tools.iter().find(|t| t.name == req.tool).ok_or_else(|| PluginError::ToolNotFound {
            plugin_id: req.plugin_id.clone(),
            tool: req.tool.clone(),
        })?;
        if req.read_only && !tool.read_only {
            return Err(PluginError::Denied(format!(
                "tool {}.{} writes and the caller may only read",
                req.plugin_id, req.tool
            )));
        }
        self.validate_input(&req.plugin_id, &req.tool, &req.input)?;
        let input = req.input.to_string();
        let timeout = self.timeout(req.timeout);
        let _permit = self.inner.permits.acquire().await.map_err(|_| PluginError::Unavailable {
            plugin_id: req.plugin_id.clone(),
            reason: "runtime is shutting down".to_string(),
        })?;
        let ctx = wit::CallContext {
            request_id: req.request_id.clone(),
            principal: req.principal.clone(),
            deadline_ms: timeout.as_millis() as u64,
        };
        let mut store = self.new_store(plugin, &req.request_id, host, timeout);
        let result = guarded(timeout, async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instance.wfm_plugin_guest().call_call_tool(&mut store, &ctx, &req.tool, &input).await
        })
        .await;
        let raw = match result {
            Ok(Ok(Ok(json))) => json,
            Ok(Ok(Err(e))) => return Err(tool_error(e)),
            Ok(Err(trap)) => return Err(classify(trap, &store, timeout)),
            Err(()) => return Err(PluginError::Timeout { timeout_ms: timeout.as_millis() as u64 }),
        };
        let limit = self.inner.limits.max_output_bytes;
        if raw.len() > limit {
            return Err(PluginError::OutputTooLarge { size: raw.len(), limit });
        }
        let output: Value = serde_json::from_str(&raw)
            .map_err(|e| PluginError::InvalidOutput { message: format!("not JSON: {e}") })?;
        if let Some(v) = plugin.validators.get(&req.tool).and_then(|v| v.output.as_ref())
            && let Some(e) = v.iter_errors(&output).next()
        {
            return Err(PluginError::InvalidOutput {
                message: format!("does not match the output schema at {}: {e}", e.instance_path()),
            });
        }
        let effects = std::mem::take(&mut store.data_mut().effects);
        if tool.read_only && !effects.is_empty() {
            return Err(PluginError::InvalidOutput { message: "a read-only tool asked for side effects".to_string() });
        }
        Ok(CallOutcome { output, effects, elapsed: started.elapsed() })
    }

    /// Whether any loaded plugin contributes managed hooks.
    pub fn has_config_hooks(&self) -> bool {
        self.inner.plugins.iter().any(|p| p.caps.contains(&Capability::ConfigHooks))
    }

    /// Collects the managed hooks of every plugin with the `config-hooks` capability for one
    /// node (plugins in load order). Errors are per plugin.
    pub async fn node_hooks(
        &self,
        config_id: &str,
        node_id: &str,
        request_id: &str,
        host: Arc<dyn HostApi>,
    ) -> Vec<PluginHooks> {
        let mut out = Vec::new();
        for plugin in self.inner.plugins.iter().filter(|p| p.caps.contains(&Capability::ConfigHooks)) {
            let result = self.one_node_hooks(plugin, config_id, node_id, request_id, host.clone()).await;
            out.push(PluginHooks { plugin_id: plugin.info.id.clone(), result });
        }
        out
    }

    async fn one_node_hooks(
        &self,
        plugin: &LoadedPlugin,
        config_id: &str,
        node_id: &str,
        request_id: &str,
        host: Arc<dyn HostApi>,
    ) -> Result<Vec<ManagedHook>, PluginError> {
        let timeout = self.timeout(None);
        let _permit = self.inner.permits.acquire().await.map_err(|_| PluginError::Unavailable {
            plugin_id: plugin.info.id.clone(),
            reason: "runtime is shutting down".to_string(),
        })?;
        let ctx = wit::CallContext {
            request_id: request_id.to_string(),
            principal: Some("system".to_string()),
            deadline_ms: timeout.as_millis() as u64,
        };
        let mut store = self.new_store(plugin, request_id, host, timeout);
        let result = guarded(timeout, async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instance.wfm_plugin_guest().call_node_hooks(&mut store, &ctx, config_id, node_id).await
        })
        .await;
        let hooks = match result {
            Ok(Ok(Ok(h))) => h,
            Ok(Ok(Err(e))) => return Err(tool_error(e)),
            Ok(Err(trap)) => return Err(classify(trap, &store, timeout)),
            Err(()) => return Err(PluginError::Timeout { timeout_ms: timeout.as_millis() as u64 }),
        };
        if !store.data().effects.is_empty() {
            return Err(PluginError::InvalidOutput { message: "node-hooks asked for side effects".to_string() });
        }
        Ok(hooks
            .into_iter()
            .map(|h| ManagedHook {
                phase: match h.phase {
                    wit::HookPhase::PreUp => HookPhase::PreUp,
                    wit::HookPhase::PostUp => HookPhase::PostUp,
                    wit::HookPhase::PreDown => HookPhase::PreDown,
                    wit::HookPhase::PostDown => HookPhase::PostDown,
                },
                source_id: h.source_id,
                command: h.command,
                label: h.label,
            })
            .collect())
    }

    fn timeout(&self, requested: Option<Duration>) -> Duration {
        let max = self.inner.limits.call_timeout;
        requested.map(|t| t.min(max)).unwrap_or(max)
    }

    fn new_store(&self, plugin: &LoadedPlugin, request_id: &str, host: Arc<dyn HostApi>, timeout: Duration) -> Store<CallState> {
        let state = CallState::new(&plugin.info.id, request_id, plugin.caps.clone(), host, self.inner.limits.clone());
        new_store(&self.inner.engine, state, timeout)
    }
}

fn new_store(engine: &Engine, state: CallState, timeout: Duration) -> Store<CallState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    let ticks = (timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    store
}

/// Bounds a call by wall time too, with a grace period over the epoch deadline, in case a
/// host callback (not the guest) is what hangs.
async fn guarded<T>(timeout: Duration, fut: impl Future<Output = T>) -> Result<T, ()> {
    tokio::time::timeout(timeout + Duration::from_millis(500), fut).await.map_err(|_| ())
}

fn tool_error(e: wit::ToolError) -> PluginError {
    PluginError::Tool {
        kind: match e.kind {
            wit::ErrorKind::InvalidInput => ToolErrorKind::InvalidInput,
            wit::ErrorKind::NotFound => ToolErrorKind::NotFound,
            wit::ErrorKind::Conflict => ToolErrorKind::Conflict,
            wit::ErrorKind::Denied => ToolErrorKind::Denied,
            wit::ErrorKind::Failed => ToolErrorKind::Failed,
        },
        code: e.code,
        message: e.message,
        detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
    }
}

/// Turns a trap into the most specific error: capability violation, memory, deadline, or a
/// plain trap with the plugin's panic message when it printed one.
fn classify(err: wasmtime::Error, store: &Store<CallState>, timeout: Duration) -> PluginError {
    let state = store.data();
    if let Some(v) = &state.violation {
        return PluginError::CapabilityDenied { capability: v.capability.to_string(), import: v.import.to_string() };
    }
    if state.limiter.exceeded {
        return PluginError::MemoryExceeded { limit_bytes: state.limiter.max_memory };
    }
    if matches!(err.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
        return PluginError::Timeout { timeout_ms: timeout.as_millis() as u64 };
    }
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).trim().to_string();
    let trap = match err.downcast_ref::<wasmtime::Trap>() {
        Some(t) => t.to_string(),
        None => format!("{err}"),
    };
    let message = if stderr.is_empty() { trap } else { format!("{trap}; plugin said: {stderr}") };
    PluginError::Trapped { message }
}

async fn load_one(
    engine: &Engine,
    engine_key: &str,
    linker: &Linker<CallState>,
    limits: &Arc<Limits>,
    cache_dir: Option<&Path>,
    path: &Path,
    file: &str,
) -> Result<LoadedPlugin, (Option<String>, LoadError)> {
    let wasm = std::fs::read(path).map_err(|e| (None, LoadError::Compile(format!("cannot read {file}: {e}"))))?;
    let sha256 = cache::sha256_hex(&wasm);
    let (component, compile) = {
        let engine = engine.clone();
        let engine_key = engine_key.to_string();
        let cache_dir = cache_dir.map(Path::to_path_buf);
        let sha = sha256.clone();
        tokio::task::spawn_blocking(move || cache::load_component(&engine, &engine_key, cache_dir.as_deref(), &wasm, &sha))
            .await
            .map_err(|e| (None, LoadError::Compile(e.to_string())))?
            .map_err(|e| (None, LoadError::Compile(e)))?
    };
    let abi = exported_abi(engine, &component).ok_or_else(|| {
        (None, LoadError::Abi(format!("{file} does not export {GUEST_INTERFACE}{SUPPORTED_ABI}; is it a WFM plugin?")))
    })?;
    if !abi_compatible(&abi) {
        return Err((
            None,
            LoadError::Abi(format!("{file} was built for ABI {abi}; this host supports {SUPPORTED_ABI} (0.1.x)")),
        ));
    }
    let pre = linker.instantiate_pre(&component).map_err(|e| (None, LoadError::Link(format!("{e:#}"))))?;
    let pre = bindings::PluginPre::new(pre).map_err(|e| (None, LoadError::Abi(format!("{e:#}"))))?;

    // `describe` runs with no capabilities and no host data.
    let describe_timeout = limits.call_timeout.min(Duration::from_secs(2));
    let state = CallState::new(file, "load", Arc::new(HashSet::new()), Arc::new(NoHost), limits.clone());
    let mut store = new_store(engine, state, describe_timeout);
    let manifest = guarded(describe_timeout, async {
        let instance = pre.instantiate_async(&mut store).await?;
        instance.wfm_plugin_guest().call_describe(&mut store).await
    })
    .await;
    let manifest = match manifest {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err((None, LoadError::Describe(classify(e, &store, describe_timeout).to_string()))),
        Err(()) => return Err((None, LoadError::Describe("timed out".to_string()))),
    };
    let id = manifest.id.clone();
    let fail = |e: LoadError| (Some(id.clone()), e);
    if !valid_id(&manifest.id) {
        return Err((None, LoadError::Manifest(format!("invalid plugin id {:?}", manifest.id))));
    }
    if manifest.abi_version != abi {
        return Err(fail(LoadError::Manifest(format!(
            "manifest says ABI {} but the component exports {abi}",
            manifest.abi_version
        ))));
    }
    if manifest.version.trim().is_empty() {
        return Err(fail(LoadError::Manifest("empty version".to_string())));
    }
    let mut caps = Vec::new();
    for c in &manifest.capabilities {
        caps.push(c.parse::<Capability>().map_err(|e| fail(LoadError::Manifest(e)))?);
    }
    caps.sort();
    caps.dedup();
    let mut tools = Vec::new();
    let mut validators = HashMap::new();
    for t in manifest.tools {
        if !valid_tool_name(&t.name) || validators.contains_key(&t.name) {
            return Err(fail(LoadError::Manifest(format!("invalid or duplicate tool name {:?}", t.name))));
        }
        let input_schema: Value = serde_json::from_str(&t.input_schema)
            .map_err(|e| fail(LoadError::Manifest(format!("tool {}: input schema is not JSON: {e}", t.name))))?;
        let output_schema: Option<Value> = match &t.output_schema {
            Some(s) => Some(
                serde_json::from_str(s)
                    .map_err(|e| fail(LoadError::Manifest(format!("tool {}: output schema is not JSON: {e}", t.name))))?,
            ),
            None => None,
        };
        let input = compile_schema(&input_schema, &format!("tool {} input", t.name)).map_err(&fail)?;
        let output = match &output_schema {
            Some(s) => Some(compile_schema(s, &format!("tool {} output", t.name)).map_err(&fail)?),
            None => None,
        };
        validators.insert(t.name.clone(), ToolValidators { input, output });
        tools.push(ToolInfo {
            name: t.name,
            title: t.title,
            description: t.description,
            input_schema,
            output_schema,
            read_only: t.read_only,
            destructive: t.destructive,
            idempotent: t.idempotent,
        });
    }
    let info = PluginInfo {
        id: manifest.id,
        version: manifest.version,
        name: manifest.name,
        description: manifest.description,
        abi_version: abi,
        capabilities: caps.clone(),
        file: file.to_string(),
        sha256,
        compile,
        tools,
    };
    Ok(LoadedPlugin { info, caps: Arc::new(caps.into_iter().collect()), pre, validators })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_versions() {
        assert!(abi_compatible("0.1.0"));
        assert!(abi_compatible("0.1.7"));
        assert!(!abi_compatible("0.2.0"));
        assert!(!abi_compatible("1.1.0"));
        assert!(!abi_compatible("0.1"));
    }

    #[test]
    fn ids_and_tool_names() {
        assert!(valid_id("awg-params"));
        assert!(!valid_id("Awg"));
        assert!(!valid_id("1x"));
        assert!(valid_tool_name("random_config_params"));
        assert!(!valid_tool_name("a-b"));
    }

    #[test]
    fn capabilities_round_trip() {
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>(), Ok(c));
        }
        assert!("net".parse::<Capability>().is_err());
    }
}
