//! The runtime lane (tests/common/stack.rs) for the production datastores: an external Redis
//! that speaks TLS only, and pgvector as the vector store on the bundled or an external
//! PostgreSQL. The servers are Debian's (redis-server with TLS, PostgreSQL 15 with pgvector
//! 0.8.0 built from Debian's source package by scripts/runtime); the clients are
//! re-implementations of how Dify and the plugin daemon build theirs (each file in hack/runtime
//! names the upstream files and tag it mirrors; no commit could be read here), with the real
//! client libraries, run with the RENDERED environment: redis-py as ext_redis.py builds it,
//! Celery as ext_celery.py builds it (hack/runtime/dify_redis.py), the plugin daemon's go-redis
//! set-up (hack/runtime/redis-probe) and Dify's pgvector store (hack/runtime/dify_pgvector.py).
//! Every key, CA and mode check has a negative control. See docs/development.md.

mod common;

use common::kubelet::{self, container, env_get, pod_template};
use common::lane::Spawn;
use common::release_spec;
use common::stack::{Stack, argv, spawn, text};
use difyrender::release::{RenderedRelease, render_release};
use std::path::{Path, PathBuf};
use std::process::Command;

const MASTER: &str = "datastores-lane-master-key-0123456789abcdef";
/// The external Redis: a test pod with a DNS name like a Service's.
const REDIS: &str = "redis-external";
/// The Secret holding the CA that signed the Redis server's certificate (created by the test,
/// as an operator would).
const CA_SECRET: &str = "redis-ca";

/// The `/` profile of Dify 1.14.1, plus `set`.
fn render(set: &[String]) -> RenderedRelease {
    let mut values: Vec<String> = [
        "expose.ingressClassName=kommander-traefik",
        "expose.path=/",
        "external.scheme=http",
        "external.host=dify.example.com",
        "storage.storageClassName=standard",
        // A release whose plugin daemon reads REDIS_SSL_CERT_REQS and REDIS_SSL_CA_CERTS
        // (daemon 0.5.3, Dify 1.12.0 and later).
        "images.dify.tag=1.14.1",
    ]
    .map(String::from)
    .to_vec();
    values.extend(set.iter().cloned());
    render_release(&release_spec(values, MASTER)).expect("renders")
}

fn fqdn(name: &str) -> String {
    format!("{name}.dify.svc.cluster.local")
}

/// A throwaway PKI made with openssl for this test only (under the lane's directory, never
/// in the repository): a CA, a server certificate it signed for `dns`, and another CA that
/// signed nothing of the lane.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path, dns: &str) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                text(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (name, cn) in [("ca", "difyrender lane CA"), ("other-ca", "another CA")] {
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            let (key, crt, subj) = (
                format!("{name}.key"),
                format!("{name}.crt"),
                format!("/CN={cn}"),
            );
            args.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
            openssl(&args);
        }
        let mut args = vec!["req"];
        args.extend(ec);
        let subj = format!("/CN={dns}");
        args.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &subj,
        ]);
        openssl(&args);
        std::fs::write(dir.join("san.ext"), format!("subjectAltName=DNS:{dns}\n")).unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        Pki {
            dir: dir.to_owned(),
        }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn ca(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.crt")).unwrap()
    }
}

/// Debian's redis-server in the pod of test host [`REDIS`], TLS only (`port 0`, `tls-port`),
/// with `password` for `user` (an ACL user, the default user then off) or for the default user
/// (`requirepass`), as a managed Redis would be set up for Dify. Waits until it answers PING
/// over TLS.
fn start_tls_redis(s: &mut Stack, pki: &Pki, user: Option<&str>, password: &str) {
    let pod = s.host(REDIS);
    let dir = s.lane.dir.join("redis-external");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let mut conf = format!(
        "port 0\ntls-port 6379\ntls-cert-file {}\ntls-key-file {}\ntls-auth-clients no\n\
         dir {}\nsave \"\"\nappendonly no\n",
        pki.path("server.crt"),
        pki.path("server.key"),
        dir.join("data").display()
    );
    match user {
        Some(u) => conf.push_str(&format!(
            "user default off\nuser {u} on >{password} ~* &* +@all\n"
        )),
        None => conf.push_str(&format!("requirepass {password}\n")),
    }
    let file = dir.join("redis.conf");
    std::fs::write(&file, conf).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let index = s.lane.spawn(
        &pod,
        spawn(
            "redis-tls",
            vec!["redis-server".into(), file.display().to_string()],
            Vec::new(),
        ),
    );
    s.lane.wait_ready(index, "redis over TLS", |lane| {
        let out = lane.exec(&pod, redis_cli(pki, user, password, 0, &["PING"]));
        text(&out.stdout).trim() == "PONG"
    });
}

