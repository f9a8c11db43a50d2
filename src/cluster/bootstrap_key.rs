//! The bootstrap Job's provider key, when it lives in a Secret the release does not render
//! (`bootstrap.provider.apiKeySecret`, always for `openai-compatible`; or the operator's
//! `secrets.existingSecret`). apply and diff read it before they render for good, so that the
//! Job's inputs checksum — its name — follows the key: a changed key runs the Job again and
//! rotates the credential (docs/bootstrap.md). `render` reads no cluster and goes without it.
//!
//! The read is one GET of one Secret (the API server bounds a Secret's data at 1 MiB). The
//! value goes nowhere but into the HMAC: it is registered as a secret first, so no message can
//! show it, and no error here names it.

use super::{Error, ResourceManager};
use crate::manifest::Manifest;
use base64::Engine;
use serde_json::Value;

/// The `(Secret, key)` the bootstrap Job reads `PROVIDER_API_KEY` from, when the manifest does
/// not render that Secret (then the render knows the key already). None without bootstrap.
pub fn provider_key_ref(manifest: &Manifest) -> Option<(String, String)> {
    let job = manifest
        .resources
        .iter()
        .find(|r| r.kind == "Job" && r.component == "bootstrap")?;
    let env = job
        .body
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)?;
    let reference = env
        .iter()
        .find(|e| e["name"] == "PROVIDER_API_KEY")?
        .pointer("/valueFrom/secretKeyRef")?;
    let name = reference["name"].as_str()?;
    let key = reference["key"].as_str()?;
    let rendered = manifest
        .resources
        .iter()
        .any(|r| r.kind == "Secret" && r.name == name);
    (!rendered).then(|| (name.to_owned(), key.to_owned()))
}

/// Reads the provider key from its Secret in `namespace`. `Ok(None)` when there is none to read
/// (no bootstrap, or a Secret the release renders) or when the Secret or its key is missing:
/// doctor (`bootstrap key`) and apply's check of the Secrets the pods read say so, as before.
pub async fn read_provider_key(
    mgr: &ResourceManager,
    manifest: &Manifest,
    namespace: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let Some((name, key)) = provider_key_ref(manifest) else {
        return Ok(None);
    };
    let Some(secret) = mgr
        .get_object("v1", "Secret", Some(namespace), &name)
        .await?
    else {
        return Ok(None);
    };
    let Some(encoded) = secret.pointer("/data").and_then(|d| d.get(&key)) else {
        return Ok(None);
    };
    let Some(bytes) = encoded
        .as_str()
        .and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok())
        .filter(|b| !b.is_empty())
    else {
        return Ok(None);
    };
    if let Ok(text) = std::str::from_utf8(&bytes) {
        crate::diag::register_secret(text);
        crate::diag::register_secret(text.trim());
    }
    Ok(Some(bytes))
}
