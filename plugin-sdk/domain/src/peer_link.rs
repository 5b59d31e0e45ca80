//! Mesh pairs: request normalisation, update matching and drafts (spec 02 §6.1–§6.4).
//!
//! A pair is two link rows sharing a `link_group_id`, one per direction. These functions decide
//! what gets stored; looking nodes up and writing rows is the host's job.
//!
//! WFM decisions on the upstream gaps (spec 02 §10.7):
//! - a pair whose two directions name the same node is rejected (`INVALID_PEER_LINK`);
//! - both rows of a pair always carry the same preshared key (WireGuard needs the same key on
//!   both ends): the group key wins, else the one direction key given; two different direction
//!   keys without a group key are `INVALID_PEER_LINK`;
//! - preshared keys must decode to 32 bytes (`INVALID_KEY`); anything else would make the
//!   rendered file unusable;
//! - an update keeps the stored key when none is sent (as upstream); `clear_preshared_key: true`
//!   removes it.

use serde::{Deserialize, Serialize};

use crate::allowed_ips::normalize_allowed_ips;
use crate::endpoint::{EndpointFamily, EndpointMode, EndpointSettings, PeerAddress, PortMode, keepalive_display, resolve};
use crate::error::{DomainError, DomainResult};

/// API code: self-link or mismatched directions.
pub const INVALID_PEER_LINK: &str = "INVALID_PEER_LINK";
/// API code: manual Endpoint without host or port.
pub const INVALID_ENDPOINT: &str = "INVALID_ENDPOINT";
/// API code of a malformed key.
pub const INVALID_KEY: &str = "INVALID_KEY";

/// Keepalive Quick Mesh and drafts propose when the peer has a public entry.
pub const DEFAULT_KEEPALIVE: i64 = 25;

/// One direction of a pair request (§6.1). Schema bounds (non-blank ids and AllowedIPs,
/// keepalive 0–65535, port 1–65535) are the caller's 422 checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionInput {
    /// Node whose file gets this row.
    pub local_node_id: String,
    /// Node the row describes.
    pub peer_node_id: String,
    /// Comma-separated CIDR list.
    pub allowed_ips: String,
    /// Requested keepalive; dropped when the direction has no Endpoint.
    #[serde(default)]
    pub persistent_keepalive: Option<i64>,
    /// Direction PSK (the group PSK wins).
    #[serde(default)]
    pub preshared_key: Option<String>,
    /// Host selection.
    #[serde(default)]
    pub endpoint_mode: EndpointMode,
    /// Family for `auto`.
    #[serde(default)]
    pub endpoint_ref_family: Option<EndpointFamily>,
    /// Host for `manual`.
    #[serde(default)]
    pub endpoint_manual_host: Option<String>,
    /// Port selection.
    #[serde(default)]
    pub endpoint_port_mode: PortMode,
    /// Manual port.
    #[serde(default)]
    pub endpoint_manual_port: Option<i64>,
    /// Ignored: the group's notes win.
    #[serde(default)]
    pub notes: Option<String>,
    /// Ignored: the group's flag wins.
    #[serde(default)]
    pub enabled: Option<bool>,
}

fn default_true() -> bool {
    true
}

/// Body of `POST /configs/{id}/peer-links` and `PUT /peer-links/{group_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairInput {
    /// Local → peer.
    pub forward: DirectionInput,
    /// Peer → local.
    pub reverse: DirectionInput,
    /// Group PSK, used for both rows.
    #[serde(default)]
    pub preshared_key: Option<String>,
    /// Group notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// Group flag.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// WFM extension (update only): remove the stored PSK.
    #[serde(default)]
    pub clear_preshared_key: bool,
}

