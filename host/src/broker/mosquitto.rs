//! Mosquitto dynamic-security client: manages node users and their ACLs by sending JSON
//! commands on `$CONTROL/dynamic-security/v1` and reading the answers on `.../response`.
//!
//! Model in the broker, built so Mosquitto enforces exactly spec 03 §9.3:
//! - one dynsec *client* per node: username = node id, password from the database, and a
//!   fixed client id `wfm-<node_id>` (the broker refuses any other client id, rule 4);
//! - one *role* per node, `wfm-node-<node_id>`, holding only `subscribeLiteral` ACLs for the
//!   node's four downstream topics and `publishClientSend` ACLs for its six upstream topics
//!   (exact strings; ids are checked to contain no wildcard characters), rule 6;
//! - the default ACL access of dynsec denies everything else;
//! - revoking deletes the client (Mosquitto then disconnects its sessions) and the role;
//! - the server identity gets role `wfm-server` (publish and subscribe `wfm/#`).
//!
//! Every dynsec change to a client or role disconnects the sessions using it, so upserts
//! compare first and only change what differs. Passwords cannot be read back; the client's
//! `textdescription` carries `wfm-pw-sha256:<hex>` of the current password so an unchanged
//! password is not re-set (and its session not kicked) on every reconcile.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use super::{BrokerError, BrokerResult, NODE_USER_PREFIX, NodeCredential};
use wfm_mqtt_proto::topic::{Kind, topic, valid_id};

/// Command topic.
pub const CONTROL_TOPIC: &str = "$CONTROL/dynamic-security/v1";
/// Response topic.
pub const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";
/// Role of the server identity.
pub const SERVER_ROLE: &str = "wfm-server";
/// Prefix of per-node roles.
pub const NODE_ROLE_PREFIX: &str = "wfm-node-";
const PW_MARK: &str = "wfm-pw-sha256:";
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for the client to reconnect after a dropped connection (the task
/// retries every second).
const RECONNECT_GRACE: Duration = Duration::from_secs(3);

/// State of the dynamic-security client's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    /// No attempt has finished yet.
    Connecting,
    /// Connected and subscribed to the answers.
    Ready,
    /// The last attempt failed (the error); the task retries every second.
    Down(String),
}

/// Role name of a node.
pub fn node_role(node_id: &str) -> String {
    format!("{NODE_ROLE_PREFIX}{node_id}")
}

/// The exact ACL set of a node role: `(acltype, topic)`.
pub fn node_acls(config_id: &str, node_id: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for k in Kind::DOWNSTREAM {
        out.insert(("subscribeLiteral".to_string(), topic(config_id, node_id, k)));
    }
    for k in Kind::UPSTREAM {
        out.insert(("publishClientSend".to_string(), topic(config_id, node_id, k)));
    }
    out
}

fn server_acls() -> BTreeSet<(String, String)> {
    [("publishClientSend", "wfm/#"), ("subscribePattern", "wfm/#")]
        .into_iter()
        .map(|(a, t)| (a.to_string(), t.to_string()))
        .collect()
}

fn pw_mark(password: &str) -> String {
    format!("{PW_MARK}{}", crate::util::sha256_hex(password))
}

/// One answer of a batch: `Ok(data)` or `Err(error text)`.
pub type DynsecAnswer = Result<Value, String>;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Vec<DynsecAnswer>>>>>;

struct Shared {
    client: AsyncClient,
    pending: Pending,
    ready: watch::Receiver<Link>,
    next: AtomicU64,
    admin_username: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connection to the broker's dynamic-security plugin, as the server identity.
#[derive(Clone)]
pub struct DynsecClient(Arc<Shared>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// `host` and `port` of an `mqtt://` URL (default port 1883).
pub fn host_port(url: &str) -> BrokerResult<(String, u16)> {
    let u = url::Url::parse(url).map_err(|e| BrokerError::unreachable(format!("bad broker URL {url:?}: {e}")))?;
    let host = u.host_str().ok_or_else(|| BrokerError::unreachable(format!("broker URL {url:?} has no host")))?;
    let default = if matches!(u.scheme(), "mqtts" | "ssl") { 8883 } else { 1883 };
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), u.port().unwrap_or(default)))
}

