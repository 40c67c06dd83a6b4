//! Cases of shared/oracle/controller-tests.json (transcribed from the real Go tests), built with the
//! fixtures the file describes and run through the real code. One test per case id where the case
//! is prose; table cases loop over their rows read from the file.

mod common;
use common::{oracle, pod_n, svc_foo};
use std::collections::BTreeMap;
use slicelab_core::vecmap::VecMap;

use serde_json::Value;
use slicelab_core::controller::desired::{address_types_for_service, pod_to_endpoint, AddressType};
use slicelab_core::controller::plan::eps;
use slicelab_core::controller::reconciler::{ReconcileResult, Reconciler, ReconcilerOptions, Verb};
use slicelab_core::controller::slices::owner_ref;
use slicelab_core::controller::store::SliceStore;
use slicelab_core::controller::topology::{giving_and_receiving_zones, hints_enabled, redistribute_hints, ZoneCounts};
use slicelab_core::k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Pod, PodIP, Service, ServicePort};
use slicelab_core::k8s_openapi::api::discovery::v1::{EndpointHints, EndpointPort, EndpointSlice, ForZone};
use slicelab_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use slicelab_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use slicelab_core::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;


// ---- fixtures, as the file's `fixtures` section describes them ----



fn mod3_pods(ns: &str, range: std::ops::Range<u32>) -> Vec<Pod> {
    range.map(|i| pod_n(ns, i, i % 3 != 0)).collect()
}

fn node_plain(name: &str) -> Node {
    Node { metadata: ObjectMeta { name: Some(name.into()), ..Default::default() }, ..Default::default() }
}

fn node_zone(name: &str, zone: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("topology.kubernetes.io/zone".to_string(), zone.to_string())].into()),
            ..Default::default()
        },
        spec: None,
        status: Some(NodeStatus {
            allocatable: Some([("cpu".to_string(), Quantity("100m".into()))].into()),
            conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
            ..Default::default()
        }),
    }
}

fn foo_port() -> EndpointPort {
    EndpointPort { name: Some("foo".into()), port: Some(80), protocol: Some("TCP".into()), app_protocol: None }
}

/// An existing slice owned by `svc` holding the desired endpoints of `pods` (with `nodes`).
fn existing(svc: &Service, name: &str, pods: &[&Pod], nodes: &[Node], labels: Option<BTreeMap<String, String>>) -> EndpointSlice {
    let node = |p: &Pod| nodes.iter().find(|n| n.metadata.name.as_deref() == p.spec.as_ref().and_then(|s| s.node_name.as_deref()));
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: svc.metadata.namespace.clone(),
            owner_references: Some(vec![owner_ref(svc)]),
            labels,
            generation: Some(1),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(pods.iter().map(|p| pod_to_endpoint(p, node(p), svc, AddressType::IPv4)).collect()),
        ports: Some(vec![foo_port()]),
    }
}

struct Run {
    result: ReconcileResult,
    slices: Vec<EndpointSlice>,
}

fn run(svc: &Service, pods: &[Pod], nodes: &[Node], existing: &[EndpointSlice], max: usize) -> Run {
    let mut r = Reconciler::new(ReconcilerOptions { max_endpoints_per_slice: max, ..Default::default() });
    r.set_nodes(nodes);
    let result = r.reconcile(svc, pods, nodes, existing);
    let mut store = SliceStore::with_slices(1, existing);
    store.apply(&result.calls);
    Run { result, slices: store.all().cloned().collect() }
}

fn writes(r: &ReconcileResult) -> (usize, usize, usize) {
    (r.count(Verb::Create), r.count(Verb::Update), r.count(Verb::Delete))
}

fn lengths(slices: &[EndpointSlice]) -> Vec<usize> {
    let mut v: Vec<usize> = slices.iter().map(|s| eps(s).len()).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort();
    v
}

fn expected_lengths(id: &str) -> Vec<usize> {
    sorted(oracle(id)["expected"]["slice_lengths"].as_array().expect("lengths").iter().map(|x| x.as_u64().expect("n") as usize).collect())
}

fn expected_writes(id: &str) -> (usize, usize, usize) {
    let w = &oracle(id)["expected"]["api_writes"];
    let n = |k: &str| w[k].as_u64().expect("count") as usize;
    (n("create"), n("update"), n("delete"))
}

fn metric(r: &ReconcileResult, f: impl Fn(&slicelab_core::controller::reconciler::SyncMetrics) -> usize) -> usize {
    r.metrics.iter().map(f).sum()
}

fn n1() -> Vec<Node> {
    vec![node_plain("node-1")]
}

// ---- reconcile cases ----

#[test]
fn r01_r10_empty_service_gets_a_placeholder() {
    for id in ["R01", "R10"] {
        let r = run(&svc_foo("test"), &[], &n1(), &[], 100);
        assert_eq!(writes(&r.result), expected_writes(id), "{id}");
        assert_eq!(lengths(&r.slices), vec![0], "{id}");
        assert_eq!(r.slices[0].ports.as_deref().unwrap_or(&[]).len(), 0, "{id}: no ports");
        assert_eq!(r.result.metrics[0].desired_slices, 1);
        assert_eq!(r.result.metrics[0].actual_slices, 1);
    }
}

