//! Why an object is not ready, in words an operator on call can act on: one line of reason
//! (an image that cannot be pulled, a crash loop with its exit code, the scheduler's message,
//! an unbound claim and its StorageClass, a failing probe and its path, a failed Job), the
//! recent Warning events, the last lines of the relevant log, and what to try.
//!
//! Used when a wait times out or fails, by `status` (text and JSON) and by `logs`. Everything
//! read from the cluster — event messages, logs — passes through [`crate::diag::sanitize`]
//! (registered secrets masked, lines and line counts bounded) before it is kept, and reads are
//! bounded before they happen (`tailLines`, `limitBytes`, a few events).

mod claim;
mod logs;
mod pod;

pub use logs::{
    component_logs, read_log, register_inventory_secrets, register_release_secrets, secrets_read_by,
};
pub use pod::{PodProblem, pod_problem};

use super::{Error, ResourceManager};
use claim::{claim_problem, unbound_claim};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;
use serde_json::Value;

/// Lines of a container's log shown in a diagnosis.
pub const LOG_LINES: i64 = 20;
/// Bytes of a log read at most, whatever its lines.
pub const LOG_BYTES: i64 = 16 * 1024;
/// Warning events shown per object, most recent first.
pub const MAX_EVENTS: usize = 5;

/// Why one object is not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    /// `Kind/namespace/name` of the object waited for.
    pub object: String,
    /// The cause in one line.
    pub reason: String,
    /// The pod the reason was found on, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Recent Warning events of the object and its pods, `Reason: message (×count)`.
    pub events: Vec<String>,
    /// Which log `log` is (`previous container api`), or why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_source: Option<String>,
    /// The last lines of that log, sanitized.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// What to try.
    pub advice: String,
}

impl Diagnosis {
    /// The diagnosis as indented text lines for people.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}: {}\n", self.object, self.reason);
        if let Some(pod) = &self.pod {
            out.push_str(&format!("  pod: {pod}\n"));
        }
        if !self.events.is_empty() {
            out.push_str("  warning events:\n");
            for e in &self.events {
                out.push_str(&format!("    {e}\n"));
            }
        }
        if let Some(source) = &self.log_source {
            out.push_str(&format!("  log ({source}):\n"));
            for l in &self.log {
                out.push_str(&format!("    | {l}\n"));
            }
        }
        out.push_str(&format!("  try: {}\n", self.advice));
        out
    }
}

/// Diagnoses of several objects as one text block, or "" when there is none.
pub fn text_of(diagnoses: &[Diagnosis]) -> String {
    if diagnoses.is_empty() {
        return String::new();
    }
    let mut out = String::from("why:\n");
    for d in diagnoses {
        for line in d.to_text().lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// The values key of a component's settings (`plugin-daemon` → `pluginDaemon`).
pub fn values_key(component: &str) -> String {
    match component {
        "api-websocket" => "api".to_owned(),
        other => {
            let mut out = String::new();
            let mut upper = false;
            for c in other.chars() {
                if c == '-' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

/// Warning events as lines, most recent first, at most [`MAX_EVENTS`], deduplicated.
fn event_lines(events: &[&Event]) -> Vec<String> {
    let mut sorted: Vec<&&Event> = events.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(event_time(e)));
    let mut out: Vec<String> = Vec::new();
    for e in sorted {
        let count = e
            .series
            .as_ref()
            .and_then(|s| s.count)
            .or(e.count)
            .unwrap_or(1);
        let message = e
            .message
            .as_deref()
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default();
        let mut line = format!(
            "{}/{}: {}: {}",
            e.involved_object.kind.as_deref().unwrap_or_default(),
            e.involved_object.name.as_deref().unwrap_or_default(),
            e.reason.as_deref().unwrap_or_default(),
            message
        );
        if count > 1 {
            line.push_str(&format!(" (×{count})"));
        }
        let line = crate::diag::sanitize(&line);
        let same = |l: &String| l.split(" (×").next() == line.split(" (×").next();
        if !out.iter().any(same) {
            out.push(line);
        }
        if out.len() == MAX_EVENTS {
            break;
        }
    }
    out
}

fn event_time(e: &Event) -> String {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0.to_string()))
        .unwrap_or_default()
}

/// Whether an event is about `kind/name` or a pod or ReplicaSet it owns (`pods` by name).
fn concerns(e: &Event, kind: &str, name: &str, pods: &[String]) -> bool {
    let (k, n) = (
        e.involved_object.kind.as_deref().unwrap_or_default(),
        e.involved_object.name.as_deref().unwrap_or_default(),
    );
    (k == kind && n == name)
        || (k == "Pod" && pods.iter().any(|p| p == n))
        || (k == "ReplicaSet"
            && kind == "Deployment"
            && n.strip_prefix(name)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|hash| !hash.contains('-')))
}

/// Pods selected by a workload's `spec.selector.matchLabels`, newest first.
async fn pods_of(mgr: &ResourceManager, namespace: &str, live: &Value) -> Vec<Value> {
    let Some(labels) = live
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",");
    let api: Api<Pod> = Api::namespaced(mgr.client().clone(), namespace);
    let mut pods: Vec<Value> = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .collect(),
        Err(_) => Vec::new(),
    };
    pods.sort_by_key(|p| {
        std::cmp::Reverse(
            p.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )
    });
    pods
}

