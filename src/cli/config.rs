//! Raw arguments become validated configurations before anything runs: names checked, the
//! chart loaded, the environment read once.

use super::args::{ReleaseArgs, RenderArgs};
use crate::chart::Chart;
use crate::error::Error;
use crate::manifest::COMPONENTS;
use crate::release::{self, ReleaseSpec, RenderedRelease, render_release};
use crate::render::Release;
use crate::values::ValueSources;
use crate::values::secrets::MASTER_KEY_ENV;
use serde_json::{Map, Value};

/// A Kubernetes DNS-1123 label: what namespaces and name prefixes must be.
pub fn check_dns_label(what: &str, name: &str, max: usize) -> Result<(), Error> {
    if crate::manifest::is_dns_label(name, max) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{what} {} must be 1-{max} lowercase letters, digits or '-', starting and ending with a letter or digit",
            crate::diag::excerpt(name)
        )))
    }
}

impl ReleaseArgs {
    /// The release, its names checked.
    pub fn to_release(&self) -> Result<Release, Error> {
        check_dns_label("namespace", &self.namespace, 63)?;
        // Object names are `<release>-<component>` plus suffixes; 30 leaves room for them.
        check_dns_label("release name", &self.release, 30)?;
        // Service names are DNS-1035 labels: the API server refuses `1abc-api`.
        if !self.release.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(Error::Usage(format!(
                "release name {} must start with a lowercase letter: it begins every Service name, and Service names must (DNS-1035)",
                crate::diag::excerpt(&self.release)
            )));
        }
        Ok(Release {
            name: self.release.clone(),
            namespace: self.namespace.clone(),
        })
    }
}

impl RenderArgs {
    /// What renders `release`, with the chart loaded and the environment read.
    pub fn to_spec(&self, release: Release) -> Result<ReleaseSpec, Error> {
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
            master_key_env: std::env::var_os(MASTER_KEY_ENV),
            release,
            injected: Map::new(),
            allow_unknown_release: self.allow_unknown_release,
        })
    }
}

/// Required values that neither the keys Secret nor the image list depends on, with the
/// stand-ins used when they are missing, so `secrets` and `images` need only what matters to
/// them.
const NOT_NEEDED: &[(&str, &str)] = &[
    ("expose.ingressClassName", "unused"),
    ("expose.path", "/"),
    ("external.scheme", "https"),
    ("external.host", "unused.invalid"),
    ("storage.storageClassName", "unused"),
];

/// Renders `spec`, filling required values in [`NOT_NEEDED`] with stand-ins when (and only
/// when) they are what is missing.
pub fn render_with_stand_ins(spec: &ReleaseSpec) -> Result<RenderedRelease, Error> {
    match render_release(spec) {
        Ok(r) => Ok(r),
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
            Ok(render_release(&spec)?)
        }
        Err(e) => Err(e.into()),
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

/// Longest `--timeout` accepted: a week. Far beyond any rollout, and far from the overflow
/// of adding it to the clock.
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// `90s`, `10m`, `1h30m`, or plain seconds; at most [`MAX_TIMEOUT_SECS`]. Checked with
/// arithmetic that cannot overflow, before anything runs.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, Error> {
    let shown = crate::diag::excerpt(text);
    let bad = || {
        Error::Usage(format!(
            "invalid duration {shown}: use e.g. 90s, 10m or 1h30m"
        ))
    };
    let too_long = || {
        Error::Usage(format!(
            "duration {shown} is too long: at most {MAX_TIMEOUT_SECS}s (7 days)"
        ))
    };
    let total = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>().map_err(|_| too_long())?
    } else {
        let (mut total, mut number) = (0u64, String::new());
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => return Err(bad()),
            };
            if number.is_empty() {
                return Err(bad());
            }
            let n = number.parse::<u64>().map_err(|_| too_long())?;
            total = n
                .checked_mul(unit)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(too_long)?;
            number.clear();
        }
        if !number.is_empty() || text.is_empty() || total == 0 && text != "0s" {
            return Err(bad());
        }
        total
    };
    if total > MAX_TIMEOUT_SECS {
        return Err(too_long());
    }
    Ok(std::time::Duration::from_secs(total))
}

impl super::args::ClusterArgs {
    pub fn connection(&self) -> crate::cluster::Connection {
        crate::cluster::Connection {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5m3").is_err());
        assert!(parse_duration("").is_err());
        for huge in [
            "18446744073709551615s",
            "18446744073709551615",
            "99999999999999999h",
            "184467440737095516150",
            "5124095576030431h",
            "604801",
        ] {
            let e = parse_duration(huge).unwrap_err().to_string();
            assert!(e.contains("too long"), "{huge}: {e}");
        }
        assert_eq!(parse_duration("168h").unwrap().as_secs(), MAX_TIMEOUT_SECS);
    }
}
