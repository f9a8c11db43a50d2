//! Releases on the real control plane (scripts/testenv): every release of the table accepted with
//! strict validation, an install of 1.11.4 upgraded to 1.13.3 and 1.14.1, then refused going
//! back, and 1.11.4 and 1.14.1 upgraded to 1.16.1 with its agent stack.

mod common;

use common::cluster::{self, HOLD_MIGRATION, Running, ok};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Output};

const MASTER: &str = "upgrade-test-master-key-0123456789";

shared_cluster!("upgrade");

/// difyrender `verb` for release `tag` in `ns`, not yet run.
fn command(verb: &str, ns: &str, tag: &str, extra: &[&str]) -> Command {
    let mut cmd = cluster::difyrender_on(verb, kubeconfig(), ns);
    // status and versions read the inventory; apply and diff render the release.
    if verb == "apply" || verb == "diff" {
        cmd.args(root_profile())
            .args(["--set", &format!("images.dify.tag={tag}")])
            .args(["--external-host", "192.0.2.10"]);
    }
    if verb == "apply" {
        cmd.args(["--timeout", "120s"]);
    }
    cmd.args(extra).env("DIFY_SECRET_KEY", MASTER);
    cmd
}

/// difyrender `verb` for release `tag` in `ns`, its output scanned for secrets.
fn run(verb: &str, ns: &str, tag: &str, extra: &[&str]) -> Output {
    cluster::scanned(
        &mut command(verb, ns, tag, extra),
        &secrets_of(MASTER),
        verb,
    )
}

fn apply(ns: &str, tag: &str, extra: &[&str]) -> Output {
    run("apply", ns, tag, extra)
}

/// An upgrade of `ns` to `tag` with its migration pod held Running (kwok would complete it at
/// once, so no timestamp could tell whether apply waited). While it runs: apply is waiting for
/// the Job, no Deployment was written or added and no ReplicaSet runs `tag`, so no pod of the
/// new release can start. Then the migration succeeds and apply goes on. Returns apply's
/// transcript, which must show success.
fn upgrade_holding_the_migration(ns: &str, tag: &str, extra: &[&str]) -> String {
    let before = cluster::deployments(ns, kubeconfig());
    let mut apply = Running::start(command(
        "apply",
        ns,
        tag,
        &[&HOLD_MIGRATION[..], extra].concat(),
    ));
    let pod = cluster::hold_migration(ns, &mut apply, kubeconfig());
    let job = pod["metadata"]["labels"]["job-name"].as_str().unwrap();
    let prefix = format!("dify-migration-{}-", tag.replace('.', "-"));
    assert!(job.starts_with(&prefix), "{job}");
    assert!(
        apply.is_running(),
        "apply ended while its migration was still running: {}",
        transcript(&apply.finish())
    );
    assert_eq!(
        cluster::deployments(ns, kubeconfig()),
        before,
        "Deployments written before the migration to {tag} ended"
    );
    let sets = cluster::replica_set_images(ns, kubeconfig());
    let suffix = format!(":{tag}");
    assert!(
        !sets.iter().any(|i| i.ends_with(&suffix)),
        "a ReplicaSet of {tag} exists while its migration runs: {sets:?}"
    );

    // The migration succeeds: the rollout follows.
    cluster::end_pod(ns, &pod, 0, "", kubeconfig());
    let out = apply.finish();
    assert_no_secrets(&transcript(&out), &secrets_of(MASTER), "apply");
    ok(&out)
}

