//! The NKP catalog entry deployed the way Kommander deploys it, by the real Flux controllers.
//!
//! `scripts/testenv` (with `TESTENV_FLUX=1`) runs Flux's source-controller and
//! kustomize-controller next to the control plane, and a CNCF distribution registry on
//! loopback. Each test generates the entry with the real binary, pushes the version folder as a
//! Flux OCI artifact (as `nkp push bundle` does; `oci-push` is fluxcd/pkg/oci, the library behind
//! `flux push artifact`), creates the keys Secret with `difyrender secrets apply`, and then does
//! what Kommander does when an application is enabled: an OCIRepository `<release>-source` for
//! the artifact and a Flux Kustomization over the version folder with `postBuild.substitute`
//! (`releaseName`, `releaseNamespace`, `workspaceNamespace`). Flux then applies the entry's own
//! Kustomization (`<release>-manifests`), which applies `manifests/`.
//!
//! Every wait polls a condition with a deadline, and every failure message carries what Flux
//! reports: the conditions of the namespace's Kustomizations and OCIRepositories, the workloads
//! that are not ready, warning events and kustomize-controller's errors.

mod common;

use common::cluster::{self, ok};
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MASTER: &str = "flux-test-master-key-0123456789";
/// How long Flux may take to turn an entry Ready here (kwok: no image pulls; a busy machine).
const READY_WITHIN: Duration = Duration::from_secs(420);
/// A literal that Flux's substitution must leave alone once the entry escaped it.
const LITERAL: &str = "${HOME}/data $$ $(KEEP) a$b ${releaseName}";

const KUSTOMIZATION: &str = "kustomizations.kustomize.toolkit.fluxcd.io";
const OCI_REPOSITORY: &str = "ocirepositories.source.toolkit.fluxcd.io";

struct Lane {
    kc: PathBuf,
    registry: String,
}

/// One control plane with Flux for every test of this binary.
fn lane() -> &'static Lane {
    static LANE: OnceLock<Lane> = OnceLock::new();
    LANE.get_or_init(|| {
        let kc = cluster::start_with_flux("flux");
        let registry = format!("127.0.0.1:{}", cluster::port(&kc, "registry"));
        Lane { kc, registry }
    })
}

fn kubectl(args: &[&str]) -> Output {
    cluster::kubectl(args, &lane().kc)
}

fn kubectl_stdin(args: &[&str], input: &str) -> Output {
    cluster::kubectl_stdin(args, input, &lane().kc)
}

/// An object as JSON, `None` when it does not exist.
fn get(ns: &str, resource: &str, name: &str) -> Option<Value> {
    let out = kubectl(&[
        "get",
        resource,
        name,
        "-n",
        ns,
        "-o",
        "json",
        "--show-managed-fields",
        "--ignore-not-found",
    ]);
    assert!(out.status.success(), "{}", transcript(&out));
    (!out.stdout.is_empty()).then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn list(ns: &str, resources: &str) -> Vec<Value> {
    let out = kubectl(&["get", resources, "-n", ns, "-o", "json"]);
    assert!(out.status.success(), "{}", transcript(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// What Flux says

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn is_ready(object: &Value) -> bool {
    condition(object, "Ready").is_some_and(|c| c["status"] == "True")
        && object["status"]["observedGeneration"] == object["metadata"]["generation"]
}

/// Everything Flux and the cluster report about namespace `ns`, for failure messages: the
/// conditions of every Kustomization and OCIRepository, workloads that are not ready, warning
/// events, and kustomize-controller's and source-controller's errors about the namespace.
fn report(ns: &str) -> String {
    let mut out = format!("--- Flux in namespace {ns}:\n");
    for (resource, kind) in [
        (KUSTOMIZATION, "Kustomization"),
        (OCI_REPOSITORY, "OCIRepository"),
    ] {
        for item in list(ns, resource) {
            let status = &item["status"];
            out.push_str(&format!(
                "{kind} {}: generation {} observed {}; revision applied {} attempted {}; artifact {}\n",
                item["metadata"]["name"],
                item["metadata"]["generation"],
                status["observedGeneration"],
                status["lastAppliedRevision"],
                status["lastAttemptedRevision"],
                status["artifact"]["revision"],
            ));
            for c in status["conditions"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "  {}={} {} ({}): {}\n",
                    c["type"].as_str().unwrap_or(""),
                    c["status"].as_str().unwrap_or(""),
                    c["reason"].as_str().unwrap_or(""),
                    c["lastTransitionTime"].as_str().unwrap_or(""),
                    c["message"].as_str().unwrap_or("")
                ));
            }
        }
    }
    for item in list(ns, "deployments,statefulsets,jobs,replicasets") {
        let kind = item["kind"].as_str().unwrap_or("");
        let status = &item["status"];
        let ready = match kind {
            "Job" => status["succeeded"].as_i64().unwrap_or(0) > 0,
            "ReplicaSet" => status["replicas"] == status["readyReplicas"],
            _ => {
                status["readyReplicas"] == item["spec"]["replicas"]
                    && status["observedGeneration"] == item["metadata"]["generation"]
            }
        };
        if !ready {
            let conditions: Vec<String> = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| format!("{}={} {}", c["type"], c["status"], c["message"]))
                .collect();
            out.push_str(&format!(
                "not ready: {kind} {}: {}\n",
                item["metadata"]["name"],
                conditions.join("; ")
            ));
        }
    }
    let events = kubectl(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector=type=Warning",
        "-o",
        "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message",
        "--no-headers",
    ]);
    for line in String::from_utf8_lossy(&events.stdout).lines().take(15) {
        out.push_str(&format!("warning event: {line}\n"));
    }
    let logs = cluster::instance_dir(&lane().kc).join("logs");
    for controller in ["kustomize-controller", "source-controller"] {
        let text = read(&logs.join(format!("{controller}.log")));
        let needle = format!("\"namespace\":\"{ns}\"");
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(&needle) && l.contains("\"level\":\"error\""))
            .collect();
        for line in &errors[errors.len().saturating_sub(5)..] {
            out.push_str(&format!("{controller}: {line}\n"));
        }
    }
    out
}

