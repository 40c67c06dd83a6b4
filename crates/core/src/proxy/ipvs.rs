//! The IPVS data plane (§7.3): one virtual server per Service address (the ClusterIP, every node IP with
//! the NodePort, every LoadBalancer IP and externalIP), real servers of weight 1, a scheduler per
//! virtual server (rr by default), persistence for ClientIP affinity, and graceful deletion: a removed
//! endpoint stays with weight 0 until its connections are gone.
//!
//! Uncertain (read from the IPVS proxier only, per the spec): with a Local policy and no local endpoint,
//! the virtual server falls back to the cluster endpoints; acceptance (REJECT/DROP) is decided by the
//! same rules as in iptables mode ([`super::policy::route`]).

use crate::vecmap::VecMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::policy::{DestKey, DestKind, NetConfig, PortState, SetKind};
use super::{join_host_port, Endpoint, ServicePortName};

/// An IPVS scheduler (§7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scheduler {
    #[default]
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Sh,
    Dh,
    Sed,
    Nq,
    Mh,
}

impl Scheduler {
    pub fn parse(s: &str) -> Result<Scheduler, String> {
        Ok(match s {
            "" | "rr" => Scheduler::Rr,
            "wrr" => Scheduler::Wrr,
            "lc" => Scheduler::Lc,
            "wlc" => Scheduler::Wlc,
            "lblc" => Scheduler::Lblc,
            "lblcr" => Scheduler::Lblcr,
            "sh" => Scheduler::Sh,
            "dh" => Scheduler::Dh,
            "sed" => Scheduler::Sed,
            "nq" => Scheduler::Nq,
            "mh" => Scheduler::Mh,
            other => return Err(format!("unknown IPVS scheduler {other:?} (rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh)")),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Sh => "sh",
            Scheduler::Dh => "dh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Mh => "mh",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServer {
    pub endpoint: Arc<Endpoint>,
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
}

/// Maglev lookup-table size (a prime, as the kernel requires).
const MH_TABLE: usize = 251;

#[derive(Clone, Debug)]
pub struct VirtualServer {
    pub key: DestKey,
    pub kind: DestKind,
    pub spn: ServicePortName,
    pub scheduler: Scheduler,
    /// Persistence timeout in seconds (ClientIP affinity).
    pub persistent: Option<u32>,
    /// Sorted by endpoint string.
    pub reals: Vec<RealServer>,
    rr_last: Option<String>,
    lblc: Vec<String>,
    persistence: FxHashMap<IpAddr, (String, u64)>,
    mh_table: Option<Vec<u16>>,
}

impl VirtualServer {
    fn new(key: DestKey, kind: DestKind, spn: ServicePortName, scheduler: Scheduler, persistent: Option<u32>) -> Self {
        VirtualServer {
            key,
            kind,
            spn,
            scheduler,
            persistent,
            reals: Vec::new(),
            rr_last: None,
            lblc: Vec::new(),
            persistence: FxHashMap::default(),
            mh_table: None,
        }
    }

    fn live(&self) -> Vec<usize> {
        (0..self.reals.len()).filter(|&i| self.reals[i].weight > 0).collect()
    }

    /// Replace the desired real servers; servers no longer wanted keep weight 0 while they have connections.
    fn set_reals(&mut self, desired: &[Arc<Endpoint>]) {
        let mut next: Vec<RealServer> = Vec::with_capacity(desired.len());
        let old: FxHashMap<&str, &RealServer> = self.reals.iter().map(|r| (r.endpoint.endpoint.as_str(), r)).collect();
        let mut seen: FxHashMap<&str, ()> = FxHashMap::default();
        for e in desired {
            let (active, inactive) = old.get(e.endpoint.as_str()).map_or((0, 0), |r| (r.active, r.inactive));
            next.push(RealServer { endpoint: e.clone(), weight: 1, active, inactive });
            seen.insert(e.endpoint.as_str(), ());
        }
        for r in &self.reals {
            if !seen.contains_key(r.endpoint.endpoint.as_str()) && r.active + r.inactive > 0 {
                next.push(RealServer { weight: 0, ..r.clone() });
            }
        }
        crate::sort::by(&mut next, |a, b| a.endpoint.endpoint.cmp(&b.endpoint.endpoint));
        let changed = next.len() != self.reals.len()
            || next.iter().zip(self.reals.iter()).any(|(a, b)| a.endpoint.endpoint != b.endpoint.endpoint || a.weight != b.weight);
        self.reals = next;
        if changed {
            self.mh_table = None;
        }
    }

    fn find(&self, endpoint: &str) -> Option<usize> {
        self.reals.binary_search_by(|r| r.endpoint.endpoint.as_str().cmp(endpoint)).ok()
    }

    fn least_connections(&self, live: &[usize]) -> Option<usize> {
        live.iter().copied().min_by_key(|&i| ((self.reals[i].active as u64) << 8) + self.reals[i].inactive as u64)
    }

    fn overloaded(&self, i: usize) -> bool {
        let r = &self.reals[i];
        r.active > r.weight && self.reals.iter().any(|s| s.weight > 0 && 2 * s.active < s.weight)
    }

    fn source_hash_pick(live: &[usize], ip: &IpAddr) -> usize {
        let h = ip_hash(ip);
        // The kernel fills 256 buckets with the servers in turn.
        let bucket = (h >> 24) as usize & 255;
        live[bucket % live.len()]
    }

    fn maglev_pick(&mut self, live: &[usize], src: &IpAddr) -> usize {
        if self.mh_table.is_none() {
            let names: Vec<&str> = live.iter().map(|&i| self.reals[i].endpoint.endpoint.as_str()).collect();
            self.mh_table = Some(maglev_table(&names));
        }
        let slot = (ip_hash(src) as usize) % MH_TABLE;
        let k = self.mh_table.as_ref().and_then(|t| t.get(slot)).copied().unwrap_or(0) as usize;
        live.get(k).copied().unwrap_or(live[0])
    }

    /// Schedule a new connection from `src`: persistence first, then the scheduler. `None` when the
    /// virtual server has no real server of weight > 0.
    pub fn schedule(&mut self, src: &IpAddr, now_ms: u64) -> Option<Arc<Endpoint>> {
        if !self.reals.iter().any(|r| r.weight > 0) {
            return None;
        }
        let rr = matches!(self.scheduler, Scheduler::Rr | Scheduler::Wrr);
        let live = if rr { Vec::new() } else { self.live() };
        if let Some(secs) = self.persistent {
            if let Some((ep, last)) = self.persistence.get(src) {
                if now_ms.saturating_sub(*last) <= secs as u64 * 1000 {
                    if let Some(i) = self.find(ep).filter(|&i| self.reals[i].weight > 0) {
                        let e = self.reals[i].endpoint.clone();
                        self.persistence.insert(*src, (e.endpoint.clone(), now_ms));
                        return Some(e);
                    }
                }
            }
        }
        let i = match self.scheduler {
            Scheduler::Rr | Scheduler::Wrr => {
                // The next server of weight > 0 after the last one chosen, in order, wrapping around.
                let n = self.reals.len();
                let start = match &self.rr_last {
                    Some(last) => self.reals.partition_point(|r| r.endpoint.endpoint.as_str() <= last.as_str()),
                    None => 0,
                };
                (0..n).map(|k| (start + k) % n).find(|&i| self.reals[i].weight > 0).unwrap_or(0)
            }
            Scheduler::Lc | Scheduler::Wlc => self.least_connections(&live).unwrap_or(live[0]),
            Scheduler::Sed => live.iter().copied().min_by_key(|&i| self.reals[i].active).unwrap_or(live[0]),
            Scheduler::Nq => live
                .iter()
                .copied()
                .find(|&i| self.reals[i].active == 0)
                .or_else(|| live.iter().copied().min_by_key(|&i| self.reals[i].active))
                .unwrap_or(live[0]),
            Scheduler::Lblc => {
                let assigned = self.lblc.first().and_then(|e| self.find(e)).filter(|&i| self.reals[i].weight > 0);
                match assigned {
                    Some(i) if !self.overloaded(i) => i,
                    _ => {
                        let i = self.least_connections(&live).unwrap_or(live[0]);
                        self.lblc = vec![self.reals[i].endpoint.endpoint.clone()];
                        i
                    }
                }
            }
            Scheduler::Lblcr => {
                self.lblc.retain(|e| self.reals.iter().any(|r| r.weight > 0 && &r.endpoint.endpoint == e));
                let in_set: Vec<usize> = self.lblc.iter().filter_map(|e| self.find(e)).collect();
                match self.least_connections(&in_set) {
                    Some(i) if !self.overloaded(i) => i,
                    _ => {
                        let i = self.least_connections(&live).unwrap_or(live[0]);
                        let e = self.reals[i].endpoint.endpoint.clone();
                        if !self.lblc.contains(&e) {
                            self.lblc.push(e);
                        }
                        i
                    }
                }
            }
            Scheduler::Sh => Self::source_hash_pick(&live, src),
            Scheduler::Dh => Self::source_hash_pick(&live, &self.key.0),
            Scheduler::Mh => self.maglev_pick(&live, src),
        };
        let e = self.reals[i].endpoint.clone();
        self.rr_last = Some(e.endpoint.clone());
        if self.persistent.is_some() {
            self.persistence.insert(*src, (e.endpoint.clone(), now_ms));
        }
        Some(e)
    }
}

/// The kernel's multiplicative hash of an address (folded for IPv6).
fn ip_hash(ip: &IpAddr) -> u32 {
    let v = match ip {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let b = u128::from(*a);
            (b as u32) ^ ((b >> 32) as u32) ^ ((b >> 64) as u32) ^ ((b >> 96) as u32)
        }
    };
    v.wrapping_mul(2_654_435_761)
}

fn fnv(s: &str, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A Maglev lookup table over `names` (Eisenbud et al., 2016): every server walks its own permutation
/// of the slots, taking turns, until the table is full.
fn maglev_table(names: &[&str]) -> Vec<u16> {
    let m = MH_TABLE;
    let mut table = vec![u16::MAX; m];
    if names.is_empty() {
        return vec![0; m];
    }
    let perms: Vec<(usize, usize)> =
        names.iter().map(|n| ((fnv(n, 1) % m as u64) as usize, (fnv(n, 2) % (m as u64 - 1)) as usize + 1)).collect();
    let mut next = vec![0usize; names.len()];
    let mut filled = 0;
    'outer: loop {
        for (i, (offset, skip)) in perms.iter().enumerate() {
            let mut c = (offset + next[i] * skip) % m;
            while table[c] != u16::MAX {
                next[i] += 1;
                c = (offset + next[i] * skip) % m;
            }
            table[c] = i as u16;
            next[i] += 1;
            filled += 1;
            if filled == m {
                break 'outer;
            }
        }
    }
    table
}

/// Every virtual server of one node.
#[derive(Clone, Debug, Default)]
pub struct IpvsState {
    pub servers: VecMap<DestKey, VirtualServer>,
    pub scheduler: Scheduler,
}

impl IpvsState {
    pub fn new(scheduler: Scheduler) -> Self {
        IpvsState { servers: VecMap::new(), scheduler }
    }

    /// The virtual servers a service port needs, with their real servers.
    fn desired(ps: &PortState, net: &NetConfig) -> Vec<(DestKey, DestKind, Vec<Arc<Endpoint>>)> {
        let info = &ps.info;
        let pick = |kind: SetKind| -> Vec<Arc<Endpoint>> {
            let mut set = ps.set(kind);
            if set.is_empty() {
                // PR #97081: fall back to the cluster endpoints for the virtual server.
                set = ps.set(SetKind::Cluster);
            }
            set.iter().map(|&i| ps.endpoints[i].clone()).collect()
        };
        let internal = pick(ps.internal_kind());
        let external = pick(ps.external_kind());
        let mut out = Vec::new();
        if let Some(cip) = info.cluster_ip {
            out.push(((cip, info.port, info.protocol), DestKind::ClusterIp, internal));
        }
        for ip in &info.external_ips {
            out.push(((*ip, info.port, info.protocol), DestKind::ExternalIp, external.clone()));
        }
        for ip in &info.load_balancer_vips {
            out.push(((*ip, info.port, info.protocol), DestKind::LoadBalancer, external.clone()));
        }
        if info.node_port != 0 {
            for ip in &net.node_ips {
                if ip.is_ipv4() == info.cluster_ip.is_none_or(|c| c.is_ipv4()) {
                    out.push(((*ip, info.node_port, info.protocol), DestKind::NodePort, external.clone()));
                }
            }
        }
        out
    }

    /// Bring the virtual servers of one service port up to date.
    pub fn sync_port(&mut self, ps: &PortState, net: &NetConfig) {
        let spn = &ps.info.name;
        let desired = Self::desired(ps, net);
        let keys: Vec<DestKey> = desired.iter().map(|d| d.0).collect();
        self.servers.retain(|k, vs| &vs.spn != spn || keys.contains(k));
        for (key, kind, reals) in desired {
            let scheduler = self.scheduler;
            let vs = self
                .servers
                .entry(key)
                .or_insert_with(|| VirtualServer::new(key, kind, spn.clone(), scheduler, ps.info.affinity_seconds));
            vs.persistent = ps.info.affinity_seconds;
            vs.spn = spn.clone();
            vs.set_reals(&reals);
        }
    }

    /// Remove the virtual servers of a service port that no longer exists.
    pub fn remove_port(&mut self, spn: &ServicePortName) {
        self.servers.retain(|_, vs| &vs.spn != spn);
    }

    /// A connection through `key` to `endpoint` opened.
    pub fn opened(&mut self, key: &DestKey, endpoint: &str) {
        if let Some(vs) = self.servers.get_mut(key) {
            if let Some(i) = vs.find(endpoint) {
                vs.reals[i].active += 1;
            }
        }
    }

    /// A connection through `key` to `endpoint` closed; a weight-0 server with no connection left goes.
    pub fn closed(&mut self, key: &DestKey, endpoint: &str) {
        if let Some(vs) = self.servers.get_mut(key) {
            if let Some(i) = vs.find(endpoint) {
                let r = &mut vs.reals[i];
                r.active = r.active.saturating_sub(1);
                if r.weight == 0 && r.active == 0 && r.inactive == 0 {
                    vs.reals.remove(i);
                    vs.mh_table = None;
                }
            }
        }
    }

    /// `ipvsadm -Ln` form.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
        for ((ip, port, proto), vs) in &self.servers {
            let flags = match vs.persistent {
                Some(t) => format!(" persistent {t}"),
                None => String::new(),
            };
            let _ = writeln!(out, "{:<4} {} {}{flags}", proto.api(), join_host_port(ip, *port), vs.scheduler.name());
            for r in &vs.reals {
                let _ = writeln!(out, "  -> {:<28} Masq    {:<6} {:<10} {}", r.endpoint.endpoint, r.weight, r.active, r.inactive);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Protocol;

    fn vs(s: Scheduler, n: usize) -> VirtualServer {
        let key = ("10.96.0.1".parse().unwrap(), 80, Protocol::Tcp);
        let mut v = VirtualServer::new(key, DestKind::ClusterIp, ServicePortName::new("n", "s", "", Protocol::Tcp), s, None);
        let mut eps: Vec<Arc<Endpoint>> = (1..=n).map(|i| Arc::new(Endpoint::new(&format!("10.0.0.{i}"), 80).unwrap())).collect();
        crate::sort::by(&mut eps, |a, b| a.endpoint.cmp(&b.endpoint));
        v.set_reals(&eps);
        v
    }

    #[test]
    fn round_robin_cycles_in_order() {
        let mut v = vs(Scheduler::Rr, 3);
        let src: IpAddr = "1.1.1.1".parse().unwrap();
        let picks: Vec<String> = (0..6).map(|_| v.schedule(&src, 0).unwrap().endpoint.clone()).collect();
        assert_eq!(picks, ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    }

    #[test]
    fn weight_zero_drains_and_is_never_picked() {
        let mut v = vs(Scheduler::Rr, 3);
        v.reals[1].active = 2;
        let keep: Vec<Arc<Endpoint>> = vec![v.reals[0].endpoint.clone(), v.reals[2].endpoint.clone()];
        v.set_reals(&keep);
        assert_eq!(v.reals.len(), 3);
        assert_eq!(v.reals[1].weight, 0);
        let src: IpAddr = "1.1.1.1".parse().unwrap();
        for _ in 0..10 {
            assert_ne!(v.schedule(&src, 0).unwrap().endpoint, "10.0.0.2:80");
        }
        // Without connections, a removed server goes at once.
        v.reals[1].active = 0;
        v.set_reals(&keep);
        assert_eq!(v.reals.len(), 2);
    }

    #[test]
    fn least_connection_and_hashing() {
        let mut v = vs(Scheduler::Lc, 3);
        v.reals[0].active = 5;
        v.reals[1].active = 1;
        v.reals[2].active = 3;
        let src: IpAddr = "1.1.1.1".parse().unwrap();
        assert_eq!(v.schedule(&src, 0).unwrap().endpoint, "10.0.0.2:80");
        for s in [Scheduler::Sh, Scheduler::Mh] {
            let mut v = vs(s, 5);
            let a = v.schedule(&src, 0).unwrap();
            for _ in 0..5 {
                assert_eq!(v.schedule(&src, 0).unwrap(), a);
            }
            let spread: std::collections::BTreeSet<String> = (0..200u32)
                .map(|i| v.schedule(&IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), 0).unwrap().endpoint.clone())
                .collect();
            assert!(spread.len() >= 4, "{s:?} {spread:?}");
        }
        let mut v = vs(Scheduler::Dh, 5);
        let a = v.schedule(&src, 0).unwrap();
        assert_eq!(v.schedule(&"9.9.9.9".parse().unwrap(), 0).unwrap(), a);
    }

    #[test]
    fn maglev_table_is_balanced() {
        let t = maglev_table(&["a", "b", "c"]);
        let mut c = [0; 3];
        for x in t {
            c[x as usize] += 1;
        }
        assert!(c.iter().all(|&x| (80..=90).contains(&x)), "{c:?}");
        assert!(Scheduler::parse("bogus").is_err());
    }
}
