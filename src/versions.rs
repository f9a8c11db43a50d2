//! The release table (`versions.yaml`, next to `values.yaml`): every supported Dify release with
//! the images it pins, its Alembic head and the switches templates read. `images.dify.tag`
//! picks an entry; [`resolve`] turns the merged values into the release's full image set and
//! refuses releases that cannot work, before anything is rendered or sent to a cluster.
//! [`check_upgrade`] decides whether a live release may move to another one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One release of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DifyRelease {
    pub version: String,
    /// Commit date of the tag.
    pub date: String,
    /// The Alembic revision its migration ends at.
    pub alembic_head: String,
    pub images: PinnedTags,
    /// The default queues of the api entrypoint's worker mode.
    pub celery_queues: Vec<String>,
    /// What templates read: `Dify.switches.<name>`.
    pub switches: Map<String, Value>,
}

/// The tags a release's docker-compose.yaml pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PinnedTags {
    pub api: String,
    pub web: String,
    pub plugin_daemon: String,
    pub sandbox: String,
    pub weaviate: String,
    /// The agent stack's images (Dify 1.16.0+); absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_sandbox: Option<String>,
}

/// A tag refused with an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub prefix: String,
    pub reason: String,
}

/// The whole table, oldest release first: the list order is the upgrade order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTable {
    pub minimum: String,
    #[serde(default)]
    pub refused: Vec<Refusal>,
    /// The port each component listens on and its Service serves, by name; the same for every
    /// release. Templates read `Dify.ports.<name>`, Rust [`ReleaseTable::port`].
    pub ports: BTreeMap<String, u16>,
    /// The destinations each squid refuses, by squid: `Dify.privateNetworks.<name>`.
    #[serde(rename = "privateNetworks")]
    pub private_networks: BTreeMap<String, Vec<String>>,
    /// NKP's Traefik as Kommander installs it: the name of its IngressClass and of its Service.
    #[serde(rename = "nkpTraefik")]
    pub nkp_traefik: String,
    /// The public routes: `Dify.routes.<name>` (see versions.yaml).
    pub routes: Routes,
    pub releases: Vec<DifyRelease>,
}

/// The public routes of every release, as Dify's nginx (docker/nginx/conf.d) routes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Routes {
    /// Path prefixes the api serves, under the base path.
    pub api: Vec<String>,
    /// Added to `api` for a release with the switch `openapiRoute`.
    pub openapi: String,
    /// Files the web requests at the host's root whatever its base path.
    pub root_assets: Vec<String>,
    /// Collaboration's socket.io endpoint, at the host's root.
    pub socket_io: String,
}

/// Why a release cannot be rendered or applied, or the table cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("versions.yaml: {0}")]
    Table(String),
    #[error("images.dify.tag {version:?}: {reason}")]
    Refused { version: String, reason: String },
    #[error(
        "images.dify.tag {version:?} is below {minimum}, the oldest supported release: releases before it use another \
         Weaviate client, database service and plugin daemon than these templates render. Upgrade it with the \
         tools it was installed with to at least {minimum}, or install a supported release into a new namespace."
    )]
    TooOld { version: String, minimum: String },
    #[error(
        "images.dify.tag {version:?} is not a Dify version (MAJOR.MINOR.PATCH, e.g. 1.11.4); supported releases: {supported}"
    )]
    NotAVersion { version: String, supported: String },
    #[error(
        "images.dify.tag {version:?} is not in the release table (versions.yaml); supported releases: {supported}.\n\
         Each release pins its own plugin daemon, sandbox and Weaviate, has its own database head, Celery queues \
         and services, so an unknown release is not guessed.\n\
         To render it, add it to versions.yaml in a copy of the chart and render with --chart DIR (see \
         docs/releases.md)."
    )]
    Unknown { version: String, supported: String },
    #[error(
        "images.dify.tag {version:?} is not in the release table, and --allow-unknown-release does not guess what \
         a release needs beyond its images: its Alembic head, the Celery queues its worker must consume and the \
         switches the templates read (services, routes, variables) are release facts, and none is reused from \
         another release. To render it, copy the chart (values.yaml, values.schema.json, versions.yaml, \
         templates/), add an entry for {version} to the copy's versions.yaml with every fact from that release \
         (see docs/releases.md, \"Adding a Dify release\"), and render with --chart DIR."
    )]
    UnknownNeedsEntry { version: String },
    #[error("{0}")]
    Downgrade(String),
}

