//! Raw arguments become validated configurations before anything runs: names checked, the
//! chart loaded, the environment read once.

use super::args::RenderArgs;
use crate::chart::Chart;
use crate::error::Error;
use crate::manifest::COMPONENTS;
use crate::release::ReleaseSpec;
use crate::render::Release;
use crate::values::ValueSources;
use crate::values::secrets::MASTER_KEY_ENV;
use serde_json::Map;

/// A Kubernetes DNS-1123 label: what namespaces and name prefixes must be.
pub fn check_dns_label(what: &str, name: &str, max: usize) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{what} {name:?} must be 1-{max} lowercase letters, digits or '-', starting and ending with a letter or digit"
        )))
    }
}

impl RenderArgs {
    /// The release to render, with the chart loaded and the environment read.
    pub fn to_spec(&self) -> Result<ReleaseSpec, Error> {
        check_dns_label("namespace", &self.namespace, 63)?;
        // Object names are `<release>-<component>` plus suffixes; 30 leaves room for them.
        check_dns_label("release name", &self.release, 30)?;
        let chart = match &self.chart {
            Some(dir) => Chart::from_dir(dir)?,
            None => Chart::embedded(),
        };
        Ok(ReleaseSpec {
            chart,
            sources: ValueSources {
                files: self.values.clone(),
                set_json: self.set_json.clone(),
                set: self.set.clone(),
                set_string: self.set_string.clone(),
                set_file: self.set_file.clone(),
            },
            secret_key_file: self.secret_key_file.clone(),
            master_key_env: std::env::var(MASTER_KEY_ENV).ok(),
            release: Release {
                name: self.release.clone(),
                namespace: self.namespace.clone(),
            },
            injected: Map::new(),
        })
    }
}

/// `--show-only` names must be real components.
pub fn check_components(names: &[String]) -> Result<(), Error> {
    for name in names {
        if !COMPONENTS.contains(&name.as_str()) {
            return Err(Error::Usage(format!(
                "unknown component {name:?} for --show-only; known: {}",
                COMPONENTS.join(", ")
            )));
        }
    }
    Ok(())
}
