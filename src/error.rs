//! The top-level error and the documented exit codes.

/// Exit codes, shared by every command and documented in `--help` and the README.
pub mod exit {
    /// Success; for `diff`, no differences; for `status`, everything ready.
    pub const OK: u8 = 0;
    /// `diff`: differences found. `status`: something is not ready.
    pub const DIFFERENT: u8 = 1;
    /// Bad input: arguments, values, schema, templates. Nothing was sent to a cluster.
    pub const INPUT: u8 = 2;
    /// The cluster refused the request or could not be reached (conflict, forbidden, invalid,
    /// connection, credentials, certificate).
    pub const CLUSTER: u8 = 3;
    /// Waiting failed: a timeout, or a Job that failed.
    pub const WAIT: u8 = 4;

    /// What each code means: the one text `--help` prints and the exit code tables of
    /// README.md and docs/commands.md hold (a test keeps them equal, and checks every error
    /// type's code against it).
    pub const MEANINGS: [(u8, &str); 5] = [
        (
            OK,
            "success (`diff`: no differences; `status`: everything ready; `doctor`: no check failed; `test`: every check passed)",
        ),
        (
            DIFFERENT,
            "`diff`: differences found; `status`: something is not ready; `doctor`: a check failed; `test`: a check failed or reported nothing",
        ),
        (
            INPUT,
            "invalid input (nothing was sent to a cluster): arguments, files, values, the schema, templates, what the API server would refuse, an unreadable kubeconfig; or a refused downgrade (it read the release's inventory but wrote nothing)",
        ),
        (
            CLUSTER,
            "the cluster refused the request, refused the kubeconfig's credentials, could not be reached, or its certificate is not trusted; `apply`: a `doctor` check failed, or a Secret the pods read is missing (nothing was written); `test`: no release",
        ),
        (
            WAIT,
            "waiting failed: a timeout (also for the Traefik Service's LoadBalancer address), or the migration Job failed, or the bootstrap Job failed (its script's exit codes: docs/bootstrap.md)",
        ),
    ];

    /// The exit code table of the docs, as markdown.
    pub fn table() -> String {
        let mut out = String::from("| code | meaning |\n|---|---|\n");
        for (code, meaning) in MEANINGS {
            out.push_str(&format!("| {code} | {meaning} |\n"));
        }
        out
    }

    /// `--help`'s "Exit codes:" section: [`MEANINGS`] without markdown, wrapped at 100 columns.
    pub fn help() -> String {
        let mut out = String::from("Exit codes:");
        for (code, meaning) in MEANINGS {
            let mut line = format!("\n  {code} ");
            for word in meaning.replace('`', "").split(' ') {
                if line.len() + 1 + word.len() > 100 {
                    out.push_str(&line);
                    line = "\n     ".to_owned();
                } else {
                    line.push(' ');
                }
                line.push_str(word);
            }
            out.push_str(&line);
        }
        out
    }
}

/// Any failure of a difyrender command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Chart(#[from] crate::chart::Error),
    #[error(transparent)]
    Release(#[from] crate::release::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::Error),
}

