//! The timeline: a run you can seek in, backwards too. Its copies of the simulation share a replay
//! memo (`memo.rs`): a replay takes each controller sync's outcome from it instead of walking every
//! Pod again. Snapshots of the whole simulation are taken
//! at intervals of work (`Sim::work`: events, a sync that walks every Pod counting for more; not
//! virtual time: a rollout or a start-up packs many times the work of a quiet stretch into a
//! second, and a replay's cost follows the work); seeking
//! restores the nearest earlier snapshot and replays. An action taken at an
//! earlier time forks the timeline: later snapshots are dropped and the future is recomputed.
//! The number of snapshots is capped: when full, the one whose removal leaves the smallest gap is
//! dropped and new ones are taken further apart (the run so far over the cap), so they stay about
//! evenly spread and memory stays bounded however long the run. A few more, denser snapshots are kept just behind
//! the place the timeline last played on or stepped back to, so stepping back and short scrubs back
//! replay a second or so instead of up to a whole interval. A jump does not take them (they would
//! cost several whole copies of the simulation); the first step back after it does.

use super::scenario::{Scenario, TimedAction};
use super::{Action, Ev, Sim};

#[derive(Clone, Debug)]
pub struct Timeline {
    pub scenario: Scenario,
    /// Actions added by the user (the scenario's own are in `scenario.actions`).
    pub actions: Vec<TimedAction>,
    snapshots: Vec<Sim>,
    /// Work (`Sim::work`) between sparse snapshots.
    interval_work: u64,
    max_snapshots: usize,
    /// Dense snapshots of the last seconds before where the timeline last ran to, oldest first.
    recent: Vec<Sim>,
    /// The simulation at the current time.
    pub current: Sim,
}

impl Timeline {
    pub fn new(scenario: Scenario, actions: Vec<TimedAction>) -> Result<Timeline, String> {
        let mut current = Sim::with_actions(&scenario, &actions)?;
        current.memo = super::memo::MemoHandle::new();
        Ok(Timeline {
            scenario,
            actions,
            snapshots: vec![current.clone()],
            interval_work: Self::FIRST_INTERVAL_WORK,
            max_snapshots: Self::MAX_SNAPSHOTS,
            recent: Vec::new(),
            current,
        })
    }

    /// The cap on sparse snapshots below 2,000 Pods. At 256, a 1-hour run at 1,000 Pods keeps one
    /// every ~14 s on average (closer in its start-up and its rollout, which pack more events into a
    /// second), ~1.6 MB each of its own, so a seek replays at most ~2,500 events; with the controller
    /// syncs taken from the replay memo (`memo.rs`) that is at most ~30-40 ms on a slow 2-core machine.
    pub const MAX_SNAPSHOTS: usize = 256;

    /// Work between the first snapshots (about 5 s of a busy 1,000-Pod cluster: ~500 events and
    /// ~10 controller syncs); the spacing grows as the run outgrows the cap.
    const FIRST_INTERVAL_WORK: u64 = 750;

    pub fn now(&self) -> u64 {
        self.current.now
    }

    pub fn snapshot_count(&self) -> usize {
        self.snapshots.len()
    }

    /// The times of the sparse snapshots, oldest first.
    pub fn snapshot_times(&self) -> Vec<u64> {
        self.snapshots.iter().map(|s| s.now).collect()
    }

    fn last_snapshot_work(&self) -> u64 {
        self.snapshots.last().map(|s| s.work).unwrap_or(0)
    }

    fn last_snapshot_time(&self) -> u64 {
        self.snapshots.last().map(|s| s.now).unwrap_or(0)
    }

    /// Thousands of Pods the cluster is sized for now (at least 1): a snapshot's size grows with
    /// them. The workloads' replicas (the Pods when no workload asks for any), not the Pods alone:
    /// a rollout's surge and its terminating Pods would otherwise shrink the cap for a minute and
    /// drop half the snapshots for good.
    fn scale(&self) -> usize {
        let replicas: usize = self.current.world.workloads.values().map(|w| w.replicas as usize).sum();
        let pods = if replicas > 0 { replicas } else { self.current.world.pods.len() };
        (pods / 1_000).max(1)
    }

    /// The cap on sparse snapshots: `max_snapshots` below 2,000 Pods; half of it divided by the
    /// thousands of Pods above that, so the memory the timeline holds stays about the same (40 s
    /// behind the run a snapshot keeps ~3 MB of its own at 1,000 Pods, ~37 MB at 10,000).
    fn max_sparse(&self) -> usize {
        match self.scale() {
            1 => self.max_snapshots,
            k => (self.max_snapshots / 2 / k).max(4),
        }
    }

