//! The External Secrets Operator's store that `secrets.externalSecret` names: the
//! SecretStore (in the release's namespace) or ClusterSecretStore exists and is Ready, else the
//! ExternalSecret never makes the keys Secret and `apply` waits for it in vain.

use super::{Check, unreadable};
use crate::cluster::{Error, ResourceManager};
use crate::release::RenderedRelease;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

const NAME: &str = "secret-store";
/// The API version of ESO's stores (ESO 0.17+, as NKP 2.16–2.18 ship it).
const GROUP: &str = "external-secrets.io";
const VERSION: &str = "v1";

/// The store reference (kind, name) of the rendered ExternalSecret, if the render has one.
fn store_ref(rendered: &RenderedRelease) -> Option<(String, String)> {
    let es = rendered
        .manifest
        .resources
        .iter()
        .find(|r| r.kind == "ExternalSecret")?;
    let r = es.body.pointer("/spec/secretStoreRef")?;
    let name = r.get("name")?.as_str()?.to_owned();
    let kind = r
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("SecretStore")
        .to_owned();
    Some((kind, name))
}

/// What the store's status says, as a check.
pub(super) fn store_check(kind: &str, id: &str, store: Option<&Value>) -> Check {
    let Some(store) = store else {
        return Check::fail(NAME, format!("{kind} {id} does not exist"))
            .fix(format!(
                "create the {kind} {id} for your secret store (Vault, a cloud secret manager…), or name an existing one in secrets.externalSecret.storeRef (name, kind)"
            ));
    };
    let ready = store
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    match ready {
        Some(c) if c["status"] == "True" => Check::pass(NAME, format!("{kind} {id} is Ready")),
        Some(c) => {
            let why = [c["reason"].as_str(), c["message"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            Check::fail(NAME, format!("{kind} {id} is not Ready ({why})")).fix(
                "fix the store (its credentials, its server's address) until `kubectl get` shows it Ready; the ExternalSecret cannot make the keys Secret before",
            )
        }
        None => Check::warn(
            NAME,
            format!("{kind} {id} has no Ready condition yet"),
        )
        .fix("check that the External Secrets Operator is running (an NKP platform application) and validates the store"),
    }
}

/// The check, or `None` when the render has no ExternalSecret.
pub(super) async fn secret_store(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
) -> Result<Option<Check>, Error> {
    let Some((kind, name)) = store_ref(rendered) else {
        return Ok(None);
    };
    let cluster_wide = kind == "ClusterSecretStore";
    let ns = &rendered.release.namespace;
    let id = if cluster_wide {
        name.clone()
    } else {
        format!("{ns}/{name}")
    };
    // Whether the store's kind is served at all: a resource that is not served answers 404 like
    // a missing object.
    let gv = format!("{GROUP}/{VERSION}");
    let served = match mgr.client().list_api_group_resources(&gv).await {
        Ok(list) => list.resources.iter().any(|r| r.kind == kind),
        Err(kube::Error::Api(s)) if s.code == 404 => false,
        Err(e) => {
            return unreadable(
                NAME,
                &format!("discovery of {gv}"),
                Error::from_kube(&gv, "discover", e),
            )
            .map(Some);
        }
    };
    if !served {
        return Ok(Some(
            Check::fail(NAME, format!("the cluster does not serve {kind} ({gv})")).fix(
                "install the External Secrets Operator (an NKP platform application), or set secrets.externalSecret.enabled=false",
            ),
        ));
    }
    let plural = format!("{}s", kind.to_lowercase());
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, &kind), &plural);
    let api: Api<DynamicObject> = if cluster_wide {
        Api::all_with(mgr.client().clone(), &ar)
    } else {
        Api::namespaced_with(mgr.client().clone(), ns, &ar)
    };
    let store = match api.get_opt(&name).await {
        Ok(store) => store.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)),
        Err(e) => {
            return unreadable(
                NAME,
                &format!("{kind} {id}"),
                Error::from_kube(&format!("{kind}/{id}"), "get", e),
            )
            .map(Some);
        }
    };
    Ok(Some(store_check(&kind, &id, store.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::doctor::Verdict;
    use serde_json::json;

    #[test]
    fn verdicts_follow_the_ready_condition() {
        let missing = store_check("ClusterSecretStore", "vault", None);
        assert_eq!(missing.verdict, Verdict::Fail);
        assert!(missing.reason.contains("does not exist"));
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            store_check("ClusterSecretStore", "vault", Some(&ready)).verdict,
            Verdict::Pass
        );
        let bad = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "InvalidProviderConfig", "message": "unable to log in"}]}});
        let check = store_check("SecretStore", "ns/vault", Some(&bad));
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(
            check
                .reason
                .contains("InvalidProviderConfig: unable to log in"),
            "{}",
            check.reason
        );
        let fresh = json!({"spec": {}});
        assert_eq!(
            store_check("SecretStore", "ns/vault", Some(&fresh)).verdict,
            Verdict::Warn
        );
    }
}
