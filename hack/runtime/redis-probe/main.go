// redis-probe: the plugin daemon's Redis client, rebuilt from its source for the runtime lane
// (the daemon's module is not served by the Go module proxy, see docs/development.md).
//
// Mirrors: langgenius/dify-plugin-daemon internal/types/app/config.go, internal/utils/cache and
// internal/core/plugin_manager/manager.go. Tag to check against: 0.6.0-local (what Dify 1.14.1,
// the release the test renders, pins; RedisTLSConfig exists from 0.5.3). Commit: not recorded,
// nor the tag it was first read at: the repository cannot be fetched from this machine (only
// package registries are reachable; the Go module proxy refuses it), so neither could be read
// here. A re-implementation of those lines, not the daemon's code; the client library is the
// real one, github.com/redis/go-redis/v9 v9.6.3 (go.mod), the daemon's pin.
//
// It reads the daemon's Redis environment as the daemon's envconfig does
// (internal/types/app/config.go: REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD,
// REDIS_DB, REDIS_USE_SSL, REDIS_SSL_CERT_REQS, REDIS_SSL_CA_CERTS), builds the TLS
// configuration as that file's Config.RedisTLSConfig does (daemon 0.5.3+), the client options
// as internal/utils/cache's getRedisOptions (Addr, Username, Password, DB, and the TLS
// configuration when REDIS_USE_SSL), and, as PluginManager.Launch
// (internal/core/plugin_manager/manager.go) calls InitRedisClient, pings. Then it stores
// VALUE under KEY and reads it back, as the daemon's cache.Store and cache.GetString do.
//
// Usage: redis-probe KEY VALUE. Exit status 0: stored and read back; 2: the daemon would not
// start (its TLS configuration is refused); 1: the connection or a command failed.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

type config struct {
	host, user, pass, certReqs, caCerts string
	port                                uint64
	db                                  int
	useSsl                              bool
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "redis-probe: "+format+"\n", args...)
	os.Exit(code)
}

// load reads the environment as envconfig does: unset is the zero value, a malformed number
// or boolean is an error.
func load() config {
	c := config{
		host:     os.Getenv("REDIS_HOST"),
		user:     os.Getenv("REDIS_USERNAME"),
		pass:     os.Getenv("REDIS_PASSWORD"),
		certReqs: os.Getenv("REDIS_SSL_CERT_REQS"),
		caCerts:  os.Getenv("REDIS_SSL_CA_CERTS"),
	}
	var err error
	if v := os.Getenv("REDIS_PORT"); v != "" {
		if c.port, err = strconv.ParseUint(v, 0, 16); err != nil {
			fail(2, "REDIS_PORT: %v", err)
		}
	}
	if v := os.Getenv("REDIS_DB"); v != "" {
		if c.db, err = strconv.Atoi(v); err != nil {
			fail(2, "REDIS_DB: %v", err)
		}
	}
	if v := os.Getenv("REDIS_USE_SSL"); v != "" {
		if c.useSsl, err = strconv.ParseBool(v); err != nil {
			fail(2, "REDIS_USE_SSL: %v", err)
		}
	}
	return c
}

// tlsConfig is the daemon's Config.RedisTLSConfig.
func (c config) tlsConfig() (*tls.Config, error) {
	if !c.useSsl {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if strings.TrimSpace(c.caCerts) != "" {
		pem, err := os.ReadFile(c.caCerts)
		if err != nil {
			return nil, fmt.Errorf("read REDIS_SSL_CA_CERTS: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("failed to append CA certs from %s", c.caCerts)
		}
		conf.RootCAs = pool
	}
	reqs := strings.ToUpper(strings.TrimSpace(c.certReqs))
	switch reqs {
	case "CERT_NONE":
		conf.InsecureSkipVerify = true
	case "CERT_OPTIONAL", "CERT_REQUIRED", "":
		conf.InsecureSkipVerify = false
		if reqs == "CERT_REQUIRED" && strings.TrimSpace(c.caCerts) == "" {
			return nil, fmt.Errorf("REDIS_SSL_CA_CERTS must be provided when REDIS_SSL_CERT_REQS is set to CERT_REQUIRED")
		}
	default:
		return nil, fmt.Errorf("invalid REDIS_SSL_CERT_REQS value: %s (valid options: CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED)", reqs)
	}
	return conf, nil
}

func main() {
	if len(os.Args) != 3 {
		fail(2, "usage: redis-probe KEY VALUE")
	}
	key, value := os.Args[1], os.Args[2]
	c := load()
	tlsConf, err := c.tlsConfig()
	if err != nil {
		fail(2, "invalid Redis TLS config: %v", err)
	}
	opts := &redis.Options{
		Addr:     fmt.Sprintf("%s:%d", c.host, c.port),
		Username: c.user,
		Password: c.pass,
		DB:       c.db,
	}
	if c.useSsl {
		opts.TLSConfig = tlsConf
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		fail(1, "init redis client failed: %v", err)
	}
	// cache.Store prefixes keys with plugin_daemon:.
	full := "plugin_daemon:" + key
	if err := client.Set(ctx, full, value, time.Minute).Err(); err != nil {
		fail(1, "SET: %v", err)
	}
	got, err := client.Get(ctx, full).Result()
	if err != nil {
		fail(1, "GET: %v", err)
	}
	fmt.Println(got)
}
