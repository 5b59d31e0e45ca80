//! Payloads of every message (spec 03 §5, §6) and the ACK vocabulary.
//!
//! WFM extension: the agent echoes `config_sha256`/`config_version` in its `config/push/ack`
//! so the server can tell which pushed version it applied. Upstream agents omit them, and the
//! server then matches the ACK to its push through the control log (`request_id`).

use serde::{Deserialize, Serialize};

/// Tunnel fields the server adds to `config/push`, `control` and `info` (spec 03 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelFields {
    /// `wireguard` or `amneziawg_2`.
    #[serde(default)]
    pub tunnel_protocol: Option<String>,
    /// `1.5`, `2.0`, `3.1`, or null for WireGuard.
    #[serde(default)]
    pub awg_version: Option<String>,
    /// Protocol the config had before its last protocol change (defaults to current).
    #[serde(default)]
    pub previous_tunnel_protocol: Option<String>,
}

/// The `action` of a config push.
pub const ACTION_PUSH_CONFIG: &str = "push_config";
/// The only `info` action.
pub const ACTION_WG_SHOW: &str = "wg_show";
/// `control` action: bring the interface up.
pub const ACTION_START: &str = "start";
/// `control` action: bring the interface down.
pub const ACTION_STOP: &str = "stop";

/// `config/push` payload (spec 03 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigPush {
    /// Always `push_config`.
    pub action: String,
    /// Tunnel fields.
    #[serde(flatten)]
    pub tunnel: TunnelFields,
    /// Target interface name.
    #[serde(default)]
    pub interface_name: String,
    /// Staged version.
    #[serde(default)]
    pub config_version: i64,
    /// Hex SHA-256 of `config_text`.
    #[serde(default)]
    pub config_sha256: String,
    /// Full `.conf` text.
    #[serde(default)]
    pub config_text: String,
}

/// `control` payload (spec 03 §5.2). WFM also sends `interface_name` (the docs require it;
/// agents that ignore it use the one from their profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// `start` or `stop`.
    pub action: String,
    /// Tunnel fields.
    #[serde(flatten)]
    pub tunnel: TunnelFields,
    /// Interface the command is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
}

/// `info` payload (spec 03 §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// Always `wg_show`.
    pub action: String,
    /// Tunnel fields.
    #[serde(flatten)]
    pub tunnel: TunnelFields,
}

/// `detect` payload (spec 03 §5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detect {
    /// Current protocol.
    #[serde(default)]
    pub tunnel_protocol: Option<String>,
    /// AWG version or null.
    #[serde(default)]
    pub awg_version: Option<String>,
}

impl Detect {
    /// The detect fields as tunnel fields (no previous protocol).
    pub fn tunnel(&self) -> TunnelFields {
        TunnelFields {
            tunnel_protocol: self.tunnel_protocol.clone(),
            awg_version: self.awg_version.clone(),
            previous_tunnel_protocol: None,
        }
    }
}

/// `heartbeat` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent process is up (always true when it can send).
    pub client_online: bool,
    /// The profile's interface is up.
    pub wg_online: bool,
}

/// Event levels.
pub const LEVEL_INFO: &str = "info";
/// Error level.
pub const LEVEL_ERROR: &str = "error";
/// Event name of the will (and a clean shutdown).
pub const EVENT_OFFLINE: &str = "offline";
/// Event name after connecting.
pub const EVENT_ONLINE: &str = "online";
/// Event carrying `wg_show` output.
pub const EVENT_COMMAND_OUTPUT: &str = "command_output";

/// `event` payload (spec 03 §3 will, §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `info` or `error`.
    pub level: String,
    /// Event name: `online`, `offline`, `config_push`, `control`, `detect`, `command_output`...
    pub event: String,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// Command this event belongs to (command output).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// Command action (command output).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    /// Output stream name (command output).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stream: String,
    /// Raw command output.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

impl Event {
    /// A plain event.
    pub fn new(level: &str, event: &str, message: impl Into<String>) -> Self {
        Event { level: level.into(), event: event.into(), message: message.into(), ..Default::default() }
    }
}

