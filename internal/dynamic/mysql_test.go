package dynamic

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/testutil"
)

// assertNoPassword fails if msg holds password or any 6 characters of it
// in a row, the way a cut-short quote of a statement would.
func assertNoPassword(t testing.TB, msg, password string) {
	t.Helper()
	const window = 6
	for i := 0; i+window <= len(password); i++ {
		if strings.Contains(msg, password[i:i+window]) {
			t.Fatalf("error %q holds part of the password (%q)", msg, password[i:i+window])
		}
	}
}

func TestMySQLEngine(t *testing.T) {
	e := newMySQLEnv(t)
	ctx := context.Background()

	t.Run("create, log in and query", func(t *testing.T) {
		eng := e.engine(t, mysqlGranting())
		u, err := eng.Username("my-app/database-credentials")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u, "v_my_app_databa_") || len(u) != MySQLMaxUsername {
			t.Fatalf("username %q (%d characters)", u, len(u))
		}
		cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if len(cred.Password) != 32 || cred.Username != u {
			t.Fatalf("credential %q with a %d-character password", cred.Username, len(cred.Password))
		}
		e.mustQuery(t, cred.Username, cred.Password)
		if _, err := e.login(t, cred.Username, cred.Password+"x"); !isMySQLAuthFailure(err) {
			t.Fatalf("login with wrong password: %v, want an authentication failure", err)
		}
		// Only what was granted: the user cannot write.
		c, err := e.login(t, cred.Username, cred.Password)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, `DELETE FROM products`); err == nil {
			t.Fatal("the user may delete from products")
		}
		if ok, err := eng.Exists(ctx, u); err != nil || !ok {
			t.Fatalf("Exists = %v, %v", ok, err)
		}
		if !e.eventExists(t, u) {
			t.Fatal("no expiry event for the user")
		}
	})

	t.Run("renew moves the expiry event", func(t *testing.T) {
		eng := e.engine(t, MySQLConfig{})
		u, _ := eng.Username("renew")
		first := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		if _, err := eng.Create(ctx, Creation{Username: u, Expires: first}); err != nil {
			t.Fatal(err)
		}
		executeAt := func() string {
			var at string
			if err := e.admin.QueryRowContext(ctx,
				`SELECT DATE_FORMAT(EXECUTE_AT, '%Y-%m-%d %H:%i:%s') FROM information_schema.EVENTS WHERE EVENT_NAME = ?`, u).Scan(&at); err != nil {
				t.Fatal(err)
			}
			return at
		}
		if got, want := executeAt(), first.Format(time.DateTime); got != want {
			t.Fatalf("event at %s, want %s", got, want)
		}
		later := first.Add(90*time.Minute + 300*time.Millisecond)
		if err := eng.Renew(ctx, u, later); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		// Rounded up to the second: never before the expiry.
		if got, want := executeAt(), later.Truncate(time.Second).Add(time.Second).Format(time.DateTime); got != want {
			t.Fatalf("event at %s after Renew, want %s", got, want)
		}
		missing, _ := eng.Username("gone")
		if err := eng.Renew(ctx, missing, later); !errors.Is(err, ErrStatement) {
			t.Fatalf("Renew of a user without event = %v, want ErrStatement", err)
		}
	})

	t.Run("revoke refuses logins and terminates open sessions", func(t *testing.T) {
		eng := e.engine(t, mysqlGranting())
		u, _ := eng.Username("revoke")
		cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		open, err := e.login(t, cred.Username, cred.Password)
		if err != nil {
			t.Fatal(err)
		}
		busy, err := e.login(t, cred.Username, cred.Password)
		if err != nil {
			t.Fatal(err)
		}
		// One session idles, the other is inside a long statement.
		sleeping := make(chan error, 1)
		go func() {
			_, err := busy.ExecContext(ctx, `SELECT SLEEP(60)`)
			sleeping <- err
		}()
		testutil.WaitFor(t, 10*time.Second, func() bool {
			var n int
			err := e.admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND INFO LIKE 'SELECT SLEEP%'`, u).Scan(&n)
			return err == nil && n == 1
		})
		if err := eng.Revoke(ctx, u); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		select {
		case err := <-sleeping:
			if err == nil {
				t.Fatal("the long statement completed although its session was killed")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the long statement still runs after revocation")
		}
		if e.userExists(t, u) || e.eventExists(t, u) {
			t.Fatal("user or its event still exists after Revoke")
		}
		if _, err := e.login(t, cred.Username, cred.Password); !isMySQLAuthFailure(err) {
			t.Fatalf("login after revoke: %v, want an authentication failure", err)
		}
		if err := open.PingContext(ctx); err == nil {
			t.Fatal("the open session survived revocation")
		}
		if err := eng.Revoke(ctx, u); err != nil {
			t.Fatalf("second Revoke: %v", err)
		}
		if ok, err := eng.Exists(ctx, u); err != nil || ok {
			t.Fatalf("Exists after Revoke = %v, %v", ok, err)
		}
	})

	t.Run("revoke covers every account of the user", func(t *testing.T) {
		eng := e.engine(t, MySQLConfig{
			Creation: []string{
				`CREATE USER {{name}}@'%' IDENTIFIED BY {{password}}`,
				`CREATE USER {{name}}@'127.0.0.1' IDENTIFIED BY {{password}}`,
			},
			Renew:      []string{`SELECT {{expiration}}`},
			Revocation: []string{`DROP USER IF EXISTS {{name}}@'%', {{name}}@'127.0.0.1'`},
		})
		u, _ := eng.Username("hosts")
		cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		open, err := e.login(t, cred.Username, cred.Password)
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Revoke(ctx, u); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if e.userExists(t, u) {
			t.Fatal("an account survived Revoke")
		}
		if err := open.PingContext(ctx); err == nil {
			t.Fatal("the session of the 127.0.0.1 account survived revocation")
		}
	})

	t.Run("concurrent creates and revokes", func(t *testing.T) {
		eng := e.engine(t, MySQLConfig{UsernamePrefix: "conc", MaxConns: 4})
		const n = 24
		errs := make(chan error, n)
		for range n {
			go func() {
				u, err := eng.Username("x")
				if err == nil {
					_, err = eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
				}
				if err == nil {
					err = eng.Revoke(ctx, u)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if left := e.usersWithPrefix(t, "conc_x"); len(left) != 0 {
			t.Fatalf("users left: %v", left)
		}
	})

	t.Run("an expired user is dropped by the database", func(t *testing.T) {
		eng := e.engine(t, MySQLConfig{})
		tests := []struct {
			name    string
			expires time.Duration
		}{
			{"expiring in two seconds", 2 * time.Second},
			{"already expired", -time.Minute},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u, _ := eng.Username("expiry")
				cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(tt.expires)})
				if err != nil {
					t.Fatal(err)
				}
				testutil.WaitFor(t, 20*time.Second, func() bool {
					c, err := e.login(t, cred.Username, cred.Password)
					if err == nil {
						_ = c.Close()
						return false
					}
					if !isMySQLAuthFailure(err) {
						t.Fatalf("login: %v, want success or an authentication failure", err)
					}
					return true
				})
				if e.userExists(t, u) || e.eventExists(t, u) {
					t.Fatal("the expiry event left the user or itself behind")
				}
			})
		}
	})

	t.Run("with the event scheduler off, users are not created", func(t *testing.T) {
		eng := e.engine(t, MySQLConfig{})
		if _, err := e.admin.ExecContext(ctx, `SET GLOBAL event_scheduler = OFF`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := e.admin.ExecContext(ctx, `SET GLOBAL event_scheduler = ON`); err != nil {
				t.Errorf("restoring the event scheduler: %v", err)
			}
		})
		u, _ := eng.Username("sched")
		_, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "event_scheduler") {
			t.Fatalf("Create = %v, want ErrInvalidConfig naming event_scheduler", err)
		}
		if e.userExists(t, u) {
			t.Fatal("user created although it could never expire")
		}
		// Statements that create no event do not depend on the scheduler.
		plain := e.engine(t, MySQLConfig{
			Creation: []string{`CREATE USER {{name}}@'%' IDENTIFIED BY {{password}}`},
			Renew:    []string{`SELECT {{expiration}}`},
		})
		if _, err := plain.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Create without event: %v", err)
		}
		if err := plain.Revoke(ctx, u); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("syntax error fails clearly and leaves nothing behind", func(t *testing.T) {
		cfg := mysqlGranting()
		cfg.Creation = append(cfg.Creation, `GRANT SELECT ON products TO {{name}}@'%' ,,`)
		eng := e.engine(t, cfg)
		u, _ := eng.Username("syntax")
		_, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if !errors.Is(err, ErrStatement) {
			t.Fatalf("Create error = %v, want ErrStatement", err)
		}
		for _, want := range []string{"creation statement 4", "error in your SQL syntax", "error 1064", "SQLSTATE 42000", u} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if e.userExists(t, u) || e.eventExists(t, u) {
			t.Fatal("the earlier statements' user or event survived the failure")
		}
	})

	t.Run("password never appears in errors", func(t *testing.T) {
		tests := []struct {
			name   string
			policy PasswordPolicy
		}{
			{"whole password quoted", PasswordPolicy{}},
			{"password cut short by the server", PasswordPolicy{Length: 120}},
			{"quotes and backslashes", PasswordPolicy{Length: 40, Alphabet: `'\"abc`}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec := &recordingRand{}
				eng := e.engine(t, MySQLConfig{
					Creation: []string{`CREATE USER {{name}}@'%' IDENTIFIED BY {{password}} {{password}}`},
					Password: tt.policy,
					Rand:     rec,
				})
				u, _ := eng.Username("leak")
				rec.reset()
				_, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
				if !errors.Is(err, ErrStatement) {
					t.Fatalf("Create error = %v, want ErrStatement", err)
				}
				if !strings.Contains(err.Error(), "REDACTED") {
					t.Fatalf("error %q does not show the redaction", err)
				}
				assertNoPassword(t, err.Error(), rec.password(t, tt.policy))
			})
		}
	})

	t.Run("unreachable database names the host, not the password", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		const password = "Unreachable-Secret-Pw-42"
		eng, err := NewMySQLEngine(MySQLConfig{DSN: "sigil_admin:" + password + "@tcp(" + addr + ")/db?timeout=2s"})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		u, _ := eng.Username("down")
		_, cerr := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		_, xerr := eng.Exists(ctx, u)
		for _, err := range []error{cerr, xerr, eng.Revoke(ctx, u), eng.Renew(ctx, u, time.Now())} {
			if err == nil {
				t.Fatal("operation on an unreachable database succeeded")
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name %s", err, addr)
			}
			assertNoPassword(t, err.Error(), password)
		}
	})

	t.Run("TLS settings are used", func(t *testing.T) {
		// An administrator that may only log in over TLS.
		const tlsAdmin, tlsPassword = "tls_admin", "Tls-Admin-Secret-77"
		for _, q := range []string{
			`CREATE USER ` + tlsAdmin + `@'%' IDENTIFIED BY '` + tlsPassword + `' REQUIRE SSL`,
			`GRANT ALL PRIVILEGES ON *.* TO ` + tlsAdmin + `@'%' WITH GRANT OPTION`,
		} {
			if _, err := e.admin.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		dsn := e.my.DSNFor(tlsAdmin, tlsPassword, testutil.MySQLDatabase)
		newEngine := func(tc *tls.Config) *MySQLEngine {
			eng, err := NewMySQLEngine(MySQLConfig{DSN: dsn, TLS: tc, Creation: mysqlGranting().Creation})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(eng.Close)
			return eng
		}

		tc := e.my.TLSConfig()
		tc.ServerName = ""
		eng := newEngine(tc)
		u, _ := eng.Username("tls")
		cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatalf("Create over TLS: %v", err)
		}
		e.mustQuery(t, cred.Username, cred.Password)
		if err := eng.Revoke(ctx, u); err != nil {
			t.Fatalf("Revoke over TLS: %v", err)
		}
		if tc.ServerName != "" {
			t.Fatal("NewMySQLEngine changed the caller's tls.Config")
		}

		tests := []struct {
			name  string
			tc    *tls.Config
			check func(error) bool
		}{
			{"no TLS", nil, isMySQLAuthFailure},
			{"untrusted certificate", &tls.Config{MinVersion: tls.VersionTLS12}, func(err error) bool {
				var unknown x509.UnknownAuthorityError
				return errors.As(err, &unknown)
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := newEngine(tt.tc).Exists(ctx, u)
				if !tt.check(err) {
					t.Fatalf("Exists = %v", err)
				}
				assertNoPassword(t, err.Error(), tlsPassword)
			})
		}
	})

	t.Run("hostile usernames and passwords cannot inject", func(t *testing.T) {
		hostile := []string{
			"x`; DROP TABLE products; --",
			`y'@'%'; DROP USER sigil_admin;`,
			`z\'; DROP TABLE products; -- \`,
			`{{password}}"@%`,
			"ü-ß\\`'\"",
		}
		for _, mode := range []string{"", "NO_BACKSLASH_ESCAPES"} {
			t.Run("sql_mode="+mode, func(t *testing.T) {
				if _, err := e.admin.ExecContext(ctx, `SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ?)`, ","+mode); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if _, err := e.admin.ExecContext(ctx, `SET GLOBAL sql_mode = REPLACE(@@GLOBAL.sql_mode, 'NO_BACKSLASH_ESCAPES', '')`); err != nil {
						t.Errorf("restoring sql_mode: %v", err)
					}
				})
				// A new engine: its connections start with the new mode.
				eng := e.engine(t, MySQLConfig{
					Creation: mysqlGranting().Creation,
					Password: PasswordPolicy{Length: 48, Alphabet: "'\"\\;`%@?{}()$-abc"},
				})
				for _, u := range hostile {
					cred, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)})
					if err != nil {
						t.Fatalf("Create(%q): %v", u, err)
					}
					if !e.userExists(t, u) || !e.eventExists(t, u) {
						t.Fatalf("no user and event named exactly %q", u)
					}
					e.mustQuery(t, cred.Username, cred.Password)
					if err := eng.Revoke(ctx, u); err != nil {
						t.Fatalf("Revoke(%q): %v", u, err)
					}
					if e.userExists(t, u) || e.eventExists(t, u) {
						t.Fatalf("user %q survived Revoke", u)
					}
				}
			})
		}
		var n int
		if err := e.admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM products`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("products table damaged: n=%d err=%v", n, err)
		}
		if !e.userExists(t, testutil.MySQLAdmin) {
			t.Fatal("the administrator was dropped")
		}
		eng := e.engine(t, MySQLConfig{})
		for _, bad := range []string{"nul\x00", "emoji\U0001F600", strings.Repeat("a", MySQLMaxUsername+1), ""} {
			if _, err := eng.Create(ctx, Creation{Username: bad, Expires: time.Now().Add(time.Hour)}); err == nil {
				t.Fatalf("Create(%q) succeeded", bad)
			}
		}
	})

	t.Run("literals mean the same under both sql modes", func(t *testing.T) {
		values := []string{`plain`, `it's`, `back\slash`, `\'; SELECT 1; --`, `\\`, `'\`, `\`, "tab\there", `%_`, "ü€"}
		c, err := e.admin.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, mode := range []string{"", "NO_BACKSLASH_ESCAPES"} {
			if _, err := c.ExecContext(ctx, `SET SESSION sql_mode = ?`, mode); err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				lit, err := QuoteMySQLLiteral(v, mode != "")
				if err != nil {
					t.Fatal(err)
				}
				id, err := QuoteMySQLIdentifier(v)
				if err != nil {
					t.Fatal(err)
				}
				var got, col string
				// The identifier names a column alias, which the server
				// reports back as it understood it.
				rows, err := c.QueryContext(ctx, "SELECT "+lit+" AS "+id)
				if err != nil {
					t.Fatalf("SELECT %s AS %s (sql_mode=%q): %v", lit, id, mode, err)
				}
				cols, _ := rows.Columns()
				for rows.Next() {
					if err := rows.Scan(&got); err != nil {
						t.Fatal(err)
					}
				}
				rows.Close()
				if len(cols) == 1 {
					col = cols[0]
				}
				if got != v || col != v {
					t.Errorf("SELECT %s AS %s = %q named %q with sql_mode=%q, want %q", lit, id, got, col, mode, v)
				}
			}
		}
	})

	t.Run("bad configuration is refused", func(t *testing.T) {
		dsn := e.my.DSN()
		noDB := e.my.DSNFor(e.my.User, e.my.Password, "")
		tests := []struct {
			name string
			cfg  MySQLConfig
			err  error
		}{
			{"no DSN", MySQLConfig{}, ErrInvalidConfig},
			{"DSN does not parse", MySQLConfig{DSN: "user:pw@tcp(host"}, ErrInvalidConfig},
			{"default statements without a database", MySQLConfig{DSN: noDB}, ErrInvalidConfig},
			{"unsafe character set", MySQLConfig{DSN: dsn + "?charset=gbk"}, ErrInvalidConfig},
			{"unknown placeholder", MySQLConfig{DSN: dsn, Creation: []string{"CREATE USER {{user}}"}}, ErrTemplate},
			{"password in revocation", MySQLConfig{DSN: dsn, Revocation: []string{"SELECT {{password}}"}}, ErrTemplate},
			{"password in renew", MySQLConfig{DSN: dsn, Renew: []string{"SELECT {{password}}"}}, ErrTemplate},
			{"empty statement list", MySQLConfig{DSN: dsn, Renew: []string{}}, ErrTemplate},
			{"weak password", MySQLConfig{DSN: dsn, Password: PasswordPolicy{Length: 4}}, ErrInvalidConfig},
			{"negative MaxConns", MySQLConfig{DSN: dsn, MaxConns: -1}, ErrInvalidConfig},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := NewMySQLEngine(tt.cfg)
				if !errors.Is(err, tt.err) {
					t.Fatalf("NewMySQLEngine error = %v, want %v", err, tt.err)
				}
				if strings.Contains(err.Error(), e.my.Password) {
					t.Fatalf("error %q holds the administrator's password", err)
				}
			})
		}
		// Custom statements that need no database are fine without one.
		eng, err := NewMySQLEngine(MySQLConfig{DSN: noDB,
			Creation: []string{`CREATE USER {{name}}@'%' IDENTIFIED BY {{password}}`},
			Renew:    []string{`SELECT {{expiration}}`},
		})
		if err != nil {
			t.Fatalf("NewMySQLEngine without database: %v", err)
		}
		eng.Close()
	})
}

func TestMySQLLeases(t *testing.T) {
	e := newMySQLEnv(t)
	ctx := context.Background()
	eng := e.engine(t, mysqlGranting())
	broken := mysqlGranting()
	broken.Creation = append(broken.Creation, `GRANT SELECT ON products TO {{name}}@'%' ,,`)
	clock := newFakeClock()
	l, err := NewLeases(Options{Store: e.st, Now: clock.Now, Roles: RoleMap{
		secretName: {Engine: eng, TTL: time.Hour, MaxTTL: 3 * time.Hour},
		"broken":   {Engine: e.engine(t, broken), TTL: time.Hour},
	}})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("two sessions get two users, one session keeps its user", func(t *testing.T) {
		a, ca, err := l.Issue(ctx, secretName, "session-a")
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		b, cb, err := l.Issue(ctx, secretName, "session-b")
		if err != nil {
			t.Fatal(err)
		}
		if a.Username == b.Username || ca.Password == cb.Password {
			t.Fatal("two sessions got the same user")
		}
		again, cagain, err := l.Issue(ctx, secretName, "session-a")
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != a.ID || cagain != ca {
			t.Fatalf("session-a got %s, then %s", a.Username, again.Username)
		}
		e.mustQuery(t, ca.Username, ca.Password)
		e.mustQuery(t, cb.Username, cb.Password)
	})

	t.Run("renew and revoke through leases", func(t *testing.T) {
		lease, cred, err := l.Issue(ctx, secretName, "session-r")
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(30 * time.Minute)
		renewed, err := l.Renew(ctx, lease.ID, 0)
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		var at string
		if err := e.admin.QueryRowContext(ctx,
			`SELECT DATE_FORMAT(EXECUTE_AT, '%Y-%m-%d %H:%i:%s') FROM information_schema.EVENTS WHERE EVENT_NAME = ?`, lease.Username).Scan(&at); err != nil {
			t.Fatal(err)
		}
		if want := renewed.Expires.UTC().Format(time.DateTime); at != want {
			t.Fatalf("event at %s, want the lease's expiry %s", at, want)
		}
		open, err := e.login(t, cred.Username, cred.Password)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Revoke(ctx, lease.ID); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if got, err := l.Get(ctx, lease.ID); err != nil || got.State != StateRevoked {
			t.Fatalf("after Revoke: %+v, %v", got, err)
		}
		if e.userExists(t, lease.Username) {
			t.Fatal("user survived Revoke")
		}
		if err := open.PingContext(ctx); err == nil {
			t.Fatal("open session survived revocation")
		}
	})

	t.Run("a creation statement with a syntax error leaves no lease and no user", func(t *testing.T) {
		before := e.usersWithPrefix(t, "v_broken")
		_, _, err := l.Issue(ctx, "broken", "s")
		if !errors.Is(err, ErrStatement) || !strings.Contains(err.Error(), "error in your SQL syntax") {
			t.Fatalf("Issue error = %v, want a syntax error wrapping ErrStatement", err)
		}
		leases, err := l.List(ctx, "broken/")
		if err != nil || len(leases) != 0 {
			t.Fatalf("leases after failed issue: %+v, %v", leases, err)
		}
		if after := e.usersWithPrefix(t, "v_broken"); len(after) != len(before) {
			t.Fatalf("users after failed issue: %v", after)
		}
	})

	t.Run("revoke prefix leaves no user behind", func(t *testing.T) {
		if _, err := l.RevokePrefix(ctx, secretName+"/"); err != nil {
			t.Fatal(err)
		}
		if left := e.usersWithPrefix(t, "v_my_app_databa"); len(left) != 0 {
			t.Fatalf("users left after RevokePrefix: %v", left)
		}
	})
}

// recordingRand is crypto/rand that remembers what it handed out since
// the last reset, so a test can rebuild a password that Create generated
// but never returned.
type recordingRand struct {
	out []byte
}

func (r *recordingRand) Read(p []byte) (int, error) {
	n, err := rand.Read(p)
	r.out = append(r.out, p[:n]...)
	return n, err
}

func (r *recordingRand) reset() { r.out = nil }

// password replays what was read since the last reset through the
// password generator: randomString consumes its source the same way for
// the same bytes, so this is the password Create generated with policy.
func (r *recordingRand) password(t testing.TB, policy PasswordPolicy) string {
	t.Helper()
	p := policy.withDefaults()
	pw, err := randomString(&replayReader{b: r.out}, p.Alphabet, p.Length)
	if err != nil {
		t.Fatalf("replaying the password: %v", err)
	}
	return pw
}

// replayReader hands out b and then fails.
type replayReader struct{ b []byte }

func (r *replayReader) Read(p []byte) (int, error) {
	if len(r.b) < len(p) {
		return 0, errors.New("replay exhausted")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
