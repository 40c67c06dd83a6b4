//! A deterministic cluster simulation: Nodes, workloads and their Pods with a whole life, Services, an
//! API server with resourceVersions and watch events, the EndpointSlice controller behind its own
//! informer and work queue, and per-node kube-proxy views that sync on their own clocks. Time is
//! virtual (milliseconds); randomness comes from one seeded PRNG; every change in the log carries its
//! cause. The same scenario, seed and actions always give the same run.

pub mod actions;
pub mod api;
mod jsonlen;
mod lean;
mod memo;
pub mod scenario;
pub mod share;
pub mod timeline;
pub mod traffic;
pub mod view;
mod world;

use crate::vecmap::{VecMap, VecSet};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;

pub use actions::Action;
use api::{ApiServer, Kind, Obj, WatchEvent};
use scenario::{Scenario, TimedAction};

use crate::controller::reconciler::{ApiCall, Reconciler, ReconcilerOptions};
use crate::rng::Rng;

/// Propagation and controller settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub max_endpoints_per_slice: usize,
    pub batch_period_ms: u64,
    pub api_latency_ms: u64,
    pub watch_latency_ms: u64,
    pub min_sync_period_ms: u64,
    pub eviction_timeout_ms: u64,
    pub node_monitor_grace_ms: u64,
    pub schedule_delay_ms: u64,
    pub container_start_ms: u64,
    pub probe_period_ms: u64,
    /// kube-proxy's mode on every node: iptables, nftables or ipvs.
    pub proxy_mode: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_endpoints_per_slice: 100,
            batch_period_ms: 0,
            api_latency_ms: 20,
            watch_latency_ms: 50,
            min_sync_period_ms: 1000,
            eviction_timeout_ms: 300_000,
            node_monitor_grace_ms: 40_000,
            schedule_delay_ms: 100,
            container_start_ms: 1500,
            probe_period_ms: 1000,
            proxy_mode: "iptables".into(),
        }
    }
}

/// Who receives watch events.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Watcher {
    Controller,
    Proxy(String),
}

/// Something scheduled to happen.
#[derive(Clone, Debug)]
pub(crate) enum Ev {
    /// Boxed, as the large variants are: every pending event is as large as the largest variant.
    Action(Box<Action>),
    WorkloadSync(String),
    PodScheduled(String),
    PodStarted(String),
    Probe(String),
    /// A run of readiness-probe results ends: (pod, whether the next run fails).
    Flap(Arc<str>, bool),
    PodCrash(String),
    PodGone(String),
    NodeGrace(String),
    NodeEvict(String),
    Deliver(Watcher, WatchEvent),
    ControllerSync(String),
    ControllerWrites(Box<(String, Vec<ApiCall>, usize)>),
    ProxySync(String),
    TrafficTick,
    /// A write by a controller other than the EndpointSlice one: (verb, object, actor, cause). The
    /// object is boxed: an `Obj` is kilobytes inline, and every pending event would pay for it.
    Write(Box<(&'static str, Obj, &'static str, String)>),
}

impl Ev {
    fn is_propagation(&self) -> bool {
        matches!(self, Ev::Deliver(..) | Ev::ControllerSync(_) | Ev::ControllerWrites(..) | Ev::ProxySync(_) | Ev::Write(..))
    }
}

/// One line of the why-log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Milliseconds of virtual time.
    pub t: u64,
    /// Who acted: "action", "kubelet", "scheduler", "workload", "node-lifecycle", "apiserver",
    /// "endpointslice-controller", "kube-proxy/<node>".
    pub actor: String,
    pub what: String,
    /// Why: the action, the reconciler step and API call, the proxy sync.
    pub cause: String,
}

/// An append-only list in shared chunks, so that snapshots of the simulation share it.
#[derive(Clone, Debug)]
pub struct Chunked<T> {
    chunks: Vec<std::sync::Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new(), len: 0 }
    }
}

/// The why-log.
pub type Log = Chunked<LogEntry>;

/// Entries per chunk. A snapshot shares every full chunk; the last one is copied when the run
/// writes to it after the snapshot, so a small chunk keeps that copy small.
const LOG_CHUNK: usize = 128;

impl<T: Clone> Chunked<T> {
    pub fn push(&mut self, e: T) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < LOG_CHUNK => std::sync::Arc::make_mut(c).push(e),
            _ => self.chunks.push(std::sync::Arc::new(vec![e])),
        }
        self.len += 1;
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / LOG_CHUNK).and_then(|c| c.get(i % LOG_CHUNK))
    }

    pub fn last(&self) -> Option<&T> {
        self.chunks.last().and_then(|c| c.last())
    }
}

impl<T: Clone> Chunked<T> {
    /// An entry to change: its chunk is copied first if a snapshot still shares it.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks.get_mut(i / LOG_CHUNK).and_then(|c| std::sync::Arc::make_mut(c).get_mut(i % LOG_CHUNK))
    }
}

impl<T: PartialEq> PartialEq for Chunked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for Chunked<T> {}

impl<T: Serialize> Serialize for Chunked<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = Box<dyn Iterator<Item = &'a T> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// The cluster at one moment, for the charts: taken at most once per virtual second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub t: u64,
    pub slices: u32,
    pub endpoints: u32,
    pub ready_endpoints: u32,
    /// Every API write so far.
    pub api_writes: u64,
    /// Bytes sent to watchers so far, EndpointSlices and Endpoints.
    pub slice_watch_bytes: u64,
    pub endpoints_watch_bytes: u64,
}

/// An informer's local cache.
#[derive(Clone, Debug, Default)]
pub struct Informer {
    /// By kind, then by key (`namespace/name`). Keys are shared strings: a snapshot's copy of the
    /// cache copies pointers, not names.
    objects: VecMap<Kind, crate::cowmap::CowMap<Arc<str>, Arc<Obj>>>,
    pub connected: bool,
}

