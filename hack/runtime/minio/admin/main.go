// minio-admin does what an operator does with `mc` before pointing Dify at a MinIO: make the
// buckets, add a user, and give it a policy that allows those buckets only (`mc mb`,
// `mc admin user add`, `mc admin policy create`, `mc admin policy attach`), through the same
// client libraries mc uses (minio-go, madmin-go), which the MinIO server's module already
// requires: no module beyond the server's.
//
// Usage: minio-admin BUCKET...
// Environment: MINIO_ENDPOINT (host:port, plain HTTP), MINIO_ROOT_USER, MINIO_ROOT_PASSWORD (the
// administrator), USER_ACCESS_KEY, USER_SECRET_KEY (the user to add). Secrets are read from the
// environment only and never printed.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fmt.Fprintf(os.Stderr, "minio-admin: %s is not set\n", name)
		os.Exit(2)
	}
	return v
}

func run(buckets []string) error {
	ctx := context.Background()
	endpoint, root, rootPassword := env("MINIO_ENDPOINT"), env("MINIO_ROOT_USER"), env("MINIO_ROOT_PASSWORD")
	access, secret := env("USER_ACCESS_KEY"), env("USER_SECRET_KEY")
	// MINIO_SECURE=1: TLS, verified against the system store or SSL_CERT_FILE (Go's rules).
	secure := os.Getenv("MINIO_SECURE") == "1"
	s3, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(root, rootPassword, ""), Secure: secure})
	if err != nil {
		return err
	}
	resources := []string{}
	for _, b := range buckets {
		if err := s3.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			return fmt.Errorf("make bucket %s: %w", b, err)
		}
		resources = append(resources, "arn:aws:s3:::"+b, "arn:aws:s3:::"+b+"/*")
	}
	policy, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Effect":   "Allow",
			"Action":   []string{"s3:*"},
			"Resource": resources,
		}},
	})
	if err != nil {
		return err
	}
	admin, err := madmin.New(endpoint, root, rootPassword, secure)
	if err != nil {
		return err
	}
	const name = "dify-buckets"
	if err := admin.AddCannedPolicy(ctx, name, policy); err != nil {
		return fmt.Errorf("create policy: %w", err)
	}
	if err := admin.AddUser(ctx, access, secret); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	if _, err := admin.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{name}, User: access}); err != nil {
		return fmt.Errorf("attach policy: %w", err)
	}
	fmt.Printf("buckets %s; a user with policy %s (s3:* on those buckets only)\n", strings.Join(buckets, ", "), name)
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: minio-admin BUCKET...")
		os.Exit(2)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "minio-admin:", err)
		os.Exit(1)
	}
}
