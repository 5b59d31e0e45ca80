//! `wfm`: the WFM server binary.

use anyhow::Context;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("WFM_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let settings = match wfm::Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wfm: configuration error: {e}");
            std::process::exit(2);
        }
    };
    tracing::info!(settings = ?settings, "starting");
    let listener = tokio::net::TcpListener::bind(settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    wfm::serve(settings, listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
