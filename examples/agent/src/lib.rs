//! Reference WFM agent (spec 03 §2.3, §3, §5, §11).
//!
//! `wfmctl bind` exchanges a one-shot token for a profile and MQTT credentials; `wfmctl run`
//! keeps one MQTT v5 session per local profile: it subscribes to the node's four command
//! topics, announces itself (`online` event + heartbeat), applies pushed configs, answers
//! control/info/detect, and reconnects after any failure with fresh boot/session ids.
//!
//! Interface changes go through a [`runner::Runner`]: the real one calls `wg-quick` /
//! `awg-quick` and `wg` / `awg`; the dry-run one records what it would run and simulates the
//! interface state, which is what the end-to-end tests drive.
//!
//! Layout: [`profile`] (bind, files on disk), [`runner`], [`session`] (the MQTT loop).

pub mod profile;
pub mod runner;
pub mod session;

/// Agent version reported at bind and in detect ACKs.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Go-style `GOOS` name of this platform (what upstream agents report).
pub fn platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}
