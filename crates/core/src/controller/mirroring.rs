//! §13 of the controller spec: the EndpointSlice mirroring controller. Custom Endpoints of a
//! selector-less Service are mirrored into EndpointSlices: one slice per (ports, address type),
//! at most `max_per_subset` addresses per subset (ready first), invalid IPs skipped with a warning.

use crate::vecmap::VecMap;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::endpoints::repack_subsets;
use super::plan::{Cause, Event, Planned};
use super::reconciler::{ApiCall, Verb};
use super::slices::slice_name_prefix;
use super::{ANNOTATION_TRIGGER_TIME, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, LABEL_SKIP_MIRROR, MIRRORING_CONTROLLER_NAME};
use crate::ip::parse_ip_sloppy;

/// `--mirroring-max-endpoints-per-subset` default.
pub const DEFAULT_MAX_PER_SUBSET: usize = 1000;
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What a mirroring sync does.
#[derive(Clone, Debug, Default)]
pub struct MirrorResult {
    pub calls: Vec<ApiCall>,
    pub events: Vec<Event>,
}

/// Whether an Endpoints object should be mirrored for this Service.
pub fn should_mirror(svc: Option<&Service>, ep: &Endpoints) -> bool {
    let Some(svc) = svc else { return false };
    if svc.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some() {
        return false;
    }
    if ep.metadata.labels.as_ref().and_then(|l| l.get(LABEL_SKIP_MIRROR)).map(String::as_str) == Some("true") {
        return false;
    }
    !ep.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(LEADER_ANNOTATION))
}

fn owner(ep: &Endpoints) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Endpoints".into(),
        name: ep.metadata.name.clone().unwrap_or_default(),
        uid: ep.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn to_endpoint(a: &EndpointAddress, ip: String, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![ip],
        conditions: Some(EndpointConditions { ready: Some(ready), ..Default::default() }),
        hostname: a.hostname.clone().filter(|h| !h.is_empty()),
        node_name: a.node_name.clone().filter(|n| !n.is_empty()),
        target_ref: a.target_ref.clone(),
        ..Default::default()
    }
}

type Key = (String, Vec<(String, i32, String, String)>);

/// The slices a mirrored Endpoints object should have, by (address type, ports).
fn desired(ep: &Endpoints, max_per_subset: usize, events: &mut Vec<Event>) -> VecMap<Key, (Vec<EndpointPort>, Vec<Endpoint>)> {
    let mut out: VecMap<Key, (Vec<EndpointPort>, Vec<Endpoint>)> = VecMap::new();
    let name = ep.metadata.name.clone().unwrap_or_default();
    for subset in repack_subsets(ep.subsets.as_deref().unwrap_or(&[])) {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let port_key: Vec<(String, i32, String, String)> = ports
            .iter()
            .map(|p| {
                (p.name.clone().unwrap_or_default(), p.port.unwrap_or(0), p.protocol.clone().unwrap_or_default(), p.app_protocol.clone().unwrap_or_default())
            })
            .collect();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, false));
        let total = subset.addresses.as_ref().map_or(0, Vec::len) + subset.not_ready_addresses.as_ref().map_or(0, Vec::len);
        let mut skipped_invalid = 0;
        for (a, r) in ready.chain(not_ready).take(max_per_subset) {
            let Some(ip) = parse_ip_sloppy(&a.ip) else {
                skipped_invalid += 1;
                continue;
            };
            let at = if ip.is_ipv6() { "IPv6" } else { "IPv4" };
            let entry = out.entry((at.to_string(), port_key.clone())).or_insert_with(|| (ports.clone(), Vec::new()));
            entry.1.push(to_endpoint(a, ip.to_string(), r));
        }
        if skipped_invalid > 0 {
            events.push(Event::warning(
                "AddressNotMirrored",
                format!("{skipped_invalid} invalid address(es) in Endpoints {name} were not mirrored"),
            ));
        }
        if total > max_per_subset {
            events.push(Event::warning(
                "EndpointsTruncated",
                format!("A subset of Endpoints {name} has {total} addresses; {max_per_subset} were mirrored"),
            ));
        }
    }
    out
}