/// Polls `done` until it returns `Some`, at most `within`; fails with Flux's report otherwise.
fn wait_for<T>(ns: &str, what: &str, within: Duration, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {}s waiting for {what}\n{}",
            within.as_secs(),
            report(ns)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Fails with `message` and Flux's report of `ns` unless `cond` holds.
#[track_caller]
fn check(cond: bool, ns: &str, message: impl std::fmt::Display) {
    assert!(cond, "{message}\n{}", report(ns));
}

/// Waits until the Kustomization is Ready at its current generation, having applied a revision
/// of tag `tag`; returns it.
fn wait_ready(ns: &str, name: &str, tag: &str) -> Value {
    let prefix = format!("{tag}@sha256:");
    wait_for(
        ns,
        &format!("Kustomization {ns}/{name} Ready at {tag}"),
        READY_WITHIN,
        || {
            get(ns, KUSTOMIZATION, name).filter(|k| {
                is_ready(k)
                    && k["status"]["lastAppliedRevision"]
                        .as_str()
                        .is_some_and(|r| r.starts_with(&prefix))
            })
        },
    )
}

// ---------------------------------------------------------------------------
// Generating, publishing, enabling

/// An application as Kommander deploys it.
struct Instance {
    release: &'static str,
    /// `releaseNamespace`: where every object goes, and the Flux objects too.
    namespace: &'static str,
    /// `workspaceNamespace`: the same for a workspace deployment, another for a project.
    workspace: &'static str,
}

impl Instance {
    fn workspace(release: &'static str, namespace: &'static str) -> Self {
        Self {
            release,
            namespace,
            workspace: namespace,
        }
    }

    fn inner(&self) -> String {
        format!("{}-manifests", self.release)
    }
}

/// The entry's next reconcile, asked for as `flux reconcile` does instead of waiting 6 hours;
/// returns once it is handled and the entry Ready.
fn reconcile_now(app: &Instance, why: &str) {
    let ns = app.namespace;
    let requested = format!("{why}-{}", std::process::id());
    ok(&kubectl(&[
        "annotate",
        "--overwrite",
        KUSTOMIZATION,
        &app.inner(),
        "-n",
        ns,
        &format!("reconcile.fluxcd.io/requestedAt={requested}"),
    ]));
    wait_for(ns, "the requested reconcile", READY_WITHIN, || {
        get(ns, KUSTOMIZATION, &app.inner())
            .filter(|k| k["status"]["lastHandledReconcileAt"] == requested.as_str() && is_ready(k))
    });
}

fn create_namespace(ns: &str) {
    ok(&kubectl(&["create", "namespace", ns]));
}

/// `difyrender catalog` of the root profile into `dir/repo`; returns the version folder.
fn generate(dir: &Path, version: &str, extra: &[String]) -> PathBuf {
    let out = difyrender()
        .current_dir(dir)
        .args(args(&[
            "catalog",
            "--out",
            "repo",
            "--app-version",
            version,
        ]))
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"])
        .args(extra)
        .output()
        .expect("the binary runs");
    ok(&out);
    dir.join("repo/applications/dify").join(version)
}

/// Pushes the version folder as `nkp push bundle` would: `<registry>/<repo>:<tag>`, the folder
/// as the artifact's root. Returns the digest reference.
fn push(version_dir: &Path, repo: &str, tag: &str) -> String {
    let bin = root().join("target/testenv/bin/oci-push");
    let reference = format!("{}/{repo}:{tag}", lane().registry);
    let out = std::process::Command::new(&bin)
        .args([
            "--insecure",
            "--source",
            "difyrender-tests",
            "--revision",
            tag,
        ])
        .arg(version_dir)
        .arg(&reference)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let text = ok(&out);
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(digest.contains("@sha256:"), "{text}");
    digest
}

/// `difyrender secrets apply` for the instance, as step 6 of docs/catalog.md says.
fn secrets_apply(instance: &Instance) {
    let out = difyrender()
        .args(["secrets", "apply", "--kubeconfig"])
        .arg(&lane().kc)
        .args(["-n", instance.namespace, "--release", instance.release])
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert_no_secrets(&transcript(&out), &secrets_of(MASTER), "secrets apply");
    ok(&out);
}

/// What Kommander creates when the application is enabled: the OCIRepository for the
/// artifact and the Flux Kustomization over the version folder (the artifact's root).
fn enable(instance: &Instance, repo: &str, tag: &str) {
    let Instance {
        release,
        namespace,
        workspace,
    } = instance;
    let registry = &lane().registry;
    let objects = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: {release}-source
  namespace: {namespace}
spec:
  interval: 10m
  url: oci://{registry}/{repo}
  ref:
    tag: {tag}
  insecure: true
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {release}
  namespace: {namespace}
spec:
  interval: 10m
  path: ./
  prune: true
  wait: true
  timeout: 20m
  sourceRef:
    kind: OCIRepository
    name: {release}-source
  postBuild:
    substitute:
      releaseName: {release}
      releaseNamespace: {namespace}
      workspaceNamespace: {workspace}
"
    );
    ok(&kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=kommander",
            "-f",
            "-",
        ],
        &objects,
    ));
}

/// Points the instance's OCIRepository at another tag, as an upgrade in Kommander does.
fn point_to(instance: &Instance, tag: &str) {
    let patch = format!(r#"{{"spec":{{"ref":{{"tag":"{tag}"}}}}}}"#);
    ok(&kubectl(&[
        "patch",
        OCI_REPOSITORY,
        &format!("{}-source", instance.release),
        "-n",
        instance.namespace,
        "--type=merge",
        "-p",
        &patch,
    ]));
}

/// The entry's objects, as Flux applies them for the instance: (resource for kubectl, name,
/// the object after substitution).
fn entry_objects(version_dir: &Path, instance: &Instance) -> Vec<(String, String, Value)> {
    let dir = version_dir.join("manifests");
    let k = difyrender::yaml::from_str_multiple(&read(&dir.join("kustomization.yaml"))).unwrap();
    let vars = [
        ("releaseName", instance.release),
        ("releaseNamespace", instance.namespace),
        ("workspaceNamespace", instance.workspace),
    ];
    k[0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            let text = read(&dir.join(file.as_str().unwrap()));
            let text = difyrender::catalog::substitute_like_flux(&text, &vars).unwrap();
            let object: Value = difyrender::yaml::from_str_multiple(&text)
                .unwrap()
                .remove(0);
            let api_version = object["apiVersion"].as_str().unwrap();
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            let kind = object["kind"].as_str().unwrap().to_lowercase();
            let resource = if group.is_empty() {
                kind
            } else {
                format!("{kind}.{group}")
            };
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            (resource, name, object)
        })
        .collect()
}

/// Where `live` differs from what the entry says (`want`), ignoring what the API server adds:
/// fields the entry does not set (defaults), numbers it stores as strings (quantities), and
/// empty strings it drops.
fn mismatch(want: &Value, live: &Value, at: &str) -> Option<String> {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => w
            .iter()
            .find_map(|(k, v)| mismatch(v, l.get(k).unwrap_or(&Value::Null), &format!("{at}/{k}"))),
        (Value::Array(w), Value::Array(l)) if w.len() == l.len() => w
            .iter()
            .zip(l)
            .enumerate()
            .find_map(|(i, (w, l))| mismatch(w, l, &format!("{at}/{i}"))),
        (Value::Number(n), Value::String(s)) if n.to_string() == *s => None,
        // The API server omits empty strings (`value: ""` of an env var).
        (Value::String(s), Value::Null) if s.is_empty() => None,
        _ if want == live => None,
        _ => Some(format!("{at}: entry {want}, live {live}")),
    }
}

/// The migration Job of an entry, by name.
fn migration_job(objects: &[(String, String, Value)]) -> String {
    objects
        .iter()
        .find(|(r, _, _)| r == "job.batch")
        .map(|(_, n, _)| n.clone())
        .expect("the entry has a migration Job")
}

