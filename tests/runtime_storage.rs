//! The runtime lane with object storage (storage.type=s3): a real MinIO server (built from its
//! Go module, `hack/runtime/minio`) in a lane pod with a cluster DNS name, set up as an operator
//! would (buckets, and a user whose policy allows only those buckets), and the clients of the
//! rendered release with the environment the kubelet would give them:
//!
//! - api and worker: Dify's S3 storage client, re-implemented with Debian's python3-boto3 from
//!   langgenius/dify `api/extensions/storage/aws_s3_storage.py` (AwsS3Storage: the client,
//!   `head_bucket` and its 404/403 handling, `put_object`, `get_object`), selected by
//!   STORAGE_TYPE=s3 as `api/extensions/ext_storage.py` does, its settings read as
//!   `api/configs/middleware/storage/amazon_s3_storage_config.py` types them;
//! - the plugin daemon: `cloudkit-probe` (`hack/runtime/cloudkit-probe`), the daemon's storage
//!   library (dify-cloud-kit, the real module) loaded from the environment as a re-implementation
//!   of the daemon's own loading does (the upstream files and tag are named in its header). The daemon
//!   itself cannot be built here: the module proxy refuses it.
//!
//! The access key pair is random per test, lives only in the credentials Secret the test
//! creates (as the operator does; the chart only names it), and is never printed.

mod common;

use common::kubelet::{self, container, container_env_with, env_get};
use common::lane::{self, Lane, Spawn};
use common::{assert_no_secrets, release_spec};
use difyrender::release::{RenderedRelease, render_release};
use k8s_openapi::api::core::v1::{Container, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::Ipv4Addr;
use std::process::Output;

const MASTER: &str = "runtime-storage-master-key-0123456789abcdef";
const NAMESPACE: &str = "dify";
const DOMAIN: &str = "cluster.local";
const CREDENTIALS: &str = "dify-object-storage";
const BUCKET: &str = "dify-files";
const PLUGIN_BUCKET: &str = "dify-plugins";
const MINIO_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 3, 1);

/// Dify's AwsS3Storage with its settings from the environment. `save KEY FILE` stores FILE's
/// bytes, `load KEY` prints the object. A refused request exits 1 printing `error: <S3 code>`.
const DIFY_S3: &str = r#"
import os, sys
import boto3
from botocore.client import Config
from botocore.exceptions import ClientError

env = os.environ

# ext_storage.py: STORAGE_TYPE "s3" is AwsS3Storage.
if env.get("STORAGE_TYPE") != "s3":
    sys.exit("STORAGE_TYPE is not s3")

# amazon_s3_storage_config.py: pydantic types (a bool from the strings pydantic accepts, a Literal).
def setting_bool(name, default):
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("1", "on", "t", "true", "y", "yes"):
        return True
    if value in ("0", "off", "f", "false", "n", "no"):
        return False
    sys.exit(f"{name}: not a boolean")

address_style = env.get("S3_ADDRESS_STYLE", "auto")
if address_style not in ("auto", "virtual", "path"):
    sys.exit("S3_ADDRESS_STYLE: not auto, virtual or path")

try:
    # aws_s3_storage.py, AwsS3Storage.__init__
    bucket_name = env.get("S3_BUCKET_NAME")
    if setting_bool("S3_USE_AWS_MANAGED_IAM", False):
        session = boto3.Session()
        client = session.client(service_name="s3", region_name=env.get("S3_REGION"))
    else:
        client = boto3.client(
            "s3",
            aws_secret_access_key=env.get("S3_SECRET_KEY"),
            aws_access_key_id=env.get("S3_ACCESS_KEY"),
            endpoint_url=env.get("S3_ENDPOINT"),
            region_name=env.get("S3_REGION"),
            config=Config(s3={"addressing_style": address_style}),
        )
    try:
        client.head_bucket(Bucket=bucket_name)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "404":
            client.create_bucket(Bucket=bucket_name)
        elif e.response.get("Error", {}).get("Code") == "403":
            pass
        else:
            raise

    op, key = sys.argv[1], sys.argv[2]
    if op == "save":
        with open(sys.argv[3], "rb") as f:
            client.put_object(Bucket=bucket_name, Key=key, Body=f.read())
    elif op == "load":
        sys.stdout.buffer.write(client.get_object(Bucket=bucket_name, Key=key)["Body"].read())
    else:
        sys.exit("usage: save KEY FILE | load KEY")
