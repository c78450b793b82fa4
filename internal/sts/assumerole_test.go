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
)

// roles is the AssumeRole setup on top of the scenario: an IAM user "ci"
// with its own access key, and roles trusting it in different ways.
type roles struct {
	*scenario
	userARN string
	user    aws.Config
	policy  string // ARN of the managed policy reading the app secrets
}

func trustAWS(principal string, actions []string, condition string) string {
	acts := `"` + strings.Join(actions, `","`) + `"`
	cond := ""
	if condition != "" {
		cond = `,"Condition":` + condition
	}
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"Trust","Effect":"Allow","Principal":{"AWS":%q},"Action":[%s]%s}]}`,
		principal, acts, cond)
}

func newRoles(t *testing.T) *roles {
	t.Helper()
	r := &roles{scenario: newScenario(t)}
	ctx := context.Background()
	ic := r.h.iamClient()
	u, err := ic.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("ci")})
	mustNoErr(t, err)
	r.userARN = aws.ToString(u.User.Arn)
	k, err := ic.CreateAccessKey(ctx, &iamsdk.CreateAccessKeyInput{UserName: aws.String("ci")})
	mustNoErr(t, err)
	r.user = r.h.awsConfig(aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey), "")
	r.policy = "arn:aws:iam::" + testAccount + ":policy/" + readPolicyNm
	return r
}

// role creates a role with the trust policy and the read policy attached.
func (r *roles) role(t *testing.T, name, trust string) string {
	t.Helper()
	ctx := context.Background()
	ic := r.h.iamClient()
	out, err := ic.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	mustNoErr(t, err)
	_, err = ic.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(r.policy)})
	mustNoErr(t, err)
	return aws.ToString(out.Role.Arn)
}

// userPolicy puts an inline policy on the user ci.
func (r *roles) userPolicy(t *testing.T, name, doc string) {
	t.Helper()
	_, err := r.h.iamClient().PutUserPolicy(context.Background(), &iamsdk.PutUserPolicyInput{
		UserName: aws.String("ci"), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
	mustNoErr(t, err)
}

func assumeRole(cfg aws.Config, h *harness, roleARN string, mutate ...func(*stssdk.AssumeRoleInput)) (*stssdk.AssumeRoleOutput, error) {
	in := &stssdk.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("ci-session")}
	for _, m := range mutate {
		m(in)
	}
	return h.stsClient(cfg).AssumeRole(context.Background(), in)
}

func TestAssumeRoleSameAccountRules(t *testing.T) {
	r := newRoles(t)
	direct := r.role(t, "deploy", trustAWS(r.userARN, []string{"sts:AssumeRole"}, ""))
	account := r.role(t, "account-role", trustAWS("arn:aws:iam::"+testAccount+":root", []string{"sts:AssumeRole"}, ""))
	vendor := r.role(t, "vendor", trustAWS(r.userARN, []string{"sts:AssumeRole"}, `{"StringEquals":{"sts:ExternalId":"tenant-42"}}`))

	// A trust policy naming the user needs nothing from its policies.
	out, err := assumeRole(r.user, r.h, direct)
	mustNoErr(t, err)
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::"+testAccount+":assumed-role/deploy/ci-session" {
		t.Errorf("assumed %s", got)
	}
	mustNoErr(t, r.readSecret(r.sessionConfig(out.Credentials)))

	// A trust policy naming the account delegates to the user's policies.
	_, err = assumeRole(r.user, r.h, account)
	wantCode(t, err, "AccessDenied")
	r.userPolicy(t, "assume", fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"Assume","Effect":"Allow","Action":"sts:AssumeRole","Resource":%q}]}`, account))
	_, err = assumeRole(r.user, r.h, account)
	mustNoErr(t, err)

	// ExternalId is offered to the trust policy.
	_, err = assumeRole(r.user, r.h, vendor)
	wantCode(t, err, "AccessDenied")
	_, err = assumeRole(r.user, r.h, vendor, func(in *stssdk.AssumeRoleInput) { in.ExternalId = aws.String("tenant-41") })
	wantCode(t, err, "AccessDenied")
	_, err = assumeRole(r.user, r.h, vendor, func(in *stssdk.AssumeRoleInput) { in.ExternalId = aws.String("tenant-42") })
	mustNoErr(t, err)

	// An explicit Deny in the user's policies refuses even a direct trust.
	r.userPolicy(t, "no-deploy", fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"NoDeploy","Effect":"Deny","Action":"sts:AssumeRole","Resource":%q}]}`, direct))
	_, err = assumeRole(r.user, r.h, direct)
	wantCode(t, err, "AccessDenied")
	ev := r.h.audit.last("sts.amazonaws.com")
	if ev.Allowed || ev.Reason != "explicit deny" || ev.Statement != "NoDeploy" {
		t.Errorf("audit: allowed=%v reason=%q statement=%q, want the explicit deny NoDeploy", ev.Allowed, ev.Reason, ev.Statement)
	}

	// The account root may not assume roles; unknown roles are refused
	// like forbidden ones.
	_, err = assumeRole(r.h.rootConfig(), r.h, direct)
	wantCode(t, err, "AccessDenied")
	_, err = assumeRole(r.user, r.h, "arn:aws:iam::"+testAccount+":role/nobody")
	wantCode(t, err, "AccessDenied")
	_, err = assumeRole(r.user, r.h, vendor, func(in *stssdk.AssumeRoleInput) {
		in.ExternalId = aws.String("tenant-42")
		in.DurationSeconds = aws.Int32(7200)
	})
	wantCode(t, err, "ValidationError")
	_, err = assumeRole(r.user, r.h, vendor, func(in *stssdk.AssumeRoleInput) {
		in.ExternalId = aws.String("tenant-42")
		in.SerialNumber, in.TokenCode = aws.String("arn:aws:iam::"+testAccount+":mfa/ci"), aws.String("123456")
	})
	wantCode(t, err, "AccessDenied")
}

func TestAssumeRoleTagsChainingAndSourceIdentity(t *testing.T) {
	r := newRoles(t)
	ctx := context.Background()
	all := []string{"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"}
	plain := r.role(t, "plain", trustAWS(r.userARN, []string{"sts:AssumeRole"}, ""))
	tagged := r.role(t, "tagged", trustAWS(r.userARN, all, ""))
	chain := r.role(t, "chain", trustAWS(tagged, all, ""))

	withTags := func(in *stssdk.AssumeRoleInput) {
		in.Tags = []ststypes.Tag{{Key: aws.String("team"), Value: aws.String("payments")}, {Key: aws.String("env"), Value: aws.String("dev")}}
		in.TransitiveTagKeys = []string{"team"}
		in.SourceIdentity = aws.String("alice")
	}
	// Tags and a source identity need sts:TagSession and
	// sts:SetSourceIdentity in the trust policy.
	_, err := assumeRole(r.user, r.h, plain, withTags)
	wantCode(t, err, "AccessDenied")
	out, err := assumeRole(r.user, r.h, tagged, withTags)
	mustNoErr(t, err)
	if aws.ToString(out.SourceIdentity) != "alice" || out.PackedPolicySize == nil {
		t.Errorf("SourceIdentity %q, PackedPolicySize %v", aws.ToString(out.SourceIdentity), out.PackedPolicySize)
	}
	first := out.Credentials
	p, err := r.h.sts.Principal(ctx, aws.ToString(first.AccessKeyId), aws.ToString(first.SessionToken))
	mustNoErr(t, err)
	if p.Tags["team"] != "payments" || p.Tags["env"] != "dev" || p.Session.SourceIdentity != "alice" {
		t.Errorf("session tags %v, source identity %q", p.Tags, p.Session.SourceIdentity)
	}

	// Chaining: at most an hour, the transitive tag and the source
	// identity carry over, the other tag does not.
	session := r.sessionConfig(first)
	_, err = assumeRole(session, r.h, chain, func(in *stssdk.AssumeRoleInput) { in.DurationSeconds = aws.Int32(3601) })
	wantCode(t, err, "ValidationError")
	_, err = assumeRole(session, r.h, chain, func(in *stssdk.AssumeRoleInput) {
		in.Tags = []ststypes.Tag{{Key: aws.String("Team"), Value: aws.String("other")}}
	})
	wantCode(t, err, "InvalidParameterValue")
	_, err = assumeRole(session, r.h, chain, func(in *stssdk.AssumeRoleInput) { in.SourceIdentity = aws.String("mallory") })
	wantCode(t, err, "InvalidParameterValue")
	out, err = assumeRole(session, r.h, chain)
	mustNoErr(t, err)
	p, err = r.h.sts.Principal(ctx, aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SessionToken))
	mustNoErr(t, err)
	if p.Tags["team"] != "payments" || p.Tags["env"] != "" || p.Session.SourceIdentity != "alice" {
		t.Errorf("chained session tags %v, source identity %q", p.Tags, p.Session.SourceIdentity)
	}
	if p.ARN != "arn:aws:sts::"+testAccount+":assumed-role/chain/ci-session" {
		t.Errorf("chained session %s", p.ARN)
	}
	ident, err := r.h.stsClient(r.sessionConfig(out.Credentials)).GetCallerIdentity(ctx, &stssdk.GetCallerIdentityInput{})
	mustNoErr(t, err)
	if aws.ToString(ident.Arn) != p.ARN {
		t.Errorf("GetCallerIdentity %s, want %s", aws.ToString(ident.Arn), p.ARN)
	}
	// A session of another role is not trusted by chain.
	other, err := assumeRole(r.user, r.h, plain)
	mustNoErr(t, err)
	_, err = assumeRole(r.sessionConfig(other.Credentials), r.h, chain)
	wantCode(t, err, "AccessDenied")

	// Too many bytes of tags.
	big := make([]ststypes.Tag, 50)
	for i := range big {
		big[i] = ststypes.Tag{Key: aws.String(fmt.Sprintf("k%02d", i)), Value: aws.String(strings.Repeat(fmt.Sprintf("%02d", i), 128))}
	}
	_, err = assumeRole(r.user, r.h, tagged, func(in *stssdk.AssumeRoleInput) { in.Tags = big })
	wantCode(t, err, "PackedPolicyTooLarge")
}

func TestAssumeRoleSessionPolicies(t *testing.T) {
	r := newRoles(t)
	ctx := context.Background()
	role := r.role(t, "deploy", trustAWS(r.userARN, []string{"sts:AssumeRole"}, ""))
	ic := r.h.iamClient()
	describe, err := ic.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("describe-only"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Sid":"Describe","Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"}]}`)})
	mustNoErr(t, err)

	out, err := assumeRole(r.user, r.h, role, func(in *stssdk.AssumeRoleInput) {
		in.PolicyArns = []ststypes.PolicyDescriptorType{{Arn: describe.Policy.Arn}}
	})
	mustNoErr(t, err)
	sm := r.h.secretsClient(r.sessionConfig(out.Credentials))
	wantCode(t, r.readSecret(r.sessionConfig(out.Credentials)), "AccessDeniedException")
	_, err = sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(appSecret)})
	mustNoErr(t, err)

	// A managed session policy that goes away denies everything rather
	// than leaving the session with the whole role.
	_, err = ic.DeletePolicy(ctx, &iamsdk.DeletePolicyInput{PolicyArn: describe.Policy.Arn})
	mustNoErr(t, err)
	_, err = sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(appSecret)})
	wantCode(t, err, "AccessDeniedException")

	_, err = assumeRole(r.user, r.h, role, func(in *stssdk.AssumeRoleInput) { in.Policy = aws.String(`{"Statement":[]}`) })
	wantCode(t, err, "MalformedPolicyDocument")
	_, err = assumeRole(r.user, r.h, role, func(in *stssdk.AssumeRoleInput) { in.Policy = aws.String(strings.Repeat(" ", 2049)) })
	wantCode(t, err, "ValidationError")
}

