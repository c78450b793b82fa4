package rotation

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"sigil.dev/sigil/internal/dynamic"
)

// MySQLDefaultPort is the port of a MySQL secret without "port".
const MySQLDefaultPort = 3306

// MySQLRotator is the built-in sigil-mysql-single-user, for MySQL and
// MariaDB: the secret's user changes its own password, as AWS's
// single-user Lambda does, with ALTER USER CURRENT_USER() IDENTIFIED BY
// '<password>' on MySQL and SET PASSWORD = PASSWORD('<password>') on
// MariaDB (which requires CREATE USER for the former). The steps are those
// of [PostgreSQLRotator]. Its zero value is ready to use.
type MySQLRotator struct {
	// Policy shapes generated passwords; the zero value is 32 characters
	// of letters, digits and connection-safe punctuation.
	Policy PasswordPolicy
	// Rand is the source of passwords; nil means crypto/rand.
	Rand io.Reader
	// ConnectTimeout bounds each login; zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// Step implements Rotator.
func (m *MySQLRotator) Step(ctx context.Context, step Step, job Job) error {
	switch step {
	case StepCreate:
		r := m.Rand
		if r == nil {
			r = rand.Reader
		}
		return createDatabasePending(ctx, job, MySQLDefaultPort, m.Policy, r)
	case StepSet:
		return m.set(ctx, job)
	case StepTest:
		pend, err := m.pending(ctx, job)
		if err != nil {
			return err
		}
		c, err := m.login(ctx, pend)
		if err != nil {
			return fmt.Errorf("%w with AWSPENDING: %w", ErrLogin, err)
		}
		defer c.Close()
		var one int
		if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("SELECT 1 as the AWSPENDING user: %w", scrub(err, pend.Password))
		}
		return nil
	case StepFinish:
		return nil
	}
	return unknownStep(step)
}

func (m *MySQLRotator) pending(ctx context.Context, job Job) (DatabaseSecret, error) {
	s, err := stageString(ctx, job, job.Token, StagePending)
	if err != nil {
		return DatabaseSecret{}, err
	}
	return ParseDatabaseSecret(s, MySQLDefaultPort)
}

func (m *MySQLRotator) set(ctx context.Context, job Job) error {
	pend, err := m.pending(ctx, job)
	if err != nil {
		return err
	}
	if c, err := m.login(ctx, pend); err == nil {
		_ = c.Close()
		return nil
	}
	if _, err := dynamic.QuoteMySQLLiteralAnyMode(pend.Password); err != nil {
		return fmt.Errorf("the AWSPENDING password: %w", err)
	}
	c, err := loginAsCurrentOrPrevious(ctx, job, pend, MySQLDefaultPort, m.login)
	if err != nil {
		return err
	}
	defer c.Close()
	return alterMySQL(ctx, c, pend.Username, pend.Password)
}

// Revert implements Reverter: if AWSCURRENT no longer logs in but
// AWSPENDING does, it sets the password back to AWSCURRENT's.
func (m *MySQLRotator) Revert(ctx context.Context, job Job) error {
	pend, cur, err := revertValues(ctx, job, MySQLDefaultPort)
	if err != nil || pend == nil {
		return err
	}
	if c, err := m.login(ctx, *cur); err == nil {
		_ = c.Close()
		return nil
	}
	c, err := m.login(ctx, *pend)
	if err != nil {
		return fmt.Errorf("%w: neither AWSCURRENT nor AWSPENDING logs in: %w", ErrLogin, err)
	}
	defer c.Close()
	return alterMySQL(ctx, c, cur.Username, cur.Password)
}

// alterMySQL sets the password of the user logged in over c. MySQL lets
// an account change its own password with ALTER USER CURRENT_USER(); MariaDB
// demands the CREATE USER privilege for that and allows the account's own
// SET PASSWORD = PASSWORD(...) instead (AWS's Lambda uses the same form for
// MariaDB and MySQL 5.x).
func alterMySQL(ctx context.Context, c mysqlConn, username, password string) error {
	lit, err := dynamic.QuoteMySQLLiteralAnyMode(password)
	if err != nil {
		return fmt.Errorf("the password: %w", err)
	}
	var version string
	if err := c.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return fmt.Errorf("reading the server version: %w", scrub(err, password))
	}
	stmt := "ALTER USER CURRENT_USER() IDENTIFIED BY " + lit
	if strings.Contains(strings.ToLower(version), "mariadb") {
		stmt = "SET PASSWORD = PASSWORD(" + lit + ")"
	}
	if _, err := c.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("changing the password of %q: %w", username, scrub(err, password))
	}
	return nil
}

// mysqlConn is one connection and the pool that holds it; closing it
// closes both.
type mysqlConn struct {
	*sql.Conn
	db *sql.DB
}

func (c mysqlConn) Close() error {
	err := c.Conn.Close()
	return errors.Join(err, c.db.Close())
}

// login connects as d's user with d's password.
func (m *MySQLRotator) login(ctx context.Context, d DatabaseSecret) (mysqlConn, error) {
	timeout := m.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	cfg := mysql.NewConfig()
	cfg.User = d.Username
	cfg.Passwd = d.Password
	cfg.Net = "tcp"
	cfg.Addr = d.Addr()
	cfg.DBName = d.DBName
	cfg.Timeout = timeout
	cfg.Logger = &mysql.NopLogger{}
	switch d.SSLMode {
	case "disable":
	case "require":
		cfg.TLS = &tls.Config{InsecureSkipVerify: true}
	case "verify-ca", "verify-full":
		cfg.TLS = &tls.Config{ServerName: d.Host, MinVersion: tls.VersionTLS12}
	case "", "prefer", "allow":
		cfg.TLSConfig = "preferred"
	default:
		return mysqlConn{}, fmt.Errorf("%w: unknown sslmode %q", ErrInvalidSecretValue, d.SSLMode)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return mysqlConn{}, fmt.Errorf("%w: the host, port, username or dbname do not form a MySQL configuration", ErrInvalidSecretValue)
	}
	db := sql.OpenDB(conn)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := db.Conn(ctx)
	if err == nil {
		err = c.PingContext(ctx)
		if err != nil {
			_ = c.Close()
		}
	}
	if err != nil {
		_ = db.Close()
		return mysqlConn{}, fmt.Errorf("logging in to %s as %q: %w", d.Addr(), d.Username, scrub(err, d.Password))
	}
	return mysqlConn{Conn: c, db: db}, nil
}