impl Informer {
    fn apply(&mut self, ev: &WatchEvent) {
        let key = ev.obj.key();
        let objects = self.objects.entry(ev.obj.kind()).or_default();
        match ev.type_ {
            api::WatchType::Deleted => {
                objects.remove(key.as_str());
            }
            _ => match objects.get_mut(key.as_str()) {
                Some(o) => *o = ev.obj.clone(),
                None => {
                    objects.insert(key.into(), ev.obj.clone());
                }
            },
        }
    }

    /// The cached object of a kind by key.
    pub fn get(&self, kind: Kind, key: &str) -> Option<&Arc<Obj>> {
        self.objects.get(&kind).and_then(|m| m.get(key))
    }

    /// The cached objects of a kind, in key order.
    pub fn list(&self, kind: Kind) -> impl Iterator<Item = &Obj> {
        self.list_shared(kind).map(|o| &**o)
    }

    pub fn list_shared(&self, kind: Kind) -> impl Iterator<Item = &Arc<Obj>> {
        self.objects.get(&kind).into_iter().flat_map(|m| m.values())
    }

    /// The cache holding exactly `objects`.
    fn replace(&mut self, objects: Vec<Arc<Obj>>) {
        self.objects = VecMap::new();
        for o in objects {
            self.objects.entry(o.kind()).or_default().insert(o.key().into(), o);
        }
    }
}

/// The tracker of §2: the generation the controller last wrote per slice, or an expected deletion.
#[derive(Clone, Debug, Default)]
pub struct SliceTracker {
    by_service: VecMap<String, crate::controller::tracker::TrackedSlices>,
}

impl SliceTracker {
    fn record(&mut self, svc: &str, slice: &str, generation: Option<i64>) {
        self.by_service.entry(svc.to_string()).or_default().insert(slice.to_string(), generation);
    }

    /// §2.3 stale-cache check against the slices listed from the informer.
    fn stale(&self, svc: &str, listed: &[&EndpointSlice]) -> bool {
        crate::controller::tracker::stale(self.by_service.get(svc), listed.iter().copied())
    }

    fn newer_or_untracked(&self, svc: &str, slice: &EndpointSlice) -> bool {
        let name = slice.metadata.name.as_deref().unwrap_or("");
        match self.by_service.get(svc).and_then(|t| t.get(name)) {
            None => true,
            Some(None) => false,
            Some(Some(g)) => slice.metadata.generation.unwrap_or(0) > *g,
        }
    }

    fn deleted(&mut self, svc: &str, slice: &str) -> bool {
        match self.by_service.get_mut(svc).and_then(|t| t.remove(slice)) {
            Some(None) => false,
            _ => true, // unexpected
        }
    }
}

/// The EndpointSlice controller as the simulation runs it.
#[derive(Clone, Debug)]
pub struct SliceController {
    pub informer: Informer,
    pub reconciler: Reconciler,
    pub tracker: SliceTracker,
    /// Service key → when its sync is due.
    pub queue: VecMap<String, u64>,
    /// Services whose writes are in flight.
    pub busy: VecSet<String>,
    pub syncs: u64,
}

/// A node's kube-proxy: its informer, the view it last programmed, and the kube-proxy model itself
/// (one per IP family), which routes this node's connections.
#[derive(Clone, Debug, Default)]
pub struct NodeProxy {
    pub informer: Informer,
    pub zone: String,
    pub index: u32,
    pub kube_proxies: Vec<crate::proxy::node::KubeProxy>,
    pub last_sync_start: Option<u64>,
    pub sync_scheduled: bool,
    /// Service key → the slices it saw at its last sync (shared with the informer).
    pub programmed: VecMap<String, Vec<Arc<Obj>>>,
    pub synced_at: Option<u64>,
    pub syncs: u64,
}

impl NodeProxy {
    /// The slices this node last programmed for a Service key.
    pub fn programmed_slices(&self, svc: &str) -> impl Iterator<Item = &EndpointSlice> {
        self.programmed.get(svc).into_iter().flatten().filter_map(|o| match &**o {
            Obj::EndpointSlice(s) => Some(s),
            _ => None,
        })
    }

    /// How many endpoints this node last programmed, over every Service.
    pub fn programmed_endpoints(&self) -> usize {
        self.programmed
            .values()
            .flatten()
            .map(|o| match &**o {
                Obj::EndpointSlice(s) => crate::controller::plan::eps(s).len(),
                _ => 0,
            })
            .sum()
    }
}

