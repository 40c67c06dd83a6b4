//! The page's view of a simulation: what it reads out must match the objects and the kube-proxies.

use slicelab_core::sim::scenario::Scenario;
use slicelab_core::sim::view::{PodState, FLASH_MS};
use slicelab_core::sim::{Action, Sim};

fn sim(id: &str, until: u64) -> Sim {
    let mut s = Sim::new(&Scenario::by_id(id).expect("scenario")).expect("builds");
    s.run_until(until);
    s
}

#[test]
fn the_cluster_view_holds_every_pod_once_on_its_node() {
    let s = sim("node-failure-3-zones", 40_000);
    let (zones, unscheduled) = s.cluster_view();
    assert_eq!(zones.len(), 3);
    let placed: usize = zones.iter().flat_map(|z| &z.nodes).map(|n| n.pods.len()).sum();
    assert_eq!(placed + unscheduled.len(), s.api.pods().count());
    for z in &zones {
        for n in &z.nodes {
            assert_eq!(n.zone, z.name);
            assert!(n.pods.iter().all(|p| p.node.as_deref() == Some(n.name.as_str())));
        }
    }
    let ready = zones.iter().flat_map(|z| &z.nodes).flat_map(|n| &n.pods).filter(|p| p.state == PodState::Ready).count();
    assert!(ready > 0);
}

#[test]
fn a_counted_cluster_view_counts_what_the_listed_one_lists() {
    // Mid-scale-up and during a node failure: pending, not ready, ready, terminating and failed Pods.
    for (id, t) in [("scale-0-350-0", 8_000), ("node-failure-3-zones", 75_000), ("rolling-update-250", 70_000)] {
        let s = sim(id, t);
        let (listed, unscheduled) = s.cluster_view();
        let (counted, none, unscheduled_states) = s.cluster_view_counted(false);
        assert!(none.is_empty(), "{id}");
        let by_state = |pods: &[slicelab_core::sim::view::PodView]| {
            let mut c = [0usize; 5];
            for p in pods {
                c[p.state as usize] += 1;
            }
            c
        };
        assert_eq!(unscheduled_states, by_state(&unscheduled), "{id}");
        for (lz, cz) in listed.iter().zip(&counted) {
            for (ln, cn) in lz.nodes.iter().zip(&cz.nodes) {
                assert_eq!(ln.name, cn.name);
                assert!(cn.pods.is_empty() && cn.gone.is_empty(), "{id}: a counted view lists no Pod");
                assert_eq!(cn.states, by_state(&ln.pods), "{id} {}", ln.name);
                assert_eq!(ln.states, cn.states, "{id}: the listed view counts too");
            }
        }
        let total: usize = counted.iter().flat_map(|z| &z.nodes).flat_map(|n| n.states).sum::<usize>() + unscheduled_states.iter().sum::<usize>();
        assert_eq!(total, s.api.pods().count(), "{id}");
    }
}

#[test]
fn the_service_view_shows_the_slices_and_their_last_write() {
    let mut s = sim("scale-0-350-0", 30_000);
    let key = s.service_keys()[0].clone();
    let v = s.service_view(&key).expect("the service");
    let total: usize = v.slices.iter().map(|x| x.endpoints.len()).sum();
    assert_eq!(total, 350);
    assert!(v.slices.iter().all(|x| x.endpoints.len() <= 100 && x.address_type == "IPv4"));
    let legacy = v.endpoints.expect("legacy Endpoints");
    assert_eq!(legacy.ready + legacy.not_ready, 350);
    // Kill a Pod: within the flash window its slice shows the write and the step that made it.
    let pod = s.api.pods().next().unwrap().metadata.name.clone().unwrap();
    s.act(Action::KillPod { pod: format!("default/{pod}") });
    let t0 = s.now;
    s.run_until(t0 + 3_000);
    let v = s.service_view(&key).unwrap();
    let flashing: Vec<_> = v.slices.iter().filter_map(|x| x.last_write.clone()).collect();
    assert!(!flashing.is_empty(), "a slice was just written");
    assert!(flashing.iter().all(|(t, verb, cause)| *t + FLASH_MS >= s.now && verb == "update" && cause.contains("step")), "{flashing:?}");
    assert!(v.slices.iter().all(|x| x.endpoints.iter().all(|e| e.pod.as_deref() != Some(pod.as_str()) || !e.ready)));
    s.run_until(t0 + 10_000);
    assert!(s.service_view(&key).unwrap().slices.iter().all(|x| x.last_write.is_none()), "flashes fade");
}

#[test]
fn a_node_with_a_cut_watch_is_stale_and_keeps_its_old_view() {
    let mut s = sim("scale-0-350-0", 30_000);
    let key = s.service_keys()[0].clone();
    let node = s.api.nodes().next().unwrap().metadata.name.clone().unwrap();
    assert!(!s.proxy_stale(&node));
    let before = s.proxy_view(&node, &key).unwrap();
    assert_eq!(before.ports.len(), 1);
    assert_eq!(before.ports[0].endpoints.len(), 350);
    assert_eq!(before.ports[0].endpoints.iter().filter(|e| e.usable).count(), 350);
    s.act(Action::CutWatch { node: node.clone() });
    s.act(Action::Scale { workload: "web".into(), replicas: 100 });
    let t = s.now;
    s.run_until(t + 20_000);
    let after = s.proxy_view(&node, &key).unwrap();
    assert!(after.stale && after.watch_cut);
    assert_eq!(after.ports[0].endpoints.len(), 350, "the node still routes to what it last saw");
    let other = s.api.nodes().nth(1).unwrap().metadata.name.clone().unwrap();
    let fresh = s.proxy_view(&other, &key).unwrap();
    assert!(!fresh.stale);
    assert_eq!(fresh.ports[0].endpoints.len(), 100);
    let (zones, _) = s.cluster_view();
    let n = zones.iter().flat_map(|z| &z.nodes).find(|n| n.name == node).unwrap();
    assert!(n.stale && n.watch_cut);
    assert!(s.proxy_rules(&other, 10_000).contains("KUBE-SVC"));
    assert!(s.proxy_rules(&other, 5).contains("more lines"));
}

