//! Topic layout (spec 03 §3): every topic is `wfm/{config_id}/{node_id}/<kind>`.

use std::fmt;

/// First segment of every WFM topic.
pub const ROOT: &str = "wfm";

/// The ten message kinds; the topic suffix and the envelope `type` are the same string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Server → agent: stage and apply a config.
    ConfigPush,
    /// Server → agent: start/stop the interface.
    Control,
    /// Server → agent: liveness probe.
    Detect,
    /// Server → agent: diagnostics (`wg_show`).
    Info,
    /// Agent → server: answer to `config/push`.
    ConfigPushAck,
    /// Agent → server: answer to `control`.
    ControlAck,
    /// Agent → server: answer to `detect`.
    DetectAck,
    /// Agent → server: answer to `info`.
    InfoAck,
    /// Agent → server: event (also the last will).
    Event,
    /// Agent → server: periodic heartbeat.
    Heartbeat,
}

impl Kind {
    /// Every kind, downstream first.
    pub const ALL: [Kind; 10] = [
        Kind::ConfigPush,
        Kind::Control,
        Kind::Detect,
        Kind::Info,
        Kind::ConfigPushAck,
        Kind::ControlAck,
        Kind::DetectAck,
        Kind::InfoAck,
        Kind::Event,
        Kind::Heartbeat,
    ];
    /// Server → agent kinds (what a node may subscribe to).
    pub const DOWNSTREAM: [Kind; 4] = [Kind::ConfigPush, Kind::Control, Kind::Detect, Kind::Info];
    /// Agent → server kinds (what a node may publish to).
    pub const UPSTREAM: [Kind; 6] =
        [Kind::ConfigPushAck, Kind::ControlAck, Kind::DetectAck, Kind::InfoAck, Kind::Event, Kind::Heartbeat];

