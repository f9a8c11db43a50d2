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
    let later = read(&reference.join("dify-releases-1.14.2-1.16.1.md"));
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
            let head = f["alembicHead"].as_str().unwrap();
            let row = format!("| {version} ({date}) |");
            match md.lines().find(|l| l.starts_with(&row)) {
                Some(line) => {
                    assert!(line.ends_with(&format!("| {head} |")), "{line} vs {head}")
                }
                // Releases after 1.14.1: §1 of dify-releases-1.14.2-1.16.1.md, whose rows are
                // `| version | date | api/web | daemon | sandbox | weaviate | services | head (…) | queues |`.
                None => {
                    let row = format!("| {version} | {date} |");
                    let line = later
                        .lines()
                        .find(|l| l.starts_with(&row))
                        .unwrap_or_else(|| panic!("the reference has the row {row}"));
                    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                    assert!(cells[8].starts_with(head), "{line} vs {head}");
                    let compose = &f["compose"];
                    assert_eq!(cells[3], tag_of(compose["api"].as_str().unwrap()), "{line}");
                    assert_eq!(
                        cells[4],
                        tag_of(compose["plugin_daemon"].as_str().unwrap()),
                        "{line}"
                    );
                    assert_eq!(
                        cells[5],
                        tag_of(compose["sandbox"].as_str().unwrap()),
                        "{line}"
                    );
                    assert_eq!(
                        cells[6],
                        tag_of(compose["weaviate"].as_str().unwrap()),
                        "{line}"
                    );
                    // The queue column: "the 20 of 1.14.1", or "21: adds `app_rbac`".
                    let queues = facts["rules"]["celeryQueues"]["value"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|r| {
                            key(r["from"].as_str().unwrap()) <= key(version)
                                && key(version) <= key(r["to"].as_str().unwrap())
                        })
                        .unwrap()["queues"]
                        .as_array()
                        .unwrap()
                        .len();
                    assert!(
                        cells[9].starts_with(&format!("the {queues} of "))
                            || cells[9].starts_with(&format!("{queues}: "))
                            || cells[9].starts_with(&format!("{queues}, ")),
                        "{line}: {queues} queues"
                    );
                    if cells[9].contains("adds `app_rbac`") {
                        assert!(expected_queues(version).contains("app_rbac"), "{line}");
                    }
                }
            }
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
    assert_eq!(got.len(), 20);
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
        "webBuildFromRepoRoot": v >= key("1.14.0"),
        "composeSsrfDeniesPrivate": v >= key("1.15.0"),
        "sandboxPythonPath": if key(sandbox) >= key("0.2.14") {
            &python["from-0.2.14"]
        } else {
            &python["before-0.2.14"]
        },
        "openapiRoute": v >= key(rule("openapiRouteFrom").as_str().unwrap()),
        "webServerConsoleApiUrl": v >= key(rule("webServerConsoleApiUrlFrom").as_str().unwrap()),
        "ssrfSandboxReverseProxy": v <= key(rule("ssrfSandboxReverseProxyUntil").as_str().unwrap()),
        "agentBackend": v >= key(rule("agentBackendFrom").as_str().unwrap()),
        "agentSsrfProxy": v >= key(rule("agentSsrfProxyFrom").as_str().unwrap()),
        "agentApiToken": v >= key(rule("agentApiTokenFrom").as_str().unwrap()),
        "webConsoleWebUrl": v >= key(rule("webConsoleWebUrlFrom").as_str().unwrap()),
        // plugin-daemon-offline.md: daemon 0.6.3 added the mirror probe (PIP_MIRROR_AUTO_DETECT),
        // PLUGIN_IGNORE_UV_LOCK and PLUGIN_INSTALL_TIMEOUT.
        "pluginDaemonMirrorProbe": daemon_version >= key("0.6.3"),
        "pluginDaemonIgnoreUvLock": daemon_version >= key("0.6.3"),
        "pluginDaemonInstallTimeout": daemon_version >= key("0.6.3"),
    })
}

