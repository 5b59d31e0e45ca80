//! Names and simple text lists of configs and nodes (spec 02 §2.1–2.3, §4.3).

use crate::error::{DomainError, DomainResult, codes};

/// Longest config name.
pub const CONFIG_NAME_MAX: usize = 32;
/// Longest node name.
pub const NODE_NAME_MAX: usize = 128;
/// Longest tag.
pub const TAG_MAX: usize = 64;

/// Windows device names: a config name becomes a file name on Windows clients, where these
/// (with or without an extension) cannot be created.
const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

fn is_reserved(stem: &str) -> bool {
    let upper = stem.to_ascii_uppercase();
    if RESERVED.contains(&upper.as_str()) {
        return true;
    }
    let b = upper.as_bytes();
    b.len() == 4 && (upper.starts_with("COM") || upper.starts_with("LPT")) && (b'1'..=b'9').contains(&b[3])
}

/// Checks a config name (`^[a-zA-Z0-9_=+.-]{1,32}$`, not a reserved device name, also before
/// the first dot, case-insensitive) and returns it trimmed.
pub fn validate_config_name(name: &str) -> DomainResult<String> {
    let name = name.trim();
    let bad = |message: String| DomainError::new(codes::INVALID_CONFIG_NAME, message).with("value", name);
    if name.is_empty() {
        return Err(bad("Config name is required".into()));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '=' | '+' | '.' | '-');
    if name.chars().count() > CONFIG_NAME_MAX || !name.chars().all(allowed) {
        return Err(bad(format!(
            "Config name must be 1-{CONFIG_NAME_MAX} characters of letters, digits and _ = + . -"
        )));
    }
    let stem = name.split('.').next().unwrap_or(name);
    if is_reserved(stem) {
        return Err(bad(format!("Config name {name} is a reserved device name")));
    }
    Ok(name.to_string())
}

/// Checks a node name (trimmed, non-blank, at most 128 characters) and returns it trimmed.
pub fn validate_node_name(name: &str) -> DomainResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DomainError::new(codes::INVALID_NODE_NAME, "Node name is required"));
    }
    if name.chars().count() > NODE_NAME_MAX {
        return Err(DomainError::new(
            codes::INVALID_NODE_NAME,
            format!("Node name must be at most {NODE_NAME_MAX} characters"),
        ));
    }
    Ok(name.to_string())
}

/// Checks one tag (trimmed, non-blank, at most 64 characters) and returns it trimmed.
pub fn validate_tag(tag: &str) -> DomainResult<String> {
    let tag = tag.trim();
    if tag.is_empty() {
        return Err(DomainError::new(codes::INVALID_TAG, "Tag is required"));
    }
    if tag.chars().count() > TAG_MAX {
        return Err(DomainError::new(codes::INVALID_TAG, format!("Tag must be at most {TAG_MAX} characters")));
    }
    Ok(tag.to_string())
}

/// A node's tag list: trimmed, blanks dropped, deduplicated, sorted.
pub fn normalize_tags<S: AsRef<str>>(tags: &[S]) -> Vec<String> {
    let mut out: Vec<String> =
        tags.iter().map(|t| t.as_ref().trim()).filter(|t| !t.is_empty()).map(str::to_string).collect();
    out.sort();
    out.dedup();
    out
}

/// A hook command list: trimmed, blanks dropped, order kept.
pub fn normalize_commands<S: AsRef<str>>(commands: &[S]) -> Vec<String> {
    commands.iter().map(|c| c.as_ref().trim()).filter(|c| !c.is_empty()).map(str::to_string).collect()
}

/// "Optional text": trimmed, empty → `None`.
pub fn optional_text(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_follow_the_pattern() {
        for ok in ["a", "mesh-1", "A_b=c+d.e-f", "x".repeat(32).as_str(), "  padded  "] {
            assert!(validate_config_name(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate_config_name("  padded ").unwrap(), "padded");
        for bad in ["", "   ", "has space", "slash/", "ümlaut", "x".repeat(33).as_str(), "a:b", "tab\tx"] {
            let e = validate_config_name(bad).unwrap_err();
            assert_eq!(e.code, "INVALID_CONFIG_NAME", "{bad}");
        }
    }

    #[test]
    fn reserved_device_names_are_rejected_case_insensitively_and_before_the_first_dot() {
        for bad in ["CON", "con", "Prn", "aux", "NUL", "COM1", "com9", "LPT1", "lpt9", "con.txt", "NUL.a.b", "Com3.conf"] {
            let e = validate_config_name(bad).unwrap_err();
            assert_eq!(e.code, "INVALID_CONFIG_NAME", "{bad}");
            assert!(e.message.contains("reserved"), "{bad}: {}", e.message);
        }
        for ok in ["COM0", "COM10", "LPT", "CONSOLE", "xcon", "a.con", "NULL", "COM1x"] {
            assert!(validate_config_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn node_names_and_tags() {
        assert_eq!(validate_node_name("  edge a ").unwrap(), "edge a");
        assert_eq!(validate_node_name(" \t").unwrap_err().code, "INVALID_NODE_NAME");
        assert!(validate_node_name(&"n".repeat(128)).is_ok());
        assert_eq!(validate_node_name(&"n".repeat(129)).unwrap_err().code, "INVALID_NODE_NAME");
        assert_eq!(validate_tag(" prod ").unwrap(), "prod");
        assert_eq!(validate_tag("  ").unwrap_err().code, "INVALID_TAG");
        assert_eq!(validate_tag(&"t".repeat(65)).unwrap_err().code, "INVALID_TAG");
    }

    #[test]
    fn lists_are_normalised() {
        assert_eq!(normalize_tags(&[" b", "a", "", "b ", "  "]), vec!["a", "b"]);
        assert_eq!(normalize_commands(&[" echo 2 ", "", "echo 1", "  "]), vec!["echo 2", "echo 1"]);
        assert_eq!(optional_text(Some("  ")), None);
        assert_eq!(optional_text(Some(" 1.1.1.1 ")), Some("1.1.1.1".into()));
        assert_eq!(optional_text(None), None);
    }
}
