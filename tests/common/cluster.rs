//! The real control plane for tests that need one (scripts/testenv), and kubectl helpers.

use super::{root, transcript};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// NKP's Traefik serves traefik.io/v1alpha1 Middlewares; a minimal stand-in for its CRD.
const MIDDLEWARE_CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: middlewares.traefik.io
spec:
  group: traefik.io
  scope: Namespaced
  names: {kind: Middleware, listKind: MiddlewareList, plural: middlewares, singular: middleware}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";

/// NKP's Traefik IngressClass, which `expose.ingressClassName` names (doctor checks it exists).
const INGRESS_CLASS: &str = "\
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: kommander-traefik
spec:
  controller: traefik.io/ingress-controller
";

/// Starts a control plane in `target/testenv-<name>-<pid>`, which stops itself when this test
/// process exits, with the Middleware CRD and the kommander-traefik IngressClass installed.
/// Returns its kubeconfig.
pub fn start(name: &str) -> PathBuf {
    start_instance(name, false)
}

/// [`start`], plus Flux's source-controller and kustomize-controller, their CRDs and an OCI
/// registry on loopback (`scripts/testenv`, `TESTENV_FLUX=1`); see [`port`] for the registry.
pub fn start_with_flux(name: &str) -> PathBuf {
    start_instance(name, true)
}

fn start_instance(name: &str, flux: bool) -> PathBuf {
    let dir = root()
        .join("target")
        .join(format!("testenv-{name}-{}", std::process::id()));
    let status = Command::new(root().join("scripts/testenv"))
        .arg("start")
        .env("TESTENV_DIR", &dir)
        .env("TESTENV_WATCH_PID", std::process::id().to_string())
        .env("TESTENV_FLUX", if flux { "1" } else { "0" })
        .status()
        .expect("scripts/testenv runs");
    assert!(
        status.success(),
        "scripts/testenv start failed; see {}/logs",
        dir.display()
    );
    let kc = dir.join("kubeconfig");
    ok(&kubectl_stdin(&["apply", "-f", "-"], MIDDLEWARE_CRD, &kc));
    ok(&kubectl_stdin(&["apply", "-f", "-"], INGRESS_CLASS, &kc));
    wait_established("middlewares.traefik.io", &kc);
    kc
}

/// One control plane shared by every test of this test binary.
pub fn shared(name: &str) -> &'static PathBuf {
    static KC: OnceLock<PathBuf> = OnceLock::new();
    KC.get_or_init(|| start(name))
}

/// The instance directory of a kubeconfig from [`start`], for `scripts/testenv` subcommands.
pub fn instance_dir(kubeconfig: &Path) -> &Path {
    kubeconfig
        .parent()
        .expect("the kubeconfig is inside its instance directory")
}

/// The port of a component of the instance, from its `ports` file (`registry=PORT`).
pub fn port(kubeconfig: &Path, component: &str) -> u16 {
    let ports = std::fs::read_to_string(instance_dir(kubeconfig).join("ports"))
        .expect("the instance has a ports file");
    ports
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{component}=")))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port for {component} in {ports}"))
}

pub fn kubectl(args: &[&str], kc: &Path) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args(args)
        .output()
        .expect("kubectl runs")
}

pub fn kubectl_stdin(args: &[&str], input: &str, kc: &Path) -> Output {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Sends `stream` through a server-side dry run with strict field validation, as
/// `field_manager`, and requires every document to be accepted (nothing is stored). Returns
/// kubectl's transcript for further checks.
pub fn strict_dry_run(stream: &str, field_manager: &str, kc: &Path, what: &str) -> String {
    let out = strict_dry_run_output(stream, field_manager, kc);
    let text = super::transcript(&out);
    assert!(out.status.success(), "{what}: {text}");
    let docs = difyrender::yaml::from_str_multiple(stream).unwrap().len();
    assert_eq!(
        text.matches("serverside-applied (server dry run)").count(),
        docs,
        "{what}: {text}"
    );
    text
}

/// The server-side dry run of [`strict_dry_run`], accepted or not: for the tests whose stream
/// the server must refuse.
pub fn strict_dry_run_output(stream: &str, field_manager: &str, kc: &Path) -> Output {
    let manager = format!("--field-manager={field_manager}");
    kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            &manager,
            "-f",
            "-",
        ],
        stream,
        kc,
    )
}