func TestGetCallerIdentity(t *testing.T) {
	r := newRoles(t)
	ctx := context.Background()
	tests := []struct {
		name string
		cfg  aws.Config
		arn  string
		user string
	}{
		{"root", r.h.rootConfig(), "arn:aws:iam::" + testAccount + ":root", testAccount},
		{"user", r.user, r.userARN, "AIDA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := r.h.stsClient(tt.cfg).GetCallerIdentity(ctx, &stssdk.GetCallerIdentityInput{})
			mustNoErr(t, err)
			if aws.ToString(out.Arn) != tt.arn || aws.ToString(out.Account) != testAccount || !strings.HasPrefix(aws.ToString(out.UserId), tt.user) {
				t.Errorf("got %s %s %s", aws.ToString(out.UserId), aws.ToString(out.Account), aws.ToString(out.Arn))
			}
		})
	}
	_, err := r.h.stsClient(r.h.awsConfig("", "", "")).GetCallerIdentity(ctx, &stssdk.GetCallerIdentityInput{})
	wantCode(t, err, "MissingAuthenticationToken")
}

func TestChainingIsLimitedBySessionPolicies(t *testing.T) {
	r := newRoles(t)
	first := r.role(t, "first", trustAWS(r.userARN, []string{"sts:AssumeRole"}, ""))
	second := r.role(t, "second", trustAWS(first, []string{"sts:AssumeRole"}, ""))
	readOnly := `{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	mayChain := `{"Version":"2012-10-17","Statement":[{"Sid":"Chain","Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`

	tests := []struct {
		name   string
		policy *string
		code   string
	}{
		{"no session policy", nil, ""},
		{"session policy without sts:AssumeRole", aws.String(readOnly), "AccessDenied"},
		{"session policy with sts:AssumeRole", aws.String(mayChain), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := assumeRole(r.user, r.h, first, func(in *stssdk.AssumeRoleInput) { in.Policy = tt.policy })
			mustNoErr(t, err)
			_, err = assumeRole(r.sessionConfig(out.Credentials), r.h, second)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			mustNoErr(t, err)
		})
	}
}
