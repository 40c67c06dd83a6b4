//! `CategorizeEndpoints` (§4) with the topology mode from hints (§6).
//!
//! The sets are returned as indices into the (text-sorted) endpoint list, in that order, so every data
//! plane keeps the sorted order. A set the Service does not use is `None`, distinct from empty.

use std::sync::Arc;

use super::service::ServicePortInfo;
use super::{Endpoint, Gates};

/// Which topology filter applies to the cluster set (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyMode {
    None,
    PreferSameZone,
    PreferSameNode,
}

/// The result of categorising one service port's endpoints on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Categorized {
    /// Endpoints for cluster-policy traffic, or `None` when the Service does not use that set.
    pub cluster: Option<Vec<usize>>,
    /// Endpoints for local-policy traffic, or `None` when the Service does not use that set.
    pub local: Option<Vec<usize>>,
    /// Every endpoint this node may forward to (which endpoint chains exist).
    pub all_reachable: Option<Vec<usize>>,
    /// A usable endpoint exists somewhere in the cluster (§4.3).
    pub has_any: bool,
    pub topology: TopologyMode,
    /// The cluster set is the serving+terminating fallback.
    pub cluster_from_fallback: bool,
    /// The local set is the serving+terminating fallback.
    pub local_from_fallback: bool,
}

impl Categorized {
    fn nothing() -> Self {
        Categorized {
            cluster: None,
            local: None,
            all_reachable: None,
            has_any: false,
            topology: TopologyMode::None,
            cluster_from_fallback: false,
            local_from_fallback: false,
        }
    }

    /// The cluster set, empty when unused.
    pub fn cluster_or_empty(&self) -> &[usize] {
        self.cluster.as_deref().unwrap_or(&[])
    }

    /// The local set, empty when unused.
    pub fn local_or_empty(&self) -> &[usize] {
        self.local.as_deref().unwrap_or(&[])
    }

    /// The all-reachable set, empty when none.
    pub fn reachable_or_empty(&self) -> &[usize] {
        self.all_reachable.as_deref().unwrap_or(&[])
    }
}

/// §6: the topology mode from the hints of the **ready** endpoints.
pub fn topology_mode(
    endpoints: &[Arc<Endpoint>],
    svc: &ServicePortInfo,
    node_name: &str,
    node_zone: Option<&str>,
    gates: &Gates,
) -> TopologyMode {
    if let Some(legacy) = gates.legacy {
        // Older kube-proxy: the TopologyAwareHints gate and the Service annotation `auto`/`Auto`.
        if !legacy.topology_aware_hints || !matches!(svc.hints_annotation.as_deref(), Some("auto") | Some("Auto")) {
            return TopologyMode::None;
        }
    }
    let mut ready = endpoints.iter().filter(|e| e.ready).peekable();
    if ready.peek().is_none() {
        return TopologyMode::None;
    }
    if gates.prefer_same_traffic_distribution && gates.legacy.is_none() {
        let all_hinted = endpoints.iter().filter(|e| e.ready).all(|e| !e.node_hints.is_empty());
        let for_me = endpoints.iter().filter(|e| e.ready).any(|e| e.node_hints.iter().any(|n| n == node_name));
        if all_hinted && for_me {
            return TopologyMode::PreferSameNode;
        }
    }
    let Some(zone) = node_zone.filter(|z| !z.is_empty()) else { return TopologyMode::None };
    let all_hinted = endpoints.iter().filter(|e| e.ready).all(|e| !e.zone_hints.is_empty());
    let for_me = endpoints.iter().filter(|e| e.ready).any(|e| e.zone_hints.iter().any(|z| z == zone));
    if all_hinted && for_me {
        TopologyMode::PreferSameZone
    } else {
        TopologyMode::None
    }
}

fn allowed(e: &Endpoint, mode: TopologyMode, node_name: &str, node_zone: Option<&str>) -> bool {
    match mode {
        TopologyMode::None => true,
        TopologyMode::PreferSameNode => e.node_hints.iter().any(|n| n == node_name),
        TopologyMode::PreferSameZone => node_zone.is_some_and(|z| e.zone_hints.iter().any(|h| h == z)),
    }
}

/// Whether `categorize` may answer differently on two nodes of the same zone. The node's name is
/// read only for the local sets (a Service that uses node-local endpoints) and for the
/// PreferSameNode check, which can pass only with the gate on and node hints on every ready
/// endpoint. Otherwise the answer is the zone's, and nodes of one zone can share it.
pub fn node_matters(endpoints: &[Arc<Endpoint>], svc: &ServicePortInfo, gates: &Gates) -> bool {
    svc.uses_local_endpoints()
        || (gates.prefer_same_traffic_distribution
            && gates.legacy.is_none()
            && endpoints.iter().filter(|e| e.ready).all(|e| !e.node_hints.is_empty()))
}

