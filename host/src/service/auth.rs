//! Single-admin authentication (spec 01 §3, §8, §9).
//!
//! - Passwords: new hashes are Argon2id (PHC string); upstream `pbkdf2_sha256$iter$salt$hex`
//!   hashes still verify, so existing databases keep working. Hashing runs off the async
//!   runtime.
//! - Tokens: HS256 JWTs; the signing secret lives in `system_settings` and rotates on password
//!   change, which kills every earlier session and download token.
//! - Failed logins are throttled per client address (429 `AUTH_RATE_LIMITED` + `Retry-After`);
//!   until the limit is hit a wrong password is still `AUTH_FAILED` 401.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;
use crate::store::settings as kv;
use crate::util;

/// Settings keys owned by auth.
pub mod keys {
    /// Current hash.
    pub const PASSWORD_HASH: &str = "auth_admin_password_hash";
    /// Legacy hash key, read as fallback.
    pub const LEGACY_PASSWORD_HASH: &str = "auth_password_hash";
    /// JWT signing secret.
    pub const TOKEN_SECRET: &str = "auth_token_secret";
    /// ISO time of the last password change.
    pub const PASSWORD_UPDATED_AT: &str = "auth_password_updated_at";
    /// UI locale.
    pub const UI_LOCALE: &str = "ui_locale";
    /// UI theme.
    pub const UI_THEME_MODE: &str = "ui_theme_mode";
}

/// Fixed admin identity.
pub const ADMIN_USERNAME: &str = "admin";
/// Display name.
pub const ADMIN_DISPLAY_NAME: &str = "Admin";

// ---------------------------------------------------------------------------------------------
// Password hashing

/// Hashes with Argon2id (default parameters: m=19 MiB, t=2, p=1), on a blocking thread.
pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(AppError::internal)
    })
    .await
    .map_err(AppError::internal)?
}

/// Whether a stored value is a usable hash (otherwise setup is required).
pub fn is_valid_hash(stored: &str) -> bool {
    parse_pbkdf2(stored).is_some() || argon2::password_hash::phc::PasswordHash::new(stored).is_ok()
}

struct Pbkdf2Hash<'a> {
    iterations: u32,
    salt: &'a str,
    digest: Vec<u8>,
}

fn parse_pbkdf2(stored: &str) -> Option<Pbkdf2Hash<'_>> {
    let mut parts = stored.split('$');
    let (algo, iter, salt, digest) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || algo != "pbkdf2_sha256" || salt.is_empty() {
        return None;
    }
    let iterations: u32 = iter.parse().ok().filter(|n| *n > 0)?;
    let digest = hex::decode(digest).ok().filter(|d| !d.is_empty())?;
    Some(Pbkdf2Hash { iterations, salt, digest })
}

/// Verifies a password against a stored hash, constant-time, on a blocking thread.
pub async fn verify_password(password: String, stored: String) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || verify_password_blocking(&password, &stored))
        .await
        .map_err(AppError::internal)
}

