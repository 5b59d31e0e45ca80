//! A QUIC v1 Initial packet carrying a TLS 1.3 ClientHello, protected with the RFC 9001
//! initial keys (spec 02 §5.7). No connection state is kept: the packet only has to look
//! like, and decrypt as, the first datagram of a real QUIC handshake.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::Aes128Gcm;
use hkdf::Hkdf;
use sha2::Sha256;
use wfm_plugin_sdk::domain::awg::random::Rng;

/// Size of the whole datagram.
pub const PACKET_LEN: usize = 1200;
/// RFC 9001 §5.2 initial salt for QUIC v1.
pub const INITIAL_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f,
    0x0a,
];
const CID_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// first byte, version, DCID len + DCID, SCID len + SCID, token length, Length (2), PN (2).
const HEADER_LEN: usize = 1 + 4 + 1 + CID_LEN + 1 + CID_LEN + 1 + 2 + 2;

/// The client's Initial keys (RFC 9001 §5.2).
pub struct InitialKeys {
    /// AES-128-GCM key.
    pub key: [u8; 16],
    /// AEAD IV.
    pub iv: [u8; 12],
    /// Header protection key.
    pub hp: [u8; 16],
}

/// HKDF-Expand-Label of TLS 1.3 with an empty context.
fn expand_label(prk: &Hkdf<Sha256>, label: &str, out: &mut [u8]) -> Result<(), String> {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    prk.expand(&info, out).map_err(|e| format!("HKDF expand {label}: {e}"))
}

/// Derives the client Initial keys from the destination connection id.
pub fn client_initial_keys(dcid: &[u8]) -> Result<InitialKeys, String> {
    let (_, initial) = Hkdf::<Sha256>::extract(Some(&INITIAL_SALT), dcid);
    let mut client_secret = [0u8; 32];
    expand_label(&initial, "client in", &mut client_secret)?;
    let client = Hkdf::<Sha256>::from_prk(&client_secret).map_err(|e| format!("HKDF PRK: {e}"))?;
    let mut keys = InitialKeys { key: [0; 16], iv: [0; 12], hp: [0; 16] };
    expand_label(&client, "quic key", &mut keys.key)?;
    expand_label(&client, "quic iv", &mut keys.iv)?;
    expand_label(&client, "quic hp", &mut keys.hp)?;
    Ok(keys)
}

fn random_bytes<const N: usize>(rng: &mut dyn Rng) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

/// A 2-byte QUIC variable-length integer (values below 16384).
fn varint2(v: usize) -> [u8; 2] {
    (0x4000u16 | (v as u16 & 0x3fff)).to_be_bytes()
}

/// Appends `body` prefixed with its length as a big-endian u16.
fn with_len16(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn extension(out: &mut Vec<u8>, ext_type: u16, data: &[u8]) {
    out.extend_from_slice(&ext_type.to_be_bytes());
    with_len16(out, data);
}

/// The TLS 1.3 ClientHello handshake message (spec 02 §5.7, extensions in that order).
fn client_hello(rng: &mut dyn Rng, scid: &[u8; CID_LEN]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let host: String = (0..12).map(|_| HEX[rng.range(0, 15) as usize] as char).collect::<String>() + ".invalid";

    let mut ext = Vec::new();
    // server_name
    let mut sni = Vec::new();
    let mut entry = vec![0u8];
    with_len16(&mut entry, host.as_bytes());
    with_len16(&mut sni, &entry);
    extension(&mut ext, 0x0000, &sni);
    // supported_versions: TLS 1.3
    extension(&mut ext, 0x002b, &[0x02, 0x03, 0x04]);
    // supported_groups: x25519
    extension(&mut ext, 0x000a, &[0x00, 0x02, 0x00, 0x1d]);
    // signature_algorithms: rsa_pss_rsae_sha256, ed25519
    extension(&mut ext, 0x000d, &[0x00, 0x04, 0x08, 0x04, 0x08, 0x07]);
    // key_share: a fresh x25519 key
    let secret = x25519_dalek::StaticSecret::from(random_bytes::<32>(rng));
    let public = x25519_dalek::PublicKey::from(&secret);
    let mut share = vec![0x00, 0x1d];
    with_len16(&mut share, public.as_bytes());
    let mut shares = Vec::new();
    with_len16(&mut shares, &share);
    extension(&mut ext, 0x0033, &shares);
    // ALPN: h3
    let mut alpn = Vec::new();
    with_len16(&mut alpn, &[0x02, b'h', b'3']);
    extension(&mut ext, 0x0010, &alpn);
    // quic_transport_parameters: initial_source_connection_id, max_udp_payload_size = 1200
    let mut tp = vec![0x0f, CID_LEN as u8];
    tp.extend_from_slice(scid);
    tp.extend_from_slice(&[0x03, 0x02]);
    tp.extend_from_slice(&varint2(1200));
    extension(&mut ext, 0x0039, &tp);

    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&random_bytes::<32>(rng));
    body.push(0x00); // empty legacy session id
    body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    with_len16(&mut body, &ext);

    let mut msg = vec![0x01];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    msg
}

