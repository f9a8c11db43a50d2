//! An NKP application-catalog entry made of plain manifests, without Helm.
//!
//! Kommander deploys a catalog application by building its version folder with kustomize and
//! applying the result through Flux, with `${releaseName}` and `${releaseNamespace}` (and a few
//! more variables) substituted. An entry written here has the layout `nkp generate
//! catalog-repository` gives a Helm application, with `manifests` where that has `helmrelease`:
//!
//! ```text
//! .bloodhound.yml                     only with --bloodhound
//! applications/<app>/<version>/
//!   metadata.yaml                     catalog.nkp.nutanix.com/v1/application-metadata
//!   kustomization.yaml                resources: [manifests.yaml]
//!   manifests.yaml                    Flux Kustomization ${releaseName}-manifests, path ./manifests
//!   manifests/
//!     kustomization.yaml              every file below, in apply order
//!     <stage>-<kind>-<name>.yaml      one rendered object per file
//! ```
//!
//! The release is rendered once with placeholder names ([`placeholder_release`]), which the
//! renderer accepts as DNS labels, and every string is then rewritten: `$` escaped for Flux,
//! the placeholders replaced by `${releaseNamespace}` and `${releaseName}`. Two components are
//! left out: the Namespace (Kommander deploys into the workspace or project namespace, which
//! exists, and a Namespace in a pruned inventory would be deleted with the application) and the
//! keys Secret (no secret goes into a catalog; the operator creates `${releaseName}-keys` once
//! with `difyrender secrets apply`, or, with `--keys in-cluster`, a Job of the entry fills it in
//! from the form's master key: [`keys`]). Everything here is pure except [`write`].

pub(crate) mod files;
mod flux;
pub mod inputs;
pub mod keys;
pub mod manifests;
pub mod metadata;

pub use flux::{FluxBundle, FluxOnlyOptions, FluxSource, build_flux_only, write_flux_only};
pub use manifests::{escape_for_flux, substitute_like_flux};

use crate::release::RenderedRelease;
use crate::render::Release;
use crate::yaml;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Release name the entry is rendered with, replaced by `${releaseName}` afterwards.
pub const RELEASE_NAME_PLACEHOLDER: &str = "catalog-release-name-placeholder";
/// Namespace the entry is rendered with, replaced by `${releaseNamespace}` afterwards.
pub const RELEASE_NAMESPACE_PLACEHOLDER: &str = "catalog-release-namespace-placeholder";
/// Master key used when none is given. Only the keys Secret and the keys checksum depend on
/// the master key, and the entry holds neither, so this key never reaches a cluster.
pub const PLACEHOLDER_MASTER_KEY: &str = "difyrender-catalog-placeholder-master-key";
/// Flux substitution variables Kommander sets (NKP 2.16 and later).
pub const RELEASE_NAME_VAR: &str = "${releaseName}";
pub const RELEASE_NAMESPACE_VAR: &str = "${releaseNamespace}";
/// Components that are not part of an entry.
pub const DROPPED_COMPONENTS: &[&str] = &["namespace", "secrets"];
/// Kubernetes versions `.bloodhound.yml` validates against: every minor NKP 2.16-2.18
/// validates (`crate::objects::NKP_KUBERNETES`); patch level .0 because bloodhound resolves
/// them in the upstream JSON-schema index.
pub fn k8s_versions() -> Vec<String> {
    let (lo, hi) = crate::objects::TESTED_MINORS;
    (lo..=hi).map(|m| format!("1.{m}.0")).collect()
}
/// Largest icon accepted; catalog icons are small SVGs.
pub const MAX_ICON_BYTES: usize = 256 * 1024;

/// The release to render an entry with.
pub fn placeholder_release() -> Release {
    Release {
        name: RELEASE_NAME_PLACEHOLDER.to_owned(),
        namespace: RELEASE_NAMESPACE_PLACEHOLDER.to_owned(),
    }
}

/// An SVG icon read by the caller.
#[derive(Debug, Clone)]
pub struct Icon {
    /// Where it came from, for messages.
    pub origin: String,
    pub bytes: Vec<u8>,
}

/// What the entry is called and what goes with it.
#[derive(Debug, Clone)]
pub struct EntryOptions {
    /// The application ID: `applications/<app>`.
    pub app_name: String,
    /// The version folder: `applications/<app>/<version>`.
    pub app_version: String,
    /// `None`: the built-in icon.
    pub icon: Option<Icon>,
    /// Also write `.bloodhound.yml` at the repository root.
    pub bloodhound: bool,
    /// `--keys in-cluster`: the entry fills in its keys Secret itself ([`keys`]).
    pub keys_in_cluster: bool,
}