#[test]
fn r11_placeholder_that_is_the_same_is_kept() {
    let svc = svc_foo("test");
    let first = run(&svc, &[], &n1(), &[], 100);
    let r = run(&svc, &[], &n1(), &first.slices, 100);
    assert_eq!(writes(&r.result), expected_writes("R11"));
}

#[test]
fn r12_different_placeholder_is_recycled_into_one_update() {
    let svc = svc_foo("test");
    let mut s = existing(&svc, "foo-1", &[], &n1(), Some([("bar".to_string(), "baz".to_string())].into()));
    s.endpoints = Some(vec![]);
    let r = run(&svc, &[], &n1(), &[s], 100);
    assert_eq!(writes(&r.result), expected_writes("R12"));
    assert_eq!(r.slices.len(), 1);
}

#[test]
fn r13_publish_not_ready_addresses_makes_every_endpoint_ready() {
    let mut svc = svc_foo("test");
    svc.spec.as_mut().expect("spec").publish_not_ready_addresses = Some(true);
    let r = run(&svc, &mod3_pods("test", 0..50), &n1(), &[], 100);
    assert_eq!(writes(&r.result), expected_writes("R13"));
    assert_eq!(lengths(&r.slices), expected_lengths("R13"));
    assert!(r.slices.iter().flat_map(|s| eps(s)).all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true)));
}

#[test]
fn r14_many_pods() {
    let r = run(&svc_foo("test"), &mod3_pods("test", 0..250), &n1(), &[], 100);
    assert_eq!(writes(&r.result), expected_writes("R14"));
    assert_eq!(lengths(&r.slices), expected_lengths("R14"));
    assert_eq!(metric(&r.result, |m| m.added), 250);
}

#[test]
fn r15_some_preexisting() {
    let svc = svc_foo("test");
    let pods = mod3_pods("test", 0..250);
    let pick = |start: usize, end: usize| pods.iter().take(end + 1).skip(start).step_by(4).collect::<Vec<_>>();
    let s1 = existing(&svc, "foo-1", &pick(1, 245), &n1(), None);
    let s2 = existing(&svc, "foo-2", &pick(3, 243), &n1(), None);
    assert_eq!((eps(&s1).len(), eps(&s2).len()), (62, 61));
    let r = run(&svc, &pods, &n1(), &[s1, s2], 100);
    assert_eq!(writes(&r.result), expected_writes("R15"));
    assert_eq!(lengths(&r.slices), expected_lengths("R15"));
    let order: Vec<Verb> = r.result.calls.iter().map(|c| c.verb).collect();
    assert_eq!(order, vec![Verb::Create, Verb::Update], "creates go out before updates");
    assert_eq!(metric(&r.result, |m| m.added), 127);
    assert_eq!(r.result.metrics[0].desired_slices, 3);
}

#[test]
fn r16_some_preexisting_worse_allocation() {
    let svc = svc_foo("test");
    let pods = mod3_pods("test", 0..300);
    let pick = |start: usize, end: usize| pods.iter().take(end + 1).skip(start).step_by(4).collect::<Vec<_>>();
    let s1 = existing(&svc, "foo-1", &pick(1, 293), &n1(), None);
    let s2 = existing(&svc, "foo-2", &pick(3, 295), &n1(), None);
    let r = run(&svc, &pods, &n1(), &[s1, s2], 100);
    assert_eq!(writes(&r.result), expected_writes("R16"));
    assert_eq!(lengths(&r.slices), expected_lengths("R16"));
    assert_eq!((r.result.metrics[0].desired_slices, r.result.metrics[0].actual_slices), (3, 4));
}

fn two_steps(change: impl Fn(&mut Service)) -> (Run, Run) {
    let svc = svc_foo("test");
    let pods = mod3_pods("test", 0..250);
    let step1 = run(&svc, &pods, &n1(), &[], 100);
    let mut svc2 = svc.clone();
    change(&mut svc2);
    let step2 = run(&svc2, &pods, &n1(), &step1.slices, 100);
    (step1, step2)
}

#[test]
fn r17_target_port_change_recycles_into_updates() {
    let (s1, s2) = two_steps(|s| {
        s.spec.as_mut().expect("spec").ports.as_mut().expect("ports")[0].target_port = Some(IntOrString::Int(81));
    });
    assert_eq!(writes(&s1.result), (3, 0, 0));
    assert_eq!(writes(&s2.result), (0, 3, 0));
    assert_eq!(lengths(&s2.slices), vec![50, 100, 100]);
    assert!(s2.slices.iter().all(|s| s.ports.as_ref().expect("ports")[0].port == Some(81)));
}

#[test]
fn r18_service_labels_update_every_slice() {
    let (_, s2) = two_steps(|s| s.metadata.labels = Some([("foo".to_string(), "bar".to_string())].into()));
    assert_eq!(writes(&s2.result), (0, 3, 0));
    assert!(s2.slices.iter().all(|s| s.metadata.labels.as_ref().and_then(|l| l.get("foo")).map(String::as_str) == Some("bar")));
}

