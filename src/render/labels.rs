//! The recommended labels, computed in one place so every object carries the same set and the
//! manifest check can rely on it.

use crate::objects::{
    APP_NAME, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF,
    LABEL_VERSION, MANAGED_BY,
};
use minijinja::value::Value;
use minijinja::{Error, ErrorKind, State};
use std::collections::BTreeMap;

fn global(state: &State, path: &[&str]) -> Result<String, Error> {
    let mut v = state.lookup(path[0]).unwrap_or_default();
    for part in &path[1..] {
        v = v.get_attr(part)?;
    }
    v.as_str().map(str::to_owned).ok_or_else(|| {
        Error::new(
            ErrorKind::UndefinedError,
            format!("{} is not a string", path.join(".")),
        )
    })
}

/// name, instance and component: the labels selectors use (stable across upgrades).
pub fn selector(state: &State, component: &str) -> Result<BTreeMap<String, Value>, Error> {
    let mut map = BTreeMap::new();
    map.insert(LABEL_NAME.to_owned(), Value::from(APP_NAME));
    map.insert(
        LABEL_INSTANCE.to_owned(),
        Value::from(global(state, &["Release", "name"])?),
    );
    map.insert(LABEL_COMPONENT.to_owned(), Value::from(component));
    Ok(map)
}

/// The recommended labels without the version: for immutable places (StatefulSet claim
/// templates), which must not change when the release does.
pub fn stable(state: &State, component: &str) -> Result<BTreeMap<String, Value>, Error> {
    let mut map = selector(state, component)?;
    map.insert(LABEL_PART_OF.to_owned(), Value::from(APP_NAME));
    map.insert(LABEL_MANAGED_BY.to_owned(), Value::from(MANAGED_BY));
    Ok(map)
}

/// All six recommended labels.
pub fn recommended(state: &State, component: &str) -> Result<BTreeMap<String, Value>, Error> {
    let mut map = stable(state, component)?;
    let version = global(state, &["Values", "images", "dify", "tag"])?;
    map.insert(LABEL_VERSION.to_owned(), Value::from(label_value(&version)));
    Ok(map)
}

/// A label value: at most 63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
pub fn label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// A DNS-1123 label fragment of at most `max` characters (`1.11.4` → `1-11-4`).
pub fn dns_label(s: &str, max: usize) -> String {
    let cleaned: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(max)
        .collect();
    cleaned.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_and_dns_sanitising() {
        assert_eq!(label_value("1.11.4"), "1.11.4");
        assert_eq!(label_value("1.11.4+build"), "1.11.4-build");
        assert_eq!(dns_label("1.11.4", 40), "1-11-4");
        assert_eq!(dns_label("V1_2.RC", 40), "v1-2-rc");
    }
}
