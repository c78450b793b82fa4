package images_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/barrier"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/images"
	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
)

const testAccount = "123456789012"

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openStore opens a bolt store behind an initialised barrier, as the
// server runs it.
func openStore(t testing.TB) store.Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "sigil.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("opening bolt store: %v", err)
	}
	b := barrier.New(db, barrier.Options{})
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	if err := b.Initialize(context.Background(), kek); err != nil {
		t.Fatalf("initialising barrier: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// fixture is a registry over a real store with a real role.
type fixture struct {
	store   store.Store
	ents    *iam.Entities
	clock   *fakeClock
	reg     *images.Registry
	roleARN string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{store: openStore(t), clock: newClock()}
	var err error
	f.ents, err = iam.NewEntities(iam.EntitiesConfig{Store: f.store, AccountID: testAccount, Keys: authn.NewKeys(f.store, nil)})
	mustNoErr(t, err)
	role, err := f.ents.CreateRole(context.Background(), iam.NewRole{Name: "app", TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"sigil:image"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`})
	mustNoErr(t, err)
	f.roleARN = role.ARN
	f.reg = f.newRegistry(t)
	return f
}

// newRegistry returns another registry (a replica) over the fixture's
// store, running in the background until the test ends.
func (f *fixture) newRegistry(t testing.TB) *images.Registry {
	t.Helper()
	r, err := images.New(context.Background(), images.Config{Store: f.store, Roles: f.ents, AccountID: testAccount, Now: f.clock.Now})
	mustNoErr(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// imageKey is a workload's key pair and registration.
type imageKey struct {
	priv   ed25519.PrivateKey
	id     string
	digest string
	aud    string
}

func randomDigest(t testing.TB) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(b[:])
}

// register registers a fresh key for a fresh digest.
func (f *fixture) register(t testing.TB, ttl int64) *imageKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	mustNoErr(t, err)
	digest := randomDigest(t)
	resp, err := f.reg.Register(context.Background(), "arn:aws:iam::123456789012:user/ci", &images.RegisterRequest{
		Digest: digest, Repository: "registry.example.com/team/app", RoleARN: f.roleARN,
		PublicKey: base64.StdEncoding.EncodeToString(pub), TTLSeconds: ttl})
	mustNoErr(t, err)
	return &imageKey{priv: priv, id: resp.KeyID, digest: digest, aud: resp.Audience}
}

// claims returns valid claims for k at now.
func (k *imageKey) claims(now time.Time) map[string]any {
	var j [16]byte
	_, _ = rand.Read(j[:])
	return map[string]any{"iss": "sigil:image", "sub": k.id, "aud": k.aud, "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": hex.EncodeToString(j[:])}
}

// sign signs claims under header {"alg":"EdDSA","typ":"JWT","kid":k.id}
// (or the header given).
func (k *imageKey) sign(t testing.TB, claims map[string]any, header map[string]any) string {
	t.Helper()
	if header == nil {
		header = map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": k.id}
	}
	return signJWS(t, k.priv, header, claims)
}

func signJWS(t testing.TB, priv ed25519.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	hb, err := json.Marshal(header)
	mustNoErr(t, err)
	cb, err := json.Marshal(claims)
	mustNoErr(t, err)
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	return in + "." + enc.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
