//! `difyrender doctor` and `difyrender test` against the real control plane of
//! scripts/testenv: one cluster state per check, each FAIL made to happen for real (a
//! namespace enforcing Pod Security restricted, a missing StorageClass or IngressClass, the
//! view-only user, a small ResourceQuota, no Middleware CRD), a clean run, apply refusing on a
//! FAIL, and the test Job: how it is built, how results come back, failures and cleanup. Kwok
//! runs no containers, so the test plays the test container's end (exit code and termination
//! message) on the pod's status.

mod common;

use common::cluster::{self, ok};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MASTER: &str = "doctor-test-master-key-0123456789";

shared_cluster!("doctor");

/// The Traefik Service of NKP, with its LoadBalancer address, once for the instance.
fn traefik() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        ok(&kubectl(&["create", "namespace", "kommander"]));
        ok(&kubectl(&[
            "create",
            "service",
            "loadbalancer",
            "kommander-traefik",
            "-n",
            "kommander",
            "--tcp=443:8443",
        ]));
        ok(&kubectl(&[
            "patch",
            "service",
            "kommander-traefik",
            "-n",
            "kommander",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}"#,
        ]));
    });
}

fn run(kc: &Path, verb: &str, ns: &str, extra: &[&str]) -> Output {
    traefik();
    cluster::scanned(
        cluster::difyrender_on(verb, kc, ns)
            .args(root_profile())
            .args(if extra.contains(&"--external-host") {
                &[][..]
            } else {
                &["--external-host", "192.0.2.10"][..]
            })
            .args(extra)
            .env("DIFY_SECRET_KEY", MASTER),
        &secrets_of(MASTER),
        verb,
    )
}

fn doctor_on(kc: &Path, ns: &str, extra: &[&str]) -> Output {
    run(kc, "doctor", ns, extra)
}

fn doctor(ns: &str, extra: &[&str]) -> Output {
    doctor_on(kubeconfig(), ns, extra)
}

/// The checks of a `doctor --output json` run, by name.
fn checks(out: &Output) -> std::collections::BTreeMap<String, Value> {
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}", transcript(out)));
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

fn verdict<'a>(checks: &'a std::collections::BTreeMap<String, Value>, name: &str) -> &'a str {
    checks
        .get(name)
        .unwrap_or_else(|| panic!("no check {name}: {checks:?}"))["verdict"]
        .as_str()
        .unwrap()
}

fn json_doctor(ns: &str, extra: &[&str]) -> (Output, std::collections::BTreeMap<String, Value>) {
    let out = doctor(ns, &[extra, &["--output", "json"]].concat());
    let c = checks(&out);
    (out, c)
}

