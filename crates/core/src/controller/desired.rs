//! §3 of the controller spec: which address types a Service needs, and the desired endpoint of each
//! Pod (ports, port-map key, fields and conditions, identity and "changed").

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use rustc_hash::FxHashMap;

use super::pods;
use super::LABEL_ZONE;
use crate::ip::{canonical_ip, is_ipv6_string};

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
        v.sort();
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
            addresses.sort();
        }
        let (namespace, name) = match ep.target_ref.as_ref() {
            Some(r) => (r.namespace.clone().unwrap_or_default(), r.name.clone().unwrap_or_default()),
            None => (String::new(), String::new()),
        };
        EndpointKey { addresses, hostname: ep.hostname.clone().unwrap_or_default(), namespace, name }
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
    pods::pod_ips(pod)
        .filter(|ip| is_ipv6_string(ip) == (address_type == AddressType::IPv6))
        .map(canonical_ip)
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

/// A set of desired endpoints keyed by identity, which hands its endpoints out in insertion order
/// (`PopAny`): deterministic, and one of the orders Go's map iteration can produce.
#[derive(Clone, Debug, Default)]
pub struct EndpointSet {
    entries: Vec<Option<Endpoint>>,
    index: FxHashMap<EndpointKey, usize>,
    len: usize,
    cursor: usize,
}

impl EndpointSet {
    /// Insert, replacing an endpoint of the same identity in place.
    pub fn insert(&mut self, ep: Endpoint) {
        let key = EndpointKey::of(&ep);
        match self.index.get(&key) {
            Some(&i) => {
                if self.entries[i].is_none() {
                    self.len += 1;
                }
                self.entries[i] = Some(ep);
            }
            None => {
                self.index.insert(key, self.entries.len());
                self.entries.push(Some(ep));
                self.len += 1;
            }
        }
    }

    pub fn get(&self, key: &EndpointKey) -> Option<&Endpoint> {
        self.index.get(key).and_then(|&i| self.entries[i].as_ref())
    }

    pub fn remove(&mut self, key: &EndpointKey) -> Option<Endpoint> {
        let i = *self.index.get(key)?;
        let ep = self.entries[i].take();
        if ep.is_some() {
            self.len -= 1;
        }
        ep
    }

    pub fn pop_any(&mut self) -> Option<Endpoint> {
        while self.cursor < self.entries.len() {
            let i = self.cursor;
            self.cursor += 1;
            if let Some(ep) = self.entries[i].take() {
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
    nodes: &BTreeMap<&str, &Node>,
    address_type: AddressType,
) -> DesiredState {
    let mut st = DesiredState::default();
    let mut index: FxHashMap<PortMapKey, usize> = FxHashMap::default();
    let publish = pods::publish_not_ready(svc);
    for pod in pods_in {
        let pod = pod.borrow();
        if !pods::should_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(svc, pod);
        let key = PortMapKey::new(Some(&ports));
        let slot = match index.get(&key) {
            Some(&i) => i,
            None => {
                index.insert(key.clone(), st.port_maps.len());
                st.port_maps.push((key, ports, EndpointSet::default()));
                st.port_maps.len() - 1
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
