//! `bootstrap.enabled`: what doctor can check of the model endpoint without running a pod (it
//! is read-only). The key: the Secret the bootstrap Job reads it from exists and holds it (its
//! value is never read into a message). The endpoint: its URL parses, and an in-cluster Service
//! it names exists with its port; one outside the cluster is not reached from here (`difyrender
//! test` sends it a message from the release's namespace). Both are read from the rendered
//! bootstrap Job, so they are what the Job will use.

use super::{Check, unreadable};
use crate::cluster::{Error, ResourceManager};
use crate::release::RenderedRelease;
use serde_json::Value;

const KEY: &str = "bootstrap key";
const ENDPOINT: &str = "bootstrap endpoint";

/// The checks, none when bootstrap is off.
pub(super) async fn bootstrap(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
) -> Result<Vec<Check>, Error> {
    let Some(job) = rendered
        .manifest
        .resources
        .iter()
        .find(|r| r.kind == "Job" && r.component == "bootstrap")
    else {
        return Ok(Vec::new());
    };
    let ns = &rendered.release.namespace;
    let env = job
        .body
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    let value = |name: &str| {
        var(name)
            .and_then(|e| e["value"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let key = key(mgr, rendered, ns, var("PROVIDER_API_KEY")).await?;
    let url = value("PROVIDER_URL");
    let endpoint = endpoint(mgr, ns, &value("PROVIDER_TYPE"), &url).await?;
    let mut checks = vec![key, endpoint];
    let target = if url.is_empty() {
        parse_url("https://api.openai.com/v1")
    } else {
        parse_url(&url)
    };
    if let Ok(target) = target {
        checks.push(egress(mgr, rendered, ns, &target).await?);
    }
    Ok(checks)
}

const EGRESS: &str = "bootstrap egress";

/// The model calls leave from the plugin daemon's pod: the namespace's NetworkPolicies that
/// select it and restrict its egress must allow the endpoint's port (and DNS for a host name).
/// Their destinations (`to`) are not evaluated: a policy can name no host.
async fn egress(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    ns: &str,
    target: &Url,
) -> Result<Check, Error> {
    let labels = rendered
        .manifest
        .resources
        .iter()
        .find(|r| r.kind == "Deployment" && r.component == "plugin-daemon")
        .and_then(|r| r.body.pointer("/spec/template/metadata/labels").cloned())
        .unwrap_or_default();
    let api: kube::Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        kube::Api::namespaced(mgr.client().clone(), ns);
    let policies = match api.list(&kube::api::ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            let what = format!("the NetworkPolicies of namespace {ns}");
            return unreadable(EGRESS, &what, Error::from_kube(&what, "list", e));
        }
    };
    let restricting: Vec<Value> = policies
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .filter(|p| restricts_egress(p) && selects(&p["spec"]["podSelector"], &labels))
        .collect();
    if restricting.is_empty() {
        return Ok(Check::pass(
            EGRESS,
            "no NetworkPolicy restricts the plugin daemon's egress",
        ));
    }
    let names: Vec<&str> = restricting
        .iter()
        .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    let rules: Vec<&Value> = restricting
        .iter()
        .flat_map(|p| p["spec"]["egress"].as_array().into_iter().flatten())
        .collect();
    let who = format!(
        "NetworkPolicy {} restrict(s) the plugin daemon's egress",
        names.join(", ")
    );
    // Through a Service the policy sees its pods' port (targetPort), which the URL does not
    // give: only a name outside the cluster or an address is judged by port.
    let through_service = in_cluster(&target.host, ns).is_some_and(|(_, _, certain)| certain);
    if through_service {
        let dns = rules
            .iter()
            .any(|r| allows_port(r, 53, "UDP") || allows_port(r, 53, "TCP"));
        return Ok(if dns {
            Check::pass(
                EGRESS,
                format!("{who}; a rule allows DNS; the Service's pod port is not evaluated"),
            )
        } else {
            Check::fail(
                EGRESS,
                format!(
                    "{who} and no rule allows DNS (port 53): {} would not resolve",
                    target.host
                ),
            )
            .fix("add an egress rule for UDP and TCP port 53 to the cluster's DNS")
        });
    }
    if !rules.iter().any(|r| allows_port(r, target.port, "TCP")) {
        return Ok(Check::fail(
            EGRESS,
            format!(
                "{who} and no rule allows TCP port {} (the model endpoint's): the plugin's calls would be dropped",
                target.port
            ),
        )
        .fix(format!(
            "add an egress rule for TCP port {} (with an ipBlock of the endpoint's address, or to its Service's pods)",
            target.port
        )));
    }
    let is_name = target.host.parse::<std::net::IpAddr>().is_err();
    if is_name
        && !rules
            .iter()
            .any(|r| allows_port(r, 53, "UDP") || allows_port(r, 53, "TCP"))
    {
        return Ok(Check::fail(
            EGRESS,
            format!(
                "{who} and no rule allows DNS (port 53): the endpoint's name {} would not resolve",
                target.host
            ),
        )
        .fix("add an egress rule for UDP and TCP port 53 to the cluster's DNS"));
    }
    Ok(Check::pass(
        EGRESS,
        format!(
            "{who}; a rule allows TCP port {}{} (its destinations are not evaluated)",
            target.port,
            if is_name { " and DNS" } else { "" }
        ),
    ))
}

/// Whether a NetworkPolicy restricts egress: `Egress` in its policyTypes, or, without them, an
/// `egress` section.
fn restricts_egress(policy: &Value) -> bool {
    match policy["spec"]["policyTypes"].as_array() {
        Some(types) => types.iter().any(|t| t == "Egress"),
        None => policy["spec"].get("egress").is_some(),
    }
}

/// Whether a label selector selects `labels` (an empty selector selects every pod).
fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let by_expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => label(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                _ => false,
            }
        });
    by_labels && by_expressions
}