fn items(kind: &str, ns: &str) -> Vec<Value> {
    kubectl_json(&["get", kind, "-n", ns])["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn name(o: &Value) -> String {
    o["metadata"]["name"].as_str().unwrap().to_owned()
}

/// uid of every volume claim and of the keys Secret.
fn data_uids(ns: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = items("pvc", ns)
        .iter()
        .map(|o| {
            (
                format!("pvc/{}", name(o)),
                o["metadata"]["uid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let keys = kubectl_json(&["get", "secret", "dify-keys", "-n", ns]);
    out.insert(
        "secret/dify-keys".into(),
        keys["metadata"]["uid"].as_str().unwrap().to_owned(),
    );
    out
}

fn image_of(kind: &str, object: &str, ns: &str) -> String {
    kubectl_json(&["get", kind, object, "-n", ns])["spec"]["template"]["spec"]["containers"][0]
        ["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// After an upgrade to `tag` ([`upgrade_holding_the_migration`]): one migration Job, complete,
/// and the apps rolled out to `tag`.
fn assert_migrated_and_rolled_out(ns: &str, tag: &str, head: &str) {
    let jobs = items("jobs", ns);
    assert_eq!(
        jobs.len(),
        1,
        "old migration Jobs are pruned: {:?}",
        jobs.iter().map(name).collect::<Vec<_>>()
    );
    let job = &jobs[0];
    let prefix = format!("dify-migration-{}-", tag.replace('.', "-"));
    assert!(name(job).starts_with(&prefix), "{}", name(job));
    let env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert!(
        env.iter()
            .any(|e| e["name"] == "DIFYRENDER_ALEMBIC_HEAD" && e["value"] == head),
        "the Job checks for {head}"
    );
    assert_eq!(job["status"]["succeeded"], 1, "{}", job["status"]);
    // With --no-wait apply does not wait for the ReplicaSets the Deployments make.
    cluster::wait_rollouts_settled(ns, kubeconfig());
    let api_image = format!("langgenius/dify-api:{tag}");
    let web_image = format!("langgenius/dify-web:{tag}");
    let mut new_sets = 0;
    for rs in items("replicasets", ns) {
        let image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap();
        if image == api_image || image == web_image {
            new_sets += 1;
        }
    }
    // api, worker, beat and web (and 1.14.1's api-websocket) roll to the new release.
    assert!(new_sets >= 4, "{new_sets} ReplicaSets run {tag}");
    let inventory = kubectl_json(&["get", "configmap", "dify-inventory", "-n", ns]);
    assert_eq!(inventory["data"]["difyVersion"], tag);
    assert_eq!(inventory["data"]["alembicHead"], head);
}

#[test]
fn every_release_passes_strict_server_side_validation() {
    let ns = "t-strict-releases";
    ok(&kubectl(&["create", "namespace", ns]));
    let table = difyrender::chart::Chart::embedded().versions;
    for release in &table.releases {
        let out = difyrender()
            .arg("render")
            .args(["-n", ns])
            .args(root_profile())
            .args(["--set", "external.host=192.0.2.10"])
            .args(["--set", &format!("images.dify.tag={}", release.version)])
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap();
        let stream = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{}", release.version);
        cluster::strict_dry_run(&stream, "kubectl", kubeconfig(), &release.version);
    }
}

#[test]
fn upgrades_run_their_migration_first_keep_the_data_and_never_go_back() {
    let ns = "t-upgrade";
    ok(&apply(ns, "1.11.4", &[]));
    let data = data_uids(ns);
    assert!(data.len() >= 5, "{data:?}");
    assert_eq!(
        image_of("deploy", "dify-plugin-daemon", ns),
        "langgenius/dify-plugin-daemon:0.5.2-local"
    );

    // diff shows the upgrade as such before it happens.
    let diff = run("diff", ns, "1.13.3", &[]);
    let text = transcript(&diff);
    assert_eq!(diff.status.code(), Some(1), "{text}");
    for line in [
        "upgrade: Dify 1.11.4 → 1.13.3",
        "migration: Alembic 905527cc8fd3 → 6b5f9f8b1a2c, by Job/t-upgrade/dify-migration-1-13-3-",
        "image plugin-daemon: langgenius/dify-plugin-daemon:0.5.2-local → langgenius/dify-plugin-daemon:0.5.3-local",
        "image sandbox: langgenius/dify-sandbox:0.2.12 → langgenius/dify-sandbox:0.2.14",
        "volumes and the keys Secret are not changed",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }

    // 1.11.4 → 1.13.3: the claim templates no longer carry the version, so this passes the
    // dry run that used to refuse it.
    let up = upgrade_holding_the_migration(ns, "1.13.3", &[]);
    assert!(up.contains("Dify 1.13.3 (upgrade from 1.11.4)"), "{up}");
    assert_migrated_and_rolled_out(ns, "1.13.3", "6b5f9f8b1a2c");
    assert_eq!(
        image_of("deploy", "dify-plugin-daemon", ns),
        "langgenius/dify-plugin-daemon:0.5.3-local"
    );
    assert_eq!(
        image_of("deploy", "dify-sandbox", ns),
        "langgenius/dify-sandbox:0.2.14"
    );
    assert_eq!(
        data_uids(ns),
        data,
        "volumes and the keys Secret keep their identity"
    );

    // 1.13.3 → 1.14.1, with --no-wait: the migration is still waited for.
    let up = upgrade_holding_the_migration(ns, "1.14.1", &["--no-wait"]);
    assert!(up.contains("Dify 1.14.1 (upgrade from 1.13.3)"), "{up}");
    assert_migrated_and_rolled_out(ns, "1.14.1", "a4f2d8c9b731");
    assert_eq!(
        image_of("deploy", "dify-plugin-daemon", ns),
        "langgenius/dify-plugin-daemon:0.6.0-local"
    );
    assert_eq!(
        image_of("deploy", "dify-sandbox", ns),
        "langgenius/dify-sandbox:0.2.15"
    );
    assert_eq!(
        image_of("deploy", "dify-api-websocket", ns),
        "langgenius/dify-api:1.14.1"
    );
    assert_eq!(data_uids(ns), data);

    // An explicit image is reported as an override by diff and status.
    let override_flag = ["--set", "images.sandbox.tag=0.2.14"];
    let diff = transcript(&run("diff", ns, "1.14.1", &override_flag));
    let reported =
        "sandbox: langgenius/dify-sandbox:0.2.14 (the release pins langgenius/dify-sandbox:0.2.15)";
    assert!(diff.contains(&format!("override: {reported}")), "{diff}");
    ok(&apply(ns, "1.14.1", &override_flag));
    let status = run("status", ns, "1.14.1", &[]);
    let status = transcript(&status);
    assert!(
        status.contains(&format!("override  {reported}")),
        "{status}"
    );
    assert!(
        status.contains("dify      1.14.1 (Alembic a4f2d8c9b731)"),
        "{status}"
    );

    let versions = transcript(&run("versions", ns, "1.14.1", &[]));
    assert!(
        versions.contains("runs Dify 1.14.1, Alembic a4f2d8c9b731"),
        "{versions}"
    );
    assert!(
        versions.contains("refused (their database head is older): 1.10.0"),
        "{versions}"
    );

    // Back to 1.13.3: refused before anything is written.
    cluster::wait_rollouts_settled(ns, kubeconfig());
    let before = cluster::resource_versions(ns, kubeconfig());
    for verb in ["apply", "diff"] {
        let back = run(verb, ns, "1.13.3", &[]);
        let text = transcript(&back);
        assert_eq!(back.status.code(), Some(2), "{verb}: {text}");
        assert!(
            text.contains("refusing to downgrade release dify in namespace t-upgrade from Dify 1.14.1 to 1.13.3"),
            "{text}"
        );
        assert!(text.contains("Nothing was changed"), "{text}");
        assert!(text.contains("restore the database backup"), "{text}");
    }
    assert_eq!(
        cluster::resource_versions(ns, kubeconfig()),
        before,
        "a refused downgrade wrote something"
    );
    // Negative control: the same release again is allowed and writes nothing.
    let again = ok(&apply(ns, "1.14.1", &override_flag));
    assert!(again.contains(": wrote 0 of"), "{again}");
    assert_eq!(cluster::resource_versions(ns, kubeconfig()), before);
}

/// The ReplicaSets whose first container runs an image starting with `prefix`.
fn sets_running(ns: &str, prefix: &str) -> Vec<Value> {
    items("replicasets", ns)
        .into_iter()
        .filter(|rs| {
            rs["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .is_some_and(|i| i.starts_with(prefix))
        })
        .collect()
}

/// `from` → 1.16.1: the migration Job first, then the agent stack (no ReplicaSet of it while
/// the migration runs), the data and the keys Secret kept, and going back refused before any write.
fn upgrade_to_the_agent_stack(ns: &str, from: &str) {
    ok(&apply(ns, from, &[]));
    let data = data_uids(ns);
    assert!(
        sets_running(ns, "langgenius/dify-agent-").is_empty(),
        "{from} has no agent stack"
    );
    let keys_before = kubectl_json(&["get", "secret", "dify-keys", "-n", ns]);
    assert!(keys_before["data"].get("AGENT_SHELLCTL_TOKEN").is_none());

    let up = upgrade_holding_the_migration(ns, "1.16.1", &[]);
    assert!(
        up.contains(&format!("Dify 1.16.1 (upgrade from {from})")),
        "{up}"
    );
    assert_migrated_and_rolled_out(ns, "1.16.1", "6f5a9c2d8e1b");
    for (image, name) in [
        ("langgenius/dify-agent-backend:1.16.1", "dify-agent-backend"),
        (
            "langgenius/dify-agent-local-sandbox:1.16.1",
            "dify-local-sandbox",
        ),
    ] {
        assert_eq!(image_of("deploy", name, ns), image);
        assert_eq!(sets_running(ns, image).len(), 1, "{name}");
    }
    // The agent's squid runs the same pinned image as the ssrf proxy.
    assert_eq!(
        image_of("deploy", "dify-agent-ssrf-proxy", ns),
        image_of("deploy", "dify-ssrf-proxy", ns)
    );
    assert_eq!(
        data_uids(ns),
        data,
        "volumes and the keys Secret keep their identity"
    );
    // The keys Secret gained the agent keys; the existing keys kept their values.
    let keys = kubectl_json(&["get", "secret", "dify-keys", "-n", ns]);
    for k in [
        "AGENT_SERVER_SECRET_KEY",
        "AGENT_SHELLCTL_TOKEN",
        "AGENT_API_TOKEN",
    ] {
        assert!(
            keys["data"][k].as_str().is_some_and(|v| !v.is_empty()),
            "{k}"
        );
    }
    for (k, v) in keys_before["data"].as_object().unwrap() {
        assert_eq!(&keys["data"][k], v, "{k} kept its value");
    }

    // Back to 1.15.0 (an older head): refused before anything is written.
    cluster::wait_rollouts_settled(ns, kubeconfig());
    let before = cluster::resource_versions(ns, kubeconfig());
    let back = run("apply", ns, "1.15.0", &[]);
    let text = transcript(&back);
    assert_eq!(back.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "refusing to downgrade release dify in namespace {ns} from Dify 1.16.1 to 1.15.0"
        )),
        "{text}"
    );
    assert_eq!(
        cluster::resource_versions(ns, kubeconfig()),
        before,
        "a refused downgrade wrote something"
    );
}

#[test]
fn upgrades_from_1_11_4_to_the_agent_stack() {
    upgrade_to_the_agent_stack("t-upgrade-agent-1114", "1.11.4");
}

#[test]
fn upgrades_from_1_14_1_to_the_agent_stack() {
    upgrade_to_the_agent_stack("t-upgrade-agent-1141", "1.14.1");
}
