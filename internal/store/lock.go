package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// This file holds a lock elected through the store: one holder at a time
// across every process sharing the store, kept by renewal and taken over
// once it expires. It is how replicas pick the one that runs a background
// job (the lease reaper, the rotation runner).
//
// The lock is one key whose value names the holder and the expiry. Taking
// and renewing it is a read-modify-write under compare-and-swap ([Update]),
// so two contenders never both succeed: the second commit fails on the
// revision the first one changed and, rerun, sees the lock taken.
//
// A lock is a lease on time, not a mutex: a holder that stops renewing
// (crashed, partitioned, paused) loses it at expiry while it may still be
// running. Work done under the lock must therefore be safe to repeat or be
// guarded again by its own compare-and-swap; the lock only keeps replicas
// from duplicating effort. Choose a TTL of a few renewal intervals and renew
// before each unit of work. Expiry is judged by the caller's clock, so the
// replicas' clocks must agree to well within the TTL.

// lockValue is the stored value of a lock key.
type lockValue struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// AcquireLock takes the lock at key for holder until now+ttl if it is free,
// expired (its expiry is not after now), or already held by holder, in which
// case it is renewed. It returns an error wrapping [ErrLockHeld], naming the
// other holder and its expiry, if someone else holds it. holder must be
// non-empty and unique to the contender (a replica id); ttl must be positive.
func AcquireLock(ctx context.Context, st Store, key, holder string, ttl time.Duration, now time.Time) error {
	if holder == "" || ttl <= 0 {
		return fmt.Errorf("%w: lock %q needs a holder and a positive ttl", ErrInvalidOp, key)
	}
	_, err := Update(ctx, st, func(v *View) error {
		cur, ok, err := readLock(v, key)
		if err != nil {
			return err
		}
		if ok && cur.Holder != holder && now.Before(cur.Expires) {
			return fmt.Errorf("%w: %q is held by %q until %s", ErrLockHeld, key, cur.Holder, cur.Expires.UTC().Format(time.RFC3339Nano))
		}
		b, err := json.Marshal(lockValue{Holder: holder, Expires: now.Add(ttl).UTC()})
		if err != nil {
			return fmt.Errorf("encoding lock %q: %w", key, err)
		}
		v.Put(key, b)
		return nil
	})
	return err
}

// ReleaseLock deletes the lock at key if holder holds it, so that another
// contender can take it at once instead of waiting for it to expire.
// Releasing a lock that is absent is not an error; releasing one held by
// someone else (including one that expired and was taken over) returns an
// error wrapping [ErrLockHeld] and changes nothing.
func ReleaseLock(ctx context.Context, st Store, key, holder string) error {
	_, err := Update(ctx, st, func(v *View) error {
		cur, ok, err := readLock(v, key)
		if err != nil || !ok {
			return err
		}
		if cur.Holder != holder {
			return fmt.Errorf("%w: %q is held by %q", ErrLockHeld, key, cur.Holder)
		}
		v.Delete(key)
		return nil
	})
	return err
}

// LockHolder returns the holder of the lock at key and its expiry, or ""
// and the zero time if nobody holds it. An expired lock is still reported,
// with its past expiry: it is free to take, but nobody has yet.
func LockHolder(ctx context.Context, st Store, key string) (holder string, expires time.Time, err error) {
	e, err := st.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("reading lock %q: %w", key, err)
	}
	var cur lockValue
	if err := json.Unmarshal(e.Value, &cur); err != nil {
		return "", time.Time{}, fmt.Errorf("decoding lock %q: %w", key, err)
	}
	return cur.Holder, cur.Expires, nil
}

// readLock reads the lock at key inside v; ok is false when it is absent.
func readLock(v *View, key string) (cur lockValue, ok bool, err error) {
	e, err := v.Get(key)
	if errors.Is(err, ErrNotFound) {
		return lockValue{}, false, nil
	}
	if err != nil {
		return lockValue{}, false, fmt.Errorf("reading lock %q: %w", key, err)
	}
	if err := json.Unmarshal(e.Value, &cur); err != nil {
		return lockValue{}, false, fmt.Errorf("decoding lock %q: %w", key, err)
	}
	return cur, true, nil
}
