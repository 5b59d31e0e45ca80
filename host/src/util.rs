//! Small shared helpers: ids, timestamps, randomness, hashing.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

/// A new id `<prefix>_` + 12 lowercase hex chars of a random UUIDv4 (spec 02 §1).
pub fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..12])
}

/// A run of ids for one bulk write: `<prefix>_` + 12 lowercase hex chars like [`new_id`], but
/// consecutive: one random 48-bit base plus the row index (wrapping within 48 bits). Inserting
/// them in order appends to the B-trees instead of scattering over them (Quick Mesh writes up
/// to a million rows in one transaction). A collision with an existing id surfaces as a
/// primary-key conflict; the caller retries with a fresh base.
#[derive(Debug, Clone, Copy)]
pub struct IdRun {
    base: u64,
}

impl IdRun {
    const MASK: u64 = (1 << 48) - 1;

    /// A run starting at a random base.
    pub fn new() -> Self {
        // The first 48 bits of a UUIDv4 are all random (version bits come later).
        IdRun { base: (uuid::Uuid::new_v4().as_u128() >> 80) as u64 & Self::MASK }
    }

    /// The `i`th id of the run.
    pub fn id(&self, prefix: &str, i: usize) -> String {
        format!("{prefix}_{:012x}", self.base.wrapping_add(i as u64) & Self::MASK)
    }
}

impl Default for IdRun {
    fn default() -> Self {
        Self::new()
    }
}

/// The integer behind an id of the `<prefix>_<12 lowercase hex>` form ([`new_id`],
/// [`IdRun`]); `None` for any other text. Peer-link pairs store their ids this way.
pub fn id_value(prefix: &str, id: &str) -> Option<i64> {
    let hex = id.strip_prefix(prefix)?.strip_prefix('_')?;
    if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    i64::from_str_radix(hex, 16).ok()
}

/// The id text of an integer from [`id_value`] (the low 48 bits).
pub fn id_text(prefix: &str, value: i64) -> String {
    format!("{prefix}_{:012x}", (value as u64) & IdRun::MASK)
}

impl IdRun {
    /// The 48-bit integer of the `i`th id of the run (see [`id_value`]).
    pub fn value(&self, i: usize) -> i64 {
        (self.base.wrapping_add(i as u64) & Self::MASK) as i64
    }

}

/// Microseconds since the Unix epoch.
pub fn micros(ts: DateTime<Utc>) -> i64 {
    ts.timestamp_micros()
}

/// Microseconds since the Unix epoch of a stored timestamp ([`iso`] form).
pub fn iso_micros(s: &str) -> Option<i64> {
    parse_iso(s).map(micros)
}

/// A control-log request id: 32 lowercase hex chars.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Current UTC time.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// ISO-8601 UTC with microseconds and an explicit offset, the stored and exposed form:
/// `2025-01-02T03:04:05.123456+00:00`. Fixed width, so it also sorts lexically.
pub fn iso(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// `iso(now())`.
pub fn now_iso() -> String {
    iso(now())
}

/// Parse a stored timestamp.
pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

/// `n` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing is unrecoverable for a security product: refuse to continue.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("OS random number generator unavailable");
    buf
}

/// URL-safe base64 without padding of `n` random bytes.
pub fn random_token<const N: usize>() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(data.as_ref()))
}

/// Constant-time equality of two byte strings (length may leak, content does not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// "Optional text": trimmed, empty becomes `None` (spec 02 §1).
pub fn optional_text(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_runs_are_consecutive_12_hex_and_wrap() {
        let run = IdRun { base: IdRun::MASK - 1 };
        assert_eq!(run.id("plink", 0), "plink_fffffffffffe");
        assert_eq!(run.id("plink", 1), "plink_ffffffffffff");
        assert_eq!(run.id("plink", 2), "plink_000000000000");
        let run = IdRun::new();
        let a = run.id("group", 7);
        assert_eq!(a.len(), "group_".len() + 12);
        assert!(a["group_".len()..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(id_text("group", run.value(7)), a);
    }

    #[test]
    fn id_values_round_trip_and_refuse_other_text() {
        assert_eq!(id_value("plink", "plink_00000000abcd"), Some(0xabcd));
        assert_eq!(id_value("plink", "plink_ffffffffffff"), Some((1 << 48) - 1));
        assert_eq!(id_text("plink", (1 << 48) - 1), "plink_ffffffffffff");
        assert_eq!(id_text("group", 0x12), "group_000000000012");
        for bad in ["plink_00000000ABCD", "plink_abc", "plink_0000000000000", "group_00000000abcd", "plink-00000000abcd", "plink_+0000000abcd", ""] {
            assert_eq!(id_value("plink", bad), None, "{bad}");
        }
        let id = new_id("group");
        assert_eq!(id_text("group", id_value("group", &id).unwrap()), id);
        let t = "2025-01-02T03:04:05.123456+00:00";
        assert_eq!(iso_micros(t), Some(1_735_787_045_123_456));
        assert_eq!(iso(DateTime::from_timestamp_micros(1_735_787_045_123_456).unwrap()), t);
    }

    #[test]
    fn ids_have_prefix_and_12_hex() {
        let id = new_id("cfg");
        assert!(id.starts_with("cfg_"));
        assert_eq!(id.len(), 16);
        assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(new_id("cfg"), new_id("cfg"));
        assert_eq!(new_request_id().len(), 32);
    }

    #[test]
    fn iso_is_fixed_width_utc() {
        let s = now_iso();
        assert!(s.ends_with("+00:00"), "{s}");
        assert_eq!(s.len(), "2025-01-02T03:04:05.123456+00:00".len());
        assert!(parse_iso(&s).is_some());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
