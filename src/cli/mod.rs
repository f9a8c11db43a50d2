//! The command line: raw arguments ([`args`]), their validation ([`config`]), and one function
//! per command.

pub mod args;
mod catalog;
mod cluster;
pub mod config;
mod doctor;

pub use args::{Cli, Command};

use crate::error::{Error, exit};
use crate::manifest::Manifest;
use crate::release::render_release;
use std::io::Write;

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Render(cmd) => render(cmd),
        Command::Apply(cmd) => cluster::apply(cmd),
        Command::Diff(cmd) => cluster::diff(cmd),
        Command::Status(cmd) => cluster::status(cmd),
        Command::Uninstall(cmd) => cluster::uninstall_cmd(cmd),
        Command::Catalog(cmd) => catalog::run(cmd),
        Command::Secrets(cmd) => catalog::secrets(cmd),
        Command::Doctor(cmd) => doctor::doctor(cmd),
        Command::Test(cmd) => doctor::test(cmd),
    }
}

fn render(cmd: args::RenderCommand) -> Result<u8, Error> {
    config::check_components(&cmd.show_only)?;
    let spec = cmd.render.to_spec(cmd.release.to_release()?)?;
    let rendered = render_release(&spec)?;
    let rendered_notes = rendered.notes();
    let manifest = if cmd.show_only.is_empty() {
        rendered.manifest
    } else {
        rendered.manifest.only_components(&cmd.show_only)
    };
    match &cmd.output_dir {
        Some(dir) => write_dir(&manifest, dir)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(manifest.to_yaml_stream().as_bytes())
                .map_err(Error::io("writing to stdout"))?;
            out.flush().map_err(Error::io("writing to stdout"))?;
        }
    }
    print_notes(&mut std::io::stderr().lock(), &rendered_notes);
    Ok(exit::OK)
}

/// The release's notes, one per line. A closed or full stream is not an error.
pub(crate) fn print_notes(out: &mut impl Write, notes: &[String]) {
    for note in notes {
        let _ = writeln!(out, "Note: {note}");
    }
}

fn write_dir(manifest: &Manifest, dir: &std::path::Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    for r in &manifest.resources {
        let path = dir.join(Manifest::file_name(r));
        let text = format!("# Source: {}\n{}", r.template, r.to_yaml());
        std::fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))?;
    }
    Ok(())
}
