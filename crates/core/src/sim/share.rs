//! The whole state of a page in a URL query: the scenario, the seed, the time, the knobs and the
//! list of actions, so a link reproduces exactly what its author saw. Parsing is strict and capped:
//! a hostile or broken query is an error with a clear message, never a panic.
//!
//! Knobs change the world a scenario starts from (zones, nodes, dual stack, proxy mode, …); changes
//! made while a run is going (scale, max per slice, a Service edit, the traffic rate) are actions.

use serde_json::json;

use super::scenario::{Millis, Scenario, TimedAction};
use super::Action;

/// Longest query accepted.
pub const MAX_QUERY: usize = 16 * 1024;
/// Most actions a link may carry.
pub const MAX_ACTIONS: usize = 200;
/// Latest time a link may point at (24 hours).
pub const MAX_TIME_MS: u64 = 24 * 3600 * 1000;

/// Changes to the world a scenario starts from. `None` keeps the scenario's own value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Knobs {
    pub replicas: Option<u32>,
    pub max_per_slice: Option<usize>,
    pub zones: Option<u32>,
    pub nodes_per_zone: Option<u32>,
    pub dual_stack: Option<bool>,
    /// `PreferClose`, `PreferSameZone`, `PreferSameNode`, or empty for none.
    pub traffic_distribution: Option<String>,
    /// The topology-mode annotation set to `Auto` (true) or removed (false).
    pub topology_auto: Option<bool>,
    /// `Cluster` or `Local`.
    pub internal_policy: Option<String>,
    pub external_policy: Option<String>,
    /// ClientIP session affinity.
    pub session_affinity: Option<bool>,
    /// `iptables`, `nftables` or `ipvs`.
    pub proxy_mode: Option<String>,
    /// Connections per second of every flow.
    pub rate: Option<f64>,
}

const TRAFFIC_DISTRIBUTIONS: [&str; 3] = ["PreferClose", "PreferSameZone", "PreferSameNode"];

fn policy(v: &str, what: &str) -> Result<String, String> {
    match v {
        "Cluster" | "Local" => Ok(v.to_string()),
        _ => Err(format!("{what} must be Cluster or Local, got {v:?}")),
    }
}

