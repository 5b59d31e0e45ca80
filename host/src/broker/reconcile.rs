//! Full reconcile (spec 03 §9.5): make the broker hold exactly the credentials the database
//! says are restorable. Loading those credentials is the caller's job (the service layer);
//! this part only talks to the broker, so it is tested against the EMQX fake and a real
//! Mosquitto alike.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{BrokerSync, NodeCredential};

/// Counters of one reconcile, as upstream reports them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReconcileReport {
    /// MQTT services enabled.
    pub enabled: bool,
    /// Restorable credentials found in the database.
    pub mqtt_credentials: usize,
    /// Server superuser upserted (0 or 1).
    pub server_users_synced: usize,
    /// Server superuser failed (0 or 1); the rest is then skipped.
    pub server_users_failed: usize,
    /// Node users upserted.
    pub node_users_synced: usize,
    /// Node users that failed.
    pub node_users_failed: usize,
    /// Stale node users deleted (and kicked).
    pub node_users_deleted: usize,
    /// Stale node users whose deletion failed.
    pub node_users_delete_failed: usize,
    /// The stale-user listing failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub list_failed: bool,
}

impl ReconcileReport {
    /// True when every step succeeded.
    pub fn is_clean(&self) -> bool {
        self.server_users_failed == 0 && self.node_users_failed == 0 && self.node_users_delete_failed == 0 && !self.list_failed
    }
}

