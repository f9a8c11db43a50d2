//! Quotas, limit ranges and node capacity.

use super::pod_security::workloads;
use super::resources::{pod_amount, quantity, render_amount, show};
use super::storage::claims;
use super::{Check, unreadable};
use crate::cluster::{Error, ResourceManager};
use crate::release::RenderedRelease;
use k8s_openapi::api::core::v1::{LimitRange, Node, Pod, ResourceQuota};
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) async fn quota(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    exists: bool,
) -> Result<Check, Error> {
    const NAME: &str = "quota";
    let ns = &rendered.release.namespace;
    let api: Api<ResourceQuota> = Api::namespaced(mgr.client().clone(), ns);
    let quotas = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return unreadable(
                NAME,
                &format!("ResourceQuotas in {ns}"),
                Error::from_kube("ResourceQuotas", "list", e),
            );
        }
    };
    if quotas.is_empty() {
        return Ok(Check::pass(
            NAME,
            format!("no ResourceQuota in namespace {ns}"),
        ));
    }
    let mut short = Vec::new();
    let mut checked = 0;
    for q in &quotas {
        let name = q.metadata.name.clone().unwrap_or_default();
        let hard = q
            .spec
            .as_ref()
            .and_then(|s| s.hard.clone())
            .unwrap_or_default();
        let used = q
            .status
            .as_ref()
            .and_then(|s| s.used.clone())
            .unwrap_or_default();
        for (key, limit) in &hard {
            let (Some(limit), Some(need)) = (quantity(&limit.0), render_amount(rendered, key))
            else {
                continue;
            };
            checked += 1;
            // An upgrade replaces the release's own share, so only a new install competes
            // with what is already used.
            let used = if exists {
                0.0
            } else {
                used.get(key).and_then(|u| quantity(&u.0)).unwrap_or(0.0)
            };
            if need > limit - used + 1e-9 {
                short.push(format!(
                    "ResourceQuota {name}: {key}: the release needs {}, {} of {} is left",
                    show(key, need),
                    show(key, (limit - used).max(0.0)),
                    show(key, limit)
                ));
            }
        }
    }
    if short.is_empty() {
        return Ok(Check::pass(
            NAME,
            format!(
                "the release fits {} ResourceQuota(s) in {ns} ({checked} limits checked)",
                quotas.len()
            ),
        ));
    }
    Ok(Check::fail(
        NAME,
        format!(
            "the release does not fit the ResourceQuota in namespace {ns}: {} limit(s) short",
            short.len()
        ),
    )
    .details(short)
    .fix("raise the quota, or lower <component>.resources and replicas"))
}

