package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/secrets"
	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
)

const (
	testRegion  = "us-east-1"
	testAccount = "123456789012"
)

// rotatorARN returns the RotationLambdaARN of a rotator in the test
// account.
func rotatorARN(name string) string { return rotation.RotatorARNFor(testRegion, testAccount, name) }

// fakeClock is a settable clock shared by a test's runners and fakes.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)}
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
	events []audit.Event
	fail   bool
}

func (s *captureSink) Record(_ context.Context, ev *audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("audit log is down")
	}
	s.events = append(s.events, *ev)
	return nil
}

func (s *captureSink) setFail(f bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

func (s *captureSink) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ev := range s.events {
		out = append(out, ev.Action)
	}
	return out
}

func (s *captureSink) all() []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "sigil.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("opening bolt store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// fakeSecrets is an in-memory fake of the secrets service's rotation API
// with the same contract, for tests of the runner and the rotators that
// need no real service. Tests against *secrets.Service are in
// service_test.go.
type fakeSecrets struct {
	mu      sync.Mutex
	now     func() time.Time
	every   time.Duration // rotation interval after a success
	secrets map[string]*fakeSecret
	tokens  int
	// calls counts calls per method, for exactly-once assertions.
	calls map[string]int
}

type fakeSecret struct {
	arn      string
	rotator  string
	versions map[string]rotation.Value
	stages   map[string]string // stage -> version id
	next     time.Time         // zero: no rotation due
	token    string
	holder   string
	until    time.Time
	attempts int
	step     string
	cause    string
	rotated  time.Time
}

var errFakeNotFound = fmt.Errorf("fake: %w", secrets.ErrNotFound)

func newFakeSecrets(now func() time.Time) *fakeSecrets {
	return &fakeSecrets{now: now, every: 24 * time.Hour, secrets: map[string]*fakeSecret{}, calls: map[string]int{}}
}

// add creates a secret with one AWSCURRENT string version, due for
// rotation at due (zero: not scheduled) by the rotator named.
func (f *fakeSecrets) add(name, value, rotator string, due time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := value
	f.secrets[name] = &fakeSecret{
		arn:      "arn:aws:secretsmanager:" + testRegion + ":" + testAccount + ":secret:" + name + "-AbCdEf",
		rotator:  rotatorARN(rotator),
		versions: map[string]rotation.Value{"v0": {VersionID: "v0", String: &v}},
		stages:   map[string]string{rotation.StageCurrent: "v0"},
		next:     due,
	}
}

func (f *fakeSecrets) get(t testing.TB, name string) *fakeSecret {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.secrets[name]
	if !ok {
		t.Fatalf("no secret %q", name)
	}
	cp := *s
	return &cp
}

// stageValue returns the string of the version carrying stage.
func (f *fakeSecrets) stageValue(t testing.TB, name, stage string) (id, value string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.secrets[name]
	id, ok := s.stages[stage]
	if !ok {
		return "", ""
	}
	return id, *s.versions[id].String
}

