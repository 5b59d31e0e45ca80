//! Broker sync: the database is the source of truth for who may talk MQTT; this module pushes
//! that truth into the broker (spec 03 §9.4-9.5).
//!
//! Two backends behind one [`BrokerSync`]:
//! - [`emqx`]: EMQX management REST API (production, as upstream). Per-node topic rules are
//!   enforced by EMQX calling back our authz endpoint, answered by [`authz::AuthzEngine`].
//! - [`mosquitto`]: Mosquitto's dynamic-security plugin spoken over MQTT
//!   (`$CONTROL/dynamic-security/v1`). There the broker itself holds the per-node ACLs (one
//!   role per node with exactly the topics of spec 03 §3) and pins each node user to its
//!   client id, so it enforces the same rules as the EMQX authz callback.
//!
//! [`emqx_fake`] is a fake EMQX (only the documented endpoints, recording every call) for tests.
//! [`reconcile`] is the full reconcile against the expected credentials.

pub mod authz;
pub mod emqx;
pub mod emqx_fake;
pub mod mosquitto;
pub mod reconcile;

use serde::Serialize;

/// Prefix of node user names (node ids).
pub const NODE_USER_PREFIX: &str = "node_";

/// A node's broker credential as stored in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCredential {
    /// Config the node belongs to (its topics live under it).
    pub config_id: String,
    /// Node id.
    pub node_id: String,
    /// MQTT user name (the node id).
    pub username: String,
    /// Clear password (kept so the broker can be rebuilt, spec 03 §12).
    pub password: String,
    /// MQTT client id (`wfm-` + node id).
    pub client_id: String,
}

/// A broker call that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BrokerError {
    /// What went wrong, in English.
    pub message: String,
    /// HTTP status (EMQX) when there was an answer.
    pub status: Option<u16>,
    /// Response body (EMQX) or broker error text (Mosquitto).
    pub body: String,
}

impl BrokerError {
    /// An error without an HTTP answer (connection, timeout).
    pub fn unreachable(message: impl Into<String>) -> Self {
        BrokerError { message: message.into(), status: None, body: String::new() }
    }
}

/// Result of a broker call.
pub type BrokerResult<T> = Result<T, BrokerError>;

/// The broker the server manages.
#[derive(Clone)]
pub enum BrokerSync {
    /// EMQX over its management API.
    Emqx(emqx::EmqxClient),
    /// Mosquitto dynamic security over MQTT.
    Mosquitto(mosquitto::DynsecClient),
}

/// Outcome of a revoke: both steps are attempted, failures only logged (spec 03 §9.5).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RevokeOutcome {
    /// The user is gone (or never existed).
    pub user_deleted: bool,
    /// The session is gone (or there was none).
    pub kicked: bool,
}

impl BrokerSync {
    /// Backend name for status output.
    pub fn kind(&self) -> &'static str {
        match self {
            BrokerSync::Emqx(_) => "emqx",
            BrokerSync::Mosquitto(_) => "mosquitto",
        }
    }

    /// Creates or updates the server's own superuser (`WFM_EMQX_USERNAME`).
    pub async fn upsert_server_user(&self) -> BrokerResult<()> {
        match self {
            BrokerSync::Emqx(c) => c.upsert_server_user().await,
            BrokerSync::Mosquitto(c) => c.ensure_server_role().await,
        }
    }

    /// Creates or updates a node user.
    pub async fn upsert_node(&self, cred: &NodeCredential) -> BrokerResult<()> {
        match self {
            BrokerSync::Emqx(c) => c.upsert_user(&cred.username, &cred.password, false).await,
            BrokerSync::Mosquitto(c) => c.upsert_node(cred).await,
        }
    }

    /// Deletes a user; a missing user counts as deleted.
    pub async fn delete_user(&self, username: &str) -> BrokerResult<()> {
        match self {
            BrokerSync::Emqx(c) => c.delete_user(username).await,
            BrokerSync::Mosquitto(c) => c.delete_node(username).await,
        }
    }

    /// Disconnects a client session; none counts as done. Mosquitto has no kick command, but
    /// deleting or changing a client there already ends its sessions.
    pub async fn kick(&self, client_id: &str) -> BrokerResult<()> {
        match self {
            BrokerSync::Emqx(c) => c.kick(client_id).await,
            BrokerSync::Mosquitto(_) => Ok(()),
        }
    }

    /// Node user names (prefix `node_`) the broker knows.
    pub async fn list_node_users(&self) -> BrokerResult<Vec<String>> {
        match self {
            BrokerSync::Emqx(c) => {
                Ok(c.list_users().await?.into_iter().filter(|u| u.starts_with(NODE_USER_PREFIX)).collect())
            }
            BrokerSync::Mosquitto(c) => c.list_node_users().await,
        }
    }

    /// Revokes a node: delete its user, kick `wfm-<node_id>`; each failure is only logged.
    pub async fn revoke(&self, node_id: &str) -> RevokeOutcome {
        let user_deleted = match self.delete_user(node_id).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(node_id, error = %e, "broker: deleting node user failed");
                false
            }
        };
        let kicked = match self.kick(&wfm_mqtt_proto::client_id(node_id)).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(node_id, error = %e, "broker: kicking node session failed");
                false
            }
        };
        RevokeOutcome { user_deleted, kicked }
    }
}

/// Percent-encodes one URL path segment (unreserved characters kept).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_are_encoded() {
        assert_eq!(super::encode_segment("node_ab-1.x~"), "node_ab-1.x~");
        assert_eq!(super::encode_segment("a/b c%"), "a%2Fb%20c%25");
        assert_eq!(super::encode_segment("é"), "%C3%A9");
    }
}
