//! `difyrender catalog`: an NKP application-catalog entry, and `difyrender secrets`: the keys
//! Secret that entry reads, which the operator creates once per release.

use super::args::{CatalogCommand, ReleaseArgs, RenderArgs, SecretsApplyCommand, SecretsCommand};
use crate::catalog::{
    self as entry, EntryOptions, FluxOnlyOptions, FluxSource, Icon, PLACEHOLDER_MASTER_KEY,
};
use crate::cluster::{FIELD_MANAGER, ResourceManager};
use crate::error::{Error, exit};
use crate::manifest::Resource;
use crate::release::{self, RenderedRelease, render_release};
use crate::values::MasterKeySource;
use serde_json::{Map, Value};
use std::io::Write;

pub fn run(cmd: CatalogCommand) -> Result<u8, Error> {
    // Kommander chooses the namespace and release name when the application is enabled; the
    // entry is rendered with placeholders that become ${releaseNamespace} and ${releaseName}.
    let mut spec = cmd.render.to_spec(entry::placeholder_release())?;
    if spec.secret_key_file.is_none() && spec.master_key_env.is_none() {
        spec.master_key_env = Some(PLACEHOLDER_MASTER_KEY.into());
    }
    // --flux-only: the release is checked before anything is rendered or written.
    let flux_release = match &cmd.flux_only {
        Some(_) => {
            let (namespace, release) = cmd.flux_instance.split_once('/').ok_or_else(|| {
                Error::Usage(format!(
                    "--flux-instance {:?} must be NAMESPACE/NAME",
                    cmd.flux_instance
                ))
            })?;
            Some(
                ReleaseArgs {
                    namespace: namespace.to_owned(),
                    release: release.to_owned(),
                }
                .to_release()?,
            )
        }
        None => None,
    };
    let mut versions: Vec<&String> = Vec::new();
    for v in &cmd.dify_versions {
        if !versions.contains(&v) {
            versions.push(v);
        }
    }
    if versions.len() > 1 && cmd.app_version.is_some() {
        return Err(Error::Usage(
            "--app-version names one version folder; with several --dify-version each folder is named after its release"
                .into(),
        ));
    }
    // Every release is rendered and checked before the first folder is written.
    let mut rendered = Vec::new();
    if versions.is_empty() {
        rendered.push(render_release(&spec).map_err(with_host_hint)?);
    }
    for v in versions {
        let mut spec = spec.clone();
        if let Value::Object(tag) = serde_json::json!({"images": {"dify": {"tag": v}}}) {
            crate::values::merge_maps(&mut spec.injected, tag);
        }
        rendered.push(render_release(&spec).map_err(with_host_hint)?);
    }
    if let (Some(dir), Some(release)) = (&cmd.flux_only, flux_release) {
        let [one] = &rendered[..] else {
            return Err(Error::Usage(
                "--flux-only writes one release: give at most one --dify-version".into(),
            ));
        };
        return flux_only(&cmd, dir, release, one);
    }
    let out_dir = cmd
        .out
        .clone()
        .ok_or_else(|| Error::Usage("--out DIR or --flux-only DIR is required".into()))?;
    let entries = rendered
        .iter()
        .map(|r| build_entry(&cmd, r))
        .collect::<Result<Vec<_>, Error>>()?;
    let mut out = String::new();
    for (entry, r) in entries.iter().zip(&rendered) {
        out.push_str(&write_entry(entry, r, &out_dir)?);
    }
    out.push_str(
        "Before enabling the application, create its keys Secret once, in the namespace and for the \
         release name the AppDeployment will use:\n  \
         difyrender secrets apply -n <namespace> --release <release name> [the same -f/--set flags]\n",
    );
    // The operator's own Secrets (object storage keys, a Redis CA), named by the values.
    if let Some(last) = rendered.last() {
        let keys = last.keys_secret_name();
        for (name, wanted) in crate::cluster::refs::external_secret_keys(&last.manifest) {
            if name != keys {
                let wanted: Vec<String> = wanted.into_iter().collect();
                out.push_str(&format!(
                    "and Secret {name} with the keys {}\n",
                    wanted.join(", ")
                ));
            }
        }
    }
    print(&out)?;
    Ok(exit::OK)
}