/// A direction after normalisation, before the peer-dependent keepalive rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionValues {
    /// Trimmed local node id.
    pub local_node_id: String,
    /// Trimmed peer node id.
    pub peer_node_id: String,
    /// Normalised AllowedIPs.
    pub allowed_ips: String,
    /// Requested keepalive.
    pub persistent_keepalive: Option<i64>,
    /// Host selection.
    pub endpoint_mode: EndpointMode,
    /// Family, only in `auto`.
    pub endpoint_ref_family: Option<EndpointFamily>,
    /// Manual host (optional text).
    pub endpoint_manual_host: Option<String>,
    /// Port selection.
    pub endpoint_port_mode: PortMode,
    /// Manual port.
    pub endpoint_manual_port: Option<i64>,
}

impl DirectionValues {
    /// The endpoint settings of these values.
    pub fn settings(&self) -> EndpointSettings<'_> {
        EndpointSettings {
            mode: self.endpoint_mode,
            family: self.endpoint_ref_family.unwrap_or_default(),
            manual_host: self.endpoint_manual_host.as_deref(),
            port_mode: self.endpoint_port_mode,
            manual_port: self.endpoint_manual_port,
        }
    }

    /// The keepalive to store: the requested one only when the direction has an Endpoint.
    pub fn effective_keepalive(&self, peer: &PeerAddress<'_>, default_port: i64) -> Option<i64> {
        if resolve(&self.settings(), peer, default_port).keeps_keepalive { self.persistent_keepalive } else { None }
    }
}

/// A pair after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairValues {
    /// Local → peer.
    pub forward: DirectionValues,
    /// Peer → local.
    pub reverse: DirectionValues,
    /// PSK for both rows (`None` = none given).
    pub preshared_key: Option<String>,
    /// Group notes (`""` default).
    pub notes: String,
    /// Group flag.
    pub enabled: bool,
    /// Remove the stored PSK on update.
    pub clear_preshared_key: bool,
}

fn opt_text(v: Option<&str>) -> Option<String> {
    v.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn check_psk(psk: &str) -> DomainResult<()> {
    use base64::Engine as _;
    let ok = psk.len() == 44
        && base64::engine::general_purpose::STANDARD.decode(psk).is_ok_and(|b| b.len() == 32);
    if ok {
        Ok(())
    } else {
        Err(DomainError::new(INVALID_KEY, "Preshared key must be base64 of exactly 32 bytes").with("field", "preshared_key"))
    }
}

/// Normalises one direction: ids trimmed, AllowedIPs normalised, manual endpoint complete,
/// family kept only in `auto` (default `ipv4`).
pub fn normalize_direction(input: &DirectionInput) -> DomainResult<DirectionValues> {
    let allowed_ips = normalize_allowed_ips(&input.allowed_ips)?;
    let manual_host = opt_text(input.endpoint_manual_host.as_deref());
    if input.endpoint_mode == EndpointMode::Manual && (manual_host.is_none() || input.endpoint_manual_port.is_none()) {
        return Err(DomainError::new(INVALID_ENDPOINT, "Manual Endpoint requires Host and Port."));
    }
    Ok(DirectionValues {
        local_node_id: input.local_node_id.trim().to_string(),
        peer_node_id: input.peer_node_id.trim().to_string(),
        allowed_ips,
        persistent_keepalive: input.persistent_keepalive,
        endpoint_mode: input.endpoint_mode,
        endpoint_ref_family: (input.endpoint_mode == EndpointMode::Auto)
            .then(|| input.endpoint_ref_family.unwrap_or_default()),
        endpoint_manual_host: manual_host,
        endpoint_port_mode: input.endpoint_port_mode,
        endpoint_manual_port: input.endpoint_manual_port,
    })
}

/// Normalises a pair request. Checks: directions, self-link, AllowedIPs, manual endpoints,
/// PSK agreement and format. Node existence, config membership and enablement are the host's.
pub fn normalize_pair(input: &PairInput) -> DomainResult<PairValues> {
    let forward = normalize_direction(&input.forward)?;
    let reverse = normalize_direction(&input.reverse)?;
    if forward.local_node_id == forward.peer_node_id || reverse.local_node_id == reverse.peer_node_id {
        return Err(DomainError::new(INVALID_PEER_LINK, "A node cannot link to itself"));
    }
    if reverse.local_node_id != forward.peer_node_id || reverse.peer_node_id != forward.local_node_id {
        return Err(DomainError::new(INVALID_PEER_LINK, "Bidirectional link node direction mismatch"));
    }
    let group = opt_text(input.preshared_key.as_deref());
    let fwd = opt_text(input.forward.preshared_key.as_deref());
    let rev = opt_text(input.reverse.preshared_key.as_deref());
    let preshared_key = match (group, fwd, rev) {
        (Some(g), _, _) => Some(g),
        (None, Some(f), Some(r)) if f != r => {
            return Err(DomainError::new(
                INVALID_PEER_LINK,
                "Forward and reverse preshared keys differ; both ends of a pair must use the same key",
            ));
        }
        (None, f, r) => f.or(r),
    };
    if let Some(psk) = &preshared_key {
        check_psk(psk)?;
    }
    Ok(PairValues {
        forward,
        reverse,
        preshared_key,
        notes: input.notes.as_deref().map(str::trim).unwrap_or("").to_string(),
        enabled: input.enabled,
        clear_preshared_key: input.clear_preshared_key,
    })
}

/// Which payload direction updates which stored row (§6.2, newest behaviour): the payload's
/// `forward` may be either end's view. Returns `true` when payload `forward` describes the
/// stored forward row, `false` when it describes the stored reverse row.
///
/// `stored_forward` = (local, peer) of the stored forward row.
pub fn match_update_directions(values: &PairValues, stored_forward: (&str, &str)) -> DomainResult<bool> {
    let f = (values.forward.local_node_id.as_str(), values.forward.peer_node_id.as_str());
    let (a, b) = stored_forward;
    if f == (a, b) {
        Ok(true)
    } else if f == (b, a) {
        Ok(false)
    } else {
        Err(DomainError::new(INVALID_PEER_LINK, "Peer link nodes do not match the stored pair"))
    }
}

/// What drafts need to know about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DraftNode<'a> {
    /// Node id.
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
    /// Virtual IP as stored.
    pub virtual_ip: Option<&'a str>,
    /// Public IPv4 entry.
    pub ipv4_address: Option<&'a str>,
    /// Public IPv6 entry.
    pub ipv6_address: Option<&'a str>,
    /// Own listen port.
    pub listen_port: Option<i64>,
}

