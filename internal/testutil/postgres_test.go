package testutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// connect logs in to pg with dsn and closes the connection at cleanup.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestStartPostgres(t *testing.T) {
	start := time.Now()
	pg := StartPostgres(t)
	t.Logf("postgres ready on port %d in %v", pg.Port, time.Since(start).Round(time.Millisecond))
	admin := connect(t, pg.DSN())
	ctx := t.Context()

	t.Run("superuser runs a query", func(t *testing.T) {
		var one int
		if err := admin.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("SELECT 1: %v", err)
		}
		if one != 1 {
			t.Fatalf("SELECT 1 = %d", one)
		}
		var super bool
		if err := admin.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
			t.Fatalf("reading rolsuper: %v", err)
		}
		if !super {
			t.Fatalf("%s is not a superuser", pg.User)
		}
	})

	t.Run("settings", func(t *testing.T) {
		tests := []struct {
			setting string
			want    string
		}{
			{"listen_addresses", "127.0.0.1"},
			{"port", strconv.Itoa(pg.Port)},
			{"unix_socket_directories", ""},
			{"password_encryption", "scram-sha-256"},
			{"server_version_num", "15"}, // prefix: any 15.x
		}
		for _, tt := range tests {
			t.Run(tt.setting, func(t *testing.T) {
				var got string
				if err := admin.QueryRow(ctx, "SELECT current_setting($1)", tt.setting).Scan(&got); err != nil {
					t.Fatalf("reading %s: %v", tt.setting, err)
				}
				if tt.setting == "server_version_num" {
					got = got[:2]
				}
				if got != tt.want {
					t.Fatalf("%s = %q, want %q", tt.setting, got, tt.want)
				}
			})
		}
	})

	t.Run("TLS with the server's certificate", func(t *testing.T) {
		connectTLS := func(tc *tls.Config) (*pgx.Conn, error) {
			cfg, err := pgx.ParseConfig(pg.DSN())
			if err != nil {
				t.Fatal(err)
			}
			cfg.TLSConfig, cfg.Fallbacks = tc, nil
			return pgx.ConnectConfig(ctx, cfg)
		}
		usesTLS := func(c *pgx.Conn) bool {
			var ssl bool
			if err := c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil {
				t.Fatalf("reading pg_stat_ssl: %v", err)
			}
			return ssl
		}
		c, err := connectTLS(pg.TLSConfig())
		if err != nil {
			t.Fatalf("TLS login: %v", err)
		}
		defer c.Close(ctx)
		if !usesTLS(c) {
			t.Fatal("a login with TLSConfig is not encrypted")
		}
		if usesTLS(admin) {
			t.Fatal("a login with DSN (sslmode=disable) is encrypted")
		}
		block, _ := pem.Decode([]byte(pg.CACertPEM))
		if block == nil || block.Type != "CERTIFICATE" {
			t.Fatalf("CACertPEM is not a PEM certificate: %q", pg.CACertPEM)
		}
		_, err = connectTLS(&tls.Config{ServerName: pg.Host, MinVersion: tls.VersionTLS12})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("TLS login trusting only the system roots = %v, want an unknown authority", err)
		}
	})

	t.Run("every hba rule requires scram", func(t *testing.T) {
		rows, err := admin.Query(ctx, "SELECT coalesce(auth_method, ''), coalesce(error, '') FROM pg_hba_file_rules")
		if err != nil {
			t.Fatalf("reading pg_hba_file_rules: %v", err)
		}
		methods, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var method, ruleErr string
			if err := r.Scan(&method, &ruleErr); err != nil {
				return "", err
			}
			if ruleErr != "" {
				return "", fmt.Errorf("hba rule error: %s", ruleErr)
			}
			return method, nil
		})
		if err != nil {
			t.Fatalf("reading pg_hba_file_rules: %v", err)
		}
		if len(methods) == 0 {
			t.Fatal("pg_hba.conf has no rules")
		}
		for _, m := range methods {
			if m != "scram-sha-256" {
				t.Fatalf("hba auth methods %v, want only scram-sha-256", methods)
			}
		}
	})

	const role, rolePassword = "sigil_app", "correct-horse-battery"
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD '"+rolePassword+"'"); err != nil {
		t.Fatalf("creating role: %v", err)
	}

	t.Run("new role logs in with scram", func(t *testing.T) {
		var stored string
		if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored); err != nil {
			t.Fatalf("reading stored password: %v", err)
		}
		if !strings.HasPrefix(stored, "SCRAM-SHA-256$") {
			t.Fatalf("stored password is not a SCRAM verifier: %.14q...", stored)
		}
		conn := connect(t, pg.DSNFor(role, rolePassword, pg.Database))
		var who string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil {
			t.Fatalf("SELECT current_user: %v", err)
		}
		if who != role {
			t.Fatalf("current_user = %q, want %q", who, role)
		}
	})

	t.Run("bad credentials are refused", func(t *testing.T) {
		tests := []struct {
			name, user, password string
		}{
			{"wrong superuser password", pg.User, pg.Password + "x"},
			{"wrong role password", role, "incorrect-horse"},
			{"empty password", role, ""},
			{"another role's password", role, pg.Password},
			{"unknown role", "nobody_here", rolePassword},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				conn, err := pgx.Connect(ctx, pg.DSNFor(tt.user, tt.password, pg.Database))
				if err == nil {
					_ = conn.Close(context.Background())
					t.Fatal("login succeeded")
				}
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) {
					t.Fatalf("login failed without a server error: %v", err)
				}
				// 28P01 is invalid_password: the server ran password
				// authentication and rejected it.
				if pgErr.Code != "28P01" {
					t.Fatalf("error code %s (%s), want 28P01", pgErr.Code, pgErr.Message)
				}
			})
		}
	})

	t.Run("password stays out of descriptions", func(t *testing.T) {
		var logged bytes.Buffer
		slog.New(slog.NewTextHandler(&logged, nil)).Info("server", "pg", pg)
		for name, s := range map[string]string{
			"String":   pg.String(),
			"%v":       fmt.Sprintf("%v", pg),
			"LogValue": logged.String(),
		} {
			if strings.Contains(s, pg.Password) {
				t.Errorf("%s reveals the password: %s", name, s)
			}
			if !strings.Contains(s, "REDACTED") {
				t.Errorf("%s = %q, want REDACTED in place of the password", name, s)
			}
		}
		if !strings.Contains(pg.DSN(), pg.Password) {
			t.Errorf("DSN() lacks the password needed to log in")
		}
	})
}

