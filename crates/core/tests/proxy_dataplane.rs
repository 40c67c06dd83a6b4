//! kube-proxy behaviour at the node level: backend shares per mode (fixed seeds), round robin, session
//! affinity windows, REJECT/DROP, connection tracking, IPVS draining, per-node sync timing, and the
//! traps of §14 of the spec.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{json, Value};
use slicelab_core::input::decode;
use slicelab_core::proxy::conntrack::FiveTuple;
use slicelab_core::proxy::iptables::View;
use slicelab_core::proxy::ipvs::Scheduler;
use slicelab_core::proxy::node::{KubeProxy, Mode, Outcome, ProxyConfig};
use slicelab_core::proxy::policy::DropReason;
use slicelab_core::proxy::{Cidr, Protocol};
use slicelab_core::IpFamily;

const CLUSTER_IP: &str = "10.96.0.10";
const NODE_IP: &str = "192.168.0.10";

fn service(extra: Value) -> Service {
    let mut spec = json!({
        "type": "ClusterIP", "clusterIP": CLUSTER_IP, "clusterIPs": [CLUSTER_IP],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if k != "status" {
                s.insert(k.clone(), v.clone());
            }
        }
    }
    decode(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": spec,
               "status": extra.get("status").cloned().unwrap_or(json!({}))}),
        "Service",
    )
    .unwrap()
}

/// One endpoint: (ip, node, ready, serving, terminating, zone hint).
#[derive(Clone)]
struct Ep(&'static str, &'static str, bool, bool, bool, Option<&'static str>);

fn ep_value(e: &Ep) -> Value {
    let mut v = json!({"addresses": [e.0], "nodeName": e.1, "conditions": {"ready": e.2, "serving": e.3, "terminating": e.4}});
    if let Some(z) = e.5 {
        v["hints"] = json!({"forZones": [{"name": z}]});
        v["zone"] = json!(z);
    }
    v
}

fn slice_of(name: &str, eps: Vec<Value>, protocol: &str) -> EndpointSlice {
    decode(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
               "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": protocol}], "endpoints": eps}),
        "EndpointSlice",
    )
    .unwrap()
}

fn ready_slice(name: &str, n: usize) -> EndpointSlice {
    let eps = (0..n).map(|i| json!({"addresses": [format!("10.1.{}.{}", i / 250, i % 250 + 1)], "nodeName": format!("node-{}", i % 3), "conditions": {"ready": true}})).collect();
    slice_of(name, eps, "TCP")
}

fn config(node: &str, mode: Mode) -> ProxyConfig {
    let mut c = ProxyConfig::new(node, IpFamily::V4);
    c.mode = mode;
    c.net.node_ips = vec![NODE_IP.parse().unwrap()];
    c.net.local_detector = Cidr::parse("10.1.0.0/16").ok();
    c
}

fn proxy(mode: Mode, svc: &Service, slices: &[EndpointSlice], seed: u64) -> KubeProxy {
    let mut kp = KubeProxy::new(config("node-0", mode), seed);
    kp.on_service(svc);
    for s in slices {
        kp.on_slice(s);
    }
    kp.services_listed();
    kp.slices_listed();
    kp.sync(0);
    kp
}

fn client(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xCB00_7100u32.wrapping_add(i)))
}

fn tuple(src: IpAddr, sport: u16, dst: &str, dport: u16) -> FiveTuple {
    FiveTuple { src, src_port: sport, dst: dst.parse().unwrap(), dst_port: dport, protocol: Protocol::Tcp }
}

fn backend(o: &Outcome) -> String {
    o.backend().map(|b| b.endpoint.clone()).unwrap_or_else(|| format!("{o:?}"))
}

const MODES: [Mode; 3] = [Mode::Iptables, Mode::Nftables, Mode::Ipvs];

