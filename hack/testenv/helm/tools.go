//go:build tools

// Package tools pins the helm command that `scripts/testenv build-helm`
// builds (go build helm.sh/helm/v4/cmd/helm).
package tools

import _ "helm.sh/helm/v4/cmd/helm"
