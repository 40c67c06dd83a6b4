//! The timeline: a run you can seek in, backwards too. Snapshots of the whole simulation are taken
//! at intervals; seeking restores the nearest earlier snapshot and replays. An action taken at an
//! earlier time forks the timeline: later snapshots are dropped and the future is recomputed.
//! The number of snapshots is capped: when full, every other one is dropped and the interval doubles,
//! so memory stays bounded however long the run.

use super::scenario::{Scenario, TimedAction};
use super::{Action, Ev, Sim};

#[derive(Clone, Debug)]
pub struct Timeline {
    pub scenario: Scenario,
    /// Actions added by the user (the scenario's own are in `scenario.actions`).
    pub actions: Vec<TimedAction>,
    snapshots: Vec<Sim>,
    interval_ms: u64,
    max_snapshots: usize,
    /// The simulation at the current time.
    pub current: Sim,
}

impl Timeline {
    pub fn new(scenario: Scenario, actions: Vec<TimedAction>) -> Result<Timeline, String> {
        let current = Sim::with_actions(&scenario, &actions)?;
        Ok(Timeline {
            scenario,
            actions,
            snapshots: vec![current.clone()],
            interval_ms: 5_000,
            max_snapshots: 48,
            current,
        })
    }

    pub fn now(&self) -> u64 {
        self.current.now
    }

    pub fn snapshot_count(&self) -> usize {
        self.snapshots.len()
    }

    fn last_snapshot_time(&self) -> u64 {
        self.snapshots.last().map(|s| s.now).unwrap_or(0)
    }

    fn take_snapshot(&mut self) {
        self.snapshots.push(self.current.clone());
        if self.snapshots.len() > self.max_snapshots {
            let mut i = 0;
            self.snapshots.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.interval_ms *= 2;
        }
    }

    /// Run forward to time `t`, taking snapshots on the way.
    fn advance_to(&mut self, t: u64) {
        while self.current.now < t {
            let last = self.last_snapshot_time();
            if self.current.now < last {
                // Replaying inside the part of the run already covered by snapshots.
                self.current.run_until(t.min(last));
                continue;
            }
            let next_snap = last + self.interval_ms;
            let stop = next_snap.min(t);
            self.current.run_until(stop);
            if self.current.now >= next_snap {
                self.take_snapshot();
            }
        }
    }

    /// Seek to any time, forward or back.
    pub fn seek(&mut self, t: u64) {
        // Start from the nearest snapshot at or before `t` when that is closer than where we are.
        let idx = self.snapshots.iter().rposition(|s| s.now <= t).unwrap_or(0);
        if t < self.current.now || self.snapshots[idx].now > self.current.now {
            self.current = self.snapshots[idx].clone();
        }
        self.advance_to(t);
    }

    /// One event forward.
    pub fn step_forward(&mut self) {
        if let Some(t) = self.current.next_time() {
            if t >= self.last_snapshot_time() + self.interval_ms {
                self.advance_to(t);
            }
            self.current.step();
        }
    }

    /// Back to the time of the previous logged change.
    pub fn step_back(&mut self) {
        let now = self.current.now;
        let prev = self.current.log.iter().rev().map(|e| e.t).find(|&t| t < now);
        self.seek(prev.unwrap_or(0));
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
        // Snapshots up to `at` stay valid once they know the action; later ones are recomputed.
        self.snapshots.retain(|s| s.now <= at);
        if self.snapshots.is_empty() {
            if let Ok(s) = Sim::with_actions(&self.scenario, &[]) {
                self.snapshots.push(s);
            }
        }
        for s in self.snapshots.iter_mut() {
            s.schedule(at, Ev::Action(action.clone()));
        }
        let idx = self.snapshots.len().saturating_sub(1);
        if let Some(s) = self.snapshots.get(idx) {
            self.current = s.clone();
        }
        self.advance_to(back_to.max(at));
    }
}
