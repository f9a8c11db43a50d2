//! What the Kubernetes API server would refuse, checked before any API call: names, label and
//! annotation keys and values, resource quantities, requests above limits, empty references.
//! The rules mirror `k8s.io/apimachinery/pkg/util/validation` and the core API validation of
//! Kubernetes 1.34; each problem names the field and, through [`Needle`], lets the caller find
//! the value key that set it.

use serde_json::{Map, Value};

/// What to look for in the values to name the key that caused a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needle {
    /// A mapping key (an annotation or label key).
    Key(String),
    /// A scalar value (a quantity, a name).
    Value(String),
    /// The largest value (two levels deep): what made an object too large.
    Largest,
    /// Either: an environment variable's name is a list entry's `name` in a pod fragment and
    /// a mapping key in `dify.extraEnv`.
    Name(String),
}

/// One refused field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub field: String,
    pub message: String,
    pub needle: Option<Needle>,
}

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
/// `TotalAnnotationSizeLimitB`: keys and values of one object's annotations together.
const TOTAL_ANNOTATION_BYTES: usize = 256 * 1024;

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= DNS1123_LABEL_MAX
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum(c) || c == b'-')
}

/// A DNS-1123 label that starts with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// Dot-separated DNS-1123 labels, at most 253.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= DNS1123_SUBDOMAIN_MAX && s.split('.').all(is_dns1123_label)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most `max`.
fn is_qualified_part(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    let edge = |c: u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= max
        && edge(b[0])
        && edge(b[b.len() - 1])
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// What a label value must be, for messages.
pub const LABEL_VALUE_RULE: &str = "must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";

/// A label key (also a node selector key, toleration key, topology key): see
/// [`qualified_name_problem`].
pub fn label_key_problem(key: &str) -> Option<String> {
    qualified_name_problem(key)
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS-1123 subdomain.
fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns1123_subdomain(p)
    {
        return Some("has a prefix (before '/') that is not a DNS subdomain".into());
    }
    if !is_qualified_part(name, QUALIFIED_NAME_MAX) {
        return Some("is not [prefix/]name with a name of 1-63 letters, digits, '-', '_' or '.' that starts and ends with a letter or digit".into());
    }
    None
}

/// A label value (also a node selector value, a toleration value).
pub fn label_value_ok(v: &str) -> bool {
    v.is_empty() || is_qualified_part(v, LABEL_VALUE_MAX)
}

/// A Kubernetes quantity (`100m`, `1Gi`, `1e3`, `0.5`) as a number, or `None` if the API
/// server would not parse it.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let digits = number.strip_prefix(['+', '-']).unwrap_or(number);
    if digits.is_empty()
        || digits == "."
        || digits.matches('.').count() > 1
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().ok()?;
            if !(-1000..=1000).contains(&e) {
                return None;
            }
            10f64.powi(e)
        }
        _ => return None,
    };
    Some(value * factor)
}

fn quantity_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Checks one object. `kind` decides the rule for `metadata.name`.
pub fn check(kind: &str, body: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(name) = body.pointer("/metadata/name").and_then(Value::as_str) {
        let (ok, rule) = match kind {
            "Service" => (
                is_dns1035_label(name),
                "a DNS-1035 label: at most 63 lowercase letters, digits or '-', starting with a letter",
            ),
            "Namespace" => (
                is_dns1123_label(name),
                "a DNS-1123 label: at most 63 lowercase letters, digits or '-'",
            ),
            _ => (
                is_dns1123_subdomain(name),
                "a DNS subdomain: at most 253 lowercase letters, digits, '-' or '.'",
            ),
        };
        if !ok {
            out.push(Finding {
                field: "metadata.name".into(),
                message: format!("{} must be {rule}", crate::diag::excerpt(name)),
                needle: None,
            });
        }
    }
    if let Some(ns) = body.pointer("/metadata/namespace").and_then(Value::as_str)
        && !is_dns1123_label(ns)
    {
        out.push(Finding {
            field: "metadata.namespace".into(),
            message: format!("{} must be a DNS-1123 label", crate::diag::excerpt(ns)),
            needle: None,
        });
    }
    check_hosts(kind, body, &mut out);
    walk(body, &mut String::new(), &mut out);
    out
}

