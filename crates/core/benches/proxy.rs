//! kube-proxy speed (issue 4): backend picks per second for 10, 100 and 1,000 endpoints in each mode,
//! and a node's resync of one Service of 10,000 endpoints (100 slices of 100) after one slice changed.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use slicelab_core::input::decode;
use slicelab_core::k8s_openapi::api::core::v1::Service;
use slicelab_core::k8s_openapi::api::discovery::v1::EndpointSlice;
use slicelab_core::proxy::conntrack::FiveTuple;
use slicelab_core::proxy::iptables::View;
use slicelab_core::proxy::node::{KubeProxy, Mode, ProxyConfig};
use slicelab_core::proxy::{Cidr, Protocol};
use slicelab_core::IpFamily;

fn service() -> Service {
    decode(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}),
        "Service",
    )
    .expect("service")
}

/// Slice `k` of a Service: 100 endpoints 10.<k/250>.<k%250>.1..100, every 7th one unready when `flip`.
fn slice(k: usize, per: usize, flip: bool) -> EndpointSlice {
    let eps: Vec<_> = (0..per)
        .map(|i| {
            json!({"addresses": [format!("10.{}.{}.{}", 1 + k / 250, k % 250, i + 1)], "nodeName": format!("node-{}", i % 10),
                   "conditions": {"ready": !(flip && i % 7 == 0)}})
        })
        .collect();
    decode(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": format!("web-{k}"), "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
               "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "endpoints": eps}),
        "EndpointSlice",
    )
    .expect("slice")
}

fn proxy(mode: Mode, slices: &[EndpointSlice]) -> KubeProxy {
    let mut cfg = ProxyConfig::new("node-0", IpFamily::V4);
    cfg.mode = mode;
    cfg.net.node_ips = vec!["192.168.0.10".parse().expect("ip")];
    cfg.net.local_detector = Cidr::parse("10.0.0.0/8").ok();
    let mut kp = KubeProxy::new(cfg, 7);
    kp.on_service(&service());
    for s in slices {
        kp.on_slice(s);
    }
    kp.services_listed();
    kp.slices_listed();
    kp.sync(0);
    kp
}

fn picks(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick");
    g.throughput(Throughput::Elements(1));
    for &n in &[10usize, 100, 1000] {
        let slices: Vec<EndpointSlice> = (0..n.div_ceil(100)).map(|k| slice(k, n.min(100), false)).collect();
        for (name, mode) in [("iptables", Mode::Iptables), ("nftables", Mode::Nftables), ("ipvs-rr", Mode::Ipvs)] {
            let mut kp = proxy(mode, &slices);
            let mut port = 0u16;
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    port = port.wrapping_add(1);
                    let t = FiveTuple {
                        src: "203.0.113.2".parse().expect("ip"),
                        src_port: port,
                        dst: "10.96.0.10".parse().expect("ip"),
                        dst_port: 80,
                        protocol: Protocol::Tcp,
                    };
                    kp.pick(&t, 0)
                })
            });
        }
    }
    g.finish();
}

fn resync(c: &mut Criterion) {
    let mut g = c.benchmark_group("resync-10k");
    g.sample_size(20);
    let base: Vec<EndpointSlice> = (0..100).map(|k| slice(k, 100, false)).collect();
    let changed = [slice(42, 100, true), slice(42, 100, false)];
    for (name, mode) in [("iptables", Mode::Iptables), ("nftables", Mode::Nftables), ("ipvs", Mode::Ipvs)] {
        let mut kp = proxy(mode, &base);
        let mut k = 0usize;
        let mut now = 0u64;
        g.bench_function(BenchmarkId::new("one-slice-changed", name), |b| {
            b.iter(|| {
                k ^= 1;
                now += 1000;
                kp.on_slice(&changed[k]);
                kp.tick(now)
            })
        });
    }
    // The same, plus writing out the node's whole iptables ruleset (what iptables-restore receives).
    let mut kp = proxy(Mode::Iptables, &base);
    let mut k = 0usize;
    let mut now = 0u64;
    g.bench_function("one-slice-changed+render/iptables", |b| {
        b.iter(|| {
            k ^= 1;
            now += 1000;
            kp.on_slice(&changed[k]);
            kp.tick(now);
            kp.render_rules(View::KubeProxy).len()
        })
    });
    g.finish();
}

criterion_group!(benches, picks, resync);
criterion_main!(benches);
