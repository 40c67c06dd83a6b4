//! The simulation: every built-in scenario runs with its invariants checked as it goes, runs are
//! deterministic, and bad scenarios are clear errors.

use slicelab_core::sim::scenario::{parse_duration_ms, Scenario};
use slicelab_core::sim::{Action, Sim};

fn run_checked(sc: &Scenario, until: u64, every: usize) -> Sim {
    let mut sim = Sim::new(sc).expect("scenario builds");
    let mut steps = 0usize;
    while let Some(t) = sim.next_time() {
        if t > until {
            break;
        }
        sim.step();
        steps += 1;
        if steps % every == 0 {
            if let Err(e) = sim.check_invariants() {
                panic!("{}: t={}ms: {e}", sc.id, sim.now);
            }
        }
    }
    sim.run_until(until);
    sim.check_invariants().unwrap_or_else(|e| panic!("{}: at the end: {e}", sc.id));
    sim
}

#[test]
fn every_builtin_scenario_keeps_its_invariants() {
    let all = Scenario::builtin();
    assert_eq!(all.len(), 10, "every built-in scenario parses");
    for sc in &all {
        let pods: u32 = sc.world.workloads.iter().map(|w| w.replicas).sum();
        let every = if pods > 500 { 500 } else { 1 };
        let sim = run_checked(sc, 180_000, every);
        assert!(!sim.log.is_empty(), "{} logged nothing", sc.id);
    }
}

#[test]
fn scale_to_350_makes_four_slices_and_back_to_zero_leaves_a_placeholder() {
    let sc = Scenario::by_id("scale-0-350-0").expect("built in");
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(60_000);
    let sizes: Vec<usize> = sim.api.slices().map(|s| s.endpoints.as_ref().map_or(0, Vec::len)).collect();
    let mut sorted = sizes.clone();
    sorted.sort();
    assert_eq!(sorted, vec![50, 100, 100, 100]);
    sim.run_until(300_000);
    let sizes: Vec<usize> = sim.api.slices().map(|s| s.endpoints.as_ref().map_or(0, Vec::len)).collect();
    assert_eq!(sizes, vec![0], "one empty placeholder slice remains");
}

#[test]
fn same_inputs_same_trace_and_seed_matters() {
    let sc = Scenario::by_id("readiness-flap-storm").expect("built in");
    let a = {
        let mut s = Sim::new(&sc).expect("builds");
        s.run_until(60_000);
        s.trace_hash()
    };
    let b = {
        let mut s = Sim::new(&sc).expect("builds");
        s.run_until(60_000);
        s.trace_hash()
    };
    assert_eq!(a, b);
    let mut other = sc.clone();
    other.seed += 1;
    let mut s = Sim::new(&other).expect("builds");
    s.run_until(60_000);
    assert_ne!(a, s.trace_hash());
}

#[test]
fn a_node_with_a_cut_watch_keeps_a_stale_view() {
    let sc = Scenario::by_id("scale-0-350-0").expect("built in");
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(60_000);
    sim.act(Action::CutWatch { node: "node-zone-a-0".into() });
    sim.act(Action::Scale { workload: "web".into(), replicas: 10 });
    sim.run_until(100_000);
    let count = |sim: &Sim, node: &str| -> usize {
        sim.proxies[node].programmed_endpoints()
    };
    assert_eq!(count(&sim, "node-zone-a-0"), 350, "the cut node still routes to all 350");
    assert_eq!(count(&sim, "node-zone-b-0"), 10, "a connected node follows");
    sim.act(Action::RestoreWatch { node: "node-zone-a-0".into() });
    sim.run_until(103_000);
    assert_eq!(count(&sim, "node-zone-a-0"), 10, "after the relist it catches up");
}

#[test]
fn bad_scenarios_and_durations_are_clear_errors() {
    assert!(Scenario::parse("{").unwrap_err().contains("JSON"));
    assert!(Scenario::parse("{\"id\":\"x\"}").unwrap_err().contains("scenario"));
    let bad_max = r#"{"id":"x","title":"t","description":"d","seed":1,"config":{"maxEndpointsPerSlice":0},"world":{"zones":["a"]}}"#;
    assert!(Scenario::parse(bad_max).unwrap_err().contains("1..1000"));
    let no_nodes = r#"{"id":"x","title":"t","description":"d","seed":1,"world":{}}"#;
    assert!(Scenario::parse(no_nodes).unwrap_err().contains("no nodes"));
    let bad_action = r#"{"id":"x","title":"t","description":"d","seed":1,"world":{"zones":["a"]},"actions":[{"at":"1s","action":{"type":"explode"}}]}"#;
    assert!(Scenario::parse(bad_action).is_err());
    assert_eq!(parse_duration_ms("10m"), Ok(600_000));
    assert_eq!(parse_duration_ms("1500ms"), Ok(1500));
    assert!(parse_duration_ms("soon").is_err());
    assert!(parse_duration_ms("-1s").is_err());
}

