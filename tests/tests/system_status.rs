//! System status sections that aggregate the mesh: `sync.issues`, `topology`, and the config
//! list's topology counters (spec 04 §5, spec 02 §9.2), on SQLite and PostgreSQL.

use std::time::Duration;

use serde_json::{Value, json};
use wfm_e2e::{Backend, TestServer, both_backends};

async fn node(s: &TestServer, t: &str, cfg: &str, name: &str, vip: &str) -> String {
    let r = s.post(&format!("/api/v1/configs/{cfg}/nodes"), Some(t), json!({"name": name, "virtual_ip": vip, "node_type": "static"})).await;
    r.ok()["id"].as_str().unwrap().to_string()
}

async fn status_and_topology_aggregate_the_mesh(b: Backend) {
    let s = TestServer::start(b).await;
    let t = s.setup_admin().await;
    let cfg = s.post("/api/v1/configs", Some(&t), json!({"name": "agg"})).await.ok()["id"].as_str().unwrap().to_string();
    let a = node(&s, &t, &cfg, "a", "10.66.0.2/32").await;
    let c = node(&s, &t, &cfg, "c", "10.66.0.3/32").await;

    // Auto-sync stages both nodes in the background (valid topology: no links is a warning).
    let d = wait_status(&s, &t, |d| d["sync"]["issue_count"] == 0).await;
    assert_eq!(d["summary"]["nodes"], 2);
    assert_eq!(d["topology"]["valid"], true, "{d}");

    // A pair where neither side has a public endpoint is broken: topology invalid everywhere,
    // and auto-sync is blocked, so the changed desired configs stay unstaged.
    let dir = |l: &str, p: &str, ips: &str| json!({"local_node_id": l, "peer_node_id": p, "allowed_ips": ips});
    let pair = s
        .post(&format!("/api/v1/configs/{cfg}/peer-links"), Some(&t), json!({"forward": dir(&a, &c, "10.66.0.3/32"), "reverse": dir(&c, &a, "10.66.0.2/32")}))
        .await;
    pair.ok();
    let list = s.get("/api/v1/configs", Some(&t)).await;
    let item = list.ok().as_array().unwrap().iter().find(|x| x["id"] == cfg.as_str()).unwrap().clone();
    assert_eq!(item["topology_invalid"], true, "{item}");
    assert_eq!(item["topology_error_count"], 1, "{item}");
    let d = wait_status(&s, &t, |d| d["sync"]["issue_count"] == 2).await;
    assert_eq!(d["topology"]["valid"], false, "{d}");
    assert_eq!(d["topology"]["invalid_config_count"], 1);
    assert_eq!(d["topology"]["invalid_node_count"], 2);
    assert_eq!(d["topology"]["invalid_configs"][0]["config_id"], cfg.as_str());
    for i in d["sync"]["issues"].as_array().unwrap() {
        assert_eq!(i["status"], "staged_outdated", "{i}");
        assert_eq!(i["config_name"], "agg");
        assert_eq!(i["topology_valid"], false, "{i}");
        assert!(!i["messages"].as_array().unwrap().is_empty(), "{i}");
    }
    s.post(&format!("/api/v1/configs/{cfg}/sync-all"), Some(&t), json!({})).await.err(409, "TOPOLOGY_INVALID");

    // Give `a` a public address: the pair resolves, topology is valid and auto-sync catches up.
    s.put(&format!("/api/v1/nodes/{a}"), Some(&t), json!({"ipv4_address": "203.0.113.10"})).await.ok();
    let d = wait_status(&s, &t, |d| d["sync"]["issue_count"] == 0).await;
    assert_eq!(d["topology"]["valid"], true, "{d}");
    // A disabled config drops out of both sections.
    s.put(&format!("/api/v1/configs/{cfg}"), Some(&t), json!({"name": "agg", "enabled": false})).await.ok();
    s.put(&format!("/api/v1/nodes/{a}"), Some(&t), json!({"ipv4_address": null})).await.ok();
    let d = s.get("/api/v1/system/status", Some(&t)).await.ok().clone();
    assert_eq!(d["topology"]["valid"], true, "{d}");
    assert_eq!(d["sync"]["issue_count"], 0, "{d}");
    s.stop().await;
}

async fn wait_status(s: &TestServer, t: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = s.get("/api/v1/system/status", Some(t)).await.ok().clone();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("status never reached the expected state: {last}");
}

both_backends!(status_and_topology_aggregate_the_mesh);
