//! The routes, proven by the real ingress controller: Traefik v3.6.12 (NKP 2.18's), built from
//! its Go module by `scripts/testenv build-traefik`, with its Kubernetes Ingress, CRD
//! (Middleware) and Gateway API providers watching a real control plane (scripts/testenv).
//! Every URL a user sees, for `/` and `/dify`, in the Ingress and the HTTPRoute form, goes
//! through Traefik to the rendered Services; a recorder stands at each Service's address and
//! answers with what it received: its own address (which backend), the path and the headers.
//!
//! The backends' addresses: the API server refuses loopback addresses in EndpointSlices
//! (`may not be in the loopback range`), so the lane runs in a private network namespace
//! (`unshare --net`) whose loopback device also carries 10.244.0.0/24: local, and reachable
//! from nothing outside the lane. The control plane, Traefik, the recorders and every client
//! run inside it. The pods are not run (Dify's programs are not in any registry): each
//! Service gets an EndpointSlice naming its recorder, as the EndpointSlice controller would
//! for a ready pod.

#[path = "../common/mod.rs"]
mod common;
mod lane;

use common::*;
use difyrender::manifest::Manifest;
use difyrender::release::{ReleaseSpec, render_release};
use lane::*;
use serde_json::{Value, json};
use std::path::Path;

const MASTER: &str = "traefik-test-master-key-0123456789";
/// The release under test: 1.16.1 has every route (collaboration on its api-websocket, and
/// /openapi from 1.15.0).
const TAG: &str = "images.dify.tag=1.16.1";
/// One recorder per backend Service, each at its own address in the namespace.
const BACKENDS: [(&str, &str); 4] = [
    ("web", "10.244.0.11"),
    ("api", "10.244.0.12"),
    ("plugin-daemon", "10.244.0.13"),
    ("api-websocket", "10.244.0.14"),
];

fn spec(ns: &str, set: &[&str]) -> ReleaseSpec {
    let mut base = vec![
        "expose.ingressClassName=kommander-traefik",
        "external.scheme=https",
        "external.host=192.0.2.10",
        "storage.storageClassName=standard",
        TAG,
    ];
    base.extend_from_slice(set);
    let mut spec = release_spec(base.into_iter().map(str::to_owned).collect(), MASTER);
    spec.release.namespace = ns.into();
    spec
}

