//! Commands to agents: build the envelope, record the control log, publish, and the sweeper
//! that turns unanswered commands into `timeout` (WFM addition: upstream leaves them pending).

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use wfm_mqtt_proto::Envelope;
use wfm_mqtt_proto::topic::{Kind, topic};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;
use crate::store::control_logs::{self, ControlLog, NewLog};

/// SSE `control.log.created` / `control.log.updated`.
pub fn log_event(app: &AppState, kind: &str, log: &ControlLog) {
    app.events.publish(kind, json!({"config_id": log.config_id, "node_id": log.node_id, "log": log}));
}

/// A command to send.
pub struct Command<'a, P: Serialize> {
    pub config_id: &'a str,
    pub node_id: &'a str,
    pub kind: Kind,
    /// Log action (`start`, `stop`, `wg_show`, `push_config`, `probe`).
    pub action: &'a str,
    pub requested_by: &'a str,
    pub payload: P,
    pub config_sha256: &'a str,
    pub config_version: i64,
}

/// Records a `pending` log row (SSE created), publishes, and on publish failure marks the row
/// failed (SSE updated) and answers `MQTT_CONTROL_UNAVAILABLE` 503. Returns the request id.
pub async fn send<P: Serialize>(app: &AppState, cmd: Command<'_, P>) -> AppResult<String> {
    let request_id = wfm_mqtt_proto::new_request_id();
    let mut tx = app.db.begin().await?;
    let log = control_logs::insert(
        &mut tx,
        &NewLog {
            request_id: &request_id,
            config_id: cmd.config_id,
            node_id: cmd.node_id,
            action: cmd.action,
            status: "pending",
            requested_by: cmd.requested_by,
            summary: "Command recorded, waiting for server-side simulated execution",
            detail: "",
            config_sha256: cmd.config_sha256,
            config_version: cmd.config_version,
            ack_at: None,
        },
    )
    .await?;
    tx.commit().await?;
    log_event(app, "control.log.created", &log);
    let body = Envelope::from_server(cmd.kind, &request_id, cmd.config_id, cmd.node_id, &cmd.payload)
        .to_bytes()
        .map_err(AppError::internal)?;
    if let Err(e) = app.mqtt.publish(topic(cmd.config_id, cmd.node_id, cmd.kind), body).await {
        let mut tx = app.db.begin().await?;
        let updated = control_logs::complete(&mut tx, &request_id, "failed", "MQTT control publish failed", Some(&e), Some(&crate::util::now_iso()), false).await?;
        tx.commit().await?;
        if let Some(l) = updated {
            log_event(app, "control.log.updated", &l);
        }
        return Err(AppError::new(ErrorCode::MqttControlUnavailable, "MQTT control channel unavailable").with("detail", e));
    }
    Ok(request_id)
}

/// Marks commands still pending after the command timeout as `timeout`.
pub async fn sweep_timeouts(app: &AppState) -> usize {
    let timeout = app.mqtt.command_timeout();
    let Ok(timeout) = chrono::Duration::from_std(timeout) else { return 0 };
    let before = crate::util::iso(crate::util::now() - timeout);
    let rows = match control_logs::pending_before(&app.db, &before).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "timeout sweep: listing pending commands failed");
            return 0;
        }
    };
    let mut n = 0;
    for r in rows {
        let summary = format!("No answer from the client within {} s", timeout.num_seconds());
        let done = async {
            let mut tx = app.db.begin().await?;
            let l = control_logs::complete(&mut tx, &r.request_id, "timeout", &summary, None, None, true).await?;
            tx.commit().await?;
            Ok::<_, crate::store::StoreError>(l)
        }
        .await;
        match done {
            Ok(Some(l)) => {
                n += 1;
                log_event(app, "control.log.updated", &l);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "timeout sweep failed"),
        }
    }
    n
}

/// Runs [`sweep_timeouts`] periodically until stopped.
pub async fn timeout_sweeper(app: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        let every = (app.mqtt.command_timeout() / 4).clamp(Duration::from_millis(200), Duration::from_secs(15));
        tokio::select! {
            _ = tokio::time::sleep(every) => { sweep_timeouts(&app).await; }
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
    }
}
