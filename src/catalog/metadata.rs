//! `metadata.yaml` (the catalog card and its overview) and `.bloodhound.yml`.

use super::k8s_versions;
use super::manifests::Object;
use crate::release::RenderedRelease;
use crate::values::text_at;
use crate::yaml;
use serde_json::{Value, json};

pub const METADATA_SCHEMA: &str = "catalog.nkp.nutanix.com/v1/application-metadata";
pub const SUPPORT_LINK: &str = "https://github.com/langgenius/dify";

/// The values an operator needs to know the entry was built with, as (setting, value). Only
/// non-secret values are read.
pub fn fixed_values(rendered: &RenderedRelease, objects: &[Object]) -> Vec<(String, String)> {
    let v = &rendered.values;
    let scheme = text_at(v, "/external/scheme");
    let mut fixed = vec![
        ("URL".to_owned(), rendered.external_url()),
        ("Path".to_owned(), text_at(v, "/expose/path")),
        (
            "Ingress class".to_owned(),
            format!(
                "{}{}",
                text_at(v, "/expose/ingressClassName"),
                if scheme == "https" {
                    " (TLS on the Traefik router)"
                } else {
                    ""
                }
            ),
        ),
        (
            "Storage class".to_owned(),
            format!(
                "{} ({})",
                text_at(v, "/storage/storageClassName"),
                text_at(v, "/storage/accessMode")
            ),
        ),
        (
            "Volumes".to_owned(),
            format!(
                "file storage {}, plugin daemon {}, PostgreSQL {}, Redis {}, Weaviate {}",
                text_at(v, "/storage/size"),
                text_at(v, "/pluginDaemon/storageSize"),
                text_at(v, "/postgresql/storageSize"),
                text_at(v, "/redis/storageSize"),
                text_at(v, "/weaviate/storageSize"),
            ),
        ),
    ];
    for (image, users) in images(objects) {
        fixed.push((format!("Image ({})", users.join(", ")), image));
    }
    fixed
}

/// Every container image of the entry with the components that run it, in apply order.
fn images(objects: &[Object]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for o in objects {
        let component = o
            .body
            .pointer("/metadata/labels/app.kubernetes.io~1component")
            .and_then(Value::as_str)
            .unwrap_or(&o.kind)
            .to_owned();
        for c in crate::manifest::pods::containers(&o.body) {
            let Some(image) = c.get("image").and_then(Value::as_str) else {
                continue;
            };
            match out.iter_mut().find(|(i, _)| i == image) {
                Some((_, users)) if !users.contains(&component) => users.push(component.clone()),
                Some(_) => {}
                None => out.push((image.to_owned(), vec![component.clone()])),
            }
        }
    }
    out
}