impl Error {
    /// A release the table refuses, or a table that cannot be read, is bad input.
    pub fn exit_code(&self) -> u8 {
        crate::error::exit::INPUT
    }
}

/// A version's sort key: `1.10.1-fix.1` sorts after `1.10.1` (a hotfix), `2.0.0-beta.1` before
/// `2.0.0` (a pre-release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionKey {
    numbers: [u64; 3],
    /// 0 pre-release, 1 release, 2 hotfix.
    class: u8,
    serial: u64,
}

impl VersionKey {
    pub fn parse(version: &str) -> Option<VersionKey> {
        let core = version.strip_prefix('v').unwrap_or(version);
        let (core, suffix) = match core.split_once('-') {
            Some((c, s)) => (c, Some(s)),
            None => (core, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return None;
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = part.parse().ok()?;
        }
        let (class, serial) = match suffix {
            None => (1, 0),
            Some(s) => {
                let (label, serial) = s.split_once('.').unwrap_or((s, "0"));
                if label.is_empty() || !label.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return None;
                }
                let serial = serial.parse().ok()?;
                (if label == "fix" { 2 } else { 0 }, serial)
            }
        };
        Some(VersionKey {
            numbers,
            class,
            serial,
        })
    }
}

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

impl ReleaseTable {
    /// For each boolean switch, the first release of the table where it is on, with that
    /// release's plugin daemon.
    pub fn since(&self) -> BTreeMap<String, Since> {
        let mut out = BTreeMap::new();
        for r in &self.releases {
            for (name, value) in &r.switches {
                if *value == Value::Bool(true) && !out.contains_key(name) {
                    out.insert(
                        name.clone(),
                        Since {
                            version: r.version.clone(),
                            plugin_daemon: r.images.plugin_daemon.clone(),
                        },
                    );
                }
            }
        }
        out
    }

    /// The port of `name` in the table's `ports`; the names are the chart's own, so a missing
    /// one is a defect of the embedded chart, caught by the tests.
    pub fn port(&self, name: &str) -> u16 {
        *self
            .ports
            .get(name)
            .unwrap_or_else(|| panic!("versions.yaml has no port named {name}"))
    }

    /// Reads and checks `versions.yaml`.
    pub fn parse(bytes: &[u8]) -> Result<ReleaseTable, Error> {
        let text = crate::yaml::decode_text(bytes).map_err(|e| Error::Table(format!("it{e}")))?;
        let value = crate::yaml::from_str(text).map_err(|e| Error::Table(e.to_string()))?;
        let table: ReleaseTable = serde_path_to_error::deserialize(value)
            .map_err(|e| Error::Table(format!("{}: {}", e.path(), e.inner())))?;
        table.check()?;
        Ok(table)
    }

