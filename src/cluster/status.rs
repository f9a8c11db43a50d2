//! `status`: every object of the release, read from the inventory alone (no listing of API
//! types), judged by the same readiness rules as `apply --wait`.

use super::diagnose::{self, Diagnosis};
use super::inventory::{self, Inventory};
use super::wait::object_readiness;
use super::{Error, ResourceManager};
use futures::StreamExt;
use serde::Serialize;

/// One object's state.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectStatus {
    pub component: String,
    pub object: String,
    pub ready: bool,
    pub reason: String,
    /// Why it is not ready, and what to try.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}

/// A release's state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStatus {
    pub release: String,
    pub namespace: String,
    pub dify_version: String,
    /// The Alembic revision its migration reached ("" outside the release table).
    pub alembic_head: String,
    /// Images set explicitly instead of the release's pins.
    pub overrides: Vec<String>,
    pub external_url: String,
    pub last_applied: String,
    pub state: inventory::State,
    pub objects: Vec<ObjectStatus>,
}

impl ReleaseStatus {
    pub fn all_ready(&self) -> bool {
        self.objects.iter().all(|o| o.ready)
    }

    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "release   {} (namespace {})\ndify      {}{}\n{}url       {}\napplied   {} ({})\n\n",
            self.release,
            self.namespace,
            self.dify_version,
            if self.alembic_head.is_empty() {
                String::new()
            } else {
                format!(" (Alembic {})", self.alembic_head)
            },
            self.overrides
                .iter()
                .map(|o| format!("override  {o}\n"))
                .collect::<String>(),
            self.external_url,
            self.last_applied,
            serde_json::to_value(self.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        );
        let wc = self
            .objects
            .iter()
            .map(|o| o.component.len())
            .max()
            .unwrap_or(0)
            .max("COMPONENT".len());
        let wo = self
            .objects
            .iter()
            .map(|o| o.object.len())
            .max()
            .unwrap_or(0)
            .max("OBJECT".len());
        out.push_str(&format!(
            "{:wc$}  {:wo$}  READY  REASON\n",
            "COMPONENT", "OBJECT"
        ));
        for o in &self.objects {
            let reason = if o.ready { "" } else { o.reason.as_str() };
            let line = format!(
                "{:wc$}  {:wo$}  {:5}  {reason}",
                o.component,
                o.object,
                if o.ready { "yes" } else { "no" }
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let diagnoses: Vec<Diagnosis> = self
            .objects
            .iter()
            .filter_map(|o| o.diagnosis.clone())
            .collect();
        if !diagnoses.is_empty() {
            out.push('\n');
            out.push_str(&diagnose::text_of(&diagnoses));
        }
        out
    }
}

/// The status of a release, or `None` when it has no inventory.
pub async fn release_status(
    mgr: &ResourceManager,
    release: &str,
    namespace: &str,
) -> Result<Option<ReleaseStatus>, Error> {
    let Some(inv) = inventory::read(mgr, release, namespace).await? else {
        return Ok(None);
    };
    Ok(Some(status_of(mgr, &inv).await?))
}

async fn status_of(mgr: &ResourceManager, inv: &Inventory) -> Result<ReleaseStatus, Error> {
    let mut entries: Vec<_> = inv.entries.iter().collect();
    entries.sort_by_key(|e| (e.stage(), e.kind.clone(), e.name.clone()));
    let lives: Vec<Result<Option<serde_json::Value>, Error>> =
        futures::stream::iter(entries.iter().map(|e| mgr.get_entry(e)))
            .buffered(16)
            .collect()
            .await;
    let mut objects = Vec::new();
    let mut classes = std::collections::HashMap::new();
    let mut registered = false;
    for (e, live) in entries.iter().zip(lives) {
        let state = object_readiness(mgr, &e.kind, live?, &mut classes).await;
        let diagnosis = match (&e.namespace, state.is_ready()) {
            (Some(ns), false) => {
                // Logs and events may quote a value of the release's Secrets.
                if !registered {
                    diagnose::register_inventory_secrets(mgr, inv).await;
                    registered = true;
                }
                Some(
                    diagnose::diagnose(mgr, &e.kind, ns, &e.name, &e.component, state.reason())
                        .await,
                )
            }
            _ => None,
        };
        objects.push(ObjectStatus {
            component: e.component.clone(),
            object: e.id(),
            ready: state.is_ready(),
            reason: state.reason().to_owned(),
            diagnosis,
        });
    }
    Ok(ReleaseStatus {
        release: inv.release.clone(),
        namespace: inv.namespace.clone(),
        dify_version: inv.dify_version.clone(),
        alembic_head: inv.alembic_head.clone(),
        overrides: inv.overrides.clone(),
        external_url: inv.external_url.clone(),
        last_applied: inv.last_applied.clone(),
        state: inv.state,
        objects,
    })
}
