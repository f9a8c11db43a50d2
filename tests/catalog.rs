//! `difyrender catalog` (an NKP application-catalog entry of plain manifests) and
//! `difyrender secrets` (the keys Secret that entry reads). The entry is checked with
//! `kubectl kustomize`, against a copy of the metadata schema, after Flux's substitution by a
//! server-side dry run with strict validation on the real control plane (scripts/testenv), and
//! for secrets: none may be in it. The nkp CLI is not available here; see docs/nkp-catalog.md.

mod common;

use common::cluster::{kubectl, kubectl_json, kubectl_stdin, ok, strict_dry_run};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MASTER: &str = "catalog-test-master-key-0123456789";
const VERSION_DIR: &str = "applications/dify/1.16.1";

fn nkp_values() -> String {
    root()
        .join("examples/nkp.values.yaml")
        .to_string_lossy()
        .into_owned()
}

/// Values for NKP at the root path with the stock images: no Middleware.
fn root_values() -> Vec<String> {
    [root_profile(), args(&["--set", "external.host=192.0.2.10"])].concat()
}

/// Runs difyrender in `dir`, with the master key in the environment when given.
fn run_in(dir: &Path, args: &[String], key: Option<&str>) -> Output {
    let mut cmd = difyrender();
    cmd.current_dir(dir).args(args);
    if let Some(key) = key {
        cmd.env("DIFY_SECRET_KEY", key);
    }
    let out = cmd.output().expect("the binary runs");
    let mut secrets = secrets_of(MASTER);
    secrets.extend(secrets_of(difyrender::catalog::PLACEHOLDER_MASTER_KEY));
    assert_no_secrets(
        &String::from_utf8_lossy(&out.stderr),
        &secrets,
        "difyrender's stderr",
    );
    out
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Generates the entry into `repo` (relative to `dir`).
fn generate(dir: &Path, repo: &str, extra: &[String], key: Option<&str>) -> Output {
    let mut a = args(&["catalog", "--out", repo]);
    a.extend_from_slice(extra);
    run_in(dir, &a, key)
}

/// Every file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().to_string_lossy().into();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// Flux's post-build substitution; an unknown variable fails the test.
fn envsubst(text: &str, vars: &[(&str, &str)]) -> String {
    difyrender::catalog::substitute_like_flux(text, vars).unwrap_or_else(|e| panic!("{e}"))
}

/// The manifests folder's files in its kustomization's order.
fn manifest_files(version_dir: &Path) -> Vec<(String, String)> {
    let dir = version_dir.join("manifests");
    let k = docs(&read(&dir.join("kustomization.yaml"))).remove(0);
    k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = f.as_str().unwrap().to_owned();
            let text = read(&dir.join(&name));
            assert!(!text.is_empty(), "{name} is listed but missing");
            (name, text)
        })
        .collect()
}

/// The manifests as Flux applies them for this release.
fn substituted(version_dir: &Path, release: &str, namespace: &str) -> String {
    manifest_files(version_dir)
        .iter()
        .map(|(_, text)| {
            envsubst(
                text,
                &[("releaseName", release), ("releaseNamespace", namespace)],
            )
        })
        .collect()
}

fn docs(text: &str) -> Vec<Value> {
    difyrender::yaml::from_str_multiple(text).unwrap()
}

