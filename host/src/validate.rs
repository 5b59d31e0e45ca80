//! Schema validation with the upstream 422 `VALIDATION_ERROR` shape (spec 01 §1).
//!
//! `detail.errors` lists raw validator errors `{type, loc, msg}`; the envelope `message` is
//! derived from the first one: a custom rule message as is, otherwise `<Label> <suffix>`.

use serde_json::{Value, json};

use crate::error::{AppError, ErrorCode};

/// One raw validator error.
#[derive(Debug, Clone)]
pub struct FieldError {
    /// Kind, e.g. `missing`, `string_too_long`, `value_error`.
    pub kind: &'static str,
    /// Location, e.g. `["body", "name"]`.
    pub loc: Vec<String>,
    /// Raw message.
    pub msg: String,
    /// Message for the envelope.
    pub display: String,
}

/// UI label of a field name (spec 01 §1).
pub fn label(field: &str) -> String {
    let l = match field {
        "name" => "Name",
        "description" => "Description",
        "virtual_subnet" => "Virtual subnet",
        "default_dns" => "Default DNS",
        "ipv4_address" => "Public IPv4",
        "ipv6_address" => "Public IPv6",
        "listen_port" => "Listen port",
        "virtual_ip" => "Virtual IP",
        "dns" => "DNS",
        "private_key" => "Private key",
        "public_key" => "Public key",
        "tag" => "Tag",
        "tags" => "Tags",
        "peer_node_id" => "Peer node",
        "local_node_id" => "Local node",
        "allowed_ips" => "AllowedIPs",
        "endpoint_manual_host" => "Manual Host",
        "endpoint_manual_port" => "Manual Port",
        "host" => "Host",
        "port" => "Port",
        "current_password" => "Current password",
        "new_password" => "New password",
        "username" => "Username",
        "password" => "Password",
        "" => "Field",
        other => other,
    };
    l.to_string()
}

fn last_field(loc: &[String]) -> &str {
    loc.iter()
        .rev()
        .find(|s| !matches!(s.as_str(), "body" | "query" | "path") && s.parse::<usize>().is_err())
        .map(|s| s.as_str())
        .unwrap_or("")
}

impl FieldError {
    /// A standard error: message `<Label> <suffix>`.
    pub fn standard(kind: &'static str, loc: Vec<String>, suffix: &str) -> Self {
        let display = format!("{} {}", label(last_field(&loc)), suffix);
        FieldError { kind, loc, msg: display.clone(), display }
    }

    /// A custom rule: the message is used as is.
    pub fn custom(loc: Vec<String>, message: impl Into<String>) -> Self {
        let m = message.into();
        FieldError { kind: "value_error", loc, msg: format!("Value error, {m}"), display: m }
    }

    fn to_json(&self) -> Value {
        json!({"type": self.kind, "loc": self.loc, "msg": self.msg})
    }
}

/// Builds the 422 from a list of errors (first one names the message).
pub fn errors(errs: Vec<FieldError>) -> AppError {
    let message = errs.first().map(|e| e.display.clone()).unwrap_or_else(|| "Field is invalid".into());
    let list: Vec<Value> = errs.iter().map(FieldError::to_json).collect();
    AppError::new(ErrorCode::ValidationError, message).with("errors", list)
}

/// One standard error for a body field.
pub fn field(name: &str, kind: &'static str, suffix: &str) -> AppError {
    errors(vec![FieldError::standard(kind, body_loc(name), suffix)])
}

/// One custom-message error for a body field.
pub fn field_custom(name: &str, message: impl Into<String>) -> AppError {
    errors(vec![FieldError::custom(body_loc(name), message)])
}

/// `["body", name]`, or `["body"]` for an empty name.
pub fn body_loc(name: &str) -> Vec<String> {
    let mut v = vec!["body".to_string()];
    if !name.is_empty() {
        v.extend(name.split('.').map(str::to_string));
    }
    v
}

/// Length bounds on a string (in characters). `min` ≥ 1 failing reports `is required`.
pub fn str_len(name: &str, value: &str, min: usize, max: usize) -> Result<(), AppError> {
    let n = value.chars().count();
    if n < min {
        return Err(field(name, "string_too_short", "is required"));
    }
    if n > max {
        return Err(field(name, "string_too_long", "is too long"));
    }
    Ok(())
}

/// Non-blank (after trim) with length bounds; whitespace-only fails with a custom message.
pub fn not_blank(name: &str, value: &str, min: usize, max: usize) -> Result<(), AppError> {
    str_len(name, value, min, max)?;
    if value.trim().is_empty() {
        return Err(field_custom(name, format!("{} cannot be blank", label(name))));
    }
    Ok(())
}

/// Integer bounds.
pub fn int_range(name: &str, value: i64, min: i64, max: i64) -> Result<(), AppError> {
    if value < min {
        return Err(field(name, "greater_than_equal", &format!("must be greater than or equal to {min}")));
    }
    if value > max {
        return Err(field(name, "less_than_equal", &format!("must be less than or equal to {max}")));
    }
    Ok(())
}

/// Maps a serde error at a path to the 422 (missing → `is required`, numbers → `must be a
/// number`, other type errors → `is invalid`).
pub fn from_serde(path: &str, err: &serde_json::Error) -> AppError {
    let text = err.to_string();
    let mut loc = vec!["body".to_string()];
    let mut path_parts: Vec<String> = path
        .split('.')
        .filter(|s| !s.is_empty() && *s != "?")
        .map(|s| s.trim_start_matches('[').trim_end_matches(']').to_string())
        .collect();
    if let Some(rest) = text.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        path_parts.push(name.to_string());
        loc.extend(path_parts);
        return errors(vec![FieldError::standard("missing", loc, "is required")]);
    }
    loc.extend(path_parts);
    let (kind, suffix) = if text.contains("expected i") || text.contains("expected u") || text.contains("expected f") {
        ("int_type", "must be a number")
    } else if text.starts_with("unknown variant") {
        ("enum", "value is invalid")
    } else {
        ("type_error", "is invalid")
    };
    let mut e = FieldError::standard(kind, loc, suffix);
    e.msg = text;
    errors(vec![e])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let e = str_len("password", "abc", 6, 256).unwrap_err();
        assert_eq!(e.message, "Password is required");
        assert_eq!(e.detail["errors"][0]["loc"], json!(["body", "password"]));
        let e = str_len("name", &"x".repeat(40), 1, 32).unwrap_err();
        assert_eq!(e.message, "Name is too long");
        let e = int_range("listen_port", 70000, 1, 65535).unwrap_err();
        assert_eq!(e.message, "Listen port must be less than or equal to 65535");
        let e = field_custom("locale", "Unsupported locale");
        assert_eq!(e.message, "Unsupported locale");
        assert_eq!(e.code, ErrorCode::ValidationError);
        assert_eq!(label("weird_field"), "weird_field");
    }
}
