//! `doctor`: read-only checks of a cluster against what a render needs, before anything is
//! written. Each check gives PASS, WARN or FAIL with a one-line reason and what to do; `apply`
//! runs them first and stops on a FAIL.
//!
//! Every call here is a read (GET, LIST, discovery) or a SelfSubjectAccessReview /
//! SelfSubjectReview, which the API server evaluates without storing anything.
//!
//! One file per check family: [`kubernetes`] (version, served APIs), [`storage`], [`ingress`]
//! (ingress class, Traefik Service), [`secret_store`] (the External Secrets Operator's store of
//! `secrets.externalSecret`), [`pod_security`], [`quota`] (quotas, limit ranges, node
//! capacity, on the arithmetic in [`resources`]), [`permissions`] and [`release`] (upgrade or
//! downgrade of the installed release).

mod airgap;
mod bootstrap;
mod database;
mod images;
mod ingress;
mod kubernetes;
mod permissions;
mod pod_security;
mod quota;
mod release;
mod resources;
mod secret_store;
mod storage;

use super::external::ServiceRef;
use super::inventory;
use super::{Error, ResourceManager};
use crate::release::RenderedRelease;
use airgap::airgap;
use database::database_connections;
use images::image_tags;
use ingress::{ingress_class, traefik};
use kubernetes::{api_resources, version};
use permissions::permissions;
use pod_security::pod_security;
use quota::{capacity, limit_ranges, quota};
use release::release;
use secret_store::secret_store;
use serde::Serialize;
use std::fmt::Write as _;
use storage::storage;

pub use resources::quantity;
pub use storage::read_write_many;

pub use crate::objects::TESTED_MINORS;
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
    // Every read runs at once; only the quota check waits for the inventory (a release that
    // exists already holds its share of the quota).
    let inventory_and_quota = async {
        let inventory = match inventory::read(mgr, &rendered.release.name, ns).await {
            Err(e) if e.is_unreachable() => return Err(e),
            other => other,
        };
        let exists = matches!(inventory, Ok(Some(_)));
        Ok((inventory, quota(mgr, rendered, exists).await))
    };
    let (
        inventory_and_quota,
        version,
        groups,
        store,
        storage,
        ingress,
        traefik,
        pss,
        limits,
        capacity,
        perms,
        offline,
        boot,
    ) = futures::join!(
        inventory_and_quota,
        version(mgr),
        api_resources(mgr, rendered),
        secret_store(mgr, rendered),
        storage(mgr, rendered),
        ingress_class(mgr, rendered),
        traefik(mgr, rendered, opts),
        pod_security(mgr, rendered),
        limit_ranges(mgr, rendered),
        capacity(mgr, rendered),
        permissions(mgr, rendered, opts),
        airgap(mgr, rendered),
        bootstrap::bootstrap(mgr, rendered),
    );
    let (inventory, quota) = inventory_and_quota?;
    let mut checks = vec![version?, groups?];
    checks.extend(store?);
    checks.extend(storage?);
    checks.push(ingress?);
    checks.push(traefik?);
    checks.push(pss?);
    checks.push(quota?);
    checks.push(limits?);
    checks.push(capacity?);
    checks.push(perms?);
    checks.extend(database_connections(rendered));
    checks.extend(boot?);
    checks.push(image_tags(rendered));
    checks.extend(offline?);
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
