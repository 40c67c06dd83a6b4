//! The world the controllers watch: nodes with pod CIDRs, workloads (Deployment-like, with rolling
//! updates), and every Pod's life as the scheduler, the kubelet and the node lifecycle controller
//! drive it.

use crate::vecmap::{VecMap, VecSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodCondition, PodIP, PodSpec, PodStatus,
    Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::actions::Action;
use super::api::{key_of, Obj};
use super::scenario::{Scenario, WorkloadSpec};
use super::{Ev, NodeProxy, Sim};
use crate::controller::{pods as podutil, LABEL_ZONE};
use crate::input::decode;

#[derive(Clone, Debug)]
pub(crate) struct WorkloadRt {
    pub spec: WorkloadSpec,
    pub replicas: u32,
    pub version: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct PodRt {
    pub workload: String,
    pub version: u32,
    pub created_seq: u64,
    pub forced_unready: bool,
    pub running: bool,
    /// Its node failed: the process cannot answer.
    pub dead: bool,
    pub node: Option<String>,
    pub ips: Vec<String>,
    /// Its readiness probe is in a run of failures (see `flap`).
    pub flapping: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct NodeRt {
    pub index: u32,
    pub failed: bool,
    pub cordoned: bool,
    pub next_host: u32,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct World {
    pub workloads: VecMap<String, WorkloadRt>,
    /// Shared with snapshots until a Pod's runtime state changes; shared keys, so a snapshot's copy
    /// of the map copies pointers, not names.
    pub pods: crate::cowmap::CowMap<Arc<str>, std::sync::Arc<PodRt>>,
    pub nodes: VecMap<String, NodeRt>,
    pub dual_stack: bool,
    next_node_index: u32,
    next_cluster_ip: u32,
    next_node_port: u32,
    next_lb_ip: u32,
    pod_seq: u64,
    /// (workload, node) → bound pods, for the scheduler's spreading.
    pub(crate) bound: VecMap<(String, String), usize>,
    /// Workloads with a sync already scheduled (syncs are coalesced).
    pub sync_pending: VecSet<String>,
    /// Pod IP → the pod (`namespace/name`) that holds it.
    /// Shared keys and values: a snapshot's copy of this map copies no strings.
    pub(crate) ips_in_use: crate::cowmap::CowMap<Arc<str>, Arc<str>>,
}

impl World {
    /// Drop a pod's runtime state (it is gone from the API), releasing its node slot and IPs.
    /// The pod that holds an IP now.
    pub(crate) fn ip_owner(&self, ip: &str) -> Option<String> {
        self.ips_in_use.get(ip).map(|k| k.to_string())
    }

    pub(crate) fn forget_pod(&mut self, key: &str) -> Option<PodRt> {
        let rt = std::sync::Arc::unwrap_or_clone(self.pods.remove(key)?);
        if let Some(n) = &rt.node {
            if let Some(c) = self.bound.get_mut(&(rt.workload.clone(), n.clone())) {
                *c = c.saturating_sub(1);
            }
        }
        for ip in &rt.ips {
            self.ips_in_use.remove(ip.as_str());
        }
        Some(rt)
    }
}

/// Virtual time as an API timestamp (the run starts at 2025-01-01T00:00:00Z).
pub(crate) fn timestamp(ms: u64) -> Option<Time> {
    const BASE_MS: i64 = 1_735_689_600_000;
    k8s_openapi::jiff::Timestamp::from_millisecond(BASE_MS + ms as i64).ok().map(Time)
}

/// A node's InternalIP.
pub(crate) fn node_ip(index: u32) -> std::net::IpAddr {
    std::net::IpAddr::from([192, 168, (index / 250) as u8, (index % 250 + 2) as u8])
}

/// A node's pod CIDR for one family (pods get hosts 2..254 of it).
pub(crate) fn pod_cidr(index: u32, v6: bool) -> String {
    if v6 {
        format!("fd00:10:244:{index:x}::/64")
    } else {
        format!("10.{}.{}.0/24", 244 + index / 256, index % 256)
    }
}

/// Whether an address is in the cluster's pod network (10.244.0.0/14, fd00:10:244::/48).
pub(crate) fn in_pod_network(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => a.octets()[0] == 10 && (244..=247).contains(&a.octets()[1]),
        std::net::IpAddr::V6(a) => a.segments()[..3] == [0xfd00, 0x10, 0x244],
    }
}

/// The address client pods on a node send from (host 1 of its pod CIDR: never a workload pod).
pub(crate) fn client_ip(index: u32, v6: bool) -> std::net::IpAddr {
    if v6 {
        format!("fd00:10:244:{index:x}::1").parse().unwrap_or(std::net::IpAddr::from([0u16; 8]))
    } else {
        std::net::IpAddr::from([10, (244 + index / 256) as u8, (index % 256) as u8, 1])
    }
}

fn node_object(name: &str, zone: &str, cpu: &str, control_plane: bool, index: u32) -> Node {
    let mut labels = crate::sort::map([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        (LABEL_ZONE.to_string(), zone.to_string()),
        ("topology.kubernetes.io/region".to_string(), "region-1".to_string()),
    ]);
    if control_plane {
        labels.insert("node-role.kubernetes.io/control-plane".into(), String::new());
    }
    Node {
        metadata: ObjectMeta { name: Some(name.into()), labels: Some(labels), ..Default::default() },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(crate::sort::map([("cpu".to_string(), Quantity(cpu.into()))])),
            conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
            addresses: Some(vec![k8s_openapi::api::core::v1::NodeAddress { type_: "InternalIP".into(), address: node_ip(index).to_string() }]),
            ..Default::default()
        }),
    }
}

fn add_node(sim: &mut Sim, name: &str, zone: &str, cpu: &str, control_plane: bool, cause: &str) {
    if sim.world.nodes.contains_key(name) {
        sim.log("action", format!("node {name} already exists"), cause.into());
        return;
    }
    let index = sim.world.next_node_index;
    sim.world.next_node_index += 1;
    sim.world.nodes.insert(name.to_string(), NodeRt { index, failed: false, cordoned: false, next_host: 2 });
    sim.proxies.insert(
        name.to_string(),
        NodeProxy { informer: super::Informer { connected: true, ..Default::default() }, zone: zone.to_string(), index, ..Default::default() },
    );
    // A new kube-proxy starts with a full list of Services and slices.
    sim.relist_proxy(name);
    sim.write("create", Obj::Node(node_object(name, zone, cpu, control_plane, index)), "node", cause);
}

/// Build the initial world of a scenario.
pub(crate) fn build(sim: &mut Sim, sc: &Scenario) -> Result<(), String> {
    let w = &sc.world;
    sim.world.dual_stack = w.dual_stack;
    sim.world.next_cluster_ip = 10;
    if w.nodes.is_empty() {
        let per = w.nodes_per_zone.unwrap_or(3).clamp(1, 100);
        for z in &w.zones {
            for i in 0..per {
                add_node(sim, &format!("node-{z}-{i}"), z, "4", false, "initial world");
            }
        }
    } else {
        for n in &w.nodes {
            add_node(sim, &n.name, &n.zone, &n.cpu, n.control_plane, "initial world");
        }
    }
    for (i, v) in w.services.iter().enumerate() {
        let mut svc: Service = decode(v.clone(), "Service").map_err(|e| format!("world.services[{i}]: {e}"))?;
        default_service(sim, &mut svc);
        sim.write("create", Obj::Service(svc), "user", "initial world");
    }
    for (i, v) in w.endpoint_slices.iter().enumerate() {
        let mut s: k8s_openapi::api::discovery::v1::EndpointSlice =
            decode(v.clone(), "EndpointSlice").map_err(|e| format!("world.endpointSlices[{i}]: {e}"))?;
        s.metadata.namespace.get_or_insert_with(|| "default".into());
        sim.write("create", Obj::EndpointSlice(s), "user", "initial world");
    }
    for (i, v) in w.endpoints.iter().enumerate() {
        let mut e: k8s_openapi::api::core::v1::Endpoints =
            decode(v.clone(), "Endpoints").map_err(|e| format!("world.endpoints[{i}]: {e}"))?;
        e.metadata.namespace.get_or_insert_with(|| "default".into());
        sim.write("create", Obj::Endpoints((&e).into()), "user", "initial world");
    }
    for wl in &w.workloads {
        sim.world.workloads.insert(wl.name.clone(), WorkloadRt { spec: wl.clone(), replicas: wl.replicas, version: 1 });
        sim.world.sync_pending.insert(wl.name.clone());
        sim.schedule(0, Ev::WorkloadSync(wl.name.clone()));
    }
    Ok(())
}

/// What the API server's defaulting would fill in: namespace, ClusterIP, families.
fn default_service(sim: &mut Sim, svc: &mut Service) {
    svc.metadata.namespace.get_or_insert_with(|| "default".into());
    let dual = sim.world.dual_stack;
    let spec = svc.spec.get_or_insert_with(Default::default);
    if spec.type_.is_none() {
        spec.type_ = Some("ClusterIP".into());
    }
    let headless = spec.cluster_ip.as_deref() == Some("None");
    if spec.cluster_ip.is_none() && spec.type_.as_deref() != Some("ExternalName") {
        let n = sim.world.next_cluster_ip;
        sim.world.next_cluster_ip += 1;
        let v4 = format!("10.96.{}.{}", n / 256, n % 256);
        let v6 = format!("fd00:96::{n:x}");
        let wants_v6_first = spec.ip_families.as_ref().and_then(|f| f.first()).map(String::as_str) == Some("IPv6");
        let dual_here = dual && spec.ip_family_policy.as_deref() != Some("SingleStack");
        let ips = match (wants_v6_first, dual_here) {
            (false, false) => vec![v4],
            (true, false) => vec![v6],
            (false, true) => vec![v4, v6],
            (true, true) => vec![v6, v4],
        };
        spec.cluster_ip = ips.first().cloned();
        spec.cluster_ips = Some(ips);
    }
    if spec.ip_families.as_ref().is_none_or(|f| f.is_empty()) {
        let fams: Vec<String> = if headless {
            if dual { vec!["IPv4".into(), "IPv6".into()] } else { vec!["IPv4".into()] }
        } else {
            spec.cluster_ips
                .iter()
                .flatten()
                .map(|ip| if crate::ip::is_ipv6_string(ip) { "IPv6".to_string() } else { "IPv4".to_string() })
                .collect()
        };
        if !fams.is_empty() {
            spec.ip_family_policy.get_or_insert_with(|| if fams.len() > 1 { "PreferDualStack".into() } else { "SingleStack".into() });
            spec.ip_families = Some(fams);
        }
    }
    let wants_node_port = matches!(spec.type_.as_deref(), Some("NodePort") | Some("LoadBalancer"));
    for p in spec.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
        if p.target_port.is_none() {
            p.target_port = Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p.port));
        }
        if wants_node_port && p.node_port.is_none() {
            p.node_port = Some(30000 + (sim.world.next_node_port % 2768) as i32);
            sim.world.next_node_port += 1;
        }
    }
    if spec.type_.as_deref() == Some("LoadBalancer") {
        let n = sim.world.next_lb_ip;
        sim.world.next_lb_ip += 1;
        let st = svc.status.get_or_insert_with(Default::default);
        let lb = st.load_balancer.get_or_insert_with(Default::default);
        if lb.ingress.as_ref().is_none_or(|i| i.is_empty()) {
            lb.ingress = Some(vec![k8s_openapi::api::core::v1::LoadBalancerIngress {
                ip: Some(format!("203.0.113.{}", 10 + n % 240)),
                ..Default::default()
            }]);
        }
    }
}

