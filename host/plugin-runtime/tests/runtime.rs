//! The runtime against real components built from source: the first-party plugins, the
//! example, and the hostile fixtures (plugins/fixtures/*, each with its contract on top).

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wfm_plugin_runtime::testing::{FIXTURES, PLUGINS, plugin_dir_with};
use wfm_plugin_runtime::{
    CallRequest, Capability, CompileSource, HostApi, HostCallError, HostFuture, Limits, NoHost, PluginError,
    PluginRuntime, RecordRow, RecordWrite, RefreshHint, RenderedConfig, RuntimeConfig,
};

/// An in-memory host: two configs, records kept in a map, and a counter of every read.
#[derive(Default)]
struct MemHost {
    reads: AtomicUsize,
    records: Mutex<HashMap<(String, String, String), RecordRow>>,
}

impl MemHost {
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
}

impl HostApi for MemHost {
    fn list_configs(&self) -> HostFuture<'_, Vec<Value>> {
        self.read();
        Box::pin(async { Ok(vec![json!({"id": "cfg_a", "name": "a"}), json!({"id": "cfg_b", "name": "b"})]) })
    }
    fn get_config<'a>(&'a self, id: &'a str) -> HostFuture<'a, Value> {
        self.read();
        Box::pin(async move { Err(HostCallError::NotFound(id.to_string())) })
    }
    fn list_nodes<'a>(&'a self, _: &'a str) -> HostFuture<'a, Vec<Value>> {
        self.read();
        Box::pin(async { Ok(vec![]) })
    }
    fn get_node<'a>(&'a self, id: &'a str) -> HostFuture<'a, Value> {
        self.read();
        Box::pin(async move { Err(HostCallError::NotFound(id.to_string())) })
    }
    fn list_peer_links<'a>(&'a self, _: &'a str) -> HostFuture<'a, Vec<Value>> {
        self.read();
        Box::pin(async { Ok(vec![]) })
    }
    fn rendered_config<'a>(&'a self, id: &'a str) -> HostFuture<'a, RenderedConfig> {
        self.read();
        Box::pin(async move { Err(HostCallError::NotFound(id.to_string())) })
    }
    fn get_record<'a>(&'a self, p: &'a str, c: &'a str, k: &'a str) -> HostFuture<'a, Option<RecordRow>> {
        self.read();
        let r = self.records.lock().expect("lock").get(&(p.into(), c.into(), k.into())).cloned();
        Box::pin(async move { Ok(r) })
    }
    fn list_records<'a>(&'a self, p: &'a str, c: &'a str, _: Option<&'a str>) -> HostFuture<'a, Vec<RecordRow>> {
        self.read();
        let mut rows: Vec<RecordRow> = self
            .records
            .lock()
            .expect("lock")
            .iter()
            .filter(|((pp, cc, _), _)| pp == p && cc == c)
            .map(|(_, r)| r.clone())
            .collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        Box::pin(async move { Ok(rows) })
    }
}

impl MemHost {
    /// What the server does after a successful call: apply the record writes.
    fn apply(&self, plugin: &str, writes: &[RecordWrite]) {
        let mut map = self.records.lock().expect("lock");
        for w in writes {
            match w {
                RecordWrite::Put { collection, key, config_id, value_json } => {
                    map.insert(
                        (plugin.into(), collection.clone(), key.clone()),
                        RecordRow {
                            collection: collection.clone(),
                            key: key.clone(),
                            config_id: config_id.clone(),
                            value_json: value_json.clone(),
                            created_at: "t".into(),
                            updated_at: "t".into(),
                        },
                    );
                }
                RecordWrite::Delete { collection, key } => {
                    map.remove(&(plugin.into(), collection.clone(), key.clone()));
                }
            }
        }
    }
}

fn limits() -> Limits {
    Limits { call_timeout: Duration::from_millis(400), max_memory_bytes: 32 << 20, ..Limits::default() }
}

async fn runtime_with(crates: &[&str], cache: Option<&std::path::Path>) -> (PluginRuntime, tempfile::TempDir) {
    let dir = plugin_dir_with(crates).expect("build plugins");
    let rt = PluginRuntime::load(RuntimeConfig {
        plugin_dir: dir.path().to_path_buf(),
        cache_dir: cache.map(|p| p.to_path_buf()),
        limits: limits(),
    })
    .await
    .expect("runtime");
    (rt, dir)
}

