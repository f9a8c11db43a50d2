//! `bootstrap.enabled` (docs/bootstrap.md): the Job's script, its rendering and its stage.
//!
//! The script (`templates/_bootstrap.py.tpl`, run by the host's python3 as the Job runs it in
//! the api image) is tested against a STAND-IN of Dify's console API
//! (`hack/bootstrap/console_standin.py`): Dify's api and plugin daemon are available to no
//! test, so the stand-in reproduces the contract recorded from Dify 1.14.1 and plugin daemon
//! 0.6.0 in ../shared/reference/dify-console-bootstrap.md, refusals included. The model
//! endpoint the credentials point at is a real OpenAI-compatible server on loopback
//! (`hack/bootstrap/openai_stub.py`), which the stand-in calls to validate a credential as the
//! plugin does, and which refuses a wrong key with 401.
//!
//! On the real control plane (scripts/testenv, kwok): a strict server-side dry run of the
//! render; the Job applied only after the apps are ready; a re-apply writes nothing; a changed
//! key runs a new Job, also a changed key in a Secret of the cluster (apiKeySecret), which apply
//! and diff read; no key in any object but the keys Secret; a failed Job stops apply with the
//! script's reason and exit code.

mod common;

use common::*;
use serde_json::Value;
use std::io::BufReader;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const MASTER: &str = "bootstrap-test-master-key-0123456789";
const INIT_PASSWORD: &str = "init-password-of-the-stand-in";
const ADMIN_PASSWORD: &str = "P0admin-password-of-the-test";
const KEY_A: &str = "sk-stub-key-aaaaaaaaaaaa";
const KEY_B: &str = "sk-stub-key-bbbbbbbbbbbb";
const WRONG_KEY: &str = "sk-stub-key-wrong-wrong";
const MODEL: &str = "nai-llama-3-8b";
const COMPAT: &str = "langgenius/openai_api_compatible";

/// A server this test started, stopped (by its own handle) when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `python3 script args…` and reads the `PORT <n>` line it prints when listening.
fn serve(script: &str, args: &[&str], dir: &Path) -> Server {
    let mut child = Command::new("python3")
        .arg(root().join(script))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let line = read_until(&mut out, "PORT ");
    let port = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    Server { child, port }
}

/// The stub, the stand-in and a directory of packages served over HTTP.
struct Lane {
    dir: tempfile::TempDir,
    stub: Server,
    standin: Server,
    files: Server,
}

