//! Test support (feature `testing`): builds the plugins and the hostile fixtures from source
//! with `scripts/build-plugins.sh --fixtures`, once per process, into a target directory of
//! their own (`target/plugin-test`) so a surrounding `cargo test` never waits on its own lock.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the helper builds: `<workspace>/target/plugin-test`.
pub fn build_root() -> PathBuf {
    workspace_root().join("target/plugin-test")
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

static BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// Builds plugins and fixtures (once per process) and returns `(plugins dir, fixtures dir)`.
pub fn build_all() -> Result<(PathBuf, PathBuf), String> {
    let root = build_root();
    BUILT
        .get_or_init(|| {
            let script = workspace_root().join("scripts/build-plugins.sh");
            let out = std::process::Command::new("bash")
                .arg(&script)
                .arg("--fixtures")
                .env("CARGO_TARGET_DIR", &root)
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "build-plugins.sh failed:\n{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        })
        .clone()?;
    Ok((root.join("plugins"), root.join("plugin-fixtures")))
}

/// A fresh directory holding copies of the named components (`name` = crate name, e.g.
/// `wfm-plugin-awg-params`), taken from the plugins or the fixtures build.
pub fn plugin_dir_with(crates: &[&str]) -> Result<tempfile::TempDir, String> {
    let (plugins, fixtures) = build_all()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for c in crates {
        let file = format!("{}.wasm", c.replace('-', "_"));
        let src = [plugins.join(&file), fixtures.join(&file)].into_iter().find(|p| p.is_file());
        let Some(src) = src else { return Err(format!("{file} was not built")) };
        std::fs::copy(&src, dir.path().join(&file)).map_err(|e| e.to_string())?;
    }
    Ok(dir)
}

/// The first-party plugins and the example.
pub const PLUGINS: &[&str] = &["wfm-plugin-awg-params", "wfm-example-hello-plugin"];

/// Every hostile or helper fixture.
pub const FIXTURES: &[&str] = &[
    "wfm-fixture-loop",
    "wfm-fixture-memory-bomb",
    "wfm-fixture-trap",
    "wfm-fixture-undeclared-capability",
    "wfm-fixture-oversized-output",
    "wfm-fixture-wrong-abi",
    "wfm-fixture-effects",
];
