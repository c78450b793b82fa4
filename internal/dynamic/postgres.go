package dynamic

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Default statements of a [PostgresEngine].
var (
	// DefaultPostgresCreation creates a login role that PostgreSQL itself
	// refuses after its expiry.
	DefaultPostgresCreation = []string{
		`CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}`,
	}
	// DefaultPostgresRenew moves the role's expiry.
	DefaultPostgresRenew = []string{
		`ALTER ROLE {{name}} VALID UNTIL {{expiration}}`,
	}
	// DefaultPostgresRevocation hands whatever the role owns in the
	// connected database to the administrator, drops its remaining
	// privileges and drops the role. It runs after the role has been made
	// NOLOGIN and its sessions terminated. REASSIGN OWNED and DROP OWNED act
	// on the connected database only; a role granted rights in several
	// databases needs revocation statements run in each, or DROP ROLE fails
	// and the revocation is retried.
	DefaultPostgresRevocation = []string{
		`REASSIGN OWNED BY {{name}} TO CURRENT_USER`,
		`DROP OWNED BY {{name}}`,
		`DROP ROLE {{name}}`,
	}
)

// PostgresConfig configures a [PostgresEngine]. Zero values are documented
// per field.
type PostgresConfig struct {
	// DSN is the administrator's connection string (a postgres:// URL or
	// key=value list, as pgx accepts). The administrator needs CREATEROLE
	// and must be able to terminate backends. Required.
	DSN string
	// Creation are the statements that create a user, run in order in one
	// transaction. They may use {{name}}, {{password}} and {{expiration}}.
	// Nil means DefaultPostgresCreation.
	Creation []string
	// Renew are the statements that move a user's expiry, run in one
	// transaction. They may use {{name}} and {{expiration}}. Nil means
	// DefaultPostgresRenew.
	Renew []string
	// Revocation are the statements that remove a user, run in one
	// transaction after the user has been made NOLOGIN and its sessions
	// terminated. They may use {{name}}. Nil means DefaultPostgresRevocation.
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
	// TLS, when set, replaces the TLS configuration the DSN's sslmode
	// implies, so that a CA bundle need not be a file.
	TLS *tls.Config
	// DisableTLS connects without TLS whatever the DSN says.
	DisableTLS bool
}

// PostgresEngine manages dynamic users in one PostgreSQL database. It is
// safe for concurrent use. Close releases its connections.
type PostgresEngine struct {
	pool       *connPool
	creation   []Template
	renew      []Template
	revocation []Template
	prefix     string
	password   PasswordPolicy
	rand       io.Reader
}

var _ Engine = (*PostgresEngine)(nil)

// NewPostgresEngine checks cfg, parses its statement templates and opens a
// connection pool. It does not connect until the first use.
func NewPostgresEngine(cfg PostgresConfig) (*PostgresEngine, error) {
	if cfg.DSN == "" {
		return nil, fmt.Errorf("%w: postgres DSN is required", ErrInvalidConfig)
	}
	if err := cfg.Password.validate(); err != nil {
		return nil, err
	}
	e := &PostgresEngine{
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
	st, err := parseStatements(cfg.Creation, cfg.Renew, cfg.Revocation, DefaultPostgresCreation, DefaultPostgresRenew, DefaultPostgresRevocation)
	if err != nil {
		return nil, err
	}
	e.creation, e.renew, e.revocation = st.creation, st.renew, st.revocation
	pc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's parse errors can quote the connection string, password
		// included, so the cause is not wrapped.
		return nil, fmt.Errorf("%w: postgres DSN does not parse", ErrInvalidConfig)
	}
	switch {
	case cfg.DisableTLS:
		pc.TLSConfig, pc.Fallbacks = nil, nil
	case cfg.TLS != nil:
		pc.TLSConfig, pc.Fallbacks = cfg.TLS.Clone(), nil
	}
	if cfg.MaxConns < 0 {
		return nil, fmt.Errorf("%w: negative MaxConns", ErrInvalidConfig)
	}
	max := cfg.MaxConns
	if max == 0 {
		max = 4
	}
	e.pool = newConnPool(pc, max)
	return e, nil
}

func parseAll(kind string, stmts, defaults []string) ([]Template, error) {
	if stmts == nil {
		stmts = defaults
	}
	if len(stmts) == 0 {
		return nil, fmt.Errorf("%w: no %s statements", ErrTemplate, kind)
	}
	ts := make([]Template, len(stmts))
	for i, s := range stmts {
		t, err := ParseTemplate(s)
		if err != nil {
			return nil, fmt.Errorf("%s statement %d: %w", kind, i+1, err)
		}
		ts[i] = t
	}
	return ts, nil
}

// Close closes the engine's connection pool.
func (e *PostgresEngine) Close() { e.pool.close() }

// Username returns prefix_role_<16 random characters>, at most 63 bytes.
func (e *PostgresEngine) Username(role string) (string, error) {
	return makeUsername(e.rand, e.prefix, role, PostgresMaxIdentifier)
}

// pgTime formats t for VALID UNTIL: UTC with microseconds, as PostgreSQL
// stores timestamps.
func pgTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
}

// Create generates a password and runs the creation statements in one
// transaction. If any statement fails, the transaction is rolled back and
// the error (wrapping [ErrStatement]) names the failing statement and the
// database's message with the password removed.
func (e *PostgresEngine) Create(ctx context.Context, c Creation) (Credential, error) {
	if c.Username == "" || len(c.Username) > PostgresMaxIdentifier {
		return Credential{}, fmt.Errorf("%w: username must be 1 to %d bytes", ErrInvalidConfig, PostgresMaxIdentifier)
	}
	password, err := randomString(e.rand, e.password.Alphabet, e.password.Length)
	if err != nil {
		return Credential{}, fmt.Errorf("generating password: %w", err)
	}
	v := Values{Name: c.Username, Password: password, Expiration: pgTime(c.Expires)}
	if err := e.runTx(ctx, "creation", e.creation, v); err != nil {
		return Credential{}, fmt.Errorf("creating postgres user %q: %w", c.Username, err)
	}
	return Credential{Username: c.Username, Password: password, Expires: c.Expires}, nil
}

