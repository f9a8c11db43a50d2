//! Air-gapped sites (docs/airgap.md): does the cluster look offline, and does the render then
//! still point at the internet (the public marketplace, PyPI) or pull images from outside
//! `images.registry`?
//!
//! The heuristic: a cluster whose kube-system pods all run images from registries that are not
//! on the internet was installed from a mirror, which is what NKP's air-gapped bundle does (it
//! pushes every image to the site's registry and the nodes pull from there). It cannot see a
//! containerd mirror configured on the nodes behind public names, so it only ever adds a
//! warning; `airgap: true` in the values counts as offline too.

use super::{Check, unreadable};
use crate::cluster::{Error, ResourceManager};
use crate::release::RenderedRelease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

/// Registries on the internet.
const PUBLIC_REGISTRIES: &[&str] = &[
    "docker.io",
    "registry-1.docker.io",
    "index.docker.io",
    "registry.k8s.io",
    "k8s.gcr.io",
    "gcr.io",
    "quay.io",
    "ghcr.io",
    "public.ecr.aws",
    "mcr.microsoft.com",
    "nvcr.io",
    "registry.gitlab.com",
];

/// Hosts an offline cluster cannot reach that a render may name.
const PUBLIC_HOSTS: &[&str] = &[
    "marketplace.dify.ai",
    "pypi.org",
    "files.pythonhosted.org",
    "github.com",
];

/// The registry of an image reference as the container runtime reads it: the first path
/// element when it has a dot or a port or is `localhost`, else Docker Hub.
pub(super) fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

fn is_public(registry: &str) -> bool {
    let host = registry.split(':').next().unwrap_or(registry);
    PUBLIC_REGISTRIES
        .iter()
        .any(|p| host == *p || host.ends_with(&format!(".{p}")))
}

/// Whether these (system pods') images say the cluster was installed from a private mirror:
/// some images, none of them from a public registry.
pub(super) fn looks_offline<'a>(images: impl IntoIterator<Item = &'a str>) -> bool {
    let mut any = false;
    for image in images {
        any = true;
        if is_public(registry_of(image)) {
            return false;
        }
    }
    any
}

/// What of the render would reach the internet: objects naming a public host, and a plugin
/// daemon without a Python mirror or local wheels (uv would use pypi.org).
fn internet_uses(rendered: &RenderedRelease) -> Vec<String> {
    let mut uses = Vec::new();
    for r in &rendered.manifest.resources {
        if r.kind == "Secret" {
            continue;
        }
        let text = r.body.to_string();
        for host in PUBLIC_HOSTS.iter().filter(|h| text.contains(*h)) {
            uses.push(format!("{} {} names {host}", r.kind, r.name));
        }
    }
    let daemon_env = rendered
        .manifest
        .resources
        .iter()
        .find(|r| r.kind == "Deployment" && r.component == "plugin-daemon")
        .and_then(|r| r.body["spec"]["template"]["spec"]["containers"][0]["env"].as_array())
        .cloned()
        .unwrap_or_default();
    let value = |name: &str| {
        daemon_env
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    if value("PIP_MIRROR_URL").is_empty() && !value("PIP_EXTRA_ARGS").contains("--no-index") {
        uses.push(
            "the plugin daemon has no Python mirror (PIP_MIRROR_URL): uv installs from pypi.org"
                .to_owned(),
        );
    }
    uses
}

pub(super) async fn airgap(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
) -> Result<Vec<Check>, Error> {
    const NAME: &str = "airgap";
    let pods: Api<Pod> = Api::namespaced(mgr.client().clone(), "kube-system");
    let pods = match pods.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return Ok(vec![unreadable(
                NAME,
                "the Pods in kube-system",
                Error::from_kube("Pods", "list", e),
            )?]);
        }
    };
    let images: Vec<String> = pods
        .iter()
        .filter_map(|p| p.spec.as_ref())
        .flat_map(|s| s.containers.iter().filter_map(|c| c.image.clone()))
        .collect();
    let offline_cluster = looks_offline(images.iter().map(String::as_str));
    let airgap_value = rendered.values["airgap"].as_bool() == Some(true);
    if !offline_cluster && !airgap_value {
        return Ok(vec![Check::pass(
            NAME,
            "the cluster does not look offline (its kube-system pods pull from public registries, or there are none)",
        )]);
    }
    let why = if airgap_value {
        "airgap is true"
    } else {
        "the cluster looks offline (every kube-system image comes from a private registry)"
    };
    let uses = internet_uses(rendered);
    let plugins = if uses.is_empty() {
        Check::pass(
            NAME,
            format!(
                "{why}; the render names no public host and the plugin daemon has a Python mirror"
            ),
        )
    } else {
        Check::warn(NAME, format!("{why}, but the render reaches for the internet"))
            .details(uses)
            .fix("set airgap: true and plugins.pythonMirror.url (docs/airgap.md); or, if this cluster has a route out, egress.proxy")
    };
    let registry = rendered.values["images"]["registry"]
        .as_str()
        .unwrap_or_default();
    let outside: Vec<String> = rendered
        .dify
        .image_list
        .iter()
        // The registry's host: a site-built image elsewhere in the same registry is offline too.
        .filter(|i| {
            registry.is_empty() || registry_of(&i.image) != registry_of(&format!("{registry}/x"))
        })
        .map(|i| format!("{}: {}", i.component, i.image))
        .collect();
    let images = if outside.is_empty() {
        Check::pass(
            "airgap-images",
            format!("every image comes from the registry of images.registry ({registry})"),
        )
    } else {
        Check::warn(
            "airgap-images",
            format!(
                "{why}, but {} image(s) are not under images.registry",
                outside.len()
            ),
        )
        .details(outside)
        .fix("mirror them (`difyrender images`) and set images.registry (docs/airgap.md)")
    };
    Ok(vec![plugins, images])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries() {
        assert_eq!(registry_of("nginx:1.27"), "docker.io");
        assert_eq!(registry_of("langgenius/dify-api:1.16.1"), "docker.io");
        assert_eq!(registry_of("registry.k8s.io/pause:3.10"), "registry.k8s.io");
        assert_eq!(
            registry_of("harbor.site:5000/k8s/pause:3.10"),
            "harbor.site:5000"
        );
        assert_eq!(registry_of("localhost/x"), "localhost");
        assert!(is_public("docker.io") && is_public("us-docker.pkg.dev.gcr.io"));
        assert!(!is_public("harbor.site:5000"));
    }

    #[test]
    fn offline_only_with_private_images() {
        assert!(!looks_offline([]), "no evidence is not offline");
        assert!(looks_offline([
            "harbor.site/mirror/registry.k8s.io/coredns:1.11"
        ]));
        assert!(!looks_offline([
            "harbor.site/mirror/coredns:1.11",
            "registry.k8s.io/kube-proxy:v1.34.1"
        ]));
        assert!(!looks_offline(["calico/node:v3.29"]), "Docker Hub");
    }
}