func TestStartPostgresCleanup(t *testing.T) {
	var (
		root, dataDir, dsn string
		pid                int
	)
	t.Run("server", func(t *testing.T) {
		pg := StartPostgres(t)
		root, dataDir, dsn = pg.root, pg.DataDir, pg.DSN()
		pid = pg.proc.Process.Pid
		if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
			t.Fatalf("data directory not initialised: %v", err)
		}
		connect(t, dsn)
	})
	if t.Failed() {
		return
	}

	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory %s still there after cleanup: %v", root, err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		// The pid may in principle have been reused; only a process still
		// serving this data directory is a failure.
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte(dataDir)) {
			t.Errorf("postmaster %d still running after cleanup", pid)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		_ = conn.Close(context.Background())
		t.Error("server still accepts logins after cleanup")
	}
}

func TestStartPostgresPortTaken(t *testing.T) {
	pg := StartPostgres(t)
	if err := pg.stop(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port

	err = pg.start(t.Context(), port)
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("start on a taken port = %v, want errPortInUse", err)
	}
	if pg.proc != nil {
		t.Fatal("failed start left a postmaster behind")
	}

	// What StartPostgres does next: try again on a fresh port, with the
	// same data directory and password.
	fresh, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.start(t.Context(), fresh); err != nil {
		t.Fatalf("restart on port %d: %v\n%s", fresh, err, logTail(pg.LogFile))
	}
	var one int
	if err := connect(t, pg.DSN()).QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 after restart = %d, %v", one, err)
	}
}

