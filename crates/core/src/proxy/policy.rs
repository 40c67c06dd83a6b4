//! Which endpoint set serves which traffic (§5), and REJECT versus DROP (§9).
//!
//! [`PortState`] is what a sync leaves behind for one service port: its settings, its sorted endpoints
//! and their categorisation. Every data plane renders from it, and [`route`] decides, for one new
//! connection, the candidate endpoints (or the verdict) exactly as the iptables rules would.

use std::net::IpAddr;
use std::sync::Arc;

use super::cache::EndpointList;
use super::categorize::Categorized;
use super::service::ServicePortInfo;
use super::{Cidr, Endpoint, Protocol};

/// The node's networking facts kube-proxy needs to route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The node's own addresses (NodePorts listen on all of them).
    pub node_ips: Vec<IpAddr>,
    /// The local-traffic detector: the pod CIDR. `None` is the no-op detector.
    pub local_detector: Option<Cidr>,
    /// `--masquerade-all`.
    pub masquerade_all: bool,
    /// iptables only: NodePorts also answer on 127.0.0.1.
    pub localhost_nodeports: bool,
}

impl NetConfig {
    /// `-m addrtype --src-type LOCAL` / `--dst-type LOCAL`: a node address or loopback.
    pub fn is_local_addr(&self, ip: &IpAddr) -> bool {
        ip.is_loopback() || self.node_ips.contains(ip)
    }

    /// The local-traffic detector says this source is a pod on this node.
    pub fn is_local_pod(&self, ip: &IpAddr) -> bool {
        self.local_detector.is_some_and(|c| c.contains(ip))
    }
}

/// One service port after a sync.
#[derive(Clone, Debug)]
pub struct PortState {
    pub info: Arc<ServicePortInfo>,
    pub endpoints: EndpointList,
    pub cat: Categorized,
}

/// Which endpoint set a traffic class uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    Cluster,
    Local,
}

impl PortState {
    /// A usable endpoint exists somewhere (otherwise: REJECT everywhere).
    pub fn has_endpoints(&self) -> bool {
        self.cat.has_any
    }

    /// The set ClusterIP traffic uses (§5).
    pub fn internal_kind(&self) -> SetKind {
        if self.info.internal_policy_local {
            SetKind::Local
        } else {
            SetKind::Cluster
        }
    }

    /// The set traffic from outside to an external destination uses (§5).
    pub fn external_kind(&self) -> SetKind {
        if self.info.external_local_effective() {
            SetKind::Local
        } else {
            SetKind::Cluster
        }
    }

    pub fn set(&self, kind: SetKind) -> &[usize] {
        match kind {
            SetKind::Cluster => self.cat.cluster_or_empty(),
            SetKind::Local => self.cat.local_or_empty(),
        }
    }

    /// ClusterIP traffic can be forwarded from this node.
    pub fn has_internal_endpoints(&self) -> bool {
        self.has_endpoints() && !self.set(self.internal_kind()).is_empty()
    }

    /// External traffic from outside can be forwarded from this node.
    pub fn has_external_endpoints(&self) -> bool {
        self.has_endpoints() && !self.set(self.external_kind()).is_empty()
    }

    /// The cluster-policy chain exists (it has endpoints and the Service uses it).
    pub fn uses_cluster_chain(&self) -> bool {
        self.info.uses_cluster_endpoints() && !self.cat.cluster_or_empty().is_empty()
    }

    /// The local-policy chain exists.
    pub fn uses_local_chain(&self) -> bool {
        self.info.uses_local_endpoints() && !self.cat.local_or_empty().is_empty()
    }

    /// The external-destinations chain exists (it is needed for the short-circuit rules even when no
    /// endpoint is usable for external traffic).
    pub fn uses_external_chain(&self) -> bool {
        self.has_endpoints() && self.info.externally_accessible()
    }