/// Whether an egress rule allows `port`/`protocol`: no `ports` allows every port; a named port
/// cannot be judged from here and counts as allowing it.
fn allows_port(rule: &Value, port: u16, protocol: &str) -> bool {
    let Some(ports) = rule["ports"].as_array().filter(|p| !p.is_empty()) else {
        return true;
    };
    ports.iter().any(|p| {
        let proto_ok = p["protocol"].as_str().unwrap_or("TCP") == protocol;
        let port_ok = match &p["port"] {
            Value::Null => true,
            Value::String(_) => true,
            v => {
                let from = v.as_u64().unwrap_or(0);
                let to = p["endPort"].as_u64().unwrap_or(from);
                (from..=to).contains(&u64::from(port))
            }
        };
        proto_ok && port_ok
    })
}

async fn key(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    ns: &str,
    var: Option<Value>,
) -> Result<Check, Error> {
    let reference = var
        .as_ref()
        .and_then(|e| e.pointer("/valueFrom/secretKeyRef"))
        .cloned()
        .unwrap_or_default();
    let (Some(name), Some(key)) = (reference["name"].as_str(), reference["key"].as_str()) else {
        return Ok(Check::fail(
            KEY,
            "the bootstrap Job reads no API key from a Secret",
        ));
    };
    let what = format!("Secret {ns}/{name}");
    // The release's own keys Secret is written by apply: its keys are in the render.
    if let Some(own) = rendered
        .manifest
        .resources
        .iter()
        .find(|r| r.kind == "Secret" && r.name == name)
    {
        return Ok(if has_key(&own.body, key) {
            Check::pass(
                KEY,
                format!("{key} is in the release's {what}, which apply writes"),
            )
        } else {
            Check::fail(KEY, format!("the release's {what} has no {key}")).fix(
                "set secrets.openaiApiKey (in a values file), or bootstrap.provider.apiKeySecret",
            )
        });
    }
    let secret = match mgr.get_object("v1", "Secret", Some(ns), name).await {
        Ok(s) => s,
        Err(e) => return unreadable(KEY, &what, e),
    };
    let fix = format!(
        "kubectl create secret generic {name} -n {ns} --from-file={key}=<file holding the key>"
    );
    // apiKeySecret.optional: without the key the Job sets up no model provider, and says so.
    if reference["optional"] == true && !secret.as_ref().is_some_and(|s| has_key(s, key)) {
        return Ok(Check::warn(
            KEY,
            format!("{what} gives no {key} (optional): the bootstrap Job will set up no model provider, default model or smoke test"),
        )
        .fix(fix));
    }
    Ok(match secret {
        None => Check::fail(
            KEY,
            format!("{what} does not exist: the bootstrap Job could not start (its key {key} is read from it)"),
        )
        .fix(fix),
        Some(s) if !has_key(&s, key) => Check::fail(
            KEY,
            format!("{what} has no key {key} (or it is empty): the bootstrap Job could not start"),
        )
        .fix(fix),
        Some(_) => Check::pass(KEY, format!("{what} holds {key}")),
    })
}

