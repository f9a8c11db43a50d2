//! The two properties that make "render accepts what a real program refuses" impossible to
//! regress, checked over generated values:
//!
//! 1. **render accepts ⇒ the real API server accepts**: every render that exits 0 is sent to
//!    the real control plane (scripts/testenv, with the Gateway API and Traefik CRDs) through a
//!    strict server-side dry run; any refusal fails the test and names the values.
//! 2. **every generated configuration file is accepted by its own program**: the rendered
//!    `squid.conf` by `squid -k parse`, the hook proxy's `nginx.conf` by `nginx -t`, and the
//!    sandbox's requirements by pip's own requirement parser (`pip._vendor.packaging`).
//!
//! Values are generated from a table of value paths — pod fragments of every component,
//! routes, TLS, topology options, hosts, networks, packages, images — each with valid and
//! invalid candidates (the defects of issue 17 among them), applied one at a time and then in
//! seeded random combinations. A render that is refused must be refused properly: exit 2,
//! nothing on stdout. `PROPERTY_CASES` sets how many combinations run (scripts/test: the
//! default; scripts/fuzz: all), `PROPERTY_SEED` the seed, `PROPERTY_ONLY` a text the replayed
//! candidates' values must contain.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const MASTER: &str = "property-test-master-key-0123456789";
const NAMESPACE: &str = "props";
/// Sampled single candidates, and as many combinations, run by default (scripts/test).
const DEFAULT_CASES: usize = 40;