impl Lane {
    fn start() -> Lane {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("keys"), format!("{KEY_A}\n{KEY_B}\n")).unwrap();
        std::fs::write(p.join("init"), INIT_PASSWORD).unwrap();
        std::fs::write(p.join("signing-key"), "operator-signing-key-of-the-test").unwrap();
        std::fs::write(p.join("other-key"), "a-key-the-daemon-does-not-trust").unwrap();
        std::fs::create_dir(p.join("www")).unwrap();
        let stub = serve(
            "hack/bootstrap/openai_stub.py",
            &["--model", MODEL, "--keys-file", "keys"],
            p,
        );
        let args = [
            "--init-password-file",
            "init",
            "--signing-key-file",
            "signing-key",
        ];
        let standin = serve("hack/bootstrap/console_standin.py", &args, p);
        let files = serve("hack/bootstrap/serve_files.py", &["www"], p);
        Lane {
            dir,
            stub,
            standin,
            files,
        }
    }

    /// Writes a package for the stand-in into the served directory; returns its URL.
    fn package(
        &self,
        file: &str,
        plugin: &str,
        key: Option<&str>,
        install_error: Option<&str>,
    ) -> String {
        let mut cmd = Command::new("python3");
        cmd.arg(root().join("hack/bootstrap/make_package.py"))
            .arg(self.dir.path().join("www").join(file))
            .args(["--plugin-id", plugin, "--version", "0.0.63"]);
        if let Some(key) = key {
            cmd.arg("--signing-key-file").arg(self.dir.path().join(key));
        }
        if let Some(e) = install_error {
            cmd.args(["--install-error", e]);
        }
        assert!(cmd.status().unwrap().success());
        format!("http://127.0.0.1:{}/{file}", self.files.port)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.stub.port)
    }

    /// Runs the Job's script with the environment the Job gives it.
    fn run(&self, key: &str, endpoint: &str, plugins: &[(&str, &str, &str)]) -> Run {
        self.run_with(key, endpoint, plugins, &[])
    }

    fn run_with(
        &self,
        key: &str,
        endpoint: &str,
        plugins: &[(&str, &str, &str)],
        extra: &[(&str, &str)],
    ) -> Run {
        let log = self.dir.path().join("termination-log");
        let _ = std::fs::remove_file(&log);
        let join = |i: usize| {
            plugins
                .iter()
                .map(|p| [p.0, p.1, p.2][i])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut cmd = Command::new("python3");
        cmd.arg(root().join("templates/_bootstrap.py.tpl"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env(
                "DIFY_API_URL",
                format!("http://127.0.0.1:{}", self.standin.port),
            )
            .env("INIT_PASSWORD", INIT_PASSWORD)
            .env("ADMIN_EMAIL", "admin@example.com")
            .env("ADMIN_NAME", "Administrator")
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PROVIDER_TYPE", "openai-compatible")
            .env("PROVIDER_URL", endpoint)
            .env("PROVIDER_MODELS", MODEL)
            .env("PROVIDER_API_KEY", key)
            .env("PLUGIN_NAMES", join(0))
            .env("PLUGIN_SOURCES", join(1))
            .env("PLUGIN_REFS", join(2))
            .env("POLL_SECONDS", "0")
            .env("TERMINATION_LOG", &log);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let output = cmd.output().unwrap();
        let text = transcript(&output);
        let secrets: Vec<String> = [INIT_PASSWORD, ADMIN_PASSWORD, KEY_A, KEY_B, WRONG_KEY, key]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_no_secrets(&text, &secrets, "the bootstrap script's output");
        Run {
            output,
            termination: read(&log),
        }
    }

    fn state(&self) -> Value {
        let url = format!("http://127.0.0.1:{}/_standin/state", self.standin.port);
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
                &url,
            ])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).expect("the stand-in's state is JSON")
    }

    /// A raw console call, for the stand-in's refusals themselves.
    fn call(&self, script: &str) -> String {
        let out = Command::new("python3")
            .args([
                "-c",
                script,
                &format!("http://127.0.0.1:{}", self.standin.port),
            ])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", transcript(&out));
        String::from_utf8(out.stdout).unwrap()
    }
}

struct Run {
    output: Output,
    termination: String,
}

