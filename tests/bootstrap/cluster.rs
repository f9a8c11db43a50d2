//! On the real control plane (scripts/testenv, kwok): the Job's order, re-runs, key rotation
//! from Secrets of the cluster, and a failed Job stopping apply.

use super::*;

pub(crate) fn kubeconfig() -> &'static std::path::PathBuf {
    common::cluster::shared("bootstrap")
}

pub(crate) fn set_args(set: &[String]) -> Vec<String> {
    set.iter()
        .flat_map(|s| ["--set".to_owned(), s.clone()])
        .collect()
}

/// `difyrender apply` in `ns` with bootstrap on (provider openai, `key`), started.
fn start_apply(ns: &str, key: &str, extra: &[&str], out: &Path) -> Child {
    difyrender()
        .arg("apply")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["-n", ns, "--timeout", "180s"])
        .args(set_args(&bootstrap_values(key, extra)))
        .env("DIFY_SECRET_KEY", MASTER)
        .stdout(std::fs::File::create(out.join("stdout")).unwrap())
        .stderr(std::fs::File::create(out.join("stderr")).unwrap())
        .spawn()
        .unwrap()
}

fn finish_apply(mut child: Child, out: &Path) -> Output {
    let status = child.wait().unwrap();
    let output = Output {
        status,
        stdout: std::fs::read(out.join("stdout")).unwrap(),
        stderr: std::fs::read(out.join("stderr")).unwrap(),
    };
    let mut secrets = secrets_of(MASTER);
    secrets.extend([KEY_A.to_owned(), KEY_B.to_owned()]);
    assert_no_secrets(&transcript(&output), &secrets, "apply");
    output
}

pub(crate) fn apply(ns: &str, key: &str, extra: &[&str]) -> Output {
    let out = tempfile::tempdir().unwrap();
    let child = start_apply(ns, key, extra, out.path());
    finish_apply(child, out.path())
}