/// redis-cli over TLS (verifying the server against the lane's CA), as an operator's tool.
fn redis_cli<'a>(
    pki: &Pki,
    user: Option<&str>,
    password: &str,
    db: u32,
    args: &[&str],
) -> Spawn<'a> {
    let mut line = argv(&[
        "redis-cli",
        "--tls",
        "--cacert",
        &pki.path("ca.crt"),
        "-h",
        &fqdn(REDIS),
        "-p",
        "6379",
        "-n",
        &db.to_string(),
    ]);
    if let Some(u) = user {
        line.extend(argv(&["--user", u]));
    }
    line.extend(args.iter().map(|a| a.to_string()));
    spawn(
        "redis-cli",
        line,
        vec![("REDISCLI_AUTH".into(), password.into())],
    )
}

/// The result of one client run: success, stdout, stderr.
struct Run {
    ok: bool,
    out: String,
    err: String,
}

fn exec(s: &Stack, pod: &str, argv: Vec<String>, env: &[(String, String)]) -> Run {
    let out = s.lane.exec(pod, spawn("client", argv, env.to_vec()));
    Run {
        ok: out.status.success(),
        out: text(&out.stdout),
        err: text(&out.stderr),
    }
}

fn script(name: &str) -> String {
    common::root()
        .join("hack/runtime")
        .join(name)
        .display()
        .to_string()
}

/// Dify's redis-py client (ext_redis.py) with `env`: SET then GET of `value`.
fn api_client(s: &Stack, pod: &str, env: &[(String, String)], value: &str) -> Run {
    let line = vec![
        "/usr/bin/python3".into(),
        script("dify_redis.py"),
        "api".into(),
        "lane-key".into(),
        value.into(),
    ];
    exec(s, pod, line, env)
}

/// Celery as ext_celery.py builds it with `env`: a task message through the broker and a
/// result through the backend.
fn celery_client(s: &Stack, pod: &str, env: &[(String, String)], queue: &str) -> Run {
    let line = vec![
        "/usr/bin/python3".into(),
        script("dify_redis.py"),
        "celery".into(),
        queue.into(),
    ];
    exec(s, pod, line, env)
}

/// The plugin daemon's Redis client (hack/runtime/redis-probe) with `env`.
fn daemon_client(s: &Stack, pod: &str, env: &[(String, String)], value: &str) -> Run {
    let bin = common::lane::program("redis-probe");
    let line = vec![bin.display().to_string(), "lane-key".into(), value.into()];
    exec(s, pod, line, env)
}

/// `env` with `name` set to `value` (None: removed).
fn with(env: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env.iter().filter(|(k, _)| k != name).cloned().collect();
    if let Some(v) = value {
        out.push((name.into(), v.into()));
    }
    out
}

/// The environment of container `c` of workload `kind/name`, with only the Redis CA volume
/// mounted (the other volumes belong to servers the lane does not run).
fn client_env(s: &Stack, kind: &str, name: &str, c: &str) -> Vec<(String, String)> {
    let (_, spec) = pod_template(kubelet::find(&s.r.manifest, kind, name));
    let mut only_ca = container(&spec, c).clone();
    if let Some(mounts) = only_ca.volume_mounts.as_mut() {
        mounts.retain(|m| m.name == "redis-ca");
    }
    s.mount_volumes(&spec, &only_ca, None);
    s.env_of(kind, name, c)
}

fn assert_fails(run: &Run, what: &str, needle: &str) {
    assert!(!run.ok, "{what}: succeeded: {}", run.out);
    assert!(
        run.err.contains(needle),
        "{what}: expected {needle:?} in: {}",
        run.err
    );
}

