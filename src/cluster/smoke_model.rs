//! `test` with `bootstrap.enabled`: the check "model" of [`super::smoketest::SCRIPT`] sends one
//! chat completion to the model the bootstrap Job configured, at the URL Dify's plugin calls and
//! with the same key, from the release's namespace (the plugin daemon's). Its inputs are the
//! live bootstrap Job's own variables, copied as they are: plain values as values, the key as
//! the Job's `secretKeyRef` (never its value).

use super::inventory::Inventory;
use super::{Error, ResourceManager};
use serde_json::{Value, json};

/// The bootstrap Job's variables the check reads.
pub const VARS: &[&str] = &[
    "PROVIDER_TYPE",
    "PROVIDER_URL",
    "PROVIDER_MODELS",
    "DEFAULT_MODEL",
    "PROVIDER_API_KEY",
    "PROVIDER_KEY_OPTIONAL",
    "DIFYRENDER_CA_FILE",
];

/// The bootstrap Job's volume of the site's CA bundle (trust.caBundle), mounted where its
/// `DIFYRENDER_CA_FILE` points.
const TRUST_VOLUME: &str = "trust";

/// The plugin daemon's variables the check reads: the model calls leave from its pod, through
/// its proxy when it has one.
pub const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Why the model cannot be checked; the check fails with it.
pub const PROBLEM_VAR: &str = "DIFYTEST_MODEL_PROBLEM";

/// The variables of the check, from the bootstrap Job's pod template: each of [`VARS`] it sets,
/// the key only as a `secretKeyRef`.
pub fn env_of(bootstrap_job: &Value) -> Result<Vec<Value>, Error> {
    copy(bootstrap_job, "bootstrap", VARS)
}

/// The plugin daemon's proxy variables ([`PROXY_VARS`]), from its Deployment.
pub fn proxy_env_of(plugin_daemon: &Value) -> Result<Vec<Value>, Error> {
    copy(plugin_daemon, "plugin-daemon", PROXY_VARS)
}

/// The variables `names` of a workload's container `name` that have a value or a `valueFrom`,
/// as they are.
fn copy(workload: &Value, name: &str, names: &[&str]) -> Result<Vec<Value>, Error> {
    let containers = workload
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let container = containers
        .iter()
        .find(|c| c["name"] == name)
        .or(containers.first())
        .ok_or_else(|| Error::NotFound(format!("the {name} workload has no container")))?;
    let mut env = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let Some(var) = e["name"].as_str().filter(|n| names.contains(n)) else {
            continue;
        };
        let from_secret = e.pointer("/valueFrom/secretKeyRef").is_some();
        if var == "PROVIDER_API_KEY" && !from_secret {
            return Err(Error::Usage(
                "the bootstrap Job's PROVIDER_API_KEY is not read from a Secret; difyrender test copies keys only as secretKeyRef".into(),
            ));
        }
        if from_secret || e.get("value").is_some() {
            env.push(e.clone());
        }
    }
    Ok(env)
}

