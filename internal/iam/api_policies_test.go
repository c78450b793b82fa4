package iam

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

func docN(n int) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"V%d","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b%d/*"}]}`, n, n)
}

func TestPolicyVersions(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	created, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("app"), Path: aws.String("/team/"),
		PolicyDocument: aws.String(docN(1)), Description: aws.String("app access"),
		Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("me")}}})
	mustNoErr(t, err)
	p := created.Policy
	arn := aws.ToString(p.Arn)
	if arn != "arn:aws:iam::123456789012:policy/team/app" || aws.ToString(p.DefaultVersionId) != "v1" ||
		!strings.HasPrefix(aws.ToString(p.PolicyId), "ANPA") || len(aws.ToString(p.PolicyId)) != 21 ||
		!p.IsAttachable || aws.ToString(p.Description) != "app access" || len(p.Tags) != 1 {
		t.Fatalf("created policy %+v", p)
	}

	for i := 2; i <= MaxPolicyVersions; i++ {
		v, err := c.CreatePolicyVersion(ctx, &iamsdk.CreatePolicyVersionInput{PolicyArn: p.Arn, PolicyDocument: aws.String(docN(i)), SetAsDefault: i == 3})
		mustNoErr(t, err)
		if aws.ToString(v.PolicyVersion.VersionId) != fmt.Sprintf("v%d", i) || v.PolicyVersion.IsDefaultVersion != (i == 3) {
			t.Fatalf("version %d: %+v", i, v.PolicyVersion)
		}
	}
	_, err = c.CreatePolicyVersion(ctx, &iamsdk.CreatePolicyVersionInput{PolicyArn: p.Arn, PolicyDocument: aws.String(docN(6))})
	wantAPIError[*types.LimitExceededException](t, err, "LimitExceeded")

	got, err := c.GetPolicy(ctx, &iamsdk.GetPolicyInput{PolicyArn: p.Arn})
	mustNoErr(t, err)
	if aws.ToString(got.Policy.DefaultVersionId) != "v3" {
		t.Fatalf("default version %s", aws.ToString(got.Policy.DefaultVersionId))
	}
	gv, err := c.GetPolicyVersion(ctx, &iamsdk.GetPolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String("v4")})
	mustNoErr(t, err)
	if decodeDoc(t, gv.PolicyVersion.Document) != docN(4) || gv.PolicyVersion.IsDefaultVersion {
		t.Fatalf("v4 = %+v", gv.PolicyVersion)
	}

	var ids []string
	pg := iamsdk.NewListPolicyVersionsPaginator(c, &iamsdk.ListPolicyVersionsInput{PolicyArn: p.Arn, MaxItems: aws.Int32(2)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		mustNoErr(t, err)
		for _, v := range out.Versions {
			ids = append(ids, aws.ToString(v.VersionId))
			if v.Document != nil {
				t.Fatal("ListPolicyVersions returned a document")
			}
		}
	}
	if fmt.Sprint(ids) != "[v5 v4 v3 v2 v1]" {
		t.Fatalf("versions listed %v, want newest first", ids)
	}

	_, err = c.DeletePolicyVersion(ctx, &iamsdk.DeletePolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String("v3")})
	wantAPIError[*types.DeleteConflictException](t, err, "DeleteConflict")
	_, err = c.DeletePolicyVersion(ctx, &iamsdk.DeletePolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String("v9")})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	_, err = c.GetPolicyVersion(ctx, &iamsdk.GetPolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String("3")})
	wantAPIError[smithy.APIError](t, err, "ValidationError")
	_, err = c.DeletePolicyVersion(ctx, &iamsdk.DeletePolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String("v1")})
	mustNoErr(t, err)
	// A freed slot takes the next number; numbers are never reused.
	v6, err := c.CreatePolicyVersion(ctx, &iamsdk.CreatePolicyVersionInput{PolicyArn: p.Arn, PolicyDocument: aws.String(docN(6))})
	mustNoErr(t, err)
	if aws.ToString(v6.PolicyVersion.VersionId) != "v6" {
		t.Fatalf("next version %s", aws.ToString(v6.PolicyVersion.VersionId))
	}
	_, err = c.SetDefaultPolicyVersion(ctx, &iamsdk.SetDefaultPolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String("v6")})
	mustNoErr(t, err)
	_, err = c.CreatePolicyVersion(ctx, &iamsdk.CreatePolicyVersionInput{PolicyArn: p.Arn, PolicyDocument: aws.String(`{"Statement":"nope"}`)})
	wantAPIError[*types.MalformedPolicyDocumentException](t, err, "MalformedPolicyDocument")

	// DeletePolicy needs the other versions gone, as in IAM.
	_, err = c.DeletePolicy(ctx, &iamsdk.DeletePolicyInput{PolicyArn: p.Arn})
	wantAPIError[*types.DeleteConflictException](t, err, "DeleteConflict")
	for _, v := range []string{"v2", "v3", "v4", "v5"} {
		_, err = c.DeletePolicyVersion(ctx, &iamsdk.DeletePolicyVersionInput{PolicyArn: p.Arn, VersionId: aws.String(v)})
		mustNoErr(t, err)
	}
	_, err = c.DeletePolicy(ctx, &iamsdk.DeletePolicyInput{PolicyArn: p.Arn})
	mustNoErr(t, err)
	_, err = c.GetPolicy(ctx, &iamsdk.GetPolicyInput{PolicyArn: p.Arn})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
}

func TestPolicyErrors(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	p, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("Shared"), PolicyDocument: aws.String(allowS3)})
	mustNoErr(t, err)
	_, err = c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("u")})
	mustNoErr(t, err)
	_, err = c.AttachUserPolicy(ctx, &iamsdk.AttachUserPolicyInput{UserName: aws.String("u"), PolicyArn: p.Policy.Arn})
	mustNoErr(t, err)

	tests := []struct {
		name  string
		call  func() error
		check func(*testing.T, error)
	}{
		{"name taken on another path", func() error {
			_, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("shared"), Path: aws.String("/x/"), PolicyDocument: aws.String(allowS3)})
			return err
		}, func(t *testing.T, err error) {
			wantAPIError[*types.EntityAlreadyExistsException](t, err, "EntityAlreadyExists")
		}},
		{"delete attached", func() error {
			_, err := c.DeletePolicy(ctx, &iamsdk.DeletePolicyInput{PolicyArn: p.Policy.Arn})
			return err
		}, func(t *testing.T, err error) { wantAPIError[*types.DeleteConflictException](t, err, "DeleteConflict") }},
		{"trust policy as identity policy", func() error {
			_, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("t"), PolicyDocument: aws.String(trustEC2)})
			return err
		}, func(t *testing.T, err error) {
			wantAPIError[*types.MalformedPolicyDocumentException](t, err, "MalformedPolicyDocument")
		}},
		{"too large", func() error {
			doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + strings.Repeat("x", 7000) + `"}]}`
			_, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("big"), PolicyDocument: aws.String(doc)})
			return err
		}, func(t *testing.T, err error) {
			wantAPIError[*types.LimitExceededException](t, err, "LimitExceeded")
			if !strings.Contains(err.Error(), "PolicySize: 6144") {
				t.Fatalf("size error %v", err)
			}
		}},
		{"not an ARN", func() error {
			_, err := c.GetPolicy(ctx, &iamsdk.GetPolicyInput{PolicyArn: aws.String("arn:aws:iam::123456789012:role/Shared")})
			return err
		}, func(t *testing.T, err error) { wantAPIError[*types.InvalidInputException](t, err, "InvalidInput") }},
		{"ARN too short", func() error {
			_, err := c.GetPolicy(ctx, &iamsdk.GetPolicyInput{PolicyArn: aws.String("arn:x")})
			return err
		}, func(t *testing.T, err error) { wantAPIError[smithy.APIError](t, err, "ValidationError") }},
		{"bad scope", func() error {
			_, err := c.ListPolicies(ctx, &iamsdk.ListPoliciesInput{Scope: "Everything"})
			return err
		}, func(t *testing.T, err error) { wantAPIError[smithy.APIError](t, err, "ValidationError") }},
		{"non-printable description", func() error {
			_, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("d"), PolicyDocument: aws.String(allowS3), Description: aws.String("bell\a")})
			return err
		}, func(t *testing.T, err error) { wantAPIError[smithy.APIError](t, err, "ValidationError") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, tt.call()) })
	}
}

