//! The runtime lane: real programs as local processes, one network namespace per pod, all
//! inside a private network + mount namespace made for one test (scripts/runtime does the
//! plumbing). Every pod has a loopback address of its own (127.0.x.y) and its own 127.0.0.1,
//! so wildcard listeners (squid's 3128 and 8194, the sandbox's 8194) never collide, and
//! nothing is reachable from, or reaches, outside the lane.
//!
//! Every program is started by the test in a process group of its own, and is stopped by its
//! pid when the lane is dropped, also when the test panics: SIGTERM to its group, up to 5 s,
//! then SIGKILL. A watchdog (`scripts/runtime watch`) holds a pipe from the test process and
//! kills whatever is left of the lane's groups when the test process dies without dropping it
//! (the parent-death signal is not delivered on this kernel, so it is not relied on).

use super::root;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The cluster DNS Service's address in every lane (kube-dns' role).
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);
/// PATH of the lane's containers (Debian's programs stand in for the images').
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One process of the lane.
pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Signals the process group led by this process.
    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{}", self.pid())])
            .stderr(Stdio::null())
            .status();
    }

    fn stop(&mut self) {
        if self.running() {
            self.signal_group("TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.running() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Whatever the program left in its group (workers, helpers) goes with it.
        self.signal_group("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Pod {
    name: String,
    addr: Ipv4Addr,
    holder: Proc,
}

/// How to start one program in a pod.
pub struct Spawn<'a> {
    pub name: &'a str,
    pub argv: Vec<String>,
    /// The container's environment; PATH is added when it has none.
    pub env: Vec<(String, String)>,
    /// Run as this user: a name (its groups from /etc/group), or `UID:GID[:GROUP,...]` as a
    /// securityContext gives it (runAsUser, runAsGroup, fsGroup); root otherwise.
    pub user: Option<&'a str>,
    pub cwd: Option<&'a str>,
}

pub struct Lane {
    pub dir: PathBuf,
    // Stopped in this order: programs (newest first), pods, the lane.
    procs: Vec<Proc>,
    pods: Vec<Pod>,
    holder: Option<Proc>,
    /// `scripts/runtime watch`: kills the groups listed in `<dir>/pids` once its stdin closes.
    watchdog: Option<Child>,
}

/// Polls `ready` until it holds or `timeout` passes; `what` names the condition.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `scripts/runtime build`, once per test binary: the lane's programs are installed or built
/// if missing (a no-op after scripts/test has run it).
pub fn build() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| run_ok(Command::new(script()).arg("build"), "scripts/runtime build"));
}

/// The program `scripts/runtime build` built of `module` at `version`: from the directory
/// of `hack/runtime/` whose go.mod requires it, `target/runtime/bin/<dir>-<version>`. Running
/// another version (another release's pin) takes one more such directory.
pub fn built(module: &str, version: &str) -> PathBuf {
    build();
    let want = format!("require {module} {version}");
    let dirs = std::fs::read_dir(root().join("hack/runtime")).unwrap();
    let dir = dirs
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|d| {
            std::fs::read_to_string(d.join("go.mod"))
                .is_ok_and(|m| m.lines().any(|l| l.trim() == want))
        })
        .unwrap_or_else(|| panic!("no hack/runtime/*/go.mod has `{want}`"));
    let name = dir.file_name().unwrap().to_str().unwrap();
    let bin = root()
        .join("target/runtime/bin")
        .join(format!("{name}-{version}"));
    assert!(
        bin.is_file(),
        "scripts/runtime build made {}",
        bin.display()
    );
    bin
}

/// A program of the lane's own source that `scripts/runtime build` built: a main package of
/// `hack/runtime/<dir>/` is `target/runtime/bin/<dir>`, one in `<dir>/<sub>/` is `<dir>-<sub>`.
pub fn program(name: &str) -> PathBuf {
    build();
    let bin = root().join("target/runtime/bin").join(name);
    assert!(
        bin.is_file(),
        "scripts/runtime build made {}",
        bin.display()
    );
    bin
}

/// uid and gid of a [`Spawn::user`]: `UID:GID[:GROUPS]`, or a local user's name.
pub fn user_ids(user: &str) -> (u32, u32) {
    let numbers: Vec<u32> = user.split(':').map_while(|n| n.parse().ok()).collect();
    if let [uid, gid, ..] = numbers[..] {
        return (uid, gid);
    }
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, user]).output().unwrap();
        assert!(out.status.success(), "user {user} exists");
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

fn script() -> PathBuf {
    root().join("scripts/runtime")
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until `pid` has exec'd `exe` (its namespaces exist from then on).
fn wait_exe(pid: u32, exe: &str) {
    wait_until(
        &format!("process {pid} to run {exe}"),
        Duration::from_secs(10),
        || std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == Path::new(exe)),
    );
}