/// Runs the reconcile against `broker` with the `expected` credentials.
pub async fn reconcile(broker: &BrokerSync, enabled: bool, expected: &[NodeCredential]) -> ReconcileReport {
    let mut r = ReconcileReport { enabled, mqtt_credentials: expected.len(), ..Default::default() };
    if !enabled {
        return r;
    }
    if let Err(e) = broker.upsert_server_user().await {
        tracing::warn!(error = %e, broker = broker.kind(), "reconcile: server user sync failed");
        r.server_users_failed = 1;
        return r;
    }
    r.server_users_synced = 1;
    for cred in expected {
        match broker.upsert_node(cred).await {
            Ok(()) => r.node_users_synced += 1,
            Err(e) => {
                tracing::warn!(node_id = %cred.node_id, error = %e, "reconcile: node user sync failed");
                r.node_users_failed += 1;
            }
        }
    }
    let wanted: BTreeSet<&str> = expected.iter().map(|c| c.username.as_str()).collect();
    match broker.list_node_users().await {
        Ok(users) => {
            for u in users.iter().filter(|u| !wanted.contains(u.as_str())) {
                match broker.delete_user(u).await {
                    Ok(()) => {
                        r.node_users_deleted += 1;
                        if let Err(e) = broker.kick(&wfm_mqtt_proto::client_id(u)).await {
                            tracing::warn!(user = %u, error = %e, "reconcile: kick failed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(user = %u, error = %e, "reconcile: stale user delete failed");
                        r.node_users_delete_failed += 1;
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "reconcile: listing broker users failed");
            r.list_failed = true;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::emqx::{EmqxClient, USERS_PATH};
    use crate::broker::emqx_fake::EmqxFake;

    fn cred(n: &str) -> NodeCredential {
        NodeCredential {
            config_id: "cfg_aaaaaaaaaaaa".into(),
            node_id: n.into(),
            username: n.into(),
            password: format!("pw-{n}"),
            client_id: format!("wfm-{n}"),
        }
    }

    async fn setup() -> (EmqxFake, BrokerSync, EmqxClient) {
        let fake = EmqxFake::start("admin", "public").await.unwrap();
        let client = EmqxClient::new(&fake.base_url(), "admin", "public").unwrap();
        (fake, BrokerSync::Emqx(client.clone()), client)
    }

    #[tokio::test]
    async fn create_then_update_on_409() {
        let (fake, _b, c) = setup().await;
        c.upsert_user("node_a", "one", false).await.unwrap();
        c.upsert_user("node_a", "two", false).await.unwrap();
        let calls = fake.calls();
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert_eq!((calls[0].method.as_str(), calls[0].status), ("POST", 201));
        assert_eq!(calls[0].body, serde_json::json!({"user_id": "node_a", "password": "one", "is_superuser": false}));
        assert_eq!((calls[1].method.as_str(), calls[1].status), ("POST", 409));
        assert_eq!((calls[2].method.as_str(), calls[2].path.as_str()), ("PUT", format!("{USERS_PATH}/node_a").as_str()));
        assert_eq!(calls[2].body, serde_json::json!({"password": "two", "is_superuser": false}));
        assert_eq!(fake.users()["node_a"].password, "two");
    }

    #[tokio::test]
    async fn delete_and_kick_accept_404() {
        let (fake, b, c) = setup().await;
        c.delete_user("node_missing").await.unwrap();
        c.kick("wfm-node_missing").await.unwrap();
        fake.insert_user("node_x", "p", false);
        fake.connect_session("wfm-node_x");
        let out = b.revoke("node_x").await;
        assert!(out.user_deleted && out.kicked);
        assert!(fake.users().is_empty());
        assert!(fake.sessions().is_empty());
        let paths: Vec<_> = fake.calls().iter().map(|c| (c.method.clone(), c.path.clone(), c.status)).collect();
        assert!(paths.contains(&("DELETE".into(), "/api/v5/clients/wfm-node_x".into(), 204)), "{paths:?}");
    }

    #[tokio::test]
    async fn wrong_credentials_and_down_are_errors() {
        let (fake, b, _c) = setup().await;
        let bad = EmqxClient::new(&fake.base_url(), "admin", "wrong").unwrap();
        let e = bad.upsert_user("node_a", "p", false).await.unwrap_err();
        assert_eq!(e.status, Some(401));
        fake.set_down(true);
        let e = b.upsert_node(&cred("node_a")).await.unwrap_err();
        assert_eq!(e.status, Some(503));
        let out = b.revoke("node_a").await;
        assert!(!out.user_deleted && !out.kicked);
        let unreachable = EmqxClient::new("http://127.0.0.1:9", "a", "b").unwrap();
        assert_eq!(unreachable.delete_user("x").await.unwrap_err().status, None);
    }

    #[tokio::test]
    async fn list_pages_until_short_page() {
        let (fake, _b, c) = setup().await;
        for i in 0..205 {
            fake.insert_user(&format!("node_{i:04}"), "p", false);
        }
        fake.clear_calls();
        let users = c.list_users().await.unwrap();
        assert_eq!(users.len(), 205);
        let pages: Vec<_> = fake.calls().iter().map(|c| c.path.clone()).collect();
        assert_eq!(pages.len(), 3);
        assert!(pages[2].ends_with("page=3&limit=100"), "{pages:?}");
    }

    #[tokio::test]
    async fn reconcile_converges_and_reports() {
        let (fake, b, _c) = setup().await;
        fake.insert_user("node_stale", "x", false);
        fake.insert_user("other_user", "x", false);
        fake.connect_session("wfm-node_stale");
        let expected = vec![cred("node_a"), cred("node_b")];
        let r = reconcile(&b, true, &expected).await;
        assert_eq!(
            r,
            ReconcileReport {
                enabled: true,
                mqtt_credentials: 2,
                server_users_synced: 1,
                node_users_synced: 2,
                node_users_deleted: 1,
                ..Default::default()
            }
        );
        let users = fake.users();
        assert!(users["admin"].is_superuser);
        assert_eq!(users["admin"].password, "public");
        assert_eq!(users["node_a"].password, "pw-node_a");
        assert!(!users["node_b"].is_superuser);
        assert!(!users.contains_key("node_stale"));
        assert!(users.contains_key("other_user"), "non-node users are left alone");
        assert!(fake.sessions().is_empty(), "stale session kicked");
        // Idempotent.
        let again = reconcile(&b, true, &expected).await;
        assert_eq!(again.node_users_deleted, 0);
        assert!(again.is_clean());
    }

    #[tokio::test]
    async fn reconcile_stops_when_server_user_fails_and_catches_up() {
        let (fake, b, _c) = setup().await;
        fake.set_down(true);
        let r = reconcile(&b, true, &[cred("node_a")]).await;
        assert_eq!((r.server_users_failed, r.node_users_synced), (1, 0));
        assert_eq!(fake.calls().len(), 1, "nothing after the server user failed");
        fake.set_down(false);
        let r = reconcile(&b, true, &[cred("node_a")]).await;
        assert!(r.is_clean());
        assert!(fake.users().contains_key("node_a"));
        // Disabled: nothing at all.
        fake.clear_calls();
        let r = reconcile(&b, false, &[cred("node_a")]).await;
        assert!(!r.enabled);
        assert!(fake.calls().is_empty());
    }
}
