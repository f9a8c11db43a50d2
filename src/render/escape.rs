//! The auto-escaping rule for templates: every `{{ … }}` prints one self-contained YAML flow
//! node. Strings become double-quoted scalars with every line break and control character
//! escaped, so no value can start a new line, key or document, and `yes`, `0777` or `1.10`
//! stay strings. Mappings and lists print as flow collections, which is why templates can
//! write `resources: {{ Values.api.resources }}` without `toYaml | nindent`. Strings marked
//! safe (macro and `include` output) are printed as they are.

use serde_json::Value;
use std::fmt::Write;

/// A YAML double-quoted scalar for `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Outside YAML's printable set, or a line break to YAML 1.1 readers (NEL, LS, PS),
            // or a byte-order mark: always escaped.
            c if (c as u32) < 0x20
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A YAML flow node for any JSON value.
pub fn flow(value: &Value) -> String {
    let mut out = String::new();
    write_flow(&mut out, value);
    out
}

fn write_flow(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => out.push_str(&quote(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_flow(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&quote(k));
                out.push_str(": ");
                write_flow(out, v);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_cannot_escape_their_scalar() {
        assert_eq!(quote("a\nb: c"), r#""a\nb: c""#);
        assert_eq!(quote("say \"hi\" \\o/"), r#""say \"hi\" \\o/""#);
        assert_eq!(
            quote("x\u{85}y\u{2028}z\u{7f}"),
            r#""x\u0085y\u2028z\u007f""#
        );
        assert_eq!(quote("日本語"), "\"日本語\"");
    }

    #[test]
    fn collections_are_flow_nodes() {
        let v = json!({"requests": {"cpu": "100m"}, "list": [1, true, null, "no"]});
        assert_eq!(
            flow(&v),
            r#"{"requests": {"cpu": "100m"}, "list": [1, true, null, "no"]}"#
        );
    }

    #[test]
    fn output_round_trips_through_the_yaml_reader() {
        let hostile = [
            "yes",
            "0777",
            "1.10",
            "---\nkind: Secret",
            "a: b",
            "#c",
            "&x",
            "*y",
            "!!int 3",
            "\u{85}",
            "%TAG",
            "@",
            "`",
            "'",
            "~",
            "",
        ];
        for s in hostile {
            let doc = format!("v: {}\n", quote(s));
            let parsed = crate::yaml::from_str(&doc).unwrap();
            assert_eq!(parsed, json!({ "v": s }), "{s:?}");
        }
    }
}
