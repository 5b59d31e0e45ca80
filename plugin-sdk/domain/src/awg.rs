//! AmneziaWG: protocols, versions, parameters and their rules (spec 02 §3.2, §5).
//!
//! Shared (per config) parameters are [`SharedParams`]; per-node ones are [`NodeParams`]. Both
//! serialise with the API's field names (`awg_s1`, `awg_jc`, `awg_options`…) so plugins and the
//! host can read request bodies straight into them.
//!
//! The checks are layered so each caller picks what its step of the spec needs:
//! - [`normalize_options`] / [`SharedParams::normalized`] / [`NodeParams::normalized`]: input
//!   hygiene (trim, blank → null, unknown option keys, option value formats);
//! - [`gate_options`]: keys the version does not support, on write only (§5.2);
//! - [`validate_config_params`], [`validate_node_params`], [`check_mesh_rules`]: §5.3.
//!
//! Random values (§5.6) and version conversion (§5.8) live in [`random`]; the CPS grammar of
//! I1–I5 and J1–J3 in [`cps`].

pub mod cps;
pub mod random;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{DomainError, DomainResult, codes};

/// Largest value of S, Jc, Jmin, Jmax and of the 3.1 timing numbers.
pub const U16_MAX: i64 = 65_535;
/// Largest H value and Itime.
pub const U32_MAX: u64 = 4_294_967_295;

// ---------------------------------------------------------------------------------------------
// Protocol and version
// ---------------------------------------------------------------------------------------------

/// The tunnel protocol of a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TunnelProtocol {
    /// Plain WireGuard.
    #[serde(rename = "wireguard")]
    WireGuard,
    /// AmneziaWG (any version).
    #[serde(rename = "amneziawg")]
    AmneziaWg,
}

impl TunnelProtocol {
    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelProtocol::WireGuard => "wireguard",
            TunnelProtocol::AmneziaWg => "amneziawg",
        }
    }
}

/// An AmneziaWG version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AwgVersion {
    /// 1.5: S1–S2, single-integer H, J1–J3/Itime node options.
    #[serde(rename = "1.5")]
    V1_5,
    /// 2.0: S1–S4, H ranges.
    #[serde(rename = "2.0")]
    V2_0,
    /// 3.1: 2.0 plus header protection, random trailers and timing options.
    #[serde(rename = "3.1")]
    V3_1,
}

impl AwgVersion {
    /// Every version, oldest first.
    pub const ALL: [AwgVersion; 3] = [AwgVersion::V1_5, AwgVersion::V2_0, AwgVersion::V3_1];
    /// Version the console preselects (§5.5).
    pub const UI_DEFAULT: AwgVersion = AwgVersion::V3_1;
    /// Version the stateless random endpoints assume when the query omits it (§5.8).
    pub const RANDOM_DEFAULT: AwgVersion = AwgVersion::V2_0;

    /// Stored / wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            AwgVersion::V1_5 => "1.5",
            AwgVersion::V2_0 => "2.0",
            AwgVersion::V3_1 => "3.1",
        }
    }

    /// Parses a version; anything else is `INVALID_AWG_VERSION`.
    pub fn parse(value: &str) -> DomainResult<AwgVersion> {
        match value.trim() {
            "1.5" => Ok(AwgVersion::V1_5),
            "2.0" => Ok(AwgVersion::V2_0),
            "3.1" => Ok(AwgVersion::V3_1),
            other => Err(DomainError::new(
                codes::INVALID_AWG_VERSION,
                format!("Unsupported AWG version: {other}. Supported: 1.5, 2.0, 3.1"),
            )
            .with("value", other)),
        }
    }
}