/// A pending event, ordered by its key alone: (time, 0 for an action and 1 for anything else,
/// sequence), the smallest first. Sequences are unique, so no two keys are equal.
#[derive(Clone, Debug)]
struct Pending {
    key: Reverse<(u64, u8, u64)>,
    ev: Ev,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// The whole simulated cluster.
#[derive(Clone, Debug)]
pub struct Sim {
    pub now: u64,
    pub config: Config,
    pub api: ApiServer,
    pub controller: SliceController,
    pub proxies: VecMap<String, NodeProxy>,
    pub(crate) world: world::World,
    pub log: Log,
    /// One sample per virtual second (at most), for the charts.
    pub samples: Chunked<Sample>,
    pub(crate) rng: Rng,
    /// (time, 0 for an action and 1 for anything else, sequence): at one instant actions go first, so
    /// an action added while the timeline runs (a fork) lands in the same place as the same action
    /// known from the start (a link opened later), and the two runs are the same run.
    /// Each pending event with its key, in one heap (one entry per event, copied whole by a snapshot).
    queue: BinaryHeap<Pending>,
    seq: u64,
    /// Violations found by the write-time checks (they never panic; tests assert this is empty).
    pub violations: Vec<String>,
    hash: u64,
    pub traffic: traffic::Traffic,
    pub(crate) traffic_rng: Rng,
    pub seed: u64,
    /// The last slice event read for the kube-proxies (one reading serves every node).
    pub(crate) prepared: traffic::Prepared,
    /// Service merges shared by every node's kube-proxy (a pure cache).
    merges: crate::proxy::cache::SharedMerges,
    /// Pods deleted within the last `view::FLASH_MS`, with their last state: (time, object). The
    /// cluster view shows them fading out. Not part of the trace.
    pub(crate) gone: std::collections::VecDeque<(u64, Arc<Obj>)>,
    /// Events handled so far. Not part of the trace.
    pub handled: u64,
    /// The work a replay from the start would redo, in units of about one ordinary event: each
    /// event is one, and a controller or workload sync, which walks every Pod, counts more as the
    /// cluster grows (at 1,000 Pods a controller sync costs about what 25 other events do), except
    /// that in a timeline a controller sync counts a few (replays take it from the memo). The
    /// timeline spaces its snapshots by it, so every stretch between two costs about the same to
    /// replay. Not part of the trace.
    pub work: u64,
    /// What controller syncs decided, shared by a timeline's copies (`memo`). Not part of the trace.
    pub(crate) memo: memo::MemoHandle,
}

impl Sim {
    /// For the memory example: drop this copy's parts one by one, calling `mark` after each with
    /// the part's name, so the caller can count what each part kept alive.
    #[doc(hidden)]
    pub fn drop_parts(mut self, mark: &mut dyn FnMut(&'static str)) {
        self.queue = Default::default();
        mark("events");
        self.world.pods = Default::default();
        mark("world pods");
        self.world.ips_in_use = Default::default();
        mark("world ips");
        self.world.workloads = Default::default();
        self.world.nodes = Default::default();
        self.world.bound = Default::default();
        self.world.sync_pending = Default::default();
        mark("world rest");
        self.traffic.stats.per_pod = Default::default();
        mark("traffic per pod");
        self.traffic = Default::default();
        mark("traffic rest");
        self.gone = Default::default();
        self.prepared = None;
        mark("gone+prepared");
        self.controller.informer = Default::default();
        mark("controller informer");
        self.controller.tracker = Default::default();
        self.controller.queue = Default::default();
        mark("controller rest");
        for p in self.proxies.values_mut() {
            p.informer = Default::default();
        }
        mark("proxy informers");
        for p in self.proxies.values_mut() {
            p.programmed = Default::default();
        }
        mark("proxy programmed");
        self.merges = Default::default();
        mark("shared merges");
        for p in self.proxies.values_mut() {
            for kp in std::mem::take(&mut p.kube_proxies) {
                kp.drop_parts(mark);
            }
        }
        self.proxies = Default::default();
        mark("proxies rest");
        self.log = Default::default();
        self.samples = Default::default();
        mark("log+samples");
        self.api.drop_parts(mark);
        drop(self);
        mark("rest");
    }

    /// Build the initial world of a scenario; its timed actions are scheduled.
    pub fn new(sc: &Scenario) -> Result<Sim, String> {
        Self::with_actions(sc, &[])
    }

    /// A scenario plus extra actions (for example from a URL or `--actions`).
    pub fn with_actions(sc: &Scenario, extra: &[TimedAction]) -> Result<Sim, String> {
        sc.validate()?;
        let mut config = Config::default();
        let p = &sc.config;
        if let Some(v) = p.max_endpoints_per_slice {
            config.max_endpoints_per_slice = v;
        }
        if let Some(v) = p.batch_period {
            config.batch_period_ms = v.0;
        }
        if let Some(v) = p.api_latency {
            config.api_latency_ms = v.0;
        }
        if let Some(v) = p.watch_latency {
            config.watch_latency_ms = v.0;
        }
        if let Some(v) = p.min_sync_period {
            config.min_sync_period_ms = v.0;
        }
        if let Some(v) = p.eviction_timeout {
            config.eviction_timeout_ms = v.0;
        }
        if let Some(v) = p.node_monitor_grace {
            config.node_monitor_grace_ms = v.0;
        }
        if let Some(v) = &p.proxy_mode {
            crate::proxy::node::Mode::parse(v)?;
            config.proxy_mode = v.clone();
        }
        let reconciler = Reconciler::new(ReconcilerOptions {
            max_endpoints_per_slice: config.max_endpoints_per_slice,
            ..Default::default()
        });
        let mut sim = Sim {
            now: 0,
            api: ApiServer::new(sc.seed),
            controller: SliceController {
                informer: Informer { connected: true, ..Default::default() },
                reconciler,
                tracker: SliceTracker::default(),
                queue: VecMap::new(),
                busy: VecSet::new(),
                syncs: 0,
            },
            proxies: VecMap::new(),
            world: world::World::default(),
            log: Log::default(),
            samples: Chunked::default(),
            rng: Rng::new(sc.seed),
            queue: BinaryHeap::new(),
            seq: 0,
            violations: Vec::new(),
            hash: 0xcbf2_9ce4_8422_2325,
            traffic: traffic::Traffic::new(sc.traffic.clone()),
            traffic_rng: Rng::new(sc.seed ^ 0x7472_6166_6669_6321),
            seed: sc.seed,
            prepared: None,
            merges: Default::default(),
            gone: Default::default(),
            handled: 0,
            work: 0,
            memo: Default::default(),
            config,
        };
        world::build(&mut sim, sc)?;
        traffic::ensure_ticking(&mut sim);
        let mut actions: Vec<&TimedAction> = sc.actions.iter().chain(extra.iter()).collect();
        crate::sort::by_key(&mut actions, |a| a.at.0);
        for a in actions {
            sim.schedule(a.at.0, Ev::Action(Box::new(a.action.clone())));
        }
        Ok(sim)
    }

    pub(crate) fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        let class = u8::from(!matches!(ev, Ev::Action(_)));
        self.queue.push(Pending { key: Reverse((at, class, self.seq)), ev });
    }

