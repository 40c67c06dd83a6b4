//! The replay memo: what each controller sync of a timeline's run decided, kept so that a replay of
//! the same stretch (a seek restores a snapshot and runs on from it) takes the decision instead of
//! computing it again. A sync of both controllers walks every selected Pod (about 1 ms at 1,000 Pods)
//! and is about half of a replay's time; taking its outcome from here costs a few microseconds.
//!
//! Workload syncs (the Deployment controller's plan: Pods to create and to delete) are kept the
//! same way.
//!
//! Only a timeline records and reads it; a bare `Sim` runs every sync. An entry is keyed by the
//! event's number and holds the time, the Service and the trace hash at that moment: the run is
//! deterministic, so the same number, time and trace hash mean the same history and the same state,
//! and so the same outcome. An action taken in the past forks the run: entries from its time on are
//! dropped (and a stale one could never match its trace hash anyway). In debug builds every hit is
//! also computed and compared, and a difference is recorded as a violation, which the tests fail on.
//!
//! The outcome is kept small: an Endpoints object or EndpointSlice written is stored as runs of the
//! addresses or endpoints of the object it replaces (the one in the controller's informer, the same
//! object again at replay) plus the few new ones, so an hour at 1,000 Pods keeps ~20 MB. The memo has
//! a budget; past it, every other entry is dropped (those syncs are computed again when replayed).

use super::api::{Kind, Obj};
use super::Informer;
use crate::controller::endpoints::{SharedEndpoints, SharedSubset};
use crate::controller::plan::{Cause, Event};
use crate::controller::reconciler::{ApiCall, ReconcileResult, Verb};
use crate::controller::topology::TopologyCache;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use crate::vecmap::VecMap;
use std::sync::{Arc, Mutex};

/// What one controller sync of a Service with a selector decided.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SyncOutcome {
    /// Pods the sync walked (for `Sim::work`).
    pub walked: u64,
    /// The legacy Endpoints controller's write: (verb, object, cause).
    pub endpoints: Option<(&'static str, SharedEndpoints, String)>,
    /// `None` when the Service gets no slices; `Some(None)` when the cache was stale.
    pub result: Option<Option<ReconcileResult>>,
    /// The reconciler's topology cache after the sync, when the sync changed it.
    pub topology: Option<Option<TopologyCache>>,
}

/// A piece of a list: a run of the replaced object's items, or a new item.
#[derive(Clone)]
#[cfg_attr(test, derive(Debug))]
enum Piece<T> {
    Base(u32, u32),
    New(T),
}

fn decode<T: Clone>(pieces: &[Piece<T>], base: &[&T]) -> Option<Vec<T>> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Base(start, len) => {
                let (s, l) = (*start as usize, *len as usize);
                out.extend(base.get(s..s + l)?.iter().map(|x| (*x).clone()));
            }
            Piece::New(x) => out.push(x.clone()),
        }
    }
    Some(out)
}

/// `new` as pieces over `base`: `find` gives the index in `base` of an item equal to one of `new`.
fn encode<T: Clone>(new: &[T], base: &[&T], same: impl Fn(&T, &T) -> bool, find: impl Fn(&T) -> Option<usize>) -> Vec<Piece<T>> {
    let mut out: Vec<Piece<T>> = Vec::new();
    for x in new {
        // The next item of the current run, else wherever it is.
        let next = match out.last() {
            Some(Piece::Base(s, l)) => Some((*s + *l) as usize),
            _ => None,
        };
        let at = match next {
            Some(i) if base.get(i).is_some_and(|b| same(b, x)) => Some(i),
            _ => find(x).filter(|&i| base.get(i).is_some_and(|b| same(b, x))),
        };
        match (at, out.last_mut()) {
            (Some(i), Some(Piece::Base(s, l))) if (*s + *l) as usize == i => *l += 1,
            (Some(i), _) => out.push(Piece::Base(i as u32, 1)),
            (None, _) => out.push(Piece::New(x.clone())),
        }
    }
    out
}

