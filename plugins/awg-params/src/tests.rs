use super::*;
use serde_json::json;

fn ctx() -> Context {
    Context::for_test()
}

fn call(tool: &str, input: Value) -> Result<Value, ToolError> {
    let out = AwgParams::tools().call(&ctx(), tool, &input.to_string())?;
    Ok(serde_json::from_str(&out).expect("json"))
}

#[test]
fn random_config_for_each_version_validates() {
    for seed in 0..100 {
        for v in ["1.5", "2.0", "3.1"] {
            let out = call("random_config_params", json!({"awg_version": v, "seed": seed})).expect("ok");
            let shared: SharedParams = serde_json::from_value(out).expect("shared");
            awg::validate_config_params(AwgVersion::parse(v).expect("v"), &shared).expect("valid");
        }
    }
}

#[test]
fn regenerate_key_needs_3_1() {
    let err = call("random_config_params", json!({"awg_version": "2.0", "regenerate_key": true})).unwrap_err();
    assert_eq!(err.code, "INVALID_AWG_VERSION");
    let out = call("random_config_params", json!({"awg_version": "3.1", "regenerate_key": true})).expect("ok");
    assert!(out["awg_options"]["header_protection_key"].is_string());
}

#[test]
fn generate_every_strategy_validates() {
    for seed in 0..20 {
        for v in AwgVersion::ALL {
            for d in ["generic", "dns", "stun", "rtp", "quic"] {
                for i in ["low", "balanced", "high"] {
                    let input = json!({"awg_version": v.as_str(), "direction": d, "intensity": i,
                        "config": {}, "nodes": {"node_a": {}, "node_b": {"awg_jc": 3}}, "seed": seed});
                    let out = call("generate", input).expect("generate");
                    let shared: SharedParams = serde_json::from_value(out["config"].clone()).expect("shared");
                    awg::validate_config_params(v, &shared).expect("shared valid");
                    assert_eq!(out["config"]["awg_options"]["_random_direction"], d);
                    for id in ["node_a", "node_b"] {
                        let node: NodeParams = serde_json::from_value(out["nodes"][id].clone()).expect("node");
                        awg::validate_node_params(v, &shared, &node).expect("node valid");
                        assert!(node.awg_i1.is_some());
                    }
                }
            }
        }
    }
}

#[test]
fn generate_rejects_bad_strategy_and_scope() {
    let err = call("generate", json!({"awg_version": "2.0", "direction": "ftp"})).unwrap_err();
    assert_eq!(err.code, "INVALID_AWG_PARAMETER");
    assert_eq!(err.message, "Invalid AWG generation strategy");
    let err = call("generate", json!({"awg_version": "2.0", "scope": "node", "nodes": {}})).unwrap_err();
    assert_eq!(err.code, "INVALID_AWG_PARAMETER");
    let err = call("generate", json!({"awg_version": "9.9"})).unwrap_err();
    assert_eq!(err.code, "INVALID_AWG_VERSION");
}

#[test]
fn generate_3_1_resolves_random_trailers_and_key() {
    let out = call(
        "generate",
        json!({"awg_version": "3.1", "nodes": {"n1": {"awg_options": {"random_trailers": false}}}, "seed": 5}),
    )
    .expect("ok");
    assert_eq!(out["config"]["awg_options"]["random_trailers"], false);
    assert!(out["config"]["awg_options"]["header_protection_key"].is_string());
    assert_eq!(out["nodes"]["n1"]["awg_options"]["random_trailers"], false);
    assert!(out["config"]["awg_s1"].as_i64().expect("s1") >= 12);
    let err = call(
        "generate",
        json!({"awg_version": "3.1", "nodes": {"a": {"awg_options": {"random_trailers": false}}, "b": {}}}),
    )
    .unwrap_err();
    assert_eq!(err.code, "INVALID_AWG_PARAMETER");
}

#[test]
fn generate_scope_node_echoes_shared() {
    let config = json!({"awg_s1": 20, "awg_s2": 30, "awg_s3": 40, "awg_s4": 10,
        "awg_h1": "1000-1100", "awg_h2": "2000-2100", "awg_h3": "3000-3100", "awg_h4": "4000-4100"});
    let out = call("generate", json!({"awg_version": "2.0", "scope": "node", "config": config, "nodes": {"n": {}}}))
        .expect("ok");
    assert_eq!(out["config"]["awg_s1"], 20);
    assert_eq!(out["config"]["awg_h4"], "4000-4100");
    assert!(out["config"]["awg_options"].get("_random_direction").is_none());
}

#[test]
fn convert_between_versions() {
    let body = json!({"name": "x", "awg_s1": 20, "awg_s2": 76, "awg_s3": 40, "awg_s4": 10,
        "awg_h1": "1000-1100", "awg_h2": "2000-2100", "awg_h3": "3000-3100", "awg_h4": "4000-4100",
        "awg_version": "1.5", "source_version": "2.0", "seed": 1});
    let out = call("convert", body).expect("convert");
    assert_eq!(out["awg_s3"], 0);
    assert_eq!(out["awg_s2"], 15);
    assert_eq!(out["awg_h1"], "1000");
    let out = call("convert", json!({"awg_version": "3.1", "source_version": "2.0", "seed": 2})).expect("3.1");
    assert!(out["awg_options"]["header_protection_key"].is_string());
    let shared: SharedParams = serde_json::from_value(out).expect("shared");
    awg::validate_config_params(AwgVersion::V3_1, &shared).expect("valid");
}

#[test]
fn backfill_uses_saved_strategy() {
    let out = call(
        "backfill_node",
        json!({"awg_version": "2.0", "config_options": {"_random_direction": "quic", "_random_intensity": "high"},
               "node": {"awg_jmin": 100}, "seed": 9}),
    )
    .expect("ok");
    assert_eq!(out["awg_jmin"], 100);
    assert!(out["awg_i1"].as_str().expect("i1").len() > 2400);
    assert!(out["awg_i2"].is_null());
}

#[test]
fn schemas_are_objects() {
    let tools = AwgParams::tools();
    for name in tools.names() {
        assert_eq!(tools.input_schema(name).expect("in")["type"], "object", "{name}");
    }
}
