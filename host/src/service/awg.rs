//! The stateless AmneziaWG endpoints (spec 02 §5.8), served by the `awg-params` plugin. Every
//! plugin result is checked again here with the `wfm-domain` validators before it is returned,
//! so a faulty plugin can never hand out parameters the host itself would refuse.

use serde_json::{Map, Value};
use wfm_domain::awg::{self, AwgVersion, NodeParams, SharedParams};

use super::tools::{self, Caller};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::AppState;

/// The plugin that serves these endpoints.
pub const PLUGIN_ID: &str = "awg-params";

async fn call(app: &AppState, tool: &str, input: Value) -> AppResult<Value> {
    let result = tools::call(app, &Caller::admin(), PLUGIN_ID, tool, input).await.map_err(|e| match e.code {
        // Upstream answers schema violations of these bodies with 422.
        ErrorCode::PluginInvalidInput => {
            let mut v = AppError::new(ErrorCode::ValidationError, "Field is invalid");
            v.detail = e.detail;
            v
        }
        ErrorCode::PluginNotFound => AppError::new(ErrorCode::PluginUnavailable, "The awg-params plugin is not loaded")
            .with("plugin_id", PLUGIN_ID),
        _ => e,
    })?;
    Ok(result.output)
}

fn invalid_output(what: &str, e: impl std::fmt::Display) -> AppError {
    tracing::error!(plugin = PLUGIN_ID, what, error = %e, "plugin result failed host validation");
    AppError::new(ErrorCode::PluginInvalidOutput, format!("The awg-params plugin returned invalid {what}"))
        .with("plugin_id", PLUGIN_ID)
        .with("reason", e.to_string())
}

fn shared(v: &Value) -> AppResult<SharedParams> {
    serde_json::from_value(v.clone()).map_err(|e| invalid_output("shared values", e))
}

fn node(v: &Value) -> AppResult<NodeParams> {
    serde_json::from_value(v.clone()).map_err(|e| invalid_output("node values", e))
}

fn version(v: Option<&str>) -> AppResult<AwgVersion> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(AwgVersion::RANDOM_DEFAULT),
        Some(s) => AwgVersion::parse(s).map_err(domain),
    }
}

fn domain(e: wfm_domain::DomainError) -> AppError {
    let code = ErrorCode::all().iter().copied().find(|c| c.as_str() == e.code).unwrap_or(ErrorCode::InternalError);
    let mut err = AppError::new(code, e.message);
    err.detail = e.detail;
    err
}

/// `POST /configs/awg/random`.
pub async fn random_config(app: &AppState, awg_version: Option<&str>, regenerate_key: bool) -> AppResult<Value> {
    let v = version(awg_version)?;
    let mut input = Map::new();
    input.insert("awg_version".into(), Value::String(v.as_str().into()));
    input.insert("regenerate_key".into(), Value::Bool(regenerate_key));
    let out = call(app, "random_config_params", Value::Object(input)).await?;
    awg::validate_config_params(v, &shared(&out)?).map_err(|e| invalid_output("shared values", e))?;
    Ok(out)
}

/// `POST /nodes/awg/random`.
pub async fn random_node(app: &AppState, awg_version: Option<&str>) -> AppResult<Value> {
    let v = version(awg_version)?;
    let out = call(app, "random_node_params", serde_json::json!({ "awg_version": v.as_str() })).await?;
    awg::validate_node_values(v, &node(&out)?).map_err(|e| invalid_output("node values", e))?;
    Ok(out)
}

/// `POST /configs/awg/generate`.
pub async fn generate(app: &AppState, body: Value) -> AppResult<Value> {
    let out = call(app, "generate", body.clone()).await?;
    let v = version(body.get("awg_version").and_then(Value::as_str))?;
    let s = shared(&out["config"])?;
    awg::validate_config_params(v, &s).map_err(|e| invalid_output("shared values", e))?;
    if let Some(nodes) = out["nodes"].as_object() {
        for n in nodes.values() {
            awg::validate_node_params(v, &s, &node(n)?).map_err(|e| invalid_output("node values", e))?;
        }
    }
    Ok(out)
}

/// `POST /configs/awg/convert`.
pub async fn convert(app: &AppState, body: Value) -> AppResult<Value> {
    let out = call(app, "convert", body.clone()).await?;
    let v = version(body.get("awg_version").and_then(Value::as_str))?;
    awg::validate_config_params(v, &shared(&out)?).map_err(|e| invalid_output("shared values", e))?;
    Ok(out)
}
