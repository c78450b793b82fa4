package server

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"time"
)

// Config is the complete configuration of a sigil server. It is filled in
// once by the command line (flags, SIGIL_* environment, YAML file) and
// validated with Validate; the server never reads the environment itself.
type Config struct {
	// Listen is the TCP address to serve on. Default "127.0.0.1:8200".
	Listen string
	// DataDir holds the store, the key file (by default) and
	// root.credentials. Default "./sigil-data". It must not be readable by
	// group or others.
	DataDir string
	// Storage names the storage backend. Only "bolt" (the embedded default)
	// exists today.
	Storage string
	// KeyProvider names the source of the key-encryption key that seals the
	// keyring: "file" (default), "env" or "shamir".
	KeyProvider string
	// KeyFile is the key file of the "file" provider. Default
	// <DataDir>/sigil.key.
	KeyFile string
	// KeyEnv is the base64 key-encryption key of the "env" provider, already
	// read from the environment variable the operator named.
	KeyEnv string
	// KeyEnvName is the name of that variable, for error messages.
	KeyEnvName string
	// AccountID is the 12-digit account id created on first start. Empty
	// means "generate one"; on later starts it must match the stored one.
	AccountID string
	// Region is the AWS region sigil presents. Default "us-east-1".
	Region string
	// TLSCert and TLSKey are PEM files; both or neither. Without them the
	// server speaks plain HTTP (fine on loopback, not elsewhere).
	TLSCert, TLSKey string
	// AuditDir holds the audit log's segments. Default <DataDir>/audit. The
	// audit keys (HMAC and Ed25519 signing) live in DataDir.
	AuditDir string
	// AuditMode is "sync" (default: a request that returns a secret or
	// changes state waits until its record is fsynced), "async", or "off"
	// (no audit log at all: only for measuring what audit costs; the
	// server warns at every start).
	AuditMode string
	// AuditStdout copies every durable audit record to standard output as
	// a JSON line, for container log pipelines.
	AuditStdout bool
	// AuditWebhook, if set, receives batches of records as CloudTrail log
	// documents (POST, retried with backoff, never blocking requests).
	AuditWebhook string
	// AuditCheckpointEvery and AuditCheckpointInterval bound the records
	// and time between signed checkpoints. Defaults 1000 and 10s.
	AuditCheckpointEvery    int
	AuditCheckpointInterval time.Duration
	// AllowInsecureOIDC lets OIDC providers registered with an http:// URL
	// be fetched over plain HTTP. For labs only: anyone on the path can
	// then forge identity tokens.
	AllowInsecureOIDC bool
	// MaxRequestBytes bounds request bodies. Default 1 MiB.
	MaxRequestBytes int64
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	// Default 30s.
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers (slow-client protection). Default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. Default 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. Default 60s.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout time.Duration
	// ReaperInterval is the time between passes of the lease reaper, which
	// revokes expired dynamic database users. Default 10s.
	ReaperInterval time.Duration
	// RotationInterval is the time between passes of the rotation runner,
	// which starts due secret rotations (RotateSecret with
	// RotateImmediately starts at once). Default 30s.
	RotationInterval time.Duration
}

// Defaults for Config fields left empty.
const (
	DefaultListen          = "127.0.0.1:8200"
	DefaultDataDir         = "./sigil-data"
	DefaultRegion          = "us-east-1"
	DefaultMaxRequestBytes = 1 << 20
	DefaultShutdownTimeout = 30 * time.Second
)

var (
	accountIDRe = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// Validate fills in defaults and checks every field, returning the first
// problem with a hint at the fix.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: want host:port, e.g. %s", c.Listen, DefaultListen)
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Storage == "" {
		c.Storage = "bolt"
	}
	if c.Storage != "bolt" {
		return fmt.Errorf("storage backend %q is not supported: use bolt", c.Storage)
	}
	switch c.KeyProvider {
	case "":
		c.KeyProvider = "file"
	case "file", "env", "shamir":
	default:
		return fmt.Errorf("key provider %q is not supported: use file, env or shamir", c.KeyProvider)
	}
	if c.KeyFile == "" {
		c.KeyFile = filepath.Join(c.DataDir, "sigil.key")
	}
	if c.AuditDir == "" {
		c.AuditDir = filepath.Join(c.DataDir, "audit")
	}
	switch c.AuditMode {
	case "":
		c.AuditMode = "sync"
	case "sync", "async", "off":
	default:
		return fmt.Errorf("audit mode %q: use sync, async or off", c.AuditMode)
	}
	if c.AuditCheckpointEvery < 0 {
		return fmt.Errorf("audit checkpoint count %d: must be positive", c.AuditCheckpointEvery)
	}
	if c.KeyProvider == "env" && c.KeyEnv == "" {
		name := c.KeyEnvName
		if name == "" {
			name = "the key environment variable"
		}
		return fmt.Errorf("key provider env: %s is empty: set it to a base64-encoded 32-byte key (e.g. head -c32 /dev/urandom | base64)", name)
	}
	if c.AccountID != "" && !accountIDRe.MatchString(c.AccountID) {
		return fmt.Errorf("account id %q: want exactly 12 digits", c.AccountID)
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if !regionRe.MatchString(c.Region) {
		return fmt.Errorf("region %q: want an AWS-style region such as us-east-1", c.Region)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls: set both the certificate and the key, or neither")
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxRequestBytes < 64<<10 {
		return fmt.Errorf("max request bytes %d: must be at least 65536 (a secret value alone may be 64 KiB)", c.MaxRequestBytes)
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.ShutdownTimeout, DefaultShutdownTimeout},
		{&c.AuditCheckpointInterval, 10 * time.Second},
		{&c.ReadHeaderTimeout, 10 * time.Second},
		{&c.ReadTimeout, 30 * time.Second},
		{&c.WriteTimeout, 60 * time.Second},
		{&c.IdleTimeout, 120 * time.Second},
		{&c.ReaperInterval, 10 * time.Second},
		{&c.RotationInterval, 30 * time.Second},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return fmt.Errorf("timeouts must be positive, got %s", *d.v)
		}
	}
	return nil
}
