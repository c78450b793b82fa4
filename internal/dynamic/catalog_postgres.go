package dynamic

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// postgresAdmin changes the privileged user's password in PostgreSQL.
type postgresAdmin struct {
	db  Database
	tls *tls.Config
	rnd io.Reader
}

func (a postgresAdmin) connect(ctx context.Context, password string) (*pgx.Conn, error) {
	pc, err := pgx.ParseConfig(a.db.postgresDSN(password))
	if err != nil {
		return nil, fmt.Errorf("%w: postgres connection settings do not parse", ErrInvalidConfig)
	}
	pc.TLSConfig, pc.Fallbacks = a.tls, nil
	c, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		// pgx's connect errors name host and user, never the password.
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return c, nil
}

func (a postgresAdmin) ping(ctx context.Context, password string) error {
	c, err := a.connect(ctx, password)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	return c.Ping(ctx)
}

// setPassword sends a SCRAM-SHA-256 verifier rather than the password, as
// psql's \password does, so the new password never appears in the
// server's statement log.
func (a postgresAdmin) setPassword(ctx context.Context, current, next string) error {
	verifier, err := SCRAMVerifier(a.rnd, next)
	if err != nil {
		return err
	}
	lit, err := QuoteLiteral(verifier)
	if err != nil {
		return err
	}
	c, err := a.connect(ctx, current)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, `ALTER ROLE CURRENT_USER PASSWORD `+lit, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("changing password: %w", statementError(err, verifier))
	}
	return nil
}

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// SCRAMVerifier returns PostgreSQL's stored form of password for
// SCRAM-SHA-256 (RFC 5802, RFC 7677):
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, with a random
// 16-byte salt from rnd. ALTER ROLE ... PASSWORD accepts it in place of the
// password, which then never reaches the server's statement log. The
// password must be printable ASCII, which SASLprep leaves unchanged (an
// error wrapping [ErrInvalidConfig] otherwise).
func SCRAMVerifier(rnd io.Reader, password string) (string, error) {
	for i := 0; i < len(password); i++ {
		if password[i] < 0x21 || password[i] > 0x7e {
			return "", fmt.Errorf("%w: generated password is not printable ASCII", ErrInvalidConfig)
		}
	}
	salt := make([]byte, 16)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return "", fmt.Errorf("generating salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("deriving scram key: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(scramIterations) + ":" + b64(salt) + "$" + b64(stored[:]) + ":" + b64(serverKey), nil
}
