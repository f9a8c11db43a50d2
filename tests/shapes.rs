//! Every production shape (docs/configuration.md, "In production"): file storage on a volume or
//! in S3, the bundled or an external Redis (with and without TLS), the bundled or an external
//! PostgreSQL, and each vector store. For each combination, every consumer of every datastore
//! points at the one the shape chooses, nothing points at a bundled Service that is not
//! rendered, every Secret a pod reads is rendered or is one the operator named, and every
//! volume a container mounts exists.

mod common;

use common::kubelet::{container, container_env, env_get, pod};
use common::release_spec;
use difyrender::manifest::Manifest;
use difyrender::release::{RenderedRelease, render_release};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use std::collections::BTreeSet;

const MASTER: &str = "shapes-test-master-key-0123456789";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Files {
    Volume,
    S3,
}
#[derive(Clone, Copy, Debug, PartialEq)]
enum Redis {
    Bundled,
    External,
    ExternalTls,
}
#[derive(Clone, Copy, Debug, PartialEq)]
enum Postgres {
    Bundled,
    External,
}
#[derive(Clone, Copy, Debug, PartialEq)]
enum Vector {
    Weaviate,
    Pgvector,
    ExternalWeaviate,
    Qdrant,
}

#[derive(Clone, Copy, Debug)]
struct Shape {
    files: Files,
    redis: Redis,
    postgres: Postgres,
    vector: Vector,
}

impl Shape {
    fn values(&self, release: &str) -> Vec<String> {
        let mut v: Vec<&str> = vec![
            "expose.ingressClassName=kommander-traefik",
            "external.scheme=https",
            "external.host=dify.example.com",
            "storage.storageClassName=nutanix-volume",
            "expose.path=/",
        ];
        if self.files == Files::S3 {
            v.extend([
                "storage.type=s3",
                "storage.s3.endpoint=https://objects.example.com",
                "storage.s3.bucket=dify-files",
                "storage.s3.pluginBucket=dify-plugins",
                "storage.s3.credentialsSecret=dify-objects",
                "api.autoscaling.enabled=true",
                "worker.replicas=3",
            ]);
        }
        if self.redis != Redis::Bundled {
            v.extend([
                "redis.enabled=false",
                "redis.external.host=redis.example.com",
                "redis.external.port=6380",
                "redis.external.db=4",
                "redis.external.brokerDb=5",
                "secrets.redisPassword=shapes-redis-password",
            ]);
        }
        if self.redis == Redis::ExternalTls {
            v.extend([
                "redis.external.tls.enabled=true",
                "redis.external.tls.caSecret=dify-redis-ca",
                "redis.external.username=dify",
            ]);
        }
        if self.postgres == Postgres::External {
            v.extend([
                "postgresql.enabled=false",
                "postgresql.external.host=db.example.com",
                "postgresql.external.sslMode=require",
                "secrets.postgresPassword=shapes-db-password",
            ]);
        }
        match self.vector {
            Vector::Weaviate => {}
            Vector::Pgvector => v.push("vectorStore.type=pgvector"),
            Vector::ExternalWeaviate => v.extend([
                "vectorStore.type=external-weaviate",
                "vectorStore.external.url=https://weaviate.example.com",
                "vectorStore.external.grpcUrl=grpc://weaviate.example.com:50051",
                "secrets.weaviateApiKey=shapes-weaviate-key",
            ]),
            Vector::Qdrant => v.extend([
                "vectorStore.type=qdrant",
                "vectorStore.external.url=https://qdrant.example.com:6333",
                "secrets.qdrantApiKey=shapes-qdrant-key",
            ]),
        }
        let mut v: Vec<String> = v.into_iter().map(str::to_owned).collect();
        v.push(format!("images.dify.tag={release}"));
        v
    }
}

fn all_shapes() -> Vec<Shape> {
    let mut out = Vec::new();
    for files in [Files::Volume, Files::S3] {
        for redis in [Redis::Bundled, Redis::External, Redis::ExternalTls] {
            for postgres in [Postgres::Bundled, Postgres::External] {
                for vector in [
                    Vector::Weaviate,
                    Vector::Pgvector,
                    Vector::ExternalWeaviate,
                    Vector::Qdrant,
                ] {
                    out.push(Shape {
                        files,
                        redis,
                        postgres,
                        vector,
                    });
                }
            }
        }
    }
    out
}

