//! The operator's choices at "Enable" (NKP 2.17+ declarative user inputs): `user-inputs.yaml`,
//! the form whose answers Kommander writes into the ConfigMap `<app>-config-overrides`, and the
//! Flux variables the manifests read them through (`postBuild.substituteFrom`).
//!
//! Each choice is a Flux variable with the value the entry was generated with as its default,
//! `${externalHost:=192.0.2.10}`: Flux's envsubst uses the default when the variable is unset or
//! empty, so the same entry deploys unchanged on NKP 2.16 (no form, no ConfigMap; the reference
//! is `optional`) and with the form's answers on 2.17+. Every answer has a default, so none can be
//! missing; a wrong one (a size that is no quantity) is refused by the API server at Flux's dry
//! run, and the Kustomization reports it.
//!
//! Only non-secret choices are variables. The model provider's API key, when the bootstrap Job
//! reads it from a Secret of its own (`bootstrap.provider.apiKeySecret`), is a `password` field
//! whose FederatedSecret template makes that Secret ([`ModelKey`]); Flux never sees it.
//! With `secrets.externalSecret`, the store and the
//! store's entry the keys come from are choices too (one entry per instance, no step at all).
//! Otherwise the keys stay in `${releaseName}-keys`, which the operator creates with
//! `difyrender secrets apply`: every key but the master key is
//! HMAC-SHA256 of it, and neither the form's templates (`{{ field }}` substitution) nor Flux's
//! post-build substitution can compute one (docs/catalog.md, "Why a Job"); with
//! `catalog --keys in-cluster` a Job of the entry does ([`super::keys`]).

use serde_json::{Value, json};

/// The schema `user-inputs.yaml` declares.
pub const USER_INPUTS_SCHEMA: &str = "catalog.nkp.nutanix.com/v1/application-user-inputs";
/// Flux variable of the URL's host.
pub const HOST_VAR: &str = "externalHost";
/// Flux variable of the storage class of every volume.
pub const STORAGE_CLASS_VAR: &str = "storageClassName";
/// Flux variable of the External Secrets store the keys come from.
pub const STORE_VAR: &str = "keysStoreName";
/// Flux variable of the store's entry that holds the keys.
pub const REMOTE_KEY_VAR: &str = "keysRemoteKey";
/// A store's entry: a path without spaces, braces or quotes.
const REMOTE_KEY_REGEX: &str = "^[A-Za-z0-9_./@:-]+$";
/// A Kubernetes quantity as a volume size is written (`10Gi`, `500M`).
const QUANTITY_REGEX: &str = "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$";
/// A DNS name or an IPv4 address, as `external.host` accepts.
const HOST_REGEX: &str = "^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$";
/// A StorageClass name (a DNS subdomain).
const CLASS_REGEX: &str = "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$";

/// The ConfigMap the form's answers go to, which the entry's Flux Kustomization reads.
pub fn config_overrides_name(app_name: &str) -> String {
    format!("{app_name}-config-overrides")
}

/// The form field of the model provider's API key.
pub const MODEL_KEY_FIELD: &str = "modelApiKey";

/// The bootstrap Job's provider key when it comes from a Secret the operator provides
/// (`bootstrap.provider.apiKeySecret`): the form asks for it as a `password` field, and its
/// `FederatedSecret` template makes exactly that Secret on every cluster of the deployment. The
/// key is in neither Git nor the catalog: Kommander keeps the answer in the FederatedSecret.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelKey {
    /// The Secret and its key, as the Job reads them.
    pub secret: String,
    pub key: String,
    /// `apiKeySecret.optional`: the field may be left empty (the Job then sets up no model).
    pub optional: bool,
}

impl ModelKey {
    /// The key's Secret of a bootstrap that reads one (`bootstrap.enabled` and
    /// `bootstrap.provider.apiKeySecret.name`); None otherwise.
    pub fn of(values: &Value) -> Option<ModelKey> {
        let secret = crate::values::text_at(values, "/bootstrap/provider/apiKeySecret/name");
        (values.pointer("/bootstrap/enabled") == Some(&Value::Bool(true)) && !secret.is_empty())
            .then(|| ModelKey {
                secret,
                key: crate::values::text_at(values, "/bootstrap/provider/apiKeySecret/key"),
                optional: values.pointer("/bootstrap/provider/apiKeySecret/optional")
                    == Some(&Value::Bool(true)),
            })
    }