/// uid by `PersistentVolumeClaim name` of every claim in the namespace.
fn claim_uids(ns: &str) -> BTreeMap<String, String> {
    list(ns, "persistentvolumeclaims")
        .iter()
        .map(|c| {
            (
                c["metadata"]["name"].as_str().unwrap().to_owned(),
                c["metadata"]["uid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Generates, pushes and enables an instance after creating its keys Secret; waits until both
/// Kustomizations are Ready. Returns the version folder.
fn deploy(dir: &Path, instance: &Instance, repo: &str, tag: &str, extra: &[String]) -> PathBuf {
    let version_dir = generate(dir, tag, extra);
    push(&version_dir, repo, tag);
    secrets_apply(instance);
    enable(instance, repo, tag);
    wait_ready(instance.namespace, instance.release, tag);
    wait_ready(instance.namespace, &instance.inner(), tag);
    version_dir
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn enable_applies_every_object_with_kustomize_controller_and_keeps_literal_dollars() {
    let app = Instance::workspace("dify", "ws-enable");
    create_namespace(app.namespace);
    let tmp = tempfile::tempdir().unwrap();
    let extra = args(&[
        "--set-string",
        &format!("dify.extraEnv.TEMPLATE={LITERAL}"),
        "--set-string",
        &format!("ssrfProxy.extraConfig=# {LITERAL}"),
    ]);
    let version_dir = deploy(
        tmp.path(),
        &app,
        "enable/nkp-catalog/dify",
        "1.11.4",
        &extra,
    );
    let ns = app.namespace;
    // The literals, character for character.
    let api = get(ns, "deployment.apps", "dify-api").unwrap();
    let env = api["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let template = env.iter().find(|e| e["name"] == "TEMPLATE");
    check(
        template.is_some_and(|e| e["value"] == LITERAL),
        ns,
        format!("TEMPLATE in the live api Deployment: {template:?}, want {LITERAL:?}"),
    );
    let squid = list(ns, "configmaps")
        .into_iter()
        .flat_map(|c| {
            c["data"]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_values()
        })
        .filter_map(|v| v.as_str().map(str::to_owned))
        .any(|v| v.contains(&format!("# {LITERAL}\n")));
    check(
        squid,
        ns,
        format!("no live ConfigMap holds the line {LITERAL:?}"),
    );

    let objects = entry_objects(&version_dir, &app);
    check(objects.len() > 20, ns, format!("{} objects", objects.len()));

    // Every object, under its substituted name, applied by kustomize-controller, labelled as
    // the inner Kustomization's, and with the contents the entry says after substitution.
    for (resource, name, want) in &objects {
        let live = get(ns, resource, name);
        check(
            live.is_some(),
            ns,
            format!("{resource} {ns}/{name} is missing"),
        );
        let live = live.unwrap();
        let managers = live["metadata"]["managedFields"].as_array().unwrap();
        check(
            managers
                .iter()
                .any(|m| m["manager"] == "kustomize-controller" && m["operation"] == "Apply"),
            ns,
            format!("{resource} {name} is not applied by kustomize-controller: {managers:?}"),
        );
        check(
            live["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "dify-manifests",
            ns,
            format!("{resource} {name}: {}", live["metadata"]["labels"]),
        );
        for pointer in [
            "/data",
            "/spec/template/spec/containers",
            "/spec/template/spec/initContainers",
            "/spec/selector",
            "/spec/rules",
        ] {
            if let Some(want) = want.pointer(pointer) {
                let got = live.pointer(pointer).unwrap_or(&Value::Null);
                if let Some(at) = mismatch(want, got, pointer) {
                    check(
                        false,
                        ns,
                        format!("{resource} {name}: {at}\nlive {got}\nentry {want}"),
                    );
                }
            }
        }
    }

    // The entry's Flux Kustomization as Kommander's substitution made it.
    let inner = get(ns, KUSTOMIZATION, &app.inner()).unwrap();
    check(
        inner["spec"]["timeout"] == "15m0s"
            && inner["spec"]["sourceRef"]["name"] == "dify-source"
            && inner["spec"]["postBuild"]["substitute"]["releaseNamespace"] == ns,
        ns,
        format!("{}", inner["spec"]),
    );
}

/// Flux applies the entry in one pass, so the new pods do not wait for the migration as they do
/// with `apply`; what the entry promises is that it turns Ready only once the migration has
/// completed. The migration pod is held Running (kwok would complete it at once, so no
/// timestamp could tell whether Flux waited): the entry stays not Ready while Flux checks its
/// health, then the pod succeeds and both Kustomizations turn Ready.
#[test]
fn the_entry_turns_ready_only_once_its_migration_completed() {
    let app = Instance::workspace("dify", "ws-hold");
    let ns = app.namespace;
    create_namespace(ns);
    let tmp = tempfile::tempdir().unwrap();
    let version_dir = generate(tmp.path(), "1.11.4", &args(&cluster::HOLD_MIGRATION));
    push(&version_dir, "hold/nkp-catalog/dify", "1.11.4");
    secrets_apply(&app);
    enable(&app, "hold/nkp-catalog/dify", "1.11.4");

    // The migration runs, every other object is applied and Flux is checking their health.
    let job = migration_job(&entry_objects(&version_dir, &app));
    let pod = wait_for(ns, "the held migration pod Running", READY_WITHIN, || {
        list(ns, "pods")
            .into_iter()
            .find(|p| p["metadata"]["labels"][cluster::HOLD].is_string())
            .filter(|p| p["status"]["phase"] == "Running")
    });
    check(
        pod["metadata"]["labels"]["job-name"] == job.as_str(),
        ns,
        format!("the held pod is not the migration's: {}", pod["metadata"]),
    );
    let inner = wait_for(ns, "the entry checking its health", READY_WITHIN, || {
        let inner = get(ns, KUSTOMIZATION, &app.inner())?;
        let healthy = condition(&inner, "Healthy").map(|c| c["status"].clone());
        (is_ready(&inner) || healthy.is_some_and(|s| s != "True")).then_some(inner)
    });
    check(
        !is_ready(&inner),
        ns,
        format!(
            "{} is Ready while its migration runs: {}",
            app.inner(),
            inner["status"]["conditions"]
        ),
    );
    let outer = get(ns, KUSTOMIZATION, app.release).unwrap();
    check(
        !is_ready(&outer),
        ns,
        format!(
            "{} is Ready while its migration runs: {}",
            app.release, outer["status"]["conditions"]
        ),
    );
    // One pass: the apps were applied beside the running migration.
    check(
        get(ns, "deployment.apps", "dify-api").is_some(),
        ns,
        "Flux applied the api only after the migration",
    );

    // The migration succeeds: the entry turns Ready.
    cluster::end_pod(ns, &pod, 0, "", &lane().kc);
    wait_ready(ns, &app.inner(), "1.11.4");
    wait_ready(ns, app.release, "1.11.4");
    let job = get(ns, "job.batch", &job).unwrap();
    check(
        job["status"]["succeeded"] == 1,
        ns,
        format!("the migration Job: {}", job["status"]),
    );
}

#[test]
fn two_instances_in_two_namespaces_do_not_collide() {
    let a = Instance::workspace("alpha", "ws-two");
    let b = Instance {
        release: "beta",
        namespace: "proj-two",
        workspace: "ws-two",
    };
    create_namespace(a.namespace);
    create_namespace(b.namespace);
    let tmp = tempfile::tempdir().unwrap();
    let version_dir = generate(tmp.path(), "1.11.4", &[]);
    push(&version_dir, "two/nkp-catalog/dify", "1.11.4");
    for i in [&a, &b] {
        secrets_apply(i);
        enable(i, "two/nkp-catalog/dify", "1.11.4");
    }
    let mut uids = BTreeMap::new();
    let mut objects = 0;
    for i in [&a, &b] {
        wait_ready(i.namespace, i.release, "1.11.4");
        let inner = wait_ready(i.namespace, &i.inner(), "1.11.4");
        // Flux's inventory of the instance: only its own namespace, only its own names.
        let ids: BTreeSet<String> = inner["status"]["inventory"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        let own = format!("{}_{}", i.namespace, i.release);
        check(
            ids.len() > 20 && ids.iter().all(|id| id.starts_with(&own)),
            i.namespace,
            format!("inventory of {}: {ids:?}", i.inner()),
        );
        for (resource, name, want) in entry_objects(&version_dir, i) {
            let live = get(i.namespace, &resource, &name);
            check(
                live.is_some(),
                i.namespace,
                format!("{resource} {name} is missing"),
            );
            let live = live.unwrap();
            // Workloads' and Services' selectors pick only this instance's pods.
            for pointer in ["/spec/selector/matchLabels", "/spec/selector"] {
                let instance = format!("{pointer}/app.kubernetes.io~1instance");
                if want.pointer(&instance).is_some() {
                    check(
                        live.pointer(&instance) == Some(&Value::String(i.release.to_owned())),
                        i.namespace,
                        format!("{resource} {name} selects {}", live["spec"]["selector"]),
                    );
                }
            }
            for c in live
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for e in c["env"].as_array().into_iter().flatten() {
                    if let Some(name_ref) = e.pointer("/valueFrom/secretKeyRef/name") {
                        check(
                            name_ref == &Value::String(format!("{}-keys", i.release)),
                            i.namespace,
                            format!("{resource} {name} reads {name_ref}"),
                        );
                    }
                }
            }
            uids.insert(
                live["metadata"]["uid"].as_str().unwrap().to_owned(),
                format!("{}/{resource}/{name}", i.namespace),
            );
            objects += 1;
        }
    }
    // Every object of both instances is its own live object.
    check(
        uids.len() == objects,
        b.namespace,
        format!(
            "{objects} objects, {} distinct: {uids:?}\n{}",
            uids.len(),
            report(a.namespace)
        ),
    );
}

#[test]
fn upgrade_runs_the_new_migration_prunes_the_old_and_keeps_the_volumes() {
    let app = Instance::workspace("dify", "ws-upgrade");
    let ns = app.namespace;
    create_namespace(ns);
    let tmp = tempfile::tempdir().unwrap();
    let repo = "upgrade/nkp-catalog/dify";
    let v1 = deploy(tmp.path(), &app, repo, "1.11.4", &[]);
    let old_job = migration_job(&entry_objects(&v1, &app));
    let claims = claim_uids(ns);
    check(
        claims.len() >= 4,
        ns,
        format!("claims before the upgrade: {claims:?}"),
    );

    // A regenerated entry: a new --app-version, and a setting that reaches the migration.
    let v2 = generate(
        tmp.path(),
        "1.11.4-2",
        &args(&["--set-string", "dify.extraEnv.UPGRADED=yes"]),
    );
    let new_job = migration_job(&entry_objects(&v2, &app));
    assert_ne!(
        old_job, new_job,
        "the regenerated entry must change the Job"
    );
    push(&v2, repo, "1.11.4-2");
    point_to(&app, "1.11.4-2");
    let inner = wait_ready(ns, &app.inner(), "1.11.4-2");
    wait_ready(ns, app.release, "1.11.4-2");

    let job = get(ns, "job.batch", &new_job);
    check(
        job.as_ref()
            .is_some_and(|j| j["status"]["succeeded"].as_i64() == Some(1)),
        ns,
        format!("the new migration Job {new_job}: {job:?}"),
    );
    check(
        get(ns, "job.batch", &old_job).is_none(),
        ns,
        format!("the old migration Job {old_job} was not pruned"),
    );
    let inventory = inner["status"]["inventory"].to_string();
    check(
        inventory.contains(&new_job) && !inventory.contains(&old_job),
        ns,
        format!("inventory: {inventory}"),
    );
    let after = claim_uids(ns);
    check(
        after == claims,
        ns,
        format!("claims changed: before {claims:?}, after {after:?}"),
    );
}

#[test]
fn removing_the_application_keeps_the_data() {
    let app = Instance::workspace("dify", "ws-remove");
    let ns = app.namespace;
    create_namespace(ns);
    let tmp = tempfile::tempdir().unwrap();
    let version_dir = deploy(tmp.path(), &app, "remove/nkp-catalog/dify", "1.11.4", &[]);
    let objects = entry_objects(&version_dir, &app);
    let claims = claim_uids(ns);
    let entry_claims: Vec<&String> = objects
        .iter()
        .filter(|(r, _, _)| r == "persistentvolumeclaim")
        .map(|(_, n, _)| n)
        .collect();
    check(
        entry_claims.len() == 2 && claims.len() > 2,
        ns,
        format!("entry claims {entry_claims:?}, all claims {claims:?}"),
    );

    // Disabling the application deletes Kommander's Kustomization; Flux prunes the rest.
    ok(&kubectl(&[
        "delete",
        KUSTOMIZATION,
        app.release,
        "-n",
        ns,
        "--wait=false",
    ]));
    wait_for(
        ns,
        "the entry's Kustomization to be pruned",
        READY_WITHIN,
        || get(ns, KUSTOMIZATION, &app.inner()).is_none().then_some(()),
    );
    wait_for(ns, "the workloads to be deleted", READY_WITHIN, || {
        let left: Vec<String> = objects
            .iter()
            .filter(|(r, _, _)| r != "persistentvolumeclaim")
            .filter(|(r, n, _)| get(ns, r, n).is_some())
            .map(|(r, n, _)| format!("{r}/{n}"))
            .collect();
        left.is_empty().then_some(())
    });
    ok(&kubectl(&[
        "delete",
        OCI_REPOSITORY,
        &format!("{}-source", app.release),
        "-n",
        ns,
    ]));
    let after = claim_uids(ns);
    check(
        after == claims,
        ns,
        format!("claims before removal {claims:?}, after {after:?}"),
    );
    check(
        get(ns, "secret", "dify-keys").is_some(),
        ns,
        "the keys Secret was deleted",
    );
}

#[test]
fn a_hand_edit_and_a_deletion_are_put_back_by_the_next_reconcile() {
    let app = Instance::workspace("dify", "ws-drift");
    let ns = app.namespace;
    create_namespace(ns);
    let tmp = tempfile::tempdir().unwrap();
    let version_dir = deploy(tmp.path(), &app, "drift/nkp-catalog/dify", "1.11.4", &[]);
    let (_, name, want) = entry_objects(&version_dir, &app)
        .into_iter()
        .find(|(r, _, o)| r == "configmap" && o["data"].is_object())
        .expect("the entry has a ConfigMap with data");
    let key = want["data"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let patch = serde_json::json!({"data": {&key: "edited by hand"}}).to_string();
    ok(&kubectl(&[
        "patch",
        "configmap",
        &name,
        "-n",
        ns,
        "--type=merge",
        "--field-manager=operator",
        "-p",
        &patch,
    ]));
    check(
        get(ns, "configmap", &name).unwrap()["data"][&key] == "edited by hand",
        ns,
        "the hand edit did not land",
    );
    // And an object deleted by hand.
    let service = entry_objects(&version_dir, &app)
        .into_iter()
        .find(|(r, _, _)| r == "service")
        .map(|(_, n, _)| n)
        .expect("the entry has a Service");
    let uid = get(ns, "service", &service).unwrap()["metadata"]["uid"].clone();
    ok(&kubectl(&["delete", "service", &service, "-n", ns]));

    reconcile_now(&app, "drift");
    let live = get(ns, "configmap", &name).unwrap();
    check(
        live["data"][&key] == want["data"][&key],
        ns,
        format!(
            "ConfigMap {name} {key} after the reconcile: {}",
            live["data"][&key]
        ),
    );
    let recreated = get(ns, "service", &service);
    check(
        recreated
            .as_ref()
            .is_some_and(|s| s["metadata"]["uid"] != uid),
        ns,
        format!("Service {service} after the reconcile: {recreated:?}"),
    );
}

/// Stands in for the kubelet's check that kwok does not make: a pod that reads a Secret that
/// does not exist does not start. Here the API server refuses, while the Secret is missing, the
/// pods in the namespace that read it: every pod, or with `reader` only the pods of that
/// component (`app.kubernetes.io/component`), the one that reads it (a ValidatingAdmissionPolicy
/// whose parameter is the Secret, `parameterNotFoundAction: Deny`). The ReplicaSets and the Jobs
/// report it, and retry.
fn kubelet_stand_in(ns: &str, secret: &str, reader: Option<&str>) -> String {
    let policy = format!("testenv-kubelet-needs-secret-{secret}");
    let object_selector = reader
        .map(|c| format!("    objectSelector:\n      matchLabels:\n        app.kubernetes.io/component: {c}\n"))
        .unwrap_or_default();
    ok(&kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &format!(
            "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {policy}
spec:
  failurePolicy: Fail
  paramKind:
    apiVersion: v1
    kind: Secret
  matchConstraints:
    resourceRules:
    - apiGroups: ['']
      apiVersions: [v1]
      operations: [CREATE]
      resources: [pods]
  validations:
  - expression: 'true'
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {policy}-{ns}
spec:
  policyName: {policy}
  validationActions: [Deny]
  paramRef:
    name: {secret}
    parameterNotFoundAction: Deny
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {ns}
{object_selector}"
        ),
    ));
    policy
}

/// Negative controls of [`kubelet_stand_in`] once the API server has loaded its policy: a pod
/// of `reader` (any pod without one) is refused; with `reader`, a pod of another component is
/// not. Returns the probe (a server-side dry run of a pod of `reader`, or of another component)
/// for later checks.
fn stand_in_refuses(ns: &str, reader: Option<&str>, policy: &str) -> impl Fn(bool) -> Output {
    let (pod_ns, component) = (ns.to_owned(), reader.unwrap_or("probe").to_owned());
    let probe = move |reads: bool| {
        let label = if reads { component.as_str() } else { "other" };
        kubectl_stdin(
            &["create", "--dry-run=server", "-f", "-"],
            &format!(
                r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"probe","namespace":"{pod_ns}","labels":{{"app.kubernetes.io/component":"{label}"}}}},"spec":{{"containers":[{{"name":"c","image":"busybox"}}]}}}}"#
            ),
        )
    };
    wait_for(ns, "the stand-in to refuse pods", READY_WITHIN, || {
        let out = probe(true);
        (!out.status.success() && transcript(&out).contains(policy)).then_some(())
    });
    if reader.is_some() {
        let other = probe(false);
        check(
            other.status.success(),
            ns,
            format!("a pod of another component: {}", transcript(&other)),
        );
    }
    probe
}

#[test]
fn without_the_keys_secret_the_entry_waits_and_converges_once_it_exists() {
    let app = Instance::workspace("dify", "ws-nosecret");
    let ns = app.namespace;
    create_namespace(ns);
    let policy = kubelet_stand_in(ns, "dify-keys", None);
    let probe = stand_in_refuses(ns, None, &policy);

    let tmp = tempfile::tempdir().unwrap();
    let version_dir = generate(tmp.path(), "1.11.4", &[]);
    push(&version_dir, "nosecret/nkp-catalog/dify", "1.11.4");
    enable(&app, "nosecret/nkp-catalog/dify", "1.11.4");
    // Flux applied the entry and waits; the workloads say why.
    let why = wait_for(
        ns,
        "a workload to report the missing Secret",
        READY_WITHIN,
        || {
            list(ns, "replicasets,jobs")
                .iter()
                .flat_map(|w| {
                    w["status"]["conditions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|c| c["message"].as_str().map(str::to_owned))
                .find(|m| m.contains(&policy))
        },
    );
    let inner = wait_for(
        ns,
        "the entry's Kustomization to be waiting",
        READY_WITHIN,
        || {
            get(ns, KUSTOMIZATION, &app.inner()).filter(|k| {
                condition(k, "Ready").is_some_and(|c| c["status"] != "True")
                    && k["status"]["lastAttemptedRevision"].is_string()
            })
        },
    );
    check(
        !is_ready(&inner),
        ns,
        format!("the entry turned Ready without its keys Secret ({why})"),
    );
    let generation = inner["metadata"]["generation"].clone();

    // The Secret appears; nothing about the entry changes, and it converges.
    secrets_apply(&app);
    let inner = wait_ready(ns, &app.inner(), "1.11.4");
    check(
        inner["metadata"]["generation"] == generation,
        ns,
        "the entry's Kustomization was changed",
    );
    wait_ready(ns, app.release, "1.11.4");
    // And the stand-in lets pods through now.
    let out = probe(true);
    check(out.status.success(), ns, transcript(&out));
    ok(&kubectl(&["delete", "validatingadmissionpolicy", &policy]));
}

/// `difyrender catalog --flux-only`, run in `dir`.
fn flux_only(dir: &Path, out: &str, extra: &[&str]) -> Output {
    difyrender()
        .current_dir(dir)
        .args(["catalog", "--flux-only", out])
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"])
        .args(extra)
        .output()
        .expect("the binary runs")
}

#[test]
fn flux_only_deploys_with_a_plain_flux_source_and_kustomization() {
    let app = Instance::workspace("difyf", "team-flux");
    let ns = app.namespace;
    create_namespace(ns);
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/fluxonly/dify", lane().registry);
    ok(&flux_only(
        tmp.path(),
        "oci",
        &[
            "--flux-url",
            &url,
            "--flux-ref",
            "1.11.4",
            "--flux-instance",
            &format!("{ns}/{}", app.release),
        ],
    ));
    let out = tmp.path().join("oci");
    push(&out.join("manifests"), "fluxonly/dify", "1.11.4");
    secrets_apply(&app);
    // The file as written, except that the loopback registry is plain HTTP.
    let mut docs = difyrender::yaml::from_str_multiple(&read(&out.join("flux-sync.yaml"))).unwrap();
    check(docs.len() == 2, ns, format!("{docs:?}"));
    docs[0]["spec"]["insecure"] = Value::Bool(true);
    let text: String = docs
        .iter()
        .map(|d| format!("{}---\n", difyrender::yaml::to_string(d)))
        .collect();
    ok(&kubectl_stdin(
        &["apply", "--server-side", "--validate=strict", "-f", "-"],
        &text,
    ));
    let k = wait_ready(ns, &app.inner(), "1.11.4");
    for (resource, name, _) in entry_objects(&out, &app) {
        check(
            get(ns, &resource, &name).is_some(),
            ns,
            format!("{resource} {name} is missing"),
        );
    }
    check(
        k["spec"]["postBuild"]["substitute"]["releaseName"] == app.release,
        ns,
        format!("{}", k["spec"]),
    );

    // The Git flavour: the API server accepts its objects with strict validation.
    ok(&flux_only(
        tmp.path(),
        "git",
        &[
            "--flux-url",
            "https://git.example/platform/apps",
            "--flux-ref",
            "prod",
            "--flux-path",
            "./dify/manifests",
            "--flux-instance",
            &format!("{ns}/difyg"),
        ],
    ));
    let sync = read(&tmp.path().join("git/flux-sync.yaml"));
    let out = cluster::strict_dry_run_output(&sync, "kubectl", &lane().kc);
    let text = transcript(&out);
    check(
        out.status.success()
            && text
                .contains("gitrepository.source.toolkit.fluxcd.io/difyg-source serverside-applied")
            && text.contains(
                "kustomization.kustomize.toolkit.fluxcd.io/difyg-manifests serverside-applied",
            ),
        ns,
        text,
    );
}

#[test]
fn flux_only_refuses_bad_sources_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for (extra, needle) in [
        (
            vec!["--flux-url", "ftp://host/x"],
            "--flux-url \"ftp://host/x\"",
        ),
        (
            vec!["--flux-url", "oci://reg/dify:1.0.0"],
            "without a tag or digest",
        ),
        (
            vec!["--flux-url", "oci://reg/dify", "--flux-ref", "1.0.0+b"],
            "--flux-ref \"1.0.0+b\"",
        ),
        (
            vec!["--flux-url", "https://git/x", "--flux-path", "../up"],
            "--flux-path \"../up\"",
        ),
        (
            vec![
                "--flux-url",
                "oci://reg/dify",
                "--flux-instance",
                "ns/Bad_Name",
            ],
            "release name \"Bad_Name\"",
        ),
        (
            vec!["--flux-url", "oci://reg/dify", "--flux-instance", "dify"],
            "--flux-instance \"dify\" must be NAMESPACE/NAME",
        ),
    ] {
        let out = flux_only(tmp.path(), "out", &extra);
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {text}");
        assert!(text.contains(needle), "{extra:?}: {text}");
        assert!(!tmp.path().join("out").exists(), "{extra:?} wrote files");
    }
    // --flux-only needs --flux-url, and excludes --out.
    for extra in [vec![], vec!["--flux-url", "oci://reg/x", "--out", "repo"]] {
        let out = flux_only(tmp.path(), "out", &extra);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    }
}

/// Publishes and enables an entry with `bootstrap.enabled` (`extra` on top), with the form's
/// model key answered and the keys Secret `secrets apply` makes with the same values; returns
/// the entry's version folder (generated under `dir`).
fn enable_bootstrap_entry(dir: &Path, app: &Instance, tag: &str, extra: &[&str]) -> PathBuf {
    create_namespace(app.namespace);
    let (version_dir, repo) = publish_bootstrap_entry(dir, app, tag, extra);
    // The provider key Secret as the form's `modelApiKey` field makes it (a FederatedSecret,
    // propagated into the namespace), not by hand.
    answer(
        &version_dir,
        app,
        &[("modelApiKey", "sk-flux-bootstrap-test-key")],
    );
    enable(app, &repo, tag);
    version_dir
}

/// Generates and pushes an entry with `bootstrap.enabled` (`extra` on top; the model key from
/// the form, required), and makes its keys Secret with `secrets apply`; the namespace exists.
/// Returns the version folder and the repository.
fn publish_bootstrap_entry(
    dir: &Path,
    app: &Instance,
    tag: &str,
    extra: &[&str],
) -> (PathBuf, String) {
    let ns = app.namespace;
    let mut values = args(&[
        "--set",
        "bootstrap.enabled=true",
        "--set",
        "bootstrap.admin.email=admin@example.com",
        "--set",
        "bootstrap.provider.endpointUrl=https://nai.example.com/api/v1",
        "--set",
        "bootstrap.provider.models[0]=llama-3-1-8b",
        "--set",
        "bootstrap.provider.apiKeySecret.name=nai",
        "--set",
        "bootstrap.provider.apiKeySecret.key=api-key",
        "--set",
        "bootstrap.plugins[0].name=langgenius/openai_api_compatible",
        "--set",
        "bootstrap.plugins[0].source=oci",
        "--set",
        "bootstrap.plugins[0].ref=registry.example.com/dify/openai_api_compatible:0.0.63",
    ]);
    for e in extra {
        values.extend(["--set".to_owned(), e.to_string()]);
    }
    let repo = format!("{ns}/nkp-catalog/dify");
    let version_dir = generate(dir, tag, &values);
    push(&version_dir, &repo, tag);
    let out = difyrender()
        .args(["secrets", "apply", "--kubeconfig"])
        .arg(&lane().kc)
        .args(["-n", ns, "--release", app.release])
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"])
        .args(&values)
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert_no_secrets(&transcript(&out), &secrets_of(MASTER), "secrets apply");
    ok(&out);
    (version_dir, repo)
}

/// A required answer left out: the form's `modelApiKey` (required: `apiKeySecret.optional` is
/// false), as when the entry is enabled from the CLI without answering it (the form itself
/// refuses to submit without it: tests/catalog.rs). The deploy stops with a reason: the
/// bootstrap Job's pod, which reads the key's Secret, cannot start (the kubelet's check, stood in
/// for by the API server: [`kubelet_stand_in`]), the Job says so, the entry is not Ready while
/// every other workload runs; once the form is answered, it converges.
#[test]
fn a_missing_required_answer_stops_the_deploy_with_a_reason() {
    let app = Instance::workspace("dify", "ws-nokey");
    let ns = app.namespace;
    let tag = "1.16.1";
    create_namespace(ns);
    // The bootstrap Job's pod is the one that reads the model key's Secret.
    let policy = kubelet_stand_in(ns, "nai", Some("bootstrap"));
    let _ = stand_in_refuses(ns, Some("bootstrap"), &policy);
    let tmp = tempfile::tempdir().unwrap();
    let (version_dir, repo) = publish_bootstrap_entry(tmp.path(), &app, tag, &[]);
    enable(&app, &repo, tag);
    let job_name = bootstrap_job(&version_dir, &app);
    // The stand-in picks the bootstrap pods by label: they are the pods that read the Secret,
    // and not optionally (what makes the kubelet hold them).
    let (_, _, job) = entry_objects(&version_dir, &app)
        .into_iter()
        .find(|(_, n, _)| *n == job_name)
        .unwrap();
    let reads: Vec<&Value> = job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["valueFrom"]["secretKeyRef"]["name"] == "nai")
        .collect();
    check(
        reads.len() == 1 && reads[0]["valueFrom"]["secretKeyRef"]["optional"] != true,
        ns,
        format!("the bootstrap Job reads nai: {reads:?}"),
    );
    // The Job controller's event on the Job, as `kubectl describe job` shows it.
    let why = wait_for(
        ns,
        "the bootstrap Job to report the missing Secret",
        READY_WITHIN,
        || {
            list(ns, "events")
                .into_iter()
                .filter(|e| e["involvedObject"]["name"] == job_name.as_str())
                .filter(|e| e["reason"] == "FailedCreate")
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .find(|m| m.contains(&policy))
        },
    );
    let api = wait_for(ns, "the api Deployment available", READY_WITHIN, || {
        get(ns, "deployment.apps", "dify-api")
            .filter(|d| d["status"]["availableReplicas"].as_i64().unwrap_or(0) > 0)
    });
    let inner = get(ns, KUSTOMIZATION, &app.inner()).unwrap();
    check(
        !is_ready(&inner) && api["status"]["availableReplicas"].as_i64() > Some(0),
        ns,
        format!("the entry is Ready without the model key, or more than its Job waits ({why})"),
    );

    answer(
        &version_dir,
        &app,
        &[("modelApiKey", "sk-flux-late-answer-0123")],
    );
    wait_ready(ns, &app.inner(), tag);
    wait_ready(ns, app.release, tag);
    ok(&kubectl(&["delete", "validatingadmissionpolicy", &policy]));
}

/// The name of the entry's bootstrap Job.
fn bootstrap_job(version_dir: &Path, app: &Instance) -> String {
    entry_objects(version_dir, app)
        .into_iter()
        .find(|(r, n, _)| r == "job.batch" && n.starts_with("dify-bootstrap-"))
        .map(|(_, n, _)| n)
        .expect("the entry has the bootstrap Job")
}

/// `bootstrap.enabled` under Flux (docs/bootstrap.md): the Job is one more object of the entry,
/// applied by kustomize-controller with the rest, and the entry turns Ready only once it
/// completed; it reads the administrator's password from the keys Secret `secrets apply` made
/// with the same values, and the provider's key from the Secret the catalog's notes name.
#[test]
fn bootstrap_job_runs_under_flux_and_the_entry_waits_for_it() {
    let app = Instance::workspace("dify", "ws-bootstrap");
    let ns = app.namespace;
    let tag = "1.16.1";
    let tmp = tempfile::tempdir().unwrap();
    let version_dir = enable_bootstrap_entry(tmp.path(), &app, tag, &[]);
    wait_ready(ns, app.release, tag);
    wait_ready(ns, &app.inner(), tag);

    let job_name = bootstrap_job(&version_dir, &app);
    let job = get(ns, "job.batch", &job_name).unwrap();
    let completed = job["status"]["completionTime"].as_str().unwrap_or("");
    let inner = get(ns, KUSTOMIZATION, &app.inner()).unwrap();
    let ready_at = condition(&inner, "Ready").unwrap()["lastTransitionTime"]
        .as_str()
        .unwrap()
        .to_owned();
    check(
        !completed.is_empty() && completed <= ready_at.as_str(),
        ns,
        format!("the bootstrap Job completed at {completed:?}, the entry was Ready at {ready_at}"),
    );
    // kwok starts no container, so it cannot notice a missing key: check that every key the
    // Job reads is in the Secret it names.
    let env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone();
    for e in env
        .iter()
        .filter(|e| e["valueFrom"]["secretKeyRef"].is_object())
    {
        let r = &e["valueFrom"]["secretKeyRef"];
        let secret = get(ns, "secret", r["name"].as_str().unwrap()).unwrap();
        check(
            secret["data"][r["key"].as_str().unwrap()].is_string(),
            ns,
            format!("{} reads {r}, which the Secret does not hold", e["name"]),
        );
    }
}

/// A bootstrap Job that fails under Flux, where no difyrender runs to print the reason: the
/// entry never turns Ready, and its Kustomization names the failed Job — what an operator sees in
/// the catalog (`kubectl get kustomizations`), pointing at the Job whose pod's termination
/// message holds the script's reason (docs/bootstrap.md). kwok holds the Job's pod (the
/// `testenv-hold` label) and the test ends it as the script ends on a refused key.
#[test]
fn a_failed_bootstrap_job_keeps_the_entry_not_ready_and_flux_names_it() {
    let app = Instance::workspace("dify", "ws-bootstrap-fail");
    let ns = app.namespace;
    let tag = "1.16.1";
    let tmp = tempfile::tempdir().unwrap();
    let version_dir = enable_bootstrap_entry(
        tmp.path(),
        &app,
        tag,
        &["bootstrap.pod.labels.testenv-hold=held"],
    );
    let job_name = bootstrap_job(&version_dir, &app);
    let pod = wait_for(ns, "the held bootstrap pod Running", READY_WITHIN, || {
        list(ns, "pods")
            .into_iter()
            .find(|p| p["metadata"]["labels"]["job-name"] == job_name.as_str())
            .filter(|p| p["status"]["phase"] == "Running")
    });
    // While the Job runs, the entry is not Ready (the negative control of what follows).
    let inner = get(ns, KUSTOMIZATION, &app.inner()).unwrap();
    check(
        !is_ready(&inner),
        ns,
        "the entry is Ready while its bootstrap Job runs",
    );

    let reason = "the provider refused the credential of model llama-3-1-8b: Credentials validation failed with status code 401 (exit code 16)";
    cluster::end_pod(ns, &pod, 16, reason, &lane().kc);
    let named = format!("Job/{ns}/{job_name}");
    let inner = wait_for(
        ns,
        "the entry reporting the failed Job",
        READY_WITHIN,
        || {
            get(ns, KUSTOMIZATION, &app.inner()).filter(|k| {
                condition(k, "Ready").is_some_and(|c| {
                    c["status"] == "False"
                        && c["message"]
                            .as_str()
                            .is_some_and(|m| m.contains(&named) && m.contains("Failed"))
                })
            })
        },
    );
    check(
        !is_ready(&inner),
        ns,
        format!("{} is Ready with a failed bootstrap Job", app.inner()),
    );
    let outer = get(ns, KUSTOMIZATION, app.release).unwrap();
    check(
        !is_ready(&outer),
        ns,
        format!("{} is Ready with a failed bootstrap Job", app.release),
    );
    // Reported, not retried (backoffLimit 0): one failed pod, and no other started.
    let job = get(ns, "job.batch", &job_name).unwrap();
    check(
        job["status"]["failed"] == 1 && job["status"]["active"].is_null(),
        ns,
        format!("the bootstrap Job: {}", job["status"]),
    );
}

/// `catalog --keys in-cluster`: enabled with the form's master key and nothing else, no
/// `secrets apply`. Flux applies the empty keys Secret (`ssa: IfNotPresent`), the keys Job and
/// its account; the Job, run as its pod would with the master key the form's Secret gives it
/// (the stand-in of `common::keys_job`: kwok runs no container), fills the Secret in with
/// exactly what `secrets render` prints for that key; Flux owns none of the keys, and the next
/// reconcile leaves them as they are.
#[test]
fn keys_in_the_cluster_need_no_step_before_enabling() {
    let app = Instance::workspace("dify", "ws-keys");
    let ns = app.namespace;
    let tag = "1.16.1";
    let tmp = tempfile::tempdir().unwrap();
    create_namespace(ns);
    let version_dir = generate(tmp.path(), tag, &args(&["--keys", "in-cluster"]));
    answer(&version_dir, &app, &[("masterKey", MASTER)]);
    let repo = format!("{ns}/nkp-catalog/dify");
    push(&version_dir, &repo, tag);
    enable(&app, &repo, tag);

    let job = wait_for(ns, "the keys Job applied by Flux", READY_WITHIN, || {
        list(ns, "jobs")
            .into_iter()
            .find(|j| j["metadata"]["labels"]["app.kubernetes.io/component"] == "keys")
    });
    // The master key as the kubelet resolves the Job's reference: from the form's Secret.
    let form_secret = get(ns, "secret", "dify-master-key").expect("the form's Secret");
    let master = {
        use base64::Engine;
        let b64 = form_secret["data"]["SECRET_KEY"].as_str().unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    let run = common::keys_job::run(&lane().kc, ns, &job, Some(&master));
    assert_no_secrets(&transcript(&run), &secrets_of(MASTER), "the keys Job");
    ok(&run);
    wait_ready(ns, app.release, tag);
    wait_ready(ns, &app.inner(), tag);

    let want = common::keys_job::rendered_keys(ns, app.release, MASTER, &[]);
    let live = get(ns, "secret", "dify-keys").expect("the keys Secret");
    check(
        live["data"] == want,
        ns,
        "the keys Job wrote other keys than secrets render prints",
    );
    let flux_fields = live["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["manager"] == "kustomize-controller")
        .map(|f| f["fieldsV1"].to_string())
        .collect::<Vec<_>>();
    check(
        !flux_fields.is_empty() && flux_fields.iter().all(|f| !f.contains("f:data")),
        ns,
        format!("kustomize-controller's fields of the keys Secret: {flux_fields:?}"),
    );

    reconcile_now(&app, "keys");
    let after = get(ns, "secret", "dify-keys").unwrap();
    check(
        after["data"] == want,
        ns,
        "the keys changed with a reconcile",
    );
}

// ---------------------------------------------------------------------------
// The form's answers (NKP 2.17+ declarative user inputs)

/// Creates, in the instance's namespace, exactly the objects Kommander makes of the entry's
/// form with these answers (`user-inputs.yaml`'s `resources[]` templates, the unanswered fields
/// at their defaults), a FederatedSecret as the Secret NKP's federation makes of it.
fn answer(version_dir: &Path, instance: &Instance, answers: &[(&str, &str)]) {
    let form: Value =
        difyrender::yaml::from_str(&read(&version_dir.join("user-inputs.yaml"))).unwrap();
    for object in difyrender::catalog::inputs::answer_form(&form, answers).unwrap() {
        let mut object = difyrender::catalog::inputs::as_propagated(object);
        object["metadata"]["namespace"] = instance.namespace.into();
        ok(&kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager=kommander",
                "-f",
                "-",
            ],
            &serde_json::to_string(&object).unwrap(),
        ));
    }
}

/// The value of env `name` of the live api Deployment.
fn api_env(instance: &Instance, name: &str) -> Option<String> {
    let api = get(
        instance.namespace,
        "deployment.apps",
        &format!("{}-api", instance.release),
    )?;
    api["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

/// `spec.resources.requests.storage` of the live claim.
fn claim_size(ns: &str, claim: &str) -> Option<String> {
    get(ns, "persistentvolumeclaims", claim)?["spec"]["resources"]["requests"]["storage"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn one_entry_serves_two_instances_with_the_forms_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let version_dir = generate(tmp.path(), "1.11.4", &[]);
    push(&version_dir, "form/nkp-catalog/dify", "1.11.4");
    let a = Instance::workspace("dify", "ws-form-a");
    let b = Instance::workspace("dify-b", "ws-form-b");
    let answers_a = [
        ("externalHost", "dify-a.example.test"),
        ("fileStorageSize", "12Gi"),
    ];
    let answers_b = [
        ("externalHost", "198.51.100.7"),
        ("fileStorageSize", "3Gi"),
        ("pluginDaemonStorageSize", "4Gi"),
    ];
    for (instance, answers) in [(&a, &answers_a[..]), (&b, &answers_b[..])] {
        create_namespace(instance.namespace);
        answer(&version_dir, instance, answers);
        // The keys Secret: still the one step (docs/catalog.md, "Why the keys are not a form
        // field").
        secrets_apply(instance);
        enable(instance, "form/nkp-catalog/dify", "1.11.4");
    }
    for instance in [&a, &b] {
        wait_ready(instance.namespace, instance.release, "1.11.4");
        wait_ready(instance.namespace, &instance.inner(), "1.11.4");
    }
    // Each instance runs with its own answers, and the unanswered fields at their defaults.
    for (instance, host, file, plugins) in [
        (&a, "dify-a.example.test", "12Gi", "10Gi"),
        (&b, "198.51.100.7", "3Gi", "4Gi"),
    ] {
        let ns = instance.namespace;
        let url = api_env(instance, "CONSOLE_API_URL");
        check(
            url.as_deref() == Some(&format!("http://{host}") as &str),
            ns,
            format!("CONSOLE_API_URL of {ns}: {url:?}, want http://{host}"),
        );
        let storage = claim_size(ns, &format!("{}-storage", instance.release));
        check(
            storage.as_deref() == Some(file),
            ns,
            format!("file storage claim of {ns}: {storage:?}, want {file}"),
        );
        let plugin = claim_size(ns, &format!("{}-plugin-daemon", instance.release));
        check(
            plugin.as_deref() == Some(plugins),
            ns,
            format!("plugin daemon claim of {ns}: {plugin:?}, want {plugins}"),
        );
        let class = get(
            ns,
            "persistentvolumeclaims",
            &format!("{}-storage", instance.release),
        )
        .map(|c| c["spec"]["storageClassName"].clone());
        check(
            class == Some(Value::from("standard")),
            ns,
            format!("storage class of {ns}: {class:?}, want the generation value standard"),
        );
    }
}

#[test]
fn a_wrong_answer_stops_the_deploy_with_the_api_servers_reason() {
    let app = Instance::workspace("dify", "ws-form-bad");
    let ns = app.namespace;
    create_namespace(ns);
    let tmp = tempfile::tempdir().unwrap();
    let version_dir = generate(tmp.path(), "1.11.4", &[]);
    push(&version_dir, "formbad/nkp-catalog/dify", "1.11.4");
    // A ConfigMap made by hand (`nkp create appdeployment --config-overrides`) skips the form's
    // validation: the size is no quantity.
    answer(&version_dir, &app, &[("fileStorageSize", "ten-gigabytes")]);
    secrets_apply(&app);
    enable(&app, "formbad/nkp-catalog/dify", "1.11.4");
    let inner = wait_for(
        ns,
        "the entry's Kustomization to fail",
        READY_WITHIN,
        || {
            get(ns, KUSTOMIZATION, &app.inner()).filter(|k| {
                condition(k, "Ready").is_some_and(|c| {
                    c["status"] == "False"
                        && c["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("dify-storage"))
                })
            })
        },
    );
    let message = condition(&inner, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    check(
        message.contains("quantities must match"),
        ns,
        format!("the reason does not name the quantity: {message}"),
    );
    // Nothing of the entry was applied: the dry run refused the whole set.
    check(
        get(ns, "deployment.apps", "dify-api").is_none(),
        ns,
        "the api Deployment exists although the entry was refused",
    );
    // Fixing the answer lets it converge (negative control of the failure's cause).
    answer(&version_dir, &app, &[("fileStorageSize", "10Gi")]);
    ok(&kubectl(&[
        "annotate",
        KUSTOMIZATION,
        &app.inner(),
        "-n",
        ns,
        "--overwrite",
        "reconcile.fluxcd.io/requestedAt=fixed-answer",
    ]));
    wait_ready(ns, &app.inner(), "1.11.4");
    check(
        claim_size(ns, "dify-storage").as_deref() == Some("10Gi"),
        ns,
        "the fixed answer was not applied",
    );
}
