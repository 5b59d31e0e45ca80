//! Tag routes (spec 01 §7.3, spec 02 §4.3).

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::Value;

use super::extract::{ApiJson, ApiOk, ApiResult};
use crate::service::nodes::NodeView;
use crate::service::tags::{self, TagCount};
use crate::state::AppState;
use crate::validate;

/// Admin tag routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configs/{config_id}/tags", get(list).post(create))
        .route("/configs/{config_id}/tags/apply", post(apply))
        .route("/configs/{config_id}/tags/{tag_name}", delete(remove_from_config))
        .route("/nodes/{node_id}/tags", put(replace))
        .route("/nodes/{node_id}/tags/{tag_name}", delete(remove_from_node))
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

#[derive(Deserialize)]
struct ApplyBody {
    tag: String,
    #[serde(default)]
    node_ids: Vec<String>,
}

#[derive(Deserialize)]
struct TagsBody {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

async fn list(State(app): State<AppState>, Path(config_id): Path<String>) -> ApiResult<Vec<TagCount>> {
    Ok(ApiOk(tags::list(&app, &config_id).await?))
}

async fn create(State(app): State<AppState>, Path(config_id): Path<String>, ApiJson(b): ApiJson<NameBody>) -> ApiResult<TagCount> {
    validate::str_len("name", &b.name, 1, 64)?;
    Ok(ApiOk(tags::create(&app, &config_id, &b.name).await?))
}

async fn apply(State(app): State<AppState>, Path(config_id): Path<String>, ApiJson(b): ApiJson<ApplyBody>) -> ApiResult<Vec<NodeView>> {
    validate::str_len("tag", &b.tag, 1, 64)?;
    Ok(ApiOk(tags::apply(&app, &config_id, &b.tag, &b.node_ids).await?))
}

async fn remove_from_config(State(app): State<AppState>, Path((config_id, tag)): Path<(String, String)>) -> ApiResult<Value> {
    Ok(ApiOk(tags::delete(&app, &config_id, &tag).await?))
}

async fn replace(State(app): State<AppState>, Path(node_id): Path<String>, ApiJson(b): ApiJson<TagsBody>) -> ApiResult<NodeView> {
    Ok(ApiOk(tags::replace(&app, &node_id, &b.tags.unwrap_or_default()).await?))
}

async fn remove_from_node(State(app): State<AppState>, Path((node_id, tag)): Path<(String, String)>) -> ApiResult<NodeView> {
    Ok(ApiOk(tags::remove(&app, &node_id, &tag).await?))
}