/// Builds one version folder's files, checked, nothing written.
fn build_entry(cmd: &CatalogCommand, rendered: &RenderedRelease) -> Result<entry::Entry, Error> {
    let icon = match &cmd.icon {
        Some(path) => Some(Icon {
            origin: path.display().to_string(),
            bytes: crate::input::read_limited(path, entry::MAX_ICON_BYTES)
                .map_err(Error::io(format!("reading the icon {}", path.display())))?,
        }),
        None => None,
    };
    let options = EntryOptions {
        app_name: cmd.app_name.clone(),
        app_version: cmd
            .app_version
            .clone()
            .unwrap_or_else(|| rendered.dify_version().to_owned()),
        icon,
        bloodhound: cmd.bloodhound,
    };
    entry::build(rendered, &options).map_err(|e| match e {
        // The version came from the values, not from a flag: say so.
        entry::Error::AppVersion(v) if cmd.app_version.is_none() => Error::Usage(format!(
            "the entry's version folder defaults to images.dify.tag, which is {v}, not a version such as 1.11.4; give --app-version"
        )),
        other => other.into(),
    })
}

/// Writes one version folder; returns what to report.
fn write_entry(
    entry: &entry::Entry,
    rendered: &RenderedRelease,
    out_dir: &std::path::Path,
) -> Result<String, Error> {
    let report = entry::write(entry, out_dir)?;

    let dir = entry.version_dir().to_string_lossy().replace('\\', "/");
    let mut out = format!(
        "Wrote the NKP catalog entry {} {} into {}:\n  {dir}/: {} files ({} written, {} unchanged)\n",
        entry.app_name,
        entry.app_version,
        out_dir.display(),
        entry.files.len(),
        report
            .written
            .iter()
            .filter(|p| p.starts_with(&dir))
            .count(),
        report
            .unchanged
            .iter()
            .filter(|p| p.starts_with(&dir))
            .count(),
    );
    for removed in &report.removed {
        out.push_str(&format!(
            "  removed {removed} (no longer part of the entry)\n"
        ));
    }
    if entry.bloodhound.is_some() {
        out.push_str(&format!(
            "  .bloodhound.yml: Kubernetes {}\n",
            entry::K8S_VERSIONS.join(", ")
        ));
    }
    out.push_str(&left_out(
        &entry.dropped,
        "Kommander deploys into the existing workspace or project namespace",
    ));
    out.push_str("Fixed at generation time (listed in the entry's overview):\n");
    for (setting, value) in &entry.fixed {
        out.push_str(&format!("  {setting}: {value}\n"));
    }
    let from = rendered.versions.upgrades_from(rendered.dify_version());
    if !from.is_empty() {
        out.push_str(&format!("Upgrades from: {}\n", from.join(", ")));
    }
    Ok(out)
}

/// The "Left out:" lines: the Namespace and the keys Secret, and why.
fn left_out(dropped: &[String], namespace_why: &str) -> String {
    let mut out = "Left out:\n".to_owned();
    for dropped in dropped {
        let why = if dropped.starts_with("Namespace ") {
            namespace_why
        } else if dropped.starts_with("Secret ") {
            "no secret goes into a catalog; create it with `difyrender secrets apply`"
        } else {
            "not part of a catalog entry"
        };
        out.push_str(&format!("  {dropped}: {why}\n"));
    }
    out
}

