//! Stateless key tools (spec 02 §4.4): a fresh WireGuard key pair, and the public key of a
//! given private key.

use wfm_domain::awg::random::OsRng;
use wfm_domain::keys::{self, KeyPair};

use crate::error::AppResult;

/// `POST /nodes/keys/generate`.
pub fn generate() -> AppResult<KeyPair> {
    Ok(keys::generate_key_pair(&mut OsRng)?)
}

/// `POST /nodes/keys/derive-public`: the private key must strictly decode to 32 bytes
/// (`INVALID_KEY` otherwise).
pub fn derive_public(private_key: &str) -> AppResult<KeyPair> {
    let private_key = private_key.trim().to_string();
    let public_key = keys::derive_public_key(&private_key)?;
    Ok(KeyPair { private_key, public_key })
}
