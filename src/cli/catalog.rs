//! `difyrender catalog`: an NKP application-catalog entry, and `difyrender secrets`: the keys
//! Secret that entry reads, which the operator creates once per release.

use super::args::{CatalogCommand, ReleaseArgs, RenderArgs, SecretsApplyCommand, SecretsCommand};
use crate::catalog::{self as entry, EntryOptions, Icon, PLACEHOLDER_MASTER_KEY};
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
    let rendered = render_release(&spec).map_err(with_host_hint)?;
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
    let entry = entry::build(&rendered, &options).map_err(|e| match e {
        // The version came from the values, not from a flag: say so.
        entry::Error::AppVersion(v) if cmd.app_version.is_none() => Error::Usage(format!(
            "the entry's version folder defaults to images.dify.tag, which is {v}, not a version such as 1.11.4; give --app-version"
        )),
        other => other.into(),
    })?;
    let report = entry::write(&entry, &cmd.out)?;

    let dir = entry.version_dir().to_string_lossy().replace('\\', "/");
    let mut out = format!(
        "Wrote the NKP catalog entry {} {} into {}:\n  {dir}/: {} files ({} written, {} unchanged)\n",
        entry.app_name,
        entry.app_version,
        cmd.out.display(),
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
    out.push_str("Left out:\n");
    for dropped in &entry.dropped {
        let why = if dropped.starts_with("Namespace ") {
            "Kommander deploys into the existing workspace or project namespace"
        } else if dropped.starts_with("Secret ") {
            "no secret goes into a catalog; create it with `difyrender secrets apply`"
        } else {
            "not part of a catalog entry"
        };
        out.push_str(&format!("  {dropped}: {why}\n"));
    }
    out.push_str("Fixed at generation time (listed in the entry's overview):\n");
    for (setting, value) in &entry.fixed {
        out.push_str(&format!("  {setting}: {value}\n"));
    }
    out.push_str(
        "Before enabling the application, create its keys Secret once, in the namespace and for the \
         release name the AppDeployment will use:\n  \
         difyrender secrets apply -n <namespace> --release <release name> [the same -f/--set flags]\n",
    );
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

/// Required values the keys Secret does not depend on, with stand-ins used when they are
/// missing, so `secrets` needs only the master key (and the release's name and namespace).
const NOT_NEEDED: &[(&str, &str)] = &[
    ("expose.ingressClassName", "unused"),
    ("expose.path", "/"),
    ("external.scheme", "https"),
    ("external.host", "unused.invalid"),
    ("storage.storageClassName", "unused"),
];

/// The release's keys Secret, rendered by the chart like every other object.
fn keys_secret(
    args: &RenderArgs,
    release: &ReleaseArgs,
) -> Result<(Resource, RenderedRelease), Error> {
    let spec = args.to_spec(release.to_release()?)?;
    let rendered = match render_release(&spec) {
        Ok(r) => r,
        Err(release::Error::Render(e)) => {
            let missing: Vec<String> = e.missing_paths().iter().map(|p| p.to_string()).collect();
            let fill: Vec<&(&str, &str)> = NOT_NEEDED
                .iter()
                .filter(|(path, _)| missing.iter().any(|m| m == path))
                .collect();
            if fill.is_empty() {
                return Err(release::Error::Render(e).into());
            }
            let mut spec = spec.clone();
            for (path, value) in fill {
                let mut node = Value::String((*value).to_owned());
                for part in path.rsplit('.') {
                    let mut map = Map::new();
                    map.insert(part.to_owned(), node);
                    node = Value::Object(map);
                }
                if let Value::Object(map) = node {
                    crate::values::merge_maps(&mut spec.injected, map);
                }
            }
            render_release(&spec)?
        }
        Err(e) => return Err(e.into()),
    };
    let secret = rendered
        .manifest
        .resources
        .iter()
        .find(|r| r.component == "secrets" && r.kind == "Secret")
        .cloned()
        .ok_or_else(|| Error::Usage("the chart renders no keys Secret".into()))?;
    Ok((secret, rendered))
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
