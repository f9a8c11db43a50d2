//! Production settings as values (dify.logFormat, mail, otel, sentry, uploads, login): the
//! environment rendered for api, worker, beat, web and the plugin daemon against the names the
//! release reads (tests/data/production-env.json, from ../shared/reference/dify-compose), every
//! credential from the operator's Secret, bad input refused with the key named; and mail sent
//! with the rendered SMTP settings to a real SMTP server on loopback (aiosmtpd, Debian's
//! python3-aiosmtpd), over implicit TLS and STARTTLS, by a reproduction of Dify's mail client
//! (hack/mail/dify-mail.py: Dify's api image is not available here). The stream with every
//! setting passes a strict server-side dry run on the real control plane.

mod common;

use common::kubelet::{self, container_env_with, env_get};
use common::*;
use difyrender::manifest::Manifest;
use difyrender::release::render_release;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const MASTER: &str = "production-test-master-key-0123456789";
const SMTP_PASSWORD: &str = "smtp-test-password-7f3a9c";

fn names() -> Value {
    serde_json::from_str(&read(&root().join("tests/data/production-env.json"))).unwrap()
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn render(set: &[&str]) -> Manifest {
    let mut values: Vec<String> = root_profile()
        .into_iter()
        .filter(|a| a != "--set")
        .collect();
    values.push("external.host=dify.example.com".into());
    values.extend(set.iter().map(|s| s.to_string()));
    render_release(&release_spec(values, MASTER))
        .unwrap_or_else(|e| panic!("renders: {e}"))
        .manifest
}

/// The operator's Secrets the settings below name.
fn operator_secrets(smtp_password: &str) -> Vec<Secret> {
    let secret = |name: &str, key: &str, value: &str| -> Secret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "dify"},
            "stringData": {key: value},
        }))
        .unwrap()
    };
    vec![
        secret("mail", "password", smtp_password),
        secret("otel", "api-key", "otel-test-api-key"),
        secret("sentry", "api-dsn", "https://key@sentry.example.com/1"),
        secret("sentry-web", "dsn", "https://key@sentry.example.com/2"),
        secret("sentry-daemon", "dsn", "https://key@sentry.example.com/3"),
    ]
}

const ALL: &[&str] = &[
    "dify.logFormat=json",
    "dify.mail.type=smtp",
    "dify.mail.from=Dify <no-reply@example.com>",
    "dify.mail.smtp.server=smtp.example.com",
    "dify.mail.smtp.port=587",
    "dify.mail.smtp.username=dify",
    "dify.mail.smtp.tls=starttls",
    "dify.mail.smtp.localHostname=dify.example.com",
    "dify.mail.credentialSecret.name=mail",
    "dify.mail.credentialSecret.key=password",
    "dify.otel.enabled=true",
    "dify.otel.baseEndpoint=http://otel-collector.monitoring:4318",
    "dify.otel.protocol=http",
    "dify.otel.samplingRate=0.25",
    "dify.otel.apiKeySecret.name=otel",
    "dify.otel.apiKeySecret.key=api-key",
    "dify.sentry.api.dsnSecret.name=sentry",
    "dify.sentry.api.dsnSecret.key=api-dsn",
    "dify.sentry.api.tracesSampleRate=0.5",
    "dify.sentry.web.dsnSecret.name=sentry-web",
    "dify.sentry.web.dsnSecret.key=dsn",
    "dify.sentry.pluginDaemon.dsnSecret.name=sentry-daemon",
    "dify.sentry.pluginDaemon.dsnSecret.key=dsn",
    "dify.uploads.fileSizeLimitMB=50",
    "dify.uploads.batchLimit=10",
    "dify.login.allowRegister=false",
    "dify.login.emailCodeLogin=true",
];

fn env_of(m: &Manifest, deployment: &str, container: &str) -> Vec<(String, String)> {
    let pod = kubelet::pod(m, "Deployment", deployment);
    container_env_with(
        m,
        kubelet::container(&pod, container),
        &operator_secrets(SMTP_PASSWORD),
    )
}

