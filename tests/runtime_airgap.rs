//! The air-gapped plugin install, run for real: the plugin daemon's installer **uv** (PyPI,
//! `scripts/runtime build`) with exactly the argument list and environment the daemon builds
//! from the rendered env (../shared/reference/plugin-daemon-offline.md: a requirements.txt
//! and PIP_MIRROR_URL → `uv pip install -i $PIP_MIRROR_URL -r requirements.txt -vvv
//! $PIP_EXTRA_ARGS`, environment VIRTUAL_ENV, PATH, UV_CACHE_DIR and the proxy variables
//! only), against a real package index (pypiserver, PyPI) over HTTPS with a throwaway CA.
//!
//! Each run is in a network namespace with loopback only (no route anywhere) and a mount
//! namespace of its own, where the rendered trust-store init container's output is
//! bind-mounted over /etc/ssl/certs as the kubelet mounts the emptyDir there. The image's
//! system store is stood in for by this machine's Debian store (/etc/ssl/certs, which the
//! rendered script copies as it copies the image's). The mirror's name resolves through a
//! hosts file bind-mounted over /etc/hosts (the cluster DNS in a pod). The Dify plugin daemon
//! itself is not available (its module is not served), so the argv is built here from the
//! reference, not by the daemon.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const MASTER: &str = "airgap-runtime-master-key-0123456789";
const MIRROR_HOST: &str = "pypi.mirror.example.com";
const PORT: u16 = 8443;

fn sh(cmd: &str, dir: &Path) {
    let out = Command::new("bash")
        .args(["-ec", cmd])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd}: {}", transcript(&out));
}

/// A throwaway CA and a server certificate for the mirror's name, signed by it.
fn certificates(dir: &Path) {
    sh(
        &format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=airgap-test-ca \
               -keyout ca.key -out ca.crt 2>/dev/null
             openssl req -newkey rsa:2048 -nodes -subj /CN={MIRROR_HOST} \
               -keyout server.key -out server.csr 2>/dev/null
             printf 'subjectAltName=DNS:{MIRROR_HOST}\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext
             openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
               -extfile ext -out server.crt 2>/dev/null"
        ),
        dir,
    );
}

/// A wheel (zip with its dist-info and RECORD hashes), as a re-packaged plugin's dependency.
fn wheel(dir: &Path) {
    let script = r#"
import base64, hashlib, sys, zipfile
name, version = "difyrender_probe", "1.0.0"
files = {
    f"{name}.py": b"ANSWER = 42\n",
    f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: difyrender-probe\nVersion: {version}\n".encode(),
    f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: difyrender-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = ""
for path, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record += f"{path},sha256={digest},{len(data)}\n"
record += f"{name}-{version}.dist-info/RECORD,,\n"
with zipfile.ZipFile(sys.argv[1] + f"/{name}-{version}-py3-none-any.whl", "w") as z:
    for path, data in files.items():
        z.writestr(path, data)
    z.writestr(f"{name}-{version}.dist-info/RECORD", record)
"#;
    std::fs::create_dir_all(dir.join("packages")).unwrap();
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, dir.join("packages").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
}

/// The plugin daemon's env and its trust-store init script, from a render.
struct Daemon {
    env: Vec<(String, String)>,
    trust_script: String,
}

fn render_pod(extra: &[&str], deployment: &str) -> (serde_json::Value, Vec<serde_json::Value>) {
    let root = root();
    let out = difyrender()
        .arg("render")
        .args([
            "-f",
            root.join("examples/nkp.values.yaml").to_str().unwrap(),
        ])
        .args([
            "-f",
            root.join("examples/nkp-airgap.values.yaml")
                .to_str()
                .unwrap(),
        ])
        // The proxy's credentials are the kubelet's to expand; here the proxy has none.
        .args(["--set", "egress.proxy.credentialsSecret="])
        .args(extra)
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    let docs =
        difyrender::yaml::from_str_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let pod = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == deployment)
        .unwrap()["spec"]["template"]["spec"]
        .clone();
    (pod, docs)
}

