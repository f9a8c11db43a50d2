//! Properties of rendered output that snapshots alone would not prove: the wiring between
//! services, escaping of hostile values, determinism, and that template mistakes are caught.

mod common;

use common::*;
use difyrender::chart::Chart;
use difyrender::manifest::{Manifest, Resource};
use difyrender::release::{ReleaseSpec, RenderedRelease, render_release};
use difyrender::render::Release;
use difyrender::values::ValueSources;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::Value;
use std::collections::BTreeSet;

const MASTER: &str = "render-test-master-key-0123456789";

fn spec(set: &[&str]) -> ReleaseSpec {
    let mut base = vec![
        "expose.ingressClassName=kommander-traefik",
        "external.scheme=https",
        "external.host=192.0.2.10",
        "storage.storageClassName=nutanix-volume",
        "expose.path=/dify",
        "images.web.repository=registry.example.com/dify-web-dify",
        "images.web.basePath=/dify",
    ];
    base.extend_from_slice(set);
    ReleaseSpec {
        chart: Chart::embedded(),
        sources: ValueSources {
            set: base.into_iter().map(str::to_owned).collect(),
            ..Default::default()
        },
        secret_key_file: None,
        master_key_env: Some(MASTER.into()),
        release: Release {
            name: "dify".into(),
            namespace: "dify".into(),
        },
        injected: Default::default(),
    }
}

fn render(set: &[&str]) -> RenderedRelease {
    render_release(&spec(set)).expect("renders")
}

fn find<'a>(m: &'a Manifest, kind: &str, name: &str) -> &'a Resource {
    m.resources
        .iter()
        .find(|r| r.kind == kind && r.name == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is rendered"))
}

fn pod(m: &Manifest, kind: &str, name: &str) -> PodSpec {
    let r = find(m, kind, name);
    match kind {
        "Deployment" => r
            .to_typed::<Deployment>()
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap(),
        "StatefulSet" => r
            .to_typed::<StatefulSet>()
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap(),
        "Job" => r
            .to_typed::<Job>()
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap(),
        _ => unreachable!(),
    }
}

/// An env var's effective value: a literal, a value from the keys Secret, or a `$(VAR)`
/// reference expanded from the variables defined before it (as the kubelet does).
fn env_value(m: &Manifest, c: &Container, name: &str) -> String {
    let env: &Vec<EnvVar> = c.env.as_ref().unwrap();
    let pos = env
        .iter()
        .position(|e| e.name == name)
        .unwrap_or_else(|| panic!("{} has {name}", c.name));
    resolve(m, &env[..pos], &env[pos])
}

fn resolve(m: &Manifest, before: &[EnvVar], var: &EnvVar) -> String {
    if let Some(from) = &var.value_from {
        let r = from
            .secret_key_ref
            .as_ref()
            .expect("only secretKeyRef is used");
        let secret: Secret = find(m, "Secret", &r.name).to_typed().unwrap();
        let bytes = &secret.data.unwrap()[&r.key];
        return String::from_utf8(bytes.0.clone()).unwrap();
    }
    let mut value = var.value.clone().unwrap_or_default();
    for (i, earlier) in before.iter().enumerate() {
        let pattern = format!("$({})", earlier.name);
        if value.contains(&pattern) {
            value = value.replace(&pattern, &resolve(m, &before[..i], earlier));
        }
    }
    value
}

fn container<'a>(p: &'a PodSpec, name: &str) -> &'a Container {
    p.containers.iter().find(|c| c.name == name).unwrap()
}

/// A Service exists for `http://name:port` URLs, with that port.
fn assert_service_url(m: &Manifest, url: &str) {
    let rest = url.split("://").nth(1).unwrap();
    let authority = rest.split('/').next().unwrap();
    let hostport = authority.rsplit('@').next().unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let svc: Service = find(m, "Service", host).to_typed().unwrap();
    let ports: Vec<i32> = svc
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert!(
        ports.contains(&port.parse().unwrap()),
        "{url}: Service {host} has no port {port}"
    );
}

