//! `GET /api/v1/events/stream`: the SSE channel (spec 04 §1).
//!
//! On connect: one `system.status.updated`, one `system.clock.sync`; then every bus event and
//! a `system.clock.sync` heartbeat. The stream ends when the bus drops this subscriber (queue
//! overflow) or closes (shutdown); the client reconnects and refetches.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;

use crate::error::AppError;
use crate::events::Event;
use crate::service::system;
use crate::state::AppState;

/// SSE route (admin).
pub fn routes() -> Router<AppState> {
    Router::new().route("/events/stream", get(stream_handler))
}

fn frame(ev: &Event) -> SseEvent {
    let data = serde_json::to_string(ev).unwrap_or_else(|_| "{}".into());
    SseEvent::default().event(ev.kind.clone()).id(ev.id.clone()).data(data)
}

struct Live {
    app: AppState,
    rx: mpsc::Receiver<Arc<Event>>,
    tick: tokio::time::Interval,
}

fn live(app: AppState, rx: mpsc::Receiver<Arc<Event>>) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let period = Duration::from_secs(app.settings.sse_heartbeat_seconds);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    stream::unfold(Live { app, rx, tick }, |mut s| async move {
        let ev = tokio::select! {
            ev = s.rx.recv() => ev?,
            _ = s.tick.tick() => Arc::new(s.app.events.make("system.clock.sync", system::clock(&s.app))),
        };
        Some((Ok(frame(&ev)), s))
    })
}

async fn stream_handler(State(app): State<AppState>) -> Result<Response, AppError> {
    // Subscribe first so nothing published while the snapshot is built is lost.
    let rx = app.events.subscribe();
    let status = system::status(&app).await?;
    let first = app.events.make("system.status.updated", status);
    let clock = app.events.make("system.clock.sync", system::clock(&app));
    let initial = stream::iter([Ok(frame(&first)), Ok(frame(&clock))]);
    let body = initial.chain(live(app, rx));
    let mut resp = Sse::new(body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}
