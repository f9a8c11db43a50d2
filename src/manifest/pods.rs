//! Checks on the pod templates of workloads that the typed structs cannot express.

use super::validate::{self, Finding, Needle};
use crate::diag::excerpt;
use serde_json::Value;
use std::collections::BTreeSet;

/// The pod spec of a Deployment, StatefulSet, DaemonSet or Job.
pub fn pod_spec(body: &Value) -> Option<&Value> {
    body.pointer("/spec/template/spec")
}

/// Every container of an object's pod template, init containers first; none for other kinds.
pub fn containers(body: &Value) -> impl Iterator<Item = &Value> {
    let spec = pod_spec(body);
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(move |list| {
            spec.and_then(|s| s.get(list))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
}

/// Every container (init containers included) that defines an environment variable twice.
/// Kubernetes accepts it and the last entry wins silently, so a value the chart relies on
/// could be replaced without anyone seeing it.
pub fn duplicate_env(body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for container in containers(body) {
        let mut seen = BTreeSet::new();
        let env = container.get("env").and_then(Value::as_array);
        for name in env
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("name")?.as_str())
        {
            if !seen.insert(name) {
                let container = container.get("name").and_then(Value::as_str).unwrap_or("?");
                problems.push(format!(
                    "container {container} defines the environment variable {name} twice"
                ));
            }
        }
    }
    problems
}

/// What the API server refuses in a pod template that typed deserialization lets through:
/// scheduling fragments (node selectors, tolerations, affinity, topology spread), volumes and
/// their mounts, and environment entries. The rules are those of the core API validation of
/// Kubernetes 1.34 (`ValidatePodSpec`), taken from [`validate`]'s name rules.
pub fn pod_findings(body: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(spec) = pod_spec(body) else {
        return out;
    };
    let base = "spec.template.spec";
    check_ids(
        &format!("{base}.securityContext"),
        spec.get("securityContext"),
        &mut out,
    );
    check_node_selector(base, spec, &mut out);
    check_tolerations(base, spec, &mut out);
    check_affinity(base, spec, &mut out);
    check_topology(base, spec, &mut out);
    let mut volumes = check_volumes(base, spec, &mut out);
    // A StatefulSet's claim templates are volumes of its pods too.
    for claim in body
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = claim.pointer("/metadata/name").and_then(Value::as_str) {
            volumes.insert(n.to_owned());
        }
    }
    for list in ["initContainers", "containers"] {
        for (i, c) in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let here = format!("{base}.{list}[{i}]");
            check_ids(
                &format!("{here}.securityContext"),
                c.get("securityContext"),
                &mut out,
            );
            check_mounts(&here, c, &volumes, &mut out);
            check_env(&here, c, &mut out);
        }
    }
    out
}

fn finding(field: String, message: String, needle: Option<Needle>) -> Finding {
    Finding {
        field,
        message,
        needle,
    }
}

fn items<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// User and group ids of a security context: 0 to 2147483647, as the API server requires.
fn check_ids(field: &str, context: Option<&Value>, out: &mut Vec<Finding>) {
    let Some(context) = context else {
        return;
    };
    let ok = |v: &Value| {
        v.as_i64()
            .is_some_and(|n| (0..=i64::from(i32::MAX)).contains(&n))
    };
    for key in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(v) = context.get(key).filter(|v| !v.is_null())
            && !ok(v)
        {
            out.push(finding(
                format!("{field}.{key}"),
                format!("{v} must be between 0 and 2147483647"),
                Some(Needle::Key(key.into())),
            ));
        }
    }
    for (i, v) in items(context, "supplementalGroups") {
        if !ok(v) {
            out.push(finding(
                format!("{field}.supplementalGroups[{i}]"),
                format!("{v} must be between 0 and 2147483647"),
                Some(Needle::Key("supplementalGroups".into())),
            ));
        }
    }
}

fn check_node_selector(base: &str, spec: &Value, out: &mut Vec<Finding>) {
    let Some(Value::Object(selector)) = spec.get("nodeSelector") else {
        return;
    };
    for (key, value) in selector {
        let field = format!("{base}.nodeSelector");
        if let Some(problem) = validate::label_key_problem(key) {
            out.push(finding(
                field.clone(),
                format!("key {} {problem}", excerpt(key)),
                Some(Needle::Key(key.clone())),
            ));
        }
        if let Some(v) = value.as_str()
            && !validate::label_value_ok(v)
        {
            out.push(finding(
                format!("{field}.{key}"),
                format!("{} {}", excerpt(v), validate::LABEL_VALUE_RULE),
                Some(Needle::Key(key.clone())),
            ));
        }
    }
}

