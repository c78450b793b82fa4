package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/jackc/pgx/v5"

	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
)

func (e *dynEnv) lambdaARN(name string) string {
	id, err := sts.NewFromConfig(e.srv.AWSConfig()).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	mustOK(e.t, err)
	return "arn:aws:lambda:us-east-1:" + aws.ToString(id.Account) + ":function:" + name
}

// waitRotated polls DescribeSecret until the rotation of id has finished
// (LastRotatedDate after since, no AWSPENDING) and returns the description.
func (e *dynEnv) waitRotated(id string, since time.Time) *secretsmanager.DescribeSecretOutput {
	e.t.Helper()
	var d *secretsmanager.DescribeSecretOutput
	testutil.WaitFor(e.t, 20*time.Second, func() bool {
		var err error
		d, err = e.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		mustOK(e.t, err)
		if d.LastRotatedDate == nil || d.LastRotatedDate.Before(since.Add(-time.Second)) {
			return false
		}
		for _, stages := range d.VersionIdsToStages {
			for _, s := range stages {
				if s == "AWSPENDING" {
					return false
				}
			}
		}
		return true
	})
	return d
}

// RotateSecret with the built-in PostgreSQL single-user rotator, through
// the real server and the real database: the new password logs in, the old
// one does not, AWSPREVIOUS holds the old value.
func TestRotatePostgresPasswordThroughTheServer(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	_, err := e.admin.Exec(ctx, `CREATE ROLE orders_app WITH LOGIN PASSWORD 'initial-password-0001'; GRANT SELECT ON products TO orders_app`)
	mustOK(t, err)
	value, _ := json.Marshal(map[string]any{"engine": "postgres", "host": e.pg.Host, "port": e.pg.Port, "dbname": e.pg.Database,
		"username": "orders_app", "password": "initial-password-0001", "sslmode": "disable"})
	_, err = e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("orders/db"), SecretString: aws.String(string(value))})
	mustOK(t, err)
	start := time.Now()
	_, err = e.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("orders/db"),
		RotationLambdaARN: aws.String(e.lambdaARN("sigil-postgresql-single-user")),
		RotationRules:     &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}})
	mustOK(t, err)
	d := e.waitRotated("orders/db", start)
	if !aws.ToBool(d.RotationEnabled) || d.NextRotationDate == nil || !d.NextRotationDate.After(time.Now().Add(29*24*time.Hour)) {
		t.Fatalf("after rotation: enabled %v next %v", aws.ToBool(d.RotationEnabled), d.NextRotationDate)
	}
	cur, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("orders/db")})
	mustOK(t, err)
	var now struct{ Password string }
	mustOK(t, json.Unmarshal([]byte(aws.ToString(cur.SecretString)), &now))
	if now.Password == "initial-password-0001" || len(now.Password) < 16 {
		t.Fatal("the password did not change")
	}
	c, err := pgx.Connect(ctx, e.pg.DSNFor("orders_app", now.Password, e.pg.Database))
	if err != nil {
		t.Fatalf("the rotated password does not log in: %v", err)
	}
	c.Close(ctx)
	if c, err := pgx.Connect(ctx, e.pg.DSNFor("orders_app", "initial-password-0001", e.pg.Database)); err == nil {
		c.Close(ctx)
		t.Fatal("the old password still logs in")
	}
	prev, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("orders/db"), VersionStage: aws.String("AWSPREVIOUS")})
	mustOK(t, err)
	if !strings.Contains(aws.ToString(prev.SecretString), "initial-password-0001") {
		t.Fatal("AWSPREVIOUS does not hold the old value")
	}
	// The new password is in no log.
	if strings.Contains(e.srv.Logs.String(), now.Password) {
		t.Fatal("the rotated password is in the server log")
	}
}

