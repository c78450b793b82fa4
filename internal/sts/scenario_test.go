package sts_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	stssdk "github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/testutil"
)

// The scenario: an OIDC provider (a Kubernetes cluster's issuer)
// registered in IAM, the role application-role trusting it for the
// service account default/my-app, a policy on the role that reads the
// my-app/database-credentials-* secrets, and two secrets.

const (
	appRole      = "application-role"
	appSecret    = "my-app/database-credentials"
	otherSecret  = "other-app/api-key"
	appSubject   = "system:serviceaccount:default:my-app"
	secretValue  = `{"username":"app","password":"s3cr3t-value-1"}`
	readPolicyNm = "read-my-app-secrets"
)

// scenario is the setup, made with the real SDK clients as root.
type scenario struct {
	h           *harness
	providerARN string
	keyPrefix   string // "<host:port>" of the issuer, as condition keys spell it
	roleARN     string
}

func trustWebIdentity(providerARN, conditions string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"Cluster","Effect":"Allow",`+
		`"Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":%s}]}`, providerARN, conditions)
}

func newScenario(t *testing.T, opts ...harnessOption) *scenario {
	t.Helper()
	h := newHarness(t, opts...)
	ctx := context.Background()
	ic := h.iamClient()
	out, err := ic.CreateOpenIDConnectProvider(ctx, &iamsdk.CreateOpenIDConnectProviderInput{
		Url: aws.String(h.issuer.URL), ClientIDList: []string{testutil.DefaultOIDCAudience},
		ThumbprintList: []string{h.issuer.Thumbprint}})
	mustNoErr(t, err)
	sc := &scenario{h: h, providerARN: aws.ToString(out.OpenIDConnectProviderArn),
		keyPrefix: federation.ConditionKeyPrefix(h.issuer.URL)}
	trust := trustWebIdentity(sc.providerARN, fmt.Sprintf(`{"StringEquals":{"%s:sub":%q,"%s:aud":%q}}`,
		sc.keyPrefix, appSubject, sc.keyPrefix, testutil.DefaultOIDCAudience))
	role, err := ic.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String(appRole), AssumeRolePolicyDocument: aws.String(trust)})
	mustNoErr(t, err)
	sc.roleARN = aws.ToString(role.Role.Arn)
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"ReadAppSecrets","Effect":"Allow",`+
		`"Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],`+
		`"Resource":"arn:aws:secretsmanager:%s:%s:secret:%s-*"}]}`, testRegion, testAccount, appSecret)
	pol, err := ic.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String(readPolicyNm), PolicyDocument: aws.String(policy)})
	mustNoErr(t, err)
	_, err = ic.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String(appRole), PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	sm := h.secretsClient(h.rootConfig())
	for name, value := range map[string]string{appSecret: secretValue, otherSecret: "other-value-2"} {
		_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		mustNoErr(t, err)
	}
	return sc
}

// appToken mints a token for default/my-app (or as the options say).
func (sc *scenario) appToken(opts ...testutil.TokenOption) string {
	return sc.h.issuer.MintToken(append([]testutil.TokenOption{testutil.TokenServiceAccount("my-app")}, opts...)...)
}

// assume calls AssumeRoleWithWebIdentity unsigned through the SDK.
func (sc *scenario) assume(t testing.TB, token string, mutate ...func(*stssdk.AssumeRoleWithWebIdentityInput)) (*stssdk.AssumeRoleWithWebIdentityOutput, error) {
	t.Helper()
	in := &stssdk.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(sc.roleARN), RoleSessionName: aws.String("my-app-session"),
		WebIdentityToken: aws.String(token)}
	for _, m := range mutate {
		m(in)
	}
	return sc.h.stsClient(sc.h.awsConfig("", "", "")).AssumeRoleWithWebIdentity(context.Background(), in)
}

