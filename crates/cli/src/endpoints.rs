//! `slicelab endpoints CASE.json`: the legacy Endpoints object for an oracle case's inputs.

use slicelab_core::case::ReconcileCase;
use slicelab_core::controller::endpoints::{sync, EndpointsWrite};

pub fn run(args: &[String]) -> Result<String, String> {
    let path = match args {
        [p] => p,
        [] => return Err("endpoints: missing CASE.json".into()),
        _ => return Err("endpoints: expected exactly one CASE.json".into()),
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("endpoints: cannot read {path}: {e}"))?;
    let case = ReconcileCase::parse(&text).map_err(|e| format!("endpoints: {path}: {e}"))?;
    let ep = match sync(Some(&case.service), &case.pods, None) {
        EndpointsWrite::Create(ep) | EndpointsWrite::Update(ep) => ep,
        _ => {
            return Err(format!(
                "endpoints: {path}: Service {:?} gets no Endpoints object (ExternalName or no selector)",
                case.service.metadata.name.as_deref().unwrap_or("")
            ))
        }
    };
    let mut v = serde_json::to_value(&ep).map_err(|e| format!("endpoints: {e}"))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("kind".into(), "Endpoints".into());
        o.insert("apiVersion".into(), "v1".into());
    }
    serde_json::to_string_pretty(&v).map(|s| s + "\n").map_err(|e| format!("endpoints: {e}"))
}
