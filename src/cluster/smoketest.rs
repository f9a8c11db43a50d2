//! `test`: proves from inside the cluster that an installed release works. A short-lived Job on
//! the release's own api image (nothing new to pull) runs [`SCRIPT`], which checks every wire
//! of the release and reports one `DIFYTEST {json}` line per check in its termination message
//! (`/dev/termination-log`; the logs when it fails without one). The Job needs no API rights:
//! difyrender reads the results from the pod's status.

use super::inventory;
use super::progress::Progress;
use super::{Error, ResourceManager};
use crate::objects::{
    APP_NAME, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF,
    MANAGED_BY,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The checks, run as `python3 -c` in the Job and standalone in the runtime lane.
pub const SCRIPT: &str = include_str!("smoke_test.py");

/// Prefix of every result line the script prints.
pub const RESULT_PREFIX: &str = "DIFYTEST ";

/// Label every pod of a test run carries, with the Job's name.
pub const RUN_LABEL: &str = "difyrender.io/test-run";

/// The api container's variables the script reads. Values are copied as the api has them:
/// plain values as values, keys as the api's own `secretKeyRef`s.
pub const API_ENV: &[&str] = &[
    "CONSOLE_API_URL",
    "CONSOLE_WEB_URL",
    "PLUGIN_DAEMON_URL",
    "PLUGIN_DAEMON_KEY",
    "CODE_EXECUTION_ENDPOINT",
    "CODE_EXECUTION_API_KEY",
    "VECTOR_STORE",
    "WEAVIATE_ENDPOINT",
    "WEAVIATE_API_KEY",
    "DB_HOST",
    "DB_PORT",
    "DB_USERNAME",
    "DB_PASSWORD",
    "DB_DATABASE",
    "DB_EXTRAS",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "REDIS_USE_SSL",
    "SSRF_PROXY_HTTP_URL",
    "MARKETPLACE_ENABLED",
    "MARKETPLACE_API_URL",
    "AGENT_BACKEND_BASE_URL",
    "AGENT_BACKEND_API_TOKEN",
];

/// Variables that hold keys: they must come from a Secret, never as a value.
const KEY_ENV: &[&str] = &[
    "PLUGIN_DAEMON_KEY",
    "CODE_EXECUTION_API_KEY",
    "WEAVIATE_API_KEY",
    "DB_PASSWORD",
    "REDIS_PASSWORD",
    "AGENT_BACKEND_API_TOKEN",
];

/// How to run the test.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keep the Job (and its pod) afterwards.
    pub keep: bool,
    /// Also check the routes through the external URL.
    pub through_ingress: bool,
    /// How long the Job may take, pulling the image included.
    pub timeout: Duration,
}

/// One check's result, as the script reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// What a test run found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    pub release: String,
    pub namespace: String,
    pub job: String,
    pub image: String,
    /// `Complete` or `Failed`, from the Job's conditions.
    pub outcome: String,
    pub results: Vec<CheckResult>,
    /// Why there are no results, when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub kept: bool,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.problem.is_none() && !self.results.is_empty() && self.results.iter().all(|r| r.ok)
    }

    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "release   {} (namespace {})\njob       {} ({}{})\nimage     {}\n\n",
            self.release,
            self.namespace,
            self.job,
            self.outcome,
            if self.kept { ", kept" } else { ", deleted" },
            self.image
        );
        let w = self
            .results
            .iter()
            .map(|r| r.check.len())
            .max()
            .unwrap_or(0)
            .max("CHECK".len());
        if !self.results.is_empty() {
            out.push_str(&format!("{:w$}  RESULT  DETAIL\n", "CHECK"));
        }
        for r in &self.results {
            let line = format!(
                "{:w$}  {:6}  {}",
                r.check,
                if r.ok { "PASS" } else { "FAIL" },
                r.detail
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if let Some(problem) = &self.problem {
            out.push_str(&format!("FAIL: {problem}\n"));
        }
        let failed = self.results.iter().filter(|r| !r.ok).count();
        out.push_str(&format!(
            "{} passed, {failed} failed\n",
            self.results.len() - failed
        ));
        out
    }
}

/// The result lines of a termination message or a log; other lines are ignored.
pub fn parse_results(text: &str) -> Vec<CheckResult> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(RESULT_PREFIX))
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect()
}

