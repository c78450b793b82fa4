package secrets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/store"
)

// This file holds dynamic secrets: secrets whose value is not stored but
// issued for each caller by a DynamicIssuer (a database user, for
// example). Everything else about them (names, ARNs, tags, resource
// policies, authorization, audit, deletion) is that of any secret.

// DynamicIssuer issues the value of a dynamic secret for one caller. The
// server implements it over internal/dynamic.
type DynamicIssuer interface {
	// IssueDynamic returns the value of secret for the caller session.
	// Errors that are not *awsproto.Error become InternalServiceError for
	// the client and are logged with their cause.
	IssueDynamic(ctx context.Context, req DynamicRequest) (DynamicValue, error)
	// PurgedDynamic is told that the dynamic secret name has been purged
	// (its recovery window ended or it was force-deleted), so the issuer
	// can revoke what it issued and drop its configuration. Failures are
	// the issuer's to log and retry.
	PurgedDynamic(ctx context.Context, name string)
}

// DynamicRequest names what IssueDynamic should issue and for whom.
type DynamicRequest struct {
	// Secret and ARN name the dynamic secret.
	Secret, ARN string
	// Session identifies the caller: "session:<id>" for temporary
	// credentials, "key:<access key id>" for long-term keys. The same
	// session may be handed the same value again.
	Session string
	// Principal is the caller.
	Principal *authn.Principal
	// RequestID is the request's id, for the issuer's log lines.
	RequestID string
}

// DynamicValue is an issued value.
type DynamicValue struct {
	// VersionID identifies the issue (the lease); it is shown as the
	// VersionId of GetSecretValue, with the AWSCURRENT label.
	VersionID string
	// String is the SecretString returned.
	String string
	// JSON, when not nil, is String already encoded as a JSON string
	// (QuotedJSON), so that an issuer serving the same value again spares
	// the response its encoding.
	JSON []byte
	// Created is when the value was issued.
	Created time.Time
}

// SessionOf returns the session key of p as DynamicRequest.Session names
// it.
func SessionOf(p *authn.Principal) string {
	switch {
	case p == nil:
		return ""
	case p.Session != nil && p.Session.ID != "":
		return "session:" + p.Session.ID
	}
	return "key:" + p.AccessKeyID
}

func errDynamicValue() *awsproto.Error {
	return errInvalidRequest("The value of a dynamic secret is issued by sigil for each caller and cannot be set or staged.")
}

// readDynamic answers GetSecretValue for a dynamic secret. Only the
// AWSCURRENT value exists; a VersionId must be the one the caller's
// session holds.
func (s *Service) readDynamic(ctx context.Context, c *Call, rec *secretRecord, versionID, stage *string) (*getSecretValueOutput, error) {
	if rec.scheduled() {
		return nil, errMarkedForDeletion()
	}
	if stage != nil && *stage != stageCurrent {
		return nil, errStageNotFound(*stage)
	}
	if s.dynamic == nil {
		return nil, fmt.Errorf("dynamic secret %q read, but no dynamic issuer is configured", rec.Name)
	}
	dv, err := s.dynamic.IssueDynamic(ctx, DynamicRequest{
		Secret: rec.Name, ARN: rec.ARN, Session: SessionOf(c.Principal), Principal: c.Principal, RequestID: c.RequestID,
	})
	if err != nil {
		return nil, err
	}
	if versionID != nil && *versionID != dv.VersionID {
		return nil, errVersionNotFound(*versionID)
	}
	buf := &valueResponse{out: getSecretValueOutput{ARN: rec.ARN, Name: rec.Name, VersionId: dv.VersionID}}
	buf.stages[0] = stageCurrent
	buf.out.VersionStages = buf.stages[:1:1]
	buf.str = dv.String
	buf.out.SecretString = &buf.str
	buf.out.valueJSON = dv.JSON
	if !dv.Created.IsZero() {
		buf.created = epoch(dv.Created)
		buf.out.CreatedDate = &buf.created
	}
	s.touch(ctx, rec, s.now().UnixNano())
	return &buf.out, nil
}

// QuotedJSON returns s encoded as a JSON string, as GetSecretValue writes a
// SecretString.
func QuotedJSON(s string) []byte { return appendJSONString(make([]byte, 0, len(s)+2), s) }

// DynamicSecret describes a dynamic secret to create or update with
// PutDynamic.
type DynamicSecret struct {
	Name        string
	Description string
	Tags        map[string]string
}

