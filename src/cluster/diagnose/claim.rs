//! A volume claim that is not bound: its StorageClass, whether it exists, and which ones do.

use super::super::ResourceManager;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

/// The first claim a pod mounts that is not Bound: `(PersistentVolumeClaim/name, reason, advice)`.
pub(super) async fn unbound_claim(
    mgr: &ResourceManager,
    namespace: &str,
    pod: &Value,
) -> Option<(String, String, String)> {
    let claims: Vec<&str> = pod
        .pointer("/spec/volumes")?
        .as_array()?
        .iter()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName")?.as_str())
        .collect();
    for claim in claims {
        let live = mgr
            .get_object("v1", "PersistentVolumeClaim", Some(namespace), claim)
            .await
            .ok()
            .flatten()?;
        if live.pointer("/status/phase").and_then(Value::as_str) != Some("Bound") {
            let (reason, advice) = claim_problem(mgr, &live).await;
            return Some((claim.to_owned(), reason, advice));
        }
    }
    None
}

/// A claim that is not bound: its StorageClass, whether it exists, and which ones do.
pub(super) async fn claim_problem(mgr: &ResourceManager, live: &Value) -> (String, String) {
    let phase = live
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    let classes: Api<StorageClass> = Api::all(mgr.client().clone());
    let all = classes.list(&ListParams::default()).await;
    let names: Vec<String> = all
        .as_ref()
        .map(|l| {
            l.items
                .iter()
                .filter_map(|c| c.metadata.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let listed = if names.is_empty() {
        "none is visible".to_owned()
    } else {
        format!("the cluster has {}", names.join(", "))
    };
    match live
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
    {
        Some(class) if all.is_ok() && !names.iter().any(|n| n == class) => (
            format!("claim is {phase}, not Bound: its StorageClass {class:?} does not exist"),
            format!(
                "set storage.storageClassName to an existing StorageClass ({listed}; kubectl get storageclass)"
            ),
        ),
        Some(class) => {
            let provisioner = all
                .ok()
                .and_then(|l| {
                    l.items
                        .into_iter()
                        .find(|c| c.metadata.name.as_deref() == Some(class))
                })
                .map(|c| c.provisioner)
                .unwrap_or_default();
            (
                format!(
                    "claim is {phase}, not Bound: StorageClass {class:?} (provisioner {provisioner}) has not provided a volume"
                ),
                format!(
                    "check that the provisioner {provisioner} runs and can create volumes of this size and access mode; \
                     or set storage.storageClassName to another class ({listed})"
                ),
            )
        }
        None => (
            format!(
                "claim is {phase}, not Bound: it names no StorageClass and none is the default"
            ),
            format!("set storage.storageClassName ({listed})"),
        ),
    }
}
