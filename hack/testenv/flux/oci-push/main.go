// Command oci-push publishes a directory as a Flux OCI artifact, as
// `flux push artifact` and `nkp push bundle` do: one gzipped tarball layer
// (application/vnd.cncf.flux.content.v1.tar+gzip) under the Flux config media
// type, with the OpenContainers source/revision/created annotations. It uses
// fluxcd/pkg/oci, the library behind `flux push artifact`, without the flux
// CLI's other dependencies.
//
//	oci-push [--insecure] [--source URL] [--revision REV] DIR REGISTRY/REPO:TAG
//
// On success it prints the pushed reference with its digest.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fluxcd/pkg/oci"
	"github.com/google/go-containerregistry/pkg/crane"
)

func main() {
	insecure := flag.Bool("insecure", false, "plain HTTP (a loopback test registry)")
	source := flag.String("source", "", "org.opencontainers.image.source annotation")
	revision := flag.String("revision", "", "org.opencontainers.image.revision annotation")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: oci-push [--insecure] [--source URL] [--revision REV] DIR REGISTRY/REPO:TAG")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	dir, ref := flag.Arg(0), flag.Arg(1)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(os.Stderr, "oci-push: %s is not a directory\n", dir)
		os.Exit(2)
	}
	var opts []crane.Option
	if *insecure {
		opts = append(opts, crane.Insecure)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	digest, err := oci.NewClient(opts).Push(ctx, ref, dir,
		oci.WithPushMetadata(oci.Metadata{Source: *source, Revision: *revision}))
	if err != nil {
		fmt.Fprintf(os.Stderr, "oci-push: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(digest)
}
