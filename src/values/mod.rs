//! Values: the chart defaults, `-f` files and `--set*` flags merged by Helm's rules, the master
//! key resolved, and the result validated against `values.schema.json` before any rendering.

pub mod formats;
pub mod rules;
pub mod schema;
pub mod secrets;
pub mod strvals;

use crate::yaml::{self, MAX_VALUES_BYTES, YamlError};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

pub use schema::{SchemaViolation, ValuesSchema};
pub use secrets::{ClusterInputs, DerivedKeys, MasterKeySource};

/// Every way a user supplies values, in the form they gave them. Helm applies them by flag
/// type, not by position: all files in order, then `--set-json`, `--set`, `--set-string`,
/// `--set-file`; within one type, later wins.
#[derive(Debug, Clone, Default)]
pub struct ValueSources {
    pub files: Vec<PathBuf>,
    pub set_json: Vec<String>,
    pub set: Vec<String>,
    pub set_string: Vec<String>,
    pub set_file: Vec<String>,
}

/// Why values could not be loaded. Messages name the file or flag, never a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read values file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("values file {path}:{source}")]
    Yaml { path: String, source: YamlError },
    #[error("values file {path}: the top level must be a mapping of keys to values, not {found}")]
    NotAMapping { path: String, found: &'static str },
    #[error("failed parsing {flag} argument {position}{}: {message}", key.as_deref().map(|k| format!(" ({k}…)")).unwrap_or_default())]
    Flag {
        flag: &'static str,
        position: usize,
        /// The argument's first key, only when it is plainly a key (see [`flag_key`]).
        key: Option<String>,
        message: String,
    },
    #[error("the values are too large: {what} is more than {max} bytes once parsed")]
    TooLarge { what: String, max: usize },
    #[error("cannot read the secret key file {path}: {source}")]
    SecretKeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the secret key file {path} is empty")]
    EmptySecretKeyFile { path: String },
    #[error("{0}")]
    MasterKey(String),
    #[error("values do not match values.schema.json:\n{}", format_violations(.0))]
    Schema(Vec<SchemaViolation>),
    /// Values each valid alone that do not work together.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rules(Vec<SchemaViolation>),
}

impl Error {
    /// Every values error is bad input, found before anything is sent to a cluster.
    pub fn exit_code(&self) -> u8 {
        crate::error::exit::INPUT
    }
}

fn format_violations(violations: &[SchemaViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("  - {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// JSON type name for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses a values document (chart defaults or a `-f` file) into a mapping.
pub fn parse_values(bytes: &[u8], path: &str) -> Result<Map<String, Value>, Error> {
    let yaml_err = |source| Error::Yaml {
        path: path.to_owned(),
        source,
    };
    let text = yaml::decode_text(bytes).map_err(yaml_err)?;
    match yaml::from_str(text).map_err(yaml_err)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(Error::NotAMapping {
            path: path.to_owned(),
            found: type_name(&other),
        }),
    }
}

/// One layer of user values and where it came from, kept so that a schema violation can say
/// which file or flag set the offending value.
#[derive(Debug, Clone)]
pub struct Layer {
    pub origin: String,
    /// What this source set, as a mapping value (so JSON pointers resolve in it).
    pub values: Value,
}

/// The user's values, merged as Helm merges them, before the chart defaults are applied.
#[derive(Debug, Clone, Default)]
pub struct UserValues {
    pub merged: Map<String, Value>,
    pub layers: Vec<Layer>,
}

/// Reads a file for `-f` or `--set-file`, at most `limit` bytes of it.
pub type FileReader<'a> = dyn Fn(&Path, usize) -> std::io::Result<Vec<u8>> + 'a;

/// The part of a `--set*` argument before its first `=`, when that is plainly a key (key
/// characters only, at most 60 of them). Anything else may be a value typed in the wrong
/// place (`secrets.postgresPassword:PGpass`), so it is not echoed.
pub fn flag_key(arg: &str) -> Option<String> {
    let (key, _) = arg.split_once('=')?;
    let plain = !key.is_empty()
        && key.chars().count() <= 60
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/[]\\".contains(c));
    plain.then(|| key.to_owned())
}

/// Size of a parsed value as [`crate::yaml::MAX_VALUES_BYTES`] counts it: text bytes plus one
/// per node. Stops counting once past `max`.
pub fn size_of(value: &Value, max: usize) -> usize {
    let mut total = 0usize;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        total += 1;
        match v {
            Value::String(s) => total += s.len(),
            Value::Number(_) => total += 8,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (k, v) in map {
                    total += k.len();
                    stack.push(v);
                }
            }
            _ => {}
        }
        if total > max {
            break;
        }
    }
    total
}

