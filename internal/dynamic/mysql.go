package dynamic

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQLMaxUsername is the longest user name, in characters, that
// [MySQLEngine] creates: MySQL's limit (MariaDB allows 80), so that one
// configuration works on both.
const MySQLMaxUsername = 32

// mysqlExpiryAt is the schedule of the expiry event: the lease's expiry, or
// one second from now if that has already passed. A time in the past would
// make the server drop the event at once and leave the user for ever.
const mysqlExpiryAt = `ON SCHEDULE AT GREATEST(TIMESTAMP {{expiration}}, CURRENT_TIMESTAMP + INTERVAL 1 SECOND)`

// Default statements of a [MySQLEngine].
var (
	// DefaultMySQLCreation creates the user with no privileges beyond
	// USAGE (add GRANT statements for what it may do) and an event, named
	// like the user, that drops the user at its expiry. MySQL has no VALID
	// UNTIL; the event is how the database itself removes an expired user
	// while sigil is down. It needs the server's event_scheduler ON and the
	// DSN to name a database, where the event lives.
	DefaultMySQLCreation = []string{
		`CREATE USER {{name}}@'%' IDENTIFIED BY {{password}}`,
		`CREATE EVENT {{name}} ` + mysqlExpiryAt + ` DO DROP USER IF EXISTS {{name}}@'%'`,
	}
	// DefaultMySQLRenew moves the expiry event.
	DefaultMySQLRenew = []string{
		`ALTER EVENT {{name}} ` + mysqlExpiryAt,
	}
	// DefaultMySQLRevocation drops the user and its expiry event. It runs
	// after every account of the user has been locked and its connections
	// killed.
	DefaultMySQLRevocation = []string{
		`DROP USER IF EXISTS {{name}}@'%'`,
		`DROP EVENT IF EXISTS {{name}}`,
	}
)

// MySQLConfig configures a [MySQLEngine]. Zero values are documented per
// field.
type MySQLConfig struct {
	// DSN is the administrator's data source name in go-sql-driver/mysql
	// form, user:password@tcp(host:port)/dbname?params. The administrator
	// needs CREATE USER, EVENT on dbname, SELECT on mysql.user, PROCESS and
	// CONNECTION ADMIN (or SUPER) to kill other users' connections, and
	// every privilege it grants, WITH GRANT OPTION. The default statements
	// need dbname. Required.
	DSN string
	// TLS, if not nil, is used for the connection to the server; it takes
	// precedence over a tls parameter in the DSN. An empty ServerName means
	// the DSN's host.
	TLS *tls.Config
	// Creation are the statements that create a user, run in order. They
	// may use {{name}}, {{password}} and {{expiration}}; {{name}} expands
	// to a backtick identifier, so an account is written {{name}}@'%'. If
	// one of them holds CREATE EVENT, every Create first checks that the
	// server's event_scheduler is ON. Nil means DefaultMySQLCreation.
	Creation []string
	// Renew are the statements that move a user's expiry. They may use
	// {{name}} and {{expiration}}. Nil means DefaultMySQLRenew, which
	// fails for a user whose expiry event has already run (the user is
	// gone) or was never created.
	Renew []string
	// Revocation are the statements that remove a user, run after its
	// accounts have been locked and its connections killed. They may use
	// {{name}}. Nil means DefaultMySQLRevocation.
	Revocation []string
	// UsernamePrefix is the readable start of every username; "" means "v".
	UsernamePrefix string
	// Password is the password policy; its zero value is documented on
	// PasswordPolicy.
	Password PasswordPolicy
	// Rand is the source of randomness for usernames and passwords; nil
	// means crypto/rand.Reader.
	Rand io.Reader
	// MaxConns caps the engine's connections to the database; zero means 4.
	MaxConns int
}

