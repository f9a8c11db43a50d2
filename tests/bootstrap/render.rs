//! The render: the script in the ConfigMap, the Job's privileges, its key references, its name,
//! and the catalog entry.

use super::*;

/// The `/` profile with bootstrap on, for provider `openai` with `key` as secrets.openaiApiKey.
pub(crate) fn bootstrap_values(key: &str, extra: &[&str]) -> Vec<String> {
    let mut set: Vec<String> = [
        "expose.ingressClassName=kommander-traefik",
        "external.host=192.0.2.10",
        "storage.storageClassName=standard",
        "expose.path=/",
        "external.scheme=http",
        "bootstrap.enabled=true",
        "bootstrap.admin.email=admin@example.com",
        "bootstrap.provider.type=openai",
        "bootstrap.plugins[0].name=langgenius/openai",
        "bootstrap.plugins[0].source=oci",
        "bootstrap.plugins[0].ref=registry.example.com/dify/openai:1.0.4-offline",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    set.push(format!("secrets.openaiApiKey={key}"));
    set.extend(extra.iter().map(|s| s.to_string()));
    set
}

pub(crate) fn render(set: Vec<String>) -> difyrender::release::RenderedRelease {
    difyrender::release::render_release(&release_spec(set, MASTER)).expect("renders")
}

pub(crate) fn job(r: &difyrender::release::RenderedRelease) -> &difyrender::manifest::Resource {
    let jobs: Vec<_> = r
        .manifest
        .resources
        .iter()
        .filter(|o| o.kind == "Job" && o.component == "bootstrap")
        .collect();
    assert_eq!(jobs.len(), 1);
    jobs[0]
}

#[test]
fn the_script_in_the_configmap_is_the_tested_file() {
    let r = render(bootstrap_values(KEY_A, &[]));
    let map = r
        .manifest
        .resources
        .iter()
        .find(|o| o.kind == "ConfigMap" && o.component == "bootstrap")
        .expect("a ConfigMap holds the script");
    let file = std::fs::read_to_string(root().join("templates/_bootstrap.py.tpl")).unwrap();
    assert_eq!(
        map.body["data"]["bootstrap.py"]
            .as_str()
            .unwrap()
            .trim_end(),
        file.trim_end(),
        "the template renders to itself (no Jinja delimiter in the script)"
    );
    // Off by default: no object of the component.
    let off = difyrender::release::render_release(&release_spec(
        bootstrap_values(KEY_A, &[])[..5].to_vec(),
        MASTER,
    ))
    .unwrap();
    assert!(
        off.manifest
            .resources
            .iter()
            .all(|o| o.component != "bootstrap")
    );
}

/// The marketplace source renders where the api can use it: the public marketplace online, or
/// an internal one on an air-gapped site. Where the marketplace is off, the same values are
/// refused (tests/cases/error-bootstrap-marketplace-*: off, a bare plugin id, another plugin's
/// identifier).
#[test]
fn the_marketplace_source_renders_where_the_marketplace_is_on() {
    let uid = format!("langgenius/openai:1.0.4@{}", "ab".repeat(32));
    let marketplace = [
        "bootstrap.plugins[0].source=marketplace".to_owned(),
        format!("bootstrap.plugins[0].ref={uid}"),
    ];
    let with = |extra: &[&str]| {
        let mut set = bootstrap_values(KEY_A, extra);
        set.extend(marketplace.iter().cloned());
        difyrender::release::render_release(&release_spec(set, MASTER))
    };
    let internal = [
        "airgap=true",
        "plugins.marketplace.enabled=true",
        "plugins.marketplace.url=https://marketplace.dify.internal.example.com",
    ];
    for extra in [&[][..], &internal[..]] {
        let r = with(extra).unwrap_or_else(|e| panic!("{extra:?}: {e}"));
        let env = job(&r).body["spec"]["template"]["spec"]["containers"][0]["env"].clone();
        let var = |name: &str| {
            env.as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == name)
                .unwrap()["value"]
                .clone()
        };
        assert_eq!(var("PLUGIN_SOURCES"), "marketplace", "{extra:?}");
        assert_eq!(var("PLUGIN_REFS"), uid.as_str(), "{extra:?}");
    }
    // Negative control: the same values offline with the marketplace off are refused.
    let err = with(&["airgap=true"]).expect_err("refused").to_string();
    assert!(
        err.contains("bootstrap.plugins[0]: langgenius/openai comes from the marketplace"),
        "{err}"
    );
}