/// Names of `env` entries that read a Secret other than the release's keys Secret.
fn from_operator_secrets(m: &Manifest, deployment: &str, container: &str) -> BTreeSet<String> {
    let pod = kubelet::pod(m, "Deployment", deployment);
    kubelet::container(&pod, container)
        .env
        .iter()
        .flatten()
        .filter(|e| {
            e.value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
                .is_some_and(|r| r.name != "dify-keys")
        })
        .map(|e| e.name.clone())
        .collect()
}

#[test]
fn the_settings_render_the_names_the_release_reads_and_credentials_from_secrets() {
    let data = names();
    let api_names: BTreeSet<String> = list(&data["api"])
        .into_iter()
        .chain(list(&data["apiLogin"]))
        .collect();
    let defaults = render(&[]);
    let m = render(ALL);
    for (deployment, container) in [
        ("dify-api", "api"),
        ("dify-worker", "worker"),
        ("dify-beat", "beat"),
    ] {
        let before: BTreeSet<String> = env_of(&defaults, deployment, container)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let env = env_of(&m, deployment, container);
        let added: BTreeSet<String> = env
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !before.contains(n))
            .collect();
        // Every name added is one the release reads; nothing is rendered by default.
        assert!(added.is_subset(&api_names), "{deployment}: {added:?}");
        assert!(
            before.is_disjoint(
                &api_names
                    .iter()
                    .filter(|n| *n != "LOG_LEVEL")
                    .cloned()
                    .collect()
            ),
            "{deployment}: defaults render {before:?}"
        );
        for (name, value) in [
            ("LOG_OUTPUT_FORMAT", "json"),
            ("MAIL_TYPE", "smtp"),
            ("MAIL_DEFAULT_SEND_FROM", "Dify <no-reply@example.com>"),
            ("SMTP_SERVER", "smtp.example.com"),
            ("SMTP_PORT", "587"),
            ("SMTP_USERNAME", "dify"),
            ("SMTP_PASSWORD", SMTP_PASSWORD),
            ("SMTP_USE_TLS", "true"),
            ("SMTP_OPPORTUNISTIC_TLS", "true"),
            ("SMTP_LOCAL_HOSTNAME", "dify.example.com"),
            ("ENABLE_OTEL", "true"),
            ("OTEL_EXPORTER_TYPE", "otlp"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http"),
            (
                "OTLP_BASE_ENDPOINT",
                "http://otel-collector.monitoring:4318",
            ),
            ("OTEL_SAMPLING_RATE", "0.25"),
            ("OTLP_API_KEY", "otel-test-api-key"),
            ("SENTRY_DSN", "https://key@sentry.example.com/1"),
            ("SENTRY_TRACES_SAMPLE_RATE", "0.5"),
            ("SENTRY_PROFILES_SAMPLE_RATE", "1.0"),
            ("UPLOAD_FILE_SIZE_LIMIT", "50"),
            ("UPLOAD_FILE_BATCH_LIMIT", "10"),
            ("ALLOW_REGISTER", "false"),
            ("ENABLE_EMAIL_CODE_LOGIN", "true"),
        ] {
            assert_eq!(env_get(&env, name), value, "{deployment}: {name}");
        }
        // Unset ones keep the release's default: not rendered.
        assert!(
            !env.iter()
                .any(|(n, _)| n == "UPLOAD_IMAGE_FILE_SIZE_LIMIT" || n == "ALLOW_CREATE_WORKSPACE")
        );
        // The credentials are read from the operator's Secrets, never written as values.
        assert_eq!(
            from_operator_secrets(&m, deployment, container),
            ["OTLP_API_KEY", "SENTRY_DSN", "SMTP_PASSWORD"]
                .map(String::from)
                .into(),
            "{deployment}"
        );
    }
    // The migration Job sends no mail.
    let migration = kubelet::job_named(&m, "dify-migration");
    let (_, pod) = kubelet::pod_template(migration);
    let env = container_env_with(
        &m,
        kubelet::container(&pod, "migration"),
        &operator_secrets(SMTP_PASSWORD),
    );
    assert!(!env.iter().any(|(n, _)| n == "MAIL_TYPE"));

    let web = env_of(&m, "dify-web", "web");
    assert_eq!(
        env_get(&web, "SENTRY_DSN"),
        "https://key@sentry.example.com/2"
    );
    assert_eq!(
        from_operator_secrets(&m, "dify-web", "web"),
        ["SENTRY_DSN".to_owned()].into()
    );
    let daemon = env_of(&m, "dify-plugin-daemon", "plugin-daemon");
    assert_eq!(env_get(&daemon, "SENTRY_ENABLED"), "true");
    assert_eq!(
        env_get(&daemon, "SENTRY_DSN"),
        "https://key@sentry.example.com/3"
    );
    for name in list(&data["web"]) {
        env_get(&web, &name);
    }
    for name in list(&data["pluginDaemon"]) {
        env_get(&daemon, &name);
    }
    // Without the Sentry values, neither has them.
    assert!(
        !env_of(&defaults, "dify-web", "web")
            .iter()
            .any(|(n, _)| n == "SENTRY_DSN")
    );
    assert!(
        !env_of(&defaults, "dify-plugin-daemon", "plugin-daemon")
            .iter()
            .any(|(n, _)| n.starts_with("SENTRY_"))
    );
    // The secret values appear nowhere in the manifests.
    let stream = m.to_yaml_stream();
    assert!(
        !stream.contains(SMTP_PASSWORD)
            && !stream.contains("otel-test-api-key")
            && !stream.contains("sentry.example.com")
    );
}

