//! Building realistic objects in code: a Service, Nodes spread over zones and ready Pods, the way a
//! cluster would hold them. Used by benchmarks, the first page and tests.


use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Node, NodeCondition, NodeStatus, Pod, PodCondition, PodIP, PodSpec, PodStatus, Service,
    ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controller::LABEL_ZONE;

/// A ClusterIP Service `name` in `default` selecting `app=<name>`, port 80 → 8080 named `http`.
pub fn service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-svc-{name}")),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(crate::sort::map([("app".to_string(), name.to_string())])),
            cluster_ip: Some("10.96.0.10".into()),
            cluster_ips: Some(vec!["10.96.0.10".into()]),
            ip_families: Some(vec!["IPv4".into()]),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(8080)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            type_: Some("ClusterIP".into()),
            ..Default::default()
        }),
        status: None,
    }
}

/// A Ready node in a zone with the given allocatable CPU.
pub fn node(name: &str, zone: &str, cpu: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(crate::sort::map([
                ("kubernetes.io/hostname".to_string(), name.to_string()),
                (LABEL_ZONE.to_string(), zone.to_string()),
            ])),
            ..Default::default()
        },
        spec: None,
        status: Some(NodeStatus {
            allocatable: Some(crate::sort::map([("cpu".to_string(), Quantity(cpu.into()))])),
            conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
            ..Default::default()
        }),
    }
}

/// `per_zone` nodes in each of `zones` zones named `zone-a`, `zone-b`, …: `node-<zone>-<i>`.
pub fn nodes(zones: usize, per_zone: usize) -> Vec<Node> {
    (0..zones)
        .flat_map(|z| {
            let zone = zone_name(z);
            (0..per_zone).map(move |i| node(&format!("node-{zone}-{i}"), &zone, "4"))
        })
        .collect()
}

/// `zone-a`, `zone-b`, … `zone-z`, then `zone-26`, ….
pub fn zone_name(i: usize) -> String {
    if i < 26 {
        format!("zone-{}", (b'a' + i as u8) as char)
    } else {
        format!("zone-{i}")
    }
}

/// The IPv4 address of pod number `n` (10.1.0.1 upwards, skipping .0 and .255 octets).
pub fn pod_ip(n: u32) -> String {
    let host = n + 1;
    format!("10.{}.{}.{}", 1 + (host / 65536) % 254, (host / 256) % 256, host % 256)
}

/// Pod `<app>-<n>` labelled `app=<app>`, on `node`, with the given readiness and IP.
pub fn pod(app: &str, n: u32, node: &str, ready: bool, ip: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{app}-{n}")),
            namespace: Some("default".into()),
            uid: Some(format!("uid-pod-{app}-{n}")),
            labels: Some(crate::sort::map([("app".to_string(), app.to_string())])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                ports: Some(vec![ContainerPort {
                    name: Some("http".into()),
                    container_port: 8080,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            node_name: Some(node.into()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            pod_ip: Some(ip.into()),
            pod_ips: Some(vec![PodIP { ip: ip.into() }]),
            ..Default::default()
        }),
    }
}

/// `count` ready pods numbered from `first`, spread round-robin over `nodes`.
pub fn pods(app: &str, first: u32, count: u32, nodes: &[Node]) -> Vec<Pod> {
    (first..first + count)
        .map(|n| {
            let node = nodes
                .get(n as usize % nodes.len().max(1))
                .and_then(|nd| nd.metadata.name.as_deref())
                .unwrap_or("node-0");
            pod(app, n, node, true, &pod_ip(n))
        })
        .collect()
}
