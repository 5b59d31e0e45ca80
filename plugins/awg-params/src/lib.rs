//! # awg-params — the AmneziaWG parameter plugin
//!
//! Generates AmneziaWG obfuscation parameters (spec 02 §5.6–5.8): shared S/H sets and
//! header-protection keys, per-node J values, I packet chains that imitate a protocol
//! (generic, dns, stun, rtp, quic — the QUIC one is a real RFC 9001 Initial), and the
//! stateless `generate` and `convert` operations. The shared generators, backfill rules and
//! validators come from `wfm-domain` (through the SDK), so the host re-checks every result
//! with the very same code.
//!
//! It needs no capabilities: every tool is a pure function of its input and random bytes.
//! Randomness is the platform CSPRNG (`wasi:random`); a `seed` input switches to a seeded,
//! non-cryptographic generator, for reproducible tests only.
//!
//! Layout: `packets.rs` (I packet directions), `quic.rs` (the QUIC Initial), this file (tools).

pub mod packets;
pub mod quic;

use packets::AllDirections;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use wfm_plugin_sdk::domain::awg::random::{self as rand_gen, OsRng, Rng, SplitMix64};
use wfm_plugin_sdk::domain::awg::{
    self, AwgVersion, NodeParams, OPT_CONTENT_PADDING_ADDITION, OPT_DISABLE_COOKIES, OPT_HEADER_PROTECTION_KEY,
    OPT_ITIME, OPT_J1, OPT_J2, OPT_J3, OPT_KEEPALIVE_TIMEOUT, OPT_MAX_HANDSHAKE_ATTEMPTS, OPT_RANDOM_TRAILERS,
    OPT_REJECT_AFTER_TIME, OPT_REKEY_AFTER_TIME, OPT_REKEY_TIMEOUT, SharedParams, Strategy,
};
use wfm_plugin_sdk::domain::error::codes;
use wfm_plugin_sdk::domain::DomainError;
use wfm_plugin_sdk::schemars;
use wfm_plugin_sdk::{Capability, Context, ErrorKind, Plugin, ToolError, ToolSpec, Tools};

/// The plugin.
pub struct AwgParams;

impl Plugin for AwgParams {
    const ID: &'static str = "awg-params";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAME: &'static str = "AmneziaWG parameters";
    const DESCRIPTION: &'static str =
        "Random AmneziaWG obfuscation parameters, protocol-imitating I packets, generate and convert.";
    const CAPABILITIES: &'static [Capability] = &[];

    fn tools() -> Tools {
        Tools::new()
            .tool(
                ToolSpec::new("random_config_params", "A fresh random shared S1-S4/H1-H4 set for an AWG version; optionally a new 3.1 HeaderProtectionKey.")
                    .title("Random shared AWG parameters")
                    .read_only(),
                random_config_params,
            )
            .tool(
                ToolSpec::new("random_node_params", "Random per-node AWG values (Jc/Jmin/Jmax, generic I packets, version options) for an empty node.")
                    .title("Random node AWG parameters")
                    .read_only(),
                random_node_params,
            )
            .tool(
                ToolSpec::new("generate", "Regenerates shared and/or node AWG parameters with a direction and intensity strategy; validates the result. Writes nothing.")
                    .title("Generate AWG parameters")
                    .read_only(),
                generate,
            )
            .tool(
                ToolSpec::new("convert", "Converts a config's shared AWG parameters to another AWG version, backfills and validates them.")
                    .title("Convert AWG version")
                    .read_only(),
                convert,
            )
            .tool(
                ToolSpec::new("backfill_node", "Fills a node's missing AWG values with a strategy (the saved one by default); given values win.")
                    .title("Backfill node AWG parameters")
                    .read_only(),
                backfill_node,
            )
    }
}

wfm_plugin_sdk::register_plugin!(AwgParams);

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// Shared (config-level) AWG values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SharedOut {
    /// S1.
    pub awg_s1: Option<i64>,
    /// S2.
    pub awg_s2: Option<i64>,
    /// S3.
    pub awg_s3: Option<i64>,
    /// S4.
    pub awg_s4: Option<i64>,
    /// H1 (`N` or `A-B`).
    pub awg_h1: Option<String>,
    /// H2.
    pub awg_h2: Option<String>,
    /// H3.
    pub awg_h3: Option<String>,
    /// H4.
    pub awg_h4: Option<String>,
    /// Config options.
    pub awg_options: Map<String, Value>,
}

impl From<SharedParams> for SharedOut {
    fn from(s: SharedParams) -> Self {
        Self {
            awg_s1: s.awg_s1,
            awg_s2: s.awg_s2,
            awg_s3: s.awg_s3,
            awg_s4: s.awg_s4,
            awg_h1: s.awg_h1,
            awg_h2: s.awg_h2,
            awg_h3: s.awg_h3,
            awg_h4: s.awg_h4,
            awg_options: s.awg_options,
        }
    }
}