fn template_hash(name: &str, version: u32) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{name}/{version}").bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..9).map(|i| A[((h >> (i * 6)) % A.len() as u64) as usize] as char).collect()
}

fn new_pod(sim: &mut Sim, wl: &str) -> Option<Pod> {
    let rt = sim.world.workloads.get(wl)?.clone();
    let hash = template_hash(wl, rt.version);
    let suffix = sim.rng.name_suffix();
    let name = format!("{wl}-{hash}-{suffix}");
    let mut labels = rt.spec.labels.clone();
    labels.insert("pod-template-hash".into(), hash);
    let port = |p: &super::scenario::PortSpec| ContainerPort {
        name: p.name.clone(),
        container_port: p.port,
        protocol: Some(p.protocol.clone()),
        ..Default::default()
    };
    let main_ports: Vec<ContainerPort> = rt.spec.ports.iter().filter(|p| !p.sidecar).map(port).collect();
    let side_ports: Vec<ContainerPort> = rt.spec.ports.iter().filter(|p| p.sidecar).map(port).collect();
    let spec = PodSpec {
        containers: vec![Container {
            name: "app".into(),
            image: Some(format!("registry.example/{wl}:v{}", rt.version)),
            ports: (!main_ports.is_empty()).then_some(main_ports),
            ..Default::default()
        }],
        init_containers: (!side_ports.is_empty()).then(|| {
            vec![Container {
                name: "sidecar".into(),
                restart_policy: Some("Always".into()),
                ports: Some(side_ports),
                ..Default::default()
            }]
        }),
        hostname: rt.spec.subdomain.as_ref().map(|_| name.clone()),
        subdomain: rt.spec.subdomain.clone(),
        termination_grace_period_seconds: Some(rt.spec.termination_grace_period_seconds.unwrap_or(30) as i64),
        ..Default::default()
    };
    Some(Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some("default".into()),
            labels: Some(labels),
            creation_timestamp: timestamp(sim.now),
            ..Default::default()
        },
        spec: Some(spec),
        status: Some(PodStatus { phase: Some("Pending".into()), ..Default::default() }),
    })
}

