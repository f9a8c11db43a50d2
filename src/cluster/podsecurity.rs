//! The Pod Security Standards (baseline and restricted), evaluated on rendered pod templates as
//! the PodSecurity admission plugin would evaluate the pods they create. Pure: no I/O.
//!
//! Implemented: the controls that matter for this chart and what an operator may put in
//! `securityContexts.*`: host namespaces, privileged, capabilities, hostPath and host ports,
//! seccomp, procMount (baseline); volume types, privilege escalation, running as non-root,
//! runAsUser 0, seccomp and capabilities dropping ALL (restricted). Not implemented: AppArmor,
//! SELinux options and sysctls, which the chart never sets.

use serde_json::Value;
use std::fmt;

/// A Pod Security Standards level, as in `pod-security.kubernetes.io/enforce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        })
    }
}

/// One field of a pod template that a level forbids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The lowest level that forbids it.
    pub level: Level,
    /// Path in the pod spec, e.g. `containers[sandbox].securityContext.runAsNonRoot`.
    pub field: String,
    /// What the level requires.
    pub rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.rule)
    }
}

/// Capabilities baseline allows to be added.
const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Volume types restricted allows.
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn truthy(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

/// Every container of a pod spec with its path prefix: `containers[name]`.
fn containers(spec: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
            out.push((format!("{list}[{name}]"), c));
        }
    }
    out
}

/// Every violation of `spec` (a pod spec) at or below `level`.
pub fn violations(spec: &Value, level: Level) -> Vec<Violation> {
    let mut out = Vec::new();
    if level == Level::Privileged {
        return out;
    }
    let mut push = |l: Level, field: String, rule: &str| {
        if l <= level {
            out.push(Violation {
                level: l,
                field,
                rule: rule.to_owned(),
            });
        }
    };
    let pod_sc = spec.get("securityContext").cloned().unwrap_or(Value::Null);

    // Baseline.
    for ns in ["hostNetwork", "hostPID", "hostIPC"] {
        if truthy(spec.get(ns)) {
            push(Level::Baseline, ns.to_owned(), "must be unset or false");
        }
    }
    for v in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("?");
        if v.get("hostPath").is_some() {
            push(
                Level::Baseline,
                format!("volumes[{name}].hostPath"),
                "is not allowed",
            );
        }
        let kind = v
            .as_object()
            .and_then(|m| m.keys().find(|k| k.as_str() != "name"))
            .map(String::as_str)
            .unwrap_or("?");
        if kind != "hostPath" && !RESTRICTED_VOLUMES.contains(&kind) {
            push(
                Level::Restricted,
                format!("volumes[{name}].{kind}"),
                "is not an allowed volume type (configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret)",
            );
        }
    }
    if text(pod_sc.pointer("/seccompProfile/type")) == Some("Unconfined") {
        push(
            Level::Baseline,
            "securityContext.seccompProfile.type".into(),
            "must not be Unconfined",
        );
    }
    if pod_sc.get("runAsUser").and_then(Value::as_i64) == Some(0) {
        push(
            Level::Restricted,
            "securityContext.runAsUser".into(),
            "must not be 0",
        );
    }
    if pod_sc.get("runAsNonRoot").and_then(Value::as_bool) == Some(false) {
        push(
            Level::Restricted,
            "securityContext.runAsNonRoot".into(),
            "must not be false",
        );
    }
    let pod_non_root = truthy(pod_sc.get("runAsNonRoot"));
    let pod_seccomp = matches!(
        text(pod_sc.pointer("/seccompProfile/type")),
        Some("RuntimeDefault" | "Localhost")
    );

    for (path, c) in containers(spec) {
        let sc = c.get("securityContext").cloned().unwrap_or(Value::Null);
        let at = |field: &str| format!("{path}.securityContext.{field}");
        if truthy(sc.get("privileged")) {
            push(Level::Baseline, at("privileged"), "must be unset or false");
        }
        let added: Vec<&str> = sc
            .pointer("/capabilities/add")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for cap in &added {
            if !BASELINE_CAPS.contains(cap) {
                push(
                    Level::Baseline,
                    at("capabilities.add"),
                    &format!("must not add {cap}"),
                );
            } else if *cap != "NET_BIND_SERVICE" {
                push(
                    Level::Restricted,
                    at("capabilities.add"),
                    &format!("may add only NET_BIND_SERVICE, not {cap}"),
                );
            }
        }
        let drops_all = sc
            .pointer("/capabilities/drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            push(
                Level::Restricted,
                at("capabilities.drop"),
                "must include ALL",
            );
        }
        for (i, p) in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                push(
                    Level::Baseline,
                    format!("{path}.ports[{i}].hostPort"),
                    "must be unset or 0",
                );
            }
        }
        if text(sc.get("procMount")).is_some_and(|m| m != "Default") {
            push(Level::Baseline, at("procMount"), "must be Default");
        }
        match text(sc.pointer("/seccompProfile/type")) {
            Some("Unconfined") => push(
                Level::Baseline,
                at("seccompProfile.type"),
                "must not be Unconfined",
            ),
            Some("RuntimeDefault" | "Localhost") => {}
            _ if !pod_seccomp => push(
                Level::Restricted,
                at("seccompProfile.type"),
                "must be RuntimeDefault or Localhost (here or in the pod's securityContext)",
            ),
            _ => {}
        }
        if sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false) {
            push(
                Level::Restricted,
                at("allowPrivilegeEscalation"),
                "must be false",
            );
        }
        match sc.get("runAsNonRoot").and_then(Value::as_bool) {
            Some(false) => push(Level::Restricted, at("runAsNonRoot"), "must not be false"),
            None if !pod_non_root => push(
                Level::Restricted,
                at("runAsNonRoot"),
                "must be true (here or in the pod's securityContext)",
            ),
            _ => {}
        }
        if sc.get("runAsUser").and_then(Value::as_i64) == Some(0) {
            push(Level::Restricted, at("runAsUser"), "must not be 0");
        }
    }
    out
}

