// The Prometheus operator's CRDs (PodMonitor) for the tests of monitoring.enabled: the release
// of kube-prometheus-stack 78 (NKP 2.17). Only the CRD YAML under example/prometheus-operator-crd
// is used; nothing is built.
module difyrender/hack/testenv/prometheus-operator

go 1.24

require github.com/prometheus-operator/prometheus-operator v0.86.1
