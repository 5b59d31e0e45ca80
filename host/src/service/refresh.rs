//! Publish plans and the refresh worker (spec 04 §1.4).
//!
//! A write commits, then calls [`schedule`] with a [`PublishPlan`] naming what changed. Plans
//! are merged per config and handed to one background worker, which (1) regenerates the
//! affected nodes' desired configs and auto-pushes where the sync service wants to, (2) emits
//! the SSE events of the merged plan in the spec's order: system status, config list,
//! overviews, node workspaces, node applies, mesh workspaces (each sorted). REST writes
//! therefore return before their events; bursts of writes to one config coalesce (writes made
//! while a plan runs form the next plan), and a plan reads each config once however many of
//! its nodes it lists.
//!
//! The payloads come from a [`Projections`] implementation registered once at start-up by the
//! feature services (config list, overview, workspaces). Until one is registered only the
//! system status is emitted.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;

use crate::error::AppResult;
use crate::events::Payload;
use crate::service::system;
use crate::state::AppState;

/// A boxed future, for the object-safe [`Projections`] trait.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a write changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishPlan {
    /// Emit `config.list.updated`.
    pub refresh_configs: bool,
    /// Emit `system.status.updated`.
    pub refresh_system_status: bool,
    /// Configs whose overview changed.
    pub overview_config_ids: BTreeSet<String>,
    /// `(config_id, node_id)` whose node workspace changed.
    pub node_workspaces: BTreeSet<(String, String)>,
    /// `(config_id, node_id)` whose apply view changed.
    pub node_applies: BTreeSet<(String, String)>,
    /// `(config_id, node_id)` whose mesh workspace changed.
    pub mesh_workspaces: BTreeSet<(String, String)>,
    /// Configs whose nodes' desired configs must be regenerated before emitting.
    pub regenerate_config_ids: BTreeSet<String>,
}

impl PublishPlan {
    /// The plan of a config/node/mesh write: both flags, the overview (unless the config was
    /// deleted), and every affected node in all three node scopes; the config is regenerated.
    pub fn config_change(config_id: &str, node_ids: &[String], config_deleted: bool) -> Self {
        let mut p = PublishPlan { refresh_configs: true, refresh_system_status: true, ..Default::default() };
        if !config_deleted {
            p.overview_config_ids.insert(config_id.to_string());
            p.regenerate_config_ids.insert(config_id.to_string());
            for n in node_ids {
                p.add_node(config_id, n);
            }
        }
        p
    }

    /// Adds a node scope (workspace, apply, mesh workspace).
    pub fn add_node(&mut self, config_id: &str, node_id: &str) {
        let k = (config_id.to_string(), node_id.to_string());
        self.node_workspaces.insert(k.clone());
        self.node_applies.insert(k.clone());
        self.mesh_workspaces.insert(k);
    }

    /// Merges another plan into this one.
    pub fn merge(&mut self, other: PublishPlan) {
        self.refresh_configs |= other.refresh_configs;
        self.refresh_system_status |= other.refresh_system_status;
        self.overview_config_ids.extend(other.overview_config_ids);
        self.node_workspaces.extend(other.node_workspaces);
        self.node_applies.extend(other.node_applies);
        self.mesh_workspaces.extend(other.mesh_workspaces);
        self.regenerate_config_ids.extend(other.regenerate_config_ids);
    }

    /// True when nothing is to be done.
    pub fn is_empty(&self) -> bool {
        *self == PublishPlan::default()
    }
}

/// Payload builders provided by the feature services.
pub trait Projections: Send + Sync + 'static {
    /// Recomputes what a config's nodes need (desired configs of stale nodes) and performs the
    /// auto-push the sync service asks for.
    fn regenerate<'a>(&'a self, app: &'a AppState, config_id: &'a str) -> BoxFut<'a, AppResult<()>>;
    /// The payload builder of one plan run. It may read config-wide data (nodes, links, tags)
    /// once and reuse it for every event of the run, so a plan costs the config once plus what
    /// each listed node needs, not the config once per node. A run starts after every write
    /// it reports has committed, so what it reads is at least as new as those writes.
    fn begin<'a>(&'a self, app: &'a AppState) -> Box<dyn PlanPayloads + 'a>;
}

/// The payloads of one plan run. Each returns `None` when the subject no longer exists
/// (deleted meanwhile), which skips that event.
pub trait PlanPayloads: Send {
    /// `config.list.updated` payload `{configs: [...]}`.
    fn config_list(&mut self) -> BoxFut<'_, AppResult<Payload>>;
    /// `config.overview.updated` payload `{config_id, overview, tags}`.
    fn overview<'a>(&'a mut self, config_id: &'a str) -> BoxFut<'a, AppResult<Option<Payload>>>;
    /// `node.workspace.updated` payload.
    fn node_workspace<'a>(&'a mut self, config_id: &'a str, node_id: &'a str) -> BoxFut<'a, AppResult<Option<Payload>>>;
    /// `node.apply.updated` payload (`None` for disabled nodes).
    fn node_apply<'a>(&'a mut self, config_id: &'a str, node_id: &'a str) -> BoxFut<'a, AppResult<Option<Payload>>>;
    /// `mesh.workspace.updated` payload.
    fn mesh_workspace<'a>(&'a mut self, config_id: &'a str, node_id: &'a str) -> BoxFut<'a, AppResult<Option<Payload>>>;
}

/// Queue + registered projections; lives in `AppState`.
#[derive(Default)]
pub struct Refresher {
    pending: Mutex<PublishPlan>,
    notify: Arc<Notify>,
    projections: OnceLock<Arc<dyn Projections>>,
    started: OnceLock<()>,
    /// Plans taken and not finished yet.
    running: AtomicUsize,
}

