//! API resources of the kinds difyrender renders. The set is closed (the manifest check refuses
//! any other kind), so no discovery round trips are needed before applying.

use crate::manifest::Resource;
use kube::core::{ApiResource, GroupVersionKind};

/// Plural resource name and scope of a kind.
fn plural_and_scope(kind: &str) -> Option<(&'static str, bool)> {
    Some(match kind {
        "Namespace" => ("namespaces", false),
        "Secret" => ("secrets", true),
        "ConfigMap" => ("configmaps", true),
        "Service" => ("services", true),
        "ServiceAccount" => ("serviceaccounts", true),
        "PersistentVolumeClaim" => ("persistentvolumeclaims", true),
        "Deployment" => ("deployments", true),
        "StatefulSet" => ("statefulsets", true),
        "Job" => ("jobs", true),
        "Ingress" => ("ingresses", true),
        "NetworkPolicy" => ("networkpolicies", true),
        "PodDisruptionBudget" => ("poddisruptionbudgets", true),
        "HorizontalPodAutoscaler" => ("horizontalpodautoscalers", true),
        "Middleware" => ("middlewares", true),
        "HTTPRoute" => ("httproutes", true),
        "PodMonitor" => ("podmonitors", true),
        "ExternalSecret" => ("externalsecrets", true),
        _ => return None,
    })
}

/// The API resource for a kind and apiVersion, and whether it is namespaced.
pub fn api_resource_of(api_version: &str, kind: &str) -> (ApiResource, bool) {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (plural, namespaced) =
        plural_and_scope(kind).expect("the manifest check admits only known kinds");
    (
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
        namespaced,
    )
}

/// The API resource of a rendered object.
pub fn api_resource(r: &Resource) -> (ApiResource, bool) {
    api_resource_of(&r.api_version, &r.kind)
}