fn render(shape: &Shape, release: &str) -> RenderedRelease {
    render_release(&release_spec(shape.values(release), MASTER))
        .unwrap_or_else(|e| panic!("{shape:?} renders: {e}"))
}

fn has(m: &Manifest, kind: &str, name: &str) -> bool {
    m.resources.iter().any(|r| r.kind == kind && r.name == name)
}

/// The Secrets the operator provides in each shape (never rendered).
fn operator_secrets(shape: &Shape) -> BTreeSet<&'static str> {
    let mut s = BTreeSet::new();
    if shape.files == Files::S3 {
        s.insert("dify-objects");
    }
    if shape.redis == Redis::ExternalTls {
        s.insert("dify-redis-ca");
    }
    s
}

/// A container's environment, resolved where it reads what the release renders; variables
/// read from the operator's Secrets stay as `secret:<name>/<key>`.
fn env_of(m: &Manifest, c: &Container, operator: &BTreeSet<&str>) -> Vec<(String, String)> {
    let mut rendered_only = c.clone();
    let mut external = Vec::new();
    rendered_only.env = Some(
        c.env
            .iter()
            .flatten()
            .filter(|e| {
                let r = e
                    .value_from
                    .as_ref()
                    .and_then(|f| f.secret_key_ref.as_ref());
                match r {
                    Some(r) if !has(m, "Secret", &r.name) => {
                        assert!(
                            operator.contains(r.name.as_str()),
                            "{}: {} reads Secret {}, which is neither rendered nor the operator's",
                            c.name,
                            e.name,
                            r.name
                        );
                        external.push((e.name.clone(), format!("secret:{}/{}", r.name, r.key)));
                        false
                    }
                    _ => true,
                }
            })
            .cloned()
            .collect(),
    );
    let mut env = container_env(m, &rendered_only);
    env.extend(external);
    env
}

/// Every pod template of the manifest, by `kind/name`, with a StatefulSet's claim templates
/// (volumes its pods get) as well.
fn pods(m: &Manifest) -> Vec<(String, PodSpec, Vec<String>)> {
    m.resources
        .iter()
        .filter(|r| ["Deployment", "StatefulSet", "Job"].contains(&r.kind.as_str()))
        .map(|r| {
            let claims = r
                .body
                .pointer("/spec/volumeClaimTemplates")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|c| c.pointer("/metadata/name")?.as_str().map(str::to_owned))
                .collect();
            let id = format!("{}/{}", r.kind, r.name);
            (id, pod(m, &r.kind, &r.name), claims)
        })
        .collect()
}

/// The Dify api image's containers: they read the shared environment.
const API_IMAGE: &[(&str, &str)] = &[
    ("Deployment/dify-api", "api"),
    ("Deployment/dify-worker", "worker"),
    ("Deployment/dify-beat", "beat"),
    ("Deployment/dify-api-websocket", "api-websocket"),
];

