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

/// The Kubernetes minor versions (of 1.x) one NKP release validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NkpKubernetes {
    /// `2.18`
    pub nkp: &'static str,
    /// Oldest and newest minor, both included.
    pub minors: (u32, u32),
}

/// The Kubernetes versions each NKP release validates (the `.bloodhound.yml` of its
/// kommander-applications release; shared/reference/nkp-catalog/README.md), the one place they
/// are kept. `doctor` checks the cluster against it, a catalog entry's `k8sVersionSupport` and
/// `.bloodhound.yml` list it.
pub const NKP_KUBERNETES: &[NkpKubernetes] = &[
    NkpKubernetes {
        nkp: "2.16",
        minors: (31, 33),
    },
    NkpKubernetes {
        nkp: "2.17",
        minors: (32, 34),
    },
    NkpKubernetes {
        nkp: "2.18",
        minors: (33, 35),
    },
];

/// The NKP releases that validate Kubernetes 1.`minor`.
pub fn nkp_releases_for(minor: u32) -> Vec<NkpKubernetes> {
    NKP_KUBERNETES
        .iter()
        .filter(|n| (n.minors.0..=n.minors.1).contains(&minor))
        .copied()
        .collect()
}

/// Oldest and newest minor of every row of [`NKP_KUBERNETES`].
const fn span(rows: &[NkpKubernetes]) -> (u32, u32) {
    let (mut lo, mut hi) = (rows[0].minors.0, rows[0].minors.1);
    let mut i = 1;
    while i < rows.len() {
        if rows[i].minors.0 < lo {
            lo = rows[i].minors.0;
        }
        if rows[i].minors.1 > hi {
            hi = rows[i].minors.1;
        }
        i += 1;
    }
    (lo, hi)
}

/// Kubernetes minor versions (of 1.x) this chart supports: every version an NKP release of
/// [`NKP_KUBERNETES`] validates (1.31–1.35).
pub const TESTED_MINORS: (u32, u32) = span(NKP_KUBERNETES);

/// One rendered template's text.
#[derive(Debug, Clone)]
pub struct RenderedTemplate {
    /// `templates/api.yaml`
    pub name: String,
    pub text: String,
}
