package iam

import (
	"context"
	"sort"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
)

type createUserInput struct {
	UserName            string     `query:"UserName,required"`
	Path                *string    `query:"Path"`
	PermissionsBoundary string     `query:"PermissionsBoundary"`
	Tags                []tagParam `query:"Tags"`
}

func (a *API) createUser(ctx context.Context, inv *invocation) (any, error) {
	var in createUserInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(
		checkName("userName", in.UserName, 64),
		checkPath("path", in.Path),
		checkOptionalARN("permissionsBoundary", in.PermissionsBoundary),
	); err != nil {
		return nil, err
	}
	tags, err := checkTags("tags", in.Tags)
	if err != nil {
		return nil, err
	}
	arn := entityARN(a.ents.account, UserEntity, defaultPath(deref(in.Path)), in.UserName)
	extra := tagContext(tags, nil)
	if in.PermissionsBoundary != "" {
		extra["iam:PermissionsBoundary"] = []string{in.PermissionsBoundary}
	}
	if err := inv.authorize(ctx, arn, extra); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		if err := inv.authorizeAction(ctx, "iam:TagUser", arn, extra); err != nil {
			return nil, err
		}
	}
	u, err := a.ents.CreateUser(ctx, NewUser{Name: in.UserName, Path: deref(in.Path),
		PermissionsBoundary: in.PermissionsBoundary, Tags: tags})
	if err != nil {
		return nil, err
	}
	return userResult{User: userXML(u, true)}, nil
}

type optionalUserInput struct {
	UserName *string `query:"UserName"`
}

// callerUserName resolves an optional UserName: absent means the calling
// IAM user, as in IAM.
func callerUserName(p *authn.Principal, name *string) (string, error) {
	if name != nil {
		return *name, checkName("userName", *name, 64)
	}
	if p != nil && p.Kind == authn.KindIAMUser && p.Name != "" {
		return p.Name, nil
	}
	return "", awsproto.ValidationError("Must specify userName when calling with non-User credentials")
}

func (a *API) getUser(ctx context.Context, inv *invocation) (any, error) {
	var in optionalUserInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if p := inv.c.Principal; in.UserName == nil && p.IsRoot() {
		// The root answers for itself, as IAM does: no name, no path.
		if err := inv.authorize(ctx, p.ARN, nil); err != nil {
			return nil, err
		}
		return userResult{User: xmlUser{UserID: p.AccountID, Arn: p.ARN}}, nil
	}
	name, err := callerUserName(inv.c.Principal, in.UserName)
	if err != nil {
		return nil, err
	}
	t, err := a.authorizeEntity(ctx, inv, UserEntity, name, nil)
	if err != nil {
		return nil, err
	}
	return userResult{User: userXML(t.user, true)}, nil
}

type userNameInput struct {
	UserName string `query:"UserName,required"`
}

func (a *API) deleteUser(ctx context.Context, inv *invocation) (any, error) {
	var in userNameInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkName("userName", in.UserName, 64); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, UserEntity, in.UserName, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.DeleteUser(ctx, in.UserName)
}

func (a *API) listUsers(ctx context.Context, inv *invocation) (any, error) {
	var in listByPathInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, "*", nil); err != nil {
		return nil, err
	}
	users, next, err := a.ents.ListUsers(ctx, in.PathPrefix, in.page())
	if err != nil {
		return nil, err
	}
	out := make([]xmlUser, len(users))
	for i, u := range users {
		out[i] = userXML(u, false)
	}
	return usersResult{Users: list(out), IsTruncated: next != "", Marker: next}, nil
}

type listByUserInput struct {
	UserName string `query:"UserName,required"`
	pageParams
}

// listGroupsForUser answers that the user is in no group: sigil has no
// groups. Terraform asks before deleting a user.
func (a *API) listGroupsForUser(ctx context.Context, inv *invocation) (any, error) {
	var in listByUserInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkName("userName", in.UserName, 64), in.pageParams.check()); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, UserEntity, in.UserName, nil); err != nil {
		return nil, err
	}
	return groupsResult{}, nil
}

// Access keys.

