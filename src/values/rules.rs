//! Rules between values that a schema cannot state, checked after the schema and before any
//! rendering. Each refusal names the value key, in the form of a schema violation.

use super::{SchemaViolation, UserValues};
use serde_json::Value;

/// The chart's key names in the keys Secret (the layout `secrets.existingSecret` must have).
pub const CHART_KEYS: &[&str] = &[
    "SECRET_KEY",
    "DB_PASSWORD",
    "REDIS_PASSWORD",
    "REDIS_PASSWORD_URL",
    "SANDBOX_API_KEY",
    "PLUGIN_DAEMON_KEY",
    "PLUGIN_INNER_API_KEY",
    "WEAVIATE_API_KEY",
    "INIT_PASSWORD",
    "ADMIN_PASSWORD",
];

fn violation(path: &str, message: String, user: &UserValues) -> SchemaViolation {
    let pointer = format!("/{}", path.replace('.', "/"));
    SchemaViolation {
        path: path.to_owned(),
        message,
        origin: user.origin_of(&pointer).map(str::to_owned),
    }
}

fn text<'a>(values: &'a Value, pointer: &str) -> &'a str {
    values
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Checks the merged values (`values`); `user` names the source of each refused value.
pub fn check(values: &Value, user: &UserValues) -> Result<(), Vec<SchemaViolation>> {
    let mut out = Vec::new();
    let existing = text(values, "/secrets/existingSecret");
    let mapping = values
        .pointer("/secrets/existingSecretKeys")
        .and_then(Value::as_object);
    if let Some(mapping) = mapping.filter(|m| !m.is_empty() && !existing.is_empty()) {
        // Two chart keys read from one key of the Secret would make one the other's value
        // (DB_PASSWORD silently the master key).
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for chart_key in CHART_KEYS {
            let name = mapping
                .get(*chart_key)
                .and_then(Value::as_str)
                .unwrap_or(chart_key);
            if let Some((other, _)) = seen.iter().find(|(_, n)| *n == name) {
                out.push(violation(
                    &format!("secrets.existingSecretKeys.{chart_key}"),
                    format!(
                        "reads the Secret's key {} that {other} reads too; every key needs its own",
                        crate::diag::excerpt(name)
                    ),
                    user,
                ));
            }
            seen.push((chart_key, name));
        }
    }
    // The release is what migrates: an api image of another release would run its migrations
    // (an irreversible schema upgrade) while the gate, the inventory and the downgrade guard
    // all follow images.dify.tag.
    let release = text(values, "/images/dify/tag");
    let api_tag = text(values, "/images/api/tag");
    if !api_tag.is_empty() && api_tag != release {
        out.push(violation(
            "images.api.tag",
            format!(
                "{} is not the release {} (images.dify.tag): the api image runs the migration of its own release; change the release with images.dify.tag (or --release) instead",
                crate::diag::excerpt(api_tag),
                crate::diag::excerpt(release)
            ),
            user,
        ));
    }
    if !text(values, "/expose/tls/clusterIssuer").is_empty()
        && text(values, "/expose/tls/secretName").is_empty()
    {
        out.push(violation(
            "expose.tls.clusterIssuer",
            "needs expose.tls.secretName: cert-manager issues a certificate into the Secret the Ingress names, and without one it ignores the annotation".into(),
            user,
        ));
    }
    let admin = text(values, "/secrets/adminPassword");
    if !admin.is_empty()
        && !super::secrets::key_has_format(admin, super::secrets::KeyFormat::Password)
    {
        out.push(violation(
            "secrets.adminPassword",
            "needs at least 8 characters with a letter and a digit: Dify refuses any other account password".into(),
            user,
        ));
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Checks what the user set, before anything is injected (the master key; `secrets render`
/// clears `secrets.existingSecret` to print the Secret to provide): a master key given in the
/// values has no effect when the keys come from `secrets.existingSecret`, and key names for
/// `secrets.existingSecret` have none without it.
pub fn check_user(user: &UserValues) -> Result<(), Vec<SchemaViolation>> {
    let values = Value::Object(user.merged.clone());
    let existing = text(&values, "/secrets/existingSecret");
    let mut out = Vec::new();
    if !existing.is_empty() && !text(&values, "/secrets/difySecretKey").is_empty() {
        out.push(violation(
            "secrets.difySecretKey",
            "has no effect with secrets.existingSecret: the keys come from that Secret; put it there instead".into(),
            user,
        ));
    }
    let mapping = values
        .pointer("/secrets/existingSecretKeys")
        .and_then(Value::as_object);
    if existing.is_empty() && mapping.is_some_and(|m| !m.is_empty()) {
        out.push(violation(
            "secrets.existingSecretKeys",
            "has no effect without secrets.existingSecret (the chart's own keys Secret uses the chart's key names); remove it or set secrets.existingSecret".into(),
            user,
        ));
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}
