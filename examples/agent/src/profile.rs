//! Binding and the per-profile directory (spec 03 §2.2-2.3).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `profile` object of a bind answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// `{config_id}-{node_id}`.
    pub profile_id: String,
    /// The `--server` the agent bound with (the server always sends `""`).
    #[serde(default)]
    pub server_url: String,
    /// Config id.
    pub config_id: String,
    /// Config name.
    #[serde(default)]
    pub config_name: String,
    /// Node id.
    pub node_id: String,
    /// Node name.
    #[serde(default)]
    pub node_name: String,
    /// Interface name (adopted from pushes later).
    #[serde(default)]
    pub interface_name: String,
    /// Host name sent at bind.
    #[serde(default)]
    pub hostname: String,
    /// Platform sent at bind.
    #[serde(default)]
    pub platform: String,
    /// Version sent at bind.
    #[serde(default)]
    pub client_version: String,
}

/// Topic lists of a bind answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Topics {
    /// Downstream topics.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Upstream topics.
    #[serde(default)]
    pub publish: Vec<String>,
}

/// The `mqtt` object of a bind answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MqttInfo {
    /// Broker host for clients.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS on.
    #[serde(default)]
    pub tls: bool,
    /// CA PEM when TLS.
    #[serde(default)]
    pub ca_cert: Option<String>,
    /// User name (node id).
    pub username: String,
    /// Password.
    pub password: String,
    /// Client id (`wfm-<node_id>`).
    pub client_id: String,
    /// Topics.
    #[serde(default)]
    pub topics: Topics,
}

/// `profile.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileFile {
    /// Profile.
    pub profile: Profile,
    /// Broker access.
    pub mqtt: MqttInfo,
}

/// What the host sends at bind.
#[derive(Debug, Clone, Serialize)]
pub struct BindRequest {
    /// One-shot token.
    pub token: String,
    /// Host name.
    pub hostname: String,
    /// `GOOS` name.
    pub platform: String,
    /// Agent version.
    pub client_version: String,
}

/// A bind result: the written profile and where.
#[derive(Debug, Clone)]
pub struct Bound {
    /// The profile directory.
    pub dir: PathBuf,
    /// Its content.
    pub file: ProfileFile,
    /// The initial config text.
    pub desired_conf: String,
}

/// Default profile root of this OS.
pub fn default_root() -> PathBuf {
    if cfg!(target_os = "windows") {
        let base = std::env::var("ProgramData").unwrap_or_else(|_| r"C:\ProgramData".into());
        PathBuf::from(base).join("wg-free-mesh").join("profiles")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/WG Free Mesh/profiles")
    } else {
        PathBuf::from("/etc/wg-free-mesh/profiles")
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// `POST <server>/api/client/v1/bind` and write the profile under `root`.
pub async fn bind(server: &str, token: &str, root: &Path) -> anyhow::Result<Bound> {
    let server = server.trim().trim_end_matches('/');
    let req = BindRequest {
        token: token.trim().to_string(),
        hostname: hostname(),
        platform: crate::platform().to_string(),
        client_version: crate::VERSION.to_string(),
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
    let resp = http.post(format!("{server}/api/client/v1/bind")).json(&req).send().await.context("bind request failed")?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() || body.get("success").and_then(Value::as_bool) != Some(true) {
        let msg = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("bind failed: HTTP {}", status.as_u16()));
        bail!(msg);
    }
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let mut file: ProfileFile = serde_json::from_value(data.clone()).context("bind answer has no profile/mqtt")?;
    file.profile.server_url = server.to_string();
    let desired_conf = data.get("desired_conf").and_then(Value::as_str).unwrap_or("").to_string();
    let dir = write_profile(root, &file, &desired_conf)?;
    Ok(Bound { dir, file, desired_conf })
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_p: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Writes `<root>/<profile_id>/` (0700) with `profile.json` (0600), `desired.conf` and
/// `<interface>.conf`.
pub fn write_profile(root: &Path, file: &ProfileFile, desired_conf: &str) -> anyhow::Result<PathBuf> {
    let id = &file.profile.profile_id;
    if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
        bail!("refusing unsafe profile id {id:?}");
    }
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    set_mode(&dir, 0o700)?;
    save_profile(&dir, file)?;
    write_confs(&dir, &file.profile.interface_name, desired_conf)?;
    Ok(dir)
}

/// Rewrites `profile.json` (0600).
pub fn save_profile(dir: &Path, file: &ProfileFile) -> anyhow::Result<()> {
    let p = dir.join("profile.json");
    let tmp = dir.join(".profile.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(file)?)?;
    set_mode(&tmp, 0o600)?;
    std::fs::rename(&tmp, &p)?;
    Ok(())
}

/// Path of the interface config file.
pub fn conf_path(dir: &Path, interface: &str) -> PathBuf {
    dir.join(format!("{}.conf", if interface.is_empty() { "wfm0" } else { interface }))
}

/// Writes `desired.conf` and `<interface>.conf` (0600: they hold a private key).
pub fn write_confs(dir: &Path, interface: &str, text: &str) -> anyhow::Result<()> {
    for p in [dir.join("desired.conf"), conf_path(dir, interface)] {
        std::fs::write(&p, text)?;
        set_mode(&p, 0o600)?;
    }
    Ok(())
}

/// Reads one profile directory.
pub fn load_profile(dir: &Path) -> anyhow::Result<ProfileFile> {
    let raw = std::fs::read(dir.join("profile.json")).with_context(|| format!("reading {}", dir.display()))?;
    Ok(serde_json::from_slice(&raw)?)
}

/// Every profile directory under `root`.
pub fn list_profiles(root: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(root) else { return vec![] };
    let mut out: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("profile.json").is_file()).collect();
    out.sort();
    out
}

/// Deletes a local profile (never revokes server access).
pub fn unbind(root: &Path, profile_id: &str) -> anyhow::Result<()> {
    if profile_id.is_empty() || profile_id.contains(['/', '\\']) || profile_id.starts_with('.') {
        bail!("refusing unsafe profile id {profile_id:?}");
    }
    std::fs::remove_dir_all(root.join(profile_id))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProfileFile {
        ProfileFile {
            profile: Profile {
                profile_id: "cfg_a-node_b".into(),
                server_url: String::new(),
                config_id: "cfg_a".into(),
                config_name: "mesh".into(),
                node_id: "node_b".into(),
                node_name: "a".into(),
                interface_name: "mesh-a".into(),
                hostname: "h".into(),
                platform: "linux".into(),
                client_version: "1".into(),
            },
            mqtt: MqttInfo {
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false,
                ca_cert: None,
                username: "node_b".into(),
                password: "pw".into(),
                client_id: "wfm-node_b".into(),
                topics: Topics::default(),
            },
        }
    }

    #[test]
    fn profile_dir_roundtrip_and_modes() {
        let root = tempfile::tempdir().unwrap();
        let dir = write_profile(root.path(), &sample(), "[Interface]\n").unwrap();
        assert_eq!(load_profile(&dir).unwrap(), sample());
        assert_eq!(std::fs::read_to_string(dir.join("mesh-a.conf")).unwrap(), "[Interface]\n");
        assert_eq!(std::fs::read_to_string(dir.join("desired.conf")).unwrap(), "[Interface]\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
            assert_eq!(std::fs::metadata(dir.join("profile.json")).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(list_profiles(root.path()), vec![dir.clone()]);
        unbind(root.path(), "cfg_a-node_b").unwrap();
        assert!(list_profiles(root.path()).is_empty());
        assert!(unbind(root.path(), "../x").is_err());
    }
}
