//! The keys Job of `catalog --keys in-cluster`, run as its pod would run it. STAND-IN: the pod
//! (kwok runs no container): the script runs here with python3 (standard library only, as in
//! the api image), with the Job's environment, and its service account's token, the cluster's
//! CA and the namespace in a folder, where the kubelet would mount them.

use super::cluster::kubectl;
use super::{difyrender, read, root, root_profile, transcript};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// The API server's URL and CA certificate (PEM), from the kubeconfig `kc`.
pub fn cluster_access(kc: &Path) -> (String, Vec<u8>) {
    use base64::Engine;
    let config: Value = difyrender::yaml::from_str(&read(kc)).unwrap();
    let cluster = &config["clusters"][0]["cluster"];
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster["certificate-authority-data"].as_str().unwrap())
        .unwrap();
    (cluster["server"].as_str().unwrap().to_owned(), ca)
}

/// Writes into `dir` the service account's token (`kubectl create token`), the cluster's CA and
/// the namespace, as the kubelet mounts them, and `kubeconfig`: that token and nothing else.
pub fn write_account(kc: &Path, dir: &Path, ns: &str, account: &str) {
    let token = kubectl(&["create", "token", account, "-n", ns], kc);
    assert!(token.status.success(), "{}", transcript(&token));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    std::fs::write(dir.join("token"), &token).unwrap();
    let (server, ca) = cluster_access(kc);
    std::fs::write(dir.join("ca.crt"), &ca).unwrap();
    std::fs::write(dir.join("namespace"), ns).unwrap();
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "job",
        "clusters": [{"name": "c", "cluster": {"server": server,
            "certificate-authority": dir.join("ca.crt")}}],
        "users": [{"name": "job", "user": {"token": token}}],
        "contexts": [{"name": "job", "context": {"cluster": "c", "user": "job", "namespace": ns}}],
    });
    std::fs::write(dir.join("kubeconfig"), config.to_string()).unwrap();
}

/// Runs the keys Job `job` (the object as the cluster has it) in `ns` as its pod would, with
/// `master` as the form's Secret gives it (or none: the optional reference finds nothing).
pub fn run(kc: &Path, ns: &str, job: &Value, master: Option<&str>) -> Output {
    let pod = &job["spec"]["template"]["spec"];
    let account = pod["serviceAccountName"].as_str().unwrap();
    let sa = tempfile::tempdir().unwrap();
    write_account(kc, sa.path(), ns, account);
    let (server, _) = cluster_access(kc);
    let (host, port) = server
        .trim_start_matches("https://")
        .split_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("src/catalog/derive_keys.py"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("SERVICEACCOUNT_DIR", sa.path())
        .env("KUBERNETES_SERVICE_HOST", &host)
        .env("KUBERNETES_SERVICE_PORT", &port)
        .env("TERMINATION_LOG", sa.path().join("termination-log"));
    for e in pod["containers"][0]["env"].as_array().unwrap() {
        match (&e["value"], e["name"].as_str().unwrap()) {
            (Value::String(v), name) => {
                cmd.env(name, v);
            }
            (_, "MASTER_KEY") => {
                let r = &e["valueFrom"]["secretKeyRef"];
                assert_eq!(r["optional"], true, "{e}");
                assert_eq!(r["key"], "SECRET_KEY");
                if let Some(m) = master {
                    cmd.env("MASTER_KEY", m);
                }
            }
            (_, name) => panic!("{name}: no other variable is read from elsewhere"),
        }
    }
    cmd.output().unwrap()
}

/// The keys Secret's `data` as `difyrender secrets render` prints it for release `release` in
/// `ns` (the root profile, `extra` values on top) and the master key `master`: what the keys Job
/// must write.
pub fn rendered_keys(ns: &str, release: &str, master: &str, extra: &[&str]) -> Value {
    let mut cmd = difyrender();
    cmd.args(["secrets", "render", "-n", ns, "--release", release])
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"]);
    for e in extra {
        cmd.args(["--set", e]);
    }
    let out = cmd.env("DIFY_SECRET_KEY", master).output().unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    let secret = difyrender::yaml::from_str_multiple(&String::from_utf8_lossy(&out.stdout))
        .unwrap()
        .remove(0);
    secret["data"].clone()
}
