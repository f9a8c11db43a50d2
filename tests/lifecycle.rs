//! diff, prune, status and uninstall against a real control plane (scripts/testenv). Every
//! command's output is scanned for the release's secret values.

mod common;

use common::cluster::{self, ok};
use common::*;
use serde_json::Value;
use std::io::BufReader;
use std::process::{Output, Stdio};

const MASTER: &str = "lifecycle-test-master-key-0123456789";
/// An explicit Redis password some tests switch to.
const NEW_REDIS_PASSWORD: &str = "rotated-redis-password-42";

shared_cluster!("lifecycle");

fn secrets() -> Vec<String> {
    let mut s = secrets_of(MASTER);
    s.push(NEW_REDIS_PASSWORD.to_owned());
    s
}

/// Runs difyrender against the test cluster and scans everything it printed.
fn run(args: &[&str]) -> Output {
    cluster::scanned(
        difyrender()
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig())
            .env("DIFY_SECRET_KEY", MASTER),
        &secrets(),
        &format!("difyrender {args:?}"),
    )
}

fn release_args(ns: &str, extra: &[&str]) -> Vec<String> {
    let head = ["-n", ns, "--set", "external.host=192.0.2.10"]
        .map(str::to_owned)
        .to_vec();
    [
        head,
        root_profile(),
        extra.iter().map(|s| s.to_string()).collect(),
    ]
    .concat()
}

fn verb(verb: &str, ns: &str, extra: &[&str]) -> Output {
    let args = release_args(ns, extra);
    let mut all = vec![verb];
    all.extend(args.iter().map(String::as_str));
    run(&all)
}

fn apply(ns: &str, extra: &[&str]) -> Output {
    verb("apply", ns, &[&["--timeout", "90s"], extra].concat())
}