// recordingTB stands in for the testing.TB of a test whose fate is under
// test: Fatalf and Skipf record the outcome and end the goroutine, as the
// real ones do.
type recordingTB struct {
	testing.TB
	outcome, message string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.outcome, r.message = "fatal", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.outcome, r.message = "skip", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartPostgresMissingBinaries(t *testing.T) {
	tests := []struct {
		require string
		want    string
	}{
		{"", "skip"},
		{"0", "skip"},
		{"1", "fatal"},
	}
	for _, tt := range tests {
		t.Run("require="+tt.require, func(t *testing.T) {
			t.Setenv(requirePostgresEnv, tt.require)
			rec := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				startPostgres(rec, filepath.Join(t.TempDir(), "no-such-bin"))
			}()
			<-done
			if rec.outcome != tt.want {
				t.Fatalf("outcome %q (%s), want %q", rec.outcome, rec.message, tt.want)
			}
			if !strings.Contains(rec.message, "apt-get install postgresql-15") {
				t.Fatalf("message %q does not say what to install", rec.message)
			}
		})
	}
}

func TestCheckBinaries(t *testing.T) {
	write := func(t *testing.T, dir, name string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantErr string
	}{
		{"empty directory", func(*testing.T, string) {}, "initdb not found"},
		{"postgres missing", func(t *testing.T, dir string) { write(t, dir, "initdb", 0o755) }, "postgres not found"},
		{"not executable", func(t *testing.T, dir string) {
			write(t, dir, "initdb", 0o644)
			write(t, dir, "postgres", 0o755)
		}, "is not executable"},
		{"directory in place of binary", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "initdb"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "is not executable"},
		{"complete", func(t *testing.T, dir string) {
			write(t, dir, "initdb", 0o755)
			write(t, dir, "postgres", 0o755)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			err := checkBinaries(dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("checkBinaries: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("checkBinaries = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckTraversable(t *testing.T) {
	open := t.TempDir()
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(open, "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(closed, "inside")
	if err := os.Mkdir(inside, 0o777); err != nil {
		t.Fatal(err)
	}
	// A uid and gid that own nothing here, as "nobody" would.
	stranger := &syscall.Credential{Uid: 54321, Gid: 54321}
	owner := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: 54321}

	tests := []struct {
		name    string
		dir     string
		cred    *syscall.Credential
		wantErr string
	}{
		{"stranger blocked by a 0700 directory", closed, stranger, closed},
		{"stranger blocked by a 0700 parent", inside, stranger, closed},
		{"owner passes its own 0700 directory", inside, owner, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkTraversable(tt.dir, tt.cred)
			if tt.wantErr == "" {
				// The owner case also depends on the ancestors of
				// t.TempDir(), which the testing package made searchable by
				// the current user.
				if err != nil {
					t.Fatalf("checkTraversable: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), strconv.Quote(tt.wantErr)) {
				t.Fatalf("checkTraversable = %v, want error naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestLogTail(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("early line that scrolls away\n", 400) + "FATAL: the last words\n"
	tests := []struct {
		name    string
		content *string
		want    string
		bounded bool // longer than the tail: check the cut
	}{
		{name: "missing", content: nil, want: "(no log written)"},
		{name: "empty", content: ptr(""), want: "(log is empty)"},
		{name: "short", content: ptr("LOG: starting\nFATAL: boom\n"), want: "LOG: starting\nFATAL: boom"},
		{name: "long", content: &long, want: "FATAL: the last words", bounded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".log")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got := logTail(path)
			if !strings.HasSuffix(got, tt.want) {
				t.Fatalf("logTail = %q, want suffix %q", got, tt.want)
			}
			if !tt.bounded {
				return
			}
			if len(got) > logTailMaxBytes {
				t.Fatalf("tail is %d bytes, want at most %d", len(got), logTailMaxBytes)
			}
			if !strings.HasPrefix(got, "early line that scrolls away\n") {
				t.Fatalf("tail does not start at a line boundary: %.40q", got)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