impl Run {
    fn code(&self) -> i32 {
        self.output.status.code().expect("exited")
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    /// A failure is one clear line on stderr.
    fn reason(&self) -> String {
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one reason line: {err}");
        assert!(
            lines[0].starts_with("difyrender-bootstrap: error: "),
            "{err}"
        );
        assert!(
            self.termination
                .contains(&format!("(exit code {})", self.code())),
            "{}",
            self.termination
        );
        lines[0].to_owned()
    }
}

fn writes(state: &Value) -> Vec<String> {
    state["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

fn credentials(state: &Value) -> Vec<Value> {
    state["credentials"][format!("{COMPAT}/openai_api_compatible|{MODEL}")]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn sha256(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[test]
fn script_sets_up_a_fresh_dify_and_a_rerun_changes_nothing() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let plugins = [(COMPAT, "url", url.as_str())];
    let first = lane.run(KEY_A, &lane.endpoint(), &plugins);
    assert_eq!(first.code(), 0, "{}", transcript(&first.output));
    let state = lane.state();
    assert_eq!(state["setup"], true);
    assert_eq!(state["account"]["email"], "admin@example.com");
    assert_eq!(state["plugins"], serde_json::json!([COMPAT]));
    let stored = credentials(&state);
    assert_eq!(stored.len(), 1, "{state}");
    assert_eq!(stored[0]["credentials"]["api_key"], sha256(KEY_A));
    assert_eq!(stored[0]["credentials"]["endpoint_url"], lane.endpoint());
    assert_eq!(state["default_model"]["model"], MODEL);
    let before = writes(&state);
    assert_eq!(
        before.len(),
        5,
        "setup, upload, install, credential, default model: {before:?}"
    );

    // Run again: everything is current, and nothing is written.
    let second = lane.run(KEY_A, &lane.endpoint(), &plugins);
    assert_eq!(second.code(), 0, "{}", transcript(&second.output));
    assert_eq!(writes(&lane.state()), before);
    let out = second.stdout();
    for line in [
        "setup: already finished",
        &format!("plugin {COMPAT}: installed"),
        &format!("the credential of model {MODEL}: current"),
        "default model: nai-llama-3-8b, current",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
}

#[test]
fn a_changed_key_is_rotated_with_put_and_a_wrong_one_is_refused() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let plugins = [(COMPAT, "url", url.as_str())];
    assert_eq!(lane.run(KEY_A, &lane.endpoint(), &plugins).code(), 0);
    let id = credentials(&lane.state())[0]["credential_id"].clone();

    let rotated = lane.run(KEY_B, &lane.endpoint(), &plugins);
    assert_eq!(rotated.code(), 0, "{}", transcript(&rotated.output));
    let state = lane.state();
    let stored = credentials(&state);
    assert_eq!(stored.len(), 1, "rotated in place, not added: {state}");
    assert_eq!(stored[0]["credential_id"], id);
    assert_eq!(stored[0]["credentials"]["api_key"], sha256(KEY_B));
    assert!(
        writes(&state).last().unwrap().starts_with("PUT "),
        "{:?}",
        writes(&state)
    );

    // The stub refuses a wrong key; Dify (here the stand-in) refuses to store it; the Job
    // fails with the provider's refusal and exit code 16, and the stored key stays.
    let wrong = lane.run(WRONG_KEY, &lane.endpoint(), &plugins);
    assert_eq!(wrong.code(), 16, "{}", transcript(&wrong.output));
    let reason = wrong.reason();
    assert!(
        reason.contains("the provider refused the credential of model"),
        "{reason}"
    );
    assert!(reason.contains("status code 401"), "{reason}");
    assert_eq!(
        credentials(&lane.state())[0]["credentials"]["api_key"],
        sha256(KEY_B)
    );
}

#[test]
fn the_openai_provider_credential_is_created_kept_and_rotated() {
    // Provider type openai: one credential of the provider (not per model), listed by Dify in
    // the provider list; a base URL (here the stub) makes the plugin validate with the chat
    // protocol and the default model.
    let lane = Lane::start();
    let url = lane.package(
        "openai.difypkg",
        "langgenius/openai",
        Some("signing-key"),
        None,
    );
    let plugins = [("langgenius/openai", "url", url.as_str())];
    let openai = [("PROVIDER_TYPE", "openai"), ("DEFAULT_MODEL", MODEL)];
    let stored = |state: &Value| {
        state["credentials"]["langgenius/openai/openai|None"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let first = lane.run_with(KEY_A, &lane.endpoint(), &plugins, &openai);
    assert_eq!(first.code(), 0, "{}", transcript(&first.output));
    let state = lane.state();
    let creds = stored(&state);
    assert_eq!(creds.len(), 1, "{state}");
    assert_eq!(creds[0]["credentials"]["openai_api_key"], sha256(KEY_A));
    assert_eq!(creds[0]["credentials"]["openai_api_base"], lane.endpoint());
    assert_eq!(creds[0]["credentials"]["validate_model"], MODEL);
    assert_eq!(
        state["default_model"]["provider"]["provider"],
        "langgenius/openai/openai"
    );
    let before = writes(&state);

    let again = lane.run_with(KEY_A, &lane.endpoint(), &plugins, &openai);
    assert_eq!(again.code(), 0, "{}", transcript(&again.output));
    assert_eq!(writes(&lane.state()), before, "a re-run writes nothing");

    let rotated = lane.run_with(KEY_B, &lane.endpoint(), &plugins, &openai);
    assert_eq!(rotated.code(), 0, "{}", transcript(&rotated.output));
    let state = lane.state();
    let creds = stored(&state);
    assert_eq!(creds.len(), 1, "{state}");
    assert_eq!(creds[0]["credentials"]["openai_api_key"], sha256(KEY_B));
    assert!(writes(&state).last().unwrap().starts_with("PUT "));

    let wrong = lane.run_with(WRONG_KEY, &lane.endpoint(), &plugins, &openai);
    assert_eq!(wrong.code(), 16, "{}", transcript(&wrong.output));
    assert!(
        wrong
            .reason()
            .contains("the provider refused the OpenAI credential"),
        "{}",
        wrong.reason()
    );
}

#[test]
fn an_unreachable_endpoint_is_refused_with_the_connection_error() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    // A port nothing listens on: the stand-in's own port after it is dropped is racy, so
    // bind one, read its number and close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let run = lane.run(
        KEY_A,
        &format!("http://127.0.0.1:{port}/v1"),
        &[(COMPAT, "url", &url)],
    );
    assert_eq!(run.code(), 16, "{}", transcript(&run.output));
    let reason = run.reason();
    assert!(reason.contains("Connection refused"), "{reason}");
    assert!(credentials(&lane.state()).is_empty());
}

#[test]
fn a_credential_made_meanwhile_takes_the_update_path() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let plugins = [(COMPAT, "url", url.as_str())];
    assert_eq!(lane.run(KEY_A, &lane.endpoint(), &plugins).code(), 0);
    // The next read lists no credential, as if another run had created it between this
    // run's read and its create: the create of the same name answers "already exists", and
    // the script reads again and updates it with PUT instead of failing.
    lane.call(
        "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + '/_standin/hide-credentials-once', data=b'', method='POST'))",
    );
    let run = lane.run(KEY_A, &lane.endpoint(), &plugins);
    assert_eq!(run.code(), 0, "{}", transcript(&run.output));
    assert!(run.stdout().contains("rotated"), "{}", run.stdout());
    let state = lane.state();
    let w = writes(&state);
    assert!(w.last().unwrap().starts_with("PUT "), "{w:?}");
    let stored = credentials(&state);
    assert_eq!(stored.len(), 1, "{state}");
    assert_eq!(stored[0]["credentials"]["api_key"], sha256(KEY_A));
}

#[test]
fn packages_unsigned_or_failing_to_install_stop_the_job_with_their_reason() {
    let lane = Lane::start();
    let unsigned = lane.package("unsigned.difypkg", COMPAT, None, None);
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &unsigned)]);
    assert_eq!(run.code(), 14, "{}", transcript(&run.output));
    assert!(run.reason().contains("bad signature"), "{}", run.reason());
    // Signed with a key the daemon does not trust: refused the same way.
    let foreign = lane.package("foreign.difypkg", COMPAT, Some("other-key"), None);
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &foreign)]);
    assert_eq!(run.code(), 14, "{}", transcript(&run.output));

    let uv = "× No solution found when resolving dependencies: Because openai was not found in the package registry";
    let failing = lane.package("failing.difypkg", COMPAT, Some("signing-key"), Some(uv));
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &failing)]);
    assert_eq!(run.code(), 15, "{}", transcript(&run.output));
    assert!(run.reason().contains(uv), "{}", run.reason());
    assert!(lane.state()["plugins"].as_array().unwrap().is_empty());

    // A package that is not there: the download's HTTP status, exit code 13.
    let missing = format!("http://127.0.0.1:{}/missing.difypkg", lane.files.port);
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &missing)]);
    assert_eq!(run.code(), 13, "{}", transcript(&run.output));
    assert!(run.reason().contains("HTTP 404"), "{}", run.reason());

    // No package for the provider's plugin and none installed: a clear refusal, not a
    // credential error.
    let run = lane.run(KEY_A, &lane.endpoint(), &[]);
    assert_eq!(run.code(), 15, "{}", transcript(&run.output));
    assert!(
        run.reason().contains("is not installed"),
        "{}",
        run.reason()
    );
}

