package secrets

import (
	"context"
	"slices"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/store"
)

// This file holds TagResource and UntagResource.

func (s *Service) tagResource(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "TagResource", false)
	var in tagResourceInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr == nil && in.Tags == nil {
		aerr = errInvalidParameter("The parameter Tags is required.")
	}
	if aerr == nil {
		aerr = validateTags(in.Tags)
	}
	if aerr != nil {
		return nil, aerr
	}
	return s.changeTags(ctx, inv, secretID, func(tags []wireTag) []wireTag { return mergeTags(tags, in.Tags) },
		func(t target) target { return withRequestTags(t, in.Tags) })
}

func (s *Service) untagResource(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "UntagResource", false)
	var in untagResourceInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	secretID, aerr := validateSecretID(in.SecretId)
	if aerr == nil && in.TagKeys == nil {
		aerr = errInvalidParameter("The parameter TagKeys is required.")
	}
	if aerr == nil && len(in.TagKeys) > maxTags {
		aerr = errInvalidParameter("The parameter TagKeys can list at most %d keys.", maxTags)
	}
	for _, k := range in.TagKeys {
		if aerr == nil {
			aerr = validateTagKey("TagKeys", k)
		}
	}
	if aerr != nil {
		return nil, aerr
	}
	remove := func(tags []wireTag) []wireTag {
		return slices.DeleteFunc(slices.Clone(tags), func(t wireTag) bool { return slices.Contains(in.TagKeys, t.Key) })
	}
	withKeys := func(t target) target {
		if len(in.TagKeys) > 0 {
			t.context["aws:TagKeys"] = slices.Clone(in.TagKeys)
		}
		return t
	}
	return s.changeTags(ctx, inv, secretID, remove, withKeys)
}

// changeTags runs the shared part of TagResource and UntagResource: resolve,
// authorize, then rewrite the tags with change. The change is refused if
// the caller would no longer be allowed the same action on the secret with
// its new tags (the lock-out check AWS documents).
func (s *Service) changeTags(ctx context.Context, inv *invocation, secretID string,
	change func([]wireTag) []wireTag, decorate func(target) target) (any, error) {
	now := inv.nowNanos()
	r, err := s.resolve(ctx, secretID, now)
	if err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, decorate(inv.secretTarget(r))); err != nil {
		return inv.finish(ctx, nil, err)
	}
	rec, err := requireActive(r)
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	var lockout *iam.Decision
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		lockout = nil
		cur, err := viewRecord(v, rec, now)
		if err != nil {
			return err
		}
		if cur.scheduled() {
			return errMarkedForDeletion()
		}
		next := cur.clone()
		next.Tags = change(cur.Tags)
		if len(next.Tags) > maxTags {
			return errLimitExceeded("A secret can have at most %d tags; this request would leave %d.", maxTags, len(next.Tags))
		}
		if slices.Equal(next.Tags, cur.Tags) {
			return nil
		}
		after := decorate(inv.secretTarget(&resolved{given: secretID, rec: next, name: next.Name}))
		if d := s.decide(ctx, inv.c, inv.op, after); !d.Allowed {
			lockout = &d
			return accessDenied(inv.c.Principal, inv.op, next.ARN, d)
		}
		next.Changed = now
		v.Put(nameKey(cur.Name), encode(next))
		moveIndexes(v, cur, next)
		return nil
	})
	if lockout != nil {
		inv.decision = *lockout
	}
	return inv.finish(ctx, &emptyOutput{}, err)
}
