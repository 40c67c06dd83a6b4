//! §8 of the controller spec: topology-aware hints (`service.kubernetes.io/topology-mode: Auto`).
//! The cache keeps per-zone CPU ratios from the Nodes and the hints it allocated per Service.

use crate::vecmap::VecMap;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::{EndpointHints, EndpointSlice, ForZone};

use super::plan::{endpoint_ready, eps, eps_mut, Cause, Event, Planned, SliceInfo};
use super::{ANNOTATION_TOPOLOGY_HINTS_DEPRECATED, ANNOTATION_TOPOLOGY_MODE, LABEL_ZONE};
use crate::quantity::parse_milli;

/// The overload threshold and the multiplier derived from it.
pub const OVERLOAD_THRESHOLD: f64 = 0.2;

// Event messages (the real controller's wording, so events compare equal).
pub const MSG_NO_ZONE_SPECIFIED: &str = "One or more endpoints do not have a zone specified";
pub const MSG_NO_ALLOCATED_HINTS: &str = "No hints allocated for zones";
pub const MSG_HINTS_ENABLED: &str = "Topology Aware Hints has been enabled";
pub const MSG_HINTS_DISABLED: &str = "Topology Aware Hints has been disabled";
pub const MSG_INSUFFICIENT_NODE_INFO: &str =
    "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes";
pub const MSG_NODES_READY_IN_ONE_ZONE: &str = "Nodes only ready in one zone";
pub const MSG_INSUFFICIENT_ENDPOINTS: &str = "Insufficient number of endpoints";
pub const MSG_MIN_ALLOCATION_EXCEEDS: &str =
    "Unable to allocate minimum required endpoints to each zone without exceeding overload threshold";

/// "<message>, addressType: <type>".
pub fn with_address_type(msg: &str, address_type: &str) -> String {
    format!("{msg}, addressType: {address_type}")
}

/// §8.1: the annotation enables hints only for exactly `Auto` or `auto`; the deprecated key, when
/// present, wins whatever its value.
pub fn hints_enabled(svc: &Service) -> bool {
    let ann = match svc.metadata.annotations.as_ref() {
        Some(a) => a,
        None => return false,
    };
    let v = match ann.get(ANNOTATION_TOPOLOGY_HINTS_DEPRECATED) {
        Some(v) => v,
        None => match ann.get(ANNOTATION_TOPOLOGY_MODE) {
            Some(v) => v,
            None => return false,
        },
    };
    v == "Auto" || v == "auto"
}

/// One zone's share of the ready endpoints (§8.3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Allocation {
    pub minimum: usize,
    pub maximum: usize,
    pub desired: f64,
}

/// Zone → count.
pub type ZoneCounts = VecMap<String, usize>;

/// The topology cache: CPU ratios by zone and the hints allocated per Service and address type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopologyCache {
    cpu_by_zone_milli: Option<VecMap<String, i64>>,
    cpu_ratios: Option<VecMap<String, f64>>,
    hints_by_service: VecMap<String, VecMap<String, ZoneCounts>>,
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        .unwrap_or(false)
}

fn node_excluded(node: &Node) -> bool {
    node.metadata.labels.as_ref().is_some_and(|l| {
        l.contains_key("node-role.kubernetes.io/control-plane") || l.contains_key("node-role.kubernetes.io/master")
    })
}

