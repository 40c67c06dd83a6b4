//! Traffic: clients open connections at a rate; each one resolves its Service through cluster DNS and
//! is routed by the kube-proxy of the node it starts on, with that node's *current* view. The outcome
//! is decided against the real world: a backend that is gone resets the connection, even though the
//! node still routed to it.

use crate::vecmap::VecMap;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::api::Obj;
use super::{Ev, Sim};
use crate::proxy::conntrack::FiveTuple;
use crate::proxy::dns::{ClusterDns, QType, Record};
use crate::proxy::node::Outcome as ProxyOutcome;
use crate::proxy::policy::DropReason;
use crate::proxy::Protocol;

/// How often connections are generated (virtual milliseconds).
pub const TICK_MS: u64 = 100;
/// At most this many connections per second per flow.
pub const MAX_RATE: f64 = 10_000.0;
/// How many recent connections are kept for the animation.
pub const RECENT: usize = 256;

/// A stream of connections to one Service port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowSpec {
    /// `name` (namespace default) or `namespace/name`.
    pub service: String,
    /// The Service port, by name or number; the first port when left out.
    #[serde(default)]
    pub port: Option<serde_json::Value>,
    /// New connections per second (0 to 10000).
    pub rate: f64,
    /// Where clients run: a node name, `"external"` (through a NodePort or load balancer, entering at
    /// each node in turn), or every node in turn when left out.
    #[serde(default)]
    pub from: Option<String>,
}

/// The four ends of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ConnOutcome {
    /// A Pod answered.
    Served,
    /// REJECT: the node had no endpoint for it (or DNS had no answer).
    Refused,
    /// DROP, or nothing answered.
    TimedOut,
    /// The picked backend is gone (or restarting): reset.
    Reset,
}

impl ConnOutcome {
    pub const ALL: [ConnOutcome; 4] = [ConnOutcome::Served, ConnOutcome::Refused, ConnOutcome::TimedOut, ConnOutcome::Reset];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            ConnOutcome::Served => "served",
            ConnOutcome::Refused => "refused",
            ConnOutcome::TimedOut => "timed out",
            ConnOutcome::Reset => "reset",
        }
    }
}

/// One connection, for the animation and the why-log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conn {
    pub t: u64,
    /// The client's node, or `external`.
    pub from: String,
    /// The node whose kube-proxy routed it.
    pub via_node: String,
    pub service: String,
    /// The backend address picked (empty when none).
    pub backend: String,
    /// The Pod that answered or should have (`namespace/name`).
    pub pod: Option<String>,
    pub outcome: ConnOutcome,
    pub reason: String,
}

/// Counters of every connection so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrafficStats {
    pub total: u64,
    pub by_outcome: [u64; 4],
    /// Served connections per Pod (`namespace/name`), or per address for endpoints outside the cluster.
    /// Keys shared (`Arc`), so that a snapshot's copy of this map copies no strings.
    pub per_pod: crate::cowmap::CowMap<Arc<str>, u64>,
    /// Outcomes per client node (`external` for outside clients).
    pub per_node: VecMap<String, [u64; 4]>,
    /// Outcomes per second of virtual time.
    /// In shared chunks, so a snapshot copies only the last one.
    pub per_second: super::Chunked<[u32; 4]>,
}

/// The traffic state of a run.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    pub flows: Vec<FlowSpec>,
    acc: Vec<f64>,
    turn: Vec<u64>,
    pub ticking: bool,
    pub stats: TrafficStats,
    /// The last `RECENT` connections, as the animation draws them.
    pub recent: VecDeque<super::view::ConnView>,
    dns: Option<(u64, Arc<ClusterDns>)>,
    /// (client node, outcome, reason) → the routing node's sync count when last logged.
    logged: BTreeMap<(String, ConnOutcome, String), u64>,
    src_port: u16,
}

impl Traffic {
    pub fn new(flows: Vec<FlowSpec>) -> Self {
        let n = flows.len();
        Traffic { flows, acc: vec![0.0; n], turn: vec![0; n], ..Default::default() }
    }

    pub fn active(&self) -> bool {
        self.flows.iter().any(|f| f.rate > 0.0)
    }
}

/// Check a flow list (rates in range, services named).
pub fn validate(flows: &[FlowSpec]) -> Result<(), String> {
    for (i, f) in flows.iter().enumerate() {
        if !f.rate.is_finite() || !(0.0..=MAX_RATE).contains(&f.rate) {
            return Err(format!("traffic[{i}]: rate must be between 0 and {MAX_RATE} connections per second"));
        }
        if f.service.trim().is_empty() {
            return Err(format!("traffic[{i}]: `service` is empty"));
        }
    }
    Ok(())
}

