package apply

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/dynamic"
)

const dbPasswordValue = "db-admin-password-5e2f"

func parseDynamicTestdata(t *testing.T, name string) (*File, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(bytes.NewReader(b), filepath.Dir(filepath.Join("testdata", name)), testEnv(map[string]string{"APPLY_TEST_VALUE": envValue}))
}

func TestParseDynamicBadFiles(t *testing.T) {
	tests := []struct {
		file string
		line int
		want string
	}{
		{"bad_db_engine.yaml", 4, `engine "oracle" is not "postgresql" or "mysql"`},
		{"bad_db_two_passwords.yaml", 8, "either passwordFile or passwordEnv, not both"},
		{"bad_db_password_env_unset.yaml", 7, "APPLY_TEST_UNSET is not set"},
		{"bad_db_password_file_missing.yaml", 7, "no-such-password.txt"},
		{"bad_db_unknown_key.yaml", 7, `unknown key "password" in a database`},
		{"bad_db_tls.yaml", 8, `tls mode "prefer" is not`},
		{"bad_db_ca_file.yaml", 8, `tls caFile "not-a-cert.pem" holds no PEM certificate`},
		{"bad_db_port.yaml", 6, "port 70000 is not a TCP port"},
		{"bad_db_missing.yaml", 3, "a database needs a host"},
		{"bad_db_name.yaml", 3, `database name "my shop" must be`},
		{"bad_db_duplicate.yaml", 4, `database "shop" is declared twice (first at line 3)`},
		{"bad_dyn_ttl.yaml", 5, `defaultTtl "forever" must be a duration such as 1h`},
		{"bad_dyn_missing_ttl.yaml", 3, "needs a defaultTtl"},
		{"bad_dyn_max_ttl.yaml", 6, "maxTtl 1h0m0s is shorter than defaultTtl 2h0m0s"},
		{"bad_dyn_template.yaml", 8, `creationStatements 2: invalid statement template: unknown placeholder "nam"`},
		{"bad_dyn_statements_not_list.yaml", 6, "want a list of strings"},
		{"bad_dyn_both_kinds.yaml", 8, `secret "app/db" is also declared under dynamicSecrets (line 3); a secret is either static or dynamic`},
		{"bad_dyn_duplicate.yaml", 4, `dynamic secret "app/db" is declared twice (first at line 3)`},
		{"bad_dyn_prefix.yaml", 6, `usernamePrefix "App-" must be`},
		{"bad_dyn_not_list.yaml", 3, "a list of dynamic secrets"},
		{"bad_dyn_unknown_key.yaml", 5, `unknown key "ttl" in a dynamic secret`},
		{"bad_top_key.yaml", 2, `unknown key "database" at the top level (known keys: version, oidcProviders, managedPolicies, roles, users, secrets, databases, dynamicSecrets, rotators)`},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			_, err := parseDynamicTestdata(t, filepath.Join("dynamic", tt.file))
			checkBadFile(t, err, tt.line, tt.want, envValue, "hunter2")
		})
	}
	checkEveryBadFile(t, "testdata/dynamic/bad_*.yaml", seen)
	// The second problem of bad_dyn_prefix.yaml is reported too.
	_, err := parseDynamicTestdata(t, "dynamic/bad_dyn_prefix.yaml")
	if err == nil || !strings.Contains(err.Error(), "line 7: passwordLength 8 must be between 16 and 128") {
		t.Errorf("bad_dyn_prefix.yaml: %v", err)
	}
}

func TestParseDynamic(t *testing.T) {
	f, err := parseDynamicTestdata(t, "dynamic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Databases) != 2 || len(f.DynamicSecrets) != 2 || len(f.Secrets) != 1 {
		t.Fatalf("parsed %d databases, %d dynamic secrets, %d secrets", len(f.Databases), len(f.DynamicSecrets), len(f.Secrets))
	}
	shop, orders := f.Databases[0], f.Databases[1]
	if shop.Name != "shop" || shop.Engine != dynamic.EnginePostgres || shop.Host != "db.{{region}}.internal" || shop.Port != 5433 ||
		shop.DBName != "shop" || shop.Username != "sigil_admin" || shop.MaxConns != 2 || shop.Line != 3 ||
		shop.TLS != (DatabaseTLS{Mode: dynamic.TLSRequire, ServerName: "db.example.com"}) {
		t.Errorf("shop: %+v", shop)
	}
	// One trailing newline of a password file is dropped.
	if shop.Password == nil || string(shop.Password.b) != dbPasswordValue || shop.PasswordSource != `file "db-password.txt"` {
		t.Errorf("shop password from %s", shop.PasswordSource)
	}
	if orders.Port != 0 || orders.TLS.Mode != dynamic.TLSVerifyFull || string(orders.Password.b) != envValue || orders.PasswordSource != "environment variable APPLY_TEST_VALUE" {
		t.Errorf("orders: %+v", orders)
	}
	d := f.DynamicSecrets[0]
	if d.Name != "my-app/database-credentials" || d.Database != "shop" || d.DefaultTTL != time.Hour || d.MaxTTL != 24*time.Hour ||
		len(d.CreationStatements) != 2 || d.CreationStatements[1] != "GRANT SELECT ON products TO {{name}}" ||
		len(d.RenewStatements) != 1 || len(d.RevocationStatements) != 1 || d.UsernamePrefix != "app" || d.PasswordLength != 24 ||
		d.Tags["app"] != "my-app" || d.Description != "my-app's database user in {{region}}" {
		t.Errorf("dynamic secret: %+v", d)
	}
	if r := f.DynamicSecrets[1]; r.MaxTTL != 0 || r.CreationStatements != nil || r.DefaultTTL != 15*time.Minute {
		t.Errorf("reports/db: %+v", r)
	}
	// A value template may name a dynamic secret.
	if !f.Secrets[0].ValueTemplate {
		t.Errorf("bootstrap: %+v", f.Secrets[0])
	}
}

