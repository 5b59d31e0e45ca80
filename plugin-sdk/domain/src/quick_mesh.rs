//! Quick Mesh planning (spec 02 §7): which pairs replace all links of a config.
//!
//! [`plan`] checks the request against the config's nodes and returns the pairs in insertion
//! order; the host deletes the old rows and inserts these in one transaction. Strings shared by
//! many rows (a node's virtual IP, a gateway's scope, the subnet) are computed once and shared
//! through `Arc<str>`: a full mesh of 1000 nodes plans ~500k pairs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::allowed_ips::normalize_entries;
use crate::endpoint::EndpointFamily;
use crate::error::{DomainError, DomainResult};
use crate::peer_link::DEFAULT_KEEPALIVE;

/// Error codes (spec 01 §11, Quick Mesh).
pub mod codes {
    /// Mode not `hub_spoke` / `full_mesh` / `free_mesh`.
    pub const INVALID_QUICK_MESH_MODE: &str = "INVALID_QUICK_MESH_MODE";
    /// Family not `ipv4` / `ipv6`.
    pub const INVALID_ENDPOINT_FAMILY: &str = "INVALID_ENDPOINT_FAMILY";
    /// Fewer than two enabled nodes.
    pub const QUICK_MESH_NOT_ENOUGH_NODES: &str = "QUICK_MESH_NOT_ENOUGH_NODES";
    /// An enabled node without virtual IP (`detail.nodes`).
    pub const QUICK_MESH_VIRTUAL_IP_REQUIRED: &str = "QUICK_MESH_VIRTUAL_IP_REQUIRED";
    /// No enabled hub.
    pub const QUICK_MESH_HUB_REQUIRED: &str = "QUICK_MESH_HUB_REQUIRED";
    /// Hub without a public entry.
    pub const QUICK_MESH_HUB_ENDPOINT_REQUIRED: &str = "QUICK_MESH_HUB_ENDPOINT_REQUIRED";
    /// Full mesh with non-public nodes.
    pub const QUICK_MESH_ENDPOINT_REQUIRED: &str = "QUICK_MESH_ENDPOINT_REQUIRED";
    /// No gateway, or a gateway that is not an enabled node.
    pub const QUICK_MESH_GATEWAY_REQUIRED: &str = "QUICK_MESH_GATEWAY_REQUIRED";
    /// Gateway without a public entry.
    pub const QUICK_MESH_GATEWAY_ENDPOINT_REQUIRED: &str = "QUICK_MESH_GATEWAY_ENDPOINT_REQUIRED";
    /// Leaf that is not an enabled node.
    pub const QUICK_MESH_LEAF_INVALID: &str = "QUICK_MESH_LEAF_INVALID";
    /// Node both gateway and leaf.
    pub const QUICK_MESH_NODE_ROLE_CONFLICT: &str = "QUICK_MESH_NODE_ROLE_CONFLICT";
    /// Leaf assigned to a gateway that is not selected.
    pub const QUICK_MESH_LEAF_GATEWAY_INVALID: &str = "QUICK_MESH_LEAF_GATEWAY_INVALID";
    /// Enabled node in no role.
    pub const QUICK_MESH_NODE_UNASSIGNED: &str = "QUICK_MESH_NODE_UNASSIGNED";
}
use codes::*;

/// Quick Mesh mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One public hub, every other node a spoke.
    HubSpoke,
    /// Every pair of (public) nodes.
    FullMesh,
    /// Public gateways in full mesh, each leaf under one gateway.
    FreeMesh,
}

impl Mode {
    /// Wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::HubSpoke => "hub_spoke",
            Mode::FullMesh => "full_mesh",
            Mode::FreeMesh => "free_mesh",
        }
    }

    /// Parses the wire value; else `INVALID_QUICK_MESH_MODE`.
    pub fn parse(value: &str) -> DomainResult<Mode> {
        match value.trim() {
            "hub_spoke" => Ok(Mode::HubSpoke),
            "full_mesh" => Ok(Mode::FullMesh),
            "free_mesh" => Ok(Mode::FreeMesh),
            other => Err(DomainError::new(INVALID_QUICK_MESH_MODE, "Quick Mesh mode must be hub_spoke, full_mesh or free_mesh.")
                .with("value", other)),
        }
    }
}

