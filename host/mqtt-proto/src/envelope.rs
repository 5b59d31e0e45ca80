//! The envelope around every message (spec 03 §4).
//!
//! Senders build a typed [`Envelope`]. The server reads with [`Inbound`], which never fails:
//! bad or non-object JSON counts as `{}`, and every field is looked up in `payload` first,
//! then at the top level, because upstream agents of different ages put them in either place.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::topic::Kind;

/// One message as it travels: a UTF-8 JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<P = Value> {
    /// Message kind (same string as the topic suffix).
    #[serde(rename = "type")]
    pub kind: String,
    /// Set for commands and echoed by their ACKs; `""` for heartbeat/event.
    #[serde(default)]
    pub request_id: String,
    /// Target/source config.
    #[serde(default)]
    pub config_id: String,
    /// Target/source node.
    #[serde(default)]
    pub node_id: String,
    /// Server: `""`; agent: `boot-<unix nanos>`.
    #[serde(default)]
    pub boot_id: String,
    /// Server: `""`; agent: `session-<unix nanos>`.
    #[serde(default)]
    pub session_id: String,
    /// Send time (server: ISO with offset and micros; agent: RFC 3339 UTC seconds).
    #[serde(default)]
    pub sent_at: String,
    /// Message-specific payload.
    pub payload: P,
}

impl<P: Serialize> Envelope<P> {
    /// An envelope as the server sends it (`boot_id`/`session_id` empty).
    pub fn from_server(kind: Kind, request_id: &str, config_id: &str, node_id: &str, payload: P) -> Self {
        Envelope {
            kind: kind.as_str().to_string(),
            request_id: request_id.to_string(),
            config_id: config_id.to_string(),
            node_id: node_id.to_string(),
            boot_id: String::new(),
            session_id: String::new(),
            sent_at: server_time(Utc::now()),
            payload,
        }
    }

    /// JSON bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

impl<P: DeserializeOwned> Envelope<P> {
    /// Strict decode (agent side: the server always sends well-formed envelopes).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Server `sent_at`: Python `isoformat()` of an aware UTC datetime,
/// `2026-04-23T12:00:00.123456+00:00`.
pub fn server_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// Agent `sent_at`: RFC 3339 UTC with whole seconds, `2026-04-23T12:00:00Z`.
pub fn agent_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A received message read leniently (server side).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inbound {
    root: Map<String, Value>,
    /// False when the bytes were not a JSON object (the message then reads as `{}`).
    pub well_formed: bool,
}

impl Inbound {
    /// Parses; anything but a JSON object yields an empty message.
    pub fn parse(bytes: &[u8]) -> Inbound {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(root)) => Inbound { root, well_formed: true },
            _ => Inbound { root: Map::new(), well_formed: false },
        }
    }

    /// The payload object (empty when missing or not an object).
    pub fn payload(&self) -> Option<&Map<String, Value>> {
        self.root.get("payload").and_then(Value::as_object)
    }

    /// A field from `payload`, else from the top level. `null` counts as absent.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.payload()
            .and_then(|p| p.get(name))
            .filter(|v| !v.is_null())
            .or_else(|| self.root.get(name).filter(|v| !v.is_null()))
    }

    /// A field as text: strings as they are, numbers and booleans in their JSON form.
    pub fn text(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A field as trimmed text, `""` when absent.
    pub fn text_or_empty(&self, name: &str) -> String {
        self.text(name).map(|s| s.trim().to_string()).unwrap_or_default()
    }

    /// A boolean field with the spec's lenient rules and a default for absence.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        self.get(name).map(truthy).unwrap_or(default)
    }

    /// An integer field (numbers, or strings holding one).
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// `request_id` (trimmed; `""` when absent).
    pub fn request_id(&self) -> String {
        self.text_or_empty("request_id")
    }
}

/// Lenient boolean (spec 03 §6.1): JSON bool, a number ≠ 0, or one of the strings `1`,
/// `true`, `yes`, `online`, `running` in any case. Everything else is false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => {
            let s = s.trim();
            ["1", "true", "yes", "online", "running"].iter().any(|t| s.eq_ignore_ascii_case(t))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Heartbeat, TunnelFields, Detect};
    use serde_json::json;

    #[test]
    fn server_envelope_shape() {
        let e = Envelope::from_server(
            Kind::Detect,
            "0123456789abcdef0123456789abcdef",
            "cfg_a",
            "node_b",
            Detect { tunnel_protocol: Some("wireguard".into()), awg_version: None },
        );
        let v: Value = serde_json::from_slice(&e.to_bytes().unwrap()).unwrap();
        assert_eq!(v["type"], "detect");
        assert_eq!(v["boot_id"], "");
        assert_eq!(v["session_id"], "");
        assert_eq!(v["payload"], json!({"tunnel_protocol": "wireguard", "awg_version": null}));
        let sent = v["sent_at"].as_str().unwrap();
        assert!(sent.ends_with("+00:00") && sent.len() == "2026-04-23T12:00:00.123456+00:00".len(), "{sent}");
        let _ = TunnelFields::default();
    }

    #[test]
    fn time_formats() {
        let t = DateTime::parse_from_rfc3339("2026-04-23T12:00:00.123456Z").unwrap().with_timezone(&Utc);
        assert_eq!(server_time(t), "2026-04-23T12:00:00.123456+00:00");
        assert_eq!(agent_time(t), "2026-04-23T12:00:00Z");
    }

    #[test]
    fn inbound_reads_payload_then_top_level() {
        let m = Inbound::parse(br#"{"type":"heartbeat","request_id":" r1 ","wg_online":"Running","payload":{"client_online":0,"x":null},"x":"top"}"#);
        assert!(m.well_formed);
        assert_eq!(m.request_id(), "r1");
        assert!(!m.flag("client_online", true));
        assert!(m.flag("wg_online", false));
        assert_eq!(m.text("x").as_deref(), Some("top"));
        assert!(m.flag("absent", true));
        assert!(!m.flag("absent", false));
    }

    #[test]
    fn inbound_never_fails() {
        for bad in [&b"not json"[..], b"[1,2]", b"\"s\"", b"", b"\xff\xfe", b"{\"payload\": 5}"] {
            let m = Inbound::parse(bad);
            assert_eq!(m.request_id(), "");
            assert!(m.flag("client_online", true));
            assert!(!m.flag("wg_online", false));
        }
        assert!(!Inbound::parse(b"[]").well_formed);
    }

    #[test]
    fn truthy_rules() {
        for t in [json!(true), json!(1), json!(-2), json!(0.5), json!("1"), json!("TRUE"), json!("yes"), json!("Online"), json!(" running ")] {
            assert!(truthy(&t), "{t}");
        }
        for f in [json!(false), json!(0), json!("0"), json!("no"), json!("stopped"), json!(""), json!([]), json!({}), Value::Null] {
            assert!(!truthy(&f), "{f}");
        }
    }

    #[test]
    fn typed_roundtrip() {
        let e = Envelope {
            kind: "heartbeat".into(),
            request_id: String::new(),
            config_id: "c".into(),
            node_id: "n".into(),
            boot_id: "boot-1".into(),
            session_id: "session-1".into(),
            sent_at: "2026-04-23T12:00:00Z".into(),
            payload: Heartbeat { client_online: true, wg_online: false },
        };
        let back: Envelope<Heartbeat> = Envelope::from_slice(&e.to_bytes().unwrap()).unwrap();
        assert_eq!(back, e);
        let lenient = Inbound::parse(&e.to_bytes().unwrap());
        assert!(lenient.flag("client_online", false));
    }
}