// MySQLEngine manages dynamic users in one MySQL or MariaDB server
// (MySQL 5.7.8 and later, MariaDB 10.4 and later, for ACCOUNT LOCK and
// DROP USER IF EXISTS). It is safe for concurrent use. Close releases its
// connections.
//
// With the default statements the database enforces expiry itself: the
// user's event drops it at its expiry, after which the server refuses its
// logins even while sigil is down. As with PostgreSQL's VALID UNTIL, which
// is checked only at login, sessions already open when the user expires
// stay open until Revoke (run by the reaper) kills them. The event runs as
// the administrator that created it (its DEFINER), so that account must
// keep existing; changing its password does not matter.
//
// MySQL runs every CREATE USER, GRANT and CREATE EVENT in a transaction of
// its own, so statements cannot be rolled back together as PostgreSQL's
// are: when a creation statement fails, Create removes what the earlier
// ones made by revoking the user.
type MySQLEngine struct {
	db             *sql.DB
	addr           string
	creation       []Template
	renew          []Template
	revocation     []Template
	needsScheduler bool
	prefix         string
	password       PasswordPolicy
	rand           io.Reader
}

var _ Engine = (*MySQLEngine)(nil)

// mysqlDialTimeout is the connection timeout when the DSN sets none.
const mysqlDialTimeout = 10 * time.Second

// cleanupTimeout bounds the removal of a partly created user.
const cleanupTimeout = 30 * time.Second

// NewMySQLEngine checks cfg, parses its statement templates and prepares a
// connection pool. It does not connect until the first use.
func NewMySQLEngine(cfg MySQLConfig) (*MySQLEngine, error) {
	if cfg.DSN == "" {
		return nil, fmt.Errorf("%w: mysql DSN is required", ErrInvalidConfig)
	}
	if err := cfg.Password.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxConns < 0 {
		return nil, fmt.Errorf("%w: negative MaxConns", ErrInvalidConfig)
	}
	e := &MySQLEngine{
		prefix:   cfg.UsernamePrefix,
		password: cfg.Password.withDefaults(),
		rand:     cfg.Rand,
	}
	if e.prefix == "" {
		e.prefix = "v"
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	st, err := parseStatements(cfg.Creation, cfg.Renew, cfg.Revocation, DefaultMySQLCreation, DefaultMySQLRenew, DefaultMySQLRevocation)
	if err != nil {
		return nil, err
	}
	e.creation, e.renew, e.revocation = st.creation, st.renew, st.revocation
	creation := cfg.Creation
	if creation == nil {
		creation = DefaultMySQLCreation
	}
	for _, s := range creation {
		if strings.Contains(strings.ToUpper(strings.Join(strings.Fields(s), " ")), "CREATE EVENT") {
			e.needsScheduler = true
		}
	}

	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		// The driver's parse errors can quote parts of the DSN, so the
		// cause is not wrapped.
		return nil, fmt.Errorf("%w: mysql DSN does not parse", ErrInvalidConfig)
	}
	if mc.DBName == "" && (cfg.Creation == nil || cfg.Renew == nil) {
		return nil, fmt.Errorf("%w: the default mysql statements keep the expiry event in a database; name one in the DSN", ErrInvalidConfig)
	}
	if cfg.TLS != nil {
		mc.TLS = cfg.TLS.Clone()
	}
	// Event times are written in UTC.
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	mc.Params["time_zone"] = "'+00:00'"
	// One statement per Exec, whatever the DSN says: a template expands to
	// exactly one statement.
	mc.MultiStatements = false
	// Client-side interpolation saves a round trip per query and makes the
	// driver refuse character sets (GBK, Big5, SJIS...) in which escaping
	// with backslashes is unsafe, as QuoteMySQLLiteral's is.
	mc.InterpolateParams = true
	if mc.Timeout == 0 {
		mc.Timeout = mysqlDialTimeout
	}
	// The driver's own log goes nowhere; every failure reaches the caller
	// as an error.
	mc.Logger = &mysql.NopLogger{}
	e.addr = mc.Addr
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("%w: mysql connection settings: %v", ErrInvalidConfig, err)
	}
	max := cfg.MaxConns
	if max == 0 {
		max = 4
	}
	e.db = sql.OpenDB(conn)
	e.db.SetMaxOpenConns(max)
	e.db.SetMaxIdleConns(max)
	e.db.SetConnMaxIdleTime(5 * time.Minute)
	return e, nil
}

// Close closes the engine's connections.
func (e *MySQLEngine) Close() { _ = e.db.Close() }

// Username returns prefix_role_<16 random characters>, at most
// MySQLMaxUsername characters.
func (e *MySQLEngine) Username(role string) (string, error) {
	return makeUsername(e.rand, e.prefix, role, MySQLMaxUsername)
}

