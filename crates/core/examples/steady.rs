//! The steady state of a 1,000-Pod cluster with readiness flaps and traffic, for profiling:
//! `cargo run --profile profiling -p slicelab-core --example steady` prints milliseconds per
//! simulated second from 15 to 30 minutes (run it under `perf record`). With `MEM=1` it prints instead
//! what one timeline snapshot keeps alive after the run goes on 5, 20 and 75 s, part by part.
use slicelab_core::sim::scenario::Scenario;
use slicelab_core::sim::Sim;
use std::time::Instant;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 { LIVE.fetch_add(l.size(), Relaxed); System.alloc(l) }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) { LIVE.fetch_sub(l.size(), Relaxed); System.dealloc(p, l) }
}
#[global_allocator]
static A: Counting = Counting;
fn mb(x: usize) -> f64 { x as f64 / 1e6 }
fn scenario(pods: u32, flap: f64) -> Scenario {
    let text = format!(
        r#"{{"id":"bench","title":"bench","description":"bench","seed":42,
        "world":{{"zones":["zone-a","zone-b","zone-c"],"nodesPerZone":{nodes},
          "services":[{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"web"}},"spec":{{"selector":{{"app":"web"}},"ports":[{{"name":"http","port":80,"targetPort":8080}}]}}}}],
          "workloads":[{{"name":"web","replicas":{pods},"labels":{{"app":"web"}},"ports":[{{"name":"http","port":8080}}],"probeFailureRate":{flap}}}]}},
        "traffic":[{{"service":"web","rate":100}}],
        "actions":[{{"at":"5m","action":{{"type":"rollOut","workload":"web"}}}}]}}"#,
        nodes = (pods / 100).clamp(3, 40)
    );
    Scenario::parse(&text).expect("bench scenario parses")
}


fn main() {
    let sc = scenario(1_000, 0.001);
    let mut s = Sim::new(&sc).unwrap();
    s.run_until(900_000);
    if std::env::var("MEM").is_ok() {
        for gap in [5_000u64, 20_000, 75_000] {
            let mut snap = s.clone();
            s.run_until(s.now + gap);
            let mut marks = vec![("start", LIVE.load(Relaxed))];
            for p in snap.proxies.values_mut() { p.informer = Default::default(); }
            marks.push(("proxy informers", LIVE.load(Relaxed)));
            for p in snap.proxies.values_mut() { p.kube_proxies.clear(); }
            marks.push(("kube_proxies rest", LIVE.load(Relaxed)));
            for p in snap.proxies.values_mut() { p.programmed.clear(); }
            marks.push(("programmed", LIVE.load(Relaxed)));
            snap.proxies.clear();
            marks.push(("proxies rest", LIVE.load(Relaxed)));
            snap.log = Default::default();
            marks.push(("log", LIVE.load(Relaxed)));
            snap.samples = Default::default();
            marks.push(("samples", LIVE.load(Relaxed)));
            snap.controller.informer = Default::default();
            marks.push(("controller informer", LIVE.load(Relaxed)));
            snap.controller.reconciler = slicelab_core::controller::reconciler::Reconciler::new(Default::default());
            marks.push(("reconciler", LIVE.load(Relaxed)));
            let api = std::mem::replace(&mut snap.api, s.api.clone());
            let before = LIVE.load(Relaxed);
            drop(api);
            let after = LIVE.load(Relaxed);
            let mut out = String::new();
            for w in marks.windows(2) { out += &format!(" {} {:.2}", w[1].0, mb(w[0].1 - w[1].1)); }
            out += &format!(" api {:.2}", mb(before - after));
            let l = LIVE.load(Relaxed);
            let total = marks[0].1 - l + (before - after);
            drop(snap);
            let rest = l - LIVE.load(Relaxed);
            eprintln!("gap {gap}:{out} rest(incl. api clone) {:.2}  (sum {:.2})", mb(rest), mb(total + rest));
        }
        return;
    }
    let a = Instant::now();
    let syncs0 = s.controller.syncs;
    let writes0 = s.api.writes.clone();
    let mut n = 0u64;
    while s.next_time().is_some_and(|t| t <= 1_800_000) { s.step(); n += 1; }
    let e = a.elapsed().as_secs_f64();
    eprintln!("controller syncs {} writes {:?} -> {:?}", s.controller.syncs - syncs0, writes0, s.api.writes);
    eprintln!("15..30 min: {n} events in {e:.2} s = {:.1} ms per simulated s", e * 1e3 / 900.0);
}
