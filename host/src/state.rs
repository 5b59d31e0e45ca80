//! `AppState`: everything a request needs, built once at start-up and shared through `Arc`s.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Settings;
use crate::events::EventBus;
use crate::service::auth::{AuthCache, LoginThrottle};
use crate::service::refresh::Refresher;
use crate::store::Db;

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The fields behind [`AppState`].
pub struct Inner {
    /// Loaded WebAssembly plugins (set once by `build_state`).
    pub plugins: crate::service::tools::Plugins,
    /// Parsed configuration.
    pub settings: Settings,
    /// Database pools.
    pub db: Db,
    /// SSE events bus.
    pub events: EventBus,
    /// Cached auth material (token secret, setup state).
    pub auth: AuthCache,
    /// Failed-login throttle.
    pub login_throttle: LoginThrottle,
    /// Process start.
    pub started_at: Instant,
    /// SSE publish plans and their worker.
    pub refresher: Refresher,
    /// MQTT control channel: authz engine, broker sync, server client.
    pub mqtt: crate::mqtt::MqttService,
}

/// Weak counterpart of [`AppState`].
#[derive(Clone)]
pub struct WeakAppState(std::sync::Weak<Inner>);

impl WeakAppState {
    /// The state, if the server still exists.
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(AppState)
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state from its parts.
    pub fn new(settings: Settings, db: Db) -> Self {
        let throttle = LoginThrottle::new(settings.login_max_failures, settings.login_lockout_seconds);
        let mqtt = crate::mqtt::MqttService::new(&settings);
        AppState(Arc::new(Inner {
            plugins: Default::default(),
            settings,
            db,
            events: EventBus::new(),
            auth: AuthCache::default(),
            login_throttle: throttle,
            started_at: Instant::now(),
            refresher: Refresher::default(),
            mqtt,
        }))
    }

    /// A weak handle, for background tasks that must not keep the server alive.
    pub fn downgrade(&self) -> WeakAppState {
        WeakAppState(Arc::downgrade(&self.0))
    }
}