/// The pod spec of a workload (Deployment, StatefulSet, Job).
pub fn pod_spec(body: &Value) -> Option<&Value> {
    body.pointer("/spec/template/spec")
}

/// The strictest level `spec` passes.
pub fn strictest_passing(spec: &Value) -> Level {
    if violations(spec, Level::Restricted).is_empty() {
        Level::Restricted
    } else if violations(spec, Level::Baseline).is_empty() {
        Level::Baseline
    } else {
        Level::Privileged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn restricted_pod() -> Value {
        json!({
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "api", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "x"}}]
        })
    }

    #[test]
    fn a_hardened_pod_passes_restricted() {
        assert!(violations(&restricted_pod(), Level::Restricted).is_empty());
        assert_eq!(strictest_passing(&restricted_pod()), Level::Restricted);
    }

    #[test]
    fn a_root_pod_fails_restricted_naming_each_field() {
        let pod = json!({
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "sandbox", "securityContext": {"allowPrivilegeEscalation": false}}]
        });
        let fields: Vec<String> = violations(&pod, Level::Restricted)
            .iter()
            .map(|v| v.field.clone())
            .collect();
        assert_eq!(
            fields,
            [
                "containers[sandbox].securityContext.capabilities.drop",
                "containers[sandbox].securityContext.runAsNonRoot"
            ]
        );
        assert!(violations(&pod, Level::Baseline).is_empty());
        assert_eq!(strictest_passing(&pod), Level::Baseline);
    }

    #[test]
    fn baseline_controls() {
        let pod = json!({
            "hostNetwork": true,
            "containers": [{"name": "c", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}, "ports": [{"hostPort": 80}]}],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}]
        });
        let v = violations(&pod, Level::Baseline);
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "hostNetwork",
                "volumes[h].hostPath",
                "containers[c].securityContext.privileged",
                "containers[c].securityContext.capabilities.add",
                "containers[c].ports[0].hostPort"
            ]
        );
        assert_eq!(strictest_passing(&pod), Level::Privileged);
        // CHOWN is fine for baseline, not for restricted.
        let chown = json!({"containers": [{"name": "init", "securityContext": {"capabilities": {"add": ["CHOWN"]}}}]});
        assert!(violations(&chown, Level::Baseline).is_empty());
        assert!(
            violations(&chown, Level::Restricted)
                .iter()
                .any(|v| v.rule.contains("not CHOWN"))
        );
    }

    #[test]
    fn run_as_user_zero_and_volume_types_are_restricted() {
        let mut pod = restricted_pod();
        pod["securityContext"]["runAsUser"] = json!(0);
        pod["volumes"] = json!([{"name": "n", "nfs": {"server": "x", "path": "/"}}]);
        let fields: Vec<String> = violations(&pod, Level::Restricted)
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["volumes[n].nfs", "securityContext.runAsUser"]);
    }
}