#[test]
fn shared_keys_match_at_both_ends() {
    let r = render(&[]);
    let m = &r.manifest;
    let api = pod(m, "Deployment", "dify-api");
    let api_c = container(&api, "api");
    let sandbox = pod(m, "Deployment", "dify-sandbox");
    let daemon = pod(m, "Deployment", "dify-plugin-daemon");
    let daemon_c = container(&daemon, "plugin-daemon");
    let redis = pod(m, "StatefulSet", "dify-redis");
    let postgres = pod(m, "StatefulSet", "dify-postgresql");
    let weaviate = pod(m, "StatefulSet", "dify-weaviate");

    let sandbox_key = env_value(m, container(&sandbox, "sandbox"), "API_KEY");
    let redis_password = env_value(m, container(&redis, "redis"), "REDIS_PASSWORD");
    let db_password = env_value(m, container(&postgres, "postgresql"), "POSTGRES_PASSWORD");
    for (kind, name, c) in [
        ("Deployment", "dify-api", "api"),
        ("Deployment", "dify-worker", "worker"),
        ("Deployment", "dify-beat", "beat"),
    ] {
        let p = pod(m, kind, name);
        let c = container(&p, c);
        assert_eq!(env_value(m, c, "SECRET_KEY"), MASTER, "{name}");
        assert_eq!(
            env_value(m, c, "CODE_EXECUTION_API_KEY"),
            sandbox_key,
            "{name}"
        );
        assert_eq!(
            env_value(m, c, "PLUGIN_DAEMON_KEY"),
            env_value(m, daemon_c, "SERVER_KEY"),
            "{name}"
        );
        assert_eq!(
            env_value(m, c, "INNER_API_KEY_FOR_PLUGIN"),
            env_value(m, daemon_c, "DIFY_INNER_API_KEY"),
            "{name}"
        );
        assert_eq!(
            env_value(m, c, "WEAVIATE_API_KEY"),
            env_value(
                m,
                container(&weaviate, "weaviate"),
                "AUTHENTICATION_APIKEY_ALLOWED_KEYS"
            ),
            "{name}"
        );
        assert_eq!(env_value(m, c, "REDIS_PASSWORD"), redis_password, "{name}");
        assert_eq!(env_value(m, c, "DB_PASSWORD"), db_password, "{name}");
        let broker = env_value(m, c, "CELERY_BROKER_URL");
        assert_eq!(
            broker,
            format!("redis://:{redis_password}@dify-redis:6379/1"),
            "{name}"
        );
        assert_service_url(m, &broker);
        for url_var in [
            "CODE_EXECUTION_ENDPOINT",
            "PLUGIN_DAEMON_URL",
            "WEAVIATE_ENDPOINT",
            "SSRF_PROXY_HTTP_URL",
            "INTERNAL_FILES_URL",
        ] {
            assert_service_url(m, &env_value(m, c, url_var));
        }
        for url_var in [
            "CONSOLE_API_URL",
            "CONSOLE_WEB_URL",
            "SERVICE_API_URL",
            "APP_API_URL",
            "APP_WEB_URL",
            "FILES_URL",
            "TRIGGER_URL",
        ] {
            assert_eq!(
                env_value(m, c, url_var),
                "https://192.0.2.10/dify",
                "{name} {url_var}"
            );
        }
        assert_eq!(env_value(m, c, "MIGRATION_ENABLED"), "false", "{name}");
    }
    assert_eq!(env_value(m, daemon_c, "DB_PASSWORD"), db_password);
    assert_eq!(env_value(m, daemon_c, "REDIS_PASSWORD"), redis_password);
    assert_service_url(m, &env_value(m, daemon_c, "DIFY_INNER_API_URL"));
    assert_eq!(env_value(m, api_c, "MODE"), "api");
    assert_eq!(
        env_value(
            m,
            container(&pod(m, "Deployment", "dify-worker"), "worker"),
            "MODE"
        ),
        "worker"
    );
    assert_eq!(
        env_value(
            m,
            container(&pod(m, "Deployment", "dify-beat"), "beat"),
            "MODE"
        ),
        "beat"
    );
    // The Job is the only place migrations run.
    let job_name = &m.resources.iter().find(|r| r.kind == "Job").unwrap().name;
    assert!(job_name.starts_with("dify-migration-1-11-4-"), "{job_name}");
    let job = pod(m, "Job", job_name);
    assert_eq!(
        env_value(m, container(&job, "migration"), "MIGRATION_ENABLED"),
        "true"
    );
    assert_eq!(
        env_value(m, container(&job, "migration"), "DB_PASSWORD"),
        db_password
    );
    // The web app and the sandbox's proxy.
    let web = pod(m, "Deployment", "dify-web");
    assert_eq!(
        env_value(m, container(&web, "web"), "CONSOLE_API_URL"),
        "https://192.0.2.10/dify"
    );
    assert_eq!(
        env_value(m, container(&web, "web"), "NEXT_PUBLIC_BASE_PATH"),
        "/dify"
    );
    assert_service_url(
        m,
        &env_value(m, container(&sandbox, "sandbox"), "HTTP_PROXY"),
    );
    // Derived keys are really derived, and distinct.
    let all: BTreeSet<String> = [&sandbox_key, &redis_password, &db_password]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(all.len(), 3);
    assert_eq!(
        db_password,
        difyrender::values::secrets::derive(MASTER, "postgres-password")
    );
}

