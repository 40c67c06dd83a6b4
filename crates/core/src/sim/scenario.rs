//! Scenarios as data: one JSON file each, with an id, a title, a description, a seed, the initial
//! world and timed actions. The built-in ones ship inside the binary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::actions::Action;

/// Parse "250ms", "30s", "10m", "1h" or a bare number of milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (s, 1)
    };
    let v: f64 = crate::float::parse(num.trim()).ok_or_else(|| format!("not a duration: {s:?} (use e.g. 500ms, 30s, 10m, 1h)"))?;
    if !v.is_finite() || v < 0.0 || v * mul as f64 > 100.0 * 3_600_000.0 {
        return Err(format!("duration out of range: {s:?} (0 to 100h)"));
    }
    Ok((v * mul as f64).round() as u64)
}

/// A duration in a scenario: a string like "30s" or a number of milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration like \"30s\" or a whole number of milliseconds")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Millis, E> {
                Ok(Millis(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Millis, E> {
                parse_duration_ms(s).map(Millis).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A container port of a workload's pod template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub port: i32,
    #[serde(default = "tcp")]
    pub protocol: String,
    /// Declared on a sidecar (an init container with restartPolicy Always) instead of the main one.
    #[serde(default)]
    pub sidecar: bool,
}

fn tcp() -> String {
    "TCP".into()
}

/// A Deployment-like workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    pub name: String,
    pub replicas: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Time from container start to the first successful readiness probe.
    #[serde(default)]
    pub readiness_delay: Option<Millis>,
    /// Chance that a readiness probe fails (flap), checked every probe period.
    #[serde(default)]
    pub probe_failure_rate: f64,
    /// Chance per minute that a running container crashes and restarts.
    #[serde(default)]
    pub crash_rate_per_minute: f64,
    #[serde(default)]
    pub termination_grace_period_seconds: Option<u64>,
    #[serde(default)]
    pub max_surge: Option<u32>,
    #[serde(default)]
    pub max_unavailable: Option<u32>,
    /// Pod hostname and subdomain (for headless Services).
    #[serde(default)]
    pub subdomain: Option<String>,
}

/// A node of the initial world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub zone: String,
    #[serde(default = "default_cpu")]
    pub cpu: String,
    #[serde(default)]
    pub control_plane: bool,
}

fn default_cpu() -> String {
    "4".into()
}

/// The initial world.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorldSpec {
    /// Zones with `nodesPerZone` nodes each (named node-<zone>-<i>), unless `nodes` lists them.
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub nodes_per_zone: Option<u32>,
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub dual_stack: bool,
    /// Real Service objects (JSON, as `kubectl get -o json` prints).
    #[serde(default)]
    pub services: Vec<serde_json::Value>,
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
    /// Custom EndpointSlices and Endpoints (for selector-less Services).
    #[serde(default)]
    pub endpoint_slices: Vec<serde_json::Value>,
    #[serde(default)]
    pub endpoints: Vec<serde_json::Value>,
}

/// Settings of the controllers and of propagation. Unset fields keep their defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigPatch {
    pub max_endpoints_per_slice: Option<usize>,
    pub batch_period: Option<Millis>,
    pub api_latency: Option<Millis>,
    pub watch_latency: Option<Millis>,
    pub min_sync_period: Option<Millis>,
    pub eviction_timeout: Option<Millis>,
    pub node_monitor_grace: Option<Millis>,
    /// kube-proxy's mode: iptables (default), nftables or ipvs.
    pub proxy_mode: Option<String>,
}

/// An action at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimedAction {
    pub at: Millis,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub description: String,
    pub seed: u64,
    #[serde(default)]
    pub config: ConfigPatch,
    pub world: WorldSpec,
    /// Clients opening connections to Services.
    #[serde(default)]
    pub traffic: Vec<super::traffic::FlowSpec>,
    #[serde(default)]
    pub actions: Vec<TimedAction>,
}

/// The built-in scenarios (files under `crates/core/scenarios/`).
pub const BUILTIN: &[&str] = &[
    include_str!("../../scenarios/scale-0-350-0.json"),
    include_str!("../../scenarios/rolling-update-250.json"),
    include_str!("../../scenarios/node-failure-3-zones.json"),
    include_str!("../../scenarios/dual-stack.json"),
    include_str!("../../scenarios/topology-auto-skewed.json"),
    include_str!("../../scenarios/prefer-same-zone.json"),
    include_str!("../../scenarios/headless-dns.json"),
    include_str!("../../scenarios/over-1000-endpoints.json"),
    include_str!("../../scenarios/selectorless-custom-endpoints.json"),
    include_str!("../../scenarios/readiness-flap-storm.json"),
];

impl Scenario {
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let v: serde_json::Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| format!("scenario is not valid JSON: {e}"))?
        } else {
            crate::yaml_read::one(text).map_err(|e| format!("scenario is neither JSON nor valid YAML: {e}"))?
        };
        let s: Scenario = serde_json::from_value(v).map_err(|e| format!("scenario: {e}"))?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("scenario: `id` is empty".into());
        }
        if let Some(m) = self.config.max_endpoints_per_slice {
            if !(1..=1000).contains(&m) {
                return Err(format!("scenario {}: maxEndpointsPerSlice must be 1..1000, got {m}", self.id));
            }
        }
        if let Some(m) = &self.config.proxy_mode {
            crate::proxy::node::Mode::parse(m).map_err(|e| format!("scenario {}: proxyMode: {e}", self.id))?;
        }
        super::traffic::validate(&self.traffic).map_err(|e| format!("scenario {}: {e}", self.id))?;
        let pods: u64 = self.world.workloads.iter().map(|w| w.replicas as u64).sum();
        if pods > 20_000 {
            return Err(format!("scenario {}: at most 20000 pods, got {pods}", self.id));
        }
        if self.world.nodes.is_empty() && self.world.zones.is_empty() {
            return Err(format!("scenario {}: the world has no nodes (give `zones` or `nodes`)", self.id));
        }
        for w in &self.world.workloads {
            for r in [w.probe_failure_rate, w.crash_rate_per_minute] {
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("scenario {}: workload {}: rates must be between 0 and 1", self.id, w.name));
                }
            }
        }
        Ok(())
    }

    pub fn builtin() -> Vec<Scenario> {
        BUILTIN.iter().filter_map(|t| Scenario::parse(t).ok()).collect()
    }

    pub fn by_id(id: &str) -> Option<Scenario> {
        Scenario::builtin().into_iter().find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_is_a_string_with_a_unit_or_whole_milliseconds() {
        let read = |j: &str| serde_json::from_str::<Millis>(j).map(|m| m.0).map_err(|e| e.to_string());
        assert_eq!(read("1500"), Ok(1500));
        assert_eq!(read("\"1.5s\""), Ok(1500));
        assert_eq!(read("\"2m\""), Ok(120_000));
        for bad in ["-5", "1.5", "true", "null", "\"soon\"", "[1]"] {
            assert!(read(bad).is_err(), "{bad}");
        }
        assert!(read("-5").unwrap_err().contains("a duration like \"30s\" or a whole number of milliseconds"));
    }
}
