//! Per-kind readiness, judged from a live object alone (no I/O), shared by `apply --wait` and
//! `status`. Like kstatus, but a controller must first have observed the current generation:
//! kube's `is_deployment_completed` skips that check and can report the previous rollout.

use serde_json::Value;

/// Where an object stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not yet; the reason says what is missing.
    Waiting(String),
    /// Will not become ready without a change (failed Job, exceeded progress deadline).
    Failed(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }

    pub fn reason(&self) -> &str {
        match self {
            Readiness::Ready => "ready",
            Readiness::Waiting(r) | Readiness::Failed(r) => r,
        }
    }
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn is_true(c: Option<&Value>) -> bool {
    c.is_some_and(|c| c["status"] == "True")
}

/// The generation check every workload needs first.
fn observed(v: &Value) -> Option<Readiness> {
    let generation = int(v, "/metadata/generation");
    let observed = int(v, "/status/observedGeneration");
    (observed < generation).then(|| {
        Readiness::Waiting(format!(
            "controller has not observed generation {generation} yet"
        ))
    })
}

/// Readiness of a live object. `binds_on_first_consumer` tells whether a PVC's storage class
/// delays binding until a pod uses it, in which case Pending is the expected state.
pub fn readiness(kind: &str, live: &Value, binds_on_first_consumer: bool) -> Readiness {
    match kind {
        "Deployment" => deployment(live),
        "StatefulSet" => statefulset(live),
        "Job" => job(live),
        "PersistentVolumeClaim" => {
            let phase = live
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending");
            match phase {
                "Bound" => Readiness::Ready,
                "Pending" if binds_on_first_consumer => Readiness::Ready,
                "Lost" => Readiness::Failed("the bound volume was lost".into()),
                other => Readiness::Waiting(format!("volume claim is {other}, not Bound")),
            }
        }
        // The External Secrets Operator has made (or refreshed) the target Secret.
        "ExternalSecret" => {
            let ready = condition(live, "Ready");
            if is_true(ready) {
                Readiness::Ready
            } else {
                let why = ready
                    .and_then(|c| c["message"].as_str())
                    .unwrap_or("the External Secrets Operator has not synced it");
                Readiness::Waiting(format!("not Ready: {why}"))
            }
        }
        _ => Readiness::Ready,
    }
}

fn deployment(v: &Value) -> Readiness {
    if let Some(r) = observed(v) {
        return r;
    }
    let progressing = condition(v, "Progressing");
    if progressing.is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
        let msg = progressing
            .and_then(|c| c["message"].as_str())
            .unwrap_or("progress deadline exceeded");
        return Readiness::Failed(msg.to_owned());
    }
    let want = v
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let updated = int(v, "/status/updatedReplicas");
    let available = int(v, "/status/availableReplicas");
    let total = int(v, "/status/replicas");
    if updated < want {
        return Readiness::Waiting(format!("{updated}/{want} replicas updated"));
    }
    if total > updated {
        return Readiness::Waiting(format!("{} old replicas still running", total - updated));
    }
    if available < want {
        return Readiness::Waiting(format!("{available}/{want} replicas available"));
    }
    Readiness::Ready
}

fn statefulset(v: &Value) -> Readiness {
    if let Some(r) = observed(v) {
        return r;
    }
    let want = v
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let ready = int(v, "/status/readyReplicas");
    let updated = int(v, "/status/updatedReplicas");
    if v.pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        != Some("OnDelete")
    {
        let current = v.pointer("/status/currentRevision");
        let update = v.pointer("/status/updateRevision");
        if updated < want || (update.is_some() && current != update) {
            return Readiness::Waiting(format!("{updated}/{want} replicas on the new revision"));
        }
    }
    if ready < want {
        return Readiness::Waiting(format!("{ready}/{want} replicas ready"));
    }
    Readiness::Ready
}

