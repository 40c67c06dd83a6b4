//! One node's kube-proxy (one IP family, as the real one): it receives Services and EndpointSlices from
//! its informer, syncs on its own virtual clock (at most once per `minSyncPeriod`), and between syncs
//! routes new connections with whatever it last programmed, so each node has its own, possibly stale,
//! view.
//!
//! ```text
//! let mut kp = KubeProxy::new(ProxyConfig::new("node-a", IpFamily::V4), seed);
//! kp.on_service(&svc); kp.on_slice(&slice); kp.services_listed(); kp.slices_listed();
//! kp.tick(now_ms);                       // syncs when due
//! kp.connect(&five_tuple, now_ms)        // Outcome::New { backend, .. } / Established / Refused / Dropped
//! kp.render_rules(View::KubeProxy)       // the rules of the node's mode, as text
//! ```

use crate::vecmap::{VecMap, VecSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use rustc_hash::FxHashMap;

use super::affinity::AffinityTable;
use super::cache::{ServiceKey, SliceCache, SliceChange};
use super::cache::CatInputs;
use super::categorize::{categorize, node_matters};
use super::conntrack::{ConnEntry, ConnTable, FiveTuple};
use super::iptables::{self, Packet, Ruleset, Trace, View};
use super::ipvs::{IpvsState, Scheduler};
use super::nftables;
use super::policy::{route, DestKey, DestKind, DropReason, HealthCheck, NetConfig, PortState, Route};
use super::service::{service_ports, Ignored, ServicePortInfo};
use super::sync::SyncRunner;
use super::{Endpoint, Gates, Protocol, ServicePortName, DEFAULT_MIN_SYNC_PERIOD_MS};
use crate::rng::Rng;
use crate::IpFamily;

/// The proxy mode (§7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Iptables,
    Nftables,
    Ipvs,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "iptables" => Ok(Mode::Iptables),
            "nftables" => Ok(Mode::Nftables),
            "ipvs" => Ok(Mode::Ipvs),
            other => Err(format!("unknown mode {other:?} (iptables, nftables or ipvs)")),
        }
    }
}

/// How one kube-proxy is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    pub node_name: String,
    /// The node's `topology.kubernetes.io/zone` label; `None` when absent.
    pub node_zone: Option<String>,
    pub family: IpFamily,
    pub mode: Mode,
    /// `ipvs.scheduler` (IPVS mode only).
    pub scheduler: Scheduler,
    pub net: NetConfig,
    pub min_sync_period_ms: u64,
    pub gates: Gates,
}

impl ProxyConfig {
    /// iptables mode, no zone, no node IPs, no local-traffic detector, default options.
    pub fn new(node_name: &str, family: IpFamily) -> Self {
        ProxyConfig {
            node_name: node_name.into(),
            node_zone: None,
            family,
            mode: Mode::Iptables,
            scheduler: Scheduler::Rr,
            net: NetConfig { node_ips: Vec::new(), local_detector: None, masquerade_all: false, localhost_nodeports: true },
            min_sync_period_ms: DEFAULT_MIN_SYNC_PERIOD_MS,
            gates: Gates::default(),
        }
    }
}

/// What a sync did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    pub at_ms: u64,
    /// Every Service was recomputed (zone change, first sync).
    pub full: bool,
    /// The Services (`ns/name`) whose rules were rewritten.
    pub services: Vec<String>,
    /// Service ports programmed after the sync, and their endpoints.
    pub ports: usize,
    pub endpoints: usize,
    /// UDP connections cleared because their backend went away.
    pub udp_cleared: usize,
}

/// The fate of one connection attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An existing connection: it stays on its backend whatever the rules say now.
    Established { backend: Arc<Endpoint> },
    /// A new connection, sent to `backend`.
    New { backend: Arc<Endpoint>, spn: ServicePortName, via: DestKind, masquerade: bool, by_affinity: bool },
    /// REJECT: no usable endpoint anywhere.
    Refused { spn: ServicePortName },
    /// DROP: the client times out.
    Dropped { spn: ServicePortName, reason: DropReason },
    /// No Service matched: kube-proxy does not touch the packet.
    NotAService,
}

