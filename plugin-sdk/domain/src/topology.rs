//! Topology validation of a config's mesh (spec 02 §6.6).
//!
//! One pass over the config's link rows, grouped by `link_group_id` in link order, finds:
//! duplicate enabled pairs, enabled groups touching missing/disabled nodes, and broken groups.
//! The same analysis feeds `POST /mesh/validate`, the overview/list summary and the per-link
//! integrity flags of the mesh workspace, so the three never disagree.
//!
//! Broken groups (WFM reading of the spec): an enabled group whose two rows disagree on
//! `enabled` (the API keeps them equal; only stored legacy data can differ), or whose two
//! directions both want an Endpoint and neither resolves.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::endpoint::{EndpointSettings, PeerAddress, resolve};

/// Warning when enabled nodes have no enabled link.
pub const NO_LINKS_WARNING: &str = "Current config has no peer links.";
/// `messages` when nothing is wrong.
pub const PASSED_MESSAGE: &str = "Topology check passed.";

/// A node as the analysis sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopoNode<'a> {
    /// Id.
    pub id: &'a str,
    /// Name (messages).
    pub name: &'a str,
    /// Enabled flag.
    pub enabled: bool,
    /// Public IPv4 entry.
    pub ipv4_address: Option<&'a str>,
    /// Public IPv6 entry.
    pub ipv6_address: Option<&'a str>,
    /// Own listen port.
    pub listen_port: Option<i64>,
}

impl<'a> TopoNode<'a> {
    fn address(&self) -> PeerAddress<'a> {
        PeerAddress { name: self.name, ipv4_address: self.ipv4_address, ipv6_address: self.ipv6_address, listen_port: self.listen_port }
    }
}

/// A link row as the analysis sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopoLink<'a> {
    /// Group id.
    pub group_id: &'a str,
    /// Local node id.
    pub local_node_id: &'a str,
    /// Peer node id.
    pub peer_node_id: &'a str,
    /// Stored `direction == "forward"`.
    pub forward: bool,
    /// Row flag.
    pub enabled: bool,
    /// Endpoint fields.
    pub endpoint: EndpointSettings<'a>,
}

/// Findings about one group, for the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFinding {
    /// Another enabled group joins the same two nodes.
    pub duplicate_message: Option<String>,
    /// The group is enabled and broken.
    pub broken_message: Option<String>,
    /// The group's enabled rows touch missing or disabled nodes.
    pub missing_message: Option<String>,
}

/// The result of one analysis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Errors in report order: duplicates (by first appearance of the pair), then per group.
    pub errors: Vec<String>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Nodes involved in errors.
    pub invalid_node_ids: BTreeSet<String>,
    /// Findings per group id (only groups with at least one finding).
    pub groups: HashMap<String, GroupFinding>,
}

/// `POST /configs/{id}/mesh/validate` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationResult {
    /// No errors.
    pub valid: bool,
    /// Errors, else warnings, else the pass message.
    pub messages: Vec<String>,
    /// Errors.
    pub errors: Vec<String>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// The summary in overviews and lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// No errors.
    pub valid: bool,
    /// Errors.
    pub errors: Vec<String>,
    /// `errors.len()`.
    pub error_count: usize,
    /// Nodes involved in errors, sorted.
    pub invalid_node_ids: Vec<String>,
    /// `invalid_node_ids.len()`.
    pub invalid_node_count: usize,
}

impl Analysis {
    /// The validate response.
    pub fn validation(&self) -> ValidationResult {
        let messages = if !self.errors.is_empty() {
            self.errors.clone()
        } else if !self.warnings.is_empty() {
            self.warnings.clone()
        } else {
            vec![PASSED_MESSAGE.to_string()]
        };
        ValidationResult { valid: self.errors.is_empty(), messages, errors: self.errors.clone(), warnings: self.warnings.clone() }
    }

    /// The summary (errors only, no warnings).
    pub fn summary(&self) -> Summary {
        Summary {
            valid: self.errors.is_empty(),
            errors: self.errors.clone(),
            error_count: self.errors.len(),
            invalid_node_ids: self.invalid_node_ids.iter().cloned().collect(),
            invalid_node_count: self.invalid_node_ids.len(),
        }
    }

    /// Messages for sync checks: errors when invalid, else warnings.
    pub fn sync_messages(&self) -> Vec<String> {
        if self.errors.is_empty() { self.warnings.clone() } else { self.errors.clone() }
    }
}

struct Group {
    forward: Option<usize>,
    reverse: Option<usize>,
    first: usize,
    rows: Vec<usize>,
}

