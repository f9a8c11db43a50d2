//! The `difyrender` binary: parse arguments, run, map the outcome to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    use difyrender::render::stages;
    // Profiling: time each stage and print the list to stderr (docs/performance.md).
    if std::env::var_os("DIFYRENDER_STAGES").is_some() {
        stages::enable();
    }
    let cli = stages::time(
        "start-up: parse the command line",
        difyrender::cli::Cli::parse,
    );
    let code = match difyrender::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            difyrender::diag::report(&e);
            ExitCode::from(e.exit_code())
        }
    };
    if stages::enabled() {
        eprint!("{}", stages::report());
    }
    code
}