// ErrNotDynamic means a static secret already has the name given to
// PutDynamic.
var ErrNotDynamic = errors.New("secrets: a static secret has this name")

// PutDynamic creates the dynamic secret d, or updates the description and
// tags of the dynamic secret of that name, and returns its ARN and whether
// it was created. It is the storage half of sigil's native API for dynamic
// secrets: the caller authorizes and audits. A static secret of the name
// is left alone and an error wrapping ErrNotDynamic returned; a secret
// scheduled for deletion is refused.
func (s *Service) PutDynamic(ctx context.Context, d DynamicSecret) (arn string, created bool, err error) {
	if aerr := validateName(d.Name); aerr != nil {
		return "", false, aerr
	}
	desc := d.Description
	if aerr := validateDescription(&desc); aerr != nil {
		return "", false, aerr
	}
	var tags []wireTag
	for k, v := range d.Tags {
		tags = append(tags, wireTag{Key: k, Value: v})
	}
	sortTags(tags)
	if aerr := validateTags(tags); aerr != nil {
		return "", false, aerr
	}
	newARN, err := s.newARN(d.Name)
	if err != nil {
		return "", false, err
	}
	id, err := s.newSecretID()
	if err != nil {
		return "", false, err
	}
	now := s.now().UnixNano()
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		arn, created = "", false
		key := nameKey(d.Name)
		e, err := v.Get(key)
		switch {
		case err == nil:
			cur, err := decodeSecret(key, e.Value)
			if err != nil {
				return err
			}
			if cur.expired(now) {
				return errInvalidRequest("The secret %s is being purged; retry shortly.", d.Name)
			}
			if cur.scheduled() {
				return errInvalidRequest("You can't update this secret because the secret %s is scheduled for deletion.", d.Name)
			}
			if !cur.Dynamic {
				return fmt.Errorf("%w: %q", ErrNotDynamic, d.Name)
			}
			next := cur.clone()
			next.Description, next.Tags = d.Description, tags
			arn = cur.ARN
			if next.Description != cur.Description || !sameTags(next.Tags, cur.Tags) {
				next.Changed = now
				v.Put(key, encode(next))
				moveIndexes(v, cur, next)
			}
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("reading secret %q: %w", d.Name, err)
		}
		if _, err := v.Get(verIndexKey(id)); err == nil {
			return fmt.Errorf("secret id %s is already in use", id)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rec := &secretRecord{V: formatVersion, ID: id, Name: d.Name, ARN: newARN, Description: d.Description,
			Tags: tags, Created: now, Changed: now, Dynamic: true}
		v.Put(key, encode(rec))
		v.Put(verIndexKey(id), encode(&versionIndex{V: formatVersion, Secret: id}))
		putIndexes(v, rec)
		arn, created = newARN, true
		return nil
	})
	if err != nil {
		return "", false, err
	}
	s.caches.records.remove(d.Name)
	return arn, created, nil
}

// DynamicSecretInfo is what Dynamic reports about a secret.
type DynamicSecretInfo struct {
	ARN string
	// Dynamic is true for a dynamic secret.
	Dynamic bool
	// Deleted is true when the secret is scheduled for deletion.
	Deleted bool
}

// Lookup returns the ARN of the secret name and whether it is dynamic, or
// an error wrapping store.ErrNotFound when no secret has the name.
func (s *Service) Lookup(ctx context.Context, name string) (DynamicSecretInfo, error) {
	rec, err := s.getRecord(ctx, name)
	if err != nil {
		return DynamicSecretInfo{}, err
	}
	if rec == nil || rec.expired(s.now().UnixNano()) {
		return DynamicSecretInfo{}, fmt.Errorf("secret %q: %w", name, store.ErrNotFound)
	}
	return DynamicSecretInfo{ARN: rec.ARN, Dynamic: rec.Dynamic, Deleted: rec.scheduled()}, nil
}

// ARNPattern returns the pattern every ARN of a secret named name matches
// (the name, a hyphen and six characters), for authorizing a request about
// a secret that may not exist yet.
func (s *Service) ARNPattern(name string) string { return s.arnPattern(name) }

func sortTags(tags []wireTag) {
	slices.SortFunc(tags, func(a, b wireTag) int { return strings.Compare(a.Key, b.Key) })
}

func sameTags(a, b []wireTag) bool { return slices.Equal(a, b) }