/// ACK status vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckStatus {
    /// Received / queued.
    Accepted,
    /// Done.
    Applied,
    /// See `message`.
    Failed,
}

impl AckStatus {
    /// Wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            AckStatus::Accepted => "accepted",
            AckStatus::Applied => "applied",
            AckStatus::Failed => "failed",
        }
    }
}

/// Every `<kind>/ack` payload; fields beyond `status`/`message` depend on the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Outcome.
    pub status: AckStatus,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// `control/ack` and `info/ack`: the action answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `detect/ack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_online: Option<bool>,
    /// `detect/ack`: the profile's interface is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wg_online: Option<bool>,
    /// `detect/ack`: agent OS (Go `GOOS` names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `detect/ack`: agent version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    /// WFM: `config/push/ack` echoes the hash it applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
    /// WFM: `config/push/ack` echoes the version it applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<i64>,
}

impl Ack {
    /// A bare ACK.
    pub fn new(status: AckStatus, message: impl Into<String>) -> Self {
        Ack {
            status,
            message: message.into(),
            action: None,
            client_online: None,
            wg_online: None,
            platform: None,
            client_version: None,
            config_sha256: None,
            config_version: None,
        }
    }

    /// With an `action`.
    pub fn with_action(mut self, action: &str) -> Self {
        self.action = Some(action.to_string());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn config_push_wire_shape() {
        let p = ConfigPush {
            action: ACTION_PUSH_CONFIG.into(),
            tunnel: TunnelFields {
                tunnel_protocol: Some("amneziawg_2".into()),
                awg_version: Some("2.0".into()),
                previous_tunnel_protocol: Some("wireguard".into()),
            },
            interface_name: "mesh-a".into(),
            config_version: 3,
            config_sha256: "ab".into(),
            config_text: "[Interface]\n".into(),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            json!({"action":"push_config","tunnel_protocol":"amneziawg_2","awg_version":"2.0",
                   "previous_tunnel_protocol":"wireguard","interface_name":"mesh-a",
                   "config_version":3,"config_sha256":"ab","config_text":"[Interface]\n"})
        );
        let back: ConfigPush = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn legacy_payloads_without_tunnel_fields_decode() {
        let c: Control = serde_json::from_value(json!({"action":"start"})).unwrap();
        assert_eq!(c.tunnel, TunnelFields::default());
        assert_eq!(c.interface_name, "");
        let i: Info = serde_json::from_value(json!({"action":"wg_show","awg_version":null})).unwrap();
        assert_eq!(i.tunnel.awg_version, None);
        let d: Detect = serde_json::from_value(json!({})).unwrap();
        assert_eq!(d, Detect::default());
    }

    #[test]
    fn ack_and_event_shapes() {
        let a = Ack::new(AckStatus::Applied, "done").with_action("stop");
        assert_eq!(serde_json::to_value(&a).unwrap(), json!({"status":"applied","message":"done","action":"stop"}));
        let mut d = Ack::new(AckStatus::Applied, "Detect completed.");
        d.client_online = Some(true);
        d.wg_online = Some(false);
        d.platform = Some("linux".into());
        d.client_version = Some("0.1.0".into());
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["wg_online"], false);
        assert_eq!(v["platform"], "linux");
        assert!(serde_json::from_value::<Ack>(json!({"status":"weird"})).is_err());

        let e = Event::new(LEVEL_INFO, EVENT_OFFLINE, "bye");
        assert_eq!(serde_json::to_value(&e).unwrap(), json!({"level":"info","event":"offline","message":"bye"}));
        let out = Event { request_id: "r".into(), action: "wg_show".into(), stream: "stdout".into(), output: "x".into(), ..Event::new(LEVEL_INFO, EVENT_COMMAND_OUTPUT, "m") };
        let v: Value = serde_json::to_value(&out).unwrap();
        assert_eq!(v["request_id"], "r");
        assert_eq!(v["output"], "x");
        for s in [AckStatus::Accepted, AckStatus::Applied, AckStatus::Failed] {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
    }
}