func (f *fakeSecrets) callCount(m string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

func (f *fakeSecrets) due(s *fakeSecret, name string) rotation.DueRotation {
	return rotation.DueRotation{Name: name, ARN: s.arn, Rotator: s.rotator, Token: s.token, Due: s.next, Attempts: s.attempts}
}

func (f *fakeSecrets) DueRotations(_ context.Context, now time.Time, limit int) ([]rotation.DueRotation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["DueRotations"]++
	var out []rotation.DueRotation
	for name, s := range f.secrets {
		if s.next.IsZero() || now.Before(s.next) || (s.holder != "" && now.Before(s.until)) {
			continue
		}
		out = append(out, f.due(s, name))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (f *fakeSecrets) ClaimRotation(_ context.Context, name, holder string, now, until time.Time) (rotation.DueRotation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["ClaimRotation"]++
	s, ok := f.secrets[name]
	switch {
	case !ok:
		return rotation.DueRotation{}, fmt.Errorf("%w: %w", secrets.ErrRotationClaimed, errFakeNotFound)
	case s.next.IsZero() || now.Before(s.next):
		return rotation.DueRotation{}, fmt.Errorf("%w: not due", secrets.ErrRotationClaimed)
	case s.holder != "" && s.holder != holder && now.Before(s.until):
		return rotation.DueRotation{}, fmt.Errorf("%w: claimed by %s", secrets.ErrRotationClaimed, s.holder)
	}
	if s.token == "" {
		f.tokens++
		s.token = fmt.Sprintf("00000000-0000-4000-8000-%012d", f.tokens)
	}
	s.holder, s.until = holder, until
	f.calls["ClaimRotation ok"]++
	return f.due(s, name), nil
}

func (f *fakeSecrets) RotationValue(_ context.Context, name, versionID, stage string) (rotation.Value, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.secrets[name]
	if !ok {
		return rotation.Value{}, errFakeNotFound
	}
	if versionID == "" {
		if stage == "" {
			stage = rotation.StageCurrent
		}
		versionID = s.stages[stage]
	} else if stage != "" && s.stages[stage] != versionID {
		return rotation.Value{}, errFakeNotFound
	}
	v, ok := s.versions[versionID]
	if !ok {
		return rotation.Value{}, errFakeNotFound
	}
	for st, id := range s.stages {
		if id == versionID {
			v.Stages = append(v.Stages, st)
		}
	}
	return v, nil
}

func (f *fakeSecrets) PutPendingValue(_ context.Context, name, token string, str *string, bin []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["PutPendingValue"]++
	s, ok := f.secrets[name]
	if !ok {
		return errFakeNotFound
	}
	if v, ok := s.versions[token]; ok {
		if str == nil || v.String == nil || *v.String != *str {
			return fmt.Errorf("version %s already exists with another value", token)
		}
		return nil
	}
	s.versions[token] = rotation.Value{VersionID: token, String: str, Binary: bin}
	s.stages[rotation.StagePending] = token
	return nil
}

func (f *fakeSecrets) FinishRotation(_ context.Context, name, token string, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["FinishRotation"]++
	s, ok := f.secrets[name]
	if !ok {
		return errFakeNotFound
	}
	if s.token != token {
		return fmt.Errorf("%w: %s is not the pending rotation", secrets.ErrRotationClaimed, token)
	}
	if _, ok := s.versions[token]; !ok {
		return errFakeNotFound
	}
	if s.stages[rotation.StageCurrent] != token {
		s.stages[rotation.StagePrevious] = s.stages[rotation.StageCurrent]
		s.stages[rotation.StageCurrent] = token
	}
	delete(s.stages, rotation.StagePending)
	s.token, s.holder, s.until, s.attempts, s.step, s.cause = "", "", time.Time{}, 0, "", ""
	s.rotated, s.next = now, now.Add(f.every)
	return nil
}

func (f *fakeSecrets) FailRotation(_ context.Context, name, token, step, cause string, retryAt time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["FailRotation"]++
	s, ok := f.secrets[name]
	if !ok {
		return errFakeNotFound
	}
	if s.token != token {
		return fmt.Errorf("%w: %s is not the pending rotation", secrets.ErrRotationClaimed, token)
	}
	s.attempts++
	s.step, s.cause = step, cause
	s.holder, s.until = "", time.Time{}
	s.next = retryAt
	return nil
}

// runnerEnv is a runner over a fake secrets service and a real store.
type runnerEnv struct {
	clock   *fakeClock
	secrets *fakeSecrets
	store   store.Store
	audit   *captureSink
}

func newRunnerEnv(t testing.TB) *runnerEnv {
	t.Helper()
	clock := newClock()
	return &runnerEnv{clock: clock, secrets: newFakeSecrets(clock.Now), store: openStore(t), audit: &captureSink{}}
}

// runner returns a runner over e with holder id and the given options.
func (e *runnerEnv) runner(t testing.TB, holder string, opts ...func(*rotation.Config)) *rotation.Runner {
	t.Helper()
	cfg := rotation.Config{
		Secrets: e.secrets, Store: e.store, Audit: e.audit, Now: e.clock.Now,
		HolderID: holder, AccountID: testAccount, Region: testRegion,
		MinBackoff: time.Minute, MaxBackoff: time.Hour,
	}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := rotation.New(cfg)
	if err != nil {
		t.Fatalf("rotation.New: %v", err)
	}
	return r
}

// withBuiltins adds in-process rotators through a registry over e's store.
func (e *runnerEnv) withBuiltins(t testing.TB, rots map[string]rotation.Rotator) func(*rotation.Config) {
	t.Helper()
	reg, err := rotation.NewRegistry(rotation.RegistryConfig{
		Store: e.store, Region: testRegion, AccountID: testAccount, Now: e.clock.Now, Builtins: rots,
	})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return func(c *rotation.Config) { c.Registry = reg }
}

// pass runs one pass that must not fail as a whole.
func pass(t testing.TB, r *rotation.Runner) rotation.PassResult {
	t.Helper()
	res, err := r.Pass(context.Background())
	if err != nil {
		t.Fatalf("Pass: %v", err)
	}
	return res
}

// recorder is a rotator that records the steps it was asked for and can be
// told to fail one.
type recorder struct {
	mu     sync.Mutex
	steps  []string // "step token"
	failAt rotation.Step
	inner  rotation.Rotator
}

func (r *recorder) Step(ctx context.Context, step rotation.Step, job rotation.Job) error {
	r.mu.Lock()
	r.steps = append(r.steps, string(step)+" "+job.Name+" "+job.Token)
	fail := r.failAt == step
	r.mu.Unlock()
	if fail {
		return fmt.Errorf("injected %s failure", step)
	}
	if r.inner != nil {
		return r.inner.Step(ctx, step, job)
	}
	return nil
}

func (r *recorder) setFailAt(s rotation.Step) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failAt = s
}

func (r *recorder) count(step rotation.Step, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.steps {
		if f := strings.Fields(s); f[0] == string(step) && f[1] == name {
			n++
		}
	}
	return n
}