fn check(shape: &Shape, release: &str) {
    let r = render(shape, release);
    let m = &r.manifest;
    let operator = operator_secrets(shape);
    let ctx = format!("{shape:?} at {release}");

    // What is rendered is what the shape needs.
    assert_eq!(
        has(m, "StatefulSet", "dify-redis"),
        shape.redis == Redis::Bundled,
        "{ctx}"
    );
    assert_eq!(
        has(m, "StatefulSet", "dify-postgresql"),
        shape.postgres == Postgres::Bundled,
        "{ctx}"
    );
    assert_eq!(
        has(m, "StatefulSet", "dify-weaviate"),
        shape.vector == Vector::Weaviate,
        "{ctx}"
    );
    assert_eq!(
        has(m, "PersistentVolumeClaim", "dify-storage"),
        shape.files == Files::Volume,
        "{ctx}"
    );

    let bundled_services: Vec<&str> = ["dify-redis", "dify-postgresql", "dify-weaviate"]
        .into_iter()
        .filter(|s| !has(m, "Service", s))
        .collect();

    let (redis_host, redis_port, redis_db, broker_db) = match shape.redis {
        Redis::Bundled => ("dify-redis", "6379", "0", "1"),
        _ => ("redis.example.com", "6380", "4", "5"),
    };
    let redis_password = match shape.redis {
        Redis::Bundled => difyrender::values::secrets::derive(MASTER, "redis-password"),
        _ => "shapes-redis-password".to_owned(),
    };
    let tls = shape.redis == Redis::ExternalTls;
    let db_host = match shape.postgres {
        Postgres::Bundled => "dify-postgresql",
        Postgres::External => "db.example.com",
    };

    let mut api_image_pods = 0;
    for (id, spec, claims) in pods(m) {
        let declared: BTreeSet<&str> = spec
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .chain(claims.iter().map(String::as_str))
            .collect();
        // Every claim a pod names is rendered.
        for v in spec.volumes.iter().flatten() {
            if let Some(c) = &v.persistent_volume_claim {
                assert!(
                    has(m, "PersistentVolumeClaim", &c.claim_name),
                    "{ctx}: {id} names claim {}",
                    c.claim_name
                );
            }
        }
        for c in spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
        {
            // No variable names a bundled Service that is not rendered.
            let env = env_of(m, c, &operator);
            for (name, value) in &env {
                for svc in &bundled_services {
                    assert!(
                        !value.contains(svc),
                        "{ctx}: {id} {}: {name}={value} names {svc}, which is not rendered",
                        c.name
                    );
                }
            }
            for mount in c.volume_mounts.iter().flatten() {
                assert!(
                    declared.contains(mount.name.as_str()),
                    "{ctx}: {id} {} mounts {}, which the pod does not declare",
                    c.name,
                    mount.name
                );
                if shape.files == Files::S3 {
                    assert_ne!(mount.mount_path, "/app/api/storage", "{ctx}: {id}");
                }
            }
            let is_api_image = API_IMAGE.contains(&(id.as_str(), c.name.as_str()))
                || (id.starts_with("Job/dify-migration-") && c.name == "migration");
            if is_api_image {
                api_image_pods += 1;
                check_api_env(&ctx, &id, &env, shape, release);
                let get = |n: &str| env_get(&env, n).to_owned();
                assert_eq!(get("REDIS_HOST"), redis_host, "{ctx}: {id}");
                assert_eq!(get("REDIS_PORT"), redis_port, "{ctx}: {id}");
                assert_eq!(get("REDIS_DB"), redis_db, "{ctx}: {id}");
                assert_eq!(get("REDIS_PASSWORD"), redis_password, "{ctx}: {id}");
                assert_eq!(get("REDIS_USE_SSL"), tls.to_string(), "{ctx}: {id}");
                let user = if tls { "dify" } else { "" };
                assert_eq!(
                    get("CELERY_BROKER_URL"),
                    format!(
                        "{}://{user}:{redis_password}@{redis_host}:{redis_port}/{broker_db}",
                        if tls { "rediss" } else { "redis" }
                    ),
                    "{ctx}: {id}"
                );
                assert_eq!(get("DB_HOST"), db_host, "{ctx}: {id}");
                if tls {
                    assert_eq!(get("REDIS_SSL_CERT_REQS"), "CERT_REQUIRED", "{ctx}: {id}");
                    assert_ca_mounted(&ctx, &id, &spec, c, &get("REDIS_SSL_CA_CERTS"));
                }
            }
            if id == "Deployment/dify-plugin-daemon" && c.name == "plugin-daemon" {
                let get = |n: &str| env_get(&env, n).to_owned();
                assert_eq!(get("REDIS_HOST"), redis_host, "{ctx}: daemon");
                assert_eq!(get("REDIS_PORT"), redis_port, "{ctx}: daemon");
                assert_eq!(get("REDIS_DB"), redis_db, "{ctx}: daemon");
                assert_eq!(get("REDIS_PASSWORD"), redis_password, "{ctx}: daemon");
                assert_eq!(get("REDIS_USE_SSL"), tls.to_string(), "{ctx}: daemon");
                assert_eq!(get("DB_HOST"), db_host, "{ctx}: daemon");
                let options = env.iter().any(|(n, _)| n == "REDIS_SSL_CA_CERTS");
                if tls && release != "1.11.4" {
                    assert_ca_mounted(&ctx, &id, &spec, c, &get("REDIS_SSL_CA_CERTS"));
                } else {
                    assert!(!options, "{ctx}: daemon {release} reads no CA option");
                }
                match shape.files {
                    Files::Volume => assert_eq!(get("PLUGIN_STORAGE_TYPE"), "local"),
                    Files::S3 => {
                        assert_eq!(get("PLUGIN_STORAGE_TYPE"), "aws_s3", "{ctx}");
                        assert_eq!(get("PLUGIN_STORAGE_OSS_BUCKET"), "dify-plugins");
                        assert_eq!(get("S3_USE_AWS"), "false");
                        assert_eq!(get("S3_ENDPOINT"), "https://objects.example.com");
                        assert_eq!(get("S3_USE_PATH_STYLE"), "true");
                        assert_eq!(get("AWS_ACCESS_KEY"), "secret:dify-objects/access-key-id");
                        assert_eq!(
                            get("AWS_SECRET_KEY"),
                            "secret:dify-objects/secret-access-key"
                        );
                    }
                }
            }
        }
        // api and worker are tied to one node only by a ReadWriteOnce file volume.
        let affinity = spec.affinity.as_ref().and_then(|a| a.pod_affinity.as_ref());
        if shape.files == Files::S3 {
            assert!(affinity.is_none(), "{ctx}: {id} has a pod affinity");
        }
    }
    let expected = if release == "1.14.1" { 5 } else { 4 };
    assert_eq!(api_image_pods, expected, "{ctx}: api-image containers seen");
}