impl Error {
    /// The process exit code for this error: the code its layer's error carries. Arguments
    /// and files are input.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Io { .. } => exit::INPUT,
            Error::Chart(e) => e.exit_code(),
            Error::Release(e) => e.exit_code(),
            Error::Catalog(e) => e.exit_code(),
            Error::Cluster(e) => e.exit_code(),
        }
    }

    /// A closed stdout (`difyrender render | head`) is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Error as CatalogError;
    use crate::chart::Error as ChartError;
    use crate::cluster::Error as ClusterError;
    use crate::release::Error as ReleaseError;
    use std::collections::{BTreeMap, BTreeSet};

    /// The exit code table of a document: the lines of its `Exit codes` section's table.
    fn documented_table(doc: &str, text: &str) -> String {
        let section = text
            .split("Exit codes\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{doc} has an Exit codes section"));
        section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// The README and docs/commands.md hold the table `--help` prints from.
    #[test]
    fn the_docs_exit_code_tables_are_the_one_table() {
        for (doc, text) in [
            ("README.md", include_str!("../README.md")),
            ("docs/commands.md", include_str!("../docs/commands.md")),
        ] {
            assert_eq!(
                documented_table(doc, text),
                exit::table(),
                "{doc}'s exit code table differs from error::exit::MEANINGS"
            );
        }
        let help = exit::help();
        for (code, _) in exit::MEANINGS {
            assert!(help.contains(&format!("\n  {code}  ")), "{help}");
        }
    }

    /// What a row says, cause by cause: split at top-level `, ` and `; ` (not inside
    /// parentheses), each without a leading "or " and without what comes before its last
    /// `: ` (the row's or a command's heading).
    fn causes(meaning: &str) -> Vec<String> {
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0, 0);
        let bytes = meaning.as_bytes();
        for i in 0..bytes.len() {
            match bytes[i] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                b',' | b';' if depth == 0 && bytes.get(i + 1) == Some(&b' ') => {
                    parts.push(&meaning[start..i]);
                    start = i + 2;
                }
                _ => {}
            }
        }
        parts.push(&meaning[start..]);
        parts
            .into_iter()
            .map(|p| {
                let p = p.strip_prefix("or ").unwrap_or(p);
                let mut depth = 0;
                let mut cut = 0;
                for (i, c) in p.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        ':' if depth == 0 && p[i + 1..].starts_with(' ') => cut = i + 2,
                        _ => {}
                    }
                }
                p[cut..].to_owned()
            })
            .collect()
    }

    fn status(code: u16, reason: &str) -> Box<kube::core::Status> {
        Box::new(kube::core::Status::failure("refused", reason).with_code(code))
    }

    /// Which variant of the top-level error: the match has no wildcard, so a new variant does
    /// not compile until it has an index, and the test then wants a sample of it.
    fn top_variant(e: &Error) -> usize {
        match e {
            Error::Usage(_) => 0,
            Error::Io { .. } => 1,
            Error::Chart(_) => 2,
            Error::Release(_) => 3,
            Error::Cluster(_) => 4,
            Error::Catalog(_) => 5,
        }
    }

    /// The same for the cluster layer, the one layer whose variants have different codes.
    fn cluster_variant(e: &ClusterError) -> usize {
        match e {
            ClusterError::Config(_) => 0,
            ClusterError::Unreachable { .. } => 1,
            ClusterError::Untrusted { .. } => 2,
            ClusterError::Unauthorized { .. } => 3,
            ClusterError::Api { .. } => 4,
            ClusterError::Conflicts(_) => 5,
            ClusterError::Immutable { .. } => 6,
            ClusterError::Many(_) => 7,
            ClusterError::LoadBalancer(_) => 8,
            ClusterError::Timeout { .. } => 9,
            ClusterError::Failed { .. } => 10,
            ClusterError::Diagnosed { .. } => 11,
            ClusterError::Usage(_) => 12,
            ClusterError::NotFound(_) => 13,
            ClusterError::Doctor(_) => 14,
        }
    }

    fn io_error() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::NotFound)
    }

    /// Errors of every layer, each with the cause its code's row must name for it.
    fn samples() -> Vec<(Error, &'static str)> {
        let cluster = |e: ClusterError| Error::Cluster(e);
        vec![
            (Error::Usage("--bad".into()), "arguments"),
            (
                Error::Io {
                    context: "cannot write the output".into(),
                    source: io_error(),
                },
                "files",
            ),
            (
                Error::Chart(ChartError::NoTemplates("chart".into())),
                "templates",
            ),
            (
                Error::Chart(ChartError::Read {
                    path: "chart".into(),
                    source: io_error(),
                }),
                "files",
            ),
            (
                Error::Chart(ChartError::Values(
                    crate::values::Error::EmptySecretKeyFile { path: "key".into() },
                )),
                "files",
            ),
            (
                Error::Chart(ChartError::Versions(crate::versions::Error::Table(
                    "bad".into(),
                ))),
                "files",
            ),
            (
                Error::Release(ReleaseError::Schema("bad".into())),
                "the schema",
            ),
            (
                Error::Release(ReleaseError::Values(crate::values::Error::Schema(vec![]))),
                "the schema",
            ),
            (
                Error::Release(ReleaseError::Values(crate::values::Error::Rules(vec![]))),
                "values",
            ),
            (
                Error::Release(ReleaseError::Render(crate::render::Error::Template(vec![]))),
                "templates",
            ),
            (
                Error::Release(ReleaseError::Manifest(crate::manifest::Error::Invalid(
                    vec![],
                ))),
                "what the API server would refuse",
            ),
            (
                Error::Release(ReleaseError::Version(crate::versions::Error::TooOld {
                    version: "1.0.0".into(),
                    minimum: "1.10.0".into(),
                })),
                "values",
            ),
            (
                Error::Release(ReleaseError::Connections {
                    configured: 100,
                    needed: 313,
                    explain: String::new(),
                }),
                "values",
            ),
            (
                Error::Catalog(CatalogError::AppName("Bad".into())),
                "arguments",
            ),
            (
                Error::Catalog(CatalogError::Io {
                    context: "cannot write repo".into(),
                    source: io_error(),
                }),
                "files",
            ),
            (
                cluster(ClusterError::Config("kubeconfig".into())),
                "an unreadable kubeconfig",
            ),
            (
                cluster(ClusterError::Usage("older head".into())),
                "a refused downgrade",
            ),
            (
                cluster(ClusterError::Unreachable {
                    action: "get".into(),
                    message: "connection refused".into(),
                }),
                "could not be reached",
            ),
            (
                cluster(ClusterError::Untrusted {
                    action: "get".into(),
                    message: "invalid peer certificate: UnknownIssuer".into(),
                }),
                "its certificate is not trusted",
            ),
            (
                cluster(ClusterError::Unauthorized {
                    action: "get".into(),
                }),
                "refused the kubeconfig's credentials",
            ),
            (
                cluster(ClusterError::Api {
                    object: "Deployment/dify/dify-api".into(),
                    verb: "apply",
                    status: status(403, "Forbidden"),
                }),
                "the cluster refused the request",
            ),
            (
                cluster(ClusterError::Conflicts(vec![])),
                "the cluster refused the request",
            ),
            (
                cluster(ClusterError::Immutable {
                    object: "StatefulSet/dify/dify-postgresql".into(),
                    message: "field is immutable".into(),
                    guidance: String::new(),
                }),
                "the cluster refused the request",
            ),
            (
                cluster(ClusterError::Many(vec![])),
                "the cluster refused the request",
            ),
            (
                cluster(ClusterError::Doctor("quota".into())),
                "a `doctor` check failed",
            ),
            (
                cluster(ClusterError::NotFound("Secret dify/x".into())),
                "a Secret the pods read is missing",
            ),
            (
                cluster(ClusterError::NotFound("release dify has no api".into())),
                "no release",
            ),
            (
                cluster(ClusterError::Timeout {
                    elapsed: 1,
                    waiting: vec![],
                }),
                "a timeout",
            ),
            (
                cluster(ClusterError::Diagnosed {
                    error: Box::new(ClusterError::Timeout {
                        elapsed: 1,
                        waiting: vec![],
                    }),
                    diagnoses: vec![],
                }),
                "a timeout",
            ),
            (
                cluster(ClusterError::Failed {
                    object: "Job/dify/dify-migration".into(),
                    reason: "job failed".into(),
                }),
                "the migration Job failed",
            ),
            (
                cluster(ClusterError::Failed {
                    object: "Job/dify/dify-bootstrap-1a2b3c4d".into(),
                    reason: "the provider refused the key".into(),
                }),
                "the bootstrap Job failed",
            ),
            (
                cluster(ClusterError::LoadBalancer("no address".into())),
                "LoadBalancer address",
            ),
        ]
    }

    /// Both directions: every error's code is documented and its row names its cause; every
    /// cause a row of an error code names is the cause of some error with that code; and every
    /// variant has a sample.
    #[test]
    fn every_documented_exit_code_is_the_code_of_its_errors() {
        let rows: BTreeMap<u8, &str> = exit::MEANINGS.into_iter().collect();
        let samples = samples();
        let mut claimed: BTreeSet<(u8, String)> = BTreeSet::new();
        for (error, cause) in &samples {
            let code = error.exit_code();
            assert!(
                code >= exit::INPUT,
                "{error:?} exits {code}, a code for results, not errors"
            );
            let row = rows
                .get(&code)
                .unwrap_or_else(|| panic!("{error:?} exits {code}, which the README omits"));
            let found = causes(row).into_iter().find(|c| c.contains(cause));
            assert!(
                found.is_some(),
                "{error:?} exits {code}, whose README row does not say {cause:?}: {row}"
            );
            claimed.insert((code, found.unwrap()));
        }
        for (code, row) in rows.iter().filter(|(c, _)| **c >= exit::INPUT) {
            for cause in causes(row) {
                assert!(
                    claimed.contains(&(*code, cause.clone())),
                    "the README says exit {code} for {cause:?}, but no error with that code is that"
                );
            }
        }
        let top: BTreeSet<usize> = samples.iter().map(|(e, _)| top_variant(e)).collect();
        assert_eq!(top, (0..=5).collect(), "a top-level variant has no sample");
        let cluster: BTreeSet<usize> = samples
            .iter()
            .filter_map(|(e, _)| match e {
                Error::Cluster(c) => Some(cluster_variant(c)),
                _ => None,
            })
            .collect();
        assert_eq!(
            cluster,
            (0..=14).collect(),
            "a cluster variant has no sample"
        );
    }
}
