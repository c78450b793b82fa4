package apply

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// rollbackFile declares a policy, a role whose creation fails at the step
// the test chooses, and a user after it.
func rollbackFile(inline, attached string) string {
	return `
version: 1
managedPolicies:
  - name: ok-policy
    document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}
roles:
  - name: doomed
    trustPolicy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: "sts:AssumeRole"}]}
    inlinePolicies:
      - name: fine
        document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}
      - name: second
        document: ` + inline + `
    attachedPolicies: [` + attached + `]
users:
  - name: after
`
}

func TestRollbackOnFailedCreate(t *testing.T) {
	good := `{Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:ListBucket", Resource: "*"}]}`
	tests := []struct {
		name, inline, attached string
		failedStep, errCode    string
		rolledBack             []string
	}{
		{
			name:   "malformed inline policy",
			inline: `{Version: "2012-10-17", Statement: [{Effect: Perhaps, Action: "s3:GetObject", Resource: "*"}]}`, attached: "ok-policy",
			failedStep: `put inline policy "second"`, errCode: "MalformedPolicyDocument",
			rolledBack: []string{`delete inline policy "fine"`, "delete role"},
		},
		{
			name:   "missing attached policy",
			inline: good, attached: "ok-policy, 'arn:aws:iam::{{account}}:policy/does-not-exist'",
			failedStep: "attach arn:aws:iam::", errCode: "NoSuchEntity",
			rolledBack: []string{"detach arn:aws:iam::", `delete inline policy "second"`, `delete inline policy "fine"`, "delete role"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			p := e.plan(t, parse(t, rollbackFile(tt.inline, tt.attached), t.TempDir(), nil), Options{})
			r, err := Apply(ctx, e.c, p)
			if !errors.Is(err, ErrApply) {
				t.Fatalf("Apply: %v, want ErrApply", err)
			}
			if !strings.Contains(err.Error(), tt.errCode) || !strings.Contains(err.Error(), `role "doomed"`) || !strings.Contains(err.Error(), "rolled back") {
				t.Errorf("error %q", err)
			}
			statuses := map[string]Status{}
			for _, o := range r.Objects {
				statuses[o.Name] = o.Status
			}
			if statuses["ok-policy"] != StatusCreated || statuses["doomed"] != StatusRolledBack || statuses["after"] != StatusNotAttempted {
				t.Fatalf("statuses %v", statuses)
			}
			o := r.Objects[1]
			if !strings.HasPrefix(o.FailedStep, tt.failedStep) || !strings.Contains(o.Error, tt.errCode) || len(o.LeftBehind) != 0 {
				t.Errorf("failed object %+v", o)
			}
			if len(o.RolledBack) != len(tt.rolledBack) {
				t.Fatalf("rolled back %q, want %q", o.RolledBack, tt.rolledBack)
			}
			for i, want := range tt.rolledBack {
				if !strings.HasPrefix(o.RolledBack[i], want) {
					t.Errorf("rollback step %d %q, want %q", i, o.RolledBack[i], want)
				}
			}
			if _, err := e.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("doomed")}); !isNoSuchEntity(err) {
				t.Errorf("GetRole after rollback: %v, want NoSuchEntity", err)
			}
			if _, err := e.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("after")}); !isNoSuchEntity(err) {
				t.Errorf("the user after the failure was created: %v", err)
			}
			pol, err := e.iam.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(p.Changes[0].ARN)})
			if err != nil || aws.ToInt32(pol.Policy.AttachmentCount) != 0 {
				t.Errorf("policy before the failure: %v, attachments %d", err, aws.ToInt32(pol.Policy.AttachmentCount))
			}
			var text bytes.Buffer
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "not created") || !strings.Contains(text.String(), "not attempted: user after") {
				t.Errorf("result text:\n%s", text.String())
			}
		})
	}
}

func TestRollbackSecretOnRejectedPolicy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	src := func(policy string) string {
		return "version: 1\nsecrets:\n  - name: app/s\n    valueEnv: V\n    resourcePolicy: " + policy + "\n"
	}
	environ := map[string]string{"V": "rollback-value-93a1"}
	// Public: allowed for everyone without a condition, which
	// BlockPublicPolicy refuses.
	public := `{Version: "2012-10-17", Statement: [{Effect: Allow, Principal: "*", Action: "secretsmanager:GetSecretValue", Resource: "*"}]}`
	p := e.plan(t, parse(t, src(public), t.TempDir(), environ), Options{})
	r, err := Apply(ctx, e.c, p)
	if !errors.Is(err, ErrApply) || r.Objects[0].Status != StatusRolledBack {
		t.Fatalf("Apply: %v %+v", err, r.Objects)
	}
	if _, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/s")}); !isSecretNotFound(err) {
		t.Fatalf("secret after rollback: %v, want not found", err)
	}
	// The name is free again at once.
	private := `{Version: "2012-10-17", Statement: [{Effect: Deny, Principal: {AWS: "arn:aws:iam::{{account}}:root"}, Action: "secretsmanager:DeleteSecret", Resource: "*"}]}`
	e.apply(t, parse(t, src(private), t.TempDir(), environ), Options{})
	val, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/s")})
	if err != nil || aws.ToString(val.SecretString) != environ["V"] {
		t.Fatalf("secret after a clean apply: %v", err)
	}
}

func TestFailedUpdateReportsStep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	role := func(service, inline, tags string) string {
		return `
version: 1
roles:
  - name: r
    trustPolicy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {Service: ` + service + `}, Action: "sts:AssumeRole"}]}
    inlinePolicies:
      - name: p
        document: ` + inline + `
    tags: ` + tags + `
`
	}
	good := `{Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}`
	bad := `{Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*", Bogus: 1}]}`
	e.apply(t, parse(t, role("ec2.amazonaws.com", good, "{a: b}"), dir, nil), Options{})

	p := e.plan(t, parse(t, role("lambda.amazonaws.com", bad, "{a: c}"), dir, nil), Options{})
	r, err := Apply(ctx, e.c, p)
	if !errors.Is(err, ErrApply) {
		t.Fatalf("Apply: %v", err)
	}
	if !strings.Contains(err.Error(), `step 2 of 3 (put inline policy "p" (changed)) failed`) || !strings.Contains(err.Error(), "keeps steps 1-1") {
		t.Errorf("error %q", err)
	}
	o := r.Objects[0]
	if o.Status != StatusFailed || !slices.Equal(o.Applied, []string{"update trust policy"}) || len(o.RolledBack) != 0 {
		t.Errorf("result %+v", o)
	}
	got, err := e.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc(got.Role.AssumeRolePolicyDocument), "lambda") || aws.ToString(got.Role.Tags[0].Value) != "b" {
		t.Errorf("role after a failed update: trust %s tags %+v", doc(got.Role.AssumeRolePolicyDocument), got.Role.Tags)
	}
}
