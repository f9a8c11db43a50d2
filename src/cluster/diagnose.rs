//! Why an object is not ready, in words an operator on call can act on: one line of reason
//! (an image that cannot be pulled, a crash loop with its exit code, the scheduler's message,
//! an unbound claim and its StorageClass, a failing probe and its path, a failed Job), the
//! recent Warning events, the last lines of the relevant log, and what to try.
//!
//! Used when a wait times out or fails, by `status` (text and JSON) and by `logs`. Everything
//! read from the cluster — event messages, logs — passes through [`crate::diag::sanitize`]
//! (registered secrets masked, lines and line counts bounded) before it is kept, and reads are
//! bounded before they happen (`tailLines`, `limitBytes`, a few events).

use super::{Error, ResourceManager};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{ListParams, LogParams};
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

/// What one pod shows that keeps it from being ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub reason: String,
    /// The container whose log explains it, and whether the previous instance's.
    pub log: Option<(String, bool)>,
    pub advice: String,
}

/// The problem a pod shows, judged from the pod alone; `component` names the values key in
/// the advice. `None` when the pod is ready or merely starting.
pub fn pod_problem(pod: &Value, component: &str, unhealthy: Option<&str>) -> Option<PodProblem> {
    let key = values_key(component);
    let status = &pod["status"];
    if let Some(c) = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
        .filter(|c| c["status"] == "False")
    {
        let message = c["message"].as_str().unwrap_or("no node fits the pod");
        return Some(PodProblem {
            reason: format!("Pending: the scheduler found no node: {message}"),
            log: None,
            advice: format!(
                "compare {key}.pod.nodeSelector, {key}.pod.tolerations, {key}.pod.affinity and {key}.resources.requests \
                 with the nodes (kubectl describe nodes); add capacity or relax them"
            ),
        });
    }
    if status["phase"] == "Failed"
        && let Some((name, t)) = terminated(status)
    {
        return Some(PodProblem {
            reason: format!("container {name} exited with code {}", exit_text(t)),
            log: Some((name, false)),
            advice: "the log says why; fix the cause and apply again".to_owned(),
        });
    }
    let statuses = container_statuses(status);
    for (name, cs) in &statuses {
        let Some(waiting) = cs.pointer("/state/waiting") else {
            continue;
        };
        let why = waiting["reason"].as_str().unwrap_or_default();
        let image = cs["image"].as_str().unwrap_or_default();
        match why {
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                return Some(PodProblem {
                    reason: format!("{why}: image {image:?} cannot be pulled (container {name})"),
                    log: None,
                    advice: "check that the image and tag exist (`difyrender images` lists the release's), \
                             images.registry if you use a mirror, and images.pullSecrets for a private registry"
                        .to_owned(),
                });
            }
            "CrashLoopBackOff" => {
                let restarts = cs["restartCount"].as_i64().unwrap_or(0);
                let last = cs.pointer("/lastState/terminated");
                let exit = last.map(exit_text).unwrap_or_else(|| "unknown".to_owned());
                let oom = last.is_some_and(|t| t["reason"] == "OOMKilled");
                return Some(PodProblem {
                    reason: format!(
                        "CrashLoopBackOff: container {name} exited with code {exit}, restarted {restarts} times"
                    ),
                    log: Some((name.clone(), true)),
                    advice: if oom {
                        format!(
                            "the container ran out of memory: raise {key}.resources.limits.memory"
                        )
                    } else {
                        format!(
                            "the previous container's log says why (`difyrender logs {component} --previous` for more); \
                             check the settings and datastores it reads (`difyrender status`)"
                        )
                    },
                });
            }
            "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                let message = waiting["message"].as_str().unwrap_or_default();
                return Some(PodProblem {
                    reason: format!("{why}: {message} (container {name})"),
                    log: None,
                    advice: format!(
                        "a Secret, ConfigMap or key the container reads is missing: check the existing Secrets named in \
                         the values and {key}.pod.env"
                    ),
                });
            }
            _ => {}
        }
    }
    if status["phase"] == "Running" {
        for (name, cs) in &statuses {
            if cs["ready"] == true || cs.pointer("/state/running").is_none() {
                continue;
            }
            let probe = container_spec(pod, name)
                .and_then(|c| c.get("readinessProbe"))
                .map(probe_text)
                .unwrap_or_else(|| "its readiness probe".to_owned());
            let reason = match unhealthy {
                Some(message) => format!(
                    "readiness probe {probe} fails (container {name}): {}",
                    message.lines().next().unwrap_or_default()
                ),
                None => format!(
                    "container {name} runs but its readiness probe {probe} has not passed yet"
                ),
            };
            return Some(PodProblem {
                reason,
                log: Some((name.clone(), false)),
                advice: format!(
                    "the container answers {probe} with an error or not at all: read its log (`difyrender logs {component}`) \
                     and check the services it needs (`difyrender status`)"
                ),
            });
        }
    }
    None
}