#[test]
fn migration_job_name_follows_its_pod_template() {
    let job = |set: &[&str]| {
        render(set)
            .manifest
            .resources
            .iter()
            .find(|r| r.kind == "Job")
            .unwrap()
            .name
            .clone()
    };
    let base = job(&[]);
    assert_eq!(
        base,
        job(&["external.host=192.0.2.1"]),
        "the address does not reach the migration"
    );
    assert_ne!(base, job(&["migration.resources.requests.cpu=1"]));
    assert_ne!(
        base,
        job(&[
            "postgresql.enabled=false",
            "postgresql.external.host=db.example.com"
        ])
    );
    assert!(job(&["images.dify.tag=1.12.0"]).starts_with("dify-migration-1-12-0-"));
    assert!(base.len() <= 63);
}

#[test]
fn beat_runs_exactly_one_replica() {
    let r = render(&["api.replicas=3", "worker.replicas=3"]);
    let beat: Deployment = find(&r.manifest, "Deployment", "dify-beat")
        .to_typed()
        .unwrap();
    assert_eq!(beat.spec.unwrap().replicas, Some(1));
}

#[test]
fn routes_under_a_sub_path() {
    let r = render(&[]);
    let api: Ingress = find(&r.manifest, "Ingress", "dify-api").to_typed().unwrap();
    let ann = api.metadata.annotations.unwrap();
    assert_eq!(
        ann["traefik.ingress.kubernetes.io/router.middlewares"],
        "dify-dify-stripprefix@kubernetescrd"
    );
    assert_eq!(ann["traefik.ingress.kubernetes.io/router.tls"], "true");
    let paths: Vec<String> = api.spec.unwrap().rules.unwrap()[0]
        .http
        .as_ref()
        .unwrap()
        .paths
        .iter()
        .map(|p| p.path.clone().unwrap())
        .collect();
    assert!(paths.contains(&"/dify/console/api".to_owned()));
    assert!(
        paths.contains(&"/dify/e/".to_owned()),
        "the /e/ route keeps its trailing slash: {paths:?}"
    );
    let web: Ingress = find(&r.manifest, "Ingress", "dify-web").to_typed().unwrap();
    assert!(
        !web.metadata
            .annotations
            .unwrap()
            .contains_key("traefik.ingress.kubernetes.io/router.middlewares")
    );
    let mw = find(&r.manifest, "Middleware", "dify-stripprefix");
    assert_eq!(
        mw.body["spec"]["stripPrefix"]["prefixes"],
        serde_json::json!(["/dify"])
    );
    // At the root there is no Middleware and no prefix.
    let root = render(&[
        "expose.path=/",
        "images.web.repository=",
        "images.web.basePath=",
    ]);
    assert!(
        root.manifest
            .resources
            .iter()
            .all(|r| r.kind != "Middleware")
    );
    let api: Ingress = find(&root.manifest, "Ingress", "dify-api")
        .to_typed()
        .unwrap();
    assert!(
        api.spec.unwrap().rules.unwrap()[0]
            .http
            .as_ref()
            .unwrap()
            .paths
            .iter()
            .any(|p| p.path.as_deref() == Some("/e/"))
    );
}

#[test]
fn storage_access_mode_decides_co_location() {
    let rwo = render(&[]);
    for name in ["dify-api", "dify-worker"] {
        let p = pod(&rwo.manifest, "Deployment", name);
        assert!(
            p.affinity.and_then(|a| a.pod_affinity).is_some(),
            "{name} is kept with its storage peers"
        );
    }
    let rwx = render(&[
        "storage.accessMode=ReadWriteMany",
        "storage.storageClassName=nutanix-files",
    ]);
    for name in ["dify-api", "dify-worker"] {
        assert!(
            pod(&rwx.manifest, "Deployment", name).affinity.is_none(),
            "{name} is free with RWX"
        );
    }
    let pvc = find(&rwx.manifest, "PersistentVolumeClaim", "dify-storage");
    assert_eq!(
        pvc.body["spec"]["accessModes"],
        serde_json::json!(["ReadWriteMany"])
    );
    assert_eq!(pvc.body["spec"]["storageClassName"], "nutanix-files");
}

