//! The runtime lane: the rendered stack's real programs (Debian's PostgreSQL, Redis, squid,
//! nginx, python3-kombu) run as local processes with the environment, command line, volumes
//! and configuration the kubelet would give each container, one network namespace per pod,
//! each Service name resolved by a cluster DNS to its pod's own loopback address. Programs no
//! registry has (the plugin daemon, the sandbox, the api) are replaced by a recorder where a
//! check needs something in their place; see docs/development.md, "Runtime test lane".

mod common;

use common::kubelet::{
    self, command_line, container, container_env, env_get, find, job_named, pod_template,
};
use common::lane::{self, PATH, Spawn};
use common::release_spec;
use common::stack::{Stack, argv, recorded, run_as, spawn, tcp_check, text, with_path};
use difyrender::release::{RenderedRelease, render_release};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MASTER: &str = "runtime-lane-master-key-0123456789abcdef";
const HOST: &str = "203.0.113.10";

/// The NKP profile at `path` (a sub-path with its base-path web image), https, plus `set`.
fn render(path: &str, set: &[&str]) -> RenderedRelease {
    let mut values = vec![
        "expose.ingressClassName=kommander-traefik".to_owned(),
        "external.scheme=https".to_owned(),
        format!("external.host={HOST}"),
        "storage.storageClassName=nutanix-volume".to_owned(),
        format!("expose.path={path}"),
    ];
    if path != "/" {
        values.push("images.web.repository=registry.example.com/dify-web-dify".to_owned());
        values.push(format!("images.web.basePath={path}"));
    }
    values.extend(set.iter().map(|s| s.to_string()));
    render_release(&release_spec(values, MASTER)).expect("renders")
}

#[test]
fn env_expansion_follows_kubernetes() {
    let lookup = |n: &str| (n == "A").then(|| "x".to_owned());
    for (input, want) in [
        ("$(A)", "x"),
        ("a$(A)b$(A)", "axbx"),
        ("$$(A)", "$(A)"),
        ("$(B)", "$(B)"),
        ("$(A", "$(A"),
        ("$", "$"),
        ("$x$(A)", "$xx"),
        ("100%$", "100%$"),
        ("$$$(A)", "$x"),
    ] {
        assert_eq!(kubelet::expand(input, &lookup), want, "{input}");
    }
}

#[test]
fn datastores_accept_the_derived_passwords_and_refuse_others() {
    let mut s = Stack::new("datastores", render("/dify", &[]));
    s.start_postgres();
    s.start_redis();
    let api = s.env_of("Deployment", "dify-api", "api");
    let pod = s.client("api");

    // PostgreSQL, reached by the api's DB_HOST through cluster DNS and its search domains.
    let psql = |password: &str| {
        let env = [
            ("PGHOST", env_get(&api, "DB_HOST")),
            ("PGPORT", env_get(&api, "DB_PORT")),
            ("PGUSER", env_get(&api, "DB_USERNAME")),
            ("PGDATABASE", env_get(&api, "DB_DATABASE")),
            ("PGPASSWORD", password),
            ("PGCONNECT_TIMEOUT", "10"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        s.lane.exec(
            &pod,
            spawn(
                "psql",
                argv(&[
                    "psql",
                    "-tAc",
                    "select current_user || '@' || current_database()",
                ]),
                env,
            ),
        )
    };
    let ok = psql(env_get(&api, "DB_PASSWORD"));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout).trim(), "postgres@dify");
    let wrong = psql("not-the-password");
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("password authentication failed"),
        "{}",
        text(&wrong.stderr)
    );
    // The refusal is the rendered pod's: pg_hba.conf's method came from the rendered env and
    // arguments as the image's entrypoint derives it (no POSTGRES_HOST_AUTH_METHOD, so
    // password_encryption: scram-sha-256), not from the lane.
    assert_eq!(s.postgres_auth.as_deref(), Some("scram-sha-256"));

    // Redis: the api's password is required and enough.
    let redis = |password: Option<&str>| {
        let mut env = Vec::new();
        if let Some(p) = password {
            env.push(("REDISCLI_AUTH".to_owned(), p.to_owned()));
        }
        let out = s.lane.exec(
            &pod,
            spawn(
                "redis-cli",
                argv(&[
                    "redis-cli",
                    "-h",
                    env_get(&api, "REDIS_HOST"),
                    "-p",
                    env_get(&api, "REDIS_PORT"),
                    "ping",
                ]),
                env,
            ),
        );
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    };
    assert_eq!(redis(Some(env_get(&api, "REDIS_PASSWORD"))).trim(), "PONG");
    let none = redis(None);
    assert!(none.starts_with("NOAUTH"), "{none}");
    // redis-cli reports the refused AUTH, and the PING after it is refused.
    let wrong = redis(Some("not-the-password"));
    assert!(
        wrong.contains("WRONGPASS") && wrong.contains("NOAUTH"),
        "{wrong}"
    );
}

