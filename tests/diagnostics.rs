//! Why an object is not ready, on the real control plane (scripts/testenv): each failure is
//! made to happen for real — the scheduler finds no node, the volume controller finds no
//! StorageClass, the Job controller gives up — or, where a kubelet would report it (image
//! pulls, crash loops, probes, a container's exit), by kwok's failure stages
//! (`hack/testenv/kwok/stages.yaml`), chosen by the pod label `testenv-scenario` set through
//! `<component>.pod.labels`. Each test asserts the one-line reason and the advice in `apply`'s
//! error and in `status` (text and JSON), and that no secret of the run appears anywhere.

mod common;

use common::cluster;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;

const MASTER: &str = "diagnostics-test-master-key-0123456789";
/// The SMTP password in an operator's Secret, which the crashing worker reads and logs.
const OPERATOR_SECRET: &str = "operator-smtp-password-0042";

/// The shared instance, whose containers log (kwok's ClusterLogs, `scripts/testenv`) the
/// lines below: each quotes a secret of the run, as a crashing program may.
fn kubeconfig() -> &'static PathBuf {
    static LOGS: OnceLock<()> = OnceLock::new();
    let kc = cluster::shared("diagnostics");
    LOGS.get_or_init(|| {
        let data = cluster::instance_dir(kc).join("data");
        let secret = leaked();
        std::fs::write(
            data.join("previous.log"),
            format!(
                "2026-12-06T07:00:00.000000000Z stderr F Traceback (most recent call last):\n\
                 2026-12-06T07:00:00.100000000Z stderr F   File \"/app/api/app.py\", line 12, in <module>\n\
                 2026-12-06T07:00:00.200000000Z stderr F sqlalchemy.exc.OperationalError: password authentication failed (password {secret})\n\
                 2026-12-06T07:00:00.300000000Z stderr F smtplib.SMTPAuthenticationError: 535 for password {OPERATOR_SECRET}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            data.join("container.log"),
            format!(
                "2026-12-06T07:00:01.000000000Z stdout F Running migrations\n\
                 2026-12-06T07:00:01.100000000Z stderr F alembic: cannot connect with DB_PASSWORD={secret}\n"
            ),
        )
        .unwrap();
    });
    kc
}

/// Every secret of the run: the master key, its derived keys, the operator's SMTP password.
fn run_secrets() -> Vec<String> {
    let mut all = secrets_of(MASTER);
    all.push(OPERATOR_SECRET.to_owned());
    all
}

/// A secret of the run (a key derived from the master key) that the containers' logs quote.
fn leaked() -> String {
    secrets_of(MASTER)[1].clone()
}

/// `apply` of a release at `/` in `ns` with `sets`, waiting at most `timeout`.
fn apply(ns: &str, sets: &[&str], extra: &[&str]) -> String {
    let out = difyrender()
        .arg("apply")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["-n", ns])
        .args(root_profile())
        .args(sets.iter().flat_map(|s| ["--set", s]))
        .args(["--external-host", "192.0.2.10", "--timeout", "20s"])
        .args(extra)
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    let text = transcript(&out);
    assert_no_secrets(&text, &run_secrets(), "apply output");
    assert_eq!(out.status.code(), Some(4), "waiting fails: {text}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout when it fails: {text}"
    );
    text
}

fn status(ns: &str, json: bool) -> Output {
    let mut cmd = difyrender();
    cmd.arg("status")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["-n", ns]);
    if json {
        cmd.args(["--output", "json"]);
    }
    let out = cmd.output().unwrap();
    assert_no_secrets(&transcript(&out), &run_secrets(), "status output");
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    out
}

