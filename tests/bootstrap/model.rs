//! `difyrender test`: the model answers (the check "model" of src/cluster/smoke_test.py).

use super::*;

/// `src/cluster/smoke_test.py` with only its check "model", run by python3 as the test Job runs
/// it, with the bootstrap Job's variables; returns its output and its termination message,
/// both checked for keys.
fn run_model_script(vars: &[(&str, &str)]) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let out = Command::new("python3")
        .arg(root().join("src/cluster/smoke_test.py"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("DIFYTEST_RESULT_FILE", &log)
        .env("DIFYTEST_TIMEOUT", "5")
        .env("DIFYTEST_CHECKS", "model")
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let keys: Vec<String> = [KEY_A, KEY_B, WRONG_KEY].map(String::from).to_vec();
    assert_no_secrets(&transcript(&out), &keys, "the test script's output");
    let message = read(&log);
    assert_no_secrets(&message, &keys, "the test script's termination message");
    (out, message)
}

/// The check "model" ([`run_model_script`]); returns (exit code, its one result, its
/// termination message).
pub(crate) fn model_check(vars: &[(&str, &str)]) -> (i32, Value, String) {
    let (out, message) = run_model_script(vars);
    let results = difyrender::cluster::smoketest::parse_results(&message);
    assert_eq!(results.len(), 1, "{}", transcript(&out));
    let result = serde_json::to_value(&results[0]).unwrap();
    (out.status.code().expect("exited"), result, message)
}

#[test]
fn test_asks_the_configured_model_and_says_why_it_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys"), format!("{KEY_A}\n")).unwrap();
    let stub = serve(
        "hack/bootstrap/openai_stub.py",
        &["--model", MODEL, "--keys-file", "keys"],
        dir.path(),
    );
    let endpoint = format!("http://127.0.0.1:{}/v1", stub.port);
    let compatible = |url: &str, key: &str| {
        vec![
            ("PROVIDER_TYPE", "openai-compatible".to_owned()),
            ("PROVIDER_URL", url.to_owned()),
            ("PROVIDER_MODELS", format!("{MODEL},another")),
            ("PROVIDER_API_KEY", key.to_owned()),
        ]
    };
    let check = |vars: Vec<(&str, String)>| {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        model_check(&vars)
    };

    // The key the Job has: the model answers.
    let (code, r, _) = check(compatible(&endpoint, KEY_A));
    assert_eq!(
        (code, &r["check"], &r["ok"]),
        (0, &"model".into(), &true.into()),
        "{r}"
    );
    assert_eq!(
        r["detail"],
        format!("model {MODEL} answered at {endpoint}/chat/completions: 'OK'")
    );

    // Negative control: a wrong key is refused, and the reason says so.
    let (code, r, _) = check(compatible(&endpoint, WRONG_KEY));
    assert_eq!((code, &r["ok"]), (1, &false.into()), "{r}");
    assert_eq!(
        r["detail"],
        format!(
            "the endpoint refused the key: POST {endpoint}/chat/completions: HTTP 401 Incorrect API key provided."
        )
    );

    // An endpoint nothing listens on: unreachable.
    let (code, r, _) = check(compatible("http://127.0.0.1:9/v1", KEY_A));
    assert_eq!(code, 1, "{r}");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "endpoint unreachable: POST http://127.0.0.1:9/v1/chat/completions: [Errno 111] Connection refused"
        ),
        "{detail}"
    );

    // The default model is the one asked; one the endpoint does not serve is named.
    let mut vars = compatible(&endpoint, KEY_A);
    vars.push(("DEFAULT_MODEL", "another".to_owned()));
    let (code, r, _) = check(vars);
    assert_eq!(code, 1, "{r}");
    assert_eq!(
        r["detail"],
        format!(
            "model another did not answer: POST {endpoint}/chat/completions: HTTP 404 The model `another` does not exist."
        )
    );

    // openai: bootstrap.provider.baseUrl is the plugin's openai_api_base, to which the OpenAI
    // SDK adds /v1.
    let base = format!("http://127.0.0.1:{}", stub.port);
    let (code, r, _) = check(vec![
        ("PROVIDER_TYPE", "openai".to_owned()),
        ("PROVIDER_URL", base),
        ("DEFAULT_MODEL", MODEL.to_owned()),
        ("PROVIDER_API_KEY", KEY_A.to_owned()),
    ]);
    assert_eq!((code, &r["ok"]), (0, &true.into()), "{r}");

    // Bootstrap on but its Job gone: a failure with the reason difyrender gives.
    let (code, r, _) = model_check(&[("DIFYTEST_MODEL_PROBLEM", "bootstrap is on but X is gone")]);
    assert_eq!(code, 1);
    assert_eq!(r["detail"], "bootstrap is on but X is gone");
}

