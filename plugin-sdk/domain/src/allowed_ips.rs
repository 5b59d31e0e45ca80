//! AllowedIPs lists of mesh pairs (spec 02 §6.1).
//!
//! The list is stored as the user wrote each entry (host bits allowed: `10.0.0.2/24` stays as
//! is, a bare address stays bare), only trimmed, deduplicated and joined with `,` without
//! spaces. Keeping the written form matters because the stored text is rendered verbatim into
//! `AllowedIPs = …` and hashed; rewriting it would change every node's desired hash.

use std::net::IpAddr;

use crate::error::{DomainError, DomainResult};

/// API code for an empty or unparsable list.
pub const INVALID_ALLOWED_IPS: &str = "INVALID_ALLOWED_IPS";

/// Whether one entry parses as a network: an IPv4/IPv6 address with an optional decimal
/// prefix length (host bits allowed), or an IPv4 address with a dotted netmask.
pub fn is_network(entry: &str) -> bool {
    let (addr, prefix) = match entry.split_once('/') {
        None => (entry, None),
        Some((a, p)) => (a, Some(p)),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    let Some(prefix) = prefix else {
        return true;
    };
    let max: u32 = if addr.is_ipv4() { 32 } else { 128 };
    if !prefix.is_empty() && prefix.len() <= 3 && prefix.bytes().all(|b| b.is_ascii_digit()) {
        return prefix.parse::<u32>().is_ok_and(|n| n <= max);
    }
    // `10.0.0.0/255.255.255.0`: a contiguous netmask is a network too.
    if addr.is_ipv4()
        && let Ok(std::net::IpAddr::V4(mask)) = prefix.parse::<IpAddr>()
    {
        let m = u32::from(mask);
        return m.leading_ones() + m.trailing_zeros() == 32;
    }
    false
}

/// Normalises an AllowedIPs list: split on `,`, trim, drop blanks, check each entry, drop
/// repeats keeping the first, join with `,`. Empty or any bad entry → `INVALID_ALLOWED_IPS`.
pub fn normalize_allowed_ips(value: &str) -> DomainResult<String> {
    normalize_entries(value.split(','))
}

/// [`normalize_allowed_ips`] over entries that are already split (each may still hold `,`).
pub fn normalize_entries<'a>(entries: impl IntoIterator<Item = &'a str>) -> DomainResult<String> {
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for raw in entries {
        for entry in raw.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            if !is_network(entry) {
                return Err(DomainError::new(INVALID_ALLOWED_IPS, format!("Invalid AllowedIPs entry: {entry}"))
                    .with("value", entry));
            }
            if seen.contains(&entry) {
                continue;
            }
            seen.push(entry);
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(entry);
        }
    }
    if out.is_empty() {
        return Err(DomainError::new(INVALID_ALLOWED_IPS, "AllowedIPs must contain at least one CIDR."));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_written_form_dedupes_and_joins_without_spaces() {
        assert_eq!(
            normalize_allowed_ips(" 10.0.0.2/24 , ,fd00::1/128,10.0.0.2/24, 10.1.0.0/16 ").unwrap(),
            "10.0.0.2/24,fd00::1/128,10.1.0.0/16"
        );
        assert_eq!(normalize_allowed_ips("10.66.0.3").unwrap(), "10.66.0.3");
        assert_eq!(normalize_allowed_ips("0.0.0.0/0,::/0").unwrap(), "0.0.0.0/0,::/0");
        assert_eq!(normalize_allowed_ips("10.0.0.0/255.255.255.0").unwrap(), "10.0.0.0/255.255.255.0");
    }

    #[test]
    fn rejects_empty_and_bad_entries() {
        for bad in ["", " , ", "10.0.0.1/33", "fd00::/129", "nope", "10.0.0.1/", "10.0.0.1/-1", "10.0.0/24",
            "10.0.0.0/255.0.255.0", "fd00::/ffff::", "010.0.0.1/32"]
        {
            let e = normalize_allowed_ips(bad).unwrap_err();
            assert_eq!(e.code, INVALID_ALLOWED_IPS, "{bad}");
        }
    }

    #[test]
    fn entries_may_be_pre_split() {
        assert_eq!(
            normalize_entries(["10.0.0.2/32", "10.0.0.3/32,10.0.0.2/32"]).unwrap(),
            "10.0.0.2/32,10.0.0.3/32"
        );
    }
}
