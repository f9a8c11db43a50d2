//! Typed checks: each rendered object must deserialize into its k8s-openapi struct (or, for
//! Traefik's Middleware, a local one) with no field left over. A misspelt field in a template
//! is caught here, named by its path, before anything is printed or sent to a cluster.

use k8s_openapi::api::{apps, autoscaling, batch, core, networking, policy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Kinds difyrender knows, in the order objects of one stage are applied.
const KINDS: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "ServiceAccount"),
    ("v1", "Secret"),
    ("external-secrets.io/v1", "ExternalSecret"),
    ("v1", "ConfigMap"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("traefik.io/v1alpha1", "Middleware"),
    ("networking.k8s.io/v1", "Ingress"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
];

/// Position of a kind in [`KINDS`], for ordering within a stage.
pub fn kind_rank(kind: &str) -> usize {
    KINDS
        .iter()
        .position(|(_, k)| *k == kind)
        .unwrap_or(KINDS.len())
}

/// Problems with one object: unknown kinds, wrong types, unknown fields.
pub fn check(api_version: &str, kind: &str, body: &Value) -> Vec<String> {
    use core::v1 as c;
    match (api_version, kind) {
        ("v1", "Namespace") => strict::<c::Namespace>(body),
        ("v1", "Secret") => strict::<c::Secret>(body),
        ("v1", "ConfigMap") => strict::<c::ConfigMap>(body),
        ("v1", "Service") => strict::<c::Service>(body),
        ("v1", "ServiceAccount") => strict::<c::ServiceAccount>(body),
        ("v1", "PersistentVolumeClaim") => strict::<c::PersistentVolumeClaim>(body),
        ("apps/v1", "Deployment") => strict::<apps::v1::Deployment>(body),
        ("apps/v1", "StatefulSet") => strict::<apps::v1::StatefulSet>(body),
        ("batch/v1", "Job") => strict::<batch::v1::Job>(body),
        ("networking.k8s.io/v1", "Ingress") => strict::<networking::v1::Ingress>(body),
        ("networking.k8s.io/v1", "NetworkPolicy") => strict::<networking::v1::NetworkPolicy>(body),
        ("policy/v1", "PodDisruptionBudget") => strict::<policy::v1::PodDisruptionBudget>(body),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            strict::<autoscaling::v2::HorizontalPodAutoscaler>(body)
        }
        ("traefik.io/v1alpha1", "Middleware") => strict::<Middleware>(body),
        ("gateway.networking.k8s.io/v1", "HTTPRoute") => strict::<HttpRoute>(body),
        ("monitoring.coreos.com/v1", "PodMonitor") => strict::<PodMonitor>(body),
        ("external-secrets.io/v1", "ExternalSecret") => strict::<ExternalSecret>(body),
        _ => {
            let known: Vec<String> = KINDS.iter().map(|(a, k)| format!("{a} {k}")).collect();
            vec![format!(
                "{api_version} {kind} is not a kind difyrender can check; known: {}",
                known.join(", ")
            )]
        }
    }
}

/// Deserializes `body` as `T`, reporting a type error or every unknown field by path.
fn strict<T: DeserializeOwned>(body: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path| unknown.push(field_path(&path.to_string()));
    let result: Result<T, _> = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        body.clone(),
        &mut on_unknown,
    ));
    let mut problems = Vec::new();
    if let Err(e) = result {
        problems.push(format!(
            "field {}: {}",
            field_path(&e.path().to_string()),
            e.inner()
        ));
    }
    problems.extend(unknown.into_iter().map(|p| format!("unknown field {p}")));
    problems
}

/// `spec.?.template.containers.0.x` → `spec.template.containers[0].x`.
fn field_path(raw: &str) -> String {
    let mut out = String::new();
    for seg in raw.split('.').filter(|s| !s.is_empty() && *s != "?") {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// Traefik's `Middleware` (`traefik.io/v1alpha1`), limited to what the chart uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Read only to check the shape.
struct Middleware {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: MiddlewareSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct MiddlewareSpec {
    strip_prefix: Option<StripPrefix>,
    add_prefix: Option<AddPrefix>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct AddPrefix {
    prefix: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct StripPrefix {
    prefixes: Vec<String>,
    force_slash: Option<bool>,
}

/// The External Secrets Operator's `ExternalSecret` (`external-secrets.io/v1`), limited to what
/// the chart uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ExternalSecret {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: ExternalSecretSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ExternalSecretSpec {
    refresh_interval: String,
    secret_store_ref: StoreRef,
    target: SecretTarget,
    data_from: Vec<DataFrom>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct StoreRef {
    name: String,
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SecretTarget {
    name: String,
    creation_policy: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct DataFrom {
    extract: Extract,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Extract {
    key: String,
}

/// The Prometheus operator's `PodMonitor` (`monitoring.coreos.com/v1`), limited to what the
/// chart uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PodMonitor {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: PodMonitorSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PodMonitorSpec {
    selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PodMetricsEndpoint {
    port: String,
    path: String,
    interval: String,
}

/// Gateway API's `HTTPRoute` (`gateway.networking.k8s.io/v1`), limited to what the chart uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HttpRoute {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: HttpRouteSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HttpRouteSpec {
    parent_refs: Vec<ParentRef>,
    hostnames: Option<Vec<String>>,
    rules: Vec<HttpRouteRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ParentRef {
    group: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
    section_name: Option<String>,
    port: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HttpRouteRule {
    matches: Vec<HttpRouteMatch>,
    filters: Option<Vec<HttpRouteFilter>>,
    backend_refs: Vec<BackendRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HttpRouteMatch {
    path: TypedValue,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedValue {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HttpRouteFilter {
    #[serde(rename = "type")]
    kind: String,
    url_rewrite: Option<UrlRewrite>,
    request_header_modifier: Option<HeaderModifier>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct UrlRewrite {
    hostname: Option<String>,
    path: Option<PathModifier>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PathModifier {
    #[serde(rename = "type")]
    kind: String,
    replace_prefix_match: Option<String>,
    replace_full_path: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HeaderModifier {
    set: Option<Vec<HeaderValue>>,
    add: Option<Vec<HeaderValue>>,
    remove: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HeaderValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct BackendRef {
    group: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
    port: i32,
    weight: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_named_by_path() {
        let body = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagePullPolice": "Always"}]}}}
        });
        assert_eq!(
            check("apps/v1", "Deployment", &body),
            vec!["unknown field spec.template.spec.containers[0].imagePullPolice"]
        );
    }

    #[test]
    fn wrong_types_are_named_by_path() {
        let body = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": "80"}]}});
        let problems = check("v1", "Service", &body);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("field spec.ports[0].port: invalid type: string \"80\""),
            "{problems:?}"
        );
    }

    #[test]
    fn middleware_is_checked_too() {
        let body = json!({"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {"name": "x"}, "spec": {"stripPrefixes": {}}});
        assert_eq!(
            check("traefik.io/v1alpha1", "Middleware", &body),
            vec!["unknown field spec.stripPrefixes"]
        );
    }

    #[test]
    fn unknown_kinds_are_refused() {
        assert!(
            check("v1", "Pod", &json!({}))[0]
                .starts_with("v1 Pod is not a kind difyrender can check")
        );
    }
}
