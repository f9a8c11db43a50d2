//! `difyrender doctor`: the key Secret, the endpoint, and the plugin daemon's egress.

use super::*;

/// `difyrender doctor --output json` in `ns` with bootstrap on (`extra` on top of the openai
/// values); the bootstrap checks by name, and the others' count.
fn doctor_bootstrap(ns: &str, extra: &[&str], secrets: &[String]) -> Vec<(String, Value)> {
    let out = difyrender()
        .arg("doctor")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["-n", ns, "--output", "json"])
        .args(set_args(&bootstrap_values(KEY_A, extra)))
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    let text = transcript(&out);
    let mut all = secrets_of(MASTER);
    all.extend(secrets.iter().cloned());
    all.push(KEY_A.to_owned());
    assert_no_secrets(&text, &all, "doctor");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {text}"));
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("bootstrap"))
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

/// (verdict, reason) of one bootstrap check.
fn verdict_of(checks: &[(String, Value)], name: &str) -> (String, String) {
    let c = &checks
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no check {name}: {checks:?}"))
        .1;
    (
        c["verdict"].as_str().unwrap().to_owned(),
        c["reason"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn cluster_doctor_checks_the_key_secret_and_an_in_cluster_endpoint() {
    let ns = "bootstrap-doctor";
    let kc = kubeconfig();
    let nai_key = "nai-key-value-for-doctor-0123".to_owned();
    let compatible = |url: &'static str| {
        vec![
            "bootstrap.provider.type=openai-compatible",
            url,
            "bootstrap.provider.models[0]=llama",
            "bootstrap.provider.apiKeySecret.name=nai",
            "bootstrap.provider.apiKeySecret.key=api-key",
        ]
    };
    let in_cluster = compatible("bootstrap.provider.endpointUrl=http://vllm.models.svc:8000/v1");
    let run = |set: &[&str]| doctor_bootstrap(ns, set, std::slice::from_ref(&nai_key));
    let create = |args: &[&str]| common::cluster::ok(&common::cluster::kubectl(args, kc));

    // Nothing exists yet: both FAIL, saying what is missing.
    let c = run(&in_cluster);
    let (v, r) = verdict_of(&c, "bootstrap key");
    assert_eq!(v, "fail", "{r}");
    assert!(
        r.starts_with(&format!("Secret {ns}/nai does not exist")),
        "{r}"
    );
    let (v, r) = verdict_of(&c, "bootstrap endpoint");
    assert_eq!(v, "fail", "{r}");
    assert_eq!(
        r,
        "http://vllm.models.svc:8000/v1 names Service models/vllm, which does not exist"
    );
    // With apiKeySecret.optional the same missing Secret is a warning: the Job goes on and
    // sets up no model.
    let optional: Vec<&str> = in_cluster
        .iter()
        .copied()
        .chain(["bootstrap.provider.apiKeySecret.optional=true"])
        .collect();
    let (v, r) = verdict_of(&run(&optional), "bootstrap key");
    assert_eq!(v, "warn", "{r}");
    assert!(
        r.starts_with(&format!("Secret {ns}/nai gives no api-key (optional)")),
        "{r}"
    );

    // The Secret without the key, then with it.
    create(&["create", "namespace", ns]);
    create(&[
        "create",
        "secret",
        "generic",
        "nai",
        "-n",
        ns,
        "--from-literal=other=x",
    ]);
    let (v, r) = verdict_of(&run(&in_cluster), "bootstrap key");
    assert_eq!(v, "fail", "{r}");
    assert!(r.contains("has no key api-key"), "{r}");
    create(&["delete", "secret", "nai", "-n", ns]);
    create(&[
        "create",
        "secret",
        "generic",
        "nai",
        "-n",
        ns,
        &format!("--from-literal=api-key={nai_key}"),
    ]);
    let (v, r) = verdict_of(&run(&in_cluster), "bootstrap key");
    assert_eq!(
        (v.as_str(), r.as_str()),
        ("pass", "Secret bootstrap-doctor/nai holds api-key")
    );

    // The Service on another port, then on the URL's.
    create(&["create", "namespace", "models"]);
    create(&[
        "create",
        "service",
        "clusterip",
        "vllm",
        "-n",
        "models",
        "--tcp=8080:8080",
    ]);
    let (v, r) = verdict_of(&run(&in_cluster), "bootstrap endpoint");
    assert_eq!(v, "fail", "{r}");
    assert_eq!(
        r,
        "http://vllm.models.svc:8000/v1 names port 8000 of Service models/vllm, which serves port 8080"
    );
    create(&["delete", "service", "vllm", "-n", "models"]);
    create(&[
        "create",
        "service",
        "clusterip",
        "vllm",
        "-n",
        "models",
        "--tcp=8000:8000",
    ]);
    let (v, r) = verdict_of(&run(&in_cluster), "bootstrap endpoint");
    assert_eq!(v, "pass", "{r}");
    assert!(
        r.starts_with("http://vllm.models.svc:8000/v1: Service models/vllm exists with port 8000"),
        "{r}"
    );

    // A single-label host is a Service of the release's namespace when there is one; a WARN
    // otherwise (it could resolve through the node's search domains).
    let (v, r) = verdict_of(
        &run(&compatible(
            "bootstrap.provider.endpointUrl=http://nai-gateway:80/v1",
        )),
        "bootstrap endpoint",
    );
    assert_eq!(v, "warn", "{r}");
    assert!(
        r.contains(&format!("Service {ns}/nai-gateway, which does not exist")),
        "{r}"
    );

    // Outside the cluster: https passes (not reached from here), plain http warns, a URL
    // that cannot be used fails.
    let (v, r) = verdict_of(
        &run(&compatible(
            "bootstrap.provider.endpointUrl=https://nai.example.com/api/v1",
        )),
        "bootstrap endpoint",
    );
    assert_eq!(v, "pass", "{r}");
    assert!(
        r.contains("outside the cluster; doctor does not reach it"),
        "{r}"
    );
    let (v, r) = verdict_of(
        &run(&compatible(
            "bootstrap.provider.endpointUrl=http://nai.example.com/api/v1",
        )),
        "bootstrap endpoint",
    );
    assert_eq!(v, "warn", "{r}");
    assert!(r.contains("the API key travels unencrypted"), "{r}");
    let (v, r) = verdict_of(
        &run(&compatible(
            "bootstrap.provider.endpointUrl=https://nai.example.com:99999/v1",
        )),
        "bootstrap endpoint",
    );
    assert_eq!(v, "fail", "{r}");
    assert!(r.contains("its port \"99999\" is not a port number"), "{r}");

    // openai with secrets.openaiApiKey: the key is in the release's own Secret.
    let c = run(&[]);
    let (v, r) = verdict_of(&c, "bootstrap key");
    assert_eq!(
        (v.as_str(), r.as_str()),
        (
            "pass",
            "OPENAI_API_KEY is in the release's Secret bootstrap-doctor/dify-keys, which apply writes"
        )
    );
    let (v, r) = verdict_of(&c, "bootstrap endpoint");
    assert_eq!(v, "pass", "{r}");
    assert!(r.starts_with("openai: https://api.openai.com"), "{r}");

    // Bootstrap off: no bootstrap check.
    assert!(run(&["bootstrap.enabled=false"]).is_empty());
}

/// Debian's squid (installed by scripts/runtime) as a forward proxy on loopback, run in the
/// foreground from a directory of its own; stopped (its own process) when dropped.
struct Squid {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Squid {
    fn start() -> Squid {
        let dir = tempfile::tempdir().unwrap();
        // squid started as root writes its logs as its effective user (proxy).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let conf = format!(
            "http_port 127.0.0.1:{port}\npid_filename {d}/squid.pid\naccess_log stdio:{d}/access.log\n\
             cache_log {d}/cache.log\ncache_store_log none\nnetdb_filename none\ncoredump_dir {d}\n\
             cache deny all\nhttp_access allow localhost\nhttp_access deny all\n"
        );
        std::fs::write(dir.path().join("squid.conf"), conf).unwrap();
        let child = Command::new("/usr/sbin/squid")
            .arg("-f")
            .arg(dir.path().join("squid.conf"))
            .arg("-N")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("squid runs (scripts/runtime installs it)");
        let squid = Squid { child, port, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !std::fs::read_to_string(squid.dir.path().join("cache.log"))
            .unwrap_or_default()
            .contains("Accepting HTTP Socket connections")
        {
            assert!(std::time::Instant::now() < deadline, "squid did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        squid
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

#[test]
fn test_asks_the_model_through_the_plugin_daemons_proxy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys"), format!("{KEY_A}\n")).unwrap();
    let stub = serve(
        "hack/bootstrap/openai_stub.py",
        &["--model", MODEL, "--keys-file", "keys"],
        dir.path(),
    );
    let squid = Squid::start();
    let endpoint = format!("http://127.0.0.1:{}/v1", stub.port);
    let proxy = format!("http://127.0.0.1:{}", squid.port);
    let base = [
        ("PROVIDER_TYPE", "openai-compatible"),
        ("PROVIDER_URL", endpoint.as_str()),
        ("PROVIDER_MODELS", MODEL),
        ("PROVIDER_API_KEY", KEY_A),
    ];
    let with = |extra: &[(&'static str, &str)]| {
        let mut vars = base.to_vec();
        vars.extend_from_slice(extra);
        model_check(&vars)
    };

    // Through the proxy: the model answers, and squid carried the request.
    let (code, r, _) = with(&[("HTTP_PROXY", &proxy)]);
    assert_eq!((code, &r["ok"]), (0, &true.into()), "{r}");
    let log = squid.access_log();
    assert!(
        log.contains(&format!("POST {endpoint}/chat/completions")),
        "squid's access log: {log}"
    );

    // Negative control: a proxy that is not there makes it unreachable, naming the proxy
    // (its password scrubbed); NO_PROXY naming the host bypasses it.
    let dead = "http://user:proxy-password-0123@127.0.0.1:9";
    let (code, r, _) = with(&[("HTTP_PROXY", dead)]);
    assert_eq!(code, 1, "{r}");
    let detail = r["detail"].as_str().unwrap();
    assert!(detail.starts_with("endpoint unreachable: POST"), "{detail}");
    assert!(
        detail.contains("via http://user:***@127.0.0.1:9"),
        "{detail}"
    );
    assert!(!detail.contains("proxy-password-0123"), "{detail}");
    let (code, r, _) = with(&[("HTTP_PROXY", dead), ("NO_PROXY", "127.0.0.1")]);
    assert_eq!((code, &r["ok"]), (0, &true.into()), "{r}");

    // The proxy cannot reach the endpoint: squid's error is named.
    let (code, r, _) = with(&[
        ("HTTP_PROXY", &proxy),
        ("PROVIDER_URL", "http://127.0.0.1:9/v1"),
    ]);
    assert_eq!(code, 1, "{r}");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "endpoint unreachable through the proxy {proxy}: POST http://127.0.0.1:9/v1/chat/completions: HTTP 503 ERR_CONNECT_FAIL"
        )),
        "{detail}"
    );
}

#[test]
fn test_trusts_the_sites_ca_as_the_bootstrap_job_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys"), format!("{KEY_A}\n")).unwrap();
    let (crt, key) = self_signed(
        dir.path(),
        "nai-ca",
        "/CN=nai.site.example",
        &["-addext", "subjectAltName=IP:127.0.0.1"],
    );
    let (crt, key) = (crt.to_str().unwrap(), key.to_str().unwrap());
    let stub = serve(
        "hack/bootstrap/openai_stub.py",
        &["--model", MODEL, "--keys-file", "keys", "--tls", crt, key],
        dir.path(),
    );
    let endpoint = format!("https://127.0.0.1:{}/v1", stub.port);
    let vars = [
        ("PROVIDER_TYPE", "openai-compatible"),
        ("PROVIDER_URL", endpoint.as_str()),
        ("PROVIDER_MODELS", MODEL),
        ("PROVIDER_API_KEY", KEY_A),
    ];
    // Without the site's CA: refused, saying so.
    let (code, r, _) = model_check(&vars);
    assert_eq!(code, 1, "{r}");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "endpoint unreachable, its certificate is not trusted (trust.caBundle): POST {endpoint}/chat/completions: [SSL: CERTIFICATE_VERIFY_FAILED]"
        )),
        "{detail}"
    );
    // With the bootstrap Job's DIFYRENDER_CA_FILE: the model answers.
    let mut with_ca = vars.to_vec();
    with_ca.push(("DIFYRENDER_CA_FILE", crt));
    let (code, r, _) = model_check(&with_ca);
    assert_eq!((code, &r["ok"]), (0, &true.into()), "{r}");
}

