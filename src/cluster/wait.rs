//! Waiting until objects are ready, by the rules in [`super::readiness`], reporting each
//! change of reason. The objects' kinds are watched: every change wakes the wait, which then
//! reads the objects again (list-then-watch: the watches start before the first read, so no
//! change between the read and the wait is missed). A slow re-read every few seconds covers an
//! account that may not watch, or a watch that broke.

use super::diagnose;
use super::progress::Progress;
use super::readiness::{Readiness, readiness};
use super::{Error, ResourceManager};
use crate::manifest::Resource;
use futures::StreamExt;
use futures::future::join_all;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a wait trusts the watches alone before reading the objects again anyway.
const REREAD_INTERVAL: Duration = Duration::from_secs(2);

/// Wakes a wait whenever an object of the watched kinds changes: one watch per kind and
/// namespace of the objects waited for. The watches stop when this is dropped.
struct Changes {
    notify: Arc<Notify>,
    watches: Vec<tokio::task::JoinHandle<()>>,
}

impl Changes {
    fn watch(mgr: &ResourceManager, resources: &[&Resource]) -> Self {
        let notify = Arc::new(Notify::new());
        let kinds: BTreeSet<(&str, &str, Option<&str>)> = resources
            .iter()
            .map(|r| {
                (
                    r.api_version.as_str(),
                    r.kind.as_str(),
                    r.namespace.as_deref(),
                )
            })
            .collect();
        let watches = kinds
            .into_iter()
            .map(|(api_version, kind, namespace)| {
                let api = mgr.api_of(api_version, kind, namespace);
                let notify = notify.clone();
                tokio::spawn(async move {
                    let events = watcher(api, watcher::Config::default()).default_backoff();
                    let mut events = std::pin::pin!(events);
                    while let Some(event) = events.next().await {
                        // An error (a watch the account may not open) is retried with backoff
                        // by the watcher; the periodic re-read covers the time in between.
                        if event.is_ok() {
                            notify.notify_one();
                        }
                    }
                })
            })
            .collect();
        Self { notify, watches }
    }

    /// Until an object changes or `limit` passes.
    async fn next(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.notify.notified()).await;
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        for watch in &self.watches {
            watch.abort();
        }
    }
}

/// Readiness of one object from its live state (`None`: not found). `classes` caches whether
/// each StorageClass binds on first consumer, so a PVC's class is fetched once per run.
pub async fn object_readiness(
    mgr: &ResourceManager,
    kind: &str,
    live: Option<Value>,
    classes: &mut HashMap<String, bool>,
) -> Readiness {
    let Some(live) = live else {
        return Readiness::Waiting("not found".into());
    };
    let mut first_consumer = false;
    if kind == "PersistentVolumeClaim"
        && let Some(class) = live
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
    {
        if !classes.contains_key(class) {
            classes.insert(class.to_owned(), binds_on_first_consumer(mgr, class).await);
        }
        first_consumer = classes[class];
    }
    readiness(kind, &live, first_consumer)
}

/// Readiness of each object now.
pub async fn check_all(
    mgr: &ResourceManager,
    resources: &[&Resource],
) -> Result<Vec<Readiness>, Error> {
    let live = join_all(resources.iter().map(|r| mgr.get(r))).await;
    let mut classes = HashMap::new();
    let mut out = Vec::with_capacity(resources.len());
    for (r, live) in resources.iter().zip(live) {
        out.push(object_readiness(mgr, &r.kind, live?, &mut classes).await);
    }
    Ok(out)
}

/// Whether a StorageClass binds volumes only when a pod uses them. Unknown (not readable) is
/// false: then the claim must bind.
async fn binds_on_first_consumer(mgr: &ResourceManager, class: &str) -> bool {
    let api: Api<StorageClass> = Api::all(mgr.client().clone());
    match api.get_opt(class).await {
        Ok(Some(sc)) => sc.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"),
        _ => false,
    }
}

/// When waiting must end: the `--timeout` budget of the whole command.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub budget: Duration,
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }
}

/// Waits until every object is ready, one fails, or the deadline passes. Each change of an
/// object's reason is reported once.
pub async fn wait_ready(
    mgr: &ResourceManager,
    resources: &[&Resource],
    deadline: Deadline,
    progress: &Progress,
) -> Result<(), Error> {
    if resources.is_empty() {
        return Ok(());
    }
    let changes = Changes::watch(mgr, resources);
    let mut last: HashMap<String, String> = HashMap::new();
    loop {
        let states = check_all(mgr, resources).await?;
        let mut pending = Vec::new();
        for (r, state) in resources.iter().zip(&states) {
            let id = r.id();
            if last.get(&id).map(String::as_str) != Some(state.reason()) {
                if state.is_ready() {
                    if last.contains_key(&id) {
                        progress.line(format!("ready: {id}"));
                    }
                } else {
                    progress.line(format!("waiting for {id}: {}", state.reason()));
                }
                last.insert(id.clone(), state.reason().to_owned());
            }
            match state {
                Readiness::Ready => {}
                Readiness::Failed(reason) => {
                    let failed = vec![(id.clone(), reason.clone())];
                    let error = Error::Failed {
                        object: id,
                        reason: reason.clone(),
                    };
                    return Err(explain(mgr, resources, error, &failed).await);
                }
                Readiness::Waiting(reason) => pending.push((id, reason.clone())),
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline.at {
            let diagnosed = pending.clone();
            let error = Error::Timeout {
                elapsed: deadline.budget.as_secs(),
                waiting: pending,
            };
            return Err(explain(mgr, resources, error, &diagnosed).await);
        }
        changes
            .next(REREAD_INTERVAL.min(deadline.at.saturating_duration_since(Instant::now())))
            .await;
    }
}

/// A wait failure with the diagnosis of each object in `objects` (`(id, reason)`).
async fn explain(
    mgr: &ResourceManager,
    resources: &[&Resource],
    error: Error,
    objects: &[(String, String)],
) -> Error {
    let component_of = |id: &str| {
        resources
            .iter()
            .find(|r| r.id() == id)
            .map(|r| r.component.clone())
            .unwrap_or_default()
    };
    let diagnoses = diagnose::diagnose_all(mgr, objects, &component_of).await;
    diagnose::with_diagnoses(error, diagnoses)
}
