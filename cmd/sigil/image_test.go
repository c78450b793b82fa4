package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"sigil.dev/sigil/internal/images"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// runImage runs `sigil image ARGS...` and returns stdout and the error.
func runImage(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newImageCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestImageListAndRevokeCmd(t *testing.T) {
	srv := testserver.StartServer(t)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	creds := filepath.Join(srv.Config.DataDir, server.RootCredentialsFile)
	conn := []string{"--endpoint", srv.URL(), "--region", srv.Config.Region, "--credentials-file", creds}
	ctx := context.Background()
	role, err := iam.NewFromConfig(srv.AWSConfig()).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("app"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"sigil:image"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	var d [32]byte
	_, _ = rand.Read(d[:])
	digest := "sha256:" + hex.EncodeToString(d[:])
	cf := clientFlags{endpoint: srv.URL(), region: srv.Config.Region, credentialsFile: creds}
	var reg images.RegisterResponse
	if err := cf.call(ctx, "POST", "/v1/images/register", images.RegisterRequest{Digest: digest, Repository: "registry.example.com/team/app",
		RoleARN: aws.ToString(role.Role.Arn), PublicKey: base64.StdEncoding.EncodeToString(pub)}, &reg, true); err != nil {
		t.Fatal(err)
	}

	out, err := runImage(t, append([]string{"list"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "DIGEST") || !strings.Contains(out, digest) || !strings.Contains(out, "active") {
		t.Fatalf("list printed:\n%s", out)
	}
	if _, err := runImage(t, append([]string{"revoke", "sha256:nothex"}, conn...)...); err == nil || !strings.Contains(err.Error(), "not an image digest") {
		t.Fatalf("revoking a malformed digest: %v", err)
	}
	out, err = runImage(t, append([]string{"revoke", digest, "--reason", "leaked"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Revoked "+digest) {
		t.Fatalf("revoke printed %q", out)
	}
	out, err = runImage(t, append([]string{"list", "--json"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"revoked":true`) || !strings.Contains(out, `"reason":"leaked"`) {
		t.Fatalf("list --json printed %s", out)
	}
}
