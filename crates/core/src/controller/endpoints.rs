//! §12 of the controller spec: the legacy Endpoints controller. One Endpoints object per selector
//! Service, a single IP family, subsets repacked by port set, and truncation to 1000 addresses with
//! the `endpoints.kubernetes.io/over-capacity` annotation.

use crate::vecmap::VecMap;
use rustc_hash::FxHashMap;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pods;
use super::{ANNOTATION_OVER_CAPACITY, LABEL_HEADLESS};
use crate::ip::is_ipv6_string;

/// The most addresses one Endpoints object holds.
pub const MAX_CAPACITY: usize = 1000;
pub const TRUNCATED: &str = "truncated";

/// An Endpoints object as the simulation keeps it: the same object, with each address behind an
/// `Arc` so that versions share the addresses they have in common. A write that moves one pod's
/// address between `addresses` and `notReadyAddresses` then copies one address, not a thousand, and a
/// timeline snapshot keeps only the addresses that changed. It converts to and from the API type
/// without loss (`to_endpoints`, `From<&Endpoints>`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SharedEndpoints {
    pub metadata: ObjectMeta,
    pub subsets: Option<Vec<SharedSubset>>,
}

/// An `EndpointSubset` with shared addresses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SharedSubset {
    pub addresses: Option<Vec<Arc<EndpointAddress>>>,
    pub not_ready_addresses: Option<Vec<Arc<EndpointAddress>>>,
    pub ports: Option<Vec<EndpointPort>>,
}

impl From<&Endpoints> for SharedEndpoints {
    fn from(e: &Endpoints) -> Self {
        let share = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map(|v| v.iter().cloned().map(Arc::new).collect());
        SharedEndpoints {
            metadata: e.metadata.clone(),
            subsets: e.subsets.as_ref().map(|s| {
                s.iter()
                    .map(|s| SharedSubset {
                        addresses: share(&s.addresses),
                        not_ready_addresses: share(&s.not_ready_addresses),
                        ports: s.ports.clone(),
                    })
                    .collect()
            }),
        }
    }
}

impl SharedEndpoints {
    /// The object as the API type.
    pub fn to_endpoints(&self) -> Endpoints {
        Endpoints { metadata: self.metadata.clone(), subsets: self.subsets.as_ref().map(|s| to_subsets(s)) }
    }

    /// Addresses in all subsets, ready and not ready.
    pub fn address_count(&self) -> usize {
        let (r, n) = count(self.subsets.as_deref().unwrap_or(&[]));
        r + n
    }
}

fn to_subsets(s: &[SharedSubset]) -> Vec<EndpointSubset> {
    let own = |v: &Option<Vec<Arc<EndpointAddress>>>| v.as_ref().map(|v| v.iter().map(|a| (**a).clone()).collect());
    s.iter()
        .map(|s| EndpointSubset {
            addresses: own(&s.addresses),
            not_ready_addresses: own(&s.not_ready_addresses),
            ports: s.ports.clone(),
        })
        .collect()
}

/// The two address lists of a subset, whichever form it has: what counting and truncation need.
trait AddressLists {
    type Address;
    fn lists(&self) -> (&Option<Vec<Self::Address>>, &Option<Vec<Self::Address>>);
    fn lists_mut(&mut self) -> (&mut Option<Vec<Self::Address>>, &mut Option<Vec<Self::Address>>);
}

impl AddressLists for EndpointSubset {
    type Address = EndpointAddress;
    fn lists(&self) -> (&Option<Vec<EndpointAddress>>, &Option<Vec<EndpointAddress>>) {
        (&self.addresses, &self.not_ready_addresses)
    }
    fn lists_mut(&mut self) -> (&mut Option<Vec<EndpointAddress>>, &mut Option<Vec<EndpointAddress>>) {
        (&mut self.addresses, &mut self.not_ready_addresses)
    }
}

impl AddressLists for SharedSubset {
    type Address = Arc<EndpointAddress>;
    fn lists(&self) -> (&Option<Vec<Self::Address>>, &Option<Vec<Self::Address>>) {
        (&self.addresses, &self.not_ready_addresses)
    }
    fn lists_mut(&mut self) -> (&mut Option<Vec<Self::Address>>, &mut Option<Vec<Self::Address>>) {
        (&mut self.addresses, &mut self.not_ready_addresses)
    }
}

