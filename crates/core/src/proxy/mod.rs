//! kube-proxy, per node: the slice cache, endpoint categorisation and the data planes
//! (see `shared/spec/kube-proxy.md`).
//!
//! The map:
//! - [`cache`]: the EndpointSlice cache of one node and one IP family (§2, §3): grouping, merging,
//!   deduplication, text order, per-slice change detection; the local-ready count for health checks.
//! - [`service`]: the per-port view of a Service that kube-proxy works with (§1, §4.1, §5).
//! - [`categorize`]: `CategorizeEndpoints` (§4, §6): cluster, local and all-reachable sets.
//! - [`policy`]: which set serves which traffic (§5, §9): the per-port plan shared by every data plane,
//!   and the semantic routing of one new connection (REJECT, DROP, the short-circuit, masquerade).
//! - [`iptables`], [`nftables`], [`ipvs`]: the rules each mode writes (§7), as structured rules and as text;
//!   the iptables rules can be traced like the real test suite's packet tracer.
//! - [`affinity`], [`conntrack`]: ClientIP session affinity (§8) and the connection table (§10).
//! - [`sync`]: the bounded-frequency sync runner (§11).
//! - [`node`]: one node's kube-proxy, tying it together: feed it Services and slices, `tick` it on a virtual
//!   clock, `connect` new connections.
//! - [`dns`]: cluster DNS answers (§12).
//! - [`hash`]: SHA-256 and base32 for the hashed chain names.
//! - [`oracle`]: reading the oracle's categorize inputs (used by the CLI and the tests).

pub mod affinity;
pub mod cache;
pub mod categorize;
pub mod conntrack;
pub mod dns;
pub mod hash;
pub mod iptables;
pub mod ipvs;
pub mod nftables;
pub mod node;
pub mod oracle;
pub mod policy;
pub mod service;
pub mod sync;

use std::fmt;
use std::net::IpAddr;

use crate::ip::parse_ip_sloppy;

/// Label naming the Service a slice belongs to.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Services (and their slices) with this label belong to another proxy.
pub const LABEL_SERVICE_PROXY_NAME: &str = "service.kubernetes.io/service-proxy-name";
/// Slices of headless Services carry this label; kube-proxy ignores them.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// The node label holding its zone.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
/// The legacy Service annotation that older kube-proxy required for topology hints.
pub const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
/// Older name of the same annotation.
pub const ANNOTATION_TOPOLOGY_AWARE_HINTS: &str = "service.kubernetes.io/topology-aware-hints";

/// Default session-affinity timeout (§8): 3 hours.
pub const DEFAULT_AFFINITY_SECONDS: u32 = 10800;
/// Default `minSyncPeriod` (§11): 1 s.
pub const DEFAULT_MIN_SYNC_PERIOD_MS: u64 = 1000;
/// Default `syncPeriod` (§11): 30 s.
pub const DEFAULT_SYNC_PERIOD_MS: u64 = 30_000;

/// A Service port protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Parse the API value; a missing protocol is TCP.
    pub fn parse(s: Option<&str>) -> Result<Protocol, String> {
        match s {
            None | Some("TCP") => Ok(Protocol::Tcp),
            Some("UDP") => Ok(Protocol::Udp),
            Some("SCTP") => Ok(Protocol::Sctp),
            Some(other) => Err(format!("unknown protocol {other:?} (expected TCP, UDP or SCTP)")),
        }
    }

    /// "TCP", "UDP", "SCTP".
    pub fn api(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// "tcp", "udp", "sctp": what iptables and nftables write, and what the chain hashes use.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A service port name (SPN, §1): namespace/name, the port's *name* and its protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    pub port: String,
    pub protocol: Protocol,
}

impl ServicePortName {
    pub fn new(namespace: &str, name: &str, port: &str, protocol: Protocol) -> Self {
        ServicePortName { namespace: namespace.into(), name: name.into(), port: port.into(), protocol }
    }

    /// `ns/name` of the Service.
    pub fn service_key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// `ns/name:port/PROTO`, the form the oracle's slice-merge cases use as keys.
    pub fn key_with_protocol(&self) -> String {
        format!("{self}/{}", self.protocol.api())
    }
}

/// `ns/name:port`, or `ns/name` when the port has no name (how kube-proxy prints an SPN in comments and
/// feeds it to the chain-name hashes).
impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port.is_empty() {
            write!(f, "{}/{}", self.namespace, self.name)
        } else {
            write!(f, "{}/{}:{}", self.namespace, self.name, self.port)
        }
    }
}

/// One endpoint of one service port, as kube-proxy holds it after merging (§3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The canonical IP text.
    pub ip: String,
    pub addr: IpAddr,
    pub port: u16,
    /// `ip:port` (`[ip]:port` for IPv6): the identity key.
    pub endpoint: String,
    pub is_local: bool,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// Zone hints, sorted, without duplicates.
    pub zone_hints: Vec<String>,
    /// Node hints, sorted, without duplicates (only kept with the PreferSameTrafficDistribution gate).
    pub node_hints: Vec<String>,
    pub node_name: Option<String>,
    pub zone: Option<String>,
}

