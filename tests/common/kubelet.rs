//! What the kubelet makes of a rendered pod: each container's environment (literal values,
//! `secretKeyRef`, `configMapKeyRef`, `$(VAR)` expansion) and its command line, read from the
//! rendered manifest. Used by the runtime lane (tests/runtime.rs) to start real programs with
//! exactly the environment Kubernetes would give them.

use difyrender::manifest::{Manifest, Resource};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Probe, Secret, Service};
use std::collections::{BTreeMap, HashMap};

/// The object `kind/name` of the manifest.
pub fn find<'a>(m: &'a Manifest, kind: &str, name: &str) -> &'a Resource {
    m.resources
        .iter()
        .find(|r| r.kind == kind && r.name == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is rendered"))
}

/// A workload's pod template: its labels and spec.
pub fn pod_template(r: &Resource) -> (BTreeMap<String, String>, PodSpec) {
    let template = match r.kind.as_str() {
        "Deployment" => r.to_typed::<Deployment>().unwrap().spec.unwrap().template,
        "StatefulSet" => r.to_typed::<StatefulSet>().unwrap().spec.unwrap().template,
        "Job" => r.to_typed::<Job>().unwrap().spec.unwrap().template,
        other => panic!("{other}/{} has no pod template", r.name),
    };
    let labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
    (labels, template.spec.unwrap())
}

/// The pod spec of workload `kind/name`.
pub fn pod(m: &Manifest, kind: &str, name: &str) -> PodSpec {
    pod_template(find(m, kind, name)).1
}

/// The (init) container `name` of a pod.
pub fn container<'a>(p: &'a PodSpec, name: &str) -> &'a Container {
    p.containers
        .iter()
        .chain(p.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("the pod has a container {name}"))
}

/// The first Job whose name starts with `prefix` (Job names end in a hash of their template).
pub fn job_named<'a>(m: &'a Manifest, prefix: &str) -> &'a Resource {
    m.resources
        .iter()
        .find(|r| r.kind == "Job" && r.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("a Job {prefix}* is rendered"))
}

/// The value of `key` in Secret `name`: one of `extra` (Secrets the namespace holds besides the
/// rendered ones, such as an operator's credentials), or else a rendered one.
fn secret_value(m: &Manifest, extra: &[Secret], name: &str, key: &str) -> String {
    let secret: Secret = match extra
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
    {
        Some(s) => s.clone(),
        None => find(m, "Secret", name).to_typed().unwrap(),
    };
    if let Some(v) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
        return v.clone();
    }
    let data = secret.data.unwrap_or_default();
    let bytes = data
        .get(key)
        .unwrap_or_else(|| panic!("Secret {name} has key {key}"));
    String::from_utf8(bytes.0.clone()).unwrap()
}

/// Every key of Secret `name` with its bytes (`stringData` over `data`, as the API server
/// merges them).
pub fn secret_data(m: &Manifest, name: &str) -> BTreeMap<String, Vec<u8>> {
    let secret: Secret = find(m, "Secret", name).to_typed().unwrap();
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        out.insert(k, v.into_bytes());
    }
    out
}

/// Adds Secret `name` with `data` to the manifest, as an operator creates a Secret in the
/// release's namespace before installing (a CA, credentials): the kubelet then resolves
/// `secretKeyRef`s and Secret volumes against it like a rendered one.
pub fn add_secret(m: &mut Manifest, name: &str, namespace: &str, data: &[(&str, &[u8])]) {
    use base64::Engine;
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(v);
            (k.to_string(), serde_json::Value::String(encoded))
        })
        .collect();
    m.resources.push(Resource {
        api_version: "v1".into(),
        kind: "Secret".into(),
        name: name.into(),
        namespace: Some(namespace.into()),
        component: "test".into(),
        stage: m
            .resources
            .iter()
            .find(|r| r.kind == "Secret")
            .unwrap()
            .stage,
        template: "(test)".into(),
        body: serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "data": data,
        }),
    });
}

/// The value of `key` in ConfigMap `name`.
pub fn config_map_value(m: &Manifest, name: &str, key: &str) -> String {
    let cm: ConfigMap = find(m, "ConfigMap", name).to_typed().unwrap();
    cm.data
        .unwrap_or_default()
        .get(key)
        .unwrap_or_else(|| panic!("ConfigMap {name} has key {key}"))
        .clone()
}