fn api_pod(sim: &Sim, key: &str) -> Option<Pod> {
    sim.api.pod(key).cloned()
}

fn pod_ready(p: &Pod) -> bool {
    podutil::is_ready(p)
}

fn set_ready(p: &mut Pod, ready: bool) {
    let status = p.status.get_or_insert_with(Default::default);
    let conds = status.conditions.get_or_insert_with(Vec::new);
    let v = if ready { "True" } else { "False" };
    for t in ["Ready", "ContainersReady"] {
        match conds.iter_mut().find(|c| c.type_ == t) {
            Some(c) => c.status = v.into(),
            None => conds.push(PodCondition { type_: t.into(), status: v.into(), ..Default::default() }),
        }
    }
}

/// What a workload sync needs to know of one of its live Pods.
struct Live {
    version: u32,
    created_seq: u64,
    running: bool,
    ready: bool,
}

/// The workload's live pods (not terminating, not failed), oldest first: (key, what the sync needs).
fn live_pods<'a>(sim: &'a Sim, wl: &str) -> Vec<(&'a str, Live)> {
    // Both maps are sorted by the same keys: walk them side by side (no lookup per Pod).
    let mut api = sim.api.pods_by_key().peekable();
    let mut v: Vec<(&str, Live)> = Vec::new();
    for (k, rt) in &sim.world.pods {
        while api.next_if(|(ak, _)| *ak < &**k).is_some() {}
        let Some((_, p)) = api.next_if(|(ak, _)| *ak == &**k) else { continue };
        if rt.workload != wl || podutil::is_terminating(p) || podutil::is_terminal(p) {
            continue;
        }
        let live = Live { version: rt.version, created_seq: rt.created_seq, running: rt.running, ready: pod_ready(p) };
        v.push((&**k, live));
    }
    crate::sort::by_key(&mut v, |(_, rt)| rt.created_seq);
    v
}

/// Ask for a workload sync now; several requests at one time make one sync.
pub(crate) fn request_workload_sync(sim: &mut Sim, wl: &str) {
    if sim.world.sync_pending.insert(wl.to_string()) {
        let now = sim.now;
        sim.schedule(now, Ev::WorkloadSync(wl.to_string()));
    }
}

use super::memo::WorkloadPlan;

/// The ReplicaSet/Deployment controllers in one: keep `replicas` pods, rolling out a new version
/// within maxSurge / maxUnavailable.
pub(crate) fn workload_sync(sim: &mut Sim, wl: &str) {
    sim.world.sync_pending.remove(wl);
    let Some(rt) = sim.world.workloads.get(wl) else { return };
    // In a timeline, a replay takes the plan from the memo (debug builds check it against the plan).
    let plan = match sim.memo.lookup_plan(sim.handled, sim.now, sim.hash, wl) {
        Some(plan) => {
            #[cfg(debug_assertions)]
            if plan_workload(sim, wl, rt) != plan {
                let t = sim.now;
                sim.violations.push(format!("t={t} the replay memo's plan for workload {wl} differs from the plan itself"));
            }
            plan
        }
        None => {
            let plan = plan_workload(sim, wl, rt);
            sim.memo.record_plan(sim.handled, sim.now, sim.hash, wl, &plan);
            plan
        }
    };
    // Walking the Pods costs about a fifth of what a controller sync's two walks do; a plan taken
    // from the memo about one ordinary event.
    sim.work += if sim.memo.enabled() { 1 } else { sim.world.pods.len() as u64 / (5 * Sim::PODS_PER_WORK) };
    for _ in 0..plan.create {
        create_pod(sim, wl, &plan.create_cause);
    }
    for k in plan.delete {
        delete_pod_gracefully(sim, &k, &plan.delete_cause);
    }
}

