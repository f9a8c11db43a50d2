//! One release rendered end to end: values loaded, merged, keyed and validated, templates
//! rendered, output checked. Every command (render, apply, diff, catalog) starts here, so they
//! all see exactly the same objects.

use crate::chart::Chart;
use crate::manifest::Manifest;
use crate::render::{self, Release};
use crate::values::{self, DerivedKeys, MasterKeySource, UserValues, ValueSources, ValuesSchema};
use serde_json::{Map, Value};
use std::path::PathBuf;

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
}

/// The result of rendering a release.
#[derive(Debug, Clone)]
pub struct RenderedRelease {
    pub release: Release,
    /// Merged, validated values (secrets included: never print them).
    pub values: Value,
    pub keys: DerivedKeys,
    pub master_key_source: MasterKeySource,
    pub manifest: Manifest,
}

impl RenderedRelease {
    /// The Dify version, `images.dify.tag`.
    pub fn dify_version(&self) -> &str {
        self.values
            .pointer("/images/dify/tag")
            .and_then(Value::as_str)
            .unwrap_or_default()
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

    /// Every secret value of this release, master key included, for redaction and for tests
    /// that scan output.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self.keys.values().map(str::to_owned).collect();
        if let Some(Value::Object(secrets)) = self.values.get("secrets") {
            out.extend(
                secrets
                    .values()
                    .filter_map(Value::as_str)
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
}

/// Every string under `secrets` is a secret: no message may show it (see [`crate::diag`]).
fn register_secret_values(user: &Map<String, Value>) {
    if let Some(Value::Object(secrets)) = user.get("secrets") {
        for v in secrets.values() {
            if let Value::String(s) = v {
                crate::diag::register_secret(s);
            }
        }
    }
}

/// Renders a release. Nothing here talks to a cluster.
pub fn render_release(spec: &ReleaseSpec) -> Result<RenderedRelease, Error> {
    let mut user = UserValues::load(&spec.sources, &|p, limit| {
        crate::input::read_limited(p, limit)
    })?;
    register_secret_values(&user.merged);
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
    let schema = ValuesSchema::compile(&spec.chart.schema).map_err(Error::Schema)?;
    schema
        .validate(&merged, &user)
        .map_err(values::Error::Schema)?;
    let keys = DerivedKeys::resolve(merged.as_object().expect("coalesce returns a mapping"));
    let rendered = render::render(&spec.chart, &merged, &keys, &spec.release)?;
    let manifest = Manifest::from_rendered(&rendered)
        .map_err(|e| e.with_value_keys(&Value::Object(user.merged.clone())))?;
    Ok(RenderedRelease {
        release: spec.release.clone(),
        values: merged,
        keys,
        master_key_source,
        manifest,
    })
}
