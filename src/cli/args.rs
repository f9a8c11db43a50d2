//! Raw command-line arguments, exactly as clap parses them. Validation lives in
//! [`super::config`]; nothing here runs anything.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (diff: no differences; status: everything ready)
  1  diff: differences found; status: something is not ready
  2  invalid input: arguments, values, schema or templates (nothing was sent to a cluster)
  3  the cluster refused the request or could not be reached
  4  waiting failed: timeout, or the migration Job failed";

/// Render and apply Dify Community Edition on Nutanix Kubernetes Platform, without Helm.
#[derive(Debug, Parser)]
#[command(name = "difyrender", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the whole Dify stack as one YAML stream for `kubectl apply -f -`.
    #[command(after_help = EXIT_CODES)]
    Render(RenderCommand),
    /// Server-side apply the stack to a cluster in stages and wait until Dify is up.
    #[command(after_help = EXIT_CODES)]
    Apply(ApplyCommand),
}

/// Flags shared by every command that renders the chart.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// Values file, merged over the chart defaults in order (repeatable).
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Set a value: a.b=v, list[0]=v, {a,b}; only true/false/null and whole numbers are typed.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Set a value that is always a string.
    #[arg(long = "set-string", value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,
    /// Set a value to the contents of a file.
    #[arg(long = "set-file", value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
    /// Set a value from JSON (KEY=JSON), or deep-merge a whole JSON object.
    #[arg(long = "set-json", value_name = "KEY=JSON")]
    pub set_json: Vec<String>,
    /// Read the Dify master secret key from this file (else secrets.difySecretKey, else $DIFY_SECRET_KEY).
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Namespace of the release.
    #[arg(short = 'n', long, default_value = "dify")]
    pub namespace: String,
    /// Release name: prefixes object names and sets app.kubernetes.io/instance.
    #[arg(long, default_value = "dify")]
    pub release: String,
    /// Render a customised copy of the chart (templates/, values.yaml, values.schema.json).
    #[arg(long, value_name = "DIR")]
    pub chart: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderCommand {
    #[command(flatten)]
    pub render: RenderArgs,
    /// Write one file per object into DIR instead of printing a stream.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Only print the objects of this component (repeatable).
    #[arg(long = "show-only", value_name = "COMPONENT")]
    pub show_only: Vec<String>,
}

/// How to reach the cluster.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (else $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyCommand {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// `server`: send every object with dryRun=All and change nothing.
    #[arg(long = "dry-run", value_name = "MODE", value_parser = ["server", "none"], default_value = "none")]
    pub dry_run: String,
    /// Take over fields that another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Wait until the datastores, the migration and the apps are ready (default).
    #[arg(long, overrides_with = "no_wait")]
    pub wait: bool,
    /// Apply without waiting for readiness.
    #[arg(long = "no-wait")]
    pub no_wait: bool,
    /// How long to wait, overall (e.g. 90s, 10m, 1h).
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
    /// External host or IP browsers use; skips the Traefik LoadBalancer lookup.
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// Traefik Service whose LoadBalancer address is the external host (default: a Service
    /// named kommander-traefik in any namespace).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub traefik_service: Option<String>,
}
