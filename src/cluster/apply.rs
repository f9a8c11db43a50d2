//! Staged server-side apply, after fluxcd/pkg ssa: every object is first dry-run applied and
//! compared with its live state; only objects that would change are written; all dry runs pass
//! before the first write past the namespace, so a conflict, a forbidden verb or an immutable
//! field stops the apply with nothing half-applied.

use super::delete::{DeleteReport, delete_entries, keep_reason};
use super::inventory::{self, Inventory, State};
use super::manager::{is_applied_by, normalized};
use super::progress::Progress;
use super::refs::Provided;
use super::{Error, ResourceManager, upgrade, wait};
use crate::manifest::{Resource, Stage};
use crate::release::RenderedRelease;
use crate::render::stages;
use crate::versions::Transition;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Requests sent at once within a stage.
const CONCURRENCY: usize = 16;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Take over fields owned by other managers.
    pub force: bool,
    /// Send everything with `dryRun=All`; change nothing.
    pub dry_run: bool,
    pub wait: bool,
    pub timeout: Duration,
    /// Delete objects of the previous apply that the render no longer has.
    pub prune: bool,
    /// Let prune delete volume claims and the keys Secret too.
    pub delete_data: bool,
}

/// What the plan knows of the release namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceState<'a> {
    /// It exists and may hold the objects: each is read before its dry run.
    Existing,
    /// A dry run of an apply that would create it: it does not exist, so the server cannot
    /// check the objects in it.
    Missing,
    /// This apply has just created it: no object of the release can be in it, so the objects in
    /// it are not read (a cold apply sends one request per object fewer).
    Created(&'a str),
}

/// What applying an object does or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Created,
    Configured,
    Unchanged,
    /// Dry run only: its namespace does not exist yet, so the server could not check it.
    NotValidated,
}

impl Action {
    pub fn writes(self) -> bool {
        matches!(self, Action::Created | Action::Configured)
    }

    fn verb(self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Action::Created, false) => "created",
            (Action::Created, true) => "would be created",
            (Action::Configured, false) => "configured",
            (Action::Configured, true) => "would be configured",
            (Action::Unchanged, _) => "unchanged",
            (Action::NotValidated, _) => {
                "would be created (not validated: its namespace does not exist yet)"
            }
        }
    }
}

/// The dry-run outcome for one object.
#[derive(Debug, Clone)]
pub struct Planned {
    pub action: Action,
    /// The live object, if it exists.
    pub live: Option<Value>,
    /// The object as the server would store it after the apply.
    pub merged: Option<Value>,
}

/// What an apply did, object by object, in apply order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// Install, same release, or an upgrade from the recorded release.
    pub transition: Option<crate::versions::Transition>,
    pub changes: Vec<(String, Action)>,
    /// What pruning deleted and kept (or, in a dry run, would delete).
    pub pruned: DeleteReport,
}

impl ApplyReport {
    /// Number of objects written (zero for a no-op re-apply).
    pub fn writes(&self) -> usize {
        self.changes.iter().filter(|(_, a)| a.writes()).count()
    }
}