/// `HTTP GET /health on port http`, `TCP port 5432`, `exec pg_isready`.
fn probe_text(p: &Value) -> String {
    if let Some(h) = p.get("httpGet") {
        let port = match &h["port"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!(
            "HTTP GET {} on port {port}",
            h["path"].as_str().unwrap_or("/")
        )
    } else if let Some(t) = p.get("tcpSocket") {
        format!("TCP port {}", t["port"])
    } else if let Some(e) = p.pointer("/exec/command").and_then(Value::as_array) {
        let words: Vec<&str> = e.iter().filter_map(Value::as_str).collect();
        format!("exec {}", crate::diag::excerpt(&words.join(" ")))
    } else {
        "its readiness probe".to_owned()
    }
}

fn exit_text(t: &Value) -> String {
    let code = t["exitCode"].as_i64().unwrap_or(-1);
    match t["reason"].as_str() {
        Some(r) if !r.is_empty() => format!("{code} ({r})"),
        _ => code.to_string(),
    }
}

fn container_statuses(status: &Value) -> Vec<(String, &Value)> {
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| status[*k].as_array())
        .flatten()
        .map(|cs| (cs["name"].as_str().unwrap_or_default().to_owned(), cs))
        .collect()
}

fn terminated(status: &Value) -> Option<(String, &Value)> {
    container_statuses(status)
        .into_iter()
        .find_map(|(name, cs)| {
            cs.pointer("/state/terminated")
                .filter(|t| t["exitCode"].as_i64().unwrap_or(0) != 0)
                .map(|t| (name, t))
        })
}

fn container_spec<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod["spec"][*k].as_array())
        .flatten()
        .find(|c| c["name"] == name)
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

