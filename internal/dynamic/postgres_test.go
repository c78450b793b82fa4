package dynamic

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPostgresEngine(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	t.Run("create, log in and query", func(t *testing.T) {
		eng := e.engine(t, grantingConfig())
		u, err := eng.Username("my-app/database-credentials")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u, "v_my_app_database_credentials_") || len(u) > PostgresMaxIdentifier {
			t.Fatalf("username %q", u)
		}
		cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if len(cred.Password) != 32 {
			t.Errorf("password length %d, want 32", len(cred.Password))
		}
		e.mustQuery(t, cred.Username, cred.Password)
		if _, err := e.login(t, cred.Username, cred.Password+"x"); !isAuthFailure(err) {
			t.Fatalf("login with wrong password: %v, want an authentication failure", err)
		}
	})

	t.Run("renew moves VALID UNTIL", func(t *testing.T) {
		eng := e.engine(t, PostgresConfig{})
		u, _ := eng.Username("renew")
		first := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		if _, err := eng.Create(ctx, Creation{Username: u, Expires: first}); err != nil {
			t.Fatal(err)
		}
		later := first.Add(90 * time.Minute)
		if err := eng.Renew(ctx, u, later); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		var until time.Time
		if err := e.admin.QueryRow(ctx, `SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1`, u).Scan(&until); err != nil {
			t.Fatal(err)
		}
		if !until.Equal(later) {
			t.Fatalf("VALID UNTIL = %v, want %v", until, later)
		}
	})

	t.Run("revoke refuses logins and terminates open sessions", func(t *testing.T) {
		eng := e.engine(t, grantingConfig())
		u, _ := eng.Username("revoke")
		cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		open, err := e.login(t, cred.Username, cred.Password)
		if err != nil {
			t.Fatal(err)
		}
		// The user owns an object, so REASSIGN/DROP OWNED must run.
		if _, err := open.Exec(ctx, `CREATE TEMP TABLE scratch (x int)`); err != nil {
			t.Fatal(err)
		}
		if err := eng.Revoke(ctx, u); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if e.roleExists(t, u) {
			t.Fatal("role still exists after Revoke")
		}
		if _, err := e.login(t, cred.Username, cred.Password); !isAuthFailure(err) {
			t.Fatalf("login after revoke: %v, want an authentication failure", err)
		}
		if err := open.Ping(ctx); err == nil {
			t.Fatal("the open session survived revocation")
		}
		if err := eng.Revoke(ctx, u); err != nil {
			t.Fatalf("second Revoke: %v", err)
		}
	})

	t.Run("an expired user is refused by the database", func(t *testing.T) {
		eng := e.engine(t, PostgresConfig{})
		u, _ := eng.Username("expired")
		cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(-time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.login(t, cred.Username, cred.Password); !isAuthFailure(err) {
			t.Fatalf("login of expired user: %v, want an authentication failure", err)
		}
	})

	t.Run("syntax error fails clearly and leaves no role", func(t *testing.T) {
		eng := e.engine(t, PostgresConfig{Creation: []string{
			DefaultPostgresCreation[0],
			`GRANT SELECT ON products TO {{name}} ,,`,
		}})
		u, _ := eng.Username("syntax")
		_, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if !errors.Is(err, ErrStatement) {
			t.Fatalf("Create error = %v, want ErrStatement", err)
		}
		for _, want := range []string{"creation statement 2", "syntax error", "42601"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if e.roleExists(t, u) {
			t.Fatal("the first statement's role survived the failed transaction")
		}
	})

	t.Run("password never appears in errors", func(t *testing.T) {
		eng := e.engine(t, PostgresConfig{Creation: []string{
			`CREATE ROLE {{name}} LOGIN PASSWORD {{password}} {{password}}`,
		}})
		u, _ := eng.Username("leak")
		_, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if !errors.Is(err, ErrStatement) {
			t.Fatalf("Create error = %v, want ErrStatement", err)
		}
		// The server's message quotes the token near the error, which is the
		// password literal: it must have been removed.
		if !strings.Contains(err.Error(), "REDACTED") {
			t.Fatalf("error %q does not show the redaction", err)
		}
	})

	t.Run("hostile usernames and passwords cannot inject", func(t *testing.T) {
		eng := e.engine(t, PostgresConfig{
			Creation: grantingConfig().Creation,
			Password: PasswordPolicy{Length: 48, Alphabet: `'"\;$-{}()` + "abc"},
		})
		hostile := []string{
			`x"; DROP TABLE products; --`,
			`y'; ALTER ROLE sigil_admin NOSUPERUSER; --`,
			`z\"; $$ DROP TABLE products $$; --`,
			`{{password}}`,
		}
		for _, u := range hostile {
			cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatalf("Create(%q): %v", u, err)
			}
			if !e.roleExists(t, u) {
				t.Fatalf("no role named exactly %q", u)
			}
			e.mustQuery(t, cred.Username, cred.Password)
			if err := eng.Revoke(ctx, u); err != nil {
				t.Fatalf("Revoke(%q): %v", u, err)
			}
			if e.roleExists(t, u) {
				t.Fatalf("role %q survived Revoke", u)
			}
		}
		var super bool
		if err := e.admin.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil || !super {
			t.Fatalf("admin lost superuser (%v, %v)", super, err)
		}
		var n int
		if err := e.admin.QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("products table damaged: n=%d err=%v", n, err)
		}
		if _, err := eng.Create(ctx, Creation{Username: "nul\x00", Expires: time.Now().Add(time.Hour)}); !errors.Is(err, ErrUnsafeValue) {
			t.Fatalf("Create with NUL: %v, want ErrUnsafeValue", err)
		}
	})

	t.Run("literals mean the same under both string settings", func(t *testing.T) {
		values := []string{`plain`, `it's`, `back\slash`, `\'; SELECT 1; --`, `$$x$$`, `\\`}
		for _, setting := range []string{"on", "off"} {
			if _, err := e.admin.Exec(ctx, "SET standard_conforming_strings = "+setting); err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				lit, err := QuoteLiteral(v)
				if err != nil {
					t.Fatal(err)
				}
				var got string
				if err := e.admin.QueryRow(ctx, "SELECT "+lit).Scan(&got); err != nil {
					t.Fatalf("SELECT %s (standard_conforming_strings=%s): %v", lit, setting, err)
				}
				if got != v {
					t.Errorf("SELECT %s = %q with standard_conforming_strings=%s, want %q", lit, got, setting, v)
				}
			}
		}
		if _, err := e.admin.Exec(ctx, "RESET standard_conforming_strings"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bad configuration is refused", func(t *testing.T) {
		tests := []struct {
			name string
			cfg  PostgresConfig
			err  error
		}{
			{"no DSN", PostgresConfig{}, ErrInvalidConfig},
			{"unknown placeholder", PostgresConfig{DSN: e.pg.DSN(), Creation: []string{"CREATE ROLE {{user}}"}}, ErrTemplate},
			{"password in revocation", PostgresConfig{DSN: e.pg.DSN(), Revocation: []string{"SELECT {{password}}"}}, ErrTemplate},
			{"empty statement list", PostgresConfig{DSN: e.pg.DSN(), Renew: []string{}}, ErrTemplate},
			{"weak password", PostgresConfig{DSN: e.pg.DSN(), Password: PasswordPolicy{Length: 4}}, ErrInvalidConfig},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := NewPostgresEngine(tt.cfg); !errors.Is(err, tt.err) {
					t.Fatalf("NewPostgresEngine error = %v, want %v", err, tt.err)
				}
			})
		}
	})
}

