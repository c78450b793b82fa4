package iam

import (
	"context"
	"errors"
	"sort"
	"strings"

	"sigil.dev/sigil/internal/store"
)

// Roles and users share their storage, inline policies, attachments, tags and
// permissions boundaries; the functions here take an EntityKind.

// NewRole is what CreateRole needs; Path "" means "/", MaxSessionDuration 0
// means DefaultMaxSessionDuration. Names, paths and lengths must already be
// valid (the API checks them); the trust policy is checked here.
type NewRole struct {
	Name, Path, Description string
	MaxSessionDuration      int32
	TrustPolicy             string
	PermissionsBoundary     string
	Tags                    []Tag
}

// CreateRole creates a role. It fails with ErrEntityExists when a role of
// that name exists (in any case), ErrMalformedPolicy for a bad trust policy,
// and ErrNoSuchEntity for a boundary policy that does not exist.
func (e *Entities) CreateRole(ctx context.Context, in NewRole) (Role, error) {
	if err := checkTrustDocument(in.TrustPolicy); err != nil {
		return Role{}, err
	}
	id, err := newUniqueID(e.rand, roleIDPrefix)
	if err != nil {
		return Role{}, err
	}
	rec := &entityRecord{Format: recordFormat, Name: in.Name, Path: defaultPath(in.Path), ID: id,
		Created: e.timestamp(), Description: in.Description, MaxSessionDuration: in.MaxSessionDuration,
		TrustPolicy: in.TrustPolicy, Boundary: in.PermissionsBoundary, Tags: sortedTags(in.Tags)}
	if rec.MaxSessionDuration == 0 {
		rec.MaxSessionDuration = DefaultMaxSessionDuration
	}
	if err := e.createEntity(ctx, RoleEntity, rec); err != nil {
		return Role{}, err
	}
	return rec.role(e.account), nil
}

// NewUser is what CreateUser needs; Path "" means "/".
type NewUser struct {
	Name, Path          string
	PermissionsBoundary string
	Tags                []Tag
}

// CreateUser creates an IAM user (without access keys).
func (e *Entities) CreateUser(ctx context.Context, in NewUser) (User, error) {
	id, err := newUniqueID(e.rand, userIDPrefix)
	if err != nil {
		return User{}, err
	}
	rec := &entityRecord{Format: recordFormat, Name: in.Name, Path: defaultPath(in.Path), ID: id,
		Created: e.timestamp(), Boundary: in.PermissionsBoundary, Tags: sortedTags(in.Tags)}
	if err := e.createEntity(ctx, UserEntity, rec); err != nil {
		return User{}, err
	}
	return rec.user(e.account), nil
}

// checkTrustDocument checks a trust policy: IAM's size quota first
// (ErrLimitExceeded), then the grammar.
func checkTrustDocument(doc string) error {
	if policyChars(doc) > MaxTrustPolicySize {
		return entityErr(ErrLimitExceeded, "Cannot exceed quota for ACLSizePerRole: %d", MaxTrustPolicySize)
	}
	_, err := ParsePolicy(doc, TrustPolicy)
	return err
}

func defaultPath(p string) string {
	if p == "" {
		return DefaultPath
	}
	return p
}

func sortedTags(ts []Tag) []Tag {
	out := cloneSlice(ts)
	sortTags(out)
	return out
}

func (e *Entities) createEntity(ctx context.Context, kind EntityKind, rec *entityRecord) error {
	key := entityKey(kind, rec.Name)
	return e.update(ctx, func(v *store.View) error {
		var have entityRecord
		found, err := getJSON(v, key, &have)
		if err != nil {
			return err
		}
		if found {
			return entityErr(ErrEntityExists, "%s with name %s already exists.", titleKind(kind), have.Name)
		}
		if rec.Boundary != "" {
			canonical, err := e.adjustPolicyCounts(v, rec.Boundary, 0, 1)
			if err != nil {
				return err
			}
			rec.Boundary = canonical
		}
		return putJSON(v, key, rec)
	})
}

func titleKind(k EntityKind) string {
	if k == RoleEntity {
		return "Role"
	}
	return "User"
}

func noSuchEntity(kind EntityKind, name string) *EntityError {
	return entityErr(ErrNoSuchEntity, "The %s with name %s cannot be found.", kind, name)
}

