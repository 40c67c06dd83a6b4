//! ClientIP session affinity for the iptables and nftables modes (§8): one recent-list (iptables) or
//! timed set (nftables) per endpoint, holding client source IPs. A new connection through an endpoint
//! adds or refreshes the client in that endpoint's list, so the window slides from the client's *last*
//! new connection. The candidates are checked in sorted order; the first whose list holds the client
//! within the timeout wins. A remembered endpoint that is no longer a candidate is ignored.
//! (IPVS persistence lives with its virtual servers, in [`super::ipvs`].)

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::Endpoint;

/// Per client: the endpoints it was sent to, with the time of its last new connection through each.
type Seen = Vec<(Arc<str>, u64)>;

/// The recent-lists of one node: per (client IP, service port), the endpoints it was sent to and when.
#[derive(Clone, Debug, Default)]
pub struct AffinityTable {
    seen: FxHashMap<(IpAddr, Arc<str>), Seen>,
}

impl AffinityTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The affinity hit for `src` among `candidates` (indices into the sorted `endpoints`), if any:
    /// the lowest candidate index whose list saw the client within `timeout_s` seconds of `now_ms`.
    /// Expired entries of this client are reaped (`--reap`).
    pub fn check(
        &mut self,
        spn: &Arc<str>,
        src: IpAddr,
        endpoints: &[Arc<Endpoint>],
        candidates: &[usize],
        timeout_s: u32,
        now_ms: u64,
    ) -> Option<usize> {
        let key = (src, spn.clone());
        let list = self.seen.get_mut(&key)?;
        let window = timeout_s as u64 * 1000;
        list.retain(|(_, last)| now_ms.saturating_sub(*last) <= window);
        if list.is_empty() {
            self.seen.remove(&key);
            return None;
        }
        let mut best: Option<usize> = None;
        for (ep, _) in list.iter() {
            let Ok(idx) = endpoints.binary_search_by(|e| e.endpoint.as_str().cmp(ep)) else { continue };
            if candidates.binary_search(&idx).is_ok() && best.is_none_or(|b| idx < b) {
                best = Some(idx);
            }
        }
        best
    }

    /// Record (or refresh) `src` in `endpoint`'s list (`--set` / `update @set`).
    pub fn record(&mut self, spn: &Arc<str>, src: IpAddr, endpoint: &str, now_ms: u64) {
        let list = self.seen.entry((src, spn.clone())).or_default();
        match list.iter_mut().find(|(e, _)| &**e == endpoint) {
            Some(entry) => entry.1 = now_ms,
            None => list.push((Arc::from(endpoint), now_ms)),
        }
    }

    /// Drop every entry older than `max_timeout_s` (the kernel's garbage collection).
    pub fn expire(&mut self, now_ms: u64, max_timeout_s: u32) {
        let window = max_timeout_s as u64 * 1000;
        self.seen.retain(|_, l| {
            l.retain(|(_, last)| now_ms.saturating_sub(*last) <= window);
            !l.is_empty()
        });
    }

    /// How many (client, service port) pairs are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(n: usize) -> Vec<Arc<Endpoint>> {
        let mut v: Vec<Arc<Endpoint>> = (1..=n).map(|i| Arc::new(Endpoint::new(&format!("10.0.0.{i}"), 80).unwrap())).collect();
        crate::sort::by(&mut v, |a, b| a.endpoint.cmp(&b.endpoint));
        v
    }

    #[test]
    fn sliding_window_and_release() {
        let spn: Arc<str> = Arc::from("ns/s:p");
        let e = eps(3);
        let src: IpAddr = "1.2.3.4".parse().unwrap();
        let mut t = AffinityTable::new();
        assert_eq!(t.check(&spn, src, &e, &[0, 1, 2], 10, 0), None);
        t.record(&spn, src, &e[1].endpoint, 0);
        assert_eq!(t.check(&spn, src, &e, &[0, 1, 2], 10, 10_000), Some(1));
        t.record(&spn, src, &e[1].endpoint, 10_000);
        // Measured from the last connection: still held 19 s after the first.
        assert_eq!(t.check(&spn, src, &e, &[0, 1, 2], 10, 19_000), Some(1));
        assert_eq!(t.check(&spn, src, &e, &[0, 1, 2], 10, 20_001), None);
        assert!(t.is_empty());
    }

    #[test]
    fn only_current_candidates_and_first_in_order() {
        let spn: Arc<str> = Arc::from("ns/s:p");
        let e = eps(3);
        let src: IpAddr = "1.2.3.4".parse().unwrap();
        let mut t = AffinityTable::new();
        t.record(&spn, src, &e[2].endpoint, 0);
        t.record(&spn, src, &e[1].endpoint, 0);
        assert_eq!(t.check(&spn, src, &e, &[0, 1, 2], 10, 5), Some(1));
        assert_eq!(t.check(&spn, src, &e, &[0, 2], 10, 5), Some(2));
        assert_eq!(t.check(&spn, src, &e, &[0], 10, 5), None);
        let other: Arc<str> = Arc::from("ns/other:p");
        assert_eq!(t.check(&other, src, &e, &[0, 1, 2], 10, 5), None);
    }
}
