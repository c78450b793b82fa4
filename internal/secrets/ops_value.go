package secrets

import (
	"context"
	"slices"
	"time"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/store"
)

// This file holds the operations that read and write secret values:
// GetSecretValue, BatchGetSecretValue and PutSecretValue.

func (s *Service) getSecretValue(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "GetSecretValue", true)
	inv.returnsSecret = true
	var in getSecretValueInput
	if err := decodeGetSecretValueInput(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr == nil && in.VersionId != nil {
		aerr = validateToken("VersionId", *in.VersionId)
	}
	if aerr == nil && in.VersionStage != nil {
		aerr = validateStage("VersionStage", *in.VersionStage)
	}
	if aerr != nil {
		return nil, aerr
	}
	now := inv.nowNanos()
	r, err := s.resolve(ctx, secretID, now)
	if err != nil {
		return nil, err
	}
	extra := 0
	if deref(in.VersionId) != "" {
		extra++
	}
	if deref(in.VersionStage) != "" {
		extra++
	}
	t := inv.secretTargetWith(r, extra).with("secretsmanager:VersionId", deref(in.VersionId)).with("secretsmanager:VersionStage", deref(in.VersionStage))
	if err := inv.authorize(ctx, t); err != nil {
		return inv.finish(ctx, nil, err)
	}
	var out *getSecretValueOutput
	if r.rec != nil && r.rec.Dynamic {
		out, err = s.readDynamic(ctx, c, r.rec, in.VersionId, in.VersionStage)
	} else {
		out, err = s.readValue(ctx, r.rec, in.VersionId, in.VersionStage, now)
	}
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	return inv.finish(ctx, out, nil)
}

// readValue reads the version of rec chosen by versionID and/or stage
// (AWSCURRENT when neither is given) and notes the access.
func (s *Service) readValue(ctx context.Context, rec *secretRecord, versionID, stage *string, now int64) (*getSecretValueOutput, error) {
	if rec == nil {
		return nil, errSecretNotFound()
	}
	if rec.scheduled() {
		return nil, errMarkedForDeletion()
	}
	var vid string
	switch {
	case versionID != nil:
		vid = *versionID
		if stage != nil && !slices.Contains(rec.stagesOf(vid), *stage) {
			return nil, errInvalidRequest("You provided a VersionStage that is not associated to the provided VersionId.")
		}
	case stage != nil:
		if vid = rec.versionWithStage(*stage); vid == "" {
			return nil, errStageNotFound(*stage)
		}
	default:
		if vid = rec.versionWithStage(stageCurrent); vid == "" {
			return nil, errStageNotFound(stageCurrent)
		}
	}
	vv, err := s.readVersion(ctx, rec, vid)
	if err != nil {
		return nil, err
	}
	if vv == nil {
		if versionID != nil {
			return nil, errVersionNotFound(vid)
		}
		return nil, errStageNotFound(deref(stage))
	}
	// One allocation holds the response, its timestamp, its string value
	// and (usually) its labels.
	buf := &valueResponse{out: getSecretValueOutput{ARN: rec.ARN, Name: rec.Name, VersionId: vid}}
	out := &buf.out
	if lv := rec.Labeled[vid]; lv != nil && len(lv.Stages) <= len(buf.stages) {
		n := copy(buf.stages[:], lv.Stages)
		out.VersionStages = buf.stages[:n:n]
	} else {
		out.VersionStages = nonNil(rec.stagesOf(vid))
	}
	ver := vv.rec
	if ver.Created != 0 {
		buf.created = epoch(time.Unix(0, ver.Created))
		out.CreatedDate = &buf.created
	}
	// The value may be the cached one, shared and immutable; the response
	// only reads it.
	if ver.Kind == kindString {
		buf.str = vv.str
		out.SecretString = &buf.str
	} else {
		out.SecretBinary = ver.Value
	}
	out.valueJSON = vv.json
	s.touch(ctx, rec, now)
	return out, nil
}

// valueResponse is a getSecretValueOutput with room for what it points to.
type valueResponse struct {
	out     getSecretValueOutput
	created epoch
	str     string
	stages  [2]string
}

// touch records that rec was read today (LastAccessedDate, day precision).
// It writes at most once per secret and day, and only best effort: a failure
// is logged and does not fail the read.
func (s *Service) touch(ctx context.Context, rec *secretRecord, now int64) {
	day := time.Unix(0, now).UTC().Truncate(24 * time.Hour).UnixNano()
	if rec.Accessed >= day {
		return
	}
	_, err := store.Update(ctx, s.store, func(v *store.View) error {
		cur, err := viewRecord(v, rec, now)
		if err != nil || cur.Accessed >= day {
			return err
		}
		next := cur.clone()
		next.Accessed = day
		v.Put(nameKey(cur.Name), encode(next))
		moveIndexes(v, cur, next)
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "secrets: recording LastAccessedDate failed", "secret", rec.Name, "err", err)
	}
}

