package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Limits on what a JWKS may hold.
const (
	// maxJWKSKeys bounds the keys one set may hold; real issuers publish a
	// handful.
	maxJWKSKeys = 100
	// minRSABits is the smallest RSA modulus accepted.
	minRSABits = 2048
)

// verificationKey is one usable public key from a JWKS, bound to the one
// algorithm it may verify.
type verificationKey struct {
	kid string
	alg jose.SignatureAlgorithm
	// key is *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey.
	key any
}

// keySet is an immutable parsed JWKS.
type keySet struct {
	keys []verificationKey
	// fetchedAt is when the set was fetched (zero for a static set).
	fetchedAt time.Time
}

// lookup results.
type lookupResult int

const (
	keyFound    lookupResult = iota
	keyUnknown               // no key has this kid: a refresh may help
	keyUnusable              // the kid is known but not for this algorithm, or no kid with several keys
)

// find returns the key to verify a token with header kid and alg.
func (ks *keySet) find(kid string, alg jose.SignatureAlgorithm) (any, lookupResult) {
	if kid == "" {
		// A kid is required when there is a choice; with a single key the
		// token can only mean that one.
		if len(ks.keys) == 1 && ks.keys[0].alg == alg {
			return ks.keys[0].key, keyFound
		}
		return nil, keyUnusable
	}
	known := false
	for i := range ks.keys {
		k := &ks.keys[i]
		if k.kid != kid {
			continue
		}
		if k.alg == alg {
			return k.key, keyFound
		}
		known = true
	}
	if known {
		return nil, keyUnusable
	}
	return nil, keyUnknown
}

// parseJWKS parses a JSON Web Key Set and keeps the keys usable for
// signature verification: RSA of at least 2048 bits (RS256), EC P-256
// (ES256) and Ed25519 (EdDSA), public only, with "use" absent or "sig" and
// "alg" absent or matching the key type. Other keys (encryption keys,
// symmetric keys, other curves, private keys, malformed entries) are
// skipped and described in skipped. A set without a usable key is an
// error.
func parseJWKS(data []byte) (ks *keySet, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, nil, fmt.Errorf("JWKS holds %d keys, at most %d accepted", len(doc.Keys), maxJWKSKeys)
	}
	ks = &keySet{}
	for i, raw := range doc.Keys {
		vk, why := parseJWK(raw)
		if why != "" {
			skipped = append(skipped, fmt.Sprintf("key %d: %s", i, why))
			continue
		}
		ks.keys = append(ks.keys, vk)
	}
	if len(ks.keys) == 0 {
		if len(skipped) > 0 {
			return nil, skipped, fmt.Errorf("JWKS holds no usable signing key (%s)", skipped[0])
		}
		return nil, nil, errors.New("JWKS holds no keys")
	}
	return ks, skipped, nil
}

// parseJWK parses one key; why says why it is not usable.
func parseJWK(raw json.RawMessage) (vk verificationKey, why string) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return vk, "malformed: " + err.Error()
	}
	if k.Use != "" && k.Use != "sig" {
		return vk, fmt.Sprintf("use %q is not sig", k.Use)
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return vk, fmt.Sprintf("RSA key of %d bits, at least %d required", key.N.BitLen(), minRSABits)
		}
		vk.alg = jose.RS256
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() {
			return vk, "EC key not on P-256"
		}
		vk.alg = jose.ES256
	case ed25519.PublicKey:
		vk.alg = jose.EdDSA
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return vk, "holds private key material"
	default:
		return vk, fmt.Sprintf("key type %T is not accepted", k.Key)
	}
	if k.Algorithm != "" && k.Algorithm != string(vk.alg) {
		return vk, fmt.Sprintf("alg %q is not accepted for this key type", k.Algorithm)
	}
	vk.kid = k.KeyID
	vk.key = k.Key
	return vk, ""
}

// providerState is what the verifier keeps per provider URL: the
// configuration it was built from, how to reach the provider, and the
// cached keys.
type providerState struct {
	// cfg is a copy of the provider's transport-relevant configuration;
	// the state is rebuilt when it changes.
	cfg Provider
	// cfgErr, when set, is why the provider is unusable; every Verify fails
	// with it.
	cfgErr *Error
	// static is true for a provider with a static JWKS; keys never change.
	static bool
	// client fetches discovery and JWKS; nil for static providers.
	client *http.Client
	// allowHTTP is whether http:// URLs may be fetched for this provider.
	allowHTTP bool

	// keys is the current key set, nil until the first successful fetch.
	keys atomic.Pointer[keySet]

	mu sync.Mutex
	// inflight is the refresh under way, nil if none.
	inflight *refreshCall
	// lastAttempt is when the last fetch started, whatever its reason.
	// After a failed fetch, no other starts for RefreshInterval.
	lastAttempt time.Time
	// lastKIDRefresh is when the last fetch for an unknown kid started;
	// such fetches are at least RefreshInterval apart.
	lastKIDRefresh time.Time
	// lastErr is the last fetch's error, nil if it succeeded.
	lastErr error
}

