//! Configuration from `WFM_*` environment variables (spec 01 §12), optionally from a `.env`
//! file. Parsed once at start-up; an invalid value stops start-up with a message naming the
//! variable. Secrets are redacted in `Debug`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::store::DbTarget;

/// A secret string whose `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Secret {
    /// The clear value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Which broker the server manages for node credentials and ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttBroker {
    /// EMQX (production, as upstream): management REST API + HTTP authz callback.
    Emqx,
    /// Mosquitto with the dynamic-security plugin.
    Mosquitto,
}

/// All settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `WFM_BIND`: listen address (default `127.0.0.1:8000`).
    pub bind: SocketAddr,
    /// `WFM_DATA_DIR`: data directory (default `./data`).
    pub data_dir: PathBuf,
    /// `WFM_DATABASE` / `WFM_DATABASE_URL`: database target.
    pub database: DbTarget,
    /// `WFM_DEBUG`.
    pub debug: bool,
    /// `WFM_ENABLE_DEV_TEST_API`: mounts `/api/v0` and disables the source guard.
    pub enable_dev_test_api: bool,
    /// `WFM_TIMEZONE` (IANA name).
    pub timezone: chrono_tz::Tz,
    /// `WFM_AUTH_TOKEN_EXPIRE_MINUTES`.
    pub auth_token_expire_minutes: i64,
    /// `WFM_AUTH_DOWNLOAD_TOKEN_EXPIRE_MINUTES`.
    pub auth_download_token_expire_minutes: i64,
    /// `WFM_PUBLIC_ORIGIN` (trimmed, no trailing `/`; empty = guard off).
    pub public_origin: String,
    /// `WFM_EXTRA_ALLOWED_ORIGINS` (JSON array).
    pub extra_allowed_origins: Vec<String>,
    /// `WFM_ENABLE_MQTT_SERVICES`.
    pub enable_mqtt_services: bool,
    /// `WFM_MQTT_URL`.
    pub mqtt_url: String,
    /// `WFM_MQTT_PUBLIC_PORT`.
    pub mqtt_public_port: u16,
    /// `WFM_MQTT_PUBLIC_TLS_PORT`.
    pub mqtt_public_tls_port: u16,
    /// `WFM_MQTT_TLS_ENABLED`.
    pub mqtt_tls_enabled: bool,
    /// `WFM_MQTT_CA_FILE`: the broker's CA certificate (PEM), handed to agents at bind and
    /// trusted by the server's own `mqtts://` connection. Default `<data dir>/mqtt/ca.crt`.
    pub mqtt_ca_file: PathBuf,
    /// `WFM_MQTT_TLS_VERIFY` (default true): verify the broker's certificate on the server's
    /// own `mqtts://` connection; `false` restores upstream's unverified handshake.
    pub mqtt_tls_verify: bool,
    /// `WFM_MQTT_BROKER`: `emqx` (default) or `mosquitto`.
    pub mqtt_broker: MqttBroker,
    /// `WFM_EMQX_API_BASE_URL`.
    pub emqx_api_base_url: String,
    /// `WFM_EMQX_USERNAME`.
    pub emqx_username: String,
    /// `WFM_EMQX_PASSWORD`.
    pub emqx_password: Secret,
    /// `WFM_EMQX_AUTHZ_SHARED_KEY`.
    pub emqx_authz_shared_key: Secret,
    /// `WFM_PLUGIN_DIR`: where plugins are discovered (default: what the build produced).
    pub plugin_dir: Option<PathBuf>,
    /// `WFM_PLUGIN_CACHE_DIR`: compiled-plugin cache; `None` = `<plugin dir>/.cache`,
    /// `Some(None)` = `off` (compile on every start).
    pub plugin_cache_dir: Option<Option<PathBuf>>,
    /// `WFM_PLUGIN_TIMEOUT_MS`: wall-clock budget of one plugin call (default 5000, min 10).
    pub plugin_timeout_ms: u64,
    /// `WFM_PLUGIN_MEMORY_MB`: linear memory one plugin instance may use (default 64, min 2).
    pub plugin_memory_mb: usize,
    /// `WFM_WEB_DIR`: the built console (default `web/dist`).
    pub web_dir: PathBuf,
    /// `WFM_MAX_BODY_BYTES`: request body limit for JSON APIs (default 1 MiB).
    pub max_body_bytes: usize,
    /// `WFM_LOGIN_MAX_FAILURES`: failed logins per client address before throttling (default 5).
    pub login_max_failures: u32,
    /// `WFM_LOGIN_LOCKOUT_SECONDS`: first lockout length, doubled per further failure (default 30).
    pub login_lockout_seconds: u64,
    /// `WFM_SSE_HEARTBEAT_SECONDS`: `system.clock.sync` interval (default 15).
    pub sse_heartbeat_seconds: u64,
}

