//! A timeline of the benchmark cluster at any size, for measuring: `PODS=10000 MINS=20 cargo run
//! --release -p slicelab-core --example timeline` computes MINS minutes, then prints the heap the
//! timeline holds, its snapshot count and the time of SEEKS (default 8) seeks to pseudo-random
//! times (the bench's targets). PARTS=1 then breaks down what the snapshots hold, part by part. On a noisy machine, compare builds by instructions instead: run it
//! under `perf stat -e instructions:u` with SEEKS=0 and SEEKS=40; the difference is the seeks'.
#[path = "../benches/common/mod.rs"]
mod common;
use common::{live, Counting};
use slicelab_core::sim::timeline::Timeline;
use std::time::Instant;
#[global_allocator]
static A: Counting = Counting;
fn main() {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (pods, mins, seeks) = (env("PODS", 10_000) as u32, env("MINS", 20), env("SEEKS", 8));
    let sc = common::scenario(pods, 0.001);
    let before = live();
    let a = Instant::now();
    let mut tl = Timeline::new(sc, Vec::new()).unwrap();
    tl.seek(mins * 60_000);
    let (n, b, _) = tl.memo_stats();
    eprintln!("replay memo: {n} controller syncs, ~{:.1} MB (counted in the heap below)", b as f64 / 1e6);
    if std::env::var("SUMMARY").is_ok() {
        eprintln!("{}", tl.current.summary());
    }
    eprintln!("{pods} pods {mins} min: {:.1} s, {} snapshots, {:.0} MB", a.elapsed().as_secs_f64(), tl.snapshot_count(), (live() - before) as f64 / 1e6);
    let mut ms = Vec::new();
    let mut k = 0u64;
    let mut replayed = 0;
    for _ in 0..seeks {
        k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let t = (k >> 11) % (mins * 60_000);
        let a = Instant::now();
        let from = measured_seek(&mut tl, t);
        ms.push(a.elapsed().as_secs_f64() * 1e3);
        replayed += tl.current.handled - from;
        if std::env::var("EACH").is_ok() {
            eprintln!("seek to {:>7.1} s: {:>5} events, {:>4.0} ms", t as f64 / 1e3, tl.current.handled - from, ms[ms.len() - 1]);
        }
    }
    eprintln!("events replayed by the seeks: {replayed}");
    if std::env::var("REPLAY").is_ok() {
        // Replays of 10 s from every snapshot, three times over (for profiles of a replay).
        let times = tl.snapshot_times();
        let (a, mut events) = (Instant::now(), 0);
        for _ in 0..3 {
            for &s in &times {
                tl.rewind(s);
                let from = tl.current.handled;
                tl.seek(s + 10_000);
                events += tl.current.handled - from;
            }
        }
        let e = a.elapsed().as_secs_f64();
        eprintln!("replays: {events} events in {e:.2} s = {:.1} us per event", e * 1e6 / events as f64);
    }
    if std::env::var("GAPS").is_ok() {
        // Each gap between sparse snapshots replayed whole (the longest seek into it): its events,
        // work and time, the slowest gaps last.
        let times = tl.snapshot_times();
        let mut rows = Vec::new();
        for w in times.windows(2) {
            tl.seek((w[0] + 1_000_000) % (mins * 60_000));
            tl.rewind(w[1] - 1);
            let (e0, w0) = (tl.current.handled, tl.current.work);
            let a = Instant::now();
            tl.seek(w[1] - 1);
            rows.push((a.elapsed().as_secs_f64() * 1e3, w[0], tl.current.handled - e0, tl.current.work - w0));
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let show = std::env::var("ALLGAPS").map_or(12, |_| rows.len());
        for (ms, at, ev, wk) in rows.iter().skip(rows.len().saturating_sub(show)) {
            eprintln!("gap from {:>7.1} s: {ev:>5} events, work {wk:>5}, {ms:>5.1} ms ({:.1} us/work)", *at as f64 / 1e3, ms * 1e3 / *wk as f64);
        }
        let per: Vec<f64> = rows.iter().map(|r| r.0 * 1e3 / r.3.max(1) as f64).collect();
        let mean = per.iter().sum::<f64>() / per.len() as f64;
        let mut wks: Vec<u64> = rows.iter().map(|r| r.3).collect();
        wks.sort();
        eprintln!("work per gap: min {} p25 {} median {} p75 {} max {}", wks[0], wks[wks.len() / 4], wks[wks.len() / 2], wks[wks.len() * 3 / 4], wks[wks.len() - 1]);
        eprintln!("gaps: {} , us per work mean {mean:.1}, min {:.1}, max {:.1}", rows.len(), per.iter().copied().fold(f64::MAX, f64::min), per.iter().copied().fold(0.0, f64::max));
    }
    if std::env::var("FIXED").is_ok() {
        // Seeks just past a snapshot: what a seek costs besides replaying.
        let times = tl.snapshot_times();
        for &s in times.iter().skip(20).step_by(20) {
            for off in [1, 1_000, 3_000, 10_000] {
                tl.seek((s + 1_000_000) % (mins * 60_000));
                let a = Instant::now();
                let from = measured_seek(&mut tl, s + off);
                eprintln!("{off} ms past the snapshot at {:.1} s: {} events, {:.1} ms", s as f64 / 1e3, tl.current.handled - from, a.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    if std::env::var("PARTS").is_ok() {
        // What the sparse snapshots hold, part by part: each snapshot is dropped a part at a time,
        // newest first, and the heap freed is put down to the part just dropped.
        let mut parts: Vec<(&'static str, usize)> = Vec::new();
        let mut add = |name: &'static str, freed: usize| match parts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v += freed,
            None => parts.push((name, freed)),
        };
        let snaps = tl.take_snapshots();
        let n = snaps.len();
        for s in snaps.into_iter().rev() {
            let mut last = live();
            s.drop_parts(&mut |name| {
                let now = live();
                add(name, last.saturating_sub(now));
                last = now;
            });
        }
        let total: usize = parts.iter().map(|(_, v)| v).sum();
        eprintln!("{n} snapshots held {:.0} MB:", total as f64 / 1e6);
        for (name, v) in parts {
            eprintln!("  {name:<20} {:>6.1} MB", v as f64 / 1e6);
        }
    }
    if !ms.is_empty() {
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        let max = ms.iter().copied().fold(0.0, f64::max);
        eprintln!("{seeks} seeks: mean {mean:.0} ms, max {max:.0} ms");
    }
}

/// One measured seek (a function of its own, for profiles): the events handled where it started from.
#[inline(never)]
fn measured_seek(tl: &mut Timeline, t: u64) -> u64 {
    tl.rewind(t);
    let from = tl.current.handled;
    tl.seek(t);
    from
}