fn plan_workload(sim: &Sim, wl: &str, rt: &WorkloadRt) -> WorkloadPlan {
    let live = live_pods(sim, wl);
    let desired = rt.replicas as usize;
    let (new, old): (Vec<_>, Vec<_>) = live.iter().partition(|(_, p)| p.version == rt.version);
    let cause = format!("workload {wl}: {} live, {desired} desired", live.len());
    if old.is_empty() {
        let mut plan = WorkloadPlan { create: 0, create_cause: cause.clone(), delete: Vec::new(), delete_cause: cause };
        if live.len() < desired {
            plan.create = desired - live.len();
        } else if live.len() > desired {
            // Scale down: pods not yet running first, then not ready, then the newest.
            let mut victims: Vec<&(&str, Live)> = live.iter().collect();
            crate::sort::by_key(&mut victims, |(_, rt)| (rt.running, rt.ready, std::cmp::Reverse(rt.created_seq)));
            plan.delete = victims.iter().take(live.len() - desired).map(|(k, _)| k.to_string()).collect();
        }
        return plan;
    }
    let pct = |n: usize, up: bool| if up { (n * 25).div_ceil(100) } else { n * 25 / 100 };
    let mut surge = rt.spec.max_surge.map(|v| v as usize).unwrap_or_else(|| pct(desired, true));
    let unavailable = rt.spec.max_unavailable.map(|v| v as usize).unwrap_or_else(|| pct(desired, false));
    if surge == 0 && unavailable == 0 {
        surge = 1;
    }
    let can_create = (desired + surge).saturating_sub(live.len()).min(desired.saturating_sub(new.len()));
    let rollout_cause = format!("rolling update of {wl} to v{}", rt.version);
    let ready = live.iter().filter(|(_, p)| p.ready).count();
    let min_available = desired.saturating_sub(unavailable);
    let mut removable = ready.saturating_sub(min_available);
    let mut victims: Vec<&(&str, Live)> = old.clone();
    crate::sort::by_key(&mut victims, |(_, rt)| (rt.ready, rt.created_seq));
    let excess_total = (live.len() + can_create).saturating_sub(desired);
    let mut keys = Vec::new();
    for (k, p) in victims {
        if keys.len() >= excess_total {
            break;
        }
        if !p.ready {
            keys.push(k.to_string());
        } else if removable > 0 {
            removable -= 1;
            keys.push(k.to_string());
        }
    }
    WorkloadPlan { create: can_create, create_cause: rollout_cause.clone(), delete: keys, delete_cause: rollout_cause }
}

fn create_pod(sim: &mut Sim, wl: &str, cause: &str) {
    let Some(pod) = new_pod(sim, wl) else { return };
    let key = key_of(&pod.metadata);
    let version = sim.world.workloads.get(wl).map(|w| w.version).unwrap_or(1);
    sim.world.pod_seq += 1;
    let seq = sim.world.pod_seq;
    sim.world.pods.insert(
        key.as_str().into(),
        std::sync::Arc::new(PodRt {
            workload: wl.into(),
            version,
            created_seq: seq,
            forced_unready: false,
            running: false,
            dead: false,
            node: None,
            ips: Vec::new(),
            flapping: false,
        }),
    );
    if sim.write("create", Obj::Pod(pod), "workload", cause).is_some() {
        let at = sim.now + sim.config.schedule_delay_ms;
        sim.schedule(at, Ev::PodScheduled(key));
    } else {
        sim.world.forget_pod(&key);
    }
}

pub(crate) fn delete_pod_gracefully(sim: &mut Sim, key: &str, cause: &str) {
    let Some(mut p) = api_pod(sim, key) else { return };
    if podutil::is_terminating(&p) {
        return;
    }
    let running = sim.world.pods.get(key).is_some_and(|r| r.running);
    if !running {
        sim.write("delete", Obj::Pod(p), "kubelet", cause);
        sim.world.forget_pod(&key);
        return;
    }
    let grace = p.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30).max(0) as u64;
    p.metadata.deletion_timestamp = timestamp(sim.now + grace * 1000);
    p.metadata.deletion_grace_period_seconds = Some(grace as i64);
    sim.write("update", Obj::Pod(p), "apiserver", &format!("graceful delete: {cause}"));
    let at = sim.now + grace * 1000;
    sim.schedule(at, Ev::PodGone(key.to_string()));
    if let Some(wl) = sim.world.pods.get(key).map(|r| r.workload.clone()) {
        request_workload_sync(sim, &wl);
    }
}

pub(crate) fn pod_gone(sim: &mut Sim, key: &str) {
    let Some(p) = api_pod(sim, key) else { return };
    sim.write("delete", Obj::Pod(p), "kubelet", "grace period over: the pod is gone");
    if let Some(rt) = sim.world.forget_pod(&key) {
        request_workload_sync(sim, &rt.workload);
    }
}

