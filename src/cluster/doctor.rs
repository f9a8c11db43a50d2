//! `doctor`: read-only checks of a cluster against what a render needs, before anything is
//! written. Each check gives PASS, WARN or FAIL with a one-line reason and what to do; `apply`
//! runs them first and stops on a FAIL.
//!
//! Every call here is a read (GET, LIST, discovery) or a SelfSubjectAccessReview /
//! SelfSubjectReview, which the API server evaluates without storing anything.

use super::external::{ServiceRef, address, lookup};
use super::inventory::{self, Inventory};
use super::podsecurity::{self, Level};
use super::{Error, ResourceManager, kinds};
use crate::manifest::Resource;
use crate::release::RenderedRelease;
use futures::StreamExt;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, Node, Pod, ResourceQuota};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Kubernetes minor versions (of 1.x) this chart is tested on: NKP 2.16–2.18 ship 1.32–1.34,
/// and the test control plane runs 1.34.
pub const TESTED_MINORS: (u32, u32) = (32, 34);
/// Below this, APIs the render uses (Pod Security admission, batch/v1 features) are missing.
const OLDEST_MINOR: u32 = 25;
const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const WARN_LABEL: &str = "pod-security.kubernetes.io/warn";

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One check: a verdict, why, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub reason: String,
    /// Detail lines, e.g. each component a Pod Security level rejects and the field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict, reason: impl Into<String>) -> Check {
        Check {
            name,
            verdict,
            reason: reason.into(),
            details: Vec::new(),
            fix: None,
        }
    }
    fn pass(name: &'static str, reason: impl Into<String>) -> Check {
        Check::new(name, Verdict::Pass, reason)
    }
    fn warn(name: &'static str, reason: impl Into<String>) -> Check {
        Check::new(name, Verdict::Warn, reason)
    }
    fn fail(name: &'static str, reason: impl Into<String>) -> Check {
        Check::new(name, Verdict::Fail, reason)
    }
    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
    fn details(mut self, details: Vec<String>) -> Check {
        self.details = details;
        self
    }
}

/// Everything doctor found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub release: String,
    pub namespace: String,
    pub dify_version: String,
    pub external_url: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }

    pub fn failed(&self) -> bool {
        self.count(Verdict::Fail) > 0
    }

    /// The checks that failed, one line each, for an error message.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| format!("{}: {}", c.name, c.reason))
            .collect()
    }

    /// The report for people: one line per check, details and the fix indented below it.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "doctor: release {} in namespace {} (Dify {}, {})\n",
            self.release, self.namespace, self.dify_version, self.external_url
        );
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            let _ = writeln!(
                out,
                "{}  {:width$}  {}",
                c.verdict.label(),
                c.name,
                c.reason
            );
            let pad = " ".repeat(width + 8);
            for d in &c.details {
                let _ = writeln!(out, "{pad}- {d}");
            }
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "{pad}fix: {fix}");
            }
        }
        let _ = writeln!(
            out,
            "{} passed, {} warnings, {} failed",
            self.count(Verdict::Pass),
            self.count(Verdict::Warn),
            self.count(Verdict::Fail)
        );
        out
    }
}

/// What doctor knows beyond the render.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the Traefik Service is.
    pub traefik: ServiceRef,
    /// Whether external.host was given (else apply looks it up from the Traefik Service).
    pub host_given: bool,
}

/// A read that was refused is a warning (doctor could not check), except when the API server
/// cannot be reached at all: then the whole run fails.
fn unreadable(name: &'static str, what: &str, e: Error) -> Result<Check, Error> {
    if e.is_unreachable() {
        return Err(e);
    }
    Ok(Check::warn(name, format!("could not read {what}: {e}"))
        .fix("run doctor with an account that may read it, or check it by hand"))
}

