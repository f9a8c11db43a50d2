//! Kubernetes version and API resources.

use super::{Check, OLDEST_MINOR, TESTED_MINORS, unreadable};
use crate::cluster::{Error, ResourceManager};
use crate::release::RenderedRelease;
use std::collections::{BTreeMap, BTreeSet};

fn minor_of(minor: &str) -> Option<u32> {
    minor
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

pub(super) async fn version(mgr: &ResourceManager) -> Result<Check, Error> {
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

pub(super) fn version_check(major: &str, minor: &str, git_version: &str) -> Check {
    const NAME: &str = "kubernetes";
    let (lo, hi) = TESTED_MINORS;
    let table = || {
        crate::objects::NKP_KUBERNETES
            .iter()
            .map(|n| format!("NKP {}: 1.{}–1.{}", n.nkp, n.minors.0, n.minors.1))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let minor = minor_of(minor);
    let validated_by = match (major, minor) {
        ("1", Some(m)) => crate::objects::nkp_releases_for(m),
        _ => Vec::new(),
    };
    match (major, minor) {
        ("1", Some(_)) if !validated_by.is_empty() => {
            let by: Vec<String> = validated_by
                .iter()
                .map(|n| format!("{} (1.{}–1.{})", n.nkp, n.minors.0, n.minors.1))
                .collect();
            Check::pass(
                NAME,
                format!(
                    "{git_version} is a version NKP validates: NKP {}",
                    by.join(", ")
                ),
            )
        }
        ("1", Some(m)) if m < OLDEST_MINOR => Check::fail(
            NAME,
            format!(
                "{git_version} is too old: the render needs Kubernetes 1.{OLDEST_MINOR} or newer"
            ),
        )
        .fix(format!("upgrade the cluster to a version in 1.{lo}–1.{hi}")),
        _ => Check::warn(
            NAME,
            format!(
                "{git_version} is outside 1.{lo}–1.{hi}, the versions NKP validates ({})",
                table()
            ),
        )
        .fix("it may work; watch `difyrender status` and run `difyrender test` after installing"),
    }
}

/// Every apiVersion and kind of the render is served by the cluster (discovery).
pub(super) async fn api_resources(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
) -> Result<Check, Error> {
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
    let (lo, hi) = TESTED_MINORS;
    let fix = if missing.iter().any(|m| m.starts_with("Middleware ")) {
        "install Traefik's CRDs (middlewares.traefik.io, part of NKP's Traefik), or serve Dify at expose.path=/, which needs no Middleware".to_owned()
    } else if missing.iter().any(|m| m.starts_with("ExternalSecret ")) {
        "install the External Secrets Operator (an NKP platform application), or create secrets.existingSecret yourself and set secrets.externalSecret.enabled=false".to_owned()
    } else if missing.iter().any(|m| m.starts_with("PodMonitor ")) {
        "install the Prometheus operator's CRDs (NKP's kube-prometheus-stack platform application), or set monitoring.enabled=false".to_owned()
    } else {
        format!(
            "use a cluster that serves these APIs (Kubernetes 1.{lo}–1.{hi}), or turn off what renders them"
        )
    };
    Ok(Check::fail(
        NAME,
        format!("the cluster does not serve {}", missing.join(", ")),
    )
    .fix(fix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::doctor::Verdict;

    #[test]
    fn version_range() {
        // Every minor of every NKP row passes, and names the rows that validate it.
        for row in crate::objects::NKP_KUBERNETES {
            for m in row.minors.0..=row.minors.1 {
                let check = version_check("1", &m.to_string(), &format!("v1.{m}.2"));
                assert_eq!(check.verdict, Verdict::Pass, "1.{m}");
                assert!(check.reason.contains(row.nkp), "{}", check.reason);
            }
        }
        let check = version_check("1", "35", "v1.35.2");
        assert_eq!(check.verdict, Verdict::Pass);
        assert!(
            check.reason.ends_with("NKP 2.18 (1.33–1.35)"),
            "{}",
            check.reason
        );
        assert!(!check.reason.contains("2.17"), "{}", check.reason);
        assert_eq!(version_check("1", "32+", "v1.32.3").verdict, Verdict::Pass);
        assert!(
            version_check("1", "33", "v1.33.1")
                .reason
                .contains("2.16 (1.31–1.33), 2.17 (1.32–1.34), 2.18 (1.33–1.35)")
        );
        // Just outside the table on both sides: WARN, naming the table.
        for (minor, v) in [("30", "v1.30.9"), ("36", "v1.36.0")] {
            let check = version_check("1", minor, v);
            assert_eq!(check.verdict, Verdict::Warn, "{v}");
            assert!(
                check.reason.contains("outside 1.31–1.35"),
                "{}",
                check.reason
            );
        }
        assert_eq!(version_check("1", "24", "v1.24.0").verdict, Verdict::Fail);
        assert_eq!(version_check("2", "0", "v2.0.0").verdict, Verdict::Warn);
    }
}
