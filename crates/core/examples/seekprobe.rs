//! Probe: simulated seconds per wall second and the memory one snapshot costs in a long run at 1,000 Pods.
use slicelab_core::sim::scenario::Scenario;
use slicelab_core::sim::Sim;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn main() {
    let arg = |i: usize, d: u64| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (end, every) = (arg(1, 3600), arg(2, 0));
    let text = r#"{"id":"bench","title":"bench","description":"bench","seed":42,
        "world":{"zones":["zone-a","zone-b","zone-c"],"nodesPerZone":10,
          "services":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}],
          "workloads":[{"name":"web","replicas":1000,"labels":{"app":"web"},"ports":[{"name":"http","port":8080}],"probeFailureRate":0.001}]},
        "traffic":[{"service":"web","rate":100}],
        "actions":[{"at":"5m","action":{"type":"rollOut","workload":"web"}}]}"#;
    let sc = Scenario::parse(text).unwrap();
    if std::env::args().nth(3).as_deref() == Some("timeline") {
        let before = LIVE.load(Relaxed);
        let t0 = Instant::now();
        let mut tl = slicelab_core::sim::timeline::Timeline::new(sc, Vec::new()).unwrap();
        tl.seek(end * 1000);
        eprintln!("timeline to {end}s: {:.1} s, {} snapshots, {:.1} MB live (approx_bytes {:.1} MB)", t0.elapsed().as_secs_f64(),
            tl.snapshot_count(), (LIVE.load(Relaxed) - before) as f64 / 1e6, tl.approx_bytes() as f64 / 1e6);
        let mut k = 0u64;
        let mut times = Vec::new();
        for _ in 0..40 {
            k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let t = (k >> 11) % (end * 1000);
            let t1 = Instant::now();
            tl.seek(t);
            times.push(t1.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        eprintln!("seek: mean {mean:.1} ms, median {:.1}, max {:.1}", times[times.len() / 2], times[times.len() - 1]);
        return;
    }
    let mut s = Sim::new(&sc).unwrap();
    let t0 = Instant::now();
    let mut last = Instant::now();
    let mut snaps = Vec::new();
    for sec in 1..=end {
        s.run_until(sec * 1000);
        if every > 0 && sec % every == 0 {
            snaps.push(s.clone());
        }
        if sec == end {
            let m = |f: &dyn Fn() -> Box<dyn std::any::Any>| {
                let b = LIVE.load(Relaxed);
                let x = f();
                let d = LIVE.load(Relaxed) - b;
                drop(x);
                d as f64 / 1e6
            };
            eprintln!("clone: sim {:.2} MB, api {:.2}, controller {:.2}, proxies {:.2}, log {:.2}, traffic {:.2}",
                m(&|| Box::new(s.clone())), m(&|| Box::new(s.api.clone())), m(&|| Box::new(s.controller.clone())),
                m(&|| Box::new(s.proxies.clone())), m(&|| Box::new(s.log.clone())), m(&|| Box::new(s.traffic.clone())));
            if let Some(p) = s.proxies.values().next() {
                eprintln!("one proxy {:.3} MB: informer {:.3}, kube-proxies {:.3}, programmed {:.3}",
                    m(&|| Box::new(p.clone())), m(&|| Box::new(p.informer.clone())), m(&|| Box::new(p.kube_proxies.clone())), m(&|| Box::new(p.programmed.clone())));
            }
        }
        if sec % 300 == 0 {
            let live = LIVE.load(Relaxed);
            eprintln!(
                "t={sec}s wall={:.2}s last300={:.2}s snapshots={} live={:.1} MB",
                t0.elapsed().as_secs_f64(),
                last.elapsed().as_secs_f64(),
                snaps.len(),
                live as f64 / 1e6
            );
            last = Instant::now();
        }
    }
}