/// `kubectl … -o json --show-managed-fields`, which must succeed.
pub fn kubectl_json(args: &[&str], kc: &Path) -> Value {
    let out = kubectl(
        &[args, &["-o", "json", "--show-managed-fields"]].concat(),
        kc,
    );
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        transcript(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A command's transcript, which must show success.
pub fn ok(out: &Output) -> String {
    let text = transcript(out);
    assert!(out.status.success(), "{text}");
    text
}

/// Every object kind the release writes, in namespace `ns`, as sorted `kind/name=resourceVersion`:
/// equal before and after means nothing was written.
pub fn resource_versions(ns: &str, kc: &Path) -> Vec<String> {
    let items = kubectl_json(
        &[
            "get",
            "deploy,sts,job,svc,secret,cm,pvc,ingress,networkpolicy",
            "-n",
            ns,
        ],
        kc,
    );
    let mut rv: Vec<String> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}={}",
                o["kind"], o["metadata"]["name"], o["metadata"]["resourceVersion"]
            )
        })
        .collect();
    rv.sort();
    rv
}

/// Waits until every Deployment in `ns` has recorded its finished rollout: controllers may still
/// write that after the pods are ready, so only a write by difyrender changes a resourceVersion
/// afterwards.
pub fn wait_rollouts_settled(ns: &str, kc: &Path) {
    ok(&kubectl(
        &[
            "wait",
            "deployment",
            "--all",
            "-n",
            ns,
            "--for=jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}=NewReplicaSetAvailable",
            "--timeout=60s",
        ],
        kc,
    ));
}

/// Polls until a pod in `ns` matching the label `selector` is in `phase`, and returns it. Fails
/// after `timeout` with what it last saw.
pub fn wait_pod(ns: &str, selector: &str, phase: &str, kc: &Path, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let pods = kubectl_json(&["get", "pods", "-n", ns, "-l", selector], kc);
        if let Some(pod) = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["status"]["phase"] == phase)
        {
            return pod.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {phase} pod -l {selector} in {ns}: {pods}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Ends a pod's only container as the program in it would: kwok runs no containers, so the
/// test writes the phase, exit code and termination message into the pod's status.
pub fn end_pod(ns: &str, pod: &Value, exit_code: i32, message: &str, kc: &Path) {
    let now = "2026-01-01T00:00:00Z";
    let patch = serde_json::json!({"status": {
        "phase": if exit_code == 0 { "Succeeded" } else { "Failed" },
        "containerStatuses": [{
            "name": pod["spec"]["containers"][0]["name"],
            "image": pod["spec"]["containers"][0]["image"],
            "imageID": "",
            "ready": false,
            "restartCount": 0,
            "state": {"terminated": {
                "exitCode": exit_code,
                "reason": if exit_code == 0 { "Completed" } else { "Error" },
                "message": message,
                "startedAt": now,
                "finishedAt": now
            }}
        }]
    }});
    ok(&kubectl(
        &[
            "patch",
            "pod",
            pod["metadata"]["name"].as_str().unwrap(),
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ],
        kc,
    ));
}

/// The directory of a Go module pinned in hack/testenv/`pin` (downloaded by scripts/test):
/// where the CRDs of the tests' third-party APIs come from, YAML only.
pub fn pinned_module(pin: &str, module: &str) -> PathBuf {
    let out = Command::new("go")
        .args(["mod", "download", "-json", module])
        .current_dir(root().join("hack/testenv").join(pin))
        .env("GOFLAGS", "-mod=mod")
        .output()
        .expect("go runs");
    assert!(out.status.success(), "{}", transcript(&out));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    PathBuf::from(info["Dir"].as_str().unwrap())
}

/// Applies CRDs from a file or folder into the control plane of `kc` and waits until `crd` is
/// served.
pub fn install_crds(path: &Path, crd: &str, kc: &Path) {
    ok(&kubectl(
        &["apply", "--server-side", "-f", path.to_str().unwrap()],
        kc,
    ));
    wait_established(crd, kc);
}

/// Polls until the CRD `crd` is Established (60 s at most). `kubectl wait` right after the
/// apply can find the CRD without any status yet and fail ("accessor error: <nil>").
pub fn wait_established(crd: &str, kc: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = kubectl(
            &[
                "get",
                "crd",
                crd,
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#,
            ],
            kc,
        );
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "True" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{crd} not Established: {}",
            transcript(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Installs the Gateway API CRDs of the release pinned in hack/testenv/gateway-api into the
/// control plane of `kc`.
pub fn gateway_api_crds(kc: &Path) {
    let module = pinned_module("gateway-api", "sigs.k8s.io/gateway-api");
    install_crds(
        &module.join("config/crd/standard"),
        "httproutes.gateway.networking.k8s.io",
        kc,
    );
}

/// The pod label that holds a pod Running on the test control plane: kwok's `pod-complete`
/// stage (hack/testenv/kwok/stages.yaml) skips it, so a Job's pod runs until the test ends it
/// with [`end_pod`]. kwok completes every other Job pod at once, so without it a test could not
/// tell whether anything waited for the Job.
pub const HOLD: &str = "testenv-hold";

/// `--set` arguments that put [`HOLD`] on the migration pod.
pub const HOLD_MIGRATION: [&str; 2] = ["--set", "migration.pod.labels.testenv-hold=held"];

/// A command running in the background: its progress (stderr) read as it comes, its stdout
/// kept in a file.
pub struct Running {
    child: std::process::Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    seen: String,
    stdout: tempfile::NamedTempFile,
}

impl Running {
    pub fn start(mut cmd: Command) -> Self {
        let stdout = tempfile::NamedTempFile::new().unwrap();
        let mut child = cmd
            .stdout(stdout.reopen().unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the command starts");
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        Self {
            child,
            stderr,
            seen: String::new(),
            stdout,
        }
    }

    /// Reads progress lines until one contains `needle`; fails if a line containing `not_before`
    /// comes first, or the output ends first.
    pub fn read_until(&mut self, needle: &str, not_before: &str) {
        loop {
            let mut line = String::new();
            let n = std::io::BufRead::read_line(&mut self.stderr, &mut line).unwrap();
            self.seen.push_str(&line);
            assert!(n > 0, "the output ended before {needle:?}: {}", self.seen);
            assert!(
                !line.contains(not_before),
                "{not_before:?} came before {needle:?}: {}",
                self.seen
            );
            if line.contains(needle) {
                return;
            }
        }
    }

    /// Whether the command is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the command to end; its whole output.
    pub fn finish(mut self) -> Output {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stderr, &mut rest).unwrap();
        let status = self.child.wait().unwrap();
        Output {
            status,
            stdout: std::fs::read(self.stdout.path()).unwrap(),
            stderr: (self.seen + &rest).into_bytes(),
        }
    }
}

/// Waits until `apply` (started with [`HOLD_MIGRATION`]) is waiting for its migration Job and the
/// held migration pod runs; fails if apply went on to the apps first. Returns the pod, for
/// [`end_pod`].
pub fn hold_migration(ns: &str, apply: &mut Running, kc: &Path) -> Value {
    apply.read_until(&format!("waiting for Job/{ns}/dify-migration-"), " apps: ");
    wait_pod(ns, HOLD, "Running", kc, Duration::from_secs(60))
}

/// Every Deployment of `ns` as `name → (generation, images)`: unchanged means no Deployment was
/// written (a new ReplicaSet needs a new generation) and none was added.
pub fn deployments(ns: &str, kc: &Path) -> std::collections::BTreeMap<String, (i64, Vec<String>)> {
    kubectl_json(&["get", "deployments", "-n", ns], kc)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let images = d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["image"].as_str().unwrap().to_owned())
                .collect();
            (
                d["metadata"]["name"].as_str().unwrap().to_owned(),
                (d["metadata"]["generation"].as_i64().unwrap(), images),
            )
        })
        .collect()
}

