//! Checks on the pod templates of workloads that the typed structs cannot express.

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
