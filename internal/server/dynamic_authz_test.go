package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// user creates an IAM user with the inline policy and returns its key.
func (e *dynEnv) user(name, policy string) aws.Credentials {
	e.t.Helper()
	ctx := context.Background()
	_, err := e.ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
	mustOK(e.t, err)
	_, err = e.ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)})
	mustOK(e.t, err)
	key, err := e.ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	mustOK(e.t, err)
	return aws.Credentials{AccessKeyID: aws.ToString(key.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(key.AccessKey.SecretAccessKey)}
}

func (e *dynEnv) smAs(c aws.Credentials) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(testserver.AWSConfigFor(e.srv.URL(), "us-east-1", c.AccessKeyID, c.SecretAccessKey, ""))
}

// wantCall expects a native call signed with creds to answer code ("" for
// success).
func (e *dynEnv) wantCall(creds aws.Credentials, path string, in any, code string) {
	e.t.Helper()
	status, body := e.call(&creds, path, in, nil)
	if code == "" && status != 200 || code != "" && !strings.Contains(body, code) {
		e.t.Fatalf("%s as %s: %d %s, want %q", path, creds.AccessKeyID, status, body, code)
	}
}

// The statements of a dynamic secret run as a database's privileged
// login: putting one needs sigil:UseDatabase on that database, not only
// permission on the secret.
func TestPutDynamicSecretNeedsTheDatabase(t *testing.T) {
	e := newDynEnv(t)
	e.must("/v1/databases/put", e.database("shop"), nil)
	e.must("/v1/databases/put", e.database("billing"), nil)
	team := e.user("team", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"sigil:PutDynamicSecret","Resource":"arn:aws:secretsmanager:*:*:secret:team/*"},
		{"Effect":"Allow","Action":"sigil:UseDatabase","Resource":"arn:aws:sigil:*:*:database/shop"}]}`)
	req := server.DynamicSecretRequest{Name: "team/db", Database: "billing", DefaultTTL: "1h",
		CreationStatements: []string{`ALTER ROLE ` + e.pg.User + ` PASSWORD 'taken-over-password'`}}
	e.wantCall(team, "/v1/dynamic-secrets/put", req, "AccessDeniedException")
	e.wantError("/v1/dynamic-secrets/get", server.NameRequest{Name: "team/db"}, "ResourceNotFoundException")
	req.Database, req.CreationStatements = "shop", grantProducts
	e.wantCall(team, "/v1/dynamic-secrets/put", req, "")
	// Moving it to a database the caller may not use is refused as well.
	req.Database = "billing"
	e.wantCall(team, "/v1/dynamic-secrets/put", req, "AccessDeniedException")
}

// Moving a dynamic secret, or its database, while users are live would
// make revocation look in the wrong place: both are refused until the
// leases are revoked.
func TestMovingLiveLeasesIsRefused(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	e.must("/v1/databases/put", e.database("shop"), nil)
	e.must("/v1/databases/put", e.database("other"), nil)
	e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "app/db", Database: "shop", DefaultTTL: "1h", CreationStatements: grantProducts}, nil)
	getCred(t, e.sm, "app/db")
	e.wantError("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "app/db", Database: "other", DefaultTTL: "1h"}, "InvalidRequestException")
	moved := e.database("shop")
	moved.DBName = "elsewhere"
	e.wantError("/v1/databases/put", moved, "InvalidRequestException")
	e.must("/v1/leases/revoke-prefix", server.LeaseRequest{Prefix: "app/db/"}, nil)
	e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "app/db", Database: "other", DefaultTTL: "1h", CreationStatements: grantProducts}, nil)

	// A secret scheduled for deletion is refused before its configuration
	// changes.
	_, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/db")})
	mustOK(t, err)
	e.wantError("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: "app/db", Database: "shop", DefaultTTL: "2h"}, "InvalidRequestException")
	var cfg server.DynamicSecretResponse
	e.must("/v1/dynamic-secrets/get", server.NameRequest{Name: "app/db"}, &cfg)
	if cfg.Database != "other" || cfg.DefaultTTL != "1h0m0s" {
		t.Fatalf("a refused put changed the configuration: %+v", cfg)
	}
}

// Purging secret "app" revokes its leases, not those of "app/db".
func TestPurgeRevokesOnlyItsOwnLeases(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	e.must("/v1/databases/put", e.database("shop"), nil)
	for _, n := range []string{"app", "app/db"} {
		e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: n, Database: "shop", DefaultTTL: "1h", CreationStatements: grantProducts}, nil)
	}
	getCred(t, e.sm, "app")
	child := getCred(t, e.sm, "app/db")
	_, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	mustOK(t, err)
	var ls server.LeasesResponse
	e.must("/v1/leases/list", server.LeaseRequest{Prefix: "app/"}, &ls)
	if len(ls.Leases) != 1 || ls.Leases[0].Secret != "app/db" || ls.Leases[0].Username != child.Username {
		t.Fatalf("after purging app, live leases %+v; want only app/db's", ls.Leases)
	}
	if conn, err := login(ctx, child); err != nil {
		t.Fatalf("app/db's user stopped working when app was purged: %v", err)
	} else {
		conn.Close(ctx)
	}
}

// A Deny on part of a prefix is honoured by the prefix calls: list hides
// those leases and revoke-prefix refuses, revoking nothing.
func TestLeasePrefixCallsHonourPerLeaseDenies(t *testing.T) {
	e := newDynEnv(t)
	e.must("/v1/databases/put", e.database("shop"), nil)
	for _, n := range []string{"dev/db", "prod/db"} {
		e.must("/v1/dynamic-secrets/put", server.DynamicSecretRequest{Name: n, Database: "shop", DefaultTTL: "1h", CreationStatements: grantProducts}, nil)
		getCred(t, e.sm, n)
	}
	ops := e.user("ops", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["sigil:ListLeases","sigil:RevokeLease"],"Resource":"arn:aws:sigil:*:*:lease/*"},
		{"Effect":"Deny","Action":["sigil:ListLeases","sigil:RevokeLease"],"Resource":"arn:aws:sigil:*:*:lease/prod/*"}]}`)
	var ls server.LeasesResponse
	if code, body := e.call(&ops, "/v1/leases/list", server.LeaseRequest{}, &ls); code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	if len(ls.Leases) != 1 || ls.Leases[0].Secret != "dev/db" {
		t.Fatalf("list as ops: %+v, want only dev/db's lease", ls.Leases)
	}
	e.wantCall(ops, "/v1/leases/revoke-prefix", server.LeaseRequest{Prefix: "d"}, "")
	e.wantCall(ops, "/v1/leases/revoke-prefix", server.LeaseRequest{Prefix: "p"}, "AccessDeniedException")
	var all server.LeasesResponse
	e.must("/v1/leases/list", server.LeaseRequest{Prefix: "prod/"}, &all)
	if len(all.Leases) != 1 || all.Leases[0].State != "active" {
		t.Fatalf("prod's lease after a refused revoke-prefix: %+v", all.Leases)
	}
}

