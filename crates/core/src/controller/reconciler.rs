//! §4–§7 of the controller spec: `Reconcile` for one Service, per address type, per port map, and
//! `finalize`, which turns the plan into API calls. Each step is its own function.

use crate::vecmap::{VecMap, VecSet};
use std::borrow::Borrow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::desired::{
    address_types_for_service, desired_endpoints, AddressType, DesiredEndpoint, EndpointSet, PortMapKey,
};
use super::plan::{eps, eps_mut, Cause, Event, Planned, SliceInfo};
use super::slices::{new_slice, owned_by, placeholder_equal, slice_labels};
use super::topology::{hints_enabled, remove_hints_from_slices, with_address_type, TopologyCache, MSG_HINTS_DISABLED};
use super::trafficdist::{heuristic, reconcile_hints};
use super::{ANNOTATION_TRIGGER_TIME, CONTROLLER_NAME, DEFAULT_MAX_ENDPOINTS_PER_SLICE};

/// The controller's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ReconcilerOptions {
    /// `--max-endpoints-per-slice` (the flag accepts 1..=1000; values below 1 are treated as 1).
    pub max_endpoints_per_slice: usize,
    /// The managed-by value written on slices.
    pub controller_name: String,
    /// Whether the topology cache exists (it does in a real kube-controller-manager).
    pub topology_cache: bool,
    /// The PreferSameTrafficDistribution option (PreferSameZone and PreferSameNode).
    pub prefer_same_traffic_distribution: bool,
}

impl Default for ReconcilerOptions {
    fn default() -> Self {
        ReconcilerOptions {
            max_endpoints_per_slice: DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            controller_name: CONTROLLER_NAME.to_string(),
            topology_cache: true,
            prefer_same_traffic_distribution: true,
        }
    }
}

/// An API verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verb {
    Create,
    Update,
    Delete,
}

/// One API call of `finalize`, in the order it is issued, with the step that caused it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiCall {
    pub verb: Verb,
    pub slice: EndpointSlice,
    pub cause: Cause,
}

/// What one address type's sync did, as the controller's metrics see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncMetrics {
    pub address_type: String,
    pub added: usize,
    pub removed: usize,
    pub desired_slices: usize,
    pub actual_slices: usize,
    pub desired_endpoints: usize,
    pub creates: usize,
    pub updates: usize,
    pub deletes: usize,
}

/// The outcome of one `Reconcile`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReconcileResult {
    /// Creates, then updates, then deletes of each address type in turn; unsupported-type deletes last.
    pub calls: Vec<ApiCall>,
    pub events: Vec<Event>,
    /// Errors, each once (the slices were still written).
    pub errors: Vec<String>,
    pub metrics: Vec<SyncMetrics>,
}

impl ReconcileResult {
    /// The error `Reconcile` returns, formatted like Kubernetes' aggregate errors.
    pub fn error(&self) -> Option<String> {
        match self.errors.len() {
            0 => None,
            1 => Some(self.errors[0].clone()),
            _ => Some(format!("[{}]", self.errors.join(", "))),
        }
    }

    pub fn count(&self, verb: Verb) -> usize {
        self.calls.iter().filter(|c| c.verb == verb).count()
    }
}

/// The EndpointSlice reconciler, with its topology cache (which keeps state between syncs).
#[derive(Clone, Debug)]
pub struct Reconciler {
    pub options: ReconcilerOptions,
    pub topology: Option<TopologyCache>,
}

/// "namespace/name".
pub fn service_key(svc: &Service) -> String {
    format!("{}/{}", svc.metadata.namespace.as_deref().unwrap_or(""), svc.metadata.name.as_deref().unwrap_or(""))
}

struct PortMapOutcome {
    to_create: Vec<Planned>,
    to_update: Vec<Planned>,
    to_delete: Vec<Planned>,
    added: usize,
    removed: usize,
}

impl Reconciler {
    pub fn new(options: ReconcilerOptions) -> Self {
        let topology = options.topology_cache.then(TopologyCache::new);
        Reconciler { options, topology }
    }