fn new_count<T>(p: &[Piece<T>]) -> usize {
    p.iter().filter(|p| matches!(p, Piece::New(_))).count()
}

/// An Endpoints object written, over the one in the informer.
#[derive(Clone)]
struct EndpointsEntry {
    verb: &'static str,
    /// `None`: the replaced object's.
    metadata: Option<ObjectMeta>,
    subsets: Option<Vec<SubsetEntry>>,
    cause: String,
}

type AddrPieces = Option<Vec<Piece<Arc<EndpointAddress>>>>;

#[derive(Clone)]
struct SubsetEntry {
    addresses: AddrPieces,
    not_ready_addresses: AddrPieces,
    ports: Option<Vec<EndpointPort>>,
}

fn endpoints_obj<'a>(inf: &'a Informer, key: &str) -> Option<&'a SharedEndpoints> {
    match inf.get(Kind::Endpoints, key).map(|o| &**o) {
        Some(Obj::Endpoints(e)) => Some(e),
        _ => None,
    }
}

/// Every address of an Endpoints object, subset by subset, ready then not ready.
fn endpoints_base(e: Option<&SharedEndpoints>) -> Vec<&Arc<EndpointAddress>> {
    e.iter()
        .flat_map(|e| e.subsets.iter().flatten())
        .flat_map(|s| s.addresses.iter().flatten().chain(s.not_ready_addresses.iter().flatten()))
        .collect()
}

/// A slice written, over the slice of the same name in the informer.
#[derive(Clone)]
struct SliceEntry {
    /// The informer key of the slice it replaces (its own name), if it has a name.
    base: Option<String>,
    /// `None`: the replaced slice's.
    metadata: Option<ObjectMeta>,
    address_type: String,
    /// `None`: the replaced slice's.
    ports: Option<Option<Vec<k8s_openapi::api::discovery::v1::EndpointPort>>>,
    endpoints: Option<Vec<Piece<Endpoint>>>,
}

/// An endpoint's first address ("" if none).
fn first(ep: &Endpoint) -> &str {
    ep.addresses.first().map_or("", String::as_str)
}

fn slice_obj<'a>(inf: &'a Informer, key: Option<&str>) -> Option<&'a EndpointSlice> {
    match inf.get(Kind::EndpointSlice, key?).map(|o| &**o) {
        Some(Obj::EndpointSlice(s)) => Some(s),
        _ => None,
    }
}

#[derive(Clone)]
struct CallEntry {
    verb: Verb,
    cause: Cause,
    slice: SliceEntry,
}

#[derive(Clone)]
struct ResultEntry {
    calls: Vec<CallEntry>,
    events: Vec<Event>,
    errors: Vec<String>,
}

#[derive(Clone)]
struct Entry {
    now: u64,
    hash: u64,
    key: String,
    walked: u64,
    endpoints: Option<EndpointsEntry>,
    result: Option<Option<ResultEntry>>,
    topology: Option<Option<TopologyCache>>,
    bytes: usize,
}

#[derive(Default)]
struct Memo {
    syncs: VecMap<u64, Entry>,
    /// What workload syncs decided, the same way.
    plans: VecMap<u64, PlanEntry>,
    bytes: usize,
    /// Outcomes taken from the memo so far.
    hits: u64,
}

impl Memo {
    fn recount(&mut self) {
        self.bytes = self.syncs.values().map(|e| e.bytes).sum::<usize>() + self.plans.values().map(|e| e.bytes).sum::<usize>();
    }
}

/// A workload sync's plan, with what identifies the moment it was made.
#[derive(Clone)]
struct PlanEntry {
    now: u64,
    hash: u64,
    workload: String,
    plan: WorkloadPlan,
    bytes: usize,
}

/// What one workload sync decided: Pods to create (and why), Pods to delete gracefully (and why).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct WorkloadPlan {
    pub create: usize,
    pub create_cause: String,
    pub delete: Vec<String>,
    pub delete_cause: String,
}

