//! Plugin platform end to end: the real compiled plugins (and the hostile fixtures, all built
//! from source by the harness) loaded by the real server, driven over HTTP, on SQLite and
//! PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wfm_domain::awg::{self, AwgVersion, NodeParams, SharedParams};
use wfm_e2e::{Backend, TestServer, both_backends};
use wfm_plugin_runtime::testing::{FIXTURES, PLUGINS, plugin_dir_with};

async fn start(b: Backend, crates: &[&str]) -> (TestServer, String, tempfile::TempDir) {
    let dir = plugin_dir_with(crates).expect("build plugins from source");
    let s = TestServer::start_with(b, &[("WFM_PLUGIN_DIR", &dir.path().display().to_string())]).await;
    let token = s.setup_admin().await;
    (s, token, dir)
}

fn all() -> Vec<&'static str> {
    PLUGINS.iter().chain(FIXTURES).copied().collect()
}

async fn catalogue_lists_tools_and_load_status(b: Backend) {
    let (s, t, _dir) = start(b, &all()).await;
    s.get("/api/v1/tools", None).await.err(401, "AUTH_REQUIRED");

    let cat = s.get("/api/v1/tools", Some(&t)).await;
    let cat = cat.ok();
    assert_eq!(cat["abi_version"], "0.1.0");
    let tools = cat["tools"].as_array().expect("tools");
    let find = |p: &str, n: &str| tools.iter().find(|x| x["plugin_id"] == p && x["name"] == n).cloned();
    let generate = find("awg-params", "generate").expect("awg generate listed");
    assert_eq!(generate["qualified_name"], "awg-params.generate");
    assert_eq!(generate["read_only"], true);
    assert_eq!(generate["destructive"], false);
    assert_eq!(generate["input_schema"]["type"], "object");
    assert!(generate["input_schema"]["required"].as_array().expect("required").contains(&json!("awg_version")));
    assert!(generate["output_schema"].is_object());
    assert_eq!(generate["call_path"], "/api/v1/tools/call/awg-params/generate");
    assert!(generate["plugin_version"].is_string());
    for (p, n) in [("awg-params", "random_config_params"), ("awg-params", "convert"), ("hello", "greet"), ("hello", "count_greeting")] {
        assert!(find(p, n).is_some(), "{p}.{n} missing");
    }
    assert_eq!(find("hello", "count_greeting").expect("count")["read_only"], false);

    let plugins = s.get("/api/v1/tools/plugins", Some(&t)).await;
    let plugins = plugins.ok().as_array().expect("plugins").clone();
    let awg_status = plugins.iter().find(|p| p["id"] == "awg-params").expect("awg status");
    assert_eq!(awg_status["status"], "loaded");
    assert_eq!(awg_status["capabilities"], json!([]));
    let effects = plugins.iter().find(|p| p["id"] == "fixture-effects").expect("effects status");
    assert!(effects["capabilities"].as_array().expect("caps").contains(&json!("records-write")));
    let wrong = plugins.iter().find(|p| p["file"] == "wfm_fixture_wrong_abi.wasm").expect("wrong abi reported");
    assert_eq!(wrong["status"], "failed");
    assert_eq!(wrong["error"]["code"], "PLUGIN_UNAVAILABLE");
    assert!(wrong["error"]["message"].as_str().expect("msg").contains("0.9.0"), "{wrong}");
    // The failed plugin does not take the others down.
    let greet = s.post("/api/v1/tools/call/hello/greet", Some(&t), json!({"name": "Ada"})).await;
    assert_eq!(greet.ok()["output"], json!({"greeting": "Hello, Ada!"}));
    s.stop().await;
}

fn check_shared(v: AwgVersion, value: &Value) -> SharedParams {
    let shared: SharedParams = serde_json::from_value(value.clone()).expect("shared values");
    awg::validate_config_params(v, &shared).unwrap_or_else(|e| panic!("{v}: {e}: {value}"));
    shared
}

