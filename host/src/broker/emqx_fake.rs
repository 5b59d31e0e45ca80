//! A **fake** EMQX for tests: an axum app implementing exactly the management endpoints of
//! spec 03 §9.4 (and nothing else), keeping users and sessions in memory and recording every
//! call. EMQX itself cannot run on the development machines, so this stands in for it.
//!
//! Behaviour copied from the EMQX 5 API contract as the server relies on it: Basic auth
//! (401 otherwise), `POST users` answers 409 for an existing id, `PUT`/`DELETE` answer 404 for
//! an unknown id, the listing is paged with `page`/`limit` and returns `data[].user_id`,
//! `DELETE /clients/{id}` answers 404 when no such session exists. [`EmqxFake::set_down`]
//! makes every endpoint answer 503, as an unavailable broker would.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::emqx::USERS_PATH;

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// HTTP method.
    pub method: String,
    /// Path and query as received.
    pub path: String,
    /// JSON body, `Null` when none.
    pub body: Value,
    /// Status answered.
    pub status: u16,
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// Password in clear (a fake).
    pub password: String,
    /// Superuser flag.
    pub is_superuser: bool,
}

#[derive(Default)]
struct Inner {
    users: BTreeMap<String, FakeUser>,
    sessions: BTreeSet<String>,
    calls: Vec<Call>,
    down: bool,
}

/// Handle to a running fake.
#[derive(Clone)]
pub struct EmqxFake {
    inner: Arc<Mutex<Inner>>,
    auth: Arc<(String, String)>,
    /// Where it listens (`127.0.0.1:<port>`).
    pub addr: SocketAddr,
}

type Shared = (Arc<Mutex<Inner>>, Arc<(String, String)>);