#[test]
fn every_backend_gets_its_share_in_each_mode() {
    const PICKS: usize = 100_000;
    let svc = service(json!({}));
    for mode in MODES {
        for n in 1..=20 {
            let mut kp = proxy(mode, &svc, &[ready_slice("web-1", n)], 42 + n as u64);
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for i in 0..PICKS {
                let t = tuple(client(i as u32 % 5000), (i % 60000) as u16 + 1024, CLUSTER_IP, 80);
                *counts.entry(backend(&kp.pick(&t, 0))).or_default() += 1;
            }
            assert_eq!(counts.len(), n, "{mode:?} n={n}: {counts:?}");
            for (b, c) in &counts {
                let share = *c as f64 / PICKS as f64;
                assert!((share - 1.0 / n as f64).abs() < 0.01, "{mode:?} n={n}: {b} got {share:.4}, expected {:.4}", 1.0 / n as f64);
            }
        }
    }
}

#[test]
fn source_hashing_schedulers_spread_clients_evenly() {
    let svc = service(json!({}));
    for sched in [Scheduler::Sh, Scheduler::Mh, Scheduler::Lc] {
        for n in [2usize, 3, 5, 8] {
            let mut cfg = config("node-0", Mode::Ipvs);
            cfg.scheduler = sched;
            let mut kp = KubeProxy::new(cfg, 1);
            kp.on_service(&svc);
            kp.on_slice(&ready_slice("web-1", n));
            kp.services_listed();
            kp.slices_listed();
            kp.sync(0);
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for i in 0..20_000u32 {
                // Real connections, so least-connection sees the load.
                let t = tuple(IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761))), 40000, CLUSTER_IP, 80);
                *counts.entry(backend(&kp.connect(&t, 0))).or_default() += 1;
            }
            for c in counts.values() {
                let share = *c as f64 / 20_000.0;
                assert!((share - 1.0 / n as f64).abs() < 0.03, "{sched:?} n={n}: {counts:?}");
            }
        }
    }
}

#[test]
fn round_robin_is_exact() {
    let svc = service(json!({}));
    let mut kp = proxy(Mode::Ipvs, &svc, &[ready_slice("web-1", 7)], 3);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut order = Vec::new();
    for i in 0..7000u32 {
        let b = backend(&kp.pick(&tuple(client(i), 1000, CLUSTER_IP, 80), 0));
        if i < 14 {
            order.push(b.clone());
        }
        *counts.entry(b).or_default() += 1;
    }
    assert!(counts.values().all(|&c| c == 1000), "{counts:?}");
    assert_eq!(order[..7], order[7..], "round robin repeats the same cycle");
    let mut sorted = order[..7].to_vec();
    sorted.sort();
    assert_eq!(order[..7], sorted[..], "in the text order of the endpoints");
}

#[test]
fn affinity_keeps_a_client_until_its_timeout_then_releases_it() {
    let svc = service(json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}}}));
    for mode in MODES {
        let mut kp = proxy(mode, &svc, &[ready_slice("web-1", 5)], 11);
        let mut released = 0;
        for c in 0..200u32 {
            let src = client(c);
            let first = backend(&kp.connect(&tuple(src, 1, CLUSTER_IP, 80), 0));
            // New connections every 8 s: the window slides, so 40 s later the client is still held.
            for (k, t) in [8_000u64, 16_000, 24_000, 32_000, 40_000].iter().enumerate() {
                let o = kp.connect(&tuple(src, 2 + k as u16, CLUSTER_IP, 80), *t);
                assert_eq!(backend(&o), first, "{mode:?} client {c} at {t} ms");
            }
            // 10 s after the last new connection it is still held; just after, it is released.
            assert_eq!(backend(&kp.pick(&tuple(src, 100, CLUSTER_IP, 80), 50_000)), first, "{mode:?}");
            let after = kp.connect(&tuple(src, 101, CLUSTER_IP, 80), 60_001);
            if let Outcome::New { by_affinity, .. } = &after {
                assert!(!by_affinity || mode == Mode::Ipvs, "{mode:?}: affinity after the timeout");
            }
            if backend(&after) != first {
                released += 1;
            }
        }
        // Released clients are picked afresh: with a random pick about 4 in 5 land elsewhere (1 in 5 by
        // chance on the same one); round robin has moved on, so they all do.
        let most = if mode == Mode::Ipvs { 200 } else { 190 };
        assert!((120..=most).contains(&released), "{mode:?}: {released} of 200 released clients moved");
    }
}

