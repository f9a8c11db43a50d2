//! Secrets the release reads but does not render — `secrets.existingSecret`, the keys Secret a
//! catalog install creates with `difyrender secrets apply`, the object storage's key pair, the
//! external Redis's CA — must exist with every key the pods name before anything is written: a pod whose `secretKeyRef` does not resolve never
//! starts, and the apply would only find out by timing out.

use super::{Error, ResourceManager};
use crate::manifest::Manifest;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Every `(Secret, key)` a pod template reads through `secretKeyRef` or mounts as a volume, and
/// that the manifest does not render itself.
pub fn external_secret_keys(manifest: &Manifest) -> BTreeMap<String, BTreeSet<String>> {
    let rendered: BTreeSet<&str> = manifest
        .resources
        .iter()
        .filter(|r| r.kind == "Secret")
        .map(|r| r.name.as_str())
        .collect();
    let mut refs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in manifest.resources.iter().flat_map(|r| r.containers()) {
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            let Some(sel) = e.pointer("/valueFrom/secretKeyRef") else {
                continue;
            };
            // An optional reference (bootstrap.provider.apiKeySecret.optional) may be missing.
            if sel.get("optional") == Some(&Value::Bool(true)) {
                continue;
            }
            let (Some(name), Some(key)) = (
                sel.get("name").and_then(Value::as_str),
                sel.get("key").and_then(Value::as_str),
            ) else {
                continue;
            };
            if !rendered.contains(name) {
                refs.entry(name.to_owned())
                    .or_default()
                    .insert(key.to_owned());
            }
        }
    }
    // Secret volumes with the keys they project (a CA certificate, say).
    let volumes = manifest.resources.iter().flat_map(|r| {
        crate::manifest::pods::pod_spec(&r.body)
            .and_then(|s| s.get("volumes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    });
    for v in volumes {
        let Some(name) = v.pointer("/secret/secretName").and_then(Value::as_str) else {
            continue;
        };
        if rendered.contains(name) {
            continue;
        }
        let entry = refs.entry(name.to_owned()).or_default();
        let items = v.pointer("/secret/items").and_then(Value::as_array);
        for item in items.into_iter().flatten() {
            if let Some(key) = item.get("key").and_then(Value::as_str) {
                entry.insert(key.to_owned());
            }
        }
    }
    refs
}

/// The Secrets an ExternalSecret of the manifest makes (`secrets.externalSecret`): they exist
/// only once the External Secrets Operator has synced it, after the config stage.
pub fn made_by_external_secrets(manifest: &Manifest) -> BTreeSet<String> {
    manifest
        .resources
        .iter()
        .filter(|r| r.kind == "ExternalSecret")
        .filter_map(|r| r.body.pointer("/spec/target/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Which of the Secrets the release reads to check: before the first write, those the operator
/// provides; after the ExternalSecrets are Ready, those they made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provided {
    ByTheOperator,
    ByExternalSecrets,
}

/// Checks that every Secret the release reads but does not render exists in `namespace` with
/// every key. Names keys, never values.
pub async fn check_external_secrets(
    mgr: &ResourceManager,
    manifest: &Manifest,
    namespace: &str,
    which: Provided,
) -> Result<(), Error> {
    let made = made_by_external_secrets(manifest);
    let mut problems = Vec::new();
    for (name, keys) in external_secret_keys(manifest) {
        if made.contains(&name) != (which == Provided::ByExternalSecrets) {
            continue;
        }
        let live = mgr
            .get_object("v1", "Secret", Some(namespace), &name)
            .await?;
        let Some(live) = live else {
            problems.push(format!(
                "Secret {namespace}/{name} does not exist; the pods read {} from it",
                keys.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        };
        let missing: Vec<&str> = keys
            .iter()
            .filter(|k| live.pointer(&format!("/data/{k}")).is_none())
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "Secret {namespace}/{name} lacks the keys {}",
                missing.join(", ")
            ));
        }
        // An empty key is no key: an empty shellctl token turns local_sandbox's
        // authentication off, an empty password lets anyone in.
        let empty: Vec<&str> = keys
            .iter()
            .filter(|k| {
                live.pointer(&format!("/data/{k}"))
                    .and_then(Value::as_str)
                    .is_some_and(str::is_empty)
            })
            .map(String::as_str)
            .collect();
        if !empty.is_empty() {
            problems.push(format!(
                "Secret {namespace}/{name} has empty values for the keys {}",
                empty.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::NotFound(format!(
        "{}\nNothing was changed. Create each Secret with every key (for the keys Secret, \
         difyrender secrets render prints one in the chart's layout; secrets.existingSecretKeys \
         maps its key names).",
        problems.join("\n")
    )))
}
