//! The site's proxy as the ssrf proxy's parent, run for real in the runtime lane
//! (docs/development.md, "Runtime test lane"): the rendered squid (Debian's squid with the
//! rendered squid.conf, its credentials include written by the rendered init container's
//! script from the operator's Secret) forwards a request for a public name, which the pod
//! cannot resolve, to a parent squid that requires basic authentication (basic_ncsa_auth);
//! with other credentials the parent refuses it, and nothing reaches the destination.

mod common;

use common::kubelet;
use common::lane;
use common::release_spec;
use common::stack::{Stack, argv, spawn, text};
use difyrender::release::render_release;
use std::time::Duration;

const MASTER: &str = "egress-lane-master-key-0123456789abcdef";
const SECRET: &str = "dify-egress-proxy";
/// A pod-network source address for clients inside squid's pod (see tests/runtime.rs).
const POD_NETWORK_CLIENT: &str = "10.244.0.10";
/// A name only the parent can resolve (its hosts file), as a public name on an offline site.
const PUBLIC: &str = "public.example.org";

#[test]
fn ssrf_proxy_forwards_through_an_authenticating_parent() {
    let parent_fqdn = "site-proxy.dify.svc.cluster.local";
    let r = render_release(&release_spec(
        [
            "expose.ingressClassName=kommander-traefik",
            "expose.path=/",
            "external.scheme=http",
            "external.host=dify.example.com",
            "storage.storageClassName=standard",
            &format!("egress.proxy.httpProxy=http://{parent_fqdn}:3128"),
            &format!("egress.proxy.credentialsSecret={SECRET}"),
        ]
        .map(String::from)
        .to_vec(),
        MASTER,
    ))
    .expect("renders");
    let mut s = Stack::with_hosts("egress", r, &["site-proxy", "origin"]);
    kubelet::add_secret(
        &mut s.r.manifest,
        SECRET,
        "dify",
        &[("username", b"dify-egress"), ("password", b"right-pass")],
    );
    let origin = s.host("origin");
    let origin_log = s.recorder(&origin, 8080);
    let origin_addr = s.lane.addr(&origin);

    // The parent: squid with basic authentication, resolving the public name itself.
    let parent = s.host("site-proxy");
    let dir = s.lane.dir.join("parent-squid");
    std::fs::create_dir_all(&dir).unwrap();
    let passwd = dir.join("passwd");
    let set_password = |password: &str| {
        let out = std::process::Command::new("openssl")
            .args(["passwd", "-apr1", password])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(&passwd, format!("dify-egress:{}", text(&out.stdout))).unwrap();
    };
    set_password("right-pass");
    std::fs::write(dir.join("hosts"), format!("{origin_addr} {PUBLIC}\n")).unwrap();
    let parent_conf = dir.join("squid.conf");
    std::fs::write(
        &parent_conf,
        format!(
            "http_port 3128\n\
             visible_hostname site-proxy.example\n\
             pid_filename {d}/squid.pid\n\
             hosts_file {d}/hosts\n\
             auth_param basic program /usr/lib/squid/basic_ncsa_auth {p}\n\
             auth_param basic credentialsttl 1 second\n\
             acl authed proxy_auth REQUIRED\n\
             http_access allow authed\n\
             http_access deny all\n\
             access_log stdio:{d}/access.log\n\
             cache_log {d}/cache.log\n\
             cache deny all\n\
             coredump_dir {d}\n",
            d = dir.display(),
            p = passwd.display()
        ),
    )
    .unwrap();
    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    let index = s.lane.spawn(
        &parent,
        spawn(
            "parent-squid",
            argv(&["squid", "-f", parent_conf.to_str().unwrap(), "-NYC"]),
            Vec::new(),
        ),
    );
    let parent_addr = s.lane.addr(&parent);
    s.lane.wait_ready(index, "the parent squid", |lane| {
        lane.exec(
            &parent,
            spawn(
                "check",
                argv(&[
                    "bash",
                    "-c",
                    &format!("exec 3<>/dev/tcp/{parent_addr}/3128"),
                ]),
                Vec::new(),
            ),
        )
        .status
        .success()
    });

    // The rendered init container, with its volumes (the Secret's files, the emptyDir), then
    // the emptyDir's file where the squid container's mount of the same volume finds it.
    // (In a client pod of its own: the squid pod is created by start_squid below.)
    let spec = kubelet::pod(&s.r.manifest, "Deployment", "dify-ssrf-proxy");
    let init_pod = s.client("ssrf-proxy-init");
    let pod = "dify-ssrf-proxy".to_owned();
    let init = spec.init_containers.as_ref().unwrap()[0].clone();
    assert_eq!(init.name, "site-proxy-login");
    s.mount_volumes(&spec, &init, None);
    let out = s.lane.exec(
        &init_pod,
        spawn(
            "site-proxy-login",
            init.command.clone().unwrap(),
            Vec::new(),
        ),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let volumes = s.lane.dir.join("volumes");
    let written = volumes.join("site-proxy-login/site-proxy/peer.conf");
    let main = volumes.join("ssrf-proxy/site-proxy");
    std::fs::create_dir_all(&main).unwrap();
    std::fs::copy(&written, main.join("peer.conf")).unwrap();
    s.start_squid();

    let add = s.lane.exec(
        &pod,
        spawn(
            "ip",
            argv(&[
                "ip",
                "addr",
                "add",
                &format!("{POD_NETWORK_CLIENT}/32"),
                "dev",
                "lo",
            ]),
            Vec::new(),
        ),
    );
    assert!(add.status.success(), "{}", text(&add.stderr));
    let get = |path: &str| {
        s.curl(
            &pod,
            &[
                "--interface",
                POD_NETWORK_CLIENT,
                "-x",
                "http://127.0.0.1:3128",
                &format!("http://{PUBLIC}:8080{path}"),
            ],
        )
    };
    let paths = || -> Vec<String> {
        std::fs::read_to_string(&origin_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|r| r["path"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // squid configures its peers shortly after it listens: polled.
    lane::wait_until(
        "the request through the parent",
        Duration::from_secs(30),
        || get("/through-parent").0 == 200,
    );
    assert!(paths().contains(&"/through-parent".to_owned()));
    let parent_log = std::fs::read_to_string(dir.join("access.log")).unwrap();
    assert!(
        parent_log.contains("dify-egress") && parent_log.contains("/through-parent"),
        "the parent saw the authenticated request: {parent_log}"
    );

    // The parent now wants another password: the rendered squid's credentials are refused,
    // and nothing reaches the destination.
    set_password("another-pass");
    let out = s.lane.exec(
        &parent,
        spawn(
            "reconfigure",
            argv(&[
                "squid",
                "-f",
                parent_conf.to_str().unwrap(),
                "-k",
                "reconfigure",
            ]),
            Vec::new(),
        ),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The reconfigure takes a moment: polled with a path of its own, since a request sent
    // before the parent re-read its passwords may still pass.
    lane::wait_until(
        "the parent to refuse the old password",
        Duration::from_secs(30),
        || {
            let (code, _) = get("/before-the-new-password");
            code == 407
        },
    );
    let (code, _) = get("/refused");
    assert_eq!(code, 407, "the parent accepted the old password");
    assert!(!paths().contains(&"/refused".to_owned()));
    s.lane.assert_running(index);
}