#[test]
fn external_redis_over_tls_serves_the_api_celery_and_the_daemon() {
    let set: Vec<String> = [
        "redis.enabled=false".into(),
        format!("redis.external.host={}", fqdn(REDIS)),
        "redis.external.username=dify-app".into(),
        "redis.external.db=2".into(),
        "redis.external.brokerDb=3".into(),
        "redis.external.tls.enabled=true".into(),
        format!("redis.external.tls.caSecret={CA_SECRET}"),
    ]
    .to_vec();
    let r = render(&set);
    assert!(
        !r.manifest
            .resources
            .iter()
            .any(|x| x.kind == "StatefulSet" && x.name == "dify-redis"),
        "no bundled Redis"
    );
    let mut s = Stack::with_hosts("redis-tls", r, &[REDIS]);
    let pki = Pki::new(&s.lane.dir.join("pki"), &fqdn(REDIS));
    // The operator's CA Secret, in the release's namespace.
    kubelet::add_secret(
        &mut s.r.manifest,
        CA_SECRET,
        "dify",
        &[("ca.crt", pki.ca().as_slice())],
    );

    let api = client_env(&s, "Deployment", "dify-api", "api");
    let worker = client_env(&s, "Deployment", "dify-worker", "worker");
    let daemon = client_env(&s, "Deployment", "dify-plugin-daemon", "plugin-daemon");
    // The password is the keys Secret's REDIS_PASSWORD, as every client reads it.
    let password = env_get(&api, "REDIS_PASSWORD").to_owned();
    assert_eq!(env_get(&daemon, "REDIS_PASSWORD"), password);
    start_tls_redis(&mut s, &pki, Some("dify-app"), &password);
    let pod = s.client("clients");

    // The api's client: SET/GET in REDIS_DB (2) over TLS, verified against the mounted CA.
    let run = api_client(&s, &pod, &api, "from-the-api");
    assert!(run.ok, "api: {}", run.err);
    assert_eq!(run.out.trim(), "from-the-api");
    let keys_in = |db: u32| {
        let out = s.lane.exec(
            &pod,
            redis_cli(&pki, Some("dify-app"), &password, db, &["DBSIZE"]),
        );
        text(&out.stdout).trim().parse::<u32>().unwrap()
    };
    assert_eq!(keys_in(2), 1, "the api wrote REDIS_DB");

    // Celery (worker): a task message on brokerDb (3) and a result in the backend, over TLS.
    let run = celery_client(&s, &pod, &worker, "lane-queue");
    assert!(run.ok, "celery: {}", run.err);
    let seen: serde_json::Value = serde_json::from_str(run.out.trim()).unwrap();
    assert_eq!(seen["db"], 3, "{seen}");
    assert_eq!(seen["waiting"], 1, "{seen}");
    assert_eq!(seen["task"], "lane.probe", "{seen}");
    assert_eq!(seen["id_matches"], true, "{seen}");
    assert_eq!(seen["result"]["queue"], "lane-queue", "{seen}");
    assert_eq!(seen["transport_ssl"], true, "{seen}");
    assert!(keys_in(3) >= 1, "the result backend wrote brokerDb");

    // The plugin daemon's client: SET/GET in its REDIS_DB.
    let run = daemon_client(&s, &pod, &daemon, "from-the-daemon");
    assert!(run.ok, "daemon: {}", run.err);
    assert_eq!(run.out.trim(), "from-the-daemon");
    assert_eq!(keys_in(2), 2, "the daemon wrote REDIS_DB");

    // Negative controls. Another password: refused, by every client.
    let wrong = with(&api, "REDIS_PASSWORD", Some("not-the-password"));
    assert_fails(
        &api_client(&s, &pod, &wrong, "x"),
        "api, wrong password",
        "WRONGPASS",
    );
    let wrong = with(&daemon, "REDIS_PASSWORD", Some("not-the-password"));
    assert_fails(
        &daemon_client(&s, &pod, &wrong, "x"),
        "daemon, wrong password",
        "WRONGPASS",
    );
    let url = env_get(&worker, "CELERY_BROKER_URL").replace(&password, "not-the-password");
    let wrong = with(&worker, "CELERY_BROKER_URL", Some(&url));
    assert_fails(
        &celery_client(&s, &pod, &wrong, "q"),
        "celery, wrong password",
        "WRONGPASS",
    );
    // Without the username the default user answers, and it is off: the user name matters.
    let anonymous = with(&api, "REDIS_USERNAME", None);
    assert_fails(
        &api_client(&s, &pod, &anonymous, "x"),
        "api, default user",
        "WRONGPASS",
    );

    // A CA that did not sign the server's certificate: verification fails, for every client.
    let other = pki.path("other-ca.crt");
    let other_ca = with(&api, "REDIS_SSL_CA_CERTS", Some(&other));
    assert_fails(
        &api_client(&s, &pod, &other_ca, "x"),
        "api, another CA",
        "CERTIFICATE_VERIFY_FAILED",
    );
    let other_ca = with(&worker, "REDIS_SSL_CA_CERTS", Some(&other));
    assert_fails(
        &celery_client(&s, &pod, &other_ca, "q"),
        "celery, another CA",
        "CERTIFICATE_VERIFY_FAILED",
    );
    let other_ca = with(&daemon, "REDIS_SSL_CA_CERTS", Some(&other));
    assert_fails(
        &daemon_client(&s, &pod, &other_ca, "x"),
        "daemon, another CA",
        "certificate signed by unknown authority",
    );
    // No CA at all: the system's CA bundle does not know the lane's CA.
    let no_ca = with(&api, "REDIS_SSL_CA_CERTS", None);
    assert_fails(
        &api_client(&s, &pod, &no_ca, "x"),
        "api, no CA",
        "CERTIFICATE_VERIFY_FAILED",
    );
    // The daemon checks the name too (go's crypto/tls): the certificate is for the DNS name.
    let by_address = with(&daemon, "REDIS_HOST", Some(&s.lane.addr(REDIS).to_string()));
    assert_fails(
        &daemon_client(&s, &pod, &by_address, "x"),
        "daemon, by address",
        "doesn't contain any IP SANs",
    );
    // Plain Redis protocol to the TLS port: no answer that a client accepts.
    let plain = with(&api, "REDIS_USE_SSL", Some("false"));
    assert!(!api_client(&s, &pod, &plain, "x").ok, "api, plain redis://");
    let url = env_get(&worker, "CELERY_BROKER_URL").replacen("rediss://", "redis://", 1);
    let plain = with(&worker, "CELERY_BROKER_URL", Some(&url));
    assert!(
        !celery_client(&s, &pod, &plain, "q").ok,
        "celery, plain redis://"
    );
    let plain = with(&daemon, "REDIS_USE_SSL", Some("false"));
    assert!(!daemon_client(&s, &pod, &plain, "x").ok, "daemon, plain");
    assert_eq!(keys_in(2), 2, "no failed client wrote anything");
}

