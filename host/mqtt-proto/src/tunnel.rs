//! Tunnel protocol and AWG version handling (spec 03 §5).

use crate::message::TunnelFields;

/// The protocol a command targets, after normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelProtocol {
    /// WireGuard: `wg` / `wg-quick`.
    WireGuard,
    /// AmneziaWG 2: `awg` / `awg-quick`.
    AmneziaWg2,
}

impl TunnelProtocol {
    /// Accepts `wireguard`, `amneziawg` and `amneziawg_2` (the last two are the same).
    pub fn parse(s: &str) -> Option<TunnelProtocol> {
        match s.trim() {
            "wireguard" => Some(TunnelProtocol::WireGuard),
            "amneziawg" | "amneziawg_2" => Some(TunnelProtocol::AmneziaWg2),
            _ => None,
        }
    }

    /// The wire value the server sends.
    pub const fn wire(self) -> &'static str {
        match self {
            TunnelProtocol::WireGuard => "wireguard",
            TunnelProtocol::AmneziaWg2 => "amneziawg_2",
        }
    }

    /// Show/diagnostics tool.
    pub const fn show_tool(self) -> &'static str {
        match self {
            TunnelProtocol::WireGuard => "wg",
            TunnelProtocol::AmneziaWg2 => "awg",
        }
    }

    /// Up/down tool.
    pub const fn quick_tool(self) -> &'static str {
        match self {
            TunnelProtocol::WireGuard => "wg-quick",
            TunnelProtocol::AmneziaWg2 => "awg-quick",
        }
    }
}

/// AWG versions an agent accepts.
pub const AWG_VERSIONS: [&str; 3] = ["1.5", "2.0", "3.1"];

/// What the server sends for a config's stored protocol: `amneziawg` goes out as
/// `amneziawg_2`; anything unknown is sent as is (the agent then refuses it).
pub fn wire_protocol(config_protocol: &str) -> String {
    match TunnelProtocol::parse(config_protocol) {
        Some(p) => p.wire().to_string(),
        None => config_protocol.to_string(),
    }
}

/// Tunnel fields after agent-side validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// Target protocol (WireGuard when absent: legacy servers).
    pub target: TunnelProtocol,
    /// Protocol before the last change (defaults to target).
    pub previous: TunnelProtocol,
}

/// Validates tunnel fields the way the agent must before acting: non-empty protocol fields
/// must name a known protocol, a non-empty `awg_version` must be a known version. Absent
/// fields are fine. The error text is the ACK message.
pub fn validate(f: &TunnelFields) -> Result<Resolved, String> {
    let proto = |name: &str, v: &Option<String>| -> Result<Option<TunnelProtocol>, String> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => TunnelProtocol::parse(s).map(Some).ok_or_else(|| format!("unsupported {name}: {s}")),
        }
    };
    let target = proto("tunnel_protocol", &f.tunnel_protocol)?.unwrap_or(TunnelProtocol::WireGuard);
    let previous = proto("previous_tunnel_protocol", &f.previous_tunnel_protocol)?.unwrap_or(target);
    match f.awg_version.as_deref().map(str::trim) {
        None | Some("") => {}
        Some(v) if AWG_VERSIONS.contains(&v) => {}
        Some(v) => return Err(format!("unsupported awg_version: {v}")),
    }
    Ok(Resolved { target, previous })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: Option<&str>, v: Option<&str>, prev: Option<&str>) -> TunnelFields {
        TunnelFields {
            tunnel_protocol: p.map(Into::into),
            awg_version: v.map(Into::into),
            previous_tunnel_protocol: prev.map(Into::into),
        }
    }

    #[test]
    fn accepts_known_and_absent() {
        let r = validate(&f(None, None, None)).unwrap();
        assert_eq!((r.target, r.previous), (TunnelProtocol::WireGuard, TunnelProtocol::WireGuard));
        let r = validate(&f(Some("amneziawg"), Some("2.0"), Some("wireguard"))).unwrap();
        assert_eq!((r.target, r.previous), (TunnelProtocol::AmneziaWg2, TunnelProtocol::WireGuard));
        let r = validate(&f(Some("amneziawg_2"), Some("3.1"), Some(""))).unwrap();
        assert_eq!(r.previous, TunnelProtocol::AmneziaWg2);
        assert!(validate(&f(Some(""), Some(""), None)).is_ok());
    }

    #[test]
    fn refuses_unknown() {
        assert_eq!(validate(&f(Some("openvpn"), None, None)).unwrap_err(), "unsupported tunnel_protocol: openvpn");
        assert_eq!(validate(&f(None, None, Some("ipsec"))).unwrap_err(), "unsupported previous_tunnel_protocol: ipsec");
        assert_eq!(validate(&f(Some("amneziawg"), Some("9.9"), None)).unwrap_err(), "unsupported awg_version: 9.9");
    }

    #[test]
    fn tools_and_wire() {
        assert_eq!(wire_protocol("amneziawg"), "amneziawg_2");
        assert_eq!(wire_protocol("wireguard"), "wireguard");
        assert_eq!(TunnelProtocol::AmneziaWg2.quick_tool(), "awg-quick");
        assert_eq!(TunnelProtocol::WireGuard.show_tool(), "wg");
    }
}