#[test]
fn cluster_doctor_checks_network_policies_on_the_plugin_daemons_egress() {
    let ns = "bootstrap-egress";
    let kc = kubeconfig();
    let set = [
        "bootstrap.provider.type=openai-compatible",
        "bootstrap.provider.endpointUrl=https://nai.example.com/api/v1",
        "bootstrap.provider.models[0]=llama",
        "bootstrap.provider.apiKeySecret.name=nai",
        "bootstrap.provider.apiKeySecret.key=api-key",
    ];
    let egress = || verdict_of(&doctor_bootstrap(ns, &set, &[]), "bootstrap egress");
    let policy = |name: &str, selector: &str, egress: &str| {
        let yaml = format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  podSelector: {selector}\n  policyTypes: [Egress]\n  egress: {egress}\n"
        );
        common::cluster::ok(&common::cluster::kubectl_stdin(
            &["apply", "-f", "-"],
            &yaml,
            kc,
        ));
    };
    common::cluster::ok(&common::cluster::kubectl(&["create", "namespace", ns], kc));

    let (v, r) = egress();
    assert_eq!(
        (v.as_str(), r.as_str()),
        (
            "pass",
            "no NetworkPolicy restricts the plugin daemon's egress"
        )
    );

    // A deny-all for another component does not count.
    policy(
        "web-deny",
        "{matchLabels: {app.kubernetes.io/component: web}}",
        "[]",
    );
    assert_eq!(egress().0, "pass");

    // Deny-all for every pod: the endpoint's port is not allowed.
    policy("deny-all", "{}", "[]");
    let (v, r) = egress();
    assert_eq!(v, "fail", "{r}");
    assert_eq!(
        r,
        "NetworkPolicy deny-all restrict(s) the plugin daemon's egress and no rule allows TCP port 443 (the model endpoint's): the plugin's calls would be dropped"
    );

    // Port 443 for the plugin daemon, but no DNS: the name would not resolve.
    policy(
        "daemon-https",
        "{matchLabels: {app.kubernetes.io/component: plugin-daemon}}",
        "[{ports: [{port: 443, protocol: TCP}]}]",
    );
    let (v, r) = egress();
    assert_eq!(v, "fail", "{r}");
    assert!(
        r.contains(
            "no rule allows DNS (port 53): the endpoint's name nai.example.com would not resolve"
        ),
        "{r}"
    );

    // And DNS: allowed.
    policy(
        "dns",
        "{}",
        "[{ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}]",
    );
    let (v, r) = egress();
    assert_eq!(v, "pass", "{r}");
    assert!(r.contains("a rule allows TCP port 443 and DNS"), "{r}");
}
