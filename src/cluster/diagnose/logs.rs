//! Containers' logs, bounded before they are read and passed through the diagnostics rule
//! after the Secrets the release and the pod read are registered with it.

use super::super::{Error, ResourceManager};
use super::LOG_BYTES;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};
use serde_json::Value;

/// The last lines of a container's log, sanitized; `Err` says why it could not be read.
pub async fn read_log(
    mgr: &ResourceManager,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
    lines: i64,
) -> Result<Vec<String>, String> {
    let api: Api<Pod> = Api::namespaced(mgr.client().clone(), namespace);
    let params = LogParams {
        container: Some(container.to_owned()),
        previous,
        tail_lines: Some(lines),
        limit_bytes: Some(LOG_BYTES),
        ..Default::default()
    };
    match api.logs(pod, &params).await {
        Ok(text) => Ok(crate::diag::sanitize(&text)
            .lines()
            .map(str::to_owned)
            .collect()),
        Err(kube::Error::Api(s)) => Err(crate::diag::sanitize(
            s.message.lines().next().unwrap_or_default(),
        )),
        Err(e) => Err(crate::diag::sanitize(&e.to_string())),
    }
}

/// The Secrets a pod reads: `secretKeyRef`s, `envFrom` and Secret volumes.
pub fn secrets_read_by(pod: &Value) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    let spec = &pod["spec"];
    for kind in ["containers", "initContainers"] {
        for c in spec[kind].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                if let Some(n) = e
                    .pointer("/valueFrom/secretKeyRef/name")
                    .and_then(Value::as_str)
                {
                    names.insert(n.to_owned());
                }
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                if let Some(n) = e.pointer("/secretRef/name").and_then(Value::as_str) {
                    names.insert(n.to_owned());
                }
            }
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if let Some(n) = v.pointer("/secret/secretName").and_then(Value::as_str) {
            names.insert(n.to_owned());
        }
    }
    names.into_iter().collect()
}

/// Registers the values of every Secret an inventory lists (the release's own Secrets).
pub async fn register_inventory_secrets(
    mgr: &ResourceManager,
    inv: &crate::cluster::inventory::Inventory,
) {
    let secrets: Vec<String> = inv
        .entries
        .iter()
        .filter(|s| s.kind == "Secret")
        .map(|s| s.name.clone())
        .collect();
    register_release_secrets(mgr, &inv.namespace, &secrets).await;
}

/// Reads every Secret the release owns and registers its values, so that no log or event
/// shown afterwards can print one. A Secret that cannot be read is skipped: then the user
/// cannot read its values either.
pub async fn register_release_secrets(mgr: &ResourceManager, namespace: &str, names: &[String]) {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(mgr.client().clone(), namespace);
    for name in names {
        if let Ok(Some(secret)) = api.get_opt(name).await {
            for value in secret.data.unwrap_or_default().values() {
                if let Ok(text) = std::str::from_utf8(&value.0) {
                    crate::diag::register_secret(text);
                }
            }
        }
    }
}

/// `logs`: the last `lines` of every container (or `container`) of every pod of `component`
/// in the release, each under a `==> pod/container <==` header, secrets masked.
pub async fn component_logs(
    mgr: &ResourceManager,
    inv: &crate::cluster::inventory::Inventory,
    component: &str,
    container: Option<&str>,
    previous: bool,
    lines: i64,
) -> Result<String, Error> {
    register_inventory_secrets(mgr, inv).await;
    let selector = format!(
        "{}={},{}={component}",
        crate::manifest::LABEL_INSTANCE,
        inv.release,
        crate::manifest::LABEL_COMPONENT
    );
    let api: Api<Pod> = Api::namespaced(mgr.client().clone(), &inv.namespace);
    let pods = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::from_kube(&format!("pods of {component}"), "list", e))?;
    if pods.items.is_empty() {
        return Err(Error::NotFound(format!(
            "release {} in namespace {} has no pod of component {component}",
            inv.release, inv.namespace
        )));
    }
    let mut out = String::new();
    let mut found = false;
    for pod in &pods.items {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        if let Ok(value) = serde_json::to_value(pod) {
            register_release_secrets(mgr, &inv.namespace, &secrets_read_by(&value)).await;
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let names = spec
            .init_containers
            .unwrap_or_default()
            .into_iter()
            .chain(spec.containers)
            .map(|c| c.name)
            .filter(|n| container.is_none_or(|c| c == n));
        for name in names {
            found = true;
            out.push_str(&format!("==> {pod_name}/{name} <==\n"));
            match read_log(mgr, &inv.namespace, &pod_name, &name, previous, lines).await {
                Ok(log) => {
                    for l in log {
                        out.push_str(&l);
                        out.push('\n');
                    }
                }
                Err(why) => out.push_str(&format!("(log not available: {why})\n")),
            }
        }
    }
    if !found {
        return Err(Error::NotFound(format!(
            "no container {} in the pods of {component}",
            crate::diag::excerpt(container.unwrap_or_default())
        )));
    }
    Ok(out)
}
