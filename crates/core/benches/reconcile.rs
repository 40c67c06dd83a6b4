//! Reconciler speed (issue 3 §6): from scratch at 1k/10k/100k ready pods over 3 zones at max 100; an
//! incremental sync after 1% of the pods were replaced; a sync where nothing changed; 10k pods with
//! topology-mode Auto.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use slicelab_core::controller::reconciler::{Reconciler, ReconcilerOptions};
use slicelab_core::controller::store::SliceStore;
use slicelab_core::controller::CONTROLLER_NAME;
use slicelab_core::fixtures;
use slicelab_core::k8s_openapi::api::core::v1::Pod;
use slicelab_core::k8s_openapi::api::discovery::v1::EndpointSlice;

fn reconciler() -> Reconciler {
    Reconciler::new(ReconcilerOptions { max_endpoints_per_slice: 100, ..Default::default() })
}

/// The slices the controller writes for these pods from scratch.
fn settle(svc: &slicelab_core::k8s_openapi::api::core::v1::Service, pods: &[Pod], nodes: &[slicelab_core::k8s_openapi::api::core::v1::Node]) -> Vec<EndpointSlice> {
    let mut r = reconciler();
    r.set_nodes(nodes);
    let res = r.reconcile(svc, pods, nodes, &[]);
    let mut store = SliceStore::new(1);
    store.apply(&res.calls);
    store.slices_for_service(svc, CONTROLLER_NAME)
}

fn bench(c: &mut Criterion) {
    let nodes = fixtures::nodes(3, 3);
    let svc = fixtures::service("web");
    let mut g = c.benchmark_group("reconcile");
    g.sample_size(10);
    for &n in &[1_000u32, 10_000, 100_000] {
        let pods = fixtures::pods("web", 0, n, &nodes);
        g.bench_with_input(BenchmarkId::new("scratch", n), &n, |b, _| {
            let mut r = reconciler();
            r.set_nodes(&nodes);
            b.iter(|| r.reconcile(&svc, &pods, &nodes, &[]))
        });
        let existing = settle(&svc, &pods, &nodes);
        g.bench_with_input(BenchmarkId::new("noop", n), &n, |b, _| {
            let mut r = reconciler();
            r.set_nodes(&nodes);
            b.iter(|| r.reconcile(&svc, &pods, &nodes, &existing))
        });
        // 1% of the pods replaced by new ones (new names and IPs), as a rollout would.
        let step = 100usize;
        let mut replaced: Vec<Pod> = pods.clone();
        let fresh = fixtures::pods("web", n, n / 100, &nodes);
        for (k, p) in fresh.into_iter().enumerate() {
            replaced[k * step] = p;
        }
        g.bench_with_input(BenchmarkId::new("replace-1pct", n), &n, |b, _| {
            let mut r = reconciler();
            r.set_nodes(&nodes);
            b.iter_batched(|| (), |_| r.reconcile(&svc, &replaced, &nodes, &existing), BatchSize::SmallInput)
        });
    }
    let mut auto = svc.clone();
    auto.metadata.annotations =
        Some([("service.kubernetes.io/topology-mode".to_string(), "Auto".to_string())].into());
    let pods = fixtures::pods("web", 0, 10_000, &nodes);
    g.bench_function("topology-auto-scratch/10000", |b| {
        let mut r = reconciler();
        r.set_nodes(&nodes);
        b.iter(|| r.reconcile(&auto, &pods, &nodes, &[]))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