/// Dry-run applies one object and decides what a real apply would do.
pub async fn plan_one(
    mgr: &ResourceManager,
    r: &Resource,
    force: bool,
    ns: NamespaceState<'_>,
) -> Result<Planned, Error> {
    let namespace_missing = ns == NamespaceState::Missing;
    let unread =
        matches!(ns, NamespaceState::Created(created) if r.namespace.as_deref() == Some(created));
    // A controller may change the object between the GET and the dry run (a Deployment's
    // revision annotation, a claim's binding). The dry run answers with the resourceVersion it
    // was computed from, so a mismatch shows that and the pair is fetched again.
    let mut attempts = 0;
    let (live, merged) = loop {
        let live = if unread { None } else { mgr.get(r).await? };
        let merged = match mgr.apply(r, force, true).await {
            Ok(m) => m,
            Err(e) if namespace_missing && r.namespace.is_some() && e.is_not_found() => {
                return Ok(Planned {
                    action: Action::NotValidated,
                    live,
                    merged: None,
                });
            }
            Err(e) => return Err(e),
        };
        attempts += 1;
        let version = |v: &Value| v.pointer("/metadata/resourceVersion").cloned();
        if attempts == 3 || live.as_ref().is_none_or(|l| version(l) == version(&merged)) {
            break (live, merged);
        }
    };
    let action = match &live {
        None => Action::Created,
        Some(l)
            if normalized(l) == normalized(&merged) && is_applied_by(l, mgr.field_manager()) =>
        {
            Action::Unchanged
        }
        Some(_) => Action::Configured,
    };
    Ok(Planned {
        action,
        live,
        merged: Some(merged),
    })
}

/// Plans many objects concurrently; every failure is collected, not just the first.
pub async fn plan_all(
    mgr: &ResourceManager,
    resources: &[&Resource],
    force: bool,
    ns: NamespaceState<'_>,
) -> Result<Vec<Planned>, Error> {
    let results: Vec<Result<Planned, Error>> =
        futures::stream::iter(resources.iter().map(|r| plan_one(mgr, r, force, ns)))
            .buffered(CONCURRENCY)
            .collect()
            .await;
    collect(results)
}

fn collect<T>(results: Vec<Result<T, Error>>) -> Result<Vec<T>, Error> {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(Error::merge(errors))
    }
}

/// Applies the objects whose plan says they change, concurrently.
async fn write_changed(
    mgr: &ResourceManager,
    items: &[(&Resource, &Planned)],
    force: bool,
    progress: &Progress,
) -> Result<(), Error> {
    let writes = items
        .iter()
        .filter(|(_, p)| p.action.writes())
        .map(|(r, p)| async move {
            mgr.apply(r, force, false).await?;
            progress.line(format!("{} {}", r.id(), p.action.verb(false)));
            Ok::<(), Error>(())
        });
    let results: Vec<Result<(), Error>> = futures::stream::iter(writes)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    collect(results).map(|_| ())
}

/// Records the phase of an apply that ends now (`DIFYRENDER_STAGES`; profiling only, nothing
/// compares it) and starts the next.
pub fn phase(name: &str, since: &mut Instant) {
    stages::record(format!("apply: {name}"), since.elapsed());
    *since = Instant::now();
}