#[test]
fn the_job_has_least_privilege_and_reads_its_keys_by_reference() {
    let r = render(bootstrap_values(KEY_A, &[]));
    let job = job(&r);
    assert_eq!(job.stage, difyrender::manifest::Stage::Bootstrap);
    let pod = &job.body["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(
        c["image"].as_str().unwrap().split(':').next(),
        Some("langgenius/dify-api")
    );
    let env = c["env"].as_array().unwrap();
    let by_ref = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in the env"))["valueFrom"]["secretKeyRef"]
            .clone()
    };
    for (var, key) in [
        ("INIT_PASSWORD", "INIT_PASSWORD"),
        ("ADMIN_PASSWORD", "ADMIN_PASSWORD"),
        ("PROVIDER_API_KEY", "OPENAI_API_KEY"),
    ] {
        assert_eq!(
            by_ref(var),
            serde_json::json!({"name": "dify-keys", "key": key}),
            "{var}"
        );
    }
    // No key in any object but the keys Secret.
    let mut secrets = secrets_of(MASTER);
    secrets.push(KEY_A.to_owned());
    for o in r.manifest.resources.iter().filter(|o| o.kind != "Secret") {
        assert_no_secrets(&o.body.to_string(), &secrets, &o.id());
    }
}

/// `apiKeySecret.optional`: the Job's reference is optional and tells the script so; apply's
/// check of the Secrets the pods read (before the first write) leaves that Secret out, and keeps
/// it in without `optional` (the negative control).
#[test]
fn an_optional_key_secret_is_an_optional_reference_apply_does_not_require() {
    let with = |optional: bool| {
        let mut set = bootstrap_values(
            KEY_A,
            &[
                "bootstrap.provider.apiKeySecret.name=nai",
                "bootstrap.provider.apiKeySecret.key=api-key",
            ],
        );
        set.push(format!(
            "bootstrap.provider.apiKeySecret.optional={optional}"
        ));
        render(set)
    };
    let optional = with(true);
    let env = job(&optional).body["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let var = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
    };
    assert_eq!(
        var("PROVIDER_API_KEY").unwrap()["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "nai", "key": "api-key", "optional": true})
    );
    assert_eq!(var("PROVIDER_KEY_OPTIONAL").unwrap()["value"], "true");
    let required = difyrender::cluster::refs::external_secret_keys(&optional.manifest);
    assert!(!required.contains_key("nai"), "{required:?}");

    let strict = with(false);
    let env = job(&strict).body["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    assert!(!env.to_string().contains("PROVIDER_KEY_OPTIONAL"), "{env}");
    let required = difyrender::cluster::refs::external_secret_keys(&strict.manifest);
    assert_eq!(
        required["nai"].iter().collect::<Vec<_>>(),
        ["api-key"],
        "{required:?}"
    );
}

#[test]
fn with_an_existing_secret_the_job_reads_its_mapped_key_names() {
    let set: Vec<String> = bootstrap_values(KEY_A, &[])
        .into_iter()
        .filter(|s| !s.starts_with("secrets.openaiApiKey"))
        .chain([
            "secrets.existingSecret=site-keys".to_owned(),
            "secrets.existingSecretKeys.ADMIN_PASSWORD=dify-admin-password".to_owned(),
        ])
        .collect();
    let spec = difyrender::release::ReleaseSpec {
        master_key_env: None,
        ..release_spec(set, MASTER)
    };
    let r = difyrender::release::render_release(&spec).expect("renders without a master key");
    let job = job(&r);
    let c = &job.body["spec"]["template"]["spec"]["containers"][0];
    let reference = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()["valueFrom"]["secretKeyRef"]
            .clone()
    };
    assert_eq!(
        reference("ADMIN_PASSWORD"),
        serde_json::json!({"name": "site-keys", "key": "dify-admin-password"})
    );
    assert_eq!(
        reference("PROVIDER_API_KEY"),
        serde_json::json!({"name": "site-keys", "key": "OPENAI_API_KEY"})
    );
    // apply and diff read that key from the cluster for the Job's name; negative control: the
    // release's own keys Secret is in the render, so nothing is read for it.
    use difyrender::cluster::bootstrap_key::provider_key_ref;
    assert_eq!(
        provider_key_ref(&r.manifest),
        Some(("site-keys".to_owned(), "OPENAI_API_KEY".to_owned()))
    );
    assert_eq!(
        provider_key_ref(&render(bootstrap_values(KEY_A, &[])).manifest),
        None
    );
    // No key material at render time: no inputs hash either.
    assert!(
        job.body["spec"]["template"]["metadata"]["annotations"]
            .get("difyrender.io/inputs-checksum")
            .is_none()
    );
    let notes = r.notes().join("\n");
    assert!(
        notes.contains("secret -n dify site-keys -o jsonpath='{.data.dify-admin-password}'"),
        "{notes}"
    );
}

#[test]
fn the_job_is_renamed_when_a_key_or_its_input_changes_and_only_then() {
    let name = |set: Vec<String>| job(&render(set)).name.clone();
    let base = name(bootstrap_values(KEY_A, &[]));
    assert!(base.starts_with("dify-bootstrap-"), "{base}");
    assert_eq!(base, name(bootstrap_values(KEY_A, &[])), "deterministic");
    // Unrelated values do not run it again.
    assert_eq!(base, name(bootstrap_values(KEY_A, &["api.replicas=3"])));
    // A new OpenAI key, administrator password or model does.
    assert_ne!(base, name(bootstrap_values(KEY_B, &[])));
    assert_ne!(
        base,
        name(bootstrap_values(
            KEY_A,
            &["secrets.adminPassword=P0another-one"]
        ))
    );
    assert_ne!(
        base,
        name(bootstrap_values(KEY_A, &["bootstrap.defaultModel=gpt-4o"]))
    );
    // The hash names no key: it is an HMAC under the master key, not a hash of the key.
    let r = render(bootstrap_values(KEY_A, &[]));
    let annotations = &job(&r).body["spec"]["template"]["metadata"]["annotations"];
    let inputs = annotations["difyrender.io/inputs-checksum"]
        .as_str()
        .unwrap();
    assert!(!sha256(KEY_A).starts_with(inputs));
}

#[test]
fn the_catalog_entry_carries_the_job_for_flux() {
    // Under Flux (no difyrender on the host) the Job is one more object of the stream, named
    // like every other after ${releaseName}, its keys read from the Secret `secrets apply` makes.
    let out = tempfile::tempdir().unwrap();
    let mut set = bootstrap_values(
        KEY_A,
        &[
            "bootstrap.provider.type=openai-compatible",
            "bootstrap.provider.endpointUrl=https://nai.example.com/api/v1",
            "bootstrap.provider.models[0]=llama-3-1-8b",
            "bootstrap.provider.apiKeySecret.name=nai",
            "bootstrap.provider.apiKeySecret.key=api-key",
        ],
    );
    // The entry holds no key: the OpenAI key is not given.
    set.retain(|s| !s.starts_with("secrets.openaiApiKey"));
    let run = difyrender()
        .arg("catalog")
        .arg("--out")
        .arg(out.path())
        .args(set_args(&set))
        .output()
        .unwrap();
    let text = transcript(&run);
    assert!(run.status.success(), "{text}");
    assert!(text.contains("Secret nai with the keys api-key"), "{text}");
    let manifests = out.path().join("applications/dify/1.16.1/manifests");
    let names: Vec<String> = std::fs::read_dir(&manifests)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "2-configmap-bootstrap.yaml"),
        "{names:?}"
    );
    let job = names
        .iter()
        .find(|n| n.starts_with("7-job-bootstrap-"))
        .unwrap_or_else(|| panic!("a bootstrap Job in {names:?}"));
    let body = read(&manifests.join(job));
    assert!(body.contains("name: ${releaseName}-keys"), "{body}");
    assert!(
        body.contains("value: http://${releaseName}-api:5001"),
        "{body}"
    );
}
