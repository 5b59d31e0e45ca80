//! The one error type of the service layer and its mapping to the HTTP envelope.
//!
//! Every failure a user can see carries a stable upper-snake `code` (spec 01 §11) and an
//! HTTP status chosen here, once. Routes, MCP tools and MQTT handlers all return `AppError`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:expr)),* $(,)?) => {
        /// Stable error codes of the API (spec 01 §11 plus WFM additions).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $(#[allow(missing_docs)] $variant),* }

        impl ErrorCode {
            /// The wire string, e.g. `CONFIG_NOT_FOUND`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code),* }
            }
            /// Default HTTP status.
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => $status),* }
            }
            /// Every code, for documentation and tests.
            pub fn all() -> &'static [ErrorCode] {
                &[$(ErrorCode::$variant),*]
            }
            /// The code with this wire string (how `wfm-domain` errors are mapped).
            pub fn from_code_str(code: &str) -> Option<ErrorCode> {
                match code { $($code => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

use StatusCode as S;

error_codes! {
    // General
    ValidationError => ("VALIDATION_ERROR", S::UNPROCESSABLE_ENTITY),
    NotFound => ("NOT_FOUND", S::NOT_FOUND),
    MethodNotAllowed => ("METHOD_NOT_ALLOWED", S::METHOD_NOT_ALLOWED),
    PayloadTooLarge => ("PAYLOAD_TOO_LARGE", S::PAYLOAD_TOO_LARGE),
    UnsupportedMediaType => ("UNSUPPORTED_MEDIA_TYPE", S::UNSUPPORTED_MEDIA_TYPE),
    InternalError => ("INTERNAL_ERROR", S::INTERNAL_SERVER_ERROR),
    ServiceUnavailable => ("SERVICE_UNAVAILABLE", S::SERVICE_UNAVAILABLE),
    NotImplemented => ("NOT_IMPLEMENTED", S::NOT_IMPLEMENTED),
    PublicHostRejected => ("PUBLIC_HOST_REJECTED", S::FORBIDDEN),
    PublicOriginRejected => ("PUBLIC_ORIGIN_REJECTED", S::FORBIDDEN),
    // Auth
    AuthSetupRequired => ("AUTH_SETUP_REQUIRED", S::PRECONDITION_REQUIRED),
    AuthAlreadyInitialized => ("AUTH_ALREADY_INITIALIZED", S::CONFLICT),
    AuthRequired => ("AUTH_REQUIRED", S::UNAUTHORIZED),
    AuthFailed => ("AUTH_FAILED", S::UNAUTHORIZED),
    AuthRateLimited => ("AUTH_RATE_LIMITED", S::TOO_MANY_REQUESTS),
    AdminPasswordInvalid => ("ADMIN_PASSWORD_INVALID", S::UNAUTHORIZED),
    InvalidToken => ("INVALID_TOKEN", S::UNAUTHORIZED),
    TokenExpired => ("TOKEN_EXPIRED", S::UNAUTHORIZED),
    PasswordUnchanged => ("PASSWORD_UNCHANGED", S::BAD_REQUEST),
    // Downloads / artifacts
    DownloadTokenRequired => ("DOWNLOAD_TOKEN_REQUIRED", S::UNAUTHORIZED),
    InvalidDownloadToken => ("INVALID_DOWNLOAD_TOKEN", S::UNAUTHORIZED),
    InvalidDownloadResource => ("INVALID_DOWNLOAD_RESOURCE", S::BAD_REQUEST),
    DownloadTokenScopeMismatch => ("DOWNLOAD_TOKEN_SCOPE_MISMATCH", S::FORBIDDEN),
    ClientArtifactNotFound => ("CLIENT_ARTIFACT_NOT_FOUND", S::NOT_FOUND),
    GithubReleaseAssetNotFound => ("GITHUB_RELEASE_ASSET_NOT_FOUND", S::NOT_FOUND),
    GithubReleaseDownloadFailed => ("GITHUB_RELEASE_DOWNLOAD_FAILED", S::BAD_GATEWAY),
    ConfigBulkPackageNotFound => ("CONFIG_BULK_PACKAGE_NOT_FOUND", S::NOT_FOUND),
    ConfigBulkEmptySelection => ("CONFIG_BULK_EMPTY_SELECTION", S::BAD_REQUEST),
    ConfigBulkNodeNotReady => ("CONFIG_BULK_NODE_NOT_READY", S::CONFLICT),
    InvalidDownloadSource => ("INVALID_DOWNLOAD_SOURCE", S::BAD_REQUEST),
    InvalidClientSystem => ("INVALID_CLIENT_SYSTEM", S::BAD_REQUEST),
    InvalidClientArch => ("INVALID_CLIENT_ARCH", S::BAD_REQUEST),
    ClientSourceNotFound => ("CLIENT_SOURCE_NOT_FOUND", S::INTERNAL_SERVER_ERROR),
    GoToolchainNotFound => ("GO_TOOLCHAIN_NOT_FOUND", S::INTERNAL_SERVER_ERROR),
    ClientBuildTimeout => ("CLIENT_BUILD_TIMEOUT", S::INTERNAL_SERVER_ERROR),
    ClientBuildFailed => ("CLIENT_BUILD_FAILED", S::INTERNAL_SERVER_ERROR),
    // Configs, nodes, mesh, sync
    ConfigNotFound => ("CONFIG_NOT_FOUND", S::NOT_FOUND),
    ConfigNameExists => ("CONFIG_NAME_EXISTS", S::CONFLICT),
    InvalidConfigName => ("INVALID_CONFIG_NAME", S::BAD_REQUEST),
    InvalidSubnet => ("INVALID_SUBNET", S::BAD_REQUEST),
    NodeNotFound => ("NODE_NOT_FOUND", S::NOT_FOUND),
    NodeConfigMismatch => ("NODE_CONFIG_MISMATCH", S::BAD_REQUEST),
    NodeDisabled => ("NODE_DISABLED", S::CONFLICT),
    InvalidNodeName => ("INVALID_NODE_NAME", S::BAD_REQUEST),
    InvalidVirtualIp => ("INVALID_VIRTUAL_IP", S::BAD_REQUEST),
    IpPoolExhausted => ("IP_POOL_EXHAUSTED", S::BAD_REQUEST),
    InvalidTag => ("INVALID_TAG", S::BAD_REQUEST),
    InvalidKey => ("INVALID_KEY", S::BAD_REQUEST),
    InvalidPeerLink => ("INVALID_PEER_LINK", S::BAD_REQUEST),
    PeerLinkNotFound => ("PEER_LINK_NOT_FOUND", S::NOT_FOUND),
    InvalidAllowedIps => ("INVALID_ALLOWED_IPS", S::BAD_REQUEST),
    InvalidEndpoint => ("INVALID_ENDPOINT", S::BAD_REQUEST),
    TopologyInvalid => ("TOPOLOGY_INVALID", S::CONFLICT),
    NoStagedConfig => ("NO_STAGED_CONFIG", S::CONFLICT),
    ControlLogNotFound => ("CONTROL_LOG_NOT_FOUND", S::NOT_FOUND),
    // Quick Mesh
    InvalidQuickMeshMode => ("INVALID_QUICK_MESH_MODE", S::BAD_REQUEST),
    InvalidEndpointFamily => ("INVALID_ENDPOINT_FAMILY", S::BAD_REQUEST),
    QuickMeshNotEnoughNodes => ("QUICK_MESH_NOT_ENOUGH_NODES", S::BAD_REQUEST),
    QuickMeshHubRequired => ("QUICK_MESH_HUB_REQUIRED", S::BAD_REQUEST),
    QuickMeshGatewayRequired => ("QUICK_MESH_GATEWAY_REQUIRED", S::BAD_REQUEST),
    QuickMeshLeafInvalid => ("QUICK_MESH_LEAF_INVALID", S::BAD_REQUEST),
    QuickMeshNodeRoleConflict => ("QUICK_MESH_NODE_ROLE_CONFLICT", S::BAD_REQUEST),
    QuickMeshLeafGatewayInvalid => ("QUICK_MESH_LEAF_GATEWAY_INVALID", S::BAD_REQUEST),
    QuickMeshNodeUnassigned => ("QUICK_MESH_NODE_UNASSIGNED", S::BAD_REQUEST),
    QuickMeshVirtualIpRequired => ("QUICK_MESH_VIRTUAL_IP_REQUIRED", S::BAD_REQUEST),
    QuickMeshHubEndpointRequired => ("QUICK_MESH_HUB_ENDPOINT_REQUIRED", S::BAD_REQUEST),
    QuickMeshEndpointRequired => ("QUICK_MESH_ENDPOINT_REQUIRED", S::BAD_REQUEST),
    QuickMeshGatewayEndpointRequired => ("QUICK_MESH_GATEWAY_ENDPOINT_REQUIRED", S::BAD_REQUEST),
    // AmneziaWG
    InvalidTunnelProtocol => ("INVALID_TUNNEL_PROTOCOL", S::BAD_REQUEST),
    InvalidAwgParameter => ("INVALID_AWG_PARAMETER", S::BAD_REQUEST),
    InvalidAwgVersion => ("INVALID_AWG_VERSION", S::BAD_REQUEST),
    InvalidAwgHRange => ("INVALID_AWG_H_RANGE", S::BAD_REQUEST),
    InvalidAwgJRange => ("INVALID_AWG_J_RANGE", S::BAD_REQUEST),
    // MQTT, client binding
    MqttDisabled => ("MQTT_DISABLED", S::CONFLICT),
    MqttTlsCaNotReady => ("MQTT_TLS_CA_NOT_READY", S::CONFLICT),
    MqttControlUnavailable => ("MQTT_CONTROL_UNAVAILABLE", S::SERVICE_UNAVAILABLE),
    InvalidAction => ("INVALID_ACTION", S::BAD_REQUEST),
    ClientBindStaticNode => ("CLIENT_BIND_STATIC_NODE", S::BAD_REQUEST),
    ClientBindTokenInvalid => ("CLIENT_BIND_TOKEN_INVALID", S::UNAUTHORIZED),
    ClientBindTokenExpired => ("CLIENT_BIND_TOKEN_EXPIRED", S::UNAUTHORIZED),
    ClientBindTokenUsed => ("CLIENT_BIND_TOKEN_USED", S::CONFLICT),
    ClientBindNotAllowed => ("CLIENT_BIND_NOT_ALLOWED", S::FORBIDDEN),
    EmqxUserSyncFailed => ("EMQX_USER_SYNC_FAILED", S::BAD_GATEWAY),
    EmqxUserDeleteFailed => ("EMQX_USER_DELETE_FAILED", S::BAD_GATEWAY),
    EmqxClientDisconnectFailed => ("EMQX_CLIENT_DISCONNECT_FAILED", S::BAD_GATEWAY),
    // Port forwarding
    PortForwardSameNode => ("PORT_FORWARD_SAME_NODE", S::BAD_REQUEST),
    PortForwardToPlatformInvalid => ("PORT_FORWARD_TO_PLATFORM_INVALID", S::BAD_REQUEST),
    PortForwardProtocolInvalid => ("PORT_FORWARD_PROTOCOL_INVALID", S::BAD_REQUEST),
    PortForwardNodeInvalid => ("PORT_FORWARD_NODE_INVALID", S::BAD_REQUEST),
    PortForwardVirtualIpRequired => ("PORT_FORWARD_VIRTUAL_IP_REQUIRED", S::BAD_REQUEST),
    PortForwardPortInvalid => ("PORT_FORWARD_PORT_INVALID", S::BAD_REQUEST),
    PortForwardIpv4Required => ("PORT_FORWARD_IPV4_REQUIRED", S::BAD_REQUEST),
    PortForwardToPortInUse => ("PORT_FORWARD_TO_PORT_IN_USE", S::CONFLICT),
    PortForwardNotFound => ("PORT_FORWARD_NOT_FOUND", S::NOT_FOUND),
    // Snapshots
    SnapshotNotFound => ("SNAPSHOT_NOT_FOUND", S::NOT_FOUND),
    SnapshotInvalidArchive => ("SNAPSHOT_INVALID_ARCHIVE", S::BAD_REQUEST),
    SnapshotPasswordInvalid => ("SNAPSHOT_PASSWORD_INVALID", S::UNAUTHORIZED),
    SnapshotImportFailed => ("SNAPSHOT_IMPORT_FAILED", S::INTERNAL_SERVER_ERROR),
    SnapshotRestoreUnsafePath => ("SNAPSHOT_RESTORE_UNSAFE_PATH", S::INTERNAL_SERVER_ERROR),
    // MCP
    McpTokenNameRequired => ("MCP_TOKEN_NAME_REQUIRED", S::BAD_REQUEST),
    McpTokenPermissionInvalid => ("MCP_TOKEN_PERMISSION_INVALID", S::BAD_REQUEST),
    McpTokenExpiryInvalid => ("MCP_TOKEN_EXPIRY_INVALID", S::BAD_REQUEST),
    McpTokenNotFound => ("MCP_TOKEN_NOT_FOUND", S::NOT_FOUND),
    McpAuditRangeInvalid => ("MCP_AUDIT_RANGE_INVALID", S::BAD_REQUEST),
    // Plugins (WFM)
    PluginNotFound => ("PLUGIN_NOT_FOUND", S::NOT_FOUND),
    PluginToolNotFound => ("PLUGIN_TOOL_NOT_FOUND", S::NOT_FOUND),
    PluginUnavailable => ("PLUGIN_UNAVAILABLE", S::SERVICE_UNAVAILABLE),
    PluginInvalidInput => ("PLUGIN_INVALID_INPUT", S::BAD_REQUEST),
    PluginToolFailed => ("PLUGIN_TOOL_FAILED", S::BAD_REQUEST),
    PluginDenied => ("PLUGIN_DENIED", S::FORBIDDEN),
    PluginTimeout => ("PLUGIN_TIMEOUT", S::GATEWAY_TIMEOUT),
    PluginMemoryExceeded => ("PLUGIN_MEMORY_EXCEEDED", S::INSUFFICIENT_STORAGE),
    PluginOutputTooLarge => ("PLUGIN_OUTPUT_TOO_LARGE", S::BAD_GATEWAY),
    PluginTrapped => ("PLUGIN_TRAPPED", S::BAD_GATEWAY),
    PluginCapabilityDenied => ("PLUGIN_CAPABILITY_DENIED", S::BAD_GATEWAY),
    PluginInvalidOutput => ("PLUGIN_INVALID_OUTPUT", S::BAD_GATEWAY),
}

/// A failure with a stable code, an English message and a detail object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct AppError {
    /// Stable code.
    pub code: ErrorCode,
    /// English message for debugging (the UI localises by code).
    pub message: String,
    /// Always an object.
    pub detail: Map<String, Value>,
    /// Overrides the code's default status where the spec uses another one for the same code
    /// (e.g. `NODE_DISABLED` is 400 on pair creation).
    pub status: Option<StatusCode>,
    /// `Retry-After` seconds, for throttling answers.
    pub retry_after: Option<u64>,
}

/// Result alias for the service layer.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// A new error with an empty detail.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), detail: Map::new(), status: None, retry_after: None }
    }

    /// Adds one `detail` entry.
    pub fn with(mut self, key: &str, value: impl serde::Serialize) -> Self {
        self.detail.insert(key.to_string(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }

    /// Overrides the HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// An internal failure: the cause is logged, the caller sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::InternalError, "Internal server error")
    }

    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.code.status())
    }

    /// The `error` object of the envelope.
    pub fn body(&self) -> Value {
        json!({
            "success": false,
            "error": { "code": self.code.as_str(), "message": self.message, "detail": self.detail }
        })
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::NotFound => AppError::new(ErrorCode::NotFound, "Not found"),
            crate::store::StoreError::Conflict(m) => AppError::internal(format!("unmapped conflict: {m}")),
            crate::store::StoreError::Other(m) => AppError::internal(m),
        }
    }
}