#[test]
fn r19_reserved_labels_on_the_service_change_nothing() {
    let (_, s2) = two_steps(|s| {
        s.metadata.labels = Some(
            [
                ("kubernetes.io/service-name".to_string(), "bad".to_string()),
                ("endpointslice.kubernetes.io/managed-by".to_string(), "actor".to_string()),
                ("service.kubernetes.io/headless".to_string(), "invalid".to_string()),
            ]
            .into(),
        )
    });
    assert_eq!(writes(&s2.result), (0, 0, 0));
}

#[test]
fn r20_recycling_ten_small_slices_after_a_port_change() {
    let svc = svc_foo("test");
    let pods = mod3_pods("test", 0..300);
    let slices: Vec<EndpointSlice> = (0..10)
        .map(|k| existing(&svc, &format!("foo-{k}"), &pods[k * 30..k * 30 + 30].iter().collect::<Vec<_>>(), &n1(), None))
        .collect();
    let first = run(&svc, &pods, &n1(), &slices, 100);
    assert_eq!(writes(&first.result), (0, 0, 0), "no repacking of under-filled slices");
    let mut svc2 = svc.clone();
    svc2.spec.as_mut().expect("spec").ports.as_mut().expect("ports")[0].target_port = Some(IntOrString::Int(81));
    let r = run(&svc2, &pods, &n1(), &slices, 100);
    assert_eq!(writes(&r.result), (0, 3, 7));
    assert_eq!(lengths(&r.slices), vec![100, 100, 100]);
    assert_eq!(metric(&r.result, |m| m.removed), 0, "endpoints of dropped port maps are not counted as removed");
}

#[test]
fn r21_update_packing_tops_up_the_largest_slice_being_updated() {
    let svc = svc_foo("test");
    let mut pods: Vec<Pod> = (0..80).chain(100..120).map(|i| pod_n("test", i, true)).collect();
    let s1 = existing(&svc, "foo-1", &pods[0..80].iter().collect::<Vec<_>>(), &n1(), None);
    let s2 = existing(&svc, "foo-2", &pods[80..100].iter().collect::<Vec<_>>(), &n1(), None);
    for (i, p) in pods.iter_mut().enumerate() {
        if i % 10 == 0 {
            *p = pod_n("test", p.metadata.name.as_deref().unwrap_or("")[3..].parse().expect("n"), false);
        }
    }
    pods.extend((200..215).map(|i| pod_n("test", i, true)));
    let r = run(&svc, &pods, &n1(), &[s1, s2], 100);
    assert_eq!(writes(&r.result), expected_writes("R21"));
    assert_eq!(lengths(&r.slices), sorted(vec![95, 20]));
}

#[test]
fn r22_deprecated_ip_address_type_is_replaced_and_deleted_last() {
    let svc = svc_foo("test");
    let pods: Vec<Pod> = (0..80).chain(100..150).map(|i| pod_n("test", i, true)).collect();
    let mut s1 = existing(&svc, "foo-1", &pods[0..80].iter().collect::<Vec<_>>(), &n1(), None);
    let mut s2 = existing(&svc, "foo-2", &pods[80..130].iter().collect::<Vec<_>>(), &n1(), None);
    s1.address_type = "IP".into();
    s2.address_type = "IP".into();
    let r = run(&svc, &pods, &n1(), &[s1, s2], 100);
    let verbs: Vec<Verb> = r.result.calls.iter().map(|c| c.verb).collect();
    assert_eq!(verbs[verbs.len() - 2..], [Verb::Delete, Verb::Delete]);
    assert_eq!(writes(&r.result), (2, 0, 2));
    assert_eq!(lengths(&r.slices), vec![30, 100]);
    assert!(r.slices.iter().all(|s| s.address_type == "IPv4"));
}

#[test]
fn r23_r24_recreation_owned_and_not_owned() {
    let svc = svc_foo("test");
    let pods = vec![pod_n("test", 1, true)];
    let owned = existing(&svc, "foo-1", &[&pods[0]], &n1(), None);
    assert_eq!(writes(&run(&svc, &pods, &n1(), &[owned.clone()], 100).result), expected_writes("R23"));
    let mut other = owned;
    other.metadata.owner_references.as_mut().expect("refs")[0].uid = "different".into();
    let r = run(&svc, &pods, &n1(), &[other], 100);
    assert_eq!(writes(&r.result), expected_writes("R24"));
    let verbs: Vec<Verb> = r.result.calls.iter().map(|c| c.verb).collect();
    assert_eq!(verbs, vec![Verb::Create, Verb::Delete]);
    assert_eq!(r.slices.len(), 1);
}

