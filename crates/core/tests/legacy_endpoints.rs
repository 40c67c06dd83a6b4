//! The legacy Endpoints controller against the oracle's `legacy_endpoints` cases (L01–L03 of
//! shared/oracle/controller-tests.json), row by row, plus its own rules.

use serde_json::Value;
use slicelab_core::controller::endpoints::{desired_subsets, repack_subsets, sync, truncate, EndpointsWrite};
use slicelab_core::fixtures;
use slicelab_core::k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use slicelab_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

fn case(id: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/oracle/controller-tests.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("oracle file")).expect("JSON");
    all["cases"].as_array().expect("cases").iter().find(|c| c["id"] == id).cloned().expect("case exists")
}

fn rows(id: &str) -> Vec<Value> {
    case(id)["expected"]["rows"].as_array().expect("rows").clone()
}

fn addr(i: usize) -> EndpointAddress {
    EndpointAddress { ip: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256), ..Default::default() }
}

fn nums(v: &Value) -> Vec<usize> {
    v.as_array().expect("list").iter().map(|x| x.as_u64().expect("number") as usize).collect()
}

#[test]
fn l01_truncate_endpoints() {
    for row in rows("L01") {
        let (ready, not_ready) = (nums(&row["ready"]), nums(&row["notReady"]));
        let mut next = 0;
        let mut subsets: Vec<EndpointSubset> = ready
            .iter()
            .zip(not_ready.iter())
            .map(|(&r, &n)| {
                let mut mk = |k: usize| {
                    (0..k)
                        .map(|_| {
                            next += 1;
                            addr(next)
                        })
                        .collect::<Vec<_>>()
                };
                EndpointSubset { addresses: Some(mk(r)), not_ready_addresses: Some(mk(n)), ports: None }
            })
            .collect();
        let before = subsets.clone();
        truncate(&mut subsets);
        let got_ready: Vec<usize> = subsets.iter().map(|s| s.addresses.as_ref().map_or(0, Vec::len)).collect();
        let got_nr: Vec<usize> = subsets.iter().map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len)).collect();
        assert_eq!(got_ready, nums(&row["out_ready"]), "L01 {}: ready", row["sub"]);
        assert_eq!(got_nr, nums(&row["out_notReady"]), "L01 {}: not ready", row["sub"]);
        // Truncation keeps each list's first elements.
        for (a, b) in subsets.iter().zip(before.iter()) {
            let (a, b) = (a.addresses.clone().unwrap_or_default(), b.addresses.clone().unwrap_or_default());
            assert_eq!(a[..], b[..a.len()]);
        }
    }
}

fn service(publish: bool) -> Service {
    let mut s = fixtures::service("foo");
    s.metadata.namespace = Some("default".into());
    let spec = s.spec.as_mut().expect("spec");
    spec.cluster_ip = Some("1.1.1.1".into());
    spec.selector = Some([("app".to_string(), "foo".to_string())].into());
    spec.publish_not_ready_addresses = Some(publish);
    s
}

fn pod(n: u32, ready: bool) -> Pod {
    let mut p = fixtures::pod("foo", n, "node-1", ready, &fixtures::pod_ip(n));
    p.metadata.namespace = Some("default".into());
    p
}

fn counts(ep: &Endpoints) -> (usize, usize) {
    ep.subsets.iter().flatten().fold((0, 0), |(r, n), s| {
        (r + s.addresses.as_ref().map_or(0, Vec::len), n + s.not_ready_addresses.as_ref().map_or(0, Vec::len))
    })
}

fn over_capacity(ep: &Endpoints) -> Option<String> {
    ep.metadata.annotations.as_ref().and_then(|a| a.get("endpoints.kubernetes.io/over-capacity").cloned())
}

#[test]
fn l02_sync_service_over_capacity() {
    for row in rows("L02") {
        let svc = service(false);
        let existing_n = row["existing"].as_u64().expect("n") as usize;
        let mut existing = Endpoints {
            metadata: ObjectMeta {
                name: Some("foo".into()),
                namespace: Some("default".into()),
                resource_version: Some("1".into()),
                annotations: row["start_annotation"]
                    .as_str()
                    .map(|v| [("endpoints.kubernetes.io/over-capacity".to_string(), v.to_string())].into()),
                ..Default::default()
            },
            subsets: Some(vec![EndpointSubset {
                addresses: Some((0..existing_n).map(|i| addr(100_000 + i)).collect()),
                ports: Some(vec![EndpointPort { name: Some("http".into()), port: 8080, protocol: Some("TCP".into()), ..Default::default() }]),
                ..Default::default()
            }]),
        };
        if existing_n == 0 {
            existing.subsets = None;
        }
        let ready_n = row["ready_pods"].as_u64().expect("n") as u32;
        let nr_n = row["notready_pods"].as_u64().expect("n") as u32;
        let pods: Vec<Pod> = (0..ready_n).map(|i| pod(i, true)).chain((0..nr_n).map(|i| pod(ready_n + i, false))).collect();
        let out = match sync(Some(&svc), &pods, Some(&existing)) {
            EndpointsWrite::Update(e) | EndpointsWrite::Create(e) => e,
            EndpointsWrite::None => existing.clone(),
            EndpointsWrite::Delete => panic!("L02 {}: unexpected delete", row["sub"]),
        };
        let (r, n) = counts(&out);
        assert_eq!(r, row["out_ready"].as_u64().expect("n") as usize, "L02 {}: ready", row["sub"]);
        assert_eq!(n, row["out_notReady"].as_u64().expect("n") as usize, "L02 {}: not ready", row["sub"]);
        let truncated = row["annotation_truncated"].as_bool().expect("bool");
        assert_eq!(over_capacity(&out).as_deref(), truncated.then_some("truncated"), "L02 {}: annotation", row["sub"]);
    }
}