/// The Job that runs [`SCRIPT`] for a release, built from its live api Deployment: the same
/// image and pull secrets, the api's user, the api's variables for the names in [`API_ENV`].
pub fn job(
    release: &str,
    namespace: &str,
    name: &str,
    api: &Value,
    opts: &Options,
) -> Result<Value, Error> {
    let pod = api
        .pointer("/spec/template/spec")
        .ok_or_else(|| Error::NotFound("the api Deployment has no pod template".into()))?;
    let containers = pod
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let container = containers
        .iter()
        .find(|c| c["name"] == "api")
        .or(containers.first())
        .ok_or_else(|| Error::NotFound("the api Deployment has no container".into()))?;
    let image = container["image"].as_str().unwrap_or_default().to_owned();
    let mut env = Vec::new();
    for e in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(var) = e["name"].as_str().filter(|n| API_ENV.contains(n)) else {
            continue;
        };
        let from_secret = e.pointer("/valueFrom/secretKeyRef").is_some();
        if KEY_ENV.contains(&var) && !from_secret {
            return Err(Error::Usage(format!(
                "the api's {var} is not read from a Secret; difyrender test copies keys only as secretKeyRef"
            )));
        }
        if from_secret || e.get("value").is_some() {
            env.push(e.clone());
        }
    }
    // The ports and Dify's user, as the chart defines them (versions.yaml, values.yaml).
    let chart = crate::chart::Chart::embedded();
    let svc = |component: &str, port: &str| {
        format!("http://{release}-{component}:{}", chart.versions.port(port))
    };
    for (var, value) in [
        ("DIFYTEST_API_URL", svc("api", "api")),
        ("DIFYTEST_WEB_URL", svc("web", "web")),
        // The sandbox's NetworkPolicy admits the api, the worker and this pod (its component
        // label is `test`); squid's reverse proxy to it is gone from Dify 1.15.0.
        ("DIFYTEST_SANDBOX_URL", svc("sandbox", "sandbox")),
        (
            "DIFYTEST_THROUGH_INGRESS",
            if opts.through_ingress { "1" } else { "0" }.into(),
        ),
    ] {
        env.push(json!({"name": var, "value": value}));
    }
    let pod_sc = pod.get("securityContext");
    let id = |key: &str| pod_sc.and_then(|s| s.get(key)).and_then(Value::as_i64);
    let dify_user = chart
        .default_values
        .get("securityContexts")
        .and_then(|v| v.pointer("/dify/pod/runAsUser"))
        .and_then(Value::as_i64)
        .expect("values.yaml sets securityContexts.dify.pod.runAsUser");
    let user = id("runAsUser").filter(|u| *u != 0).unwrap_or(dify_user);
    let group = id("runAsGroup").filter(|g| *g != 0).unwrap_or(user);
    let labels = json!({
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: release,
        LABEL_COMPONENT: "test",
        LABEL_PART_OF: APP_NAME,
        LABEL_MANAGED_BY: MANAGED_BY,
    });
    let mut pod_labels = labels.clone();
    pod_labels[RUN_LABEL] = json!(name);
    let mut spec = json!({
        "backoffLimit": 0,
        "activeDeadlineSeconds": opts.timeout.as_secs().max(1),
        "template": {
            "metadata": {"labels": pod_labels},
            "spec": {
                "restartPolicy": "Never",
                "enableServiceLinks": false,
                "automountServiceAccountToken": false,
                "imagePullSecrets": pod.get("imagePullSecrets").cloned().unwrap_or(json!([])),
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": user,
                    "runAsGroup": group,
                    "seccompProfile": {"type": "RuntimeDefault"}
                },
                "containers": [{
                    "name": "test",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-c", SCRIPT],
                    "env": env,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]}
                    },
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"}
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "FallbackToLogsOnError"
                }]
            }
        }
    });
    if !opts.keep {
        // Removed by difyrender at the end; the TTL only cleans up after an interrupted run.
        spec["ttlSecondsAfterFinished"] = json!(3600);
    }
    Ok(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }))
}

