//! `slicelab proxy ...`: kube-proxy on one node.
//!
//! - `slicelab proxy categorize CASE.json`: an oracle categorize case (its `inputs`), printed as
//!   `{"clusterEndpoints", "localEndpoints", "allReachableEndpoints", "hasAnyEndpoints"}`.
//! - `slicelab proxy rules --mode iptables|nftables|ipvs --node NAME [options] FILE...`: the rules
//!   kube-proxy on that node writes for the Services and EndpointSlices in the files.

use slicelab_core::input::parse_objects;
use slicelab_core::proxy::iptables::View;
use slicelab_core::proxy::ipvs::Scheduler;
use slicelab_core::proxy::node::{KubeProxy, Mode, ProxyConfig};
use slicelab_core::proxy::oracle::CategorizeCase;
use slicelab_core::proxy::{Cidr, LABEL_ZONE};
use slicelab_core::IpFamily;

const USAGE: &str = "usage:
  slicelab proxy categorize CASE.json
  slicelab proxy rules --mode iptables|nftables|ipvs --node NAME [--zone ZONE] [--node-ip IP]...
                       [--cluster-cidr CIDR] [--masquerade-all] [--scheduler rr|wrr|lc|...]
                       [--family ipv4|ipv6] [--iptables-save] FILE...";

pub fn run(args: &[String]) -> Result<String, String> {
    match args.first().map(String::as_str) {
        Some("categorize") => categorize(&args[1..]),
        Some("rules") => rules(&args[1..]),
        Some("-h") | Some("--help") => Ok(format!("{USAGE}\n")),
        Some(other) => Err(format!("proxy: unknown subcommand {other:?}; {}", USAGE.split_whitespace().collect::<Vec<_>>().join(" "))),
        None => Err(format!("proxy: missing subcommand; {}", USAGE.split_whitespace().collect::<Vec<_>>().join(" "))),
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn categorize(args: &[String]) -> Result<String, String> {
    let [path] = args else {
        return Err("proxy categorize: expected exactly one CASE.json".into());
    };
    let case = CategorizeCase::parse(&read(path)?).map_err(|e| format!("{path}: {e}"))?;
    let out = case.output(&case.run());
    serde_json::to_string_pretty(&out).map(|s| s + "\n").map_err(|e| e.to_string())
}

fn rules(args: &[String]) -> Result<String, String> {
    let mut mode = None;
    let mut node = None;
    let mut zone = None;
    let mut node_ips = Vec::new();
    let mut cidr = None;
    let mut masquerade_all = false;
    let mut scheduler = Scheduler::Rr;
    let mut family = IpFamily::V4;
    let mut view = View::KubeProxy;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("proxy rules: {flag} needs a value"));
        match a.as_str() {
            "--mode" => mode = Some(Mode::parse(&value("--mode")?).map_err(|e| format!("proxy rules: {e}"))?),
            "--node" => node = Some(value("--node")?),
            "--zone" => zone = Some(value("--zone")?),
            "--node-ip" => {
                let v = value("--node-ip")?;
                node_ips.push(slicelab_core::ip::parse_ip_sloppy(&v).ok_or_else(|| format!("proxy rules: {v:?} is not an IP"))?);
            }
            "--cluster-cidr" => cidr = Some(Cidr::parse(&value("--cluster-cidr")?).map_err(|e| format!("proxy rules: {e}"))?),
            "--masquerade-all" => masquerade_all = true,
            "--scheduler" => scheduler = Scheduler::parse(&value("--scheduler")?).map_err(|e| format!("proxy rules: {e}"))?,
            "--family" => {
                family = match value("--family")?.to_ascii_lowercase().as_str() {
                    "ipv4" | "4" => IpFamily::V4,
                    "ipv6" | "6" => IpFamily::V6,
                    other => return Err(format!("proxy rules: unknown family {other:?} (ipv4 or ipv6)")),
                }
            }
            "--iptables-save" => view = View::IptablesSave,
            s if s.starts_with("--") => return Err(format!("proxy rules: unknown option {s}")),
            _ => files.push(a.clone()),
        }
    }
    let mode = mode.ok_or("proxy rules: --mode iptables|nftables|ipvs is required")?;
    let node = node.ok_or("proxy rules: --node NAME is required")?;
    if files.is_empty() {
        return Err("proxy rules: no input FILE given".into());
    }
    let mut services = Vec::new();
    let mut slices = Vec::new();
    let mut nodes = Vec::new();
    for f in &files {
        let objs = parse_objects(&read(f)?).map_err(|e| format!("{f}: {e}"))?;
        services.extend(objs.services);
        slices.extend(objs.endpoint_slices);
        nodes.extend(objs.nodes);
    }
    // The node's own object, if given: its zone label and addresses.
    if let Some(n) = nodes.iter().find(|n| n.metadata.name.as_deref() == Some(node.as_str())) {
        if zone.is_none() {
            zone = n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_ZONE)).cloned();
        }
        if node_ips.is_empty() {
            for a in n.status.iter().flat_map(|s| s.addresses.iter().flatten()) {
                if a.type_ == "InternalIP" || a.type_ == "ExternalIP" {
                    if let Some(ip) = slicelab_core::ip::parse_ip_sloppy(&a.address) {
                        node_ips.push(ip);
                    }
                }
            }
        }
    }
    let mut cfg = ProxyConfig::new(&node, family);
    cfg.mode = mode;
    cfg.scheduler = scheduler;
    cfg.node_zone = zone;
    cfg.net.node_ips = node_ips;
    cfg.net.local_detector = cidr;
    cfg.net.masquerade_all = masquerade_all;
    let mut kp = KubeProxy::new(cfg, 1);
    for s in &services {
        kp.on_service(s);
    }
    for s in &slices {
        kp.on_slice(s);
    }
    kp.services_listed();
    kp.slices_listed();
    kp.sync(0);
    let mut out = String::new();
    let fam = match family {
        IpFamily::V4 => "IPv4",
        IpFamily::V6 => "IPv6",
    };
    out.push_str(&format!("# kube-proxy on node {node} ({fam}, {} mode)\n", match mode {
        Mode::Iptables => "iptables",
        Mode::Nftables => "nftables",
        Mode::Ipvs => "ipvs",
    }));
    for s in &services {
        let (ns, name) = (s.metadata.namespace.as_deref().unwrap_or("default"), s.metadata.name.as_deref().unwrap_or(""));
        if let Some(why) = kp.ignored(ns, name) {
            out.push_str(&format!("# ignored Service {ns}/{name}: {why}\n"));
        }
    }
    out.push_str(&kp.render_rules(view));
    Ok(out)
}
