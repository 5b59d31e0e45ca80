//! The server's MQTT connection loop (spec 03 §9.2): full reconcile before each connect,
//! connect as the server identity, subscribe to the six upstream filters, feed messages to
//! the ingress worker; on any failure mark the status and retry after the delay. Also runs
//! the command-timeout sweeper.

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Filter, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{mpsc, watch};

use crate::broker::mosquitto::host_port;
use crate::state::AppState;

/// Starts the MQTT tasks (no-op when MQTT services are disabled).
pub fn start(app: &AppState) {
    if !app.mqtt.enabled {
        return;
    }
    let stop = app.mqtt.stop_signal();
    tokio::spawn(connection_loop(app.clone(), stop.clone()));
    tokio::spawn(crate::mqtt::dispatch::timeout_sweeper(app.clone(), stop.clone()));
    tokio::spawn(crate::service::endpoint::detect_loop(app.clone(), stop));
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>, app: &AppState) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = app.mqtt.wake.notified() => false,
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

fn system_changed(app: &AppState) {
    crate::service::refresh::system_status_changed(app);
}

fn fail(app: &AppState, msg: &str) {
    app.mqtt.set_publisher(None);
    app.mqtt.set_status(|s| {
        s.connected = false;
        s.status = "error".into();
        s.last_error = msg.into();
    });
    system_changed(app);
}

async fn connection_loop(app: AppState, mut stop: watch::Receiver<bool>) {
    app.mqtt.init_broker(&app.settings).await;
    // Ingress worker: upstream messages are applied one at a time, in arrival order.
    let (tx, mut rx) = mpsc::channel::<(String, Vec<u8>)>(8192);
    let worker_app = app.clone();
    let worker = tokio::spawn(async move {
        while let Some((topic, payload)) = rx.recv().await {
            crate::mqtt::ingress::handle(&worker_app, &topic, &payload).await;
        }
    });
    let mut attempt: u64 = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        attempt += 1;
        app.mqtt.set_status(|s| {
            s.status = if s.status == "error" { "error".into() } else { "connecting".into() };
        });
        let report = crate::service::binding::reconcile_all(&app).await;
        if report.server_users_failed > 0 {
            fail(&app, "Failed to sync MQTT server user");
            if sleep_or_stop(app.mqtt.retry_delay(), &mut stop, &app).await {
                break;
            }
            continue;
        }
        match session(&app, &tx, &mut stop, attempt).await {
            SessionEnd::Stop => break,
            SessionEnd::Failed(e) => {
                tracing::warn!(error = %e, "MQTT ingress connection loop failed");
                fail(&app, "MQTT ingress connection loop failed");
            }
            SessionEnd::Wake => {
                app.mqtt.set_publisher(None);
                continue;
            }
        }
        if sleep_or_stop(app.mqtt.retry_delay(), &mut stop, &app).await {
            break;
        }
    }
    app.mqtt.set_publisher(None);
    worker.abort();
}

enum SessionEnd {
    Stop,
    Wake,
    Failed(String),
}

async fn session(app: &AppState, tx: &mpsc::Sender<(String, Vec<u8>)>, stop: &mut watch::Receiver<bool>, attempt: u64) -> SessionEnd {
    let (host, port) = match host_port(&app.settings.mqtt_url) {
        Ok(hp) => hp,
        Err(e) => return SessionEnd::Failed(e.to_string()),
    };
    let transport = match crate::mqtt::tls::server_transport(&app.settings).await {
        Ok(t) => t,
        Err(e) => return SessionEnd::Failed(e),
    };
    let id = format!("wfm-server-{}-{attempt}", &crate::util::new_request_id()[..8]);
    let mut o = MqttOptions::new(id, host, port);
    o.set_transport(transport);
    o.set_credentials(app.settings.emqx_username.clone(), app.settings.emqx_password.expose().to_string());
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_start(true);
    o.set_connection_timeout(5);
    let (client, mut el) = AsyncClient::new(o, 1024);
    loop {
        tokio::select! {
            ev = el.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(a))) => {
                    if a.code != ConnectReturnCode::Success {
                        return SessionEnd::Failed(format!("CONNACK {:?}", a.code));
                    }
                    // WFM subscribes with QoS 1 (upstream: library default 0) so ACKs are
                    // delivered at least once.
                    let filters = wfm_mqtt_proto::topic::server_filters().into_iter().map(|f| Filter::new(f, QoS::AtLeastOnce));
                    if let Err(e) = client.subscribe_many(filters).await {
                        return SessionEnd::Failed(format!("subscribe: {e}"));
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    app.mqtt.set_publisher(Some(client.clone()));
                    app.mqtt.set_status(|s| {
                        s.connected = true;
                        s.status = "connected".into();
                        s.last_error.clear();
                        s.last_connected_at = Some(crate::util::now_iso());
                    });
                    system_changed(app);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    if tx.try_send((topic, p.payload.to_vec())).is_err() {
                        tracing::warn!("MQTT ingress queue full; message dropped");
                    }
                }
                Ok(Event::Incoming(Packet::Disconnect(d))) => return SessionEnd::Failed(format!("broker disconnect {:?}", d.reason_code)),
                Ok(_) => {}
                Err(e) => return SessionEnd::Failed(e.to_string()),
            },
            _ = app.mqtt.wake.notified() => {
                let _ = client.try_disconnect();
                return SessionEnd::Wake;
            }
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    let _ = client.try_disconnect();
                    return SessionEnd::Stop;
                }
            }
        }
    }
}
