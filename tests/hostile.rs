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

// ---- issue 17: credentials, reads and writes ----

/// A kubeconfig pointing at nothing, with `extra` lines under its user.
fn kubeconfig(dir: &Path, user: &str) -> std::path::PathBuf {
    let path = dir.join("kc.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_context_with_a_newline_is_escaped_in_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), "    token: abcdefghijklmnop");
    let out = run(difyrender()
        .args(["status", "--kubeconfig"])
        .arg(&kc)
        .args(["--context", "x\nINJECTED\u{1b}[2J"]));
    let text = refused(&out);
    assert!(
        !text.lines().any(|l| l.starts_with("INJECTED")),
        "a forged line: {text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains("x\\nINJECTED\\u{1b}[2J"), "{text}");
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

/// Makes a named pipe nobody writes to.
fn fifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_pipe_without_a_writer_is_refused_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("pipe");
    fifo(&pipe);
    // -f, --set-file and a catalog input: each is refused at once (a hang would never end
    // this test, so its passing is the proof).
    let text = refused(&run(difyrender().args(base()).arg("-f").arg(&pipe)));
    assert!(text.contains("no writer"), "{text}");
    let text = refused(&run(difyrender()
        .args(base())
        .arg("--set-file")
        .arg(format!("external.host={}", pipe.display()))));
    assert!(text.contains("no writer"), "{text}");
    let out = run(difyrender()
        .current_dir(dir.path())
        .args(["catalog", "--out", "repo", "--icon"])
        .arg(&pipe)
        .args(root_profile())
        .args(["--set", "external.host=203.0.113.10"]));
    let text = refused(&out);
    assert!(text.contains("no writer"), "{text}");
    assert!(!dir.path().join("repo").exists());
    // A directory where a values file is named is refused by its type.
    let text = refused(&run(difyrender().args(base()).arg("-f").arg(dir.path())));
    assert!(text.contains("not a regular file"), "{text}");
}

#[test]
fn flux_url_with_a_credential_is_refused_and_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "https://user:PASSflux1234@git.example.com/x.git",
        "https://tokenonlyFLUX1234@git.example.com/x.git",
        "oci://user:PASSflux1234@registry.example.com/dify",
        "ssh://git:PASSflux1234@git.example.com/x.git",
    ] {
        let out = run(difyrender()
            .current_dir(dir.path())
            .args(["catalog", "--flux-only", "out", "--flux-url", url])
            .args(root_profile())
            .args(["--set", "external.host=203.0.113.10"]));
        let text = refused(&out);
        assert!(
            text.contains("must not contain a user name or password"),
            "{text}"
        );
        for secret in ["PASSflux1234", "tokenonlyFLUX1234", "user:"] {
            assert!(!text.contains(secret), "{url}: {text}");
        }
        assert!(
            !dir.path().join("out").exists(),
            "{url}: something was written"
        );
    }
    // A negative control: SSH's user name without a password is how Flux names Git over SSH.
    let out = run(difyrender()
        .current_dir(dir.path())
        .args([
            "catalog",
            "--flux-only",
            "out",
            "--flux-url",
            "ssh://git@git.example.com/x.git",
        ])
        .args(root_profile())
        .args(["--set", "external.host=203.0.113.10"]));
    assert!(out.status.success(), "{}", transcript(&out));
}

#[test]
fn a_forged_render_marker_does_not_make_render_delete_a_file() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("precious.txt"), "mine").unwrap();
    std::fs::write(dir.join(".difyrender-render"), "precious.txt\n").unwrap();
    let text = refused(&render_into(&dir, &[]));
    assert!(text.contains("holds \"precious.txt\""), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.join("precious.txt")).unwrap(),
        "mine"
    );
    no_leftovers(parent.path());
}

fn catalog_into(dir: &Path, extra: &[&str]) -> Output {
    run(difyrender()
        .current_dir(dir)
        .args(["catalog", "--out", "repo", "--bloodhound"])
        .args(root_profile())
        .args(["--set", "external.host=203.0.113.10"])
        .args(extra))
}

