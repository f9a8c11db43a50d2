//! The commands that talk to a cluster: apply, diff, status, uninstall. Each validates its
//! input completely before its first API call.

use super::args::{
    ApplyCommand, DiffCommand, HostArgs, LogsCommand, OutputFormat, StatusCommand, UninstallCommand,
};
use super::config::parse_duration;
use crate::cluster::apply::{ApplyOptions, apply_release, phase};
use crate::cluster::bootstrap_key::read_provider_key;
use crate::cluster::delete::uninstall;
use crate::cluster::diff::{diff_release, render_text};
use crate::cluster::external::{ServiceRef, traefik_address};
use crate::cluster::progress::Progress;
use crate::cluster::status::release_status;
use crate::cluster::wait::Deadline;
use crate::cluster::{self, Connection, ResourceManager};
use crate::error::{Error, exit};
use crate::release::{self, ReleaseSpec, RenderedRelease, render_release, render_release_with};
use crate::values::ClusterInputs;
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::time::Duration;

/// Stands in for a host still to be detected, so everything else is validated first.
pub(super) const PENDING_HOST: &str = "external-host.pending.invalid";

pub(super) fn with_host(spec: &ReleaseSpec, host: &str) -> ReleaseSpec {
    let mut spec = spec.clone();
    if let Value::Object(extra) = json!({"external": {"host": host}}) {
        crate::values::merge_maps(&mut spec.injected, extra);
    }
    spec
}

/// A release rendered before any API call; the external host may still be missing.
pub(super) struct Prepared {
    pub(super) spec: ReleaseSpec,
    pub(super) rendered: Option<RenderedRelease>,
    pub(super) target: ServiceRef,
}

/// Renders once offline. When only the external host is missing, everything else is validated
/// with a placeholder and the host is looked up later, in [`Prepared::finish`].
pub(super) fn prepare(mut spec: ReleaseSpec, host: &HostArgs) -> Result<Prepared, Error> {
    if let Some(h) = &host.external_host {
        spec = with_host(&spec, h);
    }
    let target = match &host.traefik_service {
        Some(s) => ServiceRef::parse(s)?,
        // NKP's Traefik Service (versions.yaml nkpTraefik), in any namespace.
        None => ServiceRef::AnyNamespace(spec.chart.versions.nkp_traefik.clone()),
    };
    let rendered = match render_release(&spec) {
        Ok(r) => Some(r),
        Err(release::Error::Render(e)) if e.missing_paths() == ["external.host"] => {
            render_release(&with_host(&spec, PENDING_HOST))?;
            None
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Prepared {
        spec,
        rendered,
        target,
    })
}

impl Prepared {
    async fn finish(
        self,
        mgr: &ResourceManager,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<RenderedRelease, Error> {
        let (spec, rendered) = match self.rendered {
            Some(r) => (self.spec, r),
            None => {
                let host = traefik_address(mgr, &self.target, timeout, progress).await?;
                let spec = with_host(&self.spec, &host);
                let rendered = render_release(&spec)?;
                (spec, rendered)
            }
        };
        // The bootstrap Job's provider key in a Secret of the cluster is an input of the Job's
        // name: read, the release is rendered again with it (apply and diff alike).
        let ns = &rendered.release.namespace;
        match read_provider_key(mgr, &rendered.manifest, ns).await? {
            Some(key) => {
                let cluster = ClusterInputs {
                    provider_api_key: Some(key),
                };
                Ok(render_release_with(&spec, &cluster)?)
            }
            None => Ok(rendered),
        }
    }
}

/// Runs a command's async body on a single-threaded runtime: the work is I/O-bound.
pub(super) fn block_on<F: std::future::Future<Output = Result<u8, Error>>>(
    f: F,
) -> Result<u8, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("starting the runtime"))?
        .block_on(f)
}

pub(super) async fn manager(connection: Connection) -> Result<ResourceManager, Error> {
    Ok(ResourceManager::new(connection.client().await?))
}

