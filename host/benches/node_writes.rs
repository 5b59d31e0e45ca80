//! Node-write benchmark with printed figures (plain binary, `harness = false`):
//! `cargo bench -p wfm --bench node_writes`.
//!
//! Starts the real server in-process on `127.0.0.1:0` (SQLite in a temp dir; PostgreSQL too when
//! `WFM_BENCH_PG_URL` names an admin URL, on which a fresh database is created and dropped) and
//! drives it over HTTP like a client would:
//!
//! - sequential `POST /api/v1/configs/{id}/nodes` in one config, windows of 50 nodes at ~0 and
//!   at ~1000 existing nodes, each with an SSE subscriber (an open console tab) and without one
//!   (plus every 100 nodes in between, to show the curve). Each window reports the request
//!   rate and the rate counted until the refresh worker has drained (regenerated and emitted
//!   everything those writes queued), so background cost is not hidden behind early answers;
//! - `GET /api/v1/configs/{id}/overview`, `GET /api/v1/configs` and a node's `wg-preview` with
//!   1050 nodes (median and p99).
//!
//! `WFM_BENCH_NODES` changes the node count of the second window (default 1000 existing).

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// One window of sequential creates.
struct Window {
    /// Nodes/s counted until the last answer.
    rate: f64,
    /// Nodes/s counted until the refresh worker was idle again.
    drained_rate: f64,
    /// Time from the last answer until the worker was idle.
    drain: Duration,
    /// Each call's time, sorted.
    times: Vec<Duration>,
}

impl Window {
    fn describe(&self) -> String {
        format!(
            "{:.0}/s answered, {:.0}/s incl. refresh drain of {:.0} ms (median {:.2} ms, p99 {:.2} ms)",
            self.rate,
            self.drained_rate,
            ms(self.drain),
            ms(pct(&self.times, 0.5)),
            ms(pct(&self.times, 0.99))
        )
    }
}