except ClientError as e:
    print("error: " + str(e.response.get("Error", {}).get("Code")), file=sys.stderr)
    sys.exit(1)
"#;

/// The operator's view, with MinIO's administrator: every bucket, and each object's sha256.
const INVENTORY: &str = r#"
import hashlib, json, os
import boto3
from botocore.client import Config

c = boto3.client(
    "s3",
    endpoint_url=os.environ["ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id=os.environ["ROOT_USER"],
    aws_secret_access_key=os.environ["ROOT_PASSWORD"],
    config=Config(s3={"addressing_style": "path"}),
)
out = {}
for b in c.list_buckets()["Buckets"]:
    objects = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=b["Name"]):
        for o in page.get("Contents", []):
            body = c.get_object(Bucket=b["Name"], Key=o["Key"])["Body"].read()
            objects[o["Key"]] = hashlib.sha256(body).hexdigest()
    out[b["Name"]] = objects
print(json.dumps(out))
"#;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    hex::encode(buf)
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `http://minio.<namespace>.svc.<domain>:9000`: MinIO's in-cluster URL.
fn endpoint() -> String {
    format!("http://minio.{NAMESPACE}.svc.{DOMAIN}:9000")
}

/// The release with S3 object storage in `bucket` and `plugin_bucket` of the lane's MinIO.
fn render(bucket: &str, plugin_bucket: &str) -> RenderedRelease {
    let values = [
        "expose.ingressClassName=kommander-traefik".to_owned(),
        "external.scheme=https".to_owned(),
        "external.host=203.0.113.10".to_owned(),
        "expose.path=/".to_owned(),
        "storage.storageClassName=nutanix-volume".to_owned(),
        "storage.type=s3".to_owned(),
        format!("storage.s3.endpoint={}", endpoint()),
        "storage.s3.pathStyle=true".to_owned(),
        format!("storage.s3.bucket={bucket}"),
        format!("storage.s3.pluginBucket={plugin_bucket}"),
        format!("storage.s3.credentialsSecret={CREDENTIALS}"),
    ];
    let r = render_release(&release_spec(values.to_vec(), MASTER)).expect("renders");
    assert_eq!(r.release.namespace, NAMESPACE);
    r
}

/// The MinIO version `hack/runtime/minio/go.mod` requires.
fn minio_version() -> String {
    let go_mod = std::fs::read_to_string(common::root().join("hack/runtime/minio/go.mod")).unwrap();
    go_mod
        .lines()
        .find_map(|l| l.strip_prefix("require github.com/minio/minio "))
        .expect("hack/runtime/minio/go.mod requires github.com/minio/minio")
        .trim()
        .to_owned()
}

/// Random credentials of one test: MinIO's administrator, and the key pair of the user the
/// operator creates for Dify.
struct Keys {
    root_user: String,
    root_password: String,
    access_key: String,
    secret_key: String,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            root_user: format!("admin{}", random_hex(6)),
            root_password: random_hex(20),
            access_key: format!("dify{}", random_hex(8)),
            secret_key: random_hex(20),
        }
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.root_password.clone(), self.secret_key.clone()]
    }
}

/// The credentials Secret as the operator creates it, under the keys the release reads.
fn credentials(r: &RenderedRelease, access_key: &str, secret_key: &str) -> Secret {
    let s3 = &r.values["storage"]["s3"];
    let key = |name: &str| s3[name].as_str().unwrap().to_owned();
    Secret {
        metadata: ObjectMeta {
            name: Some(CREDENTIALS.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            (key("accessKeyIdKey"), access_key.to_owned()),
            (key("secretAccessKeyKey"), secret_key.to_owned()),
        ])),
        ..Default::default()
    }
}

/// A workload's pod spec and container `name` of the rendered release.
fn workload(r: &RenderedRelease, deployment: &str, name: &str) -> (PodSpec, Container) {
    let spec = kubelet::pod(&r.manifest, "Deployment", deployment);
    let c = container(&spec, name).clone();
    (spec, c)
}

