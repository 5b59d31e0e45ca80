//! Interface operations: real (`wg-quick`/`awg-quick`, `wg`/`awg`) or dry-run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wfm_mqtt_proto::tunnel::TunnelProtocol;

/// External commands time out after this (spec 03 §5.2).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
/// `wg show` / `wg` time out after this (spec 03 §5.3-5.4).
pub const SHOW_TIMEOUT: Duration = Duration::from_secs(10);

/// Dry-run state: what would have run, and the simulated interfaces.
#[derive(Debug, Default)]
pub struct DryRunState {
    /// Every command line, in order.
    pub commands: Vec<String>,
    /// `(protocol tool, interface)` pairs that are "up".
    pub up: BTreeSet<(String, String)>,
}

/// Runs or simulates interface commands.
#[derive(Clone)]
pub enum Runner {
    /// Calls the real tools.
    Real,
    /// Records commands and simulates state; optional log file gets one line per command.
    DryRun(Arc<Mutex<DryRunState>>, Option<PathBuf>),
}

fn iface_of(conf: &Path) -> String {
    conf.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn in_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

async fn run(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let fut = tokio::process::Command::new(program).args(args).kill_on_drop(true).output();
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(format!("{program} timed out after {}s", timeout.as_secs())),
        Ok(Err(e)) => Err(format!("{program}: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(format!("{program} {} failed: {err}", args.join(" ")))
        }
    }
}

impl Runner {
    /// A fresh dry-run runner.
    pub fn dry_run(log: Option<PathBuf>) -> Runner {
        Runner::DryRun(Arc::new(Mutex::new(DryRunState::default())), log)
    }

    /// Real runner when `wg-quick` is installed, else dry-run.
    pub fn detect(log: Option<PathBuf>) -> Runner {
        if in_path("wg-quick") || in_path("awg-quick") { Runner::Real } else { Runner::dry_run(log) }
    }

    /// True for the dry-run runner.
    pub fn is_dry_run(&self) -> bool {
        matches!(self, Runner::DryRun(..))
    }

    /// Commands recorded so far (dry-run only).
    pub fn commands(&self) -> Vec<String> {
        match self {
            Runner::Real => vec![],
            Runner::DryRun(s, _) => lock(s).commands.clone(),
        }
    }

    fn record(&self, line: String) {
        if let Runner::DryRun(s, log) = self {
            if let Some(p) = log {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(p) {
                    let _ = writeln!(f, "{line}");
                }
            }
            lock(s).commands.push(line);
        }
    }

    /// `<quick tool> up <conf>`.
    pub async fn up(&self, proto: TunnelProtocol, conf: &Path) -> Result<String, String> {
        let tool = proto.quick_tool();
        let conf_s = conf.display().to_string();
        match self {
            Runner::Real => run(tool, &["up", &conf_s], COMMAND_TIMEOUT).await,
            Runner::DryRun(s, _) => {
                self.record(format!("{tool} up {conf_s}"));
                let key = (tool.to_string(), iface_of(conf));
                if !lock(s).up.insert(key) {
                    return Err(format!("{tool} up {conf_s} failed: `{}` already exists", iface_of(conf)));
                }
                Ok(String::new())
            }
        }
    }

    /// `<quick tool> down <conf>`.
    pub async fn down(&self, proto: TunnelProtocol, conf: &Path) -> Result<String, String> {
        let tool = proto.quick_tool();
        let conf_s = conf.display().to_string();
        match self {
            Runner::Real => run(tool, &["down", &conf_s], COMMAND_TIMEOUT).await,
            Runner::DryRun(s, _) => {
                self.record(format!("{tool} down {conf_s}"));
                let key = (tool.to_string(), iface_of(conf));
                if !lock(s).up.remove(&key) {
                    return Err(format!("{tool} down {conf_s} failed: `{}` is not a WireGuard interface", iface_of(conf)));
                }
                Ok(String::new())
            }
        }
    }

    /// Whether `iface` runs under `proto`: `wg show <iface>` gives output within 10 s.
    pub async fn is_running(&self, proto: TunnelProtocol, iface: &str) -> bool {
        match self {
            Runner::Real => run(proto.show_tool(), &["show", iface], SHOW_TIMEOUT).await.is_ok_and(|o| !o.trim().is_empty()),
            Runner::DryRun(s, _) => lock(s).up.contains(&(proto.quick_tool().to_string(), iface.to_string())),
        }
    }

    /// Bare `wg` / `awg` output (empty output is a failure).
    pub async fn show_all(&self, proto: TunnelProtocol) -> Result<String, String> {
        let tool = proto.show_tool();
        let out = match self {
            Runner::Real => run(tool, &[], SHOW_TIMEOUT).await?,
            Runner::DryRun(s, _) => {
                self.record(tool.to_string());
                let st = lock(s);
                st.up
                    .iter()
                    .filter(|(t, _)| t == proto.quick_tool())
                    .map(|(_, i)| format!("interface: {i}\n  listening port: (dry-run)\n"))
                    .collect::<String>()
            }
        };
        if out.trim().is_empty() { Err(format!("{tool} returned no output")) } else { Ok(out) }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dry_run_simulates_state() {
        let r = Runner::dry_run(None);
        let conf = Path::new("/tmp/p/mesh-a.conf");
        assert!(!r.is_running(TunnelProtocol::WireGuard, "mesh-a").await);
        assert!(r.show_all(TunnelProtocol::WireGuard).await.is_err());
        r.up(TunnelProtocol::WireGuard, conf).await.unwrap();
        assert!(r.up(TunnelProtocol::WireGuard, conf).await.is_err());
        assert!(r.is_running(TunnelProtocol::WireGuard, "mesh-a").await);
        assert!(!r.is_running(TunnelProtocol::AmneziaWg2, "mesh-a").await);
        assert!(r.show_all(TunnelProtocol::WireGuard).await.unwrap().contains("interface: mesh-a"));
        r.down(TunnelProtocol::WireGuard, conf).await.unwrap();
        assert!(r.down(TunnelProtocol::WireGuard, conf).await.is_err());
        assert_eq!(
            r.commands(),
            [
                "wg",
                "wg-quick up /tmp/p/mesh-a.conf",
                "wg-quick up /tmp/p/mesh-a.conf",
                "wg",
                "wg-quick down /tmp/p/mesh-a.conf",
                "wg-quick down /tmp/p/mesh-a.conf"
            ]
        );
    }
}
