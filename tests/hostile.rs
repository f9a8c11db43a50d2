//! Hostile input that a case folder cannot hold: generated files of megabytes, endless pipes,
//! a full or closed stderr, a master key that is not UTF-8, and `--output-dir` into places an
//! attacker prepared. Each run must end with exit code 2 (or succeed where stated), print no
//! secret, and leave nothing half-written.

mod common;

use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const MASTER: &str = "hostile-test-master-key-0123456789";

fn base() -> Vec<String> {
    let mut args: Vec<String> = vec!["render".into()];
    args.extend(root_profile());
    args.extend(["--set".into(), "external.host=203.0.113.10".into()]);
    args
}

fn run(cmd: &mut Command) -> Output {
    cmd.env("DIFY_SECRET_KEY", MASTER).output().unwrap()
}

/// Exit code 2, nothing on stdout, a bounded one-screen message.
fn refused(out: &Output) -> String {
    let text = transcript(out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(out.stdout.is_empty(), "{text}");
    assert!(
        out.stderr.len() < 4096,
        "stderr is {} bytes",
        out.stderr.len()
    );
    assert_no_secrets(&text, &secrets_of(MASTER), "output");
    text
}

#[test]
fn an_alias_bomb_in_a_values_file_is_refused_while_expanding() {
    // 19 anchors of 200 KB under dify.extraEnv, each aliased 9 times: 3.8 MB of text that
    // would render 152 MB.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("dify:\n  extraEnv:\n");
    let blob = "x".repeat(200_000);
    for i in 0..19 {
        text.push_str(&format!("  - {{name: A{i}, value: &a{i} \"{blob}\"}}\n"));
        for j in 0..9 {
            text.push_str(&format!("  - {{name: B{i}x{j}, value: *a{i}}}\n"));
        }
    }
    let file = dir.path().join("bomb.yaml");
    std::fs::write(&file, &text).unwrap();
    // Refused while expanding, not after: with 64 MiB of heap (the refusal peaks near 40 MiB
    // in a debug build), expanding the 152 MB would fail to allocate.
    let out = run(difyrender_with_memory_limit(64 << 20)
        .args(base())
        .arg("-f")
        .arg(&file));
    let text = refused(&out);
    assert!(
        text.contains("expand to more than 8388608 bytes (an alias counts each time it is used)"),
        "{text}"
    );
}

#[test]
fn too_many_nodes_get_an_operator_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nodes.yaml");
    let list = vec!["0"; 250_001].join(",");
    std::fs::write(&file, format!("l: [{list}]\n")).unwrap();
    let text = refused(&run(difyrender().args(base()).arg("-f").arg(&file)));
    assert!(
        text.contains("refused: too many values (more than 250000 nodes)"),
        "{text}"
    );
    assert!(
        !text.contains("budget breached") && !text.contains("Nodes {"),
        "{text}"
    );
}

#[test]
fn set_file_is_bounded_and_a_huge_host_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("host.txt");
    std::fs::write(&big, "h".repeat(8 << 20)).unwrap();
    let text = refused(&run(difyrender()
        .args(base())
        .arg("--set-file")
        .arg(format!("external.host={}", big.display()))));
    assert!(
        text.contains("larger than the 1048576 byte limit"),
        "{text}"
    );
    // Within the limit but far beyond a DNS name: the schema names the value, cut.
    let host = dir.path().join("host-1m.txt");
    std::fs::write(&host, "h".repeat(1_000_000)).unwrap();
    let text = refused(&run(difyrender()
        .args(base())
        .arg("--set-file")
        .arg(format!("external.host={}", host.display()))));
    assert!(text.contains("is longer than 259 characters"), "{text}");
    assert!(text.contains("(1000000 characters)"), "{text}");
    // 1.2 MB of an invalid host from a values file: named, not echoed.
    let values = dir.path().join("v.yaml");
    std::fs::write(
        &values,
        format!("external:\n  host: \"bad_{}\"\n", "x".repeat(1_200_000)),
    )
    .unwrap();
    let text = refused(&run(difyrender()
        .arg("render")
        .args(root_profile())
        .arg("-f")
        .arg(&values)));
    assert!(text.contains("external.host: the value \"bad_"), "{text}");
    assert!(text.contains("(1200004 characters)"), "{text}");
}

