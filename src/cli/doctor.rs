//! `difyrender doctor` (before an install), the doctor gate `apply` runs first, and
//! `difyrender test` (after an install).

use super::args::{DoctorCommand, OutputFormat, TestCommand};
use super::cluster::{PENDING_HOST, block_on, manager, no_release, prepare, print, with_host};
use super::config::parse_duration;
use crate::cluster::doctor::{self, Options, Report, Verdict};
use crate::cluster::external::ServiceRef;
use crate::cluster::progress::Progress;
use crate::cluster::{self, ResourceManager, smoketest};
use crate::error::{Error, exit};
use crate::release::{RenderedRelease, render_release};

pub fn doctor(cmd: DoctorCommand) -> Result<u8, Error> {
    let prepared = prepare(cmd.render.to_spec(cmd.release.to_release()?)?, &cmd.host)?;
    // Without external.host, everything else is checked with a placeholder, and the traefik
    // check says whether apply would find the address.
    let host_given = prepared.rendered.is_some();
    let rendered = match prepared.rendered {
        Some(r) => r,
        None => render_release(&with_host(&prepared.spec, PENDING_HOST))?,
    };
    let options = Options {
        traefik: prepared.target,
        host_given,
    };
    let connection = cmd.cluster.connection();
    block_on(async move {
        let mgr = manager(connection).await?;
        let report = doctor::run(&mgr, &rendered, &options).await?;
        let text = match cmd.output {
            OutputFormat::Json => serde_json::to_string_pretty(&report).expect("serialises") + "\n",
            OutputFormat::Text => report.to_text(),
        };
        print(&text)?;
        Ok(if report.failed() {
            exit::DIFFERENT
        } else {
            exit::OK
        })
    })
}

/// Runs doctor before apply writes anything; a FAIL stops the apply (exit code 3).
pub(super) async fn gate(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    traefik: ServiceRef,
    progress: &Progress,
) -> Result<(), Error> {
    // By now the host is known: given, or found on the Traefik Service.
    let options = Options {
        traefik,
        host_given: true,
    };
    let report: Report = doctor::run(mgr, rendered, &options).await?;
    for c in &report.checks {
        if c.verdict != Verdict::Pass {
            progress.line(format!(
                "doctor: {} {}: {}",
                match c.verdict {
                    Verdict::Fail => "FAIL",
                    _ => "WARN",
                },
                c.name,
                c.reason
            ));
            for d in &c.details {
                progress.line(format!("doctor:   - {d}"));
            }
            if let Some(fix) = &c.fix {
                progress.line(format!("doctor:   fix: {fix}"));
            }
        }
    }
    progress.line(format!(
        "doctor: {} passed, {} warnings, {} failed",
        report.count(Verdict::Pass),
        report.count(Verdict::Warn),
        report.count(Verdict::Fail)
    ));
    if report.failed() {
        return Err(Error::Cluster(cluster::Error::Doctor(format!(
            "apply refused: doctor found {} problem(s) that would make the install fail:\n  {}\nNothing was written. Fix them (see the fixes above, or run `difyrender doctor`), or re-run with --skip-doctor.",
            report.count(Verdict::Fail),
            report.failures().join("\n  ")
        ))));
    }
    Ok(())
}

pub fn test(cmd: TestCommand) -> Result<u8, Error> {
    cmd.release.to_release()?;
    let options = smoketest::Options {
        keep: cmd.keep,
        through_ingress: cmd.through_ingress,
        timeout: parse_duration(&cmd.timeout)?,
    };
    let connection = cmd.cluster.connection();
    block_on(async move {
        let progress = Progress::new(false);
        let mgr = manager(connection).await?;
        let (release, namespace) = (&cmd.release.release, &cmd.release.namespace);
        let Some(report) = smoketest::run(&mgr, release, namespace, &options, &progress).await?
        else {
            return Err(no_release(release, namespace));
        };
        let text = match cmd.output {
            OutputFormat::Json => serde_json::to_string_pretty(&report).expect("serialises") + "\n",
            OutputFormat::Text => report.to_table(),
        };
        print(&text)?;
        Ok(if report.passed() {
            exit::OK
        } else {
            exit::DIFFERENT
        })
    })
}