#[test]
fn affinity_only_chooses_among_current_candidates() {
    let svc = service(json!({"sessionAffinity": "ClientIP"}));
    let s = ready_slice("web-1", 3);
    for mode in MODES {
        let mut kp = proxy(mode, &svc, std::slice::from_ref(&s), 5);
        let src = client(1);
        let first = backend(&kp.connect(&tuple(src, 1, CLUSTER_IP, 80), 0));
        // The remembered endpoint goes away: the client falls through to the pick.
        let mut eps: Vec<Value> = serde_json::to_value(&s).unwrap()["endpoints"].as_array().unwrap().clone();
        eps.retain(|e| format!("{}:8080", e["addresses"][0].as_str().unwrap()) != first);
        kp.on_slice(&slice_of("web-1", eps, "TCP"));
        kp.sync(2_000);
        let again = backend(&kp.connect(&tuple(src, 2, CLUSTER_IP, 80), 3_000));
        assert_ne!(again, first, "{mode:?}");
    }
}

#[test]
fn reject_when_nothing_usable_drop_when_nothing_local() {
    // No endpoints at all: refused, in every mode.
    for mode in MODES {
        let mut kp = proxy(mode, &service(json!({})), &[], 1);
        assert!(matches!(kp.connect(&tuple(client(1), 1, CLUSTER_IP, 80), 0), Outcome::Refused { .. }), "{mode:?}");
    }
    // Only unready, not serving endpoints: REJECT too.
    let dead = slice_of("web-1", vec![ep_value(&Ep("10.1.0.1", "node-0", false, false, true, None))], "TCP");
    let mut kp = proxy(Mode::Iptables, &service(json!({})), &[dead], 1);
    assert!(matches!(kp.connect(&tuple(client(1), 1, CLUSTER_IP, 80), 0), Outcome::Refused { .. }));
    // iTP=Local with endpoints only elsewhere: DROP (the client times out), not REJECT.
    let remote = slice_of("web-1", vec![ep_value(&Ep("10.1.0.1", "node-1", true, true, false, None))], "TCP");
    let mut kp = proxy(Mode::Iptables, &service(json!({"internalTrafficPolicy": "Local"})), std::slice::from_ref(&remote), 1);
    assert_eq!(
        kp.connect(&tuple(client(1), 1, CLUSTER_IP, 80), 0),
        Outcome::Dropped { spn: kp.ports().next().unwrap().info.name.clone(), reason: DropReason::NoLocalEndpoints }
    );
    let rules = kp.render_rules(View::KubeProxy);
    assert!(rules.contains("has no local endpoints\" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j DROP"), "{rules}");
    // A remote serving+terminating endpoint also prevents REJECT under eTP=Local: external traffic is dropped.
    let lb = service(json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}],
        "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}}));
    let term = slice_of("web-1", vec![ep_value(&Ep("10.1.0.5", "node-1", false, true, true, None))], "TCP");
    let mut kp = proxy(Mode::Nftables, &lb, &[term], 1);
    assert!(matches!(kp.connect(&tuple("203.0.113.2".parse().unwrap(), 1, "5.6.7.8", 80), 0), Outcome::Dropped { .. }));
    assert_eq!(backend(&kp.connect(&tuple("10.1.9.9".parse().unwrap(), 1, CLUSTER_IP, 80), 0)), "10.1.0.5:8080");
    let nft = kp.render_rules(View::KubeProxy);
    assert!(nft.contains("5.6.7.8 . tcp . 80 comment \"default/web:http\" : drop"), "{nft}");
}

