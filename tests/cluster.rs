//! `difyrender apply` against a real kube-apiserver + etcd (+ controller-manager, scheduler
//! and kwok's simulated node), started by scripts/testenv once for this test binary. Each test
//! works in its own namespace, so they run concurrently.

mod common;

use common::cluster::{self, ok};
use common::*;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const MASTER: &str = "cluster-test-master-key-0123456789";

shared_cluster!("cluster");

/// Values for a release at the root path in namespace `ns`.
fn values(ns: &str) -> Vec<String> {
    [vec!["-n".to_owned(), ns.to_owned()], root_profile()].concat()
}

fn apply(ns: &str, extra: &[&str]) -> Output {
    cluster::scanned(
        cluster::difyrender_on("apply", kubeconfig(), ns)
            .args(root_profile())
            .args(["--external-host", "192.0.2.10"])
            .args(if extra.contains(&"--timeout") {
                &[][..]
            } else {
                &["--timeout", "90s"][..]
            })
            .args(extra)
            .env("DIFY_SECRET_KEY", MASTER),
        &secrets_of(MASTER),
        "apply output",
    )
}

/// `difyrender render` of the release in `ns`.
fn render(ns: &str) -> Output {
    difyrender()
        .arg("render")
        .args(values(ns))
        .args(["--set", "external.host=192.0.2.10"])
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap()
}

fn rendered_ids(ns: &str) -> Vec<(String, String)> {
    let out = render(ns);
    let docs =
        difyrender::yaml::from_str_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    docs.iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn full_apply_then_a_second_apply_writes_nothing() {
    let ns = "t-full";
    let first = ok(&apply(ns, &[]));
    assert!(first.contains("all objects are ready"), "{first}");
    for (kind, name) in rendered_ids(ns) {
        let obj = if kind == "Namespace" {
            kubectl_json(&["get", &kind, &name])
        } else {
            kubectl_json(&["get", &kind, &name, "-n", ns])
        };
        let managers = obj["metadata"]["managedFields"].as_array().unwrap();
        assert!(
            managers
                .iter()
                .any(|m| m["manager"] == "difyrender" && m["operation"] == "Apply"),
            "{kind}/{name} is not managed by difyrender with Apply: {managers:?}"
        );
    }
    cluster::wait_rollouts_settled(ns, kubeconfig());
    let before = cluster::resource_versions(ns, kubeconfig());
    let second = ok(&apply(ns, &[]));
    assert!(second.contains(": wrote 0 of"), "{second}");
    assert_eq!(
        cluster::resource_versions(ns, kubeconfig()),
        before,
        "a no-op apply changed resourceVersions"
    );
}

#[test]
fn kubectl_accepts_the_rendered_stream_with_strict_validation() {
    let ns = "t-kubectl";
    let render = render(ns);
    assert!(render.status.success());
    let out = kubectl_stdin(
        &["apply", "--server-side", "--validate=strict", "-f", "-"],
        &String::from_utf8(render.stdout).unwrap(),
    );
    let text = transcript(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("serverside-applied").count(),
        rendered_ids(ns).len(),
        "{text}"
    );
}

#[test]
fn dry_run_changes_nothing() {
    let ns = "t-dry";
    let out = ok(&apply(ns, &["--dry-run=server"]));
    assert!(out.contains("would be created"), "{out}");
    assert!(out.contains(": would write "), "{out}");
    assert!(
        !kubectl(&["get", "namespace", ns]).status.success(),
        "a dry run created the namespace"
    );
}

#[test]
fn traefik_address_is_found_once_metallb_assigns_it() {
    let ns = "t-lb";
    let traefik_ns = "t-lb-kommander";
    ok(&kubectl(&["create", "namespace", traefik_ns]));
    ok(&kubectl(&[
        "create",
        "service",
        "loadbalancer",
        "kommander-traefik",
        "-n",
        traefik_ns,
        "--tcp=443:8443",
    ]));
    let mut child = difyrender()
        .arg("apply")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(values(ns))
        .args(["--timeout", "90s", "--no-wait"])
        .env("DIFY_SECRET_KEY", MASTER)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give the Service its address only once apply reports that it is waiting for one.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let seen = read_until(&mut stderr, "no LoadBalancer address yet");
    assert!(
        seen.contains("a Service named kommander-traefik in any namespace"),
        "{seen}"
    );
    let patch = r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}"#;
    ok(&kubectl(&[
        "patch",
        "service",
        "kommander-traefik",
        "-n",
        traefik_ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ]));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}{rest}");
    assert!(
        rest.contains(
            "external host: 192.0.2.10 (LoadBalancer of Service t-lb-kommander/kommander-traefik)"
        ),
        "{rest}"
    );
    assert!(stdout.contains("at http://192.0.2.10:"), "{stdout}");
    let cm = kubectl_json(&["get", "deploy", "dify-api", "-n", ns]);
    let env = cm["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert!(
        env.iter()
            .any(|e| e["name"] == "CONSOLE_API_URL" && e["value"] == "http://192.0.2.10")
    );
}

