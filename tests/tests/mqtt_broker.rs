//! Broker-level tests against a real Mosquitto with dynamic security (started per test by
//! `scripts/mosquitto-test-broker.sh`, installed with apt when missing): the dynsec backend
//! makes the broker enforce the per-node rules, and the reference agent speaks the protocol.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::{ADMIN, ADMIN_PW, Mosquitto, RawClient, Seen};
use serde_json::{Value, json};
use wfm::broker::mosquitto::DynsecClient;
use wfm::broker::reconcile::reconcile;
use wfm::broker::{BrokerSync, NodeCredential};
use wfm_agent::profile::{MqttInfo, Profile, ProfileFile, Topics, write_profile};
use wfm_agent::runner::Runner;
use wfm_agent::session::{AgentEvent, AgentOptions, run_profile};
use wfm_mqtt_proto::Envelope;
use wfm_mqtt_proto::message::{ConfigPush, Control, Detect, Info, TunnelFields};
use wfm_mqtt_proto::topic::{Kind, node_publish_topics, node_subscribe_topics, server_filters, topic};

const CFG: &str = "cfg_aaaaaaaaaaaa";

fn cred(node: &str) -> NodeCredential {
    NodeCredential {
        config_id: CFG.into(),
        node_id: node.into(),
        username: node.into(),
        password: format!("secret-{node}"),
        client_id: format!("wfm-{node}"),
    }
}

async fn dynsec(b: &Mosquitto) -> BrokerSync {
    let c = DynsecClient::start(&b.url(), ADMIN, ADMIN_PW, rumqttc::Transport::Tcp).unwrap();
    BrokerSync::Mosquitto(c)
}

#[tokio::test]
async fn dynsec_makes_the_broker_enforce_node_rules() {
    let b = Mosquitto::start();
    let sync = dynsec(&b).await;
    let report = reconcile(&sync, true, &[cred("node_aaaaaaaaaaaa"), cred("node_bbbbbbbbbbbb")]).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.node_users_synced, 2);

    // The server identity may subscribe to the six upstream filters.
    let mut server = RawClient::connect(b.port, "wfm-server-test", ADMIN, ADMIN_PW);
    assert_eq!(server.next(5).await, Some(Seen::Connected));
    for f in server_filters() {
        assert!(server.subscribe(&f).await, "server denied {f}");
    }

    // Node A: own topics yes, B's topics and wildcards no.
    let a = cred("node_aaaaaaaaaaaa");
    let mut node = RawClient::connect(b.port, &a.client_id, &a.username, &a.password);
    assert_eq!(node.next(5).await, Some(Seen::Connected));
    for t in node_subscribe_topics(CFG, &a.node_id) {
        assert!(node.subscribe(&t).await, "own topic denied: {t}");
    }
    for t in node_subscribe_topics(CFG, "node_bbbbbbbbbbbb").into_iter().chain(["wfm/#".to_string(), "wfm/+/+/control".to_string(), "#".to_string()]) {
        assert!(!node.subscribe(&t).await, "foreign subscribe granted: {t}");
    }
    // Own upstream publish reaches the server; a publish to B's topic is dropped by the broker.
    node.publish(&topic(CFG, "node_bbbbbbbbbbbb", Kind::Heartbeat), "forged").await;
    node.publish(&topic(CFG, &a.node_id, Kind::Heartbeat), "mine").await;
    let got = server.wait_for(5, |s| matches!(s, Seen::Message(..))).await;
    assert_eq!(got, Some(Seen::Message(topic(CFG, &a.node_id, Kind::Heartbeat), b"mine".to_vec())));
    assert!(server.wait_for(1, |s| matches!(s, Seen::Message(..))).await.is_none(), "forged publish delivered");
    // A node may not publish to its own downstream topics either.
    node.publish(&topic(CFG, &a.node_id, Kind::Control), "x").await;
    let mut spy = RawClient::connect(b.port, "wfm-spy", ADMIN, ADMIN_PW);
    assert_eq!(spy.next(5).await, Some(Seen::Connected));

    // Wrong client id: refused.
    let mut wrong = RawClient::connect(b.port, "wfm-node_bbbbbbbbbbbb", &a.username, &a.password);
    assert!(matches!(wrong.next(5).await, Some(Seen::Refused(_))));
    // Wrong password: refused.
    let mut badpw = RawClient::connect(b.port, &a.client_id, &a.username, "nope");
    assert!(matches!(badpw.next(5).await, Some(Seen::Refused(_))));

    // Re-running reconcile with unchanged credentials does not disturb the live session.
    let again = reconcile(&sync, true, &[cred("node_aaaaaaaaaaaa"), cred("node_bbbbbbbbbbbb")]).await;
    assert!(again.is_clean());
    assert!(node.wait_for(1, |s| matches!(s, Seen::Disconnected(_))).await.is_none(), "unchanged upsert kicked the node");

    // Reconcile without A: A is deleted, kicked, and can no longer log in.
    let r = reconcile(&sync, true, &[cred("node_bbbbbbbbbbbb")]).await;
    assert_eq!(r.node_users_deleted, 1, "{r:?}");
    assert!(node.wait_for(5, |s| matches!(s, Seen::Disconnected(_))).await.is_some(), "revoked node not kicked");
    let mut again = RawClient::connect(b.port, &a.client_id, &a.username, &a.password);
    assert!(matches!(again.next(5).await, Some(Seen::Refused(_))));
    assert_eq!(sync.list_node_users().await.unwrap(), vec!["node_bbbbbbbbbbbb".to_string()]);
    let _ = node_publish_topics(CFG, "x");
}

