package secrets

import (
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
)

// This file holds the two in-memory caches of the read path. Both only save
// JSON decoding (and, for versions, one store read); neither changes what a
// read returns.
//
//   - The record cache maps a secret name (its record's storage key is
//     secrets/n/<name>) to the record decoded from that key, together with
//     the exact bytes it was decoded from.
//     getRecord always reads the key from the store and reuses the decoded
//     record only when the stored bytes are identical to the cached ones.
//     Decoding is a pure function of the bytes, so a hit returns exactly what
//     decoding would have: a write on this replica or any other is seen by
//     the very next read. Comparing the bytes is stricter than comparing
//     store revisions (it does not even rely on revisions never being
//     reused) and costs one memcmp of a few hundred bytes.
//   - The version cache maps a version, named by the two parts of its
//     storage key (secrets/v/<secret id>/<version id>), to the decoded,
//     immutable version record, with its value already in the forms the
//     response needs (a string, and its JSON encoding). Version values never
//     change once written (a design invariant), and the secret id is random
//     (128 bits) and fixed at creation, so a secret deleted and created
//     again under the same name with the same ClientRequestToken has other
//     keys and can never be served the old value. The read path uses the
//     cache, without a store read, only for a version that the secret record
//     it has just read from the store labels, and only if the cached
//     version's creation time equals the one that record holds for it. That
//     record is the authority on which versions exist: a labelled version is
//     only ever removed by a purge, which deletes the record first, or after
//     a write that took its labels away (and so changed the record).
//     Versions without labels, which pruning may remove at any time, are
//     always read from the store (and not cached). Purges and pruning drop
//     the versions they delete from this Service's cache, so removed values
//     do not stay reachable in memory (other replicas age them out).
//
// Values in the cache are shared by concurrent readers and must never be
// modified: write paths decode records inside their transaction (viewRecord)
// and clone before changing them, and version records are immutable.
//
// Both caches are bounded by entries and by an estimate of the bytes they
// hold, split evenly over independently locked shards, and evict the least
// recently used entry of a shard first. Evicted values are left to the
// garbage collector and not zeroed: Go gives no control over the copies the
// runtime, the JSON encoder or the network stack make of a value on its way
// to the client, so zeroing one copy would promise more than it delivers.
// The caches print nothing but their size through fmt and slog.

// Cache defaults, used when Config.CacheBytes or Config.CacheEntries is 0.
const (
	// DefaultCacheBytes is the default bound on the memory held by the
	// read caches: 32 MiB.
	DefaultCacheBytes = 32 << 20
	// DefaultCacheEntries is the default bound on the number of entries of
	// each read cache.
	DefaultCacheEntries = 1 << 16
)

// cacheShards is the number of independently locked shards of each cache.
const cacheShards = 16

// entryOverhead approximates the memory of one cache entry beyond its key
// and value bytes (map slot, list links, headers of the decoded struct).
const entryOverhead = 256

// lru is a sharded, bounded, least-recently-used map from keys K to V.
// The zero value is not usable; build one with newLRU. A nil *lru is a
// disabled cache: every lookup misses and every add is dropped.
type lru[K comparable, V any] struct {
	seed   maphash.Seed
	shards [cacheShards]lruShard[K, V]
}

// lruShard is one independently locked part of an lru.
type lruShard[K comparable, V any] struct {
	mu       sync.Mutex
	items    map[K]*lruEntry[K, V]
	root     lruEntry[K, V] // sentinel: root.next is the most recently used
	bytes    int64
	maxBytes int64
	maxItems int
}

// lruEntry is one cached value in its shard's recency list.
type lruEntry[K comparable, V any] struct {
	key        K
	val        V
	size       int64
	prev, next *lruEntry[K, V]
}

// newLRU returns a cache holding at most maxItems entries and about maxBytes
// bytes, or nil (a disabled cache) when either bound is not positive.
func newLRU[K comparable, V any](maxBytes int64, maxItems int) *lru[K, V] {
	if maxBytes <= 0 || maxItems <= 0 {
		return nil
	}
	c := &lru[K, V]{seed: maphash.MakeSeed()}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.items = make(map[K]*lruEntry[K, V])
		sh.root.next, sh.root.prev = &sh.root, &sh.root
		sh.maxBytes = max(maxBytes/cacheShards, 1)
		sh.maxItems = max(maxItems/cacheShards, 1)
	}
	return c
}

func (c *lru[K, V]) shard(key K) *lruShard[K, V] {
	return &c.shards[maphash.Comparable(c.seed, key)%cacheShards]
}

// get returns the value cached for key and marks it recently used.
func (c *lru[K, V]) get(key K) (V, bool) {
	if c == nil {
		var zero V
		return zero, false
	}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	sh.moveToFront(e)
	return e.val, true
}

