//! What the simulation bench and the `steady` example share: a counting allocator and the
//! benchmark cluster. (A folder module, so cargo does not take it for a bench of its own.)

use slicelab_core::sim::scenario::Scenario;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting the bytes live (install it with `#[global_allocator]`).
pub struct Counting;
pub static LIVE: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

/// Bytes live now.
pub fn live() -> usize {
    LIVE.load(Relaxed)
}

/// `pods` Pods of one Deployment behind one Service over three zones, readiness probes failing at
/// rate `flap`, traffic 100/s, a rolling update at 5 minutes.
pub fn scenario(pods: u32, flap: f64) -> Scenario {
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
