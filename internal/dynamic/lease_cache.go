package dynamic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"sigil.dev/sigil/internal/store"
)

// sessionCache remembers, per secret and caller session, which lease
// ForSession last handed out and that lease's record as decoded at a
// store revision. It lets a repeated read skip the session-key read and
// the JSON decoding of the record, but never the read of the record
// itself:
//
//   - Every hit reads the lease record from the store (through the
//     barrier, as any read). A revocation, on this replica or any other,
//     writes the record (state revoking, then revoked), which changes its
//     revision; the cached copy is then not used, the fresh record is
//     decoded, and a record that is not active is not served. A purged
//     record is not found and not served. So a revoked lease is never
//     served again, exactly as without the cache.
//   - The cached decoding is used only when the record's revision is the
//     one it was decoded at. A store's revision changes with every write of
//     a key, so an equal revision means identical bytes.
//   - What the cache can hold stale is only the session-to-lease mapping:
//     if two replicas issued two leases to one new session at once (the
//     race Issue documents), this replica may keep serving the one it
//     knows while it stays active and reusable. Both are valid leases of
//     the session; the other expires unused, as it would without the cache.
//
// The cache holds passwords in process memory only, as the request that
// decoded them did; it never writes anything. It is bounded by
// sessionCacheMax entries. The zero value is ready to use.
type sessionCache struct {
	mu      sync.RWMutex
	entries map[sessionCacheKey]cachedLease
}

// sessionCacheMax bounds the cache (a record is well under a kilobyte, so
// a few megabytes at most); when it is full an arbitrary entry makes room,
// costing that session one uncached read.
const sessionCacheMax = 4096

type sessionCacheKey struct{ secret, session string }

// cachedLease is a lease record as decoded at revision rev.
type cachedLease struct {
	id  string
	rev int64
	rec record
}

func (c *sessionCache) get(secret, session string) (cachedLease, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[sessionCacheKey{secret, session}]
	return e, ok
}

func (c *sessionCache) put(secret, session string, e cachedLease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[sessionCacheKey]cachedLease)
	}
	k := sessionCacheKey{secret, session}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= sessionCacheMax {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = e
}

func (c *sessionCache) drop(secret, session string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, sessionCacheKey{secret, session})
}

// readLease reads the record of lease id from the store, reusing known's
// decoding when the stored revision is still known.rev. It returns an
// error wrapping ErrLeaseNotFound if the record is gone.
func (l *Leases) readLease(ctx context.Context, id string, known *cachedLease) (cachedLease, error) {
	e, err := l.st.Get(ctx, leaseKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return cachedLease{}, fmt.Errorf("%w: %q", ErrLeaseNotFound, id)
	}
	if err != nil {
		return cachedLease{}, fmt.Errorf("reading lease %q: %w", id, err)
	}
	if known != nil && known.id == id && known.rev == e.Revision {
		return *known, nil
	}
	var r record
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return cachedLease{}, fmt.Errorf("decoding lease %q: %w", id, err)
	}
	return cachedLease{id: id, rev: e.Revision, rec: r}, nil
}
