//! The per-port view of a Service that kube-proxy works with: one [`ServicePortInfo`] per Service port,
//! for one IP family (§1), with the traffic-policy helpers of §4.1.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

use super::{Cidr, Protocol, ServicePortName, DEFAULT_AFFINITY_SECONDS, LABEL_SERVICE_PROXY_NAME};
use crate::ip::parse_ip_sloppy;
use crate::IpFamily;

/// One port of one Service, as one kube-proxy instance (one family) sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePortInfo {
    pub name: ServicePortName,
    /// The ClusterIP of this family (`None` only for hand-built inputs such as the oracle's categorize cases).
    pub cluster_ip: Option<IpAddr>,
    pub port: u16,
    pub protocol: Protocol,
    /// 0 when there is none.
    pub node_port: u16,
    pub external_ips: Vec<IpAddr>,
    /// LoadBalancer ingress IPs in VIP mode, of this family.
    pub load_balancer_vips: Vec<IpAddr>,
    pub load_balancer_source_ranges: Vec<Cidr>,
    /// ClientIP session affinity timeout, if the Service has affinity.
    pub affinity_seconds: Option<u32>,
    pub internal_policy_local: bool,
    pub external_policy_local: bool,
    /// 0 when there is none.
    pub health_check_node_port: u16,
    /// The legacy topology annotation (only read by the legacy gates).
    pub hints_annotation: Option<String>,
}

impl ServicePortInfo {
    /// A bare port: the categorize cases build services from flags like this.
    pub fn bare(name: ServicePortName) -> Self {
        ServicePortInfo {
            protocol: name.protocol,
            name,
            cluster_ip: None,
            port: 0,
            node_port: 0,
            external_ips: Vec::new(),
            load_balancer_vips: Vec::new(),
            load_balancer_source_ranges: Vec::new(),
            affinity_seconds: None,
            internal_policy_local: false,
            external_policy_local: false,
            health_check_node_port: 0,
            hints_annotation: None,
        }
    }

    /// §4.1: a NodePort, a VIP-mode LoadBalancer IP or an externalIP of this family.
    pub fn externally_accessible(&self) -> bool {
        self.node_port != 0 || !self.load_balancer_vips.is_empty() || !self.external_ips.is_empty()
    }

    /// §4.1: iTP is not Local, or the Service is reachable from outside (the short-circuit needs it).
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_policy_local || self.externally_accessible()
    }

    /// §4.1: iTP is Local, or eTP is Local on an externally reachable Service.
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_policy_local || (self.external_policy_local && self.externally_accessible())
    }

    /// eTP=Local that actually has an effect.
    pub fn external_local_effective(&self) -> bool {
        self.external_policy_local && self.externally_accessible()
    }
}

/// Why kube-proxy ignores a Service (§2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ignored {
    OtherProxy(String),
    ExternalName,
    Headless,
    NoClusterIpOfFamily,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ignored::OtherProxy(p) => write!(f, "belongs to the proxy {p:?}"),
            Ignored::ExternalName => write!(f, "type ExternalName"),
            Ignored::Headless => write!(f, "headless (clusterIP None)"),
            Ignored::NoClusterIpOfFamily => write!(f, "no ClusterIP of this family"),
        }
    }
}

fn family_matches(ip: &IpAddr, family: IpFamily) -> bool {
    matches!((ip, family), (IpAddr::V4(_), IpFamily::V4) | (IpAddr::V6(_), IpFamily::V6))
}

/// `ns/name` of an object.
pub fn service_key(svc: &Service) -> String {
    format!("{}/{}", svc.metadata.namespace.as_deref().unwrap_or("default"), svc.metadata.name.as_deref().unwrap_or(""))
}

