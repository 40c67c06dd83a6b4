//! Conformance with `shared/oracle/reconciler/`: every case run through the reconciler and compared
//! with what the real Kubernetes reconciler produced, at the level `compare.py` uses for that case.
//! This is a port of `shared/oracle/compare.py`'s rules, with one principled difference noted below.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};
use slicelab_core::case::ReconcileCase;

fn oracle_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracle/reconciler")
}

/// Drop nulls, empty lists and empty objects, recursively.
fn prune(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        Value::Array(a) => Some(Value::Array(a.iter().map(|x| prune(x).unwrap_or(Value::Null)).collect())),
        Value::Object(o) => {
            let m: Map<String, Value> = o.iter().filter_map(|(k, v)| prune(v).map(|v| (k.clone(), v))).collect();
            if m.is_empty() {
                None
            } else {
                Some(Value::Object(m))
            }
        }
        other => Some(other.clone()),
    }
}

/// serde_json's `Map` is a BTreeMap here, so `to_string` is already key-sorted.
fn canon(v: &Value) -> String {
    v.to_string()
}

fn norm_slice(s: &Value, existing: &[String]) -> Value {
    let mut s = prune(s).unwrap_or(Value::Object(Map::new()));
    if let Some(o) = s.as_object_mut() {
        o.remove("kind");
        o.remove("apiVersion");
        let md = o.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if let Some(md) = md.as_object_mut() {
            for k in ["resourceVersion", "creationTimestamp", "uid", "managedFields", "selfLink"] {
                md.remove(k);
            }
            let name = md.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            if !existing.contains(&name) {
                md.insert("name".into(), Value::String("<created>".into()));
            }
        }
    }
    s
}

fn endpoints(s: &Value) -> Vec<Value> {
    s.get("endpoints").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn skipped_pods(err: Option<&str>) -> Option<Vec<String>> {
    let err = err.filter(|e| !e.is_empty())?;
    let mut found = Vec::new();
    for part in err.split("skipping Pod ").skip(1) {
        let words: Vec<&str> = part.split_whitespace().collect();
        if words.len() >= 5 && words[1] == "for" && words[2] == "Service" {
            found.push(format!("{} {} {}", words[0], words[3].trim_end_matches(':'), words[5]));
        }
    }
    if found.is_empty() {
        return Some(vec!["<other error>".into()]);
    }
    found.sort();
    Some(found)
}

fn sorted_strings(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|x| x.as_str().map(String::from).unwrap_or_else(|| x.to_string()))
        .collect();
    out.sort();
    out
}

fn chk(d: &mut Vec<String>, what: &str, a: String, b: String) {
    if a != b {
        d.push(format!("{what}: expected {a}, got {b}"));
    }
}

fn counts(r: &Value) -> (u64, u64, u64) {
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    (n("created"), n("updated"), n("deleted"))
}

fn multiset<I: IntoIterator<Item = String>>(it: I) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in it {
        *m.entry(s).or_insert(0) += 1;
    }
    m
}

fn without_hints(e: &Value) -> Value {
    let mut e = e.clone();
    if let Some(o) = e.as_object_mut() {
        o.remove("hints");
    }
    e
}

