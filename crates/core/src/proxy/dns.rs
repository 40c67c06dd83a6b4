//! Cluster DNS (§12, the kubernetes/dns schema that CoreDNS implements), built from Services and their
//! EndpointSlices. kube-proxy takes no part in it.
//!
//! - ClusterIP Service: A/AAAA `svc.ns.svc.<zone>` → the ClusterIP, whatever the endpoints; SRV
//!   `_port._proto.svc.ns.svc.<zone>` per named port, pointing at the Service name; PTR for the ClusterIP.
//! - Headless Service: one A/AAAA per ready endpoint address (NXDOMAIN when none is ready); an endpoint
//!   with a hostname also answers `hostname.svc.ns.svc.<zone>`; SRV per (ready endpoint × named port),
//!   pointing at the hostname record (or the dashed-address name when there is no hostname).
//! - ExternalName: CNAME.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::LABEL_SERVICE_NAME;
use crate::ip::parse_ip_sloppy;

/// The usual cluster domain.
pub const DEFAULT_ZONE: &str = "cluster.local";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Record {
    A(IpAddr),
    Srv { priority: u16, weight: u16, port: u16, target: String },
    Cname(String),
    Ptr(String),
}

/// A query type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QType {
    /// A or AAAA (the family follows the address).
    A,
    Srv,
    Cname,
    Ptr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsError {
    NxDomain,
}

/// The records of a cluster, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterDns {
    pub zone: String,
    records: BTreeMap<String, BTreeSet<Record>>,
}

fn dashed(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string().replace('.', "-"),
        IpAddr::V6(a) => a.to_string().replace(':', "-"),
    }
}

/// The PTR name of an address (`4.3.2.1.in-addr.arpa.` style, without the final dot).
pub fn reverse_name(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let hex: String = a.octets().iter().map(|b| format!("{b:02x}")).collect();
            let mut parts: Vec<String> = hex.chars().rev().map(|c| c.to_string()).collect();
            parts.push("ip6.arpa".into());
            parts.join(".")
        }
    }
}

