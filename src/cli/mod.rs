//! The command line: raw arguments ([`args`]), their validation ([`config`]), and one function
//! per command.

pub mod args;
mod catalog;
mod cluster;
pub mod config;
mod doctor;
pub mod output_dir;
mod secrets;
mod versions;

pub use args::{Cli, Command};

use crate::error::{Error, exit};
use crate::release::render_release;
use std::io::Write;

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Render(cmd) => render(cmd),
        Command::Apply(cmd) => cluster::apply(cmd),
        Command::Diff(cmd) => cluster::diff(cmd),
        Command::Status(cmd) => cluster::status(cmd),
        Command::Logs(cmd) => cluster::logs(cmd),
        Command::Completion(cmd) => completion(cmd),
        Command::Uninstall(cmd) => cluster::uninstall_cmd(cmd),
        Command::Catalog(cmd) => catalog::run(cmd),
        Command::Secrets(cmd) => secrets::secrets(cmd),
        Command::Doctor(cmd) => doctor::doctor(cmd),
        Command::Test(cmd) => doctor::test(cmd),
        Command::Images(cmd) => versions::images(cmd),
        Command::Versions(cmd) => versions::versions(cmd),
    }
}

/// `completion SHELL`: the script clap_complete generates from the command definitions.
fn completion(cmd: args::CompletionCommand) -> Result<u8, Error> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(cmd.shell, &mut Cli::command(), "difyrender", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|_| out.flush())
        .map_err(Error::io("writing to stdout"))?;
    Ok(exit::OK)
}

fn render(cmd: args::RenderCommand) -> Result<u8, Error> {
    config::check_components(&cmd.show_only)?;
    let spec = cmd.render.to_spec(cmd.release.to_release()?)?;
    let rendered =
        crate::render::stages::time("render_release (all stages)", || render_release(&spec))?;
    let started = crate::render::stages::enabled().then(std::time::Instant::now);
    let rendered_notes = rendered.notes();
    let manifest = if cmd.show_only.is_empty() {
        rendered.manifest
    } else {
        rendered.manifest.only_components(&cmd.show_only)
    };
    match &cmd.output_dir {
        Some(dir) => output_dir::write_dir(&manifest, dir)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(manifest.to_yaml_stream().as_bytes())
                .map_err(Error::io("writing to stdout"))?;
            out.flush().map_err(Error::io("writing to stdout"))?;
        }
    }
    if !rendered_notes.is_empty() {
        crate::diag::eprint_message(notes_text(&rendered_notes).trim_end());
    }
    if let Some(started) = started {
        crate::render::stages::record("output: notes, YAML stream, write", started.elapsed());
    }
    Ok(exit::OK)
}

/// The release's notes as text, one `Note:` line each.
pub(crate) fn notes_text(notes: &[String]) -> String {
    notes.iter().map(|n| format!("Note: {n}\n")).collect()
}
