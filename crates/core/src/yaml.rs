//! Writing JSON values as YAML, the way `kubectl get -o yaml` lays objects out: block mappings and
//! sequences, plain scalars where that reads the same to any YAML 1.1 or 1.2 reader, double quotes
//! everywhere else. Written here instead of pulling in a YAML emitter, which costs the page's
//! WebAssembly about 25 KB gzipped; reading YAML is `yaml_read`, also our own.

use serde_json::{Map, Value};

/// A value as a YAML document (no `---`), ending in a newline.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => mapping(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => sequence(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn mapping(out: &mut String, m: &Map<String, Value>, indent: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        entry(out, k, v, indent);
    }
}

/// `key: value` (the caller has placed the cursor), then the value's own lines.
fn entry(out: &mut String, k: &str, v: &Value, indent: usize) {
    out.push_str(&string(k));
    out.push(':');
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            mapping(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            sequence(out, a, indent);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

/// Items at `indent` (a sequence under a key sits at the key's own indentation, as kubectl prints).
fn sequence(out: &mut String, a: &[Value], indent: usize) {
    for item in a {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                out.push(' ');
                mapping(out, m, indent + 2);
            }
            Value::Array(b) if !b.is_empty() => {
                out.push('\n');
                sequence(out, b, indent + 2);
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar(item));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string, plain when it is safe to be, otherwise double-quoted.
fn string(s: &str) -> String {
    if plain_is_safe(s) {
        return s.to_string();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}') => {
                q.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Whether `s` written plain reads back as this same string in YAML 1.1 and 1.2 alike.
fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if "-?:,[]{}#&*!|>'\"%@`. ".contains(first) || s.ends_with([' ', ':']) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.chars().any(|c| c.is_control() || "{}[],\u{feff}\u{2028}\u{2029}".contains(c)) {
        return false;
    }
    // Words that read as booleans or null in YAML 1.1 or 1.2.
    const WORDS: &[&str] = &["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"];
    if WORDS.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    !looks_like_number_or_time(s)
}

/// Numbers (ints with `_`, hex, octal, binary, sexagesimal, floats, `inf`/`nan`) and timestamps.
fn looks_like_number_or_time(s: &str) -> bool {
    if crate::float::is_number(s) {
        return true;
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = body.as_bytes();
    if b.first().is_none_or(|c| !c.is_ascii_digit()) {
        return false;
    }
    if body.len() > 2 && matches!(&b[..2], b"0x" | b"0o" | b"0b") {
        return true;
    }
    // 1_000, 1:30, 1.5_0: digits, underscores, colons and at most one dot.
    let dots = body.matches('.').count();
    if dots <= 1 && body.chars().all(|c| c.is_ascii_digit() || "_:.eE+-".contains(c)) {
        return true;
    }
    // 2025-01-01 and 2025-01-01T00:00:00Z.
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: &Value) {
        let y = to_string(v);
        let back: Value = serde_yaml::from_str(&y).unwrap_or_else(|e| panic!("{e}\n{y}"));
        assert_eq!(&back, v, "\n{y}");
    }

    #[test]
    fn tricky_strings_read_back_as_themselves() {
        let words = [
            "", " a", "a ", "true", "True", "no", "NO", "on", "y", "null", "Null", "~", "1", "-1", "+1", "1.5", "1e3", "1E-3", "0x1F",
            "0o17", "0b101", "1_000", "1:30", "190:20:30.15", ".inf", "-.inf", ".nan", "inf", "NaN", "10.0.0.1", "10.0", "fd00::1",
            "::1", "fd00::", "-", "- a", "-a", "?", "? a", "a: b", "a:b", "a #b", "a#b", "#x", "2025-01-01T00:00:00Z", "2025-01-01",
            "multi\nline", "tab\there", "cr\rhere", "quote\"back\\slash", "\u{7f}", "\u{85}", "\u{feff}x", "é", "日本", "6¾", "0é", "{a}",
            "[x]", "a,b", "*ref", "&anc", "!tag", "%p", "@x", "`x", "|", ">", "'s", "it's", "<none>", "a=b", "k8s.io/name",
            "registry.example/web:v1", "containers started on node-zone-a-0", "0", "00", "0.0.0.0/0", "1.2.3", "v1", "x:",
        ];
        for w in words {
            round_trip(&json!({ w: w, "list": [w], "nested": { "k": w } }));
        }
        for w in words {
            round_trip(&Value::String(w.to_string()));
        }
    }

    #[test]
    fn structures_read_back_as_themselves() {
        round_trip(&json!({
            "apiVersion": "v1", "kind": "Pod", "empty": {}, "none": [], "n": null, "b": false, "i": -7, "f": 0.25, "big": 1e300,
            "list": [1, "two", null, {"a": 1, "b": [{"c": {}}, []]}, [[1, 2], [], [{"x": "y"}]]],
            "metadata": {"labels": {"app": "web", "kubernetes.io/service-name": "web"}, "annotations": {"": "empty key"}},
        }));
        round_trip(&json!([]));
        round_trip(&json!({}));
        round_trip(&json!([{"a": 1}, [2], 3]));
        round_trip(&json!("just a string"));
        round_trip(&json!(42));
    }

    #[test]
    fn every_object_of_the_scenarios_reads_back_as_itself() {
        use crate::sim::api::Kind;
        let mut n = 0;
        for sc in crate::sim::scenario::Scenario::builtin() {
            let mut sim = crate::sim::Sim::new(&sc).unwrap();
            sim.run_until(40_000);
            for kind in [Kind::Pod, Kind::Node, Kind::Service, Kind::EndpointSlice, Kind::Endpoints] {
                for o in sim.api.list(kind) {
                    round_trip(&o.to_json());
                    n += 1;
                }
            }
        }
        assert!(n > 1000, "{n}");
    }

    #[test]
    fn layout_is_the_kubectl_one() {
        let y = to_string(&json!({"kind": "EndpointSlice", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}], "ports": []}));
        assert_eq!(y, "endpoints:\n- addresses:\n  - 10.0.0.1\n  conditions:\n    ready: true\nkind: EndpointSlice\nports: []\n");
        let t = to_string(&json!({"metadata": {"creationTimestamp": "2025-01-01T00:00:00Z", "name": "web-1"}}));
        assert_eq!(t, "metadata:\n  creationTimestamp: \"2025-01-01T00:00:00Z\"\n  name: web-1\n");
    }
}
