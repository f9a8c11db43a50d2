//go:build tools

// Keeps the server's main package (and so its dependencies) in go.mod and go.sum.
package tools

import _ "github.com/minio/minio"
