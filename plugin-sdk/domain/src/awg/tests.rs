use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn shared(s: [Option<i64>; 4], h: [Option<&str>; 4], options: Value) -> SharedParams {
    SharedParams {
        awg_s1: s[0],
        awg_s2: s[1],
        awg_s3: s[2],
        awg_s4: s[3],
        awg_h1: h[0].map(String::from),
        awg_h2: h[1].map(String::from),
        awg_h3: h[2].map(String::from),
        awg_h4: h[3].map(String::from),
        awg_options: obj(options),
    }
}

fn valid_20() -> SharedParams {
    shared([Some(20), Some(30), Some(40), Some(10)], [Some("1000-1100"), Some("2000"), Some("3000-3000"), None], json!({}))
}

fn err_code(r: DomainResult<impl std::fmt::Debug>) -> (&'static str, String) {
    let e = r.unwrap_err();
    (e.code, e.message)
}

const KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

// ---- protocol / version resolution (§3.2) ----

#[test]
fn resolution_table() {
    let wg = ProtocolChoice::WIREGUARD;
    let awg = ProtocolChoice::awg;
    assert_eq!(resolve_protocol(None, None, None).unwrap(), wg);
    assert_eq!(resolve_protocol(Some("wireguard"), None, None).unwrap(), wg);
    assert_eq!(resolve_protocol(Some(" WireGuard "), Some(""), None).unwrap(), wg);
    assert_eq!(resolve_protocol(Some("amneziawg"), Some("3.1"), None).unwrap(), awg(AwgVersion::V3_1));
    assert_eq!(resolve_protocol(Some("amneziawg_2"), None, None).unwrap(), awg(AwgVersion::V2_0));
    assert_eq!(resolve_protocol(Some("amneziawg_2"), Some("2.0"), None).unwrap(), awg(AwgVersion::V2_0));
    // Update: AWG stays AWG without a version → current version kept; omitted protocol keeps it.
    let cur = Some(awg(AwgVersion::V1_5));
    assert_eq!(resolve_protocol(Some("amneziawg"), None, cur).unwrap(), awg(AwgVersion::V1_5));
    assert_eq!(resolve_protocol(None, None, cur).unwrap(), awg(AwgVersion::V1_5));
    assert_eq!(resolve_protocol(None, Some("3.1"), cur).unwrap(), awg(AwgVersion::V3_1));
    assert_eq!(resolve_protocol(Some("wireguard"), None, cur).unwrap(), wg);

    for (p, v, cur) in [
        (Some("wireguard"), Some("2.0"), None),
        (Some("wireguard"), Some("9"), None),
        (Some("amneziawg"), None, None),
        (Some("amneziawg"), None, Some(wg)),
        (None, Some("2.0"), Some(wg)),
        (Some("amneziawg_2"), Some("3.1"), None),
        (Some("amneziawg_2"), Some("1.5"), None),
        (Some("amneziawg"), Some("2"), None),
        (Some("amneziawg"), Some("4.0"), None),
    ] {
        let (code, _) = err_code(resolve_protocol(p, v, cur));
        assert_eq!(code, "INVALID_AWG_VERSION", "{p:?} {v:?} {cur:?}");
    }
    let e = resolve_protocol(Some("openvpn"), Some("2.0"), None).unwrap_err();
    assert_eq!(e.code, "INVALID_TUNNEL_PROTOCOL");
    assert_eq!(e.detail["value"], "openvpn");
}

#[test]
fn stored_values_follow_the_migration_rules() {
    assert_eq!(ProtocolChoice::from_stored("amneziawg_2", None), ProtocolChoice::awg(AwgVersion::V2_0));
    assert_eq!(ProtocolChoice::from_stored("amneziawg_2", Some("3.1")), ProtocolChoice::awg(AwgVersion::V2_0));
    assert_eq!(ProtocolChoice::from_stored("amneziawg", None), ProtocolChoice::awg(AwgVersion::V2_0));
    assert_eq!(ProtocolChoice::from_stored("amneziawg", Some("1.5")), ProtocolChoice::awg(AwgVersion::V1_5));
    assert_eq!(ProtocolChoice::from_stored("wireguard", Some("1.5")), ProtocolChoice::WIREGUARD);
    assert_eq!(ProtocolChoice::WIREGUARD.awg_version(), None);
}

