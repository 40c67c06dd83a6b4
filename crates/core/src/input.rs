//! Reading real Kubernetes objects from text: JSON or YAML, one object, a `List`, or several YAML
//! documents. Bad input gets a clear error naming the problem; nothing here panics.

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The objects found in a text, sorted by kind, in the order they appeared.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub services: Vec<Service>,
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub endpoints: Vec<Endpoints>,
}

/// Parse a text as JSON (when it starts with `{` or `[`) or as YAML (possibly several documents)
/// into raw JSON values. A `List` (any `kind` ending in `List` with `items`) is flattened.
pub fn parse_values(text: &str) -> Result<Vec<Value>, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err("the input is empty".into());
    }
    let mut docs = Vec::new();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value = serde_json::from_str(trimmed).map_err(|e| format!("not valid JSON: {e}"))?;
        docs.push(v);
    } else {
        for v in crate::yaml_read::documents(trimmed).map_err(|e| format!("not valid YAML: {e}"))? {
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    let mut out = Vec::new();
    for d in docs {
        flatten(d, &mut out, 0)?;
    }
    if out.is_empty() {
        return Err("the input holds no Kubernetes objects".into());
    }
    Ok(out)
}

fn flatten(v: Value, out: &mut Vec<Value>, depth: usize) -> Result<(), String> {
    if depth > 4 {
        return Err("lists are nested too deeply".into());
    }
    match v {
        Value::Array(items) => {
            for i in items {
                flatten(i, out, depth + 1)?;
            }
            Ok(())
        }
        Value::Object(ref m) => {
            let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind.ends_with("List") {
                match m.get("items") {
                    Some(Value::Array(items)) => {
                        for i in items.clone() {
                            flatten(i, out, depth + 1)?;
                        }
                        Ok(())
                    }
                    Some(Value::Null) | None => Ok(()),
                    Some(_) => Err(format!("{kind}: `items` is not a list")),
                }
            } else {
                out.push(v);
                Ok(())
            }
        }
        other => Err(format!("expected a Kubernetes object, found {}", type_name(&other))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Decode one JSON value as a typed object, with the object's kind and name in any error.
pub fn decode<T: DeserializeOwned>(v: Value, what: &str) -> Result<T, String> {
    let name = v
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(|n| format!(" {n:?}"))
        .unwrap_or_default();
    serde_json::from_value(v).map_err(|e| format!("{what}{name}: {e}"))
}

/// Sort raw objects into typed ones by `kind`. Objects of other kinds are an error, so a paste of the
/// wrong thing is reported instead of silently ignored.
pub fn parse_objects(text: &str) -> Result<Objects, String> {
    let mut objs = Objects::default();
    for v in parse_values(text)? {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        match kind.as_str() {
            "Service" => objs.services.push(decode(v, "Service")?),
            "Pod" => objs.pods.push(decode(v, "Pod")?),
            "Node" => objs.nodes.push(decode(v, "Node")?),
            "EndpointSlice" => objs.endpoint_slices.push(decode(v, "EndpointSlice")?),
            "Endpoints" => objs.endpoints.push(decode(v, "Endpoints")?),
            "" => return Err("an object has no `kind`".into()),
            other => return Err(format!("unsupported kind {other:?} (expected Service, Pod, Node, EndpointSlice or Endpoints)")),
        }
    }
    Ok(objs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_yaml_documents_and_lists() {
        let text = "kind: Service\napiVersion: v1\nmetadata: {name: a}\n---\nkind: List\nitems:\n- kind: Pod\n  apiVersion: v1\n  metadata: {name: p}\n";
        let o = parse_objects(text).unwrap();
        assert_eq!(o.services.len(), 1);
        assert_eq!(o.pods[0].metadata.name.as_deref(), Some("p"));
    }

    #[test]
    fn reads_json() {
        let o = parse_objects(r#"{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1"}}"#).unwrap();
        assert_eq!(o.nodes.len(), 1);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(parse_objects("").unwrap_err().contains("empty"));
        assert!(parse_objects("{not json").unwrap_err().contains("JSON"));
        assert!(parse_objects("a: [b").unwrap_err().contains("YAML"));
        assert!(parse_objects("42").unwrap_err().contains("number"));
        assert!(parse_objects("kind: Deployment\nmetadata: {name: x}").unwrap_err().contains("Deployment"));
        assert!(parse_objects("kind: Service\nspec: {ports: 3}").unwrap_err().contains("Service"));
    }
}
