package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
	"sigil.dev/sigil/sdk/sigilcreds"
)

// TestSealExchangeEndToEnd seals an OCI layout image against a real
// server, extracts the bootstrap file from the sealed layer, exchanges it
// with "sigil credentials", reads the allowed secret, is denied another,
// and then loses access when the digest is revoked.
func TestSealExchangeEndToEnd(t *testing.T) {
	srv, conn := applyTestServer(t)
	ctx := context.Background()
	root := srv.AWSConfig()
	id, err := sts.NewFromConfig(root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	const repo = "registry.example.com/shop/my-app"
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"sigil:image"},
	  "Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"sigil:ImageRepository":"` + repo + `"}}}]}`
	ic := iam.NewFromConfig(root)
	role, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("sealed-app"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue",
	  "Resource":"arn:aws:secretsmanager:*:` + *id.Account + `:secret:my-app/db-*"}]}`
	if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("sealed-app"),
		PolicyName: aws.String("read-db"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(root)
	for name, val := range map[string]string{"my-app/db": `{"password":"db-pass-1"}`, "other/secret": "nope"} {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(val)}); err != nil {
			t.Fatal(err)
		}
	}

	src := testLayout(t)
	out := filepath.Join(t.TempDir(), "sealed")
	stdout, stderr, err := runCmd(t, newSealCmd(), append([]string{"--image", "oci:" + src, "--out", "oci:" + out,
		"--role", *role.Role.Arn, "--repository", repo, "--json"}, conn...)...)
	if err != nil {
		t.Fatalf("seal: %v\n%s", err, stderr)
	}
	var res struct{ Reference, Digest, KeyID string }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	b := sealedBootstrap(t, out, res.Digest)
	data, _ := b.MarshalJSON()
	bootPath := filepath.Join(t.TempDir(), "bootstrap.json")
	if err := os.WriteFile(bootPath, data, 0o400); err != nil {
		t.Fatal(err)
	}
	transcript := stdout + stderr

	credsOut, stderr, err := runCmd(t, newCredentialsCmd(), "--bootstrap", bootPath)
	if err != nil {
		t.Fatalf("credentials: %v\n%s", err, stderr)
	}
	transcript += stderr
	var cp credentialProcessOutput
	if err := json.Unmarshal([]byte(credsOut), &cp); err != nil || cp.Version != 1 || cp.SessionToken == "" {
		t.Fatalf("credential_process output %q: %v", credsOut, err)
	}
	app := secretsmanager.NewFromConfig(testserver.AWSConfigFor(srv.URL(), srv.Config.Region, cp.AccessKeyID, cp.SecretAccessKey, cp.SessionToken))
	got, err := app.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/db")})
	if err != nil || *got.SecretString != `{"password":"db-pass-1"}` {
		t.Fatalf("reading the allowed secret: %v", err)
	}
	var ae smithy.APIError
	if _, err := app.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("other/secret")}); !errors.As(err, &ae) || !strings.Contains(ae.ErrorCode(), "AccessDenied") {
		t.Fatalf("reading another secret: %v, want AccessDenied", err)
	}

	// The same from Go in-process, through sdk/sigilcreds.
	p, err := sigilcreds.NewProvider(bootPath)
	if err != nil {
		t.Fatal(err)
	}
	sdkApp := secretsmanager.NewFromConfig(aws.Config{Region: p.Region(), BaseEndpoint: aws.String(p.Endpoint()),
		Credentials: p.Cache(), Retryer: func() aws.Retryer { return aws.NopRetryer{} }})
	if got, err := sdkApp.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/db")}); err != nil || *got.SecretString != `{"password":"db-pass-1"}` {
		t.Fatalf("reading the secret through sigilcreds: %v", err)
	}

	// Revoke the digest: the exchange fails and the session stops working.
	if _, _, err := runCmd(t, newImageCmd(), append([]string{"revoke", res.Digest, "--reason", "test"}, conn...)...); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, _, err := runCmd(t, newCredentialsCmd(), "--bootstrap", bootPath); err == nil || !strings.Contains(err.Error(), "InvalidIdentityToken") {
		t.Fatalf("exchange after revocation: %v, want InvalidIdentityToken", err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		_, err := app.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/db")})
		return err != nil
	})

	// The private key appears nowhere: not in our output, not in the
	// server's log, not in its data directory.
	logs := srv.Logs.String()
	for _, f := range keyForms(b.PrivateKey) {
		if strings.Contains(transcript, f) || strings.Contains(logs, f) {
			t.Fatal("the private key appears in the CLI output or the server log")
		}
	}
	for _, f := range keyForms(b.PrivateKey)[:3] {
		testutil.AssertNotInDir(t, srv.Config.DataDir, f)
	}
}