/// The scheduler: spread over zones, then nodes, by this workload's pod count.
pub(crate) fn pod_scheduled(sim: &mut Sim, key: &str) {
    let Some(mut p) = api_pod(sim, key) else { return };
    if podutil::is_terminating(&p) || !podutil::node_name(&p).is_empty() {
        return;
    }
    let wl = sim.world.pods.get(key).map(|r| r.workload.clone()).unwrap_or_default();
    let per_node: VecMap<String, usize> = VecMap::from_iter(
        sim.world
            .bound
            .range((wl.clone(), String::new())..)
            .take_while(|((w, _), _)| *w == wl)
            .map(|((_, n), c)| (n.clone(), *c)),
    );
    let mut per_zone: VecMap<&str, usize> = VecMap::new();
    // (node, zone, this workload's pods on the node), for the usable nodes.
    let mut candidates: Vec<(&str, &str, usize)> = Vec::new();
    for n in sim.api.nodes() {
        let name = n.metadata.name.as_deref().unwrap_or("");
        let zone = n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_ZONE)).map_or("", String::as_str);
        let rt = sim.world.nodes.get(name);
        let usable = rt.is_some_and(|r| !r.failed && !r.cordoned)
            && !n.metadata.labels.as_ref().is_some_and(|l| l.contains_key("node-role.kubernetes.io/control-plane"));
        let on_node = per_node.get(name).copied().unwrap_or(0);
        *per_zone.entry(zone).or_insert(0) += on_node;
        if usable {
            candidates.push((name, zone, on_node));
        }
    }
    // Fewest in the zone, then on the node, then by name (names are unique: no ties).
    let best = candidates
        .iter()
        .map(|&(n, z, on_node)| (per_zone.get(z).copied().unwrap_or(0), on_node, n))
        .min()
        .map(|(_, _, n)| n.to_string());
    let Some(node) = best else {
        sim.log("scheduler", format!("pod {key} unschedulable"), "no ready, schedulable node".into());
        let at = sim.now + 5000;
        sim.schedule(at, Ev::PodScheduled(key.to_string()));
        return;
    };
    if let Some(spec) = p.spec.as_mut() {
        spec.node_name = Some(node.clone());
    }
    if let Some(rt) = sim.world.pods.get_mut(key).map(std::sync::Arc::make_mut) {
        rt.node = Some(node.clone());
    }
    *sim.world.bound.entry((wl.clone(), node.clone())).or_insert(0) += 1;
    let status = p.status.get_or_insert_with(Default::default);
    status.conditions.get_or_insert_with(Vec::new).push(PodCondition {
        type_: "PodScheduled".into(),
        status: "True".into(),
        ..Default::default()
    });
    sim.write("update", Obj::Pod(p), "scheduler", &format!("bound to {node}"));
    let at = sim.now + sim.config.container_start_ms;
    sim.schedule(at, Ev::PodStarted(key.to_string()));
}

fn allocate_ips(sim: &mut Sim, node: &str, key: &str) -> Vec<String> {
    let dual = sim.world.dual_stack;
    let Some(rt) = sim.world.nodes.get_mut(node) else { return Vec::new() };
    let index = rt.index;
    for _ in 0..253 {
        let host = rt.next_host;
        rt.next_host = if rt.next_host >= 254 { 2 } else { rt.next_host + 1 };
        let v4 = format!("10.{}.{}.{}", 244 + index / 256, index % 256, host);
        if sim.world.ips_in_use.contains_key(v4.as_str()) {
            continue;
        }
        let mut ips = vec![v4];
        if dual {
            ips.push(format!("fd00:10:244:{index:x}::{host:x}"));
        }
        let owner: Arc<str> = key.into();
        for ip in &ips {
            sim.world.ips_in_use.insert(ip.as_str().into(), Arc::clone(&owner));
        }
        return ips;
    }
    Vec::new()
}

/// The kubelet starts the containers: the pod gets its IPs and runs, not yet ready.
pub(crate) fn pod_started(sim: &mut Sim, key: &str) {
    let Some(mut p) = api_pod(sim, key) else { return };
    let node = podutil::node_name(&p).to_string();
    if podutil::is_terminating(&p) || sim.world.nodes.get(&node).is_none_or(|n| n.failed) {
        return;
    }
    let ips = allocate_ips(sim, &node, key);
    if ips.is_empty() {
        sim.log("kubelet", format!("pod {key} has no IP"), format!("pod CIDR of {node} is full"));
        return;
    }
    let status = p.status.get_or_insert_with(Default::default);
    status.phase = Some("Running".into());
    status.pod_ip = ips.first().cloned();
    status.pod_ips = Some(ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect());
    status.start_time = timestamp(sim.now);
    set_ready(&mut p, false);
    sim.write("update", Obj::Pod(p), "kubelet", &format!("containers started on {node}"));
    let Some(rt) = sim.world.pods.get_mut(key).map(std::sync::Arc::make_mut) else { return };
    rt.running = true;
    rt.ips = ips;
    let wl = rt.workload.clone();
    let spec = sim.world.workloads.get(&wl).map(|w| w.spec.clone());
    let delay = spec.as_ref().and_then(|s| s.readiness_delay).map(|m| m.0).unwrap_or(2000);
    let at = sim.now + delay;
    sim.schedule(at, Ev::Probe(key.to_string()));
    if let Some(rate) = spec.as_ref().map(|s| s.crash_rate_per_minute).filter(|r| *r > 0.0) {
        schedule_crash(sim, key, rate);
    }
    schedule_flap(sim, key, &wl, true);
}

fn schedule_crash(sim: &mut Sim, key: &str, rate_per_minute: f64) {
    let minutes = sim.rng.exponential(rate_per_minute);
    let at = sim.now + (minutes * 60_000.0).min(3_600_000.0 * 24.0) as u64;
    sim.schedule(at, Ev::PodCrash(key.to_string()));
}