impl std::fmt::Display for AwgVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resolved protocol with its version (`Some` exactly for AmneziaWG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolChoice {
    /// Protocol.
    pub protocol: TunnelProtocol,
    /// AWG version, `None` for WireGuard.
    pub version: Option<AwgVersion>,
}

impl ProtocolChoice {
    /// Plain WireGuard.
    pub const WIREGUARD: ProtocolChoice = ProtocolChoice { protocol: TunnelProtocol::WireGuard, version: None };

    /// AmneziaWG of a version.
    pub fn awg(version: AwgVersion) -> Self {
        Self { protocol: TunnelProtocol::AmneziaWg, version: Some(version) }
    }

    /// Reads stored columns, applying the upstream migration rules: `amneziawg_2` →
    /// `amneziawg` + 2.0, AWG without (or with an unknown) version → 2.0, unknown protocol →
    /// WireGuard. Never fails, so one odd row cannot break a listing.
    pub fn from_stored(protocol: &str, version: Option<&str>) -> Self {
        match protocol.trim() {
            "amneziawg" | "amneziawg_2" => {
                let v = version.and_then(|v| AwgVersion::parse(v).ok()).unwrap_or(AwgVersion::V2_0);
                if protocol.trim() == "amneziawg_2" {
                    Self::awg(AwgVersion::V2_0)
                } else {
                    Self::awg(v)
                }
            }
            _ => Self::WIREGUARD,
        }
    }

    /// The version when this is AmneziaWG.
    pub fn awg_version(self) -> Option<AwgVersion> {
        match self.protocol {
            TunnelProtocol::AmneziaWg => self.version,
            TunnelProtocol::WireGuard => None,
        }
    }
}

/// Resolves the requested protocol and version against the stored choice (spec 02 §3.2).
///
/// `protocol`/`version` are the request values (`None` or blank = not sent); `current` is the
/// stored choice on update, `None` on create. An omitted protocol keeps the current one (create:
/// WireGuard).
pub fn resolve_protocol(
    protocol: Option<&str>,
    version: Option<&str>,
    current: Option<ProtocolChoice>,
) -> DomainResult<ProtocolChoice> {
    let protocol = protocol.map(str::trim).filter(|p| !p.is_empty());
    let version = version.map(str::trim).filter(|v| !v.is_empty());
    let (target, alias_2) = match protocol {
        None => (current.map_or(TunnelProtocol::WireGuard, |c| c.protocol), false),
        Some(p) => match p.to_ascii_lowercase().as_str() {
            "wireguard" => (TunnelProtocol::WireGuard, false),
            "amneziawg" => (TunnelProtocol::AmneziaWg, false),
            "amneziawg_2" => (TunnelProtocol::AmneziaWg, true),
            _ => {
                return Err(DomainError::new(
                    codes::INVALID_TUNNEL_PROTOCOL,
                    format!("Unsupported tunnel protocol: {p}"),
                )
                .with("value", p));
            }
        },
    };
    let parsed = version.map(AwgVersion::parse).transpose()?;
    match target {
        TunnelProtocol::WireGuard => match parsed {
            Some(_) => Err(DomainError::new(
                codes::INVALID_AWG_VERSION,
                "WireGuard configs take no AWG version",
            )),
            None => Ok(ProtocolChoice::WIREGUARD),
        },
        TunnelProtocol::AmneziaWg if alias_2 => match parsed {
            None | Some(AwgVersion::V2_0) => Ok(ProtocolChoice::awg(AwgVersion::V2_0)),
            Some(v) => Err(DomainError::new(
                codes::INVALID_AWG_VERSION,
                format!("amneziawg_2 means AWG 2.0 and cannot be combined with AWG {v}"),
            )),
        },
        TunnelProtocol::AmneziaWg => match (parsed, current) {
            (Some(v), _) => Ok(ProtocolChoice::awg(v)),
            (None, Some(c)) if c.protocol == TunnelProtocol::AmneziaWg => {
                Ok(ProtocolChoice::awg(c.version.unwrap_or(AwgVersion::V2_0)))
            }
            (None, _) => Err(DomainError::new(
                codes::INVALID_AWG_VERSION,
                "AmneziaWG needs an AWG version (1.5, 2.0 or 3.1)",
            )),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Generation strategy (stored in config options, never emitted)
// ---------------------------------------------------------------------------------------------

/// What the I packets imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Random bytes.
    #[default]
    Generic,
    /// DNS query.
    Dns,
    /// STUN binding request.
    Stun,
    /// RTP audio.
    Rtp,
    /// QUIC v1 Initial.
    Quic,
}

impl Direction {
    /// Every direction.
    pub const ALL: [Direction; 5] = [Direction::Generic, Direction::Dns, Direction::Stun, Direction::Rtp, Direction::Quic];

    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Generic => "generic",
            Direction::Dns => "dns",
            Direction::Stun => "stun",
            Direction::Rtp => "rtp",
            Direction::Quic => "quic",
        }
    }

    /// Parses a stored/request value.
    pub fn parse(value: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.as_str() == value)
    }
}

/// How aggressive the junk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intensity {
    /// Few, small junk packets.
    Low,
    /// The default.
    #[default]
    Balanced,
    /// Many, large junk packets.
    High,
}

/// The numbers of one intensity (spec 02 §5.6 table); ranges are inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntensityProfile {
    /// Jc range.
    pub jc: (u64, u64),
    /// Jmin range.
    pub jmin: (u64, u64),
    /// Upper bound of Jmax (lower bound is Jmin + 1).
    pub jmax_hi: u64,
    /// How many I packets are generated.
    pub i_packets: usize,
    /// ContentPaddingAddition maximum `p`.
    pub padding_max: u64,
    /// Largest S the generate endpoint draws.
    pub s_max: u64,
}

