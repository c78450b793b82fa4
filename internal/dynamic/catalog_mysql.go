package dynamic

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"io"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// mysqlConfig is db as the MySQL driver's configuration, logging in with
// password.
func (d *Database) mysqlConfig(password string, tc *tls.Config) *mysql.Config {
	mc := mysql.NewConfig()
	mc.User, mc.Passwd = d.Username, password
	mc.Net, mc.Addr, mc.DBName = "tcp", d.address(), d.DBName
	mc.TLS = tc
	mc.Timeout = mysqlDialTimeout
	mc.Logger = &mysql.NopLogger{}
	return mc
}

// newMySQLFromDatabase builds the MySQL engine of cfg on db.
func newMySQLFromDatabase(db Database, cfg SecretConfig, tc *tls.Config, rnd io.Reader) (Engine, error) {
	return NewMySQLEngine(MySQLConfig{
		DSN: db.mysqlConfig(db.Password, nil).FormatDSN(), TLS: tc,
		Creation: cfg.Creation, Renew: cfg.Renew, Revocation: cfg.Revocation,
		UsernamePrefix: cfg.UsernamePrefix, Password: cfg.Password, Rand: rnd, MaxConns: db.MaxConns,
	})
}

// mysqlAdmin changes the privileged user's password in MySQL or MariaDB.
type mysqlAdmin struct {
	db  Database
	tls *tls.Config
	rnd io.Reader
}

func (a mysqlAdmin) open(password string) (*sql.DB, error) {
	conn, err := mysql.NewConnector(a.db.mysqlConfig(password, a.tls))
	if err != nil {
		return nil, fmt.Errorf("%w: mysql connection settings: %v", ErrInvalidConfig, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return db, nil
}

func (a mysqlAdmin) ping(ctx context.Context, password string) error {
	db, err := a.open(password)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		// The driver's errors name user and host, never the password.
		return fmt.Errorf("connecting to mysql at %s: %w", a.db.address(), err)
	}
	return nil
}

// setPassword changes the password of the logged-in account. The literal
// is quoted for the session's sql_mode.
func (a mysqlAdmin) setPassword(ctx context.Context, current, next string) error {
	db, err := a.open(current)
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting to mysql at %s: %w", a.db.address(), err)
	}
	defer c.Close()
	var mode, version string
	if err := c.QueryRowContext(ctx, `SELECT @@SESSION.sql_mode, VERSION()`).Scan(&mode, &version); err != nil {
		return fmt.Errorf("reading sql_mode: %w", err)
	}
	lit, err := QuoteMySQLLiteral(next, hasSQLMode(mode, "NO_BACKSLASH_ESCAPES"))
	if err != nil {
		return err
	}
	// MariaDB 10.11 accepts ALTER USER CURRENT_USER() IDENTIFIED BY and
	// leaves the password as it was; SET PASSWORD changes the logged-in
	// account's own password on both.
	stmt := `ALTER USER CURRENT_USER() IDENTIFIED BY ` + lit
	if strings.Contains(version, "MariaDB") {
		stmt = `SET PASSWORD = PASSWORD(` + lit + `)`
	}
	if _, err := c.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("changing password: %w", mysqlStatementError(err, next))
	}
	return nil
}