#[test]
fn versions_serialise_as_strings() {
    assert_eq!(serde_json::to_value(AwgVersion::V3_1).unwrap(), json!("3.1"));
    assert_eq!(serde_json::from_value::<AwgVersion>(json!("1.5")).unwrap(), AwgVersion::V1_5);
    assert_eq!(serde_json::to_value(TunnelProtocol::AmneziaWg).unwrap(), json!("amneziawg"));
}

// ---- parameter structs ----

#[test]
fn params_deserialise_from_api_bodies() {
    let s: SharedParams = serde_json::from_value(json!({"awg_s1": 5, "awg_h2": "7-9", "awg_options": null, "name": "x"})).unwrap();
    assert_eq!(s.awg_s1, Some(5));
    assert_eq!(s.awg_h2.as_deref(), Some("7-9"));
    assert!(s.awg_options.is_empty());
    let n: NodeParams = serde_json::from_value(json!({"awg_jc": 3, "awg_i1": "<r 3>", "awg_options": {"itime": 5}})).unwrap();
    assert_eq!(n.awg_jc, Some(3));
    assert_eq!(n.awg_options["itime"], 5);
    let back = serde_json::to_value(&n).unwrap();
    assert_eq!(back["awg_jmin"], Value::Null);
    assert_eq!(back["awg_i1"], "<r 3>");
}

#[test]
fn normalisation_trims_and_blanks_to_null() {
    let s = shared([None; 4], [Some(" 5 "), Some("  "), None, None], json!({"random_trailers": true, "header_protection_key": ""}))
        .normalized()
        .unwrap();
    assert_eq!(s.awg_h1.as_deref(), Some("5"));
    assert_eq!(s.awg_h2, None);
    assert_eq!(s.awg_options["header_protection_key"], Value::Null);
    let n = NodeParams { awg_i2: Some("  ".into()), awg_i3: Some(" <t> ".into()), awg_options: obj(json!({"rekey_timeout": 5, "itime": "12", "j1": " "})), ..Default::default() }
        .normalized()
        .unwrap();
    assert_eq!(n.awg_i2, None);
    assert_eq!(n.awg_i3.as_deref(), Some("<t>"));
    assert_eq!(n.awg_options["rekey_timeout"], "5");
    assert_eq!(n.awg_options["itime"], 12);
    assert_eq!(n.awg_options["j1"], Value::Null);
}

// ---- options (§5.2) ----

#[test]
fn unknown_option_keys_are_rejected_per_level() {
    let (code, msg) = err_code(normalize_options(OptionLevel::Config, &obj(json!({"jc": 1}))));
    assert_eq!(code, "INVALID_AWG_PARAMETER");
    assert!(msg.starts_with("Unknown AWG option"), "{msg}");
    // Node keys are not config keys and vice versa.
    assert!(normalize_options(OptionLevel::Config, &obj(json!({"disable_cookies": true}))).is_err());
    assert!(normalize_options(OptionLevel::Node, &obj(json!({"header_protection_key": KEY}))).is_err());
    assert!(normalize_options(OptionLevel::Node, &obj(json!({"_random_direction": "dns"}))).is_err());
    // random_trailers exists on both levels.
    assert!(normalize_options(OptionLevel::Config, &obj(json!({"random_trailers": false}))).is_ok());
    assert!(normalize_options(OptionLevel::Node, &obj(json!({"random_trailers": false}))).is_ok());
}

