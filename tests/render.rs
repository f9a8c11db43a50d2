//! Properties of rendered output that snapshots alone would not prove: the wiring between
//! services, escaping of hostile values, determinism, and that template mistakes are caught.

mod common;

use common::kubelet::{container, container_env, env_get, find, pod};
use common::*;
use difyrender::chart::Chart;
use difyrender::manifest::{Manifest, Resource};
use difyrender::release::{ReleaseSpec, RenderedRelease, render_release};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Service};
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
    release_spec(base.into_iter().map(str::to_owned).collect(), MASTER)
}

fn render(set: &[&str]) -> RenderedRelease {
    render_release(&spec(set)).expect("renders")
}

/// An env var's effective value, as the kubelet computes it (`tests/common/kubelet.rs`).
fn env_value(m: &Manifest, c: &Container, name: &str) -> String {
    env_get(&container_env(m, c), name).to_owned()
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
            "FILES_URL",
            "TRIGGER_URL",
        ] {
            assert_eq!(
                env_value(m, c, url_var),
                "https://192.0.2.10/dify",
                "{name} {url_var}"
            );
        }
        // See links_users_see_reach_the_right_backend for how each URL is used.
        assert_eq!(env_value(m, c, "APP_WEB_URL"), "https://192.0.2.10");
        let names: Vec<&str> = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert!(
            !names.contains(&"APP_API_URL"),
            "{name}: only the web reads APP_API_URL"
        );
        assert_eq!(env_value(m, c, "LANG"), "C.UTF-8", "{name}");
        assert_eq!(env_value(m, c, "LC_ALL"), "C.UTF-8", "{name}");
        let serves_http = c.name == "api";
        for http_only in [
            "DIFY_BIND_ADDRESS",
            "DIFY_PORT",
            "GUNICORN_TIMEOUT",
            "INIT_PASSWORD",
        ] {
            assert_eq!(
                names.contains(&http_only),
                serves_http,
                "{name}: {http_only}"
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
    assert!(job_name.starts_with("dify-migration-1-16-1-"), "{job_name}");
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

    // The name hashes the pod template's content, not its text: a blank line or a comment left
    // by a template edit does not re-run the migration; a changed value does.
    let job_name = |out: std::process::Output| {
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .find(|l| l.trim_start().starts_with("name: dify-migration-"))
            .unwrap_or_else(|| panic!("a migration Job in {text}"))
            .trim()
            .to_owned()
    };
    let anchor = "      command: [/bin/bash, -c, {{ gate | scalar }}]\n";
    let stock = job_name(render_edited("migration.yaml", anchor, anchor));
    let cosmetic = job_name(render_edited(
        "migration.yaml",
        anchor,
        &format!("{anchor}\n{{# a comment #}}\n\n"),
    ));
    assert_eq!(stock, cosmetic);
    let changed = job_name(render_edited(
        "migration.yaml",
        anchor,
        &format!("{anchor}      workingDir: /app/api\n"),
    ));
    assert_ne!(stock, changed);
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
        assert_eq!(labels["app.kubernetes.io/version"], "1.16.1");
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
    for f in ["values.yaml", "values.schema.json", "versions.yaml"] {
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
            "containerPort: {{ Dify.ports.api }}",
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

/// Where a request goes, by the rendered Ingresses (or HTTPRoutes, when the release has them).
/// The project's own reading of its routes, kept for the checks that need no controller (the
/// links snapshots, the parity of both forms on every declared path); tests/traefik/ sends the
/// same links through the real Traefik.
fn route(m: &Manifest, url: &str) -> Option<Route> {
    if m.resources.iter().any(|r| r.kind == "HTTPRoute") {
        gateway_route(m, url)
    } else {
        ingress_route(m, url)
    }
}

/// Gateway API's rules: an `Exact` match beats any prefix, then the longest `PathPrefix`
/// (matched element by element: `/e` matches `/e` and `/e/...`, not `/explore`); then the
/// rule's filters rewrite the path and set headers. Backends are named by Service port name.
fn gateway_route(m: &Manifest, url: &str) -> Option<Route> {
    let path_and_query = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), format!("?{q}")),
        None => (path_and_query.clone(), String::new()),
    };
    let mut best: Option<((u8, usize), &Value, &str)> = None;
    for r in m.resources.iter().filter(|r| r.kind == "HTTPRoute") {
        for rule in r.body["spec"]["rules"].as_array().unwrap() {
            for matched in rule["matches"].as_array().unwrap() {
                let value = matched["path"]["value"].as_str().unwrap();
                let rank = match matched["path"]["type"].as_str().unwrap() {
                    "Exact" if path == value => (1, value.len()),
                    "PathPrefix"
                        if value == "/"
                            || path == value
                            || path.starts_with(&format!("{}/", value.trim_end_matches('/'))) =>
                    {
                        (0, value.len())
                    }
                    _ => continue,
                };
                if best.as_ref().is_none_or(|(b, ..)| rank > *b) {
                    best = Some((rank, rule, value));
                }
            }
        }
    }
    let (_, rule, matched) = best?;
    let mut route = Route {
        backend: String::new(),
        path: path.clone(),
        forwarded_prefix: None,
    };
    for filter in rule["filters"].as_array().into_iter().flatten() {
        let rewrite = &filter["urlRewrite"]["path"];
        if let Some(full) = rewrite["replaceFullPath"].as_str() {
            route.path = full.to_owned();
        }
        if let Some(prefix) = rewrite["replacePrefixMatch"].as_str() {
            route.path = format!("{prefix}{}", &path[matched.len()..]);
        }
        for header in filter["requestHeaderModifier"]["set"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if header["name"] == "X-Forwarded-Prefix" {
                route.forwarded_prefix = header["value"].as_str().map(str::to_owned);
            }
        }
    }
    route.path.push_str(&query);
    let backend = &rule["backendRefs"][0];
    let service: Service = find(m, "Service", backend["name"].as_str().unwrap())
        .to_typed()
        .unwrap();
    let port = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .find(|p| backend["port"] == p.port)
        .unwrap();
    route.backend = format!(
        "{}:{}",
        backend["name"].as_str().unwrap(),
        port.name.unwrap()
    );
    Some(route)
}

/// Where Traefik sends a request, by the rendered Ingresses and Middlewares.
#[derive(Debug, PartialEq)]
struct Route {
    backend: String,
    /// The path the backend receives, query included.
    path: String,
    /// The X-Forwarded-Prefix header a StripPrefix middleware adds.
    forwarded_prefix: Option<String>,
}

