//! Random AmneziaWG values (spec 02 §5.6), backfill of missing values, and version conversion
//! of shared values (§5.8 convert).
//!
//! Everything draws from the tiny [`Rng`] trait so the host (OS CSPRNG, [`OsRng`]) and plugins
//! share one implementation, and tests can use a seeded [`SplitMix64`]. All ranges are
//! inclusive, as in the spec.
//!
//! I packets are shaped by the strategy's [`Direction`]; only `generic` is implemented here.
//! The protocol imitations (dns, stun, rtp, quic) belong to the awg-params plugin, which plugs
//! them in through [`IPacketSource`].

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{
    AwgVersion, Direction, Intensity, NodeParams, OPT_CONTENT_PADDING_ADDITION, OPT_DISABLE_COOKIES,
    OPT_HEADER_PROTECTION_KEY, OPT_ITIME, OPT_J1, OPT_J2, OPT_J3, OPT_KEEPALIVE_TIMEOUT, OPT_MAX_HANDSHAKE_ATTEMPTS,
    OPT_RANDOM_TRAILERS, OPT_REJECT_AFTER_TIME, OPT_REKEY_AFTER_TIME, OPT_REKEY_TIMEOUT, OptionLevel, SharedParams,
    Strategy, U16_MAX, U32_MAX, options_for_version, parse_range,
};
use crate::error::{DomainError, DomainResult, codes};

/// A source of uniformly random 64-bit words.
pub trait Rng {
    /// The next random word.
    fn next_u64(&mut self) -> u64;

    /// A uniform value in `lo..=hi` (returns `lo` when `hi <= lo`), without modulo bias.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        let n = span + 1;
        let bound = (u64::MAX / n) * n;
        loop {
            let v = self.next_u64();
            if v < bound {
                return lo + v % n;
            }
        }
    }

    /// Fills `buf` with random bytes.
    fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// The operating system's CSPRNG (through `getrandom`; on `wasm32-wasip2`, `wasi:random`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRng;

impl Rng for OsRng {
    fn next_u64(&mut self) -> u64 {
        match getrandom::u64() {
            Ok(v) => v,
            // No safe value exists to return: a predictable key or PSK would be worse than a
            // crash. std makes the same call when its own seeding fails.
            Err(e) => panic!("operating system random source failed: {e}"),
        }
    }

    fn fill_bytes(&mut self, buf: &mut [u8]) {
        if let Err(e) = getrandom::fill(buf) {
            panic!("operating system random source failed: {e}");
        }
    }
}

/// A small seeded generator (SplitMix64). Not cryptographic: for tests and reproducible
/// examples only.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl Rng for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

// ---------------------------------------------------------------------------------------------
// Shared values
// ---------------------------------------------------------------------------------------------

/// Lowest H start drawn.
pub const H_START_MIN: u64 = 1024;
/// Highest H start drawn.
pub const H_START_MAX: u64 = 4_294_901_023;

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// Draws tried before [`h_range`] gives up on avoiding `taken`.
const H_DRAW_ATTEMPTS: usize = 10_000;

/// Draws one H range that overlaps none of `taken`, or `None` when `taken` leaves no room
/// (a given H may cover almost the whole space; looping forever would hang the request).
pub fn h_range(rng: &mut dyn Rng, taken: &[(u64, u64)]) -> Option<(u64, u64)> {
    for _ in 0..H_DRAW_ATTEMPTS {
        let start = rng.range(H_START_MIN, H_START_MAX);
        let width = rng.range(64, 575);
        let r = (start, (start + width).min(U32_MAX));
        if !taken.iter().any(|t| overlaps(*t, r)) {
            return Some(r);
        }
    }
    None
}

fn any_h_range(rng: &mut dyn Rng) -> (u64, u64) {
    let start = rng.range(H_START_MIN, H_START_MAX);
    (start, (start + rng.range(64, 575)).min(U32_MAX))
}

/// The H pool: four mutually disjoint ranges.
pub fn h_pool(rng: &mut dyn Rng) -> [(u64, u64); 4] {
    let mut taken = Vec::with_capacity(4);
    for _ in 0..4 {
        // Four ranges of ≤ 576 values in a 4-billion space always leave room.
        let r = h_range(rng, &taken).unwrap_or_else(|| any_h_range(rng));
        taken.push(r);
    }
    [taken[0], taken[1], taken[2], taken[3]]
}

