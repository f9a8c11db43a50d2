//! What both [`crate::render`] and [`crate::manifest`] agree on, below both of them (neither
//! imports the other for these): the label keys every object carries and one rendered
//! template's text; and the Kubernetes range the chart is tested on. Code that builds labels outside the chart (the inventory, the test Job,
//! uninstall's selector) uses these constants too.

/// Label keys every object carries.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";
/// The value of `app.kubernetes.io/managed-by`.
pub const MANAGED_BY: &str = "difyrender";
/// The value of `app.kubernetes.io/name` and `app.kubernetes.io/part-of`.
pub const APP_NAME: &str = "dify";

/// Kubernetes minor versions (of 1.x) this chart is tested on, the one place the range is
/// kept: NKP 2.16–2.18 ship 1.32–1.34, and the test control plane runs 1.34. `doctor` checks
/// the cluster against it and a catalog entry's `.bloodhound.yml` lists it.
pub const TESTED_MINORS: (u32, u32) = (32, 34);

/// One rendered template's text.
#[derive(Debug, Clone)]
pub struct RenderedTemplate {
    /// `templates/api.yaml`
    pub name: String,
    pub text: String,
}