impl Knobs {
    /// Check every value is in range.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(r) = self.replicas {
            if r > 10_000 {
                return Err(format!("replicas must be 0..10000, got {r}"));
            }
        }
        if let Some(m) = self.max_per_slice {
            if !(1..=1000).contains(&m) {
                return Err(format!("max endpoints per slice must be 1..1000, got {m}"));
            }
        }
        if let Some(z) = self.zones {
            if !(1..=6).contains(&z) {
                return Err(format!("zones must be 1..6, got {z}"));
            }
        }
        if let Some(n) = self.nodes_per_zone {
            if !(1..=20).contains(&n) {
                return Err(format!("nodes per zone must be 1..20, got {n}"));
            }
        }
        if let Some(t) = &self.traffic_distribution {
            if !t.is_empty() && !TRAFFIC_DISTRIBUTIONS.contains(&t.as_str()) {
                return Err(format!("trafficDistribution must be one of {}, or empty; got {t:?}", TRAFFIC_DISTRIBUTIONS.join(", ")));
            }
        }
        if let Some(p) = &self.internal_policy {
            policy(p, "internalTrafficPolicy")?;
        }
        if let Some(p) = &self.external_policy {
            policy(p, "externalTrafficPolicy")?;
        }
        if let Some(m) = &self.proxy_mode {
            crate::proxy::node::Mode::parse(m)?;
        }
        if let Some(r) = self.rate {
            if !r.is_finite() || !(0.0..=super::traffic::MAX_RATE).contains(&r) {
                return Err(format!("traffic rate must be 0..{}, got {r}", super::traffic::MAX_RATE));
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        *self == Knobs::default()
    }

    /// The scenario with these knobs applied to its world, its first Service and its first workload.
    pub fn apply(&self, sc: &Scenario) -> Result<Scenario, String> {
        self.validate()?;
        let mut sc = sc.clone();
        if let Some(r) = self.replicas {
            if let Some(w) = sc.world.workloads.first_mut() {
                w.replicas = r;
            }
        }
        if let Some(m) = self.max_per_slice {
            sc.config.max_endpoints_per_slice = Some(m);
        }
        if self.zones.is_some() || self.nodes_per_zone.is_some() {
            if !sc.world.nodes.is_empty() {
                return Err(format!("scenario {} lists its nodes one by one: zones and nodes per zone cannot change", sc.id));
            }
            if let Some(z) = self.zones {
                sc.world.zones = (0..z).map(|i| format!("zone-{}", (b'a' + i as u8) as char)).collect();
            }
            if let Some(n) = self.nodes_per_zone {
                sc.world.nodes_per_zone = Some(n);
            }
        }
        if let Some(m) = &self.proxy_mode {
            sc.config.proxy_mode = Some(m.clone());
        }
        if let Some(r) = self.rate {
            for f in &mut sc.traffic {
                f.rate = r;
            }
        }
        if let Some(d) = self.dual_stack {
            sc.world.dual_stack = d;
        }
        let patch = self.service_patch();
        if let Some(svc) = sc.world.services.first_mut() {
            if let Some(d) = self.dual_stack {
                let spec = svc.as_object_mut().and_then(|o| o.get_mut("spec")).and_then(|s| s.as_object_mut());
                if let Some(spec) = spec {
                    if d {
                        spec.insert("ipFamilyPolicy".into(), json!("RequireDualStack"));
                        spec.insert("ipFamilies".into(), json!(["IPv4", "IPv6"]));
                    } else {
                        spec.insert("ipFamilyPolicy".into(), json!("SingleStack"));
                        spec.insert("ipFamilies".into(), json!(["IPv4"]));
                    }
                    spec.remove("clusterIP");
                    spec.remove("clusterIPs");
                }
            }
            if let Some(p) = patch {
                super::world::merge_patch(svc, &p);
            }
        }
        sc.validate()?;
        Ok(sc)
    }

    /// The Service fields these knobs set, as a JSON merge patch (also what the page sends as an
    /// `editService` action when a knob changes during a run).
    pub fn service_patch(&self) -> Option<serde_json::Value> {
        let mut spec = serde_json::Map::new();
        let mut meta = serde_json::Map::new();
        if let Some(t) = &self.traffic_distribution {
            spec.insert("trafficDistribution".into(), if t.is_empty() { json!(null) } else { json!(t) });
        }
        if let Some(p) = &self.internal_policy {
            spec.insert("internalTrafficPolicy".into(), json!(p));
        }
        if let Some(p) = &self.external_policy {
            spec.insert("externalTrafficPolicy".into(), json!(p));
        }
        if let Some(a) = self.session_affinity {
            spec.insert("sessionAffinity".into(), json!(if a { "ClientIP" } else { "None" }));
        }
        if let Some(a) = self.topology_auto {
            meta.insert("annotations".into(), json!({ "service.kubernetes.io/topology-mode": if a { json!("Auto") } else { json!(null) } }));
        }
        if spec.is_empty() && meta.is_empty() {
            return None;
        }
        let mut p = serde_json::Map::new();
        if !spec.is_empty() {
            p.insert("spec".into(), serde_json::Value::Object(spec));
        }
        if !meta.is_empty() {
            p.insert("metadata".into(), serde_json::Value::Object(meta));
        }
        Some(serde_json::Value::Object(p))
    }
}

/// What a link holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shared {
    pub scenario: String,
    /// `None`: the scenario's own seed.
    pub seed: Option<u64>,
    /// Virtual milliseconds.
    pub t: u64,
    pub knobs: Knobs,
    pub actions: Vec<TimedAction>,
    pub embed: bool,
}

/// Percent-encode everything but unreserved characters.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode `%XX` and `+`; an error for a broken escape or bytes that are not UTF-8.
pub fn decode_component(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => out.push(v),
                    None => return Err("a broken %-escape".into()),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "text that is not UTF-8".into())
}

fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("`{k}` is not a valid number: {v:?}"))
}

fn flag(k: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(format!("`{k}` must be 1 or 0, got {v:?}")),
    }
}