/// The ports of a Service for one family, or why kube-proxy ignores it. Ports with a number outside
/// 1..65535 are left out (the API server would have rejected them).
pub fn service_ports(svc: &Service, family: IpFamily) -> Result<Vec<ServicePortInfo>, Ignored> {
    if let Some(p) = svc.metadata.labels.as_ref().and_then(|l| l.get(LABEL_SERVICE_PROXY_NAME)) {
        return Err(Ignored::OtherProxy(p.clone()));
    }
    let Some(spec) = svc.spec.as_ref() else { return Err(Ignored::Headless) };
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    if type_ == "ExternalName" {
        return Err(Ignored::ExternalName);
    }
    let primary = spec.cluster_ip.as_deref().unwrap_or("");
    if primary.is_empty() || primary == "None" {
        return Err(Ignored::Headless);
    }
    let mut candidates: Vec<&str> = spec.cluster_ips.iter().flatten().map(String::as_str).collect();
    if candidates.is_empty() {
        candidates.push(primary);
    }
    let cluster_ip = candidates
        .iter()
        .filter_map(|s| parse_ip_sloppy(s))
        .find(|ip| family_matches(ip, family))
        .ok_or(Ignored::NoClusterIpOfFamily)?;

    let namespace = svc.metadata.namespace.as_deref().unwrap_or("default");
    let name = svc.metadata.name.as_deref().unwrap_or("");
    let of_family = |list: &mut dyn Iterator<Item = &str>| -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = list.filter_map(parse_ip_sloppy).filter(|ip| family_matches(ip, family)).collect();
        v.dedup();
        v
    };
    let external_ips = of_family(&mut spec.external_ips.iter().flatten().map(String::as_str));
    let lb_vips = of_family(
        &mut svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter(|i| matches!(i.ip_mode.as_deref(), None | Some("VIP")))
            .filter_map(|i| i.ip.as_deref()),
    );
    let source_ranges: Vec<Cidr> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .filter_map(|r| Cidr::parse(r).ok())
        .filter(|c| family_matches(&c.addr, family))
        .collect();
    let affinity_seconds = if spec.session_affinity.as_deref() == Some("ClientIP") {
        Some(
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .filter(|t| *t > 0)
                .map(|t| t as u32)
                .unwrap_or(DEFAULT_AFFINITY_SECONDS),
        )
    } else {
        None
    };
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let hcnp = if type_ == "LoadBalancer" && external_local {
        spec.health_check_node_port.filter(|p| (1..=65535).contains(p)).unwrap_or(0) as u16
    } else {
        0
    };
    let hints_annotation = svc.metadata.annotations.as_ref().and_then(|a| {
        a.get(super::ANNOTATION_TOPOLOGY_MODE).or_else(|| a.get(super::ANNOTATION_TOPOLOGY_AWARE_HINTS)).cloned()
    });

    let mut out = Vec::new();
    for p in spec.ports.iter().flatten() {
        let Ok(protocol) = Protocol::parse(p.protocol.as_deref()) else { continue };
        if !(1..=65535).contains(&p.port) {
            continue;
        }
        let spn = ServicePortName::new(namespace, name, p.name.as_deref().unwrap_or(""), protocol);
        out.push(ServicePortInfo {
            name: spn,
            cluster_ip: Some(cluster_ip),
            port: p.port as u16,
            protocol,
            node_port: p.node_port.filter(|n| (1..=65535).contains(n)).unwrap_or(0) as u16,
            external_ips: external_ips.clone(),
            load_balancer_vips: lb_vips.clone(),
            load_balancer_source_ranges: source_ranges.clone(),
            affinity_seconds,
            internal_policy_local: internal_local,
            external_policy_local: external_local,
            health_check_node_port: hcnp,
            hints_annotation: hints_annotation.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(yaml: &str) -> Service {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn ignored_services() {
        let s = svc("metadata: {name: a, namespace: n}\nspec: {type: ExternalName, externalName: x.example}");
        assert_eq!(service_ports(&s, IpFamily::V4), Err(Ignored::ExternalName));
        let s = svc("metadata: {name: a, namespace: n}\nspec: {clusterIP: None, ports: [{port: 80}]}");
        assert_eq!(service_ports(&s, IpFamily::V4), Err(Ignored::Headless));
        let s = svc("metadata: {name: a, namespace: n, labels: {service.kubernetes.io/service-proxy-name: other}}\nspec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}");
        assert!(matches!(service_ports(&s, IpFamily::V4), Err(Ignored::OtherProxy(_))));
        let s = svc("metadata: {name: a, namespace: n}\nspec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}");
        assert_eq!(service_ports(&s, IpFamily::V6), Err(Ignored::NoClusterIpOfFamily));
    }

    #[test]
    fn ports_and_policies() {
        let s = svc("metadata: {name: a, namespace: n}\nspec:\n  type: LoadBalancer\n  clusterIP: 10.0.0.1\n  clusterIPs: [10.0.0.1, fd00::1]\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 30000\n  externalIPs: [1.1.1.1, fd00::9]\n  sessionAffinity: ClientIP\n  ports: [{name: http, port: 80, nodePort: 30080}, {name: dns, port: 53, protocol: UDP}]\nstatus: {loadBalancer: {ingress: [{ip: 5.6.7.8}, {ip: 9.9.9.9, ipMode: Proxy}]}}");
        let v4 = service_ports(&s, IpFamily::V4).unwrap();
        assert_eq!(v4.len(), 2);
        assert_eq!(v4[0].external_ips, vec!["1.1.1.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(v4[0].load_balancer_vips, vec!["5.6.7.8".parse::<IpAddr>().unwrap()]);
        assert_eq!(v4[0].affinity_seconds, Some(10800));
        assert_eq!(v4[0].health_check_node_port, 30000);
        assert!(v4[0].uses_local_endpoints() && v4[0].uses_cluster_endpoints());
        assert_eq!(v4[1].protocol, Protocol::Udp);
        let v6 = service_ports(&s, IpFamily::V6).unwrap();
        assert_eq!(v6[0].cluster_ip, Some("fd00::1".parse().unwrap()));
        assert!(v6[0].load_balancer_vips.is_empty());
    }

    #[test]
    fn etp_local_without_external_access_has_no_effect() {
        let mut p = ServicePortInfo::bare(ServicePortName::new("n", "s", "", Protocol::Tcp));
        p.external_policy_local = true;
        assert!(!p.uses_local_endpoints());
        assert!(p.uses_cluster_endpoints());
        p.internal_policy_local = true;
        assert!(!p.uses_cluster_endpoints());
        p.node_port = 30000;
        assert!(p.uses_cluster_endpoints());
    }
}
