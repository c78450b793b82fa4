package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// dbFixture is a sigil server, a PostgreSQL server with a products table,
// and the CLI's connection flags.
type dbFixture struct {
	srv  *testserver.Server
	pg   *testutil.Postgres
	conn []string
	// pwFile holds the PostgreSQL superuser's password.
	pwFile string
	// outputs collects everything the commands printed, to search for
	// passwords.
	outputs *strings.Builder
}

func newDBFixture(t *testing.T) *dbFixture {
	t.Helper()
	pg := testutil.StartPostgres(t)
	srv, conn := applyTestServer(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE TABLE products (id int PRIMARY KEY, name text); INSERT INTO products VALUES (1, 'lamp')`); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "admin-password.txt")
	if err := os.WriteFile(pwFile, []byte(pg.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &dbFixture{srv: srv, pg: pg, conn: conn, pwFile: pwFile, outputs: &strings.Builder{}}
}

// run runs a command of the tree newCmd builds with the connection flags
// appended and records its output.
func (f *dbFixture) run(t *testing.T, newCmd func() *cobra.Command, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := runCmd(t, newCmd(), append(args, f.conn...)...)
	f.outputs.WriteString(stdout + stderr)
	if err != nil {
		f.outputs.WriteString(err.Error())
	}
	return stdout, err
}

// must is run that fails the test on an error.
func (f *dbFixture) must(t *testing.T, newCmd func() *cobra.Command, args ...string) string {
	t.Helper()
	out, err := f.run(t, newCmd, args...)
	if err != nil {
		t.Fatalf("%v: %v\nserver log tail:\n%s", args, err, tail(f.srv.Logs.String()))
	}
	return out
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// putShop registers the test PostgreSQL as database "shop".
func (f *dbFixture) putShop(t *testing.T) string {
	t.Helper()
	return f.must(t, newDBCmd, "put", "shop", "--engine", "postgresql", "--host", f.pg.Host, "--port", strconv.Itoa(f.pg.Port),
		"--dbname", f.pg.Database, "--username", f.pg.User, "--password-file", f.pwFile, "--tls-mode", "disable", "--verify")
}

// putSecret configures my-app/db to grant SELECT on products.
func (f *dbFixture) putSecret(t *testing.T) string {
	t.Helper()
	stmts := filepath.Join(t.TempDir(), "create.sql")
	if err := os.WriteFile(stmts, []byte("CREATE ROLE {{name}} WITH LOGIN\n  PASSWORD {{password}} VALID UNTIL {{expiration}};\n---\n\nGRANT SELECT ON products TO {{name}};\n---\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f.must(t, newDBCmd, "secret", "put", "my-app/db", "--database", "shop", "--ttl", "1h", "--max-ttl", "2h",
		"--creation-file", stmts, "--username-prefix", "app", "--description", "orders", "--tag", "app=my-app", "--tag", "env=test")
}

// cred reads a dynamic secret as root through the Secrets Manager API.
func (f *dbFixture) cred(t *testing.T, secret string) server.DynamicCredential {
	t.Helper()
	sm := secretsmanager.NewFromConfig(f.srv.AWSConfig())
	out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret)})
	if err != nil {
		t.Fatalf("GetSecretValue: %v\n%s", err, tail(f.srv.Logs.String()))
	}
	var c server.DynamicCredential
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// pgLogin logs in as user and reads the products table.
func pgLogin(ctx context.Context, host string, port int, user, password, dbname string) error {
	u := "postgres://" + user + ":" + password + "@" + net.JoinHostPort(host, strconv.Itoa(port)) + "/" + dbname + "?sslmode=disable"
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var name string
	return conn.QueryRow(ctx, `SELECT name FROM products WHERE id = 1`).Scan(&name)
}

func TestDBCmd(t *testing.T) {
	f := newDBFixture(t)
	ctx := context.Background()

	t.Run("bad input", func(t *testing.T) {
		t.Setenv("SIGIL_TEST_DB_PASSWORD", f.pg.Password)
		t.Setenv("SIGIL_TEST_EMPTY", "")
		base := []string{"put", "shop", "--engine", "postgresql", "--host", "127.0.0.1", "--username", "u"}
		tests := []struct {
			name string
			cmd  func() *cobra.Command
			args []string
			want string
		}{
			{"missing password", newDBCmd, base, "no password: give --password-file FILE or --password-env VAR"},
			{"password from file and env", newDBCmd, append(base, "--password-file", f.pwFile, "--password-env", "SIGIL_TEST_DB_PASSWORD"), "give one of --password-file, --password-env"},
			{"empty password env", newDBCmd, append(base, "--password-env", "SIGIL_TEST_EMPTY"), "SIGIL_TEST_EMPTY is not set or empty"},
			{"missing password file", newDBCmd, append(base, "--password-file", filepath.Join(t.TempDir(), "nope")), "reading --password-file"},
			{"unknown engine", newDBCmd, []string{"put", "shop", "--engine", "oracle", "--host", "h", "--username", "u", "--password-env", "SIGIL_TEST_DB_PASSWORD"}, `--engine "oracle"`},
			{"missing host", newDBCmd, []string{"put", "shop", "--engine", "postgresql", "--username", "u"}, "missing --host"},
			{"bad tls mode", newDBCmd, append(base, "--password-env", "SIGIL_TEST_DB_PASSWORD", "--tls-mode", "prefer"), `--tls-mode "prefer"`},
			{"bad ttl", newDBCmd, []string{"secret", "put", "my-app/db", "--database", "shop", "--ttl", "forever"}, `--ttl "forever": want a duration`},
			{"ttl too short", newDBCmd, []string{"secret", "put", "my-app/db", "--database", "shop", "--ttl", "1ms"}, `--ttl "1ms"`},
			{"missing ttl", newDBCmd, []string{"secret", "put", "my-app/db", "--database", "shop"}, "missing --ttl"},
			{"bad tag", newDBCmd, []string{"secret", "put", "my-app/db", "--database", "shop", "--ttl", "1h", "--tag", "novalue"}, `--tag "novalue": want KEY=VALUE`},
			{"statements twice", newDBCmd, []string{"secret", "put", "my-app/db", "--database", "shop", "--ttl", "1h", "--creation", "x", "--creation-file", f.pwFile}, "give --creation or --creation-file, not both"},
			{"unknown database", newDBCmd, []string{"secret", "put", "my-app/db", "--database", "nope", "--ttl", "1h"}, `ResourceNotFoundException: dynamic: database not found: "nope"`},
			{"get unknown database", newDBCmd, []string{"get", "nope"}, "ResourceNotFoundException"},
			{"bad increment", newLeaseCmd, []string{"renew", "my-app/db/00000000000000000000000000000000", "--increment", "soon"}, `--increment "soon"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, err := f.run(t, tt.cmd, tt.args...)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want one containing %q (output %q)", err, tt.want, out)
				}
			})
		}
		// Nothing was registered by the failed commands.
		if out := f.must(t, newDBCmd, "list"); strings.Contains(out, "shop") {
			t.Fatalf("a failed put registered a database:\n%s", out)
		}
	})

	t.Run("non-zero exit status", func(t *testing.T) {
		if code := run(append([]string{"db", "secret", "put", "my-app/db", "--database", "nope", "--ttl", "1h"}, f.conn...)); code == 0 {
			t.Fatal("sigil db secret put with an unknown database exited 0")
		}
		if code := run(append([]string{"db", "put", "x", "--engine", "postgresql", "--host", "h", "--username", "u"}, f.conn...)); code == 0 {
			t.Fatal("sigil db put without a password exited 0")
		}
	})

	out := f.putShop(t)
	if !strings.Contains(out, "Registered database shop (postgresql://"+f.pg.User+"@") || !strings.Contains(out, "logged in") {
		t.Fatalf("put printed %q", out)
	}
	out = f.must(t, newDBCmd, "get", "shop")
	for _, want := range []string{"Engine:", "postgresql", "Username:", f.pg.User, "TLS mode:", "disable", "never (the registered password is still in use)"} {
		if !strings.Contains(out, want) {
			t.Errorf("get lacks %q:\n%s", want, out)
		}
	}
	out = f.must(t, newDBCmd, "list")
	if !strings.Contains(out, "NAME") || !strings.Contains(out, "shop") || !strings.Contains(out, strconv.Itoa(f.pg.Port)) {
		t.Errorf("list printed:\n%s", out)
	}
	out = f.must(t, newDBCmd, "list", "--json")
	if !strings.Contains(out, `"name":"shop"`) || strings.Contains(out, `"password"`) {
		t.Errorf("list --json printed %s", out)
	}

	out = f.putSecret(t)
	for _, want := range []string{"Created dynamic secret my-app/db (arn:aws:secretsmanager:", "1. CREATE ROLE {{name}} WITH LOGIN\n       PASSWORD {{password}}", "2. GRANT SELECT ON products TO {{name}};", "Max TTL:", "2h0m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("secret put lacks %q:\n%s", want, out)
		}
	}
	// Putting it again with repeated flags updates it in place.
	out = f.must(t, newDBCmd, "secret", "put", "my-app/db", "--database", "shop", "--ttl", "1h", "--max-ttl", "2h", "--username-prefix", "app",
		"--creation", "CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}", "--creation", "GRANT SELECT ON products TO {{name}}")
	if !strings.Contains(out, "Updated dynamic secret my-app/db") {
		t.Fatalf("second secret put printed:\n%s", out)
	}
	out = f.must(t, newDBCmd, "secret", "get", "my-app/db", "--json")
	var got server.DynamicSecretResponse
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Database != "shop" || len(got.CreationStatements) != 2 || got.DefaultTTL != "1h0m0s" || got.UsernamePrefix != "app" {
		t.Fatalf("secret get --json: %+v", got)
	}

	c := f.cred(t, "my-app/db")
	if !strings.HasPrefix(c.Username, "app_") {
		t.Fatalf("issued username %q", c.Username)
	}
	if err := pgLogin(ctx, c.Host, c.Port, c.Username, c.Password, c.DBName); err != nil {
		t.Fatalf("logging in as the issued user: %v", err)
	}

	// A database in use cannot be deleted.
	if _, err := f.run(t, newDBCmd, "delete", "shop"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("deleting a database in use: %v", err)
	}

	out = f.must(t, newDBCmd, "rotate-root", "shop")
	if !strings.Contains(out, "Rotated the password of "+f.pg.User+" on database shop") || !strings.Contains(out, "Nobody but sigil knows the new password") {
		t.Fatalf("rotate-root printed %q", out)
	}
	if err := pgLogin(ctx, f.pg.Host, f.pg.Port, f.pg.User, f.pg.Password, f.pg.Database); err == nil {
		t.Fatal("the registered password still works after rotate-root")
	}
	if out := f.must(t, newDBCmd, "get", "shop"); !strings.Contains(out, "(only sigil knows the password)") {
		t.Errorf("get after rotate-root:\n%s", out)
	}
	// sigil still manages users with the password only it knows.
	if _, err := f.run(t, newLeaseCmd, "revoke-prefix", "my-app/db/"); err != nil {
		t.Fatalf("revoking with the rotated password: %v", err)
	}
	if err := pgLogin(ctx, c.Host, c.Port, c.Username, c.Password, c.DBName); err == nil {
		t.Fatal("the revoked user still logs in")
	}
	// --keep-password replaces the settings and keeps the rotated password.
	f.must(t, newDBCmd, "put", "shop", "--engine", "postgresql", "--host", f.pg.Host, "--port", strconv.Itoa(f.pg.Port),
		"--dbname", f.pg.Database, "--username", f.pg.User, "--keep-password", "--tls-mode", "disable", "--max-conns", "2", "--verify")
	if out := f.must(t, newDBCmd, "get", "shop"); !strings.Contains(out, "Max connections:") || !strings.Contains(out, "only sigil knows") {
		t.Errorf("get after --keep-password:\n%s", out)
	}

	// Deleting the dynamic secret frees the database.
	sm := secretsmanager.NewFromConfig(f.srv.AWSConfig())
	if _, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("my-app/db"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if out := f.must(t, newDBCmd, "delete", "shop"); !strings.Contains(out, "Deleted the registration of database shop") {
		t.Fatalf("delete printed %q", out)
	}
	if out := f.must(t, newDBCmd, "list"); strings.Contains(out, "shop") {
		t.Fatalf("list after delete:\n%s", out)
	}

	if strings.Contains(f.outputs.String(), f.pg.Password) {
		t.Fatal("the database password appeared in a command's output")
	}
	if strings.Contains(f.srv.Logs.String(), f.pg.Password) {
		t.Fatal("the database password appeared in the server log")
	}
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"one", "SELECT 1;\n", []string{"SELECT 1;"}},
		{"separated", "A;\n---\nB\n  more;\n", []string{"A;", "B\n  more;"}},
		{"blank pieces dropped", "---\n\nA\n---  \n\n---\nB", []string{"A", "B"}},
		{"dashes inside a line stay", "SELECT '---' ;\n-- comment ---\n", []string{"SELECT '---' ;\n-- comment ---"}},
		{"crlf", "A\r\n---\r\nB\r\n", []string{"A", "B"}},
		{"empty", "\n \n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitStatements(tt.text)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("splitStatements(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

// TestApplyCmdDynamic applies a file with a database and a dynamic secret
// through sigil apply, which reaches them through the native API.
func TestApplyCmdDynamic(t *testing.T) {
	f := newDBFixture(t)
	ctx := context.Background()
	dir := filepath.Dir(f.pwFile)
	file := filepath.Join(dir, "sigil.yaml")
	src := `version: 1
databases:
  - name: shop
    engine: postgresql
    host: ` + f.pg.Host + `
    port: ` + strconv.Itoa(f.pg.Port) + `
    dbname: ` + f.pg.Database + `
    username: ` + f.pg.User + `
    passwordFile: ` + filepath.Base(f.pwFile) + `
    tls: {mode: disable}
dynamicSecrets:
  - name: my-app/db
    database: shop
    defaultTtl: 1h
    creationStatements:
      - CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}
      - GRANT SELECT ON products TO {{name}}
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var outs strings.Builder
	apply := func(args ...string) string {
		t.Helper()
		out, _, err := runApplyCmd(t, append(append([]string{"-f", file}, args...), f.conn...)...)
		outs.WriteString(out)
		if err != nil {
			t.Fatalf("apply %v: %v\n%s", args, err, out)
		}
		return out
	}
	out := apply("--dry-run")
	if !strings.Contains(out, "+ database") || !strings.Contains(out, "+ dynamic-secret") || !strings.Contains(out, "Plan: 2 to create") {
		t.Fatalf("dry run printed:\n%s", out)
	}
	if list := f.must(t, newDBCmd, "list"); strings.Contains(list, "shop") {
		t.Fatal("--dry-run registered the database")
	}
	if out := apply(); !strings.Contains(out, "Applied: 2 created, 0 updated, 0 unchanged.") {
		t.Fatalf("apply printed:\n%s", out)
	}
	c := f.cred(t, "my-app/db")
	if err := pgLogin(ctx, c.Host, c.Port, c.Username, c.Password, c.DBName); err != nil {
		t.Fatalf("logging in as the issued user: %v", err)
	}
	if out := apply(); !strings.Contains(out, "Plan: no changes; 2 objects are up to date.") {
		t.Fatalf("second apply printed:\n%s", out)
	}
	if out := apply("--update-values", "--json"); !strings.Contains(out, `password from file \"admin-password.txt\"`) {
		t.Fatalf("apply --update-values --json printed:\n%s", out)
	}
	if strings.Contains(outs.String(), f.pg.Password) {
		t.Fatal("sigil apply printed the database password")
	}
}
