package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/server"
)

func newServerCmd() *cobra.Command {
	var (
		cfg        server.Config
		configPath string
		keyEnvName string
		logLevel   string
		logFormat  string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the sigil server",
		Long: `Run the sigil server.

Every setting can come from a flag, from an environment variable named
SIGIL_ plus the flag name in upper case with dashes as underscores
(--data-dir: SIGIL_DATA_DIR), or from a YAML file given with --config whose
keys are the flag names. A flag beats the environment, which beats the file,
which beats the default.

On first start the server creates the data directory (mode 0700), the store,
a key-encryption key (with the file provider), the account and a root access
key, which it writes once to <data-dir>/root.credentials (mode 0600) in the
aws CLI credentials-file format.

Key providers:
  file    the key-encryption key is a file (default <data-dir>/sigil.key),
          created on first start. A key kept beside the data protects nothing
          against someone who copies the whole directory: move it to another
          volume with --key-file, or use env or shamir.
  env     the key is base64 in the environment variable named by --key-env.
  shamir  the server starts sealed; 'sigil operator init' creates key shares
          and 'sigil operator unseal' takes them one at a time.`,
		Example: `  # Embedded default: bolt store and key file in ./sigil-data, 127.0.0.1:8200
  sigil server

  # JSON logs, another port, the key on a separate volume
  sigil server --listen 127.0.0.1:9200 --log-format json --key-file /keys/sigil.key

  # Key-encryption key from the environment
  SIGIL_KEK=$(head -c32 /dev/urandom | base64) sigil server --key-provider env

  # Settings from a file
  sigil server --config /etc/sigil/server.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("config") {
				if v, ok := os.LookupEnv("SIGIL_CONFIG"); ok {
					configPath = v
				}
			}
			if err := applyLayers(cmd, os.LookupEnv, configPath, "config"); err != nil {
				return err
			}
			logger, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return err
			}
			if cfg.KeyProvider == "env" {
				cfg.KeyEnvName = keyEnvName
				cfg.KeyEnv = os.Getenv(keyEnvName)
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			srv, err := server.New(cmd.Context(), cfg, server.Options{Logger: logger})
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "YAML file of settings (keys are these flag names); env SIGIL_CONFIG")
	f.StringVar(&cfg.Listen, "listen", server.DefaultListen, "address to listen on (host:port)")
	f.StringVar(&cfg.DataDir, "data-dir", server.DefaultDataDir, "directory for the store, key file and root credentials (mode 0700)")
	f.StringVar(&cfg.Storage, "storage", "bolt", "storage backend: bolt (embedded, one file in the data directory)")
	f.StringVar(&cfg.KeyProvider, "key-provider", "file", "source of the key-encryption key: file, env or shamir")
	f.StringVar(&cfg.KeyFile, "key-file", "", "key file of the file provider (default <data-dir>/sigil.key)")
	f.StringVar(&keyEnvName, "key-env", "SIGIL_KEK", "environment variable holding the base64 key of the env provider")
	f.StringVar(&cfg.AccountID, "account-id", "", "12-digit account id to create on first start (default: random)")
	f.StringVar(&cfg.Region, "region", server.DefaultRegion, "AWS region the server presents and requires in signatures")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error (request access logs are info)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate file; serve HTTPS (with --tls-key)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	f.StringVar(&cfg.AuditDir, "audit-dir", "", "directory of the audit log (default <data-dir>/audit)")
	f.StringVar(&cfg.AuditMode, "audit-mode", "sync", "audit durability: sync (secret reads and writes wait for fsync), async, or off (benchmarks only)")
	f.BoolVar(&cfg.AuditStdout, "audit-stdout", false, "also write every audit record to standard output as a JSON line")
	f.StringVar(&cfg.AuditWebhook, "audit-webhook", "", "also POST audit records in batches to this URL (CloudTrail log documents)")
	f.IntVar(&cfg.AuditCheckpointEvery, "audit-checkpoint-every", 1000, "write a signed audit checkpoint after this many records")
	f.DurationVar(&cfg.AuditCheckpointInterval, "audit-checkpoint-interval", 10*time.Second, "write a signed audit checkpoint at least this often while records arrive")
	f.BoolVar(&cfg.AllowInsecureOIDC, "allow-insecure-oidc", false, "fetch OIDC discovery and keys over plain http when a provider asks for it (labs only)")
	f.Int64Var(&cfg.MaxRequestBytes, "max-request-bytes", server.DefaultMaxRequestBytes, "largest accepted request body, in bytes")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "how long SIGTERM/SIGINT waits for in-flight requests")
	f.DurationVar(&cfg.ReaperInterval, "reaper-interval", 10*time.Second, "time between passes of the lease reaper, which revokes expired dynamic database users")
	f.DurationVar(&cfg.RotationInterval, "rotation-interval", 30*time.Second, "time between passes of the rotation runner, which starts due secret rotations")
	return cmd
}

// newLogger builds the server's slog logger writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", format)
}
