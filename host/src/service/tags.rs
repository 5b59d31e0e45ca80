//! Tags (spec 02 §4.3): a per-config registry plus the sorted tag list of each node. Tags are
//! labels only; they never change a rendered file, so tag writes mark nothing stale.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use wfm_domain::names;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::configs;
use crate::service::nodes::{self, NodeView, json_list};
use crate::service::refresh::{self, PublishPlan};
use crate::state::AppState;
use crate::store::nodes as node_store;
use crate::store::tags as store;
use crate::util;

/// One tag with the number of nodes (disabled too) carrying it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TagCount {
    pub name: String,
    pub count: usize,
}

/// Tag counts from the registry and the nodes' tag lists grouped as `(tags_json, nodes)`.
fn counts(registry: Vec<String>, lists: &[(String, i64)]) -> Vec<TagCount> {
    let mut m: BTreeMap<String, usize> = registry.into_iter().map(|n| (n, 0)).collect();
    for (tags_json, nodes) in lists {
        let nodes = usize::try_from(*nodes).unwrap_or(0);
        for t in json_list(tags_json) {
            *m.entry(t).or_default() += nodes;
        }
    }
    m.into_iter().map(|(name, count)| TagCount { name, count }).collect()
}

fn to_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

fn publish(app: &AppState, config_id: &str, node_ids: &[String]) {
    let mut plan = PublishPlan::config_change(config_id, node_ids, false);
    // Labels do not change what a node renders.
    plan.regenerate_config_ids.clear();
    refresh::schedule(app, plan);
}

/// `GET /configs/{id}/tags`: registry ∪ node tags, sorted.
pub async fn list(app: &AppState, config_id: &str) -> AppResult<Vec<TagCount>> {
    configs::load(app, config_id).await?;
    let registry = store::names(&app.db, config_id).await?;
    // Grouped by tag list in the database: one row per distinct list, not per node.
    let lists = node_store::tag_lists(&app.db, config_id).await?;
    Ok(counts(registry, &lists))
}

/// `POST /configs/{id}/tags`: idempotent.
pub async fn create(app: &AppState, config_id: &str, name: &str) -> AppResult<TagCount> {
    let name = names::validate_tag(name)?;
    configs::load(app, config_id).await?;
    let mut tx = app.db.begin().await?;
    store::add(&mut tx, config_id, std::slice::from_ref(&name), &util::now_iso()).await?;
    tx.commit().await?;
    publish(app, config_id, &[]);
    let lists = node_store::tag_lists(&app.db, config_id).await?;
    let count = lists
        .iter()
        .filter(|(tags_json, _)| json_list(tags_json).contains(&name))
        .map(|(_, nodes)| usize::try_from(*nodes).unwrap_or(0))
        .sum();
    Ok(TagCount { name, count })
}

/// `POST /configs/{id}/tags/apply`: adds a tag to nodes of the config.
pub async fn apply(app: &AppState, config_id: &str, tag: &str, node_ids: &[String]) -> AppResult<Vec<NodeView>> {
    let tag = names::validate_tag(tag)?;
    configs::load(app, config_id).await?;
    let mut ids: Vec<String> = Vec::new();
    for id in node_ids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !ids.iter().any(|x| x == id) {
            ids.push(id.to_string());
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = app.db.begin().await?;
    let nodes = node_store::list_for_config_tx(&mut tx, config_id).await?;
    let outside: Vec<&String> = ids.iter().filter(|id| !nodes.iter().any(|n| &&n.id == id)).collect();
    if !outside.is_empty() {
        return Err(AppError::new(ErrorCode::NodeConfigMismatch, "Some nodes are not part of this config")
            .with("node_ids", outside));
    }
    let now = util::now_iso();
    let mut out = Vec::new();
    for id in &ids {
        if let Some(n) = nodes.iter().find(|n| &n.id == id) {
            let mut row = n.clone();
            let mut tags = json_list(&row.tags_json);
            tags.push(tag.clone());
            let tags = names::normalize_tags(&tags);
            row.tags_json = to_json(&tags);
            row.updated_at = now.clone();
            node_store::set_tags(&mut tx, id, &row.tags_json, &now).await?;
            out.push(row);
        }
    }
    store::add(&mut tx, config_id, std::slice::from_ref(&tag), &now).await?;
    tx.commit().await?;
    publish(app, config_id, &ids);
    let mqtt = app.settings.enable_mqtt_services;
    Ok(out.iter().map(|r| nodes::view(r, mqtt)).collect())
}

/// `DELETE /configs/{id}/tags/{tag}`: registry row and the tag on every node.
pub async fn delete(app: &AppState, config_id: &str, tag: &str) -> AppResult<Value> {
    configs::load(app, config_id).await?;
    let tag = tag.trim().to_string();
    let mut tx = app.db.begin().await?;
    let nodes = node_store::list_for_config_tx(&mut tx, config_id).await?;
    let now = util::now_iso();
    let mut touched = Vec::new();
    for n in &nodes {
        let tags = json_list(&n.tags_json);
        if tags.contains(&tag) {
            let kept: Vec<String> = tags.into_iter().filter(|t| t != &tag).collect();
            node_store::set_tags(&mut tx, &n.id, &to_json(&kept), &now).await?;
            touched.push(n.id.clone());
        }
    }
    store::remove(&mut tx, config_id, &tag).await?;
    tx.commit().await?;
    publish(app, config_id, &touched);
    Ok(json!({"message": "Tag deleted", "removed_count": touched.len()}))
}

/// `PUT /nodes/{id}/tags`: replaces a node's tags.
pub async fn replace(app: &AppState, node_id: &str, tags: &[String]) -> AppResult<NodeView> {
    let tags = names::normalize_tags(tags);
    let mut tx = app.db.begin().await?;
    let mut row = node_store::get_tx(&mut tx, node_id).await?.ok_or_else(|| nodes::node_not_found(node_id))?;
    let now = util::now_iso();
    row.tags_json = to_json(&tags);
    row.updated_at = now.clone();
    node_store::set_tags(&mut tx, node_id, &row.tags_json, &now).await?;
    store::add(&mut tx, &row.config_id, &tags, &now).await?;
    tx.commit().await?;
    publish(app, &row.config_id, std::slice::from_ref(&row.id));
    Ok(nodes::view(&row, app.settings.enable_mqtt_services))
}

/// `DELETE /nodes/{id}/tags/{tag}`: removes one tag from a node (the registry keeps it).
pub async fn remove(app: &AppState, node_id: &str, tag: &str) -> AppResult<NodeView> {
    let tag = tag.trim();
    let mut tx = app.db.begin().await?;
    let mut row = node_store::get_tx(&mut tx, node_id).await?.ok_or_else(|| nodes::node_not_found(node_id))?;
    let now = util::now_iso();
    let kept: Vec<String> = json_list(&row.tags_json).into_iter().filter(|t| t != tag).collect();
    row.tags_json = to_json(&kept);
    row.updated_at = now.clone();
    node_store::set_tags(&mut tx, node_id, &row.tags_json, &now).await?;
    tx.commit().await?;
    publish(app, &row.config_id, std::slice::from_ref(&row.id));
    Ok(nodes::view(&row, app.settings.enable_mqtt_services))
}