/// A pod-network source address for clients inside squid's pod (see the squid test).
const POD_NETWORK_CLIENT: &str = "10.244.0.10";

#[test]
fn weaviate_accepts_the_api_key_only() {
    let mut s = Stack::new("weaviate", render("/dify", &[]));
    s.start_weaviate();
    let api = s.env_of("Deployment", "dify-api", "api");
    let pod = s.client("api");
    let key = env_get(&api, "WEAVIATE_API_KEY").to_owned();
    // HTTP, at the api's WEAVIATE_ENDPOINT.
    let schema = format!("{}/v1/schema", env_get(&api, "WEAVIATE_ENDPOINT"));
    let bearer = |k: &str| format!("Authorization: Bearer {k}");
    let (code, body) = s.curl(&pod, &[&schema, "-H", &bearer(&key)]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        s.curl(&pod, &[&schema, "-H", &bearer("not-the-key")]).0,
        401
    );
    assert_eq!(s.curl(&pod, &[&schema]).0, 401, "anonymous access is off");
    // gRPC, at the api's WEAVIATE_GRPC_ENDPOINT: an empty TenantsGet call over HTTP/2. With
    // the key it gets past authentication (and fails for want of a collection); with another
    // key it does not.
    let grpc = env_get(&api, "WEAVIATE_GRPC_ENDPOINT").replacen("grpc://", "http://", 1);
    let call = |k: &str| {
        let out = s.lane.exec(
            &pod,
            spawn(
                "grpc",
                argv(&[
                    "bash",
                    "-c",
                    "printf '\\0\\0\\0\\0\\0' | curl -sS --max-time 20 --http2-prior-knowledge \
                     -o /dev/null -D - -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
                     -H \"authorization: Bearer $1\" --data-binary @- \"$2/weaviate.v1.Weaviate/TenantsGet\"",
                    "grpc",
                    k,
                    &grpc,
                ]),
                Vec::new(),
            ),
        );
        let headers = text(&out.stdout);
        let field = |name: &str| {
            headers.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        match (field("grpc-status"), field("grpc-message")) {
            (Some(status), message) => (status, message.unwrap_or_default()),
            _ => panic!("a gRPC status: {headers}{}", text(&out.stderr)),
        }
    };
    // Weaviate 1.27 answers both with UNKNOWN (2); the message tells them apart.
    let (_, with_key) = call(&key);
    assert_eq!(
        with_key, "get tenants: missing collection",
        "past authentication"
    );
    let (_, wrong) = call("not-the-key");
    assert!(wrong.contains("invalid api key"), "{wrong}");
}

#[test]
fn difyrender_test_job_passes_against_the_real_datastores() {
    use difyrender::cluster::smoketest;
    let mut s = Stack::new("smoketest", render("/dify", &[]));
    s.start_postgres();
    s.start_redis();
    s.start_weaviate();
    // The Job `difyrender test` would create from the rendered api Deployment.
    let api = find(&s.r.manifest, "Deployment", "dify-api");
    let options = smoketest::Options {
        keep: false,
        through_ingress: false,
        timeout: Duration::from_secs(60),
    };
    let job = smoketest::job("dify", "dify", "dify-test-lane", &api.body, &options).unwrap();
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(job).unwrap();
    let spec = job.spec.unwrap().template.spec.unwrap();
    let c = &spec.containers[0];
    let user = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.run_as_user)
        .unwrap()
        .to_string();
    // The checks whose servers run here (the api, web, plugin daemon and sandbox are in no
    // registry; squid's ACLs need a pod-network client, see the squid test). A pod's
    // termination log does not exist here: results on stdout only.
    let mut env = container_env(&s.r.manifest, c);
    env.push(("DIFYTEST_CHECKS".into(), "postgresql,redis,weaviate".into()));
    env.push(("DIFYTEST_RESULT_FILE".into(), String::new()));
    let line = command_line(c, &env, &[], &[]);
    let pod = s.client("test");
    let api_env = s.env_of("Deployment", "dify-api", "api");
    let keys: Vec<&str> = ["DB_PASSWORD", "REDIS_PASSWORD", "WEAVIATE_API_KEY"]
        .iter()
        .map(|k| env_get(&api_env, k))
        .collect();
    let run = |env: Vec<(String, String)>| {
        let out = s.lane.exec(
            &pod,
            Spawn {
                name: "difytest",
                argv: line.clone(),
                env,
                user: Some(&user),
                cwd: None,
            },
        );
        let stdout = text(&out.stdout);
        for key in &keys {
            assert!(!stdout.contains(key), "the test Job prints no key");
        }
        (
            out.status.success(),
            smoketest::parse_results(&stdout),
            stdout,
        )
    };
    let (ok, results, stdout) = run(env.clone());
    assert!(ok, "{stdout}");
    let checks: Vec<(&str, bool)> = results.iter().map(|r| (r.check.as_str(), r.ok)).collect();
    assert_eq!(
        checks,
        [("weaviate", true), ("postgresql", true), ("redis", true)],
        "{stdout}"
    );
    // One key swapped at a time: exactly its check fails, for the server's refusal of that key
    // (not a crash or an unreachable server), the others still pass, and the Job fails.
    for (key, check, refusal) in [
        (
            "DB_PASSWORD",
            "postgresql",
            "password authentication failed",
        ),
        (
            "REDIS_PASSWORD",
            "redis",
            "AUTH with the api's password: -WRONGPASS",
        ),
        (
            "WEAVIATE_API_KEY",
            "weaviate",
            "GET /v1/schema with the api's key: 401;",
        ),
    ] {
        let wrong: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| {
                let v = if k == key { "not-the-key" } else { v.as_str() };
                (k.clone(), v.to_owned())
            })
            .collect();
        let (ok, results, stdout) = run(wrong);
        assert!(!ok, "{key} swapped: {stdout}");
        let verdicts: Vec<(&str, bool)> =
            results.iter().map(|r| (r.check.as_str(), r.ok)).collect();
        let expected: Vec<(&str, bool)> = ["weaviate", "postgresql", "redis"]
            .iter()
            .map(|c| (*c, *c != check))
            .collect();
        assert_eq!(verdicts, expected, "{key} swapped: {stdout}");
        let failed = results.iter().find(|r| r.check == check).unwrap();
        assert!(
            failed.detail.contains(refusal),
            "{key} swapped: the {check} check failed for another reason: {}",
            failed.detail
        );
    }
}