#[test]
fn option_values_are_checked() {
    let config_bad = [
        json!({"header_protection_key": "short"}),
        json!({"header_protection_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}),
        json!({"header_protection_key": 5}),
        json!({"random_trailers": "true"}),
        json!({"random_trailers": 1}),
        json!({"_random_direction": "tcp"}),
        json!({"_random_intensity": "extreme"}),
    ];
    for o in config_bad {
        let e = normalize_options(OptionLevel::Config, &obj(o.clone())).unwrap_err();
        assert_eq!(e.code, "INVALID_AWG_PARAMETER", "{o}");
        assert!(e.detail.contains_key("field"));
    }
    let e = normalize_options(OptionLevel::Config, &obj(json!({"_random_direction": "tcp"}))).unwrap_err();
    assert_eq!(e.message, "Invalid AWG generation strategy");
    let node_bad = [
        json!({"rekey_timeout": "5-4"}),
        json!({"rekey_timeout": "65536"}),
        json!({"rekey_timeout": "a"}),
        json!({"rekey_timeout": "-5"}),
        json!({"rekey_timeout": -5}),
        json!({"content_padding_addition": "1-2-3"}),
        json!({"disable_cookies": "off"}),
        json!({"j1": "<x>"}),
        json!({"j2": 5}),
        json!({"itime": 4294967296u64}),
        json!({"itime": -1}),
        json!({"itime": 1.5}),
    ];
    for o in node_bad {
        assert_eq!(normalize_options(OptionLevel::Node, &obj(o.clone())).unwrap_err().code, "INVALID_AWG_PARAMETER", "{o}");
    }
    let ok = normalize_options(
        OptionLevel::Node,
        &obj(json!({"rekey_timeout": "0-65535", "keepalive_timeout": 10, "disable_cookies": false, "j3": "<r 40>", "itime": 4294967295u64})),
    )
    .unwrap();
    assert_eq!(ok["keepalive_timeout"], "10");
    let e = normalize_options(OptionLevel::Node, &obj(json!({"itime": -1}))).unwrap_err();
    assert_eq!(e.message, "Itime must be between 0 and 4294967295");
}

#[test]
fn gating_rejects_unsupported_non_null_keys_unless_unchanged() {
    let incoming = obj(json!({"header_protection_key": KEY}));
    let e = gate_options(OptionLevel::Config, AwgVersion::V2_0, &incoming, &Map::new()).unwrap_err();
    assert_eq!(e.code, "INVALID_AWG_PARAMETER");
    assert_eq!(e.message, "header_protection_key is not supported by AWG 2.0");
    // Equal to the stored value: a dormant key echoed back by the console is fine.
    assert!(gate_options(OptionLevel::Config, AwgVersion::V2_0, &incoming, &incoming).is_ok());
    // Null is always fine; strategy keys always supported.
    assert!(gate_options(OptionLevel::Config, AwgVersion::V1_5, &obj(json!({"random_trailers": null})), &Map::new()).is_ok());
    assert!(gate_options(OptionLevel::Config, AwgVersion::V1_5, &obj(json!({"_random_intensity": "high"})), &Map::new()).is_ok());
    assert!(gate_options(OptionLevel::Config, AwgVersion::V3_1, &incoming, &Map::new()).is_ok());
    // Node: 3.1 keys only on 3.1, J/Itime only on 1.5, nothing on 2.0.
    let n31 = obj(json!({"disable_cookies": true}));
    let n15 = obj(json!({"itime": 10}));
    assert!(gate_options(OptionLevel::Node, AwgVersion::V3_1, &n31, &Map::new()).is_ok());
    assert!(gate_options(OptionLevel::Node, AwgVersion::V1_5, &n15, &Map::new()).is_ok());
    for v in [AwgVersion::V2_0, AwgVersion::V1_5] {
        assert_eq!(
            gate_options(OptionLevel::Node, v, &n31, &Map::new()).unwrap_err().message,
            format!("disable_cookies is not supported by AWG {v}")
        );
    }
    assert!(gate_options(OptionLevel::Node, AwgVersion::V2_0, &n15, &Map::new()).is_err());
    assert!(gate_options(OptionLevel::Node, AwgVersion::V3_1, &n15, &obj(json!({"itime": 11}))).is_err());
}

#[test]
fn merge_and_filter_options() {
    let stored = obj(json!({"a": 1, "b": 2}));
    let merged = merge_options(&stored, &obj(json!({"b": null, "c": 3})));
    assert_eq!(Value::Object(merged), json!({"a": 1, "b": null, "c": 3}));
    let o = obj(json!({"j1": "<r 3>", "disable_cookies": true, "random_trailers": false}));
    assert_eq!(Value::Object(options_for_version(OptionLevel::Node, AwgVersion::V1_5, &o)), json!({"j1": "<r 3>"}));
    assert_eq!(
        Value::Object(options_for_version(OptionLevel::Node, AwgVersion::V3_1, &o)),
        json!({"disable_cookies": true, "random_trailers": false})
    );
    assert!(options_for_version(OptionLevel::Node, AwgVersion::V2_0, &o).is_empty());
    let c = obj(json!({"_random_direction": "dns", "header_protection_key": KEY}));
    assert_eq!(Value::Object(options_for_version(OptionLevel::Config, AwgVersion::V2_0, &c)), json!({"_random_direction": "dns"}));
}

#[test]
fn strategy_parsing_and_storage() {
    assert_eq!(Strategy::from_config_options(&Map::new()), Strategy { direction: Direction::Generic, intensity: Intensity::Balanced });
    let o = obj(json!({"_random_direction": "quic", "_random_intensity": "high"}));
    assert_eq!(Strategy::from_config_options(&o), Strategy { direction: Direction::Quic, intensity: Intensity::High });
    let s = Strategy::parse(Some("stun"), None).unwrap();
    assert_eq!(s.intensity, Intensity::Balanced);
    assert_eq!(Strategy::parse(Some("x"), None).unwrap_err().message, "Invalid AWG generation strategy");
    assert_eq!(Strategy::parse(None, Some("max")).unwrap_err().code, "INVALID_AWG_PARAMETER");
    let mut m = Map::new();
    s.store_into(&mut m);
    assert_eq!(Value::Object(m), json!({"_random_direction": "stun", "_random_intensity": "balanced"}));
}

// ---- shared validation (§5.3) ----

#[test]
fn valid_shared_sets_pass() {
    assert!(validate_config_params(AwgVersion::V2_0, &valid_20()).is_ok());
    assert!(validate_config_params(AwgVersion::V2_0, &SharedParams::default()).is_ok());
    let v15 = shared([Some(20), Some(30), Some(0), None], [Some("1"), Some("2"), Some("3"), Some("4294967295")], json!({}));
    assert!(validate_config_params(AwgVersion::V1_5, &v15).is_ok());
    let v31 = shared(
        [Some(12); 4],
        [Some("1024"), Some("2048"), None, None],
        json!({"header_protection_key": KEY, "random_trailers": true, "_random_direction": "dns"}),
    );
    assert!(validate_config_params(AwgVersion::V3_1, &v31).is_ok());
}

#[test]
fn s_values_are_bounded() {
    for (i, bad) in [(0, -1), (1, 65536), (2, 70000), (3, i64::MIN)] {
        let mut s = valid_20();
        *s.s_mut()[i] = Some(bad);
        let e = validate_config_params(AwgVersion::V2_0, &s).unwrap_err();
        assert_eq!(e.code, "INVALID_AWG_PARAMETER");
        assert_eq!(e.message, format!("S{} must be between 0 and 65535", i + 1));
        assert_eq!(e.detail["field"], S_FIELDS[i]);
    }
    let mut s = valid_20();
    s.awg_s4 = Some(65535);
    assert!(validate_config_params(AwgVersion::V2_0, &s).is_ok());
}

#[test]
fn h_format_and_range_errors() {
    for bad in ["x", "-5", "5-", "-", "1-2-3", "1 - 2", "1.5", "4294967296", "0-4294967296", "99999999999999999999999", "+5", "10-5"] {
        let mut s = valid_20();
        s.awg_h4 = Some(bad.into());
        let (code, msg) = err_code(validate_config_params(AwgVersion::V2_0, &s));
        assert_eq!(code, "INVALID_AWG_H_RANGE", "{bad}: {msg}");
        assert!(msg.starts_with("H4"), "{msg}");
    }
    let mut s = valid_20();
    s.awg_h4 = Some("10-5".into());
    assert_eq!(validate_config_params(AwgVersion::V2_0, &s).unwrap_err().message, "H4 start must not be greater than its end");
    s.awg_h4 = Some("0-4294967295".into());
    s.awg_h1 = None;
    s.awg_h2 = None;
    s.awg_h3 = None;
    assert!(validate_config_params(AwgVersion::V2_0, &s).is_ok(), "full uint32 span is allowed alone");
}

#[test]
fn h_values_must_not_overlap_inclusively() {
    let cases = [
        (["1000-1100", "1100-1200"], false),
        (["1000-1100", "1101-1200"], true),
        (["1000-1100", "1050"], false),
        (["5", "5"], false),
        (["5", "6"], true),
        (["1200-1300", "1000-1200"], false),
    ];
    for ([a, b], ok) in cases {
        let s = shared([None; 4], [Some(a), None, Some(b), None], json!({}));
        let r = validate_config_params(AwgVersion::V2_0, &s);
        assert_eq!(r.is_ok(), ok, "{a} {b}");
        if let Err(e) = r {
            assert_eq!(e.code, "INVALID_AWG_H_RANGE");
            assert_eq!(e.message, "H1 and H3 must not overlap");
        }
    }
    // Overlap applies to every version (upstream code, spec open point 9).
    let s = shared([None; 4], [Some("7"), Some("7"), None, None], json!({}));
    assert_eq!(validate_config_params(AwgVersion::V3_1, &s).unwrap_err().code, "INVALID_AWG_H_RANGE");
}

#[test]
fn awg_1_5_rules() {
    let base = shared([Some(20), Some(30), None, None], [Some("1"), None, None, None], json!({}));
    let mut s = base.clone();
    s.awg_s3 = Some(1);
    let e = validate_config_params(AwgVersion::V1_5, &s).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), ("INVALID_AWG_PARAMETER", "S3 must be 0 or empty for AWG 1.5"));
    let mut s = base.clone();
    s.awg_s4 = Some(7);
    assert_eq!(validate_config_params(AwgVersion::V1_5, &s).unwrap_err().message, "S4 must be 0 or empty for AWG 1.5");
    let mut s = base.clone();
    s.awg_h2 = Some("10-20".into());
    let e = validate_config_params(AwgVersion::V1_5, &s).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), ("INVALID_AWG_H_RANGE", "H2 must be a single integer for AWG 1.5"));
    let mut s = base.clone();
    s.awg_s2 = Some(76);
    let e = validate_config_params(AwgVersion::V1_5, &s).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), ("INVALID_AWG_PARAMETER", "S2 must not equal S1 + 56 for AWG 1.5"));
    // The S1+56 rule exists only for 1.5; S3/S4 and H ranges are fine on 2.0.
    s.awg_s3 = Some(5);
    s.awg_h2 = Some("10-20".into());
    assert!(validate_config_params(AwgVersion::V2_0, &s).is_ok());
}