/// The hosts of an Ingress (rules and TLS) and the hostnames of an HTTPRoute: DNS subdomains,
/// optionally with a leading `*.`, never an address or a port.
fn check_hosts(kind: &str, body: &Value, out: &mut Vec<Finding>) {
    let mut hosts: Vec<(String, &str)> = Vec::new();
    let list = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
    };
    match kind {
        "Ingress" => {
            for (i, rule) in list("/spec/rules").iter().enumerate() {
                if let Some(h) = rule.get("host").and_then(Value::as_str) {
                    hosts.push((format!("spec.rules[{i}].host"), h));
                }
            }
            for (i, tls) in list("/spec/tls").iter().enumerate() {
                for (j, h) in tls
                    .get("hosts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    hosts.push((
                        format!("spec.tls[{i}].hosts[{j}]"),
                        h.as_str().unwrap_or_default(),
                    ));
                }
            }
        }
        "HTTPRoute" => {
            for (i, h) in list("/spec/hostnames").iter().enumerate() {
                hosts.push((
                    format!("spec.hostnames[{i}]"),
                    h.as_str().unwrap_or_default(),
                ));
            }
        }
        _ => {}
    }
    for (field, host) in hosts {
        let name = host.strip_prefix("*.").unwrap_or(host);
        if !is_dns1123_subdomain(name) || name.parse::<std::net::IpAddr>().is_ok() {
            out.push(Finding {
                field,
                message: format!(
                    "{} must be a lowercase DNS name without a port (not an address)",
                    crate::diag::excerpt(host)
                ),
                needle: Some(Needle::Value(host.to_owned())),
            });
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Applies the field rules wherever their fields occur (object metadata, pod templates,
/// volume claim templates, selectors).
fn walk(value: &Value, path: &mut String, out: &mut Vec<Finding>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = join(path, key);
                match (key.as_str(), child) {
                    ("labels" | "matchLabels", Value::Object(labels)) => {
                        check_labels(&here, labels, out)
                    }
                    ("annotations", Value::Object(annotations)) => {
                        check_annotations(&here, annotations, out)
                    }
                    ("resources", Value::Object(resources)) => {
                        check_resources(&here, resources, out)
                    }
                    ("containers" | "initContainers", Value::Array(containers)) => {
                        check_containers(&here, containers, out)
                    }
                    ("imagePullSecrets", Value::Array(refs)) => {
                        for (i, r) in refs.iter().enumerate() {
                            let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                            if !is_dns1123_subdomain(name) {
                                out.push(Finding {
                                    field: format!("{here}[{i}].name"),
                                    message: if name.is_empty() {
                                        "is required (an image pull Secret needs a name)".into()
                                    } else {
                                        format!(
                                            "{} must be a DNS subdomain",
                                            crate::diag::excerpt(name)
                                        )
                                    },
                                    needle: Some(Needle::Value(name.to_owned())),
                                });
                            }
                        }
                    }
                    _ => {
                        let mut next = here;
                        walk(child, &mut next, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let mut next = format!("{path}[{i}]");
                walk(item, &mut next, out);
            }
        }
        // No environment variable, argument or file of a container can hold a NUL: the
        // runtime cuts or refuses it.
        Value::String(s) if s.contains('\0') => out.push(Finding {
            field: path.clone(),
            message: "contains a NUL character, which no environment variable or file of a container can hold".into(),
            needle: Some(Needle::Value(s.clone())),
        }),
        _ => {}
    }
}

fn check_labels(path: &str, labels: &Map<String, Value>, out: &mut Vec<Finding>) {
    for (key, value) in labels {
        if let Some(problem) = qualified_name_problem(key) {
            out.push(Finding {
                field: path.to_owned(),
                message: format!("key {} {problem}", crate::diag::excerpt(key)),
                needle: Some(Needle::Key(key.clone())),
            });
        }
        match value {
            Value::String(v) if label_value_ok(v) => {}
            Value::String(v) => out.push(Finding {
                field: format!("{path}.{key}"),
                message: format!("{} {LABEL_VALUE_RULE}", crate::diag::excerpt(v)),
                needle: Some(Needle::Key(key.clone())),
            }),
            _ => {}
        }
    }
}

fn check_annotations(path: &str, annotations: &Map<String, Value>, out: &mut Vec<Finding>) {
    let mut total = 0;
    for (key, value) in annotations {
        total += key.len() + value.as_str().map_or(0, str::len);
        if let Some(problem) = qualified_name_problem(key) {
            out.push(Finding {
                field: path.to_owned(),
                message: format!("key {} {problem}", crate::diag::excerpt(key)),
                needle: Some(Needle::Key(key.clone())),
            });
        }
    }
    if total > TOTAL_ANNOTATION_BYTES {
        out.push(Finding {
            field: path.to_owned(),
            message: format!(
                "are {total} bytes together; the API server allows at most {TOTAL_ANNOTATION_BYTES}"
            ),
            needle: None,
        });
    }
}

fn check_resources(path: &str, resources: &Map<String, Value>, out: &mut Vec<Finding>) {
    let mut parsed: [Map<String, Value>; 2] = [Map::new(), Map::new()];
    for (i, part) in ["requests", "limits"].iter().enumerate() {
        let Some(Value::Object(items)) = resources.get(*part) else {
            continue;
        };
        for (name, raw) in items {
            let Some(text) = quantity_text(raw) else {
                continue;
            };
            let field = format!("{path}.{part}.{name}");
            match parse_quantity(&text) {
                None => out.push(Finding {
                    field,
                    message: format!(
                        "{} is not a quantity (e.g. 500m, 1, 256Mi, 10Gi)",
                        crate::diag::excerpt(&text)
                    ),
                    needle: Some(Needle::Value(text)),
                }),
                Some(q) if q < 0.0 => out.push(Finding {
                    field,
                    message: format!("{} must not be negative", crate::diag::excerpt(&text)),
                    needle: Some(Needle::Value(text)),
                }),
                // A volume claim that asks for no storage is refused.
                Some(q) if q == 0.0 && name == "storage" && path.ends_with("spec.resources") => out
                    .push(Finding {
                        field,
                        message: format!(
                            "{} must be greater than zero",
                            crate::diag::excerpt(&text)
                        ),
                        needle: Some(Needle::Value(text)),
                    }),
                Some(q) => {
                    parsed[i].insert(name.clone(), Value::from(q));
                }
            }
        }
    }
    let [requests, limits] = &parsed;
    for (name, request) in requests {
        if let (Some(r), Some(l)) = (request.as_f64(), limits.get(name).and_then(Value::as_f64))
            && r > l
        {
            let shown = |part: &str| {
                resources
                    .get(part)
                    .and_then(|m| m.get(name))
                    .and_then(quantity_text)
                    .unwrap_or_default()
            };
            out.push(Finding {
                field: format!("{path}.requests.{name}"),
                message: format!(
                    "{} is more than the limit {}; a request must be less than or equal to its limit",
                    crate::diag::excerpt(&shown("requests")),
                    crate::diag::excerpt(&shown("limits"))
                ),
                needle: Some(Needle::Value(shown("requests"))),
            });
        }
    }
}

fn check_containers(path: &str, containers: &[Value], out: &mut Vec<Finding>) {
    for (i, c) in containers.iter().enumerate() {
        let here = format!("{path}[{i}]");
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        if !is_dns1123_label(name) {
            out.push(Finding {
                field: format!("{here}.name"),
                message: format!("{} must be a DNS-1123 label", crate::diag::excerpt(name)),
                needle: None,
            });
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            out.push(Finding {
                field: format!("{here}.image"),
                message: "is required".into(),
                needle: None,
            });
        }
        for (j, env) in c
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let n = env.get("name").and_then(Value::as_str).unwrap_or_default();
            if n.is_empty() || n.contains('=') || !n.bytes().all(|b| (b' '..=b'~').contains(&b)) {
                out.push(Finding {
                    field: format!("{here}.env[{j}].name"),
                    message: format!(
                        "{} must be printable ASCII characters without '='",
                        crate::diag::excerpt(n)
                    ),
                    needle: Some(Needle::Value(n.to_owned())),
                });
            }
        }
        for (j, port) in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(p) = port.get("containerPort").and_then(Value::as_i64)
                && !(1..=65535).contains(&p)
            {
                out.push(Finding {
                    field: format!("{here}.ports[{j}].containerPort"),
                    message: format!("{p} must be between 1 and 65535"),
                    needle: None,
                });
            }
        }
        // Walk the rest of the container (resources, nested fields).
        if let Value::Object(map) = c {
            let mut rest = map.clone();
            rest.remove("env");
            let mut p = here.clone();
            walk(&Value::Object(rest), &mut p, out);
        }
    }
}

/// Dotted paths in `values` where a needle occurs: the mapping that holds a key, or the key
/// whose value is a scalar. At most three; more would not point anywhere.
pub fn locate(values: &Value, needle: &Needle) -> Vec<String> {
    if *needle == Needle::Largest {
        let mut best: Option<(usize, String)> = None;
        for (k, v) in values.as_object().into_iter().flatten() {
            let children: Vec<(String, &Value)> = match v {
                Value::Object(m) => m.iter().map(|(c, cv)| (format!("{k}.{c}"), cv)).collect(),
                other => vec![(k.clone(), other)],
            };
            for (path, value) in children {
                let size = serde_json::to_string(value).map_or(0, |t| t.len());
                if best.as_ref().is_none_or(|(b, _)| size > *b) {
                    best = Some((size, path));
                }
            }
        }
        return best.map(|(_, p)| vec![p]).unwrap_or_default();
    }
    let mut found = Vec::new();
    locate_in(values, needle, &mut String::new(), &mut found);
    if found.len() > 3 { Vec::new() } else { found }
}

fn locate_in(value: &Value, needle: &Needle, path: &mut String, found: &mut Vec<String>) {
    if found.len() > 3 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = join(path, k);
                match needle {
                    Needle::Key(key) if k == key => found.push(path.clone()),
                    Needle::Name(name) if k == name => found.push(here.clone()),
                    _ => {}
                }
                let mut next = here;
                locate_in(v, needle, &mut next, found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut next = format!("{path}[{i}]");
                locate_in(v, needle, &mut next, found);
            }
        }
        scalar => {
            if let Needle::Value(text) | Needle::Name(text) = needle
                && quantity_text(scalar).as_deref() == Some(text.as_str())
            {
                found.push(path.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_keys() {
        assert!(is_dns1035_label("dify-api"));
        assert!(!is_dns1035_label("1abc-api"));
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(qualified_name_problem("example.com/key_1.x").is_none());
        for bad in ["", "bad key!", "-a", "a/", "Upper.Case/x", &"k".repeat(64)] {
            assert!(qualified_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("0"), Some(0.0));
        for bad in ["", "abc", "1.2.3", "10 Gi", "1Gb", "."] {
            assert_eq!(parse_quantity(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn what_the_server_refuses_is_found() {
        let body = json!({
            "metadata": {"name": "x", "annotations": {"": "a", "bad key!": "b", "ok/key": "c"}},
            "spec": {
                "resources": {"requests": {"storage": "0"}},
                "template": {"spec": {
                    "imagePullSecrets": [{"name": ""}],
                    "containers": [{"name": "c", "image": "i", "resources": {
                        "requests": {"cpu": "2", "memory": "1Gi"},
                        "limits": {"cpu": "1", "memory": "2Gi"}
                    }}]
                }}
            }
        });
        let found = check("Deployment", &body);
        let fields: Vec<&str> = found.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.annotations",
                "metadata.annotations",
                "spec.resources.requests.storage",
                "spec.template.spec.imagePullSecrets[0].name",
                "spec.template.spec.containers[0].resources.requests.cpu",
            ],
            "{found:#?}"
        );
        // A negative control: a valid object has no findings.
        let ok = json!({"metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "dify"}},
            "spec": {"resources": {"requests": {"storage": "1Gi"}}}});
        assert!(check("PersistentVolumeClaim", &ok).is_empty());
    }

    #[test]
    fn needles_find_value_keys() {
        let values =
            json!({"storage": {"size": "0"}, "expose": {"annotations": {"bad key!": "x"}}});
        assert_eq!(
            locate(&values, &Needle::Value("0".into())),
            ["storage.size"]
        );
        assert_eq!(
            locate(&values, &Needle::Key("bad key!".into())),
            ["expose.annotations"]
        );
    }
}