async fn warning_events(mgr: &ResourceManager, namespace: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(mgr.client().clone(), namespace);
    api.list(&ListParams::default().fields("type=Warning").limit(500))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// Why `kind/namespace/name` (of `component`) is not ready. `waiting` is the readiness rule's
/// own reason, used when nothing more specific is found.
pub async fn diagnose(
    mgr: &ResourceManager,
    kind: &str,
    namespace: &str,
    name: &str,
    component: &str,
    waiting: &str,
) -> Diagnosis {
    let object = format!("{kind}/{namespace}/{name}");
    let live = mgr
        .get_object(api_version_of(kind), kind, Some(namespace), name)
        .await
        .ok()
        .flatten();
    let events = warning_events(mgr, namespace).await;
    let mut diagnosis = Diagnosis {
        object,
        reason: waiting.to_owned(),
        pod: None,
        events: Vec::new(),
        log_source: None,
        log: Vec::new(),
        advice: format!(
            "kubectl describe {} -n {namespace} {name}",
            kind.to_lowercase()
        ),
    };
    let Some(live) = live else {
        diagnosis.reason = "does not exist".to_owned();
        diagnosis.advice = "apply the release again".to_owned();
        return diagnosis;
    };
    let mut pod_names = Vec::new();
    // Other objects whose events explain this one (a claim its pod waits for).
    let mut related: Vec<(String, String)> = Vec::new();
    match kind {
        "Deployment" | "StatefulSet" | "Job" => {
            let pods = pods_of(mgr, namespace, &live).await;
            pod_names = pods
                .iter()
                .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
            for pod in &pods {
                let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
                let unhealthy = events
                    .iter()
                    .filter(|e| {
                        e.involved_object.name.as_deref() == Some(pod_name)
                            && e.reason.as_deref() == Some("Unhealthy")
                            && e.message
                                .as_deref()
                                .is_some_and(|m| m.starts_with("Readiness probe"))
                    })
                    .max_by_key(|e| event_time(e))
                    .and_then(|e| e.message.clone());
                if let Some(mut problem) = pod_problem(pod, component, unhealthy.as_deref()) {
                    // A pod that waits for a claim: the claim is the cause.
                    if problem.reason.starts_with("Pending")
                        && let Some((claim, reason, advice)) =
                            unbound_claim(mgr, namespace, pod).await
                    {
                        problem.reason =
                            format!("Pending: volume PersistentVolumeClaim/{claim}: {reason}");
                        problem.advice = advice;
                        related.push(("PersistentVolumeClaim".to_owned(), claim));
                    }
                    diagnosis.reason = crate::diag::sanitize(&problem.reason);
                    diagnosis.pod = Some(pod_name.to_owned());
                    diagnosis.advice = problem.advice;
                    if let Some((container, previous)) = problem.log {
                        // The container may print any Secret it reads (an operator's SMTP
                        // password, say): those values are masked too.
                        register_release_secrets(mgr, namespace, &secrets_read_by(pod)).await;
                        let which = if previous {
                            format!("previous container {container}, last {LOG_LINES} lines")
                        } else {
                            format!("container {container}, last {LOG_LINES} lines")
                        };
                        match read_log(mgr, namespace, pod_name, &container, previous, LOG_LINES)
                            .await
                        {
                            Ok(lines) => {
                                diagnosis.log_source = Some(which);
                                diagnosis.log = lines;
                            }
                            Err(why) => {
                                diagnosis.log_source =
                                    Some(format!("{which}: not available: {why}"))
                            }
                        }
                    }
                    break;
                }
            }
            if kind == "Job" && diagnosis.pod.is_none() && pods.is_empty() {
                diagnosis.advice = format!(
                    "the Job has no pod: its events say why (kubectl describe job -n {namespace} {name})"
                );
            }
        }
        "PersistentVolumeClaim" => {
            let (reason, advice) = claim_problem(mgr, &live).await;
            diagnosis.reason = reason;
            diagnosis.advice = advice;
        }
        _ => {}
    }
    let relevant: Vec<&Event> = events
        .iter()
        .filter(|e| {
            concerns(e, kind, name, &pod_names)
                || related.iter().any(|(k, n)| {
                    e.involved_object.kind.as_deref() == Some(k)
                        && e.involved_object.name.as_deref() == Some(n)
                })
        })
        .collect();
    diagnosis.events = event_lines(&relevant);
    diagnosis
}

fn api_version_of(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" => "apps/v1",
        "Job" => "batch/v1",
        _ => "v1",
    }
}

