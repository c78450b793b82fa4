package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"sigil.dev/sigil/internal/dynamic"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// dynEnv is a sigil server and a PostgreSQL server registered in it.
type dynEnv struct {
	t     *testing.T
	srv   *testserver.Server
	pg    *testutil.Postgres
	admin *pgx.Conn
	sm    *secretsmanager.Client
	ic    *iam.Client
}

func newDynEnv(t *testing.T) *dynEnv {
	t.Helper()
	pg := testutil.StartPostgres(t)
	srv := testserver.StartServer(t, testserver.WithConfig(func(c *server.Config) {
		c.ReaperInterval, c.RotationInterval = 100*time.Millisecond, 100*time.Millisecond
	}))
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN())
	mustOK(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	_, err = admin.Exec(ctx, `CREATE TABLE products (id int PRIMARY KEY, name text); INSERT INTO products VALUES (1, 'lamp')`)
	mustOK(t, err)
	return &dynEnv{t: t, srv: srv, pg: pg, admin: admin, sm: secretsmanager.NewFromConfig(srv.AWSConfig()), ic: iam.NewFromConfig(srv.AWSConfig())}
}

// call sends a native API request signed with creds (root when nil) and
// returns the status and body; out, when not nil, receives a 200 answer.
func (e *dynEnv) call(creds *aws.Credentials, path string, in, out any) (int, string) {
	e.t.Helper()
	if creds == nil {
		creds = &aws.Credentials{AccessKeyID: e.srv.AccessKeyID, SecretAccessKey: e.srv.SecretAccessKey}
	}
	body, err := json.Marshal(in)
	mustOK(e.t, err)
	req, err := http.NewRequest("POST", e.srv.URL()+path, bytes.NewReader(body))
	mustOK(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	mustOK(e.t, v4.NewSigner().SignHTTP(context.Background(), *creds, req, hex.EncodeToString(sum[:]), "sigil", e.srv.Config.Region, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	mustOK(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	mustOK(e.t, err)
	if out != nil && resp.StatusCode == http.StatusOK {
		mustOK(e.t, json.Unmarshal(b, out))
	}
	return resp.StatusCode, string(b)
}

// must is call that fails the test unless the answer is 200.
func (e *dynEnv) must(path string, in, out any) {
	e.t.Helper()
	if code, body := e.call(nil, path, in, out); code != http.StatusOK {
		e.t.Fatalf("%s: %d %s\nserver log:\n%s", path, code, body, tailLog(e.srv.Logs.String()))
	}
}

// wantError is call that expects an error of type code.
func (e *dynEnv) wantError(path string, in any, code string) string {
	e.t.Helper()
	status, body := e.call(nil, path, in, nil)
	if status == http.StatusOK || !strings.Contains(body, code) {
		e.t.Fatalf("%s: %d %s, want %s", path, status, body, code)
	}
	return body
}

func (e *dynEnv) database(name string) server.DatabaseRequest {
	return server.DatabaseRequest{Database: dynamic.Database{
		Name: name, Engine: dynamic.EnginePostgres, Host: e.pg.Host, Port: e.pg.Port, DBName: e.pg.Database,
		Username: e.pg.User, Password: e.pg.Password, TLS: dynamic.TLS{Mode: dynamic.TLSDisable},
	}, Verify: true}
}

var grantProducts = []string{
	`CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}`,
	`GRANT SELECT ON products TO {{name}}`,
}

// userKey creates an IAM user allowed to read my-app/* and returns two
// access keys of it: two callers that share a policy but not a session.
func (e *dynEnv) userKeys(name string) (*secretsmanager.Client, *secretsmanager.Client) {
	e.t.Helper()
	ctx := context.Background()
	_, err := e.ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
	mustOK(e.t, err)
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:my-app/*"}]}`
	_, err = e.ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("read"), PolicyDocument: aws.String(policy)})
	mustOK(e.t, err)
	var out [2]*secretsmanager.Client
	for i := range out {
		key, err := e.ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
		mustOK(e.t, err)
		out[i] = secretsmanager.NewFromConfig(testserver.AWSConfigFor(e.srv.URL(), "us-east-1",
			aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), ""))
	}
	return out[0], out[1]
}

type issued struct {
	server.DynamicCredential
	versionID string
}

func getCred(t *testing.T, sm *secretsmanager.Client, secret string) issued {
	t.Helper()
	out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret)})
	mustOK(t, err)
	var c issued
	mustOK(t, json.Unmarshal([]byte(aws.ToString(out.SecretString)), &c.DynamicCredential))
	c.versionID = aws.ToString(out.VersionId)
	if len(out.VersionStages) != 1 || out.VersionStages[0] != "AWSCURRENT" {
		t.Fatalf("dynamic value stages %v, want [AWSCURRENT]", out.VersionStages)
	}
	return c
}

// login connects as the issued user and reads the granted table.
func login(ctx context.Context, c issued) (*pgx.Conn, error) {
	u := "postgres://" + c.Username + ":" + c.Password + "@" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) + "/" + c.DBName + "?sslmode=disable"
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return nil, err
	}
	var name string
	if err := conn.QueryRow(ctx, `SELECT name FROM products WHERE id = 1`).Scan(&name); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

func TestDynamicSecretThroughGetSecretValue(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	e.must("/v1/databases/put", e.database("shop"), nil)

	// Bad configurations are refused and leave nothing behind.
	e.wantError("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/db", Database: "nope", DefaultTTL: "1h"}, "ResourceNotFoundException")
	e.wantError("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/db", Database: "shop", DefaultTTL: "1h",
		CreationStatements: []string{"CREATE ROLE {{nam}}"}}, "InvalidParameterException")
	e.wantError("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/db", Database: "shop", DefaultTTL: "forever"}, "InvalidParameterException")
	e.wantError("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/db", Database: "shop", DefaultTTL: "2h", MaxTTL: "1h"}, "InvalidParameterException")
	if _, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("my-app/db")}); !isCode(err, "ResourceNotFoundException") {
		t.Fatalf("a refused dynamic secret exists: %v", err)
	}

	var put server.DynamicSecretResponse
	e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{
		Name: "my-app/db", Description: "orders database", Database: "shop", DefaultTTL: "1h", MaxTTL: "2h",
		CreationStatements: grantProducts, UsernamePrefix: "app",
	}, &put)
	if !put.Created || !strings.HasPrefix(put.ARN, "arn:aws:secretsmanager:us-east-1:") || put.MaxTTL != "2h0m0s" {
		t.Fatalf("put dynamic secret: %+v", put)
	}
	// Putting it again updates it in place.
	var again server.DynamicSecretResponse
	e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/db", Description: "orders database", Database: "shop",
		DefaultTTL: "1h", MaxTTL: "2h", CreationStatements: grantProducts, UsernamePrefix: "app"}, &again)
	if again.Created || again.ARN != put.ARN {
		t.Fatalf("second put: %+v, want the same secret", again)
	}
	// A static secret's name cannot be taken over.
	_, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("my-app/static"), SecretString: aws.String("x")})
	mustOK(t, err)
	e.wantError("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/static", Database: "shop", DefaultTTL: "1h"}, "ResourceExistsException")

	a1, a2 := e.userKeys("app")
	c1 := getCred(t, a1, "my-app/db")
	if c1.Engine != "postgres" || c1.Host != e.pg.Host || c1.Port != e.pg.Port || !strings.HasPrefix(c1.Username, "app_") ||
		time.Until(c1.Expires) < 50*time.Minute || time.Until(c1.Expires) > time.Hour {
		t.Fatalf("issued credential %+v", c1.DynamicCredential)
	}
	conn, err := login(ctx, c1)
	if err != nil {
		t.Fatalf("logging in with the issued user: %v", err)
	}
	defer conn.Close(ctx)

	// The same session gets the same user; another session another one.
	if again := getCred(t, a1, "my-app/db"); again.Username != c1.Username || again.Password != c1.Password || again.versionID != c1.versionID {
		t.Fatalf("same session got %s, then %s", c1.Username, again.Username)
	}
	c2 := getCred(t, a2, "my-app/db")
	if c2.Username == c1.Username || c2.versionID == c1.versionID {
		t.Fatalf("two sessions share user %s", c1.Username)
	}
	// A VersionId other than the session's is not found; other stages do
	// not exist.
	if _, err := a1.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/db"), VersionId: aws.String(c2.versionID)}); !isCode(err, "ResourceNotFoundException") {
		t.Fatalf("another session's VersionId: %v", err)
	}
	if _, err := a1.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/db"), VersionStage: aws.String("AWSPREVIOUS")}); !isCode(err, "ResourceNotFoundException") {
		t.Fatalf("AWSPREVIOUS of a dynamic secret: %v", err)
	}
	// The value cannot be set.
	if _, err := e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("my-app/db"), SecretString: aws.String("x")}); !isCode(err, "InvalidRequestException") {
		t.Fatalf("PutSecretValue on a dynamic secret: %v", err)
	}
	if _, err := e.sm.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("my-app/db"), SecretString: aws.String("x")}); !isCode(err, "InvalidRequestException") {
		t.Fatalf("UpdateSecret with a value on a dynamic secret: %v", err)
	}
	desc, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("my-app/db")})
	mustOK(t, err)
	if aws.ToString(desc.Description) != "orders database" || aws.ToString(desc.ARN) != put.ARN {
		t.Fatalf("DescribeSecret: %+v", desc)
	}

	// Leases: both are listed; renew moves the expiry, within the max.
	var ls server.LeasesResponse
	e.must("/v1/leases/list", server.LeaseRequest{Prefix: "my-app/db/"}, &ls)
	if len(ls.Leases) != 2 {
		t.Fatalf("leases %+v, want 2", ls.Leases)
	}
	var l1 server.LeaseInfo
	for _, l := range ls.Leases {
		if l.Username == c1.Username {
			l1 = l
		}
	}
	if l1.VersionID != c1.versionID || l1.State != "active" || !strings.HasPrefix(l1.Session, "key:AKIA") {
		t.Fatalf("lease of the first user: %+v", l1)
	}
	var renewed server.LeaseInfo
	e.must("/v1/leases/renew", server.LeaseRequest{LeaseID: l1.ID, Increment: "90m"}, &renewed)
	if !renewed.Expires.After(l1.Expires) || renewed.Expires.After(l1.MaxExpires) {
		t.Fatalf("renewed to %s (was %s, max %s)", renewed.Expires, l1.Expires, l1.MaxExpires)
	}
	var until time.Time
	mustOK(t, e.admin.QueryRow(ctx, `SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1`, c1.Username).Scan(&until))
	if d := until.Sub(renewed.Expires); d < -time.Second || d > time.Second {
		t.Fatalf("VALID UNTIL %s, lease expires %s", until, renewed.Expires)
	}
	e.wantError("/v1/leases/renew", server.LeaseRequest{LeaseID: l1.ID, Increment: "soon"}, "InvalidParameterException")
	e.wantError("/v1/leases/renew", server.LeaseRequest{LeaseID: "my-app/db/00000000000000000000000000000000"}, "ResourceNotFoundException")

	// Revocation ends the open session and the login, and the session
	// gets a new user next time.
	var revoked server.LeaseInfo
	e.must("/v1/leases/revoke", server.LeaseRequest{LeaseID: l1.ID}, &revoked)
	if revoked.State != "revoked" {
		t.Fatalf("revoked lease state %s", revoked.State)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("the revoked user's open session still works")
	}
	if _, err := login(ctx, c1); err == nil {
		t.Fatal("the revoked user can still log in")
	}
	if c3 := getCred(t, a1, "my-app/db"); c3.Username == c1.Username {
		t.Fatal("the session was handed its revoked user again")
	}

	// The password never reaches the audit log or the server's log, but
	// its HMAC is on the GetSecretValue record.
	auditDir := filepath.Join(e.srv.Config.DataDir, "audit")
	testutil.AssertNotInDir(t, auditDir, c2.Password)
	// Nor the database's privileged password, which the registration
	// carried: not in the data directory (the store is encrypted), not in
	// the log.
	testutil.AssertNotInDir(t, e.srv.Config.DataDir, e.pg.Password)
	if strings.Contains(e.srv.Logs.String(), e.pg.Password) {
		t.Fatal("the database's privileged password is in the server log")
	}
	if strings.Contains(e.srv.Logs.String(), c2.Password) {
		t.Fatal("the issued password is in the server log")
	}
	if !strings.Contains(e.srv.Logs.String(), c1.Username) {
		t.Fatal("the server log does not name the revoked user")
	}

	// Force-deleting the secret revokes its users and drops its
	// configuration.
	_, err = e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("my-app/db"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	mustOK(t, err)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		var left server.LeasesResponse
		e.must("/v1/leases/list", server.LeaseRequest{Prefix: "my-app/db/"}, &left)
		return len(left.Leases) == 0
	})
	if _, err := login(ctx, c2); err == nil {
		t.Fatal("a user of the deleted secret can still log in")
	}
	e.wantError("/v1/dynamic-secrets/get", server.NameRequest{Name: "my-app/db"}, "ResourceNotFoundException")
}

func TestDynamicLeaseExpiresAndIsReaped(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	e.must("/v1/databases/put", e.database("shop"), nil)
	e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/short", Database: "shop", DefaultTTL: "2s", CreationStatements: grantProducts}, nil)
	c := getCred(t, e.sm, "my-app/short")
	conn, err := login(ctx, c)
	mustOK(t, err)
	defer conn.Close(ctx)
	testutil.WaitFor(t, 20*time.Second, func() bool {
		var n int
		mustOK(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, c.Username).Scan(&n))
		return n == 0
	})
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("the expired user's session survived the reaper")
	}
	var ls server.LeasesResponse
	e.must("/v1/leases/list", server.LeaseRequest{Prefix: "my-app/short/", All: true}, &ls)
	if len(ls.Leases) != 1 || ls.Leases[0].State != "revoked" {
		t.Fatalf("after expiry: %+v", ls.Leases)
	}
	// The reaper's revocation is in the audit trail.
	testutil.WaitFor(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(latestSegment(t, filepath.Join(e.srv.Config.DataDir, "audit")))
		return bytes.Contains(b, []byte(`"eventName":"RevokeLease"`)) && bytes.Contains(b, []byte(c.Username))
	})
}

func latestSegment(t *testing.T, dir string) string {
	t.Helper()
	ms, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	mustOK(t, err)
	if len(ms) == 0 {
		t.Fatalf("no audit segments in %s", dir)
	}
	return ms[len(ms)-1]
}

func TestDynamicSecretFailures(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	// A database nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustOK(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	mustOK(t, ln.Close())
	down := e.database("down")
	down.Port, down.Verify = port, false
	e.must("/v1/databases/put", down, nil)
	down.Verify = true
	e.wantError("/v1/databases/put", down, "InvalidParameterException")
	e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/down", Database: "down", DefaultTTL: "1h"}, nil)
	_, err = e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/down")})
	if !isCode(err, "InternalServiceError") || strings.Contains(err.Error(), "refused") {
		t.Fatalf("unreachable database: %v", err)
	}
	if !strings.Contains(e.srv.Logs.String(), "connect") {
		t.Fatal("the server log does not hold the connection failure")
	}

	// A creation statement the database rejects: a clear error, no lease,
	// no user.
	e.must("/v1/databases/put", e.database("shop"), nil)
	e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/broken", Database: "shop", DefaultTTL: "1h",
		CreationStatements: []string{`CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}}`, `GRANT SELEKT ON products TO {{name}}`}}, nil)
	_, err = e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/broken")})
	if !isCode(err, "InternalServiceError") || !strings.Contains(err.Error(), "refused to create a user for my-app/broken") {
		t.Fatalf("rejected creation statement: %v", err)
	}
	var ls server.LeasesResponse
	e.must("/v1/leases/list", server.LeaseRequest{Prefix: "my-app/broken/", All: true}, &ls)
	if len(ls.Leases) != 0 {
		t.Fatalf("a failed creation left leases: %+v", ls.Leases)
	}
	var n int
	mustOK(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v_my_app_broken%'`).Scan(&n))
	if n != 0 {
		t.Fatalf("a failed creation left %d roles", n)
	}

	// Bad database registrations.
	for name, db := range map[string]dynamic.Database{
		"engine":   {Name: "x", Engine: "oracle", Host: "h", Username: "u", Password: "p"},
		"name":     {Name: "a b", Engine: dynamic.EnginePostgres, Host: "h", Username: "u", Password: "p"},
		"tls":      {Name: "x", Engine: dynamic.EnginePostgres, Host: "h", Username: "u", Password: "p", TLS: dynamic.TLS{Mode: "maybe"}},
		"ca":       {Name: "x", Engine: dynamic.EnginePostgres, Host: "h", Username: "u", Password: "p", TLS: dynamic.TLS{CACert: "not pem"}},
		"password": {Name: "x", Engine: dynamic.EnginePostgres, Host: "h", Username: "u"},
		"port":     {Name: "x", Engine: dynamic.EnginePostgres, Host: "h", Username: "u", Password: "p", Port: 70000},
	} {
		t.Run(name, func(t *testing.T) {
			e.wantError("/v1/databases/put", server.DatabaseRequest{Database: db}, "InvalidParameterException")
		})
	}
	// A database in use cannot be removed.
	e.wantError("/v1/databases/delete", server.NameRequest{Name: "shop"}, "InvalidRequestException")
}

func TestDynamicRotateRoot(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	// A dedicated administrator as docs/dynamic.md describes it (CREATEROLE,
	// pg_signal_backend to end sessions), so the superuser keeps working.
	_, err := e.admin.Exec(ctx, `CREATE ROLE shop_admin WITH LOGIN CREATEROLE PASSWORD 'initial-password'; GRANT pg_signal_backend TO shop_admin; GRANT SELECT ON products TO shop_admin WITH GRANT OPTION`)
	mustOK(t, err)
	db := e.database("shop")
	db.Username, db.Password = "shop_admin", "initial-password"
	e.must("/v1/databases/put", db, nil)
	e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "my-app/db", Database: "shop", DefaultTTL: "1h", CreationStatements: grantProducts}, nil)
	before := getCred(t, e.sm, "my-app/db")

	var rotated dynamic.Database
	e.must("/v1/databases/rotate-root", server.NameRequest{Name: "shop"}, &rotated)
	if rotated.Password != "" || rotated.RootRotated.IsZero() {
		t.Fatalf("rotate-root answered %+v", rotated)
	}
	if c, err := pgx.Connect(ctx, e.pg.DSNFor("shop_admin", "initial-password", e.pg.Database)); err == nil {
		c.Close(ctx)
		t.Fatal("the old administrator password still works")
	}
	// Issuing and revoking go on with the new password, which only sigil
	// knows; existing users are untouched.
	app, _ := e.userKeys("app")
	after := getCred(t, app, "my-app/db")
	if _, err := login(ctx, after); err != nil {
		t.Fatalf("user issued after rotate-root: %v", err)
	}
	if _, err := login(ctx, before); err != nil {
		t.Fatalf("user issued before rotate-root: %v", err)
	}
	var ls server.LeasesResponse
	e.must("/v1/leases/revoke-prefix", server.LeaseRequest{Prefix: "my-app/db/"}, &ls)
	if ls.Revoked != 2 {
		t.Fatalf("revoke-prefix revoked %d, want 2", ls.Revoked)
	}
	if _, err := login(ctx, after); err == nil {
		t.Fatal("revoke-prefix left a user working")
	}
	e.wantError("/v1/databases/rotate-root", server.NameRequest{Name: "nope"}, "ResourceNotFoundException")
}

// tailLog is the end of a server log, for failure messages.
func tailLog(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
