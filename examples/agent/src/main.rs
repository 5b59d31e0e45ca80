//! `wfmctl`: bind this host to a WFM node and run the agent.
//!
//! ```text
//! wfmctl bind --server <url> --token <token> [--root DIR]   (or: wfmctl bind <url> <token>)
//! wfmctl run [--root DIR] [--dry-run] [--heartbeat-secs N] [--reconnect-secs N]
//! wfmctl list [--root DIR]
//! wfmctl unbind <profile_id> | --all [--root DIR]
//! ```
//! The profile root defaults to the OS location (Linux `/etc/wg-free-mesh/profiles`) or
//! `WFM_AGENT_ROOT`. `run` uses `wg-quick`/`awg-quick` when installed, else (or with
//! `--dry-run`) records what it would run in `<profile>/dry-run.log`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::{mpsc, watch};
use wfm_agent::profile;
use wfm_agent::runner::Runner;
use wfm_agent::session::{AgentOptions, run_profile};

struct Args {
    positional: Vec<String>,
    flags: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(raw: Vec<String>) -> Args {
        let mut positional = vec![];
        let mut flags = vec![];
        let mut it = raw.into_iter().peekable();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if let Some((k, v)) = name.split_once('=') {
                    flags.push((k.to_string(), Some(v.to_string())));
                } else if matches!(name, "dry-run" | "all") {
                    flags.push((name.to_string(), None));
                } else {
                    flags.push((name.to_string(), it.next()));
                }
            } else {
                positional.push(a);
            }
        }
        Args { positional, flags }
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.flags.iter().find(|(n, _)| n == k).and_then(|(_, v)| v.as_deref())
    }

    fn has(&self, k: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == k)
    }

    fn root(&self) -> PathBuf {
        self.get("root")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("WFM_AGENT_ROOT").map(PathBuf::from))
            .unwrap_or_else(profile::default_root)
    }

    fn secs(&self, k: &str) -> anyhow::Result<Option<Duration>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => Ok(Some(Duration::from_secs(v.parse().with_context(|| format!("--{k} expects seconds"))?))),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    let mut raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.is_empty() {
        bail!("usage: wfmctl bind|run|list|unbind ... (see --help)");
    }
    let cmd = raw.remove(0);
    let args = Args::parse(raw);
    match cmd.as_str() {
        "bind" => {
            let server = args.get("server").map(str::to_string).or_else(|| args.positional.first().cloned());
            let token = args.get("token").map(str::to_string).or_else(|| args.positional.get(1).cloned());
            let (Some(server), Some(token)) = (server, token) else { bail!("usage: wfmctl bind --server <url> --token <token>") };
            let b = profile::bind(&server, &token, &args.root()).await?;
            println!("bound profile {} in {}", b.file.profile.profile_id, b.dir.display());
            Ok(())
        }
        "list" => {
            for d in profile::list_profiles(&args.root()) {
                let f = profile::load_profile(&d)?;
                println!("{}\t{}\t{}:{}", f.profile.profile_id, f.profile.interface_name, f.mqtt.host, f.mqtt.port);
            }
            Ok(())
        }
        "unbind" => {
            let root = args.root();
            if args.has("all") {
                for d in profile::list_profiles(&root) {
                    std::fs::remove_dir_all(&d)?;
                }
            } else {
                let Some(id) = args.positional.first() else { bail!("usage: wfmctl unbind <profile_id> | --all") };
                profile::unbind(&root, id)?;
            }
            Ok(())
        }
        "run" => {
            let root = args.root();
            let dirs = profile::list_profiles(&root);
            if dirs.is_empty() {
                bail!("no profiles under {}; run `wfmctl bind` first", root.display());
            }
            let (stop_tx, stop_rx) = watch::channel(false);
            let mut tasks = vec![];
            for d in dirs {
                let log = Some(d.join("dry-run.log"));
                let runner = if args.has("dry-run") { Runner::dry_run(log) } else { Runner::detect(log) };
                let mut opts = AgentOptions { runner, ..Default::default() };
                if let Some(h) = args.secs("heartbeat-secs")? {
                    opts.heartbeat = h;
                }
                if let Some(r) = args.secs("reconnect-secs")? {
                    opts.reconnect_delay = r;
                }
                let (tx, mut rx) = mpsc::unbounded_channel();
                let name = d.display().to_string();
                tokio::spawn(async move {
                    while let Some(e) = rx.recv().await {
                        tracing::info!(profile = %name, event = ?e, "agent");
                    }
                });
                tasks.push(tokio::spawn(run_profile(d, opts, Some(tx), stop_rx.clone())));
            }
            tokio::signal::ctrl_c().await?;
            let _ = stop_tx.send(true);
            for t in tasks {
                let _ = t.await;
            }
            Ok(())
        }
        other => bail!("unknown command {other:?}; expected bind, run, list or unbind"),
    }
}
