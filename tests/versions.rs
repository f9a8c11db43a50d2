//! The release table against the facts (tests/data/dify-facts.json, a copy of the needed subset
//! of ../shared/reference, checked against the reference itself, which must be present), every
//! release rendered and wired as its own facts say, immutable fields that never change between
//! releases, refusals, and the images list.

mod common;

use common::*;
use difyrender::chart::Chart;
use difyrender::manifest::{Manifest, Resource};
use difyrender::release::{ReleaseSpec, RenderedRelease, render_release};
use difyrender::versions::{DifyRelease, ReleaseTable, VersionKey};
use serde_json::Value;
use std::collections::BTreeSet;

const MASTER: &str = "versions-test-master-key-0123456789";

fn facts() -> Value {
    serde_json::from_str(&read(&root().join("tests/data/dify-facts.json"))).unwrap()
}

fn table() -> ReleaseTable {
    Chart::embedded().versions
}

fn key(v: &str) -> VersionKey {
    VersionKey::parse(v).unwrap_or_else(|| panic!("{v} is a version"))
}

/// `repo:tag` → `tag`.
fn tag_of(image: &str) -> &str {
    image.rsplit_once(':').map(|(_, t)| t).unwrap()
}

fn rule(name: &str) -> Value {
    facts()["rules"][name]["value"].clone()
}

