//! EMQX management REST client (spec 03 §9.4): HTTP Basic with the server's broker identity,
//! 10 s timeout, ids URL-encoded.

use std::time::Duration;

use serde_json::{Value, json};

use super::{BrokerError, BrokerResult, encode_segment};

/// Path of the built-in database password users.
pub const USERS_PATH: &str = "/api/v5/authentication/password_based:built_in_database/users";
/// Page size of the user listing.
pub const PAGE_LIMIT: usize = 100;

/// A client for one EMQX.
#[derive(Clone)]
pub struct EmqxClient {
    http: reqwest::Client,
    base: String,
    username: String,
    password: String,
}

impl std::fmt::Debug for EmqxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmqxClient").field("base", &self.base).field("username", &self.username).finish()
    }
}

impl EmqxClient {
    /// A client for `base` (e.g. `http://emqx:18083`), authenticating as `username`/`password`.
    pub fn new(base: &str, username: &str, password: &str) -> BrokerResult<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BrokerError::unreachable(format!("EMQX HTTP client: {e}")))?;
        Ok(EmqxClient {
            http,
            base: base.trim().trim_end_matches('/').to_string(),
            username: username.to_string(),
            password: password.to_string(),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> BrokerResult<(u16, String)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path))
            .basic_auth(&self.username, Some(&self.password));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| BrokerError::unreachable(format!("EMQX {method} {path}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, text))
    }

    fn fail(what: &str, status: u16, body: String) -> BrokerError {
        BrokerError { message: format!("EMQX {what} failed: HTTP {status}"), status: Some(status), body }
    }

    /// Create user; on 409 update it.
    pub async fn upsert_user(&self, user_id: &str, password: &str, is_superuser: bool) -> BrokerResult<()> {
        let body = json!({"user_id": user_id, "password": password, "is_superuser": is_superuser});
        let (status, text) = self.call(reqwest::Method::POST, USERS_PATH, Some(body)).await?;
        if status == 409 {
            return self.update_user(user_id, password, is_superuser).await;
        }
        if status < 400 { Ok(()) } else { Err(Self::fail("create user", status, text)) }
    }

    /// Update user.
    pub async fn update_user(&self, user_id: &str, password: &str, is_superuser: bool) -> BrokerResult<()> {
        let path = format!("{USERS_PATH}/{}", encode_segment(user_id));
        let body = json!({"password": password, "is_superuser": is_superuser});
        let (status, text) = self.call(reqwest::Method::PUT, &path, Some(body)).await?;
        if status < 400 { Ok(()) } else { Err(Self::fail("update user", status, text)) }
    }

    /// The server's own superuser.
    pub async fn upsert_server_user(&self) -> BrokerResult<()> {
        let (u, p) = (self.username.clone(), self.password.clone());
        self.upsert_user(&u, &p, true).await
    }

    /// Delete user: 200, 204 and 404 are success.
    pub async fn delete_user(&self, user_id: &str) -> BrokerResult<()> {
        let path = format!("{USERS_PATH}/{}", encode_segment(user_id));
        let (status, text) = self.call(reqwest::Method::DELETE, &path, None).await?;
        if matches!(status, 200 | 204 | 404) { Ok(()) } else { Err(Self::fail("delete user", status, text)) }
    }

    /// Kick a session: 200, 204 and 404 are success.
    pub async fn kick(&self, client_id: &str) -> BrokerResult<()> {
        let path = format!("/api/v5/clients/{}", encode_segment(client_id));
        let (status, text) = self.call(reqwest::Method::DELETE, &path, None).await?;
        if matches!(status, 200 | 204 | 404) { Ok(()) } else { Err(Self::fail("kick client", status, text)) }
    }

    /// Every user id, page by page (`limit=100`) until a page with fewer rows.
    pub async fn list_users(&self) -> BrokerResult<Vec<String>> {
        let mut out = Vec::new();
        // Bounded: a broker answering full pages forever must not hang reconcile.
        for page in 1..=10_000usize {
            let path = format!("{USERS_PATH}?page={page}&limit={PAGE_LIMIT}");
            let (status, text) = self.call(reqwest::Method::GET, &path, None).await?;
            if status >= 400 {
                return Err(Self::fail("list users", status, text));
            }
            let v: Value = serde_json::from_str(&text).map_err(|e| BrokerError {
                message: format!("EMQX list users: bad JSON: {e}"),
                status: Some(status),
                body: text.clone(),
            })?;
            let rows = v.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
            let n = rows.len();
            out.extend(rows.iter().filter_map(|r| r.get("user_id").and_then(Value::as_str)).map(str::to_string));
            if n < PAGE_LIMIT {
                break;
            }
        }
        Ok(out)
    }
}
