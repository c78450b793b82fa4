package secrets

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/store"
)

// This file holds the operations on a secret as a whole: CreateSecret,
// UpdateSecret, DescribeSecret, DeleteSecret and RestoreSecret.

func (s *Service) createSecret(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "CreateSecret", false)
	var in createSecretInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	name, aerr := required("Name", in.Name)
	if aerr == nil {
		aerr = validateName(name)
	}
	if aerr == nil {
		aerr = firstError(validateDescription(in.Description), validateKmsKeyID(in.KmsKeyId), validateTags(in.Tags),
			refuseUnsupported(in.Type, len(in.AddReplicaRegions), in.CrossAccountPrimaryARN))
	}
	if aerr != nil {
		return nil, aerr
	}
	val, aerr := valueOf(in.SecretString, in.SecretBinary, true)
	if aerr != nil {
		return nil, aerr
	}
	versionID, err := s.versionIDFor(in.ClientRequestToken, val)
	if err != nil {
		return nil, err
	}
	arn, err := s.newARN(name)
	if err != nil {
		return nil, err
	}
	id, err := s.newSecretID()
	if err != nil {
		return nil, err
	}

	t := inv.starTarget()
	t.resource = arn
	t = t.with("secretsmanager:Name", name).with("secretsmanager:SecretId", arn).
		with("secretsmanager:Description", deref(in.Description)).with("secretsmanager:KmsKeyId", deref(in.KmsKeyId))
	t = withRequestTags(t, in.Tags)
	if err := inv.authorize(ctx, t); err != nil {
		return inv.finish(ctx, nil, err)
	}
	if len(in.Tags) > 0 {
		if err := inv.authorizeAction(ctx, "TagResource", t); err != nil {
			return inv.finish(ctx, nil, err)
		}
	}

	now := inv.nowNanos()
	var (
		out        createSecretOutput
		replacedID string // an expired secret this creation replaces
	)
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		out, replacedID = createSecretOutput{}, ""
		key := nameKey(name)
		e, err := v.Get(key)
		switch {
		case err == nil:
			old, err := decodeSecret(key, e.Value)
			if err != nil {
				return err
			}
			if !old.expired(now) {
				return existingOnCreate(v, old, in.ClientRequestToken, val, &out)
			}
			// The old secret's recovery window is over: it no longer
			// exists. Retire it in this transaction and finish its purge
			// afterwards.
			deleteIndexes(v, old)
			v.Put(tombstoneKey(old.ID), encode(&tombstone{V: formatVersion, Secret: old.ID, Name: old.Name}))
			replacedID = old.ID
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("reading secret %q: %w", name, err)
		}
		if _, err := v.Get(verIndexKey(id)); err == nil {
			return fmt.Errorf("secret id %s is already in use", id)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rec := &secretRecord{
			V: formatVersion, ID: id, Name: name, ARN: arn,
			Description: deref(in.Description), KmsKeyID: deref(in.KmsKeyId), Tags: in.Tags,
			Created: now, Changed: now,
		}
		idx := &versionIndex{V: formatVersion, Secret: id}
		if val.kind != "" {
			if _, err := s.addVersion(v, rec, idx, versionID, val, nil, now); err != nil {
				return err
			}
			out.VersionId = versionID
		}
		v.Put(key, encode(rec))
		v.Put(verIndexKey(id), encode(idx))
		putIndexes(v, rec)
		out.ARN, out.Name = arn, name
		return nil
	})
	if err == nil && replacedID != "" {
		s.finishPurgeQuietly(ctx, replacedID)
	}
	if err == nil && out.ARN != arn {
		inv.resources = []string{out.ARN} // an idempotent retry names the existing secret
	}
	return inv.finish(ctx, &out, err)
}