/// Every value path with candidates. Each candidate is a list of (path, value) pairs set
/// together (an HTTPRoute needs its kind and its parent).
fn table() -> Vec<Vec<Vec<(&'static str, Value)>>> {
    let one = |path: &'static str, values: Vec<Value>| -> Vec<Vec<(&'static str, Value)>> {
        values.into_iter().map(|v| vec![(path, v)]).collect()
    };
    let mut t = Vec::new();
    for component in [
        "api",
        "worker",
        "web",
        "sandbox",
        "pluginDaemon",
        "ssrfProxy",
        "redis",
        "postgresql",
        "weaviate",
        "migration",
        "beat",
    ] {
        let path = |field: &str| -> &'static str {
            Box::leak(format!("{component}.pod.{field}").into_boxed_str())
        };
        t.push(one(
            path("nodeSelector"),
            vec![
                json!({"disktype": "ssd"}),
                json!({"example.com/zone": "a"}),
                json!({"bad key!": "x"}),
                json!({"zone": "bad value!"}),
                json!({"": "x"}),
            ],
        ));
        t.push(one(path("tolerations"), vec![
            json!([{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]),
            json!([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 30}]),
            json!([{"operator": "Exists"}]),
            json!([{"key": "k", "operator": "Bogus"}]),
            json!([{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 30}]),
            json!([{"key": "k", "operator": "Exists", "value": "v"}]),
            json!([{"operator": "Equal", "value": "v"}]),
            json!([{"key": "bad key!", "operator": "Exists"}]),
            json!([{"key": "k", "effect": "Sometimes"}]),
        ]));
        t.push(one(path("affinity"), vec![
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}),
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}),
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In"}]}]}}}),
            json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {"matchExpressions": [{"key": "z", "operator": "Exists"}]}}]}}),
            json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}}]}}),
            json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "x"}}}]}}),
            json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone", "labelSelector": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}}]}}),
        ]));
        t.push(one(path("topologySpreadConstraints"), vec![
            json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"a": "b"}}}]),
            json!([{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]),
            json!([{"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]),
            json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]),
            json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 2}]),
            json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}, {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]),
        ]));
        t.push(one(
            path("labels"),
            vec![
                json!({"team": "a"}),
                json!({"bad key!": "x"}),
                json!({"t": "bad value!"}),
            ],
        ));
        t.push(one(
            path("annotations"),
            vec![json!({"example.com/a": "b"}), json!({"bad key!": "x"})],
        ));
        t.push(one(
            path("priorityClassName"),
            vec![json!("high"), json!("Bad_Class")],
        ));
        t.push(vec![
            vec![(path("volumes"), json!([{"name": "extra", "emptyDir": {}}])), (path("volumeMounts"), json!([{"name": "extra", "mountPath": "/extra"}]))],
            vec![(path("volumes"), json!([{"name": "storage", "emptyDir": {}}]))],
            vec![(path("volumes"), json!([{"name": "config", "emptyDir": {}}]))],
            vec![(path("volumes"), json!([{"name": "two", "emptyDir": {}, "configMap": {"name": "x"}}]))],
            vec![(path("volumes"), json!([{"name": "none"}]))],
            vec![(path("volumes"), json!([{"name": "Bad_Name", "emptyDir": {}}]))],
            vec![(path("volumeMounts"), json!([{"name": "unknown", "mountPath": "/u"}]))],
            vec![(path("volumes"), json!([{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}])), (path("volumeMounts"), json!([{"name": "a", "mountPath": "/same"}, {"name": "b", "mountPath": "/same"}]))],
            vec![(path("volumes"), json!([{"name": "a", "emptyDir": {}}])), (path("volumeMounts"), json!([{"name": "a", "mountPath": "/tmp"}]))],
        ]);
        t.push(one(path("env"), vec![
            json!([{"name": "EXTRA", "value": "x"}]),
            json!([{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
            json!([{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
            json!([{"name": "A", "valueFrom": {}}]),
            json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "Bad_Name", "key": "k"}}}]),
            json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": ".."}}}]),
            json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}}}]),
            json!([{"name": "A", "value": "nul\u{0}here"}]),
        ]));
    }
    t.push(one(
        "dify.extraEnv",
        vec![
            json!({"X": "ok"}),
            json!({"X": {"valueFrom": {}}}),
            json!({"X": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}}),
            json!({"X": "a\u{0}b"}),
        ],
    ));
    let route = |refs: Value| {
        vec![
            ("expose.kind", json!("HTTPRoute")),
            ("expose.gateway.parentRefs", refs),
        ]
    };
    t.push(vec![
        route(json!([{"name": "gw", "namespace": "kommander"}])),
        route(
            json!([{"name": "gw", "namespace": "kommander", "sectionName": "https", "port": 443}]),
        ),
        route(json!([{"name": ""}])),
        route(json!([{"name": "gw", "namespace": "Bad_NS"}])),
        route(json!([{"name": "gw", "sectionName": "Bad Section"}])),
        route(json!([{"name": "gw", "port": 99999}])),
        route(Value::Array(
            (0..33).map(|i| json!({"name": format!("gw{i}")})).collect(),
        )),
    ]);
    t.push(one(
        "external.host",
        vec![
            json!("dify.example.com"),
            json!("dify.example.com:8443"),
            json!("Dify.Example.com"),
            json!("192.0.2.10:8080"),
            json!("[2001:db8::1]"),
            json!("dify.example.com:0"),
            json!("dify.example.com:99999"),
            json!(format!("{}.example.com", "a".repeat(64))),
        ],
    ));
    t.push(vec![
        vec![
            (
                "expose.tls",
                json!({"secretName": "dify-tls", "clusterIssuer": ""}),
            ),
            ("external.host", json!("dify.example.com")),
            ("external.scheme", json!("https")),
        ],
        vec![
            (
                "expose.tls",
                json!({"secretName": "dify-tls", "clusterIssuer": "letsencrypt"}),
            ),
            ("external.host", json!("Dify.Example.com:8443")),
            ("external.scheme", json!("https")),
        ],
        vec![
            (
                "expose.tls",
                json!({"secretName": "", "clusterIssuer": "letsencrypt"}),
            ),
            ("external.host", json!("dify.example.com")),
            ("external.scheme", json!("https")),
        ],
    ]);
    t.push(one(
        "expose.path",
        vec![
            json!("/"),
            json!("/dify"),
            json!("/a/../b"),
            json!("/a/./b"),
        ],
    ));
    t.push(one(
        "expose.ingressClassName",
        vec![json!("kommander-traefik"), json!("x".repeat(300))],
    ));
    t.push(one(
        "expose.annotations",
        vec![json!({"example.com/a": "b"}), json!({"bad key!": "x"})],
    ));
    t.push(one(
        "clusterDomain",
        vec![
            json!("cluster.local"),
            json!(format!("{}.local", "c".repeat(64))),
        ],
    ));
    t.push(one(
        "ssrfProxy.allowedPrivateNetworks",
        vec![
            json!(["10.0.0.0/8", "fd00::/8", "192.0.2.1"]),
            json!(["10.0.0.0/33"]),
            json!(["999.1.1.1"]),
            json!([":::"]),
            json!(["0.0.0.0/0"]),
        ],
    ));
    t.push(one(
        "sandbox.pythonPackages",
        vec![
            json!(["numpy==1.26.4", "requests[socks] >=2.0, <3"]),
            json!(["numpy --pre"]),
            json!(["-e ."]),
            json!(["numpy ==", "pandas"]),
        ],
    ));
    let s3 = |extra: Vec<(&'static str, Value)>| {
        let mut v = vec![
            ("storage.type", json!("s3")),
            ("storage.s3.bucket", json!("dify-files")),
            ("storage.s3.credentialsSecret", json!("dify-objects")),
        ];
        v.extend(extra);
        v
    };
    t.push(vec![
        s3(vec![(
            "storage.s3.endpoint",
            json!("https://objects.example.com"),
        )]),
        s3(vec![(
            "storage.s3.endpoint",
            json!("https://objects.example.com:0"),
        )]),
        s3(vec![(
            "storage.s3.endpoint",
            json!("https://objects.example.com:70000"),
        )]),
        s3(vec![("storage.s3.bucket", json!("a..b"))]),
        s3(vec![("storage.s3.bucket", json!("192.168.1.1"))]),
        s3(vec![("storage.s3.bucket", json!("xn--bucket"))]),
        s3(vec![("storage.s3.accessKeyIdKey", json!(".."))]),
    ]);
    t.push(vec![
        vec![
            ("postgresql.enabled", json!(false)),
            ("postgresql.external.host", json!("db.example.com")),
        ],
        vec![
            ("postgresql.enabled", json!(false)),
            ("postgresql.external.host", json!("h".repeat(300))),
        ],
        vec![
            ("redis.enabled", json!(false)),
            (
                "redis.external.host",
                json!(format!("{}.example.com", "r".repeat(70))),
            ),
        ],
    ]);
    t.push(vec![
        vec![
            ("vectorStore.type", json!("qdrant")),
            (
                "vectorStore.external.url",
                json!("https://qdrant.example.com:6333"),
            ),
            ("secrets.qdrantApiKey", json!("qdrant-key-0123456789")),
        ],
        vec![("vectorStore.type", json!("pgvector"))],
    ]);
    t.push(vec![
        vec![
            ("secrets.existingSecret", json!("dify-keys-ext")),
            (
                "secrets.existingSecretKeys",
                json!({"SECRET_KEY": "dify-secret-key"}),
            ),
        ],
        vec![
            ("secrets.existingSecret", json!("dify-keys-ext")),
            (
                "secrets.existingSecretKeys",
                json!({"DB_PASSWORD": "SECRET_KEY"}),
            ),
        ],
        vec![
            ("secrets.existingSecret", json!("dify-keys-ext")),
            ("secrets.existingSecretKeys", json!({"DB_PASSWORD": "."})),
        ],
        vec![("secrets.existingSecretKeys", json!({"SECRET_KEY": "k"}))],
    ]);
    t.push(one("images.api.tag", vec![json!(""), json!("1.13.3")]));
    t.push(one(
        "images.dify.repository",
        vec![
            json!("langgenius/dify"),
            json!("langgenius/dify:1.0"),
            json!("registry.example.com:5000/langgenius/dify"),
        ],
    ));
    t.push(one(
        "securityContexts.dify.pod.runAsUser",
        vec![json!(1001), json!(null), json!(-1)],
    ));
    // Topology options: scaling, storage, network policy, sizes and resources.
    let rwx = |extra: Vec<(&'static str, Value)>| {
        let mut v = vec![("storage.accessMode", json!("ReadWriteMany"))];
        v.extend(extra);
        v
    };
    t.push(vec![
        rwx(vec![("api.autoscaling", json!({"enabled": true, "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80}))]),
        rwx(vec![("worker.autoscaling", json!({"enabled": true, "minReplicas": 5, "maxReplicas": 2, "targetCPUUtilizationPercentage": 80}))]),
        rwx(vec![("api.replicas", json!(3)), ("web.replicas", json!(2))]),
        vec![("api.replicas", json!(0))],
        vec![("api.autoscaling", json!({"enabled": true, "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80}))],
    ]);
    t.push(one(
        "networkPolicy.enabled",
        vec![json!(true), json!(false)],
    ));
    t.push(one(
        "storage.size",
        vec![json!("10Gi"), json!("0"), json!("10 Gi"), json!("-1Gi")],
    ));
    t.push(one(
        "postgresql.storageSize",
        vec![json!("20Gi"), json!("0"), json!("1e3")],
    ));
    t.push(one("api.resources", vec![
        json!({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}),
        json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        json!({"requests": {"cpu": "lots"}}),
        json!({"limits": {"nvidia.com/gpu": "1"}}),
    ]));
    t
}

/// A small seeded generator (xorshift), so a failure can be replayed with its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The cases: `singles` candidates alone (all of them when `None`, else a seeded sample),
/// then `combos` random combinations of two to four.
fn cases(singles: Option<usize>, combos: usize, seed: u64) -> Vec<Vec<(&'static str, Value)>> {
    let table = table();
    let mut all: Vec<Vec<(&'static str, Value)>> = table.iter().flatten().cloned().collect();
    let mut rng = Rng(seed | 1);
    let mut out = Vec::new();
    match singles {
        None => out = all,
        Some(n) => {
            for _ in 0..n.min(all.len()) {
                out.push(all.swap_remove(rng.below(all.len())));
            }
        }
    }
    for _ in 0..combos {
        let mut case = Vec::new();
        for _ in 0..2 + rng.below(3) {
            let row = &table[rng.below(table.len())];
            case.extend(row[rng.below(row.len())].clone());
        }
        out.push(case);
    }
    out
}

fn describe(case: &[(&str, Value)]) -> String {
    case.iter()
        .map(|(p, v)| {
            let text = v.to_string();
            let shown: String = text.chars().take(120).collect();
            format!("{p}={shown}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders one case; `Some(stream)` when render accepted it.
fn render(case: &[(&str, Value)]) -> Option<String> {
    let mut cmd = difyrender();
    cmd.args(["render", "-n", NAMESPACE])
        .args(root_profile())
        .args(["--set", "external.host=dify.example.com"]);
    for (path, value) in case {
        cmd.arg("--set-json").arg(format!("{path}={value}"));
    }
    let out = cmd.env("DIFY_SECRET_KEY", MASTER).output().unwrap();
    let what = describe(case);
    match out.status.code() {
        Some(0) => Some(String::from_utf8(out.stdout).unwrap()),
        Some(2) => {
            let text = transcript(&out);
            assert!(
                out.stdout.is_empty(),
                "{what}: a refusal printed to stdout: {text}"
            );
            assert!(
                out.stderr.len() < 8192,
                "{what}: {} bytes of error",
                out.stderr.len()
            );
            assert!(!text.contains(MASTER), "{what}: {text}");
            None
        }
        _ => panic!("{what}: exit {:?}: {}", out.status, transcript(&out)),
    }
}

/// The ConfigMap data key `key` of any object in `stream`.
fn config_file(stream: &str, key: &str) -> Option<String> {
    difyrender::yaml::from_str_multiple(stream)
        .unwrap()
        .into_iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .find_map(|d| d["data"][key].as_str().map(str::to_owned))
}

/// Runs `program` with `args` and `input` on stdin; its transcript, `Err` when it refuses.
fn run_program(program: &str, args: &[&str], input: &str) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = transcript(&out);
    // squid reports a refused line as FATAL (and exits 1); both are checked.
    if out.status.success() && !text.contains("FATAL") {
        Ok(text)
    } else {
        Err(text)
    }
}

/// squid's own parser on a squid.conf.
fn squid_parse(conf: &str, dir: &Path) -> Result<String, String> {
    let file = dir.join("squid.conf");
    std::fs::write(&file, conf).unwrap();
    run_program(
        "/usr/sbin/squid",
        &["-k", "parse", "-f", file.to_str().unwrap()],
        "",
    )
}

/// nginx's own test of an nginx.conf.
fn nginx_test(conf: &str, dir: &Path) -> Result<String, String> {
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).unwrap();
    run_program(
        "/usr/sbin/nginx",
        &["-t", "-q", "-c", file.to_str().unwrap()],
        "",
    )
}

/// pip's own requirement parser (the packaging it vendors) on each requirement line, as pip
/// reads a requirements file: comments and blank lines skipped.
fn pip_parse(requirements: &str) -> Result<String, String> {
    let script = "import sys\nfrom pip._vendor.packaging.requirements import Requirement\nfor line in sys.stdin.read().splitlines():\n    line = line.split(' #')[0].strip()\n    if line and not line.startswith('#'):\n        Requirement(line)\n";
    run_program("/usr/bin/python3", &["-c", script], requirements)
}

/// Property 2 for one render: each configuration file it holds, by its own program.
fn check_programs(stream: &str, what: &str, dir: &Path) {
    let squid = config_file(stream, "squid.conf")
        .unwrap_or_else(|| panic!("{what}: no squid.conf rendered"));
    if let Err(text) = squid_parse(&squid, dir) {
        panic!("{what}: squid refuses the rendered squid.conf: {text}");
    }
    let nginx = config_file(stream, "nginx.conf")
        .unwrap_or_else(|| panic!("{what}: no hook proxy nginx.conf rendered"));
    if let Err(text) = nginx_test(&nginx, dir) {
        panic!("{what}: nginx refuses the hook proxy's nginx.conf: {text}");
    }
    if let Some(reqs) = config_file(stream, "python-requirements.txt")
        && let Err(text) = pip_parse(&reqs)
    {
        panic!("{what}: pip refuses the sandbox requirements: {text}");
    }
}

/// The checks of property 2 can fail: each program refuses what the issue found.
#[test]
fn each_program_refuses_what_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let bad_squid = "acl to_private dst 10.0.0.0/33\nhttp_access deny to_private\nhttp_port 3128\n";
    assert!(
        squid_parse(bad_squid, dir.path())
            .unwrap_err()
            .contains("Bungled")
    );
    assert!(
        squid_parse(
            "acl p dst 10.0.0.0/8\nhttp_access deny p\nhttp_port 3128\n",
            dir.path()
        )
        .is_ok()
    );
    assert!(nginx_test("events {}\nhttp { server { listen 5080 } }\n", dir.path()).is_err());
    assert!(
        nginx_test(
            "pid /tmp/nginx-prop.pid;\nevents {}\nhttp { server { listen 5080; } }\n",
            dir.path()
        )
        .is_ok()
    );
    assert!(pip_parse("numpy --pre\n").is_err());
    assert!(pip_parse("numpy==1.26.4\nrequests[socks] >=2.0, <3\n").is_ok());
}

/// The programs of property 2 (Debian's squid and nginx, pip) and the control plane with
/// every CRD the chart uses.
fn setup() -> std::path::PathBuf {
    for program in ["/usr/sbin/squid", "/usr/sbin/nginx", "/usr/bin/python3"] {
        assert!(
            Path::new(program).is_file(),
            "{program} is missing: scripts/runtime build installs it (scripts/test runs it)"
        );
    }
    let kc = cluster::start("properties");
    cluster::ok(&cluster::kubectl(&["create", "namespace", NAMESPACE], &kc));
    cluster::gateway_api_crds(&kc);
    kc
}

#[test]
fn render_accepts_only_what_the_api_server_and_each_program_accept() {
    let kc = setup();
    // PROPERTY_CASES=all: every single candidate and 500 combinations (scripts/fuzz);
    // PROPERTY_CASES=N: N sampled candidates and N combinations.
    let (singles, combos) = match std::env::var("PROPERTY_CASES").ok().as_deref() {
        Some("all") => (None, 500),
        Some(n) => {
            let n = n.parse().expect("PROPERTY_CASES is a number or all");
            (Some(n), n)
        }
        None => (Some(DEFAULT_CASES), DEFAULT_CASES),
    };
    let seed = std::env::var("PROPERTY_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(17);
    let dir = tempfile::tempdir().unwrap();
    let (mut accepted, mut refused) = (0, 0);
    // The shipped examples first, then the generated values.
    let examples = [
        vec!["-f", "examples/nkp.values.yaml"],
        vec![
            "-f",
            "examples/nkp.values.yaml",
            "-f",
            "examples/nkp-production.values.yaml",
        ],
    ];
    for files in examples {
        let out = difyrender()
            .current_dir(root())
            .args(["render", "-n", NAMESPACE])
            .args(&files)
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap();
        let what = format!("{files:?}");
        assert!(out.status.success(), "{what}: {}", transcript(&out));
        let stream = String::from_utf8(out.stdout).unwrap();
        cluster::strict_dry_run(&stream, "difyrender", &kc, &what);
        check_programs(&stream, &what, dir.path());
    }
    // PROPERTY_ONLY=TEXT: only the candidates whose values mention TEXT (to replay one).
    let only = std::env::var("PROPERTY_ONLY").ok();
    let selected: Vec<_> = match &only {
        Some(text) => cases(None, 0, seed)
            .into_iter()
            .filter(|c| describe(c).contains(text.as_str()))
            .collect(),
        None => cases(singles, combos, seed),
    };
    for case in selected {
        let what = format!("values {} (seed {seed})", describe(&case));
        match render(&case) {
            Some(stream) => {
                accepted += 1;
                cluster::strict_dry_run(&stream, "difyrender", &kc, &what);
                check_programs(&stream, &what, dir.path());
            }
            None => refused += 1,
        }
    }
    eprintln!("properties: {accepted} renders accepted and checked, {refused} refused");
    // A negative control on the generator: both outcomes occur.
    if only.is_none() {
        assert!(
            accepted >= 5 && refused >= 5,
            "{accepted} accepted, {refused} refused"
        );
    }
}
