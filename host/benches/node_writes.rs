//! Node-write benchmark with printed figures (plain binary, `harness = false`):
//! `cargo bench -p wfm --bench node_writes`.
//!
//! Starts the real server in-process on `127.0.0.1:0` (SQLite in a temp dir; PostgreSQL too when
//! `WFM_BENCH_PG_URL` names an admin URL, on which a fresh database is created and dropped) and
//! drives it over HTTP like a client would:
//!
//! - sequential `POST /api/v1/configs/{id}/nodes` in one config, the rate of nodes 1–50 and of
//!   nodes 1001–1050 (plus every 100 nodes in between, to show the curve);
//! - how long the refresh worker then needs to settle (no stale desired configs left);
//! - `GET /api/v1/configs/{id}/overview`, `GET /api/v1/configs` and a node's `wg-preview` with
//!   1050 nodes (median and p99).
//!
//! `WFM_BENCH_NODES` changes the node count of the second window (default 1000 existing).

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::oneshot;
use wfm::service::projections::{self, MeshProjections};
use wfm::service::refresh::Projections;

const PASSWORD: &str = "bench horse battery 1";
const WINDOW: usize = 50;
const READS: usize = 50;
const ISOLATED: usize = 20;

struct Server {
    base: String,
    client: reqwest::Client,
    token: String,
    app: wfm::AppState,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(db_url: &str, dir: &std::path::Path) -> Server {
        let pairs = vec![
            ("WFM_DATA_DIR".to_string(), dir.join("data").display().to_string()),
            ("WFM_WEB_DIR".to_string(), dir.join("web").display().to_string()),
            ("WFM_TIMEZONE".to_string(), "UTC".to_string()),
            ("WFM_DATABASE".to_string(), db_url.to_string()),
            ("WFM_ENABLE_MQTT_SERVICES".to_string(), "false".to_string()),
        ];
        let settings = wfm::Settings::from_source(&wfm::config::Env::from_pairs(pairs)).expect("settings");
        let app = wfm::build_state(settings).await.expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(wfm::serve_state(app.clone(), listener, async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("client");
        let mut s = Server { base: format!("http://{addr}"), client, token: String::new(), app, stop: Some(tx), task };
        let r = s.call(reqwest::Method::POST, "/api/v1/auth/setup", Some(json!({"password": PASSWORD}))).await;
        s.token = r["access_token"].as_str().expect("access_token").to_string();
        s
    }

    /// One request; panics unless it answers 200 with a success envelope. Returns `data`.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "{path}: {status} {text}");
        let v: Value = serde_json::from_str(&text).expect("json");
        v["data"].clone()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        self.app.db.close().await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sequential creates of nodes `from..=to` (1-based names); returns nodes/s and each call's time.
async fn create_window(s: &Server, cfg: &str, from: usize, to: usize) -> (f64, Vec<Duration>) {
    let path = format!("/api/v1/configs/{cfg}/nodes");
    let mut times = Vec::with_capacity(to + 1 - from);
    let t0 = Instant::now();
    for i in from..=to {
        let t = Instant::now();
        s.call(reqwest::Method::POST, &path, Some(json!({"name": format!("n{i}"), "node_type": "static"}))).await;
        times.push(t.elapsed());
    }
    let rate = (to + 1 - from) as f64 / t0.elapsed().as_secs_f64();
    times.sort();
    (rate, times)
}

/// Creates nodes `from..=to` one at a time, each after the refresh worker went quiet: the cost
/// of the write alone. Returns each call's time, sorted.
async fn isolated_creates(s: &Server, w: &Watcher, cfg: &str, from: usize, to: usize) -> Vec<Duration> {
    let path = format!("/api/v1/configs/{cfg}/nodes");
    let mut times = Vec::new();
    for i in from..=to {
        w.settle(s, cfg, Instant::now(), Duration::from_millis(300)).await;
        tracing::info!(target: "bench", "isolated create n{i} begin");
        let t = Instant::now();
        s.call(reqwest::Method::POST, &path, Some(json!({"name": format!("n{i}"), "node_type": "static"}))).await;
        times.push(t.elapsed());
        tracing::info!(target: "bench", "isolated create n{i} end");
    }
    times.sort();
    times
}

/// An SSE subscriber in the process (like an open browser tab): drains the bus, remembering
/// when the last event came.
struct Watcher {
    last: Arc<Mutex<Instant>>,
    count: Arc<AtomicU64>,
}

impl Watcher {
    fn start(app: &wfm::AppState) -> Watcher {
        let mut rx = app.events.subscribe();
        let last = Arc::new(Mutex::new(Instant::now()));
        let count = Arc::new(AtomicU64::new(0));
        let (l, c) = (last.clone(), count.clone());
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                c.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut g) = l.lock() {
                    *g = Instant::now();
                }
            }
        });
        Watcher { last, count }
    }

    fn last(&self) -> Instant {
        self.last.lock().map(|g| *g).unwrap_or_else(|_| Instant::now())
    }

    /// Waits (bounded) until no node of the config has a stale desired config and no event came
    /// for `quiet`: the refresh worker has caught up. Returns the time from `since` to the last
    /// event (or to now when it never went quiet).
    async fn settle(&self, s: &Server, cfg: &str, since: Instant, quiet: Duration) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            let stale = wfm::store::links::stale_node_ids(&s.app.db, cfg).await.expect("stale ids");
            if stale.is_empty() && self.last().elapsed() >= quiet {
                return self.last().saturating_duration_since(since);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        since.elapsed()
    }
}