fn spec(version: &str, extra: &[&str]) -> ReleaseSpec {
    let mut set: Vec<String> = [
        "expose.ingressClassName=kommander-traefik",
        "expose.path=/",
        "external.scheme=https",
        "external.host=192.0.2.10",
        "storage.storageClassName=nutanix-volume",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    set.push(format!("images.dify.tag={version}"));
    set.extend(extra.iter().map(|s| s.to_string()));
    release_spec(set, MASTER)
}

fn render(version: &str) -> RenderedRelease {
    render_release(&spec(version, &[])).unwrap_or_else(|e| panic!("{version} renders: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The table against the facts.

#[test]
fn the_facts_copy_matches_the_reference() {
    let reference = root().join("../shared/reference");
    let images = reference.join("dify-images.json");
    let md = reference.join("dify-versions.md");
    // The copy in tests/data is what every other test checks against; without the reference
    // it could drift unnoticed, so a missing reference fails instead of passing.
    assert!(
        images.exists() && md.exists(),
        "{} (dify-images.json, dify-versions.md) is missing: the facts copy in tests/data cannot \
         be checked against it; put the reference beside the clone",
        reference.display()
    );
    let reference_images: Value = serde_json::from_str(&read(&images)).unwrap();
    let md = read(&md);
    let facts = facts();
    let releases = facts["releases"].as_object().unwrap();
    assert!(releases.len() >= 19);
    for (version, f) in releases {
        for (service, image) in f["compose"].as_object().unwrap() {
            assert_eq!(
                &reference_images[version][service][0], image,
                "{version} {service}: the copy differs from dify-images.json"
            );
        }
        // Every service the chart runs is in the copy.
        for service in ["api", "worker", "web", "sandbox", "plugin_daemon", "redis"] {
            assert!(
                reference_images[version].get(service).is_none()
                    || f["compose"].get(service).is_some(),
                "{version} lacks {service}"
            );
        }
        if let Some(date) = f["date"].as_str() {
            let row = format!("| {version} ({date}) |");
            let line = md
                .lines()
                .find(|l| l.starts_with(&row))
                .unwrap_or_else(|| panic!("dify-versions.md has the row {row}"));
            let head = f["alembicHead"].as_str().unwrap();
            assert!(line.ends_with(&format!("| {head} |")), "{line} vs {head}");
        }
    }
    assert!(md.contains("b45e25c2d166"), "the beta head is in §5");
}

#[test]
fn the_table_holds_every_stable_release_from_the_minimum() {
    let facts = facts();
    let minimum = key(rule("minimumSupported").as_str().unwrap());
    let table = table();
    assert_eq!(key(&table.minimum), minimum);
    let expected: Vec<&str> = facts["releases"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|v| key(v) >= minimum && !v.contains("beta"))
        .collect();
    let got: Vec<&str> = table.releases.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(got, expected, "one entry per stable release, oldest first");
    assert_eq!(got.len(), 16);
}

fn expected_queues(version: &str) -> BTreeSet<String> {
    let ranges = rule("celeryQueues");
    let range = ranges
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            key(r["from"].as_str().unwrap()) <= key(version)
                && key(version) <= key(r["to"].as_str().unwrap())
        })
        .unwrap_or_else(|| panic!("rule 7 covers {version}"));
    range["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q.as_str().unwrap().to_owned())
        .collect()
}

/// What each switch must be for a release, from the facts alone.
fn expected_switches(r: &DifyRelease, compose: &Value) -> Value {
    let v = key(&r.version);
    let sandbox = tag_of(compose["sandbox"].as_str().unwrap());
    let daemon = tag_of(compose["plugin_daemon"].as_str().unwrap());
    let daemon_version = key(daemon.trim_end_matches("-local"));
    let python = rule("sandboxPythonPath");
    let socket = rule("socketIo");
    serde_json::json!({
        "weaviateGrpcEndpoint": v >= key("1.10.0"),
        "migrationMode": v >= key("1.7.1"),
        "migrationExitsOnFailure": v >= key(rule("migrationExitsOnFailureFrom").as_str().unwrap()),
        "webPm2": v <= key(rule("webPm2Until").as_str().unwrap()),
        "socketIo": match socket.get(&r.version).and_then(Value::as_str) {
            None => "none",
            Some("api") => "api",
            Some("api_websocket") => "api-websocket",
            Some(other) => panic!("unknown socket.io target {other}"),
        },
        "pluginDaemonMigratesOnStart":
            daemon_version >= key(rule("pluginDaemonMigratesOnStartFrom").as_str().unwrap()),
        "pluginDaemonRedisTlsOptions":
            daemon_version >= key(rule("pluginDaemonRedisTlsOptionsFrom").as_str().unwrap()),
        "sandboxPythonPath": if key(sandbox) >= key("0.2.14") {
            &python["from-0.2.14"]
        } else {
            &python["before-0.2.14"]
        },
    })
}

#[test]
fn every_pin_head_queue_and_switch_matches_the_facts() {
    let facts = facts();
    for r in &table().releases {
        let f = &facts["releases"][&r.version];
        let compose = &f["compose"];
        let v = &r.version;
        assert_eq!(
            tag_of(compose["api"].as_str().unwrap()),
            r.images.api,
            "{v} api"
        );
        assert_eq!(
            tag_of(compose["web"].as_str().unwrap()),
            r.images.web,
            "{v} web"
        );
        assert_eq!(
            tag_of(compose["plugin_daemon"].as_str().unwrap()),
            r.images.plugin_daemon,
            "{v} plugin daemon"
        );
        assert_eq!(
            tag_of(compose["sandbox"].as_str().unwrap()),
            r.images.sandbox,
            "{v} sandbox"
        );
        assert_eq!(
            tag_of(compose["weaviate"].as_str().unwrap()),
            r.images.weaviate,
            "{v} weaviate"
        );
        assert_eq!(
            f["alembicHead"],
            r.alembic_head.as_str(),
            "{v} Alembic head"
        );
        assert_eq!(f["date"], r.date.as_str(), "{v} date");
        let queues: BTreeSet<String> = r.celery_queues.iter().cloned().collect();
        assert_eq!(
            queues.len(),
            r.celery_queues.len(),
            "{v}: a queue is listed twice"
        );
        assert_eq!(queues, expected_queues(v), "{v} Celery queues");
        assert_eq!(
            Value::Object(r.switches.clone()),
            expected_switches(r, compose),
            "{v} switches"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering.

fn find<'a>(m: &'a Manifest, kind: &str, name: &str) -> Option<&'a Resource> {
    m.resources
        .iter()
        .find(|r| r.kind == kind && r.name == name)
}

fn pod_spec(r: &Resource) -> &Value {
    r.body.pointer("/spec/template/spec").unwrap()
}

fn container<'a>(r: &'a Resource, name: &str) -> &'a Value {
    pod_spec(r)["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{} has a container {name}", r.id()))
}

/// A literal env value (`None` when absent; from a Secret: `"<secret:KEY>"`).
fn env(c: &Value, name: &str) -> Option<String> {
    let e = c["env"].as_array()?.iter().find(|e| e["name"] == name)?;
    match e.get("value") {
        Some(v) => Some(v.as_str().unwrap().to_owned()),
        None => Some(format!(
            "<secret:{}>",
            e.pointer("/valueFrom/secretKeyRef/key")
                .unwrap()
                .as_str()
                .unwrap()
        )),
    }
}

fn migration_job(m: &Manifest) -> &Resource {
    m.resources
        .iter()
        .find(|r| r.kind == "Job" && r.component == "migration")
        .unwrap()
}

/// Ingress paths → (Service, port) on the root profile.
fn routes(m: &Manifest) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in m.resources.iter().filter(|r| r.kind == "Ingress") {
        for rule in r.body["spec"]["rules"].as_array().unwrap() {
            for p in rule["http"]["paths"].as_array().unwrap() {
                out.push((
                    p["path"].as_str().unwrap().to_owned(),
                    p["backend"]["service"]["name"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_release_is_wired_as_its_facts_say() {
    let facts = facts();
    for r in &table().releases {
        let v = r.version.as_str();
        let compose = &facts["releases"][v]["compose"];
        let rendered = render(v);
        let m = &rendered.manifest;
        let deploy = |name: &str| {
            find(m, "Deployment", name).unwrap_or_else(|| panic!("{v}: Deployment {name}"))
        };
        // Rule 1: exactly the pinned images; api, worker, beat and the Job run dify-api.
        let image =
            |res: &Resource, c: &str| container(res, c)["image"].as_str().unwrap().to_owned();
        assert_eq!(image(deploy("dify-api"), "api"), compose["api"], "{v}");
        assert_eq!(
            image(deploy("dify-worker"), "worker"),
            compose["worker"],
            "{v}"
        );
        assert_eq!(
            image(deploy("dify-beat"), "beat"),
            compose["worker_beat"],
            "{v}"
        );
        assert_eq!(image(deploy("dify-web"), "web"), compose["web"], "{v}");
        assert_eq!(
            image(deploy("dify-plugin-daemon"), "plugin-daemon"),
            compose["plugin_daemon"],
            "{v}"
        );
        assert_eq!(
            image(deploy("dify-sandbox"), "sandbox"),
            compose["sandbox"],
            "{v}"
        );
        assert_eq!(
            image(deploy("dify-ssrf-proxy"), "ssrf-proxy"),
            compose["ssrf_proxy"],
            "{v}"
        );
        let db = compose.get("db_postgres").unwrap_or(&compose["db"]);
        let sts = |name: &str| find(m, "StatefulSet", name).unwrap();
        assert_eq!(image(sts("dify-postgresql"), "postgresql"), *db, "{v}");
        assert_eq!(image(sts("dify-redis"), "redis"), compose["redis"], "{v}");
        assert_eq!(
            image(sts("dify-weaviate"), "weaviate"),
            compose["weaviate"],
            "{v}"
        );
        let job = migration_job(m);
        let migrate = container(job, "migration");
        assert_eq!(migrate["image"], compose["api"], "{v}");

        // Rule 4: migrations only in the Job, which must reach this release's head.
        assert_eq!(env(migrate, "MODE").as_deref(), Some("migration"), "{v}");
        assert_eq!(
            env(migrate, "MIGRATION_ENABLED").as_deref(),
            Some("true"),
            "{v}"
        );
        assert_eq!(
            env(migrate, "DIFYRENDER_ALEMBIC_HEAD").as_deref(),
            facts["releases"][v]["alembicHead"].as_str(),
            "{v}: the migration gate checks the release's head"
        );
        for (name, c) in [
            ("dify-api", "api"),
            ("dify-worker", "worker"),
            ("dify-beat", "beat"),
        ] {
            let c = container(deploy(name), c);
            assert_eq!(
                env(c, "MIGRATION_ENABLED").as_deref(),
                Some("false"),
                "{v} {name}"
            );
            // Rule 3: the gRPC endpoint names the Weaviate Service's gRPC port.
            assert_eq!(
                env(c, "WEAVIATE_GRPC_ENDPOINT").as_deref(),
                Some("grpc://dify-weaviate:50051"),
                "{v} {name}"
            );
            // Rule 13: the same SECRET_KEY, from the keys Secret.
            assert_eq!(
                env(c, "SECRET_KEY").as_deref(),
                Some("<secret:SECRET_KEY>"),
                "{v}"
            );
        }
        let weaviate_ports = &find(m, "Service", "dify-weaviate").unwrap().body["spec"]["ports"];
        assert!(
            weaviate_ports
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == 50051)
        );

        // Rule 7: the worker consumes the release's default queues.
        let queues: BTreeSet<String> =
            env(container(deploy("dify-worker"), "worker"), "CELERY_QUEUES")
                .unwrap_or_else(|| panic!("{v}: the worker names its queues"))
                .split(',')
                .map(str::to_owned)
                .collect();
        assert_eq!(queues, expected_queues(v), "{v}");

        // PM2 (up to 1.13.0).
        let web = container(deploy("dify-web"), "web");
        let pm2 = key(v) <= key(rule("webPm2Until").as_str().unwrap());
        assert_eq!(
            env(web, "PM2_INSTANCES").is_some(),
            pm2,
            "{v} PM2_INSTANCES"
        );

        // Rule 12: the sandbox's interpreter.
        let sandbox_tag = tag_of(compose["sandbox"].as_str().unwrap());
        let python = rule("sandboxPythonPath");
        let want = if key(sandbox_tag) >= key("0.2.14") {
            &python["from-0.2.14"]
        } else {
            &python["before-0.2.14"]
        };
        assert_eq!(
            env(container(deploy("dify-sandbox"), "sandbox"), "PYTHON_PATH").as_deref(),
            want.as_str(),
            "{v}"
        );

        // Rule 15: the plugin daemon keeps its image's entrypoint and CMD.
        let daemon = container(deploy("dify-plugin-daemon"), "plugin-daemon");
        assert!(
            daemon.get("command").is_none() && daemon.get("args").is_none(),
            "{v}"
        );

        // Rule 9: routes; rule 14: socket.io and collaboration.
        let routes = routes(m);
        for p in rule("apiRoutes").as_array().unwrap() {
            assert!(
                routes.contains(&(p.as_str().unwrap().to_owned(), "dify-api".to_owned())),
                "{v}: {p} → api in {routes:?}"
            );
        }
        assert!(
            routes
                .iter()
                .any(|(p, s)| p == "/e/" && s == "dify-plugin-daemon"),
            "{v}: {routes:?}"
        );
        let socket = routes.iter().find(|(p, _)| p == "/socket.io/");
        match rule("socketIo").get(v).and_then(Value::as_str) {
            None => assert!(socket.is_none(), "{v}: no /socket.io/ route"),
            Some("api") => {
                assert_eq!(socket.map(|s| s.1.as_str()), Some("dify-api"), "{v}");
                assert_eq!(
                    env(container(deploy("dify-api"), "api"), "SERVER_WORKER_CLASS").as_deref(),
                    rule("websocketWorkerClass").as_str(),
                    "{v}"
                );
            }
            Some(_) => {
                assert_eq!(
                    socket.map(|s| s.1.as_str()),
                    Some("dify-api-websocket"),
                    "{v}"
                );
                let ws = deploy("dify-api-websocket");
                let c = container(ws, "api-websocket");
                assert_eq!(c["image"], compose["api_websocket"], "{v}");
                assert_eq!(env(c, "MODE").as_deref(), Some("api"), "{v}");
                assert_eq!(env(c, "SERVER_WORKER_AMOUNT").as_deref(), Some("1"), "{v}");
                assert_eq!(
                    env(c, "SERVER_WORKER_CLASS").as_deref(),
                    rule("websocketWorkerClass").as_str(),
                    "{v}"
                );
                assert_eq!(
                    env(c, "SECRET_KEY").as_deref(),
                    Some("<secret:SECRET_KEY>"),
                    "{v}"
                );
                assert_eq!(
                    env(c, "ENABLE_COLLABORATION_MODE").as_deref(),
                    Some("true"),
                    "{v}"
                );
                assert_eq!(env(c, "MIGRATION_ENABLED").as_deref(), Some("false"), "{v}");
                assert!(find(m, "Service", "dify-api-websocket").is_some(), "{v}");
            }
        }
        if key(v) >= key("1.14.0") {
            assert_eq!(
                env(web, "NEXT_PUBLIC_SOCKET_URL").as_deref(),
                Some("wss://192.0.2.10"),
                "{v}: rule 14"
            );
        }
        assert!(
            compose.get("api_websocket").is_some()
                == find(m, "Deployment", "dify-api-websocket").is_some(),
            "{v}: api_websocket exactly where compose has it"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Immutable fields.

/// Kinds the chart may render, and the fields of each that the API server never lets change.
/// A kind outside this list fails the test, so a new kind needs its immutable fields named.
fn immutable_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Deployment" => &["/spec/selector"],
        "StatefulSet" => &[
            "/spec/selector",
            "/spec/volumeClaimTemplates",
            "/spec/serviceName",
            "/spec/podManagementPolicy",
        ],
        // A Job's template and selector cannot change: a Job of the same name must be identical.
        "Job" => &["/spec"],
        "Service" => &["/spec/clusterIP", "/spec/clusterIPs", "/spec/ipFamilies"],
        "PersistentVolumeClaim" => &[
            "/spec/accessModes",
            "/spec/storageClassName",
            "/spec/volumeMode",
            "/spec/volumeName",
            "/spec/selector",
        ],
        "ConfigMap" | "Secret" => &["/immutable"],
        // A PodDisruptionBudget's selector is mutable since Kubernetes 1.15.
        "Namespace"
        | "Ingress"
        | "NetworkPolicy"
        | "Middleware"
        | "ServiceAccount"
        | "PodDisruptionBudget"
        | "HorizontalPodAutoscaler"
        | "HTTPRoute" => &[],
        other => panic!("the chart renders {other}: name its immutable fields in this test"),
    }
}

/// Every optional part on: a sub-path with a base-path web build, ReadWriteMany storage, an
/// external PostgreSQL with TLS, remote plugin debugging, sandbox packages, private networks.
const OPTIONS: &[&str] = &[
    "expose.path=/dify",
    "images.web.repository=registry.example.com/dify-web-dify",
    "images.web.basePath=/dify",
    "storage.accessMode=ReadWriteMany",
    "storage.storageClassName=nutanix-files",
    "postgresql.enabled=false",
    "postgresql.external.host=ndb.example.com",
    "postgresql.external.sslMode=require",
    "pluginDaemon.remoteDebugging.enabled=true",
    "pluginDaemon.remoteDebugging.host=192.0.2.31",
    "sandbox.pythonPackages={numpy==2.1.3}",
    "ssrfProxy.allowedPrivateNetworks={10.20.0.0/16}",
    "api.autoscaling.enabled=true",
    "web.replicas=2",
    "secrets.existingSecret=ops-keys",
];

/// The production topologies: object storage, an external Redis over TLS, pgvector.
const TOPOLOGY: &[&str] = &[
    "storage.type=s3",
    "storage.s3.bucket=dify-files",
    "storage.s3.credentialsSecret=dify-objects",
    "redis.enabled=false",
    "redis.external.host=redis.example.com",
    "redis.external.tls.enabled=true",
    "vectorStore.type=pgvector",
    "worker.autoscaling.enabled=true",
];

#[test]
fn nothing_immutable_changes_between_any_two_releases() {
    for options in [&[][..], OPTIONS, TOPOLOGY] {
        immutable_fields_hold(options);
    }
}

fn immutable_fields_hold(options: &[&str]) {
    let table = table();
    let renders: Vec<(String, Manifest)> = table
        .releases
        .iter()
        .map(|r| {
            let rendered = render_release(&spec(&r.version, options))
                .unwrap_or_else(|e| panic!("{} {options:?}: {e}", r.version));
            (r.version.clone(), rendered.manifest)
        })
        .collect();
    for r in &renders[0].1.resources {
        immutable_fields(&r.kind);
        if r.kind == "ConfigMap" || r.kind == "Secret" {
            assert!(r.body.get("immutable").is_none(), "{}", r.id());
        }
    }
    let mut checked = 0;
    for (i, (from, a)) in renders.iter().enumerate() {
        for (to, b) in &renders[i + 1..] {
            let mut jobs_differ = false;
            for rb in &b.resources {
                let Some(ra) = find(a, &rb.kind, &rb.name) else {
                    if rb.kind == "Job" {
                        jobs_differ = true;
                    }
                    continue;
                };
                for field in immutable_fields(&rb.kind) {
                    assert_eq!(
                        ra.body.pointer(field),
                        rb.body.pointer(field),
                        "{} {field} changes from {from} to {to}",
                        rb.id()
                    );
                    checked += 1;
                }
                if rb.kind == "PersistentVolumeClaim" {
                    assert_eq!(
                        ra.body.pointer("/spec/resources"),
                        rb.body.pointer("/spec/resources"),
                        "{}: a claim may only grow",
                        rb.id()
                    );
                }
            }
            assert!(jobs_differ, "{from} → {to} runs a new migration Job");
        }
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn a_version_label_in_a_claim_template_is_caught() {
    // Negative control for the typed check: the label the chart used to put there.
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path();
    std::fs::create_dir(chart.join("templates")).unwrap();
    for f in ["values.yaml", "values.schema.json", "versions.yaml"] {
        std::fs::copy(root().join(f), chart.join(f)).unwrap();
    }
    for e in std::fs::read_dir(root().join("templates")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap().replace(
            "labels: {{ stable_labels(component) }}}",
            "labels: {{ labels(component) }}}",
        );
        std::fs::write(chart.join("templates").join(p.file_name().unwrap()), text).unwrap();
    }
    let out = difyrender()
        .args(["render", "--chart"])
        .arg(chart)
        .args(["-f", "examples/nkp.values.yaml"])
        .current_dir(root())
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    let text = transcript(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("StatefulSet/dify/dify-postgresql in templates/postgresql.yaml: spec.volumeClaimTemplates[0] must carry neither app.kubernetes.io/version"),
        "{text}"
    );
}

#[test]
fn a_chart_copy_needs_its_release_table() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path();
    std::fs::create_dir(chart.join("templates")).unwrap();
    for f in ["values.yaml", "values.schema.json"] {
        std::fs::copy(root().join(f), chart.join(f)).unwrap();
    }
    for e in std::fs::read_dir(root().join("templates")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, chart.join("templates").join(p.file_name().unwrap())).unwrap();
    }
    let run = || {
        difyrender()
            .args(["images", "--chart"])
            .arg(chart)
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(
        transcript(&out).contains("versions.yaml"),
        "{}",
        transcript(&out)
    );
    // With the table copied, the same chart works.
    std::fs::copy(root().join("versions.yaml"), chart.join("versions.yaml")).unwrap();
    let out = run();
    assert!(out.status.success(), "{}", transcript(&out));
}

// ---------------------------------------------------------------------------------------------
// Images.

fn images(args: &[&str]) -> std::process::Output {
    difyrender()
        .arg("images")
        .args(args)
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap()
}

#[test]
fn images_lists_every_image_of_the_release_and_follows_the_registry() {
    let facts = facts();
    let out = images(&["--set", "images.dify.tag=1.13.3"]);
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    let listed: BTreeSet<&str> = text.lines().collect();
    let compose = &facts["releases"]["1.13.3"]["compose"];
    for service in [
        "api",
        "web",
        "plugin_daemon",
        "sandbox",
        "weaviate",
        "redis",
        "db_postgres",
        "ssrf_proxy",
    ] {
        assert!(
            listed.contains(compose[service].as_str().unwrap()),
            "{service}: {text}"
        );
    }
    // Every image the render runs, and nothing else.
    let rendered = render("1.13.3");
    let mut running = BTreeSet::new();
    for r in &rendered.manifest.resources {
        if let Some(spec) = r.body.pointer("/spec/template/spec") {
            for list in ["initContainers", "containers"] {
                for c in spec
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    running.insert(c["image"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    assert_eq!(listed, running.iter().map(String::as_str).collect());

    let mirror = "registry.example.com/mirror";
    let out = images(&[
        "--set",
        "images.dify.tag=1.13.3",
        "--set",
        &format!("images.registry={mirror}"),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", transcript(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    for i in json["images"].as_array().unwrap() {
        let (image, source) = (i["image"].as_str().unwrap(), i["source"].as_str().unwrap());
        assert_eq!(image, format!("{mirror}/{source}"), "{i}");
        assert!(
            running.contains(source),
            "{source} is a public image of the release"
        );
    }
    // The mirrored render really runs the mirrored images.
    let mirrored =
        render_release(&spec("1.13.3", &[&format!("images.registry={mirror}")])).unwrap();
    for r in &mirrored.manifest.resources {
        if let Some(spec) = r.body.pointer("/spec/template/spec") {
            for c in spec["containers"].as_array().unwrap() {
                assert!(
                    c["image"].as_str().unwrap().starts_with(mirror),
                    "{}",
                    r.id()
                );
            }
        }
    }
}

#[test]
fn an_explicit_component_image_is_an_override() {
    let r = render_release(&spec("1.13.3", &["images.pluginDaemon.tag=0.5.4-local"])).unwrap();
    let overrides = r.dify.overrides();
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0].component, "plugin-daemon");
    assert_eq!(
        overrides[0].pinned,
        "langgenius/dify-plugin-daemon:0.5.3-local"
    );
    // Negative control: the pinned set has none.
    assert!(render("1.13.3").dify.overrides().is_empty());
}
