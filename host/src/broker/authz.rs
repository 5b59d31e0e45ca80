//! The EMQX authz decision (spec 03 §9.3), served from memory.
//!
//! EMQX asks on every publish and subscribe, so the answer must not cost a database round
//! trip. The engine keeps one small record per node (type, enablement, config enablement,
//! binding state) and is kept correct by the service layer: every write that can change a
//! decision updates the affected record after commit ([`AuthzEngine::set_node`] /
//! [`AuthzEngine::remove_node`]), and a full reload ([`AuthzEngine::replace_all`]) runs at
//! start-up and on every reconcile. A decision is a hash lookup plus string compares, with no
//! allocation.

use std::collections::HashMap;
use std::sync::RwLock;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wfm_mqtt_proto::topic::{Action, node_may};

/// What the engine knows about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAuth {
    /// The node's config (its topics live under it).
    pub config_id: String,
    /// Node type is `dynamic`.
    pub dynamic: bool,
    /// Node enabled.
    pub node_enabled: bool,
    /// Config enabled.
    pub config_enabled: bool,
    /// Client state: bound at least once and not reset since.
    pub client_initialized: bool,
    /// Stored MQTT user name.
    pub mqtt_username: String,
    /// Stored MQTT client id.
    pub mqtt_client_id: String,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `{"result":"allow"}`.
    Allow,
    /// `{"result":"deny"}`.
    Deny,
}

impl Decision {
    /// Wire value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// In-memory authz state and rules.
pub struct AuthzEngine {
    server_username: String,
    key_digest: [u8; 32],
    /// False when MQTT services are disabled: every node then reads as static (denied).
    nodes_allowed: bool,
    nodes: RwLock<HashMap<String, NodeAuth>>,
}

impl std::fmt::Debug for AuthzEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzEngine").field("server_username", &self.server_username).finish_non_exhaustive()
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

impl AuthzEngine {
    /// An empty engine for the server identity and the shared key.
    pub fn new(server_username: &str, shared_key: &str, mqtt_enabled: bool) -> Self {
        AuthzEngine {
            server_username: server_username.to_string(),
            key_digest: digest(shared_key.as_bytes()),
            nodes_allowed: mqtt_enabled,
            nodes: RwLock::new(HashMap::new()),
        }
    }

    /// Constant-time check of the `x-wfm-internal-key` header. Both sides are hashed first so
    /// neither the content nor the length of the key leaks through timing.
    pub fn key_matches(&self, provided: &[u8]) -> bool {
        bool::from(digest(provided).ct_eq(&self.key_digest))
    }

    /// Replaces the whole table (start-up, reconcile).
    pub fn replace_all(&self, nodes: HashMap<String, NodeAuth>) {
        match self.nodes.write() {
            Ok(mut g) => *g = nodes,
            Err(p) => *p.into_inner() = nodes,
        }
    }

    /// Sets one node's record.
    pub fn set_node(&self, node_id: &str, auth: NodeAuth) {
        match self.nodes.write() {
            Ok(mut g) => g.insert(node_id.to_string(), auth),
            Err(p) => p.into_inner().insert(node_id.to_string(), auth),
        };
    }

    /// Forgets a node (deleted).
    pub fn remove_node(&self, node_id: &str) {
        match self.nodes.write() {
            Ok(mut g) => g.remove(node_id),
            Err(p) => p.into_inner().remove(node_id),
        };
    }

    /// Applies `f` to every record of a config (config enabled toggled).
    pub fn update_config(&self, config_id: &str, f: impl Fn(&mut NodeAuth)) {
        let mut g = match self.nodes.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for n in g.values_mut().filter(|n| n.config_id == config_id) {
            f(n);
        }
    }

    /// Drops every record of a config (config deleted).
    pub fn remove_config(&self, config_id: &str) {
        let mut g = match self.nodes.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.retain(|_, n| n.config_id != config_id);
    }

