package dynamic

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuoteLiteral(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{in: "plain", want: "'plain'"},
		{in: "", want: "''"},
		{in: "it's", want: "'it''s'"},
		{in: `a\b`, want: ` E'a\\b'`},
		{in: `'\'`, want: ` E'''\\'''`},
		{in: "$$; DROP ROLE x; --", want: "'$$; DROP ROLE x; --'"},
		{in: "nul\x00byte", err: ErrUnsafeValue},
		{in: "bad\xffutf8", err: ErrUnsafeValue},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := QuoteLiteral(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("QuoteLiteral(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("QuoteLiteral(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestQuoteIdentifier(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{in: "v_app_abc", want: `"v_app_abc"`},
		{in: `x"; DROP ROLE y; --`, want: `"x""; DROP ROLE y; --"`},
		{in: "nul\x00", err: ErrUnsafeValue},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := QuoteIdentifier(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("QuoteIdentifier(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("QuoteIdentifier(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTemplateExpand(t *testing.T) {
	tests := []struct {
		name, tmpl string
		v          Values
		want       string
	}{
		{
			name: "default creation",
			tmpl: DefaultPostgresCreation[0],
			v:    Values{Name: "u", Password: "p", Expiration: "2030-01-01 00:00:00+00"},
			want: `CREATE ROLE "u" WITH LOGIN PASSWORD 'p' VALID UNTIL '2030-01-01 00:00:00+00'`,
		},
		{
			name: "spaces inside braces",
			tmpl: "GRANT x TO {{ name }}",
			v:    Values{Name: "u"},
			want: `GRANT x TO "u"`,
		},
		{
			name: "values are not expanded again",
			tmpl: "A {{name}} B {{password}}",
			v:    Values{Name: "{{password}}", Password: "{{name}}"},
			want: `A "{{password}}" B '{{name}}'`,
		},
		{
			name: "hostile values stay inside their quotes",
			tmpl: "CREATE ROLE {{name}} PASSWORD {{password}}",
			v:    Values{Name: `a"; DROP ROLE b; --`, Password: `'); DROP ROLE b; --\$$`},
			want: `CREATE ROLE "a""; DROP ROLE b; --" PASSWORD  E'''); DROP ROLE b; --\\$$'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := ParseTemplate(tt.tmpl)
			if err != nil {
				t.Fatalf("ParseTemplate: %v", err)
			}
			got, err := tp.Expand(tt.v)
			if err != nil {
				t.Fatalf("Expand: %v", err)
			}
			if got != tt.want {
				t.Errorf("Expand = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("NUL in password is refused", func(t *testing.T) {
		tp, err := ParseTemplate("X {{password}}")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tp.Expand(Values{Password: "a\x00b"}); !errors.Is(err, ErrUnsafeValue) {
			t.Fatalf("Expand error = %v, want ErrUnsafeValue", err)
		}
	})
}

// TestParseTemplateTestdata parses every template under testdata/templates:
// bad_* files must fail with ErrTemplate, the others must parse.
func TestParseTemplateTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "templates", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata templates: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseTemplate(string(b))
			if strings.HasPrefix(filepath.Base(f), "bad_") {
				if !errors.Is(err, ErrTemplate) {
					t.Fatalf("ParseTemplate error = %v, want ErrTemplate", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTemplate: %v", err)
			}
		})
	}
}

// FuzzParseTemplate checks that parsing never panics and that an expanded
// template only ever contains its hostile values inside quotes: with
// values made only of quote characters, the expansion of a template without
// placeholders equals the template.
func FuzzParseTemplate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "templates", "*.sql"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b), `x"y`, `'\$$`)
		}
	}
	f.Fuzz(func(t *testing.T, tmpl, name, password string) {
		tp, err := ParseTemplate(tmpl)
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("ParseTemplate error %v does not wrap ErrTemplate", err)
			}
			return
		}
		out, err := tp.Expand(Values{Name: name, Password: password, Expiration: "2030-01-01 00:00:00+00"})
		if err != nil {
			if !errors.Is(err, ErrUnsafeValue) {
				t.Fatalf("Expand error %v does not wrap ErrUnsafeValue", err)
			}
			return
		}
		if !tp.Uses("name") && !tp.Uses("password") && !tp.Uses("expiration") && out != tmpl {
			t.Fatalf("template without placeholders changed: %q -> %q", tmpl, out)
		}
		if tp.Uses("name") {
			q, _ := QuoteIdentifier(name)
			if !bytes.Contains([]byte(out), []byte(q)) {
				t.Fatalf("expansion %q lacks quoted name %q", out, q)
			}
		}
	})
}

func TestRedact(t *testing.T) {
	tests := []struct{ msg, password, want string }{
		{`syntax error at or near "abc123"`, "abc123", `syntax error at or near "REDACTED"`},
		{`near "E'a\\b''c'"`, `a\b'c`, `near "E'REDACTED'"`},
		{`near "'it''s'"`, `it's`, `near "'REDACTED'"`},
		{`no password here`, "", `no password here`},
	}
	for _, tt := range tests {
		if got := redact(tt.msg, tt.password); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