/// Start ticking if some flow has a rate and no tick is scheduled.
pub(crate) fn ensure_ticking(sim: &mut Sim) {
    if sim.traffic.active() && !sim.traffic.ticking {
        sim.traffic.ticking = true;
        let at = (sim.now / TICK_MS + 1) * TICK_MS;
        sim.schedule(at, Ev::TrafficTick);
    }
}

/// Set the rate of every flow (or one).
pub(crate) fn set_rate(sim: &mut Sim, rate: f64, flow: Option<usize>) -> Result<(), String> {
    if !rate.is_finite() || !(0.0..=MAX_RATE).contains(&rate) {
        return Err(format!("rate must be between 0 and {MAX_RATE}"));
    }
    match flow {
        Some(i) => match sim.traffic.flows.get_mut(i) {
            Some(f) => f.rate = rate,
            None => return Err(format!("no traffic flow {i}")),
        },
        None => sim.traffic.flows.iter_mut().for_each(|f| f.rate = rate),
    }
    ensure_ticking(sim);
    Ok(())
}

fn service_key(s: &str) -> String {
    if s.contains('/') {
        s.to_string()
    } else {
        format!("default/{s}")
    }
}

/// Cluster DNS as CoreDNS serves it now (rebuilt when a Service or an EndpointSlice was written).
fn dns(sim: &mut Sim) -> Arc<ClusterDns> {
    let writes: u64 =
        sim.api.writes.iter().filter(|(k, _)| k.ends_with(" Service") || k.ends_with(" EndpointSlice")).map(|(_, n)| n).sum();
    if let Some((v, d)) = &sim.traffic.dns {
        if *v == writes {
            return d.clone();
        }
    }
    let services: Vec<_> = sim.api.services().collect();
    let slices: Vec<_> = sim.api.slices().collect();
    let d = Arc::new(ClusterDns::build(&services, &slices, "cluster.local"));
    sim.traffic.dns = Some((writes, d.clone()));
    d
}

/// One tick: every flow opens its share of connections.
pub(crate) fn tick(sim: &mut Sim) {
    sim.traffic.ticking = false;
    if !sim.traffic.active() {
        return;
    }
    let mut tick_counts = [0u32; 4];
    for i in 0..sim.traffic.flows.len() {
        let f = sim.traffic.flows[i].clone();
        let want = sim.traffic.acc[i] + f.rate * TICK_MS as f64 / 1000.0;
        let n = want.floor() as u64;
        sim.traffic.acc[i] = want - n as f64;
        for _ in 0..n {
            let c = connect(sim, i, &f);
            tick_counts[c.outcome.index()] += 1;
            record(sim, c);
        }
    }
    sim.mix(&tick_counts.iter().flat_map(|c| c.to_le_bytes()).collect::<Vec<u8>>());
    ensure_ticking(sim);
}

fn record(sim: &mut Sim, c: Conn) {
    let st = &mut sim.traffic.stats;
    let k = c.outcome.index();
    st.total += 1;
    st.by_outcome[k] += 1;
    // Counters found by reference; a key is copied only the first time it is counted.
    match st.per_node.get_mut(&c.from) {
        Some(n) => n[k] += 1,
        None => st.per_node.entry(c.from.clone()).or_default()[k] += 1,
    }
    if c.outcome == ConnOutcome::Served {
        let who = c.pod.as_ref().unwrap_or(&c.backend);
        match st.per_pod.get_mut(who.as_str()) {
            Some(n) => *n += 1,
            None => *st.per_pod.get_or_insert_with(who.as_str().into(), || 0) += 1,
        }
    }
    let sec = (c.t / 1000) as usize;
    while st.per_second.len() <= sec {
        st.per_second.push([0; 4]);
    }
    if let Some(s) = st.per_second.get_mut(sec) {
        s[k] += 1;
    }
    if let Some(p) = &c.pod {
        sim.mix(p.as_bytes());
    }
    if c.outcome != ConnOutcome::Served {
        let syncs = sim.proxies.get(&c.via_node).map(|p| p.syncs).unwrap_or(0);
        let key = (c.from.clone(), c.outcome, c.reason.clone());
        if sim.traffic.logged.get(&key) != Some(&syncs) {
            sim.traffic.logged.insert(key, syncs);
            let synced = sim.proxies.get(&c.via_node).and_then(|p| p.synced_at).map(super::fmt_ms).unwrap_or_else(|| "never".into());
            let what = format!(
                "connection from {} to {} {}{}",
                c.from,
                c.service,
                c.outcome.name(),
                if c.backend.is_empty() { String::new() } else { format!(" (backend {})", c.backend) }
            );
            let cause = format!("{}; kube-proxy on {} last synced at {synced}", c.reason, c.via_node);
            sim.log("traffic", what, cause);
        }
    }
    if sim.traffic.recent.len() >= RECENT {
        sim.traffic.recent.pop_front();
    }
    let Conn { t, from, via_node, backend, pod, outcome, .. } = c;
    sim.traffic.recent.push_back(super::view::ConnView { t, from, via_node, backend, pod, outcome });
}

