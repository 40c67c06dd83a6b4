//! What a user (or a scenario) can do to the cluster. Actions are data, so a timeline can be saved,
//! shared in a URL and replayed.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
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

impl Action {
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
