package iam

import "context"

type runFunc = func(a *API, ctx context.Context, inv *invocation) (any, error)

// forKind binds a handler shared by roles and users to one kind.
func forKind(kind EntityKind, f func(a *API, ctx context.Context, inv *invocation, kind EntityKind) (any, error)) runFunc {
	return func(a *API, ctx context.Context, inv *invocation) (any, error) { return f(a, ctx, inv, kind) }
}

func opWrite(f runFunc) operation { return operation{run: f} }
func opRead(f runFunc) operation  { return operation{run: f, readOnly: true} }

// lookupOperation is the table of IAM actions sigil serves.
func lookupOperation(action string) (operation, bool) {
	switch action {
	// Roles.
	case "CreateRole":
		return opWrite((*API).createRole), true
	case "GetRole":
		return opRead((*API).getRole), true
	case "UpdateRole":
		return opWrite((*API).updateRole), true
	case "UpdateRoleDescription":
		return opWrite((*API).updateRoleDescription), true
	case "UpdateAssumeRolePolicy":
		return opWrite((*API).updateAssumeRolePolicy), true
	case "DeleteRole":
		return opWrite((*API).deleteRole), true
	case "ListRoles":
		return opRead((*API).listRoles), true
	case "ListInstanceProfilesForRole":
		return opRead((*API).listInstanceProfilesForRole), true
	case "TagRole":
		return opWrite(forKind(RoleEntity, (*API).tagEntity)), true
	case "UntagRole":
		return opWrite(forKind(RoleEntity, (*API).untagEntity)), true
	case "ListRoleTags":
		return opRead(forKind(RoleEntity, (*API).listEntityTags)), true
	case "PutRolePolicy":
		return opWrite(forKind(RoleEntity, (*API).putEntityPolicy)), true
	case "GetRolePolicy":
		return opRead(forKind(RoleEntity, (*API).getEntityPolicy)), true
	case "DeleteRolePolicy":
		return opWrite(forKind(RoleEntity, (*API).deleteEntityPolicy)), true
	case "ListRolePolicies":
		return opRead(forKind(RoleEntity, (*API).listEntityPolicies)), true
	case "AttachRolePolicy":
		return opWrite(forKind(RoleEntity, (*API).attachEntityPolicy)), true
	case "DetachRolePolicy":
		return opWrite(forKind(RoleEntity, (*API).detachEntityPolicy)), true
	case "ListAttachedRolePolicies":
		return opRead(forKind(RoleEntity, (*API).listAttachedPolicies)), true
	case "PutRolePermissionsBoundary":
		return opWrite(forKind(RoleEntity, (*API).putBoundary)), true
	case "DeleteRolePermissionsBoundary":
		return opWrite(forKind(RoleEntity, (*API).deleteBoundary)), true

	// Users and access keys.
	case "CreateUser":
		return opWrite((*API).createUser), true
	case "GetUser":
		return opRead((*API).getUser), true
	case "DeleteUser":
		return opWrite((*API).deleteUser), true
	case "ListUsers":
		return opRead((*API).listUsers), true
	case "ListGroupsForUser":
		return opRead((*API).listGroupsForUser), true
	case "TagUser":
		return opWrite(forKind(UserEntity, (*API).tagEntity)), true
	case "UntagUser":
		return opWrite(forKind(UserEntity, (*API).untagEntity)), true
	case "ListUserTags":
		return opRead(forKind(UserEntity, (*API).listEntityTags)), true
	case "PutUserPolicy":
		return opWrite(forKind(UserEntity, (*API).putEntityPolicy)), true
	case "GetUserPolicy":
		return opRead(forKind(UserEntity, (*API).getEntityPolicy)), true
	case "DeleteUserPolicy":
		return opWrite(forKind(UserEntity, (*API).deleteEntityPolicy)), true
	case "ListUserPolicies":
		return opRead(forKind(UserEntity, (*API).listEntityPolicies)), true
	case "AttachUserPolicy":
		return opWrite(forKind(UserEntity, (*API).attachEntityPolicy)), true
	case "DetachUserPolicy":
		return opWrite(forKind(UserEntity, (*API).detachEntityPolicy)), true
	case "ListAttachedUserPolicies":
		return opRead(forKind(UserEntity, (*API).listAttachedPolicies)), true
	case "PutUserPermissionsBoundary":
		return opWrite(forKind(UserEntity, (*API).putBoundary)), true
	case "DeleteUserPermissionsBoundary":
		return opWrite(forKind(UserEntity, (*API).deleteBoundary)), true
	case "CreateAccessKey":
		return operation{run: (*API).createAccessKey, returnsSecret: true}, true
	case "DeleteAccessKey":
		return opWrite((*API).deleteAccessKey), true
	case "ListAccessKeys":
		return opRead((*API).listAccessKeys), true
	case "UpdateAccessKey":
		return opWrite((*API).updateAccessKey), true
	case "GetAccessKeyLastUsed":
		return opRead((*API).getAccessKeyLastUsed), true

	// Managed policies.
	case "CreatePolicy":
		return opWrite((*API).createPolicy), true
	case "GetPolicy":
		return opRead((*API).getPolicy), true
	case "DeletePolicy":
		return opWrite((*API).deletePolicy), true
	case "ListPolicies":
		return opRead((*API).listPolicies), true
	case "CreatePolicyVersion":
		return opWrite((*API).createPolicyVersion), true
	case "GetPolicyVersion":
		return opRead((*API).getPolicyVersion), true
	case "DeletePolicyVersion":
		return opWrite((*API).deletePolicyVersion), true
	case "ListPolicyVersions":
		return opRead((*API).listPolicyVersions), true
	case "SetDefaultPolicyVersion":
		return opWrite((*API).setDefaultPolicyVersion), true
	case "TagPolicy":
		return opWrite((*API).tagPolicy), true
	case "UntagPolicy":
		return opWrite((*API).untagPolicy), true
	case "ListPolicyTags":
		return opRead((*API).listPolicyTags), true

	// OIDC providers.
	case "CreateOpenIDConnectProvider":
		return opWrite((*API).createOIDCProvider), true
	case "GetOpenIDConnectProvider":
		return opRead((*API).getOIDCProvider), true
	case "DeleteOpenIDConnectProvider":
		return opWrite((*API).deleteOIDCProvider), true
	case "ListOpenIDConnectProviders":
		return opRead((*API).listOIDCProviders), true
	case "AddClientIDToOpenIDConnectProvider":
		return opWrite((*API).addOIDCClientID), true
	case "RemoveClientIDFromOpenIDConnectProvider":
		return opWrite((*API).removeOIDCClientID), true
	case "UpdateOpenIDConnectProviderThumbprint":
		return opWrite((*API).updateOIDCThumbprint), true
	case "TagOpenIDConnectProvider":
		return opWrite((*API).tagOIDCProvider), true
	case "UntagOpenIDConnectProvider":
		return opWrite((*API).untagOIDCProvider), true
	case "ListOpenIDConnectProviderTags":
		return opRead((*API).listOIDCProviderTags), true

	// Simulation.
	case "SimulatePrincipalPolicy":
		return opRead((*API).simulatePrincipalPolicy), true
	}
	return operation{}, false
}
