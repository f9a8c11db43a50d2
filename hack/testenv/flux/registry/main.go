// Command registry is the CNCF distribution registry (`registry serve CONFIG`)
// with only the filesystem storage driver: the module's own cmd/registry also
// links the S3, GCS and Azure drivers, the proxy and token auth, which a
// loopback test registry never uses.
package main

import (
	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

func main() {
	// RootCmd exits non-zero by itself when serving fails.
	_ = registry.RootCmd.Execute()
}