#[test]
fn a_wrong_init_password_stops_before_any_setup() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let run = lane.run_with(
        KEY_A,
        &lane.endpoint(),
        &[(COMPAT, "url", &url)],
        &[("INIT_PASSWORD", "not-the-init-password")],
    );
    assert_eq!(run.code(), 11, "{}", transcript(&run.output));
    assert!(
        run.reason().contains("refused INIT_PASSWORD"),
        "{}",
        run.reason()
    );
    assert_eq!(lane.state()["setup"], false);
}

#[test]
fn an_api_that_does_not_answer_in_time_is_exit_10() {
    // Something else answers on the api's address (the package server: 404 for the console
    // API), and the wait is over at once: the Job says what it last saw.
    let lane = Lane::start();
    let elsewhere = format!("http://127.0.0.1:{}", lane.files.port);
    let run = lane.run_with(
        KEY_A,
        &lane.endpoint(),
        &[],
        &[("DIFY_API_URL", &elsewhere), ("API_WAIT_SECONDS", "0")],
    );
    assert_eq!(run.code(), 10, "{}", transcript(&run.output));
    assert!(
        run.reason().contains("did not answer in 0 s (HTTP 404)"),
        "{}",
        run.reason()
    );
}

#[test]
fn the_standin_keeps_the_recorded_refusals() {
    // The contract the script is written against, checked on the stand-in itself: setup
    // before init → 401 not_init_validated; a login's cookies without the CSRF header →
    // 401; a bearer token alone → 401; with the pair → 200.
    let lane = Lane::start();
    let out = lane.call(
        r#"
import base64, json, sys, urllib.request, urllib.error
base = sys.argv[1]
def call(method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method, headers=dict(headers or {}),
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    try:
        r = urllib.request.urlopen(req)
    except urllib.error.HTTPError as e:
        r = e
    return r.status if hasattr(r, "status") else r.code, r.headers.get_all("Set-Cookie") or [], r.read()
status, _, body = call("POST", "/console/api/setup", {"email": "a@example.com", "name": "a", "password": "P0x12345678"})
print("setup-before-init", status, json.loads(body)["code"])
status, cookies, _ = call("POST", "/console/api/init", {"password": "wrong"})
print("wrong-init", status)
status, cookies, _ = call("POST", "/console/api/init", {"password": open("init").read()})
session = cookies[0].split(";")[0]
status, _, _ = call("POST", "/console/api/setup", {"email": "a@example.com", "name": "a", "password": "P0x12345678"}, {"Cookie": session})
print("setup", status)
status, cookies, _ = call("POST", "/console/api/login", {"email": "a@example.com", "password": base64.b64encode(b"P0x12345678").decode(), "remember_me": True})
jar = dict(c.split(";")[0].split("=", 1) for c in cookies)
print("secure", all("Secure" in c for c in cookies))
cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
print("no-csrf", call("GET", "/console/api/workspaces", None, {"Cookie": cookie})[0])
print("bearer", call("GET", "/console/api/workspaces", None, {"Authorization": "Bearer " + jar["__Host-access_token"]})[0])
print("pair", call("GET", "/console/api/workspaces", None, {"Cookie": cookie, "X-CSRF-Token": jar["__Host-csrf_token"]})[0])
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "setup-before-init 401 not_init_validated",
            "wrong-init 401",
            "setup 201",
            "secure True",
            "no-csrf 401",
            "bearer 401",
            "pair 200",
        ],
        "{out}"
    );
}