#[test]
fn cluster_test_asks_the_model_with_the_bootstrap_jobs_key_reference() {
    let ns = "bootstrap-test";
    let kc = kubeconfig();
    common::cluster::ok(&apply(ns, KEY_A, &[]));
    let bootstrap = bootstrap_jobs(ns).remove(0);
    let start = || {
        difyrender()
            .arg("test")
            .arg("--kubeconfig")
            .arg(kc)
            .args(["-n", ns, "--timeout", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let test_pod = || {
        common::cluster::wait_pod(
            ns,
            "difyrender.io/test-run",
            "Running",
            kc,
            std::time::Duration::from_secs(60),
        )
    };
    let env_of = |pod: &Value, container: &str| -> Vec<Value> {
        pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == container)
            .unwrap()["env"]
            .as_array()
            .unwrap()
            .clone()
    };
    let var = |env: &[Value], name: &str| env.iter().find(|e| e["name"] == name).cloned();

    let child = start();
    let pod = test_pod();
    let env = env_of(&pod, "test");
    let job_env = env_of(&bootstrap["spec"]["template"], "bootstrap");
    for name in [
        "PROVIDER_TYPE",
        "PROVIDER_URL",
        "PROVIDER_MODELS",
        "DEFAULT_MODEL",
        "PROVIDER_API_KEY",
    ] {
        // Copied as the Job has it; a variable without a value (an empty one) is left out.
        let want = var(&job_env, name)
            .filter(|e| e.get("value").is_some() || e.get("valueFrom").is_some());
        assert_eq!(var(&env, name), want, "{name}");
    }
    assert_eq!(var(&env, "PROVIDER_TYPE").unwrap()["value"], "openai");
    assert_eq!(
        var(&env, "PROVIDER_API_KEY").unwrap()["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "dify-keys", "key": "OPENAI_API_KEY"})
    );
    let mut secrets = secrets_of(MASTER);
    secrets.push(KEY_A.to_owned());
    assert_no_secrets(&pod.to_string(), &secrets, "the test pod");

    // The container ends as the script does on a refused key: the reason comes back.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys"), format!("{KEY_B}\n")).unwrap();
    let stub = serve(
        "hack/bootstrap/openai_stub.py",
        &["--model", "gpt-4o-mini", "--keys-file", "keys"],
        dir.path(),
    );
    let base = format!("http://127.0.0.1:{}", stub.port);
    let (code, _, message) = model_check(&[
        ("PROVIDER_TYPE", "openai"),
        ("PROVIDER_URL", &base),
        ("PROVIDER_API_KEY", KEY_A),
    ]);
    common::cluster::end_pod(ns, &pod, code, &message, kc);
    let out = child.wait_with_output().unwrap();
    let text = transcript(&out);
    assert_no_secrets(&text, &secrets, "test");
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "model  FAIL    the endpoint refused the key: POST {base}/v1/chat/completions: HTTP 401"
        )),
        "{text}"
    );

    // The bootstrap Job deleted (as docs/bootstrap.md says, to run it again): the model is
    // unknown, and the check fails saying so, with no provider variable.
    common::cluster::ok(&common::cluster::kubectl(
        &[
            "delete",
            "job",
            "-n",
            ns,
            "-l",
            "app.kubernetes.io/component=bootstrap",
            "--wait",
        ],
        kc,
    ));
    let child = start();
    let pod = test_pod();
    let env = env_of(&pod, "test");
    assert!(var(&env, "PROVIDER_TYPE").is_none(), "{env:?}");
    let problem = var(&env, "DIFYTEST_MODEL_PROBLEM").unwrap();
    let problem = problem["value"].as_str().unwrap();
    assert!(
        problem.starts_with(&format!(
            "bootstrap is on but Job/{ns}/{} is gone",
            bootstrap["metadata"]["name"].as_str().unwrap()
        )),
        "{problem}"
    );
    common::cluster::end_pod(ns, &pod, 137, "", kc);
    let _ = child.wait_with_output().unwrap();
}

/// An optional key left empty (`apiKeySecret.optional`, the NKP form's field): the bootstrap
/// Job configured no model, so `test` asks none. Without `optional` the same empty key fails
/// the check, naming the variable (the negative control).
#[test]
fn test_asks_no_model_when_the_optional_key_was_left_empty() {
    let vars = [
        ("PROVIDER_TYPE", "openai-compatible"),
        ("PROVIDER_URL", "http://127.0.0.1:9/v1"),
        ("PROVIDER_MODELS", MODEL),
        ("PROVIDER_API_KEY", ""),
    ];
    let (code, r, _) = model_check(&vars);
    assert_eq!(code, 1, "{r}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("not set: PROVIDER_API_KEY"),
        "{r}"
    );

    let optional = [vars.as_slice(), &[("PROVIDER_KEY_OPTIONAL", "true")]].concat();
    let (out, message) = run_model_script(&optional);
    // Only "model" was asked for, and it did not run: no result at all (the script counts a run
    // without any check as failed; a real run has every other check).
    let results = difyrender::cluster::smoketest::parse_results(&message);
    assert!(results.is_empty(), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("difytest: 0 passed, 0 failed"),
        "{}",
        transcript(&out)
    );
}
