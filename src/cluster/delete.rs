//! Deleting owned objects, for prune and uninstall: in reverse stage order, a stage at a time,
//! waiting until each stage is gone. Data (volume claims, the keys Secret) is kept unless the
//! caller asks for it to go.

use super::inventory::Entry;
use super::progress::Progress;
use super::wait::Deadline;
use super::{Error, ResourceManager};
use crate::objects::{APP_NAME, LABEL_INSTANCE, LABEL_NAME};
use futures::StreamExt;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What a deletion did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteReport {
    pub deleted: Vec<String>,
    /// Kept objects and why.
    pub kept: Vec<(String, String)>,
}

/// Why an owned object is kept, for reports.
pub fn keep_reason(e: &Entry) -> &'static str {
    if e.kind == "Namespace" {
        "the namespace is deleted only by uninstall, when difyrender created it and it is left empty"
    } else if e.kind == "PersistentVolumeClaim" {
        "a volume claim holds data; --delete-data deletes it"
    } else {
        "the keys Secret holds the master key and the passwords the volumes were created with; --delete-data deletes it"
    }
}

/// Deletes `entries` in reverse stage order. With `wait`, each stage must be gone before the
/// next is deleted.
pub async fn delete_entries(
    mgr: &ResourceManager,
    entries: &[Entry],
    delete_data: bool,
    wait: Option<Deadline>,
    progress: &Progress,
) -> Result<DeleteReport, Error> {
    let mut report = DeleteReport::default();
    let mut stages: Vec<_> = entries.iter().map(Entry::stage).collect();
    stages.sort();
    stages.dedup();
    for stage in stages.into_iter().rev() {
        let mut doomed = Vec::new();
        for e in entries.iter().filter(|e| e.stage() == stage) {
            if e.kind == "Namespace" || (e.is_data() && !delete_data) {
                progress.line(format!("kept {}: {}", e.id(), keep_reason(e)));
                report.kept.push((e.id(), keep_reason(e).to_owned()));
            } else {
                doomed.push(e);
            }
        }
        let results: Vec<Result<bool, Error>> =
            futures::stream::iter(doomed.iter().map(|e| {
                mgr.delete_object(&e.api_version, &e.kind, e.namespace.as_deref(), &e.name)
            }))
            .buffer_unordered(16)
            .collect()
            .await;
        for r in results {
            r?;
        }
        for e in &doomed {
            progress.line(format!("deleted {}", e.id()));
            report.deleted.push(e.id());
        }
        if let Some(deadline) = wait {
            wait_gone(mgr, &doomed, deadline, progress).await?;
        }
    }
    Ok(report)
}