#[test]
fn squid_runs_the_rendered_configuration() {
    // One outside server is listed in ssrfProxy.allowedPrivateNetworks, the other is not.
    let mut s = Stack::with_hosts(
        "squid",
        // A release with squid's reverse proxy to the sandbox (up to 1.14).
        render(
            "/",
            &[
                "ssrfProxy.allowedPrivateNetworks={127.0.3.1/32}",
                "images.dify.tag=1.14.2",
            ],
        ),
        &["allowed-target", "internal-service"],
    );
    // The sandbox is in no registry: a recorder in its pod, on its port, stands in for it.
    let (sandbox, _) = s.workload_pod("Deployment", "dify-sandbox");
    let sandbox_log = s.recorder(&sandbox, 8194);
    // Outside servers with DNS names like a Service's: plain HTTP on 443 (an SSL_port, for
    // CONNECT tunnels), on 8080 (a Safe_port) and on 25 (neither).
    let allowed = s.host("allowed-target");
    assert_eq!(s.lane.addr(&allowed).to_string(), "127.0.3.1");
    let allowed_443 = s.recorder(&allowed, 443);
    let allowed_8080 = s.recorder(&allowed, 8080);
    let allowed_25 = s.recorder(&allowed, 25);
    let internal = s.host("internal-service");
    let internal_443 = s.recorder(&internal, 443);
    let internal_8080 = s.recorder(&internal, 8080);
    let (allowed_fqdn, internal_fqdn) = (s.fqdn("allowed-target"), s.fqdn("internal-service"));
    s.start_squid();
    let squid = "dify-ssrf-proxy";
    let paths = |log: &Path| -> Vec<String> {
        recorded(log)
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_owned())
            .collect()
    };

    // In a cluster, squid's clients (api, worker, sandbox) have pod addresses, which are in the
    // rendered `localnet` ACL; lane pods have 127.0.x.y addresses, which are not. A client in
    // squid's own pod with a pod-network source address stands in for them: the address
    // exists only on that pod's loopback interface, and its packets never leave it.
    let add = s.lane.exec(
        squid,
        spawn(
            "ip",
            argv(&[
                "ip",
                "addr",
                "add",
                &format!("{POD_NETWORK_CLIENT}/32"),
                "dev",
                "lo",
            ]),
            Vec::new(),
        ),
    );
    assert!(add.status.success(), "{}", text(&add.stderr));
    let pod_client = |args: &[&str]| {
        let mut all = vec!["--interface", POD_NETWORK_CLIENT];
        all.extend_from_slice(args);
        s.curl(squid, &all)
    };
    let proxy = "http://127.0.0.1:3128";

    // The reverse proxy (8194 accel -> cache_peer): squid resolves the peer's name with its own
    // DNS client. It configures its peers shortly after it starts listening: polled.
    lane::wait_until(
        "squid's reverse proxy to reach the sandbox",
        Duration::from_secs(30),
        || pod_client(&["http://127.0.0.1:8194/v1/sandbox/dependencies?language=python3"]).0 == 200,
    );
    assert!(paths(&sandbox_log).contains(&"/v1/sandbox/dependencies?language=python3".into()));

    // The forward proxy, from the pod network. A private destination listed in
    // allowedPrivateNetworks: allowed (CONNECT to 443 goes direct, to the name squid resolves).
    let (code, body) = pod_client(&[
        "-x",
        proxy,
        "-p",
        &format!("http://{allowed_fqdn}:443/tunnel"),
    ]);
    assert_eq!(code, 200, "{body}");
    assert!(paths(&allowed_443).contains(&"/tunnel".into()));
    // A plain HTTP request through the forward proxy goes to its destination, never to the
    // sandbox's parent peer (cache_peer_access keeps the peer to the reverse-proxy port).
    let (code, body) = pod_client(&["-x", proxy, &format!("http://{allowed_fqdn}:8080/plain")]);
    assert_eq!(code, 200, "{body}");
    assert!(paths(&allowed_8080).contains(&"/plain".into()));
    assert!(!paths(&sandbox_log).contains(&"/plain".into()));
    // Any other private destination: refused, by name or by address, before any connection.
    for url in [
        format!("http://{internal_fqdn}:8080/private"),
        format!("http://{}:8080/private", s.lane.addr(&internal)),
    ] {
        assert_eq!(pod_client(&["-x", proxy, &url]).0, 403, "{url}");
    }
    let (code, _) = pod_client(&[
        "-x",
        proxy,
        "-p",
        &format!("http://{internal_fqdn}:443/private"),
    ]);
    assert_eq!(code, 403, "CONNECT to a private address");
    assert!(paths(&internal_8080).is_empty() && paths(&internal_443).is_empty());
    assert!(!paths(&sandbox_log).contains(&"/private".into()));
    // A port outside Safe_ports, and CONNECT to a port other than 443: refused.
    let (code, _) = pod_client(&["-x", proxy, &format!("http://{allowed_fqdn}:25/port")]);
    assert_eq!(code, 403, "port 25 is not a Safe_port");
    assert!(paths(&allowed_25).is_empty());
    let (code, _) = pod_client(&[
        "-x",
        proxy,
        "-p",
        &format!("http://{allowed_fqdn}:8080/port"),
    ]);
    assert_eq!(code, 403, "CONNECT to 8080");
    assert!(!paths(&allowed_8080).contains(&"/port".into()));
    // Squid does not apply resolv.conf's search domains (dns_defnames off): a short name does
    // not resolve. This is why cache_peer must be fully qualified.
    let (code, _) = pod_client(&["-x", proxy, "-p", "http://allowed-target:443/short"]);
    assert!(code >= 500, "a short name does not resolve: {code}");
    assert!(!paths(&allowed_443).contains(&"/short".into()));

    // Clients outside the pod network are refused: localhost is allowed only to public
    // destinations, any other address not at all (the reverse proxy included).
    let (code, _) = s.curl(
        squid,
        &[
            "-x",
            proxy,
            "-p",
            &format!("http://{allowed_fqdn}:443/localhost"),
        ],
    );
    assert_eq!(code, 403, "localhost to a private destination");
    let other = s.client("other");
    let (code, _) = s.curl(
        &other,
        &[
            "-x",
            "http://dify-ssrf-proxy:3128",
            "-p",
            &format!("http://{allowed_fqdn}:443/other"),
        ],
    );
    assert_eq!(code, 403, "a client outside the pod network");
    let (code, _) = s.curl(&other, &["http://dify-ssrf-proxy:8194/other"]);
    assert_eq!(code, 403, "the reverse proxy, from outside the pod network");
    assert!(
        !paths(&allowed_443)
            .iter()
            .any(|p| p == "/localhost" || p == "/other")
    );
    assert!(!paths(&sandbox_log).contains(&"/other".into()));
}

