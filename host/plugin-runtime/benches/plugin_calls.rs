//! Plugin runtime figures: compile time without cache, cold start from the compile cache,
//! and warm tool-call overhead. Run with `cargo bench -p wfm-plugin-runtime` (release).
//! Prints one line per figure.

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wfm_plugin_runtime::testing::{PLUGINS, plugin_dir_with};
use wfm_plugin_runtime::{CallRequest, NoHost, PluginRuntime, RuntimeConfig};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn load(dir: &std::path::Path, cache: Option<&std::path::Path>) -> (PluginRuntime, Duration) {
    let started = Instant::now();
    let rt = PluginRuntime::load(RuntimeConfig {
        plugin_dir: dir.to_path_buf(),
        cache_dir: cache.map(|c| c.to_path_buf()),
        limits: Default::default(),
    })
    .await
    .expect("runtime");
    (rt, started.elapsed())
}

async fn bench_calls(rt: &PluginRuntime, plugin: &str, tool: &str, input: serde_json::Value, n: usize) {
    let host = Arc::new(NoHost);
    for _ in 0..50 {
        rt.call_tool(CallRequest::new(plugin, tool, input.clone()), host.clone()).await.expect("warm-up");
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let req = CallRequest::new(plugin, tool, input.clone());
        let started = Instant::now();
        rt.call_tool(req, host.clone()).await.expect("call");
        samples.push(started.elapsed());
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    println!(
        "warm call {plugin}.{tool}: n={n} mean={:.1} µs p50={:.1} µs p99={:.1} µs",
        mean.as_secs_f64() * 1e6,
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    rt.block_on(async {
        let dir = plugin_dir_with(PLUGINS).expect("build plugins");
        let cache = tempfile::tempdir().expect("tmp");

        let (_, no_cache) = load(dir.path(), None).await;
        println!("load without cache (compile {} plugins): {:.1} ms", PLUGINS.len(), no_cache.as_secs_f64() * 1e3);
        let (_, fill) = load(dir.path(), Some(cache.path())).await;
        println!("load filling the cache: {:.1} ms", fill.as_secs_f64() * 1e3);
        let (warm, cold) = load(dir.path(), Some(cache.path())).await;
        assert_eq!(warm.stats().from_cache, PLUGINS.len());
        println!("cold start from the compile cache ({} plugins): {:.1} ms", PLUGINS.len(), cold.as_secs_f64() * 1e3);

        bench_calls(&warm, "hello", "greet", json!({"name": "bench"}), 5000).await;
        bench_calls(&warm, "awg-params", "random_config_params", json!({"awg_version": "2.0"}), 2000).await;
        bench_calls(&warm, "awg-params", "generate", json!({"awg_version": "3.1", "direction": "quic", "nodes": {"a": {}}}), 300).await;
    });
}
