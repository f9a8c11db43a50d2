//! Raw command-line arguments, exactly as clap parses them. Validation lives in
//! [`super::config`]; nothing here runs anything.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Render and apply Dify Community Edition on Nutanix Kubernetes Platform, without Helm.
#[derive(Debug, Parser)]
#[command(name = "difyrender", version, after_help = crate::error::exit::help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the whole Dify stack as one YAML stream for `kubectl apply -f -`.
    #[command(after_help = crate::error::exit::help())]
    Render(RenderCommand),
    /// Server-side apply the stack to a cluster in stages and wait until Dify is up.
    #[command(after_help = crate::error::exit::help())]
    Apply(ApplyCommand),
    /// Show what apply would change: a server dry run compared with the live objects.
    #[command(after_help = crate::error::exit::help())]
    Diff(DiffCommand),
    /// Show every object of a release from its inventory, ready or not and why.
    #[command(after_help = crate::error::exit::help())]
    Status(StatusCommand),
    /// The last lines of a component's log (every pod and container of it), secrets masked.
    #[command(after_help = crate::error::exit::help())]
    Logs(LogsCommand),
    /// Print a shell completion script: `source <(difyrender completion bash)`.
    Completion(CompletionCommand),
    /// Delete a release in reverse order; volumes and the keys Secret are kept by default.
    #[command(after_help = crate::error::exit::help())]
    Uninstall(UninstallCommand),
    /// Write an NKP application-catalog entry (plain manifests, no Helm, no secrets) into a
    /// catalog repository.
    #[command(after_help = crate::error::exit::help())]
    Catalog(CatalogCommand),
    /// The keys Secret a catalog entry reads: print it, or server-side apply it.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Before an install: read-only checks of the cluster against what the render needs.
    #[command(after_help = crate::error::exit::help())]
    Doctor(DoctorCommand),
    /// After an install: a short-lived Job proves from inside the cluster that the release works.
    #[command(after_help = crate::error::exit::help())]
    Test(TestCommand),
    /// Print every image the release would run, one per line, for mirroring into a private
    /// registry.
    #[command(after_help = crate::error::exit::help())]
    Images(ImagesCommand),
    /// The supported Dify releases; with a kubeconfig, which one a live release runs and the
    /// upgrades possible from it.
    #[command(after_help = crate::error::exit::help())]
    Versions(VersionsCommand),
}

#[derive(Debug, Args)]
pub struct DoctorCommand {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub host: HostArgs,
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct TestCommand {
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Keep the test Job and its pod afterwards (e.g. to read its logs).
    #[arg(long)]
    pub keep: bool,
    /// Also check the routes through the external URL (sub-path routes and the /e/ hook route).
    #[arg(long)]
    pub through_ingress: bool,
    /// How long the test Job may take, pulling its image included.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub timeout: String,
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ImagesCommand {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// text: one image per line; json: each image with its public source and components.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VersionsCommand {
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Read the release table (versions.yaml) of a customised copy of the chart.
    #[arg(long, value_name = "DIR")]
    pub chart: Option<PathBuf>,
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// Value and chart flags shared by every command that renders the chart.
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
    /// Render a customised copy of the chart (templates/, values.yaml, values.schema.json,
    /// versions.yaml).
    #[arg(long, value_name = "DIR")]
    pub chart: Option<PathBuf>,
    /// Kept for compatibility: a Dify release outside the release table (versions.yaml) is
    /// refused even with it, since its Alembic head, queues and switches are not known; add it
    /// to the versions.yaml of a chart copy (--chart) instead.
    #[arg(long)]
    pub allow_unknown_release: bool,
}

#[derive(Debug, Args)]
pub struct RenderCommand {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub release: ReleaseArgs,
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
    pub release: ReleaseArgs,
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
    #[command(flatten)]
    pub host: HostArgs,
    /// Keep objects of the previous apply that this render no longer has.
    #[arg(long)]
    pub no_prune: bool,
    /// Let prune delete volume claims and the keys Secret too.
    #[arg(long)]
    pub delete_data: bool,
    /// Do not run the doctor checks before applying.
    #[arg(long)]
    pub skip_doctor: bool,
    /// Apply without showing the changes and asking first. Without a terminal on stdin (a
    /// pipe, CI) apply never asks.
    #[arg(short, long)]
    pub yes: bool,
    /// `json`: the plan (every object and its action), pruning and the result on stdout.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// `catalog --keys`: who makes the keys Secret of a catalog deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeysFrom {
    /// `difyrender secrets apply`, once per deployment.
    SecretsApply,
    /// A Job of the entry, from the form's master key.
    InCluster,
}

#[derive(Debug, Args)]
pub struct CatalogCommand {
    #[command(flatten)]
    pub render: RenderArgs,
    /// Catalog repository to write into (created if missing). Only
    /// applications/<app>/<version>/ is replaced; other applications and versions are untouched.
    #[arg(long, value_name = "DIR", required_unless_present = "flux_only")]
    pub out: Option<PathBuf>,
    /// Instead of a catalog entry: the same manifests/ plus flux-sync.yaml (a source and a Flux
    /// Kustomization for --flux-instance), for clusters that run Flux without NKP's catalog.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["out", "icon", "bloodhound"],
        requires = "flux_url"
    )]
    pub flux_only: Option<PathBuf>,
    /// With --flux-only: where Flux fetches manifests/ from: oci://HOST/REPO (push manifests/
    /// as the artifact) or a Git URL (https://, http://, ssh://).
    #[arg(long, value_name = "URL", requires = "flux_only")]
    pub flux_url: Option<String>,
    /// With --flux-only: the OCI tag (default: --app-version) or the Git branch (default: main).
    #[arg(long, value_name = "REF", requires = "flux_only")]
    pub flux_ref: Option<String>,
    /// With --flux-only and a Git URL: manifests/ inside the repository (default: ./manifests).
    #[arg(long, value_name = "PATH", requires = "flux_only")]
    pub flux_path: Option<String>,
    /// With --flux-only: the namespace and release name flux-sync.yaml deploys.
    #[arg(
        long,
        value_name = "NAMESPACE/NAME",
        default_value = "dify/dify",
        requires = "flux_only"
    )]
    pub flux_instance: String,
    /// Application ID: the folder applications/<app> and the App's name in NKP.
    #[arg(long, value_name = "NAME", default_value = "dify")]
    pub app_name: String,
    /// Version folder (a semantic version); default: the Dify version, images.dify.tag. Only
    /// with at most one --dify-version.
    #[arg(long, value_name = "VERSION")]
    pub app_version: Option<String>,
    /// Write a version folder for this Dify release of the release table (repeatable); default:
    /// images.dify.tag of the values.
    #[arg(long = "dify-version", value_name = "VERSION")]
    pub dify_versions: Vec<String>,
    /// SVG icon for the catalog card (default: a built-in one).
    #[arg(long, value_name = "FILE")]
    pub icon: Option<PathBuf>,
    /// Also write .bloodhound.yml at the repository root for `nkp validate catalog-repository`.
    #[arg(long)]
    pub bloodhound: bool,
    /// Where the keys Secret comes from: `secrets-apply` (run `difyrender secrets apply` once
    /// per deployment) or `in-cluster` (a Job of the entry derives the keys from the form's
    /// master key, or keeps or generates one: enabling needs no other step).
    #[arg(
        long,
        value_enum,
        default_value = "secrets-apply",
        conflicts_with = "flux_only"
    )]
    pub keys: KeysFrom,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print the keys Secret (<release>-keys) of a release as YAML. It holds the keys: handle it
    /// as a secret.
    #[command(after_help = crate::error::exit::help())]
    Render(SecretsRenderCommand),
    /// Server-side apply the keys Secret (<release>-keys) of a release, and nothing else.
    #[command(after_help = crate::error::exit::help())]
    Apply(SecretsApplyCommand),
}

