//! The error type of the domain rules.
//!
//! `code` is the API error code of spec 01 §11 (e.g. `INVALID_ALLOWED_IPS`), so the host can
//! map a domain failure to its envelope without a translation table; `detail` becomes the
//! envelope's `detail` object.

use serde_json::{Map, Value};

/// A rule violation with a stable API code, an English message and a detail object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DomainError {
    /// API error code (spec 01 §11), upper snake case.
    pub code: &'static str,
    /// English message, for debugging; the UI localises by code.
    pub message: String,
    /// Extra fields for the envelope's `detail` object (empty when there are none).
    pub detail: Map<String, Value>,
}

impl DomainError {
    /// A new error with an empty detail.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), detail: Map::new() }
    }

    /// Adds one `detail` entry.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }
}

/// Result alias of the domain rules.
pub type DomainResult<T> = Result<T, DomainError>;

/// API error codes raised by the domain rules (spec 01 §11), as constants so a typo is a
/// compile error rather than a silent 500 in the host's code mapping.
pub mod codes {
    /// A value that is out of range, malformed, or not supported by the AWG version.
    pub const INVALID_AWG_PARAMETER: &str = "INVALID_AWG_PARAMETER";
    /// An H value or range that is malformed or overlaps another.
    pub const INVALID_AWG_H_RANGE: &str = "INVALID_AWG_H_RANGE";
    /// Jmax not above Jmin, or a Jmin/Jmax that leaves no room for the other.
    pub const INVALID_AWG_J_RANGE: &str = "INVALID_AWG_J_RANGE";
    /// AWG version unsupported, missing, or in conflict with the protocol.
    pub const INVALID_AWG_VERSION: &str = "INVALID_AWG_VERSION";
    /// Unknown tunnel protocol (`detail.value`).
    pub const INVALID_TUNNEL_PROTOCOL: &str = "INVALID_TUNNEL_PROTOCOL";
    /// Config name that breaks the name rule or is a reserved device name.
    pub const INVALID_CONFIG_NAME: &str = "INVALID_CONFIG_NAME";
    /// Blank node name.
    pub const INVALID_NODE_NAME: &str = "INVALID_NODE_NAME";
    /// Blank tag.
    pub const INVALID_TAG: &str = "INVALID_TAG";
    /// Unparsable virtual subnet.
    pub const INVALID_SUBNET: &str = "INVALID_SUBNET";
    /// Missing, malformed or duplicate virtual IP.
    pub const INVALID_VIRTUAL_IP: &str = "INVALID_VIRTUAL_IP";
    /// No free host address left in the subnet.
    pub const IP_POOL_EXHAUSTED: &str = "IP_POOL_EXHAUSTED";
    /// A key that does not decode to 32 bytes, or a public key that does not match the
    /// private key (WFM addition: upstream does not cross-check).
    pub const INVALID_KEY: &str = "INVALID_KEY";
    /// The platform random source failed; nothing the caller can fix.
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
}
