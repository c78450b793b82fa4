package dynamic

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"sigil.dev/sigil/internal/testutil"
)

// The catalog drives MySQL as it drives PostgreSQL: a registered database,
// users issued through Leases, and root rotation for a dedicated
// administrator.
func TestCatalogMySQL(t *testing.T) {
	e := newMySQLEnv(t)
	ctx := context.Background()
	const initial = "first-mysql-password-01"
	for _, q := range []string{
		`CREATE USER 'shop_admin'@'%' IDENTIFIED BY '` + initial + `'`,
		`GRANT CREATE USER, EVENT, CONNECTION ADMIN, PROCESS ON *.* TO 'shop_admin'@'%'`,
		`GRANT SELECT ON ` + testutil.MySQLDatabase + `.products TO 'shop_admin'@'%' WITH GRANT OPTION`,
		`GRANT EVENT, SELECT ON ` + testutil.MySQLDatabase + `.* TO 'shop_admin'@'%'`,
		`GRANT SELECT ON mysql.user TO 'shop_admin'@'%'`,
	} {
		if _, err := e.admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c, err := NewCatalog(CatalogOptions{Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	db := Database{Name: "shop", Engine: EngineMySQL, Host: e.my.Host, Port: e.my.Port, DBName: testutil.MySQLDatabase,
		Username: "shop_admin", Password: initial, TLS: TLS{Mode: TLSDisable}}
	if err := c.PutDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, "shop"); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := c.PutSecret(ctx, SecretConfig{Secret: "app/db", Database: "shop", DefaultTTL: time.Hour, Creation: mysqlGranting().Creation}); err != nil {
		t.Fatal(err)
	}
	l, err := NewLeases(Options{Store: e.st, Roles: c})
	if err != nil {
		t.Fatal(err)
	}
	lease, cred, err := l.Issue(ctx, "app/db", "s1")
	if err != nil {
		t.Fatalf("issuing through the catalog: %v", err)
	}
	if lease.Connection.Engine != EngineMySQL || lease.Connection.Port != e.my.Port {
		t.Fatalf("lease connection %+v", lease.Connection)
	}
	readProducts(t, e, cred)

	if _, err := c.RotateRoot(ctx, "shop"); err != nil {
		t.Fatalf("RotateRoot: %v", err)
	}
	old, err := sql.Open("mysql", e.my.DSNFor("shop_admin", initial, testutil.MySQLDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	var me *mysql.MySQLError
	if err := old.PingContext(ctx); err == nil || !asMySQLError(err, &me) || me.Number != 1045 {
		t.Fatalf("old administrator password after rotation: %v", err)
	}
	if err := c.Check(ctx, "shop"); err != nil {
		t.Fatalf("the rotated password does not log in: %v", err)
	}
	// Issuing and revoking go on with the password only sigil knows.
	_, cred2, err := l.Issue(ctx, "app/db", "s2")
	if err != nil {
		t.Fatalf("issuing after rotate-root: %v", err)
	}
	readProducts(t, e, cred2)
	if n, err := l.RevokePrefix(ctx, "app/db/"); err != nil || n != 2 {
		t.Fatalf("RevokePrefix = %d, %v", n, err)
	}
	if e.userExists(t, cred.Username) || e.userExists(t, cred2.Username) {
		t.Fatal("revoked users still exist")
	}
}

func readProducts(t *testing.T, e *mysqlEnv, c Credential) {
	t.Helper()
	db := e.my.OpenAs(t, c.Username, c.Password, testutil.MySQLDatabase)
	var name string
	if err := db.QueryRowContext(context.Background(), `SELECT name FROM products WHERE id = 1`).Scan(&name); err != nil || name != "lamp" {
		t.Fatalf("reading products as %s: %q, %v", c.Username, name, err)
	}
}

func asMySQLError(err error, target **mysql.MySQLError) bool {
	me, ok := err.(*mysql.MySQLError)
	if ok {
		*target = me
	}
	return ok
}
