//! What a user (or a scenario) can do to the cluster. Actions are data, so a timeline can be saved,
//! shared in a URL and replayed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Written as `{"type": "scale", "workload": "web", "replicas": 3}`: the variant's name and its fields
/// in camelCase. Read by hand ([`Action::from_value`]), which costs the wasm a fraction of what a
/// derived reader of an internally tagged enum does, with the same rules: every field that has no
/// default is required, and an unknown field or type is an error.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Action {
    /// Set a workload's replicas.
    Scale { workload: String, replicas: u32 },
    /// The Pod's container crashes: phase Failed; its workload replaces it.
    KillPod { pod: String },
    /// The readiness probe starts failing (or passing again).
    SetPodReady { pod: String, ready: bool },
    /// Graceful delete: terminating for the grace period, then gone.
    DeletePod { pod: String },
    /// Replace the Pod's labels (it may leave or join Services).
    RelabelPod { pod: String, labels: std::collections::BTreeMap<String, String> },
    /// The node stops: NotReady, its pods lose readiness, then are evicted.
    FailNode { node: String },
    /// Cordon and evict every pod gracefully.
    DrainNode { node: String },
    /// A failed or drained node is back.
    RecoverNode { node: String },
    AddNode { node: String, zone: String, #[serde(default)] cpu: Option<String> },
    RemoveNode { node: String },
    /// A new version of the pod template: a rolling update.
    RollOut { workload: String },
    /// Merge-patch a Service (JSON merge patch on the object).
    EditService { service: String, patch: serde_json::Value },
    /// Change `--max-endpoints-per-slice` (1..=1000).
    SetMaxEndpointsPerSlice { max: usize },
    /// Cut a node's watch: its kube-proxy keeps its stale view until restored.
    CutWatch { node: String },
    RestoreWatch { node: String },
    /// Extra latency on every API write, in milliseconds.
    SetApiLatency { ms: u64 },
    /// Connections per second of every traffic flow (or of flow `flow`).
    SetTrafficRate { rate: f64, #[serde(default)] flow: Option<usize> },
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Action::from_value(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The fields of an action object, taken one by one; what is left over is an unknown field.
struct Fields(Map<String, Value>);

impl Fields {
    fn take<T: serde::de::DeserializeOwned>(&mut self, name: &str) -> Result<T, String> {
        let v = self.0.remove(name).ok_or_else(|| format!("missing field `{name}`"))?;
        serde_json::from_value(v).map_err(|e| format!("field `{name}`: {e}"))
    }

    fn optional<T: serde::de::DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, String> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v).map(Some).map_err(|e| format!("field `{name}`: {e}")),
        }
    }

    fn done(self, action: Action) -> Result<Action, String> {
        match self.0.keys().next() {
            Some(k) => Err(format!("unknown field `{k}` in a `{}` action", action.type_name())),
            None => Ok(action),
        }
    }
}

impl Action {
    /// Every action type, as written in `type`.
    pub const TYPES: [&'static str; 17] = [
        "scale", "killPod", "setPodReady", "deletePod", "relabelPod", "failNode", "drainNode", "recoverNode", "addNode",
        "removeNode", "rollOut", "editService", "setMaxEndpointsPerSlice", "cutWatch", "restoreWatch", "setApiLatency",
        "setTrafficRate",
    ];