/// The node a connection of flow `i` starts on, in turn among nodes that are up.
fn client_node(sim: &mut Sim, i: usize, from: Option<&str>) -> Option<String> {
    if let Some(n) = from.filter(|n| *n != "external") {
        return sim.world.nodes.contains_key(n).then(|| n.to_string());
    }
    let up: Vec<&String> = sim.world.nodes.iter().filter(|(_, rt)| !rt.failed).map(|(n, _)| n).collect();
    if up.is_empty() {
        return None;
    }
    let t = sim.traffic.turn[i];
    sim.traffic.turn[i] += 1;
    Some(up[(t % up.len() as u64) as usize].clone())
}

fn conn(sim: &Sim, from: &str, via: &str, svc: &str, outcome: ConnOutcome, reason: impl Into<String>) -> Conn {
    Conn {
        t: sim.now,
        from: from.into(),
        via_node: via.into(),
        service: svc.into(),
        backend: String::new(),
        pod: None,
        outcome,
        reason: reason.into(),
    }
}

/// Open one connection of flow `i`.
fn connect(sim: &mut Sim, i: usize, f: &FlowSpec) -> Conn {
    let key = service_key(&f.service);
    let external = f.from.as_deref() == Some("external");
    let from_label = |node: &str| if external { "external".to_string() } else { node.to_string() };
    let Some(node) = client_node(sim, i, f.from.as_deref()) else {
        return conn(sim, if external { "external" } else { f.from.as_deref().unwrap_or("-") }, "-", &key, ConnOutcome::TimedOut, "no node is up to run the client");
    };
    let from = from_label(&node);
    // The Service object itself, shared: nothing of it is copied per connection.
    let svc_obj = sim.api.service_shared(&key);
    let Some(Obj::Service(svc)) = svc_obj.as_deref() else {
        return conn(sim, &from, &node, &key, ConnOutcome::Refused, format!("DNS: no Service {key} (NXDOMAIN)"));
    };
    let no_spec = k8s_openapi::api::core::v1::ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&no_spec);
    let ports: &[k8s_openapi::api::core::v1::ServicePort] = spec.ports.as_deref().unwrap_or(&[]);
    let port = match &f.port {
        None => ports.first(),
        Some(serde_json::Value::Number(n)) => ports.iter().find(|p| Some(p.port as i64) == n.as_i64()),
        Some(serde_json::Value::String(s)) => ports.iter().find(|p| p.name.as_deref() == Some(s.as_str()) || p.port.to_string() == *s),
        Some(_) => None,
    };
    let Some(port) = port else {
        return conn(sim, &from, &node, &key, ConnOutcome::Refused, "the Service has no such port");
    };
    let protocol = Protocol::parse(port.protocol.as_deref()).unwrap_or(Protocol::Tcp);
    sim.traffic.src_port = sim.traffic.src_port.wrapping_add(1).max(1024);
    let src_port = sim.traffic.src_port;
    let node_index = sim.world.nodes.get(&node).map(|n| n.index).unwrap_or(0);
    // Where the packet goes, and the source it comes from.
    let (dst, dport, src): (IpAddr, u16, IpAddr) = if external {
        if port.node_port.unwrap_or(0) == 0 {
            return conn(sim, &from, &node, &key, ConnOutcome::TimedOut, "the Service has no NodePort: outside clients cannot reach it");
        }
        let lb = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.as_ref()).and_then(|i| i.first()).and_then(|i| i.ip.clone());
        let client: IpAddr = IpAddr::from([198, 51, 100, (10 + (sim.traffic.turn[i] % 200)) as u8]);
        match lb.and_then(|ip| ip.parse().ok()) {
            Some(vip) => (vip, port.port.clamp(0, 65535) as u16, client),
            None => (super::world::node_ip(node_index), port.node_port.unwrap_or(0).clamp(0, 65535) as u16, client),
        }
    } else {
        let name = format!("{}.{}.svc.cluster.local", svc.metadata.name.as_deref().unwrap_or(""), svc.metadata.namespace.as_deref().unwrap_or("default"));
        let d = dns(sim);
        let answers: Vec<IpAddr> = d
            .lookup(&name, QType::A)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| match r {
                Record::A(ip) => Some(ip),
                _ => None,
            })
            .collect();
        if answers.is_empty() {
            return conn(sim, &from, &node, &key, ConnOutcome::Refused, format!("DNS: {name} has no address"));
        }
        let headless = spec.cluster_ip.as_deref() == Some("None");
        let pick = if headless { sim.traffic_rng.below(answers.len() as u64) as usize } else { 0 };
        let dst = answers[pick];
        let src = super::world::client_ip(node_index, dst.is_ipv6());
        let dport = if headless { target_port_number(&port) } else { port.port.clamp(0, 65535) as u16 };
        (dst, dport, src)
    };
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let mut c = conn(sim, &from, &node, &key, ConnOutcome::Served, "");
    let backend_ip = if headless && !external {
        // Straight to a Pod IP: kube-proxy is not involved.
        dst
    } else {
        let now = sim.now;
        let tuple = FiveTuple { src, src_port, dst, dst_port: dport, protocol };
        let Some(p) = sim.proxies.get_mut(&node) else {
            c.outcome = ConnOutcome::TimedOut;
            c.reason = "the node has no kube-proxy".into();
            return c;
        };
        let fam = if dst.is_ipv6() { crate::IpFamily::V6 } else { crate::IpFamily::V4 };
        let Some(kp) = p.kube_proxies.iter_mut().find(|k| k.config.family == fam) else {
            c.outcome = ConnOutcome::TimedOut;
            c.reason = format!("no kube-proxy for {fam:?} on {node}");
            return c;
        };
        match kp.pick(&tuple, now) {
            ProxyOutcome::New { backend, .. } | ProxyOutcome::Established { backend } => {
                // Invariant: the backend is usable in this node's own current view.
                if let Err(e) = usable_in_view(kp, &backend, &tuple) {
                    sim.violations.push(format!("t={} kube-proxy on {node}: {e}", sim.now));
                }
                c.backend = crate::proxy::join_host_port(&backend.addr, backend.port);
                backend.addr
            }
            ProxyOutcome::Refused { .. } => {
                c.outcome = ConnOutcome::Refused;
                c.reason = format!("no usable endpoint in {node}'s view: REJECT");
                return c;
            }
            ProxyOutcome::Dropped { reason, .. } => {
                c.outcome = ConnOutcome::TimedOut;
                c.reason = match reason {
                    DropReason::NoLocalEndpoints => format!("traffic policy Local and no endpoint on {node}: DROP"),
                    DropReason::Firewall => "outside the load balancer's source ranges: DROP".into(),
                };
                return c;
            }
            _ => {
                c.outcome = ConnOutcome::TimedOut;
                c.reason = format!("{node}'s kube-proxy has no rules for this Service yet");
                return c;
            }
        }
    };
    if c.backend.is_empty() {
        c.backend = crate::proxy::join_host_port(&backend_ip, dport);
    }
    let owner = sim.world.ip_owner(&backend_ip.to_string());
    match owner {
        None if !super::world::in_pod_network(&backend_ip) => {
            // A custom endpoint outside the cluster's pod network: a server we do not model answers.
            c.reason = "an address outside the cluster answered".into();
        }
        None => {
            c.outcome = ConnOutcome::Reset;
            c.reason = format!("no Pod has {backend_ip} any more");
        }
        Some(pod) => {
            let rt = sim.world.pods.get(pod.as_str());
            let node_down = rt.and_then(|r| r.node.as_ref()).and_then(|n| sim.world.nodes.get(n)).is_some_and(|n| n.failed);
            c.pod = Some(pod.clone());
            if rt.is_some_and(|r| r.dead) || node_down {
                c.outcome = ConnOutcome::TimedOut;
                c.reason = format!("{pod}'s node is down");
            } else if !rt.is_some_and(|r| r.running) {
                c.outcome = ConnOutcome::Reset;
                c.reason = format!("{pod} is not running");
            }
        }
    }
    c
}

