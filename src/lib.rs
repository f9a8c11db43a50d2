//! difyrender renders Dify Community Edition for Nutanix Kubernetes Platform from an embedded
//! minijinja chart, and applies it with server-side apply, without Helm.
//!
//! The library is layered so each concern lives in one place:
//! - [`values`]: defaults, `-f` and `--set*` merged by Helm's rules, the master key and derived
//!   keys, and `values.schema.json` validation. No I/O beyond reading the named files.
//! - [`render`]: the minijinja environment, its escaping rule, `required` and `fail`.
//! - [`manifest`]: rendered text parsed back, checked against typed Kubernetes structs, staged.
//! - [`objects`]: below both: the label keys and a rendered template's text.
//! - [`versions`]: the release table (`versions.yaml`): each Dify release's images, Alembic
//!   head and template switches, refusals, and which upgrades are allowed.
//! - [`release`]: the pipeline tying those together for one release.
//! - [`catalog`]: a release as an NKP application-catalog entry of plain manifests, no secrets.
//! - [`cluster`]: server-side apply, readiness and the Traefik address, through kube-rs.
//! - [`cli`]: command-line arguments, turned into validated configs before anything runs.
//! - [`diag`]: the one rule for every message a user sees: no secret, no line of echoed input
//!   longer than a line; [`input`]: files read with a limit.

pub mod catalog;
pub mod chart;
pub mod cli;
pub mod cluster;
pub mod diag;
pub mod error;
pub mod input;
pub mod manifest;
pub mod objects;
pub mod release;
pub mod render;
pub mod values;
pub mod versions;
pub mod yaml;

pub use error::Error;