/// Air-gapped sites (docs/airgap.md): the plugin daemon's Python mirror becomes the
/// `python-mirror` check (`DIFYTEST_MIRROR_URL`), and the api pod's site CA store (its
/// `trust-store` init container and volumes, trust.caBundle) is given to the test pod, so the
/// mirror's certificate is verified as the release's own pods verify it.
pub fn add_airgap(job: &mut Value, api: &Value, daemon: Option<&Value>) {
    let mirror = daemon
        .and_then(|d| d.pointer("/spec/template/spec/containers/0/env"))
        .and_then(Value::as_array)
        .and_then(|env| env.iter().find(|e| e["name"] == "PIP_MIRROR_URL"))
        .and_then(|e| e["value"].as_str())
        .filter(|v| !v.is_empty());
    let Some(spec) = job.pointer_mut("/spec/template/spec") else {
        return;
    };
    if let Some(url) = mirror
        && let Some(env) = spec
            .pointer_mut("/containers/0/env")
            .and_then(Value::as_array_mut)
    {
        env.push(json!({"name": "DIFYTEST_MIRROR_URL", "value": url}));
    }
    let pod = api.pointer("/spec/template/spec");
    let init: Vec<Value> = pod
        .and_then(|p| p["initContainers"].as_array())
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == "trust-store")
        .cloned()
        .collect();
    let volumes: Vec<Value> = pod
        .and_then(|p| p["volumes"].as_array())
        .into_iter()
        .flatten()
        .filter(|v| v["name"] == "trust-site" || v["name"] == "trust-store")
        .cloned()
        .collect();
    let mounts: Vec<Value> = pod
        .and_then(|p| p["containers"][0]["volumeMounts"].as_array())
        .into_iter()
        .flatten()
        .filter(|m| m["name"] == "trust-store")
        .cloned()
        .collect();
    if init.is_empty() || volumes.len() != 2 || mounts.is_empty() {
        return;
    }
    spec["initContainers"] = json!(init);
    spec["volumes"] = json!(volumes);
    spec["containers"][0]["volumeMounts"] = json!(mounts);
}

/// A name for this run's Job: `<release>-test-<time>`.
fn run_name(release: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{release}-test-{:x}", ms % 0xffff_ffff)
}

fn condition(job: &Job, kind: &str) -> bool {
    condition_reason(job, kind).is_some()
}

/// A true condition's reason and message, e.g. `DeadlineExceeded: Job was active longer…`.
fn condition_reason(job: &Job, kind: &str) -> Option<String> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == "True"))
        .map(|c| {
            let reason = c.reason.clone().unwrap_or_default();
            match &c.message {
                Some(m) if !m.is_empty() => format!("{reason}: {m}"),
                _ => reason,
            }
        })
}

/// Runs the test Job for a release and reads its results back.
pub async fn run(
    mgr: &ResourceManager,
    release: &str,
    namespace: &str,
    opts: &Options,
    progress: &Progress,
) -> Result<Option<TestReport>, Error> {
    let Some(inv) = inventory::read(mgr, release, namespace).await? else {
        return Ok(None);
    };
    let entry = inv
        .entries
        .iter()
        .find(|e| e.kind == "Deployment" && e.component == "api")
        .ok_or_else(|| Error::NotFound(format!("release {release} has no api Deployment")))?;
    let api = mgr
        .get_entry(entry)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "{} does not exist: is the release installed? (difyrender status -n {namespace} --release {release})",
                entry.id()
            ))
        })?;
    let name = run_name(release);
    let mut body = job(release, namespace, &name, &api, opts)?;
    let daemon = match inv
        .entries
        .iter()
        .find(|e| e.kind == "Deployment" && e.component == "plugin-daemon")
    {
        Some(e) => mgr.get_entry(e).await?,
        None => None,
    };
    add_airgap(&mut body, &api, daemon.as_ref());
    super::smoke_model::add(mgr, &inv, &mut body).await?;
    let image = body
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let jobs: Api<Job> = Api::namespaced(mgr.client().clone(), namespace);
    let id = format!("Job/{namespace}/{name}");
    let typed: Job = serde_json::from_value(body).expect("the test Job is a valid Job");
    jobs.create(&PostParams::default(), &typed)
        .await
        .map_err(|e| Error::from_kube(&id, "create", e))?;
    progress.line(format!("created {id} (image {image})"));
    let outcome = wait_and_read(mgr, namespace, &name, opts, progress).await;
    if !opts.keep {
        let params = DeleteParams::background();
        match jobs.delete(&name, &params).await {
            Ok(_) => progress.line(format!("deleted {id}")),
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => {
                let err = Error::from_kube(&id, "delete", e);
                progress.line(format!("could not delete {id}: {err}"));
            }
        }
    }
    let (outcome, results, problem) = outcome?;
    Ok(Some(TestReport {
        release: release.to_owned(),
        namespace: namespace.to_owned(),
        job: name,
        image,
        outcome,
        results,
        problem,
        kept: opts.keep,
    }))
}