/// The tree as one text: each file's path, then its contents; the icon is shortened.
fn tree_text(files: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (path, text) in files {
        out.push_str(&format!("=== {path}\n"));
        for line in text.lines() {
            match line.strip_prefix("icon: ") {
                Some(icon) => out.push_str(&format!(
                    "icon: {}… ({} base64 characters)\n",
                    &icon[..40.min(icon.len())],
                    icon.len()
                )),
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out
}

fn kubectl_kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_nkp_example_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let out = generate(
        tmp.path(),
        "repo",
        &args(&["-f", &nkp_values(), "--bloodhound"]),
        None,
    );
    snapshot("catalog-output-nkp", &ok(&out));
    let files = tree(&tmp.path().join("repo"));
    snapshot("catalog-tree-nkp", &tree_text(&files));
    // Byte-identical when generated again, with or without a master key.
    let again = tempfile::tempdir().unwrap();
    ok(&generate(
        again.path(),
        "repo",
        &args(&["-f", &nkp_values(), "--bloodhound"]),
        Some(MASTER),
    ));
    assert_eq!(tree(&again.path().join("repo")), files);
}

#[test]
fn no_secret_no_namespace_and_a_separator_after_every_document() {
    let tmp = tempfile::tempdir().unwrap();
    // A master key in the environment, and explicit keys in values: none may reach the tree.
    let explicit = "explicit-postgres-password-9876";
    ok(&generate(
        tmp.path(),
        "repo",
        &args(&[
            "-f",
            &nkp_values(),
            "--bloodhound",
            "--set",
            &format!("secrets.postgresPassword={explicit}"),
            "--set",
            "secrets.openaiApiKey=sk-test-openai-key-abcdef",
        ]),
        Some(MASTER),
    ));
    let files = tree(&tmp.path().join("repo"));
    assert!(files.len() > 20, "{files:?}");
    let mut secrets = secrets_of(MASTER);
    secrets.extend(secrets_of(difyrender::catalog::PLACEHOLDER_MASTER_KEY));
    secrets.push(explicit.to_owned());
    secrets.push("sk-test-openai-key-abcdef".to_owned());
    for (path, text) in &files {
        assert_no_secrets(text, &secrets, path);
        assert!(!text.contains("placeholder"), "{path}");
        assert!(!text.contains("keys-checksum"), "{path}");
        if path.ends_with("metadata.yaml")
            || path.ends_with("user-inputs.yaml")
            || path == ".bloodhound.yml"
        {
            continue;
        }
        // One document per file, closed by `---` on its own line.
        assert!(text.ends_with("\n---\n"), "{path} does not end with ---");
        assert_eq!(
            text.lines().filter(|l| l.trim_end() == "---").count(),
            1,
            "{path}"
        );
        for doc in docs(text) {
            let kind = doc["kind"].as_str().unwrap();
            assert!(kind != "Secret" && kind != "Namespace", "{path}: {kind}");
        }
    }
    // A key in a values file is refused outright rather than written anywhere.
    let values = tmp.path().join("leak.yaml");
    std::fs::write(
        &values,
        format!(
            "dify:\n  extraEnv:\n    LEAK: {explicit}\nsecrets:\n  postgresPassword: {explicit}\n"
        ),
    )
    .unwrap();
    let leak = generate(
        tmp.path(),
        "leak",
        &args(&["-f", &nkp_values(), "-f", values.to_str().unwrap()]),
        None,
    );
    let text = transcript(&leak);
    assert_eq!(leak.status.code(), Some(2), "{text}");
    assert!(text.contains("would contain a secret value"), "{text}");
    assert!(!text.contains(explicit), "{text}");
    assert!(tree(&tmp.path().join("leak")).is_empty());
}

#[test]
fn kubectl_kustomize_builds_the_version_and_the_manifests_folders() {
    let tmp = tempfile::tempdir().unwrap();
    ok(&generate(
        tmp.path(),
        "repo",
        &args(&["-f", &nkp_values()]),
        None,
    ));
    let version_dir = tmp.path().join("repo").join(VERSION_DIR);

    let built = docs(&kubectl_kustomize(&version_dir));
    assert_eq!(built.len(), 1, "{built:?}");
    let flux = &built[0];
    assert_eq!(flux["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
    assert_eq!(flux["kind"], "Kustomization");
    assert_eq!(flux["metadata"]["name"], "${releaseName}-manifests");
    assert_eq!(flux["metadata"]["namespace"], "${releaseNamespace}");
    assert_eq!(flux["spec"]["path"], "./manifests");
    assert_eq!(flux["spec"]["sourceRef"]["kind"], "OCIRepository");
    assert_eq!(flux["spec"]["sourceRef"]["name"], "${releaseName}-source");
    assert_eq!(flux["spec"]["prune"], true);
    assert_eq!(flux["spec"]["wait"], true);
    assert!(flux["spec"].get("targetNamespace").is_none());
    // The path exists in the artifact (the version folder is the artifact's root).
    assert!(version_dir.join("manifests/kustomization.yaml").is_file());

    let files = manifest_files(&version_dir);
    let objects = docs(&kubectl_kustomize(&version_dir.join("manifests")));
    assert_eq!(objects.len(), files.len());
    let listed: std::collections::BTreeSet<String> = files.iter().map(|(f, _)| f.clone()).collect();
    let on_disk: std::collections::BTreeSet<String> = tree(&version_dir.join("manifests"))
        .into_keys()
        .filter(|f| f != "kustomization.yaml")
        .collect();
    assert_eq!(listed, on_disk, "every file is listed, and only those");
    // kustomize keeps the variables and the escapes as they are.
    let text = kubectl_kustomize(&version_dir.join("manifests"));
    assert!(text.contains("${releaseName}-api"), "{text}");
    docs(&envsubst(
        &text,
        &[("releaseName", "dify"), ("releaseNamespace", "ws")],
    ));
}

#[test]
fn every_name_selector_and_namespace_is_per_release() {
    let tmp = tempfile::tempdir().unwrap();
    ok(&generate(
        tmp.path(),
        "repo",
        &args(&["-f", &nkp_values()]),
        None,
    ));
    let version_dir = tmp.path().join("repo").join(VERSION_DIR);
    for (file, text) in manifest_files(&version_dir) {
        for doc in docs(&text) {
            let meta = &doc["metadata"];
            assert!(
                meta["name"]
                    .as_str()
                    .unwrap()
                    .starts_with("${releaseName}-"),
                "{file}"
            );
            assert_eq!(meta["namespace"], "${releaseNamespace}", "{file}");
            assert_eq!(
                meta["labels"]["app.kubernetes.io/instance"], "${releaseName}",
                "{file}"
            );
            let selector = match doc["kind"].as_str().unwrap() {
                "Deployment" | "StatefulSet" => doc["spec"]["selector"]["matchLabels"].clone(),
                "Service" => doc["spec"]["selector"].clone(),
                "NetworkPolicy" => {
                    let s = &doc["spec"]["podSelector"];
                    if s["matchLabels"].is_object() {
                        s["matchLabels"].clone()
                    } else {
                        assert!(s.to_string().contains("${releaseName}"), "{file}");
                        continue;
                    }
                }
                _ => continue,
            };
            assert_eq!(
                selector["app.kubernetes.io/instance"], "${releaseName}",
                "{file}: {selector}"
            );
        }
    }
}

#[test]
fn metadata_is_valid_against_the_schema() {
    let schema: Value = serde_json::from_str(&read(
        &root().join("tests/schemas/application-metadata.schema.json"),
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let icon = tmp.path().join("icon.svg");
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 8 8\"><circle cx=\"4\" cy=\"4\" r=\"4\"/></svg>\n";
    std::fs::write(&icon, svg).unwrap();
    for (repo, extra) in [
        ("default-icon", args(&["-f", &nkp_values()])),
        (
            "own-icon",
            [root_values(), args(&["--icon", icon.to_str().unwrap()])].concat(),
        ),
    ] {
        ok(&generate(tmp.path(), repo, &extra, None));
        let text = read(
            &tmp.path()
                .join(repo)
                .join(VERSION_DIR)
                .join("metadata.yaml"),
        );
        let metadata = difyrender::yaml::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&metadata)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{repo}: {errors:?}");
        assert_eq!(
            metadata["scope"],
            serde_json::json!(["workspace", "project"])
        );
        assert_eq!(metadata["allowMultipleInstances"], false);
        assert!(!metadata["supportLink"].as_str().unwrap().is_empty());
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(metadata["icon"].as_str().unwrap())
            .unwrap();
        let decoded = String::from_utf8(decoded).unwrap();
        if repo == "own-icon" {
            assert_eq!(decoded, svg);
        } else {
            assert!(decoded.starts_with("<svg"), "{decoded}");
        }
        // The overview lists what is fixed, and never a key.
        let overview = metadata["overview"].as_str().unwrap();
        for fixed in [
            "192.0.2.10",
            "kommander-traefik",
            "langgenius/dify-api:1.16.1",
        ] {
            assert!(overview.contains(fixed), "{repo}: {fixed}");
        }
    }
}

/// The schemas under tests/schemas are NKP's published files, byte for byte (the reference
/// holds them as published: shared/reference/nkp-catalog/).
#[test]
fn the_schemas_are_nkps_published_files() {
    for (ours, published) in [
        (
            "application-metadata.schema.json",
            "applicationmetadata.schema.json",
        ),
        (
            "application-user-inputs.schema.json",
            "applicationuserinputs.schema.json",
        ),
    ] {
        assert_eq!(
            read(&root().join("tests/schemas").join(ours)),
            read(
                &root()
                    .join("../shared/reference/nkp-catalog")
                    .join(published)
            ),
            "{ours}"
        );
    }
}

#[test]
fn the_published_schema_rejects_what_the_catalog_rejects() {
    let schema: Value = serde_json::from_str(&read(
        &root().join("tests/schemas/application-metadata.schema.json"),
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let valid = serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata"});
    assert!(validator.is_valid(&valid), "only `schema` is required");
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata", "extra": 1}),
        serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata", "scope": ["cluster"]}),
        serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata", "licensing": ["Enterprise"]}),
        serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata", "type": "partner"}),
        serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata", "certifications": ["fips"]}),
        serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata", "allowMultipleInstances": "yes"}),
        serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata", "k8sVersionSupport": "latest"}),
        // What difyrender wrote before: a list of versions, and a version with a suffix.
        serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata", "upgradesFrom": "1.10.0 || 1.10.1"}),
        serde_json::json!({"schema": "catalog.nkp.nutanix.com/v1/application-metadata", "upgradesFrom": "1.10.1-fix.1"}),
    ] {
        assert!(!validator.is_valid(&bad), "{bad}");
    }
    assert!(validator.is_valid(&serde_json::json!({
        "schema": "catalog.nkp.nutanix.com/v1/application-metadata",
        "k8sVersionSupport": ">=1.32.0 <1.35.0",
        "upgradesFrom": ">=1.10.0",
    })));
}

#[test]
fn literal_dollars_survive_flux_substitution() {
    let tmp = tempfile::tempdir().unwrap();
    let literal = "${HOME}/data $$ $(KEEP) a$b";
    ok(&generate(
        tmp.path(),
        "repo",
        &[
            root_values(),
            args(&["--set-string", &format!("dify.extraEnv.TEMPLATE={literal}")]),
        ]
        .concat(),
        None,
    ));
    let version_dir = tmp.path().join("repo").join(VERSION_DIR);
    let api = read(&version_dir.join("manifests/5-deployment-api.yaml"));
    assert!(
        api.contains("$${HOME}/data $$$ $(KEEP) a$b"),
        "not escaped for Flux: {api}"
    );
    let applied = docs(&substituted(&version_dir, "dify", "ws"));
    let api = applied
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "dify-api")
        .unwrap();
    let env = api["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let value = env.iter().find(|e| e["name"] == "TEMPLATE").unwrap();
    assert_eq!(value["value"], literal);
    // Kubernetes' own $(VAR) expansion is left alone.
    assert!(env.iter().any(|e| {
        e["value"]
            .as_str()
            .is_some_and(|v| v.starts_with("redis://:$(REDIS_PASSWORD_URL)@dify-redis:"))
    }));
}

#[test]
fn regenerating_changes_only_this_version_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let put = |rel: &str, text: &str| {
        let p = repo.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put("README.md", "# our catalog\n");
    put(".bloodhound.yml", "k8s_versions:\n  - 1.31.0\n");
    put(
        "applications/other/2.0.0/metadata.yaml",
        "schema: catalog.nkp.nutanix.com/v1/application-metadata\n",
    );
    put(
        "applications/other/2.0.0/helmrelease/cm.yaml",
        "kind: ConfigMap\n---\n",
    );
    put(
        "applications/dify/1.10.0/metadata.yaml",
        "schema: catalog.nkp.nutanix.com/v1/application-metadata\n",
    );
    put(
        "applications/dify/1.10.0/manifests/5-deployment-api.yaml",
        "kind: Deployment\n---\n",
    );
    let values = args(&["-f", &nkp_values()]);
    ok(&generate(tmp.path(), "repo", &values, None));
    let fresh: BTreeMap<String, String> = tree(&repo.join(VERSION_DIR));
    // Leftovers of an older generation and a hand edit, inside this version folder.
    put(
        &format!("{VERSION_DIR}/manifests/5-deployment-retired.yaml"),
        "kind: Deployment\n---\n",
    );
    put(
        &format!("{VERSION_DIR}/helmrelease/helmrelease.yaml"),
        "kind: HelmRelease\n---\n",
    );
    put(&format!("{VERSION_DIR}/metadata.yaml"), "edited: true\n");
    let outside = |t: BTreeMap<String, String>| -> BTreeMap<String, String> {
        t.into_iter()
            .filter(|(p, _)| !p.starts_with(VERSION_DIR))
            .collect()
    };
    let before = outside(tree(&repo));
    assert_eq!(before.len(), 6);

    let out = ok(&generate(tmp.path(), "repo", &values, None));
    snapshot("catalog-output-regenerate", &out);
    assert_eq!(
        outside(tree(&repo)),
        before,
        "files outside {VERSION_DIR} changed"
    );
    assert_eq!(tree(&repo.join(VERSION_DIR)), fresh);
    assert!(!repo.join(VERSION_DIR).join("helmrelease").exists());

    // --bloodhound replaces the repository's .bloodhound.yml, and nothing else outside.
    ok(&generate(
        tmp.path(),
        "repo",
        &[values.clone(), args(&["--bloodhound"])].concat(),
        None,
    ));
    let after = outside(tree(&repo));
    assert_ne!(after[".bloodhound.yml"], before[".bloodhound.yml"]);
    for (path, text) in &before {
        if path != ".bloodhound.yml" {
            assert_eq!(&after[path], text, "{path}");
        }
    }

    // Another version is another folder; this one stays.
    ok(&generate(
        tmp.path(),
        "repo",
        &[values, args(&["--app-version", "1.11.4-nkp.1"])].concat(),
        None,
    ));
    assert_eq!(tree(&repo.join(VERSION_DIR)), fresh);
    assert!(
        repo.join("applications/dify/1.11.4-nkp.1/manifests.yaml")
            .is_file()
    );
}

#[test]
fn catalog_errors() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("icon.png"), [0x89, b'P', b'N', b'G', 0xff]).unwrap();
    let mut text = String::new();
    for (name, a) in [
        ("no values", args(&["catalog", "--out", "repo"])),
        (
            "release name given",
            [
                args(&["catalog", "--out", "repo", "--release", "team-a"]),
                root_values(),
            ]
            .concat(),
        ),
        (
            "bad version",
            [
                args(&["catalog", "--out", "repo", "--app-version", "1.11"]),
                root_values(),
            ]
            .concat(),
        ),
        (
            "bad app name",
            [
                args(&["catalog", "--out", "repo", "--app-name", "Dify/x"]),
                root_values(),
            ]
            .concat(),
        ),
        (
            "icon not SVG",
            [
                args(&["catalog", "--out", "repo", "--icon", "icon.png"]),
                root_values(),
            ]
            .concat(),
        ),
        (
            "icon missing",
            [
                args(&["catalog", "--out", "repo", "--icon", "missing.svg"]),
                root_values(),
            ]
            .concat(),
        ),
    ] {
        let out = run_in(tmp.path(), &a, None);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", transcript(&out));
        assert!(out.stdout.is_empty());
        text.push_str(&format!("### {name}\n{}\n", transcript(&out)));
    }
    assert!(tree(&tmp.path().join("repo")).is_empty(), "nothing written");
    snapshot("catalog-errors", &text);
}

#[test]
fn secrets_render_prints_only_the_keys_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(
        tmp.path(),
        &args(&[
            "secrets",
            "render",
            "-n",
            "kommander-default-workspace",
            "--release",
            "dify",
        ]),
        Some(MASTER),
    );
    let text = ok(&out);
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let secret = docs(&stdout);
    assert_eq!(secret.len(), 1);
    assert_eq!(secret[0]["kind"], "Secret");
    assert_eq!(secret[0]["metadata"]["name"], "dify-keys");
    assert_eq!(
        secret[0]["metadata"]["namespace"],
        "kommander-default-workspace"
    );
    use base64::Engine;
    assert_eq!(
        secret[0]["data"]["SECRET_KEY"],
        base64::engine::general_purpose::STANDARD.encode(MASTER)
    );
    let redacted = redact(&text);
    assert_no_secrets(&redacted, &secrets_of(MASTER), "redacted secrets render");
    snapshot("catalog-secrets-render", &redacted);

    let missing = run_in(tmp.path(), &args(&["secrets", "render"]), None);
    assert_eq!(missing.status.code(), Some(2));
    snapshot("catalog-secrets-render-no-key", &transcript(&missing));
}

#[test]
fn the_secret_holds_every_key_the_manifests_read() {
    let tmp = tempfile::tempdir().unwrap();
    ok(&generate(
        tmp.path(),
        "repo",
        &args(&["-f", &nkp_values()]),
        None,
    ));
    let version_dir = tmp.path().join("repo").join(VERSION_DIR);
    let secret = run_in(
        tmp.path(),
        &[
            args(&["secrets", "render", "-n", "ws", "--release", "team-a"]),
            args(&["-f", &nkp_values()]),
        ]
        .concat(),
        Some(MASTER),
    );
    let secret = &docs(&String::from_utf8(secret.stdout).unwrap())[0];
    let keys = secret["data"].as_object().unwrap();
    let manifests = substituted(&version_dir, "team-a", "ws");
    let mut refs = 0;
    for doc in docs(&manifests) {
        let text = doc.to_string();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("\"secretKeyRef\":") {
            let r: Value = serde_json::Deserializer::from_str(&rest[i + 15..])
                .into_iter::<Value>()
                .next()
                .unwrap()
                .unwrap();
            assert_eq!(r["name"], secret["metadata"]["name"]);
            assert!(keys.contains_key(r["key"].as_str().unwrap()), "{r}");
            refs += 1;
            rest = &rest[i + 15..];
        }
    }
    assert!(refs > 20, "{refs} secret references");
}

// ---------------------------------------------------------------------------
// On the real control plane

fn kubeconfig() -> &'static PathBuf {
    common::cluster::shared("catalog")
}

#[test]
fn the_api_server_accepts_the_substituted_entry_with_strict_validation() {
    let kc = kubeconfig();
    for (profile, namespace, values) in [
        ("nkp at /dify", "t-cat-nkp", args(&["-f", &nkp_values()])),
        ("root path", "t-cat-root", root_values()),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        ok(&generate(tmp.path(), "repo", &values, None));
        let version_dir = tmp.path().join("repo").join(VERSION_DIR);
        ok(&kubectl(&["create", "namespace", namespace], kc));
        let manifests = substituted(&version_dir, "team-a", namespace);
        let text = strict_dry_run(&manifests, "kustomize-controller", kc, profile);
        assert!(
            !text.to_lowercase().contains("warning"),
            "{profile}: {text}"
        );
        if profile == "nkp at /dify" {
            assert!(
                text.contains("middleware.traefik.io/team-a-stripprefix"),
                "{text}"
            );
        }
    }
}

#[test]
fn secrets_apply_creates_the_secret_the_applied_entry_reads() {
    let kc = kubeconfig();
    let ns = "t-cat-secret";
    ok(&kubectl(&["create", "namespace", ns], kc));
    let tmp = tempfile::tempdir().unwrap();
    let apply_secret = |key: &str| {
        let out = run_in(
            tmp.path(),
            &args(&[
                "secrets",
                "apply",
                "--kubeconfig",
                kc.to_str().unwrap(),
                "-n",
                ns,
                "--release",
                "team-a",
            ]),
            Some(key),
        );
        let text = transcript(&out);
        assert_no_secrets(&text, &secrets_of(key), "secrets apply");
        text
    };
    let mut text = String::new();
    text.push_str(&format!("### first\n{}", apply_secret(MASTER)));
    text.push_str(&format!("### again\n{}", apply_secret(MASTER)));
    let secret = kubectl_json(&["get", "secret", "team-a-keys", "-n", ns], kc);
    let managers = secret["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        managers
            .iter()
            .all(|m| m["manager"] == "difyrender" && m["operation"] == "Apply"),
        "{managers:?}"
    );
    use base64::Engine;
    assert_eq!(
        secret["data"]["SECRET_KEY"],
        base64::engine::general_purpose::STANDARD.encode(MASTER)
    );

    // The entry, as Flux applies it, in the same namespace under the same release name.
    ok(&generate(tmp.path(), "repo", &root_values(), None));
    let version_dir = tmp.path().join("repo").join(VERSION_DIR);
    let manifests = substituted(&version_dir, "team-a", ns);
    ok(&kubectl_stdin(
        &["apply", "--server-side", "--validate=strict", "-f", "-"],
        &manifests,
        kc,
    ));
    let live = kubectl_json(&["get", "deploy,sts,job", "-n", ns], kc);
    let keys = secret["data"].as_object().unwrap();
    let mut refs = 0;
    for item in live["items"].as_array().unwrap() {
        let spec = &item["spec"]["template"]["spec"];
        for c in spec["containers"].as_array().unwrap() {
            for e in c["env"].as_array().into_iter().flatten() {
                if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
                    assert_eq!(r["name"], "team-a-keys");
                    assert!(keys.contains_key(r["key"].as_str().unwrap()), "{r}");
                    refs += 1;
                }
            }
        }
    }
    assert!(refs > 20, "{refs}");

    // Another master key: the Secret is updated, and the operator is warned.
    text.push_str(&format!(
        "### another master key\n{}",
        apply_secret("another-master-key-000000000")
    ));
    snapshot("catalog-secrets-apply", &text);
}

#[test]
fn one_version_folder_per_release_with_upgrades_from_the_table() {
    let schema: Value = serde_json::from_str(&read(
        &root().join("tests/schemas/application-metadata.schema.json"),
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let extra = [
        root_values(),
        args(&[
            "--dify-version",
            "1.13.3",
            "--dify-version",
            "1.14.1",
            "--dify-version",
            "1.16.1",
        ]),
    ]
    .concat();
    let out = ok(&generate(tmp.path(), "repo", &extra, None));
    assert!(
        out.contains("entry dify 1.13.3")
            && out.contains("entry dify 1.14.1")
            && out.contains("entry dify 1.16.1"),
        "{out}"
    );
    let table = difyrender::chart::Chart::embedded().versions;
    for version in ["1.13.3", "1.14.1", "1.16.1"] {
        let dir = tmp.path().join("repo/applications/dify").join(version);
        let metadata = difyrender::yaml::from_str(&read(&dir.join("metadata.yaml"))).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&metadata)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{version}: {errors:?}");
        let range = metadata["upgradesFrom"].as_str().unwrap();
        let older = table
            .releases
            .iter()
            .map(|r| r.version.as_str())
            .take_while(|v| *v != version);
        assert_eq!(
            range,
            format!(">={} <{version}", older.clone().next().unwrap())
        );
        // Read as semver reads it: every older release of the table matches (but the one
        // hotfix, a pre-release to semver: docs/catalog.md), this one and newer ones do not.
        let req = semver_req(range);
        for v in older {
            assert_eq!(req.matches(&semver(v)), !v.contains('-'), "{version}: {v}");
        }
        for v in table
            .releases
            .iter()
            .map(|r| r.version.as_str())
            .skip_while(|v| *v != version)
        {
            assert!(!req.matches(&semver(v)), "{version}: {v}");
        }
        // Each folder runs its own release's images.
        let manifests = tree(&dir.join("manifests"));
        let images: String = manifests.values().cloned().collect();
        assert!(
            images.contains(&format!("langgenius/dify-api:{version}")),
            "{version}"
        );
    }
    let daemon = |v: &str| {
        tree(
            &tmp.path()
                .join("repo/applications/dify")
                .join(v)
                .join("manifests"),
        )
        .values()
        .any(|t| t.contains("langgenius/dify-plugin-daemon:0.5.3-local"))
    };
    assert!(daemon("1.13.3") && !daemon("1.14.1"));
    // 1.16.1's folder carries its agent stack; 1.14.1's none.
    let agent = |v: &str| {
        tree(
            &tmp.path()
                .join("repo/applications/dify")
                .join(v)
                .join("manifests"),
        )
        .values()
        .any(|t| t.contains("langgenius/dify-agent-backend:1.16.1"))
    };
    assert!(agent("1.16.1") && !agent("1.14.1"));
    // --app-version names one folder: refused with several releases, before anything is written.
    let refused = generate(
        tmp.path(),
        "other",
        &[extra.clone(), args(&["--app-version", "9.9.9"])].concat(),
        None,
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(!tmp.path().join("other").exists());
}

fn semver(version: &str) -> semver::Version {
    semver::Version::parse(version).unwrap()
}

/// NKP's range (`>=A <B`, space-separated comparators) as a semver requirement.
fn semver_req(range: &str) -> semver::VersionReq {
    semver::VersionReq::parse(&range.split_whitespace().collect::<Vec<_>>().join(", ")).unwrap()
}

/// The range of every release in the table, the hotfix included, against semver's reading.
#[test]
fn upgrades_from_is_one_range_of_every_older_release() {
    use difyrender::catalog::metadata::upgrades_from_range;
    let table = difyrender::chart::Chart::embedded().versions;
    let versions: Vec<&str> = table.releases.iter().map(|r| r.version.as_str()).collect();
    let schema: Value = serde_json::from_str(&read(
        &root().join("tests/schemas/application-metadata.schema.json"),
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert_eq!(
        upgrades_from_range(versions[0], &[]),
        None,
        "the oldest upgrades from nothing"
    );
    for (i, version) in versions.iter().enumerate().skip(1) {
        let range = upgrades_from_range(version, &table.upgrades_from(version)).unwrap();
        let doc = serde_json::json!({"schema": difyrender::catalog::metadata::METADATA_SCHEMA, "upgradesFrom": range});
        assert!(validator.is_valid(&doc), "{version}: {range}");
        let req = semver_req(&range);
        for older in &versions[..i] {
            assert_eq!(
                req.matches(&semver(older)),
                !older.contains('-'),
                "{version} from {older}: {range}"
            );
        }
        for later in &versions[i..] {
            assert!(
                !req.matches(&semver(later)),
                "{version} from {later}: {range}"
            );
        }
    }
}

/// With secrets.externalSecret the entry carries the ExternalSecret that makes the keys Secret,
/// and its overview asks for the store's entry instead of `difyrender secrets apply`: nothing is
/// left to do by hand before enabling it.
#[test]
fn an_entry_with_external_secrets_needs_no_manual_step() {
    let tmp = tempfile::tempdir().unwrap();
    ok(&generate(
        tmp.path(),
        "repo",
        &[
            root_values(),
            args(&[
                "--set",
                "secrets.existingSecret=dify-keys-eso",
                "--set",
                "secrets.externalSecret.enabled=true",
                "--set",
                "secrets.externalSecret.storeRef.name=vault",
                "--set",
                "secrets.externalSecret.remoteKey=dify/production",
            ]),
        ]
        .concat(),
        None,
    ));
    let dir = tmp.path().join("repo").join(VERSION_DIR);
    let manifests = tree(&dir.join("manifests"));
    let external: Vec<&String> = manifests
        .iter()
        .filter(|(_, text)| text.contains("kind: ExternalSecret"))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(external.len(), 1, "{:?}", manifests.keys());
    assert!(!manifests.values().any(|t| t.contains("kind: Secret\n")));
    let metadata = read(&dir.join("metadata.yaml"));
    assert!(metadata.contains("External Secrets Operator"), "{metadata}");
    assert!(!metadata.contains("difyrender secrets apply"), "{metadata}");
    // The store and its entry are the form's choices: one entry per instance, from the UI.
    let form = user_inputs(&dir);
    let vars = form_variables(&dir);
    assert_eq!(vars["keysStoreName"], "vault");
    assert_eq!(vars["keysRemoteKey"], "dify/production");
    let fields = form["groups"][0]["fields"].as_array().unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names[..5],
        [
            "release",
            "path",
            "externalHost",
            "keysStoreName",
            "keysRemoteKey"
        ]
    );
    assert!(
        form["groups"][0]["description"]
            .as_str()
            .unwrap()
            .contains("External Secrets store"),
        "{form}"
    );
    let cm = difyrender::catalog::inputs::answer_form(
        &form,
        &[
            ("keysStoreName", "vault-team-b"),
            ("keysRemoteKey", "dify/team-b"),
        ],
    )
    .unwrap()
    .remove(0);
    let data: Vec<(String, String)> = cm["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let mut flux_vars: Vec<(&str, &str)> = vec![("releaseName", "b"), ("releaseNamespace", "ns-b")];
    flux_vars.extend(data.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let text = read(&dir.join("manifests").join(external[0]));
    let es = docs(&envsubst(&text, &flux_vars)).remove(0);
    assert_eq!(es["spec"]["secretStoreRef"]["name"], "vault-team-b");
    assert_eq!(es["spec"]["dataFrom"][0]["extract"]["key"], "dify/team-b");
    let es = docs(&envsubst(&text, &flux_vars[..2])).remove(0);
    assert_eq!(es["spec"]["secretStoreRef"]["name"], "vault");
    // Without secrets.externalSecret there are no such fields (negative control).
    let plain = tempfile::tempdir().unwrap();
    ok(&generate(plain.path(), "repo", &root_values(), None));
    let vars = form_variables(&plain.path().join("repo").join(VERSION_DIR));
    assert!(!vars.contains_key("keysStoreName"), "{vars:?}");
}

/// `user-inputs.yaml` of a generated version folder.
fn user_inputs(version_dir: &Path) -> Value {
    difyrender::yaml::from_str(&read(&version_dir.join("user-inputs.yaml"))).unwrap()
}

/// The `${name:=default}` variables the manifests read, besides the release's own.
fn form_variables(version_dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (file, text) in manifest_files(version_dir) {
        // Escaped `$${` is a literal, not a variable.
        let text = text.replace("$${", "");
        for part in text.split("${").skip(1) {
            let body = &part[..part.find('}').expect("a closed ${")];
            let Some((name, default)) = body.split_once(":=") else {
                continue;
            };
            let old = out.insert(name.to_owned(), default.to_owned());
            assert!(
                old.is_none() || old.as_deref() == Some(default),
                "{file}: {name} with two defaults"
            );
        }
    }
    out
}

#[test]
fn user_inputs_are_valid_against_the_published_schema() {
    let schema: Value = serde_json::from_str(&read(
        &root().join("tests/schemas/application-user-inputs.schema.json"),
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (repo, extra) in [
        ("nkp", args(&["-f", &nkp_values()])),
        ("root", root_values()),
        (
            "releases",
            [
                root_values(),
                args(&["--dify-version", "1.13.3", "--dify-version", "1.16.1"]),
            ]
            .concat(),
        ),
    ] {
        ok(&generate(tmp.path(), repo, &extra, None));
        let apps = tmp.path().join(repo).join("applications/dify");
        for version in std::fs::read_dir(&apps).unwrap() {
            let dir = version.unwrap().path();
            let form = user_inputs(&dir);
            let errors: Vec<String> = validator
                .iter_errors(&form)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", dir.display());
        }
    }
    // Negative controls: the published schema refuses what NKP refuses.
    let form = user_inputs(&tmp.path().join("root").join(VERSION_DIR));
    let mut options_on_a_string = form.clone();
    options_on_a_string["groups"][0]["fields"][2]["options"] =
        serde_json::json!([{"label": "a", "value": "a"}]);
    let mut secret_template = form.clone();
    secret_template["resources"][0]["template"]["kind"] = "Secret".into();
    let mut bad_type = form.clone();
    bad_type["groups"][0]["fields"][2]["type"] = "text".into();
    let mut no_schema = form.clone();
    no_schema.as_object_mut().unwrap().remove("schema");
    for (what, bad) in [
        ("options on a string field", options_on_a_string),
        ("a Secret template", secret_template),
        ("an unknown field type", bad_type),
        ("no schema", no_schema),
    ] {
        assert!(!validator.is_valid(&bad), "{what} passed the schema");
    }
}

#[test]
fn every_variable_the_manifests_read_is_a_field_the_form_writes() {
    let tmp = tempfile::tempdir().unwrap();
    ok(&generate(
        tmp.path(),
        "repo",
        &args(&[
            "-f",
            &nkp_values(),
            "--set",
            "external.host=dify.example.com",
        ]),
        None,
    ));
    let dir = tmp.path().join("repo").join(VERSION_DIR);
    let form = user_inputs(&dir);
    let vars = form_variables(&dir);
    let expected: Vec<&str> = vec![
        "externalHost",
        "fileStorageSize",
        "pluginDaemonStorageSize",
        "postgresqlStorageSize",
        "redisStorageSize",
        "storageClassName",
        "weaviateStorageSize",
    ];
    assert_eq!(
        vars.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(vars["externalHost"], "dify.example.com");
    assert_eq!(vars["storageClassName"], "nutanix-volume");
    // The editable fields are exactly the variables, with the same defaults; the ConfigMap
    // template writes each under its own name.
    let fields = form["groups"][0]["fields"].as_array().unwrap();
    let editable: BTreeMap<String, String> = fields
        .iter()
        .filter(|f| f["readOnly"] != true)
        .map(|f| {
            assert_eq!(f["required"], true, "{f}");
            (
                f["name"].as_str().unwrap().to_owned(),
                f["default"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(editable, vars);
    let template = &form["resources"][0]["template"];
    assert_eq!(template["kind"], "ConfigMap");
    assert_eq!(template["metadata"]["name"], "dify-config-overrides");
    for name in vars.keys() {
        assert_eq!(template["data"][name], format!("{{{{ {name} }}}}"));
    }
    // The entry's Kustomization reads that ConfigMap, optionally (NKP 2.16 has no form).
    let kustomization = docs(&read(&dir.join("manifests.yaml"))).remove(0);
    assert_eq!(
        kustomization["spec"]["postBuild"]["substituteFrom"],
        serde_json::json!([{"kind": "ConfigMap", "name": "dify-config-overrides", "optional": true}])
    );
    // The read-only fields say what the version folder fixes.
    assert_eq!(fields[0]["name"], "release");
    assert_eq!(fields[0]["default"], "1.16.1");
    assert_eq!(fields[1]["name"], "path");
    assert_eq!(fields[1]["default"], "/dify");

    // Answers go where they belong; without answers (NKP 2.16) the generation values stay.
    let answers = [
        ("externalHost", "dify.team-b.example"),
        ("storageClassName", "nutanix-files"),
        ("fileStorageSize", "25Gi"),
        ("postgresqlStorageSize", "40Gi"),
    ];
    let cm = difyrender::catalog::inputs::answer_form(&form, &answers)
        .unwrap()
        .remove(0);
    let data: Vec<(String, String)> = cm["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let mut flux_vars: Vec<(&str, &str)> = vec![("releaseName", "b"), ("releaseNamespace", "ns-b")];
    flux_vars.extend(data.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let objects = |vars: &[(&str, &str)]| -> Vec<Value> {
        manifest_files(&dir)
            .iter()
            .map(|(_, t)| docs(&envsubst(t, vars)).remove(0))
            .collect()
    };
    let find = |objs: &[Value], kind: &str, name: &str| -> Value {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} {name}"))
    };
    let answered = objects(&flux_vars);
    let text = serde_json::to_string(&answered).unwrap();
    assert!(
        !text.contains("dify.example.com"),
        "the default host remains"
    );
    assert!(text.contains("https://dify.team-b.example/dify"));
    let storage = find(&answered, "PersistentVolumeClaim", "b-storage");
    assert_eq!(storage["spec"]["storageClassName"], "nutanix-files");
    assert_eq!(storage["spec"]["resources"]["requests"]["storage"], "25Gi");
    let pg = find(&answered, "StatefulSet", "b-postgresql");
    let claim = &pg["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["resources"]["requests"]["storage"], "40Gi");
    assert_eq!(claim["storageClassName"], "nutanix-files");
    // Unanswered: the form's default, which is the generation value.
    let redis = find(&answered, "StatefulSet", "b-redis");
    assert_eq!(
        redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "2Gi"
    );
    let plain = objects(&[("releaseName", "b"), ("releaseNamespace", "ns-b")]);
    let text = serde_json::to_string(&plain).unwrap();
    assert!(text.contains("https://dify.example.com/dify"));
    assert!(!text.contains("team-b"));
    assert_eq!(
        find(&plain, "PersistentVolumeClaim", "b-storage")["spec"]["storageClassName"],
        "nutanix-volume"
    );
    // An empty answer is no answer: Flux's `:=` takes the default.
    let empty = objects(&[
        ("releaseName", "b"),
        ("releaseNamespace", "ns-b"),
        ("externalHost", ""),
    ]);
    assert!(
        serde_json::to_string(&empty)
            .unwrap()
            .contains("https://dify.example.com/dify")
    );
    // A required field without answer or default stops the form (negative control).
    let mut no_default = form.clone();
    no_default["groups"][0]["fields"][2]
        .as_object_mut()
        .unwrap()
        .remove("default");
    let err = difyrender::catalog::inputs::answer_form(&no_default, &[]).unwrap_err();
    assert!(err.contains("externalHost"), "{err}");
}

/// `user-inputs.yaml` of `dir`, which must be valid against NKP's published schema.
fn valid_form(dir: &Path) -> Value {
    let schema: Value = serde_json::from_str(&read(
        &root().join("tests/schemas/application-user-inputs.schema.json"),
    ))
    .unwrap();
    let form = user_inputs(dir);
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&form)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{}: {errors:?}", dir.display());
    form
}

/// The form's field `name`.
fn form_field(form: &Value, name: &str) -> Value {
    form["groups"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("a {name} field"))
}

/// The env of the first container of the entry's Job of `component`.
fn job_env(dir: &Path, component: &str) -> Vec<Value> {
    let job = manifest_files(dir)
        .into_iter()
        .map(|(_, text)| docs(&text).remove(0))
        .find(|o| {
            o["kind"] == "Job"
                && o["metadata"]["labels"]["app.kubernetes.io/component"] == component
        })
        .unwrap_or_else(|| panic!("the {component} Job"));
    job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone()
}

/// The bootstrap Job's provider key as a form field (`bootstrap.provider.apiKeySecret`): a
/// `password` field, valid against the published schema, whose FederatedSecret template makes
/// exactly the Secret and key the entry's Job reads. Required unless `apiKeySecret.optional`:
/// then the Job's reference is optional too, and an empty answer is an empty key. A required
/// key left unanswered stops the form (Kommander's form refuses to submit), and without
/// bootstrap there is no such field (the negative controls).
#[test]
fn the_model_key_is_a_password_field_whose_federated_secret_the_job_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = |optional: bool| -> Vec<String> {
        let mut set = root_values();
        for v in [
            "bootstrap.enabled=true",
            "bootstrap.admin.email=admin@example.com",
            "bootstrap.provider.endpointUrl=https://nai.example.com/api/v1",
            "bootstrap.provider.models[0]=llama-3-1-8b",
            "bootstrap.provider.apiKeySecret.name=nai",
            "bootstrap.provider.apiKeySecret.key=api-key",
            &format!("bootstrap.provider.apiKeySecret.optional={optional}"),
        ] {
            set.extend(["--set".to_owned(), v.to_owned()]);
        }
        set
    };
    let answer = "sk-form-answer-0123456789";
    for optional in [false, true] {
        let repo = format!("optional-{optional}");
        ok(&generate(tmp.path(), &repo, &bootstrap(optional), None));
        let dir = tmp.path().join(&repo).join(VERSION_DIR);
        let form = valid_form(&dir);
        let field = form_field(&form, "modelApiKey");
        assert_eq!(field["type"], "password");
        assert_eq!(field["required"], !optional, "{field}");
        assert!(field.get("default").is_none(), "{field}");
        let template = &form["resources"][1]["template"];
        assert_eq!(template["kind"], "FederatedSecret", "{form}");
        assert_eq!(template["metadata"]["name"], "nai");
        assert_eq!(
            template["spec"]["template"]["stringData"]["api-key"],
            "{{ modelApiKey }}"
        );

        // The Job of the entry reads that Secret and key, optionally exactly when the field is.
        let env = job_env(&dir, "bootstrap");
        let key = env
            .iter()
            .find(|e| e["name"] == "PROVIDER_API_KEY")
            .unwrap();
        let reference = &key["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], "nai");
        assert_eq!(reference["key"], "api-key");
        assert_eq!(reference["optional"] == true, optional, "{reference}");

        // Answered: the propagated Secret holds the answer under the Job's key.
        let made: Vec<Value> =
            difyrender::catalog::inputs::answer_form(&form, &[("modelApiKey", answer)])
                .unwrap()
                .into_iter()
                .map(difyrender::catalog::inputs::as_propagated)
                .collect();
        let secret = made
            .iter()
            .find(|o| o["kind"] == "Secret")
            .expect("a Secret");
        assert_eq!(secret["metadata"]["name"], "nai");
        assert_eq!(secret["stringData"]["api-key"], answer);
        assert!(
            !made[0]["data"].to_string().contains(answer),
            "not in the ConfigMap"
        );

        // Unanswered: required stops the form; optional gives an empty key.
        match difyrender::catalog::inputs::answer_form(&form, &[]) {
            Err(e) => {
                assert!(!optional, "{e}");
                assert!(e.contains("modelApiKey"), "{e}");
            }
            Ok(objects) => {
                assert!(optional, "a required key was left unanswered");
                assert_eq!(objects[1]["spec"]["template"]["stringData"]["api-key"], "");
            }
        }
    }
    // Without bootstrap: one template (the ConfigMap), no key field.
    ok(&generate(tmp.path(), "plain", &root_values(), None));
    let form = user_inputs(&tmp.path().join("plain").join(VERSION_DIR));
    assert_eq!(form["resources"].as_array().unwrap().len(), 1);
    assert!(!form.to_string().contains("modelApiKey"));
}

/// `--keys in-cluster`: the form's optional `masterKey` password field, valid against the
/// published schema, makes (through its FederatedSecret) the Secret and key the keys Job reads,
/// optionally; the entry holds the keys Secret empty and no key. Keys that cannot be made in the
/// cluster are refused by name, with nothing written (the negative controls).
#[test]
fn keys_in_the_cluster_take_the_master_key_from_an_optional_form_field() {
    let tmp = tempfile::tempdir().unwrap();
    let in_cluster = [args(&["--keys", "in-cluster"]), root_values()].concat();
    ok(&generate(tmp.path(), "repo", &in_cluster, None));
    let dir = tmp.path().join("repo").join(VERSION_DIR);
    let form = valid_form(&dir);
    let field = form_field(&form, "masterKey");
    assert_eq!(field["type"], "password");
    assert_eq!(field["required"], false);
    let made: Vec<Value> = difyrender::catalog::inputs::answer_form(
        &form,
        &[("masterKey", "form-master-key-0123456789abcdef")],
    )
    .unwrap()
    .into_iter()
    .map(difyrender::catalog::inputs::as_propagated)
    .collect();
    let secret = made.iter().find(|o| o["kind"] == "Secret").unwrap();
    assert_eq!(secret["metadata"]["name"], "dify-master-key");
    assert_eq!(
        secret["stringData"]["SECRET_KEY"],
        "form-master-key-0123456789abcdef"
    );
    let objects: Vec<Value> = manifest_files(&dir)
        .into_iter()
        .map(|(_, text)| docs(&text).remove(0))
        .collect();
    let env = job_env(&dir, "keys");
    let master = env.iter().find(|e| e["name"] == "MASTER_KEY").unwrap();
    assert_eq!(
        master["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "dify-master-key", "key": "SECRET_KEY", "optional": true})
    );
    let keys = objects
        .iter()
        .find(|o| o["kind"] == "Secret")
        .expect("the keys Secret, empty");
    assert_eq!(keys["metadata"]["name"], "${releaseName}-keys");
    assert!(keys.get("data").is_none() && keys.get("stringData").is_none());
    // Without --keys in-cluster: neither the field nor the Secret.
    ok(&generate(tmp.path(), "plain", &root_values(), None));
    let plain = tmp.path().join("plain").join(VERSION_DIR);
    assert!(!user_inputs(&plain).to_string().contains("masterKey"));
    assert!(
        !manifest_files(&plain)
            .iter()
            .any(|(_, text)| docs(text)[0]["kind"] == "Secret")
    );

    for (extra, says) in [
        (
            "secrets.postgresPassword=chosen-password-0123",
            "secrets.postgresPassword is set",
        ),
        (
            "secrets.existingSecret=mine",
            "the keys come from secrets.existingSecret",
        ),
    ] {
        let repo = format!("refused-{}", extra.len());
        let out = generate(
            tmp.path(),
            &repo,
            &[in_cluster.clone(), args(&["--set", extra])].concat(),
            None,
        );
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
        assert!(transcript(&out).contains(says), "{}", transcript(&out));
        assert!(!tmp.path().join(&repo).exists(), "{repo} was written");
    }
}