/// `UID:GID` of a container, from its and its pod's securityContext; none: the image's user
/// (root, for the images whose pods set none).
fn run_as(pod: &PodSpec, c: &Container) -> Option<String> {
    let p = pod.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let uid = sc.run_as_user.or(p.run_as_user)?;
    let gid = sc.run_as_group.or(p.run_as_group).unwrap_or(uid);
    Some(format!("{uid}:{gid}"))
}

/// A lane with MinIO at `minio.<namespace>.svc.<domain>`, set up by the operator, and pods for
/// the release's S3 clients.
struct S3Lane {
    lane: Lane,
    keys: Keys,
    /// Everything printed by the lane's commands, checked for secrets at the end.
    printed: String,
}

impl S3Lane {
    fn start(test: &str) -> S3Lane {
        S3Lane::start_with(test, false)
    }

    /// With `tls`: MinIO serves HTTPS with a certificate for its name signed by a throwaway CA
    /// (`<lane>/site-ca.crt`), which the operator's tools trust explicitly.
    fn start_with(test: &str, tls: bool) -> S3Lane {
        let keys = Keys::new();
        let mut lane = Lane::new(test, NAMESPACE, DOMAIN);
        let host = format!("minio.{NAMESPACE}.svc.{DOMAIN}");
        lane.start_dns(&[(host.clone(), MINIO_ADDR)]);
        lane.pod("minio", MINIO_ADDR);
        for (i, pod) in ["operator", "api", "worker", "plugin-daemon"]
            .iter()
            .enumerate()
        {
            lane.pod(pod, Ipv4Addr::new(127, 0, 2, i as u8 + 1));
        }
        let data = lane.dir.join("minio-data");
        let certs = lane.dir.join("minio-certs");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&certs).unwrap();
        let ca = lane.dir.join("site-ca.crt");
        if tls {
            let out = std::process::Command::new("bash")
                .args(["-ec", &format!(
                    "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=lane-site-ca -keyout ca.key -out {ca} 2>/dev/null
                     openssl req -newkey rsa:2048 -nodes -subj /CN={host} -keyout {certs}/private.key -out server.csr 2>/dev/null
                     printf 'subjectAltName=DNS:{host}\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext
                     openssl x509 -req -in server.csr -CA {ca} -CAkey ca.key -CAcreateserial -days 1 -extfile ext -out {certs}/public.crt 2>/dev/null",
                    ca = ca.display(), certs = certs.display()
                )])
                .current_dir(&lane.dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        let scheme = if tls { "https" } else { "http" };
        let minio = lane::built("github.com/minio/minio", &minio_version());
        let server = lane.spawn(
            "minio",
            Spawn {
                name: "minio",
                argv: vec![
                    minio.display().to_string(),
                    "server".into(),
                    "--address".into(),
                    ":9000".into(),
                    "--console-address".into(),
                    "127.0.0.1:9001".into(),
                    "--certs-dir".into(),
                    certs.display().to_string(),
                    data.display().to_string(),
                ],
                env: vec![
                    ("MINIO_ROOT_USER".into(), keys.root_user.clone()),
                    ("MINIO_ROOT_PASSWORD".into(), keys.root_password.clone()),
                    ("MINIO_BROWSER".into(), "off".into()),
                ],
                user: None,
                cwd: None,
            },
        );
        let ready = format!("{scheme}://{host}:9000/minio/health/ready");
        let cacert = ca.display().to_string();
        lane.wait_ready(server, "MinIO", |lane| {
            lane.exec(
                "operator",
                Spawn {
                    name: "curl",
                    argv: argv(&[
                        "curl",
                        "-fsS",
                        "-o",
                        "/dev/null",
                        "--max-time",
                        "5",
                        "--cacert",
                        &cacert,
                        &ready,
                    ]),
                    env: Vec::new(),
                    user: None,
                    cwd: None,
                },
            )
            .status
            .success()
        });
        let mut s = S3Lane {
            lane,
            keys,
            printed: String::new(),
        };
        // The operator: buckets, a user, its policy.
        let admin = lane::program("minio-admin");
        let out = s.exec(
            "operator",
            vec![
                admin.display().to_string(),
                BUCKET.into(),
                PLUGIN_BUCKET.into(),
            ],
            vec![
                ("MINIO_ENDPOINT".into(), format!("{host}:9000")),
                ("MINIO_ROOT_USER".into(), s.keys.root_user.clone()),
                ("MINIO_ROOT_PASSWORD".into(), s.keys.root_password.clone()),
                ("USER_ACCESS_KEY".into(), s.keys.access_key.clone()),
                ("USER_SECRET_KEY".into(), s.keys.secret_key.clone()),
                ("MINIO_SECURE".into(), if tls { "1" } else { "0" }.into()),
                ("SSL_CERT_FILE".into(), cacert.clone()),
            ],
            None,
        );
        assert!(out.status.success(), "minio-admin: {}", text(&out.stderr));
        s
    }

    fn exec(
        &mut self,
        pod: &str,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        user: Option<&str>,
    ) -> Output {
        let out = self.lane.exec(
            pod,
            Spawn {
                name: pod,
                argv,
                env,
                user,
                cwd: None,
            },
        );
        self.printed.push_str(&text(&out.stdout));
        self.printed.push_str(&text(&out.stderr));
        out
    }

    /// A file in the lane that every container user can read.
    fn file(&self, name: &str, data: &[u8]) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.lane.dir.join(name);
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path.display().to_string()
    }

