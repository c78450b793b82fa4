package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"

	"sigil.dev/sigil/internal/store"
)

// Revocation
//
// Revoking a digest writes images/revoked/<digest> and increments
// images/revocations-gen in one transaction. Every replica keeps all
// revoked digests in an immutable in-memory snapshot that DigestRevoked
// reads without locks; Run rereads the records whenever the counter's
// revision changed, checking every PollInterval (at most 500 ms), so a
// revocation stops exchanges and existing sessions on every replica within
// a second. The replica that revokes applies it before Revoke returns.
// Revocations are kept for ever: a digest names immutable content, and a
// revoked image must never work again.

// maxReasonLength is the longest revocation reason accepted.
const maxReasonLength = 512

// revocationRecord is one stored revocation.
type revocationRecord struct {
	Format int       `json:"v"`
	Digest string    `json:"digest"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by,omitempty"`
}

// revocationSet is an immutable snapshot of the revoked digests.
type revocationSet struct {
	rev     int64
	digests map[string]bool
}

// DigestRevoked reports whether the digest was revoked, as of the last
// sync (this replica's own revocations at once, others' within a poll
// interval).
func (r *Registry) DigestRevoked(digest string) bool {
	return r.revoked.Load().digests[digest]
}

// Revoke revokes the digest for the reason given, on behalf of by (the
// caller's ARN): every later exchange with any of its keys fails, and
// every session minted for it is refused on its next request. Revoking an
// already revoked digest changes nothing and returns the first revocation
// time. The digest must have been registered (ErrNotFound otherwise).
func (r *Registry) Revoke(ctx context.Context, digest, reason, by string) (*RevokeResponse, error) {
	if !ValidDigest(digest) {
		return nil, fmt.Errorf("%w: %q must be sha256: followed by 64 lower-case hex digits", ErrInvalidDigest, truncate(digest))
	}
	if len(reason) > maxReasonLength || !printable(reason) {
		return nil, fmt.Errorf("%w: reason must be at most %d printable characters", ErrInvalidRequest, maxReasonLength)
	}
	var at time.Time
	_, err := store.Update(ctx, r.store, func(v *store.View) error {
		if _, err := v.Get(digestPrefix + digest); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no key was registered for %s", ErrNotFound, digest)
		} else if err != nil {
			return err
		}
		e, err := v.Get(revokedPrefix + digest)
		switch {
		case err == nil:
			var have revocationRecord
			if err := json.Unmarshal(e.Value, &have); err != nil {
				return fmt.Errorf("decoding the revocation of %s: corrupt record", digest)
			}
			at = have.At
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		at = r.now().UTC()
		b, err := json.Marshal(&revocationRecord{Format: 1, Digest: digest, At: at, Reason: reason, By: by})
		if err != nil {
			return err
		}
		v.Put(revokedPrefix+digest, b)
		return store.Bump(v, revocationGenKey)
	})
	if err != nil {
		return nil, fmt.Errorf("revoking %s: %w", digest, err)
	}
	if err := r.syncRevocations(ctx); err != nil {
		return nil, err
	}
	r.log.Info("images: digest revoked", "digest", digest, "by", by, "reason", reason, "at", at)
	return &RevokeResponse{Digest: digest, RevokedAt: at}, nil
}

func printable(s string) bool {
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

// syncRevocations rebuilds the snapshot when the generation changed.
func (r *Registry) syncRevocations(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	rev := int64(0)
	e, err := r.store.Get(ctx, revocationGenKey)
	switch {
	case err == nil:
		rev = e.Revision
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("reading the image revocation generation: %w", err)
	}
	if r.revoked.Load().rev == rev {
		return nil
	}
	next := &revocationSet{rev: rev, digests: map[string]bool{}}
	if err := r.eachRevocation(ctx, func(rec *revocationRecord) { next.digests[rec.Digest] = true }); err != nil {
		return err
	}
	r.revoked.Store(next)
	return nil
}

// eachRevocation calls fn for every stored revocation. A record that does
// not decode is an error: skipping it could resurrect a revoked image.
func (r *Registry) eachRevocation(ctx context.Context, fn func(rec *revocationRecord)) error {
	after := ""
	for {
		ents, next, err := r.store.List(ctx, revokedPrefix, after, 500)
		if err != nil {
			return fmt.Errorf("listing image revocations: %w", err)
		}
		for _, e := range ents {
			var rec revocationRecord
			if err := json.Unmarshal(e.Value, &rec); err != nil || rec.Format != 1 || rec.Digest != e.Key[len(revokedPrefix):] {
				return fmt.Errorf("decoding image revocation %s: corrupt record", e.Key)
			}
			fn(&rec)
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// Run keeps this replica current until ctx ends: every PollInterval it
// reloads the revocations when any replica changed them; every second it
// writes the usage counters; every minute it drops expired replay-cache
// entries. The server runs it once per Registry.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.poll)
	defer t.Stop()
	lastFlush, lastSweep := r.now(), r.now()
	failing := false
	for {
		select {
		case <-ctx.Done():
			r.flushUsage(context.WithoutCancel(ctx))
			return
		case <-t.C:
		}
		err := r.syncRevocations(ctx)
		now := r.now()
		if now.Sub(lastFlush) >= usageFlushInterval {
			lastFlush = now
			err = errors.Join(err, r.flushUsage(ctx))
		}
		if now.Sub(lastSweep) >= sweepInterval {
			lastSweep = now
			err = errors.Join(err, r.sweepReplay(ctx))
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			r.log.Warn("images: syncing revocations or writing usage failed; retrying", "err", err)
		case err == nil && failing:
			failing = false
			r.log.Info("images: syncing revocations works again")
		}
	}
}