/// A GET whose body is read but not parsed (the client's JSON parsing is not the server's cost).
async fn get_raw(s: &Server, path: &str) -> usize {
    let resp = s.client.get(format!("{}{path}", s.base)).bearer_auth(&s.token).send().await.expect("request");
    let status = resp.status();
    let body = resp.bytes().await.expect("body");
    assert!(status.is_success(), "{path}: {status}");
    body.len()
}

async fn reads(s: &Server, path: &str) -> (Duration, Duration) {
    // One warm-up call.
    get_raw(s, path).await;
    let mut v = Vec::with_capacity(READS);
    for _ in 0..READS {
        let t = Instant::now();
        get_raw(s, path).await;
        v.push(t.elapsed());
    }
    v.sort();
    (pct(&v, 0.5), pct(&v, 0.99))
}

struct Row {
    label: String,
    value: String,
}

async fn run(label: &str, db_url: &str, dir: &std::path::Path, big: usize) -> Vec<Row> {
    println!("== {label}");
    let s = Server::start(db_url, dir).await;
    let cfg = s
        .call(reqwest::Method::POST, "/api/v1/configs", Some(json!({"name": "bench", "virtual_subnet": "10.80.0.0/16"})))
        .await;
    let cfg = cfg["id"].as_str().expect("config id").to_string();
    let mut rows = Vec::new();
    let watcher = Watcher::start(&s.app);

    let (r1, t1) = create_window(&s, &cfg, 1, WINDOW).await;
    println!("  nodes 1-{WINDOW}: {r1:.0}/s (median {:.2} ms, p99 {:.2} ms)", ms(pct(&t1, 0.5)), ms(pct(&t1, 0.99)));
    rows.push(Row {
        label: format!("create nodes 1-{WINDOW} (0-{} existing)", WINDOW - 1),
        value: format!("{r1:.0}/s (median {:.2} ms, p99 {:.2} ms)", ms(pct(&t1, 0.5)), ms(pct(&t1, 0.99))),
    });

    let iso = isolated_creates(&s, &watcher, &cfg, WINDOW + 1, WINDOW + ISOLATED).await;
    println!("  isolated creates at {WINDOW} existing: median {:.2} ms, p99 {:.2} ms", ms(pct(&iso, 0.5)), ms(pct(&iso, 0.99)));
    rows.push(Row {
        label: format!("create alone, worker idle ({WINDOW}-{} existing)", WINDOW + ISOLATED - 1),
        value: format!("median {:.2} ms, p99 {:.2} ms", ms(pct(&iso, 0.5)), ms(pct(&iso, 0.99))),
    });
    let mut next = WINDOW + ISOLATED + 1;

    // Fill up to `big` nodes, printing the rate of every 100.
    let t_fill = Instant::now();
    while next <= big {
        let to = ((next / 100 + 1) * 100).min(big);
        let (r, _) = create_window(&s, &cfg, next, to).await;
        println!("  nodes {next}-{to}: {r:.0}/s");
        next = to + 1;
    }
    let filled = big.saturating_sub(WINDOW + ISOLATED);
    println!("  fill of {filled} nodes: {:.1} s", t_fill.elapsed().as_secs_f64());

    let (r2, t2) = create_window(&s, &cfg, big + 1, big + WINDOW).await;
    println!("  nodes {}-{}: {r2:.0}/s (median {:.2} ms, p99 {:.2} ms)", big + 1, big + WINDOW, ms(pct(&t2, 0.5)), ms(pct(&t2, 0.99)));
    rows.push(Row {
        label: format!("create nodes {}-{} ({big}-{} existing)", big + 1, big + WINDOW, big + WINDOW - 1),
        value: format!("{r2:.0}/s (median {:.2} ms, p99 {:.2} ms)", ms(pct(&t2, 0.5)), ms(pct(&t2, 0.99))),
    });
    let last_write = Instant::now();
    let settled = watcher.settle(&s, &cfg, last_write, Duration::from_secs(1)).await;
    println!("  refresh worker: last event {:.0} ms after the last write; {} events in all", ms(settled), watcher.count.load(Ordering::Relaxed));
    rows.push(Row { label: "refresh worker: last SSE event after the last write".into(), value: format!("{:.0} ms", ms(settled)) });

    let iso = isolated_creates(&s, &watcher, &cfg, big + WINDOW + 1, big + WINDOW + ISOLATED).await;
    println!("  isolated creates at {} existing: median {:.2} ms, p99 {:.2} ms", big + WINDOW, ms(pct(&iso, 0.5)), ms(pct(&iso, 0.99)));
    rows.push(Row {
        label: format!("create alone, worker idle ({}-{} existing)", big + WINDOW, big + WINDOW + ISOLATED - 1),
        value: format!("median {:.2} ms, p99 {:.2} ms", ms(pct(&iso, 0.5)), ms(pct(&iso, 0.99))),
    });
    w_settle_after_isolated(&watcher, &s, &cfg).await;

    let n = big + WINDOW + ISOLATED;
    let nodes = s.call(reqwest::Method::GET, &format!("/api/v1/configs/{cfg}/nodes"), None).await;
    let node_id = nodes[0]["id"].as_str().expect("node id").to_string();
    assert_eq!(nodes.as_array().map(Vec::len), Some(n));
    for (what, path) in [
        (format!("GET /configs/{{id}}/overview ({n} nodes)"), format!("/api/v1/configs/{cfg}/overview")),
        ("GET /configs".to_string(), "/api/v1/configs".to_string()),
        (format!("GET /configs/{{id}}/nodes ({n} nodes)"), format!("/api/v1/configs/{cfg}/nodes")),
        ("GET wg-preview (one node, no links)".to_string(), format!("/api/v1/configs/{cfg}/nodes/{node_id}/wg-preview")),
    ] {
        let (p50, p99) = reads(&s, &path).await;
        println!("  {what}: median {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99));
        rows.push(Row { label: what, value: format!("median {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99)) });
    }

    // What the refresh worker spends per write, call by call (service level, no HTTP): a node
    // create's plan runs the config list and overview once per (coalesced) plan and the three
    // node projections once per created node.
    let app = &s.app;
    let p = MeshProjections;
    let wb: [(&str, Duration); 9] = [
        ("store: virtual_ips (create's read of the others)", time(|| async { wfm::store::nodes::virtual_ips(&app.db, &cfg).await.map(|_| ()).expect("vips") }).await),
        ("service: tags::list", time(|| async { wfm::service::tags::list(app, &cfg).await.map(|_| ()).expect("tags") }).await),
        ("store: list_for_config", time(|| async { wfm::store::nodes::list_for_config(&app.db, &cfg).await.map(|_| ()).expect("list") }).await),
        ("projection: config_list", time(|| async { p.config_list(app).await.map(|_| ()).expect("config_list") }).await),
        ("projection: overview", time(|| async { p.overview(app, &cfg).await.map(|_| ()).expect("overview") }).await),
        ("projection: node_workspace", time(|| async { p.node_workspace(app, &cfg, &node_id).await.map(|_| ()).expect("node_workspace") }).await),
        ("projection: node_apply", time(|| async { p.node_apply(app, &cfg, &node_id).await.map(|_| ()).expect("node_apply") }).await),
        ("projection: mesh_workspace", time(|| async { p.mesh_workspace(app, &cfg, &node_id).await.map(|_| ()).expect("mesh_workspace") }).await),
        ("service: overview (no HTTP)", time(|| async { projections::overview(app, &cfg).await.map(|_| ()).expect("overview") }).await),
    ];
    for (what, d) in wb {
        println!("  {what} ({n} nodes): median {:.2} ms", ms(d));
        rows.push(Row { label: format!("{what} ({n} nodes)"), value: format!("median {:.2} ms", ms(d)) });
    }
    let ov = s.call(reqwest::Method::GET, &format!("/api/v1/configs/{cfg}/overview"), None).await;
    let sections: Vec<String> = ov
        .as_object()
        .map(|o| o.iter().map(|(k, v)| format!("{k} {} KB", v.to_string().len() / 1024)).collect())
        .unwrap_or_default();
    println!("  overview body: {} KB ({})", ov.to_string().len() / 1024, sections.join(", "));
    s.stop().await;
    rows
}

async fn w_settle_after_isolated(w: &Watcher, s: &Server, cfg: &str) {
    w.settle(s, cfg, Instant::now(), Duration::from_secs(1)).await;
}

/// Median of 15 sequential runs.
async fn time<F, Fut>(f: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut v = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed());
    }
    v.sort();
    v[v.len() / 2]
}

async fn pg_database(admin: &str) -> (String, String) {
    let name = format!("wfm_bench_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(admin).await.expect("connect to WFM_BENCH_PG_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.expect("create database");
    pool.close().await;
    let mut u = url::Url::parse(admin).expect("WFM_BENCH_PG_URL");
    u.set_path(&format!("/{name}"));
    (u.to_string(), name)
}

async fn drop_pg(admin: &str, name: &str) {
    if let Ok(pool) = sqlx::PgPool::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&pool).await;
        pool.close().await;
    }
}

fn table(title: &str, rows: &[Row]) {
    let w = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
    println!("\n{title}");
    println!("| {:w$} | figure |", "measure");
    println!("|{}|{}|", "-".repeat(w + 2), "-".repeat(50));
    for r in rows {
        println!("| {:w$} | {} |", r.label, r.value);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `WFM_BENCH_LOG=sqlx::query=debug,bench=info` shows each statement with its time, and
    // marks the isolated creates, on stderr.
    if let Ok(filter) = std::env::var("WFM_BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_writer(std::io::stderr).init();
    }
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let big: usize =
        std::env::var("WFM_BENCH_NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000).max(WINDOW + ISOLATED + 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:///{}", dir.path().join("bench.db").display());
    let sqlite = run("SQLite", &url, &dir.path().join("sqlite"), big).await;
    let pg = match std::env::var("WFM_BENCH_PG_URL") {
        Ok(admin) => {
            let (url, name) = pg_database(&admin).await;
            let rows = run("PostgreSQL", &url, &dir.path().join("pg"), big).await;
            drop_pg(&admin, &name).await;
            Some(rows)
        }
        Err(_) => {
            println!("\nPostgreSQL skipped: set WFM_BENCH_PG_URL to an admin URL (a fresh database is created on it)");
            None
        }
    };
    table("SQLite", &sqlite);
    if let Some(pg) = pg {
        table("PostgreSQL", &pg);
    }
}