impl Intensity {
    /// Every intensity.
    pub const ALL: [Intensity; 3] = [Intensity::Low, Intensity::Balanced, Intensity::High];

    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Intensity::Low => "low",
            Intensity::Balanced => "balanced",
            Intensity::High => "high",
        }
    }

    /// Parses a stored/request value.
    pub fn parse(value: &str) -> Option<Intensity> {
        Intensity::ALL.into_iter().find(|i| i.as_str() == value)
    }

    /// The numbers of this intensity.
    pub fn profile(self) -> IntensityProfile {
        match self {
            Intensity::Low => IntensityProfile {
                jc: (1, 3),
                jmin: (64, 255),
                jmax_hi: 256,
                i_packets: 1,
                padding_max: 16,
                s_max: 24,
            },
            Intensity::Balanced => IntensityProfile {
                jc: (4, 7),
                jmin: (64, 256),
                jmax_hi: 768,
                i_packets: 3,
                padding_max: 64,
                s_max: 48,
            },
            Intensity::High => IntensityProfile {
                jc: (8, 10),
                jmin: (64, 256),
                jmax_hi: 1024,
                i_packets: 5,
                padding_max: 128,
                s_max: 96,
            },
        }
    }
}

/// A generation strategy: direction + intensity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Strategy {
    /// Direction.
    pub direction: Direction,
    /// Intensity.
    pub intensity: Intensity,
}

impl Strategy {
    /// The strategy saved in config options (`_random_direction`, `_random_intensity`),
    /// generic/balanced where absent. Stored values were validated on write; an unreadable one
    /// falls back to the default rather than failing a node creation.
    pub fn from_config_options(options: &Map<String, Value>) -> Strategy {
        let direction = options
            .get(OPT_RANDOM_DIRECTION)
            .and_then(Value::as_str)
            .and_then(Direction::parse)
            .unwrap_or_default();
        let intensity = options
            .get(OPT_RANDOM_INTENSITY)
            .and_then(Value::as_str)
            .and_then(Intensity::parse)
            .unwrap_or_default();
        Strategy { direction, intensity }
    }

    /// Parses request values (`None` = default); invalid → `INVALID_AWG_PARAMETER`
    /// "Invalid AWG generation strategy".
    pub fn parse(direction: Option<&str>, intensity: Option<&str>) -> DomainResult<Strategy> {
        let bad = || {
            DomainError::new(codes::INVALID_AWG_PARAMETER, "Invalid AWG generation strategy")
        };
        let direction = match direction.map(str::trim).filter(|s| !s.is_empty()) {
            None => Direction::default(),
            Some(d) => Direction::parse(d).ok_or_else(|| bad().with("field", "direction").with("value", d))?,
        };
        let intensity = match intensity.map(str::trim).filter(|s| !s.is_empty()) {
            None => Intensity::default(),
            Some(i) => Intensity::parse(i).ok_or_else(|| bad().with("field", "intensity").with("value", i))?,
        };
        Ok(Strategy { direction, intensity })
    }

    /// Writes the strategy into config options.
    pub fn store_into(self, options: &mut Map<String, Value>) {
        options.insert(OPT_RANDOM_DIRECTION.into(), Value::String(self.direction.as_str().into()));
        options.insert(OPT_RANDOM_INTENSITY.into(), Value::String(self.intensity.as_str().into()));
    }
}

// ---------------------------------------------------------------------------------------------
// Option keys (§5.2)
// ---------------------------------------------------------------------------------------------

/// Config option: 3.1 header protection key.
pub const OPT_HEADER_PROTECTION_KEY: &str = "header_protection_key";
/// Config and node option: 3.1 random trailers.
pub const OPT_RANDOM_TRAILERS: &str = "random_trailers";
/// Config option: saved generation direction.
pub const OPT_RANDOM_DIRECTION: &str = "_random_direction";
/// Config option: saved generation intensity.
pub const OPT_RANDOM_INTENSITY: &str = "_random_intensity";
/// Node option (3.1).
pub const OPT_CONTENT_PADDING_ADDITION: &str = "content_padding_addition";
/// Node option (3.1).
pub const OPT_REKEY_AFTER_TIME: &str = "rekey_after_time";
/// Node option (3.1).
pub const OPT_REKEY_TIMEOUT: &str = "rekey_timeout";
/// Node option (3.1).
pub const OPT_REJECT_AFTER_TIME: &str = "reject_after_time";
/// Node option (3.1).
pub const OPT_KEEPALIVE_TIMEOUT: &str = "keepalive_timeout";
/// Node option (3.1).
pub const OPT_MAX_HANDSHAKE_ATTEMPTS: &str = "max_handshake_attempts";
/// Node option (3.1).
pub const OPT_DISABLE_COOKIES: &str = "disable_cookies";
/// Node options (1.5).
pub const OPT_J1: &str = "j1";
/// Node option (1.5).
pub const OPT_J2: &str = "j2";
/// Node option (1.5).
pub const OPT_J3: &str = "j3";
/// Node option (1.5).
pub const OPT_ITIME: &str = "itime";