/// The last lines of a container's log, sanitized; `Err` says why it could not be read.
pub async fn read_log(
    mgr: &ResourceManager,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
    lines: i64,
) -> Result<Vec<String>, String> {
    let api: Api<Pod> = Api::namespaced(mgr.client().clone(), namespace);
    let params = LogParams {
        container: Some(container.to_owned()),
        previous,
        tail_lines: Some(lines),
        limit_bytes: Some(LOG_BYTES),
        ..Default::default()
    };
    match api.logs(pod, &params).await {
        Ok(text) => Ok(crate::diag::sanitize(&text)
            .lines()
            .map(str::to_owned)
            .collect()),
        Err(kube::Error::Api(s)) => Err(crate::diag::sanitize(
            s.message.lines().next().unwrap_or_default(),
        )),
        Err(e) => Err(crate::diag::sanitize(&e.to_string())),
    }
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

/// The first claim a pod mounts that is not Bound: `(PersistentVolumeClaim/name, reason, advice)`.
async fn unbound_claim(
    mgr: &ResourceManager,
    namespace: &str,
    pod: &Value,
) -> Option<(String, String, String)> {
    let claims: Vec<&str> = pod
        .pointer("/spec/volumes")?
        .as_array()?
        .iter()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName")?.as_str())
        .collect();
    for claim in claims {
        let live = mgr
            .get_object("v1", "PersistentVolumeClaim", Some(namespace), claim)
            .await
            .ok()
            .flatten()?;
        if live.pointer("/status/phase").and_then(Value::as_str) != Some("Bound") {
            let (reason, advice) = claim_problem(mgr, &live).await;
            return Some((claim.to_owned(), reason, advice));
        }
    }
    None
}

/// A claim that is not bound: its StorageClass, whether it exists, and which ones do.
async fn claim_problem(mgr: &ResourceManager, live: &Value) -> (String, String) {
    let phase = live
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    let classes: Api<StorageClass> = Api::all(mgr.client().clone());
    let all = classes.list(&ListParams::default()).await;
    let names: Vec<String> = all
        .as_ref()
        .map(|l| {
            l.items
                .iter()
                .filter_map(|c| c.metadata.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let listed = if names.is_empty() {
        "none is visible".to_owned()
    } else {
        format!("the cluster has {}", names.join(", "))
    };
    match live
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
    {
        Some(class) if all.is_ok() && !names.iter().any(|n| n == class) => (
            format!("claim is {phase}, not Bound: its StorageClass {class:?} does not exist"),
            format!(
                "set storage.storageClassName to an existing StorageClass ({listed}; kubectl get storageclass)"
            ),
        ),
        Some(class) => {
            let provisioner = all
                .ok()
                .and_then(|l| {
                    l.items
                        .into_iter()
                        .find(|c| c.metadata.name.as_deref() == Some(class))
                })
                .map(|c| c.provisioner)
                .unwrap_or_default();
            (
                format!(
                    "claim is {phase}, not Bound: StorageClass {class:?} (provisioner {provisioner}) has not provided a volume"
                ),
                format!(
                    "check that the provisioner {provisioner} runs and can create volumes of this size and access mode; \
                     or set storage.storageClassName to another class ({listed})"
                ),
            )
        }
        None => (
            format!(
                "claim is {phase}, not Bound: it names no StorageClass and none is the default"
            ),
            format!("set storage.storageClassName ({listed})"),
        ),
    }
}

/// The Secrets a pod reads: `secretKeyRef`s, `envFrom` and Secret volumes.
pub fn secrets_read_by(pod: &Value) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    let spec = &pod["spec"];
    for kind in ["containers", "initContainers"] {
        for c in spec[kind].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                if let Some(n) = e
                    .pointer("/valueFrom/secretKeyRef/name")
                    .and_then(Value::as_str)
                {
                    names.insert(n.to_owned());
                }
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                if let Some(n) = e.pointer("/secretRef/name").and_then(Value::as_str) {
                    names.insert(n.to_owned());
                }
            }
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if let Some(n) = v.pointer("/secret/secretName").and_then(Value::as_str) {
            names.insert(n.to_owned());
        }
    }
    names.into_iter().collect()
}

/// Reads every Secret the release owns and registers its values, so that no log or event
/// shown afterwards can print one. A Secret that cannot be read is skipped: then the user
/// cannot read its values either.
pub async fn register_release_secrets(mgr: &ResourceManager, namespace: &str, names: &[String]) {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(mgr.client().clone(), namespace);
    for name in names {
        if let Ok(Some(secret)) = api.get_opt(name).await {
            for value in secret.data.unwrap_or_default().values() {
                if let Ok(text) = std::str::from_utf8(&value.0) {
                    crate::diag::register_secret(text);
                }
            }
        }
    }
}

/// `logs`: the last `lines` of every container (or `container`) of every pod of `component`
/// in the release, each under a `==> pod/container <==` header, secrets masked.
pub async fn component_logs(
    mgr: &ResourceManager,
    inv: &super::inventory::Inventory,
    component: &str,
    container: Option<&str>,
    previous: bool,
    lines: i64,
) -> Result<String, Error> {
    let secrets: Vec<String> = inv
        .entries
        .iter()
        .filter(|s| s.kind == "Secret")
        .map(|s| s.name.clone())
        .collect();
    register_release_secrets(mgr, &inv.namespace, &secrets).await;
    let selector = format!(
        "{}={},{}={component}",
        crate::manifest::LABEL_INSTANCE,
        inv.release,
        crate::manifest::LABEL_COMPONENT
    );
    let api: Api<Pod> = Api::namespaced(mgr.client().clone(), &inv.namespace);
    let pods = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::from_kube(&format!("pods of {component}"), "list", e))?;
    if pods.items.is_empty() {
        return Err(Error::NotFound(format!(
            "release {} in namespace {} has no pod of component {component}",
            inv.release, inv.namespace
        )));
    }
    let mut out = String::new();
    let mut found = false;
    for pod in &pods.items {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        if let Ok(value) = serde_json::to_value(pod) {
            register_release_secrets(mgr, &inv.namespace, &secrets_read_by(&value)).await;
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let names = spec
            .init_containers
            .unwrap_or_default()
            .into_iter()
            .chain(spec.containers)
            .map(|c| c.name)
            .filter(|n| container.is_none_or(|c| c == n));
        for name in names {
            found = true;
            out.push_str(&format!("==> {pod_name}/{name} <==\n"));
            match read_log(mgr, &inv.namespace, &pod_name, &name, previous, lines).await {
                Ok(log) => {
                    for l in log {
                        out.push_str(&l);
                        out.push('\n');
                    }
                }
                Err(why) => out.push_str(&format!("(log not available: {why})\n")),
            }
        }
    }
    if !found {
        return Err(Error::NotFound(format!(
            "no container {} in the pods of {component}",
            crate::diag::excerpt(container.unwrap_or_default())
        )));
    }
    Ok(out)
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
