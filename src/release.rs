//! One release rendered end to end: values loaded, merged, keyed and validated, templates
//! rendered, output checked. Every command (render, apply, diff, catalog) starts here, so they
//! all see exactly the same objects.

use crate::chart::Chart;
use crate::manifest::Manifest;
use crate::render::{self, Release};
use crate::values::{
    self, ClusterInputs, DerivedKeys, MasterKeySource, UserValues, ValueSources, ValuesSchema,
};
use crate::versions::{self, ReleaseTable, Resolved};
use serde_json::{Map, Value};
use std::path::PathBuf;

pub mod connections;

/// Everything needed to render a release.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    pub chart: Chart,
    pub sources: ValueSources,
    pub secret_key_file: Option<PathBuf>,
    /// `$DIFY_SECRET_KEY`, read once by the caller so the library never reads the environment.
    /// Raw, so that a key that is not UTF-8 is reported rather than taken as missing.
    pub master_key_env: Option<std::ffi::OsString>,
    pub release: Release,
    /// Values found at run time (the Traefik LoadBalancer address), merged after every flag.
    pub injected: Map<String, Value>,
    /// `--allow-unknown-release`: a release outside the table is refused with or without it
    /// (its head, queues and switches are facts no neighbour gives); it only changes the
    /// explanation.
    pub allow_unknown_release: bool,
}

/// The result of rendering a release.
#[derive(Debug, Clone)]
pub struct RenderedRelease {
    pub release: Release,
    /// Merged, validated values (secrets included: never print them).
    pub values: Value,
    pub keys: DerivedKeys,
    pub master_key_source: MasterKeySource,
    /// The Dify release and every image it runs, from the release table.
    pub dify: Resolved,
    /// The chart's release table, for upgrade decisions.
    pub versions: ReleaseTable,
    pub manifest: Manifest,
}

/// A Secret key as one jsonpath field name: a dot separates fields there, so `init.password`
/// is `init\.password` (`{.data.init\.password}`). Secret keys are `[-._a-zA-Z0-9]+`, so the
/// dot is the only character to escape, and none needs quoting inside `'...'` in a shell.
pub fn jsonpath_key(key: &str) -> String {
    key.replace('.', "\\.")
}

impl RenderedRelease {
    /// The Dify version, `images.dify.tag`.
    pub fn dify_version(&self) -> &str {
        &self.dify.version
    }

