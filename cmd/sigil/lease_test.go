package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// userCreds reads my-app/db with two access keys of one IAM user: two
// sessions, so two database users.
func (f *dbFixture) userCreds(t *testing.T) (server.DynamicCredential, server.DynamicCredential) {
	t.Helper()
	ctx := context.Background()
	ic := iam.NewFromConfig(f.srv.AWSConfig())
	if _, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:my-app/*"}]}`
	if _, err := ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("app"), PolicyName: aws.String("read"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	var out [2]server.DynamicCredential
	for i := range out {
		key, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("app")})
		if err != nil {
			t.Fatal(err)
		}
		sm := secretsmanager.NewFromConfig(testserver.AWSConfigFor(f.srv.URL(), f.srv.Config.Region,
			aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), ""))
		v, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/db")})
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(aws.ToString(v.SecretString)), &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out[0], out[1]
}

func TestLeaseCmd(t *testing.T) {
	f := newDBFixture(t)
	ctx := context.Background()
	f.putShop(t)
	f.putSecret(t)
	c := f.cred(t, "my-app/db")

	out := f.must(t, newLeaseCmd, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "LEASE ID") || !strings.Contains(lines[0], "USERNAME") ||
		!strings.Contains(lines[1], c.Username) || !strings.Contains(lines[1], "active") || !strings.HasPrefix(lines[1], "my-app/db/") {
		t.Fatalf("lease list printed:\n%s", out)
	}
	id := strings.Fields(lines[1])[0]

	var listed server.LeasesResponse
	if err := json.Unmarshal([]byte(f.must(t, newLeaseCmd, "list", "my-app/db/", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Leases) != 1 || listed.Leases[0].ID != id || listed.Leases[0].Username != c.Username {
		t.Fatalf("lease list --json: %+v", listed)
	}
	if out := f.must(t, newLeaseCmd, "list", "other/"); strings.Contains(out, id) {
		t.Fatalf("a prefix that matches nothing listed:\n%s", out)
	}

	out = f.must(t, newLeaseCmd, "get", id)
	for _, want := range []string{"Lease ID:", id, "Username:", c.Username, "State:", "active", "Secret:", "my-app/db", "postgresql://"} {
		if !strings.Contains(out, want) {
			t.Errorf("lease get lacks %q:\n%s", want, out)
		}
	}

	before := listed.Leases[0].Expires
	out = f.must(t, newLeaseCmd, "renew", id, "--increment", "90m")
	if !strings.Contains(out, "Renewed lease "+id) {
		t.Fatalf("renew printed %q", out)
	}
	var renewed server.LeaseInfo
	if err := json.Unmarshal([]byte(f.must(t, newLeaseCmd, "get", id, "--json")), &renewed); err != nil {
		t.Fatal(err)
	}
	if !renewed.Expires.After(before) || renewed.Expires.After(renewed.MaxExpires) {
		t.Fatalf("renewed lease expires %s (was %s, max %s)", renewed.Expires, before, renewed.MaxExpires)
	}
	if _, err := f.run(t, newLeaseCmd, "renew", "my-app/db/ffffffffffffffffffffffffffffffff"); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("renewing an unknown lease: %v", err)
	}
	if err := pgLogin(ctx, c.Host, c.Port, c.Username, c.Password, c.DBName); err != nil {
		t.Fatalf("login after renew: %v", err)
	}

	out = f.must(t, newLeaseCmd, "revoke", id)
	if !strings.Contains(out, "Revoked lease "+id+": user "+c.Username+" is revoked.") {
		t.Fatalf("revoke printed %q", out)
	}
	if err := pgLogin(ctx, c.Host, c.Port, c.Username, c.Password, c.DBName); err == nil {
		t.Fatal("the revoked user still logs in")
	}
	if out := f.must(t, newLeaseCmd, "list"); strings.Contains(out, id) {
		t.Fatalf("list without --all shows a revoked lease:\n%s", out)
	}
	if out := f.must(t, newLeaseCmd, "list", "--all"); !strings.Contains(out, id) || !strings.Contains(out, "revoked") {
		t.Fatalf("list --all:\n%s", out)
	}

	// revoke-prefix revokes the users of two sessions at once.
	a, b := f.userCreds(t)
	if a.Username == b.Username {
		t.Fatalf("two sessions got the same user %s", a.Username)
	}
	out = f.must(t, newLeaseCmd, "revoke-prefix", "my-app/db/")
	if !strings.Contains(out, "Revoked 2 leases under my-app/db/.") {
		t.Fatalf("revoke-prefix printed %q", out)
	}
	for _, u := range []server.DynamicCredential{a, b} {
		if err := pgLogin(ctx, u.Host, u.Port, u.Username, u.Password, u.DBName); err == nil {
			t.Fatalf("user %s logs in after revoke-prefix", u.Username)
		}
	}
	if out := f.must(t, newLeaseCmd, "revoke-prefix", "my-app/db/"); !strings.Contains(out, "Revoked 0 leases") {
		t.Fatalf("second revoke-prefix printed %q", out)
	}
	if strings.Contains(f.outputs.String(), f.pg.Password) || strings.Contains(f.outputs.String(), c.Password) {
		t.Fatal("a password appeared in a command's output")
	}
}