/// Polls until every object is gone.
pub async fn wait_gone(
    mgr: &ResourceManager,
    entries: &[&Entry],
    deadline: Deadline,
    progress: &Progress,
) -> Result<(), Error> {
    let mut reported = false;
    loop {
        let mut left = Vec::new();
        for e in entries {
            if let Some(live) = mgr.get_entry(e).await? {
                let why = match live
                    .pointer("/metadata/finalizers")
                    .and_then(|f| f.as_array())
                {
                    Some(f) if !f.is_empty() => format!("finalizers {f:?} pending"),
                    _ => "being deleted".to_owned(),
                };
                left.push((e.id(), why));
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if !reported {
            for (id, why) in &left {
                progress.line(format!("waiting for {id} to be gone: {why}"));
            }
            reported = true;
        }
        if Instant::now() >= deadline.at {
            return Err(Error::Timeout {
                elapsed: deadline.budget.as_secs(),
                waiting: left,
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Labels of every volume claim of a release, including those StatefulSets create from their
/// claim templates (which are not rendered objects, so not in the inventory).
fn claim_selector(release: &str) -> String {
    format!("{LABEL_INSTANCE}={release},{LABEL_NAME}={APP_NAME}")
}

/// Uninstalls a release: every owned object in reverse order; data kept unless `delete_data`;
/// the namespace deleted only when difyrender created it and nothing else is left in it.
/// `Ok(None)` when the release has no inventory.
pub async fn uninstall(
    mgr: &ResourceManager,
    release: &str,
    namespace: &str,
    delete_data: bool,
    wait: Option<Deadline>,
    progress: &Progress,
) -> Result<Option<DeleteReport>, Error> {
    let Some(mut inv) = super::inventory::read(mgr, release, namespace).await? else {
        return Ok(None);
    };
    let entries: Vec<Entry> = inv.entries.iter().cloned().collect();
    let mut report = delete_entries(mgr, &entries, delete_data, wait, progress).await?;
    if delete_data {
        let claims: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            kube::Api::namespaced(mgr.client().clone(), namespace);
        let list = claims
            .list(&kube::api::ListParams::default().labels(&claim_selector(release)))
            .await
            .map_err(|e| {
                Error::from_kube(
                    &format!("PersistentVolumeClaims of release {release}"),
                    "list",
                    e,
                )
            })?;
        let extra: Vec<Entry> = list
            .items
            .iter()
            .filter_map(|pvc| pvc.metadata.name.clone())
            .map(|name| Entry {
                api_version: "v1".into(),
                kind: "PersistentVolumeClaim".into(),
                namespace: Some(namespace.to_owned()),
                name,
                component: "storage".into(),
            })
            .collect();
        let more = delete_entries(mgr, &extra, true, wait, progress).await?;
        report.deleted.extend(more.deleted);
        let inventory_entry = inv.to_resource();
        mgr.delete_object("v1", "ConfigMap", Some(namespace), &inventory_entry.name)
            .await?;
        progress.line(format!("deleted {}", inventory_entry.id()));
        if inv.namespace_created {
            delete_namespace_if_empty(mgr, namespace, release, wait, progress, &mut report).await?;
        }
    } else {
        // What is kept stays on record, so a later `uninstall --delete-data` or a re-install finds it.
        inv.entries.retain(|e| e.is_data() || e.kind == "Namespace");
        inv.state = super::inventory::State::Uninstalled;
        super::inventory::write(mgr, &inv).await?;
    }
    Ok(Some(report))
}

/// Deletes the namespace if nothing but Kubernetes' own objects is left in it. The release's
/// own pods (its labels, from its pod templates) do not count: the garbage collector deletes
/// them after their Deployments and Jobs (background propagation), and may not have yet.
async fn delete_namespace_if_empty(
    mgr: &ResourceManager,
    namespace: &str,
    release: &str,
    wait: Option<Deadline>,
    progress: &Progress,
    report: &mut DeleteReport,
) -> Result<(), Error> {
    use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
    let lp = kube::api::ListParams::default();
    let client = mgr.client().clone();
    let mut others = Vec::new();
    macro_rules! count {
        ($t:ty, $lp:expr, $skip:expr) => {{
            let api: kube::Api<$t> = kube::Api::namespaced(client.clone(), namespace);
            let list = api
                .list($lp)
                .await
                .map_err(|e| Error::from_kube(&format!("Namespace/{namespace}"), "list", e))?;
            let skip: fn(&str) -> bool = $skip;
            others.extend(
                list.items
                    .iter()
                    .filter(|o| o.metadata.deletion_timestamp.is_none())
                    .filter_map(|o| o.metadata.name.clone())
                    .filter(|n| !skip(n)),
            );
        }};
    }
    let not_the_releases_pods =
        kube::api::ListParams::default().labels(&format!("{LABEL_INSTANCE}!={release}"));
    count!(Pod, &not_the_releases_pods, |_| false);
    let other_pods = kube::api::ListParams::default().labels(&format!(
        "{LABEL_INSTANCE}={release},{LABEL_NAME}!={APP_NAME}"
    ));
    count!(Pod, &other_pods, |_| false);
    count!(Service, &lp, |_| false);
    count!(PersistentVolumeClaim, &lp, |_| false);
    count!(ConfigMap, &lp, |n| n == "kube-root-ca.crt");
    count!(Secret, &lp, |_| false);
    let entry = Entry {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: namespace.to_owned(),
        component: "namespace".into(),
    };
    if !others.is_empty() {
        let reason = format!(
            "it still holds objects difyrender does not own: {}",
            others.join(", ")
        );
        progress.line(format!("kept {}: {reason}", entry.id()));
        report.kept.push((entry.id(), reason));
        return Ok(());
    }
    mgr.delete_object("v1", "Namespace", None, namespace)
        .await?;
    progress.line(format!("deleted {}", entry.id()));
    report.deleted.push(entry.id());
    if let Some(deadline) = wait {
        wait_gone(mgr, &[&entry], deadline, progress).await?;
    }
    Ok(())
}