pub fn apply(cmd: ApplyCommand) -> Result<u8, Error> {
    let timeout = parse_duration(&cmd.timeout)?;
    let prepared = prepare(cmd.render.to_spec(cmd.release.to_release()?)?, &cmd.host)?;
    let options = ApplyOptions {
        force: cmd.force_conflicts,
        dry_run: cmd.dry_run == "server",
        wait: !cmd.no_wait,
        timeout,
        prune: !cmd.no_prune,
        delete_data: cmd.delete_data,
    };
    let skip_doctor = cmd.skip_doctor;
    let json_output = cmd.output == OutputFormat::Json;
    // Ask only a person: a terminal on stdin, not CI, not a dry run.
    let ask = !cmd.yes && !options.dry_run && interactive();
    let connection = cmd.cluster.connection();
    block_on(async move {
        let progress = Progress::new(false);
        let mut since = std::time::Instant::now();
        let mgr = manager(connection).await?;
        phase("client (kubeconfig, TLS)", &mut since);
        let target = prepared.target.clone();
        let rendered = prepared.finish(&mgr, timeout, &progress).await?;
        phase("render finished (host, cluster inputs)", &mut since);
        if !skip_doctor {
            super::doctor::gate(&mgr, &rendered, target, &progress).await?;
            phase("doctor", &mut since);
        }
        if ask && !confirm_changes(&mgr, &rendered, options.force).await? {
            return Err(Error::Usage("not confirmed; nothing was applied".into()));
        }
        let report = match apply_release(&mgr, &rendered, &options, &progress).await {
            Ok(report) => report,
            Err(e) => {
                // With --output json a failed wait is a result too: why each object is not
                // ready, on stdout; the error itself still goes to stderr.
                if json_output && e.is_wait_failure() {
                    let diagnoses = match &e {
                        cluster::Error::Diagnosed { diagnoses, .. } => diagnoses.clone(),
                        _ => Vec::new(),
                    };
                    let text = serde_json::to_string_pretty(&json!({
                        "release": rendered.release.name,
                        "namespace": rendered.release.namespace,
                        "difyVersion": rendered.dify_version(),
                        "result": "waitFailed",
                        "diagnoses": diagnoses,
                    }))
                    .expect("serialises");
                    print(&(text + "\n"))?;
                }
                return Err(e.into());
            }
        };
        if json_output {
            let text = serde_json::to_string_pretty(&json!({
                "release": rendered.release.name,
                "namespace": rendered.release.namespace,
                "difyVersion": rendered.dify_version(),
                "externalUrl": rendered.external_url(),
                "dryRun": options.dry_run,
                "transition": report.transition,
                "objects": report.changes.iter().map(|(object, action)| json!({"object": object, "action": action})).collect::<Vec<_>>(),
                "pruned": report.pruned.deleted,
                "kept": report.pruned.kept.iter().map(|(object, why)| json!({"object": object, "reason": why})).collect::<Vec<_>>(),
                "result": if options.dry_run { "dryRun" } else { "applied" },
                "written": report.writes(),
                "ready": options.wait && !options.dry_run,
                "notes": if options.dry_run { Vec::new() } else { rendered.notes() },
            }))
            .expect("serialises");
            print(&(text + "\n"))?;
            return Ok(exit::OK);
        }
        let verb = if options.dry_run {
            "would write"
        } else {
            "wrote"
        };
        let pruned = if options.dry_run {
            "would prune"
        } else {
            "pruned"
        };
        let upgraded = match &report.transition {
            Some(crate::versions::Transition::Upgrade { from, .. }) => {
                format!(" (upgrade from {from})")
            }
            _ => String::new(),
        };
        // Through `print`: a closed stdout is not a panic.
        print(&format!(
            "Dify {}{upgraded} at {}: {verb} {} of {} objects, {pruned} {}, kept {}{}\n",
            rendered.dify_version(),
            rendered.external_url(),
            report.writes(),
            report.changes.len(),
            report.pruned.deleted.len(),
            report.pruned.kept.len(),
            if options.wait && !options.dry_run {
                ", all ready"
            } else {
                ""
            }
        ))?;
        if !options.dry_run {
            print(&super::notes_text(&rendered.notes()))?;
        }
        Ok(exit::OK)
    })
}

pub fn diff(cmd: DiffCommand) -> Result<u8, Error> {
    let timeout = parse_duration(&cmd.timeout)?;
    let prepared = prepare(cmd.render.to_spec(cmd.release.to_release()?)?, &cmd.host)?;
    let color = match cmd.color.as_str() {
        "always" => true,
        "never" => false,
        _ => std::io::stdout().is_terminal(),
    };
    let connection = cmd.cluster.connection();
    block_on(async move {
        let progress = Progress::new(true);
        let mgr = manager(connection).await?;
        let rendered = prepared.finish(&mgr, timeout, &progress).await?;
        let (plan, diffs) = diff_release(&mgr, &rendered, cmd.force_conflicts).await?;
        let text = match cmd.output {
            OutputFormat::Json => {
                serde_json::to_string_pretty(&json!({ "release": plan, "differences": diffs }))
                    .expect("serialises")
                    + "\n"
            }
            OutputFormat::Text => plan.to_text() + &render_text(&diffs, color),
        };
        print(&text)?;
        Ok(if diffs.is_empty() {
            exit::OK
        } else {
            exit::DIFFERENT
        })
    })
}

pub(super) fn no_release(release: &str, namespace: &str) -> Error {
    Error::Cluster(cluster::Error::NotFound(format!(
        "no release {release} in namespace {namespace}: its inventory ConfigMap {} does not exist",
        cluster::inventory::name_of(release)
    )))
}

