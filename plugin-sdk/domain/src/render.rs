//! Rendering a node's WireGuard / AmneziaWG file (spec 02 §8).
//!
//! The renderer is a pure function of already-resolved inputs: the host picks the active link
//! rows, resolves their Endpoints and collects the node's *managed* hook commands (lines other
//! features such as port forwarding contribute; see [`Hooks`]) before calling [`render`].
//! The output is byte-exact: the same inputs always give the same text, whose SHA-256 is the
//! node's desired hash.

use serde_json::{Map, Value};

use crate::awg::{
    AwgVersion, NodeParams, OPT_CONTENT_PADDING_ADDITION, OPT_DISABLE_COOKIES, OPT_HEADER_PROTECTION_KEY,
    OPT_ITIME, OPT_J1, OPT_J2, OPT_J3, OPT_KEEPALIVE_TIMEOUT, OPT_MAX_HANDSHAKE_ATTEMPTS, OPT_RANDOM_TRAILERS,
    OPT_REJECT_AFTER_TIME, OPT_REKEY_AFTER_TIME, OPT_REKEY_TIMEOUT, SharedParams,
};

/// The four hook lists, each in execution order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// `PreUp` commands.
    pub pre_up: Vec<String>,
    /// `PostUp` commands.
    pub post_up: Vec<String>,
    /// `PreDown` commands.
    pub pre_down: Vec<String>,
    /// `PostDown` commands.
    pub post_down: Vec<String>,
}

impl Hooks {
    /// No commands.
    pub fn is_empty(&self) -> bool {
        self.pre_up.is_empty() && self.post_up.is_empty() && self.pre_down.is_empty() && self.post_down.is_empty()
    }

    /// Appends `other`'s commands after this set's, key by key.
    pub fn extend(&mut self, other: Hooks) {
        self.pre_up.extend(other.pre_up);
        self.post_up.extend(other.post_up);
        self.pre_down.extend(other.pre_down);
        self.post_down.extend(other.post_down);
    }
}

/// The `[Interface]` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface<'a> {
    /// Base64 private key.
    pub private_key: &'a str,
    /// Stored virtual IP, if any.
    pub address: Option<&'a str>,
    /// Node port, else config default.
    pub listen_port: i64,
    /// Node DNS, else config DNS.
    pub dns: Option<&'a str>,
    /// Node MTU, else config MTU.
    pub mtu: Option<i64>,
}

/// One `[Peer]` section (an active link row with its Endpoint already resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer<'a> {
    /// Peer node name (comment line).
    pub name: &'a str,
    /// Peer public key.
    pub public_key: &'a str,
    /// Stored AllowedIPs text.
    pub allowed_ips: &'a str,
    /// Stored PSK, if any.
    pub preshared_key: Option<&'a str>,
    /// Resolved Endpoint, if any.
    pub endpoint: Option<String>,
    /// Stored keepalive.
    pub persistent_keepalive: Option<i64>,
}

/// AmneziaWG lines of `[Interface]`, already validated, as `(Key, value)` in output order.
/// Build it with [`AwgLines::from_params`]; nulls and empty values are already left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwgLines(pub Vec<(&'static str, String)>);

/// Text of a stored parameter: null/blank → none, booleans `on`/`off`, numbers as digits,
/// text trimmed.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(if *b { "on" } else { "off" }.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        // Arrays/objects are never valid parameter values; they are not emitted.
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn opt(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(text)
}

