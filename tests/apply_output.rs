//! `apply --output json` and the confirmation prompt, against the real control plane
//! (scripts/testenv). The prompt needs a terminal: util-linux's `script` runs apply on a
//! pseudo-terminal and types the answer.

mod common;

use common::cluster;
use common::*;
use serde_json::Value;
use std::process::{Command, Output, Stdio};

const MASTER: &str = "apply-output-test-master-key-0123456789";

shared_cluster!("apply-output");

fn apply_args(ns: &str) -> Vec<String> {
    let mut args: Vec<String> = ["apply", "--kubeconfig"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(kubeconfig().display().to_string());
    args.extend(["-n".to_owned(), ns.to_owned()]);
    args.extend(root_profile());
    args.extend(
        ["--external-host", "192.0.2.10"]
            .iter()
            .map(|s| s.to_string()),
    );
    args
}

fn apply(ns: &str, extra: &[&str]) -> Output {
    cluster::scanned(
        difyrender()
            .args(apply_args(ns))
            .args(if extra.contains(&"--timeout") {
                &[][..]
            } else {
                &["--timeout", "90s"][..]
            })
            .args(extra)
            .env("DIFY_SECRET_KEY", MASTER)
            .stdin(Stdio::null()),
        &secrets_of(MASTER),
        "apply output",
    )
}

/// apply on a pseudo-terminal (stdin a terminal), typing `answer`; `ci` sets $CI.
fn apply_on_terminal(ns: &str, answer: &str, ci: bool) -> (Option<i32>, String) {
    terminal(ns, answer, ci, &[])
}

fn apply_on_terminal_with(ns: &str, answer: &str, extra: &[&str]) -> (Option<i32>, String) {
    terminal(ns, answer, false, extra)
}

fn terminal(ns: &str, answer: &str, ci: bool, extra: &[&str]) -> (Option<i32>, String) {
    let bin = env!("CARGO_BIN_EXE_difyrender");
    let line = std::iter::once(bin.to_owned())
        .chain(apply_args(ns))
        .chain(["--timeout".to_owned(), "90s".to_owned()])
        .chain(extra.iter().map(|s| s.to_string()))
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("DIFY_SECRET_KEY", MASTER)
        .env_remove("KUBECONFIG")
        .env_remove("CI")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if ci {
        cmd.env("CI", "true");
    }
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(answer.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = transcript(&out);
    assert_no_secrets(&text, &secrets_of(MASTER), "apply on a terminal");
    (out.status.code(), text)
}

fn namespace_exists(ns: &str) -> bool {
    cluster::kubectl(&["get", "namespace", ns], kubeconfig())
        .status
        .success()
}

#[test]
fn json_output_has_the_plan_and_the_result() {
    let ns = "t-json";
    let out = apply(ns, &["--output", "json"]);
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(json["namespace"], ns);
    assert_eq!(json["ready"], true);
    assert_eq!(json["result"], "applied");
    assert_eq!(json["transition"]["kind"], "install");
    let objects = json["objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .any(|o| o["object"] == "Deployment/t-json/dify-api" && o["action"] == "created"),
        "{json:#}"
    );
    assert_eq!(json["written"].as_u64().unwrap() as usize, objects.len());
    // Snapshot of the plan: every object and its action, in apply order.
    let mut stable = json.clone();
    stable["difyVersion"] = "[version]".into();
    snapshot(
        "apply-json-install",
        &(serde_json::to_string_pretty(&stable)
            .unwrap()
            .replace(json["difyVersion"].as_str().unwrap(), "[version]")
            .replace(
                &json["difyVersion"].as_str().unwrap().replace('.', "-"),
                "[version]",
            )
            + "\n"),
    );

    // Again: nothing to write, every object unchanged.
    let again = apply(ns, &["--output", "json"]);
    let json: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["written"], 0, "{json:#}");
    assert_eq!(json["transition"]["kind"], "same");
    assert!(
        json["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["action"] == "unchanged")
    );
}

#[test]
fn a_failed_wait_is_a_json_result_with_the_diagnoses() {
    let ns = "t-json-fail";
    let out = apply(
        ns,
        &[
            "--output",
            "json",
            "--timeout",
            "15s",
            "--set",
            "api.pod.labels.testenv-scenario=image-pull-backoff",
        ],
    );
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(json["result"], "waitFailed", "{json:#}");
    // api.pod applies to the api and, from 1.14.1, the api-websocket: both pods fail to pull.
    let diagnoses = json["diagnoses"].as_array().unwrap();
    let objects: Vec<&str> = diagnoses
        .iter()
        .map(|d| d["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        objects,
        [
            "Deployment/t-json-fail/dify-api",
            "Deployment/t-json-fail/dify-api-websocket"
        ],
        "{json:#}"
    );
    for d in diagnoses {
        assert!(
            d["reason"]
                .as_str()
                .unwrap()
                .starts_with("ImagePullBackOff: image "),
            "{json:#}"
        );
    }
    // The error is on stderr as without --output json.
    assert!(text.contains("error: timed out after 15s"), "{text}");
}

#[test]
fn a_terminal_is_asked_and_no_means_nothing_is_applied() {
    let ns = "t-prompt";
    let (code, text) = apply_on_terminal(ns, "n\n", false);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("Apply these changes to "), "{text}");
    assert!(text.contains("objects? [y/N]"), "{text}");
    assert!(
        text.contains("Deployment/t-prompt/dify-api"),
        "the diff is shown: {text}"
    );
    assert!(
        text.contains("not confirmed; nothing was applied"),
        "{text}"
    );
    assert!(!namespace_exists(ns), "nothing was written");

    let (code, text) = apply_on_terminal(ns, "y\n", false);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("[y/N]"), "{text}");
    assert!(namespace_exists(ns));

    // Nothing left to change: no question.
    let (code, text) = apply_on_terminal(ns, "", false);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("[y/N]"), "{text}");
}

#[test]
fn ci_yes_and_pipes_are_never_asked() {
    // $CI on a terminal.
    let (code, text) = apply_on_terminal("t-ci", "", true);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("[y/N]"), "{text}");
    // --yes on a terminal.
    let (code, text) = apply_on_terminal_with("t-yes", "", &["--yes"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("[y/N]"), "{text}");
    // A pipe (stdin not a terminal): applies without asking.
    let out = apply("t-pipe", &[]);
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("[y/N]"), "{text}");
}