/// Which options map a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionLevel {
    /// `configs.awg_options`.
    Config,
    /// `nodes.awg_options`.
    Node,
}

/// The value shape of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// Strict base64 of 32 bytes, not all zero.
    Key32,
    /// JSON boolean.
    Bool,
    /// A [`Direction`] name.
    Direction,
    /// An [`Intensity`] name.
    Intensity,
    /// Text `N` or `A-B` (digits), `A ≤ B ≤ 65535`.
    Range16,
    /// A CPS string (§5.4).
    Cps,
    /// Integer 0–4294967295.
    U32,
}

/// One known option key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// Key in the options map.
    pub key: &'static str,
    /// Name in rendered files and messages.
    pub label: &'static str,
    /// Value shape.
    pub kind: OptionKind,
    /// Versions that support (and emit) the key; empty = all versions, never emitted.
    pub versions: &'static [AwgVersion],
}

impl OptionSpec {
    /// Whether `version` supports this key.
    pub fn supported_by(&self, version: AwgVersion) -> bool {
        self.versions.is_empty() || self.versions.contains(&version)
    }
}

const V31: &[AwgVersion] = &[AwgVersion::V3_1];
const V15: &[AwgVersion] = &[AwgVersion::V1_5];

/// Config option keys.
pub const CONFIG_OPTIONS: &[OptionSpec] = &[
    OptionSpec { key: OPT_HEADER_PROTECTION_KEY, label: "HeaderProtectionKey", kind: OptionKind::Key32, versions: V31 },
    OptionSpec { key: OPT_RANDOM_TRAILERS, label: "RandomTrailers", kind: OptionKind::Bool, versions: V31 },
    OptionSpec { key: OPT_RANDOM_DIRECTION, label: "Random direction", kind: OptionKind::Direction, versions: &[] },
    OptionSpec { key: OPT_RANDOM_INTENSITY, label: "Random intensity", kind: OptionKind::Intensity, versions: &[] },
];

/// Node option keys, in rendering order within their version.
pub const NODE_OPTIONS: &[OptionSpec] = &[
    OptionSpec { key: OPT_CONTENT_PADDING_ADDITION, label: "ContentPaddingAddition", kind: OptionKind::Range16, versions: V31 },
    OptionSpec { key: OPT_REKEY_AFTER_TIME, label: "RekeyAfterTime", kind: OptionKind::Range16, versions: V31 },
    OptionSpec { key: OPT_REKEY_TIMEOUT, label: "RekeyTimeout", kind: OptionKind::Range16, versions: V31 },
    OptionSpec { key: OPT_REJECT_AFTER_TIME, label: "RejectAfterTime", kind: OptionKind::Range16, versions: V31 },
    OptionSpec { key: OPT_KEEPALIVE_TIMEOUT, label: "KeepaliveTimeout", kind: OptionKind::Range16, versions: V31 },
    OptionSpec { key: OPT_MAX_HANDSHAKE_ATTEMPTS, label: "MaxHandshakeAttempts", kind: OptionKind::Range16, versions: V31 },
    OptionSpec { key: OPT_DISABLE_COOKIES, label: "DisableCookies", kind: OptionKind::Bool, versions: V31 },
    OptionSpec { key: OPT_RANDOM_TRAILERS, label: "RandomTrailers", kind: OptionKind::Bool, versions: V31 },
    OptionSpec { key: OPT_J1, label: "J1", kind: OptionKind::Cps, versions: V15 },
    OptionSpec { key: OPT_J2, label: "J2", kind: OptionKind::Cps, versions: V15 },
    OptionSpec { key: OPT_J3, label: "J3", kind: OptionKind::Cps, versions: V15 },
    OptionSpec { key: OPT_ITIME, label: "Itime", kind: OptionKind::U32, versions: V15 },
];

/// The known keys of one level.
pub fn option_specs(level: OptionLevel) -> &'static [OptionSpec] {
    match level {
        OptionLevel::Config => CONFIG_OPTIONS,
        OptionLevel::Node => NODE_OPTIONS,
    }
}

/// Looks up a key of one level.
pub fn option_spec(level: OptionLevel, key: &str) -> Option<&'static OptionSpec> {
    option_specs(level).iter().find(|s| s.key == key)
}

fn param_error(message: impl Into<String>, field: &str) -> DomainError {
    DomainError::new(codes::INVALID_AWG_PARAMETER, message).with("field", field)
}

fn between(label: &str, field: &str, lo: impl std::fmt::Display, hi: impl std::fmt::Display) -> DomainError {
    param_error(format!("{label} must be between {lo} and {hi}"), field)
}