fn check_node(v: AwgVersion, shared: &SharedParams, value: &Value) {
    let node: NodeParams = serde_json::from_value(value.clone()).expect("node values");
    awg::validate_node_params(v, shared, &node).unwrap_or_else(|e| panic!("{v}: {e}: {value}"));
}

async fn awg_upstream_routes(b: Backend) {
    let (s, t, _dir) = start(b, &["wfm-plugin-awg-params"]).await;

    let r = s.post("/api/v1/configs/awg/random", Some(&t), json!({})).await;
    let d = r.ok().clone();
    assert!(d["awg_h1"].as_str().expect("h1").contains('-'), "2.0 by default: {d}");
    assert!(d.get("awg_options").is_none());
    check_shared(AwgVersion::V2_0, &d);
    let r = s.post("/api/v1/configs/awg/random?awg_version=3.1&regenerate_key=true", Some(&t), json!({})).await;
    let d = r.ok().clone();
    assert_eq!(d["awg_options"]["header_protection_key"].as_str().expect("key").len(), 44);
    check_shared(AwgVersion::V3_1, &d);
    s.post("/api/v1/configs/awg/random?awg_version=2.0&regenerate_key=true", Some(&t), json!({})).await.err(400, "INVALID_AWG_VERSION");
    s.post("/api/v1/configs/awg/random?awg_version=4.0", Some(&t), json!({})).await.err(400, "INVALID_AWG_VERSION");

    for v in AwgVersion::ALL {
        let r = s.post(&format!("/api/v1/nodes/awg/random?awg_version={v}"), Some(&t), json!({})).await;
        let d = r.ok().clone();
        assert!(d["awg_jc"].as_i64().is_some_and(|jc| (4..=7).contains(&jc)), "balanced Jc: {d}");
        assert!(d["awg_i1"].as_str().expect("i1").starts_with("<r "), "generic: {d}");
        assert!(d["awg_i4"].is_null());
        check_node(v, &SharedParams::default(), &d);
    }

    // generate through the upstream route, many times (fresh CSPRNG values each time).
    for round in 0..15 {
        let v = AwgVersion::ALL[round % 3];
        let d = ["generic", "dns", "stun", "rtp", "quic"][round % 5];
        let i = ["low", "balanced", "high"][round % 3];
        let body = json!({"awg_version": v.as_str(), "direction": d, "intensity": i,
            "config": {}, "nodes": {"node_a": {}, "node_b": {"awg_options": {}}}});
        let r = s.post("/api/v1/configs/awg/generate", Some(&t), body).await;
        let out = r.ok().clone();
        let shared = check_shared(v, &out["config"]);
        assert_eq!(out["config"]["awg_options"]["_random_direction"], d);
        for n in ["node_a", "node_b"] {
            check_node(v, &shared, &out["nodes"][n]);
        }
    }
    s.post("/api/v1/configs/awg/generate", Some(&t), json!({"direction": "dns"})).await.err(422, "VALIDATION_ERROR");
    let e = s.post("/api/v1/configs/awg/generate", Some(&t), json!({"awg_version": "2.0", "direction": "ftp"})).await;
    assert_eq!(e.err(400, "INVALID_AWG_PARAMETER")["message"], "Invalid AWG generation strategy");
    s.post("/api/v1/configs/awg/generate", Some(&t), json!({"awg_version": "2.0", "scope": "node", "nodes": {}})).await.err(400, "INVALID_AWG_PARAMETER");

    let body = json!({"awg_s1": 20, "awg_s2": 76, "awg_s3": 40, "awg_s4": 10, "awg_h1": "1000-1100",
        "awg_h2": "2000-2100", "awg_h3": "3000-3100", "awg_h4": "4000-4100", "awg_version": "1.5", "source_version": "2.0"});
    let r = s.post("/api/v1/configs/awg/convert", Some(&t), body).await;
    let d = r.ok().clone();
    assert_eq!((d["awg_s2"].clone(), d["awg_s3"].clone(), d["awg_h1"].clone()), (json!(15), json!(0), json!("1000")));
    check_shared(AwgVersion::V1_5, &d);
    let r = s.post("/api/v1/configs/awg/convert", Some(&t), json!({"awg_version": "3.1"})).await;
    check_shared(AwgVersion::V3_1, r.ok());
    s.post("/api/v1/configs/awg/convert", Some(&t), json!({"name": "x"})).await.err(422, "VALIDATION_ERROR");
    s.stop().await;
}

