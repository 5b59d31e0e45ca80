//! Mesh end to end (spec 02 §6–§9), against SQLite and PostgreSQL: pairs and every error code
//! of §6–§7, drafts, workspaces, topology validation, Quick Mesh (incl. the §7 worked example
//! and a failure half-way through its transaction), wg-preview accepted by `wg-quick strip`,
//! desired-config regeneration, overview and list counters, SSE hints after writes.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use wfm_e2e::{Backend, TestServer, both_backends};

const API: &str = "/api/v1";

struct Ctx {
    s: TestServer,
    token: String,
}

impl Ctx {
    async fn new(b: Backend) -> Ctx {
        let s = TestServer::start_with(b, &[("WFM_ENABLE_MQTT_SERVICES", "false")]).await;
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
    async fn config(&self, name: &str, extra: Value) -> String {
        let mut body = json!({"name": name, "virtual_subnet": "10.92.0.0/24"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post("/configs", body).await.ok()["id"].as_str().unwrap().to_string()
    }
    async fn node(&self, cfg: &str, name: &str, vip: Option<&str>, v4: Option<&str>) -> String {
        let r = self
            .post(&format!("/configs/{cfg}/nodes"), json!({"name": name, "virtual_ip": vip, "ipv4_address": v4, "node_type": "static"}))
            .await;
        r.ok()["id"].as_str().unwrap().to_string()
    }
    async fn exec(&self, sql: &str) {
        let mut tx = self.s.state.db.begin().await.unwrap();
        wfm::on_tx!(&mut tx, |c| sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(c).await.map(|_| ())).unwrap();
        tx.commit().await.unwrap();
    }
    async fn scalar_i64(&self, sql: &str) -> i64 {
        wfm::on_pool!(&self.s.state.db, |c| sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(c).await)
            .unwrap()
    }
}

fn pair(a: &str, b: &str, ab: &str, ba: &str) -> Value {
    json!({
        "forward": {"local_node_id": a, "peer_node_id": b, "allowed_ips": ab, "persistent_keepalive": 25},
        "reverse": {"local_node_id": b, "peer_node_id": a, "allowed_ips": ba, "persistent_keepalive": 25},
    })
}

const PSK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn pairs_crud_and_errors(b: Backend) {
    let c = Ctx::new(b).await;
    let cfg = c.config("mesh-a", json!({})).await;
    let other = c.config("mesh-b", json!({})).await;
    let n1 = c.node(&cfg, "n1", Some("10.92.0.2/32"), Some("198.51.100.1")).await;
    let n2 = c.node(&cfg, "n2", Some("10.92.0.3/32"), Some("198.51.100.2")).await;
    let n3 = c.node(&cfg, "n3", Some("10.92.0.4/32"), None).await;
    let foreign = c.node(&other, "x", Some("10.92.0.9/32"), None).await;

    // Create: both rows, normalised AllowedIPs, group PSK on both rows, group notes/enabled win.
    let mut body = pair(&n1, &n2, " 10.92.0.3/32 , 10.1.0.2/24,10.92.0.3/32", "10.92.0.2/32");
    body["preshared_key"] = json!(PSK);
    body["notes"] = json!(" core ");
    body["forward"]["notes"] = json!("ignored");
    let rows = c.post(&format!("/configs/{cfg}/peer-links"), body).await.ok().clone();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let (f, r) = (&rows[0], &rows[1]);
    assert_eq!((f["direction"].as_str(), r["direction"].as_str()), (Some("forward"), Some("reverse")));
    assert_eq!(f["link_group_id"], r["link_group_id"]);
    assert!(f["id"].as_str().unwrap().starts_with("plink_") && f["link_group_id"].as_str().unwrap().starts_with("group_"));
    assert_eq!(f["allowed_ips"], "10.92.0.3/32,10.1.0.2/24");
    assert_eq!((f["local_node_id"].as_str(), f["peer_node_id"].as_str()), (Some(n1.as_str()), Some(n2.as_str())));
    assert_eq!((r["local_node_id"].as_str(), r["peer_node_id"].as_str()), (Some(n2.as_str()), Some(n1.as_str())));
    assert_eq!((f["preshared_key"].as_str(), r["preshared_key"].as_str()), (Some(PSK), Some(PSK)));
    assert_eq!((f["notes"].as_str(), f["enabled"].as_bool()), (Some("core"), Some(true)));
    assert_eq!((f["endpoint_mode"].as_str(), f["endpoint_ref_family"].as_str()), (Some("auto"), Some("ipv4")));
    assert_eq!(f["persistent_keepalive"], 25);
    let group = f["link_group_id"].as_str().unwrap().to_string();

    // Keepalive is dropped towards a peer without a public entry.
    let rows = c.post(&format!("/configs/{cfg}/peer-links"), pair(&n1, &n3, "10.92.0.4/32", "10.92.0.2/32")).await.ok().clone();
    assert_eq!(rows[0]["persistent_keepalive"], Value::Null, "n1 -> n3 has no Endpoint");
    assert_eq!(rows[1]["persistent_keepalive"], 25, "n3 -> n1 uses n1's address");
    let g13 = rows[0]["link_group_id"].as_str().unwrap().to_string();

    let links = c.get(&format!("/configs/{cfg}/peer-links")).await.ok().clone();
    assert_eq!(links.as_array().unwrap().len(), 4);

    // Errors of create.
    let p = format!("/configs/{cfg}/peer-links");
    c.post("/configs/cfg_nope/peer-links", pair(&n1, &n2, "10.0.0.1/32", "10.0.0.2/32")).await.err(404, "CONFIG_NOT_FOUND");
    c.post(&p, pair(&n1, "node_nope", "10.0.0.1/32", "10.0.0.2/32")).await.err(404, "NODE_NOT_FOUND");
    c.post(&p, pair(&n1, &foreign, "10.0.0.1/32", "10.0.0.2/32")).await.err(400, "NODE_CONFIG_MISMATCH");
    c.post(&p, pair(&n1, &n1, "10.0.0.1/32", "10.0.0.2/32")).await.err(400, "INVALID_PEER_LINK");
    let mut bad = pair(&n1, &n2, "10.0.0.1/32", "10.0.0.2/32");
    bad["reverse"]["local_node_id"] = json!(n3);
    let e = c.post(&p, bad).await;
    e.err(400, "INVALID_PEER_LINK");
    assert_eq!(e.body["error"]["message"], "Bidirectional link node direction mismatch");
    c.post(&p, pair(&n1, &n2, " , ", "10.0.0.2/32")).await.err(400, "INVALID_ALLOWED_IPS");
    c.post(&p, pair(&n1, &n2, "10.0.0.300/32", "10.0.0.2/32")).await.err(400, "INVALID_ALLOWED_IPS");
    let mut manual = pair(&n1, &n2, "10.0.0.1/32", "10.0.0.2/32");
    manual["forward"]["endpoint_mode"] = json!("manual");
    manual["forward"]["endpoint_manual_host"] = json!("vpn.example.org");
    let e = c.post(&p, manual).await;
    e.err(400, "INVALID_ENDPOINT");
    assert_eq!(e.body["error"]["message"], "Manual Endpoint requires Host and Port.");
    c.post(&p, pair(&n1, "  ", "10.0.0.1/32", "10.0.0.2/32")).await.err(422, "VALIDATION_ERROR");
    let mut ka = pair(&n1, &n2, "10.0.0.1/32", "10.0.0.2/32");
    ka["forward"]["persistent_keepalive"] = json!(70000);
    c.post(&p, ka).await.err(422, "VALIDATION_ERROR");
    let mut mode = pair(&n1, &n2, "10.0.0.1/32", "10.0.0.2/32");
    mode["forward"]["endpoint_mode"] = json!("bogus");
    c.post(&p, mode).await.err(422, "VALIDATION_ERROR");
    let mut psk = pair(&n1, &n2, "10.0.0.1/32", "10.0.0.2/32");
    psk["preshared_key"] = json!("not-base64");
    c.post(&p, psk).await.err(400, "INVALID_KEY");
    // Disabled node: 400 on pair create.
    c.put(&format!("/nodes/{n3}"), json!({"name": "n3", "enabled": false})).await.ok();
    let e = c.post(&p, pair(&n1, &n3, "10.0.0.1/32", "10.0.0.2/32")).await;
    e.err(400, "NODE_DISABLED");
    assert_eq!(c.get(&format!("/configs/{cfg}/peer-links")).await.ok().as_array().unwrap().len(), 4, "nothing written");

    // Update from the other end's view: rows keep ids/direction, PSK kept when not sent.
    let before = c.get(&format!("/configs/{cfg}/peer-links")).await.ok().clone();
    let mut up = pair(&n2, &n1, "10.92.0.2/32,10.50.0.0/16", "10.92.0.3/32");
    up["forward"]["endpoint_mode"] = json!("manual");
    up["forward"]["endpoint_manual_host"] = json!("2001:db8::1");
    up["forward"]["endpoint_port_mode"] = json!("manual");
    up["forward"]["endpoint_manual_port"] = json!(443);
    up["notes"] = json!("edited");
    let rows = c.put(&format!("/peer-links/{group}"), up).await.ok().clone();
    let stored_fwd = rows.as_array().unwrap().iter().find(|r| r["direction"] == "forward").unwrap();
    let stored_rev = rows.as_array().unwrap().iter().find(|r| r["direction"] == "reverse").unwrap();
    assert_eq!(stored_fwd["id"], before[0]["id"]);
    assert_eq!(stored_fwd["local_node_id"].as_str(), Some(n1.as_str()));
    assert_eq!(stored_fwd["allowed_ips"], "10.92.0.3/32");
    assert_eq!(stored_rev["allowed_ips"], "10.92.0.2/32,10.50.0.0/16");
    assert_eq!(stored_rev["endpoint_mode"], "manual");
    assert_eq!(stored_rev["endpoint_ref_family"], Value::Null);
    assert_eq!(stored_rev["endpoint_manual_port"], 443);
    assert_eq!(stored_rev["persistent_keepalive"], 25);
    assert_eq!((stored_fwd["preshared_key"].as_str(), stored_rev["notes"].as_str()), (Some(PSK), Some("edited")));
    // Update errors; nothing changes.
    c.put("/peer-links/group_nope", pair(&n1, &n2, "10.0.0.1/32", "10.0.0.2/32")).await.err(404, "PEER_LINK_NOT_FOUND");
    c.put(&format!("/peer-links/{group}"), pair(&n1, &n3, "10.0.0.1/32", "10.0.0.2/32")).await.err(400, "INVALID_PEER_LINK");
    let mut clear = pair(&n1, &n2, "10.92.0.3/32", "10.92.0.2/32");
    clear["clear_preshared_key"] = json!(true);
    let rows = c.put(&format!("/peer-links/{group}"), clear).await.ok().clone();
    assert_eq!(rows[0]["preshared_key"], Value::Null);

    // PSK generator.
    let k = c.post("/peer-links/psk/generate", json!({})).await.ok()["preshared_key"].as_str().unwrap().to_string();
    assert_eq!(k.len(), 44);

    // Delete.
    assert_eq!(c.delete(&format!("/peer-links/{g13}")).await.ok()["message"], "Peer link group deleted");
    c.delete(&format!("/peer-links/{g13}")).await.err(404, "PEER_LINK_NOT_FOUND");
    assert_eq!(c.get(&format!("/configs/{cfg}/peer-links")).await.ok().as_array().unwrap().len(), 2);
    c.get("/configs/cfg_nope/peer-links").await.err(404, "CONFIG_NOT_FOUND");
    c.s.stop().await;
}

async fn draft_workspace_validate(b: Backend) {
    let c = Ctx::new(b).await;
    let cfg = c.config("mesh-d", json!({})).await;
    let other = c.config("mesh-e", json!({})).await;
    let n1 = c.node(&cfg, "n1", Some("10.92.0.2/32"), Some("198.51.100.1")).await;
    let n2 = c.node(&cfg, "n2", None, None).await;
    let n3 = c.node(&cfg, "n3", Some("10.92.0.4/32"), None).await;
    let foreign = c.node(&other, "x", None, None).await;
    // Node creation suggests a virtual IP; a node without one only exists through the database.
    c.exec(&format!("UPDATE nodes SET virtual_ip = NULL WHERE id = '{n2}'")).await;

    // Validate: two enabled nodes, no link → warning only.
    let v = c.post(&format!("/configs/{cfg}/mesh/validate"), json!({})).await.ok().clone();
    assert_eq!(v, json!({"valid": true, "messages": ["Current config has no peer links."], "errors": [], "warnings": ["Current config has no peer links."]}));
    c.post("/configs/cfg_nope/mesh/validate", json!({})).await.err(404, "CONFIG_NOT_FOUND");

    // Draft.
    let d = c.get(&format!("/configs/{cfg}/nodes/{n1}/peer-link-draft?peer_node_id={n2}")).await.ok().clone();
    assert_eq!(d["endpoint_ref_family"], "ipv4");
    assert_eq!(d["forward"]["allowed_ips"], "");
    assert_eq!(d["forward"]["persistent_keepalive"], Value::Null);
    assert_eq!(d["forward"]["keepalive_display"], "/");
    assert_eq!(d["reverse"]["allowed_ips"], "10.92.0.2/32");
    assert_eq!(d["reverse"]["persistent_keepalive"], 25);
    assert_eq!(d["reverse"]["endpoint_summary"], "Auto uses 198.51.100.1:51820");
    assert_eq!(d["warnings"].as_array().unwrap().len(), 2);
    assert_eq!(d["local_node"]["id"].as_str(), Some(n1.as_str()));
    let q = |peer: &str, fam: &str| format!("/configs/{cfg}/nodes/{n1}/peer-link-draft?peer_node_id={peer}&endpoint_ref_family={fam}");
    c.get(&q(&n1, "ipv4")).await.err(400, "INVALID_PEER_LINK");
    c.get(&q(&foreign, "ipv4")).await.err(400, "NODE_CONFIG_MISMATCH");
    c.get(&q(&n2, "domain")).await.err(422, "VALIDATION_ERROR");
    c.get(&format!("/configs/{cfg}/nodes/{n1}/peer-link-draft")).await.err(422, "VALIDATION_ERROR");
    c.get(&format!("/configs/{cfg}/nodes/{foreign}/mesh-workspace")).await.err(400, "NODE_CONFIG_MISMATCH");

    // Two groups for the same pair (duplicates are accepted on create, flagged by validation);
    // n1-n3 and n2-n3 both private on one side only; n2-n3 has no public side at all → broken.
    let p = format!("/configs/{cfg}/peer-links");
    let g1 = c.post(&p, pair(&n1, &n3, "10.92.0.4/32", "10.92.0.2/32")).await.ok()[0]["link_group_id"].clone();
    let g2 = c.post(&p, pair(&n3, &n1, "10.92.0.2/32", "10.92.0.4/32")).await.ok()[0]["link_group_id"].clone();
    c.post(&p, pair(&n2, &n3, "10.92.0.4/32", "10.92.0.0/24")).await.ok();
    let v = c.post(&format!("/configs/{cfg}/mesh/validate"), json!({})).await.ok().clone();
    assert_eq!(v["valid"], false);
    assert_eq!(
        v["errors"],
        json!([
            "Duplicate enabled peer links found between n1 and n3. Only one enabled link group is allowed for the same node pair.",
            "Mesh link between n2 and n3 is broken because both sides have no public endpoint."
        ])
    );
    assert_eq!(v["messages"], v["errors"]);

    // Workspace of n1: two connections, both flagged duplicate.
    let ws = c.get(&format!("/configs/{cfg}/nodes/{n1}/mesh-workspace")).await.ok().clone();
    assert_eq!(ws["readonly"], false);
    let conns = ws["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[0]["link_group_id"], g1);
    assert_eq!(conns[1]["link_group_id"], g2);
    assert!(conns.iter().all(|x| x["duplicate_enabled_pair"] == true && x["integrity_status"] == "healthy"));
    assert_eq!(conns[0]["forward"]["local_node_id"].as_str(), Some(n1.as_str()));
    assert_eq!(conns[0]["forward"]["endpoint_summary"], "n3 has no public IPV4 entry; auto mode leaves it empty");
    assert_eq!(conns[0]["reverse"]["endpoint_summary"], "Auto uses 198.51.100.1:51820");
    assert_eq!(conns[0]["peer_node"]["node_type"], "static");
    assert_eq!(ws["validation"]["valid"], false);
    let ws2 = c.get(&format!("/configs/{cfg}/nodes/{n2}/mesh-workspace")).await.ok().clone();
    assert_eq!(ws2["connections"][0]["integrity_status"], "broken");

    // Disabling n1 disables its links; the remaining error is the broken n2-n3 pair, and the
    // draft refuses the disabled node with 400.
    c.put(&format!("/nodes/{n1}"), json!({"name": "n1", "enabled": false})).await.ok();
    c.get(&format!("/configs/{cfg}/nodes/{n1}/peer-link-draft?peer_node_id={n3}")).await.err(400, "NODE_DISABLED");
    let ws = c.get(&format!("/configs/{cfg}/nodes/{n1}/mesh-workspace")).await.ok().clone();
    assert_eq!(ws["readonly"], true);
    let v = c.post(&format!("/configs/{cfg}/mesh/validate"), json!({})).await.ok().clone();
    assert_eq!(v["errors"].as_array().unwrap().len(), 1);
    // A row re-enabled in the database towards the disabled node is reported.
    let t = if b == Backend::Postgres { "TRUE" } else { "1" };
    c.exec(&format!(
        "UPDATE peer_pairs SET enabled = {t} WHERE gid = (SELECT pair_gid FROM peer_links WHERE link_group_id = '{}' AND direction = 'forward')",
        g1.as_str().unwrap()
    ))
    .await;
    let v = c.post(&format!("/configs/{cfg}/mesh/validate"), json!({})).await.ok().clone();
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e.as_str().unwrap()
        == format!("Enabled Mesh link group {} references missing or disabled endpoint: {n1}.", g1.as_str().unwrap())));

    // Overview and list counters reflect the topology.
    let ov = c.get(&format!("/configs/{cfg}/overview")).await.ok().clone();
    assert_eq!(ov["stats"]["total_nodes"], 3);
    assert_eq!(ov["stats"]["disabled_nodes"], 1);
    assert_eq!(ov["stats"]["static_nodes"], 2);
    assert_eq!(ov["stats"]["peer_links"], 3);
    assert_eq!(ov["topology"]["valid"], false);
    assert_eq!(ov["topology"]["error_count"], 2);
    let mut inv = vec![n2.clone(), n3.clone()];
    inv.sort();
    assert_eq!(ov["topology"]["invalid_node_ids"], json!(inv));
    assert_eq!(ov["node_cards"].as_array().unwrap().len(), 2);
    assert_eq!(ov["disabled_node_cards"][0]["id"].as_str(), Some(n1.as_str()));
    assert!(ov["node_cards"].as_array().unwrap().iter().all(|n| n["mesh_error"] == true && n["online"] == false));
    assert_eq!(ov["runtime_snapshot"].as_array().unwrap().len(), 3);
    assert_eq!(ov["runtime_snapshot"][0]["online"], false);
    assert_eq!(ov["sync_status"].as_array().unwrap().len(), 2);
    c.get("/configs/cfg_nope/overview").await.err(404, "CONFIG_NOT_FOUND");
    c.s.stop().await;
}

async fn quick_mesh_modes_and_errors(b: Backend) {
    let c = Ctx::new(b).await;
    let cfg = c.config("qm", json!({})).await;
    let n1 = c.node(&cfg, "N1", Some("10.92.0.2/32"), Some("198.51.100.1")).await;
    let n2 = c.node(&cfg, "N2", Some("10.92.0.3/32"), Some("198.51.100.2")).await;
    let n3 = c.node(&cfg, "N3", Some("10.92.0.4/32"), Some("198.51.100.3")).await;
    let qm = format!("/configs/{cfg}/mesh/quick-generate");
    let links = || async { c.get(&format!("/configs/{cfg}/peer-links")).await.ok().clone() };
    let pairs_of = |rows: &Value, n: &[(&str, &str)]| -> Vec<(String, String, String)> {
        let name = |id: &str| n.iter().find(|(i, _)| *i == id).map(|(_, nm)| nm.to_string()).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| (name(r["local_node_id"].as_str().unwrap()), name(r["peer_node_id"].as_str().unwrap()), r["allowed_ips"].as_str().unwrap().to_string()))
            .collect()
    };
    let names = [(n1.as_str(), "N1"), (n2.as_str(), "N2"), (n3.as_str(), "N3")];
    let t = |a: &str, b: &str, ips: &str| (a.to_string(), b.to_string(), ips.to_string());

    // §7 worked example, hub_spoke on N1.
    let r = c.post(&qm, json!({"mode": "hub_spoke", "hub_node_id": n1})).await.ok().clone();
    assert_eq!(r["generated_groups"], 2);
    assert_eq!(r["deleted_links"], 0);
    assert_eq!(r["message"], "Mesh links regenerated");
    assert_eq!(r["affected_node_ids"], json!([n1, n2, n3]));
    let rows = links().await;
    assert_eq!(pairs_of(&rows, &names)[..2], [t("N1", "N2", "10.92.0.3/32"), t("N2", "N1", "10.92.0.0/24")]);
    assert!(rows.as_array().unwrap().iter().all(|r| r["persistent_keepalive"] == 25 && r["preshared_key"].is_null()
        && r["endpoint_mode"] == "auto" && r["notes"] == "" && r["enabled"] == true));

    // §7 worked example, free_mesh: gateways N1, N2; N3 under N2.
    let r = c.post(&qm, json!({"mode": "free_mesh", "gateway_node_ids": [n1, n2], "leaf_assignments": {n3.clone(): n2}, "use_preshared_key": true})).await.ok().clone();
    assert_eq!((r["generated_groups"].as_i64(), r["deleted_links"].as_i64()), (Some(2), Some(4)));
    let rows = links().await;
    assert_eq!(
        pairs_of(&rows, &names),
        vec![
            t("N1", "N2", "10.92.0.3/32,10.92.0.4/32"),
            t("N2", "N1", "10.92.0.2/32"),
            t("N2", "N3", "10.92.0.4/32"),
            t("N3", "N2", "10.92.0.0/24"),
        ]
    );
    assert_eq!(rows[0]["preshared_key"], rows[1]["preshared_key"]);
    assert_ne!(rows[0]["preshared_key"], rows[2]["preshared_key"]);
    assert_eq!(rows[0]["preshared_key"].as_str().unwrap().len(), 44);

    // full_mesh with ipv4 family.
    let r = c.post(&qm, json!({"mode": "full_mesh"})).await.ok().clone();
    assert_eq!((r["generated_groups"].as_i64(), r["deleted_links"].as_i64()), (Some(3), Some(4)));
    assert_eq!(c.post(&format!("/configs/{cfg}/mesh/validate"), json!({})).await.ok()["messages"], json!(["Topology check passed."]));

    // Errors (nothing changes on any of them).
    let code = |v: Value| {
        let qm = qm.clone();
        let c = &c;
        async move { c.post(&qm, v).await }
    };
    code(json!({"mode": "ring"})).await.err(400, "INVALID_QUICK_MESH_MODE");
    code(json!({"mode": "full_mesh", "endpoint_ref_family": "domain"})).await.err(400, "INVALID_ENDPOINT_FAMILY");
    c.post("/configs/cfg_nope/mesh/quick-generate", json!({"mode": "full_mesh"})).await.err(404, "CONFIG_NOT_FOUND");
    let e = code(json!({"mode": "full_mesh", "endpoint_ref_family": "ipv6"})).await;
    e.err(400, "QUICK_MESH_ENDPOINT_REQUIRED");
    assert_eq!(e.body["error"]["detail"]["nodes"], json!(["N1", "N2", "N3"]));
    assert_eq!(e.body["error"]["detail"]["endpoint_ref_family"], "ipv6");
    code(json!({"mode": "hub_spoke"})).await.err(400, "QUICK_MESH_HUB_REQUIRED");
    let e = code(json!({"mode": "hub_spoke", "hub_node_id": n1, "endpoint_ref_family": "ipv6"})).await;
    e.err(400, "QUICK_MESH_HUB_ENDPOINT_REQUIRED");
    assert_eq!(e.body["error"]["detail"]["nodes"], json!(["N1"]));
    code(json!({"mode": "free_mesh", "gateway_node_ids": []})).await.err(400, "QUICK_MESH_GATEWAY_REQUIRED");
    let e = code(json!({"mode": "free_mesh", "gateway_node_ids": ["node_nope"]})).await;
    e.err(400, "QUICK_MESH_GATEWAY_REQUIRED");
    assert_eq!(e.body["error"]["detail"]["node_ids"], json!(["node_nope"]));
    code(json!({"mode": "free_mesh", "gateway_node_ids": [n1], "leaf_assignments": {"node_nope": n1}})).await.err(400, "QUICK_MESH_LEAF_INVALID");
    code(json!({"mode": "free_mesh", "gateway_node_ids": [n1, n2], "leaf_assignments": {n2.clone(): n1}})).await.err(400, "QUICK_MESH_NODE_ROLE_CONFLICT");
    code(json!({"mode": "free_mesh", "gateway_node_ids": [n1], "leaf_assignments": {n2.clone(): n3}})).await.err(400, "QUICK_MESH_LEAF_GATEWAY_INVALID");
    let e = code(json!({"mode": "free_mesh", "gateway_node_ids": [n1], "leaf_assignments": {n2.clone(): n1}})).await;
    e.err(400, "QUICK_MESH_NODE_UNASSIGNED");
    assert_eq!(e.body["error"]["detail"]["node_ids"], json!([n3]));
    let n4 = c.node(&cfg, "N4", Some("10.92.0.5/32"), None).await;
    let e = code(json!({"mode": "free_mesh", "gateway_node_ids": [n1, n4], "leaf_assignments": {n2.clone(): n1, n3.clone(): n1}})).await;
    e.err(400, "QUICK_MESH_GATEWAY_ENDPOINT_REQUIRED");
    assert_eq!(e.body["error"]["detail"]["nodes"], json!(["N4"]));
    c.exec(&format!("UPDATE nodes SET virtual_ip = NULL WHERE id = '{n4}'")).await;
    let e = code(json!({"mode": "full_mesh"})).await;
    e.err(400, "QUICK_MESH_VIRTUAL_IP_REQUIRED");
    assert_eq!(e.body["error"]["detail"]["nodes"], json!(["N4"]));
    for n in [&n2, &n3] {
        c.put(&format!("/nodes/{n}"), json!({"enabled": false})).await.ok();
    }
    // N4 has no virtual IP, which a node PUT requires: disable it in the database.
    let f = if b == Backend::Postgres { "FALSE" } else { "0" };
    c.exec(&format!("UPDATE nodes SET enabled = {f} WHERE id = '{n4}'")).await;
    code(json!({"mode": "full_mesh"})).await.err(400, "QUICK_MESH_NOT_ENOUGH_NODES");
    c.s.stop().await;
}

/// A failure inside the Quick Mesh transaction (a trigger refusing one of the new rows, after
/// the old rows were deleted and some new ones inserted) leaves the old links intact.
async fn quick_mesh_failure_keeps_old_links(b: Backend) {
    let c = Ctx::new(b).await;
    let cfg = c.config("qm-fail", json!({})).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(c.node(&cfg, &format!("n{i}"), Some(&format!("10.92.0.{}/32", i + 2)), Some(&format!("198.51.100.{}", i + 1))).await);
    }
    c.post(&format!("/configs/{cfg}/mesh/quick-generate"), json!({"mode": "hub_spoke", "hub_node_id": ids[0]})).await.ok();
    let before = c.get(&format!("/configs/{cfg}/peer-links")).await.ok().clone();
    assert_eq!(before.as_array().unwrap().len(), 10);
    // The full mesh inserts n4 -> n5 (allowed 10.92.0.7/32) near its end.
    match b {
        Backend::Sqlite => {
            c.exec("CREATE TRIGGER qm_fail BEFORE INSERT ON peer_pairs WHEN NEW.fwd_allowed_ips = '10.92.0.7/32' AND NEW.a_node_id <> '' \
                    BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
                .await
        }
        Backend::Postgres => {
            c.exec("CREATE FUNCTION qm_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                    IF NEW.fwd_allowed_ips = '10.92.0.7/32' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$")
                .await;
            c.exec("CREATE TRIGGER qm_fail BEFORE INSERT ON peer_pairs FOR EACH ROW EXECUTE FUNCTION qm_fail()").await
        }
    }
    let r = c.post(&format!("/configs/{cfg}/mesh/quick-generate"), json!({"mode": "full_mesh"})).await;
    r.err(500, "INTERNAL_ERROR");
    let after = c.get(&format!("/configs/{cfg}/peer-links")).await.ok().clone();
    assert_eq!(after, before, "old links untouched");
    c.s.stop().await;
}

fn wg_quick_strip(content: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wfm0.conf");
    std::fs::write(&path, content).unwrap();
    std::process::Command::new("wg-quick").arg("strip").arg(&path).output().expect("wg-quick from wireguard-tools")
}

async fn wg_preview_and_desired(b: Backend) {
    let c = Ctx::new(b).await;
    let cfg = c.config("render", json!({"default_dns": "1.1.1.1", "default_mtu": 1380})).await;
    let n1 = c.node(&cfg, "edge-a", Some("10.92.0.2/32"), Some("198.51.100.1")).await;
    let n2 = c.node(&cfg, "edge-b", Some("10.92.0.3/32"), Some("2001:db8::2")).await;
    let n3 = c.node(&cfg, "edge-c", Some("10.92.0.4/32"), Some("198.51.100.3")).await;
    c.put(&format!("/nodes/{n1}"), json!({"post_up": ["iptables -A FORWARD -i %i -j ACCEPT"], "listen_port": 51999})).await.ok();
    let mut p = pair(&n1, &n2, "10.92.0.3/32", "10.92.0.2/32");
    p["preshared_key"] = json!(PSK);
    p["forward"]["endpoint_manual_host"] = json!("2001:db8::2");
    p["forward"]["endpoint_mode"] = json!("manual");
    p["forward"]["endpoint_manual_port"] = json!(51821);
    p["forward"]["endpoint_port_mode"] = json!("manual");
    c.post(&format!("/configs/{cfg}/peer-links"), p).await.ok();
    c.post(&format!("/configs/{cfg}/peer-links"), pair(&n1, &n3, "10.92.0.4/32,10.7.0.0/16", "10.92.0.2/32")).await.ok();

    let pv = c.get(&format!("/configs/{cfg}/nodes/{n1}/wg-preview")).await.ok().clone();
    let content = pv["content"].as_str().unwrap().to_string();
    let node = c.get(&format!("/nodes/{n1}")).await.ok().clone();
    let peer_b = c.get(&format!("/nodes/{n2}")).await.ok().clone();
    let peer_c = c.get(&format!("/nodes/{n3}")).await.ok().clone();
    let expected = format!(
        "[Interface]\nPrivateKey = {}\nAddress = 10.92.0.2/32\nListenPort = 51999\nDNS = 1.1.1.1\nMTU = 1380\n\
PostUp = iptables -A FORWARD -i %i -j ACCEPT\n\
\n# Peer: edge-b\n[Peer]\nPublicKey = {}\nAllowedIPs = 10.92.0.3/32\nPresharedKey = {PSK}\nEndpoint = [2001:db8::2]:51821\nPersistentKeepalive = 25\n\
\n# Peer: edge-c\n[Peer]\nPublicKey = {}\nAllowedIPs = 10.92.0.4/32,10.7.0.0/16\nEndpoint = 198.51.100.3:51820\nPersistentKeepalive = 25\n",
        node["private_key"].as_str().unwrap(),
        peer_b["public_key"].as_str().unwrap(),
        peer_c["public_key"].as_str().unwrap()
    );
    assert_eq!(content, expected);
    assert_eq!(pv["node_name"], "edge-a");
    assert_eq!(pv["sha256"].as_str().unwrap(), wfm::util::sha256_hex(&content));
    let out = wg_quick_strip(&content);
    assert!(out.status.success(), "wg-quick strip: {}", String::from_utf8_lossy(&out.stderr));
    // Every node's file is accepted, including one with no peers beyond the defaults.
    for n in [&n2, &n3] {
        let pv = c.get(&format!("/configs/{cfg}/nodes/{n}/wg-preview")).await.ok().clone();
        let out = wg_quick_strip(pv["content"].as_str().unwrap());
        assert!(out.status.success(), "wg-quick strip: {}", String::from_utf8_lossy(&out.stderr));
    }

    // The refresh worker renders the desired slot of stale nodes: same text, same hash.
    let mut desired = String::new();
    for _ in 0..100 {
        let st: (String, i64) = wfm::on_pool!(&c.s.state.db, |x| sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT desired_sha256, desired_version FROM node_config_state WHERE node_id = '{n1}'"
        )))
        .fetch_one(x)
        .await)
        .unwrap();
        if st.0 == pv["sha256"].as_str().unwrap() {
            desired = st.0;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(desired, pv["sha256"].as_str().unwrap(), "desired config regenerated");
    let stale = c.scalar_i64(&format!("SELECT COUNT(*) FROM node_config_state WHERE config_id = '{cfg}' AND desired_stale = {}", if b == Backend::Postgres { "TRUE" } else { "1" })).await;
    assert_eq!(stale, 0);

    // Disabled node: 409; other config: mismatch; unknown: 404.
    c.put(&format!("/nodes/{n3}"), json!({"enabled": false})).await.ok();
    c.get(&format!("/configs/{cfg}/nodes/{n3}/wg-preview")).await.err(409, "NODE_DISABLED");
    c.get(&format!("/configs/{cfg}/nodes/node_nope/wg-preview")).await.err(404, "NODE_NOT_FOUND");
    // A disabled peer (its links disabled) drops out of the file.
    let pv = c.get(&format!("/configs/{cfg}/nodes/{n1}/wg-preview")).await.ok().clone();
    assert!(!pv["content"].as_str().unwrap().contains("edge-c"));

    // AWG 3.1: the AWG block sits between the hooks and the peers, in the §8 order.
    let awg = c.config("render-awg", json!({"tunnel_protocol": "amneziawg", "awg_version": "3.1"})).await;
    let a1 = c.node(&awg, "a1", Some("10.93.0.2/32"), Some("198.51.100.9")).await;
    let pv = c.get(&format!("/configs/{awg}/nodes/{a1}/wg-preview")).await.ok().clone();
    let keys: Vec<&str> = pv["content"].as_str().unwrap().lines().map(|l| l.split(" = ").next().unwrap()).collect();
    let pos = |k: &str| keys.iter().position(|x| *x == k).unwrap_or_else(|| panic!("{k} missing in {keys:?}"));
    assert!(pos("ListenPort") < pos("Jc") && pos("Jc") < pos("S1") && pos("S4") < pos("H1") && pos("H4") < pos("HeaderProtectionKey"));
    assert!(pos("HeaderProtectionKey") < pos("DisableCookies"));
    c.s.stop().await;
}

