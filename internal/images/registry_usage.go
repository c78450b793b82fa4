package images

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"sigil.dev/sigil/internal/store"
)

// Usage counters
//
// Exchanges must not pay a store write for bookkeeping, so each replica
// counts successful verifications per key in memory (two atomics) and Run
// adds the counts to the key records once a second, with compare-and-swap
// so that replicas' counts add up. List shows stored plus unflushed counts.
// A crash loses at most the last second's counts of that replica.

type usageCounter struct {
	n    atomic.Int64
	last atomic.Int64 // Unix nanoseconds
}

// noteUse counts one successful exchange with the key at now.
func (r *Registry) noteUse(keyID string, now time.Time) {
	v, ok := r.usage.Load(keyID)
	if !ok {
		v, _ = r.usage.LoadOrStore(keyID, &usageCounter{})
	}
	c := v.(*usageCounter)
	c.n.Add(1)
	ns := now.UnixNano()
	for {
		old := c.last.Load()
		if old >= ns || c.last.CompareAndSwap(old, ns) {
			return
		}
	}
}

// flushUsage adds the unflushed counts to the key records.
func (r *Registry) flushUsage(ctx context.Context) error {
	var errs []error
	r.usage.Range(func(k, v any) bool {
		keyID, c := k.(string), v.(*usageCounter)
		n := c.n.Swap(0)
		if n == 0 {
			return true
		}
		last := time.Unix(0, c.last.Load()).UTC()
		_, err := store.Update(ctx, r.store, func(v *store.View) error {
			key, err := getKey(v, keyID)
			if err != nil {
				return err
			}
			key.Exchanges += n
			if last.After(key.LastUsed) {
				key.LastUsed = last
			}
			return putKey(v, key)
		})
		switch {
		case errors.Is(err, ErrNotFound):
			r.usage.Delete(keyID)
		case err != nil:
			c.n.Add(n)
			errs = append(errs, fmt.Errorf("writing the usage of %s: %w", keyID, err))
		}
		return true
	})
	return errors.Join(errs...)
}
