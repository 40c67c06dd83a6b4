//! Simulation speed (issue 5): simulated events per second at 1,000 and 10,000 Pods, and the time
//! to seek anywhere in a 1-hour run at 1,000 Pods. The timeline's memory is printed once.

use criterion::{criterion_group, criterion_main, Criterion};
use slicelab_core::sim::scenario::Scenario;
use slicelab_core::sim::timeline::Timeline;
use slicelab_core::sim::Sim;

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

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    for pods in [1_000u32, 10_000] {
        let sc = scenario(pods, 0.0);
        // Events processed from start-up through a full rolling update.
        let mut probe = Sim::new(&sc).expect("builds");
        let mut events = 0u64;
        while probe.next_time().is_some_and(|t| t <= 600_000) {
            probe.step();
            events += 1;
        }
        eprintln!("sim/{pods}: {events} events to 10 minutes");
        g.bench_function(format!("run-10min/{pods}-pods"), |b| {
            b.iter(|| {
                let mut s = Sim::new(&sc).expect("builds");
                s.run_until(600_000);
                s.trace_hash()
            })
        });
    }
    let sc = scenario(1_000, 0.001);
    let mut tl = Timeline::new(sc, Vec::new()).expect("builds");
    tl.seek(3_600_000);
    eprintln!(
        "timeline 1h at 1000 pods: {} snapshots, about {} MB",
        tl.snapshot_count(),
        tl.approx_bytes() / 1_000_000
    );
    let mut k = 0u64;
    g.bench_function("seek-in-1h-run/1000-pods", |b| {
        b.iter(|| {
            // Deterministic pseudo-random targets over the hour.
            k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let t = (k >> 11) % 3_600_000;
            tl.seek(t);
            tl.now()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