/// What the controller does with the Endpoints object of a Service.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointsWrite<E = Endpoints> {
    Create(E),
    Update(E),
    /// Nothing to write: subsets, labels and the over-capacity annotation are already right.
    None,
    /// The Service is gone, or does not get an Endpoints object (ExternalName, no selector).
    Delete,
}

/// The address of a pod for the Service's (single) family, or `None` when the pod has no IP of it.
pub fn pod_address(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    pod_addr(svc, pod).map(|a| a.to_address())
}

/// A pod's address, borrowed from the pod: copied into an `EndpointAddress` only when it goes into
/// the result.
#[derive(Clone, Copy)]
struct PodAddr<'a> {
    ip: &'a str,
    node_name: &'a str,
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
    /// `Some` when the hostname rule applies (the pod's hostname, possibly empty).
    hostname: Option<&'a str>,
}

fn pod_addr<'a>(svc: &Service, pod: &'a Pod) -> Option<PodAddr<'a>> {
    let spec = svc.spec.as_ref();
    let want_v6 = match spec.and_then(|s| s.ip_families.as_ref()).and_then(|f| f.first()) {
        Some(f) => f == "IPv6",
        None => {
            let cip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
            if !cip.is_empty() && cip != "None" {
                is_ipv6_string(cip)
            } else {
                is_ipv6_string(pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).unwrap_or(""))
            }
        }
    };
    let ip = pods::pod_ips(pod).find(|ip| is_ipv6_string(ip) == want_v6)?;
    Some(PodAddr {
        ip,
        node_name: pods::node_name(pod),
        namespace: pod.metadata.namespace.as_deref().unwrap_or(""),
        name: pod.metadata.name.as_deref().unwrap_or(""),
        uid: pod.metadata.uid.as_deref().unwrap_or(""),
        hostname: pods::should_set_hostname(pod, svc)
            .then(|| pod.spec.as_ref().and_then(|s| s.hostname.as_deref()).unwrap_or("")),
    })
}

/// What repacking needs of an address: its key (IP, pod UID) and an owned copy for the result.
trait AddressLike {
    fn key(&self) -> (&str, &str);
    fn to_address(&self) -> EndpointAddress;
    /// Whether `to_address` would give exactly `a` (then `a` itself can be shared).
    fn is(&self, a: &EndpointAddress) -> bool;
}

impl AddressLike for EndpointAddress {
    fn key(&self) -> (&str, &str) {
        (self.ip.as_str(), uid(self))
    }
    fn to_address(&self) -> EndpointAddress {
        self.clone()
    }
    fn is(&self, a: &EndpointAddress) -> bool {
        self == a
    }
}

impl AddressLike for PodAddr<'_> {
    fn key(&self) -> (&str, &str) {
        (self.ip, self.uid)
    }
    fn to_address(&self) -> EndpointAddress {
        EndpointAddress {
            ip: self.ip.to_string(),
            node_name: Some(self.node_name.to_string()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: Some(self.namespace.to_string()),
                name: Some(self.name.to_string()),
                uid: Some(self.uid.to_string()),
                ..Default::default()
            }),
            hostname: self.hostname.map(str::to_string),
        }
    }
    fn is(&self, a: &EndpointAddress) -> bool {
        a.ip == self.ip
            && a.node_name.as_deref() == Some(self.node_name)
            && a.hostname.as_deref() == self.hostname
            && a.target_ref.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("Pod")
                    && r.namespace.as_deref() == Some(self.namespace)
                    && r.name.as_deref() == Some(self.name)
                    && r.uid.as_deref() == Some(self.uid)
                    && r.api_version.is_none()
                    && r.field_path.is_none()
                    && r.resource_version.is_none()
            })
    }
}

/// Addresses of the current object by (IP, pod UID), to be shared by the next version.
type Reuse<'a> = FxHashMap<(&'a str, &'a str), &'a Arc<EndpointAddress>>;

fn reuse_index(current: Option<&SharedEndpoints>) -> Reuse<'_> {
    let mut m = Reuse::default();
    for s in current.and_then(|c| c.subsets.as_deref()).unwrap_or(&[]) {
        for a in s.addresses.iter().chain(s.not_ready_addresses.iter()).flatten() {
            m.insert((a.ip.as_str(), uid(a)), a);
        }
    }
    m
}

fn uid(a: &EndpointAddress) -> &str {
    a.target_ref.as_ref().and_then(|r| r.uid.as_deref()).unwrap_or("")
}

type PortKey<'a> = (&'a str, i32, &'a str, Option<&'a str>);

