//! Facts about Pods that every controller reads the same way (§3.2–§3.4 of the controller spec):
//! which pods count, readiness, ports by name, and the hostname rule. Shared by the EndpointSlice,
//! Endpoints and mirroring controllers and by the simulation.

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The Pod has finished for good (phase Succeeded or Failed).
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded") | Some("Failed"))
}

/// The Pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        .unwrap_or(false)
}

/// The Pod has a deletion timestamp.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// `status.podIP` and `status.podIPs` are both empty.
pub fn has_no_ip(pod: &Pod) -> bool {
    match pod.status.as_ref() {
        None => true,
        Some(s) => {
            s.pod_ip.as_deref().unwrap_or("").is_empty() && s.pod_ips.as_ref().is_none_or(|v| v.is_empty())
        }
    }
}

/// §2: whether a pod update changed what the controllers read of it (hostname or subdomain,
/// deletion timestamp, the Ready condition, the pod IP list). Labels are judged apart.
pub fn endpoints_fields_changed(old: &Pod, new: &Pod) -> bool {
    fn host(p: &Pod) -> Option<(Option<&str>, Option<&str>)> {
        p.spec.as_ref().map(|s| (s.hostname.as_deref(), s.subdomain.as_deref()))
    }
    host(old) != host(new)
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || is_ready(old) != is_ready(new)
        || !pod_ips(old).eq(pod_ips(new))
}

/// The IPs of `status.podIPs`, in order (what the EndpointSlice controller reads).
pub fn pod_ips(pod: &Pod) -> impl Iterator<Item = &str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
        .map(|p| p.ip.as_str())
}

/// `ShouldPodBeInEndpoints`: not terminal, has an IP, and (unless `include_terminating`) not terminating.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if is_terminal(pod) || has_no_ip(pod) {
        return false;
    }
    include_terminating || !is_terminating(pod)
}

/// The protocol of a Service port, with the API server's default.
pub fn service_port_protocol(sp: &ServicePort) -> &str {
    sp.protocol.as_deref().filter(|p| !p.is_empty()).unwrap_or("TCP")
}

/// Resolve a Service port's targetPort on a Pod (`FindPort`). A number is used as is (an unset
/// targetPort defaults to the Service port, as the API server does). A name is looked up by name *and
/// protocol* in the regular containers, then in sidecars (init containers with restartPolicy Always).
/// `None` when the name cannot be resolved on this pod.
/// No service port names its target port: then `find_port` gives every pod the same numbers.
pub fn no_named_target_port(ports: &[ServicePort]) -> bool {
    ports.iter().all(|sp| !matches!(sp.target_port, Some(IntOrString::String(_))))
}

pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let proto = service_port_protocol(sp);
            let spec = pod.spec.as_ref()?;
            let matches = |c_ports: Option<&Vec<k8s_openapi::api::core::v1::ContainerPort>>| {
                c_ports.into_iter().flatten().find_map(|p| {
                    let p_proto = p.protocol.as_deref().filter(|x| !x.is_empty()).unwrap_or("TCP");
                    (p.name.as_deref() == Some(name.as_str()) && p_proto == proto).then_some(p.container_port)
                })
            };
            for c in &spec.containers {
                if let Some(n) = matches(c.ports.as_ref()) {
                    return Some(n);
                }
            }
            for c in spec.init_containers.iter().flatten() {
                if c.restart_policy.as_deref() != Some("Always") {
                    continue;
                }
                if let Some(n) = matches(c.ports.as_ref()) {
                    return Some(n);
                }
            }
            None
        }
    }
}

/// The hostname rule: `spec.hostname` is published only when it is set, `spec.subdomain` equals the
/// Service name, and the Pod is in the Service's namespace.
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let spec = match pod.spec.as_ref() {
        Some(s) => s,
        None => return false,
    };
    !spec.hostname.as_deref().unwrap_or("").is_empty()
        && spec.subdomain.as_deref().unwrap_or("") == svc.metadata.name.as_deref().unwrap_or("")
        && pod.metadata.namespace.as_deref().unwrap_or("") == svc.metadata.namespace.as_deref().unwrap_or("")
}

/// `spec.nodeName`, or "" when unset.
pub fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

/// The ClusterIP is set and is not `None` (`IsServiceIPSet`).
pub fn is_service_ip_set(svc: &Service) -> bool {
    let ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
    !ip.is_empty() && ip != "None"
}

/// The Service is headless in the API's sense (ClusterIP `None`).
pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// `spec.publishNotReadyAddresses`.
pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false)
}

