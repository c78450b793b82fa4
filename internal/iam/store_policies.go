package iam

import (
	"context"
	"strconv"
	"strings"

	"sigil.dev/sigil/internal/store"
)

// NewPolicy is what CreatePolicy needs; Path "" means "/". The document
// becomes version v1, the default.
type NewPolicy struct {
	Name, Path, Description string
	Document                string
	Tags                    []Tag
}

// CreatePolicy creates a customer managed policy. The document must parse as
// an identity policy (at most MaxIdentityPolicySize characters without
// whitespace); a policy of that name (in any case, on any path) must not
// exist.
func (e *Entities) CreatePolicy(ctx context.Context, in NewPolicy) (ManagedPolicy, error) {
	if err := checkManagedDocument(in.Document); err != nil {
		return ManagedPolicy{}, err
	}
	id, err := newUniqueID(e.rand, policyIDPrefix)
	if err != nil {
		return ManagedPolicy{}, err
	}
	now := e.timestamp()
	rec := &policyRecord{Format: recordFormat, Name: in.Name, Path: defaultPath(in.Path), ID: id,
		Description: in.Description, Created: now, Updated: now, Default: "v1",
		Versions: []PolicyVersion{{ID: "v1", Document: in.Document, Created: now}}, NextVersion: 2,
		Tags: sortedTags(in.Tags)}
	key := policyKey(in.Name)
	err = e.update(ctx, func(v *store.View) error {
		var have policyRecord
		found, err := getJSON(v, key, &have)
		if err != nil {
			return err
		}
		if found {
			return entityErr(ErrEntityExists, "A policy called %s already exists. Duplicate names are not allowed.", have.Name)
		}
		return putJSON(v, key, rec)
	})
	if err != nil {
		return ManagedPolicy{}, err
	}
	return rec.policy(e.account), nil
}

// checkManagedDocument checks a managed policy version: IAM's size quota
// first (ErrLimitExceeded, as IAM reports it), then the grammar.
func checkManagedDocument(doc string) error {
	if policyChars(doc) > MaxIdentityPolicySize {
		return entityErr(ErrLimitExceeded, "Cannot exceed quota for PolicySize: %d", MaxIdentityPolicySize)
	}
	_, err := ParsePolicy(doc, IdentityPolicy)
	return err
}

// policyRef resolves a policy ARN to its storage key. ARNs of AWS managed
// policies (which sigil does not have) are ErrNoSuchEntity; anything that is
// not a policy ARN of this account is ErrInvalidEntityInput.
func (e *Entities) policyRef(arn string) (key, path string, err error) {
	if strings.HasPrefix(arn, "arn:aws:iam::aws:policy/") {
		return "", "", noSuchPolicy(arn)
	}
	res, ok := parseIAMARN(e.account, arn)
	if !ok || res.Type != "policy" {
		return "", "", entityErr(ErrInvalidEntityInput, "ARN %s is not valid.", arn)
	}
	return policyKey(res.Name), res.Path, nil
}

func noSuchPolicy(arn string) *EntityError {
	return entityErr(ErrNoSuchEntity, "Policy %s does not exist or is not attachable.", arn)
}

// loadPolicy reads a policy by ARN inside a transaction; the ARN's path must
// match the policy's.
func (e *Entities) loadPolicy(v *store.View, arn string) (*policyRecord, string, error) {
	key, path, err := e.policyRef(arn)
	if err != nil {
		return nil, "", err
	}
	var rec policyRecord
	found, err := getJSON(v, key, &rec)
	if err != nil {
		return nil, "", err
	}
	if !found || rec.Path != path {
		return nil, "", noSuchPolicy(arn)
	}
	return &rec, key, nil
}

func (e *Entities) modifyPolicy(ctx context.Context, arn string, fn func(v *store.View, rec *policyRecord) error) (*policyRecord, error) {
	var out *policyRecord
	err := e.update(ctx, func(v *store.View) error {
		rec, key, err := e.loadPolicy(v, arn)
		if err != nil {
			return err
		}
		if err := fn(v, rec); err != nil {
			return err
		}
		out = rec
		return putJSON(v, key, rec)
	})
	return out, err
}

// adjustPolicyCounts changes the attachment and boundary-usage counts of a
// policy inside the caller's transaction and returns the policy's ARN as
// IAM spells it (the name in its stored case).
func (e *Entities) adjustPolicyCounts(v *store.View, arn string, attach, boundary int) (string, error) {
	rec, key, err := e.loadPolicy(v, arn)
	if err != nil {
		return "", err
	}
	rec.Attachments = max(rec.Attachments+attach, 0)
	rec.Boundaries = max(rec.Boundaries+boundary, 0)
	return policyARN(e.account, rec.Path, rec.Name), putJSON(v, key, rec)
}

// Policy returns the managed policy an ARN names.
func (e *Entities) Policy(ctx context.Context, arn string) (ManagedPolicy, error) {
	var out ManagedPolicy
	err := e.read(ctx, func(v *store.View) error {
		rec, _, err := e.loadPolicy(v, arn)
		if err != nil {
			return err
		}
		out = rec.policy(e.account)
		return nil
	})
	return out, err
}

// PolicyVersion returns one version of a managed policy and whether it is
// the default.
func (e *Entities) PolicyVersion(ctx context.Context, arn, versionID string) (PolicyVersion, bool, error) {
	var (
		out       PolicyVersion
		isDefault bool
	)
	err := e.read(ctx, func(v *store.View) error {
		rec, _, err := e.loadPolicy(v, arn)
		if err != nil {
			return err
		}
		pv, ok := rec.version(versionID)
		if !ok {
			return noSuchVersion(arn, versionID)
		}
		out, isDefault = pv, rec.Default == versionID
		return nil
	})
	return out, isDefault, err
}

