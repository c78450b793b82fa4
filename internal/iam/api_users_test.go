package iam

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"sigil.dev/sigil/internal/authn"
)

func TestUserLifecycle(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client

	created, err := c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("ci"), Path: aws.String("/bots/"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("build")}}})
	mustNoErr(t, err)
	u := created.User
	if aws.ToString(u.Arn) != "arn:aws:iam::123456789012:user/bots/ci" || aws.ToString(u.Path) != "/bots/" ||
		!strings.HasPrefix(aws.ToString(u.UserId), "AIDA") || len(aws.ToString(u.UserId)) != 21 || len(u.Tags) != 1 {
		t.Fatalf("created user %+v", u)
	}
	_, err = c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("CI")})
	wantAPIError[*types.EntityAlreadyExistsException](t, err, "EntityAlreadyExists")

	got, err := c.GetUser(ctx, &iamsdk.GetUserInput{UserName: aws.String("ci")})
	mustNoErr(t, err)
	if aws.ToString(got.User.UserId) != aws.ToString(u.UserId) {
		t.Fatalf("GetUser %+v", got.User)
	}
	// Without a name, GetUser answers for the root caller.
	me, err := c.GetUser(ctx, &iamsdk.GetUserInput{})
	mustNoErr(t, err)
	if aws.ToString(me.User.Arn) != "arn:aws:iam::123456789012:root" || aws.ToString(me.User.UserId) != testAccount || me.User.UserName != nil {
		t.Fatalf("GetUser as root %+v", me.User)
	}

	// Inline and attached policies, and the order DeleteUser insists on.
	_, err = c.PutUserPolicy(ctx, &iamsdk.PutUserPolicyInput{UserName: aws.String("ci"), PolicyName: aws.String("read"), PolicyDocument: aws.String(allowS3)})
	mustNoErr(t, err)
	up, err := c.GetUserPolicy(ctx, &iamsdk.GetUserPolicyInput{UserName: aws.String("ci"), PolicyName: aws.String("read")})
	mustNoErr(t, err)
	if decodeDoc(t, up.PolicyDocument) != allowS3 || aws.ToString(up.UserName) != "ci" {
		t.Fatalf("GetUserPolicy %+v", up)
	}
	list, err := c.ListUserPolicies(ctx, &iamsdk.ListUserPoliciesInput{UserName: aws.String("ci")})
	mustNoErr(t, err)
	if fmt.Sprint(list.PolicyNames) != "[read]" {
		t.Fatalf("ListUserPolicies %v", list.PolicyNames)
	}
	pol, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("all"), PolicyDocument: aws.String(allowAll)})
	mustNoErr(t, err)
	_, err = c.AttachUserPolicy(ctx, &iamsdk.AttachUserPolicyInput{UserName: aws.String("ci"), PolicyArn: pol.Policy.Arn})
	mustNoErr(t, err)
	att, err := c.ListAttachedUserPolicies(ctx, &iamsdk.ListAttachedUserPoliciesInput{UserName: aws.String("ci")})
	mustNoErr(t, err)
	if len(att.AttachedPolicies) != 1 || aws.ToString(att.AttachedPolicies[0].PolicyArn) != aws.ToString(pol.Policy.Arn) {
		t.Fatalf("attached %+v", att.AttachedPolicies)
	}
	key, err := c.CreateAccessKey(ctx, &iamsdk.CreateAccessKeyInput{UserName: aws.String("ci")})
	mustNoErr(t, err)

	groups, err := c.ListGroupsForUser(ctx, &iamsdk.ListGroupsForUserInput{UserName: aws.String("ci")})
	mustNoErr(t, err)
	if len(groups.Groups) != 0 {
		t.Fatalf("groups %+v", groups.Groups)
	}

	steps := []struct {
		conflict string
		clear    func() error
	}{
		{"must delete access keys first", func() error {
			_, err := c.DeleteAccessKey(ctx, &iamsdk.DeleteAccessKeyInput{UserName: aws.String("ci"), AccessKeyId: key.AccessKey.AccessKeyId})
			return err
		}},
		{"must detach all policies first", func() error {
			_, err := c.DetachUserPolicy(ctx, &iamsdk.DetachUserPolicyInput{UserName: aws.String("ci"), PolicyArn: pol.Policy.Arn})
			return err
		}},
		{"must delete policies first", func() error {
			_, err := c.DeleteUserPolicy(ctx, &iamsdk.DeleteUserPolicyInput{UserName: aws.String("ci"), PolicyName: aws.String("read")})
			return err
		}},
	}
	for _, s := range steps {
		_, err := c.DeleteUser(ctx, &iamsdk.DeleteUserInput{UserName: aws.String("ci")})
		wantAPIError[*types.DeleteConflictException](t, err, "DeleteConflict")
		if !strings.Contains(err.Error(), s.conflict) {
			t.Fatalf("DeleteUser: %v, want %q", err, s.conflict)
		}
		mustNoErr(t, s.clear())
	}
	_, err = c.DeleteUser(ctx, &iamsdk.DeleteUserInput{UserName: aws.String("ci")})
	mustNoErr(t, err)
	_, err = c.GetUser(ctx, &iamsdk.GetUserInput{UserName: aws.String("ci")})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	_, err = c.ListGroupsForUser(ctx, &iamsdk.ListGroupsForUserInput{UserName: aws.String("ci")})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
}

