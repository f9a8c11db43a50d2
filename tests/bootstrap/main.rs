//! `bootstrap.enabled` (docs/bootstrap.md): the Job's script, its rendering and its stage.
//!
//! The script (`templates/_bootstrap.py.tpl`, run by the host's python3 as the Job runs it in
//! the api image) is tested against a STAND-IN of Dify's console API
//! (`hack/bootstrap/console_standin.py`): Dify's api and plugin daemon are available to no
//! test, so the stand-in reproduces the contract recorded from Dify 1.14.1 and plugin daemon
//! 0.6.0 in ../shared/reference/dify-console-bootstrap.md, refusals included. The model
//! endpoint the credentials point at is a real OpenAI-compatible server on loopback
//! (`hack/bootstrap/openai_stub.py`), which the stand-in calls to validate a credential as the
//! plugin does, and which refuses a wrong key with 401. The marketplace source's contract is
//! not in the reference: the stand-in takes it from Dify's public clients and says so, and the
//! marketplace's download endpoint is a stand-in file server (`serve_files.py --marketplace`).
//!
//! One file per part: `script.rs` (the script against the stand-in and the package sources),
//! `render.rs`, `cluster.rs` (the real control plane), `model.rs` (`difyrender test`'s model
//! check), `doctor.rs` (`difyrender doctor`'s bootstrap checks).
//!
//! On the real control plane (scripts/testenv, kwok): a strict server-side dry run of the
//! render; the Job applied only after the apps are ready; a re-apply writes nothing; a changed
//! key runs a new Job, also a changed key in a Secret of the cluster (apiKeySecret), which apply
//! and diff read; no key in any object but the keys Secret; a failed Job stops apply with the
//! script's reason and exit code.

mod cluster;
#[path = "../common/mod.rs"]
mod common;
mod doctor;
mod model;
mod render;
mod script;

use cluster::*;
use common::*;
use model::*;
use render::*;
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

/// The stub, the stand-in, a directory of packages served over HTTP, and the marketplace's
/// download endpoint (a stand-in too, `serve_files.py --marketplace`).
struct Lane {
    dir: tempfile::TempDir,
    stub: Server,
    standin: Server,
    files: Server,
    /// Kept running while the lane lives; the stand-in calls it.
    _market: Server,
}

impl Lane {
    /// A lane whose api has the marketplace on.
    fn start() -> Lane {
        Lane::start_with(true)
    }

    /// `marketplace`: whether the stand-in's api has the marketplace on (MARKETPLACE_ENABLED,
    /// MARKETPLACE_API_URL).
    fn start_with(marketplace: bool) -> Lane {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("keys"), format!("{KEY_A}\n{KEY_B}\n")).unwrap();
        std::fs::write(p.join("init"), INIT_PASSWORD).unwrap();
        std::fs::write(p.join("signing-key"), "operator-signing-key-of-the-test").unwrap();
        std::fs::write(p.join("other-key"), "a-key-the-daemon-does-not-trust").unwrap();
        std::fs::create_dir(p.join("www")).unwrap();
        std::fs::create_dir(p.join("market")).unwrap();
        let stub = serve(
            "hack/bootstrap/openai_stub.py",
            &["--model", MODEL, "--keys-file", "keys"],
            p,
        );
        let market = serve(
            "hack/bootstrap/serve_files.py",
            &["--marketplace", "market"],
            p,
        );
        let market_url = format!("http://127.0.0.1:{}", market.port);
        let mut args = vec![
            "--init-password-file",
            "init",
            "--signing-key-file",
            "signing-key",
        ];
        if marketplace {
            args.extend(["--marketplace-api-url", &market_url]);
        }
        let standin = serve("hack/bootstrap/console_standin.py", &args, p);
        let files = serve("hack/bootstrap/serve_files.py", &["www"], p);
        Lane {
            dir,
            stub,
            standin,
            files,
            _market: market,
        }
    }

    /// Publishes a package of `plugin` in the marketplace, signed with `key` (a file of the
    /// lane); returns its unique identifier, `plugin:version@sha256`, which the marketplace
    /// serves it by.
    fn market_package(&self, plugin: &str, key: &str) -> String {
        let file = format!("market-{}.difypkg", plugin.replace('/', "-"));
        self.package(&file, plugin, Some(key), None);
        let built = self.dir.path().join("www").join(&file);
        let sum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            std::fs::read(&built).unwrap(),
        ));
        std::fs::rename(
            &built,
            self.dir
                .path()
                .join("market")
                .join(format!("{sum}.difypkg")),
        )
        .unwrap();
        format!("{plugin}:0.0.63@{sum}")
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
    /// Exited with `code`, and its one reason line contains `needle`.
    #[track_caller]
    fn fails_with(&self, code: i32, needle: &str) {
        assert_eq!(self.code(), code, "{}", transcript(&self.output));
        let reason = self.reason();
        assert!(reason.contains(needle), "{reason}");
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
