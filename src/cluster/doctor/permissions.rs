//! Permissions apply needs, checked with SelfSubjectAccessReviews.

use super::{Check, Options, unreadable};
use crate::cluster::external::ServiceRef;
use crate::cluster::{Error, ResourceManager, kinds};
use crate::release::RenderedRelease;
use futures::StreamExt;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use std::collections::{BTreeMap, BTreeSet};

/// Every (verb, group, resource, namespaced) apply needs: get, create and patch (server-side
/// apply) on every kind it writes, delete for prune; the Namespace is never deleted by apply.
fn needed_access(
    rendered: &RenderedRelease,
    opts: &Options,
) -> Vec<(&'static str, String, String, bool)> {
    let mut kinds: BTreeSet<(String, String)> = rendered
        .manifest
        .resources
        .iter()
        .map(|r| (r.api_version.clone(), r.kind.clone()))
        .collect();
    kinds.insert(("v1".into(), "ConfigMap".into())); // the inventory
    let mut out = Vec::new();
    for (api_version, kind) in kinds {
        let (ar, namespaced) = kinds::api_resource_of(&api_version, &kind);
        let verbs: &[&'static str] = if kind == "Namespace" {
            &["get", "create", "patch"]
        } else {
            &["get", "create", "patch", "delete"]
        };
        for verb in verbs {
            out.push((*verb, ar.group.clone(), ar.plural.clone(), namespaced));
        }
    }
    if !opts.host_given {
        // Finding the Traefik Service lists Services (in every namespace by default).
        out.push((
            "list",
            String::new(),
            "services".into(),
            matches!(opts.traefik, ServiceRef::Named { .. }),
        ));
    }
    out
}

pub(super) async fn permissions(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    opts: &Options,
) -> Result<Check, Error> {
    const NAME: &str = "permissions";
    let ns = &rendered.release.namespace;
    let access = needed_access(rendered, opts);
    let api: Api<SelfSubjectAccessReview> = Api::all(mgr.client().clone());
    let traefik_ns = match &opts.traefik {
        ServiceRef::Named { namespace, .. } => Some(namespace.clone()),
        ServiceRef::AnyNamespace(_) => None,
    };
    let reviews =
        futures::stream::iter(access.iter().map(|(verb, group, resource, namespaced)| {
            let api = api.clone();
            let namespace = if resource == "services" && *verb == "list" {
                traefik_ns.clone()
            } else if *namespaced {
                Some(ns.clone())
            } else {
                None
            };
            let name = (resource == "namespaces").then(|| ns.clone());
            async move {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            verb: Some(verb.to_string()),
                            group: Some(group.clone()),
                            resource: Some(resource.clone()),
                            namespace,
                            name,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                api.create(&PostParams::default(), &review)
                    .await
                    .map(|r| r.status.is_some_and(|s| s.allowed))
            }
        }))
        .buffered(16)
        .collect::<Vec<_>>()
        .await;
    let mut denied: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for ((verb, group, resource, _), allowed) in access.iter().zip(reviews) {
        match allowed {
            Ok(true) => {}
            Ok(false) => {
                let what = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                denied.entry(what).or_default().push(verb);
            }
            Err(e) => {
                return unreadable(
                    NAME,
                    "access reviews",
                    Error::from_kube("SelfSubjectAccessReview", "create", e),
                );
            }
        }
    }
    let who = whoami(mgr).await;
    if denied.is_empty() {
        return Ok(Check::pass(
            NAME,
            format!(
                "{who} may do all {} things apply does (get, create, patch, delete on every kind it writes)",
                access.len()
            ),
        ));
    }
    let details: Vec<String> = denied
        .iter()
        .map(|(what, verbs)| format!("{}: {}", what, verbs.join(", ")))
        .collect();
    Ok(Check::fail(
        NAME,
        format!("{who} may not do {} of the {} things apply needs in namespace {ns}", denied.values().map(Vec::len).sum::<usize>(), access.len()),
    )
    .details(details)
    .fix(format!(
        "bind a role granting these verbs, e.g. the built-in admin ClusterRole in namespace {ns} (kubectl create rolebinding dify-admin -n {ns} --clusterrole=admin --user=<you>), plus get/create/patch on the Namespace itself"
    )))
}

/// The user name the API server sees, from a SelfSubjectReview; "this user" when unknown.
async fn whoami(mgr: &ResourceManager) -> String {
    let api: Api<SelfSubjectReview> = Api::all(mgr.client().clone());
    match api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(r) => r
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .map(|u| format!("user {u:?}"))
            .unwrap_or_else(|| "this user".into()),
        Err(_) => "this user".into(),
    }
}