// mysqlSession is one administrator connection and how it reads literals.
type mysqlSession struct {
	conn      *sql.Conn
	dialect   mysqlDialect
	scheduler string // @@GLOBAL.event_scheduler
}

// with runs fn on a pooled connection, after reading the session's
// sql_mode so that literals are quoted the way this session reads them.
func (e *MySQLEngine) with(ctx context.Context, fn func(s mysqlSession) error) error {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		// The driver's connection errors name the address and user, never
		// the password.
		return fmt.Errorf("connecting to mysql at %s: %w", e.addr, err)
	}
	defer conn.Close()
	var mode string
	s := mysqlSession{conn: conn}
	if err := conn.QueryRowContext(ctx, `SELECT @@SESSION.sql_mode, @@GLOBAL.event_scheduler`).Scan(&mode, &s.scheduler); err != nil {
		return fmt.Errorf("reading sql_mode from mysql at %s: %w", e.addr, err)
	}
	s.dialect.noBackslashEscapes = hasSQLMode(mode, "NO_BACKSLASH_ESCAPES")
	return fn(s)
}

// Create generates a password and runs the creation statements. If one
// fails, the error (wrapping [ErrStatement] for a server-side rejection)
// names the statement and the server's message with the password removed,
// and the user is revoked, which removes whatever the earlier statements
// created. When the creation statements create an event, Create first
// checks that the server's event scheduler is ON, failing with
// [ErrInvalidConfig] otherwise: without it the user would never expire in
// the database.
func (e *MySQLEngine) Create(ctx context.Context, c Creation) (Credential, error) {
	if err := checkMySQLUsername(c.Username); err != nil {
		return Credential{}, fmt.Errorf("creating mysql user: %w", err)
	}
	password, err := randomString(e.rand, e.password.Alphabet, e.password.Length)
	if err != nil {
		return Credential{}, fmt.Errorf("generating password: %w", err)
	}
	v := Values{Name: c.Username, Password: password, Expiration: mysqlTime(c.Expires)}
	var ran bool // a statement ran, so something may need removing
	err = e.with(ctx, func(s mysqlSession) error {
		if e.needsScheduler && !strings.EqualFold(s.scheduler, "ON") {
			return fmt.Errorf("%w: event_scheduler is %s on mysql at %s, so the expiry event would never run; start the server with --event-scheduler=ON",
				ErrInvalidConfig, s.scheduler, e.addr)
		}
		ran = true
		return runMySQL(ctx, s, "creation", e.creation, v)
	})
	if err != nil {
		if ran {
			// The cleanup must run even when ctx is what ended the
			// creation, but not for ever.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			rerr := e.Revoke(cctx, c.Username)
			cancel()
			if rerr != nil {
				err = fmt.Errorf("%w (and removing what was created failed: %v)", err, rerr)
			}
		}
		return Credential{}, fmt.Errorf("creating mysql user %q: %w", c.Username, err)
	}
	return Credential{Username: c.Username, Password: password, Expires: c.Expires}, nil
}

// Renew runs the renew statements.
func (e *MySQLEngine) Renew(ctx context.Context, username string, expires time.Time) error {
	v := Values{Name: username, Expiration: mysqlTime(expires)}
	err := e.with(ctx, func(s mysqlSession) error { return runMySQL(ctx, s, "renew", e.renew, v) })
	if err != nil {
		return fmt.Errorf("renewing mysql user %q: %w", username, err)
	}
	return nil
}