    /// Dify's S3 storage in container `name` of Deployment `deployment`, with the environment
    /// the kubelet gives it in a namespace holding `credentials`.
    fn dify(
        &mut self,
        r: &RenderedRelease,
        (deployment, name): (&str, &str),
        credentials: &Secret,
        args: &[&str],
    ) -> Output {
        let (spec, c) = workload(r, deployment, name);
        let env = container_env_with(&r.manifest, &c, std::slice::from_ref(credentials));
        let user = run_as(&spec, &c);
        let mut line = argv(&["python3", "-c", DIFY_S3]);
        line.extend(argv(args));
        self.exec(name, line, env, user.as_deref())
    }

    /// `cloudkit-probe NAME FILE` with the plugin daemon's environment.
    fn daemon(
        &mut self,
        r: &RenderedRelease,
        credentials: &Secret,
        package: &str,
        file: &str,
    ) -> Output {
        let (spec, c) = workload(r, "dify-plugin-daemon", "plugin-daemon");
        let env = container_env_with(&r.manifest, &c, std::slice::from_ref(credentials));
        let user = run_as(&spec, &c);
        let probe = lane::program("cloudkit-probe");
        self.exec(
            "plugin-daemon",
            vec![probe.display().to_string(), package.into(), file.into()],
            env,
            user.as_deref(),
        )
    }

    /// Every bucket and its objects' sha256, as MinIO's administrator sees them.
    fn inventory(&mut self) -> BTreeMap<String, BTreeMap<String, String>> {
        let env = vec![
            ("ENDPOINT".into(), endpoint()),
            ("ROOT_USER".into(), self.keys.root_user.clone()),
            ("ROOT_PASSWORD".into(), self.keys.root_password.clone()),
        ];
        let out = self.exec("operator", argv(&["python3", "-c", INVENTORY]), env, None);
        assert!(out.status.success(), "inventory: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Fails if a secret of this test, or one of `more`, was printed by any command or program.
    fn assert_no_secrets(&self, more: &[String]) {
        let mut secrets = self.keys.secrets();
        secrets.extend(more.iter().cloned());
        let mut all = self.printed.clone();
        for entry in std::fs::read_dir(&self.lane.dir).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "log") {
                all.push_str(&common::read(&entry.path()));
            }
        }
        assert_no_secrets(&all, &secrets, "the S3 lane");
    }
}

/// A plugin package's identifier as the daemon names them (`author/name:version@sha256`).
fn package_name(data: &[u8]) -> String {
    format!("langgenius/lane-probe:0.0.1@{}", sha256(data))
}