/// A bad setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid {var}: {reason}")]
pub struct ConfigError {
    /// Variable name.
    pub var: String,
    /// Why.
    pub reason: String,
}

fn err(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { var: var.to_string(), reason: reason.into() }
}

/// Source of raw values (names upper-cased).
pub struct Env(HashMap<String, String>);

impl Env {
    /// The process environment, after loading `.env` (without overriding set variables).
    pub fn from_process() -> Self {
        let _ = dotenvy::dotenv();
        Self::from_pairs(std::env::vars())
    }

    /// Explicit pairs (tests).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        // Names are case-insensitive upstream.
        Env(pairs.into_iter().map(|(k, v)| (k.as_ref().to_ascii_uppercase(), v.into())).collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.as_str())
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).map(|s| s.trim().to_string()).unwrap_or_else(|| default.to_string())
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(err(name, format!("expected true or false, got {v:?}"))),
            },
        }
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|_| err(name, format!("expected a number, got {v:?}"))),
        }
    }
}

fn normalise_origin(s: &str) -> String {
    s.trim().trim_end_matches('/').to_string()
}

impl Settings {
    /// Reads settings from the process environment (and `.env`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env::from_process())
    }

    /// Reads settings from explicit values.
    pub fn from_source(env: &Env) -> Result<Self, ConfigError> {
        let bind_s = env.string("WFM_BIND", "127.0.0.1:8000");
        let bind = bind_s.parse().map_err(|_| err("WFM_BIND", format!("expected host:port, got {bind_s:?}")))?;
        let data_dir = PathBuf::from(env.string("WFM_DATA_DIR", "./data"));

        let db_url = {
            let primary = env.string("WFM_DATABASE", "");
            if !primary.is_empty() {
                ("WFM_DATABASE", primary)
            } else {
                let legacy = env.string("WFM_DATABASE_URL", "");
                if !legacy.is_empty() {
                    ("WFM_DATABASE_URL", legacy)
                } else {
                    ("WFM_DATA_DIR", format!("sqlite:///{}", data_dir.join("wg_free_mesh.db").display()))
                }
            }
        };
        let database = DbTarget::parse(&db_url.1).map_err(|r| err(db_url.0, r))?;

        let tz_s = env.string("WFM_TIMEZONE", "");
        let tz_s = if tz_s.is_empty() { "Asia/Shanghai".to_string() } else { tz_s };
        let timezone = tz_s.parse::<chrono_tz::Tz>().map_err(|_| err("WFM_TIMEZONE", format!("unknown IANA time zone {tz_s:?}")))?;

        let auth_token_expire_minutes = env.num("WFM_AUTH_TOKEN_EXPIRE_MINUTES", 1440i64)?;
        if auth_token_expire_minutes <= 0 {
            return Err(err("WFM_AUTH_TOKEN_EXPIRE_MINUTES", "must be positive"));
        }
        let auth_download_token_expire_minutes = env.num("WFM_AUTH_DOWNLOAD_TOKEN_EXPIRE_MINUTES", 5i64)?;
        if auth_download_token_expire_minutes <= 0 {
            return Err(err("WFM_AUTH_DOWNLOAD_TOKEN_EXPIRE_MINUTES", "must be positive"));
        }

        let public_origin = normalise_origin(&env.string("WFM_PUBLIC_ORIGIN", ""));
        if !public_origin.is_empty() {
            let u = url::Url::parse(&public_origin).map_err(|e| err("WFM_PUBLIC_ORIGIN", e.to_string()))?;
            if u.host_str().is_none() || !matches!(u.scheme(), "http" | "https") {
                return Err(err("WFM_PUBLIC_ORIGIN", "expected http(s)://host[:port]"));
            }
        }
        let extras_s = env.string("WFM_EXTRA_ALLOWED_ORIGINS", "");
        let extra_allowed_origins: Vec<String> = if extras_s.is_empty() {
            vec![]
        } else {
            serde_json::from_str::<Vec<String>>(&extras_s)
                .map_err(|_| err("WFM_EXTRA_ALLOWED_ORIGINS", "expected a JSON array of origin strings"))?
        };

        let broker_s = env.string("WFM_MQTT_BROKER", "emqx").to_ascii_lowercase();
        let mqtt_broker = match broker_s.as_str() {
            "" | "emqx" => MqttBroker::Emqx,
            "mosquitto" => MqttBroker::Mosquitto,
            other => return Err(err("WFM_MQTT_BROKER", format!("expected emqx or mosquitto, got {other:?}"))),
        };

        let mqtt_url = env.string("WFM_MQTT_URL", "mqtt://localhost:1883");
        let mqtt_ca_file = match env.string("WFM_MQTT_CA_FILE", "") {
            s if s.trim().is_empty() => data_dir.join("mqtt").join("ca.crt"),
            s => PathBuf::from(s.trim()),
        };
        url::Url::parse(&mqtt_url).map_err(|e| err("WFM_MQTT_URL", e.to_string()))?;

        let plugin_dir = match env.string("WFM_PLUGIN_DIR", "") {
            s if s.is_empty() => None,
            s => Some(PathBuf::from(s)),
        };

        let plugin_cache_dir = match env.string("WFM_PLUGIN_CACHE_DIR", "") {
            s if s.is_empty() => None,
            s if s.eq_ignore_ascii_case("off") => Some(None),
            s => Some(Some(PathBuf::from(s))),
        };
        let plugin_timeout_ms = env.num("WFM_PLUGIN_TIMEOUT_MS", 5000u64)?;
        if plugin_timeout_ms < 10 {
            return Err(err("WFM_PLUGIN_TIMEOUT_MS", "must be at least 10"));
        }
        let plugin_memory_mb = env.num("WFM_PLUGIN_MEMORY_MB", 64usize)?;
        if !(2..=4096).contains(&plugin_memory_mb) {
            return Err(err("WFM_PLUGIN_MEMORY_MB", "must be between 2 and 4096"));
        }

        let max_body_bytes = env.num("WFM_MAX_BODY_BYTES", 1usize << 20)?;
        if max_body_bytes < 1024 {
            return Err(err("WFM_MAX_BODY_BYTES", "must be at least 1024"));
        }

        Ok(Settings {
            bind,
            data_dir,
            database,
            debug: env.bool("WFM_DEBUG", false)?,
            enable_dev_test_api: env.bool("WFM_ENABLE_DEV_TEST_API", false)?,
            timezone,
            auth_token_expire_minutes,
            auth_download_token_expire_minutes,
            public_origin,
            extra_allowed_origins,
            enable_mqtt_services: env.bool("WFM_ENABLE_MQTT_SERVICES", true)?,
            mqtt_url,
            mqtt_public_port: env.num("WFM_MQTT_PUBLIC_PORT", 1883u16)?,
            mqtt_public_tls_port: env.num("WFM_MQTT_PUBLIC_TLS_PORT", 8883u16)?,
            mqtt_tls_enabled: env.bool("WFM_MQTT_TLS_ENABLED", false)?,
            mqtt_ca_file,
            mqtt_tls_verify: env.bool("WFM_MQTT_TLS_VERIFY", true)?,
            mqtt_broker,
            emqx_api_base_url: env.string("WFM_EMQX_API_BASE_URL", "http://localhost:18083"),
            emqx_username: env.string("WFM_EMQX_USERNAME", "admin"),
            emqx_password: Secret(env.string("WFM_EMQX_PASSWORD", "public")),
            emqx_authz_shared_key: Secret(env.string("WFM_EMQX_AUTHZ_SHARED_KEY", "wfm-internal-emqx-authz")),
            plugin_dir,
            plugin_cache_dir,
            plugin_timeout_ms,
            plugin_memory_mb,
            web_dir: PathBuf::from(env.string("WFM_WEB_DIR", "web/dist")),
            max_body_bytes,
            login_max_failures: env.num("WFM_LOGIN_MAX_FAILURES", 5u32)?,
            login_lockout_seconds: env.num("WFM_LOGIN_LOCKOUT_SECONDS", 30u64)?,
            sse_heartbeat_seconds: env.num("WFM_SSE_HEARTBEAT_SECONDS", 15u64)?.max(1),
        })
    }

    /// `allowed_origins` of the source guard: public origin + extras, trimmed, without trailing
    /// `/`, blanks dropped, de-duplicated in order (spec 01 §10).
    pub fn allowed_origins(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for o in std::iter::once(&self.public_origin).chain(self.extra_allowed_origins.iter()) {
            let o = normalise_origin(o);
            if !o.is_empty() && !out.contains(&o) {
                out.push(o);
            }
        }
        out
    }

    /// Lower-cased authority (host and port as written) of the public origin.
    pub fn public_origin_host(&self) -> String {
        authority_of(&self.public_origin)
    }

    /// Whether the Host/Origin guard is active (spec 01 §10 step 1).
    pub fn guard_active(&self) -> bool {
        !self.enable_dev_test_api && !self.public_origin.is_empty()
    }
}

