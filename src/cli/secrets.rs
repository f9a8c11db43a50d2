//! `difyrender secrets render|apply`: the keys Secret a release reads (a catalog entry leaves it
//! out), which the operator creates once per release.

use super::args::{ReleaseArgs, RenderArgs, SecretsApplyCommand, SecretsCommand};
use super::catalog::print;
use crate::cluster::{FIELD_MANAGER, ResourceManager};
use crate::error::{Error, exit};
use crate::manifest::Resource;
use crate::release::RenderedRelease;
use crate::values::MasterKeySource;
use serde_json::{Map, Value};

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