#[test]
fn traffic_policy_traps() {
    // Endpoints: one on this node, one remote.
    let eps = vec![ep_value(&Ep("10.1.0.1", "node-0", true, true, false, None)), ep_value(&Ep("10.1.0.2", "node-1", true, true, false, None))];
    let both: std::collections::BTreeSet<String> = ["10.1.0.1:8080", "10.1.0.2:8080"].iter().map(|s| s.to_string()).collect();
    let lb = |policies: Value| {
        let mut v = json!({"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}],
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}});
        for (k, x) in policies.as_object().unwrap() {
            v[k] = x.clone();
        }
        service(v)
    };
    let seen = |kp: &mut KubeProxy, src: &str, dst: &str, port: u16| -> std::collections::BTreeSet<String> {
        (0..400u16).map(|i| backend(&kp.pick(&tuple(src.parse().unwrap(), 1000 + i, dst, port), 0))).collect()
    };
    // eTP=Local does not restrict ClusterIP traffic.
    let mut kp = proxy(Mode::Iptables, &lb(json!({"externalTrafficPolicy": "Local", "healthCheckNodePort": 32000})), &[slice_of("web-1", eps.clone(), "TCP")], 2);
    assert_eq!(seen(&mut kp, "203.0.113.2", CLUSTER_IP, 80), both);
    // ... it restricts external clients to the local endpoint, unmasqueraded ...
    assert_eq!(seen(&mut kp, "203.0.113.2", "5.6.7.8", 80), ["10.1.0.1:8080".to_string()].into());
    match kp.pick(&tuple("203.0.113.2".parse().unwrap(), 1, NODE_IP, 30080), 0) {
        Outcome::New { masquerade, .. } => assert!(!masquerade),
        o => panic!("{o:?}"),
    }
    // ... but a pod or the node reaching the LB IP is short-circuited to every endpoint.
    assert_eq!(seen(&mut kp, "10.1.7.7", "5.6.7.8", 80), both);
    assert_eq!(seen(&mut kp, NODE_IP, "5.6.7.8", 80), both);
    // iTP=Local does not restrict NodePort or LB traffic.
    let mut kp = proxy(Mode::Nftables, &lb(json!({"internalTrafficPolicy": "Local"})), &[slice_of("web-1", eps.clone(), "TCP")], 2);
    assert_eq!(seen(&mut kp, "203.0.113.2", NODE_IP, 30080), both);
    assert_eq!(seen(&mut kp, "10.1.7.7", CLUSTER_IP, 80), ["10.1.0.1:8080".to_string()].into());
    // eTP=Cluster external traffic is masqueraded.
    let mut kp = proxy(Mode::Iptables, &lb(json!({})), &[slice_of("web-1", eps, "TCP")], 2);
    match kp.pick(&tuple("203.0.113.2".parse().unwrap(), 1, "5.6.7.8", 80), 0) {
        Outcome::New { masquerade, .. } => assert!(masquerade),
        o => panic!("{o:?}"),
    }
}