// existingOnCreate handles CreateSecret for a name that is taken: a retry
// with the same ClientRequestToken and value succeeds with the original
// response; anything else is refused.
func existingOnCreate(v *store.View, old *secretRecord, token *string, val secretValue, out *createSecretOutput) error {
	if old.scheduled() {
		return errInvalidRequest("You can't create this secret because a secret with the name %s is already scheduled for deletion.", old.Name)
	}
	if token != nil && val.kind != "" {
		idx, err := viewVerIndex(v, old.ID)
		if err != nil {
			return err
		}
		if idx.find(*token) >= 0 {
			same, err := sameValue(v, old.ID, *token, val)
			if err != nil {
				return err
			}
			if !same {
				return errTokenReused(*token)
			}
			*out = createSecretOutput{ARN: old.ARN, Name: old.Name, VersionId: *token}
			return nil
		}
	}
	return errResourceExists("The operation failed because the secret %s already exists.", old.Name)
}

// versionIDFor validates a ClientRequestToken, or makes a VersionId when
// the request creates a version without one.
func (s *Service) versionIDFor(token *string, val secretValue) (string, error) {
	if token != nil {
		if err := validateToken("ClientRequestToken", *token); err != nil {
			return "", err
		}
		return *token, nil
	}
	if val.kind == "" {
		return "", nil
	}
	return s.newUUID()
}

func (s *Service) updateSecret(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "UpdateSecret", false)
	var in updateSecretInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr == nil {
		aerr = firstError(validateDescription(in.Description), validateKmsKeyID(in.KmsKeyId), refuseUnsupported(in.Type, 0, nil))
	}
	if aerr != nil {
		return nil, aerr
	}
	val, aerr := valueOf(in.SecretString, in.SecretBinary, true)
	if aerr != nil {
		return nil, aerr
	}
	versionID, err := s.versionIDFor(in.ClientRequestToken, val)
	if err != nil {
		return nil, err
	}
	r, err := s.resolve(ctx, secretID, inv.nowNanos())
	if err != nil {
		return nil, err
	}
	t := inv.secretTarget(r).with("secretsmanager:Description", deref(in.Description)).with("secretsmanager:KmsKeyId", deref(in.KmsKeyId))
	if err := inv.authorize(ctx, t); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireActive(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	now := inv.nowNanos()
	var out updateSecretOutput
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := viewRecord(v, rec, now)
		if err != nil {
			return err
		}
		if cur.scheduled() {
			return errMarkedForDeletion()
		}
		next := cur.clone()
		if in.Description != nil {
			next.Description = *in.Description
		}
		if in.KmsKeyId != nil {
			next.KmsKeyID = *in.KmsKeyId
		}
		changed := next.Description != cur.Description || next.KmsKeyID != cur.KmsKeyID
		out = updateSecretOutput{ARN: cur.ARN, Name: cur.Name}
		if val.kind != "" && cur.Dynamic {
			return errDynamicValue()
		}
		if val.kind != "" {
			idx, err := viewVerIndex(v, cur.ID)
			if err != nil {
				return err
			}
			if idx.find(versionID) >= 0 {
				same, err := sameValue(v, cur.ID, versionID, val)
				if err != nil {
					return err
				}
				if !same {
					return errTokenReused(versionID)
				}
			} else {
				if _, err := s.addVersion(v, next, idx, versionID, val, nil, now); err != nil {
					return err
				}
				v.Put(verIndexKey(cur.ID), encode(idx))
				changed = true
			}
			out.VersionId = versionID
		}
		if changed {
			next.Changed = now
			v.Put(nameKey(cur.Name), encode(next))
			moveIndexes(v, cur, next)
		}
		return nil
	})
	return inv.finish(ctx, &out, err)
}

// resolveSecretID decodes a request whose only member is SecretId and
// resolves the secret it names. Its errors (malformed input, no such
// secret) come before authorization, so they are returned as they are and
// reach no audit record.
func (s *Service) resolveSecretID(ctx context.Context, c *Call, now int64) (*resolved, error) {
	var in secretIDInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	return s.resolve(ctx, secretID, now)
}