#[test]
fn dify_and_the_plugin_daemon_store_files_in_s3_with_the_rendered_env() {
    let r = render(BUCKET, PLUGIN_BUCKET);
    let mut s = S3Lane::start("s3-round-trip");
    let right = credentials(&r, &s.keys.access_key, &s.keys.secret_key);

    // The rendered env is the contract's, and the key pair comes from the operator's Secret.
    let (_, api) = workload(&r, "dify-api", "api");
    let api_env = container_env_with(&r.manifest, &api, std::slice::from_ref(&right));
    assert_eq!(env_get(&api_env, "STORAGE_TYPE"), "s3");
    assert_eq!(env_get(&api_env, "S3_ADDRESS_STYLE"), "path");
    assert_eq!(env_get(&api_env, "S3_ENDPOINT"), endpoint());
    assert_eq!(env_get(&api_env, "S3_ACCESS_KEY"), s.keys.access_key);

    // api saves an upload, the worker reads it back.
    let upload = format!("lane upload {}\n", random_hex(4096)).into_bytes();
    let file = s.file("upload.txt", &upload);
    let key = format!("upload_files/{}/{}.txt", random_hex(16), random_hex(16));
    let out = s.dify(&r, ("dify-api", "api"), &right, &["save", &key, &file]);
    assert!(out.status.success(), "api save: {}", text(&out.stderr));
    let out = s.dify(&r, ("dify-worker", "worker"), &right, &["load", &key]);
    assert!(out.status.success(), "worker load: {}", text(&out.stderr));
    assert!(out.stdout == upload, "the worker reads what the api saved");

    // The plugin daemon stores a package under PLUGIN_PACKAGE_CACHE_PATH in its bucket.
    let package = random_hex(8192).into_bytes();
    let name = package_name(&package);
    let file = s.file("package.difypkg", &package);
    let out = s.daemon(&r, &right, &name, &file);
    assert!(
        out.status.success(),
        "cloudkit-probe: {}",
        text(&out.stderr)
    );
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let package_key = format!("plugin_packages/{name}");
    assert_eq!(probe["key"], package_key.as_str());
    assert_eq!(probe["sha256"], sha256(&package).as_str());

    // The operator sees each object in its bucket, and only there.
    let inventory = s.inventory();
    assert_eq!(
        inventory.keys().collect::<Vec<_>>(),
        [BUCKET, PLUGIN_BUCKET],
        "no bucket was created besides the operator's"
    );
    assert_eq!(
        inventory[BUCKET],
        BTreeMap::from([(key.clone(), sha256(&upload))]),
        "Dify's file is in {BUCKET}"
    );
    assert_eq!(
        inventory[PLUGIN_BUCKET],
        BTreeMap::from([(package_key, sha256(&package))]),
        "the package is in {PLUGIN_BUCKET}"
    );
    s.assert_no_secrets(&[]);
}

#[test]
fn a_wrong_secret_key_or_bucket_is_refused() {
    let r = render(BUCKET, PLUGIN_BUCKET);
    let mut s = S3Lane::start("s3-refused");
    let wrong_secret = random_hex(20);
    let wrong = credentials(&r, &s.keys.access_key, &wrong_secret);
    let right = credentials(&r, &s.keys.access_key, &s.keys.secret_key);
    let data = format!("lane upload {}\n", random_hex(64)).into_bytes();
    let file = s.file("upload.txt", &data);
    let name = package_name(&data);

    // The right pair works (the control), another secret key is refused by both clients.
    let out = s.dify(&r, ("dify-api", "api"), &right, &["save", "ok.txt", &file]);
    assert!(out.status.success(), "api save: {}", text(&out.stderr));
    let out = s.dify(&r, ("dify-api", "api"), &wrong, &["save", "x.txt", &file]);
    assert!(!out.status.success(), "api: another secret key is refused");
    assert!(
        text(&out.stderr).contains("error: SignatureDoesNotMatch"),
        "api: refused for its signature: {}",
        text(&out.stderr)
    );
    let out = s.daemon(&r, &wrong, &name, &file);
    assert!(
        !out.status.success(),
        "daemon: another secret key is refused"
    );
    assert!(
        text(&out.stderr).contains("SignatureDoesNotMatch"),
        "daemon: refused for its signature: {}",
        text(&out.stderr)
    );

    // Buckets the operator did not grant: refused, and not created by the clients' head_bucket
    // fallbacks (both create a bucket that does not exist, when they may).
    let other = render("dify-files-other", "dify-plugins-other");
    let right_other = credentials(&other, &s.keys.access_key, &s.keys.secret_key);
    let out = s.dify(
        &other,
        ("dify-api", "api"),
        &right_other,
        &["save", "x.txt", &file],
    );
    assert!(!out.status.success(), "api: another bucket is refused");
    assert!(
        text(&out.stderr).contains("error: AccessDenied"),
        "api: refused by the policy: {}",
        text(&out.stderr)
    );
    let out = s.daemon(&other, &right_other, &name, &file);
    assert!(!out.status.success(), "daemon: another bucket is refused");
    assert!(
        text(&out.stderr).contains("AccessDenied"),
        "daemon: refused by the policy: {}",
        text(&out.stderr)
    );

    let inventory = s.inventory();
    assert_eq!(
        inventory.keys().collect::<Vec<_>>(),
        [BUCKET, PLUGIN_BUCKET],
        "no other bucket was created"
    );
    assert_eq!(
        inventory[BUCKET].keys().collect::<Vec<_>>(),
        ["ok.txt"],
        "only the control was stored"
    );
    assert!(inventory[PLUGIN_BUCKET].is_empty(), "no package was stored");
    s.assert_no_secrets(&[wrong_secret]);
}

