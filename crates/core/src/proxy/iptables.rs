//! The iptables data plane (§7.1, §8, §9): the chains kube-proxy writes, as structured rules that can be
//! printed (what kube-proxy writes, or what `iptables-save` shows after the kernel's 31-bit rounding)
//! and traced like the real test suite's packet tracer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::hash::hashed;
use super::policy::{NetConfig, PortState};
use super::{Cidr, Protocol, ServicePortName};
use crate::rng::Rng;

pub const KUBE_SERVICES: &str = "KUBE-SERVICES";
pub const KUBE_NODEPORTS: &str = "KUBE-NODEPORTS";
pub const KUBE_EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
pub const KUBE_PROXY_FIREWALL: &str = "KUBE-PROXY-FIREWALL";
pub const KUBE_FORWARD: &str = "KUBE-FORWARD";
pub const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";
pub const KUBE_MARK_DROP: &str = "KUBE-MARK-DROP";
pub const KUBE_POSTROUTING: &str = "KUBE-POSTROUTING";
/// The masquerade mark bit (`--masquerade-bit` 14).
pub const MASQ_MARK: u32 = 0x4000;
/// More endpoints than this over all Services: "large cluster mode", rule comments are left out.
pub const LARGE_CLUSTER_ENDPOINTS: usize = 1000;

/// The 16-character hash of a service port's chains: SHA-256 of the SPN string plus the lower-case protocol.
pub fn port_proto_hash(spn: &ServicePortName) -> String {
    hashed(&format!("{spn}{}", spn.protocol.lower()), 16)
}

/// `KUBE-SVC-…`: the cluster-policy chain.
pub fn cluster_chain(spn: &ServicePortName) -> String {
    format!("KUBE-SVC-{}", port_proto_hash(spn))
}

/// `KUBE-SVL-…`: the local-policy chain.
pub fn local_chain(spn: &ServicePortName) -> String {
    format!("KUBE-SVL-{}", port_proto_hash(spn))
}

/// `KUBE-EXT-…`: the external-destinations chain.
pub fn external_chain(spn: &ServicePortName) -> String {
    format!("KUBE-EXT-{}", port_proto_hash(spn))
}

/// `KUBE-FW-…`: the LoadBalancer source-range firewall chain.
pub fn firewall_chain(spn: &ServicePortName) -> String {
    format!("KUBE-FW-{}", port_proto_hash(spn))
}

/// `KUBE-SEP-…`: one endpoint's chain; the hash also covers the endpoint string.
pub fn endpoint_chain(spn: &ServicePortName, endpoint: &str) -> String {
    format!("KUBE-SEP-{}", hashed(&format!("{spn}{}{endpoint}", spn.protocol.lower()), 16))
}

/// The probability kube-proxy prints for 1/n: a fixed-point decimal with 10 digits.
pub fn probability(n: usize) -> String {
    format!("{:.10}", 1.0 / n.max(1) as f64)
}

/// The probability as the kernel stores it: a fraction of 2^31, rounded to the nearest.
pub fn kernel_threshold(p: &str) -> u32 {
    let v: f64 = crate::float::parse(p).unwrap_or(0.0);
    (v * 2_147_483_648.0).round().clamp(0.0, 2_147_483_648.0) as u32
}

/// What `iptables-save` prints back for a probability string: the kernel's value with 11 decimals.
pub fn kernel_readback(p: &str) -> String {
    format!("{:.11}", kernel_threshold(p) as f64 / 2_147_483_648.0)
}

/// The statistic match of the kernel: a 31-bit random number below the stored threshold.
pub fn statistic_random_matches(rng: &mut Rng, threshold: u32) -> bool {
    ((rng.next_u64() >> 33) as u32) < threshold
}

/// Pick among `n` candidates the way an iptables chain of `n` rules does: rule i (for i < n−1) matches
/// with probability 1/(n−i) after the kernel's rounding, the last rule always.
pub fn pick_by_chain(rng: &mut Rng, thresholds: &[u32], n: usize) -> usize {
    for i in 0..n.saturating_sub(1) {
        let t = thresholds.get(n - i).copied().unwrap_or_else(|| kernel_threshold(&probability(n - i)));
        if statistic_random_matches(rng, t) {
            return i;
        }
    }
    n.saturating_sub(1)
}