fn assert_ca_mounted(ctx: &str, id: &str, spec: &PodSpec, c: &Container, path: &str) {
    let (dir, file) = path.rsplit_once('/').unwrap();
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|v| v.mount_path == dir)
        .unwrap_or_else(|| panic!("{ctx}: {id} {} does not mount {dir}", c.name));
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap();
    let secret = volume.secret.as_ref().expect("a Secret volume");
    assert_eq!(
        secret.secret_name.as_deref(),
        Some("dify-redis-ca"),
        "{ctx}"
    );
    let items = secret.items.as_ref().unwrap();
    assert_eq!(
        (items[0].key.as_str(), items[0].path.as_str()),
        ("ca.crt", file),
        "{ctx}: {id}"
    );
}

fn check_api_env(ctx: &str, id: &str, env: &[(String, String)], shape: &Shape, release: &str) {
    let get = |n: &str| env_get(env, n).to_owned();
    let present = |n: &str| env.iter().any(|(k, _)| k == n);
    match shape.files {
        Files::Volume => {
            assert_eq!(get("STORAGE_TYPE"), "opendal", "{ctx}: {id}");
            assert_eq!(get("OPENDAL_FS_ROOT"), "storage", "{ctx}: {id}");
            assert!(!present("S3_BUCKET_NAME"), "{ctx}: {id}");
        }
        Files::S3 => {
            assert_eq!(get("STORAGE_TYPE"), "s3", "{ctx}: {id}");
            assert_eq!(get("S3_ENDPOINT"), "https://objects.example.com");
            assert_eq!(get("S3_BUCKET_NAME"), "dify-files");
            assert_eq!(get("S3_ADDRESS_STYLE"), "path");
            assert_eq!(get("S3_ACCESS_KEY"), "secret:dify-objects/access-key-id");
            assert_eq!(
                get("S3_SECRET_KEY"),
                "secret:dify-objects/secret-access-key"
            );
            assert!(!present("OPENDAL_SCHEME"), "{ctx}: {id}");
        }
    }
    let db_password = match shape.postgres {
        Postgres::Bundled => difyrender::values::secrets::derive(MASTER, "postgres-password"),
        Postgres::External => "shapes-db-password".to_owned(),
    };
    match shape.vector {
        Vector::Weaviate => {
            assert_eq!(get("VECTOR_STORE"), "weaviate");
            assert_eq!(get("WEAVIATE_ENDPOINT"), "http://dify-weaviate:8080");
        }
        Vector::ExternalWeaviate => {
            assert_eq!(get("VECTOR_STORE"), "weaviate");
            assert_eq!(get("WEAVIATE_ENDPOINT"), "https://weaviate.example.com");
            assert_eq!(
                get("WEAVIATE_GRPC_ENDPOINT"),
                "grpc://weaviate.example.com:50051"
            );
            assert_eq!(get("WEAVIATE_API_KEY"), "shapes-weaviate-key");
        }
        Vector::Qdrant => {
            assert_eq!(get("VECTOR_STORE"), "qdrant");
            assert_eq!(get("QDRANT_URL"), "https://qdrant.example.com:6333");
            assert_eq!(get("QDRANT_API_KEY"), "shapes-qdrant-key");
            assert!(!present("WEAVIATE_ENDPOINT"), "{ctx}: {id}");
        }
        Vector::Pgvector => {
            assert_eq!(get("VECTOR_STORE"), "pgvector");
            assert_eq!(get("PGVECTOR_HOST"), get("DB_HOST"), "{ctx}: {id}");
            assert_eq!(get("PGVECTOR_PORT"), get("DB_PORT"), "{ctx}: {id}");
            assert_eq!(get("PGVECTOR_USER"), get("DB_USERNAME"), "{ctx}: {id}");
            assert_eq!(get("PGVECTOR_PASSWORD"), db_password, "{ctx}: {id}");
            assert_eq!(get("PGVECTOR_DATABASE"), get("DB_DATABASE"), "{ctx}: {id}");
            assert_eq!(
                present("PGSSLMODE"),
                shape.postgres == Postgres::External,
                "{ctx}: {id}: libpq's PGSSLMODE carries sslmode to the pgvector pool"
            );
            assert!(!present("WEAVIATE_ENDPOINT"), "{ctx}: {id}");
        }
    }
    assert_eq!(get("DB_PASSWORD"), db_password, "{ctx}: {id} ({release})");
}

