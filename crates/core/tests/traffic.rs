//! Traffic through the simulation: each connection is resolved by DNS and routed by its node's own
//! kube-proxy view, then meets the real world (a gone Pod resets it, a dead node times it out).

use slicelab_core::sim::scenario::Scenario;
use slicelab_core::sim::traffic::ConnOutcome;
use slicelab_core::sim::{Action, Sim};

const SERVED: usize = 0;
const REFUSED: usize = 1;
const TIMED_OUT: usize = 2;
const RESET: usize = 3;

fn two_nodes(extra_service: &str, flows: &str) -> Scenario {
    Scenario::parse(&format!(
        r#"{{"id":"t","title":"t","description":"traffic","seed":7,
        "world":{{"zones":["zone-a","zone-b"],"nodesPerZone":1,
          "services":[{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"web"}},
             "spec":{{"selector":{{"app":"web"}},"ports":[{{"name":"http","port":80,"targetPort":"http"}}]{extra_service}}}}}],
          "workloads":[{{"name":"web","replicas":6,"labels":{{"app":"web"}},"ports":[{{"name":"http","port":8080}}],
             "readinessDelay":"1s","terminationGracePeriodSeconds":5}}]}},
        "traffic":{flows}}}"#
    ))
    .expect("scenario parses")
}

fn per_node(sim: &Sim, node: &str) -> [u64; 4] {
    sim.traffic.stats.per_node.get(node).copied().unwrap_or_default()
}

fn delta(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    [b[0] - a[0], b[1] - a[1], b[2] - a[2], b[3] - a[3]]
}

#[test]
fn a_node_with_a_stale_view_sends_traffic_to_pods_that_are_gone() {
    let sc = two_nodes(
        "",
        r#"[{"service":"web","rate":50,"from":"node-zone-a-0"},{"service":"web","rate":50,"from":"node-zone-b-0"}]"#,
    );
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(20_000);
    let a0 = per_node(&sim, "node-zone-a-0");
    let b0 = per_node(&sim, "node-zone-b-0");
    sim.run_until(30_000);
    let (a, b) = (delta(a0, per_node(&sim, "node-zone-a-0")), delta(b0, per_node(&sim, "node-zone-b-0")));
    assert_eq!(a, [500, 0, 0, 0], "a settled cluster serves every connection");
    assert_eq!(b, [500, 0, 0, 0]);

    // node-zone-a-0 loses its watch; then every Pod goes away.
    sim.act(Action::CutWatch { node: "node-zone-a-0".into() });
    sim.act(Action::Scale { workload: "web".into(), replicas: 0 });
    sim.run_until(50_000);
    let (a1, b1) = (per_node(&sim, "node-zone-a-0"), per_node(&sim, "node-zone-b-0"));
    sim.run_until(60_000);
    let a = delta(a1, per_node(&sim, "node-zone-a-0"));
    let b = delta(b1, per_node(&sim, "node-zone-b-0"));
    assert_eq!(a[RESET], 500, "the stale node still routes to the gone Pods: every connection is reset ({a:?})");
    assert_eq!(b[REFUSED], 500, "a node that followed has no endpoint: REJECT ({b:?})");
    assert!(sim.log.iter().any(|e| e.actor == "traffic" && e.what.contains("reset") && e.cause.contains("no Pod has")));

    // Restored, it relists and refuses like the others.
    sim.act(Action::RestoreWatch { node: "node-zone-a-0".into() });
    sim.run_until(65_000);
    let a2 = per_node(&sim, "node-zone-a-0");
    sim.run_until(70_000);
    assert_eq!(delta(a2, per_node(&sim, "node-zone-a-0"))[REFUSED], 250);
    sim.check_invariants().expect("invariants hold");
}

#[test]
fn a_failed_node_times_out_connections_until_its_pods_leave_every_view() {
    let sc = Scenario::by_id("node-failure-3-zones").expect("built in");
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(25_000);
    let before = sim.traffic.stats.by_outcome;
    sim.run_until(30_000);
    assert_eq!(delta(before, sim.traffic.stats.by_outcome), [300, 0, 0, 0], "all served before the failure");
    // The node stops at 30 s; for the 40 s grace period its Pods still look ready everywhere.
    sim.run_until(60_000);
    let mid = sim.traffic.stats.by_outcome;
    assert!(mid[TIMED_OUT] > before[TIMED_OUT] + 100, "connections to the dead node's Pods time out: {mid:?}");
    // Once the Pods are marked not ready and every kube-proxy synced, nothing is sent there.
    sim.run_until(80_000);
    let settled = sim.traffic.stats.by_outcome;
    sim.run_until(90_000);
    assert_eq!(delta(settled, sim.traffic.stats.by_outcome), [600, 0, 0, 0]);
    sim.check_invariants().expect("invariants hold");
}