impl From<wfm_domain::DomainError> for AppError {
    fn from(e: wfm_domain::DomainError) -> Self {
        match ErrorCode::from_code_str(e.code) {
            Some(code) => AppError { code, message: e.message, detail: e.detail, status: None, retry_after: None },
            // A domain code missing from the catalogue is a bug on our side, not the caller's.
            None => AppError::internal(format!("unmapped domain error {}: {}", e.code, e.message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_codes_map_to_catalogue_codes() {
        use wfm_domain::error::codes;
        for c in [
            codes::INVALID_AWG_PARAMETER,
            codes::INVALID_AWG_H_RANGE,
            codes::INVALID_AWG_J_RANGE,
            codes::INVALID_AWG_VERSION,
            codes::INVALID_TUNNEL_PROTOCOL,
            codes::INVALID_CONFIG_NAME,
            codes::INVALID_NODE_NAME,
            codes::INVALID_TAG,
            codes::INVALID_SUBNET,
            codes::INVALID_VIRTUAL_IP,
            codes::IP_POOL_EXHAUSTED,
            codes::INVALID_KEY,
            codes::INTERNAL_ERROR,
        ] {
            assert_eq!(ErrorCode::from_code_str(c).map(ErrorCode::as_str), Some(c));
        }
        let e: AppError = wfm_domain::DomainError::new(codes::INVALID_AWG_H_RANGE, "H1 bad").with("field", "awg_h1").into();
        assert_eq!((e.code, e.status().as_u16()), (ErrorCode::InvalidAwgHRange, 400));
        assert_eq!(e.detail["field"], "awg_h1");
        assert_eq!(ErrorCode::from_code_str("NOPE"), None);
    }

    #[test]
    fn codes_are_unique_upper_snake() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::all() {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate {s}");
            assert!(s.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_' || ch.is_ascii_digit()), "{s}");
        }
    }

    #[test]
    fn envelope_shape() {
        let e = AppError::new(ErrorCode::ConfigNotFound, "Config not found").with("config_id", "cfg_x");
        let b = e.body();
        assert_eq!(b["success"], false);
        assert_eq!(b["error"]["code"], "CONFIG_NOT_FOUND");
        assert_eq!(b["error"]["detail"]["config_id"], "cfg_x");
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
    }
}