/// Writes publish their SSE hints after commit: a pair create yields the config list, the
/// overview of the config and the mesh workspaces of both ends.
async fn writes_publish_sse(b: Backend) {
    let c = Ctx::new(b).await;
    let cfg = c.config("sse", json!({})).await;
    let n1 = c.node(&cfg, "n1", Some("10.92.0.2/32"), Some("198.51.100.1")).await;
    let n2 = c.node(&cfg, "n2", Some("10.92.0.3/32"), Some("198.51.100.2")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = c.s.client.get(c.s.url("/api/v1/events/stream")).bearer_auth(&c.token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    c.post(&format!("/configs/{cfg}/peer-links"), pair(&n1, &n2, "10.92.0.3/32", "10.92.0.2/32")).await.ok();
    let mut seen: Vec<Value> = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(2), stream.next()).await else { continue };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find("\n\n") {
            let frame: String = buf.drain(..i + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                seen.push(serde_json::from_str(data).unwrap());
            }
        }
        let has = |t: &str, node: Option<&str>| {
            seen.iter().any(|e| e["type"] == t && node.is_none_or(|n| e["payload"]["node_id"] == n))
        };
        if has("config.overview.updated", None) && has("mesh.workspace.updated", Some(&n1)) && has("mesh.workspace.updated", Some(&n2)) {
            break;
        }
    }
    let ov = seen.iter().find(|e| e["type"] == "config.overview.updated").expect("overview event");
    assert_eq!(ov["payload"]["config_id"].as_str(), Some(cfg.as_str()));
    assert_eq!(ov["payload"]["overview"]["stats"]["peer_links"], 1);
    assert!(seen.iter().any(|e| e["type"] == "config.list.updated"));
    let ws = seen.iter().find(|e| e["type"] == "mesh.workspace.updated" && e["payload"]["node_id"] == n1.as_str()).expect("workspace");
    assert_eq!(ws["payload"]["workspace"]["connections"].as_array().unwrap().len(), 1);
    c.s.stop().await;
}

both_backends!(
    pairs_crud_and_errors,
    draft_workspace_validate,
    quick_mesh_modes_and_errors,
    quick_mesh_failure_keeps_old_links,
    wg_preview_and_desired,
    writes_publish_sse
);
