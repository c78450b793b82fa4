package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// scenario sets up the design's scenario on a real server: an OIDC provider
// for a test issuer (https, pinned by thumbprint), application-role trusting
// system:serviceaccount:default:my-app, a policy reading
// my-app/database-credentials-*, and two secrets.
func scenario(t *testing.T) (*testserver.Server, *testutil.OIDCIssuer, string) {
	t.Helper()
	srv := testserver.StartServer(t)
	issuer := testutil.StartOIDCIssuer(t)
	ctx := context.Background()
	ic := iam.NewFromConfig(srv.AWSConfig())
	prov, err := ic.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String(issuer.URL), ClientIDList: []string{"sts.amazonaws.com"}, ThumbprintList: []string{issuer.Thumbprint}})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(issuer.URL, "https://")
	acct := strings.Split(aws.ToString(prov.OpenIDConnectProviderArn), ":")[4]
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRoleWithWebIdentity",
	  "Principal":{"Federated":%q},"Condition":{"StringEquals":{"%s:sub":"system:serviceaccount:default:my-app"}}}]}`,
		aws.ToString(prov.OpenIDConnectProviderArn), host)
	role, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("application-role"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
	  "Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],
	  "Resource":"arn:aws:secretsmanager:us-east-1:%s:secret:my-app/database-credentials-*"}]}`, acct)
	if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("application-role"), PolicyName: aws.String("db"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	for _, name := range []string{"my-app/database-credentials", "other-app/database-credentials"} {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(`{"username":"app"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	return srv, issuer, aws.ToString(role.Role.Arn)
}

func anonymousSTS(srv *testserver.Server) *sts.Client {
	cfg := srv.AWSConfig()
	cfg.Credentials = aws.AnonymousCredentials{}
	return sts.NewFromConfig(cfg)
}

func TestWorkloadIdentityScenario(t *testing.T) {
	srv, issuer, roleARN := scenario(t)
	ctx := context.Background()
	stsc := anonymousSTS(srv)
	out, err := stsc.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("pod-1"),
		WebIdentityToken: aws.String(issuer.MintToken(testutil.TokenNamespace("default"), testutil.TokenServiceAccount("my-app"), testutil.TokenAudience("sts.amazonaws.com"))),
	})
	if err != nil {
		t.Fatalf("AssumeRoleWithWebIdentity: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || aws.ToString(c.SessionToken) == "" {
		t.Fatalf("session credentials look wrong: %s", aws.ToString(c.AccessKeyId))
	}
	cfg := testserver.AWSConfigFor(srv.URL(), "us-east-1", aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	sm := secretsmanager.NewFromConfig(cfg)
	if _, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/database-credentials")}); err != nil {
		t.Fatalf("the workload cannot read its secret: %v", err)
	}
	if _, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("other-app/database-credentials")}); !isCode(err, "AccessDeniedException") {
		t.Fatalf("the workload read another secret: %v", err)
	}
	who, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || !strings.HasSuffix(aws.ToString(who.Arn), ":assumed-role/application-role/pod-1") {
		t.Fatalf("GetCallerIdentity: %v %v", who, err)
	}
	// The key without its token is nothing.
	noToken := secretsmanager.NewFromConfig(testserver.AWSConfigFor(srv.URL(), "us-east-1", aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), ""))
	if _, err := noToken.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/database-credentials")}); err == nil {
		t.Fatal("a session key without its token was accepted")
	}
	// Revoking the role's sessions stops these credentials at once.
	root := &aws.Credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey}
	if code, body := sysCall(t, srv.URL(), "/v1/sessions/revoke", server.RevokeSessionsRequest{RoleARN: roleARN}, nil, root); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	testutil.WaitFor(t, time.Second, func() bool {
		_, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("my-app/database-credentials")})
		return err != nil
	})
}

func TestWorkloadIdentityRejections(t *testing.T) {
	srv, issuer, roleARN := scenario(t)
	ctx := context.Background()
	stsc := anonymousSTS(srv)
	good := []testutil.TokenOption{testutil.TokenNamespace("default"), testutil.TokenServiceAccount("my-app"), testutil.TokenAudience("sts.amazonaws.com")}
	with := func(extra ...testutil.TokenOption) []testutil.TokenOption {
		return append(append([]testutil.TokenOption{}, good...), extra...)
	}
	tests := []struct {
		name  string
		token string
		code  string
	}{
		{"another service account", issuer.MintToken(testutil.TokenNamespace("default"), testutil.TokenServiceAccount("intruder"), testutil.TokenAudience("sts.amazonaws.com")), "AccessDenied"},
		{"expired", issuer.MintToken(with(testutil.TokenExpiry(time.Now().Add(-time.Hour)), testutil.TokenIssuedAt(time.Now().Add(-2*time.Hour)))...), "ExpiredTokenException"},
		{"another audience", issuer.MintToken(testutil.TokenNamespace("default"), testutil.TokenServiceAccount("my-app"), testutil.TokenAudience("someone-else")), "InvalidIdentityToken"},
		{"forged signature", issuer.MintTokenWithForeignKey(t, good...), "InvalidIdentityToken"},
		{"alg none", issuer.MintUnsignedToken(good...), "InvalidIdentityToken"},
		{"HS256 with the public key", issuer.MintHS256WithPublicKey(good...), "InvalidIdentityToken"},
		{"garbage", "not-a-jwt", "InvalidIdentityToken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stsc.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
				RoleArn: aws.String(roleARN), RoleSessionName: aws.String("x1"), WebIdentityToken: aws.String(tc.token)})
			if !isCode(err, tc.code) {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
}

// TestRevokeSessionsRefusesAFutureTime checks that a role revocation may
// not name a future time: revocations are never shortened, so one in the
// future would lock the role out of new sessions until then.
func TestRevokeSessionsRefusesAFutureTime(t *testing.T) {
	srv, issuer, roleARN := scenario(t)
	root := &aws.Credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey}
	future := time.Now().Add(24 * time.Hour)
	code, body := sysCall(t, srv.URL(), "/v1/sessions/revoke", server.RevokeSessionsRequest{RoleARN: roleARN, Before: &future}, nil, root)
	if code == 200 || !strings.Contains(body, "InvalidParameterException") {
		t.Fatalf("revoke before tomorrow: %d %s, want InvalidParameterException", code, body)
	}
	_, err := anonymousSTS(srv).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("pod-2"),
		WebIdentityToken: aws.String(issuer.MintToken(testutil.TokenNamespace("default"), testutil.TokenServiceAccount("my-app"), testutil.TokenAudience("sts.amazonaws.com"))),
	})
	if err != nil {
		t.Fatalf("a new session after the refused revocation: %v", err)
	}
	past := time.Now().Add(-time.Minute)
	if code, body := sysCall(t, srv.URL(), "/v1/sessions/revoke", server.RevokeSessionsRequest{RoleARN: roleARN, Before: &past}, nil, root); code != 200 {
		t.Fatalf("revoke before a minute ago: %d %s", code, body)
	}
}