    pub(crate) fn log(&mut self, actor: &str, what: String, cause: String) {
        let e = LogEntry { t: self.now, actor: actor.to_string(), what, cause };
        let line = serde_json::to_string(&e).unwrap_or_default();
        for b in line.bytes().chain(std::iter::once(b'\n')) {
            self.hash ^= b as u64;
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.log.push(e);
    }

    /// Fold bytes into the trace hash (traffic outcomes, which are not all logged).
    pub(crate) fn mix(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash ^= b as u64;
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The FNV-1a hash of the whole log so far, and of every connection's outcome (the `trace hash`).
    pub fn trace_hash(&self) -> u64 {
        self.hash
    }

    /// The time of the next scheduled event.
    pub fn next_time(&self) -> Option<u64> {
        self.queue.peek().map(|p| p.key.0 .0)
    }

    /// Pods a controller sync walks for one unit of `work` (measured: at 1,000 Pods, a sync of both
    /// controllers costs about 25 ordinary events).
    pub(crate) const PODS_PER_WORK: u64 = 40;

    /// The work of a controller sync a replay takes from the memo (rebuilding the objects written).
    const MEMO_SYNC_WORK: u64 = 4;

    /// Process one event. Returns false when nothing is left.
    pub fn step(&mut self) -> bool {
        let Some(Pending { key: Reverse((t, _, _)), ev }) = self.queue.pop() else { return false };
        self.handled += 1;
        self.work += 1;
        self.now = self.now.max(t);
        self.api.now_ms = self.now;
        self.handle(ev);
        if self.samples.last().is_none_or(|s| s.t / 1000 < self.now / 1000) {
            self.take_sample();
        }
        true
    }

    fn take_sample(&mut self) {
        let mut s = Sample { t: self.now, ..Default::default() };
        for sl in self.api.slices() {
            s.slices += 1;
            for e in sl.endpoints.iter().flatten() {
                s.endpoints += 1;
                if e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                    s.ready_endpoints += 1;
                }
            }
        }
        s.api_writes = self.api.writes.values().sum();
        s.slice_watch_bytes = self.api.watch_bytes.get("EndpointSlice").copied().unwrap_or(0);
        s.endpoints_watch_bytes = self.api.watch_bytes.get("Endpoints").copied().unwrap_or(0);
        self.samples.push(s);
    }

    /// Run every event up to and including time `t`, then set the clock to `t`.
    pub fn run_until(&mut self, t: u64) {
        self.run_until_work(t, u64::MAX);
    }

    /// Run until time `t`, or stop sooner, at the end of the first instant by which `work` has
    /// reached `work` (every event of that instant handled). Returns whether it stopped sooner.
    pub fn run_until_work(&mut self, t: u64, work: u64) -> bool {
        while let Some(next) = self.next_time() {
            if next > t {
                break;
            }
            if self.work >= work && next > self.now {
                return true;
            }
            self.step();
        }
        self.now = self.now.max(t);
        false
    }

    /// Apply an action now (it forks the future from here).
    pub fn act(&mut self, action: Action) {
        let now = self.now;
        self.schedule(now, Ev::Action(Box::new(action)));
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Action(a) => world::apply_action(self, *a),
            Ev::WorkloadSync(w) => world::workload_sync(self, &w),
            Ev::PodScheduled(p) => world::pod_scheduled(self, &p),
            Ev::PodStarted(p) => world::pod_started(self, &p),
            Ev::Probe(p) => world::probe(self, &p),
            Ev::Flap(p, fail) => world::flap(self, &p, fail),
            Ev::PodCrash(p) => world::pod_crash(self, &p),
            Ev::PodGone(p) => world::pod_gone(self, &p),
            Ev::NodeGrace(n) => world::node_grace(self, &n),
            Ev::NodeEvict(n) => world::node_evict(self, &n),
            Ev::Deliver(w, e) => self.deliver(w, e),
            Ev::ControllerSync(s) => self.controller_sync(&s),
            Ev::ControllerWrites(w) => {
                let (s, calls, max) = *w;
                self.controller_writes(&s, calls, max)
            }
            Ev::ProxySync(n) => self.proxy_sync(&n),
            Ev::TrafficTick => traffic::tick(self),
            Ev::Write(w) => {
                let (verb, obj, actor, cause) = *w;
                self.write(verb, obj, actor, &cause);
            }
        }
    }

    /// Send a write's watch event to every watcher, each after the watch latency.
    pub(crate) fn fan_out(&mut self, ev: WatchEvent) {
        let kind = ev.obj.kind();
        let mut watchers = vec![Watcher::Controller];
        if matches!(kind, Kind::Service | Kind::EndpointSlice) {
            watchers.extend(self.proxies.keys().cloned().map(Watcher::Proxy));
        }
        // The legacy Endpoints object is counted as if every node's kube-proxy watched it, as it did
        // before EndpointSlices: the cost the page compares.
        let audience = if kind == Kind::Endpoints { self.proxies.len().max(watchers.len()) } else { watchers.len() };
        self.api.account_watch(&ev, audience as u64);
        let at = self.now + self.config.watch_latency_ms;
        for w in watchers {
            self.schedule(at, Ev::Deliver(w, ev.clone()));
        }
    }

