package dynamic

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
	"sigil.dev/sigil/internal/testutil"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one PostgreSQL server with a table the dynamic users may read,
// and a bolt store.
type env struct {
	pg    *testutil.Postgres
	admin *pgx.Conn
	st    store.Store
}

func newEnv(t testing.TB) *env {
	t.Helper()
	pg := testutil.StartPostgres(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatalf("connecting as admin: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	if _, err := admin.Exec(ctx, `CREATE TABLE products (id int PRIMARY KEY, name text); INSERT INTO products VALUES (1, 'lamp')`); err != nil {
		t.Fatalf("creating table: %v", err)
	}
	return &env{pg: pg, admin: admin, st: openStore(t)}
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "sigil.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// engine returns a PostgresEngine for the server with cfg's DSN filled in.
func (e *env) engine(t testing.TB, cfg PostgresConfig) *PostgresEngine {
	t.Helper()
	cfg.DSN = e.pg.DSN()
	eng, err := NewPostgresEngine(cfg)
	if err != nil {
		t.Fatalf("NewPostgresEngine: %v", err)
	}
	t.Cleanup(eng.Close)
	return eng
}

// grantingConfig creates users that may read the products table.
func grantingConfig() PostgresConfig {
	return PostgresConfig{Creation: []string{
		DefaultPostgresCreation[0],
		`GRANT SELECT ON products TO {{name}}`,
	}}
}

// roleExists reports whether the server has a role named name.
func (e *env) roleExists(t testing.TB, name string) bool {
	t.Helper()
	var n int
	if err := e.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_roles WHERE rolname = $1`, name).Scan(&n); err != nil {
		t.Fatalf("listing roles: %v", err)
	}
	return n > 0
}

// dynamicRoles lists roles whose names start with prefix_.
func (e *env) dynamicRoles(t testing.TB, prefix string) []string {
	t.Helper()
	rows, err := e.admin.Query(context.Background(), `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1`, prefix+"_")
	if err != nil {
		t.Fatalf("listing roles: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("listing roles: %v", err)
	}
	return names
}

// login connects as user with password, or returns the error.
func (e *env) login(t testing.TB, user, password string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.pg.DSNFor(user, password, e.pg.Database))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, nil
}

// mustQuery logs in as user and reads the products table.
func (e *env) mustQuery(t testing.TB, user, password string) {
	t.Helper()
	c, err := e.login(t, user, password)
	if err != nil {
		t.Fatalf("logging in as %s: %v", user, err)
	}
	var name string
	if err := c.QueryRow(context.Background(), `SELECT name FROM products WHERE id = 1`).Scan(&name); err != nil {
		t.Fatalf("querying as %s: %v", user, err)
	}
	if name != "lamp" {
		t.Fatalf("query returned %q", name)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// isAuthFailure reports whether err is PostgreSQL refusing the login.
func isAuthFailure(err error) bool {
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		return pe.SQLState() == "28P01" || pe.SQLState() == "28000"
	}
	return false
}