/// Kernel thresholds for 1/k, k = 0..=max (index 0 and 1 unused), computed once.
pub fn thresholds(max: usize) -> Vec<u32> {
    (0..=max).map(|k| if k < 2 { 0 } else { kernel_threshold(&probability(k)) }).collect()
}

/// A match of an iptables rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// `-m tcp -p tcp`
    Protocol(Protocol),
    /// `-s` (negated: `! -s`)
    Src { cidr: Cidr, negate: bool },
    /// `-d`
    Dst(Cidr),
    /// `--dport`
    Dport(u16),
    /// `-m addrtype --src-type LOCAL`
    SrcTypeLocal,
    /// `-m addrtype --dst-type LOCAL`
    DstTypeLocal,
    /// `-m statistic --mode random --probability 1/n`
    Probability(usize),
    /// `-m recent --name X --rcheck --seconds T --reap`
    RecentCheck { name: String, seconds: u32 },
    /// `-m recent --name X --set`
    RecentSet { name: String },
    /// Any other match, printed verbatim; never matches in the tracer.
    Raw(String),
}

/// The target of an iptables rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Jump(String),
    Dnat(String),
    Reject,
    Drop,
    Accept,
    Return,
    /// Printed verbatim (`MARK --or-mark 0x4000`, `MASQUERADE --random-fully`).
    Raw(String),
    /// No target: a counting rule.
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub comment: Option<String>,
    pub matches: Vec<Match>,
    pub target: Target,
}

impl Rule {
    fn new(comment: Option<String>, matches: Vec<Match>, target: Target) -> Self {
        Rule { comment, matches, target }
    }
}

/// One table: chains in declaration order with their rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub chains: Vec<(String, Vec<Rule>)>,
    index: BTreeMap<String, usize>,
}

impl Table {
    pub fn chain(&mut self, name: &str) -> &mut Vec<Rule> {
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.chains.push((name.to_string(), Vec::new()));
                self.index.insert(name.to_string(), self.chains.len() - 1);
                self.chains.len() - 1
            }
        };
        &mut self.chains[i].1
    }

    pub fn get(&self, name: &str) -> Option<&[Rule]> {
        self.index.get(name).map(|&i| self.chains[i].1.as_slice())
    }

    pub fn has_chain(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

/// The rules of one node: the `filter` and `nat` tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub filter: Table,
    pub nat: Table,
}

fn proto_dst_port(p: Protocol, dst: IpAddr, port: u16) -> Vec<Match> {
    vec![Match::Protocol(p), Match::Dst(Cidr::host(dst)), Match::Dport(port)]
}