impl<'a> DraftNode<'a> {
    /// The node as an Endpoint target.
    pub fn address(&self) -> PeerAddress<'a> {
        PeerAddress { name: self.name, ipv4_address: self.ipv4_address, ipv6_address: self.ipv6_address, listen_port: self.listen_port }
    }

    fn vip(&self) -> Option<&'a str> {
        self.virtual_ip.map(str::trim).filter(|s| !s.is_empty())
    }
}

/// A proposed direction (§6.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectionDraft {
    /// Local node.
    pub local_node_id: String,
    /// Peer node.
    pub peer_node_id: String,
    /// Peer's virtual IP or `""`.
    pub allowed_ips: String,
    /// 25 when the peer has a public entry of the family.
    pub persistent_keepalive: Option<i64>,
    /// Always `auto`.
    pub endpoint_mode: EndpointMode,
    /// The requested family.
    pub endpoint_ref_family: EndpointFamily,
    /// Always `""`.
    pub endpoint_manual_host: String,
    /// Always `ref_peer_listen_port`.
    pub endpoint_port_mode: PortMode,
    /// Always null.
    pub endpoint_manual_port: Option<i64>,
    /// §6.3 summary.
    pub endpoint_summary: String,
    /// §6.3 display.
    pub keepalive_display: String,
}