/// The real CNCF distribution registry (the Flux lane's, `scripts/testenv build-flux`) on a
/// free loopback port, with its storage in `dir`.
fn registry(dir: &Path) -> (Server, u16) {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: bootstrap-test\n",
            dir.join("registry").display()
        ),
    )
    .unwrap();
    let bin = root().join("target/testenv/bin/registry");
    assert!(
        bin.exists(),
        "{} is built by scripts/testenv build-flux",
        bin.display()
    );
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Ready when it accepts a connection (the registry's own log is not a protocol).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the registry did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (Server { child, port }, port)
}

#[test]
fn a_package_from_the_sites_oci_registry_is_installed() {
    let lane = Lane::start();
    let (_registry, port) = registry(lane.dir.path());
    let host = format!("127.0.0.1:{port}");
    let _ = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let file = lane.dir.path().join("www/compat.difypkg");
    let push = Command::new("python3")
        .arg(root().join("hack/bootstrap/oci_push.py"))
        .args([&host, "dify/openai_api_compatible", "0.0.63-offline"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(push.status.success(), "{}", transcript(&push));
    let reference = format!("{host}/dify/openai_api_compatible:0.0.63-offline");
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "oci", &reference)]);
    assert_eq!(run.code(), 0, "{}", transcript(&run.output));
    assert_eq!(lane.state()["plugins"], serde_json::json!([COMPAT]));
    // Negative control: a tag the registry does not have.
    let lane = Lane::start();
    let missing = format!("{host}/dify/openai_api_compatible:no-such-tag");
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "oci", &missing)]);
    assert_eq!(run.code(), 13, "{}", transcript(&run.output));
    assert!(
        run.reason().contains("manifest: HTTP 404"),
        "{}",
        run.reason()
    );
}

