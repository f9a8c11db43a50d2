//! The migration gate of `apply`, end to end on the real control plane (scripts/testenv): the
//! migration pod is held Running (kwok completes every other Job pod at once, so a check of
//! timestamps could not tell whether apply waited), and the test decides how it ends.
//!
//! The hold: `migration.pod.labels.testenv-hold` puts a label on the migration pod that the
//! test control plane's kwok stage `pod-complete` skips (hack/testenv/kwok/stages.yaml); kwok
//! still makes the pod Running. The test then writes the pod's end into its status, as the
//! container would (`common::cluster::end_pod`), and the real Job controller acts on it.

mod common;

use common::cluster::{self, HOLD_MIGRATION, Running, ok};
use common::*;
use serde_json::Value;
use std::process::Output;

const MASTER: &str = "migration-test-master-key-0123456789";

shared_cluster!("migration");

/// `difyrender apply` of release `tag` in `ns`, not yet waited for.
fn start_apply(ns: &str, tag: &str, extra: &[&str]) -> Running {
    let mut cmd = cluster::difyrender_on("apply", kubeconfig(), ns);
    cmd.args(root_profile())
        .args(["--set", &format!("images.dify.tag={tag}")])
        .args(["--external-host", "192.0.2.10", "--timeout", "120s"])
        .args(extra)
        .env("DIFY_SECRET_KEY", MASTER);
    Running::start(cmd)
}

/// Waits for an apply started by [`start_apply`]; its output is scanned for secrets.
fn finish_apply(apply: Running) -> Output {
    let output = apply.finish();
    assert_no_secrets(&transcript(&output), &secrets_of(MASTER), "apply");
    output
}

fn apply(ns: &str, tag: &str, extra: &[&str]) -> Output {
    finish_apply(start_apply(ns, tag, extra))
}

fn replica_set_images(ns: &str) -> Vec<String> {
    cluster::replica_set_images(ns, kubeconfig())
}

/// The image of each Dify app Deployment (api, worker, beat, web).
fn app_images(ns: &str) -> Vec<(String, String)> {
    ["dify-api", "dify-worker", "dify-beat", "dify-web"]
        .iter()
        .map(|d| {
            let deploy = kubectl_json(&["get", "deploy", d, "-n", ns]);
            let image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .to_owned();
            ((*d).to_owned(), image)
        })
        .collect()
}

fn held<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [&HOLD_MIGRATION[..], extra].concat()
}

/// The migration Jobs in `ns` and whether each completed.
fn migration_jobs(ns: &str) -> Vec<(String, Value)> {
    kubectl_json(&["get", "jobs", "-n", ns])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["metadata"]["name"].as_str().unwrap().to_owned(),
                j["status"].clone(),
            )
        })
        .collect()
}

#[test]
fn an_upgrade_waits_for_its_migration_before_any_new_pod() {
    let ns = "t-hold";
    ok(&apply(ns, "1.11.4", &[]));
    let old = app_images(ns);
    assert!(
        old.iter().all(|(_, i)| i.ends_with(":1.11.4")),
        "installed 1.11.4: {old:?}"
    );

    let deployments = cluster::deployments(ns, kubeconfig());
    let mut child = start_apply(ns, "1.13.3", &held(&[]));
    let pod = cluster::hold_migration(ns, &mut child, kubeconfig());
    assert!(
        pod["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("dify-migration-1-13-3-"),
        "{}",
        pod["metadata"]["name"]
    );
    // While the migration runs: apply is still waiting, no app Deployment holds 1.13.3 and no
    // ReplicaSet of it exists, so no pod of the new release can start.
    assert!(
        child.is_running(),
        "apply ended while its migration was still running: {}",
        transcript(&finish_apply(child))
    );
    assert_eq!(
        cluster::deployments(ns, kubeconfig()),
        deployments,
        "app Deployments written before the migration ended"
    );
    let sets = replica_set_images(ns);
    assert!(
        !sets.iter().any(|i| i.ends_with(":1.13.3")),
        "a ReplicaSet of 1.13.3 exists while its migration runs: {sets:?}"
    );

    // The migration succeeds: the rollout follows.
    cluster::end_pod(ns, &pod, 0, "", kubeconfig());
    let text = ok(&finish_apply(child));
    assert!(text.contains("Dify 1.13.3 (upgrade from 1.11.4)"), "{text}");
    let new = app_images(ns);
    assert!(
        new.iter().all(|(_, i)| i.ends_with(":1.13.3")),
        "after the migration: {new:?}"
    );
    let sets = replica_set_images(ns);
    assert!(
        sets.iter().any(|i| i == "langgenius/dify-api:1.13.3"),
        "no ReplicaSet of 1.13.3's api: {sets:?}"
    );
}

#[test]
fn a_failed_migration_stops_apply_with_exit_4_and_no_new_app() {
    let ns = "t-fail";
    ok(&apply(ns, "1.11.4", &[]));
    let old = app_images(ns);

    // One attempt, so that one failed pod fails the Job.
    let mut child = start_apply(ns, "1.13.3", &held(&["--set", "migration.backoffLimit=0"]));
    let pod = cluster::hold_migration(ns, &mut child, kubeconfig());
    cluster::end_pod(
        ns,
        &pod,
        1,
        "difyrender: the migration did not complete",
        kubeconfig(),
    );
    let failed = finish_apply(child);
    let text = transcript(&failed);
    assert_eq!(failed.status.code(), Some(4), "{text}");
    let job = pod["metadata"]["labels"]["job-name"].as_str().unwrap();
    for needle in [
        format!("Job/{ns}/{job} failed: job failed: BackoffLimitExceeded"),
        format!("kubectl logs -n {ns} job/{job}"),
    ] {
        assert!(text.contains(&needle), "{needle}: {text}");
    }
    assert!(failed.stdout.is_empty(), "{text}");

    // No app Deployment of 1.13.3 was written, no ReplicaSet of it exists: 1.11.4 keeps serving.
    assert_eq!(
        app_images(ns),
        old,
        "an app Deployment of 1.13.3 was written"
    );
    let sets = replica_set_images(ns);
    assert!(
        !sets.iter().any(|i| i.ends_with(":1.13.3")),
        "a ReplicaSet of 1.13.3 exists after its migration failed: {sets:?}"
    );
    let jobs = migration_jobs(ns);
    assert!(
        jobs.iter().any(|(name, _)| name == job),
        "the failed Job stays for its log: {jobs:?}"
    );
}