/// Build the rules for every programmed service port (in SPN order, which makes the output deterministic
/// where Go iterates a map).
pub fn build<'a>(ports: impl IntoIterator<Item = &'a PortState>, net: &NetConfig) -> Ruleset {
    let ports: Vec<&PortState> = ports.into_iter().collect();
    let total: usize = ports.iter().map(|p| p.endpoints.len()).sum();
    let large = total > LARGE_CLUSTER_ENDPOINTS;
    let c = |s: String| if large { None } else { Some(s) };
    let mut rs = Ruleset::default();
    for name in [KUBE_NODEPORTS, KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_PROXY_FIREWALL] {
        rs.filter.chain(name);
    }
    for name in [KUBE_NODEPORTS, KUBE_SERVICES, KUBE_MARK_MASQ, KUBE_POSTROUTING] {
        rs.nat.chain(name);
    }
    rs.filter.chain(KUBE_FORWARD).push(Rule::new(None, vec![Raw("-m conntrack --ctstate INVALID".into())], Target::Drop));
    rs.filter.chain(KUBE_FORWARD).push(Rule::new(
        Some("kubernetes forwarding rules".into()),
        vec![Raw(format!("-m mark --mark {MASQ_MARK:#x}/{MASQ_MARK:#x}"))],
        Target::Accept,
    ));
    rs.nat.chain(KUBE_MARK_MASQ).push(Rule::new(None, vec![], Target::Raw(format!("MARK --or-mark {MASQ_MARK:#x}"))));
    rs.nat.chain(KUBE_POSTROUTING).push(Rule::new(None, vec![Raw(format!("-m mark ! --mark {MASQ_MARK:#x}/{MASQ_MARK:#x}"))], Target::Return));
    rs.nat.chain(KUBE_POSTROUTING).push(Rule::new(None, vec![], Target::Raw(format!("MARK --xor-mark {MASQ_MARK:#x}"))));
    rs.nat.chain(KUBE_POSTROUTING).push(Rule::new(
        Some("kubernetes service traffic requiring SNAT".into()),
        vec![],
        Target::Raw("MASQUERADE --random-fully".into()),
    ));
    use Match::Raw;

    for ps in &ports {
        let info = &ps.info;
        let spn = &info.name;
        let name = spn.to_string();
        let proto = info.protocol;
        let svc_chain = cluster_chain(spn);
        let svl_chain = local_chain(spn);
        let ext_chain = external_chain(spn);
        let fw_chain = firewall_chain(spn);
        let internal_chain = if info.internal_policy_local { &svl_chain } else { &svc_chain };
        let external_policy_chain = if info.external_local_effective() { &svl_chain } else { &svc_chain };
        let has_any = ps.has_endpoints();
        let (filter_target, filter_comment_int) = if !has_any {
            (Target::Reject, format!("{name} has no endpoints"))
        } else {
            (Target::Drop, format!("{name} has no local endpoints"))
        };
        let lb_chain = if ps.uses_firewall() { &fw_chain } else { &ext_chain };

        // ClusterIP.
        if let Some(cip) = info.cluster_ip {
            if ps.has_internal_endpoints() {
                rs.nat.chain(KUBE_SERVICES).push(Rule::new(
                    c(format!("{name} cluster IP")),
                    proto_dst_port(proto, cip, info.port),
                    Target::Jump(internal_chain.clone()),
                ));
            } else {
                rs.filter.chain(KUBE_SERVICES).push(Rule::new(
                    c(filter_comment_int.clone()),
                    proto_dst_port(proto, cip, info.port),
                    filter_target.clone(),
                ));
            }
        }
        let ext_filter = !ps.has_external_endpoints();
        for ip in &info.external_ips {
            if has_any {
                rs.nat.chain(KUBE_SERVICES).push(Rule::new(
                    c(format!("{name} external IP")),
                    proto_dst_port(proto, *ip, info.port),
                    Target::Jump(ext_chain.clone()),
                ));
            }
            if ext_filter {
                rs.filter.chain(KUBE_EXTERNAL_SERVICES).push(Rule::new(
                    c(filter_comment_int.clone()),
                    proto_dst_port(proto, *ip, info.port),
                    filter_target.clone(),
                ));
            }
        }
        for ip in &info.load_balancer_vips {
            if has_any {
                rs.nat.chain(KUBE_SERVICES).push(Rule::new(
                    c(format!("{name} loadbalancer IP")),
                    proto_dst_port(proto, *ip, info.port),
                    Target::Jump(lb_chain.clone()),
                ));
            }
            if ps.uses_firewall() {
                rs.filter.chain(KUBE_PROXY_FIREWALL).push(Rule::new(
                    c(format!("{name} traffic not accepted by {fw_chain}")),
                    proto_dst_port(proto, *ip, info.port),
                    Target::Drop,
                ));
            }
            if ext_filter {
                rs.filter.chain(KUBE_EXTERNAL_SERVICES).push(Rule::new(
                    c(filter_comment_int.clone()),
                    proto_dst_port(proto, *ip, info.port),
                    filter_target.clone(),
                ));
            }
        }
        if info.node_port != 0 {
            if has_any {
                rs.nat.chain(KUBE_NODEPORTS).push(Rule::new(
                    c(name.clone()),
                    vec![Match::Protocol(proto), Match::Dport(info.node_port)],
                    Target::Jump(ext_chain.clone()),
                ));
            }
            if ext_filter {
                rs.filter.chain(KUBE_EXTERNAL_SERVICES).push(Rule::new(
                    c(filter_comment_int.clone()),
                    vec![Match::DstTypeLocal, Match::Protocol(proto), Match::Dport(info.node_port)],
                    filter_target.clone(),
                ));
            }
        }
        if info.health_check_node_port != 0 {
            rs.filter.chain(KUBE_NODEPORTS).push(Rule::new(
                c(format!("{name} health check node port")),
                vec![Match::Protocol(Protocol::Tcp), Match::Dport(info.health_check_node_port)],
                Target::Accept,
            ));
        }
        if !has_any {
            continue;
        }

        // Declare this port's chains in a stable order.
        if ps.uses_cluster_chain() {
            rs.nat.chain(&svc_chain);
        }
        if ps.uses_local_chain() {
            rs.nat.chain(&svl_chain);
        }
        if ps.uses_external_chain() {
            rs.nat.chain(&ext_chain);
        }
        if ps.uses_firewall() {
            rs.nat.chain(&fw_chain);
        }

        if ps.uses_external_chain() {
            let ext = rs.nat.chain(&ext_chain);
            if info.external_local_effective() {
                if let Some(pods) = net.local_detector {
                    ext.push(Rule::new(
                        c(format!("pod traffic for {name} external destinations")),
                        vec![Match::Src { cidr: pods, negate: false }],
                        Target::Jump(svc_chain.clone()),
                    ));
                }
                ext.push(Rule::new(
                    c(format!("masquerade LOCAL traffic for {name} external destinations")),
                    vec![Match::SrcTypeLocal],
                    Target::Jump(KUBE_MARK_MASQ.into()),
                ));
                ext.push(Rule::new(
                    c(format!("route LOCAL traffic for {name} external destinations")),
                    vec![Match::SrcTypeLocal],
                    Target::Jump(svc_chain.clone()),
                ));
            } else {
                ext.push(Rule::new(
                    c(format!("masquerade traffic for {name} external destinations")),
                    vec![],
                    Target::Jump(KUBE_MARK_MASQ.into()),
                ));
            }
            if ps.has_external_endpoints() {
                ext.push(Rule::new(None, vec![], Target::Jump(external_policy_chain.clone())));
            }
        }
        if ps.uses_firewall() {
            let fw = rs.nat.chain(&fw_chain);
            for r in &info.load_balancer_source_ranges {
                fw.push(Rule::new(
                    c(format!("{name} loadbalancer IP")),
                    vec![Match::Src { cidr: *r, negate: false }],
                    Target::Jump(ext_chain.clone()),
                ));
            }
            fw.push(Rule::new(c(format!("other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL")), vec![], Target::None));
        }

        let masq_rule = |cip: IpAddr| -> Option<Rule> {
            let mut m = proto_dst_port(proto, cip, info.port);
            if net.masquerade_all {
            } else if let Some(pods) = net.local_detector {
                m.push(Match::Src { cidr: pods, negate: true });
            } else {
                return None;
            }
            Some(Rule::new(c(format!("{name} cluster IP")), m, Target::Jump(KUBE_MARK_MASQ.into())))
        };
        // Each endpoint chain name is hashed once (every usable endpoint is in the reachable set).
        let reachable = ps.cat.reachable_or_empty();
        let sep_names: Vec<String> = reachable.iter().map(|&i| endpoint_chain(spn, &ps.endpoints[i].endpoint)).collect();
        let sep_of = |i: usize| -> String {
            match reachable.binary_search(&i) {
                Ok(k) => sep_names[k].clone(),
                Err(_) => endpoint_chain(spn, &ps.endpoints[i].endpoint),
            }
        };
        for (chain, set, is_internal) in [
            (&svc_chain, ps.cat.cluster_or_empty(), !info.internal_policy_local),
            (&svl_chain, ps.cat.local_or_empty(), info.internal_policy_local),
        ] {
            let used = if chain == &svc_chain { ps.uses_cluster_chain() } else { ps.uses_local_chain() };
            if !used {
                continue;
            }
            let rules = rs.nat.chain(chain);
            if is_internal {
                if let Some(r) = info.cluster_ip.and_then(masq_rule) {
                    rules.push(r);
                }
            }
            if let Some(seconds) = info.affinity_seconds {
                for &i in set {
                    let ep = &ps.endpoints[i];
                    let sep = sep_of(i);
                    rules.push(Rule::new(
                        c(format!("{name} -> {}", ep.endpoint)),
                        vec![Match::RecentCheck { name: sep.clone(), seconds }],
                        Target::Jump(sep),
                    ));
                }
            }
            let n = set.len();
            for (k, &i) in set.iter().enumerate() {
                let ep = &ps.endpoints[i];
                let sep = sep_of(i);
                let m = if k + 1 < n { vec![Match::Probability(n - k)] } else { vec![] };
                rules.push(Rule::new(c(format!("{name} -> {}", ep.endpoint)), m, Target::Jump(sep)));
            }
        }
        for (k, &i) in reachable.iter().enumerate() {
            let ep = &ps.endpoints[i];
            let sep = sep_names[k].clone();
            let rules = rs.nat.chain(&sep);
            rules.push(Rule::new(c(name.clone()), vec![Match::Src { cidr: Cidr::host(ep.addr), negate: false }], Target::Jump(KUBE_MARK_MASQ.into())));
            let mut m = Vec::new();
            if info.affinity_seconds.is_some() {
                m.push(Match::RecentSet { name: sep.clone() });
            }
            m.push(Match::Protocol(proto));
            rules.push(Rule::new(c(name.clone()), m, Target::Dnat(ep.endpoint.clone())));
        }
    }
    rs.nat.chain(KUBE_SERVICES).push(Rule::new(
        Some("kubernetes service nodeports; NOTE: this must be the last rule in this chain".into()),
        vec![Match::DstTypeLocal],
        Target::Jump(KUBE_NODEPORTS.into()),
    ));
    rs
}