fn render_daemon(extra: &[&str]) -> Daemon {
    let (pod, _) = render_pod(extra, "dify-plugin-daemon");
    daemon_of(&pod)
}

fn daemon_of(pod: &serde_json::Value) -> Daemon {
    let env = pod["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let trust_script = pod["initContainers"][0]["command"][2]
        .as_str()
        .unwrap()
        .to_owned();
    Daemon { env, trust_script }
}

impl Daemon {
    fn get(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// uv's arguments as the daemon builds them for a requirements.txt.
    fn uv_args(&self, requirements: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec!["pip".into(), "install".into()];
        if let Some(url) = self.get("PIP_MIRROR_URL").filter(|u| !u.is_empty()) {
            args.extend(["-i".into(), url.into()]);
        }
        args.extend([
            "-r".into(),
            requirements.display().to_string(),
            "-vvv".into(),
        ]);
        args.extend(
            self.get("PIP_EXTRA_ARGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned),
        );
        args
    }

    /// uv's environment as the daemon builds it: the proxy variables of its own env only.
    fn uv_env(&self) -> Vec<(String, String)> {
        ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"]
            .iter()
            .filter_map(|n| self.get(n).map(|v| ((*n).to_owned(), v.to_owned())))
            .collect()
    }
}

/// Builds the trust store with the rendered init script (its volumes at `dir`), as the init
/// container does from the image's /etc/ssl/certs.
fn trust_store(script: &str, ca: &Path, dir: &Path) -> PathBuf {
    let site = dir.join("trust-site");
    let store = dir.join("trust-store");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(ca, site.join("ca.crt")).unwrap();
    let script = script
        .replace("/etc/difyrender/trust-site", site.to_str().unwrap())
        .replace("/etc/difyrender/trust-store", store.to_str().unwrap());
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    store
}

/// One install: a fresh venv and cache, the mirror serving, uv run in a namespace with no
/// route, `store` (if any) over /etc/ssl/certs. Returns (success, transcript).
fn install(
    dir: &Path,
    run: &str,
    args: &[String],
    env: &[(String, String)],
    store: Option<&Path>,
) -> (bool, String) {
    let run_dir = dir.join(run);
    std::fs::create_dir_all(&run_dir).unwrap();
    let uv = root().join("target/runtime/pypi/bin/uv");
    let venv = run_dir.join("venv");
    let out = Command::new(&uv)
        .args([
            "venv",
            "--python",
            "/usr/bin/python3",
            "--no-python-downloads",
        ])
        .arg(&venv)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("UV_CACHE_DIR", run_dir.join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "uv venv: {}", transcript(&out));
    let mut uv_env = format!(
        "VIRTUAL_ENV={} PATH={}/bin:/usr/local/bin:/usr/bin:/bin UV_CACHE_DIR={}",
        venv.display(),
        venv.display(),
        run_dir.join("cache").display()
    );
    for (k, v) in env {
        uv_env.push_str(&format!(" {k}={}", shell_quote(v)));
    }
    let command = format!(
        "env -i {uv_env} {} {}",
        uv.display(),
        args.iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = with_mirror(dir, &run_dir, &command, store);
    let installed = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .flatten()
        .any(|p| p.path().join("site-packages/difyrender_probe.py").exists());
    assert_eq!(installed, out.status.success(), "{}", transcript(&out));
    (out.status.success(), transcript(&out))
}

/// Runs `command` (a shell line) in a new network namespace with loopback only and a mount
/// namespace of its own, the mirror serving, the hosts file and `store` (if any) over
/// /etc/ssl/certs mounted there.
fn with_mirror(
    dir: &Path,
    run_dir: &Path,
    command: &str,
    store: Option<&Path>,
) -> std::process::Output {
    std::fs::write(
        run_dir.join("hosts"),
        format!("127.0.0.1 localhost\n127.0.0.1 {MIRROR_HOST}\n"),
    )
    .unwrap();
    let script = format!(
        r#"set -u
ip link set lo up
mount --bind {hosts} /etc/hosts
{store_mount}
PYTHONPATH={pypi} /usr/bin/python3 {server} {packages} {cert} {key} 127.0.0.1 {PORT} 2>{log} &
server=$!
trap 'kill $server' EXIT
up=
for _ in $(seq 1 600); do
  if (exec 3<>/dev/tcp/127.0.0.1/{PORT}) 2>/dev/null; then up=1; break; fi
  kill -0 $server || break
  sleep 0.05
done
[ -n "$up" ] || {{ echo "the mirror did not start"; cat {log}; exit 99; }}
{command}
"#,
        hosts = run_dir.join("hosts").display(),
        store_mount = store
            .map(|s| format!("mount --bind {} /etc/ssl/certs", s.display()))
            .unwrap_or_default(),
        pypi = root().join("target/runtime/pypi").display(),
        server = root().join("hack/runtime/pypi_tls.py").display(),
        packages = dir.join("packages").display(),
        cert = dir.join("server.crt").display(),
        key = dir.join("server.key").display(),
        log = run_dir.join("mirror.log").display(),
    );
    let out = Command::new("unshare")
        .args([
            "--net",
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "bash",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(99), "{}", transcript(&out));
    out
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn uv_installs_from_the_mirror_only_through_the_rendered_trust_store() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    certificates(dir);
    wheel(dir);
    let url = format!("https://{MIRROR_HOST}:{PORT}/simple/");
    let daemon = render_daemon(&["--set", &format!("plugins.pythonMirror.url={url}")]);
    assert_eq!(daemon.get("PIP_MIRROR_URL"), Some(url.as_str()));
    assert_eq!(daemon.get("PIP_EXTRA_ARGS"), Some("--native-tls"));
    // The site proxy is set, and the mirror is reached directly through NO_PROXY's .example.com.
    assert!(daemon.get("HTTPS_PROXY").is_some());
    let requirements = dir.join("requirements.txt");
    std::fs::write(&requirements, "difyrender-probe==1.0.0\n").unwrap();
    let args = daemon.uv_args(&requirements);
    let env = daemon.uv_env();
    let store = trust_store(&daemon.trust_script, &dir.join("ca.crt"), dir);

    // With the rendered store over /etc/ssl/certs: installed from the mirror.
    let (ok, text) = install(dir, "with-store", &args, &env, Some(&store));
    assert!(ok, "with the trust store: {text}");
    // Without it (the image's own store): the mirror's certificate is refused.
    let (ok, text) = install(dir, "without-store", &args, &env, None);
    assert!(!ok, "without the trust store: {text}");
    assert!(
        text.contains("UnknownIssuer") || text.contains("invalid peer certificate"),
        "{text}"
    );
    // The store alone is not enough: without --native-tls uv trusts its built-in roots only.
    let no_native: Vec<String> = args
        .iter()
        .filter(|a| *a != "--native-tls")
        .cloned()
        .collect();
    let (ok, text) = install(dir, "without-native-tls", &no_native, &env, Some(&store));
    assert!(!ok, "without --native-tls: {text}");
    assert!(
        text.contains("UnknownIssuer") || text.contains("invalid peer certificate"),
        "{text}"
    );
    // SSL_CERT_FILE on the daemon's container is not given to uv: the bundle in an environment
    // variable of the container does nothing (the daemon's env is cleared), shown by the run
    // above with the container's SSL_CERT_FILE present in the render.
    assert_eq!(
        daemon.get("SSL_CERT_FILE"),
        Some("/etc/ssl/certs/ca-certificates.crt")
    );
    // A package the mirror does not hold: uv does not fall back to a public index.
    std::fs::write(dir.join("missing.txt"), "six==1.16.0\n").unwrap();
    let (ok, text) = install(
        dir,
        "missing",
        &daemon.uv_args(&dir.join("missing.txt")),
        &env,
        Some(&store),
    );
    assert!(!ok, "{text}");
    assert!(!text.contains("files.pythonhosted.org/packages"), "{text}");
    // pypiserver sends what it does not hold to its fallback, the public index (HTTP 303), which
    // uv tries through the site proxy (NO_PROXY lists the mirror's domain, not pypi.org) and
    // cannot reach.
    assert!(text.contains("https://pypi.org/simple/six/"), "{text}");
    // Without a mirror (the public index, as the mirror probe would look for): no route.
    let no_mirror: Vec<String> = {
        let mut a = args.clone();
        let i = a.iter().position(|x| x == "-i").unwrap();
        a.drain(i..i + 2);
        a
    };
    let (ok, text) = install(dir, "public-index", &no_mirror, &env, Some(&store));
    assert!(!ok, "{text}");
    assert!(text.contains("pypi.org"), "{text}");
}

/// The sandbox's code-node requirements (its rendered python-requirements.txt) installed by
/// Debian's pip (a stand-in for the sandbox image's pip: the sandbox is not available) with the
/// sandbox's rendered PIP_MIRROR_URL and trust variables (REQUESTS_CA_BUNDLE and SSL_CERT_FILE
/// name the store), from the same mirror. The sandbox reaches the mirror through the ssrf
/// proxy, which this run leaves out (its HTTP(S)_PROXY are dropped); only the rendered
/// allow-list entry for the mirror is checked here.
#[test]
fn sandbox_pip_installs_from_the_mirror_only_through_the_rendered_trust_store() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    certificates(dir);
    wheel(dir);
    let url = format!("https://{MIRROR_HOST}:{PORT}/simple/");
    let (pod, docs) = render_pod(
        &[
            "--set",
            &format!("plugins.pythonMirror.url={url}"),
            "--set-json",
            "sandbox.pythonPackages=[\"difyrender-probe==1.0.0\"]",
        ],
        "dify-sandbox",
    );
    let requirements = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "dify-sandbox-dependencies")
        .unwrap()["data"]["python-requirements.txt"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(dir.join("python-requirements.txt"), &requirements).unwrap();
    // The allow-list lets the sandbox's requests to the mirror through the ssrf proxy.
    let squid = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "dify-ssrf-proxy")
        .unwrap()["data"]["squid.conf"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(squid.contains(&format!("acl allowed_domains dstdomain .{MIRROR_HOST}\n")));
    let sandbox = daemon_of(&pod);
    assert_eq!(sandbox.get("PIP_MIRROR_URL"), Some(url.as_str()));
    let env: String = sandbox
        .env
        .iter()
        .filter(|(n, _)| n.starts_with("PIP_") || n.ends_with("CA_BUNDLE") || n == "SSL_CERT_FILE")
        .map(|(n, v)| format!(" {n}={}", shell_quote(v)))
        .collect();
    assert!(env.contains("SSL_CERT_FILE"), "{env}");
    let store = trust_store(&sandbox.trust_script, &dir.join("ca.crt"), dir);
    let pip = |run: &str, store: Option<&Path>| {
        let run_dir = dir.join(run);
        std::fs::create_dir_all(&run_dir).unwrap();
        let target = run_dir.join("site-packages");
        let command = format!(
            "env -i PATH=/usr/bin:/bin HOME={home}{env} /usr/bin/python3 -m pip install --disable-pip-version-check --no-cache-dir --break-system-packages --target {target} -i \"$PIP_MIRROR_URL\" -r {reqs}",
            home = run_dir.display(),
            target = target.display(),
            reqs = dir.join("python-requirements.txt").display(),
        )
        .replace("\"$PIP_MIRROR_URL\"", &shell_quote(&url));
        let out = with_mirror(dir, &run_dir, &command, store);
        let installed = target.join("difyrender_probe.py").exists();
        assert_eq!(installed, out.status.success(), "{}", transcript(&out));
        (out.status.success(), transcript(&out))
    };
    let (ok, text) = pip("with-store", Some(&store));
    assert!(ok, "{text}");
    let (ok, text) = pip("without-store", None);
    assert!(!ok, "{text}");
    assert!(text.contains("CERTIFICATE_VERIFY_FAILED"), "{text}");
}

/// `difyrender test`'s `python-mirror` check, in the Job built from the rendered api and plugin
/// daemon Deployments: it gets the daemon's PIP_MIRROR_URL and the api pod's trust-store init
/// container, volumes and mount. Its script, run here with that env against the HTTPS mirror,
/// passes with the rendered store over /etc/ssl/certs and fails without it.
#[test]
fn the_test_jobs_mirror_check_verifies_the_mirror_with_the_site_store() {
    use difyrender::cluster::smoketest;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    certificates(dir);
    wheel(dir);
    let url = format!("https://{MIRROR_HOST}:{PORT}/simple/");
    let (_, docs) = render_pod(
        &["--set", &format!("plugins.pythonMirror.url={url}")],
        "dify-plugin-daemon",
    );
    let deployment = |name: &str| {
        docs.iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name)
            .unwrap()
            .clone()
    };
    let api = deployment("dify-api");
    let options = smoketest::Options {
        keep: false,
        through_ingress: false,
        timeout: std::time::Duration::from_secs(60),
    };
    let mut job = smoketest::job("dify", "dify", "dify-test-airgap", &api, &options).unwrap();
    smoketest::add_airgap(&mut job, &api, Some(&deployment("dify-plugin-daemon")));
    let spec = &job["spec"]["template"]["spec"];
    assert_eq!(spec["initContainers"][0]["name"], "trust-store");
    assert_eq!(
        spec["containers"][0]["volumeMounts"][0]["mountPath"],
        "/etc/ssl/certs"
    );
    let env = spec["containers"][0]["env"].as_array().unwrap();
    let mirror = env
        .iter()
        .find(|e| e["name"] == "DIFYTEST_MIRROR_URL")
        .unwrap();
    assert_eq!(mirror["value"], url.as_str());
    // Without a mirror, no check and no variable.
    let mut plain = smoketest::job("dify", "dify", "dify-test-0", &api, &options).unwrap();
    smoketest::add_airgap(&mut plain, &api, None);
    assert!(
        !plain["spec"]["template"]["spec"]["containers"][0]["env"]
            .to_string()
            .contains("DIFYTEST_MIRROR_URL")
    );

    // The script with the check's variables (no ssrf proxy runs here: the request goes direct).
    let script = dir.join("smoke_test.py");
    std::fs::write(&script, smoketest::SCRIPT).unwrap();
    let command = format!(
        "env -i PATH=/usr/bin:/bin DIFYTEST_CHECKS=python-mirror DIFYTEST_RESULT_FILE= DIFYTEST_MIRROR_URL={} /usr/bin/python3 {}",
        shell_quote(&url),
        script.display()
    );
    let trust_script = daemon_of(&spec.clone()).trust_script;
    let store = trust_store(&trust_script, &dir.join("ca.crt"), dir);
    for (run, store, want) in [
        ("check-with-store", Some(store.as_path()), true),
        ("check-without", None, false),
    ] {
        let run_dir = dir.join(run);
        std::fs::create_dir_all(&run_dir).unwrap();
        let out = with_mirror(dir, &run_dir, &command, store);
        let results = smoketest::parse_results(&text_of(&out.stdout));
        assert_eq!(results.len(), 1, "{}", transcript(&out));
        assert_eq!(results[0].check, "python-mirror");
        assert_eq!(results[0].ok, want, "{}", results[0].detail);
        assert_eq!(out.status.success(), want);
        if !want {
            assert!(
                results[0].detail.contains("CERTIFICATE_VERIFY_FAILED"),
                "{}",
                results[0].detail
            );
        }
    }
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
