//! The resource manager: the few API calls every verb is made of, under one field manager.

use super::inventory::Entry;
use super::{Error, FIELD_MANAGER, kinds};
use crate::manifest::Resource;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use serde_json::Value;

/// Talks to one cluster as one field manager.
#[derive(Clone)]
pub struct ResourceManager {
    client: kube::Client,
    field_manager: String,
}

impl ResourceManager {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            field_manager: FIELD_MANAGER.to_owned(),
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    pub fn field_manager(&self) -> &str {
        &self.field_manager
    }

    /// The dynamic API for an object's kind, in its namespace.
    pub fn api_for(
        &self,
        ar: &ApiResource,
        namespaced: bool,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar),
            _ => Api::all_with(self.client.clone(), ar),
        }
    }

    fn api(&self, r: &Resource) -> Api<DynamicObject> {
        self.api_of(&r.api_version, &r.kind, r.namespace.as_deref())
    }

    /// The dynamic API for a kind by apiVersion, in a namespace.
    pub fn api_of(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        let (ar, namespaced) = kinds::api_resource_of(api_version, kind);
        self.api_for(&ar, namespaced, namespace)
    }

    /// The live object, or `None` when it does not exist.
    pub async fn get(&self, r: &Resource) -> Result<Option<Value>, Error> {
        self.get_object(&r.api_version, &r.kind, r.namespace.as_deref(), &r.name)
            .await
    }

    /// The live object an inventory entry names, or `None`.
    pub async fn get_entry(&self, e: &Entry) -> Result<Option<Value>, Error> {
        self.get_object(&e.api_version, &e.kind, e.namespace.as_deref(), &e.name)
            .await
    }

    /// The live object by identity, or `None`.
    pub async fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, Error> {
        match self
            .api_of(api_version, kind, namespace)
            .get_opt(name)
            .await
        {
            Ok(obj) => Ok(obj.map(to_value)),
            Err(e) => Err(Error::from_kube(
                &display_id(kind, namespace, name),
                "get",
                e,
            )),
        }
    }

    /// Deletes an object (background propagation). `Ok(false)` when it was already gone.
    pub async fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, Error> {
        let params = kube::api::DeleteParams::background();
        match self
            .api_of(api_version, kind, namespace)
            .delete(name, &params)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
            Err(e) => Err(Error::from_kube(
                &display_id(kind, namespace, name),
                "delete",
                e,
            )),
        }
    }

    /// Server-side apply with strict field validation; `dry_run` sends `dryRun=All`.
    pub async fn apply(&self, r: &Resource, force: bool, dry_run: bool) -> Result<Value, Error> {
        let mut params = PatchParams::apply(&self.field_manager).validation_strict();
        if force {
            params = params.force();
        }
        if dry_run {
            params = params.dry_run();
        }
        let verb = if dry_run {
            "server-side apply (dry run)"
        } else {
            "server-side apply"
        };
        self.api(r)
            .patch(&r.name, &params, &Patch::Apply(&r.body))
            .await
            .map(to_value)
            .map_err(|e| Error::from_kube(&r.id(), verb, e))
    }
}

/// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects.
pub fn display_id(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

fn to_value(obj: DynamicObject) -> Value {
    serde_json::to_value(obj).expect("a DynamicObject serialises")
}

/// Metadata the server owns, left out when comparing a dry run with the live object.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
];

/// An object as the comparison sees it: no status, no server-owned metadata.
pub fn normalized(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(map) = &mut v {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for key in SERVER_METADATA {
                meta.remove(*key);
            }
        }
    }
    v
}

/// Whether this field manager already owns the object through an Apply operation; if not, the
/// object is applied even when its contents match, so difyrender takes ownership.
pub fn is_applied_by(live: &Value, manager: &str) -> bool {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e["manager"] == manager && e["operation"] == "Apply")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comparison_ignores_server_fields_only() {
        let live = json!({"metadata": {"name": "a", "resourceVersion": "1", "managedFields": [], "labels": {"x": "1"}}, "spec": {"a": 1}, "status": {"x": 1}});
        let dry = json!({"metadata": {"name": "a", "resourceVersion": "2", "labels": {"x": "1"}}, "spec": {"a": 1}});
        assert_eq!(normalized(&live), normalized(&dry));
        let changed = json!({"metadata": {"name": "a", "labels": {"x": "2"}}, "spec": {"a": 1}});
        assert_ne!(normalized(&live), normalized(&changed));
    }

    #[test]
    fn ownership_needs_an_apply_entry() {
        let by_kubectl =
            json!({"metadata": {"managedFields": [{"manager": "kubectl", "operation": "Apply"}]}});
        assert!(!is_applied_by(&by_kubectl, "difyrender"));
        let ours = json!({"metadata": {"managedFields": [{"manager": "difyrender", "operation": "Apply"}]}});
        assert!(is_applied_by(&ours, "difyrender"));
    }
}