impl Shared {
    /// Parse a query string (with or without the leading `?`). Unknown keys are ignored (links from
    /// newer versions still open); bad values are errors.
    pub fn parse(query: &str) -> Result<Shared, String> {
        let q = query.strip_prefix('?').unwrap_or(query);
        if q.len() > MAX_QUERY {
            return Err(format!("the link is too long ({} bytes, at most {MAX_QUERY})", q.len()));
        }
        let mut s = Shared::default();
        for part in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = decode_component(k)?;
            let v = decode_component(v).map_err(|e| format!("`{k}` holds {e}"))?;
            let k = k.as_str();
            let kn = &mut s.knobs;
            match k {
                "s" => {
                    if v.len() > 100 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                        return Err("the scenario id in the link is not valid".into());
                    }
                    s.scenario = v;
                }
                "seed" => s.seed = Some(num(k, &v)?),
                "t" => {
                    let t: u64 = num(k, &v)?;
                    if t > MAX_TIME_MS {
                        return Err(format!("the time in the link is past 24 hours ({t} ms)"));
                    }
                    s.t = t;
                }
                "embed" => s.embed = flag(k, &v)?,
                "replicas" => kn.replicas = Some(num(k, &v)?),
                "max" => kn.max_per_slice = Some(num(k, &v)?),
                "zones" => kn.zones = Some(num(k, &v)?),
                "npz" => kn.nodes_per_zone = Some(num(k, &v)?),
                "dual" => kn.dual_stack = Some(flag(k, &v)?),
                "td" => kn.traffic_distribution = Some(v),
                "topo" => kn.topology_auto = Some(flag(k, &v)?),
                "itp" => kn.internal_policy = Some(v),
                "etp" => kn.external_policy = Some(v),
                "aff" => kn.session_affinity = Some(flag(k, &v)?),
                "mode" => kn.proxy_mode = Some(v),
                "rate" => kn.rate = Some(crate::float::parse(&v).ok_or_else(|| format!("`{k}` is not a valid number: {v:?}"))?),
                "a" => {
                    // Through a JSON value, the one way actions are read anywhere (one copy of their decoder).
                    let list: Vec<(u64, Action)> = serde_json::from_str::<serde_json::Value>(&v)
                        .and_then(serde_json::from_value)
                        .map_err(|e| format!("the actions in the link are not valid: {e}"))?;
                    if list.len() > MAX_ACTIONS {
                        return Err(format!("the link holds {} actions, at most {MAX_ACTIONS}", list.len()));
                    }
                    if let Some((t, _)) = list.iter().find(|(t, _)| *t > MAX_TIME_MS) {
                        return Err(format!("an action in the link is past 24 hours ({t} ms)"));
                    }
                    s.actions = list.into_iter().map(|(at, action)| TimedAction { at: Millis(at), action }).collect();
                }
                _ => {}
            }
        }
        s.knobs.validate()?;
        Ok(s)
    }

    /// The query string (without `?`), keys in a fixed order; defaults are left out.
    pub fn to_query(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut put = |k: &str, v: String| parts.push(format!("{k}={}", encode_component(&v)));
        if !self.scenario.is_empty() {
            put("s", self.scenario.clone());
        }
        if let Some(seed) = self.seed {
            put("seed", seed.to_string());
        }
        if self.t > 0 {
            put("t", self.t.to_string());
        }
        let k = &self.knobs;
        let b = |v: bool| if v { "1".to_string() } else { "0".to_string() };
        if let Some(v) = k.replicas {
            put("replicas", v.to_string());
        }
        if let Some(v) = k.max_per_slice {
            put("max", v.to_string());
        }
        if let Some(v) = k.zones {
            put("zones", v.to_string());
        }
        if let Some(v) = k.nodes_per_zone {
            put("npz", v.to_string());
        }
        if let Some(v) = k.dual_stack {
            put("dual", b(v));
        }
        if let Some(v) = &k.traffic_distribution {
            put("td", v.clone());
        }
        if let Some(v) = k.topology_auto {
            put("topo", b(v));
        }
        if let Some(v) = &k.internal_policy {
            put("itp", v.clone());
        }
        if let Some(v) = &k.external_policy {
            put("etp", v.clone());
        }
        if let Some(v) = k.session_affinity {
            put("aff", b(v));
        }
        if let Some(v) = &k.proxy_mode {
            put("mode", v.clone());
        }
        if let Some(v) = k.rate {
            put("rate", v.to_string());
        }
        if !self.actions.is_empty() {
            let list: Vec<(u64, &Action)> = self.actions.iter().map(|a| (a.at.0, &a.action)).collect();
            put("a", serde_json::to_string(&list).unwrap_or_default());
        }
        if self.embed {
            put("embed", "1".into());
        }
        parts.join("&")
    }

    /// The scenario this link starts from, with its knobs applied and its seed; an error names what
    /// is wrong (an unknown scenario, a knob the scenario cannot take).
    pub fn scenario(&self) -> Result<Scenario, String> {
        let id = if self.scenario.is_empty() { DEFAULT_SCENARIO } else { &self.scenario };
        let base = Scenario::by_id(id).ok_or_else(|| format!("there is no scenario {id:?}"))?;
        let mut sc = self.knobs.apply(&base)?;
        if let Some(seed) = self.seed {
            sc.seed = seed;
        }
        Ok(sc)
    }
}