#[test]
fn resend_and_sendgrid_read_their_key_from_the_secret() {
    let resend = render(&[
        "dify.mail.type=resend",
        "dify.mail.from=no-reply@example.com",
        "dify.mail.credentialSecret.name=mail",
        "dify.mail.credentialSecret.key=password",
    ]);
    let env = env_of(&resend, "dify-api", "api");
    assert_eq!(env_get(&env, "MAIL_TYPE"), "resend");
    assert_eq!(env_get(&env, "RESEND_API_URL"), "https://api.resend.com");
    assert_eq!(env_get(&env, "RESEND_API_KEY"), SMTP_PASSWORD);
    let sendgrid = render(&[
        "dify.mail.type=sendgrid",
        "dify.mail.from=no-reply@example.com",
        "dify.mail.credentialSecret.name=mail",
        "dify.mail.credentialSecret.key=password",
    ]);
    let env = env_of(&sendgrid, "dify-worker", "worker");
    assert_eq!(env_get(&env, "SENDGRID_API_KEY"), SMTP_PASSWORD);
    assert!(
        !env.iter()
            .any(|(n, _)| n.starts_with("SMTP_") || n.starts_with("RESEND_"))
    );
}

#[test]
fn incomplete_settings_are_refused_naming_the_key() {
    for (set, says) in [
        (
            &["dify.mail.type=smtp", "dify.mail.from=a@example.com"][..],
            "dify.mail.smtp.server",
        ),
        (
            &["dify.mail.type=smtp", "dify.mail.smtp.server=x"][..],
            "dify.mail.from",
        ),
        (
            &["dify.mail.type=resend", "dify.mail.from=a@example.com"][..],
            "dify.mail.credentialSecret.name",
        ),
        (
            &[
                "dify.mail.type=smtp",
                "dify.mail.from=a@example.com",
                "dify.mail.smtp.server=x",
                "dify.mail.smtp.username=u",
                "dify.mail.credentialSecret.name=mail",
            ][..],
            "dify.mail.credentialSecret.key",
        ),
        (
            &["dify.otel.enabled=true"][..],
            "dify.otel.enabled needs dify.otel.baseEndpoint",
        ),
        (&["dify.mail.smtp.tls=ssl"][..], "dify.mail.smtp.tls"),
        (
            &["dify.uploads.fileSizeLimitMB=0"][..],
            "dify.uploads.fileSizeLimitMB",
        ),
    ] {
        let out = difyrender()
            .arg("render")
            .args(root_profile())
            .args(["--set", "external.host=dify.example.com"])
            .args(set.iter().flat_map(|s| ["--set", s]))
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap();
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(2), "{set:?}: {text}");
        assert!(out.stdout.is_empty(), "{text}");
        assert!(text.contains(says), "{set:?}: {text}");
    }
}

