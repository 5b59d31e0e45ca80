//! The awg-params plugin through the runtime: results pass the domain validators across many
//! seeds, and the QUIC direction's packet decrypts with the RFC 9001 initial keys (derived
//! here, host-side, with RustCrypto, independently of the plugin's code).

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use aes_gcm::Aes128Gcm;
use aes_gcm::aead::AeadInPlace;
use hkdf::Hkdf;
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use wfm_domain::awg::{self, AwgVersion, NodeParams, SharedParams};
use wfm_plugin_runtime::testing::plugin_dir_with;
use wfm_plugin_runtime::{CallRequest, NoHost, PluginRuntime, RuntimeConfig};

async fn runtime() -> (PluginRuntime, tempfile::TempDir) {
    let dir = plugin_dir_with(&["wfm-plugin-awg-params"]).expect("build");
    let rt = PluginRuntime::load(RuntimeConfig {
        plugin_dir: dir.path().to_path_buf(),
        cache_dir: None,
        limits: Default::default(),
    })
    .await
    .expect("runtime");
    assert!(rt.failures().is_empty(), "{:?}", rt.failures());
    (rt, dir)
}

async fn call(rt: &PluginRuntime, tool: &str, input: Value) -> Value {
    rt.call_tool(CallRequest::new("awg-params", tool, input.clone()), Arc::new(NoHost))
        .await
        .unwrap_or_else(|e| panic!("{tool} {input}: {e}"))
        .output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_pass_the_validators_across_seeds() {
    let (rt, _dir) = runtime().await;
    for seed in 0..60u64 {
        for v in AwgVersion::ALL {
            let shared: SharedParams =
                serde_json::from_value(call(&rt, "random_config_params", json!({"awg_version": v.as_str(), "seed": seed})).await)
                    .expect("shared");
            awg::validate_config_params(v, &shared).expect("random config valid");
            let node: NodeParams =
                serde_json::from_value(call(&rt, "random_node_params", json!({"awg_version": v.as_str(), "seed": seed})).await)
                    .expect("node");
            awg::validate_node_params(v, &shared, &node).expect("random node valid");

            let d = ["generic", "dns", "stun", "rtp", "quic"][seed as usize % 5];
            let i = ["low", "balanced", "high"][seed as usize % 3];
            let out = call(
                &rt,
                "generate",
                json!({"awg_version": v.as_str(), "direction": d, "intensity": i, "nodes": {"a": {}, "b": {}}, "seed": seed}),
            )
            .await;
            let shared: SharedParams = serde_json::from_value(out["config"].clone()).expect("config");
            awg::validate_config_params(v, &shared).expect("generated config valid");
            for id in ["a", "b"] {
                let node: NodeParams = serde_json::from_value(out["nodes"][id].clone()).expect("node");
                awg::validate_node_params(v, &shared, &node).expect("generated node valid");
            }
            let target = AwgVersion::ALL[(seed as usize + 1) % 3];
            let mut body = out["config"].clone();
            body["awg_version"] = json!(target.as_str());
            body["source_version"] = json!(v.as_str());
            body["seed"] = json!(seed);
            let converted: SharedParams = serde_json::from_value(call(&rt, "convert", body).await).expect("converted");
            awg::validate_config_params(target, &converted).expect("converted valid");
        }
    }
    // Without a seed the plugin draws from wasi:random: two calls differ.
    let a = call(&rt, "random_config_params", json!({})).await;
    let b = call(&rt, "random_config_params", json!({})).await;
    assert_ne!(a, b);
}

fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], len: usize) -> Vec<u8> {
    let mut info = (len as u16).to_be_bytes().to_vec();
    info.push(6 + label.len() as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0);
    let mut out = vec![0u8; len];
    prk.expand(&info, &mut out).expect("expand");
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_initial_decrypts_with_rfc_9001_keys() {
    let (rt, _dir) = runtime().await;
    for seed in [None, Some(1u64), Some(2), Some(3)] {
        let mut input = json!({"awg_version": "2.0", "direction": "quic", "intensity": "high", "nodes": {"n": {}}});
        if let Some(s) = seed {
            input["seed"] = json!(s);
        }
        let out = call(&rt, "generate", input).await;
        let node = &out["nodes"]["n"];
        assert!(node["awg_i2"].is_null(), "quic makes exactly one packet");
        let cps = node["awg_i1"].as_str().expect("i1");
        let hex = cps.strip_prefix("<b 0x").and_then(|s| s.strip_suffix('>')).expect("one <b> tag");
        let mut packet: Vec<u8> = (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex")).collect();
        assert_eq!(packet.len(), 1200);
        assert_eq!(&packet[1..5], &[0, 0, 0, 1], "QUIC v1");
        let dcid = packet[6..14].to_vec();
        let scid = packet[15..23].to_vec();
        assert_eq!((packet[5], packet[14], packet[23]), (8, 8, 0));

        let salt = [0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a];
        let (_, initial) = Hkdf::<Sha256>::extract(Some(&salt), &dcid);
        let client = Hkdf::<Sha256>::from_prk(&expand_label(&initial, b"client in", 32)).expect("prk");
        let key = expand_label(&client, b"quic key", 16);
        let iv = expand_label(&client, b"quic iv", 12);
        let hp = expand_label(&client, b"quic hp", 16);

        // Remove header protection (RFC 9001 §5.4): 2-byte packet number at offset 26.
        let pn_offset = 26;
        let mut mask = GenericArray::clone_from_slice(&packet[pn_offset + 4..pn_offset + 20]);
        Aes128::new(GenericArray::from_slice(&hp)).encrypt_block(&mut mask);
        packet[0] ^= mask[0] & 0x0f;
        assert_eq!(packet[0], 0xc1, "Initial with a 2-byte packet number");
        let pn_len = (packet[0] & 0x03) as usize + 1;
        for i in 0..pn_len {
            packet[pn_offset + i] ^= mask[1 + i];
        }
        assert_eq!(&packet[pn_offset..pn_offset + 2], &[0, 0], "packet number 0");
        let length = (u16::from_be_bytes([packet[24], packet[25]]) & 0x3fff) as usize;
        assert_eq!(pn_offset + length, 1200);

        let (header, rest) = packet.split_at(pn_offset + pn_len);
        let (ciphertext, tag) = rest.split_at(rest.len() - 16);
        let mut plain = ciphertext.to_vec();
        Aes128Gcm::new(GenericArray::from_slice(&key))
            .decrypt_in_place_detached(GenericArray::from_slice(&iv), header, &mut plain, GenericArray::from_slice(tag))
            .expect("AES-128-GCM with the RFC 9001 client Initial key authenticates");

        assert_eq!(&plain[..2], &[0x06, 0x00], "CRYPTO frame at offset 0");
        let crypto_len = (u16::from_be_bytes([plain[2], plain[3]]) & 0x3fff) as usize;
        let hello = &plain[4..4 + crypto_len];
        assert!(plain[4 + crypto_len..].iter().all(|b| *b == 0), "zero padding");
        assert_eq!(hello[0], 0x01, "ClientHello");
        let body_len = u32::from_be_bytes([0, hello[1], hello[2], hello[3]]) as usize;
        assert_eq!(body_len + 4, hello.len());
        assert_eq!(&hello[4..6], &[0x03, 0x03]);
        assert_eq!(hello[38], 0, "empty session id");
        assert_eq!(&hello[39..43], &[0x00, 0x02, 0x13, 0x01], "TLS_AES_128_GCM_SHA256");
        assert!(find(hello, &[0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]).is_some(), "TLS 1.3");
        assert!(find(hello, &[0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, b'h', b'3']).is_some(), "ALPN h3");
        let ks = find(hello, &[0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]).expect("x25519 key share");
        assert!(hello[ks + 10..ks + 42].iter().any(|b| *b != 0));
        let sni = find(hello, b".invalid").expect("SNI");
        assert!(hello[sni - 12..sni].iter().all(|b| b.is_ascii_hexdigit()));
        let mut tp = vec![0x0f, 0x08];
        tp.extend_from_slice(&scid);
        assert!(find(hello, &tp).is_some(), "initial_source_connection_id = SCID");
        assert!(find(hello, &[0x03, 0x02, 0x44, 0xb0]).is_some(), "max_udp_payload_size 1200");
    }
}
