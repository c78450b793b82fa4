package dynamic

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCatalogPostgresTLS registers a PostgreSQL database whose
// administrator may only log in over TLS (a hostnossl reject rule, as a
// production pg_hba.conf would have) and checks each TLS mode against the
// real server: verify-full without the CA, with the wrong name, and
// disable are refused without the password in any error; require logs in
// unverified; verify-full with the server's CA logs in, rotates the root
// password and issues users. (Changing the TLS settings needs the
// password, so the rotation comes last.)
func TestCatalogPostgresTLS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const admin, password = "tls_admin", "Tls-Admin-Secret-77"
	if _, err := e.admin.Exec(ctx, `CREATE ROLE `+admin+` LOGIN SUPERUSER PASSWORD '`+password+`'`); err != nil {
		t.Fatal(err)
	}
	hba := filepath.Join(e.pg.DataDir, "pg_hba.conf")
	rules, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	// Written in place, so the file keeps its owner (the server's user).
	if err := os.WriteFile(hba, append([]byte("hostnossl all "+admin+" 0.0.0.0/0 reject\n"), rules...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	// The reload is asynchronous: wait until a plain-text login is refused.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := e.login(t, admin, password)
		if err != nil && strings.Contains(err.Error(), "no encryption") {
			break
		}
		if err == nil {
			_ = c.Close(ctx)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hostnossl rule never took effect: the last plain-text login gave %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	c := e.catalog(t)
	db := e.database("tls", admin, password)
	put := func(t *testing.T, tls TLS) {
		t.Helper()
		db.TLS = tls
		if err := c.PutDatabase(ctx, db); err != nil {
			t.Fatalf("PutDatabase(%+v): %v", tls, err)
		}
	}

	refused := []struct {
		name  string
		tls   TLS
		check func(error) bool
	}{
		{"verify-full with the system roots", TLS{Mode: TLSVerifyFull}, func(err error) bool {
			var unknown x509.UnknownAuthorityError
			return errors.As(err, &unknown)
		}},
		{"verify-full for another name", TLS{Mode: TLSVerifyFull, CACert: e.pg.CACertPEM, ServerName: "db.example.com"}, func(err error) bool {
			var host x509.HostnameError
			return errors.As(err, &host)
		}},
		{"disable", TLS{Mode: TLSDisable}, func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "no encryption")
		}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			put(t, tt.tls)
			err := c.Check(ctx, "tls")
			if !tt.check(err) {
				t.Fatalf("Check = %v", err)
			}
			assertNoPassword(t, err.Error(), password)
		})
	}

	t.Run("require encrypts without verifying", func(t *testing.T) {
		put(t, TLS{Mode: TLSRequire})
		if err := c.Check(ctx, "tls"); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})

	t.Run("verify-full with the server's CA", func(t *testing.T) {
		put(t, TLS{Mode: TLSVerifyFull, CACert: e.pg.CACertPEM})
		if err := c.Check(ctx, "tls"); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if _, err := c.RotateRoot(ctx, "tls"); err != nil {
			t.Fatalf("RotateRoot: %v", err)
		}
		if _, err := e.login(t, admin, password); err == nil {
			t.Fatal("the old root password still logs in")
		}
		if err := c.Check(ctx, "tls"); err != nil {
			t.Fatalf("Check after RotateRoot: %v", err)
		}
		if err := c.PutSecret(ctx, SecretConfig{Secret: "app/tls", Database: "tls", DefaultTTL: time.Hour, Creation: grantingConfig().Creation}); err != nil {
			t.Fatal(err)
		}
		r, err := c.Role(ctx, "app/tls")
		if err != nil {
			t.Fatal(err)
		}
		u, err := r.Engine.Username("app/tls")
		if err != nil {
			t.Fatal(err)
		}
		cred, err := r.Engine.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatalf("Create over TLS: %v", err)
		}
		e.mustQuery(t, cred.Username, cred.Password)
		if err := r.Engine.Revoke(ctx, u); err != nil {
			t.Fatalf("Revoke over TLS: %v", err)
		}
	})
}