// Exists reports whether an account with the user name username exists,
// whatever its host.
func (e *MySQLEngine) Exists(ctx context.Context, username string) (bool, error) {
	var n int
	err := e.with(ctx, func(s mysqlSession) error {
		return s.conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM mysql.user WHERE User = ?`, username).Scan(&n)
	})
	if err != nil {
		return false, fmt.Errorf("looking up mysql user %q: %w", username, err)
	}
	return n > 0, nil
}

// Revoke locks every account of the user (ACCOUNT LOCK) so that it cannot
// log in again, kills its connections (found in
// information_schema.PROCESSLIST) and waits for them to end, and then runs
// the revocation statements. A user that does not exist is already
// revoked, and Revoke returns nil.
func (e *MySQLEngine) Revoke(ctx context.Context, username string) error {
	err := e.with(ctx, func(s mysqlSession) error {
		hosts, err := accountHosts(ctx, s, username)
		if err != nil {
			return err
		}
		if len(hosts) == 0 {
			return nil
		}
		id, err := QuoteMySQLIdentifier(username)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			host, err := QuoteMySQLLiteral(h, s.dialect.noBackslashEscapes)
			if err != nil {
				return err
			}
			if _, err := s.conn.ExecContext(ctx, `ALTER USER `+id+`@`+host+` ACCOUNT LOCK`); err != nil {
				return fmt.Errorf("locking account: %w", mysqlStatementError(err, ""))
			}
		}
		if err := killConnections(ctx, s, username); err != nil {
			return err
		}
		return runMySQL(ctx, s, "revocation", e.revocation, Values{Name: username})
	})
	if err != nil {
		return fmt.Errorf("revoking mysql user %q: %w", username, err)
	}
	return nil
}

// accountHosts lists the hosts of the accounts named username.
func accountHosts(ctx context.Context, s mysqlSession, username string) ([]string, error) {
	rows, err := s.conn.QueryContext(ctx, `SELECT Host FROM mysql.user WHERE User = ?`, username)
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", mysqlStatementError(err, ""))
	}
	defer rows.Close()
	var hosts []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("listing accounts: %w", err)
		}
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	return hosts, nil
}

// mysqlUnknownThread is the server's error for KILL of a connection that
// has already gone.
const mysqlUnknownThread = 1094

// killPoll is how often killConnections looks whether the killed
// connections have ended.
const killPoll = 10 * time.Millisecond

// killConnections kills every connection of username and waits, up to
// terminateWait, until none is left in the process list: a killed
// connection ends at its next check of the kill flag, which for a
// connection inside a long statement can take a moment.
func killConnections(ctx context.Context, s mysqlSession, username string) error {
	deadline := time.Now().Add(terminateWait)
	for {
		ids, err := connectionIDs(ctx, s, username)
		if err != nil {
			return err
		}
		if len(ids) == 0 || time.Now().After(deadline) {
			return nil
		}
		for _, id := range ids {
			_, err := s.conn.ExecContext(ctx, `KILL CONNECTION `+strconv.FormatUint(id, 10))
			var me *mysql.MySQLError
			if err != nil && !(errors.As(err, &me) && me.Number == mysqlUnknownThread) {
				return fmt.Errorf("killing connection %d: %w", id, mysqlStatementError(err, ""))
			}
		}
		t := time.NewTimer(killPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for killed connections: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// connectionIDs lists the connections of username other than this one.
func connectionIDs(ctx context.Context, s mysqlSession, username string) ([]uint64, error) {
	rows, err := s.conn.QueryContext(ctx,
		`SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()`, username)
	if err != nil {
		return nil, fmt.Errorf("listing connections: %w", mysqlStatementError(err, ""))
	}
	defer rows.Close()
	var ids []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("listing connections: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing connections: %w", err)
	}
	return ids, nil
}

// runMySQL expands stmts for the session and runs them in order, each
// committing on its own as MySQL's DDL does, and stops at the first
// failure.
func runMySQL(ctx context.Context, s mysqlSession, kind string, stmts []Template, v Values) error {
	for i, t := range stmts {
		q, err := t.expandMySQL(v, s.dialect)
		if err != nil {
			return fmt.Errorf("%s statement %d: %w", kind, i+1, err)
		}
		// Without arguments the driver sends the text as it is (no
		// placeholder processing), so a '?' in a password stays inert.
		if _, err := s.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s statement %d: %w", kind, i+1, mysqlStatementError(err, v.Password))
		}
	}
	return nil
}

// mysqlStatementError turns an error from running a statement into one
// that wraps [ErrStatement] for a server-side rejection and never holds the
// password: the server's message can quote the statement near the error.
func mysqlStatementError(err error, password string) error {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		// Connection and context errors carry no statement text.
		return err
	}
	state := ""
	if me.SQLState != [5]byte{} {
		state = ", SQLSTATE " + string(me.SQLState[:])
	}
	return fmt.Errorf("%w: %s (error %d%s)", ErrStatement, redactMySQL(me.Message, password), me.Number, state)
}
