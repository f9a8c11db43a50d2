//! `catalog --keys in-cluster`: the keys Secret filled in inside the cluster by a Job of the
//! entry, so that enabling the application needs no step on the operator's machine
//! (docs/catalog.md, "Keys in the cluster").
//!
//! The entry holds no key and no master key. It carries the keys Secret's *recipe* — for each
//! key of the Secret `difyrender secrets render` writes, the master key itself or the purpose,
//! format and length it is derived with (`src/values/secrets.rs`) — and a Job that reads the
//! master key from the form's `masterKey` field (a FederatedSecret), or keeps the one the Secret
//! has, or generates one, and adds the missing keys. Least privilege: the Job's service account
//! may `get` and `patch` that one Secret and nothing else; Flux creates the Secret empty once
//! (`ssa: IfNotPresent`) and never prunes it, so the keys outlive the application like the
//! volumes whose passwords they are.

use super::inputs::SecretField;
use super::manifests::{FLUX_FORCE, FLUX_PRUNE, escape_for_flux};
use super::{Error, RELEASE_NAME_VAR, RELEASE_NAMESPACE_VAR};
use crate::values::secrets::{
    DERIVED_KEYS, KeyFormat, MIN_MASTER_KEY_CHARS, MIN_MASTER_KEY_DISTINCT, derive_key,
    percent_encode,
};
use base64::Engine;
use serde_json::{Map, Value, json};

/// The Job's script (standard-library Python, run by the api image's python3).
pub const SCRIPT: &str = include_str!("derive_keys.py");
/// Flux: create the object only when it is missing, never update it.
const FLUX_SSA: &str = "kustomize.toolkit.fluxcd.io/ssa";
/// The form field of the master key.
pub const MASTER_KEY_FIELD: &str = "masterKey";

/// The Secret the form's `masterKey` field makes (a FederatedSecret), which the Job reads.
pub fn master_key_secret(app_name: &str) -> String {
    format!("{app_name}-master-key")
}

/// How the Job makes each key of the keys Secret, from the Secret rendered with a known master
/// key (the catalog's placeholder, or the operator's): every key must be the master key or
/// derived from it. A key set explicitly (`secrets.postgresPassword`, `secrets.qdrantApiKey`,
/// `secrets.openaiApiKey` …) cannot be made in the cluster and is refused, by name.
pub fn recipe(keys_secret: &Value) -> Result<Vec<Value>, Error> {
    let data = keys_secret
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let decoded = |v: &Value| -> String {
        v.as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    };
    let master = data.get("SECRET_KEY").map(decoded).unwrap_or_default();
    if master.is_empty() {
        return Err(Error::KeysInCluster(
            "the keys Secret has no SECRET_KEY to derive from".into(),
        ));
    }
    let mut out = Vec::new();
    for (key, value) in &data {
        let value = decoded(value);
        if key == "SECRET_KEY" {
            out.push(json!({"key": key}));
            continue;
        }
        let spec = DERIVED_KEYS.iter().find(|spec| {
            let derived = derive_key(&master, spec);
            value == derived || value == percent_encode(&derived)
        });
        let Some(spec) = spec else {
            return Err(Error::KeysInCluster(format!(
                "{key} of the keys Secret is set explicitly, not derived from the master key, so \
                 the cluster cannot make it: leave it out of the values, or keep the keys step \
                 (`catalog` without --keys in-cluster, then `difyrender secrets apply`)"
            )));
        };
        let format = match spec.format {
            KeyFormat::Hex => "hex",
            KeyFormat::Password => "password",
            KeyFormat::Base64Url32 => "base64url32",
        };
        out.push(json!({
            "key": key,
            "purpose": spec.purpose,
            "format": format,
            "length": spec.length,
        }));
    }
    Ok(out)
}

/// Metadata of one object: `name` in the release namespace, with `labels`.
fn meta(name: &str, labels: &Value) -> Value {
    json!({"name": name, "namespace": RELEASE_NAMESPACE_VAR, "labels": labels})
}