impl TopologyCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// §8.2 `SetNodes`: per-zone CPU ratios of the ready, non-control-plane nodes; unset when any such
    /// node lacks a zone or CPU, when the total is 0, or when fewer than 2 zones remain.
    pub fn set_nodes<N: std::borrow::Borrow<Node>>(&mut self, nodes: &[N]) {
        let mut by_zone: VecMap<String, i64> = VecMap::new();
        let mut total: i64 = 0;
        let mut sufficient = true;
        for n in nodes {
            let n = n.borrow();
            if node_excluded(n) || !node_ready(n) {
                continue;
            }
            let zone = n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_ZONE)).filter(|z| !z.is_empty());
            let cpu = n
                .status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref())
                .and_then(|a| a.get("cpu"))
                .and_then(|q| parse_milli(&q.0))
                .unwrap_or(0);
            match zone {
                Some(z) if cpu != 0 => {
                    total = total.saturating_add(cpu);
                    *by_zone.entry(z.clone()).or_insert(0) += cpu;
                }
                _ => {
                    sufficient = false;
                    break;
                }
            }
        }
        if total == 0 || !sufficient || by_zone.len() < 2 {
            self.cpu_by_zone_milli = None;
            self.cpu_ratios = None;
            return;
        }
        let t = total as f64;
        self.cpu_ratios = Some(by_zone.iter().map(|(z, c)| (z.clone(), *c as f64 / t)).collect());
        self.cpu_by_zone_milli = Some(by_zone);
    }

    /// Set the ratios directly (the unit tests of the real cache do this).
    pub fn set_ratios(&mut self, ratios: Option<VecMap<String, f64>>) {
        self.cpu_ratios = ratios;
    }

    pub fn cpu_ratios(&self) -> Option<&VecMap<String, f64>> {
        self.cpu_ratios.as_ref()
    }

    pub fn cpu_by_zone_milli(&self) -> Option<&VecMap<String, i64>> {
        self.cpu_by_zone_milli.as_ref()
    }

    /// §8.3 `getAllocations`.
    pub fn allocations(&self, n: usize) -> Result<VecMap<String, Allocation>, String> {
        let ratios = self.cpu_ratios.as_ref().ok_or_else(|| MSG_INSUFFICIENT_NODE_INFO.to_string())?;
        if ratios.len() < 2 {
            return Err(MSG_NODES_READY_IN_ONE_ZONE.to_string());
        }
        if ratios.len() > n {
            return Err(format!("{MSG_INSUFFICIENT_ENDPOINTS} ({n} endpoints, {} zones)", ratios.len()));
        }
        let mut out = VecMap::new();
        let mut min_total = 0usize;
        for (zone, ratio) in ratios {
            let desired = ratio * n as f64;
            let minimum = (desired * (1.0 / (1.0 + OVERLOAD_THRESHOLD))).ceil() as usize;
            min_total += minimum;
            if min_total > n {
                return Err(format!("{MSG_MIN_ALLOCATION_EXCEEDS} ({n} endpoints, {} zones)", ratios.len()));
            }
            out.insert(zone.clone(), Allocation { minimum, maximum: 0, desired: desired.max(minimum as f64) });
        }
        for a in out.values_mut() {
            a.maximum = a.minimum + n - min_total;
        }
        Ok(out)
    }

    pub fn has_populated_hints(&self, service_key: &str) -> bool {
        self.hints_by_service.contains_key(service_key)
    }

    /// The hints recorded for a Service, by address type.
    pub fn recorded_hints(&self, service_key: &str) -> Option<&VecMap<String, ZoneCounts>> {
        self.hints_by_service.get(service_key)
    }

    pub fn set_hints(&mut self, service_key: &str, address_type: &str, counts: ZoneCounts) {
        self.hints_by_service.entry(service_key.to_string()).or_default().insert(address_type.to_string(), counts);
    }

    pub fn remove_hints(&mut self, service_key: &str, address_type: &str) {
        if let Some(m) = self.hints_by_service.get_mut(service_key) {
            m.remove(address_type);
            if m.is_empty() {
                self.hints_by_service.remove(service_key);
            }
        }
    }

    /// Forget a Service entirely (it was deleted).
    pub fn forget_service(&mut self, service_key: &str) {
        self.hints_by_service.remove(service_key);
    }

    /// §8.6: Services whose recorded hints are now overloaded, sorted by key.
    pub fn overloaded_services(&self) -> Vec<String> {
        self.hints_by_service.iter().filter(|(_, by_type)| self.overloaded(by_type)).map(|(k, _)| k.clone()).collect()
    }

    fn overloaded(&self, by_type: &VecMap<String, ZoneCounts>) -> bool {
        let ratios = match &self.cpu_ratios {
            None => return !by_type.is_empty(),
            Some(r) => r,
        };
        by_type.values().any(|counts| {
            let total: usize = counts.values().sum();
            ratios.iter().any(|(zone, ratio)| match counts.get(zone) {
                None | Some(0) => true,
                Some(&have) => {
                    let min = (total as f64 * ratio * (1.0 / (1.0 + OVERLOAD_THRESHOLD))).ceil() as usize;
                    have < min
                }
            })
        })
    }

    /// §8.4 `AddHints`: allocate zone hints over the ready endpoints of one address type. Slices
    /// whose hints must change are moved from `unchanged` to `to_update`.
    pub fn add_hints(&mut self, si: &mut SliceInfo) -> Vec<Event> {
        let at = si.address_type.clone();
        let total_ready = si
            .to_create
            .iter()
            .chain(si.to_update.iter())
            .map(|p| &p.slice)
            .chain(si.unchanged.iter())
            .map(|s| eps(s).iter().filter(|e| endpoint_ready(e)).count())
            .sum();
        let allocations = match self.allocations(total_ready) {
            Ok(a) => a,
            Err(msg) => {
                self.remove_hints(&si.service_key, &at);
                remove_hints_from_slices(si);
                return vec![Event::warning("TopologyAwareHintsDisabled", with_address_type(&msg, &at))];
            }
        };

        // Step 2: unchanged slices keep valid hints; others move to update.
        let mut allocated: ZoneCounts = VecMap::new();
        let mut kept = Vec::with_capacity(si.unchanged.len());
        for slice in std::mem::take(&mut si.unchanged) {
            match hints_by_zone(&slice, &allocated, &allocations) {
                Some(counts) => {
                    for (z, c) in counts {
                        *allocated.entry(z).or_insert(0) += c;
                    }
                    kept.push(slice);
                }
                None => si.to_update.push(Planned::new(slice, Cause::TopologyHints)),
            }
        }
        si.unchanged = kept;

        // Step 3: same-zone hints for every ready endpoint of the slices being written.
        let mut no_zone = false;
        'outer: for p in si.to_create.iter().chain(si.to_update.iter()) {
            for ep in eps(&p.slice) {
                if endpoint_ready(ep) && ep.zone.as_deref().unwrap_or("").is_empty() {
                    no_zone = true;
                    break 'outer;
                }
            }
        }
        if no_zone {
            self.remove_hints(&si.service_key, &at);
            remove_hints_from_slices(si);
            return vec![Event::warning("TopologyAwareHintsDisabled", with_address_type(MSG_NO_ZONE_SPECIFIED, &at))];
        }
        for p in si.to_create.iter_mut().chain(si.to_update.iter_mut()) {
            for ep in eps_mut(&mut p.slice).iter_mut() {
                if !endpoint_ready(ep) {
                    continue;
                }
                let zone = ep.zone.clone().unwrap_or_default();
                *allocated.entry(zone.clone()).or_insert(0) += 1;
                ep.hints = Some(EndpointHints { for_zones: Some(vec![ForZone { name: zone }]), for_nodes: None });
            }
        }

        // Steps 4 and 5: move hints from zones with too many to zones with too few.
        let desired: VecMap<String, f64> = allocations.iter().map(|(z, a)| (z.clone(), a.desired)).collect();
        let allocated_i: VecMap<String, i64> = allocated.iter().map(|(z, n)| (z.clone(), *n as i64)).collect();
        let (giving, receiving) = giving_and_receiving_zones(&desired, &allocated_i);
        let mut slices: Vec<&mut EndpointSlice> =
            si.to_create.iter_mut().chain(si.to_update.iter_mut()).map(|p| &mut p.slice).collect();
        let moved = redistribute_hints(&mut slices, giving, receiving);
        for (zone, diff) in moved {
            let e = allocated.entry(zone).or_insert(0);
            *e = (*e as i64 + diff).max(0) as usize;
        }

        // Step 6.
        if allocated.is_empty() {
            self.remove_hints(&si.service_key, &at);
            remove_hints_from_slices(si);
            return vec![Event::warning("TopologyAwareHintsDisabled", with_address_type(MSG_NO_ALLOCATED_HINTS, &at))];
        }
        let was_enabled = self.has_populated_hints(&si.service_key);
        self.set_hints(&si.service_key, &at, allocated);
        if was_enabled {
            Vec::new()
        } else {
            vec![Event::normal("TopologyAwareHintsEnabled", with_address_type(MSG_HINTS_ENABLED, &at))]
        }
    }
}

