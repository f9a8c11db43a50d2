//! Resource arithmetic: quantities, what a pod and the release ask for.

use super::storage::claims;
use crate::cluster::kinds;
use crate::cluster::podsecurity;
use crate::manifest::Resource;
use crate::release::RenderedRelease;
use serde_json::Value;

/// A Kubernetes quantity in base units (cores, bytes, counts): the manifest checks' parser.
pub fn quantity(q: &str) -> Option<f64> {
    crate::manifest::validate::parse_quantity(q.trim())
}

/// A quantity as a values file may give it: a string, or a plain number (`--set cpu=2`).
pub(super) fn value_quantity(v: &Value) -> Option<f64> {
    v.as_str().and_then(quantity).or_else(|| v.as_f64())
}

pub(super) fn show(resource: &str, v: f64) -> String {
    if resource.contains("memory") || resource.contains("storage") {
        format!("{:.2}Gi", v / 1024f64.powi(3))
    } else if resource.contains("cpu") {
        format!("{v:.2} CPU")
    } else {
        format!("{v}")
    }
}

/// Resources a pod template asks for: the sum over containers, or the largest init container
/// if that is more, as the scheduler and quota count them.
pub(super) fn pod_amount(spec: &Value, what: &str) -> f64 {
    let of = |c: &Value| {
        c.pointer(&format!("/resources/{what}"))
            .and_then(value_quantity)
            .unwrap_or(0.0)
    };
    let list = |k: &str| {
        spec.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let sum: f64 = list("containers").iter().map(of).sum();
    let init = list("initContainers").iter().map(of).fold(0.0, f64::max);
    sum.max(init)
}

/// The pods a workload runs at least: its replicas (1 when left out), or, when a
/// HorizontalPodAutoscaler of the render scales it, the autoscaler's minReplicas if that is
/// more (the Deployment then leaves replicas out and the autoscaler raises it to the minimum).
pub(super) fn replicas(rendered: &RenderedRelease, r: &Resource) -> f64 {
    let own = r
        .body
        .pointer("/spec/replicas")
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let autoscaled = rendered
        .manifest
        .resources
        .iter()
        .filter(|h| h.kind == "HorizontalPodAutoscaler" && h.namespace == r.namespace)
        .filter(|h| {
            let target = &h.body["spec"]["scaleTargetRef"];
            target["kind"] == r.kind.as_str() && target["name"] == r.name.as_str()
        })
        // minReplicas defaults to 1.
        .map(|h| {
            h.body
                .pointer("/spec/minReplicas")
                .and_then(Value::as_f64)
                .unwrap_or(1.0)
        })
        .fold(0.0, f64::max);
    own.max(autoscaled)
}

/// What the running release (Deployments and StatefulSets; Jobs complete) takes of a quota key.
pub(super) fn render_amount(rendered: &RenderedRelease, key: &str) -> Option<f64> {
    let steady = || {
        rendered
            .manifest
            .resources
            .iter()
            .filter(|r| matches!(r.kind.as_str(), "Deployment" | "StatefulSet"))
    };
    let pods = |what: &str| -> f64 {
        steady()
            .filter_map(|r| {
                podsecurity::pod_spec(&r.body).map(|s| replicas(rendered, r) * pod_amount(s, what))
            })
            .sum()
    };
    let count = |kind: &str| {
        rendered
            .manifest
            .resources
            .iter()
            .filter(|r| r.kind == kind)
            .count() as f64
    };
    let claims = claims(rendered);
    let claim_count = claims.len() as f64;
    Some(match key {
        "requests.cpu" | "cpu" => pods("requests/cpu"),
        "requests.memory" | "memory" => pods("requests/memory"),
        "limits.cpu" => pods("limits/cpu"),
        "limits.memory" => pods("limits/memory"),
        "pods" => steady().map(|r| replicas(rendered, r)).sum(),
        "persistentvolumeclaims" => claim_count,
        "requests.storage" => claims.iter().filter_map(|c| quantity(&c.3)).sum(),
        "services" => count("Service"),
        "secrets" => count("Secret"),
        "configmaps" => count("ConfigMap") + 1.0,
        "services.loadbalancers" | "services.nodeports" => {
            let t = if key.ends_with("loadbalancers") {
                "LoadBalancer"
            } else {
                "NodePort"
            };
            rendered
                .manifest
                .resources
                .iter()
                .filter(|r| {
                    r.kind == "Service"
                        && r.body.pointer("/spec/type").and_then(Value::as_str) == Some(t)
                })
                .count() as f64
        }
        k if k.starts_with("count/") => {
            let (resource, group) = k["count/".len()..]
                .split_once('.')
                .unwrap_or((&k["count/".len()..], ""));
            rendered
                .manifest
                .resources
                .iter()
                .filter(|r| {
                    let (ar, _) = kinds::api_resource(r);
                    ar.plural == resource && ar.group == group
                })
                .count() as f64
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity("250m"), Some(0.25));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1G"), Some(1e9));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("1.5Gi"), Some(1.5 * 1024f64.powi(3)));
        assert_eq!(quantity("12x"), None);
    }

    #[test]
    fn pod_amounts_take_the_larger_of_containers_and_init() {
        let spec = serde_json::json!({
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
            "containers": [{"resources": {"requests": {"cpu": "250m"}}}, {"resources": {"requests": {"cpu": "500m"}}}]
        });
        assert_eq!(pod_amount(&spec, "requests/cpu"), 2.0);
        let spec = serde_json::json!({"containers": [{"resources": {"requests": {"cpu": "250m"}}}, {"resources": {"requests": {"cpu": "500m"}}}]});
        assert_eq!(pod_amount(&spec, "requests/cpu"), 0.75);
    }
}
