//! Everything that talks to a Kubernetes API server, kept apart from rendering. One resource
//! manager ([`manager`]) and one file per verb: [`apply`], [`wait`], plus the Traefik address
//! lookup ([`external`]). [`readiness`] and [`kinds`] are pure helpers with no I/O.

pub mod apply;
pub mod bootstrap_key;
pub mod delete;
pub mod diagnose;
pub mod diff;
pub mod doctor;
pub mod external;
pub mod inventory;
pub mod kinds;
pub mod manager;
pub mod podsecurity;
pub mod progress;
pub mod readiness;
pub mod refs;
pub mod smoke_model;
pub mod smoketest;
pub mod status;
pub mod upgrade;
pub mod wait;

use kube::core::Status;
use std::path::PathBuf;

pub use manager::ResourceManager;

/// The field manager difyrender applies under.
pub const FIELD_MANAGER: &str = "difyrender";

/// How to reach the cluster, from the command line.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// `--kubeconfig`; otherwise `$KUBECONFIG`, then `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`, as in kubectl.
    pub context: Option<String>,
}

impl Connection {
    /// A client for the configured cluster. Every kubeconfig file is read with a size limit and
    /// parsed before kube sees it, so a malformed file is reported by position only: kube's
    /// own parse errors quote the lines around the mistake, tokens and keys included.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        use kube::config::{Config, KubeConfigOptions};
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match self.kubeconfig_files()? {
            Some(files) => {
                let mut merged: Option<kube::config::Kubeconfig> = None;
                for path in &files {
                    let kc = read_kubeconfig(path)?;
                    merged = Some(match merged {
                        None => kc,
                        Some(m) => m.merge(kc).map_err(|e| {
                            Error::Config(format!(
                                "cannot merge the kubeconfig {}: {e}",
                                path.display()
                            ))
                        })?,
                    });
                }
                let shown = files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                // kube's messages quote the context name: a control character in it (a
                // newline from `--context`) is escaped, not printed.
                let config = Config::from_custom_kubeconfig(merged.unwrap_or_default(), &options)
                    .await
                    .map_err(|e| {
                        Error::Config(format!(
                            "cannot use the kubeconfig {shown}: {}",
                            crate::diag::escape_control(&e.to_string())
                        ))
                    })?;
                // kube is built without its proxy support: a proxy it would bypass or fail on
                // (with the proxy's URL, credentials included, in its message) is refused here.
                if config.proxy_url.is_some() {
                    return Err(Error::Config(format!(
                        "the kubeconfig {shown}: the cluster of the selected context sets proxy-url, which difyrender does not support; reach the API server directly (for example from a host inside the proxy's network)"
                    )));
                }
                if let Some(exec) = &config.auth_info.exec {
                    let command = exec.command.clone().unwrap_or_default();
                    *EXEC_PLUGIN.lock().unwrap_or_else(|e| e.into_inner()) = Some(command);
                }
                config
            }
            // No kubeconfig at all: in a pod, use its service account, as kubectl does.
            None if self.context.is_none() => Config::incluster().map_err(|ie| {
                Error::Config(format!(
                    "no kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config) and not in a cluster ({ie})"
                ))
            })?,
            None => {
                return Err(Error::Config(format!(
                    "cannot use context {}: no kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config)",
                    crate::diag::excerpt(self.context.as_deref().unwrap_or_default())
                )));
            }
        };
        // kube 4+ sets no read timeout; without one, an API server that stops answering would
        // hang the command instead of failing it.
        let mut config = config;
        config.connect_timeout = Some(std::time::Duration::from_secs(10));
        config.read_timeout = Some(std::time::Duration::from_secs(60));
        config.write_timeout = Some(std::time::Duration::from_secs(60));
        kube::Client::try_from(config)
            .map_err(|e| Error::Config(format!("cannot create a client: {}", error_chain(&e))))
    }

    /// The kubeconfig files to merge, as kubectl finds them: `--kubeconfig`, else every path
    /// in `$KUBECONFIG`, else `~/.kube/config` if it exists; `None` when there is none.
    fn kubeconfig_files(&self) -> Result<Option<Vec<PathBuf>>, Error> {
        if let Some(path) = &self.kubeconfig {
            return Ok(Some(vec![path.clone()]));
        }
        if let Some(value) = std::env::var_os("KUBECONFIG") {
            let paths: Vec<PathBuf> = std::env::split_paths(&value)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            if !paths.is_empty() {
                return Ok(Some(paths));
            }
        }
        Ok(std::env::home_dir()
            .map(|h| h.join(".kube").join("config"))
            .filter(|p| p.exists())
            .map(|p| vec![p]))
    }
}

