package sts

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"sigil.dev/sigil/internal/store"
)

// Revocation
//
// Session credentials are verified without a storage read, so revoking
// them needs every replica to know. A revocation is a record in the store
// (under revokedPrefix) written in the same transaction as an increment of
// a generation counter (revocationGenKey); every replica keeps all
// revocations in an in-memory snapshot that the verification path consults,
// and Run rereads the records whenever the counter's revision changed,
// checking it every PollInterval (250 ms by default). The replica that
// revokes applies the revocation at once.
//
// Two kinds exist: all sessions of a role issued before a time (issue
// times have nanosecond precision), and one session by its id (from the
// audit log: the sessionId of the AssumeRole* event). A revocation is
// dropped from the store once every session it can apply to has expired
// on its own.

const (
	revokedPrefix        = "sts/revoked/"
	revokedRolePrefix    = revokedPrefix + "role/"
	revokedSessionPrefix = revokedPrefix + "session/"
	revocationGenKey     = "sts/revocations-gen"
	// revocationLifetime is how long a revocation can matter after its
	// effective time: the longest session plus clock skew.
	revocationLifetime = maxSessionSeconds*time.Second + 5*time.Minute
	// gcInterval is how often Run drops revocations that no longer matter.
	gcInterval = time.Minute
)

// revocationRecord is one stored revocation.
type revocationRecord struct {
	Format int `json:"v"`
	// Role is the role ARN as given (RevokeRoleSessions), Session the
	// session id (RevokeSession).
	Role    string    `json:"role,omitempty"`
	Session string    `json:"session,omitempty"`
	Before  time.Time `json:"before,omitzero"`
	At      time.Time `json:"at"`
}

// revocations is an immutable snapshot of every revocation.
type revocations struct {
	rev      int64                // revision of revocationGenKey it reflects
	roles    map[string]time.Time // lower-case role name -> sessions issued before are revoked
	sessions map[string]bool      // session id (hex)
}

// revokes reports whether the snapshot revokes the session c.
func (r *revocations) revokes(c *claims) bool {
	if len(r.sessions) > 0 && r.sessions[hex.EncodeToString(c.sessionID[:])] {
		return true
	}
	if len(r.roles) > 0 {
		if before, ok := r.roles[strings.ToLower(roleNameOf(c.roleARN))]; ok && c.issued.Before(before) {
			return true
		}
	}
	return false
}

// roleKey returns the lower-case name of a role ARN of this account;
// roles are unique by name without regard to case, whatever their path.
func (s *Service) roleKey(roleARN string) (string, error) {
	rest, ok := strings.CutPrefix(roleARN, "arn:aws:iam::"+s.account+":role/")
	name := rest[strings.LastIndexByte(rest, '/')+1:]
	if !ok || name == "" || !roleNamePattern.MatchString(name) {
		return "", fmt.Errorf("%w: %q is not a role ARN of account %s", ErrInvalidRevocation, roleARN, s.account)
	}
	return strings.ToLower(name), nil
}

// RevokeRoleSessions revokes every session of the role roleARN (any path)
// issued before before; sessions issued later are unaffected. A later call
// with an earlier time does not shorten an earlier revocation. It takes
// effect on this replica when it returns and on every replica running Run
// within its poll interval.
func (s *Service) RevokeRoleSessions(ctx context.Context, roleARN string, before time.Time) error {
	name, err := s.roleKey(roleARN)
	if err != nil {
		return err
	}
	if before.IsZero() {
		return fmt.Errorf("%w: a revocation time is required", ErrInvalidRevocation)
	}
	key := revokedRolePrefix + name
	err = s.writeRevocation(ctx, key, func(have *revocationRecord) *revocationRecord {
		if have != nil && !have.Before.Before(before) {
			return nil
		}
		return &revocationRecord{Format: 1, Role: roleARN, Before: before.UTC(), At: s.now().UTC()}
	})
	if err != nil {
		return fmt.Errorf("revoking the sessions of %s: %w", roleARN, err)
	}
	s.log.Info("sts: role sessions revoked", "role", roleARN, "issued_before", before.UTC())
	return nil
}

// RevokeSession revokes the session with the given id (32 hex digits, as
// authn.Session.ID and the audit log give it), with the same propagation
// as RevokeRoleSessions.
func (s *Service) RevokeSession(ctx context.Context, sessionID string) error {
	if len(sessionID) != 2*sessionIDSize || strings.ToLower(sessionID) != sessionID {
		return fmt.Errorf("%w: %q is not a session id", ErrInvalidRevocation, sessionID)
	}
	if _, err := hex.DecodeString(sessionID); err != nil {
		return fmt.Errorf("%w: %q is not a session id", ErrInvalidRevocation, sessionID)
	}
	err := s.writeRevocation(ctx, revokedSessionPrefix+sessionID, func(have *revocationRecord) *revocationRecord {
		if have != nil {
			return nil
		}
		return &revocationRecord{Format: 1, Session: sessionID, At: s.now().UTC()}
	})
	if err != nil {
		return fmt.Errorf("revoking session %s: %w", sessionID, err)
	}
	s.log.Info("sts: session revoked", "session", sessionID)
	return nil
}

