//! The Endpoint a link direction points at (spec 02 §6.3).
//!
//! A direction is rendered into its local node's file and describes the peer, so its Endpoint
//! is the peer's public address. `auto` picks the peer's stored IPv4 or IPv6 entry, `manual`
//! a host typed into the link, `none` leaves the Endpoint out (the peer dials in). The port is
//! the link's manual port, else the peer's listen port, else the config default.

use std::net::Ipv6Addr;

use serde::{Deserialize, Serialize};

/// How a direction finds its Endpoint host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointMode {
    /// The peer's public entry of the chosen family.
    #[default]
    Auto,
    /// No Endpoint.
    None,
    /// `endpoint_manual_host`.
    Manual,
}

impl EndpointMode {
    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointMode::Auto => "auto",
            EndpointMode::None => "none",
            EndpointMode::Manual => "manual",
        }
    }

    /// Parses a stored or requested value.
    pub fn parse(value: &str) -> Option<EndpointMode> {
        match value.trim() {
            "auto" => Some(EndpointMode::Auto),
            "none" => Some(EndpointMode::None),
            "manual" => Some(EndpointMode::Manual),
            _ => None,
        }
    }
}

/// Which public entry of the peer `auto` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointFamily {
    /// `ipv4_address`.
    #[default]
    Ipv4,
    /// `ipv6_address`.
    Ipv6,
}

impl EndpointFamily {
    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointFamily::Ipv4 => "ipv4",
            EndpointFamily::Ipv6 => "ipv6",
        }
    }

    /// Upper-case name used in summaries (`IPV4`, `IPV6`).
    pub fn upper(self) -> &'static str {
        match self {
            EndpointFamily::Ipv4 => "IPV4",
            EndpointFamily::Ipv6 => "IPV6",
        }
    }

    /// Parses a requested value: only `ipv4` and `ipv6`.
    pub fn parse(value: &str) -> Option<EndpointFamily> {
        match value.trim() {
            "ipv4" => Some(EndpointFamily::Ipv4),
            "ipv6" => Some(EndpointFamily::Ipv6),
            _ => None,
        }
    }

    /// Reads a stored value: `ipv6` is IPv6, anything else (incl. legacy `domain` and null)
    /// reads as IPv4.
    pub fn from_stored(value: Option<&str>) -> EndpointFamily {
        match value.map(str::trim) {
            Some("ipv6") => EndpointFamily::Ipv6,
            _ => EndpointFamily::Ipv4,
        }
    }
}

/// Where the Endpoint port comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortMode {
    /// The peer's listen port, else the config default.
    #[default]
    RefPeerListenPort,
    /// `endpoint_manual_port`.
    Manual,
}

impl PortMode {
    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            PortMode::RefPeerListenPort => "ref_peer_listen_port",
            PortMode::Manual => "manual",
        }
    }

    /// Parses a stored or requested value.
    pub fn parse(value: &str) -> Option<PortMode> {
        match value.trim() {
            "ref_peer_listen_port" => Some(PortMode::RefPeerListenPort),
            "manual" => Some(PortMode::Manual),
            _ => None,
        }
    }
}

/// The endpoint fields of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointSettings<'a> {
    /// Host selection.
    pub mode: EndpointMode,
    /// Family for `auto`.
    pub family: EndpointFamily,
    /// Host for `manual`.
    pub manual_host: Option<&'a str>,
    /// Port selection.
    pub port_mode: PortMode,
    /// Port for `port_mode = manual`.
    pub manual_port: Option<i64>,
}

impl<'a> EndpointSettings<'a> {
    /// `auto` with the given family and the peer's port (what Quick Mesh and drafts use).
    pub fn auto(family: EndpointFamily) -> Self {
        EndpointSettings { mode: EndpointMode::Auto, family, manual_host: None, port_mode: PortMode::RefPeerListenPort, manual_port: None }
    }

