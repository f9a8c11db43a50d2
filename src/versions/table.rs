//! The table itself: its releases, ports, networks and routes, and the rules it must keep.

use super::{Error, VersionKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
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

/// The first release where a switch is on ([`ReleaseTable::since`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Since {
    pub version: String,
    pub plugin_daemon: String,
}