    /// The action's `type`.
    pub fn type_name(&self) -> &'static str {
        Action::TYPES[match self {
            Action::Scale { .. } => 0,
            Action::KillPod { .. } => 1,
            Action::SetPodReady { .. } => 2,
            Action::DeletePod { .. } => 3,
            Action::RelabelPod { .. } => 4,
            Action::FailNode { .. } => 5,
            Action::DrainNode { .. } => 6,
            Action::RecoverNode { .. } => 7,
            Action::AddNode { .. } => 8,
            Action::RemoveNode { .. } => 9,
            Action::RollOut { .. } => 10,
            Action::EditService { .. } => 11,
            Action::SetMaxEndpointsPerSlice { .. } => 12,
            Action::CutWatch { .. } => 13,
            Action::RestoreWatch { .. } => 14,
            Action::SetApiLatency { .. } => 15,
            Action::SetTrafficRate { .. } => 16,
        }]
    }

    /// Reads an action object (see [`Action`]).
    pub fn from_value(v: Value) -> Result<Action, String> {
        let Value::Object(mut m) = v else {
            return Err(format!("an action must be an object with a `type`, not {v}"));
        };
        let ty = match m.remove("type") {
            Some(Value::String(t)) => t,
            Some(other) => return Err(format!("an action's `type` must be a string, not {other}")),
            None => return Err("an action needs a `type`".into()),
        };
        let mut f = Fields(m);
        let a = match ty.as_str() {
            "scale" => Action::Scale { workload: f.take("workload")?, replicas: f.take("replicas")? },
            "killPod" => Action::KillPod { pod: f.take("pod")? },
            "setPodReady" => Action::SetPodReady { pod: f.take("pod")?, ready: f.take("ready")? },
            "deletePod" => Action::DeletePod { pod: f.take("pod")? },
            "relabelPod" => Action::RelabelPod { pod: f.take("pod")?, labels: f.take("labels")? },
            "failNode" => Action::FailNode { node: f.take("node")? },
            "drainNode" => Action::DrainNode { node: f.take("node")? },
            "recoverNode" => Action::RecoverNode { node: f.take("node")? },
            "addNode" => Action::AddNode { node: f.take("node")?, zone: f.take("zone")?, cpu: f.optional("cpu")? },
            "removeNode" => Action::RemoveNode { node: f.take("node")? },
            "rollOut" => Action::RollOut { workload: f.take("workload")? },
            "editService" => Action::EditService { service: f.take("service")?, patch: f.take("patch")? },
            "setMaxEndpointsPerSlice" => Action::SetMaxEndpointsPerSlice { max: f.take("max")? },
            "cutWatch" => Action::CutWatch { node: f.take("node")? },
            "restoreWatch" => Action::RestoreWatch { node: f.take("node")? },
            "setApiLatency" => Action::SetApiLatency { ms: f.take("ms")? },
            "setTrafficRate" => Action::SetTrafficRate { rate: f.take("rate")?, flow: f.optional("flow")? },
            other => {
                return Err(format!(
                    "unknown action type `{other}`, expected one of {}",
                    Action::TYPES.join(", ")
                ))
            }
        };
        f.done(a)
    }

    /// A short description for the why-log.
    pub fn describe(&self) -> String {
        match self {
            Action::Scale { workload, replicas } => format!("scale {workload} to {replicas}"),
            Action::KillPod { pod } => format!("kill pod {pod}"),
            Action::SetPodReady { pod, ready } => format!("make pod {pod} {}", if *ready { "ready" } else { "unready" }),
            Action::DeletePod { pod } => format!("delete pod {pod}"),
            Action::RelabelPod { pod, .. } => format!("relabel pod {pod}"),
            Action::FailNode { node } => format!("fail node {node}"),
            Action::DrainNode { node } => format!("drain node {node}"),
            Action::RecoverNode { node } => format!("recover node {node}"),
            Action::AddNode { node, zone, .. } => format!("add node {node} in {zone}"),
            Action::RemoveNode { node } => format!("remove node {node}"),
            Action::RollOut { workload } => format!("roll out {workload}"),
            Action::EditService { service, .. } => format!("edit service {service}"),
            Action::SetMaxEndpointsPerSlice { max } => format!("set max endpoints per slice to {max}"),
            Action::CutWatch { node } => format!("cut the watch of {node}"),
            Action::RestoreWatch { node } => format!("restore the watch of {node}"),
            Action::SetApiLatency { ms } => format!("set API latency to {ms} ms"),
            Action::SetTrafficRate { rate, flow: None } => format!("set traffic to {rate} connections/s"),
            Action::SetTrafficRate { rate, flow: Some(i) } => format!("set traffic flow {i} to {rate} connections/s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_action() -> Vec<Action> {
        vec![
            Action::Scale { workload: "web".into(), replicas: 3 },
            Action::KillPod { pod: "web-1".into() },
            Action::SetPodReady { pod: "web-1".into(), ready: false },
            Action::DeletePod { pod: "web-1".into() },
            Action::RelabelPod { pod: "web-1".into(), labels: [("app".to_string(), "api".to_string())].into() },
            Action::FailNode { node: "node-1".into() },
            Action::DrainNode { node: "node-1".into() },
            Action::RecoverNode { node: "node-1".into() },
            Action::AddNode { node: "node-9".into(), zone: "zone-c".into(), cpu: Some("8".into()) },
            Action::AddNode { node: "node-9".into(), zone: "zone-c".into(), cpu: None },
            Action::RemoveNode { node: "node-1".into() },
            Action::RollOut { workload: "web".into() },
            Action::EditService { service: "web".into(), patch: json!({"spec": {"publishNotReadyAddresses": true}}) },
            Action::SetMaxEndpointsPerSlice { max: 50 },
            Action::CutWatch { node: "node-1".into() },
            Action::RestoreWatch { node: "node-1".into() },
            Action::SetApiLatency { ms: 250 },
            Action::SetTrafficRate { rate: 12.5, flow: Some(1) },
            Action::SetTrafficRate { rate: 12.5, flow: None },
        ]
    }

    #[test]
    fn every_action_reads_back_as_written() {
        let all = every_action();
        let types: std::collections::BTreeSet<&str> = all.iter().map(|a| a.type_name()).collect();
        assert_eq!(types.len(), Action::TYPES.len(), "a test action for every type");
        for a in all {
            let v = serde_json::to_value(&a).unwrap();
            assert_eq!(v["type"], a.type_name());
            assert_eq!(Action::from_value(v.clone()).unwrap(), a, "{v}");
            assert_eq!(serde_json::from_str::<Action>(&v.to_string()).unwrap(), a);
        }
    }

    #[test]
    fn bad_actions_say_what_is_wrong() {
        for (v, says) in [
            (json!({"type": "scale", "workload": "web"}), "missing field `replicas`"),
            (json!({"type": "scale", "workload": "web", "replicas": 3, "extra": 1}), "unknown field `extra` in a `scale` action"),
            (json!({"type": "explode"}), "unknown action type `explode`, expected one of scale, killPod"),
            (json!({"type": "scale", "workload": "web", "replicas": -1}), "field `replicas`"),
            (json!({"type": 3}), "`type` must be a string"),
            (json!({"workload": "web"}), "needs a `type`"),
            (json!(["scale"]), "must be an object"),
        ] {
            let e = Action::from_value(v.clone()).unwrap_err();
            assert!(e.contains(says), "{v}: {e}");
        }
        // A missing optional field is None, and so is an explicit null.
        let a = Action::from_value(json!({"type": "setTrafficRate", "rate": 1.0, "flow": null})).unwrap();
        assert_eq!(a, Action::SetTrafficRate { rate: 1.0, flow: None });
    }
}
