//! `diff`: what an apply would change, from the same server dry run apply uses, compared with
//! the live objects; server-owned fields left out; Secret values masked as kubectl masks them.

use super::apply::{Action, NamespaceState, plan_one};
use super::delete::keep_reason;
use super::inventory::{self, Inventory};
use super::manager::normalized;
use super::upgrade::{self, ReleasePlan};
use super::{Error, ResourceManager};
use crate::release::RenderedRelease;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;

/// What would happen to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Create,
    Configure,
    /// Same contents, but another manager owns it: apply takes ownership.
    TakeOwnership,
    Prune,
    /// No longer rendered, but kept (data).
    Keep,
    /// An immutable field would change: apply refuses it until the object is recreated.
    Immutable,
}

/// One difference.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectDiff {
    pub object: String,
    pub change: Change,
    /// Unified diff of live → after apply (configure only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// What would change about the release itself (an upgrade, its migration, its images), then
/// every difference between the render and the cluster, in apply order. A downgrade is refused
/// as apply refuses it.
pub async fn diff_release(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    force: bool,
) -> Result<(ReleasePlan, Vec<ObjectDiff>), Error> {
    let (release, namespace) = (&rendered.release.name, &rendered.release.namespace);
    let old = inventory::read(mgr, release, namespace).await?;
    let transition = upgrade::transition(rendered, old.as_ref())?;
    let plan = ReleasePlan::of(rendered, old.as_ref(), transition);
    let mut manifest = rendered.manifest.clone();
    inventory::stamp(&mut manifest, release, namespace);
    let all: Vec<_> = manifest.resources.iter().collect();
    let namespace_missing = mgr
        .get_object("v1", "Namespace", None, namespace)
        .await?
        .is_none();
    let plans: Vec<Result<_, Error>> = futures::stream::iter(all.iter().map(|r| {
        let ns = if namespace_missing {
            NamespaceState::Missing
        } else {
            NamespaceState::Existing
        };
        plan_one(mgr, r, force, ns)
    }))
    .buffered(16)
    .collect()
    .await;
    let mut out = Vec::new();
    for (r, plan) in all.iter().zip(plans) {
        let plan = match plan {
            Ok(plan) => plan,
            // Unlike kubectl diff, an immutable change is reported, not fatal.
            Err(Error::Immutable {
                message, guidance, ..
            }) => {
                out.push(ObjectDiff {
                    object: r.id(),
                    change: Change::Immutable,
                    diff: String::new(),
                    note: format!("{message}. {guidance}"),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let change = match plan.action {
            Action::Unchanged => continue,
            Action::Created | Action::NotValidated => Change::Create,
            Action::Configured => Change::Configure,
        };
        let (live, merged) = (
            plan.live.unwrap_or_default(),
            plan.merged.unwrap_or_default(),
        );
        let mut d = ObjectDiff {
            object: r.id(),
            change,
            diff: String::new(),
            note: String::new(),
        };
        if change == Change::Configure {
            let (before, after) = masked_pair(&r.kind, &normalized(&live), &normalized(&merged));
            d.diff = unified(
                &crate::yaml::to_string(&before),
                &crate::yaml::to_string(&after),
                &r.id(),
            );
            if d.diff.is_empty() {
                d.change = Change::TakeOwnership;
                d.note = "contents match; apply makes difyrender their field manager".into();
            }
        }
        if plan.action == Action::NotValidated {
            d.note = "its namespace does not exist yet, so the server could not check it".into();
        }
        out.push(d);
    }
    let next = Inventory::of(rendered, false);
    if let Some(old) = old {
        for e in old.entries.difference(&next.entries) {
            let (change, note) = if e.is_data() || e.kind == "Namespace" {
                (Change::Keep, keep_reason(e).to_owned())
            } else {
                (Change::Prune, String::new())
            };
            out.push(ObjectDiff {
                object: e.id(),
                change,
                diff: String::new(),
                note,
            });
        }
    }
    Ok((plan, out))
}

/// Unified diff with 3 lines of context; empty when equal.
fn unified(before: &str, after: &str, id: &str) -> String {
    if before == after {
        return String::new();
    }
    TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{id} (live)"), &format!("{id} (after apply)"))
        .to_string()
}

/// For Secrets, each value becomes `***`, or `*** (before)` / `*** (after)` where it changed,
/// as kubectl diff and Flux show them: which key changed is visible, never its value.
pub fn masked_pair(kind: &str, before: &Value, after: &Value) -> (Value, Value) {
    let (mut b, mut a) = (before.clone(), after.clone());
    if kind != "Secret" {
        return (b, a);
    }
    for field in ["data", "stringData"] {
        let bmap = before
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let amap = after
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (side, map, other, label) in [
            (&mut b, &bmap, &amap, "(before)"),
            (&mut a, &amap, &bmap, "(after)"),
        ] {
            if let Some(Value::Object(target)) = side.get_mut(field) {
                for (key, value) in map {
                    let changed = other.get(key).is_some_and(|o| o != value);
                    let shown = if changed {
                        format!("*** {label}")
                    } else {
                        "***".to_owned()
                    };
                    target.insert(key.clone(), Value::String(shown));
                }
            }
        }
    }
    (b, a)
}

/// Text for a terminal or a log; `color` adds ANSI colours to +/- lines.
pub fn render_text(diffs: &[ObjectDiff], color: bool) -> String {
    let paint = |code: &str, line: &str| {
        if color {
            format!("\u{1b}[{code}m{line}\u{1b}[0m")
        } else {
            line.to_owned()
        }
    };
    let mut out = String::new();
    for d in diffs {
        match d.change {
            Change::Create => {
                out.push_str(&paint("32", &format!("+ {} would be created", d.object)))
            }
            Change::Prune => out.push_str(&paint("31", &format!("- {} would be pruned", d.object))),
            Change::Keep => out.push_str(&format!(
                "= {} is no longer rendered but would be kept: {}",
                d.object, d.note
            )),
            Change::TakeOwnership => out.push_str(&format!("~ {}: {}", d.object, d.note)),
            Change::Immutable => out.push_str(&paint(
                "33",
                &format!("! {} cannot be applied: {}", d.object, d.note),
            )),
            Change::Configure => {
                out.push_str(&format!("~ {} would be configured\n", d.object));
                for line in d.diff.lines() {
                    let line = match line.chars().next() {
                        Some('+') if !line.starts_with("+++") => paint("32", line),
                        Some('-') if !line.starts_with("---") => paint("31", line),
                        Some('@') => paint("36", line),
                        _ => line.to_owned(),
                    };
                    out.push_str(&line);
                    out.push('\n');
                }
                continue;
            }
        }
        if d.change == Change::Create && !d.note.is_empty() {
            out.push_str(&format!(" ({})", d.note));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_are_masked_and_changes_marked() {
        let before = json!({"data": {"A": "b2xk", "B": "c2FtZQ=="}});
        let after = json!({"data": {"A": "bmV3", "B": "c2FtZQ==", "C": "YWRkZWQ="}});
        let (b, a) = masked_pair("Secret", &before, &after);
        assert_eq!(b, json!({"data": {"A": "*** (before)", "B": "***"}}));
        assert_eq!(
            a,
            json!({"data": {"A": "*** (after)", "B": "***", "C": "***"}})
        );
        let text = unified(
            &crate::yaml::to_string(&b),
            &crate::yaml::to_string(&a),
            "Secret/x",
        );
        assert!(!text.contains("bmV3") && !text.contains("b2xk"), "{text}");
        assert!(
            text.contains("+  A: '*** (after)'") || text.contains("+  A: \"*** (after)\""),
            "{text}"
        );
    }

    #[test]
    fn other_kinds_are_not_masked() {
        let v = json!({"data": {"A": "x"}});
        assert_eq!(masked_pair("ConfigMap", &v, &v).0, v);
    }
}