/// The rules the facts copy states as release ranges, checked against Dify's own deployment
/// files of every release the reference carries them for (dify-compose/<release>/).
#[test]
fn the_range_rules_match_the_compose_files_when_present() {
    let dir = root().join("../shared/reference/dify-compose");
    if !dir.exists() {
        eprintln!(
            "note: {} not present; the rules are not compared with it here",
            dir.display()
        );
        return;
    }
    let mut seen = 0;
    for release in facts()["releases"].as_object().unwrap().keys() {
        let base = dir.join(release);
        if !base.exists() {
            continue;
        }
        seen += 1;
        let v = key(release);
        let nginx = read(&base.join("nginx/conf.d/default.conf.template"));
        let compose = read(&base.join("docker-compose.yaml"));
        let squid = read(&base.join("ssrf_proxy/squid.conf.template"));
        assert_eq!(
            nginx.contains("location /openapi {"),
            v >= key(rule("openapiRouteFrom").as_str().unwrap()),
            "{release}: /openapi"
        );
        assert_eq!(
            compose.contains("SERVER_CONSOLE_API_URL: ${SERVER_CONSOLE_API_URL:-http://api:5001}"),
            v >= key(rule("webServerConsoleApiUrlFrom").as_str().unwrap()),
            "{release}: SERVER_CONSOLE_API_URL"
        );
        assert_eq!(
            squid.contains("accel vhost") && squid.contains("cache_peer ${SANDBOX_HOST}"),
            v <= key(rule("ssrfSandboxReverseProxyUntil").as_str().unwrap()),
            "{release}: the sandbox reverse proxy"
        );
        let from = |name: &str| v >= key(rule(name).as_str().unwrap());
        assert_eq!(
            compose.contains("\n  agent_backend:\n") && compose.contains("\n  local_sandbox:\n"),
            from("agentBackendFrom"),
            "{release}: the agent stack"
        );
        assert_eq!(
            compose.contains("\n  agent_ssrf_proxy:\n"),
            from("agentSsrfProxyFrom"),
            "{release}: agent_ssrf_proxy"
        );
        assert_eq!(
            compose.contains("AGENT_BACKEND_API_TOKEN: ${DIFY_AGENT_API_TOKEN:-"),
            from("agentApiTokenFrom"),
            "{release}: the agent API token"
        );
        if from("agentBackendFrom") {
            let db = rule("agentRedisDb");
            assert!(
                compose.contains(&format!("@redis:6379/{db}}}")),
                "{release}: agent_backend's Redis database is {db}"
            );
        }
        let dotenv = read(&base.join(".env.example"));
        assert_eq!(
            dotenv.contains("\nNEXT_PUBLIC_ENABLE_AGENT_V2=true\n")
                && dotenv.contains("\nNEXT_PUBLIC_ENABLE_FEATURE_PREVIEW=true\n"),
            from("agentBackendFrom"),
            "{release}: compose's .env shows the agent console"
        );
        if from("agentSsrfProxyFrom") {
            let agent_squid = read(&base.join("ssrf_proxy/squid-agent.conf.template"));
            for line in [
                "acl path_files urlpath_regex -i ^/files/",
                "acl path_agent_stub urlpath_regex -i ^/agent-stub/",
                "http_access allow dst_agent_backend path_agent_stub",
                "http_access allow dst_dify_api path_files",
                "http_access deny to_private_networks",
            ] {
                assert!(agent_squid.contains(line), "{release}: {line}");
            }
        }
        let socket = rule("socketIo");
        assert_eq!(
            nginx.contains("location /socket.io/ {")
                && compose.contains("NGINX_SOCKET_IO_UPSTREAM:-api_websocket:5001"),
            socket.get(release.as_str()).and_then(Value::as_str) == Some("api_websocket"),
            "{release}: /socket.io/"
        );
    }
    assert!(seen >= 3, "{seen} releases with compose files");
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
        // The compose file floats on ubuntu/squid:latest; the chart pins a tag of that image.
        assert_eq!(
            image(deploy("dify-ssrf-proxy"), "ssrf-proxy")
                .rsplit_once(':')
                .map(|(r, _)| r),
            compose["ssrf_proxy"]
                .as_str()
                .and_then(|c| c.rsplit_once(':'))
                .map(|(r, _)| r),
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
        let openapi = routes.iter().find(|(p, _)| p == "/openapi");
        if key(v) >= key(rule("openapiRouteFrom").as_str().unwrap()) {
            assert_eq!(openapi.map(|s| s.1.as_str()), Some("dify-api"), "{v}");
        } else {
            assert!(openapi.is_none(), "{v}: no /openapi route");
        }
        assert_eq!(
            env(web, "SERVER_CONSOLE_API_URL"),
            (key(v) >= key(rule("webServerConsoleApiUrlFrom").as_str().unwrap()))
                .then(|| "http://dify-api:5001".to_owned()),
            "{v}: the web reaches the console API in the cluster"
        );
        let reverse = key(v) <= key(rule("ssrfSandboxReverseProxyUntil").as_str().unwrap());
        let squid = find(m, "ConfigMap", "dify-ssrf-proxy").unwrap().body["data"]["squid.conf"]
            .as_str()
            .unwrap();
        assert_eq!(squid.contains("http_port 8194 accel"), reverse, "{v}");
        assert_eq!(squid.contains("cache_peer "), reverse, "{v}");
        let proxy_ports = &find(m, "Service", "dify-ssrf-proxy").unwrap().body["spec"]["ports"];
        assert_eq!(
            proxy_ports
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == 8194),
            reverse,
            "{v}"
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
        agent_stack_is_wired_as_its_facts_say(v, compose, &rendered);
    }
}