#[test]
fn every_object_carries_the_recommended_labels() {
    let r = render(&[]);
    for res in &r.manifest.resources {
        let labels = res.body["metadata"]["labels"].as_object().unwrap();
        assert_eq!(labels["app.kubernetes.io/name"], "dify", "{}", res.id());
        assert_eq!(labels["app.kubernetes.io/instance"], "dify");
        assert_eq!(labels["app.kubernetes.io/part-of"], "dify");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "difyrender");
        assert_eq!(labels["app.kubernetes.io/version"], "1.11.4");
        assert_eq!(
            labels["app.kubernetes.io/component"],
            res.component.as_str()
        );
    }
}

/// Strings that would add a document, a key or change a type if pasted raw into YAML.
const HOSTILE: &[&str] = &[
    "line1\nline2",
    "x\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: evil}",
    "a: b",
    "key: value\nextra: field",
    "yes",
    "no",
    "on",
    "0777",
    "1.10",
    "null",
    "~",
    "- item",
    "{a: 1}",
    "[1, 2]",
    "&anchor",
    "*alias",
    "!!binary aGk=",
    "# comment",
    "\"quoted\"",
    "'single'",
    "back\\slash",
    "tab\there",
    "cr\rlf",
    "nel\u{85}ls\u{2028}",
    "日本語",
    "%YAML 1.2",
    "@at `tick`",
    "",
];