/// Traefik's Kubernetes Ingress provider turns `Prefix` into `PathPrefix` (a plain string
/// prefix) and `Exact` into `Path`; among matching routers the longest rule wins. Then the
/// Ingress's middlewares (`<namespace>-<name>@kubernetescrd`) rewrite the path in order.
fn ingress_route(m: &Manifest, url: &str) -> Option<Route> {
    let path_and_query = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
    let path = path_and_query.split('?').next().unwrap();
    let mut best: Option<(usize, &Resource, String)> = None;
    for r in m.resources.iter().filter(|r| r.kind == "Ingress") {
        let ingress: Ingress = r.to_typed().unwrap();
        for rule in ingress.spec.unwrap().rules.unwrap() {
            for p in rule.http.unwrap().paths {
                let rule_path = p.path.unwrap();
                let (matches, rule_len) = match p.path_type.as_str() {
                    "Exact" => (path == rule_path, format!("Path(`{rule_path}`)").len()),
                    "Prefix" => (
                        path.starts_with(&rule_path),
                        format!("PathPrefix(`{rule_path}`)").len(),
                    ),
                    other => panic!("unexpected pathType {other}"),
                };
                let svc = p.backend.service.unwrap();
                let port = svc.port.unwrap().name.unwrap();
                if matches && best.as_ref().is_none_or(|(len, ..)| rule_len > *len) {
                    best = Some((rule_len, r, format!("{}:{port}", svc.name)));
                }
            }
        }
    }
    let (_, ingress, backend) = best?;
    let mut route = Route {
        backend,
        path: path_and_query.clone(),
        forwarded_prefix: None,
    };
    let refs =
        ingress.body["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"]
            .as_str()
            .unwrap_or_default();
    for reference in refs.split(',').filter(|s| !s.is_empty()) {
        let name = reference
            .strip_suffix("@kubernetescrd")
            .and_then(|n| n.strip_prefix(&format!("{}-", ingress.namespace.as_deref().unwrap())))
            .unwrap_or_else(|| panic!("middleware reference {reference}"));
        let spec = &find(m, "Middleware", name).body["spec"];
        if let Some(prefixes) = spec["stripPrefix"]["prefixes"].as_array() {
            for prefix in prefixes.iter().map(|p| p.as_str().unwrap()) {
                if let Some(rest) = route.path.strip_prefix(prefix) {
                    route.path = if rest.starts_with('/') {
                        rest.to_owned()
                    } else {
                        format!("/{rest}")
                    };
                    route.forwarded_prefix = Some(prefix.to_owned());
                    break;
                }
            }
        }
        if let Some(prefix) = spec["addPrefix"]["prefix"].as_str() {
            route.path = format!("{prefix}{}", route.path);
        }
    }
    Some(route)
}

/// The links a user meets, built the way Dify builds them from the environment the chart
/// gives api and web, each followed through the Ingress routes to the backend that serves it.
/// Under a sub-path this once produced `/dify/dify/chat/...` share links (APP_WEB_URL carried
/// the path, and the web appends its base path).
#[test]
fn links_users_see_reach_the_right_backend() {
    snapshot("links-users-see", &links_report(&[]));
    // Collaboration (1.14.0: the api serves /socket.io/; 1.14.1: its own api-websocket).
    snapshot(
        "links-users-see-1.14.0",
        &links_report(&["images.dify.tag=1.14.0"]),
    );
    snapshot(
        "links-users-see-1.14.1",
        &links_report(&["images.dify.tag=1.14.1"]),
    );
}

/// Every path a route of either form declares (and one level below it) goes to the same
/// backend, with the same path and X-Forwarded-Prefix, in the Ingress and the HTTPRoute form.
/// Once the HTTPRoute form had no /socket.io/ rule: socket requests fell through to the web.
#[test]
fn ingress_and_http_route_forms_route_every_path_alike() {
    let gateway = [
        "expose.kind=HTTPRoute",
        "expose.gateway.parentRefs[0].name=traefik-gateway",
    ];
    let root = [
        "expose.path=/",
        "images.web.repository=",
        "images.web.basePath=",
    ];
    for tag in ["1.11.4", "1.14.0", "1.14.1"] {
        let tag = format!("images.dify.tag={tag}");
        for profile in [&[][..], &root[..]] {
            let set = [&[tag.as_str()][..], profile].concat();
            let ingress = render(&set).manifest;
            let routes = render(&[&set[..], &gateway[..]].concat()).manifest;
            let mut paths = BTreeSet::new();
            for r in &ingress.resources {
                for rule in r.body["spec"]["rules"].as_array().into_iter().flatten() {
                    for p in rule["http"]["paths"].as_array().into_iter().flatten() {
                        paths.insert(p["path"].as_str().unwrap().to_owned());
                    }
                }
            }
            for r in &routes.resources {
                for rule in r.body["spec"]["rules"].as_array().into_iter().flatten() {
                    for m in rule["matches"].as_array().into_iter().flatten() {
                        paths.insert(m["path"]["value"].as_str().unwrap().to_owned());
                    }
                }
            }
            assert!(paths.len() > 8, "{set:?}: {paths:?}");
            for p in &paths {
                for probe in [p.clone(), format!("{}/x?q=1", p.trim_end_matches('/'))] {
                    if paths.contains(&format!("{probe}/")) {
                        // Traefik matches Ingress prefixes as strings: the Ingress form takes
                        // /e/ and /socket.io/ with their slash (/e would also capture /explore);
                        // Gateway API ignores a trailing slash. Clients always send the slash.
                        continue;
                    }
                    let url = format!("https://192.0.2.10{probe}");
                    assert_eq!(
                        ingress_route(&ingress, &url),
                        gateway_route(&routes, &url),
                        "{set:?}: {url}"
                    );
                }
            }
            if tag.ends_with("1.14.1") {
                assert!(paths.contains("/socket.io/"), "{paths:?}");
            }
        }
    }
}