    /// The table's own rules: versions parse and ascend, heads never come back after a newer
    /// one, every release has the same switches.
    fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Table(m));
        if self.releases.is_empty() {
            return bad("releases is empty".into());
        }
        if VersionKey::parse(&self.minimum).is_none() {
            return bad(format!("minimum {:?} is not a version", self.minimum));
        }
        let switch_names: Vec<&String> = self.releases[0].switches.keys().collect();
        let mut seen_heads: Vec<&str> = Vec::new();
        let mut previous: Option<(VersionKey, &str)> = None;
        for r in &self.releases {
            let Some(key) = VersionKey::parse(&r.version) else {
                return bad(format!("release {:?} is not a version", r.version));
            };
            if let Some((prev, prev_version)) = previous
                && key <= prev
            {
                return bad(format!(
                    "release {} comes after {prev_version} but is not newer: list releases oldest first",
                    r.version
                ));
            }
            previous = Some((key, &r.version));
            let names: Vec<&String> = r.switches.keys().collect();
            if names != switch_names {
                return bad(format!(
                    "release {} has the switches [{}], but {} has [{}]: every release needs every switch",
                    r.version,
                    names
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.releases[0].version,
                    switch_names
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if r.alembic_head.is_empty()
                || r.alembic_head.len() > 32
                || !r.alembic_head.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return bad(format!("release {} has no valid alembicHead", r.version));
            }
            match seen_heads.last() {
                Some(last) if *last == r.alembic_head => {}
                _ if seen_heads.contains(&r.alembic_head.as_str()) => {
                    return bad(format!(
                        "release {} goes back to Alembic head {} after a newer one",
                        r.version, r.alembic_head
                    ));
                }
                _ => seen_heads.push(&r.alembic_head),
            }
            for (what, tag) in [
                ("api", &r.images.api),
                ("web", &r.images.web),
                ("pluginDaemon", &r.images.plugin_daemon),
                ("sandbox", &r.images.sandbox),
                ("weaviate", &r.images.weaviate),
            ] {
                if tag.is_empty() {
                    return bad(format!("release {} has an empty images.{what}", r.version));
                }
            }
            let agent = r.switches.get("agentBackend").and_then(Value::as_bool) == Some(true);
            if agent != (r.images.agent_backend.is_some() && r.images.local_sandbox.is_some()) {
                return bad(format!(
                    "release {}: images.agentBackend and images.localSandbox are pinned exactly when \
                     the switch agentBackend is on",
                    r.version
                ));
            }
        }
        Ok(())
    }

    pub fn find(&self, version: &str) -> Option<(usize, &DifyRelease)> {
        self.releases
            .iter()
            .enumerate()
            .find(|(_, r)| r.version == version)
    }

    /// Position of the first release that migrates to `head`: the order of database heads.
    pub fn head_position(&self, head: &str) -> Option<usize> {
        self.releases.iter().position(|r| r.alembic_head == head)
    }

    pub fn supported(&self) -> String {
        let first = &self.releases[0].version;
        let last = &self.releases[self.releases.len() - 1].version;
        format!(
            "{first} to {last} ({})",
            self.releases
                .iter()
                .map(|r| r.version.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// Releases a given release can be upgraded from: every older release of the table.
    pub fn upgrades_from(&self, version: &str) -> Vec<&str> {
        let Some(key) = VersionKey::parse(version) else {
            return Vec::new();
        };
        self.releases
            .iter()
            .filter(|r| VersionKey::parse(&r.version).is_some_and(|k| k < key))
            .map(|r| r.version.as_str())
            .collect()
    }
}

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

/// The first release where a switch is on ([`ReleaseTable::since`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Since {
    pub version: String,
    pub plugin_daemon: String,
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

/// What moving a live release to another does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Transition {
    /// Nothing is installed yet.
    Install,
    /// The same Dify release.
    Same,
    /// Another release; `migrates` when the database head moves forward.
    Upgrade {
        from: String,
        to: String,
        from_head: String,
        to_head: String,
        migrates: bool,
    },
}

/// Decides whether the release recorded in the inventory (`from`: version and Alembic head) may
/// move to `to` (the same). A release whose Alembic head is older than the recorded one is
/// refused, with what to do instead: Dify's migrations never run backwards.
pub fn check_upgrade(
    table: &ReleaseTable,
    from: Option<(&str, &str)>,
    to: (&str, &str),
    place: &str,
) -> Result<Transition, Error> {
    let (to_version, to_head) = to;
    let Some((from_version, from_head)) = from.filter(|(v, _)| !v.is_empty()) else {
        return Ok(Transition::Install);
    };
    if from_version == to_version {
        return Ok(Transition::Same);
    }
    let older = match (table.head_position(from_head), table.head_position(to_head)) {
        (Some(f), Some(t)) => t < f,
        // A release outside the table: its place among the others is its version number.
        _ => match (
            VersionKey::parse(from_version),
            VersionKey::parse(to_version),
        ) {
            (Some(f), Some(t)) => t.cmp(&f) == Ordering::Less,
            _ => false,
        },
    };
    if older {
        let newer: Vec<&str> = table
            .releases
            .iter()
            .filter(|r| {
                VersionKey::parse(&r.version)
                    .zip(VersionKey::parse(from_version))
                    .is_some_and(|(k, f)| k >= f)
            })
            .map(|r| r.version.as_str())
            .collect();
        let head_text = |h: &str| {
            if h.is_empty() {
                "an unknown revision".to_owned()
            } else {
                format!("Alembic revision {h}")
            }
        };
        return Err(Error::Downgrade(format!(
            "refusing to downgrade {place} from Dify {from_version} to {}: {from_version} has migrated the database to \
             {}, and {} expects {}, an older one.\n\
             Dify's migrations never run backwards, and an older api on a newer schema can corrupt data. Nothing was \
             changed.\n\
             Instead: stay on {from_version} or move forward (possible: {}); or, to really go back, restore the \
             database backup taken before the upgrade into a new namespace and install {} there.",
            to_version,
            head_text(from_head),
            to_version,
            head_text(to_head),
            if newer.is_empty() {
                from_version.to_owned()
            } else {
                newer.join(", ")
            },
            to_version
        )));
    }
    Ok(Transition::Upgrade {
        from: from_version.to_owned(),
        to: to_version.to_owned(),
        from_head: from_head.to_owned(),
        to_head: to_head.to_owned(),
        migrates: from_head != to_head || to_head.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> ReleaseTable {
        ReleaseTable::parse(include_bytes!("../versions.yaml")).expect("the chart's table reads")
    }

    fn defaults() -> Value {
        Value::Object(crate::chart::Chart::embedded().default_values)
    }

    fn values(tag: &str) -> Value {
        let mut v = defaults();
        v["images"]["dify"]["tag"] = json!(tag);
        v
    }

    #[test]
    fn version_order() {
        let k = |v: &str| VersionKey::parse(v).unwrap();
        assert!(k("1.10.1") < k("1.10.1-fix.1"));
        assert!(k("1.10.1-fix.1") < k("1.11.0"));
        assert!(k("2.0.0-beta.2") < k("2.0.0"));
        assert!(k("1.9.2") < k("1.10.0"));
        for bad in ["latest", "1.11", "1.11.4.1", "", "1.x.0", "1.11.4-"] {
            assert!(VersionKey::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_table_is_consistent() {
        let t = table();
        assert_eq!(t.releases.first().unwrap().version, "1.10.0");
        assert_eq!(t.releases.last().unwrap().version, "1.16.1");
        assert_eq!(t.releases.len(), 20);
    }

    #[test]
    fn a_bad_table_is_refused_with_the_reason() {
        let text = String::from_utf8(include_bytes!("../versions.yaml").to_vec()).unwrap();
        let swapped = text.replacen("alembicHead: 669ffd70119c", "alembicHead: 905527cc8fd3", 1);
        let e = ReleaseTable::parse(swapped.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("goes back to Alembic head"), "{e}");
        let unknown = text.replacen(
            "date: \"2025-11-13\"",
            "date: \"2025-11-13\"\n    extra: 1",
            1,
        );
        let e = ReleaseTable::parse(unknown.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("extra"), "{e}");
        // The agent stack's images come with its switch, and only with it.
        let unpinned = text.replacen(", agentBackend: \"1.16.0\"", "", 1);
        assert_ne!(unpinned, text);
        let e = ReleaseTable::parse(unpinned.as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .contains("release 1.16.0: images.agentBackend"),
            "{e}"
        );
    }

    #[test]
    fn the_tag_picks_every_pinned_image() {
        let r = resolve(&table(), &values("1.13.3"), &defaults(), false).unwrap();
        assert_eq!(
            r.images["plugin-daemon"],
            "langgenius/dify-plugin-daemon:0.5.3-local"
        );
        assert_eq!(r.images["sandbox"], "langgenius/dify-sandbox:0.2.14");
        assert_eq!(r.images["api"], "langgenius/dify-api:1.13.3");
        assert_eq!(r.alembic_head, "6b5f9f8b1a2c");
        assert!(r.overrides().is_empty());
        let mut v = values("1.13.3");
        v["images"]["pluginDaemon"]["tag"] = json!("0.5.4-local");
        v["images"]["registry"] = json!("mirror.example.com/dify/");
        let r = resolve(&table(), &v, &defaults(), false).unwrap();
        let o = r.overrides();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].component, "plugin-daemon");
        assert_eq!(o[0].pinned, "langgenius/dify-plugin-daemon:0.5.3-local");
        assert_eq!(
            r.images["plugin-daemon"],
            "mirror.example.com/dify/langgenius/dify-plugin-daemon:0.5.4-local"
        );
        assert_eq!(
            r.images["postgresql"],
            "mirror.example.com/dify/postgres:15-alpine"
        );
    }

    #[test]
    fn refusals() {
        let t = table();
        let err = |tag: &str| resolve(&t, &values(tag), &defaults(), false).unwrap_err();
        assert!(matches!(err("2.0.0-beta.2"), Error::Refused { .. }));
        assert!(matches!(err("1.9.2"), Error::TooOld { .. }));
        assert!(matches!(err("latest"), Error::NotAVersion { .. }));
        assert!(matches!(err("1.17.0"), Error::Unknown { .. }));
        // --allow-unknown-release with every image given still gets no queues, head or
        // switches from a neighbour.
        let mut v = values("1.17.0");
        for c in ["pluginDaemon", "sandbox", "weaviate"] {
            v["images"][c]["tag"] = json!("x");
        }
        let e = resolve(&t, &v, &defaults(), true).unwrap_err();
        assert!(matches!(e, Error::UnknownNeedsEntry { .. }), "{e}");
        // Negative control: a table that has the release renders it.
        let mut with_entry = t.clone();
        let mut entry = t.releases.last().unwrap().clone();
        entry.version = "1.17.0".into();
        with_entry.releases.push(entry);
        let r = resolve(&with_entry, &v, &defaults(), true).unwrap();
        assert_eq!(r.celery_queues, t.releases.last().unwrap().celery_queues);
    }

    #[test]
    fn downgrades_are_refused_by_head_order() {
        let t = table();
        let to = |v: &'static str| (v, t.find(v).unwrap().1.alembic_head.as_str());
        let from = Some(("1.14.1", "a4f2d8c9b731"));
        let e = check_upgrade(&t, from, to("1.13.3"), "dify/dify").unwrap_err();
        assert!(e.to_string().contains("refusing to downgrade"), "{e}");
        // Same head, older images: allowed (nothing runs backwards).
        let same_head = check_upgrade(&t, Some(("1.13.3", "6b5f9f8b1a2c")), to("1.13.2"), "x");
        assert!(matches!(
            same_head,
            Ok(Transition::Upgrade {
                migrates: false,
                ..
            })
        ));
        let up = check_upgrade(&t, Some(("1.11.4", "905527cc8fd3")), to("1.13.3"), "x").unwrap();
        assert!(matches!(up, Transition::Upgrade { migrates: true, .. }));
        assert_eq!(
            check_upgrade(&t, None, to("1.13.3"), "x").unwrap(),
            Transition::Install
        );
        // Outside the table, the version number decides.
        let e = check_upgrade(&t, Some(("1.17.0", "")), to("1.14.2"), "x");
        assert!(e.is_err());
        assert!(check_upgrade(&t, Some(("1.14.1", "a4f2d8c9b731")), ("1.17.0", ""), "x").is_ok());
    }
}
