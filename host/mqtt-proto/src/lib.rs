//! The MQTT control channel between the WFM server and its agents (spec 03 §1, §3-6).
//!
//! Shared by the server (`wfm`) and the reference agent (`wfm-agent`) so both sides agree on
//! one definition of every topic and message.
//!
//! Layout:
//! - [`topic`]: the `wfm/{config_id}/{node_id}/<kind>` layout, the per-node allow-lists the
//!   broker enforces, and topic parsing as the server does it.
//! - [`envelope`]: the JSON envelope around every message, strict (typed) for senders and
//!   lenient ([`envelope::Inbound`]) for the server, which must never fail on a bad message.
//! - [`message`]: every payload as a serde struct, plus the ACK/status vocabulary.
//! - [`tunnel`]: tunnel protocol / AWG version fields and their validation on the agent side.

pub mod envelope;
pub mod message;
pub mod topic;
pub mod tunnel;

pub use envelope::{Envelope, Inbound};
pub use topic::{Action, Kind, TopicRef};

use std::time::Duration;

/// Agent MQTT keep-alive (spec 03 §3).
pub const KEEP_ALIVE: Duration = Duration::from_secs(60);
/// Agent heartbeat period (spec 03 §3).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Pause before an agent reconnects (spec 03 §3).
pub const RECONNECT_DELAY: Duration = Duration::from_secs(5);
/// Per-message publish timeout on the agent (spec 03 §3).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(8);
/// A node counts as online for this long after its last reachable signal (spec 03 §6.5).
pub const CLIENT_ONLINE_TTL: Duration = Duration::from_secs(90 * 60);
/// Server detect loop period (spec 03 §6.6).
pub const DETECT_INTERVAL: Duration = Duration::from_secs(120);
/// How long the server waits for a detect ACK (spec 03 §6.6).
pub const DETECT_WAIT: Duration = Duration::from_secs(10);

/// MQTT client id of a node: `wfm-` + node id.
pub fn client_id(node_id: &str) -> String {
    format!("wfm-{node_id}")
}

/// Agent-side profile id: `{config_id}-{node_id}`.
pub fn profile_id(config_id: &str, node_id: &str) -> String {
    format!("{config_id}-{node_id}")
}

/// A fresh command request id: 32 lowercase hex chars (UUID4 without dashes).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
