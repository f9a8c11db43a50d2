//! The master key and the keys derived from it.
//!
//! Only `secrets.difySecretKey` is an input. Every other credential is
//! `HMAC-SHA256(master key, "difyrender/v1/<purpose>")`, hex-encoded, so re-rendering with the
//! same master key gives the same passwords (a PVC that still holds the old database keeps
//! working) without reading anything from the cluster. Each can be overridden by value.

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::Path;

/// Value path of the master key.
pub const MASTER_KEY_PATH: &str = "secrets.difySecretKey";
/// Environment variable read when no file or value gives the master key.
pub const MASTER_KEY_ENV: &str = "DIFY_SECRET_KEY";

/// A derived credential: the value under `secrets.` that overrides it, its purpose label, how
/// it is written, and the release switch (versions.yaml) without which the release has no use
/// for it (`None`: every release).
#[derive(Debug, Clone, Copy)]
pub struct DerivedKeySpec {
    pub value: &'static str,
    pub purpose: &'static str,
    pub length: usize,
    pub format: KeyFormat,
    pub switch: Option<&'static str>,
    /// A boolean value (JSON pointer into the values) without which the key is neither
    /// derived nor held: the console administrator's password exists only with
    /// `bootstrap.enabled`. Pods never read such a key, so it stays out of the pods' checksum.
    pub enabled_by: Option<&'static str>,
}

/// How a derived key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// The first `length` hex digits of the HMAC.
    Hex,
    /// The HMAC's 32 bytes as unpadded base64url (43 characters), as Python's
    /// `secrets.token_urlsafe(32)` writes them: what agent_backend's server secret key must be.
    Base64Url32,
    /// `P0` and the first `length - 2` hex digits: Dify refuses an account password without a
    /// letter and a digit (`valid_password`), which a hex string alone does not guarantee.
    Password,
}

/// Full-length derived keys: all 64 hex digits.
const FULL: usize = 64;

/// Every derived credential. The purpose labels are part of the on-disk contract: changing one
/// changes a password that a database volume depends on.
pub const DERIVED_KEYS: &[DerivedKeySpec] = &[
    DerivedKeySpec {
        value: "postgresPassword",
        purpose: "postgres-password",
        length: FULL,
        format: KeyFormat::Hex,
        switch: None,
        enabled_by: None,
    },
    DerivedKeySpec {
        value: "redisPassword",
        purpose: "redis-password",
        length: FULL,
        format: KeyFormat::Hex,
        switch: None,
        enabled_by: None,
    },
    DerivedKeySpec {
        value: "sandboxApiKey",
        purpose: "sandbox-api-key",
        length: FULL,
        format: KeyFormat::Hex,
        switch: None,
        enabled_by: None,
    },
    DerivedKeySpec {
        value: "pluginDaemonKey",
        purpose: "plugin-daemon-server-key",
        length: FULL,
        format: KeyFormat::Hex,
        switch: None,
        enabled_by: None,
    },
    DerivedKeySpec {
        value: "pluginInnerApiKey",
        purpose: "plugin-inner-api-key",
        length: FULL,
        format: KeyFormat::Hex,
        switch: None,
        enabled_by: None,
    },
    DerivedKeySpec {
        value: "weaviateApiKey",
        purpose: "weaviate-api-key",
        length: FULL,
        format: KeyFormat::Hex,
        switch: None,
        enabled_by: None,
    },
    // Guards Dify's first-run /install page; its form accepts at most 30 characters.
    DerivedKeySpec {
        value: "initPassword",
        purpose: "init-password",
        length: 24,
        format: KeyFormat::Hex,
        switch: None,
        enabled_by: None,
    },
    // The agent stack (Dify 1.16.0+). agent_backend derives the JWE key of its agent-stub bearer
    // tokens from this; it refuses anything but unpadded base64url of exactly 32 bytes.
    DerivedKeySpec {
        value: "agentServerSecretKey",
        purpose: "agent-server-secret-key",
        length: 43,
        format: KeyFormat::Base64Url32,
        switch: Some("agentBackend"),
        enabled_by: None,
    },
    // Shared by agent_backend and local_sandbox; empty would turn local_sandbox's
    // authentication off, so it is never empty.
    DerivedKeySpec {
        value: "agentShellctlToken",
        purpose: "agent-shellctl-token",
        length: FULL,
        format: KeyFormat::Hex,
        switch: Some("agentBackend"),
        enabled_by: None,
    },
    // Guards agent_backend's run API (1.16.1+); api and worker send it. Unset, the API is open.
    DerivedKeySpec {
        value: "agentApiToken",
        purpose: "agent-api-token",
        length: FULL,
        format: KeyFormat::Hex,
        switch: Some("agentApiToken"),
        enabled_by: None,
    },
    // The console administrator that `bootstrap` creates and logs in as (docs/bootstrap.md).
    DerivedKeySpec {
        value: "adminPassword",
        purpose: "admin-password",
        length: 32,
        format: KeyFormat::Password,
        switch: None,
        enabled_by: Some("/bootstrap/enabled"),
    },
];