/// Analyses a config: `nodes` = all its nodes, `links` = all its rows in link order.
pub fn analyze(nodes: &[TopoNode<'_>], links: &[TopoLink<'_>], default_port: i64) -> Analysis {
    let by_id: HashMap<&str, &TopoNode<'_>> = nodes.iter().map(|n| (n.id, n)).collect();
    let live = |id: &str| by_id.get(id).filter(|n| n.enabled).copied();
    let mut out = Analysis::default();

    let enabled_nodes = nodes.iter().filter(|n| n.enabled).count();
    if enabled_nodes >= 2 && !links.iter().any(|l| l.enabled) {
        out.warnings.push(NO_LINKS_WARNING.to_string());
    }

    // Groups in order of first appearance.
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Group> = HashMap::with_capacity(links.len() / 2 + 1);
    for (i, l) in links.iter().enumerate() {
        let g = groups.entry(l.group_id).or_insert_with(|| {
            order.push(l.group_id);
            Group { forward: None, reverse: None, first: i, rows: Vec::with_capacity(2) }
        });
        g.rows.push(i);
        if l.forward {
            g.forward.get_or_insert(i);
        } else {
            g.reverse.get_or_insert(i);
        }
    }

    // Duplicates: per unordered node pair, the enabled groups whose ends are live nodes.
    let mut pair_order: Vec<(&str, &str)> = Vec::new();
    let mut pairs: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for gid in &order {
        let g = &groups[gid];
        if !g.rows.iter().any(|&i| links[i].enabled) {
            continue;
        }
        let ends = &links[g.forward.unwrap_or(g.first)];
        if live(ends.local_node_id).is_none() || live(ends.peer_node_id).is_none() {
            continue;
        }
        let (a, b) = (ends.local_node_id, ends.peer_node_id);
        let key = if a <= b { (a, b) } else { (b, a) };
        pairs
            .entry(key)
            .or_insert_with(|| {
                pair_order.push((a, b));
                Vec::new()
            })
            .push(gid);
    }
    for (a, b) in pair_order {
        let key = if a <= b { (a, b) } else { (b, a) };
        let gids = &pairs[&key];
        if gids.len() < 2 {
            continue;
        }
        let (na, nb) = (by_id[a].name, by_id[b].name);
        let msg = format!(
            "Duplicate enabled peer links found between {na} and {nb}. Only one enabled link group is allowed for the same node pair."
        );
        out.errors.push(msg.clone());
        out.invalid_node_ids.insert(a.to_string());
        out.invalid_node_ids.insert(b.to_string());
        for gid in gids {
            out.groups.entry(gid.to_string()).or_default().duplicate_message = Some(msg.clone());
        }
    }

    for gid in &order {
        let g = &groups[gid];
        let enabled_rows: Vec<&TopoLink<'_>> = g.rows.iter().map(|&i| &links[i]).filter(|l| l.enabled).collect();
        if enabled_rows.is_empty() {
            continue;
        }
        let mut bad: BTreeSet<&str> = BTreeSet::new();
        for l in &enabled_rows {
            for id in [l.local_node_id, l.peer_node_id] {
                if live(id).is_none() {
                    bad.insert(id);
                }
            }
        }
        if !bad.is_empty() {
            let ids: Vec<&str> = bad.iter().copied().collect();
            let msg = format!("Enabled Mesh link group {gid} references missing or disabled endpoint: {}.", ids.join(", "));
            out.errors.push(msg.clone());
            for l in &enabled_rows {
                for id in [l.local_node_id, l.peer_node_id] {
                    if live(id).is_some() {
                        out.invalid_node_ids.insert(id.to_string());
                    }
                }
            }
            out.groups.entry(gid.to_string()).or_default().missing_message = Some(msg);
            continue;
        }
        let ends = &links[g.forward.unwrap_or(g.first)];
        let (Some(a), Some(b)) = (live(ends.local_node_id), live(ends.peer_node_id)) else {
            continue;
        };
        let broken = match (g.forward, g.reverse) {
            (Some(f), Some(r)) => {
                let (lf, lr) = (&links[f], &links[r]);
                if lf.enabled != lr.enabled {
                    Some(format!("Mesh link between {} and {} is broken because only one direction is enabled.", a.name, b.name))
                } else {
                    let unresolved = |l: &TopoLink<'_>| {
                        live(l.peer_node_id).is_some_and(|p| resolve(&l.endpoint, &p.address(), default_port).unresolved)
                    };
                    (unresolved(lf) && unresolved(lr)).then(|| {
                        format!("Mesh link between {} and {} is broken because both sides have no public endpoint.", a.name, b.name)
                    })
                }
            }
            _ => None,
        };
        if let Some(msg) = broken {
            out.errors.push(msg.clone());
            out.invalid_node_ids.insert(a.id.to_string());
            out.invalid_node_ids.insert(b.id.to_string());
            out.groups.entry(gid.to_string()).or_default().broken_message = Some(msg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EndpointFamily, EndpointMode};

    fn node<'a>(id: &'a str, enabled: bool, v4: Option<&'a str>) -> TopoNode<'a> {
        TopoNode { id, name: id, enabled, ipv4_address: v4, ipv6_address: None, listen_port: None }
    }

    fn pair<'a>(g: &'a str, a: &'a str, b: &'a str, enabled: bool) -> [TopoLink<'a>; 2] {
        let s = EndpointSettings::auto(EndpointFamily::Ipv4);
        [
            TopoLink { group_id: g, local_node_id: a, peer_node_id: b, forward: true, enabled, endpoint: s },
            TopoLink { group_id: g, local_node_id: b, peer_node_id: a, forward: false, enabled, endpoint: s },
        ]
    }

    #[test]
    fn empty_and_single_node() {
        let r = analyze(&[], &[], 51820).validation();
        assert_eq!(r, ValidationResult { valid: true, messages: vec![PASSED_MESSAGE.into()], errors: vec![], warnings: vec![] });
        let n = [node("a", true, None), node("b", true, None)];
        let r = analyze(&n, &[], 51820).validation();
        assert!(r.valid);
        assert_eq!(r.messages, vec![NO_LINKS_WARNING.to_string()]);
        // One enabled node: no warning.
        let n = [node("a", true, None), node("b", false, None)];
        assert!(analyze(&n, &[], 51820).warnings.is_empty());
        // Only disabled rows: still the warning.
        let n = [node("a", true, Some("1.1.1.1")), node("b", true, Some("2.2.2.2"))];
        let l = pair("g1", "a", "b", false);
        assert_eq!(analyze(&n, &l, 51820).warnings.len(), 1);
    }

    #[test]
    fn healthy_pair_passes() {
        let n = [node("a", true, Some("1.1.1.1")), node("b", true, None)];
        let l = pair("g1", "a", "b", true);
        let a = analyze(&n, &l, 51820);
        assert_eq!(a.validation().messages, vec![PASSED_MESSAGE.to_string()]);
        assert!(a.summary().valid);
        assert!(a.groups.is_empty());
    }

    #[test]
    fn duplicates() {
        let n = [node("a", true, Some("1.1.1.1")), node("b", true, Some("2.2.2.2")), node("c", true, Some("3.3.3.3"))];
        let mut l = Vec::new();
        l.extend(pair("g1", "a", "b", true));
        l.extend(pair("g2", "b", "a", true)); // other orientation, same pair
        l.extend(pair("g3", "a", "c", true));
        l.extend(pair("g4", "a", "c", false)); // disabled duplicate is fine
        let a = analyze(&n, &l, 51820);
        assert_eq!(
            a.errors,
            vec!["Duplicate enabled peer links found between a and b. Only one enabled link group is allowed for the same node pair."]
        );
        let s = a.summary();
        assert_eq!(s.invalid_node_ids, vec!["a", "b"]);
        assert_eq!((s.error_count, s.invalid_node_count, s.valid), (1, 2, false));
        assert!(a.groups["g1"].duplicate_message.is_some() && a.groups["g2"].duplicate_message.is_some());
        assert!(!a.groups.contains_key("g3"));
    }

    #[test]
    fn missing_or_disabled_nodes() {
        let n = [node("a", true, Some("1.1.1.1")), node("b", false, Some("2.2.2.2")), node("c", true, Some("3.3.3.3"))];
        let mut l = Vec::new();
        l.extend(pair("g1", "a", "b", true));
        l.extend(pair("g2", "c", "zz", true));
        l.extend(pair("g3", "b", "c", false)); // disabled rows are not checked
        let a = analyze(&n, &l, 51820);
        assert_eq!(
            a.errors,
            vec![
                "Enabled Mesh link group g1 references missing or disabled endpoint: b.".to_string(),
                "Enabled Mesh link group g2 references missing or disabled endpoint: zz.".to_string(),
            ]
        );
        assert_eq!(a.summary().invalid_node_ids, vec!["a", "c"]);
        let n2 = [node("a", true, None)];
        let l2 = pair("g9", "y", "x", true);
        assert_eq!(analyze(&n2, &l2, 1).errors, vec!["Enabled Mesh link group g9 references missing or disabled endpoint: x, y."]);
    }

    #[test]
    fn broken_pairs() {
        let n = [node("a", true, None), node("b", true, None), node("c", true, Some("3.3.3.3"))];
        let mut l = Vec::new();
        l.extend(pair("g1", "a", "b", true));
        l.extend(pair("g2", "a", "c", true));
        let a = analyze(&n, &l, 51820);
        assert_eq!(a.errors, vec!["Mesh link between a and b is broken because both sides have no public endpoint."]);
        assert_eq!(a.summary().invalid_node_ids, vec!["a", "b"]);
        assert!(a.groups["g1"].broken_message.is_some());

        // `none` on both sides is intentional, not broken.
        let mut l = pair("g1", "a", "b", true).to_vec();
        for r in &mut l {
            r.endpoint.mode = EndpointMode::None;
        }
        assert!(analyze(&n, &l, 51820).errors.is_empty());

        // Rows that disagree on `enabled`.
        let n = [node("a", true, Some("1.1.1.1")), node("b", true, Some("2.2.2.2"))];
        let mut l = pair("g1", "a", "b", true).to_vec();
        l[1].enabled = false;
        let a = analyze(&n, &l, 51820);
        assert_eq!(a.errors, vec!["Mesh link between a and b is broken because only one direction is enabled."]);

        // A lone row is not checked for endpoints.
        let n = [node("a", true, None), node("b", true, None)];
        let l = [pair("g1", "a", "b", true)[0]];
        assert!(analyze(&n, &l, 51820).errors.is_empty());
    }
}