/// The Markdown overview: what Dify is, the one step before enabling, what is fixed.
fn overview(rendered: &RenderedRelease, app_name: &str, fixed: &[(String, String)]) -> String {
    let version = rendered.dify_version();
    let overrides = super::inputs::config_overrides_name(app_name);
    let before = match external_secret(rendered) {
        Some((store, key)) => format!(
            "The keys come from the platform's External Secrets Operator: the entry `{key}` of \
the store `{store}` (the form's defaults; on NKP 2.17 and later each instance names its own \
store and entry) must hold every key in the layout `difyrender secrets render` prints (its \
`data` keys as the entry's properties). The ExternalSecret of this entry makes the Secret the pods \
read; nothing else is needed before enabling it. Keep the store's entry as it is: \
PostgreSQL keeps the password it was first started with."
        ),
        None => {
            "Create the keys Secret once, in the namespace the application is deployed to (the \
workspace namespace, or the project namespace for a project) and for the release name you \
enable it with (the AppDeployment's name):

```sh
DIFY_SECRET_KEY=<master key> difyrender secrets apply -n <namespace> --release <release name>
```

This entry holds no secret: every pod reads the Secret `<release name>-keys`, and waits in \
`CreateContainerConfigError` until it exists. Keep the master key: PostgreSQL keeps the \
password it was first started with."
                .to_owned()
        }
    };
    let mut table = String::from("| Setting | Value |\n|---|---|\n");
    for (setting, value) in fixed {
        table.push_str(&format!(
            "| {} | {} |\n",
            setting.replace('|', "\\|"),
            value.replace('|', "\\|")
        ));
    }
    format!(
        "## Dify Community Edition {version}

[Dify](https://github.com/langgenius/dify) is an open-source platform for building LLM \
applications: chat apps, agents, knowledge bases (RAG) and workflows. This entry runs the \
api, worker, beat, web, plugin daemon, sandbox and SSRF proxy with their own PostgreSQL, Redis \
and Weaviate. It is made of plain Kubernetes manifests generated by difyrender, without Helm.

## Before you enable it

{before}

## Values this entry was generated with

{table}
## Choices at Enable (NKP 2.17 and later)

The form asks for the external host, the storage class and the volume sizes, with the values \
above as defaults; its answers go to the ConfigMap `{overrides}`, which the entry reads with \
Flux's `postBuild.substituteFrom`. Without that ConfigMap (NKP 2.16, or `nkp create \
appdeployment` without `--config-overrides {overrides}`), the values above are used. The \
release and the path (and the images) are fixed by this version of the entry. Sizes of the \
bundled datastores' volumes apply when they are created.

One instance per namespace: object names carry the release name, but instances in one \
namespace would read the same `{overrides}`, and so claim the same URL. Deploy a second Dify \
in another workspace or project.

## Removing it

Disabling the application deletes its objects except the data: the PersistentVolumeClaims \
(the StatefulSets' volumes and those marked `kustomize.toolkit.fluxcd.io/prune: disabled`) and \
the keys Secret stay, so enabling it again with the same release name finds its data.
"
    )
}

/// The store and entry of `secrets.externalSecret`, when the entry's keys come from the External
/// Secrets Operator.
fn external_secret(rendered: &RenderedRelease) -> Option<(String, String)> {
    let v = &rendered.values;
    (v.pointer("/secrets/externalSecret/enabled") == Some(&Value::Bool(true))).then(|| {
        (
            text_at(v, "/secrets/externalSecret/storeRef/name"),
            text_at(v, "/secrets/externalSecret/remoteKey"),
        )
    })
}

/// `metadata.yaml`.
pub fn metadata_yaml(
    rendered: &RenderedRelease,
    app_name: &str,
    fixed: &[(String, String)],
    icon: &str,
) -> String {
    let doc = json!({
        "schema": METADATA_SCHEMA,
        "displayName": "Dify Community Edition",
        "description": format!(
            "Dify {}: open-source platform for LLM applications, agents and RAG workflows, with its own PostgreSQL, Redis and Weaviate (plain manifests, no Helm).",
            rendered.dify_version()
        ),
        "category": ["ai"],
        "type": "custom",
        // Everything is namespaced and in ${releaseNamespace}: a workspace or a project works.
        "scope": ["workspace", "project"],
        // Nothing in the entry needs a particular tier; the schema's default (the tiers that
        // have the application catalog).
        "licensing": ["Pro", "Ultimate"],
        // Names carry ${releaseName}, but instances in one namespace read the same
        // config-overrides ConfigMap, so they would claim the same URL.
        "allowMultipleInstances": false,
        // ${releaseName} and ${releaseNamespace} exist from NKP 2.16.
        "nkpVersionSupport": ">=2.16",
        // Every Kubernetes version NKP 2.16-2.18 validates (crate::objects::NKP_KUBERNETES).
        "k8sVersionSupport": k8s_version_support(),
        "supportLink": SUPPORT_LINK,
        "overview": overview(rendered, app_name, fixed),
        "icon": icon,
    });
    let mut doc = doc;
    let from = rendered.versions.upgrades_from(rendered.dify_version());
    if let Some(range) = upgrades_from_range(rendered.dify_version(), &from) {
        doc["upgradesFrom"] = json!(range);
    }
    yaml::to_string(&doc)
}

/// `upgradesFrom`: the releases of the table this one may replace (every older one: the
/// database only moves forward), as the one range NKP's schema allows — `>=OLDEST <THIS`, no
/// `||` and no suffix. A hotfix such as `1.10.1-fix.1` comes after `1.10.1` in Dify's order
/// but before it in semver's, so its own range ends at `<=1.10.1`; and like every semver
/// pre-release it is matched by no range without a suffix (docs/catalog.md says so).
pub fn upgrades_from_range(version: &str, older: &[&str]) -> Option<String> {
    fn base(v: &str) -> &str {
        v.split_once('-').map_or(v, |(core, _)| core)
    }
    let oldest = older.iter().map(|v| base(v)).next()?;
    let upper = if version.contains('-') {
        format!("<={}", base(version))
    } else {
        format!("<{version}")
    };
    Some(format!(">={oldest} {upper}"))
}

/// `k8sVersionSupport`: the Kubernetes versions NKP validates, as the schema's range
/// (`>=1.31 <=1.35`).
pub fn k8s_version_support() -> String {
    let (lo, hi) = crate::objects::TESTED_MINORS;
    format!(">=1.{lo} <=1.{hi}")
}

/// `.bloodhound.yml` for `nkp validate catalog-repository`.
pub fn bloodhound_yaml(app_name: &str, skip_types: &[String]) -> String {
    let doc = json!({
        "k8s_versions": k8s_versions(),
        "strict": true,
        "skip_types": skip_types,
        "additional_crds": [],
        "substitution_vars": {
            "releaseName": app_name,
            "releaseNamespace": "kommander-default-workspace",
            "workspaceNamespace": "kommander-default-workspace",
        },
    });
    let table: Vec<String> = crate::objects::NKP_KUBERNETES
        .iter()
        .map(|n| format!("{} (1.{}-1.{})", n.nkp, n.minors.0, n.minors.1))
        .collect();
    format!(
        "# Written by `difyrender catalog --bloodhound` for `nkp validate catalog-repository`.\n\
         # k8s_versions: every Kubernetes minor NKP validates: {}.\n\
         # skip_types: custom resources the upstream Kubernetes schemas do not know.\n{}",
        table.join(", "),
        yaml::to_string(&doc)
    )
}
