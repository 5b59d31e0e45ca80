//! HTTP adapter: axum router, extractors, middleware. Handlers parse input, call one service
//! function and shape the output; they hold no business rules and no SQL.
//!
//! Layout: `http/extract.rs` (envelope, JSON body, auth middleware), `http/guard.rs`
//! (Host/Origin source guard, CORS), `http/spa.rs` (console hosting and fallbacks), and one
//! file per route group.

pub mod auth;
pub mod awg;
pub mod client;
pub mod configs;
pub mod downloads;
pub mod endpoint;
pub mod internal;
pub mod keys;
pub mod mesh;
pub mod mqtt_settings;
pub mod dev;
pub mod events;
pub mod extract;
pub mod guard;
pub mod nodes;
pub mod settings;
pub mod spa;
pub mod system;
pub mod tags;
pub mod tools;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};

use crate::state::AppState;

/// Routes that need the admin session (`S`), all under `/api/v1`. Feature areas merge their
/// admin routers here.
fn admin_routes() -> Router<AppState> {
    Router::new().merge(tools::routes()).merge(awg::routes()).merge(auth::admin_routes()).merge(settings::routes()).merge(system::admin_routes()).merge(events::routes()).merge(endpoint::routes()).merge(mqtt_settings::routes())
        .merge(configs::routes())
        .merge(nodes::routes())
        .merge(tags::routes())
        .merge(keys::routes())
        .merge(downloads::admin_routes())
        .merge(mesh::routes())
}

/// Public routes under `/api/v1` (`N`, or their own token checks).
fn public_routes() -> Router<AppState> {
    Router::new().merge(auth::public_routes()).merge(system::public_routes()).merge(tools::public_routes()).merge(downloads::public_routes())
}

/// Builds the whole application router.
pub fn router(app: AppState) -> Router {
    crate::service::projections::register(&app);
    let admin = admin_routes().route_layer(from_fn_with_state(app.clone(), extract::require_admin));
    let api_v1 = Router::new().merge(public_routes()).merge(admin);

    let mut root = Router::new().nest("/api/v1", api_v1).merge(client::routes()).merge(internal::routes());
    if app.settings.enable_dev_test_api {
        root = root.nest("/api/v0", dev::routes());
    }
    let cors = guard::cors_layer(&app.settings);
    root.fallback(spa::fallback)
        .method_not_allowed_fallback(spa::method_not_allowed)
        .layer(DefaultBodyLimit::max(app.settings.max_body_bytes))
        .layer(cors)
        .layer(from_fn_with_state(app.clone(), guard::source_guard))
        .layer(from_fn(extract::catch_panics))
        .with_state(app)
}