/// The memo a timeline's copies of the simulation share (none for a bare `Sim`).
#[derive(Clone, Default)]
pub(crate) struct MemoHandle(Option<Arc<Mutex<Memo>>>);

impl std::fmt::Debug for MemoHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (syncs, bytes, hits) = self.stats();
        write!(f, "MemoHandle {{ enabled: {}, syncs: {syncs}, bytes: {bytes}, hits: {hits} }}", self.enabled())
    }
}

/// Bytes the memo may hold: an hour at 1,000 Pods keeps ~20 MB.
const BUDGET: usize = 64 << 20;

/// Rough bytes of an item kept, for the budget.
const META_BYTES: usize = 1_000;
const ENDPOINT_BYTES: usize = 400;
const PIECE_BYTES: usize = 24;

impl MemoHandle {
    pub fn new() -> Self {
        MemoHandle(Some(Arc::default()))
    }

    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Drop what was decided at `at` or later (the run forks there).
    pub fn forget_from(&self, at: u64) {
        if let Some(m) = &self.0 {
            if let Ok(mut m) = m.lock() {
                                m.syncs.retain(|_, e| e.now < at);
                m.plans.retain(|_, e| e.now < at);
                m.recount();
            }
        }
    }

    /// Entries held, their rough bytes, and the outcomes taken so far.
    pub fn stats(&self) -> (usize, usize, u64) {
        self.0.as_ref().and_then(|m| m.lock().ok().map(|m| (m.syncs.len(), m.bytes, m.hits))).unwrap_or((0, 0, 0))
    }

    /// The outcome recorded for this sync, rebuilt over the informer's objects, if the run is where
    /// it was when it was recorded.
    pub fn lookup(&self, handled: u64, now: u64, hash: u64, key: &str, inf: &Informer) -> Option<SyncOutcome> {
        let mut m = self.0.as_ref()?.lock().ok()?;
        let e = m.syncs.get(&handled)?;
        if e.now != now || e.hash != hash || e.key != key {
            return None;
        }
        let endpoints = match &e.endpoints {
            None => None,
            Some(w) => {
                let current = endpoints_obj(inf, key);
                let base = endpoints_base(current);
                let list = |p: &AddrPieces| -> Option<Option<Vec<Arc<EndpointAddress>>>> {
                    match p {
                        None => Some(None),
                        Some(p) => decode(p, &base).map(Some),
                    }
                };
                let mut subsets = None;
                if let Some(ss) = &w.subsets {
                    let mut v = Vec::with_capacity(ss.len());
                    for s in ss {
                        v.push(SharedSubset {
                            addresses: list(&s.addresses)?,
                            not_ready_addresses: list(&s.not_ready_addresses)?,
                            ports: s.ports.clone(),
                        });
                    }
                    subsets = Some(v);
                }
                Some((
                    w.verb,
                    SharedEndpoints {
                        metadata: match &w.metadata {
                            Some(m) => m.clone(),
                            None => current?.metadata.clone(),
                        },
                        subsets,
                    },
                    w.cause.clone(),
                ))
            }
        };
        let result = match &e.result {
            None => None,
            Some(None) => Some(None),
            Some(Some(r)) => {
                let mut calls = Vec::with_capacity(r.calls.len());
                for c in &r.calls {
                    let s = &c.slice;
                    let old = slice_obj(inf, s.base.as_deref());
                    let base: Vec<&Endpoint> = old.iter().flat_map(|o| o.endpoints.iter().flatten()).collect();
                    let endpoints = match &s.endpoints {
                        None => None,
                        Some(p) => Some(decode(p, &base)?),
                    };
                    calls.push(ApiCall {
                        verb: c.verb,
                        cause: c.cause.clone(),
                        slice: EndpointSlice {
                            metadata: match &s.metadata {
                                Some(m) => m.clone(),
                                None => old?.metadata.clone(),
                            },
                            address_type: s.address_type.clone(),
                            ports: match &s.ports {
                                Some(p) => p.clone(),
                                None => old?.ports.clone(),
                            },
                            endpoints,
                        },
                    });
                }
                Some(Some(ReconcileResult { calls, events: r.events.clone(), errors: r.errors.clone(), metrics: Vec::new() }))
            }
        };
        let o = SyncOutcome { walked: e.walked, endpoints, result, topology: e.topology.clone() };
        m.hits += 1;
        Some(o)
    }

