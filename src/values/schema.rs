//! `values.schema.json` validation. Every violation is reported, each with its value path and
//! the source that set it. Properties marked `"writeOnly": true` in the schema are secrets:
//! their values are masked in every message.

use super::UserValues;
use serde_json::Value;
use std::fmt;

/// A compiled values schema. Compile once, validate many times.
pub struct ValuesSchema {
    validator: jsonschema::Validator,
    /// JSON pointers of `writeOnly` properties, whose values must never be echoed.
    secret_pointers: Vec<String>,
}

/// One schema violation, ready to show to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// Dotted value path, e.g. `expose.path`, or `(root)`.
    pub path: String,
    pub message: String,
    /// The file or flag that set the value, when one did.
    pub origin: Option<String>,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(origin) = &self.origin {
            write!(f, " (set by {origin})")?;
        }
        Ok(())
    }
}

impl ValuesSchema {
    /// Compiles the chart's schema. Remote `$ref`s are impossible: jsonschema is built without
    /// its network resolver.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let mut options = jsonschema::options().should_validate_formats(true);
        for (name, check) in super::formats::FORMATS {
            options = options.with_format(*name, *check);
        }
        let validator = options.build(schema).map_err(|e| e.to_string())?;
        let mut secret_pointers = Vec::new();
        collect_write_only(schema, String::new(), &mut secret_pointers);
        Ok(Self {
            validator,
            secret_pointers,
        })
    }

    /// Whether the value at this JSON pointer is a secret, is inside one, or holds one (a
    /// mapping such as `secrets` whose wrong-typed value may be a key pasted in the wrong place).
    pub fn is_secret(&self, pointer: &str) -> bool {
        !pointer.is_empty()
            && self.secret_pointers.iter().any(|p| {
                pointer == p
                    || pointer.starts_with(&format!("{p}/"))
                    || p.starts_with(&format!("{pointer}/"))
            })
    }

    /// Validates merged values; `user` attributes each violation to its source. A violation of
    /// the whole document (`(root)`) names a source only through a key it added.
    pub fn validate(&self, values: &Value, user: &UserValues) -> Result<(), Vec<SchemaViolation>> {
        let mut violations: Vec<SchemaViolation> = self
            .validator
            .iter_errors(values)
            .map(|error| {
                let pointer = error.instance_path().as_str().to_owned();
                let shown = match error.instance().as_ref() {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let message = if self.is_secret(&pointer) {
                    error.masked_with("the secret value").to_string()
                } else if shown.chars().count() > crate::diag::MAX_EXCERPT_CHARS {
                    // A long value is named by a cut excerpt, not echoed whole.
                    error
                        .masked_with(format!("the value {}", crate::diag::excerpt(&shown)))
                        .to_string()
                } else {
                    error.to_string()
                };
                // A key that should not be there was added by whichever source has it, not
                // by the last source that touched the mapping around it.
                let origin_pointer = match error.kind() {
                    jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                        unexpected.first().map(|k| {
                            format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"))
                        })
                    }
                    _ => None,
                }
                .unwrap_or_else(|| pointer.clone());
                SchemaViolation {
                    path: dotted(&pointer),
                    message,
                    origin: user.origin_of(&origin_pointer).map(str::to_owned),
                }
            })
            .collect();
        violations.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
        violations.dedup();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

fn collect_write_only(schema: &Value, pointer: String, out: &mut Vec<String>) {
    if schema.get("writeOnly") == Some(&Value::Bool(true)) {
        out.push(pointer.clone());
    }
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (key, sub) in props {
            collect_write_only(
                sub,
                format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1")),
                out,
            );
        }
    }
}

/// `/a/b/0/c` → `a.b[0].c`; the empty pointer is `(root)`.
pub fn dotted(pointer: &str) -> String {
    if pointer.is_empty() {
        return "(root)".to_owned();
    }
    let mut out = String::new();
    for segment in pointer.trim_start_matches('/').split('/') {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_become_value_paths() {
        assert_eq!(dotted(""), "(root)");
        assert_eq!(dotted("/a/b/0/c"), "a.b[0].c");
        assert_eq!(
            dotted("/nodeSelector/kubernetes.io~1os"),
            "nodeSelector.kubernetes.io/os"
        );
    }

    #[test]
    fn secrets_are_masked_and_all_violations_reported() {
        let schema = ValuesSchema::compile(&json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "replicas": {"type": "integer"},
                "secrets": {"type": "object", "properties": {"key": {"type": "string", "minLength": 32, "writeOnly": true}}}
            }
        }))
        .unwrap();
        let values = json!({"replicas": "3", "secrets": {"key": "hunter2"}, "extra": 1});
        let errors = schema
            .validate(&values, &UserValues::default())
            .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{text:?}");
        assert!(text.iter().all(|t| !t.contains("hunter2")), "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.starts_with("secrets.key: the secret value")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("replicas: \"3\" is not of type \"integer\"")),
            "{text:?}"
        );
    }
}
