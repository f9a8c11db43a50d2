//! Air-gapped and proxied sites (docs/airgap.md), checked on the render and by the real
//! programs that read it: with `airgap: true` no rendered value names a public host; the
//! air-gapped example passes a strict server-side dry run on the real control plane; the ssrf
//! proxy's squid.conf with the site proxy as its parent is accepted by squid, with its
//! credentials written by the rendered init container's own script.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

const MASTER: &str = "airgap-test-master-key-0123456789";

/// Hosts an air-gapped cluster cannot reach, which nothing rendered may name.
const PUBLIC_HOSTS: &[&str] = &[
    "marketplace.dify.ai",
    "updates.dify.ai",
    "creators.dify.ai",
    "pypi.org",
    "pythonhosted.org",
    "github.com",
    "githubusercontent.com",
    "openaipublic",
    "docker.io",
    "ghcr.io",
];

fn render(args: &[&str]) -> String {
    let out = difyrender()
        .arg("render")
        .args(args)
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "render {args:?}: {}",
        transcript(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

/// The public hosts a rendered stream names, anywhere (values, configuration files,
/// commands, annotations).
fn public_hosts_in(stream: &str) -> Vec<&'static str> {
    let lower = stream.to_ascii_lowercase();
    PUBLIC_HOSTS
        .iter()
        .copied()
        .filter(|h| lower.contains(h))
        .collect()
}

#[test]
fn airgap_renders_no_public_host() {
    let nkp = example("nkp.values.yaml");
    let airgap = example("nkp-airgap.values.yaml");
    // Negative control: the default render names the public marketplace (api, web, squid).
    let online = render(&["-f", &nkp]);
    assert!(
        public_hosts_in(&online).contains(&"marketplace.dify.ai"),
        "the scan finds the public marketplace in the default render"
    );
    // The example, and `airgap: true` alone, at every release of the table.
    for release in difyrender::chart::Chart::embedded().versions.releases {
        let tag = format!("images.dify.tag={}", release.version);
        for extra in [
            vec!["-f", &airgap, "--set", &tag],
            vec!["--set", "airgap=true", "--set", &tag],
        ] {
            let stream = render(&[&["-f", &nkp][..], &extra].concat());
            assert_eq!(
                public_hosts_in(&stream),
                Vec::<&str>::new(),
                "{extra:?} names a public host"
            );
        }
    }
    // An override wins over airgap: an internal marketplace is rendered where the public one was.
    let internal = render(&[
        "-f",
        &nkp,
        "--set",
        "airgap=true",
        "--set",
        "plugins.marketplace.enabled=true",
        "--set",
        "plugins.marketplace.url=https://marketplace.example.com",
    ]);
    assert_eq!(public_hosts_in(&internal), Vec::<&str>::new());
    assert!(internal.contains("dstdomain .marketplace.example.com"));
    assert_eq!(
        internal.matches("https://marketplace.example.com").count(),
        7
    );
}

#[test]
fn airgap_with_the_public_marketplace_is_refused() {
    let out = difyrender()
        .args(["render", "-f", &example("nkp.values.yaml")])
        .args([
            "--set",
            "airgap=true",
            "--set",
            "plugins.marketplace.enabled=true",
        ])
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("plugins.marketplace.url"));
}