    fn take_snapshot(&mut self) {
        self.snapshots.push(self.current.clone());
        let max = self.max_sparse();
        if self.snapshots.len() <= max {
            return;
        }
        while self.snapshots.len() > max {
            // Keep the first and the newest; drop the one between the closest neighbours (the
            // earliest such), which leaves the smallest gap behind.
            let t: Vec<u64> = self.snapshots.iter().map(|s| s.work).collect();
            let drop = (1..t.len() - 1).min_by_key(|&i| (t[i + 1] - t[i - 1], i));
            match drop {
                Some(i) => {
                    self.snapshots.remove(i);
                }
                None => break,
            }
        }
        // New snapshots as far apart as the kept ones are on average, so the spread stays even.
        let span = self.last_snapshot_work() - self.snapshots.first().map_or(0, |s| s.work);
        self.interval_work = self.interval_work.max(span / (max as u64 - 1).max(1));
    }

    /// How many dense snapshots are kept behind the cursor (up to 1,000 Pods).
    const RECENT: usize = 8;

    /// Dense snapshots kept now: fewer in larger clusters, as for the sparse ones.
    fn max_recent(&self) -> usize {
        (Self::RECENT / self.scale()).max(2)
    }

    /// The spacing of the dense snapshots: a second, longer in large clusters (where a copy costs more).
    fn recent_every_ms(&self) -> u64 {
        1_000 * self.scale() as u64
    }

    /// The stretch behind the cursor the dense snapshots cover.
    fn dense_window_ms(&self) -> u64 {
        self.recent_every_ms() * self.max_recent() as u64
    }

    /// Run forward to time `t`, taking sparse snapshots on the way and, when `dense`, dense ones over
    /// the last stretch.
    fn advance_to(&mut self, t: u64, dense: bool) {
        if !dense {
            self.advance_sparse(t);
            return;
        }
        let every = self.recent_every_ms();
        let dense_from = t.saturating_sub(self.dense_window_ms());
        if self.current.now < dense_from {
            self.advance_sparse(dense_from);
        }
        while self.current.now < t {
            // The newest dense snapshot behind us (ones ahead stay until we pass them by).
            let now = self.current.now;
            let last = self.recent.iter().rev().map(|s| s.now).find(|&n| n <= now).unwrap_or(0);
            let next = (last.max(dense_from) / every + 1) * every;
            self.advance_sparse(next.min(t));
            if self.current.now >= next {
                self.recent.retain(|s| s.now < next);
                self.recent.push(self.current.clone());
                while self.recent.len() > self.max_recent() {
                    self.recent.remove(0);
                }
            }
        }
    }

    fn advance_sparse(&mut self, t: u64) {
        while self.current.now < t {
            let last = self.last_snapshot_time();
            if self.current.now < last {
                // Replaying inside the part of the run already covered by snapshots.
                self.current.run_until(t.min(last));
                continue;
            }
            let work = self.last_snapshot_work() + self.interval_work;
            if self.current.run_until_work(t, work) {
                self.take_snapshot();
            }
        }
    }

    /// Seek to any time, forward or back. Dense snapshots are taken only when the seek is a short
    /// step on (as playing is): a jump elsewhere would copy the whole simulation several times
    /// over for snapshots that only a step back from there uses (`step_back` takes them then).
    pub fn seek(&mut self, t: u64) {
        let playing_on = t >= self.current.now && t - self.current.now <= self.dense_window_ms();
        self.seek_with(t, playing_on);
    }

    fn seek_with(&mut self, t: u64, dense: bool) {
        self.rewind(t);
        self.advance_to(t, dense);
    }

    /// The first half of a seek: restore the nearest snapshot (dense or not) at or before `t` when
    /// that is closer than where the run is. `step_forward` then runs on toward `t` (a caller can
    /// spread that over several frames) and `seek(t)` lands on it.
    pub fn rewind(&mut self, t: u64) {
        if let Some(best) = self.restore_point(t) {
            self.current = best.clone();
        }
    }

    /// The snapshot a seek to `t` restores, if it restores one (else it runs on from `current`).
    fn restore_point(&self, t: u64) -> Option<&Sim> {
        let sparse = self.snapshots.iter().rev().find(|s| s.now <= t);
        let dense = self.recent.iter().rev().find(|s| s.now <= t);
        let best = match (sparse, dense) {
            (Some(a), Some(b)) => Some(if b.now >= a.now { b } else { a }),
            (a, b) => a.or(b),
        };
        best.filter(|b| t < self.current.now || b.now > self.current.now)
    }

