package iam

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

func TestRoleLifecycle(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client

	created, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{
		RoleName: aws.String("app-role"), Path: aws.String("/svc/"), AssumeRolePolicyDocument: aws.String(trustEC2),
		Description: aws.String("the app's role"), MaxSessionDuration: aws.Int32(7200),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("core")}, {Key: aws.String("env"), Value: aws.String("")}},
	})
	mustNoErr(t, err)
	r := created.Role
	if aws.ToString(r.Arn) != "arn:aws:iam::123456789012:role/svc/app-role" || aws.ToString(r.Path) != "/svc/" ||
		aws.ToString(r.RoleName) != "app-role" || aws.ToInt32(r.MaxSessionDuration) != 7200 ||
		aws.ToString(r.Description) != "the app's role" {
		t.Fatalf("created role %+v", r)
	}
	if id := aws.ToString(r.RoleId); len(id) != 21 || !strings.HasPrefix(id, "AROA") || strings.Trim(id[4:], idAlphabet) != "" {
		t.Fatalf("role id %q is not AROA + 17 base32 characters", id)
	}
	if want := e.clock.Now().Truncate(time.Second); !aws.ToTime(r.CreateDate).Equal(want) {
		t.Fatalf("CreateDate %v, want %v", aws.ToTime(r.CreateDate), want)
	}
	if got := decodeDoc(t, r.AssumeRolePolicyDocument); got != trustEC2 {
		t.Fatalf("trust policy round trip: %q", got)
	}

	got, err := c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("APP-ROLE")})
	mustNoErr(t, err)
	if aws.ToString(got.Role.RoleId) != aws.ToString(r.RoleId) || len(got.Role.Tags) != 2 ||
		aws.ToString(got.Role.Tags[0].Key) != "env" || aws.ToString(got.Role.Tags[1].Value) != "core" {
		t.Fatalf("GetRole (other case) = %+v", got.Role)
	}

	_, err = c.UpdateRole(ctx, &iamsdk.UpdateRoleInput{RoleName: aws.String("app-role"), MaxSessionDuration: aws.Int32(43200)})
	mustNoErr(t, err)
	desc, err := c.UpdateRoleDescription(ctx, &iamsdk.UpdateRoleDescriptionInput{RoleName: aws.String("app-role"), Description: aws.String("new")})
	mustNoErr(t, err)
	if aws.ToString(desc.Role.Description) != "new" || aws.ToInt32(desc.Role.MaxSessionDuration) != 43200 {
		t.Fatalf("after updates: %+v", desc.Role)
	}
	newTrust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"a b+c%d"}}}]}`
	_, err = c.UpdateAssumeRolePolicy(ctx, &iamsdk.UpdateAssumeRolePolicyInput{RoleName: aws.String("app-role"), PolicyDocument: aws.String(newTrust)})
	mustNoErr(t, err)
	got, err = c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("app-role")})
	mustNoErr(t, err)
	if d := decodeDoc(t, got.Role.AssumeRolePolicyDocument); d != newTrust {
		t.Fatalf("updated trust policy %q", d)
	}
	// botocore decodes with urllib's unquote, which leaves '+' alone: the
	// encoding must not use '+' for spaces.
	if strings.Contains(aws.ToString(got.Role.AssumeRolePolicyDocument), "+") {
		t.Fatalf("encoded document contains '+': %s", aws.ToString(got.Role.AssumeRolePolicyDocument))
	}

	// Tags.
	_, err = c.TagRole(ctx, &iamsdk.TagRoleInput{RoleName: aws.String("app-role"),
		Tags: []types.Tag{{Key: aws.String("TEAM"), Value: aws.String("platform")}, {Key: aws.String("cost"), Value: aws.String("42")}}})
	mustNoErr(t, err)
	_, err = c.UntagRole(ctx, &iamsdk.UntagRoleInput{RoleName: aws.String("app-role"), TagKeys: []string{"env", "absent"}})
	mustNoErr(t, err)
	tags, err := c.ListRoleTags(ctx, &iamsdk.ListRoleTagsInput{RoleName: aws.String("app-role")})
	mustNoErr(t, err)
	if fmt.Sprint(tagPairs(tags.Tags)) != "[TEAM=platform cost=42]" || tags.IsTruncated {
		t.Fatalf("tags after tag/untag: %v", tagPairs(tags.Tags))
	}

	// Inline policies.
	for _, name := range []string{"s3-read", "all"} {
		doc := allowS3
		if name == "all" {
			doc = allowAll
		}
		_, err = c.PutRolePolicy(ctx, &iamsdk.PutRolePolicyInput{RoleName: aws.String("app-role"), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
		mustNoErr(t, err)
	}
	names, err := c.ListRolePolicies(ctx, &iamsdk.ListRolePoliciesInput{RoleName: aws.String("app-role")})
	mustNoErr(t, err)
	if fmt.Sprint(names.PolicyNames) != "[all s3-read]" {
		t.Fatalf("inline policy names %v", names.PolicyNames)
	}
	rp, err := c.GetRolePolicy(ctx, &iamsdk.GetRolePolicyInput{RoleName: aws.String("app-role"), PolicyName: aws.String("S3-READ")})
	mustNoErr(t, err)
	if decodeDoc(t, rp.PolicyDocument) != allowS3 || aws.ToString(rp.PolicyName) != "s3-read" || aws.ToString(rp.RoleName) != "app-role" {
		t.Fatalf("GetRolePolicy = %+v", rp)
	}

	// Managed policies.
	pol, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("read"), PolicyDocument: aws.String(allowS3)})
	mustNoErr(t, err)
	_, err = c.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String("app-role"), PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	_, err = c.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String("app-role"), PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err) // attaching twice changes nothing
	att, err := c.ListAttachedRolePolicies(ctx, &iamsdk.ListAttachedRolePoliciesInput{RoleName: aws.String("app-role")})
	mustNoErr(t, err)
	if len(att.AttachedPolicies) != 1 || aws.ToString(att.AttachedPolicies[0].PolicyName) != "read" ||
		aws.ToString(att.AttachedPolicies[0].PolicyArn) != "arn:aws:iam::123456789012:policy/read" {
		t.Fatalf("attached %+v", att.AttachedPolicies)
	}
	gp, err := c.GetPolicy(ctx, &iamsdk.GetPolicyInput{PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	if aws.ToInt32(gp.Policy.AttachmentCount) != 1 {
		t.Fatalf("attachment count %d", aws.ToInt32(gp.Policy.AttachmentCount))
	}
	ip, err := c.ListInstanceProfilesForRole(ctx, &iamsdk.ListInstanceProfilesForRoleInput{RoleName: aws.String("app-role")})
	mustNoErr(t, err)
	if len(ip.InstanceProfiles) != 0 || ip.IsTruncated {
		t.Fatalf("instance profiles %+v", ip)
	}

	// Deleting needs the policies gone first, in IAM's order.
	_, err = c.DeleteRole(ctx, &iamsdk.DeleteRoleInput{RoleName: aws.String("app-role")})
	wantAPIError[*types.DeleteConflictException](t, err, "DeleteConflict")
	if !strings.Contains(err.Error(), "must detach all policies first") {
		t.Fatalf("DeleteRole with attachments: %v", err)
	}
	_, err = c.DetachRolePolicy(ctx, &iamsdk.DetachRolePolicyInput{RoleName: aws.String("app-role"), PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	_, err = c.DetachRolePolicy(ctx, &iamsdk.DetachRolePolicyInput{RoleName: aws.String("app-role"), PolicyArn: pol.Policy.Arn})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	_, err = c.DeleteRole(ctx, &iamsdk.DeleteRoleInput{RoleName: aws.String("app-role")})
	wantAPIError[*types.DeleteConflictException](t, err, "DeleteConflict")
	if !strings.Contains(err.Error(), "must delete policies first") {
		t.Fatalf("DeleteRole with inline policies: %v", err)
	}
	for _, name := range []string{"s3-read", "all"} {
		_, err = c.DeleteRolePolicy(ctx, &iamsdk.DeleteRolePolicyInput{RoleName: aws.String("app-role"), PolicyName: aws.String(name)})
		mustNoErr(t, err)
	}
	_, err = c.DeleteRolePolicy(ctx, &iamsdk.DeleteRolePolicyInput{RoleName: aws.String("app-role"), PolicyName: aws.String("all")})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	_, err = c.DeleteRole(ctx, &iamsdk.DeleteRoleInput{RoleName: aws.String("app-role")})
	mustNoErr(t, err)
	_, err = c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("app-role")})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	if !strings.Contains(err.Error(), "The role with name app-role cannot be found.") {
		t.Fatalf("GetRole after delete: %v", err)
	}
	gp, err = c.GetPolicy(ctx, &iamsdk.GetPolicyInput{PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	if aws.ToInt32(gp.Policy.AttachmentCount) != 0 {
		t.Fatalf("attachment count after detach %d", aws.ToInt32(gp.Policy.AttachmentCount))
	}
}

func tagPairs(ts []types.Tag) []string {
	var out []string
	for _, t := range ts {
		out = append(out, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	return out
}

func TestRoleErrors(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("Dup"), AssumeRolePolicyDocument: aws.String(trustEC2)})
	mustNoErr(t, err)
	pol, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(allowS3)})
	mustNoErr(t, err)

	tests := []struct {
		name  string
		call  func() error
		check func(t *testing.T, err error)
		msg   string
	}{
		{"duplicate name in other case", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("dUP"), AssumeRolePolicyDocument: aws.String(trustEC2)})
			return err
		}, func(t *testing.T, err error) {
			wantAPIError[*types.EntityAlreadyExistsException](t, err, "EntityAlreadyExists")
		}, "Role with name Dup already exists."},
		{"malformed trust policy", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r1"), AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[`)})
			return err
		}, func(t *testing.T, err error) {
			wantAPIError[*types.MalformedPolicyDocumentException](t, err, "MalformedPolicyDocument")
		}, ""},
		{"identity policy as trust policy", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r1"), AssumeRolePolicyDocument: aws.String(allowS3)})
			return err
		}, func(t *testing.T, err error) {
			wantAPIError[*types.MalformedPolicyDocumentException](t, err, "MalformedPolicyDocument")
		}, ""},
		{"bad name", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("a/b"), AssumeRolePolicyDocument: aws.String(trustEC2)})
			return err
		}, func(t *testing.T, err error) { wantAPIError[smithy.APIError](t, err, "ValidationError") },
			`Value 'a/b' at 'roleName' failed to satisfy constraint`},
		{"name too long", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String(strings.Repeat("r", 65)), AssumeRolePolicyDocument: aws.String(trustEC2)})
			return err
		}, func(t *testing.T, err error) { wantAPIError[smithy.APIError](t, err, "ValidationError") },
			"length less than or equal to 64"},
		{"bad path", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r1"), Path: aws.String("svc"), AssumeRolePolicyDocument: aws.String(trustEC2)})
			return err
		}, func(t *testing.T, err error) { wantAPIError[smithy.APIError](t, err, "ValidationError") }, "at 'path'"},
		{"session too short", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r1"), MaxSessionDuration: aws.Int32(60), AssumeRolePolicyDocument: aws.String(trustEC2)})
			return err
		}, func(t *testing.T, err error) { wantAPIError[smithy.APIError](t, err, "ValidationError") },
			"greater than or equal to 3600"},
		{"reserved tag", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r1"), AssumeRolePolicyDocument: aws.String(trustEC2),
				Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}})
			return err
		}, func(t *testing.T, err error) { wantAPIError[*types.InvalidInputException](t, err, "InvalidInput") }, "reserved"},
		{"duplicate tag keys", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r1"), AssumeRolePolicyDocument: aws.String(trustEC2),
				Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("A"), Value: aws.String("2")}}})
			return err
		}, func(t *testing.T, err error) { wantAPIError[*types.InvalidInputException](t, err, "InvalidInput") }, "Duplicate tag keys"},
		{"boundary that does not exist", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r1"), AssumeRolePolicyDocument: aws.String(trustEC2),
				PermissionsBoundary: aws.String("arn:aws:iam::123456789012:policy/nope")})
			return err
		}, func(t *testing.T, err error) { wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity") }, "does not exist"},
		{"missing role", func() error {
			_, err := c.UpdateRole(ctx, &iamsdk.UpdateRoleInput{RoleName: aws.String("ghost"), Description: aws.String("x")})
			return err
		}, func(t *testing.T, err error) { wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity") }, "ghost"},
		{"inline policy malformed", func() error {
			_, err := c.PutRolePolicy(ctx, &iamsdk.PutRolePolicyInput{RoleName: aws.String("Dup"), PolicyName: aws.String("x"),
				PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}`)})
			return err
		}, func(t *testing.T, err error) {
			wantAPIError[*types.MalformedPolicyDocumentException](t, err, "MalformedPolicyDocument")
		}, "Effect"},
		{"attach AWS managed policy", func() error {
			_, err := c.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String("Dup"), PolicyArn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")})
			return err
		}, func(t *testing.T, err error) { wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity") }, "does not exist or is not attachable"},
		{"attach other account's policy", func() error {
			_, err := c.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String("Dup"), PolicyArn: aws.String("arn:aws:iam::999999999999:policy/p")})
			return err
		}, func(t *testing.T, err error) { wantAPIError[*types.InvalidInputException](t, err, "InvalidInput") }, "is not valid"},
		{"attach policy on another path", func() error {
			_, err := c.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String("Dup"), PolicyArn: aws.String("arn:aws:iam::123456789012:policy/other/p")})
			return err
		}, func(t *testing.T, err error) { wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity") }, ""},
		{"missing required member", func() error {
			_, err := c.GetRole(ctx, &iamsdk.GetRoleInput{})
			return err
		}, func(t *testing.T, err error) {
			// The SDK validates required members itself.
			if err == nil || !strings.Contains(err.Error(), "RoleName") {
				t.Fatalf("err = %v", err)
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			tt.check(t, err)
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
	_ = pol

	// Bad input changes nothing: no role r1 was created by any case above.
	if _, err := c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("r1")}); err == nil {
		t.Fatal("a refused CreateRole created the role")
	}
}

func TestRoleLimits(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trustEC2)})
	mustNoErr(t, err)

	t.Run("attached policies", func(t *testing.T) {
		for i := 0; i <= MaxAttachedPolicies; i++ {
			p, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String(fmt.Sprintf("p%02d", i)), PolicyDocument: aws.String(allowS3)})
			mustNoErr(t, err)
			_, err = c.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String("r"), PolicyArn: p.Policy.Arn})
			if i < MaxAttachedPolicies {
				mustNoErr(t, err)
				continue
			}
			wantAPIError[*types.LimitExceededException](t, err, "LimitExceeded")
		}
	})
	t.Run("aggregate inline size", func(t *testing.T) {
		big := func(n int) string {
			return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + strings.Repeat("b", n) + `"}]}`
		}
		_, err := c.PutRolePolicy(ctx, &iamsdk.PutRolePolicyInput{RoleName: aws.String("r"), PolicyName: aws.String("a"), PolicyDocument: aws.String(big(6000))})
		mustNoErr(t, err)
		_, err = c.PutRolePolicy(ctx, &iamsdk.PutRolePolicyInput{RoleName: aws.String("r"), PolicyName: aws.String("b"), PolicyDocument: aws.String(big(5000))})
		wantAPIError[*types.LimitExceededException](t, err, "LimitExceeded")
		// Replacing a policy counts its new size only.
		_, err = c.PutRolePolicy(ctx, &iamsdk.PutRolePolicyInput{RoleName: aws.String("r"), PolicyName: aws.String("A"), PolicyDocument: aws.String(big(9000))})
		mustNoErr(t, err)
	})
}

func TestListRolesPagination(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	var want []string
	for i := 0; i < 7; i++ {
		path := "/a/"
		if i%2 == 1 {
			path = "/b/"
		}
		name := fmt.Sprintf("role-%d", i)
		_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String(name), Path: aws.String(path), AssumeRolePolicyDocument: aws.String(trustEC2)})
		mustNoErr(t, err)
		want = append(want, name)
	}
	var got []string
	pages := 0
	p := iamsdk.NewListRolesPaginator(c, &iamsdk.ListRolesInput{MaxItems: aws.Int32(3)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		mustNoErr(t, err)
		pages++
		if len(out.Roles) > 3 || out.IsTruncated != (out.Marker != nil) {
			t.Fatalf("page %d: %d roles, truncated %v, marker %v", pages, len(out.Roles), out.IsTruncated, out.Marker)
		}
		for _, r := range out.Roles {
			got = append(got, aws.ToString(r.RoleName))
			if r.Tags != nil || r.PermissionsBoundary != nil {
				t.Fatalf("ListRoles returned tags or a boundary: %+v", r)
			}
			if decodeDoc(t, r.AssumeRolePolicyDocument) != trustEC2 {
				t.Fatal("ListRoles lost the trust policy")
			}
		}
	}
	if pages != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%d pages, roles %v; want 3 pages of %v", pages, got, want)
	}

	b, err := c.ListRoles(ctx, &iamsdk.ListRolesInput{PathPrefix: aws.String("/b/")})
	mustNoErr(t, err)
	if len(b.Roles) != 3 || b.IsTruncated {
		t.Fatalf("PathPrefix /b/: %d roles", len(b.Roles))
	}
	filtered, err := c.ListRoles(ctx, &iamsdk.ListRolesInput{PathPrefix: aws.String("/a/"), MaxItems: aws.Int32(2)})
	mustNoErr(t, err)
	rest, err := c.ListRoles(ctx, &iamsdk.ListRolesInput{PathPrefix: aws.String("/a/"), Marker: filtered.Marker})
	mustNoErr(t, err)
	if len(filtered.Roles) != 2 || !filtered.IsTruncated || len(rest.Roles) != 2 || rest.IsTruncated {
		t.Fatalf("filtered pages: %d (%v), %d (%v)", len(filtered.Roles), filtered.IsTruncated, len(rest.Roles), rest.IsTruncated)
	}

	_, err = c.ListRoles(ctx, &iamsdk.ListRolesInput{Marker: aws.String("!!not-a-marker")})
	wantAPIError[*types.InvalidInputException](t, err, "InvalidInput")
	_, err = c.ListRoles(ctx, &iamsdk.ListRolesInput{MaxItems: aws.Int32(1001)})
	wantAPIError[smithy.APIError](t, err, "ValidationError")
}

