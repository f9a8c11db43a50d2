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

/// `text` with the user information of every URL in it (`scheme://user:password@host`)
/// replaced by `***@`: a proxy, endpoint or repository URL may carry a credential, and no
/// message may print one, whichever layer wrote the message.
pub fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace (or a quote, when the
        // URL is quoted in the message); the user information is everything up to its last '@'.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***@");
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `text` with every control character (a newline included) written as an escape (`\n`,
/// `\u{1b}`): a value echoed in a message stays on its line and cannot move the terminal's
/// cursor or forge a line of its own.
pub fn escape_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` made safe to show: registered secrets (and their base64 forms) replaced by `***`,
/// the user information of URLs removed, control characters other than newlines and tabs
/// escaped, every line cut to [`MAX_LINE_CHARS`], at most [`MAX_LINES`] lines.
pub fn sanitize(text: &str) -> String {
    let mut text = strip_userinfo(text);
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
    // Split on '\n' only: a '\r' is escaped as any other control character, not dropped.
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let lines: Vec<&str> = if body.is_empty() && text.is_empty() {
        Vec::new()
    } else {
        body.split('\n').collect()
    };
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i == MAX_LINES {
            out.push_str(&format!("… and {} more lines\n", lines.len() - MAX_LINES));
            break;
        }
        let escaped;
        let line = if line.chars().any(|c| c.is_control() && c != '\t') {
            escaped = line
                .split('\t')
                .map(escape_control)
                .collect::<Vec<_>>()
                .join("\t");
            escaped.as_str()
        } else {
            line
        };
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
    fn url_credentials_are_stripped() {
        assert_eq!(
            sanitize("proxy http://puser:PROXYsecret@127.0.0.1:2/x failed"),
            "proxy http://***@127.0.0.1:2/x failed"
        );
        assert_eq!(
            strip_userinfo("\"https://u:p@a@git.example.com\" and s3://k@b"),
            "\"https://***@git.example.com\" and s3://***@b"
        );
        // A negative control: URLs without user information and plain '@' are untouched.
        let plain = "https://dify.example.com/a@b and mail@example.com";
        assert_eq!(strip_userinfo(plain), plain);
    }

    #[test]
    fn control_characters_are_escaped_but_lines_kept() {
        assert_eq!(
            sanitize("a\u{1b}[2Jb\r\nnext\tcol"),
            "a\\u{1b}[2Jb\\r\nnext\tcol"
        );
        assert_eq!(escape_control("x\nINJECTED"), "x\\nINJECTED");
    }

    #[test]
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(excerpt("a\nb"), "\"a\\nb\"");
        let cut = excerpt(&"y".repeat(100));
        assert!(cut.ends_with("… (100 characters)"), "{cut}");
        assert!(cut.len() < 90);
    }
}