/// Whether a Secret has a non-empty `key` in `data` or `stringData`.
fn has_key(secret: &Value, key: &str) -> bool {
    ["data", "stringData"].iter().any(|field| {
        secret[field][key]
            .as_str()
            .is_some_and(|v| !v.trim().is_empty())
    })
}

/// What doctor reads from an endpoint URL.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Url {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

/// `scheme://[user@]host[:port][/path]`, scheme http or https; the reason otherwise.
pub(super) fn parse_url(url: &str) -> Result<Url, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "it has no scheme (http:// or https://)".to_owned())?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(format!("its scheme {scheme} is not http or https")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| "its IPv6 address has no closing ]".to_owned())?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host".into());
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
    {
        return Err(format!("its host {host:?} is not a host name or address"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("its port {p:?} is not a port number"))?,
    };
    Ok(Url {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// The Service a host names inside the cluster: `svc.ns.svc[.<cluster domain>]`, or a single
/// label (a Service of the release's namespace, through the pod's search path). The bool says
/// whether the name can only be a Service.
fn in_cluster<'a>(host: &'a str, ns: &'a str) -> Option<(&'a str, &'a str, bool)> {
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() >= 3 && labels[2] == "svc" {
        return Some((labels[0], labels[1], true));
    }
    if labels.len() == 1 && host.parse::<std::net::Ipv6Addr>().is_err() {
        return Some((labels[0], ns, false));
    }
    None
}

async fn endpoint(
    mgr: &ResourceManager,
    ns: &str,
    provider: &str,
    url: &str,
) -> Result<Check, Error> {
    let not_reached = "doctor does not reach it (no pod); difyrender test sends it a message from the release's namespace";
    if url.is_empty() {
        return Ok(Check::pass(
            ENDPOINT,
            format!(
                "{provider}: https://api.openai.com, on the internet: the plugin daemon needs egress to it; {not_reached}"
            ),
        ));
    }
    let parsed = match parse_url(url) {
        Ok(u) => u,
        Err(why) => {
            return Ok(Check::fail(
                ENDPOINT,
                format!("the endpoint URL {url:?} cannot be used: {why}"),
            )
            .fix("set bootstrap.provider.endpointUrl (or baseUrl) to an http:// or https:// URL"));
        }
    };
    let Some((svc, svc_ns, certain)) = in_cluster(&parsed.host, ns) else {
        if parsed.scheme == "http" {
            return Ok(Check::warn(
                ENDPOINT,
                format!(
                    "{url} is outside the cluster over plain http: the API key travels unencrypted; {not_reached}"
                ),
            )
            .fix("use the endpoint's https:// URL"));
        }
        return Ok(Check::pass(
            ENDPOINT,
            format!("{url} is outside the cluster; {not_reached}"),
        ));
    };
    let what = format!("Service {svc_ns}/{svc}");
    let service = match mgr.get_object("v1", "Service", Some(svc_ns), svc).await {
        Ok(s) => s,
        Err(e) => return unreadable(ENDPOINT, &what, e),
    };
    let Some(service) = service else {
        let reason = format!("{url} names {what}, which does not exist");
        return Ok(if certain {
            Check::fail(ENDPOINT, reason)
        } else {
            Check::warn(
                ENDPOINT,
                format!(
                    "{reason} (unless the host name resolves through the node's search domains)"
                ),
            )
        }
        .fix("deploy the model's Service first, or correct the endpoint URL"));
    };
    if service.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return Ok(Check::pass(
            ENDPOINT,
            format!("{url}: {what} exists (ExternalName); {not_reached}"),
        ));
    }
    let ports: Vec<u64> = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p["port"].as_u64())
        .collect();
    if !ports.contains(&u64::from(parsed.port)) {
        let list: Vec<String> = ports.iter().map(u64::to_string).collect();
        return Ok(Check::fail(
            ENDPOINT,
            format!(
                "{url} names port {} of {what}, which serves {}",
                parsed.port,
                if list.is_empty() {
                    "no port".to_owned()
                } else {
                    format!("port {}", list.join(", "))
                }
            ),
        )
        .fix("correct the port in the endpoint URL"));
    }
    Ok(Check::pass(
        ENDPOINT,
        format!(
            "{url}: {what} exists with port {}; {not_reached}",
            parsed.port
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_or_say_why() {
        let u = |s: &str| parse_url(s);
        assert_eq!(
            u("https://NAI.example.com/api/v1").unwrap(),
            Url {
                scheme: "https".into(),
                host: "nai.example.com".into(),
                port: 443
            }
        );
        assert_eq!(u("http://vllm.models.svc:8000/v1").unwrap().port, 8000);
        assert_eq!(u("http://[fd00::1]:9000/v1").unwrap().host, "fd00::1");
        assert_eq!(u("http://user@h:81").unwrap().port, 81);
        assert!(u("nai.example.com/v1").unwrap_err().contains("no scheme"));
        assert!(u("ftp://h/").unwrap_err().contains("scheme ftp"));
        assert!(u("https://h:99999/").unwrap_err().contains("not a port"));
        assert!(u("https:///v1").unwrap_err().contains("no host"));
        assert!(u("https://a b/").unwrap_err().contains("not a host"));
    }

    #[test]
    fn selectors_and_ports_are_read_as_kubernetes_reads_them() {
        let labels = serde_json::json!({"app.kubernetes.io/component": "plugin-daemon", "app.kubernetes.io/instance": "dify"});
        let sel = |s: &str| selects(&serde_json::from_str(s).unwrap(), &labels);
        assert!(sel("{}"));
        assert!(sel(
            r#"{"matchLabels": {"app.kubernetes.io/component": "plugin-daemon"}}"#
        ));
        assert!(!sel(
            r#"{"matchLabels": {"app.kubernetes.io/component": "web"}}"#
        ));
        assert!(sel(
            r#"{"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": ["api", "plugin-daemon"]}]}"#
        ));
        assert!(!sel(
            r#"{"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["plugin-daemon"]}]}"#
        ));
        assert!(sel(
            r#"{"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}"#
        ));
        assert!(!sel(
            r#"{"matchExpressions": [{"key": "tier", "operator": "Exists"}]}"#
        ));
        let rule = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert!(allows_port(&rule("{}"), 443, "TCP"));
        assert!(allows_port(
            &rule(r#"{"ports": [{"port": 443}]}"#),
            443,
            "TCP"
        ));
        assert!(!allows_port(
            &rule(r#"{"ports": [{"port": 443}]}"#),
            53,
            "UDP"
        ));
        assert!(allows_port(
            &rule(r#"{"ports": [{"port": 8000, "endPort": 9000}]}"#),
            8443,
            "TCP"
        ));
        assert!(!allows_port(
            &rule(r#"{"ports": [{"port": 443, "protocol": "UDP"}]}"#),
            443,
            "TCP"
        ));
        assert!(allows_port(
            &rule(r#"{"ports": [{"port": "https"}]}"#),
            443,
            "TCP"
        ));
        assert!(restricts_egress(&rule(
            r#"{"spec": {"policyTypes": ["Ingress", "Egress"]}}"#
        )));
        assert!(!restricts_egress(&rule(
            r#"{"spec": {"policyTypes": ["Ingress"], "egress": []}}"#
        )));
        assert!(restricts_egress(&rule(r#"{"spec": {"egress": []}}"#)));
    }

    #[test]
    fn in_cluster_names_are_services() {
        assert_eq!(
            in_cluster("vllm.models.svc", "dify"),
            Some(("vllm", "models", true))
        );
        assert_eq!(
            in_cluster("vllm.models.svc.cluster.local", "dify"),
            Some(("vllm", "models", true))
        );
        assert_eq!(in_cluster("vllm", "dify"), Some(("vllm", "dify", false)));
        assert_eq!(in_cluster("nai.example.com", "dify"), None);
        assert_eq!(in_cluster("10.0.0.5", "dify"), None);
    }
}
