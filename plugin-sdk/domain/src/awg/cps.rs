//! The CPS ("custom packet string") grammar of AmneziaWG I1–I5 and J1–J3 (spec 02 §5.4).
//!
//! A value is a gap-free concatenation of tags:
//! `<b 0xHEX>` (fixed bytes: at least one hex digit, an even count), `<r N>` (random bytes),
//! `<rc N>` (random characters), `<rd N>` (random digits), with decimal `N ≤ 1000`, and at most
//! one `<t>` (timestamp). What each tag produces on the wire is the toolchain's business; the
//! server only checks the shape.

use crate::error::{DomainError, DomainResult, codes};

/// Largest length a `<r>`, `<rc>` or `<rd>` tag may ask for.
pub const MAX_RANDOM_LEN: u32 = 1000;

/// One parsed tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// `<b 0x…>`: the hex digits as written (without `0x`).
    Bytes(String),
    /// `<r N>`.
    Random(u32),
    /// `<rc N>`.
    RandomChars(u32),
    /// `<rd N>`.
    RandomDigits(u32),
    /// `<t>`.
    Timestamp,
}

/// Parses a whole CPS value, or explains why it is not one.
pub fn parse(value: &str) -> Result<Vec<Tag>, String> {
    let mut tags = Vec::new();
    let mut rest = value;
    let mut timestamps = 0;
    if rest.is_empty() {
        return Err("empty value".into());
    }
    while !rest.is_empty() {
        let Some(after_open) = rest.strip_prefix('<') else {
            return Err(format!("expected '<' at {:?}", preview(rest)));
        };
        let Some(close) = after_open.find('>') else {
            return Err("unterminated tag".into());
        };
        let inner = &after_open[..close];
        rest = &after_open[close + 1..];
        let tag = parse_tag(inner)?;
        if tag == Tag::Timestamp {
            timestamps += 1;
            if timestamps > 1 {
                return Err("at most one <t> tag is allowed".into());
            }
        }
        tags.push(tag);
    }
    Ok(tags)
}

fn preview(s: &str) -> String {
    s.chars().take(12).collect()
}

fn parse_tag(inner: &str) -> Result<Tag, String> {
    if inner == "t" {
        return Ok(Tag::Timestamp);
    }
    // Exactly one space between name and argument, as in the toolchain's own examples.
    let Some((name, arg)) = inner.split_once(' ') else {
        return Err(format!("unknown tag <{inner}>"));
    };
    match name {
        "b" => {
            let Some(hex) = arg.strip_prefix("0x") else {
                return Err("<b> needs a 0x-prefixed hex argument".into());
            };
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("<b> needs hex digits after 0x".into());
            }
            if hex.len() % 2 != 0 {
                return Err("<b> needs an even number of hex digits".into());
            }
            Ok(Tag::Bytes(hex.to_string()))
        }
        "r" | "rc" | "rd" => {
            if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("<{name}> needs a decimal length"));
            }
            // Leading zeros are harmless; length caps the parse so it cannot overflow.
            let trimmed = arg.trim_start_matches('0');
            let n: u32 = if trimmed.is_empty() {
                0
            } else if trimmed.len() > 4 {
                u32::MAX
            } else {
                trimmed.parse().map_err(|_| format!("<{name}> needs a decimal length"))?
            };
            if n > MAX_RANDOM_LEN {
                return Err(format!("<{name}> length must be at most {MAX_RANDOM_LEN}"));
            }
            Ok(match name {
                "r" => Tag::Random(n),
                "rc" => Tag::RandomChars(n),
                _ => Tag::RandomDigits(n),
            })
        }
        _ => Err(format!("unknown tag <{inner}>")),
    }
}

/// True when `value` is a valid (non-empty) CPS string.
pub fn is_valid(value: &str) -> bool {
    parse(value).is_ok()
}

/// Normalises an optional CPS input: trimmed, blank → `None`; otherwise it must parse.
/// `label` names the parameter in the message (`I1`, `J2`…), `field` goes to `detail.field`.
pub fn normalize(label: &str, field: &str, value: Option<&str>) -> DomainResult<Option<String>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match parse(v) {
        Ok(_) => Ok(Some(v.to_string())),
        Err(why) => Err(DomainError::new(
            codes::INVALID_AWG_PARAMETER,
            format!("{label} must be a valid CPS string ({why})"),
        )
        .with("field", field)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_tag_and_concatenations() {
        for ok in [
            "<r 32>",
            "<rc 10>",
            "<rd 0>",
            "<rd 1000>",
            "<t>",
            "<b 0x00>",
            "<b 0xDEADbeef>",
            "<r 2><b 0x010000010000000000000a>",
            "<b 0x0001><r 1>",
            "<t><r 1><rc 2><rd 3><b 0xab>",
            "<r 0007>",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            " <r 1>",
            "<r 1> ",
            "<r 1>x",
            "x<r 1>",
            "<r>",
            "<r 1001>",
            "<r 99999999999999999999>",
            "<r -1>",
            "<r 1 >",
            "<r  1>",
            "<R 1>",
            "<b 0x>",
            "<b 0xabc>",
            "<b 0xzz>",
            "<b ab>",
            "<b 0Xab>",
            "<t><t>",
            "<t 1>",
            "<r 1",
            "<q 1>",
            "<r 1><>",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn parse_returns_tags_in_order() {
        assert_eq!(
            parse("<b 0x0a0B><r 5><rc 6><rd 7><t>").unwrap(),
            vec![
                Tag::Bytes("0a0B".into()),
                Tag::Random(5),
                Tag::RandomChars(6),
                Tag::RandomDigits(7),
                Tag::Timestamp
            ]
        );
    }

    #[test]
    fn normalize_trims_blanks_to_none_and_reports_field() {
        assert_eq!(normalize("I1", "awg_i1", None).unwrap(), None);
        assert_eq!(normalize("I1", "awg_i1", Some("   ")).unwrap(), None);
        assert_eq!(normalize("I1", "awg_i1", Some(" <r 3> ")).unwrap(), Some("<r 3>".into()));
        let e = normalize("I2", "awg_i2", Some("<r 3")).unwrap_err();
        assert_eq!(e.code, "INVALID_AWG_PARAMETER");
        assert!(e.message.starts_with("I2 must be a valid CPS string"), "{}", e.message);
        assert_eq!(e.detail["field"], "awg_i2");
    }
}