#[test]
fn every_consumer_follows_the_shape() {
    let shapes = all_shapes();
    assert_eq!(shapes.len(), 48);
    for shape in &shapes {
        check(shape, "1.14.1");
    }
    // A release whose plugin daemon reads no Redis TLS options (0.5.2), without a CA.
    for shape in shapes.iter().filter(|s| s.redis != Redis::ExternalTls) {
        check(shape, "1.11.4");
    }
}

#[test]
fn bundled_postgresql_serves_pgvector_from_the_pgvector_image() {
    let image = |vector| {
        let shape = Shape {
            files: Files::Volume,
            redis: Redis::Bundled,
            postgres: Postgres::Bundled,
            vector,
        };
        let r = render(&shape, "1.14.1");
        let p = pod(&r.manifest, "StatefulSet", "dify-postgresql");
        container(&p, "postgresql").image.clone().unwrap()
    };
    assert_eq!(image(Vector::Pgvector), "pgvector/pgvector:0.8.0-pg15");
    assert_eq!(image(Vector::Weaviate), "postgres:15-alpine");
}

/// With object storage nothing ties api and worker to a node, so they may autoscale; with a
/// ReadWriteOnce volume the same values are refused.
#[test]
fn object_storage_frees_api_and_worker_to_scale() {
    let s3 = Shape {
        files: Files::S3,
        redis: Redis::Bundled,
        postgres: Postgres::Bundled,
        vector: Vector::Weaviate,
    };
    let r = render(&s3, "1.14.1");
    assert!(has(&r.manifest, "HorizontalPodAutoscaler", "dify-api"));
    assert!(has(&r.manifest, "PodDisruptionBudget", "dify-worker"));
    let mut values = Shape {
        files: Files::Volume,
        ..s3
    }
    .values("1.14.1");
    values.push("api.autoscaling.enabled=true".into());
    let err = render_release(&release_spec(values, MASTER))
        .expect_err("a ReadWriteOnce volume refuses an api autoscaler")
        .to_string();
    assert!(err.contains("api.autoscaling.enabled"), "{err}");
}