/// Parses an Endpoint family; else `INVALID_ENDPOINT_FAMILY`.
pub fn parse_family(value: &str) -> DomainResult<EndpointFamily> {
    EndpointFamily::parse(value).ok_or_else(|| {
        DomainError::new(INVALID_ENDPOINT_FAMILY, "Endpoint family must be ipv4 or ipv6.").with("value", value.trim())
    })
}

fn default_family() -> String {
    "ipv4".to_string()
}

/// Request body (§7). `mode` and family stay text so bad values give the spec's 400 codes.
/// `leaf_assignments` keeps the JSON object's order (it decides pair order).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Request {
    /// `hub_spoke` | `full_mesh` | `free_mesh`.
    pub mode: String,
    /// `ipv4` (default) | `ipv6`.
    #[serde(default = "default_family")]
    pub endpoint_ref_family: String,
    /// Hub (hub_spoke).
    #[serde(default)]
    pub hub_node_id: Option<String>,
    /// Gateways (free_mesh).
    #[serde(default)]
    pub gateway_node_ids: Vec<String>,
    /// Leaf id → gateway id (free_mesh), in document order.
    #[serde(default, deserialize_with = "ordered_map", serialize_with = "ordered_map_out")]
    pub leaf_assignments: Vec<(String, String)>,
    /// One fresh PSK per pair.
    #[serde(default)]
    pub use_preshared_key: bool,
}

fn ordered_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of leaf id to gateway id")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(V)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(String, String)> = Vec::new();
            while let Some((k, v)) = m.next_entry::<String, Option<String>>()? {
                let v = v.unwrap_or_default();
                // A repeated key keeps its first position and takes the last value (as a
                // JSON object read into a dict would).
                match out.iter_mut().find(|(key, _)| *key == k) {
                    Some(slot) => slot.1 = v,
                    None => out.push((k, v)),
                }
            }
            Ok(out)
        }
    }
    d.deserialize_option(V)
}

fn ordered_map_out<S: serde::Serializer>(v: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for (k, val) in v {
        m.serialize_entry(k, val)?;
    }
    m.end()
}

/// A node as Quick Mesh sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QmNode<'a> {
    /// Id.
    pub id: &'a str,
    /// Name (for `detail.nodes`).
    pub name: &'a str,
    /// Enabled flag.
    pub enabled: bool,
    /// Virtual IP as stored.
    pub virtual_ip: Option<&'a str>,
    /// Public IPv4 entry.
    pub ipv4_address: Option<&'a str>,
    /// Public IPv6 entry.
    pub ipv6_address: Option<&'a str>,
}

impl QmNode<'_> {
    fn public(&self, family: EndpointFamily) -> bool {
        let v = match family {
            EndpointFamily::Ipv4 => self.ipv4_address,
            EndpointFamily::Ipv6 => self.ipv6_address,
        };
        v.is_some_and(|s| !s.trim().is_empty())
    }

    fn vip(&self) -> Option<&str> {
        self.virtual_ip.map(str::trim).filter(|s| !s.is_empty())
    }
}

/// One planned pair: rows `a → b` (forward) and `b → a` (reverse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPair {
    /// Index of A in the node slice given to [`plan`].
    pub a: usize,
    /// Index of B.
    pub b: usize,
    /// AllowedIPs of the row `a → b`.
    pub allowed_ab: Arc<str>,
    /// AllowedIPs of the row `b → a`.
    pub allowed_ba: Arc<str>,
    /// Keepalive of `a → b` (25 when B is public).
    pub keepalive_ab: Option<i64>,
    /// Keepalive of `b → a` (25 when A is public).
    pub keepalive_ba: Option<i64>,
}

/// The validated plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Mode.
    pub mode: Mode,
    /// Family of every row.
    pub family: EndpointFamily,
    /// Pairs in insertion order.
    pub pairs: Vec<PlannedPair>,
    /// Enabled node ids in creation order.
    pub affected_node_ids: Vec<String>,
}

