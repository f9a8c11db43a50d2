//! The Traefik lane's machinery: a private network namespace, the control plane and Traefik
//! in it, and the clients the test sends its requests with.

use super::common::{read_until, root, transcript};
use serde_json::Value;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The host of every URL (external.host).
pub const HOST: &str = "192.0.2.10";
/// Traefik's entry points inside the namespace: HTTPS (every router: external.scheme=https)
/// and its API, which the test reads to know when a configuration is loaded.
pub const HTTPS_PORT: u16 = 8443;
pub const API_PORT: u16 = 9000;

/// A private network namespace, held by a process that exits when the test process does
/// (its stdin is a pipe from the test), and everything started in it.
pub struct Lane {
    holder: Child,
    children: Vec<(Child, ChildStdin)>,
    dir: PathBuf,
}

impl Lane {
    pub fn new(dir: PathBuf) -> Lane {
        std::fs::create_dir_all(&dir).unwrap();
        let mut holder = Command::new("unshare")
            .args(["--net", "--", "sh", "-euc"])
            .arg(
                "ip link set lo up; ip addr add 10.244.0.1/24 dev lo; echo lane-ready; exec cat >/dev/null",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare runs (the lane needs root, as the runtime lane does)");
        read_until(
            &mut BufReader::new(holder.stdout.take().unwrap()),
            "lane-ready",
        );
        Lane {
            holder,
            children: Vec::new(),
            dir,
        }
    }

    /// A command that runs inside the lane's network namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{}/ns/net", self.holder.id()))
            .arg("--")
            .arg(program);
        c
    }

    /// Starts a long-running program in the lane, stopped when its stdin closes (when the lane
    /// is dropped or the test process exits). Its output goes to `<name>.log`; with `capture`,
    /// its stdout is returned instead.
    pub fn spawn(
        &mut self,
        name: &str,
        argv: &[&str],
        env: &[(&str, &str)],
        capture: bool,
    ) -> Option<BufReader<std::process::ChildStdout>> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let mut child = self
            .cmd("sh")
            .args([
                "-c",
                "\"$@\" </dev/null & pid=$!; cat >/dev/null; kill $pid; wait $pid",
                name,
            ])
            .args(argv)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(if capture {
                Stdio::piped()
            } else {
                log.try_clone().unwrap().into()
            })
            .stderr(log)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().map(BufReader::new);
        self.children.push((child, stdin));
        stdout
    }

    pub fn kubectl(&self, kc: &Path, args: &[&str], input: Option<&str>) -> String {
        let mut child = self
            .cmd("kubectl")
            .arg("--kubeconfig")
            .arg(kc)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            transcript(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn output(&self, program: &str, args: &[&str]) -> Output {
        self.cmd(program).args(args).output().unwrap()
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        for (mut child, stdin) in self.children.drain(..) {
            drop(stdin);
            let _ = child.wait();
        }
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

/// Builds Traefik (cached after the first build) and returns the binary and its CRD directory.
pub fn traefik_build() -> (PathBuf, PathBuf) {
    let status = Command::new(root().join("scripts/testenv"))
        .arg("build-traefik")
        .status()
        .unwrap();
    assert!(status.success(), "scripts/testenv build-traefik failed");
    (
        root().join("target/testenv/bin/traefik"),
        root().join("target/testenv/traefik-crds"),
    )
}

/// The control plane, inside the lane; stops itself when this test process exits.
pub fn control_plane(lane: &Lane) -> PathBuf {
    let dir = root()
        .join("target")
        .join(format!("testenv-traefik-{}", std::process::id()));
    let out = lane
        .cmd(root().join("scripts/testenv"))
        .arg("start")
        .env("TESTENV_DIR", &dir)
        .env("TESTENV_WATCH_PID", std::process::id().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "testenv start: {}", transcript(&out));
    dir.join("kubeconfig")
}

/// GET `url` through Traefik (its HTTPS entry point, the URL's host as Host and SNI).
pub fn get(lane: &Lane, url: &str) -> (u16, String) {
    let out = lane.output(
        "curl",
        &[
            "-sk",
            "--max-time",
            "20",
            "--connect-to",
            &format!("{HOST}:443:127.0.0.1:{HTTPS_PORT}"),
            "-w",
            "\n%{http_code}",
            url,
        ],
    );
    assert!(out.status.success(), "curl {url}: {}", transcript(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

/// A WebSocket upgrade through Traefik, as the browser's socket.io client opens it; returns the
/// status line, what the backend recorded, and whether bytes then pass both ways.
pub const WEBSOCKET_CLIENT: &str = r#"
import socket, ssl, sys, json
port, host, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20))
s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "Origin: https://%s\r\n\r\n" % (path, host, host)).encode())
f = s.makefile("rb")
status = f.readline().decode().strip()
while f.readline() not in (b"\r\n", b""):
    pass
record = json.loads(f.readline())
s.sendall(b"ping-through-traefik")
echo = b""
while len(echo) < len(b"ping-through-traefik"):
    chunk = s.recv(64)
    if not chunk:
        break
    echo += chunk
print(json.dumps({"status": status, "record": record, "echo": echo.decode()}))
"#;

/// Waits until Traefik serves exactly the routers of namespace `ns` (none of another case's),
/// each service with its recorder: a condition read from Traefik's API, polled.
pub fn wait_loaded(lane: &Lane, ns: &str, routers: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = lane.output(
            "curl",
            &[
                "-s",
                &format!("http://127.0.0.1:{API_PORT}/api/http/routers?per_page=1000"),
            ],
        );
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let ours: Vec<&Value> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["provider"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("kubernetes")
            })
            .collect();
        let services = lane.output(
            "curl",
            &[
                "-s",
                &format!("http://127.0.0.1:{API_PORT}/api/http/services?per_page=1000"),
            ],
        );
        let services: Value = serde_json::from_slice(&services.stdout).unwrap_or(Value::Null);
        let empty_services = services
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| {
                s["provider"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("kubernetes")
            })
            .filter(|s| s["loadBalancer"].is_object())
            .any(|s| {
                s["loadBalancer"]["servers"]
                    .as_array()
                    .is_none_or(|v| v.is_empty())
            });
        if ours.len() == routers
            && ours
                .iter()
                .all(|r| r["name"].as_str().unwrap_or("").contains(ns))
            && ours.iter().all(|r| r["status"] == "enabled")
            && !empty_services
        {
            return;
        }
        last = format!("{ours:#?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("Traefik did not load the {routers} routers of {ns}: {last}");
}