impl ClusterDns {
    pub fn build<S: std::borrow::Borrow<Service>, E: std::borrow::Borrow<EndpointSlice>>(services: &[S], slices: &[E], zone: &str) -> Self {
        let mut dns = ClusterDns { zone: zone.to_string(), records: BTreeMap::new() };
        for svc in services {
            let svc = svc.borrow();
            let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
            let Some(name) = svc.metadata.name.as_deref() else { continue };
            let Some(spec) = svc.spec.as_ref() else { continue };
            let fqdn = format!("{name}.{ns}.svc.{zone}");
            if spec.type_.as_deref() == Some("ExternalName") {
                if let Some(target) = spec.external_name.as_ref() {
                    dns.add(&fqdn, Record::Cname(target.clone()));
                }
                continue;
            }
            let cip = spec.cluster_ip.as_deref().unwrap_or("");
            if cip != "None" && !cip.is_empty() {
                let ips: Vec<&str> = match spec.cluster_ips.as_ref() {
                    Some(v) if !v.is_empty() => v.iter().map(String::as_str).collect(),
                    _ => vec![cip],
                };
                for ip in ips.iter().filter_map(|s| parse_ip_sloppy(s)) {
                    dns.add(&fqdn, Record::A(ip));
                    dns.add(&reverse_name(&ip), Record::Ptr(fqdn.clone()));
                }
                for p in spec.ports.iter().flatten() {
                    let Some(pname) = p.name.as_deref().filter(|n| !n.is_empty()) else { continue };
                    let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                    dns.add(
                        &format!("_{pname}._{proto}.{fqdn}"),
                        Record::Srv { priority: 0, weight: 100, port: p.port.clamp(0, 65535) as u16, target: fqdn.clone() },
                    );
                }
                continue;
            }
            // Headless: the ready endpoints of every slice of the Service.
            for s in slices {
                let s = s.borrow();
                if s.metadata.namespace.as_deref().unwrap_or("default") != ns
                    || s.metadata.labels.as_ref().and_then(|l| l.get(LABEL_SERVICE_NAME)).map(String::as_str) != Some(name)
                {
                    continue;
                }
                for ep in s.endpoints.iter().flatten() {
                    if !ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                        continue;
                    }
                    let addrs: Vec<IpAddr> = ep.addresses.iter().filter_map(|a| parse_ip_sloppy(a)).collect();
                    for ip in &addrs {
                        dns.add(&fqdn, Record::A(*ip));
                    }
                    let Some(first) = addrs.first() else { continue };
                    let host = match ep.hostname.as_deref().filter(|h| !h.is_empty()) {
                        Some(h) => {
                            let hn = format!("{h}.{fqdn}");
                            for ip in &addrs {
                                dns.add(&hn, Record::A(*ip));
                            }
                            hn
                        }
                        None => format!("{}.{fqdn}", dashed(first)),
                    };
                    for p in s.ports.iter().flatten() {
                        let Some(pname) = p.name.as_deref().filter(|n| !n.is_empty()) else { continue };
                        let Some(port) = p.port.filter(|p| (1..=65535).contains(p)) else { continue };
                        let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                        dns.add(
                            &format!("_{pname}._{proto}.{fqdn}"),
                            Record::Srv { priority: 0, weight: 100, port: port as u16, target: host.clone() },
                        );
                    }
                }
            }
        }
        dns
    }

    fn add(&mut self, name: &str, r: Record) {
        self.records.entry(name.to_ascii_lowercase()).or_default().insert(r);
    }

    /// Answer a query; NXDOMAIN when the name has no record of that type.
    pub fn lookup(&self, name: &str, q: QType) -> Result<Vec<Record>, DnsError> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let recs = self.records.get(&key).ok_or(DnsError::NxDomain)?;
        let out: Vec<Record> = recs
            .iter()
            .filter(|r| {
                matches!((q, r), (QType::A, Record::A(_)) | (QType::Srv, Record::Srv { .. }) | (QType::Cname, Record::Cname(_)) | (QType::Ptr, Record::Ptr(_)))
            })
            .cloned()
            .collect();
        if out.is_empty() {
            // An ExternalName answers any query with its CNAME.
            let cname: Vec<Record> = recs.iter().filter(|r| matches!(r, Record::Cname(_))).cloned().collect();
            if !cname.is_empty() {
                return Ok(cname);
            }
            return Err(DnsError::NxDomain);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(y: &str) -> Service {
        serde_yaml::from_str(y).unwrap()
    }

    fn slice(y: &str) -> EndpointSlice {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn cluster_ip_service() {
        let s = svc("metadata: {name: web, namespace: ns}\nspec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80}, {port: 81}]}");
        let d = ClusterDns::build(&[s], &[] as &[EndpointSlice], DEFAULT_ZONE);
        assert_eq!(d.lookup("web.ns.svc.cluster.local", QType::A), Ok(vec![Record::A("10.96.0.10".parse().unwrap())]));
        assert_eq!(
            d.lookup("_http._tcp.web.ns.svc.cluster.local.", QType::Srv),
            Ok(vec![Record::Srv { priority: 0, weight: 100, port: 80, target: "web.ns.svc.cluster.local".into() }])
        );
        assert_eq!(d.lookup("10.0.96.10.in-addr.arpa", QType::Ptr), Ok(vec![Record::Ptr("web.ns.svc.cluster.local".into())]));
        assert_eq!(d.lookup("other.ns.svc.cluster.local", QType::A), Err(DnsError::NxDomain));
    }

    #[test]
    fn headless_service_ready_endpoints_hostnames_and_nxdomain() {
        let s = svc("metadata: {name: db, namespace: ns}\nspec: {clusterIP: None, ports: [{name: pg, port: 5432}]}");
        let sl = slice("metadata: {name: db-1, namespace: ns, labels: {kubernetes.io/service-name: db}}\naddressType: IPv4\nports: [{name: pg, port: 5432, protocol: TCP}]\nendpoints:\n- {addresses: [10.0.0.1], hostname: db-0, conditions: {ready: true}}\n- {addresses: [10.0.0.2], conditions: {ready: true}}\n- {addresses: [10.0.0.3], conditions: {ready: false}}");
        let d = ClusterDns::build(std::slice::from_ref(&s), std::slice::from_ref(&sl), DEFAULT_ZONE);
        let a = d.lookup("db.ns.svc.cluster.local", QType::A).unwrap();
        assert_eq!(a, vec![Record::A("10.0.0.1".parse().unwrap()), Record::A("10.0.0.2".parse().unwrap())]);
        assert_eq!(d.lookup("db-0.db.ns.svc.cluster.local", QType::A).unwrap().len(), 1);
        let srv = d.lookup("_pg._tcp.db.ns.svc.cluster.local", QType::Srv).unwrap();
        assert_eq!(srv.len(), 2);
        let mut none = sl;
        for e in none.endpoints.iter_mut().flatten() {
            e.conditions = Some(k8s_openapi::api::discovery::v1::EndpointConditions { ready: Some(false), ..Default::default() });
        }
        let d = ClusterDns::build(&[s], &[none], DEFAULT_ZONE);
        assert_eq!(d.lookup("db.ns.svc.cluster.local", QType::A), Err(DnsError::NxDomain));
    }

    #[test]
    fn external_name_is_a_cname() {
        let s = svc("metadata: {name: ext, namespace: ns}\nspec: {type: ExternalName, externalName: db.example.com}");
        let d = ClusterDns::build(&[s], &[] as &[EndpointSlice], DEFAULT_ZONE);
        assert_eq!(d.lookup("ext.ns.svc.cluster.local", QType::A), Ok(vec![Record::Cname("db.example.com".into())]));
    }
}