// sessionConfig is an SDK configuration signing with session credentials.
func (sc *scenario) sessionConfig(c *ststypes.Credentials) aws.Config {
	return sc.h.awsConfig(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
}

func TestWebIdentityReadsOnlyItsSecrets(t *testing.T) {
	sc := newScenario(t)
	ctx := context.Background()
	out, err := sc.assume(t, sc.appToken())
	mustNoErr(t, err)

	c := out.Credentials
	if id := aws.ToString(c.AccessKeyId); len(id) != 20 || !strings.HasPrefix(id, "ASIA") {
		t.Errorf("AccessKeyId = %q, want ASIA + 16 characters", id)
	}
	if n := len(aws.ToString(c.SecretAccessKey)); n != 40 {
		t.Errorf("SecretAccessKey has %d characters, want 40", n)
	}
	if aws.ToString(c.SessionToken) == "" || c.Expiration == nil {
		t.Fatalf("credentials lack a session token or expiration: %+v", c)
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::"+testAccount+":assumed-role/"+appRole+"/my-app-session" {
		t.Errorf("AssumedRoleUser.Arn = %q", got)
	}
	if got := aws.ToString(out.AssumedRoleUser.AssumedRoleId); !strings.HasPrefix(got, "AROA") || !strings.HasSuffix(got, ":my-app-session") {
		t.Errorf("AssumedRoleId = %q, want AROA...:my-app-session", got)
	}
	if got := aws.ToString(out.SubjectFromWebIdentityToken); got != appSubject {
		t.Errorf("SubjectFromWebIdentityToken = %q, want %q", got, appSubject)
	}
	if got := aws.ToString(out.Audience); got != testutil.DefaultOIDCAudience {
		t.Errorf("Audience = %q", got)
	}
	if got := aws.ToString(out.Provider); got != sc.providerARN {
		t.Errorf("Provider = %q, want %q", got, sc.providerARN)
	}
	if d := c.Expiration.Sub(sc.h.clock.Now()); d < 59*60e9 || d > 61*60e9 {
		t.Errorf("session lasts %s, want the default hour", d)
	}

	sm := sc.h.secretsClient(sc.sessionConfig(c))
	got, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(appSecret)})
	mustNoErr(t, err)
	if aws.ToString(got.SecretString) != secretValue {
		t.Errorf("read %q, want the stored value", aws.ToString(got.SecretString))
	}
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(otherSecret)})
	wantCode(t, err, "AccessDeniedException")

	ident, err := sc.h.stsClient(sc.sessionConfig(c)).GetCallerIdentity(ctx, &stssdk.GetCallerIdentityInput{})
	mustNoErr(t, err)
	if aws.ToString(ident.Arn) != aws.ToString(out.AssumedRoleUser.Arn) || aws.ToString(ident.Account) != testAccount ||
		aws.ToString(ident.UserId) != aws.ToString(out.AssumedRoleUser.AssumedRoleId) {
		t.Errorf("GetCallerIdentity = %s %s %s", aws.ToString(ident.UserId), aws.ToString(ident.Account), aws.ToString(ident.Arn))
	}

	ev := sc.h.audit.last("secretsmanager.amazonaws.com")
	if ev == nil || ev.Principal == nil || ev.Principal.Session == nil || ev.Principal.Session.FederatedProvider != sc.providerARN {
		t.Fatalf("the secret read was not audited with the session: %+v", ev)
	}
	if got := ev.Principal.Session.Claims[sc.keyPrefix+":sub"]; got != appSubject {
		t.Errorf("session claims carry sub %q, want %q", got, appSubject)
	}
}

