//! The release table (`versions.yaml`, next to `values.yaml`): every supported Dify release with
//! the images it pins, its Alembic head and the switches templates read. `images.dify.tag`
//! picks an entry; [`resolve`] turns the merged values into the release's full image set and
//! refuses releases that cannot work, before anything is rendered or sent to a cluster.
//! [`check_upgrade`] decides whether a live release may move to another one.

mod key;
mod resolved;
mod table;
#[cfg(test)]
mod tests;
mod upgrade;

pub use key::VersionKey;
pub use resolved::{IMAGE_COMPONENTS, Image, Resolved, RunImage, resolve};
pub use table::{DifyRelease, PinnedTags, Refusal, ReleaseTable, Routes, Since};
pub use upgrade::{Transition, check_upgrade};

/// Why a release cannot be rendered or applied, or the table cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("versions.yaml: {0}")]
    Table(String),
    #[error("images.dify.tag {version:?}: {reason}")]
    Refused { version: String, reason: String },
    #[error(
        "images.dify.tag {version:?} is below {minimum}, the oldest supported release: releases before it use another \
         Weaviate client, database service and plugin daemon than these templates render. Upgrade it with the \
         tools it was installed with to at least {minimum}, or install a supported release into a new namespace."
    )]
    TooOld { version: String, minimum: String },
    #[error(
        "images.dify.tag {version:?} is not a Dify version (MAJOR.MINOR.PATCH, e.g. 1.11.4); supported releases: {supported}"
    )]
    NotAVersion { version: String, supported: String },
    #[error(
        "images.dify.tag {version:?} is not in the release table (versions.yaml); supported releases: {supported}.\n\
         Each release pins its own plugin daemon, sandbox and Weaviate, has its own database head, Celery queues \
         and services, so an unknown release is not guessed.\n\
         To render it, add it to versions.yaml in a copy of the chart and render with --chart DIR (see \
         docs/releases.md)."
    )]
    Unknown { version: String, supported: String },
    #[error(
        "images.dify.tag {version:?} is not in the release table, and --allow-unknown-release does not guess what \
         a release needs beyond its images: its Alembic head, the Celery queues its worker must consume and the \
         switches the templates read (services, routes, variables) are release facts, and none is reused from \
         another release. To render it, copy the chart (values.yaml, values.schema.json, versions.yaml, \
         templates/), add an entry for {version} to the copy's versions.yaml with every fact from that release \
         (see docs/releases.md, \"Adding a Dify release\"), and render with --chart DIR."
    )]
    UnknownNeedsEntry { version: String },
    #[error("{0}")]
    Downgrade(String),
}

impl Error {
    /// A release the table refuses, or a table that cannot be read, is bad input.
    pub fn exit_code(&self) -> u8 {
        crate::error::exit::INPUT
    }
}