func TestAccessKeys(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	created, err := c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("app")})
	mustNoErr(t, err)

	k1, err := c.CreateAccessKey(ctx, &iamsdk.CreateAccessKeyInput{UserName: aws.String("app")})
	mustNoErr(t, err)
	ak := k1.AccessKey
	id, secret := aws.ToString(ak.AccessKeyId), aws.ToString(ak.SecretAccessKey)
	if !strings.HasPrefix(id, "AKIA") || len(id) != 20 || len(secret) != 40 || ak.Status != types.StatusTypeActive ||
		aws.ToString(ak.UserName) != "app" || ak.CreateDate == nil {
		t.Fatalf("access key %+v", ak)
	}

	// The key authenticates as the user.
	s, err := e.keys.SecretKey(ctx, id)
	mustNoErr(t, err)
	if s != secret {
		t.Fatal("stored secret differs from the returned one")
	}
	p, err := e.keys.Principal(ctx, id)
	mustNoErr(t, err)
	if p.Kind != authn.KindIAMUser || p.Name != "app" || p.ID != aws.ToString(created.User.UserId) ||
		p.ARN != "arn:aws:iam::123456789012:user/app" || p.AccountID != testAccount {
		t.Fatalf("principal %+v", p)
	}

	// The secret is in the response only: not in the audit event.
	ev := e.audit.last()
	if ev.Action != "CreateAccessKey" || !ev.ReturnsSecret || strings.Contains(fmt.Sprintf("%+v", ev), secret) {
		t.Fatalf("audit event %+v", ev)
	}

	k2, err := c.CreateAccessKey(ctx, &iamsdk.CreateAccessKeyInput{UserName: aws.String("app")})
	mustNoErr(t, err)
	_, err = c.CreateAccessKey(ctx, &iamsdk.CreateAccessKeyInput{UserName: aws.String("app")})
	wantAPIError[*types.LimitExceededException](t, err, "LimitExceeded")

	lk, err := c.ListAccessKeys(ctx, &iamsdk.ListAccessKeysInput{UserName: aws.String("app")})
	mustNoErr(t, err)
	if len(lk.AccessKeyMetadata) != 2 {
		t.Fatalf("ListAccessKeys %+v", lk.AccessKeyMetadata)
	}
	ids := map[string]bool{}
	for _, m := range lk.AccessKeyMetadata {
		ids[aws.ToString(m.AccessKeyId)] = true
		if aws.ToString(m.UserName) != "app" || m.Status != types.StatusTypeActive {
			t.Fatalf("metadata %+v", m)
		}
	}
	if !ids[id] || !ids[aws.ToString(k2.AccessKey.AccessKeyId)] {
		t.Fatalf("listed %v", ids)
	}
	page, err := c.ListAccessKeys(ctx, &iamsdk.ListAccessKeysInput{UserName: aws.String("app"), MaxItems: aws.Int32(1)})
	mustNoErr(t, err)
	if len(page.AccessKeyMetadata) != 1 || !page.IsTruncated {
		t.Fatalf("first page %+v", page)
	}

	last, err := c.GetAccessKeyLastUsed(ctx, &iamsdk.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(id)})
	mustNoErr(t, err)
	if aws.ToString(last.UserName) != "app" || aws.ToString(last.AccessKeyLastUsed.ServiceName) != "N/A" {
		t.Fatalf("GetAccessKeyLastUsed %+v", last)
	}

	// Deactivating stops authentication at once on this replica.
	_, err = c.UpdateAccessKey(ctx, &iamsdk.UpdateAccessKeyInput{UserName: aws.String("app"), AccessKeyId: aws.String(id), Status: types.StatusTypeInactive})
	mustNoErr(t, err)
	if _, err := e.keys.SecretKey(ctx, id); !errors.Is(err, authn.ErrUnknownAccessKey) {
		t.Fatalf("inactive key: %v", err)
	}
	lk, err = c.ListAccessKeys(ctx, &iamsdk.ListAccessKeysInput{UserName: aws.String("app")})
	mustNoErr(t, err)
	inactive := 0
	for _, m := range lk.AccessKeyMetadata {
		if m.Status == types.StatusTypeInactive {
			inactive++
		}
	}
	if inactive != 1 {
		t.Fatalf("%d inactive keys", inactive)
	}
	_, err = c.UpdateAccessKey(ctx, &iamsdk.UpdateAccessKeyInput{UserName: aws.String("app"), AccessKeyId: aws.String(id), Status: types.StatusTypeActive})
	mustNoErr(t, err)
	if _, err := e.keys.SecretKey(ctx, id); err != nil {
		t.Fatalf("reactivated key: %v", err)
	}
	_, err = c.UpdateAccessKey(ctx, &iamsdk.UpdateAccessKeyInput{UserName: aws.String("app"), AccessKeyId: aws.String(id), Status: "Paused"})
	wantAPIError[smithy.APIError](t, err, "ValidationError")

	// Another user's key is not this user's.
	_, err = c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("other")})
	mustNoErr(t, err)
	_, err = c.DeleteAccessKey(ctx, &iamsdk.DeleteAccessKeyInput{UserName: aws.String("other"), AccessKeyId: aws.String(id)})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	_, err = c.UpdateAccessKey(ctx, &iamsdk.UpdateAccessKeyInput{UserName: aws.String("other"), AccessKeyId: aws.String(id), Status: types.StatusTypeInactive})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")

	_, err = c.DeleteAccessKey(ctx, &iamsdk.DeleteAccessKeyInput{UserName: aws.String("app"), AccessKeyId: aws.String(id)})
	mustNoErr(t, err)
	if _, err := e.keys.SecretKey(ctx, id); !errors.Is(err, authn.ErrUnknownAccessKey) {
		t.Fatalf("deleted key: %v", err)
	}
	_, err = c.DeleteAccessKey(ctx, &iamsdk.DeleteAccessKeyInput{UserName: aws.String("app"), AccessKeyId: aws.String(id)})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	_, err = c.GetAccessKeyLastUsed(ctx, &iamsdk.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(id)})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	// A freed slot can be used again.
	_, err = c.CreateAccessKey(ctx, &iamsdk.CreateAccessKeyInput{UserName: aws.String("app")})
	mustNoErr(t, err)
}