#[test]
fn an_https_package_needs_the_sites_ca_which_the_job_adds_to_the_images_roots() {
    let lane = Lane::start();
    let _ = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let (crt, key) = self_signed(
        lane.dir.path(),
        "site-ca",
        "/CN=files.site.example",
        &["-addext", "subjectAltName=IP:127.0.0.1"],
    );
    let crt_arg = crt.to_str().unwrap().to_owned();
    let key_arg = key.to_str().unwrap().to_owned();
    let https = serve(
        "hack/bootstrap/serve_files.py",
        &["www", &crt_arg, &key_arg],
        lane.dir.path(),
    );
    let url = format!("https://127.0.0.1:{}/compat.difypkg", https.port);
    // Without the site's CA the download is refused: exit 13, the TLS error.
    let run = lane.run(KEY_A, &lane.endpoint(), &[(COMPAT, "url", &url)]);
    assert_eq!(run.code(), 13, "{}", transcript(&run.output));
    assert!(
        run.reason().contains("CERTIFICATE_VERIFY_FAILED"),
        "{}",
        run.reason()
    );
    // With it (DIFYRENDER_CA_FILE, set by the Job when trust.caBundle is): installed.
    let run = lane.run_with(
        KEY_A,
        &lane.endpoint(),
        &[(COMPAT, "url", &url)],
        &[("DIFYRENDER_CA_FILE", &crt_arg)],
    );
    assert_eq!(run.code(), 0, "{}", transcript(&run.output));
    assert_eq!(lane.state()["plugins"], serde_json::json!([COMPAT]));
}

#[test]
fn the_smoke_test_sends_one_message_and_leaves_no_app() {
    let lane = Lane::start();
    let url = lane.package("compat.difypkg", COMPAT, Some("signing-key"), None);
    let run = lane.run_with(
        KEY_A,
        &lane.endpoint(),
        &[(COMPAT, "url", &url)],
        &[("SMOKE_TEST", "true")],
    );
    assert_eq!(run.code(), 0, "{}", transcript(&run.output));
    assert!(
        run.stdout()
            .contains(&format!("smoke test: {MODEL} answered")),
        "{}",
        run.stdout()
    );
    assert_eq!(lane.state()["apps"], 0);
}

// ---- the render ------------------------------------------------------------------------

/// The `/` profile with bootstrap on, for provider `openai` with `key` as secrets.openaiApiKey.
fn bootstrap_values(key: &str, extra: &[&str]) -> Vec<String> {
    let mut set: Vec<String> = [
        "expose.ingressClassName=kommander-traefik",
        "external.host=192.0.2.10",
        "storage.storageClassName=standard",
        "expose.path=/",
        "external.scheme=http",
        "bootstrap.enabled=true",
        "bootstrap.admin.email=admin@example.com",
        "bootstrap.provider.type=openai",
        "bootstrap.plugins[0].name=langgenius/openai",
        "bootstrap.plugins[0].source=oci",
        "bootstrap.plugins[0].ref=registry.example.com/dify/openai:1.0.4-offline",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    set.push(format!("secrets.openaiApiKey={key}"));
    set.extend(extra.iter().map(|s| s.to_string()));
    set
}

fn render(set: Vec<String>) -> difyrender::release::RenderedRelease {
    difyrender::release::render_release(&release_spec(set, MASTER)).expect("renders")
}

fn job(r: &difyrender::release::RenderedRelease) -> &difyrender::manifest::Resource {
    let jobs: Vec<_> = r
        .manifest
        .resources
        .iter()
        .filter(|o| o.kind == "Job" && o.component == "bootstrap")
        .collect();
    assert_eq!(jobs.len(), 1);
    jobs[0]
}

#[test]
fn the_script_in_the_configmap_is_the_tested_file() {
    let r = render(bootstrap_values(KEY_A, &[]));
    let map = r
        .manifest
        .resources
        .iter()
        .find(|o| o.kind == "ConfigMap" && o.component == "bootstrap")
        .expect("a ConfigMap holds the script");
    let file = std::fs::read_to_string(root().join("templates/_bootstrap.py.tpl")).unwrap();
    assert_eq!(
        map.body["data"]["bootstrap.py"]
            .as_str()
            .unwrap()
            .trim_end(),
        file.trim_end(),
        "the template renders to itself (no Jinja delimiter in the script)"
    );
    // Off by default: no object of the component.
    let off = difyrender::release::render_release(&release_spec(
        bootstrap_values(KEY_A, &[])[..5].to_vec(),
        MASTER,
    ))
    .unwrap();
    assert!(
        off.manifest
            .resources
            .iter()
            .all(|o| o.component != "bootstrap")
    );
}

#[test]
fn the_job_has_least_privilege_and_reads_its_keys_by_reference() {
    let r = render(bootstrap_values(KEY_A, &[]));
    let job = job(&r);
    assert_eq!(job.stage, difyrender::manifest::Stage::Bootstrap);
    let pod = &job.body["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(
        c["image"].as_str().unwrap().split(':').next(),
        Some("langgenius/dify-api")
    );
    let env = c["env"].as_array().unwrap();
    let by_ref = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in the env"))["valueFrom"]["secretKeyRef"]
            .clone()
    };
    for (var, key) in [
        ("INIT_PASSWORD", "INIT_PASSWORD"),
        ("ADMIN_PASSWORD", "ADMIN_PASSWORD"),
        ("PROVIDER_API_KEY", "OPENAI_API_KEY"),
    ] {
        assert_eq!(
            by_ref(var),
            serde_json::json!({"name": "dify-keys", "key": key}),
            "{var}"
        );
    }
    // No key in any object but the keys Secret.
    let mut secrets = secrets_of(MASTER);
    secrets.push(KEY_A.to_owned());
    for o in r.manifest.resources.iter().filter(|o| o.kind != "Secret") {
        assert_no_secrets(&o.body.to_string(), &secrets, &o.id());
    }
}

