//! Rendered objects turned into the entry's `manifests/` folder, and the kustomize and Flux
//! files that point at it.

use super::inputs::{self, Variables};
use super::{
    DROPPED_COMPONENTS, Error, RELEASE_NAME_PLACEHOLDER, RELEASE_NAME_VAR,
    RELEASE_NAMESPACE_PLACEHOLDER, RELEASE_NAMESPACE_VAR,
};
use crate::manifest::{Manifest, Resource};
use crate::yaml;
use serde_json::{Map, Value, json};

/// Pod-template annotation holding a hash of every key: it would be the hash of the
/// placeholder key here, and the Secret is not part of the entry, so it is left out.
const KEYS_CHECKSUM: &str = "difyrender.io/keys-checksum";
/// Flux: never garbage-collect this object (the data outlives the application).
pub(super) const FLUX_PRUNE: &str = "kustomize.toolkit.fluxcd.io/prune";
/// Flux: recreate this object when an immutable field changes.
pub(super) const FLUX_FORCE: &str = "kustomize.toolkit.fluxcd.io/force";

/// How long Flux waits for every object to become ready (image pulls, the migration Job).
pub const FLUX_TIMEOUT: &str = "15m0s";

/// One object of the `manifests/` folder.
#[derive(Debug, Clone)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    /// File name inside `manifests/`.
    pub file: String,
    /// The object with variables in place, as it appears in the file.
    pub body: Value,
    /// The file's contents.
    pub text: String,
}

/// The converted objects and what was left out.
pub struct Converted {
    pub objects: Vec<Object>,
    pub dropped: Vec<String>,
    /// The operator's choices the objects read as Flux variables.
    pub variables: Variables,
}

/// Escapes text so that Flux's post-build substitution gives it back unchanged.
///
/// Flux's envsubst reads `${name}` as a variable and `$$` as one literal `$`; any other `$` is
/// kept. Doubling every `$` that is followed by `$` or `{` is therefore exact: `${x}` becomes
/// `$${x}`, `$$` becomes `$$$`, and `$(VAR)` (Kubernetes' own expansion) stays as it is.
pub fn escape_for_flux(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && matches!(chars.peek(), Some('$' | '{')) {
            out.push('$');
        }
    }
    out
}

/// Escaped, then the placeholders replaced by the variables.
fn to_catalog_text(text: &str) -> String {
    escape_for_flux(text)
        .replace(RELEASE_NAMESPACE_PLACEHOLDER, RELEASE_NAMESPACE_VAR)
        .replace(RELEASE_NAME_PLACEHOLDER, RELEASE_NAME_VAR)
}