/// The authority part (`host[:port]`) of a URL-ish string, lower-cased.
pub fn authority_of(s: &str) -> String {
    let s = s.trim();
    let rest = match s.find("://") {
        Some(i) => &s[i + 3..],
        None => s,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let auth = auth.rsplit('@').next().unwrap_or(auth);
    auth.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (*k, v.to_string())))
    }

    #[test]
    fn defaults() {
        let s = Settings::from_source(&env(&[])).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.timezone, chrono_tz::Asia::Shanghai);
        assert!(!s.guard_active());
        assert_eq!(s.database, DbTarget::Sqlite("./data/wg_free_mesh.db".into()));
        assert_eq!(s.mqtt_broker, MqttBroker::Emqx);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (k, v) in [
            ("WFM_TIMEZONE", "Mars/Olympus"),
            ("WFM_BIND", "nope"),
            ("WFM_DEBUG", "maybe"),
            ("WFM_EXTRA_ALLOWED_ORIGINS", "not json"),
            ("WFM_DATABASE", "mysql://x"),
            ("wfm_mqtt_broker", "hivemq"),
            ("WFM_PLUGIN_TIMEOUT_MS", "soon"),
            ("WFM_PLUGIN_MEMORY_MB", "1"),
        ] {
            let e = Settings::from_source(&env(&[(k, v)])).unwrap_err();
            assert_eq!(e.var, k.to_ascii_uppercase(), "{e}");
        }
    }

    #[test]
    fn origins_and_secret_redaction() {
        let s = Settings::from_source(&env(&[
            ("WFM_PUBLIC_ORIGIN", "https://WFM.example.com:8443/"),
            ("WFM_EXTRA_ALLOWED_ORIGINS", r#"[" http://localhost:5173/ ", "", "https://WFM.example.com:8443"]"#),
            ("WFM_EMQX_PASSWORD", "hunter2"),
        ]))
        .unwrap();
        assert_eq!(s.allowed_origins(), vec!["https://WFM.example.com:8443", "http://localhost:5173"]);
        assert_eq!(s.public_origin_host(), "wfm.example.com:8443");
        assert!(s.guard_active());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