/// A readiness probe: ready unless made unready, its node is dead, or it is in a run of failures.
pub(crate) fn probe(sim: &mut Sim, key: &str) {
    let Some(mut p) = api_pod(sim, key) else { return };
    let Some(rt) = sim.world.pods.get(key).cloned() else { return };
    if !rt.running || rt.dead || podutil::is_terminal(&p) {
        return;
    }
    let ready = !rt.forced_unready && !rt.flapping;
    if pod_ready(&p) != ready {
        set_ready(&mut p, ready);
        let why = if rt.forced_unready {
            "readiness probe failing (made unready)"
        } else if rt.flapping {
            "readiness probe failed"
        } else {
            "readiness probe passed"
        };
        sim.write("update", Obj::Pod(p), "kubelet", why);
        request_workload_sync(sim, &rt.workload);
    }
}

/// Probes with a failure rate p are independent draws; instead of one event per probe, the
/// simulation jumps to the end of each run of equal results: a run of passes lasts Geometric(p)
/// probes, a run of failures Geometric(1 - p). Same distribution, far fewer events.
pub(crate) fn flap(sim: &mut Sim, key: &str, fail: bool) {
    let Some(rt) = sim.world.pods.get_mut(key).map(std::sync::Arc::make_mut) else { return };
    if !rt.running {
        return;
    }
    rt.flapping = fail;
    let wl = rt.workload.clone();
    probe(sim, key);
    schedule_flap(sim, key, &wl, !fail);
}

fn schedule_flap(sim: &mut Sim, key: &str, wl: &str, next_fails: bool) {
    let p = sim.world.workloads.get(wl).map(|w| w.spec.probe_failure_rate).unwrap_or(0.0);
    if p <= 0.0 {
        return;
    }
    // The current run continues with probability q; its length in probes is Geometric(1 - q).
    let q = if next_fails { 1.0 - p } else { p };
    let runs = if q <= 0.0 {
        1
    } else if q >= 1.0 {
        return;
    } else {
        let u = sim.rng.next_f64().max(1e-12);
        1 + (crate::rng::ln_portable(u) / crate::rng::ln_portable(q)).floor().min(1e7) as u64
    };
    let at = sim.now + runs * sim.config.probe_period_ms;
    sim.schedule(at, Ev::Flap(key.into(), next_fails));
}

/// The container crashes and restarts: not ready until its readiness delay passes again.
pub(crate) fn pod_crash(sim: &mut Sim, key: &str) {
    let Some(mut p) = api_pod(sim, key) else { return };
    let Some(rt) = sim.world.pods.get(key).cloned() else { return };
    if !rt.running || rt.dead || podutil::is_terminating(&p) {
        return;
    }
    set_ready(&mut p, false);
    if let Some(cs) = p.status.as_mut() {
        let restarts = cs.container_statuses.get_or_insert_with(Vec::new);
        if restarts.is_empty() {
            restarts.push(k8s_openapi::api::core::v1::ContainerStatus { name: "app".into(), ..Default::default() });
        }
        if let Some(c) = restarts.first_mut() {
            c.restart_count += 1;
        }
    }
    sim.write("update", Obj::Pod(p), "kubelet", "container crashed; restarting");
    let spec = sim.world.workloads.get(&rt.workload).map(|w| w.spec.clone());
    let delay = spec.as_ref().and_then(|s| s.readiness_delay).map(|m| m.0).unwrap_or(2000);
    let at = sim.now + delay;
    sim.schedule(at, Ev::Probe(key.to_string()));
    if let Some(rate) = spec.map(|s| s.crash_rate_per_minute).filter(|r| *r > 0.0) {
        schedule_crash(sim, key, rate);
    }
}

fn pods_on(sim: &Sim, node: &str) -> Vec<String> {
    sim.api.pods().filter(|p| podutil::node_name(p) == node).map(|p| key_of(&p.metadata)).collect()
}

fn set_node_ready(sim: &mut Sim, node: &str, status: &str, cause: &str) {
    let Some(mut n) = sim.api.node(node).cloned() else { return };
    let st = n.status.get_or_insert_with(Default::default);
    let conds = st.conditions.get_or_insert_with(Vec::new);
    match conds.iter_mut().find(|c| c.type_ == "Ready") {
        Some(c) => c.status = status.into(),
        None => conds.push(NodeCondition { type_: "Ready".into(), status: status.into(), ..Default::default() }),
    }
    sim.write("update", Obj::Node(n), "node-lifecycle", cause);
}

/// The node monitor grace period passed without heartbeats: the node is NotReady and its pods are
/// marked not ready.
pub(crate) fn node_grace(sim: &mut Sim, node: &str) {
    if !sim.world.nodes.get(node).is_some_and(|n| n.failed) {
        return;
    }
    set_node_ready(sim, node, "Unknown", "no heartbeat within the node monitor grace period");
    for key in pods_on(sim, node) {
        if let Some(mut p) = api_pod(sim, &key) {
            if pod_ready(&p) {
                set_ready(&mut p, false);
                sim.write("update", Obj::Pod(p), "node-lifecycle", &format!("node {node} is not ready"));
            }
        }
    }
    let at = sim.now + sim.config.eviction_timeout_ms;
    sim.schedule(at, Ev::NodeEvict(node.to_string()));
}