/// The status of `ns` as text, and the diagnosis of `object` from its JSON.
fn diagnosed(ns: &str, object: &str) -> (String, Value) {
    let text = String::from_utf8(status(ns, false).stdout).unwrap();
    let json: Value = serde_json::from_slice(&status(ns, true).stdout).unwrap();
    let entry = json["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == object)
        .unwrap_or_else(|| panic!("{object} in {json:#}"))
        .clone();
    assert_eq!(entry["ready"], false, "{entry:#}");
    (text, entry["diagnosis"].clone())
}

/// The JSON status with what changes from run to run replaced: the time of the apply, the
/// release default's version, pod and ReplicaSet name suffixes, event counts.
fn stable_json(ns: &str) -> String {
    let mut json: Value = serde_json::from_slice(&status(ns, true).stdout).unwrap();
    json["lastApplied"] = "[time]".into();
    // The release default moves (versions.yaml); what it pins is checked elsewhere.
    let version = json["difyVersion"].as_str().unwrap().to_owned();
    json["difyVersion"] = "[version]".into();
    json["alembicHead"] = "[head]".into();
    for o in json["objects"].as_array_mut().unwrap() {
        let Some(d) = o.get_mut("diagnosis") else {
            continue;
        };
        if let Some(reason) = d["reason"].as_str() {
            d["reason"] = reason.replace(&version, "[version]").into();
        }
        if d["pod"].is_string() {
            d["pod"] = "[pod]".into();
        }
        for e in d["events"].as_array_mut().unwrap() {
            *e = stable_event(e.as_str().unwrap()).into();
        }
    }
    serde_json::to_string_pretty(&json).unwrap() + "\n"
}

/// `Pod/dify-api-6d9f7c-abcde: Failed: … (×3)` → `Pod/[pod]: Failed: … (×[n])`.
fn stable_event(line: &str) -> String {
    let (object, rest) = line.split_once(": ").unwrap();
    let object = match object.split_once('/') {
        Some((kind @ ("Pod" | "ReplicaSet"), _)) => format!("{kind}/[name]"),
        _ => object.to_owned(),
    };
    let rest = match rest.rfind(" (×") {
        Some(at) if rest.ends_with(')') => format!("{} (×[n])", &rest[..at]),
        _ => rest.to_owned(),
    };
    format!("{object}: {rest}")
}

#[test]
fn an_image_that_cannot_be_pulled_is_named_with_the_registry_advice() {
    let ns = "t-pull";
    let text = apply(
        ns,
        &["api.pod.labels.testenv-scenario=image-pull-backoff"],
        &[],
    );
    assert!(text.contains("timed out after 20s waiting for:"), "{text}");
    assert!(
        text.contains("Deployment/t-pull/dify-api: ImagePullBackOff: image \"")
            && text.contains("dify-api:")
            && text.contains("cannot be pulled (container api)"),
        "{text}"
    );
    assert!(
        text.contains("try: check that the image and tag exist (`difyrender images`"),
        "{text}"
    );
    assert!(
        text.contains(": Failed: Failed to pull image: rpc error: code = NotFound"),
        "the kubelet's Warning event: {text}"
    );
    // Only the api is diagnosed: the web Deployment became ready.
    let error = &text[text.find("error: timed out").unwrap()..];
    assert!(!error.contains("dify-web"), "{error}");

    let (table, d) = diagnosed(ns, "Deployment/t-pull/dify-api");
    assert!(
        table.contains("Deployment/t-pull/dify-api: ImagePullBackOff"),
        "{table}"
    );
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("ImagePullBackOff: image \""),
        "{d:#}"
    );
    assert!(d["advice"].as_str().unwrap().contains("images.pullSecrets"));
    snapshot("diagnostics-image-pull-status", &stable_json(ns));
}

#[test]
fn a_crash_loop_gives_the_exit_code_and_the_previous_log() {
    let ns = "t-crash";
    // The worker reads an operator's Secret (the SMTP password), which its log quotes.
    cluster::ok(&cluster::kubectl(
        &["create", "namespace", ns],
        kubeconfig(),
    ));
    cluster::ok(&cluster::kubectl(
        &[
            "create",
            "secret",
            "generic",
            "smtp",
            "-n",
            ns,
            &format!("--from-literal=password={OPERATOR_SECRET}"),
        ],
        kubeconfig(),
    ));
    let text = apply(
        ns,
        &[
            "worker.pod.labels.testenv-scenario=crash-loop",
            "dify.mail.type=smtp",
            "dify.mail.from=no-reply@example.com",
            "dify.mail.smtp.server=smtp.example.com",
            "dify.mail.smtp.username=dify",
            "dify.mail.credentialSecret.name=smtp",
            "dify.mail.credentialSecret.key=password",
        ],
        &[],
    );
    assert!(
        text.contains("| smtplib.SMTPAuthenticationError: 535 for password ***"),
        "the operator's Secret is masked too: {text}"
    );
    assert!(
        text.contains("Deployment/t-crash/dify-worker: CrashLoopBackOff: container worker exited with code 3 (Error), restarted 5 times"),
        "{text}"
    );
    assert!(
        text.contains("log (previous container worker, last 20 lines):\n      | Traceback (most recent call last):"),
        "{text}"
    );
    // The log quotes a secret; the diagnosis shows it masked (assert_no_secrets checks the rest).
    assert!(
        text.contains(
            "| sqlalchemy.exc.OperationalError: password authentication failed (password ***)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "try: the previous container's log says why (`difyrender logs worker --previous`"
        ),
        "{text}"
    );
    assert!(
        text.contains(": BackOff: Back-off restarting failed container"),
        "{text}"
    );
    let (_, d) = diagnosed(ns, "Deployment/t-crash/dify-worker");
    assert_eq!(
        d["pod"].as_str().map(|p| p.starts_with("dify-worker-")),
        Some(true)
    );
    assert_eq!(
        d["log"][2],
        "sqlalchemy.exc.OperationalError: password authentication failed (password ***)"
    );

    // `logs`: the same lines, masked; kubectl shows the secret (the masking is difyrender's).
    let pod = d["pod"].as_str().unwrap();
    let raw = cluster::kubectl(&["logs", "-n", ns, pod, "--previous"], kubeconfig());
    let raw = String::from_utf8_lossy(&raw.stdout);
    assert!(raw.contains(&leaked()) && raw.contains(OPERATOR_SECRET));
    let out = logs(&[ns, "worker", "--previous", "--tail", "2"]);
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "==> {pod}/worker <==\n\
             sqlalchemy.exc.OperationalError: password authentication failed (password ***)\n\
             smtplib.SMTPAuthenticationError: 535 for password ***\n"
        )
    );
    // The current container by default.
    let out = logs(&[ns, "worker"]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("Running migrations\nalembic: cannot connect with DB_PASSWORD=***\n"),
        "{}",
        transcript(&out)
    );
}