/// A generated entry: file contents by path, nothing written yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub app_name: String,
    pub app_version: String,
    /// Files of the version folder, by path relative to it (`manifests/5-deployment-api.yaml`).
    pub files: BTreeMap<String, String>,
    /// `.bloodhound.yml`, when asked for.
    pub bloodhound: Option<String>,
    /// Rendered objects left out of the entry, as `Kind name` with the variables in place.
    pub dropped: Vec<String>,
    /// Values fixed at generation time, as (setting, value), also listed in the overview.
    pub fixed: Vec<(String, String)>,
}

impl Entry {
    /// `applications/<app>/<version>`, relative to the repository root.
    pub fn version_dir(&self) -> PathBuf {
        Path::new("applications")
            .join(&self.app_name)
            .join(&self.app_version)
    }

    /// Every file of the entry, by path relative to the repository root, in order.
    pub fn repo_files(&self) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = Vec::new();
        if let Some(b) = &self.bloodhound {
            out.push((".bloodhound.yml".to_owned(), b.as_str()));
        }
        let dir = format!("applications/{}/{}", self.app_name, self.app_version);
        for (path, text) in &self.files {
            out.push((format!("{dir}/{path}"), text.as_str()));
        }
        out
    }
}

/// Why an entry could not be generated or written. Messages never include a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the catalog entry must be rendered with the placeholder release \
         ({RELEASE_NAMESPACE_PLACEHOLDER}/{RELEASE_NAME_PLACEHOLDER}), not {0}"
    )]
    NotPlaceholderRelease(String),
    #[error(
        "--app-name {0} must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit (it becomes applications/<app> and the App ID)"
    )]
    AppName(String),
    #[error(
        "--app-version {0} must be a version such as 1.11.4 or v1.11.4-custom.1 (it becomes the folder applications/<app>/<version>)"
    )]
    AppVersion(String),
    #[error("--icon {origin}: {reason}")]
    Icon { origin: String, reason: String },
    #[error(
        "values contain {0:?}, which the catalog entry uses to mark the release name and namespace; choose other values"
    )]
    PlaceholderInValues(&'static str),
    #[error(
        "{0} is not in the release namespace: a catalog entry may only hold objects in ${{releaseNamespace}}"
    )]
    OutsideReleaseNamespace(String),
    #[error(
        "refusing to write the entry: {file} would contain a secret value (a key given in values ends up outside the keys Secret)"
    )]
    SecretInEntry { file: String },
    #[error("--flux-url {0:?}: {1}")]
    FluxUrl(String, &'static str),
    #[error("--flux-ref {0:?}: {1}")]
    FluxRef(String, &'static str),
    #[error("--flux-path {0:?}: {1}")]
    FluxPath(String, &'static str),
    #[error("--keys in-cluster: {0}")]
    KeysInCluster(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    /// An entry that cannot be generated or written is bad input (arguments, values, the
    /// output folder); a catalog is written to files, never to a cluster.
    pub fn exit_code(&self) -> u8 {
        crate::error::exit::INPUT
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// A DNS-1123 label, as App IDs and folder names must be.
fn check_app_name(name: &str) -> Result<(), Error> {
    if crate::manifest::is_dns_label(name, 63) {
        Ok(())
    } else {
        Err(Error::AppName(crate::diag::excerpt(name)))
    }
}

/// `[v]MAJOR.MINOR.PATCH[-pre][+build]`: the catalog's version folders are semantic versions.
fn check_app_version(version: &str) -> Result<(), Error> {
    let bad = || Error::AppVersion(crate::diag::excerpt(version));
    let core = version.strip_prefix('v').unwrap_or(version);
    let (core, rest) = match core.find(['-', '+']) {
        Some(i) => (&core[..i], &core[i + 1..]),
        None => (core, ""),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() != 3
        || numbers
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let rest_ok = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'));
    if version.len() > 128 || !rest_ok || (version.contains(['-', '+']) && rest.is_empty()) {
        return Err(bad());
    }
    Ok(())
}

/// The SVG as the catalog wants it: base64.
fn icon_base64(icon: Option<&Icon>) -> Result<String, Error> {
    use base64::Engine;
    let bytes: &[u8] = match icon {
        None => include_str!("icon.svg").as_bytes(),
        Some(icon) => {
            let bad = |reason: &str| Error::Icon {
                origin: icon.origin.clone(),
                reason: reason.to_owned(),
            };
            if icon.bytes.len() > MAX_ICON_BYTES {
                return Err(bad(&format!(
                    "is {} bytes; an icon must be at most {MAX_ICON_BYTES} bytes",
                    icon.bytes.len()
                )));
            }
            let text = std::str::from_utf8(&icon.bytes)
                .map_err(|_| bad("is not an SVG file (not UTF-8 text)"))?;
            if !text.contains("<svg") {
                return Err(bad("is not an SVG file (no <svg> element)"));
            }
            &icon.bytes
        }
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Builds the entry for a release rendered with [`placeholder_release`].
pub fn build(rendered: &RenderedRelease, options: &EntryOptions) -> Result<Entry, Error> {
    if rendered.release != placeholder_release() {
        return Err(Error::NotPlaceholderRelease(format!(
            "{}/{}",
            rendered.release.namespace, rendered.release.name
        )));
    }
    check_app_name(&options.app_name)?;
    check_app_version(&options.app_version)?;
    let icon = icon_base64(options.icon.as_ref())?;
    let values_text = rendered.values.to_string();
    for placeholder in [RELEASE_NAME_PLACEHOLDER, RELEASE_NAMESPACE_PLACEHOLDER] {
        if values_text.contains(placeholder) {
            return Err(Error::PlaceholderInValues(placeholder));
        }
    }

    let mut converted = manifests::convert(
        &rendered.manifest,
        Some(&crate::values::text_at(&rendered.values, "/external/host")),
    )?;
    let mut secret_fields: Vec<inputs::SecretField> = inputs::ModelKey::of(&rendered.values)
        .map(|m| m.secret_field())
        .into_iter()
        .collect();
    if options.keys_in_cluster {
        add_keys_job(rendered, &options.app_name, &mut converted)?;
        secret_fields.push(keys::master_key_field(&options.app_name));
    }
    let fixed = metadata::fixed_values(rendered, &converted.objects);
    let mut files = BTreeMap::new();
    files.insert(
        "metadata.yaml".to_owned(),
        metadata::metadata_yaml(rendered, &options.app_name, &fixed, &icon),
    );
    files.insert(
        "kustomization.yaml".to_owned(),
        manifests::kustomization(&["manifests.yaml".to_owned()]),
    );
    let overrides = inputs::config_overrides_name(&options.app_name);
    files.insert(
        "manifests.yaml".to_owned(),
        manifests::flux_kustomization(&overrides),
    );
    files.insert(
        "user-inputs.yaml".to_owned(),
        inputs::user_inputs_yaml(
            &options.app_name,
            rendered.dify_version(),
            &crate::values::text_at(&rendered.values, "/expose/path"),
            &converted.variables,
            &secret_fields,
        ),
    );
    let names: Vec<String> = converted.objects.iter().map(|o| o.file.clone()).collect();
    files.insert(
        "manifests/kustomization.yaml".to_owned(),
        manifests::kustomization(&names),
    );
    for object in &converted.objects {
        files.insert(format!("manifests/{}", object.file), object.text.clone());
    }
    let bloodhound = options.bloodhound.then(|| {
        let skip: Vec<String> = converted
            .objects
            .iter()
            .filter(|o| !manifests::is_builtin_group(&o.api_version))
            .map(|o| format!("{}/{}", o.api_version, o.kind))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        metadata::bloodhound_yaml(&options.app_name, &skip)
    });

    let entry = Entry {
        app_name: options.app_name.clone(),
        app_version: options.app_version.clone(),
        files,
        bloodhound,
        dropped: converted.dropped,
        fixed,
    };
    check_no_secrets(&entry, rendered)?;
    Ok(entry)
}

/// `--keys in-cluster`: the keys Job's objects, after the converted ones. The keys Secret must
/// be the release's own (not `secrets.existingSecret`), every key of it derivable.
fn add_keys_job(
    rendered: &RenderedRelease,
    app_name: &str,
    converted: &mut manifests::Converted,
) -> Result<(), Error> {
    let secret = rendered
        .manifest
        .resources
        .iter()
        .find(|r| r.kind == "Secret" && r.component == "secrets")
        .ok_or_else(|| {
            Error::KeysInCluster(
                "the keys come from secrets.existingSecret, which the cluster does not make: \
                 leave --keys in-cluster out"
                    .into(),
            )
        })?;
    // A key set in values is not derived: say which value, before the recipe would name the
    // Secret's key.
    for spec in crate::values::secrets::DERIVED_KEYS {
        let path = format!("/secrets/{}", spec.value);
        if !crate::values::text_at(&rendered.values, &path).is_empty() {
            return Err(Error::KeysInCluster(format!(
                "secrets.{} is set, so that key is not derived from the master key and the cluster \
                 cannot make it: leave it out, or keep the keys step (without --keys in-cluster)",
                spec.value
            )));
        }
    }
    let recipe = keys::recipe(&secret.body)?;
    let name = secret
        .name
        .replace(RELEASE_NAME_PLACEHOLDER, RELEASE_NAME_VAR);
    let migration = converted
        .objects
        .iter()
        .find(|o| {
            o.kind == "Job"
                && o.body["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
        })
        .map(|o| o.body.clone())
        .ok_or_else(|| Error::KeysInCluster("the release renders no migration Job".into()))?;
    for (file, body) in keys::objects(app_name, &name, &recipe, &migration) {
        converted.objects.push(manifests::Object {
            api_version: body["apiVersion"].as_str().unwrap_or_default().to_owned(),
            kind: body["kind"].as_str().unwrap_or_default().to_owned(),
            text: format!(
                "# Source: difyrender catalog --keys in-cluster\n{}---\n",
                yaml::to_string(&body)
            ),
            file,
            body,
        });
    }
    Ok(())
}

/// Refuses an entry in which any secret of the release, or its base64 form, occurs.
fn check_no_secrets(entry: &Entry, rendered: &RenderedRelease) -> Result<(), Error> {
    check_no_secret_in(entry.repo_files(), rendered)
}

/// Refuses files (path, text) in which any secret of the release, or its base64 form, occurs.
fn check_no_secret_in<'a>(
    files: impl IntoIterator<Item = (String, &'a str)>,
    rendered: &RenderedRelease,
) -> Result<(), Error> {
    use base64::Engine;
    let secrets: Vec<String> = rendered
        .secret_values()
        .into_iter()
        .filter(|s| s.len() >= 8)
        .flat_map(|s| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&s);
            [s, b64]
        })
        .collect();
    for (path, text) in files {
        if secrets.iter().any(|s| text.contains(s.as_str())) {
            return Err(Error::SecretInEntry { file: path });
        }
    }
    Ok(())
}

/// What [`write`] did, with paths relative to the repository root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Files whose contents were created or changed.
    pub written: Vec<String>,
    /// Files already up to date.
    pub unchanged: Vec<String>,
    /// Files of the version folder that the entry no longer has, now deleted.
    pub removed: Vec<String>,
}

/// Writes the entry into the catalog repository at `repo` (created if missing). Only
/// `applications/<app>/<version>/` changes, plus `.bloodhound.yml` when the entry has one:
/// the version folder is replaced as a whole (see [`files`]), and nothing else is touched.
pub fn write(entry: &Entry, repo: &Path) -> Result<WriteReport, Error> {
    check_app_name(&entry.app_name)?;
    check_app_version(&entry.app_version)?;
    let singles: Vec<(String, &str)> = entry
        .bloodhound
        .iter()
        .map(|b| (".bloodhound.yml".to_owned(), b.as_str()))
        .collect();
    files::replace(repo, &entry.version_dir(), &entry.files, &singles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in [
            "1.11.4",
            "v1.18.0-n4k.nirmata.2",
            "0.1.0+build.5",
            "1.2.3-rc.1",
        ] {
            assert!(check_app_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "1.11", "1.11.4.1", "../1.0.0", "1.0.0/x", "1.0.0-", "a.b.c", "1.0.0 ", ".",
        ] {
            assert!(check_app_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn app_names() {
        assert!(check_app_name("dify").is_ok());
        assert!(check_app_name("dify-team-b").is_ok());
        for bad in ["", "Dify", "-dify", "dify/x", "..", "dify_x"] {
            assert!(check_app_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn icons_must_be_svg() {
        let svg = Icon {
            origin: "a.svg".into(),
            bytes: b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
        };
        assert!(icon_base64(Some(&svg)).is_ok());
        let png = Icon {
            origin: "a.png".into(),
            bytes: vec![0x89, b'P', b'N', b'G', 0xff],
        };
        assert!(icon_base64(Some(&png)).is_err());
        let text = Icon {
            origin: "a.txt".into(),
            bytes: b"hello".to_vec(),
        };
        assert!(icon_base64(Some(&text)).is_err());
        assert!(icon_base64(None).is_ok());
    }
}
