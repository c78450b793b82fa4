package iam

import (
	"context"
	"strings"
)

// Handlers shared by roles and users: tags, inline policies, attached
// managed policies, permissions boundaries.

// entityRef is the RoleName or UserName member of a request.
type entityRef struct {
	RoleName *string `query:"RoleName"`
	UserName *string `query:"UserName"`
}

// name returns the entity name for kind, checked.
func (r entityRef) name(kind EntityKind) (string, error) {
	v, member := r.RoleName, "roleName"
	if kind == UserEntity {
		v, member = r.UserName, "userName"
	}
	if v == nil {
		return "", missing(member)
	}
	return *v, checkName(member, *v, 64)
}

// entityTarget is an entity as authorization sees it.
type entityTarget struct {
	kind    EntityKind
	name    string
	arn     string
	found   bool
	tags    []Tag
	role    Role
	user    User
	missing error // ErrNoSuchEntity when !found
}

// authorizeEntity reads a role or user and authorizes the call on its ARN
// with its tags as aws:ResourceTag. A missing entity is authorized on the
// ARN it would have (path "/") and then reported as NoSuchEntity, so a
// caller without permission learns nothing about existence.
func (a *API) authorizeEntity(ctx context.Context, inv *invocation, kind EntityKind, name string, extra map[string][]string) (entityTarget, error) {
	t := entityTarget{kind: kind, name: name, arn: entityARN(a.ents.account, kind, DefaultPath, name)}
	var err error
	if kind == RoleEntity {
		t.role, err = a.ents.Role(ctx, name)
		t.arn, t.tags = t.role.ARN, t.role.Tags
	} else {
		t.user, err = a.ents.User(ctx, name)
		t.arn, t.tags = t.user.ARN, t.user.Tags
	}
	switch {
	case err == nil:
		t.found = true
	case isNoSuchEntity(err):
		t.arn = entityARN(a.ents.account, kind, DefaultPath, name)
		t.missing = err
	default:
		return t, err
	}
	if err := inv.authorize(ctx, t.arn, resourceTagContext(t.tags, extra)); err != nil {
		return t, err
	}
	if !t.found {
		return t, t.missing
	}
	return t, nil
}

type tagEntityInput struct {
	entityRef
	Tags []tagParam `query:"Tags,required"`
}

func (a *API) tagEntity(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in tagEntityInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.name(kind)
	if err != nil {
		return nil, err
	}
	tags, err := checkTags("tags", in.Tags)
	if err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, kind, name, tagContext(tags, nil)); err != nil {
		return nil, err
	}
	return nil, a.ents.TagEntity(ctx, kind, name, tags)
}

type untagEntityInput struct {
	entityRef
	TagKeys []string `query:"TagKeys,required"`
}

func (a *API) untagEntity(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in untagEntityInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.name(kind)
	if err != nil {
		return nil, err
	}
	if err := checkTagKeys("tagKeys", in.TagKeys); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, kind, name, tagContext(nil, in.TagKeys)); err != nil {
		return nil, err
	}
	return nil, a.ents.UntagEntity(ctx, kind, name, in.TagKeys)
}

type listEntityInput struct {
	entityRef
	pageParams
}

func (in listEntityInput) check(kind EntityKind) (string, error) {
	name, err := in.name(kind)
	if err != nil {
		return "", err
	}
	return name, in.pageParams.check()
}

func (a *API) listEntityTags(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in listEntityInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.check(kind)
	if err != nil {
		return nil, err
	}
	t, err := a.authorizeEntity(ctx, inv, kind, name, nil)
	if err != nil {
		return nil, err
	}
	page, next, err := pageOf(t.tags, func(t Tag) string { return t.Key }, in.page())
	if err != nil {
		return nil, err
	}
	return tagsResult{Tags: list(xmlTags(page)), IsTruncated: next != "", Marker: next}, nil
}

type inlinePolicyInput struct {
	entityRef
	PolicyName     string  `query:"PolicyName,required"`
	PolicyDocument *string `query:"PolicyDocument"`
}

func (in inlinePolicyInput) check(kind EntityKind, needDocument bool) (string, error) {
	name, err := in.name(kind)
	if err != nil {
		return "", err
	}
	if err := checkName("policyName", in.PolicyName, 128); err != nil {
		return "", err
	}
	if needDocument {
		if in.PolicyDocument == nil {
			return "", missing("policyDocument")
		}
		if err := checkDocument("policyDocument", *in.PolicyDocument); err != nil {
			return "", err
		}
	}
	return name, nil
}

func (a *API) putEntityPolicy(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in inlinePolicyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.check(kind, true)
	if err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, kind, name, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.PutInlinePolicy(ctx, kind, name, in.PolicyName, *in.PolicyDocument)
}

func (a *API) getEntityPolicy(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in inlinePolicyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.check(kind, false)
	if err != nil {
		return nil, err
	}
	t, err := a.authorizeEntity(ctx, inv, kind, name, nil)
	if err != nil {
		return nil, err
	}
	inline := t.role.InlinePolicies
	entityName := t.role.Name
	if kind == UserEntity {
		inline, entityName = t.user.InlinePolicies, t.user.Name
	}
	for _, p := range inline {
		if strings.EqualFold(p.Name, in.PolicyName) {
			r := inlinePolicyResult{PolicyName: p.Name, PolicyDocument: encodeDocument(p.Document)}
			if kind == RoleEntity {
				r.RoleName = entityName
			} else {
				r.UserName = entityName
			}
			return r, nil
		}
	}
	return nil, noSuchInline(kind, in.PolicyName)
}