/// `difyrender logs -n NS ARGS…` on the shared instance; no secret in its output.
fn logs(args: &[&str]) -> Output {
    let out = difyrender()
        .arg("logs")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .arg("-n")
        .args(args)
        .output()
        .unwrap();
    assert_no_secrets(&transcript(&out), &run_secrets(), "logs output");
    out
}

#[test]
fn logs_refuses_bad_input_before_any_call() {
    for (args, says) in [
        (
            &["t-none", "nosuch"][..],
            "unknown component \"nosuch\" for logs",
        ),
        (
            &["t-none", "api", "--tail", "500"][..],
            "--tail must be between 1 and 200",
        ),
    ] {
        let out = logs(args);
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(out.stdout.is_empty(), "{text}");
        assert!(text.contains(says), "{text}");
    }
    // A namespace without the release: exit 3, the inventory named.
    let out = logs(&["t-none", "api"]);
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("no release dify in namespace t-none"),
        "{text}"
    );
}

#[test]
fn an_unschedulable_pod_gets_the_schedulers_message() {
    let ns = "t-sched";
    let text = apply(ns, &["web.pod.nodeSelector.disktype=ssd"], &[]);
    assert!(
        text.contains("Deployment/t-sched/dify-web: Pending: the scheduler found no node: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector"),
        "{text}"
    );
    assert!(
        text.contains("try: compare web.pod.nodeSelector, web.pod.tolerations"),
        "{text}"
    );
    assert!(
        text.contains(": FailedScheduling: 0/1 nodes are available"),
        "{text}"
    );
    let (_, d) = diagnosed(ns, "Deployment/t-sched/dify-web");
    assert!(
        d["advice"]
            .as_str()
            .unwrap()
            .contains("web.resources.requests")
    );
}

#[test]
fn an_unbound_claim_names_its_missing_storage_class() {
    let ns = "t-claim";
    let text = apply(
        ns,
        &["storage.storageClassName=no-such-class"],
        &["--skip-doctor"],
    );
    assert!(
        text.contains(
            "claim is Pending, not Bound: its StorageClass \"no-such-class\" does not exist"
        ),
        "{text}"
    );
    assert!(
        text.contains("try: set storage.storageClassName to an existing StorageClass (the cluster has standard"),
        "{text}"
    );
    assert!(
        text.contains(
            ": ProvisioningFailed: storageclass.storage.k8s.io \"no-such-class\" not found"
        ),
        "the volume controller's event: {text}"
    );
    // status says the same, from the StatefulSet whose pod waits for the claim.
    let (table, _) = diagnosed(ns, "StatefulSet/t-claim/dify-postgresql");
    assert!(
        table.contains("\"no-such-class\" does not exist"),
        "{table}"
    );
}

#[test]
fn a_failing_readiness_probe_names_its_path() {
    let ns = "t-probe";
    let text = apply(ns, &["api.pod.labels.testenv-scenario=probe-fail"], &[]);
    assert!(
        text.contains("Deployment/t-probe/dify-api: readiness probe HTTP GET /health on port http fails (container api): Readiness probe failed: HTTP probe failed with statuscode: 503"),
        "{text}"
    );
    assert!(
        text.contains(
            "try: the container answers HTTP GET /health on port http with an error or not at all"
        ),
        "{text}"
    );
    let (_, d) = diagnosed(ns, "Deployment/t-probe/dify-api");
    assert!(d["reason"].as_str().unwrap().contains("/health"), "{d:#}");
}

#[test]
fn a_failed_migration_job_gives_its_exit_code_and_log() {
    let ns = "t-job";
    let text = apply(
        ns,
        &[
            "migration.pod.labels.testenv-scenario=job-fail",
            "migration.backoffLimit=0",
        ],
        &[],
    );
    assert!(
        text.contains("failed: job failed: BackoffLimitExceeded"),
        "{text}"
    );
    assert!(
        text.contains(": container migration exited with code 1 (Error)"),
        "{text}"
    );
    assert!(
        text.contains(
            "log (container migration, last 20 lines):\n      | Running migrations\n      | alembic: cannot connect with DB_PASSWORD=***\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("try: the log says why; fix the cause and apply again"),
        "{text}"
    );
}