/// Numbers that depend on what else runs on the shared instance, or on versions.
fn stable(text: &str) -> String {
    text.lines()
        .map(|l| {
            if let Some(at) = l.find(" v1.").filter(|_| l.contains(" kubernetes ")) {
                let end = l[at + 1..].find(' ').map_or(l.len(), |e| at + 1 + e);
                format!("{} v<version>{}", &l[..at], &l[end..])
            } else if l.contains(" capacity ") {
                let mut out = String::new();
                let mut in_number = false;
                for ch in l.chars() {
                    if ch.is_ascii_digit() || (in_number && ch == '.') {
                        if !in_number {
                            out.push('N');
                        }
                        in_number = true;
                    } else {
                        in_number = false;
                        out.push(ch);
                    }
                }
                out
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn a_latest_image_override_is_warned_about() {
    // Both squids run the ssrf proxy's image, in apply order: the agent's (1.16.1) floats too.
    let ns = "t-latest";
    let (out, c) = json_doctor(ns, &["--set", "images.ssrfProxy.tag=latest"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning fails nothing: {}",
        transcript(&out)
    );
    assert_eq!(verdict(&c, "images"), "warn");
    assert_eq!(
        c["images"]["details"],
        serde_json::json!(["agent-ssrf-proxy, ssrf-proxy: ubuntu/squid:latest"])
    );
    assert!(
        c["images"]["fix"]
            .as_str()
            .unwrap()
            .contains("difyrender images")
    );
}

#[test]
fn a_ready_cluster_passes_every_check() {
    let ns = "t-pass";
    let out = doctor(ns, &[]);
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("FAIL") && !text.contains("WARN"), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    snapshot("doctor-pass", &stable(&stdout));
    // Every check, also as JSON.
    let (_, c) = json_doctor(ns, &[]);
    for (name, check) in &c {
        assert_eq!(check["verdict"], "pass", "{name}: {check}");
    }
    assert!(
        c["traefik"]["reason"]
            .as_str()
            .unwrap()
            .contains("192.0.2.10")
    );
    // A host that is not the LoadBalancer address is a warning, not a failure.
    let (out, c) = json_doctor(ns, &["--external-host", "192.0.2.99"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(verdict(&c, "traefik"), "warn", "{:?}", c["traefik"]);
    // A namespace nobody creates.
    let (out, c) = json_doctor(ns, &["--set", "namespace.create=false"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        verdict(&c, "pod-security"),
        "fail",
        "{:?}",
        c["pod-security"]
    );
    assert!(
        c["pod-security"]["reason"]
            .as_str()
            .unwrap()
            .contains("namespace t-pass does not exist")
    );
}

#[test]
fn a_namespace_enforcing_restricted_fails_naming_components_and_fields() {
    let ns = "t-psa";
    ok(&kubectl(&["create", "namespace", ns]));
    ok(&kubectl(&[
        "label",
        "namespace",
        ns,
        "pod-security.kubernetes.io/enforce=restricted",
    ]));
    let (out, c) = json_doctor(ns, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let pss = &c["pod-security"];
    assert_eq!(pss["verdict"], "fail", "{pss}");
    let details: Vec<&str> = pss["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let of = |component: &str| {
        details
            .iter()
            .find(|d| d.starts_with(&format!("{component} (")))
            .unwrap_or_else(|| panic!("{component} not named: {details:#?}"))
    };
    assert!(
        of("sandbox").contains("containers[sandbox].securityContext.runAsNonRoot must be true"),
        "{details:#?}"
    );
    assert!(
        of("plugin-daemon").contains(
            "containers[plugin-daemon].securityContext.capabilities.drop must include ALL"
        ),
        "{details:#?}"
    );
    assert!(
        of("ssrf-proxy").contains("containers[ssrf-proxy].securityContext.runAsNonRoot"),
        "{details:#?}"
    );
    assert!(
        !details.iter().any(|d| d.starts_with("api (")),
        "the api passes restricted: {details:#?}"
    );
    assert!(
        pss["fix"].as_str().unwrap().contains(&format!(
            "kubectl label namespace {ns} pod-security.kubernetes.io/enforce=baseline --overwrite"
        )),
        "{pss}"
    );
    // The real PodSecurity admission agrees: asked to warn at restricted, it names the sandbox
    // and not the api.
    ok(&kubectl(&[
        "label",
        "namespace",
        ns,
        "pod-security.kubernetes.io/warn=restricted",
    ]));
    let rendered = render(ns, &[]);
    let dry = kubectl_stdin(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &rendered,
    );
    let warnings = String::from_utf8_lossy(&dry.stderr).to_string();
    assert!(
        warnings
            .contains("pod or container \"sandbox\" must set securityContext.runAsNonRoot=true"),
        "{warnings}"
    );
    assert!(!warnings.contains("container \"api\""), "{warnings}");
    // The suggested label works.
    ok(&kubectl(&[
        "label",
        "namespace",
        ns,
        "--overwrite",
        "pod-security.kubernetes.io/enforce=baseline",
        "pod-security.kubernetes.io/warn=baseline",
    ]));
    let (out, c) = json_doctor(ns, &[]);
    assert_eq!(
        verdict(&c, "pod-security"),
        "pass",
        "{:?}",
        c["pod-security"]
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

fn render(ns: &str, extra: &[&str]) -> String {
    let out = difyrender()
        .arg("render")
        .args(["-n", ns])
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"])
        .args(extra)
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn storage_classes_missing_and_without_read_write_many() {
    let ns = "t-storage";
    let (out, c) = json_doctor(ns, &["--set", "storage.storageClassName=missing-class"]);
    assert_eq!(out.status.code(), Some(1));
    let sc = &c["storage-class"];
    assert_eq!(sc["verdict"], "fail", "{sc}");
    let reason = sc["reason"].as_str().unwrap();
    assert!(
        reason.contains("StorageClass missing-class does not exist"),
        "{reason}"
    );
    assert!(reason.contains("standard (default)"), "{reason}");
    assert!(!c.contains_key("read-write-many"));

    // ReadWriteMany on the test cluster's hostPath provisioner: unknown, a warning.
    let rwx = ["--set", "storage.accessMode=ReadWriteMany"];
    let (out, c) = json_doctor(ns, &rwx);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(
        verdict(&c, "read-write-many"),
        "warn",
        "{:?}",
        c["read-write-many"]
    );
    // Nutanix Volumes is block storage: a failure; Nutanix Files serves it.
    let classes = "\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: doctor-nutanix-volume}
provisioner: csi.nutanix.com
parameters: {storageType: NutanixVolumes}
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: doctor-nutanix-files}
provisioner: csi.nutanix.com
parameters: {storageType: NutanixFiles}
";
    ok(&kubectl_stdin(&["apply", "-f", "-"], classes));
    let (out, c) = json_doctor(
        ns,
        &[
            &rwx[..],
            &["--set", "storage.storageClassName=doctor-nutanix-volume"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(verdict(&c, "storage-class"), "pass");
    assert!(
        c["storage-class"]["details"][0]
            .as_str()
            .unwrap()
            .contains("WaitForFirstConsumer (volumes bind when their first pod is scheduled)"),
        "{:?}",
        c["storage-class"]
    );
    let rwx_check = &c["read-write-many"];
    assert_eq!(rwx_check["verdict"], "fail", "{rwx_check}");
    assert!(
        rwx_check["reason"]
            .as_str()
            .unwrap()
            .contains("Nutanix Volumes"),
        "{rwx_check}"
    );
    let (out, c) = json_doctor(
        ns,
        &[
            &rwx[..],
            &["--set", "storage.storageClassName=doctor-nutanix-files"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(verdict(&c, "read-write-many"), "pass");
}

#[test]
fn a_missing_ingress_class_fails() {
    let (out, c) = json_doctor("t-ingress", &["--set", "expose.ingressClassName=nginx"]);
    assert_eq!(out.status.code(), Some(1));
    let check = &c["ingress-class"];
    assert_eq!(check["verdict"], "fail", "{check}");
    let reason = check["reason"].as_str().unwrap();
    assert!(
        reason.contains("IngressClass nginx does not exist"),
        "{reason}"
    );
    assert!(
        reason.contains("the cluster has: kommander-traefik"),
        "{reason}"
    );
    // Negative control: the class that exists.
    let (_, c) = json_doctor("t-ingress", &[]);
    assert_eq!(verdict(&c, "ingress-class"), "pass");
}

#[test]
fn the_view_only_user_learns_it_before_the_first_write() {
    let ns = "t-rbac";
    let (out, c) = json_doctor(ns, &["--context", "restricted"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let perms = &c["permissions"];
    assert_eq!(perms["verdict"], "fail", "{perms}");
    assert!(
        perms["reason"]
            .as_str()
            .unwrap()
            .starts_with("user \"restricted\" may not do"),
        "{perms}"
    );
    let details: Vec<&str> = perms["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        details.contains(&"deployments.apps: create, patch, delete"),
        "{details:#?}"
    );
    assert!(
        details.contains(&"namespaces: create, patch"),
        "{details:#?}"
    );
    // Negative control: the admin may do everything.
    let (_, c) = json_doctor(ns, &[]);
    assert_eq!(verdict(&c, "permissions"), "pass", "{:?}", c["permissions"]);

    // apply runs doctor first: refused before its first write, with exit code 3.
    let out = run(
        kubeconfig(),
        "apply",
        ns,
        &["--context", "restricted", "--no-wait"],
    );
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("doctor: FAIL permissions: user \"restricted\""),
        "{text}"
    );
    assert!(
        text.contains("apply refused: doctor found 1 problem(s)"),
        "{text}"
    );
    assert!(
        !text.contains("server-side apply (dry run) refused"),
        "apply itself never ran: {text}"
    );
}

#[test]
fn a_small_quota_and_a_limit_range_fail() {
    let ns = "t-quota";
    ok(&kubectl(&["create", "namespace", ns]));
    ok(&kubectl(&[
        "create",
        "quota",
        "small",
        "-n",
        ns,
        "--hard=requests.cpu=1,pods=5,requests.storage=100Gi",
    ]));
    let (out, c) = json_doctor(ns, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let q = &c["quota"];
    assert_eq!(q["verdict"], "fail", "{q}");
    let details = q["details"].to_string();
    assert!(
        details.contains("ResourceQuota small: requests.cpu: the release needs 1.96 CPU, 1.00 CPU of 1.00 CPU is left"),
        "{details}"
    );
    assert!(
        details.contains("ResourceQuota small: pods: the release needs 14, 5 of 5 is left"),
        "{details}"
    );
    assert!(!details.contains("requests.storage"), "{details}");
    // Negative control: a quota the release fits.
    ok(&kubectl(&["delete", "quota", "small", "-n", ns]));
    ok(&kubectl(&[
        "create",
        "quota",
        "roomy",
        "-n",
        ns,
        "--hard=requests.cpu=10,pods=20",
    ]));
    let (_, c) = json_doctor(ns, &[]);
    assert_eq!(verdict(&c, "quota"), "pass", "{:?}", c["quota"]);
    assert_eq!(verdict(&c, "limit-range"), "pass");

    // A LimitRange whose container maximum is below the chart's limits.
    let lr = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: small}\nspec:\n  limits:\n  - type: Container\n    max: {cpu: '1'}\n";
    ok(&kubectl_stdin(&["apply", "-n", ns, "-f", "-"], lr));
    let (out, c) = json_doctor(ns, &[]);
    assert_eq!(out.status.code(), Some(1));
    let l = &c["limit-range"];
    assert_eq!(l["verdict"], "fail", "{l}");
    assert!(
        l["details"].to_string().contains(
            "LimitRange small: api container api: limits.cpu 2.00 CPU is above the max 1.00 CPU"
        ),
        "{l}"
    );
}

/// An autoscaled component counts with its autoscaler's minReplicas (2 by default), not the one
/// replica its Deployment would run without one: a quota that fits one web pod but not two
/// fails once web autoscales.
#[test]
fn an_autoscaled_component_counts_its_minimum_replicas_against_the_quota() {
    let ns = "t-quota-hpa";
    ok(&kubectl(&["create", "namespace", ns]));
    // Exactly the pods of the release without autoscaling (tests/doctor.rs's t-quota: 14 at
    // 1.16.1, the agent stack's included).
    ok(&kubectl(&[
        "create",
        "quota",
        "pods",
        "-n",
        ns,
        "--hard=pods=14",
    ]));
    let (_, c) = json_doctor(ns, &[]);
    assert_eq!(verdict(&c, "quota"), "pass", "{:?}", c["quota"]);

    let (out, c) = json_doctor(ns, &["--set", "web.autoscaling.enabled=true"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let q = &c["quota"];
    assert_eq!(q["verdict"], "fail", "{q}");
    assert!(
        q["details"]
            .to_string()
            .contains("ResourceQuota pods: pods: the release needs 15, 14 of 14 is left"),
        "{q}"
    );
}

#[test]
fn capacity_short_is_a_warning() {
    // No node has a thousand CPUs: a warning, not a failure.
    let (out, c) = json_doctor(
        "t-capacity",
        &[
            "--set",
            "api.resources.requests.cpu=1000",
            "--set",
            "api.resources.limits.cpu=1000",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let cap = &c["capacity"];
    assert_eq!(cap["verdict"], "warn", "{cap}");
    assert!(
        cap["reason"]
            .as_str()
            .unwrap()
            // api and api-websocket (1.14.1+) share api.resources.
            .contains("the release requests 2001.46 CPU"),
        "{cap}"
    );
}

/// An external PostgreSQL's max_connections cannot be read from outside the cluster: doctor
/// warns with the number the release can open (pools × most pods), here with 3 api replicas.
/// A bundled server is sized at render time and gets no such check.
#[test]
fn external_postgresql_connections_are_stated() {
    let (out, c) = json_doctor(
        "t-pg-connections",
        &[
            "--set",
            "postgresql.enabled=false",
            "--set",
            "postgresql.external.host=db.example.com",
            "--set",
            "api.replicas=3",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let check = &c["postgresql connections"];
    assert_eq!(check["verdict"], "warn", "{check}");
    // api: 3 + 1 surge pod × 40, api-websocket (1.14.1+) 2 × 40, worker 2 × 40, beat 40,
    // plugin daemon 30, 3 reserved.
    assert!(
        check["reason"]
            .as_str()
            .unwrap()
            .contains("can open 393 connections"),
        "{check}"
    );
    let (_, bundled) = json_doctor("t-pg-connections", &[]);
    assert!(!bundled.contains_key("postgresql connections"));
}

#[test]
fn a_sub_path_without_the_middleware_crd_fails() {
    let subpath = [
        "--set",
        "expose.path=/dify",
        "--set",
        "images.web.repository=registry.example.com/dify-web-dify",
        "--set",
        "images.web.basePath=/dify",
    ];
    // Negative control: the shared instance serves Middleware.
    let (_, c) = json_doctor("t-crd", &subpath);
    assert_eq!(
        verdict(&c, "api-resources"),
        "pass",
        "{:?}",
        c["api-resources"]
    );

    // An instance of its own, whose Middleware CRD is removed.
    let kc = cluster::start("doctor-crd");
    ok(&cluster::kubectl(
        &["delete", "crd", "middlewares.traefik.io", "--wait=true"],
        &kc,
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = doctor_on(
            &kc,
            "t-crd",
            &[&subpath[..], &["--output", "json"]].concat(),
        );
        if out.status.code() == Some(1) || Instant::now() > deadline {
            break out;
        }
    };
    let c = checks(&out);
    let check = &c["api-resources"];
    assert_eq!(check["verdict"], "fail", "{check}");
    assert_eq!(
        check["reason"], "the cluster does not serve Middleware (traefik.io/v1alpha1)",
        "{check}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("middlewares.traefik.io"),
        "{check}"
    );
    // At the root path nothing needs the CRD.
    let out = doctor_on(&kc, "t-crd", &["--output", "json"]);
    assert_eq!(verdict(&checks(&out), "api-resources"), "pass");
}

#[test]
fn apply_refuses_on_a_failure_and_skip_doctor_goes_ahead() {
    let ns = "t-gate";
    ok(&kubectl(&["create", "namespace", ns]));
    ok(&kubectl(&[
        "label",
        "namespace",
        ns,
        "pod-security.kubernetes.io/enforce=restricted",
    ]));
    let out = run(kubeconfig(), "apply", ns, &["--no-wait"]);
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains(
            "doctor: FAIL pod-security: namespace t-gate enforces Pod Security restricted"
        ),
        "{text}"
    );
    assert!(text.contains("Nothing was written."), "{text}");
    let left = ok(&kubectl(&[
        "get",
        "deploy,cm,secret",
        "-n",
        ns,
        "-o",
        "name",
    ]));
    assert!(!left.contains("dify-"), "apply wrote something: {left}");

    let out = run(kubeconfig(), "apply", ns, &["--no-wait", "--skip-doctor"]);
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("doctor:"), "{text}");
    assert!(ok(&kubectl(&["get", "deploy", "dify-api", "-n", ns])).contains("dify-api"));
    // Doctor now sees the release.
    let (_, c) = json_doctor(ns, &[]);
    let release = c["release"]["reason"].as_str().unwrap();
    assert!(
        release.starts_with("installed (applied, last applied "),
        "{release}"
    );
    assert!(
        release.contains("stays at Dify 1.16.1, same values; 0 object(s) to add, 0 to prune"),
        "{release}"
    );
}

// ---------------------------------------------------------------------------------------------
// difyrender test

/// A release in `ns`, applied once per namespace.
fn install(ns: &str) {
    let out = run(kubeconfig(), "apply", ns, &["--no-wait"]);
    assert!(out.status.success(), "{}", transcript(&out));
}

fn start_test(ns: &str, extra: &[&str]) -> Child {
    difyrender()
        .arg("test")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["-n", ns])
        .args(if extra.contains(&"--timeout") {
            &[][..]
        } else {
            &["--timeout", "60s"][..]
        })
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The running pod of the test Job in `ns`, once kwok has started it.
fn test_pod(ns: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pods = cluster::kubectl_json(
            &["get", "pods", "-n", ns, "-l", "difyrender.io/test-run"],
            kubeconfig(),
        );
        if let Some(pod) = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["status"]["phase"] == "Running")
        {
            return pod.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no running test pod in {ns}: {pods}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Ends the test container as the script would: exit code and termination message.
fn finish(ns: &str, pod: &Value, exit_code: i32, message: &str) {
    cluster::end_pod(ns, pod, exit_code, message, kubeconfig());
}

/// The script's real output when nothing it checks is reachable: every check a FAIL line.
fn script_run_against_nothing() -> String {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("termination-log");
    let script = root().join("src/cluster/smoke_test.py");
    let closed = "http://127.0.0.1:9";
    let out = Command::new("python3")
        .arg(&script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("DIFYTEST_RESULT_FILE", &result)
        .env("DIFYTEST_TIMEOUT", "2")
        .env("DIFYTEST_API_URL", closed)
        .env("DIFYTEST_WEB_URL", closed)
        .env("PLUGIN_DAEMON_URL", closed)
        .env("PLUGIN_DAEMON_KEY", "a-plugin-key-value")
        .env("CODE_EXECUTION_ENDPOINT", closed)
        .env("CODE_EXECUTION_API_KEY", "a-sandbox-key-value")
        .env("WEAVIATE_ENDPOINT", closed)
        .env("WEAVIATE_API_KEY", "a-weaviate-key-value")
        .env("REDIS_HOST", "127.0.0.1")
        .env("REDIS_PORT", "9")
        .env("REDIS_PASSWORD", "a-redis-password")
        .env("SSRF_PROXY_HTTP_URL", closed)
        .output()
        .unwrap();
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for secret in [
        "a-plugin-key-value",
        "a-sandbox-key-value",
        "a-weaviate-key-value",
        "a-redis-password",
    ] {
        assert!(!text.contains(secret), "the script printed a key: {text}");
    }
    let message = std::fs::read_to_string(&result).unwrap();
    assert!(
        message.len() < 4096,
        "termination messages hold 4 KiB: {}",
        message.len()
    );
    message
}

#[test]
fn the_test_job_is_built_from_the_api_and_its_results_come_back() {
    let ns = "t-smoke";
    install(ns);
    let child = start_test(ns, &["--keep"]);
    let pod = test_pod(ns);
    let job_name = pod["metadata"]["labels"]["difyrender.io/test-run"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = cluster::kubectl_json(&["get", "job", &job_name, "-n", ns], kubeconfig());

    // The release's own api image, non-root, restricted, no API token, keys by secretKeyRef.
    let api = cluster::kubectl_json(&["get", "deploy", "dify-api", "-n", ns], kubeconfig());
    let spec = &job["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    assert_eq!(
        container["image"],
        api["spec"]["template"]["spec"]["containers"][0]["image"]
    );
    assert_eq!(container["image"], "langgenius/dify-api:1.16.1");
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(spec["securityContext"]["runAsUser"], 1001);
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(
        container["terminationMessagePolicy"],
        "FallbackToLogsOnError"
    );
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let job_spec_pss = difyrender::cluster::podsecurity::violations(
        spec,
        difyrender::cluster::podsecurity::Level::Restricted,
    );
    assert!(job_spec_pss.is_empty(), "{job_spec_pss:?}");
    let env = container["env"].as_array().unwrap();
    for key in [
        "PLUGIN_DAEMON_KEY",
        "CODE_EXECUTION_API_KEY",
        "WEAVIATE_API_KEY",
        "DB_PASSWORD",
        "REDIS_PASSWORD",
    ] {
        let e = env
            .iter()
            .find(|e| e["name"] == key)
            .unwrap_or_else(|| panic!("no {key}"));
        assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], "dify-keys", "{e}");
        assert!(e.get("value").is_none(), "{e}");
    }
    assert_no_secrets(&job.to_string(), &secrets_of(MASTER), "the test Job");
    let var = |name: &str| env.iter().find(|e| e["name"] == name).unwrap()["value"].clone();
    assert_eq!(var("DIFYTEST_API_URL"), "http://dify-api:5001");
    assert_eq!(var("DIFYTEST_SANDBOX_URL"), "http://dify-sandbox:8194");
    assert_eq!(var("DIFYTEST_THROUGH_INGRESS"), "0");

    // The container reports every check as the script prints it.
    let lines = [
        r#"DIFYTEST {"check":"api-health","ok":true,"detail":"GET /health: 200"}"#,
        r#"DIFYTEST {"check":"redis","ok":true,"detail":"AUTH with the api's password: +OK, PING: +PONG"}"#,
    ]
    .join("\n");
    finish(ns, &pod, 0, &lines);
    let out = child.wait_with_output().unwrap();
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("api-health  PASS    GET /health: 200"),
        "{text}"
    );
    assert!(
        stdout.contains(&format!("job       {job_name} (Complete, kept)")),
        "{text}"
    );
    assert!(stdout.contains("2 passed, 0 failed"), "{text}");
    // --keep: the Job stays.
    ok(&kubectl(&["get", "job", &job_name, "-n", ns]));
}

#[test]
fn failed_checks_are_reported_and_the_job_is_removed() {
    let ns = "t-smoke-fail";
    install(ns);
    let message = script_run_against_nothing();
    let child = start_test(ns, &["--output", "json"]);
    let pod = test_pod(ns);
    let job_name = pod["metadata"]["labels"]["difyrender.io/test-run"]
        .as_str()
        .unwrap()
        .to_owned();
    finish(ns, &pod, 1, &message);
    let out = child.wait_with_output().unwrap();
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "Failed", "{text}");
    let results = report["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "api-health",
            "console-setup",
            "web",
            "plugin-daemon-health",
            "plugin-daemon-key",
            "sandbox",
            "weaviate",
            "postgresql",
            "redis",
            "egress-allowed",
            "egress-private-refused"
        ],
        "{text}"
    );
    assert!(results.iter().all(|r| r["ok"] == false), "{text}");
    let postgres = results.iter().find(|r| r["check"] == "postgresql").unwrap();
    assert!(
        postgres["detail"]
            .as_str()
            .unwrap()
            .contains("not set: DB_HOST"),
        "{postgres}"
    );
    assert!(
        text.contains(&format!("deleted Job/{ns}/{job_name}")),
        "{text}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = kubectl(&["get", "job", &job_name, "-n", ns]);
        if !left.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the Job was not removed");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A container that dies without results: the exit code is the reason.
    let child = start_test(ns, &["--through-ingress"]);
    let pod = test_pod(ns);
    let env = pod["spec"]["containers"][0]["env"].as_array().unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(var("DIFYTEST_THROUGH_INGRESS"), Some("1".into()));
    assert_eq!(var("CONSOLE_API_URL"), Some("http://192.0.2.10".into()));
    finish(ns, &pod, 137, "");
    let out = child.wait_with_output().unwrap();
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("reported no results: its container ended with exit code 137 (Error)"),
        "{text}"
    );
}

#[test]
fn a_test_pod_that_never_finishes_is_ended_by_the_job_deadline() {
    let ns = "t-smoke-deadline";
    install(ns);
    // The pod runs (kwok) and never ends: the Job's activeDeadlineSeconds fails it.
    let child = start_test(ns, &["--timeout", "3s"]);
    let out = child.wait_with_output().unwrap();
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("is Failed (DeadlineExceeded"), "{text}");
    assert!(text.contains("reported no results"), "{text}");
    assert!(text.contains("was last seen: pod Running"), "{text}");
}

#[test]
fn test_needs_an_installed_release() {
    let out = difyrender()
        .arg("test")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["-n", "t-nothing"])
        .output()
        .unwrap();
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("no release dify in namespace t-nothing"),
        "{text}"
    );
}

/// A CRD file of the Go module pinned in hack/testenv/`pin`.
fn pinned_crd(pin: &str, module: &str, file: &str) -> PathBuf {
    cluster::pinned_module(pin, module).join(file)
}

/// `secrets.externalSecret`: the store it names must exist and be Ready. STAND-IN: the External
/// Secrets Operator's controller is not built here (only its CRDs, of the release pinned in
/// hack/testenv/external-secrets); the test sets the store's Ready condition through the status
/// subresource, as the controller does after validating the store.
#[test]
fn the_external_secrets_store_must_exist_and_be_ready() {
    let kc = cluster::start("doctor-eso");
    let eso = |extra: &[&str]| {
        let out = doctor_on(
            &kc,
            "t-eso",
            &[
                &[
                    "--set",
                    "secrets.existingSecret=eso-keys",
                    "--set",
                    "secrets.externalSecret.enabled=true",
                    "--set",
                    "secrets.externalSecret.remoteKey=dify/production",
                ][..],
                extra,
                &["--output", "json"],
            ]
            .concat(),
        );
        checks(&out)
    };
    let cluster_store = ["--set", "secrets.externalSecret.storeRef.name=vault"];
    // Without ESO's CRDs: the store's kind is not served.
    let c = eso(&cluster_store);
    let check = &c["secret-store"];
    assert_eq!(check["verdict"], "fail", "{check}");
    assert_eq!(
        check["reason"],
        "the cluster does not serve ClusterSecretStore (external-secrets.io/v1)"
    );
    // Negative control: without secrets.externalSecret there is no such check.
    let plain = checks(&doctor_on(&kc, "t-eso", &["--output", "json"]));
    assert!(!plain.contains_key("secret-store"), "{plain:?}");

    let module = "github.com/external-secrets/external-secrets";
    for (file, crd) in [
        ("externalsecrets", "externalsecrets.external-secrets.io"),
        (
            "clustersecretstores",
            "clustersecretstores.external-secrets.io",
        ),
        ("secretstores", "secretstores.external-secrets.io"),
    ] {
        cluster::install_crds(
            &pinned_crd(
                "external-secrets",
                module,
                &format!("config/crds/bases/external-secrets.io_{file}.yaml"),
            ),
            crd,
            &kc,
        );
    }
    // Served, but no store of that name.
    let check = eso(&cluster_store)["secret-store"].clone();
    assert_eq!(check["verdict"], "fail", "{check}");
    assert_eq!(check["reason"], "ClusterSecretStore vault does not exist");
    // The store exists, not yet validated by the operator.
    let store = r#"{"apiVersion":"external-secrets.io/v1","kind":"ClusterSecretStore","metadata":{"name":"vault"},"spec":{"provider":{"fake":{"data":[]}}}}"#;
    ok(&cluster::kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        store,
        &kc,
    ));
    let check = eso(&cluster_store)["secret-store"].clone();
    assert_eq!(check["verdict"], "warn", "{check}");
    let set_ready = |status: &str, reason: &str, message: &str| {
        let patch = format!(
            r#"{{"status":{{"conditions":[{{"type":"Ready","status":"{status}","reason":"{reason}","message":"{message}","lastTransitionTime":"2026-01-01T00:00:00Z"}}]}}}}"#
        );
        ok(&cluster::kubectl(
            &[
                "patch",
                "clustersecretstores.external-secrets.io",
                "vault",
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch,
            ],
            &kc,
        ));
    };
    set_ready(
        "False",
        "InvalidProviderConfig",
        "unable to log in to Vault",
    );
    let check = eso(&cluster_store)["secret-store"].clone();
    assert_eq!(check["verdict"], "fail", "{check}");
    assert_eq!(
        check["reason"],
        "ClusterSecretStore vault is not Ready (InvalidProviderConfig: unable to log in to Vault)"
    );
    set_ready("True", "Valid", "store validated");
    let c = eso(&cluster_store);
    assert_eq!(
        verdict(&c, "secret-store"),
        "pass",
        "{:?}",
        c["secret-store"]
    );
    assert_eq!(
        c["secret-store"]["reason"],
        "ClusterSecretStore vault is Ready"
    );
    // A namespaced SecretStore is looked up in the release's namespace, not elsewhere.
    let namespaced = [
        "--set",
        "secrets.externalSecret.storeRef.name=vault",
        "--set",
        "secrets.externalSecret.storeRef.kind=SecretStore",
    ];
    ok(&cluster::kubectl(
        &["create", "namespace", "t-eso-other"],
        &kc,
    ));
    let other = r#"{"apiVersion":"external-secrets.io/v1","kind":"SecretStore","metadata":{"name":"vault","namespace":"t-eso-other"},"spec":{"provider":{"fake":{"data":[]}}}}"#;
    ok(&cluster::kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        other,
        &kc,
    ));
    let check = eso(&namespaced)["secret-store"].clone();
    assert_eq!(check["verdict"], "fail", "{check}");
    assert_eq!(check["reason"], "SecretStore t-eso/vault does not exist");
}

/// `monitoring.enabled`: the Prometheus operator's CRDs (those of the release pinned in
/// hack/testenv/prometheus-operator, kube-prometheus-stack 78 of NKP 2.17) must be served.
#[test]
fn monitoring_needs_the_prometheus_operators_crds() {
    let kc = cluster::start("doctor-monitoring");
    let monitoring = || {
        checks(&doctor_on(
            &kc,
            "t-monitoring",
            &["--set", "monitoring.enabled=true", "--output", "json"],
        ))
    };
    let c = monitoring();
    let check = &c["api-resources"];
    assert_eq!(check["verdict"], "fail", "{check}");
    assert!(
        check["reason"]
            .as_str()
            .unwrap()
            .contains("PodMonitor (monitoring.coreos.com/v1)"),
        "{check}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("kube-prometheus-stack"),
        "{check}"
    );
    // Negative control: monitoring off needs no CRD.
    let off = checks(&doctor_on(&kc, "t-monitoring", &["--output", "json"]));
    assert_eq!(
        verdict(&off, "api-resources"),
        "pass",
        "{:?}",
        off["api-resources"]
    );
    cluster::install_crds(
        &pinned_crd(
            "prometheus-operator",
            "github.com/prometheus-operator/prometheus-operator",
            "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
        ),
        "podmonitors.monitoring.coreos.com",
        &kc,
    );
    let c = monitoring();
    assert_eq!(
        verdict(&c, "api-resources"),
        "pass",
        "{:?}",
        c["api-resources"]
    );
}