func (a *API) createAccessKey(ctx context.Context, inv *invocation) (any, error) {
	var in optionalUserInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := callerUserName(inv.c.Principal, in.UserName)
	if err != nil {
		return nil, err
	}
	t, err := a.authorizeEntity(ctx, inv, UserEntity, name, nil)
	if err != nil {
		return nil, err
	}
	key, info, err := a.ents.CreateAccessKey(ctx, t.user.Name)
	if err != nil {
		return nil, err
	}
	return accessKeyResult{AccessKey: xmlAccessKey{UserName: info.UserName, AccessKeyID: key.AccessKeyID,
		Status: info.Status, SecretAccessKey: key.SecretAccessKey, CreateDate: xmlTime(info.Created)}}, nil
}

type accessKeyInput struct {
	UserName    *string `query:"UserName"`
	AccessKeyID string  `query:"AccessKeyId,required"`
	Status      string  `query:"Status"`
}

func (a *API) deleteAccessKey(ctx context.Context, inv *invocation) (any, error) {
	var in accessKeyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := callerUserName(inv.c.Principal, in.UserName)
	if err != nil {
		return nil, err
	}
	if err := checkAccessKeyID("accessKeyId", in.AccessKeyID); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, UserEntity, name, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.DeleteAccessKey(ctx, name, in.AccessKeyID)
}

func (a *API) updateAccessKey(ctx context.Context, inv *invocation) (any, error) {
	var in accessKeyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := callerUserName(inv.c.Principal, in.UserName)
	if err != nil {
		return nil, err
	}
	if err := firstError(
		checkAccessKeyID("accessKeyId", in.AccessKeyID),
		checkEnum("status", in.Status, authn.StatusActive, authn.StatusInactive),
	); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, UserEntity, name, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.UpdateAccessKey(ctx, name, in.AccessKeyID, in.Status)
}

type listAccessKeysInput struct {
	UserName *string `query:"UserName"`
	pageParams
}

func (a *API) listAccessKeys(ctx context.Context, inv *invocation) (any, error) {
	var in listAccessKeysInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := callerUserName(inv.c.Principal, in.UserName)
	if err != nil {
		return nil, err
	}
	if err := in.pageParams.check(); err != nil {
		return nil, err
	}
	t, err := a.authorizeEntity(ctx, inv, UserEntity, name, nil)
	if err != nil {
		return nil, err
	}
	infos, err := a.ents.AccessKeys(ctx, t.user.Name)
	if err != nil {
		return nil, err
	}
	meta := make([]xmlAccessKeyMetadata, len(infos))
	for i, k := range infos {
		meta[i] = xmlAccessKeyMetadata{UserName: k.UserName, AccessKeyID: k.AccessKeyID, Status: k.Status, CreateDate: xmlTime(k.Created)}
	}
	sort.Slice(meta, func(i, j int) bool { return meta[i].AccessKeyID < meta[j].AccessKeyID })
	page, next, err := pageOf(meta, func(m xmlAccessKeyMetadata) string { return m.AccessKeyID }, in.page())
	if err != nil {
		return nil, err
	}
	return accessKeysResult{UserName: t.user.Name, AccessKeyMetadata: list(page), IsTruncated: next != "", Marker: next}, nil
}

type accessKeyIDInput struct {
	AccessKeyID string `query:"AccessKeyId,required"`
}

// getAccessKeyLastUsed names a key's user; sigil does not track last use,
// so it reports "N/A" as IAM does for a key never used.
func (a *API) getAccessKeyLastUsed(ctx context.Context, inv *invocation) (any, error) {
	var in accessKeyIDInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkAccessKeyID("accessKeyId", in.AccessKeyID); err != nil {
		return nil, err
	}
	info, err := a.ents.AccessKeyInfo(ctx, in.AccessKeyID)
	if err != nil && !isNoSuchEntity(err) {
		return nil, err
	}
	arn := "*"
	if err == nil {
		arn = entityARN(a.ents.account, UserEntity, DefaultPath, info.UserName)
		if u, uerr := a.ents.User(ctx, info.UserName); uerr == nil {
			arn = u.ARN
		}
	}
	if aerr := inv.authorize(ctx, arn, nil); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, err
	}
	return accessKeyLastUsedResult{UserName: info.UserName,
		AccessKeyLastUsed: xmlAccessKeyLastUsed{ServiceName: "N/A", Region: "N/A"}}, nil
}