#[test]
fn actions_on_missing_objects_change_nothing_and_do_not_panic() {
    let sc = Scenario::by_id("headless-dns").expect("built in");
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(30_000);
    let before = sim.api.resource_version();
    for a in [
        Action::KillPod { pod: "nope".into() },
        Action::FailNode { node: "nope".into() },
        Action::Scale { workload: "nope".into(), replicas: 3 },
        Action::SetMaxEndpointsPerSlice { max: 0 },
        Action::EditService { service: "db".into(), patch: serde_json::json!({"spec": {"ports": "x"}}) },
        Action::RestoreWatch { node: "nope".into() },
    ] {
        sim.act(a);
    }
    sim.run_until(31_000);
    assert_eq!(sim.api.resource_version(), before, "no object changed");
}

#[test]
fn seeking_back_and_forth_lands_on_the_same_state_as_a_straight_run() {
    use slicelab_core::sim::timeline::Timeline;
    let sc = Scenario::by_id("readiness-flap-storm").expect("built in");
    let mut straight = Sim::new(&sc).expect("builds");
    straight.run_until(90_000);
    let mut tl = Timeline::new(sc.clone(), Vec::new()).expect("builds");
    tl.seek(120_000);
    tl.seek(30_000);
    assert_eq!(tl.now(), 30_000);
    tl.seek(90_000);
    assert_eq!(tl.current.trace_hash(), straight.trace_hash());
    assert_eq!(tl.current.log.len(), straight.log.len());
    tl.step_back();
    assert!(tl.now() < 90_000);
    tl.step_forward();
}

#[test]
fn an_action_in_the_past_forks_the_timeline() {
    use slicelab_core::sim::timeline::Timeline;
    let sc = Scenario::by_id("scale-0-350-0").expect("built in");
    let mut tl = Timeline::new(sc.clone(), Vec::new()).expect("builds");
    tl.seek(90_000);
    let before = tl.current.trace_hash();
    tl.act_at(70_000, Action::Scale { workload: "web".into(), replicas: 120 });
    assert_eq!(tl.now(), 90_000);
    assert_ne!(tl.current.trace_hash(), before);
    let total: usize = tl.current.api.slices().map(|s| s.endpoints.as_ref().map_or(0, Vec::len)).sum();
    assert_eq!(total, 120);
    // The same action known from the start (a link opened later) gives the same run.
    let direct = run_with(&sc, 70_000, Action::Scale { workload: "web".into(), replicas: 120 }, 90_000);
    assert_eq!(direct.trace_hash(), tl.current.trace_hash());
}

/// A scenario run to `until` with one action at `at` known from the start.
fn run_with(sc: &Scenario, at: u64, action: Action, until: u64) -> Sim {
    use slicelab_core::sim::scenario::{Millis, TimedAction};
    let mut sim = Sim::with_actions(sc, &[TimedAction { at: Millis(at), action }]).expect("builds");
    sim.run_until(until);
    sim
}

#[test]
fn over_1000_endpoints_truncates_the_legacy_object_but_not_the_slices() {
    use slicelab_core::sim::api::{Kind, Obj};
    let sc = Scenario::by_id("over-1000-endpoints").expect("built in");
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(120_000);
    let slice_eps: usize = sim.api.slices().map(|s| s.endpoints.as_ref().map_or(0, Vec::len)).sum();
    assert_eq!(slice_eps, 1200);
    let ep = match sim.api.get(Kind::Endpoints, "default/big") {
        Some(Obj::Endpoints(e)) => e.clone(),
        other => panic!("no Endpoints object: {other:?}"),
    };
    let n: usize = ep.subsets.iter().flatten().map(|s| s.addresses.as_ref().map_or(0, Vec::len)).sum();
    assert_eq!(n, 1000);
    assert_eq!(
        ep.metadata.annotations.as_ref().and_then(|a| a.get("endpoints.kubernetes.io/over-capacity")).map(String::as_str),
        Some("truncated")
    );
}