#[test]
fn awg_3_1_header_key_needs_s_at_least_12() {
    let key = json!({"header_protection_key": KEY});
    for s_vals in [[Some(12), Some(12), Some(12), Some(11)], [Some(20), Some(20), Some(20), None], [None; 4]] {
        let s = shared(s_vals, [None; 4], key.clone());
        let e = validate_config_params(AwgVersion::V3_1, &s).unwrap_err();
        assert_eq!(e.code, "INVALID_AWG_PARAMETER", "{s_vals:?}");
    }
    // No key (absent or explicit null), or another version: no S floor.
    assert!(validate_config_params(AwgVersion::V3_1, &shared([Some(0); 4], [None; 4], json!({"header_protection_key": null}))).is_ok());
    assert!(validate_config_params(AwgVersion::V3_1, &shared([Some(0); 4], [None; 4], json!({}))).is_ok());
    assert!(validate_config_params(AwgVersion::V2_0, &shared([Some(0); 4], [None; 4], key)).is_ok());
}

#[test]
fn shared_random_trailers_requires_equal_s_config_wide() {
    let rt = |v: bool| json!({"random_trailers": v});
    let unequal = [Some(20), Some(21), Some(20), Some(20)];
    let e = validate_config_params(AwgVersion::V3_1, &shared(unequal, [None; 4], rt(true))).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), ("INVALID_AWG_PARAMETER", "RandomTrailers needs S1, S2, S3 and S4 to be equal"));
    assert!(validate_config_params(AwgVersion::V3_1, &shared(unequal, [None; 4], rt(false))).is_ok());
    assert!(validate_config_params(AwgVersion::V3_1, &shared([Some(20); 4], [None; 4], rt(true))).is_ok());
    // Dormant on other versions.
    assert!(validate_config_params(AwgVersion::V2_0, &shared(unequal, [None; 4], rt(true))).is_ok());
}

