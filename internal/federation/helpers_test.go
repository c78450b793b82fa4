package federation_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/testutil"
)

// fakeClock is a settable clock shared by a verifier and an issuer.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one issuer, a verifier, and a provider trusting the issuer by
// thumbprint, all on one fake clock.
type env struct {
	clock *fakeClock
	iss   *testutil.OIDCIssuer
	v     *federation.Verifier
	p     *federation.Provider
	logs  *syncBuffer
}

// newEnv starts an issuer with opts and a verifier with the options
// changed by adjust.
func newEnv(t testing.TB, adjust func(*federation.Options), opts ...testutil.OIDCOption) *env {
	t.Helper()
	clock := newClock()
	opts = append([]testutil.OIDCOption{testutil.WithOIDCClock(clock.Now)}, opts...)
	iss := testutil.StartOIDCIssuer(t, opts...)
	logs := &syncBuffer{}
	o := federation.Options{
		Now:    clock.Now,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if adjust != nil {
		adjust(&o)
	}
	return &env{
		clock: clock,
		iss:   iss,
		v:     federation.NewVerifier(o),
		p:     providerFor(iss),
		logs:  logs,
	}
}

// providerFor returns a provider for iss trusted by its thumbprint.
func providerFor(iss *testutil.OIDCIssuer) *federation.Provider {
	return &federation.Provider{
		URL:         iss.URL,
		ClientIDs:   []string{testutil.DefaultOIDCAudience},
		Thumbprints: []string{iss.Thumbprint},
		ARN:         federation.ProviderARN("123456789012", iss.URL),
	}
}

// verify verifies token against the env's provider.
func (e *env) verify(t testing.TB, token string) (*federation.Identity, error) {
	t.Helper()
	return e.v.Verify(context.Background(), e.p, token)
}

// mustVerify verifies token and fails the test if it does not verify.
func (e *env) mustVerify(t testing.TB, token string) *federation.Identity {
	t.Helper()
	id, err := e.verify(t, token)
	if err != nil {
		t.Fatalf("Verify: %v (%s)", err, detail(err))
	}
	return id
}

// detail returns the server-log detail of a federation error.
func detail(err error) string {
	var fe *federation.Error
	if errors.As(err, &fe) {
		s := fe.Detail
		if fe.Err != nil {
			s += ": " + fe.Err.Error()
		}
		return s
	}
	return ""
}

// assertKind fails unless err is a *federation.Error of kind want whose
// client message reveals nothing of the token or of the detail.
func assertKind(t testing.TB, err, want error, token string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %v", want)
	}
	var fe *federation.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %T %v is not a *federation.Error", err, err)
	}
	if !errors.Is(err, want) || fe.Kind != want {
		t.Fatalf("error kind %v (%s), want %v", fe.Kind, detail(err), want)
	}
	if fe.Detail == "" {
		t.Fatal("error without detail for the log")
	}
	msg := err.Error()
	if strings.Contains(msg, fe.Detail) || (token != "" && len(token) > 16 && strings.Contains(msg, token[:16])) {
		t.Fatalf("client-facing message %q reveals the detail or the token", msg)
	}
	if strings.Contains(fe.Detail, token) && token != "" {
		t.Fatalf("detail %q contains the token", fe.Detail)
	}
}