/// Per-node AWG values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeOut {
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
    /// Node options.
    pub awg_options: Map<String, Value>,
}

impl From<NodeParams> for NodeOut {
    fn from(n: NodeParams) -> Self {
        Self {
            awg_jc: n.awg_jc,
            awg_jmin: n.awg_jmin,
            awg_jmax: n.awg_jmax,
            awg_i1: n.awg_i1,
            awg_i2: n.awg_i2,
            awg_i3: n.awg_i3,
            awg_i4: n.awg_i4,
            awg_i5: n.awg_i5,
            awg_options: n.awg_options,
        }
    }
}

/// Output of `random_config_params`: S and H, plus the key when asked for.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RandomConfigOut {
    /// S1.
    pub awg_s1: Option<i64>,
    /// S2.
    pub awg_s2: Option<i64>,
    /// S3.
    pub awg_s3: Option<i64>,
    /// S4.
    pub awg_s4: Option<i64>,
    /// H1.
    pub awg_h1: Option<String>,
    /// H2.
    pub awg_h2: Option<String>,
    /// H3.
    pub awg_h3: Option<String>,
    /// H4.
    pub awg_h4: Option<String>,
    /// `{header_protection_key}` when `regenerate_key` was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awg_options: Option<Map<String, Value>>,
}

/// Input of `random_config_params`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RandomConfigIn {
    /// `1.5`, `2.0` (default) or `3.1`.
    #[serde(default)]
    pub awg_version: Option<String>,
    /// Also create a new HeaderProtectionKey (3.1 only).
    #[serde(default)]
    pub regenerate_key: bool,
    /// Seeded, non-cryptographic randomness for reproducible tests.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Input of `random_node_params`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RandomNodeIn {
    /// `1.5`, `2.0` (default) or `3.1`.
    #[serde(default)]
    pub awg_version: Option<String>,
    /// Seeded, non-cryptographic randomness for reproducible tests.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Which values `generate` regenerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Shared values and every node.
    #[default]
    All,
    /// Exactly one node; shared values are only validated.
    Node,
}

/// Input of `generate` (the body of `POST /configs/awg/generate`).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GenerateIn {
    /// Target AWG version.
    pub awg_version: String,
    /// `all` (default) or `node`.
    #[serde(default)]
    pub scope: Scope,
    /// `generic` (default), `dns`, `stun`, `rtp`, `quic`.
    #[serde(default)]
    pub direction: Option<String>,
    /// `low`, `balanced` (default), `high`.
    #[serde(default)]
    pub intensity: Option<String>,
    /// Current shared values (`awg_s1..4`, `awg_h1..4`, `awg_options`).
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Current node values by node id.
    #[serde(default)]
    pub nodes: BTreeMap<String, Map<String, Value>>,
    /// Seeded, non-cryptographic randomness for reproducible tests.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Output of `generate`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GenerateOut {
    /// Shared values.
    pub config: SharedOut,
    /// Node values by node id.
    pub nodes: BTreeMap<String, NodeOut>,
}

/// Input of `convert` (a config body plus the versions).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConvertIn {
    /// Target AWG version.
    pub awg_version: String,
    /// The version the values were made for, if known.
    #[serde(default)]
    pub source_version: Option<String>,
    /// Config name (unused; `conversion` by default upstream).
    #[serde(default)]
    pub name: Option<String>,
    /// Seeded, non-cryptographic randomness for reproducible tests.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The rest of the config body (`awg_s1..4`, `awg_h1..4`, `awg_options`, ...).
    #[serde(flatten)]
    pub config: Map<String, Value>,
}

/// Input of `backfill_node`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BackfillNodeIn {
    /// The config's AWG version.
    pub awg_version: String,
    /// The config's options (supply the saved strategy and RandomTrailers).
    #[serde(default)]
    pub config_options: Map<String, Value>,
    /// The node's current values; nulls are filled.
    #[serde(default)]
    pub node: Map<String, Value>,
    /// Overrides the saved direction.
    #[serde(default)]
    pub direction: Option<String>,
    /// Overrides the saved intensity.
    #[serde(default)]
    pub intensity: Option<String>,
    /// Seeded, non-cryptographic randomness for reproducible tests.
    #[serde(default)]
    pub seed: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn domain_err(e: DomainError) -> ToolError {
    let kind = if e.code == codes::INTERNAL_ERROR { ErrorKind::Failed } else { ErrorKind::InvalidInput };
    let detail = (!e.detail.is_empty()).then(|| Value::Object(e.detail.clone()));
    ToolError { kind, code: e.code.to_string(), message: e.message, detail }
}

