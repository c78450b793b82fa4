package dynamic

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/store"
)

func (e *env) catalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := NewCatalog(CatalogOptions{Store: e.st})
	if err != nil {
		t.Fatalf("NewCatalog: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// database is the test server registered with a login of the caller's
// choosing.
func (e *env) database(name, user, password string) Database {
	return Database{Name: name, Engine: EnginePostgres, Host: e.pg.Host, Port: e.pg.Port, DBName: e.pg.Database,
		Username: user, Password: password, TLS: TLS{Mode: TLSDisable}}
}

func TestCatalogDatabases(t *testing.T) {
	e := newEnv(t)
	c := e.catalog(t)
	ctx := context.Background()
	if err := c.PutDatabase(ctx, e.database("shop", e.pg.User, e.pg.Password)); err != nil {
		t.Fatal(err)
	}
	got, err := c.Database(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if got.Password != "" || got.Host != e.pg.Host || got.TLS.Mode != TLSDisable {
		t.Fatalf("Database returned %+v", got)
	}
	if err := c.Check(ctx, "shop"); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// Replacing without a password keeps the stored one.
	again := e.database("shop", e.pg.User, "")
	again.MaxConns = 2
	if err := c.PutDatabase(ctx, again); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, "shop"); err != nil {
		t.Fatalf("Check after a password-less update: %v", err)
	}
	// Changing the engine is refused.
	other := again
	other.Engine = EngineMySQL
	if err := c.PutDatabase(ctx, other); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("engine change: %v", err)
	}
	dbs, err := c.Databases(ctx)
	if err != nil || len(dbs) != 1 || dbs[0].Password != "" || dbs[0].MaxConns != 2 {
		t.Fatalf("Databases = %+v, %v", dbs, err)
	}
	if err := c.PutSecret(ctx, SecretConfig{Secret: "app/db", Database: "shop", DefaultTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDatabase(ctx, "shop"); !errors.Is(err, ErrInUse) {
		t.Fatalf("deleting a database in use: %v", err)
	}
	if err := c.DeleteSecret(ctx, "app/db"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDatabase(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Database(ctx, "shop"); !errors.Is(err, ErrDatabaseNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// A wrong password fails Check without the password in the error.
	if err := c.PutDatabase(ctx, e.database("bad", e.pg.User, "wrong-password-123")); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, "bad"); err == nil || strings.Contains(err.Error(), "wrong-password-123") {
		t.Fatalf("Check with a wrong password: %v", err)
	}
}

func TestCatalogValidation(t *testing.T) {
	e := newEnv(t)
	c := e.catalog(t)
	ctx := context.Background()
	base := e.database("shop", e.pg.User, e.pg.Password)
	mod := func(f func(*Database)) Database { d := base; f(&d); return d }
	for name, d := range map[string]Database{
		"empty name": mod(func(d *Database) { d.Name = "" }),
		"bad name":   mod(func(d *Database) { d.Name = "../x" }),
		"engine":     mod(func(d *Database) { d.Engine = "sqlite" }),
		"no host":    mod(func(d *Database) { d.Host = "" }),
		"port":       mod(func(d *Database) { d.Port = -1 }),
		"no user":    mod(func(d *Database) { d.Username = "" }),
		"nul":        mod(func(d *Database) { d.Password = "a\x00b" }),
		"tls mode":   mod(func(d *Database) { d.TLS.Mode = "prefer" }),
		"ca": mod(func(d *Database) {
			d.TLS = TLS{CACert: "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}
		}),
		"conns":       mod(func(d *Database) { d.MaxConns = 1000 }),
		"no password": mod(func(d *Database) { d.Password = "" }),
	} {
		t.Run(name, func(t *testing.T) {
			if err := c.PutDatabase(ctx, d); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("PutDatabase(%s) = %v, want ErrInvalidConfig", name, err)
			}
		})
	}
	if dbs, _ := c.Databases(ctx); len(dbs) != 0 {
		t.Fatalf("refused registrations stored: %+v", dbs)
	}
	if err := c.PutDatabase(ctx, base); err != nil {
		t.Fatal(err)
	}
	good := SecretConfig{Secret: "app/db", Database: "shop", DefaultTTL: time.Hour}
	smod := func(f func(*SecretConfig)) SecretConfig { s := good; f(&s); return s }
	for name, tc := range map[string]struct {
		cfg  SecretConfig
		want error
	}{
		"no database":    {smod(func(s *SecretConfig) { s.Database = "" }), ErrInvalidConfig},
		"unknown db":     {smod(func(s *SecretConfig) { s.Database = "nope" }), ErrDatabaseNotFound},
		"zero ttl":       {smod(func(s *SecretConfig) { s.DefaultTTL = 0 }), ErrInvalidConfig},
		"max below ttl":  {smod(func(s *SecretConfig) { s.MaxTTL = time.Minute }), ErrInvalidConfig},
		"huge ttl":       {smod(func(s *SecretConfig) { s.DefaultTTL = 2 * MaxLeaseTTL }), ErrInvalidConfig},
		"prefix":         {smod(func(s *SecretConfig) { s.UsernamePrefix = "Bad-Prefix" }), ErrInvalidConfig},
		"template":       {smod(func(s *SecretConfig) { s.Creation = []string{"CREATE ROLE {{user}}"} }), ErrTemplate},
		"password renew": {smod(func(s *SecretConfig) { s.Renew = []string{"ALTER ROLE {{name}} PASSWORD {{password}}"} }), ErrTemplate},
		"short password": {smod(func(s *SecretConfig) { s.Password.Length = 8 }), ErrInvalidConfig},
	} {
		t.Run(name, func(t *testing.T) {
			if err := c.PutSecret(ctx, tc.cfg); !errors.Is(err, tc.want) {
				t.Fatalf("PutSecret = %v, want %v", err, tc.want)
			}
		})
	}
	if ss, _ := c.Secrets(ctx); len(ss) != 0 {
		t.Fatalf("refused configurations stored: %+v", ss)
	}
	if _, err := c.Role(ctx, "app/db"); !errors.Is(err, ErrUnknownSecret) {
		t.Fatalf("Role of an unknown secret: %v", err)
	}
}

func TestCatalogRoleFollowsChanges(t *testing.T) {
	e := newEnv(t)
	c := e.catalog(t)
	ctx := context.Background()
	if err := c.PutDatabase(ctx, e.database("shop", e.pg.User, e.pg.Password)); err != nil {
		t.Fatal(err)
	}
	cfg := SecretConfig{Secret: "app/db", Database: "shop", DefaultTTL: time.Hour, MaxTTL: 2 * time.Hour, UsernamePrefix: "one",
		Creation: grantingConfig().Creation}
	if err := c.PutSecret(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	r1, err := c.Role(ctx, "app/db")
	if err != nil {
		t.Fatal(err)
	}
	if r1.TTL != time.Hour || r1.MaxTTL != 2*time.Hour || r1.Connection.Port != e.pg.Port || r1.Connection.Engine != EnginePostgres {
		t.Fatalf("role %+v", r1)
	}
	if r, _ := c.Role(ctx, "app/db"); r.Engine != r1.Engine {
		t.Fatal("an unchanged role built a new engine")
	}
	name, err := r1.Engine.Username("app/db")
	if err != nil || !strings.HasPrefix(name, "one_") {
		t.Fatalf("username %q, %v", name, err)
	}
	cfg.UsernamePrefix = "two"
	if err := c.PutSecret(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	r2, err := c.Role(ctx, "app/db")
	if err != nil {
		t.Fatal(err)
	}
	if r2.Engine == r1.Engine {
		t.Fatal("a changed configuration kept the old engine")
	}
	if name, _ := r2.Engine.Username("app/db"); !strings.HasPrefix(name, "two_") {
		t.Fatalf("username after the change %q", name)
	}
	// Users issued through the catalog work.
	l, err := NewLeases(Options{Store: e.st, Roles: c})
	if err != nil {
		t.Fatal(err)
	}
	lease, cred, err := l.Issue(ctx, "app/db", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if lease.Connection.Host != e.pg.Host || lease.Connection.DBName != e.pg.Database {
		t.Fatalf("lease connection %+v", lease.Connection)
	}
	e.mustQuery(t, cred.Username, cred.Password)
}

func TestCatalogRotateRoot(t *testing.T) {
	e := newEnv(t)
	c := e.catalog(t)
	ctx := context.Background()
	if _, err := e.admin.Exec(ctx, `CREATE ROLE shop_admin WITH LOGIN CREATEROLE PASSWORD 'first-password-0001'; GRANT pg_signal_backend TO shop_admin; GRANT SELECT ON products TO shop_admin WITH GRANT OPTION`); err != nil {
		t.Fatal(err)
	}
	if err := c.PutDatabase(ctx, e.database("shop", "shop_admin", "first-password-0001")); err != nil {
		t.Fatal(err)
	}
	if err := c.PutSecret(ctx, SecretConfig{Secret: "app/db", Database: "shop", DefaultTTL: time.Hour, Creation: grantingConfig().Creation}); err != nil {
		t.Fatal(err)
	}
	db, err := c.RotateRoot(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if db.Password != "" || db.RootRotated.IsZero() {
		t.Fatalf("RotateRoot returned %+v", db)
	}
	if _, err := e.login(t, "shop_admin", "first-password-0001"); !isAuthFailure(err) {
		t.Fatalf("old password after rotation: %v", err)
	}
	if err := c.Check(ctx, "shop"); err != nil {
		t.Fatalf("the rotated password does not log in: %v", err)
	}
	// The stored verifier is SCRAM, never the password itself.
	var stored string
	if err := e.admin.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = 'shop_admin'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") {
		t.Fatalf("stored password %q is not a SCRAM verifier", stored)
	}
	l, err := NewLeases(Options{Store: e.st, Roles: c})
	if err != nil {
		t.Fatal(err)
	}
	lease, cred, err := l.Issue(ctx, "app/db", "")
	if err != nil {
		t.Fatalf("issuing after rotate-root: %v", err)
	}
	e.mustQuery(t, cred.Username, cred.Password)
	if err := l.Revoke(ctx, lease.ID); err != nil {
		t.Fatalf("revoking after rotate-root: %v", err)
	}

	// A rotation interrupted after the database changed, before the
	// password was recorded: the next RotateRoot finishes it first.
	rec := readDatabaseRecord(t, e, "shop")
	crashed := "crashed-rotation-password-0001"
	verifier, err := SCRAMVerifier(rand.Reader, crashed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Exec(ctx, `ALTER ROLE shop_admin PASSWORD '`+verifier+`'`); err != nil {
		t.Fatal(err)
	}
	rec.Pending = crashed
	writeDatabaseRecord(t, e, rec)
	if err := c.Check(ctx, "shop"); err == nil {
		t.Fatal("the recorded password still works after the simulated crash")
	}
	if _, err := c.RotateRoot(ctx, "shop"); err != nil {
		t.Fatalf("RotateRoot after an interrupted rotation: %v", err)
	}
	if err := c.Check(ctx, "shop"); err != nil {
		t.Fatalf("after finishing the interrupted rotation: %v", err)
	}
	if got := readDatabaseRecord(t, e, "shop"); got.Pending != "" || got.Password == crashed {
		t.Fatalf("record after recovery: pending %t", got.Pending != "")
	}
}

func TestSCRAMVerifierRefusesNonASCII(t *testing.T) {
	if _, err := SCRAMVerifier(rand.Reader, "pässword"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("non-ASCII password: %v", err)
	}
	if _, err := SCRAMVerifier(io.LimitReader(rand.Reader, 0), "password"); err == nil {
		t.Fatal("an empty random source produced a salt")
	}
}

func TestTLSConfig(t *testing.T) {
	d := Database{Host: "db.internal", TLS: TLS{Mode: TLSVerifyFull}}
	tc, err := d.tlsConfig()
	if err != nil || tc == nil || tc.ServerName != "db.internal" || tc.InsecureSkipVerify {
		t.Fatalf("verify-full: %+v, %v", tc, err)
	}
	d.TLS.ServerName = "other"
	if tc, _ := d.tlsConfig(); tc.ServerName != "other" {
		t.Fatalf("server name override: %q", tc.ServerName)
	}
	d.TLS.Mode = TLSRequire
	if tc, _ := d.tlsConfig(); tc == nil || !tc.InsecureSkipVerify {
		t.Fatal("require mode verifies, or does not encrypt")
	}
	d.TLS.Mode = TLSDisable
	if tc, _ := d.tlsConfig(); tc != nil {
		t.Fatal("disable mode has a TLS config")
	}
}

func readDatabaseRecord(t *testing.T, e *env, name string) databaseRecord {
	t.Helper()
	ent, err := e.st.Get(context.Background(), databaseKey(name))
	if err != nil {
		t.Fatal(err)
	}
	var r databaseRecord
	if err := json.Unmarshal(ent.Value, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func writeDatabaseRecord(t *testing.T, e *env, r databaseRecord) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Txn(context.Background(), nil, []store.Op{store.Put(databaseKey(r.Name), b)}); err != nil {
		t.Fatal(err)
	}
}

// A registration that keeps the stored password cannot move where sigil
// connects (else it could be pointed at a server that collects the
// password), and never drops a password an interrupted rotation left
// pending.
func TestCatalogPutDatabaseGuardsThePassword(t *testing.T) {
	e := newEnv(t)
	c := e.catalog(t)
	ctx := context.Background()
	db := e.database("shop", e.pg.User, e.pg.Password)
	if err := c.PutDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*Database){
		"host":     func(d *Database) { d.Host = "collector.example.com" },
		"port":     func(d *Database) { d.Port = 5433 },
		"username": func(d *Database) { d.Username = "other" },
		"tls":      func(d *Database) { d.TLS = TLS{Mode: TLSRequire} },
	} {
		t.Run(name, func(t *testing.T) {
			moved := e.database("shop", e.pg.User, "")
			f(&moved)
			if err := c.PutDatabase(ctx, moved); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("moving %s without the password: %v", name, err)
			}
			with := moved
			with.Password = "the-new-servers-password"
			if err := c.PutDatabase(ctx, with); err != nil {
				t.Fatalf("moving %s with a password: %v", name, err)
			}
			if err := c.PutDatabase(ctx, db); err != nil { // back
				t.Fatal(err)
			}
		})
	}
	rec := readDatabaseRecord(t, e, "shop")
	rec.Pending = "pending-from-an-interrupted-rotation"
	writeDatabaseRecord(t, e, rec)
	same := e.database("shop", e.pg.User, "")
	same.MaxConns = 3
	if err := c.PutDatabase(ctx, same); err != nil {
		t.Fatal(err)
	}
	if got := readDatabaseRecord(t, e, "shop"); got.Pending != rec.Pending || got.Password != e.pg.Password || got.MaxConns != 3 {
		t.Fatalf("after a replacement: pending kept %t, password kept %t, maxConns %d", got.Pending == rec.Pending, got.Password == e.pg.Password, got.MaxConns)
	}
	// The pending password does not log in and the recorded one does: a
	// rotation gives the pending one up and proceeds.
	if _, err := c.RotateRoot(ctx, "shop"); err != nil {
		t.Fatalf("RotateRoot with a stale pending password: %v", err)
	}
	if err := c.Check(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
}
