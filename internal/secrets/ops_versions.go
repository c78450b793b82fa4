package secrets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/store"
)

// This file holds the operations on versions and staging labels:
// ListSecretVersionIds and UpdateSecretVersionStage.

func (s *Service) listSecretVersionIds(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "ListSecretVersionIds", true)
	var in listSecretVersionIdsInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	limit, aerr := validateMaxResults(in.MaxResults, maxListResults, maxListResults)
	if aerr != nil {
		return nil, aerr
	}
	includeDeprecated := in.IncludeDeprecated != nil && *in.IncludeDeprecated
	r, err := s.resolve(ctx, secretID, inv.nowNanos())
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
	scope := rec.ID + "/" + strconv.FormatBool(includeDeprecated)
	var cursor *versionEntry
	if in.NextToken != nil {
		after, err := s.openToken(ctx, "ListSecretVersionIds", scope, *in.NextToken)
		if err != nil {
			return inv.finish(ctx, nil, err)
		}
		if cursor, err = parseVersionCursor(after); err != nil {
			return inv.finish(ctx, nil, err)
		}
	}
	e, err := s.store.Get(ctx, verIndexKey(rec.ID))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) { // purged since the lookup
			return inv.finish(ctx, nil, errSecretNotFound())
		}
		return inv.finish(ctx, nil, fmt.Errorf("reading version index of secret %s: %w", rec.ID, err))
	}
	idx, err := decodeVerIndex(verIndexKey(rec.ID), e.Value)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}

	// Newest first, ties broken by id, so a cursor is a position in a total
	// order that new versions (always newer) cannot disturb.
	versions := slices.Clone(idx.Versions)
	slices.SortFunc(versions, func(a, b versionEntry) int { return -compareVersions(a, b) })
	out := &listSecretVersionIdsOutput{ARN: rec.ARN, Name: rec.Name, Versions: []secretVersionsListEntry{}}
	for i, ve := range versions {
		if cursor != nil && compareVersions(ve, *cursor) >= 0 {
			continue
		}
		stages := rec.stagesOf(ve.ID)
		if len(stages) == 0 && !includeDeprecated {
			continue
		}
		if len(out.Versions) == limit {
			tok, err := s.sealToken(ctx, "ListSecretVersionIds", scope, versionCursor(versions[i-1]))
			if err != nil {
				return inv.finish(ctx, nil, err)
			}
			out.NextToken = &tok
			break
		}
		entry := secretVersionsListEntry{VersionId: ve.ID, VersionStages: stages, CreatedDate: epochOf(ve.Created)}
		if ve.KmsKeyID != "" {
			entry.KmsKeyIds = []string{ve.KmsKeyID}
		}
		out.Versions = append(out.Versions, entry)
	}
	return inv.finish(ctx, out, nil)
}

// compareVersions orders versions by creation time, then id.
func compareVersions(a, b versionEntry) int {
	switch {
	case a.Created != b.Created:
		if a.Created < b.Created {
			return -1
		}
		return 1
	default:
		return strings.Compare(a.ID, b.ID)
	}
}

func versionCursor(e versionEntry) string { return strconv.FormatInt(e.Created, 10) + "/" + e.ID }

func parseVersionCursor(s string) (*versionEntry, error) {
	t, id, ok := strings.Cut(s, "/")
	created, err := strconv.ParseInt(t, 10, 64)
	if !ok || err != nil || id == "" {
		return nil, errInvalidNextToken()
	}
	return &versionEntry{ID: id, Created: created}, nil
}

func (s *Service) updateSecretVersionStage(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "UpdateSecretVersionStage", false)
	var in updateSecretVersionStageInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	var stage string
	if aerr == nil {
		stage, aerr = required("VersionStage", in.VersionStage)
	}
	if aerr == nil {
		aerr = validateStage("VersionStage", stage)
	}
	if aerr == nil && in.MoveToVersionId != nil {
		aerr = validateToken("MoveToVersionId", *in.MoveToVersionId)
	}
	if aerr == nil && in.RemoveFromVersionId != nil {
		aerr = validateToken("RemoveFromVersionId", *in.RemoveFromVersionId)
	}
	if aerr == nil && in.MoveToVersionId == nil && in.RemoveFromVersionId == nil {
		aerr = errInvalidParameter("You must specify MoveToVersionId, RemoveFromVersionId, or both.")
	}
	if aerr != nil {
		return nil, aerr
	}
	now := inv.nowNanos()
	r, err := s.resolve(ctx, secretID, now)
	if err != nil {
		return nil, err
	}
	t := inv.secretTarget(r).with("secretsmanager:VersionStage", stage)
	if err := inv.authorize(ctx, t); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireActive(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := viewRecord(v, rec, now)
		if err != nil {
			return err
		}
		if cur.scheduled() {
			return errMarkedForDeletion()
		}
		if cur.Dynamic {
			return errDynamicValue()
		}
		idx, err := viewVerIndex(v, cur.ID)
		if err != nil {
			return err
		}
		next := cur.clone()
		if err := moveStage(next, idx, stage, in.MoveToVersionId, in.RemoveFromVersionId); err != nil {
			return err
		}
		if n := next.labelCount(); n > maxLabels {
			return errLimitExceeded("A secret can have at most %d staging labels across all its versions; this request would leave %d.", maxLabels, n)
		}
		if labelsEqual(cur, next) {
			return nil
		}
		next.Changed = now
		v.Put(nameKey(cur.Name), encode(next))
		moveIndexes(v, cur, next)
		return nil
	})
	return inv.finish(ctx, &arnNameOutput{ARN: rec.ARN, Name: rec.Name}, err)
}

// moveStage applies UpdateSecretVersionStage's rules to rec: a label on
// another version moves only if RemoveFromVersionId names that version,
// AWSCURRENT can be moved but never just removed, and moving AWSCURRENT
// moves AWSPREVIOUS to the version it left.
func moveStage(rec *secretRecord, idx *versionIndex, stage string, moveTo, removeFrom *string) error {
	holder := rec.versionWithStage(stage)
	if removeFrom != nil {
		if idx.find(*removeFrom) < 0 {
			return errInvalidParameter("The parameter RemoveFromVersionId names version %s, which doesn't exist in this secret.", *removeFrom)
		}
		if holder != *removeFrom {
			return errInvalidParameter("The staging label %s is not attached to version %s, so it can't be removed from it.", stage, *removeFrom)
		}
	}
	if moveTo == nil {
		if stage == stageCurrent {
			return errInvalidParameter("You can't remove the staging label AWSCURRENT from version %s without moving it to another version: specify MoveToVersionId.", holder)
		}
		rec.removeStage(stage)
		return nil
	}
	i := idx.find(*moveTo)
	if i < 0 {
		return errInvalidParameter("The parameter MoveToVersionId names version %s, which doesn't exist in this secret.", *moveTo)
	}
	if holder == *moveTo {
		return nil
	}
	if holder != "" && removeFrom == nil {
		return errInvalidParameter("The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", stage, holder)
	}
	if stage == stageCurrent {
		moveCurrent(rec, *moveTo, idx.Versions[i].Created)
		return nil
	}
	rec.addStage(*moveTo, idx.Versions[i].Created, stage)
	return nil
}

// labelsEqual reports whether a and b attach the same labels to the same
// versions.
func labelsEqual(a, b *secretRecord) bool {
	if len(a.Labeled) != len(b.Labeled) {
		return false
	}
	for id, lv := range a.Labeled {
		other, ok := b.Labeled[id]
		if !ok || !slices.Equal(lv.Stages, other.Stages) {
			return false
		}
	}
	return true
}
