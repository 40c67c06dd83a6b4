//! The EndpointSlice cache of one kube-proxy (one node, one IP family): §2 and §3 of the spec.
//!
//! Slices are grouped by namespace and the `kubernetes.io/service-name` label, and keyed by slice name
//! inside a Service (a re-sent slice replaces its earlier copy). Each slice is parsed once when it
//! arrives; the merge of a Service (per port name and protocol, deduplicated by `ip:port`, text-sorted)
//! is computed lazily and cached until one of its slices changes, so a sync touches only the Services
//! whose slices changed.

use crate::vecmap::VecMap;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use rustc_hash::FxHashMap;

use super::policy::PortState;
use super::{Endpoint, Protocol, ServicePortName, LABEL_HEADLESS, LABEL_SERVICE_NAME, LABEL_SERVICE_PROXY_NAME};
use crate::ip::parse_ip_sloppy;
use crate::IpFamily;

/// The merged endpoints of one service port, in text order of `ip:port`.
pub type EndpointList = Arc<Vec<Arc<Endpoint>>>;

/// The merged endpoints of one Service: per (port name, protocol).
pub type ServiceEndpoints = VecMap<(String, Protocol), EndpointList>;

/// `(namespace, service name)`.
pub type ServiceKey = (String, String);

/// What an update did to the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SliceChange {
    /// The slice is not for this proxy (§2); the reason.
    Ignored(&'static str),
    /// Same content as the stored copy: no sync needed.
    Unchanged,
    /// The Service whose endpoints may have changed.
    Changed(ServiceKey),
}

/// Something that holds an EndpointSlice: the slice itself, or an object wrapping one (the
/// simulation's API objects). The cache keeps the holder, shared, rather than a copy of the slice.
/// (Not `Debug`: a vtable entry would keep every wrapped type's `Debug` code in the WebAssembly.)
pub trait SliceSource: Send + Sync {
    /// The slice held (`None` if the holder holds something else: never stored then).
    fn slice(&self) -> Option<&EndpointSlice>;
}

impl SliceSource for EndpointSlice {
    fn slice(&self) -> Option<&EndpointSlice> {
        Some(self)
    }
}

/// The slice a stored entry was read from: change detection compares everything kube-proxy reads
/// of it (address type, ports, endpoints in order, labels).
#[derive(Clone)]
struct SliceData {
    source: Arc<dyn SliceSource>,
}

impl std::fmt::Debug for SliceData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.source.slice();
        f.debug_struct("SliceData").field("name", &s.and_then(|s| s.metadata.name.as_deref())).finish()
    }
}

/// A slice's contribution per (port name, protocol), in slice order.
type ParsedPorts = Vec<((String, Protocol), Vec<Arc<Endpoint>>)>;

/// A slice read once for every node's cache: nothing in it depends on the node (whether an endpoint
/// is local is decided when it is used).
#[derive(Clone, Debug)]
pub struct PreparedSlice {
    data: Arc<SliceData>,
    parsed: Arc<ParsedPorts>,
    read_node_hints: bool,
}

/// Read a slice for the caches of many nodes at once (the cache keeps a copy of it).
pub fn prepare(slice: &EndpointSlice, read_node_hints: bool) -> PreparedSlice {
    PreparedSlice { data: Arc::new(SliceData::of(slice)), parsed: Arc::new(parse(slice, read_node_hints)), read_node_hints }
}

/// Read the slice an object holds for the caches of many nodes; the caches keep the object itself
/// (shared, not copied). `None` if it holds no slice.
pub fn prepare_from(source: Arc<dyn SliceSource>, read_node_hints: bool) -> Option<PreparedSlice> {
    let parsed = Arc::new(parse(source.slice()?, read_node_hints));
    Some(PreparedSlice { data: Arc::new(SliceData { source }), parsed, read_node_hints })
}

impl PreparedSlice {
    pub fn reads_node_hints(&self) -> bool {
        self.read_node_hints
    }
}

impl SliceData {
    fn of(slice: &EndpointSlice) -> SliceData {
        SliceData { source: Arc::new(slice.clone()) }
    }