#[test]
fn stepping_back_uses_the_dense_snapshots_and_lands_where_a_straight_run_does() {
    use slicelab_core::sim::timeline::Timeline;
    let sc = Scenario::by_id("readiness-flap-storm").expect("built in");
    let mut tl = Timeline::new(sc.clone(), Vec::new()).expect("builds");
    tl.seek(200_000);
    assert_eq!(tl.recent_count(), 0, "a jump takes no dense snapshots");
    for i in 0..5 {
        tl.step_back();
        let t = tl.now();
        let mut straight = Sim::new(&sc).expect("builds");
        straight.run_until(t);
        assert_eq!(tl.current.trace_hash(), straight.trace_hash(), "at {t}");
        assert_eq!(tl.current.log.len(), straight.log.len(), "at {t}");
        if i == 0 {
            assert!(tl.recent_count() > 0, "the first step back takes dense snapshots");
        }
    }
    // Playing on takes them too.
    let held = tl.recent_count();
    let now = tl.now();
    for k in 1..=4 {
        tl.seek(now + k * 500);
    }
    assert!(tl.recent_count() >= held.min(4), "dense snapshots kept while playing on: {}", tl.recent_count());
    // Back and forth across them, and far away and back: still the straight run.
    for t in [193_500, 199_900, 60_000, 198_000, 200_000] {
        tl.seek(t);
        let mut straight = Sim::new(&sc).expect("builds");
        straight.run_until(t);
        assert_eq!(tl.current.trace_hash(), straight.trace_hash(), "at {t}");
    }
    // A fork drops them; they come back as the timeline runs on.
    tl.act_at(150_000, Action::Scale { workload: "web".into(), replicas: 5 });
    tl.seek(199_000);
    let direct = run_with(&sc, 150_000, Action::Scale { workload: "web".into(), replicas: 5 }, 199_000);
    assert_eq!(tl.current.trace_hash(), direct.trace_hash());
}

#[test]
fn a_large_cluster_keeps_fewer_snapshots_and_still_seeks_exactly() {
    use slicelab_core::sim::timeline::Timeline;
    // 2,000 Pods: a snapshot costs twice what it does at 1,000, so half as many are kept.
    let mut sc = Scenario::by_id("scale-0-350-0").expect("built in");
    sc.actions.clear();
    let text = serde_json::to_string(&sc).expect("serializes").replace("\"replicas\":0", "\"replicas\":2000");
    let sc = Scenario::parse(&text).expect("parses");
    let mut tl = Timeline::new(sc.clone(), Vec::new()).expect("builds");
    // Long enough that 5-second snapshots would pass the cap (300 s: 60 of them).
    tl.seek(300_000);
    assert_eq!(tl.current.api.pods().count(), 2000, "the cluster grew");
    assert!(tl.snapshot_count() <= Timeline::MAX_SNAPSHOTS / 2, "sparse snapshots at 2,000 Pods: {}", tl.snapshot_count());
    assert!(tl.recent_count() <= 4, "dense snapshots at 2,000 Pods: {}", tl.recent_count());
    for t in [40_000, 299_000, 100_000] {
        tl.seek(t);
        let mut straight = Sim::new(&sc).expect("builds");
        straight.run_until(t);
        assert_eq!(tl.current.trace_hash(), straight.trace_hash(), "at {t}");
    }
}

#[test]
fn a_seek_spread_over_steps_lands_where_a_seek_does() {
    use slicelab_core::sim::timeline::Timeline;
    let sc = Scenario::by_id("readiness-flap-storm").expect("built in");
    let mut tl = Timeline::new(sc.clone(), Vec::new()).expect("builds");
    tl.seek(150_000);
    // Back to 70 s: rewind to a snapshot, step toward the target a few events at a time, land.
    for t in [70_000, 149_000, 20_000] {
        tl.rewind(t);
        assert!(tl.now() <= t);
        while tl.current.next_time().is_some_and(|n| n <= t) {
            tl.step_forward();
        }
        tl.seek(t);
        let mut straight = Sim::new(&sc).expect("builds");
        straight.run_until(t);
        assert_eq!(tl.now(), t);
        assert_eq!(tl.current.trace_hash(), straight.trace_hash(), "at {t}");
    }
}

