//! WireGuard keys and preshared keys (spec 02 §4.4).
//!
//! A private key is 32 random bytes in standard padded base64, stored unclamped (X25519 clamps
//! internally, and `wg genkey` output must round-trip unchanged). Decoding is strict: exactly
//! 44 characters, canonical padding, 32 bytes.
//!
//! WFM choice: a public key supplied together with (or against a stored) private key must match
//! it (`INVALID_KEY` 400). Upstream stores mismatched pairs, which yields a node whose peers can
//! never complete a handshake.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::awg::random::Rng;
use crate::error::{DomainError, DomainResult, codes};

/// A key pair as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPair {
    /// Base64 private key.
    pub private_key: String,
    /// Base64 public key.
    pub public_key: String,
}

fn encode(bytes: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// 32 random bytes as standard base64 (a private key or a PSK).
pub fn random_key(rng: &mut dyn Rng) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    encode(&bytes)
}

/// A new private key.
pub fn generate_private_key(rng: &mut dyn Rng) -> String {
    random_key(rng)
}

/// A new preshared key.
pub fn generate_psk(rng: &mut dyn Rng) -> String {
    random_key(rng)
}

/// Strictly decodes a base64 key to 32 bytes; `label` names it in the message.
pub fn decode_key(label: &str, value: &str) -> DomainResult<[u8; 32]> {
    let bad = || DomainError::new(codes::INVALID_KEY, format!("{label} must be base64 of exactly 32 bytes"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

/// The public key of a base64 private key.
pub fn derive_public_key(private_key: &str) -> DomainResult<String> {
    let secret = StaticSecret::from(decode_key("Private key", private_key)?);
    Ok(encode(PublicKey::from(&secret).as_bytes()))
}

/// A fresh key pair.
pub fn generate_key_pair(rng: &mut dyn Rng) -> DomainResult<KeyPair> {
    let private_key = generate_private_key(rng);
    let public_key = derive_public_key(&private_key)?;
    Ok(KeyPair { private_key, public_key })
}

/// Checks that `public_key` decodes and belongs to `private_key`.
pub fn check_key_pair(private_key: &str, public_key: &str) -> DomainResult<()> {
    decode_key("Public key", public_key)?;
    let derived = derive_public_key(private_key)?;
    if derived != public_key.trim() {
        return Err(DomainError::new(codes::INVALID_KEY, "Public key does not match the private key"));
    }
    Ok(())
}

/// The key pair of a node from optional inputs: private given or generated, public given
/// (checked against the private key) or derived. Blank inputs count as absent.
pub fn resolve_key_pair(private_key: Option<&str>, public_key: Option<&str>, rng: &mut dyn Rng) -> DomainResult<KeyPair> {
    let private_key = match private_key.map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) => {
            decode_key("Private key", k)?;
            k.to_string()
        }
        None => generate_private_key(rng),
    };
    let public_key = match public_key.map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) => {
            check_key_pair(&private_key, k)?;
            k.to_string()
        }
        None => derive_public_key(&private_key)?,
    };
    Ok(KeyPair { private_key, public_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::awg::random::SplitMix64;

    // RFC 7748 §6.1 test vector (Alice), base64-encoded.
    const RFC_PRIVATE_HEX: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const RFC_PUBLIC_HEX: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

    fn b64_of_hex(hex: &str) -> String {
        let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn derives_the_rfc7748_public_key() {
        let public = derive_public_key(&b64_of_hex(RFC_PRIVATE_HEX)).unwrap();
        assert_eq!(public, b64_of_hex(RFC_PUBLIC_HEX));
    }

    #[test]
    fn generated_keys_are_44_char_padded_base64_and_unclamped() {
        let mut rng = SplitMix64(7);
        let mut saw_unclamped = false;
        for _ in 0..64 {
            let k = generate_private_key(&mut rng);
            assert_eq!(k.len(), 44);
            assert!(k.ends_with('='));
            let bytes = decode_key("k", &k).unwrap();
            // Clamping would clear the low 3 bits of byte 0 and the top bit of byte 31.
            if bytes[0] & 7 != 0 || bytes[31] & 0x80 != 0 {
                saw_unclamped = true;
            }
        }
        assert!(saw_unclamped, "keys must be stored as drawn, not clamped");
        assert_eq!(generate_psk(&mut rng).len(), 44);
    }

    #[test]
    fn decoding_is_strict() {
        let good = b64_of_hex(RFC_PRIVATE_HEX);
        assert!(decode_key("k", &good).is_ok());
        assert!(decode_key("k", &format!(" {good} ")).is_ok(), "surrounding blanks are trimmed");
        let unpadded = good.trim_end_matches('=').to_string();
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 31]);
        let long = base64::engine::general_purpose::STANDARD.encode([1u8; 33]);
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode([0xffu8; 32]);
        // Last character changed so the unused trailing bits are non-zero: not canonical.
        let mut non_canonical = good.clone();
        non_canonical.replace_range(42..43, "p");
        for bad in ["", "not base64!", unpadded.as_str(), short.as_str(), long.as_str(), url_safe.as_str(), non_canonical.as_str()] {
            let e = decode_key("Private key", bad).unwrap_err();
            assert_eq!(e.code, "INVALID_KEY", "{bad:?}");
        }
        assert_eq!(derive_public_key("abc").unwrap_err().code, "INVALID_KEY");
    }

    #[test]
    fn key_pairs_are_resolved_and_cross_checked() {
        let mut rng = SplitMix64(1);
        let generated = resolve_key_pair(None, Some("  "), &mut rng).unwrap();
        assert_eq!(derive_public_key(&generated.private_key).unwrap(), generated.public_key);

        let private = b64_of_hex(RFC_PRIVATE_HEX);
        let public = b64_of_hex(RFC_PUBLIC_HEX);
        let given = resolve_key_pair(Some(&private), None, &mut rng).unwrap();
        assert_eq!(given, KeyPair { private_key: private.clone(), public_key: public.clone() });
        assert!(resolve_key_pair(Some(&private), Some(&public), &mut rng).is_ok());

        let other = generate_key_pair(&mut rng).unwrap();
        let e = resolve_key_pair(Some(&private), Some(&other.public_key), &mut rng).unwrap_err();
        assert_eq!(e.code, "INVALID_KEY");
        assert!(e.message.contains("does not match"));
        assert_eq!(resolve_key_pair(Some("bad"), None, &mut rng).unwrap_err().code, "INVALID_KEY");
        assert_eq!(resolve_key_pair(None, Some("bad"), &mut rng).unwrap_err().code, "INVALID_KEY");
    }
}