    /// Write to the API server and fan the event out; failures are logged, never panics.
    /// Write an object through the API server; the stored object (shared, not copied) when it worked.
    pub(crate) fn write(&mut self, verb: &str, obj: Obj, actor: &str, cause: &str) -> Option<Arc<Obj>> {
        let what = format!("{verb} {:?} {}", obj.kind(), obj.key());
        let r = match verb {
            "create" => self.api.create(obj),
            "update" => self.api.update(obj),
            _ => {
                let k = obj.kind();
                let key = obj.key();
                self.api.delete(k, &key)
            }
        };
        match r {
            Ok(ev) => {
                let stored = ev.obj.clone();
                if ev.type_ == api::WatchType::Deleted && stored.kind() == api::Kind::Pod {
                    let now = self.now;
                    while self.gone.front().is_some_and(|(t, _)| t + view::FLASH_MS < now) {
                        self.gone.pop_front();
                    }
                    self.gone.push_back((now, stored.clone()));
                }
                let what = if verb == "create" { format!("create {:?} {}", stored.kind(), stored.key()) } else { what };
                self.log(actor, what, cause.to_string());
                self.fan_out(ev);
                Some(stored)
            }
            Err(e) => {
                self.log(actor, format!("{what} failed: {e}"), cause.to_string());
                None
            }
        }
    }

    fn deliver(&mut self, w: Watcher, ev: WatchEvent) {
        match w {
            Watcher::Controller => {
                if !self.controller.informer.connected {
                    return;
                }
                let old = self.controller.informer.get(ev.obj.kind(), &ev.obj.key()).cloned();
                self.controller.informer.apply(&ev);
                self.controller_handle(&ev, old.as_deref());
            }
            Watcher::Proxy(node) => {
                let Some(p) = self.proxies.get_mut(&node) else { return };
                if !p.informer.connected {
                    return;
                }
                p.informer.apply(&ev);
                traffic::feed(&mut p.kube_proxies, &ev, &mut self.prepared);
                self.proxy_changed(&node);
            }
        }
    }

    /// Relist a proxy's informer from the API server (after its watch is restored).
    pub(crate) fn relist_proxy(&mut self, node: &str) {
        let objs: Vec<Arc<Obj>> =
            self.api.list_shared(Kind::Service).chain(self.api.list_shared(Kind::EndpointSlice)).cloned().collect();
        let mut kps = self.new_kube_proxies(node);
        traffic::relist(&mut kps, &objs);
        if let Some(p) = self.proxies.get_mut(node) {
            p.informer.replace(objs);
            p.informer.connected = true;
            p.kube_proxies = kps;
        }
        self.proxy_changed(node);
    }

    /// A node's kube-proxies (one per family of the cluster), empty, configured for the node.
    fn new_kube_proxies(&self, node: &str) -> Vec<crate::proxy::node::KubeProxy> {
        use crate::proxy::node::{KubeProxy, Mode, ProxyConfig};
        let Some(p) = self.proxies.get(node) else { return Vec::new() };
        let mode = Mode::parse(&self.config.proxy_mode).unwrap_or(Mode::Iptables);
        let mut fams = vec![crate::IpFamily::V4];
        if self.world.dual_stack {
            fams.push(crate::IpFamily::V6);
        }
        let seed = crate::rng::Rng::from_str_seed(node).next_u64() ^ self.seed;
        fams.into_iter()
            .map(|fam| {
                let v6 = fam == crate::IpFamily::V6;
                let mut c = ProxyConfig::new(node, fam);
                c.node_zone = Some(p.zone.clone());
                c.mode = mode;
                c.min_sync_period_ms = self.config.min_sync_period_ms;
                if !v6 {
                    c.net.node_ips = vec![world::node_ip(p.index)];
                }
                c.net.local_detector = crate::proxy::Cidr::parse(&world::pod_cidr(p.index, v6)).ok();
                let mut kp = KubeProxy::new(c, seed ^ v6 as u64);
                kp.share_merges(self.merges.clone());
                kp
            })
            .collect()
    }

    // ---- the EndpointSlice controller ----

    fn enqueue(&mut self, svc: &str, delay: u64) {
        let due = self.now + delay;
        match self.controller.queue.get(svc) {
            Some(&d) if d <= due => {}
            _ => {
                self.controller.queue.insert(svc.to_string(), due);
                self.schedule(due, Ev::ControllerSync(svc.to_string()));
            }
        }
    }

