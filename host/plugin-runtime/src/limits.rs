//! Runtime configuration and per-call limits.

use std::path::PathBuf;
use std::time::Duration;

/// Limits applied to every call (and to `describe` at load).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock budget of one call (epoch interruption).
    pub call_timeout: Duration,
    /// Linear memory a plugin instance may grow to.
    pub max_memory_bytes: usize,
    /// Largest JSON output accepted from a tool.
    pub max_output_bytes: usize,
    /// Largest record value.
    pub max_record_bytes: usize,
    /// Sum of file sizes one call may hand over.
    pub max_file_bytes: usize,
    /// Files one call may hand over.
    pub max_files_per_call: usize,
    /// Record writes (and refresh hints) one call may make.
    pub max_writes_per_call: usize,
    /// Longest log line kept.
    pub max_log_chars: usize,
    /// Calls running at once; further calls wait.
    pub max_concurrent_calls: usize,
    /// API path prefix under which stored files are served (`<prefix>/<file id>`).
    pub file_download_prefix: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(5),
            max_memory_bytes: 64 << 20,
            max_output_bytes: 1 << 20,
            max_record_bytes: 1 << 20,
            max_file_bytes: 32 << 20,
            max_files_per_call: 16,
            max_writes_per_call: 1000,
            max_log_chars: 4096,
            max_concurrent_calls: 32,
            file_download_prefix: "/api/v1/tools/files".to_string(),
        }
    }
}

/// Where plugins come from and where compiled artefacts go.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory scanned for `*.wasm` components (not recursive).
    pub plugin_dir: PathBuf,
    /// Directory for precompiled artefacts; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    /// Limits.
    pub limits: Limits,
}

impl RuntimeConfig {
    /// The directory `scripts/build-plugins.sh` fills: `<workspace>/target/plugins`.
    pub fn default_plugin_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins")
    }

    /// From the environment: `WFM_PLUGIN_DIR` (default [`Self::default_plugin_dir`]),
    /// `WFM_PLUGIN_CACHE_DIR` (default `<plugin dir>/.cache`; `off` disables the cache),
    /// `WFM_PLUGIN_TIMEOUT_MS`, `WFM_PLUGIN_MEMORY_MB`.
    pub fn from_env() -> Self {
        let plugin_dir = std::env::var_os("WFM_PLUGIN_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(Self::default_plugin_dir);
        let cache_dir = match std::env::var("WFM_PLUGIN_CACHE_DIR") {
            Ok(v) if v == "off" => None,
            Ok(v) if !v.is_empty() => Some(PathBuf::from(v)),
            _ => Some(plugin_dir.join(".cache")),
        };
        let mut limits = Limits::default();
        if let Some(ms) = std::env::var("WFM_PLUGIN_TIMEOUT_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
            limits.call_timeout = Duration::from_millis(ms.max(10));
        }
        if let Some(mb) = std::env::var("WFM_PLUGIN_MEMORY_MB").ok().and_then(|v| v.parse::<usize>().ok()) {
            limits.max_memory_bytes = mb.max(2) << 20;
        }
        Self { plugin_dir, cache_dir, limits }
    }
}
