package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"sigil.dev/sigil/internal/dynamic"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
)

// dynEnv is an env with a PostgreSQL server holding a products table, and
// a directory holding its superuser's password in admin-password.txt.
type dynEnv struct {
	*env
	pg  *testutil.Postgres
	dir string
}

func newDynEnv(t *testing.T) *dynEnv {
	t.Helper()
	pg := testutil.StartPostgres(t)
	e := newEnv(t)
	e.c.Native = NewNative(e.srv.AWSConfig())
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE TABLE products (id int PRIMARY KEY, name text); INSERT INTO products VALUES (1, 'lamp')`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin-password.txt"), []byte(pg.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap.json"), []byte(`{"database_credentials_arn":"{{secretArn:my-app/database-credentials}}"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return &dynEnv{env: e, pg: pg, dir: dir}
}

// file is the test's apply file: database shop, a dynamic secret on it
// with ttl and tag as given, and a static secret pointing at it.
func (e *dynEnv) file(t *testing.T, ttl, tag string) *File {
	t.Helper()
	src := `version: 1
databases:
  - name: shop
    engine: postgresql
    host: ` + e.pg.Host + `
    port: ` + strconv.Itoa(e.pg.Port) + `
    dbname: ` + e.pg.Database + `
    username: ` + e.pg.User + `
    passwordFile: admin-password.txt
    tls: {mode: disable}
dynamicSecrets:
  - name: my-app/database-credentials
    description: my-app's database user in {{region}}
    tags: {app: my-app, env: ` + tag + `}
    database: shop
    defaultTtl: ` + ttl + `
    maxTtl: 24h
    creationStatements:
      - CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}
      - GRANT SELECT ON products TO {{name}}
    usernamePrefix: app
secrets:
  - name: my-app/bootstrap
    valueFile: bootstrap.json
    valueTemplate: true
`
	return parse(t, src, e.dir, nil)
}

// noPassword fails the test if the database password is in any of outs.
func (e *dynEnv) noPassword(t *testing.T, outs ...string) {
	t.Helper()
	for _, o := range outs {
		if strings.Contains(o, e.pg.Password) {
			t.Fatal("the database password was printed")
		}
	}
}

// texts renders a plan, and a result when not nil, as text and JSON.
func texts(t *testing.T, p *PlanResult, r *Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(p)
	b.Write(js)
	if r != nil {
		if err := r.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(r)
		b.Write(js)
	}
	return b.String()
}

// pgLogin logs in as user and reads the products table.
func pgLogin(ctx context.Context, c server.DynamicCredential) error {
	u := "postgres://" + c.Username + ":" + c.Password + "@" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) + "/" + c.DBName + "?sslmode=disable"
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var name string
	return conn.QueryRow(ctx, `SELECT name FROM products WHERE id = 1`).Scan(&name)
}