/// The objects of the keys Job, as (file name, object) for `manifests/`: the service account,
/// its Role on the one Secret and the binding, the Secret itself (created empty, once), the
/// script and the Job. `keys_secret` is the Secret's name in the entry (`${releaseName}-keys`);
/// `migration` is the entry's migration Job, whose image, pull secrets, security contexts and
/// labels the Job takes (the same api image, so nothing new to mirror).
pub fn objects(
    app_name: &str,
    keys_secret: &str,
    recipe: &[Value],
    migration: &Value,
) -> Vec<(String, Value)> {
    let name = format!("{RELEASE_NAME_VAR}-keys-job");
    let mut labels = migration["metadata"]["labels"].clone();
    labels["app.kubernetes.io/component"] = json!("keys");
    let mut secret_labels = labels.clone();
    secret_labels["app.kubernetes.io/component"] = json!("secrets");
    let pod = &migration["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let recipe_text = serde_json::to_string(recipe).expect("JSON");
    let env = json!([
        {"name": "KEYS_SECRET", "value": keys_secret},
        {"name": "KEYS_RECIPE", "value": escape_for_flux(&recipe_text)},
        {"name": "MASTER_KEY", "valueFrom": {"secretKeyRef": {
            "name": master_key_secret(app_name), "key": "SECRET_KEY", "optional": true}}},
        {"name": "MIN_MASTER_KEY_CHARS", "value": MIN_MASTER_KEY_CHARS.to_string()},
        {"name": "MIN_MASTER_KEY_DISTINCT", "value": MIN_MASTER_KEY_DISTINCT.to_string()},
    ]);
    let mut security = container["securityContext"].clone();
    security["readOnlyRootFilesystem"] = json!(true);
    let pod_spec = json!({
        "restartPolicy": "Never",
        "enableServiceLinks": false,
        "serviceAccountName": name,
        "automountServiceAccountToken": true,
        "securityContext": pod["securityContext"],
        "imagePullSecrets": pod.get("imagePullSecrets").cloned().unwrap_or(json!([])),
        "containers": [{
            "name": "keys",
            "image": container["image"],
            "imagePullPolicy": container["imagePullPolicy"],
            "command": ["python3", "/difyrender/derive_keys.py"],
            "env": env,
            "securityContext": security,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {
                "requests": {"cpu": "10m", "memory": "32Mi"},
                "limits": {"cpu": "200m", "memory": "128Mi"},
            },
            "volumeMounts": [{"name": "script", "mountPath": "/difyrender", "readOnly": true}],
        }],
        "volumes": [{"name": "script", "configMap": {"name": name, "defaultMode": 0o444}}],
    });
    // A Job's pod template cannot change: the Job is named after it, so a regenerated entry
    // with another recipe or script runs a new Job (which changes no key the Secret has).
    let hash = {
        use sha2::Digest;
        let pod = serde_json::to_string(&pod_spec).expect("JSON");
        hex::encode(sha2::Sha256::digest(format!("{pod}\n{SCRIPT}").as_bytes()))
    };
    let mut job_annotations = Map::new();
    job_annotations.insert(FLUX_FORCE.to_owned(), json!("enabled"));
    let mut secret_annotations = Map::new();
    secret_annotations.insert(FLUX_SSA.to_owned(), json!("IfNotPresent"));
    secret_annotations.insert(FLUX_PRUNE.to_owned(), json!("disabled"));
    let mut secret_meta = meta(keys_secret, &secret_labels);
    secret_meta["annotations"] = Value::Object(secret_annotations);
    let mut job_meta = meta(&format!("{name}-{}", &hash[..8]), &labels);
    job_meta["annotations"] = Value::Object(job_annotations);
    vec![
        (
            "2-serviceaccount-keys-job.yaml".to_owned(),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(&name, &labels),
                   "automountServiceAccountToken": false}),
        ),
        (
            "2-role-keys-job.yaml".to_owned(),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": meta(&name, &labels),
                   "rules": [{"apiGroups": [""], "resources": ["secrets"],
                              "resourceNames": [keys_secret], "verbs": ["get", "patch"]}]}),
        ),
        (
            "2-rolebinding-keys-job.yaml".to_owned(),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": meta(&name, &labels),
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "name": name,
                                 "namespace": RELEASE_NAMESPACE_VAR}]}),
        ),
        (
            "2-secret-keys.yaml".to_owned(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": secret_meta, "type": "Opaque"}),
        ),
        (
            "2-configmap-keys-job.yaml".to_owned(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&name, &labels),
                   "data": {"derive_keys.py": escape_for_flux(SCRIPT)}}),
        ),
        (
            format!("2-job-keys-job-{}.yaml", &hash[..8]),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
                   "spec": {"backoffLimit": 2, "activeDeadlineSeconds": 600,
                            "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}),
        ),
    ]
}

/// The form's `masterKey` field: optional, a `password` field; empty keeps the Secret's master
/// key, or has one generated. Its FederatedSecret makes `<app>-master-key`, which the Job reads
/// (optionally).
pub fn master_key_field(app_name: &str) -> SecretField {
    SecretField {
        name: MASTER_KEY_FIELD,
        label: "Master key",
        description: format!(
            "Dify's SECRET_KEY, from which every other key is derived in the cluster (at least {MIN_MASTER_KEY_CHARS} characters, e.g. `openssl rand -hex 32`; keep it in your secret store). Leave it empty to keep the key the deployment has, or to have one generated and kept in the keys Secret."
        ),
        required: false,
        pattern: (
            format!("^([^\\s]{{{MIN_MASTER_KEY_CHARS},}})?$"),
            format!("at least {MIN_MASTER_KEY_CHARS} characters, without spaces"),
        ),
        secret: master_key_secret(app_name),
        key: "SECRET_KEY".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> Value {
        let data: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        json!({"data": data})
    }

    #[test]
    fn every_key_is_the_master_key_or_derived_and_explicit_ones_are_refused() {
        let m = "a-master-key-with-enough-characters";
        let db = derive_key(m, &DERIVED_KEYS[0]);
        let admin = DERIVED_KEYS
            .iter()
            .find(|s| s.purpose == "admin-password")
            .unwrap();
        let r = recipe(&secret(&[
            ("SECRET_KEY", m),
            ("DB_PASSWORD", &db),
            ("ADMIN_PASSWORD", &derive_key(m, admin)),
        ]))
        .unwrap();
        assert_eq!(
            r,
            vec![
                json!({"key": "SECRET_KEY"}),
                json!({"key": "DB_PASSWORD", "purpose": "postgres-password", "format": "hex", "length": 64}),
                json!({"key": "ADMIN_PASSWORD", "purpose": "admin-password", "format": "password", "length": 32}),
            ]
        );
        let err = recipe(&secret(&[("SECRET_KEY", m), ("DB_PASSWORD", "chosen")])).unwrap_err();
        assert!(err.to_string().contains("DB_PASSWORD"), "{err}");
        assert!(recipe(&secret(&[("DB_PASSWORD", &db)])).is_err());
    }
}