    /// LoadBalancer source ranges are enforced by a firewall chain.
    pub fn uses_firewall(&self) -> bool {
        !self.info.load_balancer_source_ranges.is_empty() && !self.info.load_balancer_vips.is_empty()
    }

    pub fn endpoint(&self, i: usize) -> &Arc<Endpoint> {
        &self.endpoints[i]
    }
}

/// How a packet reached the Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestKind {
    ClusterIp,
    ExternalIp,
    LoadBalancer,
    NodePort,
}

impl DestKind {
    pub fn is_external(self) -> bool {
        self != DestKind::ClusterIp
    }
}

/// Why a packet is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A Local policy and no local endpoint, while endpoints exist elsewhere (§9).
    NoLocalEndpoints,
    /// The source is outside the LoadBalancer source ranges.
    Firewall,
}

/// The fate of a new connection, decided before the backend pick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Forward to one endpoint of `set` (see [`Route::candidates`]).
    Forward {
        set: SetKind,
        /// Masqueraded by a policy rule (the hairpin case is added per backend: see [`Route::masquerade_for`]).
        masquerade: bool,
        /// External traffic from this node or its pods, sent to the cluster set under eTP=Local.
        short_circuit: bool,
    },
    /// No usable endpoint anywhere: ICMP port unreachable, the client is refused at once.
    Reject,
    /// The packet is dropped: the client times out.
    Drop(DropReason),
}

impl Route {
    /// The candidate endpoints (indices into the port's sorted endpoints); empty unless forwarding.
    pub fn candidates<'a>(&self, port: &'a PortState) -> &'a [usize] {
        match self {
            Route::Forward { set, .. } => port.set(*set),
            _ => &[],
        }
    }

    /// Whether the connection is masqueraded once `backend` is chosen (hairpin traffic always is).
    pub fn masquerade_for(&self, src: &IpAddr, backend: &Endpoint) -> bool {
        match self {
            Route::Forward { masquerade, .. } => *masquerade || backend.addr == *src,
            _ => false,
        }
    }
}

/// §5 and §9: the route of a new connection from `src` that reached `port` as `kind`.
pub fn route(port: &PortState, kind: DestKind, src: &IpAddr, net: &NetConfig) -> Route {
    if !port.has_endpoints() {
        return Route::Reject;
    }
    if kind == DestKind::ClusterIp {
        let set = port.internal_kind();
        if port.set(set).is_empty() {
            return Route::Drop(DropReason::NoLocalEndpoints);
        }
        let masquerade = net.masquerade_all || (net.local_detector.is_some() && !net.is_local_pod(src));
        return Route::Forward { set, masquerade, short_circuit: false };
    }
    if kind == DestKind::LoadBalancer
        && port.uses_firewall()
        && !port.info.load_balancer_source_ranges.iter().any(|c| c.contains(src))
    {
        return Route::Drop(DropReason::Firewall);
    }
    if port.info.external_local_effective() {
        if net.is_local_pod(src) {
            return Route::Forward { set: SetKind::Cluster, masquerade: false, short_circuit: true };
        }
        if net.is_local_addr(src) {
            return Route::Forward { set: SetKind::Cluster, masquerade: true, short_circuit: true };
        }
        if port.set(SetKind::Local).is_empty() {
            return Route::Drop(DropReason::NoLocalEndpoints);
        }
        return Route::Forward { set: SetKind::Local, masquerade: false, short_circuit: false };
    }
    Route::Forward { set: SetKind::Cluster, masquerade: true, short_circuit: false }
}

/// The health-check node port's answer for a Service (§5): 200 while this node has at least one ready
/// local endpoint (counted by IP), 503 otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub status: u16,
    pub local_endpoints: usize,
}

impl HealthCheck {
    pub fn from_count(local_endpoints: usize) -> Self {
        HealthCheck { status: if local_endpoints > 0 { 200 } else { 503 }, local_endpoints }
    }
}

/// A destination key: address, port and protocol.
pub type DestKey = (IpAddr, u16, Protocol);