impl Outcome {
    pub fn backend(&self) -> Option<&Arc<Endpoint>> {
        match self {
            Outcome::Established { backend } | Outcome::New { backend, .. } => Some(backend),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
struct Programmed {
    state: Arc<PortState>,
    key: Arc<str>,
}

/// One node's kube-proxy.
#[derive(Clone, Debug)]
pub struct KubeProxy {
    pub config: ProxyConfig,
    services: VecMap<ServiceKey, Vec<Arc<ServicePortInfo>>>,
    ignored: VecMap<ServiceKey, Ignored>,
    cache: SliceCache,
    dirty: VecSet<ServiceKey>,
    full_resync: bool,
    pub runner: SyncRunner,
    ports: VecMap<ServicePortName, Programmed>,
    dests: FxHashMap<DestKey, (ServicePortName, DestKind)>,
    nodeports: FxHashMap<(u16, Protocol), ServicePortName>,
    affinity: AffinityTable,
    pub conntrack: ConnTable,
    pub ipvs: IpvsState,
    rng: Rng,
    /// Kernel thresholds for `1/k` (a pure table, shared with snapshots).
    thresholds: Arc<Vec<u32>>,
    pub last_sync: Option<SyncReport>,
}

impl KubeProxy {
    /// For the memory example: drop this copy's parts one by one, calling `mark` after each.
    #[doc(hidden)]
    pub fn drop_parts(mut self, mark: &mut dyn FnMut(&'static str)) {
        self.conntrack = Default::default();
        mark("conntrack");
        self.cache = SliceCache::new("", self.config.family, false);
        mark("slice cache");
        self.ports = Default::default();
        mark("ports");
        self.dests = Default::default();
        self.nodeports = Default::default();
        mark("dests");
        self.ipvs = IpvsState::new(self.config.scheduler);
        mark("ipvs");
        self.affinity = AffinityTable::new();
        mark("affinity");
        self.services = Default::default();
        self.ignored = Default::default();
        mark("services");
        self.last_sync = None;
        mark("last sync");
        self.thresholds = Default::default();
        mark("thresholds");
        drop(self);
        mark("kp rest");
    }

    pub fn new(config: ProxyConfig, seed: u64) -> Self {
        let cache = SliceCache::new(&config.node_name, config.family, config.gates.prefer_same_traffic_distribution);
        KubeProxy {
            runner: SyncRunner::new(config.min_sync_period_ms),
            ipvs: IpvsState::new(config.scheduler),
            config,
            services: VecMap::new(),
            ignored: VecMap::new(),
            cache,
            dirty: VecSet::new(),
            full_resync: true,
            ports: VecMap::new(),
            dests: FxHashMap::default(),
            nodeports: FxHashMap::default(),
            affinity: AffinityTable::new(),
            conntrack: ConnTable::default(),
            rng: Rng::new(seed),
            thresholds: Arc::new(iptables::thresholds(64)),
            last_sync: None,
        }
    }

    /// A new or changed Service arrived from the informer.
    pub fn on_service(&mut self, svc: &Service) {
        let key: ServiceKey = (
            svc.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        let ports: Vec<Arc<ServicePortInfo>> = match service_ports(svc, self.config.family) {
            Ok(p) => {
                self.ignored.remove(&key);
                p.into_iter().map(Arc::new).collect()
            }
            Err(why) => {
                self.ignored.insert(key.clone(), why);
                Vec::new()
            }
        };
        if self.services.get(&key) == Some(&ports) {
            return;
        }
        self.services.insert(key.clone(), ports);
        self.dirty.insert(key);
        self.runner.request();
    }

    pub fn on_service_deleted(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        self.ignored.remove(&key);
        if self.services.remove(&key).is_some() {
            self.dirty.insert(key);
            self.runner.request();
        }
    }

    /// A new or changed EndpointSlice arrived.
    pub fn on_slice(&mut self, slice: &EndpointSlice) -> SliceChange {
        let change = self.cache.update(slice);
        if let SliceChange::Changed(key) = &change {
            self.dirty.insert(key.clone());
            self.runner.request();
        }
        change
    }

    /// Share Service merges with other nodes' kube-proxies (a pure cache; see `cache::SharedMerges`).
    pub fn share_merges(&mut self, shared: crate::proxy::cache::SharedMerges) {
        self.cache.share_merges(shared);
    }

    /// `on_slice` with the slice already read by `cache::prepare` (one reading for every node).
    pub fn on_slice_prepared(&mut self, slice: &EndpointSlice, prepared: &crate::proxy::cache::PreparedSlice) -> SliceChange {
        let change = self.cache.update_prepared(slice, prepared);
        if let SliceChange::Changed(key) = &change {
            self.dirty.insert(key.clone());
            self.runner.request();
        }
        change
    }

    /// Whether this proxy keeps node hints (the PreferSameTrafficDistribution gate).
    pub fn reads_node_hints(&self) -> bool {
        self.config.gates.prefer_same_traffic_distribution
    }

    pub fn on_slice_deleted(&mut self, slice: &EndpointSlice) {
        if let Some(key) = self.cache.delete(slice) {
            self.dirty.insert(key);
            self.runner.request();
        }
    }

    /// The initial Service list has been received.
    pub fn services_listed(&mut self) {
        self.runner.services_listed();
    }

    /// The initial EndpointSlice list has been received.
    pub fn slices_listed(&mut self) {
        self.runner.slices_listed();
    }

    /// The node's zone label changed: a full resync.
    pub fn set_zone(&mut self, zone: Option<String>) {
        if self.config.node_zone != zone {
            self.config.node_zone = zone;
            self.full_resync = true;
            self.runner.request();
        }
    }

    /// Why a Service is ignored, if it is.
    pub fn ignored(&self, namespace: &str, name: &str) -> Option<&Ignored> {
        self.ignored.get(&(namespace.to_string(), name.to_string()))
    }

    /// When the next sync may run, if one is wanted.
    pub fn next_sync_at(&self) -> Option<u64> {
        self.runner.next_run_at()
    }

    /// Run a sync if one is due at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Option<SyncReport> {
        if self.runner.due(now_ms) {
            Some(self.sync(now_ms))
        } else {
            None
        }
    }

    /// Sync now, whatever the runner says (tests, the CLI).
    pub fn sync(&mut self, now_ms: u64) -> SyncReport {
        self.runner.start(now_ms);
        let full = std::mem::take(&mut self.full_resync);
        let keys: VecSet<ServiceKey> = if full {
            let mut k: VecSet<ServiceKey> = self.services.keys().cloned().collect();
            k.extend(self.cache.service_keys().cloned());
            k.extend(self.ports.keys().map(|s| (s.namespace.clone(), s.name.clone())));
            self.dirty.clear();
            k
        } else {
            std::mem::take(&mut self.dirty)
        };
        let mut udp_cleared = 0;
        for key in &keys {
            udp_cleared += self.resync_service(key);
        }
        self.rebuild_index();
        let max_timeout = self.ports.values().filter_map(|p| p.state.info.affinity_seconds).max().unwrap_or(0);
        self.affinity.expire(now_ms, max_timeout);
        let report = SyncReport {
            at_ms: now_ms,
            full,
            services: keys.iter().map(|(n, s)| format!("{n}/{s}")).collect(),
            ports: self.ports.len(),
            endpoints: self.ports.values().map(|p| p.state.cat.reachable_or_empty().len()).sum(),
            udp_cleared,
        };
        self.last_sync = Some(report.clone());
        report
    }

    fn resync_service(&mut self, key: &ServiceKey) -> usize {
        let infos = self.services.get(key).cloned().unwrap_or_default();
        let eps = self.cache.service_endpoints(key);
        let old: Vec<ServicePortName> =
            self.ports.keys().filter(|s| s.namespace == key.0 && s.name == key.1).cloned().collect();
        let mut fresh: VecMap<ServicePortName, Programmed> = VecMap::new();
        for info in infos {
            let list = eps.get(&(info.name.port.clone(), info.protocol)).cloned().unwrap_or_default();
            let key: Arc<str> = Arc::from(info.name.to_string().as_str());
            let inputs = CatInputs {
                zone: self.config.node_zone.clone(),
                node: node_matters(&list, &info, &self.config.gates).then(|| self.config.node_name.clone()),
                gates: self.config.gates.clone(),
            };
            let state = match self.cache.categorized(&list, &info, &inputs) {
                Some(state) => state,
                None => {
                    let cat = categorize(&list, &info, &self.config.node_name, self.config.node_zone.as_deref(), &self.config.gates);
                    let state = self.cache.intern_port(PortState { info, endpoints: list, cat });
                    self.cache.remember_categorized(inputs, state.clone());
                    state
                }
            };
            fresh.insert(state.info.name.clone(), Programmed { state, key });
        }
        let mut cleared = 0;
        for spn in &old {
            if spn.protocol == Protocol::Udp {
                let keep: Vec<String> = fresh
                    .get(spn)
                    .map(|p| p.state.cat.reachable_or_empty().iter().map(|&i| p.state.endpoints[i].endpoint.clone()).collect())
                    .unwrap_or_default();
                let removed = self.conntrack.clear_stale_udp(spn, |e| keep.iter().any(|k| k == e));
                for (_, entry) in &removed {
                    if let Some(vs) = &entry.virtual_server {
                        self.ipvs.closed(vs, &entry.backend.endpoint);
                    }
                }
                cleared += removed.len();
            }
            if !fresh.contains_key(spn) {
                self.ports.remove(spn);
                self.ipvs.remove_port(spn);
            }
        }
        for (spn, p) in fresh {
            if self.config.mode == Mode::Ipvs {
                self.ipvs.sync_port(&p.state, &self.config.net);
            }
            self.ports.insert(spn, p);
        }
        cleared
    }

    fn rebuild_index(&mut self) {
        self.dests.clear();
        self.nodeports.clear();
        for (spn, p) in &self.ports {
            let info = &p.state.info;
            if let Some(cip) = info.cluster_ip {
                self.dests.entry((cip, info.port, info.protocol)).or_insert((spn.clone(), DestKind::ClusterIp));
            }
            for ip in &info.external_ips {
                self.dests.entry((*ip, info.port, info.protocol)).or_insert((spn.clone(), DestKind::ExternalIp));
            }
            for ip in &info.load_balancer_vips {
                self.dests.entry((*ip, info.port, info.protocol)).or_insert((spn.clone(), DestKind::LoadBalancer));
            }
            if info.node_port != 0 {
                self.nodeports.entry((info.node_port, info.protocol)).or_insert(spn.clone());
            }
        }
    }

    /// The programmed service ports, in SPN order.
    pub fn ports(&self) -> impl Iterator<Item = &PortState> {
        self.ports.values().map(|p| &*p.state)
    }

    pub fn port(&self, spn: &ServicePortName) -> Option<&PortState> {
        self.ports.get(spn).map(|p| &*p.state)
    }

    /// Which programmed service port a destination reaches, and how.
    pub fn lookup(&self, dst: IpAddr, dport: u16, protocol: Protocol) -> Option<(&PortState, DestKind)> {
        if let Some((spn, kind)) = self.dests.get(&(dst, dport, protocol)) {
            return self.port(spn).map(|p| (p, *kind));
        }
        let net = &self.config.net;
        let local = net.node_ips.contains(&dst)
            || (dst.is_loopback() && self.config.mode == Mode::Iptables && net.localhost_nodeports && dst.is_ipv4());
        if local {
            if let Some(spn) = self.nodeports.get(&(dport, protocol)) {
                return self.port(spn).map(|p| (p, DestKind::NodePort));
            }
        }
        None
    }

    /// The route a new connection would take (no side effects).
    pub fn route(&self, t: &FiveTuple) -> Option<(&PortState, DestKind, Route)> {
        let (ps, kind) = self.lookup(t.dst, t.dst_port, t.protocol)?;
        let r = route(ps, kind, &t.src, &self.config.net);
        Some((ps, kind, r))
    }

    /// Decide a new connection and pick its backend, without recording the connection.
    pub fn pick(&mut self, t: &FiveTuple, now_ms: u64) -> Outcome {
        let Some((spn, kind)) = self.lookup(t.dst, t.dst_port, t.protocol).map(|(p, k)| (p.info.name.clone(), k)) else {
            return Outcome::NotAService;
        };
        let Some(prog) = self.ports.get(&spn) else { return Outcome::NotAService };
        let r = route(&prog.state, kind, &t.src, &self.config.net);
        match &r {
            Route::Reject => return Outcome::Refused { spn },
            Route::Drop(reason) => return Outcome::Dropped { spn, reason: *reason },
            Route::Forward { .. } => {}
        }
        let ps = &prog.state;
        let candidates = r.candidates(ps);
        if candidates.is_empty() {
            return Outcome::Refused { spn };
        }
        let (backend, by_affinity) = match self.config.mode {
            Mode::Ipvs => {
                let Some(vs) = self.ipvs.servers.get_mut(&(t.dst, t.dst_port, t.protocol)) else {
                    return Outcome::Refused { spn };
                };
                let known = vs.persistent.is_some();
                match vs.schedule(&t.src, now_ms) {
                    Some(b) => (b, known),
                    None => return Outcome::Refused { spn },
                }
            }
            mode => {
                let mut hit = None;
                if let Some(secs) = ps.info.affinity_seconds {
                    hit = self.affinity.check(&prog.key, t.src, &ps.endpoints, candidates, secs, now_ms);
                }
                let idx = match hit {
                    Some(i) => i,
                    None => {
                        let n = candidates.len();
                        let k = if mode == Mode::Iptables {
                            if self.thresholds.len() <= n {
                                self.thresholds = Arc::new(iptables::thresholds(n.next_power_of_two()));
                            }
                            iptables::pick_by_chain(&mut self.rng, &self.thresholds, n)
                        } else {
                            nftables::numgen_random(&mut self.rng, n)
                        };
                        candidates[k.min(n - 1)]
                    }
                };
                let b = ps.endpoints[idx].clone();
                if ps.info.affinity_seconds.is_some() {
                    self.affinity.record(&prog.key, t.src, &b.endpoint, now_ms);
                }
                (b, hit.is_some())
            }
        };
        let masquerade = r.masquerade_for(&t.src, &backend);
        Outcome::New { backend, spn, via: kind, masquerade, by_affinity }
    }

    /// A packet of a connection: an established one follows its conntrack entry; a new one is decided
    /// and recorded.
    pub fn connect(&mut self, t: &FiveTuple, now_ms: u64) -> Outcome {
        if let Some(e) = self.conntrack.get(t) {
            return Outcome::Established { backend: e.backend.clone() };
        }
        let out = self.pick(t, now_ms);
        if let Outcome::New { backend, spn, via, masquerade, .. } = &out {
            let vs = (self.config.mode == Mode::Ipvs).then_some((t.dst, t.dst_port, t.protocol));
            if let Some(k) = &vs {
                self.ipvs.opened(k, &backend.endpoint);
            }
            self.conntrack.insert(
                *t,
                ConnEntry {
                    backend: backend.clone(),
                    spn: spn.clone(),
                    via: *via,
                    virtual_server: vs,
                    masquerade: *masquerade,
                    created_ms: now_ms,
                },
            );
        }
        out
    }

    /// The connection ended.
    pub fn close(&mut self, t: &FiveTuple) {
        if let Some(e) = self.conntrack.remove(t) {
            if let Some(vs) = &e.virtual_server {
                self.ipvs.closed(vs, &e.backend.endpoint);
            }
        }
    }

    /// The health-check node port's answer for a Service (§5), from what was last programmed.
    pub fn health_check(&self, namespace: &str, name: &str) -> HealthCheck {
        let mut ips: Vec<&str> = self
            .ports
            .values()
            .filter(|p| p.state.info.name.namespace == namespace && p.state.info.name.name == name)
            .flat_map(|p| p.state.endpoints.iter())
            .filter(|e| e.local_to(&self.config.node_name) && e.ready)
            .map(|e| e.ip.as_str())
            .collect();
        crate::sort::all(&mut ips);
        ips.dedup();
        HealthCheck::from_count(ips.len())
    }

    /// Per Service, the number of local ready endpoint IPs (from the slice cache, as kube-proxy's
    /// health-check server is fed).
    pub fn local_ready_endpoints(&mut self) -> VecMap<String, usize> {
        self.cache.local_ready_endpoints()
    }

    /// The iptables rules of what is programmed.
    pub fn iptables_rules(&self) -> Ruleset {
        iptables::build(self.ports(), &self.config.net)
    }

    /// Trace a packet through the iptables rules, as the real test suite does.
    pub fn trace(&self, src: IpAddr, dst: IpAddr, dport: u16, protocol: Protocol) -> Trace {
        iptables::trace(&self.iptables_rules(), &self.config.net, Packet { src, dst, dport, protocol })
    }

    /// The rules of this node's mode, as text. `view` only matters for iptables.
    pub fn render_rules(&self, view: View) -> String {
        match self.config.mode {
            Mode::Iptables => iptables::render(&self.iptables_rules(), view),
            Mode::Nftables => nftables::render(self.ports(), &self.config.net, self.config.family),
            Mode::Ipvs => self.ipvs.render(),
        }
    }
}
