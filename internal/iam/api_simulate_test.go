package iam

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

func TestSimulatePrincipalPolicy(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	u, err := c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("dev")})
	mustNoErr(t, err)
	_, err = c.PutUserPolicy(ctx, &iamsdk.PutUserPolicyInput{UserName: aws.String("dev"), PolicyName: aws.String("s3"), PolicyDocument: aws.String(allowS3)})
	mustNoErr(t, err)
	officeOnly := `{"Version":"2012-10-17","Statement":[{"Sid":"Office","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`
	pol, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("office"), PolicyDocument: aws.String(officeOnly)})
	mustNoErr(t, err)
	_, err = c.AttachUserPolicy(ctx, &iamsdk.AttachUserPolicyInput{UserName: aws.String("dev"), PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	deny, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("no-iam"), PolicyDocument: aws.String(denyIAM)})
	mustNoErr(t, err)
	_, err = c.AttachUserPolicy(ctx, &iamsdk.AttachUserPolicyInput{UserName: aws.String("dev"), PolicyArn: deny.Policy.Arn})
	mustNoErr(t, err)

	type result struct{ action, resource, decision, source, typ string }
	simulate := func(in *iamsdk.SimulatePrincipalPolicyInput) []result {
		t.Helper()
		var out []result
		pg := iamsdk.NewSimulatePrincipalPolicyPaginator(c, in)
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			mustNoErr(t, err)
			for _, r := range page.EvaluationResults {
				res := result{action: aws.ToString(r.EvalActionName), resource: aws.ToString(r.EvalResourceName), decision: string(r.EvalDecision)}
				if len(r.MatchedStatements) > 0 {
					res.source, res.typ = aws.ToString(r.MatchedStatements[0].SourcePolicyId), string(r.MatchedStatements[0].SourcePolicyType)
				}
				out = append(out, res)
			}
		}
		return out
	}

	got := simulate(&iamsdk.SimulatePrincipalPolicyInput{
		PolicySourceArn: u.User.Arn,
		ActionNames:     []string{"s3:GetObject", "iam:CreateUser", "ec2:RunInstances", "secretsmanager:GetSecretValue"},
		MaxItems:        aws.Int32(3),
	})
	want := []result{
		{"s3:GetObject", "*", "allowed", "s3", "user"},
		{"iam:CreateUser", "*", "explicitDeny", "no-iam", "user-managed"},
		{"ec2:RunInstances", "*", "implicitDeny", "", ""},
		{"secretsmanager:GetSecretValue", "*", "implicitDeny", "", ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("results\n%v\nwant\n%v", got, want)
	}

	// Context entries feed conditions.
	got = simulate(&iamsdk.SimulatePrincipalPolicyInput{
		PolicySourceArn: u.User.Arn,
		ActionNames:     []string{"secretsmanager:GetSecretValue"},
		ResourceArns:    []string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-AbCdEf"},
		ContextEntries: []types.ContextEntry{{ContextKeyName: aws.String("aws:SourceIp"), ContextKeyType: types.ContextKeyTypeEnumIp,
			ContextKeyValues: []string{"10.1.2.3"}}},
	})
	if len(got) != 2 || got[0].decision != "allowed" || got[0].source != "office" || got[1].decision != "allowed" {
		t.Fatalf("with office IP: %v", got)
	}

	// Policies supplied with the request take part, and a supplied
	// boundary limits what the entity's policies allow.
	got = simulate(&iamsdk.SimulatePrincipalPolicyInput{
		PolicySourceArn:                    u.User.Arn,
		ActionNames:                        []string{"ec2:RunInstances", "s3:GetObject"},
		PolicyInputList:                    []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}`},
		PermissionsBoundaryPolicyInputList: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}`},
	})
	if len(got) != 2 || got[0].decision != "allowed" || got[0].source != "PolicyInputList.1" || got[1].decision != "implicitDeny" {
		t.Fatalf("with inputs: %v", got)
	}

	// Roles are simulated as a session of the role.
	role, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("svc"), AssumeRolePolicyDocument: aws.String(trustEC2)})
	mustNoErr(t, err)
	_, err = c.PutRolePolicy(ctx, &iamsdk.PutRolePolicyInput{RoleName: aws.String("svc"), PolicyName: aws.String("all"), PolicyDocument: aws.String(allowAll)})
	mustNoErr(t, err)
	got = simulate(&iamsdk.SimulatePrincipalPolicyInput{PolicySourceArn: role.Role.Arn, ActionNames: []string{"kms:Decrypt"}})
	if fmt.Sprint(got) != fmt.Sprint([]result{{"kms:Decrypt", "*", "allowed", "all", "role"}}) {
		t.Fatalf("role simulation %v", got)
	}

	_, err = c.SimulatePrincipalPolicy(ctx, &iamsdk.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String("arn:aws:iam::123456789012:user/ghost"), ActionNames: []string{"s3:GetObject"}})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	_, err = c.SimulatePrincipalPolicy(ctx, &iamsdk.SimulatePrincipalPolicyInput{PolicySourceArn: pol.Policy.Arn, ActionNames: []string{"s3:GetObject"}})
	wantAPIError[*types.InvalidInputException](t, err, "InvalidInput")
	_, err = c.SimulatePrincipalPolicy(ctx, &iamsdk.SimulatePrincipalPolicyInput{PolicySourceArn: u.User.Arn, ActionNames: []string{"s3:GetObject"},
		PolicyInputList: []string{`{"Statement":[}`}})
	wantAPIError[*types.MalformedPolicyDocumentException](t, err, "MalformedPolicyDocument")
}
