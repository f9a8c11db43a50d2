//! A rendered release running in a runtime lane ([`Stack`]): each workload's real program
//! started as its container would be (command line, environment, volumes, user), with the
//! helpers the runtime tests share (tests/runtime.rs, tests/runtime_datastores.rs).

use super::kubelet::{self, command_line, container, container_env, env_get, find, pod_template};
use super::lane::{self, Lane, PATH, Spawn};
use difyrender::release::RenderedRelease;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `user` is a name, or `UID:GID[:GROUPS]` as [`run_as`] gives it.
pub fn chown(path: &Path, user: &str) {
    let (uid, gid) = lane::user_ids(user);
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The identity a pod's securityContext gives a container, as `UID:GID:FSGROUP` (see
/// [`Spawn::user`]): the container's runAsUser/runAsGroup over the pod's, fsGroup as a
/// supplementary group.
pub fn run_as(pod: &PodSpec, c: &Container) -> String {
    let p = pod.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let uid = sc.run_as_user.or(p.run_as_user).expect("a runAsUser");
    let gid = sc.run_as_group.or(p.run_as_group).unwrap_or(uid);
    let mut user = format!("{uid}:{gid}");
    if let Some(fs) = p.fs_group {
        user.push_str(&format!(":{fs}"));
    }
    user
}

/// `env` with PATH set as the image sets it (`prefix` before the Debian defaults).
pub fn with_path(mut env: Vec<(String, String)>, prefix: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != "PATH");
    env.push(("PATH".into(), format!("{prefix}{PATH}")));
    env
}

pub fn spawn(name: &str, argv: Vec<String>, env: Vec<(String, String)>) -> Spawn<'_> {
    Spawn {
        name,
        argv,
        env,
        user: None,
        cwd: None,
    }
}