    /// The form's field and its FederatedSecret.
    pub fn secret_field(&self) -> SecretField {
        let empty = if self.optional {
            " Leave it empty to add models in Dify's console instead."
        } else {
            ""
        };
        SecretField {
            name: MODEL_KEY_FIELD,
            label: "Model API key",
            description: format!(
                "The model provider's API key: the bootstrap Job adds the provider's credential and the default model with it. Kept in the Secret {} (key {}) of the deployment's namespace.{empty}",
                self.secret, self.key
            ),
            required: !self.optional,
            pattern: (KEY_REGEX.to_owned(), "one line, without spaces".to_owned()),
            secret: self.secret.clone(),
            key: self.key.clone(),
        }
    }
}

/// A `password` field of the form and the FederatedSecret Kommander creates from its answer:
/// NKP's federation makes the Secret `spec.template` describes in the deployment's namespace of
/// each cluster the placement selects (every cluster of the workspace or project).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretField {
    pub name: &'static str,
    pub label: &'static str,
    pub description: String,
    pub required: bool,
    /// (regex, message) the form checks the answer with.
    pub pattern: (String, String),
    /// The Secret the answer goes to, under `key`.
    pub secret: String,
    pub key: String,
}

impl SecretField {
    pub fn field(&self) -> Value {
        json!({
            "name": self.name,
            "label": self.label,
            "type": "password",
            "description": self.description,
            "required": self.required,
            "validations": [{
                "type": "pattern",
                "regex": self.pattern.0,
                "message": self.pattern.1,
            }],
        })
    }

    pub fn template(&self) -> Value {
        json!({
            "apiVersion": "types.kubefed.io/v1beta1",
            "kind": "FederatedSecret",
            "metadata": {"name": self.secret},
            "spec": {
                "placement": {"clusterSelector": {}},
                "template": {
                    "type": "Opaque",
                    "stringData": {self.key.clone(): format!("{{{{ {} }}}}", self.name)},
                },
            },
        })
    }
}

/// An API key: one line without whitespace, or nothing (an optional field left empty).
const KEY_REGEX: &str = "^[^\\s]*$";

/// One choice: a form field and the Flux variable of the same name.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub name: String,
    pub label: String,
    pub description: String,
    /// The value the entry was generated with: the field's default and the variable's.
    pub default: String,
    /// (regex, message) the form checks the answer with.
    pub pattern: (&'static str, &'static str),
}

impl Variable {
    /// The reference the manifests carry: `${name:=default}`.
    pub fn reference(&self) -> String {
        format!("${{{}:={}}}", self.name, self.default)
    }
}

/// The choices found while converting the objects, in order of first use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variables(pub Vec<Variable>);

impl Variables {
    /// The reference for `name`, registering the variable on first use.
    fn use_var(&mut self, make: impl FnOnce() -> Variable) -> String {
        let var = make();
        match self.0.iter().find(|v| v.name == var.name) {
            Some(known) => known.reference(),
            None => {
                let r = var.reference();
                self.0.push(var);
                r
            }
        }
    }
}

fn host_var(host: &str) -> Variable {
    Variable {
        name: HOST_VAR.to_owned(),
        label: "External host".to_owned(),
        description: "The host name or IP address browsers use to reach Dify: the Traefik \
                      LoadBalancer address (kubectl get svc -n kommander kommander-traefik) or a \
                      DNS name that points at it."
            .to_owned(),
        default: host.to_owned(),
        pattern: (
            HOST_REGEX,
            "a DNS name or an IP address, without scheme or path",
        ),
    }
}

fn class_var(class: &str) -> Variable {
    Variable {
        name: STORAGE_CLASS_VAR.to_owned(),
        label: "Storage class".to_owned(),
        description: "The StorageClass of every volume (uploads, plugins and the bundled \
                      datastores). NKP's default is nutanix-volume."
            .to_owned(),
        default: class.to_owned(),
        pattern: (CLASS_REGEX, "a StorageClass name"),
    }
}

