//! Mesh benchmarks with printed figures (plain binary, `harness = false`):
//! `cargo bench -p wfm --bench mesh` (SQLite in a temp dir; set `WFM_BENCH_PG_URL` to a
//! database URL to also run the PostgreSQL pass).
//!
//! - Quick Mesh `full_mesh` for 100, 500 and 1000 nodes (≈ 10k, 250k, 1M link rows), the
//!   service call including planning, delete, batched insert and commit;
//! - desired-config regeneration of every node afterwards (what the refresh worker does);
//! - `wg-preview` of a node with 999 peers (service call: one join + render), and the pure
//!   render alone;
//! - the overview projection of a 1000-node config with 1M link rows, and the mesh workspace
//!   of one of its nodes.
//!
//! Shorter runs: `WFM_BENCH_MESH_SIZES=1000` (node counts), `WFM_BENCH_MESH_SKIP=sqlite,regen,overview`.

use std::time::{Duration, Instant};

use serde_json::json;
use wfm::service::{mesh, projections, render};
use wfm::store::configs::ConfigRow;
use wfm::store::nodes::{self as node_store, NodeRow};
use wfm::{AppState, util};
use wfm_domain::awg::random::OsRng;
use wfm_domain::keys;

async fn state(db_url: &str, dir: &std::path::Path) -> AppState {
    let pairs = vec![
        ("WFM_DATA_DIR".to_string(), dir.join("data").display().to_string()),
        ("WFM_TIMEZONE".to_string(), "UTC".to_string()),
        ("WFM_DATABASE".to_string(), db_url.to_string()),
        ("WFM_ENABLE_MQTT_SERVICES".to_string(), "false".to_string()),
    ];
    let settings = wfm::Settings::from_source(&wfm::config::Env::from_pairs(pairs)).expect("settings");
    wfm::build_state(settings).await.expect("state")
}

/// A config with `n` public nodes, written through the store (node creation is not measured).
async fn seed(app: &AppState, name: &str, n: usize) -> (String, Vec<String>) {
    let now = util::now_iso();
    let cfg = ConfigRow {
        id: util::new_id("cfg"),
        name: name.to_string(),
        enabled: true,
        virtual_subnet: "10.0.0.0/8".into(),
        default_listen_port: 51820,
        auto_sync: true,
        tunnel_protocol: "wireguard".into(),
        awg_options_json: "{}".into(),
        created_at: now.clone(),
        updated_at: now.clone(),
        ..Default::default()
    };
    let mut tx = app.db.begin().await.expect("begin");
    wfm::store::configs::insert(&mut tx, &cfg).await.expect("config");
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let kp = keys::generate_key_pair(&mut OsRng).expect("keys");
        let t = util::iso(util::now() + chrono::Duration::microseconds(i as i64));
        let row = NodeRow {
            id: util::new_id("node"),
            config_id: cfg.id.clone(),
            name: format!("node-{i}"),
            ipv4_address: Some(format!("198.51.{}.{}", i / 250, i % 250 + 1)),
            virtual_ip: Some(format!("10.{}.{}.{}/32", (i + 1) / 65536, ((i + 1) / 256) % 256, (i + 1) % 256)),
            auto_sync: true,
            enabled: true,
            node_type: "static".into(),
            public_key: kp.public_key,
            private_key: kp.private_key,
            tags_json: "[]".into(),
            pre_up_json: "[]".into(),
            post_up_json: "[]".into(),
            pre_down_json: "[]".into(),
            post_down_json: "[]".into(),
            awg_options_json: "{}".into(),
            created_at: t.clone(),
            updated_at: t,
            ..Default::default()
        };
        node_store::insert(&mut tx, &row).await.expect("node");
        node_store::insert_config_state(&mut tx, &row.id, &cfg.id).await.expect("state");
        node_store::insert_runtime(&mut tx, &row.id, &cfg.id, &now).await.expect("runtime");
        ids.push(row.id);
    }
    tx.commit().await.expect("commit");
    (cfg.id, ids)
}

