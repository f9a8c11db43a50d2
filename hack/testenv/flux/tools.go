//go:build tools

// Package tools pins the Flux controllers that `scripts/testenv build-flux`
// builds (their main packages are the modules' roots).
package tools

import (
	_ "github.com/fluxcd/kustomize-controller"
	_ "github.com/fluxcd/source-controller"
)