/// Helm reads every number as a float and prints `3.0` as `3`; so do these values, which lets
/// `--set-json replicas=3.0` or `replicas: 3.0` in a file mean 3 wherever a count is expected.
pub fn normalize_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64()
                && n.is_f64()
                && f.fract() == 0.0
                && f.abs() < 9_007_199_254_740_992.0
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(map) => map.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

impl UserValues {
    /// Reads and merges every source. `read_file` serves both `-f` and `--set-file`, so tests
    /// and embedders can supply files without touching the disk; it is given the size limit
    /// ([`crate::input::MAX_DOCUMENT_BYTES`], [`crate::input::MAX_SET_FILE_BYTES`]) and must
    /// not read past it.
    pub fn load(sources: &ValueSources, read_file: &FileReader<'_>) -> Result<Self, Error> {
        let mut out = UserValues::default();
        for path in &sources.files {
            let shown = path.display().to_string();
            let bytes = read_file(path, crate::input::MAX_DOCUMENT_BYTES).map_err(|source| {
                Error::Read {
                    path: shown.clone(),
                    source,
                }
            })?;
            let layer = parse_values(&bytes, &shown)?;
            merge_maps(&mut out.merged, layer.clone());
            out.layers.push(Layer {
                origin: shown.clone(),
                values: Value::Object(layer),
            });
            out.check_size(&format!("the values up to {shown}"))?;
        }
        let flag_file_reader = |p: &str| {
            let shown = crate::diag::excerpt(p);
            read_file(Path::new(p), crate::input::MAX_SET_FILE_BYTES)
                .map_err(|e| format!("cannot read {shown}: {e}"))
                .and_then(|b| {
                    String::from_utf8(b).map_err(|_| format!("{shown} is not UTF-8 text"))
                })
        };
        let mut budget = strvals::Budget::default();
        use strvals::ValueKind;
        let flags: [(&'static str, &Vec<String>, ValueKind); 4] = [
            ("--set-json", &sources.set_json, ValueKind::Json),
            ("--set", &sources.set, ValueKind::Typed),
            ("--set-string", &sources.set_string, ValueKind::String),
            ("--set-file", &sources.set_file, ValueKind::File),
        ];
        for (flag, args, kind) in flags {
            for (i, arg) in args.iter().enumerate() {
                let whole_json = kind == ValueKind::Json && arg.trim_start().starts_with('{');
                let flag_error = |message: String| Error::Flag {
                    flag,
                    position: i + 1,
                    key: if whole_json { None } else { flag_key(arg) },
                    message,
                };
                let mut layer = Map::new();
                if whole_json {
                    // `--set-json '{"a":1}'`: a whole object, deep-merged. serde_json's
                    // messages give a line and column, never the text.
                    let whole: Map<String, Value> = serde_json::from_str(arg.trim())
                        .map_err(|e| flag_error(format!("invalid JSON object: {e}")))?;
                    merge_maps(&mut out.merged, whole.clone());
                    layer = whole;
                } else {
                    strvals::parse_with_budget(
                        arg,
                        &mut out.merged,
                        kind,
                        &flag_file_reader,
                        &mut budget,
                    )
                    .map_err(|e| flag_error(e.0))?;
                    // Parsed again on its own only to remember which keys this flag set; file
                    // contents are not needed for that, so nothing is read twice.
                    let _ = strvals::parse_into(arg, &mut layer, kind, &|_| Ok(String::new()));
                    // Text after a comma in an argument that sets a secret may be part of the
                    // secret (`secrets.postgresPassword=PG,pass=1`): setting anything but
                    // secrets with it is refused here, before a later check could quote the
                    // "key" it made.
                    if strvals::sets_secrets(arg) && layer.keys().any(|k| k != "secrets") {
                        return Err(flag_error(
                            "it sets a key under secrets and, after a comma, keys outside secrets; if the comma is part of the secret, write it as \\, (or give the secret with --set-file or a values file)".into(),
                        ));
                    }
                }
                out.layers.push(Layer {
                    origin: format!("{flag} argument {}", i + 1),
                    values: Value::Object(layer),
                });
                // Only a file can add much: other flags are bounded by the command line.
                if kind == ValueKind::File {
                    out.check_size(&format!("the values up to {flag} argument {}", i + 1))?;
                }
            }
        }
        out.check_size("the values of all flags")?;
        let mut merged = Value::Object(std::mem::take(&mut out.merged));
        normalize_numbers(&mut merged);
        if let Value::Object(map) = merged {
            out.merged = map;
        }
        Ok(out)
    }

    /// The merged values stay below [`MAX_VALUES_BYTES`], whichever sources add up to them.
    fn check_size(&self, what: &str) -> Result<(), Error> {
        let size = self
            .merged
            .iter()
            .map(|(k, v)| k.len() + size_of(v, MAX_VALUES_BYTES))
            .try_fold(0usize, |acc, n| {
                let acc = acc + n;
                (acc <= MAX_VALUES_BYTES).then_some(acc)
            });
        match size {
            Some(_) => Ok(()),
            None => Err(Error::TooLarge {
                what: what.to_owned(),
                max: MAX_VALUES_BYTES,
            }),
        }
    }

    /// The last layer that set the value at a JSON pointer, for error messages.
    pub fn origin_of(&self, pointer: &str) -> Option<&str> {
        if pointer.is_empty() {
            // Every layer holds the root: naming the last one would blame a random flag.
            return None;
        }
        self.layers
            .iter()
            .rev()
            .find(|l| l.values.pointer(pointer).is_some())
            .map(|l| l.origin.as_str())
    }
}

/// Helm's `MergeMaps` for `-f` files: mappings merge recursively, everything else replaces.
pub fn merge_maps(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => merge_maps(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Helm's `CoalesceValues`: user values over chart defaults, where a user `null` deletes the
/// default, lists replace, and a user scalar is kept where the default is a mapping (the
/// schema then reports the type).
pub fn coalesce(defaults: &Map<String, Value>, user: Map<String, Value>) -> Map<String, Value> {
    let mut out = user;
    for (key, default) in defaults {
        match out.get_mut(key) {
            Some(Value::Null) => {
                out.remove(key);
            }
            Some(Value::Object(u)) => {
                if let Value::Object(d) = default {
                    let merged = coalesce(d, std::mem::take(u));
                    *u = merged;
                }
            }
            Some(_) => {}
            None => {
                out.insert(key.clone(), default.clone());
            }
        }
    }
    out
}

/// The value at a JSON pointer as display text (`""` when absent).
pub fn text_at(values: &Value, pointer: &str) -> String {
    match values.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn load(
        files: &[(&str, &str)],
        f: impl FnOnce(&mut ValueSources),
    ) -> Result<UserValues, Error> {
        let fs: HashMap<PathBuf, Vec<u8>> = files
            .iter()
            .map(|(p, c)| (PathBuf::from(p), c.as_bytes().to_vec()))
            .collect();
        let mut sources = ValueSources {
            files: files.iter().map(|(p, _)| PathBuf::from(p)).collect(),
            ..Default::default()
        };
        f(&mut sources);
        UserValues::load(&sources, &|p, _| {
            fs.get(p)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        })
    }

    #[test]
    fn files_merge_in_order_and_lists_replace() {
        let u = load(
            &[
                ("a.yaml", "x: {a: 1, b: 2}\nl: [1, 2]\n"),
                ("b.yaml", "x: {b: 3}\nl: [9]\n"),
            ],
            |_| {},
        )
        .unwrap();
        assert_eq!(
            Value::Object(u.merged),
            json!({"x": {"a": 1, "b": 3}, "l": [9]})
        );
    }

    #[test]
    fn flag_types_apply_in_helm_order_not_command_line_order() {
        // --set-string is applied after --set, whatever the order they were typed in.
        let u = load(&[], |s| {
            s.set_string.push("a=1".into());
            s.set.push("a=2".into());
            s.set_json.push("a=3".into());
        })
        .unwrap();
        assert_eq!(u.merged["a"], json!("1"));
    }

    #[test]
    fn set_patches_file_lists_by_index() {
        let u = load(&[("a.yaml", "l: [a, b, c]\n")], |s| {
            s.set.push("l[1]=x".into())
        })
        .unwrap();
        assert_eq!(u.merged["l"], json!(["a", "x", "c"]));
    }

    #[test]
    fn whole_object_set_json_deep_merges() {
        let u = load(&[("a.yaml", "x: {a: 1}\n")], |s| {
            s.set_json.push(r#"{"x": {"b": 2}}"#.into())
        })
        .unwrap();
        assert_eq!(u.merged["x"], json!({"a": 1, "b": 2}));
    }

    #[test]
    fn coalesce_null_deletes_and_lists_replace() {
        let defaults = obj(
            json!({"r": {"limits": {"cpu": 1}, "requests": {"cpu": 1}}, "l": [1, 2], "k": "v"}),
        );
        let user = obj(json!({"r": {"limits": null}, "l": [3], "extra": null}));
        let out = coalesce(&defaults, user);
        assert_eq!(
            Value::Object(out),
            json!({"r": {"requests": {"cpu": 1}}, "l": [3], "extra": null, "k": "v"})
        );
    }

    #[test]
    fn origin_names_the_last_source() {
        let u = load(&[("a.yaml", "x: {a: 1}\n")], |s| s.set.push("x.a=2".into())).unwrap();
        assert_eq!(u.origin_of("/x/a"), Some("--set argument 1"));
    }

    #[test]
    fn flag_errors_name_the_key_not_the_value() {
        let e = load(&[], |s| s.set.push("secrets.difySecretKey=abc,,".into()))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("abc"), "{e}");
        assert!(
            e.contains("--set argument 1 (secrets.difySecretKey…)"),
            "{e}"
        );
        // A mistyped separator: nothing of the argument is echoed.
        for arg in [
            "secrets.postgresPassword=PG,pass",
            "secrets.postgresPassword:PGpass",
        ] {
            let e = load(&[], |s| s.set.push(arg.into()))
                .unwrap_err()
                .to_string();
            assert!(!e.contains("pass\"") && !e.contains("PGpass"), "{e}");
        }
        let e = load(&[], |s| {
            s.set_json
                .push(r#"{"secrets":{"postgresPassword":"PGsecret"}} x"#.into())
        })
        .unwrap_err()
        .to_string();
        assert!(!e.contains("PGsecret"), "{e}");
        assert!(
            e.starts_with("failed parsing --set-json argument 1: invalid JSON object"),
            "{e}"
        );
    }

    #[test]
    fn integral_floats_become_integers_as_in_helm() {
        let u = load(&[("a.yaml", "r: 3.0\nh: 1.5\n")], |s| {
            s.set_json.push("j=2.0".into())
        })
        .unwrap();
        assert_eq!(Value::Object(u.merged), json!({"r": 3, "h": 1.5, "j": 2}));
    }

    #[test]
    fn list_slots_are_bounded_across_flags() {
        let many: Vec<String> = (0..3).map(|i| format!("k{i}[65536]=1")).collect();
        let e = load(&[], |s| s.set.push(many.join(",")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("list elements in all"), "{e}");
        let e = load(&[], |s| s.set.extend(many.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("list elements in all"), "{e}");
        // One such index, as Helm allows, is fine.
        assert!(load(&[], |s| s.set.push("k[65536]=1".into())).is_ok());
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let e = load(&[("a.yaml", "- 1\n")], |_| {})
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "values file a.yaml: the top level must be a mapping of keys to values, not a list"
        );
    }
}