fn check_tolerations(base: &str, spec: &Value, out: &mut Vec<Finding>) {
    for (i, t) in items(spec, "tolerations") {
        let field = format!("{base}.tolerations[{i}]");
        let (key, operator, value, effect) = (
            text(t, "key"),
            text(t, "operator"),
            text(t, "value"),
            text(t, "effect"),
        );
        let needle = || Some(Needle::Value(key.to_owned()));
        let mut bad = |what: &str, message: String| {
            out.push(finding(format!("{field}{what}"), message, needle()));
        };
        if !key.is_empty()
            && let Some(problem) = validate::label_key_problem(key)
        {
            bad(".key", format!("{} {problem}", excerpt(key)));
        }
        match operator {
            "" | "Equal" => {
                if key.is_empty() {
                    bad(
                        ".operator",
                        "must be Exists when the key is empty (a toleration of every taint)".into(),
                    );
                }
                if !validate::label_value_ok(value) {
                    bad(
                        ".value",
                        format!("{} {}", excerpt(value), validate::LABEL_VALUE_RULE),
                    );
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    bad(".value", "must be empty when the operator is Exists".into());
                }
            }
            other => bad(
                ".operator",
                format!("{} must be Equal or Exists", excerpt(other)),
            ),
        }
        if !matches!(effect, "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            bad(
                ".effect",
                format!(
                    "{} must be NoSchedule, PreferNoSchedule or NoExecute (or empty: every effect)",
                    excerpt(effect)
                ),
            );
        }
        if t.get("tolerationSeconds").is_some_and(|s| !s.is_null()) && effect != "NoExecute" {
            bad(
                ".tolerationSeconds",
                "is only allowed with the effect NoExecute".into(),
            );
        }
    }
}

fn check_selector_requirements(field: &str, term: &Value, out: &mut Vec<Finding>, node: bool) {
    for list in ["matchExpressions", "matchFields"] {
        for (j, r) in items(term, list) {
            let here = format!("{field}.{list}[{j}]");
            let key = text(r, "key");
            let needle = || Some(Needle::Value(key.to_owned()));
            if list == "matchExpressions"
                && let Some(problem) = validate::label_key_problem(key)
            {
                out.push(finding(
                    format!("{here}.key"),
                    format!("{} {problem}", excerpt(key)),
                    needle(),
                ));
            }
            let values = r
                .get("values")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let operator = text(r, "operator");
            let rule = match operator {
                "In" | "NotIn" => (values > 0).then_some(()).ok_or("needs at least one value"),
                "Exists" | "DoesNotExist" => (values == 0).then_some(()).ok_or("takes no values"),
                "Gt" | "Lt" if node => (values == 1).then_some(()).ok_or("takes exactly one value"),
                _ => Err(if node {
                    "must be In, NotIn, Exists, DoesNotExist, Gt or Lt"
                } else {
                    "must be In, NotIn, Exists or DoesNotExist"
                }),
            };
            if let Err(why) = rule {
                out.push(finding(
                    format!("{here}.operator"),
                    format!("{} {why}", excerpt(operator)),
                    needle(),
                ));
            }
        }
    }
}

fn check_weight(field: &str, term: &Value, out: &mut Vec<Finding>) {
    let weight = term.get("weight").and_then(Value::as_i64).unwrap_or(0);
    if !(1..=100).contains(&weight) {
        out.push(finding(
            format!("{field}.weight"),
            "must be between 1 and 100".into(),
            Some(Needle::Key("weight".into())),
        ));
    }
}

