//! The platform applications' CRDs of each NKP release, one release after the other in one
//! control plane: the objects difyrender renders for them — the `ExternalSecret` of
//! `secrets.externalSecret` and the `PodMonitor` of `monitoring.enabled` — pass a strict
//! server-side dry run against the CRDs NKP 2.17 ships and against those of NKP 2.18.
//!
//! The versions are facts of ../shared/reference/nkp-catalog/README.md ("Platform applications");
//! each pin under hack/testenv/ says which release it is, and why where it is not exactly the one
//! NKP ships. The test checks the pins against both: the reference's row of each NKP release, and
//! the version the CRDs themselves carry.

mod common;
use common::cluster::{self, ok};
use common::*;

shared_cluster!("platform-crds");

/// One NKP release's platform applications, as the reference lists them, and the pins that
/// stand for them.
struct Platform {
    nkp: &'static str,
    /// External Secrets Operator release NKP ships, and the pin (folder, version) tested.
    eso: &'static str,
    eso_pin: (&'static str, &'static str),
    /// kube-prometheus-stack release NKP ships, its operator, and the operator's pin folder.
    kube_prometheus_stack: &'static str,
    operator: &'static str,
    operator_pin: &'static str,
}

const PLATFORMS: &[Platform] = &[
    Platform {
        nkp: "2.17",
        eso: "0.20.2",
        // 0.20.2 is not served by the module proxy; 0.20.4 is the same minor (hack/testenv).
        eso_pin: ("external-secrets", "v0.20.4"),
        kube_prometheus_stack: "78.4.0",
        operator: "0.86.1",
        operator_pin: "prometheus-operator",
    },
    Platform {
        nkp: "2.18",
        eso: "2.3.0",
        // 2.x is not served by the module proxy; 1.3.2 is the newest release it serves, with
        // the external-secrets.io/v1 API 2.x kept (hack/testenv/external-secrets-nkp-2.18).
        eso_pin: ("external-secrets-nkp-2.18", "v1.3.2"),
        kube_prometheus_stack: "82.13.6",
        operator: "0.89.0",
        operator_pin: "prometheus-operator-nkp-2.18",
    },
];

const ESO_MODULE: &str = "github.com/external-secrets/external-secrets";
const OPERATOR_MODULE: &str = "github.com/prometheus-operator/prometheus-operator";

/// The objects for both platform applications, rendered into `ns`.
fn render(ns: &str) -> String {
    let out = difyrender()
        .arg("render")
        .args(["-n", ns])
        .args(root_profile())
        .args(["--set", "external.host=192.0.2.10"])
        .args(ESO)
        .args(["--set", "monitoring.enabled=true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Only the documents of `kinds` from a stream.
fn only(stream: &str, kinds: &[&str]) -> String {
    difyrender::yaml::from_str_multiple(stream)
        .unwrap()
        .into_iter()
        .filter(|o| kinds.contains(&o["kind"].as_str().unwrap()))
        .map(|o| format!("---\n{}", difyrender::yaml::to_string(&o)))
        .collect()
}

/// The reference's row of the platform applications for NKP `nkp`.
fn reference_row(nkp: &str) -> String {
    let readme = read(&root().join("../shared/reference/nkp-catalog/README.md"));
    let table = readme
        .split("## Platform applications")
        .nth(1)
        .expect("the reference has the platform applications' table");
    table
        .lines()
        .find(|l| l.starts_with(&format!("| {nkp} |")))
        .unwrap_or_else(|| panic!("the reference has no row for NKP {nkp}"))
        .to_owned()
}

/// Both releases, in order: the pins are the stated ones, and the rendered ExternalSecret and
/// PodMonitor pass the dry run against each release's CRDs. Each release's CRDs are created
/// fresh (the previous release's are deleted first), so the API server validates against the
/// schema just installed and not one it still holds. Before any CRD is installed the same dry
/// run is refused, naming both kinds: the dry run checks them against the CRDs, it does not pass
/// them through.
#[test]
fn the_platform_objects_pass_the_crds_of_every_nkp_release() {
    let ns = "t-platform";
    ok(&kubectl(&["create", "namespace", ns]));
    let stream = only(&render(ns), &["ExternalSecret", "PodMonitor"]);
    assert_eq!(stream.matches("\n---\n").count() + 1, 2, "{stream}");

    let refused = cluster::strict_dry_run_output(&stream, "difyrender", kubeconfig());
    let text = transcript(&refused);
    assert!(!refused.status.success(), "{text}");
    for kind in ["ExternalSecret", "PodMonitor"] {
        assert!(
            text.contains(&format!("no matches for kind \"{kind}\"")),
            "{kind}: {text}"
        );
    }

    for p in PLATFORMS {
        let row = reference_row(p.nkp);
        for fact in [p.eso, p.kube_prometheus_stack] {
            assert!(
                row.contains(&format!("| {fact} ")),
                "NKP {}: the reference's row says otherwise: {row}",
                p.nkp
            );
        }

        let eso = cluster::pinned_module(p.eso_pin.0, ESO_MODULE);
        assert!(
            eso.ends_with(format!("external-secrets@{}", p.eso_pin.1)),
            "NKP {}: hack/testenv/{} pins {}",
            p.nkp,
            p.eso_pin.0,
            eso.display()
        );
        let operator = cluster::pinned_module(p.operator_pin, OPERATOR_MODULE)
            .join("example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml");
        assert!(
            read(&operator).contains(&format!("operator.prometheus.io/version: {}\n", p.operator)),
            "NKP {}: hack/testenv/{} is not operator {}",
            p.nkp,
            p.operator_pin,
            p.operator
        );

        let crds = [
            (
                eso.join("config/crds/bases/external-secrets.io_externalsecrets.yaml"),
                "externalsecrets.external-secrets.io",
            ),
            (operator, "podmonitors.monitoring.coreos.com"),
        ];
        for (file, crd) in &crds {
            cluster::install_crds(file, crd, kubeconfig());
        }
        cluster::strict_dry_run(
            &stream,
            "difyrender",
            kubeconfig(),
            &format!("NKP {}", p.nkp),
        );
        // `kubectl delete` waits until the CRD is gone.
        for (_, crd) in &crds {
            ok(&kubectl(&["delete", "crd", crd]));
        }
    }
}
