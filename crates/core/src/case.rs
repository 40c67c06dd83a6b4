//! Oracle reconciler cases (`shared/oracle/reconciler/*.json`): reading one, running the reconciler on
//! it exactly as the oracle ran the real one, and printing the result in the oracle's `expected` shape.

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{json, Map, Value};

use crate::controller::reconciler::{Reconciler, ReconcilerOptions, Verb};
use crate::controller::store::SliceStore;
use crate::controller::{DEFAULT_MAX_ENDPOINTS_PER_SLICE, MAX_ENDPOINTS_PER_SLICE_RANGE};
use crate::input::decode;
use crate::rng::Rng;

/// The inputs of a reconciler case.
#[derive(Clone, Debug)]
pub struct ReconcileCase {
    pub max_endpoints_per_slice: usize,
    pub service: Service,
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    pub existing_slices: Vec<EndpointSlice>,
}

fn list<T: serde::de::DeserializeOwned>(obj: &Map<String, Value>, field: &str, kind: &str) -> Result<Vec<T>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                check_kind(v, kind).map_err(|e| format!("{field}[{i}]: {e}"))?;
                decode(v.clone(), kind).map_err(|e| format!("{field}[{i}]: {e}"))
            })
            .collect(),
        Some(_) => Err(format!("`{field}` must be a list of {kind} objects")),
    }
}

fn check_kind(v: &Value, kind: &str) -> Result<(), String> {
    if !v.is_object() {
        return Err(format!("expected a {kind} object"));
    }
    match v.get("kind") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(k)) if k == kind => Ok(()),
        Some(other) => Err(format!("expected kind {kind}, found {other}")),
    }
}

impl ReconcileCase {
    /// Parse a case from JSON or YAML text. The `expected` section, if present, is ignored.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim_start_matches('\u{feff}').trim();
        if t.is_empty() {
            return Err("the case file is empty".into());
        }
        let v: Value = if t.starts_with('{') {
            serde_json::from_str(t).map_err(|e| format!("not valid JSON: {e}"))?
        } else {
            crate::yaml_read::one(t).map_err(|e| format!("neither JSON nor valid YAML: {e}"))?
        };
        let obj = v.as_object().ok_or("a case must be an object with `service`, `pods`, `nodes`, `existingSlices`")?;
        let max = match obj.get("maxEndpointsPerSlice") {
            None | Some(Value::Null) => DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            Some(Value::Number(n)) => {
                let n = n.as_u64().ok_or_else(|| format!("`maxEndpointsPerSlice` must be a whole number, got {n}"))?;
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if !MAX_ENDPOINTS_PER_SLICE_RANGE.contains(&n) {
                    return Err(format!("`maxEndpointsPerSlice` must be between 1 and 1000, got {n}"));
                }
                n
            }
            Some(other) => return Err(format!("`maxEndpointsPerSlice` must be a number, got {other}")),
        };
        let service = match obj.get("service") {
            None | Some(Value::Null) => return Err("the case has no `service`".into()),
            Some(v) => {
                check_kind(v, "Service").map_err(|e| format!("service: {e}"))?;
                decode::<Service>(v.clone(), "Service")?
            }
        };
        Ok(ReconcileCase {
            max_endpoints_per_slice: max,
            service,
            pods: list(obj, "pods", "Pod")?,
            nodes: list(obj, "nodes", "Node")?,
            existing_slices: list(obj, "existingSlices", "EndpointSlice")?,
        })
    }

    /// Run the reconciler as the oracle ran the real one: topology cache on and given every node,
    /// PreferSameTrafficDistribution on, zero trigger time; created names get a seeded suffix.
    pub fn run(&self) -> Value {
        let mut r = Reconciler::new(ReconcilerOptions {
            max_endpoints_per_slice: self.max_endpoints_per_slice,
            ..Default::default()
        });
        r.set_nodes(&self.nodes);
        let result = r.reconcile(&self.service, &self.pods, &self.nodes, &self.existing_slices);
        let seed = Rng::from_str_seed(self.service.metadata.uid.as_deref().unwrap_or("")).next_u64();
        let mut store = SliceStore::with_slices(seed, &self.existing_slices);
        let applied = store.apply(&result.calls);
        let slices: Vec<Value> = store
            .all()
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
            .map(|mut v| {
                if let Some(o) = v.as_object_mut() {
                    o.remove("kind");
                    o.remove("apiVersion");
                }
                v
            })
            .collect();
        let mut slices = slices;
        crate::sort::by(&mut slices, |a, b| {
            let n = |v: &Value| v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
            n(a).cmp(&n(b))
        });
        let mut events: Vec<String> = result.events.iter().map(|e| e.line()).collect();
        crate::sort::all(&mut events);
        let mut out = json!({
            "slices": slices,
            "created": result.count(Verb::Create),
            "updated": result.count(Verb::Update),
            "deleted": result.count(Verb::Delete),
            "createdNames": applied.created,
            "updatedNames": applied.updated,
            "deletedNames": applied.deleted,
            "events": events,
        });
        if let (Some(e), Some(o)) = (result.error(), out.as_object_mut()) {
            o.insert("error".into(), Value::String(e));
        }
        out
    }
}