// TestCallerImplicitUser checks the actions whose UserName defaults to the
// calling IAM user.
func TestCallerImplicitUser(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	u, err := c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("self")})
	mustNoErr(t, err)
	e.as(&authn.Principal{Kind: authn.KindIAMUser, AccountID: testAccount, ARN: aws.ToString(u.User.Arn), ID: aws.ToString(u.User.UserId), Name: "self"})
	// RootOnly denies the user everything; allow it for this test.
	e.authz.use(allowAllAuthorizer{})

	me, err := c.GetUser(ctx, &iamsdk.GetUserInput{})
	mustNoErr(t, err)
	if aws.ToString(me.User.UserName) != "self" {
		t.Fatalf("GetUser as user %+v", me.User)
	}
	k, err := c.CreateAccessKey(ctx, &iamsdk.CreateAccessKeyInput{})
	mustNoErr(t, err)
	if aws.ToString(k.AccessKey.UserName) != "self" {
		t.Fatalf("implicit CreateAccessKey for %s", aws.ToString(k.AccessKey.UserName))
	}
	keys, err := c.ListAccessKeys(ctx, &iamsdk.ListAccessKeysInput{})
	mustNoErr(t, err)
	if len(keys.AccessKeyMetadata) != 1 {
		t.Fatalf("implicit ListAccessKeys %+v", keys)
	}

	e.as(&authn.Principal{Kind: authn.KindAssumedRole, AccountID: testAccount, ARN: "arn:aws:sts::123456789012:assumed-role/r/s", ID: "AROAAAAAAAAAAAAAAAAAA:s"})
	_, err = c.GetUser(ctx, &iamsdk.GetUserInput{})
	wantAPIError[smithy.APIError](t, err, "ValidationError")
	if !strings.Contains(err.Error(), "Must specify userName") {
		t.Fatalf("GetUser as role session: %v", err)
	}
}

