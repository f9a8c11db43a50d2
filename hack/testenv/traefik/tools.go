//go:build tools

// Package tools pins the Traefik command that `scripts/testenv build-traefik`
// builds (go build github.com/traefik/traefik/v3/cmd/traefik): NKP 2.18's
// ingress controller, run by the Traefik lane (tests/traefik/) with its
// Kubernetes Ingress, CRD and Gateway API providers.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