/// Runs every check. Fails only when the API server cannot be reached.
pub async fn run(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    opts: &Options,
) -> Result<Report, Error> {
    let ns = &rendered.release.namespace;
    let inventory = inventory::read(mgr, &rendered.release.name, ns).await;
    let inventory = match inventory {
        Ok(inv) => Ok(inv),
        Err(e) if e.is_unreachable() => return Err(e),
        Err(e) => Err(e),
    };
    let exists = matches!(inventory, Ok(Some(_)));
    let (version, groups, storage, ingress, traefik, pss, quota, limits, capacity, perms) = futures::join!(
        version(mgr),
        api_resources(mgr, rendered),
        storage(mgr, rendered),
        ingress_class(mgr, rendered),
        traefik(mgr, rendered, opts),
        pod_security(mgr, rendered),
        quota(mgr, rendered, exists),
        limit_ranges(mgr, rendered),
        capacity(mgr, rendered),
        permissions(mgr, rendered, opts),
    );
    let mut checks = vec![version?, groups?];
    checks.extend(storage?);
    checks.push(ingress?);
    checks.push(traefik?);
    checks.push(pss?);
    checks.push(quota?);
    checks.push(limits?);
    checks.push(capacity?);
    checks.push(perms?);
    checks.extend(database_connections(rendered));
    checks.push(image_tags(rendered));
    checks.push(match inventory {
        Ok(inv) => release(rendered, inv.as_ref()),
        Err(e) => unreadable("release", "the release inventory", e)?,
    });
    Ok(Report {
        release: rendered.release.name.clone(),
        namespace: ns.clone(),
        dify_version: rendered.dify_version().to_owned(),
        external_url: rendered.external_url(),
        checks,
    })
}

/// Whether an image reference floats: `:latest`, or no tag and no digest.
fn floats(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let name = image.rsplit('/').next().unwrap_or(image);
    name.rsplit_once(':').is_none_or(|(_, tag)| tag == "latest")
}

/// Every image pinned to a tag: a `:latest` (or untagged) override changes what runs whenever
/// a node pulls again, and a rollback cannot return to it.
fn image_tags(rendered: &RenderedRelease) -> Check {
    let floating: Vec<String> = rendered
        .dify
        .image_list
        .iter()
        .filter(|i| floats(&i.image))
        .map(|i| format!("{}: {}", i.component, i.image))
        .collect();
    if floating.is_empty() {
        return Check::pass("images", "every image is pinned to a tag");
    }
    Check::warn(
        "images",
        format!("{} image(s) float on :latest or no tag", floating.len()),
    )
    .details(floating)
    .fix("set images.<component>.tag to a version tag (`difyrender images` lists the release's pins)")
}

// ---------------------------------------------------------------------------------------------
// Kubernetes version and API resources

/// An external PostgreSQL must allow every connection the release can open; doctor cannot read
/// its max_connections from outside the cluster, so it says the number to compare (a bundled
/// server is sized for it at render time).
fn database_connections(rendered: &RenderedRelease) -> Option<Check> {
    if rendered.values.pointer("/postgresql/enabled") != Some(&serde_json::Value::Bool(false)) {
        return None;
    }
    let budget = crate::release::connections::budget(&rendered.manifest);
    Some(
        Check::warn(
            "postgresql connections",
            format!(
                "the release can open {} connections to the external PostgreSQL ({}); its max_connections is not visible from here",
                budget.needed(),
                budget.explain()
            ),
        )
        .fix(format!(
            "make sure the server allows at least {} (SHOW max_connections;), minus what other clients use",
            budget.needed()
        )),
    )
}