/// Kubernetes' `$(VAR)` expansion (third_party/forked/golang/expansion): `$$` is a literal `$`,
/// `$(NAME)` is NAME's value when `lookup` knows it and stays as written otherwise, an
/// unterminated `$(` and any other `$` stay literal.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::new();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match bytes[cursor + 1] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&format!("$({name})")),
                        }
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // `$x`: both characters are kept (the next one is re-read only if it
                    // is not consumed here, as upstream does).
                    let c = rest.chars().next().unwrap();
                    out.push('$');
                    out.push(c);
                    c.len_utf8()
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    out
}

/// A container's environment as the kubelet builds it: in order, each value expanded against
/// the variables defined before it (a later entry of one name replaces the earlier one).
pub fn container_env(m: &Manifest, c: &Container) -> Vec<(String, String)> {
    container_env_with(m, c, &[])
}

/// [`container_env`] in a namespace that also holds the Secrets `extra` (not rendered: created
/// by the operator), which `secretKeyRef`s may name.
pub fn container_env_with(m: &Manifest, c: &Container, extra: &[Secret]) -> Vec<(String, String)> {
    let mut defined: HashMap<String, String> = HashMap::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for var in c.env.iter().flatten() {
        let value = match &var.value_from {
            Some(from) => {
                if let Some(r) = &from.secret_key_ref {
                    secret_value(m, extra, &r.name, &r.key)
                } else if let Some(r) = &from.config_map_key_ref {
                    config_map_value(m, &r.name, &r.key)
                } else {
                    panic!("{}: {}: unsupported valueFrom", c.name, var.name)
                }
            }
            None => expand(var.value.as_deref().unwrap_or_default(), &|n| {
                defined.get(n).cloned()
            }),
        };
        defined.insert(var.name.clone(), value.clone());
        match out.iter_mut().find(|(n, _)| *n == var.name) {
            Some(entry) => entry.1 = value,
            None => out.push((var.name.clone(), value)),
        }
    }
    out
}

/// The value of `name` in an environment built by [`container_env`].
pub fn env_get<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    env.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("the container has {name}"))
}

/// `command` and `args` expanded against the container's environment; `image` is the image's
/// own ENTRYPOINT + CMD, used where the pod spec leaves them out (as the runtime does: `args`
/// alone replace the image's CMD and keep its ENTRYPOINT).
pub fn command_line(
    c: &Container,
    env: &[(String, String)],
    entrypoint: &[&str],
    cmd: &[&str],
) -> Vec<String> {
    let lookup = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let expand_all = |v: &Vec<String>| v.iter().map(|s| expand(s, &lookup)).collect::<Vec<_>>();
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match (&c.command, &c.args) {
        (Some(command), args) => {
            let mut line = expand_all(command);
            line.extend(args.as_ref().map(expand_all).unwrap_or_default());
            line
        }
        (None, Some(args)) => {
            let mut line = own(entrypoint);
            line.extend(expand_all(args));
            line
        }
        (None, None) => {
            let mut line = own(entrypoint);
            line.extend(own(cmd));
            line
        }
    }
}

/// A container's readiness probe, with named ports resolved to numbers.
pub fn readiness(c: &Container) -> (Probe, Option<i32>) {
    let probe = c
        .readiness_probe
        .clone()
        .unwrap_or_else(|| panic!("{} has a readiness probe", c.name));
    let port = probe
        .http_get
        .as_ref()
        .map(|h| h.port.clone())
        .or_else(|| probe.tcp_socket.as_ref().map(|t| t.port.clone()))
        .map(|p| container_port(c, &p));
    (probe, port)
}

/// The number of a container port given by number or by name.
pub fn container_port(
    c: &Container,
    port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
) -> i32 {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{} has a port named {name}", c.name))
                .container_port
        }
    }
}

/// Every Service of the manifest with its selector and ports (port, target).
pub fn services(m: &Manifest) -> Vec<(String, BTreeMap<String, String>, Service)> {
    m.resources
        .iter()
        .filter(|r| r.kind == "Service")
        .map(|r| {
            let svc: Service = r.to_typed().unwrap();
            let selector = svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default();
            (r.name.clone(), selector, svc)
        })
        .collect()
}
