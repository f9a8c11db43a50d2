//! `catalog --keys in-cluster`: the entry's keys Job fills in the keys Secret inside the cluster,
//! so enabling needs no step on the operator's machine. The Job's script runs against the real
//! API server as the Job's service account — a token `kubectl create token` issues for it, under
//! the entry's own ServiceAccount, Role and RoleBinding — and what it writes is compared with
//! what `difyrender secrets render` prints for the same master key.
//!
//! STAND-IN: the pod ([`common::keys_job`]). kwok runs no container, so the script runs here
//! (python3, standard library only, as in the api image) with the Job's environment, and the
//! service account's token, CA and namespace in a folder, where the kubelet would mount them.

mod common;
use common::cluster::{self, ok};
use common::*;
use serde_json::{Map, Value};
use std::process::Output;

shared_cluster!("catalog-keys");

const MASTER: &str = "catalog-keys-master-0123456789abcdef";
const OTHER_MASTER: &str = "another-master-key-fedcba9876543210";
const RELEASE: &str = "dify";

/// The entry's objects with `--keys in-cluster` (and `extra` values), substituted as Flux does
/// for release `dify` in `ns`.
fn entry(ns: &str, extra: &[&str]) -> Vec<Value> {
    let tmp = tempfile::tempdir().unwrap();
    let mut values = root_profile();
    values.extend(["--set".to_owned(), "external.host=192.0.2.10".to_owned()]);
    for e in extra {
        values.extend(["--set".to_owned(), e.to_string()]);
    }
    let out = difyrender()
        .args(["catalog", "--keys", "in-cluster", "--out"])
        .arg(tmp.path())
        .args(&values)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    let manifests = tmp.path().join("applications/dify/1.16.1/manifests");
    let one =
        |text: &str| -> Value { difyrender::yaml::from_str_multiple(text).unwrap().remove(0) };
    let kustomization = one(&read(&manifests.join("kustomization.yaml")));
    kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = read(&manifests.join(f.as_str().unwrap()));
            let text = difyrender::catalog::manifests::substitute_like_flux(
                &text,
                &[("releaseName", RELEASE), ("releaseNamespace", ns)],
            )
            .unwrap();
            one(&text)
        })
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, component: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| {
            o["kind"] == kind && o["metadata"]["labels"]["app.kubernetes.io/component"] == component
        })
        .unwrap_or_else(|| panic!("the entry has a {kind} of {component}"))
}

/// Creates what Flux would of the Job's objects (the service account, its Role and binding,
/// the empty keys Secret) in a new namespace `ns`.
fn install(ns: &str, objects: &[Value]) {
    ok(&kubectl(&["create", "namespace", ns]));
    for (kind, component) in [
        ("ServiceAccount", "keys"),
        ("Role", "keys"),
        ("RoleBinding", "keys"),
        ("Secret", "secrets"),
    ] {
        ok(&kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager=kustomize-controller",
                "-f",
                "-",
            ],
            &serde_json::to_string(find(objects, kind, component)).unwrap(),
        ));
    }
}

/// Runs the Job's script as its pod would ([`common::keys_job::run`]), and checks that it
/// printed no key.
fn run_job(ns: &str, objects: &[Value], master: Option<&str>) -> Output {
    let out = common::keys_job::run(kubeconfig(), ns, find(objects, "Job", "keys"), master);
    let mut secrets = vec![MASTER.to_owned(), OTHER_MASTER.to_owned()];
    secrets.extend(secrets_of(MASTER));
    assert_no_secrets(&transcript(&out), &secrets, "the keys Job");
    out
}

/// The keys Secret's data as `secrets render` prints it for `master`.
fn rendered_keys(ns: &str, master: &str, extra: &[&str]) -> Map<String, Value> {
    common::keys_job::rendered_keys(ns, RELEASE, master, extra)
        .as_object()
        .unwrap()
        .clone()
}

fn live(ns: &str) -> Value {
    kubectl_json(&["get", "secret", &format!("{RELEASE}-keys"), "-n", ns])
}

fn live_data(ns: &str) -> Map<String, Value> {
    live(ns)["data"].as_object().cloned().unwrap_or_default()
}