func TestWebIdentityRejections(t *testing.T) {
	sc := newScenario(t)
	h := sc.h
	ctx := context.Background()
	ic := h.iamClient()
	// A role that also requires the prod namespace: a condition the
	// default/my-app token does not meet.
	trust := trustWebIdentity(sc.providerARN, fmt.Sprintf(`{"StringEquals":{"%s:sub":%q,"sigil:k8s/namespace":"prod"}}`, sc.keyPrefix, appSubject))
	prodRole, err := ic.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("prod-role"), AssumeRolePolicyDocument: aws.String(trust)})
	mustNoErr(t, err)
	now := h.clock.Now()
	appToken := func() string { return sc.appToken() }

	tests := []struct {
		name   string
		token  func() string
		mutate func(*stssdk.AssumeRoleWithWebIdentityInput)
		code   string
	}{
		{"another service account", func() string { return h.issuer.MintToken(testutil.TokenServiceAccount("intruder")) }, nil, "AccessDenied"},
		{"expired token", func() string {
			return sc.appToken(testutil.TokenIssuedAt(now.Add(-2*3600e9)), testutil.TokenNotBefore(now.Add(-2*3600e9)), testutil.TokenExpiry(now.Add(-60e9)))
		}, nil, "ExpiredTokenException"},
		{"not yet valid", func() string { return sc.appToken(testutil.TokenNotBefore(now.Add(10 * 60e9))) }, nil, "InvalidIdentityToken"},
		{"wrong iss", func() string { return sc.appToken(testutil.TokenIssuer("https://issuer.invalid/cluster")) }, nil, "InvalidIdentityToken"},
		{"iss of the registered host with another path", func() string { return sc.appToken(testutil.TokenIssuer(h.issuer.URL + "/other")) }, nil, "InvalidIdentityToken"},
		{"wrong aud", func() string { return sc.appToken(testutil.TokenAudience("someone-else")) }, nil, "InvalidIdentityToken"},
		{"unknown kid after refresh", func() string { return sc.appToken(testutil.TokenKeyID("no-such-key")) }, nil, "InvalidIdentityToken"},
		{"alg none", func() string { return h.issuer.MintUnsignedToken(testutil.TokenServiceAccount("my-app")) }, nil, "InvalidIdentityToken"},
		{"HS256 keyed with the public key", func() string { return h.issuer.MintHS256WithPublicKey(testutil.TokenServiceAccount("my-app")) }, nil, "InvalidIdentityToken"},
		{"signature by another key", func() string { return h.issuer.MintTokenWithForeignKey(t, testutil.TokenServiceAccount("my-app")) }, nil, "InvalidIdentityToken"},
		{"tampered claims", func() string {
			return testutil.TamperToken(t, h.issuer.MintToken(testutil.TokenServiceAccount("intruder")), func(c map[string]any) { c["sub"] = appSubject })
		}, nil, "InvalidIdentityToken"},
		{"garbage token", func() string { return "not-a-jwt" }, nil, "InvalidIdentityToken"},
		{"trust condition not met", appToken, func(in *stssdk.AssumeRoleWithWebIdentityInput) { in.RoleArn = prodRole.Role.Arn }, "AccessDenied"},
		{"no such role", appToken, func(in *stssdk.AssumeRoleWithWebIdentityInput) {
			in.RoleArn = aws.String("arn:aws:iam::" + testAccount + ":role/nobody")
		}, "AccessDenied"},
		{"duration above MaxSessionDuration", appToken, func(in *stssdk.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(7200) }, "ValidationError"},
		{"duration below 900", appToken, func(in *stssdk.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(600) }, "ValidationError"},
		{"bad session name", appToken, func(in *stssdk.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("has space") }, "ValidationError"},
		{"malformed session policy", appToken, func(in *stssdk.AssumeRoleWithWebIdentityInput) { in.Policy = aws.String(`{"Version":"2012-10-17"`) }, "MalformedPolicyDocument"},
		{"unknown managed session policy", appToken, func(in *stssdk.AssumeRoleWithWebIdentityInput) {
			in.PolicyArns = []ststypes.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::" + testAccount + ":policy/nope")}}
		}, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fetches := h.issuer.JWKSFetches()
			var mutate []func(*stssdk.AssumeRoleWithWebIdentityInput)
			if tt.mutate != nil {
				mutate = append(mutate, tt.mutate)
			}
			out, err := sc.assume(t, tt.token(), mutate...)
			if err == nil {
				t.Fatalf("assumed %s", aws.ToString(out.AssumedRoleUser.Arn))
			}
			wantCode(t, err, tt.code)
			if tt.name == "unknown kid after refresh" && h.issuer.JWKSFetches() <= fetches {
				t.Errorf("an unknown kid did not make the verifier fetch the keys again")
			}
			ev := h.audit.last("sts.amazonaws.com")
			if ev == nil || ev.Allowed || ev.ErrorCode != tt.code {
				t.Errorf("audit event %+v, want a refused AssumeRoleWithWebIdentity with %s", ev, tt.code)
			}
		})
	}
	// None of the refusals leaked the token into the log.
	tok := sc.appToken()
	_, _ = sc.assume(t, tok, func(in *stssdk.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(7200) })
	if strings.Contains(h.logs.String(), tok) {
		t.Error("the server log contains a web identity token")
	}
}

func TestWebIdentitySessionPolicyNarrows(t *testing.T) {
	sc := newScenario(t)
	ctx := context.Background()
	describeOnly := `{"Version":"2012-10-17","Statement":[{"Sid":"DescribeOnly","Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"}]}`
	out, err := sc.assume(t, sc.appToken(), func(in *stssdk.AssumeRoleWithWebIdentityInput) { in.Policy = aws.String(describeOnly) })
	mustNoErr(t, err)
	if out.PackedPolicySize == nil || *out.PackedPolicySize < 1 || *out.PackedPolicySize > 100 {
		t.Errorf("PackedPolicySize = %v, want a percentage", out.PackedPolicySize)
	}
	sm := sc.h.secretsClient(sc.sessionConfig(out.Credentials))
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(appSecret)})
	wantCode(t, err, "AccessDeniedException")
	_, err = sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(appSecret)})
	mustNoErr(t, err)
	// The session policy cannot widen the role: other secrets stay closed.
	_, err = sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(otherSecret)})
	wantCode(t, err, "AccessDeniedException")
}