/// The Gateway API routes serve every link exactly as the Ingresses do.
#[test]
fn http_routes_serve_the_same_links() {
    let gateway = [
        "expose.kind=HTTPRoute",
        "expose.gateway.parentRefs[0].name=traefik-gateway",
        "expose.gateway.parentRefs[0].namespace=kommander",
    ];
    let report = links_report(&gateway);
    assert_eq!(report, links_report(&[]));
    for tag in ["images.dify.tag=1.14.0", "images.dify.tag=1.14.1"] {
        assert_eq!(
            links_report(&[&gateway[..], &[tag]].concat()),
            links_report(&[tag])
        );
    }
    let r = render(&gateway);
    assert!(
        r.manifest
            .resources
            .iter()
            .all(|r| r.kind != "Ingress" && r.kind != "Middleware")
    );
    assert_eq!(
        r.manifest
            .resources
            .iter()
            .filter(|r| r.kind == "HTTPRoute")
            .count(),
        3
    );
    let err = render_release(&spec(&["expose.kind=HTTPRoute"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expose.kind=HTTPRoute needs expose.gateway.parentRefs"),
        "{err}"
    );
}

/// Every link of both profiles, rendered with `extra` values, followed to its backend.
fn links_report(extra: &[&str]) -> String {
    let mut report = String::new();
    for (profile, set, base) in [
        ("/dify", vec![], "/dify"),
        (
            "/",
            vec![
                "expose.path=/",
                "images.web.repository=",
                "images.web.basePath=",
            ],
            "",
        ),
    ] {
        let r = render(&[&set[..], extra].concat());
        let m = &r.manifest;
        let api = pod(m, "Deployment", "dify-api");
        let web = pod(m, "Deployment", "dify-web");
        let api_env = |name: &str| env_value(m, container(&api, "api"), name);
        let web_env = |name: &str| env_value(m, container(&web, "web"), name);
        let origin = "https://192.0.2.10";
        assert_eq!(api_env("APP_WEB_URL"), origin, "APP_WEB_URL is the origin");
        for cors in ["CONSOLE_CORS_ALLOW_ORIGINS", "WEB_API_CORS_ALLOW_ORIGINS"] {
            assert_eq!(api_env(cors), origin, "{cors} is an origin");
        }
        let base_path = web_env("NEXT_PUBLIC_BASE_PATH");
        assert_eq!(base_path, base);
        let hook = api_env("ENDPOINT_URL_TEMPLATE").replace("{hook_id}", "HOOK");
        // (what, link, backend, path the backend must see)
        let links = [
            (
                "share link",
                format!("{}{base_path}/chat/TOKEN", api_env("APP_WEB_URL")),
                "dify-web:http",
                format!("{base}/chat/TOKEN"),
            ),
            (
                "workflow share link",
                format!("{}{base_path}/workflow/TOKEN", api_env("APP_WEB_URL")),
                "dify-web:http",
                format!("{base}/workflow/TOKEN"),
            ),
            (
                "account activation mail",
                format!("{}/activate?token=T", api_env("CONSOLE_WEB_URL")),
                "dify-web:http",
                format!("{base}/activate?token=T"),
            ),
            (
                "sign-in after OAuth",
                format!("{}/signin", api_env("CONSOLE_WEB_URL")),
                "dify-web:http",
                format!("{base}/signin"),
            ),
            (
                "explore page",
                format!("{origin}{base}/explore/apps"),
                "dify-web:http",
                format!("{base}/explore/apps"),
            ),
            (
                "OAuth callback",
                format!(
                    "{}/console/api/oauth/authorize/github",
                    api_env("CONSOLE_API_URL")
                ),
                "dify-api:http",
                "/console/api/oauth/authorize/github".to_owned(),
            ),
            (
                "console API (browser)",
                format!("{}/console/api/setup", web_env("CONSOLE_API_URL")),
                "dify-api:http",
                "/console/api/setup".to_owned(),
            ),
            (
                "web app API (browser)",
                format!("{}/api/passport", web_env("APP_API_URL")),
                "dify-api:http",
                "/api/passport".to_owned(),
            ),
            (
                "service API base",
                format!("{}/v1/chat-messages", api_env("SERVICE_API_URL")),
                "dify-api:http",
                "/v1/chat-messages".to_owned(),
            ),
            (
                "file preview",
                format!("{}/files/ID/file-preview?sign=S", api_env("FILES_URL")),
                "dify-api:http",
                "/files/ID/file-preview?sign=S".to_owned(),
            ),
            (
                "webhook trigger",
                format!("{}/triggers/webhook/ID", api_env("TRIGGER_URL")),
                "dify-api:http",
                "/triggers/webhook/ID".to_owned(),
            ),
            (
                "plugin endpoint",
                format!("{hook}/callback"),
                "dify-plugin-daemon:hooks",
                "/e/HOOK/callback".to_owned(),
            ),
            (
                "PWA manifest",
                format!("{origin}/manifest.json"),
                "dify-web:http",
                format!("{base}/manifest.json"),
            ),
            (
                "PDF preview worker",
                format!("{origin}/pdf.worker.min.mjs"),
                "dify-web:http",
                format!("{base}/pdf.worker.min.mjs"),
            ),
        ];
        let mut links = links.to_vec();
        // Collaboration: the web's socket.io client (4.8) connects to the URL's origin at
        // /socket.io/ and takes the URL's path as its namespace, which must be `/`.
        let socket_url = container_env(m, container(&web, "web"))
            .into_iter()
            .find(|(name, _)| name == "NEXT_PUBLIC_SOCKET_URL")
            .map(|(_, v)| v);
        if let Some(url) = socket_url {
            let (scheme, rest) = url.split_once("://").unwrap();
            let (host, namespace) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            assert_eq!(scheme, "wss", "{profile}: NEXT_PUBLIC_SOCKET_URL {url}");
            assert_eq!(
                namespace, "/",
                "{profile}: NEXT_PUBLIC_SOCKET_URL {url} namespace"
            );
            let server = if m.resources.iter().any(|r| r.name == "dify-api-websocket") {
                "dify-api-websocket:http"
            } else {
                "dify-api:http"
            };
            links.push((
                "collaboration socket",
                format!("https://{host}/socket.io/?EIO=4&transport=websocket"),
                server,
                "/socket.io/?EIO=4&transport=websocket".to_owned(),
            ));
        }
        report.push_str(&format!("== expose.path={profile}\n"));
        for (what, link, backend, seen) in links {
            let route =
                route(m, &link).unwrap_or_else(|| panic!("{profile}: no route for {what} {link}"));
            assert_eq!(route.backend, backend, "{profile}: {what} {link}");
            assert_eq!(route.path, seen, "{profile}: {what} {link}");
            // The hook proxy rebuilds the public URL from the forwarded headers.
            if backend == "dify-plugin-daemon:hooks" {
                let prefix = route.forwarded_prefix.clone().unwrap_or_default();
                assert_eq!(
                    format!("{origin}{prefix}{}", route.path),
                    link,
                    "{profile}: Dify-Hook-Url"
                );
            }
            report.push_str(&format!(
                "{what}: {link}\n    -> {} {}{}\n",
                route.backend,
                route.path,
                route
                    .forwarded_prefix
                    .map(|p| format!(" (X-Forwarded-Prefix: {p})"))
                    .unwrap_or_default()
            ));
        }
        // Nothing else at the host's root is taken by a sub-path release.
        if !base.is_empty() {
            for other in [
                "/",
                "/apps",
                "/console/api/setup",
                "/_next/static/x.js",
                "/favicon.ico",
            ] {
                assert_eq!(
                    route(m, &format!("{origin}{other}")),
                    None,
                    "{other} stays free"
                );
            }
        }
    }
    report
}

fn names(c: &Container) -> Vec<&str> {
    c.env.iter().flatten().map(|e| e.name.as_str()).collect()
}

/// An extra variable replaces the chart's of the same name: one entry, the operator's value.
#[test]
fn extra_env_replaces_a_chart_variable() {
    let r = render(&["dify.extraEnv.STORAGE_TYPE=s3", "dify.extraEnv.EXTRA=one"]);
    let m = &r.manifest;
    let job = m
        .resources
        .iter()
        .find(|r| r.kind == "Job")
        .unwrap()
        .name
        .clone();
    for (kind, name, c) in [
        ("Deployment", "dify-api", "api"),
        ("Deployment", "dify-worker", "worker"),
        ("Deployment", "dify-beat", "beat"),
        ("Job", job.as_str(), "migration"),
    ] {
        let p = pod(m, kind, name);
        let c = container(&p, c);
        let storage: Vec<_> = names(c)
            .into_iter()
            .filter(|n| *n == "STORAGE_TYPE")
            .collect();
        assert_eq!(storage.len(), 1, "{name}");
        assert_eq!(env_value(m, c, "STORAGE_TYPE"), "s3", "{name}");
        assert_eq!(env_value(m, c, "EXTRA"), "one", "{name}");
    }
}

/// An explicit Redis password with URL delimiters still gives a broker URL with that password.
#[test]
fn redis_password_is_percent_encoded_in_the_broker_url() {
    let password = "p/a#s?s@w:o%rd";
    let r = render(&[&format!("secrets.redisPassword={password}")]);
    let m = &r.manifest;
    let p = pod(m, "Deployment", "dify-worker");
    let c = container(&p, "worker");
    assert_eq!(env_value(m, c, "REDIS_PASSWORD"), password);
    assert_eq!(
        env_value(m, c, "CELERY_BROKER_URL"),
        "redis://:p%2Fa%23s%3Fs%40w%3Ao%25rd@dify-redis:6379/1"
    );
}

/// The migration Job checks the database reached the release's Alembic head.
#[test]
fn migration_job_is_gated_on_the_alembic_head() {
    let r = render(&[]);
    let m = &r.manifest;
    let name = m
        .resources
        .iter()
        .find(|r| r.kind == "Job")
        .unwrap()
        .name
        .clone();
    let p = pod(m, "Job", &name);
    let c = container(&p, "migration");
    assert_eq!(env_value(m, c, "DIFYRENDER_ALEMBIC_HEAD"), "6f5a9c2d8e1b");
    let command = c.command.as_ref().unwrap();
    assert_eq!(command[..2], ["/bin/bash".to_owned(), "-c".to_owned()]);
    assert!(command[2].contains("flask upgrade-db"));
    assert!(command[2].contains("SELECT version_num FROM alembic_version"));
    // The script holds nothing Kubernetes would expand.
    assert!(!command[2].contains("$("), "no $(VAR) in the gate");
}

/// With ReadWriteMany, a root init container hands the volume to Dify's user once.
#[test]
fn rwx_storage_gets_a_guarded_permission_fix() {
    let rwx = [
        "storage.accessMode=ReadWriteMany",
        "storage.storageClassName=nutanix-files",
    ];
    let r = render(&rwx);
    for name in ["dify-api", "dify-worker"] {
        let p = pod(&r.manifest, "Deployment", name);
        let init = &p.init_containers.as_ref().expect("init container")[0];
        assert_eq!(init.name, "init-permissions");
        let sc = init.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_user, Some(0));
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(
            caps.add.as_deref(),
            Some(
                &[
                    "CHOWN".to_owned(),
                    "DAC_OVERRIDE".to_owned(),
                    "FOWNER".to_owned()
                ][..]
            )
        );
        let cmd = init.command.as_ref().unwrap();
        assert_eq!(
            cmd[cmd.len() - 2..],
            ["1001:1001".to_owned(), "/app/api/storage".to_owned()]
        );
        assert!(cmd[2].contains(".init_permissions"));
        // The main containers stay non-root.
        assert_eq!(p.security_context.unwrap().run_as_non_root, Some(true));
    }
    let off = render(&[&rwx[..], &["storage.initPermissions=false"]].concat());
    let rwo = render(&[]);
    for m in [&off.manifest, &rwo.manifest] {
        assert!(pod(m, "Deployment", "dify-api").init_containers.is_none());
    }
}

fn squid_conf(m: &Manifest) -> String {
    find(m, "ConfigMap", "dify-ssrf-proxy").body["data"]["squid.conf"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn squid_reaches_the_sandbox_by_its_fully_qualified_name() {
    // The reverse proxy to the sandbox exists up to Dify 1.14 (switch ssrfSandboxReverseProxy).
    let conf = squid_conf(&render(&["images.dify.tag=1.14.2"]).manifest);
    assert!(
        conf.contains(
            "\ncache_peer dify-sandbox.dify.svc.cluster.local parent 8194 0 no-query originserver name=sandbox_peer\ncache_peer_access sandbox_peer allow sandbox_port\ncache_peer_access sandbox_peer deny all\n"
        ),
        "{conf}"
    );
    assert!(conf.contains("\naccess_log /var/log/squid/access.log dify_log\n"));
    assert!(conf.contains("\nmax_filedescriptors 65536\n"));
    let other =
        squid_conf(&render(&["clusterDomain=nkp.internal", "images.dify.tag=1.14.2"]).manifest);
    assert!(!squid_conf(&render(&[]).manifest).contains("cache_peer"));
    assert!(other.contains("cache_peer dify-sandbox.dify.svc.nkp.internal parent"));
    // Private destinations are refused unless listed.
    assert!(conf.contains("\nhttp_access deny to_private\n"));
    assert!(!conf.contains("allowed_private"));
    let allowed =
        squid_conf(&render(&["ssrfProxy.allowedPrivateNetworks={10.1.0.0/16,192.0.2.7}"]).manifest);
    assert!(allowed.contains("\nacl allowed_private dst 10.1.0.0/16 192.0.2.7\nhttp_access allow allowed_private localnet\nhttp_access deny to_private\n"));
}

#[test]
fn remote_plugin_debugging_is_off_unless_asked_for() {
    let r = render(&[]);
    let m = &r.manifest;
    let p = pod(m, "Deployment", "dify-plugin-daemon");
    let daemon = container(&p, "plugin-daemon");
    assert_eq!(
        env_value(m, daemon, "PLUGIN_REMOTE_INSTALLING_ENABLED"),
        "false"
    );
    assert_eq!(daemon.ports.as_ref().unwrap().len(), 1);
    assert!(
        m.resources
            .iter()
            .all(|r| r.name != "dify-plugin-debugging")
    );
    let api = pod(m, "Deployment", "dify-api");
    assert!(!names(container(&api, "api")).contains(&"PLUGIN_REMOTE_INSTALL_HOST"));

    let on = render(&[
        "pluginDaemon.remoteDebugging.enabled=true",
        "pluginDaemon.remoteDebugging.host=192.0.2.20",
    ]);
    let m = &on.manifest;
    let svc: Service = find(m, "Service", "dify-plugin-debugging")
        .to_typed()
        .unwrap();
    assert_eq!(
        svc.spec.as_ref().unwrap().type_.as_deref(),
        Some("LoadBalancer")
    );
    let api = pod(m, "Deployment", "dify-api");
    assert_eq!(
        env_value(m, container(&api, "api"), "PLUGIN_REMOTE_INSTALL_HOST"),
        "192.0.2.20"
    );
    assert_eq!(
        env_value(m, container(&api, "api"), "PLUGIN_REMOTE_INSTALL_PORT"),
        "5003"
    );
    let p = pod(m, "Deployment", "dify-plugin-daemon");
    assert_eq!(
        env_value(
            m,
            container(&p, "plugin-daemon"),
            "PLUGIN_REMOTE_INSTALLING_ENABLED"
        ),
        "true"
    );

    let node_port = render(&[
        "pluginDaemon.remoteDebugging.enabled=true",
        "pluginDaemon.remoteDebugging.host=192.0.2.21",
        "pluginDaemon.remoteDebugging.serviceType=NodePort",
        "pluginDaemon.remoteDebugging.nodePort=31003",
    ]);
    let m = &node_port.manifest;
    let api = pod(m, "Deployment", "dify-api");
    assert_eq!(
        env_value(m, container(&api, "api"), "PLUGIN_REMOTE_INSTALL_PORT"),
        "31003"
    );
    let svc: Service = find(m, "Service", "dify-plugin-debugging")
        .to_typed()
        .unwrap();
    assert_eq!(svc.spec.unwrap().ports.unwrap()[0].node_port, Some(31003));
}

#[test]
fn sandbox_python_packages_are_mounted_as_requirements() {
    let none = render(&[]);
    assert!(
        none.manifest
            .resources
            .iter()
            .all(|r| r.name != "dify-sandbox-dependencies")
    );
    let r = render(&["sandbox.pythonPackages={numpy==2.1.3,requests}"]);
    let cm = find(&r.manifest, "ConfigMap", "dify-sandbox-dependencies");
    assert_eq!(
        cm.body["data"]["python-requirements.txt"],
        "numpy==2.1.3\nrequests\n"
    );
    let p = pod(&r.manifest, "Deployment", "dify-sandbox");
    let mounts = container(&p, "sandbox").volume_mounts.clone().unwrap();
    assert_eq!(mounts[0].mount_path, "/dependencies");
    let checksum = |m: &Manifest| {
        find(m, "Deployment", "dify-sandbox").body["spec"]["template"]["metadata"]["annotations"]["difyrender.io/config-checksum"].clone()
    };
    let other = render(&["sandbox.pythonPackages={numpy==2.1.3}"]);
    assert_ne!(
        checksum(&r.manifest),
        checksum(&other.manifest),
        "a change rolls the sandbox"
    );
}

#[test]
fn first_run_page_is_guarded_by_an_init_password() {
    let r = render(&[]);
    let m = &r.manifest;
    let api = pod(m, "Deployment", "dify-api");
    let init = env_value(m, container(&api, "api"), "INIT_PASSWORD");
    assert!(
        init.len() >= 20 && init.len() <= 30,
        "Dify's form accepts at most 30 characters"
    );
    assert_eq!(
        init,
        difyrender::values::secrets::derive(MASTER, "init-password")[..24]
    );
    let explicit = render(&["secrets.initPassword=chosen-by-the-operator"]);
    let api = pod(&explicit.manifest, "Deployment", "dify-api");
    assert_eq!(
        env_value(&explicit.manifest, container(&api, "api"), "INIT_PASSWORD"),
        "chosen-by-the-operator"
    );
    let notes = r.notes().join("\n");
    assert!(notes.contains("https://192.0.2.10/dify/install"));
    assert!(notes.contains(
        "kubectl get secret -n dify dify-keys -o jsonpath='{.data.INIT_PASSWORD}' | base64 -d"
    ));
    assert!(
        !notes.contains(&init),
        "the note names the command, never the password"
    );
}

#[test]
fn external_postgresql_tls_reaches_api_and_plugin_daemon() {
    let r = render(&[
        "postgresql.enabled=false",
        "postgresql.external.host=db.example.com",
        "postgresql.external.sslMode=require",
        "postgresql.external.defaultDatabase=dify_admin",
    ]);
    let m = &r.manifest;
    let api = pod(m, "Deployment", "dify-api");
    assert_eq!(
        env_value(m, container(&api, "api"), "DB_EXTRAS"),
        "sslmode=require"
    );
    let p = pod(m, "Deployment", "dify-plugin-daemon");
    let daemon = container(&p, "plugin-daemon");
    assert_eq!(env_value(m, daemon, "DB_SSL_MODE"), "require");
    assert_eq!(env_value(m, daemon, "DB_DEFAULT_DATABASE"), "dify_admin");
    let notes = r.notes().join("\n");
    assert!(
        notes.contains("External PostgreSQL db.example.com:5432 (sslmode require)"),
        "{notes}"
    );
    assert!(notes.contains("CREATE DATABASE"));
    // The bundled server needs no TLS and no note.
    let bundled = render(&[]);
    let api = pod(&bundled.manifest, "Deployment", "dify-api");
    assert!(!names(container(&api, "api")).contains(&"DB_EXTRAS"));
    assert!(
        bundled.notes().iter().all(|n| !n.contains("PostgreSQL")),
        "{:#?}",
        bundled.notes()
    );
}

/// The plugin daemon's /e/ route goes through the hook proxy, which passes the public URL.
#[test]
fn plugin_endpoints_go_through_the_hook_proxy() {
    let r = render(&[]);
    let m = &r.manifest;
    let conf = find(m, "ConfigMap", "dify-hook-proxy").body["data"]["nginx.conf"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(conf.contains("proxy_set_header Dify-Hook-Url $hook_scheme://$hook_host$http_x_forwarded_prefix$request_uri;"));
    assert!(conf.contains("proxy_pass http://127.0.0.1:5002;"));
    let p = pod(m, "Deployment", "dify-plugin-daemon");
    let proxy = container(&p, "hook-proxy");
    assert_eq!(proxy.ports.as_ref().unwrap()[0].container_port, 5080);
    assert_eq!(
        proxy.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
    assert_service_url(m, "http://dify-plugin-daemon:5080");
}

/// With secrets.existingSecret, nothing rendered holds or hashes a key, and no master key is
/// needed: every secretKeyRef names the operator's Secret and its key names.
#[test]
fn existing_secret_replaces_the_keys_secret() {
    let mut s = spec(&[
        "secrets.existingSecret=ops-keys",
        "secrets.existingSecretKeys.SECRET_KEY=dify-secret-key",
    ]);
    s.master_key_env = None;
    let r = render_release(&s).expect("renders without a master key");
    let m = &r.manifest;
    assert!(m.resources.iter().all(|r| r.kind != "Secret"));
    fn secret_refs<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "secretKeyRef" {
                        out.push(v);
                    }
                    secret_refs(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| secret_refs(v, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    for res in &m.resources {
        assert!(
            !serde_json::to_string(&res.body)
                .unwrap()
                .contains("keys-checksum"),
            "{}",
            res.id()
        );
        secret_refs(&res.body, &mut refs);
    }
    assert!(refs.iter().all(|r| r["name"] == "ops-keys"), "{refs:?}");
    let refs = refs.len();
    assert!(refs > 20);
    let api = pod(m, "Deployment", "dify-api");
    let secret_key = container(&api, "api")
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "SECRET_KEY")
        .unwrap();
    let sel = secret_key
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (sel.name.as_str(), sel.key.as_str()),
        ("ops-keys", "dify-secret-key")
    );
    // A key set here would be ignored: refused instead.
    let mut both = spec(&[
        "secrets.existingSecret=ops-keys",
        "secrets.postgresPassword=pw-123456",
    ]);
    both.master_key_env = None;
    let err = render_release(&both).unwrap_err().to_string();
    assert!(
        err.contains("secrets.postgresPassword has no effect with secrets.existingSecret"),
        "{err}"
    );
    assert!(!err.contains("pw-123456"));
}

/// Every pod runs as the release's ServiceAccount without an API token.
#[test]
fn pods_run_as_the_release_service_account_without_a_token() {
    let r = render(&[]);
    let m = &r.manifest;
    let sa = find(m, "ServiceAccount", "dify-pods");
    assert_eq!(sa.body["automountServiceAccountToken"], false);
    let mut pods = 0;
    for res in m
        .resources
        .iter()
        .filter(|r| ["Deployment", "StatefulSet", "Job"].contains(&r.kind.as_str()))
    {
        let p = pod(m, &res.kind, &res.name);
        assert_eq!(
            p.service_account_name.as_deref(),
            Some("dify-pods"),
            "{}",
            res.id()
        );
        assert_eq!(
            p.automount_service_account_token,
            Some(false),
            "{}",
            res.id()
        );
        pods += 1;
    }
    // 1.16.1: api, api-websocket, worker, beat, web, plugin daemon, sandbox, ssrf proxy (8),
    // the agent stack (3), the datastores (3) and the migration Job.
    assert_eq!(pods, 15);
}

/// Scheduling, metadata and extras of a component's pods reach exactly that component.
#[test]
fn pod_settings_reach_their_component() {
    let r = render(&[
        "storage.accessMode=ReadWriteMany",
        "storage.storageClassName=nutanix-files",
        "api.pod.nodeSelector.pool=dify",
        "api.pod.priorityClassName=dify-high",
        "api.pod.labels.team=ai",
        "api.pod.annotations.example\\.com/owner=ai",
        "api.pod.tolerations[0].key=dedicated",
        "api.pod.tolerations[0].operator=Exists",
        "api.pod.volumes[0].name=ca",
        "api.pod.volumes[0].configMap.name=corporate-ca",
        "api.pod.volumeMounts[0].name=ca",
        "api.pod.volumeMounts[0].mountPath=/etc/ssl/corporate",
        "api.pod.env[0].name=FROM_SECRET",
        "api.pod.env[0].valueFrom.secretKeyRef.name=s",
        "api.pod.env[0].valueFrom.secretKeyRef.key=k",
        "dify.extraEnv.PROXY_URL.valueFrom.secretKeyRef.name=proxy",
        "dify.extraEnv.PROXY_URL.valueFrom.secretKeyRef.key=url",
    ]);
    let m = &r.manifest;
    let api = pod(m, "Deployment", "dify-api");
    assert_eq!(api.node_selector.as_ref().unwrap()["pool"], "dify");
    assert_eq!(api.priority_class_name.as_deref(), Some("dify-high"));
    assert_eq!(
        api.tolerations.as_ref().unwrap()[0].key.as_deref(),
        Some("dedicated")
    );
    let volumes: Vec<&str> = api
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(volumes, ["storage", "ca"]);
    let c = container(&api, "api");
    let mounts: Vec<&str> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|v| v.mount_path.as_str())
        .collect();
    assert_eq!(mounts, ["/app/api/storage", "/etc/ssl/corporate"]);
    for name in ["FROM_SECRET", "PROXY_URL"] {
        let e = c.env.iter().flatten().find(|e| e.name == name).unwrap();
        assert!(
            e.value_from.as_ref().unwrap().secret_key_ref.is_some(),
            "{name}"
        );
    }
    let meta = &find(m, "Deployment", "dify-api").body["spec"]["template"]["metadata"];
    assert_eq!(meta["labels"]["team"], "ai");
    assert_eq!(meta["annotations"]["example.com/owner"], "ai");
    assert!(meta["annotations"]["difyrender.io/keys-checksum"].is_string());
    // The worker shares dify.extraEnv but not the api's pod settings.
    let worker = pod(m, "Deployment", "dify-worker");
    assert!(worker.node_selector.is_none());
    assert!(
        container(&worker, "worker")
            .env
            .iter()
            .flatten()
            .any(|e| e.name == "PROXY_URL")
    );
    assert!(
        !container(&worker, "worker")
            .env
            .iter()
            .flatten()
            .any(|e| e.name == "FROM_SECRET")
    );
    // The chart's own labels are not the operator's to replace.
    let err = render_release(&spec(&["api.pod.labels.app\\.kubernetes\\.io/component=x"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("api.pod.labels.app.kubernetes.io/component: labels under app.kubernetes.io/"),
        "{err}"
    );
    // With ReadWriteOnce storage the chart's podAffinity keeps api and worker together.
    let err = render_release(&spec(&["worker.pod.affinity.podAffinity.x=1"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("worker.pod.affinity.podAffinity cannot be set here"),
        "{err}"
    );
    let rwo = render(&[
        "api.pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool",
        "api.pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
    ]);
    let affinity = pod(&rwo.manifest, "Deployment", "dify-api")
        .affinity
        .unwrap();
    assert!(
        affinity.pod_affinity.is_some() && affinity.node_affinity.is_some(),
        "both kept"
    );
}

/// More than one pod gets a PodDisruptionBudget; autoscaling hands replicas to an HPA, and is
/// refused where the pods must share one node.
#[test]
fn disruption_budgets_and_autoscalers() {
    let single = render(&[]);
    assert!(
        single
            .manifest
            .resources
            .iter()
            .all(|r| r.kind != "PodDisruptionBudget" && r.kind != "HorizontalPodAutoscaler")
    );
    let r = render(&[
        "storage.accessMode=ReadWriteMany",
        "storage.storageClassName=nutanix-files",
        "api.autoscaling.enabled=true",
        "web.replicas=2",
        "sandbox.autoscaling.enabled=true",
        "sandbox.autoscaling.maxReplicas=1",
        "sandbox.autoscaling.minReplicas=1",
    ]);
    let m = &r.manifest;
    let hpa = find(m, "HorizontalPodAutoscaler", "dify-api");
    assert_eq!(hpa.body["spec"]["scaleTargetRef"]["name"], "dify-api");
    assert_eq!(hpa.body["spec"]["minReplicas"], 2);
    assert!(
        find(m, "Deployment", "dify-api").body["spec"]
            .get("replicas")
            .is_none(),
        "the HPA owns replicas"
    );
    for name in ["dify-api", "dify-web"] {
        let pdb = find(m, "PodDisruptionBudget", name);
        let deployment = find(m, "Deployment", name);
        for (k, v) in pdb.body["spec"]["selector"]["matchLabels"]
            .as_object()
            .unwrap()
        {
            assert_eq!(
                &deployment.body["spec"]["template"]["metadata"]["labels"][k], v,
                "{name} selects its pods"
            );
        }
    }
    assert!(
        m.resources
            .iter()
            .all(|r| !(r.kind == "PodDisruptionBudget" && r.name == "dify-sandbox")),
        "one pod at most: no budget"
    );
    let err = render_release(&spec(&["worker.autoscaling.enabled=true"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("worker.autoscaling.enabled needs storage.accessMode=ReadWriteMany"),
        "{err}"
    );
}

/// A certificate names a host: TLS needs a DNS name, and then every Ingress serves that name;
/// cert-manager is asked once, on the web Ingress.
#[test]
fn tls_with_a_certificate_for_the_host() {
    let r = render(&[
        "external.host=dify.example.com",
        "expose.tls.secretName=dify-tls",
        "expose.tls.clusterIssuer=corporate-ca",
    ]);
    let m = &r.manifest;
    let mut issuers = 0;
    for res in m.resources.iter().filter(|r| r.kind == "Ingress") {
        let ingress: Ingress = res.to_typed().unwrap();
        let spec = ingress.spec.unwrap();
        let tls = &spec.tls.unwrap()[0];
        assert_eq!(
            tls.hosts.as_deref(),
            Some(&["dify.example.com".to_owned()][..])
        );
        assert_eq!(tls.secret_name.as_deref(), Some("dify-tls"));
        assert_eq!(
            spec.rules.unwrap()[0].host.as_deref(),
            Some("dify.example.com"),
            "{}",
            res.name
        );
        issuers += ingress
            .metadata
            .annotations
            .unwrap()
            .contains_key("cert-manager.io/cluster-issuer") as usize;
    }
    assert_eq!(issuers, 1, "one Certificate, not one per Ingress");
    let err = render_release(&spec(&["expose.tls.secretName=dify-tls"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expose.tls.secretName needs external.host to be a DNS name"),
        "{err}"
    );
    // Without TLS the routes serve any host, addresses included.
    let plain = render(&["external.host=dify.example.com"]);
    let ingress: Ingress = find(&plain.manifest, "Ingress", "dify-web")
        .to_typed()
        .unwrap();
    assert!(ingress.spec.unwrap().rules.unwrap()[0].host.is_none());
}

/// gunicorn as Dify's compose runs it, per component (1.14.1 docker-compose.yaml and
/// envs/core-services/shared.env.example): the api `gevent` with 10 connections per worker,
/// the api_websocket one GeventWebSocketWorker with 1000. Without SERVER_WORKER_CONNECTIONS
/// the websocket server took ten sockets and then hung; without SERVER_WORKER_CLASS the 1.14.x
/// entrypoint ran the api with the websocket worker. 1.14.0 (no api_websocket) serves
/// /socket.io/ from the api, which then needs the websocket worker. The websocket server's
/// readiness probe asks /health over HTTP, which waits for a free connection: a TCP probe is
/// answered by the kernel and says ready when the server is full.
#[test]
fn gunicorn_workers_as_compose_sets_them_per_component() {
    const WS: &str = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker";
    for (tag, api_class) in [("1.11.4", "gevent"), ("1.14.0", WS), ("1.14.1", "gevent")] {
        let r = render(&[&format!("images.dify.tag={tag}")]);
        let m = &r.manifest;
        let api = pod(m, "Deployment", "dify-api");
        let api_env = container_env(m, container(&api, "api"));
        assert_eq!(
            env_get(&api_env, "SERVER_WORKER_CLASS"),
            api_class,
            "{tag} api"
        );
        assert_eq!(
            env_get(&api_env, "SERVER_WORKER_CONNECTIONS"),
            "10",
            "{tag} api"
        );
        let has_ws = m.resources.iter().any(|r| r.name == "dify-api-websocket");
        assert_eq!(has_ws, tag == "1.14.1", "{tag}");
        if has_ws {
            let ws = pod(m, "Deployment", "dify-api-websocket");
            let c = container(&ws, "api-websocket");
            let env = container_env(m, c);
            assert_eq!(env_get(&env, "SERVER_WORKER_CLASS"), WS);
            assert_eq!(env_get(&env, "SERVER_WORKER_AMOUNT"), "1");
            assert_eq!(env_get(&env, "SERVER_WORKER_CONNECTIONS"), "1000");
            let probe = c.readiness_probe.as_ref().expect("a readiness probe");
            assert!(probe.tcp_socket.is_none(), "{probe:?}");
            let http = probe.http_get.as_ref().expect("an HTTP probe");
            assert_eq!(http.path.as_deref(), Some("/health"));
        }
        // The worker and beat run Celery, not gunicorn: no gunicorn settings there.
        for (name, container_name) in [("dify-worker", "worker"), ("dify-beat", "beat")] {
            let p = pod(m, "Deployment", name);
            let env = container_env(m, container(&p, container_name));
            assert!(
                env.iter().all(|(n, _)| !n.starts_with("SERVER_WORKER_")),
                "{tag} {name}"
            );
        }
    }
}

/// The production example on NKP (examples/nkp.values.yaml + nkp-production.values.yaml),
/// with more `--set` values.
fn render_production(set: &[&str]) -> Result<RenderedRelease, difyrender::release::Error> {
    let mut spec = release_spec(set.iter().map(|s| s.to_string()).collect(), MASTER);
    spec.sources.files = vec![
        root().join("examples/nkp.values.yaml"),
        root().join("examples/nkp-production.values.yaml"),
    ];
    render_release(&spec)
}

/// PostgreSQL's max_connections covers every pool the release can open: Dify's SQLAlchemy
/// pool (30 + 10 overflow, and Dify's pgvector pool of 5 with pgvector) in api, api-websocket,
/// worker and beat, the plugin daemon's 30, each times its most pods (the autoscaler's
/// maximum, plus a rolling update's surge pod), and PostgreSQL's 3 superuser slots. With
/// compose's 100 the 1.14.1 pools (about 190) ran the server out of connections. The bundled
/// server is refused below the need (naming the key); an external server's note says it.
#[test]
fn postgresql_allows_every_connection_the_release_can_open() {
    use difyrender::release::connections::{budget, bundled_max_connections};
    // 1.14.1 at its defaults: api, api-websocket and worker roll with a surge pod.
    let r = render(&["images.dify.tag=1.14.1"]);
    let b = budget(&r.manifest);
    assert_eq!(
        b.explain(),
        "api 2×40, api-websocket 2×40, beat 1×40, plugin-daemon 1×30, worker 2×40, 3 reserved for superusers"
    );
    assert_eq!(b.needed(), 80 + 80 + 30 + 40 + 80 + 3);
    // max_connections=auto (the default) sizes the bundled server for exactly that.
    assert_eq!(bundled_max_connections(&r.manifest), Some(b.needed()));

    // A server sized below the need is refused, naming the key and the need.
    let with_max = |set: &[&str], max: &str| {
        let mut s = spec(set);
        s.sources
            .set_string
            .push(format!("postgresql.settings.max_connections={max}"));
        render_release(&s)
    };
    let err = with_max(&["images.dify.tag=1.14.1"], "200")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("postgresql.settings.max_connections is 200")
            && err.contains("open 313 connections"),
        "{err}"
    );
    // Pool sizes from dify.extraEnv count, at both ends.
    let small_pools = |max: &str| {
        let mut s = spec(&["images.dify.tag=1.14.1"]);
        s.sources
            .set_string
            .push("dify.extraEnv.SQLALCHEMY_POOL_SIZE=10".into());
        if !max.is_empty() {
            s.sources
                .set_string
                .push(format!("postgresql.settings.max_connections={max}"));
        }
        render_release(&s).unwrap()
    };
    let small = small_pools("200");
    let need = 2 * 20 + 2 * 20 + 30 + 20 + 2 * 20 + 3;
    assert_eq!(budget(&small.manifest).needed(), need);
    let auto = small_pools("");
    assert_eq!(bundled_max_connections(&auto.manifest), Some(need));

    // The production example: autoscaled api (max 6) and worker (max 8) on pgvector, an
    // external server: the note says what it must allow.
    let r = render_production(&[]).unwrap();
    let b = budget(&r.manifest);
    assert_eq!(
        b.needed(),
        8 * 45 + 45 + 30 + 10 * 45 + 3,
        "{}",
        b.explain()
    );
    let notes = r.notes();
    assert!(
        notes.iter().any(|n| n.contains(&format!(
            "can open {} connections to it ({})",
            b.needed(),
            b.explain()
        ))),
        "{notes:#?}"
    );
    // With the bundled server instead: sized for it, or refused when set below it.
    let bundled = render_production(&["postgresql.enabled=true"]).unwrap();
    assert_eq!(bundled_max_connections(&bundled.manifest), Some(888));
    let mut s = release_spec(vec!["postgresql.enabled=true".into()], MASTER);
    s.sources.files = vec![
        root().join("examples/nkp.values.yaml"),
        root().join("examples/nkp-production.values.yaml"),
    ];
    s.sources
        .set_string
        .push("postgresql.settings.max_connections=500".into());
    let err = render_release(&s).unwrap_err().to_string();
    assert!(
        err.contains("is 500") && err.contains("open 888 connections"),
        "{err}"
    );
}

/// The web image with a base path builds from web/ before 1.14.0 and from the repository root
/// (`-f web/Dockerfile .`) from 1.14.0 on: the refusal of the stock image under `/dify` gives
/// the command of the release being rendered.
#[test]
fn web_build_command_follows_the_release() {
    let stock = ["images.web.repository=", "images.web.basePath="];
    for (tag, command) in [
        (
            "1.11.4",
            "docker build --build-arg NEXT_PUBLIC_BASE_PATH=/dify -t <registry>/dify-web:1.11.4 web/",
        ),
        (
            "1.13.3",
            "docker build --build-arg NEXT_PUBLIC_BASE_PATH=/dify -t <registry>/dify-web:1.13.3 web/",
        ),
        (
            "1.14.0",
            "docker build -f web/Dockerfile --build-arg NEXT_PUBLIC_BASE_PATH=/dify -t <registry>/dify-web:1.14.0 .",
        ),
        (
            "1.14.1",
            "docker build -f web/Dockerfile --build-arg NEXT_PUBLIC_BASE_PATH=/dify -t <registry>/dify-web:1.14.1 .",
        ),
    ] {
        let tag_set = format!("images.dify.tag={tag}");
        let err = render_release(&spec(&[&stock[..], &[tag_set.as_str()]].concat()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("      {command}\n")), "{tag}: {err}");
    }
}

/// Before 1.15 Dify's own ssrf proxy lets workflows reach private addresses; the chart's squid
/// does not. The notes say so for those releases and name the value that opens a network.
/// Negative control: a release whose compose denies them too gets no such note.
#[test]
fn notes_before_1_15_say_private_destinations_are_denied() {
    for tag in ["1.11.4", "1.14.1"] {
        let notes = render(&[&format!("images.dify.tag={tag}")]).notes();
        let note = notes
            .iter()
            .find(|n| n.contains("ssrfProxy.allowedPrivateNetworks"))
            .unwrap_or_else(|| panic!("{tag}: {notes:#?}"));
        assert!(
            note.contains(&format!("Dify {tag}'s own compose allows them")),
            "{note}"
        );
        assert!(note.contains("403"), "{note}");
    }
    let mut s = spec(&["images.dify.tag=1.14.1"]);
    for r in &mut s.chart.versions.releases {
        r.switches
            .insert("composeSsrfDeniesPrivate".into(), Value::Bool(true));
    }
    let notes = render_release(&s).unwrap().notes();
    assert!(
        notes
            .iter()
            .all(|n| !n.contains("ssrfProxy.allowedPrivateNetworks")),
        "{notes:#?}"
    );
}
