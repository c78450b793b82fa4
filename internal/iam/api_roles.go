package iam

import (
	"context"
)

type createRoleInput struct {
	RoleName                 string     `query:"RoleName,required"`
	Path                     *string    `query:"Path"`
	AssumeRolePolicyDocument string     `query:"AssumeRolePolicyDocument,required"`
	Description              *string    `query:"Description"`
	MaxSessionDuration       *int32     `query:"MaxSessionDuration"`
	PermissionsBoundary      string     `query:"PermissionsBoundary"`
	Tags                     []tagParam `query:"Tags"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (a *API) createRole(ctx context.Context, inv *invocation) (any, error) {
	var in createRoleInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(
		checkName("roleName", in.RoleName, 64),
		checkPath("path", in.Path),
		checkDocument("assumeRolePolicyDocument", in.AssumeRolePolicyDocument),
		checkDescription("description", in.Description),
		checkMaxSession("maxSessionDuration", in.MaxSessionDuration),
		checkOptionalARN("permissionsBoundary", in.PermissionsBoundary),
	); err != nil {
		return nil, err
	}
	tags, err := checkTags("tags", in.Tags)
	if err != nil {
		return nil, err
	}
	arn := entityARN(a.ents.account, RoleEntity, defaultPath(deref(in.Path)), in.RoleName)
	extra := tagContext(tags, nil)
	if in.PermissionsBoundary != "" {
		extra["iam:PermissionsBoundary"] = []string{in.PermissionsBoundary}
	}
	if err := inv.authorize(ctx, arn, extra); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		// As in IAM, tagging on create also needs the tagging permission.
		if err := inv.authorizeAction(ctx, "iam:TagRole", arn, extra); err != nil {
			return nil, err
		}
	}
	r, err := a.ents.CreateRole(ctx, NewRole{Name: in.RoleName, Path: deref(in.Path),
		Description: deref(in.Description), MaxSessionDuration: deref(in.MaxSessionDuration),
		TrustPolicy: in.AssumeRolePolicyDocument, PermissionsBoundary: in.PermissionsBoundary, Tags: tags})
	if err != nil {
		return nil, err
	}
	return roleResult{Role: roleXML(r, true)}, nil
}

type roleNameInput struct {
	RoleName string `query:"RoleName,required"`
}

func (a *API) getRole(ctx context.Context, inv *invocation) (any, error) {
	var in roleNameInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkName("roleName", in.RoleName, 64); err != nil {
		return nil, err
	}
	t, err := a.authorizeEntity(ctx, inv, RoleEntity, in.RoleName, nil)
	if err != nil {
		return nil, err
	}
	return roleResult{Role: roleXML(t.role, true)}, nil
}

type updateRoleInput struct {
	RoleName           string  `query:"RoleName,required"`
	Description        *string `query:"Description"`
	MaxSessionDuration *int32  `query:"MaxSessionDuration"`
}

func (a *API) updateRole(ctx context.Context, inv *invocation) (any, error) {
	var in updateRoleInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(
		checkName("roleName", in.RoleName, 64),
		checkDescription("description", in.Description),
		checkMaxSession("maxSessionDuration", in.MaxSessionDuration),
	); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, RoleEntity, in.RoleName, nil); err != nil {
		return nil, err
	}
	if _, err := a.ents.UpdateRole(ctx, in.RoleName, RoleUpdate{Description: in.Description, MaxSessionDuration: in.MaxSessionDuration}); err != nil {
		return nil, err
	}
	return emptyResult{}, nil
}

type updateRoleDescriptionInput struct {
	RoleName    string `query:"RoleName,required"`
	Description string `query:"Description,required"`
}

func (a *API) updateRoleDescription(ctx context.Context, inv *invocation) (any, error) {
	var in updateRoleDescriptionInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkName("roleName", in.RoleName, 64), checkDescription("description", &in.Description)); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, RoleEntity, in.RoleName, nil); err != nil {
		return nil, err
	}
	r, err := a.ents.UpdateRole(ctx, in.RoleName, RoleUpdate{Description: &in.Description})
	if err != nil {
		return nil, err
	}
	return roleResult{Role: roleXML(r, true)}, nil
}

type updateAssumeRolePolicyInput struct {
	RoleName       string `query:"RoleName,required"`
	PolicyDocument string `query:"PolicyDocument,required"`
}

func (a *API) updateAssumeRolePolicy(ctx context.Context, inv *invocation) (any, error) {
	var in updateAssumeRolePolicyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkName("roleName", in.RoleName, 64), checkDocument("policyDocument", in.PolicyDocument)); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, RoleEntity, in.RoleName, nil); err != nil {
		return nil, err
	}
	_, err := a.ents.UpdateRole(ctx, in.RoleName, RoleUpdate{TrustPolicy: &in.PolicyDocument})
	return nil, err
}

func (a *API) deleteRole(ctx context.Context, inv *invocation) (any, error) {
	var in roleNameInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkName("roleName", in.RoleName, 64); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, RoleEntity, in.RoleName, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.DeleteRole(ctx, in.RoleName)
}

type listByPathInput struct {
	PathPrefix string `query:"PathPrefix"`
	pageParams
}

func (in listByPathInput) check() error {
	return firstError(checkPathPrefix("pathPrefix", in.PathPrefix), in.pageParams.check())
}

func (a *API) listRoles(ctx context.Context, inv *invocation) (any, error) {
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
	roles, next, err := a.ents.ListRoles(ctx, in.PathPrefix, in.page())
	if err != nil {
		return nil, err
	}
	out := make([]xmlRole, len(roles))
	for i, r := range roles {
		out[i] = roleXML(r, false)
	}
	return rolesResult{Roles: list(out), IsTruncated: next != "", Marker: next}, nil
}

type listByRoleInput struct {
	RoleName string `query:"RoleName,required"`
	pageParams
}

// listInstanceProfilesForRole answers that the role is in no instance
// profile: sigil has none. Terraform asks before deleting a role.
func (a *API) listInstanceProfilesForRole(ctx context.Context, inv *invocation) (any, error) {
	var in listByRoleInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkName("roleName", in.RoleName, 64), in.pageParams.check()); err != nil {
		return nil, err
	}
	if _, err := a.authorizeEntity(ctx, inv, RoleEntity, in.RoleName, nil); err != nil {
		return nil, err
	}
	return instanceProfilesResult{}, nil
}
