package dynamic

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/testutil"
)

// mysqlEnv is one MariaDB server with a table the dynamic users may read,
// and a bolt store.
type mysqlEnv struct {
	my    *testutil.MySQL
	admin *sql.DB
	st    store.Store
}

func newMySQLEnv(t testing.TB) *mysqlEnv {
	t.Helper()
	my := testutil.StartMySQL(t)
	admin := my.Open(t)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE products (id int PRIMARY KEY, name text)`,
		`INSERT INTO products VALUES (1, 'lamp')`,
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return &mysqlEnv{my: my, admin: admin, st: openStore(t)}
}

// engine returns a MySQLEngine for the server with cfg's DSN filled in.
func (e *mysqlEnv) engine(t testing.TB, cfg MySQLConfig) *MySQLEngine {
	t.Helper()
	cfg.DSN = e.my.DSN()
	eng, err := NewMySQLEngine(cfg)
	if err != nil {
		t.Fatalf("NewMySQLEngine: %v", err)
	}
	t.Cleanup(eng.Close)
	return eng
}

// mysqlGranting creates users that may read the products table.
func mysqlGranting() MySQLConfig {
	return MySQLConfig{Creation: append(append([]string{}, DefaultMySQLCreation...),
		"GRANT SELECT ON "+testutil.MySQLDatabase+".products TO {{name}}@'%'")}
}

// userExists reports whether the server has an account named name.
func (e *mysqlEnv) userExists(t testing.TB, name string) bool {
	t.Helper()
	var n int
	if err := e.admin.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM mysql.user WHERE User = ?`, name).Scan(&n); err != nil {
		t.Fatalf("listing users: %v", err)
	}
	return n > 0
}

// eventExists reports whether the test database has an event named name.
func (e *mysqlEnv) eventExists(t testing.TB, name string) bool {
	t.Helper()
	var n int
	if err := e.admin.QueryRowContext(context.Background(),
		`SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND EVENT_NAME = ?`,
		testutil.MySQLDatabase, name).Scan(&n); err != nil {
		t.Fatalf("listing events: %v", err)
	}
	return n > 0
}

// usersWithPrefix lists users whose names start with prefix_.
func (e *mysqlEnv) usersWithPrefix(t testing.TB, prefix string) []string {
	t.Helper()
	rows, err := e.admin.QueryContext(context.Background(),
		`SELECT User FROM mysql.user WHERE LEFT(User, ?) = ? ORDER BY 1`, len(prefix)+1, prefix+"_")
	if err != nil {
		t.Fatalf("listing users: %v", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// login opens one connection as user with password, with no default
// database (the users have no rights on a whole database), or returns the
// error.
func (e *mysqlEnv) login(t testing.TB, user, password string) (*sql.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db := e.my.OpenAs(t, user, password, "")
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// mustQuery logs in as user and reads the products table.
func (e *mysqlEnv) mustQuery(t testing.TB, user, password string) {
	t.Helper()
	c, err := e.login(t, user, password)
	if err != nil {
		t.Fatalf("logging in as %q: %v", user, err)
	}
	var name string
	if err := c.QueryRowContext(context.Background(), `SELECT name FROM `+testutil.MySQLDatabase+`.products WHERE id = 1`).Scan(&name); err != nil {
		t.Fatalf("querying as %q: %v", user, err)
	}
	if name != "lamp" {
		t.Fatalf("query returned %q", name)
	}
}

// isMySQLAuthFailure reports whether err is the server refusing a login:
// a wrong password, an unknown or a locked account.
func isMySQLAuthFailure(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && string(me.SQLState[:]) == "28000"
}