    /// `https://host/dify`, as users reach Dify.
    pub fn external_url(&self) -> String {
        let get = |p: &str| {
            self.values
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let path = get("/expose/path");
        format!(
            "{}://{}{}",
            get("/external/scheme"),
            get("/external/host"),
            if path == "/" { "" } else { path }
        )
    }

    /// The Secret the pods read their keys from: `<release>-keys`, or `secrets.existingSecret`.
    pub fn keys_secret_name(&self) -> String {
        match self.existing_secret() {
            Some(name) => name.to_owned(),
            None => format!("{}-keys", self.release.name),
        }
    }

    /// `secrets.existingSecret`, when the operator provides the keys.
    pub fn existing_secret(&self) -> Option<&str> {
        self.values
            .pointer("/secrets/existingSecret")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The name a chart key (`INIT_PASSWORD`) has in the keys Secret.
    pub fn key_name<'a>(&'a self, key: &'a str) -> &'a str {
        self.existing_secret()
            .and_then(|_| {
                self.values
                    .pointer(&format!("/secrets/existingSecretKeys/{key}"))
            })
            .and_then(Value::as_str)
            .unwrap_or(key)
    }

    /// What the operator must know about this release, for the end of `render` and `apply`.
    /// Commands and requirements only: never a secret value.
    pub fn notes(&self) -> Vec<String> {
        let ns = &self.release.namespace;
        let keys = self.keys_secret_name();
        let mut notes = vec![format!(
            "The first visit to {}/install asks for the initial password before it creates the \
             administrator; read it with: kubectl get secret -n {ns} {keys} -o \
             jsonpath='{{.data.{}}}' | base64 -d",
            self.external_url(),
            jsonpath_key(self.key_name("INIT_PASSWORD")),
        )];
        if self.values.pointer("/bootstrap/enabled") == Some(&Value::Bool(true)) {
            notes.push(format!(
                "The bootstrap Job sets Dify up as administrator {email} (docs/bootstrap.md); \
                 read the password with: kubectl get secret -n {ns} {keys} -o \
                 jsonpath='{{.data.{key}}}' | base64 -d",
                email = self.text("/bootstrap/admin/email"),
                key = jsonpath_key(self.key_name("ADMIN_PASSWORD")),
            ));
        }
        if self.is_false("/postgresql/enabled") {
            let user = self.text("/postgresql/username");
            let budget = connections::budget(&self.manifest);
            notes.push(format!(
                "External PostgreSQL {host}:{port} (sslmode {ssl}): user {user} must own \
                 database {db}; the plugin daemon uses database {plugin} if it exists, and \
                 otherwise connects to {default} and creates it, which needs CREATE DATABASE \
                 for {user}. Its password is DB_PASSWORD in Secret {ns}/{keys}. The release \
                 can open {needed} connections to it ({explain}): its max_connections must \
                 allow that.",
                needed = budget.needed(),
                explain = budget.explain(),
                host = self.text("/postgresql/external/host"),
                port = self.text("/postgresql/external/port"),
                ssl = self.text("/postgresql/external/sslMode"),
                db = self.text("/postgresql/database"),
                plugin = self.text("/postgresql/pluginDatabase"),
                default = self.text("/postgresql/external/defaultDatabase"),
            ));
        }
        if self.dify.switches.get("composeSsrfDeniesPrivate") == Some(&Value::Bool(false)) {
            notes.push(format!(
                "The ssrf proxy denies private, loopback and link-local destinations (cluster \
                 Services, nodes, cloud metadata); Dify {}'s own compose allows them, so an HTTP \
                 node or tool that called an in-cluster service there gets 403 here: list the \
                 networks it may reach in ssrfProxy.allowedPrivateNetworks (CIDRs or addresses).",
                self.dify_version(),
            ));
        }
        notes.extend(self.topology_notes());
        let networks = self
            .values
            .pointer("/ssrfProxy/allowedPrivateNetworks")
            .and_then(Value::as_array);
        for network in networks.into_iter().flatten().filter_map(Value::as_str) {
            if values::formats::is_everything(network) {
                notes.push(format!(
                    "ssrfProxy.allowedPrivateNetworks holds {network}: the SSRF proxy lets every \
                     request of code and HTTP nodes reach every private address (the cluster's \
                     Services, its API server, the nodes' metadata endpoints), not only the \
                     networks meant."
                ));
            }
        }
        notes
    }

    /// What the object storage, an external Redis and the vector store need from the operator.
    fn topology_notes(&self) -> Vec<String> {
        let ns = &self.release.namespace;
        let keys = self.keys_secret_name();
        let mut notes = Vec::new();
        if self.text("/storage/type") == "s3" {
            let bucket = self.text("/storage/s3/bucket");
            let plugin = Some(self.text("/storage/s3/pluginBucket"))
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| bucket.clone());
            notes.push(format!(
                "Object storage {endpoint}: buckets {bucket} (files) and {plugin} (plugins) are \
                 created on first use if the key pair may; the key pair is keys {id} and {secret} \
                 of Secret {ns}/{name}.",
                endpoint = Some(self.text("/storage/s3/endpoint"))
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "(Amazon S3)".into()),
                id = self.text("/storage/s3/accessKeyIdKey"),
                secret = self.text("/storage/s3/secretAccessKeyKey"),
                name = self.text("/storage/s3/credentialsSecret"),
            ));
            notes.push(format!(
                "Files on an earlier volume {release}-storage (kept) are not moved: copy them \
                 into {bucket} before switching, or Dify loses uploads and the tenants' keys \
                 (privkeys/).",
                release = self.release.name,
            ));
        }
        if self.is_false("/redis/enabled") {
            let tls =
                self.values.pointer("/redis/external/tls/enabled") == Some(&Value::Bool(true));
            notes.push(format!(
                "External Redis {host}:{port}{tls}: databases {db} (cache, locks, plugin daemon) \
                 and {broker} (Celery broker); its password is REDIS_PASSWORD in Secret \
                 {ns}/{keys}.",
                host = self.text("/redis/external/host"),
                port = self.text("/redis/external/port"),
                tls = if tls { " over TLS" } else { "" },
                db = self.text("/redis/external/db"),
                broker = self.text("/redis/external/brokerDb"),
            ));
        }
        match self.text("/vectorStore/type").as_str() {
            "pgvector" => {
                let db = Some(self.text("/vectorStore/pgvector/database"))
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| self.text("/postgresql/database"));
                if self.is_false("/postgresql/enabled") {
                    notes.push(format!(
                        "pgvector: the external server needs the vector extension installed; \
                         Dify runs CREATE EXTENSION IF NOT EXISTS vector in database {db} as {user}, \
                         so create it there beforehand unless {user} may.",
                        user = self.text("/postgresql/username"),
                    ));
                }
                if !self.is_false("/postgresql/enabled") {
                    notes.push(format!(
                        "pgvector on the bundled PostgreSQL runs {image}, built on Debian's C \
                         library: a database made by the Alpine image before sorts text \
                         differently there, so run REINDEX DATABASE on {db} and {plugin} once \
                         after switching an existing release.",
                        image = self.text("/images/pgvector/repository"),
                        db = self.text("/postgresql/database"),
                        plugin = self.text("/postgresql/pluginDatabase"),
                    ));
                }
                notes.push(
                    "Vector store pgvector: embeddings made with another vector store are not \
                     moved; re-index existing knowledge bases after switching."
                        .into(),
                );
            }
            "external-weaviate" | "qdrant" => notes.push(format!(
                "Vector store {kind} at {url}: its key is {key} in Secret {ns}/{keys}; embeddings \
                 made with another vector store are not moved (re-index after switching).",
                kind = self.text("/vectorStore/type"),
                url = self.text("/vectorStore/external/url"),
                key = if self.text("/vectorStore/type") == "qdrant" {
                    self.key_name("QDRANT_API_KEY")
                } else {
                    self.key_name("WEAVIATE_API_KEY")
                },
            )),
            _ => {}
        }
        notes
    }

    /// The value at a JSON pointer as text for messages (`""` when absent).
    fn text(&self, pointer: &str) -> String {
        crate::values::text_at(&self.values, pointer)
    }

    /// Whether the boolean at a JSON pointer is `false` (a bundled datastore switched off).
    fn is_false(&self, pointer: &str) -> bool {
        self.values.pointer(pointer) == Some(&Value::Bool(false))
    }

    /// Every secret value of this release, master key included, for redaction and for tests
    /// that scan output.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self.keys.values().map(str::to_owned).collect();
        if let Some(Value::Object(secrets)) = self.values.get("secrets") {
            out.extend(
                secrets
                    .iter()
                    .filter(|(k, _)| !NOT_SECRET.contains(&k.as_str()))
                    .filter_map(|(_, v)| v.as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Why a release could not be rendered: each layer's own error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Values(#[from] values::Error),
    #[error("{0}")]
    Render(#[from] render::Error),
    #[error("rendered manifests are invalid:\n{0}")]
    Manifest(#[from] crate::manifest::Error),
    #[error("the chart's values.schema.json cannot be used: {0}")]
    Schema(String),
    #[error(transparent)]
    Version(#[from] crate::versions::Error),
    #[error(
        "postgresql.settings.max_connections is {configured}, but the release can open {needed} connections to its PostgreSQL ({explain}): set postgresql.settings.max_connections to {needed} or more, or to auto (sized for the pools)"
    )]
    Connections {
        configured: u32,
        needed: u32,
        explain: String,
    },
}

impl Error {
    /// Rendering talks to no cluster: each layer's error says its code, and every one is input.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Values(e) => e.exit_code(),
            Error::Render(e) => e.exit_code(),
            Error::Manifest(e) => e.exit_code(),
            Error::Version(e) => e.exit_code(),
            Error::Schema(_) | Error::Connections { .. } => crate::error::exit::INPUT,
        }
    }
}

/// Values under `secrets` that name things rather than hold key material: the existing Secret
/// the pods read (`secrets.existingSecretKeys` is a mapping, so it is never taken for a value).
pub const NOT_SECRET: &[&str] = &["existingSecret"];

/// Every other string under `secrets` is a secret: no message may show it (see [`crate::diag`]).
fn register_secret_values(user: &Map<String, Value>) {
    if let Some(Value::Object(secrets)) = user.get("secrets") {
        for (k, v) in secrets {
            if let Value::String(s) = v
                && !NOT_SECRET.contains(&k.as_str())
            {
                crate::diag::register_secret(s);
            }
        }
    }
}

/// Renders a release. Nothing here talks to a cluster.
pub fn render_release(spec: &ReleaseSpec) -> Result<RenderedRelease, Error> {
    render_release_with(spec, &ClusterInputs::default())
}

/// [`render_release`] with the secret inputs only the cluster holds, which apply and diff read
/// first (the bootstrap Job's provider key of a Secret the release does not render): they go
/// into the bootstrap Job's inputs checksum, so a changed key gives the Job a new name.
pub fn render_release_with(
    spec: &ReleaseSpec,
    cluster: &ClusterInputs,
) -> Result<RenderedRelease, Error> {
    use crate::render::stages::time;
    // Compiling the values schema and the templates needs no values: both run on threads of
    // their own while the values are loaded, and are joined before the values are validated.
    std::thread::scope(|scope| {
        let schema = scope.spawn(|| {
            time("schema: compile", || {
                ValuesSchema::compile(&spec.chart.schema)
            })
        });
        let templates = scope.spawn(|| render::Templates::compile(&spec.chart));
        let values = load_values(spec);
        let schema = schema.join().expect("the schema thread does not panic");
        let templates = templates
            .join()
            .expect("the template thread does not panic");
        let (user, master_key_source, merged) = values?;
        let schema = schema.map_err(Error::Schema)?;
        finish(
            spec,
            cluster,
            user,
            master_key_source,
            merged,
            &schema,
            templates,
        )
    })
}

/// The values of a release: files and flags loaded and merged, the master key injected, the
/// chart's defaults under them.
fn load_values(spec: &ReleaseSpec) -> Result<(UserValues, MasterKeySource, Value), Error> {
    crate::render::stages::time("values: load, merge, master key", || {
        let mut user = UserValues::load(&spec.sources, &|p, limit| {
            crate::input::read_limited(p, limit)
        })?;
        register_secret_values(&user.merged);
        values::rules::check_user(&user).map_err(values::Error::Rules)?;
        let master_key_source = values::secrets::inject_master_key(
            &mut user.merged,
            spec.secret_key_file.as_deref(),
            spec.master_key_env.clone(),
        )?;
        values::merge_maps(&mut user.merged, spec.injected.clone());
        let merged = Value::Object(values::coalesce(
            &spec.chart.default_values,
            user.merged.clone(),
        ));
        Ok((user, master_key_source, merged))
    })
}

/// Validation, the release table, the templates and the checks of their output.
fn finish(
    spec: &ReleaseSpec,
    cluster: &ClusterInputs,
    user: UserValues,
    master_key_source: MasterKeySource,
    merged: Value,
    schema: &ValuesSchema,
    templates: render::Templates<'_>,
) -> Result<RenderedRelease, Error> {
    use crate::render::stages::time;
    time("schema: validate", || schema.validate(&merged, &user)).map_err(values::Error::Schema)?;
    time("values: rules", || values::rules::check(&merged, &user)).map_err(values::Error::Rules)?;
    let (dify, keys) = time("release table and derived keys", || {
        let dify = versions::resolve(
            &spec.chart.versions,
            &merged,
            &Value::Object(spec.chart.default_values.clone()),
            spec.allow_unknown_release,
        )?;
        let keys = DerivedKeys::resolve_with(
            merged.as_object().expect("coalesce returns a mapping"),
            &dify.switches,
            cluster,
        );
        Ok::<_, Error>((dify, keys))
    })?;
    let rendered = time("templates (all)", || {
        templates.render(&merged, &keys, &spec.release, &dify)
    })?;
    let manifest = time("parse-back and typed checks (all)", || {
        Manifest::from_rendered(&rendered)
    })
    .map_err(|e| e.with_value_keys(&Value::Object(user.merged.clone())))?;
    if let Some(configured) = connections::bundled_max_connections(&manifest) {
        let budget = connections::budget(&manifest);
        if configured < budget.needed() {
            return Err(Error::Connections {
                configured,
                needed: budget.needed(),
                explain: budget.explain(),
            });
        }
    }
    Ok(RenderedRelease {
        release: spec.release.clone(),
        values: merged,
        keys,
        master_key_source,
        dify,
        versions: spec.chart.versions.clone(),
        manifest,
    })
}