        /// The plan recorded for this workload sync, if the run is where it was when it was recorded.
    pub fn lookup_plan(&self, handled: u64, now: u64, hash: u64, workload: &str) -> Option<WorkloadPlan> {
        let mut m = self.0.as_ref()?.lock().ok()?;
        let e = m.plans.get(&handled)?;
        if e.now != now || e.hash != hash || e.workload != workload {
            return None;
        }
        let plan = e.plan.clone();
        m.hits += 1;
        Some(plan)
    }

    /// Keep what this workload sync decided.
    pub fn record_plan(&self, handled: u64, now: u64, hash: u64, workload: &str, plan: &WorkloadPlan) {
        let Some(m) = &self.0 else { return };
        let Ok(mut m) = m.lock() else { return };
        let bytes = 4 * PIECE_BYTES + plan.create_cause.len() + plan.delete_cause.len() + plan.delete.iter().map(|k| k.len() + PIECE_BYTES).sum::<usize>();
        let e = PlanEntry { now, hash, workload: workload.to_string(), plan: plan.clone(), bytes };
        if let Some(old) = m.plans.insert(handled, e) {
            m.bytes -= old.bytes;
        }
        m.bytes += bytes;
    }

    /// Keep what this sync decided (`inf` as it was when the sync ran).
    pub fn record(&self, handled: u64, now: u64, hash: u64, key: &str, inf: &Informer, o: &SyncOutcome) {
        let Some(m) = &self.0 else { return };
        let mut bytes = 8 * PIECE_BYTES;
        let endpoints = o.endpoints.as_ref().map(|(verb, obj, cause)| {
            let current = endpoints_obj(inf, key);
            let base = endpoints_base(current);
            // Each address's place in the old object, by pointer (sorted for binary search).
            let mut index: Vec<(*const EndpointAddress, usize)> = base.iter().enumerate().map(|(i, a)| (Arc::as_ptr(a), i)).collect();
            index.sort_unstable();
            let list = |v: &Option<Vec<Arc<EndpointAddress>>>| {
                v.as_ref().map(|v| encode(v, &base, Arc::ptr_eq, |a| index.binary_search_by_key(&Arc::as_ptr(a), |e| e.0).ok().map(|k| index[k].1)))
            };
            let subsets = obj.subsets.as_ref().map(|ss| {
                ss.iter()
                    .map(|s| SubsetEntry {
                        addresses: list(&s.addresses),
                        not_ready_addresses: list(&s.not_ready_addresses),
                        ports: s.ports.clone(),
                    })
                    .collect::<Vec<_>>()
            });
            for s in subsets.iter().flatten() {
                for p in [&s.addresses, &s.not_ready_addresses].into_iter().flatten() {
                    bytes += p.len() * PIECE_BYTES + new_count(p) * ENDPOINT_BYTES;
                }
            }
            let same_meta = current.is_some_and(|c| c.metadata == obj.metadata);
            if !same_meta {
                bytes += META_BYTES;
            }
            EndpointsEntry { verb, metadata: (!same_meta).then(|| obj.metadata.clone()), subsets, cause: cause.clone() }
        });
        let result = o.result.as_ref().map(|r| {
            r.as_ref().map(|r| {
                let calls = r
                    .calls
                    .iter()
                    .map(|c| {
                        let name = c.slice.metadata.name.as_deref().unwrap_or("");
                        let base_key = (!name.is_empty()).then(|| super::api::key_of(&c.slice.metadata));
                        let old = slice_obj(inf, base_key.as_deref());
                        let base: Vec<&Endpoint> = old.iter().flat_map(|o| o.endpoints.iter().flatten()).collect();
                        // The old endpoints by first address (sorted for binary search).
                        let mut index: Vec<(&str, usize)> = base.iter().enumerate().map(|(i, ep)| (first(ep), i)).collect();
                        index.sort_unstable();
                        let find = |ep: &Endpoint| {
                            let from = index.partition_point(|e| e.0 < first(ep));
                            index[from..].iter().take_while(|e| e.0 == first(ep)).map(|e| e.1).find(|&j| *base[j] == *ep)
                        };
                        let endpoints = c.slice.endpoints.as_ref().map(|v| encode(v, &base, |a, b| a == b, find));
                        if let Some(p) = &endpoints {
                            bytes += p.len() * PIECE_BYTES + new_count(p) * ENDPOINT_BYTES;
                        }
                        let same_meta = old.is_some_and(|o| o.metadata == c.slice.metadata);
                        let same_ports = old.is_some_and(|o| o.ports == c.slice.ports);
                        if !same_meta {
                            bytes += META_BYTES;
                        }
                        CallEntry {
                            verb: c.verb,
                            cause: c.cause.clone(),
                            slice: SliceEntry {
                                base: base_key,
                                metadata: (!same_meta).then(|| c.slice.metadata.clone()),
                                address_type: c.slice.address_type.clone(),
                                ports: (!same_ports).then(|| c.slice.ports.clone()),
                                endpoints,
                            },
                        }
                    })
                    .collect();
                ResultEntry { calls, events: r.events.clone(), errors: r.errors.clone() }
            })
        });
        if o.topology.is_some() {
            bytes += META_BYTES;
        }
        let e = Entry { now, hash, key: key.to_string(), walked: o.walked, endpoints, result, topology: o.topology.clone(), bytes };
        let Ok(mut m) = m.lock() else { return };
        if let Some(old) = m.syncs.insert(handled, e) {
            m.bytes -= old.bytes;
        }
        m.bytes += bytes;
        if m.bytes > BUDGET {
            // Every other entry goes: the ones left are still spread over the whole run.
            let mut keep = false;
                        m.syncs.retain(|_, _| {
                keep = !keep;
                keep
            });
            m.plans.retain(|_, _| {
                keep = !keep;
                keep
            });
            m.recount();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any list comes back exactly from its pieces over any base, with runs of the base's
        /// items (in or out of order, repeated or not) kept as runs, not copies.
        #[test]
        fn pieces_give_back_the_list(base in proptest::collection::vec(0u8..20, 0..40), new in proptest::collection::vec(0u8..30, 0..60)) {
            let base_refs: Vec<&u8> = base.iter().collect();
            let find = |x: &u8| base.iter().position(|b| b == x);
            let pieces = encode(&new, &base_refs, |a, b| a == b, find);
            prop_assert_eq!(decode(&pieces, &base_refs), Some(new.clone()));
            let fresh = new.iter().filter(|x| !base.contains(x)).count();
            prop_assert_eq!(new_count(&pieces), fresh, "only items missing from the base are kept");
        }
    }

    #[test]
    fn a_list_with_one_change_is_two_runs_and_the_change() {
        let base: Vec<u32> = (0..100).collect();
        let refs: Vec<&u32> = base.iter().collect();
        let mut new = base.clone();
        new[40] = 1_000;
        let p = encode(&new, &refs, |a, b| a == b, |x| base.iter().position(|b| b == x));
        assert!(matches!(p.as_slice(), [Piece::Base(0, 40), Piece::New(1_000), Piece::Base(41, 59)]), "{p:?}");
        assert_eq!(decode(&p, &refs[..50]), None, "a base shorter than the runs is refused");
    }
}