fn check_affinity(base: &str, spec: &Value, out: &mut Vec<Finding>) {
    let Some(affinity) = spec.get("affinity") else {
        return;
    };
    let field = format!("{base}.affinity");
    if let Some(node) = affinity.get("nodeAffinity") {
        let here = format!("{field}.nodeAffinity");
        if let Some(required) = node.get("requiredDuringSchedulingIgnoredDuringExecution") {
            let terms = required
                .get("nodeSelectorTerms")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            if terms.is_empty() {
                out.push(finding(
                    format!(
                        "{here}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
                    ),
                    "must have at least one term".into(),
                    Some(Needle::Key("nodeSelectorTerms".into())),
                ));
            }
            for (i, term) in terms.iter().enumerate() {
                check_selector_requirements(
                    &format!(
                        "{here}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]"
                    ),
                    term,
                    out,
                    true,
                );
            }
        }
        for (i, pref) in items(node, "preferredDuringSchedulingIgnoredDuringExecution") {
            let p = format!("{here}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            check_weight(&p, pref, out);
            if let Some(term) = pref.get("preference") {
                check_selector_requirements(&format!("{p}.preference"), term, out, true);
            }
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(pod) = affinity.get(kind) else {
            continue;
        };
        let here = format!("{field}.{kind}");
        let check_term = |p: &str, term: &Value, out: &mut Vec<Finding>| {
            let key = text(term, "topologyKey");
            if key.is_empty() {
                out.push(finding(
                    format!("{p}.topologyKey"),
                    "is required".into(),
                    Some(Needle::Key(kind.into())),
                ));
            } else if let Some(problem) = validate::label_key_problem(key) {
                out.push(finding(
                    format!("{p}.topologyKey"),
                    format!("{} {problem}", excerpt(key)),
                    Some(Needle::Value(key.to_owned())),
                ));
            }
            if let Some(selector) = term.get("labelSelector") {
                check_selector_requirements(&format!("{p}.labelSelector"), selector, out, false);
            }
        };
        for (i, term) in items(pod, "requiredDuringSchedulingIgnoredDuringExecution") {
            check_term(
                &format!("{here}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"),
                term,
                out,
            );
        }
        for (i, pref) in items(pod, "preferredDuringSchedulingIgnoredDuringExecution") {
            let p = format!("{here}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            check_weight(&p, pref, out);
            match pref.get("podAffinityTerm") {
                Some(term) => check_term(&format!("{p}.podAffinityTerm"), term, out),
                None => out.push(finding(
                    format!("{p}.podAffinityTerm"),
                    "is required".into(),
                    Some(Needle::Key(kind.into())),
                )),
            }
        }
    }
}

fn check_topology(base: &str, spec: &Value, out: &mut Vec<Finding>) {
    let mut seen = BTreeSet::new();
    for (i, c) in items(spec, "topologySpreadConstraints") {
        let field = format!("{base}.topologySpreadConstraints[{i}]");
        let needle = || Some(Needle::Key("maxSkew".into()));
        let skew = c.get("maxSkew").and_then(Value::as_i64).unwrap_or(0);
        if skew < 1 {
            out.push(finding(
                format!("{field}.maxSkew"),
                "must be greater than zero".into(),
                needle(),
            ));
        }
        let key = text(c, "topologyKey");
        if key.is_empty() {
            out.push(finding(
                format!("{field}.topologyKey"),
                "is required".into(),
                needle(),
            ));
        } else if let Some(problem) = validate::label_key_problem(key) {
            out.push(finding(
                format!("{field}.topologyKey"),
                format!("{} {problem}", excerpt(key)),
                needle(),
            ));
        }
        let when = text(c, "whenUnsatisfiable");
        if !matches!(when, "DoNotSchedule" | "ScheduleAnyway") {
            out.push(finding(
                format!("{field}.whenUnsatisfiable"),
                format!("{} must be DoNotSchedule or ScheduleAnyway", excerpt(when)),
                needle(),
            ));
        }
        if let Some(min) = c.get("minDomains").filter(|m| !m.is_null()) {
            if min.as_i64().is_none_or(|m| m < 1) {
                out.push(finding(
                    format!("{field}.minDomains"),
                    "must be greater than zero".into(),
                    needle(),
                ));
            } else if when != "DoNotSchedule" {
                out.push(finding(
                    format!("{field}.minDomains"),
                    "is only allowed with whenUnsatisfiable DoNotSchedule".into(),
                    needle(),
                ));
            }
        }
        if !seen.insert((key.to_owned(), when.to_owned())) {
            out.push(finding(
                field,
                format!(
                    "repeats the pair topologyKey {} and whenUnsatisfiable {}",
                    excerpt(key),
                    excerpt(when)
                ),
                needle(),
            ));
        }
    }
}

/// The names of the pod's volumes, after checking each has a unique DNS-label name and one
/// source.
fn check_volumes(base: &str, spec: &Value, out: &mut Vec<Finding>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, v) in items(spec, "volumes") {
        let field = format!("{base}.volumes[{i}]");
        let name = text(v, "name");
        let needle = || Some(Needle::Value(name.to_owned()));
        if !validate::is_dns1123_label(name) {
            out.push(finding(
                format!("{field}.name"),
                format!("{} must be a DNS-1123 label", excerpt(name)),
                needle(),
            ));
        }
        if !names.insert(name.to_owned()) {
            out.push(finding(
                format!("{field}.name"),
                format!(
                    "{} is the name of another volume of the pod (the chart's volumes include it)",
                    excerpt(name)
                ),
                needle(),
            ));
        }
        let sources = v.as_object().map_or(0, |m| {
            m.iter()
                .filter(|(k, val)| k.as_str() != "name" && !val.is_null())
                .count()
        });
        if sources != 1 {
            out.push(finding(
                field,
                format!(
                    "volume {} must have exactly one source (emptyDir, secret, configMap, persistentVolumeClaim, …), not {sources}",
                    excerpt(name)
                ),
                needle(),
            ));
        }
    }
    names
}

fn check_mounts(here: &str, container: &Value, volumes: &BTreeSet<String>, out: &mut Vec<Finding>) {
    let mut paths = BTreeSet::new();
    for (j, m) in items(container, "volumeMounts") {
        let field = format!("{here}.volumeMounts[{j}]");
        let (name, path) = (text(m, "name"), text(m, "mountPath"));
        if !volumes.contains(name) {
            out.push(finding(
                format!("{field}.name"),
                format!("{} is not a volume of the pod", excerpt(name)),
                Some(Needle::Value(name.to_owned())),
            ));
        }
        if path.is_empty() {
            out.push(finding(
                format!("{field}.mountPath"),
                "is required".into(),
                Some(Needle::Value(name.to_owned())),
            ));
        } else if !paths.insert(path.trim_end_matches('/').to_owned()) {
            out.push(finding(
                format!("{field}.mountPath"),
                format!(
                    "{} is mounted twice in this container (the chart's mounts include it)",
                    excerpt(path)
                ),
                Some(Needle::Value(path.to_owned())),
            ));
        }
    }
}

/// A key of a Secret or ConfigMap: `[-._a-zA-Z0-9]+`, at most 253, not `.` or `..`.
pub fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn check_env(here: &str, container: &Value, out: &mut Vec<Finding>) {
    for (j, e) in items(container, "env") {
        let field = format!("{here}.env[{j}]");
        let name = text(e, "name");
        let needle = || Some(Needle::Name(name.to_owned()));
        let value = e.get("value").and_then(Value::as_str).unwrap_or_default();
        if value.contains('\0') {
            out.push(finding(
                format!("{field}.value"),
                format!(
                    "{} contains a NUL character, which no environment variable can hold",
                    excerpt(name)
                ),
                needle(),
            ));
        }
        let Some(from) = e.get("valueFrom").filter(|v| !v.is_null()) else {
            continue;
        };
        if !value.is_empty() {
            out.push(finding(
                field.clone(),
                format!("{} sets both value and valueFrom; give one", excerpt(name)),
                needle(),
            ));
        }
        let sources: Vec<(&String, &Value)> = from
            .as_object()
            .map(|m| m.iter().filter(|(_, v)| !v.is_null()).collect())
            .unwrap_or_default();
        if sources.len() != 1 {
            out.push(finding(
                format!("{field}.valueFrom"),
                format!(
                    "{} must have exactly one source (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef), not {}",
                    excerpt(name),
                    sources.len()
                ),
                needle(),
            ));
            continue;
        }
        let (kind, source) = sources[0];
        if matches!(kind.as_str(), "secretKeyRef" | "configMapKeyRef") {
            let (object, key) = (text(source, "name"), text(source, "key"));
            if !validate::is_dns1123_subdomain(object) {
                out.push(finding(
                    format!("{field}.valueFrom.{kind}.name"),
                    format!("{} must be a DNS subdomain", excerpt(object)),
                    needle(),
                ));
            }
            if !is_config_key(key) {
                out.push(finding(
                    format!("{field}.valueFrom.{kind}.key"),
                    format!(
                        "{} must be letters, digits, '-', '_' or '.' (not '.' or '..'), at most 253",
                        excerpt(key)
                    ),
                    needle(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repeated_variable_is_named_once_per_repeat() {
        let body = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "api", "env": [{"name": "A", "value": "1"}, {"name": "B"}, {"name": "A", "value": "2"}]},
            {"name": "ok", "env": [{"name": "A"}]}
        ]}}}});
        assert_eq!(
            duplicate_env(&body),
            vec!["container api defines the environment variable A twice"]
        );
        assert!(duplicate_env(&json!({"kind": "Service"})).is_empty());
    }
}