    fn controller_handle(&mut self, ev: &WatchEvent, old: Option<&Obj>) {
        match &*ev.obj {
            Obj::Service(s) => {
                let key = api::key_of(&s.metadata);
                self.enqueue(&key, 0);
            }
            Obj::Pod(p) => {
                let labels = p.metadata.labels.clone().unwrap_or_default();
                let old_labels = match old {
                    Some(Obj::Pod(o)) => o.metadata.labels.clone().unwrap_or_default(),
                    _ => labels.clone(),
                };
                // §2: an update counts only if it changed what the controllers read; a label change
                // alone enqueues just the Services matched before or after, not both.
                let (counts, only_difference) = match (ev.type_, old) {
                    (api::WatchType::Modified, Some(Obj::Pod(o))) => {
                        let changed = crate::controller::pods::endpoints_fields_changed(o, p);
                        (changed || labels != old_labels, !changed)
                    }
                    _ => (true, false),
                };
                if !counts {
                    return;
                }
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                let delay = self.config.batch_period_ms;
                let targets: Vec<String> = self
                    .controller
                    .informer
                    .list(Kind::Service)
                    .filter_map(|o| if let Obj::Service(s) = o { Some(s) } else { None })
                    .filter(|s| s.metadata.namespace.as_deref().unwrap_or("") == ns)
                    .filter(|s| {
                        s.spec.as_ref().and_then(|sp| sp.selector.as_ref()).is_some_and(|sel| {
                            let (now, before) = (
                                crate::controller::pods::selector_matches(sel, Some(&labels)),
                                crate::controller::pods::selector_matches(sel, Some(&old_labels)),
                            );
                            !sel.is_empty() && if only_difference { now != before } else { now || before }
                        })
                    })
                    .map(|s| api::key_of(&s.metadata))
                    .collect();
                for t in targets {
                    self.enqueue(&t, delay);
                }
            }
            Obj::Node(_) => {
                let nodes: Vec<_> = self
                    .controller
                    .informer
                    .list(Kind::Node)
                    .filter_map(|o| if let Obj::Node(n) = o { Some(n.clone()) } else { None })
                    .collect();
                self.controller.reconciler.set_nodes(&nodes);
                let overloaded =
                    self.controller.reconciler.topology.as_ref().map(|t| t.overloaded_services()).unwrap_or_default();
                for s in overloaded {
                    self.enqueue(&s, 0);
                }
                // Zones are part of every endpoint: re-sync the Services with pods on this node.
                let svcs: Vec<String> = self.api.services().map(|s| api::key_of(&s.metadata)).collect();
                for s in svcs {
                    self.enqueue(&s, self.config.batch_period_ms);
                }
            }
            Obj::EndpointSlice(s) => {
                let labels = s.metadata.labels.clone().unwrap_or_default();
                let managed = labels.get(crate::controller::LABEL_MANAGED_BY).map(String::as_str)
                    == Some(crate::controller::CONTROLLER_NAME);
                let Some(svc) = labels.get(crate::controller::LABEL_SERVICE_NAME) else { return };
                let key = format!("{}/{svc}", s.metadata.namespace.as_deref().unwrap_or(""));
                let requeue = match ev.type_ {
                    api::WatchType::Deleted => {
                        managed && self.controller.tracker.deleted(&key, s.metadata.name.as_deref().unwrap_or(""))
                    }
                    _ => managed && self.controller.tracker.newer_or_untracked(&key, s),
                };
                if requeue {
                    let d = self.config.batch_period_ms.max(1000);
                    self.enqueue(&key, d);
                }
            }
            Obj::Endpoints(e) => {
                // The mirroring controller watches Endpoints of selector-less Services; the Endpoints
                // controller only cares when its object is deleted under it.
                let key = api::key_of(&e.metadata);
                let selectorless = matches!(
                    self.controller.informer.get(Kind::Service, &key).map(|o| &**o),
                    Some(Obj::Service(s)) if s.spec.as_ref().and_then(|sp| sp.selector.as_ref()).is_none()
                );
                if selectorless || ev.type_ == api::WatchType::Deleted {
                    self.enqueue(&key, 0);
                }
            }
        }
    }

    fn controller_sync(&mut self, key: &str) {
        match self.controller.queue.get(key) {
            Some(&due) if due <= self.now => {
                self.controller.queue.remove(key);
            }
            _ => return, // superseded by a later or earlier entry
        }
        if self.controller.busy.contains(key) {
            // The previous sync's writes are still in flight: try again right after them.
            let at = self.now + self.config.api_latency_ms.max(1);
            self.controller.queue.insert(key.to_string(), at);
            self.schedule(at, Ev::ControllerSync(key.to_string()));
            return;
        }
        let inf = &self.controller.informer;
        let svc = match inf.get(Kind::Service, key).map(|o| &**o) {
            Some(Obj::Service(s)) => s.clone(),
            _ => {
                self.controller.tracker.by_service.remove(key);
                if let Some(t) = self.controller.reconciler.topology.as_mut() {
                    t.forget_service(key);
                }
                return;
            }
        };
        let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            self.mirroring_sync(key, &svc);
            return;
        };
        let o = match self.memo.lookup(self.handled, self.now, self.hash, key, &self.controller.informer) {
            Some(o) => {
                #[cfg(debug_assertions)]
                {
                    // Debug builds check every outcome taken from the memo against the real thing.
                    let t0 = self.controller.reconciler.topology.clone();
                    let mut real = self.sync_outcome(key, &svc, selector);
                    if let Some(Some(r)) = real.result.as_mut() {
                        r.metrics.clear(); // not kept: the simulation does not read them
                    }
                    self.controller.reconciler.topology = t0;
                    if real != o {
                        self.violations.push(format!("t={} the replay memo's sync of {key} differs from the sync itself", self.now));
                    }
                }
                o
            }
            None => {
                let o = self.sync_outcome(key, &svc, selector);
                if self.memo.enabled() {
                    self.memo.record(self.handled, self.now, self.hash, key, &self.controller.informer, &o);
                }
                o
            }
        };
        if let Some(t) = o.topology {
            self.controller.reconciler.topology = t;
        }
        let walked = o.walked;
        let endpoints_write = o.endpoints.map(|(verb, obj, cause)| Ev::Write(Box::new((verb, Obj::Endpoints(obj), "endpoints-controller", cause))));
        let result = o.result;
        // A replay takes a memoized sync's outcome in about what a few ordinary events cost.
        self.work += if self.memo.enabled() { Self::MEMO_SYNC_WORK } else { walked / Self::PODS_PER_WORK };
        // The Endpoints write first, then the slices' (the order the two controllers' work is queued in).
        if let Some(ev) = endpoints_write {
            let at = self.now + self.config.api_latency_ms;
            self.schedule(at, ev);
        }
        let Some(result) = result else { return };
        let max = self.config.max_endpoints_per_slice;
        self.controller.syncs += 1;
        let Some(result) = result else {
            self.log("endpointslice-controller", format!("sync {key} failed"), "stale informer cache: retry in 1s".into());
            self.enqueue(key, 1000);
            return;
        };
        for e in &result.events {
            self.log("endpointslice-controller", format!("event on {key}: {}", e.line()), "topology hints".into());
        }
        if let Some(err) = result.error() {
            self.log("endpointslice-controller", format!("sync {key} returned an error"), err);
            self.enqueue(key, 1000);
        }
        if result.calls.is_empty() {
            return;
        }
        self.controller.busy.insert(key.to_string());
        let at = self.now + self.config.api_latency_ms;
        self.schedule(at, Ev::ControllerWrites(Box::new((key.to_string(), result.calls, max))));
    }