    fn same_as(&self, slice: &EndpointSlice) -> bool {
        self.source.slice().is_some_and(|s| {
            s.address_type == slice.address_type
                && s.ports == slice.ports
                && s.endpoints == slice.endpoints
                && s.metadata.labels == slice.metadata.labels
        })
    }
}

#[derive(Clone, Debug)]
struct StoredSlice {
    /// Shared, so that copies of the cache (simulation snapshots) are cheap.
    data: Arc<SliceData>,
    /// Per (port name, protocol): the endpoints this slice contributes, in slice order.
    parsed: Arc<ParsedPorts>,
}

#[derive(Clone, Debug, Default)]
struct ServiceSlices {
    slices: VecMap<String, StoredSlice>,
    merged: Option<Arc<ServiceEndpoints>>,
}

/// The slices one merge was made from: names and readings, in name order.
type MergeInputs = Vec<(String, Arc<ParsedPorts>)>;

/// Merges and synced port states shared between the kube-proxies of many nodes. The merge of a
/// Service's slices does not depend on the node (whether an endpoint is the node's own is decided at
/// use), so nodes holding the very same readings of the same slices share one merge; and nodes whose
/// sync of a service port came out the same (the usual case: only local sets and topology differ)
/// share one `PortState`. A pure cache: the answers are the same with or without it; it only makes
/// syncs and simulation snapshots cheaper.
#[derive(Clone, Debug, Default)]
pub struct SharedMerges(Arc<std::sync::Mutex<Shared>>);

#[derive(Debug, Default)]
struct Shared {
    merges: FxHashMap<ServiceKey, Vec<(MergeInputs, Arc<ServiceEndpoints>)>>,
    ports: FxHashMap<ServicePortName, Vec<Arc<PortState>>>,
    /// Synced port states by what categorising read besides the endpoints and the port: the
    /// zone, the node (only when it matters: `categorize::node_matters`) and the gates.
    categorized: FxHashMap<ServicePortName, Vec<(CatInputs, Arc<PortState>)>>,
}

/// What `categorize` reads of a node (see `SharedMerges::categorized`).
#[derive(Debug, PartialEq, Eq)]
pub struct CatInputs {
    pub zone: Option<String>,
    pub node: Option<String>,
    pub gates: super::Gates,
}

/// Keep the newest `KEEP` entries of a memo list.
fn keep_newest<T>(kept: &mut Vec<T>, item: T) {
    keep_newest_of(SharedMerges::KEEP, kept, item);
}

fn keep_newest_of<T>(keep: usize, kept: &mut Vec<T>, item: T) {
    if kept.len() >= keep {
        kept.remove(0);
    }
    kept.push(item);
}

impl SharedMerges {
    /// How many different versions are kept per Service or port (nodes behind the others hold
    /// older ones).
    const KEEP: usize = 4;

    /// A port state already synced from these very endpoints, for this port, by a node that
    /// categorising could not tell from this one (`inputs`).
    fn categorized(&self, endpoints: &EndpointList, info: &super::service::ServicePortInfo, inputs: &CatInputs) -> Option<Arc<PortState>> {
        let memo = self.0.lock().ok()?;
        let kept = memo.categorized.get(&info.name)?;
        kept.iter()
            .rev()
            .find(|(i, ps)| Arc::ptr_eq(&ps.endpoints, endpoints) && *ps.info == *info && i == inputs)
            .map(|(_, ps)| ps.clone())
    }

    fn remember_categorized(&self, inputs: CatInputs, ps: Arc<PortState>) {
        if let Ok(mut memo) = self.0.lock() {
            // A few zones times a few versions in flight (nodes behind the others).
            let kept = memo.categorized.entry(ps.info.name.clone()).or_default();
            keep_newest_of(4 * Self::KEEP, kept, (inputs, ps));
        }
    }

    /// One `PortState` for every node whose sync of the port gave the same state.
    fn intern_port(&self, ps: PortState) -> Arc<PortState> {
        let Ok(mut memo) = self.0.lock() else { return Arc::new(ps) };
        let kept = memo.ports.entry(ps.info.name.clone()).or_default();
        let found = kept.iter().find(|k| Arc::ptr_eq(&k.endpoints, &ps.endpoints) && k.info == ps.info && k.cat == ps.cat);
        if let Some(k) = found {
            return k.clone();
        }
        let ps = Arc::new(ps);
        keep_newest(kept, ps.clone());
        ps
    }