#[test]
fn topology_hints_filter_the_cluster_set_per_node_zone() {
    let eps = vec![
        ep_value(&Ep("10.1.0.1", "node-1", true, true, false, Some("zone-a"))),
        ep_value(&Ep("10.1.0.2", "node-2", true, true, false, Some("zone-b"))),
        ep_value(&Ep("10.1.0.3", "node-3", true, true, false, Some("zone-a"))),
    ];
    let svc = service(json!({}));
    let mut kp = proxy(Mode::Iptables, &svc, &[slice_of("web-1", eps.clone(), "TCP")], 4);
    // No zone label yet: every endpoint.
    let seen = |kp: &mut KubeProxy| -> std::collections::BTreeSet<String> {
        (0..300u16).map(|i| backend(&kp.pick(&tuple(client(1), i + 1, CLUSTER_IP, 80), 0))).collect()
    };
    assert_eq!(seen(&mut kp).len(), 3);
    kp.set_zone(Some("zone-a".into()));
    let r = kp.tick(5_000).expect("a zone change forces a sync");
    assert!(r.full);
    assert_eq!(seen(&mut kp), ["10.1.0.1:8080".to_string(), "10.1.0.3:8080".to_string()].into());
    // One ready endpoint without a hint turns topology off entirely.
    let mut eps2 = eps;
    eps2.push(json!({"addresses": ["10.1.0.4"], "nodeName": "node-4", "conditions": {"ready": true}}));
    kp.on_slice(&slice_of("web-1", eps2, "TCP"));
    kp.tick(10_000);
    assert_eq!(seen(&mut kp).len(), 4);
}