#[test]
fn config_validation_checks_option_values() {
    let s = shared([None; 4], [None; 4], json!({"random_trailers": "yes"}));
    assert_eq!(validate_config_params(AwgVersion::V3_1, &s).unwrap_err().code, "INVALID_AWG_PARAMETER");
    let s = shared([None; 4], [None; 4], json!({"bogus": 1}));
    assert_eq!(validate_config_params(AwgVersion::V2_0, &s).unwrap_err().code, "INVALID_AWG_PARAMETER");
}

// ---- node validation ----

fn node(j: [Option<i64>; 3], options: Value) -> NodeParams {
    NodeParams { awg_jc: j[0], awg_jmin: j[1], awg_jmax: j[2], awg_options: obj(options), ..Default::default() }
}

#[test]
fn j_values_and_range() {
    let s = SharedParams::default();
    assert!(validate_node_params(AwgVersion::V2_0, &s, &node([Some(4), Some(64), Some(65)], json!({}))).is_ok());
    assert!(validate_node_params(AwgVersion::V2_0, &s, &node([None, Some(64), None], json!({}))).is_ok());
    let e = validate_node_params(AwgVersion::V2_0, &s, &node([Some(4), Some(64), Some(64)], json!({}))).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), ("INVALID_AWG_J_RANGE", "Jmax must be greater than Jmin"));
    assert_eq!(validate_node_params(AwgVersion::V2_0, &s, &node([None, Some(100), Some(50)], json!({}))).unwrap_err().code, "INVALID_AWG_J_RANGE");
    for (j, label) in [([Some(-1), None, None], "Jc"), ([None, Some(65536), None], "Jmin"), ([None, None, Some(70000)], "Jmax")] {
        let e = validate_node_params(AwgVersion::V2_0, &s, &node(j, json!({}))).unwrap_err();
        assert_eq!(e.code, "INVALID_AWG_PARAMETER");
        assert_eq!(e.message, format!("{label} must be between 0 and 65535"));
    }
}