// Concurrent creations that GRANT on the same table, and concurrent
// revocations, all succeed: without sigil's advisory lock PostgreSQL fails
// some with "tuple concurrently updated".
func TestPostgresConcurrentGrantsAndRevocations(t *testing.T) {
	e := newEnv(t)
	cfg := grantingConfig()
	cfg.MaxConns = 8
	eng := e.engine(t, cfg)
	ctx := context.Background()
	const n = 32
	names := make([]string, n)
	errs := make(chan error, n)
	for i := range names {
		name, err := eng.Username("app/db")
		if err != nil {
			t.Fatal(err)
		}
		names[i] = name
	}
	for _, name := range names {
		go func() {
			_, err := eng.Create(ctx, Creation{Username: name, Expires: time.Now().Add(time.Hour)})
			errs <- err
		}()
	}
	for range names {
		if err := <-errs; err != nil {
			t.Errorf("concurrent create: %v", err)
		}
	}
	for _, name := range names {
		go func() { errs <- eng.Revoke(ctx, name) }()
	}
	for range names {
		if err := <-errs; err != nil {
			t.Errorf("concurrent revoke: %v", err)
		}
	}
	if left := e.dynamicRoles(t, "v"); len(left) != 0 {
		t.Fatalf("roles left after revoking: %v", left)
	}
}