/// Every file under `dir` (links not followed), by relative path, with its contents.
fn files_under(dir: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                walk(base, &path, out);
            } else if kind.is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&path).unwrap().display()),
                );
            } else {
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn catalog_out_is_all_or_nothing_and_follows_no_link() {
    let tmp = tempfile::tempdir().unwrap();
    let out = catalog_into(tmp.path(), &[]);
    assert!(out.status.success(), "{}", transcript(&out));
    let repo = tmp.path().join("repo");
    let first = files_under(&repo);
    assert!(first.contains_key(".bloodhound.yml"));

    // A failure part-way (.bloodhound.yml is a directory): nothing changes, nothing deleted,
    // even though this render would drop files (no bundled PostgreSQL).
    std::fs::remove_file(repo.join(".bloodhound.yml")).unwrap();
    std::fs::create_dir(repo.join(".bloodhound.yml")).unwrap();
    std::fs::write(repo.join(".bloodhound.yml/keep"), "x").unwrap();
    let mut before = files_under(&repo);
    let smaller = [
        "--set",
        "postgresql.enabled=false",
        "--set",
        "postgresql.external.host=db.example.com",
    ];
    let text = refused(&catalog_into(tmp.path(), &smaller));
    assert!(text.contains(".bloodhound.yml"), "{text}");
    assert_eq!(files_under(&repo), before);

    // A symlink planted at .bloodhound.yml: its target outside the repository is untouched.
    std::fs::remove_dir_all(repo.join(".bloodhound.yml")).unwrap();
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, repo.join(".bloodhound.yml")).unwrap();
    before = files_under(&repo);
    let text = refused(&catalog_into(tmp.path(), &smaller));
    assert!(text.contains("symbolic link"), "{text}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert_eq!(files_under(&repo), before);
    std::fs::remove_file(repo.join(".bloodhound.yml")).unwrap();

    // A symlinked applications/ would make catalog replace a folder outside the repository.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::rename(repo.join("applications"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, repo.join("applications")).unwrap();
    let outside = files_under(&elsewhere);
    let text = refused(&catalog_into(tmp.path(), &smaller));
    assert!(text.contains("symbolic link"), "{text}");
    assert_eq!(files_under(&elsewhere), outside);
    std::fs::remove_file(repo.join("applications")).unwrap();
    std::fs::rename(&elsewhere, repo.join("applications")).unwrap();

    // A negative control: with the links gone, the smaller render replaces the folder whole.
    let out = catalog_into(tmp.path(), &smaller);
    assert!(out.status.success(), "{}", transcript(&out));
    let after = files_under(&repo);
    assert!(
        after.len() < first.len(),
        "{} !< {}",
        after.len(),
        first.len()
    );
    assert!(after.keys().all(|k| !k.contains("postgresql")), "{after:?}");
    assert!(
        after.keys().all(|k| !k.contains(".difyrender-")),
        "{after:?}"
    );
}

#[test]
fn a_huge_extra_env_is_one_line_naming_the_value() {
    // 3.8 MB of dify.extraEnv: within the input limits, but every workload that reads it
    // would be larger than the API server stores. One line names the value, not a template.
    let dir = tempfile::tempdir().unwrap();
    let env: serde_json::Map<String, serde_json::Value> = (0..20_000)
        .map(|i| (format!("X{i}"), serde_json::Value::from("v".repeat(180))))
        .collect();
    let file = dir.path().join("big.yaml");
    std::fs::write(
        &file,
        serde_json::json!({"dify": {"extraEnv": env}}).to_string(),
    )
    .unwrap();
    let text = refused(&run(difyrender().args(base()).arg("-f").arg(&file)));
    let stderr: Vec<&str> = text.lines().filter(|l| l.contains("larger than")).collect();
    assert_eq!(stderr.len(), 1, "{text}");
    assert!(stderr[0].contains("(set by value dify.extraEnv)"), "{text}");
    assert!(!text.contains("content_sha256"), "{text}");
}

#[test]
fn key_names_need_an_existing_secret_except_where_secrets_render_prints_it() {
    // Without secrets.existingSecret, key names have no effect: refused, named.
    let text = refused(&run(difyrender().args(base()).args([
        "--set",
        "secrets.existingSecretKeys.SECRET_KEY=dify-secret-key",
    ])));
    assert!(
        text.contains("secrets.existingSecretKeys: has no effect without secrets.existingSecret"),
        "{text}"
    );
    // A negative control: `secrets render` prints the operator's Secret in its key names.
    let out = run(difyrender().args([
        "secrets",
        "render",
        "--set",
        "secrets.existingSecret=ops-keys",
        "--set",
        "secrets.existingSecretKeys.SECRET_KEY=dify-secret-key",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", transcript(&out));
    assert!(stdout.contains("name: ops-keys"), "{stdout}");
    assert!(stdout.contains("dify-secret-key:"), "{stdout}");
}