pub(crate) fn bootstrap_jobs(ns: &str) -> Vec<Value> {
    common::cluster::kubectl_json(
        &[
            "get",
            "jobs",
            "-n",
            ns,
            "-l",
            "app.kubernetes.io/component=bootstrap",
        ],
        kubeconfig(),
    )["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The render passes a strict server-side dry run, also with the provider key in an optional
/// Secret reference (`bootstrap.provider.apiKeySecret.optional`).
#[test]
fn cluster_the_render_passes_a_strict_server_side_dry_run() {
    let optional = [
        "bootstrap.provider.apiKeySecret.name=nai",
        "bootstrap.provider.apiKeySecret.key=api-key",
        "bootstrap.provider.apiKeySecret.optional=true",
    ];
    for extra in [&[][..], &optional[..]] {
        let out = difyrender()
            .arg("render")
            .args(["-n", "default"])
            .args(set_args(&bootstrap_values(KEY_A, extra)))
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap();
        common::cluster::ok(&out);
        let stream = String::from_utf8(out.stdout).unwrap();
        assert!(stream.contains("kind: Job"), "{stream}");
        assert_eq!(
            stream.contains("optional: true"),
            !extra.is_empty(),
            "{extra:?}"
        );
        common::cluster::strict_dry_run(
            &stream,
            "difyrender",
            kubeconfig(),
            &format!("bootstrap render {extra:?}"),
        );
    }
}

#[test]
fn cluster_the_job_runs_after_the_apps_once_and_again_for_a_new_key() {
    let ns = "bootstrap-order";
    let kc = kubeconfig();
    let first = apply(ns, KEY_A, &[]);
    let text = common::cluster::ok(&first);
    // The apps are ready before the Job is written, and apply waits for the Job.
    let pos = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in {text}"))
    };
    assert!(
        pos("all objects are ready") < pos("stage 7 bootstrap"),
        "{text}"
    );
    assert!(
        pos("stage 7 bootstrap") < pos("waiting for the bootstrap Job"),
        "{text}"
    );
    let jobs = bootstrap_jobs(ns);
    assert_eq!(jobs.len(), 1);
    let created = jobs[0]["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let deployments = common::cluster::kubectl_json(&["get", "deployments", "-n", ns], kc);
    for d in deployments["items"].as_array().unwrap() {
        let available = d["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Available" && c["status"] == "True")
            .unwrap_or_else(|| panic!("{} is available", d["metadata"]["name"]));
        // RFC 3339 UTC timestamps of one format compare as text.
        assert!(
            available["lastTransitionTime"].as_str().unwrap() <= created.as_str(),
            "{} became available after the Job was created",
            d["metadata"]["name"]
        );
    }
    assert_eq!(jobs[0]["status"]["succeeded"], 1);

    // The keys are in no object but the keys Secret.
    let mut secrets = secrets_of(MASTER);
    secrets.push(KEY_A.to_owned());
    let all = common::cluster::kubectl_json(
        &[
            "get",
            "deploy,sts,job,pod,svc,cm,pvc,ingress,networkpolicy,secret",
            "-n",
            ns,
        ],
        kc,
    );
    for o in all["items"].as_array().unwrap() {
        if o["kind"] == "Secret" && o["metadata"]["name"] == "dify-keys" {
            continue;
        }
        assert_no_secrets(
            &o.to_string(),
            &secrets,
            &format!("{} {}", o["kind"], o["metadata"]["name"]),
        );
    }
    // Negative control: the keys Secret does hold the OpenAI key.
    let keys = common::cluster::kubectl_json(&["get", "secret", "dify-keys", "-n", ns], kc);
    assert!(keys.to_string().contains(&encodings(KEY_A)[1]));

    // Apply again: nothing is written, the Job is not run again.
    common::cluster::wait_rollouts_settled(ns, kc);
    let before = common::cluster::resource_versions(ns, kc);
    common::cluster::ok(&apply(ns, KEY_A, &[]));
    assert_eq!(before, common::cluster::resource_versions(ns, kc));

    // A new key: a new Job runs, the old one is pruned.
    common::cluster::ok(&apply(ns, KEY_B, &[]));
    let jobs_after = bootstrap_jobs(ns);
    assert_eq!(jobs_after.len(), 1);
    assert_ne!(
        jobs_after[0]["metadata"]["name"],
        jobs[0]["metadata"]["name"]
    );
    assert_eq!(jobs_after[0]["status"]["succeeded"], 1);
}

/// The provider key in a Secret of the cluster (`bootstrap.provider.apiKeySecret`, here for
/// openai-compatible) is an input of the Job's name: apply and diff read it before rendering.
#[test]
fn cluster_a_changed_key_secret_runs_the_job_again_and_an_unrelated_key_does_not() {
    let ns = "bootstrap-key-secret";
    let kc = kubeconfig();
    let (nai_a, nai_b) = ("nai-secret-key-aaaaaaaaaaaa", "nai-secret-key-bbbbbbbbbbbb");
    let compatible = [
        "bootstrap.provider.type=openai-compatible",
        "bootstrap.provider.endpointUrl=http://192.0.2.50:8000/v1",
        "bootstrap.provider.models[0]=llama",
        "bootstrap.provider.apiKeySecret.name=nai",
        "bootstrap.provider.apiKeySecret.key=api-key",
    ];
    let mut secrets = secrets_of(MASTER);
    secrets.extend([KEY_A.to_owned(), nai_a.to_owned(), nai_b.to_owned()]);
    let kubectl = |args: &[&str]| common::cluster::ok(&common::cluster::kubectl(args, kc));
    // The Secret, written as an operator would (kubectl apply of a whole Secret).
    let write_secret = |key: &str, other: &str| {
        let manifest = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "nai", "namespace": ns},
            "stringData": {"api-key": key, "other": other},
        });
        common::cluster::ok(&common::cluster::kubectl_stdin(
            &["apply", "-f", "-"],
            &manifest.to_string(),
            kc,
        ));
    };
    let run = |verb: &str, extra: &[&str]| {
        let out = difyrender()
            .arg(verb)
            .arg("--kubeconfig")
            .arg(kc)
            .args(["-n", ns, "--timeout", "180s"])
            .args(extra)
            .args(set_args(&bootstrap_values(KEY_A, &compatible)))
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap();
        assert_no_secrets(&transcript(&out), &secrets, verb);
        out
    };
    let diff = || run("diff", &["--color", "never"]);
    let job_name = || {
        let jobs = bootstrap_jobs(ns);
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0]["status"]["succeeded"], 1);
        jobs[0]["metadata"]["name"].as_str().unwrap().to_owned()
    };

    kubectl(&["create", "namespace", ns]);
    // No Secret yet: apply stops before it writes anything, with doctor's reason, and without
    // doctor with its own check of the Secrets the pods read.
    let empty = common::cluster::resource_versions(ns, kc);
    for extra in [&[][..], &["--skip-doctor"][..]] {
        let missing = run("apply", extra);
        let text = transcript(&missing);
        assert_eq!(missing.status.code(), Some(3), "{text}");
        assert!(
            text.contains(&format!("Secret {ns}/nai does not exist")),
            "{text}"
        );
        assert_eq!(common::cluster::resource_versions(ns, kc), empty);
    }
    write_secret(nai_a, "x");
    common::cluster::ok(&run("apply", &[]));
    let job_a = job_name();

    // Unchanged: diff sees nothing, apply writes nothing.
    common::cluster::wait_rollouts_settled(ns, kc);
    let same = diff();
    assert_eq!(same.status.code(), Some(0), "{}", transcript(&same));
    let before = common::cluster::resource_versions(ns, kc);
    common::cluster::ok(&run("apply", &[]));
    assert_eq!(before, common::cluster::resource_versions(ns, kc));

    // Negative control: another key of the Secret changes nothing of the release.
    write_secret(nai_a, "y");
    let before = common::cluster::resource_versions(ns, kc);
    let same = diff();
    assert_eq!(same.status.code(), Some(0), "{}", transcript(&same));
    common::cluster::ok(&run("apply", &[]));
    assert_eq!(before, common::cluster::resource_versions(ns, kc));
    assert_eq!(job_name(), job_a);

    // A new key: diff shows a new Job, apply runs it and prunes the old one.
    write_secret(nai_b, "y");
    let changed = diff();
    let text = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(changed.status.code(), Some(1), "{}", transcript(&changed));
    assert!(text.contains(&format!("+ Job/{ns}/")), "{text}");
    assert!(
        text.contains(&format!("- Job/{ns}/{job_a} would be pruned")),
        "{text}"
    );
    common::cluster::ok(&run("apply", &[]));
    let job_b = job_name();
    assert_ne!(job_b, job_a);
    assert!(
        text.contains(&format!("+ Job/{ns}/{job_b} would be created")),
        "{text}"
    );
    // The Job reads the key by reference.
    let job = &bootstrap_jobs(ns)[0];
    let env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let var = env
        .iter()
        .find(|e| e["name"] == "PROVIDER_API_KEY")
        .unwrap();
    assert_eq!(
        var["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "nai", "key": "api-key"})
    );

    // The key is in no object but its Secret; negative control: the Secret does hold it.
    let all = common::cluster::kubectl_json(
        &[
            "get",
            "deploy,sts,job,pod,svc,cm,pvc,ingress,networkpolicy,secret",
            "-n",
            ns,
        ],
        kc,
    );
    let keys = [nai_a.to_owned(), nai_b.to_owned()];
    for o in all["items"].as_array().unwrap() {
        if o["kind"] == "Secret" && o["metadata"]["name"] == "nai" {
            assert!(o.to_string().contains(&encodings(nai_b)[1]), "{o}");
            continue;
        }
        assert_no_secrets(
            &o.to_string(),
            &keys,
            &format!("{} {}", o["kind"], o["metadata"]["name"]),
        );
    }
}

