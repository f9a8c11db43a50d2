//! The api-websocket's capacity and readiness probe, with the server that sets them: gunicorn
//! with Dify's websocket worker class (Debian's python3-gunicorn, python3-gevent and
//! python3-gevent-websocket; scripts/runtime build installs them), started as Dify's 1.14.x
//! entrypoint starts it, with the environment the chart renders for the api-websocket.
//! Dify's api itself is not in any registry: hack/runtime/websocket_app.py stands in for it
//! (a /health route and held-open WebSockets), and says in which order it served them.
//!
//! Observed with Dify 1.14.1 (issue 25): without SERVER_WORKER_CONNECTIONS the entrypoint's
//! default of 10 applies, the eleventh socket hangs, and /health stops answering while a TCP
//! readiness probe still connects.

mod common;

use common::kubelet::{container, container_env, env_get, pod};
use common::*;
use difyrender::release::render_release;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::Duration;

/// A guard against hanging forever, not an assertion: every read below expects an answer.
const GUARD: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    events: BufReader<ChildStdout>,
    /// Kept open: gunicorn logs to it.
    _log: BufReader<ChildStderr>,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// gunicorn as the 1.14.x entrypoint runs it in api mode: `--workers SERVER_WORKER_AMOUNT
    /// --worker-class SERVER_WORKER_CLASS --worker-connections ${SERVER_WORKER_CONNECTIONS:-10}
    /// --timeout GUNICORN_TIMEOUT`, on a free loopback port.
    fn start(env: &[(String, String)]) -> Server {
        let get = |name: &str, default: &str| {
            env.iter()
                .find(|(n, _)| n == name)
                .map_or(default.to_owned(), |(_, v)| v.clone())
        };
        let mut child = Command::new("/usr/bin/python3")
            .args(["-m", "gunicorn", "--bind", "127.0.0.1:0"])
            .args(["--workers", &get("SERVER_WORKER_AMOUNT", "1")])
            .args(["--worker-class", &get("SERVER_WORKER_CLASS", "gevent")])
            .args([
                "--worker-connections",
                &get("SERVER_WORKER_CONNECTIONS", "10"),
            ])
            .args(["--timeout", &get("GUNICORN_TIMEOUT", "360")])
            .arg("websocket_app:app")
            .current_dir(root().join("hack/runtime"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 -m gunicorn runs (scripts/runtime build installs it)");
        let mut log = BufReader::new(child.stderr.take().unwrap());
        let seen = read_until(&mut log, "Listening at: ");
        let port = seen
            .rsplit("127.0.0.1:")
            .next()
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {seen}"));
        let events = BufReader::new(child.stdout.take().unwrap());
        Server {
            child,
            events,
            _log: log,
            port,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(GUARD)).unwrap();
        s
    }

    /// A WebSocket the server accepted (101), held open.
    fn websocket(&self) -> TcpStream {
        let mut s = self.connect();
        s.write_all(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: dify\r\n\
              Upgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(
                s.read(&mut byte).unwrap(),
                1,
                "the server closed the socket"
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s
    }

    /// Sends the readiness probe's request; the answer is read later.
    fn probe(&self, path: &str) -> TcpStream {
        let mut s = self.connect();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: dify\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        s
    }

    fn event(&mut self) -> String {
        let mut line = String::new();
        assert!(
            self.events.read_line(&mut line).unwrap() > 0,
            "the server exited"
        );
        line.trim().to_owned()
    }
}

fn answer(mut s: TcpStream) -> String {
    let mut text = String::new();
    s.read_to_string(&mut text).expect("an answer");
    text
}

#[test]
fn the_websocket_server_takes_more_than_ten_sockets_and_its_probe_sees_a_full_server() {
    let spec = release_spec(
        [
            "expose.ingressClassName=kommander-traefik",
            "expose.path=/",
            "external.scheme=https",
            "external.host=192.0.2.10",
            "storage.storageClassName=standard",
            "images.dify.tag=1.14.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        "websocket-capacity-master-key-0123456789",
    );
    let r = render_release(&spec).unwrap();
    let m = &r.manifest;
    let p = pod(m, "Deployment", "dify-api-websocket");
    let c = container(&p, "api-websocket");
    let env = container_env(m, c);
    assert_eq!(env_get(&env, "SERVER_WORKER_CONNECTIONS"), "1000");
    let probe = c.readiness_probe.as_ref().unwrap();
    let path = probe
        .http_get
        .as_ref()
        .expect("an HTTP readiness probe")
        .path
        .clone()
        .unwrap();

    // As rendered: twelve sockets (the issue saw 11 and 12 hang) and the probe still answered.
    let mut server = Server::start(&env);
    let sockets: Vec<TcpStream> = (0..12).map(|_| server.websocket()).collect();
    let ok = answer(server.probe(&path));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert_eq!(server.event(), "health answered");
    drop(sockets);
    drop(server);

    // Negative control, the entrypoint's default (the chart before the fix): ten sockets fill
    // the server. A TCP connection still succeeds (what the old TCP probe checked), but the
    // HTTP probe is answered only after a socket closes.
    let default: Vec<(String, String)> = env
        .iter()
        .filter(|(n, _)| n != "SERVER_WORKER_CONNECTIONS")
        .cloned()
        .collect();
    let mut server = Server::start(&default);
    let mut sockets: Vec<TcpStream> = (0..10).map(|_| server.websocket()).collect();
    drop(server.connect());
    let waiting = server.probe(&path);
    let first = sockets.remove(0);
    first.shutdown(Shutdown::Both).unwrap();
    drop(first);
    let late = answer(waiting);
    assert!(late.starts_with("HTTP/1.1 200"), "{late}");
    assert_eq!(server.event(), "websocket closed");
    assert_eq!(server.event(), "health answered");
}