/// The draft of the direction `local → peer`.
pub fn direction_draft(local: &DraftNode<'_>, peer: &DraftNode<'_>, family: EndpointFamily, default_port: i64) -> DirectionDraft {
    let r = resolve(&EndpointSettings::auto(family), &peer.address(), default_port);
    let keepalive = r.endpoint.is_some().then_some(DEFAULT_KEEPALIVE);
    DirectionDraft {
        local_node_id: local.id.to_string(),
        peer_node_id: peer.id.to_string(),
        allowed_ips: peer.vip().unwrap_or("").to_string(),
        persistent_keepalive: keepalive,
        endpoint_mode: EndpointMode::Auto,
        endpoint_ref_family: family,
        endpoint_manual_host: String::new(),
        endpoint_port_mode: PortMode::RefPeerListenPort,
        endpoint_manual_port: None,
        keepalive_display: keepalive_display(r.endpoint.is_some(), keepalive),
        endpoint_summary: r.summary,
    }
}

/// Draft warnings in spec order: peer lacks a virtual IP, local lacks one, peer lacks the
/// public entry, local lacks it.
pub fn draft_warnings(local: &DraftNode<'_>, peer: &DraftNode<'_>, family: EndpointFamily) -> Vec<String> {
    let mut w = Vec::new();
    if peer.vip().is_none() {
        w.push(format!("{} has no virtual IP; the AllowedIPs towards it start empty.", peer.name));
    }
    if local.vip().is_none() {
        w.push(format!("{} has no virtual IP; the AllowedIPs towards it start empty.", local.name));
    }
    if peer.address().public_host(family).is_none() {
        w.push(format!("{} has no public {} entry; {} cannot dial it.", peer.name, family.upper(), local.name));
    }
    if local.address().public_host(family).is_none() {
        w.push(format!("{} has no public {} entry; {} cannot dial it.", local.name, family.upper(), peer.name));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSK: &str = "cHNrcHNrcHNrcHNrcHNrcHNrcHNrcHNrcHNrcHNrcHM=";
    const PSK2: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn dir(local: &str, peer: &str) -> DirectionInput {
        DirectionInput {
            local_node_id: local.into(),
            peer_node_id: peer.into(),
            allowed_ips: "10.0.0.2/32".into(),
            persistent_keepalive: Some(25),
            preshared_key: None,
            endpoint_mode: EndpointMode::Auto,
            endpoint_ref_family: None,
            endpoint_manual_host: None,
            endpoint_port_mode: PortMode::RefPeerListenPort,
            endpoint_manual_port: None,
            notes: Some("ignored".into()),
            enabled: Some(false),
        }
    }

    fn pair(f: DirectionInput, r: DirectionInput) -> PairInput {
        PairInput { forward: f, reverse: r, preshared_key: None, notes: None, enabled: true, clear_preshared_key: false }
    }

    #[test]
    fn json_defaults() {
        let p: PairInput = serde_json::from_value(serde_json::json!({
            "forward": {"local_node_id": "a", "peer_node_id": "b", "allowed_ips": "10.0.0.2/32"},
            "reverse": {"local_node_id": "b", "peer_node_id": "a", "allowed_ips": "10.0.0.1/32"}
        }))
        .unwrap();
        assert!(p.enabled);
        assert_eq!(p.forward.endpoint_mode, EndpointMode::Auto);
        let v = normalize_pair(&p).unwrap();
        assert_eq!(v.forward.endpoint_ref_family, Some(EndpointFamily::Ipv4));
        assert_eq!(v.notes, "");
        assert!(serde_json::from_value::<PairInput>(serde_json::json!({
            "forward": {"local_node_id": "a", "peer_node_id": "b", "allowed_ips": "x", "endpoint_mode": "bogus"},
            "reverse": {"local_node_id": "b", "peer_node_id": "a", "allowed_ips": "x"}
        }))
        .is_err());
    }

    #[test]
    fn direction_checks() {
        let e = normalize_pair(&pair(dir("a", "b"), dir("a", "b"))).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (INVALID_PEER_LINK, "Bidirectional link node direction mismatch"));
        let e = normalize_pair(&pair(dir("a", "a"), dir("a", "a"))).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (INVALID_PEER_LINK, "A node cannot link to itself"));
        let mut f = dir(" a ", "b");
        f.allowed_ips = " , ".into();
        assert_eq!(normalize_pair(&pair(f, dir("b", "a"))).unwrap_err().code, "INVALID_ALLOWED_IPS");
        let mut f = dir("a", "b");
        f.endpoint_mode = EndpointMode::Manual;
        f.endpoint_manual_host = Some("h".into());
        let e = normalize_pair(&pair(f.clone(), dir("b", "a"))).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (INVALID_ENDPOINT, "Manual Endpoint requires Host and Port."));
        f.endpoint_manual_port = Some(1);
        let v = normalize_pair(&pair(f, dir("b", "a"))).unwrap();
        assert_eq!(v.forward.endpoint_ref_family, None);
        assert_eq!(v.forward.endpoint_manual_host.as_deref(), Some("h"));
    }

    #[test]
    fn psk_rules() {
        let mut p = pair(dir("a", "b"), dir("b", "a"));
        p.forward.preshared_key = Some(PSK.into());
        assert_eq!(normalize_pair(&p).unwrap().preshared_key.as_deref(), Some(PSK));
        p.reverse.preshared_key = Some(PSK2.into());
        assert_eq!(normalize_pair(&p).unwrap_err().code, INVALID_PEER_LINK);
        p.preshared_key = Some(format!(" {PSK2} "));
        assert_eq!(normalize_pair(&p).unwrap().preshared_key.as_deref(), Some(PSK2));
        p.preshared_key = Some("not-a-key".into());
        assert_eq!(normalize_pair(&p).unwrap_err().code, INVALID_KEY);
    }

    #[test]
    fn update_matching() {
        let v = normalize_pair(&pair(dir("a", "b"), dir("b", "a"))).unwrap();
        assert!(match_update_directions(&v, ("a", "b")).unwrap());
        assert!(!match_update_directions(&v, ("b", "a")).unwrap());
        assert_eq!(match_update_directions(&v, ("a", "c")).unwrap_err().code, INVALID_PEER_LINK);
    }

    #[test]
    fn keepalive_only_with_endpoint() {
        let v = normalize_direction(&dir("a", "b")).unwrap();
        let public = PeerAddress { name: "b", ipv4_address: Some("1.2.3.4"), ipv6_address: None, listen_port: None };
        let private = PeerAddress { ipv4_address: None, ..public };
        assert_eq!(v.effective_keepalive(&public, 51820), Some(25));
        assert_eq!(v.effective_keepalive(&private, 51820), None);
    }

    #[test]
    fn drafts() {
        let a = DraftNode { id: "a", name: "A", virtual_ip: Some("10.0.0.1/32"), ipv4_address: Some("1.1.1.1"), ipv6_address: None, listen_port: None };
        let b = DraftNode { id: "b", name: "B", virtual_ip: None, ipv4_address: None, ipv6_address: None, listen_port: Some(5) };
        let f = direction_draft(&a, &b, EndpointFamily::Ipv4, 51820);
        assert_eq!(f.allowed_ips, "");
        assert_eq!(f.persistent_keepalive, None);
        assert_eq!(f.keepalive_display, "/");
        assert_eq!(f.endpoint_summary, "B has no public IPV4 entry; auto mode leaves it empty");
        let r = direction_draft(&b, &a, EndpointFamily::Ipv4, 51820);
        assert_eq!(r.allowed_ips, "10.0.0.1/32");
        assert_eq!(r.persistent_keepalive, Some(25));
        assert_eq!(r.endpoint_summary, "Auto uses 1.1.1.1:51820");
        let w = draft_warnings(&a, &b, EndpointFamily::Ipv4);
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with("B has no virtual IP"));
        assert!(w[1].starts_with("B has no public IPV4"));
        let w = draft_warnings(&b, &a, EndpointFamily::Ipv6);
        assert_eq!(w.len(), 3);
        assert!(w[0].starts_with("B has no virtual IP"));
        assert!(w[1].starts_with("A has no public IPV6"));
        assert!(w[2].starts_with("B has no public IPV6"));
    }
}
