//! `AppState`: everything a request needs, built once at start-up and shared through `Arc`s.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Settings;
use crate::events::EventBus;
use crate::service::auth::{AuthCache, LoginThrottle};
use crate::store::Db;

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The fields behind [`AppState`].
pub struct Inner {
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
    /// MQTT control channel: authz engine, broker sync, server client.
    pub mqtt: crate::mqtt::MqttService,
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
            settings,
            db,
            events: EventBus::new(),
            auth: AuthCache::default(),
            login_throttle: throttle,
            started_at: Instant::now(),
            mqtt,
        }))
    }
}
