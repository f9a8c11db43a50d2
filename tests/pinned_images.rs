//! No image floats by default: for every release of the table, `difyrender images` lists only
//! images pinned to a version tag (squid was `:latest` in the compose file; the chart pins it).

mod common;

use common::*;

const MASTER: &str = "pinned-images-test-master-key-0123456789";

#[test]
fn every_release_pins_every_image() {
    let table = difyrender::chart::Chart::embedded().versions;
    assert!(!table.releases.is_empty());
    for release in &table.releases {
        let out = difyrender()
            .args(["images", "--set"])
            .arg(format!("images.dify.tag={}", release.version))
            .env("DIFY_SECRET_KEY", MASTER)
            .output()
            .unwrap();
        let text = transcript(&out);
        assert!(out.status.success(), "{text}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.lines().count() >= 9, "{text}");
        for image in stdout.lines() {
            let name = image.rsplit('/').next().unwrap();
            let tag = name.rsplit_once(':').map(|(_, t)| t);
            assert!(
                tag.is_some_and(
                    |t| t != "latest" && t.chars().next().is_some_and(|c| c.is_ascii_digit())
                ),
                "{}: {image} is not pinned to a version tag",
                release.version
            );
        }
    }
    // Negative control: an override to :latest is listed as such (doctor warns about it).
    let out = difyrender()
        .args(["images", "--set", "images.ssrfProxy.tag=latest"])
        .env("DIFY_SECRET_KEY", MASTER)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("ubuntu/squid:latest\n"));
}