async fn everything() -> (PluginRuntime, tempfile::TempDir) {
    let all: Vec<&str> = PLUGINS.iter().chain(FIXTURES).copied().collect();
    runtime_with(&all, None).await
}

async fn call(rt: &PluginRuntime, plugin: &str, tool: &str, input: Value) -> Result<Value, PluginError> {
    rt.call_tool(CallRequest::new(plugin, tool, input), Arc::new(NoHost)).await.map(|o| o.output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_plugins_and_reports_the_wrong_abi() {
    let (rt, _dir) = everything().await;
    let ids: Vec<&str> = rt.plugins().map(|p| p.id.as_str()).collect();
    for id in ["awg-params", "hello", "fixture-loop", "fixture-trap", "fixture-effects"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let failures = rt.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].file, "wfm_fixture_wrong_abi.wasm");
    assert_eq!(failures[0].code, "PLUGIN_UNAVAILABLE");
    assert!(failures[0].reason.contains("0.9.0") && failures[0].reason.contains("unsupported ABI"), "{}", failures[0].reason);

    let awg = rt.plugin("awg-params").expect("awg");
    assert!(awg.capabilities.is_empty());
    let names: Vec<&str> = awg.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["random_config_params", "random_node_params", "generate", "convert", "backfill_node"]);
    assert!(awg.tools.iter().all(|t| t.read_only && t.input_schema["type"] == "object"));
    let effects = rt.plugin("fixture-effects").expect("effects");
    assert_eq!(effects.capabilities.len(), Capability::ALL.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_clearly_and_the_runtime_carries_on() {
    let (rt, _dir) = everything().await;

    let started = Instant::now();
    let err = call(&rt, "fixture-loop", "spin", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "PLUGIN_TIMEOUT", "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(call(&rt, "fixture-loop", "ok", json!({})).await.expect("ok after timeout"), json!({"ok": true}));

    let err = call(&rt, "fixture-memory-bomb", "explode", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "PLUGIN_MEMORY_EXCEEDED", "{err}");

    let err = call(&rt, "fixture-trap", "panic", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "PLUGIN_TRAPPED", "{err}");
    assert!(err.to_string().contains("fixture trap: boom"), "{err}");
    assert_eq!(call(&rt, "fixture-trap", "ok", json!({})).await.expect("ok after trap"), json!({"ok": true}));

    let host = Arc::new(MemHost::default());
    let err = rt
        .call_tool(CallRequest::new("fixture-undeclared-capability", "read_configs", json!({})), host.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "PLUGIN_CAPABILITY_DENIED", "{err}");
    assert!(err.to_string().contains("mesh-read") && err.to_string().contains("list-configs"), "{err}");
    assert_eq!(host.reads.load(Ordering::SeqCst), 0, "the host must not have been read");
    let err = rt
        .call_tool(CallRequest::new("fixture-undeclared-capability", "write_record", json!({})), host.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "PLUGIN_CAPABILITY_DENIED");
    assert!(call(&rt, "fixture-undeclared-capability", "log_only", json!({})).await.is_ok());

    let err = call(&rt, "fixture-oversized-output", "flood", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "PLUGIN_OUTPUT_TOO_LARGE", "{err}");
    let small = call(&rt, "fixture-oversized-output", "flood", json!({"size": 10})).await.expect("small");
    assert_eq!(small["data"], "xxxxxxxxxx");
    let err = call(&rt, "fixture-oversized-output", "bad_json_shape", json!({})).await.unwrap_err();
    assert_eq!(err.code(), "PLUGIN_INVALID_OUTPUT", "{err}");

    // Schema checks happen before the plugin runs.
    let err = call(&rt, "hello", "greet", json!({"name": ""})).await.unwrap_err();
    assert_eq!(err.code(), "PLUGIN_INVALID_INPUT");
    let err = call(&rt, "hello", "greet", json!({"name": "x", "bogus": 1})).await.unwrap_err();
    assert_eq!(err.code(), "PLUGIN_INVALID_INPUT");
    assert_eq!(call(&rt, "hello", "nope", json!({})).await.unwrap_err().code(), "PLUGIN_TOOL_NOT_FOUND");
    assert_eq!(call(&rt, "nope", "x", json!({})).await.unwrap_err().code(), "PLUGIN_NOT_FOUND");

    // A read-only caller may not run a writing tool.
    let mut req = CallRequest::new("hello", "count_greeting", json!({"name": "x"}));
    req.read_only = true;
    assert_eq!(rt.call_tool(req, Arc::new(NoHost)).await.unwrap_err().code(), "PLUGIN_DENIED");

    assert_eq!(call(&rt, "hello", "greet", json!({"name": "Ada"})).await.expect("greet"), json!({"greeting": "Hello, Ada!"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_calls_are_served_while_a_plugin_spins() {
    let (rt, _dir) = everything().await;
    let spinner = {
        let rt = rt.clone();
        tokio::spawn(async move { call(&rt, "fixture-loop", "spin", json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    for i in 0..20 {
        let out = call(&rt, "hello", "greet", json!({"name": format!("n{i}")})).await.expect("greet");
        assert_eq!(out["greeting"], format!("Hello, n{i}!"));
    }
    assert!(started.elapsed() < Duration::from_millis(350), "greets waited for the spinner: {:?}", started.elapsed());
    assert_eq!(spinner.await.expect("join").unwrap_err().code(), "PLUGIN_TIMEOUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_are_returned_not_applied_and_dropped_on_failure() {
    let (rt, _dir) = everything().await;
    let host = Arc::new(MemHost::default());
    let touch = |fail: bool| CallRequest::new("fixture-effects", "touch", json!({"key": "k1", "config_id": "cfg_a", "fail": fail}));

    let first = rt.call_tool(touch(false), host.clone()).await.expect("touch");
    assert_eq!(first.output["count"], 1);
    assert_eq!(first.output["configs"], 2);
    assert_eq!(first.effects.records.len(), 1);
    assert_eq!(first.effects.files.len(), 1);
    let file = &first.effects.files[0];
    assert_eq!(file.kind, "fixture-effects:note");
    assert_eq!(file.content, b"k1 1\n");
    assert_eq!(first.output["file_id"], file.id.as_str());
    assert_eq!(first.output["download_path"], format!("/api/v1/tools/files/{}", file.id));
    assert_eq!(first.effects.refresh, vec![RefreshHint::Config { config_id: "cfg_a".into() }]);
    // Nothing is stored until the caller applies the effects.
    let again = rt.call_tool(touch(false), host.clone()).await.expect("touch");
    assert_eq!(again.output["count"], 1);
    host.apply("fixture-effects", &first.effects.records);
    let second = rt.call_tool(touch(false), host.clone()).await.expect("touch");
    assert_eq!(second.output["count"], 2);
    assert_eq!(second.output["previous"], 1);

    let err = rt.call_tool(touch(true), host.clone()).await.unwrap_err();
    assert_eq!(err.code(), "FIXTURE_FAILED");

    let listed = rt.call_tool(CallRequest::new("fixture-effects", "list", json!({})), host.clone()).await.expect("list");
    assert_eq!(listed.output["keys"], json!(["k1"]));

    let hooks = rt.node_hooks("cfg_a", "node_1", "req", host.clone()).await;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].plugin_id, "fixture-effects");
    let list = hooks[0].result.as_ref().expect("hooks");
    assert_eq!(list[0].command, "echo node_1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compile_cache_is_used_on_the_second_start() {
    let cache = tempfile::tempdir().expect("tmp");
    let (first, _d1) = runtime_with(PLUGINS, Some(cache.path())).await;
    assert_eq!(first.stats().compiled, 2);
    assert!(first.plugins().all(|p| p.compile == CompileSource::Compiled));
    let (second, _d2) = runtime_with(PLUGINS, Some(cache.path())).await;
    assert_eq!(second.stats().from_cache, 2);
    assert_eq!(second.stats().compiled, 0);
    assert!(call(&second, "hello", "greet", json!({"name": "c"})).await.is_ok());
    // A corrupt entry is discarded and recompiled, not trusted.
    for entry in std::fs::read_dir(cache.path()).expect("ls") {
        let p = entry.expect("entry").path();
        std::fs::write(&p, b"garbage").expect("corrupt");
    }
    let (third, _d3) = runtime_with(PLUGINS, Some(cache.path())).await;
    assert_eq!(third.stats().compiled, 2, "{:?}", third.failures());
}
