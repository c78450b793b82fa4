package secrets

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"sigil.dev/sigil/internal/store"
)

// arnPrefix is the ARN of this service's secrets up to the name.
func (s *Service) arnPrefix() string { return s.secretARNPrefix }

// arnPattern is the IAM resource pattern every ARN of a secret named name
// matches; it is what a request about a missing secret is authorized against.
func (s *Service) arnPattern(name string) string { return s.arnPrefix() + name + "-??????" }

// alnum is the alphabet of ARN suffixes.
const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n characters drawn uniformly from alphabet.
func (s *Service) randomString(alphabet string, n int) (string, error) {
	u := &uniform{s: s}
	out := make([]byte, n)
	for i := range out {
		j, err := u.intn(len(alphabet))
		if err != nil {
			return "", err
		}
		out[i] = alphabet[j]
	}
	return string(out), nil
}

// newARN returns a fresh ARN for a secret named name.
func (s *Service) newARN(name string) (string, error) {
	suffix, err := s.randomString(alnum, 6)
	if err != nil {
		return "", err
	}
	return s.arnPrefix() + name + "-" + suffix, nil
}

// newSecretID returns a random 128-bit secret id in hex.
func (s *Service) newSecretID() (string, error) {
	var b [16]byte
	if err := s.rand.fill(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// newUUID returns a random (version 4) UUID, the default VersionId.
func (s *Service) newUUID() (string, error) {
	var b [16]byte
	if err := s.rand.fill(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// resolved is the outcome of looking up a SecretId.
type resolved struct {
	// given is the SecretId as the caller wrote it.
	given string
	// rec is the secret, or nil when none matches.
	rec *secretRecord
	// name is the secret name the SecretId denotes, when it has one.
	name string
	// resource is what to authorize against when rec is nil.
	resource string
}

// candidate is one reading of a SecretId: a name and, for a full ARN, the
// ARN the record must have.
type candidate struct {
	name    string
	wantARN string
}

// candidates lists the readings of secretID in the order they are tried:
// a full ARN (name plus the six-character suffix), then a partial ARN (name
// only), or a plain name. An ARN of another region or account has none. The
// readings are cs[:n].
func (s *Service) candidates(secretID string) (cs [2]candidate, n int) {
	if !strings.HasPrefix(secretID, "arn:") {
		cs[0] = candidate{name: secretID}
		return cs, 1
	}
	rest, ok := strings.CutPrefix(secretID, s.arnPrefix())
	if !ok || rest == "" {
		return cs, 0
	}
	if l := len(rest); l > 7 && rest[l-7] == '-' {
		cs[n] = candidate{name: rest[:l-7], wantARN: secretID}
		n++
	}
	cs[n] = candidate{name: rest}
	return cs, n + 1
}

// resolve finds the secret secretID denotes. A secret whose recovery window
// has ended is purged on the way and treated as absent.
func (s *Service) resolve(ctx context.Context, secretID string, now int64) (*resolved, error) {
	r := &resolved{given: secretID}
	all, n := s.candidates(secretID)
	cs := all[:n]
	for _, c := range cs {
		if validateName(c.name) != nil {
			continue
		}
		rec, err := s.getRecord(ctx, c.name)
		if err != nil {
			return nil, err
		}
		if rec == nil || (c.wantARN != "" && rec.ARN != c.wantARN) {
			continue
		}
		if rec.expired(now) {
			s.purgeQuietly(ctx, rec, now)
			continue
		}
		r.rec, r.name = rec, rec.Name
		return r, nil
	}
	switch {
	case strings.HasPrefix(secretID, "arn:"):
		r.resource = secretID
		if len(cs) > 0 {
			r.name = cs[len(cs)-1].name
		}
	default:
		r.resource = s.arnPattern(secretID)
		r.name = secretID
	}
	return r, nil
}

// getRecord reads the secret record for name; nil when there is none. It
// always reads the store; the record cache only spares decoding bytes it has
// decoded before. The record returned may be shared with concurrent readers
// and must not be modified.
func (s *Service) getRecord(ctx context.Context, name string) (*secretRecord, error) {
	c, cached := s.caches.records.get(name)
	key := c.key
	if !cached {
		key = nameKey(name)
	}
	e, err := s.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret %q: %w", name, err)
	}
	if cached && bytes.Equal(c.raw, e.Value) {
		return c.rec, nil
	}
	rec, err := decodeSecret(key, e.Value)
	if err != nil {
		return nil, err
	}
	if s.caches.records != nil {
		// A copy, so the cache holds exactly these bytes whatever else
		// shares the store's buffer.
		raw := bytes.Clone(e.Value)
		s.caches.records.add(name, cachedRecord{key: key, raw: raw, rec: rec}, int64(2*len(key))+recordSize(raw))
	}
	return rec, nil
}

// viewRecord reads the record of want inside a transaction and checks it is
// still the same secret (not deleted and recreated, not expired).
func viewRecord(v *store.View, want *secretRecord, now int64) (*secretRecord, error) {
	key := nameKey(want.Name)
	e, err := v.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errSecretNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret %q: %w", want.Name, err)
	}
	rec, err := decodeSecret(key, e.Value)
	if err != nil {
		return nil, err
	}
	if rec.ID != want.ID || rec.expired(now) {
		return nil, errSecretNotFound()
	}
	return rec, nil
}

// viewVerIndex reads the version index of secret id inside a transaction.
func viewVerIndex(v *store.View, id string) (*versionIndex, error) {
	key := verIndexKey(id)
	e, err := v.Get(key)
	if err != nil {
		return nil, fmt.Errorf("reading version index of secret %s: %w", id, err)
	}
	return decodeVerIndex(key, e.Value)
}

// readVersion returns version vid of rec, a record just read from the
// store; nil when the version does not exist. A version rec labels is
// served from the version cache when the cached version has the creation
// time rec holds for it; any other version is read from the store. The
// value returned may be shared with concurrent readers and must not be
// modified.
func (s *Service) readVersion(ctx context.Context, rec *secretRecord, vid string) (*versionValue, error) {
	ref := versionRef{secret: rec.ID, version: vid}
	lv, labeled := rec.Labeled[vid]
	if labeled {
		if vv, ok := s.caches.versions.get(ref); ok && vv.rec.Created == lv.Created {
			return vv, nil
		}
	}
	key := versionKey(rec.ID, vid)
	e, err := s.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading version %s of secret %s: %w", vid, rec.ID, err)
	}
	ver, err := decodeVersion(key, e.Value)
	if err != nil {
		return nil, err
	}
	cache := s.caches.versions != nil && labeled && ver.Created == lv.Created && ver.Secret == rec.ID && ver.ID == vid
	vv := newVersionValue(ver, cache)
	if cache {
		s.caches.versions.add(ref, vv, vv.size())
	}
	return vv, nil
}

// requireSecret returns the secret of r, or the error for a missing one.
func requireSecret(r *resolved) (*secretRecord, error) {
	if r.rec == nil {
		return nil, errSecretNotFound()
	}
	return r.rec, nil
}

// requireActive is requireSecret for operations refused on a secret
// scheduled for deletion.
func requireActive(r *resolved) (*secretRecord, error) {
	rec, err := requireSecret(r)
	if err != nil {
		return nil, err
	}
	if rec.scheduled() {
		return nil, errMarkedForDeletion()
	}
	return rec, nil
}