func (s *Service) describeSecret(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "DescribeSecret", true)
	r, err := s.resolveSecretID(ctx, c, inv.nowNanos())
	if err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, inv.secretTarget(r)); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireSecret(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	return inv.finish(ctx, &describeSecretOutput{
		ARN:                rec.ARN,
		Name:               rec.Name,
		Description:        rec.Description,
		KmsKeyId:           rec.KmsKeyID,
		CreatedDate:        epochOf(rec.Created),
		LastChangedDate:    epochOf(rec.Changed),
		LastAccessedDate:   epochOf(rec.Accessed),
		DeletedDate:        epochOf(rec.Deleted),
		Tags:               rec.Tags,
		VersionIdsToStages: rec.versionsToStages(),
		PrimaryRegion:      s.region,
		rotationInfo:       rotationInfoOf(rec),
	}, nil)
}

func (s *Service) deleteSecret(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "DeleteSecret", false)
	var in deleteSecretInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	force := in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery
	days := int64(defaultRecovery)
	if in.RecoveryWindowInDays != nil {
		if force {
			return nil, errInvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
		}
		if days = *in.RecoveryWindowInDays; days < minRecoveryDays || days > maxRecoveryDays {
			return nil, errInvalidParameter("The RecoveryWindowInDays value must be between %d and %d days (inclusive).", minRecoveryDays, maxRecoveryDays)
		}
	}
	now := inv.nowNanos()
	r, err := s.resolve(ctx, secretID, now)
	if err != nil {
		return nil, err
	}
	t := inv.secretTarget(r).with("secretsmanager:ForceDeleteWithoutRecovery", strconv.FormatBool(force))
	if in.RecoveryWindowInDays != nil {
		t = t.with("secretsmanager:RecoveryWindowInDays", strconv.FormatInt(days, 10))
	}
	if err := inv.authorize(ctx, t); err != nil {
		return inv.finish(ctx, nil, err)
	}
	if r.rec == nil {
		if !force {
			return inv.finish(ctx, nil, errSecretNotFound())
		}
		// Force-deleting a missing secret succeeds, as AWS documents.
		out := &deleteSecretOutput{Name: r.name, DeletionDate: epochOf(now)}
		if r.name == "" {
			out.Name = secretID
		}
		if len(secretID) > 4 && secretID[:4] == "arn:" {
			out.ARN = secretID
		}
		return inv.finish(ctx, out, nil)
	}
	rec := r.rec
	if force {
		if _, err := s.purge(ctx, rec.Name, func(cur *secretRecord) bool { return cur.ID == rec.ID }); err != nil {
			return inv.finish(ctx, nil, err)
		}
		return inv.finish(ctx, &deleteSecretOutput{ARN: rec.ARN, Name: rec.Name, DeletionDate: epochOf(now)}, nil)
	}
	var out deleteSecretOutput
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := viewRecord(v, rec, now)
		if err != nil {
			return err
		}
		if cur.scheduled() {
			return errMarkedForDeletion()
		}
		next := cur.clone()
		next.Deleted = now
		next.Deletion = now + days*int64(24*time.Hour)
		next.Changed = now
		v.Put(nameKey(cur.Name), encode(next))
		moveIndexes(v, cur, next)
		out = deleteSecretOutput{ARN: cur.ARN, Name: cur.Name, DeletionDate: epochOf(next.Deletion)}
		return nil
	})
	return inv.finish(ctx, &out, err)
}

func (s *Service) restoreSecret(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "RestoreSecret", false)
	now := inv.nowNanos()
	r, err := s.resolveSecretID(ctx, c, now)
	if err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, inv.secretTarget(r)); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireSecret(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := viewRecord(v, rec, now)
		if err != nil || !cur.scheduled() {
			return err
		}
		next := cur.clone()
		next.Deleted, next.Deletion = 0, 0
		next.Changed = now
		v.Put(nameKey(cur.Name), encode(next))
		moveIndexes(v, cur, next)
		return nil
	})
	return inv.finish(ctx, &arnNameOutput{ARN: rec.ARN, Name: rec.Name}, err)
}

// firstError returns the first non-nil error.
func firstError(errs ...*awsproto.Error) *awsproto.Error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// deref returns *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