#[test]
fn r25_named_ports_make_one_slice_per_port_number() {
    let mut svc = svc_foo("test");
    svc.metadata.name = Some("named-port-example".into());
    svc.spec.as_mut().expect("spec").ports = Some(vec![ServicePort {
        port: 80,
        target_port: Some(IntOrString::String("http".into())),
        protocol: Some("TCP".into()),
        ..Default::default()
    }]);
    let pods: Vec<Pod> = mod3_pods("test", 0..300)
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            p.spec.as_mut().expect("spec").containers[0].ports = Some(vec![slicelab_core::k8s_openapi::api::core::v1::ContainerPort {
                name: Some("http".into()),
                container_port: 8080 + (i as i32 % 5),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]);
            p
        })
        .collect();
    let r = run(&svc, &pods, &n1(), &[], 100);
    assert_eq!(writes(&r.result), expected_writes("R25"));
    assert_eq!(lengths(&r.slices), expected_lengths("R25"));
    let mut ports: Vec<i32> = r.slices.iter().map(|s| s.ports.as_ref().expect("ports")[0].port.unwrap_or(0)).collect();
    ports.sort();
    assert_eq!(ports, vec![8080, 8081, 8082, 8083, 8084]);
    assert!(r.slices.iter().all(|s| s.ports.as_ref().expect("ports")[0].name.as_deref() == Some("")));
}

#[test]
fn r26_to_r30_max_endpoints_per_slice() {
    for (id, max) in [("R26", 50), ("R27", 80), ("R28", 150), ("R29", 250), ("R30", 500)] {
        let r = run(&svc_foo("test"), &mod3_pods("test", 0..250), &n1(), &[], max);
        assert_eq!(lengths(&r.slices), expected_lengths(id), "{id}");
        let m = &oracle(id)["expected"]["metrics"];
        assert_eq!(r.result.metrics[0].desired_slices as u64, m["desiredSlices"].as_u64().expect("n"), "{id}");
    }
}

#[test]
fn r31_metrics_over_two_steps() {
    let svc = svc_foo("test");
    let pods: Vec<Pod> = (0..20).map(|i| pod_n("test", i, true)).collect();
    let s1 = run(&svc, &pods, &n1(), &[], 100);
    assert_eq!(writes(&s1.result), (1, 0, 0));
    let s2 = run(&svc, &pods[..10], &n1(), &s1.slices, 100);
    assert_eq!(writes(&s2.result), (0, 1, 0));
    assert_eq!(metric(&s2.result, |m| m.removed), 10);
    assert_eq!(s2.result.metrics[0].desired_endpoints, 10);
}

#[test]
fn r32_r33_added_and_removed_per_sync() {
    let svc = svc_foo("test");
    let p1 = pod_n("test", 1, true);
    let s = existing(&svc, "foo-1", &[&p1], &n1(), None);
    let r = run(&svc, &[p1.clone(), pod_n("test", 2, true)], &n1(), &[s], 100);
    assert_eq!(metric(&r.result, |m| m.added), 1);
    let p0 = pod_n("test", 0, true);
    let s = existing(&svc, "foo-1", &[&p0, &p1], &n1(), None);
    let r = run(&svc, &[p1], &n1(), &[s], 100);
    assert_eq!(metric(&r.result, |m| m.removed), 1);
}

fn two_nodes_pods() -> Vec<Pod> {
    let mut p1 = pod_n("test", 1, true);
    p1.spec.as_mut().expect("spec").node_name = Some("node-1".into());
    let mut p0 = pod_n("test", 0, true);
    p0.spec.as_mut().expect("spec").node_name = Some("node-0".into());
    vec![p0, p1]
}

#[test]
fn r40_to_r45_pods_on_missing_nodes() {
    // (id, publishNotReady, nodes in the cache, existing slice with both pods?)
    for (id, publish, nodes, with_existing) in [
        ("R40", false, vec!["node-0"], false),
        ("R41", true, vec!["node-0"], false),
        ("R42", false, vec!["node-0"], true),
        ("R43", true, vec![], true),
        ("R44", true, vec!["node-0"], true),
        ("R45", false, vec![], true),
    ] {
        let mut svc = svc_foo("test");
        svc.spec.as_mut().expect("spec").publish_not_ready_addresses = Some(publish);
        let pods = two_nodes_pods();
        let nodes: Vec<Node> = nodes.into_iter().map(node_plain).collect();
        let ex: Vec<EndpointSlice> = if with_existing {
            // Built with label-less nodes: no zones.
            vec![existing(&svc, "foo-1", &pods.iter().collect::<Vec<_>>(), &[node_plain("node-0"), node_plain("node-1")], None)]
        } else {
            vec![]
        };
        let r = run(&svc, &pods, &nodes, &ex, 100);
        let exp = &oracle(id)["expected"];
        assert_eq!(r.result.error().is_some(), exp["returns_error"].as_bool().expect("bool"), "{id}: {:?}", r.result.error());
        assert_eq!(r.slices.len() as u64, exp["slices_total"].as_u64().expect("n"), "{id}");
        let m = &exp["metrics"];
        let n = |k: &str| m[k].as_u64().expect("n") as usize;
        assert_eq!(writes(&r.result), (n("numCreated"), n("numUpdated"), n("numDeleted")), "{id}");
        assert_eq!(r.result.metrics[0].desired_endpoints, n("desiredEndpoints"), "{id}");
        assert_eq!(metric(&r.result, |x| x.added), n("addedPerSync"), "{id}");
        assert_eq!(metric(&r.result, |x| x.removed), n("removedPerSync"), "{id}");
    }
}