    /// What a sync of a Service with a selector decides, computed: both controllers' writes.
    fn sync_outcome(&mut self, key: &str, svc: &k8s_openapi::api::core::v1::Service, selector: &std::collections::BTreeMap<String, String>) -> memo::SyncOutcome {
        // The Endpoints controller and the EndpointSlice controller select the same Pods from the
        // same informer: selected once, for both.
        let inf = &self.controller.informer;
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let pods = crate::controller::selected_pods(
            svc,
            selector,
            inf.list(Kind::Pod).filter_map(|o| if let Obj::Pod(p) = o { Some(p) } else { None }),
        );
        let endpoints_write = Self::endpoints_write(inf, key, svc, &pods);
        let walked = pods.len() as u64;
        let mut topology = None;
        // `None` when the Service gets no slices (ExternalName); `Some(None)` when the cache is stale.
        let result = crate::controller::sync_selector(svc).map(|_| {
            let nodes: Vec<&k8s_openapi::api::core::v1::Node> =
                inf.list(Kind::Node).filter_map(|o| if let Obj::Node(n) = o { Some(n) } else { None }).collect();
            let name = svc.metadata.name.clone().unwrap_or_default();
            let slices: Vec<&EndpointSlice> = inf
                .list(Kind::EndpointSlice)
                .filter_map(|o| if let Obj::EndpointSlice(s) = o { Some(s) } else { None })
                .filter(|s| s.metadata.namespace.as_deref().unwrap_or("") == ns && s.metadata.deletion_timestamp.is_none())
                .filter(|s| {
                    let l = s.metadata.labels.as_ref();
                    l.and_then(|l| l.get(crate::controller::LABEL_SERVICE_NAME)) == Some(&name)
                        && l.and_then(|l| l.get(crate::controller::LABEL_MANAGED_BY)).map(String::as_str)
                            == Some(crate::controller::CONTROLLER_NAME)
                })
                .collect();
            let stale = self.controller.tracker.stale(key, &slices);
            let max = self.config.max_endpoints_per_slice;
            if stale {
                None
            } else {
                let rec = &mut self.controller.reconciler;
                rec.options.max_endpoints_per_slice = max;
                let before = rec.topology.clone();
                let r = rec.reconcile_slices(svc, &pods, &nodes, slices.iter().copied(), None);
                if rec.topology != before {
                    topology = Some(rec.topology.clone());
                }
                Some(r)
            }
        });
        memo::SyncOutcome { walked, endpoints: endpoints_write, result, topology }
    }