/// §8.4 step 2 (`getHintsByZone`): the zone hints of an unchanged slice's ready endpoints, or `None`
/// when the slice must be rewritten (an endpoint without a zone hint, a hinted zone with no allocation,
/// or a zone pushed past its maximum).
pub fn hints_by_zone(
    slice: &EndpointSlice,
    already: &ZoneCounts,
    allocations: &VecMap<String, Allocation>,
) -> Option<ZoneCounts> {
    let mut counts: ZoneCounts = VecMap::new();
    for ep in eps(slice).iter().filter(|e| endpoint_ready(e)) {
        let zones = ep.hints.as_ref().and_then(|h| h.for_zones.as_ref()).filter(|z| !z.is_empty())?;
        for z in zones {
            if !allocations.contains_key(&z.name) {
                return None;
            }
            *counts.entry(z.name.clone()).or_insert(0) += 1;
        }
    }
    for (zone, n) in &counts {
        let a = allocations.get(zone)?;
        if n + already.get(zone).copied().unwrap_or(0) > a.maximum {
            return None;
        }
    }
    Some(counts)
}

/// §8.4 step 4 (`getGivingAndReceivingZones`): how many endpoints each zone gives or receives.
pub fn giving_and_receiving_zones(desired: &VecMap<String, f64>, allocated: &VecMap<String, i64>) -> (ZoneCounts, ZoneCounts) {
    let mut give_f: VecMap<String, f64> = VecMap::new();
    let mut recv_f: VecMap<String, f64> = VecMap::new();
    for (zone, target) in desired {
        let have = allocated.get(zone).copied().unwrap_or(0) as f64;
        if have > *target {
            give_f.insert(zone.clone(), have - target);
        } else if have < *target {
            recv_f.insert(zone.clone(), target - have);
        }
    }
    let mut giving: ZoneCounts = VecMap::new();
    let mut receiving: ZoneCounts = VecMap::new();
    // Largest amount first; ties go to the first zone in name order.
    let most = |m: &VecMap<String, f64>| {
        let mut best: Option<(&String, f64)> = None;
        for (z, v) in m {
            if best.is_none_or(|(_, b)| *v > b) {
                best = Some((z, *v));
            }
        }
        best.map(|(z, v)| (z.clone(), v))
    };
    while let (Some((gz, g)), Some((rz, r))) = (most(&give_f), most(&recv_f)) {
        if (g < 1.0 && r < 1.0) || g < 0.5 || r < 0.5 {
            break;
        }
        *giving.entry(gz.clone()).or_insert(0) += 1;
        *receiving.entry(rz.clone()).or_insert(0) += 1;
        if let Some(v) = give_f.get_mut(&gz) {
            *v -= 1.0;
        }
        if let Some(v) = recv_f.get_mut(&rz) {
            *v -= 1.0;
        }
    }
    (giving, receiving)
}