fn minor_of(minor: &str) -> Option<u32> {
    minor
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

async fn version(mgr: &ResourceManager) -> Result<Check, Error> {
    const NAME: &str = "kubernetes";
    let info = match mgr.client().apiserver_version().await {
        Ok(info) => info,
        Err(e) => {
            return unreadable(
                NAME,
                "the API server version",
                Error::from_kube("/version", "get", e),
            );
        }
    };
    Ok(version_check(&info.major, &info.minor, &info.git_version))
}

fn version_check(major: &str, minor: &str, git_version: &str) -> Check {
    const NAME: &str = "kubernetes";
    let (lo, hi) = TESTED_MINORS;
    let range = format!("1.{lo}–1.{hi}");
    match (major, minor_of(minor)) {
        ("1", Some(m)) if (lo..=hi).contains(&m) => Check::pass(
            NAME,
            format!("{git_version} is within the range this chart is tested on ({range})"),
        ),
        ("1", Some(m)) if m < OLDEST_MINOR => Check::fail(
            NAME,
            format!(
                "{git_version} is too old: the render needs Kubernetes 1.{OLDEST_MINOR} or newer"
            ),
        )
        .fix(format!("upgrade the cluster to a version in {range}")),
        _ => Check::warn(
            NAME,
            format!("{git_version} is outside the range this chart is tested on ({range})"),
        )
        .fix("it may work; watch `difyrender status` and run `difyrender test` after installing"),
    }
}

/// Every apiVersion and kind of the render is served by the cluster (discovery).
async fn api_resources(mgr: &ResourceManager, rendered: &RenderedRelease) -> Result<Check, Error> {
    const NAME: &str = "api-resources";
    let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &rendered.manifest.resources {
        wanted.entry(&r.api_version).or_default().insert(&r.kind);
    }
    let client = mgr.client();
    let lists = futures::future::join_all(wanted.keys().map(|gv| async move {
        if gv.contains('/') {
            client.list_api_group_resources(gv).await
        } else {
            client.list_core_api_resources(gv).await
        }
    }))
    .await;
    let mut missing = Vec::new();
    for ((gv, kinds), list) in wanted.iter().zip(lists) {
        let served: BTreeSet<String> = match list {
            Ok(list) => list.resources.into_iter().map(|r| r.kind).collect(),
            // A group that is not served answers a plain-text 404, not a Status.
            Err(kube::Error::Api(s)) if s.code == 404 => BTreeSet::new(),
            Err(e) => {
                return unreadable(
                    NAME,
                    &format!("discovery of {gv}"),
                    Error::from_kube(gv, "discover", e),
                );
            }
        };
        for kind in kinds {
            if !served.contains(*kind) {
                missing.push(format!("{kind} ({gv})"));
            }
        }
    }
    if missing.is_empty() {
        let n: usize = wanted.values().map(BTreeSet::len).sum();
        return Ok(Check::pass(
            NAME,
            format!(
                "all {n} kinds of the render are served ({} API versions)",
                wanted.len()
            ),
        ));
    }
    let fix = if missing.iter().any(|m| m.starts_with("Middleware ")) {
        "install Traefik's CRDs (middlewares.traefik.io, part of NKP's Traefik), or serve Dify at expose.path=/, which needs no Middleware"
    } else if missing.iter().any(|m| m.starts_with("ExternalSecret ")) {
        "install the External Secrets Operator (an NKP platform application), or create secrets.existingSecret yourself and set secrets.externalSecret.enabled=false"
    } else if missing.iter().any(|m| m.starts_with("PodMonitor ")) {
        "install the Prometheus operator's CRDs (NKP's kube-prometheus-stack platform application), or set monitoring.enabled=false"
    } else {
        "use a cluster that serves these APIs (Kubernetes 1.32–1.34), or turn off what renders them"
    };
    Ok(Check::fail(
        NAME,
        format!("the cluster does not serve {}", missing.join(", ")),
    )
    .fix(fix))
}

// ---------------------------------------------------------------------------------------------
// Storage

/// Storage class and access modes of every claim: PVCs and StatefulSet claim templates.
fn claims(rendered: &RenderedRelease) -> Vec<(String, String, Vec<String>, String)> {
    let mut out = Vec::new();
    let mut add = |who: String, spec: &Value| {
        let class = spec
            .get("storageClassName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let modes = spec
            .get("accessModes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let size = spec
            .pointer("/resources/requests/storage")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        out.push((who, class, modes, size));
    };
    for r in &rendered.manifest.resources {
        if r.kind == "PersistentVolumeClaim" {
            add(r.id(), &r.body["spec"]);
        }
        for t in r
            .body
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = t
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            add(format!("{} claim {name}", r.id()), &t["spec"]);
        }
    }
    out
}

/// Whether a provisioner can give ReadWriteMany volumes: known file provisioners pass, Nutanix
/// Volumes (block) fails, anything else is unknown.
pub fn read_write_many(
    provisioner: &str,
    parameters: &BTreeMap<String, String>,
) -> (Verdict, String) {
    if provisioner == "csi.nutanix.com" {
        return match parameters.get("storageType").map(String::as_str) {
            Some("NutanixFiles") => (
                Verdict::Pass,
                "Nutanix Files (storageType NutanixFiles) serves ReadWriteMany".into(),
            ),
            other => (
                Verdict::Fail,
                format!(
                    "csi.nutanix.com with storageType {} is Nutanix Volumes, block storage: ReadWriteOnce only",
                    other.unwrap_or("unset (NutanixVolumes)")
                ),
            ),
        };
    }
    const FILE: &[&str] = &[
        "nfs",
        "cephfs.csi.ceph.com",
        "efs.csi.aws.com",
        "file.csi.azure.com",
        "filestore.csi.storage.gke.io",
        "kubernetes.io/azure-file",
    ];
    if FILE.iter().any(|f| provisioner.contains(f)) {
        return (
            Verdict::Pass,
            format!("{provisioner} is a file provisioner that serves ReadWriteMany"),
        );
    }
    (
        Verdict::Warn,
        format!("cannot tell whether {provisioner} serves ReadWriteMany"),
    )
}

async fn storage(mgr: &ResourceManager, rendered: &RenderedRelease) -> Result<Vec<Check>, Error> {
    const NAME: &str = "storage-class";
    const RWX: &str = "read-write-many";
    let claims = claims(rendered);
    let classes: BTreeSet<&str> = claims.iter().map(|c| c.1.as_str()).collect();
    if classes.is_empty() {
        return Ok(vec![Check::pass(NAME, "the render has no volume claims")]);
    }
    let api: Api<StorageClass> = Api::all(mgr.client().clone());
    let all = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return Ok(vec![unreadable(
                NAME,
                "StorageClasses",
                Error::from_kube("StorageClasses", "list", e),
            )?]);
        }
    };
    let names: Vec<String> = all
        .iter()
        .map(|c| {
            let name = c.metadata.name.clone().unwrap_or_default();
            let default = c
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
                .is_some_and(|v| v == "true");
            if default {
                format!("{name} (default)")
            } else {
                name
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut details = Vec::new();
    let mut missing = Vec::new();
    for class in &classes {
        match all
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(*class))
        {
            None if class.is_empty() => missing.push("(none: the cluster default)".to_owned()),
            None => missing.push((*class).to_owned()),
            Some(sc) => {
                let mode = sc.volume_binding_mode.as_deref().unwrap_or("Immediate");
                let when = if mode == "WaitForFirstConsumer" {
                    "volumes bind when their first pod is scheduled"
                } else {
                    "volumes bind when created"
                };
                details.push(format!(
                    "{class}: provisioner {}, volumeBindingMode {mode} ({when})",
                    sc.provisioner
                ));
                let rwx: Vec<&str> = claims
                    .iter()
                    .filter(|c| c.1 == *class && c.2.iter().any(|m| m == "ReadWriteMany"))
                    .map(|c| c.0.as_str())
                    .collect();
                if !rwx.is_empty() {
                    let params = sc.parameters.clone().unwrap_or_default();
                    let (verdict, why) = read_write_many(&sc.provisioner, &params);
                    let mut check = Check::new(
                        RWX,
                        verdict,
                        format!("{} ReadWriteMany claim(s) on {class}: {why}", rwx.len()),
                    )
                    .details(rwx.iter().map(|s| s.to_string()).collect());
                    if verdict != Verdict::Pass {
                        check = check.fix("use a file class (NKP: a Nutanix Files class, storageType NutanixFiles; or an NFS class) for storage.storageClassName, or storage.accessMode=ReadWriteOnce");
                    }
                    out.push(check);
                }
            }
        }
    }
    let check =
        if missing.is_empty() {
            Check::pass(
                NAME,
                format!(
                    "StorageClass {} exists",
                    classes.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            )
            .details(details)
        } else {
            Check::fail(
            NAME,
            format!(
                "StorageClass {} does not exist (the cluster has: {})",
                missing.join(", "),
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ),
        )
        .fix("set storage.storageClassName to one of the cluster's classes (NKP: nutanix-volume)")
        };
    out.insert(0, check);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Ingress class and the Traefik Service

async fn ingress_class(mgr: &ResourceManager, rendered: &RenderedRelease) -> Result<Check, Error> {
    const NAME: &str = "ingress-class";
    let wanted: BTreeSet<&str> = rendered
        .manifest
        .resources
        .iter()
        .filter(|r| r.kind == "Ingress")
        .filter_map(|r| {
            r.body
                .pointer("/spec/ingressClassName")
                .and_then(Value::as_str)
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Check::pass(NAME, "the render has no Ingress"));
    }
    let api: Api<IngressClass> = Api::all(mgr.client().clone());
    let all = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return unreadable(
                NAME,
                "IngressClasses",
                Error::from_kube("IngressClasses", "list", e),
            );
        }
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in wanted {
        match all
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
        {
            Some(c) => found.push(format!(
                "{name} (controller {})",
                c.spec
                    .as_ref()
                    .and_then(|s| s.controller.clone())
                    .unwrap_or_default()
            )),
            None => missing.push(name),
        }
    }
    if missing.is_empty() {
        return Ok(Check::pass(
            NAME,
            format!("IngressClass {} exists", found.join(", ")),
        ));
    }
    let existing: Vec<String> = all.iter().filter_map(|c| c.metadata.name.clone()).collect();
    Ok(Check::fail(
        NAME,
        format!(
            "IngressClass {} does not exist (the cluster has: {}): no controller would serve Dify's routes",
            missing.join(", "),
            if existing.is_empty() { "none".to_owned() } else { existing.join(", ") }
        ),
    )
    .fix("set expose.ingressClassName to the Traefik class (NKP: kommander-traefik)"))
}

async fn traefik(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    opts: &Options,
) -> Result<Check, Error> {
    const NAME: &str = "traefik";
    let host = rendered
        .values
        .pointer("/external/host")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let what = match &opts.traefik {
        ServiceRef::Named { namespace, name } => format!("Service {namespace}/{name}"),
        ServiceRef::AnyNamespace(name) => format!("a Service named {name}"),
    };
    let svc = match lookup(mgr, &opts.traefik).await {
        Ok(s) => s,
        Err(e) => return unreadable(NAME, "the Traefik Service", e),
    };
    let Some(svc) = svc else {
        return Ok(if opts.host_given {
            Check::warn(
                NAME,
                format!(
                    "{what} was not found, so doctor cannot confirm that {host} reaches Traefik"
                ),
            )
            .fix("name Traefik's Service with --traefik-service NAMESPACE/NAME")
        } else {
            Check::fail(NAME, format!("{what} was not found and external.host is not given: apply would wait for an address that never comes"))
                .fix("give --external-host (or external.host), or name Traefik's Service with --traefik-service NAMESPACE/NAME")
        });
    };
    let id = format!(
        "{}/{}",
        svc.metadata.namespace.clone().unwrap_or_default(),
        svc.metadata.name.clone().unwrap_or_default()
    );
    let Some(addr) = address(&svc) else {
        return Ok(Check::warn(
            NAME,
            format!("Service {id} has no LoadBalancer address yet (status.loadBalancer.ingress is empty)"),
        )
        .fix(if opts.host_given {
            "check that the LoadBalancer (MetalLB on NKP) assigns it an address"
        } else {
            "apply waits for it; check that the LoadBalancer (MetalLB on NKP) assigns one, or give --external-host"
        }));
    };
    if !opts.host_given || host == addr {
        return Ok(Check::pass(
            NAME,
            format!("Service {id} has the address {addr}, which external.host uses"),
        ));
    }
    if host.parse::<std::net::IpAddr>().is_err() {
        let resolved = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            tokio::net::lookup_host((host.to_owned(), 443)),
        )
        .await;
        if let Ok(Ok(addrs)) = resolved {
            let ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
            if ips.contains(&addr) {
                return Ok(Check::pass(
                    NAME,
                    format!("Service {id} has the address {addr}, which {host} resolves to"),
                ));
            }
        }
    }
    Ok(Check::warn(
        NAME,
        format!("external.host {host} is not Service {id}'s address {addr}"),
    )
    .fix(format!("use external.host={addr}, or make sure {host} reaches Traefik (a DNS name or another load balancer)")))
}

// ---------------------------------------------------------------------------------------------
// Pod Security

fn workloads(rendered: &RenderedRelease) -> impl Iterator<Item = (&Resource, &Value)> {
    rendered
        .manifest
        .resources
        .iter()
        .filter_map(|r| podsecurity::pod_spec(&r.body).map(|s| (r, s)))
}

async fn pod_security(mgr: &ResourceManager, rendered: &RenderedRelease) -> Result<Check, Error> {
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

// ---------------------------------------------------------------------------------------------
// Quotas, limit ranges, capacity

/// A Kubernetes quantity in base units (cores, bytes, counts): the manifest checks' parser.
pub fn quantity(q: &str) -> Option<f64> {
    crate::manifest::validate::parse_quantity(q.trim())
}

/// A quantity as a values file may give it: a string, or a plain number (`--set cpu=2`).
fn value_quantity(v: &Value) -> Option<f64> {
    v.as_str().and_then(quantity).or_else(|| v.as_f64())
}

fn show(resource: &str, v: f64) -> String {
    if resource.contains("memory") || resource.contains("storage") {
        format!("{:.2}Gi", v / 1024f64.powi(3))
    } else if resource.contains("cpu") {
        format!("{v:.2} CPU")
    } else {
        format!("{v}")
    }
}

/// Resources a pod template asks for: the sum over containers, or the largest init container
/// if that is more, as the scheduler and quota count them.
fn pod_amount(spec: &Value, what: &str) -> f64 {
    let of = |c: &Value| {
        c.pointer(&format!("/resources/{what}"))
            .and_then(value_quantity)
            .unwrap_or(0.0)
    };
    let list = |k: &str| {
        spec.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let sum: f64 = list("containers").iter().map(of).sum();
    let init = list("initContainers").iter().map(of).fold(0.0, f64::max);
    sum.max(init)
}

fn replicas(r: &Resource) -> f64 {
    r.body
        .pointer("/spec/replicas")
        .and_then(Value::as_f64)
        .unwrap_or(1.0)
}

/// What the running release (Deployments and StatefulSets; Jobs complete) takes of a quota key.
fn render_amount(rendered: &RenderedRelease, key: &str) -> Option<f64> {
    let steady = || {
        rendered
            .manifest
            .resources
            .iter()
            .filter(|r| matches!(r.kind.as_str(), "Deployment" | "StatefulSet"))
    };
    let pods = |what: &str| -> f64 {
        steady()
            .filter_map(|r| {
                podsecurity::pod_spec(&r.body).map(|s| replicas(r) * pod_amount(s, what))
            })
            .sum()
    };
    let count = |kind: &str| {
        rendered
            .manifest
            .resources
            .iter()
            .filter(|r| r.kind == kind)
            .count() as f64
    };
    let claims = claims(rendered);
    let claim_count = claims.len() as f64;
    Some(match key {
        "requests.cpu" | "cpu" => pods("requests/cpu"),
        "requests.memory" | "memory" => pods("requests/memory"),
        "limits.cpu" => pods("limits/cpu"),
        "limits.memory" => pods("limits/memory"),
        "pods" => steady().map(replicas).sum(),
        "persistentvolumeclaims" => claim_count,
        "requests.storage" => claims.iter().filter_map(|c| quantity(&c.3)).sum(),
        "services" => count("Service"),
        "secrets" => count("Secret"),
        "configmaps" => count("ConfigMap") + 1.0,
        "services.loadbalancers" | "services.nodeports" => {
            let t = if key.ends_with("loadbalancers") {
                "LoadBalancer"
            } else {
                "NodePort"
            };
            rendered
                .manifest
                .resources
                .iter()
                .filter(|r| {
                    r.kind == "Service"
                        && r.body.pointer("/spec/type").and_then(Value::as_str) == Some(t)
                })
                .count() as f64
        }
        k if k.starts_with("count/") => {
            let (resource, group) = k["count/".len()..]
                .split_once('.')
                .unwrap_or((&k["count/".len()..], ""));
            rendered
                .manifest
                .resources
                .iter()
                .filter(|r| {
                    let (ar, _) = kinds::api_resource(r);
                    ar.plural == resource && ar.group == group
                })
                .count() as f64
        }
        _ => return None,
    })
}

async fn quota(
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

async fn limit_ranges(mgr: &ResourceManager, rendered: &RenderedRelease) -> Result<Check, Error> {
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

async fn capacity(mgr: &ResourceManager, rendered: &RenderedRelease) -> Result<Check, Error> {
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
                    .and_then(|l| l.get("app.kubernetes.io/instance"))
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

// ---------------------------------------------------------------------------------------------
// Permissions

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

async fn permissions(
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

// ---------------------------------------------------------------------------------------------
// The release

fn version_parts(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn release(rendered: &RenderedRelease, old: Option<&Inventory>) -> Check {
    const NAME: &str = "release";
    let next = Inventory::of(rendered, false);
    let target = rendered.dify_version();
    let Some(old) = old else {
        return Check::pass(
            NAME,
            format!(
                "not installed yet: apply creates {} objects (Dify {target})",
                next.entries.len()
            ),
        );
    };
    let added = next.entries.difference(&old.entries).count();
    let removed = old.entries.difference(&next.entries).count();
    let state = serde_json::to_value(old.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let change = if old.dify_version == target {
        format!("stays at Dify {target}")
    } else {
        format!("Dify {} → {target}", old.dify_version)
    };
    let values = if old.values_hash == inventory::values_hash(&rendered.values) {
        "same values"
    } else {
        "changed values"
    };
    let reason = format!(
        "installed ({state}, last applied {}): {change}, {values}; {added} object(s) to add, {removed} to prune",
        old.last_applied
    );
    if version_parts(target) < version_parts(&old.dify_version) {
        return Check::warn(NAME, reason).fix(format!(
            "Dify does not migrate its database backwards: keep images.dify.tag={} or restore a backup",
            old.dify_version
        ));
    }
    if old.state == inventory::State::Pending {
        return Check::warn(NAME, reason)
            .fix("the last apply did not finish; this apply completes it");
    }
    Check::pass(NAME, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity("250m"), Some(0.25));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1G"), Some(1e9));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("1.5Gi"), Some(1.5 * 1024f64.powi(3)));
        assert_eq!(quantity("12x"), None);
    }

    #[test]
    fn version_range() {
        assert_eq!(version_check("1", "34", "v1.34.10").verdict, Verdict::Pass);
        assert_eq!(version_check("1", "32+", "v1.32.3").verdict, Verdict::Pass);
        assert!(floats("ubuntu/squid:latest") && floats("registry:5000/squid"));
        assert!(!floats("registry:5000/squid:6.6") && !floats("squid@sha256:0123"));
        assert_eq!(version_check("1", "31", "v1.31.0").verdict, Verdict::Warn);
        assert_eq!(version_check("1", "35", "v1.35.0").verdict, Verdict::Warn);
        assert_eq!(version_check("1", "24", "v1.24.0").verdict, Verdict::Fail);
    }

    #[test]
    fn read_write_many_by_provisioner() {
        let files = BTreeMap::from([("storageType".to_owned(), "NutanixFiles".to_owned())]);
        let volumes = BTreeMap::from([("storageType".to_owned(), "NutanixVolumes".to_owned())]);
        assert_eq!(read_write_many("csi.nutanix.com", &files).0, Verdict::Pass);
        assert_eq!(
            read_write_many("csi.nutanix.com", &volumes).0,
            Verdict::Fail
        );
        assert_eq!(
            read_write_many("csi.nutanix.com", &BTreeMap::new()).0,
            Verdict::Fail
        );
        assert_eq!(
            read_write_many("nfs.csi.k8s.io", &BTreeMap::new()).0,
            Verdict::Pass
        );
        assert_eq!(
            read_write_many(
                "k8s-sigs.io/nfs-subdir-external-provisioner",
                &BTreeMap::new()
            )
            .0,
            Verdict::Pass
        );
        assert_eq!(
            read_write_many("kubernetes.io/host-path", &BTreeMap::new()).0,
            Verdict::Warn
        );
    }

    #[test]
    fn pod_amounts_take_the_larger_of_containers_and_init() {
        let spec = serde_json::json!({
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
            "containers": [{"resources": {"requests": {"cpu": "250m"}}}, {"resources": {"requests": {"cpu": "500m"}}}]
        });
        assert_eq!(pod_amount(&spec, "requests/cpu"), 2.0);
        let spec = serde_json::json!({"containers": [{"resources": {"requests": {"cpu": "250m"}}}, {"resources": {"requests": {"cpu": "500m"}}}]});
        assert_eq!(pod_amount(&spec, "requests/cpu"), 0.75);
    }
}