/// Compare one case; returns the level used and the differences.
fn compare(case: &Value, got: &Value) -> (String, Vec<String>) {
    let exp = &case["expected"];
    let obs = &exp["observed"];
    let flag = |k: &str| obs.get(k).and_then(Value::as_bool).unwrap_or(false);
    let num = |k: &str| obs.get(k).and_then(Value::as_u64).unwrap_or(0);
    let level = if num("distinctExact") == 1 {
        "exact"
    } else if num("distinctIgnoringEndpointOrder") == 1 {
        "endpoint-order"
    } else if num("distinctIgnoringSliceAssignment") == 1 {
        "slice-assignment"
    } else {
        "stable-aspects"
    };
    let existing: Vec<String> = case["existingSlices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.pointer("/metadata/name").and_then(Value::as_str).map(String::from))
        .collect();
    let mut diffs = Vec::new();
    let es: Vec<Value> = exp["slices"].as_array().into_iter().flatten().map(|s| norm_slice(s, &existing)).collect();
    let gs: Vec<Value> = got["slices"].as_array().into_iter().flatten().map(|s| norm_slice(s, &existing)).collect();
    chk(&mut diffs, 
        "error (skipped pods)",
        format!("{:?}", skipped_pods(exp.get("error").and_then(Value::as_str))),
        format!("{:?}", skipped_pods(got.get("error").and_then(Value::as_str))),
    );
    chk(&mut diffs, "number of slices", es.len().to_string(), gs.len().to_string());
    let events_check = |d: &mut Vec<String>| {
        chk(d, "events", format!("{:?}", sorted_strings(exp.get("events"))), format!("{:?}", sorted_strings(got.get("events"))))
    };

    match level {
        "exact" | "endpoint-order" => {
            let prep = |s: &Value| {
                let mut s = s.clone();
                if level == "endpoint-order" {
                    let mut eps = endpoints(&s);
                    eps.sort_by_key(canon);
                    if let Some(o) = s.as_object_mut() {
                        o.insert("endpoints".into(), Value::Array(eps));
                    }
                }
                canon(&s)
            };
            let mut a: Vec<String> = es.iter().map(prep).collect();
            let mut b: Vec<String> = gs.iter().map(prep).collect();
            a.sort();
            b.sort();
            chk(&mut diffs, "slices", a.join("\n"), b.join("\n"));
            chk(&mut diffs, "calls", format!("{:?}", counts(exp)), format!("{:?}", counts(got)));
            chk(&mut diffs, "updated names", format!("{:?}", sorted_strings(exp.get("updatedNames"))), format!("{:?}", sorted_strings(got.get("updatedNames"))));
            chk(&mut diffs, "deleted names", format!("{:?}", sorted_strings(exp.get("deletedNames"))), format!("{:?}", sorted_strings(got.get("deletedNames"))));
            events_check(&mut diffs);
        }
        "slice-assignment" => {
            let groups = |slices: &[Value]| {
                let mut g: BTreeMap<String, (Vec<usize>, BTreeMap<String, usize>)> = BTreeMap::new();
                for s in slices {
                    let mut ports: Vec<String> = s.get("ports").and_then(Value::as_array).into_iter().flatten().map(canon).collect();
                    ports.sort();
                    let key = format!("{} {:?}", s.get("addressType").and_then(Value::as_str).unwrap_or(""), ports);
                    let e = g.entry(key).or_default();
                    e.0.push(endpoints(s).len());
                    for ep in endpoints(s) {
                        *e.1.entry(canon(&ep)).or_insert(0) += 1;
                    }
                }
                for v in g.values_mut() {
                    v.0.sort();
                }
                g
            };
            let (eg, gg) = (groups(&es), groups(&gs));
            chk(&mut diffs, "groups", format!("{:?}", eg.keys().collect::<Vec<_>>()), format!("{:?}", gg.keys().collect::<Vec<_>>()));
            for (k, (sizes, eps)) in &eg {
                if let Some((gsizes, geps)) = gg.get(k) {
                    chk(&mut diffs, &format!("slice sizes in {k}"), format!("{sizes:?}"), format!("{gsizes:?}"));
                    if eps != geps {
                        diffs.push(format!("endpoints in group {k} differ"));
                    }
                }
            }
            chk(&mut diffs, "calls", format!("{:?}", counts(exp)), format!("{:?}", counts(got)));
            if flag("eventsStable") {
                events_check(&mut diffs);
            }
        }
        _ => {
            if flag("countsStable") {
                chk(&mut diffs, "calls", format!("{:?}", counts(exp)), format!("{:?}", counts(got)));
            }
            if flag("eventsStable") {
                events_check(&mut diffs);
            }
            let all = |slices: &[Value], hints: bool| {
                multiset(slices.iter().flat_map(endpoints).map(|e| canon(&if hints { e } else { without_hints(&e) })))
            };
            let runs = num("runs");
            if flag("endpointContentStable") {
                if all(&es, true) != all(&gs, true) {
                    diffs.push("endpoint contents (hints included) differ".into());
                }
            } else if runs > 1 && num("distinctIgnoringSliceAssignment") == runs {
                // The difference from compare.py: here the real reconciler put a *different* set of
                // endpoints in the slices in every one of its runs (it pops them from a Go map), so no
                // implementation can match the one recorded run. What stays checkable: every endpoint
                // written is one of the recorded run's candidates' shape — same count per slice (checked
                // above through the slice count and below), no endpoint twice.
                let g = all(&gs, false);
                if g.values().any(|&n| n > 1) {
                    diffs.push("an endpoint was written twice".into());
                }
                let mut a: Vec<usize> = es.iter().map(|s| endpoints(s).len()).collect();
                let mut b: Vec<usize> = gs.iter().map(|s| endpoints(s).len()).collect();
                a.sort();
                b.sort();
                if a != b {
                    diffs.push(format!("slice sizes differ: expected {a:?}, got {b:?}"));
                }
            } else if all(&es, false) != all(&gs, false) {
                diffs.push("endpoint contents (hints left out) differ".into());
            }
            if flag("hintCountsStable") {
                let hint_counts = |slices: &[Value]| {
                    multiset(slices.iter().flat_map(|s| {
                        let at = s.get("addressType").and_then(Value::as_str).unwrap_or("").to_string();
                        endpoints(s).into_iter().flat_map(move |e| {
                            let at = at.clone();
                            e.pointer("/hints/forZones")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default()
                                .into_iter()
                                .map(move |z| format!("{at} {}", z.get("name").and_then(Value::as_str).unwrap_or("")))
                        })
                    }))
                };
                chk(&mut diffs, "hints per zone", format!("{:?}", hint_counts(&es)), format!("{:?}", hint_counts(&gs)));
            }
            if flag("survivingNamesStable") {
                let names = |slices: &[Value]| {
                    let mut v: Vec<String> = slices
                        .iter()
                        .filter_map(|s| s.pointer("/metadata/name").and_then(Value::as_str).map(String::from))
                        .filter(|n| n != "<created>")
                        .collect();
                    v.sort();
                    v
                };
                if names(&es) != names(&gs) {
                    diffs.push(format!("surviving names: expected {:?}, got {:?}", names(&es), names(&gs)));
                }
            }
        }
    }
    (level.to_string(), diffs)
}

#[test]
fn every_oracle_case_agrees_with_the_real_reconciler() {
    let dir = oracle_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 43, "expected the 43 oracle cases, found {}", files.len());
    let mut failures = Vec::new();
    let mut by_level: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable case");
        let case_json: Value = serde_json::from_str(&text).expect("case is JSON");
        let case = ReconcileCase::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let got = case.run();
        // The same inputs give the same output (determinism).
        assert_eq!(got, case.run(), "{}: two runs differ", f.display());
        let (level, diffs) = compare(&case_json, &got);
        if diffs.is_empty() {
            *by_level.entry(level).or_insert(0) += 1;
        } else {
            failures.push(format!("{} [{level}]: {}", f.display(), diffs.join("; ")));
        }
    }
    println!("agreed by level: {by_level:?}");
    println!("{} passed, {} failed", files.len() - failures.len(), failures.len());
    assert!(failures.is_empty(), "disagreements:\n{}", failures.join("\n"));
}

#[test]
fn bad_cases_are_clear_errors() {
    for (text, needle) in [
        ("", "empty"),
        ("{", "JSON"),
        ("[1]", "object"),
        ("{\"pods\": []}", "no `service`"),
        ("{\"service\": {\"kind\": \"Pod\"}}", "kind Service"),
        ("{\"service\": {}, \"pods\": 3}", "list of Pod"),
        ("{\"service\": {}, \"maxEndpointsPerSlice\": 0}", "between 1 and 1000"),
        ("{\"service\": {}, \"maxEndpointsPerSlice\": 1001}", "between 1 and 1000"),
        ("{\"service\": {}, \"maxEndpointsPerSlice\": \"x\"}", "number"),
        ("{\"service\": {\"spec\": {\"ports\": \"x\"}}}", "Service"),
        ("{\"service\": {}, \"existingSlices\": [{\"kind\": \"EndpointSlice\", \"endpoints\": 5}]}", "existingSlices[0]"),
    ] {
        let err = ReconcileCase::parse(text).expect_err(text);
        assert!(err.contains(needle), "{text:?} gave {err:?}, wanted {needle:?}");
    }
}
