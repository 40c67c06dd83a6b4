//! "What would the controllers do with my objects?": an operator pastes `kubectl get -o yaml` output
//! (a Service, its Pods, the Nodes, the EndpointSlices that exist), and gets the EndpointSlice
//! controller's API calls with the step behind each, the slices as they would be afterwards (as YAML
//! that `kubectl apply` accepts), and the legacy Endpoints object. One sync, as the real controller
//! would run it on that informer state.

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use crate::controller::reconciler::{Reconciler, ReconcilerOptions, Verb};
use crate::controller::store::SliceStore;
use crate::controller::{endpoints, selected_pods, sync_selector, CONTROLLER_NAME, MAX_ENDPOINTS_PER_SLICE_RANGE};
use crate::input::{decode, parse_values, Objects};
use k8s_openapi::api::core::v1::{ContainerPort, Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, Pod, PodCondition, PodIP, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

// The fields of Pods and Nodes the controllers read. Reading a pasted object into these (unknown
// fields are skipped) and then into the real type keeps the page's WebAssembly small: the full
// PodSpec decoder alone is about a hundred kilobytes.

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LeanContainer {
    name: String,
    ports: Option<Vec<ContainerPort>>,
    restart_policy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LeanPodSpec {
    node_name: Option<String>,
    hostname: Option<String>,
    subdomain: Option<String>,
    containers: Vec<LeanContainer>,
    init_containers: Option<Vec<LeanContainer>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LeanPodStatus {
    phase: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pod_ips: Option<Vec<PodIP>>,
    conditions: Option<Vec<PodCondition>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LeanPod {
    metadata: ObjectMeta,
    spec: Option<LeanPodSpec>,
    status: Option<LeanPodStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LeanNodeSpec {
    unschedulable: Option<bool>,
    #[serde(rename = "podCIDR")]
    pod_cidr: Option<String>,
    #[serde(rename = "podCIDRs")]
    pod_cidrs: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LeanNodeStatus {
    allocatable: Option<std::collections::BTreeMap<String, Quantity>>,
    conditions: Option<Vec<NodeCondition>>,
    addresses: Option<Vec<NodeAddress>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LeanNode {
    metadata: ObjectMeta,
    spec: Option<LeanNodeSpec>,
    status: Option<LeanNodeStatus>,
}

fn container(c: LeanContainer) -> k8s_openapi::api::core::v1::Container {
    k8s_openapi::api::core::v1::Container { name: c.name, ports: c.ports, restart_policy: c.restart_policy, ..Default::default() }
}

fn pod(v: Value) -> Result<Pod, String> {
    let p: LeanPod = decode(v, "Pod")?;
    Ok(Pod {
        metadata: p.metadata,
        spec: p.spec.map(|s| PodSpec {
            node_name: s.node_name,
            hostname: s.hostname,
            subdomain: s.subdomain,
            containers: s.containers.into_iter().map(container).collect(),
            init_containers: s.init_containers.map(|v| v.into_iter().map(container).collect()),
            ..Default::default()
        }),
        status: p.status.map(|s| PodStatus { phase: s.phase, pod_ip: s.pod_ip, pod_ips: s.pod_ips, conditions: s.conditions, ..Default::default() }),
    })
}

fn node(v: Value) -> Result<Node, String> {
    let n: LeanNode = decode(v, "Node")?;
    Ok(Node {
        metadata: n.metadata,
        spec: n.spec.map(|s| NodeSpec { unschedulable: s.unschedulable, pod_cidr: s.pod_cidr, pod_cidrs: s.pod_cidrs, ..Default::default() }),
        status: n.status.map(|s| NodeStatus { allocatable: s.allocatable, conditions: s.conditions, addresses: s.addresses, ..Default::default() }),
    })
}

/// Sort a paste into typed objects by `kind`; other kinds are an error, so a paste of the wrong thing
/// is reported instead of silently ignored.
fn parse_objects(text: &str) -> Result<Objects, String> {
    let mut objs = Objects::default();
    for v in parse_values(text)? {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        match kind.as_str() {
            "Service" => objs.services.push(decode(v, "Service")?),
            "Pod" => objs.pods.push(pod(v)?),
            "Node" => objs.nodes.push(node(v)?),
            "EndpointSlice" => objs.endpoint_slices.push(decode(v, "EndpointSlice")?),
            "Endpoints" => objs.endpoints.push(decode(v, "Endpoints")?),
            "" => return Err("an object has no `kind`".into()),
            other => return Err(format!("unsupported kind {other:?} (expected Service, Pod, Node, EndpointSlice or Endpoints)")),
        }
    }
    Ok(objs)
}

/// Most bytes a paste may hold.
pub const MAX_PASTE: usize = 4 * 1024 * 1024;

/// One API call of the sync.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub verb: &'static str,
    pub slice: String,
    pub endpoints: usize,
    pub cause: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `namespace/name` of the Service synced.
    pub service: String,
    /// Other Services in the paste (only the first is synced).
    pub ignored_services: Vec<String>,
    pub selected_pods: usize,
    pub calls: Vec<Call>,
    /// The controller's slices for the Service after the sync, sorted by name.
    pub slices: Vec<EndpointSlice>,
    /// The sync's error (for example Pods on Nodes missing from the paste), if any.
    pub error: Option<String>,
    /// Topology events the sync raised.
    pub events: Vec<String>,
    /// The legacy Endpoints object after the Endpoints controller's sync, if the Service gets one.
    pub endpoints: Option<Endpoints>,
}

/// Run the EndpointSlice and Endpoints controllers once on pasted objects.
pub fn run(text: &str, max_endpoints_per_slice: usize) -> Result<Report, String> {
    if text.len() > MAX_PASTE {
        return Err(format!("the paste is too large ({} bytes, at most {MAX_PASTE})", text.len()));
    }
    if !MAX_ENDPOINTS_PER_SLICE_RANGE.contains(&max_endpoints_per_slice) {
        return Err(format!("max endpoints per slice must be 1..1000, got {max_endpoints_per_slice}"));
    }
    let objs = parse_objects(text)?;
    let mut services = objs.services.iter();
    let svc = services.next().ok_or("the paste holds no Service: paste a Service with its Pods (and Nodes, EndpointSlices)")?;
    let mut svc = svc.clone();
    if svc.metadata.namespace.is_none() {
        svc.metadata.namespace = Some("default".into());
    }
    if svc.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err("the Service has no metadata.name".into());
    }
    let key = crate::sim::api::key_of(&svc.metadata);
    let ignored_services = services.map(|s| crate::sim::api::key_of(&s.metadata)).collect();
    let mut pods = objs.pods.clone();
    for p in &mut pods {
        if p.metadata.namespace.is_none() {
            p.metadata.namespace = Some("default".into());
        }
    }
    let Some(selector) = sync_selector(&svc).cloned() else {
        return Err(format!(
            "Service {key} {}: the EndpointSlice controller leaves it alone (its slices come from the mirroring controller or from users)",
            if svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName") { "is of type ExternalName" } else { "has no selector" }
        ));
    };
    let chosen = selected_pods(&svc, &selector, &pods);
    let mut slices = objs.endpoint_slices.clone();
    for s in &mut slices {
        if s.metadata.namespace.is_none() {
            s.metadata.namespace = Some("default".into());
        }
    }
    let store0 = SliceStore::with_slices(7, &slices);
    let existing = store0.slices_for_service(&svc, CONTROLLER_NAME);
    let mut r = Reconciler::new(ReconcilerOptions { max_endpoints_per_slice, ..Default::default() });
    r.set_nodes(&objs.nodes);
    let result = r.reconcile(&svc, &chosen, &objs.nodes, &existing);
    let mut store = store0;
    let applied = store.apply(&result.calls);
    let mut created = applied.created.iter();
    let calls = result
        .calls
        .iter()
        .map(|c| Call {
            verb: match c.verb {
                Verb::Create => "create",
                Verb::Update => "update",
                Verb::Delete => "delete",
            },
            slice: match c.verb {
                Verb::Create => created.next().cloned().unwrap_or_default(),
                _ => c.slice.metadata.name.clone().unwrap_or_default(),
            },
            endpoints: c.slice.endpoints.as_ref().map_or(0, Vec::len),
            cause: c.cause.describe(),
        })
        .collect();
    let mut after = store.slices_for_service(&svc, CONTROLLER_NAME);
    crate::sort::by(&mut after, |a, b| a.metadata.name.cmp(&b.metadata.name));
    let current = objs.endpoints.iter().find(|e| crate::sim::api::key_of(&e.metadata) == key || e.metadata.name == svc.metadata.name);
    let endpoints = match endpoints::sync(Some(&svc), &chosen, current) {
        endpoints::EndpointsWrite::Create(e) | endpoints::EndpointsWrite::Update(e) => Some(e),
        endpoints::EndpointsWrite::None => current.cloned(),
        endpoints::EndpointsWrite::Delete => None,
    };
    Ok(Report {
        service: key,
        ignored_services,
        selected_pods: chosen.len(),
        calls,
        slices: after,
        error: result.error(),
        events: result.events.iter().map(|e| e.line()).collect(),
        endpoints,
    })
}

/// A slice as `kubectl apply` takes it: with apiVersion and kind, server-set fields left out.
pub fn apply_yaml(slice: &EndpointSlice) -> String {
    let mut v = serde_json::to_value(slice).unwrap_or(Value::Null);
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"] {
            m.remove(k);
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), Value::String("discovery.k8s.io/v1".into()));
    out.insert("kind".into(), Value::String("EndpointSlice".into()));
    if let Value::Object(o) = v {
        for (k, val) in o {
            if k != "apiVersion" && k != "kind" {
                out.insert(k, val);
            }
        }
    }
    crate::yaml::to_string(&Value::Object(out))
}

/// A small example to start from: a Service, two Nodes and three Pods.
pub const EXAMPLE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  uid: 7e0e4d3c-web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
    protocol: TCP
  ipFamilies: [IPv4]
---
apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels:
    topology.kubernetes.io/zone: zone-a
---
apiVersion: v1
kind: Node
metadata:
  name: node-b
  labels:
    topology.kubernetes.io/zone: zone-b
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, uid: 3f1c-web-1, labels: {app: web}}
spec: {nodeName: node-a, containers: [{name: app, ports: [{containerPort: 8080}]}]}
status:
  phase: Running
  podIP: 10.244.1.5
  podIPs: [{ip: 10.244.1.5}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: default, uid: 3f1c-web-2, labels: {app: web}}
spec: {nodeName: node-b, containers: [{name: app, ports: [{containerPort: 8080}]}]}
status:
  phase: Running
  podIP: 10.244.2.7
  podIPs: [{ip: 10.244.2.7}]
  conditions: [{type: Ready, status: "False"}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-3, namespace: default, uid: 3f1c-web-3, labels: {app: web}, deletionTimestamp: "2026-01-01T00:00:00Z"}
spec: {nodeName: node-b, containers: [{name: app, ports: [{containerPort: 8080}]}]}
status:
  phase: Running
  podIP: 10.244.2.9
  podIPs: [{ip: 10.244.2.9}]
  conditions: [{type: Ready, status: "True"}]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_gives_one_slice_with_three_endpoints_and_their_conditions() {
        let r = run(EXAMPLE, 100).unwrap();
        assert_eq!(r.service, "default/web");
        assert_eq!(r.selected_pods, 3);
        assert_eq!(r.calls.len(), 1);
        assert_eq!(r.calls[0].verb, "create");
        assert!(r.calls[0].cause.contains("step 3"), "{}", r.calls[0].cause);
        assert_eq!(r.slices.len(), 1);
        let eps = r.slices[0].endpoints.as_ref().unwrap();
        assert_eq!(eps.len(), 3);
        let cond = |ip: &str| eps.iter().find(|e| e.addresses[0] == ip).and_then(|e| e.conditions.clone()).unwrap();
        assert_eq!(cond("10.244.1.5").ready, Some(true));
        assert_eq!(cond("10.244.2.7").ready, Some(false));
        // Terminating: not ready, still serving.
        let t = cond("10.244.2.9");
        assert_eq!((t.ready, t.serving, t.terminating), (Some(false), Some(true), Some(true)));
        assert!(r.error.is_none());
        let e = r.endpoints.unwrap();
        let subsets = e.subsets.unwrap();
        assert_eq!(subsets[0].addresses.as_ref().map_or(0, Vec::len), 1);
        let y = apply_yaml(&r.slices[0]);
        assert!(y.lines().any(|l| l == "apiVersion: discovery.k8s.io/v1") && y.lines().any(|l| l == "kind: EndpointSlice"), "{y}");
        assert!(!y.contains("resourceVersion"));
        // What it prints reads back as a real EndpointSlice.
        let back: EndpointSlice = serde_yaml::from_str(&y).unwrap();
        assert_eq!(back.endpoints.map_or(0, |e| e.len()), 3);
    }

    #[test]
    fn existing_slices_are_updated_in_place_and_max_is_honoured() {
        let first = run(EXAMPLE, 2).unwrap();
        assert_eq!(first.slices.iter().map(|s| s.endpoints.as_ref().map_or(0, Vec::len)).sum::<usize>(), 3);
        assert!(first.slices.iter().all(|s| s.endpoints.as_ref().map_or(0, Vec::len) <= 2));
        // Paste again with the slices that now exist: nothing to do.
        let mut again = EXAMPLE.to_string();
        for s in &first.slices {
            again.push_str("---\n");
            let mut v = serde_json::to_value(s).unwrap();
            v["apiVersion"] = "discovery.k8s.io/v1".into();
            v["kind"] = "EndpointSlice".into();
            again.push_str(&serde_yaml::to_string(&v).unwrap());
        }
        let second = run(&again, 2).unwrap();
        assert!(second.calls.is_empty(), "{:?}", second.calls);
    }

    #[test]
    fn lean_reading_keeps_what_the_controllers_read() {
        let full = crate::input::parse_objects(EXAMPLE).unwrap();
        let lean = parse_objects(EXAMPLE).unwrap();
        assert_eq!(full.pods, lean.pods);
        assert_eq!(full.nodes, lean.nodes);
        // A sidecar's restartPolicy and a named port survive; fields nobody reads are dropped.
        let text = "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  nodeName: n\n  hostname: h\n  subdomain: s\n  serviceAccountName: x\n  containers: [{name: a, image: i, ports: [{name: http, containerPort: 80}]}]\n  initContainers: [{name: b, restartPolicy: Always, ports: [{containerPort: 9}]}]\n";
        let p = &parse_objects(text).unwrap().pods[0];
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.init_containers.as_ref().unwrap()[0].restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.containers[0].ports.as_ref().unwrap()[0].name.as_deref(), Some("http"));
        assert_eq!((spec.hostname.as_deref(), spec.subdomain.as_deref(), spec.node_name.as_deref()), (Some("h"), Some("s"), Some("n")));
        assert!(spec.service_account_name.is_none());
        assert!(parse_objects("kind: Pod\napiVersion: v1\nmetadata: {name: p}\nstatus: {podIPs: 7}\n").unwrap_err().contains("Pod"));
    }

    #[test]
    fn bad_pastes_are_clear_errors() {
        for (text, want) in [
            ("", "empty"),
            ("{", "not valid JSON"),
            ("kind: Pod\napiVersion: v1\nmetadata: {name: p}\n", "no Service"),
            ("kind: Deployment\napiVersion: apps/v1\nmetadata: {name: d}\n", "unsupported kind"),
            ("kind: Service\napiVersion: v1\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n", "has no selector"),
            ("kind: Service\napiVersion: v1\nmetadata: {name: s}\nspec: {type: ExternalName, externalName: x.example}\n", "ExternalName"),
            ("kind: Service\napiVersion: v1\nmetadata: {name: s}\nspec: {ports: [{port: nope}]}\n", "Service"),
        ] {
            let e = run(text, 100).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        assert!(run(EXAMPLE, 0).unwrap_err().contains("1..1000"));
        // Pods on Nodes that are not in the paste: the slices are still written, the error says why.
        let no_nodes: String = EXAMPLE.split("---\n").filter(|d| !d.contains("kind: Node")).collect::<Vec<_>>().join("---\n");
        let r = run(&no_nodes, 100).unwrap();
        assert!(r.error.is_some_and(|e| e.contains("Not Found")));
    }
}