/// The command of the kubeconfig's exec credential plugin, when the client uses one: errors of
/// the plugin name it, never quote what it printed (a token, or part of one).
static EXEC_PLUGIN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Most bytes of a file a kubeconfig names (a certificate, key or token file); kube reads
/// these itself, so their type and size are checked before it does.
pub const MAX_KUBECONFIG_FILE_BYTES: usize = 1024 * 1024;

/// One kubeconfig file: read with a limit, parsed without echoing any of it, relative file
/// references made absolute as kubectl does, and every file it names checked to be a regular
/// file within [`MAX_KUBECONFIG_FILE_BYTES`] before kube reads it.
fn read_kubeconfig(path: &std::path::Path) -> Result<kube::config::Kubeconfig, Error> {
    let shown = path.display().to_string();
    let bytes = crate::input::read_limited(path, crate::input::MAX_DOCUMENT_BYTES)
        .map_err(|e| Error::Config(format!("cannot read the kubeconfig {shown}: {e}")))?;
    let text = crate::yaml::decode_text(&bytes)
        .map_err(|e| Error::Config(format!("the kubeconfig {shown}{e}")))?;
    let mut kc = kube::config::Kubeconfig::from_yaml(text).map_err(|e| {
        let what = match e {
            kube::config::KubeconfigError::Parse(e) => crate::yaml::describe(&e),
            _ => "not a kubeconfig".to_owned(),
        };
        Error::Config(format!("the kubeconfig {shown} is invalid: {what}"))
    })?;
    let absolute = |file: &mut Option<String>| {
        if let (Some(dir), Some(f)) = (path.parent(), file.as_ref())
            && std::path::Path::new(f).is_relative()
            && let Some(abs) = dir.join(f).to_str()
        {
            *file = Some(abs.to_owned());
        }
    };
    let checked = |owner: &str, field: &str, file: &Option<String>| -> Result<(), Error> {
        match file {
            Some(f) => {
                crate::input::check_regular(std::path::Path::new(f), MAX_KUBECONFIG_FILE_BYTES)
                    .map_err(|e| {
                        Error::Config(format!(
                            "the kubeconfig {shown}: {owner} {field} {}: {e}",
                            crate::diag::excerpt(f)
                        ))
                    })
            }
            None => Ok(()),
        }
    };
    for named in &mut kc.clusters {
        if let Some(cluster) = &mut named.cluster {
            absolute(&mut cluster.certificate_authority);
            let owner = format!("cluster {}", crate::diag::excerpt(&named.name));
            checked(
                &owner,
                "certificate-authority",
                &cluster.certificate_authority,
            )?;
        }
    }
    for named in &mut kc.auth_infos {
        if let Some(auth) = &mut named.auth_info {
            absolute(&mut auth.client_certificate);
            absolute(&mut auth.client_key);
            absolute(&mut auth.token_file);
            let owner = format!("user {}", crate::diag::excerpt(&named.name));
            checked(&owner, "client-certificate", &auth.client_certificate)?;
            checked(&owner, "client-key", &auth.client_key)?;
            checked(&owner, "tokenFile", &auth.token_file)?;
        }
    }
    Ok(kc)
}

/// A field another manager owns, found in a 409 conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    pub field: String,
    pub manager: String,
}

