//! §12 of the controller spec: the legacy Endpoints controller. One Endpoints object per selector
//! Service, a single IP family, subsets repacked by port set, and truncation to 1000 addresses with
//! the `endpoints.kubernetes.io/over-capacity` annotation.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service};
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
    Some(EndpointAddress {
        ip: ip.to_string(),
        node_name: Some(pods::node_name(pod).to_string()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some(pod.metadata.namespace.clone().unwrap_or_default()),
            name: Some(pod.metadata.name.clone().unwrap_or_default()),
            uid: Some(pod.metadata.uid.clone().unwrap_or_default()),
            ..Default::default()
        }),
        hostname: pods::should_set_hostname(pod, svc).then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()).unwrap_or_default()),
    })
}

fn uid(a: &EndpointAddress) -> &str {
    a.target_ref.as_ref().and_then(|r| r.uid.as_deref()).unwrap_or("")
}

type PortKey = (String, i32, String, Option<String>);

fn port_key(p: &EndpointPort) -> PortKey {
    (p.name.clone().unwrap_or_default(), p.port, p.protocol.clone().unwrap_or_default(), p.app_protocol.clone())
}

/// `RepackSubsets`: each address (by IP and pod UID) is mapped to the ports it serves, ready winning
/// over not ready; ports that share exactly the same addresses become one subset. Addresses are
/// sorted by IP then UID, ports by name, number and protocol, subsets by their first address. (The
/// real code orders ports and subsets by a hash; any order is the same object to every client.)
pub fn repack_subsets(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    // port (None = the port-less sentinel) → address key → (address, ready)
    let mut by_port: BTreeMap<Option<PortKey>, (Option<EndpointPort>, BTreeMap<(String, String), (EndpointAddress, bool)>)> =
        BTreeMap::new();
    for s in subsets {
        let ports: Vec<Option<&EndpointPort>> = match s.ports.as_deref() {
            Some(p) if !p.is_empty() => p.iter().map(Some).collect(),
            _ => vec![None],
        };
        for port in ports {
            let entry = by_port.entry(port.map(port_key)).or_insert_with(|| (port.cloned(), BTreeMap::new()));
            let ready = s.addresses.iter().flatten().map(|a| (a, true));
            let not_ready = s.not_ready_addresses.iter().flatten().map(|a| (a, false));
            for (a, r) in ready.chain(not_ready) {
                let key = (a.ip.clone(), uid(a).to_string());
                match entry.1.get_mut(&key) {
                    Some(slot) => slot.1 |= r,
                    None => {
                        entry.1.insert(key, (a.clone(), r));
                    }
                }
            }
        }
    }
    // Group ports by their exact (address, ready) set.
    let mut groups: BTreeMap<Vec<((String, String), bool)>, (Vec<EndpointPort>, Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for (_, (port, addrs)) in by_port {
        let sig: Vec<((String, String), bool)> = addrs.iter().map(|(k, (_, r))| (k.clone(), *r)).collect();
        let g = groups.entry(sig).or_insert_with(|| {
            let ready = addrs.values().filter(|(_, r)| *r).map(|(a, _)| a.clone()).collect();
            let not_ready = addrs.values().filter(|(_, r)| !*r).map(|(a, _)| a.clone()).collect();
            (Vec::new(), ready, not_ready)
        });
        if let Some(p) = port {
            g.0.push(p);
        }
    }
    let mut out: Vec<EndpointSubset> = groups
        .into_values()
        .map(|(mut ports, ready, not_ready)| {
            ports.sort_by_key(port_key);
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    let first = |s: &EndpointSubset| {
        s.addresses
            .iter()
            .flatten()
            .chain(s.not_ready_addresses.iter().flatten())
            .next()
            .map(|a| (a.ip.clone(), uid(a).to_string()))
    };
    out.sort_by(|a, b| first(a).cmp(&first(b)).then_with(|| {
        let pk = |s: &EndpointSubset| s.ports.iter().flatten().map(port_key).collect::<Vec<_>>();
        pk(a).cmp(&pk(b))
    }));
    out
}

/// The desired subsets for a Service and its matching pods (before truncation).
pub fn desired_subsets<P: Borrow<Pod>>(svc: &Service, pods_in: &[P]) -> Vec<EndpointSubset> {
    let publish = pods::publish_not_ready(svc);
    let ports = svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    let mut subsets = Vec::new();
    for pod in pods_in {
        let pod = pod.borrow();
        if !pods::should_be_in_endpoints(pod, publish) {
            continue;
        }
        let Some(addr) = pod_address(svc, pod) else { continue };
        let ready = publish || pods::is_ready(pod);
        let mut add = |port: Option<EndpointPort>| {
            let (a, n) = if ready { (Some(vec![addr.clone()]), None) } else { (None, Some(vec![addr.clone()])) };
            subsets.push(EndpointSubset { addresses: a, not_ready_addresses: n, ports: port.map(|p| vec![p]) });
        };
        if ports.is_empty() {
            if pods::is_headless(svc) {
                add(None);
            }
            continue;
        }
        for sp in &ports {
            if let Some(n) = pods::find_port(pod, sp) {
                add(Some(EndpointPort {
                    name: sp.name.clone(),
                    port: n,
                    protocol: Some(pods::service_port_protocol(sp).to_string()),
                    app_protocol: sp.app_protocol.clone(),
                }));
            }
        }
    }
    repack_subsets(&subsets)
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

fn strip_resource_versions(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut v = subsets.to_vec();
    for s in v.iter_mut() {
        for a in s.addresses.iter_mut().flatten().chain(s.not_ready_addresses.iter_mut().flatten()) {
            if let Some(r) = a.target_ref.as_mut() {
                r.resource_version = None;
            }
        }
    }
    v
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
        let cur_subsets = cur.subsets.clone().unwrap_or_default();
        if strip_resource_versions(&cur_subsets) == strip_resource_versions(&subsets)
            && compare_labels == svc_labels
            && capacity_annotation_correct(cur.metadata.annotations.as_ref(), &cur_subsets)
        {
            return EndpointsWrite::None;
        }
    }
    let mut ep = current.cloned().unwrap_or_else(|| Endpoints {
        metadata: ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            ..Default::default()
        },
        subsets: None,
    });
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
