//! Reading the `inputs` of an oracle categorize case (`shared/oracle/proxy-tests.json`, kinds
//! `categorize` and `categorize_legacy`) and printing the result in the oracle's shape.
//!
//! The case's endpoints are kube-proxy's internal endpoint objects with Go zero values: an omitted
//! `ready`, `serving`, `terminating` or `isLocal` is false (not the API default).

use std::sync::Arc;

use serde_json::{json, Value};

use super::categorize::{categorize, Categorized};
use super::service::ServicePortInfo;
use super::{Endpoint, Gates, LegacyGates, Protocol, ServicePortName};

/// The inputs of one categorize case.
#[derive(Clone, Debug)]
pub struct CategorizeCase {
    pub endpoints: Vec<Arc<Endpoint>>,
    pub service: ServicePortInfo,
    pub node_name: String,
    pub node_zone: Option<String>,
    pub gates: Gates,
}

fn flag(v: &Value, field: &str) -> Result<bool, String> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("`{field}` must be true or false, found {other}")),
    }
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, String> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => {
            let mut out = a
                .iter()
                .map(|s| s.as_str().map(str::to_string).ok_or_else(|| format!("`{field}` must be a list of strings")))
                .collect::<Result<Vec<_>, _>>()?;
            crate::sort::all(&mut out);
            out.dedup();
            Ok(out)
        }
        Some(_) => Err(format!("`{field}` must be a list of strings")),
    }
}

impl CategorizeCase {
    /// Parse a case: either the whole case object (its `inputs` are read) or the inputs themselves.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim_start_matches('\u{feff}').trim();
        if t.is_empty() {
            return Err("the case file is empty".into());
        }
        let v: Value = serde_json::from_str(t).map_err(|e| format!("not valid JSON: {e}"))?;
        Self::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Self, String> {
        if !v.is_object() {
            return Err("the case must be a JSON object".into());
        }
        if let Some(kind) = v.get("kind").and_then(Value::as_str) {
            if kind != "categorize" && kind != "categorize_legacy" {
                return Err(format!("case kind {kind:?} is not a categorize case"));
            }
        }
        let inputs = v.get("inputs").unwrap_or(v);
        if !inputs.is_object() {
            return Err("`inputs` must be an object".into());
        }
        let gates_v = inputs.get("gates").cloned().unwrap_or(Value::Null);
        let gate = |name: &str| -> Result<Option<bool>, String> {
            match gates_v.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(o) => Err(format!("gate {name} must be true or false, found {o}")),
            }
        };
        let tah = gate("TopologyAwareHints")?;
        let pte = gate("ProxyTerminatingEndpoints")?;
        let legacy = v.get("legacy").and_then(Value::as_bool).unwrap_or(false) || tah.is_some() || pte.is_some();
        let gates = Gates {
            prefer_same_traffic_distribution: gate("PreferSameTrafficDistribution")?.unwrap_or(!legacy),
            legacy: legacy.then(|| LegacyGates {
                topology_aware_hints: tah.unwrap_or(false),
                proxy_terminating_endpoints: pte.unwrap_or(false),
            }),
        };

        let node = inputs.get("node").cloned().unwrap_or(Value::Null);
        let node_name = node.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let node_zone = match node.get("zone") {
            None | Some(Value::Null) => None,
            Some(Value::String(z)) if z == "absent" => None,
            Some(Value::String(z)) => Some(z.clone()),
            Some(o) => return Err(format!("node zone must be a string, found {o}")),
        };

        let s = inputs.get("service").cloned().unwrap_or(Value::Null);
        let mut service = ServicePortInfo::bare(ServicePortName::new("ns", "svc", "", Protocol::Tcp));
        service.internal_policy_local = flag(&s, "internalPolicyLocal")?;
        service.external_policy_local = flag(&s, "externalPolicyLocal")?;
        service.node_port = match s.get("nodePort") {
            None | Some(Value::Null) => 0,
            Some(n) => n.as_u64().filter(|n| *n <= 65535).ok_or_else(|| format!("bad nodePort {n}"))? as u16,
        };
        service.hints_annotation = s.get("hintsAnnotation").and_then(Value::as_str).map(str::to_string);

        let mut endpoints = Vec::new();
        match inputs.get("endpoints") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (i, e) in list.iter().enumerate() {
                    let s = e.get("ep").and_then(Value::as_str).ok_or_else(|| format!("endpoints[{i}]: no `ep` string"))?;
                    let mut ep = Endpoint::from_endpoint_string(s)
                        .ok_or_else(|| format!("endpoints[{i}]: {s:?} is not ip:port"))?;
                    let ctx = |r: Result<bool, String>| r.map_err(|m| format!("endpoints[{i}]: {m}"));
                    ep.ready = ctx(flag(e, "ready"))?;
                    ep.serving = ctx(flag(e, "serving"))?;
                    ep.terminating = ctx(flag(e, "terminating"))?;
                    ep.is_local = ctx(flag(e, "isLocal"))?;
                    ep.zone_hints = strings(e, "zoneHints").map_err(|m| format!("endpoints[{i}]: {m}"))?;
                    if gates.prefer_same_traffic_distribution {
                        ep.node_hints = strings(e, "nodeHints").map_err(|m| format!("endpoints[{i}]: {m}"))?;
                    }
                    endpoints.push(ep);
                }
            }
            Some(_) => return Err("`endpoints` must be a list".into()),
        }
        // kube-proxy hands CategorizeEndpoints the text-sorted list.
        crate::sort::by(&mut endpoints, |a, b| a.endpoint.cmp(&b.endpoint));
        Ok(CategorizeCase { endpoints: endpoints.into_iter().map(Arc::new).collect(), service, node_name, node_zone, gates })
    }

    pub fn run(&self) -> Categorized {
        categorize(&self.endpoints, &self.service, &self.node_name, self.node_zone.as_deref(), &self.gates)
    }

    /// The oracle's output shape: endpoint strings, `null` for an unused set.
    pub fn output(&self, c: &Categorized) -> Value {
        let list = |s: &Option<Vec<usize>>| match s {
            None => Value::Null,
            Some(idx) => Value::from(idx.iter().map(|&i| self.endpoints[i].endpoint.clone()).collect::<Vec<_>>()),
        };
        json!({
            "clusterEndpoints": list(&c.cluster),
            "localEndpoints": list(&c.local),
            "allReachableEndpoints": list(&c.all_reachable),
            "hasAnyEndpoints": c.has_any,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_cases_are_errors() {
        assert!(CategorizeCase::parse("").is_err());
        assert!(CategorizeCase::parse("[1]").is_err());
        assert!(CategorizeCase::parse(r#"{"kind":"iptables_rules","inputs":{}}"#).unwrap_err().contains("not a categorize"));
        assert!(CategorizeCase::parse(r#"{"inputs":{"endpoints":[{"ep":"nope"}]}}"#).unwrap_err().contains("ip:port"));
        assert!(CategorizeCase::parse(r#"{"inputs":{"endpoints":[{"ep":"1.2.3.4:80","ready":"yes"}]}}"#).is_err());
    }

    #[test]
    fn zero_values_and_output() {
        let c = CategorizeCase::parse(r#"{"inputs":{"node":{"zone":"absent"},"service":{},"endpoints":[{"ep":"10.0.0.1:80"},{"ep":"10.0.0.2:80","ready":true}]}}"#).unwrap();
        let out = c.output(&c.run());
        assert_eq!(out["clusterEndpoints"], json!(["10.0.0.2:80"]));
        assert_eq!(out["localEndpoints"], Value::Null);
    }
}