/// Builds one protected 1200-byte QUIC v1 Initial.
pub fn initial_packet(rng: &mut dyn Rng) -> Result<Vec<u8>, String> {
    let dcid = random_bytes::<CID_LEN>(rng);
    let scid = random_bytes::<CID_LEN>(rng);
    let hello = client_hello(rng, &scid);

    let plaintext_len = PACKET_LEN - HEADER_LEN - TAG_LEN;
    let mut payload = Vec::with_capacity(PACKET_LEN);
    payload.push(0x06); // CRYPTO frame
    payload.push(0x00); // offset 0
    payload.extend_from_slice(&varint2(hello.len()));
    payload.extend_from_slice(&hello);
    if payload.len() > plaintext_len {
        return Err("ClientHello does not fit into one Initial".to_string());
    }
    payload.resize(plaintext_len, 0x00); // PADDING frames

    let mut header = Vec::with_capacity(HEADER_LEN);
    header.push(0xc1); // long header, Initial, 2-byte packet number
    header.extend_from_slice(&1u32.to_be_bytes());
    header.push(CID_LEN as u8);
    header.extend_from_slice(&dcid);
    header.push(CID_LEN as u8);
    header.extend_from_slice(&scid);
    header.push(0x00); // token length
    header.extend_from_slice(&varint2(2 + plaintext_len + TAG_LEN));
    let pn_offset = header.len();
    header.extend_from_slice(&[0x00, 0x00]); // packet number 0

    let keys = client_initial_keys(&dcid)?;
    let cipher = Aes128Gcm::new(GenericArray::from_slice(&keys.key));
    // Packet number 0: the nonce is the IV itself.
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(&keys.iv), &header, &mut payload)
        .map_err(|e| format!("AES-GCM: {e}"))?;
    payload.extend_from_slice(&tag);

    // Header protection: the sample starts 4 bytes after the packet number's offset.
    let hp = Aes128::new(GenericArray::from_slice(&keys.hp));
    let mut mask = GenericArray::clone_from_slice(&payload[2..18]);
    hp.encrypt_block(&mut mask);
    header[0] ^= mask[0] & 0x0f;
    header[pn_offset] ^= mask[1];
    header[pn_offset + 1] ^= mask[2];

    let mut packet = header;
    packet.extend_from_slice(&payload);
    debug_assert_eq!(packet.len(), PACKET_LEN);
    Ok(packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wfm_plugin_sdk::domain::awg::random::SplitMix64;

    /// RFC 9001 Appendix A.1 test vector (DCID 8394c8f03e515708).
    #[test]
    fn initial_keys_match_rfc_9001_appendix_a() {
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let keys = client_initial_keys(&dcid).expect("keys");
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&keys.key), "1f369613dd76d5467730efcbe3b1a22d");
        assert_eq!(hex(&keys.iv), "fa044b2f42a3fd3b46fb255c");
        assert_eq!(hex(&keys.hp), "9f50449e04a0e810283a1e9933adedd2");
    }

    #[test]
    fn packet_has_the_fixed_layout() {
        let p = initial_packet(&mut SplitMix64(7)).expect("packet");
        assert_eq!(p.len(), PACKET_LEN);
        assert_eq!(p[0] & 0xf0, 0xc0);
        assert_eq!(&p[1..5], &[0, 0, 0, 1]);
        assert_eq!(p[5], 8);
        assert_eq!(p[14], 8);
        assert_eq!(p[23], 0);
        assert_eq!(u16::from_be_bytes([p[24], p[25]]) & 0x3fff, (PACKET_LEN - 26) as u16);
    }
}
