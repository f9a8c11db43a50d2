//! Secrets the release reads but does not render — `secrets.existingSecret`, or the keys
//! Secret a catalog install creates with `difyrender secrets apply` — must exist with every key
//! the pods name before anything is written: a pod whose `secretKeyRef` does not resolve never
//! starts, and the apply would only find out by timing out.

use super::{Error, ResourceManager};
use crate::manifest::Manifest;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Every `(Secret, key)` a pod template reads through `secretKeyRef` and that the manifest does
/// not render itself.
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
    refs
}

/// Checks that every Secret the release reads but does not render exists in `namespace` with
/// every key. Names keys, never values.
pub async fn check_external_secrets(
    mgr: &ResourceManager,
    manifest: &Manifest,
    namespace: &str,
) -> Result<(), Error> {
    let mut problems = Vec::new();
    for (name, keys) in external_secret_keys(manifest) {
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
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::NotFound(format!(
        "{}\nNothing was changed. Create the Secret with every key (difyrender secrets render \
         prints one in the chart's layout), or map key names with secrets.existingSecretKeys.",
        problems.join("\n")
    )))
}