func noSuchVersion(arn, id string) *EntityError {
	return entityErr(ErrNoSuchEntity, "Policy %s version %s does not exist or is not attachable.", arn, id)
}

// CreatePolicyVersion adds a version to a managed policy, making it the
// default when setDefault is true. A policy keeps at most MaxPolicyVersions
// versions (ErrLimitExceeded).
func (e *Entities) CreatePolicyVersion(ctx context.Context, arn, doc string, setDefault bool) (PolicyVersion, error) {
	if err := checkManagedDocument(doc); err != nil {
		return PolicyVersion{}, err
	}
	var pv PolicyVersion
	_, err := e.modifyPolicy(ctx, arn, func(_ *store.View, rec *policyRecord) error {
		if len(rec.Versions) >= MaxPolicyVersions {
			return entityErr(ErrLimitExceeded, "A managed policy can have up to %d versions. Before you create a new version, you must delete an existing version.", MaxPolicyVersions)
		}
		now := e.timestamp()
		pv = PolicyVersion{ID: "v" + strconv.Itoa(rec.NextVersion), Document: doc, Created: now}
		rec.NextVersion++
		rec.Versions = append(rec.Versions, pv)
		if setDefault {
			rec.Default = pv.ID
			rec.Updated = now
		}
		return nil
	})
	return pv, err
}

// SetDefaultPolicyVersion makes an existing version the default.
func (e *Entities) SetDefaultPolicyVersion(ctx context.Context, arn, versionID string) error {
	_, err := e.modifyPolicy(ctx, arn, func(_ *store.View, rec *policyRecord) error {
		if _, ok := rec.version(versionID); !ok {
			return noSuchVersion(arn, versionID)
		}
		if rec.Default != versionID {
			rec.Default = versionID
			rec.Updated = e.timestamp()
		}
		return nil
	})
	return err
}

// DeletePolicyVersion deletes a version that is not the default.
func (e *Entities) DeletePolicyVersion(ctx context.Context, arn, versionID string) error {
	_, err := e.modifyPolicy(ctx, arn, func(_ *store.View, rec *policyRecord) error {
		for i, pv := range rec.Versions {
			if pv.ID != versionID {
				continue
			}
			if rec.Default == versionID {
				return entityErr(ErrDeleteConflict, "Cannot delete the default version of a policy.")
			}
			rec.Versions = append(rec.Versions[:i], rec.Versions[i+1:]...)
			return nil
		}
		return noSuchVersion(arn, versionID)
	})
	return err
}

// DeletePolicy deletes a managed policy that is attached to nothing, bounds
// nothing, and has no version but the default (ErrDeleteConflict
// otherwise), as IAM requires.
func (e *Entities) DeletePolicy(ctx context.Context, arn string) error {
	return e.update(ctx, func(v *store.View) error {
		rec, key, err := e.loadPolicy(v, arn)
		if err != nil {
			return err
		}
		switch {
		case rec.Attachments > 0 || rec.Boundaries > 0:
			return entityErr(ErrDeleteConflict, "Cannot delete a policy attached to entities.")
		case len(rec.Versions) > 1:
			return entityErr(ErrDeleteConflict, "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.")
		}
		v.Delete(key)
		return nil
	})
}

// PolicyFilter selects managed policies for ListPolicies.
type PolicyFilter struct {
	// PathPrefix keeps policies whose path starts with it ("" for all).
	PathPrefix string
	// OnlyAttached keeps policies in use: attached to a role or user when
	// Usage is "PermissionsPolicy", used as a boundary when it is
	// "PermissionsBoundary", either when it is "".
	OnlyAttached bool
	Usage        string
}

// ListPolicies lists the account's managed policies sorted by name without
// regard to case.
func (e *Entities) ListPolicies(ctx context.Context, f PolicyFilter, p Page) ([]ManagedPolicy, string, error) {
	keep := func(r *policyRecord) bool {
		if f.PathPrefix != "" && !strings.HasPrefix(r.Path, f.PathPrefix) {
			return false
		}
		if !f.OnlyAttached {
			return true
		}
		switch f.Usage {
		case "PermissionsPolicy":
			return r.Attachments > 0
		case "PermissionsBoundary":
			return r.Boundaries > 0
		}
		return r.Attachments > 0 || r.Boundaries > 0
	}
	recs, next, err := listRecords(ctx, e.store, policiesPrefix, p, keep)
	if err != nil {
		return nil, "", err
	}
	out := make([]ManagedPolicy, len(recs))
	for i, r := range recs {
		out[i] = r.policy(e.account)
	}
	return out, next, nil
}

// TagPolicy adds or replaces tags of a managed policy.
func (e *Entities) TagPolicy(ctx context.Context, arn string, tags []Tag) error {
	_, err := e.modifyPolicy(ctx, arn, func(_ *store.View, rec *policyRecord) error {
		merged := mergeTags(rec.Tags, tags)
		if len(merged) > MaxTags {
			return tagLimit()
		}
		rec.Tags = merged
		return nil
	})
	return err
}

// UntagPolicy removes tags of a managed policy.
func (e *Entities) UntagPolicy(ctx context.Context, arn string, keys []string) error {
	_, err := e.modifyPolicy(ctx, arn, func(_ *store.View, rec *policyRecord) error {
		rec.Tags = removeTags(rec.Tags, keys)
		return nil
	})
	return err
}