/// agent_backend's Redis URL (Dify 1.16.0+) against the same TLS Redis: its own database,
/// the password every client uses, verified against the operator's CA. agent_backend is in no
/// registry: redis-py's `from_url` stands in for its client (hack/runtime/dify_redis.py).
#[test]
fn agent_backend_reaches_its_own_database_over_tls() {
    let mut set: Vec<String> = [
        "redis.enabled=false".into(),
        format!("redis.external.host={}", fqdn(REDIS)),
        "redis.external.username=dify-app".into(),
        "redis.external.agentDb=5".into(),
        "redis.external.tls.enabled=true".into(),
        format!("redis.external.tls.caSecret={CA_SECRET}"),
    ]
    .to_vec();
    set.push("images.dify.tag=1.16.1".into());
    let mut s = Stack::with_hosts("redis-agent", render(&set), &[REDIS]);
    let pki = Pki::new(&s.lane.dir.join("pki"), &fqdn(REDIS));
    kubelet::add_secret(
        &mut s.r.manifest,
        CA_SECRET,
        "dify",
        &[("ca.crt", pki.ca().as_slice())],
    );
    let agent = client_env(&s, "Deployment", "dify-agent-backend", "agent-backend");
    let api = client_env(&s, "Deployment", "dify-api", "api");
    let password = env_get(&api, "REDIS_PASSWORD").to_owned();
    start_tls_redis(&mut s, &pki, Some("dify-app"), &password);
    let pod = s.client("agent");
    let run_with = |env: &[(String, String)]| {
        let line = vec![
            "/usr/bin/python3".into(),
            script("dify_redis.py"),
            "agent".into(),
            "agent-key".into(),
            "from-the-agent".into(),
        ];
        exec(&s, &pod, line, env)
    };
    let run = run_with(&agent);
    assert!(run.ok, "agent: {}", run.err);
    let seen: serde_json::Value = serde_json::from_str(run.out.trim()).unwrap();
    assert_eq!(seen["value"], "from-the-agent", "{seen}");
    assert_eq!(seen["db"], 5, "{seen}");
    let keys_in = |db: u32| {
        let out = s.lane.exec(
            &pod,
            redis_cli(&pki, Some("dify-app"), &password, db, &["DBSIZE"]),
        );
        text(&out.stdout).trim().parse::<u32>().unwrap()
    };
    assert_eq!(keys_in(5), 1, "agent_backend wrote its own database");
    assert_eq!(keys_in(0), 0);
    // Negative controls: without the CA option the server's certificate is not trusted, and
    // another password is refused.
    let url = env_get(&agent, "DIFY_AGENT_REDIS_URL").to_owned();
    let (without_ca, _) = url.split_once("&ssl_ca_certs=").unwrap();
    assert_fails(
        &run_with(&with(&agent, "DIFY_AGENT_REDIS_URL", Some(without_ca))),
        "agent without the CA",
        "certificate verify failed",
    );
    let wrong = url.replacen(
        &format!(
            ":{}@",
            difyrender::values::secrets::percent_encode(&password)
        ),
        ":not-the-password@",
        1,
    );
    assert_ne!(wrong, url);
    let run = run_with(&with(&agent, "DIFY_AGENT_REDIS_URL", Some(&wrong)));
    assert!(!run.ok, "a wrong password: {}", run.out);
}