fn store_var(store: &str) -> Variable {
    Variable {
        name: STORE_VAR.to_owned(),
        label: "External Secrets store".to_owned(),
        description: "The SecretStore or ClusterSecretStore (the kind is fixed by the entry) the \
                      External Secrets Operator reads the keys from."
            .to_owned(),
        default: store.to_owned(),
        pattern: (CLASS_REGEX, "a store name"),
    }
}

fn remote_key_var(key: &str) -> Variable {
    Variable {
        name: REMOTE_KEY_VAR.to_owned(),
        label: "Keys entry in the store".to_owned(),
        description: "The entry of the store whose properties are this instance's keys, in the \
                      layout `difyrender secrets render` prints: one entry per instance."
            .to_owned(),
        default: key.to_owned(),
        pattern: (REMOTE_KEY_REGEX, "a path such as dify/production"),
    }
}

/// `plugin-daemon` → `pluginDaemonStorageSize`; the file storage claim is `fileStorageSize`.
fn size_var_name(short: &str) -> String {
    if short == "storage" {
        return "fileStorageSize".to_owned();
    }
    let mut out = String::new();
    let mut upper = false;
    for c in short.chars() {
        if c == '-' || c == '.' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out.push_str("StorageSize");
    out
}

fn size_var(short: &str, size: &str, stateful: bool) -> Variable {
    let what = match short {
        "storage" => "file storage (uploads)".to_owned(),
        "plugin-daemon" => "the plugin daemon's volume (installed plugins)".to_owned(),
        other => format!("{other}'s volume"),
    };
    Variable {
        name: size_var_name(short),
        label: format!("Size of {what}"),
        description: if stateful {
            "A Kubernetes quantity such as 10Gi. It applies when the volume is created: a \
             StatefulSet's volume sizes cannot change afterwards."
                .to_owned()
        } else {
            "A Kubernetes quantity such as 10Gi. A larger size later expands the volume if its \
             StorageClass allows it; a smaller one is refused."
                .to_owned()
        },
        default: size.to_owned(),
        pattern: (QUANTITY_REGEX, "a quantity such as 10Gi"),
    }
}

/// Replaces the host in a URL string: after `://`, followed by the end, `/` or `:`.
fn replace_host(text: &str, host: &str, reference: &str) -> Option<String> {
    let needle = format!("://{host}");
    if !text.contains(&needle) {
        return None;
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        let after = &rest[i + needle.len()..];
        let bounded = after.is_empty() || after.starts_with(['/', ':']);
        out.push_str(&rest[..i + 3]);
        out.push_str(if bounded { reference } else { host });
        rest = after;
    }
    out.push_str(rest);
    Some(out)
}

fn replace_strings(value: &mut Value, host: &str, vars: &mut Variables) {
    match value {
        Value::String(s) if s.contains(&format!("://{host}")) => {
            let reference = host_var(host).reference();
            if let Some(new) = replace_host(s, host, &reference)
                && new != *s
            {
                vars.use_var(|| host_var(host));
                *s = new;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| replace_strings(i, host, vars)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_strings(v, host, vars)),
        _ => {}
    }
}

/// The storage class and size of one claim (spec) as variables.
fn parametrize_claim(spec: &mut Value, short: &str, stateful: bool, vars: &mut Variables) {
    if let Some(Value::String(class)) = spec.get_mut("storageClassName")
        && !class.is_empty()
    {
        let default = class.clone();
        *class = vars.use_var(|| class_var(&default));
    }
    if let Some(Value::String(size)) = spec.pointer_mut("/resources/requests/storage") {
        let default = size.clone();
        *size = vars.use_var(|| size_var(short, &default, stateful));
    }
}

/// Puts the variables into one converted object (after `$` was escaped for Flux): the host of
/// every URL and Ingress rule, and the storage class and size of every claim. `short` is the
/// object's name without the release prefix.
pub fn parametrize(body: &mut Value, kind: &str, short: &str, host: &str, vars: &mut Variables) {
    if !host.is_empty() {
        replace_strings(body, host, vars);
        if kind == "Ingress"
            && let Some(Value::Array(rules)) = body.pointer_mut("/spec/rules")
        {
            for rule in rules {
                if let Some(Value::String(h)) = rule.get_mut("host")
                    && h == host
                {
                    *h = vars.use_var(|| host_var(host));
                }
            }
        }
    }
    match kind {
        "ExternalSecret" => {
            if let Some(Value::String(store)) = body.pointer_mut("/spec/secretStoreRef/name") {
                let default = store.clone();
                *store = vars.use_var(|| store_var(&default));
            }
            if let Some(Value::Array(from)) = body.pointer_mut("/spec/dataFrom") {
                for f in from {
                    if let Some(Value::String(key)) = f.pointer_mut("/extract/key") {
                        let default = key.clone();
                        *key = vars.use_var(|| remote_key_var(&default));
                    }
                }
            }
        }
        "PersistentVolumeClaim" => {
            if let Some(spec) = body.get_mut("spec") {
                parametrize_claim(spec, short, false, vars);
            }
        }
        "StatefulSet" => {
            if let Some(Value::Array(templates)) = body.pointer_mut("/spec/volumeClaimTemplates") {
                let single = templates.len() == 1;
                for t in templates {
                    let name = t
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("data")
                        .to_owned();
                    let short = if single {
                        short.to_owned()
                    } else {
                        format!("{short}-{name}")
                    };
                    if let Some(spec) = t.get_mut("spec") {
                        parametrize_claim(spec, &short, true, vars);
                    }
                }
            }
        }
        _ => {}
    }
}

/// `user-inputs.yaml`: one group of the variables, two read-only fields that say what the entry
/// fixes (the release and the path), and the ConfigMap template Kommander renders the answers
/// into.
/// Secret fields come after the variables, each with the FederatedSecret template that makes
/// its Secret: the model key ([`ModelKey`]) and, with `catalog --keys in-cluster`, the master key
/// (`super::keys`).
pub fn user_inputs_yaml(
    app_name: &str,
    version: &str,
    path: &str,
    vars: &Variables,
    secret_fields: &[SecretField],
) -> String {
    let mut fields = vec![
        json!({
            "name": "release",
            "label": "Dify release",
            "type": "string",
            "description": "The Dify release of this version of the entry (its images and its database migrations); choose another version of the application for another release.",
            "default": version,
            "readOnly": true,
        }),
        json!({
            "name": "path",
            "label": "Path",
            "type": "string",
            "description": "The URL path Dify is served under. It is fixed when the entry is generated: serving under a sub-path needs a web image built for that path.",
            "default": path,
            "readOnly": true,
        }),
    ];
    // The host first, then the storage class, then the sizes in apply order.
    let rank = |v: &&Variable| match v.name.as_str() {
        HOST_VAR => 0,
        STORE_VAR => 1,
        REMOTE_KEY_VAR => 2,
        STORAGE_CLASS_VAR => 3,
        _ => 4,
    };
    let mut ordered: Vec<&Variable> = vars.0.iter().collect();
    ordered.sort_by_key(rank);
    for v in &ordered {
        fields.push(json!({
            "name": v.name,
            "label": v.label,
            "type": "string",
            "description": v.description,
            "required": true,
            "default": v.default,
            "validations": [{"type": "pattern", "regex": v.pattern.0, "message": v.pattern.1}],
        }));
    }
    fields.extend(secret_fields.iter().map(SecretField::field));
    let data: serde_json::Map<String, Value> = ordered
        .iter()
        .map(|v| (v.name.clone(), json!(format!("{{{{ {} }}}}", v.name))))
        .collect();
    let in_cluster = secret_fields
        .iter()
        .any(|f| f.name == super::keys::MASTER_KEY_FIELD);
    let keys = if vars.0.iter().any(|v| v.name == STORE_VAR) {
        "The keys come from the External Secrets store and entry below."
    } else if in_cluster {
        "The keys are derived in the cluster from the master key below (kept, or generated, when left empty)."
    } else {
        "The keys Secret is created with `difyrender secrets apply` (see the overview)."
    };
    let description = format!(
        "Where Dify is reached and where its data is kept. The defaults are the values this entry was generated with. {keys}"
    );
    let doc = json!({
        "schema": USER_INPUTS_SCHEMA,
        "groups": [{
            "name": "dify",
            "label": "Dify Community Edition",
            "description": description,
            "collapse": false,
            "fields": fields,
        }],
        "resources": std::iter::once(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": config_overrides_name(app_name)},
            "data": data,
        }))
        .chain(secret_fields.iter().map(SecretField::template))
        .map(|template| json!({"template": template}))
        .collect::<Vec<_>>(),
    });
    crate::yaml::to_string(&doc)
}