    /// Feed the Nodes to the topology cache (§8.2).
    pub fn set_nodes<N: Borrow<Node>>(&mut self, nodes: &[N]) {
        if let Some(t) = self.topology.as_mut() {
            t.set_nodes(nodes);
        }
    }

    fn max(&self) -> usize {
        self.options.max_endpoints_per_slice.max(1)
    }

    /// `Reconcile(service, pods, existingSlices)` with a zero trigger time. `pods` are the pods that
    /// match the selector; `nodes` is the node cache; `existing` the slices managed by this controller.
    pub fn reconcile<P: Borrow<Pod>, N: Borrow<Node>>(
        &mut self,
        svc: &Service,
        pods: &[P],
        nodes: &[N],
        existing: &[EndpointSlice],
    ) -> ReconcileResult {
        self.reconcile_at(svc, pods, nodes, existing, None)
    }

    /// `Reconcile` with a trigger time (RFC 3339), written as the last-change-trigger-time annotation.
    pub fn reconcile_at<P: Borrow<Pod>, N: Borrow<Node>>(
        &mut self,
        svc: &Service,
        pods: &[P],
        nodes: &[N],
        existing: &[EndpointSlice],
        trigger_time: Option<&str>,
    ) -> ReconcileResult {
        self.reconcile_slices(svc, pods, nodes, existing.iter(), trigger_time)
    }