/// What the page opens with.
pub const DEFAULT_SCENARIO: &str = "scale-0-350-0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_round_trips() {
        let s = Shared {
            scenario: "dual-stack".into(),
            seed: Some(9),
            t: 12_500,
            knobs: Knobs {
                replicas: Some(40),
                max_per_slice: Some(7),
                zones: Some(2),
                nodes_per_zone: Some(3),
                dual_stack: Some(true),
                traffic_distribution: Some("PreferSameZone".into()),
                topology_auto: Some(false),
                internal_policy: Some("Local".into()),
                external_policy: Some("Cluster".into()),
                session_affinity: Some(true),
                proxy_mode: Some("ipvs".into()),
                rate: Some(12.5),
            },
            actions: vec![
                TimedAction { at: Millis(3000), action: Action::KillPod { pod: "default/web-a b&c".into() } },
                TimedAction { at: Millis(4000), action: Action::EditService { service: "web".into(), patch: json!({"spec":{"x":"é=&?"}}) } },
            ],
            embed: true,
        };
        let q = s.to_query();
        assert!(!q.contains(' ') && !q.contains('{'), "{q}");
        assert_eq!(Shared::parse(&q).unwrap(), s);
        assert_eq!(Shared::parse(&format!("?{q}")).unwrap(), s);
    }

    #[test]
    fn hostile_links_are_errors_not_panics() {
        for q in [
            "t=abc",
            "t=99999999999999999999",
            "t=86400001",
            "seed=-1",
            "max=0",
            "max=1001",
            "zones=0",
            "dual=maybe",
            "td=Nearby",
            "itp=Global",
            "mode=userspace",
            "rate=NaN",
            "rate=1e9",
            "a=%7B",
            "a=[[1,{\"type\":\"explode\"}]]",
            "s=../../etc/passwd",
            "s=%FF",
            "t=%",
            "t=%G1",
        ] {
            assert!(Shared::parse(q).is_err(), "{q} should be refused");
        }
        let long = format!("s={}", "a".repeat(MAX_QUERY + 1));
        assert!(Shared::parse(&long).unwrap_err().contains("too long"));
        let many: Vec<String> = (0..MAX_ACTIONS + 1).map(|i| format!("[{i},{{\"type\":\"rollOut\",\"workload\":\"web\"}}]")).collect();
        let q = format!("a={}", encode_component(&format!("[{}]", many.join(","))));
        assert!(Shared::parse(&q).unwrap_err().contains("at most"));
        // Unknown keys are ignored; an unknown scenario is an error when it is built.
        let s = Shared::parse("utm_source=x&s=nope").unwrap();
        assert!(s.scenario().unwrap_err().contains("no scenario"));
    }

    #[test]
    fn knobs_change_the_world_the_run_starts_from() {
        let s = Shared::parse("s=scale-0-350-0&zones=2&npz=4&dual=1&mode=nftables&max=20&td=PreferSameZone&topo=1&itp=Local&aff=1&rate=5").unwrap();
        let sc = s.scenario().unwrap();
        assert_eq!(sc.world.zones, vec!["zone-a", "zone-b"]);
        assert_eq!(sc.world.nodes_per_zone, Some(4));
        assert!(sc.world.dual_stack);
        assert_eq!(sc.config.max_endpoints_per_slice, Some(20));
        assert_eq!(sc.config.proxy_mode.as_deref(), Some("nftables"));
        assert!(sc.traffic.iter().all(|f| f.rate == 5.0));
        let spec = &sc.world.services[0]["spec"];
        assert_eq!(spec["trafficDistribution"], "PreferSameZone");
        assert_eq!(spec["internalTrafficPolicy"], "Local");
        assert_eq!(spec["sessionAffinity"], "ClientIP");
        assert_eq!(spec["ipFamilies"], json!(["IPv4", "IPv6"]));
        assert_eq!(sc.world.services[0]["metadata"]["annotations"]["service.kubernetes.io/topology-mode"], "Auto");
        // The run really has them: 8 nodes, IPv6 slices, slices of at most 20.
        let mut sim = super::super::Sim::new(&sc).unwrap();
        sim.run_until(60_000);
        assert_eq!(sim.api.nodes().count(), 8);
        assert!(sim.api.slices().any(|s| s.address_type == "IPv6"));
        assert!(sim.api.slices().all(|s| crate::controller::plan::eps(s).len() <= 20));
        assert!(sim.api.slices().any(|s| !crate::controller::plan::eps(s).is_empty()));
        // An empty trafficDistribution removes the field.
        let sc = Shared::parse("s=prefer-same-zone&td=").unwrap().scenario().unwrap();
        assert!(sc.world.services[0]["spec"].get("trafficDistribution").is_none());
    }
}
