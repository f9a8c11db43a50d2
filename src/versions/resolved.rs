//! The release a render runs: the table's entry for `images.dify.tag`, every image resolved.

use super::{Error, ReleaseTable, Routes, Since, VersionKey};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Components with an image, with their values key: the release decides api, web, the plugin
/// daemon, sandbox and Weaviate; the others come from values.yaml.
pub const IMAGE_COMPONENTS: &[(&str, &str)] = &[
    ("api", "api"),
    ("web", "web"),
    ("plugin-daemon", "pluginDaemon"),
    ("sandbox", "sandbox"),
    ("ssrf-proxy", "ssrfProxy"),
    ("postgresql", "postgresql"),
    ("pgvector", "pgvector"),
    ("redis", "redis"),
    ("weaviate", "weaviate"),
    ("hook-proxy", "hookProxy"),
    ("agent-backend", "agentBackend"),
    ("local-sandbox", "localSandbox"),
    ("postgres-exporter", "postgresExporter"),
    ("redis-exporter", "redisExporter"),
];

/// One component's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub component: String,
    /// What pods run: `images.registry` applied.
    pub image: String,
    /// The same image at its public origin, for mirroring.
    pub source: String,
    /// What the release (or the chart) would use without an explicit repository or tag.
    pub pinned: String,
    /// An explicit repository or tag differs from the release's pin.
    pub overridden: bool,
}

/// The release a render runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    pub version: String,
    /// The ports of the table ([`ReleaseTable::ports`]).
    pub ports: BTreeMap<String, u16>,
    /// The table's [`ReleaseTable::private_networks`].
    pub private_networks: BTreeMap<String, Vec<String>>,
    /// The table's [`ReleaseTable::routes`].
    pub routes: Routes,
    /// The table's [`ReleaseTable::since`]: templates name the release a switch needs from it,
    /// never from a version written in the template.
    pub since: BTreeMap<String, Since>,
    pub alembic_head: String,
    pub switches: Map<String, Value>,
    pub celery_queues: Vec<String>,
    /// By component: `images.<component>` in templates is the image to run.
    pub images: BTreeMap<String, String>,
    /// Every image with its origin, in component order.
    pub image_list: Vec<Image>,
}

impl Resolved {
    pub fn overrides(&self) -> Vec<&Image> {
        self.image_list.iter().filter(|i| i.overridden).collect()
    }

    /// Every container image of `objects` (each with its component), in their order, each once
    /// with the components that run it; an image the release table resolved carries its public
    /// origin and whether it was overridden. The one list `difyrender images`, doctor's images
    /// check and the catalog card show.
    pub fn images_run<'a>(
        &self,
        objects: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Vec<RunImage> {
        let mut out: Vec<RunImage> = Vec::new();
        for (component, body) in objects {
            for c in crate::manifest::pods::containers(body) {
                let Some(image) = c.get("image").and_then(Value::as_str) else {
                    continue;
                };
                if let Some(seen) = out.iter_mut().find(|i| i.image == image) {
                    if !seen.components.iter().any(|c| c == component) {
                        seen.components.push(component.to_owned());
                    }
                    continue;
                }
                let known = self.image_list.iter().find(|i| i.image == image);
                out.push(RunImage {
                    image: image.to_owned(),
                    source: known.map_or_else(|| image.to_owned(), |i| i.source.clone()),
                    components: vec![component.to_owned()],
                    overridden: known.is_some_and(|i| i.overridden),
                });
            }
        }
        out
    }
}

/// One container image a release runs ([`Resolved::images_run`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunImage {
    pub image: String,
    /// The same image at its public origin: copy from here into the mirror.
    pub source: String,
    pub components: Vec<String>,
    /// Set explicitly instead of the release's pin.
    pub overridden: bool,
}

