//! End-to-end test harness: starts the real WFM server in-process on `127.0.0.1:0` against a
//! fresh SQLite file or a fresh, uniquely named PostgreSQL database, and drives it over HTTP.
//!
//! PostgreSQL tests need `WFM_TEST_PG_URL` (an admin URL of a running server, e.g.
//! `postgres://postgres@127.0.0.1:54329/postgres`); `scripts/test.sh` starts a throwaway
//! cluster and sets it. A PostgreSQL test without it fails rather than silently skipping.
//!
//! Use [`both_backends!`] to run one async test function against both backends.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;

pub use wfm;

/// Database backend of a test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A fresh database on `WFM_TEST_PG_URL`'s server.
    Postgres,
}

/// The admin password tests set up.
pub const ADMIN_PASSWORD: &str = "correct horse 1";

/// Runs each named `async fn name(backend: Backend)` as two tests, `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($f:ident),* $(,)?) => {
        $(
            mod $f {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$f($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$f($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The server's state (for white-box assertions on stored data).
    pub state: wfm::AppState,
    /// Backend in use.
    pub backend: Backend,
    /// Data dir (temp).
    pub data_dir: std::path::PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pg: Option<(String, String)>,
    _tmp: tempfile::TempDir,
}

/// A response: status and parsed JSON (or `Value::String` of the body when not JSON).
#[derive(Debug)]
pub struct Resp {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON.
    pub body: Value,
}

impl Resp {
    /// `body.data`.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    /// `body.error.code` (or `""`).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    /// Asserts a 200 success envelope and returns `data`.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "unexpected status, body: {}", self.body);
        assert_eq!(self.body["success"], true, "{}", self.body);
        &self.body["data"]
    }
    /// Asserts an error envelope with this status and code.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status, body: {}", self.body);
        assert_eq!(self.body["success"], false, "{}", self.body);
        assert_eq!(self.code(), code, "{}", self.body);
        assert!(self.body["error"]["detail"].is_object(), "detail must be an object: {}", self.body);
        &self.body["error"]
    }
}

fn pg_admin_url() -> String {
    std::env::var("WFM_TEST_PG_URL").unwrap_or_else(|_| {
        panic!("WFM_TEST_PG_URL is not set: run the tests through scripts/test.sh, which starts a throwaway PostgreSQL")
    })
}

fn with_db(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).unwrap_or_else(|e| panic!("bad WFM_TEST_PG_URL {url}: {e}"));
    u.set_path(&format!("/{db}"));
    u.to_string()
}

impl TestServer {
    /// Starts a server with default test settings.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, &[]).await
    }

    /// Starts a server; `env` overrides `WFM_*` settings.
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut pairs: Vec<(String, String)> = vec![
            ("WFM_DATA_DIR".into(), data_dir.display().to_string()),
            ("WFM_TIMEZONE".into(), "UTC".into()),
            ("WFM_WEB_DIR".into(), tmp.path().join("web").display().to_string()),
        ];
        let mut pg = None;
        match backend {
            Backend::Sqlite => {
                pairs.push(("WFM_DATABASE".into(), format!("sqlite:///{}", data_dir.join("wfm.db").display())));
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let name = format!("wfm_test_{}", uuid::Uuid::new_v4().simple());
                let pool = sqlx::PgPool::connect(&admin).await.expect("connect to WFM_TEST_PG_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                pairs.push(("WFM_DATABASE".into(), with_db(&admin, &name)));
                pg = Some((admin, name));
            }
        }
        for (k, v) in env {
            pairs.retain(|(pk, _)| !pk.eq_ignore_ascii_case(k));
            pairs.push((k.to_string(), v.to_string()));
        }
        let settings = wfm::Settings::from_source(&wfm::config::Env::from_pairs(pairs)).expect("test settings");
        let state = wfm::build_state(settings).await.expect("server state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(wfm::serve_state(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        TestServer {
            base: format!("http://{addr}"),
            client,
            state,
            backend,
            data_dir,
            shutdown: Some(tx),
            task: Some(task),
            pg,
            _tmp: tmp,
        }
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::read(req.send().await.expect("request")).await
    }

    /// Reads a response into [`Resp`].
    pub async fn read(r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp { status, headers, body }
    }

    /// GET.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(reqwest::Method::GET, path, token, None).await
    }
    /// POST with JSON.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(reqwest::Method::POST, path, token, Some(&body)).await
    }
    /// PUT with JSON.
    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(reqwest::Method::PUT, path, token, Some(&body)).await
    }
    /// DELETE.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(reqwest::Method::DELETE, path, token, None).await
    }

    /// Runs setup with [`ADMIN_PASSWORD`] and returns the session token.
    pub async fn setup_admin(&self) -> String {
        let r = self.post("/api/v1/auth/setup", None, serde_json::json!({"password": ADMIN_PASSWORD, "locale": "en-US"})).await;
        r.ok()["access_token"].as_str().expect("access_token").to_string()
    }

    /// Stops the server and drops the PostgreSQL database.
    pub async fn stop(mut self) {
        self.shutdown_now().await;
    }

    async fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some((admin, name)) = self.pg.take() {
            drop_pg(admin, name).await;
        }
    }
}

async fn drop_pg(admin: String, name: String) {
    if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&pool).await;
        pool.close().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((admin, name)) = self.pg.take() {
            // Drop cannot await; use a short-lived runtime on another thread.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(drop_pg(admin, name));
                }
            })
            .join();
        }
    }
}