#[test]
fn the_names_copy_matches_the_reference_when_present() {
    let Some(reference) = ["../shared/reference", "../../shared/reference"]
        .iter()
        .map(|p| root().join(p).join("dify-compose"))
        .find(|p| p.is_dir())
    else {
        eprintln!(
            "note: ../shared/reference not present; tests/data/production-env.json is not compared with it here"
        );
        return;
    };
    let data = names();
    let mut versions: Vec<_> = std::fs::read_dir(&reference)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    assert!(versions.len() >= 5, "{versions:?}");
    let defined = |dir: &Path, name: &str| -> bool {
        let out = Command::new("grep")
            .args(["-rqE", &format!("^\\s*{name}(=|:)")])
            .arg(dir)
            .status()
            .unwrap();
        out.success()
    };
    for dir in &versions {
        for name in list(&data["api"])
            .iter()
            .chain(&list(&data["web"]))
            .chain(&list(&data["pluginDaemon"]))
        {
            assert!(defined(dir, name), "{name} in {}", dir.display());
        }
    }
    let newest = versions.last().unwrap();
    for name in list(&data["apiLogin"]) {
        assert!(defined(newest, &name), "{name} in {}", newest.display());
    }
    // Negative control: a name no release reads is not found.
    assert!(!defined(newest, "SMTP_USE_SSL_NOT_A_SETTING"));
}

// ---------------------------------------------------------------------------------------------
// A real SMTP server on loopback.

