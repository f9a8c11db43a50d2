// The External Secrets Operator's CRDs (ExternalSecret) for the tests of
// secrets.externalSecret: NKP 2.17 ships ESO 0.20.2, which the module proxy does not serve;
// 0.20.4 is the nearest patch of the same minor (same external-secrets.io/v1 API). Only the
// CRD YAML under config/crds/bases is used; nothing is built.
module difyrender/hack/testenv/external-secrets

go 1.24

require github.com/external-secrets/external-secrets v0.20.4