// add caches val for key, replacing any value cached for it, and evicts the
// least recently used entries of the shard until both bounds hold. size is
// the estimated memory of val; a value larger than a whole shard is not
// cached.
func (c *lru[K, V]) add(key K, val V, size int64) {
	if c == nil {
		return
	}
	size += entryOverhead
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.items[key]; ok {
		sh.unlink(e)
	}
	if size > sh.maxBytes {
		return
	}
	e := &lruEntry[K, V]{key: key, val: val, size: size}
	sh.items[key] = e
	sh.bytes += size
	e.prev, e.next = &sh.root, sh.root.next
	e.prev.next, e.next.prev = e, e
	for sh.bytes > sh.maxBytes || len(sh.items) > sh.maxItems {
		sh.unlink(sh.root.prev)
	}
}

// remove drops key from the cache.
func (c *lru[K, V]) remove(key K) {
	if c == nil {
		return
	}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.items[key]; ok {
		sh.unlink(e)
	}
}

// stats returns the number of entries and the estimated bytes held.
func (c *lru[K, V]) stats() (entries int, bytes int64) {
	if c == nil {
		return 0, 0
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		entries += len(sh.items)
		bytes += sh.bytes
		sh.mu.Unlock()
	}
	return entries, bytes
}

// String implements fmt.Stringer with the size only, never the contents.
func (c *lru[K, V]) String() string {
	n, b := c.stats()
	return "cache of " + strconv.Itoa(n) + " entries, " + strconv.FormatInt(b, 10) + " bytes"
}

// GoString implements fmt.GoStringer like String.
func (c *lru[K, V]) GoString() string { return c.String() }

// LogValue implements slog.LogValuer like String.
func (c *lru[K, V]) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (sh *lruShard[K, V]) moveToFront(e *lruEntry[K, V]) {
	if sh.root.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &sh.root, sh.root.next
	e.prev.next, e.next.prev = e, e
}

// unlink removes e from the shard.
func (sh *lruShard[K, V]) unlink(e *lruEntry[K, V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(sh.items, e.key)
	sh.bytes -= e.size
}

// cachedRecord is a decoded secret record with the bytes it was decoded
// from and its storage key (kept so that a hit builds no key).
type cachedRecord struct {
	key string
	raw []byte
	rec *secretRecord
}

// recordSize estimates the memory of a cached record: its bytes and the
// decoded strings, which are about as large again.
func recordSize(raw []byte) int64 { return 2 * int64(len(raw)) }

// versionValue is a decoded version with the forms of its value that
// responses use, so that serving it from the cache copies and escapes
// nothing. It is immutable once built.
type versionValue struct {
	rec *versionRecord
	// str is the value as a string, for a string version.
	str string
	// json is the value encoded as the JSON string of the response's
	// SecretString or SecretBinary member; nil when not computed.
	json []byte
}

// newVersionValue builds the versionValue of rec; encode says whether to
// compute its JSON form too (worth it only for a value that is cached).
func newVersionValue(rec *versionRecord, encode bool) *versionValue {
	vv := &versionValue{rec: rec}
	if rec.Kind == kindString {
		vv.str = string(rec.Value)
		if encode {
			vv.json = appendJSONString(make([]byte, 0, len(vv.str)+2), vv.str)
		}
	} else if encode && len(rec.Value) > 0 {
		vv.json = appendJSONBytes(nil, rec.Value)
	}
	return vv
}

// size estimates the memory of a cached versionValue and its key (the
// fixed part of the structs is in entryOverhead).
func (vv *versionValue) size() int64 {
	r := vv.rec
	return int64(len(r.Value) + len(vv.str) + len(vv.json) + 2*(len(r.ID)+len(r.Secret)))
}

// String implements fmt.Stringer without the value.
func (vv *versionValue) String() string { return vv.rec.String() }

// GoString implements fmt.GoStringer without the value.
func (vv *versionValue) GoString() string { return vv.rec.String() }

// LogValue implements slog.LogValuer without the value.
func (vv *versionValue) LogValue() slog.Value { return slog.StringValue(vv.rec.String()) }

// versionRef names one version: the secret's id and the version id, the
// two parts of its storage key (versionKey), kept apart so that a lookup
// needs no key to be built.
type versionRef struct {
	secret, version string
}

// readCaches are the caches of one Service: records by secret name (their
// storage key is nameKey(name)), versions by versionRef.
type readCaches struct {
	records  *lru[string, cachedRecord]
	versions *lru[versionRef, *versionValue]
}

// newReadCaches splits the bounds between the caches: a quarter of the bytes
// for records (small, one per secret read) and the rest for version values.
func newReadCaches(maxBytes int64, maxEntries int) readCaches {
	return readCaches{
		records:  newLRU[string, cachedRecord](maxBytes/4, maxEntries),
		versions: newLRU[versionRef, *versionValue](maxBytes-maxBytes/4, maxEntries),
	}
}
