//! I packet chains per direction (spec 02 §5.7), as CPS strings.

use crate::quic;
use wfm_plugin_sdk::domain::awg::Direction;
use wfm_plugin_sdk::domain::awg::random::{IPacketSource, Rng, generic_packet};
use wfm_plugin_sdk::domain::error::codes;
use wfm_plugin_sdk::domain::{DomainError, DomainResult};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A DNS query for `<L random chars>.invalid`, type A or AAAA, class IN, recursion desired.
pub fn dns_packet(rng: &mut dyn Rng) -> String {
    let len = rng.range(6, 15);
    let qtype = if rng.range(0, 1) == 0 { "0001" } else { "001c" };
    format!("<r 2><b 0x01000001000000000000{len:02x}><rc {len}><b 0x07696e76616c696400{qtype}0001>")
}

/// A STUN Binding request with a SOFTWARE attribute of L random characters.
pub fn stun_packet(rng: &mut dyn Rng) -> String {
    let len = [4u64, 8, 12, 16][rng.range(0, 3) as usize];
    format!("<b 0x0001{:04x}2112a442><r 12><b 0x8022{len:04x}><rc {len}>", len + 4)
}

/// A chain of RTP audio packets (PCMU, 160 samples each) of one stream.
pub fn rtp_chain(rng: &mut dyn Rng, count: usize) -> Vec<String> {
    let seq = rng.range(0, 0xffff) as u16;
    let ts = rng.range(0, 0xffff_ffff) as u32;
    let ssrc = rng.range(0, 0xffff_ffff) as u32;
    (0..count)
        .map(|i| {
            let mut header = [0u8; 12];
            header[0] = 0x80;
            header[1] = 0x00;
            header[2..4].copy_from_slice(&seq.wrapping_add(i as u16).to_be_bytes());
            header[4..8].copy_from_slice(&ts.wrapping_add(160u32.wrapping_mul(i as u32)).to_be_bytes());
            header[8..12].copy_from_slice(&ssrc.to_be_bytes());
            format!("<b 0x{}><r 160>", hex(&header))
        })
        .collect()
}

/// One QUIC v1 Initial (every intensity gets exactly one).
pub fn quic_packet(rng: &mut dyn Rng) -> DomainResult<String> {
    let packet = quic::initial_packet(rng).map_err(|e| DomainError::new(codes::INTERNAL_ERROR, e))?;
    Ok(format!("<b 0x{}>", hex(&packet)))
}

/// Every direction of §5.7.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllDirections;

impl IPacketSource for AllDirections {
    fn i_packets(&mut self, direction: Direction, count: usize, rng: &mut dyn Rng) -> DomainResult<Vec<String>> {
        Ok(match direction {
            Direction::Generic => (0..count).map(|_| generic_packet(rng)).collect(),
            Direction::Dns => (0..count).map(|_| dns_packet(rng)).collect(),
            Direction::Stun => (0..count).map(|_| stun_packet(rng)).collect(),
            Direction::Rtp => rtp_chain(rng, count),
            Direction::Quic => vec![quic_packet(rng)?],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wfm_plugin_sdk::domain::awg::cps;
    use wfm_plugin_sdk::domain::awg::random::SplitMix64;

    #[test]
    fn every_direction_yields_valid_cps() {
        for seed in 0..200 {
            let mut rng = SplitMix64(seed);
            for d in Direction::ALL {
                let chain = AllDirections.i_packets(d, 5, &mut rng).expect("chain");
                assert_eq!(chain.len(), if d == Direction::Quic { 1 } else { 5 });
                for p in chain {
                    assert!(cps::is_valid(&p), "{d:?}: {p}");
                }
            }
        }
    }

    #[test]
    fn dns_length_byte_matches_the_label() {
        for seed in 0..50 {
            let p = dns_packet(&mut SplitMix64(seed));
            let ll = u64::from_str_radix(&p[30..32], 16).expect("hex");
            assert!(p.contains(&format!("<rc {ll}>")), "{p}");
            assert!((6..=15).contains(&ll));
        }
    }

    #[test]
    fn rtp_sequence_and_timestamp_advance() {
        let chain = rtp_chain(&mut SplitMix64(3), 3);
        let header = |p: &str| -> Vec<u8> {
            (0..12).map(|i| u8::from_str_radix(&p[5 + 2 * i..7 + 2 * i], 16).expect("hex")).collect()
        };
        let (a, b) = (header(&chain[0]), header(&chain[1]));
        assert_eq!(a[0], 0x80);
        assert_eq!(u16::from_be_bytes([b[2], b[3]]), u16::from_be_bytes([a[2], a[3]]).wrapping_add(1));
        let ta = u32::from_be_bytes([a[4], a[5], a[6], a[7]]);
        let tb = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        assert_eq!(tb, ta.wrapping_add(160));
        assert_eq!(a[8..12], b[8..12]);
    }
}
