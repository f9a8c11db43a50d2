//! The one rule every user-facing message follows, in one place: no secret value, and no echo
//! of input longer than a line. Errors, warnings and progress all reach stderr through
//! [`eprint_message`] or [`report`], and a write that fails (a closed or full stderr) is ignored
//! instead of panicking as `eprintln!` would.
//!
//! Secrets are registered by the layer that reads them ([`register_secret`]: the master key, a
//! key file, every `secrets.*` value), so a message that somehow quotes one still prints `***`.
//! Layers also cut what they echo at the source with [`excerpt`]; this is the backstop.

use std::io::Write;
use std::sync::Mutex;

/// Longest line of a message printed as it is; longer lines are cut.
pub const MAX_LINE_CHARS: usize = 320;
/// Most lines of one message; the rest is summarised.
pub const MAX_LINES: usize = 200;
/// Longest piece of user input quoted in a message by [`excerpt`].
pub const MAX_EXCERPT_CHARS: usize = 60;
/// Shortest registered secret that is masked: shorter strings would mask ordinary words.
const MIN_SECRET_CHARS: usize = 4;

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers a secret value so that no message of this process can print it.
pub fn register_secret(secret: &str) {
    if secret.chars().count() < MIN_SECRET_CHARS {
        return;
    }
    let mut secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_owned());
    }
}

/// A quoted, bounded excerpt of user input for a message: at most [`MAX_EXCERPT_CHARS`]
/// characters, control characters escaped, with the full length when it was cut.
pub fn excerpt(text: &str) -> String {
    let count = text.chars().count();
    let shown: String = text.chars().take(MAX_EXCERPT_CHARS).collect();
    if count > MAX_EXCERPT_CHARS {
        format!("{shown:?}… ({count} characters)")
    } else {
        format!("{shown:?}")
    }
}

/// `text` made safe to show: registered secrets (and their base64 forms) replaced by `***`,
/// every line cut to [`MAX_LINE_CHARS`], at most [`MAX_LINES`] lines.
pub fn sanitize(text: &str) -> String {
    let mut text = text.to_owned();
    {
        let secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
        let mut forms: Vec<String> = secrets
            .iter()
            .flat_map(|s| {
                use base64::Engine;
                [
                    s.clone(),
                    base64::engine::general_purpose::STANDARD.encode(s),
                ]
            })
            .collect();
        // Longest first, so a secret containing another is masked whole.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        for form in forms {
            if text.contains(&form) {
                text = text.replace(&form, "***");
            }
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i == MAX_LINES {
            out.push_str(&format!("… and {} more lines\n", lines.len() - MAX_LINES));
            break;
        }
        let count = line.chars().count();
        if count > MAX_LINE_CHARS {
            let kept: String = line.chars().take(MAX_LINE_CHARS - 40).collect();
            out.push_str(&format!(
                "{kept}… ({} more characters)",
                count - (MAX_LINE_CHARS - 40)
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !text.ends_with('\n') {
        out.pop();
    }
    out
}

/// Writes one message line (or several) to stderr, sanitized; a failed write is ignored.
pub fn eprint_message(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", sanitize(text));
    let _ = err.flush();
}

/// Prints an error as `error: …`, through [`sanitize`].
pub fn report(error: &dyn std::fmt::Display) {
    eprint_message(&format!("error: {error}"));
}

/// Writes a prompt (no newline) to stderr; a failed write is ignored.
pub fn prompt(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{}", sanitize(text));
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_plain_and_base64_form() {
        register_secret("diag-test-secret-value");
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode("diag-test-secret-value")
        };
        let out = sanitize(&format!("a diag-test-secret-value b {b64} c"));
        assert_eq!(out, "a *** b *** c");
        // A negative control: other text is untouched.
        assert_eq!(sanitize("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn long_lines_and_many_lines_are_cut() {
        let long = "x".repeat(10_000);
        let out = sanitize(&format!("head {long}\nnext"));
        let first = out.lines().next().unwrap();
        assert!(first.chars().count() <= MAX_LINE_CHARS + 30, "{first}");
        assert!(first.ends_with("(9725 more characters)"), "{first}");
        assert!(out.ends_with("\nnext"));
        let many: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let out = sanitize(&many);
        assert_eq!(out.lines().count(), MAX_LINES + 1);
        assert!(out.ends_with("… and 800 more lines\n"), "{out}");
    }

    #[test]
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(excerpt("a\nb"), "\"a\\nb\"");
        let cut = excerpt(&"y".repeat(100));
        assert!(cut.ends_with("… (100 characters)"), "{cut}");
        assert!(cut.len() < 90);
    }
}