func TestApplyDynamic(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	f := e.file(t, "1h", "prod")

	// A dry run (Plan alone) changes nothing.
	p := e.plan(t, f, Options{})
	if got := strings.Join(actions(p), "; "); got != "database shop: create; dynamic-secret my-app/database-credentials: create; secret my-app/bootstrap: create" {
		t.Fatalf("first plan: %s", got)
	}
	if ch := findChange(t, p, KindDatabase, "shop"); !strings.HasPrefix(ch.ARN, "arn:aws:sigil:us-east-1:") || ch.Steps[0] != "register database" ||
		ch.Notes[0] != `password from file "admin-password.txt"` {
		t.Fatalf("database change: %+v", ch)
	}
	e.noPassword(t, texts(t, p, nil))
	if err := e.c.Native(ctx, "/v1/databases/get", server.NameRequest{Name: "shop"}, nil); !isNativeNotFound(err) {
		t.Fatalf("after planning, databases/get: %v, want ResourceNotFoundException", err)
	}
	if _, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("my-app/database-credentials")}); !isSecretNotFound(err) {
		t.Fatalf("after planning, the dynamic secret: %v", err)
	}

	p, r := e.apply(t, f, Options{})
	if created, updated, unchanged, failed := r.Counts(); created != 3 || updated+unchanged+failed != 0 {
		t.Fatalf("apply: %+v", r.Objects)
	}
	e.noPassword(t, texts(t, p, r), e.srv.Logs.String())

	// GetSecretValue issues a working database user.
	out, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/database-credentials")})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	var cred server.DynamicCredential
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &cred); err != nil {
		t.Fatal(err)
	}
	if cred.Engine != "postgres" || cred.Host != e.pg.Host || cred.Port != e.pg.Port || !strings.HasPrefix(cred.Username, "app_") {
		t.Fatalf("credential %+v", cred)
	}
	if err := pgLogin(ctx, cred); err != nil {
		t.Fatalf("logging in with the issued user: %v", err)
	}
	// The static secret's template named the dynamic secret's ARN.
	boot, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/bootstrap")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(aws.ToString(boot.SecretString), aws.ToString(out.ARN)) || aws.ToString(out.ARN) == "" {
		t.Fatalf("bootstrap value %s does not hold %s", aws.ToString(boot.SecretString), aws.ToString(out.ARN))
	}
	desc, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("my-app/database-credentials")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(desc.Description) != "my-app's database user in us-east-1" || len(desc.Tags) != 2 {
		t.Fatalf("describe: %q, tags %v", aws.ToString(desc.Description), desc.Tags)
	}

	// A second run plans no change.
	p = e.plan(t, e.file(t, "1h", "prod"), Options{})
	if p.HasChanges() {
		t.Fatalf("second plan: %v\n%s", actions(p), texts(t, p, nil))
	}
	if ch := findChange(t, p, KindDatabase, "shop"); len(ch.Notes) != 1 || ch.Notes[0] != notePasswordLeft {
		t.Fatalf("unchanged database notes %v", ch.Notes)
	}
	if ch := findChange(t, p, KindDynamicSecret, "my-app/database-credentials"); ch.ARN != aws.ToString(out.ARN) {
		t.Fatalf("dynamic secret ARN %q, want %q", ch.ARN, aws.ToString(out.ARN))
	}

	// Changed settings become one put each.
	p, _ = e.apply(t, e.file(t, "30m", "staging"), Options{})
	ch := findChange(t, p, KindDynamicSecret, "my-app/database-credentials")
	if ch.Action != ActionUpdate || len(ch.Steps) != 1 || ch.Steps[0] != "update default ttl and tags (change env)" {
		t.Fatalf("update plan: %+v", ch)
	}
	var cfg server.DynamicSecretResponse
	if err := e.c.Native(ctx, "/v1/dynamic-secrets/get", server.NameRequest{Name: "my-app/database-credentials"}, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultTTL != "30m0s" || cfg.MaxTTL != "24h0m0s" || len(cfg.CreationStatements) != 2 {
		t.Fatalf("after update: %+v", cfg)
	}
	if p := e.plan(t, e.file(t, "30m", "staging"), Options{}); p.HasChanges() {
		t.Fatalf("plan after update: %v", actions(p))
	}

	// --update-values writes the write-only password on every run.
	p, r = e.apply(t, e.file(t, "30m", "staging"), Options{UpdateValues: true})
	ch = findChange(t, p, KindDatabase, "shop")
	if ch.Action != ActionUpdate || len(ch.Steps) != 1 || !strings.Contains(ch.Steps[0], `password from file "admin-password.txt"`) {
		t.Fatalf("update-values plan: %+v", ch)
	}
	e.noPassword(t, texts(t, p, r))
	var check dynamic.Database
	if err := e.c.Native(ctx, "/v1/databases/put", server.DatabaseRequest{Database: dynamic.Database{Name: "shop", Engine: "postgresql",
		Host: e.pg.Host, Port: e.pg.Port, DBName: e.pg.Database, Username: e.pg.User, TLS: dynamic.TLS{Mode: "disable"}}, Verify: true}, &check); err != nil {
		t.Fatalf("the written password does not log in: %v", err)
	}

	// After rotate-root the file's password is never sent again.
	if err := e.c.Native(ctx, "/v1/databases/rotate-root", server.NameRequest{Name: "shop"}, nil); err != nil {
		t.Fatal(err)
	}
	p = e.plan(t, e.file(t, "30m", "staging"), Options{UpdateValues: true})
	ch = findChange(t, p, KindDatabase, "shop")
	if ch.Action != ActionNone || len(ch.Notes) != 1 || !strings.Contains(ch.Notes[0], "sigil rotated it at") {
		t.Fatalf("plan after rotate-root: %+v", ch)
	}
}

func TestApplyDynamicConflicts(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	if _, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("my-app/database-credentials"), SecretString: aws.String("static")}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Native(ctx, "/v1/databases/put", server.DatabaseRequest{Database: dynamic.Database{Name: "shop", Engine: dynamic.EngineMySQL,
		Host: "127.0.0.1", Username: "root", Password: "x", TLS: dynamic.TLS{Mode: dynamic.TLSDisable}}}, nil); err != nil {
		t.Fatal(err)
	}
	src := `version: 1
databases:
  - {name: shop, engine: postgresql, host: 127.0.0.1, username: u}
  - {name: unregistered, engine: postgresql, host: 127.0.0.1, username: u}
dynamicSecrets:
  - {name: my-app/database-credentials, database: shop, defaultTtl: 1h}
`
	_, err := Plan(ctx, e.c, parse(t, src, e.dir, nil), Options{})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Plan: %v, want ErrConflict", err)
	}
	for _, want := range []string{
		`database "shop" (line 3): it is registered as mysql, and an engine cannot change`,
		`database "unregistered" (line 4): it is not registered, and the file gives no passwordFile or passwordEnv`,
		`dynamic-secret "my-app/database-credentials" (line 6): a static secret has this name`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("conflict error lacks %q:\n%v", want, err)
		}
	}
	// A plan needs the native client for these kinds.
	c := e.c
	c.Native = nil
	if _, err := Plan(ctx, c, parse(t, src, e.dir, nil), Options{}); err == nil || !strings.Contains(err.Error(), "native API client is required") {
		t.Fatalf("Plan without Native: %v", err)
	}
}

// TestApplyDynamicRejected checks that a dynamic secret the server refuses
// (its database is not registered) fails the apply with the server's
// reason, after the objects before it were applied.
func TestApplyDynamicRejected(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	src := `version: 1
dynamicSecrets:
  - {name: my-app/database-credentials, database: nowhere, defaultTtl: 1h}
`
	p := e.plan(t, parse(t, src, e.dir, nil), Options{})
	r, err := Apply(ctx, e.c, p)
	if !errors.Is(err, ErrApply) || !strings.Contains(err.Error(), "ResourceNotFoundException") || !strings.Contains(err.Error(), `"nowhere"`) {
		t.Fatalf("Apply: %v", err)
	}
	if r.Objects[0].Status != StatusRolledBack || r.Objects[0].FailedStep != "create dynamic secret" {
		t.Fatalf("result: %+v", r.Objects[0])
	}
	if _, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("my-app/database-credentials")}); !isSecretNotFound(err) {
		t.Fatalf("the refused dynamic secret exists: %v", err)
	}
}