/// Checks one option value and returns its canonical form (blank text → null; an integer
/// given for a text range becomes text).
pub fn normalize_option_value(spec: &OptionSpec, value: &Value) -> DomainResult<Value> {
    if let Value::String(s) = value
        && s.trim().is_empty()
    {
        return Ok(Value::Null);
    }
    if value.is_null() {
        return Ok(Value::Null);
    }
    let (label, key) = (spec.label, spec.key);
    match spec.kind {
        OptionKind::Key32 => {
            let s = value.as_str().map(str::trim).unwrap_or_default();
            match decode_key32(s) {
                Some(bytes) if bytes.iter().any(|b| *b != 0) => Ok(Value::String(s.to_string())),
                _ => Err(param_error(format!("{label} must be base64 of 32 bytes, not all zero"), key)),
            }
        }
        OptionKind::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err(param_error(format!("{label} must be true or false"), key)),
        },
        OptionKind::Direction => match value.as_str().map(str::trim).and_then(Direction::parse) {
            Some(d) => Ok(Value::String(d.as_str().into())),
            None => Err(param_error("Invalid AWG generation strategy", key)),
        },
        OptionKind::Intensity => match value.as_str().map(str::trim).and_then(Intensity::parse) {
            Some(i) => Ok(Value::String(i.as_str().into())),
            None => Err(param_error("Invalid AWG generation strategy", key)),
        },
        OptionKind::Range16 => {
            let text = match value {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) if n.is_u64() => n.to_string(),
                _ => String::new(),
            };
            match parse_range(&text, U16_MAX as u64) {
                Some(_) => Ok(Value::String(text)),
                None => Err(param_error(
                    format!("{label} must be a number or a range A-B with A <= B <= 65535"),
                    key,
                )),
            }
        }
        OptionKind::Cps => {
            let Some(s) = value.as_str() else {
                return Err(param_error(format!("{label} must be a valid CPS string"), key));
            };
            Ok(cps::normalize(label, key, Some(s))?.map_or(Value::Null, Value::String))
        }
        OptionKind::U32 => {
            let n = match value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) if !s.trim().is_empty() && s.trim().bytes().all(|b| b.is_ascii_digit()) => {
                    s.trim().parse::<u64>().ok()
                }
                _ => None,
            };
            match n {
                Some(n) if n <= U32_MAX => Ok(Value::from(n)),
                _ => Err(between(label, key, 0, U32_MAX)),
            }
        }
    }
}

/// Canonicalises an options map: unknown keys → `INVALID_AWG_PARAMETER` "Unknown AWG option",
/// each value checked by [`normalize_option_value`]. Nulls are kept: a present key with a null
/// value is meaningful (e.g. "no header protection key").
pub fn normalize_options(level: OptionLevel, options: &Map<String, Value>) -> DomainResult<Map<String, Value>> {
    let mut out = Map::new();
    for (key, value) in options {
        let Some(spec) = option_spec(level, key) else {
            return Err(param_error(format!("Unknown AWG option: {key}"), key));
        };
        out.insert(key.clone(), normalize_option_value(spec, value)?);
    }
    Ok(out)
}

/// Rejects, on write, a non-null key the version does not support unless it equals the stored
/// value (§5.2): `<key> is not supported by AWG <v>`. `incoming` should be normalised.
pub fn gate_options(
    level: OptionLevel,
    version: AwgVersion,
    incoming: &Map<String, Value>,
    stored: &Map<String, Value>,
) -> DomainResult<()> {
    for (key, value) in incoming {
        if value.is_null() {
            continue;
        }
        let supported = option_spec(level, key).is_some_and(|s| s.supported_by(version));
        if !supported && stored.get(key) != Some(value) {
            return Err(param_error(format!("{key} is not supported by AWG {version}"), key));
        }
    }
    Ok(())
}

