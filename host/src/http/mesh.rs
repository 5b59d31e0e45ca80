//! Mesh routes (spec 01 §7.4) and the config overview (§7.1): pairs, draft, workspace,
//! validation, Quick Mesh, wg-preview.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::Value;
use wfm_domain::endpoint::EndpointFamily;
use wfm_domain::peer_link::{DirectionInput, PairInput};
use wfm_domain::quick_mesh;
use wfm_domain::topology::ValidationResult;

use super::extract::{ApiJson, ApiOk, ApiResult};
use crate::error::AppError;
use crate::service::mesh::{self, LinkView};
use crate::service::projections;
use crate::service::render::{self, Preview};
use crate::state::AppState;
use crate::validate;

/// Admin mesh routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/configs/{config_id}/overview", get(overview))
        .route("/configs/{config_id}/peer-links", get(list).post(create))
        .route("/peer-links/psk/generate", post(psk))
        .route("/peer-links/{group_id}", put(update).delete(remove))
        .route("/configs/{config_id}/nodes/{node_id}/mesh-workspace", get(workspace))
        .route("/configs/{config_id}/nodes/{node_id}/peer-link-draft", get(draft))
        .route("/configs/{config_id}/nodes/{node_id}/wg-preview", get(preview))
        .route("/configs/{config_id}/mesh/validate", post(validate_topology))
        .route("/configs/{config_id}/mesh/quick-generate", post(quick_generate))
}

fn check_direction(prefix: &str, d: &DirectionInput) -> Result<(), AppError> {
    validate::not_blank(&format!("{prefix}.local_node_id"), &d.local_node_id, 1, 64)?;
    validate::not_blank(&format!("{prefix}.peer_node_id"), &d.peer_node_id, 1, 64)?;
    validate::not_blank(&format!("{prefix}.allowed_ips"), &d.allowed_ips, 1, 4096)?;
    if let Some(k) = d.persistent_keepalive {
        validate::int_range(&format!("{prefix}.persistent_keepalive"), k, 0, 65535)?;
    }
    if let Some(p) = d.endpoint_manual_port {
        validate::int_range(&format!("{prefix}.endpoint_manual_port"), p, 1, 65535)?;
    }
    Ok(())
}

fn check_pair(p: &PairInput) -> Result<(), AppError> {
    check_direction("forward", &p.forward)?;
    check_direction("reverse", &p.reverse)
}

async fn overview(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<crate::events::Payload> {
    Ok(ApiOk(projections::overview(&app, &id).await?))
}

async fn list(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Vec<LinkView>> {
    Ok(ApiOk(mesh::list(&app, &id).await?))
}

async fn create(State(app): State<AppState>, Path(id): Path<String>, ApiJson(body): ApiJson<PairInput>) -> ApiResult<Vec<LinkView>> {
    check_pair(&body)?;
    Ok(ApiOk(mesh::create(&app, &id, body).await?))
}

async fn update(State(app): State<AppState>, Path(group): Path<String>, ApiJson(body): ApiJson<PairInput>) -> ApiResult<Vec<LinkView>> {
    check_pair(&body)?;
    Ok(ApiOk(mesh::update(&app, &group, body).await?))
}

async fn remove(State(app): State<AppState>, Path(group): Path<String>) -> ApiResult<Value> {
    Ok(ApiOk(mesh::delete(&app, &group).await?))
}

async fn psk() -> ApiResult<Value> {
    Ok(ApiOk(mesh::generate_psk()))
}

async fn workspace(State(app): State<AppState>, Path((config_id, node_id)): Path<(String, String)>) -> ApiResult<Value> {
    Ok(ApiOk(mesh::workspace(&app, &config_id, &node_id).await?))
}

#[derive(Deserialize)]
struct DraftQuery {
    peer_node_id: Option<String>,
    endpoint_ref_family: Option<String>,
}

async fn draft(
    State(app): State<AppState>,
    Path((config_id, node_id)): Path<(String, String)>,
    Query(q): Query<DraftQuery>,
) -> ApiResult<Value> {
    let peer = q.peer_node_id.unwrap_or_default();
    if peer.trim().is_empty() {
        return Err(validate::errors(vec![validate::FieldError::standard(
            "missing",
            vec!["query".into(), "peer_node_id".into()],
            "is required",
        )]));
    }
    let family = match q.endpoint_ref_family.as_deref().map(str::trim) {
        None | Some("") => EndpointFamily::Ipv4,
        Some(f) => EndpointFamily::parse(f).ok_or_else(|| {
            validate::errors(vec![validate::FieldError::standard(
                "enum",
                vec!["query".into(), "endpoint_ref_family".into()],
                "value is invalid",
            )])
        })?,
    };
    Ok(ApiOk(mesh::draft(&app, &config_id, &node_id, peer.trim(), family).await?))
}

async fn preview(State(app): State<AppState>, Path((config_id, node_id)): Path<(String, String)>) -> ApiResult<Preview> {
    Ok(ApiOk(render::preview(&app, &config_id, &node_id).await?))
}

async fn validate_topology(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<ValidationResult> {
    Ok(ApiOk(mesh::validate(&app, &id).await?))
}

async fn quick_generate(State(app): State<AppState>, Path(id): Path<String>, ApiJson(body): ApiJson<quick_mesh::Request>) -> ApiResult<Value> {
    Ok(ApiOk(mesh::quick_generate(&app, &id, body).await?))
}