    /// `reconcile_at` over borrowed existing slices (the simulation passes its informer's objects).
    pub fn reconcile_slices<'s, P: Borrow<Pod>, N: Borrow<Node>>(
        &mut self,
        svc: &Service,
        pods: &[P],
        nodes: &[N],
        existing: impl IntoIterator<Item = &'s EndpointSlice>,
        trigger_time: Option<&str>,
    ) -> ReconcileResult {
        let node_map: VecMap<&str, &Node> =
            VecMap::from_iter(nodes.iter().map(|n| n.borrow()).map(|n| (n.metadata.name.as_deref().unwrap_or(""), n)));
        let types = address_types_for_service(svc);
        let key = service_key(svc);

        // §4 step 1: split the existing slices by address type.
        let mut by_type: VecMap<AddressType, Vec<&EndpointSlice>> = VecMap::new();
        let mut unsupported = Vec::new();
        for s in existing {
            match AddressType::parse(&s.address_type).filter(|t| types.contains(t)) {
                Some(t) => by_type.entry(t).or_default().push(s),
                None => {
                    if let Some(tc) = self.topology.as_mut() {
                        tc.remove_hints(&key, &s.address_type);
                    }
                    unsupported.push(s);
                }
            }
        }

        // §4 step 2: each supported address type on its own.
        let mut result = ReconcileResult::default();
        for t in types {
            let slices = by_type.remove(&t).unwrap_or_default();
            self.reconcile_by_address_type(svc, pods, &node_map, &slices, t, trigger_time, &mut result);
        }

        // §4 step 3: plain deletes of unsupported address types, never recycled.
        for s in unsupported {
            result.calls.push(ApiCall { verb: Verb::Delete, slice: s.clone(), cause: Cause::UnsupportedAddressType });
        }
        let mut seen = VecSet::new();
        result.errors.retain(|e| seen.insert(e.clone()));
        result
    }

    /// §5 `reconcileByAddressType`.
    #[allow(clippy::too_many_arguments)]
    fn reconcile_by_address_type<P: Borrow<Pod>>(
        &mut self,
        svc: &Service,
        pods: &[P],
        nodes: &VecMap<&str, &Node>,
        existing: &[&EndpointSlice],
        at: AddressType,
        trigger_time: Option<&str>,
        result: &mut ReconcileResult,
    ) {
        let max = self.max();
        let name = self.options.controller_name.clone();
        let mut to_create: Vec<Planned> = Vec::new();
        let mut to_update: Vec<Planned> = Vec::new();
        let mut to_delete: Vec<Planned> = Vec::new();

        // Step 1: owned slices by port map; others are deleted.
        let mut existing_by_pm: Vec<(PortMapKey, Vec<&EndpointSlice>)> = Vec::new();
        for s in existing {
            if owned_by(s, svc) {
                let k = PortMapKey::new(s.ports.as_deref());
                match existing_by_pm.iter_mut().find(|(pk, _)| *pk == k) {
                    Some((_, v)) => v.push(s),
                    None => existing_by_pm.push((k, vec![s])),
                }
            } else {
                to_delete.push(Planned::new((*s).clone(), Cause::NotOwned));
            }
        }

        // Step 2: the desired endpoints.
        let mut desired = desired_endpoints(svc, pods, nodes, at);
        result.errors.append(&mut desired.errors);

        // Step 3: each desired port map.
        let mut metrics = SyncMetrics { address_type: at.as_str().into(), ..Default::default() };
        let mut per_pm: VecMap<PortMapKey, (usize, usize)> = VecMap::new();
        for (k, ports, set) in desired.port_maps.iter_mut() {
            let num_endpoints = set.len();
            let existing_pm: &[&EndpointSlice] =
                existing_by_pm.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_slice()).unwrap_or(&[]);
            let out = self.reconcile_by_port_mapping(svc, existing_pm, set, ports, at, max, &name);
            metrics.added += out.added;
            metrics.removed += out.removed;
            let slices = (existing_pm.len() + out.to_create.len()).saturating_sub(out.to_delete.len());
            per_pm.insert(k.clone(), (num_endpoints, slices));
            to_create.extend(out.to_create);
            to_update.extend(out.to_update);
            to_delete.extend(out.to_delete);
        }

        // Step 4: port maps no longer desired.
        for (k, slices) in &existing_by_pm {
            if desired.find(k).is_none() {
                to_delete.extend(slices.iter().map(|s| Planned::new((*s).clone(), Cause::PortMapGone)));
            }
        }

        // Step 5: the placeholder rule.
        self.apply_placeholder_rule(svc, existing.len(), at, &name, &mut to_create, &mut to_delete, &mut per_pm);

        metrics.desired_endpoints = per_pm.values().map(|(e, _)| e).sum();
        metrics.actual_slices = per_pm.values().map(|(_, s)| s).sum();
        metrics.desired_slices = per_pm.values().map(|(e, _)| e.div_ceil(max)).sum::<usize>().max(1);

        // Step 6: hints.
        let update_names: VecSet<&str> =
            VecSet::from_iter(to_update.iter().chain(to_delete.iter()).filter_map(|p| p.slice.metadata.name.as_deref()));
        let unchanged: Vec<&EndpointSlice> = existing
            .iter()
            .filter(|s| !update_names.contains(s.metadata.name.as_deref().unwrap_or("")))
            .copied()
            .collect();
        let mut si = SliceInfo {
            service_key: service_key(svc),
            address_type: at.as_str().into(),
            to_create,
            to_update,
            unchanged: Vec::new(),
        };
        self.apply_hints(svc, &mut si, &unchanged, result);

        // Step 7: finalize.
        let calls = finalize(svc, si.to_create, si.to_update, to_delete, trigger_time);
        metrics.creates = calls.iter().filter(|c| c.verb == Verb::Create).count();
        metrics.updates = calls.iter().filter(|c| c.verb == Verb::Update).count();
        metrics.deletes = calls.iter().filter(|c| c.verb == Verb::Delete).count();
        result.calls.extend(calls);
        result.metrics.push(metrics);
    }

    /// §5 step 5: when every existing slice of the type is to be deleted and nothing is to be
    /// created, keep (or make) exactly one empty placeholder slice.
    #[allow(clippy::too_many_arguments)]
    fn apply_placeholder_rule(
        &self,
        svc: &Service,
        existing_len: usize,
        at: AddressType,
        controller_name: &str,
        to_create: &mut Vec<Planned>,
        to_delete: &mut Vec<Planned>,
        per_pm: &mut VecMap<PortMapKey, (usize, usize)>,
    ) {
        if existing_len != to_delete.len() || !to_create.is_empty() {
            return;
        }
        let placeholder = new_slice(svc, Vec::new(), at, controller_name);
        if to_delete.len() == 1 && placeholder_equal(Some(&to_delete[0].slice), Some(&placeholder)) {
            to_delete.clear();
        } else {
            to_create.push(Planned::new(placeholder, Cause::Placeholder));
        }
        per_pm.insert(PortMapKey::new(None), (0, 1));
    }

    /// §6 `reconcileByPortMapping`: the packing algorithm for one port map.
    #[allow(clippy::too_many_arguments)]
    fn reconcile_by_port_mapping(
        &self,
        svc: &Service,
        existing: &[&EndpointSlice],
        desired: &mut EndpointSet,
        ports: &[EndpointPort],
        at: AddressType,
        max: usize,
        controller_name: &str,
    ) -> PortMapOutcome {
        let mut to_update: Vec<Planned> = Vec::new();
        let mut to_delete: Vec<Planned> = Vec::new();
        let mut unchanged: Vec<&EndpointSlice> = Vec::new();
        let mut removed = 0;

        // Step 1: walk the existing slices in list order.
        for s in existing {
            let mut kept = Vec::with_capacity(eps(s).len());
            let mut changed = false;
            for ep in eps(s) {
                if let Some(d) = desired.remove_matching(ep) {
                    changed |= d.changed_from(ep);
                    kept.push(d);
                }
            }
            let (labels, labels_changed) = slice_labels(s.metadata.labels.as_ref(), svc, controller_name);
            if changed || kept.len() != eps(s).len() {
                removed += eps(s).len().saturating_sub(kept.len());
                if kept.is_empty() {
                    to_delete.push(Planned::new((*s).clone(), Cause::Emptied));
                } else {
                    // A copy of the slice with its endpoints replaced (the old ones are not copied).
                    let c = EndpointSlice {
                        address_type: s.address_type.clone(),
                        endpoints: Some(kept.iter().map(DesiredEndpoint::build).collect()),
                        metadata: ObjectMeta { labels: Some(labels), ..s.metadata.clone() },
                        ports: s.ports.clone(),
                    };
                    to_update.push(Planned::new(c, Cause::EndpointsChanged));
                }
            } else if labels_changed {
                let mut c = (*s).clone();
                c.metadata.labels = Some(labels);
                to_update.push(Planned::new(c, Cause::LabelsChanged));
            } else {
                unchanged.push(s);
            }
        }
        let added = desired.len();

        // Step 2: top up the slices already being updated, largest first.
        if !desired.is_empty() && !to_update.is_empty() {
            crate::sort::by(&mut to_update, |a, b| eps(&b.slice).len().cmp(&eps(&a.slice).len()));
            for p in to_update.iter_mut() {
                p.topped_up += fill(&mut p.slice, desired, max);
                if desired.is_empty() {
                    break;
                }
            }
        }

        // Step 3: place what is left: full new slices, then the remainder into one best-fitting
        // unchanged slice if one can hold all of it, else one more new slice.
        let mut to_create = Vec::new();
        while !desired.is_empty() {
            let mut target = None;
            if desired.len() < max && !unchanged.is_empty() {
                if let Some(i) = slice_to_fill(&unchanged, desired.len(), max) {
                    target = Some(unchanged.remove(i));
                }
            }
            match target {
                Some(s) => {
                    let mut p = Planned::new(s.clone(), Cause::FilledUnchangedSlice);
                    fill(&mut p.slice, desired, max);
                    to_update.push(p);
                }
                None => {
                    let mut s = new_slice(svc, ports.to_vec(), at, controller_name);
                    fill(&mut s, desired, max);
                    to_create.push(Planned::new(s, Cause::NewSlice));
                }
            }
        }
        PortMapOutcome { to_create, to_update, to_delete, added, removed }
    }

    /// §5 step 6: topology hints (§8), or their removal, or trafficDistribution hints (§9).
    /// The unchanged slices are cloned into `si` only when hints are in use; when hints are only being
    /// stripped, just the unchanged slices that carry hints are copied.
    fn apply_hints(
        &mut self,
        svc: &Service,
        si: &mut SliceInfo,
        unchanged: &[&EndpointSlice],
        result: &mut ReconcileResult,
    ) {
        let annotation = hints_enabled(svc);
        let td_value = svc.spec.as_ref().and_then(|s| s.traffic_distribution.as_deref());
        let td = heuristic(td_value, self.options.prefer_same_traffic_distribution).filter(|_| !annotation);
        let uses_hints = td.is_some() || (annotation && self.topology.is_some());
        if uses_hints {
            si.unchanged = unchanged.iter().map(|s| (*s).clone()).collect();
        } else {
            si.unchanged = unchanged.iter().filter(|s| eps(s).iter().any(|e| e.hints.is_some())).map(|s| (*s).clone()).collect();
        }
        match self.topology.as_mut() {
            Some(tc) if annotation => {
                result.events.extend(tc.add_hints(si));
            }
            tc => {
                if let Some(tc) = tc {
                    if tc.has_populated_hints(&si.service_key) {
                        result.events.push(Event::warning(
                            "TopologyAwareHintsDisabled",
                            with_address_type(MSG_HINTS_DISABLED, &si.address_type),
                        ));
                    }
                    tc.remove_hints(&si.service_key, &si.address_type);
                }
                if td.is_none() {
                    remove_hints_from_slices(si);
                }
            }
        }
        if let Some(h) = td {
            reconcile_hints(si, h);
        }
    }
}