/// How rules are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// What kube-proxy writes with `iptables-restore`: 10-decimal probabilities.
    KubeProxy,
    /// What `iptables-save` prints back: the kernel's 31-bit probabilities with 11 decimals, /32 masks,
    /// iptables' own argument order.
    IptablesSave,
}

fn quote(s: &str) -> String {
    if s.contains(' ') || s.is_empty() {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

fn addr(c: &Cidr, view: View) -> String {
    let host = c.prefix == if c.addr.is_ipv4() { 32 } else { 128 };
    if host && view == View::KubeProxy {
        c.addr.to_string()
    } else {
        c.to_string()
    }
}

fn target_text(t: &Target) -> Option<String> {
    match t {
        Target::Jump(c) => Some(c.clone()),
        Target::Dnat(d) => Some(format!("DNAT --to-destination {d}")),
        Target::Reject => Some("REJECT".into()),
        Target::Drop => Some("DROP".into()),
        Target::Accept => Some("ACCEPT".into()),
        Target::Return => Some("RETURN".into()),
        Target::Raw(s) => Some(s.clone()),
        Target::None => None,
    }
}

/// One rule as text (without the `-A CHAIN` prefix).
pub fn rule_text(r: &Rule, view: View) -> String {
    let mut parts: Vec<String> = Vec::new();
    match view {
        View::KubeProxy => {
            if let Some(c) = &r.comment {
                parts.push(format!("-m comment --comment {}", quote(c)));
            }
            for m in &r.matches {
                parts.push(match m {
                    Match::Protocol(p) => format!("-m {0} -p {0}", p.lower()),
                    Match::Src { cidr, negate } => format!("{}-s {}", if *negate { "! " } else { "" }, addr(cidr, view)),
                    Match::Dst(c) => format!("-d {}", addr(c, view)),
                    Match::Dport(p) => format!("--dport {p}"),
                    Match::SrcTypeLocal => "-m addrtype --src-type LOCAL".into(),
                    Match::DstTypeLocal => "-m addrtype --dst-type LOCAL".into(),
                    Match::Probability(n) => format!("-m statistic --mode random --probability {}", probability(*n)),
                    Match::RecentCheck { name, seconds } => format!("-m recent --name {name} --rcheck --seconds {seconds} --reap"),
                    Match::RecentSet { name } => format!("-m recent --name {name} --set"),
                    Match::Raw(s) => s.clone(),
                });
            }
        }
        View::IptablesSave => {
            // iptables-save order: addresses, protocol, then the match modules in order.
            for m in &r.matches {
                match m {
                    Match::Src { cidr, negate } => parts.push(format!("{}-s {}", if *negate { "! " } else { "" }, addr(cidr, view))),
                    Match::Dst(c) => parts.push(format!("-d {}", addr(c, view))),
                    _ => {}
                }
            }
            let proto = r.matches.iter().find_map(|m| if let Match::Protocol(p) = m { Some(*p) } else { None });
            if let Some(p) = proto {
                parts.push(format!("-p {}", p.lower()));
            }
            if let Some(c) = &r.comment {
                parts.push(format!("-m comment --comment {}", quote(c)));
            }
            for m in &r.matches {
                match m {
                    Match::Dport(port) => parts.push(format!("-m {} --dport {port}", proto.map(|p| p.lower()).unwrap_or("tcp"))),
                    Match::SrcTypeLocal => parts.push("-m addrtype --src-type LOCAL".into()),
                    Match::DstTypeLocal => parts.push("-m addrtype --dst-type LOCAL".into()),
                    Match::Probability(n) => {
                        parts.push(format!("-m statistic --mode random --probability {}", kernel_readback(&probability(*n))))
                    }
                    Match::RecentCheck { name, seconds } => {
                        parts.push(format!("-m recent --rcheck --seconds {seconds} --reap --name {name} --mask 255.255.255.255 --rsource"))
                    }
                    Match::RecentSet { name } => parts.push(format!("-m recent --set --name {name} --mask 255.255.255.255 --rsource")),
                    Match::Raw(s) => parts.push(s.clone()),
                    _ => {}
                }
            }
        }
    }
    if let Some(t) = target_text(&r.target) {
        parts.push(format!("-j {t}"));
    }
    parts.join(" ")
}

/// The whole ruleset in `iptables-save` form.
pub fn render(rs: &Ruleset, view: View) -> String {
    let mut out = String::new();
    for (name, table) in [("filter", &rs.filter), ("nat", &rs.nat)] {
        let _ = writeln!(out, "*{name}");
        for (chain, _) in &table.chains {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for (chain, rules) in &table.chains {
            for r in rules {
                let text = rule_text(r, view);
                if text.is_empty() {
                    let _ = writeln!(out, "-A {chain}");
                } else {
                    let _ = writeln!(out, "-A {chain} {text}");
                }
            }
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// A packet for the tracer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dport: u16,
    pub protocol: Protocol,
}

/// What the tracer found, in the shape of the real test suite's `runPacketFlowTests`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceOutput {
    /// Every backend the packet could be DNATed to, in rule order.
    Backends(Vec<String>),
    Reject,
    Drop,
    Accept,
    /// No kube-proxy rule decided anything.
    Nothing,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub output: TraceOutput,
    /// Some matched rule jumped to KUBE-MARK-MASQ.
    pub masquerade: bool,
}

impl Trace {
    /// The oracle's text: "a:80, b:80", "REJECT", "DROP", "ACCEPT" or "".
    pub fn output_text(&self) -> String {
        match &self.output {
            TraceOutput::Backends(b) => b.join(", "),
            TraceOutput::Reject => "REJECT".into(),
            TraceOutput::Drop => "DROP".into(),
            TraceOutput::Accept => "ACCEPT".into(),
            TraceOutput::Nothing => String::new(),
        }
    }
}

struct Tracer<'a> {
    table: &'a Table,
    net: &'a NetConfig,
    pkt: Packet,
    masq: bool,
    dnats: Vec<String>,
    depth: usize,
}

enum Flow {
    Continue,
    Stop(Option<Target>),
}

impl Tracer<'_> {
    fn matches(&self, m: &Match) -> bool {
        match m {
            Match::Protocol(p) => *p == self.pkt.protocol,
            Match::Src { cidr, negate } => cidr.contains(&self.pkt.src) != *negate,
            Match::Dst(c) => c.contains(&self.pkt.dst),
            Match::Dport(p) => *p == self.pkt.dport,
            Match::SrcTypeLocal => self.net.is_local_addr(&self.pkt.src),
            Match::DstTypeLocal => self.net.is_local_addr(&self.pkt.dst),
            // The tracer follows every probability branch.
            Match::Probability(_) => true,
            // It never has affinity state.
            Match::RecentCheck { .. } => false,
            Match::RecentSet { .. } => true,
            Match::Raw(_) => false,
        }
    }

    fn walk(&mut self, chain: &str) -> Flow {
        self.depth += 1;
        if self.depth > 32 {
            return Flow::Stop(None);
        }
        let Some(rules) = self.table.get(chain) else { return Flow::Continue };
        for r in rules {
            if !r.matches.iter().all(|m| self.matches(m)) {
                continue;
            }
            let probabilistic = r.matches.iter().any(|m| matches!(m, Match::Probability(_)));
            match &r.target {
                Target::Jump(c) if c == KUBE_MARK_MASQ => self.masq = true,
                Target::Jump(c) if c == KUBE_MARK_DROP => return Flow::Stop(Some(Target::Drop)),
                Target::Jump(c) => {
                    let f = self.walk(c);
                    self.depth -= 1;
                    if let Flow::Stop(t) = f {
                        if !probabilistic {
                            return Flow::Stop(t);
                        }
                    }
                }
                Target::Dnat(d) => {
                    if !self.dnats.contains(d) {
                        self.dnats.push(d.clone());
                    }
                    return Flow::Stop(Some(r.target.clone()));
                }
                Target::Return => return Flow::Continue,
                Target::Reject | Target::Drop | Target::Accept => return Flow::Stop(Some(r.target.clone())),
                Target::Raw(_) | Target::None => {}
            }
        }
        Flow::Continue
    }
}

/// Follow a packet through nat `KUBE-SERVICES` (PREROUTING/OUTPUT), then the filter chains, as the
/// real test suite's tracer does.
pub fn trace(rs: &Ruleset, net: &NetConfig, pkt: Packet) -> Trace {
    let mut t = Tracer { table: &rs.nat, net, pkt, masq: false, dnats: Vec::new(), depth: 0 };
    t.walk(KUBE_SERVICES);
    let masquerade = t.masq;
    let dnats = std::mem::take(&mut t.dnats);
    // After DNAT the filter table sees the new destination.
    let mut pkt = pkt;
    if let Some(first) = dnats.first() {
        if let Some((h, p)) = super::split_host_port(first) {
            if let Some(ip) = crate::ip::parse_ip_sloppy(h) {
                pkt.dst = ip;
                pkt.dport = p;
            }
        }
    }
    for chain in [KUBE_PROXY_FIREWALL, KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_NODEPORTS] {
        let mut f = Tracer { table: &rs.filter, net, pkt, masq: false, dnats: Vec::new(), depth: 0 };
        if let Flow::Stop(Some(target)) = f.walk(chain) {
            let output = match target {
                Target::Reject => TraceOutput::Reject,
                Target::Drop => TraceOutput::Drop,
                Target::Accept => TraceOutput::Accept,
                _ => continue,
            };
            return Trace { output, masquerade };
        }
    }
    if dnats.is_empty() {
        Trace { output: TraceOutput::Nothing, masquerade }
    } else {
        Trace { output: TraceOutput::Backends(dnats), masquerade }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_strings_and_kernel_view() {
        assert_eq!(probability(3), "0.3333333333");
        assert_eq!(probability(6), "0.1666666667");
        assert_eq!(probability(100001), "0.0000099999");
        assert_eq!(kernel_readback("0.3333333333"), "0.33333333349");
        assert_eq!(kernel_readback("0.33333"), "0.33332999982");
        assert_eq!(kernel_readback("0.2"), "0.20000000019");
        assert_eq!(kernel_readback("0.16667"), "0.16667000018");
        assert_eq!(kernel_readback("0.25"), "0.25000000000");
        assert_eq!(kernel_readback("0.5"), "0.50000000000");
    }

    #[test]
    fn naive_one_over_n_loses_traffic_but_the_chain_does_not() {
        // 1/n on every rule with no catch-all: (1 - 1/n)^(n-1)... of the traffic falls off the end.
        let n = 3usize;
        let mut rng = Rng::new(1);
        let t = thresholds(n);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[pick_by_chain(&mut rng, &t, n)] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
        // A naive chain with 1/n on every rule and no catch-all loses (1 - 1/n)^n of the traffic.
        let naive = kernel_threshold(&probability(n));
        let lost = (0..30_000).filter(|_| !(0..n).any(|_| statistic_random_matches(&mut rng, naive))).count();
        assert!((8_400..9_400).contains(&lost), "{lost}");
    }

    #[test]
    fn chain_names() {
        let spn = ServicePortName::new("ns4", "svc4", "p80", Protocol::Tcp);
        assert_eq!(cluster_chain(&spn), "KUBE-SVC-4SW47YFZTEDKD3PK");
        assert_eq!(endpoint_chain(&spn, "10.180.0.4:80"), "KUBE-SEP-UKSFD7AGPMPPLUHC");
    }
}