    fn merge(&self, key: &ServiceKey, slices: &VecMap<String, StoredSlice>) -> Arc<ServiceEndpoints> {
        let same = |inputs: &MergeInputs| {
            inputs.len() == slices.len()
                && inputs.iter().zip(slices).all(|((n, p), (name, s))| Arc::ptr_eq(p, &s.parsed) && n == name)
        };
        let Ok(mut memo) = self.0.lock() else { return Arc::new(merge(slices.values())) };
        let kept = memo.merges.entry(key.clone()).or_default();
        if let Some(i) = kept.iter().position(|(inputs, _)| same(inputs)) {
            return kept[i].1.clone();
        }
        let merged = Arc::new(merge(slices.values()));
        keep_newest(kept, (slices.iter().map(|(n, s)| (n.clone(), s.parsed.clone())).collect(), merged.clone()));
        merged
    }
}

/// The slice cache of one kube-proxy instance.
#[derive(Clone, Debug)]
pub struct SliceCache {
    node_name: String,
    family: IpFamily,
    read_node_hints: bool,
    services: VecMap<ServiceKey, ServiceSlices>,
    /// Merges shared with other nodes' caches, when the owner set one up.
    shared: Option<SharedMerges>,
}

impl SliceCache {
    /// A cache for the proxy on `node_name`, handling `family`; node hints are kept only when
    /// `read_node_hints` (the PreferSameTrafficDistribution gate) is on.
    pub fn new(node_name: &str, family: IpFamily, read_node_hints: bool) -> Self {
        SliceCache {
            node_name: node_name.into(),
            family,
            read_node_hints,
            services: VecMap::new(),
            shared: None,
        }
    }

    /// Share merges with the caches of other nodes (see `SharedMerges`).
    pub fn share_merges(&mut self, shared: SharedMerges) {
        self.shared = Some(shared);
    }

    /// A port state synced by another node from the same endpoints and port, where categorising
    /// reads the same of both nodes (see `SharedMerges`).
    pub fn categorized(&self, endpoints: &EndpointList, info: &super::service::ServicePortInfo, inputs: &CatInputs) -> Option<Arc<PortState>> {
        self.shared.as_ref()?.categorized(endpoints, info, inputs)
    }

    /// Remember a synced port state for `categorized`.
    pub fn remember_categorized(&self, inputs: CatInputs, ps: Arc<PortState>) {
        if let Some(shared) = &self.shared {
            shared.remember_categorized(inputs, ps);
        }
    }