// refreshCall is one in-flight refresh that concurrent callers share.
type refreshCall struct {
	done chan struct{}
	ks   *keySet
	err  error
}

// sameConfig reports whether p has the configuration st was built from.
func (st *providerState) sameConfig(p *Provider) bool {
	c := &st.cfg
	return c.URL == p.URL && c.AllowHTTP == p.AllowHTTP && c.CABundle == p.CABundle &&
		c.JWKS == p.JWKS && slices.Equal(c.Thumbprints, p.Thumbprints)
}

// currentKeys returns the keys to verify with: the cached set while it is
// younger than KeyTTL, otherwise a fresh one. If refreshing a stale set
// fails, the stale set is used (and the failure logged) so that an issuer
// outage does not stop verification; removal of a key takes effect at the
// first successful refresh.
//
// fetched reports whether the returned set was just fetched for this call,
// in which case looking again for an unknown kid is pointless.
func (v *Verifier) currentKeys(ctx context.Context, st *providerState) (ks *keySet, fetched bool, verr *Error) {
	ks = st.keys.Load()
	if st.static || (ks != nil && v.now().Sub(ks.fetchedAt) < v.keyTTL) {
		return ks, false, nil
	}
	fresh, err := v.refresh(ctx, st, false)
	if err != nil {
		if ks != nil {
			v.log.Warn("federation: refreshing stale OIDC keys failed; using the cached keys",
				"provider", st.cfg.URL, "error", err)
			return ks, false, nil
		}
		return nil, false, unreachable("fetching the provider's keys", err)
	}
	return fresh, fresh != ks, nil
}

// refresh fetches the provider's keys, sharing one fetch among concurrent
// callers. Fetches are rate limited per provider: after a failed fetch no
// other starts for RefreshInterval, and fetches because a token names an
// unknown kid (forKID) are at least RefreshInterval apart, so that tokens
// with made-up kids cannot make sigil hammer an issuer. The first fetch and
// the fetch of stale keys are not limited otherwise: the first happens once,
// the other once per KeyTTL. When a fetch is not allowed, refresh returns
// the cached set and the last fetch's error.
//
// The fetch runs on its own goroutine with a context detached from ctx (but
// with its values), bounded by fetchBudget, so that one caller giving up
// does not fail the others waiting on it.
func (v *Verifier) refresh(ctx context.Context, st *providerState, forKID bool) (*keySet, error) {
	st.mu.Lock()
	c := st.inflight
	if c == nil {
		now := v.now()
		limited := st.lastErr != nil && now.Sub(st.lastAttempt) < v.refreshInterval
		if forKID && !st.lastKIDRefresh.IsZero() && now.Sub(st.lastKIDRefresh) < v.refreshInterval {
			limited = true
		}
		if limited {
			ks, err := st.keys.Load(), st.lastErr
			st.mu.Unlock()
			if ks == nil && err == nil {
				err = errors.New("no keys fetched yet")
			}
			return ks, err
		}
		c = &refreshCall{done: make(chan struct{})}
		st.inflight = c
		st.lastAttempt = now
		if forKID {
			st.lastKIDRefresh = now
		}
		go v.runRefresh(context.WithoutCancel(ctx), st, c)
	}
	st.mu.Unlock()

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("waiting for the provider's keys: %w", err)
	}
	select {
	case <-c.done:
		return c.ks, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the provider's keys: %w", ctx.Err())
	}
}

// runRefresh performs one fetch for refresh and publishes its result.
func (v *Verifier) runRefresh(ctx context.Context, st *providerState, c *refreshCall) {
	ctx, cancel := context.WithTimeout(ctx, fetchBudget)
	defer cancel()
	ks, skipped, err := v.fetchKeys(ctx, st)
	if err == nil {
		ks.fetchedAt = v.now()
		v.log.Info("federation: fetched OIDC provider keys",
			"provider", st.cfg.URL, "keys", len(ks.keys), "skipped", skipped)
	} else {
		v.log.Warn("federation: fetching OIDC provider keys failed", "provider", st.cfg.URL, "error", err)
	}

	st.mu.Lock()
	if err == nil {
		st.keys.Store(ks)
	}
	st.lastErr = err
	st.inflight = nil
	c.ks, c.err = ks, err
	if err != nil {
		// Waiters still get the last good set to look in.
		c.ks = st.keys.Load()
	}
	st.mu.Unlock()
	close(c.done)
}