impl Endpoint {
    /// An endpoint from its parts; `ip` is re-printed in canonical form. `None` if `ip` is not an IP.
    pub fn new(ip: &str, port: u16) -> Option<Endpoint> {
        Some(Endpoint::from_addr(parse_ip_sloppy(ip)?, port))
    }

    /// An endpoint from an address already parsed: its text printed once, canonical.
    pub fn from_addr(addr: IpAddr, port: u16) -> Endpoint {
        let ip = addr.to_string();
        let endpoint = match addr {
            IpAddr::V4(_) => format!("{ip}:{port}"),
            IpAddr::V6(_) => format!("[{ip}]:{port}"),
        };
        Endpoint {
            ip,
            addr,
            port,
            endpoint,
            is_local: false,
            ready: true,
            serving: true,
            terminating: false,
            zone_hints: Vec::new(),
            node_hints: Vec::new(),
            node_name: None,
            zone: None,
        }
    }

    /// Parse an `ip:port` / `[ip]:port` string (the oracle's `ep`).
    pub fn from_endpoint_string(s: &str) -> Option<Endpoint> {
        let (host, port) = split_host_port(s)?;
        Endpoint::new(host, port)
    }

    /// Local to the node named `node` (§3.3: its nodeName is the node's name), or marked local
    /// outright (endpoints built by hand, as the oracle's are). Decided at use, so that one merged
    /// list serves every node.
    pub fn local_to(&self, node: &str) -> bool {
        self.is_local || self.node_name.as_deref() == Some(node)
    }

    /// Serving and terminating: the fallback kind of endpoint (§4.2).
    pub fn serving_terminating(&self) -> bool {
        self.serving && self.terminating
    }
}

/// `ip:port`, with brackets for IPv6 (Go's `net.JoinHostPort`).
pub fn join_host_port(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Split `host:port` or `[v6]:port`.
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        let port = tail.strip_prefix(':')?.parse().ok()?;
        Some((host, port))
    } else {
        let (host, port) = s.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        Some((host, port.parse().ok()?))
    }
}

/// A CIDR block (`10.0.0.0/8`, `fd00::/64`); surrounding spaces are allowed, as kube-proxy trims them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let t = s.trim();
        let (a, p) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let addr = parse_ip_sloppy(a).ok_or_else(|| format!("{s:?} is not a CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|v| *v <= max).ok_or_else(|| format!("{s:?} has a bad prefix length"))?,
            None => max,
        };
        Ok(Cidr { addr: mask(addr, prefix), prefix })
    }

    /// A single address as a /32 or /128.
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr { addr, prefix: if addr.is_ipv4() { 32 } else { 128 } }
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(*ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix as u32) };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// Feature options of the proxy (feature gates in the real one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gates {
    /// PreferSameTrafficDistribution: node hints are read, and PreferSameNode is possible (§6).
    pub prefer_same_traffic_distribution: bool,
    /// Emulate an older kube-proxy (the `02756999` test): `None` is the current behaviour.
    pub legacy: Option<LegacyGates>,
}

impl Default for Gates {
    fn default() -> Self {
        Gates { prefer_same_traffic_distribution: true, legacy: None }
    }
}

/// The options of an older kube-proxy (§6 history, §13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LegacyGates {
    /// TopologyAwareHints: hints are used only with this gate on and the Service annotated `auto`/`Auto`.
    pub topology_aware_hints: bool,
    /// ProxyTerminatingEndpoints: without it there is no serving+terminating fallback.
    pub proxy_terminating_endpoints: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spn_prints_like_kube_proxy() {
        assert_eq!(ServicePortName::new("ns1", "svc1", "p80", Protocol::Tcp).to_string(), "ns1/svc1:p80");
        assert_eq!(ServicePortName::new("ns1", "svc1", "", Protocol::Udp).to_string(), "ns1/svc1");
        assert_eq!(ServicePortName::new("ns1", "svc1", "port-0", Protocol::Tcp).key_with_protocol(), "ns1/svc1:port-0/TCP");
    }

    #[test]
    fn endpoint_strings() {
        let e = Endpoint::new("010.001.000.001", 80).unwrap();
        assert_eq!(e.endpoint, "10.1.0.1:80");
        let e6 = Endpoint::new("FD00::0001", 443).unwrap();
        assert_eq!(e6.endpoint, "[fd00::1]:443");
        assert_eq!(split_host_port("[fd00::1]:443"), Some(("fd00::1", 443)));
        assert_eq!(split_host_port("10.0.0.1:80"), Some(("10.0.0.1", 80)));
        assert_eq!(split_host_port("fd00::1:80"), None);
        assert!(Endpoint::new("nope", 1).is_none());
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse(" 203.0.113.0/25").unwrap();
        assert!(c.contains(&"203.0.113.2".parse().unwrap()));
        assert!(!c.contains(&"203.0.113.130".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("x/8").is_err());
        assert_eq!(Cidr::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(Cidr::parse("fd00::/64").unwrap().contains(&"fd00::5".parse().unwrap()));
    }
}
