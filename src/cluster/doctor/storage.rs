//! Storage: classes, access modes and claims.

use super::{Check, Verdict, unreadable};
use crate::cluster::{Error, ResourceManager};
use crate::release::RenderedRelease;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Storage class and access modes of every claim: PVCs and StatefulSet claim templates.
pub(super) fn claims(rendered: &RenderedRelease) -> Vec<(String, String, Vec<String>, String)> {
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

pub(super) async fn storage(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
) -> Result<Vec<Check>, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
