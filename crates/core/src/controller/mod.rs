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

use k8s_openapi::api::core::v1::{Pod, Service};

/// §2, syncService before the reconciler: an ExternalName Service, or one without a selector, is not
/// the controller's business (its slices, if any, are someone else's). Otherwise, its selector.
pub fn sync_selector(svc: &Service) -> Option<&std::collections::BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref()
}

/// §2: the Pods the reconciler gets: those of the Service's namespace that its selector matches. An
/// empty selector is treated as matching no Pod.
pub fn selected_pods<'a>(svc: &Service, selector: &std::collections::BTreeMap<String, String>, pods: impl IntoIterator<Item = &'a Pod>) -> Vec<&'a Pod> {
    let ns = svc.metadata.namespace.as_deref().unwrap_or("");
    pods.into_iter()
        .filter(|p| p.metadata.namespace.as_deref().unwrap_or("") == ns)
        .filter(|p| !selector.is_empty() && pods::selector_matches(selector, p.metadata.labels.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn svc(type_: Option<&str>, selector: Option<&[(&str, &str)]>) -> Service {
        Service {
            metadata: ObjectMeta { name: Some("s".into()), namespace: Some("a".into()), ..Default::default() },
            spec: Some(ServiceSpec {
                type_: type_.map(Into::into),
                selector: selector.map(|s| s.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn pod(ns: &str, app: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("{ns}-{app}")),
                namespace: Some(ns.into()),
                labels: Some([("app".to_string(), app.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn sync_gates_skip_external_name_and_selectorless_services() {
        assert!(sync_selector(&svc(Some("ExternalName"), Some(&[("app", "web")]))).is_none());
        assert!(sync_selector(&svc(None, None)).is_none());
        assert!(sync_selector(&Service::default()).is_none());
        let s = svc(Some("ClusterIP"), Some(&[("app", "web")]));
        let sel = sync_selector(&s).expect("a selector Service is synced");
        let pods = [pod("a", "web"), pod("b", "web"), pod("a", "db")];
        let got: Vec<_> = selected_pods(&s, sel, &pods).into_iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(got, vec!["a-web"], "same namespace, matching labels only");
        let empty = svc(None, Some(&[]));
        assert!(selected_pods(&empty, sync_selector(&empty).unwrap(), &pods).is_empty());
    }
}