/// Diagnoses every object in `waiting` (`(id, reason)` with ids `Kind/namespace/name`);
/// `components` gives each id's component.
pub async fn diagnose_all(
    mgr: &ResourceManager,
    waiting: &[(String, String)],
    component_of: &dyn Fn(&str) -> String,
) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for (id, reason) in waiting {
        let mut parts = id.splitn(3, '/');
        let (Some(kind), Some(ns), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        out.push(diagnose(mgr, kind, ns, name, &component_of(id), reason).await);
    }
    out
}

/// A wait failure with its diagnoses.
pub fn with_diagnoses(error: Error, diagnoses: Vec<Diagnosis>) -> Error {
    if diagnoses.is_empty() {
        error
    } else {
        Error::Diagnosed {
            error: Box::new(error),
            diagnoses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pod::probe_text;
    use super::*;
    use serde_json::json;

    #[test]
    fn values_keys_of_components() {
        assert_eq!(values_key("plugin-daemon"), "pluginDaemon");
        assert_eq!(values_key("ssrf-proxy"), "ssrfProxy");
        assert_eq!(values_key("api-websocket"), "api");
        assert_eq!(values_key("web"), "web");
    }

    #[test]
    fn a_ready_pod_has_no_problem() {
        let pod = json!({"status": {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "api", "ready": true, "state": {"running": {}}}]}});
        assert_eq!(pod_problem(&pod, "api", None), None);
    }

    #[test]
    fn an_out_of_memory_crash_loop_names_the_memory_limit() {
        let pod = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "worker", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}});
        let p = pod_problem(&pod, "worker", None).unwrap();
        assert_eq!(
            p.reason,
            "CrashLoopBackOff: container worker exited with code 137 (OOMKilled), restarted 4 times"
        );
        assert!(
            p.advice.contains("worker.resources.limits.memory"),
            "{}",
            p.advice
        );
        assert_eq!(p.log, Some(("worker".to_owned(), true)));
    }

    #[test]
    fn a_missing_secret_key_is_a_config_error() {
        let pod = json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "api", "ready": false,
            "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"smtp\" not found"}}}]}});
        let p = pod_problem(&pod, "api", None).unwrap();
        assert_eq!(
            p.reason,
            "CreateContainerConfigError: secret \"smtp\" not found (container api)"
        );
    }

    #[test]
    fn the_secrets_a_pod_reads() {
        let pod = json!({"spec": {
            "containers": [{"name": "api", "env": [
                {"name": "A", "valueFrom": {"secretKeyRef": {"name": "smtp", "key": "password"}}},
                {"name": "B", "value": "plain"},
                {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}],
                "envFrom": [{"secretRef": {"name": "extra"}}]}],
            "volumes": [{"name": "ca", "secret": {"secretName": "redis-ca"}}, {"name": "t", "emptyDir": {}}]}});
        assert_eq!(secrets_read_by(&pod), ["extra", "redis-ca", "smtp"]);
    }

    #[test]
    fn probes_are_described_by_what_they_check() {
        assert_eq!(
            probe_text(&json!({"httpGet": {"path": "/health", "port": "http"}})),
            "HTTP GET /health on port http"
        );
        assert_eq!(
            probe_text(&json!({"tcpSocket": {"port": 5432}})),
            "TCP port 5432"
        );
        assert_eq!(
            probe_text(&json!({"exec": {"command": ["pg_isready", "-U", "postgres"]}})),
            "exec \"pg_isready -U postgres\""
        );
    }
}