// Renew runs the renew statements in one transaction.
func (e *PostgresEngine) Renew(ctx context.Context, username string, expires time.Time) error {
	v := Values{Name: username, Expiration: pgTime(expires)}
	if err := e.runTx(ctx, "renew", e.renew, v); err != nil {
		return fmt.Errorf("renewing postgres user %q: %w", username, err)
	}
	return nil
}

// Exists reports whether a role named username exists.
func (e *PostgresEngine) Exists(ctx context.Context, username string) (bool, error) {
	var n int
	err := e.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, username).Scan(&n)
	})
	if err != nil {
		return false, fmt.Errorf("looking up postgres user %q: %w", username, err)
	}
	return n > 0, nil
}

// terminateWait is how long Revoke waits for each of the user's sessions to
// exit (and drop its temporary objects) before running the revocation
// statements.
const terminateWait = 5 * time.Second

// Revoke makes the user NOLOGIN so it cannot start new sessions, grants the
// user's role to the administrator (so that an administrator with
// CREATEROLE and pg_signal_backend, not superuser, can reassign and drop
// what the user owns), terminates
// its open sessions with pg_terminate_backend and waits for them to exit
// (the two-argument form, PostgreSQL 14 and later), and then runs the revocation
// statements in one transaction. A user that does not exist is already
// revoked, and Revoke returns nil.
func (e *PostgresEngine) Revoke(ctx context.Context, username string) error {
	ok, err := e.Exists(ctx, username)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	err = e.pool.with(ctx, func(c *pgx.Conn) error {
		// REASSIGN OWNED and DROP OWNED need the administrator to have
		// the user's privileges; an administrator with CREATEROLE but not
		// superuser may grant itself the role (PostgreSQL 15 does not
		// make the creator a member), and the membership goes with the
		// role.
		if err := runStatements(ctx, c, "revocation preparation", revokePrepare, Values{Name: username}); err != nil {
			return err
		}
		if _, err := c.Exec(ctx,
			`SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`,
			username, terminateWait.Milliseconds()); err != nil {
			return fmt.Errorf("terminating sessions: %w", statementError(err, ""))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoking postgres user %q: %w", username, err)
	}
	if err := e.runTx(ctx, "revocation", e.revocation, Values{Name: username}); err != nil {
		return fmt.Errorf("revoking postgres user %q: %w", username, err)
	}
	return nil
}

// runTx expands and runs stmts in one transaction, rolling back on error.
func (e *PostgresEngine) runTx(ctx context.Context, kind string, stmts []Template, v Values) error {
	return e.pool.with(ctx, func(c *pgx.Conn) error { return runStatements(ctx, c, kind, stmts, v) })
}

// statementLock is the key of the transaction-level advisory lock that
// every transaction of statements takes first. Concurrent GRANTs on one
// object, or concurrent changes to role memberships, make PostgreSQL fail
// some of them with "tuple concurrently updated" (SQLSTATE XX000); taking
// one lock serialises sigil's statements in a database across replicas.
// They are short, so the cost is small: issue and revoke stay above a
// hundred users a second.
const statementLock int64 = 0x5167696c64796e // "Sigildyn"

func runStatements(ctx context.Context, c *pgx.Conn, kind string, stmts []Template, v Values) (err error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, statementLock); err != nil {
		return fmt.Errorf("taking sigil's statement lock: %w", err)
	}
	for i, t := range stmts {
		sql, err := t.Expand(v)
		if err != nil {
			return fmt.Errorf("%s statement %d: %w", kind, i+1, err)
		}
		// The simple protocol: DDL takes no parameters, and the values are
		// already quoted into the statement.
		if _, err := tx.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("%s statement %d: %w", kind, i+1, statementError(err, v.Password))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing %s statements: %w", kind, statementError(err, v.Password))
	}
	return nil
}

// statementError turns an error from running a statement into one that
// wraps [ErrStatement] for a server-side rejection and never holds the
// password: the server's message can quote the statement near the error.
func statementError(err error, password string) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// Connection and context errors carry no statement text.
		return err
	}
	return fmt.Errorf("%w: %s (SQLSTATE %s)", ErrStatement, redact(pe.Message, password), pe.Code)
}

// redact removes password from msg in every form a statement can hold it:
// as is, with quotes doubled, and with backslashes doubled too.
func redact(msg, password string) string {
	if password == "" {
		return msg
	}
	quoted := strings.ReplaceAll(password, "'", "''")
	forms := []string{strings.ReplaceAll(quoted, `\`, `\\`), quoted, password}
	for _, f := range forms {
		msg = strings.ReplaceAll(msg, f, "REDACTED")
	}
	return msg
}

// revokePrepare disables the user's login and gives the administrator its
// privileges, before its sessions are ended.
var revokePrepare = []Template{
	mustTemplate(`ALTER ROLE {{name}} NOLOGIN`),
	mustTemplate(`GRANT {{name}} TO CURRENT_USER`),
}

// mustTemplate parses a template known to be valid.
func mustTemplate(s string) Template {
	t, err := ParseTemplate(s)
	if err != nil {
		panic("dynamic: built-in template " + s + ": " + err.Error())
	}
	return t
}