#[test]
fn with_an_existing_secret_the_job_reads_its_mapped_key_names() {
    let set: Vec<String> = bootstrap_values(KEY_A, &[])
        .into_iter()
        .filter(|s| !s.starts_with("secrets.openaiApiKey"))
        .chain([
            "secrets.existingSecret=site-keys".to_owned(),
            "secrets.existingSecretKeys.ADMIN_PASSWORD=dify-admin-password".to_owned(),
        ])
        .collect();
    let spec = difyrender::release::ReleaseSpec {
        master_key_env: None,
        ..release_spec(set, MASTER)
    };
    let r = difyrender::release::render_release(&spec).expect("renders without a master key");
    let job = job(&r);
    let c = &job.body["spec"]["template"]["spec"]["containers"][0];
    let reference = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()["valueFrom"]["secretKeyRef"]
            .clone()
    };
    assert_eq!(
        reference("ADMIN_PASSWORD"),
        serde_json::json!({"name": "site-keys", "key": "dify-admin-password"})
    );
    assert_eq!(
        reference("PROVIDER_API_KEY"),
        serde_json::json!({"name": "site-keys", "key": "OPENAI_API_KEY"})
    );
    // apply and diff read that key from the cluster for the Job's name; negative control: the
    // release's own keys Secret is in the render, so nothing is read for it.
    use difyrender::cluster::bootstrap_key::provider_key_ref;
    assert_eq!(
        provider_key_ref(&r.manifest),
        Some(("site-keys".to_owned(), "OPENAI_API_KEY".to_owned()))
    );
    assert_eq!(
        provider_key_ref(&render(bootstrap_values(KEY_A, &[])).manifest),
        None
    );
    // No key material at render time: no inputs hash either.
    assert!(
        job.body["spec"]["template"]["metadata"]["annotations"]
            .get("difyrender.io/inputs-checksum")
            .is_none()
    );
    let notes = r.notes().join("\n");
    assert!(
        notes.contains("secret -n dify site-keys -o jsonpath='{.data.dify-admin-password}'"),
        "{notes}"
    );
}

#[test]
fn the_job_is_renamed_when_a_key_or_its_input_changes_and_only_then() {
    let name = |set: Vec<String>| job(&render(set)).name.clone();
    let base = name(bootstrap_values(KEY_A, &[]));
    assert!(base.starts_with("dify-bootstrap-"), "{base}");
    assert_eq!(base, name(bootstrap_values(KEY_A, &[])), "deterministic");
    // Unrelated values do not run it again.
    assert_eq!(base, name(bootstrap_values(KEY_A, &["api.replicas=3"])));
    // A new OpenAI key, administrator password or model does.
    assert_ne!(base, name(bootstrap_values(KEY_B, &[])));
    assert_ne!(
        base,
        name(bootstrap_values(
            KEY_A,
            &["secrets.adminPassword=P0another-one"]
        ))
    );
    assert_ne!(
        base,
        name(bootstrap_values(KEY_A, &["bootstrap.defaultModel=gpt-4o"]))
    );
    // The hash names no key: it is an HMAC under the master key, not a hash of the key.
    let r = render(bootstrap_values(KEY_A, &[]));
    let annotations = &job(&r).body["spec"]["template"]["metadata"]["annotations"];
    let inputs = annotations["difyrender.io/inputs-checksum"]
        .as_str()
        .unwrap();
    assert!(!sha256(KEY_A).starts_with(inputs));
}