/// Every leaf path of a JSON value, without its values.
fn shape(v: &Value, prefix: String, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| shape(v, format!("{prefix}.{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| shape(v, format!("{prefix}[{i}]"), out)),
        _ => {
            out.insert(prefix);
        }
    }
}

fn shapes(m: &Manifest) -> Vec<(String, BTreeSet<String>)> {
    m.resources
        .iter()
        .map(|r| {
            let mut s = BTreeSet::new();
            shape(&r.body, String::new(), &mut s);
            // The migration Job is named after a hash of its pod template, which the hostile
            // values reach; its shape, not its name, is what must not change.
            let id = if r.kind == "Job" {
                format!("Job/{}", r.component)
            } else {
                r.id()
            };
            (id, s)
        })
        .collect()
}

#[test]
fn hostile_values_never_add_objects_fields_or_type_changes() {
    let baseline = shapes(
        &render(&[
            "expose.annotations.x=baseline",
            "dify.extraEnv.X=baseline",
            "ssrfProxy.extraConfig=baseline",
        ])
        .manifest,
    );
    for hostile in HOSTILE {
        let mut s = spec(&[]);
        let value = Value::String((*hostile).to_owned());
        s.sources.set_json = vec![
            format!("expose.annotations.x={value}"),
            format!("dify.extraEnv.X={value}"),
            format!("ssrfProxy.extraConfig={value}"),
            format!(
                "secrets.sandboxApiKey={}",
                Value::String(format!("k{hostile}"))
            ),
        ];
        let r = render_release(&s).unwrap_or_else(|e| panic!("{hostile:?}: {e}"));
        assert_eq!(
            shapes(&r.manifest),
            baseline,
            "{hostile:?} changed the shape of the output"
        );
        let ingress = find(&r.manifest, "Ingress", "dify-web");
        assert_eq!(
            ingress.body["metadata"]["annotations"]["x"], value,
            "{hostile:?}"
        );
        let api = pod(&r.manifest, "Deployment", "dify-api");
        assert_eq!(
            env_value(&r.manifest, container(&api, "api"), "X"),
            *hostile
        );
        assert_eq!(
            env_value(
                &r.manifest,
                container(&api, "api"),
                "CODE_EXECUTION_API_KEY"
            ),
            format!("k{hostile}")
        );
        // The stream as printed parses back to the same objects.
        let reparsed = difyrender::yaml::from_str_multiple(&r.manifest.to_yaml_stream()).unwrap();
        let bodies: Vec<Value> = r
            .manifest
            .resources
            .iter()
            .map(|r| r.body.clone())
            .collect();
        assert_eq!(reparsed, bodies, "{hostile:?}");
    }
}

#[test]
fn output_is_deterministic() {
    let a = render(&[]).manifest.to_yaml_stream();
    let b = render(&[]).manifest.to_yaml_stream();
    assert_eq!(a, b);
    let run = || {
        difyrender()
            .args(["render", "-f", "examples/nkp.values.yaml"])
            .current_dir(root())
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap()
            .stdout
    };
    let first = run();
    assert!(!first.is_empty());
    assert_eq!(first, run(), "two processes printed different bytes");
}

#[test]
fn embedded_chart_is_the_repository_chart() {
    let mut from_dir = spec(&[]);
    from_dir.chart = Chart::from_dir(&root()).unwrap();
    assert_eq!(
        render_release(&from_dir).unwrap().manifest,
        render(&[]).manifest
    );
}

/// A copy of the chart with one template edited, rendered through `--chart`.
fn render_edited(template: &str, from: &str, to: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path();
    std::fs::create_dir(chart.join("templates")).unwrap();
    for f in ["values.yaml", "values.schema.json"] {
        std::fs::copy(root().join(f), chart.join(f)).unwrap();
    }
    for e in std::fs::read_dir(root().join("templates")).unwrap() {
        let p = e.unwrap().path();
        let mut text = std::fs::read_to_string(&p).unwrap();
        if p.file_name().unwrap() == template {
            assert!(text.contains(from), "{template} contains {from}");
            text = text.replacen(from, to, 1);
        }
        std::fs::write(chart.join("templates").join(p.file_name().unwrap()), text).unwrap();
    }
    difyrender()
        .args(["render", "--chart"])
        .arg(chart)
        .args(["-f", "examples/nkp.values.yaml"])
        .current_dir(root())
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap()
}

#[test]
fn template_mistakes_are_caught_before_output() {
    let cases = [
        (
            "template-unknown-field",
            "sandbox.yaml",
            "readinessProbe:",
            "readinesProbe:",
        ),
        (
            "template-wrong-type",
            "api.yaml",
            "containerPort: 5001",
            "containerPort: \"http\"",
        ),
        (
            "template-undefined-value",
            "beat.yaml",
            "Values.beat.resources",
            "Values.beat.resource",
        ),
        (
            "template-syntax-error",
            "redis.yaml",
            "{% endcall %}",
            "{% endcal %}",
        ),
        (
            "template-broken-yaml",
            "web.yaml",
            "    ports: [{name: http",
            "    ports: [{name: : http",
        ),
        (
            "template-required-in-template",
            "weaviate.yaml",
            "Values.weaviate.storageSize",
            "required(\"weaviate.missingSize\")",
        ),
    ];
    for (name, template, from, to) in cases {
        let out = render_edited(template, from, to);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(out.stdout.is_empty(), "{name} printed a partial stream");
        snapshot(name, &String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn unreadable_values_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "a: ".to_owned() + &"x".repeat(difyrender::yaml::MAX_INPUT_BYTES) + "\n";
    let files: [(&str, Vec<u8>); 3] = [
        ("huge.yaml", huge.into_bytes()),
        ("binary.yaml", b"\x7fELF\x02\x01\x01\0\0\0".to_vec()),
        ("latin1.yaml", b"host: caf\xe9\n".to_vec()),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let out = difyrender()
            .args(["render", "-f", name])
            .current_dir(dir.path())
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(out.stdout.is_empty(), "{name}");
        snapshot(
            &format!("values-file-{name}"),
            &String::from_utf8_lossy(&out.stderr),
        );
    }
}

#[test]
fn closed_stdout_is_not_an_error() {
    use std::process::Stdio;
    let mut child = difyrender()
        .args(["render", "-f", "examples/nkp.values.yaml"])
        .current_dir(root())
        .env("DIFY_SECRET_KEY", MASTER)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn output_dir_writes_one_file_per_object_in_apply_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = difyrender()
        .args(["render", "-f", "examples/nkp.values.yaml", "--output-dir"])
        .arg(dir.path())
        .current_dir(root())
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), render(&[]).manifest.resources.len());
    assert_eq!(names.first().unwrap(), "1-namespace-dify.yaml");
    assert!(names.last().unwrap().starts_with("6-"), "{names:?}");
}
