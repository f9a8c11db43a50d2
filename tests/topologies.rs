//! Production shapes (issue: topologies) on the real control plane: keys from an existing
//! Secret, with no master key anywhere near render or apply.

mod common;

use common::cluster::{self, ok};
use common::*;
use std::path::PathBuf;
use std::process::Output;

const MASTER: &str = "topologies-test-master-key-0123456789";

shared_cluster!("topologies");

/// `difyrender <verb>` for a release at the root path in `ns`, without any master key in the
/// environment.
fn run(verb: &str, ns: &str, extra: &[&str]) -> Output {
    cluster::scanned(
        cluster::difyrender_on(verb, kubeconfig(), ns)
            .args(root_profile())
            .args(["--set", "external.host=192.0.2.10"])
            .args(extra),
        &secrets_of(MASTER),
        verb,
    )
}

const EXISTING: &[&str] = &[
    "--set",
    "secrets.existingSecret=ops-keys",
    "--set",
    "secrets.existingSecretKeys.SECRET_KEY=dify-secret-key",
];

#[test]
fn keys_from_an_existing_secret_need_no_master_key() {
    let ns = "t-existing";
    ok(&kubectl(&["create", "namespace", ns]));
    let apply_args = [EXISTING, &["--timeout", "120s"]].concat();

    // Without the Secret, apply stops before its first write.
    let refused = run("apply", ns, &apply_args);
    assert_eq!(refused.status.code(), Some(3), "{}", transcript(&refused));
    let text = transcript(&refused);
    assert!(
        text.contains(&format!("Secret {ns}/ops-keys does not exist")),
        "{text}"
    );
    assert!(text.contains("Nothing was changed"), "{text}");
    let inventory = kubectl(&["get", "configmap", "-n", ns, "dify-inventory"]);
    assert!(!inventory.status.success(), "nothing was written");

    // The operator provides the Secret once, from wherever the master key lives.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master");
    std::fs::write(&key_file, MASTER).unwrap();
    let made = difyrender()
        .args(["secrets", "apply", "--kubeconfig"])
        .arg(kubeconfig())
        .args(["-n", ns, "--secret-key-file"])
        .arg(&key_file)
        .args(EXISTING)
        .output()
        .unwrap();
    ok(&made);
    let keys = cluster::kubectl_json(&["get", "secret", "-n", ns, "ops-keys"], kubeconfig());
    assert!(keys["data"]["dify-secret-key"].is_string());
    assert!(
        keys["data"].get("SECRET_KEY").is_none(),
        "the key is mapped"
    );

    // Now apply converges with no key material at all.
    let applied = run("apply", ns, &apply_args);
    assert!(applied.status.success(), "{}", transcript(&applied));
    assert!(
        !kubectl(&["get", "secret", "-n", ns, "dify-keys"])
            .status
            .success(),
        "the chart's own keys Secret is not rendered"
    );
    let api = cluster::kubectl_json(&["get", "deployment", "-n", ns, "dify-api"], kubeconfig());
    let pod = &api["spec"]["template"];
    assert!(
        pod["metadata"]["annotations"]
            .get("difyrender.io/keys-checksum")
            .is_none(),
        "no hash of keys difyrender never saw"
    );
    let env = pod["spec"]["containers"][0]["env"].as_array().unwrap();
    let secret_key = env.iter().find(|e| e["name"] == "SECRET_KEY").unwrap();
    assert_eq!(
        secret_key["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "ops-keys", "key": "dify-secret-key"})
    );

    // A key removed from the Secret is named, and nothing is written.
    ok(&kubectl(&[
        "patch",
        "secret",
        "-n",
        ns,
        "ops-keys",
        "--type",
        "json",
        "-p",
        r#"[{"op": "remove", "path": "/data/INIT_PASSWORD"}]"#,
    ]));
    let before = cluster::kubectl_json(&["get", "deployment", "-n", ns, "dify-api"], kubeconfig());
    // Each refusal names the Secret's problem and writes nothing.
    let refused = |problem: &str| {
        let out = run(
            "apply",
            ns,
            &[EXISTING, &["--set", "api.replicas=2"]].concat(),
        );
        assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
        assert!(
            transcript(&out).contains(&format!("Secret {ns}/ops-keys {problem}")),
            "{}",
            transcript(&out)
        );
        let after =
            cluster::kubectl_json(&["get", "deployment", "-n", ns, "dify-api"], kubeconfig());
        assert_eq!(
            before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
            "nothing was written"
        );
    };
    refused("lacks the keys INIT_PASSWORD");
    // An empty key is refused the same way: an empty token can turn authentication off.
    ok(&kubectl(&[
        "patch",
        "secret",
        "-n",
        ns,
        "ops-keys",
        "--type",
        "json",
        "-p",
        r#"[{"op": "add", "path": "/data/INIT_PASSWORD", "value": ""}]"#,
    ]));
    refused("has empty values for the keys INIT_PASSWORD");
}

/// A production-like shape: shared file storage, an autoscaled api, two web pods, pods pinned
/// to a node pool. The API server accepts every object; the disruption budget counts the pods
/// it selects and the autoscaler finds the Deployment it scales.
#[test]
fn autoscalers_and_budgets_are_accepted_and_select_their_pods() {
    let ns = "t-scaling";
    let args = [
        "--set",
        "storage.accessMode=ReadWriteMany",
        "--set",
        "api.autoscaling.enabled=true",
        "--set",
        "api.autoscaling.minReplicas=2",
        "--set",
        "web.replicas=2",
        "--set",
        "web.pod.labels.team=ai",
        "--set",
        "worker.pod.priorityClassName=system-cluster-critical",
    ];
    ok(&apply_with_key(ns, &args));

    let pdb_ready = kubectl(&[
        "wait",
        "-n",
        ns,
        "pdb/dify-web",
        "--for=jsonpath={.status.expectedPods}=2",
        "--timeout=60s",
    ]);
    assert!(pdb_ready.status.success(), "{}", transcript(&pdb_ready));
    let pdb = cluster::kubectl_json(&["get", "pdb", "-n", ns, "dify-web"], kubeconfig());
    assert_eq!(pdb["status"]["currentHealthy"], 2, "{pdb}");
    let scaled = kubectl(&[
        "wait",
        "-n",
        ns,
        "hpa/dify-api",
        "--for=condition=AbleToScale",
        "--timeout=60s",
    ]);
    assert!(scaled.status.success(), "{}", transcript(&scaled));
    let api = cluster::kubectl_json(&["get", "deployment", "-n", ns, "dify-api"], kubeconfig());
    assert_eq!(
        api["spec"]["replicas"], 2,
        "the autoscaler raised it to minReplicas"
    );
    let worker = cluster::kubectl_json(
        &["get", "deployment", "-n", ns, "dify-worker"],
        kubeconfig(),
    );
    assert_eq!(
        worker["spec"]["template"]["spec"]["priorityClassName"],
        "system-cluster-critical"
    );
}

/// The Gateway API CRDs, installed once for the tests of this binary.
fn gateway_api_crds() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| cluster::gateway_api_crds(kubeconfig()));
}

