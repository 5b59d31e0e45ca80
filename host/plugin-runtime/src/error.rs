//! Errors of the runtime. Each has a stable `PLUGIN_*` code the server maps to its envelope.

use serde_json::Value;

/// Kind of a typed tool failure returned by a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolErrorKind {
    /// The input is wrong.
    InvalidInput,
    /// Something named by the input does not exist.
    NotFound,
    /// The state forbids the operation.
    Conflict,
    /// The caller may not do this.
    Denied,
    /// Any other failure.
    Failed,
}

/// Why a plugin call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// No plugin with that id is loaded (or it failed to load).
    #[error("plugin {plugin_id} not found")]
    NotFound {
        /// Requested id.
        plugin_id: String,
    },
    /// The plugin exists but has no such tool.
    #[error("plugin {plugin_id} has no tool {tool}")]
    ToolNotFound {
        /// Plugin id.
        plugin_id: String,
        /// Requested tool.
        tool: String,
    },
    /// The plugin exists on disk but could not be loaded, or the runtime is saturated.
    #[error("plugin {plugin_id} is unavailable: {reason}")]
    Unavailable {
        /// Plugin id.
        plugin_id: String,
        /// Why.
        reason: String,
    },
    /// The input did not pass the tool's input schema.
    #[error("input does not match the tool's schema")]
    InvalidInput {
        /// One message per violation, with its JSON pointer.
        errors: Vec<String>,
    },
    /// The caller may not call this tool (e.g. a read-only principal and a writing tool).
    #[error("{0}")]
    Denied(String),
    /// The plugin returned a typed error.
    #[error("{code}: {message}")]
    Tool {
        /// Kind.
        kind: ToolErrorKind,
        /// The plugin's code.
        code: String,
        /// Message.
        message: String,
        /// Detail object, if any.
        detail: Option<Value>,
    },
    /// The call ran past its deadline and was interrupted.
    #[error("plugin call exceeded its {timeout_ms} ms deadline")]
    Timeout {
        /// The deadline.
        timeout_ms: u64,
    },
    /// The plugin tried to grow its memory past the limit.
    #[error("plugin exceeded its memory limit of {limit_bytes} bytes")]
    MemoryExceeded {
        /// The limit.
        limit_bytes: usize,
    },
    /// The output (or a file) was larger than allowed.
    #[error("plugin output of {size} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge {
        /// Actual size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// The plugin trapped (panic, unreachable, bad memory access...).
    #[error("plugin trapped: {message}")]
    Trapped {
        /// Trap description and, when the plugin printed one, its panic message.
        message: String,
    },
    /// The plugin called a host import whose capability it did not declare.
    #[error("plugin called {import} without capability {capability}")]
    CapabilityDenied {
        /// Missing capability.
        capability: String,
        /// Import called.
        import: String,
    },
    /// The plugin's output is not JSON or does not match its output schema.
    #[error("plugin output is invalid: {message}")]
    InvalidOutput {
        /// What is wrong.
        message: String,
    },
    /// A host callback failed in a way the plugin could not be told about.
    #[error("host failure during plugin call: {0}")]
    Host(String),
}

impl PluginError {
    /// The stable code (`PLUGIN_*`, or the plugin's own code for typed tool errors).
    pub fn code(&self) -> &str {
        match self {
            PluginError::NotFound { .. } => "PLUGIN_NOT_FOUND",
            PluginError::ToolNotFound { .. } => "PLUGIN_TOOL_NOT_FOUND",
            PluginError::Unavailable { .. } => "PLUGIN_UNAVAILABLE",
            PluginError::InvalidInput { .. } => "PLUGIN_INVALID_INPUT",
            PluginError::Denied(_) => "PLUGIN_DENIED",
            PluginError::Tool { code, .. } => code,
            PluginError::Timeout { .. } => "PLUGIN_TIMEOUT",
            PluginError::MemoryExceeded { .. } => "PLUGIN_MEMORY_EXCEEDED",
            PluginError::OutputTooLarge { .. } => "PLUGIN_OUTPUT_TOO_LARGE",
            PluginError::Trapped { .. } => "PLUGIN_TRAPPED",
            PluginError::CapabilityDenied { .. } => "PLUGIN_CAPABILITY_DENIED",
            PluginError::InvalidOutput { .. } => "PLUGIN_INVALID_OUTPUT",
            PluginError::Host(_) => "INTERNAL_ERROR",
        }
    }
}

/// Why a plugin file could not be loaded (reported in the catalogue, never fatal).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read or compiled.
    #[error("cannot compile: {0}")]
    Compile(String),
    /// The component does not export a supported `wfm:plugin/guest` version.
    #[error("unsupported ABI: {0}")]
    Abi(String),
    /// The component imports something the host does not provide.
    #[error("cannot link: {0}")]
    Link(String),
    /// The manifest is invalid (id, version, capabilities, tools, schemas).
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// Another plugin already has this id.
    #[error("duplicate plugin id {0}")]
    Duplicate(String),
    /// `describe` trapped or timed out.
    #[error("describe failed: {0}")]
    Describe(String),
}
