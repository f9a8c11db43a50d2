//! Helpers shared by the integration tests: running the real binary, and keeping secrets out
//! of snapshots.
#![allow(dead_code)]

pub mod cluster;
pub mod keys_job;
pub mod kubelet;
pub mod lane;
pub mod stack;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The difyrender binary, with a clean environment: no master key unless given.
pub fn difyrender() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_difyrender"));
    cmd.env_remove("DIFY_SECRET_KEY").env_remove("KUBECONFIG");
    cmd
}

/// [`difyrender`] with its heap bounded: `prlimit --data=BYTES` (util-linux, essential in
/// Debian) limits the process's data segment and private writable mappings, so a run that
/// would hold more than `bytes` fails to allocate instead of succeeding slowly. How a test
/// bounds memory without timing anything.
pub fn difyrender_with_memory_limit(bytes: u64) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--data={bytes}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_difyrender"))
        .env_remove("DIFY_SECRET_KEY")
        .env_remove("KUBECONFIG");
    cmd
}

/// Everything a command printed, in one snapshot-friendly text.
pub fn transcript(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status
            .code()
            .map_or("signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The base64 forms a secret can take in a Secret's `data`.
pub fn encodings(secret: &str) -> Vec<String> {
    use base64::Engine;
    vec![
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
    ]
}

/// Replaces the values of every Secret's `data` with `[redacted]` and the keys checksum with
/// `[checksum]`, so snapshots hold no secret and no hash of one.
pub fn redact(text: &str) -> String {
    let mut out = String::new();
    let mut in_secret = false;
    let mut in_data = false;
    for line in text.lines() {
        if line.starts_with("---") {
            in_secret = false;
            in_data = false;
        }
        if line == "kind: Secret" {
            in_secret = true;
        }
        if in_secret && (line == "data:" || line == "stringData:") {
            in_data = true;
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if in_data && line.starts_with("  ") {
            let key = line.trim_start().split(':').next().unwrap_or_default();
            out.push_str(&format!("  {key}: '[redacted]'\n"));
            continue;
        }
        in_data = false;
        if let Some(pos) = line.find("difyrender.io/keys-checksum: ") {
            out.push_str(&line[..pos]);
            out.push_str("difyrender.io/keys-checksum: '[checksum]'\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Fails if any secret, or its base64 form, occurs in `text`.
pub fn assert_no_secrets(text: &str, secrets: &[String], context: &str) {
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        for form in encodings(secret) {
            assert!(
                !text.contains(&form),
                "{context}: a secret value leaked into the output"
            );
        }
    }
}

/// The master key plus every key derived from it.
pub fn secrets_of(master: &str) -> Vec<String> {
    let mut out = vec![master.to_owned()];
    for spec in difyrender::values::secrets::DERIVED_KEYS {
        out.push(difyrender::values::secrets::derive_key(master, spec));
    }
    out
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A release `dify` in namespace `dify` of the embedded chart, from `--set` values, with
/// `master` as `$DIFY_SECRET_KEY`: how the library-level tests render.
pub fn release_spec(set: Vec<String>, master: &str) -> difyrender::release::ReleaseSpec {
    difyrender::release::ReleaseSpec {
        chart: difyrender::chart::Chart::embedded(),
        sources: difyrender::values::ValueSources {
            set,
            ..Default::default()
        },
        secret_key_file: None,
        master_key_env: Some(master.into()),
        release: difyrender::render::Release {
            name: "dify".into(),
            namespace: "dify".into(),
        },
        injected: Default::default(),
        allow_unknown_release: false,
    }
}

/// The `/` profile every cluster test deploys: stock images at the root path, http, the test
/// cluster's StorageClass. Without namespace and host, which tests choose.
/// `secrets.externalSecret` with the store `vault` and its entry `dify/production`, making the
/// Secret `eso-keys` (the External Secrets Operator's ExternalSecret).
pub const ESO: &[&str] = &[
    "--set",
    "secrets.existingSecret=eso-keys",
    "--set",
    "secrets.externalSecret.enabled=true",
    "--set",
    "secrets.externalSecret.storeRef.name=vault",
    "--set",
    "secrets.externalSecret.remoteKey=dify/production",
];

pub fn root_profile() -> Vec<String> {
    [
        "expose.ingressClassName=kommander-traefik",
        "expose.path=/",
        "external.scheme=http",
        "storage.storageClassName=standard",
    ]
    .iter()
    .flat_map(|v| ["--set".to_owned(), v.to_string()])
    .collect()
}

/// Reads lines until one contains `needle` and returns all it read; fails if the stream ends
/// first. How tests wait for a command to reach a point, without sleeping.
pub fn read_until(reader: &mut impl std::io::BufRead, needle: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the output ended before {needle:?}: {seen}"
        );
        seen.push_str(&line);
        if line.contains(needle) {
            return seen;
        }
    }
}

/// Snapshots `text` as `snapshots/<name>.snap`, the project's one snapshot layout.
pub fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name.to_owned(), text));
}

/// A throwaway self-signed P-256 certificate and its key, `<name>.crt` and `<name>.key` in
/// `dir`, made by openssl for `subject`; `extra` adds arguments (a subjectAltName, say).
pub fn self_signed(dir: &Path, name: &str, subject: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", subject])
        .args(extra)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", transcript(&out));
    (crt, key)
}