async fn awg_generic_route_across_seeds(b: Backend) {
    let (s, t, _dir) = start(b, &["wfm-plugin-awg-params"]).await;
    for seed in 0..40u64 {
        let v = AwgVersion::ALL[seed as usize % 3];
        let d = ["generic", "dns", "stun", "rtp", "quic"][seed as usize % 5];
        let body = json!({"awg_version": v.as_str(), "direction": d, "intensity": "high", "nodes": {"n": {}}, "seed": seed});
        let r = s.post("/api/v1/tools/call/awg-params/generate", Some(&t), body.clone()).await;
        let call = r.ok().clone();
        assert_eq!(call["plugin_id"], "awg-params");
        assert_eq!(call["files"], json!([]));
        let shared = check_shared(v, &call["output"]["config"]);
        check_node(v, &shared, &call["output"]["nodes"]["n"]);
        // Same seed, same result: the seed really drives the generator.
        let again = s.post("/api/v1/tools/call/awg-params/generate", Some(&t), body).await;
        assert_eq!(again.ok()["output"], call["output"]);
        let r = s.post("/api/v1/tools/call/awg-params/random_config_params", Some(&t), json!({"awg_version": v.as_str(), "seed": seed})).await;
        check_shared(v, &r.ok()["output"]);
    }
    let bad = s.post("/api/v1/tools/call/awg-params/generate", Some(&t), json!({"awg_version": 2})).await;
    let e = bad.err(400, "PLUGIN_INVALID_INPUT");
    assert!(!e["detail"]["errors"].as_array().expect("errors").is_empty());
    s.post("/api/v1/tools/call/awg-params/nope", Some(&t), json!({})).await.err(404, "PLUGIN_TOOL_NOT_FOUND");
    s.post("/api/v1/tools/call/nope/x", Some(&t), json!({})).await.err(404, "PLUGIN_NOT_FOUND");
    let e = s.post("/api/v1/tools/call/awg-params/generate", Some(&t), json!({"awg_version": "9"})).await;
    e.err(400, "INVALID_AWG_VERSION");
    s.stop().await;
}

