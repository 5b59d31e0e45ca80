//! Virtual IPs and subnets (spec 02 §4.5, §4.6).
//!
//! A node's virtual IP is an address with an optional prefix (`10.66.0.2/32`, `fd00::2`), stored
//! as written. Uniqueness is per address, prefix ignored. The config's subnet only drives
//! suggestions: node addresses need not lie inside it.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult, codes};

/// A parsed virtual IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualIp {
    /// Address.
    pub addr: IpAddr,
    /// Prefix length when one was written.
    pub prefix: Option<u8>,
}

/// Parses an address with an optional `/prefix` (host bits allowed).
pub fn parse_virtual_ip(value: &str) -> Option<VirtualIp> {
    let value = value.trim();
    let (addr, prefix) = match value.split_once('/') {
        None => (value, None),
        Some((a, p)) => (a, Some(p)),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let prefix = match prefix {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u8 = p.parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if n > max {
                return None;
            }
            Some(n)
        }
    };
    Some(VirtualIp { addr, prefix })
}

/// Parses a subnet non-strictly (host bits are masked off; a bare address is a /32 or /128).
pub fn parse_subnet(value: &str) -> DomainResult<IpNet> {
    let bad = || DomainError::new(codes::INVALID_SUBNET, format!("Invalid virtual subnet: {}", value.trim())).with("value", value.trim());
    let v = parse_virtual_ip(value).ok_or_else(bad)?;
    let prefix = v.prefix.unwrap_or(if v.addr.is_ipv4() { 32 } else { 128 });
    IpNet::new(v.addr, prefix).map(|n| n.trunc()).map_err(|_| bad())
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(v4: bool, n: u128) -> IpAddr {
    if v4 {
        IpAddr::V4((n as u32).into())
    } else {
        IpAddr::V6(n.into())
    }
}

/// The lowest unused usable host of `subnet` as `addr/32` or `addr/128` (§4.5). `used` are the
/// stored virtual IPs of every node of the config (disabled ones too); unparsable ones and those
/// outside the subnet are ignored.
pub fn suggest_ip<'a>(subnet: &str, used: impl IntoIterator<Item = &'a str>) -> DomainResult<String> {
    let net = parse_subnet(subnet)?;
    let v4 = matches!(net, IpNet::V4(_));
    let taken: std::collections::HashSet<u128> = used
        .into_iter()
        .filter_map(parse_virtual_ip)
        .filter(|v| net.contains(&v.addr))
        .map(|v| to_u128(v.addr))
        .collect();
    let (first, last) = (to_u128(net.network()), to_u128(net.broadcast()));
    let (prefix, max) = (net.prefix_len(), net.max_prefix_len());
    // IPv4 loses network and broadcast, IPv6 only the subnet-router anycast (network)
    // address; /31 and /127 point-to-point nets and single-host nets keep everything.
    let (lo, hi) = if prefix + 1 >= max {
        (first, last)
    } else if v4 {
        (first + 1, last - 1)
    } else {
        (first + 1, last)
    };
    let mut candidate = lo;
    loop {
        if !taken.contains(&candidate) {
            let suffix = if v4 { 32 } else { 128 };
            return Ok(format!("{}/{suffix}", from_u128(v4, candidate)));
        }
        if candidate >= hi {
            return Err(DomainError::new(codes::IP_POOL_EXHAUSTED, format!("No free address left in {net}"))
                .with("virtual_subnet", net.to_string()));
        }
        candidate += 1;
    }
}

/// The answer of `validate-ip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpCheck {
    /// Whether the value may be stored.
    pub valid: bool,
    /// Why not (`""` when valid).
    pub warning: String,
}

/// One existing holder of a virtual IP.
#[derive(Debug, Clone, Copy)]
pub struct IpHolder<'a> {
    /// Node name (for the message).
    pub name: &'a str,
    /// Stored virtual IP text.
    pub virtual_ip: &'a str,
}