fn uid(kind: &str, name: &str, ns: &str) -> String {
    kubectl_json(&["get", kind, name, "-n", ns])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn resource_version(kind: &str, name: &str, ns: &str) -> String {
    kubectl_json(&["get", kind, name, "-n", ns])["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn exists(kind: &str, name: &str, ns: &str) -> bool {
    kubectl(&["get", kind, name, "-n", ns]).status.success()
}

fn inventory_objects(ns: &str) -> String {
    kubectl_json(&["get", "configmap", "dify-inventory", "-n", ns])["data"]["objects"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_component_switched_off_is_pruned_and_its_volume_kept() {
    let ns = "t-prune";
    ok(&apply(ns, &[]));
    let volume = uid("pvc", "data-dify-postgresql-0", ns);
    let old_job = kubectl_json(&["get", "jobs", "-n", ns])["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let external = [
        "--set",
        "postgresql.enabled=false",
        "--set",
        "postgresql.external.host=db.example.com",
    ];
    let out = ok(&apply(ns, &external));
    assert!(
        out.contains("deleted StatefulSet/t-prune/dify-postgresql"),
        "{out}"
    );
    assert!(
        out.contains("deleted Service/t-prune/dify-postgresql"),
        "{out}"
    );
    assert!(
        out.contains(&format!("deleted Job/t-prune/{old_job}")),
        "the previous migration Job is pruned: {out}"
    );
    assert!(!exists("statefulset", "dify-postgresql", ns));
    assert_eq!(
        uid("pvc", "data-dify-postgresql-0", ns),
        volume,
        "the database volume is kept"
    );
    assert!(
        !inventory_objects(ns).contains("\"dify-postgresql\""),
        "{}",
        inventory_objects(ns)
    );
    // --no-prune keeps what the render dropped, and the inventory keeps listing it.
    let out = ok(&apply(
        ns,
        &[
            &external[..],
            &["--set", "networkPolicy.enabled=false", "--no-prune"],
        ]
        .concat(),
    ));
    assert!(!out.contains("deleted NetworkPolicy"), "{out}");
    assert!(exists("networkpolicy", "dify-sandbox", ns));
    assert!(inventory_objects(ns).contains("\"dify-sandbox\""));
}

#[test]
fn diff_reports_nothing_changes_and_new_objects() {
    let ns = "t-diff";
    ok(&apply(
        ns,
        &["--no-wait", "--set", "networkPolicy.enabled=false"],
    ));
    let same = verb("diff", ns, &["--set", "networkPolicy.enabled=false"]);
    assert_eq!(same.status.code(), Some(0), "{}", transcript(&same));
    assert!(same.stdout.is_empty(), "{}", transcript(&same));

    let changed = verb(
        "diff",
        ns,
        &[
            "--set",
            "networkPolicy.enabled=false",
            "--set",
            "api.replicas=2",
            "--color",
            "never",
        ],
    );
    let text = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(changed.status.code(), Some(1), "{}", transcript(&changed));
    assert!(
        text.contains("~ Deployment/t-diff/dify-api would be configured"),
        "{text}"
    );
    assert!(text.contains("-  replicas: 1\n+  replicas: 2\n"), "{text}");
    assert!(
        !text.contains("managedFields")
            && !text.contains("resourceVersion")
            && !text.contains("status:"),
        "{text}"
    );

    let rotated = verb(
        "diff",
        ns,
        &[
            "--set",
            "networkPolicy.enabled=false",
            "--set",
            &format!("secrets.redisPassword={NEW_REDIS_PASSWORD}"),
            "--color",
            "never",
        ],
    );
    let text = String::from_utf8_lossy(&rotated.stdout);
    assert_eq!(rotated.status.code(), Some(1));
    for key in ["REDIS_PASSWORD", "REDIS_PASSWORD_URL"] {
        for line in [
            format!("\n-  {key}: \"*** (before)\"\n"),
            format!("\n+  {key}: \"*** (after)\"\n"),
        ] {
            assert!(text.contains(&line), "{line:?} in {text}");
        }
    }
    assert!(
        text.contains("  SECRET_KEY: \"***\""),
        "unchanged keys are masked too: {text}"
    );

    let added = verb("diff", ns, &["--color", "never"]);
    let text = String::from_utf8_lossy(&added.stdout);
    assert_eq!(added.status.code(), Some(1));
    assert!(
        text.contains("+ NetworkPolicy/t-diff/dify-sandbox would be created"),
        "{text}"
    );

    let json = verb(
        "diff",
        ns,
        &[
            "--set",
            "networkPolicy.enabled=false",
            "--set",
            "api.replicas=2",
            "--output",
            "json",
        ],
    );
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    // Two replicas also bring a PodDisruptionBudget.
    let changes: Vec<(&str, &str)> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["object"].as_str().unwrap(), d["change"].as_str().unwrap()))
        .collect();
    assert!(
        changes.contains(&("Deployment/t-diff/dify-api", "configure")),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("PodDisruptionBudget/t-diff/dify-api", "create")),
        "{changes:?}"
    );
}

#[test]
fn diff_lists_objects_apply_would_prune_and_keep() {
    let ns = "t-diff-prune";
    ok(&apply(ns, &["--no-wait"]));
    let out = verb(
        "diff",
        ns,
        &["--set", "networkPolicy.enabled=false", "--color", "never"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("- NetworkPolicy/t-diff-prune/dify-sandbox would be pruned"),
        "{text}"
    );
}

#[test]
fn status_reports_ready_not_ready_and_a_missing_release() {
    let ns = "t-status";
    let missing = run(&["status", "-n", ns]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(transcript(&missing).contains("no release dify in namespace t-status: its inventory ConfigMap dify-inventory does not exist"));

    ok(&apply(ns, &[]));
    let ready = run(&["status", "-n", ns]);
    let text = transcript(&ready);
    assert_eq!(ready.status.code(), Some(0), "{text}");
    assert!(
        text.contains("dify      1.16.1 (Alembic 6f5a9c2d8e1b)\nurl       http://192.0.2.10\n"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("api ") && l.contains(" Deployment/t-status/dify-api ")),
        "{text}"
    );

    // The api cannot be scheduled any more: status names it and why.
    ok(&apply(
        ns,
        &[
            "--no-wait",
            "--set",
            "api.resources.requests.cpu=1000",
            "--set",
            "api.resources.limits.cpu=1000",
        ],
    ));
    // Once the controller has seen the new spec and the new ReplicaSet has its (unschedulable)
    // pod, the old pod is still running. (updatedReplicas alone is 1 from the first rollout.)
    for condition in [
        "{.status.observedGeneration}=2",
        "{.status.updatedReplicas}=1",
    ] {
        let wait = format!("--for=jsonpath={condition}");
        ok(&kubectl(&[
            "wait",
            &wait,
            "deployment/dify-api",
            "-n",
            ns,
            "--timeout=60s",
        ]));
    }
    let not_ready = run(&["status", "-n", ns]);
    let text = transcript(&not_ready);
    assert_eq!(not_ready.status.code(), Some(1), "{text}");
    let api_line = text
        .lines()
        .find(|l| l.contains("Deployment/t-status/dify-api"))
        .unwrap();
    assert!(
        api_line.contains(" no ") && api_line.contains("old replicas still running"),
        "{api_line}"
    );
    let json = run(&["status", "-n", ns, "--output", "json"]);
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["difyVersion"], "1.16.1");
    assert!(
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["object"] == "Deployment/t-status/dify-api" && o["ready"] == false)
    );
}

#[test]
fn uninstall_keeps_data_a_reinstall_reuses_it_and_delete_data_removes_everything() {
    let ns = "t-reinstall";
    ok(&apply(ns, &[]));
    let volumes = [
        uid("pvc", "dify-storage", ns),
        uid("pvc", "data-dify-postgresql-0", ns),
    ];
    let keys_uid = uid("secret", "dify-keys", ns);

    let out = ok(&run(&["uninstall", "-n", ns]));
    assert!(
        out.contains("kept PersistentVolumeClaim/t-reinstall/dify-storage"),
        "{out}"
    );
    assert!(out.contains("kept Secret/t-reinstall/dify-keys"), "{out}");
    assert!(!exists("deployment", "dify-api", ns) && !exists("statefulset", "dify-postgresql", ns));
    assert!(
        exists("pvc", "data-dify-postgresql-0", ns),
        "StatefulSet volumes are kept too"
    );

    // Without --yes and without a terminal, data is not deleted.
    let refused = run(&["uninstall", "-n", ns, "--delete-data"]);
    assert_eq!(refused.status.code(), Some(2), "{}", transcript(&refused));
    assert!(exists("secret", "dify-keys", ns));

    // The kept keys Secret is the same object (uid), and the re-install does not write it
    // (resourceVersion): the passwords the volumes were initialised with stay. Comparing its
    // data would prove nothing, since the same master key renders the same data.
    let kept_version = resource_version("secret", "dify-keys", ns);
    ok(&apply(ns, &[]));
    assert_eq!(
        [
            uid("pvc", "dify-storage", ns),
            uid("pvc", "data-dify-postgresql-0", ns)
        ],
        volumes,
        "the same volumes"
    );
    assert_eq!(
        uid("secret", "dify-keys", ns),
        keys_uid,
        "the keys Secret was deleted and made again"
    );
    assert_eq!(
        resource_version("secret", "dify-keys", ns),
        kept_version,
        "the re-install rewrote the kept keys Secret"
    );

    let out = ok(&run(&["uninstall", "-n", ns, "--delete-data", "--yes"]));
    assert!(out.contains("deleted Namespace/t-reinstall"), "{out}");
    assert!(
        !kubectl(&["get", "namespace", ns]).status.success(),
        "the namespace is gone"
    );
}

/// `uninstall --delete-data` deletes the namespace it created only when nothing of anyone
/// else's is left in it: a pod someone else made keeps it, and the reason names that pod and
/// none of the release's own, which the garbage collector may still be deleting (their
/// Deployments are deleted with background propagation).
#[test]
fn delete_data_keeps_a_namespace_that_holds_someone_elses_pod() {
    let ns = "t-visitor";
    ok(&apply(ns, &[]));
    ok(&kubectl_stdin(
        &["apply", "-n", ns, "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"visitor","labels":{"app.kubernetes.io/instance":"dify"}},"spec":{"containers":[{"name":"c","image":"registry.example/visitor:1"}]}}"#,
    ));
    let out = ok(&run(&["uninstall", "-n", ns, "--delete-data", "--yes"]));
    let kept = out
        .lines()
        .find(|l| l.contains("kept Namespace/t-visitor: it still holds objects"))
        .unwrap_or_else(|| panic!("the namespace was not kept for the visitor: {out}"));
    assert!(kept.ends_with("does not own: visitor"), "{kept}");
    assert!(
        kubectl(&["get", "namespace", ns]).status.success(),
        "the namespace was deleted with someone else's pod in it"
    );
    ok(&kubectl(&["delete", "namespace", ns, "--wait=false"]));
}

#[test]
fn an_interrupted_apply_then_uninstall_leaves_nothing_behind() {
    let ns = "t-interrupted";
    let args = release_args(ns, &["--timeout", "90s"]);
    let mut child = difyrender()
        .arg("apply")
        .args(&args)
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .env("DIFY_SECRET_KEY", MASTER)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    read_until(
        &mut BufReader::new(child.stderr.take().unwrap()),
        "stage 3 datastores",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !exists("deployment", "dify-api", ns),
        "the apply was stopped before the apps"
    );
    let out = ok(&run(&["uninstall", "-n", ns, "--delete-data", "--yes"]));
    assert!(
        out.contains("deleted StatefulSet/t-interrupted/dify-postgresql"),
        "{out}"
    );
    assert!(
        !kubectl(&["get", "namespace", ns]).status.success(),
        "nothing of the release is left: {out}"
    );
}
