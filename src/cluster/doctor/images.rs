//! Images: every one pinned to a tag.

use super::Check;
use crate::release::RenderedRelease;

/// Whether an image reference floats: `:latest`, or no tag and no digest.
fn floats(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let name = image.rsplit('/').next().unwrap_or(image);
    name.rsplit_once(':').is_none_or(|(_, tag)| tag == "latest")
}

/// Every image pinned to a tag: a `:latest` (or untagged) override changes what runs whenever
/// a node pulls again, and a rollback cannot return to it.
pub(super) fn image_tags(rendered: &RenderedRelease) -> Check {
    let floating: Vec<String> = rendered
        .dify
        .images_run(
            rendered
                .manifest
                .resources
                .iter()
                .map(|r| (r.component.as_str(), &r.body)),
        )
        .into_iter()
        .filter(|i| floats(&i.image))
        .map(|i| format!("{}: {}", i.components.join(", "), i.image))
        .collect();
    if floating.is_empty() {
        return Check::pass("images", "every image is pinned to a tag");
    }
    Check::warn(
        "images",
        format!("{} image(s) float on :latest or no tag", floating.len()),
    )
    .details(floating)
    .fix("set images.<component>.tag to a version tag (`difyrender images` lists the release's pins)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floating_tags() {
        assert!(floats("ubuntu/squid:latest") && floats("registry:5000/squid"));
        assert!(!floats("registry:5000/squid:6.6") && !floats("squid@sha256:0123"));
    }
}