/// Why a cluster operation failed. Messages name the object, the verb and the server's reason;
/// they never include an object's contents, so no secret can appear.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("cannot reach the API server while trying to {action}: {message}")]
    Unreachable { action: String, message: String },
    /// The TLS handshake failed: the server's certificate is not signed by the kubeconfig's CA
    /// (or not for the address it names).
    #[error(
        "the API server's certificate is not trusted while trying to {action}: {message}\n  \
         The kubeconfig's certificate authority (certificate-authority-data or \
         certificate-authority of its cluster) did not sign it, or it is not for the server \
         address the kubeconfig names: check the context, or get the cluster's kubeconfig again"
    )]
    Untrusted { action: String, message: String },
    /// The API server answered 401: it does not accept the kubeconfig's credentials.
    #[error(
        "the API server refused the kubeconfig's credentials (401 Unauthorized) while trying to \
         {action}\n  The token or client certificate of the context's user is wrong or has \
         expired: check the context, or get the cluster's kubeconfig again"
    )]
    Unauthorized { action: String },
    #[error("{object}: {verb} refused: {}", reason_of(.status))]
    Api {
        object: String,
        verb: &'static str,
        status: Box<Status>,
    },
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<(String, Vec<FieldConflict>)>),
    #[error("{object}: {message}\n  {guidance}")]
    Immutable {
        object: String,
        message: String,
        guidance: String,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<Error>),
    #[error("{0}")]
    LoadBalancer(String),
    #[error("timed out after {elapsed}s waiting for:\n{}", .waiting.iter().map(|(o, r)| format!("  {o}: {r}")).collect::<Vec<_>>().join("\n"))]
    Timeout {
        elapsed: u64,
        waiting: Vec<(String, String)>,
    },
    #[error("{object} failed: {reason}")]
    Failed { object: String, reason: String },
    /// A wait failure with why each object is not ready.
    #[error("{error}\n{}", diagnose::text_of(.diagnoses).trim_end())]
    Diagnosed {
        error: Box<Error>,
        diagnoses: Vec<diagnose::Diagnosis>,
    },
    #[error("{0}")]
    Usage(String),
    /// The release or object asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// `doctor` found a problem that would make the install fail (apply stops before writing).
    #[error("{0}")]
    Doctor(String),
}

fn conflict_message(conflicts: &[(String, Vec<FieldConflict>)]) -> String {
    let mut out = String::from(
        "apply refused: fields difyrender would set are owned by another field manager:\n",
    );
    for (object, fields) in conflicts {
        for f in fields {
            out.push_str(&format!(
                "  {object}: {} is owned by {:?}\n",
                f.field, f.manager
            ));
        }
    }
    out.push_str(
        "Nothing was changed. Re-run with --force-conflicts to take these fields over (the other manager's \
         values are replaced by difyrender's), or change the values so they agree.",
    );
    out
}

impl Error {
    /// Wraps a kube error for `verb` on `object`, recognising conflicts, immutable fields and
    /// unreachable servers.
    pub fn from_kube(object: &str, verb: &'static str, err: kube::Error) -> Error {
        match err {
            kube::Error::Api(status) if status.code == 401 => Error::Unauthorized {
                action: format!("{verb} {object}"),
            },
            kube::Error::Api(status) => {
                if status.is_conflict() && verb.contains("apply") {
                    let fields = conflicts_of(&status);
                    if !fields.is_empty() {
                        return Error::Conflicts(vec![(object.to_owned(), fields)]);
                    }
                }
                if status.is_invalid()
                    && (status.message.contains("immutable")
                        || status.message.contains("Forbidden: updates to"))
                {
                    return Error::Immutable {
                        object: object.to_owned(),
                        message: reason_of(&status),
                        guidance: immutable_guidance(object),
                    };
                }
                Error::Api {
                    object: object.to_owned(),
                    verb,
                    status,
                }
            }
            other => {
                let action = format!("{verb} {object}");
                let message = error_chain(&other);
                if message.contains("invalid peer certificate") {
                    Error::Untrusted { action, message }
                } else {
                    Error::Unreachable { action, message }
                }
            }
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflicts(_))
    }

    pub fn is_forbidden(&self) -> bool {
        matches!(self, Error::Api { status, .. } if status.is_forbidden())
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status, .. } if status.is_not_found())
    }

    pub fn is_immutable(&self) -> bool {
        matches!(self, Error::Immutable { .. })
    }

    /// True when the API server cannot be used at all: not reached, not trusted, or refusing
    /// the credentials. Every further call would fail the same way.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. } | Error::Untrusted { .. } | Error::Unauthorized { .. }
        )
    }

    /// True when waiting, not the API, failed: a timeout, a failed Job, or no LoadBalancer
    /// address for the Traefik Service in time (the errors that exit 4).
    pub fn is_wait_failure(&self) -> bool {
        self.exit_code() == crate::error::exit::WAIT
    }

    /// The process exit code of this error (README, "Exit codes"), decided per variant.
    pub fn exit_code(&self) -> u8 {
        use crate::error::exit;
        match self {
            // Nothing could be written: the kubeconfig, or the request itself (a downgrade).
            Error::Config(_) | Error::Usage(_) => exit::INPUT,
            Error::Timeout { .. } | Error::Failed { .. } | Error::LoadBalancer(_) => exit::WAIT,
            Error::Diagnosed { error, .. } => error.exit_code(),
            Error::Unreachable { .. }
            | Error::Untrusted { .. }
            | Error::Unauthorized { .. }
            | Error::Api { .. }
            | Error::Conflicts(_)
            | Error::Immutable { .. }
            | Error::Many(_)
            | Error::NotFound(_)
            | Error::Doctor(_) => exit::CLUSTER,
        }
    }

    /// Merges many errors into one, grouping conflicts into a single report.
    pub fn merge(errors: Vec<Error>) -> Error {
        let mut conflicts = Vec::new();
        let mut others = Vec::new();
        for e in errors {
            match e {
                Error::Conflicts(mut c) => conflicts.append(&mut c),
                other => others.push(other),
            }
        }
        if !conflicts.is_empty() {
            others.insert(0, Error::Conflicts(conflicts));
        }
        if others.len() == 1 {
            others.pop().unwrap()
        } else {
            Error::Many(others)
        }
    }
}