// loadEntity reads a role or user inside a transaction.
func loadEntity(v *store.View, kind EntityKind, name string) (*entityRecord, error) {
	var rec entityRecord
	found, err := getJSON(v, entityKey(kind, name), &rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, noSuchEntity(kind, name)
	}
	return &rec, nil
}

// modifyEntity runs fn on a role or user and stores the result.
func (e *Entities) modifyEntity(ctx context.Context, kind EntityKind, name string, fn func(v *store.View, rec *entityRecord) error) (*entityRecord, error) {
	var out *entityRecord
	err := e.update(ctx, func(v *store.View) error {
		rec, err := loadEntity(v, kind, name)
		if err != nil {
			return err
		}
		if err := fn(v, rec); err != nil {
			return err
		}
		out = rec
		return putJSON(v, entityKey(kind, rec.Name), rec)
	})
	return out, err
}

func (e *Entities) getEntity(ctx context.Context, kind EntityKind, name string) (*entityRecord, error) {
	var out *entityRecord
	err := e.read(ctx, func(v *store.View) error {
		rec, err := loadEntity(v, kind, name)
		out = rec
		return err
	})
	return out, err
}

// Role returns the role with that name (in any case).
func (e *Entities) Role(ctx context.Context, name string) (Role, error) {
	rec, err := e.getEntity(ctx, RoleEntity, name)
	if err != nil {
		return Role{}, err
	}
	return rec.role(e.account), nil
}

// RoleByARN returns the role an ARN of this account names, including its
// path. An ARN that is not a role ARN of this account is ErrInvalidEntityInput.
func (e *Entities) RoleByARN(ctx context.Context, arn string) (Role, error) {
	res, ok := parseIAMARN(e.account, arn)
	if !ok || res.Type != "role" {
		return Role{}, entityErr(ErrInvalidEntityInput, "ARN %s is not valid.", arn)
	}
	r, err := e.Role(ctx, res.Name)
	if err != nil {
		return Role{}, err
	}
	if r.Path != res.Path {
		return Role{}, noSuchEntity(RoleEntity, res.Name)
	}
	return r, nil
}

// User returns the IAM user with that name (in any case).
func (e *Entities) User(ctx context.Context, name string) (User, error) {
	rec, err := e.getEntity(ctx, UserEntity, name)
	if err != nil {
		return User{}, err
	}
	return rec.user(e.account), nil
}

// RoleUpdate changes the given fields of a role; nil fields stay.
type RoleUpdate struct {
	Description        *string
	MaxSessionDuration *int32
	// TrustPolicy is checked as a trust policy.
	TrustPolicy *string
}

// UpdateRole applies u to the role.
func (e *Entities) UpdateRole(ctx context.Context, name string, u RoleUpdate) (Role, error) {
	if u.TrustPolicy != nil {
		if err := checkTrustDocument(*u.TrustPolicy); err != nil {
			return Role{}, err
		}
	}
	rec, err := e.modifyEntity(ctx, RoleEntity, name, func(_ *store.View, rec *entityRecord) error {
		if u.Description != nil {
			rec.Description = *u.Description
		}
		if u.MaxSessionDuration != nil {
			rec.MaxSessionDuration = *u.MaxSessionDuration
		}
		if u.TrustPolicy != nil {
			rec.TrustPolicy = *u.TrustPolicy
		}
		return nil
	})
	if err != nil {
		return Role{}, err
	}
	return rec.role(e.account), nil
}

// DeleteRole deletes a role that has no inline or attached policies
// (ErrDeleteConflict otherwise).
func (e *Entities) DeleteRole(ctx context.Context, name string) error {
	return e.deleteEntity(ctx, RoleEntity, name)
}

// DeleteUser deletes a user that has no access keys, inline or attached
// policies (ErrDeleteConflict otherwise).
func (e *Entities) DeleteUser(ctx context.Context, name string) error {
	return e.deleteEntity(ctx, UserEntity, name)
}