#[test]
fn i_values_must_be_cps() {
    let s = SharedParams::default();
    let mut n = NodeParams { awg_i1: Some("<r 10>".into()), awg_i5: Some("<b 0x00><t>".into()), ..Default::default() };
    assert!(validate_node_params(AwgVersion::V2_0, &s, &n).is_ok());
    n.awg_i4 = Some("<r 10".into());
    let e = validate_node_params(AwgVersion::V2_0, &s, &n).unwrap_err();
    assert_eq!(e.code, "INVALID_AWG_PARAMETER");
    assert_eq!(e.detail["field"], "awg_i4");
    assert!(e.message.starts_with("I4 "), "{}", e.message);
}

#[test]
fn reject_after_time_must_start_after_rekey_after_time_ends() {
    let s = SharedParams::default();
    let check = |reject: &str, rekey: &str| {
        validate_node_params(AwgVersion::V3_1, &s, &node([None; 3], json!({"reject_after_time": reject, "rekey_after_time": rekey})))
    };
    assert!(check("170-180", "100-135").is_ok());
    assert_eq!(check("135-180", "100-135").unwrap_err().code, "INVALID_AWG_PARAMETER");
    assert_eq!(check("120", "100-135").unwrap_err().message, "RejectAfterTime must start after RekeyAfterTime ends");
    assert!(check("0-180", "100-135").is_ok(), "a zero start skips the rule");
    assert!(check("120", "0").is_ok(), "a zero end skips the rule");
    // Only 3.1 emits these keys, so only 3.1 checks the relation.
    let dormant = node([None; 3], json!({"reject_after_time": "1", "rekey_after_time": "100"}));
    assert!(validate_node_params(AwgVersion::V2_0, &s, &dormant).is_ok());
}