#[test]
fn airgap_example_passes_strict_server_side_validation() {
    let kc = cluster::start("airgap");
    let ns = "t-airgap";
    cluster::ok(&cluster::kubectl(&["create", "namespace", ns], &kc));
    for tag in ["1.14.1", "1.16.1"] {
        let stream = render(&[
            "-n",
            ns,
            "-f",
            &example("nkp.values.yaml"),
            "-f",
            &example("nkp-airgap.values.yaml"),
            "--set",
            &format!("images.dify.tag={tag}"),
        ]);
        cluster::strict_dry_run(&stream, "kubectl", &kc, tag);
    }
    // The other shapes: the CA from a Secret, the file storage's own init container beside the
    // trust store's (ReadWriteMany), the sandbox's packages, a proxy without credentials, the
    // oldest release.
    let stream = render(&[
        "-n",
        ns,
        "-f",
        &example("nkp.values.yaml"),
        "--set",
        "images.dify.tag=1.10.0",
        "--set",
        "trust.caBundle.secretName=site-ca",
        "--set",
        "storage.accessMode=ReadWriteMany",
        "--set-json",
        "sandbox.pythonPackages=[\"numpy==2.1.3\"]",
        "--set",
        "plugins.pythonMirror.url=http://10.0.0.5:8080/simple",
        "--set-json",
        "plugins.pythonMirror.trustedHosts=[\"10.0.0.5:8080\"]",
        "--set",
        "egress.proxy.httpProxy=http://proxy.example.com:3128",
    ]);
    let docs = difyrender::yaml::from_str_multiple(&stream).unwrap();
    let api = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "dify-api")
        .unwrap();
    let inits: Vec<&str> = api["spec"]["template"]["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(inits, ["trust-store", "init-permissions"]);
    assert!(stream.contains("acl allowed_addresses dst 10.0.0.5"));
    assert!(stream.contains("--allow-insecure-host 10.0.0.5:8080 --native-tls"));
    cluster::strict_dry_run(&stream, "kubectl", &kc, "other shapes");
    let (conf, _) = squid_parts(&stream);
    let dir = tempfile::tempdir().unwrap();
    squid_parse(&conf, dir.path()).unwrap_or_else(|e| panic!("other shapes: {e}"));
}

/// The ssrf proxy's ConfigMap squid.conf, and its init container's command, of a render.
fn squid_parts(stream: &str) -> (String, Option<Vec<String>>) {
    let docs = difyrender::yaml::from_str_multiple(stream).unwrap();
    let conf = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "dify-ssrf-proxy")
        .and_then(|d| d["data"]["squid.conf"].as_str())
        .expect("the ssrf proxy's squid.conf")
        .to_owned();
    let init = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "dify-ssrf-proxy")
        .and_then(|d| {
            d["spec"]["template"]["spec"]["initContainers"]
                .as_array()
                .cloned()
        })
        .map(|inits| {
            assert_eq!(inits.len(), 1);
            inits[0]["command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect()
        });
    (conf, init)
}

