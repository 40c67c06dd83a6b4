//! A timeline of the benchmark cluster at any size, for measuring: `PODS=10000 MINS=20 cargo run
//! --release -p slicelab-core --example timeline` computes MINS minutes, then prints the heap the
//! timeline holds, its snapshot count and the time of eight seeks to pseudo-random times.
#[path = "../benches/common/mod.rs"]
mod common;
use common::{live, Counting};
use slicelab_core::sim::timeline::Timeline;
use std::time::Instant;
#[global_allocator]
static A: Counting = Counting;
fn main() {
    let pods: u32 = std::env::var("PODS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let mins: u64 = std::env::var("MINS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let sc = common::scenario(pods, 0.001);
    let before = live();
    let a = Instant::now();
    let mut tl = Timeline::new(sc, Vec::new()).unwrap();
    tl.seek(mins * 60_000);
    eprintln!("{pods} pods {mins} min: {:.1} s, {} snapshots, {:.0} MB", a.elapsed().as_secs_f64(), tl.snapshot_count(), (live() - before) as f64 / 1e6);
    let mut ms = Vec::new();
    let mut k = 1u64;
    for _ in 0..8 {
        k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let t = (k >> 11) % (mins * 60_000);
        let a = Instant::now();
        tl.seek(t);
        ms.push(a.elapsed().as_secs_f64() * 1e3);
    }
    eprintln!("seeks ms: {:?}", ms.iter().map(|m| m.round()).collect::<Vec<_>>());
}