#[test]
fn agent_squid_lets_the_sandbox_reach_only_the_agent_stub_and_the_files() {
    // Dify 1.16.1's agent_ssrf_proxy, rendered for this release's Service names. agent_backend
    // and the api are in no registry: recorders in their pods, on their ports, stand in.
    let mut s = Stack::with_hosts(
        "agent-squid",
        render("/", &["images.dify.tag=1.16.1"]),
        &["outside"],
    );
    let (backend, _) = s.workload_pod("Deployment", "dify-agent-backend");
    let backend_log = s.recorder(&backend, 5050);
    let (api, _) = s.workload_pod("Deployment", "dify-api");
    let api_log = s.recorder(&api, 5001);
    let outside = s.host("outside");
    let outside_log = s.recorder(&outside, 8080);
    s.start_squid_of("dify-agent-ssrf-proxy", "agent-ssrf-proxy");
    let sandbox_env = s.env_of("Deployment", "dify-local-sandbox", "local-sandbox");
    let proxy = env_get(&sandbox_env, "HTTP_PROXY").to_owned();
    let stub = env_get(
        &s.env_of("Deployment", "dify-agent-backend", "agent-backend"),
        "DIFY_AGENT_STUB_API_BASE_URL",
    )
    .to_owned();
    let files = env_get(
        &s.env_of("Deployment", "dify-api", "api"),
        "INTERNAL_FILES_URL",
    )
    .to_owned();
    // local_sandbox's stand-in: a client pod that uses the proxy local_sandbox is given.
    let sandbox = s.client("local-sandbox");
    let through = |url: &str| s.curl(&sandbox, &["-x", &proxy, url]).0;
    let paths = |log: &Path| -> Vec<String> {
        recorded(log)
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_owned())
            .collect()
    };
    let (backend_fqdn, api_fqdn) = (s.fqdn("dify-agent-backend"), s.fqdn("dify-api"));

    // The two allowed destinations, by the names local_sandbox is given.
    assert_eq!(through(&format!("{stub}/runs/r1/tools")), 200, "{stub}");
    assert_eq!(
        through(&format!("{files}/files/f1/file-preview?sign=x")),
        200,
        "{files}"
    );
    assert!(paths(&backend_log).contains(&"/agent-stub/runs/r1/tools".into()));
    assert!(paths(&api_log).contains(&"/files/f1/file-preview?sign=x".into()));

    // Anything else: agent_backend's other routes (the run API, the unauthenticated sandbox
    // files), the api's other paths, the same hosts by address, any other private
    // destination.
    let backend_addr = s.lane.addr(&backend);
    let api_addr = s.lane.addr(&api);
    // Refused: squid answers 403, or, for a name it cannot resolve, an error; never the
    // recorders (counted below).
    for url in [
        "http://dify-agent-backend:5050/runs".to_owned(),
        "http://dify-agent-backend:5050/sandbox/files/list".to_owned(),
        "http://dify-api:5001/console/api/setup".to_owned(),
        "http://dify-api:5001/inner/api/x".to_owned(),
        "http://dify-api:5001/v1/files".to_owned(),
        "http://dify-api:5050/agent-stub/wrong-host".to_owned(),
        format!("http://{backend_addr}:5050/agent-stub/by-address"),
        format!("http://{api_addr}:5001/files/by-address"),
        format!("http://{backend_fqdn}:5050/agent-stub/fqdn"),
        format!("http://{api_fqdn}:5001/files/fqdn"),
        format!("http://{}:8080/private", s.fqdn("outside")),
        format!("http://{}:8080/private", s.lane.addr(&outside)),
    ] {
        let code = through(&url);
        assert!(code == 403 || code >= 500, "{url}: {code}");
    }
    let (code, _) = s.curl(
        &sandbox,
        &["-x", &proxy, "-p", "http://dify-agent-backend:443/tunnel"],
    );
    assert_eq!(code, 403, "CONNECT to a private address");
    assert_eq!(paths(&backend_log).len(), 1, "{:?}", paths(&backend_log));
    assert_eq!(paths(&api_log).len(), 1, "{:?}", paths(&api_log));
    assert!(paths(&outside_log).is_empty());
}

