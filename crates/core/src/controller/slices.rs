//! §10 of the controller spec: the shape of the slices the controller writes: naming, owner
//! reference, labels; plus ownership and the placeholder comparison of §5.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::desired::AddressType;
use super::pods::is_service_ip_set;
use super::{LABEL_HEADLESS, LABEL_MANAGED_BY, LABEL_SERVICE_NAME};

/// The labels the controller reserves for itself; copies from the Service never override them.
pub fn is_reserved_label(key: &str) -> bool {
    key == LABEL_SERVICE_NAME || key == LABEL_MANAGED_BY || key == LABEL_HEADLESS
}

fn non_reserved(labels: Option<&BTreeMap<String, String>>) -> crate::vecmap::VecMap<&str, &str> {
    crate::vecmap::VecMap::from_iter(labels.into_iter().flatten().filter(|(k, _)| !is_reserved_label(k)).map(|(k, v)| (k.as_str(), v.as_str())))
}

/// §10.2: the labels a slice of this Service should carry, and whether the slice's non-reserved labels
/// differ from the Service's (reserved ones never count as a change).
pub fn slice_labels(
    slice_labels: Option<&BTreeMap<String, String>>,
    svc: &Service,
    controller_name: &str,
) -> (BTreeMap<String, String>, bool) {
    let changed = non_reserved(slice_labels) != non_reserved(svc.metadata.labels.as_ref());
    let mut out: BTreeMap<String, String> = crate::sort::map(
        svc.metadata.labels.iter().flatten().filter(|(k, _)| !is_reserved_label(k)).map(|(k, v)| (k.clone(), v.clone())),
    );
    if !is_service_ip_set(svc) {
        out.insert(LABEL_HEADLESS.into(), String::new());
    }
    out.insert(LABEL_SERVICE_NAME.into(), svc.metadata.name.clone().unwrap_or_default());
    out.insert(LABEL_MANAGED_BY.into(), controller_name.into());
    (out, changed)
}

/// Whether `prefix` is a valid DNS-1123 subdomain prefix (a trailing dash is allowed, as the API
/// server checks `generateName` with its last dash masked).
fn valid_subdomain_prefix(prefix: &str) -> bool {
    let masked = match prefix.strip_suffix('-') {
        Some(p) => format!("{p}a"),
        None => prefix.to_string(),
    };
    if masked.is_empty() || masked.len() > 253 {
        return false;
    }
    masked.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    })
}

/// §10.1: `generateName` is `<service>-`, or the bare name when that is not a valid prefix.
pub fn slice_name_prefix(service_name: &str) -> String {
    let p = format!("{service_name}-");
    if valid_subdomain_prefix(&p) {
        p
    } else {
        service_name.to_string()
    }
}

/// The controller owner reference to a Service.
pub fn owner_ref(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.metadata.name.clone().unwrap_or_default(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A slice is owned by the Service when an owner reference has its UID, kind Service, apiVersion v1.
pub fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    let uid = svc.metadata.uid.as_deref().unwrap_or("");
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

/// A new, empty slice of this Service for the given ports and address type.
pub fn new_slice(svc: &Service, ports: Vec<EndpointPort>, address_type: AddressType, controller_name: &str) -> EndpointSlice {
    let (labels, _) = slice_labels(None, svc, controller_name);
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(slice_name_prefix(svc.metadata.name.as_deref().unwrap_or(""))),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![owner_ref(svc)]),
            ..Default::default()
        },
        address_type: address_type.as_str().into(),
        endpoints: Some(Vec::new()),
        ports: Some(ports),
    }
}

/// §5.5: placeholder equality: namespace, labels, address type, ports and endpoints; nil lists equal
/// empty ones; name, annotations, owner references and timestamps are ignored.
pub fn placeholder_equal(a: Option<&EndpointSlice>, b: Option<&EndpointSlice>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let empty = BTreeMap::new();
            a.metadata.namespace.as_deref().unwrap_or("") == b.metadata.namespace.as_deref().unwrap_or("")
                && a.metadata.labels.as_ref().unwrap_or(&empty) == b.metadata.labels.as_ref().unwrap_or(&empty)
                && a.address_type == b.address_type
                && a.ports.as_deref().unwrap_or(&[]) == b.ports.as_deref().unwrap_or(&[])
                && a.endpoints.as_deref().unwrap_or(&[]) == b.endpoints.as_deref().unwrap_or(&[])
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_falls_back_for_long_names() {
        assert_eq!(slice_name_prefix("web"), "web-");
        let long = "a".repeat(253);
        assert_eq!(slice_name_prefix(&long), long);
        assert_eq!(slice_name_prefix(&"a".repeat(252)), format!("{}-", "a".repeat(252)));
    }

    #[test]
    fn placeholder_compare_table() {
        // TestPlaceHolderSliceCompare's rows.
        let base = EndpointSlice {
            metadata: ObjectMeta { name: Some("x".into()), ..Default::default() },
            address_type: "IPv4".into(),
            endpoints: None,
            ports: None,
        };
        assert!(placeholder_equal(None, None));
        assert!(!placeholder_equal(Some(&base), None));
        assert!(!placeholder_equal(None, Some(&base)));
        assert!(placeholder_equal(Some(&EndpointSlice::default()), Some(&EndpointSlice::default())));
        let mut renamed = base.clone();
        renamed.metadata.name = Some("y".into());
        assert!(placeholder_equal(Some(&base), Some(&renamed)));
        let mut labelled = base.clone();
        labelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        assert!(!placeholder_equal(Some(&base), Some(&labelled)));
        let mut timed = base.clone();
        timed.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        assert!(placeholder_equal(Some(&base), Some(&timed)));
        let mut v6 = base.clone();
        v6.address_type = "IPv6".into();
        assert!(!placeholder_equal(Some(&base), Some(&v6)));
        let mut with_ports = base.clone();
        with_ports.ports = Some(vec![]);
        assert!(placeholder_equal(Some(&base), Some(&with_ports)));
    }
}