#[test]
fn established_connections_stay_and_udp_entries_are_cleared() {
    let svc = service(json!({"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}, {"name": "http", "port": 80, "targetPort": 8080, "protocol": "UDP"}]}));
    let eps = |ips: &[&'static str]| ips.iter().map(|ip| ep_value(&Ep(ip, "node-1", true, true, false, None))).collect::<Vec<_>>();
    let tcp = slice_of("web-tcp", eps(&["10.1.0.1", "10.1.0.2"]), "TCP");
    let udp = slice_of("web-udp", eps(&["10.1.0.1", "10.1.0.2"]), "UDP");
    let mut kp = proxy(Mode::Iptables, &svc, &[tcp, udp], 9);
    let mut conns = Vec::new();
    for i in 0..40u16 {
        for proto in [Protocol::Tcp, Protocol::Udp] {
            let t = FiveTuple { src: client(1), src_port: 2000 + i, dst: CLUSTER_IP.parse().unwrap(), dst_port: 80, protocol: proto };
            let b = backend(&kp.connect(&t, 0));
            conns.push((t, b));
        }
    }
    assert_eq!(kp.conntrack.len(), 80);
    // 10.1.0.2 goes away from both slices.
    kp.on_slice(&slice_of("web-tcp", eps(&["10.1.0.1"]), "TCP"));
    kp.on_slice(&slice_of("web-udp", eps(&["10.1.0.1"]), "UDP"));
    let report = kp.tick(1_000).expect("sync due");
    let udp_on_gone = conns.iter().filter(|(t, b)| t.protocol == Protocol::Udp && b == "10.1.0.2:8080").count();
    assert!(udp_on_gone > 0);
    assert_eq!(report.udp_cleared, udp_on_gone);
    for (t, b) in &conns {
        let o = kp.connect(t, 2_000);
        if t.protocol == Protocol::Tcp {
            // TCP: every established connection keeps its backend, removed or not.
            assert_eq!(&backend(&o), b);
            assert!(matches!(o, Outcome::Established { .. }));
        } else if b == "10.1.0.2:8080" {
            // UDP to the removed endpoint: the entry was cleared, the next packet is a new flow.
            assert!(matches!(&o, Outcome::New { backend, .. } if backend.endpoint == "10.1.0.1:8080"), "{o:?}");
        } else {
            assert!(matches!(o, Outcome::Established { .. }));
        }
    }
    // New connections never reach the removed endpoint.
    for i in 0..50u16 {
        assert_eq!(backend(&kp.connect(&tuple(client(2), 9000 + i, CLUSTER_IP, 80), 3_000)), "10.1.0.1:8080");
    }
}

#[test]
fn ipvs_drains_removed_endpoints_with_weight_zero() {
    let svc = service(json!({}));
    let mut kp = proxy(Mode::Ipvs, &svc, &[ready_slice("web-1", 3)], 1);
    let mut held = None;
    for i in 0..3u16 {
        let t = tuple(client(1), 100 + i, CLUSTER_IP, 80);
        if backend(&kp.connect(&t, 0)) == "10.1.0.2:8080" {
            held = Some(t);
        }
    }
    let held = held.expect("round robin visits every server");
    let eps = ["10.1.0.1", "10.1.0.3"].iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect();
    kp.on_slice(&slice_of("web-1", eps, "TCP"));
    kp.tick(1_000);
    let text = kp.render_rules(View::KubeProxy);
    assert!(text.contains("-> 10.1.0.2:8080                Masq    0      1"), "{text}");
    for i in 0..20u16 {
        assert_ne!(backend(&kp.connect(&tuple(client(3), 500 + i, CLUSTER_IP, 80), 1_500)), "10.1.0.2:8080");
    }
    assert_eq!(backend(&kp.connect(&held, 1_600)), "10.1.0.2:8080", "the established connection stays");
    kp.close(&held);
    assert!(!kp.render_rules(View::KubeProxy).contains("10.1.0.2:8080"), "drained server removed after its last connection");
}

#[test]
fn each_node_syncs_on_its_own_clock() {
    let svc = service(json!({}));
    let mut a = KubeProxy::new(config("node-a", Mode::Iptables), 1);
    let mut b = KubeProxy::new(config("node-b", Mode::Iptables), 2);
    for kp in [&mut a, &mut b] {
        kp.on_service(&svc);
        kp.on_slice(&ready_slice("web-1", 1));
        // Nothing is programmed before both initial lists.
        kp.services_listed();
        assert_eq!(kp.tick(0), None);
        kp.slices_listed();
    }
    assert!(a.tick(0).is_some());
    assert!(b.tick(500).is_some());
    let coalesced_before = b.runner.coalesced;
    // A burst of slice changes at 0.6 s .. 0.9 s.
    for (i, t) in [600u64, 700, 800, 900].iter().enumerate() {
        for kp in [&mut a, &mut b] {
            kp.on_slice(&ready_slice("web-1", 2 + i));
            assert!(kp.tick(*t).is_none(), "at most one sync per minSyncPeriod");
        }
    }
    assert_eq!(a.next_sync_at(), Some(1_000));
    assert_eq!(b.next_sync_at(), Some(1_500));
    let ra = a.tick(1_000).expect("node a syncs at 1.0 s");
    assert_eq!(ra.services, vec!["default/web".to_string()]);
    assert!(b.tick(1_000).is_none());
    // Between 1.0 s and 1.5 s the nodes disagree: b still routes with its old view.
    let seen = |kp: &mut KubeProxy| -> std::collections::BTreeSet<String> {
        (0..400u16).map(|i| backend(&kp.pick(&tuple(client(1), i + 1, CLUSTER_IP, 80), 1_200))).collect()
    };
    assert_eq!(seen(&mut a).len(), 5);
    assert_eq!(seen(&mut b).len(), 1);
    assert!(b.tick(1_500).is_some());
    assert_eq!(seen(&mut b).len(), 5);
    assert_eq!(b.runner.syncs, 2, "the burst was coalesced into one sync");
    assert_eq!(b.runner.coalesced - coalesced_before, 3);
}

#[test]
fn partial_syncs_touch_only_changed_services() {
    let svc = service(json!({}));
    let mut other = service(json!({"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"]}));
    other.metadata.name = Some("api".into());
    let mut kp = KubeProxy::new(config("node-0", Mode::Iptables), 1);
    kp.on_service(&svc);
    kp.on_service(&other);
    kp.on_slice(&ready_slice("web-1", 3));
    kp.services_listed();
    kp.slices_listed();
    let first = kp.tick(0).unwrap();
    assert!(first.full);
    kp.on_slice(&ready_slice("web-1", 4));
    let r = kp.tick(1_000).unwrap();
    assert!(!r.full);
    assert_eq!(r.services, vec!["default/web".to_string()]);
    // Re-sending an identical slice is no change at all.
    kp.on_slice(&ready_slice("web-1", 4));
    assert_eq!(kp.next_sync_at(), None);
}

#[test]
fn rule_shapes_per_mode() {
    let svc = service(json!({}));
    // One endpoint: iptables jumps unconditionally, nftables still uses a modulo-1 map.
    let ipt = proxy(Mode::Iptables, &svc, &[ready_slice("web-1", 1)], 1).render_rules(View::KubeProxy);
    assert!(!ipt.contains("--probability"));
    let nft = proxy(Mode::Nftables, &svc, &[ready_slice("web-1", 1)], 1).render_rules(View::KubeProxy);
    assert!(nft.contains("numgen random mod 1 vmap { 0 : goto endpoint-"), "{nft}");
    // Three endpoints: 1/3 then 1/2, as kube-proxy writes it and as iptables-save reads it back.
    let kp = proxy(Mode::Iptables, &svc, &[ready_slice("web-1", 3)], 1);
    let written = kp.render_rules(View::KubeProxy);
    assert!(written.contains("--probability 0.3333333333 ") && written.contains("--probability 0.5000000000 "));
    let saved = kp.render_rules(View::IptablesSave);
    assert!(saved.contains("--probability 0.33333333349 ") && saved.contains("--probability 0.50000000000 "), "{saved}");
    assert!(saved.contains("-d 10.96.0.10/32 -p tcp -m comment"), "{saved}");
    // IPVS: weight 1, rr by default.
    let ipvs = proxy(Mode::Ipvs, &svc, &[ready_slice("web-1", 2)], 1).render_rules(View::KubeProxy);
    assert!(ipvs.contains("TCP  10.96.0.10:80 rr\n  -> 10.1.0.1:8080                Masq    1"), "{ipvs}");
    // Large cluster mode: more than 1000 endpoints, no comments.
    let big = proxy(Mode::Iptables, &svc, &[ready_slice("web-1", 1001)], 1).render_rules(View::KubeProxy);
    assert!(!big.contains("default/web:http ->"));
}

#[test]
fn a_node_proxy_handles_one_family() {
    let svc = service(json!({"clusterIPs": [CLUSTER_IP, "fd00::10"], "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack"}));
    let v6: EndpointSlice = decode(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "web-v6", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
               "addressType": "IPv6", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
               "endpoints": [{"addresses": ["FD00:0:0:0:0:0:1:5"], "conditions": {"ready": true}}]}),
        "EndpointSlice",
    )
    .unwrap();
    let mut cfg = config("node-0", Mode::Iptables);
    cfg.family = IpFamily::V6;
    cfg.net.local_detector = None;
    let mut kp = KubeProxy::new(cfg, 1);
    kp.on_service(&svc);
    kp.on_slice(&ready_slice("web-1", 2));
    kp.on_slice(&v6);
    kp.services_listed();
    kp.slices_listed();
    kp.sync(0);
    let t = FiveTuple { src: "fd00::99".parse().unwrap(), src_port: 1, dst: "fd00::10".parse().unwrap(), dst_port: 80, protocol: Protocol::Tcp };
    assert_eq!(backend(&kp.connect(&t, 0)), "[fd00::1:5]:8080");
    assert!(matches!(kp.connect(&tuple(client(1), 1, CLUSTER_IP, 80), 0), Outcome::NotAService));
}

#[test]
fn health_check_counts_ready_local_endpoints_only() {
    let lb = service(json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}));
    let ready = slice_of("web-1", vec![ep_value(&Ep("10.1.0.1", "node-0", true, true, false, None))], "TCP");
    let mut kp = proxy(Mode::Iptables, &lb, &[ready], 1);
    assert_eq!(kp.health_check("default", "web").status, 200);
    let term = slice_of("web-1", vec![ep_value(&Ep("10.1.0.1", "node-0", false, true, true, None))], "TCP");
    kp.on_slice(&term);
    kp.tick(1_000);
    // The load balancer drains this node, while kube-proxy still forwards to the terminating pod.
    assert_eq!(kp.health_check("default", "web").status, 503);
    assert_eq!(backend(&kp.connect(&tuple("203.0.113.2".parse().unwrap(), 1, NODE_IP, 30080), 1_000)), "10.1.0.1:8080");
}

