//! Stage timings of one process, for profiling: when the binary runs with `DIFYRENDER_STAGES`
//! set, every stage of a render (chart loading, values, schema, release table, template
//! environment, each template, parse-back and typed checks, output) is timed and the list is
//! printed to stderr at exit. Off, a stage costs one relaxed atomic load. Timings are only ever
//! printed, never compared: nothing checks a duration.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static CLOCK: OnceLock<Instant> = OnceLock::new();
static LOG: Mutex<Vec<(String, Duration)>> = Mutex::new(Vec::new());

/// Starts the clock and turns recording on (called by `main` when `DIFYRENDER_STAGES` is set).
pub fn enable() {
    CLOCK.get_or_init(Instant::now);
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether stages are being recorded.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Records one stage's duration under `name`.
pub fn record(name: impl Into<String>, took: Duration) {
    if enabled() {
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.into(), took));
    }
}

/// Runs `f`, recording how long it took under `name` when recording is on.
pub fn time<T>(name: &str, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let start = Instant::now();
    let out = f();
    record(name, start.elapsed());
    out
}

/// The recorded stages and the time since [`enable`], one line each, in milliseconds.
pub fn report() -> String {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for (name, took) in log.iter() {
        out.push_str(&format!("{:>9.3} ms  {name}\n", took.as_secs_f64() * 1e3));
    }
    if let Some(start) = CLOCK.get() {
        out.push_str(&format!(
            "{:>9.3} ms  main() to exit\n",
            start.elapsed().as_secs_f64() * 1e3
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_recorded_until_enabled_and_everything_after() {
        // One test owns the process-wide switch: disabled first, then enabled.
        time("before", || ());
        assert!(!report().contains("before"));
        enable();
        assert_eq!(time("after", || 7), 7);
        let text = report();
        assert!(text.contains("ms  after\n"), "{text}");
        assert!(text.contains("main() to exit"), "{text}");
    }
}