fn port_key(p: &EndpointPort) -> PortKey<'_> {
    (p.name.as_deref().unwrap_or(""), p.port, p.protocol.as_deref().unwrap_or(""), p.app_protocol.as_deref())
}

/// `RepackSubsets`: each address (by IP and pod UID) is mapped to the ports it serves, ready winning
/// over not ready; ports that share exactly the same addresses become one subset. Addresses are
/// sorted by IP then UID, ports by name, number and protocol, subsets by their first address. (The
/// real code orders ports and subsets by a hash; any order is the same object to every client.)
pub fn repack_subsets(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    to_subsets(&repack_shared(subsets, &Reuse::default()))
}

fn repack_shared(subsets: &[EndpointSubset], reuse: &Reuse) -> Vec<SharedSubset> {
    const NO_PORT: [Option<&EndpointPort>; 1] = [None];
    repack(subsets.iter().flat_map(|s| {
        let ports: Vec<Option<&EndpointPort>> = match s.ports.as_deref() {
            Some(p) if !p.is_empty() => p.iter().map(Some).collect(),
            _ => NO_PORT.to_vec(),
        };
        ports.into_iter().flat_map(move |port| {
            let ready = s.addresses.iter().flatten().map(move |a| (port, a, true));
            let not_ready = s.not_ready_addresses.iter().flatten().map(move |a| (port, a, false));
            ready.chain(not_ready)
        })
    }), reuse)
}

/// The repacking itself, over (port or the port-less sentinel, address, ready) in input order. Works
/// on borrowed keys; each address and port is copied once, into the result.
fn repack<'a, A: AddressLike + 'a>(
    entries: impl Iterator<Item = (Option<&'a EndpointPort>, &'a A, bool)>,
    reuse: &Reuse,
) -> Vec<SharedSubset> {
    // port (None = the port-less sentinel) → (address key, address, ready), in input order
    type Addrs<'a, A> = Vec<((&'a str, &'a str), &'a A, bool)>;
    let mut by_port: VecMap<Option<PortKey<'a>>, (Option<&'a EndpointPort>, Addrs<'a, A>)> = VecMap::new();
    for (port, a, r) in entries {
        by_port.entry(port.map(port_key)).or_insert_with(|| (port, Vec::new())).1.push((a.key(), a, r));
    }
    // Group ports by their exact (address, ready) set.
    type Group<'a, A> = (Vec<&'a EndpointPort>, Vec<&'a A>, Vec<&'a A>);
    let mut groups: VecMap<Vec<((&'a str, &'a str), bool)>, Group<'a, A>> = VecMap::new();
    for (_, (port, mut addrs)) in by_port {
        // By key, one entry per key: the first address given with it, ready if any was.
        crate::sort::by(&mut addrs, |x, y| x.0.cmp(&y.0));
        addrs.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.2 |= later.2;
            }
            same
        });
        let sig: Vec<((&str, &str), bool)> = addrs.iter().map(|(k, _, r)| (*k, *r)).collect();
        let g = groups.entry(sig).or_insert_with(|| {
            let ready = addrs.iter().filter(|(_, _, r)| *r).map(|(_, a, _)| *a).collect();
            let not_ready = addrs.iter().filter(|(_, _, r)| !*r).map(|(_, a, _)| *a).collect();
            (Vec::new(), ready, not_ready)
        });
        if let Some(p) = port {
            g.0.push(p);
        }
    }
    let first = |g: &Group<'a, A>| g.1.iter().chain(g.2.iter()).next().map(|a| a.key());
    let mut grouped: Vec<Group<'a, A>> = groups.into_values().collect();
    for g in grouped.iter_mut() {
        crate::sort::by(&mut g.0, |a, b| port_key(a).cmp(&port_key(b)));
    }
    crate::sort::by(&mut grouped, |a, b| {
        first(a).cmp(&first(b)).then_with(|| a.0.iter().map(|p| port_key(p)).cmp(b.0.iter().map(|p| port_key(p))))
    });
    let share = |a: &A| match reuse.get(&a.key()) {
        Some(&x) if a.is(x) => Arc::clone(x),
        _ => Arc::new(a.to_address()),
    };
    let owned = |v: Vec<&A>| (!v.is_empty()).then(|| v.into_iter().map(share).collect());
    grouped
        .into_iter()
        .map(|(ports, ready, not_ready)| SharedSubset {
            addresses: owned(ready),
            not_ready_addresses: owned(not_ready),
            ports: (!ports.is_empty()).then(|| ports.into_iter().cloned().collect()),
        })
        .collect()
}