func TestRoleTrustsSeveralIssuers(t *testing.T) {
	sc := newScenario(t)
	h := sc.h
	ctx := context.Background()
	second := testutil.StartOIDCIssuer(t, testutil.WithOIDCPath("/clusters/b"), testutil.WithOIDCAlgorithm(testutil.OIDCAlgES256))
	ic := h.iamClient()
	out, err := ic.CreateOpenIDConnectProvider(ctx, &iamsdk.CreateOpenIDConnectProviderInput{
		Url: aws.String(second.URL), ClientIDList: []string{testutil.DefaultOIDCAudience}, ThumbprintList: []string{second.Thumbprint}})
	mustNoErr(t, err)
	secondARN, secondPrefix := aws.ToString(out.OpenIDConnectProviderArn), federation.ConditionKeyPrefix(second.URL)
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[`+
		`{"Sid":"ClusterA","Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:sub":%q}}},`+
		`{"Sid":"ClusterB","Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"%s:sub":"system:serviceaccount:batch:*"}}}]}`,
		sc.providerARN, sc.keyPrefix, appSubject, secondARN, secondPrefix)
	_, err = ic.UpdateAssumeRolePolicy(ctx, &iamsdk.UpdateAssumeRolePolicyInput{RoleName: aws.String(appRole), PolicyDocument: aws.String(trust)})
	mustNoErr(t, err)

	tests := []struct {
		name, token, code, statement string
	}{
		{"cluster A, my-app", sc.appToken(), "", "ClusterA"},
		{"cluster B, batch job", second.MintToken(testutil.TokenNamespace("batch"), testutil.TokenServiceAccount("nightly")), "", "ClusterB"},
		// Each statement names its own provider: B's subject pattern does
		// not open the role to cluster A's batch namespace.
		{"cluster A, batch job", h.issuer.MintToken(testutil.TokenNamespace("batch"), testutil.TokenServiceAccount("nightly")), "AccessDenied", ""},
		{"cluster B, my-app", second.MintToken(testutil.TokenServiceAccount("my-app")), "AccessDenied", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sc.assume(t, tt.token)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			mustNoErr(t, err)
			if ev := h.audit.last("sts.amazonaws.com"); ev.Statement != tt.statement {
				t.Errorf("decided by statement %q, want %q", ev.Statement, tt.statement)
			}
		})
	}
}

func TestWebIdentitySessionTags(t *testing.T) {
	sc := newScenario(t)
	h := sc.h
	ctx := context.Background()
	ic := h.iamClient()
	tagsClaim := testutil.TokenClaim(federation.TagsClaim, map[string]any{
		"principal_tags":      map[string][]string{"team": {"payments"}, "env": {"prod"}},
		"transitive_tag_keys": []string{"team"},
	})
	// The application role's trust policy does not allow sts:TagSession.
	_, err := sc.assume(t, sc.appToken(tagsClaim))
	wantCode(t, err, "AccessDenied")

	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"Cluster","Effect":"Allow","Principal":{"Federated":%q},`+
		`"Action":["sts:AssumeRoleWithWebIdentity","sts:TagSession"],"Condition":{"StringEquals":{"%s:sub":%q,"aws:RequestTag/env":"prod"}}}]}`,
		sc.providerARN, sc.keyPrefix, appSubject)
	_, err = ic.UpdateAssumeRolePolicy(ctx, &iamsdk.UpdateAssumeRolePolicyInput{RoleName: aws.String(appRole), PolicyDocument: aws.String(trust)})
	mustNoErr(t, err)
	// Reading the secret now needs the session tag team=payments.
	abac := `{"Version":"2012-10-17","Statement":[{"Sid":"Team","Effect":"Deny","Action":"secretsmanager:*","Resource":"*",` +
		`"Condition":{"StringNotEquals":{"aws:PrincipalTag/team":"payments"}}}]}`
	_, err = ic.PutRolePolicy(ctx, &iamsdk.PutRolePolicyInput{RoleName: aws.String(appRole), PolicyName: aws.String("team-only"), PolicyDocument: aws.String(abac)})
	mustNoErr(t, err)

	out, err := sc.assume(t, sc.appToken(tagsClaim))
	mustNoErr(t, err)
	p, err := h.sts.Principal(ctx, aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SessionToken))
	mustNoErr(t, err)
	if p.Tags["team"] != "payments" || p.Tags["env"] != "prod" {
		t.Errorf("session tags %v", p.Tags)
	}
	mustNoErr(t, sc.readSecret(sc.sessionConfig(out.Credentials)))

	wrongTeam := testutil.TokenClaim(federation.TagsClaim, map[string]any{
		"principal_tags": map[string][]string{"team": {"growth"}, "env": {"prod"}}})
	out, err = sc.assume(t, sc.appToken(wrongTeam))
	mustNoErr(t, err)
	wantCode(t, sc.readSecret(sc.sessionConfig(out.Credentials)), "AccessDeniedException")
	_, err = sc.assume(t, sc.appToken(testutil.TokenClaim(federation.TagsClaim, map[string]any{
		"principal_tags": map[string][]string{"team": {"payments"}, "env": {"dev"}}})))
	wantCode(t, err, "AccessDenied")
}