/// §8.4 step 5 (`redistributeHints`): walk the ready endpoints in order and re-hint those of giving
/// zones to receiving zones. Returns the change per zone.
pub fn redistribute_hints(
    slices: &mut [&mut EndpointSlice],
    mut giving: ZoneCounts,
    mut receiving: ZoneCounts,
) -> VecMap<String, i64> {
    let mut moved: VecMap<String, i64> = VecMap::new();
    for slice in slices.iter_mut() {
        for ep in eps_mut(slice).iter_mut() {
            if !endpoint_ready(ep) {
                continue;
            }
            if giving.is_empty() || receiving.is_empty() {
                return moved;
            }
            let zone = match ep.zone.as_deref() {
                Some(z) if !z.is_empty() => z.to_string(),
                _ => continue,
            };
            if giving.get(&zone).copied().unwrap_or(0) == 0 {
                continue;
            }
            let target = match receiving.iter().find(|(_, n)| **n > 0) {
                Some((z, _)) => z.clone(),
                None => continue,
            };
            ep.hints = Some(EndpointHints { for_zones: Some(vec![ForZone { name: target.clone() }]), for_nodes: None });
            decrement(&mut giving, &zone);
            decrement(&mut receiving, &target);
            *moved.entry(target).or_insert(0) += 1;
            *moved.entry(zone).or_insert(0) -= 1;
        }
    }
    moved
}

fn decrement(m: &mut ZoneCounts, k: &str) {
    if let Some(v) = m.get_mut(k) {
        if *v <= 1 {
            m.remove(k);
        } else {
            *v -= 1;
        }
    }
}

fn slice_has_hints(s: &EndpointSlice) -> bool {
    eps(s).iter().any(|e| e.hints.is_some())
}

/// `RemoveHintsFromSlices`: strip hints from the slices being written, and move unchanged slices that
/// carry hints to update without them.
pub fn remove_hints_from_slices(si: &mut SliceInfo) {
    for p in si.to_create.iter_mut().chain(si.to_update.iter_mut()) {
        for ep in eps_mut(&mut p.slice).iter_mut() {
            ep.hints = None;
        }
    }
    let mut kept = Vec::with_capacity(si.unchanged.len());
    for mut s in std::mem::take(&mut si.unchanged) {
        if slice_has_hints(&s) {
            for ep in eps_mut(&mut s).iter_mut() {
                ep.hints = None;
            }
            si.to_update.push(Planned::new(s, Cause::HintsRemoved));
        } else {
            kept.push(s);
        }
    }
    si.unchanged = kept;
}