fn verify_password_blocking(password: &str, stored: &str) -> bool {
    if let Some(h) = parse_pbkdf2(stored) {
        // Upstream: the ASCII bytes of the hex salt are the PBKDF2 salt.
        let mut out = vec![0u8; h.digest.len()];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), h.salt.as_bytes(), h.iterations, &mut out);
        return util::ct_eq(&out, &h.digest);
    }
    match argon2::password_hash::phc::PasswordHash::new(stored) {
        Ok(parsed) => argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Cached auth material

#[derive(Clone)]
struct Material {
    hash: Option<String>,
    secret: Option<String>,
    loaded: Instant,
}

/// In-memory copy of the password hash and token secret. Local writes invalidate it at once;
/// a short TTL bounds staleness when several instances share one PostgreSQL database.
#[derive(Default)]
pub struct AuthCache {
    inner: std::sync::RwLock<Option<Material>>,
}

const AUTH_CACHE_TTL: Duration = Duration::from_secs(2);

impl AuthCache {
    /// Forgets the cached material.
    pub fn invalidate(&self) {
        if let Ok(mut g) = self.inner.write() {
            *g = None;
        }
    }
}

async fn material(app: &AppState) -> AppResult<Material> {
    if let Ok(g) = app.auth.inner.read()
        && let Some(m) = g.as_ref()
        && m.loaded.elapsed() < AUTH_CACHE_TTL
    {
        return Ok(m.clone());
    }
    let rows = kv::get_many(&app.db, &[keys::PASSWORD_HASH, keys::LEGACY_PASSWORD_HASH, keys::TOKEN_SECRET]).await?;
    let get = |k: &str| rows.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let hash = get(keys::PASSWORD_HASH)
        .filter(|h| is_valid_hash(h))
        .or_else(|| get(keys::LEGACY_PASSWORD_HASH).filter(|h| is_valid_hash(h)));
    let mut secret = get(keys::TOKEN_SECRET).filter(|s| !s.is_empty());
    if hash.is_some() && secret.is_none() {
        // Lazily created when missing (spec 01 §8).
        let s = util::random_token::<48>();
        let mut tx = app.db.begin().await?;
        match kv::get_tx(&mut tx, keys::TOKEN_SECRET).await? {
            Some(existing) if !existing.is_empty() => secret = Some(existing),
            _ => {
                kv::set(&mut tx, keys::TOKEN_SECRET, &s).await?;
                secret = Some(s);
            }
        }
        tx.commit().await?;
    }
    let m = Material { hash, secret, loaded: Instant::now() };
    if let Ok(mut g) = app.auth.inner.write() {
        *g = Some(m.clone());
    }
    Ok(m)
}

/// Whether setup is still required.
pub async fn setup_required(app: &AppState) -> AppResult<bool> {
    Ok(material(app).await?.hash.is_none())
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// JWT claims of session and download tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Always `admin`.
    pub sub: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expiry (seconds).
    pub exp: i64,
    /// Random id.
    pub jti: String,
    /// `session` or `download`.
    pub kind: String,
    /// Granted permissions.
    pub permissions: Value,
    /// Download tokens: the resource they are bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
}

/// Token kinds.
pub mod kinds {
    /// Admin session.
    pub const SESSION: &str = "session";
    /// Download token.
    pub const DOWNLOAD: &str = "download";
}

fn sign(secret: &str, claims: &Claims) -> AppResult<String> {
    let key = EncodingKey::from_secret(secret.as_bytes()).map_err(AppError::internal)?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).map_err(AppError::internal)
}

/// Decodes and checks signature and expiry (spec 01 §8 order): bad format/signature/claims →
/// `INVALID_TOKEN`; `now >= exp` → `TOKEN_EXPIRED`.
fn verify(secret: &str, token: &str) -> AppResult<Claims> {
    let invalid = || AppError::new(ErrorCode::InvalidToken, "Invalid token");
    if token.split('.').count() != 3 {
        return Err(invalid());
    }
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.leeway = 0;
    v.required_spec_claims = Default::default();
    let key = DecodingKey::from_secret(secret.as_bytes()).map_err(|_| invalid())?;
    let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|_| invalid())?;
    if chrono::Utc::now().timestamp() >= data.claims.exp {
        return Err(AppError::new(ErrorCode::TokenExpired, "Token expired"));
    }
    Ok(data.claims)
}

fn issue(secret: &str, kind: &str, minutes: i64, permissions: Value, resource: Option<Value>) -> AppResult<(String, Claims)> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: ADMIN_USERNAME.into(),
        iat: now,
        exp: now + minutes * 60,
        jti: util::random_token::<16>(),
        kind: kind.into(),
        permissions,
        resource,
    };
    Ok((sign(secret, &claims)?, claims))
}

fn exp_iso(exp: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(exp, 0).map(util::iso)
}

/// Extracts the token of an `Authorization` header value: scheme `Bearer` matched
/// case-insensitively, token trimmed; anything else = no token.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let t = rest.trim();
    (!t.is_empty()).then_some(t)
}