fn squid_parse(conf: &str, dir: &Path) -> Result<String, String> {
    let file = dir.join("squid.conf");
    std::fs::write(&file, conf).unwrap();
    let out = Command::new("/usr/sbin/squid")
        .args(["-k", "parse", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = transcript(&out);
    if out.status.success() && !text.contains("FATAL") {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Runs the rendered init container's command with its two volumes at `dir` instead of their
/// mount paths (the script itself unchanged otherwise).
fn run_login_init(
    command: &[String],
    dir: &Path,
    username: &str,
    password: &str,
) -> std::process::Output {
    let secret = dir.join("egress-proxy");
    let out = dir.join("site-proxy");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(secret.join("username"), format!("{username}\n")).unwrap();
    std::fs::write(secret.join("password"), password).unwrap();
    let _ = std::fs::remove_file(out.join("peer.conf"));
    let script = command[2]
        .replace("/etc/difyrender/egress-proxy", secret.to_str().unwrap())
        .replace("/etc/squid/site-proxy", out.to_str().unwrap());
    assert_eq!(&command[..2], ["sh", "-c"]);
    Command::new("sh")
        .args(["-c", &script])
        .args(&command[3..])
        .output()
        .unwrap()
}

#[test]
fn ssrf_proxy_with_a_parent_is_accepted_by_squid() {
    let dir = tempfile::tempdir().unwrap();
    let nkp = example("nkp.values.yaml");
    for tag in ["1.14.1", "1.16.1"] {
        let tag = format!("images.dify.tag={tag}");
        // Without credentials: the cache_peer line is in the ConfigMap itself.
        let (conf, init) = squid_parts(&render(&[
            "-f",
            &nkp,
            "--set",
            &tag,
            "--set",
            "egress.proxy.httpProxy=http://proxy.example.com:8080",
        ]));
        assert!(init.is_none());
        assert!(conf.contains(
            "cache_peer proxy.example.com parent 8080 0 no-query no-digest default name=site_proxy\n"
        ));
        assert!(conf.contains("never_direct allow !to_private"));
        squid_parse(&conf, dir.path()).unwrap_or_else(|e| panic!("{tag}: {e}"));

        // With credentials: an include, written by the init container from the Secret's files.
        let (conf, init) = squid_parts(&render(&[
            "-f",
            &nkp,
            "-f",
            &example("nkp-airgap.values.yaml"),
            "--set",
            &tag,
        ]));
        assert!(!conf.contains("login="), "no credential in the ConfigMap");
        let init = init.expect("the site-proxy-login init container");
        let peer = dir.path().join("site-proxy/peer.conf");
        let conf = conf.replace("/etc/squid/site-proxy/peer.conf", peer.to_str().unwrap());
        // Negative control: without the file the init container writes, squid refuses.
        let _ = std::fs::remove_file(&peer);
        assert!(
            squid_parse(&conf, dir.path()).is_err(),
            "{tag}: the include is read"
        );
        let out = run_login_init(&init, dir.path(), "dify-egress", "s3cr%25t");
        assert!(out.status.success(), "{}", transcript(&out));
        let written = std::fs::read_to_string(&peer).unwrap();
        assert_eq!(
            written,
            "cache_peer proxy.example.com parent 3128 0 no-query no-digest default name=site_proxy login=dify-egress:s3cr%25t\n"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&peer).unwrap().permissions().mode() & 0o077,
            0
        );
        squid_parse(&conf, dir.path()).unwrap_or_else(|e| panic!("{tag}: {e}"));
        // A password that would add a squid directive is refused, and nothing is written.
        for bad in ["two words", "x\nhttp_access allow all", ""] {
            let out = run_login_init(&init, dir.path(), "dify-egress", bad);
            assert!(!out.status.success(), "{bad:?} accepted");
            assert!(!peer.exists(), "{bad:?}: nothing written");
            assert!(!transcript(&out).contains(bad) || bad.is_empty());
        }
    }
}

/// `doctor`'s airgap checks on a control plane of its own (its kube-system pods are the
/// evidence): with only public images there the cluster is not taken for offline; with a
/// kube-system pod from a private registry, a default render is warned about (the public
/// marketplace, no Python mirror, images outside images.registry) and the air-gapped example
/// passes both checks.
#[test]
fn doctor_warns_an_offline_cluster_about_the_internet() {
    let kc = cluster::start("airgap-doctor");
    let doctor = |extra: &[&str]| -> std::collections::BTreeMap<String, serde_json::Value> {
        let out = difyrender()
            .args([
                "doctor",
                "--kubeconfig",
                kc.to_str().unwrap(),
                "-n",
                "t-airgap-doctor",
            ])
            .args(["-f", &example("nkp.values.yaml"), "--output", "json"])
            .args(extra)
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}", transcript(&out)));
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
            .collect()
    };
    let verdict = |c: &std::collections::BTreeMap<String, serde_json::Value>, name: &str| {
        c.get(name)
            .unwrap_or_else(|| panic!("no check {name}: {c:?}"))["verdict"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let system_pod = |name: &str, image: &str| {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: kube-system}}\nspec: {{containers: [{{name: c, image: \"{image}\"}}]}}\n"
        );
        cluster::ok(&cluster::kubectl_stdin(&["apply", "-f", "-"], &pod, &kc));
    };
    // A public image in kube-system: not offline, whatever the render.
    system_pod("proxy", "registry.k8s.io/kube-proxy:v1.34.1");
    let c = doctor(&[]);
    assert_eq!(verdict(&c, "airgap"), "pass", "{:?}", c["airgap"]);
    assert!(!c.contains_key("airgap-images"));
    // Every kube-system image from the site's registry: offline.
    cluster::ok(&cluster::kubectl(
        &[
            "delete",
            "pod",
            "-n",
            "kube-system",
            "proxy",
            "--grace-period=0",
            "--force",
        ],
        &kc,
    ));
    system_pod("dns", "registry.example.com/mirror/coredns/coredns:v1.12.0");
    let c = doctor(&[]);
    assert_eq!(verdict(&c, "airgap"), "warn", "{:?}", c["airgap"]);
    let details = c["airgap"]["details"].to_string();
    assert!(
        details.contains("marketplace.dify.ai") && details.contains("pypi.org"),
        "{details}"
    );
    assert_eq!(verdict(&c, "airgap-images"), "warn");
    let c = doctor(&["-f", &example("nkp-airgap.values.yaml")]);
    assert_eq!(verdict(&c, "airgap"), "pass", "{:?}", c["airgap"]);
    assert_eq!(
        verdict(&c, "airgap-images"),
        "pass",
        "{:?}",
        c["airgap-images"]
    );
}