    /// Reads stored columns; unknown stored modes read as their defaults.
    pub fn from_stored(
        mode: &str,
        family: Option<&str>,
        manual_host: Option<&'a str>,
        port_mode: &str,
        manual_port: Option<i64>,
    ) -> Self {
        EndpointSettings {
            mode: EndpointMode::parse(mode).unwrap_or_default(),
            family: EndpointFamily::from_stored(family),
            manual_host,
            port_mode: PortMode::parse(port_mode).unwrap_or_default(),
            manual_port,
        }
    }
}

/// What a direction needs to know about its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddress<'a> {
    /// Peer name (for summaries).
    pub name: &'a str,
    /// Public IPv4 entry (address or host name).
    pub ipv4_address: Option<&'a str>,
    /// Public IPv6 entry (address or host name).
    pub ipv6_address: Option<&'a str>,
    /// Peer's own listen port.
    pub listen_port: Option<i64>,
}

impl<'a> PeerAddress<'a> {
    /// The non-empty public entry of `family`.
    pub fn public_host(&self, family: EndpointFamily) -> Option<&'a str> {
        let v = match family {
            EndpointFamily::Ipv4 => self.ipv4_address,
            EndpointFamily::Ipv6 => self.ipv6_address,
        };
        v.map(str::trim).filter(|s| !s.is_empty())
    }
}

/// `host:port`, or `[host]:port` when the host is an IPv6 literal.
pub fn format_endpoint(host: &str, port: i64) -> String {
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The result of resolving one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The Endpoint, if one resolves.
    pub endpoint: Option<String>,
    /// One-line human summary (§6.3).
    pub summary: String,
    /// The direction wants an Endpoint (mode ≠ `none`) but none resolves.
    pub unresolved: bool,
    /// A stored keepalive is meaningful (§6.3: auto with a peer host; manual with host and
    /// manual port).
    pub keeps_keepalive: bool,
}

/// Resolves the Endpoint of a direction towards `peer`.
pub fn resolve(settings: &EndpointSettings<'_>, peer: &PeerAddress<'_>, default_port: i64) -> Resolved {
    let port = |settings: &EndpointSettings<'_>| match (settings.port_mode, settings.manual_port) {
        (PortMode::Manual, Some(p)) => p,
        _ => peer.listen_port.unwrap_or(default_port),
    };
    match settings.mode {
        EndpointMode::None => {
            Resolved { endpoint: None, summary: "No Endpoint".to_string(), unresolved: false, keeps_keepalive: false }
        }
        EndpointMode::Auto => match peer.public_host(settings.family) {
            Some(host) => {
                let ep = format_endpoint(host, port(settings));
                Resolved { summary: format!("Auto uses {ep}"), endpoint: Some(ep), unresolved: false, keeps_keepalive: true }
            }
            None => Resolved {
                endpoint: None,
                summary: format!("{} has no public {} entry; auto mode leaves it empty", peer.name, settings.family.upper()),
                unresolved: true,
                keeps_keepalive: false,
            },
        },
        EndpointMode::Manual => {
            let host = settings.manual_host.map(str::trim).filter(|s| !s.is_empty());
            match (host, settings.manual_port) {
                (Some(host), Some(_)) => {
                    let ep = format_endpoint(host, port(settings));
                    Resolved { summary: format!("Manual uses {ep}"), endpoint: Some(ep), unresolved: false, keeps_keepalive: true }
                }
                _ => Resolved {
                    endpoint: None,
                    summary: "Manual mode requires Host and Port".to_string(),
                    unresolved: true,
                    keeps_keepalive: false,
                },
            }
        }
    }
}

