//! The connection table (§10): the NAT decision is made on a connection's first packet and every later
//! packet follows it, so rule changes only affect new connections. When a UDP endpoint is removed,
//! kube-proxy clears its stale entries; TCP connections stay until they close.

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::policy::{DestKey, DestKind};
use super::{Endpoint, Protocol, ServicePortName};

/// A connection's 5-tuple, as the client sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiveTuple {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub protocol: Protocol,
}

/// What the table remembers about one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnEntry {
    pub backend: Arc<Endpoint>,
    pub spn: ServicePortName,
    pub via: DestKind,
    /// The IPVS virtual server it went through, in IPVS mode.
    pub virtual_server: Option<DestKey>,
    pub masquerade: bool,
    pub created_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ConnTable {
    entries: FxHashMap<FiveTuple, ConnEntry>,
}

impl ConnTable {
    pub fn get(&self, t: &FiveTuple) -> Option<&ConnEntry> {
        self.entries.get(t)
    }

    pub fn insert(&mut self, t: FiveTuple, e: ConnEntry) {
        self.entries.insert(t, e);
    }

    pub fn remove(&mut self, t: &FiveTuple) -> Option<ConnEntry> {
        self.entries.remove(t)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Connections currently held by a backend (`ip:port`) of a service port.
    pub fn count_for(&self, spn: &ServicePortName, endpoint: &str) -> usize {
        self.entries.values().filter(|e| &e.spn == spn && e.backend.endpoint == endpoint).count()
    }

    /// Clear the UDP entries of `spn` whose backend `still_there` rejects; returns the removed tuples.
    pub fn clear_stale_udp(&mut self, spn: &ServicePortName, still_there: impl Fn(&str) -> bool) -> Vec<(FiveTuple, ConnEntry)> {
        let stale: Vec<FiveTuple> = self
            .entries
            .iter()
            .filter(|(t, e)| t.protocol == Protocol::Udp && &e.spn == spn && !still_there(&e.backend.endpoint))
            .map(|(t, _)| *t)
            .collect();
        let mut out: Vec<(FiveTuple, ConnEntry)> = stale.into_iter().filter_map(|t| self.entries.remove(&t).map(|e| (t, e))).collect();
        crate::sort::by_key(&mut out, |a| a.0);
        out
    }

    /// Every connection, in tuple order.
    pub fn iter_sorted(&self) -> Vec<(&FiveTuple, &ConnEntry)> {
        let mut v: Vec<_> = self.entries.iter().collect();
        crate::sort::by(&mut v, |a, b| a.0.cmp(b.0));
        v
    }
}
