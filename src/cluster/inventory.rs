//! The release inventory: one ConfigMap per release, `<release>-inventory` in the release
//! namespace, listing every object the release owns. It is an ApplySet parent (KEP-3659): it
//! carries `applyset.kubernetes.io/id` and the tooling and group-kind annotations, and every
//! member carries `applyset.kubernetes.io/part-of`, so `kubectl` can see the set too.
//!
//! Like Timoni's, it is written before anything past the namespace is applied, as a *pending*
//! union of the old and the new objects, so an apply that fails partway still leaves a record
//! from which the next apply or `uninstall` finds everything. It holds no secret value: names,
//! the Dify version, the external URL and a hash of the values with `secrets` removed.

use super::{Error, ResourceManager};
use crate::manifest::{Manifest, Resource, Stage};
use crate::objects::{APP_NAME, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, MANAGED_BY};
use crate::release::RenderedRelease;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

pub const APPLYSET_ID: &str = "applyset.kubernetes.io/id";
pub const APPLYSET_PART_OF: &str = "applyset.kubernetes.io/part-of";
pub const APPLYSET_TOOLING: &str = "applyset.kubernetes.io/tooling";
pub const APPLYSET_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";

/// One owned object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub component: String,
}

impl Entry {
    pub fn of(r: &Resource) -> Entry {
        Entry {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            component: r.component.clone(),
        }
    }

    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    pub fn stage(&self) -> Stage {
        Stage::of(&self.kind, &self.component)
    }

    /// Data the release keeps unless `--delete-data`: volume claims and the keys Secret, so a
    /// re-install finds its database and the same passwords.
    pub fn is_data(&self) -> bool {
        self.kind == "PersistentVolumeClaim"
            || (self.kind == "Secret" && self.component == "secrets")
    }

    /// `Kind.group` as ApplySet annotations write it (`Deployment.apps`, `Secret`).
    fn group_kind(&self) -> String {
        match self.api_version.rsplit_once('/') {
            Some((group, _)) => format!("{}.{group}", self.kind),
            None => self.kind.clone(),
        }
    }
}

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// An apply started and has not finished: the entries are the union of old and new.
    Pending,
    Applied,
    /// Uninstalled, with data kept: the entries are the kept objects.
    Uninstalled,
}

/// The inventory of one release.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    pub release: String,
    pub namespace: String,
    pub entries: BTreeSet<Entry>,
    pub dify_version: String,
    /// The Alembic revision the release's migration reaches ("" outside the release table).
    pub alembic_head: String,
    /// Every image it runs, by component.
    pub images: BTreeMap<String, String>,
    /// Images set explicitly instead of the release's pins, as `component: image (pinned: …)`.
    pub overrides: Vec<String>,
    pub values_hash: String,
    pub external_url: String,
    pub last_applied: String,
    /// Whether difyrender created the namespace (only then may uninstall delete it).
    pub namespace_created: bool,
    pub state: State,
}

/// The inventory ConfigMap's name.
pub fn name_of(release: &str) -> String {
    format!("{release}-inventory")
}

