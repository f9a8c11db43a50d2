//! The `difyrender` binary: parse arguments, run, map the outcome to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = difyrender::cli::Cli::parse();
    match difyrender::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            difyrender::diag::report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