func TestParseDatabaseCAFile(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tls, err string
	}{
		{"verify-full with a CA", "{mode: verify-full, caFile: ca.pem}", ""},
		{"default mode with a CA", "{caFile: ca.pem}", ""},
		{"CA with require", "{mode: require, caFile: ca.pem}", `tls caFile is used only with mode "verify-full"`},
		{"missing CA file", "{caFile: nope.pem}", "nope.pem"},
		{"empty CA file name", "{caFile: ''}", "tls caFile is empty"},
		{"unknown tls key", "{mode: disable, ca: x}", `unknown key "ca" in tls`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\ndatabases:\n  - name: db\n    engine: postgresql\n    host: h\n    username: u\n    tls: " + tt.tls + "\n"
			f, err := Parse(strings.NewReader(src), dir, nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "line 7") {
					t.Fatalf("Parse: %v, want an error at line 7 containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Databases[0].TLS; got.CACert != string(caPEM) || got.CAFile != "ca.pem" || got.Mode != dynamic.TLSVerifyFull {
				t.Errorf("tls: mode %q, file %q, %d bytes of CA", got.Mode, got.CAFile, len(got.CACert))
			}
		})
	}
}

// TestDatabasePasswordNeverPrints formats a parsed file every way a
// program might and searches the output for the passwords.
func TestDatabasePasswordNeverPrints(t *testing.T) {
	f, err := parseDynamicTestdata(t, "dynamic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fmt.Fprintf(&out, verb+"\n", f)
		for _, d := range f.Databases {
			fmt.Fprintf(&out, verb+"\n", d)
		}
	}
	js, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(js)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("file", "file", f, "database", f.Databases[0])
	for _, v := range []string{dbPasswordValue, envValue, fmt.Sprintf("%x", dbPasswordValue)} {
		if strings.Contains(out.String(), v) {
			t.Fatalf("a password was printed (%q)", v)
		}
	}
	if !strings.Contains(out.String(), redacted) {
		t.Fatal("passwords did not print as REDACTED")
	}
}

// FuzzParseDynamic checks that Parse never panics on files of the dynamic
// kinds, that its errors are FileErrors that quote no password, and that
// what it accepts the server would accept too.
func FuzzParseDynamic(f *testing.F) {
	files, _ := filepath.Glob("testdata/dynamic/*.yaml")
	files = append(files, "testdata/dynamic.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data), "testdata", testEnv(map[string]string{"APPLY_TEST_VALUE": envValue}))
		if err != nil {
			if !errors.Is(err, ErrInvalidFile) {
				t.Fatalf("error %v does not wrap ErrInvalidFile", err)
			}
			if strings.Contains(err.Error(), dbPasswordValue) || strings.Contains(err.Error(), envValue) {
				t.Fatalf("error quotes a password: %v", err)
			}
			return
		}
		static := map[string]bool{}
		for _, s := range file.Secrets {
			static[s.Name] = true
		}
		for _, s := range file.DynamicSecrets {
			if static[s.Name] {
				t.Fatalf("%q accepted as both a secret and a dynamic secret", s.Name)
			}
			if s.DefaultTTL < dynamic.MinTTL || s.DefaultTTL > dynamic.MaxLeaseTTL || (s.MaxTTL != 0 && s.MaxTTL < s.DefaultTTL) {
				t.Fatalf("accepted lifetimes %s, %s", s.DefaultTTL, s.MaxTTL)
			}
			for _, st := range append(append(append([]string(nil), s.CreationStatements...), s.RenewStatements...), s.RevocationStatements...) {
				if _, err := dynamic.ParseTemplate(st); err != nil {
					t.Fatalf("accepted statement %q: %v", st, err)
				}
			}
		}
		for _, d := range file.Databases {
			if !databaseNamePattern.MatchString(d.Name) || (d.Engine != dynamic.EnginePostgres && d.Engine != dynamic.EngineMySQL) ||
				d.Host == "" || d.Username == "" || d.Port < 0 || d.Port > 65535 {
				t.Fatalf("accepted database %+v", d)
			}
		}
	})
}
