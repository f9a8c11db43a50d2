//! Progress lines on stderr, each stamped with the time since the command started, so a log
//! shows what was applied and what is being waited for, and why.

use std::time::Instant;

/// Writes progress lines; silent when `quiet`.
pub struct Progress {
    start: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self {
            start: Instant::now(),
            quiet,
        }
    }

    pub fn line(&self, message: impl AsRef<str>) {
        if !self.quiet {
            crate::diag::eprint_message(&format!(
                "[{:>6.1}s] {}",
                self.start.elapsed().as_secs_f64(),
                message.as_ref()
            ));
        }
    }
}
