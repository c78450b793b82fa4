package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// records returns every event record of the server's audit log.
func records(t *testing.T, srv *testserver.Server) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := audit.Query(srv.Config.AuditDir, audit.Filter{}, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditRecordsEveryDecision(t *testing.T) {
	srv := testserver.StartServer(t)
	ctx := context.Background()
	root := secretsmanager.NewFromConfig(srv.AWSConfig())
	if _, err := root.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("audit/db"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	user := newUser(t, srv, iam.NewFromConfig(srv.AWSConfig()), "auditee", "")
	if _, err := user.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("audit/db")}); !isCode(err, "AccessDeniedException") {
		t.Fatalf("want a denial, got %v", err)
	}
	if _, err := root.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("audit/db")}); err != nil {
		t.Fatal(err)
	}
	var allowedRead, deniedRead, create, createUser bool
	for _, r := range records(t, srv) {
		switch {
		case r.EventName == "GetSecretValue" && r.AdditionalEventData.Decision == "deny":
			deniedRead = r.AdditionalEventData.Reason == "implicit deny" && strings.HasSuffix(r.UserIdentity.ARN, ":user/auditee") && r.ErrorCode == "AccessDeniedException"
		case r.EventName == "GetSecretValue" && r.AdditionalEventData.Decision == "allow":
			allowedRead = r.UserIdentity.Type == "Root" && r.AdditionalEventData.ReturnsSecret && r.EventSource == "secretsmanager.amazonaws.com"
		case r.EventName == "CreateSecret":
			create = !r.ReadOnly
		case r.EventName == "CreateUser":
			createUser = r.EventSource == "iam.amazonaws.com"
		}
	}
	if !allowedRead || !deniedRead || !create || !createUser {
		t.Errorf("audit trail incomplete: allowed read %t, denied read with reason %t, create %t, iam CreateUser %t",
			allowedRead, deniedRead, create, createUser)
	}
	stop(t, srv)
	if out, err := exec.Command("go", "run", "../../cmd/sigil", "audit", "verify", srv.Config.AuditDir).CombinedOutput(); err != nil {
		t.Fatalf("sigil audit verify: %v\n%s", err, out)
	}
}

func TestAuditNeverHoldsSecretValues(t *testing.T) {
	srv := testserver.StartServer(t)
	ctx := context.Background()
	const planted = "audit-planted-c0ffee-value"
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("plant/audit"), SecretString: aws.String(planted)})
	if err != nil {
		t.Fatal(err)
	}
	sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: out.ARN, SecretString: aws.String(planted + "-2")})
	sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("plant/audit")})
	sm.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"plant/audit", "plant/missing"}})
	// Failing paths carry the value too.
	sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("plant/audit"), SecretString: aws.String(planted)})
	sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("plant/missing"), SecretString: aws.String(planted)})
	stop(t, srv)
	testutil.AssertNotInDir(t, srv.Config.AuditDir, planted)
	if strings.Contains(srv.Logs.String(), planted) {
		t.Errorf("the server log holds the planted value")
	}
	// sigil audit hash finds the value's HMAC: the log proves it was
	// returned without holding it.
	hashOut, err := exec.Command("go", "run", "../../cmd/sigil", "audit", "hash", "--data-dir", srv.Config.DataDir,
		"--search", srv.Config.AuditDir, planted+"-2").CombinedOutput()
	if err != nil || !strings.Contains(string(hashOut), "GetSecretValue") || !strings.Contains(string(hashOut), "PutSecretValue") {
		t.Errorf("sigil audit hash --search did not find the returned value: %v\n%s", err, hashOut)
	}
}

// TestAuditFailsClosed puts the audit log on a tiny tmpfs, fills it, and
// checks that secret reads and writes fail with a 503-class error and
// /readyz fails until space is freed.
func TestAuditFailsClosed(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test mounts a tmpfs and needs root, which CI has")
		}
		t.Skip("needs root to mount a small tmpfs (run the suite as root, as CI does)")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	srv := testserver.StartServer(t, testserver.WithConfig(func(c *server.Config) { c.AuditDir = filepath.Join(mnt, "audit") }))
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("fc/db"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // the filesystem is full
		}
	}
	f.Close()
	var failed error
	testutil.WaitFor(t, 10*time.Second, func() bool {
		_, failed = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("fc/db")})
		return failed != nil
	})
	if !isCode(failed, "ServiceUnavailable") && !isCode(failed, "InternalServiceError") {
		t.Fatalf("secret read with a full audit disk: %v, want a 503-class error", failed)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("fc/db"), SecretString: aws.String("w")}); err == nil {
		t.Fatalf("write succeeded while the audit log cannot be written")
	}
	if code, _ := get(t, srv.URL()+"/readyz"); code != 503 {
		t.Errorf("readyz = %d while audit fails, want 503", code)
	}
	os.Remove(filler)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		_, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("fc/db")})
		return err == nil
	})
	if code, _ := get(t, srv.URL()+"/readyz"); code != 200 {
		t.Errorf("readyz = %d after recovery", code)
	}
}

func TestAuditQueryAPI(t *testing.T) {
	srv := testserver.StartServer(t)
	root := &aws.Credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey}
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	sm.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{})
	var page audit.QueryResponse
	if code, body := sysCall(t, srv.URL(), "/v1/audit", audit.QueryRequest{}, &page, root); code != 200 {
		t.Fatalf("audit query: %d %s", code, body)
	}
	found := false
	for _, raw := range page.Records {
		found = found || strings.Contains(string(raw), `"eventName":"ListSecrets"`)
	}
	if !found {
		t.Errorf("the audit API did not return the ListSecrets record")
	}
	if code, _ := sysCall(t, srv.URL(), "/v1/audit", audit.QueryRequest{}, nil, nil); code < 400 {
		t.Errorf("unsigned audit query accepted")
	}
}