async fn hostile_plugins_fail_clearly_while_the_server_serves(b: Backend) {
    let (s, t, _dir) = start(b, &all()).await;
    let call = |p: &'static str, tool: &'static str, body: Value| {
        let s = &s;
        let t = t.clone();
        async move { s.post(&format!("/api/v1/tools/call/{p}/{tool}"), Some(&t), body).await }
    };

    // While a plugin spins until its deadline, other requests are served promptly.
    let spin = {
        let url = s.url("/api/v1/tools/call/fixture-loop/spin");
        let client = s.client.clone();
        let t = t.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = client.post(url).bearer_auth(t).json(&json!({})).send().await.expect("send");
            (TestServer::read(r).await, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    for _ in 0..5 {
        call("hello", "greet", json!({"name": "x"})).await.ok();
        s.get("/api/v1/tools", Some(&t)).await.ok();
    }
    assert!(started.elapsed() < Duration::from_secs(2), "served slowly: {:?}", started.elapsed());
    let (r, took) = spin.await.expect("join");
    r.err(504, "PLUGIN_TIMEOUT");
    assert!(took < Duration::from_secs(10), "{took:?}");

    call("fixture-memory-bomb", "explode", json!({})).await.err(507, "PLUGIN_MEMORY_EXCEEDED");
    let r = call("fixture-trap", "panic", json!({})).await;
    let e = r.err(502, "PLUGIN_TRAPPED");
    assert!(e["message"].as_str().expect("msg").contains("boom"), "{e}");
    let r = call("fixture-undeclared-capability", "read_configs", json!({})).await;
    let e = r.err(502, "PLUGIN_CAPABILITY_DENIED");
    assert_eq!(e["detail"]["capability"], "mesh-read");
    assert_eq!(e["detail"]["import"], "list-configs");
    call("fixture-oversized-output", "flood", json!({})).await.err(502, "PLUGIN_OUTPUT_TOO_LARGE");
    call("fixture-oversized-output", "bad_json_shape", json!({})).await.err(502, "PLUGIN_INVALID_OUTPUT");
    call("hello", "greet", json!({"name": ""})).await.err(400, "PLUGIN_INVALID_INPUT");
    // A plugin's own error code outside the host catalogue is wrapped.
    let r = call("hello", "greet", json!({"name": "   "})).await;
    assert_eq!(r.err(400, "PLUGIN_TOOL_FAILED")["detail"]["plugin_code"], "HELLO_NAME_REQUIRED");

    // Everything still works afterwards.
    assert_eq!(call("fixture-trap", "ok", json!({})).await.ok()["output"]["ok"], true);
    assert_eq!(call("fixture-loop", "ok", json!({})).await.ok()["output"]["ok"], true);
    let r = s.post("/api/v1/configs/awg/random", Some(&t), json!({})).await;
    check_shared(AwgVersion::V2_0, r.ok());
    s.stop().await;
}

async fn plugin_records_and_files_are_persisted(b: Backend) {
    let (s, t, _dir) = start(b, &["wfm-example-hello-plugin", "wfm-fixture-effects"]).await;
    for expected in 1..=3 {
        let r = s.post("/api/v1/tools/call/hello/count_greeting", Some(&t), json!({"name": "Ada"})).await;
        assert_eq!(r.ok()["output"]["count"], expected);
    }
    let r = s.post("/api/v1/tools/call/fixture-effects/touch", Some(&t), json!({"key": "k"})).await;
    let d = r.ok().clone();
    assert_eq!(d["output"]["count"], 1);
    let file = &d["files"][0];
    assert_eq!(file["filename"], "note-k.txt");
    assert_eq!(file["download_path"], d["output"]["download_path"]);
    let path = file["download_path"].as_str().expect("path").to_string();
    let resp = s.client.get(s.url(&path)).bearer_auth(&t).send().await.expect("download");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.text().await.expect("text"), "k 1\n");
    // S/FT: without a session the file needs a download token bound to it.
    s.get(&path, None).await.err(401, "DOWNLOAD_TOKEN_REQUIRED");
    s.get(&format!("{path}?download_token=garbage"), None).await.err(401, "INVALID_TOKEN");
    s.get(&format!("{path}?download_token={t}"), None).await.err(401, "INVALID_DOWNLOAD_TOKEN");
    let g = s.post(&format!("{path}/download-grant"), Some(&t), json!({})).await;
    let g = g.ok().clone();
    assert_eq!(g["token_type"], "download");
    let with_token = g["download_path"].as_str().expect("grant path").to_string();
    let resp = s.client.get(s.url(&with_token)).send().await.expect("download with token");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("text"), "k 1\n");
    let tok = g["download_token"].as_str().unwrap();
    s.get(&format!("/api/v1/tools/files/file_other?download_token={tok}"), None).await.err(403, "DOWNLOAD_TOKEN_SCOPE_MISMATCH");
    // A file token is not a session.
    s.get("/api/v1/tools", Some(tok)).await.err(401, "INVALID_TOKEN");
    s.post(&format!("{path}/download-grant"), None, json!({})).await.err(401, "AUTH_REQUIRED");
    s.get("/api/v1/tools/files/file_nope", Some(&t)).await.err(404, "NOT_FOUND");

    // A failing call applies none of its writes.
    let r = s.post("/api/v1/tools/call/fixture-effects/touch", Some(&t), json!({"key": "k", "fail": true})).await;
    assert_eq!(r.err(400, "PLUGIN_TOOL_FAILED")["detail"]["plugin_code"], "FIXTURE_FAILED");
    let r = s.post("/api/v1/tools/call/fixture-effects/touch", Some(&t), json!({"key": "k"})).await;
    assert_eq!(r.ok()["output"]["count"], 2);
    assert_eq!(r.ok()["output"]["previous"], 1);
    let r = s.post("/api/v1/tools/call/fixture-effects/list", Some(&t), json!({})).await;
    assert_eq!(r.ok()["output"]["keys"], json!(["k"]));
    // A write naming a config that does not exist is refused as a whole.
    let r = s.post("/api/v1/tools/call/fixture-effects/touch", Some(&t), json!({"key": "z", "config_id": "cfg_missing"})).await;
    r.err(502, "PLUGIN_INVALID_OUTPUT");
    let r = s.post("/api/v1/tools/call/fixture-effects/list", Some(&t), json!({})).await;
    assert_eq!(r.ok()["output"]["keys"], json!(["k"]));
    s.stop().await;
}