#[test]
fn the_catalog_entry_carries_the_job_for_flux() {
    // Under Flux (no difyrender on the host) the Job is one more object of the stream, named
    // like every other after ${releaseName}, its keys read from the Secret `secrets apply` makes.
    let out = tempfile::tempdir().unwrap();
    let mut set = bootstrap_values(
        KEY_A,
        &[
            "bootstrap.provider.type=openai-compatible",
            "bootstrap.provider.endpointUrl=https://nai.example.com/api/v1",
            "bootstrap.provider.models[0]=llama-3-1-8b",
            "bootstrap.provider.apiKeySecret.name=nai",
            "bootstrap.provider.apiKeySecret.key=api-key",
        ],
    );
    // The entry holds no key: the OpenAI key is not given.
    set.retain(|s| !s.starts_with("secrets.openaiApiKey"));
    let run = difyrender()
        .arg("catalog")
        .arg("--out")
        .arg(out.path())
        .args(set_args(&set))
        .output()
        .unwrap();
    let text = transcript(&run);
    assert!(run.status.success(), "{text}");
    assert!(text.contains("Secret nai with the keys api-key"), "{text}");
    let manifests = out.path().join("applications/dify/1.16.1/manifests");
    let names: Vec<String> = std::fs::read_dir(&manifests)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "2-configmap-bootstrap.yaml"),
        "{names:?}"
    );
    let job = names
        .iter()
        .find(|n| n.starts_with("7-job-bootstrap-"))
        .unwrap_or_else(|| panic!("a bootstrap Job in {names:?}"));
    let body = read(&manifests.join(job));
    assert!(body.contains("name: ${releaseName}-keys"), "{body}");
    assert!(
        body.contains("value: http://${releaseName}-api:5001"),
        "{body}"
    );
}

// ---- the real control plane ------------------------------------------------------------

fn kubeconfig() -> &'static std::path::PathBuf {
    common::cluster::shared("bootstrap")
}

fn set_args(set: &[String]) -> Vec<String> {
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

fn apply(ns: &str, key: &str, extra: &[&str]) -> Output {
    let out = tempfile::tempdir().unwrap();
    let child = start_apply(ns, key, extra, out.path());
    finish_apply(child, out.path())
}

fn bootstrap_jobs(ns: &str) -> Vec<Value> {
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

#[test]
fn cluster_the_render_passes_a_strict_server_side_dry_run() {
    let out = difyrender()
        .arg("render")
        .args(["-n", "default"])
        .args(set_args(&bootstrap_values(KEY_A, &[])))
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    common::cluster::ok(&out);
    let stream = String::from_utf8(out.stdout).unwrap();
    assert!(stream.contains("kind: Job"), "{stream}");
    common::cluster::strict_dry_run(&stream, "difyrender", kubeconfig(), "bootstrap render");
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

// ---- `difyrender test`: the model answers -------------------------------------------------

/// `src/cluster/smoke_test.py`'s check "model", run by python3 as the test Job runs it, with
/// the bootstrap Job's variables; returns (exit code, its one result, its termination message).
fn model_check(vars: &[(&str, &str)]) -> (i32, Value, String) {
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
    let text = transcript(&out);
    let keys: Vec<String> = [KEY_A, KEY_B, WRONG_KEY].map(String::from).to_vec();
    assert_no_secrets(&text, &keys, "the test script's output");
    let message = read(&log);
    assert_no_secrets(&message, &keys, "the test script's termination message");
    let results = difyrender::cluster::smoketest::parse_results(&message);
    assert_eq!(results.len(), 1, "{text}");
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

// ---- `difyrender doctor`: the key and the endpoint ------------------------------------------

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
