//! WFM: a self-hosted control plane for WireGuard and AmneziaWG mesh networks.
//!
//! The server is a set of thin adapters around one service layer:
//!
//! ```text
//! HTTP (axum routes, SSE) ─┐
//! MCP                     ─┼─► service::* ─► store::* (sqlx: SQLite | PostgreSQL)
//! MQTT inbound            ─┘        ├─► broker sync, MQTT dispatch
//!                                   ├─► events bus (SSE refresh hints)
//!                                   └─► plugin runtime (wasmtime)
//! ```
//!
//! Layout: [`config`] (settings from `WFM_*`), [`error`] (codes and the envelope),
//! [`store`] (SQL), [`service`] (business rules, one transaction per write), [`http`]
//! (routes and middleware), [`events`] (SSE bus), [`state`] (`AppState`), [`validate`]
//! (422 rules), [`util`] (ids, time, randomness).

pub mod broker;
pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod mqtt;
pub mod service;
pub mod state;
pub mod store;
pub mod util;
pub mod validate;

use std::future::Future;
use std::net::SocketAddr;

pub use config::Settings;
pub use state::AppState;

/// Connects the store (applying migrations) and builds the shared state.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let db = store::Db::connect(&settings.database).await?;
    let app = AppState::new(settings, db);
    service::tools::load(&app).await?;
    Ok(app)
}

/// Serves the API on `listener` until `shutdown` resolves. Tests bind `127.0.0.1:0` and pass
/// the listener, so they never wait for start-up.
pub async fn serve(settings: Settings, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let app = build_state(settings).await?;
    serve_state(app, listener, shutdown).await
}

/// Like [`serve`], with a state built by the caller.
pub async fn serve_state(app: AppState, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let router = http::router(app.clone());
    let events = app.events.clone();
    mqtt::client::start(&app);
    let mqtt_app = app.clone();
    let shutdown = async move {
        shutdown.await;
        mqtt_app.mqtt.shutdown();
        // Ends every SSE stream so graceful shutdown does not wait on them.
        events.close();
    };
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    app.db.close().await;
    Ok(())
}