fn target_port_number(p: &k8s_openapi::api::core::v1::ServicePort) -> u16 {
    match &p.target_port {
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => (*n).clamp(0, 65535) as u16,
        _ => p.port.clamp(0, 65535) as u16,
    }
}

/// The picked backend must be one this node may forward to, ready or serving-terminating.
fn usable_in_view(kp: &crate::proxy::node::KubeProxy, backend: &Arc<crate::proxy::Endpoint>, t: &FiveTuple) -> Result<(), String> {
    let Some((ps, _)) = kp.lookup(t.dst, t.dst_port, t.protocol) else {
        return Err(format!("picked {} for a destination it has no rules for", backend.endpoint));
    };
    let reachable = ps.cat.reachable_or_empty();
    let ok = reachable.iter().any(|&i| Arc::ptr_eq(&ps.endpoints[i], backend))
        || reachable.iter().any(|&i| ps.endpoints[i].endpoint == backend.endpoint);
    if !ok {
        return Err(format!("picked {} which is not reachable in its view", backend.endpoint));
    }
    if !(backend.ready || backend.serving_terminating()) {
        return Err(format!("picked {} which is neither ready nor serving-terminating", backend.endpoint));
    }
    Ok(())
}

/// Every connection is counted once.
pub(crate) fn check(sim: &Sim) -> Result<(), String> {
    let st = &sim.traffic.stats;
    let by: u64 = st.by_outcome.iter().sum();
    let nodes: u64 = st.per_node.values().flat_map(|a| a.iter()).sum();
    let secs: u64 = st.per_second.iter().flat_map(|a| a.iter()).map(|&x| x as u64).sum();
    let pods: u64 = st.per_pod.values().sum();
    if by != st.total || nodes != st.total || secs != st.total {
        return Err(format!("connections counted {} times by outcome, {nodes} by node, {secs} by second, of {}", by, st.total));
    }
    if pods != st.by_outcome[ConnOutcome::Served.index()] {
        return Err(format!("served connections: {} by outcome, {pods} by pod", st.by_outcome[0]));
    }
    Ok(())
}