/// `keepalive_display` of a direction: `/` without Endpoint, `Unset` if null, else the number.
pub fn keepalive_display(has_endpoint: bool, keepalive: Option<i64>) -> String {
    match (has_endpoint, keepalive) {
        (false, _) => "/".to_string(),
        (true, None) => "Unset".to_string(),
        (true, Some(n)) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer<'a>(v4: Option<&'a str>, v6: Option<&'a str>, port: Option<i64>) -> PeerAddress<'a> {
        PeerAddress { name: "edge-b", ipv4_address: v4, ipv6_address: v6, listen_port: port }
    }

    #[test]
    fn auto_uses_family_entry_and_port_fallbacks() {
        let p = peer(Some("203.0.113.7"), Some("2001:db8::7"), Some(51821));
        let r = resolve(&EndpointSettings::auto(EndpointFamily::Ipv4), &p, 51820);
        assert_eq!(r.endpoint.as_deref(), Some("203.0.113.7:51821"));
        assert_eq!(r.summary, "Auto uses 203.0.113.7:51821");
        assert!(r.keeps_keepalive && !r.unresolved);

        let r = resolve(&EndpointSettings::auto(EndpointFamily::Ipv6), &p, 51820);
        assert_eq!(r.endpoint.as_deref(), Some("[2001:db8::7]:51821"));

        let p = peer(Some("vpn.example.org"), None, None);
        let r = resolve(&EndpointSettings::auto(EndpointFamily::Ipv4), &p, 51999);
        assert_eq!(r.endpoint.as_deref(), Some("vpn.example.org:51999"));

        let r = resolve(&EndpointSettings::auto(EndpointFamily::Ipv6), &p, 51999);
        assert_eq!(r.endpoint, None);
        assert!(r.unresolved && !r.keeps_keepalive);
        assert_eq!(r.summary, "edge-b has no public IPV6 entry; auto mode leaves it empty");
    }

    #[test]
    fn auto_with_manual_port() {
        let p = peer(Some("198.51.100.1"), None, Some(1000));
        let s = EndpointSettings { port_mode: PortMode::Manual, manual_port: Some(443), ..EndpointSettings::auto(EndpointFamily::Ipv4) };
        assert_eq!(resolve(&s, &p, 51820).endpoint.as_deref(), Some("198.51.100.1:443"));
        // Manual port mode without a port falls back to the peer's port.
        let s = EndpointSettings { port_mode: PortMode::Manual, manual_port: None, ..EndpointSettings::auto(EndpointFamily::Ipv4) };
        assert_eq!(resolve(&s, &p, 51820).endpoint.as_deref(), Some("198.51.100.1:1000"));
    }

    #[test]
    fn manual_and_none() {
        let p = peer(Some("198.51.100.1"), None, Some(1000));
        let s = EndpointSettings {
            mode: EndpointMode::Manual,
            family: EndpointFamily::Ipv4,
            manual_host: Some("fd00::9"),
            port_mode: PortMode::Manual,
            manual_port: Some(9000),
        };
        let r = resolve(&s, &p, 51820);
        assert_eq!(r.endpoint.as_deref(), Some("[fd00::9]:9000"));
        assert_eq!(r.summary, "Manual uses [fd00::9]:9000");
        // Manual host with the peer-port mode still needs a manual port to count as set.
        let s2 = EndpointSettings { port_mode: PortMode::RefPeerListenPort, ..s };
        assert_eq!(resolve(&s2, &p, 51820).endpoint.as_deref(), Some("[fd00::9]:1000"));
        let s3 = EndpointSettings { manual_port: None, ..s };
        let r = resolve(&s3, &p, 51820);
        assert_eq!((r.endpoint, r.summary.as_str(), r.unresolved), (None, "Manual mode requires Host and Port", true));
        let s4 = EndpointSettings { manual_host: Some("  "), ..s };
        assert!(resolve(&s4, &p, 51820).unresolved);

        let none = EndpointSettings { mode: EndpointMode::None, ..s };
        let r = resolve(&none, &p, 51820);
        assert_eq!((r.endpoint, r.summary.as_str(), r.unresolved, r.keeps_keepalive), (None, "No Endpoint", false, false));
    }

    #[test]
    fn stored_values_and_display() {
        assert_eq!(EndpointFamily::from_stored(Some("domain")), EndpointFamily::Ipv4);
        assert_eq!(EndpointFamily::from_stored(None), EndpointFamily::Ipv4);
        assert_eq!(EndpointFamily::from_stored(Some("ipv6")), EndpointFamily::Ipv6);
        assert_eq!(EndpointFamily::parse("domain"), None);
        assert_eq!(keepalive_display(false, Some(25)), "/");
        assert_eq!(keepalive_display(true, None), "Unset");
        assert_eq!(keepalive_display(true, Some(0)), "0");
        assert_eq!(format_endpoint("10.0.0.1", 1), "10.0.0.1:1");
    }
}