#[test]
fn external_redis_over_tls_with_the_images_ca_bundle_or_without_verification() {
    let base: Vec<String> = [
        "redis.enabled=false".into(),
        format!("redis.external.host={}", fqdn(REDIS)),
        "redis.external.tls.enabled=true".into(),
    ]
    .to_vec();
    let mut s = Stack::with_hosts("redis-tls-bundle", render(&base), &[REDIS]);
    let pki = Pki::new(&s.lane.dir.join("pki"), &fqdn(REDIS));
    let api = s.env_of("Deployment", "dify-api", "api");
    let worker = s.env_of("Deployment", "dify-worker", "worker");
    let daemon = s.env_of("Deployment", "dify-plugin-daemon", "plugin-daemon");
    assert!(
        !api.iter().any(|(k, _)| k == "REDIS_SSL_CA_CERTS"),
        "no caSecret: no CA file"
    );
    assert_eq!(env_get(&api, "REDIS_SSL_CERT_REQS"), "CERT_REQUIRED");
    // The daemon refuses CERT_REQUIRED without a CA file (Config.RedisTLSConfig) and verifies
    // against its CA bundle when the name is unset: the chart leaves it unset.
    assert!(!daemon.iter().any(|(k, _)| k == "REDIS_SSL_CERT_REQS"));
    let password = env_get(&api, "REDIS_PASSWORD").to_owned();
    start_tls_redis(&mut s, &pki, None, &password);
    let pod = s.client("clients");

    // "The images' CA bundle": OpenSSL (Python) and Go read SSL_CERT_FILE as the system's CA
    // bundle, so the lane's CA stands in for a CA the image trusts.
    let bundle = pki.path("ca.crt");
    let trusted = |env: &[(String, String)]| with(env, "SSL_CERT_FILE", Some(&bundle));
    // What the daemon would do with CERT_REQUIRED here: refuse to start, CA bundle or not.
    let refused = with(&daemon, "REDIS_SSL_CERT_REQS", Some("CERT_REQUIRED"));
    assert_fails(
        &daemon_client(&s, &pod, &trusted(&refused), "x"),
        "daemon, CERT_REQUIRED without a CA file",
        "REDIS_SSL_CA_CERTS must be provided",
    );
    let run = api_client(&s, &pod, &trusted(&api), "bundle-api");
    assert!(run.ok, "api: {}", run.err);
    let run = celery_client(&s, &pod, &trusted(&worker), "bundle-queue");
    assert!(run.ok, "celery: {}", run.err);
    let run = daemon_client(&s, &pod, &trusted(&daemon), "bundle-daemon");
    assert!(run.ok, "daemon: {}", run.err);
    assert_eq!(run.out.trim(), "bundle-daemon");
    // Negative control: without the CA in the bundle, verification fails.
    assert_fails(
        &api_client(&s, &pod, &api, "x"),
        "api, untrusted",
        "CERTIFICATE_VERIFY_FAILED",
    );
    assert_fails(
        &daemon_client(&s, &pod, &daemon, "x"),
        "daemon, untrusted",
        "certificate signed by unknown authority",
    );

    // verify=false: encryption without verification (CERT_NONE), no CA anywhere.
    let mut unverified = base.clone();
    unverified.push("redis.external.tls.verify=false".into());
    s.r = render(&unverified);
    let api = s.env_of("Deployment", "dify-api", "api");
    let worker = s.env_of("Deployment", "dify-worker", "worker");
    let daemon = s.env_of("Deployment", "dify-plugin-daemon", "plugin-daemon");
    assert_eq!(env_get(&api, "REDIS_SSL_CERT_REQS"), "CERT_NONE");
    let run = api_client(&s, &pod, &api, "unverified-api");
    assert!(run.ok, "api: {}", run.err);
    let run = celery_client(&s, &pod, &worker, "unverified-queue");
    assert!(run.ok, "celery: {}", run.err);
    let run = daemon_client(&s, &pod, &daemon, "unverified-daemon");
    assert!(run.ok, "daemon: {}", run.err);
    // Still a password check.
    let wrong = with(&daemon, "REDIS_PASSWORD", Some("not-the-password"));
    assert_fails(
        &daemon_client(&s, &pod, &wrong, "x"),
        "daemon, wrong password",
        "WRONGPASS",
    );
}