/// `over` merged over `base`, key by key (a null in `over` overwrites).
pub fn merge_options(base: &Map<String, Value>, over: &Map<String, Value>) -> Map<String, Value> {
    let mut out = base.clone();
    for (k, v) in over {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Keeps only the keys `version` supports (dormant extensions dropped), for outputs that must
/// describe exactly one version (convert).
pub fn options_for_version(level: OptionLevel, version: AwgVersion, options: &Map<String, Value>) -> Map<String, Value> {
    options
        .iter()
        .filter(|(k, _)| option_spec(level, k).is_some_and(|s| s.supported_by(version)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Strict standard padded base64 of exactly 32 bytes.
fn decode_key32(s: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    bytes.try_into().ok()
}

/// Parses `N` or `A-B` (ASCII digits only) with `A ≤ B ≤ max`.
pub fn parse_range(text: &str, max: u64) -> Option<(u64, u64)> {
    fn num(s: &str, max: u64) -> Option<u64> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u64>().ok().filter(|n| *n <= max)
    }
    match text.split_once('-') {
        None => num(text, max).map(|n| (n, n)),
        Some((a, b)) => {
            let (a, b) = (num(a, max)?, num(b, max)?);
            (a <= b).then_some((a, b))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parameter sets
// ---------------------------------------------------------------------------------------------

fn null_as_empty_map<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

/// Shared (config-level) AWG parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SharedParams {
    /// S1.
    pub awg_s1: Option<i64>,
    /// S2.
    pub awg_s2: Option<i64>,
    /// S3 (null or 0 on 1.5).
    pub awg_s3: Option<i64>,
    /// S4 (null or 0 on 1.5).
    pub awg_s4: Option<i64>,
    /// H1: `N` or `A-B`.
    pub awg_h1: Option<String>,
    /// H2.
    pub awg_h2: Option<String>,
    /// H3.
    pub awg_h3: Option<String>,
    /// H4.
    pub awg_h4: Option<String>,
    /// Config options (§5.2).
    #[serde(deserialize_with = "null_as_empty_map")]
    pub awg_options: Map<String, Value>,
}

/// Field names of S1–S4, in order.
pub const S_FIELDS: [&str; 4] = ["awg_s1", "awg_s2", "awg_s3", "awg_s4"];
/// Field names of H1–H4, in order.
pub const H_FIELDS: [&str; 4] = ["awg_h1", "awg_h2", "awg_h3", "awg_h4"];
/// Field names of I1–I5, in order.
pub const I_FIELDS: [&str; 5] = ["awg_i1", "awg_i2", "awg_i3", "awg_i4", "awg_i5"];

impl SharedParams {
    /// S1–S4.
    pub fn s(&self) -> [Option<i64>; 4] {
        [self.awg_s1, self.awg_s2, self.awg_s3, self.awg_s4]
    }

    /// Mutable S1–S4.
    pub fn s_mut(&mut self) -> [&mut Option<i64>; 4] {
        [&mut self.awg_s1, &mut self.awg_s2, &mut self.awg_s3, &mut self.awg_s4]
    }

    /// H1–H4.
    pub fn h(&self) -> [Option<&str>; 4] {
        [self.awg_h1.as_deref(), self.awg_h2.as_deref(), self.awg_h3.as_deref(), self.awg_h4.as_deref()]
    }

    /// Mutable H1–H4.
    pub fn h_mut(&mut self) -> [&mut Option<String>; 4] {
        [&mut self.awg_h1, &mut self.awg_h2, &mut self.awg_h3, &mut self.awg_h4]
    }

    /// Shared RandomTrailers when set (3.1).
    pub fn random_trailers(&self) -> Option<bool> {
        self.awg_options.get(OPT_RANDOM_TRAILERS).and_then(Value::as_bool)
    }

    /// The header protection key when set and non-empty.
    pub fn header_protection_key(&self) -> Option<&str> {
        self.awg_options
            .get(OPT_HEADER_PROTECTION_KEY)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Input hygiene: H trimmed (blank → null), options canonicalised (unknown keys and bad
    /// option values rejected). Ranges and cross-field rules are [`validate_config_params`].
    pub fn normalized(mut self) -> DomainResult<Self> {
        for h in self.h_mut() {
            *h = h.take().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        }
        self.awg_options = normalize_options(OptionLevel::Config, &self.awg_options)?;
        Ok(self)
    }

    /// All AWG fields null, options empty (what a WireGuard config stores).
    pub fn cleared() -> Self {
        Self::default()
    }
}

/// Per-node AWG parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeParams {
    /// Jc.
    pub awg_jc: Option<i64>,
    /// Jmin.
    pub awg_jmin: Option<i64>,
    /// Jmax.
    pub awg_jmax: Option<i64>,
    /// I1 (CPS).
    pub awg_i1: Option<String>,
    /// I2.
    pub awg_i2: Option<String>,
    /// I3.
    pub awg_i3: Option<String>,
    /// I4.
    pub awg_i4: Option<String>,
    /// I5.
    pub awg_i5: Option<String>,
    /// Node options (§5.2).
    #[serde(deserialize_with = "null_as_empty_map")]
    pub awg_options: Map<String, Value>,
}

impl NodeParams {
    /// I1–I5.
    pub fn i(&self) -> [Option<&str>; 5] {
        [
            self.awg_i1.as_deref(),
            self.awg_i2.as_deref(),
            self.awg_i3.as_deref(),
            self.awg_i4.as_deref(),
            self.awg_i5.as_deref(),
        ]
    }

    /// Mutable I1–I5.
    pub fn i_mut(&mut self) -> [&mut Option<String>; 5] {
        [&mut self.awg_i1, &mut self.awg_i2, &mut self.awg_i3, &mut self.awg_i4, &mut self.awg_i5]
    }

    /// Node RandomTrailers when set.
    pub fn random_trailers(&self) -> Option<bool> {
        self.awg_options.get(OPT_RANDOM_TRAILERS).and_then(Value::as_bool)
    }

    /// Input hygiene: I values trimmed (blank → null), options canonicalised. The CPS grammar
    /// itself is checked by [`validate_node_values`].
    pub fn normalized(mut self) -> DomainResult<Self> {
        for i in self.i_mut() {
            *i = i.take().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        }
        self.awg_options = normalize_options(OptionLevel::Node, &self.awg_options)?;
        Ok(self)
    }

    /// All AWG fields null, options empty (what a WireGuard node stores).
    pub fn cleared() -> Self {
        Self::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Validation (§5.3)
// ---------------------------------------------------------------------------------------------

fn check_u16(label: &str, field: &str, value: Option<i64>) -> DomainResult<()> {
    match value {
        Some(v) if !(0..=U16_MAX).contains(&v) => Err(between(label, field, 0, U16_MAX)),
        _ => Ok(()),
    }
}

fn h_error(message: impl Into<String>, field: &str) -> DomainError {
    DomainError::new(codes::INVALID_AWG_H_RANGE, message).with("field", field)
}

/// Parses one H value (`N` or `A-B` within uint32) into an inclusive range.
pub fn parse_h(label: &str, field: &str, value: &str) -> DomainResult<(u64, u64)> {
    let text = value.trim();
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return Err(h_error(format!("{label} must be a number or a range A-B of non-negative integers"), field));
    }
    let num = |s: &str| s.parse::<u64>().ok().filter(|n| *n <= U32_MAX);
    let (Some(a), Some(b)) = (num(a), num(b)) else {
        return Err(h_error(format!("{label} must be within 0 and {U32_MAX}"), field));
    };
    if a > b {
        return Err(h_error(format!("{label} start must not be greater than its end"), field));
    }
    Ok((a, b))
}

/// Checks the options of a config (§5.2 values) and the shared rules of §5.3 for `version`.
pub fn validate_config_params(version: AwgVersion, shared: &SharedParams) -> DomainResult<()> {
    let s = shared.s();
    for (i, v) in s.iter().enumerate() {
        check_u16(&format!("S{}", i + 1), S_FIELDS[i], *v)?;
    }
    if version == AwgVersion::V1_5 {
        for i in [2, 3] {
            if !matches!(s[i], None | Some(0)) {
                return Err(param_error(format!("S{} must be 0 or empty for AWG 1.5", i + 1), S_FIELDS[i]));
            }
        }
        if let (Some(s1), Some(s2)) = (s[0], s[1])
            && s2 == s1 + 56
        {
            return Err(param_error("S2 must not equal S1 + 56 for AWG 1.5", S_FIELDS[1]));
        }
    }
    let mut ranges: Vec<(usize, (u64, u64))> = Vec::new();
    for (i, h) in shared.h().iter().enumerate() {
        let Some(h) = h.map(str::trim).filter(|h| !h.is_empty()) else { continue };
        let label = format!("H{}", i + 1);
        if version == AwgVersion::V1_5 && h.contains('-') {
            return Err(h_error(format!("{label} must be a single integer for AWG 1.5"), H_FIELDS[i]));
        }
        let r = parse_h(&label, H_FIELDS[i], h)?;
        if let Some((j, _)) = ranges.iter().find(|(_, o)| r.0 <= o.1 && o.0 <= r.1) {
            return Err(h_error(format!("H{} and {label} must not overlap", j + 1), H_FIELDS[i]));
        }
        ranges.push((i, r));
    }
    let options = normalize_options(OptionLevel::Config, &shared.awg_options)?;
    if version == AwgVersion::V3_1
        && options.get(OPT_HEADER_PROTECTION_KEY).and_then(Value::as_str).is_some_and(|k| !k.is_empty())
        && !s.iter().all(|v| v.is_some_and(|v| v >= 12))
    {
        return Err(param_error(
            "AWG 3.1 with a HeaderProtectionKey needs S1, S2, S3 and S4 set to at least 12",
            "awg_s1",
        ));
    }
    // A shared RandomTrailers is every node's effective value, so its S rule holds config-wide.
    if version == AwgVersion::V3_1
        && options.get(OPT_RANDOM_TRAILERS).and_then(Value::as_bool) == Some(true)
        && s.iter().any(|v| *v != s[0])
    {
        return Err(param_error("RandomTrailers needs S1, S2, S3 and S4 to be equal", "awg_s1"));
    }
    Ok(())
}

/// Checks one node's own values (§5.2 formats, J range, CPS, 3.1 timing rule) for `version`,
/// without the rules that tie it to the shared values ([`check_mesh_rules`]).
pub fn validate_node_values(version: AwgVersion, node: &NodeParams) -> DomainResult<()> {
    check_u16("Jc", "awg_jc", node.awg_jc)?;
    check_u16("Jmin", "awg_jmin", node.awg_jmin)?;
    check_u16("Jmax", "awg_jmax", node.awg_jmax)?;
    if let (Some(jmin), Some(jmax)) = (node.awg_jmin, node.awg_jmax)
        && jmax <= jmin
    {
        return Err(DomainError::new(codes::INVALID_AWG_J_RANGE, "Jmax must be greater than Jmin").with("field", "awg_jmax"));
    }
    for (i, v) in node.i().iter().enumerate() {
        if let Some(v) = v
            && !v.trim().is_empty()
        {
            let label = format!("I{}", i + 1);
            cps::normalize(&label, I_FIELDS[i], Some(v))?;
        }
    }
    let options = normalize_options(OptionLevel::Node, &node.awg_options)?;
    if version == AwgVersion::V3_1 {
        let range = |key: &str| options.get(key).and_then(Value::as_str).and_then(|t| parse_range(t, U16_MAX as u64));
        if let (Some(reject), Some(rekey)) = (range(OPT_REJECT_AFTER_TIME), range(OPT_REKEY_AFTER_TIME))
            && reject.0 != 0
            && rekey.1 != 0
            && reject.0 <= rekey.1
        {
            return Err(param_error(
                "RejectAfterTime must start after RekeyAfterTime ends",
                OPT_REJECT_AFTER_TIME,
            ));
        }
    }
    Ok(())
}

/// The rules tying a node to its mesh's shared values (3.1 RandomTrailers, §5.3).
pub fn check_mesh_rules(version: AwgVersion, shared: &SharedParams, node: &NodeParams) -> DomainResult<()> {
    if version != AwgVersion::V3_1 {
        return Ok(());
    }
    let shared_rt = shared.random_trailers();
    let node_rt = node.random_trailers();
    if let (Some(a), Some(b)) = (shared_rt, node_rt)
        && a != b
    {
        return Err(param_error(
            "Node RandomTrailers must match the shared RandomTrailers",
            OPT_RANDOM_TRAILERS,
        ));
    }
    if shared_rt.or(node_rt) == Some(true) {
        let s = shared.s();
        if s.iter().any(|v| *v != s[0]) {
            return Err(param_error("RandomTrailers needs S1, S2, S3 and S4 to be equal", "awg_s1"));
        }
    }
    Ok(())
}

/// Everything a node must satisfy (§5.3): [`validate_node_values`] then [`check_mesh_rules`].
pub fn validate_node_params(version: AwgVersion, shared: &SharedParams, node: &NodeParams) -> DomainResult<()> {
    validate_node_values(version, node)?;
    check_mesh_rules(version, shared, node)
}

/// The one RandomTrailers value every node of a 3.1 mesh agrees on, for resolving a null
/// shared value (generate, §5.8): node default `true`, no nodes → `true`; disagreement →
/// `INVALID_AWG_PARAMETER`.
pub fn unanimous_random_trailers<'a>(nodes: impl IntoIterator<Item = &'a NodeParams>) -> DomainResult<bool> {
    let mut seen: Option<bool> = None;
    for n in nodes {
        let v = n.random_trailers().unwrap_or(true);
        match seen {
            Some(s) if s != v => {
                return Err(param_error(
                    "Choose a shared RandomTrailers value: the nodes disagree",
                    OPT_RANDOM_TRAILERS,
                ));
            }
            _ => seen = Some(v),
        }
    }
    Ok(seen.unwrap_or(true))
}

// ---------------------------------------------------------------------------------------------
// Protocol options (§5.5)
// ---------------------------------------------------------------------------------------------

/// The body of `GET /configs/protocol-options`.
pub fn protocol_options() -> Value {
    let mut versions = Map::new();
    for v in AwgVersion::ALL {
        let s_fields: Vec<&str> = match v {
            AwgVersion::V1_5 => S_FIELDS[..2].to_vec(),
            _ => S_FIELDS.to_vec(),
        };
        let labels = |specs: &[OptionSpec], skip: &[&str]| -> Map<String, Value> {
            specs
                .iter()
                .filter(|s| !s.versions.is_empty() && s.supported_by(v) && !skip.contains(&s.key))
                .map(|s| (s.key.to_string(), Value::String(s.label.to_string())))
                .collect()
        };
        versions.insert(
            v.as_str().to_string(),
            json!({
                "s_fields": s_fields,
                "h_format": if v == AwgVersion::V1_5 { "integer" } else { "range" },
                "config_options": labels(CONFIG_OPTIONS, &[]),
                // Node RandomTrailers is edited through the shared value in the console.
                "node_options": labels(NODE_OPTIONS, &[OPT_RANDOM_TRAILERS]),
            }),
        );
    }
    json!({
        "default_awg_version": AwgVersion::UI_DEFAULT.as_str(),
        "awg_versions": AwgVersion::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
        "versions": versions,
    })
}

#[cfg(test)]
mod tests;
