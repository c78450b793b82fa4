package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
)

const (
	testRegion  = "us-east-1"
	testAccount = "123456789012"
)

var (
	rootPrincipal = &authn.Principal{Kind: authn.KindRoot, AccountID: testAccount,
		ARN: "arn:aws:iam::" + testAccount + ":root", ID: testAccount, AccessKeyID: "AKIAROOT"}
	userPrincipal = &authn.Principal{Kind: authn.KindIAMUser, AccountID: testAccount,
		ARN: "arn:aws:iam::" + testAccount + ":user/ci", ID: "AIDAEXAMPLE", Name: "ci", AccessKeyID: "AKIAUSER",
		Tags: map[string]string{"team": "payments"}}
)

// fakeClock is a settable clock.
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

// captureSink records audit events and can be told to fail.
type captureSink struct {
	mu     sync.Mutex
	events []*audit.Event
	fail   bool
}

func (s *captureSink) Record(_ context.Context, ev *audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("audit log is down")
	}
	cp := *ev
	s.events = append(s.events, &cp)
	return nil
}

func (s *captureSink) setFail(f bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

func (s *captureSink) all() []*audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*audit.Event(nil), s.events...)
}

func (s *captureSink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (slog handlers
// write from every goroutine).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// authorizerFunc adapts a function to Authorizer.
type authorizerFunc func(context.Context, iam.Request) iam.Decision

func (f authorizerFunc) Authorize(ctx context.Context, r iam.Request) iam.Decision { return f(ctx, r) }

// env is a Service over a real bolt store with a fake clock, a capturing
// audit sink and captured logs.
type env struct {
	t     testing.TB
	svc   *Service
	store store.Store
	audit *captureSink
	logs  *syncBuffer
	clock *fakeClock
	// principal signs every call; root unless a test changes it.
	principal *authn.Principal
}

type envOption func(*Config)

func withAuthorizer(a Authorizer) envOption { return func(c *Config) { c.Authorizer = a } }

func openTestStore(t testing.TB) store.Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "sigil.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("opening bolt store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, openTestStore(t), opts...)
}

func newEnvOn(t testing.TB, st store.Store, opts ...envOption) *env {
	t.Helper()
	e := &env{
		t:         t,
		store:     st,
		audit:     &captureSink{},
		logs:      &syncBuffer{},
		clock:     &fakeClock{t: time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)},
		principal: rootPrincipal,
	}
	cfg := Config{
		Store:      st,
		Authorizer: iam.RootOnly{},
		Audit:      e.audit,
		Region:     testRegion,
		AccountID:  testAccount,
		Now:        e.clock.Now,
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.svc = svc
	return e
}

// body turns a request into JSON: a string is used as is, anything else is
// marshalled.
func body(t testing.TB, req any) []byte {
	t.Helper()
	if s, ok := req.(string); ok {
		return []byte(s)
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("marshalling request: %v", err)
	}
	return b
}

// call runs one operation through Handle.
func (e *env) call(op string, req any) (any, error) {
	e.t.Helper()
	return e.svc.Handle(context.Background(), &Call{
		Operation: op, Body: body(e.t, req), Principal: e.principal,
		RequestID: "req-1", SourceIP: "192.0.2.10", UserAgent: "sigil-test/1.0", SecureTransport: true,
		Start: e.clock.Now(),
	})
}

// ok runs an operation that must succeed and returns its response decoded
// from JSON, as a client would see it.
func (e *env) ok(op string, req any) map[string]any {
	e.t.Helper()
	resp, err := e.call(op, req)
	if err != nil {
		e.t.Fatalf("%s: unexpected error: %v", op, err)
	}
	b, err := json.Marshal(resp)
	if err != nil {
		e.t.Fatalf("%s: marshalling response: %v", op, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatalf("%s: decoding response: %v", op, err)
	}
	return m
}

// okAs is ok decoding into a typed response.
func okAs[T any](e *env, op string, req any) T {
	e.t.Helper()
	resp, err := e.call(op, req)
	if err != nil {
		e.t.Fatalf("%s: unexpected error: %v", op, err)
	}
	b, err := json.Marshal(resp)
	if err != nil {
		e.t.Fatalf("%s: marshalling response: %v", op, err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("%s: decoding response: %v", op, err)
	}
	return out
}

// fail runs an operation that must fail with the given AWS exception and
// returns the error.
func (e *env) fail(op string, req any, code string) *awsproto.Error {
	e.t.Helper()
	_, err := e.call(op, req)
	if err == nil {
		e.t.Fatalf("%s: succeeded, want %s", op, code)
	}
	var ae *awsproto.Error
	if !errors.As(err, &ae) {
		e.t.Fatalf("%s: error %v is not an *awsproto.Error (want %s)", op, err, code)
	}
	if ae.Code != code {
		e.t.Fatalf("%s: error %s: %s, want %s", op, ae.Code, ae.Message, code)
	}
	return ae
}

// create makes a secret with a string value and returns its ARN.
func (e *env) create(name, value string) string {
	e.t.Helper()
	return e.ok("CreateSecret", map[string]any{"Name": name, "SecretString": value})["ARN"].(string)
}

// value reads the AWSCURRENT string value of a secret.
func (e *env) value(id string) string {
	e.t.Helper()
	return e.ok("GetSecretValue", map[string]any{"SecretId": id})["SecretString"].(string)
}

// token returns a valid ClientRequestToken built from a short tag.
func token(tag string) string {
	const pad = "00000000-0000-4000-8000-000000000000"
	return tag + pad[len(tag):]
}

// dump returns every key and value in the store (for leak checks).
func dump(t testing.TB, st store.Store) []store.Entry {
	t.Helper()
	es, _, err := st.List(context.Background(), "", "", 0)
	if err != nil {
		t.Fatalf("listing store: %v", err)
	}
	return es
}