type allowAllAuthorizer struct{}

func (allowAllAuthorizer) Authorize(context.Context, Request) Decision {
	return Decision{Allowed: true, Reason: "allow"}
}

func TestListUsers(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	for i := 0; i < 5; i++ {
		path := "/"
		if i < 2 {
			path = "/ops/"
		}
		_, err := c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String(fmt.Sprintf("u%d", i)), Path: aws.String(path)})
		mustNoErr(t, err)
	}
	var names []string
	pg := iamsdk.NewListUsersPaginator(c, &iamsdk.ListUsersInput{MaxItems: aws.Int32(2)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		mustNoErr(t, err)
		for _, u := range out.Users {
			names = append(names, aws.ToString(u.UserName))
		}
	}
	if fmt.Sprint(names) != "[u0 u1 u2 u3 u4]" {
		t.Fatalf("users %v", names)
	}
	ops, err := c.ListUsers(ctx, &iamsdk.ListUsersInput{PathPrefix: aws.String("/ops")})
	mustNoErr(t, err)
	if len(ops.Users) != 2 {
		t.Fatalf("/ops users %d", len(ops.Users))
	}
	_, err = c.TagUser(ctx, &iamsdk.TagUserInput{UserName: aws.String("u0"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	mustNoErr(t, err)
	tags, err := c.ListUserTags(ctx, &iamsdk.ListUserTagsInput{UserName: aws.String("u0")})
	mustNoErr(t, err)
	if fmt.Sprint(tagPairs(tags.Tags)) != "[k=v]" {
		t.Fatalf("user tags %v", tagPairs(tags.Tags))
	}
	_, err = c.UntagUser(ctx, &iamsdk.UntagUserInput{UserName: aws.String("u0"), TagKeys: []string{"k"}})
	mustNoErr(t, err)
	tags, err = c.ListUserTags(ctx, &iamsdk.ListUserTagsInput{UserName: aws.String("u0")})
	mustNoErr(t, err)
	if len(tags.Tags) != 0 {
		t.Fatalf("tags after untag %v", tagPairs(tags.Tags))
	}
}