/// What Kommander makes of the form (NKP 2.17+): each field's answer, or its default when the
/// operator left it, substituted for `{{ field }}` in every string of every `resources[]`
/// template. A required field with neither is an error, as the form refuses to submit. Lets
/// tests create exactly the ConfigMap the form produces.
pub fn answer_form(user_inputs: &Value, answers: &[(&str, &str)]) -> Result<Vec<Value>, String> {
    let mut values: Vec<(String, String)> = Vec::new();
    let fields = user_inputs
        .pointer("/groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.get("fields").and_then(Value::as_array))
        .flatten();
    for field in fields {
        let name = field["name"].as_str().ok_or("a field without a name")?;
        let answer = answers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| match field.get("default") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            });
        match answer {
            Some(a) => values.push((name.to_owned(), a)),
            None if field["required"] == true => {
                return Err(format!("the required field {name} has no answer"));
            }
            None => values.push((name.to_owned(), String::new())),
        }
    }
    fn fill(v: &Value, values: &[(String, String)]) -> Value {
        match v {
            Value::String(s) => {
                let mut s = s.clone();
                for (k, a) in values {
                    s = s.replace(&format!("{{{{ {k} }}}}"), a);
                }
                Value::String(s)
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| fill(i, values)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), fill(v, values)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    Ok(user_inputs
        .pointer("/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| fill(&r["template"], &values))
        .collect())
}

/// The Secret NKP's federation (kubefed's sync controller) makes of a FederatedSecret in its
/// namespace: `spec.template` with the FederatedSecret's name. Other objects are returned as
/// they are. Lets tests create exactly what a form's FederatedSecret becomes on a cluster.
pub fn as_propagated(object: Value) -> Value {
    if object["kind"] != "FederatedSecret" {
        return object;
    }
    let mut secret = object["spec"]["template"].clone();
    secret["apiVersion"] = json!("v1");
    secret["kind"] = json!("Secret");
    secret["metadata"] = json!({"name": object["metadata"]["name"]});
    if let Some(ns) = object.pointer("/metadata/namespace") {
        secret["metadata"]["namespace"] = ns.clone();
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_replaced_only_as_the_authority_of_a_url() {
        let r = "${externalHost:=h.example}";
        assert_eq!(
            replace_host("https://h.example/dify", "h.example", r).unwrap(),
            "https://${externalHost:=h.example}/dify"
        );
        assert_eq!(
            replace_host("wss://h.example", "h.example", r).unwrap(),
            "wss://${externalHost:=h.example}"
        );
        assert_eq!(
            replace_host("http://h.example:8080", "h.example", r).unwrap(),
            "http://${externalHost:=h.example}:8080"
        );
        // Another host that starts with this one stays.
        assert_eq!(
            replace_host("https://h.example.org/x", "h.example", r).unwrap(),
            "https://h.example.org/x"
        );
        assert_eq!(replace_host("h.example", "h.example", r), None);
    }

    #[test]
    fn size_variables_are_flux_names() {
        assert_eq!(size_var_name("plugin-daemon"), "pluginDaemonStorageSize");
        assert_eq!(size_var_name("postgresql"), "postgresqlStorageSize");
        assert_eq!(size_var_name("storage"), "fileStorageSize");
    }
}