    /// A synced port state, shared with other nodes that synced the same one (see `SharedMerges`).
    pub fn intern_port(&self, ps: PortState) -> Arc<PortState> {
        match &self.shared {
            Some(shared) => shared.intern_port(ps),
            None => Arc::new(ps),
        }
    }

    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Why a slice is ignored (§2), if it is.
    pub fn ignore_reason(&self, slice: &EndpointSlice) -> Option<&'static str> {
        let labels = slice.metadata.labels.as_ref();
        if labels.and_then(|l| l.get(LABEL_SERVICE_NAME)).is_none_or(|s| s.is_empty()) {
            return Some("no kubernetes.io/service-name label");
        }
        if labels.is_some_and(|l| l.contains_key(LABEL_SERVICE_PROXY_NAME)) {
            return Some("belongs to another proxy (service.kubernetes.io/service-proxy-name)");
        }
        if labels.is_some_and(|l| l.contains_key(LABEL_HEADLESS)) {
            return Some("headless Service (service.kubernetes.io/headless)");
        }
        if slice.address_type != self.family.address_type() {
            return Some("address type of another family");
        }
        None
    }

    /// Add or replace a slice. Returns whether the Service's endpoints may have changed.
    pub fn update(&mut self, slice: &EndpointSlice) -> SliceChange {
        self.update_with(slice, None)
    }

    /// `update` with the slice already read by `prepare` (shared between nodes).
    pub fn update_prepared(&mut self, slice: &EndpointSlice, prepared: &PreparedSlice) -> SliceChange {
        self.update_with(slice, Some(prepared).filter(|p| p.read_node_hints == self.read_node_hints))
    }

    fn update_with(&mut self, slice: &EndpointSlice, prepared: Option<&PreparedSlice>) -> SliceChange {
        let ns = slice.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = slice.metadata.name.clone().unwrap_or_default();
        if let Some(reason) = self.ignore_reason(slice) {
            // A slice that stops being ours is a deletion of the stored copy.
            return match self.remove(&ns, &name) {
                Some(key) => SliceChange::Changed(key),
                None => SliceChange::Ignored(reason),
            };
        }
        let svc = slice.metadata.labels.as_ref().and_then(|l| l.get(LABEL_SERVICE_NAME)).cloned().unwrap_or_default();
        let key: ServiceKey = (ns.clone(), svc);
        // Moved to another Service: drop the old copy first.
        let mut moved = None;
        if self.owner(&ns, &name).is_some_and(|old| *old != key) {
            moved = self.remove(&ns, &name);
        }
        let entry = self.services.entry(key.clone()).or_default();
        if moved.is_none() {
            if let Some(stored) = entry.slices.get(&name) {
                // Compared in place: the copy is made only when something changed.
                let same = prepared.is_some_and(|p| Arc::ptr_eq(&p.data, &stored.data)) || stored.data.same_as(slice);
                if same {
                    return SliceChange::Unchanged;
                }
            }
        }
        let stored = match prepared {
            Some(p) => StoredSlice { data: p.data.clone(), parsed: p.parsed.clone() },
            None => StoredSlice { data: Arc::new(SliceData::of(slice)), parsed: Arc::new(parse(slice, self.read_node_hints)) },
        };
        let entry = self.services.entry(key.clone()).or_default();
        entry.slices.insert(name.clone(), stored);
        entry.merged = None;
        SliceChange::Changed(key)
    }

    /// Delete a slice by namespace and name; returns the Service it belonged to, if it was stored.
    pub fn remove(&mut self, namespace: &str, name: &str) -> Option<ServiceKey> {
        let key = self.owner(namespace, name)?.clone();
        if let Some(s) = self.services.get_mut(&key) {
            s.slices.remove(name);
            s.merged = None;
            if s.slices.is_empty() {
                self.services.remove(&key);
            }
        }
        Some(key)
    }

    /// The Service a slice is filed under. (Found by looking: a node has few Services, and a table
    /// of its own would be copied into every snapshot of every node.)
    fn owner(&self, namespace: &str, name: &str) -> Option<&ServiceKey> {
        self.services.iter().find(|(k, s)| k.0 == namespace && s.slices.contains_key(name)).map(|(k, _)| k)
    }

    /// Delete a slice object.
    pub fn delete(&mut self, slice: &EndpointSlice) -> Option<ServiceKey> {
        let ns = slice.metadata.namespace.as_deref().unwrap_or("default");
        self.remove(ns, slice.metadata.name.as_deref().unwrap_or(""))
    }

    /// The Services that have at least one stored slice.
    pub fn service_keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services.keys()
    }

    /// The names of a Service's stored slices.
    pub fn slice_names(&self, key: &ServiceKey) -> Vec<String> {
        self.services.get(key).map(|s| s.slices.keys().cloned().collect()).unwrap_or_default()
    }

    /// The merged endpoints of a Service (§3.2–§3.6), computed once per change.
    pub fn service_endpoints(&mut self, key: &ServiceKey) -> Arc<ServiceEndpoints> {
        let Some(s) = self.services.get_mut(key) else { return Arc::new(VecMap::new()) };
        if let Some(m) = &s.merged {
            return m.clone();
        }
        // Which endpoints are this node's own (§3.3) is decided at use (`Endpoint::local_to`), so the
        // merge is the same on every node.
        let merged = match &self.shared {
            Some(shared) => shared.merge(key, &s.slices),
            None => Arc::new(merge(s.slices.values())),
        };
        s.merged = Some(merged.clone());
        merged
    }

    /// The merged endpoints of every Service, by service port name, as kube-proxy's EndpointsMap
    /// holds them: with this node's own endpoints marked `is_local` (on copies; the shared merges
    /// are left unmarked).
    pub fn endpoints_map(&mut self) -> VecMap<ServicePortName, EndpointList> {
        let keys: Vec<ServiceKey> = self.services.keys().cloned().collect();
        let mut out = VecMap::new();
        for key in keys {
            for ((port, proto), eps) in self.service_endpoints(&key).iter() {
                let marked = eps
                    .iter()
                    .map(|e| match e.local_to(&self.node_name) && !e.is_local {
                        true => Arc::new(Endpoint { is_local: true, ..(**e).clone() }),
                        false => e.clone(),
                    })
                    .collect();
                out.insert(ServicePortName::new(&key.0, &key.1, port, *proto), Arc::new(marked));
            }
        }
        out
    }

    /// For the health-check server (§5): per Service (`ns/name`), the number of distinct local **ready**
    /// endpoint IPs; Services with none are left out.
    pub fn local_ready_endpoints(&mut self) -> VecMap<String, usize> {
        let keys: Vec<ServiceKey> = self.services.keys().cloned().collect();
        let mut out = VecMap::new();
        for key in keys {
            let m = self.service_endpoints(&key);
            let mut ips: Vec<&str> =
                m.values().flat_map(|l| l.iter()).filter(|e| e.local_to(&self.node_name) && e.ready).map(|e| e.ip.as_str()).collect();
            crate::sort::all(&mut ips);
            ips.dedup();
            if !ips.is_empty() {
                out.insert(format!("{}/{}", key.0, key.1), ips.len());
            }
        }
        out
    }
}

