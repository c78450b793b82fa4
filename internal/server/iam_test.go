package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"sigil.dev/sigil/internal/testutil/testserver"
)

// newUser creates an IAM user with an access key and the given inline
// policy, through the real IAM API, and returns a Secrets Manager client
// signed with the user's key.
func newUser(t *testing.T, srv *testserver.Server, ic *iam.Client, name, policy string) *secretsmanager.Client {
	t.Helper()
	ctx := context.Background()
	if _, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if policy != "" {
		if _, err := ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("inline"), PolicyDocument: aws.String(policy)}); err != nil {
			t.Fatal(err)
		}
	}
	key, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return secretsmanager.NewFromConfig(testserver.AWSConfigFor(srv.URL(), "us-east-1",
		aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), ""))
}

func TestIAMUsersArePolicyBound(t *testing.T) {
	srv := testserver.StartServer(t)
	ctx := context.Background()
	ic := iam.NewFromConfig(srv.AWSConfig())
	root := secretsmanager.NewFromConfig(srv.AWSConfig())
	arns := map[string]string{}
	for _, name := range []string{"app/db", "app/cache", "other/db"} {
		out, err := root.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v-" + name)})
		if err != nil {
			t.Fatal(err)
		}
		arns[name] = aws.ToString(out.ARN)
	}
	acct := strings.Split(arns["app/db"], ":")[4]

	allowApp := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
	  {"Sid":"ReadApp","Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],
	   "Resource":"arn:aws:secretsmanager:us-east-1:%s:secret:app/*"},
	  {"Sid":"NoCache","Effect":"Deny","Action":"secretsmanager:*","Resource":"arn:aws:secretsmanager:*:*:secret:app/cache-*"}]}`, acct)
	ci := newUser(t, srv, ic, "ci", allowApp)
	nobody := newUser(t, srv, ic, "nobody", "")

	read := func(c *secretsmanager.Client, name string) error {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		return err
	}
	if err := read(ci, "app/db"); err != nil {
		t.Fatalf("allowed read denied: %v", err)
	}
	for _, name := range []string{"other/db", "app/cache"} {
		err := read(ci, name)
		if !isCode(err, "AccessDeniedException") {
			t.Fatalf("read of %s: %v, want AccessDeniedException", name, err)
		}
		if !strings.Contains(err.Error(), "user/ci") || !strings.Contains(err.Error(), "secretsmanager:GetSecretValue") {
			t.Errorf("denial message does not name principal and action: %v", err)
		}
	}
	if err := read(nobody, "app/db"); !isCode(err, "AccessDeniedException") {
		t.Fatalf("user without policies: %v, want AccessDeniedException", err)
	}
	if _, err := ci.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), SecretString: aws.String("x")}); !isCode(err, "AccessDeniedException") {
		t.Fatalf("write without permission: %v", err)
	}

	// A resource policy grants another user access to one secret.
	grant := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
	  "Principal":{"AWS":"arn:aws:iam::%s:user/nobody"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`, acct)
	if _, err := root.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("other/db"), ResourcePolicy: aws.String(grant)}); err != nil {
		t.Fatal(err)
	}
	if err := read(nobody, "other/db"); err != nil {
		t.Fatalf("resource policy grant not honoured: %v", err)
	}
	if err := read(nobody, "app/db"); !isCode(err, "AccessDeniedException") {
		t.Fatalf("resource policy leaked to another secret: %v", err)
	}

	// SimulatePrincipalPolicy answers as the real requests did.
	userARN := fmt.Sprintf("arn:aws:iam::%s:user/ci", acct)
	sim, err := ic.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(userARN),
		ActionNames:     []string{"secretsmanager:GetSecretValue"},
		ResourceArns:    []string{arns["app/db"], arns["other/db"], arns["app/cache"]},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]iamtypes.PolicyEvaluationDecisionType{
		arns["app/db"]:    iamtypes.PolicyEvaluationDecisionTypeAllowed,
		arns["other/db"]:  iamtypes.PolicyEvaluationDecisionTypeImplicitDeny,
		arns["app/cache"]: iamtypes.PolicyEvaluationDecisionTypeExplicitDeny,
	}
	if len(sim.EvaluationResults) != 3 {
		t.Fatalf("simulation returned %d results", len(sim.EvaluationResults))
	}
	for _, r := range sim.EvaluationResults {
		if got := r.EvalDecision; got != want[aws.ToString(r.EvalResourceName)] {
			t.Errorf("simulate %s: %s, want %s", aws.ToString(r.EvalResourceName), got, want[aws.ToString(r.EvalResourceName)])
		}
	}

	// Deleting the user's key stops it at once on this replica.
	keys, err := ic.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("ci")})
	if err != nil || len(keys.AccessKeyMetadata) != 1 {
		t.Fatalf("list keys: %v", err)
	}
	if _, err := ic.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("ci"), AccessKeyId: keys.AccessKeyMetadata[0].AccessKeyId}); err != nil {
		t.Fatal(err)
	}
	if err := read(ci, "app/db"); err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Fatalf("deleted key still works: %v", err)
	}
}

func TestIAMQueryErrors(t *testing.T) {
	srv := testserver.StartServer(t)
	ctx := context.Background()
	ic := iam.NewFromConfig(srv.AWSConfig())
	_, err := ic.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("missing")})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Fatalf("GetRole of a missing role: %v", err)
	}
	_, err = ic.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("bad"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"}]}`)})
	var mpd *iamtypes.MalformedPolicyDocumentException
	if !errors.As(err, &mpd) {
		t.Fatalf("policy without Resource: %v", err)
	}
	bad := iam.NewFromConfig(testserver.AWSConfigFor(srv.URL(), "us-east-1", srv.AccessKeyID, "wrong-wrong-wrong-wrong-wrong-wrong-wron", ""))
	if _, err := bad.ListRoles(ctx, &iam.ListRolesInput{}); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong signature on IAM: %v", err)
	}
}

// isCode reports whether err is an AWS API error with the given code.
func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
