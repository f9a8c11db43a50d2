//! The one place YAML is read and written, so values files and rendered manifests follow the
//! same rules: Kubernetes' YAML 1.1 reading of octal (`0644`), duplicate keys rejected, inputs
//! bounded, and output quoted so YAML 1.1 readers (kubectl, Helm, PyYAML) see the same types.

use serde::Serialize;
use serde_json::Value;

/// Largest YAML input accepted: far above any real values file or chart, far below trouble.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;

/// Why a YAML input was refused. `Display` never includes the input text itself, so a
/// secret on a malformed line is not echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    #[error(" is {size} bytes, larger than the {max} byte limit")]
    TooLarge { size: usize, max: usize },
    #[error(" is a binary file (it contains a NUL byte at offset {offset})")]
    Binary { offset: usize },
    #[error(" is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("{0}")]
    Syntax(String),
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        with_snippet: false,
    }
}

/// Checks size, binary content and encoding before any parsing.
pub fn decode_text(bytes: &[u8]) -> Result<&str, YamlError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(YamlError::TooLarge {
            size: bytes.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(YamlError::Binary { offset });
    }
    std::str::from_utf8(bytes).map_err(|e| YamlError::NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// Parses a single document (a values file). An empty document is `null`.
pub fn from_str(text: &str) -> Result<Value, YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError::TooLarge {
            size: text.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    serde_saphyr::from_str_with_options::<Option<Value>>(text, options())
        .map(|v| v.unwrap_or(Value::Null))
        .map_err(|e| YamlError::Syntax(syntax_message(&e)))
}

/// Parses a multi-document stream (rendered manifests); empty documents are skipped.
pub fn from_str_multiple(text: &str) -> Result<Vec<Value>, YamlError> {
    serde_saphyr::from_multiple_with_options::<Option<Value>>(text, options())
        .map(|docs| {
            docs.into_iter()
                .flatten()
                .filter(|d| !d.is_null())
                .collect()
        })
        .map_err(|e| YamlError::Syntax(syntax_message(&e)))
}

/// Serialises one document in block style with YAML 1.1-safe quoting.
pub fn to_string<T: Serialize>(value: &T) -> String {
    let mut opts = serde_saphyr::SerializerOptions::default();
    // Long single-line strings stay on one line: folding them would be correct YAML, but
    // makes `grep` and diffs of commands and URLs harder to read.
    opts.folded_wrap_chars = usize::MAX;
    serde_saphyr::to_string_with_options(value, opts)
        .expect("a serde_json::Value always serialises")
}

/// `line:column: what`, from saphyr's "what at line L, column C". Later lines of its message
/// would hold a source snippet, which could show a secret, so only the first is kept.
fn syntax_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    let first = first.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    match first.rsplit_once(" at line ") {
        Some((what, position)) => format!("{}: {what}", position.replace(", column ", ":")),
        None => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn octal_and_booleans_follow_kubernetes() {
        let v = from_str("mode: 0644\non: yes\nver: 1.10\ntag: '1.10'").unwrap();
        assert_eq!(
            v,
            json!({"mode": 420, "on": true, "ver": 1.1, "tag": "1.10"})
        );
    }

    #[test]
    fn duplicate_keys_are_rejected_with_a_line() {
        let e = from_str("a: 1\nb: 2\na: 3\n").unwrap_err().to_string();
        assert!(e.starts_with("3:1: "), "{e}");
        assert!(e.to_lowercase().contains("duplicate"), "{e}");
    }

    #[test]
    fn output_quotes_yaml_1_1_ambiguities() {
        let out = to_string(&json!({"a": "yes", "b": "0777", "c": "1.10", "d": "null", "e": "no"}));
        let back: Value = from_str(&out).unwrap();
        assert_eq!(
            back,
            json!({"a": "yes", "b": "0777", "c": "1.10", "d": "null", "e": "no"})
        );
        assert!(!out.contains("a: yes"), "{out}");
    }

    #[test]
    fn refuses_binary_and_non_utf8() {
        assert_eq!(decode_text(b"a: \0"), Err(YamlError::Binary { offset: 3 }));
        assert_eq!(
            decode_text(b"a: \xff"),
            Err(YamlError::NotUtf8 { offset: 3 })
        );
    }
}