/// With an external database and Redis, the keys Secret to provide holds their passwords:
/// `secrets render` prints it in the operator's layout with them (and the URL form of the Redis
/// password), while `render` refuses the same values, where they would have no effect.
#[test]
fn secrets_render_carries_external_passwords_into_the_operators_secret() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("passwords.yaml");
    std::fs::write(
        &values,
        "secrets:\n  existingSecret: ops-keys\n  postgresPassword: ndb-pass-0123\n  redisPassword: \"r/p#ss@0123\"\n",
    )
    .unwrap();
    let run = |verb: &[&str]| {
        common::difyrender()
            .args(verb)
            .args(common::root_profile())
            .args(["--set", "external.host=192.0.2.10"])
            .args(["--set", "postgresql.enabled=false"])
            .args(["--set", "postgresql.external.host=db.example.com"])
            .arg("-f")
            .arg(&values)
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap()
    };
    let out = run(&["secrets", "render"]);
    let text = common::transcript(&out);
    assert!(out.status.success(), "{text}");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert!(text.contains("name: ops-keys"), "{text}");
    assert!(text.contains(&format!("DB_PASSWORD: {}", b64("ndb-pass-0123"))));
    assert!(text.contains(&format!("REDIS_PASSWORD: {}", b64("r/p#ss@0123"))));
    assert!(text.contains(&format!("REDIS_PASSWORD_URL: {}", b64("r%2Fp%23ss%400123"))));

    let refused = run(&["render"]);
    assert_eq!(refused.status.code(), Some(2));
    let text = common::transcript(&refused);
    assert!(
        text.contains("has no effect with secrets.existingSecret"),
        "{text}"
    );
    assert!(!text.contains("ndb-pass-0123"), "{text}");
}

/// The catalog entry of the NKP production example needs no key material, and its closing
/// words name every Secret the operator must create, with the keys the pods read.
#[test]
fn catalog_of_the_production_example_names_the_operators_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let root = common::root();
    let out = common::difyrender()
        .arg("catalog")
        .arg("-f")
        .arg(root.join("examples/nkp.values.yaml"))
        .arg("-f")
        .arg(root.join("examples/nkp-production.values.yaml"))
        .arg("--out")
        .arg(dir.path())
        .env_remove("DIFY_SECRET_KEY")
        .output()
        .unwrap();
    let text = common::transcript(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("and Secret dify-objects with the keys access-key-id, secret-access-key"),
        "{text}"
    );
    assert!(
        text.contains("and Secret dify-redis-ca with the keys ca.crt"),
        "{text}"
    );
    assert!(!text.contains("Secret dify-keys with"), "{text}");
}

/// Whether a Kubernetes label selector (`matchLabels`, `matchExpressions`) selects `labels`.
fn selects(
    selector: &serde_json::Value,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let match_labels = selector["matchLabels"].as_object().into_iter().flatten();
    let exprs = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten();
    match_labels
        .into_iter()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
        && exprs.into_iter().all(|e| {
            let key = e["key"].as_str().unwrap();
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap())
                .collect();
            let got = labels.get(key).map(String::as_str);
            match e["operator"].as_str().unwrap() {
                "In" => got.is_some_and(|g| values.contains(&g)),
                "NotIn" => !got.is_some_and(|g| values.contains(&g)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                other => panic!("unknown selector operator {other}"),
            }
        })
}

/// A pod template of a render: its workload, component label, labels and container ports.
struct PodTemplate {
    workload: String,
    component: String,
    labels: std::collections::BTreeMap<String, String>,
    ports: BTreeSet<i32>,
}

fn pod_templates(m: &Manifest) -> Vec<PodTemplate> {
    m.resources
        .iter()
        .filter(|r| matches!(r.kind.as_str(), "Deployment" | "StatefulSet" | "Job"))
        .map(|r| {
            let (labels, spec) = common::kubelet::pod_template(r);
            let ports = spec
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten().map(|p| p.container_port))
                .collect();
            let component = labels
                .get("app.kubernetes.io/component")
                .cloned()
                .unwrap_or_default();
            PodTemplate {
                workload: format!("{}/{}", r.kind, r.name),
                component,
                labels,
                ports,
            }
        })
        .collect()
}