/// The image of the first container of every ReplicaSet in `ns`.
pub fn replica_set_images(ns: &str, kc: &Path) -> Vec<String> {
    kubectl_json(&["get", "replicasets", "-n", ns], kc)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rs| {
            rs["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The control plane every test of a test binary shares ([`shared`]), with kubectl bound to
/// it: defines `kubeconfig()`, `kubectl(args)`, `kubectl_stdin(args, input)` and
/// `kubectl_json(args)` in the calling test file (one definition instead of a copy per file).
#[macro_export]
macro_rules! shared_cluster {
    ($name:literal) => {
        #[allow(dead_code)]
        fn kubeconfig() -> &'static std::path::PathBuf {
            $crate::common::cluster::shared($name)
        }
        #[allow(dead_code)]
        fn kubectl(args: &[&str]) -> std::process::Output {
            $crate::common::cluster::kubectl(args, kubeconfig())
        }
        #[allow(dead_code)]
        fn kubectl_stdin(args: &[&str], input: &str) -> std::process::Output {
            $crate::common::cluster::kubectl_stdin(args, input, kubeconfig())
        }
        #[allow(dead_code)]
        fn kubectl_json(args: &[&str]) -> serde_json::Value {
            $crate::common::cluster::kubectl_json(args, kubeconfig())
        }
    };
}

/// `difyrender <verb> --kubeconfig KC -n NS`: how every cluster test starts a command.
pub fn difyrender_on(verb: &str, kc: &Path, ns: &str) -> Command {
    let mut cmd = super::difyrender();
    cmd.arg(verb).arg("--kubeconfig").arg(kc).args(["-n", ns]);
    cmd
}

/// Runs `cmd` and fails if anything it printed holds one of `secrets` (or its base64 form).
pub fn scanned(cmd: &mut Command, secrets: &[String], context: &str) -> Output {
    let out = cmd.output().expect("the command runs");
    super::assert_no_secrets(&transcript(&out), secrets, context);
    out
}
