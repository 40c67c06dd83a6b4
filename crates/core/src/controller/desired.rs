//! §3 of the controller spec: which address types a Service needs, and the desired endpoint of each
//! Pod (ports, port-map key, fields and conditions, identity and "changed").


use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use rustc_hash::FxHashMap;
use std::borrow::Cow;

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
    endpoint_addresses_borrowed(pod, address_type).into_iter().map(Cow::into_owned).collect()
}

/// [`endpoint_addresses`], borrowing each address that is already canonical from the pod.
fn endpoint_addresses_borrowed(pod: &Pod, address_type: AddressType) -> Vec<Cow<'_, str>> {
    let want_v6 = address_type == AddressType::IPv6;
    pods::pod_ips(pod)
        .filter_map(|ip| {
            if crate::ip::is_canonical_ipv4(ip) {
                return (!want_v6).then_some(Cow::Borrowed(ip));
            }
            match parse_ip_sloppy(ip) {
                Some(std::net::IpAddr::V6(a)) => want_v6.then(|| Cow::Owned(a.to_string())),
                Some(std::net::IpAddr::V4(a)) => (!want_v6).then(|| Cow::Owned(a.to_string())),
                None => (!want_v6).then_some(Cow::Borrowed("<nil>")),
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

/// An endpoint's identity (§3.5), borrowed: its addresses (in any order), hostname, and targetRef
/// namespace and name.
struct Identity<'x, S> {
    addresses: &'x [S],
    hostname: &'x str,
    namespace: &'x str,
    name: &'x str,
}

fn identity(ep: &Endpoint) -> Identity<'_, String> {
    let r = ep.target_ref.as_ref();
    Identity {
        addresses: &ep.addresses,
        hostname: ep.hostname.as_deref().unwrap_or(""),
        namespace: r.and_then(|r| r.namespace.as_deref()).unwrap_or(""),
        name: r.and_then(|r| r.name.as_deref()).unwrap_or(""),
    }
}

/// Hash of an identity, computed without allocating when there is at most one address.
fn identity_hash<S: AsRef<str>>(id: &Identity<'_, S>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    if id.addresses.len() > 1 {
        let mut a: Vec<&str> = id.addresses.iter().map(AsRef::as_ref).collect();
        crate::sort::all(&mut a);
        a.hash(&mut h);
    } else {
        for a in id.addresses {
            a.as_ref().hash(&mut h);
        }
    }
    id.hostname.hash(&mut h);
    id.namespace.hash(&mut h);
    id.name.hash(&mut h);
    h.finish()
}

fn same_identity_of<S: AsRef<str>, T: AsRef<str>>(a: &Identity<'_, S>, b: &Identity<'_, T>) -> bool {
    let addresses_equal = if a.addresses.len() <= 1 || b.addresses.len() <= 1 {
        a.addresses.len() == b.addresses.len() && a.addresses.iter().zip(b.addresses).all(|(x, y)| x.as_ref() == y.as_ref())
    } else {
        let mut x: Vec<&str> = a.addresses.iter().map(AsRef::as_ref).collect();
        let mut y: Vec<&str> = b.addresses.iter().map(AsRef::as_ref).collect();
        crate::sort::all(&mut x);
        crate::sort::all(&mut y);
        x == y
    };
    addresses_equal && a.hostname == b.hostname && a.namespace == b.namespace && a.name == b.name
}

/// Whether two endpoints have the same identity (§3.5).
pub fn same_identity(a: &Endpoint, b: &Endpoint) -> bool {
    same_identity_of(&identity(a), &identity(b))
}