#[test]
fn r35_to_r39_finalize_and_the_service_deletion_rule() {
    use slicelab_core::controller::plan::{Cause, Planned};
    use slicelab_core::controller::reconciler::finalize;
    let svc = svc_foo("test");
    let slice = |name: &str| {
        let mut s = existing(&svc, name, &[], &n1(), None);
        s.endpoints = Some(vec![]);
        s
    };
    for (id, deleting, create, delete) in
        [("R35", false, true, false), ("R36", true, true, false), ("R37", false, true, true), ("R38", true, true, true), ("R39", true, false, true)]
    {
        let mut s = svc.clone();
        if deleting {
            s.metadata.deletion_timestamp = Some(Time(slicelab_core::k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        }
        let mut to_create = slice("to-create");
        to_create.metadata.name = None;
        to_create.metadata.generate_name = Some("to-create".into());
        let calls = finalize(
            &s,
            if create { vec![Planned::new(to_create, Cause::NewSlice)] } else { vec![] },
            vec![Planned::new(slice("to-update"), Cause::EndpointsChanged)],
            if delete { vec![Planned::new(slice("to-delete"), Cause::Emptied)] } else { vec![] },
            None,
        );
        let mut store = SliceStore::with_slices(1, &[slice("to-update"), slice("to-delete")]);
        store.apply(&calls);
        let exists = |prefix: &str| store.all().any(|s| s.metadata.name.as_deref().is_some_and(|n| n.starts_with(prefix)));
        let exp = &oracle(id)["expected"];
        assert_eq!(exists("to-create"), exp["to-create_exists"].as_bool().expect("bool"), "{id}");
        assert_eq!(exists("to-update"), exp["to-update_exists"].as_bool().expect("bool"), "{id}");
        assert_eq!(exists("to-delete"), exp["to-delete_exists"].as_bool().expect("bool"), "{id}");
    }
}

#[test]
fn r56_headless_service_without_ports_does_not_churn() {
    let mut svc = svc_foo("test");
    svc.metadata.name = Some("headless-no-ports".into());
    let spec = svc.spec.as_mut().expect("spec");
    spec.cluster_ip = Some("None".into());
    spec.ports = None;
    let pods = vec![pod_n("test", 1, true)];
    let s1 = run(&svc, &pods, &n1(), &[], 100);
    assert_eq!(writes(&s1.result), (1, 0, 0));
    let mut stored = s1.slices.clone();
    stored[0].ports = None; // as the API server serialises an empty list
    let s2 = run(&svc, &pods, &n1(), &stored, 100);
    assert_eq!(writes(&s2.result), (0, 0, 0));
}

// ---- topology (TestReconcileTopology) ----

fn topology_world() -> (Service, Vec<Node>, Vec<Pod>) {
    let mut svc = svc_foo("testing");
    let mut nodes = Vec::new();
    let mut pods = Vec::new();
    for (z, zone) in ["zone-a", "zone-b", "zone-c"].iter().enumerate() {
        for j in 0..10u32 {
            let name = format!("node-{zone}-{j}");
            nodes.push(node_zone(&name, zone));
            let mut p = pod_n("testing", z as u32 * 100 + j, true);
            p.spec.as_mut().expect("spec").node_name = Some(name);
            pods.push(p);
        }
    }
    svc.metadata.annotations = Some(BTreeMap::new());
    (svc, nodes, pods)
}

fn with_annotation(svc: &Service, v: &str) -> Service {
    let mut s = svc.clone();
    s.metadata.annotations = Some([("service.kubernetes.io/topology-aware-hints".to_string(), v.to_string())].into());
    s
}

fn hints_per_zone(slices: &[EndpointSlice]) -> (BTreeMap<String, usize>, usize) {
    let mut per = BTreeMap::new();
    let mut cross = 0;
    for e in slices.iter().flat_map(|s| eps(s)) {
        for z in e.hints.as_ref().and_then(|h| h.for_zones.as_ref()).into_iter().flatten() {
            *per.entry(z.name.clone()).or_insert(0) += 1;
            if Some(&z.name) != e.zone.as_ref() {
                cross += 1;
            }
        }
    }
    (per, cross)
}

#[test]
fn r47_r48_r49_r50_topology_hints() {
    let (svc, nodes, pods) = topology_world();
    let pick = |idx: &[usize]| idx.iter().map(|&i| pods[i].clone()).collect::<Vec<_>>();
    let slice_of = |name: &str, idx: &[usize]| {
        let mut s = existing(&svc, name, &idx.iter().map(|&i| &pods[i]).collect::<Vec<_>>(), &nodes, None);
        s.metadata.labels = Some(
            [
                ("endpointslice.kubernetes.io/managed-by".to_string(), "endpointslice-controller.k8s.io".to_string()),
                ("kubernetes.io/service-name".to_string(), "foo".to_string()),
            ]
            .into(),
        );
        s
    };
    // R47: 3 endpoints, all in zone c → one hint per zone, 2 cross-zone, 1 update.
    let r = run(&with_annotation(&svc, "auto"), &pick(&[27, 28, 29]), &nodes, &[slice_of("zone-c", &[27, 28, 29])], 100);
    let (per, cross) = hints_per_zone(&r.slices);
    assert_eq!(per, [("zone-a".to_string(), 1), ("zone-b".to_string(), 1), ("zone-c".to_string(), 1)].into());
    assert_eq!((cross, writes(&r.result)), (2, (0, 1, 0)));
    // R48: 4 endpoints over 3 equal zones: minimums exceed 4 → no hints, nothing written.
    let r = run(&with_annotation(&svc, "auto"), &pick(&[5, 6, 25, 26]), &nodes, &[slice_of("zone-a-c", &[5, 6, 25, 26])], 100);
    assert_eq!(hints_per_zone(&r.slices).0.len(), 0);
    assert_eq!(writes(&r.result), (0, 0, 0));
    // R49: 9 endpoints (a x4, b x3, c x2) over two slices → 3 per zone, 1 cross-zone, 2 updates.
    let idx = [5, 6, 25, 26, 7, 8, 16, 17, 18];
    let ex = [slice_of("zone-a-c", &[5, 6, 25, 26]), slice_of("zone-a-b", &[7, 8, 16, 17, 18])];
    let r = run(&with_annotation(&svc, "Auto"), &pick(&idx), &nodes, &ex, 100);
    let (per, cross) = hints_per_zone(&r.slices);
    assert_eq!(per, [("zone-a".to_string(), 3), ("zone-b".to_string(), 3), ("zone-c".to_string(), 3)].into());
    assert_eq!((cross, writes(&r.result), r.slices.len()), (1, (0, 2, 0), 2));
    assert!(r.result.events.iter().any(|e| e.reason == "TopologyAwareHintsEnabled"));
    // R50: the same with the annotation disabled: no hints, nothing written.
    let r = run(&with_annotation(&svc, "disabled"), &pick(&idx), &nodes, &ex, 100);
    assert_eq!((hints_per_zone(&r.slices).0.len(), writes(&r.result)), (0, (0, 0, 0)));
}

// ---- trafficDistribution (TestReconcile_TrafficDistribution) ----

#[test]
fn r51_to_r55_traffic_distribution() {
    let nodes = vec![node_zone("node-0", "zone-a"), node_zone("node-1", "zone-b"), node_zone("node-2", "zone-c")];
    let pods: Vec<Pod> = [0, 1, 1, 1, 2, 2]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut p = pod_n("ns1", i as u32, true);
            p.spec.as_mut().expect("spec").node_name = Some(format!("node-{n}"));
            p
        })
        .collect();
    for (id, td, ann, pstd) in [
        ("R51", Some("PreferClose"), "Disabled", false),
        ("R52", Some("PreferClose"), "Auto", false),
        ("R53", None, "", false),
        ("R54", Some("PreferSameNode"), "Disabled", true),
        ("R55", Some("PreferSameZone"), "Disabled", false),
    ] {
        let mut svc = with_annotation(&svc_foo("ns1"), ann);
        svc.spec.as_mut().expect("spec").traffic_distribution = td.map(String::from);
        let mut r = Reconciler::new(ReconcilerOptions { prefer_same_traffic_distribution: pstd, ..Default::default() });
        r.set_nodes(&nodes);
        let result = r.reconcile(&svc, &pods, &nodes, &[]);
        let mut store = SliceStore::new(1);
        store.apply(&result.calls);
        let slices: Vec<EndpointSlice> = store.all().cloned().collect();
        let mut hist: BTreeMap<String, u64> = BTreeMap::new();
        for e in slices.iter().flat_map(|s| eps(s)) {
            match e.hints.as_ref().and_then(|h| h.for_zones.as_ref()).and_then(|z| z.first()) {
                Some(z) => *hist.entry(z.name.clone()).or_insert(0) += 1,
                None => *hist.entry("(no hint)".into()).or_insert(0) += 1,
            }
        }
        let exp: BTreeMap<String, u64> = serde_json::from_value(oracle(id)["expected"]["zone_hint_histogram"].clone()).expect("histogram");
        assert_eq!(hist, exp, "{id}");
        assert_eq!(hints_per_zone(&slices).1 as u64, oracle(id)["expected"]["cross_zone_hints"].as_u64().expect("n"), "{id}");
        if id == "R54" {
            assert!(slices.iter().flat_map(|s| eps(s)).all(|e| e.hints.as_ref().and_then(|h| h.for_nodes.as_ref()).map(|n| n[0].name.clone()) == e.node_name));
        }
    }
}

