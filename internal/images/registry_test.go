package images_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sigil.dev/sigil/internal/images"
	"sigil.dev/sigil/internal/testutil"
)

func TestVerifyAssertion(t *testing.T) {
	f := newFixture(t)
	k := f.register(t, 0)
	other := f.register(t, 0)
	now := f.clock.Now()
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	mustNoErr(t, err)
	with := func(change func(c map[string]any)) map[string]any {
		c := k.claims(now)
		change(c)
		return c
	}
	tampered := func() string {
		tok := k.sign(t, k.claims(now), nil)
		parts := strings.Split(tok, ".")
		c := k.claims(now)
		c["aud"] = "sigil:image:999999999999"
		forged := strings.Split(k.sign(t, c, nil), ".")
		return parts[0] + "." + forged[1] + "." + parts[2]
	}
	unsigned := func(alg string) string {
		hb := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT","kid":"` + k.id + `"}`))
		parts := strings.Split(k.sign(t, k.claims(now), nil), ".")
		return hb + "." + parts[1] + "." + parts[2]
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", k.sign(t, k.claims(now), nil), nil},
		{"valid with a second proof", k.sign(t, with(func(c map[string]any) { c["k8s"] = "a.b.c" }), nil), nil},
		{"tampered claims", tampered(), images.ErrBadSignature},
		{"signed by another registered key", signJWS(t, other.priv, map[string]any{"alg": "EdDSA", "kid": k.id}, k.claims(now)), images.ErrBadSignature},
		{"signed by an unregistered key", signJWS(t, stranger, map[string]any{"alg": "EdDSA", "kid": k.id}, k.claims(now)), images.ErrBadSignature},
		{"alg none", unsigned("none"), images.ErrMalformedAssertion},
		{"alg none without signature", strings.TrimSuffix(unsigned("none"), strings.Split(unsigned("none"), ".")[2]), images.ErrMalformedAssertion},
		{"alg RS256", unsigned("RS256"), images.ErrMalformedAssertion},
		{"alg HS256", unsigned("HS256"), images.ErrMalformedAssertion},
		{"typ other than JWT", k.sign(t, k.claims(now), map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": k.id}), images.ErrMalformedAssertion},
		{"crit header", k.sign(t, k.claims(now), map[string]any{"alg": "EdDSA", "kid": k.id, "crit": []string{"b64"}}), images.ErrMalformedAssertion},
		{"no kid", k.sign(t, k.claims(now), map[string]any{"alg": "EdDSA"}), images.ErrMalformedAssertion},
		{"unknown kid", k.sign(t, with(func(c map[string]any) { c["sub"] = "img-aaaaaaaaaaaaaaaaaaaaaaaaaa" }),
			map[string]any{"alg": "EdDSA", "kid": "img-aaaaaaaaaaaaaaaaaaaaaaaaaa"}), images.ErrUnknownKey},
		{"sub differs from kid", k.sign(t, with(func(c map[string]any) { c["sub"] = other.id }), nil), images.ErrMalformedAssertion},
		{"wrong issuer", k.sign(t, with(func(c map[string]any) { c["iss"] = "https://issuer.example" }), nil), images.ErrMalformedAssertion},
		{"wrong audience", k.sign(t, with(func(c map[string]any) { c["aud"] = "sts.amazonaws.com" }), nil), images.ErrWrongAudience},
		{"expired", k.sign(t, with(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-6*time.Minute).Unix()
		}), nil), images.ErrAssertionExpired},
		{"expired within skew is accepted", k.sign(t, with(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-4*time.Minute).Unix(), now.Add(-30*time.Second).Unix()
		}), nil), nil},
		{"exp - iat over 300 s", k.sign(t, with(func(c map[string]any) { c["exp"] = now.Add(301 * time.Second).Unix() }), nil), images.ErrAssertionLifetime},
		{"exp before iat", k.sign(t, with(func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() }), nil), images.ErrAssertionLifetime},
		{"issued in the future", k.sign(t, with(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(2*time.Minute).Unix(), now.Add(4*time.Minute).Unix()
		}), nil), images.ErrAssertionLifetime},
		{"fractional exp", k.sign(t, with(func(c map[string]any) { c["exp"] = float64(now.Unix()) + 0.5 }), nil), images.ErrMalformedAssertion},
		{"no jti", k.sign(t, with(func(c map[string]any) { delete(c, "jti") }), nil), images.ErrMalformedAssertion},
		{"jti not hex", k.sign(t, with(func(c map[string]any) { c["jti"] = "../../keys/x-0123456789abcdef0123" }), nil), images.ErrMalformedAssertion},
		{"two parts", strings.Join(strings.Split(k.sign(t, k.claims(now), nil), ".")[:2], "."), images.ErrMalformedAssertion},
		{"padded base64", k.sign(t, k.claims(now), nil) + "==", images.ErrMalformedAssertion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := f.reg.VerifyAssertion(context.Background(), tc.token)
			if tc.want == nil {
				mustNoErr(t, err)
				if id.Digest != k.digest || id.KeyID != k.id || id.RoleARN != f.roleARN || id.Repository != "registry.example.com/team/app" {
					t.Fatalf("identity %+v does not describe the registered image %s", id, k.digest)
				}
				return
			}
			var ae *images.AssertionError
			if !errors.As(err, &ae) || !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want an AssertionError of kind %v", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.token) {
				t.Fatal("the error quotes the assertion")
			}
		})
	}
}

