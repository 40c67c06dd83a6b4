//! Fixtures shared by the tests built from controller-tests.json, as its `fixtures` section describes them.
#![allow(dead_code)]

use serde_json::Value;
use slicelab_core::k8s_openapi::api::core::v1::{Pod, PodCondition, PodIP, PodSpec, PodStatus, Service, ServicePort, ServiceSpec};
use slicelab_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use slicelab_core::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub fn oracle(id: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/oracle/controller-tests.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("oracle file")).expect("JSON");
    all["cases"].as_array().expect("cases").iter().find(|c| c["id"] == id).cloned().expect("case exists")
}

pub fn svc_foo(ns: &str) -> Service {
    Service {
        metadata: ObjectMeta { name: Some("foo".into()), namespace: Some(ns.into()), uid: Some(format!("{ns}-foo")), ..Default::default() },
        spec: Some(ServiceSpec {
            selector: Some([("foo".to_string(), "bar".to_string())].into()),
            ip_families: Some(vec!["IPv4".into()]),
            ports: Some(vec![ServicePort {
                name: Some("foo".into()),
                port: 80,
                target_port: Some(IntOrString::Int(80)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

pub fn pod_n(ns: &str, n: u32, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("pod{n}")),
            namespace: Some(ns.into()),
            labels: Some([("foo".to_string(), "bar".to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec { node_name: Some("node-1".into()), containers: vec![Default::default()], ..Default::default() }),
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
            pod_ip: Some(format!("1.2.3.{}", 4 + n)),
            pod_ips: Some(vec![PodIP { ip: format!("1.2.3.{}", 4 + n) }]),
            ..Default::default()
        }),
    }
}