/// `catalog --flux-only DIR`: manifests/ and flux-sync.yaml for plain Flux.
fn flux_only(
    cmd: &CatalogCommand,
    dir: &std::path::Path,
    release: crate::render::Release,
    rendered: &RenderedRelease,
) -> Result<u8, Error> {
    let version = cmd
        .app_version
        .clone()
        .unwrap_or_else(|| rendered.dify_version().to_owned());
    let url = cmd.flux_url.as_deref().unwrap_or_default();
    let source = FluxSource::parse(
        url,
        cmd.flux_ref.as_deref(),
        cmd.flux_path.as_deref(),
        &version,
    )?;
    let options = FluxOnlyOptions {
        source: source.clone(),
        release: release.clone(),
    };
    let bundle = entry::build_flux_only(rendered, &options)?;
    let report = entry::write_flux_only(&bundle, dir)?;
    let mut out = format!(
        "Wrote manifests/ and flux-sync.yaml for Flux into {}: {} files ({} written, {} unchanged)\n",
        dir.display(),
        bundle.files.len(),
        report.written.len(),
        report.unchanged.len(),
    );
    for removed in &report.removed {
        out.push_str(&format!(
            "  removed {removed} (no longer part of the manifests)\n"
        ));
    }
    out.push_str(&left_out(
        &bundle.dropped,
        "create the namespace before applying flux-sync.yaml",
    ));
    let publish = match &source {
        FluxSource::Oci { url, tag } => format!(
            "push {}/manifests as a Flux OCI artifact, e.g. flux push artifact {url}:{tag} --path={}/manifests --source=... --revision=...",
            dir.display(),
            dir.display()
        ),
        FluxSource::Git { url, branch, path } => {
            format!("commit manifests/ to {url} on branch {branch} as {path}")
        }
    };
    out.push_str(&format!(
        "Then:\n  1. {publish}\n  2. difyrender secrets apply -n {ns} --release {name} [the same -f/--set flags]\n  3. kubectl apply -f {}/flux-sync.yaml   (Kustomization {ns}/{name}-manifests)\n",
        dir.display(),
        ns = release.namespace,
        name = release.name,
    ));
    print(&out)?;
    Ok(exit::OK)
}

/// A catalog entry cannot detect the Traefik address as `apply` does: say so.
fn with_host_hint(e: release::Error) -> Error {
    if let release::Error::Render(r) = &e
        && r.missing_paths().contains(&"external.host")
    {
        return Error::Usage(format!(
            "{e}\nA catalog entry's URL is fixed when it is generated: give external.host, the \
             address browsers use (the Traefik LoadBalancer IP or a DNS name), e.g. \
             --set external.host=192.0.2.10"
        ));
    }
    e.into()
}

fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .map_err(Error::io("writing to stdout"))?;
    out.flush().map_err(Error::io("writing to stdout"))
}

pub fn secrets(cmd: SecretsCommand) -> Result<u8, Error> {
    match cmd {
        SecretsCommand::Render(cmd) => {
            let (secret, _) = keys_secret(&cmd.render, &cmd.release)?;
            print(&format!(
                "---\n# Source: {}\n{}",
                secret.template,
                secret.to_yaml()
            ))?;
            Ok(exit::OK)
        }
        SecretsCommand::Apply(cmd) => apply(cmd),
    }
}