impl AwgLines {
    /// The AWG block of spec 02 §8 step 3 for `version` from the config's shared parameters
    /// and the node's parameters. Strategy keys and keys the version does not use (dormant
    /// options) never appear.
    pub fn from_params(version: AwgVersion, shared: &SharedParams, node: &NodeParams) -> AwgLines {
        let mut out: Vec<(&'static str, String)> = Vec::with_capacity(24);
        let mut push = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        let int = |v: Option<i64>| v.map(|n| n.to_string());
        let txt = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        push("Jc", int(node.awg_jc));
        push("Jmin", int(node.awg_jmin));
        push("Jmax", int(node.awg_jmax));
        push("S1", int(shared.awg_s1));
        push("S2", int(shared.awg_s2));
        if version != AwgVersion::V1_5 {
            push("S3", int(shared.awg_s3));
            push("S4", int(shared.awg_s4));
        }
        push("H1", txt(&shared.awg_h1));
        push("H2", txt(&shared.awg_h2));
        push("H3", txt(&shared.awg_h3));
        push("H4", txt(&shared.awg_h4));
        push("I1", txt(&node.awg_i1));
        push("I2", txt(&node.awg_i2));
        push("I3", txt(&node.awg_i3));
        push("I4", txt(&node.awg_i4));
        push("I5", txt(&node.awg_i5));
        let (c, n) = (&shared.awg_options, &node.awg_options);
        match version {
            AwgVersion::V3_1 => {
                push("HeaderProtectionKey", opt(c, OPT_HEADER_PROTECTION_KEY));
                let shared_rt = opt(c, OPT_RANDOM_TRAILERS);
                let shared_is_set = shared_rt.is_some();
                push("RandomTrailers", shared_rt);
                push("ContentPaddingAddition", opt(n, OPT_CONTENT_PADDING_ADDITION));
                push("RekeyAfterTime", opt(n, OPT_REKEY_AFTER_TIME));
                push("RekeyTimeout", opt(n, OPT_REKEY_TIMEOUT));
                push("RejectAfterTime", opt(n, OPT_REJECT_AFTER_TIME));
                push("KeepaliveTimeout", opt(n, OPT_KEEPALIVE_TIMEOUT));
                push("MaxHandshakeAttempts", opt(n, OPT_MAX_HANDSHAKE_ATTEMPTS));
                push("DisableCookies", opt(n, OPT_DISABLE_COOKIES));
                if !shared_is_set {
                    push("RandomTrailers", opt(n, OPT_RANDOM_TRAILERS));
                }
            }
            AwgVersion::V1_5 => {
                push("J1", opt(n, OPT_J1));
                push("J2", opt(n, OPT_J2));
                push("J3", opt(n, OPT_J3));
                push("Itime", opt(n, OPT_ITIME));
            }
            AwgVersion::V2_0 => {}
        }
        AwgLines(out)
    }
}

/// Everything one file is made of.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    /// `[Interface]` values.
    pub interface: Interface<'a>,
    /// The node's own hook commands.
    pub node_hooks: &'a Hooks,
    /// Commands contributed by other features (port forwarding…), after the node's own.
    pub managed_hooks: &'a Hooks,
    /// AWG block (`None` for plain WireGuard).
    pub awg: Option<&'a AwgLines>,
    /// Active peers in link order.
    pub peers: &'a [Peer<'a>],
}

fn line(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str(" = ");
    out.push_str(value);
    out.push('\n');
}