impl Lane {
    /// A new lane for test `name`: its own network and mount namespace, with the pods' DNS
    /// configuration (`search <namespace>.svc.<domain> svc.<domain> <domain>`, nameserver
    /// [`DNS_ADDR`], `ndots:5`, as the kubelet writes for dnsPolicy ClusterFirst) bind-mounted
    /// over /etc/resolv.conf inside it.
    pub fn new(name: &str, namespace: &str, cluster_domain: &str) -> Lane {
        build();
        let dir = root()
            .join("target/runtime/lanes")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let watchdog = Command::new(script())
            .arg("watch")
            .arg(dir.join("pids"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("scripts/runtime watch starts");
        let mut lane = Lane {
            dir,
            procs: Vec::new(),
            pods: Vec::new(),
            holder: None,
            watchdog: Some(watchdog),
        };
        let resolv = lane.dir.join("resolv.conf");
        std::fs::write(
            &resolv,
            format!(
                "search {namespace}.svc.{cluster_domain} svc.{cluster_domain} {cluster_domain}\n\
                 nameserver {DNS_ADDR}\noptions ndots:5\n"
            ),
        )
        .unwrap();
        let holder = lane.launch(
            "lane",
            None,
            Command::new("/usr/bin/unshare").args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--",
                "/usr/bin/sleep",
                "infinity",
            ]),
        );
        wait_exe(holder.pid(), "/usr/bin/sleep");
        let pid = holder.pid();
        lane.holder = Some(holder);
        run_ok(
            Command::new(script())
                .args(["lane-init", &pid.to_string()])
                .arg(&resolv),
            "scripts/runtime lane-init",
        );
        lane
    }

    fn lane_pid(&self) -> u32 {
        self.holder.as_ref().unwrap().pid()
    }

    /// Starts `cmd` in a process group of its own, recorded for the watchdog. Its output goes
    /// to `<dir>/<name>.log`, owned by `user` as the container runtime makes a container's
    /// output pipes (containerd: the container's user), so that a program that reopens
    /// /dev/stdout may do so exactly when it could in a pod.
    fn launch(&self, name: &str, user: Option<&str>, cmd: &mut Command) -> Proc {
        use std::io::Write;
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some(user) = user {
            let (uid, gid) = user_ids(user);
            std::os::unix::fs::chown(&log, Some(uid), Some(gid)).unwrap();
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        // pid and start time (field 22 of /proc/PID/stat): a recycled pid is never signalled.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let start = stat
            .rsplit(") ")
            .next()
            .unwrap()
            .split(' ')
            .nth(19)
            .unwrap();
        let mut pids = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("pids"))
            .unwrap();
        writeln!(pids, "{} {start}", child.id()).unwrap();
        Proc {
            name: name.to_owned(),
            log,
            child,
        }
    }

    /// A new pod `name` with address `addr`, reachable from every other pod of the lane.
    pub fn pod(&mut self, name: &str, addr: Ipv4Addr) {
        assert!(addr.is_loopback(), "{addr} is a loopback address");
        let lane = self.lane_pid().to_string();
        let holder = self.launch(
            &format!("pod-{name}"),
            None,
            Command::new("/usr/bin/nsenter").args([
                &format!("--net=/proc/{lane}/ns/net"),
                &format!("--mount=/proc/{lane}/ns/mnt"),
                "--",
                "/usr/bin/unshare",
                "--net",
                "--",
                "/usr/bin/sleep",
                "infinity",
            ]),
        );
        wait_exe(holder.pid(), "/usr/bin/sleep");
        let ifname = format!("veth{}", self.pods.len());
        run_ok(
            Command::new(script()).args([
                "pod-init",
                &lane,
                &holder.pid().to_string(),
                &ifname,
                &addr.to_string(),
            ]),
            &format!("scripts/runtime pod-init {name}"),
        );
        self.pods.push(Pod {
            name: name.to_owned(),
            addr,
            holder,
        });
    }

    /// The address of pod `name`.
    pub fn addr(&self, pod: &str) -> Ipv4Addr {
        self.find_pod(pod).addr
    }