/// The desired endpoint of one pod (§3.4), not yet built: what identity and "changed" (§3.5) read,
/// borrowed from the pod, its node and the Service. Most of a sync's desired endpoints match an
/// existing one that has not changed and are never written; only those that go into a slice being
/// written are built, by [`pod_to_endpoint`] itself, so what is written is exactly what it gives.
#[derive(Clone, Debug)]
pub struct DesiredEndpoint<'a> {
    pod: &'a Pod,
    node: Option<&'a Node>,
    svc: &'a Service,
    address_type: AddressType,
    addresses: Vec<Cow<'a, str>>,
    hostname: Option<&'a str>,
}

impl<'a> DesiredEndpoint<'a> {
    pub fn new(pod: &'a Pod, node: Option<&'a Node>, svc: &'a Service, address_type: AddressType) -> Self {
        let hostname = pods::should_set_hostname(pod, svc)
            .then(|| pod.spec.as_ref().and_then(|s| s.hostname.as_deref()).unwrap_or(""));
        DesiredEndpoint { pod, node, svc, address_type, addresses: endpoint_addresses_borrowed(pod, address_type), hostname }
    }

    pub fn has_addresses(&self) -> bool {
        !self.addresses.is_empty()
    }

    fn identity(&self) -> Identity<'_, Cow<'a, str>> {
        Identity {
            addresses: &self.addresses,
            hostname: self.hostname.unwrap_or(""),
            namespace: self.pod.metadata.namespace.as_deref().unwrap_or(""),
            name: self.pod.metadata.name.as_deref().unwrap_or(""),
        }
    }

    /// The endpoint itself, as [`pod_to_endpoint`] makes it.
    pub fn build(&self) -> Endpoint {
        pod_to_endpoint(self.pod, self.node, self.svc, self.address_type)
    }

    /// [`endpoint_changed`] between this endpoint, built, and `existing`, without building it.
    pub fn changed_from(&self, existing: &Endpoint) -> bool {
        let pod = self.pod;
        let node_name = pods::node_name(pod);
        let zone = self
            .node
            .and_then(|n| n.metadata.labels.as_ref())
            .and_then(|l| l.get(LABEL_ZONE))
            .filter(|z| !z.is_empty())
            .map(String::as_str);
        if existing.node_name.as_deref() != (!node_name.is_empty()).then_some(node_name) || existing.zone.as_deref() != zone {
            return true;
        }
        let serving = pods::is_ready(pod);
        let terminating = pods::is_terminating(pod);
        let ready = pods::publish_not_ready(self.svc) || (serving && !terminating);
        let c = existing.conditions.as_ref();
        if (c.and_then(|c| c.ready), c.and_then(|c| c.serving), c.and_then(|c| c.terminating))
            != (Some(ready), Some(serving), Some(terminating))
        {
            return true;
        }
        let Some(r) = existing.target_ref.as_ref() else { return true };
        r.api_version.is_some()
            || r.field_path.is_some()
            || r.kind.as_deref() != Some("Pod")
            || r.name.as_deref() != Some(pod.metadata.name.as_deref().unwrap_or(""))
            || r.namespace.as_deref() != Some(pod.metadata.namespace.as_deref().unwrap_or(""))
            || r.uid.as_deref() != Some(pod.metadata.uid.as_deref().unwrap_or(""))
    }
}

/// A set of desired endpoints keyed by identity, which hands its endpoints out in insertion order
/// (`PopAny`): deterministic, and one of the orders Go's map iteration can produce. Lookups hash the
/// identity without allocating and verify it against the stored endpoint.
#[derive(Clone, Debug, Default)]
pub struct EndpointSet<'a> {
    entries: Vec<Option<DesiredEndpoint<'a>>>,
    /// identity hash → index of a live entry; further live entries with the same hash are in `more`.
    index: FxHashMap<u64, usize>,
    more: FxHashMap<u64, Vec<usize>>,
    len: usize,
    cursor: usize,
}