/// Where the master key came from, for messages (never the key itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeySource {
    File,
    Values,
    Environment,
    Missing,
}

/// `HMAC-SHA256(master, "difyrender/v1/<purpose>")` as 64 hex digits: URL-safe, so it can sit
/// inside `CELERY_BROKER_URL` unescaped.
pub fn derive(master: &str, purpose: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(master.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(b"difyrender/v1/");
    mac.update(purpose.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The key `spec` describes, derived from `master`.
pub fn derive_key(master: &str, spec: &DerivedKeySpec) -> String {
    match spec.format {
        KeyFormat::Hex => derive(master, spec.purpose)[..spec.length].to_owned(),
        KeyFormat::Password => format!("P0{}", &derive(master, spec.purpose)[..spec.length - 2]),
        KeyFormat::Base64Url32 => {
            use base64::Engine;
            let mut mac = Hmac::<Sha256>::new_from_slice(master.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(b"difyrender/v1/");
            mac.update(spec.purpose.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
    }
}

/// Whether `key` is what a [`KeyFormat`] promises (for keys given explicitly).
pub fn key_has_format(key: &str, format: KeyFormat) -> bool {
    match format {
        KeyFormat::Hex => !key.is_empty(),
        KeyFormat::Password => {
            key.chars().count() >= 8
                && key.chars().any(|c| c.is_ascii_alphabetic())
                && key.chars().any(|c| c.is_ascii_digit())
        }
        KeyFormat::Base64Url32 => {
            use base64::Engine;
            key.len() == 43
                && base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(key)
                    .is_ok_and(|b| b.len() == 32)
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so any password can stand
/// in the userinfo of a URL (`/ # ? @ :` would otherwise end or split it). Hex keys are unchanged.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Secret inputs of a release that only the cluster holds: apply and diff read them before they
/// render; `render`, which reads no cluster, goes without. Never printed (no `Debug` of the
/// value).
#[derive(Clone, Default)]
pub struct ClusterInputs {
    /// The bootstrap Job's provider API key, from a Secret the release does not render
    /// (`bootstrap.provider.apiKeySecret`, or `secrets.existingSecret`).
    pub provider_api_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClusterInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = self.provider_api_key.as_ref().map(|_| "<redacted>");
        f.debug_struct("ClusterInputs")
            .field("provider_api_key", &key)
            .finish()
    }
}

/// The resolved credentials handed to templates as `Secrets`, keyed like the values
/// (`Secrets.postgresPassword`), plus `checksum`, which changes whenever any key changes so
/// that pods roll.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DerivedKeys(pub BTreeMap<String, String>);

impl DerivedKeys {
    /// Resolves every derived key every release uses from merged values. With no master key
    /// the derived keys are empty; the chart's `required` check on the master key then stops
    /// the render.
    pub fn resolve(values: &Map<String, Value>) -> Self {
        Self::resolve_for(values, &Map::new())
    }

    /// [`DerivedKeys::resolve`], plus the keys of the release `switches` turn on (the agent
    /// stack's): a release without them neither holds nor checksums them, so its pods do not
    /// roll when a later release adds keys.
    pub fn resolve_for(values: &Map<String, Value>, switches: &Map<String, Value>) -> Self {
        Self::resolve_with(values, switches, &ClusterInputs::default())
    }

    /// [`DerivedKeys::resolve_for`], with the secret inputs only the cluster holds (read by
    /// apply and diff before they render): they change `bootstrapChecksum`, nothing else.
    pub fn resolve_with(
        values: &Map<String, Value>,
        switches: &Map<String, Value>,
        cluster: &ClusterInputs,
    ) -> Self {
        let secrets = values.get("secrets").and_then(Value::as_object);
        let get = |name: &str| {
            secrets
                .and_then(|s| s.get(name))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let master = get("difySecretKey");
        let mut keys = BTreeMap::new();
        let mut unchecked = Vec::new();
        for spec in DERIVED_KEYS {
            if let Some(switch) = spec.switch
                && switches.get(switch).and_then(Value::as_bool) != Some(true)
            {
                continue;
            }
            if let Some(pointer) = spec.enabled_by {
                if values_pointer(values, pointer).and_then(Value::as_bool) != Some(true) {
                    continue;
                }
                unchecked.push(spec.value);
            }
            let key = match get(spec.value) {
                "" if master.is_empty() => String::new(),
                "" => derive_key(master, spec),
                explicit => explicit.to_owned(),
            };
            // A derived key is as secret as the master key: no message may print it (a pod's
            // log quoted in a diagnosis, say).
            crate::diag::register_secret(&key);
            keys.insert(spec.value.to_owned(), key);
        }
        // The Redis password as it must stand inside CELERY_BROKER_URL.
        let url_form = percent_encode(&keys["redisPassword"]);
        keys.insert("redisPasswordUrl".to_owned(), url_form);
        let mut checksum = String::new();
        if !master.is_empty() {
            let all: Vec<&str> = keys
                .iter()
                .filter(|(k, _)| !unchecked.contains(&k.as_str()))
                .map(|(_, v)| v.as_str())
                .collect();
            checksum = derive(master, &format!("checksum\0{}", all.join("\0")))[..16].to_owned();
        }
        keys.insert("checksum".to_owned(), checksum);
        // The bootstrap Job's name carries this, so a changed administrator password, init
        // password or OpenAI key runs it again. An HMAC under the master key: it tells nothing
        // about the keys (a plain hash of a key could be tested against guesses).
        if keys.contains_key("adminPassword") {
            let mut inputs = vec![
                keys["adminPassword"].clone(),
                keys["initPassword"].clone(),
                get("openaiApiKey").to_owned(),
            ];
            // The provider key of a Secret the release does not render, when apply or diff
            // read it: as its own HMAC, so the inputs of a render without it stay as they were.
            if let Some(key) = &cluster.provider_api_key
                && !master.is_empty()
            {
                inputs.push(derive(
                    master,
                    &format!("bootstrap-provider-key\0{}", hex::encode(key)),
                ));
            }
            let hash = if master.is_empty() {
                String::new()
            } else {
                derive(master, &format!("bootstrap-inputs\0{}", inputs.join("\0")))[..16].to_owned()
            };
            keys.insert("bootstrapChecksum".to_owned(), hash);
        }
        DerivedKeys(keys)
    }

    /// Every secret value, for scanning output in tests and for redaction.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|(k, v)| {
                !["checksum", "bootstrapChecksum"].contains(&k.as_str()) && !v.is_empty()
            })
            .map(|(_, v)| v.as_str())
    }
}

/// The value at a JSON pointer of the merged values.
fn values_pointer<'a>(values: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let mut parts = pointer.trim_start_matches('/').split('/');
    let first = values.get(parts.next()?)?;
    parts.try_fold(first, |v, p| v.get(p))
}

/// Shortest master key accepted, in characters.
pub const MIN_MASTER_KEY_CHARS: usize = 16;
/// Fewest different characters a master key must have.
pub const MIN_MASTER_KEY_DISTINCT: usize = 8;

/// The master key's minimum strength: at least [`MIN_MASTER_KEY_CHARS`] characters, at least
/// [`MIN_MASTER_KEY_DISTINCT`] of them different, and no whitespace or control characters
/// (which are almost always a copy-and-paste mistake). `openssl rand -hex 32` passes easily.
/// The message never includes the key.
pub fn check_master_key(key: &str, from: &str) -> Result<(), super::Error> {
    let chars: Vec<char> = key.chars().collect();
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let problem = if chars.iter().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains whitespace or control characters".to_owned())
    } else if chars.len() < MIN_MASTER_KEY_CHARS {
        Some(format!(
            "is {} characters long; at least {MIN_MASTER_KEY_CHARS} are needed",
            chars.len()
        ))
    } else if distinct.len() < MIN_MASTER_KEY_DISTINCT {
        Some(format!(
            "has only {} different characters; at least {MIN_MASTER_KEY_DISTINCT} are needed",
            distinct.len()
        ))
    } else {
        None
    };
    match problem {
        Some(p) => Err(super::Error::MasterKey(format!(
            "the master key ({from}) is too weak: it {p}. Generate one with `openssl rand -hex 32`"
        ))),
        None => Ok(()),
    }
}

/// Puts the master key into the user's values, from the first of: `--secret-key-file`,
/// `secrets.difySecretKey` in `-f`/`--set`, `$DIFY_SECRET_KEY`. The file and environment keep
/// the key out of process listings. A `secrets.difySecretKey` of any type but null wins over
/// the environment (a number is then refused by the schema, with or without the variable);
/// an empty string counts as not given. The key in use is checked by [`check_master_key`]
/// and registered with [`crate::diag`], so no message can show it.
pub fn inject_master_key(
    user: &mut Map<String, Value>,
    file: Option<&Path>,
    env: Option<std::ffi::OsString>,
) -> Result<MasterKeySource, super::Error> {
    let from_file = match file {
        Some(path) => {
            let shown = path.display().to_string();
            let bytes = crate::input::read_limited(path, crate::input::MAX_SECRET_KEY_FILE_BYTES)
                .map_err(|source| super::Error::SecretKeyFile {
                path: shown.clone(),
                source,
            })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                super::Error::MasterKey(format!("the secret key file {shown} is not UTF-8 text"))
            })?;
            let key = text.trim_end_matches(['\n', '\r']).to_owned();
            crate::diag::register_secret(&key);
            if key.is_empty() {
                return Err(super::Error::EmptySecretKeyFile { path: shown });
            }
            check_master_key(&key, &format!("--secret-key-file {shown}"))?;
            Some(key)
        }
        None => None,
    };
    let in_values = match user.get("secrets").and_then(|s| s.get("difySecretKey")) {
        None | Some(Value::Null) => false,
        Some(Value::String(k)) => !k.is_empty(),
        Some(_) => true,
    };
    let env = match env.filter(|e| !e.is_empty()) {
        None => None,
        Some(raw) => match raw.into_string() {
            Ok(key) => {
                crate::diag::register_secret(&key);
                Some(key)
            }
            // Only an error when it would be used.
            Err(_) if from_file.is_some() || in_values => None,
            Err(_) => {
                return Err(super::Error::MasterKey(format!(
                    "${MASTER_KEY_ENV} is set but is not UTF-8 text; the master key must be text"
                )));
            }
        },
    };
    let (key, source) = match (from_file, in_values, env) {
        (Some(key), _, _) => (key, MasterKeySource::File),
        (None, true, _) => {
            if let Some(Value::String(k)) = user.get("secrets").and_then(|s| s.get("difySecretKey"))
            {
                crate::diag::register_secret(k);
                check_master_key(k, "secrets.difySecretKey")?;
            }
            return Ok(MasterKeySource::Values);
        }
        (None, false, Some(key)) => {
            check_master_key(&key, &format!("${MASTER_KEY_ENV}"))?;
            (key, MasterKeySource::Environment)
        }
        (None, false, None) => return Ok(MasterKeySource::Missing),
    };
    let secrets = user
        .entry("secrets")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(map) = secrets {
        map.insert("difySecretKey".to_owned(), Value::String(key));
    }
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn derivation_is_stable_and_purpose_bound() {
        let a = derive("master", "postgres-password");
        assert_eq!(a, derive("master", "postgres-password"));
        assert_ne!(a, derive("master", "redis-password"));
        assert_ne!(a, derive("other", "postgres-password"));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn agent_keys_exist_only_for_their_releases_and_have_their_format() {
        let values = json!({"secrets": {"difySecretKey": "m"}});
        let values = values.as_object().unwrap();
        let none = DerivedKeys::resolve(values);
        assert!(!none.0.contains_key("agentShellctlToken"));
        let switches = json!({"agentBackend": true, "agentApiToken": false});
        let some = DerivedKeys::resolve_for(values, switches.as_object().unwrap());
        assert!(some.0.contains_key("agentShellctlToken"));
        assert!(!some.0.contains_key("agentApiToken"));
        assert_ne!(none.0["checksum"], some.0["checksum"]);
        let server = &some.0["agentServerSecretKey"];
        assert!(
            key_has_format(server, KeyFormat::Base64Url32),
            "{}",
            server.len()
        );
        assert!(!server.contains('='));
        // Negative controls: 64 hex digits and padded base64 are what agent_backend refuses.
        assert!(!key_has_format(&derive("m", "x"), KeyFormat::Base64Url32));
        assert!(!key_has_format(
            &format!("{}=", &server[..43]),
            KeyFormat::Base64Url32
        ));
        assert_eq!(some.0["agentShellctlToken"].len(), 64);
        let all = json!({"agentBackend": true, "agentApiToken": true});
        let all = DerivedKeys::resolve_for(values, all.as_object().unwrap());
        assert_ne!(all.0["agentApiToken"], all.0["agentShellctlToken"]);
    }

    #[test]
    fn overrides_win_and_checksum_follows_every_key() {
        let base = json!({"secrets": {"difySecretKey": "m", "redisPassword": ""}});
        let keys = DerivedKeys::resolve(base.as_object().unwrap());
        assert_eq!(keys.0["redisPassword"], derive("m", "redis-password"));
        let over = json!({"secrets": {"difySecretKey": "m", "redisPassword": "explicit"}});
        let keys2 = DerivedKeys::resolve(over.as_object().unwrap());
        assert_eq!(keys2.0["redisPassword"], "explicit");
        assert_ne!(keys.0["checksum"], keys2.0["checksum"]);
    }

    #[test]
    fn init_password_fits_difys_form_and_redis_password_is_url_safe() {
        let keys = DerivedKeys::resolve(
            json!({"secrets": {"difySecretKey": "m"}})
                .as_object()
                .unwrap(),
        );
        assert_eq!(keys.0["initPassword"], derive("m", "init-password")[..24]);
        assert_eq!(keys.0["redisPasswordUrl"], keys.0["redisPassword"]);
        let explicit =
            json!({"secrets": {"difySecretKey": "m", "redisPassword": "a/b#c?d@e:f%g h~"}});
        let keys = DerivedKeys::resolve(explicit.as_object().unwrap());
        assert_eq!(keys.0["redisPasswordUrl"], "a%2Fb%23c%3Fd%40e%3Af%25g%20h~");
        assert_eq!(percent_encode("ü"), "%C3%BC");
    }

    #[test]
    fn the_admin_password_exists_only_with_bootstrap_and_rolls_no_pod() {
        let off = json!({"secrets": {"difySecretKey": "m"}});
        let off = DerivedKeys::resolve(off.as_object().unwrap());
        assert!(!off.0.contains_key("adminPassword"));
        assert!(!off.0.contains_key("bootstrapChecksum"));
        let on = json!({"secrets": {"difySecretKey": "m"}, "bootstrap": {"enabled": true}});
        let on = DerivedKeys::resolve(on.as_object().unwrap());
        let password = &on.0["adminPassword"];
        assert_eq!(
            password,
            &format!("P0{}", &derive("m", "admin-password")[..30])
        );
        assert!(key_has_format(password, KeyFormat::Password));
        // Pods do not read it: turning bootstrap on rolls none of them.
        assert_eq!(off.0["checksum"], on.0["checksum"]);
        // A changed OpenAI key changes the Job's input hash, which shows no key.
        let key = json!({"secrets": {"difySecretKey": "m", "openaiApiKey": "sk-a"}, "bootstrap": {"enabled": true}});
        let key = DerivedKeys::resolve(key.as_object().unwrap());
        assert_ne!(key.0["bootstrapChecksum"], on.0["bootstrapChecksum"]);
        assert!(!key.values().any(|v| v == key.0["bootstrapChecksum"]));
        // The provider key of a Secret in the cluster (read by apply and diff) changes it too,
        // and only it: without one, the checksum is the render's.
        let values = json!({"secrets": {"difySecretKey": "m"}, "bootstrap": {"enabled": true}});
        let values = values.as_object().unwrap();
        let with = |key: Option<&[u8]>| {
            DerivedKeys::resolve_with(
                values,
                &Map::new(),
                &ClusterInputs {
                    provider_api_key: key.map(<[u8]>::to_vec),
                },
            )
        };
        let (none, a, b) = (with(None), with(Some(b"nai-a")), with(Some(b"nai-b")));
        assert_eq!(none.0, on.0);
        assert_ne!(a.0["bootstrapChecksum"], none.0["bootstrapChecksum"]);
        assert_ne!(a.0["bootstrapChecksum"], b.0["bootstrapChecksum"]);
        assert_eq!(
            a.0["bootstrapChecksum"],
            with(Some(b"nai-a")).0["bootstrapChecksum"]
        );
        assert_eq!(a.0["checksum"], none.0["checksum"]);
        let shown = format!(
            "{:?}",
            ClusterInputs {
                provider_api_key: Some(b"nai-a".to_vec())
            }
        );
        assert!(
            !shown.contains("nai-a") && shown.contains("redacted"),
            "{shown}"
        );
        // Negative controls for the format: no digit, no letter, too short.
        for bad in ["abcdefghij", "1234567890", "a1b2"] {
            assert!(!key_has_format(bad, KeyFormat::Password), "{bad}");
        }
    }

    #[test]
    fn master_key_precedence() {
        let mut user = Map::new();
        const ENV: &str = "env-master-key-0123456789";
        const SET: &str = "set-master-key-0123456789";
        const FILE: &str = "file-master-key-0123456789";
        assert_eq!(
            inject_master_key(&mut user, None, Some(ENV.into())).unwrap(),
            MasterKeySource::Environment
        );
        assert_eq!(user["secrets"]["difySecretKey"], ENV);
        let mut user = json!({"secrets": {"difySecretKey": SET}})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            inject_master_key(&mut user, None, Some(ENV.into())).unwrap(),
            MasterKeySource::Values
        );
        assert_eq!(user["secrets"]["difySecretKey"], SET);
        // A value of the wrong type still wins over the environment, so the schema reports
        // it whether or not the variable is set.
        let mut typed = json!({"secrets": {"difySecretKey": 1234567890}})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            inject_master_key(&mut typed, None, Some(ENV.into())).unwrap(),
            MasterKeySource::Values
        );
        assert_eq!(typed["secrets"]["difySecretKey"], 1234567890);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{FILE}\n")).unwrap();
        assert_eq!(
            inject_master_key(&mut user, Some(&path), None).unwrap(),
            MasterKeySource::File
        );
        assert_eq!(user["secrets"]["difySecretKey"], FILE);
        let mut empty = Map::new();
        assert_eq!(
            inject_master_key(&mut empty, None, Some("".into())).unwrap(),
            MasterKeySource::Missing
        );
    }

    #[test]
    fn weak_or_undecodable_master_keys_are_refused() {
        for weak in [
            " ",
            "short-key",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "with space 0123456789",
        ] {
            let e = inject_master_key(&mut Map::new(), None, Some(weak.into()))
                .unwrap_err()
                .to_string();
            assert!(e.contains("too weak"), "{e}");
            assert!(!e.contains(weak.trim()) || weak.trim().is_empty(), "{e}");
        }
        use std::os::unix::ffi::OsStringExt;
        let raw = std::ffi::OsString::from_vec(b"\xff\xfekey-0123456789abcdef".to_vec());
        let e = inject_master_key(&mut Map::new(), None, Some(raw.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        // Not an error when a key from values takes precedence.
        let mut user = json!({"secrets": {"difySecretKey": "set-master-key-0123456789"}})
            .as_object()
            .unwrap()
            .clone();
        assert!(inject_master_key(&mut user, None, Some(raw)).is_ok());
    }
}
