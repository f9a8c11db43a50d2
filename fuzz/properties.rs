//! The properties the fuzz targets check. The fuzz targets (`fuzz_targets/*.rs`) and the test
//! suite (`tests/fuzz_regressions.rs`, on every saved input) include this one file, so both
//! check the same thing. Each function panics when a property fails, which is what libFuzzer
//! reports as a crash:
//!
//! - no panic inside difyrender for any input;
//! - bounded results: a parsed value is never larger than the input allows, and no message is
//!   longer than a few lines;
//! - no secret from the input in any message: a secret planted in the input never appears in
//!   an error, and an input that sets a secret is never quoted at all.

#![allow(dead_code)]

use difyrender::values::strvals::{self, ValueKind};
use difyrender::values::{self, UserValues, ValueSources};
use serde_json::{Map, Value};

/// A secret planted in fuzz inputs; it must never appear in a message.
pub const PLANTED_SECRET: &str = "Zq9Xw7Kp-planted-secret";

/// Longest message a layer may produce for any input, before `difyrender::diag::sanitize`.
pub const MAX_MESSAGE_CHARS: usize = 1024;

/// A message is bounded, and shows the planted secret only if the fuzzer also typed it where
/// no secret is expected (`k[<secret>]=1` is an index, quoted as one).
fn bounded_message(message: &str, input: &str) {
    let chars = message.chars().count();
    assert!(
        chars <= MAX_MESSAGE_CHARS,
        "a message of {chars} characters for an input of {} bytes",
        input.len()
    );
    assert!(
        !message.contains(PLANTED_SECRET) || input.contains(PLANTED_SECRET),
        "a message shows the planted secret: {message}"
    );
}

fn failing_reader(_: &str) -> Result<String, String> {
    Err("no files while fuzzing".into())
}

fn no_files(_: &std::path::Path, _: usize) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::from(std::io::ErrorKind::NotFound))
}

/// The `--set` grammar, for every kind of flag, as given and behind a planted secret.
pub fn set_grammar(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [ValueKind::Typed, ValueKind::String, ValueKind::Json] {
        let mut map = Map::new();
        match strvals::parse_into(text, &mut map, kind, &failing_reader) {
            Ok(()) => {
                let size = values::size_of(&Value::Object(map), usize::MAX);
                assert!(
                    size <= 16 * text.len() + strvals::MAX_LIST_SLOTS + 64,
                    "{size} bytes of values from {} bytes of input",
                    text.len()
                );
            }
            Err(e) => bounded_message(&e.0, text),
        }
        // Behind a secret: nothing of the input may be quoted.
        let planted = format!("secrets.postgresPassword={PLANTED_SECRET}{text}");
        let mut map = Map::new();
        if let Err(e) = strvals::parse_into(&planted, &mut map, kind, &failing_reader) {
            bounded_message(&e.0, text);
            assert!(!e.0.contains('"'), "a secret input was quoted: {}", e.0);
        }
    }
    // Through the values layer, as flags, which adds the flag name and key to messages.
    let sources = ValueSources {
        set: vec![
            text.to_owned(),
            format!("secrets.redisPassword={PLANTED_SECRET},{text}"),
        ],
        set_string: vec![text.to_owned()],
        ..Default::default()
    };
    if let Err(e) = UserValues::load(&sources, &no_files) {
        bounded_message(&e.to_string(), text);
    }
}

/// `--set-json`: as `KEY=JSON` pairs, and as a whole object that holds a planted secret.
pub fn set_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let whole = format!("{{\"secrets\": {{\"postgresPassword\": \"{PLANTED_SECRET}\"}}, {text}");
    let sources = ValueSources {
        set_json: vec![text.to_owned(), whole],
        ..Default::default()
    };
    if let Err(e) = UserValues::load(&sources, &no_files) {
        bounded_message(&e.to_string(), text);
    }
}

/// A values file, with a planted secret on its first line.
pub fn values_file(data: &[u8]) {
    for bytes in [
        data.to_vec(),
        [format!("secret: \"{PLANTED_SECRET}\"\n").as_bytes(), data].concat(),
    ] {
        match values::parse_values(&bytes, "fuzz.yaml") {
            Ok(map) => {
                let size = values::size_of(&Value::Object(map), usize::MAX);
                assert!(
                    size <= difyrender::yaml::MAX_VALUES_BYTES + 64,
                    "{size} bytes of values from a {} byte file",
                    bytes.len()
                );
            }
            Err(e) => {
                let message = e.to_string();
                bounded_message(&message, &String::from_utf8_lossy(data));
                assert!(
                    message.lines().count() == 1,
                    "a values file error of several lines: {message}"
                );
            }
        }
    }
}

/// The catalog's escaping for Flux's post-build substitution: whatever the text, Flux's
/// substitution (without variables) gives it back unchanged, and no `${` survives unescaped.
pub fn flux_escape(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let escaped = difyrender::catalog::manifests::escape_for_flux(text);
    assert_eq!(
        difyrender::catalog::manifests::substitute_like_flux(&escaped, &[]).as_deref(),
        Ok(text),
        "escaping does not survive substitution"
    );
    let bytes = escaped.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            // A run of `$`: an odd-length run directly before `{` would be a variable.
            let start = i;
            while i < bytes.len() && bytes[i] == b'$' {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'{' {
                assert!((i - start) % 2 == 0, "an unescaped ${{ in {escaped:?}");
            }
        } else {
            i += 1;
        }
    }
}