/// With `secrets.existingSecret` the Job reads the OpenAI key from the operator's Secret: apply
/// reads it there too, so a changed key runs a new Job.
#[test]
fn cluster_a_changed_key_in_the_existing_secret_runs_the_job_again() {
    let ns = "bootstrap-existing-secret";
    let kc = kubeconfig();
    let set: Vec<String> = bootstrap_values(KEY_A, &[])
        .into_iter()
        .filter(|s| !s.starts_with("secrets.openaiApiKey"))
        .chain(["secrets.existingSecret=site-keys".to_owned()])
        .collect();
    // The operator's Secret: the keys Secret the release would render, under another name,
    // with `key` as its OpenAI key.
    let write_secret = |key: &str| {
        let rendered = render(bootstrap_values(key, &[]));
        let mut secret = rendered
            .manifest
            .resources
            .iter()
            .find(|r| r.kind == "Secret" && r.name == "dify-keys")
            .expect("the keys Secret")
            .body
            .clone();
        secret["metadata"] = serde_json::json!({"name": "site-keys", "namespace": ns});
        common::cluster::ok(&common::cluster::kubectl_stdin(
            &["apply", "-f", "-"],
            &secret.to_string(),
            kc,
        ));
    };
    let apply = || {
        let out = difyrender()
            .arg("apply")
            .arg("--kubeconfig")
            .arg(kc)
            .args(["-n", ns, "--timeout", "180s"])
            .args(set_args(&set))
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap();
        let mut secrets = secrets_of(MASTER);
        secrets.extend([KEY_A.to_owned(), KEY_B.to_owned()]);
        assert_no_secrets(&transcript(&out), &secrets, "apply");
        common::cluster::ok(&out);
    };
    let job_name = || {
        let jobs = bootstrap_jobs(ns);
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0]["status"]["succeeded"], 1);
        jobs[0]["metadata"]["name"].as_str().unwrap().to_owned()
    };
    common::cluster::ok(&common::cluster::kubectl(&["create", "namespace", ns], kc));
    write_secret(KEY_A);
    apply();
    let job_a = job_name();
    common::cluster::wait_rollouts_settled(ns, kc);
    let before = common::cluster::resource_versions(ns, kc);
    apply();
    assert_eq!(before, common::cluster::resource_versions(ns, kc));
    write_secret(KEY_B);
    apply();
    assert_ne!(job_name(), job_a);
}

#[test]
fn cluster_a_failed_job_stops_apply_with_its_reason() {
    let ns = "bootstrap-fail";
    let kc = kubeconfig();
    let out = tempfile::tempdir().unwrap();
    // kwok completes Job pods at once unless they are held (hack/testenv/kwok/stages.yaml);
    // the test then ends the pod as the script would on a refused key.
    let child = start_apply(
        ns,
        KEY_A,
        &["bootstrap.pod.labels.testenv-hold=held"],
        out.path(),
    );
    let pod = common::cluster::wait_pod(
        ns,
        "app.kubernetes.io/component=bootstrap",
        "Running",
        kc,
        std::time::Duration::from_secs(150),
    );
    let reason = "the provider refused the OpenAI credential: Credentials validation failed with status code 401 (exit code 16)";
    common::cluster::end_pod(ns, &pod, 16, reason, kc);
    let failed = finish_apply(child, out.path());
    let text = transcript(&failed);
    assert_eq!(failed.status.code(), Some(4), "{text}");
    assert!(text.contains("exited with code 16"), "{text}");
    assert!(text.contains(reason), "{text}");
}
