//! The one place YAML is read and written, so values files and rendered manifests follow the
//! same rules: Kubernetes' YAML 1.1 reading of octal (`0644`), duplicate keys rejected, inputs
//! bounded, and output quoted so YAML 1.1 readers (kubectl, Helm, PyYAML) see the same types.

use serde::Serialize;
use serde_json::Value;

/// Largest YAML input accepted: far above any real values file or chart, far below trouble.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Largest a values document may grow to once parsed, with every alias (`*ref`) counted each
/// time it is used: text bytes of keys and scalars plus one per node. A file of
/// [`MAX_INPUT_BYTES`] without aliases stays far below it.
pub const MAX_VALUES_BYTES: usize = 8 * 1024 * 1024;

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

/// Deserializes a JSON value while counting its expanded size against a budget, so aliases
/// that repeat a large anchor are refused while they are being expanded, not after.
struct Bounded<'a> {
    left: &'a std::cell::Cell<usize>,
}

impl Bounded<'_> {
    fn charge<E: serde::de::Error>(&self, bytes: usize) -> Result<(), E> {
        let cost = bytes.saturating_add(1);
        if cost > self.left.get() {
            return Err(E::custom(format!(
                "the values expand to more than {MAX_VALUES_BYTES} bytes (an alias counts each time it is used)"
            )));
        }
        self.left.set(self.left.get() - cost);
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge(8)?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge(8)?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge(8)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.charge(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Bounded { left: self.left })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            self.charge(k.len())?;
            let v = map.next_value_seed(Bounded { left: self.left })?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
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
    let left = std::cell::Cell::new(MAX_VALUES_BYTES);
    serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde::de::DeserializeSeed::deserialize(Bounded { left: &left }, de)
    })
    .map_err(|e| YamlError::Syntax(syntax_message(&e)))
}

/// Parses a single document into a typed struct (a kubeconfig). Messages give the position
/// and what was wrong, never a value from the document.
pub fn from_str_typed<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError::TooLarge {
            size: text.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    serde_saphyr::from_str_with_options::<T>(text, options())
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

/// `line:column: what`, written for an operator. saphyr's own text is for developers (it
/// names Rust APIs and prints budget structs) and some of it quotes the input, so known
/// errors get their own wording and no value from the document is ever included.
/// Also used for kubeconfigs, which kube parses.
pub fn describe(e: &serde_saphyr::Error) -> String {
    syntax_message(e)
}

fn syntax_message(e: &serde_saphyr::Error) -> String {
    let what = operator_text(e);
    match e.location() {
        Some(at) if at.line() > 0 => format!("{}:{}: {what}", at.line(), at.column()),
        _ => what,
    }
}

fn operator_text(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    match e {
        E::AliasError { error, .. } | E::WithSnippet { error, .. } => operator_text(error),
        E::Budget { breach, .. } => {
            let what = match breach {
                B::Nodes { .. } => "too many values (more than 250000 nodes)".to_owned(),
                B::Depth { .. } => "nested too deeply (more than 64 levels)".to_owned(),
                B::Aliases { .. } | B::AliasAnchorRatio { .. } => {
                    "too many aliases (*ref) for its anchors (&ref)".to_owned()
                }
                B::Anchors { .. } => "too many anchors (&ref)".to_owned(),
                B::Documents { .. } => "too many YAML documents".to_owned(),
                B::ScalarBytes { .. } => "too much text in its values".to_owned(),
                B::Events { .. } => {
                    "too large a document (more than 1000000 parser events)".to_owned()
                }
                _ => "too large or too complex a document".to_owned(),
            };
            format!("refused: {what}")
        }
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => {
            "refused: aliases (*ref) expand to too much".to_owned()
        }
        E::MultipleDocuments { .. } => {
            "more than one YAML document (a second `---`); this file must hold exactly one"
                .to_owned()
        }
        E::NullIntoString { .. } => "a value is empty where text is expected".to_owned(),
        E::QuotingRequired { .. } => "a value must be quoted".to_owned(),
        E::SerdeInvalidType { expected, .. } | E::SerdeInvalidValue { expected, .. } => {
            format!("wrong type of value: expected {expected}")
        }
        E::DuplicateMappingKey { key: Some(k), .. } => {
            format!("duplicate key {}", crate::diag::excerpt(k))
        }
        E::DuplicateMappingKey { key: None, .. } => "duplicate key".to_owned(),
        E::Message { msg, .. } => first_line(msg),
        other => {
            let text = other.to_string();
            let first = first_line(&text);
            match first.rsplit_once(" at line ") {
                Some((what, _)) => what.to_owned(),
                None => first,
            }
        }
    }
}

/// The first line of a message, with any quoted text (which may be input) cut out.
fn first_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default().trim();
    let first = first.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    let mut out = String::new();
    let mut quoted = false;
    for c in first.chars() {
        if c == '"' || c == '`' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
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
