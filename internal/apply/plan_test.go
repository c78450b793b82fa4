package apply

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/testutil/testserver"
)

func TestConflicts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	e.apply(t, parse(t, `
version: 1
managedPolicies:
  - name: p
    description: first
    document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}
roles:
  - name: r
    path: /a/
    trustPolicy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: "sts:AssumeRole"}]}
secrets:
  - name: gone
`, dir, nil), Options{})
	if _, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	f := parse(t, `
version: 1
managedPolicies:
  - name: p
    description: second
    document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}
roles:
  - name: r
    path: /b/
    trustPolicy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: "sts:AssumeRole"}]}
users:
  - name: new-user
secrets:
  - name: gone
`, dir, nil)
	_, err := Plan(ctx, e.c, f, Options{})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Plan: %v, want ErrConflict", err)
	}
	for _, want := range []string{`managed-policy "p" (line 4)`, "description", `role "r" (line 8)`, `path is "/a/"`, `secret "gone" (line 14)`, "scheduled for deletion"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := e.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("new-user")}); !isNoSuchEntity(err) {
		t.Errorf("a conflicting plan created a user: %v", err)
	}
}

func TestAccountLookup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	created, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("probe")})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(aws.ToString(created.ARN), ":")[4]
	f := parse(t, "version: 1\n", t.TempDir(), nil)
	t.Run("root", func(t *testing.T) {
		if p := e.plan(t, f, Options{}); p.Account != want {
			t.Errorf("account %q, want %q", p.Account, want)
		}
	})
	t.Run("iam user", func(t *testing.T) {
		if _, err := e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("reader")}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.iam.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("reader"), PolicyName: aws.String("self"),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}`)}); err != nil {
			t.Fatal(err)
		}
		key, err := e.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("reader")})
		if err != nil {
			t.Fatal(err)
		}
		cfg := testserver.AWSConfigFor(e.srv.URL(), e.c.Region, aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), "")
		c := Clients{IAM: iam.NewFromConfig(cfg), Region: e.c.Region}
		p, err := Plan(ctx, c, f, Options{})
		if err != nil || p.Account != want {
			t.Errorf("Plan as an IAM user: %v, account %q", err, p.Account)
		}
	})
	t.Run("explicit", func(t *testing.T) {
		c := e.c
		c.AccountID = "123456789012"
		p, err := Plan(ctx, c, f, Options{})
		if err != nil || p.Account != "123456789012" {
			t.Errorf("explicit account: %v %q", err, p.Account)
		}
	})
	t.Run("denied", func(t *testing.T) {
		if _, err := e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("nobody")}); err != nil {
			t.Fatal(err)
		}
		key, err := e.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("nobody")})
		if err != nil {
			t.Fatal(err)
		}
		cfg := testserver.AWSConfigFor(e.srv.URL(), e.c.Region, aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), "")
		_, err = Plan(ctx, Clients{IAM: iam.NewFromConfig(cfg), Region: e.c.Region}, f, Options{})
		if !errors.Is(err, ErrNoAccount) {
			t.Errorf("Plan without iam:GetUser: %v, want ErrNoAccount", err)
		}
	})
}