/// Who is calling, decided once at the edge of the service layer.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The admin with a session token.
    Admin {
        /// Session expiry.
        expires_at: i64,
    },
}

/// Checks a session token for an `S` route: setup pending → 428 first, then token presence
/// and validity.
pub async fn require_admin(app: &AppState, token: Option<&str>) -> AppResult<Principal> {
    let m = material(app).await?;
    if m.hash.is_none() {
        return Err(AppError::new(ErrorCode::AuthSetupRequired, "Admin password setup is required"));
    }
    let token = token.ok_or_else(|| AppError::new(ErrorCode::AuthRequired, "Authentication required"))?;
    let secret = m.secret.as_deref().ok_or_else(|| AppError::new(ErrorCode::InvalidToken, "Invalid token"))?;
    let claims = verify(secret, token)?;
    let is_session = claims.kind == kinds::SESSION
        && claims.sub == ADMIN_USERNAME
        && claims.permissions.as_array().is_some_and(|p| p.iter().any(|x| x == "*"));
    if !is_session {
        return Err(AppError::new(ErrorCode::InvalidToken, "Invalid token"));
    }
    Ok(Principal::Admin { expires_at: claims.exp })
}

/// Issues a download token bound to `resource` with `permissions` (spec 01 §9).
pub async fn issue_download_token(app: &AppState, permission: &str, resource: Value) -> AppResult<(String, String)> {
    let m = material(app).await?;
    let secret = m.secret.ok_or_else(|| AppError::new(ErrorCode::AuthSetupRequired, "Admin password setup is required"))?;
    let (token, claims) = issue(
        &secret,
        kinds::DOWNLOAD,
        app.settings.auth_download_token_expire_minutes,
        serde_json::json!([permission]),
        Some(resource),
    )?;
    Ok((token, exp_iso(claims.exp).unwrap_or_default()))
}

/// Verifies a download token for `permission` and returns its resource object. Error codes per
/// spec 01 §9: wrong kind / permission absent / non-object resource → `INVALID_DOWNLOAD_TOKEN`;
/// empty or non-list permissions → `INVALID_TOKEN`. The caller compares the resource.
pub async fn verify_download_token(app: &AppState, token: &str, permission: &str) -> AppResult<serde_json::Map<String, Value>> {
    let m = material(app).await?;
    let secret = m.secret.ok_or_else(|| AppError::new(ErrorCode::InvalidToken, "Invalid token"))?;
    let claims = verify(&secret, token)?;
    let bad = || AppError::new(ErrorCode::InvalidDownloadToken, "Invalid download token");
    let perms = claims
        .permissions
        .as_array()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AppError::new(ErrorCode::InvalidToken, "Invalid token"))?;
    if claims.kind != kinds::DOWNLOAD || claims.sub != ADMIN_USERNAME || !perms.iter().any(|p| p == permission) {
        return Err(bad());
    }
    match claims.resource {
        Some(Value::Object(o)) => Ok(o),
        _ => Err(bad()),
    }
}

/// Permission of file download tokens (spec 01 §9).
pub const FILE_DOWNLOAD_PERMISSION: &str = "file.download";

/// Issues a file download token bound to `{kind, resource_id}`; a blank kind or id is
/// `INVALID_DOWNLOAD_RESOURCE`.
pub async fn issue_file_token(app: &AppState, kind: &str, resource_id: &str) -> AppResult<(String, String)> {
    if kind.trim().is_empty() || resource_id.trim().is_empty() {
        return Err(AppError::new(ErrorCode::InvalidDownloadResource, "Download resource is invalid"));
    }
    issue_download_token(app, FILE_DOWNLOAD_PERMISSION, serde_json::json!({"kind": kind, "resource_id": resource_id})).await
}