    /// The time a seek to `t` replays from (the run is not changed).
    pub fn replay_from(&self, t: u64) -> u64 {
        self.restore_point(t).map_or(self.current.now, |s| s.now)
    }

    /// For the memory example: take the sparse snapshots out (the timeline is left without them).
    #[doc(hidden)]
    pub fn take_snapshots(&mut self) -> Vec<Sim> {
        std::mem::take(&mut self.snapshots)
    }

    /// The replay memo: controller syncs it holds, their rough size in bytes, and how many syncs
    /// replays have taken from it so far.
    pub fn memo_stats(&self) -> (usize, usize, u64) {
        self.current.memo.stats()
    }

    /// How many dense snapshots are held now (behind the cursor).
    pub fn recent_count(&self) -> usize {
        self.recent.len()
    }

    /// One event forward.
    pub fn step_forward(&mut self) {
        if let Some(t) = self.current.next_time() {
            if self.current.now >= self.last_snapshot_time()
                && self.current.work + 1 >= self.last_snapshot_work() + self.interval_work
            {
                self.advance_to(t, true);
            }
            self.current.step();
        }
    }

    /// Back to the time of the previous logged change. The first step back after a jump replays
    /// from a sparse snapshot and takes dense ones on the way, so the next steps back are short.
    pub fn step_back(&mut self) {
        let now = self.current.now;
        let prev = self.current.log.iter().rev().map(|e| e.t).find(|&t| t < now);
        self.seek_with(prev.unwrap_or(0), true);
    }

    /// Take an action at the current time, forking the future.
    pub fn act(&mut self, action: Action) {
        let at = self.current.now;
        self.act_at(at, action);
    }

    /// Take an action at time `at` (possibly in the past): the timeline forks there.
    pub fn act_at(&mut self, at: u64, action: Action) {
        self.actions.push(TimedAction { at: super::scenario::Millis(at), action: action.clone() });
        let back_to = self.current.now;
        // The dense snapshots do not know the action: dropped, they are made again on the way.
        self.recent.clear();
        // Snapshots from before `at` stay valid once they know the action; the others (including one
        // taken at `at` itself, which has already run that instant's events) are recomputed.
        self.snapshots.retain(|s| s.now < at);
        // What the controllers decided from `at` on may differ now.
        self.current.memo.forget_from(at);
        if self.snapshots.is_empty() {
            // Back to the start: every action, the new one too, known from the beginning.
            if let Ok(mut s) = Sim::with_actions(&self.scenario, &self.actions) {
                s.memo = self.current.memo.clone();
                self.snapshots.push(s);
            }
        } else {
            for s in self.snapshots.iter_mut() {
                s.schedule(at, Ev::Action(Box::new(action.clone())));
            }
        }
        let idx = self.snapshots.len().saturating_sub(1);
        if let Some(s) = self.snapshots.get(idx) {
            self.current = s.clone();
        }
        self.advance_to(back_to.max(at), true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_timeline_keeps_its_snapshots_evenly_spread_and_seeks_exactly() {
        let sc = Scenario::by_id("headless-dns").expect("built in");
        let mut tl = Timeline::new(sc.clone(), Vec::new()).expect("builds");
        tl.max_snapshots = 8;
        tl.seek(600_000);
        // Spread by work (`Sim::work`), which is what a replay redoes.
        let w: Vec<u64> = tl.snapshots.iter().map(|s| s.work).collect();
        assert_eq!(w.len(), 8, "the cap is used, not halved: {w:?}");
        assert_eq!(tl.snapshots[0].now, 0, "the start is kept");
        let gaps: Vec<u64> = w.windows(2).map(|p| p[1] - p[0]).collect();
        let even = (w[w.len() - 1] - w[0]) / (w.len() as u64 - 1);
        assert!(gaps.iter().all(|&g| g <= 2 * even), "no gap over twice the even spacing: {gaps:?}");
        assert!(tl.current.work - w[w.len() - 1] <= 2 * even, "snapshots reach the end of the run: {w:?}");
        // Seeking anywhere still lands on the state of a straight run.
        for target in [37_000, 301_000, 555_000] {
            // `replay_from` says where the seek will start, without changing the run.
            let (from, at) = (tl.replay_from(target), tl.now());
            assert_eq!(tl.now(), at);
            tl.rewind(target);
            assert_eq!(tl.now(), from, "rewind restores what replay_from said");
            assert!(from <= target);
            tl.seek(target);
            let mut straight = Sim::new(&sc).expect("builds");
            straight.run_until(target);
            assert_eq!(tl.current.trace_hash(), straight.trace_hash(), "at {target}");
        }
    }
}
