//! §2.3 of the controller spec: the stale-informer-cache check of the EndpointSlice tracker
//! (`EndpointSliceTracker.StaleSlices` in kubernetes/endpointslice `util/endpointslice_tracker.go`).
//!
//! The controller remembers, per Service, the generation of every slice it wrote (create or update),
//! and marks every slice it deleted as "deletion expected". Before reconciling, it compares that
//! record with the slices its informer lists; if the informer has not caught up with the controller's
//! own writes, reconciling would act on old data, so the sync fails with a retryable "stale informer
//! cache" error instead.
//!
//! This module is only the pure check; the bookkeeping (recording generations after writes, marking
//! deletes, forgetting a deleted Service) belongs to whoever owns the tracker state.
//!
//! The real tracker keys slices by UID; here they are keyed by slice name (unique within a
//! namespace, and a Service's slices all live in its namespace).

use crate::vecmap::{VecMap, VecSet};

use k8s_openapi::api::discovery::v1::EndpointSlice;

/// What the tracker recorded for one slice: `Some(generation)` for a slice the controller created or
/// updated (the generation the API server returned), `None` for a slice whose deletion is expected.
pub type Tracked = Option<i64>;

/// The tracker's record for one Service: slice name → [`Tracked`].
pub type TrackedSlices = VecMap<String, Tracked>;

/// §2.3 stale-cache check. `tracked` is the tracker's record for the Service (`None` when the tracker
/// knows nothing about it); `listed` are the slices the controller listed for it (already without
/// the ones that carry a deletion timestamp). The cache is stale when any of these holds:
///
/// * a listed slice has a lower generation than the tracked one (a missing generation counts as 0);
/// * a listed slice is one whose deletion is expected;
/// * a tracked slice that is not expected to be deleted is missing from the list.
///
/// A listed slice with a *newer* generation than the tracked one is fine (someone else wrote it
/// after the controller did), and so is a listed slice the tracker has never seen.
pub fn stale<'a>(tracked: Option<&TrackedSlices>, listed: impl IntoIterator<Item = &'a EndpointSlice>) -> bool {
    let Some(tracked) = tracked else { return false };
    let mut seen = VecSet::new();
    for s in listed {
        let name = s.metadata.name.as_deref().unwrap_or("");
        seen.insert(name);
        match tracked.get(name) {
            Some(None) => return true,
            Some(Some(g)) if s.metadata.generation.unwrap_or(0) < *g => return true,
            _ => {}
        }
    }
    tracked.iter().any(|(name, g)| g.is_some() && !seen.contains(name.as_str()))
}
