//! Moving a live release to another Dify release: what the inventory says runs, whether the
//! move is allowed (never to an older database head), and what changes with it.

use super::Error;
use super::inventory::Inventory;
use crate::release::RenderedRelease;
use crate::versions::{self, Transition};
use serde::Serialize;

/// Whether `rendered` may replace what `old` records. A downgrade is refused before anything
/// is written, with what to do instead. An uninstalled release that kept its data still has
/// its database: it counts.
pub fn transition(
    rendered: &RenderedRelease,
    old: Option<&Inventory>,
) -> Result<Transition, Error> {
    let from = old.map(|o| (o.dify_version.as_str(), o.alembic_head.as_str()));
    let place = format!(
        "release {} in namespace {}",
        rendered.release.name, rendered.release.namespace
    );
    let to = (
        rendered.dify.version.as_str(),
        rendered.dify.alembic_head.as_str(),
    );
    versions::check_upgrade(&rendered.versions, from, to, &place)
        .map_err(|e| Error::Usage(e.to_string()))
}

/// One component whose image changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    pub component: String,
    pub from: String,
    pub to: String,
}

/// What an apply onto a live release changes about the release itself, for `diff`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleasePlan {
    pub transition: Transition,
    /// Images that change, from the inventory's record (empty when it has none).
    pub images: Vec<ImageChange>,
    /// The migration Job that runs, and must complete before the new pods start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_job: Option<String>,
    /// Explicitly set images, as `component: image (the release pins …)`.
    pub overrides: Vec<String>,
}

impl ReleasePlan {
    pub fn of(rendered: &RenderedRelease, old: Option<&Inventory>, transition: Transition) -> Self {
        let images = match old {
            Some(o) => rendered
                .dify
                .images
                .iter()
                .filter_map(|(component, to)| {
                    let from = o.images.get(component)?;
                    (from != to).then(|| ImageChange {
                        component: component.clone(),
                        from: from.clone(),
                        to: to.clone(),
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        let migration_job = matches!(transition, Transition::Upgrade { .. })
            .then(|| {
                rendered
                    .manifest
                    .resources
                    .iter()
                    .find(|r| r.kind == "Job" && r.component == "migration")
                    .map(|r| r.id())
            })
            .flatten();
        ReleasePlan {
            transition,
            images,
            migration_job,
            overrides: rendered
                .dify
                .overrides()
                .iter()
                .map(|i| super::inventory::override_text(i))
                .collect(),
        }
    }

    /// Lines for the top of a text diff; empty when the release stays as it is.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Transition::Upgrade {
            from,
            to,
            from_head,
            to_head,
            migrates,
        } = &self.transition
        {
            out.push_str(&format!("upgrade: Dify {from} → {to}\n"));
            if *migrates {
                out.push_str(&format!(
                    "  migration: Alembic {} → {}, by {}; it must complete before any api, worker, beat or web pod of {to} starts (the {from} pods keep serving until then)\n",
                    if from_head.is_empty() { "(unknown)" } else { from_head },
                    if to_head.is_empty() { "(unknown)" } else { to_head },
                    self.migration_job.as_deref().unwrap_or("the migration Job"),
                ));
            } else {
                out.push_str(&format!(
                    "  migration: none needed (both at Alembic {to_head}); {}\n",
                    self.migration_job.as_deref().unwrap_or("the migration Job")
                ));
            }
            for c in &self.images {
                out.push_str(&format!("  image {}: {} → {}\n", c.component, c.from, c.to));
            }
            out.push_str("  volumes and the keys Secret are not changed\n");
        }
        for o in &self.overrides {
            out.push_str(&format!("override: {o}\n"));
        }
        out
    }
}
