// Package testserver starts an in-process sigil server on a random port
// with a temporary data directory, torn down in t.Cleanup. It is apart from
// package testutil so that the packages the server is built from can use
// testutil's databases and issuers in their own tests.
package testserver

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"sigil.dev/sigil/internal/server"
)

// Server is a running in-process sigil server.
type Server struct {
	*server.Server
	// Config is the configuration the server runs with.
	Config server.Config
	// AccessKeyID and SecretAccessKey are the root credentials read back
	// from root.credentials.
	AccessKeyID, SecretAccessKey string
	// Logs holds everything the server logged, for tests that search it.
	Logs *LogBuffer
}

// ServerOption adjusts the configuration before the server starts.
type ServerOption func(*server.Config, *server.Options)

// WithConfig lets a test change any configuration field.
func WithConfig(f func(*server.Config)) ServerOption {
	return func(c *server.Config, _ *server.Options) { f(c) }
}

// WithClock injects the server's clock.
func WithClock(now func() time.Time) ServerOption {
	return func(_ *server.Config, o *server.Options) { o.Now = now }
}

// StartServer starts a sigil server on 127.0.0.1 with a random port, a
// temporary data directory and the file key provider, and stops it when
// the test ends.
func StartServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := server.Config{Listen: "127.0.0.1:0", DataDir: dir, ShutdownTimeout: 5 * time.Second}
	logs := &LogBuffer{}
	sopts := server.Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, o := range opts {
		o(&cfg, &sopts)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test server config: %v", err)
	}
	srv, err := server.New(context.Background(), cfg, sopts)
	if err != nil {
		t.Fatalf("starting test server: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("starting test server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("stopping test server: %v", err)
		}
	})
	ts := &Server{Server: srv, Config: cfg, Logs: logs}
	if cfg.KeyProvider != "shamir" {
		ts.AccessKeyID, ts.SecretAccessKey = ReadCredentials(t, filepath.Join(cfg.DataDir, server.RootCredentialsFile))
	}
	return ts
}

// AWSConfig returns an aws.Config that talks to the server as root: static
// credentials, the server's region and, for every service, its URL.
func (s *Server) AWSConfig() aws.Config {
	return AWSConfigFor(s.URL(), s.Config.Region, s.AccessKeyID, s.SecretAccessKey, "")
}

// AWSConfigFor returns an aws.Config for the given endpoint and credentials,
// with retries off so tests see every error as it is.
func AWSConfigFor(endpoint, region, id, secret, token string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, token),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// ReadCredentials parses an aws credentials file and returns the default
// profile's key pair.
func ReadCredentials(t testing.TB, path string) (id, secret string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("reading root credentials: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			id = strings.TrimSpace(v)
		case "aws_secret_access_key":
			secret = strings.TrimSpace(v)
		}
	}
	if id == "" || secret == "" {
		t.Fatalf("root credentials file %s has no key pair", path)
	}
	return id, secret
}

// LogBuffer is a concurrency-safe io.Writer that keeps everything written.
type LogBuffer struct {
	mu  sync.Mutex
	buf []byte
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

var _ io.Writer = (*LogBuffer)(nil)
