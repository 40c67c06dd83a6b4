//! The nftables data plane (§7.2): one `service-…`/`local-…` chain per policy holding a single
//! `numgen random mod n` verdict map over the endpoint chains (index i = i-th endpoint in text order),
//! dispatch by the `service-ips` / `service-nodeports` maps, and `no-endpoint-*` maps for REJECT/DROP.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::hash::hashed;
use super::iptables::MASQ_MARK;
use super::policy::{NetConfig, PortState};
use super::{Endpoint, ServicePortName};
use crate::rng::Rng;
use crate::IpFamily;

/// `ns/name/proto/port`: the readable part of a service port's chain names.
pub fn chain_base(spn: &ServicePortName) -> String {
    format!("{}/{}/{}/{}", spn.namespace, spn.name, spn.protocol.lower(), spn.port)
}

/// `<base>__<ip>/<port>`: the readable part of an endpoint's chain and affinity-set names.
/// (For IPv6 the address is written without brackets; this detail was not verified.)
pub fn endpoint_base(spn: &ServicePortName, ep: &Endpoint) -> String {
    format!("{}__{}/{}", chain_base(spn), ep.ip, ep.port)
}

fn named(prefix: &str, base: &str) -> String {
    format!("{prefix}-{}-{base}", hashed(base, 8))
}

pub fn service_chain(spn: &ServicePortName) -> String {
    named("service", &chain_base(spn))
}

pub fn local_chain(spn: &ServicePortName) -> String {
    named("local", &chain_base(spn))
}

pub fn external_chain(spn: &ServicePortName) -> String {
    named("external", &chain_base(spn))
}

pub fn firewall_chain(spn: &ServicePortName) -> String {
    named("firewall", &chain_base(spn))
}

pub fn endpoint_chain(spn: &ServicePortName, ep: &Endpoint) -> String {
    named("endpoint", &endpoint_base(spn, ep))
}

pub fn affinity_set(spn: &ServicePortName, ep: &Endpoint) -> String {
    named("affinity", &endpoint_base(spn, ep))
}

/// The kernel's `numgen random mod n`: a 32-bit random number scaled into 0..n.
pub fn numgen_random(rng: &mut Rng, n: usize) -> usize {
    let r = rng.next_u64() >> 32;
    ((r * n as u64) >> 32) as usize
}

fn ip_kw(family: IpFamily) -> (&'static str, &'static str, &'static str) {
    match family {
        IpFamily::V4 => ("ip", "ipv4_addr", "ip"),
        IpFamily::V6 => ("ip6", "ipv6_addr", "ip6"),
    }
}

fn map_block(out: &mut String, name: &str, ty: &str, comment: &str, elements: &[String]) {
    let _ = writeln!(out, "\tmap {name} {{\n\t\ttype {ty} : verdict\n\t\tcomment \"{comment}\"");
    if !elements.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(",\n\t\t\t     "));
    }
    out.push_str("\t}\n");
}

