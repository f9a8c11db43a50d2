//! The fixture corpus: every folder in tests/cases is one run of the real binary. `args` holds
//! one argument per line; an optional `env` sets the environment, one `KEY=VALUE` a line
//! (`DIFY_SECRET_KEY=` leaves the key out; by default a test key is set); an optional
//! `must-not-print` lists strings (one a line) that may appear in no output, such as the token
//! of a broken kubeconfig. The exit code, stdout and stderr are snapshotted in snapshots/, with
//! Secret data redacted, and every secret of the run is scanned for first. A run must end
//! with a documented exit code (0-4), never a panic or a signal.

mod common;

use common::*;
use std::path::Path;

const DEFAULT_KEY: &str = "case-master-key-0123456789";

fn run_case(dir: &Path) -> String {
    let args: Vec<String> = read(&dir.join("args")).lines().map(str::to_owned).collect();
    let mut cmd = difyrender();
    cmd.current_dir(dir).args(&args);
    let mut master = Some(DEFAULT_KEY.to_owned());
    for line in read(&dir.join("env")).lines() {
        let (k, v) = line.split_once('=').expect("env lines are KEY=VALUE");
        if k == "DIFY_SECRET_KEY" {
            master = Some(v.to_owned()).filter(|v| !v.is_empty());
        } else {
            cmd.env(k, v);
        }
    }
    if let Some(key) = &master {
        cmd.env("DIFY_SECRET_KEY", key);
    }
    let out = cmd.output().expect("the binary runs");
    // Every secret this run could know: the env key, keys given as values or files, and all
    // keys derived from each.
    let mut secrets = Vec::new();
    let mut masters: Vec<String> = master.into_iter().collect();
    for a in &args {
        if let Some((k, v)) = a.split_once('=')
            && k.starts_with("secrets.")
        {
            masters.push(v.to_owned());
        }
    }
    masters.extend(
        std::fs::read_to_string(dir.join("key.txt"))
            .ok()
            .map(|k| k.trim().to_owned()),
    );
    for m in &masters {
        secrets.extend(secrets_of(m));
    }
    secrets.extend(
        read(&dir.join("must-not-print"))
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0..=4)),
        "{}: ended with {:?}, not a documented exit code",
        dir.display(),
        out.status
    );
    assert_no_secrets(&stderr, &secrets, "stderr");
    let redacted = redact(&stdout);
    assert_no_secrets(&redacted, &secrets, "stdout outside Secret data");
    if !out.status.success() {
        assert!(out.stdout.is_empty(), "a failed run printed to stdout");
    }
    format!(
        "args: {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code().unwrap_or(-1),
        redacted,
        stderr
    )
}

#[test]
fn cases() {
    let mut dirs: Vec<_> = std::fs::read_dir(root().join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "the corpus lost cases");
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        snapshot(&format!("case-{name}"), &run_case(&dir));
    }
}

/// A snapshot whose case folder is gone would never be checked again: refuse it.
#[test]
fn every_case_snapshot_has_its_case() {
    for entry in std::fs::read_dir(root().join("snapshots")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(case) = name
            .strip_prefix("case-")
            .and_then(|n| n.strip_suffix(".snap"))
        {
            assert!(
                root().join("tests/cases").join(case).is_dir(),
                "snapshots/{name} has no tests/cases/{case}"
            );
        }
    }
}
