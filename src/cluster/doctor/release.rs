//! The release: a first install, an upgrade, or a refused downgrade.

use super::Check;
use crate::cluster::inventory::{self, Inventory};
use crate::release::RenderedRelease;

fn version_parts(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

pub(super) fn release(rendered: &RenderedRelease, old: Option<&Inventory>) -> Check {
    const NAME: &str = "release";
    let next = Inventory::of(rendered, false);
    let target = rendered.dify_version();
    let Some(old) = old else {
        return Check::pass(
            NAME,
            format!(
                "not installed yet: apply creates {} objects (Dify {target})",
                next.entries.len()
            ),
        );
    };
    let added = next.entries.difference(&old.entries).count();
    let removed = old.entries.difference(&next.entries).count();
    let state = serde_json::to_value(old.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let change = if old.dify_version == target {
        format!("stays at Dify {target}")
    } else {
        format!("Dify {} → {target}", old.dify_version)
    };
    let values = if old.values_hash == inventory::values_hash(&rendered.values) {
        "same values"
    } else {
        "changed values"
    };
    let reason = format!(
        "installed ({state}, last applied {}): {change}, {values}; {added} object(s) to add, {removed} to prune",
        old.last_applied
    );
    if version_parts(target) < version_parts(&old.dify_version) {
        return Check::warn(NAME, reason).fix(format!(
            "Dify does not migrate its database backwards: keep images.dify.tag={} or restore a backup",
            old.dify_version
        ));
    }
    if old.state == inventory::State::Pending {
        return Check::warn(NAME, reason)
            .fix("the last apply did not finish; this apply completes it");
    }
    Check::pass(NAME, reason)
}