func (e *Entities) deleteEntity(ctx context.Context, kind EntityKind, name string) error {
	return e.update(ctx, func(v *store.View) error {
		rec, err := loadEntity(v, kind, name)
		if err != nil {
			return err
		}
		switch {
		case len(rec.AccessKeys) > 0:
			return entityErr(ErrDeleteConflict, "Cannot delete entity, must delete access keys first.")
		case len(rec.Attached) > 0:
			return entityErr(ErrDeleteConflict, "Cannot delete entity, must detach all policies first.")
		case len(rec.Inline) > 0:
			return entityErr(ErrDeleteConflict, "Cannot delete entity, must delete policies first.")
		}
		if rec.Boundary != "" {
			if _, err := e.adjustPolicyCounts(v, rec.Boundary, 0, -1); err != nil && !isNoSuchEntity(err) {
				return err
			}
		}
		v.Delete(entityKey(kind, rec.Name))
		return nil
	})
}

// ListRoles lists roles whose path starts with pathPrefix ("" or "/" for
// all), sorted by name without regard to case.
func (e *Entities) ListRoles(ctx context.Context, pathPrefix string, p Page) ([]Role, string, error) {
	recs, next, err := listRecords(ctx, e.store, rolesPrefix, p, pathFilter(pathPrefix))
	if err != nil {
		return nil, "", err
	}
	out := make([]Role, len(recs))
	for i, r := range recs {
		out[i] = r.role(e.account)
	}
	return out, next, nil
}

// ListUsers lists users as ListRoles lists roles.
func (e *Entities) ListUsers(ctx context.Context, pathPrefix string, p Page) ([]User, string, error) {
	recs, next, err := listRecords(ctx, e.store, usersPrefix, p, pathFilter(pathPrefix))
	if err != nil {
		return nil, "", err
	}
	out := make([]User, len(recs))
	for i, r := range recs {
		out[i] = r.user(e.account)
	}
	return out, next, nil
}

func pathFilter(prefix string) func(*entityRecord) bool {
	if prefix == "" || prefix == "/" {
		return nil
	}
	return func(r *entityRecord) bool { return strings.HasPrefix(r.Path, prefix) }
}

// Tags.

// TagEntity adds or replaces tags of a role or user; keys are compared
// without regard to case. More than MaxTags in total is ErrLimitExceeded.
func (e *Entities) TagEntity(ctx context.Context, kind EntityKind, name string, tags []Tag) error {
	_, err := e.modifyEntity(ctx, kind, name, func(_ *store.View, rec *entityRecord) error {
		merged := mergeTags(rec.Tags, tags)
		if len(merged) > MaxTags {
			return tagLimit()
		}
		rec.Tags = merged
		return nil
	})
	return err
}

// UntagEntity removes the tags with the given keys; absent keys are ignored.
func (e *Entities) UntagEntity(ctx context.Context, kind EntityKind, name string, keys []string) error {
	_, err := e.modifyEntity(ctx, kind, name, func(_ *store.View, rec *entityRecord) error {
		rec.Tags = removeTags(rec.Tags, keys)
		return nil
	})
	return err
}

func tagLimit() *EntityError {
	return entityErr(ErrLimitExceeded, "The number of tags has reached the maximum limit of %d.", MaxTags)
}

// Inline policies.

// PutInlinePolicy adds or replaces an inline policy of a role or user. The
// document must parse as an identity policy, and the entity's inline
// policies together must stay within IAM's aggregate limit
// (MaxRoleInlinePolicySize or MaxUserInlinePolicySize).
func (e *Entities) PutInlinePolicy(ctx context.Context, kind EntityKind, name, policyName, doc string) error {
	limit := MaxRoleInlinePolicySize
	if kind == UserEntity {
		limit = MaxUserInlinePolicySize
	}
	tooLarge := func(entity string) error {
		return entityErr(ErrLimitExceeded, "Maximum policy size of %d bytes exceeded for %s %s", limit, kind, entity)
	}
	if policyChars(doc) > limit {
		return tooLarge(name)
	}
	if _, err := ParsePolicyLimit(doc, IdentityPolicy, limit); err != nil {
		return err
	}
	_, err := e.modifyEntity(ctx, kind, name, func(_ *store.View, rec *entityRecord) error {
		total := policyChars(doc)
		replaced := false
		for i := range rec.Inline {
			if strings.EqualFold(rec.Inline[i].Name, policyName) {
				rec.Inline[i] = InlinePolicy{Name: rec.Inline[i].Name, Document: doc}
				replaced = true
				continue
			}
			total += policyChars(rec.Inline[i].Document)
		}
		if total > limit {
			return tooLarge(rec.Name)
		}
		if !replaced {
			rec.Inline = append(rec.Inline, InlinePolicy{Name: policyName, Document: doc})
			sort.Slice(rec.Inline, func(i, j int) bool {
				return strings.ToLower(rec.Inline[i].Name) < strings.ToLower(rec.Inline[j].Name)
			})
		}
		return nil
	})
	return err
}

