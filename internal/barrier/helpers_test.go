package barrier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/store"
)

// testKEK returns a distinct, recognisable 32-byte key for seed.
func testKEK(seed byte) []byte {
	k := make([]byte, keySize)
	for i := range k {
		k[i] = seed ^ byte(i*31+7)
	}
	return k
}

// logBuffer collects a barrier's log output so tests can check what was (and
// was not) logged.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeClock is a settable clock for install times.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

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

type fixture struct {
	b     *Barrier
	inner *memStore
	kek   []byte
	logs  *logBuffer
	clock *fakeClock
}

// newSealed returns a sealed, uninitialised barrier over a fresh memStore.
func newSealed(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		inner: newMemStore(),
		kek:   testKEK(1),
		logs:  &logBuffer{},
		clock: &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)},
	}
	f.b = f.open(t, f.inner)
	return f
}

// newFixture returns an initialised, unsealed barrier.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := newSealed(t)
	if err := f.b.Initialize(context.Background(), f.kek); err != nil {
		t.Fatal(err)
	}
	return f
}

// open returns another sealed barrier over inner sharing f's log and clock,
// as a second replica would be.
func (f *fixture) open(t *testing.T, inner store.Store) *Barrier {
	t.Helper()
	return New(inner, Options{
		Now:    f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
}

// replica returns a second barrier over f's inner store, unsealed with f's
// KEK.
func (f *fixture) replica(t *testing.T) *Barrier {
	t.Helper()
	b := f.open(t, f.inner)
	if err := b.Unseal(context.Background(), f.kek); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPut(t *testing.T, s store.Store, key string, value []byte) int64 {
	t.Helper()
	rev, err := s.Put(context.Background(), key, value)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return rev
}

func mustGet(t *testing.T, s store.Store, key string) store.Entry {
	t.Helper()
	e, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return e
}

// rawTerm returns the key term in the header of the envelope stored at key.
func (f *fixture) rawTerm(t *testing.T, key string) uint32 {
	t.Helper()
	e := mustGet(t, f.inner, key)
	term, err := envelopeTerm(e.Value)
	if err != nil {
		t.Fatalf("envelope at %q: %v", key, err)
	}
	return term
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

type envelopeVector struct {
	Name       string `json:"name"`
	DataKey    string `json:"data_key"`
	Term       uint32 `json:"term"`
	Nonce      string `json:"nonce"`
	StorageKey string `json:"storage_key"`
	Plaintext  string `json:"plaintext"`
	Envelope   string `json:"envelope"`
}

func envelopeVectors(t testing.TB) []envelopeVector {
	t.Helper()
	var f struct {
		Vectors []envelopeVector `json:"vectors"`
	}
	readJSON(t, "envelope_v1.json", &f)
	if len(f.Vectors) == 0 {
		t.Fatal("no envelope vectors")
	}
	return f.Vectors
}

type badEnvelope struct {
	Name       string `json:"name"`
	StorageKey string `json:"storage_key"`
	Envelope   string `json:"envelope"`
}

func badEnvelopes(t testing.TB) []badEnvelope {
	t.Helper()
	var f struct {
		Cases []badEnvelope `json:"cases"`
	}
	readJSON(t, "bad_envelopes.json", &f)
	if len(f.Cases) == 0 {
		t.Fatal("no bad envelopes")
	}
	return f.Cases
}

// vectorBarrier returns an unsealed barrier over a fresh memStore whose
// keyring holds the data keys of every envelope vector at their terms.
func vectorBarrier(t testing.TB) *Barrier {
	t.Helper()
	ring := &keyring{}
	for _, v := range envelopeVectors(t) {
		if ring.find(v.Term) != nil {
			continue
		}
		k := dataKey{term: v.Term, installed: time.Unix(0, 0).UTC()}
		copy(k.key[:], unhex(t, v.DataKey))
		ring.keys = append(ring.keys, k)
		ring.active = v.Term
	}
	kek := secretKey(testKEK(9))
	blob, err := sealKeyring(&kek, rand.Reader, shareConfig{}, ring)
	if err != nil {
		t.Fatal(err)
	}
	inner := newMemStore()
	rev, err := inner.Put(context.Background(), keyringKey, blob)
	if err != nil {
		t.Fatal(err)
	}
	st, err := newState(&kek, shareConfig{}, ring, rev)
	if err != nil {
		t.Fatal(err)
	}
	b := New(inner, Options{})
	b.mu.Lock()
	b.install(st)
	b.mu.Unlock()
	return b
}