impl<'a> EndpointSet<'a> {
    fn find<S: AsRef<str>>(&self, h: u64, id: &Identity<'_, S>) -> Option<usize> {
        let live = |i: usize| self.entries[i].as_ref().is_some_and(|e| same_identity_of(&e.identity(), id));
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
    pub fn insert(&mut self, ep: DesiredEndpoint<'a>) {
        let (h, found) = {
            let id = ep.identity();
            let h = identity_hash(&id);
            (h, self.find(h, &id))
        };
        if let Some(i) = found {
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

    /// Take out the desired endpoint with the same identity as `ep`.
    pub fn remove_matching(&mut self, ep: &Endpoint) -> Option<DesiredEndpoint<'a>> {
        let id = identity(ep);
        let h = identity_hash(&id);
        let i = self.find(h, &id)?;
        self.unindex(h, i);
        let out = self.entries[i].take();
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    pub fn pop_any(&mut self) -> Option<DesiredEndpoint<'a>> {
        while self.cursor < self.entries.len() {
            let i = self.cursor;
            self.cursor += 1;
            if let Some(ep) = self.entries[i].take() {
                self.unindex(identity_hash(&ep.identity()), i);
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
pub struct DesiredState<'a> {
    pub port_maps: Vec<(PortMapKey, Vec<EndpointPort>, EndpointSet<'a>)>,
    pub errors: Vec<String>,
}

impl DesiredState<'_> {
    pub fn find(&self, key: &PortMapKey) -> Option<usize> {
        self.port_maps.iter().position(|(k, _, _)| k == key)
    }
}

/// §3.2: the desired endpoints of one address type, grouped by port map.
pub fn desired_endpoints<'a, P: std::borrow::Borrow<Pod>>(
    svc: &'a Service,
    pods_in: &'a [P],
    nodes: &crate::vecmap::VecMap<&str, &'a Node>,
    address_type: AddressType,
) -> DesiredState<'a> {
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
        let ep = DesiredEndpoint::new(pod, node, svc, address_type);
        if ep.has_addresses() {
            st.port_maps[slot].2.insert(ep);
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use proptest::prelude::*;

    /// A pod with the fields §3.4 and §3.5 read set from `bits` and `pick`.
    fn pod(bits: u32, pick: u8) -> Pod {
        let ips: &[&str] = match pick % 5 {
            0 => &["10.1.0.7"],
            1 => &["10.1.0.7", "fd00::7"],
            2 => &["010.001.000.007"],
            3 => &["fd00:0::7", "10.1.0.8"],
            _ => &["not-an-ip"],
        };
        let mut p = fixtures::pod("web", (pick % 3) as u32, ["node-a", "node-b", ""][(pick % 3) as usize], bits & 1 != 0, ips[0]);
        if let Some(st) = p.status.as_mut() {
            st.pod_ips = Some(ips.iter().map(|ip| k8s_openapi::api::core::v1::PodIP { ip: ip.to_string() }).collect());
        }
        if bits & 2 != 0 {
            p.metadata.deletion_timestamp = Some(Time(Default::default()));
        }
        if bits & 4 != 0 {
            p.metadata.namespace = None;
        }
        if bits & 8 != 0 {
            p.metadata.uid = None;
        }
        if let Some(spec) = p.spec.as_mut() {
            if bits & 16 != 0 {
                spec.hostname = Some("h".into());
            }
            if bits & 32 != 0 {
                spec.subdomain = Some("web".into());
            }
        }
        p
    }

    /// An existing endpoint: `base` with one field changed (`which` 0 changes none).
    fn existing(base: &Endpoint, which: u32) -> Endpoint {
        let mut e = base.clone();
        let c = e.conditions.get_or_insert_with(Default::default);
        let r = e.target_ref.get_or_insert_with(Default::default);
        match which {
            1 => e.node_name = e.node_name.map_or(Some("node-a".into()), |_| None),
            2 => e.zone = Some("zone-z".into()),
            3 => e.zone = None,
            4 => e.conditions = None,
            5 => c.serving = c.serving.map(|s| !s),
            6 => c.ready = c.ready.map(|s| !s),
            7 => c.terminating = None,
            8 => e.target_ref = None,
            9 => r.api_version = Some("v1".into()),
            10 => r.field_path = Some("x".into()),
            11 => r.kind = None,
            12 => r.uid = Some("other".into()),
            13 => r.resource_version = Some("7".into()),
            14 => r.namespace = None,
            15 => r.name = Some("other".into()),
            16 => e.hostname = Some("other".into()),
            17 => e.addresses.reverse(),
            18 => e.hints = Some(Default::default()),
            _ => {}
        }
        e
    }

    proptest! {
        /// The lazy desired endpoint answers identity and "changed" exactly as the endpoint it builds,
        /// which is `pod_to_endpoint`'s.
        #[test]
        fn lazy_endpoint_agrees_with_the_built_one(
            pod_bits in 0u32..64, pick in any::<u8>(), other_bits in 0u32..64, other_pick in any::<u8>(),
            change in 0u32..20, zoned in any::<bool>(), publish in any::<bool>(), v6 in any::<bool>(),
        ) {
            let node = fixtures::node("node-a", if zoned { "zone-a" } else { "" }, "4");
            let mut svc = fixtures::service("web");
            if let Some(spec) = svc.spec.as_mut() {
                spec.publish_not_ready_addresses = Some(publish);
                spec.cluster_ip = Some("None".into());
            }
            let at = if v6 { AddressType::IPv6 } else { AddressType::IPv4 };
            let p = pod(pod_bits, pick);
            let d = DesiredEndpoint::new(&p, Some(&node), &svc, at);
            let built = d.build();
            prop_assert_eq!(&built, &pod_to_endpoint(&p, Some(&node), &svc, at));
            prop_assert_eq!(d.has_addresses(), !built.addresses.is_empty());
            prop_assert_eq!(identity_hash(&d.identity()), identity_hash(&identity(&built)));
            // Against endpoints of this pod and of another, each with some fields changed.
            let q = pod(other_bits, other_pick);
            for base in [built.clone(), pod_to_endpoint(&q, None, &svc, at)] {
                let e = existing(&base, change);
                prop_assert_eq!(d.changed_from(&e), endpoint_changed(&built, &e), "changed: {:?} vs {:?}", built, e);
                let same = same_identity(&built, &e);
                prop_assert_eq!(same_identity_of(&d.identity(), &identity(&e)), same);
                if same {
                    prop_assert_eq!(identity_hash(&d.identity()), identity_hash(&identity(&e)));
                }
            }
        }
    }

    /// The set finds a desired endpoint by an existing one of the same identity, hands them out in
    /// insertion order, and an insert of the same identity replaces in place.
    #[test]
    fn the_set_matches_by_identity_and_pops_in_insertion_order() {
        let svc = fixtures::service("web");
        let node = fixtures::node("node-a", "zone-a", "4");
        let pods: Vec<Pod> = (0..4).map(|i| fixtures::pod("web", i, "node-a", true, &fixtures::pod_ip(i))).collect();
        let mut set = EndpointSet::default();
        for p in &pods {
            set.insert(DesiredEndpoint::new(p, Some(&node), &svc, AddressType::IPv4));
        }
        set.insert(DesiredEndpoint::new(&pods[1], Some(&node), &svc, AddressType::IPv4));
        assert_eq!(set.len(), 4);
        let mut e = pod_to_endpoint(&pods[2], Some(&node), &svc, AddressType::IPv4);
        e.zone = Some("elsewhere".into());
        let got = set.remove_matching(&e).expect("same identity");
        assert!(got.changed_from(&e));
        assert!(set.remove_matching(&e).is_none());
        let order: Vec<String> = std::iter::from_fn(|| set.pop_any()).map(|d| d.build().addresses[0].clone()).collect();
        assert_eq!(order, [0, 1, 3].map(fixtures::pod_ip));
        assert!(set.is_empty());
    }
}
