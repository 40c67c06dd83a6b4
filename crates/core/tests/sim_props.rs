//! Property tests: random action sequences on a small cluster, with the invariants checked after
//! every event and, once everything is recovered and quiet, the settled-state checks.
//! PROPTEST_CASES raises the count (the default here keeps `cargo test` quick).

use proptest::prelude::*;
use slicelab_core::sim::scenario::{Millis, Scenario, TimedAction};
use slicelab_core::sim::{Action, Sim};

fn base() -> Scenario {
    Scenario::parse(
        r#"{"id":"prop","title":"prop","description":"random actions","seed":1,
        "config":{"evictionTimeout":"20s","nodeMonitorGrace":"5s"},
        "world":{"zones":["zone-a","zone-b","zone-c"],"nodesPerZone":2,
          "services":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
             "spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":"http"}]}}],
          "workloads":[{"name":"web","replicas":12,"labels":{"app":"web"},"ports":[{"name":"http","port":8080}],
             "readinessDelay":"1s","terminationGracePeriodSeconds":3}]},
        "traffic":[{"service":"web","rate":20}]}"#,
    )
    .expect("base scenario parses")
}

const NODES: [&str; 6] =
    ["node-zone-a-0", "node-zone-a-1", "node-zone-b-0", "node-zone-b-1", "node-zone-c-0", "node-zone-c-1"];

fn action() -> impl Strategy<Value = Action> {
    let node = (0..NODES.len()).prop_map(|i| NODES[i].to_string());
    let pod = (0usize..64).prop_map(|i| format!("#{i}"));
    prop_oneof![
        (0u32..60).prop_map(|r| Action::Scale { workload: "web".into(), replicas: r }),
        pod.clone().prop_map(|p| Action::KillPod { pod: p }),
        (pod.clone(), any::<bool>()).prop_map(|(p, r)| Action::SetPodReady { pod: p, ready: r }),
        pod.clone().prop_map(|p| Action::DeletePod { pod: p }),
        (pod, any::<bool>()).prop_map(|(p, keep)| Action::RelabelPod {
            pod: p,
            labels: [("app".to_string(), if keep { "web" } else { "other" }.to_string())].into(),
        }),
        node.clone().prop_map(|n| Action::FailNode { node: n }),
        node.clone().prop_map(|n| Action::RecoverNode { node: n }),
        node.clone().prop_map(|n| Action::DrainNode { node: n }),
        node.clone().prop_map(|n| Action::CutWatch { node: n }),
        node.prop_map(|n| Action::RestoreWatch { node: n }),
        (1usize..40).prop_map(|m| Action::SetMaxEndpointsPerSlice { max: m }),
        Just(Action::RollOut { workload: "web".into() }),
        (0u64..500).prop_map(|ms| Action::SetApiLatency { ms }),
        (0u32..100).prop_map(|r| Action::SetTrafficRate { rate: r as f64, flow: None }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_random_actions(
        seed in any::<u64>(),
        acts in proptest::collection::vec((0u64..90_000, action()), 0..25),
    ) {
        let mut sc = base();
        sc.seed = seed;
        let mut timed: Vec<TimedAction> = acts.into_iter().map(|(at, action)| TimedAction { at: Millis(at), action }).collect();
        // At the end everything recovers, so the cluster can settle.
        for n in NODES {
            timed.push(TimedAction { at: Millis(100_000), action: Action::RecoverNode { node: n.into() } });
            timed.push(TimedAction { at: Millis(100_000), action: Action::RestoreWatch { node: n.into() } });
        }
        let mut sim = Sim::with_actions(&sc, &timed).expect("builds");
        while sim.next_time().is_some_and(|t| t <= 160_000) {
            sim.step();
            if let Err(e) = sim.check_invariants() {
                prop_assert!(false, "t={}ms: {e}", sim.now);
            }
        }
        sim.run_until(160_000);
        prop_assert!(sim.controller_settled(), "the controller settles once the actions stop");
        prop_assert!(sim.check_invariants().is_ok(), "{:?}", sim.check_invariants());
        // Every connected kube-proxy has caught up with the API server.
        let slices: usize = sim.api.slices().map(|s| s.endpoints.as_ref().map_or(0, Vec::len)).sum();
        for (node, p) in &sim.proxies {
            prop_assert_eq!(p.programmed_endpoints(), slices, "node {} is stale", node);
        }
        // Once settled (the last 10 s of the run), no connection is sent to a Pod that is gone or dead.
        let st = &sim.traffic.stats;
        let tail: Vec<&[u32; 4]> = st.per_second.iter().skip(150).collect();
        prop_assert!(tail.iter().all(|s| s[2] == 0 && s[3] == 0), "failures after settling: {:?}", tail);
    }

    /// Acting anywhere on a timeline (forks at random times, from random places) gives the very run a
    /// link with those actions gives when opened afresh.
    #[test]
    fn a_forked_timeline_is_the_run_its_link_gives(
        seed in any::<u64>(),
        // Often exactly on a snapshot's instant (every 5 s) or at the very start.
        acts in proptest::collection::vec((prop_oneof![0u64..60_000, (0u64..12).prop_map(|k| k * 5_000)], action(), 0u64..70_000), 1..8),
    ) {
        use slicelab_core::sim::timeline::Timeline;
        let mut sc = base();
        sc.seed = seed;
        let mut tl = Timeline::new(sc.clone(), Vec::new()).expect("builds");
        for (at, action, from) in acts {
            tl.seek(from);
            tl.act_at(at, action);
        }
        tl.seek(70_000);
        let mut link = Sim::with_actions(&sc, &tl.actions).expect("builds");
        link.run_until(70_000);
        prop_assert_eq!(tl.current.trace_hash(), link.trace_hash());
        prop_assert_eq!(tl.current.log.len(), link.log.len());
    }
}
