//! The entry's manifests for teams that run Flux without NKP's catalog: the same `manifests/`
//! folder, plus `flux-sync.yaml` with the two objects Kommander would otherwise create, a source
//! (OCIRepository or GitRepository) and a Flux Kustomization over the folder with the release's
//! name and namespace in `postBuild.substitute`. `kubectl apply -f flux-sync.yaml` deploys it.
//!
//! ```text
//! DIR/
//!   flux-sync.yaml        <release>-source + Kustomization <release>-manifests, in <namespace>
//!   manifests/            as in the catalog entry, with ${releaseName} and ${releaseNamespace}
//! ```

use super::manifests::{self, FLUX_TIMEOUT};
use super::{Error, WriteReport, check_no_secret_in, placeholder_release};
use crate::release::RenderedRelease;
use crate::render::Release;
use crate::yaml;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// Where Flux fetches the manifests from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FluxSource {
    /// `oci://host/repository` at a tag; the pushed `manifests/` folder is the artifact's root.
    Oci { url: String, tag: String },
    /// A Git repository at a branch; `path` is where `manifests/` lies in it.
    Git {
        url: String,
        branch: String,
        path: String,
    },
}

impl FluxSource {
    /// From `--flux-url`, `--flux-ref` and `--flux-path`. `oci://` is an OCI repository (the
    /// ref is a tag, default `default_tag`); `https://`, `http://` and `ssh://` are Git (the ref
    /// is a branch, default `main`; the path defaults to `./manifests`).
    pub fn parse(
        url: &str,
        reference: Option<&str>,
        path: Option<&str>,
        default_tag: &str,
    ) -> Result<Self, Error> {
        // The URL is echoed without its user information: it may hold a credential.
        let bad_url = |why| Error::FluxUrl(crate::diag::strip_userinfo(url), why);
        if url.len() > 512 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad_url(
                "must be a URL without spaces, at most 512 characters",
            ));
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad_url("must start with oci:// (an OCI repository) or https://, http://, ssh:// (Git)")
        })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad_url("has no host"));
        }
        // A credential in the URL would be written into flux-sync.yaml (and the repository it
        // is committed to); Flux takes credentials from a Secret (`spec.secretRef`). Only
        // SSH's conventional user name without a password (`ssh://git@host/…`) is kept.
        let authority = rest.split('/').next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && (scheme != "ssh" || userinfo.contains(':'))
        {
            return Err(bad_url(
                "must not contain a user name or password: give Flux the credentials in a Secret (secretRef of the GitRepository or OCIRepository)",
            ));
        }
        match scheme {
            "oci" => {
                if path.is_some() {
                    return Err(Error::FluxPath(
                        path.unwrap_or_default().to_owned(),
                        "only for a Git source: an OCI artifact's root is the manifests folder",
                    ));
                }
                if rest.contains(['@', '?', '#'])
                    || rest.rsplit('/').next().is_some_and(|l| l.contains(':'))
                {
                    return Err(bad_url(
                        "give the repository without a tag or digest (the tag is --flux-ref)",
                    ));
                }
                let tag = reference.unwrap_or(default_tag).to_owned();
                let tag_ok = !tag.is_empty()
                    && tag.len() <= 128
                    && !tag.starts_with(['.', '-'])
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
                if !tag_ok {
                    return Err(Error::FluxRef(
                        tag,
                        "must be an OCI tag: up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
                    ));
                }
                Ok(Self::Oci {
                    url: url.to_owned(),
                    tag,
                })
            }
            "https" | "http" | "ssh" => {
                let branch = reference.unwrap_or("main").to_owned();
                let branch_ok = !branch.is_empty()
                    && branch.len() <= 255
                    && !branch.contains("..")
                    && !branch.starts_with(['-', '/'])
                    && branch.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/')
                    });
                if !branch_ok {
                    return Err(Error::FluxRef(
                        branch,
                        "must be a Git branch name: letters, digits, '_', '.', '-' or '/'",
                    ));
                }
                let path = path.unwrap_or("./manifests").to_owned();
                let path_ok = !path.is_empty()
                    && path.len() <= 255
                    && !path.starts_with('/')
                    && !path.split('/').any(|p| p == "..")
                    && path.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/')
                    });
                if !path_ok {
                    return Err(Error::FluxPath(
                        path,
                        "must be a relative path inside the repository (no '..')",
                    ));
                }
                Ok(Self::Git {
                    url: url.to_owned(),
                    branch,
                    path,
                })
            }
            _ => Err(bad_url(
                "must start with oci:// (an OCI repository) or https://, http://, ssh:// (Git)",
            )),
        }
    }
}

/// What to write for a plain Flux deployment.
#[derive(Debug, Clone)]
pub struct FluxOnlyOptions {
    pub source: FluxSource,
    /// The release the sync objects deploy: their names, namespace and substitution.
    pub release: Release,
}

/// The files of a plain Flux deployment, by path relative to its folder.
#[derive(Debug, Clone, PartialEq)]
pub struct FluxBundle {
    pub files: BTreeMap<String, String>,
    /// Rendered objects left out, as in [`super::Entry::dropped`].
    pub dropped: Vec<String>,
}

