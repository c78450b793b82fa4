package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/apply"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// applyTestServer starts a server and isolates the test from the
// developer's AWS environment, so that only --credentials-file signs.
func applyTestServer(t *testing.T) (*testserver.Server, []string) {
	t.Helper()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := testserver.StartServer(t)
	conn := []string{"--endpoint", srv.URL(), "--region", srv.Config.Region,
		"--credentials-file", filepath.Join(srv.Config.DataDir, server.RootCredentialsFile)}
	return srv, conn
}

// runApplyCmd runs sigil apply with args and returns what it printed.
func runApplyCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newApplyCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

var exampleYAML = filepath.Join("..", "..", "examples", "ecommerce", "sigil.yaml")

func TestApplyCmdExample(t *testing.T) {
	// The example's database password; the database itself is not needed
	// here (registration does not connect without --verify, and nothing
	// reads the dynamic secret). internal/apply's example test uses a real
	// one.
	t.Setenv("SHOP_DB_ADMIN_PASSWORD", "example-admin-password-1")
	srv, conn := applyTestServer(t)
	ctx := context.Background()
	ic := iam.NewFromConfig(srv.AWSConfig())
	roleExists := func() bool {
		_, err := ic.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("application-role")})
		return err == nil
	}

	out, _, err := runApplyCmd(t, append([]string{"-f", exampleYAML, "--dry-run"}, conn...)...)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	for _, want := range []string{"Plan: 7 to create, 0 to update, 0 unchanged.", "+ role", "application-role", "Dry run: nothing was changed."} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if roleExists() {
		t.Fatal("--dry-run created the role")
	}

	out, _, err = runApplyCmd(t, append([]string{"-f", exampleYAML}, conn...)...)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Applied: 7 created, 0 updated, 0 unchanged.") || !roleExists() {
		t.Fatalf("apply output:\n%s", out)
	}

	out, _, err = runApplyCmd(t, append([]string{"-f", exampleYAML}, conn...)...)
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if !strings.Contains(out, "Plan: no changes") || strings.Contains(out, "Applied:") {
		t.Errorf("second apply output:\n%s", out)
	}

	out, _, err = runApplyCmd(t, append([]string{"-f", exampleYAML, "--json", "--update-values"}, conn...)...)
	if err != nil {
		t.Fatalf("json apply: %v", err)
	}
	var report struct {
		DryRun bool              `json:"dryRun"`
		Plan   *apply.PlanResult `json:"plan"`
		Result *apply.Result     `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if report.Plan == nil || len(report.Plan.Changes) != 7 || !report.Plan.UpdateValues {
		t.Fatalf("json report: %s", out)
	}
	// Secret values are compared and equal; a database password is
	// write-only, so --update-values sends it again: the only change.
	for _, c := range report.Plan.Changes {
		if want := apply.ActionNone; c.Kind == apply.KindDatabase {
			if c.Action != apply.ActionUpdate {
				t.Errorf("database change %+v, want an update", c)
			}
		} else if c.Action != want {
			t.Errorf("json change %+v", c)
		}
	}
}

func TestApplyCmdDryRunOfChange(t *testing.T) {
	srv, conn := applyTestServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sigil.yaml")
	write := func(desc string) {
		src := "version: 1\nroles:\n  - name: r\n    description: " + desc + "\n" +
			"    trustPolicy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: \"sts:AssumeRole\"}]}\n"
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("before")
	if _, _, err := runApplyCmd(t, append([]string{"-f", path}, conn...)...); err != nil {
		t.Fatal(err)
	}
	write("after")
	out, _, err := runApplyCmd(t, append([]string{"-f", path, "--dry-run"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "~ role") || !strings.Contains(out, "- update description") || !strings.Contains(out, "1 to update") {
		t.Errorf("dry-run output:\n%s", out)
	}
	role, err := iam.NewFromConfig(srv.AWSConfig()).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(role.Role.Description) != "before" {
		t.Errorf("--dry-run changed the description to %q", aws.ToString(role.Role.Description))
	}
}

func TestApplyCmdInvalidFile(t *testing.T) {
	_, conn := applyTestServer(t)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	src := "version: 1\nusers:\n  - name: ci\n    tagz: {a: b}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runApplyCmd(t, append([]string{"-f", path}, conn...)...)
	if err == nil {
		t.Fatal("apply of an invalid file succeeded")
	}
	for _, want := range []string{path, "line 4", `unknown key "tagz"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if out != "" {
		t.Errorf("an invalid file printed a plan:\n%s", out)
	}
	if _, _, err := runApplyCmd(t, conn...); err == nil || !strings.Contains(err.Error(), "file") {
		t.Errorf("apply without -f: %v", err)
	}
}

// TestApplyCmdNeverPrintsValues plants values in the environment and a
// value file, runs every kind of apply (create, update-values, JSON, a
// failing one) and searches everything printed and the server's log.
func TestApplyCmdNeverPrintsValues(t *testing.T) {
	srv, conn := applyTestServer(t)
	ctx := context.Background()
	const planted, replaced, inFile = "planted-value-5b8e2d1f", "replaced-value-0c4a77e3", "file-value-91d3c6aa"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "v.txt"), []byte(inFile), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sigil.yaml")
	src := "version: 1\nsecrets:\n  - name: app/env\n    valueEnv: SIGIL_APPLY_TEST_VALUE\n  - name: app/file\n    valueFile: v.txt\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	run := func(wantErr bool, args ...string) {
		t.Helper()
		out, errOut, err := runApplyCmd(t, append(args, conn...)...)
		seen.WriteString(out + errOut)
		if err != nil {
			seen.WriteString(err.Error())
		}
		if (err != nil) != wantErr {
			t.Fatalf("apply %v: %v\n%s", args, err, out)
		}
	}
	t.Setenv("SIGIL_APPLY_TEST_VALUE", planted)
	run(false, "-f", path)
	run(false, "-f", path, "--json")
	t.Setenv("SIGIL_APPLY_TEST_VALUE", replaced)
	run(false, "-f", path, "--dry-run", "--update-values")
	run(false, "-f", path, "--update-values", "--json")
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	v, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/env")})
	if err != nil || aws.ToString(v.SecretString) != replaced {
		t.Fatalf("--update-values did not replace the value: %v", err)
	}
	bad := src + "  - name: app/rejected\n    valueEnv: SIGIL_APPLY_TEST_VALUE\n    resourcePolicy: '{\"Statement\": 5}'\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	run(true, "-f", path)
	run(true, "-f", path, "--json")
	if !strings.Contains(seen.String(), "rolled back") {
		t.Errorf("the failing apply did not report its rollback:\n%s", seen.String())
	}
	for _, v := range []string{planted, replaced, inFile} {
		if strings.Contains(seen.String(), v) {
			t.Fatalf("value %q was printed:\n%s", v, seen.String())
		}
		if strings.Contains(srv.Logs.String(), v) {
			t.Fatalf("value %q is in the server log", v)
		}
	}
}

func TestApplyHelp(t *testing.T) {
	cmd := newApplyCmd()
	help := cmd.Long + cmd.Example
	for _, want := range []string{"never deleted", "--prune", "never creates access keys", "--update-values", "rolled", "{{account}}", "--dry-run"} {
		if !strings.Contains(help, want) {
			t.Errorf("apply help does not mention %q", want)
		}
	}
	for _, flag := range []string{"file", "dry-run", "update-values", "json", "account-id", "endpoint", "credentials-file"} {
		if cmd.Flags().Lookup(flag) == nil {
			t.Errorf("no --%s flag", flag)
		}
	}
}