/// The `kube-proxy` table in `nft list table` form.
pub fn render<'a>(ports: impl IntoIterator<Item = &'a PortState>, net: &NetConfig, family: IpFamily) -> String {
    let ports: Vec<&PortState> = ports.into_iter().collect();
    let (fam, addr_ty, kw) = ip_kw(family);
    let mut cluster_ips: Vec<String> = Vec::new();
    let mut service_ips: Vec<String> = Vec::new();
    let mut service_nodeports: Vec<String> = Vec::new();
    let mut no_ep_services: Vec<String> = Vec::new();
    let mut no_ep_nodeports: Vec<String> = Vec::new();
    let mut firewall_ips: Vec<String> = Vec::new();
    let mut sets = String::new();
    let mut chains = String::new();

    for ps in &ports {
        let info = &ps.info;
        let spn = &info.name;
        let name = spn.to_string();
        let p = info.protocol.lower();
        let svc = service_chain(spn);
        let svl = local_chain(spn);
        let ext = external_chain(spn);
        let fw = firewall_chain(spn);
        let internal_chain = if info.internal_policy_local { &svl } else { &svc };
        let external_policy_chain = if info.external_local_effective() { &svl } else { &svc };
        let has_any = ps.has_endpoints();
        let verdict = if has_any { "drop" } else { "goto reject-chain" };
        let lb_target = if ps.uses_firewall() { &fw } else { &ext };

        if let Some(cip) = info.cluster_ip {
            cluster_ips.push(cip.to_string());
            if ps.has_internal_endpoints() {
                service_ips.push(format!("{cip} . {p} . {} : goto {internal_chain}", info.port));
            } else {
                no_ep_services.push(format!("{cip} . {p} . {} comment \"{name}\" : {verdict}", info.port));
            }
        }
        let ext_filter = !ps.has_external_endpoints();
        for ip in info.external_ips.iter().chain(info.load_balancer_vips.iter()) {
            let is_lb = info.load_balancer_vips.contains(ip) && !info.external_ips.contains(ip);
            if has_any {
                let target = if is_lb { lb_target } else { &ext };
                service_ips.push(format!("{ip} . {p} . {} : goto {target}", info.port));
            }
            if ext_filter {
                no_ep_services.push(format!("{ip} . {p} . {} comment \"{name}\" : {verdict}", info.port));
            }
            if is_lb && ps.uses_firewall() {
                firewall_ips.push(format!("{ip} . {p} . {} : goto {fw}", info.port));
            }
        }
        if info.node_port != 0 {
            if has_any {
                service_nodeports.push(format!("{p} . {} : goto {ext}", info.node_port));
            }
            if ext_filter {
                no_ep_nodeports.push(format!("{p} . {} comment \"{name}\" : {verdict}", info.node_port));
            }
        }
        if !has_any {
            continue;
        }

        if ps.uses_external_chain() {
            let _ = writeln!(chains, "\tchain {ext} {{");
            if info.external_local_effective() {
                if let Some(pods) = net.local_detector {
                    let _ = writeln!(chains, "\t\t{kw} saddr {pods} goto {svc} comment \"short-circuit pod traffic\"");
                }
                let _ = writeln!(chains, "\t\tfib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"");
                let _ = writeln!(chains, "\t\tfib saddr type local goto {svc} comment \"short-circuit local traffic\"");
            } else {
                let _ = writeln!(chains, "\t\tjump mark-for-masquerade");
            }
            if ps.has_external_endpoints() {
                let _ = writeln!(chains, "\t\tgoto {external_policy_chain}");
            }
            chains.push_str("\t}\n");
        }
        if ps.uses_firewall() {
            let ranges: Vec<String> = info.load_balancer_source_ranges.iter().map(|c| c.to_string()).collect();
            let _ = writeln!(chains, "\tchain {fw} {{\n\t\t{kw} saddr != {{ {} }} drop\n\t\tgoto {ext}\n\t}}", ranges.join(", "));
        }
        for (chain, set, internal, used) in [
            (&svc, ps.cat.cluster_or_empty(), !info.internal_policy_local, ps.uses_cluster_chain()),
            (&svl, ps.cat.local_or_empty(), info.internal_policy_local, ps.uses_local_chain()),
        ] {
            if !used {
                continue;
            }
            let _ = writeln!(chains, "\tchain {chain} {{");
            if internal {
                if let Some(cip) = info.cluster_ip {
                    if net.masquerade_all {
                        let _ = writeln!(chains, "\t\t{kw} daddr {cip} {p} dport {} jump mark-for-masquerade", info.port);
                    } else if let Some(pods) = net.local_detector {
                        let _ = writeln!(chains, "\t\t{kw} daddr {cip} {p} dport {} {kw} saddr != {pods} jump mark-for-masquerade", info.port);
                    }
                }
            }
            if info.affinity_seconds.is_some() {
                for &i in set {
                    let ep = &ps.endpoints[i];
                    let _ = writeln!(chains, "\t\t{kw} saddr @{} goto {}", affinity_set(spn, ep), endpoint_chain(spn, ep));
                }
            }
            let elems: Vec<String> =
                set.iter().enumerate().map(|(k, &i)| format!("{k} : goto {}", endpoint_chain(spn, &ps.endpoints[i]))).collect();
            let _ = writeln!(chains, "\t\tnumgen random mod {} vmap {{ {} }}", set.len(), elems.join(" , "));
            chains.push_str("\t}\n");
        }
        for &i in ps.cat.reachable_or_empty() {
            let ep = &ps.endpoints[i];
            if let Some(secs) = info.affinity_seconds {
                let _ = writeln!(
                    sets,
                    "\tset {} {{\n\t\ttype {addr_ty}\n\t\tflags dynamic,timeout\n\t\ttimeout {secs}s\n\t}}",
                    affinity_set(spn, ep)
                );
            }
            let _ = writeln!(chains, "\tchain {} {{", endpoint_chain(spn, ep));
            let _ = writeln!(chains, "\t\t{kw} saddr {} jump mark-for-masquerade", ep.ip);
            if info.affinity_seconds.is_some() {
                let _ = writeln!(chains, "\t\tupdate @{} {{ {kw} saddr }}", affinity_set(spn, ep));
            }
            let _ = writeln!(chains, "\t\tmeta l4proto {p} dnat to {}", ep.endpoint);
            chains.push_str("\t}\n");
        }
    }

    let node_ips: Vec<String> = net
        .node_ips
        .iter()
        .filter(|ip| matches!((ip, family), (IpAddr::V4(_), IpFamily::V4) | (IpAddr::V6(_), IpFamily::V6)))
        .map(|ip| ip.to_string())
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "table {fam} kube-proxy {{\n\tcomment \"rules for kube-proxy\"");
    let _ = writeln!(out, "\tset cluster-ips {{\n\t\ttype {addr_ty}\n\t\tcomment \"Active ClusterIPs\"");
    if !cluster_ips.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", cluster_ips.join(", "));
    }
    out.push_str("\t}\n");
    let _ = writeln!(out, "\tset nodeport-ips {{\n\t\ttype {addr_ty}\n\t\tcomment \"IPs that accept NodePort traffic\"");
    if !node_ips.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", node_ips.join(", "));
    }
    out.push_str("\t}\n");
    out.push_str(&sets);
    let ipt = format!("{addr_ty} . inet_proto . inet_service");
    map_block(&mut out, "firewall-ips", &ipt, "destinations that are subject to LoadBalancerSourceRanges", &firewall_ips);
    map_block(&mut out, "no-endpoint-nodeports", "inet_proto . inet_service", "vmap to drop or reject packets to service nodeports with no endpoints", &no_ep_nodeports);
    map_block(&mut out, "no-endpoint-services", &ipt, "vmap to drop or reject packets to services with no endpoints", &no_ep_services);
    map_block(&mut out, "service-ips", &ipt, "ClusterIP, ExternalIP and LoadBalancer IP traffic", &service_ips);
    map_block(&mut out, "service-nodeports", "inet_proto . inet_service", "NodePort traffic", &service_nodeports);
    let _ = writeln!(
        out,
        "\tchain filter-prerouting {{\n\t\ttype filter hook prerouting priority dstnat - 10; policy accept;\n\t\tct state new jump firewall-check\n\t}}"
    );
    let _ = writeln!(
        out,
        "\tchain filter-input {{\n\t\ttype filter hook input priority -110; policy accept;\n\t\tct state new jump nodeport-endpoints-check\n\t\tct state new jump service-endpoints-check\n\t}}"
    );
    let _ = writeln!(
        out,
        "\tchain filter-forward {{\n\t\ttype filter hook forward priority -110; policy accept;\n\t\tct state new jump service-endpoints-check\n\t\tct state new jump cluster-ips-check\n\t}}"
    );
    let _ = writeln!(
        out,
        "\tchain filter-output {{\n\t\ttype filter hook output priority dstnat - 10; policy accept;\n\t\tct state new jump service-endpoints-check\n\t\tct state new jump firewall-check\n\t}}"
    );
    let _ = writeln!(out, "\tchain firewall-check {{\n\t\t{kw} daddr . meta l4proto . th dport vmap @firewall-ips\n\t}}");
    let _ = writeln!(out, "\tchain reject-chain {{\n\t\tcomment \"helper for @no-endpoint-services / @no-endpoint-nodeports\"\n\t\treject\n\t}}");
    let _ = writeln!(out, "\tchain cluster-ips-check {{\n\t\t{kw} daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"\n\t}}");
    let _ = writeln!(out, "\tchain service-endpoints-check {{\n\t\t{kw} daddr . meta l4proto . th dport vmap @no-endpoint-services\n\t}}");
    let _ = writeln!(
        out,
        "\tchain nodeport-endpoints-check {{\n\t\t{kw} daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports\n\t}}"
    );
    let _ = writeln!(out, "\tchain mark-for-masquerade {{\n\t\tmeta mark set meta mark or {MASQ_MARK:#x}\n\t}}");
    let _ = writeln!(
        out,
        "\tchain masquerading {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmeta mark & {MASQ_MARK:#x} == 0 return\n\t\tmeta mark set meta mark xor {MASQ_MARK:#x}\n\t\tmasquerade fully-random\n\t}}"
    );
    let _ = writeln!(
        out,
        "\tchain services {{\n\t\t{kw} daddr . meta l4proto . th dport vmap @service-ips\n\t\t{kw} daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports\n\t}}"
    );
    let _ = writeln!(out, "\tchain nat-prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}}");
    let _ = writeln!(out, "\tchain nat-output {{\n\t\ttype nat hook output priority dstnat; policy accept;\n\t\tjump services\n\t}}");
    out.push_str(&chains);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Protocol;

    #[test]
    fn names() {
        let spn = ServicePortName::new("ns1", "svc1", "p80", Protocol::Tcp);
        assert_eq!(service_chain(&spn), "service-ULMVA6XW-ns1/svc1/tcp/p80");
        let ep = Endpoint::new("10.180.0.1", 80).unwrap();
        assert_eq!(endpoint_chain(&spn, &ep), "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80");
    }

    #[test]
    fn numgen_is_uniform_and_in_range() {
        let mut rng = Rng::new(5);
        let mut c = [0usize; 7];
        for _ in 0..70_000 {
            c[numgen_random(&mut rng, 7)] += 1;
        }
        assert!(c.iter().all(|&x| (9_500..10_500).contains(&x)), "{c:?}");
        assert_eq!(numgen_random(&mut rng, 1), 0);
    }
}