type Outcome = (String, Vec<CheckResult>, Option<String>);

async fn wait_and_read(
    mgr: &ResourceManager,
    namespace: &str,
    name: &str,
    opts: &Options,
    progress: &Progress,
) -> Result<Outcome, Error> {
    let jobs: Api<Job> = Api::namespaced(mgr.client().clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(mgr.client().clone(), namespace);
    let id = format!("Job/{namespace}/{name}");
    let select = ListParams::default().labels(&format!("{RUN_LABEL}={name}"));
    // The Job's own deadline ends it; this one covers a Job controller that never reports.
    let deadline = Instant::now() + opts.timeout + Duration::from_secs(30);
    let mut last = String::new();
    let mut last_pod = String::new();
    let mut why = String::new();
    let outcome = loop {
        let job = jobs
            .get(name)
            .await
            .map_err(|e| Error::from_kube(&id, "get", e))?;
        if condition(&job, "Complete") {
            break "Complete";
        }
        if let Some(reason) = condition_reason(&job, "Failed") {
            why = reason;
            break "Failed";
        }
        let pod_list = pods
            .list(&select)
            .await
            .map_err(|e| Error::from_kube(&id, "list pods of", e))?;
        let state = match pod_list.items.first() {
            Some(pod) => {
                last_pod = pod_state(pod);
                last_pod.clone()
            }
            None if last_pod.is_empty() => "no pod yet".into(),
            None => "its pod was deleted".into(),
        };
        if state != last {
            progress.line(format!("waiting for {id}: {state}"));
            last = state.clone();
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                elapsed: opts.timeout.as_secs(),
                waiting: vec![(id, state)],
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let pod_list = pods
        .list(&select)
        .await
        .map_err(|e| Error::from_kube(&id, "list pods of", e))?;
    let Some(pod) = pod_list.items.last() else {
        return Ok((
            outcome.into(),
            Vec::new(),
            Some(format!(
                "{id} is {outcome} ({why}) and reported no results; its pod, deleted since, was last seen: {}",
                if last_pod.is_empty() {
                    "never"
                } else {
                    &last_pod
                }
            )),
        ));
    };
    let terminated = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "test"))
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.clone());
    let message = terminated
        .as_ref()
        .and_then(|t| t.message.clone())
        .unwrap_or_default();
    let mut results = parse_results(&message);
    if results.is_empty() {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let params = LogParams {
            container: Some("test".into()),
            limit_bytes: Some(256 * 1024),
            ..Default::default()
        };
        if let Ok(log) = pods.logs(&pod_name, &params).await {
            results = parse_results(&log);
        }
    }
    let problem = results.is_empty().then(|| {
        let how = match &terminated {
            Some(t) => format!(
                "its container ended with exit code {}{}",
                t.exit_code,
                t.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            None => format!(
                "its pod never ran the checks ({}; last seen: {last_pod})",
                job_failure(pod, outcome)
            ),
        };
        let outcome = if why.is_empty() {
            outcome.to_owned()
        } else {
            format!("{outcome} ({why})")
        };
        format!("{id} is {outcome} and reported no results: {how}")
    });
    Ok((outcome.into(), results, problem))
}

fn job_failure(pod: &Pod, outcome: &str) -> String {
    let state = pod_state(pod);
    if state.is_empty() {
        outcome.to_owned()
    } else {
        state
    }
}

/// One line on where a pod is: its phase, and a waiting container's reason.
fn pod_state(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let waiting = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.state.and_then(|s| s.waiting))
        .map(|w| {
            format!(
                "{}{}",
                w.reason.unwrap_or_default(),
                w.message.map(|m| format!(": {m}")).unwrap_or_default()
            )
        })
        .next();
    match waiting {
        Some(w) => format!("pod {}, {w}", status.phase.unwrap_or_default()),
        None => format!("pod {}", status.phase.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_read_from_prefixed_lines_only() {
        let text = "noise\nDIFYTEST {\"check\":\"api-health\",\"ok\":true,\"detail\":\"200\"}\nDIFYTEST {broken\n  DIFYTEST {\"check\":\"redis\",\"ok\":false,\"detail\":\"x\"}\n";
        let r = parse_results(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].check, "api-health");
        assert!(!r[1].ok);
    }

    #[test]
    fn the_script_reads_every_variable_the_job_copies() {
        for var in API_ENV {
            assert!(SCRIPT.contains(var), "smoke_test.py does not mention {var}");
        }
    }
}