#[test]
fn hook_proxy_gives_the_daemon_the_public_url() {
    for (path, prefix) in [("/dify", Some("/dify")), ("/", None)] {
        let mut s = Stack::new(
            &format!("hooks{}", path.replace('/', "-")),
            render(path, &[]),
        );
        let (pod, spec) = s.workload_pod("Deployment", "dify-plugin-daemon");
        // The daemon is in no registry: a recorder on its SERVER_PORT, in the same pod.
        let daemon = container_env(&s.r.manifest, container(&spec, "plugin-daemon"));
        let port: u16 = env_get(&daemon, "SERVER_PORT").parse().unwrap();
        let log = s.recorder(&pod, port);
        // The hook proxy: Debian's nginx with the rendered nginx.conf, as the nginx image runs it.
        let c = container(&spec, "hook-proxy").clone();
        let env = container_env(&s.r.manifest, &c);
        let user = run_as(&spec, &c);
        s.mount_volumes(&spec, &c, Some(&user));
        let line = command_line(&c, &env, &["nginx"], &["-g", "daemon off;"]);
        let index = s.lane.spawn(
            &pod,
            Spawn {
                name: "hook-proxy",
                argv: line,
                env: env.clone(),
                user: Some(&user),
                cwd: None,
            },
        );
        let hooks = kubelet::container_port(
            &c,
            &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("hooks".into()),
        );
        let addr = s.lane.addr(&pod);
        s.lane.wait_ready(index, "hook proxy", |lane| {
            lane.exec(&pod, tcp_check(addr, hooks)).status.success()
        });

        // Traefik's request after its StripPrefix: the path without the prefix, and the
        // X-Forwarded-* headers of the original request.
        let traefik = s.client("traefik");
        let url = format!("http://dify-plugin-daemon:{hooks}/e/abc/x?y=1");
        let mut args = vec![
            url.clone(),
            "-H".into(),
            "X-Forwarded-Proto: https".into(),
            "-H".into(),
            format!("X-Forwarded-Host: {HOST}"),
        ];
        if let Some(p) = prefix {
            args.extend(["-H".into(), format!("X-Forwarded-Prefix: {p}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, body) = s.curl(&traefik, &args);
        assert_eq!(code, 200, "{body}");
        let seen: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
        let want = format!("https://{HOST}{}/e/abc/x?y=1", prefix.unwrap_or(""));
        assert_eq!(seen["headers"]["dify-hook-url"], want, "{path}");
        assert_eq!(
            seen["path"], "/e/abc/x?y=1",
            "the daemon gets the stripped path"
        );
        // Without forwarding headers, the header is built from the request itself.
        let (code, body) = s.curl(&traefik, &[&url]);
        assert_eq!(code, 200, "{body}");
        let seen: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
        assert_eq!(
            seen["headers"]["dify-hook-url"],
            format!("http://dify-plugin-daemon:{hooks}/e/abc/x?y=1")
        );
        assert_eq!(recorded(&log).len(), 2);
    }
}

#[test]
fn celery_broker_url_carries_a_password_with_reserved_characters() {
    let password = "p/a#s?s@w:o%rd";
    let mut s = Stack::new(
        "broker",
        render("/", &[&format!("secrets.redisPassword={password}")]),
    );
    s.start_redis();
    let worker = s.env_of("Deployment", "dify-worker", "worker");
    let pod = s.client("worker");
    // What Celery does with the URL: kombu's redis transport connects and pings.
    let ping = |url: &str| {
        s.lane.exec(
            &pod,
            spawn(
                "kombu",
                vec![
                    "python3".into(),
                    "-c".into(),
                    "import sys, kombu\n\
                     c = kombu.Connection(sys.argv[1], connect_timeout=5)\n\
                     c.ensure_connection(max_retries=1)\n\
                     print(c.default_channel.client.ping())"
                        .into(),
                    url.into(),
                ],
                Vec::new(),
            ),
        )
    };
    let ok = ping(env_get(&worker, "CELERY_BROKER_URL"));
    assert!(ok.status.success(), "the rendered broker URL connects");
    assert_eq!(text(&ok.stdout).trim(), "True");
    let raw = ping(&format!("redis://:{password}@dify-redis:6379/1"));
    assert!(!raw.status.success(), "the unencoded password does not");
}

#[test]
fn migration_gate_fails_unless_the_database_is_at_head() {
    let mut s = Stack::new("migration", render("/", &[]));
    s.start_postgres();
    let job = job_named(&s.r.manifest, "dify-migration-");
    let (_, spec) = pod_template(job);
    let c = spec.containers[0].clone();
    let head = env_get(&container_env(&s.r.manifest, &c), "DIFYRENDER_ALEMBIC_HEAD").to_owned();
    // The api image is in no registry: only `flask` is replaced, by what Dify < 1.13 does when
    // a migration fails (an error on the log, exit status 0).
    let bin = s.lane.dir.join("flask-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("flask"),
        "#!/bin/sh\necho \"flask $*: Database migration failed: (psycopg2.errors.DuplicateTable)\" >&2\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(bin.join("flask"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = with_path(
        container_env(&s.r.manifest, &c),
        &format!("{}:", bin.display()),
    );
    let line = command_line(&c, &env, &[], &[]);
    let pod = s.client("migration");
    let run = |s: &Stack| {
        let out = s
            .lane
            .exec(&pod, spawn("migration", line.clone(), env.clone()));
        (
            out.status.success(),
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
        )
    };
    // No alembic_version table (a migration that never ran): the Job fails.
    let (ok, log) = run(&s);
    assert!(!ok, "no alembic_version: {log}");
    s.psql_admin("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)");
    // Another revision: fails, naming the head it expected.
    s.psql_admin("INSERT INTO alembic_version VALUES ('0123456789ab')");
    let (ok, log) = run(&s);
    assert!(!ok, "a wrong revision: {log}");
    assert!(log.contains(&head), "the message names the head: {log}");
    // The head: passes.
    s.psql_admin(&format!(
        "UPDATE alembic_version SET version_num = '{head}'"
    ));
    let (ok, log) = run(&s);
    assert!(ok, "at head: {log}");
    // A release outside the table (--allow-unknown-release) has no known head: the gate then
    // requires exactly one revision, and none fails.
    let unknown: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "DIFYRENDER_ALEMBIC_HEAD" => (k.clone(), String::new()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let run_unknown = |s: &Stack| {
        s.lane
            .exec(&pod, spawn("migration", line.clone(), unknown.clone()))
            .status
            .success()
    };
    assert!(run_unknown(&s), "one revision, no head known");
    s.psql_admin("DELETE FROM alembic_version");
    assert!(!run_unknown(&s), "no revision at all");
}

#[test]
fn init_permissions_chowns_the_storage_once() {
    let r = render("/", &["storage.accessMode=ReadWriteMany"]);
    for name in ["dify-api", "dify-worker"] {
        let (_, spec) = pod_template(find(&r.manifest, "Deployment", name));
        let c = container(&spec, "init-permissions");
        let env = container_env(&r.manifest, c);
        let mut line = command_line(c, &env, &[], &[]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("privkeys")).unwrap();
        std::fs::write(dir.path().join("privkeys/key.pem"), "x").unwrap();
        *line.last_mut().unwrap() = dir.path().display().to_string();
        let run = || {
            let out = Command::new(&line[0])
                .args(&line[1..])
                .env_clear()
                .env("PATH", PATH)
                .output()
                .unwrap();
            assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        };
        let owner = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        run();
        for p in ["", "privkeys", "privkeys/key.pem", ".init_permissions"] {
            assert_eq!(owner(&dir.path().join(p)), (1001, 1001), "{name}: {p}");
        }
        // Guarded: a second start leaves ownership alone.
        std::os::unix::fs::chown(dir.path().join("privkeys/key.pem"), Some(0), Some(0)).unwrap();
        run();
        assert_eq!(
            owner(&dir.path().join("privkeys/key.pem")),
            (0, 0),
            "{name}"
        );
    }
    // ReadWriteOnce (fsGroup applies to block volumes): no such step.
    let r = render("/", &[]);
    let (_, spec) = pod_template(find(&r.manifest, "Deployment", "dify-api"));
    assert!(
        !spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == "init-permissions")
    );
}