/// Renders the file: lines joined with `\n`, final `\n` (spec 02 §8).
pub fn render(input: &RenderInput<'_>) -> String {
    let mut out = String::with_capacity(256 + input.peers.len() * 200);
    let i = &input.interface;
    out.push_str("[Interface]\n");
    line(&mut out, "PrivateKey", i.private_key);
    if let Some(a) = i.address.map(str::trim).filter(|s| !s.is_empty()) {
        line(&mut out, "Address", a);
    }
    line(&mut out, "ListenPort", &i.listen_port.to_string());
    if let Some(d) = i.dns.map(str::trim).filter(|s| !s.is_empty()) {
        line(&mut out, "DNS", d);
    }
    if let Some(m) = i.mtu {
        line(&mut out, "MTU", &m.to_string());
    }
    let (own, managed) = (input.node_hooks, input.managed_hooks);
    for (key, a, b) in [
        ("PreUp", &own.pre_up, &managed.pre_up),
        ("PostUp", &own.post_up, &managed.post_up),
        ("PreDown", &own.pre_down, &managed.pre_down),
        ("PostDown", &own.post_down, &managed.post_down),
    ] {
        for cmd in a.iter().chain(b.iter()) {
            line(&mut out, key, cmd);
        }
    }
    if let Some(awg) = input.awg {
        for (k, v) in &awg.0 {
            line(&mut out, k, v);
        }
    }
    for p in input.peers {
        out.push('\n');
        out.push_str("# Peer: ");
        out.push_str(p.name);
        out.push('\n');
        out.push_str("[Peer]\n");
        line(&mut out, "PublicKey", p.public_key);
        line(&mut out, "AllowedIPs", p.allowed_ips);
        if let Some(psk) = p.preshared_key.filter(|s| !s.is_empty()) {
            line(&mut out, "PresharedKey", psk);
        }
        if let Some(ep) = &p.endpoint {
            line(&mut out, "Endpoint", ep);
            if let Some(k) = p.persistent_keepalive.filter(|k| *k != 0) {
                line(&mut out, "PersistentKeepalive", &k.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "aGVsbG9oZWxsb2hlbGxvaGVsbG9oZWxsb2hlbGxvaGU=";

    fn iface() -> Interface<'static> {
        Interface { private_key: KEY, address: Some("10.66.0.2/32"), listen_port: 51820, dns: None, mtu: None }
    }

    fn keys(text: &str) -> Vec<String> {
        text.lines().map(|l| l.split(" = ").next().unwrap_or("").to_string()).collect()
    }

    #[test]
    fn plain_wireguard_line_order() {
        let hooks = Hooks { pre_up: vec!["pu1".into()], post_up: vec!["po1".into(), "po2".into()], pre_down: vec![], post_down: vec!["pd".into()] };
        let managed = Hooks { post_up: vec!["iptables -t nat -A X".into()], pre_up: vec!["m-pre".into()], ..Hooks::default() };
        let peers = [
            Peer { name: "edge-b", public_key: "PB", allowed_ips: "10.66.0.3/32", preshared_key: Some("PSK"), endpoint: Some("203.0.113.7:51821".into()), persistent_keepalive: Some(25) },
            Peer { name: "edge-c", public_key: "PC", allowed_ips: "10.66.0.4/32,10.1.0.0/16", preshared_key: None, endpoint: None, persistent_keepalive: Some(25) },
            Peer { name: "edge-d", public_key: "PD", allowed_ips: "10.66.0.5/32", preshared_key: Some(""), endpoint: Some("[fd00::5]:1".into()), persistent_keepalive: Some(0) },
        ];
        let text = render(&RenderInput {
            interface: Interface { dns: Some("1.1.1.1"), mtu: Some(1380), ..iface() },
            node_hooks: &hooks,
            managed_hooks: &managed,
            awg: None,
            peers: &peers,
        });
        let expected = format!(
            "[Interface]\nPrivateKey = {KEY}\nAddress = 10.66.0.2/32\nListenPort = 51820\nDNS = 1.1.1.1\nMTU = 1380\n\
PreUp = pu1\nPreUp = m-pre\nPostUp = po1\nPostUp = po2\nPostUp = iptables -t nat -A X\nPostDown = pd\n\
\n# Peer: edge-b\n[Peer]\nPublicKey = PB\nAllowedIPs = 10.66.0.3/32\nPresharedKey = PSK\nEndpoint = 203.0.113.7:51821\nPersistentKeepalive = 25\n\
\n# Peer: edge-c\n[Peer]\nPublicKey = PC\nAllowedIPs = 10.66.0.4/32,10.1.0.0/16\n\
\n# Peer: edge-d\n[Peer]\nPublicKey = PD\nAllowedIPs = 10.66.0.5/32\nEndpoint = [fd00::5]:1\n"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn minimal_interface() {
        let text = render(&RenderInput {
            interface: Interface { address: None, ..iface() },
            node_hooks: &Hooks::default(),
            managed_hooks: &Hooks::default(),
            awg: None,
            peers: &[],
        });
        assert_eq!(text, format!("[Interface]\nPrivateKey = {KEY}\nListenPort = 51820\n"));
    }

    fn shared(opts: Value) -> SharedParams {
        SharedParams {
            awg_s1: Some(20),
            awg_s2: Some(21),
            awg_s3: Some(22),
            awg_s4: Some(23),
            awg_h1: Some("1000".into()),
            awg_h2: Some("2000-2100".into()),
            awg_h3: Some(" ".into()),
            awg_h4: Some("4000".into()),
            awg_options: opts.as_object().cloned().unwrap_or_default(),
        }
    }

    fn node(opts: Value) -> NodeParams {
        NodeParams {
            awg_jc: Some(2),
            awg_jmin: Some(90),
            awg_jmax: Some(200),
            awg_i1: Some("<r 32>".into()),
            awg_i2: None,
            awg_i3: Some("<b 0x01>".into()),
            awg_i4: None,
            awg_i5: None,
            awg_options: opts.as_object().cloned().unwrap_or_default(),
        }
    }

    fn all_node_opts() -> Value {
        json!({
            "content_padding_addition": "4-40", "rekey_after_time": "110-125", "rekey_timeout": "5",
            "reject_after_time": "175-190", "keepalive_timeout": "10", "max_handshake_attempts": "18",
            "disable_cookies": false, "random_trailers": true, "j1": "<r 40>", "j2": "<r 41>", "j3": "<r 42>", "itime": 30
        })
    }

    #[test]
    fn awg_31_with_shared_random_trailers() {
        let s = shared(json!({"header_protection_key": "HPK=", "random_trailers": true, "_random_direction": "dns", "_random_intensity": "high"}));
        let lines = AwgLines::from_params(AwgVersion::V3_1, &s, &node(all_node_opts()));
        let k: Vec<&str> = lines.0.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            k,
            vec![
                "Jc", "Jmin", "Jmax", "S1", "S2", "S3", "S4", "H1", "H2", "H4", "I1", "I3", "HeaderProtectionKey", "RandomTrailers",
                "ContentPaddingAddition", "RekeyAfterTime", "RekeyTimeout", "RejectAfterTime", "KeepaliveTimeout",
                "MaxHandshakeAttempts", "DisableCookies"
            ]
        );
        assert_eq!(lines.0[13], ("RandomTrailers", "on".to_string()));
        assert_eq!(lines.0[20], ("DisableCookies", "off".to_string()));
        assert_eq!(lines.0[8], ("H2", "2000-2100".to_string()));

        // Rendered: the AWG block sits right after the hooks, before the peers.
        let hooks = Hooks { post_up: vec!["iptables …".into()], ..Hooks::default() };
        let peers = [Peer { name: "edge-b", public_key: "PB", allowed_ips: "10.66.0.3/32", preshared_key: None, endpoint: None, persistent_keepalive: None }];
        let text = render(&RenderInput { interface: iface(), node_hooks: &hooks, managed_hooks: &Hooks::default(), awg: Some(&lines), peers: &peers });
        let ks = keys(&text);
        assert_eq!(&ks[..5], &["[Interface]", "PrivateKey", "Address", "ListenPort", "PostUp"]);
        assert_eq!(ks[5], "Jc");
        assert_eq!(ks[25], "DisableCookies");
        assert_eq!(&ks[26..], &["", "# Peer: edge-b", "[Peer]", "PublicKey", "AllowedIPs"]);
    }

    #[test]
    fn awg_31_node_random_trailers_only_without_shared() {
        let s = shared(json!({"random_trailers": null}));
        let lines = AwgLines::from_params(AwgVersion::V3_1, &s, &node(all_node_opts()));
        let last = lines.0.last().cloned();
        assert_eq!(last, Some(("RandomTrailers", "on".to_string())));
        assert_eq!(lines.0.iter().filter(|(k, _)| *k == "RandomTrailers").count(), 1);
        assert!(!lines.0.iter().any(|(k, _)| *k == "HeaderProtectionKey"));
    }

    #[test]
    fn awg_15_and_20() {
        let s = shared(json!({"header_protection_key": "HPK=", "random_trailers": true}));
        let l15 = AwgLines::from_params(AwgVersion::V1_5, &s, &node(all_node_opts()));
        let k: Vec<&str> = l15.0.iter().map(|(k, _)| *k).collect();
        assert_eq!(k, vec!["Jc", "Jmin", "Jmax", "S1", "S2", "H1", "H2", "H4", "I1", "I3", "J1", "J2", "J3", "Itime"]);
        assert_eq!(l15.0.last().cloned(), Some(("Itime", "30".to_string())));
        let l20 = AwgLines::from_params(AwgVersion::V2_0, &s, &node(all_node_opts()));
        let k: Vec<&str> = l20.0.iter().map(|(k, _)| *k).collect();
        assert_eq!(k, vec!["Jc", "Jmin", "Jmax", "S1", "S2", "S3", "S4", "H1", "H2", "H4", "I1", "I3"]);
    }

    #[test]
    fn many_peers_render_fast_enough() {
        let names: Vec<String> = (0..999).map(|i| format!("node-{i}")).collect();
        let ips: Vec<String> = (0..999).map(|i| format!("10.0.{}.{}/32", i / 256, i % 256)).collect();
        let peers: Vec<Peer<'_>> = (0..999)
            .map(|i| Peer { name: &names[i], public_key: KEY, allowed_ips: &ips[i], preshared_key: Some(KEY), endpoint: Some(format!("198.51.100.1:{}", 1000 + i)), persistent_keepalive: Some(25) })
            .collect();
        let text = render(&RenderInput { interface: iface(), node_hooks: &Hooks::default(), managed_hooks: &Hooks::default(), awg: None, peers: &peers });
        assert_eq!(text.matches("[Peer]").count(), 999);
        assert!(text.ends_with("PersistentKeepalive = 25\n"));
    }
}
