//! What the page draws, read out of a simulation: plain data, no web types, so the front end stays a
//! thin layer and all of this is tested natively. Everything is taken from the API server's objects
//! (what `kubectl` would show) and from each node's kube-proxy (what that node has programmed).

use crate::vecmap::VecMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::api::Obj;
use super::traffic::ConnOutcome;
use super::Sim;
use crate::controller::{LABEL_SERVICE_NAME, LABEL_ZONE};

/// A Pod's state as the page colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PodState {
    /// Not yet scheduled, or its containers are starting.
    Pending,
    /// Running, but its Ready condition is not True.
    NotReady,
    Ready,
    /// Being deleted gracefully (still serving until it stops).
    Terminating,
    /// Phase Failed or Succeeded, or on a failed node.
    Failed,
}

impl PodState {
    pub fn name(self) -> &'static str {
        match self {
            PodState::Pending => "pending",
            PodState::NotReady => "not ready",
            PodState::Ready => "ready",
            PodState::Terminating => "terminating",
            PodState::Failed => "failed",
        }
    }

    /// A CSS-friendly class name.
    pub fn class(self) -> &'static str {
        match self {
            PodState::Pending => "pending",
            PodState::NotReady => "notready",
            PodState::Ready => "ready",
            PodState::Terminating => "terminating",
            PodState::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodView {
    /// `namespace/name`, what actions take.
    pub key: String,
    pub name: String,
    pub node: Option<String>,
    pub ips: Vec<String>,
    pub state: PodState,
    /// Its labels, `k=v` joined by commas.
    pub labels: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeView {
    pub name: String,
    pub zone: String,
    /// The Node's Ready condition is True.
    pub ready: bool,
    /// The node has stopped (its Ready condition may not say so yet).
    pub failed: bool,
    pub cordoned: bool,
    /// Its kube-proxy's watch is cut.
    pub watch_cut: bool,
    /// Its kube-proxy has not programmed the slices the API server holds now.
    pub stale: bool,
    pub synced_at: Option<u64>,
    /// How many of its Pods are in each state (indexed by `PodState as usize`); always filled.
    pub states: [usize; 5],
    /// Its Pods one by one (empty in a counted view, see `Sim::cluster_view_counted`).
    pub pods: Vec<PodView>,
    /// Pods deleted from this node within the last `FLASH_MS`, as they last were: the page fades
    /// them out. Not counted anywhere else.
    pub gone: Vec<PodView>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ZoneView {
    pub name: String,
    pub nodes: Vec<NodeView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointView {
    pub address: String,
    pub pod: Option<String>,
    pub node: Option<String>,
    pub zone: Option<String>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub hints: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SliceView {
    pub name: String,
    pub address_type: String,
    pub ports: String,
    pub generation: i64,
    pub managed_by: String,
    pub endpoints: Vec<EndpointView>,
    /// The latest write to it within the flash window: (time, verb, cause).
    pub last_write: Option<(u64, String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EndpointsView {
    pub ready: usize,
    pub not_ready: usize,
    pub over_capacity: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceView {
    /// `namespace/name`.
    pub key: String,
    pub name: String,
    pub type_: String,
    pub cluster_ips: Vec<String>,
    pub selector: String,
    pub ports: String,
    pub families: String,
    pub policies: String,
    pub traffic_distribution: Option<String>,
    pub topology_mode: Option<String>,
    pub session_affinity: String,
    pub publish_not_ready: bool,
    pub slices: Vec<SliceView>,
    pub endpoints: Option<EndpointsView>,
    /// Slices deleted within the flash window: (name, time, cause).
    pub deleted: Vec<(String, u64, String)>,
}

/// One endpoint as a node's kube-proxy sees it for one Service port.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyEndpoint {
    pub endpoint: String,
    pub is_local: bool,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// ClusterIP traffic from this node may go there.
    pub usable: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProxyPortView {
    pub family: String,
    pub port: String,
    pub cluster_ip: Option<String>,
    pub endpoints: Vec<ProxyEndpoint>,
    /// Why the usable set is what it is (policy, topology, fallback).
    pub note: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProxyView {
    pub node: String,
    pub mode: String,
    pub synced_at: Option<u64>,
    pub syncs: u64,
    pub stale: bool,
    pub watch_cut: bool,
    pub ports: Vec<ProxyPortView>,
}

/// A connection for the animation.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnView {
    pub t: u64,
    pub from: String,
    pub via_node: String,
    pub backend: String,
    pub pod: Option<String>,
    pub outcome: ConnOutcome,
}

/// How long (virtual ms) a write stays highlighted.
pub const FLASH_MS: u64 = 1500;

/// A name split at its trailing number, so names sort as a reader counts (`node-2` < `node-10`).
fn natural_key(name: &str) -> (&str, u64, &str) {
    let head = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &name[head.len()..];
    (head, digits.parse().unwrap_or(0), digits)
}

fn pod_state(p: &Pod, node_failed: bool) -> PodState {
    let status = p.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if p.metadata.deletion_timestamp.is_some() {
        return PodState::Terminating;
    }
    if phase == "Failed" || phase == "Succeeded" || node_failed {
        return PodState::Failed;
    }
    let scheduled = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    if !scheduled || phase == "Pending" {
        return PodState::Pending;
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if ready {
        PodState::Ready
    } else {
        PodState::NotReady
    }
}

fn pod_view(p: &Pod, node_failed: bool) -> PodView {
    let ips = p
        .status
        .as_ref()
        .map(|s| {
            let mut v: Vec<String> = s.pod_ips.iter().flatten().map(|i| i.ip.clone()).collect();
            if v.is_empty() {
                v.extend(s.pod_ip.clone());
            }
            v
        })
        .unwrap_or_default();
    PodView {
        key: super::api::key_of(&p.metadata),
        name: p.metadata.name.clone().unwrap_or_default(),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        ips,
        state: pod_state(p, node_failed),
        labels: {
            let mut out = String::new();
            for (k, v) in p.metadata.labels.iter().flatten() {
                if !out.is_empty() {
                    out.push(',');
                }
                out.push_str(k);
                out.push('=');
                out.push_str(v);
            }
            out
        },
    }
}

impl Sim {
    /// The slices of a Service as the API server holds them now.
    fn service_slices(&self, ns: &str, name: &str) -> Vec<&EndpointSlice> {
        self.api
            .slices()
            .filter(|s| {
                s.metadata.namespace.as_deref().unwrap_or("default") == ns
                    && s.metadata.labels.as_ref().and_then(|l| l.get(LABEL_SERVICE_NAME)).map(String::as_str) == Some(name)
            })
            .collect()
    }

    /// A node's kube-proxy has not programmed what the API server holds (or cannot hear about it).
    pub fn proxy_stale(&self, node: &str) -> bool {
        let Some(p) = self.proxies.get(node) else { return false };
        if !p.informer.connected {
            return true;
        }
        let mut programmed: Vec<(String, String)> = p
            .programmed
            .values()
            .flatten()
            .filter_map(|o| match &**o {
                Obj::EndpointSlice(s) => Some((s.metadata.name.clone().unwrap_or_default(), s.metadata.resource_version.clone().unwrap_or_default())),
                _ => None,
            })
            .collect();
        let mut now: Vec<(String, String)> = self
            .api
            .slices()
            .filter(|s| s.metadata.labels.as_ref().is_some_and(|l| l.contains_key(LABEL_SERVICE_NAME)))
            .map(|s| (s.metadata.name.clone().unwrap_or_default(), s.metadata.resource_version.clone().unwrap_or_default()))
            .collect();
        crate::sort::all(&mut programmed);
        crate::sort::all(&mut now);
        programmed != now
    }

    /// Zones as columns, nodes in them, Pods on them; Pods not yet scheduled are in `unscheduled`.
    pub fn cluster_view(&self) -> (Vec<ZoneView>, Vec<PodView>) {
        let (zones, unscheduled, _) = self.cluster_view_counted(true);
        (zones, unscheduled)
    }

    /// The cluster view with Pods listed one by one (`detail`) or only counted per node: a large
    /// cluster is drawn as counts, and listing ten thousand Pods on every frame costs more than the
    /// frame. Also returns the unscheduled Pods' counts by state (listed only with `detail`).
    pub fn cluster_view_counted(&self, detail: bool) -> (Vec<ZoneView>, Vec<PodView>, [usize; 5]) {
        let mut by_zone: VecMap<String, Vec<NodeView>> = VecMap::new();
        for n in self.api.nodes() {
            let name = n.metadata.name.clone().unwrap_or_default();
            let zone = n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_ZONE)).cloned().unwrap_or_else(|| "(no zone)".into());
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let rt = self.world.nodes.get(&name);
            let proxy = self.proxies.get(&name);
            let v = NodeView {
                name: name.clone(),
                zone: zone.clone(),
                ready,
                failed: rt.is_some_and(|r| r.failed),
                cordoned: n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
                watch_cut: proxy.is_some_and(|p| !p.informer.connected),
                stale: self.proxy_stale(&name),
                synced_at: proxy.and_then(|p| p.synced_at),
                states: [0; 5],
                pods: Vec::new(),
                gone: Vec::new(),
            };
            by_zone.entry(zone).or_default().push(v);
        }
        for nodes in by_zone.values_mut() {
            // node-2 before node-10, as a reader counts.
            crate::sort::by(nodes, |a, b| natural_key(&a.name).cmp(&natural_key(&b.name)));
        }
        let mut zones: Vec<ZoneView> = by_zone.into_iter().map(|(name, nodes)| ZoneView { name, nodes }).collect();
        // node name → (zone, node) positions: one hash lookup per Pod.
        let index: rustc_hash::FxHashMap<String, (usize, usize)> = zones
            .iter()
            .enumerate()
            .flat_map(|(zi, z)| z.nodes.iter().enumerate().map(move |(ni, n)| (n.name.clone(), (zi, ni))))
            .collect();
        let mut unscheduled = Vec::new();
        let mut unscheduled_states = [0; 5];
        for p in self.api.pods() {
            let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
            let slot = node.and_then(|n| index.get(n)).map(|&(zi, ni)| &mut zones[zi].nodes[ni]);
            let failed = match &slot {
                Some(n) => n.failed,
                None => node.and_then(|n| self.world.nodes.get(n)).is_some_and(|r| r.failed),
            };
            let state = pod_state(p, failed);
            match slot {
                Some(n) => {
                    n.states[state as usize] += 1;
                    if detail {
                        n.pods.push(pod_view(p, failed));
                    }
                }
                None => {
                    unscheduled_states[state as usize] += 1;
                    if detail {
                        unscheduled.push(pod_view(p, failed));
                    }
                }
            }
        }
        for (_, o) in self.recently_gone().filter(|_| detail) {
            let Obj::Pod(p) = &**o else { continue };
            let v = pod_view(p, false);
            let node = v.node.as_ref().and_then(|n| index.get(n).copied());
            if let Some(n) = node.map(|(zi, ni)| &mut zones[zi].nodes[ni]) {
                // A Pod deleted and made again under the same name is shown once, alive.
                if !n.pods.iter().any(|l| l.key == v.key) && !n.gone.iter().any(|g| g.key == v.key) {
                    n.gone.push(v);
                }
            }
        }
        (zones, unscheduled, unscheduled_states)
    }

    /// Pods deleted within the last `FLASH_MS` (newest last): (time, last state).
    pub fn recently_gone(&self) -> impl Iterator<Item = &(u64, std::sync::Arc<Obj>)> {
        let now = self.now;
        self.gone.iter().filter(move |(t, _)| *t <= now && t + FLASH_MS >= now)
    }

    /// Every Service key (`namespace/name`), sorted.
    pub fn service_keys(&self) -> Vec<String> {
        self.api.services().map(|s| super::api::key_of(&s.metadata)).collect()
    }

    /// The Service card, its slices and its legacy Endpoints.
    pub fn service_view(&self, key: &str) -> Option<ServiceView> {
        let svc: &Service = self.api.service(key)?;
        let ns = svc.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = svc.metadata.name.clone().unwrap_or_default();
        let spec = svc.spec.clone().unwrap_or_default();
        // Writes within the flash window, newest first: slice key → (t, verb, cause).
        let mut writes: VecMap<String, (u64, String, String)> = VecMap::new();
        let mut deleted = Vec::new();
        let since = self.now.saturating_sub(FLASH_MS);
        for e in self.log.iter().rev().take_while(|e| e.t >= since) {
            if e.actor != "endpointslice-controller" && e.actor != "endpointslice-mirroring-controller" {
                continue;
            }
            let mut words = e.what.splitn(3, ' ');
            let (Some(verb), Some("EndpointSlice"), Some(obj)) = (words.next(), words.next(), words.next()) else { continue };
            let slice = obj.rsplit('/').next().unwrap_or(obj).to_string();
            if verb == "delete" && !deleted.iter().any(|(n, _, _): &(String, u64, String)| *n == slice) {
                deleted.push((slice.clone(), e.t, e.cause.clone()));
            }
            writes.entry(slice).or_insert_with(|| (e.t, verb.to_string(), e.cause.clone()));
        }
        let mut slices: Vec<SliceView> = self
            .service_slices(&ns, &name)
            .into_iter()
            .map(|s| {
                let sname = s.metadata.name.clone().unwrap_or_default();
                SliceView {
                    last_write: writes.get(&sname).cloned(),
                    name: sname,
                    address_type: s.address_type.clone(),
                    ports: s
                        .ports
                        .iter()
                        .flatten()
                        .map(|p| format!("{}{}/{}", p.name.as_deref().map(|n| format!("{n}:")).unwrap_or_default(), p.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()), p.protocol.as_deref().unwrap_or("TCP")))
                        .collect::<Vec<_>>()
                        .join(", "),
                    generation: s.metadata.generation.unwrap_or(0),
                    managed_by: s.metadata.labels.as_ref().and_then(|l| l.get("endpointslice.kubernetes.io/managed-by")).cloned().unwrap_or_default(),
                    endpoints: s
                        .endpoints
                        .iter()
                        .flatten()
                        .map(|e| {
                            let c = e.conditions.clone().unwrap_or_default();
                            EndpointView {
                                address: e.addresses.first().cloned().unwrap_or_default(),
                                pod: e.target_ref.as_ref().and_then(|r| r.name.clone()),
                                node: e.node_name.clone(),
                                zone: e.zone.clone(),
                                ready: c.ready.unwrap_or(true),
                                serving: c.serving.unwrap_or(c.ready.unwrap_or(true)),
                                terminating: c.terminating.unwrap_or(false),
                                hints: e.hints.as_ref().and_then(|h| h.for_zones.as_ref()).map(|z| z.iter().map(|z| z.name.clone()).collect()).unwrap_or_default(),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        // IPv4, then IPv6, then FQDN; by name within a family.
        crate::sort::by(&mut slices, |a, b| (family_rank(&a.address_type), &a.name).cmp(&(family_rank(&b.address_type), &b.name)));
        deleted.retain(|(n, _, _)| !slices.iter().any(|s| s.name == *n));
        let endpoints = self.api.endpoints().find(|e| super::api::key_of(&e.metadata) == key).map(|e| {
            let subsets = e.subsets.iter().flatten();
            let (mut ready, mut not_ready) = (0, 0);
            for s in subsets {
                ready += s.addresses.as_ref().map_or(0, Vec::len);
                not_ready += s.not_ready_addresses.as_ref().map_or(0, Vec::len);
            }
            EndpointsView {
                ready,
                not_ready,
                over_capacity: e.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("endpoints.kubernetes.io/over-capacity")),
            }
        });
        let selector = spec.selector.as_ref().map(|s| s.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")).unwrap_or_default();
        Some(ServiceView {
            key: key.to_string(),
            name,
            type_: spec.type_.clone().unwrap_or_else(|| "ClusterIP".into()),
            cluster_ips: spec.cluster_ips.clone().or_else(|| spec.cluster_ip.clone().map(|c| vec![c])).unwrap_or_default(),
            selector: if selector.is_empty() { "(none)".into() } else { selector },
            ports: spec
                .ports
                .iter()
                .flatten()
                .map(|p| {
                    let target = p.target_port.as_ref().map(|t| match t {
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
                    });
                    format!("{}{}→{}/{}", p.name.as_deref().map(|n| format!("{n} ")).unwrap_or_default(), p.port, target.unwrap_or_else(|| p.port.to_string()), p.protocol.as_deref().unwrap_or("TCP"))
                })
                .collect::<Vec<_>>()
                .join(", "),
            families: format!(
                "{} ({})",
                spec.ip_families.clone().unwrap_or_default().join(", "),
                spec.ip_family_policy.clone().unwrap_or_else(|| "SingleStack".into())
            ),
            policies: format!(
                "internal {}, external {}",
                spec.internal_traffic_policy.clone().unwrap_or_else(|| "Cluster".into()),
                spec.external_traffic_policy.clone().unwrap_or_else(|| "Cluster".into())
            ),
            traffic_distribution: spec.traffic_distribution.clone(),
            topology_mode: svc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("service.kubernetes.io/topology-mode").or_else(|| a.get("service.kubernetes.io/topology-aware-hints")))
                .cloned(),
            session_affinity: spec.session_affinity.clone().unwrap_or_else(|| "None".into()),
            publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
            slices,
            endpoints,
            deleted,
        })
    }

    /// What a node's kube-proxy has programmed for a Service.
    pub fn proxy_view(&self, node: &str, service_key: &str) -> Option<ProxyView> {
        let p = self.proxies.get(node)?;
        let (ns, name) = service_key.split_once('/').unwrap_or(("default", service_key));
        let mut ports = Vec::new();
        let mut mode = String::new();
        for kp in &p.kube_proxies {
            mode = format!("{:?}", kp.config.mode).to_ascii_lowercase();
            let family = format!("{:?}", kp.config.family);
            for ps in kp.ports() {
                if ps.info.name.namespace != ns || ps.info.name.name != name {
                    continue;
                }
                let usable_set = if ps.info.internal_policy_local { &ps.cat.local } else { &ps.cat.cluster };
                let mut usable = vec![false; ps.endpoints.len()];
                for &i in usable_set.iter().flatten() {
                    if let Some(u) = usable.get_mut(i) {
                        *u = true;
                    }
                }
                let endpoints = ps
                    .endpoints
                    .iter()
                    .enumerate()
                    .map(|(i, e)| ProxyEndpoint {
                        endpoint: e.endpoint.clone(),
                        is_local: e.local_to(&kp.config.node_name),
                        ready: e.ready,
                        serving: e.serving,
                        terminating: e.terminating,
                        usable: usable[i],
                    })
                    .collect();
                let mut note = Vec::new();
                if ps.info.internal_policy_local {
                    note.push("internalTrafficPolicy Local: node-local endpoints only".to_string());
                }
                if !matches!(ps.cat.topology, crate::proxy::categorize::TopologyMode::None) {
                    note.push(format!("topology: {:?}", ps.cat.topology));
                }
                if ps.cat.cluster_from_fallback || ps.cat.local_from_fallback {
                    note.push("no ready endpoint: serving and terminating ones are used as a fallback".into());
                }
                if !ps.cat.has_any {
                    note.push("no usable endpoint: connections are refused (REJECT)".into());
                }
                ports.push(ProxyPortView {
                    family: family.clone(),
                    port: ps.info.name.port.clone(),
                    cluster_ip: ps.info.cluster_ip.map(|i| i.to_string()),
                    endpoints,
                    note: note.join("; "),
                });
            }
        }
        Some(ProxyView {
            node: node.to_string(),
            mode,
            synced_at: p.synced_at,
            syncs: p.syncs,
            stale: self.proxy_stale(node),
            watch_cut: !p.informer.connected,
            ports,
        })
    }

    /// The rules a node's kube-proxy has written, as text, at most `max_lines` lines.
    pub fn proxy_rules(&self, node: &str, max_lines: usize) -> String {
        let Some(p) = self.proxies.get(node) else { return String::new() };
        let mut out = String::new();
        let mut lines = 0;
        for kp in &p.kube_proxies {
            let text = kp.render_rules(crate::proxy::iptables::View::KubeProxy);
            let total = text.lines().count();
            out.push_str(&format!("# {:?} ({:?})\n", kp.config.family, kp.config.mode));
            for l in text.lines() {
                if lines >= max_lines {
                    out.push_str(&format!("… {} more lines\n", total.saturating_sub(lines)));
                    return out;
                }
                out.push_str(l);
                out.push('\n');
                lines += 1;
            }
        }
        out
    }

    /// Connections opened within the last `window_ms`, newest last.
    pub fn recent_connections(&self, window_ms: u64) -> Vec<ConnView> {
        let since = self.now.saturating_sub(window_ms);
        self.traffic
            .recent
            .iter()
            .filter(|c| c.t >= since && c.t <= self.now)
            .cloned()
            .collect()
    }
}

fn family_rank(t: &str) -> u8 {
    match t {
        "IPv4" => 0,
        "IPv6" => 1,
        _ => 2,
    }
}

/// `kubectl get`, `describe` and `-o yaml` of the simulated objects.
pub mod kubectl {
    use super::super::api::{Kind, Obj};
    use super::super::{fmt_ms, Sim};
    use super::pod_state;

    pub const KINDS: [(Kind, &str); 5] = [
        (Kind::EndpointSlice, "endpointslices"),
        (Kind::Endpoints, "endpoints"),
        (Kind::Service, "services"),
        (Kind::Pod, "pods"),
        (Kind::Node, "nodes"),
    ];

    fn age(sim: &Sim, o: &Obj) -> String {
        // Creation times are virtual: seconds since the start of the run.
        let created = o.meta().creation_timestamp.as_ref().map(|t| t.0.as_millisecond().max(0) as u64).unwrap_or(0);
        fmt_ms(sim.now.saturating_sub(created))
    }

    /// The header and rows of `kubectl get <kind>`.
    pub fn get(sim: &Sim, kind: Kind) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let rows = sim.api.list(kind);
        match kind {
            Kind::EndpointSlice => (
                vec!["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
                rows.filter_map(|o| match o {
                    Obj::EndpointSlice(s) => {
                        let eps: Vec<&str> = s.endpoints.iter().flatten().filter_map(|e| e.addresses.first().map(String::as_str)).collect();
                        let shown = if eps.is_empty() {
                            "<unset>".to_string()
                        } else if eps.len() > 3 {
                            format!("{} + {} more...", eps[..3].join(","), eps.len() - 3)
                        } else {
                            eps.join(",")
                        };
                        let ports: Vec<String> = s.ports.iter().flatten().map(|p| p.port.map(|p| p.to_string()).unwrap_or_else(|| "<unset>".into())).collect();
                        Some(vec![o.meta().name.clone().unwrap_or_default(), s.address_type.clone(), if ports.is_empty() { "<unset>".into() } else { ports.join(",") }, shown, age(sim, o)])
                    }
                    _ => None,
                })
                .collect(),
            ),
            Kind::Endpoints => (
                vec!["NAME", "ENDPOINTS", "AGE"],
                rows.filter_map(|o| match o {
                    Obj::Endpoints(e) => {
                        let mut addrs = Vec::new();
                        for ss in e.subsets.iter().flatten() {
                            for a in ss.addresses.iter().flatten() {
                                for p in ss.ports.iter().flatten() {
                                    addrs.push(format!("{}:{}", a.ip, p.port));
                                }
                            }
                        }
                        let shown = if addrs.is_empty() {
                            "<none>".to_string()
                        } else if addrs.len() > 3 {
                            format!("{} + {} more...", addrs[..3].join(","), addrs.len() - 3)
                        } else {
                            addrs.join(",")
                        };
                        Some(vec![o.meta().name.clone().unwrap_or_default(), shown, age(sim, o)])
                    }
                    _ => None,
                })
                .collect(),
            ),
            Kind::Service => (
                vec!["NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "AGE"],
                rows.filter_map(|o| match o {
                    Obj::Service(s) => {
                        let spec = s.spec.clone().unwrap_or_default();
                        let ports: Vec<String> = spec
                            .ports
                            .iter()
                            .flatten()
                            .map(|p| format!("{}{}/{}", p.port, p.node_port.map(|n| format!(":{n}")).unwrap_or_default(), p.protocol.as_deref().unwrap_or("TCP")))
                            .collect();
                        Some(vec![
                            o.meta().name.clone().unwrap_or_default(),
                            spec.type_.unwrap_or_else(|| "ClusterIP".into()),
                            spec.cluster_ip.unwrap_or_else(|| "<none>".into()),
                            if ports.is_empty() { "<none>".into() } else { ports.join(",") },
                            age(sim, o),
                        ])
                    }
                    _ => None,
                })
                .collect(),
            ),
            Kind::Pod => (
                vec!["NAME", "READY", "STATUS", "IP", "NODE", "AGE"],
                rows.filter_map(|o| match o {
                    Obj::Pod(p) => {
                        let st = pod_state(p, false);
                        let status = match st {
                            super::PodState::Terminating => "Terminating".to_string(),
                            _ => p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into()),
                        };
                        Some(vec![
                            o.meta().name.clone().unwrap_or_default(),
                            if st == super::PodState::Ready { "1/1".into() } else { "0/1".into() },
                            status,
                            p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_else(|| "<none>".into()),
                            p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_else(|| "<none>".into()),
                            age(sim, o),
                        ])
                    }
                    _ => None,
                })
                .collect(),
            ),
            Kind::Node => (
                vec!["NAME", "STATUS", "ZONE", "AGE"],
                rows.filter_map(|o| match o {
                    Obj::Node(n) => {
                        let ready = n.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == "Ready")).map(|c| c.status == "True").unwrap_or(false);
                        let mut status = if ready { "Ready".to_string() } else { "NotReady".to_string() };
                        if n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
                            status.push_str(",SchedulingDisabled");
                        }
                        let zone = o.meta().labels.as_ref().and_then(|l| l.get(crate::controller::LABEL_ZONE)).cloned().unwrap_or_else(|| "<none>".into());
                        Some(vec![o.meta().name.clone().unwrap_or_default(), status, zone, age(sim, o)])
                    }
                    _ => None,
                })
                .collect(),
            ),
        }
    }

    /// The object as `kubectl get -o yaml` prints it.
    pub fn yaml(sim: &Sim, kind: Kind, key: &str) -> Option<String> {
        let o = sim.api.get(kind, key)?;
        Some(crate::yaml::to_string(&o.to_json()))
    }

    /// A `kubectl describe` of an EndpointSlice (other kinds: their YAML).
    pub fn describe(sim: &Sim, kind: Kind, key: &str) -> Option<String> {
        let o = sim.api.get(kind, key)?;
        let Obj::EndpointSlice(s) = o else { return yaml(sim, kind, key) };
        let m = &s.metadata;
        let mut out = String::new();
        let labels: Vec<String> = m.labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("Name:         {}\n", m.name.as_deref().unwrap_or("")));
        out.push_str(&format!("Namespace:    {}\n", m.namespace.as_deref().unwrap_or("default")));
        out.push_str(&format!("Labels:       {}\n", if labels.is_empty() { "<none>".into() } else { labels.join("\n              ") }));
        let ann: Vec<String> = m.annotations.iter().flatten().map(|(k, v)| format!("{k}: {v}")).collect();
        out.push_str(&format!("Annotations:  {}\n", if ann.is_empty() { "<none>".into() } else { ann.join("\n              ") }));
        out.push_str(&format!("AddressType:  {}\n", s.address_type));
        out.push_str("Ports:\n  Name     Port  Protocol\n  ----     ----  --------\n");
        for p in s.ports.iter().flatten() {
            out.push_str(&format!(
                "  {:<8} {:<5} {}\n",
                p.name.as_deref().unwrap_or("<unset>"),
                p.port.map(|p| p.to_string()).unwrap_or_else(|| "<unset>".into()),
                p.protocol.as_deref().unwrap_or("TCP")
            ));
        }
        out.push_str("Endpoints:\n");
        for e in s.endpoints.iter().flatten() {
            let c = e.conditions.clone().unwrap_or_default();
            out.push_str(&format!("  - Addresses:  {}\n", e.addresses.join(",")));
            out.push_str("    Conditions:\n");
            out.push_str(&format!("      Ready:    {}\n", c.ready.map(|b| b.to_string()).unwrap_or_else(|| "<unset>".into())));
            out.push_str(&format!("      Serving:  {}\n", c.serving.map(|b| b.to_string()).unwrap_or_else(|| "<unset>".into())));
            out.push_str(&format!("      Terminating: {}\n", c.terminating.map(|b| b.to_string()).unwrap_or_else(|| "<unset>".into())));
            out.push_str(&format!("    Hostname:   {}\n", e.hostname.as_deref().unwrap_or("<unset>")));
            if let Some(r) = &e.target_ref {
                out.push_str(&format!("    TargetRef:  {}/{}\n", r.kind.as_deref().unwrap_or(""), r.name.as_deref().unwrap_or("")));
            }
            out.push_str(&format!("    NodeName:   {}\n", e.node_name.as_deref().unwrap_or("<unset>")));
            out.push_str(&format!("    Zone:       {}\n", e.zone.as_deref().unwrap_or("<unset>")));
        }
        out.push_str("Events:       <none>\n");
        Some(out)
    }

    /// Keys of every object of a kind, for a picker.
    pub fn keys(sim: &Sim, kind: Kind) -> Vec<String> {
        sim.api.list(kind).map(|o| o.key()).collect()
    }
}

#[cfg(test)]
mod natural_order {
    use super::natural_key;

    #[test]
    fn names_sort_as_a_reader_counts() {
        let mut v = vec!["node-zone-a-10", "node-zone-a-2", "node-zone-a-1", "node-zone-a-0", "node-zone-b-1", "node", "node-zone-a-02"];
        crate::sort::by(&mut v, |a, b| natural_key(a).cmp(&natural_key(b)));
        assert_eq!(v, ["node", "node-zone-a-0", "node-zone-a-1", "node-zone-a-02", "node-zone-a-2", "node-zone-a-10", "node-zone-b-1"]);
    }
}