impl Refresher {
    /// Registers the payload builders (once; later calls are ignored).
    pub fn register(&self, p: Arc<dyn Projections>) {
        let _ = self.projections.set(p);
    }

    /// The queue (a panic elsewhere while holding it leaves a plan, not a broken queue).
    fn queue(&self) -> std::sync::MutexGuard<'_, PublishPlan> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> PublishPlan {
        let mut g = self.queue();
        let plan = std::mem::take(&mut *g);
        if !plan.is_empty() {
            // Counted under the queue lock, so `idle` never sees an empty queue while a taken
            // plan is not yet counted.
            self.running.fetch_add(1, Ordering::SeqCst);
        }
        plan
    }

    fn queue_empty(&self) -> bool {
        self.queue().is_empty()
    }

    /// True when nothing is queued and no plan is running: every write scheduled so far has
    /// been regenerated and its events emitted.
    pub fn idle(&self) -> bool {
        let g = self.queue();
        g.is_empty() && self.running.load(Ordering::SeqCst) == 0
    }
}

/// Queues a full `system.status.updated` (e.g. after an MQTT connection or runtime change).
pub fn system_status_changed(app: &AppState) {
    schedule(app, PublishPlan { refresh_system_status: true, ..Default::default() });
}

/// Queues a plan for the background worker (merged with what is already queued).
pub fn schedule(app: &AppState, plan: PublishPlan) {
    if plan.is_empty() {
        return;
    }
    app.refresher.queue().merge(plan);
    if app.refresher.started.get().is_none() {
        start_worker(app);
    }
    app.refresher.notify.notify_one();
}

fn start_worker(app: &AppState) {
    if app.refresher.started.set(()).is_err() {
        return;
    }
    // The worker holds a weak reference so a dropped server (tests) does not live on.
    let weak = app.downgrade();
    tokio::spawn(async move {
        loop {
            let Some(mut app) = weak.upgrade() else { return };
            if app.refresher.queue_empty() {
                let notify = app.refresher.notify.clone();
                drop(app);
                notify.notified().await;
                continue;
            }
            // Someone is listening: let the writes of the next moment join this plan, so a
            // burst of writes costs one set of payloads (a 1000-node overview is ~2 MB and
            // ~14 ms) instead of one per write. Without a subscriber no payloads are built
            // and the plan runs at once.
            if app.events.subscriber_count() > 0 {
                drop(app);
                tokio::time::sleep(COALESCE_WINDOW).await;
                let Some(again) = weak.upgrade() else { return };
                app = again;
            }
            let plan = app.refresher.take();
            if plan.is_empty() {
                continue;
            }
            run_plan(&app, plan).await;
            app.refresher.running.fetch_sub(1, Ordering::SeqCst);
        }
    });
}

/// How long the worker lets writes accumulate into one plan while an SSE client is connected.
/// Events therefore follow their write by up to this much more.
pub const COALESCE_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs one plan now: regenerate, then emit in order. Failures are logged; a projection that
/// fails skips its event rather than stopping the rest.
pub async fn run_plan(app: &AppState, plan: PublishPlan) {
    let proj = app.refresher.projections.get().cloned();
    if let Some(p) = &proj {
        for cfg in &plan.regenerate_config_ids {
            if let Err(e) = p.regenerate(app, cfg).await {
                tracing::warn!(config_id = %cfg, error = %e, "config refresh failed");
            }
        }
    }
    // Payloads are only worth building for someone: with no SSE subscriber the plan ends
    // after regeneration (publishing would discard them anyway).
    if app.events.subscriber_count() == 0 {
        return;
    }
    if plan.refresh_system_status {
        match system::status(app).await {
            Ok(v) => app.events.publish("system.status.updated", v),
            Err(e) => tracing::warn!(error = %e, "system status for SSE failed"),
        }
    }
    let Some(p) = proj else { return };
    let mut b = p.begin(app);
    if plan.refresh_configs {
        match b.config_list().await {
            Ok(v) => app.events.publish("config.list.updated", v),
            Err(e) => tracing::warn!(error = %e, "config list for SSE failed"),
        }
    }
    for cfg in &plan.overview_config_ids {
        let r = b.overview(cfg).await;
        emit(app, "config.overview.updated", r);
    }
    for (c, n) in &plan.node_workspaces {
        let r = b.node_workspace(c, n).await;
        emit(app, "node.workspace.updated", r);
    }
    for (c, n) in &plan.node_applies {
        let r = b.node_apply(c, n).await;
        emit(app, "node.apply.updated", r);
    }
    for (c, n) in &plan.mesh_workspaces {
        let r = b.mesh_workspace(c, n).await;
        emit(app, "mesh.workspace.updated", r);
    }
}

fn emit(app: &AppState, kind: &str, r: AppResult<Option<Payload>>) {
    match r {
        Ok(Some(v)) => app.events.publish(kind, v),
        Ok(None) => {}
        Err(e) => tracing::warn!(event = kind, error = %e, "projection for SSE failed"),
    }
}

/// Groups node ids by config for callers that touch several configs.
pub fn nodes_by_config(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (c, n) in pairs {
        m.entry(c).or_default().push(n);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_merge() {
        let mut a = PublishPlan::config_change("cfg_1", &["node_a".into()], false);
        let b = PublishPlan::config_change("cfg_2", &["node_b".into()], false);
        a.merge(b);
        assert!(a.refresh_configs && a.refresh_system_status);
        assert_eq!(a.overview_config_ids.len(), 2);
        assert_eq!(a.node_applies.len(), 2);
        let d = PublishPlan::config_change("cfg_3", &["x".into()], true);
        assert!(d.overview_config_ids.is_empty() && d.node_workspaces.is_empty());
        assert!(PublishPlan::default().is_empty());
    }
}