fn text<'a>(values: &'a Value, pointer: &str) -> &'a str {
    values
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether a repository already names a registry host (`registry.example.com/x`, `localhost:5000/x`).
fn has_registry(repository: &str) -> bool {
    match repository.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

/// `images.registry` in front of a repository that names no registry of its own.
fn with_registry(registry: &str, repository: &str) -> String {
    let registry = registry.trim_end_matches('/');
    if registry.is_empty() || has_registry(repository) {
        repository.to_owned()
    } else {
        format!("{registry}/{repository}")
    }
}

/// The release `values` ask for (`images.dify.tag`), with every image resolved. Refuses, with an
/// explanation, a release below the table's minimum, a refused one (2.0.0 betas), and one not in
/// the table (with or without `allow_unknown`, which only changes the explanation). `defaults` are the chart's
/// default values, to tell explicit images from the chart's own.
pub fn resolve(
    table: &ReleaseTable,
    values: &Value,
    defaults: &Value,
    allow_unknown: bool,
) -> Result<Resolved, Error> {
    let version = text(values, "/images/dify/tag").to_owned();
    for refusal in &table.refused {
        if version.starts_with(&refusal.prefix) {
            return Err(Error::Refused {
                version,
                reason: refusal.reason.trim().to_owned(),
            });
        }
    }
    let Some(key) = VersionKey::parse(&version) else {
        return Err(Error::NotAVersion {
            version,
            supported: table.supported(),
        });
    };
    let minimum = VersionKey::parse(&table.minimum).expect("checked when the table was read");
    if key < minimum {
        return Err(Error::TooOld {
            version,
            minimum: table.minimum.clone(),
        });
    }
    let entry = match table.find(&version) {
        Some((_, r)) => r.clone(),
        None if !allow_unknown => {
            return Err(Error::Unknown {
                version,
                supported: table.supported(),
            });
        }
        // A release outside the table has no known Alembic head, queue list or switches, and
        // none of them is taken from a neighbour: 1.16.0 added a queue (app_rbac) that a worker
        // given 1.15's list never consumes. It needs an entry of its own in a chart copy.
        None => return Err(Error::UnknownNeedsEntry { version }),
    };

    let registry = text(values, "/images/registry");
    let dify_repo = text(values, "/images/dify/repository");
    let default_dify_repo = text(defaults, "/images/dify/repository");
    let mut images = BTreeMap::new();
    let mut image_list = Vec::new();
    for (component, key) in IMAGE_COMPONENTS {
        let given_repo = text(values, &format!("/images/{key}/repository"));
        let given_tag = text(values, &format!("/images/{key}/tag"));
        let default_repo = text(defaults, &format!("/images/{key}/repository"));
        let default_tag = text(defaults, &format!("/images/{key}/tag"));
        let (pinned_repo, pinned_tag) = match *key {
            "api" | "web" => (
                format!("{default_dify_repo}-{key}"),
                entry.images.api.clone(),
            ),
            "pluginDaemon" => (default_repo.to_owned(), entry.images.plugin_daemon.clone()),
            "sandbox" => (default_repo.to_owned(), entry.images.sandbox.clone()),
            "weaviate" => (default_repo.to_owned(), entry.images.weaviate.clone()),
            // Only releases that pin them run the agent stack's images.
            "agentBackend" | "localSandbox" => {
                let pinned = if *key == "agentBackend" {
                    &entry.images.agent_backend
                } else {
                    &entry.images.local_sandbox
                };
                match pinned {
                    Some(tag) => (default_repo.to_owned(), tag.clone()),
                    None => continue,
                }
            }
            _ => (default_repo.to_owned(), default_tag.to_owned()),
        };
        let pinned_tag = if *key == "web" {
            entry.images.web.clone()
        } else {
            pinned_tag
        };
        let repo = match (*key, given_repo) {
            ("api" | "web", "") => format!("{dify_repo}-{key}"),
            (_, "") => pinned_repo.clone(),
            (_, r) => r.to_owned(),
        };
        let tag = if given_tag.is_empty() {
            pinned_tag.clone()
        } else {
            given_tag.to_owned()
        };
        let source = format!("{repo}:{tag}");
        let pinned = format!("{pinned_repo}:{pinned_tag}");
        let image = format!("{}:{tag}", with_registry(registry, &repo));
        images.insert((*component).to_owned(), image.clone());
        image_list.push(Image {
            component: (*component).to_owned(),
            overridden: source != pinned,
            image,
            source,
            pinned,
        });
    }
    Ok(Resolved {
        version,
        ports: table.ports.clone(),
        private_networks: table.private_networks.clone(),
        routes: table.routes.clone(),
        since: table.since(),
        alembic_head: entry.alembic_head.clone(),
        switches: entry.switches,
        celery_queues: entry.celery_queues,
        images,
        image_list,
    })
}
