//! `difyrender catalog`: an NKP application-catalog entry. The keys Secret it reads is
//! `difyrender secrets` ([`super::secrets`]).

use super::args::{CatalogCommand, KeysFrom, ReleaseArgs};
use crate::catalog::{
    self as entry, EntryOptions, FluxOnlyOptions, FluxSource, Icon, PLACEHOLDER_MASTER_KEY,
};
use crate::error::{Error, exit};
use crate::release::{self, RenderedRelease, render_release};
use serde_json::Value;
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
    out.push_str(match cmd.keys {
        KeysFrom::SecretsApply => {
            "Before enabling the application, create its keys Secret once, in the namespace and for the \
             release name the AppDeployment will use:\n  \
             difyrender secrets apply -n <namespace> --release <release name> [the same -f/--set flags]\n"
        }
        KeysFrom::InCluster => {
            "The keys Secret is filled in by the entry's keys Job from the form's master key \
             (masterKey; left empty: the key the Secret has, or a generated one): no step before \
             enabling. Keep a copy of the master key (SECRET_KEY of <release name>-keys).\n"
        }
    });
    // The operator's own Secrets (object storage keys, a Redis CA), named by the values.
    if let Some(last) = rendered.last() {
        let keys = last.keys_secret_name();
        let model_key = crate::catalog::inputs::ModelKey::of(&last.values);
        let by_form = |name: &str| {
            model_key.as_ref().filter(|m| m.secret == name).map_or(
                "",
                |_| " (on NKP 2.17+ the form's modelApiKey field makes it)",
            )
        };
        for (name, wanted) in crate::cluster::refs::external_secret_keys(&last.manifest) {
            if name != keys {
                let wanted: Vec<String> = wanted.into_iter().collect();
                out.push_str(&format!(
                    "and Secret {name} with the keys {}{}\n",
                    wanted.join(", "),
                    by_form(&name)
                ));
            }
        }
        if let Some(m) = model_key.as_ref().filter(|m| m.optional) {
            out.push_str(&format!(
                "optionally Secret {} with the key {}{}: without it the bootstrap Job sets up no model\n",
                m.secret,
                m.key,
                by_form(&m.secret)
            ));
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
        keys_in_cluster: cmd.keys == KeysFrom::InCluster,
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
            entry::k8s_versions().join(", ")
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

pub(super) fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .map_err(Error::io("writing to stdout"))?;
    out.flush().map_err(Error::io("writing to stdout"))
}