/// The agent stack (1.16.0+): exactly where compose has it, each shared setting the same on
/// both sides, every token from one key of the keys Secret.
fn agent_stack_is_wired_as_its_facts_say(v: &str, compose: &Value, rendered: &RenderedRelease) {
    let m = &rendered.manifest;
    let from = |name: &str| key(v) >= key(rule(name).as_str().unwrap());
    let agent = from("agentBackendFrom");
    let fenced = from("agentSsrfProxyFrom");
    for (service, name) in [
        ("agent_backend", "dify-agent-backend"),
        ("local_sandbox", "dify-local-sandbox"),
        ("agent_ssrf_proxy", "dify-agent-ssrf-proxy"),
    ] {
        assert_eq!(
            compose.get(service).is_some(),
            find(m, "Deployment", name).is_some(),
            "{v}: {name} exactly where compose has {service}"
        );
        assert_eq!(
            compose.get(service).is_some(),
            find(m, "Service", name).is_some(),
            "{v}: {name}"
        );
    }
    let deploy = |name: &str| find(m, "Deployment", name).unwrap();
    let web = container(deploy("dify-web"), "web");
    assert_eq!(
        env(web, "CONSOLE_WEB_URL"),
        from("webConsoleWebUrlFrom").then(|| "https://192.0.2.10".to_owned()),
        "{v}: the web's CONSOLE_WEB_URL"
    );
    for name in [
        "NEXT_PUBLIC_ENABLE_AGENT_V2",
        "NEXT_PUBLIC_ENABLE_FEATURE_PREVIEW",
    ] {
        assert_eq!(
            env(web, name),
            agent.then(|| "true".to_owned()),
            "{v}: {name}, as compose's .env"
        );
    }
    let keys = find(m, "Secret", "dify-keys").unwrap();
    let has_key = |k: &str| keys.body["data"].get(k).is_some();
    let api = container(deploy("dify-api"), "api");
    let worker = container(deploy("dify-worker"), "worker");
    if !agent {
        for c in [api, worker] {
            assert_eq!(env(c, "AGENT_BACKEND_BASE_URL"), None, "{v}");
        }
        assert!(!has_key("AGENT_SHELLCTL_TOKEN") && !has_key("AGENT_SERVER_SECRET_KEY"));
        return;
    }
    let backend_deploy = deploy("dify-agent-backend");
    let backend = container(backend_deploy, "agent-backend");
    let sandbox_deploy = deploy("dify-local-sandbox");
    let sandbox = container(sandbox_deploy, "local-sandbox");
    assert_eq!(backend["image"], compose["agent_backend"], "{v}");
    assert_eq!(sandbox["image"], compose["local_sandbox"], "{v}");
    let service_port = |name: &str| {
        find(m, "Service", name).unwrap().body["spec"]["ports"][0]["port"]
            .as_i64()
            .unwrap()
    };
    let container_port = |c: &Value| c["ports"][0]["containerPort"].as_i64().unwrap();
    // api and worker → agent_backend: its Service, on the port it listens on.
    for c in [api, worker] {
        assert_eq!(
            env(c, "AGENT_BACKEND_BASE_URL"),
            Some(format!(
                "http://dify-agent-backend:{}",
                service_port("dify-agent-backend")
            )),
            "{v}"
        );
        assert_eq!(
            env(c, "AGENT_BACKEND_API_TOKEN"),
            env(backend, "DIFY_AGENT_API_TOKEN"),
            "{v}: the run API token, the same key on both sides"
        );
    }
    assert_eq!(container_port(backend), 5050, "{v}");
    assert_eq!(service_port("dify-agent-backend"), 5050, "{v}");
    assert_eq!(
        env(backend, "DIFY_AGENT_STUB_API_BASE_URL").as_deref(),
        Some("http://dify-agent-backend:5050/agent-stub"),
        "{v}"
    );
    // agent_backend → local_sandbox, with the token local_sandbox checks.
    assert_eq!(
        env(backend, "DIFY_AGENT_SHELLCTL_ENTRYPOINT"),
        Some(format!(
            "http://dify-local-sandbox:{}",
            service_port("dify-local-sandbox")
        )),
        "{v}"
    );
    assert_eq!(container_port(sandbox), 5004, "{v}");
    assert_eq!(
        env(backend, "DIFY_AGENT_SHELLCTL_AUTH_TOKEN").as_deref(),
        Some("<secret:AGENT_SHELLCTL_TOKEN>"),
        "{v}"
    );
    assert_eq!(
        env(sandbox, "SHELLCTL_AUTH_TOKEN"),
        env(backend, "DIFY_AGENT_SHELLCTL_AUTH_TOKEN"),
        "{v}: the shellctl token, the same key on both sides"
    );
    // agent_backend → the plugin daemon and the api's inner API, with their own keys.
    let daemon = container(deploy("dify-plugin-daemon"), "plugin-daemon");
    assert_eq!(
        env(backend, "DIFY_AGENT_PLUGIN_DAEMON_URL"),
        env(api, "PLUGIN_DAEMON_URL"),
        "{v}"
    );
    assert_eq!(
        env(backend, "DIFY_AGENT_PLUGIN_DAEMON_API_KEY"),
        env(daemon, "SERVER_KEY"),
        "{v}"
    );
    assert_eq!(
        env(backend, "DIFY_AGENT_INNER_API_URL").as_deref(),
        Some("http://dify-api:5001"),
        "{v}"
    );
    assert_eq!(
        env(backend, "DIFY_AGENT_INNER_API_KEY"),
        env(api, "INNER_API_KEY_FOR_PLUGIN"),
        "{v}"
    );
    // Its own Redis database, with the password every other client uses.
    let db = rule("agentRedisDb");
    assert_eq!(
        env(backend, "DIFY_AGENT_REDIS_URL"),
        Some(format!(
            "redis://:$(REDIS_PASSWORD_URL)@dify-redis:6379/{db}"
        )),
        "{v}"
    );
    assert_eq!(
        env(backend, "REDIS_PASSWORD_URL"),
        env(api, "REDIS_PASSWORD_URL"),
        "{v}"
    );
    // Keys: never compose's published defaults, never empty, the server key in its format.
    assert_eq!(
        env(backend, "DIFY_AGENT_SERVER_SECRET_KEY").as_deref(),
        Some("<secret:AGENT_SERVER_SECRET_KEY>"),
        "{v}"
    );
    assert_eq!(
        env(backend, "DIFY_AGENT_API_TOKEN").is_some(),
        from("agentApiTokenFrom"),
        "{v}"
    );
    use base64::Engine;
    let secret = |k: &str| {
        let b64 = keys.body["data"][k]
            .as_str()
            .unwrap_or_else(|| panic!("{v}: {k}"));
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    let server = secret("AGENT_SERVER_SECRET_KEY");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&server)
        .unwrap_or_else(|e| panic!("{v}: the server key is not unpadded base64url: {e}"));
    assert_eq!(raw.len(), 32, "{v}");
    assert_ne!(server, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", "{v}");
    assert!(secret("AGENT_SHELLCTL_TOKEN").len() >= 32, "{v}");
    assert_eq!(has_key("AGENT_API_TOKEN"), from("agentApiTokenFrom"), "{v}");
    if from("agentApiTokenFrom") {
        let token = secret("AGENT_API_TOKEN");
        assert!(token.len() >= 32 && token != "dify-agent-run-token-for-dev-only");
        assert_ne!(token, secret("AGENT_SHELLCTL_TOKEN"));
    }
    // What running the programs showed (§4).
    let backend_pod = pod_spec(backend_deploy);
    let grace: i64 = env(backend, "DIFY_AGENT_SHUTDOWN_GRACE_SECONDS")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        backend_pod["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap()
            > grace,
        "{v}: agent_backend gets longer than its own grace"
    );
    assert_eq!(
        backend["readinessProbe"]["httpGet"]["path"], "/openapi.json",
        "{v}: agent_backend has no health endpoint"
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(sandbox[probe]["httpGet"]["path"], "/healthz", "{v}");
    }
    let sandbox_pod = pod_spec(sandbox_deploy);
    let home = sandbox["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mnt| mnt["mountPath"] == "/home")
        .unwrap_or_else(|| panic!("{v}: local_sandbox mounts /home"));
    let volume = sandbox_pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|vol| vol["name"] == home["name"])
        .unwrap();
    assert!(
        volume.get("emptyDir").is_some(),
        "{v}: /home is an emptyDir"
    );
    assert_eq!(
        sandbox["securityContext"]["readOnlyRootFilesystem"], true,
        "{v}"
    );
    // local_sandbox runs agent-generated code: Pod Security "restricted" (agent_backend too).
    use difyrender::cluster::podsecurity::{Level, strictest_passing, violations};
    for d in [sandbox_deploy, backend_deploy] {
        assert_eq!(
            violations(pod_spec(d), Level::Restricted),
            Vec::new(),
            "{v} {}",
            d.id()
        );
        assert_eq!(strictest_passing(pod_spec(d)), Level::Restricted);
    }
    assert_eq!(
        sandbox_pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    // 1.16.1: local_sandbox's way out is agent_ssrf_proxy; its NetworkPolicy allows nothing else.
    let proxy = env(sandbox, "HTTP_PROXY");
    assert_eq!(
        proxy,
        fenced.then(|| "http://dify-agent-ssrf-proxy:3128".to_owned()),
        "{v}"
    );
    assert_eq!(env(sandbox, "HTTPS_PROXY"), proxy, "{v}");
    let policy = find(m, "NetworkPolicy", "dify-local-sandbox")
        .unwrap_or_else(|| panic!("{v}: local_sandbox has a NetworkPolicy"));
    let ingress = &policy.body["spec"]["ingress"];
    assert_eq!(ingress.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        ingress[0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "agent-backend",
        "{v}: only agent_backend calls local_sandbox"
    );
    if fenced {
        // Compose floats on ubuntu/squid:latest; the chart runs the ssrf proxy's pinned tag of
        // that image.
        let repository = |image: Option<&Value>| {
            image
                .and_then(Value::as_str)
                .and_then(|i| i.rsplit_once(':'))
                .map(|(r, _)| r.to_owned())
        };
        assert_eq!(
            repository(
                deploy("dify-agent-ssrf-proxy")
                    .body
                    .pointer("/spec/template/spec/containers/0/image")
            ),
            repository(compose.get("agent_ssrf_proxy")),
            "{v}"
        );
        let egress = policy.body["spec"]["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 2, "{v}: the proxy and DNS");
        assert_eq!(
            egress[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
            "agent-ssrf-proxy",
            "{v}"
        );
        assert_eq!(egress[0]["ports"][0]["port"], 3128, "{v}");
        assert!(
            egress[1]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["port"] == 53),
            "{v}"
        );
    } else {
        assert!(policy.body["spec"].get("egress").is_none(), "{v}");
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
        let want = compose[service].as_str().unwrap();
        // squid: the same image, pinned where the compose file says :latest.
        let found = match want.strip_suffix(":latest") {
            Some(repository) => listed
                .iter()
                .any(|l| l.starts_with(&format!("{repository}:")) && !l.ends_with(":latest")),
            None => listed.contains(want),
        };
        assert!(found, "{service}: {text}");
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

/// The agent keys from an operator's Secret: each mappable by secrets.existingSecretKeys, read
/// on both sides under the mapped name, and among the keys `apply` checks before writing.
#[test]
fn agent_keys_come_from_an_existing_secret_under_mapped_names() {
    let rendered = render_release(&spec(
        "1.16.1",
        &[
            "secrets.existingSecret=ops-keys",
            "secrets.existingSecretKeys.AGENT_SHELLCTL_TOKEN=shell-token",
            "secrets.existingSecretKeys.AGENT_API_TOKEN=run-token",
            "secrets.existingSecretKeys.AGENT_SERVER_SECRET_KEY=jwe-key",
        ],
    ))
    .unwrap();
    let m = &rendered.manifest;
    assert!(find(m, "Secret", "dify-keys").is_none());
    let c = |d: &str, n: &str| container(find(m, "Deployment", d).unwrap(), n).clone();
    let (backend, sandbox, api) = (
        c("dify-agent-backend", "agent-backend"),
        c("dify-local-sandbox", "local-sandbox"),
        c("dify-api", "api"),
    );
    let secret_of = |c: &Value, name: &str| {
        let e = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        e.pointer("/valueFrom/secretKeyRef").unwrap().clone()
    };
    let shell = serde_json::json!({"name": "ops-keys", "key": "shell-token"});
    assert_eq!(secret_of(&backend, "DIFY_AGENT_SHELLCTL_AUTH_TOKEN"), shell);
    assert_eq!(secret_of(&sandbox, "SHELLCTL_AUTH_TOKEN"), shell);
    let run = serde_json::json!({"name": "ops-keys", "key": "run-token"});
    assert_eq!(secret_of(&backend, "DIFY_AGENT_API_TOKEN"), run);
    assert_eq!(secret_of(&api, "AGENT_BACKEND_API_TOKEN"), run);
    assert_eq!(
        secret_of(&backend, "DIFY_AGENT_SERVER_SECRET_KEY"),
        serde_json::json!({"name": "ops-keys", "key": "jwe-key"})
    );
    let checked = difyrender::cluster::refs::external_secret_keys(m);
    for key in ["shell-token", "run-token", "jwe-key"] {
        assert!(checked["ops-keys"].contains(key), "apply checks {key}");
    }
    // Negative control: a release without the agent stack names none of them.
    let old = render_release(&spec("1.15.0", &["secrets.existingSecret=ops-keys"])).unwrap();
    let checked = difyrender::cluster::refs::external_secret_keys(&old.manifest);
    assert!(!checked["ops-keys"].iter().any(|k| k.starts_with("AGENT_")));
}

/// The agent squid's refused destinations (versions.yaml `privateNetworks.agentSsrfProxy`) are
/// Dify 1.16.1's, as its squid-common.conf.template lists them, in order.
#[test]
fn the_agent_squids_private_networks_are_difys() {
    let file = root()
        .join("../shared/reference/dify-compose/1.16.1/ssrf_proxy/squid-common.conf.template");
    assert!(file.exists(), "{} is missing", file.display());
    let dify: Vec<String> = read(&file)
        .lines()
        .filter_map(|l| l.strip_prefix("acl to_private_networks dst "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert!(dify.len() > 10, "{dify:?}");
    let table = difyrender::chart::Chart::embedded().versions;
    assert_eq!(table.private_networks["agentSsrfProxy"], dify);
}

/// The api's routes (versions.yaml `routes`) are the locations Dify's nginx passes to the api,
/// for every release the reference carries its nginx configuration for: `routes.api`, plus
/// `routes.openapi` where the release's switch openapiRoute is on.
#[test]
fn the_api_routes_are_difys_nginx_locations() {
    let dir = root().join("../shared/reference/dify-compose");
    let table = difyrender::chart::Chart::embedded().versions;
    let mut seen = 0;
    for release in &table.releases {
        let conf = dir
            .join(&release.version)
            .join("nginx/conf.d/default.conf.template");
        if !conf.exists() {
            continue;
        }
        seen += 1;
        let text = read(&conf);
        let mut nginx: Vec<String> = Vec::new();
        let mut location = None;
        for line in text.lines().map(str::trim) {
            if let Some(l) = line.strip_prefix("location ") {
                location = l.strip_suffix(" {").map(str::to_owned);
            } else if line.starts_with("proxy_pass http://api:") {
                nginx.extend(location.take());
            }
        }
        nginx.sort();
        let mut ours = table.routes.api.clone();
        if release.switches["openapiRoute"] == true {
            ours.push(table.routes.openapi.clone());
        }
        ours.sort();
        assert_eq!(ours, nginx, "{}", release.version);
    }
    assert!(
        seen >= 5,
        "the reference has nginx configurations for {seen} releases"
    );
}