#[test]
fn a_label_change_alone_syncs_only_the_services_it_moves_the_pod_between() {
    let sc = Scenario::by_id("headless-dns").expect("built in");
    let mut probe = Sim::new(&sc).expect("builds");
    probe.run_until(60_000);
    let pod = probe.api.pods().next().expect("a pod").clone();
    let name = pod.metadata.name.clone().unwrap();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let svc = probe.api.services().next().expect("a service").clone();
    let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).expect("a selector");
    let syncs = |action: Option<Action>| -> u64 {
        let mut sim = match action {
            Some(a) => run_with(&sc, 60_000, a, 60_000),
            None => {
                let mut s = Sim::new(&sc).expect("builds");
                s.run_until(60_000);
                s
            }
        };
        let before = sim.controller.syncs;
        sim.run_until(70_000);
        sim.controller.syncs - before
    };
    // Nothing happens between 60 and 70 s on its own.
    assert_eq!(syncs(None), 0);
    // One more label, still selected by the same Services: no sync at all.
    let mut more = labels.clone();
    more.insert("extra".into(), "x".into());
    let relabel = |l: std::collections::BTreeMap<String, String>| Action::RelabelPod { pod: name.clone(), labels: l };
    assert_eq!(syncs(Some(relabel(more))), 0);
    // The selected label removed: the Service loses the pod, so it syncs.
    let mut fewer = labels.clone();
    for k in selector.keys() {
        fewer.remove(k);
    }
    assert!(syncs(Some(relabel(fewer))) >= 1);
}

#[test]
fn watch_bytes_are_the_same_whether_address_lengths_were_remembered_or_counted_again() {
    // A copy starts with no remembered lengths; the original goes on with them. Both must charge
    // watchers the same bytes for every Endpoints write from there on.
    let sc = Scenario::by_id("readiness-flap-storm").expect("built in");
    let mut sim = Sim::new(&sc).expect("builds");
    sim.run_until(60_000);
    let mut copy = sim.clone();
    let before = sim.api.watch_bytes.get("Endpoints").copied().unwrap_or(0);
    sim.run_until(180_000);
    copy.run_until(180_000);
    let after = sim.api.watch_bytes.get("Endpoints").copied().unwrap_or(0);
    assert!(after > before, "Endpoints were written in between");
    assert_eq!(sim.api.watch_bytes.get("Endpoints"), copy.api.watch_bytes.get("Endpoints"));
    assert_eq!(sim.trace_hash(), copy.trace_hash());
}

/// A replay takes the controllers' decisions (and the workloads' plans) from the timeline's memo,
/// and they are the decisions the controllers make: over every built-in scenario (topology hints, two families, truncated
/// Endpoints, node loss, a rollout, selector-less Services), seeks back replay from snapshots, the
/// memo is used, the run lands on the straight run's state, and no check found a difference (debug
/// builds compute every outcome taken from the memo too, and record a violation if they differ).
#[test]
fn replays_take_the_controllers_decisions_from_the_memo_and_they_agree() {
    use slicelab_core::sim::timeline::Timeline;
    let mut used = Vec::new();
    for sc in Scenario::builtin() {
        let id = sc.id.clone();
        let mut tl = Timeline::new(sc.clone(), Vec::new()).expect("builds");
        tl.seek(150_000);
        let (_, _, hits) = tl.memo_stats();
        assert_eq!(hits, 0, "{id}: a first run computes every sync");
        let mut straight = Sim::new(&sc).expect("builds");
        for t in (1..20).map(|k| k * 7_300) {
            tl.seek(150_000);
            tl.seek(t);
            straight.run_until(t);
            assert_eq!(tl.current.trace_hash(), straight.trace_hash(), "{id} at {t}");
            assert_eq!(tl.current.api.resource_version(), straight.api.resource_version(), "{id} at {t}");
            assert!(tl.current.violations.is_empty(), "{id} at {t}: {:?}", tl.current.violations);
        }
        let (_, _, hits) = tl.memo_stats();
        eprintln!("{id}: {hits} syncs taken from the memo");
        used.push(hits);
    }
    // Not every scenario syncs between a snapshot and a seek's target (two sync a few times a
    // minute, and the mirroring controller of the selector-less one is not memoized).
    assert!(used.iter().filter(|&&h| h > 0).count() >= 7, "the replays used the memo: {used:?}");
    assert!(used.iter().sum::<u64>() >= 200, "the replays used the memo: {used:?}");
}
