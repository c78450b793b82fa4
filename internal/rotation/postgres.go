package rotation

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"sigil.dev/sigil/internal/dynamic"
	"sigil.dev/sigil/internal/secrets"
)

// PostgreSQLDefaultPort is the port of a PostgreSQL secret without "port".
const PostgreSQLDefaultPort = 5432

// DefaultConnectTimeout bounds one database login of a built-in rotator
// when its ConnectTimeout is zero.
const DefaultConnectTimeout = 10 * time.Second

// PostgreSQLRotator is the built-in sigil-postgresql-single-user: the
// secret's user changes its own password, as AWS's single-user Lambda
// does. Its zero value is ready to use.
//
//   - createSecret generates a password by Policy and writes the secret's
//     JSON with it as AWSPENDING, unless version Token already exists.
//   - setSecret does nothing if AWSPENDING already logs in (a retry after
//     the password was changed). Otherwise it logs in with AWSCURRENT, or
//     AWSPREVIOUS when AWSCURRENT fails (a rotation changed the password
//     but did not finish), and runs ALTER ROLE <user> PASSWORD '<verifier>'
//     with the username quoted as an identifier. The password is sent as a
//     SCRAM-SHA-256 verifier computed here, so the plaintext never reaches
//     the server's statement log.
//   - testSecret logs in with AWSPENDING and runs SELECT 1.
//   - finishSecret does nothing: the runner moves AWSCURRENT.
type PostgreSQLRotator struct {
	// Policy shapes generated passwords; the zero value is 32 characters
	// of letters, digits and connection-safe punctuation.
	Policy PasswordPolicy
	// Rand is the source of passwords and salts; nil means crypto/rand.
	Rand io.Reader
	// ConnectTimeout bounds each login; zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// Step implements Rotator.
func (p *PostgreSQLRotator) Step(ctx context.Context, step Step, job Job) error {
	switch step {
	case StepCreate:
		return createDatabasePending(ctx, job, PostgreSQLDefaultPort, p.Policy, p.rand())
	case StepSet:
		return p.set(ctx, job)
	case StepTest:
		pend, err := p.pending(ctx, job)
		if err != nil {
			return err
		}
		c, err := p.login(ctx, pend)
		if err != nil {
			return fmt.Errorf("%w with AWSPENDING: %w", ErrLogin, err)
		}
		defer c.Close(context.WithoutCancel(ctx))
		var one int
		if err := c.QueryRow(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol).Scan(&one); err != nil {
			return fmt.Errorf("SELECT 1 as the AWSPENDING user: %w", pgError(err, pend.Password))
		}
		return nil
	case StepFinish:
		return nil
	}
	return unknownStep(step)
}

func (p *PostgreSQLRotator) rand() io.Reader {
	if p.Rand == nil {
		return rand.Reader
	}
	return p.Rand
}

func (p *PostgreSQLRotator) pending(ctx context.Context, job Job) (DatabaseSecret, error) {
	s, err := stageString(ctx, job, job.Token, StagePending)
	if err != nil {
		return DatabaseSecret{}, err
	}
	return ParseDatabaseSecret(s, PostgreSQLDefaultPort)
}

func (p *PostgreSQLRotator) set(ctx context.Context, job Job) error {
	pend, err := p.pending(ctx, job)
	if err != nil {
		return err
	}
	if c, err := p.login(ctx, pend); err == nil {
		_ = c.Close(ctx)
		return nil
	}
	c, err := loginAsCurrentOrPrevious(ctx, job, pend, PostgreSQLDefaultPort, p.login)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	return p.alter(ctx, c, pend.Username, pend.Password)
}

// Revert implements Reverter: if AWSCURRENT no longer logs in but
// AWSPENDING does, it sets the password back to AWSCURRENT's.
func (p *PostgreSQLRotator) Revert(ctx context.Context, job Job) error {
	pend, cur, err := revertValues(ctx, job, PostgreSQLDefaultPort)
	if err != nil || pend == nil {
		return err
	}
	if c, err := p.login(ctx, *cur); err == nil {
		_ = c.Close(ctx)
		return nil
	}
	c, err := p.login(ctx, *pend)
	if err != nil {
		return fmt.Errorf("%w: neither AWSCURRENT nor AWSPENDING logs in: %w", ErrLogin, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	return p.alter(ctx, c, cur.Username, cur.Password)
}

// alter sets the password of user over c.
func (p *PostgreSQLRotator) alter(ctx context.Context, c *pgx.Conn, username, password string) error {
	user, err := dynamic.QuoteIdentifier(username)
	if err != nil {
		return fmt.Errorf("%w: the username: %w", ErrUnsafeValue, err)
	}
	secret, err := dynamic.SCRAMVerifier(p.rand(), password)
	if err != nil {
		return err
	}
	lit, err := dynamic.QuoteLiteral(secret)
	if err != nil {
		return fmt.Errorf("%w: the password: %w", ErrUnsafeValue, err)
	}
	// DDL takes no parameters: the simple protocol, with both values
	// quoted into the statement.
	if _, err := c.Exec(ctx, "ALTER ROLE "+user+" PASSWORD "+lit, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("changing the password of %s: %w", user, pgError(err, password, secret))
	}
	return nil
}

// login connects as d's user with d's password.
func (p *PostgreSQLRotator) login(ctx context.Context, d DatabaseSecret) (*pgx.Conn, error) {
	timeout := p.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	mode := d.SSLMode
	if mode == "" {
		mode = "prefer"
	}
	switch mode {
	case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
	default:
		return nil, fmt.Errorf("%w: unknown sslmode %q", ErrInvalidSecretValue, mode)
	}
	dbname := d.DBName
	if dbname == "" {
		dbname = "postgres"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(d.Username, d.Password),
		Host:     d.Addr(),
		Path:     "/" + dbname,
		RawQuery: url.Values{"sslmode": {mode}, "connect_timeout": {strconv.Itoa(max(1, int(timeout/time.Second)))}}.Encode(),
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		// pgx's parse errors can quote the connection string, password
		// included, so the cause is not wrapped.
		return nil, fmt.Errorf("%w: the host, port, username or dbname do not form a connection string", ErrInvalidSecretValue)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("logging in to %s as %q: %w", d.Addr(), d.Username, pgError(err, d.Password))
	}
	return c, nil
}

// pgError returns err with any of secrets removed from the server's
// message, which can quote the statement near an error.
func pgError(err error, secrets ...string) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return scrub(err, secrets...)
	}
	return fmt.Errorf("%s (SQLSTATE %s)", redact(pe.Message, secrets...), pe.Code)
}

// scrub returns err unchanged unless its text holds one of secrets, in
// which case only a redacted copy of the text is kept.
func scrub(err error, secrets ...string) error {
	msg := err.Error()
	if red := redact(msg, secrets...); red != msg {
		return errors.New(red)
	}
	return err
}

// redact replaces every non-empty secret in msg, as is and in quoted
// forms, by REDACTED.
func redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{
			s,
			strings.ReplaceAll(s, "'", "''"),
			strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''"),
			url.QueryEscape(s),
			url.PathEscape(s),
		} {
			msg = strings.ReplaceAll(msg, form, "REDACTED")
		}
	}
	return msg
}