#[test]
fn missing_traefik_service_times_out_with_what_was_looked_for() {
    let out = difyrender()
        .arg("apply")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(values("t-lb-missing"))
        .args(["--timeout", "2s", "--traefik-service", "nowhere/traefik"])
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    let text = transcript(&out);
    // A wait that timed out: exit 4, as the README documents for every timeout.
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("Service nowhere/traefik has not found"),
        "{text}"
    );
    assert!(text.contains("--external-host"), "{text}");
}

#[test]
fn conflicts_are_refused_with_names_unless_forced() {
    let ns = "t-conflict";
    ok(&apply(ns, &["--no-wait"]));
    // Another tool takes the replica count of the api Deployment.
    let patch = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"dify-api"},"spec":{"replicas":3}}"#;
    ok(&kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=other-tool",
            "-n",
            ns,
            "-f",
            "-",
        ],
        patch,
    ));
    let refused = apply(ns, &["--no-wait"]);
    let text = transcript(&refused);
    assert_eq!(refused.status.code(), Some(3), "{text}");
    assert!(
        text.contains("Deployment/t-conflict/dify-api: .spec.replicas is owned by \"other-tool\""),
        "{text}"
    );
    assert!(text.contains("--force-conflicts"), "{text}");
    let forced = ok(&apply(ns, &["--no-wait", "--force-conflicts"]));
    assert!(
        forced.contains("Deployment/t-conflict/dify-api configured"),
        "{forced}"
    );
    let api = kubectl_json(&["get", "deploy", "dify-api", "-n", ns]);
    assert_eq!(api["spec"]["replicas"], 1);
}

#[test]
fn the_restricted_user_gets_a_clear_forbidden_message() {
    // Past doctor (whose permission check tests/doctor.rs covers), the apply's own dry run.
    let out = apply(
        "t-restricted",
        &["--context", "restricted", "--no-wait", "--skip-doctor"],
    );
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("Namespace/t-restricted: server-side apply (dry run) refused"),
        "{text}"
    );
    assert!(
        text.contains("User \"restricted\" cannot patch resource \"namespaces\""),
        "{text}"
    );
}

/// The instance's kubeconfig with `edit` applied to its text, in `dir`.
fn edited_kubeconfig(dir: &std::path::Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig()).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, edit(&text)).unwrap();
    path
}