/// §3.4–§3.6: merge slices (visited in slice-name order) per port; dedup by `ip:port`, a later duplicate
/// replacing an earlier one only when it is not terminating; then sort by the endpoint string as text.
/// A slice's endpoints per (port name, protocol), in slice order; `is_local` is left false.
fn parse(slice: &EndpointSlice, read_node_hints: bool) -> ParsedPorts {
    let mut out = Vec::new();
    for port in slice.ports.iter().flatten() {
        // §3.1: a port with no name, or no (or a zero) number, is skipped.
        let Some(port_name) = port.name.as_ref() else { continue };
        let Some(number) = port.port.filter(|p| (1..=65535).contains(p)) else { continue };
        let Ok(protocol) = Protocol::parse(port.protocol.as_deref()) else { continue };
        let mut eps = Vec::with_capacity(slice.endpoints.as_ref().map_or(0, Vec::len));
        for ep in slice.endpoints.iter().flatten() {
            // §3.3: no addresses → skipped; only addresses[0], canonical.
            let Some(first) = ep.addresses.first() else { continue };
            let Some(addr) = parse_ip_sloppy(first) else { continue };
            let mut e = Endpoint::from_addr(addr, number as u16);
            let cond = ep.conditions.as_ref();
            e.ready = cond.and_then(|c| c.ready).unwrap_or(true);
            e.serving = cond.and_then(|c| c.serving).unwrap_or(true);
            e.terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
            if let Some(h) = ep.hints.as_ref() {
                if let Some(z) = h.for_zones.as_ref() {
                    let mut v: Vec<String> = z.iter().map(|z| z.name.clone()).collect();
                    crate::sort::all(&mut v);
                    v.dedup();
                    e.zone_hints = v;
                }
                if read_node_hints {
                    if let Some(n) = h.for_nodes.as_ref() {
                        let mut v: Vec<String> = n.iter().map(|n| n.name.clone()).collect();
                        crate::sort::all(&mut v);
                        v.dedup();
                        e.node_hints = v;
                    }
                }
            }
            e.node_name = ep.node_name.clone();
            e.zone = ep.zone.clone();
            eps.push(Arc::new(e));
        }
        out.push(((port_name.clone(), protocol), eps));
    }
    out
}

