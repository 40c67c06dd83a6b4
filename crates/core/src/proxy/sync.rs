//! The bounded-frequency sync runner of one kube-proxy (§11), on a virtual clock in milliseconds.
//!
//! A sync happens as soon as possible after a change, but at most once per `minSyncPeriod`, measured
//! from the start of one sync to the start of the next; changes that arrive in between are coalesced
//! into one sync. Nothing is programmed before the initial lists of Services and slices have arrived.

use super::DEFAULT_MIN_SYNC_PERIOD_MS;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRunner {
    pub min_sync_period_ms: u64,
    pub last_start_ms: Option<u64>,
    pending: bool,
    services_listed: bool,
    slices_listed: bool,
    /// Syncs run so far.
    pub syncs: u64,
    /// Change requests coalesced into a later sync.
    pub coalesced: u64,
}

impl Default for SyncRunner {
    fn default() -> Self {
        SyncRunner::new(DEFAULT_MIN_SYNC_PERIOD_MS)
    }
}

impl SyncRunner {
    pub fn new(min_sync_period_ms: u64) -> Self {
        SyncRunner {
            min_sync_period_ms,
            last_start_ms: None,
            pending: false,
            services_listed: false,
            slices_listed: false,
            syncs: 0,
            coalesced: 0,
        }
    }

    /// The initial Service list has arrived.
    pub fn services_listed(&mut self) {
        self.services_listed = true;
        self.pending = true;
    }

    /// The initial EndpointSlice list has arrived.
    pub fn slices_listed(&mut self) {
        self.slices_listed = true;
        self.pending = true;
    }

    /// Both initial lists have arrived.
    pub fn initialized(&self) -> bool {
        self.services_listed && self.slices_listed
    }

    /// Something changed: a sync is wanted.
    pub fn request(&mut self) {
        if self.pending {
            self.coalesced += 1;
        }
        self.pending = true;
    }

    pub fn pending(&self) -> bool {
        self.pending
    }

    /// When the next sync may start, if one is wanted and allowed.
    pub fn next_run_at(&self) -> Option<u64> {
        if !self.pending || !self.initialized() {
            return None;
        }
        Some(self.last_start_ms.map_or(0, |l| l.saturating_add(self.min_sync_period_ms)))
    }

    /// A sync may start at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        self.next_run_at().is_some_and(|t| t <= now_ms)
    }

    /// Record the start of a sync.
    pub fn start(&mut self, now_ms: u64) {
        self.last_start_ms = Some(now_ms);
        self.pending = false;
        self.syncs += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_before_initial_lists() {
        let mut r = SyncRunner::new(1000);
        r.request();
        assert_eq!(r.next_run_at(), None);
        r.services_listed();
        assert!(!r.due(5_000));
        r.slices_listed();
        assert!(r.due(0));
    }

    #[test]
    fn at_most_once_per_period_start_to_start_and_bursts_coalesce() {
        let mut r = SyncRunner::new(1000);
        r.services_listed();
        r.slices_listed();
        r.start(100);
        r.request();
        r.request();
        r.request();
        assert_eq!(r.next_run_at(), Some(1100));
        assert!(!r.due(1099));
        assert!(r.due(1100));
        r.start(1100);
        assert!(!r.pending());
        assert_eq!(r.coalesced, 2);
        assert_eq!(r.syncs, 2);
        // A change long after the last sync runs at once.
        r.request();
        assert_eq!(r.next_run_at(), Some(2100));
        assert!(r.due(50_000));
    }
}