    fn find_pod(&self, name: &str) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("pod {name} exists in the lane"))
    }

    /// Bind-mounts `src` over `dst`, visible inside the lane only (a volume of a container).
    pub fn mount(&self, src: &Path, dst: &str) {
        run_ok(
            Command::new(script())
                .args(["mount", &self.lane_pid().to_string()])
                .arg(src)
                .arg(dst),
            &format!("mounting {dst}"),
        );
    }

    /// A command running in `pod`'s network namespace and the lane's mount namespace.
    fn command(&self, pod: &str, spawn: &Spawn, prefix: &[&str]) -> Command {
        let pod_pid = self.find_pod(pod).holder.pid();
        let (program, args) = match prefix.split_first() {
            Some((first, rest)) => (*first, rest.iter().map(|s| s.to_string()).collect()),
            None => ("/usr/bin/nsenter", Vec::new()),
        };
        let mut cmd = Command::new(program);
        let mut args: Vec<String> = args;
        if !prefix.is_empty() {
            args.push("/usr/bin/nsenter".into());
        }
        args.push(format!("--net=/proc/{pod_pid}/ns/net"));
        args.push(format!("--mount=/proc/{}/ns/mnt", self.lane_pid()));
        args.push("--".into());
        if let Some(cwd) = spawn.cwd {
            // Not nsenter's --wd, which opens the directory before entering the namespaces.
            args.extend(["/usr/bin/env".into(), format!("--chdir={cwd}"), "--".into()]);
        }
        if let Some(user) = spawn.user {
            // After nsenter, which needs root.
            let mut ids = user.splitn(3, ':');
            let uid = ids.next().unwrap();
            args.extend(["/usr/bin/setpriv".into(), "--reuid".into(), uid.into()]);
            if uid.parse::<u32>().is_ok() {
                args.extend(["--regid".into(), ids.next().unwrap_or(uid).into()]);
                match ids.next() {
                    Some(groups) => args.extend(["--groups".into(), groups.into()]),
                    None => args.push("--clear-groups".into()),
                }
            } else {
                args.extend(["--regid".into(), uid.into(), "--init-groups".into()]);
            }
            args.push("--".into());
        }
        args.extend(spawn.argv.iter().cloned());
        cmd.args(args).env_clear();
        if !spawn.env.iter().any(|(k, _)| k == "PATH") {
            cmd.env("PATH", PATH);
        }
        cmd.envs(spawn.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Starts a long-running program in `pod`; its output goes to `<lane dir>/<name>.log`.
    pub fn spawn(&mut self, pod: &str, spawn: Spawn) -> usize {
        let mut cmd = self.command(pod, &spawn, &[]);
        let proc = self.launch(spawn.name, spawn.user, &mut cmd);
        self.procs.push(proc);
        self.procs.len() - 1
    }

    /// Fails with the program's log file named if `index` (from [`Lane::spawn`]) has exited.
    pub fn assert_running(&mut self, index: usize) {
        let p = &mut self.procs[index];
        assert!(p.running(), "{} exited; see {}", p.name, p.log.display());
    }

    /// Waits until `ready` holds, failing early if program `index` exits meanwhile.
    pub fn wait_ready(&mut self, index: usize, what: &str, mut ready: impl FnMut(&Lane) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if ready(self) {
                return;
            }
            self.assert_running(index);
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a command to completion in `pod` (like `kubectl exec`), bounded by 120 s.
    pub fn exec(&self, pod: &str, spawn: Spawn) -> Output {
        let mut cmd = self.command(pod, &spawn, &["/usr/bin/timeout", "--kill-after=5", "120"]);
        cmd.stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", spawn.name))
    }

    /// A cluster DNS server (Debian's dnsmasq) at [`DNS_ADDR`] that answers exactly the given
    /// fully qualified names, as cluster DNS has records only for FQDNs: a short name resolves
    /// only through the search domains of resolv.conf.
    pub fn start_dns(&mut self, records: &[(String, Ipv4Addr)]) {
        self.pod("kube-dns", DNS_ADDR);
        let mut argv: Vec<String> = [
            "/usr/sbin/dnsmasq",
            "--keep-in-foreground",
            "--log-facility=-",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--log-queries",
            "--pid-file=",
            "--user=root",
            "--listen-address",
            &DNS_ADDR.to_string(),
            "--bind-interfaces",
        ]
        .map(String::from)
        .to_vec();
        for (name, addr) in records {
            argv.push(format!("--host-record={name},{addr}"));
        }
        let dns = self.spawn(
            "kube-dns",
            Spawn {
                name: "dnsmasq",
                argv,
                env: Vec::new(),
                user: None,
                cwd: None,
            },
        );
        let probe = records.first().expect("a record").clone();
        self.wait_ready(dns, "cluster DNS", |lane| {
            lane.resolve("kube-dns", &probe.0) == Some(probe.1)
        });
    }

    /// What `name` resolves to in `pod` through the C library (getent), if anything.
    pub fn resolve(&self, pod: &str, name: &str) -> Option<Ipv4Addr> {
        let out = self.exec(
            pod,
            Spawn {
                name: "getent",
                argv: vec!["getent".into(), "ahostsv4".into(), name.into()],
                env: Vec::new(),
                user: None,
                cwd: None,
            },
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .and_then(|a| a.parse().ok())
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        while let Some(mut p) = self.procs.pop() {
            p.stop();
        }
        while let Some(mut p) = self.pods.pop() {
            p.holder.stop();
        }
        if let Some(mut h) = self.holder.take() {
            h.stop();
        }
        if let Some(mut w) = self.watchdog.take() {
            drop(w.stdin.take());
            let _ = w.wait();
        }
        // The logs stay for a failed test.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