/// The desired subsets for a Service and its matching pods (before truncation).
pub fn desired_subsets<P: Borrow<Pod>>(svc: &Service, pods_in: &[P]) -> Vec<EndpointSubset> {
    to_subsets(&desired_shared(svc, pods_in, &Reuse::default()))
}

/// The desired subsets, sharing the addresses of `reuse` that are unchanged.
fn desired_shared<P: Borrow<Pod>>(svc: &Service, pods_in: &[P], reuse: &Reuse) -> Vec<SharedSubset> {
    let publish = pods::publish_not_ready(svc);
    let ports: &[ServicePort] = svc.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or(&[]);
    // The lists of ports pods serve (None is the port-less sentinel of a headless Service). With no
    // named target port every pod serves the same list: made once.
    let same_for_all = pods::no_named_target_port(ports);
    let mut served_lists: Vec<Vec<Option<EndpointPort>>> = Vec::new();
    // (address, ready, index of the ports it serves)
    let mut per_pod: Vec<(PodAddr, bool, usize)> = Vec::new();
    for pod in pods_in {
        let pod = pod.borrow();
        if !pods::should_be_in_endpoints(pod, publish) {
            continue;
        }
        if ports.is_empty() && !pods::is_headless(svc) {
            continue;
        }
        let Some(addr) = pod_addr(svc, pod) else { continue };
        let ready = publish || pods::is_ready(pod);
        if !(same_for_all && !served_lists.is_empty()) {
            served_lists.push(if ports.is_empty() {
                vec![None]
            } else {
                ports
                    .iter()
                    .filter_map(|sp| {
                        let n = pods::find_port(pod, sp)?;
                        Some(Some(EndpointPort {
                            name: sp.name.clone(),
                            port: n,
                            protocol: Some(pods::service_port_protocol(sp).to_string()),
                            app_protocol: sp.app_protocol.clone(),
                        }))
                    })
                    .collect()
            });
        }
        per_pod.push((addr, ready, served_lists.len() - 1));
    }
    let served_lists = &served_lists;
    repack(per_pod.iter().flat_map(|(addr, ready, i)| served_lists[*i].iter().map(move |p| (p.as_ref(), addr, *ready))), reuse)
}

fn count<S: AddressLists>(subsets: &[S]) -> (usize, usize) {
    subsets.iter().fold((0, 0), |(r, n), s| {
        let (a, b) = s.lists();
        (r + a.as_ref().map_or(0, Vec::len), n + b.as_ref().map_or(0, Vec::len))
    })
}

/// `truncateEndpoints`: keep at most 1000 addresses, ready ones first, each subset keeping its
/// rounded-up proportional share (capped by what is left) of its first addresses. Returns whether
/// anything was truncated.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    truncate_lists(subsets)
}

fn truncate_lists<S: AddressLists>(subsets: &mut [S]) -> bool {
    let (total_ready, total_not_ready) = count(subsets);
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, num_total) =
        if truncate_ready { (MAX_CAPACITY, total_ready) } else { (MAX_CAPACITY - total_ready, total_not_ready) };
    let mut can_be_added = max;
    for s in subsets.iter_mut() {
        let (addresses, not_ready_addresses) = s.lists_mut();
        let in_subset =
            if truncate_ready { addresses.as_ref().map_or(0, Vec::len) } else { not_ready_addresses.as_ref().map_or(0, Vec::len) };
        let share = (in_subset as f64 / num_total as f64 * max as f64).ceil() as usize;
        let to_add = share.min(can_be_added);
        if truncate_ready {
            if let Some(a) = addresses.as_mut() {
                a.truncate(to_add);
            }
            *not_ready_addresses = None;
            can_be_added -= addresses.as_ref().map_or(0, Vec::len);
        } else {
            if let Some(a) = not_ready_addresses.as_mut() {
                a.truncate(to_add);
            }
            can_be_added -= not_ready_addresses.as_ref().map_or(0, Vec::len);
        }
    }
    true
}

/// The annotation is right when the stored subsets are within capacity and carry no annotation.
fn capacity_annotation_correct(ann: Option<&BTreeMap<String, String>>, subsets: &[SharedSubset]) -> bool {
    let (r, n) = count(subsets);
    r + n <= MAX_CAPACITY && !ann.is_some_and(|a| a.contains_key(ANNOTATION_OVER_CAPACITY))
}