impl DynsecClient {
    /// Starts the connection task (it reconnects by itself). Calls wait until connected.
    /// `transport` is plain TCP or TLS ([`crate::mqtt::tls::server_transport`]).
    pub fn start(url: &str, username: &str, password: &str, transport: rumqttc::Transport) -> BrokerResult<DynsecClient> {
        let (host, port) = host_port(url)?;
        let id = format!("wfm-server-dynsec-{}", &crate::util::new_request_id()[..8]);
        let mut opts = MqttOptions::new(id, host, port);
        opts.set_transport(transport);
        opts.set_credentials(username, password);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_start(true);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (ready_tx, ready_rx) = watch::channel(Link::Connecting);
        let task = {
            let pending = pending.clone();
            let client = client.clone();
            tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            if let Err(e) = client.subscribe(RESPONSE_TOPIC, QoS::AtLeastOnce).await {
                                tracing::warn!(error = %e, "dynsec: subscribe request failed");
                            }
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let _ = ready_tx.send(Link::Ready);
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            if p.topic.as_ref() == RESPONSE_TOPIC.as_bytes() {
                                dispatch(&pending, &p.payload);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = ready_tx.send(Link::Down(e.to_string()));
                            // Whatever was in flight will not be answered on this connection.
                            lock(&pending).clear();
                            tracing::debug!(error = %e, "dynsec: connection error, retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            })
        };
        Ok(DynsecClient(Arc::new(Shared {
            client,
            pending,
            ready: ready_rx,
            next: AtomicU64::new(1),
            admin_username: username.to_string(),
            task,
        })))
    }

    /// True while connected and subscribed to the answers.
    pub fn is_ready(&self) -> bool {
        *self.0.ready.borrow() == Link::Ready
    }

    /// Sends one batch of commands and returns one answer per command, in order.
    pub async fn exec(&self, commands: Vec<Value>) -> BrokerResult<Vec<DynsecAnswer>> {
        if commands.is_empty() {
            return Ok(vec![]);
        }
        let mut ready = self.0.ready.clone();
        // Not connected yet: wait for the first attempt's outcome. Down (the last attempt
        // failed, or the broker dropped us, as Mosquitto does when our own roles change): give
        // the reconnect a short while, then fail with the recorded error instead of waiting out
        // the whole timeout.
        let first = tokio::time::timeout(TIMEOUT, ready.wait_for(|l| *l != Link::Connecting)).await.map(|r| r.map(|l| l.clone()));
        match first {
            Ok(Ok(Link::Ready)) => {}
            Ok(Ok(Link::Down(_))) => {
                let back = tokio::time::timeout(RECONNECT_GRACE, ready.wait_for(|l| *l == Link::Ready)).await.map(|r| r.is_ok());
                if back != Ok(true) {
                    let why = match &*ready.borrow() {
                        Link::Down(e) => format!(": {e}"),
                        _ => String::new(),
                    };
                    return Err(BrokerError::unreachable(format!("Mosquitto dynamic security: broker not connected{why}")));
                }
            }
            _ => return Err(BrokerError::unreachable("Mosquitto dynamic security: broker not connected")),
        }
        let batch = format!("b{}-{}", self.0.next.fetch_add(1, Ordering::Relaxed), std::process::id());
        let n = commands.len();
        let commands: Vec<Value> = commands
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                if let Some(o) = c.as_object_mut() {
                    o.insert("correlationData".into(), json!(format!("{batch}:{i}")));
                }
                c
            })
            .collect();
        let (tx, rx) = oneshot::channel();
        lock(&self.0.pending).insert(batch.clone(), tx);
        let body = json!({ "commands": commands }).to_string();
        if let Err(e) = self.0.client.publish(CONTROL_TOPIC, QoS::AtLeastOnce, false, body).await {
            lock(&self.0.pending).remove(&batch);
            return Err(BrokerError::unreachable(format!("Mosquitto dynamic security: publish failed: {e}")));
        }
        match tokio::time::timeout(TIMEOUT, rx).await {
            Ok(Ok(answers)) if answers.len() == n => Ok(answers),
            Ok(Ok(answers)) => Err(BrokerError::unreachable(format!(
                "Mosquitto dynamic security: {} answers for {n} commands",
                answers.len()
            ))),
            _ => {
                lock(&self.0.pending).remove(&batch);
                Err(BrokerError::unreachable("Mosquitto dynamic security: no answer"))
            }
        }
    }

    async fn exec_ok(&self, what: &str, commands: Vec<Value>, tolerated: &[&str]) -> BrokerResult<Vec<Value>> {
        let answers = self.exec(commands).await?;
        let mut out = Vec::with_capacity(answers.len());
        for a in answers {
            match a {
                Ok(v) => out.push(v),
                Err(e) if tolerated.iter().any(|t| e.contains(t)) => out.push(Value::Null),
                Err(e) => {
                    return Err(BrokerError { message: format!("Mosquitto {what} failed: {e}"), status: None, body: e });
                }
            }
        }
        Ok(out)
    }