func (s *Service) batchGetSecretValue(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "BatchGetSecretValue", true)
	inv.returnsSecret = true
	var in batchGetSecretValueInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	switch {
	case len(in.SecretIdList) > 0 && len(in.Filters) > 0:
		return nil, errInvalidParameter("Either SecretIdList or Filters must be provided, but not both.")
	case len(in.SecretIdList) == 0 && len(in.Filters) == 0:
		return nil, errInvalidParameter("You must provide either SecretIdList or Filters.")
	case len(in.Filters) == 0 && (in.MaxResults != nil || in.NextToken != nil):
		return nil, errInvalidParameter("MaxResults and NextToken can only be used with Filters.")
	case len(in.SecretIdList) > maxBatchIDs:
		return nil, errInvalidParameter("The parameter SecretIdList can list at most %d secrets.", maxBatchIDs)
	}
	for i := range in.SecretIdList {
		if _, aerr := validateSecretID(&in.SecretIdList[i]); aerr != nil {
			return nil, aerr
		}
	}
	filters, aerr := parseFilters(in.Filters)
	if aerr != nil {
		return nil, aerr
	}
	limit, aerr := validateMaxResults(in.MaxResults, maxBatchResults, maxBatchResults)
	if aerr != nil {
		return nil, aerr
	}
	if err := inv.authorize(ctx, inv.starTarget()); err != nil {
		return inv.finish(ctx, nil, err)
	}
	now := inv.nowNanos()
	var found []*resolved
	out := &batchGetSecretValueOutput{SecretValues: []secretValueEntry{}, Errors: []apiErrorEntry{}}
	if len(filters) > 0 {
		if err := inv.authorizeAction(ctx, "ListSecrets", inv.starTarget()); err != nil {
			return inv.finish(ctx, nil, err)
		}
		page, err := s.scan(ctx, listQuery{
			op: "BatchGetSecretValue", field: sortCreated, filters: filters, limit: limit, token: in.NextToken,
		}, now)
		if err != nil {
			return inv.finish(ctx, nil, err)
		}
		for _, rec := range page.recs {
			found = append(found, &resolved{given: rec.Name, rec: rec, name: rec.Name})
		}
		out.NextToken = page.next
	} else {
		for _, id := range in.SecretIdList {
			r, err := s.resolve(ctx, id, now)
			if err != nil {
				return inv.finish(ctx, nil, err)
			}
			found = append(found, r)
		}
	}
	for _, r := range found {
		t := inv.secretTarget(r)
		d := s.decide(ctx, c, "GetSecretValue", t)
		decided := s.now()
		var err error
		var val *getSecretValueOutput
		if !d.Allowed {
			err = accessDenied(c.Principal, "GetSecretValue", t.resource, d)
		} else if r.rec != nil && r.rec.Dynamic {
			if val, err = s.readDynamic(ctx, c, r.rec, nil, nil); err != nil {
				if _, ok := err.(*awsproto.Error); !ok {
					return inv.finish(ctx, nil, err)
				}
			}
		} else if val, err = s.readValue(ctx, r.rec, nil, nil, now); err != nil {
			if _, ok := err.(*awsproto.Error); !ok {
				return inv.finish(ctx, nil, err)
			}
		}
		inv.extra = append(inv.extra, inv.event("GetSecretValue", []string{t.resource}, d, decided, err, true))
		if err != nil {
			ae := err.(*awsproto.Error)
			out.Errors = append(out.Errors, apiErrorEntry{SecretId: r.given, ErrorCode: ae.Code, Message: ae.Message})
			continue
		}
		out.SecretValues = append(out.SecretValues, secretValueEntry(*val))
	}
	inv.returnsSecret = len(out.SecretValues) > 0
	return inv.finish(ctx, out, nil)
}

func (s *Service) putSecretValue(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "PutSecretValue", false)
	var in putSecretValueInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr == nil {
		aerr = validateStages(in.VersionStages)
	}
	if aerr != nil {
		return nil, aerr
	}
	val, aerr := valueOf(in.SecretString, in.SecretBinary, false)
	if aerr != nil {
		return nil, aerr
	}
	versionID, err := s.versionIDFor(in.ClientRequestToken, val)
	if err != nil {
		return nil, err
	}
	now := inv.nowNanos()
	r, err := s.resolve(ctx, secretID, now)
	if err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, inv.secretTarget(r)); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireActive(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	var out putSecretValueOutput
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
		out = putSecretValueOutput{ARN: cur.ARN, Name: cur.Name, VersionId: versionID}
		if idx.find(versionID) >= 0 {
			same, err := sameValue(v, cur.ID, versionID, val)
			if err != nil {
				return err
			}
			if !same {
				return errTokenReused(versionID)
			}
			out.VersionStages = nonNil(cur.stagesOf(versionID))
			return nil
		}
		next := cur.clone()
		stages, err := s.addVersion(v, next, idx, versionID, val, in.VersionStages, now)
		if err != nil {
			return err
		}
		next.Changed = now
		v.Put(nameKey(cur.Name), encode(next))
		v.Put(verIndexKey(cur.ID), encode(idx))
		moveIndexes(v, cur, next)
		out.VersionStages = nonNil(stages)
		return nil
	})
	return inv.finish(ctx, &out, err)
}

// nonNil turns a nil list into an empty one, so it encodes as [].
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