/// Applies a release in stages: the namespace; the pending inventory; a server dry run of
/// everything else; then config, datastores (waited for), the migration Job (waited for), the
/// apps and the routes; a wait for the apps and volume claims; the bootstrap Job (waited for);
/// then the prune of objects the
/// previous apply owned and this render no longer has, and the final inventory.
pub async fn apply_release(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    opts: &ApplyOptions,
    progress: &Progress,
) -> Result<ApplyReport, Error> {
    let deadline = wait::Deadline::after(opts.timeout);
    let (release, namespace) = (&rendered.release.name, &rendered.release.namespace);
    let mut manifest = rendered.manifest.clone();
    inventory::stamp(&mut manifest, release, namespace);
    let mut report = ApplyReport::default();
    let mut since = Instant::now();

    // Secrets the pods read but the release does not render must be there before any write.
    super::refs::check_external_secrets(mgr, &manifest, namespace, Provided::ByTheOperator).await?;
    phase("the Secrets the pods read, checked", &mut since);

    // What runs now, from the inventory, before anything is written: a downgrade (an older
    // Alembic head than the recorded one) stops here. A missing namespace reads as no release.
    let old = inventory::read(mgr, release, namespace).await?;
    phase("inventory read", &mut since);
    let transition = upgrade::transition(rendered, old.as_ref())?;
    // An upgrade's migration Job must complete before any pod of the new release starts, so it
    // is waited for even with --no-wait; the old pods keep serving meanwhile. The same holds
    // when the last apply did not finish (a pending record): its migration may not have run.
    let upgrading = matches!(transition, Transition::Upgrade { .. })
        || old.as_ref().is_some_and(|o| o.state == State::Pending);
    if let Transition::Upgrade {
        from,
        to,
        from_head,
        to_head,
        ..
    } = &transition
    {
        progress.line(format!(
            "upgrade: Dify {from} → {to} (Alembic {from_head} → {to_head}); the migration runs before the new pods"
        ));
    }
    report.transition = Some(transition);

    // Stage 1: the namespace, which holds the inventory and which every later dry run needs.
    let namespaces: Vec<&Resource> = manifest.stage(Stage::Namespace).collect();
    let ns_plans = plan_all(mgr, &namespaces, opts.force, NamespaceState::Existing).await?;
    let created_namespace = ns_plans.iter().any(|p| p.action == Action::Created);
    let ns_state = match (created_namespace, opts.dry_run) {
        (false, _) => NamespaceState::Existing,
        (true, true) => NamespaceState::Missing,
        (true, false) => NamespaceState::Created(namespace),
    };
    if !opts.dry_run {
        write_changed(
            mgr,
            &namespaces
                .iter()
                .copied()
                .zip(&ns_plans)
                .collect::<Vec<_>>(),
            opts.force,
            progress,
        )
        .await?;
    }
    for (r, p) in namespaces.iter().zip(&ns_plans) {
        report.changes.push((r.id(), p.action));
    }
    phase("namespace planned and written", &mut since);

    // The inventory is written before anything else: the union of what the last apply owned
    // and what this one will, so a failure from here on leaves a complete record.
    let mut next = Inventory::of(
        rendered,
        created_namespace || old.as_ref().is_some_and(|o| o.namespace_created),
    );
    let stale: Vec<_> = old
        .as_ref()
        .map(|o| o.entries.difference(&next.entries).cloned().collect())
        .unwrap_or_default();
    // A record that already lists every object needs no pending write (a re-apply writes nothing).
    let recorded = old.as_ref().is_some_and(|o| {
        next.entries.is_subset(&o.entries)
            && o.dify_version == next.dify_version
            && o.alembic_head == next.alembic_head
    });
    if !opts.dry_run && !recorded {
        let mut pending = next.clone();
        pending.entries.extend(stale.iter().cloned());
        pending.state = State::Pending;
        inventory::write(mgr, &pending).await?;
    }
    phase("pending inventory written", &mut since);

    // Every other object is checked by the server before anything else is written.
    let rest: Vec<&Resource> = manifest
        .resources
        .iter()
        .filter(|r| r.stage != Stage::Namespace)
        .collect();
    let plans = plan_all(mgr, &rest, opts.force, ns_state).await?;
    phase(
        &format!("{} objects planned (dry runs)", rest.len()),
        &mut since,
    );
    let planned: Vec<(&Resource, &Planned)> = rest.iter().copied().zip(&plans).collect();
    for (r, p) in &planned {
        report.changes.push((r.id(), p.action));
    }
    if opts.dry_run {
        for (id, action) in &report.changes {
            progress.line(format!("{id} {} (server dry run)", action.verb(true)));
        }
        for e in stale.iter().filter(|_| opts.prune) {
            if e.is_data() && !opts.delete_data {
                progress.line(format!(
                    "{} would be kept: {} (server dry run)",
                    e.id(),
                    keep_reason(e)
                ));
                report.pruned.kept.push((e.id(), keep_reason(e).to_owned()));
            } else {
                progress.line(format!("{} would be pruned (server dry run)", e.id()));
                report.pruned.deleted.push(e.id());
            }
        }
        return Ok(report);
    }

    // With waits, one stage at a time. Without (and no migration to wait for), nothing is
    // waited for between the stages after the config, so they are written as one batch: the
    // config first (what pods read exists before any pod), then the rest at once, each stage
    // still announced in order.
    let after_namespace = &Stage::ALL[1..];
    let batches: Vec<Vec<Stage>> = if opts.wait || upgrading {
        after_namespace.iter().map(|s| vec![*s]).collect()
    } else {
        vec![vec![Stage::Config], after_namespace[1..].to_vec()]
    };
    for batch in batches {
        let stage = batch[0];
        let items: Vec<(&Resource, &Planned)> = planned
            .iter()
            .filter(|(r, _)| batch.contains(&r.stage))
            .copied()
            .collect();
        // The apps (api, worker, plugin daemon among them) and volume claims are ready before
        // the bootstrap Job, which sets Dify up through the api, starts.
        if stage == Stage::Bootstrap && opts.wait {
            let last: Vec<&Resource> = manifest
                .resources
                .iter()
                .filter(|r| r.stage == Stage::Apps || r.kind == "PersistentVolumeClaim")
                .collect();
            progress.line(format!(
                "waiting for {} objects to become ready",
                last.len()
            ));
            wait::wait_ready(mgr, &last, deadline, progress).await?;
            progress.line("all objects are ready");
        }
        if items.is_empty() {
            continue;
        }
        for stage in &batch {
            let of_stage = || items.iter().filter(|(r, _)| r.stage == *stage);
            if of_stage().next().is_some() {
                let changed = of_stage().filter(|(_, p)| p.action.writes()).count();
                progress.line(format!(
                    "stage {} {stage}: {} objects, {changed} to write",
                    stage.number(),
                    of_stage().count()
                ));
            }
        }
        write_changed(mgr, &items, opts.force, progress).await?;
        phase(
            &format!(
                "stage {stage} and after it in its batch: {} objects written",
                items.len()
            ),
            &mut since,
        );
        // The keys Secret made by the External Secrets Operator comes before any pod that reads
        // it, also with --no-wait: a pod without it never starts.
        let external: Vec<&Resource> = items
            .iter()
            .map(|(r, _)| *r)
            .filter(|r| r.kind == "ExternalSecret")
            .collect();
        if !external.is_empty() {
            progress.line(format!(
                "waiting for {} ExternalSecret(s) to be synced by the External Secrets Operator",
                external.len()
            ));
            wait::wait_ready(mgr, &external, deadline, progress).await?;
            super::refs::check_external_secrets(
                mgr,
                &manifest,
                namespace,
                Provided::ByExternalSecrets,
            )
            .await?;
        }
        // The bootstrap Job's failure stops apply with its reason (the pod's termination
        // message and log tail, see docs/bootstrap.md).
        if ((opts.wait || upgrading) && matches!(stage, Stage::Datastores | Stage::Migration))
            || (opts.wait && stage == Stage::Bootstrap)
        {
            let objects: Vec<&Resource> = items.iter().map(|(r, _)| *r).collect();
            if stage == Stage::Bootstrap {
                progress.line("waiting for the bootstrap Job to set Dify up");
            }
            wait::wait_ready(mgr, &objects, deadline, progress).await?;
        }
    }

    // Prune, then record what remains owned: the new objects and any stale object kept.
    if opts.prune && !stale.is_empty() {
        progress.line(format!(
            "pruning {} objects the release no longer renders",
            stale.len()
        ));
        report.pruned = delete_entries(
            mgr,
            &stale,
            opts.delete_data,
            opts.wait.then_some(deadline),
            progress,
        )
        .await?;
    }
    let deleted: std::collections::BTreeSet<&String> = report.pruned.deleted.iter().collect();
    next.entries
        .extend(stale.into_iter().filter(|e| !deleted.contains(&e.id())));
    if report.writes() > 0 || !old.as_ref().is_some_and(|o| o.same_as(&next)) {
        inventory::write(mgr, &next).await?;
    }
    phase("prune and final inventory", &mut since);
    Ok(report)
}
