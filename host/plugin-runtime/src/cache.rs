//! Compile cache: precompiled components keyed by the SHA-256 of the `.wasm` and the engine's
//! compatibility hash, so a changed plugin or a changed wasmtime/config never loads stale code.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Feeds `Hash` output into SHA-256, to get a hash that is stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Hex digest identifying the engine's code-generation settings.
pub(crate) fn engine_key(engine: &Engine) -> String {
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..8])
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompileSource {
    /// Loaded from the cache.
    Cache,
    /// Compiled now (and written to the cache if one is configured).
    Compiled,
}

pub(crate) fn cache_path(dir: &Path, wasm_sha: &str, engine_key: &str) -> PathBuf {
    dir.join(format!("{wasm_sha}-{engine_key}.cwasm"))
}

/// Loads `wasm` from the cache or compiles it (and stores the artefact).
pub(crate) fn load_component(
    engine: &Engine,
    engine_key: &str,
    cache_dir: Option<&Path>,
    wasm: &[u8],
    wasm_sha: &str,
) -> Result<(Component, CompileSource), String> {
    if let Some(dir) = cache_dir {
        let path = cache_path(dir, wasm_sha, engine_key);
        if path.is_file() {
            match deserialize_own_artifact(engine, &path) {
                Ok(c) => return Ok((c, CompileSource::Cache)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable plugin cache entry");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let bytes = engine.precompile_component(wasm).map_err(|e| format!("{e:#}"))?;
        if let Err(e) = write_atomically(dir, &path, &bytes) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write plugin cache entry");
        }
        // Deserialising what we just produced avoids compiling twice.
        return deserialize_fresh_artifact(engine, &bytes).map(|c| (c, CompileSource::Compiled));
    }
    Component::new(engine, wasm).map(|c| (c, CompileSource::Compiled)).map_err(|e| format!("{e:#}"))
}

/// Loads a precompiled artefact from the cache directory.
///
/// The file is read into memory rather than mapped (`deserialize_file`): a mapped file that
/// someone truncates while the server runs would crash the process with SIGBUS.
///
/// Safety argument: `deserialize` trusts its input to be wasmtime's own output. The cache
/// directory belongs to this runtime, entries are written only by [`write_atomically`] from
/// `Engine::precompile_component`, and the file name binds the wasm hash and the engine's
/// compatibility hash; wasmtime additionally checks the artefact's header against the engine.
#[allow(unsafe_code)]
fn deserialize_own_artifact(engine: &Engine, path: &Path) -> Result<Component, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    // SAFETY: see the function documentation; only artefacts this runtime wrote are loaded.
    unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| format!("{e:#}"))
}

/// Loads bytes `Engine::precompile_component` returned a moment ago.
#[allow(unsafe_code)]
fn deserialize_fresh_artifact(engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
    // SAFETY: `bytes` is the unmodified output of `precompile_component` on this engine.
    unsafe { Component::deserialize(engine, bytes) }.map_err(|e| format!("{e:#}"))
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