// writeRevocation stores what change returns for key (nothing when it
// returns nil), bumping the generation in the same transaction, then
// applies the revocations here.
func (s *Service) writeRevocation(ctx context.Context, key string, change func(have *revocationRecord) *revocationRecord) error {
	_, err := store.Update(ctx, s.store, func(v *store.View) error {
		var have *revocationRecord
		e, err := v.Get(key)
		switch {
		case err == nil:
			have = &revocationRecord{}
			if err := json.Unmarshal(e.Value, have); err != nil {
				return fmt.Errorf("decoding %s: %w", key, err)
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		rec := change(have)
		if rec == nil {
			return nil
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		v.Put(key, b)
		return store.Bump(v, revocationGenKey)
	})
	if err != nil {
		return err
	}
	return s.syncRevocations(ctx)
}

// syncRevocations rebuilds the snapshot when the generation changed.
func (s *Service) syncRevocations(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	rev := int64(0)
	e, err := s.store.Get(ctx, revocationGenKey)
	switch {
	case err == nil:
		rev = e.Revision
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("reading the revocation generation: %w", err)
	}
	if s.revoked.Load().rev == rev {
		return nil
	}
	next := &revocations{rev: rev, roles: map[string]time.Time{}, sessions: map[string]bool{}}
	err = s.eachRevocation(ctx, func(key string, rec *revocationRecord, _ int64) {
		switch {
		case strings.HasPrefix(key, revokedRolePrefix):
			name := key[len(revokedRolePrefix):]
			if next.roles[name].Before(rec.Before) {
				next.roles[name] = rec.Before
			}
		case strings.HasPrefix(key, revokedSessionPrefix):
			next.sessions[key[len(revokedSessionPrefix):]] = true
		}
	})
	if err != nil {
		return err
	}
	s.revoked.Store(next)
	return nil
}

// eachRevocation calls fn for every stored revocation. A record that does
// not decode is an error: skipping it could resurrect revoked sessions.
func (s *Service) eachRevocation(ctx context.Context, fn func(key string, rec *revocationRecord, rev int64)) error {
	after := ""
	for {
		ents, next, err := s.store.List(ctx, revokedPrefix, after, 500)
		if err != nil {
			return fmt.Errorf("listing revocations: %w", err)
		}
		for _, e := range ents {
			var rec revocationRecord
			if err := json.Unmarshal(e.Value, &rec); err != nil || rec.Format != 1 {
				return fmt.Errorf("decoding revocation %s: corrupt record", e.Key)
			}
			fn(e.Key, &rec, e.Revision)
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// collectRevocations deletes revocations that no longer apply to any
// unexpired session.
func (s *Service) collectRevocations(ctx context.Context) error {
	now := s.now()
	type stale struct {
		key string
		rev int64
	}
	var old []stale
	err := s.eachRevocation(ctx, func(key string, rec *revocationRecord, rev int64) {
		effective := rec.At
		if rec.Before.After(effective) {
			effective = rec.Before
		}
		if now.Sub(effective) > revocationLifetime {
			old = append(old, stale{key, rev})
		}
	})
	if err != nil || len(old) == 0 {
		return err
	}
	_, err = store.Update(ctx, s.store, func(v *store.View) error {
		for _, o := range old {
			e, err := v.Get(o.key)
			if err != nil || e.Revision != o.rev {
				// Deleted or renewed meanwhile: leave it.
				continue
			}
			v.Delete(o.key)
		}
		return store.Bump(v, revocationGenKey)
	})
	if err != nil {
		return fmt.Errorf("dropping expired revocations: %w", err)
	}
	s.log.Info("sts: dropped expired revocations", "count", len(old))
	return s.syncRevocations(ctx)
}

// Run keeps this replica's view of the store current until ctx ends: every
// PollInterval it reloads the revocations when any replica changed them,
// and the session keys when any replica rotated them; every minute it
// drops revocations that have outlived every session they could apply to.
// The server runs it once per Service.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	lastGC := s.now()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := errors.Join(s.syncRevocations(ctx), s.syncKeyring(ctx))
		if now := s.now(); err == nil && now.Sub(lastGC) >= gcInterval {
			lastGC = now
			err = s.collectRevocations(ctx)
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			s.log.Warn("sts: syncing revocations and session keys failed; retrying", "err", err)
		case err == nil && failing:
			failing = false
			s.log.Info("sts: syncing revocations and session keys works again")
		}
	}
}