/// §4.2: the cluster, local and all-reachable sets of one service port on one node.
pub fn categorize(
    endpoints: &[Arc<Endpoint>],
    svc: &ServicePortInfo,
    node_name: &str,
    node_zone: Option<&str>,
    gates: &Gates,
) -> Categorized {
    if endpoints.is_empty() {
        return Categorized::nothing();
    }
    let terminating_fallback = gates.legacy.is_none_or(|l| l.proxy_terminating_endpoints);
    let mut out = Categorized::nothing();

    if svc.uses_cluster_endpoints() {
        let mode = topology_mode(endpoints, svc, node_name, node_zone, gates);
        out.topology = mode;
        let mut cluster: Vec<usize> = endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.ready && allowed(e, mode, node_name, node_zone))
            .map(|(i, _)| i)
            .collect();
        if cluster.is_empty() && terminating_fallback {
            // No ready endpoint anywhere: serving+terminating ones, with no topology filter.
            cluster = endpoints.iter().enumerate().filter(|(_, e)| e.serving_terminating()).map(|(i, _)| i).collect();
            out.cluster_from_fallback = !cluster.is_empty();
        }
        out.has_any = !cluster.is_empty();
        out.cluster = Some(cluster);
    }

    if !svc.uses_local_endpoints() {
        out.all_reachable = out.cluster.clone();
        return out;
    }

    let mut local_ready = false;
    let mut local_serving_terminating = false;
    for e in endpoints {
        if e.ready {
            out.has_any = true;
            local_ready |= e.local_to(node_name);
        } else if terminating_fallback && e.serving_terminating() {
            out.has_any = true;
            local_serving_terminating |= e.local_to(node_name);
        }
    }
    let local: Vec<usize> = if local_ready {
        endpoints.iter().enumerate().filter(|(_, e)| e.local_to(node_name) && e.ready).map(|(i, _)| i).collect()
    } else if local_serving_terminating {
        out.local_from_fallback = true;
        endpoints.iter().enumerate().filter(|(_, e)| e.local_to(node_name) && e.serving_terminating()).map(|(i, _)| i).collect()
    } else {
        Vec::new()
    };

    out.all_reachable = match &out.cluster {
        None => Some(local.clone()),
        Some(cluster) if out.topology == TopologyMode::None && !out.local_from_fallback => Some(cluster.clone()),
        Some(cluster) => {
            let mut u: Vec<usize> = cluster.iter().chain(local.iter()).copied().collect();
            crate::sort::all(&mut u);
            u.dedup();
            Some(u)
        }
    };
    out.local = Some(local);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{Protocol, ServicePortName};

    fn ep(s: &str, ready: bool, serving: bool, terminating: bool, local: bool) -> Arc<Endpoint> {
        let mut e = Endpoint::from_endpoint_string(s).unwrap();
        e.ready = ready;
        e.serving = serving;
        e.terminating = terminating;
        e.is_local = local;
        Arc::new(e)
    }

    fn hinted(s: &str, zones: &[&str], nodes: &[&str]) -> Arc<Endpoint> {
        let mut e = Endpoint::from_endpoint_string(s).unwrap();
        e.zone_hints = zones.iter().map(|z| z.to_string()).collect();
        e.node_hints = nodes.iter().map(|z| z.to_string()).collect();
        Arc::new(e)
    }

    fn svc() -> ServicePortInfo {
        ServicePortInfo::bare(ServicePortName::new("ns", "svc", "", Protocol::Tcp))
    }

    fn strs(eps: &[Arc<Endpoint>], idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| eps[i].endpoint.clone()).collect()
    }

    #[test]
    fn ready_beats_terminating_cluster_wide() {
        let eps = vec![ep("10.0.0.1:80", false, true, true, true), ep("10.0.0.2:80", true, true, false, false)];
        let c = categorize(&eps, &svc(), "n", None, &Gates::default());
        assert_eq!(strs(&eps, c.cluster_or_empty()), vec!["10.0.0.2:80"]);
        assert!(c.local.is_none());
    }

    #[test]
    fn serving_terminating_fallback_ignores_topology_and_locality() {
        let mut a = (*hinted("10.0.0.1:80", &["z1"], &[])).clone();
        a.ready = false;
        a.terminating = true;
        let mut b = (*hinted("10.0.0.2:80", &["z2"], &[])).clone();
        b.ready = false;
        b.terminating = true;
        let eps = vec![Arc::new(a), Arc::new(b)];
        let c = categorize(&eps, &svc(), "n", Some("z1"), &Gates::default());
        assert_eq!(c.cluster_or_empty(), &[0, 1]);
        assert!(c.cluster_from_fallback && c.has_any);
    }

    #[test]
    fn unready_not_serving_never_used_nor_serving_not_terminating() {
        let eps = vec![ep("10.0.0.1:80", false, false, true, true), ep("10.0.0.2:80", false, true, false, true)];
        let c = categorize(&eps, &svc(), "n", None, &Gates::default());
        assert_eq!(c.cluster, Some(vec![]));
        assert!(!c.has_any);
        let mut s = svc();
        s.internal_policy_local = true;
        let c = categorize(&eps, &s, "n", None, &Gates::default());
        assert_eq!(c.local, Some(vec![]));
        assert!(!c.has_any);
    }

    #[test]
    fn local_fallback_is_node_wide_and_separate() {
        let eps = vec![
            ep("10.0.0.0:80", true, true, false, false),
            ep("10.0.0.2:80", false, true, true, true),
        ];
        let mut s = svc();
        s.external_policy_local = true;
        s.node_port = 30000;
        let c = categorize(&eps, &s, "n", None, &Gates::default());
        assert_eq!(c.cluster_or_empty(), &[0]);
        assert_eq!(c.local_or_empty(), &[1]);
        assert!(c.local_from_fallback);
        assert_eq!(c.reachable_or_empty(), &[0, 1]);
    }

    #[test]
    fn itp_local_all_remote_has_any_but_nothing_reachable() {
        let eps = vec![ep("10.0.0.0:80", true, true, false, false)];
        let mut s = svc();
        s.internal_policy_local = true;
        let c = categorize(&eps, &s, "n", None, &Gates::default());
        assert!(c.cluster.is_none());
        assert_eq!(c.local, Some(vec![]));
        assert!(c.has_any);
        assert_eq!(c.all_reachable, Some(vec![]));
    }

    #[test]
    fn topology_is_all_or_nothing() {
        let eps = vec![hinted("10.0.0.1:80", &["a"], &[]), hinted("10.0.0.2:80", &["b"], &[]), hinted("10.0.0.3:80", &[], &[])];
        assert_eq!(topology_mode(&eps, &svc(), "n", Some("a"), &Gates::default()), TopologyMode::None);
        let eps = vec![hinted("10.0.0.1:80", &["a"], &[]), hinted("10.0.0.2:80", &["b"], &[])];
        assert_eq!(topology_mode(&eps, &svc(), "n", Some("a"), &Gates::default()), TopologyMode::PreferSameZone);
        assert_eq!(topology_mode(&eps, &svc(), "n", Some("c"), &Gates::default()), TopologyMode::None);
        assert_eq!(topology_mode(&eps, &svc(), "n", Some(""), &Gates::default()), TopologyMode::None);
        assert_eq!(topology_mode(&eps, &svc(), "n", None, &Gates::default()), TopologyMode::None);
    }

    #[test]
    fn unready_hinted_endpoints_do_not_switch_topology_on() {
        let mut a = (*hinted("10.0.0.1:80", &["a"], &[])).clone();
        a.ready = false;
        let eps = vec![Arc::new(a), hinted("10.0.0.2:80", &["b"], &[])];
        assert_eq!(topology_mode(&eps, &svc(), "n", Some("a"), &Gates::default()), TopologyMode::None);
        let c = categorize(&eps, &svc(), "n", Some("a"), &Gates::default());
        assert_eq!(c.cluster_or_empty(), &[1]);
    }

    #[test]
    fn prefer_same_node_needs_the_gate_then_falls_back_to_zone() {
        let eps = vec![hinted("10.0.0.1:80", &["a"], &["n1"]), hinted("10.0.0.2:80", &["a"], &["n2"]), hinted("10.0.0.3:80", &["b"], &["n3"])];
        let on = Gates::default();
        let off = Gates { prefer_same_traffic_distribution: false, legacy: None };
        assert_eq!(categorize(&eps, &svc(), "n1", Some("a"), &on).cluster_or_empty(), &[0]);
        assert_eq!(categorize(&eps, &svc(), "n1", Some("a"), &off).cluster_or_empty(), &[0, 1]);
        assert_eq!(categorize(&eps, &svc(), "n9", Some("a"), &on).cluster_or_empty(), &[0, 1]);
    }

    #[test]
    fn topology_never_filters_the_local_set() {
        let mut a = (*hinted("10.0.0.1:80", &["a"], &[])).clone();
        a.is_local = true;
        let mut b = (*hinted("10.0.0.2:80", &["b"], &[])).clone();
        b.is_local = true;
        let eps = vec![Arc::new(a), Arc::new(b), hinted("10.0.0.3:80", &["a"], &[])];
        let mut s = svc();
        s.internal_policy_local = true;
        let c = categorize(&eps, &s, "n", Some("a"), &Gates::default());
        assert!(c.cluster.is_none());
        assert_eq!(c.local_or_empty(), &[0, 1]);
    }

    #[test]
    fn legacy_needs_annotation_and_gate() {
        let eps = vec![hinted("10.0.0.1:80", &["a"], &[]), hinted("10.0.0.2:80", &["b"], &[])];
        let legacy = Gates { prefer_same_traffic_distribution: false, legacy: Some(crate::proxy::LegacyGates { topology_aware_hints: true, proxy_terminating_endpoints: true }) };
        let mut s = svc();
        assert_eq!(categorize(&eps, &s, "n", Some("a"), &legacy).cluster_or_empty(), &[0, 1]);
        s.hints_annotation = Some("Auto".into());
        assert_eq!(categorize(&eps, &s, "n", Some("a"), &legacy).cluster_or_empty(), &[0]);
        s.hints_annotation = Some("aUto".into());
        assert_eq!(categorize(&eps, &s, "n", Some("a"), &legacy).cluster_or_empty(), &[0, 1]);
    }

    #[test]
    fn empty_input_gives_nothing() {
        let c = categorize(&[], &svc(), "n", None, &Gates::default());
        assert!(c.cluster.is_none() && c.local.is_none() && c.all_reachable.is_none() && !c.has_any);
    }

    #[test]
    fn where_the_node_does_not_matter_nodes_of_a_zone_get_the_same_answer() {
        // Random endpoint lists, policies and gates. Whenever `node_matters` says no, two different
        // nodes of a zone categorise alike; and it does say yes for some inputs where they differ.
        let mut r = crate::rng::Rng::new(11);
        let nodes = ["n1", "n2", "n3"];
        let zones = ["z1", "z2"];
        let (mut shared, mut differ) = (0, 0);
        for _ in 0..4000 {
            let n = r.below(6) as usize;
            let eps: Vec<Arc<Endpoint>> = (0..n)
                .map(|i| {
                    let mut e = Endpoint::from_endpoint_string(&format!("10.0.0.{}:80", i + 1)).unwrap();
                    e.ready = r.below(4) > 0;
                    e.serving = e.ready || r.below(2) == 0;
                    e.terminating = !e.ready && r.below(2) == 0;
                    e.node_name = Some(nodes[r.below(3) as usize].to_string());
                    e.is_local = false;
                    if r.below(3) > 0 {
                        e.zone_hints = vec![zones[r.below(2) as usize].to_string()];
                    }
                    if r.below(2) > 0 {
                        e.node_hints = vec![nodes[r.below(3) as usize].to_string()];
                    }
                    Arc::new(e)
                })
                .collect();
            let mut info = svc();
            info.internal_policy_local = r.below(4) == 0;
            info.external_policy_local = r.below(4) == 0;
            if r.below(3) == 0 {
                info.node_port = 30080;
            }
            info.hints_annotation = (r.below(2) == 0).then(|| "auto".to_string());
            let gates = Gates {
                prefer_same_traffic_distribution: r.below(4) > 0,
                legacy: (r.below(5) == 0).then(|| crate::proxy::LegacyGates {
                    topology_aware_hints: r.below(2) == 0,
                    proxy_terminating_endpoints: r.below(2) == 0,
                }),
            };
            let zone = (r.below(5) > 0).then(|| zones[r.below(2) as usize]);
            let a = categorize(&eps, &info, "n1", zone, &gates);
            let b = categorize(&eps, &info, "n2", zone, &gates);
            if !node_matters(&eps, &info, &gates) {
                assert_eq!(a, b, "{eps:?} {info:?} {gates:?} {zone:?}");
                shared += 1;
            } else if a != b {
                differ += 1;
            }
        }
        assert!(shared > 1000 && differ > 100, "both cases seen: {shared} shared, {differ} differ");
    }
}