fn rng_for(seed: Option<u64>) -> Box<dyn Rng> {
    match seed {
        Some(s) => Box::new(SplitMix64(s)),
        None => Box::new(OsRng),
    }
}

fn version_or_default(v: Option<&str>) -> Result<AwgVersion, ToolError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(AwgVersion::RANDOM_DEFAULT),
        Some(v) => AwgVersion::parse(v).map_err(domain_err),
    }
}

fn param_error(message: &str, field: &str) -> ToolError {
    domain_err(DomainError::new(codes::INVALID_AWG_PARAMETER, message).with("field", field))
}

fn shared_from(map: &Map<String, Value>) -> Result<SharedParams, ToolError> {
    let shared: SharedParams = serde_json::from_value(Value::Object(map.clone()))
        .map_err(|e| param_error(&format!("Invalid shared AWG values: {e}"), "config"))?;
    shared.normalized().map_err(domain_err)
}

fn node_from(map: &Map<String, Value>, field: &str) -> Result<NodeParams, ToolError> {
    let node: NodeParams = serde_json::from_value(Value::Object(map.clone()))
        .map_err(|e| param_error(&format!("Invalid node AWG values: {e}"), field))?;
    node.normalized().map_err(domain_err)
}

/// The keys `generate` regenerates on every node (§5.8 step 4).
fn regenerated_keys(version: AwgVersion) -> &'static [&'static str] {
    match version {
        AwgVersion::V3_1 => &[
            OPT_CONTENT_PADDING_ADDITION,
            OPT_REKEY_AFTER_TIME,
            OPT_REKEY_TIMEOUT,
            OPT_REJECT_AFTER_TIME,
            OPT_KEEPALIVE_TIMEOUT,
            OPT_MAX_HANDSHAKE_ATTEMPTS,
        ],
        AwgVersion::V1_5 => &[OPT_J1, OPT_J2, OPT_J3, OPT_ITIME],
        AwgVersion::V2_0 => &[],
    }
}

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

/// `random_config_params` (`POST /configs/awg/random`).
pub fn random_config_params(_ctx: &Context, input: RandomConfigIn) -> Result<RandomConfigOut, ToolError> {
    let version = version_or_default(input.awg_version.as_deref())?;
    if input.regenerate_key && version != AwgVersion::V3_1 {
        return Err(domain_err(
            DomainError::new(codes::INVALID_AWG_VERSION, "regenerate_key needs AWG version 3.1")
                .with("value", version.as_str()),
        ));
    }
    let mut rng = rng_for(input.seed);
    let mut shared = rand_gen::fresh_shared(version, rng.as_mut());
    let awg_options = if input.regenerate_key {
        let mut opts = Map::new();
        opts.insert(OPT_HEADER_PROTECTION_KEY.into(), Value::String(rand_gen::header_protection_key(rng.as_mut())));
        shared.awg_options = opts.clone();
        Some(opts)
    } else {
        None
    };
    awg::validate_config_params(version, &shared).map_err(domain_err)?;
    Ok(RandomConfigOut {
        awg_s1: shared.awg_s1,
        awg_s2: shared.awg_s2,
        awg_s3: shared.awg_s3,
        awg_s4: shared.awg_s4,
        awg_h1: shared.awg_h1,
        awg_h2: shared.awg_h2,
        awg_h3: shared.awg_h3,
        awg_h4: shared.awg_h4,
        awg_options,
    })
}

/// `random_node_params` (`POST /nodes/awg/random`): backfill of an empty node, generic/balanced.
pub fn random_node_params(_ctx: &Context, input: RandomNodeIn) -> Result<NodeOut, ToolError> {
    let version = version_or_default(input.awg_version.as_deref())?;
    let mut rng = rng_for(input.seed);
    let mut node = NodeParams::default();
    rand_gen::backfill_node(version, &Map::new(), &mut node, Strategy::default(), &mut AllDirections, rng.as_mut())
        .map_err(domain_err)?;
    awg::validate_node_values(version, &node).map_err(domain_err)?;
    Ok(node.into())
}