/// The server's reason, from its structured causes where it gave them. An "Invalid value" cause
/// quotes the rejected value, which may be a whole pod template or a Secret's data, so only
/// the field and the verdict after the value are kept.
fn reason_of(status: &Status) -> String {
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.as_slice())
        .unwrap_or_default();
    if causes.is_empty() {
        let m = &status.message;
        return if m.len() > 400 {
            format!("{}…", m.chars().take(400).collect::<String>())
        } else {
            m.clone()
        };
    }
    causes
        .iter()
        .map(|c| {
            let verdict = if c.message.starts_with("Invalid value:") {
                c.message.rsplit(": ").next().unwrap_or(&c.message)
            } else {
                &c.message
            };
            if c.field.is_empty() {
                verdict.to_owned()
            } else {
                format!("{}: {verdict}", c.field)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `conflict with "kubectl" using apps/v1` causes → (field, manager).
fn conflicts_of(status: &Status) -> Vec<FieldConflict> {
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.as_slice())
        .unwrap_or_default();
    causes
        .iter()
        .filter(|c| c.reason == "FieldManagerConflict" || c.message.starts_with("conflict with"))
        .map(|c| FieldConflict {
            field: c.field.clone(),
            manager: c
                .message
                .split('"')
                .nth(1)
                .unwrap_or("another manager")
                .to_owned(),
        })
        .collect()
}

fn immutable_guidance(object: &str) -> String {
    let kind = object.split('/').next().unwrap_or_default();
    let name = object.rsplit('/').next().unwrap_or_default();
    let ns = object.split('/').nth(1).unwrap_or("default");
    match kind {
        "Job" => format!(
            "A Job's pod template cannot change. Delete it (kubectl delete job -n {ns} {name}) and apply again: the migration is idempotent."
        ),
        "StatefulSet" => format!(
            "Delete only the StatefulSet object, keeping its pods and volumes (kubectl delete statefulset -n {ns} {name} --cascade=orphan), then apply again."
        ),
        _ => format!(
            "This field cannot change in place. Delete {object} and apply again, or keep the old value."
        ),
    }
}

/// The error and its causes on one line ("error trying to connect: … : Connection refused").
/// A failure of the exec credential plugin is named, never quoted: kube's own message repeats
/// what the plugin printed.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(auth) = c.downcast_ref::<kube::client::AuthError>() {
            return auth_message(auth);
        }
        if let Some(kube::Error::Auth(auth)) = c.downcast_ref::<kube::Error>() {
            return auth_message(auth);
        }
        cause = c.source();
    }
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// A credential failure, without the plugin's output or any token.
fn auth_message(e: &kube::client::AuthError) -> String {
    use kube::client::AuthError as A;
    let plugin = || {
        let command = EXEC_PLUGIN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        format!(
            "the kubeconfig's exec credential plugin {}",
            crate::diag::excerpt(&command)
        )
    };
    match e {
        A::AuthExecStart(io) => format!("{} could not be started: {io}", plugin()),
        A::AuthExecRun { out, .. } => format!(
            "{} failed with {} (its output is not shown)",
            plugin(),
            out.status
        ),
        A::AuthExecParse(_) => format!(
            "{} printed something that is not an ExecCredential (its output is not shown)",
            plugin()
        ),
        A::AuthExec(_) | A::AuthExecSerialize(_) | A::MissingCommand => format!(
            "{} did not give a usable credential (its output is not shown)",
            plugin()
        ),
        other => format!("authentication failed: {}", error_kind_only(other)),
    }
}

/// The first line of an authentication error's message, up to its first quote or colon: the
/// kind of failure, without what kube quotes after it.
fn error_kind_only(e: &kube::client::AuthError) -> String {
    let text = e.to_string();
    let cut = text.find([':', '\'', '"', '\n']).unwrap_or(text.len());
    text[..cut].trim().to_owned()
}