/// The eviction timeout passed: the pods of a failed node are deleted and replaced elsewhere.
pub(crate) fn node_evict(sim: &mut Sim, node: &str) {
    if !sim.world.nodes.get(node).is_some_and(|n| n.failed) {
        return;
    }
    for key in pods_on(sim, node) {
        if let Some(p) = api_pod(sim, &key) {
            sim.write("delete", Obj::Pod(p), "node-lifecycle", &format!("evicted from failed node {node}"));
            if let Some(rt) = sim.world.forget_pod(&key) {
                request_workload_sync(sim, &rt.workload);
            }
        }
    }
}

/// A pod by `namespace/name`, by name in `default`, or as `#N`: the N-th pod by key (modulo the
/// count), which lets generated action lists name pods that do not exist yet.
fn find_pod(sim: &Sim, name: &str) -> Option<String> {
    if let Some(n) = name.strip_prefix('#').and_then(|n| n.parse::<usize>().ok()) {
        let count = sim.api.pods().count();
        return (count > 0).then(|| sim.api.pods().nth(n % count).map(|p| key_of(&p.metadata))).flatten();
    }
    if sim.api.pod(name).is_some() {
        return Some(name.to_string());
    }
    let k = format!("default/{name}");
    sim.api.pod(&k).is_some().then_some(k)
}

