//! Pods and Nodes written as JSON through mirrors of the fields the simulation and the "Your
//! objects" paste ever set. The full `Pod` and `Node` encoders reach every volume source, probe and
//! security setting of the API, about 150 KB of the page's WebAssembly; these mirrors are a few
//! kilobytes. A test (`lean_json_is_the_real_json`) checks, over every scenario, that a mirror writes
//! exactly what the real encoder writes, so a field set somewhere without a mirror fails it.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ContainerStatus, Node, NodeAddress, NodeCondition, Pod, PodCondition, PodIP, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Typed<'a, S, T> {
    api_version: &'static str,
    kind: &'static str,
    metadata: &'a ObjectMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    spec: Option<S>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<T>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeanContainer<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ports: Option<&'a [ContainerPort]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_policy: Option<&'a str>,
}

impl<'a> LeanContainer<'a> {
    fn of(c: &'a Container) -> Self {
        LeanContainer { name: &c.name, image: c.image.as_deref(), ports: c.ports.as_deref(), restart_policy: c.restart_policy.as_deref() }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeanPodSpec<'a> {
    containers: Vec<LeanContainer<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    init_containers: Option<Vec<LeanContainer<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subdomain: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    termination_grace_period_seconds: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeanContainerStatus<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    container_id: Option<&'a str>,
    image: &'a str,
    #[serde(rename = "imageID")]
    image_id: &'a str,
    name: &'a str,
    ready: bool,
    restart_count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<bool>,
}

impl<'a> LeanContainerStatus<'a> {
    fn of(c: &'a ContainerStatus) -> Self {
        LeanContainerStatus {
            container_id: c.container_id.as_deref(),
            image: &c.image,
            image_id: &c.image_id,
            name: &c.name,
            ready: c.ready,
            restart_count: c.restart_count,
            started: c.started,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeanPodStatus<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    conditions: Option<&'a [PodCondition]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_statuses: Option<Vec<LeanContainerStatus<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<&'a str>,
    #[serde(rename = "podIP", skip_serializing_if = "Option::is_none")]
    pod_ip: Option<&'a str>,
    #[serde(rename = "podIPs", skip_serializing_if = "Option::is_none")]
    pod_ips: Option<&'a [PodIP]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<&'a Time>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeanNodeSpec<'a> {
    #[serde(rename = "podCIDR", skip_serializing_if = "Option::is_none")]
    pod_cidr: Option<&'a str>,
    #[serde(rename = "podCIDRs", skip_serializing_if = "Option::is_none")]
    pod_cidrs: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    taints: Option<&'a [Taint]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unschedulable: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeanNodeStatus<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    addresses: Option<&'a [NodeAddress]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allocatable: Option<&'a BTreeMap<String, Quantity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<&'a BTreeMap<String, Quantity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conditions: Option<&'a [NodeCondition]>,
}

/// A Pod, serialized through the mirrors.
pub(crate) fn pod<S: serde::Serializer>(p: &Pod, s: S) -> Result<S::Ok, S::Error> {
    let spec = p.spec.as_ref().map(|sp| LeanPodSpec {
        containers: sp.containers.iter().map(LeanContainer::of).collect(),
        hostname: sp.hostname.as_deref(),
        init_containers: sp.init_containers.as_ref().map(|v| v.iter().map(LeanContainer::of).collect()),
        node_name: sp.node_name.as_deref(),
        subdomain: sp.subdomain.as_deref(),
        termination_grace_period_seconds: sp.termination_grace_period_seconds,
    });
    let status = p.status.as_ref().map(|st| LeanPodStatus {
        conditions: st.conditions.as_deref(),
        container_statuses: st.container_statuses.as_ref().map(|v| v.iter().map(LeanContainerStatus::of).collect()),
        phase: st.phase.as_deref(),
        pod_ip: st.pod_ip.as_deref(),
        pod_ips: st.pod_ips.as_deref(),
        start_time: st.start_time.as_ref(),
    });
    Typed { api_version: "v1", kind: "Pod", metadata: &p.metadata, spec, status }.serialize(s)
}

/// A Node, serialized through the mirrors.
pub(crate) fn node<S: serde::Serializer>(n: &Node, s: S) -> Result<S::Ok, S::Error> {
    let spec = n.spec.as_ref().map(|sp| LeanNodeSpec {
        pod_cidr: sp.pod_cidr.as_deref(),
        pod_cidrs: sp.pod_cidrs.as_deref(),
        taints: sp.taints.as_deref(),
        unschedulable: sp.unschedulable,
    });
    let status = n.status.as_ref().map(|st| LeanNodeStatus {
        addresses: st.addresses.as_deref(),
        allocatable: st.allocatable.as_ref(),
        capacity: st.capacity.as_ref(),
        conditions: st.conditions.as_deref(),
    });
    Typed { api_version: "v1", kind: "Node", metadata: &n.metadata, spec, status }.serialize(s)
}

/// `serialize_with`-style wrappers, so callers can hand them to `serde_json`.
pub(crate) struct LeanPod<'a>(pub &'a Pod);
pub(crate) struct LeanNode<'a>(pub &'a Node);

impl Serialize for LeanPod<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        pod(self.0, s)
    }
}

impl Serialize for LeanNode<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        node(self.0, s)
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::{Kind, Obj};
    use super::super::scenario::Scenario;
    use super::super::{Action, Ev, Sim};

    fn check(sim: &Sim, what: &str) -> usize {
        let mut n = 0;
        for kind in [Kind::Pod, Kind::Node] {
            for o in sim.api.list(kind) {
                let real = match o {
                    Obj::Pod(p) => serde_json::to_value(p),
                    Obj::Node(x) => serde_json::to_value(x),
                    _ => unreachable!(),
                }
                .unwrap();
                assert_eq!(o.to_json(), real, "{what}: {kind:?}");
                assert_eq!(o.json_len(), serde_json::to_vec(&real).unwrap().len(), "{what}: {kind:?}");
                n += 1;
            }
        }
        n
    }

    #[test]
    fn lean_json_is_the_real_json() {
        let mut checked = 0;
        for sc in Scenario::builtin() {
            let mut sim = Sim::new(&sc).unwrap();
            sim.run_until(30_000);
            // Crash, delete, drain and fail things, so every field the simulation sets shows up.
            let pods: Vec<String> = sim.api.list(Kind::Pod).filter_map(|o| o.meta().name.clone()).take(3).collect();
            let nodes: Vec<String> = sim.api.list(Kind::Node).filter_map(|o| o.meta().name.clone()).collect();
            let now = sim.now;
            let mut acts: Vec<Action> = Vec::new();
            if let [a, b, c, ..] = &pods[..] {
                acts.push(Action::KillPod { pod: a.clone() });
                acts.push(Action::DeletePod { pod: b.clone() });
                acts.push(Action::SetPodReady { pod: c.clone(), ready: false });
                sim.schedule(now, Ev::PodCrash(format!("default/{c}")));
            }
            if let [x, y, ..] = &nodes[..] {
                acts.push(Action::DrainNode { node: x.clone() });
                acts.push(Action::FailNode { node: y.clone() });
            }
            for a in acts {
                sim.schedule(now, Ev::Action(Box::new(a)));
            }
            for t in (35_000..=150_000).step_by(5_000) {
                sim.run_until(t);
                checked += check(&sim, &format!("{} at {t} ms", sc.id));
            }
        }
        assert!(checked > 10_000, "only {checked} objects checked");
    }
}
