package dynamic

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// QuoteMySQLIdentifier returns s as a MySQL/MariaDB identifier in
// backticks, with embedded backticks doubled. Backslashes mean nothing
// inside backticks, and backticks quote identifiers whatever the sql_mode
// (ANSI_QUOTES changes only double quotes), so the result names s on every
// server. It also serves as the user part of an account name
// (`name`@'host'). It fails with [ErrUnsafeValue] for a NUL byte, invalid
// UTF-8, or a character outside the Basic Multilingual Plane, none of which
// MySQL allows in an identifier.
func QuoteMySQLIdentifier(s string) (string, error) {
	if err := checkQuotable(s); err != nil {
		return "", err
	}
	for _, r := range s {
		if r > 0xFFFF {
			return "", fmt.Errorf("%w: character %U outside the Basic Multilingual Plane", ErrUnsafeValue, r)
		}
	}
	return "`" + strings.ReplaceAll(s, "`", "``") + "`", nil
}

// QuoteMySQLLiteral returns s as a MySQL/MariaDB string literal in single
// quotes. Single quotes are doubled; backslashes are doubled too unless
// noBackslashEscapes says the session's sql_mode holds
// NO_BACKSLASH_ESCAPES, in which a backslash is an ordinary character. The
// mode must therefore be read from the session the statement runs in, as
// [MySQLEngine] does. The result is safe only in a connection character set
// in which a backslash byte never ends a multi-byte character (utf8mb4,
// latin1, ascii: not GBK, Big5 or SJIS, which the engine refuses). It
// fails with [ErrUnsafeValue] for a NUL byte or invalid UTF-8.
func QuoteMySQLLiteral(s string, noBackslashEscapes bool) (string, error) {
	if err := checkQuotable(s); err != nil {
		return "", err
	}
	q := strings.ReplaceAll(s, "'", "''")
	if !noBackslashEscapes {
		q = strings.ReplaceAll(q, `\`, `\\`)
	}
	return "'" + q + "'", nil
}

// mysqlDialect says how a session reads string literals.
type mysqlDialect struct {
	// noBackslashEscapes is true when the session's sql_mode holds
	// NO_BACKSLASH_ESCAPES.
	noBackslashEscapes bool
}

// expandMySQL is Expand with MySQL quoting: {{name}} becomes a backtick
// identifier, {{password}} and {{expiration}} string literals written for
// the session's sql_mode. Like Expand it substitutes in one pass.
func (t Template) expandMySQL(v Values, d mysqlDialect) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		var (
			q   string
			err error
		)
		switch p.placeholder {
		case "":
			b.WriteString(p.text)
			continue
		case "name":
			q, err = QuoteMySQLIdentifier(v.Name)
		case "password":
			q, err = QuoteMySQLLiteral(v.Password, d.noBackslashEscapes)
		case "expiration":
			q, err = QuoteMySQLLiteral(v.Expiration, d.noBackslashEscapes)
		}
		if err != nil {
			return "", fmt.Errorf("expanding {{%s}}: %w", p.placeholder, err)
		}
		b.WriteString(q)
	}
	return b.String(), nil
}

// mysqlTime formats t for an event's ON SCHEDULE AT in a session whose
// time_zone is UTC. Events run at whole seconds, so t is rounded up: the
// user is never dropped before its expiry.
func mysqlTime(t time.Time) string {
	t = t.UTC()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		t = r.Add(time.Second)
	}
	return t.Format(time.DateTime)
}

// hasSQLMode reports whether the comma-separated sql_mode value holds
// mode.
func hasSQLMode(sqlMode, mode string) bool {
	for _, m := range strings.Split(sqlMode, ",") {
		if strings.EqualFold(strings.TrimSpace(m), mode) {
			return true
		}
	}
	return false
}

// redactMySQL removes password from a MySQL server message. Beyond the
// whole forms [redact] removes, it removes a literal cut short: the server
// quotes at most 80 characters of the statement near a syntax error
// ("near '...' at line 1", MariaDB adding "..." where it cut), so the end
// of the quote can be the start of the password literal.
func redactMySQL(msg, password string) string {
	if password == "" {
		return msg
	}
	msg = redact(msg, password)
	quoted := strings.ReplaceAll(password, "'", "''")
	forms := []string{strings.ReplaceAll(quoted, `\`, `\\`), quoted}
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		b.WriteByte(msg[i])
		if msg[i] != '\'' {
			continue
		}
		rest := msg[i+1:]
		n := 0
		for _, f := range forms {
			n = max(n, commonPrefix(rest, f))
		}
		if n == 0 {
			continue
		}
		after := rest[n:]
		if after == "" || strings.HasPrefix(after, "...") || strings.HasPrefix(after, "' at line") {
			b.WriteString("REDACTED")
			i += n
		}
	}
	return b.String()
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// checkMySQLUsername checks that name can be a MySQL user: 1 to
// [MySQLMaxUsername] characters that QuoteMySQLIdentifier accepts.
func checkMySQLUsername(name string) error {
	if name == "" || utf8.RuneCountInString(name) > MySQLMaxUsername {
		return fmt.Errorf("%w: mysql username must be 1 to %d characters", ErrInvalidConfig, MySQLMaxUsername)
	}
	_, err := QuoteMySQLIdentifier(name)
	return err
}

// QuoteMySQLLiteralAnyMode returns s as a MySQL string literal that means s
// under every sql_mode: single-quoted with quotes doubled. It refuses (with
// [ErrUnsafeValue]) a backslash, whose meaning depends on
// NO_BACKSLASH_ESCAPES, a NUL byte and invalid UTF-8. It is for values
// sigil generates (passwords without backslashes) on connections whose
// sql_mode it has not read; [QuoteMySQLLiteral] quotes anything for a known
// mode.
func QuoteMySQLLiteralAnyMode(s string) (string, error) {
	switch {
	case strings.ContainsAny(s, "\\\x00"):
		return "", fmt.Errorf("%w: a backslash or NUL byte has no mode-independent MySQL quoting", ErrUnsafeValue)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%w: not valid UTF-8", ErrUnsafeValue)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}
