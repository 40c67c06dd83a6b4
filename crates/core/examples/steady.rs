//! The steady state of a 1,000-Pod cluster with readiness flaps and traffic, for profiling:
//! `cargo run --profile profiling -p slicelab-core --example steady` prints milliseconds per
//! simulated second from 15 to 30 minutes (run it under `perf record`). With `MEM=1` it prints instead
//! what one timeline snapshot keeps alive after the run goes on 5, 20 and 75 s, part by part
//! (`PODS=10000` for a larger cluster, from 400 s on).
#[path = "../benches/common/mod.rs"]
mod common;
use common::{live, Counting};
use slicelab_core::sim::Sim;
use std::time::Instant;

#[global_allocator]
static A: Counting = Counting;

fn mb(x: usize) -> f64 {
    x as f64 / 1e6
}

fn main() {
    let pods: u32 = std::env::var("PODS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let sc = common::scenario(pods, 0.001);
    let mut s = Sim::new(&sc).unwrap();
    s.run_until(if pods > 1_000 { 400_000 } else { 900_000 });
    if std::env::var("MEM").is_ok() {
        for gap in [5_000u64, 20_000, 75_000] {
            let mut snap = s.clone();
            s.run_until(s.now + gap);
            let mut marks = vec![("start", live())];
            for p in snap.proxies.values_mut() {
                p.informer = Default::default();
            }
            marks.push(("proxy informers", live()));
            let mut parts: Vec<(&'static str, usize)> = Vec::new();
            for p in snap.proxies.values_mut() {
                for kp in std::mem::take(&mut p.kube_proxies) {
                    let mut last = live();
                    kp.drop_parts(&mut |name| {
                        let now = live();
                        match parts.iter_mut().find(|(n, _)| *n == name) {
                            Some((_, v)) => *v += last.saturating_sub(now),
                            None => parts.push((name, last.saturating_sub(now))),
                        }
                        last = now;
                    });
                }
            }
            eprintln!("  kube-proxy parts: {}", parts.iter().map(|(n, v)| format!("{n} {:.2}", mb(*v))).collect::<Vec<_>>().join(" "));
            marks.push(("kube-proxies", live()));
            for p in snap.proxies.values_mut() {
                p.programmed.clear();
            }
            marks.push(("programmed", live()));
            snap.proxies.clear();
            marks.push(("proxies rest", live()));
            snap.log = Default::default();
            marks.push(("log", live()));
            snap.samples = Default::default();
            marks.push(("samples", live()));
            snap.controller.informer = Default::default();
            marks.push(("controller informer", live()));
            snap.controller.reconciler =
                slicelab_core::controller::reconciler::Reconciler::new(Default::default());
            marks.push(("reconciler", live()));
            let api = std::mem::replace(&mut snap.api, s.api.clone());
            let before = live();
            drop(api);
            let after = live();
            let mut out = String::new();
            for w in marks.windows(2) {
                out += &format!(" {} {:.2}", w[1].0, mb(w[0].1 - w[1].1));
            }
            out += &format!(" api {:.2}", mb(before - after));
            let l = live();
            let total = marks[0].1 - l + (before - after);
            let mut last = l;
            snap.drop_parts(&mut |name| {
                let now = live();
                out += &format!(" {name} {:.2}", mb(last.saturating_sub(now)));
                last = now;
            });
            eprintln!("gap {gap}:{out}  (sum {:.2}; the api clone counted in rest)", mb(total + l - live()));
        }
        return;
    }
    let a = Instant::now();
    let syncs0 = s.controller.syncs;
    let writes0 = s.api.writes.clone();
    let mut n = 0u64;
    while s.next_time().is_some_and(|t| t <= 1_800_000) {
        s.step();
        n += 1;
    }
    let e = a.elapsed().as_secs_f64();
    eprintln!(
        "controller syncs {} writes {:?} -> {:?}",
        s.controller.syncs - syncs0,
        writes0,
        s.api.writes
    );
    eprintln!(
        "15..30 min: {n} events in {e:.2} s = {:.1} ms per simulated s",
        e * 1e3 / 900.0
    );
}