#[test]
fn an_endless_pipe_stops_at_the_limit() {
    let mut child = difyrender()
        .args(base())
        .args(["-f", "/dev/stdin"])
        .env("DIFY_SECRET_KEY", MASTER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // `yes a: b`, until the reader stops reading.
    let writer = std::thread::spawn(move || {
        let chunk = "a: b\n".repeat(1000);
        while stdin.write_all(chunk.as_bytes()).is_ok() {}
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = refused(&out);
    assert!(
        text.contains("larger than the 4194304 byte limit"),
        "{text}"
    );
}

#[test]
fn a_full_or_closed_stderr_is_not_a_panic() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = difyrender()
        .args(["render", "--set", "a[0"])
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // The reading end closed before anything is written, as with `2>&1 | head`.
    let mut child = difyrender()
        .args(["render", "--release", "NOT-VALID"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(2));
}

#[test]
fn a_master_key_that_is_not_utf8_is_named_as_such() {
    use std::os::unix::ffi::OsStringExt;
    let out = difyrender()
        .args(base())
        .env(
            "DIFY_SECRET_KEY",
            std::ffi::OsString::from_vec(b"\xff\xfekey-0123456789abcdef".to_vec()),
        )
        .output()
        .unwrap();
    let text = refused(&out);
    assert!(
        text.contains("$DIFY_SECRET_KEY is set but is not UTF-8 text"),
        "{text}"
    );
    assert!(!text.contains("is required"), "{text}");
}

fn render_into(dir: &Path, extra: &[&str]) -> Output {
    run(difyrender()
        .args(base())
        .args(extra)
        .arg("--output-dir")
        .arg(dir))
}

fn yaml_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// No temporary directory is left next to the target.
fn no_leftovers(parent: &Path) {
    for e in std::fs::read_dir(parent).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".difyrender-"), "left behind: {name}");
    }
}

#[test]
fn output_dir_replaces_an_earlier_render_and_nothing_else() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("out");
    assert!(render_into(&dir, &[]).status.success());
    let first = yaml_files(&dir);
    assert!(first.contains(&"3-statefulset-dify-postgresql.yaml".to_owned()));
    // The second render drops the bundled PostgreSQL: its StatefulSet must not stay behind.
    let out = render_into(
        &dir,
        &[
            "--set",
            "postgresql.enabled=false",
            "--set",
            "postgresql.external.host=db.example.com",
        ],
    );
    assert!(out.status.success(), "{}", transcript(&out));
    let second = yaml_files(&dir);
    assert!(
        !second.contains(&"3-statefulset-dify-postgresql.yaml".to_owned()),
        "{second:?}"
    );
    assert!(second.len() < first.len());
    no_leftovers(parent.path());
    // The keys Secret is readable by its owner only; other objects by everyone.
    use std::os::unix::fs::PermissionsExt;
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("2-secret-dify-keys.yaml"), 0o600);
    assert_eq!(mode("2-service-dify-api.yaml"), 0o644);

    // A file difyrender did not write is never replaced: the render is refused, unchanged.
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let text = refused(&render_into(&dir, &[]));
    assert!(
        text.contains("holds \"notes.txt\", which difyrender did not write"),
        "{text}"
    );
    assert_eq!(yaml_files(&dir).len(), second.len() + 1);
    no_leftovers(parent.path());
}

#[test]
fn output_dir_refuses_foreign_directories_and_links_before_writing() {
    let parent = tempfile::tempdir().unwrap();
    // A directory where a file should go, in a directory that is not an earlier render.
    let dir = parent.path().join("out");
    std::fs::create_dir_all(dir.join("2-secret-dify-keys.yaml")).unwrap();
    let text = refused(&render_into(&dir, &[]));
    assert!(text.contains("holds no earlier render"), "{text}");
    assert_eq!(yaml_files(&dir), ["2-secret-dify-keys.yaml"]);
    no_leftovers(parent.path());

    // A planted symlink in place of the directory is not followed.
    let victim = parent.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let link = parent.path().join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let text = refused(&render_into(&link, &[]));
    assert!(text.contains("is a symbolic link"), "{text}");
    assert!(yaml_files(&victim).is_empty());

    // A symlink planted inside an earlier render, where a file will be written, is refused
    // and its target untouched.
    let dir = parent.path().join("again");
    assert!(render_into(&dir, &[]).status.success());
    let target = parent.path().join("target.txt");
    std::fs::write(&target, "keep").unwrap();
    std::fs::remove_file(dir.join("2-secret-dify-keys.yaml")).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("2-secret-dify-keys.yaml")).unwrap();
    let text = refused(&render_into(&dir, &[]));
    assert!(text.contains("which difyrender did not write"), "{text}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    no_leftovers(parent.path());
}