/// The rendered Services and routes (Ingresses, Middlewares or HTTPRoutes), as one stream.
fn routing_objects(m: &Manifest) -> String {
    let kinds = ["Service", "Ingress", "Middleware", "HTTPRoute"];
    let items: Vec<&Value> = m
        .resources
        .iter()
        .filter(|r| kinds.contains(&r.kind.as_str()))
        .map(|r| &r.body)
        .collect();
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// For every Service of a backend: an EndpointSlice naming its recorder, for each port name.
fn endpoint_slices(m: &Manifest, ns: &str, ports: &[(String, u16)]) -> String {
    let mut items = Vec::new();
    for (component, addr) in BACKENDS {
        let Some(svc) = m
            .resources
            .iter()
            .find(|r| r.kind == "Service" && r.component == component)
        else {
            continue;
        };
        let port = ports.iter().find(|(c, _)| c == component).unwrap().1;
        let names: Vec<Value> = svc.body["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| json!({"name": p["name"], "port": port, "protocol": "TCP"}))
            .collect();
        items.push(json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": format!("{}-recorder", svc.name),
                    "namespace": ns,
                    "labels": {
                        "kubernetes.io/service-name": svc.name,
                        "endpointslice.kubernetes.io/managed-by": "traefik-lane.difyrender.io",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [addr], "conditions": {"ready": true, "serving": true}}],
                "ports": names,
        }));
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// What a recorder received, as it reports it.
#[derive(Debug)]
struct Seen {
    backend: String,
    path: String,
    headers: Value,
}

fn seen(record: &Value) -> Seen {
    let local = record["local"].as_str().unwrap();
    let addr = local.split(':').next().unwrap();
    let backend = BACKENDS
        .iter()
        .find(|(_, a)| *a == addr)
        .map(|(c, _)| c.to_string())
        .unwrap_or_else(|| panic!("unknown recorder {local}"));
    Seen {
        backend,
        path: record["path"].as_str().unwrap().to_owned(),
        headers: record["headers"].clone(),
    }
}

/// One URL, what must serve it, the path it must receive and its X-Forwarded-Prefix.
struct Expect {
    what: &'static str,
    url: String,
    backend: &'static str,
    path: String,
    prefix: Option<&'static str>,
}

/// Every URL a user sees (as the links test in tests/render.rs builds them from the rendered
/// environment), for a release served at `base` ("" or "/dify").
fn expectations(base: &'static str, openapi: bool) -> Vec<Expect> {
    let origin = format!("https://{HOST}");
    let url = format!("{origin}{base}");
    let stripped = (!base.is_empty()).then_some(base);
    let mut e = vec![
        (
            "share link",
            format!("{url}/chat/TOKEN"),
            "web",
            format!("{base}/chat/TOKEN"),
            None,
        ),
        (
            "workflow share link",
            format!("{url}/workflow/TOKEN"),
            "web",
            format!("{base}/workflow/TOKEN"),
            None,
        ),
        (
            "embedded chatbot",
            format!("{url}/chatbot/TOKEN"),
            "web",
            format!("{base}/chatbot/TOKEN"),
            None,
        ),
        (
            "embed script",
            format!("{url}/embed.min.js"),
            "web",
            format!("{base}/embed.min.js"),
            None,
        ),
        (
            "console page",
            format!("{url}/apps"),
            "web",
            format!("{base}/apps"),
            None,
        ),
        (
            "explore page",
            format!("{url}/explore/apps"),
            "web",
            format!("{base}/explore/apps"),
            None,
        ),
        (
            "account activation",
            format!("{url}/activate?token=T"),
            "web",
            format!("{base}/activate?token=T"),
            None,
        ),
        (
            "console API",
            format!("{url}/console/api/setup"),
            "api",
            "/console/api/setup".into(),
            stripped,
        ),
        (
            "web app API",
            format!("{url}/api/passport"),
            "api",
            "/api/passport".into(),
            stripped,
        ),
        (
            "service API",
            format!("{url}/v1/chat-messages"),
            "api",
            "/v1/chat-messages".into(),
            stripped,
        ),
        (
            "file preview",
            format!("{url}/files/ID/file-preview?sign=S"),
            "api",
            "/files/ID/file-preview?sign=S".into(),
            stripped,
        ),
        (
            "webhook trigger",
            format!("{url}/triggers/webhook/ID"),
            "api",
            "/triggers/webhook/ID".into(),
            stripped,
        ),
        (
            "MCP server",
            format!("{url}/mcp/server/CODE/mcp"),
            "api",
            "/mcp/server/CODE/mcp".into(),
            stripped,
        ),
        (
            "plugin endpoint",
            format!("{url}/e/HOOK/callback"),
            "plugin-daemon",
            "/e/HOOK/callback".into(),
            stripped,
        ),
    ];
    // Dify's nginx routes /openapi to the api from 1.15.0 (the openapiRoute switch).
    if openapi {
        e.push((
            "OpenAPI",
            format!("{url}/openapi/v1/apps"),
            "api",
            "/openapi/v1/apps".into(),
            stripped,
        ));
    }
    for asset in [
        "/manifest.json",
        "/pdf.worker.min.mjs",
        "/apple-touch-icon.png",
        "/icon-192x192.png",
        "/browserconfig.xml",
    ] {
        e.push((
            "root asset",
            format!("{origin}{asset}"),
            "web",
            format!("{base}{asset}"),
            None,
        ));
    }
    e.into_iter()
        .map(|(what, url, backend, path, prefix)| Expect {
            what,
            url,
            backend,
            path,
            prefix,
        })
        .collect()
}

/// Applies one release's routes in its own namespace, waits until Traefik serves them, and
/// sends every URL through it.
fn check_case(
    lane: &Lane,
    kc: &Path,
    ns: &str,
    set: &[&str],
    base: &'static str,
    ports: &[(String, u16)],
) {
    let rendered = render_release(&spec(ns, set)).expect("renders");
    let m = &rendered.manifest;
    lane.kubectl(kc, &["create", "namespace", ns], None);
    // Endpoints first, so the routes find their servers when Traefik builds them.
    lane.kubectl(
        kc,
        &["apply", "-f", "-"],
        Some(&routing_objects(&only(m, "Service"))),
    );
    lane.kubectl(
        kc,
        &["apply", "-f", "-"],
        Some(&endpoint_slices(m, ns, ports)),
    );
    lane.kubectl(kc, &["apply", "-f", "-"], Some(&routing_objects(m)));
    let routers: usize = m
        .resources
        .iter()
        .map(|r| match r.kind.as_str() {
            "Ingress" => r.body["spec"]["rules"][0]["http"]["paths"]
                .as_array()
                .unwrap()
                .len(),
            "HTTPRoute" => r.body["spec"]["rules"].as_array().unwrap().len(),
            _ => 0,
        })
        .sum();
    wait_loaded(lane, ns, routers);

    let openapi = rendered.dify.switches["openapiRoute"] == true;
    for e in expectations(base, openapi) {
        let (code, body) = get(lane, &e.url);
        assert_eq!(code, 200, "{ns}: {} {}: {body}", e.what, e.url);
        let s = seen(&serde_json::from_str(body.trim()).unwrap());
        let context = format!("{ns}: {} {} -> {s:?}", e.what, e.url);
        assert_eq!(s.backend, e.backend, "{context}");
        assert_eq!(s.path, e.path, "{context}");
        assert_eq!(s.headers["x-forwarded-proto"], "https", "{context}");
        assert_eq!(s.headers["x-forwarded-host"], HOST, "{context}");
        assert_eq!(
            s.headers["x-forwarded-prefix"].as_str(),
            e.prefix,
            "{context}"
        );
        // The hook proxy rebuilds the public URL from these headers (plugin-daemon.yaml).
        if e.backend == "plugin-daemon" {
            assert_eq!(
                format!(
                    "{}://{}{}{}",
                    s.headers["x-forwarded-proto"].as_str().unwrap(),
                    s.headers["x-forwarded-host"].as_str().unwrap(),
                    e.prefix.unwrap_or(""),
                    s.path
                ),
                e.url,
                "{context}: Dify-Hook-Url"
            );
        }
    }
    // Before 1.15.0 nothing routes /openapi to the api: it falls to the web like any page.
    if !openapi {
        let url = format!("https://{HOST}{base}/openapi/v1/apps");
        let (code, body) = get(lane, &url);
        assert_eq!(code, 200, "{ns}: {url}: {body}");
        let s = seen(&serde_json::from_str(body.trim()).unwrap());
        assert_eq!(s.backend, "web", "{ns}: {url} -> {s:?}");
    }
    // Every route the render declares, whatever the release adds, reaches the Service it names.
    for (path, service) in declared_routes(m) {
        let component = &m
            .resources
            .iter()
            .find(|r| r.kind == "Service" && r.name == service)
            .unwrap_or_else(|| panic!("{ns}: no Service {service}"))
            .component;
        let (code, body) = get(lane, &format!("https://{HOST}{path}"));
        assert_eq!(code, 200, "{ns}: {path}: {body}");
        let s = seen(&serde_json::from_str(body.trim()).unwrap());
        assert_eq!(&s.backend, component, "{ns}: {path} -> {s:?}");
    }
    // A sub-path release takes nothing else at the host's root (negative control).
    if !base.is_empty() {
        for other in ["/", "/apps", "/console/api/setup", "/_next/static/x.js"] {
            let (code, body) = get(lane, &format!("https://{HOST}{other}"));
            assert_eq!(code, 404, "{ns}: {other} is not routed: {body}");
        }
    }
    // Collaboration: the socket.io client connects to the origin at /socket.io/ and upgrades.
    let web = m
        .resources
        .iter()
        .find(|r| r.kind == "Deployment" && r.component == "web")
        .unwrap();
    let socket_url = web.body["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "NEXT_PUBLIC_SOCKET_URL")
        .and_then(|e| e["value"].as_str())
        .expect("the web has NEXT_PUBLIC_SOCKET_URL");
    assert_eq!(socket_url, format!("wss://{HOST}"), "{ns}");
    let out = lane.output(
        "python3",
        &[
            "-c",
            WEBSOCKET_CLIENT,
            &HTTPS_PORT.to_string(),
            HOST,
            "/socket.io/?EIO=4&transport=websocket",
        ],
    );
    assert!(
        out.status.success(),
        "{ns}: websocket: {}",
        transcript(&out)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        result["status"].as_str().unwrap().contains(" 101 "),
        "{ns}: {result}"
    );
    let s = seen(&result["record"]);
    // 1.14.1+ has its own api-websocket; 1.14.0's api serves /socket.io/ itself.
    let server = if m.resources.iter().any(|r| r.component == "api-websocket") {
        "api-websocket"
    } else {
        "api"
    };
    assert_eq!(s.backend, server, "{ns}: {result}");
    assert_eq!(s.path, "/socket.io/?EIO=4&transport=websocket", "{ns}");
    // Traefik names a WebSocket upgrade over TLS wss, not https.
    assert_eq!(s.headers["x-forwarded-proto"], "wss", "{ns}");
    assert_eq!(s.headers["x-forwarded-host"], HOST, "{ns}");
    assert_eq!(result["echo"], "ping-through-traefik", "{ns}: {result}");

    lane.kubectl(
        kc,
        &["delete", "namespace", ns, "--wait=true", "--timeout=120s"],
        None,
    );
}

/// A URL path for each path match of the rendered Ingresses and HTTPRoutes (a prefix gets a
/// segment below it, an exact match is itself), and the Service it names.
fn declared_routes(m: &Manifest) -> Vec<(String, String)> {
    let below = |p: &str| format!("{}/declared-route", p.trim_end_matches('/'));
    let mut out = Vec::new();
    for r in &m.resources {
        if r.kind == "Ingress" {
            for p in r.body["spec"]["rules"][0]["http"]["paths"]
                .as_array()
                .unwrap()
            {
                let path = p["path"].as_str().unwrap();
                let url = if p["pathType"] == "Exact" {
                    path.to_owned()
                } else {
                    below(path)
                };
                out.push((
                    url,
                    p["backend"]["service"]["name"].as_str().unwrap().to_owned(),
                ));
            }
        }
        if r.kind == "HTTPRoute" {
            for rule in r.body["spec"]["rules"].as_array().unwrap() {
                let service = rule["backendRefs"][0]["name"].as_str().unwrap().to_owned();
                for matched in rule["matches"].as_array().unwrap() {
                    let path = matched["path"]["value"].as_str().unwrap();
                    let url = if matched["path"]["type"] == "Exact" {
                        path.to_owned()
                    } else {
                        below(path)
                    };
                    out.push((url, service.clone()));
                }
            }
        }
    }
    out
}

/// The manifest's objects of one kind.
fn only(m: &Manifest, kind: &str) -> Manifest {
    let mut m = m.clone();
    m.resources.retain(|r| r.kind == kind);
    m
}

#[test]
fn every_link_goes_through_traefik_to_its_backend() {
    let (traefik, crds) = traefik_build();
    let dir = root()
        .join("target")
        .join(format!("traefik-lane-{}", std::process::id()));
    let mut lane = Lane::new(dir.clone());
    let kc = control_plane(&lane);
    let kcs = kc.to_str().unwrap();
    for file in ["traefik.yaml", "gateway-api-standard.yaml"] {
        let text = std::fs::read_to_string(crds.join(file)).unwrap();
        lane.kubectl(
            &kc,
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&text),
        );
    }
    lane.kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
        None,
    );
    lane.kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(
            "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: kommander-traefik}
spec: {controller: traefik.io/ingress-controller}
",
        ),
    );
    // A self-signed certificate for the Gateway's HTTPS listener (Traefik's default
    // certificate serves the Ingress routers).
    let (crt, key) = self_signed(&dir, "tls", "/CN=dify.example", &[]);
    lane.kubectl(&kc, &["create", "namespace", "kommander"], None);
    lane.kubectl(
        &kc,
        &[
            "create",
            "secret",
            "tls",
            "traefik-gateway-tls",
            "-n",
            "kommander",
            &format!("--cert={}", crt.display()),
            &format!("--key={}", key.display()),
        ],
        None,
    );
    let gateway = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: traefik}}
