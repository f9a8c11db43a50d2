// The External Secrets Operator's CRDs as NKP 2.18 serves them, for tests/platform_crds.rs.
// NKP 2.18 ships ESO 2.3.0, which the module proxy does not serve (v2.x tags carry no /v2
// module path; the proxy answers "not available" for v2.3.0, v2.3.0+incompatible and /v2);
// v1.3.2 is the newest release it serves: the same external-secrets.io/v1 API (v1beta1 no
// longer served), the API 2.x kept. Only the CRD YAML under config/crds/bases is used.
module difyrender/hack/testenv/external-secrets-nkp-2.18

go 1.24

require github.com/external-secrets/external-secrets v1.3.2