impl EmqxFake {
    /// Starts on `127.0.0.1:0`, accepting Basic `username:password`.
    pub async fn start(username: &str, password: &str) -> std::io::Result<EmqxFake> {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let auth = Arc::new((username.to_string(), password.to_string()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = router((inner.clone(), auth.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(EmqxFake { inner, auth, addr })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Forgets recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Current users.
    pub fn users(&self) -> BTreeMap<String, FakeUser> {
        self.lock().users.clone()
    }

    /// Adds a user directly (simulates state left from before).
    pub fn insert_user(&self, id: &str, password: &str, is_superuser: bool) {
        self.lock().users.insert(id.into(), FakeUser { password: password.into(), is_superuser });
    }

    /// Marks a client id as connected (so a kick finds it).
    pub fn connect_session(&self, client_id: &str) {
        self.lock().sessions.insert(client_id.into());
    }

    /// Connected client ids.
    pub fn sessions(&self) -> BTreeSet<String> {
        self.lock().sessions.clone()
    }

    /// While down, every endpoint answers 503.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// The Basic credentials it accepts.
    pub fn credentials(&self) -> (String, String) {
        (self.auth.0.clone(), self.auth.1.clone())
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route(USERS_PATH, get(list_users).post(create_user))
        .route(&format!("{USERS_PATH}/{{id}}"), axum::routing::put(update_user).delete(delete_user))
        .route("/api/v5/clients/{id}", delete(kick))
        .with_state(shared)
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Common prologue: auth and availability. Returns the early answer, if any.
fn gate(s: &Shared, headers: &HeaderMap) -> Option<(StatusCode, Value)> {
    if lock(&s.0).down {
        return Some((StatusCode::SERVICE_UNAVAILABLE, json!({"code": "SERVICE_UNAVAILABLE", "message": "fake is down"})));
    }
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", s.1.0, s.1.1));
    let ok = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|v| v.trim() == expected);
    if ok { None } else { Some((StatusCode::UNAUTHORIZED, json!({"code": "BAD_API_KEY_OR_SECRET", "message": "auth failed"}))) }
}

fn record(s: &Shared, method: &Method, uri: &Uri, body: &Value, status: StatusCode, out: Value) -> Response {
    lock(&s.0).calls.push(Call {
        method: method.to_string(),
        path: uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        body: body.clone(),
        status: status.as_u16(),
    });
    if status == StatusCode::NO_CONTENT { status.into_response() } else { (status, axum::Json(out)).into_response() }
}

fn parse_body(bytes: &Bytes) -> Value {
    if bytes.is_empty() { Value::Null } else { serde_json::from_slice(bytes).unwrap_or(Value::Null) }
}

#[derive(Deserialize)]
struct Page {
    page: Option<usize>,
    limit: Option<usize>,
}

async fn list_users(State(s): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, Query(q): Query<Page>) -> Response {
    if let Some((st, v)) = gate(&s, &headers) {
        return record(&s, &method, &uri, &Value::Null, st, v);
    }
    let page = q.page.unwrap_or(1).max(1);
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let out = {
        let g = lock(&s.0);
        let count = g.users.len();
        let data: Vec<Value> = g
            .users
            .iter()
            .skip((page - 1) * limit)
            .take(limit)
            .map(|(id, u)| json!({"user_id": id, "is_superuser": u.is_superuser}))
            .collect();
        json!({"data": data, "meta": {"page": page, "limit": limit, "count": count}})
    };
    record(&s, &method, &uri, &Value::Null, StatusCode::OK, out)
}

async fn create_user(State(s): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let b = parse_body(&body);
    if let Some((st, v)) = gate(&s, &headers) {
        return record(&s, &method, &uri, &b, st, v);
    }
    let (Some(id), Some(pw)) = (b.get("user_id").and_then(Value::as_str), b.get("password").and_then(Value::as_str)) else {
        return record(&s, &method, &uri, &b, StatusCode::BAD_REQUEST, json!({"code": "BAD_REQUEST", "message": "user_id and password required"}));
    };
    let su = b.get("is_superuser").and_then(Value::as_bool).unwrap_or(false);
    let (st, v) = {
        let mut g = lock(&s.0);
        if g.users.contains_key(id) {
            (StatusCode::CONFLICT, json!({"code": "ALREADY_EXISTS", "message": "User already exists"}))
        } else {
            g.users.insert(id.to_string(), FakeUser { password: pw.to_string(), is_superuser: su });
            (StatusCode::CREATED, json!({"user_id": id, "is_superuser": su}))
        }
    };
    record(&s, &method, &uri, &b, st, v)
}

async fn update_user(State(s): State<Shared>, Path(id): Path<String>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let b = parse_body(&body);
    if let Some((st, v)) = gate(&s, &headers) {
        return record(&s, &method, &uri, &b, st, v);
    }
    let (st, v) = {
        let mut g = lock(&s.0);
        match g.users.get_mut(&id) {
            None => (StatusCode::NOT_FOUND, json!({"code": "NOT_FOUND", "message": "User not found"})),
            Some(u) => {
                if let Some(pw) = b.get("password").and_then(Value::as_str) {
                    u.password = pw.to_string();
                }
                if let Some(su) = b.get("is_superuser").and_then(Value::as_bool) {
                    u.is_superuser = su;
                }
                (StatusCode::OK, json!({"user_id": id, "is_superuser": u.is_superuser}))
            }
        }
    };
    record(&s, &method, &uri, &b, st, v)
}

async fn delete_user(State(s): State<Shared>, Path(id): Path<String>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if let Some((st, v)) = gate(&s, &headers) {
        return record(&s, &method, &uri, &Value::Null, st, v);
    }
    let st = if lock(&s.0).users.remove(&id).is_some() { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND };
    record(&s, &method, &uri, &Value::Null, st, json!({"code": "NOT_FOUND", "message": "User not found"}))
}

async fn kick(State(s): State<Shared>, Path(id): Path<String>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if let Some((st, v)) = gate(&s, &headers) {
        return record(&s, &method, &uri, &Value::Null, st, v);
    }
    let st = if lock(&s.0).sessions.remove(&id) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND };
    record(&s, &method, &uri, &Value::Null, st, json!({"code": "CLIENTID_NOT_FOUND", "message": "Client ID not found"}))
}