/// A slice event read once for every node it reaches: (the event's object, its reading).
pub(crate) type Prepared = Option<(Arc<Obj>, crate::proxy::cache::PreparedSlice)>;

/// Feed a watch event to a node's kube-proxies. `memo` keeps the reading of the last slice event, so
/// the same event delivered to many nodes is read once.
pub(crate) fn feed(kps: &mut [crate::proxy::node::KubeProxy], ev: &super::api::WatchEvent, memo: &mut Prepared) {
    let deleted = ev.type_ == super::api::WatchType::Deleted;
    match &*ev.obj {
        Obj::Service(s) => {
            for kp in kps {
                if deleted {
                    kp.on_service_deleted(s.metadata.namespace.as_deref().unwrap_or("default"), s.metadata.name.as_deref().unwrap_or(""));
                } else {
                    kp.on_service(s);
                }
            }
        }
        Obj::EndpointSlice(s) => {
            for kp in kps {
                if deleted {
                    kp.on_slice_deleted(s);
                    continue;
                }
                let hints = kp.reads_node_hints();
                let fresh = memo.as_ref().is_some_and(|(o, p)| Arc::ptr_eq(o, &ev.obj) && p.reads_node_hints() == hints);
                if !fresh {
                    // The caches keep the API object itself (no copy of the slice).
                    *memo = crate::proxy::cache::prepare_from(ev.obj.clone(), hints).map(|p| (ev.obj.clone(), p));
                }
                match memo.as_ref() {
                    Some((_, p)) => kp.on_slice_prepared(s, p),
                    None => kp.on_slice(s),
                };
            }
        }
        _ => {}
    }
}

/// A fresh kube-proxy's initial lists of Services and slices.
pub(crate) fn relist(kps: &mut [crate::proxy::node::KubeProxy], objs: &[Arc<Obj>]) {
    for o in objs {
        match &**o {
            Obj::Service(s) => kps.iter_mut().for_each(|kp| kp.on_service(s)),
            Obj::EndpointSlice(s) => kps.iter_mut().for_each(|kp| {
                kp.on_slice(s);
            }),
            _ => {}
        }
    }
    for kp in kps {
        kp.services_listed();
        kp.slices_listed();
    }
}
