//! §3 of the controller spec: which address types a Service needs, and the desired endpoint of each
//! Pod (ports, port-map key, fields and conditions, identity and "changed").


use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use rustc_hash::FxHashMap;

use super::pods;
use super::LABEL_ZONE;
use crate::ip::{is_ipv6_string, parse_ip_sloppy};

/// An EndpointSlice address type the controller writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressType {
    IPv4,
    IPv6,
}

impl AddressType {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressType::IPv4 => "IPv4",
            AddressType::IPv6 => "IPv6",
        }
    }

    pub fn parse(s: &str) -> Option<AddressType> {
        match s {
            "IPv4" => Some(AddressType::IPv4),
            "IPv6" => Some(AddressType::IPv6),
            _ => None,
        }
    }
}

/// §3.1: the address types a Service needs, in `spec.ipFamilies` order. With no families (an old API
/// server): the ClusterIP's family when one is set, else both.
pub fn address_types_for_service(svc: &Service) -> Vec<AddressType> {
    let spec = svc.spec.as_ref();
    let mut out = Vec::new();
    for fam in spec.and_then(|s| s.ip_families.as_ref()).into_iter().flatten() {
        let t = match fam.as_str() {
            "IPv4" => AddressType::IPv4,
            "IPv6" => AddressType::IPv6,
            _ => continue,
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if !out.is_empty() {
        return out;
    }
    let cip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
    if !cip.is_empty() && cip != "None" {
        return vec![if is_ipv6_string(cip) { AddressType::IPv6 } else { AddressType::IPv4 }];
    }
    vec![AddressType::IPv4, AddressType::IPv6]
}

/// §3.3: the EndpointPorts of one pod. A headless Service with no ports has none; a named target port
/// that the pod does not define leaves that Service port out for this pod.
pub fn endpoint_ports(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let spec = match svc.spec.as_ref() {
        Some(s) => s,
        None => return Vec::new(),
    };
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    if ports.is_empty() && pods::is_headless(svc) {
        return Vec::new();
    }
    ports
        .iter()
        .filter_map(|sp| {
            let n = pods::find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(n),
                protocol: Some(pods::service_port_protocol(sp).to_string()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The port-map key: the multiset of ports, order ignored; a nil list and an empty list are the same.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortMapKey(Vec<(Option<String>, Option<i32>, Option<String>, Option<String>)>);

impl PortMapKey {
    pub fn new(ports: Option<&[EndpointPort]>) -> Self {
        let mut v: Vec<_> = ports
            .unwrap_or(&[])
            .iter()
            .map(|p| (p.name.clone(), p.port, p.protocol.clone(), p.app_protocol.clone()))
            .collect();
        crate::sort::all(&mut v);
        PortMapKey(v)
    }
}

/// §3.5: endpoint identity: sorted addresses, hostname, targetRef namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointKey {
    addresses: Vec<String>,
    hostname: String,
    namespace: String,
    name: String,
}

impl EndpointKey {
    pub fn of(ep: &Endpoint) -> Self {
        let mut addresses = ep.addresses.clone();
        if addresses.len() > 1 {
            crate::sort::all(&mut addresses);
        }
        let (namespace, name) = match ep.target_ref.as_ref() {
            Some(r) => (r.namespace.clone().unwrap_or_default(), r.name.clone().unwrap_or_default()),
            None => (String::new(), String::new()),
        };
        EndpointKey { addresses, hostname: ep.hostname.clone().unwrap_or_default(), namespace, name }
    }

    /// An endpoint carrying just this identity.
    pub fn to_endpoint(&self) -> Endpoint {
        Endpoint {
            addresses: self.addresses.clone(),
            hostname: (!self.hostname.is_empty()).then(|| self.hostname.clone()),
            target_ref: Some(ObjectReference {
                namespace: Some(self.namespace.clone()),
                name: Some(self.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// §3.5: an endpoint found in an existing slice is "changed" when nodeName, zone, a condition (nil is
/// distinct from false) or the targetRef (resourceVersion ignored) differs. Hints are not compared.
pub fn endpoint_changed(desired: &Endpoint, existing: &Endpoint) -> bool {
    if desired.node_name != existing.node_name || desired.zone != existing.zone {
        return true;
    }
    let c = |e: &Endpoint| {
        let c = e.conditions.as_ref();
        (c.and_then(|c| c.ready), c.and_then(|c| c.serving), c.and_then(|c| c.terminating))
    };
    if c(desired) != c(existing) {
        return true;
    }
    match (&desired.target_ref, &existing.target_ref) {
        (None, None) => false,
        (Some(a), Some(b)) => {
            a.api_version != b.api_version
                || a.field_path != b.field_path
                || a.kind != b.kind
                || a.name != b.name
                || a.namespace != b.namespace
                || a.uid != b.uid
        }
        _ => true,
    }
}

/// §3.4: the addresses of the wanted family, from `status.podIPs`, in canonical form. A string that is
/// not an IP is treated as IPv4 and written as `<nil>`, as the real controller does.
pub fn endpoint_addresses(pod: &Pod, address_type: AddressType) -> Vec<String> {
    let want_v6 = address_type == AddressType::IPv6;
    pods::pod_ips(pod)
        .filter_map(|ip| {
            if crate::ip::is_canonical_ipv4(ip) {
                return (!want_v6).then(|| ip.to_string());
            }
            match parse_ip_sloppy(ip) {
                Some(std::net::IpAddr::V6(a)) => want_v6.then(|| a.to_string()),
                Some(std::net::IpAddr::V4(a)) => (!want_v6).then(|| a.to_string()),
                None => (!want_v6).then(|| "<nil>".to_string()),
            }
        })
        .collect()
}

/// §3.4: the desired endpoint for one pod and address type (no hints).
pub fn pod_to_endpoint(pod: &Pod, node: Option<&Node>, svc: &Service, address_type: AddressType) -> Endpoint {
    let serving = pods::is_ready(pod);
    let terminating = pods::is_terminating(pod);
    let ready = pods::publish_not_ready(svc) || (serving && !terminating);
    let node_name = pods::node_name(pod);
    let zone = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(LABEL_ZONE))
        .filter(|z| !z.is_empty())
        .cloned();
    Endpoint {
        addresses: endpoint_addresses(pod, address_type),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some(pod.metadata.namespace.clone().unwrap_or_default()),
            name: Some(pod.metadata.name.clone().unwrap_or_default()),
            uid: Some(pod.metadata.uid.clone().unwrap_or_default()),
            ..Default::default()
        }),
        node_name: (!node_name.is_empty()).then(|| node_name.to_string()),
        zone,
        hostname: pods::should_set_hostname(pod, svc)
            .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()).unwrap_or_default()),
        ..Default::default()
    }
}

/// Hash of an endpoint's identity (§3.5), computed without allocating.
fn identity_hash(ep: &Endpoint) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    if ep.addresses.len() > 1 {
        let mut a: Vec<&str> = ep.addresses.iter().map(String::as_str).collect();
        crate::sort::all(&mut a);
        a.hash(&mut h);
    } else {
        for a in &ep.addresses {
            a.as_str().hash(&mut h);
        }
    }
    ep.hostname.as_deref().unwrap_or("").hash(&mut h);
    let r = ep.target_ref.as_ref();
    r.and_then(|r| r.namespace.as_deref()).unwrap_or("").hash(&mut h);
    r.and_then(|r| r.name.as_deref()).unwrap_or("").hash(&mut h);
    h.finish()
}

/// Whether two endpoints have the same identity (§3.5).
pub fn same_identity(a: &Endpoint, b: &Endpoint) -> bool {
    let ra = a.target_ref.as_ref();
    let rb = b.target_ref.as_ref();
    let addresses_equal = if a.addresses.len() <= 1 || b.addresses.len() <= 1 {
        a.addresses == b.addresses
    } else {
        let mut x: Vec<&String> = a.addresses.iter().collect();
        let mut y: Vec<&String> = b.addresses.iter().collect();
        crate::sort::all(&mut x);
        crate::sort::all(&mut y);
        x == y
    };
    addresses_equal
        && a.hostname.as_deref().unwrap_or("") == b.hostname.as_deref().unwrap_or("")
        && ra.and_then(|r| r.namespace.as_deref()).unwrap_or("") == rb.and_then(|r| r.namespace.as_deref()).unwrap_or("")
        && ra.and_then(|r| r.name.as_deref()).unwrap_or("") == rb.and_then(|r| r.name.as_deref()).unwrap_or("")
}

/// A set of desired endpoints keyed by identity, which hands its endpoints out in insertion order
/// (`PopAny`): deterministic, and one of the orders Go's map iteration can produce. Lookups hash the
/// identity without allocating and verify it against the stored endpoint.
#[derive(Clone, Debug, Default)]
pub struct EndpointSet {
    entries: Vec<Option<Endpoint>>,
    /// identity hash → index of a live entry; further live entries with the same hash are in `more`.
    index: FxHashMap<u64, usize>,
    more: FxHashMap<u64, Vec<usize>>,
    len: usize,
    cursor: usize,
}

impl EndpointSet {
    fn find(&self, h: u64, ep: &Endpoint) -> Option<usize> {
        let live = |i: usize| self.entries[i].as_ref().is_some_and(|e| same_identity(e, ep));
        if let Some(&i) = self.index.get(&h) {
            if live(i) {
                return Some(i);
            }
        }
        self.more.get(&h).and_then(|v| v.iter().copied().find(|&i| live(i)))
    }

    fn unindex(&mut self, h: u64, i: usize) {
        if self.index.get(&h) == Some(&i) {
            self.index.remove(&h);
            if let Some(v) = self.more.get_mut(&h) {
                if let Some(j) = v.pop() {
                    self.index.insert(h, j);
                }
                if v.is_empty() {
                    self.more.remove(&h);
                }
            }
        } else if let Some(v) = self.more.get_mut(&h) {
            v.retain(|&j| j != i);
            if v.is_empty() {
                self.more.remove(&h);
            }
        }
    }

    /// Insert, replacing an endpoint of the same identity in place.
    pub fn insert(&mut self, ep: Endpoint) {
        let h = identity_hash(&ep);
        if let Some(i) = self.find(h, &ep) {
            self.entries[i] = Some(ep);
            return;
        }
        let i = self.entries.len();
        self.entries.push(Some(ep));
        self.len += 1;
        match self.index.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.more.entry(h).or_default().push(i),
        }
    }

    /// The desired endpoint with the same identity as `ep`.
    pub fn get_matching(&self, ep: &Endpoint) -> Option<&Endpoint> {
        self.find(identity_hash(ep), ep).and_then(|i| self.entries[i].as_ref())
    }

    /// Take out the desired endpoint with the same identity as `ep`.
    pub fn remove_matching(&mut self, ep: &Endpoint) -> Option<Endpoint> {
        let h = identity_hash(ep);
        let i = self.find(h, ep)?;
        self.unindex(h, i);
        let out = self.entries[i].take();
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    pub fn get(&self, key: &EndpointKey) -> Option<&Endpoint> {
        self.get_matching(&key.to_endpoint())
    }

    pub fn remove(&mut self, key: &EndpointKey) -> Option<Endpoint> {
        self.remove_matching(&key.to_endpoint())
    }

    pub fn pop_any(&mut self) -> Option<Endpoint> {
        while self.cursor < self.entries.len() {
            let i = self.cursor;
            self.cursor += 1;
            if let Some(ep) = self.entries[i].take() {
                self.unindex(identity_hash(&ep), i);
                self.len -= 1;
                return Some(ep);
            }
        }
        None
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The desired state of one address type: per port map (in order of first appearance), its ports and
/// endpoint set, plus the "Node not found" errors.
#[derive(Debug, Default)]
pub struct DesiredState {
    pub port_maps: Vec<(PortMapKey, Vec<EndpointPort>, EndpointSet)>,
    pub errors: Vec<String>,
}

impl DesiredState {
    pub fn find(&self, key: &PortMapKey) -> Option<usize> {
        self.port_maps.iter().position(|(k, _, _)| k == key)
    }
}

/// §3.2: the desired endpoints of one address type, grouped by port map.
pub fn desired_endpoints<P: std::borrow::Borrow<Pod>>(
    svc: &Service,
    pods_in: &[P],
    nodes: &crate::vecmap::VecMap<&str, &Node>,
    address_type: AddressType,
) -> DesiredState {
    let mut st = DesiredState::default();
    let mut index: FxHashMap<PortMapKey, usize> = FxHashMap::default();
    let publish = pods::publish_not_ready(svc);
    // With no named target port, every pod gets the same ports: found once, for the first pod.
    let same_ports_for_all = pods::no_named_target_port(svc.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or(&[]));
    let mut the_slot: Option<usize> = None;
    for pod in pods_in {
        let pod = pod.borrow();
        if !pods::should_be_in_endpoints(pod, true) {
            continue;
        }
        let slot = match the_slot {
            Some(i) => i,
            None => {
                let ports = endpoint_ports(svc, pod);
                let key = PortMapKey::new(Some(&ports));
                let i = match index.get(&key) {
                    Some(&i) => i,
                    None => {
                        index.insert(key.clone(), st.port_maps.len());
                        st.port_maps.push((key, ports, EndpointSet::default()));
                        st.port_maps.len() - 1
                    }
                };
                if same_ports_for_all {
                    the_slot = Some(i);
                }
                i
            }
        };
        let node_name = pods::node_name(pod);
        let node = nodes.get(node_name).copied();
        if node.is_none() && !publish {
            st.errors.push(format!(
                "skipping Pod {} for Service {}/{}: Node {} Not Found",
                pod.metadata.name.as_deref().unwrap_or(""),
                svc.metadata.namespace.as_deref().unwrap_or(""),
                svc.metadata.name.as_deref().unwrap_or(""),
                node_name
            ));
            continue;
        }
        let ep = pod_to_endpoint(pod, node, svc, address_type);
        if !ep.addresses.is_empty() {
            st.port_maps[slot].2.insert(ep);
        }
    }
    st
}