#[test]
fn nodes_that_sync_the_same_port_share_one_state_and_keep_their_own_local_sets() {
    use slicelab_core::proxy::cache::SharedMerges;
    let eps: Vec<Value> = (0..6).map(|i| ep_value(&Ep(["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"][i], ["node-0", "node-1", "node-2"][i % 3], true, true, false, None))).collect();
    let slices = [slice_of("web-1", eps, "TCP")];
    // As the simulation does: each slice read once for every node, merges shared.
    let nodes = |svc: &Service| -> Vec<KubeProxy> {
        let shared = SharedMerges::default();
        let hints = KubeProxy::new(config("node-0", Mode::Iptables), 1).reads_node_hints();
        let prepared: Vec<_> = slices.iter().map(|s| slicelab_core::proxy::cache::prepare(s, hints)).collect();
        ["node-0", "node-1", "node-2"]
            .iter()
            .map(|n| {
                let mut kp = KubeProxy::new(config(n, Mode::Iptables), 1);
                kp.share_merges(shared.clone());
                kp.on_service(svc);
                for (s, p) in slices.iter().zip(&prepared) {
                    kp.on_slice_prepared(s, p);
                }
                kp.services_listed();
                kp.slices_listed();
                kp.sync(0);
                kp
            })
            .collect()
    };
    let alone = |svc: &Service, node: &str| -> KubeProxy {
        let mut kp = KubeProxy::new(config(node, Mode::Iptables), 1);
        kp.on_service(svc);
        for s in &slices {
            kp.on_slice(s);
        }
        kp.services_listed();
        kp.slices_listed();
        kp.sync(0);
        kp
    };
    let state = |kp: &KubeProxy| kp.ports().next().map(|p| p as *const _).unwrap();
    // Cluster policy: the same sync everywhere, one state for all three nodes.
    let svc = service(json!({}));
    let kps = nodes(&svc);
    assert!(state(&kps[0]) == state(&kps[1]) && state(&kps[1]) == state(&kps[2]));
    for kp in &kps {
        let own = alone(&svc, &kp.config.node_name);
        assert_eq!(kp.ports().next().unwrap().cat, own.ports().next().unwrap().cat);
    }
    // Local policy: each node its own local set (the endpoints on it), as without sharing.
    let svc = service(json!({"internalTrafficPolicy": "Local"}));
    let mut kps = nodes(&svc);
    assert!(state(&kps[0]) != state(&kps[1]));
    for (i, kp) in kps.iter_mut().enumerate() {
        let own = alone(&svc, &kp.config.node_name);
        let got = kp.ports().next().unwrap();
        assert_eq!(got.cat, own.ports().next().unwrap().cat);
        let local: Vec<String> = got.cat.local_or_empty().iter().map(|&j| got.endpoints[j].ip.clone()).collect();
        assert_eq!(local, [["10.1.0.1", "10.1.0.4"], ["10.1.0.2", "10.1.0.5"], ["10.1.0.3", "10.1.0.6"]][i]);
        let seen: std::collections::BTreeSet<String> =
            (0..200u16).map(|p| backend(&kp.pick(&tuple("10.1.7.7".parse().unwrap(), 1000 + p, CLUSTER_IP, 80), 0))).collect();
        assert_eq!(seen, local.iter().map(|ip| format!("{ip}:8080")).collect());
        assert_eq!(kp.health_check("default", "web").local_endpoints, 2);
    }
}