#[derive(Debug, Args)]
pub struct SecretsRenderCommand {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub release: ReleaseArgs,
}

#[derive(Debug, Args)]
pub struct SecretsApplyCommand {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Take over fields of the Secret that another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
}

/// Finding the external host, shared by apply and diff.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// External host or IP browsers use; skips the Traefik LoadBalancer lookup.
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// Traefik Service whose LoadBalancer address is the external host (default: a Service
    /// named as NKP names it, kommander-traefik (versions.yaml nkpTraefik), in any namespace).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub traefik_service: Option<String>,
}

/// Output format of diff and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DiffCommand {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub host: HostArgs,
    /// Compare as if applying with --force-conflicts.
    #[arg(long)]
    pub force_conflicts: bool,
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Colour the text diff: auto (when stdout is a terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    /// How long to wait for the Traefik LoadBalancer address.
    #[arg(long, default_value = "1m", value_name = "DURATION")]
    pub timeout: String,
}

/// Which release a command works on.
#[derive(Debug, Clone, Args)]
pub struct ReleaseArgs {
    /// Namespace of the release.
    #[arg(short = 'n', long, default_value = "dify")]
    pub namespace: String,
    /// Release name: prefixes object names and sets app.kubernetes.io/instance.
    #[arg(long, default_value = "dify")]
    pub release: String,
}

#[derive(Debug, Args)]
pub struct StatusCommand {
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CompletionCommand {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct LogsCommand {
    /// The component whose pods' logs to show: api, worker, web, plugin-daemon, migration, …
    #[arg(default_value = "api")]
    pub component: String,
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The previous instance of each container (the one that crashed).
    #[arg(long)]
    pub previous: bool,
    /// Lines per container, at most 200.
    #[arg(long, default_value_t = 50)]
    pub tail: i64,
    /// Only this container of each pod.
    #[arg(short, long, value_name = "NAME")]
    pub container: Option<String>,
}

#[derive(Debug, Args)]
pub struct UninstallCommand {
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also delete the volumes (PostgreSQL, Redis, Weaviate, file storage) and the keys Secret.
    #[arg(long)]
    pub delete_data: bool,
    /// Do not ask for confirmation before deleting data.
    #[arg(long)]
    pub yes: bool,
    /// Return without waiting until everything is gone.
    #[arg(long = "no-wait")]
    pub no_wait: bool,
    /// Wait until everything is gone (default).
    #[arg(long, overrides_with = "no_wait")]
    pub wait: bool,
    /// How long to wait.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub timeout: String,
}