func TestListPolicies(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	var arns []string
	for i, path := range []string{"/", "/eng/", "/eng/", "/ops/", "/"} {
		p, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String(fmt.Sprintf("pol-%d", i)), Path: aws.String(path), PolicyDocument: aws.String(allowS3)})
		mustNoErr(t, err)
		arns = append(arns, aws.ToString(p.Policy.Arn))
	}
	_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trustEC2),
		PermissionsBoundary: aws.String(arns[4])})
	mustNoErr(t, err)
	_, err = c.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String("r"), PolicyArn: aws.String(arns[1])})
	mustNoErr(t, err)

	names := func(in *iamsdk.ListPoliciesInput) []string {
		t.Helper()
		var out []string
		pg := iamsdk.NewListPoliciesPaginator(c, in)
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			mustNoErr(t, err)
			for _, p := range page.Policies {
				out = append(out, aws.ToString(p.PolicyName))
				if p.Description != nil || p.Tags != nil {
					t.Fatalf("ListPolicies returned description or tags: %+v", p)
				}
			}
		}
		return out
	}
	tests := []struct {
		name string
		in   iamsdk.ListPoliciesInput
		want string
	}{
		{"all, paged", iamsdk.ListPoliciesInput{MaxItems: aws.Int32(2)}, "[pol-0 pol-1 pol-2 pol-3 pol-4]"},
		{"local", iamsdk.ListPoliciesInput{Scope: types.PolicyScopeTypeLocal}, "[pol-0 pol-1 pol-2 pol-3 pol-4]"},
		{"aws managed: none", iamsdk.ListPoliciesInput{Scope: types.PolicyScopeTypeAws}, "[]"},
		{"path prefix", iamsdk.ListPoliciesInput{PathPrefix: aws.String("/eng/"), MaxItems: aws.Int32(1)}, "[pol-1 pol-2]"},
		{"only attached", iamsdk.ListPoliciesInput{OnlyAttached: true}, "[pol-1 pol-4]"},
		{"only attached permissions", iamsdk.ListPoliciesInput{OnlyAttached: true, PolicyUsageFilter: types.PolicyUsageTypePermissionsPolicy}, "[pol-1]"},
		{"only attached boundaries", iamsdk.ListPoliciesInput{OnlyAttached: true, PolicyUsageFilter: types.PolicyUsageTypePermissionsBoundary}, "[pol-4]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if got := fmt.Sprint(names(&in)); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPolicyTags(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	p, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(allowS3)})
	mustNoErr(t, err)
	_, err = c.TagPolicy(ctx, &iamsdk.TagPolicyInput{PolicyArn: p.Policy.Arn, Tags: []types.Tag{{Key: aws.String("b"), Value: aws.String("2")}, {Key: aws.String("a"), Value: aws.String("1")}}})
	mustNoErr(t, err)
	_, err = c.UntagPolicy(ctx, &iamsdk.UntagPolicyInput{PolicyArn: p.Policy.Arn, TagKeys: []string{"B"}})
	mustNoErr(t, err)
	tags, err := c.ListPolicyTags(ctx, &iamsdk.ListPolicyTagsInput{PolicyArn: p.Policy.Arn})
	mustNoErr(t, err)
	if fmt.Sprint(tagPairs(tags.Tags)) != "[a=1]" {
		t.Fatalf("tags %v", tagPairs(tags.Tags))
	}
	many := make([]types.Tag, MaxTags)
	for i := range many {
		many[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	_, err = c.TagPolicy(ctx, &iamsdk.TagPolicyInput{PolicyArn: p.Policy.Arn, Tags: many})
	wantAPIError[*types.LimitExceededException](t, err, "LimitExceeded")
}
