//! Tool failures (what a plugin returns) and host-call failures (what the host returns).

use crate::export::bindings::wfm::plugin::types as wit;
use serde_json::Value;

/// Kind of a tool failure; the host picks the HTTP status class from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong (400).
    InvalidInput,
    /// Something the input names does not exist (404).
    NotFound,
    /// The current state forbids the operation (409).
    Conflict,
    /// The caller may not do this (403).
    Denied,
    /// The plugin could not do its job.
    Failed,
}

/// A typed tool failure with a stable upper-snake code.
///
/// Codes from the host's catalogue (for example `INVALID_AWG_PARAMETER`) reach API clients
/// unchanged; other codes are reported as `PLUGIN_TOOL_FAILED` with the plugin's code in the
/// detail.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    /// Kind.
    pub kind: ErrorKind,
    /// Stable code.
    pub code: String,
    /// English message.
    pub message: String,
    /// Optional JSON object with details.
    pub detail: Option<Value>,
}

impl ToolError {
    /// A new error.
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind, code: code.into(), message: message.into(), detail: None }
    }
    /// An invalid-input error.
    pub fn invalid_input(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, code, message)
    }
    /// A not-found error.
    pub fn not_found(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }
    /// A conflict error.
    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }
    /// A generic failure.
    pub fn failed(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, code, message)
    }
    /// Adds a detail object (non-objects are wrapped as `{"value": ...}`).
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(match detail {
            Value::Object(_) => detail,
            other => serde_json::json!({ "value": other }),
        });
        self
    }

    pub(crate) fn into_wit(self) -> wit::ToolError {
        wit::ToolError {
            kind: match self.kind {
                ErrorKind::InvalidInput => wit::ErrorKind::InvalidInput,
                ErrorKind::NotFound => wit::ErrorKind::NotFound,
                ErrorKind::Conflict => wit::ErrorKind::Conflict,
                ErrorKind::Denied => wit::ErrorKind::Denied,
                ErrorKind::Failed => wit::ErrorKind::Failed,
            },
            code: self.code,
            message: self.message,
            detail: self.detail.map(|d| d.to_string()),
        }
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ToolError {}

/// Failure of a host call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The plugin did not declare the capability this call needs.
    CapabilityDenied(String),
    /// The named entity does not exist.
    NotFound(String),
    /// The arguments were refused.
    Invalid(String),
    /// The host could not serve the call.
    Unavailable(String),
    /// The host answered with JSON this SDK could not decode.
    Decode(String),
}

impl HostError {
    pub(crate) fn from_wit(e: wit::HostError) -> Self {
        match e {
            wit::HostError::CapabilityDenied(m) => HostError::CapabilityDenied(m),
            wit::HostError::NotFound(m) => HostError::NotFound(m),
            wit::HostError::Invalid(m) => HostError::Invalid(m),
            wit::HostError::Unavailable(m) => HostError::Unavailable(m),
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::CapabilityDenied(m) => write!(f, "capability denied: {m}"),
            HostError::NotFound(m) => write!(f, "not found: {m}"),
            HostError::Invalid(m) => write!(f, "invalid: {m}"),
            HostError::Unavailable(m) => write!(f, "unavailable: {m}"),
            HostError::Decode(m) => write!(f, "cannot decode host answer: {m}"),
        }
    }
}

impl std::error::Error for HostError {}

/// Lets `?` turn a failed host call into a tool failure.
impl From<HostError> for ToolError {
    fn from(e: HostError) -> Self {
        let (kind, code) = match &e {
            HostError::CapabilityDenied(_) => (ErrorKind::Denied, "PLUGIN_CAPABILITY_DENIED"),
            HostError::NotFound(_) => (ErrorKind::NotFound, "NOT_FOUND"),
            HostError::Invalid(_) => (ErrorKind::InvalidInput, "HOST_CALL_INVALID"),
            HostError::Unavailable(_) => (ErrorKind::Failed, "HOST_UNAVAILABLE"),
            HostError::Decode(_) => (ErrorKind::Failed, "HOST_DECODE_FAILED"),
        };
        ToolError::new(kind, code, e.to_string())
    }
}
