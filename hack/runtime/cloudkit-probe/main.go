// cloudkit-probe stores a plugin package the way the Dify plugin daemon does, with the daemon's
// storage library (the real module, github.com/langgenius/dify-cloud-kit v0.1.0, go.mod) and a
// re-implementation of how the daemon reads its environment and maps it to that library:
//
// Mirrors: langgenius/dify-plugin-daemon internal/types/app/config.go, cmd/server/main.go,
// internal/server/server.go (initOSS) and
// internal/core/plugin_manager/media_transport/package_bucket.go. Tag to check against:
// 0.6.0-local (what Dify 1.14.1, the release the test renders, pins). Commit: not recorded, nor
// the tag it was first read at: the repository cannot be fetched from this machine (only
// package registries are reachable; the Go module proxy refuses it), so neither could be read
// here. A re-implementation of those lines, not the daemon's code.
//
//   - the environment is read by github.com/kelseyhightower/envconfig into the fields of the
//     daemon's app.Config that its storage uses, with the daemon's tags and defaults
//     (langgenius/dify-plugin-daemon internal/types/app/config.go; cmd/server/main.go calls
//     envconfig.Process("", &config), then config.SetDefault() and config.Validate());
//   - the storage is factory.Load(PLUGIN_STORAGE_TYPE, oss.OSSArgs{...}) with the S3 and Local
//     arguments mapped field by field as the daemon's initOSS does
//     (internal/server/server.go; the other providers' arguments are left out);
//   - a package is saved at path.Join(PLUGIN_PACKAGE_CACHE_PATH, name), as the daemon's
//     PackageBucket.Save does (internal/core/plugin_manager/media_transport/package_bucket.go).
//
// Usage: cloudkit-probe NAME FILE. Saves FILE's bytes as package NAME, loads them back, checks
// they are equal and that listing PLUGIN_PACKAGE_CACHE_PATH shows NAME, then prints one JSON
// line {"key", "size", "sha256", "listed"}. Any failure exits 1 with the error on stderr.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"

	"github.com/kelseyhightower/envconfig"
	"github.com/langgenius/dify-cloud-kit/oss"
	"github.com/langgenius/dify-cloud-kit/oss/factory"
)

// config holds the daemon's app.Config fields that storage reads, with the daemon's tags.
type config struct {
	PluginStorageType      string `envconfig:"PLUGIN_STORAGE_TYPE" validate:"required"`
	PluginStorageOSSBucket string `envconfig:"PLUGIN_STORAGE_OSS_BUCKET"`
	PluginStorageLocalRoot string `envconfig:"PLUGIN_STORAGE_LOCAL_ROOT"`

	// aws s3
	S3UseAwsManagedIam bool   `envconfig:"S3_USE_AWS_MANAGED_IAM" default:"false"`
	S3UseAWS           bool   `envconfig:"S3_USE_AWS" default:"true"`
	S3Endpoint         string `envconfig:"S3_ENDPOINT"`
	S3UsePathStyle     bool   `envconfig:"S3_USE_PATH_STYLE" default:"true"`
	AWSAccessKey       string `envconfig:"AWS_ACCESS_KEY"`
	AWSSecretKey       string `envconfig:"AWS_SECRET_KEY"`
	AWSRegion          string `envconfig:"AWS_REGION"`

	PluginInstalledPath    string `envconfig:"PLUGIN_INSTALLED_PATH" validate:"required"`
	PluginPackageCachePath string `envconfig:"PLUGIN_PACKAGE_CACHE_PATH"`
	PluginMediaCachePath   string `envconfig:"PLUGIN_MEDIA_CACHE_PATH"`
}

// setDefault: the daemon's config.SetDefault for these fields (internal/types/app/default.go).
func (c *config) setDefault() {
	def := func(field *string, value string) {
		if *field == "" {
			*field = value
		}
	}
	def(&c.PluginStorageLocalRoot, "storage")
	def(&c.PluginInstalledPath, "plugin")
	def(&c.PluginMediaCachePath, "assets")
	def(&c.PluginPackageCachePath, "plugin_packages")
}

// validate: the daemon's config.Validate for these fields.
func (c *config) validate() error {
	if c.PluginStorageType == "" {
		return errors.New("PLUGIN_STORAGE_TYPE is required")
	}
	if c.PluginPackageCachePath == "" {
		return errors.New("plugin package cache path is empty")
	}
	if c.PluginStorageType == oss.OSS_TYPE_S3 {
		if c.PluginStorageOSSBucket == "" {
			return errors.New("plugin storage bucket is empty")
		}
		if c.AWSRegion == "" {
			return errors.New("aws region is empty")
		}
	}
	return nil
}

// load: the daemon's initOSS, S3 and Local arguments.
func load(c *config) (oss.OSS, error) {
	return factory.Load(c.PluginStorageType, oss.OSSArgs{
		Local: &oss.Local{
			Path: c.PluginStorageLocalRoot,
		},
		S3: &oss.S3{
			UseAws:       c.S3UseAWS,
			Endpoint:     c.S3Endpoint,
			UsePathStyle: c.S3UsePathStyle,
			AccessKey:    c.AWSAccessKey,
			SecretKey:    c.AWSSecretKey,
			Bucket:       c.PluginStorageOSSBucket,
			Region:       c.AWSRegion,
			UseIamRole:   c.S3UseAwsManagedIam,
		},
	})
}

func run(name, file string) error {
	var c config
	if err := envconfig.Process("", &c); err != nil {
		return fmt.Errorf("error processing environment variables: %w", err)
	}
	c.setDefault()
	if err := c.validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	storage, err := load(&c)
	if err != nil {
		return fmt.Errorf("failed to create storage: %w", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	key := path.Join(c.PluginPackageCachePath, name)
	if err := storage.Save(key, data); err != nil {
		return fmt.Errorf("save %s: %w", key, err)
	}
	back, err := storage.Load(key)
	if err != nil {
		return fmt.Errorf("load %s: %w", key, err)
	}
	if !bytes.Equal(back, data) {
		return fmt.Errorf("load %s: %d bytes differ from the %d saved", key, len(back), len(data))
	}
	paths, err := storage.List(c.PluginPackageCachePath)
	if err != nil {
		return fmt.Errorf("list %s: %w", c.PluginPackageCachePath, err)
	}
	listed := make([]string, 0, len(paths))
	for _, p := range paths {
		listed = append(listed, p.Path)
	}
	if !slices.Contains(listed, name) {
		return fmt.Errorf("list %s: %s is not listed", c.PluginPackageCachePath, name)
	}
	sum := sha256.Sum256(data)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"key":    key,
		"size":   len(data),
		"sha256": hex.EncodeToString(sum[:]),
		"listed": listed,
	})
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: cloudkit-probe NAME FILE")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "cloudkit-probe:", err)
		os.Exit(1)
	}
}
