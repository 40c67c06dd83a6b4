//! The control plane: the EndpointSlice controller (reconciler, topology hints, trafficDistribution
//! hints), the legacy Endpoints controller and the EndpointSlice mirroring controller.

pub mod pods;

/// The managed-by value of the EndpointSlice controller.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The managed-by value of the mirroring controller.
pub const MIRRORING_CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
pub const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const ANNOTATION_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
pub const ANNOTATION_OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
pub const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
pub const ANNOTATION_TOPOLOGY_HINTS_DEPRECATED: &str = "service.kubernetes.io/topology-aware-hints";
/// Default `--max-endpoints-per-slice`.
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Limits the flag validation accepts.
pub const MAX_ENDPOINTS_PER_SLICE_RANGE: std::ops::RangeInclusive<usize> = 1..=1000;

pub mod desired;
pub mod endpoints;
pub mod mirroring;
pub mod plan;
pub mod reconciler;
pub mod slices;
pub mod store;
pub mod topology;
pub mod tracker;
pub mod trafficdist;
