package dynamic

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQuoteMySQLLiteral(t *testing.T) {
	tests := []struct {
		in                 string
		want, wantNoEscape string
		err                error
	}{
		{in: "plain", want: "'plain'", wantNoEscape: "'plain'"},
		{in: "", want: "''", wantNoEscape: "''"},
		{in: "it's", want: "'it''s'", wantNoEscape: "'it''s'"},
		{in: `a\b`, want: `'a\\b'`, wantNoEscape: `'a\b'`},
		{in: `\'`, want: `'\\'''`, wantNoEscape: `'\'''`},
		{in: `'; DROP USER x; --`, want: `'''; DROP USER x; --'`, wantNoEscape: `'''; DROP USER x; --'`},
		{in: "`\"%_?", want: "'`\"%_?'", wantNoEscape: "'`\"%_?'"},
		{in: "nul\x00byte", err: ErrUnsafeValue},
		{in: "bad\xffutf8", err: ErrUnsafeValue},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			for _, noEscape := range []bool{false, true} {
				got, err := QuoteMySQLLiteral(tt.in, noEscape)
				if !errors.Is(err, tt.err) {
					t.Fatalf("QuoteMySQLLiteral(%q, %v) error = %v, want %v", tt.in, noEscape, err, tt.err)
				}
				want := tt.want
				if noEscape {
					want = tt.wantNoEscape
				}
				if got != want {
					t.Errorf("QuoteMySQLLiteral(%q, %v) = %q, want %q", tt.in, noEscape, got, want)
				}
			}
		})
	}
}