/// MinIO over TLS with a certificate of the site's CA (trust.caBundle): Dify's S3 client (api)
/// and the plugin daemon's storage library are refused while the pods see only the system store
/// (this machine's Debian store stands in for the images'), and succeed once the rendered
/// trust-store init container's output is mounted over /etc/ssl/certs, as the kubelet mounts
/// its emptyDir in every trusting container (AWS_CA_BUNDLE and SSL_CERT_FILE name that file).
#[test]
fn tls_object_storage_is_trusted_through_the_site_ca_bundle() {
    let https = format!("https://minio.{NAMESPACE}.svc.{DOMAIN}:9000");
    let values = [
        "expose.ingressClassName=kommander-traefik".to_owned(),
        "external.scheme=https".to_owned(),
        "external.host=203.0.113.10".to_owned(),
        "expose.path=/".to_owned(),
        "storage.storageClassName=nutanix-volume".to_owned(),
        "storage.type=s3".to_owned(),
        format!("storage.s3.endpoint={https}"),
        "storage.s3.pathStyle=true".to_owned(),
        format!("storage.s3.bucket={BUCKET}"),
        format!("storage.s3.pluginBucket={PLUGIN_BUCKET}"),
        format!("storage.s3.credentialsSecret={CREDENTIALS}"),
        "trust.caBundle.configMapName=site-ca".to_owned(),
    ];
    let r = render_release(&release_spec(values.to_vec(), MASTER)).expect("renders");
    let mut s = S3Lane::start_with("s3-tls", true);
    let right = credentials(&r, &s.keys.access_key, &s.keys.secret_key);
    let upload = format!("lane upload {}\n", random_hex(256)).into_bytes();
    let file = s.file("upload.txt", &upload);
    let key = format!("upload_files/{}.txt", random_hex(16));
    let package = random_hex(1024).into_bytes();
    let name = package_name(&package);
    let package_file = s.file("package.difypkg", &package);

    // The images' own store: both refused on the certificate.
    let out = s.dify(&r, ("dify-api", "api"), &right, &["save", &key, &file]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("CERTIFICATE_VERIFY_FAILED"),
        "{}",
        text(&out.stderr)
    );
    let out = s.daemon(&r, &right, &name, &package_file);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("certificate signed by unknown authority"),
        "{}",
        text(&out.stderr)
    );

    // The rendered init container builds the store from the system store and the site's PEM.
    let api_pod = kubelet::pod(&r.manifest, "Deployment", "dify-api");
    let init = &api_pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(init.name, "trust-store");
    let script = init.command.as_ref().unwrap()[2].clone();
    let site = s.lane.dir.join("trust-site");
    let store = s.lane.dir.join("trust-store");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(s.lane.dir.join("site-ca.crt"), site.join("ca.crt")).unwrap();
    let script = script
        .replace("/etc/difyrender/trust-site", site.to_str().unwrap())
        .replace("/etc/difyrender/trust-store", store.to_str().unwrap());
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    s.lane.mount(&store, "/etc/ssl/certs");

    let out = s.dify(&r, ("dify-api", "api"), &right, &["save", &key, &file]);
    assert!(out.status.success(), "api save: {}", text(&out.stderr));
    let out = s.dify(&r, ("dify-worker", "worker"), &right, &["load", &key]);
    assert!(out.status.success(), "worker load: {}", text(&out.stderr));
    assert!(out.stdout == upload);
    let out = s.daemon(&r, &right, &name, &package_file);
    assert!(
        out.status.success(),
        "cloudkit-probe: {}",
        text(&out.stderr)
    );
    s.assert_no_secrets(&[]);
}
