//! The derived keys, frozen. A change to the HMAC prefix, the hash, the hex encoding, a length
//! or a purpose label would hand PostgreSQL, Redis and Weaviate passwords their volumes do not
//! know, and comparing the crate's output with itself would not notice. So the expected values
//! here come from outside the crate: `tests/data/derived-keys.txt`, computed with Python's
//! `hmac` from the documented formula (the command is in the file), for a throwaway master key.
//! The render is at the default release (1.16.1), which has every key, the agent stack's too.

mod common;

use common::kubelet::secret_data;
use common::release_spec;
use difyrender::release::{RenderedRelease, render_release};
use difyrender::values::secrets::{DERIVED_KEYS, KeyFormat, derive, derive_key};
use std::collections::{BTreeMap, BTreeSet};

/// One row of `tests/data/derived-keys.txt`.
#[derive(Debug, PartialEq)]
struct Vector {
    /// The value under `secrets.` that overrides the key.
    value: String,
    /// The purpose label in `difyrender/v1/<purpose>`.
    purpose: String,
    /// How many characters of the encoded HMAC the key keeps.
    length: usize,
    /// "hex" (the first `length` hex digits) or "base64url" (the 32 bytes, unpadded).
    format: String,
    /// The key of the keys Secret that holds it.
    secret_key: String,
    expected: String,
}

/// The master key and the vectors of the data file.
fn vectors() -> (String, Vec<Vector>) {
    let path = common::root().join("tests/data/derived-keys.txt");
    let text = std::fs::read_to_string(&path).expect("tests/data/derived-keys.txt is readable");
    let mut master = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["master", key] => master = Some((*key).to_owned()),
            [value, purpose, length, secret_key, expected, format @ ..] if format.len() <= 1 => {
                rows.push(Vector {
                    value: (*value).to_owned(),
                    purpose: (*purpose).to_owned(),
                    length: length.parse().expect("a length"),
                    format: format.first().copied().unwrap_or("hex").to_owned(),
                    secret_key: (*secret_key).to_owned(),
                    expected: (*expected).to_owned(),
                })
            }
            _ => panic!("tests/data/derived-keys.txt: cannot read the line {line:?}"),
        }
    }
    let master = master.expect("the data file names its master key");
    assert!(!rows.is_empty(), "the data file has no vectors");
    (master, rows)
}

fn render(master: &str) -> RenderedRelease {
    let set = [
        "expose.ingressClassName=kommander-traefik",
        "external.host=192.0.2.10",
        "storage.storageClassName=standard",
        "expose.path=/",
        "external.scheme=https",
        // The administrator's password is held only with bootstrap on.
        "bootstrap.enabled=true",
        "bootstrap.admin.email=admin@example.com",
        "bootstrap.provider.endpointUrl=https://nai.example.com/api/v1",
        "bootstrap.provider.models[0]=llama-3-8b",
        "bootstrap.provider.apiKeySecret.name=nai",
        "bootstrap.provider.apiKeySecret.key=api-key",
    ];
    render_release(&release_spec(set.map(str::to_owned).to_vec(), master)).expect("renders")
}

/// The keys Secret of a render: the one holding `SECRET_KEY`, as text.
fn keys_secret(r: &RenderedRelease) -> BTreeMap<String, String> {
    let name = r
        .manifest
        .resources
        .iter()
        .filter(|s| s.kind == "Secret")
        .map(|s| s.name.clone())
        .find(|name| secret_data(&r.manifest, name).contains_key("SECRET_KEY"))
        .expect("the render has a keys Secret");
    secret_data(&r.manifest, &name)
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v).expect("keys are text")))
        .collect()
}

#[test]
fn the_table_of_derived_keys_is_frozen() {
    let (_, rows) = vectors();
    let table: Vec<(&str, &str, usize, &str)> = DERIVED_KEYS
        .iter()
        .map(|k| {
            let format = match k.format {
                KeyFormat::Hex => "hex",
                KeyFormat::Base64Url32 => "base64url",
                KeyFormat::Password => "password",
            };
            (k.value, k.purpose, k.length, format)
        })
        .collect();
    let frozen: Vec<(&str, &str, usize, &str)> = rows
        .iter()
        .map(|v| {
            (
                v.value.as_str(),
                v.purpose.as_str(),
                v.length,
                v.format.as_str(),
            )
        })
        .collect();
    assert_eq!(
        table, frozen,
        "DERIVED_KEYS (value, purpose label, length, format) differs from the frozen table in \
         tests/data/derived-keys.txt: a changed label or length changes a password an existing \
         volume depends on"
    );
}

#[test]
fn derive_gives_the_known_answers() {
    let (master, rows) = vectors();
    for v in &rows {
        let spec = DERIVED_KEYS
            .iter()
            .find(|k| k.value == v.value)
            .expect("every vector has its DERIVED_KEYS row");
        let key = match v.format.as_str() {
            "hex" => derive(&master, &v.purpose)[..v.length].to_owned(),
            _ => derive_key(&master, spec),
        };
        assert_eq!(
            key, v.expected,
            "derive({:?}) is not HMAC-SHA256(master, \"difyrender/v1/{}\") as Python computes it",
            v.purpose, v.purpose
        );
    }
}

#[test]
fn the_rendered_keys_secret_holds_the_known_answers() {
    let (master, rows) = vectors();
    let data = keys_secret(&render(&master));
    assert_eq!(
        data["SECRET_KEY"], master,
        "SECRET_KEY is the master key itself"
    );
    for v in &rows {
        assert_eq!(
            data.get(&v.secret_key),
            Some(&v.expected),
            "{} (secrets.{}, purpose {}) in the rendered keys Secret",
            v.secret_key,
            v.value,
            v.purpose
        );
    }
    // Hex needs no percent-encoding: the URL form is the password itself.
    let redis = rows.iter().find(|v| v.value == "redisPassword").unwrap();
    assert_eq!(data["REDIS_PASSWORD_URL"], redis.expected);
}

#[test]
fn every_derived_key_is_distinct_and_non_empty() {
    let (master, rows) = vectors();
    let data = keys_secret(&render(&master));
    let mut seen = BTreeSet::new();
    for v in &rows {
        let key = data
            .get(&v.secret_key)
            .unwrap_or_else(|| panic!("{} is missing from the keys Secret", v.secret_key));
        assert!(!key.is_empty(), "{} is empty", v.secret_key);
        assert_ne!(key, &master, "{} is the master key", v.secret_key);
        assert!(
            seen.insert(key.clone()),
            "{} equals another derived key",
            v.secret_key
        );
    }
    assert_eq!(seen.len(), DERIVED_KEYS.len());

    // Another master key changes every one of them.
    let other = keys_secret(&render("another-throwaway-master-key-for-the-test"));
    for v in &rows {
        assert_ne!(
            other[&v.secret_key], data[&v.secret_key],
            "{} does not depend on the master key",
            v.secret_key
        );
    }
}