fn master_of(data: &Map<String, Value>) -> String {
    use base64::Engine;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(data["SECRET_KEY"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// The form's master key: the Job writes exactly the Secret `secrets render` prints for it
/// (bootstrap on, so the administrator's password too); a re-run writes nothing; a different
/// master key from the form is refused and changes nothing (exit 21).
#[test]
fn the_job_writes_what_secrets_render_prints_and_never_changes_a_key() {
    let ns = "t-keys-form";
    let extra = [
        "bootstrap.enabled=true",
        "bootstrap.admin.email=admin@example.com",
        "bootstrap.provider.endpointUrl=https://nai.example.com/api/v1",
        "bootstrap.provider.models[0]=llama",
        "bootstrap.provider.apiKeySecret.name=nai",
        "bootstrap.provider.apiKeySecret.key=api-key",
    ];
    let objects = entry(ns, &extra);
    install(ns, &objects);
    assert!(live_data(ns).is_empty(), "Flux creates the Secret empty");

    let first = run_job(ns, &objects, Some(MASTER));
    assert!(first.status.success(), "{}", transcript(&first));
    let want = rendered_keys(ns, MASTER, &extra);
    assert!(want.contains_key("ADMIN_PASSWORD"), "{want:?}");
    assert_eq!(live_data(ns), want);

    let version = live(ns)["metadata"]["resourceVersion"].clone();
    let again = run_job(ns, &objects, Some(MASTER));
    assert!(again.status.success(), "{}", transcript(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("every key present, nothing written"),
        "{}",
        transcript(&again)
    );
    assert_eq!(live(ns)["metadata"]["resourceVersion"], version);

    let other = run_job(ns, &objects, Some(OTHER_MASTER));
    assert_eq!(other.status.code(), Some(21), "{}", transcript(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("holds another master key than the form's"),
        "{}",
        transcript(&other)
    );
    assert_eq!(live(ns)["metadata"]["resourceVersion"], version);
}

/// No master key anywhere (the form's field left empty, NKP 2.16 without a form): the Job
/// generates one, and every other key is derived from it as `secrets render` would. A Secret
/// made by `secrets apply` beforehand is kept, and only a missing key is added.
#[test]
fn without_a_master_key_one_is_generated_and_an_existing_secret_is_kept() {
    let ns = "t-keys-generated";
    let objects = entry(ns, &[]);
    install(ns, &objects);
    let run = run_job(ns, &objects, None);
    assert!(run.status.success(), "{}", transcript(&run));
    let data = live_data(ns);
    let generated = master_of(&data);
    assert_eq!(generated.len(), 64, "a 32-byte hex key");
    assert_eq!(data, rendered_keys(ns, &generated, &[]));

    // `secrets apply` ran first (its Secret, with one key missing): nothing of it changes.
    let ns = "t-keys-kept";
    let objects = entry(ns, &[]);
    install(ns, &objects);
    let mut before = rendered_keys(ns, MASTER, &[]);
    let removed = before.remove("WEAVIATE_API_KEY").unwrap();
    ok(&kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=difyrender",
            "-f",
            "-",
        ],
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{RELEASE}-keys"), "namespace": ns},
            "data": before})
        .to_string(),
    ));
    let run = run_job(ns, &objects, None);
    assert!(run.status.success(), "{}", transcript(&run));
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("added WEAVIATE_API_KEY"),
        "{}",
        transcript(&run)
    );
    let mut after = live_data(ns);
    assert_eq!(after.remove("WEAVIATE_API_KEY").unwrap(), removed);
    assert_eq!(after, before);
}

/// Least privilege, with negative controls: the Job's account may read and patch its one
/// Secret and nothing else — not another Secret, not create one — and the script pointed at
/// another Secret is refused by the API server (exit 20). A weak master key from the form is
/// refused before anything is written (exit 2).
#[test]
fn the_jobs_account_reaches_its_one_secret_and_nothing_else() {
    let ns = "t-keys-rbac";
    let objects = entry(ns, &[]);
    install(ns, &objects);
    ok(&kubectl(&[
        "create",
        "secret",
        "generic",
        "other",
        "-n",
        ns,
        "--from-literal=k=v",
    ]));
    let job = find(&objects, "Job", "keys");
    let account = job["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap();
    let sa = tempfile::tempdir().unwrap();
    common::keys_job::write_account(kubeconfig(), sa.path(), ns, account);
    let as_job = |args: &[&str]| cluster::kubectl(args, &sa.path().join("kubeconfig"));
    let own = format!("{RELEASE}-keys");
    assert!(as_job(&["get", "secret", &own]).status.success());
    for denied in [
        as_job(&["get", "secret", "other"]),
        as_job(&["get", "secrets"]),
        as_job(&["create", "secret", "generic", "made", "--from-literal=k=v"]),
        as_job(&["delete", "secret", &own]),
    ] {
        assert!(!denied.status.success(), "{}", transcript(&denied));
        let text = transcript(&denied);
        assert!(
            text.contains("is forbidden: User \"system:serviceaccount:t-keys-rbac:"),
            "{text}"
        );
    }

    let mut elsewhere: Vec<Value> = objects.clone();
    for o in &mut elsewhere {
        if o["kind"] == "Job" {
            let env = o["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array_mut()
                .unwrap();
            for e in env {
                if e["name"] == "KEYS_SECRET" {
                    e["value"] = "other".into();
                }
            }
        }
    }
    let refused = run_job(ns, &elsewhere, Some(MASTER));
    assert_eq!(refused.status.code(), Some(20), "{}", transcript(&refused));
    assert!(
        transcript(&refused).contains("HTTP 403"),
        "{}",
        transcript(&refused)
    );

    let weak = run_job(ns, &objects, Some("aaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_eq!(weak.status.code(), Some(2), "{}", transcript(&weak));
    assert!(
        transcript(&weak).contains("too weak"),
        "{}",
        transcript(&weak)
    );
    assert!(live_data(ns).is_empty());
}

/// Every object of the entry with `--keys in-cluster` passes a strict server-side dry run, and
/// the form carries the master key as an optional `password` field whose FederatedSecret is the
/// Secret the Job reads.
#[test]
fn the_entry_passes_a_strict_dry_run_and_its_form_has_the_master_key() {
    let ns = "t-keys-dry-run";
    ok(&kubectl(&["create", "namespace", ns]));
    let objects = entry(ns, &[]);
    let stream: String = objects
        .iter()
        .map(|o| format!("---\n{}", difyrender::yaml::to_string(o)))
        .collect();
    cluster::strict_dry_run(
        &stream,
        "kustomize-controller",
        kubeconfig(),
        "--keys in-cluster",
    );
    let secret = find(&objects, "Secret", "secrets");
    assert_eq!(
        secret["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/ssa"],
        "IfNotPresent"
    );
    assert_eq!(
        secret["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"],
        "disabled"
    );
    assert!(secret.get("data").is_none());
}