    /// Reads a client (`None` when unknown).
    async fn get_client_and_role(&self, username: &str, role: &str) -> BrokerResult<(Option<Value>, Option<Value>)> {
        let a = self
            .exec(vec![
                json!({"command": "getClient", "username": username}),
                json!({"command": "getRole", "rolename": role}),
            ])
            .await?;
        let pick = |r: &DynsecAnswer, key: &str| -> BrokerResult<Option<Value>> {
            match r {
                Ok(d) => Ok(d.get(key).cloned()),
                Err(e) if e.contains("not found") => Ok(None),
                Err(e) => Err(BrokerError { message: format!("Mosquitto get {key} failed: {e}"), status: None, body: e.clone() }),
            }
        };
        let client = a.first().map(|r| pick(r, "client")).transpose()?.flatten();
        let role = a.get(1).map(|r| pick(r, "role")).transpose()?.flatten();
        Ok((client, role))
    }

    /// Commands that make role `role` hold exactly `acls`.
    fn role_commands(role: &str, current: Option<&Value>, acls: &BTreeSet<(String, String)>) -> Vec<Value> {
        let Some(current) = current else {
            let list: Vec<Value> =
                acls.iter().map(|(t, topic)| json!({"acltype": t, "topic": topic, "allow": true})).collect();
            return vec![json!({"command": "createRole", "rolename": role, "acls": list})];
        };
        let have: BTreeSet<(String, String, bool)> = current
            .get("acls")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        Some((
                            x.get("acltype")?.as_str()?.to_string(),
                            x.get("topic")?.as_str()?.to_string(),
                            x.get("allow").and_then(Value::as_bool).unwrap_or(false),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut cmds = Vec::new();
        for (t, topic, allow) in &have {
            if !allow || !acls.contains(&(t.clone(), topic.clone())) {
                cmds.push(json!({"command": "removeRoleACL", "rolename": role, "acltype": t, "topic": topic}));
            }
        }
        for (t, topic) in acls {
            if !have.contains(&(t.clone(), topic.clone(), true)) {
                cmds.push(json!({"command": "addRoleACL", "rolename": role, "acltype": t, "topic": topic, "allow": true}));
            }
        }
        cmds
    }

    fn has_role(client: &Value, role: &str) -> bool {
        client
            .get("roles")
            .and_then(Value::as_array)
            .is_some_and(|rs| rs.iter().any(|r| r.get("rolename").and_then(Value::as_str) == Some(role)))
    }

    /// Gives the server identity publish/subscribe on `wfm/#` (its dynsec admin role only
    /// covers `$CONTROL`). Changing it disconnects the server's own sessions once; they
    /// reconnect by themselves.
    pub async fn ensure_server_role(&self) -> BrokerResult<()> {
        let admin = self.0.admin_username.clone();
        let (client, role) = self.get_client_and_role(&admin, SERVER_ROLE).await?;
        let mut cmds = Self::role_commands(SERVER_ROLE, role.as_ref(), &server_acls());
        let Some(client) = client else {
            return Err(BrokerError::unreachable(format!("Mosquitto: server identity {admin:?} is not a dynsec client")));
        };
        if !Self::has_role(&client, SERVER_ROLE) {
            cmds.push(json!({"command": "addClientRole", "username": admin, "rolename": SERVER_ROLE, "priority": 10}));
        }
        if cmds.is_empty() {
            return Ok(());
        }
        match self.exec_ok("server role", cmds, &["already exists"]).await {
            Ok(_) => Ok(()),
            // Adding the role to ourselves can kick this very connection before the answer
            // arrives: check again once reconnected.
            Err(_) => {
                let (client, role) = self.get_client_and_role(&admin, SERVER_ROLE).await?;
                let ok = role.is_some() && client.as_ref().is_some_and(|c| Self::has_role(c, SERVER_ROLE));
                if ok { Ok(()) } else { Err(BrokerError::unreachable("Mosquitto: could not grant the server role")) }
            }
        }
    }

    /// Creates or updates a node user, its fixed client id and its role, changing only what
    /// differs.
    pub async fn upsert_node(&self, cred: &NodeCredential) -> BrokerResult<()> {
        if !valid_id(&cred.config_id) || !valid_id(&cred.node_id) || !valid_id(&cred.username) {
            return Err(BrokerError::unreachable(format!("refusing unsafe ids {:?}/{:?}", cred.config_id, cred.node_id)));
        }
        let role = node_role(&cred.username);
        let (client, current_role) = self.get_client_and_role(&cred.username, &role).await?;
        let mut cmds = Self::role_commands(&role, current_role.as_ref(), &node_acls(&cred.config_id, &cred.node_id));
        let mark = pw_mark(&cred.password);
        match client {
            None => cmds.push(json!({
                "command": "createClient",
                "username": cred.username,
                "password": cred.password,
                "clientid": cred.client_id,
                "textdescription": mark,
                "roles": [{"rolename": role}],
            })),
            Some(c) => {
                if c.get("textdescription").and_then(Value::as_str) != Some(mark.as_str()) {
                    cmds.push(json!({"command": "setClientPassword", "username": cred.username, "password": cred.password}));
                    cmds.push(json!({"command": "modifyClient", "username": cred.username, "textdescription": mark}));
                }
                if c.get("clientid").and_then(Value::as_str) != Some(cred.client_id.as_str()) {
                    cmds.push(json!({"command": "setClientId", "username": cred.username, "clientid": cred.client_id}));
                }
                if !Self::has_role(&c, &role) {
                    cmds.push(json!({"command": "addClientRole", "username": cred.username, "rolename": role}));
                }
            }
        }
        self.exec_ok("node user sync", cmds, &[]).await.map(|_| ())
    }

    /// Deletes a node user and its role (which disconnects its sessions); missing ones count
    /// as deleted.
    pub async fn delete_node(&self, username: &str) -> BrokerResult<()> {
        self.exec_ok(
            "node user delete",
            vec![
                json!({"command": "deleteClient", "username": username}),
                json!({"command": "deleteRole", "rolename": node_role(username)}),
            ],
            &["not found"],
        )
        .await
        .map(|_| ())
    }

    /// Node users (clients named `node_*`, and orphan `wfm-node-*` roles by their node id).
    pub async fn list_node_users(&self) -> BrokerResult<Vec<String>> {
        let a = self
            .exec_ok(
                "list",
                vec![
                    json!({"command": "listClients", "verbose": false, "count": -1, "offset": 0}),
                    json!({"command": "listRoles", "verbose": false, "count": -1, "offset": 0}),
                ],
                &[],
            )
            .await?;
        let names = |v: Option<&Value>, key: &str| -> Vec<String> {
            v.and_then(|d| d.get(key))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let mut out: BTreeSet<String> =
            names(a.first(), "clients").into_iter().filter(|u| u.starts_with(NODE_USER_PREFIX)).collect();
        for r in names(a.get(1), "roles") {
            if let Some(n) = r.strip_prefix(NODE_ROLE_PREFIX) {
                out.insert(n.to_string());
            }
        }
        Ok(out.into_iter().collect())
    }
}

fn dispatch(pending: &Pending, payload: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(payload) else {
        tracing::warn!("dynsec: unreadable response");
        return;
    };
    let Some(responses) = v.get("responses").and_then(Value::as_array) else { return };
    let batch = responses
        .iter()
        .find_map(|r| r.get("correlationData").and_then(Value::as_str))
        .and_then(|c| c.split_once(':').map(|(b, _)| b.to_string()));
    let Some(batch) = batch else { return };
    let answers: Vec<DynsecAnswer> = responses
        .iter()
        .map(|r| match r.get("error").and_then(Value::as_str) {
            Some(e) => Err(e.to_string()),
            None => Ok(r.get("data").cloned().unwrap_or(Value::Null)),
        })
        .collect();
    if let Some(tx) = lock(pending).remove(&batch) {
        let _ = tx.send(answers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_acl_set_is_exactly_the_ten_topics() {
        let acls = node_acls("cfg_a", "node_b");
        assert_eq!(acls.len(), 10);
        assert_eq!(acls.iter().filter(|(t, _)| t == "subscribeLiteral").count(), 4);
        assert!(acls.contains(&("publishClientSend".into(), "wfm/cfg_a/node_b/heartbeat".into())));
        assert!(acls.iter().all(|(_, t)| !t.contains('+') && !t.contains('#')));
    }

    #[test]
    fn role_diff() {
        let want = node_acls("c", "n");
        let create = DynsecClient::role_commands("r", None, &want);
        assert_eq!(create.len(), 1);
        assert_eq!(create[0]["command"], "createRole");
        let current = json!({"acls": want.iter().map(|(t, p)| json!({"acltype": t, "topic": p, "allow": true})).collect::<Vec<_>>()});
        assert!(DynsecClient::role_commands("r", Some(&current), &want).is_empty());
        let mut stale = current.clone();
        stale["acls"].as_array_mut().unwrap().push(json!({"acltype": "subscribePattern", "topic": "wfm/#", "allow": true}));
        let fix = DynsecClient::role_commands("r", Some(&stale), &want);
        assert_eq!(fix, vec![json!({"command": "removeRoleACL", "rolename": "r", "acltype": "subscribePattern", "topic": "wfm/#"})]);
    }

    #[test]
    fn urls() {
        assert_eq!(host_port("mqtt://127.0.0.1:1999").unwrap(), ("127.0.0.1".into(), 1999));
        assert_eq!(host_port("mqtt://emqx").unwrap(), ("emqx".into(), 1883));
        assert_eq!(host_port("mqtts://emqx").unwrap(), ("emqx".into(), 8883));
        assert!(host_port("nope").is_err());
    }
}