/// Whether two lists of subsets are equal when the pods' resourceVersions in `targetRef` are ignored
/// (the comparison `syncService` makes before it writes).
fn same_ignoring_resource_versions(a: &[SharedSubset], b: &[SharedSubset]) -> bool {
    fn same_ref(a: &ObjectReference, b: &ObjectReference) -> bool {
        a.kind == b.kind
            && a.namespace == b.namespace
            && a.name == b.name
            && a.uid == b.uid
            && a.api_version == b.api_version
            && a.field_path == b.field_path
    }
    fn same_addr(a: &EndpointAddress, b: &EndpointAddress) -> bool {
        a.ip == b.ip
            && a.hostname == b.hostname
            && a.node_name == b.node_name
            && match (&a.target_ref, &b.target_ref) {
                (Some(x), Some(y)) => same_ref(x, y),
                (None, None) => true,
                _ => false,
            }
    }
    fn same_list(a: &Option<Vec<Arc<EndpointAddress>>>, b: &Option<Vec<Arc<EndpointAddress>>>) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| Arc::ptr_eq(p, q) || same_addr(p, q)),
            (None, None) => true,
            _ => false,
        }
    }
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.ports == y.ports && same_list(&x.addresses, &y.addresses) && same_list(&x.not_ready_addresses, &y.not_ready_addresses)
        })
}

/// `syncService` of the Endpoints controller: what to write for this Service, given its matching pods
/// and the Endpoints object that exists (if any). `service` is `None` when the Service is gone.
pub fn sync<P: Borrow<Pod>>(service: Option<&Service>, pods_in: &[P], current: Option<&Endpoints>) -> EndpointsWrite {
    let current = current.map(SharedEndpoints::from);
    match sync_shared(service, pods_in, current.as_ref()) {
        EndpointsWrite::Create(e) => EndpointsWrite::Create(e.to_endpoints()),
        EndpointsWrite::Update(e) => EndpointsWrite::Update(e.to_endpoints()),
        EndpointsWrite::None => EndpointsWrite::None,
        EndpointsWrite::Delete => EndpointsWrite::Delete,
    }
}

/// `sync` on the shared form: the new version shares every address of `current` it keeps unchanged.
pub fn sync_shared<P: Borrow<Pod>>(
    service: Option<&Service>,
    pods_in: &[P],
    current: Option<&SharedEndpoints>,
) -> EndpointsWrite<SharedEndpoints> {
    let Some(svc) = service else {
        return if current.is_some() { EndpointsWrite::Delete } else { EndpointsWrite::None };
    };
    let spec = svc.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") || spec.and_then(|s| s.selector.as_ref()).is_none() {
        // ExternalName Services get none; selector-less ones are the user's to manage.
        return EndpointsWrite::None;
    }
    let subsets = desired_shared(svc, pods_in, &reuse_index(current));
    if let Some(cur) = current {
        let mut compare_labels = cur.metadata.labels.clone().unwrap_or_default();
        compare_labels.remove(LABEL_HEADLESS);
        let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
        let cur_subsets = cur.subsets.as_deref().unwrap_or(&[]);
        if same_ignoring_resource_versions(cur_subsets, &subsets)
            && compare_labels == svc_labels
            && capacity_annotation_correct(cur.metadata.annotations.as_ref(), cur_subsets)
        {
            return EndpointsWrite::None;
        }
    }
    // The current object's metadata (its subsets are replaced: not copied).
    let mut ep = SharedEndpoints {
        metadata: current.map(|c| c.metadata.clone()).unwrap_or_else(|| ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            ..Default::default()
        }),
        subsets: None,
    };
    let mut subsets = subsets;
    let truncated = truncate_lists(&mut subsets);
    ep.subsets = (!subsets.is_empty()).then_some(subsets);
    let ann = ep.metadata.annotations.get_or_insert_with(BTreeMap::new);
    ann.remove(super::ANNOTATION_TRIGGER_TIME);
    if truncated {
        ann.insert(ANNOTATION_OVER_CAPACITY.into(), TRUNCATED.into());
    } else {
        ann.remove(ANNOTATION_OVER_CAPACITY);
    }
    if ann.is_empty() {
        ep.metadata.annotations = None;
    }
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if pods::is_service_ip_set(svc) {
        labels.remove(LABEL_HEADLESS);
    } else {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    ep.metadata.labels = (!labels.is_empty()).then_some(labels);
    if current.is_some() {
        EndpointsWrite::Update(ep)
    } else {
        EndpointsWrite::Create(ep)
    }
}