#[test]
fn session_affinity_keeps_a_client_on_one_pod() {
    let sc = two_nodes(r#","sessionAffinity":"ClientIP""#, r#"[{"service":"web","rate":20,"from":"node-zone-a-0"}]"#);
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(30_000);
    let served: Vec<_> = sim.traffic.stats.per_pod.iter().filter(|(_, n)| **n > 0).collect();
    // Clients on one node share one source address: after the first pick, all go to the same Pod.
    let (top, n) = served.iter().max_by_key(|(_, n)| **n).expect("something was served");
    let total = sim.traffic.stats.by_outcome[SERVED];
    assert!(**n >= total - 20, "affinity: {top} got {n} of {total}");
}

#[test]
fn without_affinity_every_ready_pod_gets_a_share() {
    let sc = two_nodes("", r#"[{"service":"web","rate":200}]"#);
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(60_000);
    let st = &sim.traffic.stats;
    assert_eq!(st.per_pod.len(), 6, "{:?}", st.per_pod);
    let served = st.by_outcome[SERVED] as f64;
    for (pod, n) in &st.per_pod {
        let share = *n as f64 / served;
        assert!((share - 1.0 / 6.0).abs() < 0.03, "{pod} got {share:.3}");
    }
}

#[test]
fn external_traffic_policy_local_drops_at_nodes_without_endpoints() {
    let sc = Scenario::parse(
        r#"{"id":"t","title":"t","description":"eTP Local","seed":3,
        "world":{"zones":["zone-a","zone-b"],"nodesPerZone":1,
          "nodes":[{"name":"n1","zone":"zone-a"},{"name":"n2","zone":"zone-b"}],
          "services":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
             "spec":{"type":"NodePort","externalTrafficPolicy":"Local","selector":{"app":"web"},
                     "ports":[{"name":"http","port":80,"targetPort":8080}]}}],
          "workloads":[{"name":"web","replicas":1,"labels":{"app":"web"},"ports":[{"name":"http","port":8080}],"readinessDelay":"1s"}]},
        "traffic":[{"service":"web","rate":40,"from":"external"}]}"#,
    )
    .expect("parses");
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(20_000);
    let a = sim.traffic.stats.per_node["external"];
    sim.run_until(30_000);
    let d = delta(a, sim.traffic.stats.per_node["external"]);
    // Outside clients enter at each node in turn; the node without the Pod drops (eTP=Local).
    assert_eq!(d[SERVED], 200, "{d:?}");
    assert_eq!(d[TIMED_OUT], 200, "{d:?}");
    assert!(sim.log.iter().any(|e| e.cause.contains("traffic policy Local")));
}

#[test]
fn headless_services_resolve_to_pod_ips_without_kube_proxy() {
    let sc = Scenario::by_id("headless-dns").expect("built in");
    let mut sim = Sim::new(&sc).expect("builds");
    // Before the scenario scales up at 40 s.
    sim.run_until(35_000);
    let st = &sim.traffic.stats;
    assert!(st.by_outcome[SERVED] > 0);
    let replicas: u32 = sc.world.workloads.iter().map(|w| w.replicas).sum();
    assert_eq!(st.per_pod.len() as u32, replicas, "DNS spreads clients over every ready Pod");
    // After: the new Pods get their share as soon as DNS lists them.
    sim.run_until(70_000);
    assert_eq!(sim.traffic.stats.per_pod.len(), 5);
}

#[test]
fn traffic_rate_changes_and_bad_rates_are_refused() {
    let sc = two_nodes("", r#"[{"service":"web","rate":10}]"#);
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(10_000);
    assert_eq!(sim.traffic.stats.total, 100);
    sim.act(Action::SetTrafficRate { rate: 0.0, flow: None });
    sim.run_until(20_000);
    assert_eq!(sim.traffic.stats.total, 100, "rate 0 stops the clients");
    sim.act(Action::SetTrafficRate { rate: f64::NAN, flow: None });
    sim.act(Action::SetTrafficRate { rate: 5.0, flow: Some(9) });
    sim.act(Action::SetTrafficRate { rate: 30.0, flow: Some(0) });
    sim.run_until(30_000);
    assert_eq!(sim.traffic.stats.total, 400);
    assert!(sim.log.iter().filter(|e| e.what.starts_with("rejected")).count() >= 2);
    let bad = r#"{"id":"x","title":"t","description":"d","seed":1,"world":{"zones":["a"]},"traffic":[{"service":"web","rate":-1}]}"#;
    assert!(Scenario::parse(bad).unwrap_err().contains("rate"));
    let bad_mode = r#"{"id":"x","title":"t","description":"d","seed":1,"config":{"proxyMode":"userspace"},"world":{"zones":["a"]}}"#;
    assert!(Scenario::parse(bad_mode).unwrap_err().contains("proxyMode"));
    assert_eq!(ConnOutcome::ALL.len(), 4);
}

#[test]
fn every_proxy_mode_routes_the_same_world() {
    for mode in ["iptables", "nftables", "ipvs"] {
        let mut sc = two_nodes("", r#"[{"service":"web","rate":60}]"#);
        sc.config.proxy_mode = Some(mode.into());
        let mut sim = Sim::new(&sc).expect("builds");
        sim.run_until(40_000);
        let st = &sim.traffic.stats;
        assert_eq!(st.per_pod.len(), 6, "{mode}: {:?}", st.per_pod);
        let last: u32 = st.per_second.iter().skip(35).take(5).map(|s| s[SERVED]).sum();
        assert_eq!(last, 300, "{mode}: every connection served once settled");
        sim.check_invariants().unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
}