pub fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A rendered release running in a lane: every Service has an address (127.0.1.x, in name
/// order) and a cluster DNS record `<name>.<namespace>.svc.<clusterDomain>`; a workload's pod
/// takes the address of the Service selecting it; other pods (clients, Jobs) get 127.0.2.x.
pub struct Stack {
    pub r: RenderedRelease,
    pub lane: Lane,
    services: Vec<(String, BTreeMap<String, String>, Ipv4Addr)>,
    clients: u8,
    /// The `host` method of pg_hba.conf, as the image's entrypoint chose it from the rendered
    /// environment and arguments, once PostgreSQL is started.
    pub postgres_auth: Option<String>,
}

impl Stack {
    pub fn new(test: &str, r: RenderedRelease) -> Stack {
        Stack::with_hosts(test, r, &[])
    }

    /// Like [`Stack::new`], with test pods `hosts` (at 127.0.3.x) that have a DNS record like
    /// a Service's; [`Stack::host`] starts each.
    pub fn with_hosts(test: &str, r: RenderedRelease, hosts: &[&str]) -> Stack {
        Stack::with_names(test, r, hosts, &[])
    }

    /// Like [`Stack::with_hosts`], with `aliases`: (name, Service) pairs, each a DNS record
    /// `<name>.<namespace>.svc.<clusterDomain>` for the Service's address, as an external
    /// server's name would reach a server of the lane.
    pub fn with_names(
        test: &str,
        r: RenderedRelease,
        hosts: &[&str],
        aliases: &[(&str, &str)],
    ) -> Stack {
        let namespace = r.release.namespace.clone();
        let domain = r
            .values
            .get("clusterDomain")
            .and_then(|v| v.as_str())
            .unwrap_or("cluster.local")
            .to_owned();
        let mut services = Vec::new();
        for (i, (name, selector, svc)) in kubelet::services(&r.manifest).into_iter().enumerate() {
            // The lane has no kube-proxy: a Service's address is its pod's, so each port must
            // be the pod's port. True of every Service of the chart; checked, not assumed.
            for p in svc.spec.unwrap().ports.unwrap_or_default() {
                let target = p.target_port.clone().unwrap();
                let pod = r
                    .manifest
                    .resources
                    .iter()
                    .filter(|w| matches!(w.kind.as_str(), "Deployment" | "StatefulSet"))
                    .map(pod_template)
                    .find(|(labels, _)| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
                    .unwrap_or_else(|| panic!("Service {name} selects a pod"))
                    .1;
                let number = pod
                    .containers
                    .iter()
                    .find_map(|c| {
                        c.ports.iter().flatten().find(|cp| match &target {
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => {
                                cp.container_port == *n
                            }
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                                s,
                            ) => cp.name.as_deref() == Some(s),
                        })
                    })
                    .unwrap_or_else(|| panic!("Service {name}: port {target:?} is a pod port"))
                    .container_port;
                assert_eq!(p.port, number, "Service {name}: port and target port");
            }
            services.push((name, selector, Ipv4Addr::new(127, 0, 1, i as u8 + 1)));
        }
        for (i, host) in hosts.iter().enumerate() {
            services.push((
                host.to_string(),
                BTreeMap::new(),
                Ipv4Addr::new(127, 0, 3, i as u8 + 1),
            ));
        }
        let mut lane = Lane::new(test, &namespace, &domain);
        let mut records: Vec<(String, Ipv4Addr)> = services
            .iter()
            .map(|(n, _, a)| (format!("{n}.{namespace}.svc.{domain}"), *a))
            .collect();
        for (alias, service) in aliases {
            let addr = services
                .iter()
                .find(|(n, _, _)| n == service)
                .unwrap_or_else(|| panic!("{service} is a Service"))
                .2;
            records.push((format!("{alias}.{namespace}.svc.{domain}"), addr));
        }
        lane.start_dns(&records);
        Stack {
            r,
            lane,
            services,
            clients: 0,
            postgres_auth: None,
        }
    }

    pub fn fqdn(&self, service: &str) -> String {
        let domain = self
            .r
            .values
            .get("clusterDomain")
            .and_then(|v| v.as_str())
            .unwrap_or("cluster.local");
        format!("{service}.{}.svc.{domain}", self.r.release.namespace)
    }

    /// A pod without a Service (a client, a Job's pod), at the next 127.0.2.x.
    pub fn client(&mut self, name: &str) -> String {
        self.clients += 1;
        self.lane.pod(name, Ipv4Addr::new(127, 0, 2, self.clients));
        name.to_owned()
    }

    /// The pod of test host `name` (see [`Stack::with_hosts`]).
    pub fn host(&mut self, name: &str) -> String {
        let addr = self
            .services
            .iter()
            .find(|(n, sel, _)| n == name && sel.is_empty())
            .unwrap_or_else(|| panic!("{name} is a test host"))
            .2;
        self.lane.pod(name, addr);
        name.to_owned()
    }

    /// The pod of workload `kind/name`, created at the address of the Service selecting it.
    pub fn workload_pod(&mut self, kind: &str, name: &str) -> (String, PodSpec) {
        let (labels, spec) = pod_template(find(&self.r.manifest, kind, name));
        let addr = self
            .services
            .iter()
            .find(|(_, sel, _)| {
                !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|s| s.2)
            .unwrap_or_else(|| panic!("a Service selects {kind}/{name}"));
        self.lane.pod(name, addr);
        (name.to_owned(), spec)
    }

    /// The environment of container `c` of workload `kind/name`, as the kubelet builds it.
    pub fn env_of(&self, kind: &str, name: &str, c: &str) -> Vec<(String, String)> {
        let (_, spec) = pod_template(find(&self.r.manifest, kind, name));
        container_env(&self.r.manifest, container(&spec, c))
    }

    /// The container's volumes, mounted at their paths inside the lane: a ConfigMap's keys as
    /// files (one file for a subPath), a fresh directory for anything else (emptyDir, a claim),
    /// given to the pod's fsGroup as the kubelet does, or else owned by `owner`.
    pub fn mount_volumes(&self, pod: &PodSpec, c: &Container, owner: Option<&str>) {
        for vm in c.volume_mounts.iter().flatten() {
            let volume = pod.volumes.iter().flatten().find(|v| v.name == vm.name);
            let base = self.lane.dir.join("volumes").join(&c.name).join(&vm.name);
            std::fs::create_dir_all(&base).unwrap();
            if let Some(secret) = volume.and_then(|v| v.secret.as_ref()) {
                self.mount_secret(secret, &base, &vm.mount_path, vm.sub_path.as_deref());
                continue;
            }
            match volume.and_then(|v| v.config_map.as_ref()) {
                Some(cm) => {
                    let cm_res = find(&self.r.manifest, "ConfigMap", &cm.name);
                    let data: BTreeMap<String, String> =
                        serde_json::from_value(cm_res.body["data"].clone()).unwrap();
                    for (key, value) in &data {
                        std::fs::write(base.join(key), value).unwrap();
                    }
                    match &vm.sub_path {
                        Some(sub) => self.lane.mount(&base.join(sub), &vm.mount_path),
                        None => self.lane.mount(&base, &vm.mount_path),
                    }
                }
                None => {
                    match pod.security_context.as_ref().and_then(|sc| sc.fs_group) {
                        // What the kubelet does for fsGroup: the group owns the volume,
                        // group-writable, setgid.
                        Some(group) => {
                            std::os::unix::fs::chown(&base, Some(0), Some(group as u32)).unwrap();
                            std::fs::set_permissions(
                                &base,
                                std::fs::Permissions::from_mode(0o2775),
                            )
                            .unwrap();
                        }
                        None => {
                            if let Some(user) = owner {
                                chown(&base, user);
                            }
                        }
                    }
                    self.lane.mount(&base, &vm.mount_path);
                }
            }
        }
    }

    /// A Secret volume as the kubelet writes it: the listed `items` (every key without), each
    /// file with `defaultMode` (0644 unless given), from a rendered Secret or one a test added
    /// ([`kubelet::add_secret`]).
    fn mount_secret(
        &self,
        secret: &k8s_openapi::api::core::v1::SecretVolumeSource,
        base: &Path,
        mount_path: &str,
        sub_path: Option<&str>,
    ) {
        let name = secret.secret_name.as_deref().expect("a secretName");
        let data = kubelet::secret_data(&self.r.manifest, name);
        let files: Vec<(String, String)> = match &secret.items {
            Some(items) => items
                .iter()
                .map(|i| (i.key.clone(), i.path.clone()))
                .collect(),
            None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
        };
        let mode = secret.default_mode.unwrap_or(0o644) as u32;
        for (key, path) in files {
            let bytes = data
                .get(&key)
                .unwrap_or_else(|| panic!("Secret {name} has key {key}"));
            let file = base.join(&path);
            std::fs::write(&file, bytes).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        match sub_path {
            Some(sub) => self.lane.mount(&base.join(sub), mount_path),
            None => self.lane.mount(base, mount_path),
        }
    }

    /// Waits until the container's rendered readiness probe passes (exec probes run in the
    /// pod with the container's environment, as the kubelet runs them).
    pub fn wait_probe(
        &mut self,
        pod: &str,
        index: usize,
        c: &Container,
        env: &[(String, String)],
        user: Option<&str>,
    ) {
        let (probe, port) = kubelet::readiness(c);
        let addr = self.lane.addr(pod);
        let what = format!("{} readiness ({pod})", c.name);
        self.lane.wait_ready(index, &what, |lane| {
            let check = if let Some(exec) = &probe.exec {
                Spawn {
                    name: "probe",
                    argv: exec.command.clone().unwrap_or_default(),
                    env: env.to_vec(),
                    user,
                    cwd: None,
                }
            } else if let Some(http) = &probe.http_get {
                let url = format!(
                    "http://{addr}:{}{}",
                    port.unwrap(),
                    http.path.as_deref().unwrap_or("/")
                );
                spawn(
                    "probe",
                    argv(&["curl", "-fsS", "-o", "/dev/null", "--max-time", "5", &url]),
                    Vec::new(),
                )
            } else {
                tcp_check(addr, port.unwrap())
            };
            lane.exec(pod, check).status.success()
        });
    }

    /// Starts a recorder (hack/runtime/recorder.py) in `pod` on `port`; returns its log.
    pub fn recorder(&mut self, pod: &str, port: u16) -> PathBuf {
        let log = self.lane.dir.join(format!("recorded-{pod}-{port}.jsonl"));
        let script = super::root().join("hack/runtime/recorder.py");
        let name = format!("recorder-{pod}-{port}");
        let index = self.lane.spawn(
            pod,
            spawn(
                &name,
                vec![
                    "/usr/bin/python3".into(),
                    script.display().to_string(),
                    port.to_string(),
                    log.display().to_string(),
                ],
                Vec::new(),
            ),
        );
        let addr = self.lane.addr(pod);
        self.lane
            .wait_ready(index, &format!("recorder {pod}:{port}"), |lane| {
                lane.exec(pod, tcp_check(addr, port.into()))
                    .status
                    .success()
            });
        log
    }

    /// `curl ARGS` in `pod`: the HTTP status (a proxy's answer to CONNECT when no response
    /// came through the tunnel) and the body.
    pub fn curl(&self, pod: &str, args: &[&str]) -> (u16, String) {
        let mut line = argv(&[
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code} %{http_connect}",
        ]);
        line.extend(args.iter().map(|s| s.to_string()));
        let out = self.lane.exec(pod, spawn("curl", line, Vec::new()));
        let stdout = text(&out.stdout);
        let (body, codes) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        let codes: Vec<u16> = codes
            .split_whitespace()
            .map(|c| c.parse().unwrap_or(0))
            .collect();
        let code = codes.iter().copied().find(|&c| c != 0).unwrap_or(0);
        (code, body.to_owned())
    }

    /// PostgreSQL from Debian, with the rendered container's arguments, environment and
    /// volumes, initialised as the image's entrypoint does on an empty volume.
    pub fn start_postgres(&mut self) {
        let (pod, spec) = self.workload_pod("StatefulSet", "dify-postgresql");
        let c = container(&spec, "postgresql").clone();
        // The image's PATH has the server's directory.
        let env = with_path(
            container_env(&self.r.manifest, &c),
            "/usr/lib/postgresql/15/bin:",
        );
        // Debian's postgres user stands in for the image's (uid 70, which Debian lacks and
        // initdb must look up), with the pod's groups.
        let (uid, gid) = lane::user_ids("postgres");
        let pod_user = run_as(&spec, &c);
        let groups = pod_user.splitn(3, ':').nth(2);
        let user = match groups {
            Some(g) => format!("{uid}:{gid}:{g}"),
            None => format!("{uid}:{gid}"),
        };
        self.mount_volumes(&spec, &c, Some(&user));
        // What the image's docker-entrypoint.sh does on an empty PGDATA (docker-library/postgres,
        // 15/alpine3.20/docker-entrypoint.sh: docker_init_database_dir, pg_setup_hba_conf), from
        // the rendered environment and arguments, so that the authentication checked here is the
        // one the rendered pod gets, not one this test chose:
        // - `initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD")
        //   $POSTGRES_INITDB_ARGS`;
        // - `host all all all $POSTGRES_HOST_AUTH_METHOD` appended to pg_hba.conf, where an
        //   unset or empty method is `postgres -C password_encryption <the rendered args>`
        //   (scram-sha-256 on 15 unless the args change it);
        // - `listen_addresses = '*'`, which the image bakes into postgresql.conf.sample;
        // - then CREATE DATABASE "$POSTGRES_DB" (below, once the server runs).
        let pwfile = self.lane.dir.join("postgres-password");
        std::fs::write(&pwfile, format!("{}\n", env_get(&env, "POSTGRES_PASSWORD"))).unwrap();
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600)).unwrap();
        chown(&pwfile, &user);
        let as_postgres = |name, argv| Spawn {
            name,
            argv,
            env: env.clone(),
            user: Some(&user),
            cwd: None,
        };
        let initdb_args = env
            .iter()
            .find(|(k, _)| k == "POSTGRES_INITDB_ARGS")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert!(
            !initdb_args.contains(['"', '\'', '\\', '$']),
            "POSTGRES_INITDB_ARGS needs the shell's word splitting, which this lane does not do: {initdb_args}"
        );
        let mut initdb = vec![
            "initdb".to_owned(),
            format!("--username={}", env_get(&env, "POSTGRES_USER")),
            format!("--pwfile={}", pwfile.display()),
        ];
        initdb.extend(initdb_args.split_whitespace().map(str::to_owned));
        let init = self.lane.exec(&pod, as_postgres("initdb", initdb));
        assert!(init.status.success(), "initdb: {}", text(&init.stderr));
        let method = match env
            .iter()
            .find(|(k, _)| k == "POSTGRES_HOST_AUTH_METHOD")
            .map(|(_, v)| v.as_str())
        {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => {
                let asked = self.lane.exec(
                    &pod,
                    as_postgres(
                        "password-encryption",
                        command_line(&c, &env, &["postgres", "-C", "password_encryption"], &[]),
                    ),
                );
                assert!(asked.status.success(), "{}", text(&asked.stderr));
                text(&asked.stdout).trim().to_owned()
            }
        };
        assert!(
            !method.is_empty() && !method.contains(char::is_whitespace),
            "pg_hba method {method:?}"
        );
        self.postgres_auth = Some(method.clone());
        let conf = self.lane.exec(
            &pod,
            as_postgres(
                "configure",
                argv(&[
                    "sh",
                    "-c",
                    &format!(
                        "echo \"listen_addresses = '*'\" >>\"$PGDATA/postgresql.conf\" && \
                         printf '\\nhost all all all %s\\n' '{method}' >>\"$PGDATA/pg_hba.conf\""
                    ),
                ]),
            ),
        );
        assert!(conf.status.success(), "{}", text(&conf.stderr));
        // args only: the image's entrypoint puts `postgres` before arguments starting with '-'.
        let line = command_line(&c, &env, &["postgres"], &[]);
        let index = self.lane.spawn(&pod, as_postgres("postgresql", line));
        self.wait_probe(&pod, index, &c, &env, Some(&user));
        let db = env_get(&env, "POSTGRES_DB").to_owned();
        let create = self.lane.exec(
            &pod,
            as_postgres(
                "createdb",
                argv(&[
                    "psql",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "--username",
                    env_get(&env, "POSTGRES_USER"),
                    "--dbname",
                    "postgres",
                    "-c",
                    &format!("CREATE DATABASE \"{db}\""),
                ]),
            ),
        );
        assert!(create.status.success(), "{}", text(&create.stderr));
    }

    /// SQL as the superuser, through the server's socket in its pod.
    pub fn psql_admin(&self, sql: &str) -> String {
        let env = self.env_of("StatefulSet", "dify-postgresql", "postgresql");
        let out = self.lane.exec(
            "dify-postgresql",
            Spawn {
                name: "psql",
                argv: argv(&[
                    "psql",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-tA",
                    "--username",
                    env_get(&env, "POSTGRES_USER"),
                    "--dbname",
                    env_get(&env, "POSTGRES_DB"),
                    "-c",
                    sql,
                ]),
                env: Vec::new(),
                user: Some("postgres"),
                cwd: None,
            },
        );
        assert!(out.status.success(), "{sql}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// Redis from Debian with the rendered arguments (the image's entrypoint puts
    /// `redis-server` before arguments starting with '-'), as the pod's securityContext user,
    /// in /data, the image's WORKDIR.
    pub fn start_redis(&mut self) {
        let (pod, spec) = self.workload_pod("StatefulSet", "dify-redis");
        let c = container(&spec, "redis").clone();
        let env = container_env(&self.r.manifest, &c);
        let user = run_as(&spec, &c);
        self.mount_volumes(&spec, &c, Some(&user));
        let line = command_line(&c, &env, &["redis-server"], &[]);
        let index = self.lane.spawn(
            &pod,
            Spawn {
                name: "redis",
                argv: line,
                env: env.clone(),
                user: Some(&user),
                cwd: Some("/data"),
            },
        );
        self.wait_probe(&pod, index, &c, &env, Some(&user));
    }

    /// Weaviate built from its Go module at the rendered tag (scripts/runtime build), with the
    /// rendered environment and volume, run as the image runs it: ENTRYPOINT `/bin/weaviate`,
    /// CMD `--host 0.0.0.0 --port 8080 --scheme http`, as the pod's securityContext user.
    pub fn start_weaviate(&mut self) {
        // The version the render deploys (a release's pin): each has its hack/runtime/ module.
        let (pod, spec) = self.workload_pod("StatefulSet", "dify-weaviate");
        let c = container(&spec, "weaviate").clone();
        let image = c.image.as_deref().unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap();
        let bin = lane::built("github.com/weaviate/weaviate", &format!("v{tag}"));
        let mut env = container_env(&self.r.manifest, &c);
        // Weaviate's cluster layer (memberlist) advertises the pod's first private address;
        // a lane pod's address is a loopback one, which it does not pick by itself.
        env.push((
            "CLUSTER_ADVERTISE_ADDR".into(),
            self.lane.addr(&pod).to_string(),
        ));
        let uid = run_as(&spec, &c);
        self.mount_volumes(&spec, &c, Some(&uid));
        let line = command_line(
            &c,
            &env,
            &[&bin.display().to_string()],
            &["--host", "0.0.0.0", "--port", "8080", "--scheme", "http"],
        );
        let index = self.lane.spawn(
            &pod,
            Spawn {
                name: "weaviate",
                argv: line,
                env: env.clone(),
                user: Some(&uid),
                cwd: None,
            },
        );
        self.wait_probe(&pod, index, &c, &env, Some(&uid));
    }

    /// squid from Debian with the rendered squid.conf mounted where the pod mounts it, run as
    /// the ubuntu/squid image's entrypoint runs it: `tail -F` of squid's log files to the
    /// container's output, `squid -Nz`, then squid with the CMD `-f /etc/squid/squid.conf -NYC`.
    pub fn start_squid(&mut self) {
        self.start_squid_of("dify-ssrf-proxy", "ssrf-proxy");
    }

    /// [`Stack::start_squid`] for the squid of Deployment `name`, container `c` (the agent
    /// sandbox's agent-ssrf-proxy too).
    pub fn start_squid_of(&mut self, name: &str, c: &str) {
        let (pod, spec) = self.workload_pod("Deployment", name);
        let c = container(&spec, c).clone();
        let env = container_env(&self.r.manifest, &c);
        self.mount_volumes(&spec, &c, None);
        let mut tail = argv(&["tail", "-q", "-F"]);
        for log in ["access", "error", "store", "cache"] {
            tail.push(format!("/var/log/squid/{log}.log"));
        }
        self.lane.spawn(&pod, spawn("squid-logs", tail, Vec::new()));
        let init = self
            .lane
            .exec(&pod, spawn("squid-z", argv(&["squid", "-Nz"]), env.clone()));
        assert!(init.status.success(), "squid -Nz: {}", text(&init.stderr));
        let line = command_line(
            &c,
            &env,
            &["squid"],
            &["-f", "/etc/squid/squid.conf", "-NYC"],
        );
        let index = self.lane.spawn(&pod, spawn("squid", line, env.clone()));
        self.wait_probe(&pod, index, &c, &env, None);
    }
}

/// A TCP connect check (a tcpSocket probe).
pub fn tcp_check(addr: Ipv4Addr, port: i32) -> Spawn<'static> {
    spawn(
        "tcp-check",
        argv(&["bash", "-c", &format!("exec 3<>/dev/tcp/{addr}/{port}")]),
        Vec::new(),
    )
}

pub fn recorded(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