fn env<P: serde::Serialize>(kind: Kind, rid: &str, node: &str, p: P) -> Vec<u8> {
    Envelope::from_server(kind, rid, CFG, node, p).to_bytes().unwrap()
}

fn tunnel() -> TunnelFields {
    TunnelFields { tunnel_protocol: Some("wireguard".into()), awg_version: None, previous_tunnel_protocol: Some("wireguard".into()) }
}

async fn ack(server: &mut RawClient, kind: Kind, rid: &str) -> Value {
    let want = kind.ack().unwrap().as_str().to_string();
    let rid = rid.to_string();
    match server
        .wait_for(10, |s| match s {
            Seen::Message(t, p) => t.ends_with(&format!("/{want}")) && serde_json::from_slice::<Value>(p).map(|v| v["request_id"] == rid.as_str()).unwrap_or(false),
            _ => false,
        })
        .await
    {
        Some(Seen::Message(_, p)) => serde_json::from_slice(&p).unwrap(),
        other => panic!("no {want} for {rid}: {other:?}"),
    }
}

#[tokio::test]
async fn reference_agent_round_trip() {
    let b = Mosquitto::start();
    let sync = dynsec(&b).await;
    let node = "node_cccccccccccc";
    let c = cred(node);
    assert!(reconcile(&sync, true, std::slice::from_ref(&c)).await.is_clean());

    let mut server = RawClient::connect(b.port, "wfm-server-test", ADMIN, ADMIN_PW);
    assert_eq!(server.next(5).await, Some(Seen::Connected));
    for f in server_filters() {
        assert!(server.subscribe(&f).await);
    }

    let root = tempfile::tempdir().unwrap();
    let file = ProfileFile {
        profile: Profile {
            profile_id: format!("{CFG}-{node}"),
            server_url: String::new(),
            config_id: CFG.into(),
            config_name: "mesh".into(),
            node_id: node.into(),
            node_name: "a".into(),
            interface_name: "mesh-a".into(),
            hostname: "h".into(),
            platform: "linux".into(),
            client_version: "t".into(),
        },
        mqtt: MqttInfo {
            host: "127.0.0.1".into(),
            port: b.port,
            tls: false,
            ca_cert: None,
            username: c.username.clone(),
            password: c.password.clone(),
            client_id: c.client_id.clone(),
            topics: Topics::default(),
        },
    };
    let dir = write_profile(root.path(), &file, "").unwrap();
    let runner = Runner::dry_run(None);
    let opts = AgentOptions { runner: runner.clone(), reconnect_delay: Duration::from_millis(300), ..Default::default() };
    let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(run_profile(dir.clone(), opts, Some(etx), stop_rx));

    // online event + heartbeat after connect, all four subscriptions granted.
    let online = server.wait_for(10, |s| matches!(s, Seen::Message(t, _) if t.ends_with("/event"))).await;
    let Some(Seen::Message(_, p)) = online else { panic!("no online event") };
    let v: Value = serde_json::from_slice(&p).unwrap();
    assert_eq!(v["payload"]["event"], "online");
    assert!(v["boot_id"].as_str().unwrap().starts_with("boot-"));
    assert!(server.wait_for(5, |s| matches!(s, Seen::Message(t, _) if t.ends_with("/heartbeat"))).await.is_some());
    let granted = loop {
        match tokio::time::timeout(Duration::from_secs(5), erx.recv()).await {
            Ok(Some(AgentEvent::Subscribed(g))) => break g,
            Ok(Some(_)) => continue,
            other => panic!("no SUBACK report: {other:?}"),
        }
    };
    assert_eq!(granted.len(), 4);
    assert!(granted.iter().all(|(_, ok)| *ok), "{granted:?}");

    // Config push while down: files written, no restart.
    let text = "[Interface]\nPrivateKey = x\n";
    let push = ConfigPush {
        action: "push_config".into(),
        tunnel: tunnel(),
        interface_name: "mesh-new".into(),
        config_version: 4,
        config_sha256: wfm::util::sha256_hex(text),
        config_text: text.into(),
    };
    server.publish(&topic(CFG, node, Kind::ConfigPush), env(Kind::ConfigPush, "r1", node, &push)).await;
    let a = ack(&mut server, Kind::ConfigPush, "r1").await;
    assert_eq!(a["type"], "config/push/ack");
    assert_eq!(a["payload"]["status"], "applied", "{a}");
    assert_eq!(a["payload"]["config_sha256"], push.config_sha256);
    assert_eq!(std::fs::read_to_string(dir.join("mesh-new.conf")).unwrap(), text);
    assert!(runner.commands().is_empty(), "interface was down: nothing to restart");

    // start / stop / wg_show / detect.
    let ctl = |a: &str| Control { action: a.into(), tunnel: tunnel(), interface_name: String::new() };
    server.publish(&topic(CFG, node, Kind::Control), env(Kind::Control, "r2", node, ctl("start"))).await;
    let a = ack(&mut server, Kind::Control, "r2").await;
    assert_eq!((a["payload"]["status"].as_str(), a["payload"]["action"].as_str()), (Some("applied"), Some("start")), "{a}");
    server.publish(&topic(CFG, node, Kind::Info), env(Kind::Info, "r3", node, Info { action: "wg_show".into(), tunnel: tunnel() })).await;
    let out = server
        .wait_for(10, |s| matches!(s, Seen::Message(t, p) if t.ends_with("/event") && String::from_utf8_lossy(p).contains("command_output")))
        .await;
    let Some(Seen::Message(_, p)) = out else { panic!("no command_output") };
    let v: Value = serde_json::from_slice(&p).unwrap();
    assert_eq!(v["payload"]["request_id"], "r3");
    assert!(v["payload"]["output"].as_str().unwrap().contains("mesh-new"));
    let a = ack(&mut server, Kind::Info, "r3").await;
    assert_eq!(a["payload"]["status"], "applied");
    server.publish(&topic(CFG, node, Kind::Detect), env(Kind::Detect, "r4", node, Detect { tunnel_protocol: Some("wireguard".into()), awg_version: None })).await;
    let a = ack(&mut server, Kind::Detect, "r4").await;
    assert_eq!(a["payload"]["wg_online"], true);
    assert_eq!(a["payload"]["client_online"], true);
    // A push while up restarts the interface.
    server.publish(&topic(CFG, node, Kind::ConfigPush), env(Kind::ConfigPush, "r5", node, &push)).await;
    assert_eq!(ack(&mut server, Kind::ConfigPush, "r5").await["payload"]["status"], "applied");
    server.publish(&topic(CFG, node, Kind::Control), env(Kind::Control, "r6", node, ctl("stop"))).await;
    assert_eq!(ack(&mut server, Kind::Control, "r6").await["payload"]["status"], "applied");
    server.publish(&topic(CFG, node, Kind::Control), env(Kind::Control, "r7", node, ctl("reboot"))).await;
    let a = ack(&mut server, Kind::Control, "r7").await;
    assert_eq!(a["payload"]["status"], "failed");
    assert_eq!(a["payload"]["message"], "unsupported control action: reboot");
    // Unsupported protocol: failed ACK, nothing run.
    let bad = Control { action: "start".into(), tunnel: TunnelFields { tunnel_protocol: Some("ipsec".into()), ..Default::default() }, interface_name: String::new() };
    server.publish(&topic(CFG, node, Kind::Control), env(Kind::Control, "r8", node, bad)).await;
    assert_eq!(ack(&mut server, Kind::Control, "r8").await["payload"]["message"], "unsupported tunnel_protocol: ipsec");
    // Garbage on a command topic is dropped, the agent keeps serving.
    server.publish(&topic(CFG, node, Kind::Control), "not json").await;
    server.publish(&topic(CFG, node, Kind::Detect), env(Kind::Detect, "r9", node, Detect::default())).await;
    assert_eq!(ack(&mut server, Kind::Detect, "r9").await["payload"]["wg_online"], false);

    let dirs = dir.display().to_string();
    assert_eq!(
        runner.commands(),
        vec![
            format!("wg-quick up {dirs}/mesh-new.conf"),
            "wg".to_string(),
            format!("wg-quick down {dirs}/mesh-new.conf"),
            format!("wg-quick up {dirs}/mesh-new.conf"),
            format!("wg-quick down {dirs}/mesh-new.conf"),
        ]
    );

    // Revoking the node kicks the agent and it cannot come back.
    sync.revoke(node).await;
    let refused = loop {
        match tokio::time::timeout(Duration::from_secs(10), erx.recv()).await {
            Ok(Some(AgentEvent::Refused(r))) => break r,
            Ok(Some(_)) => continue,
            other => panic!("agent not refused after revoke: {other:?}"),
        }
    };
    assert!(!refused.is_empty());
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), agent).await.unwrap().unwrap();
    let _ = json!({});
}
