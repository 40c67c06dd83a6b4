//! The reconciler's plan: the slices it will create, update and delete, each with the step of the
//! algorithm that put it there, so that a viewer can say why every write happened.

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use serde::Serialize;

/// Why a slice is written. Each variant names a step of the controller spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Cause {
    /// §6 step 1: an existing slice lost endpoints or one of its endpoints changed.
    EndpointsChanged,
    /// §6 step 1: the Service's non-reserved labels differ from the slice's.
    LabelsChanged,
    /// §6 step 1: every endpoint of an existing slice is gone.
    Emptied,
    /// §6 step 3: a new slice for endpoints that did not fit elsewhere.
    NewSlice,
    /// §6 step 3: the remainder went into the best-fitting unchanged slice.
    FilledUnchangedSlice,
    /// §5 step 4: the slice's port map is no longer desired.
    PortMapGone,
    /// §5 step 1: the slice is not owned by this Service (for example a recreated Service).
    NotOwned,
    /// §5 step 5: an empty placeholder, so a Service always has one slice per address type.
    Placeholder,
    /// §4 step 3: the Service no longer supports the slice's address type.
    UnsupportedAddressType,
    /// §8: topology-aware hints had to be (re)written on an otherwise unchanged slice.
    TopologyHints,
    /// §9: trafficDistribution hints had to be (re)written on an otherwise unchanged slice.
    TrafficDistributionHints,
    /// §8.1: hints are no longer wanted and an otherwise unchanged slice carried some.
    HintsRemoved,
    /// §7 step 1: a create recycled into an update of a slice that was to be deleted.
    Recycled { created_for: Box<Cause>, replaced: Box<Cause> },
}

impl Cause {
    /// A short human label, for logs and the page.
    pub fn describe(&self) -> String {
        match self {
            Cause::EndpointsChanged => "endpoints removed or changed (step 1)".into(),
            Cause::LabelsChanged => "Service labels changed (step 1)".into(),
            Cause::Emptied => "all endpoints gone (step 1)".into(),
            Cause::NewSlice => "new slice for new endpoints (step 3)".into(),
            Cause::FilledUnchangedSlice => "remainder into best-fitting slice (step 3)".into(),
            Cause::PortMapGone => "port map no longer desired".into(),
            Cause::NotOwned => "not owned by this Service".into(),
            Cause::Placeholder => "placeholder: no endpoints".into(),
            Cause::UnsupportedAddressType => "address type no longer supported".into(),
            Cause::TopologyHints => "topology hints".into(),
            Cause::TrafficDistributionHints => "trafficDistribution hints".into(),
            Cause::HintsRemoved => "hints removed".into(),
            Cause::Recycled { created_for, .. } => format!("recycled: {}", created_for.describe()),
        }
    }
}

/// A slice in the plan, with the reason it is there.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub slice: EndpointSlice,
    pub cause: Cause,
    /// Endpoints appended by step 2 (topping up a slice already being updated).
    pub topped_up: usize,
}

impl Planned {
    pub fn new(slice: EndpointSlice, cause: Cause) -> Self {
        Planned { slice, cause, topped_up: 0 }
    }
}

/// The slices of one address type after the packing steps, before hints and `finalize`.
#[derive(Clone, Debug, Default)]
pub struct SliceInfo {
    pub service_key: String,
    pub address_type: String,
    pub to_create: Vec<Planned>,
    pub to_update: Vec<Planned>,
    pub unchanged: Vec<EndpointSlice>,
}

/// `ready` is set and true.
pub fn endpoint_ready(ep: &Endpoint) -> bool {
    ep.conditions.as_ref().and_then(|c| c.ready) == Some(true)
}

/// An event the controller records on the Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
}

impl Event {
    pub fn warning(reason: &str, message: String) -> Self {
        Event { type_: "Warning".into(), reason: reason.into(), message }
    }
    pub fn normal(reason: &str, message: String) -> Self {
        Event { type_: "Normal".into(), reason: reason.into(), message }
    }
    /// "type reason message", the form the oracle lists events in.
    pub fn line(&self) -> String {
        format!("{} {} {}", self.type_, self.reason, self.message)
    }
}

/// The endpoints of a slice (`endpoints` is optional in the API types).
pub fn eps(s: &EndpointSlice) -> &[Endpoint] {
    s.endpoints.as_deref().unwrap_or(&[])
}

/// The endpoints of a slice, for writing.
pub fn eps_mut(s: &mut EndpointSlice) -> &mut Vec<Endpoint> {
    s.endpoints.get_or_insert_with(Vec::new)
}
