// The Prometheus operator's CRDs as NKP 2.18 serves them, for tests/platform_crds.rs: NKP 2.18
// ships kube-prometheus-stack 82.13.6, whose operator is v0.89.0 (kube-prometheus-stack 83.0.0
// moved to 0.90.1). Only the CRD YAML under example/prometheus-operator-crd is used.
module difyrender/hack/testenv/prometheus-operator-nkp-2.18

go 1.24

require github.com/prometheus-operator/prometheus-operator v0.89.0