fn merge<'a>(slices: impl Iterator<Item = &'a StoredSlice>) -> ServiceEndpoints {
    type Bucket<'b> = (Vec<Arc<Endpoint>>, FxHashMap<&'b str, usize>);
    let mut buckets: VecMap<(String, Protocol), Bucket> = VecMap::new();
    for s in slices {
        for (key, eps) in s.parsed.iter() {
            let (list, index) = buckets.entry(key.clone()).or_default();
            for e in eps {
                match index.get(e.endpoint.as_str()) {
                    Some(&i) => {
                        if !e.terminating {
                            list[i] = e.clone();
                        }
                    }
                    None => {
                        index.insert(e.endpoint.as_str(), list.len());
                        list.push(e.clone());
                    }
                }
            }
        }
    }
    buckets
        .into_iter()
        .filter(|(_, (l, _))| !l.is_empty())
        .map(|(k, (mut l, _))| {
            crate::sort::by(&mut l, |a, b| a.endpoint.cmp(&b.endpoint));
            (k, Arc::new(l))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(yaml: &str) -> EndpointSlice {
        serde_yaml::from_str(yaml).unwrap()
    }

    const BASE: &str = "metadata: {name: s1, namespace: ns, labels: {kubernetes.io/service-name: svc}}\naddressType: IPv4\n";

    #[test]
    fn one_reading_serves_every_node_and_each_finds_its_own_endpoints_local() {
        let sl = slice(&format!("{BASE}ports: [{{name: p, port: 80}}]\nendpoints:\n- {{addresses: [10.0.0.1], nodeName: n1}}\n- {{addresses: [10.0.0.2], nodeName: n2}}"));
        let prepared = prepare(&sl, true);
        let key: ServiceKey = ("ns".into(), "svc".into());
        for node in ["n1", "n2", "n3"] {
            let mut shared = SliceCache::new(node, IpFamily::V4, true);
            let mut own = SliceCache::new(node, IpFamily::V4, true);
            assert!(matches!(shared.update_prepared(&sl, &prepared), SliceChange::Changed(_)));
            assert!(matches!(own.update(&sl), SliceChange::Changed(_)));
            let a = shared.service_endpoints(&key);
            assert_eq!(a, own.service_endpoints(&key), "node {node}");
            let local: Vec<&str> = a.values().flat_map(|l| l.iter()).filter(|e| e.local_to(node)).map(|e| e.ip.as_str()).collect();
            let want: Vec<&str> = match node { "n1" => vec!["10.0.0.1"], "n2" => vec!["10.0.0.2"], _ => vec![] };
            assert_eq!(local, want, "node {node}");
            // The same reading again is no change; a reading made for other gates is not used.
            assert!(matches!(shared.update_prepared(&sl, &prepared), SliceChange::Unchanged));
            let mut other = SliceCache::new(node, IpFamily::V4, false);
            other.update_prepared(&sl, &prepared);
            assert_eq!(other.service_endpoints(&key), own.service_endpoints(&key));
        }
    }

    /// An object holding a slice, as the simulation's API objects do.
    struct Holder(Option<EndpointSlice>);
    impl SliceSource for Holder {
        fn slice(&self) -> Option<&EndpointSlice> {
            self.0.as_ref()
        }
    }

    #[test]
    fn caches_keep_the_object_a_slice_came_in_not_a_copy() {
        let sl = slice(&format!("{BASE}ports: [{{name: p, port: 80}}]\nendpoints:\n- {{addresses: [10.0.0.1], nodeName: n1}}"));
        let key: ServiceKey = ("ns".into(), "svc".into());
        let held = Arc::new(Holder(Some(sl.clone())));
        let prepared = prepare_from(held.clone(), true).unwrap();
        let mut caches: Vec<SliceCache> = ["n1", "n2"].iter().map(|n| SliceCache::new(n, IpFamily::V4, true)).collect();
        for c in caches.iter_mut() {
            assert!(matches!(c.update_prepared(&sl, &prepared), SliceChange::Changed(_)));
        }
        drop(prepared);
        // Two caches hold the one object (through one shared reading), no copy of it.
        assert_eq!(Arc::strong_count(&held), 2);
        let mut alone = SliceCache::new("n1", IpFamily::V4, true);
        alone.update(&sl);
        assert_eq!(caches[0].service_endpoints(&key), alone.service_endpoints(&key));
        // The same content read again from another object is no change; new content is.
        assert!(matches!(caches[0].update(&sl), SliceChange::Unchanged));
        let other = slice(&format!("{BASE}ports: [{{name: p, port: 80}}]\nendpoints:\n- {{addresses: [10.0.0.2], nodeName: n1}}"));
        assert!(matches!(caches[0].update(&other), SliceChange::Changed(_)));
        // An object that holds no slice is not read.
        assert!(prepare_from(Arc::new(Holder(None)), true).is_none());
    }

    #[test]
    fn nodes_sharing_merges_get_the_same_endpoints_and_each_its_own_local_ones() {
        let s1 = slice(&format!("{BASE}ports: [{{name: p, port: 80}}]\nendpoints:\n- {{addresses: [10.0.0.1], nodeName: n1}}\n- {{addresses: [10.0.0.2], nodeName: n2}}"));
        let s2 = slice(&format!("{BASE}ports: [{{name: p, port: 80}}]\nendpoints:\n- {{addresses: [10.0.0.3], nodeName: n1}}").replace("name: s1", "name: s2"));
        let key: ServiceKey = ("ns".into(), "svc".into());
        let shared = SharedMerges::default();
        let (p1, p2) = (prepare(&s1, true), prepare(&s2, true));
        let mut caches: Vec<SliceCache> = ["n1", "n2", "n3"].iter().map(|n| SliceCache::new(n, IpFamily::V4, true)).collect();
        for c in caches.iter_mut() {
            c.share_merges(shared.clone());
            c.update_prepared(&s1, &p1);
        }
        let lists: Vec<Arc<ServiceEndpoints>> = caches.iter_mut().map(|c| c.service_endpoints(&key)).collect();
        for (c, got) in caches.iter().zip(&lists) {
            let mut alone = SliceCache::new(c.node_name(), IpFamily::V4, true);
            alone.update(&s1);
            assert_eq!(**got, *alone.service_endpoints(&key), "node {}", c.node_name());
        }
        let local = |m: &ServiceEndpoints, node: &str| -> Vec<String> {
            m.values().flat_map(|l| l.iter()).filter(|e| e.local_to(node)).map(|e| e.ip.clone()).collect()
        };
        assert_eq!(local(&lists[0], "n1"), ["10.0.0.1"]);
        assert_eq!(local(&lists[1], "n2"), ["10.0.0.2"]);
        assert!(local(&lists[2], "n3").is_empty());
        // One merge serves them all.
        assert!(Arc::ptr_eq(&lists[0], &lists[1]) && Arc::ptr_eq(&lists[1], &lists[2]));
        // A node that is behind (it has not seen the new slice content) keeps its own, older merge.
        let s1b = slice(&format!("{BASE}ports: [{{name: p, port: 80}}]\nendpoints:\n- {{addresses: [10.0.0.9], nodeName: n3}}"));
        let p1b = prepare(&s1b, true);
        caches[2].update_prepared(&s1b, &p1b);
        let ahead = caches[2].service_endpoints(&key);
        assert_eq!(local(&ahead, "n3"), ["10.0.0.9"]);
        assert_eq!(caches[0].service_endpoints(&key), lists[0]);
        // A second slice reaches everyone: merges still match the unshared result.
        for c in caches.iter_mut() {
            c.update_prepared(&s2, &p2);
            let mut alone = SliceCache::new(c.node_name(), IpFamily::V4, true);
            alone.update(if c.node_name() == "n3" { &s1b } else { &s1 });
            alone.update(&s2);
            assert_eq!(c.service_endpoints(&key), alone.service_endpoints(&key), "node {}", c.node_name());
        }
    }

    #[test]
    fn terminating_duplicate_never_beats_a_live_one() {
        let mut c = SliceCache::new("n1", IpFamily::V4, true);
        c.update(&slice(&format!("{BASE}ports: [{{name: p, port: 80}}]\nendpoints:\n- {{addresses: [10.0.0.1], conditions: {{ready: true}}, nodeName: n2}}\n- {{addresses: [10.0.0.1], conditions: {{ready: false, serving: true, terminating: true}}, nodeName: n1}}")));
        let m = c.service_endpoints(&("ns".into(), "svc".into()));
        let l = &m[&("p".to_string(), Protocol::Tcp)];
        assert_eq!(l.len(), 1);
        assert!(l[0].ready && !l[0].terminating && !l[0].is_local);
        // The other way round: the live one comes later and replaces the ghost.
        let mut c = SliceCache::new("n1", IpFamily::V4, true);
        c.update(&slice(&format!("{BASE}ports: [{{name: p, port: 80}}]\nendpoints:\n- {{addresses: [10.0.0.1], conditions: {{ready: false, serving: true, terminating: true}}}}\n- {{addresses: [10.0.0.1], conditions: {{ready: true}}}}")));
        let m = c.service_endpoints(&("ns".into(), "svc".into()));
        assert!(m[&("p".to_string(), Protocol::Tcp)][0].ready);
    }

    #[test]
    fn ignored_slices() {
        let mut c = SliceCache::new("n1", IpFamily::V4, true);
        let no_label = slice("metadata: {name: x, namespace: ns}\naddressType: IPv4\nendpoints: []");
        assert!(matches!(c.update(&no_label), SliceChange::Ignored(_)));
        let headless = slice("metadata: {name: x, namespace: ns, labels: {kubernetes.io/service-name: s, service.kubernetes.io/headless: ''}}\naddressType: IPv4\nendpoints: []");
        assert!(matches!(c.update(&headless), SliceChange::Ignored(_)));
        let v6 = slice("metadata: {name: x, namespace: ns, labels: {kubernetes.io/service-name: s}}\naddressType: IPv6\nendpoints: []");
        assert!(matches!(c.update(&v6), SliceChange::Ignored(_)));
        let other = slice("metadata: {name: x, namespace: ns, labels: {kubernetes.io/service-name: s, service.kubernetes.io/service-proxy-name: foo}}\naddressType: IPv4\nendpoints: []");
        assert!(matches!(c.update(&other), SliceChange::Ignored(_)));
    }

    #[test]
    fn skipped_ports_and_endpoints_and_node_hints_gate() {
        let text = format!("{BASE}ports: [{{port: 80}}, {{name: zero, port: 0}}, {{name: ok, port: 81}}]\nendpoints:\n- {{addresses: []}}\n- {{addresses: [bogus]}}\n- {{addresses: [10.0.0.2, 10.0.0.3], hints: {{forZones: [{{name: b}}, {{name: a}}], forNodes: [{{name: n1}}]}}}}");
        let mut c = SliceCache::new("n1", IpFamily::V4, false);
        c.update(&slice(&text));
        let m = c.service_endpoints(&("ns".into(), "svc".into()));
        assert_eq!(m.len(), 1);
        let l = &m[&("ok".to_string(), Protocol::Tcp)];
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].endpoint, "10.0.0.2:81");
        assert_eq!(l[0].zone_hints, vec!["a", "b"]);
        assert!(l[0].node_hints.is_empty());
        let mut c = SliceCache::new("n1", IpFamily::V4, true);
        c.update(&slice(&text));
        let m = c.service_endpoints(&("ns".into(), "svc".into()));
        assert_eq!(m[&("ok".to_string(), Protocol::Tcp)][0].node_hints, vec!["n1"]);
    }

    #[test]
    fn moving_and_deleting_slices() {
        let mut c = SliceCache::new("n1", IpFamily::V4, true);
        let a = slice(&format!("{BASE}ports: [{{name: p, port: 80}}]\nendpoints: [{{addresses: [10.0.0.1]}}]"));
        assert_eq!(c.update(&a), SliceChange::Changed(("ns".into(), "svc".into())));
        assert_eq!(c.update(&a), SliceChange::Unchanged);
        let mut b = a.clone();
        b.metadata.labels.as_mut().unwrap().insert(LABEL_SERVICE_NAME.into(), "other".into());
        assert_eq!(c.update(&b), SliceChange::Changed(("ns".into(), "other".into())));
        assert!(c.service_endpoints(&("ns".into(), "svc".into())).is_empty());
        assert_eq!(c.delete(&b), Some(("ns".into(), "other".into())));
        assert_eq!(c.delete(&b), None);
        assert!(c.endpoints_map().is_empty());
    }
}
