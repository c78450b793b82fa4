package dynamic

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// QuoteIdentifier returns s as a PostgreSQL identifier in double quotes, with
// embedded double quotes doubled. It fails with [ErrUnsafeValue] for a NUL
// byte, which PostgreSQL cannot represent, or for invalid UTF-8.
func QuoteIdentifier(s string) (string, error) {
	if err := checkQuotable(s); err != nil {
		return "", err
	}
	return pgx.Identifier{s}.Sanitize(), nil
}

// QuoteLiteral returns s as a PostgreSQL string literal: single quotes are
// doubled, and when s holds a backslash the literal is written in the escape
// form E'...' with backslashes doubled, so the result means s whatever
// standard_conforming_strings is set to. It fails with [ErrUnsafeValue] for
// a NUL byte or invalid UTF-8.
func QuoteLiteral(s string) (string, error) {
	if err := checkQuotable(s); err != nil {
		return "", err
	}
	q := strings.ReplaceAll(s, "'", "''")
	if strings.Contains(q, `\`) {
		return ` E'` + strings.ReplaceAll(q, `\`, `\\`) + `'`, nil
	}
	return "'" + q + "'", nil
}

func checkQuotable(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: contains a NUL byte", ErrUnsafeValue)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: not valid UTF-8", ErrUnsafeValue)
	}
	return nil
}

// placeholders are the names a statement template may use.
var placeholders = map[string]bool{"name": true, "password": true, "expiration": true}

// Template is a parsed statement template: literal SQL with {{name}},
// {{password}} and {{expiration}} placeholders.
type Template struct {
	parts []templatePart
}

type templatePart struct {
	text        string
	placeholder string // "" for literal text
}

// ParseTemplate parses a statement template. It fails with [ErrTemplate] for
// an unterminated or unknown placeholder and for an empty statement.
func ParseTemplate(s string) (Template, error) {
	var t Template
	if strings.TrimSpace(s) == "" {
		return t, fmt.Errorf("%w: empty statement", ErrTemplate)
	}
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return Template{}, fmt.Errorf("%w: unmatched }}", ErrTemplate)
			}
			if rest != "" {
				t.parts = append(t.parts, templatePart{text: rest})
			}
			return t, nil
		}
		if strings.Contains(rest[:i], "}}") {
			return Template{}, fmt.Errorf("%w: unmatched }}", ErrTemplate)
		}
		if i > 0 {
			t.parts = append(t.parts, templatePart{text: rest[:i]})
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return Template{}, fmt.Errorf("%w: unterminated placeholder", ErrTemplate)
		}
		name := strings.TrimSpace(rest[:j])
		if !placeholders[name] {
			return Template{}, fmt.Errorf("%w: unknown placeholder %q", ErrTemplate, name)
		}
		t.parts = append(t.parts, templatePart{placeholder: name})
		rest = rest[j+2:]
	}
}

// Values are what a template's placeholders expand to, before quoting.
type Values struct {
	// Name is the database user; it is quoted as an identifier.
	Name string
	// Password is the user's password; it is quoted as a literal.
	Password string
	// Expiration is the user's VALID UNTIL timestamp, already formatted; it
	// is quoted as a literal.
	Expiration string
}

// Expand returns the statement with every placeholder replaced by its
// quoted value. Values are substituted in one pass, so a value that itself
// contains "{{name}}" is never expanded again.
func (t Template) Expand(v Values) (string, error) {
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
			q, err = QuoteIdentifier(v.Name)
		case "password":
			q, err = QuoteLiteral(v.Password)
		case "expiration":
			q, err = QuoteLiteral(v.Expiration)
		}
		if err != nil {
			return "", fmt.Errorf("expanding {{%s}}: %w", p.placeholder, err)
		}
		b.WriteString(q)
	}
	return b.String(), nil
}

// Uses reports whether the template has the placeholder name.
func (t Template) Uses(name string) bool {
	for _, p := range t.parts {
		if p.placeholder == name {
			return true
		}
	}
	return false
}