func TestReplayedJTI(t *testing.T) {
	f := newFixture(t)
	replica := f.newRegistry(t)
	k := f.register(t, 0)
	ctx := context.Background()
	t.Run("same replica", func(t *testing.T) {
		tok := k.sign(t, k.claims(f.clock.Now()), nil)
		_, err := f.reg.VerifyAssertion(ctx, tok)
		mustNoErr(t, err)
		if _, err := f.reg.VerifyAssertion(ctx, tok); !errors.Is(err, images.ErrReplayed) {
			t.Fatalf("replay: err = %v, want ErrReplayed", err)
		}
	})
	t.Run("another replica over the same store", func(t *testing.T) {
		tok := k.sign(t, k.claims(f.clock.Now()), nil)
		_, err := f.reg.VerifyAssertion(ctx, tok)
		mustNoErr(t, err)
		if _, err := replica.VerifyAssertion(ctx, tok); !errors.Is(err, images.ErrReplayed) {
			t.Fatalf("replay on a replica: err = %v, want ErrReplayed", err)
		}
	})
	t.Run("concurrent on two replicas", func(t *testing.T) {
		tok := k.sign(t, k.claims(f.clock.Now()), nil)
		var ok, replayed atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := f.reg
				if i%2 == 1 {
					r = replica
				}
				_, err := r.VerifyAssertion(ctx, tok)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, images.ErrReplayed):
					replayed.Add(1)
				default:
					t.Errorf("unexpected error %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || replayed.Load() != 15 {
			t.Fatalf("%d accepted and %d replayed, want 1 and 15", ok.Load(), replayed.Load())
		}
	})
	t.Run("distinct assertions in one batch all pass", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.reg.VerifyAssertion(ctx, k.sign(t, k.claims(f.clock.Now()), nil)); err != nil {
					t.Errorf("fresh assertion refused: %v", err)
				}
			}()
		}
		wg.Wait()
	})
}

func TestRevokeDigest(t *testing.T) {
	f := newFixture(t)
	replica := f.newRegistry(t)
	k := f.register(t, 0)
	keep := f.register(t, 0)
	ctx := context.Background()
	if f.reg.DigestRevoked(k.digest) || replica.DigestRevoked(k.digest) {
		t.Fatal("a fresh digest reads as revoked")
	}
	resp, err := f.reg.Revoke(ctx, k.digest, "key leaked in a build log", "arn:aws:iam::123456789012:root")
	mustNoErr(t, err)
	if !resp.RevokedAt.Equal(f.clock.Now()) {
		t.Fatalf("revokedAt %s, want %s", resp.RevokedAt, f.clock.Now())
	}
	if !f.reg.DigestRevoked(k.digest) {
		t.Fatal("the revoking replica does not apply the revocation at once")
	}
	testutil.WaitFor(t, time.Second, func() bool { return replica.DigestRevoked(k.digest) })
	if replica.DigestRevoked(keep.digest) {
		t.Fatal("revoking one digest revoked another")
	}
	for name, r := range map[string]*images.Registry{"revoking replica": f.reg, "other replica": replica} {
		if _, err := r.VerifyAssertion(ctx, k.sign(t, k.claims(f.clock.Now()), nil)); !errors.Is(err, images.ErrKeyRevoked) {
			t.Fatalf("%s: exchange with a revoked digest: err = %v, want ErrKeyRevoked", name, err)
		}
	}
	again, err := f.reg.Revoke(ctx, k.digest, "again", "x")
	mustNoErr(t, err)
	if !again.RevokedAt.Equal(resp.RevokedAt) {
		t.Fatal("revoking twice moved the revocation time")
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	_, err = f.reg.Register(ctx, "ci", &images.RegisterRequest{Digest: k.digest, Repository: "registry.example.com/team/app",
		RoleARN: f.roleARN, PublicKey: base64.StdEncoding.EncodeToString(pub), Reseal: true})
	if !errors.Is(err, images.ErrInvalidRequest) {
		t.Fatalf("registering a key for a revoked digest: err = %v, want ErrInvalidRequest", err)
	}
	if _, err := f.reg.Revoke(ctx, randomDigest(t), "", "x"); !errors.Is(err, images.ErrNotFound) {
		t.Fatalf("revoking an unknown digest: err = %v, want ErrNotFound", err)
	}
	list, err := replica.List(ctx)
	mustNoErr(t, err)
	found := false
	for _, im := range list {
		if im.Digest == k.digest {
			found = true
			if !im.Revoked || im.Reason != "key leaked in a build log" || im.RevokedAt == nil {
				t.Fatalf("listed %+v, want revoked with its reason", im)
			}
		}
	}
	if !found {
		t.Fatal("the revoked image is not listed")
	}
}

func TestKeyTTL(t *testing.T) {
	f := newFixture(t)
	k := f.register(t, 60)
	ctx := context.Background()
	_, err := f.reg.VerifyAssertion(ctx, k.sign(t, k.claims(f.clock.Now()), nil))
	mustNoErr(t, err)
	f.clock.Advance(61 * time.Second)
	_, err = f.reg.VerifyAssertion(ctx, k.sign(t, k.claims(f.clock.Now()), nil))
	if !errors.Is(err, images.ErrKeyExpired) || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("after the TTL: err = %v, want ErrKeyExpired saying when", err)
	}
}