/// The `S/FT` check of file endpoints (spec 01 §9): a valid session bearer allows (the query
/// token is then ignored); otherwise the `download_token` must be a file token for exactly
/// this `{kind, resource_id}`.
pub async fn require_file_access(app: &AppState, bearer: Option<&str>, query_token: Option<&str>, kind: &str, resource_id: &str) -> AppResult<()> {
    if bearer.is_some() && require_admin(app, bearer).await.is_ok() {
        return Ok(());
    }
    let Some(token) = query_token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(AppError::new(ErrorCode::DownloadTokenRequired, "A download token is required"));
    };
    let resource = verify_download_token(app, token, FILE_DOWNLOAD_PERMISSION).await?;
    let same = resource.get("kind").and_then(Value::as_str) == Some(kind)
        && resource.get("resource_id").and_then(Value::as_str) == Some(resource_id);
    if !same {
        return Err(AppError::new(ErrorCode::DownloadTokenScopeMismatch, "Download token is bound to another resource"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Views

/// `AuthState` of spec 01 §3.
#[derive(Debug, Clone, Serialize)]
pub struct AuthStateView {
    /// No valid hash stored.
    pub setup_required: bool,
    /// A valid session token was presented.
    pub authenticated: bool,
    /// `admin` or `""`.
    pub username: String,
    /// `Admin` or `""`.
    pub display_name: String,
    /// Expiry of the presented token.
    pub expires_at: Option<String>,
}

/// `TokenSession`: AuthState + token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenSession {
    /// State.
    #[serde(flatten)]
    pub state: AuthStateView,
    /// The new session token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
}

/// `GET /auth/state` and `/auth/session`: never fails on a bad token.
pub async fn state(app: &AppState, token: Option<&str>) -> AppResult<AuthStateView> {
    let setup_required = setup_required(app).await?;
    let principal = if setup_required { None } else { require_admin(app, token).await.ok() };
    Ok(match principal {
        Some(Principal::Admin { expires_at }) => AuthStateView {
            setup_required: false,
            authenticated: true,
            username: ADMIN_USERNAME.into(),
            display_name: ADMIN_DISPLAY_NAME.into(),
            expires_at: exp_iso(expires_at),
        },
        None => AuthStateView {
            setup_required,
            authenticated: false,
            username: String::new(),
            display_name: String::new(),
            expires_at: None,
        },
    })
}

fn session_for(secret: &str, minutes: i64) -> AppResult<TokenSession> {
    let (token, claims) = issue(secret, kinds::SESSION, minutes, serde_json::json!(["*"]), None)?;
    Ok(TokenSession {
        state: AuthStateView {
            setup_required: false,
            authenticated: true,
            username: ADMIN_USERNAME.into(),
            display_name: ADMIN_DISPLAY_NAME.into(),
            expires_at: exp_iso(claims.exp),
        },
        access_token: token,
        token_type: "bearer",
    })
}

/// Setup input (already schema-checked).
pub struct SetupInput {
    /// Password, not trimmed.
    pub password: String,
    /// `zh-CN` or `en-US`.
    pub locale: String,
}

/// First-time setup: stores the hash, a new token secret and the locale; auto-login.
pub async fn setup(app: &AppState, input: SetupInput) -> AppResult<TokenSession> {
    if !setup_required(app).await? {
        return Err(already_initialized());
    }
    let hash = hash_password(input.password).await?;
    let secret = util::random_token::<48>();
    let mut tx = app.db.begin().await?;
    // Re-check inside the write transaction: two concurrent setups must not both win.
    for k in [keys::PASSWORD_HASH, keys::LEGACY_PASSWORD_HASH] {
        if kv::get_tx(&mut tx, k).await?.is_some_and(|h| is_valid_hash(&h)) {
            return Err(already_initialized());
        }
    }
    kv::set(&mut tx, keys::PASSWORD_HASH, &hash).await?;
    kv::set(&mut tx, keys::TOKEN_SECRET, &secret).await?;
    kv::set(&mut tx, keys::PASSWORD_UPDATED_AT, &util::now_iso()).await?;
    kv::set(&mut tx, keys::UI_LOCALE, &input.locale).await?;
    tx.commit().await?;
    app.auth.invalidate();
    session_for(&secret, app.settings.auth_token_expire_minutes)
}

fn already_initialized() -> AppError {
    AppError::new(ErrorCode::AuthAlreadyInitialized, "Admin password has already been set up")
}

fn auth_failed() -> AppError {
    AppError::new(ErrorCode::AuthFailed, "Invalid username or password")
}

/// Login with throttling per client address.
pub async fn login(app: &AppState, client: IpAddr, username: &str, password: String) -> AppResult<TokenSession> {
    let m = material(app).await?;
    let Some(hash) = m.hash else {
        return Err(AppError::new(ErrorCode::AuthSetupRequired, "Admin password setup is required"));
    };
    app.login_throttle.check(client)?;
    let ok = username.trim() == ADMIN_USERNAME && verify_password(password, hash).await?;
    if !ok {
        app.login_throttle.record_failure(client);
        return Err(auth_failed());
    }
    app.login_throttle.record_success(client);
    let secret = m.secret.ok_or_else(|| AppError::internal("token secret missing after load"))?;
    session_for(&secret, app.settings.auth_token_expire_minutes)
}

/// Password change: verifies the current password, stores the new hash and rotates the
/// secret (every earlier token dies); returns a fresh session.
pub async fn change_password(app: &AppState, client: IpAddr, current: String, new: String) -> AppResult<TokenSession> {
    let m = material(app).await?;
    let Some(hash) = m.hash else {
        return Err(AppError::new(ErrorCode::AuthSetupRequired, "Admin password setup is required"));
    };
    app.login_throttle.check(client)?;
    if !verify_password(current.clone(), hash).await? {
        app.login_throttle.record_failure(client);
        return Err(AppError::new(ErrorCode::AuthFailed, "Current password is incorrect"));
    }
    app.login_throttle.record_success(client);
    if current == new {
        return Err(AppError::new(ErrorCode::PasswordUnchanged, "New password must be different from the current password"));
    }
    let new_hash = hash_password(new).await?;
    let secret = util::random_token::<48>();
    let mut tx = app.db.begin().await?;
    kv::set(&mut tx, keys::PASSWORD_HASH, &new_hash).await?;
    kv::delete(&mut tx, &[keys::LEGACY_PASSWORD_HASH]).await?;
    kv::set(&mut tx, keys::TOKEN_SECRET, &secret).await?;
    kv::set(&mut tx, keys::PASSWORD_UPDATED_AT, &util::now_iso()).await?;
    tx.commit().await?;
    app.auth.invalidate();
    session_for(&secret, app.settings.auth_token_expire_minutes)
}

/// Checks the admin password for a business operation (snapshot creation): wrong →
/// `AUTH_FAILED` 401 (spec 01 §8, open point O-4).
pub async fn check_admin_password(app: &AppState, password: String) -> AppResult<()> {
    let m = material(app).await?;
    let hash = m.hash.ok_or_else(|| AppError::new(ErrorCode::AuthSetupRequired, "Admin password setup is required"))?;
    if verify_password(password, hash).await? { Ok(()) } else { Err(auth_failed()) }
}

/// Dev API: forget the bootstrap state (spec 01 §6).
pub async fn reset_bootstrap(app: &AppState) -> AppResult<AuthStateView> {
    let mut tx = app.db.begin().await?;
    kv::delete(
        &mut tx,
        &[
            keys::PASSWORD_HASH,
            keys::LEGACY_PASSWORD_HASH,
            keys::TOKEN_SECRET,
            keys::PASSWORD_UPDATED_AT,
            keys::UI_LOCALE,
            keys::UI_THEME_MODE,
        ],
    )
    .await?;
    tx.commit().await?;
    app.auth.invalidate();
    app.login_throttle.clear();
    state(app, None).await
}

// ---------------------------------------------------------------------------------------------
// Throttle

#[derive(Debug, Clone, Copy)]
struct Attempts {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

/// Failed-login throttle per client address. After `max_failures` consecutive failures the
/// address is locked for `lockout`, doubling with each further failure (capped at 15 min).
pub struct LoginThrottle {
    max_failures: u32,
    lockout: Duration,
    map: Mutex<HashMap<IpAddr, Attempts>>,
}

const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

impl LoginThrottle {
    /// New throttle; `max_failures == 0` disables it.
    pub fn new(max_failures: u32, lockout_seconds: u64) -> Self {
        LoginThrottle { max_failures, lockout: Duration::from_secs(lockout_seconds.max(1)), map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Attempts>> {
        match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Errors with 429 while the address is locked.
    pub fn check(&self, ip: IpAddr) -> AppResult<()> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(a) = self.lock().get(&ip)
            && let Some(until) = a.locked_until
            && until > now
        {
            let secs = (until - now).as_secs_f64().ceil() as u64;
            let mut e = AppError::new(ErrorCode::AuthRateLimited, "Too many failed login attempts; try again later")
                .with("retry_after_seconds", secs.max(1));
            e.retry_after = Some(secs.max(1));
            return Err(e);
        }
        Ok(())
    }

    /// Records a failure; locks once the limit is reached.
    pub fn record_failure(&self, ip: IpAddr) {
        if self.max_failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() > 10_000 {
            map.retain(|_, a| now.duration_since(a.last) < FORGET_AFTER);
        }
        let a = map.entry(ip).or_insert(Attempts { failures: 0, locked_until: None, last: now });
        if now.duration_since(a.last) > FORGET_AFTER {
            a.failures = 0;
        }
        a.failures += 1;
        a.last = now;
        if a.failures >= self.max_failures {
            let extra = (a.failures - self.max_failures).min(16);
            let d = self.lockout.saturating_mul(1u32 << extra).min(MAX_LOCKOUT);
            a.locked_until = Some(now + d);
        }
    }

    /// Clears the address after a success.
    pub fn record_success(&self, ip: IpAddr) {
        self.lock().remove(&ip);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_upstream_pbkdf2_hashes() {
        // Build an upstream-format hash the way upstream does, then verify it.
        let salt = "00112233445566778899aabbccddeeff";
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"secret-pw", salt.as_bytes(), 1000, &mut out);
        let stored = format!("pbkdf2_sha256$1000${salt}${}", hex::encode(out));
        assert!(is_valid_hash(&stored));
        assert!(verify_password_blocking("secret-pw", &stored));
        assert!(!verify_password_blocking("secret-px", &stored));
        assert!(!is_valid_hash("pbkdf2_sha256$x$y"));
        assert!(!is_valid_hash(""));
    }

    #[test]
    fn argon2_round_trip() {
        let h = argon2::Argon2::default().hash_password(b"pw123456").unwrap().to_string();
        assert!(h.starts_with("$argon2id$"));
        assert!(is_valid_hash(&h));
        assert!(verify_password_blocking("pw123456", &h));
        assert!(!verify_password_blocking("pw123457", &h));
    }

    #[test]
    fn tokens_verify_and_expire() {
        let (t, _) = issue("s3cret", kinds::SESSION, 10, serde_json::json!(["*"]), None).unwrap();
        assert_eq!(verify("s3cret", &t).unwrap().kind, "session");
        assert_eq!(verify("other", &t).unwrap_err().code, ErrorCode::InvalidToken);
        assert_eq!(verify("s3cret", "a.b").unwrap_err().code, ErrorCode::InvalidToken);
        let (old, _) = issue("s3cret", kinds::SESSION, -1, serde_json::json!(["*"]), None).unwrap();
        assert_eq!(verify("s3cret", &old).unwrap_err().code, ErrorCode::TokenExpired);
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bEaReR   abc  ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn throttle_locks_and_backs_off() {
        let t = LoginThrottle::new(3, 30);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..2 {
            t.record_failure(ip);
            assert!(t.check(ip).is_ok());
        }
        t.record_failure(ip);
        let e = t.check(ip).unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthRateLimited);
        assert!(e.retry_after.unwrap() >= 29);
        t.record_failure(ip);
        assert!(t.check(ip).unwrap_err().retry_after.unwrap() >= 59);
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(t.check(other).is_ok());
        t.record_success(ip);
        assert!(t.check(ip).is_ok());
    }
}
