package federation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/testutil"
)

func TestOIDCUnknownKidRefreshesOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.mustVerify(t, e.iss.MintToken())
	if n := e.iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d JWKS fetches after the first verification, want 1", n)
	}

	unknown := e.iss.MintToken(testutil.TokenKeyID("no-such-key"))
	for i := range 3 {
		_, err := e.verify(t, unknown)
		assertKind(t, err, federation.ErrInvalidToken, unknown)
		if !strings.Contains(detail(err), "no-such-key") {
			t.Fatalf("detail %q", detail(err))
		}
		// One refresh for the first attempt; the others fall within the
		// rate-limit window.
		if n := e.iss.JWKSFetches(); n != 2 {
			t.Fatalf("attempt %d: %d JWKS fetches, want 2", i, n)
		}
	}
	e.clock.Advance(federation.DefaultRefreshInterval - time.Second)
	if _, err := e.verify(t, unknown); err == nil || e.iss.JWKSFetches() != 2 {
		t.Fatalf("within the window: %v, %d fetches", err, e.iss.JWKSFetches())
	}
	e.clock.Advance(time.Second)
	if _, err := e.verify(t, unknown); err == nil || e.iss.JWKSFetches() != 3 {
		t.Fatalf("after the window: %v, %d fetches, want 3", err, e.iss.JWKSFetches())
	}
	// Known keys keep working throughout, without fetches.
	e.mustVerify(t, e.iss.MintToken())
	if n := e.iss.JWKSFetches(); n != 3 {
		t.Fatalf("%d fetches", n)
	}
}

func TestOIDCRefreshIntervalOption(t *testing.T) {
	e := newEnv(t, func(o *federation.Options) { o.RefreshInterval = 5 * time.Minute })
	e.mustVerify(t, e.iss.MintToken())
	unknown := e.iss.MintToken(testutil.TokenKeyID("no-such-key"))
	_, _ = e.verify(t, unknown)
	e.clock.Advance(federation.DefaultRefreshInterval * 2)
	_, _ = e.verify(t, unknown)
	if n := e.iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d fetches within a 5-minute interval, want 2", n)
	}
	e.clock.Advance(5 * time.Minute)
	_, _ = e.verify(t, unknown)
	if n := e.iss.JWKSFetches(); n != 3 {
		t.Fatalf("%d fetches after the interval, want 3", n)
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	t.Run("old key removed", func(t *testing.T) {
		e := newEnv(t, nil)
		old := e.iss.MintToken()
		e.mustVerify(t, old)

		e.iss.RotateKeys(t)
		fresh := e.iss.MintToken()
		id := e.mustVerify(t, fresh) // unknown kid: refresh
		if id.KeyID != e.iss.KeyID() || e.iss.JWKSFetches() != 2 {
			t.Fatalf("kid %q, %d fetches", id.KeyID, e.iss.JWKSFetches())
		}
		_, err := e.verify(t, old)
		assertKind(t, err, federation.ErrInvalidToken, old)
	})
	t.Run("old key kept", func(t *testing.T) {
		e := newEnv(t, nil, testutil.WithOIDCAlgorithm(testutil.OIDCAlgES256))
		old := e.iss.MintToken()
		e.mustVerify(t, old)

		e.iss.RotateKeysKeepingOld(t)
		e.mustVerify(t, e.iss.MintToken())
		e.mustVerify(t, old)
		if n := e.iss.JWKSFetches(); n != 2 {
			t.Fatalf("%d fetches, want 2", n)
		}
	})
}

func TestOIDCStaleKeysAreRefetched(t *testing.T) {
	e := newEnv(t, func(o *federation.Options) { o.KeyTTL = 10 * time.Minute })
	old := e.iss.MintToken(testutil.TokenExpiry(e.clock.Now().Add(time.Hour)))
	e.mustVerify(t, old)

	// The key is withdrawn without a new kid appearing in any token: only
	// the TTL notices.
	e.iss.RotateKeys(t)
	e.clock.Advance(9 * time.Minute)
	e.mustVerify(t, old)
	if n := e.iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d fetches before the TTL, want 1", n)
	}
	e.clock.Advance(time.Minute)
	_, err := e.verify(t, old)
	assertKind(t, err, federation.ErrInvalidToken, old)
	if n := e.iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d fetches after the TTL, want 2", n)
	}
}