/// Adds the check's variables to the test Job `body` when the release has a bootstrap Job
/// (`bootstrap.enabled`); nothing otherwise.
pub async fn add(mgr: &ResourceManager, inv: &Inventory, body: &mut Value) -> Result<(), Error> {
    let Some(entry) = inv
        .entries
        .iter()
        .find(|e| e.kind == "Job" && e.component == "bootstrap")
    else {
        return Ok(());
    };
    let live = mgr.get_entry(entry).await?;
    let mut vars = match live {
        Some(job) => {
            add_trust(&job, body);
            env_of(&job)?
        }
        None => vec![json!({
            "name": PROBLEM_VAR,
            "value": format!(
                "bootstrap is on but {} is gone, so the model it configured is unknown: apply again, then test",
                entry.id()
            ),
        })],
    };
    if let Some(daemon) = inv
        .entries
        .iter()
        .find(|e| e.kind == "Deployment" && e.component == "plugin-daemon")
    {
        let live = mgr.get_entry(daemon).await?;
        if let Some(d) = live {
            vars.extend(proxy_env_of(&d)?);
        }
    }
    if let Some(env) = body
        .pointer_mut("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array_mut)
    {
        env.extend(vars);
    }
    Ok(())
}

/// Mounts the bootstrap Job's trust volume in the test Job `body`, at the same path.
pub fn add_trust(bootstrap_job: &Value, body: &mut Value) {
    let spec = &bootstrap_job["spec"]["template"]["spec"];
    let Some(volume) = spec["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == TRUST_VOLUME))
    else {
        return;
    };
    let Some(mount) = spec["containers"]
        .as_array()
        .and_then(|c| c.first())
        .and_then(|c| c["volumeMounts"].as_array())
        .and_then(|m| m.iter().find(|m| m["name"] == TRUST_VOLUME))
    else {
        return;
    };
    let pod = &mut body["spec"]["template"]["spec"];
    push(&mut pod["volumes"], volume.clone());
    push(&mut pod["containers"][0]["volumeMounts"], mount.clone());
}

fn push(list: &mut Value, item: Value) {
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut() {
        items.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_copied_only_as_a_reference() {
        let job = |key: Value| {
            json!({"spec": {"template": {"spec": {"containers": [{"name": "bootstrap", "env": [
                {"name": "ADMIN_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "k", "key": "ADMIN_PASSWORD"}}},
                {"name": "PROVIDER_TYPE", "value": "openai-compatible"},
                {"name": "PROVIDER_URL", "value": "https://nai.example.com/api/v1"},
                key,
            ]}]}}}})
        };
        let reference = json!({"name": "PROVIDER_API_KEY", "valueFrom": {"secretKeyRef": {"name": "nai", "key": "api-key"}}});
        let env = env_of(&job(reference.clone())).unwrap();
        let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["PROVIDER_TYPE", "PROVIDER_URL", "PROVIDER_API_KEY"]);
        assert_eq!(env[2], reference);
        let plain = json!({"name": "PROVIDER_API_KEY", "value": "sk-plain"});
        let err = env_of(&job(plain)).unwrap_err().to_string();
        assert!(err.contains("not read from a Secret"), "{err}");
        assert!(!err.contains("sk-plain"), "{err}");
    }

    #[test]
    fn the_daemons_proxy_variables_are_copied_from_its_container() {
        let daemon = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "hook-proxy", "env": [{"name": "HTTPS_PROXY", "value": "http://wrong:1"}]},
            {"name": "plugin-daemon", "env": [
                {"name": "SERVER_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "K"}}},
                {"name": "HTTPS_PROXY", "value": "http://proxy.site:3128"},
                {"name": "NO_PROXY", "value": ".svc,.cluster.local"},
            ]},
        ]}}}});
        let env = proxy_env_of(&daemon).unwrap();
        assert_eq!(
            env,
            [
                json!({"name": "HTTPS_PROXY", "value": "http://proxy.site:3128"}),
                json!({"name": "NO_PROXY", "value": ".svc,.cluster.local"}),
            ]
        );
    }

    #[test]
    fn the_site_ca_is_mounted_as_the_bootstrap_job_mounts_it() {
        let volume = json!({"name": "trust", "configMap": {"name": "site-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}});
        let mount =
            json!({"name": "trust", "mountPath": "/etc/difyrender/trust", "readOnly": true});
        let job = json!({"spec": {"template": {"spec": {
            "volumes": [{"name": "script", "configMap": {"name": "s"}}, volume.clone()],
            "containers": [{"name": "bootstrap", "volumeMounts": [{"name": "script", "mountPath": "/difyrender"}, mount.clone()],
                "env": [{"name": "DIFYRENDER_CA_FILE", "value": "/etc/difyrender/trust/ca.crt"}]}],
        }}}});
        let mut body =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "test", "env": []}]}}}});
        add_trust(&job, &mut body);
        let pod = &body["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"], json!([volume]));
        assert_eq!(pod["containers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(
            env_of(&job).unwrap(),
            [json!({"name": "DIFYRENDER_CA_FILE", "value": "/etc/difyrender/trust/ca.crt"})]
        );
        // Without trust.caBundle: nothing mounted.
        let mut plain = json!({"spec": {"template": {"spec": {"containers": [{"name": "test"}]}}}});
        add_trust(
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "bootstrap"}]}}}}),
            &mut plain,
        );
        assert!(plain["spec"]["template"]["spec"].get("volumes").is_none());
    }

    #[test]
    fn the_script_reads_every_variable_copied() {
        for var in VARS.iter().chain(PROXY_VARS).chain([&PROBLEM_VAR]) {
            assert!(
                super::super::smoketest::SCRIPT.contains(var),
                "smoke_test.py does not mention {var}"
            );
        }
    }
}