/// HTTPRoutes (with the sub-path rewrites) and TLS Ingresses are accepted by the API server
/// with strict validation, applied by difyrender's field manager.
#[test]
fn gateway_routes_and_tls_ingresses_are_accepted() {
    gateway_api_crds();
    let sub_path = [
        "--set",
        "expose.path=/dify",
        "--set",
        "images.web.repository=registry.example.com/dify-web-dify",
        "--set",
        "images.web.basePath=/dify",
        "--no-wait",
    ];
    let gateway = [
        &sub_path[..],
        &[
            "--set",
            "expose.kind=HTTPRoute",
            "--set",
            "expose.gateway.parentRefs[0].name=traefik-gateway",
            "--set",
            "expose.gateway.parentRefs[0].namespace=kommander",
        ],
    ]
    .concat();
    for (ns, args) in [
        ("t-gateway", gateway),
        (
            "t-tls",
            [
                &sub_path[..],
                &[
                    "--set",
                    "external.scheme=https",
                    "--set",
                    "expose.tls.secretName=dify-tls",
                    "--set",
                    "expose.tls.clusterIssuer=corporate-ca",
                ],
            ]
            .concat(),
        ),
    ] {
        let args = [&["--set", "external.host=dify.example.com"][..], &args].concat();
        ok(&apply_with_key(ns, &args));
    }
    let routes = cluster::kubectl_json(&["get", "httproutes", "-n", "t-gateway"], kubeconfig());
    let items = routes["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{routes}");
    for route in items {
        assert_eq!(
            route["metadata"]["managedFields"][0]["manager"],
            "difyrender"
        );
    }
    let ingress =
        cluster::kubectl_json(&["get", "ingress", "-n", "t-tls", "dify-api"], kubeconfig());
    assert_eq!(ingress["spec"]["tls"][0]["secretName"], "dify-tls");
}