func TestQuoteMySQLIdentifier(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{in: "v_app_abc", want: "`v_app_abc`"},
		{in: "x`; DROP USER y; --", want: "`x``; DROP USER y; --`"},
		{in: `a\b'c"d`, want: "`a\\b'c\"d`"},
		{in: "ü€", want: "`ü€`"},
		{in: "nul\x00", err: ErrUnsafeValue},
		{in: "bad\xff", err: ErrUnsafeValue},
		{in: "emoji\U0001F600", err: ErrUnsafeValue},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := QuoteMySQLIdentifier(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("QuoteMySQLIdentifier(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("QuoteMySQLIdentifier(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMySQLTemplateExpand(t *testing.T) {
	tests := []struct {
		name, tmpl string
		v          Values
		noEscape   bool
		want       string
	}{
		{
			name: "default creation",
			tmpl: DefaultMySQLCreation[0],
			v:    Values{Name: "u", Password: "p"},
			want: "CREATE USER `u`@'%' IDENTIFIED BY 'p'",
		},
		{
			name: "default expiry event",
			tmpl: DefaultMySQLCreation[1],
			v:    Values{Name: "u", Expiration: "2030-01-01 00:00:00"},
			want: "CREATE EVENT `u` ON SCHEDULE AT GREATEST(TIMESTAMP '2030-01-01 00:00:00', CURRENT_TIMESTAMP + INTERVAL 1 SECOND) DO DROP USER IF EXISTS `u`@'%'",
		},
		{
			name: "values are not expanded again",
			tmpl: "A {{name}} B {{password}}",
			v:    Values{Name: "{{password}}", Password: "{{name}}"},
			want: "A `{{password}}` B '{{name}}'",
		},
		{
			name: "hostile values stay inside their quotes",
			tmpl: "CREATE USER {{name}}@'%' IDENTIFIED BY {{password}}",
			v:    Values{Name: "a`@'%'; DROP USER b; --", Password: `\'; DROP USER b; --`},
			want: "CREATE USER `a``@'%'; DROP USER b; --`@'%' IDENTIFIED BY '\\\\''; DROP USER b; --'",
		},
		{
			name:     "backslashes are plain with NO_BACKSLASH_ESCAPES",
			tmpl:     "SELECT {{password}}",
			v:        Values{Password: `a\'b`},
			noEscape: true,
			want:     `SELECT 'a\''b'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := ParseTemplate(tt.tmpl)
			if err != nil {
				t.Fatalf("ParseTemplate: %v", err)
			}
			got, err := tp.expandMySQL(tt.v, mysqlDialect{noBackslashEscapes: tt.noEscape})
			if err != nil {
				t.Fatalf("expandMySQL: %v", err)
			}
			if got != tt.want {
				t.Errorf("expandMySQL = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("NUL in password is refused", func(t *testing.T) {
		tp, err := ParseTemplate("X {{password}}")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tp.expandMySQL(Values{Password: "a\x00b"}, mysqlDialect{}); !errors.Is(err, ErrUnsafeValue) {
			t.Fatalf("expandMySQL error = %v, want ErrUnsafeValue", err)
		}
	})
}

func TestMySQLTime(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), "2030-01-02 03:04:05"},
		{time.Date(2030, 1, 2, 3, 4, 5, 1, time.UTC), "2030-01-02 03:04:06"},
		{time.Date(2030, 12, 31, 23, 59, 59, 500e6, time.UTC), "2031-01-01 00:00:00"},
		{time.Date(2030, 1, 2, 5, 4, 5, 0, time.FixedZone("+02", 2*3600)), "2030-01-02 03:04:05"},
	}
	for _, tt := range tests {
		if got := mysqlTime(tt.in); got != tt.want {
			t.Errorf("mysqlTime(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHasSQLMode(t *testing.T) {
	tests := []struct {
		mode string
		want bool
	}{
		{"", false},
		{"STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES", true},
		{"no_backslash_escapes", true},
		{"NO_BACKSLASH_ESCAPES_X", false},
		{"ANSI_QUOTES", false},
	}
	for _, tt := range tests {
		if got := hasSQLMode(tt.mode, "NO_BACKSLASH_ESCAPES"); got != tt.want {
			t.Errorf("hasSQLMode(%q) = %v, want %v", tt.mode, got, tt.want)
		}
	}
}

func TestRedactMySQL(t *testing.T) {
	tests := []struct{ name, msg, password, want string }{
		{"whole", `near ''abc123xyz'' at line 1`, "abc123xyz", `near ''REDACTED'' at line 1`},
		{"doubled quote", `near ''it''s-secret'' at line 1`, `it's-secret`, `near ''REDACTED'' at line 1`},
		{"escaped backslash", `near ''a\\b-secret'' at line 1`, `a\b-secret`, `near ''REDACTED'' at line 1`},
		{"cut by MariaDB", `near ''abc123...' at line 1`, "abc123xyz", `near ''REDACTED...' at line 1`},
		{"cut by MySQL", `near ''abc1' at line 1`, "abc123xyz", `near ''REDACTED' at line 1`},
		{"cut at the end", `near ''abc12`, "abc123xyz", `near ''REDACTED`},
		{"cut inside an escape", `near ''it'...' at line 1`, `it's-secret`, `near ''REDACTED...' at line 1`},
		{"unrelated quote kept", `Unknown user 'abd'`, "abc123xyz", `Unknown user 'abd'`},
		{"no password", `near 'x' at line 1`, "", `near 'x' at line 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactMySQL(tt.msg, tt.password); got != tt.want {
				t.Errorf("redactMySQL(%q) = %q, want %q", tt.msg, got, tt.want)
			}
		})
	}
}

// mysqlEscapes maps the character after a backslash in a MySQL string
// literal to what it means (outside NO_BACKSLASH_ESCAPES). \% and \_ keep
// their backslash; any other character stands for itself.
var mysqlEscapes = map[byte]string{
	'0': "\x00", '\'': "'", '"': `"`, 'b': "\b", 'n': "\n", 'r': "\r",
	't': "\t", 'Z': "\x1a", '\\': `\`, '%': `\%`, '_': `\_`,
}

// scanMySQLString reads the single-quoted literal at the start of s as the
// server's lexer does and returns its value and length; ok is false if s
// does not start with a complete literal.
func scanMySQLString(s string, noBackslashEscapes bool) (val string, n int, ok bool) {
	if s == "" || s[0] != '\'' {
		return "", 0, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && !noBackslashEscapes:
			if i+1 == len(s) {
				return "", 0, false
			}
			i++
			if e, ok := mysqlEscapes[s[i]]; ok {
				b.WriteString(e)
			} else {
				b.WriteByte(s[i])
			}
		case c == '\'':
			if i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			return b.String(), i + 1, true
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// scanMySQLIdentifier reads the backtick-quoted identifier at the start of
// s and returns its name and length.
func scanMySQLIdentifier(s string) (name string, n int, ok bool) {
	if s == "" || s[0] != '`' {
		return "", 0, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '`' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '`' {
			b.WriteByte('`')
			i++
			continue
		}
		return b.String(), i + 1, true
	}
	return "", 0, false
}

// FuzzMySQLTemplate checks that parsing never panics, that a template
// without placeholders expands to itself, and, with a model of the
// server's lexer, that every quoted value is read back as exactly that
// value and ends where its quoting ends, under both sql modes: nothing in a
// name or password can reach the statement outside its quotes.
func FuzzMySQLTemplate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "templates", "*.sql"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b), "x`y", `'\'`, false)
		}
	}
	for _, s := range append(append(append([]string{}, DefaultMySQLCreation...), DefaultMySQLRenew...), DefaultMySQLRevocation...) {
		f.Add(s, "a`@'%'; --", `\'; DROP USER b; --`, true)
		f.Add(s, "v_app_0123456789abcdef", `p\`, false)
	}
	f.Fuzz(func(t *testing.T, tmpl, name, password string, noEscape bool) {
		for _, v := range []string{name, password} {
			lit, err := QuoteMySQLLiteral(v, noEscape)
			if err != nil {
				if !errors.Is(err, ErrUnsafeValue) {
					t.Fatalf("QuoteMySQLLiteral error %v does not wrap ErrUnsafeValue", err)
				}
				continue
			}
			got, n, ok := scanMySQLString(lit+" rest", noEscape)
			if !ok || n != len(lit) || got != v {
				t.Fatalf("literal %q for %q reads as %q (length %d of %d, ok %v)", lit, v, got, n, len(lit), ok)
			}
			id, err := QuoteMySQLIdentifier(v)
			if err != nil {
				continue
			}
			got, n, ok = scanMySQLIdentifier(id + "@'%'")
			if !ok || n != len(id) || got != v {
				t.Fatalf("identifier %q for %q reads as %q (length %d of %d, ok %v)", id, v, got, n, len(id), ok)
			}
		}
		tp, err := ParseTemplate(tmpl)
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("ParseTemplate error %v does not wrap ErrTemplate", err)
			}
			return
		}
		out, err := tp.expandMySQL(Values{Name: name, Password: password, Expiration: "2030-01-01 00:00:00"}, mysqlDialect{noBackslashEscapes: noEscape})
		if err != nil {
			if !errors.Is(err, ErrUnsafeValue) {
				t.Fatalf("expandMySQL error %v does not wrap ErrUnsafeValue", err)
			}
			return
		}
		if !tp.Uses("name") && !tp.Uses("password") && !tp.Uses("expiration") && out != tmpl {
			t.Fatalf("template without placeholders changed: %q -> %q", tmpl, out)
		}
		if tp.Uses("password") {
			lit, _ := QuoteMySQLLiteral(password, noEscape)
			if !strings.Contains(out, lit) {
				t.Fatalf("expansion %q lacks quoted password %q", out, lit)
			}
		}
	})
}

// A literal that must mean the same under every sql_mode refuses what only
// the mode could tell.
func TestQuoteMySQLLiteralAnyMode(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"plain", "'plain'", false},
		{"it's", "'it''s'", false},
		{"''", "''''''", false},
		{"a\"b", "'a\"b'", false},
		{"ünï", "'ünï'", false},
		{`back\slash`, "", true},
		{"nul\x00", "", true},
		{"bad\xff", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := QuoteMySQLLiteralAnyMode(tc.in)
			if tc.err {
				if !errors.Is(err, ErrUnsafeValue) {
					t.Fatalf("QuoteMySQLLiteralAnyMode = %q, %v; want ErrUnsafeValue", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("QuoteMySQLLiteralAnyMode = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