    /// A copy of one record (tests, diagnostics).
    pub fn node(&self, node_id: &str) -> Option<NodeAuth> {
        match self.nodes.read() {
            Ok(g) => g.get(node_id).cloned(),
            Err(p) => p.into_inner().get(node_id).cloned(),
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match self.nodes.read() {
            Ok(g) => g.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// True when no node is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The decision of spec 03 §9.3, first matching rule wins.
    pub fn decide(&self, username: &str, clientid: &str, topic: &str, action: Action) -> Decision {
        // 1. The server identity may do anything.
        if username == self.server_username {
            return Decision::Allow;
        }
        if !self.nodes_allowed {
            return Decision::Deny;
        }
        let guard = match self.nodes.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // 2. Unknown node (or its config is gone: records are dropped with the config).
        let Some(n) = guard.get(username) else { return Decision::Deny };
        // 3. Not dynamic, disabled, or config disabled.
        if !n.dynamic || !n.node_enabled || !n.config_enabled {
            return Decision::Deny;
        }
        // 4. Client id must be `wfm-<node_id>`.
        if clientid.strip_prefix("wfm-") != Some(username) {
            return Decision::Deny;
        }
        // 5. Binding state.
        if !n.client_initialized || n.mqtt_username != username || n.mqtt_client_id != clientid {
            return Decision::Deny;
        }
        // 6. Exact topic match against the node's own topics.
        if node_may(&n.config_id, username, topic, action) { Decision::Allow } else { Decision::Deny }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wfm_mqtt_proto::topic::{Kind, node_publish_topics, node_subscribe_topics, topic};

    const C: &str = "cfg_aaaaaaaaaaaa";
    const N: &str = "node_bbbbbbbbbbbb";
    const CID: &str = "wfm-node_bbbbbbbbbbbb";

    fn bound() -> NodeAuth {
        NodeAuth {
            config_id: C.into(),
            dynamic: true,
            node_enabled: true,
            config_enabled: true,
            client_initialized: true,
            mqtt_username: N.into(),
            mqtt_client_id: CID.into(),
        }
    }

    fn engine() -> AuthzEngine {
        let e = AuthzEngine::new("admin", "k3y", true);
        e.set_node(N, bound());
        e
    }

    fn ctrl() -> String {
        topic(C, N, Kind::Control)
    }

    #[test]
    fn rule1_server_identity_allows_everything() {
        let e = engine();
        for t in ["#", "wfm/#", "$SYS/x", "anything"] {
            assert_eq!(e.decide("admin", "whatever", t, Action::Subscribe), Decision::Allow);
            assert_eq!(e.decide("admin", "", t, Action::Publish), Decision::Allow);
        }
        // Even with MQTT services off.
        let off = AuthzEngine::new("admin", "k", false);
        assert_eq!(off.decide("admin", "x", "wfm/#", Action::Subscribe), Decision::Allow);
    }

    #[test]
    fn rule2_unknown_node_or_config_gone() {
        let e = engine();
        assert_eq!(e.decide("node_cccccccccccc", "wfm-node_cccccccccccc", &ctrl(), Action::Subscribe), Decision::Deny);
        assert_eq!(e.decide("", "", &ctrl(), Action::Subscribe), Decision::Deny);
        e.remove_config(C);
        assert_eq!(e.decide(N, CID, &ctrl(), Action::Subscribe), Decision::Deny);
        let e = engine();
        e.remove_node(N);
        assert_eq!(e.decide(N, CID, &ctrl(), Action::Subscribe), Decision::Deny);
    }

    #[test]
    fn rule3_type_and_enablement() {
        for f in [
            (|n: &mut NodeAuth| n.dynamic = false) as fn(&mut NodeAuth),
            |n| n.node_enabled = false,
            |n| n.config_enabled = false,
        ] {
            let e = engine();
            let mut n = bound();
            f(&mut n);
            e.set_node(N, n);
            assert_eq!(e.decide(N, CID, &ctrl(), Action::Subscribe), Decision::Deny);
        }
        let e = engine();
        e.update_config(C, |n| n.config_enabled = false);
        assert_eq!(e.decide(N, CID, &ctrl(), Action::Subscribe), Decision::Deny);
        e.update_config(C, |n| n.config_enabled = true);
        assert_eq!(e.decide(N, CID, &ctrl(), Action::Subscribe), Decision::Allow);
        // MQTT disabled: every node reads as static.
        let off = AuthzEngine::new("admin", "k", false);
        off.set_node(N, bound());
        assert_eq!(off.decide(N, CID, &ctrl(), Action::Subscribe), Decision::Deny);
    }

    #[test]
    fn rule4_client_id() {
        let e = engine();
        for cid in ["", "wfm-", "node_bbbbbbbbbbbb", "wfm-node_cccccccccccc", "WFM-node_bbbbbbbbbbbb", "wfm-node_bbbbbbbbbbbbx"] {
            assert_eq!(e.decide(N, cid, &ctrl(), Action::Subscribe), Decision::Deny, "{cid}");
        }
    }

    #[test]
    fn rule5_binding_state() {
        for f in [
            (|n: &mut NodeAuth| n.client_initialized = false) as fn(&mut NodeAuth),
            |n| n.mqtt_username = "someone".into(),
            |n| n.mqtt_username.clear(),
            |n| n.mqtt_client_id = "wfm-other".into(),
        ] {
            let e = engine();
            let mut n = bound();
            f(&mut n);
            e.set_node(N, n);
            assert_eq!(e.decide(N, CID, &ctrl(), Action::Subscribe), Decision::Deny);
        }
    }

    #[test]
    fn rule6_topics() {
        let e = engine();
        for t in node_subscribe_topics(C, N) {
            assert_eq!(e.decide(N, CID, &t, Action::Subscribe), Decision::Allow, "{t}");
            assert_eq!(e.decide(N, CID, &t, Action::Publish), Decision::Deny, "{t}");
        }
        for t in node_publish_topics(C, N) {
            assert_eq!(e.decide(N, CID, &t, Action::Publish), Decision::Allow, "{t}");
            assert_eq!(e.decide(N, CID, &t, Action::Subscribe), Decision::Deny, "{t}");
        }
        for t in ["wfm/#", "wfm/+", "#", "wfm/cfg_aaaaaaaaaaaa/+/control", "wfm/cfg_other/node_bbbbbbbbbbbb/control", "wfm/cfg_aaaaaaaaaaaa/node_cccccccccccc/control"] {
            assert_eq!(e.decide(N, CID, t, Action::Subscribe), Decision::Deny, "{t}");
            assert_eq!(e.decide(N, CID, t, Action::Publish), Decision::Deny, "{t}");
        }
    }

    #[test]
    fn shared_key_check() {
        let e = engine();
        assert!(e.key_matches(b"k3y"));
        assert!(!e.key_matches(b"k3"));
        assert!(!e.key_matches(b"k3y "));
        assert!(!e.key_matches(b""));
    }

    #[test]
    fn replace_all_swaps_table() {
        let e = engine();
        e.replace_all(HashMap::new());
        assert!(e.is_empty());
        assert_eq!(e.decide(N, CID, &ctrl(), Action::Subscribe), Decision::Deny);
        e.replace_all([(N.to_string(), bound())].into_iter().collect());
        assert_eq!(e.len(), 1);
        assert_eq!(e.node(N), Some(bound()));
    }
}