fn h_text(version: AwgVersion, r: (u64, u64)) -> String {
    match version {
        AwgVersion::V2_0 => format!("{}-{}", r.0, r.1),
        AwgVersion::V1_5 | AwgVersion::V3_1 => r.0.to_string(),
    }
}

/// A fresh set of S1–S4 for `version`.
pub fn fresh_s(version: AwgVersion, rng: &mut dyn Rng) -> [i64; 4] {
    let mut draw = |lo, hi| rng.range(lo, hi) as i64;
    match version {
        AwgVersion::V2_0 => [draw(15, 64), draw(15, 64), draw(15, 64), draw(0, 32)],
        AwgVersion::V1_5 => [draw(15, 64), draw(15, 64), 0, 0],
        AwgVersion::V3_1 => {
            let s = draw(16, 32);
            [s; 4]
        }
    }
}

/// A fresh shared set (S and H; options empty) for `version`.
pub fn fresh_shared(version: AwgVersion, rng: &mut dyn Rng) -> SharedParams {
    let s = fresh_s(version, rng);
    let h = h_pool(rng);
    let mut out = SharedParams::default();
    for (slot, v) in out.s_mut().into_iter().zip(s) {
        *slot = Some(v);
    }
    for (slot, r) in out.h_mut().into_iter().zip(h) {
        *slot = Some(h_text(version, r));
    }
    out
}