func (a *API) deleteEntityPolicy(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in inlinePolicyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.check(kind, false)
	if err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, kind, name, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.DeleteInlinePolicy(ctx, kind, name, in.PolicyName)
}

func (a *API) listEntityPolicies(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in listEntityInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.check(kind)
	if err != nil {
		return nil, err
	}
	t, err := a.authorizeEntity(ctx, inv, kind, name, nil)
	if err != nil {
		return nil, err
	}
	inline := t.role.InlinePolicies
	if kind == UserEntity {
		inline = t.user.InlinePolicies
	}
	names := make([]string, len(inline))
	for i, p := range inline {
		names[i] = p.Name
	}
	page, next, err := pageOf(names, strings.ToLower, in.page())
	if err != nil {
		return nil, err
	}
	return policyNamesResult{PolicyNames: list(page), IsTruncated: next != "", Marker: next}, nil
}

type attachInput struct {
	entityRef
	PolicyArn string `query:"PolicyArn,required"`
}

func (a *API) attachEntityPolicy(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in attachInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.name(kind)
	if err != nil {
		return nil, err
	}
	if err := checkARN("policyArn", in.PolicyArn); err != nil {
		return nil, err
	}
	extra := map[string][]string{"iam:PolicyARN": {in.PolicyArn}}
	if _, err := a.authorizeEntity(ctx, inv, kind, name, extra); err != nil {
		return nil, err
	}
	return nil, a.ents.AttachPolicy(ctx, kind, name, in.PolicyArn)
}

func (a *API) detachEntityPolicy(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in attachInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.name(kind)
	if err != nil {
		return nil, err
	}
	if err := checkARN("policyArn", in.PolicyArn); err != nil {
		return nil, err
	}
	extra := map[string][]string{"iam:PolicyARN": {in.PolicyArn}}
	if _, err := a.authorizeEntity(ctx, inv, kind, name, extra); err != nil {
		return nil, err
	}
	return nil, a.ents.DetachPolicy(ctx, kind, name, in.PolicyArn)
}

type listAttachedInput struct {
	entityRef
	PathPrefix string `query:"PathPrefix"`
	pageParams
}

func (a *API) listAttachedPolicies(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in listAttachedInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.name(kind)
	if err != nil {
		return nil, err
	}
	if err := firstError(checkPathPrefix("pathPrefix", in.PathPrefix), in.pageParams.check()); err != nil {
		return nil, err
	}
	t, err := a.authorizeEntity(ctx, inv, kind, name, nil)
	if err != nil {
		return nil, err
	}
	arns := t.role.AttachedPolicies
	if kind == UserEntity {
		arns = t.user.AttachedPolicies
	}
	var attached []xmlAttachedPolicy
	for _, arn := range arns {
		res, ok := parseIAMARN(a.ents.account, arn)
		if !ok || in.PathPrefix != "" && !strings.HasPrefix(res.Path, in.PathPrefix) {
			continue
		}
		attached = append(attached, xmlAttachedPolicy{PolicyName: res.Name, PolicyArn: arn})
	}
	page, next, err := pageOf(attached, func(p xmlAttachedPolicy) string { return p.PolicyArn }, in.page())
	if err != nil {
		return nil, err
	}
	return attachedPoliciesResult{AttachedPolicies: list(page), IsTruncated: next != "", Marker: next}, nil
}

type boundaryInput struct {
	entityRef
	PermissionsBoundary *string `query:"PermissionsBoundary"`
}

func (a *API) putBoundary(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in boundaryInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.name(kind)
	if err != nil {
		return nil, err
	}
	if in.PermissionsBoundary == nil {
		return nil, missing("permissionsBoundary")
	}
	if err := checkARN("permissionsBoundary", *in.PermissionsBoundary); err != nil {
		return nil, err
	}
	extra := map[string][]string{"iam:PermissionsBoundary": {*in.PermissionsBoundary}}
	if _, err := a.authorizeEntity(ctx, inv, kind, name, extra); err != nil {
		return nil, err
	}
	return nil, a.ents.SetPermissionsBoundary(ctx, kind, name, *in.PermissionsBoundary)
}

func (a *API) deleteBoundary(ctx context.Context, inv *invocation, kind EntityKind) (any, error) {
	var in boundaryInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	name, err := in.name(kind)
	if err != nil {
		return nil, err
	}
	t, err := a.authorizeEntity(ctx, inv, kind, name, nil)
	if err != nil {
		return nil, err
	}
	have := t.role.PermissionsBoundary
	if kind == UserEntity {
		have = t.user.PermissionsBoundary
	}
	if have != "" {
		inv.resources = append(inv.resources, have)
	}
	return nil, a.ents.SetPermissionsBoundary(ctx, kind, name, "")
}
