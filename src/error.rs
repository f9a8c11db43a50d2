//! The top-level error and the documented exit codes.

/// Exit codes, shared by every command and documented in `--help` and the README.
pub mod exit {
    /// Success; for `diff`, no differences; for `status`, everything ready.
    pub const OK: u8 = 0;
    /// `diff`: differences found. `status`: something is not ready.
    pub const DIFFERENT: u8 = 1;
    /// Bad input: arguments, values, schema, templates. Nothing was sent to a cluster.
    pub const INPUT: u8 = 2;
    /// The cluster refused or could not be reached (conflict, forbidden, invalid, connection).
    pub const CLUSTER: u8 = 3;
    /// Waiting failed: a timeout, or a Job that failed.
    pub const WAIT: u8 = 4;
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
    /// The process exit code for this error: the code its layer's error carries. Arguments,
    /// files, charts, values, templates and catalog entries are input; the cluster layer
    /// decides per variant ([`crate::cluster::Error::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Io { .. } => exit::INPUT,
            Error::Chart(_) | Error::Release(_) | Error::Catalog(_) => exit::INPUT,
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
    use crate::cluster::Error as ClusterError;
    use std::collections::BTreeMap;

    /// The README's exit code table: code → its row's text.
    fn documented() -> BTreeMap<u8, String> {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Exit codes")
            .nth(1)
            .expect("README.md has an Exit codes section");
        section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let mut cells = l.trim_matches('|').splitn(2, '|');
                let code = cells.next()?.trim().parse().ok()?;
                Some((code, cells.next()?.trim().to_owned()))
            })
            .collect()
    }

    fn status(code: u16, reason: &str) -> Box<kube::core::Status> {
        Box::new(kube::core::Status::failure("refused", reason).with_code(code))
    }

    /// Every error type gives the code the README documents for what it means: each case is an
    /// error and words of the README row its code must have.
    #[test]
    fn every_documented_exit_code_is_the_code_of_its_errors() {
        let rows = documented();
        assert_eq!(
            rows.keys().copied().collect::<Vec<_>>(),
            [
                exit::OK,
                exit::DIFFERENT,
                exit::INPUT,
                exit::CLUSTER,
                exit::WAIT
            ],
            "the README documents exactly the codes of error::exit"
        );
        let cases: Vec<(Error, &str)> = vec![
            (Error::Usage("--bad".into()), "arguments"),
            (
                Error::Io {
                    context: "cannot read values.yaml".into(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                },
                "invalid input",
            ),
            (
                Error::Chart(crate::chart::Error::NoTemplates("chart".into())),
                "templates",
            ),
            (
                Error::Release(crate::release::Error::Schema("bad".into())),
                "schema",
            ),
            (
                Error::Catalog(crate::catalog::Error::AppName("Bad".into())),
                "arguments",
            ),
            (
                Error::Cluster(ClusterError::Config("kubeconfig".into())),
                "an unreadable kubeconfig",
            ),
            (
                Error::Cluster(ClusterError::Usage("older head".into())),
                "a refused downgrade",
            ),
            (
                Error::Cluster(ClusterError::Unreachable {
                    action: "get".into(),
                    message: "connection refused".into(),
                }),
                "could not be reached",
            ),
            (
                Error::Cluster(ClusterError::Untrusted {
                    action: "get".into(),
                    message: "invalid peer certificate: UnknownIssuer".into(),
                }),
                "its certificate is not trusted",
            ),
            (
                Error::Cluster(ClusterError::Unauthorized {
                    action: "get".into(),
                }),
                "refused the request or the kubeconfig's credentials",
            ),
            (
                Error::Cluster(ClusterError::Api {
                    object: "Deployment/dify/dify-api".into(),
                    verb: "apply",
                    status: status(403, "Forbidden"),
                }),
                "the cluster refused the request",
            ),
            (
                Error::Cluster(ClusterError::Conflicts(vec![])),
                "the cluster refused the request",
            ),
            (
                Error::Cluster(ClusterError::Doctor("quota".into())),
                "a `doctor` check failed",
            ),
            (
                Error::Cluster(ClusterError::NotFound("Secret dify/x".into())),
                "a Secret the pods read is missing",
            ),
            (
                Error::Cluster(ClusterError::Timeout {
                    elapsed: 1,
                    waiting: vec![],
                }),
                "a timeout",
            ),
            (
                Error::Cluster(ClusterError::Failed {
                    object: "Job/dify/dify-migration".into(),
                    reason: "job failed".into(),
                }),
                "the migration Job failed",
            ),
            (
                Error::Cluster(ClusterError::LoadBalancer("no address".into())),
                "LoadBalancer address",
            ),
        ];
        for (error, words) in cases {
            let code = error.exit_code();
            let row = rows
                .get(&code)
                .unwrap_or_else(|| panic!("{error:?} exits {code}, which the README omits"));
            assert!(
                row.contains(words),
                "{error:?} exits {code}, whose README row does not say {words:?}: {row}"
            );
        }
    }
}