/// The NetworkPolicies select the pods they are meant to, with ports those pods listen on: the
/// sandbox policy selects the sandbox pod only, admits api, worker, the `difyrender test` pod and
/// (up to 1.14) the ssrf proxy on a port the
/// sandbox serves, lets it reach the ssrf proxy on a port that proxy serves; the datastores
/// policy selects exactly the bundled datastores the shape renders and admits every pod of the
/// release, each peer selector matching at least one pod.
#[test]
fn network_policies_select_the_pods_they_name() {
    for shape in all_shapes() {
        let r = render(&shape, "1.14.1");
        let mut pods = pod_templates(&r.manifest);
        // `difyrender test`'s pod, built by the library from the rendered api Deployment as the
        // command builds it: the sandbox policy admits it too.
        let api = common::kubelet::find(&r.manifest, "Deployment", "dify-api");
        let opts = difyrender::cluster::smoketest::Options {
            keep: false,
            through_ingress: false,
            timeout: std::time::Duration::from_secs(60),
        };
        let job =
            difyrender::cluster::smoketest::job("dify", "dify", "dify-test-0", &api.body, &opts)
                .expect("the test Job builds from the render");
        let labels = job["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        pods.push(PodTemplate {
            workload: "Job/dify-test-0".into(),
            component: "test".into(),
            labels,
            ports: BTreeSet::new(),
        });
        let selected = |selector: &serde_json::Value| -> Vec<&PodTemplate> {
            pods.iter()
                .filter(|p| selects(selector, &p.labels))
                .collect()
        };
        let components = |selector: &serde_json::Value| -> BTreeSet<String> {
            selected(selector)
                .iter()
                .map(|p| p.component.clone())
                .collect()
        };
        let policy =
            |name: &str| &common::kubelet::find(&r.manifest, "NetworkPolicy", name).body["spec"];

        let sandbox = policy("dify-sandbox");
        assert_eq!(
            components(&sandbox["podSelector"]),
            BTreeSet::from(["sandbox".to_owned()]),
            "{shape:?}"
        );
        let sandbox_ports: BTreeSet<i32> = selected(&sandbox["podSelector"])
            .iter()
            .flat_map(|p| p.ports.clone())
            .collect();
        let ingress = &sandbox["ingress"][0];
        let from: BTreeSet<String> = ingress["from"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|peer| {
                let c = components(&peer["podSelector"]);
                assert!(
                    !c.is_empty(),
                    "{shape:?}: a sandbox ingress peer selects no pod: {peer}"
                );
                c
            })
            .collect();
        assert_eq!(
            from,
            ["api", "worker", "test", "ssrf-proxy"]
                .map(str::to_owned)
                .into(),
            "{shape:?}"
        );
        for port in ingress["ports"].as_array().unwrap() {
            let port = port["port"].as_i64().unwrap() as i32;
            assert!(
                sandbox_ports.contains(&port),
                "{shape:?}: the sandbox does not listen on {port}: {sandbox_ports:?}"
            );
        }
        let egress = &sandbox["egress"][0];
        let proxy = selected(&egress["to"][0]["podSelector"]);
        assert_eq!(
            proxy
                .iter()
                .map(|p| p.component.as_str())
                .collect::<Vec<_>>(),
            ["ssrf-proxy"],
            "{shape:?}"
        );
        for port in egress["ports"].as_array().unwrap() {
            let port = port["port"].as_i64().unwrap() as i32;
            assert!(
                proxy[0].ports.contains(&port),
                "{shape:?}: the ssrf proxy does not listen on {port}"
            );
        }

        let datastores = policy("dify-datastores");
        let bundled: BTreeSet<String> = pods
            .iter()
            .filter(|p| p.workload.starts_with("StatefulSet/"))
            .map(|p| p.component.clone())
            .filter(|c| ["postgresql", "redis", "weaviate"].contains(&c.as_str()))
            .collect();
        assert_eq!(components(&datastores["podSelector"]), bundled, "{shape:?}");
        let ports: BTreeSet<i32> = datastores["ingress"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap() as i32)
            .collect();
        for p in selected(&datastores["podSelector"]) {
            assert!(
                !p.ports.is_disjoint(&ports),
                "{shape:?}: {} listens on none of {ports:?}",
                p.workload
            );
        }
        let peer = &datastores["ingress"][0]["from"][0]["podSelector"];
        for p in &pods {
            assert!(
                selects(peer, &p.labels),
                "{shape:?}: the datastores do not admit {}",
                p.workload
            );
        }
    }
}
