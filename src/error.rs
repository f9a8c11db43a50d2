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
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Chart(_) | Error::Release(_) => exit::INPUT,
            Error::Io { .. } => exit::INPUT,
            Error::Catalog(_) => exit::INPUT,
            Error::Cluster(e) if e.is_wait_failure() => exit::WAIT,
            Error::Cluster(crate::cluster::Error::Usage(_)) => exit::INPUT,
            // A kubeconfig that cannot be read or used is bad input: nothing was sent.
            Error::Cluster(crate::cluster::Error::Config(_)) => exit::INPUT,
            Error::Cluster(_) => exit::CLUSTER,
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