/// `generate` (`POST /configs/awg/generate`, spec 02 §5.8).
pub fn generate(_ctx: &Context, input: GenerateIn) -> Result<GenerateOut, ToolError> {
    // (1) version, strategy, inputs.
    let version = AwgVersion::parse(&input.awg_version).map_err(domain_err)?;
    let strategy = Strategy::parse(input.direction.as_deref(), input.intensity.as_deref()).map_err(domain_err)?;
    let mut shared = shared_from(&input.config)?;
    let mut nodes = BTreeMap::new();
    for (id, values) in &input.nodes {
        nodes.insert(id.clone(), node_from(values, id)?);
    }
    if input.scope == Scope::Node && nodes.len() != 1 {
        return Err(param_error("scope=node needs exactly one node", "nodes"));
    }
    let mut rng = rng_for(input.seed);
    let rng = rng.as_mut();

    if input.scope == Scope::All {
        // (2) strategy, RandomTrailers and key.
        strategy.store_into(&mut shared.awg_options);
        if version == AwgVersion::V3_1 {
            if shared.awg_options.get(OPT_RANDOM_TRAILERS).is_none_or(Value::is_null) {
                let rt = awg::unanimous_random_trailers(nodes.values()).map_err(domain_err)?;
                shared.awg_options.insert(OPT_RANDOM_TRAILERS.into(), Value::Bool(rt));
            }
            rand_gen::ensure_header_protection_key(&mut shared.awg_options, rng);
        }
        // (3) fresh shared values, S drawn against the intensity's maximum.
        let fresh = rand_gen::fresh_shared(version, rng);
        let s_max = strategy.intensity.profile().s_max;
        let mut s = [0i64; 4];
        match version {
            AwgVersion::V3_1 => {
                let lo = if shared.header_protection_key().is_some() { 12 } else { 0 };
                s = [rng.range(lo, s_max) as i64; 4];
            }
            AwgVersion::V2_0 => {
                for v in &mut s {
                    *v = rng.range(0, s_max) as i64;
                }
            }
            AwgVersion::V1_5 => {
                s[0] = rng.range(0, s_max) as i64;
                s[1] = rng.range(0, s_max) as i64;
                if s[1] == s[0] + 56 {
                    s[1] = 0;
                }
            }
        }
        shared.awg_s1 = Some(s[0]);
        shared.awg_s2 = Some(s[1]);
        shared.awg_s3 = Some(s[2]);
        shared.awg_s4 = Some(s[3]);
        shared.awg_h1 = fresh.awg_h1;
        shared.awg_h2 = fresh.awg_h2;
        shared.awg_h3 = fresh.awg_h3;
        shared.awg_h4 = fresh.awg_h4;
    }
    awg::validate_config_params(version, &shared).map_err(domain_err)?;

    // (4) per node: fresh J and I, regenerated option keys, version defaults.
    let mut out = BTreeMap::new();
    for (id, mut node) in nodes {
        node.awg_jc = None;
        node.awg_jmin = None;
        node.awg_jmax = None;
        for slot in node.i_mut() {
            *slot = None;
        }
        for key in regenerated_keys(version) {
            node.awg_options.remove(*key);
        }
        if version == AwgVersion::V3_1 && input.scope == Scope::All {
            if let Some(rt) = shared.random_trailers() {
                node.awg_options.insert(OPT_RANDOM_TRAILERS.into(), Value::Bool(rt));
            }
            if node.awg_options.get(OPT_DISABLE_COOKIES).is_none_or(Value::is_null) {
                node.awg_options.insert(OPT_DISABLE_COOKIES.into(), Value::Bool(false));
            }
        }
        rand_gen::backfill_node(version, &shared.awg_options, &mut node, strategy, &mut AllDirections, rng)
            .map_err(domain_err)?;
        awg::validate_node_params(version, &shared, &node).map_err(domain_err)?;
        out.insert(id, node.into());
    }
    Ok(GenerateOut { config: shared.into(), nodes: out })
}

/// `convert` (`POST /configs/awg/convert`, spec 02 §5.8).
pub fn convert(_ctx: &Context, input: ConvertIn) -> Result<SharedOut, ToolError> {
    let target = AwgVersion::parse(&input.awg_version).map_err(domain_err)?;
    let source = match input.source_version.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(v) => Some(AwgVersion::parse(v).map_err(domain_err)?),
        None => None,
    };
    let stored = shared_from(&input.config)?;
    let mut rng = rng_for(input.seed);
    let converted = rand_gen::convert_shared(source, target, &stored, rng.as_mut());
    awg::validate_config_params(target, &converted).map_err(domain_err)?;
    Ok(converted.into())
}

/// `backfill_node`: fills a node's nulls with the (saved or given) strategy.
pub fn backfill_node(_ctx: &Context, input: BackfillNodeIn) -> Result<NodeOut, ToolError> {
    let version = AwgVersion::parse(&input.awg_version).map_err(domain_err)?;
    let saved = Strategy::from_config_options(&input.config_options);
    let strategy = Strategy::parse(
        input.direction.as_deref().or(Some(saved.direction.as_str())),
        input.intensity.as_deref().or(Some(saved.intensity.as_str())),
    )
    .map_err(domain_err)?;
    let mut node = node_from(&input.node, "node")?;
    let mut rng = rng_for(input.seed);
    rand_gen::backfill_node(version, &input.config_options, &mut node, strategy, &mut AllDirections, rng.as_mut())
        .map_err(domain_err)?;
    awg::validate_node_values(version, &node).map_err(domain_err)?;
    Ok(node.into())
}

#[cfg(test)]
mod tests;