/// `difyrender status` and `doctor` with kubeconfig `kc`, the first API call each makes.
fn status_and_doctor(kc: &std::path::Path, ns: &str) -> Vec<(&'static str, Output)> {
    ["status", "doctor"]
        .into_iter()
        .map(|verb| {
            let mut cmd = difyrender();
            cmd.arg(verb).arg("--kubeconfig").arg(kc).args(["-n", ns]);
            if verb == "doctor" {
                cmd.args(root_profile())
                    .args(["--external-host", "192.0.2.10"]);
            }
            let out = cmd.env("DIFY_SECRET_KEY", MASTER).output().unwrap();
            assert_no_secrets(&transcript(&out), &secrets_of(MASTER), verb);
            (verb, out)
        })
        .collect()
}

#[test]
fn a_wrong_ca_or_a_bad_token_is_named_not_called_unreachable() {
    let ns = "t-credentials";
    let dir = tempfile::tempdir().unwrap();

    // A CA that did not sign the API server's certificate (made for this test, thrown away).
    let (ca, _) = self_signed(dir.path(), "other-ca", "/CN=not-the-testenv-ca", &[]);
    use base64::Engine;
    let other_ca = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&ca).unwrap());
    let wrong_ca_dir = dir.path().join("wrong-ca");
    std::fs::create_dir(&wrong_ca_dir).unwrap();
    let wrong_ca = edited_kubeconfig(&wrong_ca_dir, |text| {
        text.lines()
            .map(|l| match l.split_once("certificate-authority-data: ") {
                Some((indent, _)) => format!("{indent}certificate-authority-data: {other_ca}\n"),
                None => format!("{l}\n"),
            })
            .collect()
    });
    for (verb, out) in status_and_doctor(&wrong_ca, ns) {
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(3), "{verb}: {text}");
        assert!(
            text.contains("the API server's certificate is not trusted")
                && text.contains("certificate-authority-data"),
            "{verb}: {text}"
        );
        assert!(!text.contains("cannot reach"), "{verb}: {text}");
        assert!(out.stdout.is_empty(), "{verb}: {text}");
    }

    // A token the API server does not know.
    let bad_token_dir = dir.path().join("bad-token");
    std::fs::create_dir(&bad_token_dir).unwrap();
    let bad_token = edited_kubeconfig(&bad_token_dir, |text| {
        text.lines()
            .map(|l| match l.split_once("token: ") {
                Some((indent, _)) => format!("{indent}token: not-a-token-of-this-cluster\n"),
                None => format!("{l}\n"),
            })
            .collect()
    });
    for (verb, out) in status_and_doctor(&bad_token, ns) {
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(3), "{verb}: {text}");
        assert!(
            text.contains("the API server refused the kubeconfig's credentials (401 Unauthorized)"),
            "{verb}: {text}"
        );
        assert!(!text.contains("cannot reach"), "{verb}: {text}");
        assert!(
            !text.contains("not-a-token-of-this-cluster"),
            "{verb}: {text}"
        );
    }

    // Negative control: the instance's own kubeconfig gets past both (no release here).
    for (verb, out) in status_and_doctor(kubeconfig(), ns) {
        let text = transcript(&out);
        assert!(
            !text.contains("not trusted") && !text.contains("401"),
            "{verb}: {text}"
        );
    }
}

#[test]
fn immutable_changes_get_guidance() {
    let ns = "t-immutable";
    ok(&apply(ns, &["--no-wait"]));
    // A StatefulSet's volume claim templates cannot change in place.
    let out = apply(ns, &["--no-wait", "--set", "postgresql.storageSize=20Gi"]);
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains(
            "StatefulSet/t-immutable/dify-postgresql: spec: Forbidden: updates to statefulset spec"
        ),
        "{text}"
    );
    assert!(
        text.contains("kubectl delete statefulset -n t-immutable dify-postgresql --cascade=orphan"),
        "{text}"
    );
    assert!(
        !text.contains("Invalid value: {"),
        "the rejected object is not dumped: {text}"
    );
    // Nothing was written: the api Deployment still has its first generation.
    assert_eq!(
        kubectl_json(&["get", "deploy", "dify-api", "-n", ns])["metadata"]["generation"],
        1
    );
}

