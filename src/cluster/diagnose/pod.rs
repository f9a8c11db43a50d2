//! What a pod shows that keeps it from being ready, judged from the pod alone (no I/O).

use super::values_key;
use serde_json::Value;

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
        // The container's own last words (the bootstrap Job writes its one-line reason there).
        let said = t["message"]
            .as_str()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| format!(": {}", crate::diag::sanitize(m)))
            .unwrap_or_default();
        return Some(PodProblem {
            reason: format!("container {name} exited with code {}{said}", exit_text(t)),
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
pub(super) fn probe_text(p: &Value) -> String {
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

pub(super) fn exit_text(t: &Value) -> String {
    let code = t["exitCode"].as_i64().unwrap_or(-1);
    match t["reason"].as_str() {
        Some(r) if !r.is_empty() => format!("{code} ({r})"),
        _ => code.to_string(),
    }
}

pub(super) fn container_statuses(status: &Value) -> Vec<(String, &Value)> {
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| status[*k].as_array())
        .flatten()
        .map(|cs| (cs["name"].as_str().unwrap_or_default().to_owned(), cs))
        .collect()
}

pub(super) fn terminated(status: &Value) -> Option<(String, &Value)> {
    container_statuses(status)
        .into_iter()
        .find_map(|(name, cs)| {
            cs.pointer("/state/terminated")
                .filter(|t| t["exitCode"].as_i64().unwrap_or(0) != 0)
                .map(|t| (name, t))
        })
}

pub(super) fn container_spec<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod["spec"][*k].as_array())
        .flatten()
        .find(|c| c["name"] == name)
}