func TestRoleBoundary(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	pol, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("Boundary"), PolicyDocument: aws.String(allowS3)})
	mustNoErr(t, err)
	_, err = c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trustEC2),
		PermissionsBoundary: aws.String("arn:aws:iam::123456789012:policy/boundary")})
	mustNoErr(t, err)
	got, err := c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("r")})
	mustNoErr(t, err)
	if got.Role.PermissionsBoundary == nil || aws.ToString(got.Role.PermissionsBoundary.PermissionsBoundaryArn) != aws.ToString(pol.Policy.Arn) ||
		got.Role.PermissionsBoundary.PermissionsBoundaryType != types.PermissionsBoundaryAttachmentTypePolicy {
		t.Fatalf("boundary %+v (names are stored in their created case)", got.Role.PermissionsBoundary)
	}
	gp, err := c.GetPolicy(ctx, &iamsdk.GetPolicyInput{PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	if aws.ToInt32(gp.Policy.PermissionsBoundaryUsageCount) != 1 {
		t.Fatalf("boundary usage %d", aws.ToInt32(gp.Policy.PermissionsBoundaryUsageCount))
	}
	_, err = c.DeletePolicy(ctx, &iamsdk.DeletePolicyInput{PolicyArn: pol.Policy.Arn})
	wantAPIError[*types.DeleteConflictException](t, err, "DeleteConflict")
	_, err = c.DeleteRolePermissionsBoundary(ctx, &iamsdk.DeleteRolePermissionsBoundaryInput{RoleName: aws.String("r")})
	mustNoErr(t, err)
	got, err = c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("r")})
	mustNoErr(t, err)
	if got.Role.PermissionsBoundary != nil {
		t.Fatal("boundary still set")
	}
	_, err = c.PutRolePermissionsBoundary(ctx, &iamsdk.PutRolePermissionsBoundaryInput{RoleName: aws.String("r"), PermissionsBoundary: pol.Policy.Arn})
	mustNoErr(t, err)
	_, err = c.DeleteRole(ctx, &iamsdk.DeleteRoleInput{RoleName: aws.String("r")})
	mustNoErr(t, err)
	// Deleting the role released the boundary.
	_, err = c.DeletePolicy(ctx, &iamsdk.DeletePolicyInput{PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
}

// TestTerraformRoleSequence replays the calls Terraform's aws provider makes
// for aws_iam_role, aws_iam_role_policy and aws_iam_role_policy_attachment:
// create, read back (GetRole, ListRolePolicies + GetRolePolicy,
// ListAttachedRolePolicies), and destroy (ListInstanceProfilesForRole,
// detach, delete inline, DeleteRole).
func TestTerraformRoleSequence(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("tf"), Path: aws.String("/"),
		AssumeRolePolicyDocument: aws.String(trustEC2), MaxSessionDuration: aws.Int32(3600),
		Tags: []types.Tag{{Key: aws.String("managed-by"), Value: aws.String("terraform")}}})
	mustNoErr(t, err)
	_, err = c.PutRolePolicy(ctx, &iamsdk.PutRolePolicyInput{RoleName: aws.String("tf"), PolicyName: aws.String("inline"), PolicyDocument: aws.String(allowS3)})
	mustNoErr(t, err)
	pol, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("tf-managed"), PolicyDocument: aws.String(allowS3),
		Description: aws.String("managed by terraform")})
	mustNoErr(t, err)
	gv, err := c.GetPolicyVersion(ctx, &iamsdk.GetPolicyVersionInput{PolicyArn: pol.Policy.Arn, VersionId: pol.Policy.DefaultVersionId})
	mustNoErr(t, err)
	if decodeDoc(t, gv.PolicyVersion.Document) != allowS3 {
		t.Fatal("policy document round trip")
	}
	_, err = c.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String("tf"), PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)

	role, err := c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("tf")})
	mustNoErr(t, err)
	if _, err := url.QueryUnescape(aws.ToString(role.Role.AssumeRolePolicyDocument)); err != nil {
		t.Fatal(err)
	}
	inline, err := c.ListRolePolicies(ctx, &iamsdk.ListRolePoliciesInput{RoleName: aws.String("tf")})
	mustNoErr(t, err)
	for _, n := range inline.PolicyNames {
		_, err := c.GetRolePolicy(ctx, &iamsdk.GetRolePolicyInput{RoleName: aws.String("tf"), PolicyName: aws.String(n)})
		mustNoErr(t, err)
	}
	attached, err := c.ListAttachedRolePolicies(ctx, &iamsdk.ListAttachedRolePoliciesInput{RoleName: aws.String("tf")})
	mustNoErr(t, err)
	if len(attached.AttachedPolicies) != 1 {
		t.Fatalf("attached %+v", attached.AttachedPolicies)
	}

	// Destroy.
	_, err = c.ListInstanceProfilesForRole(ctx, &iamsdk.ListInstanceProfilesForRoleInput{RoleName: aws.String("tf")})
	mustNoErr(t, err)
	_, err = c.DetachRolePolicy(ctx, &iamsdk.DetachRolePolicyInput{RoleName: aws.String("tf"), PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	_, err = c.DeleteRolePolicy(ctx, &iamsdk.DeleteRolePolicyInput{RoleName: aws.String("tf"), PolicyName: aws.String("inline")})
	mustNoErr(t, err)
	_, err = c.DeleteRole(ctx, &iamsdk.DeleteRoleInput{RoleName: aws.String("tf")})
	mustNoErr(t, err)
	versions, err := c.ListPolicyVersions(ctx, &iamsdk.ListPolicyVersionsInput{PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	if len(versions.Versions) != 1 || !versions.Versions[0].IsDefaultVersion {
		t.Fatalf("versions %+v", versions.Versions)
	}
	_, err = c.DeletePolicy(ctx, &iamsdk.DeletePolicyInput{PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	// Terraform's read after destroy treats NoSuchEntity as gone.
	_, err = c.ListInstanceProfilesForRole(ctx, &iamsdk.ListInstanceProfilesForRoleInput{RoleName: aws.String("tf")})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
}
