//! `slicelab reconcile CASE.json`

use slicelab_core::case::ReconcileCase;

pub fn run(args: &[String]) -> Result<String, String> {
    let path = match args {
        [p] => p,
        [] => return Err("reconcile: missing CASE.json".into()),
        _ => return Err("reconcile: expected exactly one CASE.json".into()),
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("reconcile: cannot read {path}: {e}"))?;
    let case = ReconcileCase::parse(&text).map_err(|e| format!("reconcile: {path}: {e}"))?;
    let out = case.run();
    serde_json::to_string_pretty(&out).map(|s| s + "\n").map_err(|e| format!("reconcile: cannot print the result: {e}"))
}
