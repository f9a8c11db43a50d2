//! The external PostgreSQL's connection budget.

use super::Check;
use crate::release::RenderedRelease;

/// An external PostgreSQL must allow every connection the release can open; doctor cannot read
/// its max_connections from outside the cluster, so it says the number to compare (a bundled
/// server is sized for it at render time).
pub(super) fn database_connections(rendered: &RenderedRelease) -> Option<Check> {
    if rendered.values.pointer("/postgresql/enabled") != Some(&serde_json::Value::Bool(false)) {
        return None;
    }
    let budget = crate::release::connections::budget(&rendered.manifest);
    Some(
        Check::warn(
            "postgresql connections",
            format!(
                "the release can open {} connections to the external PostgreSQL ({}); its max_connections is not visible from here",
                budget.needed(),
                budget.explain()
            ),
        )
        .fix(format!(
            "make sure the server allows at least {} (SHOW max_connections;), minus what other clients use",
            budget.needed()
        )),
    )
}