pub fn status(cmd: StatusCommand) -> Result<u8, Error> {
    cmd.release.to_release()?;
    let connection = cmd.cluster.connection();
    block_on(async move {
        let mgr = manager(connection).await?;
        let (release, namespace) = (&cmd.release.release, &cmd.release.namespace);
        let Some(status) = release_status(&mgr, release, namespace).await? else {
            return Err(no_release(release, namespace));
        };
        let text = match cmd.output {
            OutputFormat::Json => serde_json::to_string_pretty(&status).expect("serialises") + "\n",
            OutputFormat::Text => status.to_table(),
        };
        print(&text)?;
        Ok(if status.all_ready() {
            exit::OK
        } else {
            exit::DIFFERENT
        })
    })
}

/// Most lines per container `logs` prints: the diagnostics rule shows no more.
const MAX_LOG_LINES: i64 = 200;

pub fn logs(cmd: LogsCommand) -> Result<u8, Error> {
    cmd.release.to_release()?;
    if !crate::manifest::COMPONENTS.contains(&cmd.component.as_str()) {
        return Err(Error::Usage(format!(
            "unknown component {} for logs; known: {}",
            crate::diag::excerpt(&cmd.component),
            crate::manifest::COMPONENTS.join(", ")
        )));
    }
    if !(1..=MAX_LOG_LINES).contains(&cmd.tail) {
        return Err(Error::Usage(format!(
            "--tail must be between 1 and {MAX_LOG_LINES}"
        )));
    }
    let connection = cmd.cluster.connection();
    block_on(async move {
        let mgr = manager(connection).await?;
        let (release, namespace) = (&cmd.release.release, &cmd.release.namespace);
        let Some(inv) = cluster::inventory::read(&mgr, release, namespace).await? else {
            return Err(no_release(release, namespace));
        };
        let text = cluster::diagnose::component_logs(
            &mgr,
            &inv,
            &cmd.component,
            cmd.container.as_deref(),
            cmd.previous,
            cmd.tail,
        )
        .await?;
        print(&text)?;
        Ok(exit::OK)
    })
}

pub fn uninstall_cmd(cmd: UninstallCommand) -> Result<u8, Error> {
    cmd.release.to_release()?;
    let timeout = parse_duration(&cmd.timeout)?;
    let (release, namespace) = (cmd.release.release.clone(), cmd.release.namespace.clone());
    if cmd.delete_data && !cmd.yes {
        confirm_data_deletion(&release, &namespace)?;
    }
    let connection = cmd.cluster.connection();
    block_on(async move {
        let progress = Progress::new(false);
        let mgr = manager(connection).await?;
        let wait = (!cmd.no_wait).then(|| Deadline::after(timeout));
        let Some(report) =
            uninstall(&mgr, &release, &namespace, cmd.delete_data, wait, &progress).await?
        else {
            return Err(no_release(&release, &namespace));
        };
        let mut text = format!(
            "release {release} uninstalled: deleted {}, kept {}\n",
            report.deleted.len(),
            report.kept.len()
        );
        for (object, why) in &report.kept {
            text.push_str(&format!("  kept {object}: {why}\n"));
        }
        print(&text)?;
        Ok(exit::OK)
    })
}

/// Whether a person can be asked: stdin is a terminal and `$CI` is not set.
fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::env::var_os("CI").is_none_or(|v| v.is_empty())
}

/// Shows what apply would change (the diff, secrets masked) and asks on the terminal.
/// `true` when confirmed, or when there is nothing to change.
async fn confirm_changes(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    force: bool,
) -> Result<bool, Error> {
    let (plan, diffs) = diff_release(mgr, rendered, force).await?;
    if diffs.is_empty() {
        return Ok(true);
    }
    let color = std::io::stderr().is_terminal();
    for line in (plan.to_text() + &render_text(&diffs, color)).lines() {
        crate::diag::eprint_message(line);
    }
    crate::diag::prompt(&format!(
        "Apply these changes to {} objects? [y/N] ",
        diffs.len()
    ));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(Error::io("reading the confirmation"))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// `--delete-data` without `--yes` asks on the terminal; with no terminal it refuses.
fn confirm_data_deletion(release: &str, namespace: &str) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "--delete-data deletes the release's volumes and keys; confirm with --yes (stdin is not a terminal to ask on)".into(),
        ));
    }
    crate::diag::prompt(&format!(
        "This deletes the volumes (PostgreSQL, Redis, Weaviate, file storage) and the keys Secret of release {release} \
         in namespace {namespace}; they cannot be recovered. Type the release name to confirm: "
    ));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(Error::io("reading the confirmation"))?;
    if answer.trim() == release {
        Ok(())
    } else {
        Err(Error::Usage("not confirmed; nothing was deleted".into()))
    }
}

pub(super) fn print(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(Error::io("writing to stdout"))
}