// InlinePolicy returns an inline policy of a role or user.
func (e *Entities) InlinePolicy(ctx context.Context, kind EntityKind, name, policyName string) (InlinePolicy, error) {
	rec, err := e.getEntity(ctx, kind, name)
	if err != nil {
		return InlinePolicy{}, err
	}
	for _, p := range rec.Inline {
		if strings.EqualFold(p.Name, policyName) {
			return p, nil
		}
	}
	return InlinePolicy{}, noSuchInline(kind, policyName)
}

func noSuchInline(kind EntityKind, policyName string) *EntityError {
	return entityErr(ErrNoSuchEntity, "The %s policy with name %s cannot be found.", kind, policyName)
}

// DeleteInlinePolicy removes an inline policy of a role or user.
func (e *Entities) DeleteInlinePolicy(ctx context.Context, kind EntityKind, name, policyName string) error {
	_, err := e.modifyEntity(ctx, kind, name, func(_ *store.View, rec *entityRecord) error {
		for i, p := range rec.Inline {
			if strings.EqualFold(p.Name, policyName) {
				rec.Inline = append(rec.Inline[:i], rec.Inline[i+1:]...)
				return nil
			}
		}
		return noSuchInline(kind, policyName)
	})
	return err
}

// Managed policy attachments and boundaries.

// AttachPolicy attaches a managed policy to a role or user. Attaching an
// attached policy again changes nothing; more than MaxAttachedPolicies is
// ErrLimitExceeded.
func (e *Entities) AttachPolicy(ctx context.Context, kind EntityKind, name, arn string) error {
	_, err := e.modifyEntity(ctx, kind, name, func(v *store.View, rec *entityRecord) error {
		for _, a := range rec.Attached {
			if strings.EqualFold(a, arn) {
				return nil
			}
		}
		if len(rec.Attached) >= MaxAttachedPolicies {
			return entityErr(ErrLimitExceeded, "Cannot exceed quota for PoliciesPer%s: %d", titleKind(kind), MaxAttachedPolicies)
		}
		canonical, err := e.adjustPolicyCounts(v, arn, 1, 0)
		if err != nil {
			return err
		}
		rec.Attached = append(rec.Attached, canonical)
		sort.Strings(rec.Attached)
		return nil
	})
	return err
}

// DetachPolicy detaches a managed policy from a role or user; a policy that
// is not attached is ErrNoSuchEntity.
func (e *Entities) DetachPolicy(ctx context.Context, kind EntityKind, name, arn string) error {
	_, err := e.modifyEntity(ctx, kind, name, func(v *store.View, rec *entityRecord) error {
		for i, a := range rec.Attached {
			if strings.EqualFold(a, arn) {
				rec.Attached = append(rec.Attached[:i], rec.Attached[i+1:]...)
				if _, err := e.adjustPolicyCounts(v, a, -1, 0); err != nil && !isNoSuchEntity(err) {
					return err
				}
				return nil
			}
		}
		return entityErr(ErrNoSuchEntity, "Policy %s was not found.", arn)
	})
	return err
}

// SetPermissionsBoundary sets (arn != "") or removes (arn == "") the
// permissions boundary of a role or user.
func (e *Entities) SetPermissionsBoundary(ctx context.Context, kind EntityKind, name, arn string) error {
	_, err := e.modifyEntity(ctx, kind, name, func(v *store.View, rec *entityRecord) error {
		if strings.EqualFold(rec.Boundary, arn) {
			return nil
		}
		canonical := ""
		if arn != "" {
			c, err := e.adjustPolicyCounts(v, arn, 0, 1)
			if err != nil {
				return err
			}
			canonical = c
		}
		if rec.Boundary != "" {
			if _, err := e.adjustPolicyCounts(v, rec.Boundary, 0, -1); err != nil && !isNoSuchEntity(err) {
				return err
			}
		}
		rec.Boundary = canonical
		return nil
	})
	return err
}

func isNoSuchEntity(err error) bool { return errors.Is(err, ErrNoSuchEntity) }