/// A fresh 3.1 HeaderProtectionKey: 32 random bytes (never all zero), standard base64.
pub fn header_protection_key(rng: &mut dyn Rng) -> String {
    let mut key = [0u8; 32];
    while key.iter().all(|b| *b == 0) {
        rng.fill_bytes(&mut key);
    }
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Adds a fresh HeaderProtectionKey unless the key is present (an explicit null means "no key"
/// and is kept).
pub fn ensure_header_protection_key(options: &mut Map<String, Value>, rng: &mut dyn Rng) {
    if !options.contains_key(OPT_HEADER_PROTECTION_KEY) {
        options.insert(OPT_HEADER_PROTECTION_KEY.into(), Value::String(header_protection_key(rng)));
    }
}

/// Fills null S and H values from a fresh set. New H ranges avoid the H values already present,
/// so a backfill does not itself create an overlap (unless the given values leave no room, in
/// which case validation reports the overlap).
pub fn backfill_shared(version: AwgVersion, shared: &mut SharedParams, rng: &mut dyn Rng) {
    let s = fresh_s(version, rng);
    for (slot, v) in shared.s_mut().into_iter().zip(s) {
        if slot.is_none() {
            *slot = Some(v);
        }
    }
    let mut taken: Vec<(u64, u64)> = shared.h().iter().flatten().filter_map(|h| parse_h_loose(h)).collect();
    for slot in shared.h_mut() {
        if slot.as_deref().is_none_or(|h| h.trim().is_empty()) {
            let r = h_range(rng, &taken).unwrap_or_else(|| any_h_range(rng));
            taken.push(r);
            *slot = Some(h_text(version, r));
        }
    }
}

fn parse_h_loose(h: &str) -> Option<(u64, u64)> {
    parse_range(h.trim(), U32_MAX)
}

/// Converts stored shared values to `target` (§5.8 convert), then backfills nulls. Options
/// keep only what `target` supports (strategy keys, plus key and RandomTrailers on 3.1); the
/// caller decides whether to merge them back over stored options (config update keeps dormant
/// keys). Validation is the caller's: [`super::validate_config_params`].
pub fn convert_shared(
    source: Option<AwgVersion>,
    target: AwgVersion,
    stored: &SharedParams,
    rng: &mut dyn Rng,
) -> SharedParams {
    let mut out = stored.clone();
    if source != Some(target) {
        match target {
            AwgVersion::V1_5 => {
                out.awg_s3 = Some(0);
                out.awg_s4 = Some(0);
                for h in out.h_mut() {
                    if let Some(v) = h.as_mut()
                        && let Some((start, _)) = v.split_once('-')
                    {
                        *v = start.trim().to_string();
                    }
                }
                if let (Some(s1), Some(s2)) = (out.awg_s1, out.awg_s2)
                    && s2 == s1 + 56
                {
                    out.awg_s2 = Some(15);
                }
            }
            AwgVersion::V3_1 => {
                let fresh = fresh_shared(AwgVersion::V3_1, rng);
                out.awg_s1 = fresh.awg_s1;
                out.awg_s2 = fresh.awg_s2;
                out.awg_s3 = fresh.awg_s3;
                out.awg_s4 = fresh.awg_s4;
                out.awg_h1 = fresh.awg_h1;
                out.awg_h2 = fresh.awg_h2;
                out.awg_h3 = fresh.awg_h3;
                out.awg_h4 = fresh.awg_h4;
            }
            AwgVersion::V2_0 if source == Some(AwgVersion::V1_5) => {
                let s = fresh_s(AwgVersion::V2_0, rng);
                out.awg_s3 = Some(s[2]);
                out.awg_s4 = Some(s[3]);
            }
            AwgVersion::V2_0 => {}
        }
    }
    backfill_shared(target, &mut out, rng);
    out.awg_options = options_for_version(OptionLevel::Config, target, &out.awg_options);
    if target == AwgVersion::V3_1 {
        ensure_header_protection_key(&mut out.awg_options, rng);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Node values
// ---------------------------------------------------------------------------------------------

/// Fresh `(Jc, Jmin, Jmax)` for an intensity.
pub fn fresh_j(intensity: Intensity, rng: &mut dyn Rng) -> (i64, i64, i64) {
    let p = intensity.profile();
    let jc = rng.range(p.jc.0, p.jc.1);
    let jmin = rng.range(p.jmin.0, p.jmin.1);
    let jmax = rng.range(jmin + 1, p.jmax_hi);
    (jc as i64, jmin as i64, jmax as i64)
}

/// Fills null Jc/Jmin/Jmax (§5.6): a given Jmin or Jmax keeps the pair ordered.
pub fn backfill_j(node: &mut NodeParams, intensity: Intensity, rng: &mut dyn Rng) -> DomainResult<()> {
    for (label, field, v) in [("Jc", "awg_jc", node.awg_jc), ("Jmin", "awg_jmin", node.awg_jmin), ("Jmax", "awg_jmax", node.awg_jmax)] {
        if let Some(v) = v
            && !(0..=U16_MAX).contains(&v)
        {
            return Err(DomainError::new(codes::INVALID_AWG_PARAMETER, format!("{label} must be between 0 and {U16_MAX}"))
                .with("field", field));
        }
    }
    let (jc, drawn_min, drawn_max) = fresh_j(intensity, rng);
    match (node.awg_jmin, node.awg_jmax) {
        (None, None) => {
            node.awg_jmin = Some(drawn_min);
            node.awg_jmax = Some(drawn_max);
        }
        (Some(jmin), None) => {
            if jmin >= U16_MAX {
                return Err(DomainError::new(codes::INVALID_AWG_J_RANGE, "Jmin leaves no room for a larger Jmax")
                    .with("field", "awg_jmin"));
            }
            let hi = U16_MAX.min((jmin + 128).max(drawn_max));
            node.awg_jmax = Some(rng.range(jmin as u64 + 1, hi as u64) as i64);
        }
        (None, Some(jmax)) => {
            if jmax <= 0 {
                return Err(DomainError::new(codes::INVALID_AWG_J_RANGE, "Jmax leaves no room for a smaller Jmin")
                    .with("field", "awg_jmax"));
            }
            let hi = (jmax - 1).min(drawn_min);
            node.awg_jmin = Some(rng.range(0, hi as u64) as i64);
        }
        (Some(_), Some(_)) => {}
    }
    if node.awg_jc.is_none() {
        node.awg_jc = Some(jc);
    }
    Ok(())
}

/// A generic I packet: `<r N>`, N ∈ [32, 256].
pub fn generic_packet(rng: &mut dyn Rng) -> String {
    format!("<r {}>", rng.range(32, 256))
}

/// Produces I packet chains for a direction. The awg-params plugin implements every direction;
/// [`GenericPackets`] only the generic one.
pub trait IPacketSource {
    /// `count` packets (I1, I2, … in order) imitating `direction`.
    fn i_packets(&mut self, direction: Direction, count: usize, rng: &mut dyn Rng) -> DomainResult<Vec<String>>;
}

/// Generic packets only; other directions are refused, so a caller never silently stores
/// generic junk where the saved strategy asked for an imitation.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericPackets;

impl IPacketSource for GenericPackets {
    fn i_packets(&mut self, direction: Direction, count: usize, rng: &mut dyn Rng) -> DomainResult<Vec<String>> {
        match direction {
            Direction::Generic => Ok((0..count).map(|_| generic_packet(rng)).collect()),
            other => Err(DomainError::new(
                codes::INVALID_AWG_PARAMETER,
                format!("I packets for direction {} need the awg-params plugin", other.as_str()),
            )
            .with("field", "_random_direction")),
        }
    }
}

fn is_unset(options: &Map<String, Value>, key: &str) -> bool {
    options.get(key).is_none_or(Value::is_null)
}

fn set_default(options: &mut Map<String, Value>, key: &str, value: Value) {
    if is_unset(options, key) {
        options.insert(key.into(), value);
    }
}

/// Fills unset 3.1 node options (§5.6). `config_options` supplies RandomTrailers when it has
/// the key (even null); otherwise the node default is `true`.
pub fn default_options_3_1(
    options: &mut Map<String, Value>,
    config_options: &Map<String, Value>,
    intensity: Intensity,
    rng: &mut dyn Rng,
) {
    let rt = config_options.get(OPT_RANDOM_TRAILERS).cloned().unwrap_or(Value::Bool(true));
    set_default(options, OPT_RANDOM_TRAILERS, rt);
    set_default(options, OPT_DISABLE_COOKIES, Value::Bool(false));
    let p = intensity.profile().padding_max;
    let mut pair = |options: &mut Map<String, Value>, key: &str, a: (u64, u64), b: (u64, u64)| {
        if is_unset(options, key) {
            let (x, y) = (rng.range(a.0, a.1), rng.range(b.0, b.1));
            options.insert(key.into(), Value::String(format!("{x}-{y}")));
        }
    };
    pair(options, OPT_CONTENT_PADDING_ADDITION, (0, p / 2), (p / 2 + 1, p));
    pair(options, OPT_REKEY_AFTER_TIME, (100, 115), (120, 135));
    pair(options, OPT_REJECT_AFTER_TIME, (170, 180), (181, 195));
    for (key, lo, hi) in [(OPT_REKEY_TIMEOUT, 4, 6), (OPT_KEEPALIVE_TIMEOUT, 8, 12), (OPT_MAX_HANDSHAKE_ATTEMPTS, 16, 20)] {
        if is_unset(options, key) {
            options.insert(key.into(), Value::String(rng.range(lo, hi).to_string()));
        }
    }
}

/// Fills unset 1.5 node options (§5.6): J1–J3 = `<r N>`, N ∈ [32, 128]; Itime ∈ [10, 50].
pub fn default_options_1_5(options: &mut Map<String, Value>, rng: &mut dyn Rng) {
    for key in [OPT_J1, OPT_J2, OPT_J3] {
        if is_unset(options, key) {
            options.insert(key.into(), Value::String(format!("<r {}>", rng.range(32, 128))));
        }
    }
    if is_unset(options, OPT_ITIME) {
        options.insert(OPT_ITIME.into(), Value::from(rng.range(10, 50)));
    }
}

/// Backfills a node's null values for `version` (§5.6): J, the first `count` I packets of the
/// strategy, and the version's option defaults. Given values always win.
pub fn backfill_node(
    version: AwgVersion,
    config_options: &Map<String, Value>,
    node: &mut NodeParams,
    strategy: Strategy,
    packets: &mut dyn IPacketSource,
    rng: &mut dyn Rng,
) -> DomainResult<()> {
    backfill_j(node, strategy.intensity, rng)?;
    let count = strategy.intensity.profile().i_packets;
    let missing = node.i().iter().take(count).any(|v| v.is_none_or(|s| s.trim().is_empty()));
    if missing {
        let chain = packets.i_packets(strategy.direction, count, rng)?;
        for (slot, packet) in node.i_mut().into_iter().zip(chain) {
            if slot.as_deref().is_none_or(|s| s.trim().is_empty()) {
                *slot = Some(packet);
            }
        }
    }
    match version {
        AwgVersion::V3_1 => default_options_3_1(&mut node.awg_options, config_options, strategy.intensity, rng),
        AwgVersion::V1_5 => default_options_1_5(&mut node.awg_options, rng),
        AwgVersion::V2_0 => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