/// Applies [`to_catalog_text`] to every string of a value, mapping keys included.
fn rewrite(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(to_catalog_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(rewrite).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (to_catalog_text(k), rewrite(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn annotations_mut(meta: &mut Value) -> Option<&mut Map<String, Value>> {
    let Value::Object(meta) = meta else {
        return None;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    annotations.as_object_mut()
}

/// The catalog's changes to one rendered object, before the strings are rewritten.
fn adapt(resource: &Resource) -> Value {
    let mut body = resource.body.clone();
    // The keys checksum: gone from every pod template.
    if let Some(Value::Object(meta)) = body.pointer_mut("/spec/template/metadata") {
        let now_empty = match meta.get_mut("annotations") {
            Some(Value::Object(a)) => {
                a.remove(KEYS_CHECKSUM);
                a.is_empty()
            }
            _ => false,
        };
        if now_empty {
            meta.remove("annotations");
        }
    }
    let flux_annotation = match resource.kind.as_str() {
        // Uploads and the plugin daemon's data stay when the application is removed, like the
        // StatefulSets' volumes, which are never in Flux's inventory.
        "PersistentVolumeClaim" => Some((FLUX_PRUNE, "disabled")),
        // The migration Job's pod template is immutable; named after the Dify version, it only
        // changes in place when the entry is regenerated with other settings, and then Flux
        // recreates it (the migration is idempotent) instead of failing.
        "Job" => Some((FLUX_FORCE, "enabled")),
        _ => None,
    };
    if let Some((key, value)) = flux_annotation
        && let Some(meta) = body.get_mut("metadata")
        && let Some(annotations) = annotations_mut(meta)
    {
        annotations.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    body
}

/// `<stage>-<kind>-<name>.yaml`, the name without the release prefix.
fn file_name(resource: &Resource) -> String {
    let prefix = format!("{RELEASE_NAME_PLACEHOLDER}-");
    let short = match resource.name.strip_prefix(&prefix) {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ if resource.name == RELEASE_NAME_PLACEHOLDER => "release".to_owned(),
        _ => to_catalog_text(&resource.name)
            .replace(RELEASE_NAME_VAR, "release")
            .replace(
                |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'),
                "-",
            ),
    };
    format!(
        "{}-{}-{}.yaml",
        resource.stage.number(),
        resource.kind.to_lowercase(),
        short
    )
}

/// The object's name without the release prefix.
fn short_name(resource: &Resource) -> String {
    let prefix = format!("{RELEASE_NAME_PLACEHOLDER}-");
    resource
        .name
        .strip_prefix(&prefix)
        .unwrap_or(&resource.name)
        .to_owned()
}

/// Converts every object of the rendered release except the dropped components. With `host`
/// (the values' `external.host`; a catalog entry), the host and every claim's storage class and
/// size become variables; without (`--flux-only`), every value stays as rendered.
pub fn convert(manifest: &Manifest, host: Option<&str>) -> Result<Converted, Error> {
    let mut objects: Vec<Object> = Vec::new();
    let mut dropped = Vec::new();
    let mut variables = Variables::default();
    for resource in &manifest.resources {
        if DROPPED_COMPONENTS.contains(&resource.component.as_str()) {
            dropped.push(format!(
                "{} {}",
                resource.kind,
                to_catalog_text(&resource.name)
            ));
            continue;
        }
        let mut body = rewrite(&adapt(resource));
        if let Some(host) = host {
            inputs::parametrize(
                &mut body,
                &resource.kind,
                &short_name(resource),
                host,
                &mut variables,
            );
        }
        let namespace = body.pointer("/metadata/namespace").and_then(Value::as_str);
        if namespace != Some(RELEASE_NAMESPACE_VAR) {
            return Err(Error::OutsideReleaseNamespace(format!(
                "{} {}",
                resource.kind,
                to_catalog_text(&resource.name)
            )));
        }
        let mut file = file_name(resource);
        let mut n = 2;
        while objects.iter().any(|o| o.file == file) {
            file = format!("{}-{n}.yaml", file.trim_end_matches(".yaml"));
            n += 1;
        }
        let text = format!(
            "# Source: {}\n{}---\n",
            resource.template,
            yaml::to_string(&body)
        );
        objects.push(Object {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
            file,
            body,
            text,
        });
    }
    Ok(Converted {
        objects,
        dropped,
        variables,
    })
}

/// Whether objects of this apiVersion are Kubernetes' own (known to the upstream schemas).
pub fn is_builtin_group(api_version: &str) -> bool {
    match api_version.rsplit_once('/') {
        None => true,
        Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
    }
}

/// A kustomize `kustomization.yaml` listing `resources` in order.
pub fn kustomization(resources: &[String]) -> String {
    let doc = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    });
    format!("{}---\n", yaml::to_string(&doc))
}

/// The Flux Kustomization Kommander applies from the version folder: like the
/// `${releaseName}-helmrelease` one `nkp generate catalog-repository` writes, over the
/// `manifests` folder of the same OCI artifact (`${releaseName}-source`, which Kommander
/// creates for the application). Every object already names `${releaseNamespace}`, so no
/// `targetNamespace` is set. The form's answers come from the ConfigMap `config_overrides`,
/// optional: without it (NKP 2.16, or enabled without answers) every variable has its default.
pub fn flux_kustomization(config_overrides: &str) -> String {
    let doc = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": format!("{RELEASE_NAME_VAR}-manifests"),
            "namespace": RELEASE_NAMESPACE_VAR,
        },
        "spec": {
            "interval": "6h0m0s",
            "path": "./manifests",
            "postBuild": {
                "substitute": {
                    "releaseName": RELEASE_NAME_VAR,
                    "releaseNamespace": RELEASE_NAMESPACE_VAR,
                },
                "substituteFrom": [
                    {"kind": "ConfigMap", "name": config_overrides, "optional": true},
                ],
            },
            "prune": true,
            "retryInterval": "1m0s",
            "sourceRef": {
                "kind": "OCIRepository",
                "name": format!("{RELEASE_NAME_VAR}-source"),
                "namespace": RELEASE_NAMESPACE_VAR,
            },
            "timeout": FLUX_TIMEOUT,
            "wait": true,
        },
    });
    format!("{}---\n", yaml::to_string(&doc))
}

/// Flux's post-build substitution of `${name}` variables, as kustomize-controller applies it:
/// `$$` is a literal `$`, any other `$` is kept, `${name:=default}` is the default when `name`
/// is unset or empty, and an unknown variable without a default is an error (as with strict
/// post-build substitution). Lets tests check that an escaped entry comes back intact.
pub fn substitute_like_flux(text: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or("an unclosed ${")?;
            let (name, default) = match body[..end].split_once(":=") {
                Some((name, default)) => (name, Some(default)),
                None => (&body[..end], None),
            };
            let value = vars
                .iter()
                .find(|(k, v)| *k == name && !(v.is_empty() && default.is_some()))
                .map(|(_, v)| *v)
                .or(default)
                .ok_or(format!("undefined variable {name}"))?;
            out.push_str(value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_through_flux() {
        for text in [
            "plain",
            "${HOME}",
            "$${x}",
            "$$",
            "$",
            "a$",
            "$(REDIS_PASSWORD)",
            "redis://:$(REDIS_PASSWORD)@h:6379/1",
            "$$$",
            "${a}${b}$c$$d${",
            "{hook_id}",
        ] {
            let escaped = escape_for_flux(text);
            assert_eq!(
                substitute_like_flux(&escaped, &[]).unwrap(),
                text,
                "{text:?} -> {escaped:?}"
            );
        }
        assert_eq!(escape_for_flux("${HOME}"), "$${HOME}");
        assert_eq!(escape_for_flux("$$"), "$$$");
        assert_eq!(escape_for_flux("$(X)"), "$(X)");
    }

    #[test]
    fn placeholders_become_variables_after_escaping() {
        let text = format!("{RELEASE_NAMESPACE_PLACEHOLDER}-{RELEASE_NAME_PLACEHOLDER}-x ${{y}}");
        let out = to_catalog_text(&text);
        assert_eq!(out, "${releaseNamespace}-${releaseName}-x $${y}");
        assert_eq!(
            substitute_like_flux(&out, &[("releaseNamespace", "ns"), ("releaseName", "r")])
                .unwrap(),
            "ns-r-x ${y}"
        );
    }

    #[test]
    fn builtin_groups() {
        assert!(is_builtin_group("v1"));
        assert!(is_builtin_group("apps/v1"));
        assert!(is_builtin_group("networking.k8s.io/v1"));
        assert!(!is_builtin_group("traefik.io/v1alpha1"));
    }
}