/// The release's keys Secret, rendered by the chart like every other object.
fn keys_secret(
    args: &RenderArgs,
    release: &ReleaseArgs,
) -> Result<(Resource, RenderedRelease), Error> {
    let spec = args.to_spec(release.to_release()?)?;
    // With secrets.existingSecret the chart refuses keys set under secrets.* (they would have
    // no effect), yet here they belong in the Secret to provide (the external database's
    // password, say): find the operator's Secret and key names with them cleared.
    let mut probe = spec.clone();
    // Every key value of the chart's `secrets` section; the Secret's name, its key-name mapping
    // and the master key stay (the same exceptions as the chart's own "no effect" check).
    let cleared: Map<String, Value> = spec
        .chart
        .default_values
        .get("secrets")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        // Key values are strings; the mapping and the ExternalSecret settings are not.
        .filter(|(name, value)| {
            value.is_string()
                && !["existingSecret", "existingSecretKeys", "difySecretKey"]
                    .contains(&name.as_str())
        })
        .map(|(name, _)| (name.clone(), Value::String(String::new())))
        .collect();
    crate::values::merge_maps(
        &mut probe.injected,
        serde_json::json!({"secrets": cleared})
            .as_object()
            .unwrap()
            .clone(),
    );
    let probed = super::config::render_with_stand_ins(&probe)?;
    // With secrets.existingSecret the chart renders no keys Secret: render the chart's own one
    // and give it the operator's name and key names, so this prints the Secret to provide.
    if let Some(existing) = probed.existing_secret().map(str::to_owned) {
        let rendered = probed;
        let mut own = spec.clone();
        let clear = serde_json::json!({"secrets": {"existingSecret": "", "externalSecret": {"enabled": false}}});
        crate::values::merge_maps(&mut own.injected, clear.as_object().unwrap().clone());
        let chart_keys = super::config::render_with_stand_ins(&own)?;
        let mut secret = find_keys_secret(&chart_keys)?;
        secret.name = existing.clone();
        secret.body["metadata"]["name"] = Value::String(existing);
        if let Some(Value::Object(data)) = secret.body.get_mut("data") {
            let renamed: Map<String, Value> = std::mem::take(data)
                .into_iter()
                .map(|(k, v)| (rendered.key_name(&k).to_owned(), v))
                .collect();
            *data = renamed;
        }
        return Ok((secret, chart_keys));
    }
    let rendered = super::config::render_with_stand_ins(&spec)?;
    Ok((find_keys_secret(&rendered)?, rendered))
}

fn find_keys_secret(rendered: &RenderedRelease) -> Result<Resource, Error> {
    rendered
        .manifest
        .resources
        .iter()
        .find(|r| r.component == "secrets" && r.kind == "Secret")
        .cloned()
        .ok_or_else(|| Error::Usage("the chart renders no keys Secret".into()))
}

fn source_text(source: MasterKeySource) -> &'static str {
    match source {
        MasterKeySource::File => "--secret-key-file",
        MasterKeySource::Values => "secrets.difySecretKey in the values",
        MasterKeySource::Environment => "$DIFY_SECRET_KEY",
        MasterKeySource::Missing => "nowhere",
    }
}

fn apply(cmd: SecretsApplyCommand) -> Result<u8, Error> {
    let (secret, rendered) = keys_secret(&cmd.render, &cmd.release)?;
    let connection = cmd.cluster.connection();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("starting the runtime"))?;
    let ours: Map<String, Value> = secret
        .body
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let live = runtime.block_on(async {
        let mgr = ResourceManager::new(connection.client().await?);
        let live = mgr.get(&secret).await?;
        mgr.apply(&secret, cmd.force_conflicts, false).await?;
        Ok::<_, crate::cluster::Error>(live)
    })?;
    let changed: Vec<&str> = match &live {
        None => Vec::new(),
        Some(live) => ours
            .iter()
            .filter(|(k, v)| live.pointer(&format!("/data/{k}")) != Some(*v))
            .map(|(k, _)| k.as_str())
            .collect(),
    };
    let verb = match (&live, changed.is_empty()) {
        (None, _) => "created",
        (Some(_), true) => "unchanged",
        (Some(_), false) => "updated",
    };
    let names: Vec<&str> = ours.keys().map(String::as_str).collect();
    let mut out = format!(
        "Secret {} {verb} (server-side apply as {FIELD_MANAGER}{}): {} keys: {}; master key from {}\n",
        secret.id().trim_start_matches("Secret/"),
        if cmd.force_conflicts {
            ", conflicts forced"
        } else {
            ""
        },
        names.len(),
        names.join(", "),
        source_text(rendered.master_key_source),
    );
    if !changed.is_empty() {
        out.push_str(&format!("Changed keys: {}\n", changed.join(", ")));
    }
    print(&out)?;
    if !changed.is_empty() {
        crate::diag::eprint_message(
            "warning: running pods keep the old values until they restart; a PostgreSQL volume \
             keeps the password it was initialised with, so a changed DB_PASSWORD locks Dify \
             out of an existing database",
        );
    }
    Ok(exit::OK)
}