#[test]
fn dual_stack_slices_come_ipv4_first_then_ipv6() {
    let s = sim("dual-stack", 30_000);
    let v = s.service_view(&s.service_keys()[0]).unwrap();
    let fams: Vec<&str> = v.slices.iter().map(|x| x.address_type.as_str()).collect();
    assert!(fams.contains(&"IPv4") && fams.contains(&"IPv6"));
    let first_v6 = fams.iter().position(|f| *f == "IPv6").unwrap();
    assert!(fams[..first_v6].iter().all(|f| *f == "IPv4") && fams[first_v6..].iter().all(|f| *f == "IPv6"));
    let recent = s.recent_connections(2_000);
    assert!(!recent.is_empty() && recent.iter().all(|c| c.t + 2_000 >= s.now));
}

#[test]
fn kubectl_views_of_the_live_objects() {
    use slicelab_core::sim::api::Kind;
    use slicelab_core::sim::view::kubectl;
    let s = sim("scale-0-350-0", 30_000);
    let (head, rows) = kubectl::get(&s, Kind::EndpointSlice);
    assert_eq!(head[0], "NAME");
    assert_eq!(rows.len(), s.api.slices().count());
    assert!(rows.iter().all(|r| r[1] == "IPv4" && r.len() == head.len()));
    assert!(rows.iter().any(|r| r[3].contains("more...")));
    let (_, pods) = kubectl::get(&s, Kind::Pod);
    assert_eq!(pods.len(), 350);
    assert!(pods.iter().all(|r| r[4].starts_with("node-")));
    let key = kubectl::keys(&s, Kind::EndpointSlice)[0].clone();
    let y = kubectl::yaml(&s, Kind::EndpointSlice, &key).unwrap();
    assert!(y.contains("addressType: IPv4") && y.contains("kubernetes.io/service-name: web"), "{y}");
    let d = kubectl::describe(&s, Kind::EndpointSlice, &key).unwrap();
    assert!(d.starts_with("Name:") && d.contains("AddressType:  IPv4") && d.contains("Conditions:"));
    assert!(kubectl::yaml(&s, Kind::Pod, "default/nope").is_none());
    // Ages are virtual: nothing is older than the run.
    assert!(rows.iter().all(|r| !r[4].contains('h')), "{rows:?}");
}

#[test]
fn samples_are_taken_once_per_second_and_follow_the_slices() {
    let s = sim("scale-0-350-0", 60_000);
    let v: Vec<_> = s.samples.iter().collect();
    assert!(v.len() > 30 && v.len() <= 61, "{}", v.len());
    assert!(v.windows(2).all(|w| w[0].t / 1000 < w[1].t / 1000));
    let last = v.last().unwrap();
    let eps: usize = s.api.slices().map(|x| x.endpoints.as_ref().map_or(0, Vec::len)).sum();
    assert!(last.t + 1000 > s.now || last.endpoints as usize == eps);
    assert!(v.iter().any(|x| x.endpoints >= 350) && last.api_writes > 0 && last.slice_watch_bytes > 0);
}

#[test]
fn a_deleted_pod_fades_out_on_its_node_then_leaves() {
    let mut s = sim("scale-0-350-0", 30_000);
    let p = s.api.pods().next().unwrap();
    let (name, node) = (p.metadata.name.clone().unwrap(), p.spec.as_ref().unwrap().node_name.clone().unwrap());
    let key = format!("default/{name}");
    let on_node = |s: &Sim| {
        let (zones, _) = s.cluster_view();
        let n = zones.into_iter().flat_map(|z| z.nodes).find(|n| n.name == node).expect("the node");
        (n.pods.iter().any(|p| p.key == key), n.gone.iter().filter(|p| p.key == key).count())
    };
    assert_eq!(on_node(&s), (true, 0));
    s.act(Action::DeletePod { pod: key.clone() });
    // Terminating through its grace period, then deleted: shown fading for FLASH_MS, never twice.
    let mut t = s.now;
    let deleted_at = loop {
        t += 100;
        s.run_until(t);
        if s.api.pod(&key).is_none() {
            break t;
        }
        assert!(t < 120_000, "the pod never went away");
    };
    assert_eq!(on_node(&s), (false, 1));
    let (zones, _) = s.cluster_view();
    let gone = zones.iter().flat_map(|z| &z.nodes).flat_map(|n| &n.gone).find(|p| p.key == key).unwrap();
    assert_eq!(gone.state, PodState::Terminating, "it fades as it last was");
    let live: usize = zones.iter().flat_map(|z| &z.nodes).map(|n| n.pods.len()).sum();
    assert_eq!(live, s.api.pods().count(), "fading pods are not counted as pods");
    s.run_until(deleted_at + FLASH_MS + 100);
    assert_eq!(on_node(&s), (false, 0));
}
