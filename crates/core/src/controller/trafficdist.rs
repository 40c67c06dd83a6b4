//! §9 of the controller spec: hints from `spec.trafficDistribution`.

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, ForNode, ForZone};

use super::plan::{endpoint_ready, eps, eps_mut, Cause, Planned, SliceInfo};

pub const PREFER_CLOSE: &str = "PreferClose";
pub const PREFER_SAME_ZONE: &str = "PreferSameZone";
pub const PREFER_SAME_NODE: &str = "PreferSameNode";

/// The heuristic a trafficDistribution value selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heuristic {
    SameZone,
    SameNode,
}

/// §9: the heuristic for a value, or `None` when the value is unset or not valid (PreferSameZone and
/// PreferSameNode need the PreferSameTrafficDistribution option).
pub fn heuristic(value: Option<&str>, prefer_same_enabled: bool) -> Option<Heuristic> {
    match value? {
        PREFER_CLOSE => Some(Heuristic::SameZone),
        PREFER_SAME_ZONE if prefer_same_enabled => Some(Heuristic::SameZone),
        PREFER_SAME_NODE if prefer_same_enabled => Some(Heuristic::SameNode),
        _ => None,
    }
}

/// The hints a ready endpoint should carry under a heuristic.
pub fn wanted_hints(ep: &Endpoint, h: Heuristic) -> Option<EndpointHints> {
    let zone = ep.zone.as_deref().filter(|z| !z.is_empty());
    let node = ep.node_name.as_deref().filter(|n| !n.is_empty());
    let for_zones = zone.map(|z| vec![ForZone { name: z.to_string() }]);
    let for_nodes = match h {
        Heuristic::SameNode => node.map(|n| vec![ForNode { name: n.to_string() }]),
        Heuristic::SameZone => None,
    };
    if for_zones.is_none() && for_nodes.is_none() {
        None
    } else {
        Some(EndpointHints { for_zones, for_nodes })
    }
}

/// Hints compared with nil and empty lists alike.
fn same_hints(a: Option<&EndpointHints>, b: Option<&EndpointHints>) -> bool {
    let norm = |h: Option<&EndpointHints>| {
        let z: Vec<String> = h.and_then(|h| h.for_zones.as_ref()).into_iter().flatten().map(|z| z.name.clone()).collect();
        let n: Vec<String> = h.and_then(|h| h.for_nodes.as_ref()).into_iter().flatten().map(|n| n.name.clone()).collect();
        (z, n)
    };
    norm(a) == norm(b)
}

/// An unchanged slice needs an update when some *ready* endpoint has a missing, wrong or stale hint.
pub fn needs_update(endpoints: &[Endpoint], h: Heuristic) -> bool {
    endpoints.iter().filter(|e| endpoint_ready(e)).any(|e| !same_hints(e.hints.as_ref(), wanted_hints(e, h).as_ref()))
}

fn update(endpoints: &mut [Endpoint], h: Heuristic) {
    for ep in endpoints.iter_mut().filter(|e| endpoint_ready(e)) {
        ep.hints = wanted_hints(ep, h);
    }
}

/// `ReconcileHints`: move unchanged slices with bad hints to update, then set the hints of every ready
/// endpoint in the slices being created or updated. No balancing, no thresholds.
pub fn reconcile_hints(si: &mut SliceInfo, h: Heuristic) {
    let mut kept = Vec::with_capacity(si.unchanged.len());
    for s in std::mem::take(&mut si.unchanged) {
        if needs_update(eps(&s), h) {
            si.to_update.push(Planned::new(s, Cause::TrafficDistributionHints));
        } else {
            kept.push(s);
        }
    }
    si.unchanged = kept;
    for p in si.to_create.iter_mut().chain(si.to_update.iter_mut()) {
        update(eps_mut(&mut p.slice), h);
    }
}
