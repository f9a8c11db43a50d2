//! Whether a live release may move to another.

use super::{Error, ReleaseTable, VersionKey};
use serde::Serialize;
use std::cmp::Ordering;

/// What moving a live release to another does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Transition {
    /// Nothing is installed yet.
    Install,
    /// The same Dify release.
    Same,
    /// Another release; `migrates` when the database head moves forward.
    Upgrade {
        from: String,
        to: String,
        from_head: String,
        to_head: String,
        migrates: bool,
    },
}

/// Decides whether the release recorded in the inventory (`from`: version and Alembic head) may
/// move to `to` (the same). A release whose Alembic head is older than the recorded one is
/// refused, with what to do instead: Dify's migrations never run backwards.
pub fn check_upgrade(
    table: &ReleaseTable,
    from: Option<(&str, &str)>,
    to: (&str, &str),
    place: &str,
) -> Result<Transition, Error> {
    let (to_version, to_head) = to;
    let Some((from_version, from_head)) = from.filter(|(v, _)| !v.is_empty()) else {
        return Ok(Transition::Install);
    };
    if from_version == to_version {
        return Ok(Transition::Same);
    }
    let older = match (table.head_position(from_head), table.head_position(to_head)) {
        (Some(f), Some(t)) => t < f,
        // A release outside the table: its place among the others is its version number.
        _ => match (
            VersionKey::parse(from_version),
            VersionKey::parse(to_version),
        ) {
            (Some(f), Some(t)) => t.cmp(&f) == Ordering::Less,
            _ => false,
        },
    };
    if older {
        let newer: Vec<&str> = table
            .releases
            .iter()
            .filter(|r| {
                VersionKey::parse(&r.version)
                    .zip(VersionKey::parse(from_version))
                    .is_some_and(|(k, f)| k >= f)
            })
            .map(|r| r.version.as_str())
            .collect();
        let head_text = |h: &str| {
            if h.is_empty() {
                "an unknown revision".to_owned()
            } else {
                format!("Alembic revision {h}")
            }
        };
        return Err(Error::Downgrade(format!(
            "refusing to downgrade {place} from Dify {from_version} to {}: {from_version} has migrated the database to \
             {}, and {} expects {}, an older one.\n\
             Dify's migrations never run backwards, and an older api on a newer schema can corrupt data. Nothing was \
             changed.\n\
             Instead: stay on {from_version} or move forward (possible: {}); or, to really go back, restore the \
             database backup taken before the upgrade into a new namespace and install {} there.",
            to_version,
            head_text(from_head),
            to_version,
            head_text(to_head),
            if newer.is_empty() {
                from_version.to_owned()
            } else {
                newer.join(", ")
            },
            to_version
        )));
    }
    Ok(Transition::Upgrade {
        from: from_version.to_owned(),
        to: to_version.to_owned(),
        from_head: from_head.to_owned(),
        to_head: to_head.to_owned(),
        migrates: from_head != to_head || to_head.is_empty(),
    })
}