/// Every volume claim in `ns`, by name, with its uid.
fn claim_uids(ns: &str) -> std::collections::BTreeMap<String, String> {
    let claims = cluster::kubectl_json(&["get", "pvc", "-n", ns], kubeconfig());
    claims["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap().to_owned(),
                o["metadata"]["uid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `difyrender apply` of the root profile in `ns` at 192.0.2.10 (values in `extra` come later and
/// win), with the master key in the environment; no secret may appear in its output.
fn apply_with_key(ns: &str, extra: &[&str]) -> Output {
    let out = difyrender()
        .arg("apply")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["-n", ns])
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10", "--timeout", "120s"])
        .args(extra)
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert_no_secrets(&transcript(&out), &secrets_of(MASTER), "apply");
    out
}

/// From everything bundled to the production shape: files and plugins in object storage, an
/// external Redis over TLS, pgvector on the release's PostgreSQL. The Secrets the new shape
/// reads are checked before the first write; once they exist, the bundled Redis and Weaviate
/// are pruned and every volume claim is kept, uid and all.
#[test]
fn switching_to_external_datastores_prunes_bundled_objects_and_keeps_volumes() {
    let ns = "t-switch";
    // An older release first: the switch below also moves it forward to 1.12.1.
    ok(&apply_with_key(ns, &["--set", "images.dify.tag=1.11.4"]));
    for sts in ["dify-redis", "dify-weaviate", "dify-postgresql"] {
        ok(&kubectl(&["get", "statefulset", "-n", ns, sts]));
    }
    let claims = claim_uids(ns);
    for claim in ["dify-storage", "data-dify-redis-0", "data-dify-weaviate-0"] {
        assert!(claims.contains_key(claim), "{claim}: {claims:?}");
    }

    let production: &[&str] = &[
        "--set",
        "storage.type=s3",
        "--set",
        "storage.s3.endpoint=https://objects.example.com",
        "--set",
        "storage.s3.bucket=dify-files",
        "--set",
        "storage.s3.credentialsSecret=dify-objects",
        "--set",
        "redis.enabled=false",
        "--set",
        "redis.external.host=redis.example.com",
        "--set",
        "redis.external.tls.enabled=true",
        "--set",
        "redis.external.tls.caSecret=dify-redis-ca",
        "--set",
        "images.dify.tag=1.12.1",
        "--set",
        "vectorStore.type=pgvector",
        "--set",
        "api.autoscaling.enabled=true",
    ];

    // The operator's Secrets are missing: named, and nothing is written.
    let before = cluster::resource_versions(ns, kubeconfig());
    let refused = apply_with_key(ns, production);
    let text = transcript(&refused);
    assert_eq!(refused.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("Secret {ns}/dify-objects does not exist")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Secret {ns}/dify-redis-ca does not exist")),
        "{text}"
    );
    assert_eq!(cluster::resource_versions(ns, kubeconfig()), before);

    // A CA Secret without the key the volume projects is named too.
    ok(&kubectl(&[
        "create",
        "secret",
        "generic",
        "-n",
        ns,
        "dify-objects",
        "--from-literal=access-key-id=AKIA-TEST-ONLY",
        "--from-literal=secret-access-key=test-only-secret-access-key",
    ]));
    ok(&kubectl(&[
        "create",
        "secret",
        "generic",
        "-n",
        ns,
        "dify-redis-ca",
        "--from-literal=tls.crt=not-the-ca",
    ]));
    let lacking = apply_with_key(ns, production);
    let text = transcript(&lacking);
    assert_eq!(lacking.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("Secret {ns}/dify-redis-ca lacks the keys ca.crt")),
        "{text}"
    );
    ok(&kubectl(&[
        "patch",
        "secret",
        "-n",
        ns,
        "dify-redis-ca",
        "--type",
        "merge",
        "-p",
        r#"{"stringData": {"ca.crt": "test-only-ca"}}"#,
    ]));

    let switched = apply_with_key(ns, production);
    let text = ok(&switched);
    for gone in [
        "statefulset/dify-redis",
        "statefulset/dify-weaviate",
        "service/dify-redis",
    ] {
        let out = kubectl(&["get", gone, "-n", ns]);
        assert!(!out.status.success(), "{gone} was pruned: {text}");
    }
    assert!(
        text.contains("dify-storage"),
        "the kept claim is reported: {text}"
    );
    assert_eq!(
        claim_uids(ns),
        claims,
        "every volume claim is kept as it was"
    );

    let pg = cluster::kubectl_json(&["get", "sts", "-n", ns, "dify-postgresql"], kubeconfig());
    assert_eq!(
        pg["spec"]["template"]["spec"]["containers"][0]["image"],
        "pgvector/pgvector:0.8.0-pg15"
    );
    let api = cluster::kubectl_json(&["get", "deployment", "-n", ns, "dify-api"], kubeconfig());
    let spec = &api["spec"]["template"]["spec"];
    assert!(spec["affinity"].is_null(), "{}", spec["affinity"]);
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(volumes, ["redis-ca"]);
    ok(&kubectl(&["get", "hpa", "-n", ns, "dify-api"]));
}

/// Every value each topology choice can take, in four renders, is accepted by the real API
/// server with strict field validation (a server-side dry run: nothing is stored).
#[test]
fn every_topology_choice_passes_strict_server_side_validation() {
    let ns = "t-strict-shapes";
    ok(&kubectl(&["create", "namespace", ns]));
    let shapes: &[&[&str]] = &[
        // Object storage on Amazon S3 itself, external Redis without TLS, Qdrant.
        &[
            "storage.type=s3",
            "storage.s3.bucket=dify-files",
            "storage.s3.credentialsSecret=dify-objects",
            "worker.autoscaling.enabled=true",
            "redis.enabled=false",
            "redis.external.host=redis.example.com",
            "redis.external.username=dify",
            "vectorStore.type=qdrant",
            "vectorStore.external.url=https://qdrant.example.com:6333",
            "secrets.qdrantApiKey=strict-qdrant-key",
        ],
        // External PostgreSQL with pgvector, Redis over TLS without verification.
        &[
            "images.dify.tag=1.14.1",
            "postgresql.enabled=false",
            "postgresql.external.host=db.example.com",
            "postgresql.external.sslMode=require",
            "vectorStore.type=pgvector",
            "redis.enabled=false",
            "redis.external.host=redis.example.com",
            "redis.external.tls.enabled=true",
            "redis.external.tls.verify=false",
        ],
        // An external Weaviate, Redis over TLS with a CA.
        &[
            "images.dify.tag=1.13.3",
            "vectorStore.type=external-weaviate",
            "vectorStore.external.url=https://weaviate.example.com",
            "vectorStore.external.grpcUrl=grpc://weaviate.example.com:50051",
            "secrets.weaviateApiKey=strict-weaviate-key",
            "redis.enabled=false",
            "redis.external.host=redis.example.com",
            "redis.external.tls.enabled=true",
            "redis.external.tls.caSecret=dify-redis-ca",
        ],
        // pgvector on the bundled PostgreSQL, object storage on an endpoint.
        &[
            "vectorStore.type=pgvector",
            "storage.type=s3",
            "storage.s3.endpoint=https://objects.example.com",
            "storage.s3.bucket=dify-files",
            "storage.s3.pluginBucket=dify-plugins",
            "storage.s3.pathStyle=false",
            "storage.s3.credentialsSecret=dify-objects",
        ],
    ];
    for set in shapes {
        let mut cmd = difyrender();
        cmd.arg("render")
            .args(["-n", ns])
            .args(root_profile())
            .args(["--set", "external.host=192.0.2.10"]);
        for s in *set {
            cmd.args(["--set", s]);
        }
        let out = cmd.env("DIFY_SECRET_KEY", MASTER).output().unwrap();
        assert!(out.status.success(), "{set:?}: {}", transcript(&out));
        let stream = String::from_utf8(out.stdout).unwrap();
        cluster::strict_dry_run(&stream, "kubectl", kubeconfig(), &format!("{set:?}"));
    }
}

/// The Prometheus operator's PodMonitor CRD of the release pinned in
/// hack/testenv/prometheus-operator.
fn podmonitor_crd() -> PathBuf {
    cluster::pinned_module(
        "prometheus-operator",
        "github.com/prometheus-operator/prometheus-operator",
    )
    .join("example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml")
}

/// `render` with monitoring on (or off), at the root path: the stream's objects.
fn render_monitoring(extra: &[&str]) -> (Output, Vec<serde_json::Value>) {
    let out = difyrender()
        .arg("render")
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"])
        .args(extra)
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    let objects = if out.status.success() {
        difyrender::yaml::from_str_multiple(&String::from_utf8_lossy(&out.stdout)).unwrap()
    } else {
        Vec::new()
    };
    (out, objects)
}

/// Container ports named "metrics" of each pod template, by component.
fn metrics_ports(objects: &[serde_json::Value]) -> std::collections::BTreeMap<String, Vec<i64>> {
    let mut out = std::collections::BTreeMap::new();
    for o in objects {
        let labels = &o["spec"]["template"]["metadata"]["labels"];
        let Some(component) = labels["app.kubernetes.io/component"].as_str() else {
            continue;
        };
        let ports: Vec<i64> = o["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .filter(|p| p["name"] == "metrics")
            .map(|p| p["containerPort"].as_i64().unwrap())
            .collect();
        if !ports.is_empty() {
            out.insert(component.to_owned(), ports);
        }
    }
    out
}

/// monitoring.enabled: Weaviate serves its metrics and exporters run beside the bundled
/// PostgreSQL and Redis; the PodMonitor selects exactly the pods with a "metrics" port; the
/// NetworkPolicy opens those ports, and only those, to Prometheus's namespace; the dashboard is
/// JSON. Off (the default), none of it is rendered. With nothing bundled, it is refused.
#[test]
fn monitoring_scrapes_what_serves_metrics() {
    let (off, objects) = render_monitoring(&[]);
    assert!(off.status.success(), "{}", transcript(&off));
    assert!(metrics_ports(&objects).is_empty());
    assert!(!objects.iter().any(|o| o["kind"] == "PodMonitor"));
    assert!(!String::from_utf8_lossy(&off.stdout).contains("PROMETHEUS_MONITORING"));

    let (on, objects) = render_monitoring(&["--set", "monitoring.enabled=true"]);
    assert!(on.status.success(), "{}", transcript(&on));
    let ports = metrics_ports(&objects);
    assert_eq!(
        ports.keys().collect::<Vec<_>>(),
        ["postgresql", "redis", "weaviate"],
        "{ports:?}"
    );
    let monitor = objects.iter().find(|o| o["kind"] == "PodMonitor").unwrap();
    let selected: Vec<&str> = monitor["spec"]["selector"]["matchExpressions"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        selected,
        ports.keys().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    // The exporters read the datastores' passwords from the keys Secret, never as values.
    let exporters: Vec<&serde_json::Value> = objects
        .iter()
        .flat_map(|o| {
            o["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .filter(|c| c["name"] == "metrics-exporter")
        .collect();
    assert_eq!(exporters.len(), 2);
    for c in exporters {
        let password = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"].as_str().unwrap().contains("PASS"))
            .unwrap();
        assert_eq!(
            password["valueFrom"]["secretKeyRef"]["name"], "dify-keys",
            "{c}"
        );
        assert!(password.get("value").is_none(), "{c}");
    }
    // Prometheus's namespace reaches the metrics ports and nothing else.
    let policy = objects
        .iter()
        .find(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["name"] == "dify-datastores")
        .unwrap();
    let rule = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["from"][0]["namespaceSelector"].is_object())
        .unwrap();
    assert_eq!(
        rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "kommander"
    );
    let mut opened: Vec<i64> = rule["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    let mut served: Vec<i64> = ports.values().flatten().copied().collect();
    opened.sort();
    served.sort();
    assert_eq!(opened, served);
    let dashboard = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["labels"]["grafana_dashboard"] == "1")
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(dashboard["data"]["dify.json"].as_str().unwrap()).unwrap();
    assert_eq!(json["panels"].as_array().unwrap().len(), 6, "{json}");

    // External datastores serve no metrics of the release's: only what is bundled is scraped.
    let (s3ish, objects) = render_monitoring(&[
        "--set",
        "monitoring.enabled=true",
        "--set",
        "vectorStore.type=qdrant",
        "--set",
        "vectorStore.external.url=http://qdrant.example.com:6333",
        "--set",
        "secrets.qdrantApiKey=qdrant-test-key-000000",
    ]);
    assert!(s3ish.status.success(), "{}", transcript(&s3ish));
    assert_eq!(
        metrics_ports(&objects).keys().collect::<Vec<_>>(),
        ["postgresql", "redis"]
    );

    let (refused, _) = render_monitoring(&[
        "--set",
        "monitoring.enabled=true",
        "--set",
        "redis.enabled=false",
        "--set",
        "redis.external.host=redis.example.com",
        "--set",
        "postgresql.enabled=false",
        "--set",
        "postgresql.external.host=pg.example.com",
        "--set",
        "secrets.postgresPassword=pg-test-password-0000",
        "--set",
        "secrets.redisPassword=redis-test-password-0000",
        "--set",
        "vectorStore.type=pgvector",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", transcript(&refused));
    assert!(
        transcript(&refused).contains("monitoring.enabled: no bundled datastore runs"),
        "{}",
        transcript(&refused)
    );
    assert!(refused.stdout.is_empty());
}

/// On the real control plane: without the Prometheus operator's CRDs, apply's doctor check
/// names PodMonitor and stops before any write; with them (the release NKP 2.17 ships), the
/// stream passes a strict server-side dry run and apply writes the PodMonitor under its own
/// field manager.
#[test]
fn monitoring_objects_are_accepted_by_the_api_server() {
    let ns = "t-monitoring";
    let refused = apply_with_key(ns, &["--set", "monitoring.enabled=true", "--no-wait"]);
    assert_eq!(refused.status.code(), Some(3), "{}", transcript(&refused));
    let text = transcript(&refused);
    assert!(
        text.contains("PodMonitor (monitoring.coreos.com/v1)"),
        "{text}"
    );
    assert!(text.contains("kube-prometheus-stack"), "{text}");
    assert!(
        !kubectl(&["get", "namespace", ns]).status.success(),
        "nothing was written"
    );

    cluster::install_crds(
        &podmonitor_crd(),
        "podmonitors.monitoring.coreos.com",
        kubeconfig(),
    );
    ok(&apply_with_key(
        ns,
        &["--set", "monitoring.enabled=true", "--no-wait"],
    ));
    let (rendered, _) = render_monitoring(&["-n", ns, "--set", "monitoring.enabled=true"]);
    assert!(rendered.status.success(), "{}", transcript(&rendered));
    cluster::strict_dry_run(
        &String::from_utf8_lossy(&rendered.stdout),
        "difyrender",
        kubeconfig(),
        "monitoring",
    );
    let monitor = cluster::kubectl_json(
        &["get", "podmonitor", "-n", ns, "dify-datastores"],
        kubeconfig(),
    );
    assert_eq!(
        monitor["metadata"]["managedFields"][0]["manager"],
        "difyrender"
    );
}

/// The External Secrets Operator's ExternalSecret CRD of the release pinned in
/// hack/testenv/external-secrets.
fn external_secrets_crd() -> PathBuf {
    cluster::pinned_module(
        "external-secrets",
        "github.com/external-secrets/external-secrets",
    )
    .join("config/crds/bases/external-secrets.io_externalsecrets.yaml")
}

/// `secrets.externalSecret`: the keys Secret made by the platform's External Secrets Operator.
/// Without secrets.existingSecret (the Secret it makes) it is refused; the ExternalSecret passes
/// a strict server-side dry run with ESO's own CRD, and no keys Secret is rendered.
#[test]
fn external_secret_needs_the_name_it_makes_and_passes_the_crd() {
    let refused = difyrender()
        .arg("render")
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"])
        .args(&ESO[2..])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", transcript(&refused));
    assert!(
        transcript(&refused)
            .contains("secrets.externalSecret.enabled needs secrets.existingSecret"),
        "{}",
        transcript(&refused)
    );

    cluster::install_crds(
        &external_secrets_crd(),
        "externalsecrets.external-secrets.io",
        kubeconfig(),
    );
    let ns = "t-eso-dry-run";
    ok(&kubectl(&["create", "namespace", ns]));
    let rendered = difyrender()
        .arg("render")
        .args(["-n", ns])
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"])
        .args(ESO)
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{}", transcript(&rendered));
    let text = String::from_utf8_lossy(&rendered.stdout);
    let objects = difyrender::yaml::from_str_multiple(&text).unwrap();
    assert!(
        !objects.iter().any(|o| o["kind"] == "Secret"),
        "no keys Secret"
    );
    let external: Vec<_> = objects
        .iter()
        .filter(|o| o["kind"] == "ExternalSecret")
        .collect();
    assert_eq!(external.len(), 1);
    assert_eq!(external[0]["spec"]["target"]["name"], "eso-keys");
    cluster::strict_dry_run(&text, "difyrender", kubeconfig(), "externalSecret");
}

/// apply with secrets.externalSecret on the real control plane: it writes the ExternalSecret,
/// waits for it before any workload, and checks that the Secret it made has every key the pods
/// read. STAND-IN: the External Secrets Operator's controller is not built here (only its CRD
/// is); this test does the controller's part — it writes the target Secret and sets the
/// ExternalSecret's Ready condition through the status subresource, as the controller does.
#[test]
fn apply_waits_for_the_external_secret_before_any_pod() {
    cluster::install_crds(
        &external_secrets_crd(),
        "externalsecrets.external-secrets.io",
        kubeconfig(),
    );
    // doctor (before apply) wants the store Ready: its CRD, the store, and its Ready condition
    // as the controller sets it (the same stand-in).
    cluster::install_crds(
        &external_secrets_crd().with_file_name("external-secrets.io_clustersecretstores.yaml"),
        "clustersecretstores.external-secrets.io",
        kubeconfig(),
    );
    ok(&cluster::kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        r#"{"apiVersion":"external-secrets.io/v1","kind":"ClusterSecretStore","metadata":{"name":"vault"},"spec":{"provider":{"fake":{"data":[]}}}}"#,
        kubeconfig(),
    ));
    ok(&kubectl(&[
        "patch",
        "clustersecretstores.external-secrets.io",
        "vault",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Valid","message":"store validated","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
    ]));
    let ns = "t-eso";
    let spawn = || {
        difyrender()
            .arg("apply")
            .arg("--kubeconfig")
            .arg(kubeconfig())
            .args(["-n", ns])
            .args(root_profile())
            .args([
                "--set",
                "external.host=192.0.2.10",
                "--timeout",
                "120s",
                "--no-wait",
            ])
            .args(ESO)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    read_until(&mut stderr, "waiting for 1 ExternalSecret(s)");
    let workloads = kubectl(&["get", "deployments,statefulsets", "-n", ns, "-o", "name"]);
    ok(&workloads);
    assert!(
        workloads.stdout.is_empty(),
        "no workload before the Secret exists"
    );

    // The keys in the layout of `secrets render`, as the operator's store would hold them; the
    // first sync lacks DB_PASSWORD.
    let printed = difyrender()
        .args(["secrets", "render", "-n", ns])
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"])
        .args(ESO)
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert!(printed.status.success(), "{}", transcript(&printed));
    let mut secret = difyrender::yaml::from_str(&String::from_utf8_lossy(&printed.stdout)).unwrap();
    assert_eq!(
        secret["metadata"]["name"], "eso-keys",
        "secrets render names the Secret to provide"
    );
    let full = secret.clone();
    secret["data"]
        .as_object_mut()
        .unwrap()
        .remove("DB_PASSWORD");
    let apply_secret = |s: &serde_json::Value| {
        ok(&cluster::kubectl_stdin(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            &s.to_string(),
            kubeconfig(),
        ))
    };
    apply_secret(&secret);
    let mut synced = cluster::kubectl_json(
        &["get", "externalsecret", "-n", ns, "eso-keys"],
        kubeconfig(),
    );
    synced["status"] = serde_json::json!({"conditions": [{
        "type": "Ready", "status": "True", "reason": "SecretSynced",
        "message": "secret synced", "lastTransitionTime": "2026-12-06T00:00:00Z",
    }]});
    ok(&cluster::kubectl_stdin(
        &["replace", "--subresource=status", "-f", "-"],
        &synced.to_string(),
        kubeconfig(),
    ));
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(out.status.code(), Some(3), "{rest}");
    assert!(
        rest.contains("Secret t-eso/eso-keys lacks the keys DB_PASSWORD"),
        "{rest}"
    );
    assert_no_secrets(&rest, &secrets_of(MASTER), "apply");
    let workloads = kubectl(&["get", "deployments,statefulsets", "-n", ns, "-o", "name"]);
    assert!(
        workloads.stdout.is_empty(),
        "nothing after the config stage"
    );

    // The next sync brings every key: apply goes on.
    apply_secret(&full);
    let done = spawn().wait_with_output().unwrap();
    assert!(done.status.success(), "{}", transcript(&done));
    let external = cluster::kubectl_json(
        &["get", "externalsecret", "-n", ns, "eso-keys"],
        kubeconfig(),
    );
    assert_eq!(
        external["metadata"]["managedFields"][0]["manager"],
        "difyrender"
    );
    assert_eq!(external["spec"]["target"]["creationPolicy"], "Orphan");
    let workloads = kubectl(&["get", "statefulsets", "-n", ns, "-o", "name"]);
    assert!(String::from_utf8_lossy(&workloads.stdout).contains("dify-postgresql"));
}