pub(super) async fn limit_ranges(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
) -> Result<Check, Error> {
    const NAME: &str = "limit-range";
    let ns = &rendered.release.namespace;
    let api: Api<LimitRange> = Api::namespaced(mgr.client().clone(), ns);
    let ranges = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return unreadable(
                NAME,
                &format!("LimitRanges in {ns}"),
                Error::from_kube("LimitRanges", "list", e),
            );
        }
    };
    if ranges.is_empty() {
        return Ok(Check::pass(
            NAME,
            format!("no LimitRange in namespace {ns}"),
        ));
    }
    let mut problems = Vec::new();
    for lr in &ranges {
        let name = lr.metadata.name.clone().unwrap_or_default();
        for item in lr
            .spec
            .as_ref()
            .map(|s| s.limits.as_slice())
            .unwrap_or_default()
        {
            let get = |m: &Option<
                BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
            >,
                       k: &str| {
                m.as_ref()
                    .and_then(|m| m.get(k))
                    .and_then(|q| quantity(&q.0))
            };
            match item.type_.as_str() {
                "Container" => {
                    for r in &rendered.manifest.resources {
                        for c in r.containers() {
                            let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
                            for res in ["cpu", "memory"] {
                                let req = c
                                    .pointer(&format!("/resources/requests/{res}"))
                                    .and_then(Value::as_str)
                                    .and_then(quantity);
                                let lim = c
                                    .pointer(&format!("/resources/limits/{res}"))
                                    .and_then(Value::as_str)
                                    .and_then(quantity);
                                let at =
                                    format!("LimitRange {name}: {} container {cname}", r.component);
                                if let (Some(max), Some(l)) = (get(&item.max, res), lim)
                                    && l > max + 1e-9
                                {
                                    problems.push(format!(
                                        "{at}: limits.{res} {} is above the max {}",
                                        show(res, l),
                                        show(res, max)
                                    ));
                                }
                                if let (Some(min), Some(q)) = (get(&item.min, res), req)
                                    && q + 1e-9 < min
                                {
                                    problems.push(format!(
                                        "{at}: requests.{res} {} is below the min {}",
                                        show(res, q),
                                        show(res, min)
                                    ));
                                }
                                if let (Some(ratio), Some(q), Some(l)) =
                                    (get(&item.max_limit_request_ratio, res), req, lim)
                                    && q > 0.0
                                    && l / q > ratio + 1e-9
                                {
                                    problems.push(format!(
                                        "{at}: {res} limit/request ratio {:.1} is above {ratio}",
                                        l / q
                                    ));
                                }
                            }
                        }
                    }
                }
                "PersistentVolumeClaim" => {
                    for (who, _, _, size) in claims(rendered) {
                        let Some(size) = quantity(&size) else {
                            continue;
                        };
                        if let Some(max) = get(&item.max, "storage")
                            && size > max
                        {
                            problems.push(format!(
                                "LimitRange {name}: {who}: storage {} is above the max {}",
                                show("storage", size),
                                show("storage", max)
                            ));
                        }
                        if let Some(min) = get(&item.min, "storage")
                            && size < min
                        {
                            problems.push(format!(
                                "LimitRange {name}: {who}: storage {} is below the min {}",
                                show("storage", size),
                                show("storage", min)
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if problems.is_empty() {
        return Ok(Check::pass(
            NAME,
            format!(
                "every container and claim is within {} LimitRange(s) in {ns}",
                ranges.len()
            ),
        ));
    }
    Ok(Check::fail(
        NAME,
        format!(
            "{} request(s) or limit(s) are outside the LimitRange in namespace {ns}",
            problems.len()
        ),
    )
    .details(problems)
    .fix("change <component>.resources (or the volume sizes) to fit, or the LimitRange"))
}

pub(super) async fn capacity(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
) -> Result<Check, Error> {
    const NAME: &str = "capacity";
    let nodes: Api<Node> = Api::all(mgr.client().clone());
    let nodes = match nodes.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => return unreadable(NAME, "Nodes", Error::from_kube("Nodes", "list", e)),
    };
    let pods: Api<Pod> = Api::all(mgr.client().clone());
    let pods = match pods
        .list(&ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed"))
        .await
    {
        Ok(l) => l.items,
        Err(e) => return unreadable(NAME, "Pods", Error::from_kube("Pods", "list", e)),
    };
    let schedulable: Vec<&Node> = nodes
        .iter()
        .filter(|n| {
            let spec = n.spec.clone().unwrap_or_default();
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let tainted = spec
                .taints
                .unwrap_or_default()
                .iter()
                .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute");
            ready && !spec.unschedulable.unwrap_or(false) && !tainted
        })
        .collect();
    let (release, ns) = (&rendered.release.name, &rendered.release.namespace);
    let mut free: Vec<(f64, f64)> = Vec::new();
    for n in &schedulable {
        let alloc = n
            .status
            .as_ref()
            .and_then(|s| s.allocatable.clone())
            .unwrap_or_default();
        let a = |k: &str| alloc.get(k).and_then(|q| quantity(&q.0)).unwrap_or(0.0);
        let node = n.metadata.name.as_deref();
        let (mut cpu, mut mem) = (a("cpu"), a("memory"));
        for p in pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == node)
        {
            let ours = p.metadata.namespace.as_deref() == Some(ns.as_str())
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(crate::objects::LABEL_INSTANCE))
                    == Some(release);
            if ours {
                continue;
            }
            let spec = serde_json::to_value(p.spec.clone().unwrap_or_default()).unwrap_or_default();
            cpu -= pod_amount(&spec, "requests/cpu");
            mem -= pod_amount(&spec, "requests/memory");
        }
        free.push((cpu, mem));
    }
    let need_cpu = render_amount(rendered, "requests.cpu").unwrap_or(0.0);
    let need_mem = render_amount(rendered, "requests.memory").unwrap_or(0.0);
    let (free_cpu, free_mem) = free
        .iter()
        .fold((0.0, 0.0), |a, f| (a.0 + f.0.max(0.0), a.1 + f.1.max(0.0)));
    let summary = format!(
        "{} schedulable node(s) have {} and {} unrequested; the release requests {} and {}",
        schedulable.len(),
        show("cpu", free_cpu),
        show("memory", free_mem),
        show("cpu", need_cpu),
        show("memory", need_mem)
    );
    if need_cpu > free_cpu || need_mem > free_mem {
        return Ok(Check::warn(NAME, summary).fix(
            "add nodes or lower <component>.resources.requests; pods that do not fit stay Pending",
        ));
    }
    // The largest pod must fit on one node.
    let largest = workloads(rendered)
        .map(|(r, s)| {
            (
                r.component.clone(),
                pod_amount(s, "requests/cpu"),
                pod_amount(s, "requests/memory"),
            )
        })
        .fold(None::<(String, f64, f64)>, |acc, p| match acc {
            Some(a) if a.1 + a.2 / 1e9 >= p.1 + p.2 / 1e9 => Some(a),
            _ => Some(p),
        });
    if let Some((component, cpu, mem)) = largest
        && !free.iter().any(|f| f.0 >= cpu && f.1 >= mem)
    {
        return Ok(Check::warn(
            NAME,
            format!(
                "{summary}, but no single node has room for the {component} pod ({} and {})",
                show("cpu", cpu),
                show("memory", mem)
            ),
        )
        .fix("add a larger node or lower that component's requests"));
    }
    Ok(Check::pass(NAME, summary))
}
