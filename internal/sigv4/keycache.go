package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
)

// signingKey is a derived SigV4 signing key, kept as the two HMAC-SHA256
// pad blocks so that signing a string needs two SHA-256 sums and no
// allocation. It is as sensitive as the secret key for its day, region and
// service: it is never logged, and prints as REDACTED.
type signingKey struct {
	// secret is the secret key it was derived from. A lookup whose current
	// secret differs (the key was rotated) misses.
	secret     string
	ipad, opad [sha256.BlockSize]byte
}

// String keeps the key out of logs and fmt output.
func (*signingKey) String() string { return "sigv4.signingKey(REDACTED)" }

// GoString keeps the key out of %#v output.
func (k *signingKey) GoString() string { return k.String() }

// deriveSigningKey computes
//
//	HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")
func deriveSigningKey(secret, date, region, service string) *signingKey {
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), date)
	k = mac(k, region)
	k = mac(k, service)
	k = mac(k, scopeTerminator)
	sk := &signingKey{secret: secret}
	for i := range sk.ipad {
		var c byte
		if i < len(k) {
			c = k[i]
		}
		sk.ipad[i] = c ^ 0x36
		sk.opad[i] = c ^ 0x5c
	}
	clear(k)
	return sk
}

// sign returns HMAC-SHA256(key, msg) where buf holds 64 spare bytes followed
// by msg; sign overwrites the spare bytes with the inner pad.
func (k *signingKey) sign(buf []byte) [sha256.Size]byte {
	copy(buf[:sha256.BlockSize], k.ipad[:])
	inner := sha256.Sum256(buf)
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

// cacheKey identifies a derived key: which secret (by access key id; the
// entry also records the secret itself), and the scope it is for.
type cacheKey struct {
	accessKeyID, date, region, service string
}

// keyCache is a bounded, concurrency-safe cache of derived signing keys in
// two generations: lookups hit the current generation, then the previous
// one (promoting the entry); when the current generation is full it becomes
// the previous one and the oldest entries go. So at most 2*half entries are
// held, and keys in steady use survive.
type keyCache struct {
	mu   sync.RWMutex
	cur  map[cacheKey]*signingKey
	prev map[cacheKey]*signingKey
	half int
}

func newKeyCache(size int) *keyCache {
	half := max(size/2, 1)
	return &keyCache{cur: make(map[cacheKey]*signingKey, half), half: half}
}

// get returns the signing key for secret in the given scope, deriving and
// caching it on a miss.
func (c *keyCache) get(accessKeyID, secret, date, region, service string) *signingKey {
	ck := cacheKey{accessKeyID, date, region, service}
	c.mu.RLock()
	k, ok := c.cur[ck]
	c.mu.RUnlock()
	// Both secrets come from the server (the cache and Credentials), never
	// from the client, so an ordinary comparison leaks nothing.
	if ok && k.secret == secret {
		return k
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.prev[ck]; ok && k.secret == secret {
		c.put(ck, k)
		return k
	}
	k = deriveSigningKey(secret, date, region, service)
	// The request's strings share memory with its headers; clone them so
	// the cache does not keep whole requests alive.
	ck = cacheKey{strings.Clone(accessKeyID), strings.Clone(date), strings.Clone(region), strings.Clone(service)}
	c.put(ck, k)
	return k
}

// put stores k; c.mu must be held for writing.
func (c *keyCache) put(ck cacheKey, k *signingKey) {
	if _, ok := c.cur[ck]; !ok && len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[cacheKey]*signingKey, c.half)
	}
	c.cur[ck] = k
}

// len returns the number of cached keys (for tests).
func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}