/// Whether a label selector (a plain map, as Services use) matches a label set. An empty selector
/// matches nothing here (Services with an empty selector select no pods in practice via the controller's
/// `selector == nil` rule; callers decide what nil means).
pub fn selector_matches(
    selector: &std::collections::BTreeMap<String, String>,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let empty = std::collections::BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, PodStatus};

    #[test]
    fn a_pod_update_counts_only_when_what_the_controllers_read_changed() {
        use k8s_openapi::api::core::v1::{PodCondition, PodIP};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let base = Pod {
            spec: Some(PodSpec { node_name: Some("n1".into()), ..Default::default() }),
            status: Some(PodStatus {
                pod_ips: Some(vec![PodIP { ip: "10.0.0.1".into() }]),
                conditions: Some(vec![PodCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let changed = |f: &dyn Fn(&mut Pod)| {
            let mut p = base.clone();
            f(&mut p);
            endpoints_fields_changed(&base, &p)
        };
        // Not read: annotations, node, phase, other conditions.
        assert!(!changed(&|p| {
            p.metadata.annotations = Some([("a".to_string(), "b".to_string())].into());
            p.spec.as_mut().unwrap().node_name = Some("n2".into());
            p.status.as_mut().unwrap().phase = Some("Running".into());
        }));
        // Read: hostname, subdomain, deletion, readiness, IPs (their order too).
        assert!(changed(&|p| p.spec.as_mut().unwrap().hostname = Some("h".into())));
        assert!(changed(&|p| p.spec.as_mut().unwrap().subdomain = Some("s".into())));
        assert!(changed(&|p| p.metadata.deletion_timestamp = Some(Time(Default::default()))));
        assert!(changed(&|p| p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into()));
        assert!(changed(&|p| p.status.as_mut().unwrap().pod_ips.as_mut().unwrap().push(PodIP { ip: "fd00::1".into() })));
        assert!(changed(&|p| p.status.as_mut().unwrap().pod_ips = None));
    }

    #[test]
    fn only_a_named_target_port_makes_ports_differ_by_pod() {
        let sp = |t: Option<IntOrString>| ServicePort { port: 80, target_port: t, ..Default::default() };
        assert!(no_named_target_port(&[]));
        assert!(no_named_target_port(&[sp(None), sp(Some(IntOrString::Int(8080)))]));
        assert!(!no_named_target_port(&[sp(None), sp(Some(IntOrString::String("http".into())))]));
    }

    fn pod_with_ports(containers: Vec<(&str, i32, &str)>, sidecar: Option<(&str, i32)>) -> Pod {
        let mut spec = PodSpec {
            containers: vec![Container {
                name: "main".into(),
                ports: Some(
                    containers
                        .into_iter()
                        .map(|(n, p, proto)| ContainerPort {
                            name: Some(n.into()),
                            container_port: p,
                            protocol: Some(proto.into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }],
            ..Default::default()
        };
        if let Some((n, p)) = sidecar {
            spec.init_containers = Some(vec![Container {
                name: "side".into(),
                restart_policy: Some("Always".into()),
                ports: Some(vec![ContainerPort { name: Some(n.into()), container_port: p, ..Default::default() }]),
                ..Default::default()
            }]);
        }
        Pod { spec: Some(spec), status: Some(PodStatus::default()), ..Default::default() }
    }

    fn sp(target: IntOrString, proto: &str) -> ServicePort {
        ServicePort { port: 80, target_port: Some(target), protocol: Some(proto.into()), ..Default::default() }
    }

    #[test]
    fn named_ports_resolve_by_name_and_protocol() {
        let pod = pod_with_ports(vec![("http", 8080, "TCP"), ("dns", 53, "UDP")], None);
        assert_eq!(find_port(&pod, &sp(IntOrString::String("http".into()), "TCP")), Some(8080));
        assert_eq!(find_port(&pod, &sp(IntOrString::String("http".into()), "UDP")), None);
        assert_eq!(find_port(&pod, &sp(IntOrString::String("dns".into()), "UDP")), Some(53));
        assert_eq!(find_port(&pod, &sp(IntOrString::Int(9000), "TCP")), Some(9000));
        let unset = ServicePort { port: 81, ..Default::default() };
        assert_eq!(find_port(&pod, &unset), Some(81));
    }

    #[test]
    fn sidecar_ports_count_but_regular_containers_win() {
        let pod = pod_with_ports(vec![("http", 8080, "TCP")], Some(("http", 9090)));
        assert_eq!(find_port(&pod, &sp(IntOrString::String("http".into()), "TCP")), Some(8080));
        let pod = pod_with_ports(vec![], Some(("metrics", 9090)));
        assert_eq!(find_port(&pod, &sp(IntOrString::String("metrics".into()), "TCP")), Some(9090));
    }

    #[test]
    fn terminal_and_ipless_pods_are_left_out() {
        let mut pod = Pod::default();
        assert!(!should_be_in_endpoints(&pod, true));
        pod.status = Some(PodStatus { pod_ip: Some("10.0.0.1".into()), ..Default::default() });
        assert!(should_be_in_endpoints(&pod, true));
        pod.status.as_mut().unwrap().phase = Some("Failed".into());
        assert!(!should_be_in_endpoints(&pod, true));
    }
}