// ---- unit tables ----

#[test]
fn u02_supported_address_types() {
    for row in oracle("U02")["expected"]["rows"].as_array().expect("rows") {
        let mut svc = svc_foo("test");
        let spec = svc.spec.as_mut().expect("spec");
        spec.cluster_ip = row["clusterIP"].as_str().map(String::from);
        spec.ip_families = row["ipFamilies"].as_array().map(|a| a.iter().filter_map(|f| f.as_str().map(String::from)).collect());
        let mut got: Vec<&str> = address_types_for_service(&svc).iter().map(|t| t.as_str()).collect();
        let mut want: Vec<&str> = row["address_types"].as_array().expect("types").iter().filter_map(Value::as_str).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "U02 {}", row["sub"]);
    }
}

#[test]
fn u03_hints_enabled() {
    for row in oracle("U03")["expected"]["rows"].as_array().expect("rows") {
        let mut svc = svc_foo("test");
        let ann: BTreeMap<String, String> = row["annotations"]
            .as_object()
            .expect("annotations")
            .iter()
            .map(|(k, v)| {
                let key = match k.as_str() {
                    "H" => "service.kubernetes.io/topology-aware-hints".to_string(),
                    "M" => "service.kubernetes.io/topology-mode".to_string(),
                    other => other.to_string(),
                };
                (key, v.as_str().unwrap_or("").to_string())
            })
            .collect();
        svc.metadata.annotations = Some(ann);
        assert_eq!(hints_enabled(&svc), row["enabled"].as_bool().expect("bool"), "U03 {}", row["annotations"]);
    }
}