struct Server {
    child: Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_server(dir: &Path, mode: &str) -> Server {
    let (cert, key) = self_signed(
        dir,
        "smtp",
        "/CN=127.0.0.1",
        &["-addext", "subjectAltName=IP:127.0.0.1"],
    );
    let out = dir.join(format!("{mode}.jsonl"));
    let mut child = Command::new("/usr/bin/python3")
        .arg(root().join("hack/mail/smtp-server.py"))
        .arg(mode)
        .arg(&cert)
        .arg(&key)
        .arg("dify")
        .arg(&out)
        .env("SMTP_TEST_PASSWORD", SMTP_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the server prints its port: {line:?}"));
    Server { child, port, out }
}

/// Sends one mail with the environment the `deployment`'s container gets from values `set`
/// (and the SMTP password Secret holding `password`); returns (success, stderr).
fn send(set: &[String], deployment: &str, container: &str, password: &str) -> (bool, String) {
    let sets: Vec<&str> = set.iter().map(String::as_str).collect();
    let m = render(&sets);
    let pod = kubelet::pod(&m, "Deployment", deployment);
    let env = container_env_with(
        &m,
        kubelet::container(&pod, container),
        &operator_secrets(password),
    );
    let out = Command::new("/usr/bin/python3")
        .arg(root().join("hack/mail/dify-mail.py"))
        .arg("invitee@example.com")
        .env_clear()
        .envs(
            env.iter()
                .filter(|(n, _)| n.starts_with("SMTP_") || n.starts_with("MAIL_"))
                .cloned(),
        )
        .output()
        .unwrap();
    let text = transcript(&out);
    assert!(
        !text.contains(password) || password.is_empty(),
        "the client printed the password"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mail_values(port: u16, tls: &str) -> Vec<String> {
    [
        "dify.mail.type=smtp".to_owned(),
        "dify.mail.from=Dify <no-reply@example.com>".to_owned(),
        "dify.mail.smtp.server=127.0.0.1".to_owned(),
        format!("dify.mail.smtp.port={port}"),
        "dify.mail.smtp.username=dify".to_owned(),
        format!("dify.mail.smtp.tls={tls}"),
        "dify.mail.smtp.localHostname=dify.example.com".to_owned(),
        "dify.mail.credentialSecret.name=mail".to_owned(),
        "dify.mail.credentialSecret.key=password".to_owned(),
    ]
    .into()
}

fn received(server: &Server) -> Vec<Value> {
    read(&server.out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn mail_reaches_a_real_smtp_server_over_implicit_tls_and_starttls() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, tls) in [("implicit", "implicit"), ("starttls", "starttls")] {
        let server = smtp_server(dir.path(), mode);
        let values = mail_values(server.port, tls);
        // The worker sends invitations and password resets (Celery's mail queue); the api too.
        for (deployment, container) in [("dify-worker", "worker"), ("dify-api", "api")] {
            let (ok, err) = send(&values, deployment, container, SMTP_PASSWORD);
            assert!(ok, "{mode} {deployment}: {err}");
        }
        let mails = received(&server);
        assert_eq!(mails.len(), 2, "{mode}: {mails:?}");
        for mail in &mails {
            assert_eq!(mail["mail_from"], "no-reply@example.com", "{mail}");
            assert_eq!(mail["rcpt_tos"], serde_json::json!(["invitee@example.com"]));
            assert_eq!(mail["tls"], true, "{mode}: {mail}");
            assert_eq!(mail["authenticated"], true);
            assert_eq!(mail["login"], "dify");
            let message = mail["message"].as_str().unwrap();
            assert!(
                message.contains("Subject: Join Dify Workspace Now"),
                "{message}"
            );
            assert!(
                message.contains("From: Dify <no-reply@example.com>"),
                "{message}"
            );
        }
        // STARTTLS sends EHLO with the server's name (Dify's client), implicit TLS the local one.
        let ehlo = if mode == "starttls" {
            "127.0.0.1"
        } else {
            "dify.example.com"
        };
        assert_eq!(mails[0]["ehlo"], ehlo, "{mode}");

        // Negative controls: another password in the Secret is refused, and so is the other
        // TLS mode; the server receives nothing more.
        let (ok, err) = send(&values, "dify-worker", "worker", "not-the-password-123");
        assert!(
            !ok && err.contains("SMTPAuthenticationError"),
            "{mode}: {err}"
        );
        let other = if tls == "implicit" {
            "starttls"
        } else {
            "implicit"
        };
        let (ok, err) = send(
            &mail_values(server.port, other),
            "dify-worker",
            "worker",
            SMTP_PASSWORD,
        );
        assert!(!ok, "{mode} server, {other} client: {err}");
        let (ok, err) = send(
            &mail_values(server.port, "none"),
            "dify-worker",
            "worker",
            SMTP_PASSWORD,
        );
        assert!(!ok, "{mode} server, plain client: {err}");
        assert_eq!(received(&server).len(), 2, "{mode}");
    }
}

#[test]
fn the_rendered_settings_pass_a_strict_server_side_dry_run() {
    let kc = common::cluster::shared("production");
    let ns = "t-production";
    common::cluster::ok(&common::cluster::kubectl(&["create", "namespace", ns], kc));
    let out = difyrender()
        .arg("render")
        .args(["-n", ns])
        .args(root_profile())
        .args(["--set", "external.host=dify.example.com"])
        .args(ALL.iter().flat_map(|s| ["--set", s]))
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    let stream = String::from_utf8(out.stdout).unwrap();
    assert!(
        stream.contains("name: SMTP_PASSWORD"),
        "the settings are in the stream"
    );
    common::cluster::strict_dry_run(&stream, "kubectl", kc, "production settings");
}