/// Dify's pgvector store with `env` (hack/runtime/dify_pgvector.py).
fn pgvector_client(s: &Stack, pod: &str, env: &[(String, String)], collection: &str) -> Run {
    let line = vec![
        "/usr/bin/python3".into(),
        script("dify_pgvector.py"),
        collection.into(),
    ];
    exec(s, pod, line, env)
}

#[test]
fn pgvector_on_the_bundled_and_an_external_postgresql() {
    let bundled = render(&["vectorStore.type=pgvector".into()]);
    // The bundled PostgreSQL runs the pgvector image, and no Weaviate is rendered.
    let (_, spec) = pod_template(kubelet::find(
        &bundled.manifest,
        "StatefulSet",
        "dify-postgresql",
    ));
    let image = container(&spec, "postgresql").image.clone().unwrap();
    assert!(image.ends_with("pgvector/pgvector:0.8.0-pg15"), "{image}");
    assert!(
        !bundled
            .manifest
            .resources
            .iter()
            .any(|x| x.name == "dify-weaviate")
    );
    // The same lane server is also "the external server", under another DNS name.
    let mut s = Stack::with_names(
        "pgvector",
        bundled,
        &[],
        &[("pg-external", "dify-postgresql")],
    );
    s.start_postgres();
    let pod = s.client("api");
    let api = s.env_of("Deployment", "dify-api", "api");
    assert_eq!(env_get(&api, "VECTOR_STORE"), "pgvector");

    // Dify's pgvector store: the extension, its table and hnsw index, insert, nearest search.
    let run = pgvector_client(&s, &pod, &api, "bundled");
    assert!(run.ok, "pgvector: {}", run.err);
    let seen: serde_json::Value = serde_json::from_str(run.out.trim()).unwrap();
    assert_eq!(seen["vector"], "0.8.0", "{seen}");
    assert_eq!(
        seen["nearest"],
        serde_json::json!(["north", "east"]),
        "{seen}"
    );
    assert_eq!(seen["ssl"], false, "{seen}");
    // Negative control: another password is refused.
    let wrong = with(&api, "PGVECTOR_PASSWORD", Some("not-the-password"));
    assert_fails(
        &pgvector_client(&s, &pod, &wrong, "wrong"),
        "pgvector, wrong password",
        "password authentication failed",
    );

    // An external server (postgresql.enabled=false), reached by its own name.
    let external = |ssl_mode: &str| {
        let r = render(&[
            "vectorStore.type=pgvector".into(),
            "postgresql.enabled=false".into(),
            format!("postgresql.external.host={}", fqdn("pg-external")),
            format!("postgresql.external.sslMode={ssl_mode}"),
        ]);
        let (_, spec) = pod_template(kubelet::find(&r.manifest, "Deployment", "dify-api"));
        kubelet::container_env(&r.manifest, container(&spec, "api"))
    };
    let plain = external("disable");
    assert_eq!(env_get(&plain, "PGVECTOR_HOST"), fqdn("pg-external"));
    assert!(!plain.iter().any(|(k, _)| k == "PGSSLMODE"));
    let run = pgvector_client(&s, &pod, &plain, "external");
    assert!(run.ok, "external pgvector: {}", run.err);
    let seen: serde_json::Value = serde_json::from_str(run.out.trim()).unwrap();
    assert_eq!(
        seen["nearest"],
        serde_json::json!(["north", "east"]),
        "{seen}"
    );
    // sslMode=require: PGSSLMODE, which libpq honours: this server has no TLS and is refused.
    let tls = external("require");
    assert_eq!(env_get(&tls, "PGSSLMODE"), "require");
    assert_fails(
        &pgvector_client(&s, &pod, &tls, "external_tls"),
        "pgvector, sslmode=require",
        "server does not support SSL",
    );
    // The same environment without PGSSLMODE connects: the refusal is TLS, nothing else.
    let run = pgvector_client(&s, &pod, &with(&tls, "PGSSLMODE", None), "external_plain");
    assert!(run.ok, "{}", run.err);
}