#[test]
fn t03_giving_and_receiving_zones() {
    for row in oracle("T03")["expected"]["rows"].as_array().expect("rows") {
        let desired: VecMap<String, f64> = serde_json::from_value(row["desired"].clone()).expect("desired");
        let allocated: VecMap<String, i64> = serde_json::from_value(row["allocated"].clone()).expect("allocated");
        let (giving, receiving) = giving_and_receiving_zones(&desired, &allocated);
        let want_g: ZoneCounts = serde_json::from_value(row["giving"].clone()).expect("giving");
        let want_r: ZoneCounts = serde_json::from_value(row["receiving"].clone()).expect("receiving");
        assert_eq!((giving, receiving), (want_g, want_r), "T03 {}", row["sub"]);
    }
}

#[test]
fn t04_redistribute_hints() {
    for row in oracle("T04")["expected"]["rows"].as_array().expect("rows") {
        let n = row["endpoints"].as_array().expect("endpoints").iter().map(|e| if e.as_str().unwrap_or("").contains("x3") { 3 } else { 1 }).sum::<usize>();
        let ep = |_: usize| slicelab_core::k8s_openapi::api::discovery::v1::Endpoint {
            zone: Some("zone-a".into()),
            hints: Some(EndpointHints { for_zones: Some(vec![ForZone { name: "zone-a".into() }]), for_nodes: None }),
            conditions: Some(slicelab_core::k8s_openapi::api::discovery::v1::EndpointConditions { ready: Some(true), ..Default::default() }),
            ..Default::default()
        };
        let mut slice = EndpointSlice { endpoints: Some((0..n).map(ep).collect()), ..Default::default() };
        let giving: ZoneCounts = serde_json::from_value(row["giving"].clone()).expect("giving");
        let receiving: ZoneCounts = serde_json::from_value(row["receiving"].clone()).expect("receiving");
        let got = redistribute_hints(&mut [&mut slice], giving, receiving);
        let want: VecMap<String, i64> = serde_json::from_value(row["redistributions"].clone()).expect("redistributions");
        assert_eq!(got, want, "T04 {}", row["sub"]);
    }
}

