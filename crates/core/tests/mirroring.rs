//! The mirroring controller (§13): custom Endpoints of selector-less Services become slices.

use slicelab_core::controller::mirroring::{sync, DEFAULT_MAX_PER_SUBSET};
use slicelab_core::controller::reconciler::Verb;
use slicelab_core::controller::store::SliceStore;
use slicelab_core::fixtures;
use slicelab_core::k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service};
use slicelab_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn selectorless() -> Service {
    let mut s = fixtures::service("db");
    s.spec.as_mut().expect("spec").selector = None;
    s
}

fn endpoints(ready: &[&str], not_ready: &[&str]) -> Endpoints {
    let a = |ips: &[&str]| (!ips.is_empty()).then(|| ips.iter().map(|ip| EndpointAddress { ip: ip.to_string(), ..Default::default() }).collect());
    Endpoints {
        metadata: ObjectMeta {
            name: Some("db".into()),
            namespace: Some("default".into()),
            uid: Some("uid-ep-db".into()),
            labels: Some([("team".to_string(), "data".to_string())].into()),
            annotations: Some([("endpoints.kubernetes.io/last-change-trigger-time".to_string(), "x".to_string())].into()),
            ..Default::default()
        },
        subsets: Some(vec![EndpointSubset {
            addresses: a(ready),
            not_ready_addresses: a(not_ready),
            ports: Some(vec![EndpointPort { name: Some("pg".into()), port: 5432, protocol: Some("TCP".into()), ..Default::default() }]),
        }]),
    }
}

fn apply(store: &mut SliceStore, svc: &Service, ep: Option<&Endpoints>) -> (usize, usize, usize) {
    let existing: Vec<_> = store.all().cloned().collect();
    let r = sync(Some(svc), ep, &existing, DEFAULT_MAX_PER_SUBSET);
    store.apply(&r.calls);
    let n = |v: Verb| r.calls.iter().filter(|c| c.verb == v).count();
    (n(Verb::Create), n(Verb::Update), n(Verb::Delete))
}

#[test]
fn mirrors_one_slice_per_family_and_updates_only_on_change() {
    let svc = selectorless();
    let mut store = SliceStore::new(1);
    let ep = endpoints(&["10.0.0.1", "fd00::1"], &["10.0.0.2"]);
    assert_eq!(apply(&mut store, &svc, Some(&ep)), (2, 0, 0));
    let slices: Vec<_> = store.all().cloned().collect();
    let v4 = slices.iter().find(|s| s.address_type == "IPv4").expect("IPv4 slice");
    let eps = v4.endpoints.as_ref().expect("endpoints");
    assert_eq!(eps.len(), 2);
    assert_eq!(eps[0].conditions.as_ref().and_then(|c| c.ready), Some(true));
    assert_eq!(eps[1].conditions.as_ref().and_then(|c| c.ready), Some(false));
    assert!(eps[0].conditions.as_ref().and_then(|c| c.serving).is_none(), "only ready is set");
    let labels = v4.metadata.labels.as_ref().expect("labels");
    assert_eq!(labels.get("endpointslice.kubernetes.io/managed-by").map(String::as_str), Some("endpointslicemirroring-controller.k8s.io"));
    assert_eq!(labels.get("team").map(String::as_str), Some("data"));
    assert!(v4.metadata.annotations.is_none(), "the trigger time is not copied");
    assert_eq!(v4.metadata.owner_references.as_ref().expect("owner")[0].kind, "Endpoints");
    // The same again: nothing. A change: one update.
    assert_eq!(apply(&mut store, &svc, Some(&ep)), (0, 0, 0));
    assert_eq!(apply(&mut store, &svc, Some(&endpoints(&["10.0.0.1", "fd00::1"], &[]))), (0, 1, 0));
    // IPv6 gone, IPv4 on another port: the IPv6 slice is deleted.
    assert_eq!(apply(&mut store, &svc, Some(&endpoints(&["10.0.0.1"], &[]))), (0, 0, 1));
}

#[test]
fn not_mirrored_when_selected_skipped_or_gone() {
    let mut store = SliceStore::new(1);
    let ep = endpoints(&["10.0.0.1"], &[]);
    assert_eq!(apply(&mut store, &selectorless(), Some(&ep)), (1, 0, 0));
    let mut skip = ep.clone();
    skip.metadata.labels.as_mut().expect("labels").insert("endpointslice.kubernetes.io/skip-mirror".into(), "true".into());
    assert_eq!(apply(&mut store, &selectorless(), Some(&skip)), (0, 0, 1));
    assert_eq!(apply(&mut store, &selectorless(), Some(&ep)), (1, 0, 0));
    assert_eq!(apply(&mut store, &fixtures::service("db"), Some(&ep)), (0, 0, 1), "a Service with a selector");
    assert_eq!(apply(&mut store, &selectorless(), Some(&ep)), (1, 0, 0));
    assert_eq!(apply(&mut store, &selectorless(), None), (0, 0, 1), "Endpoints deleted");
}

#[test]
fn invalid_ips_are_skipped_with_a_warning_and_subsets_are_capped() {
    let svc = selectorless();
    let ep = endpoints(&["10.0.0.1", "not-an-ip"], &["10.0.0.3"]);
    let r = sync(Some(&svc), Some(&ep), &[], 2);
    let slice = &r.calls[0].slice;
    let ips: Vec<&str> = slice.endpoints.as_ref().expect("eps").iter().map(|e| e.addresses[0].as_str()).collect();
    assert_eq!(ips, vec!["10.0.0.1"], "ready first, cap 2 counts the invalid one, which is then skipped");
    assert!(r.events.iter().any(|e| e.type_ == "Warning" && e.message.contains("invalid")));
    assert!(r.events.iter().any(|e| e.message.contains("3 addresses")));
}