#[test]
fn random_trailers_mesh_rules() {
    let equal = shared([Some(20); 4], [None; 4], json!({}));
    let unequal = shared([Some(20), Some(21), Some(20), Some(20)], [None; 4], json!({}));
    let rt = |v: Value| node([None; 3], json!({"random_trailers": v}));
    // Node true (shared null) → S must be equal.
    assert!(check_mesh_rules(AwgVersion::V3_1, &equal, &rt(json!(true))).is_ok());
    let e = check_mesh_rules(AwgVersion::V3_1, &unequal, &rt(json!(true))).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), ("INVALID_AWG_PARAMETER", "RandomTrailers needs S1, S2, S3 and S4 to be equal"));
    assert!(check_mesh_rules(AwgVersion::V3_1, &unequal, &rt(json!(false))).is_ok());
    assert!(check_mesh_rules(AwgVersion::V3_1, &unequal, &rt(Value::Null)).is_ok());
    // Shared wins when set.
    let mut shared_true = unequal.clone();
    shared_true.awg_options = obj(json!({"random_trailers": true}));
    assert!(check_mesh_rules(AwgVersion::V3_1, &shared_true, &rt(Value::Null)).is_err());
    let e = check_mesh_rules(AwgVersion::V3_1, &shared_true, &rt(json!(false))).unwrap_err();
    assert_eq!(e.message, "Node RandomTrailers must match the shared RandomTrailers");
    let mut shared_false = unequal.clone();
    shared_false.awg_options = obj(json!({"random_trailers": false}));
    assert!(check_mesh_rules(AwgVersion::V3_1, &shared_false, &rt(Value::Null)).is_ok());
    // Other versions: no mesh rules.
    assert!(check_mesh_rules(AwgVersion::V2_0, &shared_true, &rt(json!(false))).is_ok());
    // validate_node_params includes them.
    assert!(validate_node_params(AwgVersion::V3_1, &unequal, &rt(json!(true))).is_err());
}

#[test]
fn unanimous_random_trailers_value() {
    let t = NodeParams { awg_options: obj(json!({"random_trailers": true})), ..Default::default() };
    let f = NodeParams { awg_options: obj(json!({"random_trailers": false})), ..Default::default() };
    let unset = NodeParams::default();
    assert!(unanimous_random_trailers([]).unwrap());
    assert!(unanimous_random_trailers([&t, &unset]).unwrap());
    assert!(!unanimous_random_trailers([&f, &f]).unwrap());
    let e = unanimous_random_trailers([&f, &unset]).unwrap_err();
    assert_eq!(e.code, "INVALID_AWG_PARAMETER");
    assert!(e.message.starts_with("Choose a shared RandomTrailers value"));
}

// ---- protocol options (§5.5) ----

#[test]
fn protocol_options_shape() {
    let o = protocol_options();
    assert_eq!(o["default_awg_version"], "3.1");
    assert_eq!(o["awg_versions"], json!(["1.5", "2.0", "3.1"]));
    let v = &o["versions"];
    assert_eq!(v["1.5"]["s_fields"], json!(["awg_s1", "awg_s2"]));
    assert_eq!(v["1.5"]["h_format"], "integer");
    assert_eq!(v["1.5"]["config_options"], json!({}));
    assert_eq!(v["1.5"]["node_options"], json!({"j1": "J1", "j2": "J2", "j3": "J3", "itime": "Itime"}));
    assert_eq!(v["2.0"], json!({"s_fields": ["awg_s1", "awg_s2", "awg_s3", "awg_s4"], "h_format": "range", "config_options": {}, "node_options": {}}));
    assert_eq!(v["3.1"]["h_format"], "range");
    assert_eq!(v["3.1"]["config_options"], json!({"header_protection_key": "HeaderProtectionKey", "random_trailers": "RandomTrailers"}));
    assert_eq!(
        v["3.1"]["node_options"],
        json!({
            "content_padding_addition": "ContentPaddingAddition",
            "rekey_after_time": "RekeyAfterTime",
            "rekey_timeout": "RekeyTimeout",
            "reject_after_time": "RejectAfterTime",
            "keepalive_timeout": "KeepaliveTimeout",
            "max_handshake_attempts": "MaxHandshakeAttempts",
            "disable_cookies": "DisableCookies",
        })
    );
}