#[test]
fn r02_to_r09_one_pod_by_family_and_labels() {
    let node = Node {
        metadata: ObjectMeta {
            name: Some("node-1".into()),
            labels: Some(
                [
                    ("topology.kubernetes.io/zone".to_string(), "us-central1-a".to_string()),
                    ("topology.kubernetes.io/region".to_string(), "us-central1".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut pod = pod_n("test", 0, true);
    pod.metadata.name = Some("pod1".into());
    let spec = pod.spec.as_mut().expect("spec");
    spec.hostname = Some("example-hostname".into());
    pod.status.as_mut().expect("status").pod_ips =
        Some(vec![PodIP { ip: "1.2.3.4".into() }, PodIP { ip: "1234::5678:0000:0000:9abc:def0".into() }]);
    let headless = ("service.kubernetes.io/headless".to_string(), String::new());
    let base_labels = |extra: &[(String, String)]| {
        let mut m: BTreeMap<String, String> = [
            ("endpointslice.kubernetes.io/managed-by".to_string(), "endpointslice-controller.k8s.io".to_string()),
            ("kubernetes.io/service-name".to_string(), "foo".to_string()),
        ]
        .into();
        m.extend(extra.iter().cloned());
        m
    };
    // (id, clusterIP, families, service labels, expected (type, address) per slice, expected labels)
    type Row = (&'static str, Option<&'static str>, Option<Vec<&'static str>>, Option<BTreeMap<String, String>>, Vec<(&'static str, &'static str)>, BTreeMap<String, String>);
    let rows: Vec<Row> = vec![
        ("R02", Some("10.0.0.10"), None, None, vec![("IPv4", "1.2.3.4")], base_labels(&[])),
        ("R03", None, Some(vec!["IPv4"]), None, vec![("IPv4", "1.2.3.4")], base_labels(&[headless.clone()])),
        ("R04", Some("1.1.1.1"), Some(vec!["IPv4"]), None, vec![("IPv4", "1.2.3.4")], base_labels(&[])),
        ("R05", None, Some(vec!["IPv4"]), Some([("foo".to_string(), "bar".to_string())].into()), vec![("IPv4", "1.2.3.4")],
            base_labels(&[headless.clone(), ("foo".to_string(), "bar".to_string())])),
        ("R06", None, Some(vec!["IPv4"]), Some([
            ("kubernetes.io/service-name".to_string(), "bad".to_string()),
            ("endpointslice.kubernetes.io/managed-by".to_string(), "actor".to_string()),
            ("service.kubernetes.io/headless".to_string(), "invalid".to_string()),
        ].into()), vec![("IPv4", "1.2.3.4")], base_labels(&[headless.clone()])),
        ("R07", None, Some(vec!["IPv6"]), None, vec![("IPv6", "1234::5678:0:0:9abc:def0")], base_labels(&[headless.clone()])),
        ("R08", Some("1234::5678:0000:0000:9abc:def1"), Some(vec!["IPv6"]), None, vec![("IPv6", "1234::5678:0:0:9abc:def0")], base_labels(&[])),
        ("R09", Some("10.0.0.10"), Some(vec!["IPv4", "IPv6"]), None, vec![("IPv4", "1.2.3.4"), ("IPv6", "1234::5678:0:0:9abc:def0")], base_labels(&[])),
    ];
    for (id, cip, fams, labels, want, want_labels) in rows {
        let mut svc = svc_foo("test");
        svc.metadata.labels = labels;
        let spec = svc.spec.as_mut().expect("spec");
        spec.cluster_ip = cip.map(String::from);
        spec.ip_families = fams.map(|f| f.into_iter().map(String::from).collect());
        let r = run(&svc, &[pod.clone()], &[node.clone()], &[], 100);
        assert_eq!(writes(&r.result), expected_writes(id), "{id}");
        let mut got: Vec<(String, String)> =
            r.slices.iter().map(|s| (s.address_type.clone(), eps(s)[0].addresses[0].clone())).collect();
        got.sort();
        let want: Vec<(String, String)> = want.into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(got, want, "{id}");
        for s in &r.slices {
            assert_eq!(s.metadata.labels.as_ref(), Some(&want_labels), "{id}: labels");
            let e = &eps(s)[0];
            assert_eq!((e.zone.as_deref(), e.node_name.as_deref(), e.hostname.as_deref()), (Some("us-central1-a"), Some("node-1"), None), "{id}");
            let c = e.conditions.as_ref().expect("conditions");
            assert_eq!((c.ready, c.serving, c.terminating), (Some(true), Some(true), Some(false)), "{id}");
        }
    }
}

#[test]
fn r46_no_topology_cache_with_the_annotation_writes_nothing() {
    let (svc, nodes, pods) = topology_world();
    let svc = with_annotation(&svc, "auto");
    let idx = [27usize, 28, 29];
    let p: Vec<Pod> = idx.iter().map(|&i| pods[i].clone()).collect();
    let s = existing(&svc, "zone-c", &p.iter().collect::<Vec<_>>(), &nodes, None);
    let mut r = Reconciler::new(ReconcilerOptions { topology_cache: false, ..Default::default() });
    let result = r.reconcile(&svc, &p, &nodes, &[s]);
    assert_eq!(writes(&result), (0, 0, 0));
}

#[test]
fn t02_set_nodes() {
    use slicelab_core::controller::topology::TopologyCache;
    for row in oracle("T02")["expected"]["rows"].as_array().expect("rows") {
        let nodes: Vec<Node> = row["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let d = d.as_str().unwrap_or("");
                let words: Vec<&str> = d.split_whitespace().collect();
                let mut n = node_zone(&format!("node-{i}"), &format!("zone-{}", words[0]));
                n.status.as_mut().expect("status").allocatable = Some([("cpu".to_string(), Quantity(words[1].into()))].into());
                if d.contains("NOT ready") {
                    n.status.as_mut().expect("status").conditions =
                        Some(vec![NodeCondition { type_: "Ready".into(), status: "False".into(), ..Default::default() }]);
                }
                if d.contains("control-plane") {
                    n.metadata.labels.as_mut().expect("labels").insert("node-role.kubernetes.io/control-plane".into(), String::new());
                }
                n
            })
            .collect();
        let mut tc = TopologyCache::new();
        tc.set_nodes(&nodes);
        let sufficient = row["sufficient"].as_bool().expect("bool");
        assert_eq!(tc.cpu_ratios().is_some(), sufficient, "T02 {}", row["sub"]);
        if let Some(want) = row["ratios"].as_object() {
            let got = tc.cpu_ratios().expect("ratios");
            for (z, r) in want {
                assert!((got[z] - r.as_f64().expect("ratio")).abs() < 1e-9, "T02 {} {z}", row["sub"]);
            }
            for (z, q) in row["cpu_by_zone"].as_object().expect("cpu") {
                let milli = slicelab_core::quantity::parse_milli(q.as_str().expect("quantity")).expect("parses");
                assert_eq!(tc.cpu_by_zone_milli().expect("cpu")[z], milli, "T02 {} {z}", row["sub"]);
            }
        }
    }
}