/// The sync file: the source and the Kustomization, for `kubectl apply -f`.
fn sync_yaml(options: &FluxOnlyOptions) -> String {
    let Release { name, namespace } = &options.release;
    let source_name = format!("{name}-source");
    let (source, kind, path) = match &options.source {
        FluxSource::Oci { url, tag } => (
            json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "OCIRepository",
                "metadata": {"name": source_name, "namespace": namespace},
                "spec": {"interval": "10m0s", "url": url, "ref": {"tag": tag}},
            }),
            "OCIRepository",
            "./".to_owned(),
        ),
        FluxSource::Git { url, branch, path } => (
            json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": source_name, "namespace": namespace},
                "spec": {"interval": "10m0s", "url": url, "ref": {"branch": branch}},
            }),
            "GitRepository",
            path.clone(),
        ),
    };
    let kustomization = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": format!("{name}-manifests"), "namespace": namespace},
        "spec": {
            "interval": "1h0m0s",
            "path": path,
            "postBuild": {"substitute": {"releaseName": name, "releaseNamespace": namespace}},
            "prune": true,
            "retryInterval": "1m0s",
            "sourceRef": {"kind": kind, "name": source_name},
            "timeout": FLUX_TIMEOUT,
            "wait": true,
        },
    });
    let header = format!(
        "# Deploys Dify as release {name} in namespace {namespace} with Flux: kubectl apply -f flux-sync.yaml\n\
         # First create its keys Secret: difyrender secrets apply -n {namespace} --release {name}\n"
    );
    let doc = |v: &Value| format!("{}---\n", yaml::to_string(v));
    format!("{header}{}{}", doc(&source), doc(&kustomization))
}

/// Builds the plain Flux deployment for a release rendered with [`placeholder_release`].
pub fn build_flux_only(
    rendered: &RenderedRelease,
    options: &FluxOnlyOptions,
) -> Result<FluxBundle, Error> {
    if rendered.release != placeholder_release() {
        return Err(Error::NotPlaceholderRelease(format!(
            "{}/{}",
            rendered.release.namespace, rendered.release.name
        )));
    }
    let converted = manifests::convert(&rendered.manifest, None)?;
    let mut files = BTreeMap::new();
    let names: Vec<String> = converted.objects.iter().map(|o| o.file.clone()).collect();
    files.insert(
        "manifests/kustomization.yaml".to_owned(),
        manifests::kustomization(&names),
    );
    for object in &converted.objects {
        files.insert(format!("manifests/{}", object.file), object.text.clone());
    }
    files.insert("flux-sync.yaml".to_owned(), sync_yaml(options));
    check_no_secret_in(files.iter().map(|(p, t)| (p.clone(), t.as_str())), rendered)?;
    Ok(FluxBundle {
        files,
        dropped: converted.dropped,
    })
}

/// Writes the bundle into `dir` (created if missing): `manifests/` is replaced as a whole,
/// `flux-sync.yaml` is written, and nothing else in `dir` is touched (see [`super::files`]).
pub fn write_flux_only(bundle: &FluxBundle, dir: &Path) -> Result<WriteReport, Error> {
    let in_manifests: BTreeMap<String, String> = bundle
        .files
        .iter()
        .filter_map(|(p, t)| Some((p.strip_prefix("manifests/")?.to_owned(), t.clone())))
        .collect();
    let singles: Vec<(String, &str)> = bundle
        .files
        .iter()
        .filter(|(p, _)| !p.starts_with("manifests/"))
        .map(|(p, t)| (p.clone(), t.as_str()))
        .collect();
    super::files::replace(dir, Path::new("manifests"), &in_manifests, &singles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            FluxSource::parse("oci://ghcr.io/org/dify", None, None, "1.11.4").unwrap(),
            FluxSource::Oci {
                url: "oci://ghcr.io/org/dify".into(),
                tag: "1.11.4".into()
            }
        );
        assert_eq!(
            FluxSource::parse(
                "https://git.example/org/cat",
                Some("prod"),
                Some("dify/manifests"),
                "x"
            )
            .unwrap(),
            FluxSource::Git {
                url: "https://git.example/org/cat".into(),
                branch: "prod".into(),
                path: "dify/manifests".into()
            }
        );
        for (url, reference, path) in [
            ("ftp://host/x", None, None),
            ("ghcr.io/org/dify", None, None),
            ("oci://", None, None),
            ("oci://ghcr.io/org/dify:1.0.0", None, None),
            ("oci://ghcr.io/org/dify", Some("1.0.0+build"), None),
            ("oci://ghcr.io/org/dify", None, Some("./x")),
            ("https://git.example/x y", None, None),
            ("https://git.example/x", Some("a..b"), None),
            ("https://git.example/x", None, Some("../up")),
            ("https://git.example/x", None, Some("/abs")),
        ] {
            assert!(
                FluxSource::parse(url, reference, path, "1.11.4").is_err(),
                "{url} {reference:?} {path:?}"
            );
        }
    }
}