/// Waits until the refresh worker has nothing queued or running.
async fn drained(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !s.app.refresher.idle() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Sequential creates of nodes `from..=to` (1-based names), starting with an idle worker.
async fn create_window(s: &Server, cfg: &str, from: usize, to: usize) -> Window {
    drained(s).await;
    let path = format!("/api/v1/configs/{cfg}/nodes");
    let mut times = Vec::with_capacity(to + 1 - from);
    let t0 = Instant::now();
    for i in from..=to {
        let t = Instant::now();
        s.call(reqwest::Method::POST, &path, Some(json!({"name": format!("n{i}"), "node_type": "static"}))).await;
        times.push(t.elapsed());
    }
    let answered = t0.elapsed();
    drained(s).await;
    let total = t0.elapsed();
    let n = (to + 1 - from) as f64;
    times.sort();
    Window { rate: n / answered.as_secs_f64(), drained_rate: n / total.as_secs_f64(), drain: total - answered, times }
}

/// Creates nodes `from..=to` one at a time, each after the refresh worker went quiet: the cost
/// of the write alone. Returns each call's time, sorted.
async fn isolated_creates(s: &Server, cfg: &str, from: usize, to: usize) -> Vec<Duration> {
    let path = format!("/api/v1/configs/{cfg}/nodes");
    let mut times = Vec::new();
    for i in from..=to {
        drained(s).await;
        tracing::info!(target: "bench", "isolated create n{i} begin");
        let t = Instant::now();
        s.call(reqwest::Method::POST, &path, Some(json!({"name": format!("n{i}"), "node_type": "static"}))).await;
        times.push(t.elapsed());
        tracing::info!(target: "bench", "isolated create n{i} end");
    }
    times.sort();
    times
}

/// [`isolated_creates`] after `at` existing nodes, printed and added to the summary.
async fn isolated_row(s: &Server, cfg: &str, at: usize, rows: &mut Vec<Row>) {
    let iso = isolated_creates(s, cfg, at + 1, at + ISOLATED).await;
    let value = format!("median {:.2} ms, p99 {:.2} ms", ms(pct(&iso, 0.5)), ms(pct(&iso, 0.99)));
    println!("  isolated creates at {at} existing: {value}");
    rows.push(Row { label: format!("create alone, worker idle, subscriber ({at}-{} existing)", at + ISOLATED - 1), value });
}

/// An SSE subscriber in the process (like an open browser tab): drains the bus and counts.
struct Watcher {
    count: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Watcher {
    fn new() -> Watcher {
        Watcher { count: Arc::new(AtomicU64::new(0)), task: None }
    }

    fn start(&mut self, app: &wfm::AppState) {
        let mut rx = app.events.subscribe();
        let c = self.count.clone();
        self.task = Some(tokio::spawn(async move {
            while rx.recv().await.is_some() {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    /// Unsubscribes (the receiver is dropped with the task).
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
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
    let mut watcher = Watcher::new();

    // Two windows at `at` existing nodes: with an SSE subscriber, then without.
    async fn windows(s: &Server, w: &mut Watcher, cfg: &str, at: usize, rows: &mut Vec<Row>) {
        for subscribed in [true, false] {
            let from = if subscribed { at + 1 } else { at + WINDOW + 1 };
            let to = from + WINDOW - 1;
            if subscribed {
                w.start(&s.app);
            }
            let win = create_window(s, cfg, from, to).await;
            w.stop().await;
            let who = if subscribed { "SSE subscriber" } else { "no subscriber" };
            println!("  nodes {from}-{to}, {who}: {}", win.describe());
            rows.push(Row { label: format!("create nodes {from}-{to} ({}-{} existing), {who}", from - 1, to - 1), value: win.describe() });
        }
    }

    windows(&s, &mut watcher, &cfg, 0, &mut rows).await;
    let at = 2 * WINDOW;
    watcher.start(&s.app);
    isolated_row(&s, &cfg, at, &mut rows).await;
    let mut next = at + ISOLATED + 1;

    // Fill up to `big` nodes with a subscriber, printing the rate of every 100.
    let t_fill = Instant::now();
    while next <= big {
        let to = ((next / 100 + 1) * 100).min(big);
        let w = create_window(&s, &cfg, next, to).await;
        println!("  nodes {next}-{to}: {:.0}/s answered, {:.0}/s incl. drain", w.rate, w.drained_rate);
        next = to + 1;
    }
    watcher.stop().await;
    let filled = big.saturating_sub(at + ISOLATED);
    println!("  fill of {filled} nodes (subscriber, drained): {:.1} s", t_fill.elapsed().as_secs_f64());

    windows(&s, &mut watcher, &cfg, big, &mut rows).await;
    let at = big + 2 * WINDOW;
    watcher.start(&s.app);
    isolated_row(&s, &cfg, at, &mut rows).await;
    drained(&s).await;
    watcher.stop().await;
    println!("  {} SSE events received in all", watcher.count.load(Ordering::Relaxed));

    let n = big + 2 * WINDOW + ISOLATED;
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

    // What the refresh worker spends, call by call (service level, no HTTP). A plan run reads
    // each config once ("cold": the first payload of a run) and then builds each listed node's
    // payloads from that ("warm").
    let app = &s.app;
    let p = MeshProjections;
    let other = nodes[1]["id"].as_str().expect("node id").to_string();
    let wb: [(&str, Duration); 13] = [
        ("store: virtual_ips (create's read of the others)", time(|| async { wfm::store::nodes::virtual_ips(&app.db, &cfg).await.map(|_| ()).expect("vips") }).await),
        ("service: tags::list", time(|| async { wfm::service::tags::list(app, &cfg).await.map(|_| ()).expect("tags") }).await),
        ("store: list_for_config", time(|| async { wfm::store::nodes::list_for_config(&app.db, &cfg).await.map(|_| ()).expect("list") }).await),
        ("store: overview_rows (runtime, client, sync joined)", time(|| async { wfm::store::status::overview_rows(&app.db, &cfg).await.map(|_| ()).expect("rows") }).await),
        ("store: counters", time(|| async { wfm::store::configs::counters(&app.db, &cfg).await.map(|_| ()).expect("counters") }).await),
        ("service: regenerate + auto-sync, nothing stale", time(|| async { p.regenerate(app, &cfg).await.expect("regenerate") }).await),
        ("projection: config_list", time(|| async { p.begin(app).config_list().await.map(|_| ()).expect("config_list") }).await),
        ("projection: overview (cold)", time(|| async { p.begin(app).overview(&cfg).await.map(|_| ()).expect("overview") }).await),
        ("projection: node_workspace (cold)", time(|| async { p.begin(app).node_workspace(&cfg, &node_id).await.map(|_| ()).expect("node_workspace") }).await),
        ("projection: node_workspace (warm)", warm(app, &p, &cfg, &node_id, &other, Kind::Workspace).await),
        ("projection: node_apply (warm)", warm(app, &p, &cfg, &node_id, &other, Kind::Apply).await),
        ("projection: mesh_workspace (warm)", warm(app, &p, &cfg, &node_id, &other, Kind::Mesh).await),
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

#[derive(Clone, Copy)]
enum Kind {
    Workspace,
    Apply,
    Mesh,
}

/// Median time of one node payload in a plan run that has already read the config.
async fn warm(app: &wfm::AppState, p: &MeshProjections, cfg: &str, first: &str, node: &str, kind: Kind) -> Duration {
    let mut v = Vec::new();
    for _ in 0..15 {
        let mut b = p.begin(app);
        b.node_workspace(cfg, first).await.expect("warm-up");
        let t = Instant::now();
        let r = match kind {
            Kind::Workspace => b.node_workspace(cfg, node).await,
            Kind::Apply => b.node_apply(cfg, node).await,
            Kind::Mesh => b.mesh_workspace(cfg, node).await,
        };
        v.push(t.elapsed());
        r.expect("payload");
    }
    v.sort();
    v[v.len() / 2]
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