/// Append endpoints from the desired set until the slice holds `max`. Returns how many were added.
fn fill(slice: &mut EndpointSlice, desired: &mut EndpointSet, max: usize) -> usize {
    let mut n = 0;
    while eps(slice).len() < max {
        match desired.pop_any() {
            Some(ep) => {
                eps_mut(slice).push(ep.build());
                n += 1;
            }
            None => break,
        }
    }
    n
}

/// §6 step 3 (`getSliceToFill`): the unchanged slice that ends closest to full after taking `n`
/// endpoints; the first one found wins ties; a perfect fit is taken at once.
pub fn slice_to_fill(unchanged: &[&EndpointSlice], n: usize, max: usize) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, s) in unchanged.iter().enumerate() {
        let total = n + eps(s).len();
        if total > max {
            continue;
        }
        let diff = max - total;
        if best.is_none_or(|(_, d)| diff < d) {
            best = Some((i, diff));
            if diff == 0 {
                break;
            }
        }
    }
    best.map(|(i, _)| i)
}

/// §7 `finalize`: recycle creates into updates of owned slices of the same address type that were to
/// be deleted; skip creates when the Service is being deleted; then creates, updates, deletes.
pub fn finalize(
    svc: &Service,
    mut to_create: Vec<Planned>,
    mut to_update: Vec<Planned>,
    mut to_delete: Vec<Planned>,
    trigger_time: Option<&str>,
) -> Vec<ApiCall> {
    let mut i = 0;
    while i < to_delete.len() {
        let Some(last) = to_create.last() else { break };
        let del = &to_delete[i];
        if del.slice.address_type == last.slice.address_type && owned_by(&del.slice, svc) {
            let del = to_delete.remove(i);
            if let Some(mut c) = to_create.pop() {
                c.slice.metadata.name = del.slice.metadata.name.clone();
                c.cause = Cause::Recycled { created_for: Box::new(c.cause), replaced: Box::new(del.cause) };
                to_update.push(c);
            }
        } else {
            i += 1;
        }
    }
    if svc.metadata.deletion_timestamp.is_some() {
        to_create.clear();
    }
    let mut calls = Vec::with_capacity(to_create.len() + to_update.len() + to_delete.len());
    for (verb, list) in [(Verb::Create, to_create), (Verb::Update, to_update)] {
        for mut p in list {
            set_trigger_time(&mut p.slice, trigger_time);
            calls.push(ApiCall { verb, slice: p.slice, cause: p.cause });
        }
    }
    for p in to_delete {
        calls.push(ApiCall { verb: Verb::Delete, slice: p.slice, cause: p.cause });
    }
    calls
}

fn set_trigger_time(slice: &mut EndpointSlice, trigger_time: Option<&str>) {
    let ann = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger_time {
        Some(t) => {
            ann.insert(ANNOTATION_TRIGGER_TIME.into(), t.into());
        }
        None => {
            ann.remove(ANNOTATION_TRIGGER_TIME);
        }
    }
    if ann.is_empty() {
        slice.metadata.annotations = None;
    }
}