/// Checks a virtual IP against the other nodes (§4.6). Pass every node that counts, in
/// creation order; the caller leaves out the node being updated.
pub fn check_virtual_ip(value: &str, others: &[IpHolder<'_>]) -> IpCheck {
    let fail = |warning: String| IpCheck { valid: false, warning };
    let value = value.trim();
    if value.is_empty() {
        return fail("Virtual IP is required".into());
    }
    let Some(parsed) = parse_virtual_ip(value) else {
        return fail("IP format is invalid".into());
    };
    for other in others {
        let stored = other.virtual_ip.trim();
        if stored == value {
            return fail(format!("{value} is already used by node {}", other.name));
        }
        if parse_virtual_ip(stored).is_some_and(|o| o.addr == parsed.addr) {
            return fail(format!("{} is already used by node {}", parsed.addr, other.name));
        }
    }
    IpCheck { valid: true, warning: String::new() }
}

/// [`check_virtual_ip`] as a result: `INVALID_VIRTUAL_IP` with the warning as message.
/// Returns the trimmed value.
pub fn require_virtual_ip(value: &str, others: &[IpHolder<'_>]) -> DomainResult<String> {
    let check = check_virtual_ip(value, others);
    if check.valid {
        Ok(value.trim().to_string())
    } else {
        Err(DomainError::new(codes::INVALID_VIRTUAL_IP, check.warning))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holders<'a>(v: &'a [(&'a str, &'a str)]) -> Vec<IpHolder<'a>> {
        v.iter().map(|(name, virtual_ip)| IpHolder { name, virtual_ip }).collect()
    }

    #[test]
    fn parses_addresses_with_optional_prefix() {
        assert_eq!(parse_virtual_ip("10.0.0.2").unwrap().prefix, None);
        assert_eq!(parse_virtual_ip(" 10.0.0.2/24 ").unwrap().prefix, Some(24));
        assert!(parse_virtual_ip("fd00::2/128").is_some());
        for bad in ["", "10.0.0", "10.0.0.256", "10.0.0.2/33", "fd00::2/129", "10.0.0.2/", "10.0.0.2/x", "host.example", "10.0.0.2/-1", "10.0.0.2/ 24"] {
            assert!(parse_virtual_ip(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn subnets_are_parsed_non_strictly() {
        assert_eq!(parse_subnet("10.66.0.5/24").unwrap().to_string(), "10.66.0.0/24");
        assert_eq!(parse_subnet("10.66.0.5").unwrap().to_string(), "10.66.0.5/32");
        let e = parse_subnet("10.66.0.0/40").unwrap_err();
        assert_eq!(e.code, "INVALID_SUBNET");
        assert_eq!(parse_subnet("nonsense").unwrap_err().code, "INVALID_SUBNET");
    }

    #[test]
    fn suggests_the_lowest_free_host() {
        assert_eq!(suggest_ip("10.66.0.0/24", []).unwrap(), "10.66.0.1/32");
        assert_eq!(
            suggest_ip("10.66.0.0/24", ["10.66.0.1/32", "10.66.0.2", "garbage", "10.99.0.3/32", "10.66.0.4/24"]).unwrap(),
            "10.66.0.3/32"
        );
        assert_eq!(suggest_ip("10.66.0.9/24", ["10.66.0.1"]).unwrap(), "10.66.0.2/32", "host bits ignored");
        assert_eq!(suggest_ip("fd00::/64", ["fd00::1/128"]).unwrap(), "fd00::2/128");
    }

    #[test]
    fn small_subnets_and_exhaustion() {
        // /30: .1 and .2 usable.
        assert_eq!(suggest_ip("10.0.0.0/30", ["10.0.0.1"]).unwrap(), "10.0.0.2/32");
        let e = suggest_ip("10.0.0.0/30", ["10.0.0.1", "10.0.0.2"]).unwrap_err();
        assert_eq!(e.code, "IP_POOL_EXHAUSTED");
        // /31: both usable; /32: the one.
        assert_eq!(suggest_ip("10.0.0.0/31", []).unwrap(), "10.0.0.0/32");
        assert_eq!(suggest_ip("10.0.0.0/31", ["10.0.0.0"]).unwrap(), "10.0.0.1/32");
        assert_eq!(suggest_ip("10.0.0.7/32", []).unwrap(), "10.0.0.7/32");
        assert_eq!(suggest_ip("10.0.0.7/32", ["10.0.0.7/32"]).unwrap_err().code, "IP_POOL_EXHAUSTED");
        // IPv6: network excluded, last address usable.
        assert_eq!(suggest_ip("fd00::/126", ["fd00::1", "fd00::2"]).unwrap(), "fd00::3/128");
        assert_eq!(suggest_ip("fd00::/127", []).unwrap(), "fd00::/128");
        assert_eq!(suggest_ip("fd00::5/128", []).unwrap(), "fd00::5/128");
        assert_eq!(suggest_ip("255.255.255.255/32", ["255.255.255.255"]).unwrap_err().code, "IP_POOL_EXHAUSTED");
        assert_eq!(suggest_ip("bad", []).unwrap_err().code, "INVALID_SUBNET");
    }

    #[test]
    fn validate_ip_messages() {
        let nodes = [("alpha", "10.0.0.2/32"), ("beta", "10.0.0.3/24"), ("gamma", "not-an-ip")];
        let h = holders(&nodes);
        let check = |v: &str| check_virtual_ip(v, &h);
        assert_eq!(check("  "), IpCheck { valid: false, warning: "Virtual IP is required".into() });
        assert_eq!(check("10.0.0"), IpCheck { valid: false, warning: "IP format is invalid".into() });
        assert_eq!(check("10.0.0.2/32").warning, "10.0.0.2/32 is already used by node alpha");
        assert_eq!(check("10.0.0.3/32").warning, "10.0.0.3 is already used by node beta");
        assert_eq!(check("10.0.0.2").warning, "10.0.0.2 is already used by node alpha");
        assert_eq!(check("10.0.0.4/32"), IpCheck { valid: true, warning: String::new() });
        // Subnet membership is not checked.
        assert!(check("192.168.1.1").valid);
        let e = require_virtual_ip("10.0.0.3", &h).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), ("INVALID_VIRTUAL_IP", "10.0.0.3 is already used by node beta"));
        assert_eq!(require_virtual_ip(" 10.0.0.9/32 ", &h).unwrap(), "10.0.0.9/32");
    }
}