fn job(v: &Value) -> Readiness {
    if is_true(condition(v, "Complete")) {
        return Readiness::Ready;
    }
    if let Some(c) = condition(v, "Failed").filter(|c| c["status"] == "True") {
        let reason = c["reason"].as_str().unwrap_or("Failed");
        let message = c["message"].as_str().unwrap_or("");
        let mut why = format!("job failed: {reason}: {message}")
            .trim_end_matches(": ")
            .to_owned();
        // The pods' log says why (the migration gate names the revision it found).
        if let (Some(ns), Some(name)) = (
            v.pointer("/metadata/namespace").and_then(Value::as_str),
            v.pointer("/metadata/name").and_then(Value::as_str),
        ) {
            why.push_str(&format!(
                "; its log says why: kubectl logs -n {ns} job/{name}"
            ));
        }
        return Readiness::Failed(why);
    }
    let failed = int(v, "/status/failed");
    let active = int(v, "/status/active");
    Readiness::Waiting(match (active, failed) {
        (0, 0) => "job has not started a pod yet".to_owned(),
        (a, 0) => format!("job running ({a} active)"),
        (a, f) => format!("job running ({a} active, {f} failed attempts)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_waits_for_the_new_generation_first() {
        // The previous rollout finished, but the controller has not seen the new spec yet:
        // kube's is_deployment_completed would call this complete.
        let stale = json!({
            "metadata": {"generation": 3},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 1, "replicas": 1,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
        });
        assert_eq!(
            readiness("Deployment", &stale, false),
            Readiness::Waiting("controller has not observed generation 3 yet".into())
        );
        let done = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}});
        assert!(readiness("Deployment", &done, false).is_ready());
        let rolling = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 3}});
        assert_eq!(
            readiness("Deployment", &rolling, false),
            Readiness::Waiting("1 old replicas still running".into())
        );
    }

    #[test]
    fn deployment_deadline_is_a_failure() {
        let v = json!({"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {"observedGeneration": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"x\" has timed out progressing."}]}});
        assert_eq!(
            readiness("Deployment", &v, false),
            Readiness::Failed("ReplicaSet \"x\" has timed out progressing.".into())
        );
    }

    #[test]
    fn statefulset_needs_ready_replicas_on_the_update_revision() {
        let v = json!({"metadata": {"generation": 1}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"}});
        assert_eq!(
            readiness("StatefulSet", &v, false),
            Readiness::Waiting("1/1 replicas on the new revision".into())
        );
        let v = json!({"metadata": {"generation": 1}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1, "currentRevision": "b", "updateRevision": "b"}});
        assert!(readiness("StatefulSet", &v, false).is_ready());
    }

    #[test]
    fn job_complete_failed_and_running() {
        let ok = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert!(readiness("Job", &ok, false).is_ready());
        let failed = json!({"status": {"failed": 4, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}});
        assert_eq!(
            readiness("Job", &failed, false),
            Readiness::Failed(
                "job failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
                    .into()
            )
        );
        let mut named = failed.clone();
        named["metadata"] = json!({"namespace": "dify", "name": "dify-migration-1-11-4-x"});
        assert_eq!(
            readiness("Job", &named, false),
            Readiness::Failed(
                "job failed: BackoffLimitExceeded: Job has reached the specified backoff limit; \
                 its log says why: kubectl logs -n dify job/dify-migration-1-11-4-x"
                    .into()
            )
        );
        let running = json!({"status": {"active": 1}});
        assert_eq!(
            readiness("Job", &running, false),
            Readiness::Waiting("job running (1 active)".into())
        );
    }

    #[test]
    fn pvc_bound_or_waiting_for_first_consumer() {
        let pending = json!({"status": {"phase": "Pending"}});
        assert_eq!(
            readiness("PersistentVolumeClaim", &pending, false),
            Readiness::Waiting("volume claim is Pending, not Bound".into())
        );
        assert!(readiness("PersistentVolumeClaim", &pending, true).is_ready());
        assert!(
            readiness(
                "PersistentVolumeClaim",
                &json!({"status": {"phase": "Bound"}}),
                false
            )
            .is_ready()
        );
        assert!(readiness("Service", &json!({}), false).is_ready());
    }
}
