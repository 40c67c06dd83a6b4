//! The `slicelab` binary: clear one-line errors with a non-zero exit, and deterministic runs.

use std::process::Command;

fn slicelab(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slicelab")).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn temp_file(name: &str, text: &str) -> String {
    let p = std::env::temp_dir().join(format!("slicelab-cli-test-{}-{name}", std::process::id()));
    std::fs::write(&p, text).expect("writable temp dir");
    p.to_string_lossy().to_string()
}

#[test]
fn bad_input_is_one_line_and_a_failure() {
    let not_json = temp_file("bad.json", "{ nope");
    let wrong_kind = temp_file("kind.json", r#"{"service": {"kind": "Pod"}}"#);
    let bad_max = temp_file("max.json", r#"{"service": {}, "maxEndpointsPerSlice": 5000}"#);
    for args in [
        vec!["reconcile"],
        vec!["reconcile", "/nonexistent/case.json"],
        vec!["reconcile", not_json.as_str()],
        vec!["reconcile", wrong_kind.as_str()],
        vec!["reconcile", bad_max.as_str()],
        vec!["run", "no-such-scenario"],
        vec!["run", "scale-0-350-0", "--until", "soon"],
        vec!["run", "scale-0-350-0", "--actions", not_json.as_str()],
        vec!["frobnicate"],
        vec!["endpoints"],
        vec!["endpoints", not_json.as_str()],
    ] {
        let (code, stdout, stderr) = slicelab(&args);
        assert_ne!(code, 0, "{args:?} should fail");
        assert!(stdout.is_empty(), "{args:?} printed partial output: {stdout}");
        assert!(stderr.starts_with("slicelab: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn run_lists_scenarios_and_is_deterministic() {
    let (code, list, _) = slicelab(&["run", "--list"]);
    assert_eq!(code, 0);
    let ids: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(ids.contains(&"scale-0-350-0") && ids.len() >= 10, "{ids:?}");
    let a = slicelab(&["run", "dual-stack", "--seed", "5", "--until", "2m"]);
    let b = slicelab(&["run", "dual-stack", "--seed", "5", "--until", "2m"]);
    assert_eq!(a.0, 0, "{}", a.2);
    assert_eq!(a.1, b.1);
    let last = a.1.lines().last().unwrap_or("");
    assert!(last.starts_with("trace hash: ") && last.len() == "trace hash: ".len() + 16, "{last}");
    let c = slicelab(&["run", "dual-stack", "--seed", "6", "--until", "2m"]);
    assert_ne!(a.1.lines().last(), c.1.lines().last());
}

#[test]
fn extra_actions_from_a_file_change_the_run() {
    let actions = temp_file("actions.json", r#"[{"at": "70s", "action": {"type": "scale", "workload": "web", "replicas": 42}}]"#);
    let (code, out, err) = slicelab(&["run", "scale-0-350-0", "--until", "100s", "--actions", &actions]);
    assert_eq!(code, 0, "{err}");
    // Scaling down empties slices in place: no compaction, so the 42 stay spread over the 4 slices.
    assert!(out.contains("endpointslices: 4 (42 endpoints)"), "{out}");
}

#[test]
fn reconcile_prints_the_oracle_shape() {
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/oracle/reconciler/hand-06-pods-250-max-100.json");
    let (code, out, err) = slicelab(&["reconcile", case]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["created"], 3);
    let mut sizes: Vec<usize> =
        v["slices"].as_array().expect("slices").iter().map(|s| s["endpoints"].as_array().map_or(0, Vec::len)).collect();
    sizes.sort();
    assert_eq!(sizes, vec![50, 100, 100]);
}

#[test]
fn endpoints_prints_the_legacy_object() {
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/oracle/reconciler/hand-07-pods-1001-max-100.json");
    let (code, out, err) = slicelab(&["endpoints", case]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["kind"], "Endpoints");
    let total: usize = v["subsets"].as_array().expect("subsets").iter().map(|s| s["addresses"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(total, 1000, "1001 pods are truncated to 1000 addresses");
    assert_eq!(v["metadata"]["annotations"]["endpoints.kubernetes.io/over-capacity"], "truncated");
}