/// Apply a user or scenario action.
pub(crate) fn apply_action(sim: &mut Sim, a: Action) {
    let cause = format!("action: {}", a.describe());
    sim.log("action", a.describe(), "user".into());
    match a {
        Action::Scale { workload, replicas } => match sim.world.workloads.get_mut(&workload) {
            Some(w) => {
                w.replicas = replicas.min(20_000);
                request_workload_sync(sim, &workload);
            }
            None => sim.log("action", format!("no workload {workload}"), cause),
        },
        Action::KillPod { pod } => match find_pod(sim, &pod) {
            Some(key) => {
                if let Some(mut p) = api_pod(sim, &key) {
                    let st = p.status.get_or_insert_with(Default::default);
                    st.phase = Some("Failed".into());
                    set_ready(&mut p, false);
                    sim.write("update", Obj::Pod(p.clone()), "kubelet", &cause);
                    sim.write("delete", Obj::Pod(p), "pod-gc", "failed pod removed");
                    if let Some(rt) = sim.world.forget_pod(&key) {
                        request_workload_sync(sim, &rt.workload);
                    }
                }
            }
            None => sim.log("action", format!("no pod {pod}"), cause),
        },
        Action::SetPodReady { pod, ready } => match find_pod(sim, &pod) {
            Some(key) => {
                if let Some(rt) = sim.world.pods.get_mut(key.as_str()).map(std::sync::Arc::make_mut) {
                    rt.forced_unready = !ready;
                }
                let now = sim.now;
                sim.schedule(now, Ev::Probe(key));
            }
            None => sim.log("action", format!("no pod {pod}"), cause),
        },
        Action::DeletePod { pod } => match find_pod(sim, &pod) {
            Some(key) => delete_pod_gracefully(sim, &key, &cause),
            None => sim.log("action", format!("no pod {pod}"), cause),
        },
        Action::RelabelPod { pod, labels } => match find_pod(sim, &pod).and_then(|k| api_pod(sim, &k)) {
            Some(mut p) => {
                p.metadata.labels = Some(labels);
                sim.write("update", Obj::Pod(p), "user", &cause);
            }
            None => sim.log("action", format!("no pod {pod}"), cause),
        },
        Action::FailNode { node } => match sim.world.nodes.get_mut(&node) {
            Some(n) if !n.failed => {
                n.failed = true;
                for key in pods_on(sim, &node) {
                    if let Some(rt) = sim.world.pods.get_mut(key.as_str()).map(std::sync::Arc::make_mut) {
                        rt.dead = true;
                    }
                }
                let at = sim.now + sim.config.node_monitor_grace_ms;
                sim.schedule(at, Ev::NodeGrace(node));
            }
            Some(_) => {}
            None => sim.log("action", format!("no node {node}"), cause),
        },
        Action::DrainNode { node } => match sim.api.node(&node).cloned() {
            Some(mut n) => {
                if let Some(rt) = sim.world.nodes.get_mut(&node) {
                    rt.cordoned = true;
                }
                n.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
                sim.write("update", Obj::Node(n), "user", &cause);
                for key in pods_on(sim, &node) {
                    delete_pod_gracefully(sim, &key, &cause);
                }
            }
            None => sim.log("action", format!("no node {node}"), cause),
        },
        Action::RecoverNode { node } => {
            let was_failed = sim.world.nodes.get(&node).is_some_and(|n| n.failed);
            match sim.world.nodes.get_mut(&node) {
                Some(rt) => {
                    rt.failed = false;
                    rt.cordoned = false;
                }
                None => {
                    sim.log("action", format!("no node {node}"), cause);
                    return;
                }
            }
            if let Some(mut n) = sim.api.node(&node).cloned() {
                n.spec.get_or_insert_with(Default::default).unschedulable = None;
                sim.write("update", Obj::Node(n), "user", &cause);
            }
            if was_failed {
                set_node_ready(sim, &node, "True", "kubelet heartbeats again");
            }
            for key in pods_on(sim, &node) {
                if let Some(rt) = sim.world.pods.get_mut(key.as_str()).map(std::sync::Arc::make_mut) {
                    rt.dead = false;
                }
                let now = sim.now;
                sim.schedule(now, Ev::Probe(key));
            }
        }
        Action::AddNode { node, zone, cpu } => add_node(sim, &node, &zone, cpu.as_deref().unwrap_or("4"), false, &cause),
        Action::RemoveNode { node } => {
            if sim.api.node(&node).is_none() {
                sim.log("action", format!("no node {node}"), cause);
                return;
            }
            for key in pods_on(sim, &node) {
                if let Some(p) = api_pod(sim, &key) {
                    sim.write("delete", Obj::Pod(p), "pod-gc", &cause);
                }
                if let Some(rt) = sim.world.forget_pod(&key) {
                    request_workload_sync(sim, &rt.workload);
                }
            }
            if let Some(n) = sim.api.node(&node).cloned() {
                sim.write("delete", Obj::Node(n), "user", &cause);
            }
            sim.world.nodes.remove(&node);
            sim.proxies.remove(&node);
        }
        Action::RollOut { workload } => match sim.world.workloads.get_mut(&workload) {
            Some(w) => {
                w.version += 1;
                request_workload_sync(sim, &workload);
            }
            None => sim.log("action", format!("no workload {workload}"), cause),
        },
        Action::EditService { service, patch } => {
            let key = if service.contains('/') { service.clone() } else { format!("default/{service}") };
            let Some(svc) = sim.api.service(&key).cloned() else {
                sim.log("action", format!("no service {service}"), cause);
                return;
            };
            let mut v = serde_json::to_value(&svc).unwrap_or_default();
            merge_patch(&mut v, &patch);
            match decode::<Service>(v, "Service") {
                Ok(mut new) if new.metadata.name == svc.metadata.name => {
                    new.metadata.namespace = svc.metadata.namespace.clone();
                    sim.write("update", Obj::Service(new), "user", &cause);
                }
                Ok(_) => sim.log("action", "the patch may not rename the Service".into(), cause),
                Err(e) => sim.log("action", format!("patch rejected: {e}"), cause),
            }
        }
        Action::SetMaxEndpointsPerSlice { max } => {
            if !(1..=1000).contains(&max) {
                sim.log("action", format!("rejected: max endpoints per slice must be 1..1000, got {max}"), cause);
                return;
            }
            sim.config.max_endpoints_per_slice = max;
            let svcs: Vec<String> = sim.api.services().map(|s| key_of(&s.metadata)).collect();
            for s in svcs {
                sim.controller.queue.remove(&s);
                let now = sim.now;
                sim.controller.queue.insert(s.clone(), now);
                sim.schedule(now, Ev::ControllerSync(s));
            }
        }
        Action::CutWatch { node } => match sim.proxies.get_mut(&node) {
            Some(p) => p.informer.connected = false,
            None => sim.log("action", format!("no node {node}"), cause),
        },
        Action::RestoreWatch { node } => {
            if sim.proxies.contains_key(&node) {
                sim.relist_proxy(&node);
            } else {
                sim.log("action", format!("no node {node}"), cause);
            }
        }
        Action::SetApiLatency { ms } => sim.config.api_latency_ms = ms.min(60_000),
        Action::SetTrafficRate { rate, flow } => {
            if let Err(e) = super::traffic::set_rate(sim, rate, flow) {
                sim.log("action", format!("rejected: {e}"), cause);
            }
        }
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Once the controller has settled, every matching Pod with an IP of a family is in exactly one
/// slice of that family, with the right readiness, and no other endpoint points at a Pod.
pub(crate) fn check_settled(sim: &Sim) -> Result<(), String> {
    for svc in sim.api.services() {
        let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else { continue };
        if sel.is_empty() {
            continue;
        }
        let key = key_of(&svc.metadata);
        let name = svc.metadata.name.clone().unwrap_or_default();
        let publish = podutil::publish_not_ready(svc);
        for at in crate::controller::desired::address_types_for_service(svc) {
            let mut seen: std::collections::BTreeMap<String, (usize, Option<bool>)> = Default::default();
            for s in sim.api.slices() {
                let l = s.metadata.labels.as_ref();
                if l.and_then(|l| l.get(crate::controller::LABEL_SERVICE_NAME)) != Some(&name)
                    || s.address_type != at.as_str()
                    || s.metadata.namespace != svc.metadata.namespace
                {
                    continue;
                }
                for e in crate::controller::plan::eps(s) {
                    let pod = e.target_ref.as_ref().and_then(|r| r.name.clone()).unwrap_or_default();
                    let entry = seen.entry(pod).or_insert((0, None));
                    entry.0 += 1;
                    entry.1 = e.conditions.as_ref().and_then(|c| c.ready);
                }
            }
            for p in sim.api.pods() {
                if p.metadata.namespace != svc.metadata.namespace || !podutil::selector_matches(sel, p.metadata.labels.as_ref()) {
                    continue;
                }
                let pname = p.metadata.name.clone().unwrap_or_default();
                let has_ip = !crate::controller::desired::endpoint_addresses(p, at).is_empty();
                let node_ok = publish || sim.api.node(podutil::node_name(p)).is_some();
                let expected = podutil::should_be_in_endpoints(p, true) && has_ip && node_ok;
                let got = seen.remove(&pname);
                match (expected, got) {
                    (true, Some((1, ready))) => {
                        let want = publish || (podutil::is_ready(p) && !podutil::is_terminating(p));
                        if ready != Some(want) {
                            return Err(format!("{key}: pod {pname} has ready={ready:?} in its {} slice, expected {want}", at.as_str()));
                        }
                    }
                    (true, Some((n, _))) => return Err(format!("{key}: pod {pname} is in {n} {} slices", at.as_str())),
                    (true, None) => return Err(format!("{key}: pod {pname} is missing from the {} slices", at.as_str())),
                    (false, Some(_)) => return Err(format!("{key}: pod {pname} should not be an endpoint")),
                    (false, None) => {}
                }
            }
            if let Some((pod, _)) = seen.into_iter().next() {
                return Err(format!("{key}: a {} slice still lists {pod}, which no longer matches", at.as_str()));
            }
        }
    }
    Ok(())
}