func TestRegisterValidation(t *testing.T) {
	f := newFixture(t)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	good := images.RegisterRequest{Digest: randomDigest(t), Repository: "registry.example.com:5000/team/app", RoleARN: f.roleARN,
		PublicKey: base64.StdEncoding.EncodeToString(pub)}
	tests := []struct {
		name   string
		change func(r *images.RegisterRequest)
		want   error
	}{
		{"upper-case hex", func(r *images.RegisterRequest) {
			r.Digest = strings.ToUpper(r.Digest[:7]) + strings.ToUpper(r.Digest[7:])
		}, images.ErrInvalidDigest},
		{"upper-case hex digits only", func(r *images.RegisterRequest) { r.Digest = "sha256:" + strings.ToUpper(r.Digest[7:]) }, images.ErrInvalidDigest},
		{"short", func(r *images.RegisterRequest) { r.Digest = r.Digest[:70] }, images.ErrInvalidDigest},
		{"long", func(r *images.RegisterRequest) { r.Digest += "0" }, images.ErrInvalidDigest},
		{"sha512", func(r *images.RegisterRequest) { r.Digest = "sha512:" + r.Digest[7:] }, images.ErrInvalidDigest},
		{"no algorithm", func(r *images.RegisterRequest) { r.Digest = r.Digest[7:] }, images.ErrInvalidDigest},
		{"tag instead of digest", func(r *images.RegisterRequest) { r.Digest = "latest" }, images.ErrInvalidDigest},
		{"public key too short", func(r *images.RegisterRequest) { r.PublicKey = base64.StdEncoding.EncodeToString(pub[:31]) }, images.ErrInvalidKey},
		{"public key not base64", func(r *images.RegisterRequest) { r.PublicKey = "not base64!" }, images.ErrInvalidKey},
		{"unknown role", func(r *images.RegisterRequest) { r.RoleARN = "arn:aws:iam::123456789012:role/nope" }, images.ErrInvalidRequest},
		{"empty repository", func(r *images.RegisterRequest) { r.Repository = "" }, images.ErrInvalidRequest},
		{"upper-case repository", func(r *images.RegisterRequest) { r.Repository = "Registry/App" }, images.ErrInvalidRequest},
		{"negative ttl", func(r *images.RegisterRequest) { r.TTLSeconds = -1 }, images.ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := good
			tc.change(&req)
			if _, err := f.reg.Register(context.Background(), "ci", &req); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	list, err := f.reg.List(context.Background())
	mustNoErr(t, err)
	if len(list) != 0 {
		t.Fatalf("refused registrations left %d keys", len(list))
	}
	resp, err := f.reg.Register(context.Background(), "ci", &good)
	mustNoErr(t, err)
	if resp.KeyID != images.KeyIDOf(pub) || resp.KeyID != images.SealKeyID(pub) {
		t.Fatalf("key id %s, want the sealing side's %s", resp.KeyID, images.SealKeyID(pub))
	}
	if resp.Audience != images.SealAudience(testAccount) || resp.Issuer != images.ImageIssuer {
		t.Fatalf("audience %q issuer %q, want the sealing side's %q and %q", resp.Audience, resp.Issuer, images.SealAudience(testAccount), images.ImageIssuer)
	}
}

func TestRegisterTwiceAndReseal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := f.register(t, 0)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	req := images.RegisterRequest{Digest: old.digest, Repository: "registry.example.com/team/app", RoleARN: f.roleARN,
		PublicKey: base64.StdEncoding.EncodeToString(pub)}
	if _, err := f.reg.Register(ctx, "ci", &req); !errors.Is(err, images.ErrDigestExists) {
		t.Fatalf("second key without reseal: err = %v, want ErrDigestExists", err)
	}
	_, err := f.reg.VerifyAssertion(ctx, old.sign(t, old.claims(f.clock.Now()), nil))
	mustNoErr(t, err)
	req.Reseal = true
	resp, err := f.reg.Register(ctx, "ci", &req)
	mustNoErr(t, err)
	if _, err := f.reg.VerifyAssertion(ctx, old.sign(t, old.claims(f.clock.Now()), nil)); !errors.Is(err, images.ErrKeyRevoked) {
		t.Fatalf("the replaced key: err = %v, want ErrKeyRevoked", err)
	}
	fresh := &imageKey{priv: priv, id: resp.KeyID, digest: old.digest, aud: resp.Audience}
	_, err = f.reg.VerifyAssertion(ctx, fresh.sign(t, fresh.claims(f.clock.Now()), nil))
	mustNoErr(t, err)
	if _, err := f.reg.Register(ctx, "ci", &req); !errors.Is(err, images.ErrDigestExists) {
		t.Fatalf("registering the same public key again: err = %v, want ErrDigestExists", err)
	}
	k, err := f.reg.KeyForDigest(ctx, old.digest)
	mustNoErr(t, err)
	if k.ID != fresh.id {
		t.Fatalf("the digest's active key is %s, want %s", k.ID, fresh.id)
	}
}

func TestDeregister(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k := f.register(t, 0)
	mustNoErr(t, f.reg.Deregister(ctx, k.id))
	if _, err := f.reg.VerifyAssertion(ctx, k.sign(t, k.claims(f.clock.Now()), nil)); !errors.Is(err, images.ErrUnknownKey) {
		t.Fatalf("deregistered key: err = %v, want ErrUnknownKey", err)
	}
	if err := f.reg.Deregister(ctx, k.id); !errors.Is(err, images.ErrNotFound) {
		t.Fatalf("deregistering twice: err = %v, want ErrNotFound", err)
	}
	if _, err := f.reg.KeyForDigest(ctx, k.digest); !errors.Is(err, images.ErrNotFound) {
		t.Fatalf("the digest still has a key: %v", err)
	}
}

func TestUsageCounters(t *testing.T) {
	f := newFixture(t)
	replica := f.newRegistry(t)
	k := f.register(t, 0)
	ctx := context.Background()
	for range 3 {
		_, err := f.reg.VerifyAssertion(ctx, k.sign(t, k.claims(f.clock.Now()), nil))
		mustNoErr(t, err)
	}
	exchanges := func(r *images.Registry) int64 {
		list, err := r.List(ctx)
		mustNoErr(t, err)
		for _, im := range list {
			if im.KeyID == k.id {
				return im.Exchanges
			}
		}
		t.Fatal("key not listed")
		return 0
	}
	if n := exchanges(f.reg); n != 3 {
		t.Fatalf("the exchanging replica counts %d, want 3", n)
	}
	// Run flushes once a second of the registry's clock.
	f.clock.Advance(2 * time.Second)
	testutil.WaitFor(t, 5*time.Second, func() bool { return exchanges(replica) == 3 })
	list, err := replica.List(ctx)
	mustNoErr(t, err)
	if list[0].LastUsed == nil || list[0].LastUsed.IsZero() {
		t.Fatalf("lastUsed not recorded: %+v", list[0])
	}
	if n := exchanges(f.reg); n != 3 {
		t.Fatalf("after the flush the exchanging replica counts %d, want 3", n)
	}
}

// TestReplayCacheSweep: a jti stays in the store until its assertion has
// expired (plus the skew), then Run drops it; the expired assertion is
// refused as expired, not accepted again.
func TestReplayCacheSweep(t *testing.T) {
	f := newFixture(t)
	k := f.register(t, 0)
	ctx := context.Background()
	tok := k.sign(t, k.claims(f.clock.Now()), nil)
	_, err := f.reg.VerifyAssertion(ctx, tok)
	mustNoErr(t, err)
	entries := func() int {
		es, _, err := f.store.List(ctx, "images/jti/", "", 100)
		mustNoErr(t, err)
		return len(es)
	}
	if n := entries(); n != 1 {
		t.Fatalf("%d replay-cache entries, want 1", n)
	}
	f.clock.Advance(2 * time.Minute)
	if _, err := f.reg.VerifyAssertion(ctx, tok); !errors.Is(err, images.ErrReplayed) {
		t.Fatalf("replay before expiry: err = %v, want ErrReplayed", err)
	}
	f.clock.Advance(5 * time.Minute)
	testutil.WaitFor(t, 5*time.Second, func() bool { return entries() == 0 })
	if _, err := f.reg.VerifyAssertion(ctx, tok); !errors.Is(err, images.ErrAssertionExpired) {
		t.Fatalf("after the sweep: err = %v, want ErrAssertionExpired", err)
	}
}