    /// The legacy Endpoints controller's sync of a Service with a selector, given the Pods it
    /// selects: the write to make, if any.
    fn endpoints_write(
        inf: &Informer,
        key: &str,
        svc: &k8s_openapi::api::core::v1::Service,
        pods: &[&k8s_openapi::api::core::v1::Pod],
    ) -> Option<(&'static str, crate::controller::endpoints::SharedEndpoints, String)> {
        use crate::controller::endpoints;
        let current = match inf.get(Kind::Endpoints, key).map(|o| &**o) {
            Some(Obj::Endpoints(e)) => Some(e),
            _ => None,
        };
        let (verb, obj) = match endpoints::sync_shared(Some(svc), pods, current) {
            endpoints::EndpointsWrite::Create(e) => ("create", e),
            endpoints::EndpointsWrite::Update(e) => ("update", e),
            _ => return None,
        };
        let n = obj.address_count();
        let truncated = obj.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(crate::controller::ANNOTATION_OVER_CAPACITY));
        let cause = format!("{n} addresses{}", if truncated { ", truncated to 1000 (over capacity)" } else { "" });
        Some((verb, obj, cause))
    }

    /// The mirroring controller, for a Service without a selector (its Endpoints are the user's).
    fn mirroring_sync(&mut self, key: &str, svc: &k8s_openapi::api::core::v1::Service) {
        use crate::controller::mirroring;
        let inf = &self.controller.informer;
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let current_obj = inf.get(Kind::Endpoints, key).cloned();
        let current = match current_obj.as_deref() {
            Some(Obj::Endpoints(e)) => Some(e),
            _ => None,
        };
        let at = self.now + self.config.api_latency_ms;
        let Some(ep) = current else { return };
        let existing: Vec<EndpointSlice> = inf
            .list(Kind::EndpointSlice)
            .filter_map(|o| if let Obj::EndpointSlice(s) = o { Some(s) } else { None })
            .filter(|s| s.metadata.namespace.as_deref().unwrap_or("") == ns)
            .filter(|s| {
                let l = s.metadata.labels.as_ref();
                l.and_then(|l| l.get(crate::controller::LABEL_SERVICE_NAME)) == Some(&name)
                    && l.and_then(|l| l.get(crate::controller::LABEL_MANAGED_BY)).map(String::as_str)
                        == Some(crate::controller::MIRRORING_CONTROLLER_NAME)
            })
            .cloned()
            .collect();
        let r = mirroring::sync(Some(svc), Some(&ep.to_endpoints()), &existing, mirroring::DEFAULT_MAX_PER_SUBSET);
        for c in r.calls {
            let verb = match c.verb {
                crate::controller::reconciler::Verb::Create => "create",
                crate::controller::reconciler::Verb::Update => "update",
                crate::controller::reconciler::Verb::Delete => "delete",
            };
            self.schedule(at, Ev::Write(Box::new((verb, Obj::EndpointSlice(c.slice), "endpointslicemirroring-controller", c.cause.describe()))));
        }
    }

    fn controller_writes(&mut self, key: &str, calls: Vec<ApiCall>, max: usize) {
        self.controller.busy.remove(key);
        for c in calls {
            let cause = c.cause.describe();
            let n = crate::controller::plan::eps(&c.slice).len();
            if c.verb != crate::controller::reconciler::Verb::Delete && n > max.max(1) && n > 1000 {
                self.violations.push(format!("t={} slice of {key} written with {n} endpoints (max {max})", self.now));
            }
            let verb = match c.verb {
                crate::controller::reconciler::Verb::Create => "create",
                crate::controller::reconciler::Verb::Update => "update",
                crate::controller::reconciler::Verb::Delete => "delete",
            };
            let slice_name = c.slice.metadata.name.clone().unwrap_or_default();
            let stored = self.write(verb, Obj::EndpointSlice(c.slice), "endpointslice-controller", &format!("{cause} ({n} endpoints)"));
            match (verb, stored) {
                ("delete", Some(_)) => self.controller.tracker.record(key, &slice_name, None),
                (_, Some(o)) => {
                    if let Obj::EndpointSlice(s) = &*o {
                        let name = s.metadata.name.clone().unwrap_or_default();
                        self.controller.tracker.record(key, &name, s.metadata.generation);
                    }
                }
                _ => {}
            }
        }
    }

    // ---- kube-proxy ----

    fn proxy_changed(&mut self, node: &str) {
        let min = self.config.min_sync_period_ms;
        let now = self.now;
        let Some(p) = self.proxies.get_mut(node) else { return };
        if p.sync_scheduled {
            return;
        }
        p.sync_scheduled = true;
        let at = match p.last_sync_start {
            Some(last) => now.max(last + min),
            None => now,
        };
        self.schedule(at, Ev::ProxySync(node.to_string()));
    }

    fn proxy_sync(&mut self, node: &str) {
        let now = self.now;
        let Some(p) = self.proxies.get_mut(node) else { return };
        p.sync_scheduled = false;
        p.last_sync_start = Some(now);
        p.synced_at = Some(now);
        p.syncs += 1;
        for kp in &mut p.kube_proxies {
            kp.sync(now);
        }
        let mut view: VecMap<String, Vec<Arc<Obj>>> = VecMap::new();
        for o in p.informer.list_shared(Kind::EndpointSlice) {
            if let Obj::EndpointSlice(s) = &**o {
                if let Some(svc) = s.metadata.labels.as_ref().and_then(|l| l.get(crate::controller::LABEL_SERVICE_NAME)) {
                    view.entry(format!("{}/{svc}", s.metadata.namespace.as_deref().unwrap_or(""))).or_default().push(o.clone());
                }
            }
        }
        let same = view.len() == p.programmed.len()
            && view.iter().zip(p.programmed.iter()).all(|((ka, va), (kb, vb))| {
                ka == kb && va.len() == vb.len() && va.iter().zip(vb.iter()).all(|(x, y)| Arc::ptr_eq(x, y))
            });
        p.programmed = view;
        if !same {
            let n = p.programmed_endpoints();
            self.log(&format!("kube-proxy/{node}"), format!("sync: {n} endpoints programmed"), "slice or Service change".into());
        }
    }

    // ---- views ----

    /// The controller is idle and every write has reached its informer.
    pub fn controller_settled(&self) -> bool {
        self.controller.queue.is_empty()
            && self.controller.busy.is_empty()
            && !self.queue.iter().any(|p| matches!(p.ev, Ev::Deliver(Watcher::Controller, _) | Ev::ControllerWrites(..)))
    }

    /// No propagation is pending anywhere.
    pub fn quiescent(&self) -> bool {
        !self.queue.iter().any(|p| p.ev.is_propagation())
    }

    /// A one-screen summary: slices, API writes by kind, pods.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let slices: Vec<&EndpointSlice> = self.api.slices().collect();
        let eps: usize = slices.iter().map(|s| crate::controller::plan::eps(s).len()).sum();
        out.push_str(&format!("time: {}\n", fmt_ms(self.now)));
        out.push_str(&format!("pods: {}\n", self.api.pods().count()));
        out.push_str(&format!("endpointslices: {} ({} endpoints)\n", slices.len(), eps));
        for (k, v) in &self.api.writes {
            out.push_str(&format!("api writes: {k}: {v}\n"));
        }
        out.push_str(&format!("controller syncs: {}\n", self.controller.syncs));
        let proxy_syncs: u64 = self.proxies.values().map(|p| p.syncs).sum();
        out.push_str(&format!("kube-proxy syncs: {proxy_syncs}\n"));
        let t = &self.traffic.stats;
        out.push_str(&format!("connections: {}\n", t.total));
        for o in traffic::ConnOutcome::ALL {
            out.push_str(&format!("connections {}: {}\n", o.name(), t.by_outcome[o.index()]));
        }
        out.push_str(&format!("log entries: {}\n", self.log.len()));
        out
    }

    /// Checks that must hold at any time: no violations recorded at write time, no slice over the
    /// API's 1000 endpoints, and (when the controller has settled) every matching Pod with an IP of a
    /// family is in exactly one slice of that family.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let Some(v) = self.violations.first() {
            return Err(v.clone());
        }
        traffic::check(self)?;
        for s in self.api.slices() {
            if crate::controller::plan::eps(s).len() > 1000 {
                return Err(format!("slice {} holds more than 1000 endpoints", api::key_of(&s.metadata)));
            }
        }
        if self.controller_settled() && self.controller.informer.connected {
            world::check_settled(self)?;
        }
        Ok(())
    }
}

/// "1m30.250s"-style time.
pub fn fmt_ms(ms: u64) -> String {
    let s = ms / 1000;
    let frac = ms % 1000;
    if s >= 60 {
        format!("{}m{:02}.{:03}s", s / 60, s % 60, frac)
    } else {
        format!("{s}.{frac:03}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pending_events_stay_small() {
        // Tens of thousands are pending in a large cluster, each as large as the largest variant,
        // and every timeline snapshot copies them: big payloads are boxed.
        assert!(std::mem::size_of::<super::Ev>() <= 40, "{} bytes", std::mem::size_of::<super::Ev>());
        // The heap entry is the event and its key, nothing more.
        assert!(std::mem::size_of::<super::Pending>() <= 64, "{} bytes", std::mem::size_of::<super::Pending>());
    }
}
