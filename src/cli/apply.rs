//! `difyrender apply`: render, find the external host, apply in stages, wait.

use super::args::ApplyCommand;
use super::config::parse_duration;
use crate::cluster::ResourceManager;
use crate::cluster::apply::{ApplyOptions, apply_manifest};
use crate::cluster::external::{DEFAULT_SERVICE, ServiceRef, traefik_address};
use crate::cluster::progress::Progress;
use crate::error::{Error, exit};
use crate::release::{self, ReleaseSpec, RenderedRelease, render_release};
use serde_json::{Value, json};

/// Stands in for a host still to be detected, so everything else is validated first.
const PENDING_HOST: &str = "external-host.pending.invalid";

fn with_host(spec: &ReleaseSpec, host: &str) -> ReleaseSpec {
    let mut spec = spec.clone();
    if let Value::Object(extra) = json!({"external": {"host": host}}) {
        crate::values::merge_maps(&mut spec.injected, extra);
    }
    spec
}

/// Renders once before any API call. `Ok(None)` means everything is valid except that the
/// external host is still unknown.
fn render_offline(spec: &ReleaseSpec) -> Result<Option<RenderedRelease>, Error> {
    match render_release(spec) {
        Ok(r) => Ok(Some(r)),
        Err(release::Error::Render(e)) if e.missing_paths() == ["external.host"] => {
            render_release(&with_host(spec, PENDING_HOST))?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn run(cmd: ApplyCommand) -> Result<u8, Error> {
    let mut spec = cmd.render.to_spec()?;
    if let Some(host) = &cmd.external_host {
        spec = with_host(&spec, host);
    }
    let timeout = parse_duration(&cmd.timeout)?;
    let target = match &cmd.traefik_service {
        Some(s) => ServiceRef::parse(s)?,
        None => ServiceRef::AnyNamespace(DEFAULT_SERVICE.to_owned()),
    };
    let rendered = render_offline(&spec)?;
    let options = ApplyOptions {
        force: cmd.force_conflicts,
        dry_run: cmd.dry_run == "server",
        wait: !cmd.no_wait,
        timeout,
    };
    let connection = cmd.cluster.connection();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("starting the runtime"))?;
    runtime.block_on(async move {
        let progress = Progress::new(false);
        let mgr = ResourceManager::new(connection.client().await?);
        let rendered = match rendered {
            Some(r) => r,
            None => {
                let host = traefik_address(&mgr, &target, timeout, &progress).await?;
                render_release(&with_host(&spec, &host))?
            }
        };
        let report = apply_manifest(&mgr, &rendered.manifest, &options, &progress)
            .await
            .map_err(Error::from)?;
        let written = report.writes();
        let verb = if options.dry_run {
            "would write"
        } else {
            "wrote"
        };
        println!(
            "Dify {} at {}: {verb} {written} of {} objects{}",
            rendered.dify_version(),
            rendered.external_url(),
            report.changes.len(),
            if options.wait && !options.dry_run {
                ", all ready"
            } else {
                ""
            }
        );
        Ok::<u8, Error>(exit::OK)
    })
}