// Naming a rotator in RotateSecret needs lambda:InvokeFunction on it, as
// in AWS: a rotator rewrites the value, which RotateSecret alone may not.
func TestRotateSecretNeedsInvokeFunction(t *testing.T) {
	e := newDynEnv(t)
	ctx := context.Background()
	_, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("partner/key"), SecretString: aws.String("k1")})
	mustOK(t, err)
	rotOnly := e.smAs(e.user("rotonly", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"secretsmanager:RotateSecret","Resource":"*"}]}`))
	in := &secretsmanager.RotateSecretInput{SecretId: aws.String("partner/key"), RotationLambdaARN: aws.String(e.lambdaARN("sigil-random")),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}, RotateImmediately: aws.Bool(false)}
	if _, err := rotOnly.RotateSecret(ctx, in); !isCode(err, "AccessDeniedException") || !strings.Contains(err.Error(), "lambda:InvokeFunction") {
		t.Fatalf("RotateSecret without lambda:InvokeFunction: %v", err)
	}
	both := e.smAs(e.user("rotator", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"secretsmanager:RotateSecret","Resource":"*"},
		{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:*:*:function:sigil-random"}]}`))
	if _, err := both.RotateSecret(ctx, in); err != nil {
		t.Fatalf("RotateSecret with lambda:InvokeFunction: %v", err)
	}
}
