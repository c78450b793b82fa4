package federation

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxTokenSize is the largest token Verify and IssuerOf look at, in bytes.
// Kubernetes service-account tokens are about 1 KiB.
const MaxTokenSize = 16 << 10

// Defaults for [Options].
const (
	// DefaultRefreshInterval is the default [Options.RefreshInterval].
	DefaultRefreshInterval = 30 * time.Second
	// DefaultKeyTTL is the default [Options.KeyTTL].
	DefaultKeyTTL = time.Hour
	// DefaultSkew is the default [Options.Skew].
	DefaultSkew = 60 * time.Second
)

// allowedAlgorithms are the only signature algorithms accepted. Never
// "none", never HMAC (HS*): a provider's keys are public.
var allowedAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// Options configures a [Verifier]. The zero value is valid: system roots,
// the real clock, no logging, and the defaults below.
type Options struct {
	// Now is the clock used for token times, the refresh rate limit, key
	// age and TLS certificate validity. Nil means time.Now.
	Now func() time.Time
	// Logger receives fetches of provider keys (info) and their failures
	// (warn). It never receives a token. Nil discards.
	Logger *slog.Logger
	// RefreshInterval rate-limits fetches of one provider's keys: fetches
	// because a token names an unknown kid are at least this far apart, and
	// after a failed fetch no fetch starts for this long (verifications in
	// between report the cached failure or use the cached keys). Zero means
	// DefaultRefreshInterval.
	RefreshInterval time.Duration
	// KeyTTL is how long fetched keys are used before they are fetched
	// again on the next verification (a key removed from the JWKS stops
	// working after at most this long). Zero means DefaultKeyTTL.
	KeyTTL time.Duration
	// Skew is how far in the future a token's nbf and iat may be, for
	// clocks that disagree. Zero means DefaultSkew; exp gets no leeway.
	Skew time.Duration
	// AllowInsecureHTTP lets providers with [Provider.AllowHTTP] be fetched
	// over plain http. A server flag for labs: without TLS, anyone on the
	// path can substitute keys and mint any identity.
	AllowInsecureHTTP bool
	// RootCAs are the roots that providers' TLS certificates are verified
	// against. Nil means the system roots.
	RootCAs *x509.CertPool
}

// Verifier verifies web-identity tokens against registered providers'
// keys, which it fetches and caches per provider URL. It is safe for
// concurrent use; create one per server.
type Verifier struct {
	now             func() time.Time
	log             *slog.Logger
	refreshInterval time.Duration
	keyTTL          time.Duration
	skew            time.Duration
	allowHTTP       bool
	roots           *x509.CertPool

	mu        sync.RWMutex
	providers map[string]*providerState
}