    /// Topic suffix and envelope `type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::ConfigPush => "config/push",
            Kind::Control => "control",
            Kind::Detect => "detect",
            Kind::Info => "info",
            Kind::ConfigPushAck => "config/push/ack",
            Kind::ControlAck => "control/ack",
            Kind::DetectAck => "detect/ack",
            Kind::InfoAck => "info/ack",
            Kind::Event => "event",
            Kind::Heartbeat => "heartbeat",
        }
    }

    /// The kind for a topic suffix / envelope type, if it is one of the ten.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// True for server → agent kinds.
    pub const fn is_downstream(self) -> bool {
        matches!(self, Kind::ConfigPush | Kind::Control | Kind::Detect | Kind::Info)
    }

    /// The ACK kind answering a downstream command.
    pub const fn ack(self) -> Option<Kind> {
        match self {
            Kind::ConfigPush => Some(Kind::ConfigPushAck),
            Kind::Control => Some(Kind::ControlAck),
            Kind::Detect => Some(Kind::DetectAck),
            Kind::Info => Some(Kind::InfoAck),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client wants to do with a topic (the EMQX authz `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Publish to the topic.
    Publish,
    /// Subscribe to the topic (filter).
    Subscribe,
}

impl Action {
    /// `publish` / `subscribe`; anything else is not an action.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "publish" => Some(Action::Publish),
            "subscribe" => Some(Action::Subscribe),
            _ => None,
        }
    }

    /// Wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        }
    }
}

/// A config or node id usable inside a topic: non-empty, ASCII letters, digits, `_` and `-`
/// only. This excludes `/`, `+`, `#` and `$`, so an id can never widen an ACL.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `wfm/{config_id}/{node_id}/<kind>`.
pub fn topic(config_id: &str, node_id: &str, kind: Kind) -> String {
    format!("{ROOT}/{config_id}/{node_id}/{}", kind.as_str())
}

/// The four topics a node subscribes to.
pub fn node_subscribe_topics(config_id: &str, node_id: &str) -> Vec<String> {
    Kind::DOWNSTREAM.iter().map(|k| topic(config_id, node_id, *k)).collect()
}

/// The six topics a node publishes to.
pub fn node_publish_topics(config_id: &str, node_id: &str) -> Vec<String> {
    Kind::UPSTREAM.iter().map(|k| topic(config_id, node_id, *k)).collect()
}

/// The six filters the server subscribes to: `wfm/+/+/<upstream kind>`.
pub fn server_filters() -> Vec<String> {
    Kind::UPSTREAM.iter().map(|k| format!("{ROOT}/+/+/{}", k.as_str())).collect()
}

/// Whether a node (`config_id`, `node_id`) may perform `action` on `topic`: exact string
/// match against its own four downstream (subscribe) or six upstream (publish) topics. No
/// wildcard is ever granted. Allocation-free: this sits on the broker's hot path.
pub fn node_may(config_id: &str, node_id: &str, topic: &str, action: Action) -> bool {
    let Some(rest) = topic.strip_prefix(ROOT).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(config_id).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    let Some(suffix) = rest.strip_prefix(node_id).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    let kinds: &[Kind] = match action {
        Action::Subscribe => &Kind::DOWNSTREAM,
        Action::Publish => &Kind::UPSTREAM,
    };
    kinds.iter().any(|k| k.as_str() == suffix)
}

/// A topic split the way the server reads it: segment 2 is the config id, segment 3 the node
/// id, the rest (joined by `/`) the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRef<'a> {
    /// Segment 2.
    pub config_id: &'a str,
    /// Segment 3.
    pub node_id: &'a str,
    /// Segments 4.. joined by `/`.
    pub kind: &'a str,
}

impl<'a> TopicRef<'a> {
    /// Splits a topic; `None` for fewer than 4 segments or a first segment other than `wfm`.
    pub fn parse(topic: &'a str) -> Option<TopicRef<'a>> {
        let mut it = topic.splitn(4, '/');
        if it.next()? != ROOT {
            return None;
        }
        let config_id = it.next()?;
        let node_id = it.next()?;
        let kind = it.next()?;
        Some(TopicRef { config_id, node_id, kind })
    }

    /// The kind, when it is one of the ten known ones.
    pub fn known_kind(&self) -> Option<Kind> {
        Kind::parse(self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_spec_table() {
        assert_eq!(topic("cfg_a", "node_b", Kind::ConfigPush), "wfm/cfg_a/node_b/config/push");
        assert_eq!(topic("cfg_a", "node_b", Kind::ConfigPushAck), "wfm/cfg_a/node_b/config/push/ack");
        assert_eq!(
            node_subscribe_topics("c", "n"),
            ["wfm/c/n/config/push", "wfm/c/n/control", "wfm/c/n/detect", "wfm/c/n/info"]
        );
        assert_eq!(
            node_publish_topics("c", "n"),
            [
                "wfm/c/n/config/push/ack",
                "wfm/c/n/control/ack",
                "wfm/c/n/detect/ack",
                "wfm/c/n/info/ack",
                "wfm/c/n/event",
                "wfm/c/n/heartbeat"
            ]
        );
        assert_eq!(
            server_filters(),
            [
                "wfm/+/+/config/push/ack",
                "wfm/+/+/control/ack",
                "wfm/+/+/detect/ack",
                "wfm/+/+/info/ack",
                "wfm/+/+/event",
                "wfm/+/+/heartbeat"
            ]
        );
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(k.is_downstream(), k.ack().is_some());
        }
        assert_eq!(Kind::parse("config"), None);
    }

    #[test]
    fn node_may_is_exact_and_per_direction() {
        let (c, n) = ("cfg_aaaaaaaaaaaa", "node_bbbbbbbbbbbb");
        for t in node_subscribe_topics(c, n) {
            assert!(node_may(c, n, &t, Action::Subscribe), "{t}");
            assert!(!node_may(c, n, &t, Action::Publish), "{t}");
        }
        for t in node_publish_topics(c, n) {
            assert!(node_may(c, n, &t, Action::Publish), "{t}");
            assert!(!node_may(c, n, &t, Action::Subscribe), "{t}");
        }
        let denied = [
            "wfm/#",
            "wfm/+",
            "wfm/+/+/control",
            "#",
            "wfm/cfg_aaaaaaaaaaaa/node_bbbbbbbbbbbb/#",
            "wfm/cfg_aaaaaaaaaaaa/node_bbbbbbbbbbbb/+",
            "wfm/cfg_aaaaaaaaaaaa/node_bbbbbbbbbbbb/control/",
            "wfm/cfg_aaaaaaaaaaaa/node_bbbbbbbbbbbb",
            "wfm/cfg_aaaaaaaaaaaa/node_cccccccccccc/control",
            "wfm/cfg_other/node_bbbbbbbbbbbb/control",
            "wfm/cfg_aaaaaaaaaaaa/node_bbbbbbbbbbbbx/control",
            "WFM/cfg_aaaaaaaaaaaa/node_bbbbbbbbbbbb/control",
            "/wfm/cfg_aaaaaaaaaaaa/node_bbbbbbbbbbbb/control",
            "",
        ];
        for t in denied {
            assert!(!node_may(c, n, t, Action::Subscribe), "{t}");
            assert!(!node_may(c, n, t, Action::Publish), "{t}");
        }
    }

    #[test]
    fn parse_takes_ids_from_the_topic() {
        let t = TopicRef::parse("wfm/cfg_a/node_b/config/push/ack").unwrap();
        assert_eq!((t.config_id, t.node_id, t.kind), ("cfg_a", "node_b", "config/push/ack"));
        assert_eq!(t.known_kind(), Some(Kind::ConfigPushAck));
        assert_eq!(TopicRef::parse("wfm/a/b/whatever/x").unwrap().known_kind(), None);
        assert_eq!(TopicRef::parse("wfm/a/b"), None);
        assert_eq!(TopicRef::parse("other/a/b/event"), None);
        assert_eq!(TopicRef::parse(""), None);
    }

    #[test]
    fn ids_cannot_carry_wildcards() {
        assert!(valid_id("node_0123456789ab"));
        assert!(valid_id("cfg-x_1"));
        for bad in ["", "a/b", "+", "#", "node_#", "$SYS", "a b", "é"] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert!(!valid_id(&"a".repeat(65)));
    }

    #[test]
    fn actions() {
        assert_eq!(Action::parse("publish"), Some(Action::Publish));
        assert_eq!(Action::parse("subscribe"), Some(Action::Subscribe));
        assert_eq!(Action::parse("all"), None);
        assert_eq!(Action::Subscribe.as_str(), "subscribe");
    }
}
