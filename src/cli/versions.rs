//! `difyrender images`: every image a release runs, for mirroring. `difyrender versions`: the
//! release table, and with a cluster, what a live release runs and where it can go.

use super::args::{ImagesCommand, OutputFormat, VersionsCommand};
use super::config::render_with_stand_ins;
use crate::chart::Chart;
use crate::cluster::{ResourceManager, inventory};
use crate::error::{Error, exit};
use crate::versions::{ReleaseTable, Transition, check_upgrade};
use serde::Serialize;
use serde_json::{Value, json};

pub fn images(cmd: ImagesCommand) -> Result<u8, Error> {
    let spec = cmd.render.to_spec(cmd.release.to_release()?)?;
    let rendered = render_with_stand_ins(&spec)?;
    let listed = rendered.dify.images_run(
        rendered
            .manifest
            .resources
            .iter()
            .map(|r| (r.component.as_str(), &r.body)),
    );
    let text = match cmd.output {
        OutputFormat::Text => listed.iter().map(|i| format!("{}\n", i.image)).collect(),
        OutputFormat::Json => {
            serde_json::to_string_pretty(&json!({
                "dify": rendered.dify.version,
                "images": listed,
            }))
            .expect("serialises")
                + "\n"
        }
    };
    print(&text)?;
    Ok(exit::OK)
}

/// A live release and where it can go.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Live {
    release: String,
    namespace: String,
    version: String,
    alembic_head: String,
    state: inventory::State,
    /// Releases of the table it can move to, with whether the database migrates.
    upgrades: Vec<Value>,
    /// Releases it cannot move to: their database head is older.
    refused: Vec<String>,
}

fn live_of(table: &ReleaseTable, inv: &inventory::Inventory) -> Live {
    let mut upgrades = Vec::new();
    let mut refused = Vec::new();
    for r in &table.releases {
        match check_upgrade(
            table,
            Some((&inv.dify_version, &inv.alembic_head)),
            (&r.version, &r.alembic_head),
            "",
        ) {
            Ok(Transition::Upgrade { migrates, .. }) => {
                upgrades.push(json!({"version": r.version, "migrates": migrates}))
            }
            Ok(_) => {}
            Err(_) => refused.push(r.version.clone()),
        }
    }
    Live {
        release: inv.release.clone(),
        namespace: inv.namespace.clone(),
        version: inv.dify_version.clone(),
        alembic_head: inv.alembic_head.clone(),
        state: inv.state,
        upgrades,
        refused,
    }
}

fn table_text(table: &ReleaseTable, default: &str, live: Option<&Live>) -> String {
    let mut out = format!(
        "{:<14} {:<10} {:<14} {:<8} {:<9} {:<13} NOTES\n",
        "RELEASE", "DATE", "PLUGIN-DAEMON", "SANDBOX", "WEAVIATE", "ALEMBIC"
    );
    for r in &table.releases {
        let mut notes = Vec::new();
        if r.version == default {
            notes.push("default".to_owned());
        }
        if let Some(l) = live {
            if l.version == r.version {
                notes.push(format!("running in {}/{}", l.namespace, l.release));
            } else if l.refused.contains(&r.version) {
                notes.push("refused (older database)".into());
            } else if let Some(u) = l.upgrades.iter().find(|u| u["version"] == r.version) {
                notes.push(if u["migrates"] == true {
                    "upgrade (migrates)".into()
                } else {
                    "upgrade (images only)".into()
                });
            }
        }
        let line = format!(
            "{:<14} {:<10} {:<14} {:<8} {:<9} {:<13} {}",
            r.version,
            r.date,
            r.images.plugin_daemon,
            r.images.sandbox,
            r.images.weaviate,
            r.alembic_head,
            notes.join(", ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if let Some(l) = live {
        out.push_str(&format!(
            "\nrelease {} (namespace {}) runs Dify {}{} ({:?})\n",
            l.release,
            l.namespace,
            if l.version.is_empty() {
                "(unknown)"
            } else {
                &l.version
            },
            if l.alembic_head.is_empty() {
                String::new()
            } else {
                format!(", Alembic {}", l.alembic_head)
            },
            l.state
        ));
        let upgrades: Vec<String> = l
            .upgrades
            .iter()
            .map(|u| u["version"].as_str().unwrap_or_default().to_owned())
            .collect();
        out.push_str(&format!(
            "possible upgrades: {}\n",
            if upgrades.is_empty() {
                "none (it runs the newest release)".to_owned()
            } else {
                upgrades.join(", ")
            }
        ));
        if !l.refused.is_empty() {
            out.push_str(&format!(
                "refused (their database head is older): {}\n",
                l.refused.join(", ")
            ));
        }
    }
    out
}

pub fn versions(cmd: VersionsCommand) -> Result<u8, Error> {
    cmd.release.to_release()?;
    let chart = match &cmd.chart {
        Some(dir) => Chart::from_dir(dir)?,
        None => Chart::embedded(),
    };
    let default = chart
        .default_values
        .get("images")
        .and_then(|i| i.pointer("/dify/tag"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let table = chart.versions;
    let wants_cluster = cmd.cluster.kubeconfig.is_some()
        || cmd.cluster.context.is_some()
        || std::env::var_os("KUBECONFIG").is_some();
    let live = if wants_cluster {
        let connection = cmd.cluster.connection();
        let (release, namespace) = (cmd.release.release.clone(), cmd.release.namespace.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("starting the runtime"))?;
        let inv = runtime.block_on(async {
            let mgr = ResourceManager::new(connection.client().await?);
            inventory::read(&mgr, &release, &namespace).await
        })?;
        match inv {
            Some(inv) => Some(live_of(&table, &inv)),
            None => {
                return Err(Error::Cluster(crate::cluster::Error::NotFound(format!(
                    "no release {release} in namespace {namespace}: its inventory ConfigMap {} does not exist",
                    inventory::name_of(&release)
                ))));
            }
        }
    } else {
        None
    };
    let text = match cmd.output {
        OutputFormat::Text => table_text(&table, &default, live.as_ref()),
        OutputFormat::Json => {
            serde_json::to_string_pretty(&json!({
                "default": default,
                "minimum": table.minimum,
                "releases": table.releases,
                "live": live,
            }))
            .expect("serialises")
                + "\n"
        }
    };
    print(&text)?;
    Ok(exit::OK)
}

fn print(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(Error::io("writing to stdout"))
}