// NewVerifier returns a verifier configured by opts.
func NewVerifier(opts Options) *Verifier {
	v := &Verifier{
		now:             opts.Now,
		log:             opts.Logger,
		refreshInterval: opts.RefreshInterval,
		keyTTL:          opts.KeyTTL,
		skew:            opts.Skew,
		allowHTTP:       opts.AllowInsecureHTTP,
		roots:           opts.RootCAs,
		providers:       make(map[string]*providerState),
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.refreshInterval == 0 {
		v.refreshInterval = DefaultRefreshInterval
	}
	if v.keyTTL == 0 {
		v.keyTTL = DefaultKeyTTL
	}
	if v.skew == 0 {
		v.skew = DefaultSkew
	}
	return v
}

// Verify checks rawToken, a compact-serialized JWS, against provider p and
// returns the identity it proves. On failure the error is an [*Error] of
// kind [ErrInvalidToken], [ErrExpiredToken], [ErrUnknownProvider] (p is
// nil) or [ErrProviderUnreachable].
//
// A token is accepted when all of these hold:
//   - at most MaxTokenSize bytes, compact serialization, one signature;
//   - alg RS256, ES256 or EdDSA, signed by a key of the matching type in
//     the provider's JWKS selected by kid (kid may be absent only when the
//     JWKS holds a single key); an unknown kid makes the keys be fetched
//     again, at most once per RefreshInterval, before failing;
//   - iss equal to p.URL, byte for byte;
//   - aud (a string or an array) containing one of p.ClientIDs;
//   - sub present;
//   - exp present and in the future ([ErrExpiredToken] otherwise);
//   - nbf and iat, if present, no later than now plus Skew;
//   - a well-formed "kubernetes.io" claim and session-tags claim, if
//     present.
func (v *Verifier) Verify(ctx context.Context, p *Provider, rawToken string) (*Identity, error) {
	if p == nil {
		return nil, &Error{Kind: ErrUnknownProvider, Message: msgUnknownProvider, Detail: "no provider given"}
	}
	if len(rawToken) > MaxTokenSize {
		return nil, invalid(fmt.Sprintf("token of %d bytes, at most %d accepted", len(rawToken), MaxTokenSize), nil)
	}
	jws, err := jose.ParseSignedCompact(rawToken, allowedAlgorithms)
	if err != nil {
		return nil, invalid("parsing the token", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid(fmt.Sprintf("token with %d signatures", len(jws.Signatures)), nil)
	}
	hdr := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(hdr.Algorithm)
	if !slices.Contains(allowedAlgorithms, alg) {
		// ParseSignedCompact already refused it; checked again because the
		// allow-list is the heart of the matter.
		return nil, invalid(fmt.Sprintf("algorithm %q is not accepted", hdr.Algorithm), nil)
	}

	st := v.state(p)
	if st.cfgErr != nil {
		return nil, st.cfgErr
	}
	key, verr := v.key(ctx, st, hdr.KeyID, alg)
	if verr != nil {
		return nil, verr
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, invalid(fmt.Sprintf("signature does not verify with key %q", hdr.KeyID), err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalid("parsing the token's claims", err)
	}
	return v.check(p, &c, hdr.KeyID, hdr.Algorithm)
}

// key returns the key that must have signed a token with this kid and alg,
// fetching the provider's keys if none are cached, they are stale, or kid
// is unknown.
func (v *Verifier) key(ctx context.Context, st *providerState, kid string, alg jose.SignatureAlgorithm) (any, *Error) {
	ks, fetched, verr := v.currentKeys(ctx, st)
	if verr != nil {
		return nil, verr
	}
	key, res := ks.find(kid, alg)
	if res == keyUnknown && !st.static && !fetched {
		fresh, err := v.refresh(ctx, st, true)
		if fresh != nil {
			key, res = fresh.find(kid, alg)
		}
		if res == keyUnknown && err != nil {
			return nil, unreachable(fmt.Sprintf("refreshing keys for unknown kid %q", kid), err)
		}
	}
	switch res {
	case keyFound:
		return key, nil
	case keyUnknown:
		return nil, invalid(fmt.Sprintf("no key with kid %q in the provider's JWKS", kid), nil)
	default:
		if kid == "" {
			return nil, invalid(fmt.Sprintf("token without kid, and the JWKS does not hold exactly one %s key", alg), nil)
		}
		return nil, invalid(fmt.Sprintf("key %q is not a %s key", kid, alg), nil)
	}
}

// check applies the claim checks to an authentic token and builds the
// identity.
func (v *Verifier) check(p *Provider, c *claims, kid, alg string) (*Identity, error) {
	if c.Issuer != p.URL {
		return nil, invalid(fmt.Sprintf("iss %q is not the provider URL %q", c.Issuer, p.URL), nil)
	}
	var matched []string
	for _, a := range c.Audience {
		if slices.Contains(p.ClientIDs, a) && !slices.Contains(matched, a) {
			matched = append(matched, a)
		}
	}
	if len(matched) == 0 {
		return nil, invalid(fmt.Sprintf("aud %q holds none of the provider's client IDs", []string(c.Audience)), nil)
	}
	if c.Subject == "" {
		return nil, invalid("the token has no sub", nil)
	}
	if c.Expiry == nil {
		return nil, invalid("the token has no exp", nil)
	}
	now := v.now()
	if !now.Before(c.Expiry.t) {
		return nil, expired(fmt.Sprintf("exp %s is not after now %s", c.Expiry.t.Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	limit := now.Add(v.skew)
	if c.NotBefore != nil && c.NotBefore.t.After(limit) {
		return nil, invalid(fmt.Sprintf("nbf %s is after now %s plus skew %s", c.NotBefore.t.Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.skew), nil)
	}
	if c.IssuedAt != nil && c.IssuedAt.t.After(limit) {
		return nil, invalid(fmt.Sprintf("iat %s is after now %s plus skew %s", c.IssuedAt.t.Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.skew), nil)
	}
	id := &Identity{
		ProviderURL: p.URL,
		ProviderARN: p.ARN,
		Issuer:      c.Issuer,
		Subject:     c.Subject,
		Audience:    matched[0],
		Audiences:   matched,
		ExpiresAt:   c.Expiry.t,
		IssuedAt:    c.IssuedAt.time(),
		NotBefore:   c.NotBefore.time(),
		TokenID:     c.ID,
		KeyID:       kid,
		Algorithm:   alg,
	}
	if c.K8s != nil {
		k, err := c.K8s.kubernetes()
		if err != nil {
			return nil, invalid("checking the kubernetes.io claim", err)
		}
		id.Kubernetes = k
	}
	if c.Tags != nil {
		tags, transitive, err := c.Tags.sessionTags()
		if err != nil {
			return nil, invalid("checking the session tags claim", err)
		}
		id.SessionTags, id.TransitiveTagKeys = tags, transitive
	}
	return id, nil
}

// state returns the cached state for p, building it when p is new or its
// configuration changed.
func (v *Verifier) state(p *Provider) *providerState {
	v.mu.RLock()
	st := v.providers[p.URL]
	v.mu.RUnlock()
	if st != nil && st.sameConfig(p) {
		return st
	}
	fresh := v.newState(p)
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur := v.providers[p.URL]; cur != nil && cur.sameConfig(p) {
		return cur
	}
	v.providers[p.URL] = fresh
	return fresh
}

// newState builds the state for p, or a state holding why p is unusable.
func (v *Verifier) newState(p *Provider) *providerState {
	st := &providerState{
		cfg: Provider{
			URL:         p.URL,
			Thumbprints: slices.Clone(p.Thumbprints),
			CABundle:    p.CABundle,
			JWKS:        p.JWKS,
			AllowHTTP:   p.AllowHTTP,
		},
		allowHTTP: v.allowHTTP && p.AllowHTTP,
	}
	fail := func(err error) *providerState {
		st.cfgErr = unreachable("the provider's configuration is unusable", err)
		return st
	}
	u, err := parseIssuerURL(p.URL, p.AllowHTTP)
	if err != nil {
		return fail(err)
	}
	if u.Scheme == "http" && !v.allowHTTP {
		return fail(errHTTPDisabled)
	}
	if p.JWKS != "" {
		ks, _, err := parseJWKS([]byte(p.JWKS))
		if err != nil {
			return fail(fmt.Errorf("%w: static JWKS: %w", ErrInvalidProvider, err))
		}
		st.static = true
		st.keys.Store(ks)
		return st
	}
	tps, err := parseThumbprints(p.Thumbprints)
	if err != nil {
		return fail(err)
	}
	t := &trust{roots: v.roots, thumbprints: tps, now: v.now}
	if p.CABundle != "" {
		if t.bundle, err = parseCABundle(p.CABundle); err != nil {
			return fail(err)
		}
	}
	st.client = newHTTPClient(t)
	return st
}

// Invalidate drops everything cached for the provider with this URL (its
// keys and connection settings), for example when the provider is deleted.
// The next verification against it starts afresh. Updating a provider's
// thumbprints, CA bundle, JWKS or AllowHTTP needs no call: the change is
// noticed on the next verification.
func (v *Verifier) Invalidate(providerURL string) {
	v.mu.Lock()
	delete(v.providers, providerURL)
	v.mu.Unlock()
}

// IssuerOf returns the iss claim of rawToken without verifying anything.
// It is only for choosing which registered provider to verify the token
// against: the result must not be trusted or used for anything else, and
// the chosen provider's URL must then match iss in Verify. Errors are
// [*Error]s of kind [ErrInvalidToken].
func IssuerOf(rawToken string) (string, error) {
	if len(rawToken) > MaxTokenSize {
		return "", invalid(fmt.Sprintf("token of %d bytes, at most %d accepted", len(rawToken), MaxTokenSize), nil)
	}
	parts := strings.Split(rawToken, ".")
	if len(parts) != 3 {
		return "", invalid(fmt.Sprintf("token of %d parts, want 3", len(parts)), nil)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", invalid("decoding the token's payload", err)
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", invalid("parsing the token's claims", err)
	}
	if c.Issuer == "" {
		return "", invalid("the token has no iss", nil)
	}
	return c.Issuer, nil
}
