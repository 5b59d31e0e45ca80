use super::*;
use crate::awg::{validate_config_params, validate_node_params};
use serde_json::json;

fn rng(seed: u64) -> SplitMix64 {
    SplitMix64(seed)
}

#[test]
fn range_is_inclusive_and_covers_both_ends() {
    let mut r = rng(1);
    let mut seen = [false; 4];
    for _ in 0..400 {
        let v = r.range(10, 13);
        assert!((10..=13).contains(&v));
        seen[(v - 10) as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
    assert_eq!(r.range(5, 5), 5);
    assert_eq!(r.range(9, 3), 9);
    let _ = r.range(0, u64::MAX);
}

#[test]
fn fill_bytes_handles_partial_words() {
    let mut r = rng(2);
    let mut buf = [0u8; 13];
    r.fill_bytes(&mut buf);
    assert!(buf.iter().any(|b| *b != 0));
}

#[test]
fn os_rng_produces_distinct_words() {
    let mut r = OsRng;
    let a = r.next_u64();
    let b = r.next_u64();
    assert_ne!(a, b);
    let mut key = [0u8; 32];
    r.fill_bytes(&mut key);
    assert!(key.iter().any(|b| *b != 0));
}

#[test]
fn h_pool_is_disjoint_and_in_bounds() {
    for seed in 0..200 {
        let pool = h_pool(&mut rng(seed));
        for (i, a) in pool.iter().enumerate() {
            assert!(a.0 >= H_START_MIN && a.0 <= H_START_MAX);
            let w = a.1 - a.0;
            assert!((64..=575).contains(&w), "{a:?}");
            for b in &pool[i + 1..] {
                assert!(!overlaps(*a, *b), "{a:?} {b:?}");
            }
        }
    }
}

/// A generator whose H draws collide, to exercise the redraw.
struct Scripted(Vec<u64>, usize);
impl Rng for Scripted {
    fn next_u64(&mut self) -> u64 {
        let v = self.0[self.1 % self.0.len()];
        self.1 += 1;
        v
    }
}

#[test]
fn overlapping_h_draws_are_redrawn() {
    // range() reduces modulo the span; these words give the same start twice, then others.
    let mut r = Scripted(vec![0, 0, 0, 0, 1_000_000, 0, 2_000_000, 0, 3_000_000, 0], 0);
    let pool = h_pool(&mut r);
    let starts: Vec<u64> = pool.iter().map(|p| p.0).collect();
    assert_eq!(starts, vec![1024, 1024 + 1_000_000, 1024 + 2_000_000, 1024 + 3_000_000]);
}

#[test]
fn fresh_shared_sets_match_5_6_and_validate() {
    for seed in 0..100 {
        let mut r = rng(seed);
        let s20 = fresh_shared(AwgVersion::V2_0, &mut r);
        let s = s20.s().map(|v| v.unwrap());
        assert!(s[..3].iter().all(|v| (15..=64).contains(v)) && (0..=32).contains(&s[3]));
        assert!(s20.h().iter().all(|h| h.unwrap().contains('-')));
        validate_config_params(AwgVersion::V2_0, &s20).unwrap();

        let s15 = fresh_shared(AwgVersion::V1_5, &mut r);
        let s = s15.s().map(|v| v.unwrap());
        assert!(s[..2].iter().all(|v| (15..=64).contains(v)) && s[2] == 0 && s[3] == 0);
        assert!(s15.h().iter().all(|h| !h.unwrap().contains('-')));
        validate_config_params(AwgVersion::V1_5, &s15).unwrap();

        let mut s31 = fresh_shared(AwgVersion::V3_1, &mut r);
        let s = s31.s().map(|v| v.unwrap());
        assert!(s.iter().all(|v| *v == s[0] && (16..=32).contains(v)));
        let hs: Vec<u64> = s31.h().iter().map(|h| h.unwrap().parse().unwrap()).collect();
        assert!(hs.iter().all(|h| *h >= 1024));
        ensure_header_protection_key(&mut s31.awg_options, &mut r);
        validate_config_params(AwgVersion::V3_1, &s31).unwrap();
    }
}

#[test]
fn header_key_is_created_only_when_absent() {
    let mut r = rng(3);
    let mut o = Map::new();
    ensure_header_protection_key(&mut o, &mut r);
    let k = o["header_protection_key"].as_str().unwrap().to_string();
    assert_eq!(k.len(), 44);
    ensure_header_protection_key(&mut o, &mut r);
    assert_eq!(o["header_protection_key"], k.as_str(), "existing key kept");
    let mut explicit_null = json!({"header_protection_key": null}).as_object().unwrap().clone();
    ensure_header_protection_key(&mut explicit_null, &mut r);
    assert_eq!(explicit_null["header_protection_key"], Value::Null, "explicit null = no key");
}

#[test]
fn backfill_shared_fills_only_nulls_and_avoids_given_h() {
    for seed in 0..50 {
        let mut s = SharedParams { awg_s2: Some(40), awg_h1: Some("1024-2147483647".into()), ..Default::default() };
        backfill_shared(AwgVersion::V2_0, &mut s, &mut rng(seed));
        assert_eq!(s.awg_s2, Some(40));
        assert_eq!(s.awg_h1.as_deref(), Some("1024-2147483647"));
        assert!(s.s().iter().all(Option::is_some));
        validate_config_params(AwgVersion::V2_0, &s).unwrap();
    }
}

#[test]
fn backfill_shared_terminates_when_given_h_leave_no_room() {
    let mut s = SharedParams { awg_h3: Some("0-4294967295".into()), ..Default::default() };
    backfill_shared(AwgVersion::V2_0, &mut s, &mut rng(1));
    assert!(s.h().iter().all(Option::is_some));
    assert_eq!(validate_config_params(AwgVersion::V2_0, &s).unwrap_err().code, "INVALID_AWG_H_RANGE");
}

#[test]
fn convert_to_1_5() {
    let stored = SharedParams {
        awg_s1: Some(20),
        awg_s2: Some(76),
        awg_s3: Some(30),
        awg_s4: Some(10),
        awg_h1: Some("5000-5100".into()),
        awg_h2: Some("6000".into()),
        awg_h3: Some("7000-7001".into()),
        awg_h4: None,
        awg_options: json!({"_random_direction": "dns", "header_protection_key": null}).as_object().unwrap().clone(),
    };
    let out = convert_shared(Some(AwgVersion::V2_0), AwgVersion::V1_5, &stored, &mut rng(1));
    assert_eq!((out.awg_s1, out.awg_s2, out.awg_s3, out.awg_s4), (Some(20), Some(15), Some(0), Some(0)));
    assert_eq!(out.awg_h1.as_deref(), Some("5000"));
    assert_eq!(out.awg_h2.as_deref(), Some("6000"));
    assert_eq!(out.awg_h3.as_deref(), Some("7000"));
    assert!(out.awg_h4.is_some(), "null H backfilled");
    assert_eq!(Value::Object(out.awg_options.clone()), json!({"_random_direction": "dns"}));
    validate_config_params(AwgVersion::V1_5, &out).unwrap();
}

#[test]
fn convert_to_3_1_is_fresh_and_keyed() {
    let stored = SharedParams { awg_s1: Some(60), awg_s2: Some(15), awg_h1: Some("5000-5100".into()), ..Default::default() };
    let out = convert_shared(Some(AwgVersion::V2_0), AwgVersion::V3_1, &stored, &mut rng(9));
    let s = out.s().map(|v| v.unwrap());
    assert!(s.iter().all(|v| *v == s[0] && (16..=32).contains(v)));
    assert!(!out.awg_h1.as_deref().unwrap().contains('-'));
    assert!(out.header_protection_key().is_some());
    validate_config_params(AwgVersion::V3_1, &out).unwrap();
    // An existing key is kept.
    let keyed = SharedParams { awg_options: json!({"header_protection_key": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="}).as_object().unwrap().clone(), ..Default::default() };
    let out = convert_shared(Some(AwgVersion::V2_0), AwgVersion::V3_1, &keyed, &mut rng(9));
    assert_eq!(out.header_protection_key(), Some("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="));
}

#[test]
fn convert_to_2_0() {
    let from15 = SharedParams { awg_s1: Some(20), awg_s2: Some(30), awg_s3: Some(0), awg_s4: Some(0), awg_h1: Some("5000".into()), ..Default::default() };
    let out = convert_shared(Some(AwgVersion::V1_5), AwgVersion::V2_0, &from15, &mut rng(4));
    assert_eq!((out.awg_s1, out.awg_s2), (Some(20), Some(30)));
    assert!((15..=64).contains(&out.awg_s3.unwrap()) && (0..=32).contains(&out.awg_s4.unwrap()));
    assert_eq!(out.awg_h1.as_deref(), Some("5000"), "single H stays valid as a range");
    validate_config_params(AwgVersion::V2_0, &out).unwrap();

    let from31 = SharedParams {
        awg_s1: Some(20), awg_s2: Some(20), awg_s3: Some(20), awg_s4: Some(20),
        awg_h1: Some("5000".into()), awg_h2: Some("6000".into()), awg_h3: Some("7000".into()), awg_h4: Some("8000".into()),
        awg_options: json!({"header_protection_key": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", "random_trailers": true}).as_object().unwrap().clone(),
    };
    let out = convert_shared(Some(AwgVersion::V3_1), AwgVersion::V2_0, &from31, &mut rng(4));
    assert_eq!(out.s(), from31.s(), "as is");
    assert_eq!(out.h(), from31.h());
    assert!(out.awg_options.is_empty(), "3.1 keys are not valid for 2.0");

    let from_wg = convert_shared(None, AwgVersion::V2_0, &SharedParams::default(), &mut rng(5));
    assert!(from_wg.s().iter().all(Option::is_some) && from_wg.h().iter().all(Option::is_some));
    validate_config_params(AwgVersion::V2_0, &from_wg).unwrap();
}

#[test]
fn same_version_convert_only_backfills() {
    let stored = SharedParams { awg_s1: Some(1), awg_h1: Some("5000-5001".into()), ..Default::default() };
    let out = convert_shared(Some(AwgVersion::V2_0), AwgVersion::V2_0, &stored, &mut rng(6));
    assert_eq!(out.awg_s1, Some(1));
    assert_eq!(out.awg_h1.as_deref(), Some("5000-5001"));
    assert!(out.awg_s4.is_some());
}

#[test]
fn fresh_j_per_intensity() {
    for intensity in Intensity::ALL {
        let p = intensity.profile();
        for seed in 0..200 {
            let (jc, jmin, jmax) = fresh_j(intensity, &mut rng(seed));
            assert!((p.jc.0 as i64..=p.jc.1 as i64).contains(&jc));
            assert!((p.jmin.0 as i64..=p.jmin.1 as i64).contains(&jmin));
            assert!(jmax > jmin && jmax <= p.jmax_hi as i64, "{intensity:?} {jmin} {jmax}");
        }
    }
}

#[test]
fn backfill_j_partial_rules() {
    for seed in 0..200 {
        let mut n = NodeParams { awg_jmin: Some(1000), ..Default::default() };
        backfill_j(&mut n, Intensity::Balanced, &mut rng(seed)).unwrap();
        let jmax = n.awg_jmax.unwrap();
        // Drawn Jmax ≤ 768 < Jmin+128, so the ceiling is Jmin+128.
        assert!(jmax > 1000 && jmax <= 1128, "{jmax}");
        assert!(n.awg_jc.is_some());

        let mut n = NodeParams { awg_jmin: Some(65500), ..Default::default() };
        backfill_j(&mut n, Intensity::High, &mut rng(seed)).unwrap();
        assert!(n.awg_jmax.unwrap() > 65500 && n.awg_jmax.unwrap() <= 65535);

        let mut n = NodeParams { awg_jmax: Some(10), awg_jc: Some(2), ..Default::default() };
        backfill_j(&mut n, Intensity::Low, &mut rng(seed)).unwrap();
        assert!(n.awg_jmin.unwrap() <= 9);
        assert_eq!(n.awg_jc, Some(2));

        let mut n = NodeParams { awg_jmax: Some(1000), ..Default::default() };
        backfill_j(&mut n, Intensity::Low, &mut rng(seed)).unwrap();
        assert!(n.awg_jmin.unwrap() <= 255, "min(Jmax-1, drawn Jmin)");
    }
    let e = backfill_j(&mut NodeParams { awg_jmin: Some(65535), ..Default::default() }, Intensity::Low, &mut rng(1)).unwrap_err();
    assert_eq!(e.code, "INVALID_AWG_J_RANGE");
    let e = backfill_j(&mut NodeParams { awg_jmax: Some(0), ..Default::default() }, Intensity::Low, &mut rng(1)).unwrap_err();
    assert_eq!(e.code, "INVALID_AWG_J_RANGE");
    let e = backfill_j(&mut NodeParams { awg_jmin: Some(-3), ..Default::default() }, Intensity::Low, &mut rng(1)).unwrap_err();
    assert_eq!(e.code, "INVALID_AWG_PARAMETER");
    let mut both = NodeParams { awg_jmin: Some(10), awg_jmax: Some(20), ..Default::default() };
    backfill_j(&mut both, Intensity::Low, &mut rng(1)).unwrap();
    assert_eq!((both.awg_jmin, both.awg_jmax), (Some(10), Some(20)));
}

#[test]
fn backfill_node_per_version_and_intensity() {
    let shared31 = {
        let mut s = fresh_shared(AwgVersion::V3_1, &mut rng(1));
        ensure_header_protection_key(&mut s.awg_options, &mut rng(2));
        s
    };
    for (intensity, count) in [(Intensity::Low, 1), (Intensity::Balanced, 3), (Intensity::High, 5)] {
        let mut n = NodeParams::default();
        let strategy = Strategy { direction: Direction::Generic, intensity };
        backfill_node(AwgVersion::V3_1, &shared31.awg_options, &mut n, strategy, &mut GenericPackets, &mut rng(7)).unwrap();
        let filled = n.i().iter().filter(|i| i.is_some()).count();
        assert_eq!(filled, count);
        for i in n.i().iter().flatten() {
            let len: u64 = i.trim_start_matches("<r ").trim_end_matches('>').parse().unwrap();
            assert!((32..=256).contains(&len));
        }
        let o = &n.awg_options;
        assert_eq!(o["random_trailers"], true);
        assert_eq!(o["disable_cookies"], false);
        let p = intensity.profile().padding_max;
        let (a, b) = parse_range(o["content_padding_addition"].as_str().unwrap(), 65535).unwrap();
        assert!(a <= p / 2 && b > p / 2 && b <= p);
        let (a, b) = parse_range(o["rekey_after_time"].as_str().unwrap(), 65535).unwrap();
        assert!((100..=115).contains(&a) && (120..=135).contains(&b));
        let (a, b) = parse_range(o["reject_after_time"].as_str().unwrap(), 65535).unwrap();
        assert!((170..=180).contains(&a) && (181..=195).contains(&b));
        let n_of = |k: &str| o[k].as_str().unwrap().parse::<u64>().unwrap();
        assert!((4..=6).contains(&n_of("rekey_timeout")));
        assert!((8..=12).contains(&n_of("keepalive_timeout")));
        assert!((16..=20).contains(&n_of("max_handshake_attempts")));
        validate_node_params(AwgVersion::V3_1, &shared31, &n).unwrap();
    }

    let mut n15 = NodeParams::default();
    backfill_node(AwgVersion::V1_5, &Map::new(), &mut n15, Strategy::default(), &mut GenericPackets, &mut rng(8)).unwrap();
    for k in ["j1", "j2", "j3"] {
        let len: u64 = n15.awg_options[k].as_str().unwrap().trim_start_matches("<r ").trim_end_matches('>').parse().unwrap();
        assert!((32..=128).contains(&len));
    }
    assert!((10..=50).contains(&n15.awg_options["itime"].as_u64().unwrap()));
    assert!(!n15.awg_options.contains_key("disable_cookies"));

    let mut n20 = NodeParams::default();
    backfill_node(AwgVersion::V2_0, &Map::new(), &mut n20, Strategy::default(), &mut GenericPackets, &mut rng(8)).unwrap();
    assert!(n20.awg_options.is_empty());
}

#[test]
fn backfill_node_keeps_given_values() {
    let config_options = json!({"random_trailers": false}).as_object().unwrap().clone();
    let mut n = NodeParams {
        awg_jc: Some(9),
        awg_i2: Some("<t>".into()),
        awg_options: json!({"rekey_timeout": "60", "disable_cookies": null}).as_object().unwrap().clone(),
        ..Default::default()
    };
    backfill_node(AwgVersion::V3_1, &config_options, &mut n, Strategy::default(), &mut GenericPackets, &mut rng(3)).unwrap();
    assert_eq!(n.awg_jc, Some(9));
    assert_eq!(n.awg_i2.as_deref(), Some("<t>"));
    assert!(n.awg_i1.is_some() && n.awg_i3.is_some() && n.awg_i4.is_none());
    assert_eq!(n.awg_options["rekey_timeout"], "60");
    assert_eq!(n.awg_options["disable_cookies"], false, "null counts as unset");
    assert_eq!(n.awg_options["random_trailers"], false, "config value when the key exists");
    let null_rt = json!({"random_trailers": null}).as_object().unwrap().clone();
    let mut n = NodeParams::default();
    backfill_node(AwgVersion::V3_1, &null_rt, &mut n, Strategy::default(), &mut GenericPackets, &mut rng(3)).unwrap();
    assert_eq!(n.awg_options["random_trailers"], Value::Null);
}

#[test]
fn non_generic_directions_need_a_packet_source() {
    let strategy = Strategy { direction: Direction::Dns, intensity: Intensity::Low };
    let e = backfill_node(AwgVersion::V2_0, &Map::new(), &mut NodeParams::default(), strategy, &mut GenericPackets, &mut rng(1)).unwrap_err();
    assert_eq!(e.code, "INVALID_AWG_PARAMETER");

    struct Fixed;
    impl IPacketSource for Fixed {
        fn i_packets(&mut self, direction: Direction, count: usize, _rng: &mut dyn Rng) -> DomainResult<Vec<String>> {
            assert_eq!(direction, Direction::Dns);
            Ok((0..count).map(|i| format!("<b 0x0{i}>")).collect())
        }
    }
    let mut n = NodeParams::default();
    backfill_node(AwgVersion::V2_0, &Map::new(), &mut n, strategy, &mut Fixed, &mut rng(1)).unwrap();
    assert_eq!(n.awg_i1.as_deref(), Some("<b 0x00>"));
    assert_eq!(n.awg_i2, None);
    // Nothing missing → the source is not consulted at all.
    let mut full = NodeParams { awg_i1: Some("<t>".into()), ..Default::default() };
    backfill_node(AwgVersion::V2_0, &Map::new(), &mut full, strategy, &mut GenericPackets, &mut rng(1)).unwrap();
    assert_eq!(full.awg_i1.as_deref(), Some("<t>"));
}