spec: {{controllerName: traefik.io/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: traefik-gateway, namespace: kommander}}
spec:
  gatewayClassName: traefik
  listeners:
    - name: websecure
      port: {HTTPS_PORT}
      protocol: HTTPS
      tls: {{mode: Terminate, certificateRefs: [{{name: traefik-gateway-tls}}]}}
      allowedRoutes: {{namespaces: {{from: All}}}}
"
    );
    lane.kubectl(&kc, &["apply", "-f", "-"], Some(&gateway));

    // One recorder per backend, each on its own address.
    let script = root().join("hack/runtime/recorder.py");
    let mut ports = Vec::new();
    for (component, addr) in BACKENDS {
        let log = dir.join(format!("recorded-{component}.jsonl"));
        let mut out = lane
            .spawn(
                &format!("recorder-{component}"),
                &[
                    "python3",
                    script.to_str().unwrap(),
                    "0",
                    log.to_str().unwrap(),
                    addr,
                ],
                &[],
                true,
            )
            .unwrap();
        let line = read_until(&mut out, "recorder listening on");
        let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
        ports.push((component.to_owned(), port));
    }

    // Traefik reads the cluster through KUBECONFIG (its cluster-external client).
    lane.spawn(
        "traefik",
        &[
            traefik.to_str().unwrap(),
            &format!("--entryPoints.websecure.address=127.0.0.1:{HTTPS_PORT}"),
            "--entryPoints.websecure.http.tls=true",
            // Routers that name no entry point (the Ingresses') serve there only, not on the API's.
            "--entryPoints.websecure.asDefault=true",
            &format!("--entryPoints.traefik.address=127.0.0.1:{API_PORT}"),
            "--api.insecure=true",
            // The module has no built web UI (webui/static is built by yarn upstream).
            "--api.dashboard=false",
            "--ping=true",
            "--log.level=INFO",
            "--providers.kubernetesingress=true",
            "--providers.kubernetescrd=true",
            "--providers.kubernetesgateway=true",
        ],
        &[("KUBECONFIG", kcs)],
        false,
    );

    let gateway_set = [
        "expose.kind=HTTPRoute",
        "expose.gateway.parentRefs[0].name=traefik-gateway",
        "expose.gateway.parentRefs[0].namespace=kommander",
    ];
    let sub = [
        "expose.path=/dify",
        "images.web.repository=registry.example.com/dify-web-dify",
        "images.web.basePath=/dify",
    ];
    let root_path = ["expose.path=/"];
    check_case(&lane, &kc, "ingress-root", &root_path, "", &ports);
    check_case(&lane, &kc, "ingress-dify", &sub, "/dify", &ports);
    check_case(
        &lane,
        &kc,
        "httproute-root",
        &[&root_path[..], &gateway_set[..]].concat(),
        "",
        &ports,
    );
    check_case(
        &lane,
        &kc,
        "httproute-dify",
        &[&sub[..], &gateway_set[..]].concat(),
        "/dify",
        &ports,
    );
    // 1.14.0: collaboration on the api itself, and no /openapi (it is the web's there).
    check_case(
        &lane,
        &kc,
        "ingress-dify-1-14-0",
        &[&sub[..], &["images.dify.tag=1.14.0"]].concat(),
        "/dify",
        &ports,
    );
}