#[test]
fn l03_sync_service_addresses() {
    for row in rows("L03") {
        let svc = service(row["pRNA"].as_bool().expect("bool"));
        let mut p = pod(0, row["ready"].as_bool().expect("bool"));
        p.metadata.name = Some("fakepod".into());
        if let Some(st) = p.status.as_mut() {
            st.phase = row["phase"].as_str().map(String::from);
            st.pod_ip = Some("10.1.1.1".into());
            st.pod_ips = Some(vec![slicelab_core::k8s_openapi::api::core::v1::PodIP { ip: "10.1.1.1".into() }]);
        }
        if row["deleting"].as_bool() == Some(true) {
            p.metadata.deletion_timestamp = Some(Time(slicelab_core::k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        }
        let out = match sync(Some(&svc), &[p], None) {
            EndpointsWrite::Create(e) => e,
            other => panic!("L03 {}: expected a create, got {other:?}", row["sub"]),
        };
        let (r, n) = counts(&out);
        assert_eq!(r, row["out_ready"].as_u64().expect("n") as usize, "L03 {}: ready", row["sub"]);
        assert_eq!(n, row["out_notReady"].as_u64().expect("n") as usize, "L03 {}: not ready", row["sub"]);
    }
}

#[test]
fn one_family_headless_without_ports_labels_and_no_rewrite() {
    // Dual-stack pods: only the Service's first family is used.
    let mut svc = service(false);
    svc.spec.as_mut().expect("spec").ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
    let mut p = pod(1, true);
    p.status.as_mut().expect("status").pod_ips =
        Some(vec![slicelab_core::k8s_openapi::api::core::v1::PodIP { ip: "10.0.0.9".into() }, slicelab_core::k8s_openapi::api::core::v1::PodIP { ip: "fd00::9".into() }]);
    let subsets = desired_subsets(&svc, &[p.clone()]);
    assert_eq!(subsets[0].addresses.as_ref().expect("ready")[0].ip, "fd00::9");
    // An IPv4-only pod is left out of an IPv6-first Service.
    assert!(desired_subsets(&svc, &[pod(2, true)]).is_empty());

    // Headless without ports: a port-less subset, and the headless label.
    let mut headless = service(false);
    let spec = headless.spec.as_mut().expect("spec");
    spec.cluster_ip = Some("None".into());
    spec.ports = None;
    let created = match sync(Some(&headless), &[pod(3, true)], None) {
        EndpointsWrite::Create(e) => e,
        other => panic!("{other:?}"),
    };
    let s = &created.subsets.as_ref().expect("subsets")[0];
    assert!(s.ports.is_none() && s.addresses.as_ref().map_or(0, Vec::len) == 1);
    assert_eq!(created.metadata.labels.as_ref().and_then(|l| l.get("service.kubernetes.io/headless")).map(String::as_str), Some(""));

    // Writing the same again is skipped (the headless label is ignored in the comparison).
    let mut stored = created.clone();
    stored.metadata.resource_version = Some("7".into());
    assert_eq!(sync(Some(&headless), &[pod(3, true)], Some(&stored)), EndpointsWrite::None);
    // ExternalName and selector-less Services get nothing; a deleted Service loses its object.
    let mut ext = service(false);
    ext.spec.as_mut().expect("spec").type_ = Some("ExternalName".into());
    assert_eq!(sync(Some(&ext), &[pod(4, true)], None), EndpointsWrite::None);
    assert_eq!(sync::<Pod>(None, &[], Some(&stored)), EndpointsWrite::Delete);
}

#[test]
fn repack_groups_ports_with_the_same_addresses_and_ready_wins() {
    let a = EndpointAddress { ip: "10.0.0.2".into(), ..Default::default() };
    let b = EndpointAddress { ip: "10.0.0.1".into(), ..Default::default() };
    let http = EndpointPort { name: Some("http".into()), port: 80, protocol: Some("TCP".into()), ..Default::default() };
    let dns = EndpointPort { name: Some("dns".into()), port: 53, protocol: Some("UDP".into()), ..Default::default() };
    let out = repack_subsets(&[
        EndpointSubset { addresses: Some(vec![a.clone()]), ports: Some(vec![http.clone()]), ..Default::default() },
        EndpointSubset { addresses: Some(vec![b.clone()]), ports: Some(vec![http.clone()]), ..Default::default() },
        EndpointSubset { addresses: Some(vec![a.clone(), b.clone()]), ports: Some(vec![dns.clone()]), ..Default::default() },
        EndpointSubset { not_ready_addresses: Some(vec![b.clone()]), ports: Some(vec![dns.clone()]), ..Default::default() },
    ]);
    assert_eq!(out.len(), 1, "{out:?}");
    let ips: Vec<&str> = out[0].addresses.as_ref().expect("ready").iter().map(|x| x.ip.as_str()).collect();
    assert_eq!(ips, vec!["10.0.0.1", "10.0.0.2"], "sorted by IP");
    assert!(out[0].not_ready_addresses.is_none(), "ready wins over not ready");
    assert_eq!(out[0].ports.as_ref().map_or(0, Vec::len), 2);
    // Ready wins whichever comes first.
    let not_ready_first = repack_subsets(&[
        EndpointSubset { not_ready_addresses: Some(vec![b.clone()]), ports: Some(vec![dns.clone()]), ..Default::default() },
        EndpointSubset { addresses: Some(vec![a.clone()]), ports: Some(vec![http.clone()]), ..Default::default() },
        EndpointSubset { addresses: Some(vec![b.clone()]), ports: Some(vec![http.clone()]), ..Default::default() },
        EndpointSubset { addresses: Some(vec![a.clone(), b.clone()]), ports: Some(vec![dns.clone()]), ..Default::default() },
    ]);
    assert_eq!(not_ready_first, out);
}

#[test]
fn shared_versions_share_unchanged_addresses_and_match_the_api_type() {
    use slicelab_core::controller::endpoints::{sync_shared, SharedEndpoints};
    use std::sync::Arc;
    let svc = service(false);
    let pods: Vec<Pod> = (0..6).map(|i| pod(i, i % 3 != 0)).collect();
    let first = match sync_shared(Some(&svc), &pods, None) {
        EndpointsWrite::Create(e) => e,
        other => panic!("expected a create, got {other:?}"),
    };
    // The shared form is the same object as the API type's path gives.
    assert_eq!(sync(Some(&svc), &pods, None), EndpointsWrite::Create(first.to_endpoints()));
    assert_eq!(SharedEndpoints::from(&first.to_endpoints()), first);
    assert_eq!(first.address_count(), 6);

    // One pod turns ready, one is gone: the next version shares every other address.
    let mut next_pods = pods.clone();
    next_pods[0] = pod(0, true);
    next_pods.remove(4);
    let second = match sync_shared(Some(&svc), &next_pods, Some(&first)) {
        EndpointsWrite::Update(e) => e,
        other => panic!("expected an update, got {other:?}"),
    };
    assert_eq!(sync(Some(&svc), &next_pods, Some(&first.to_endpoints())), EndpointsWrite::Update(second.to_endpoints()));
    let all = |e: &SharedEndpoints| -> Vec<Arc<EndpointAddress>> {
        e.subsets.iter().flatten().flat_map(|s| s.addresses.iter().flatten().chain(s.not_ready_addresses.iter().flatten())).cloned().collect()
    };
    let before = all(&first);
    let (mut shared, mut fresh) = (0, 0);
    for a in all(&second) {
        if before.iter().any(|b| Arc::ptr_eq(b, &a)) {
            shared += 1;
        } else {
            fresh += 1;
        }
    }
    // Pod 0 changed readiness but not its address: still shared. Pod 4 is gone; nothing new.
    assert_eq!((shared, fresh), (5, 0));

    // An address that differs in any field is not shared: the stored object carries a
    // resourceVersion in a targetRef (as a user's object may), so that address is made anew.
    let mut edited = first.to_endpoints();
    let subset = &mut edited.subsets.as_mut().expect("subsets")[0];
    let a = &mut subset.addresses.as_mut().expect("ready")[0];
    a.target_ref.as_mut().expect("ref").resource_version = Some("3".into());
    let edited = SharedEndpoints::from(&edited);
    let third = match sync_shared(Some(&svc), &pods, Some(&edited)) {
        EndpointsWrite::None => edited.clone(),
        EndpointsWrite::Update(e) => e,
        other => panic!("{other:?}"),
    };
    // The resourceVersion is ignored in the comparison, so nothing is written.
    assert_eq!(third, edited);
    let mut relabelled = svc.clone();
    relabelled.metadata.labels = Some([("tier".to_string(), "web".to_string())].into());
    let fourth = match sync_shared(Some(&relabelled), &pods, Some(&edited)) {
        EndpointsWrite::Update(e) => e,
        other => panic!("expected an update for the labels, got {other:?}"),
    };
    let edited_all = all(&edited);
    let fourth_all = all(&fourth);
    let fresh: Vec<_> = fourth_all.iter().filter(|a| !edited_all.iter().any(|b| Arc::ptr_eq(a, b))).collect();
    assert_eq!(fresh.len(), 1, "only the edited address is made anew");
    assert!(fresh[0].target_ref.as_ref().is_some_and(|r| r.resource_version.is_none()));
}