/// The render seam: a plugin with `config-hooks` contributes managed hook lines, rendered after
/// the node's own commands (spec 02 §8), and they reach the desired config.
async fn plugin_hooks_reach_rendered_configs(b: Backend) {
    let (s, t, _dir) = start(b, &["wfm-fixture-effects"]).await;
    let cfg = s.post("/api/v1/configs", Some(&t), json!({"name": "hooked"})).await.ok()["id"].as_str().unwrap().to_string();
    let n = s
        .post(&format!("/api/v1/configs/{cfg}/nodes"), Some(&t), json!({"name": "a", "node_type": "static", "post_up": ["echo own"]}))
        .await;
    let node = n.ok()["id"].as_str().unwrap().to_string();
    let p = s.get(&format!("/api/v1/configs/{cfg}/nodes/{node}/wg-preview"), Some(&t)).await;
    let text = p.ok()["content"].as_str().unwrap().to_string();
    let own = text.find("PostUp = echo own").expect("own hook rendered");
    let managed = text.find(&format!("PostUp = echo {node}")).unwrap_or_else(|| panic!("managed hook missing:\n{text}"));
    assert!(own < managed, "node commands come before managed ones:\n{text}");
    s.stop().await;
}

/// Node creation backfills I packets with the config's saved direction through the awg-params
/// plugin (spec 02 §4.1 step 4): a `dns` strategy yields DNS-query imitations.
async fn node_backfill_uses_the_saved_direction(b: Backend) {
    let (s, t, _dir) = start(b, &["wfm-plugin-awg-params"]).await;
    let cfg = s
        .post(
            "/api/v1/configs",
            Some(&t),
            json!({"name": "dnsmesh", "tunnel_protocol": "amneziawg", "awg_version": "2.0",
                   "awg_options": {"_random_direction": "dns", "_random_intensity": "balanced"}}),
        )
        .await;
    let cfg = cfg.ok()["id"].as_str().unwrap().to_string();
    let n = s.post(&format!("/api/v1/configs/{cfg}/nodes"), Some(&t), json!({"name": "a", "node_type": "static"})).await;
    let n = n.ok().clone();
    // balanced → 3 packets, each a DNS query for "<random>.invalid" (label "invalid" in hex).
    for i in 1..=3 {
        let p = n[format!("awg_i{i}")].as_str().unwrap_or_else(|| panic!("awg_i{i} missing: {n}"));
        assert!(p.contains("07696e76616c6964"), "awg_i{i} is not a DNS imitation: {p}");
    }
    assert!(n["awg_i4"].is_null() && n["awg_i5"].is_null(), "{n}");
    s.stop().await;
}

both_backends!(
    node_backfill_uses_the_saved_direction,
    plugin_hooks_reach_rendered_configs,
    catalogue_lists_tools_and_load_status,
    awg_upstream_routes,
    awg_generic_route_across_seeds,
    hostile_plugins_fail_clearly_while_the_server_serves,
    plugin_records_and_files_are_persisted,
);
