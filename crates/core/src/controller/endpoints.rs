//! §12 of the controller spec: the legacy Endpoints controller. One Endpoints object per selector
//! Service, a single IP family, subsets repacked by port set, and truncation to 1000 addresses with
//! the `endpoints.kubernetes.io/over-capacity` annotation.

use crate::vecmap::VecMap;
use std::borrow::Borrow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pods;
use super::{ANNOTATION_OVER_CAPACITY, LABEL_HEADLESS};
use crate::ip::is_ipv6_string;

/// The most addresses one Endpoints object holds.
pub const MAX_CAPACITY: usize = 1000;
pub const TRUNCATED: &str = "truncated";

/// What the controller does with the Endpoints object of a Service.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointsWrite {
    Create(Endpoints),
    Update(Endpoints),
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
}

impl AddressLike for EndpointAddress {
    fn key(&self) -> (&str, &str) {
        (self.ip.as_str(), uid(self))
    }
    fn to_address(&self) -> EndpointAddress {
        self.clone()
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
    }))
}

/// The repacking itself, over (port or the port-less sentinel, address, ready) in input order. Works
/// on borrowed keys; each address and port is copied once, into the result.
fn repack<'a, A: AddressLike + 'a>(entries: impl Iterator<Item = (Option<&'a EndpointPort>, &'a A, bool)>) -> Vec<EndpointSubset> {
    type Addrs<'a, A> = BTreeMap<(&'a str, &'a str), (&'a A, bool)>;
    // port (None = the port-less sentinel) → address key → (address, ready)
    let mut by_port: VecMap<Option<PortKey<'a>>, (Option<&'a EndpointPort>, Addrs<'a, A>)> = VecMap::new();
    for (port, a, r) in entries {
        let entry = by_port.entry(port.map(port_key)).or_insert_with(|| (port, BTreeMap::new()));
        entry.1.entry(a.key()).and_modify(|slot| slot.1 |= r).or_insert((a, r));
    }
    // Group ports by their exact (address, ready) set.
    type Group<'a, A> = (Vec<&'a EndpointPort>, Vec<&'a A>, Vec<&'a A>);
    let mut groups: VecMap<Vec<((&'a str, &'a str), bool)>, Group<'a, A>> = VecMap::new();
    for (_, (port, addrs)) in by_port {
        let sig: Vec<((&str, &str), bool)> = addrs.iter().map(|(k, (_, r))| (*k, *r)).collect();
        let g = groups.entry(sig).or_insert_with(|| {
            let ready = addrs.values().filter(|(_, r)| *r).map(|(a, _)| *a).collect();
            let not_ready = addrs.values().filter(|(_, r)| !*r).map(|(a, _)| *a).collect();
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
    let owned = |v: Vec<&A>| (!v.is_empty()).then(|| v.into_iter().map(|a| a.to_address()).collect());
    grouped
        .into_iter()
        .map(|(ports, ready, not_ready)| EndpointSubset {
            addresses: owned(ready),
            not_ready_addresses: owned(not_ready),
            ports: (!ports.is_empty()).then(|| ports.into_iter().cloned().collect()),
        })
        .collect()
}

/// The desired subsets for a Service and its matching pods (before truncation).
pub fn desired_subsets<P: Borrow<Pod>>(svc: &Service, pods_in: &[P]) -> Vec<EndpointSubset> {
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
    repack(per_pod.iter().flat_map(|(addr, ready, i)| served_lists[*i].iter().map(move |p| (p.as_ref(), addr, *ready))))
}

fn count(subsets: &[EndpointSubset]) -> (usize, usize) {
    subsets.iter().fold((0, 0), |(r, n), s| {
        (r + s.addresses.as_ref().map_or(0, Vec::len), n + s.not_ready_addresses.as_ref().map_or(0, Vec::len))
    })
}

/// `truncateEndpoints`: keep at most 1000 addresses, ready ones first, each subset keeping its
/// rounded-up proportional share (capped by what is left) of its first addresses. Returns whether
/// anything was truncated.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let (total_ready, total_not_ready) = count(subsets);
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, num_total) =
        if truncate_ready { (MAX_CAPACITY, total_ready) } else { (MAX_CAPACITY - total_ready, total_not_ready) };
    let mut can_be_added = max;
    for s in subsets.iter_mut() {
        let in_subset =
            if truncate_ready { s.addresses.as_ref().map_or(0, Vec::len) } else { s.not_ready_addresses.as_ref().map_or(0, Vec::len) };
        let share = (in_subset as f64 / num_total as f64 * max as f64).ceil() as usize;
        let to_add = share.min(can_be_added);
        if truncate_ready {
            if let Some(a) = s.addresses.as_mut() {
                a.truncate(to_add);
            }
            s.not_ready_addresses = None;
            can_be_added -= s.addresses.as_ref().map_or(0, Vec::len);
        } else {
            if let Some(a) = s.not_ready_addresses.as_mut() {
                a.truncate(to_add);
            }
            can_be_added -= s.not_ready_addresses.as_ref().map_or(0, Vec::len);
        }
    }
    true
}

/// The annotation is right when the stored subsets are within capacity and carry no annotation.
fn capacity_annotation_correct(ann: Option<&BTreeMap<String, String>>, subsets: &[EndpointSubset]) -> bool {
    let (r, n) = count(subsets);
    r + n <= MAX_CAPACITY && !ann.is_some_and(|a| a.contains_key(ANNOTATION_OVER_CAPACITY))
}

/// Whether two lists of subsets are equal when the pods' resourceVersions in `targetRef` are ignored
/// (the comparison `syncService` makes before it writes).
fn same_ignoring_resource_versions(a: &[EndpointSubset], b: &[EndpointSubset]) -> bool {
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
    fn same_list(a: &Option<Vec<EndpointAddress>>, b: &Option<Vec<EndpointAddress>>) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_addr(p, q)),
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
    let Some(svc) = service else {
        return if current.is_some() { EndpointsWrite::Delete } else { EndpointsWrite::None };
    };
    let spec = svc.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") || spec.and_then(|s| s.selector.as_ref()).is_none() {
        // ExternalName Services get none; selector-less ones are the user's to manage.
        return EndpointsWrite::None;
    }
    let subsets = desired_subsets(svc, pods_in);
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
    let mut ep = Endpoints {
        metadata: current.map(|c| c.metadata.clone()).unwrap_or_else(|| ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            ..Default::default()
        }),
        subsets: None,
    };
    let mut subsets = subsets;
    let truncated = truncate(&mut subsets);
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