/// The ApplySet id of a release: `applyset-<base64url(sha256(name.namespace.ConfigMap.))>-v1`.
pub fn applyset_id(release: &str, namespace: &str) -> String {
    let digest = Sha256::digest(format!("{}.{namespace}.ConfigMap.", name_of(release)).as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// Labels every object of a manifest as a member of the release's ApplySet.
pub fn stamp(manifest: &mut Manifest, release: &str, namespace: &str) {
    let id = applyset_id(release, namespace);
    for r in &mut manifest.resources {
        if let Some(labels) = r
            .body
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.insert(APPLYSET_PART_OF.to_owned(), Value::String(id.clone()));
        }
    }
}

/// Hash of the values without `secrets`, so the inventory tells whether values changed without
/// holding anything secret.
pub fn values_hash(values: &Value) -> String {
    let mut v = values.clone();
    if let Value::Object(map) = &mut v {
        map.remove("secrets");
    }
    hex::encode(Sha256::digest(v.to_string().as_bytes()))[..16].to_owned()
}

impl Inventory {
    /// The inventory a rendered release will have once applied.
    pub fn of(rendered: &RenderedRelease, namespace_created: bool) -> Inventory {
        Inventory {
            release: rendered.release.name.clone(),
            namespace: rendered.release.namespace.clone(),
            entries: rendered.manifest.resources.iter().map(Entry::of).collect(),
            dify_version: rendered.dify_version().to_owned(),
            alembic_head: rendered.dify.alembic_head.clone(),
            images: rendered.dify.images.clone(),
            overrides: rendered
                .dify
                .overrides()
                .iter()
                .map(|i| override_text(i))
                .collect(),
            values_hash: values_hash(&rendered.values),
            external_url: rendered.external_url(),
            last_applied: k8s_openapi::jiff::Timestamp::now()
                .round(k8s_openapi::jiff::Unit::Second)
                .unwrap_or_default()
                .to_string(),
            namespace_created,
            state: State::Applied,
        }
    }

    /// Equal apart from the time of the apply: rewriting it would record nothing new.
    pub fn same_as(&self, other: &Inventory) -> bool {
        Inventory {
            last_applied: String::new(),
            ..self.clone()
        } == Inventory {
            last_applied: String::new(),
            ..other.clone()
        }
    }

    /// The ConfigMap body.
    pub fn to_object(&self) -> Value {
        let group_kinds: BTreeSet<String> = self.entries.iter().map(Entry::group_kind).collect();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name_of(&self.release),
                "namespace": self.namespace,
                "labels": {
                    APPLYSET_ID: applyset_id(&self.release, &self.namespace),
                    LABEL_NAME: APP_NAME,
                    LABEL_INSTANCE: self.release,
                    LABEL_MANAGED_BY: MANAGED_BY,
                },
                "annotations": {
                    APPLYSET_TOOLING: format!("difyrender/v{}", env!("CARGO_PKG_VERSION")),
                    APPLYSET_GROUP_KINDS: group_kinds.into_iter().collect::<Vec<_>>().join(","),
                },
            },
            "data": {
                "objects": serde_json::to_string_pretty(&self.entries).expect("entries serialise"),
                "difyVersion": self.dify_version,
                "alembicHead": self.alembic_head,
                "images": serde_json::to_string_pretty(&self.images).expect("images serialise"),
                "overrides": serde_json::to_string_pretty(&self.overrides).expect("overrides serialise"),
                "valuesHash": self.values_hash,
                "externalUrl": self.external_url,
                "lastApplied": self.last_applied,
                "namespaceCreated": self.namespace_created.to_string(),
                "state": serde_json::to_value(self.state).expect("state serialises"),
            }
        })
    }

    /// Reads an inventory back from its ConfigMap.
    pub fn from_object(v: &Value) -> Result<Inventory, String> {
        let data = |k: &str| {
            v.pointer(&format!("/data/{k}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let entries: BTreeSet<Entry> = serde_json::from_str(&data("objects"))
            .map_err(|e| format!("its objects list is unreadable: {e}"))?;
        let state: State = serde_json::from_value(Value::String(data("state")))
            .map_err(|e| format!("its state is unreadable: {e}"))?;
        Ok(Inventory {
            release: v
                .pointer("/metadata/labels/app.kubernetes.io~1instance")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            namespace: v
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            entries,
            dify_version: data("difyVersion"),
            alembic_head: data("alembicHead"),
            // Inventories written before the release table have neither.
            images: serde_json::from_str(&data("images")).unwrap_or_default(),
            overrides: serde_json::from_str(&data("overrides")).unwrap_or_default(),
            values_hash: data("valuesHash"),
            external_url: data("externalUrl"),
            last_applied: data("lastApplied"),
            namespace_created: data("namespaceCreated") == "true",
            state,
        })
    }

    /// As a manifest resource, so the resource manager can apply it like any other object.
    pub fn to_resource(&self) -> Resource {
        Resource {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: name_of(&self.release),
            namespace: Some(self.namespace.clone()),
            component: "inventory".into(),
            stage: Stage::Config,
            template: "inventory".into(),
            body: self.to_object(),
        }
    }
}

/// How an explicitly set image is recorded and shown.
pub fn override_text(image: &crate::versions::Image) -> String {
    format!(
        "{}: {} (the release pins {})",
        image.component, image.source, image.pinned
    )
}

/// Reads a release's inventory; `Ok(None)` when there is none.
pub async fn read(
    mgr: &ResourceManager,
    release: &str,
    namespace: &str,
) -> Result<Option<Inventory>, Error> {
    let probe = Inventory {
        release: release.to_owned(),
        namespace: namespace.to_owned(),
        entries: BTreeSet::new(),
        dify_version: String::new(),
        alembic_head: String::new(),
        images: BTreeMap::new(),
        overrides: Vec::new(),
        values_hash: String::new(),
        external_url: String::new(),
        last_applied: String::new(),
        namespace_created: false,
        state: State::Applied,
    };
    let resource = probe.to_resource();
    match mgr.get(&resource).await? {
        None => Ok(None),
        Some(live) => Inventory::from_object(&live)
            .map(Some)
            .map_err(|e| Error::Usage(format!("the inventory {} is damaged: {e}", resource.id()))),
    }
}

/// Writes an inventory (server-side apply, forced: difyrender alone writes it).
pub async fn write(mgr: &ResourceManager, inventory: &Inventory) -> Result<(), Error> {
    mgr.apply(&inventory.to_resource(), true, false)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applyset_id_follows_kep_3659() {
        // base64url(sha256("dify-inventory.dify.ConfigMap.")), no padding.
        let id = applyset_id("dify", "dify");
        assert!(id.starts_with("applyset-") && id.ends_with("-v1"), "{id}");
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
        assert_ne!(id, applyset_id("dify", "other"));
    }

    #[test]
    fn data_is_pvcs_and_the_keys_secret() {
        let e = |kind: &str, component: &str| Entry {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: None,
            name: "x".into(),
            component: component.into(),
        };
        assert!(e("PersistentVolumeClaim", "storage").is_data());
        assert!(e("Secret", "secrets").is_data());
        assert!(!e("Secret", "other").is_data());
        assert!(!e("Deployment", "api").is_data());
    }

    #[test]
    fn round_trips_through_its_configmap() {
        let mut entries = BTreeSet::new();
        entries.insert(Entry {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("dify".into()),
            name: "dify-api".into(),
            component: "api".into(),
        });
        let inv = Inventory {
            release: "dify".into(),
            namespace: "dify".into(),
            entries,
            dify_version: "1.11.4".into(),
            alembic_head: "905527cc8fd3".into(),
            images: [("api".to_owned(), "langgenius/dify-api:1.11.4".to_owned())].into(),
            overrides: vec!["sandbox: x:1 (the release pins y:2)".into()],
            values_hash: "abc".into(),
            external_url: "https://x/dify".into(),
            last_applied: "2026-11-21T10:00:00Z".into(),
            namespace_created: true,
            state: State::Pending,
        };
        let obj = inv.to_object();
        assert_eq!(
            obj["metadata"]["annotations"][APPLYSET_GROUP_KINDS],
            "Deployment.apps"
        );
        assert_eq!(Inventory::from_object(&obj).unwrap(), inv);
    }
}
