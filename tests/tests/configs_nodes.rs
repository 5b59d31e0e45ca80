//! Configs, nodes, tags and keys end to end (spec 02 §3–§5), against SQLite and PostgreSQL:
//! every error code of those sections, partial node updates, disable/delete cascades,
//! MQTT-off rules, and keys cross-checked with the real `wg` from wireguard-tools.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use wfm_e2e::{Backend, TestServer, both_backends};

const API: &str = "/api/v1";

struct Ctx {
    s: TestServer,
    token: String,
}

impl Ctx {
    async fn new(b: Backend) -> Ctx {
        let s = TestServer::start(b).await;
        let token = s.setup_admin().await;
        Ctx { s, token }
    }
    async fn with_env(b: Backend, env: &[(&str, &str)]) -> Ctx {
        let s = TestServer::start_with(b, env).await;
        let token = s.setup_admin().await;
        Ctx { s, token }
    }
    async fn get(&self, p: &str) -> wfm_e2e::Resp {
        self.s.get(&format!("{API}{p}"), Some(&self.token)).await
    }
    async fn post(&self, p: &str, b: Value) -> wfm_e2e::Resp {
        self.s.post(&format!("{API}{p}"), Some(&self.token), b).await
    }
    async fn put(&self, p: &str, b: Value) -> wfm_e2e::Resp {
        self.s.put(&format!("{API}{p}"), Some(&self.token), b).await
    }
    async fn delete(&self, p: &str) -> wfm_e2e::Resp {
        self.s.delete(&format!("{API}{p}"), Some(&self.token)).await
    }
    async fn config(&self, body: Value) -> Value {
        self.post("/configs", body).await.ok().clone()
    }
    async fn node(&self, config_id: &str, body: Value) -> Value {
        self.post(&format!("/configs/{config_id}/nodes"), body).await.ok().clone()
    }
    /// Runs one statement directly (white-box setup of rows other features own).
    async fn exec(&self, sql: &str) {
        let mut tx = self.s.state.db.begin().await.unwrap();
        wfm::on_tx!(&mut tx, |c| sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(c).await.map(|_| ())).unwrap();
        tx.commit().await.unwrap();
    }
    async fn scalar_i64(&self, sql: &str) -> i64 {
        wfm::on_pool!(&self.s.state.db, |c| sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(c)
            .await)
        .unwrap()
    }
    async fn scalar_text(&self, sql: &str) -> String {
        wfm::on_pool!(&self.s.state.db, |c| sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(c)
            .await)
        .unwrap()
    }
    /// Inserts a link pair between two nodes as the mesh feature would store it (one
    /// `peer_pairs` row; `gid` is the group id's integer, both directions auto/ipv4).
    async fn link_pair(&self, config_id: &str, a: &str, b: &str, gid: i64, keepalive: &str) {
        let now_us = 1_764_547_200_000_000_i64;
        let t = if self.s.backend == Backend::Postgres { "TRUE" } else { "1" };
        self.exec(&format!(
            "INSERT INTO peer_pairs (gid, config_id, a_node_id, b_node_id, fwd_id, rev_id, enabled, created_us, updated_us, \
             fwd_allowed_ips, fwd_keepalive, fwd_ref_family, rev_allowed_ips, rev_keepalive, rev_ref_family) VALUES \
             ({gid}, '{config_id}', '{a}', '{b}', {f}, {r}, {t}, {now_us}, {now_us}, '10.0.0.0/24', {keepalive}, 'ipv4', \
             '10.0.0.0/24', {keepalive}, 'ipv4')",
            f = gid * 2,
            r = gid * 2 + 1,
        ))
        .await;
    }
    async fn bool_col(&self, sql: &str) -> bool {
        // Booleans are INTEGER on SQLite and BOOLEAN on PostgreSQL: compare in SQL.
        self.scalar_i64(&format!("SELECT CAST(CASE WHEN ({sql}) THEN 1 ELSE 0 END AS BIGINT)")).await == 1
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn wg(args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new("/usr/bin/wg")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wg from wireguard-tools");
    if let Some(i) = input {
        child.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "wg {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

// ---------------------------------------------------------------------------------------------

async fn config_crud_and_name_rules(b: Backend) {
    let c = Ctx::new(b).await;
    let a = c.config(json!({"name": "mesh-a"})).await;
    assert!(a["id"].as_str().unwrap().starts_with("cfg_"));
    assert_eq!(a["tunnel_protocol"], "wireguard");
    assert_eq!(a["awg_version"], Value::Null);
    assert_eq!(a["virtual_subnet"], "10.66.0.0/24");
    assert_eq!(a["default_listen_port"], 51820);
    assert_eq!(a["awg_options"], json!({}));
    assert_eq!(a["node_count"], 0);
    assert_eq!(a["enabled"], true);
    let b2 = c.config(json!({"name": "mesh-b", "description": "  second ", "default_dns": "  ", "awg_s1": 5})).await;
    assert_eq!(b2["description"], "second");
    assert_eq!(b2["default_dns"], Value::Null);
    assert_eq!(b2["awg_s1"], Value::Null, "WireGuard ignores sent AWG values");

    let list = c.get("/configs").await;
    let names: Vec<&str> = list.ok().as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["mesh-b", "mesh-a"], "newest first");

    c.post("/configs", json!({"name": "mesh-a"})).await.err(409, "CONFIG_NAME_EXISTS");
    for bad in ["has space", "con", "LPT3.conf", "x/y", "   "] {
        c.post("/configs", json!({"name": bad})).await.err(400, "INVALID_CONFIG_NAME");
    }
    c.post("/configs", json!({})).await.err(422, "VALIDATION_ERROR");
    let e = c.post("/configs", json!({"name": "p", "default_listen_port": 0})).await;
    assert_eq!(e.err(422, "VALIDATION_ERROR")["message"], "default_listen_port must be greater than or equal to 1");
    c.post("/configs", json!({"name": "p", "virtual_subnet": "10.0.0.0/40"})).await.err(400, "INVALID_SUBNET");

    let got = c.get(&format!("/configs/{}", id(&a))).await;
    assert_eq!(got.ok()["name"], "mesh-a");
    let missing = c.get("/configs/cfg_000000000000").await;
    assert_eq!(missing.err(404, "CONFIG_NOT_FOUND")["detail"]["config_id"], "cfg_000000000000");

    // Rename onto an existing name is a conflict; a plain rename works.
    c.put(&format!("/configs/{}", id(&a)), json!({"name": "mesh-b"})).await.err(409, "CONFIG_NAME_EXISTS");
    let r = c.put(&format!("/configs/{}", id(&a)), json!({"name": "mesh-c", "default_mtu": 1400})).await;
    let d = r.ok();
    assert_eq!(d["name"], "mesh-c");
    assert_eq!(d["default_mtu"], 1400);
    assert_eq!(d["description"], "", "omitted fields are kept");
    assert_eq!(d["adjustments"], json!([]));
    assert_eq!(d["affected_node_ids"], json!([]));

    assert_eq!(c.delete(&format!("/configs/{}", id(&a))).await.ok()["message"], "Config deleted");
    c.delete(&format!("/configs/{}", id(&a))).await.err(404, "CONFIG_NOT_FOUND");
    c.s.stop().await;
}

async fn protocol_resolution_and_awg_create(b: Backend) {
    let c = Ctx::new(b).await;
    let e = c.post("/configs", json!({"name": "x", "tunnel_protocol": "openvpn"})).await;
    assert_eq!(e.err(400, "INVALID_TUNNEL_PROTOCOL")["detail"]["value"], "openvpn");
    for body in [
        json!({"name": "x", "tunnel_protocol": "wireguard", "awg_version": "2.0"}),
        json!({"name": "x", "tunnel_protocol": "amneziawg"}),
        json!({"name": "x", "tunnel_protocol": "amneziawg", "awg_version": "4.0"}),
        json!({"name": "x", "tunnel_protocol": "amneziawg_2", "awg_version": "3.1"}),
    ] {
        c.post("/configs", body).await.err(400, "INVALID_AWG_VERSION");
    }

    let a2 = c.config(json!({"name": "alias", "tunnel_protocol": "amneziawg_2"})).await;
    assert_eq!((a2["tunnel_protocol"].as_str(), a2["awg_version"].as_str()), (Some("amneziawg"), Some("2.0")));
    for k in ["awg_s1", "awg_s2", "awg_s3", "awg_s4", "awg_h1", "awg_h2", "awg_h3", "awg_h4"] {
        assert!(!a2[k].is_null(), "{k} backfilled");
    }
    assert!(a2["awg_h1"].as_str().unwrap().contains('-'), "2.0 H are ranges");

    let v31 = c.config(json!({"name": "v31", "tunnel_protocol": "amneziawg", "awg_version": "3.1"})).await;
    let key = v31["awg_options"]["header_protection_key"].as_str().unwrap();
    assert_eq!(key.len(), 44);
    let s = v31["awg_s1"].as_i64().unwrap();
    assert!((16..=32).contains(&s) && v31["awg_s4"] == s);
    let nokey = c
        .config(json!({"name": "v31n", "tunnel_protocol": "amneziawg", "awg_version": "3.1", "awg_options": {"header_protection_key": null}}))
        .await;
    assert_eq!(nokey["awg_options"]["header_protection_key"], Value::Null, "explicit null = no key");

    let v15 = c.config(json!({"name": "v15", "tunnel_protocol": "amneziawg", "awg_version": "1.5", "awg_s1": 20})).await;
    assert_eq!(v15["awg_s1"], 20);
    assert_eq!((v15["awg_s3"].as_i64(), v15["awg_s4"].as_i64()), (Some(0), Some(0)));
    assert!(!v15["awg_h1"].as_str().unwrap().contains('-'));

    let po = c.get("/configs/protocol-options").await;
    assert_eq!(po.ok()["default_awg_version"], "3.1");
    assert_eq!(po.ok()["versions"]["1.5"]["h_format"], "integer");
    c.s.stop().await;
}

async fn awg_parameter_errors(b: Backend) {
    let c = Ctx::new(b).await;
    let awg = |v: &str, extra: Value| {
        let mut body = json!({"name": "p", "tunnel_protocol": "amneziawg", "awg_version": v});
        for (k, val) in extra.as_object().unwrap() {
            body[k] = val.clone();
        }
        body
    };
    let cases = [
        (awg("2.0", json!({"awg_h1": "1000-2000", "awg_h2": "1500"})), "INVALID_AWG_H_RANGE"),
        (awg("2.0", json!({"awg_h1": "2000-1000"})), "INVALID_AWG_H_RANGE"),
        (awg("2.0", json!({"awg_h3": "abc"})), "INVALID_AWG_H_RANGE"),
        (awg("1.5", json!({"awg_h1": "10-20"})), "INVALID_AWG_H_RANGE"),
        (awg("1.5", json!({"awg_s3": 4})), "INVALID_AWG_PARAMETER"),
        (awg("1.5", json!({"awg_s1": 20, "awg_s2": 76})), "INVALID_AWG_PARAMETER"),
        (awg("2.0", json!({"awg_options": {"header_protection_key": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="}})), "INVALID_AWG_PARAMETER"),
        (awg("2.0", json!({"awg_options": {"bogus": 1}})), "INVALID_AWG_PARAMETER"),
        (awg("3.1", json!({"awg_s1": 5, "awg_s2": 5, "awg_s3": 5, "awg_s4": 5})), "INVALID_AWG_PARAMETER"),
        (awg("3.1", json!({"awg_options": {"random_trailers": true}, "awg_s1": 20, "awg_s2": 21, "awg_s3": 20, "awg_s4": 20})), "INVALID_AWG_PARAMETER"),
        (awg("3.1", json!({"awg_options": {"_random_direction": "tcp"}})), "INVALID_AWG_PARAMETER"),
    ];
    for (body, code) in cases {
        let r = c.post("/configs", body.clone()).await;
        r.err(400, code);
        assert!(!r.body["error"]["message"].as_str().unwrap().is_empty(), "{body}");
    }
    let r = c.post("/configs", awg("2.0", json!({"awg_options": {"header_protection_key": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="}}))).await;
    assert_eq!(r.body["error"]["message"], "header_protection_key is not supported by AWG 2.0");
    c.post("/configs", awg("2.0", json!({"awg_s1": 70000}))).await.err(422, "VALIDATION_ERROR");
    assert_eq!(c.get("/configs").await.ok().as_array().unwrap().len(), 0, "nothing stored after failures");

    // Node-level rules.
    let cfg = id(&c.config(awg("3.1", json!({"awg_options": {"random_trailers": false}}))).await);
    let node_cases = [
        (json!({"name": "n", "awg_jmin": 100, "awg_jmax": 50}), "INVALID_AWG_J_RANGE"),
        (json!({"name": "n", "awg_jmin": 65535}), "INVALID_AWG_J_RANGE"),
        (json!({"name": "n", "awg_i1": "<r 2000>"}), "INVALID_AWG_PARAMETER"),
        (json!({"name": "n", "awg_options": {"itime": 5}}), "INVALID_AWG_PARAMETER"),
        (json!({"name": "n", "awg_options": {"rekey_timeout": "9-3"}}), "INVALID_AWG_PARAMETER"),
        (json!({"name": "n", "awg_options": {"random_trailers": true}}), "INVALID_AWG_PARAMETER"),
        (json!({"name": "n", "awg_options": {"reject_after_time": "100", "rekey_after_time": "100-135"}}), "INVALID_AWG_PARAMETER"),
        (json!({"name": "n", "awg_options": {"header_protection_key": "x"}}), "INVALID_AWG_PARAMETER"),
    ];
    for (body, code) in node_cases {
        c.post(&format!("/configs/{cfg}/nodes"), body).await.err(400, code);
    }
    let n = c.node(&cfg, json!({"name": "n", "awg_jmin": 100})).await;
    assert!(n["awg_jmax"].as_i64().unwrap() > 100);
    assert_eq!(n["awg_options"]["random_trailers"], false, "node follows the shared value");
    assert_eq!(n["awg_options"]["disable_cookies"], false);
    assert!(n["awg_i1"].as_str().unwrap().starts_with("<r "));
    c.s.stop().await;
}

async fn version_change_converts_and_backfills(b: Backend) {
    let c = Ctx::new(b).await;
    let cfg = c
        .config(json!({"name": "v", "tunnel_protocol": "amneziawg", "awg_version": "2.0", "awg_s1": 20, "awg_s2": 76, "awg_s3": 30, "awg_s4": 7, "awg_h1": "5000-5100"}))
        .await;
    let cid = id(&cfg);
    let n1 = id(&c.node(&cid, json!({"name": "n1", "awg_jc": 9})).await);
    let n2 = id(&c.node(&cid, json!({"name": "n2"})).await);
    let r = c.put(&format!("/configs/{cid}"), json!({"name": "v", "awg_version": "1.5"})).await;
    let d = r.ok();
    assert_eq!(d["awg_version"], "1.5");
    assert_eq!((d["awg_s2"].as_i64(), d["awg_s3"].as_i64(), d["awg_s4"].as_i64()), (Some(15), Some(0), Some(0)));
    assert_eq!(d["awg_h1"], "5000");
    let fields: Vec<&str> = d["adjustments"].as_array().unwrap().iter().map(|a| a["field"].as_str().unwrap()).collect();
    for f in ["awg_s2", "awg_s3", "awg_s4", "awg_h1", "awg_h2", "awg_h3", "awg_h4"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    assert!(!fields.contains(&"awg_s1"));
    assert_eq!(d["adjustments"][0]["reason"], "Adapted to AWG 1.5");
    let mut expect = vec![n1.clone(), n2.clone()];
    expect.sort();
    assert_eq!(d["affected_node_ids"], json!(expect));
    let node = c.get(&format!("/nodes/{n1}")).await;
    assert_eq!(node.ok()["awg_jc"], 9, "stored values kept");
    assert!(node.ok()["awg_options"]["j1"].as_str().unwrap().starts_with("<r "), "1.5 options backfilled");

    // AWG stays AWG without a version: current kept; WireGuard clears everything.
    let r = c.put(&format!("/configs/{cid}"), json!({"name": "v", "tunnel_protocol": "amneziawg"})).await;
    assert_eq!(r.ok()["awg_version"], "1.5");
    assert_eq!(r.ok()["adjustments"], json!([]));
    let r = c.put(&format!("/configs/{cid}"), json!({"name": "v", "tunnel_protocol": "wireguard"})).await;
    assert_eq!(r.ok()["awg_s1"], Value::Null);
    assert_eq!(r.ok()["awg_options"], json!({}));
    let node = c.get(&format!("/nodes/{n1}")).await;
    assert_eq!(node.ok()["awg_jc"], Value::Null);
    assert_eq!(node.ok()["awg_options"], json!({}));
    // First switch from WireGuard needs a version.
    c.put(&format!("/configs/{cid}"), json!({"name": "v", "tunnel_protocol": "amneziawg"})).await.err(400, "INVALID_AWG_VERSION");
    c.put(&format!("/configs/{cid}"), json!({"name": "v", "awg_node_updates": {n1.clone(): {"awg_jc": 3}}}))
        .await
        .err(400, "INVALID_AWG_PARAMETER");
    let r = c.put(&format!("/configs/{cid}"), json!({"name": "v", "tunnel_protocol": "amneziawg", "awg_version": "3.1"})).await;
    let d = r.ok();
    assert!(d["awg_options"]["header_protection_key"].is_string());
    let n = c.get(&format!("/nodes/{n2}")).await;
    assert_eq!(n.ok()["awg_options"]["random_trailers"], true);
    assert!(n.ok()["awg_jc"].is_i64());

    // awg_node_updates: ids and keys are checked; a valid draft is applied.
    c.put(&format!("/configs/{cid}"), json!({"name": "v", "awg_node_updates": {"node_nope": {"awg_jc": 3}}}))
        .await
        .err(400, "INVALID_AWG_PARAMETER");
    c.put(&format!("/configs/{cid}"), json!({"name": "v", "awg_node_updates": {n1.clone(): {"name": "x"}}}))
        .await
        .err(400, "INVALID_AWG_PARAMETER");
    let r = c.put(&format!("/configs/{cid}"), json!({"name": "v", "awg_node_updates": {n1.clone(): {"awg_jc": 3, "awg_i2": null}}})).await;
    r.ok();
    let n = c.get(&format!("/nodes/{n1}")).await;
    assert_eq!(n.ok()["awg_jc"], 3);
    assert_eq!(n.ok()["awg_i2"], Value::Null, "explicit null clears and a routine save never refills it");
    let r = c.put(&format!("/configs/{cid}"), json!({"name": "v", "description": "again"})).await;
    r.ok();
    assert_eq!(c.get(&format!("/nodes/{n1}")).await.ok()["awg_i2"], Value::Null);
    c.s.stop().await;
}

async fn nodes_ips_and_partial_update(b: Backend) {
    let c = Ctx::new(b).await;
    let cid = id(&c.config(json!({"name": "ips", "virtual_subnet": "10.9.0.0/30"})).await);
    let a = c.node(&cid, json!({"name": " alpha ", "tags": ["b", " a", "b"], "pre_up": [" echo 1 ", ""], "dns": "1.1.1.1"})).await;
    assert_eq!(a["name"], "alpha");
    assert_eq!(a["virtual_ip"], "10.9.0.1/32");
    assert_eq!(a["tags"], json!(["a", "b"]));
    assert_eq!(a["pre_up"], json!(["echo 1"]));
    assert_eq!(a["node_type"], "dynamic");
    assert_eq!(a["auto_sync"], true);
    assert_eq!(a["managed_hooks"]["pre_up"], json!([]));
    assert_eq!(c.post(&format!("/configs/{cid}/nodes/suggest-ip"), json!({})).await.ok()["ip"], "10.9.0.2/32");
    let bnode = c.node(&cid, json!({"name": "beta"})).await;
    assert_eq!(bnode["virtual_ip"], "10.9.0.2/32");
    c.post(&format!("/configs/{cid}/nodes/suggest-ip"), json!({})).await.err(400, "IP_POOL_EXHAUSTED");
    c.post(&format!("/configs/{cid}/nodes"), json!({"name": "gamma"})).await.err(400, "IP_POOL_EXHAUSTED");
    c.post(&format!("/configs/cfg_000000000000/nodes"), json!({"name": "x"})).await.err(404, "CONFIG_NOT_FOUND");
    c.post(&format!("/configs/{cid}/nodes"), json!({"name": "   ", "virtual_ip": "10.1.1.1"})).await.err(400, "INVALID_NODE_NAME");
    let dup = c.post(&format!("/configs/{cid}/nodes"), json!({"name": "g", "virtual_ip": "10.9.0.1"})).await;
    assert_eq!(dup.err(400, "INVALID_VIRTUAL_IP")["message"], "10.9.0.1 is already used by node alpha");
    let bad = c.post(&format!("/configs/{cid}/nodes"), json!({"name": "g", "virtual_ip": "10.9.0"})).await;
    assert_eq!(bad.err(400, "INVALID_VIRTUAL_IP")["message"], "IP format is invalid");
    // Subnet membership is not required.
    let g = c.node(&cid, json!({"name": "gamma", "virtual_ip": "192.168.7.7/32"})).await;

    let v = |ip: &str| json!({"virtual_ip": ip});
    let check = |r: wfm_e2e::Resp| r.ok().clone();
    assert_eq!(check(c.post(&format!("/configs/{cid}/nodes/validate-ip"), v("")).await), json!({"valid": false, "warning": "Virtual IP is required"}));
    assert_eq!(check(c.post(&format!("/configs/{cid}/nodes/validate-ip"), v("nope")).await)["warning"], "IP format is invalid");
    assert_eq!(
        check(c.post(&format!("/configs/{cid}/nodes/validate-ip"), v("10.9.0.2/32")).await)["warning"],
        "10.9.0.2/32 is already used by node beta"
    );
    assert_eq!(check(c.post(&format!("/configs/{cid}/nodes/validate-ip"), v("10.9.0.9")).await), json!({"valid": true, "warning": ""}));

    // Partial PUT: omitted keeps, null clears.
    let aid = id(&a);
    let r = c.put(&format!("/nodes/{aid}"), json!({"ipv4_address": "203.0.113.5", "mtu": 1380})).await;
    let d = r.ok();
    assert_eq!(d["name"], "alpha");
    assert_eq!(d["dns"], "1.1.1.1");
    assert_eq!(d["tags"], json!(["a", "b"]));
    assert_eq!(d["ipv4_address"], "203.0.113.5");
    assert_eq!(d["affected_node_ids"], json!([aid.clone()]));
    assert_eq!(d["change_hints"], json!([]));
    let r = c.put(&format!("/nodes/{aid}"), json!({"dns": null, "tags": null, "mtu": null})).await;
    let d = r.ok();
    assert_eq!((d["dns"].clone(), d["tags"].clone(), d["mtu"].clone()), (Value::Null, json!([]), Value::Null));
    assert_eq!(d["ipv4_address"], "203.0.113.5");
    let e = c.put(&format!("/nodes/{aid}"), json!({"virtual_ip": null})).await;
    assert_eq!(e.err(400, "INVALID_VIRTUAL_IP")["message"], "Virtual IP is required");
    let e = c.put(&format!("/nodes/{aid}"), json!({"virtual_ip": "192.168.7.7"})).await;
    assert_eq!(e.err(400, "INVALID_VIRTUAL_IP")["message"], "192.168.7.7 is already used by node gamma");
    c.put(&format!("/nodes/{aid}"), json!({"virtual_ip": "10.9.0.1/24"})).await.ok();
    c.put(&format!("/nodes/{aid}"), json!({"name": "  "})).await.err(400, "INVALID_NODE_NAME");
    c.put(&format!("/nodes/{aid}"), json!({"name": null})).await.err(422, "VALIDATION_ERROR");
    c.put(&format!("/nodes/{aid}"), json!({"listen_port": 70000})).await.err(422, "VALIDATION_ERROR");
    c.put(&format!("/nodes/{aid}"), json!({"node_type": "hybrid"})).await.err(422, "VALIDATION_ERROR");
    c.put("/nodes/node_000000000000", json!({"name": "x"})).await.err(404, "NODE_NOT_FOUND");
    c.get("/nodes/node_000000000000").await.err(404, "NODE_NOT_FOUND");

    // Type change: binding and runtime reset with the write.
    let bid = id(&bnode);
    let r = c.put(&format!("/nodes/{bid}"), json!({"node_type": "static"})).await;
    assert_eq!(r.ok()["node_type"], "static");
    assert_eq!(c.scalar_text(&format!("SELECT last_connectivity_reason FROM endpoint_runtime_status WHERE node_id = '{bid}'")).await, "static-node");

    let list = c.get(&format!("/configs/{cid}/nodes")).await;
    let order: Vec<&str> = list.ok().as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(order, vec!["alpha", "beta", "gamma"], "creation order");
    let cfg = c.get(&format!("/configs/{cid}")).await;
    assert_eq!((cfg.ok()["node_count"].as_i64(), cfg.ok()["dynamic_node_count"].as_i64()), (Some(3), Some(2)));
    let _ = g;
    c.s.stop().await;
}

async fn disable_hints_and_cascades(b: Backend) {
    let c = Ctx::new(b).await;
    let cid = id(&c.config(json!({"name": "casc"})).await);
    let a = id(&c.node(&cid, json!({"name": "a", "ipv4_address": "198.51.100.1"})).await);
    let bn = id(&c.node(&cid, json!({"name": "b", "ipv4_address": "198.51.100.2"})).await);
    let other = id(&c.node(&cid, json!({"name": "lonely"})).await);
    c.link_pair(&cid, &a, &bn, 0xab, "25").await;
    let f = if b == Backend::Postgres { "FALSE" } else { "0" };
    c.exec(&format!("UPDATE node_config_state SET desired_stale = {f}")).await;

    // Tags never make a file stale.
    c.put(&format!("/nodes/{a}/tags"), json!({"tags": ["x"]})).await.ok();
    assert!(!c.bool_col(&format!("SELECT desired_stale FROM node_config_state WHERE node_id = '{a}'")).await);

    // Address change of `b`: the auto link a→b no longer resolves and loses its keepalive.
    let r = c.put(&format!("/nodes/{bn}"), json!({"ipv4_address": null})).await;
    let d = r.ok();
    assert_eq!(d["change_hints"], json!([{"code": "NODE_ENDPOINTS_RECALCULATED", "level": "info", "count": 1, "cleared_keepalive_count": 1}]));
    let mut pair = vec![a.clone(), bn.clone()];
    pair.sort();
    assert_eq!(d["affected_node_ids"], json!(pair));
    assert_eq!(c.scalar_i64("SELECT COUNT(*) FROM peer_links WHERE persistent_keepalive IS NULL").await, 1);
    // The unrelated node was not marked for re-rendering.
    assert!(!c.bool_col(&format!("SELECT desired_stale FROM node_config_state WHERE node_id = '{other}'")).await);

    let r = c.put(&format!("/nodes/{a}"), json!({"virtual_ip": "10.66.0.50/32"})).await;
    assert_eq!(r.ok()["change_hints"], json!([{"code": "VIRTUAL_IP_CHANGED_REVIEW_ALLOWED_IPS", "level": "warning", "count": 1}]));

    // Disable: links off, runtime reset; re-enable restores no link.
    c.exec(&format!("UPDATE endpoint_runtime_status SET connectivity_state = 'online', peers_total = 3 WHERE node_id = '{a}'")).await;
    let r = c.put(&format!("/nodes/{a}"), json!({"enabled": false})).await;
    assert_eq!(r.ok()["enabled"], false);
    assert_eq!(c.scalar_i64("SELECT COUNT(*) FROM peer_links WHERE enabled = (1 = 1)").await, 0);
    assert_eq!(c.scalar_text(&format!("SELECT connectivity_state FROM endpoint_runtime_status WHERE node_id = '{a}'")).await, "unknown");
    assert_eq!(c.scalar_text(&format!("SELECT last_connectivity_reason FROM endpoint_runtime_status WHERE node_id = '{a}'")).await, "Node disabled");
    assert_eq!(c.scalar_i64(&format!("SELECT peers_total FROM endpoint_runtime_status WHERE node_id = '{a}'")).await, 0);
    c.put(&format!("/nodes/{a}"), json!({"enabled": true})).await.ok();
    assert_eq!(c.scalar_i64("SELECT COUNT(*) FROM peer_links WHERE enabled = (1 = 1)").await, 0);
    let cfg = c.get(&format!("/configs/{cid}")).await;
    assert_eq!(cfg.ok()["disabled_node_count"], 0);

    // Default port change: nodes without their own port and the locals of auto links to them.
    let r = c.put(&format!("/configs/{cid}"), json!({"name": "casc", "default_listen_port": 51999})).await;
    assert_eq!(r.ok()["change_hints"], json!([{"code": "CONFIG_ENDPOINTS_RECALCULATED", "level": "info", "count": 3}]));

    // Node delete: links, state and runtime go; registry tags stay.
    assert_eq!(c.delete(&format!("/nodes/{a}")).await.ok()["message"], "Node deleted");
    assert_eq!(c.scalar_i64("SELECT COUNT(*) FROM peer_links").await, 0);
    assert_eq!(c.scalar_i64(&format!("SELECT COUNT(*) FROM node_config_state WHERE node_id = '{a}'")).await, 0);
    assert_eq!(c.scalar_i64(&format!("SELECT COUNT(*) FROM endpoint_runtime_status WHERE node_id = '{a}'")).await, 0);
    let tags = c.get(&format!("/configs/{cid}/tags")).await;
    assert_eq!(tags.ok(), &json!([{"name": "x", "count": 0}]));
    c.delete(&format!("/nodes/{a}")).await.err(404, "NODE_NOT_FOUND");

    // Config delete cascades to everything.
    c.link_pair(&cid, &bn, &other, 0xb0, "NULL").await;
    c.delete(&format!("/configs/{cid}")).await.ok();
    for t in ["nodes", "peer_links", "config_tags", "node_config_state", "endpoint_runtime_status"] {
        assert_eq!(c.scalar_i64(&format!("SELECT COUNT(*) FROM {t}")).await, 0, "{t}");
    }
    c.s.stop().await;
}

async fn mqtt_off_forces_static(b: Backend) {
    let c = Ctx::with_env(b, &[("WFM_ENABLE_MQTT_SERVICES", "false")]).await;
    let cid = id(&c.config(json!({"name": "off"})).await);
    let n = c.node(&cid, json!({"name": "s"})).await;
    assert_eq!(n["node_type"], "static");
    let e = c.post(&format!("/configs/{cid}/nodes"), json!({"name": "d", "node_type": "dynamic"})).await;
    e.err(409, "MQTT_DISABLED");
    c.put(&format!("/nodes/{}", id(&n)), json!({"node_type": "dynamic"})).await.err(409, "MQTT_DISABLED");
    let r = c.put(&format!("/nodes/{}", id(&n)), json!({"node_type": "static", "name": "s2"})).await;
    assert_eq!(r.ok()["name"], "s2");
    let list = c.get("/configs").await;
    assert_eq!(list.ok()[0]["dynamic_node_count"], 0);
    assert_eq!(list.ok()[0]["node_count"], 1);
    c.s.stop().await;
}

async fn tags_end_to_end(b: Backend) {
    let c = Ctx::new(b).await;
    let cid = id(&c.config(json!({"name": "tags"})).await);
    let other_cfg = id(&c.config(json!({"name": "tags2"})).await);
    let n1 = id(&c.node(&cid, json!({"name": "n1", "tags": ["edge"]})).await);
    let n2 = id(&c.node(&cid, json!({"name": "n2"})).await);
    let foreign = id(&c.node(&other_cfg, json!({"name": "f"})).await);

    c.post(&format!("/configs/{cid}/tags"), json!({"name": "   "})).await.err(400, "INVALID_TAG");
    c.post(&format!("/configs/{cid}/tags"), json!({"name": ""})).await.err(422, "VALIDATION_ERROR");
    let t = c.post(&format!("/configs/{cid}/tags"), json!({"name": " core "})).await;
    assert_eq!(t.ok(), &json!({"name": "core", "count": 0}));
    c.post(&format!("/configs/{cid}/tags"), json!({"name": "core"})).await.ok();
    let t = c.post(&format!("/configs/{cid}/tags"), json!({"name": "edge"})).await;
    assert_eq!(t.ok()["count"], 1);

    let e = c.post(&format!("/configs/{cid}/tags/apply"), json!({"tag": "core", "node_ids": [n1.clone(), foreign.clone()]})).await;
    assert_eq!(e.err(400, "NODE_CONFIG_MISMATCH")["detail"]["node_ids"], json!([foreign]));
    assert_eq!(c.post(&format!("/configs/{cid}/tags/apply"), json!({"tag": "core", "node_ids": [" ", ""]})).await.ok(), &json!([]));
    let r = c.post(&format!("/configs/{cid}/tags/apply"), json!({"tag": "core", "node_ids": [n1.clone(), n2.clone(), n1.clone()]})).await;
    let nodes = r.ok().as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["tags"], json!(["core", "edge"]));
    let list = c.get(&format!("/configs/{cid}/tags")).await;
    assert_eq!(list.ok(), &json!([{"name": "core", "count": 2}, {"name": "edge", "count": 1}]));

    let n = c.delete(&format!("/nodes/{n1}/tags/edge")).await;
    assert_eq!(n.ok()["tags"], json!(["core"]));
    let n = c.put(&format!("/nodes/{n2}/tags"), json!({"tags": ["zeta", " core", ""]})).await;
    assert_eq!(n.ok()["tags"], json!(["core", "zeta"]));
    let r = c.delete(&format!("/configs/{cid}/tags/core")).await;
    assert_eq!(r.ok(), &json!({"message": "Tag deleted", "removed_count": 2}));
    let list = c.get(&format!("/configs/{cid}/tags")).await;
    assert_eq!(list.ok(), &json!([{"name": "edge", "count": 0}, {"name": "zeta", "count": 1}]));
    c.get("/configs/cfg_000000000000/tags").await.err(404, "CONFIG_NOT_FOUND");
    c.put("/nodes/node_000000000000/tags", json!({"tags": []})).await.err(404, "NODE_NOT_FOUND");
    c.s.stop().await;
}

async fn keys_match_wireguard_tools(b: Backend) {
    let c = Ctx::new(b).await;
    let pair = c.post("/nodes/keys/generate", json!({})).await;
    let priv_key = pair.ok()["private_key"].as_str().unwrap().to_string();
    assert_eq!(wg(&["pubkey"], Some(&priv_key)), pair.ok()["public_key"].as_str().unwrap());

    let wg_priv = wg(&["genkey"], None);
    let wg_pub = wg(&["pubkey"], Some(&wg_priv));
    let d = c.post("/nodes/keys/derive-public", json!({"private_key": wg_priv})).await;
    assert_eq!(d.ok(), &json!({"private_key": wg_priv, "public_key": wg_pub}));
    c.post("/nodes/keys/derive-public", json!({"private_key": "   "})).await.err(422, "VALIDATION_ERROR");
    c.post("/nodes/keys/derive-public", json!({"private_key": "c2hvcnQ="})).await.err(400, "INVALID_KEY");

    let cid = id(&c.config(json!({"name": "keys"})).await);
    let n = c.node(&cid, json!({"name": "k", "private_key": wg_priv})).await;
    assert_eq!(n["public_key"], wg_pub);
    let generated = c.node(&cid, json!({"name": "g"})).await;
    let gp = generated["private_key"].as_str().unwrap();
    assert_eq!(wg(&["pubkey"], Some(gp)), generated["public_key"].as_str().unwrap());
    // Mismatched pair: refused (WFM choice; upstream stores it).
    let other_pub = wg(&["pubkey"], Some(&wg(&["genkey"], None)));
    let e = c.post(&format!("/configs/{cid}/nodes"), json!({"name": "m", "private_key": wg_priv, "public_key": other_pub})).await;
    e.err(400, "INVALID_KEY");
    c.post(&format!("/configs/{cid}/nodes"), json!({"name": "m", "private_key": "nope"})).await.err(400, "INVALID_KEY");
    // Update: a new private key re-derives the public key.
    let new_priv = wg(&["genkey"], None);
    let r = c.put(&format!("/nodes/{}", id(&n)), json!({"private_key": new_priv})).await;
    assert_eq!(r.ok()["public_key"], wg(&["pubkey"], Some(&new_priv)));
    c.put(&format!("/nodes/{}", id(&n)), json!({"public_key": other_pub})).await.err(400, "INVALID_KEY");
    c.s.stop().await;
}

async fn auth_is_required(b: Backend) {
    let c = Ctx::new(b).await;
    c.s.get(&format!("{API}/configs"), None).await.err(401, "AUTH_REQUIRED");
    c.s.post(&format!("{API}/nodes/keys/generate"), None, json!({})).await.err(401, "AUTH_REQUIRED");
    c.s.stop().await;
}

async fn node_config_downloads(b: Backend) {
    let c = Ctx::new(b).await;
    // Manual staging only: with auto-sync the refresh worker would stage both nodes itself.
    let cid = id(&c.config(json!({"name": "dl-mesh", "auto_sync": false})).await);
    let a = id(&c.node(&cid, json!({"name": "a"})).await);
    let bn = id(&c.node(&cid, json!({"name": "b"})).await);
    let other_cfg = id(&c.config(json!({"name": "dl-other"})).await);
    let text = "[Interface]\nPrivateKey = x\n";
    c.exec(&format!("UPDATE node_config_state SET staged_text = '{text}', staged_sha256 = 'abc', staged_version = 2 WHERE node_id = '{a}'"))
        .await;

    let p = c.get(&format!("/configs/{cid}/nodes/{a}/download-package")).await;
    let d = p.ok();
    assert_eq!(d["filename"], "dl-mesh.conf");
    assert_eq!(d["content"], text);
    assert_eq!(d["staged_version"], 2);
    assert_eq!(d["download_path"], format!("/api/v1/configs/{cid}/nodes/{a}/download-conf"));
    c.get(&format!("/configs/{other_cfg}/nodes/{a}/download-package")).await.err(400, "NODE_CONFIG_MISMATCH");

    let t = c.post(&format!("/configs/{cid}/nodes/{a}/download-token"), json!({})).await;
    let t = t.ok().clone();
    assert_eq!(t["token_type"], "download");
    assert_eq!(t["filename"], "dl-mesh.conf");
    let path = t["download_path"].as_str().unwrap().to_string();
    assert!(path.ends_with(&format!("download_token={}", t["access_token"].as_str().unwrap())));

    // The token URL works without a session and returns the staged text as an attachment.
    let r = c.s.client.get(c.s.url(&path)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"dl-mesh.conf\"");
    assert_eq!(r.text().await.unwrap(), text);

    // A session is not a download token; the token is bound to its node.
    let conf = format!("{API}/configs/{cid}/nodes/{a}/download-conf");
    c.s.get(&conf, Some(&c.token)).await.err(401, "DOWNLOAD_TOKEN_REQUIRED");
    c.s.get(&format!("{conf}?download_token=garbage"), None).await.err(401, "INVALID_TOKEN");
    let tok = t["access_token"].as_str().unwrap();
    c.s.get(&format!("{API}/configs/{cid}/nodes/{bn}/download-conf?download_token={tok}"), None)
        .await
        .err(403, "DOWNLOAD_TOKEN_SCOPE_MISMATCH");
    // And it is not a session.
    c.s.get(&format!("{API}/configs"), Some(tok)).await.err(401, "INVALID_TOKEN");
    // Nothing staged yet for b.
    let tb = c.post(&format!("/configs/{cid}/nodes/{bn}/download-token"), json!({})).await;
    let tb = tb.ok()["access_token"].as_str().unwrap().to_string();
    c.s.get(&format!("{API}/configs/{cid}/nodes/{bn}/download-conf?download_token={tb}"), None)
        .await
        .err(409, "NO_STAGED_CONFIG");
    // Disabled nodes have nothing to download.
    c.put(&format!("/nodes/{a}"), json!({"enabled": false})).await.ok();
    c.post(&format!("/configs/{cid}/nodes/{a}/download-token"), json!({})).await.err(409, "NODE_DISABLED");
    c.s.get(&format!("{conf}?download_token={tok}"), None).await.err(409, "NODE_DISABLED");
    c.s.stop().await;
}

both_backends!(
    config_crud_and_name_rules,
    protocol_resolution_and_awg_create,
    awg_parameter_errors,
    version_change_converts_and_backfills,
    nodes_ips_and_partial_update,
    disable_hints_and_cascades,
    mqtt_off_forces_static,
    tags_end_to_end,
    keys_match_wireguard_tools,
    auth_is_required,
    node_config_downloads,
);
