//! Pod Security admission labels of the namespace.

use super::{Check, ENFORCE, WARN_LABEL, unreadable};
use crate::cluster::podsecurity::{self, Level};
use crate::cluster::{Error, ResourceManager};
use crate::manifest::Resource;
use crate::release::RenderedRelease;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) fn workloads(rendered: &RenderedRelease) -> impl Iterator<Item = (&Resource, &Value)> {
    rendered
        .manifest
        .resources
        .iter()
        .filter_map(|r| podsecurity::pod_spec(&r.body).map(|s| (r, s)))
}

pub(super) async fn pod_security(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
) -> Result<Check, Error> {
    const NAME: &str = "pod-security";
    let ns = &rendered.release.namespace;
    let api: Api<Namespace> = Api::all(mgr.client().clone());
    let live = match api.get_opt(ns).await {
        Ok(n) => n,
        Err(e) => {
            return unreadable(
                NAME,
                &format!("Namespace {ns}"),
                Error::from_kube(&format!("Namespace/{ns}"), "get", e),
            );
        }
    };
    let rendered_ns = rendered
        .manifest
        .resources
        .iter()
        .any(|r| r.kind == "Namespace");
    if live.is_none() && !rendered_ns {
        return Ok(Check::fail(
            NAME,
            format!("namespace {ns} does not exist, and the render does not create it (namespace.create=false)"),
        )
        .fix(format!("create it (kubectl create namespace {ns}) or set namespace.create=true")));
    }
    let labels: BTreeMap<String, String> = match &live {
        Some(n) => n.metadata.labels.clone().unwrap_or_default(),
        None => rendered
            .manifest
            .resources
            .iter()
            .find(|r| r.kind == "Namespace")
            .and_then(|r| r.body.pointer("/metadata/labels"))
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default(),
    };
    let level_of = |key: &str| labels.get(key).and_then(|v| Level::parse(v));
    let works = workloads(rendered)
        .map(|(_, spec)| podsecurity::strictest_passing(spec))
        .min()
        .unwrap_or(Level::Restricted);
    let suggestion = format!("kubectl label namespace {ns} {ENFORCE}={works} --overwrite");
    let judge = |level: Level| -> Vec<String> {
        let mut by_component: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (r, spec) in workloads(rendered) {
            for v in podsecurity::violations(spec, level) {
                by_component
                    .entry(format!("{} ({})", r.component, r.id()))
                    .or_default()
                    .push(v.to_string());
            }
        }
        by_component
            .into_iter()
            .map(|(c, v)| format!("{c}: {}", v.join("; ")))
            .collect()
    };
    let whose = if live.is_some() {
        format!("namespace {ns}")
    } else {
        format!("namespace {ns} (to be created)")
    };
    let Some(enforce) = level_of(ENFORCE) else {
        return Ok(Check::pass(
            NAME,
            format!("{whose} has no {ENFORCE} label; every pod of this render passes {works}"),
        ));
    };
    let rejected = judge(enforce);
    if !rejected.is_empty() {
        return Ok(Check::fail(
            NAME,
            format!(
                "{whose} enforces Pod Security {enforce}, which would reject {} workload(s) of this render",
                rejected.len()
            ),
        )
        .details(rejected)
        .fix(format!("every pod of this render passes {works}: {suggestion}")));
    }
    if let Some(warn) = level_of(WARN_LABEL) {
        let warned = judge(warn);
        if !warned.is_empty() {
            return Ok(Check::warn(
                NAME,
                format!("{whose} enforces {enforce}, which admits every pod, but warns at {warn} for {} workload(s)", warned.len()),
            )
            .details(warned));
        }
    }
    Ok(Check::pass(
        NAME,
        format!("{whose} enforces {enforce}, which admits every pod of this render"),
    ))
}