/// Node counts to run, `WFM_BENCH_MESH_SIZES=100,500,1000` by default; the preview and
/// overview figures need 1000 as the last size.
fn sizes() -> Vec<usize> {
    std::env::var("WFM_BENCH_MESH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 500, 1000])
}

/// Parts to leave out, e.g. `WFM_BENCH_MESH_SKIP=sqlite,regen,overview` (shorter runs while
/// working on one figure).
fn skip(part: &str) -> bool {
    std::env::var("WFM_BENCH_MESH_SKIP").is_ok_and(|s| s.split(',').any(|p| p.trim() == part))
}

/// Waits until the refresh worker has drained its queue (it renders every node a Quick Mesh
/// touched), so figures are not taken while it shares the two cores and the SQLite writer.
async fn settle(app: &AppState) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !app.refresher.idle() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn run(label: &str, db_url: &str, dir: &std::path::Path) {
    println!("== {label}");
    let app = state(db_url, dir).await;
    let mut big = None;
    for n in sizes() {
        let (cfg, ids) = seed(&app, &format!("bench-{n}"), n).await;
        let body: wfm_domain::quick_mesh::Request = serde_json::from_value(json!({"mode": "full_mesh"})).expect("body");
        let t = Instant::now();
        let r = mesh::quick_generate(&app, &cfg, body.clone()).await.expect("quick mesh");
        let first = t.elapsed();
        // The refresh worker re-renders every node after the first run: let it finish first.
        settle(&app).await;
        // Again, now also deleting the rows of the first run.
        let t = Instant::now();
        mesh::quick_generate(&app, &cfg, body).await.expect("quick mesh");
        let second = t.elapsed();
        println!(
            "quick-mesh full_mesh {n:>4} nodes ({} groups, {} rows): {} (empty config), {} (replacing {} rows)",
            r["generated_groups"],
            n * (n - 1),
            ms(first),
            ms(second),
            n * (n - 1)
        );
        // Desired configs: the refresh worker renders every stale node; measured here directly.
        let t = Instant::now();
        if !skip("regen") {
            let rendered = render::regenerate(&app, &cfg).await.expect("regenerate");
            if rendered > 0 {
                println!("  desired-config regeneration of {rendered} nodes: {}", ms(t.elapsed()));
            }
        }
        big = Some((n, cfg, ids));
    }
    let Some((1000, cfg, ids)) = big else {
        app.db.close().await;
        return;
    };
    // Let the refresh worker finish its own regeneration so it does not share the CPU below.
    settle(&app).await;

    let mut samples = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let p = render::preview(&app, &cfg, &ids[0]).await.expect("preview");
        samples.push(t.elapsed());
        assert_eq!(p.content.matches("[Peer]").count(), 999);
    }
    println!("wg-preview, node with 999 peers (service: query + render + sha256): median {}", ms(median(samples)));

    let config = wfm::store::configs::get(&app.db, &cfg).await.expect("cfg").expect("cfg");
    let node = node_store::get(&app.db, &ids[0]).await.expect("node").expect("node");
    let rows = wfm::store::links::render_rows(&app.db, &ids[0]).await.expect("rows");
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let text = render::render_node(&config, &node, &rows, &Default::default());
        samples.push(t.elapsed());
        std::hint::black_box(text);
    }
    println!("  render alone (999 peers): median {:.3} ms", median(samples).as_secs_f64() * 1000.0);
    let mut samples = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let rows = wfm::store::links::render_rows(&app.db, &ids[0]).await.expect("rows");
        samples.push(t.elapsed());
        assert_eq!(rows.len(), 999);
    }
    println!("  render-rows query alone (999 rows): median {:.3} ms", median(samples).as_secs_f64() * 1000.0);

    if skip("overview") {
        app.db.close().await;
        return;
    }
    let mut samples = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let ov = projections::overview(&app, &cfg).await.expect("overview");
        samples.push(t.elapsed());
        assert_eq!(ov["stats"]["peer_links"], 499_500);
    }
    println!("overview, 1000 nodes / 999000 link rows: median {}", ms(median(samples)));
    let mut samples = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let ws = mesh::workspace(&app, &cfg, &ids[0]).await.expect("workspace");
        samples.push(t.elapsed());
        assert_eq!(ws["connections"].as_array().map(Vec::len), Some(999));
    }
    println!("mesh workspace of a node with 999 peers (same config): median {}", ms(median(samples)));
    app.db.close().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:///{}", dir.path().join("bench.db").display());
    if !skip("sqlite") {
        run("SQLite", &url, dir.path()).await;
    }
    if let Ok(pg) = std::env::var("WFM_BENCH_PG_URL") {
        run("PostgreSQL", &pg, dir.path()).await;
    }
}