fn names(nodes: &[&QmNode<'_>]) -> Value {
    Value::from(nodes.iter().map(|n| n.name).collect::<Vec<_>>())
}

fn ids<S: AsRef<str>>(v: &[S]) -> Value {
    Value::from(v.iter().map(|s| s.as_ref().to_string()).collect::<Vec<_>>())
}

/// Plans a Quick Mesh. `nodes` = all nodes of the config in creation order.
pub fn plan(nodes: &[QmNode<'_>], virtual_subnet: &str, req: &Request) -> DomainResult<Plan> {
    let mode = Mode::parse(&req.mode)?;
    let family = parse_family(&req.endpoint_ref_family)?;

    let participants: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].enabled).collect();
    if participants.len() < 2 {
        return Err(DomainError::new(QUICK_MESH_NOT_ENOUGH_NODES, "Quick Mesh needs at least two enabled nodes."));
    }
    let no_vip: Vec<&QmNode<'_>> = participants.iter().map(|&i| &nodes[i]).filter(|n| n.vip().is_none()).collect();
    if !no_vip.is_empty() {
        return Err(DomainError::new(QUICK_MESH_VIRTUAL_IP_REQUIRED, "Every enabled node needs a virtual IP for Quick Mesh.")
            .with("nodes", names(&no_vip)));
    }
    // Normalised AllowedIPs of each participant's own address, computed once.
    let mut vip: HashMap<usize, Arc<str>> = HashMap::with_capacity(participants.len());
    for &i in &participants {
        vip.insert(i, Arc::from(normalize_entries([nodes[i].vip().unwrap_or("")])?));
    }
    let index: HashMap<&str, usize> = participants.iter().map(|&i| (nodes[i].id, i)).collect();
    let keepalive = |i: usize| nodes[i].public(family).then_some(DEFAULT_KEEPALIVE);
    let subnet = || -> DomainResult<Arc<str>> { Ok(Arc::from(normalize_entries([virtual_subnet])?)) };
    let mut pairs = Vec::new();
    let push = |pairs: &mut Vec<PlannedPair>, a: usize, b: usize, ab: Arc<str>, ba: Arc<str>| {
        pairs.push(PlannedPair { a, b, allowed_ab: ab, allowed_ba: ba, keepalive_ab: keepalive(b), keepalive_ba: keepalive(a) });
    };

    match mode {
        Mode::HubSpoke => {
            let hub = req
                .hub_node_id
                .as_deref()
                .map(str::trim)
                .and_then(|id| index.get(id).copied())
                .ok_or_else(|| DomainError::new(QUICK_MESH_HUB_REQUIRED, "Choose an enabled hub node."))?;
            if !nodes[hub].public(family) {
                return Err(DomainError::new(
                    QUICK_MESH_HUB_ENDPOINT_REQUIRED,
                    format!("The hub needs a public {} entry.", family.upper()),
                )
                .with("nodes", names(&[&nodes[hub]]))
                .with("endpoint_ref_family", family.as_str()));
            }
            let subnet = subnet()?;
            pairs.reserve(participants.len() - 1);
            for &s in participants.iter().filter(|&&s| s != hub) {
                push(&mut pairs, hub, s, vip[&s].clone(), subnet.clone());
            }
        }
        Mode::FullMesh => {
            let private: Vec<&QmNode<'_>> = participants.iter().map(|&i| &nodes[i]).filter(|n| !n.public(family)).collect();
            if !private.is_empty() {
                return Err(DomainError::new(
                    QUICK_MESH_ENDPOINT_REQUIRED,
                    format!("Full mesh needs a public {} entry on every enabled node.", family.upper()),
                )
                .with("nodes", names(&private))
                .with("endpoint_ref_family", family.as_str()));
            }
            let n = participants.len();
            pairs.reserve(n * (n - 1) / 2);
            for (x, &i) in participants.iter().enumerate() {
                for &j in &participants[x + 1..] {
                    push(&mut pairs, i, j, vip[&j].clone(), vip[&i].clone());
                }
            }
        }
        Mode::FreeMesh => {
            let mut gateways: Vec<&str> = Vec::new();
            for g in &req.gateway_node_ids {
                let g = g.trim();
                if !g.is_empty() && !gateways.contains(&g) {
                    gateways.push(g);
                }
            }
            let leaves: Vec<(&str, &str)> = req
                .leaf_assignments
                .iter()
                .map(|(l, g)| (l.trim(), g.trim()))
                .filter(|(l, g)| !l.is_empty() && !g.is_empty())
                .collect();
            if gateways.is_empty() {
                return Err(DomainError::new(QUICK_MESH_GATEWAY_REQUIRED, "Choose at least one gateway node."));
            }
            let unknown: Vec<&str> = gateways.iter().copied().filter(|g| !index.contains_key(g)).collect();
            if !unknown.is_empty() {
                return Err(DomainError::new(QUICK_MESH_GATEWAY_REQUIRED, "Gateways must be enabled nodes of this config.")
                    .with("node_ids", ids(&unknown)));
            }
            let gw_idx: Vec<usize> = gateways.iter().map(|g| index[g]).collect();
            let private: Vec<&QmNode<'_>> = gw_idx.iter().map(|&i| &nodes[i]).filter(|n| !n.public(family)).collect();
            if !private.is_empty() {
                return Err(DomainError::new(
                    QUICK_MESH_GATEWAY_ENDPOINT_REQUIRED,
                    format!("Gateways need a public {} entry.", family.upper()),
                )
                .with("nodes", names(&private))
                .with("endpoint_ref_family", family.as_str()));
            }
            let bad_leaves: Vec<&str> = leaves.iter().map(|(l, _)| *l).filter(|l| !index.contains_key(l)).collect();
            if !bad_leaves.is_empty() {
                return Err(DomainError::new(QUICK_MESH_LEAF_INVALID, "Leaves must be enabled nodes of this config.")
                    .with("node_ids", ids(&bad_leaves)));
            }
            let gw_set: HashSet<&str> = gateways.iter().copied().collect();
            let both: Vec<&str> = leaves.iter().map(|(l, _)| *l).filter(|l| gw_set.contains(l)).collect();
            if !both.is_empty() {
                return Err(DomainError::new(QUICK_MESH_NODE_ROLE_CONFLICT, "A node cannot be both a gateway and a leaf.")
                    .with("node_ids", ids(&both)));
            }
            let orphan: Vec<&str> = leaves.iter().filter(|(_, g)| !gw_set.contains(g)).map(|(l, _)| *l).collect();
            if !orphan.is_empty() {
                return Err(DomainError::new(QUICK_MESH_LEAF_GATEWAY_INVALID, "Each leaf must be assigned to a selected gateway.")
                    .with("node_ids", ids(&orphan)));
            }
            let leaf_set: HashSet<&str> = leaves.iter().map(|(l, _)| *l).collect();
            let unassigned: Vec<&str> = participants
                .iter()
                .map(|&i| nodes[i].id)
                .filter(|id| !gw_set.contains(id) && !leaf_set.contains(id))
                .collect();
            if !unassigned.is_empty() {
                return Err(DomainError::new(QUICK_MESH_NODE_UNASSIGNED, "Every enabled node needs a role: gateway or leaf.")
                    .with("node_ids", ids(&unassigned)));
            }
            // Scope of each gateway: its own address plus its leaves' (map order).
            let mut scopes: Vec<Arc<str>> = Vec::with_capacity(gw_idx.len());
            let mut leaves_of: Vec<Vec<usize>> = vec![Vec::new(); gw_idx.len()];
            for (k, g) in gateways.iter().enumerate() {
                let mut entries: Vec<&str> = vec![&vip[&gw_idx[k]]];
                for (l, lg) in &leaves {
                    if lg == g {
                        let li = index[l];
                        entries.push(&vip[&li]);
                        leaves_of[k].push(li);
                    }
                }
                scopes.push(Arc::from(normalize_entries(entries)?));
            }
            for x in 0..gw_idx.len() {
                for y in x + 1..gw_idx.len() {
                    push(&mut pairs, gw_idx[x], gw_idx[y], scopes[y].clone(), scopes[x].clone());
                }
            }
            let subnet = subnet()?;
            for (k, &g) in gw_idx.iter().enumerate() {
                for &l in &leaves_of[k] {
                    push(&mut pairs, g, l, vip[&l].clone(), subnet.clone());
                }
            }
        }
    }
    Ok(Plan { mode, family, pairs, affected_node_ids: participants.iter().map(|&i| nodes[i].id.to_string()).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n<'a>(id: &'a str, vip: Option<&'a str>, v4: Option<&'a str>) -> QmNode<'a> {
        QmNode { id, name: id, enabled: true, virtual_ip: vip, ipv4_address: v4, ipv6_address: None }
    }

    fn example() -> Vec<QmNode<'static>> {
        vec![
            n("N1", Some("10.92.0.2/32"), Some("198.51.100.1")),
            n("N2", Some("10.92.0.3/32"), Some("198.51.100.2")),
            n("N3", Some("10.92.0.4/32"), Some("198.51.100.3")),
        ]
    }

    fn req(v: serde_json::Value) -> Request {
        serde_json::from_value(v).unwrap()
    }

    fn rows(nodes: &[QmNode<'_>], p: &Plan) -> Vec<(String, String, String, Option<i64>)> {
        let mut out = Vec::new();
        for pp in &p.pairs {
            out.push((nodes[pp.a].id.to_string(), nodes[pp.b].id.to_string(), pp.allowed_ab.to_string(), pp.keepalive_ab));
            out.push((nodes[pp.b].id.to_string(), nodes[pp.a].id.to_string(), pp.allowed_ba.to_string(), pp.keepalive_ba));
        }
        out
    }

    fn r(a: &str, b: &str, ips: &str, k: Option<i64>) -> (String, String, String, Option<i64>) {
        (a.into(), b.into(), ips.into(), k)
    }

    /// The worked example of spec 02 §7.
    #[test]
    fn worked_example_hub_spoke() {
        let nodes = example();
        let p = plan(&nodes, "10.92.0.0/24", &req(serde_json::json!({"mode": "hub_spoke", "hub_node_id": "N1"}))).unwrap();
        assert_eq!(p.pairs.len(), 2);
        assert_eq!(
            rows(&nodes, &p),
            vec![
                r("N1", "N2", "10.92.0.3/32", Some(25)),
                r("N2", "N1", "10.92.0.0/24", Some(25)),
                r("N1", "N3", "10.92.0.4/32", Some(25)),
                r("N3", "N1", "10.92.0.0/24", Some(25)),
            ]
        );
        assert_eq!(p.affected_node_ids, vec!["N1", "N2", "N3"]);
        assert_eq!(p.family, EndpointFamily::Ipv4);
    }

    /// The worked example of spec 02 §7.
    #[test]
    fn worked_example_free_mesh() {
        let nodes = example();
        let p = plan(
            &nodes,
            "10.92.0.0/24",
            &req(serde_json::json!({"mode": "free_mesh", "gateway_node_ids": ["N1", " N2", "N1", ""], "leaf_assignments": {"N3": "N2", " ": "N1"}})),
        )
        .unwrap();
        assert_eq!(
            rows(&nodes, &p),
            vec![
                r("N1", "N2", "10.92.0.3/32,10.92.0.4/32", Some(25)),
                r("N2", "N1", "10.92.0.2/32", Some(25)),
                r("N2", "N3", "10.92.0.4/32", Some(25)),
                r("N3", "N2", "10.92.0.0/24", Some(25)),
            ]
        );
    }

    #[test]
    fn full_mesh_pairs_and_keepalive() {
        let nodes = example();
        let p = plan(&nodes, "10.92.0.0/24", &req(serde_json::json!({"mode": "full_mesh"}))).unwrap();
        assert_eq!(
            rows(&nodes, &p),
            vec![
                r("N1", "N2", "10.92.0.3/32", Some(25)),
                r("N2", "N1", "10.92.0.2/32", Some(25)),
                r("N1", "N3", "10.92.0.4/32", Some(25)),
                r("N3", "N1", "10.92.0.2/32", Some(25)),
                r("N2", "N3", "10.92.0.4/32", Some(25)),
                r("N3", "N2", "10.92.0.3/32", Some(25)),
            ]
        );
        // Hub-spoke with a private spoke: the hub's row towards it has no keepalive.
        let mut nodes = example();
        nodes[2].ipv4_address = None;
        let p = plan(&nodes, "10.92.0.0/24", &req(serde_json::json!({"mode": "hub_spoke", "hub_node_id": "N1"}))).unwrap();
        assert_eq!(rows(&nodes, &p)[2], r("N1", "N3", "10.92.0.4/32", None));
        assert_eq!(rows(&nodes, &p)[3], r("N3", "N1", "10.92.0.0/24", Some(25)));
    }

    #[test]
    fn disabled_nodes_do_not_participate() {
        let mut nodes = example();
        nodes[1].enabled = false;
        nodes[1].virtual_ip = None;
        let p = plan(&nodes, "10.92.0.0/24", &req(serde_json::json!({"mode": "full_mesh"}))).unwrap();
        assert_eq!(rows(&nodes, &p), vec![r("N1", "N3", "10.92.0.4/32", Some(25)), r("N3", "N1", "10.92.0.2/32", Some(25))]);
        assert_eq!(p.affected_node_ids, vec!["N1", "N3"]);
    }

    fn err(nodes: &[QmNode<'_>], v: serde_json::Value) -> DomainError {
        plan(nodes, "10.92.0.0/24", &req(v)).unwrap_err()
    }

    #[test]
    fn common_errors() {
        let nodes = example();
        assert_eq!(err(&nodes, serde_json::json!({"mode": "ring"})).code, INVALID_QUICK_MESH_MODE);
        assert_eq!(err(&nodes, serde_json::json!({"mode": "full_mesh", "endpoint_ref_family": "domain"})).code, INVALID_ENDPOINT_FAMILY);
        assert_eq!(err(&nodes[..1], serde_json::json!({"mode": "full_mesh"})).code, QUICK_MESH_NOT_ENOUGH_NODES);
        let mut two = example();
        two[2].enabled = false;
        two[1].enabled = false;
        assert_eq!(err(&two, serde_json::json!({"mode": "full_mesh"})).code, QUICK_MESH_NOT_ENOUGH_NODES);
        let mut novip = example();
        novip[1].virtual_ip = Some(" ");
        novip[2].virtual_ip = None;
        let e = err(&novip, serde_json::json!({"mode": "full_mesh"}));
        assert_eq!(e.code, QUICK_MESH_VIRTUAL_IP_REQUIRED);
        assert_eq!(e.detail["nodes"], serde_json::json!(["N2", "N3"]));
    }

    #[test]
    fn hub_and_full_mesh_errors() {
        let mut nodes = example();
        assert_eq!(err(&nodes, serde_json::json!({"mode": "hub_spoke"})).code, QUICK_MESH_HUB_REQUIRED);
        assert_eq!(err(&nodes, serde_json::json!({"mode": "hub_spoke", "hub_node_id": "zz"})).code, QUICK_MESH_HUB_REQUIRED);
        nodes[0].ipv4_address = Some("");
        let e = err(&nodes, serde_json::json!({"mode": "hub_spoke", "hub_node_id": "N1"}));
        assert_eq!(e.code, QUICK_MESH_HUB_ENDPOINT_REQUIRED);
        assert_eq!(e.detail["nodes"], serde_json::json!(["N1"]));
        assert_eq!(e.detail["endpoint_ref_family"], "ipv4");
        let e = err(&nodes, serde_json::json!({"mode": "full_mesh"}));
        assert_eq!(e.code, QUICK_MESH_ENDPOINT_REQUIRED);
        assert_eq!(e.detail["nodes"], serde_json::json!(["N1"]));
        let e = err(&example(), serde_json::json!({"mode": "full_mesh", "endpoint_ref_family": "ipv6"}));
        assert_eq!(e.detail["nodes"], serde_json::json!(["N1", "N2", "N3"]));
        nodes[0].enabled = false;
        assert_eq!(err(&nodes, serde_json::json!({"mode": "hub_spoke", "hub_node_id": "N1"})).code, QUICK_MESH_HUB_REQUIRED);
    }

    #[test]
    fn free_mesh_errors_in_order() {
        let mut nodes = example();
        nodes.push(n("N4", Some("10.92.0.5/32"), None));
        let e = |v| err(&nodes, v);
        assert_eq!(e(serde_json::json!({"mode": "free_mesh", "gateway_node_ids": [" "]})).code, QUICK_MESH_GATEWAY_REQUIRED);
        let x = e(serde_json::json!({"mode": "free_mesh", "gateway_node_ids": ["N1", "zz"]}));
        assert_eq!((x.code, x.detail["node_ids"].clone()), (QUICK_MESH_GATEWAY_REQUIRED, serde_json::json!(["zz"])));
        let x = e(serde_json::json!({"mode": "free_mesh", "gateway_node_ids": ["N4", "N1"]}));
        assert_eq!((x.code, x.detail["nodes"].clone()), (QUICK_MESH_GATEWAY_ENDPOINT_REQUIRED, serde_json::json!(["N4"])));
        let x = e(serde_json::json!({"mode": "free_mesh", "gateway_node_ids": ["N1"], "leaf_assignments": {"zz": "N1"}}));
        assert_eq!((x.code, x.detail["node_ids"].clone()), (QUICK_MESH_LEAF_INVALID, serde_json::json!(["zz"])));
        let x = e(serde_json::json!({"mode": "free_mesh", "gateway_node_ids": ["N1", "N2"], "leaf_assignments": {"N2": "N1"}}));
        assert_eq!((x.code, x.detail["node_ids"].clone()), (QUICK_MESH_NODE_ROLE_CONFLICT, serde_json::json!(["N2"])));
        let x = e(serde_json::json!({"mode": "free_mesh", "gateway_node_ids": ["N1"], "leaf_assignments": {"N3": "N2"}}));
        assert_eq!((x.code, x.detail["node_ids"].clone()), (QUICK_MESH_LEAF_GATEWAY_INVALID, serde_json::json!(["N3"])));
        let x = e(serde_json::json!({"mode": "free_mesh", "gateway_node_ids": ["N1"], "leaf_assignments": {"N3": "N1"}}));
        assert_eq!((x.code, x.detail["node_ids"].clone()), (QUICK_MESH_NODE_UNASSIGNED, serde_json::json!(["N2", "N4"])));
        // Leaves need no public address; a disabled node needs no role.
        nodes[1].enabled = false;
        let p = plan(
            &nodes,
            "10.92.0.0/24",
            // From text: `json!` objects do not keep key order, and leaf order decides pair order.
            &serde_json::from_str(r#"{"mode": "free_mesh", "gateway_node_ids": ["N1"], "leaf_assignments": {"N4": "N1", "N3": "N1"}}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            rows(&nodes, &p),
            vec![
                r("N1", "N4", "10.92.0.5/32", None),
                r("N4", "N1", "10.92.0.0/24", Some(25)),
                r("N1", "N3", "10.92.0.4/32", Some(25)),
                r("N3", "N1", "10.92.0.0/24", Some(25)),
            ]
        );
    }

    #[test]
    fn leaf_map_keeps_document_order() {
        let r: Request = serde_json::from_str(r#"{"mode":"free_mesh","leaf_assignments":{"b":"g","a":"g","b":"h"}}"#).unwrap();
        assert_eq!(r.leaf_assignments, vec![("b".to_string(), "h".to_string()), ("a".to_string(), "g".to_string())]);
        let r: Request = serde_json::from_str(r#"{"mode":"free_mesh","leaf_assignments":null}"#).unwrap();
        assert!(r.leaf_assignments.is_empty());
        assert_eq!(r.endpoint_ref_family, "ipv4");
    }

    #[test]
    fn big_full_mesh_is_cheap() {
        let ids: Vec<String> = (0..1000).map(|i| format!("node_{i:012}")).collect();
        let vips: Vec<String> = (0..1000).map(|i| format!("10.{}.{}.1/32", i / 256, i % 256)).collect();
        let nodes: Vec<QmNode<'_>> =
            (0..1000).map(|i| QmNode { id: &ids[i], name: &ids[i], enabled: true, virtual_ip: Some(&vips[i]), ipv4_address: Some("x"), ipv6_address: None }).collect();
        let p = plan(&nodes, "10.0.0.0/8", &req(serde_json::json!({"mode": "full_mesh"}))).unwrap();
        assert_eq!(p.pairs.len(), 499_500);
    }
}
