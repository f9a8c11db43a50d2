use super::*;
use serde_json::{Value, json};

fn table() -> ReleaseTable {
    ReleaseTable::parse(include_bytes!("../../versions.yaml")).expect("the chart's table reads")
}

fn defaults() -> Value {
    Value::Object(crate::chart::Chart::embedded().default_values)
}

fn values(tag: &str) -> Value {
    let mut v = defaults();
    v["images"]["dify"]["tag"] = json!(tag);
    v
}

#[test]
fn version_order() {
    let k = |v: &str| VersionKey::parse(v).unwrap();
    assert!(k("1.10.1") < k("1.10.1-fix.1"));
    assert!(k("1.10.1-fix.1") < k("1.11.0"));
    assert!(k("2.0.0-beta.2") < k("2.0.0"));
    assert!(k("1.9.2") < k("1.10.0"));
    for bad in ["latest", "1.11", "1.11.4.1", "", "1.x.0", "1.11.4-"] {
        assert!(VersionKey::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn the_table_is_consistent() {
    let t = table();
    assert_eq!(t.releases.first().unwrap().version, "1.10.0");
    assert_eq!(t.releases.last().unwrap().version, "1.16.1");
    assert_eq!(t.releases.len(), 20);
}

#[test]
fn a_bad_table_is_refused_with_the_reason() {
    let text = String::from_utf8(include_bytes!("../../versions.yaml").to_vec()).unwrap();
    let swapped = text.replacen("alembicHead: 669ffd70119c", "alembicHead: 905527cc8fd3", 1);
    let e = ReleaseTable::parse(swapped.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("goes back to Alembic head"), "{e}");
    let unknown = text.replacen(
        "date: \"2025-11-13\"",
        "date: \"2025-11-13\"\n    extra: 1",
        1,
    );
    let e = ReleaseTable::parse(unknown.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("extra"), "{e}");
    // The agent stack's images come with its switch, and only with it.
    let unpinned = text.replacen(", agentBackend: \"1.16.0\"", "", 1);
    assert_ne!(unpinned, text);
    let e = ReleaseTable::parse(unpinned.as_bytes()).unwrap_err();
    assert!(
        e.to_string()
            .contains("release 1.16.0: images.agentBackend"),
        "{e}"
    );
}

#[test]
fn the_tag_picks_every_pinned_image() {
    let r = resolve(&table(), &values("1.13.3"), &defaults(), false).unwrap();
    assert_eq!(
        r.images["plugin-daemon"],
        "langgenius/dify-plugin-daemon:0.5.3-local"
    );
    assert_eq!(r.images["sandbox"], "langgenius/dify-sandbox:0.2.14");
    assert_eq!(r.images["api"], "langgenius/dify-api:1.13.3");
    assert_eq!(r.alembic_head, "6b5f9f8b1a2c");
    assert!(r.overrides().is_empty());
    let mut v = values("1.13.3");
    v["images"]["pluginDaemon"]["tag"] = json!("0.5.4-local");
    v["images"]["registry"] = json!("mirror.example.com/dify/");
    let r = resolve(&table(), &v, &defaults(), false).unwrap();
    let o = r.overrides();
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].component, "plugin-daemon");
    assert_eq!(o[0].pinned, "langgenius/dify-plugin-daemon:0.5.3-local");
    assert_eq!(
        r.images["plugin-daemon"],
        "mirror.example.com/dify/langgenius/dify-plugin-daemon:0.5.4-local"
    );
    assert_eq!(
        r.images["postgresql"],
        "mirror.example.com/dify/postgres:15-alpine"
    );
}

#[test]
fn refusals() {
    let t = table();
    let err = |tag: &str| resolve(&t, &values(tag), &defaults(), false).unwrap_err();
    assert!(matches!(err("2.0.0-beta.2"), Error::Refused { .. }));
    assert!(matches!(err("1.9.2"), Error::TooOld { .. }));
    assert!(matches!(err("latest"), Error::NotAVersion { .. }));
    assert!(matches!(err("1.17.0"), Error::Unknown { .. }));
    // --allow-unknown-release with every image given still gets no queues, head or
    // switches from a neighbour.
    let mut v = values("1.17.0");
    for c in ["pluginDaemon", "sandbox", "weaviate"] {
        v["images"][c]["tag"] = json!("x");
    }
    let e = resolve(&t, &v, &defaults(), true).unwrap_err();
    assert!(matches!(e, Error::UnknownNeedsEntry { .. }), "{e}");
    // Negative control: a table that has the release renders it.
    let mut with_entry = t.clone();
    let mut entry = t.releases.last().unwrap().clone();
    entry.version = "1.17.0".into();
    with_entry.releases.push(entry);
    let r = resolve(&with_entry, &v, &defaults(), true).unwrap();
    assert_eq!(r.celery_queues, t.releases.last().unwrap().celery_queues);
}

#[test]
fn downgrades_are_refused_by_head_order() {
    let t = table();
    let to = |v: &'static str| (v, t.find(v).unwrap().1.alembic_head.as_str());
    let from = Some(("1.14.1", "a4f2d8c9b731"));
    let e = check_upgrade(&t, from, to("1.13.3"), "dify/dify").unwrap_err();
    assert!(e.to_string().contains("refusing to downgrade"), "{e}");
    // Same head, older images: allowed (nothing runs backwards).
    let same_head = check_upgrade(&t, Some(("1.13.3", "6b5f9f8b1a2c")), to("1.13.2"), "x");
    assert!(matches!(
        same_head,
        Ok(Transition::Upgrade {
            migrates: false,
            ..
        })
    ));
    let up = check_upgrade(&t, Some(("1.11.4", "905527cc8fd3")), to("1.13.3"), "x").unwrap();
    assert!(matches!(up, Transition::Upgrade { migrates: true, .. }));
    assert_eq!(
        check_upgrade(&t, None, to("1.13.3"), "x").unwrap(),
        Transition::Install
    );
    // Outside the table, the version number decides.
    let e = check_upgrade(&t, Some(("1.17.0", "")), to("1.14.2"), "x");
    assert!(e.is_err());
    assert!(check_upgrade(&t, Some(("1.14.1", "a4f2d8c9b731")), ("1.17.0", ""), "x").is_ok());
}