#[test]
fn waiting_times_out_naming_every_object_and_why() {
    let ns = "t-timeout";
    // No node has a thousand CPUs: the api pod stays Pending; everything else becomes ready.
    let out = apply(
        ns,
        &[
            "--timeout",
            "15s",
            "--set",
            "api.resources.requests.cpu=1000",
            "--set",
            "api.resources.limits.cpu=1000",
        ],
    );
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("timed out after 15s waiting for:\n  Deployment/t-timeout/dify-api: 0/1 replicas available"), "{text}");
    let error = &text[text.find("error: timed out").unwrap()..];
    assert!(
        !error.contains("dify-web"),
        "only objects that are not ready are named: {error}"
    );
}

#[test]
fn a_crashed_api_server_fails_the_apply_cleanly_and_a_rerun_converges() {
    // Its own control plane: this test stops the API server.
    let kc = cluster::start("crash");
    let instance = cluster::instance_dir(&kc).to_owned();
    let testenv = |verb: &str| {
        let status = Command::new(root().join("scripts/testenv"))
            .args([verb, "kube-apiserver"])
            .env("TESTENV_DIR", &instance)
            .status()
            .unwrap();
        assert!(status.success(), "testenv {verb}");
    };
    let run = || {
        difyrender()
            .arg("apply")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(values("t-crash"))
            .args(["--external-host", "192.0.2.10", "--timeout", "90s"])
            .env("DIFY_SECRET_KEY", MASTER)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = run();
    // Kill the API server once the apply is past the datastores.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let seen = read_until(&mut stderr, "stage 4 migration");
    testenv("stop-component");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{seen}{rest}");
    assert!(rest.contains("cannot reach the API server"), "{rest}");
    assert!(out.stdout.is_empty());
    testenv("start-component");
    let again = run().wait_with_output().unwrap();
    let text = transcript(&again);
    assert!(again.status.success(), "{text}");
    assert!(text.contains("all objects are ready"), "{text}");
}

/// The command the notes print to read INIT_PASSWORD, run as printed (by `sh`) against the
/// real API server, when `secrets.existingSecretKeys` maps it to a key with a dot: jsonpath
/// reads `{.data.init.password}` as two fields and prints nothing, so the dot is escaped.
/// Negative control: the unescaped command prints nothing on the same Secret.
#[test]
fn printed_init_password_command_reads_a_dotted_key() {
    let ns = "jsonpath-dotted-key";
    ok(&kubectl(&["create", "namespace", ns]));
    // Not a secret of the project: a value made up for this Secret only.
    let value = "value-of-the-dotted-key";
    ok(&kubectl(&[
        "create",
        "secret",
        "generic",
        "operator-keys",
        "-n",
        ns,
        &format!("--from-literal=init.password={value}"),
    ]));
    let set = [
        "expose.ingressClassName=kommander-traefik",
        "expose.path=/",
        "external.scheme=http",
        "external.host=192.0.2.10",
        "storage.storageClassName=standard",
        "secrets.existingSecret=operator-keys",
        "secrets.existingSecretKeys.INIT_PASSWORD=init.password",
    ];
    let mut spec = release_spec(set.iter().map(|s| s.to_string()).collect(), MASTER);
    spec.release.namespace = ns.into();
    let notes = difyrender::release::render_release(&spec).unwrap().notes();
    let note = notes
        .iter()
        .find(|n| n.contains("INIT_PASSWORD") || n.contains("initial password"))
        .expect("a note on the initial password");
    let command = note.split("read it with: ").nth(1).expect("a command");
    assert!(command.contains(r"{.data.init\.password}"), "{command}");
    let run = |command: &str| {
        let out = Command::new("sh")
            .args(["-c", command])
            .env("KUBECONFIG", kubeconfig())
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {}", transcript(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(command), value);
    assert_eq!(
        run(&command.replace(r"init\.password", "init.password")),
        ""
    );
}
