//! The values reference (docs/values.md) is generated from values.schema.json and values.yaml; this
//! test fails when they drift apart. Run with `UPDATE_README=1` to rewrite the section (it still
//! fails that run, and never rewrites under CI).

mod common;

use serde_json::Value;

const START: &str = "<!-- values-reference:start -->\n";
const END: &str = "<!-- values-reference:end -->";

fn type_of(schema: &Value) -> String {
    if let Some(e) = schema.get("enum") {
        return e
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" / ");
    }
    if schema.get("anyOf").is_some() {
        return "quantity".into();
    }
    schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("any")
        .to_owned()
}

fn rows(schema: &Value, defaults: Option<&Value>, path: &str, out: &mut Vec<String>) {
    let props = schema.get("properties").and_then(Value::as_object);
    let leaf =
        props.is_none() || path.ends_with("resources") || path.starts_with("securityContexts.");
    if leaf {
        let default = match defaults {
            _ if schema.get("writeOnly") == Some(&Value::Bool(true)) => {
                "`\"\"` (secret)".to_owned()
            }
            Some(v) => format!(
                "`{}`",
                serde_json::to_string(v).unwrap().replace('|', "\\|")
            ),
            None => String::new(),
        };
        let desc = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .replace('|', "\\|");
        out.push(format!(
            "| `{path}` | {} | {default} | {desc} |",
            type_of(schema).replace('|', "\\|")
        ));
        return;
    }
    for (key, sub) in props.unwrap() {
        let p = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        rows(sub, defaults.and_then(|d| d.get(key)), &p, out);
    }
}

#[test]
fn values_reference_matches_the_schema() {
    let root = common::root();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("values.schema.json")).unwrap())
            .unwrap();
    let defaults = Value::Object(difyrender::chart::Chart::embedded().default_values);
    let mut lines = vec![
        "| value | type | default | meaning |".to_owned(),
        "|---|---|---|---|".to_owned(),
    ];
    rows(&schema, Some(&defaults), "", &mut lines);
    let generated = lines.join("\n") + "\n";
    let readme_path = root.join("docs/values.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let start = readme
        .find(START)
        .expect("docs/values.md has the values-reference start marker")
        + START.len();
    let end = readme.find(END).expect("docs/values.md has the end marker");
    if readme[start..end] != generated {
        // Rewriting is for a developer's machine, never CI, and never a pass: the test fails
        // either way, and passes only once the rewritten file is what is checked.
        let rewrite = std::env::var_os("UPDATE_README").is_some() && !under_ci();
        if rewrite {
            std::fs::write(
                &readme_path,
                format!("{}{generated}{}", &readme[..start], &readme[end..]),
            )
            .unwrap();
        }
        panic!(
            "the values reference in docs/values.md is stale; {}",
            if rewrite {
                "it has been rewritten: read `git diff docs/values.md` and run the test again"
            } else {
                "run `UPDATE_README=1 cargo test --test readme` (outside CI)"
            }
        );
    }
}

/// `CI` set to anything but empty, `false` or `0` (scripts/test sets CI=true).
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "false" | "0"))
}

/// The client re-implementations of the runtime lane say what they mirror (upstream repository
/// and files, the tag to check against, the commit or why it is not recorded), and the docs
/// do not present them as Dify's own code.
#[test]
fn runtime_clients_name_what_they_mirror() {
    for file in [
        "hack/runtime/dify_redis.py",
        "hack/runtime/dify_pgvector.py",
        "hack/runtime/redis-probe/main.go",
        "hack/runtime/cloudkit-probe/main.go",
    ] {
        let text = std::fs::read_to_string(common::root().join(file)).unwrap();
        let header: String = text.lines().take(30).collect::<Vec<_>>().join("\n");
        for needle in ["Mirrors: langgenius/", "Tag to check against:", "Commit:"] {
            assert!(
                header.contains(needle),
                "{file}: no {needle:?} in its header"
            );
        }
    }
    for doc in [
        "docs/development.md",
        "tests/runtime_datastores.rs",
        "tests/runtime_storage.rs",
    ] {
        let text = std::fs::read_to_string(common::root().join(doc)).unwrap();
        for claim in [
            "Dify's own client code",
            "Dify's own code paths",
            "Dify's own S3",
        ] {
            assert!(!text.contains(claim), "{doc} says {claim:?}");
        }
    }
}

/// The docs state the facts the code keeps: `--show-only`'s components and the tested
/// Kubernetes range.
#[test]
fn the_docs_list_the_components_and_the_range_the_code_has() {
    let commands = std::fs::read_to_string(common::root().join("docs/commands.md")).unwrap();
    let row = commands
        .lines()
        .find(|l| l.starts_with("| `--show-only C` |"))
        .expect("docs/commands.md documents --show-only");
    let listed: Vec<&str> = row
        .split_once("(repeatable):")
        .expect("the --show-only row lists the components")
        .1
        .split('`')
        .skip(1)
        .step_by(2)
        .collect();
    assert_eq!(listed, difyrender::manifest::COMPONENTS, "{row}");

    let (lo, hi) = difyrender::objects::TESTED_MINORS;
    let range = format!("outside 1.{lo}–1.{hi}, the range tested");
    assert!(
        commands.contains(&range),
        "docs/commands.md does not say {range:?}"
    );
}

/// Every test binary (`tests/*.rs` and `tests/*/main.rs`) has its row in docs/development.md's
/// table of tests.
#[test]
fn development_md_names_every_test_binary() {
    let root = common::root();
    let doc = std::fs::read_to_string(root.join("docs/development.md")).unwrap();
    let mut binaries = Vec::new();
    for entry in std::fs::read_dir(root.join("tests")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.extension().is_some_and(|e| e == "rs") {
            binaries.push(format!("| `tests/{name}`"));
        } else if path.join("main.rs").is_file() {
            binaries.push(format!("| `tests/{name}/`"));
        }
    }
    assert!(binaries.len() > 20, "{binaries:?}");
    let missing: Vec<&String> = binaries
        .iter()
        .filter(|b| !doc.contains(b.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/development.md has no row for {missing:?}"
    );
}