func TestOIDCConcurrentUnknownKidFetchesOnce(t *testing.T) {
	const workers = 16
	run := func(t *testing.T, e *env, token string) {
		t.Helper()
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				<-start
				_, err := e.v.Verify(context.Background(), e.p, token)
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("a concurrent verification failed: %v (%s)", err, detail(err))
			}
		}
	}

	t.Run("first fetch", func(t *testing.T) {
		e := newEnv(t, nil)
		run(t, e, e.iss.MintToken())
		if d, j := e.iss.DiscoveryFetches(), e.iss.JWKSFetches(); d != 1 || j != 1 {
			t.Fatalf("%d discovery and %d JWKS fetches, want 1 and 1", d, j)
		}
	})
	t.Run("after rotation", func(t *testing.T) {
		e := newEnv(t, nil)
		e.mustVerify(t, e.iss.MintToken())
		e.iss.RotateKeys(t)
		run(t, e, e.iss.MintToken())
		if d, j := e.iss.DiscoveryFetches(), e.iss.JWKSFetches(); d != 2 || j != 2 {
			t.Fatalf("%d discovery and %d JWKS fetches, want 2 and 2", d, j)
		}
	})
}

func TestOIDCCanceledWaitDoesNotFailOthers(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.v.Verify(ctx, e.p, e.iss.MintToken())
	assertKind(t, err, federation.ErrProviderUnreachable, "")

	// The fetch the canceled caller started runs on regardless and serves
	// the next caller (inside the rate-limit window, so no second fetch).
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.iss.JWKSFetches() == 1 })
	testutil.WaitFor(t, 10*time.Second, func() bool {
		_, err := e.verify(t, e.iss.MintToken())
		return err == nil
	})
	if n := e.iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

// jwk marshals a public key as a JWK with the given fields.
func jwk(t *testing.T, key any, kid, alg, use string) json.RawMessage {
	t.Helper()
	b, err := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use}.MarshalJSON()
	if err != nil {
		t.Fatalf("marshaling JWK: %v", err)
	}
	return b
}

func TestOIDCJWKSKeySelection(t *testing.T) {
	const issuer = "https://static.example"
	iss := testutil.StartOIDCIssuer(t)
	var published struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(iss.JWKS()), &published); err != nil {
		t.Fatal(err)
	}
	good := published.Keys[0]
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The issuer's key under its own kid but declared for another use or
	// algorithm.
	var pub any
	{
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(good); err != nil {
			t.Fatal(err)
		}
		pub = k.Key
	}
	kid := iss.KeyID()
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := jwk(t, edPub, "other", "EdDSA", "sig") // keeps the set usable
	tests := []struct {
		name string
		keys []json.RawMessage
		ok   bool
	}{
		{"published key", []json.RawMessage{good}, true},
		{"among unusable keys", []json.RawMessage{
			json.RawMessage(`{"kty":"oct","kid":"h","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`),
			jwk(t, &small.PublicKey, "small", "RS256", "sig"),
			jwk(t, &p384.PublicKey, "p384", "", ""),
			json.RawMessage(`{"kty":"RSA","kid":"broken","n":"AQ","e":"AQAB"}`),
			good,
		}, true},
		{"key for encryption", []json.RawMessage{jwk(t, pub, kid, "", "enc"), other}, false},
		{"key declared PS256", []json.RawMessage{jwk(t, pub, kid, "PS256", "sig"), other}, false},
		{"RSA key under 2048 bits", []json.RawMessage{jwk(t, &small.PublicKey, kid, "", ""), other}, false},
		{"P-384 key", []json.RawMessage{jwk(t, &p384.PublicKey, kid, "", ""), other}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := json.Marshal(map[string]any{"keys": tt.keys})
			if err != nil {
				t.Fatal(err)
			}
			p := &federation.Provider{URL: issuer, ClientIDs: []string{testutil.DefaultOIDCAudience}, JWKS: string(set)}
			v := federation.NewVerifier(federation.Options{})
			_, err = v.Verify(t.Context(), p, iss.MintToken(testutil.TokenIssuer(issuer)))
			if tt.ok {
				if err != nil {
					t.Fatalf("rejected: %v (%s)", err, detail(err))
				}
				return
			}
			assertKind(t, err, federation.ErrInvalidToken, "")
		})
	}
}

// withHeader replaces a token's header, keeping payload and signature.
func withHeader(t *testing.T, token string, header map[string]string) string {
	t.Helper()
	b, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b) + token[strings.Index(token, "."):]
}

func TestOIDCAlgorithmMustMatchKey(t *testing.T) {
	e := newEnv(t, nil)
	token := e.iss.MintToken()
	e.mustVerify(t, token)
	for _, alg := range []string{"ES256", "EdDSA", "PS256", "RS384", "HS256", "none", "NONE", ""} {
		t.Run(alg, func(t *testing.T) {
			forged := withHeader(t, token, map[string]string{"alg": alg, "kid": e.iss.KeyID()})
			_, err := e.verify(t, forged)
			assertKind(t, err, federation.ErrInvalidToken, forged)
		})
	}
	if n := e.iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d fetches; a known kid with the wrong algorithm must not refresh", n)
	}
	// The same header written by hand verifies, so the failures above are
	// due to the algorithm alone.
	e.mustVerify(t, withHeader(t, token, map[string]string{"alg": "RS256", "kid": e.iss.KeyID(), "typ": "JWT"}))
}