// createDatabasePending is createSecret of the single-user database
// rotators: AWSCURRENT's JSON with a new password, as version job.Token.
func createDatabasePending(ctx context.Context, job Job, defaultPort int, policy PasswordPolicy, r io.Reader) error {
	if ok, err := pendingExists(ctx, job); ok || err != nil {
		return err
	}
	cur, err := stageString(ctx, job, "", StageCurrent)
	if err != nil {
		return err
	}
	ds, err := ParseDatabaseSecret(cur, defaultPort)
	if err != nil {
		return fmt.Errorf("the AWSCURRENT value: %w", err)
	}
	pw, err := policy.Generate(r)
	if err != nil {
		return err
	}
	val, err := ds.WithPassword(pw)
	if err != nil {
		return err
	}
	if err := job.Secrets.PutPendingValue(ctx, job.Name, job.Token, &val, nil); err != nil {
		return fmt.Errorf("writing the AWSPENDING value: %w", err)
	}
	return nil
}

// revertValues reads AWSPENDING (version job.Token) and AWSCURRENT for a
// Revert; pend is nil when there is no AWSPENDING, so nothing to undo.
func revertValues(ctx context.Context, job Job, defaultPort int) (pend, cur *DatabaseSecret, err error) {
	ps, err := stageString(ctx, job, job.Token, StagePending)
	if errors.Is(err, secrets.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	p, err := ParseDatabaseSecret(ps, defaultPort)
	if err != nil {
		return nil, nil, fmt.Errorf("the AWSPENDING value: %w", err)
	}
	cs, err := stageString(ctx, job, "", StageCurrent)
	if err != nil {
		return nil, nil, err
	}
	c, err := ParseDatabaseSecret(cs, defaultPort)
	if err != nil {
		return nil, nil, fmt.Errorf("the AWSCURRENT value: %w", err)
	}
	if c.Username != p.Username || c.Host != p.Host || c.Port != p.Port {
		return nil, nil, fmt.Errorf("%w: AWSCURRENT names another user or host than AWSPENDING", ErrInvalidSecretValue)
	}
	return &p, &c, nil
}

// loginAsCurrentOrPrevious logs in as the user of pend with the password
// of AWSCURRENT or, failing that, AWSPREVIOUS, after checking that both
// name the same user on the same host as pend (a single-user rotation must
// not change another user's password).
func loginAsCurrentOrPrevious[C any](ctx context.Context, job Job, pend DatabaseSecret, defaultPort int, login func(context.Context, DatabaseSecret) (C, error)) (C, error) {
	var zero C
	var errs []error
	for _, stage := range []string{StageCurrent, StagePrevious} {
		s, err := stageString(ctx, job, "", stage)
		if err != nil {
			if stage == StageCurrent {
				return zero, err
			}
			continue // no AWSPREVIOUS before the first rotation
		}
		d, err := ParseDatabaseSecret(s, defaultPort)
		if err != nil {
			errs = append(errs, fmt.Errorf("the %s value: %w", stage, err))
			continue
		}
		if d.Username != pend.Username || d.Host != pend.Host || d.Port != pend.Port {
			return zero, fmt.Errorf("%w: the %s value names another user or host than AWSPENDING", ErrInvalidSecretValue, stage)
		}
		c, err := login(ctx, d)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("with %s: %w", stage, err))
	}
	return zero, fmt.Errorf("%w: neither AWSCURRENT nor AWSPREVIOUS logs in: %w", ErrLogin, errors.Join(errs...))
}