// A webhook rotator registered through the native API receives the four
// steps signed; when its testSecret fails, AWSCURRENT stays, AWSPENDING is
// kept, and the retry with the same token finishes the rotation.
func TestWebhookRotatorThroughTheServer(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	var (
		mu       sync.Mutex
		key      []byte
		steps    []string
		failTest = true
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		k, fail := key, failTest
		mu.Unlock()
		if err := rotation.VerifySignature(k, r.Header.Get(rotation.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev rotation.WebhookEvent
		mustOK(t, json.Unmarshal(body, &ev))
		mu.Lock()
		steps = append(steps, string(ev.Step))
		mu.Unlock()
		switch ev.Step {
		case "createSecret":
			// The Lambda contract: write AWSPENDING with the token.
			_, err := e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(ev.SecretID),
				ClientRequestToken: aws.String(ev.ClientRequestToken), SecretString: aws.String("api-key-2"), VersionStages: []string{"AWSPENDING"}})
			if err != nil && !strings.Contains(err.Error(), "ResourceExists") {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		case "testSecret":
			if fail {
				http.Error(w, "the new key is not accepted yet", http.StatusInternalServerError)
				return
			}
		case "finishSecret":
			d, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(ev.SecretID)})
			mustOK(t, err)
			var current string
			for id, st := range d.VersionIdsToStages {
				for _, s := range st {
					if s == "AWSCURRENT" {
						current = id
					}
				}
			}
			_, err = e.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(ev.SecretID),
				VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(ev.ClientRequestToken), RemoveFromVersionId: aws.String(current)})
			mustOK(t, err)
		}
	}))
	defer hook.Close()

	var put server.RotatorResponse
	e.must("/v1/rotators/put", server.RotatorRequest{RotatorSpec: rotation.RotatorSpec{Name: "api-key-rotator", Type: rotation.TypeWebhook,
		Webhook: &rotation.WebhookSpec{URL: hook.URL, Timeout: 5 * time.Second}}}, &put)
	k, err := base64.StdEncoding.DecodeString(put.WebhookKey)
	if err != nil || len(k) < 32 || put.ARN != e.lambdaARN("api-key-rotator") {
		t.Fatalf("rotator put: %+v (%v)", put, err)
	}
	mu.Lock()
	key = k
	mu.Unlock()
	// A key given by the caller is stored, never echoed, and neither it
	// nor the generated one reaches the audit log or the server log.
	given := base64.StdEncoding.EncodeToString([]byte("planted-webhook-key-0123456789abcdef"))
	var put2 server.RotatorResponse
	e.must("/v1/rotators/put", server.RotatorRequest{RotatorSpec: rotation.RotatorSpec{Name: "given-key", Type: rotation.TypeWebhook,
		Webhook: &rotation.WebhookSpec{URL: hook.URL}}, WebhookKey: given}, &put2)
	if put2.WebhookKey != "" && put2.WebhookKey != given {
		t.Fatalf("put with a given key answered another key")
	}
	for _, k := range []string{given, put.WebhookKey} {
		testutil.AssertNotInDir(t, filepath.Join(e.srv.Config.DataDir, "audit"), k)
		if strings.Contains(e.srv.Logs.String(), k) {
			t.Fatal("a webhook key is in the server log")
		}
	}
	var got server.RotatorResponse
	e.must("/v1/rotators/get", server.NameRequest{Name: "api-key-rotator"}, &got)
	if got.WebhookKey != "" {
		t.Fatal("rotators/get returned the webhook key")
	}
	// An unknown rotator is refused by RotateSecret itself.
	_, err = e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("partner/api-key"), SecretString: aws.String("api-key-1")})
	mustOK(t, err)
	_, err = e.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("partner/api-key"),
		RotationLambdaARN: aws.String(e.lambdaARN("nope")), RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(7)}})
	if !isCode(err, "InvalidParameterException") {
		t.Fatalf("RotateSecret with an unknown rotator: %v", err)
	}

	rot, err := e.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("partner/api-key"),
		RotationLambdaARN: aws.String(put.ARN), RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(7)}})
	mustOK(t, err)
	token := aws.ToString(rot.VersionId)
	// The failed attempt: testSecret refused, AWSCURRENT unchanged, the
	// pending version kept.
	testutil.WaitFor(t, 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(steps, ","), "testSecret")
	})
	testutil.WaitFor(t, 10*time.Second, func() bool {
		d, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("partner/api-key")})
		mustOK(t, err)
		st := d.VersionIdsToStages[token]
		return len(st) == 1 && st[0] == "AWSPENDING"
	})
	cur, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("partner/api-key")})
	mustOK(t, err)
	if aws.ToString(cur.SecretString) != "api-key-1" {
		t.Fatalf("AWSCURRENT changed after a failed testSecret: %q", aws.ToString(cur.SecretString))
	}
	// The failure is visible in DescribeSecret's SigilRotationStatus.
	status := describeRaw(t, e, "partner/api-key")
	if !strings.Contains(status, `"SigilRotationStatus"`) || !strings.Contains(status, "testSecret") {
		t.Fatalf("DescribeSecret after the failure: %s", status)
	}

	// The retry uses the same token and finishes: the runner retries after
	// its backoff (a minute at first), and RotateSecret with the pending
	// token asks for the retry now.
	mu.Lock()
	failTest = false
	mu.Unlock()
	_, err = e.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("partner/api-key"), ClientRequestToken: aws.String(token)})
	mustOK(t, err)
	d := e.waitRotated("partner/api-key", time.Now().Add(-time.Minute))
	if st := d.VersionIdsToStages[token]; len(st) != 1 || st[0] != "AWSCURRENT" {
		t.Fatalf("the retried rotation's version %s has stages %v", token, st)
	}
	cur, err = e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("partner/api-key")})
	mustOK(t, err)
	if aws.ToString(cur.SecretString) != "api-key-2" {
		t.Fatalf("AWSCURRENT after the rotation: %q", aws.ToString(cur.SecretString))
	}
	mu.Lock()
	n := strings.Count(strings.Join(steps, ","), "createSecret")
	mu.Unlock()
	if n < 2 {
		t.Fatalf("steps %v: want the retry to start again at createSecret", steps)
	}
}

// describeRaw calls DescribeSecret with a plain signed request and returns
// the body, for fields the SDK does not model.
func describeRaw(t *testing.T, e *dynEnv, id string) string {
	t.Helper()
	body := []byte(`{"SecretId":"` + id + `"}`)
	req, err := http.NewRequest("POST", e.srv.URL()+"/", bytes.NewReader(body))
	mustOK(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.DescribeSecret")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: e.srv.AccessKeyID, SecretAccessKey: e.srv.SecretAccessKey}
	mustOK(t, v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "secretsmanager", e.srv.Config.Region, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	mustOK(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	mustOK(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DescribeSecret: %d %s", resp.StatusCode, b)
	}
	return string(b)
}