fn slice_key(s: &EndpointSlice) -> Key {
    let ports = s
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap_or_default(), p.port.unwrap_or(0), p.protocol.clone().unwrap_or_default(), p.app_protocol.clone().unwrap_or_default()))
        .collect();
    (s.address_type.clone(), ports)
}

/// One mirroring sync for an Endpoints object (or its deletion: `ep` is `None`). `existing` are the
/// slices labelled with this name and managed by the mirroring controller.
pub fn sync(svc: Option<&Service>, ep: Option<&Endpoints>, existing: &[EndpointSlice], max_per_subset: usize) -> MirrorResult {
    let mut res = MirrorResult::default();
    let Some(ep) = ep.filter(|e| should_mirror(svc, e)) else {
        res.calls = existing.iter().map(|s| ApiCall { verb: Verb::Delete, slice: s.clone(), cause: Cause::NotOwned }).collect();
        return res;
    };
    let name = ep.metadata.name.clone().unwrap_or_default();
    let mut labels = ep.metadata.labels.clone().unwrap_or_default();
    labels.insert(LABEL_SERVICE_NAME.into(), name.clone());
    labels.insert(LABEL_MANAGED_BY.into(), MIRRORING_CONTROLLER_NAME.into());
    let mut annotations = ep.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(ANNOTATION_TRIGGER_TIME);
    annotations.remove(LAST_APPLIED);
    let annotations = (!annotations.is_empty()).then_some(annotations);

    let want = desired(ep, max_per_subset.max(1), &mut res.events);
    let mut to_create: Vec<Planned> = Vec::new();
    let mut to_update: Vec<Planned> = Vec::new();
    let mut to_delete: Vec<Planned> = Vec::new();
    let mut used: VecMap<Key, ()> = VecMap::new();
    for s in existing {
        let k = slice_key(s);
        match want.get(&k) {
            Some((_, endpoints)) if used.insert(k.clone(), ()).is_none() => {
                let same = s.endpoints.as_deref().unwrap_or(&[]) == endpoints.as_slice()
                    && s.metadata.labels.as_ref() == Some(&labels)
                    && s.metadata.annotations == annotations;
                if !same {
                    let mut u = s.clone();
                    u.endpoints = Some(endpoints.clone());
                    u.metadata.labels = Some(labels.clone());
                    u.metadata.annotations = annotations.clone();
                    to_update.push(Planned::new(u, Cause::EndpointsChanged));
                }
            }
            _ => to_delete.push(Planned::new(s.clone(), Cause::PortMapGone)),
        }
    }
    for (k, (ports, endpoints)) in &want {
        if used.contains_key(k) {
            continue;
        }
        to_create.push(Planned::new(
            EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(slice_name_prefix(&name)),
                    namespace: ep.metadata.namespace.clone(),
                    labels: Some(labels.clone()),
                    annotations: annotations.clone(),
                    owner_references: Some(vec![owner(ep)]),
                    ..Default::default()
                },
                address_type: k.0.clone(),
                endpoints: Some(endpoints.clone()),
                ports: Some(ports.clone()),
            },
            Cause::NewSlice,
        ));
    }
    // Recycling, as in §7: a create takes the name of a delete of the same address type.
    let mut i = 0;
    while i < to_delete.len() {
        let Some(last) = to_create.last() else { break };
        if to_delete[i].slice.address_type == last.slice.address_type {
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
    for (verb, list) in [(Verb::Create, to_create), (Verb::Update, to_update), (Verb::Delete, to_delete)] {
        res.calls.extend(list.into_iter().map(|p| ApiCall { verb, slice: p.slice, cause: p.cause }));
    }
    res
}
