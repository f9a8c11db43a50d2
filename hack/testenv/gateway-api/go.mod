// Gateway API CRDs for the tests of expose.kind=HTTPRoute: the standard channel of the release
// that Traefik 3.3 (NKP 2.16+) implements. Only the CRD YAML under config/crd/standard is used;
// nothing is built.
module difyrender/hack/testenv/gateway-api

go 1.24

require sigs.k8s.io/gateway-api v1.2.1
