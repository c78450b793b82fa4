package rotation_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/secrets"
	"sigil.dev/sigil/internal/store"
)

// The real service satisfies the runner's interface.
var _ rotation.Secrets = (*secrets.Service)(nil)

var rootPrincipal = &authn.Principal{Kind: authn.KindRoot, AccountID: testAccount,
	ARN: "arn:aws:iam::" + testAccount + ":root", ID: testAccount, AccessKeyID: "AKIAROOT"}

// serviceEnv is a real *secrets.Service over a real bolt store, with a
// fake clock shared with the runners built on it.
type serviceEnv struct {
	t     testing.TB
	clock *fakeClock
	store store.Store
	audit *captureSink
	svc   *secrets.Service
	reg   *rotation.Registry
	// logs collects what the runners log.
	logs *syncBuffer
}

// syncBuffer is a strings.Builder safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

func newServiceEnv(t testing.TB, builtins map[string]rotation.Rotator) *serviceEnv {
	t.Helper()
	e := &serviceEnv{t: t, clock: newClock(), store: openStore(t), audit: &captureSink{}, logs: &syncBuffer{}}
	reg, err := rotation.NewRegistry(rotation.RegistryConfig{
		Store: e.store, Region: testRegion, AccountID: testAccount, Now: e.clock.Now, Builtins: builtins,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.reg = reg
	svc, err := secrets.New(secrets.Config{
		Store: e.store, Authorizer: iam.RootOnly{}, Audit: e.audit, Region: testRegion, AccountID: testAccount,
		Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler), Rotators: reg.Check,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

// runner returns a runner over the service with holder id.
func (e *serviceEnv) runner(holder string, opts ...func(*rotation.Config)) *rotation.Runner {
	e.t.Helper()
	cfg := rotation.Config{
		Secrets: e.svc, Store: e.store, Registry: e.reg, Audit: e.audit, Now: e.clock.Now,
		HolderID: holder, AccountID: testAccount, Region: testRegion,
		MinBackoff: time.Minute, MaxBackoff: time.Hour,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := rotation.New(cfg)
	if err != nil {
		e.t.Fatalf("rotation.New: %v", err)
	}
	return r
}

// call runs a Secrets Manager operation as root and returns its response
// as JSON.
func (e *serviceEnv) call(op string, req any) (map[string]any, error) {
	e.t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.svc.Handle(context.Background(), &secrets.Call{
		Operation: op, Body: body, Principal: rootPrincipal, RequestID: "req", Start: e.clock.Now(),
	})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(resp)
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	return m, nil
}

func (e *serviceEnv) ok(op string, req any) map[string]any {
	e.t.Helper()
	m, err := e.call(op, req)
	if err != nil {
		e.t.Fatalf("%s: %v", op, err)
	}
	return m
}

// create makes a secret with a string value.
func (e *serviceEnv) create(name, value string) {
	e.t.Helper()
	e.ok("CreateSecret", map[string]any{"Name": name, "SecretString": value})
}

// rotate enables rotation by rotator every days days, immediately unless
// told otherwise.
func (e *serviceEnv) rotate(name, rotator string, immediately bool) map[string]any {
	e.t.Helper()
	return e.ok("RotateSecret", map[string]any{
		"SecretId": name, "RotationLambdaARN": rotatorARN(rotator),
		"RotationRules": map[string]any{"AutomaticallyAfterDays": 30}, "RotateImmediately": immediately,
	})
}

// value returns the version id and string of the version with stage.
func (e *serviceEnv) value(name, stage string) (string, string) {
	e.t.Helper()
	m, err := e.call("GetSecretValue", map[string]any{"SecretId": name, "VersionStage": stage})
	if err != nil {
		return "", ""
	}
	s, _ := m["SecretString"].(string)
	return m["VersionId"].(string), s
}

// describe returns DescribeSecret's response.
func (e *serviceEnv) describe(name string) map[string]any {
	e.t.Helper()
	return e.ok("DescribeSecret", map[string]any{"SecretId": name})
}

// status returns SigilRotationStatus.Step and .Error, "" when absent.
func (e *serviceEnv) status(name string) (step, cause string) {
	e.t.Helper()
	st, _ := e.describe(name)["SigilRotationStatus"].(map[string]any)
	if st == nil {
		return "", ""
	}
	step, _ = st["Step"].(string)
	cause, _ = st["Error"].(string)
	return step, cause
}

func TestServiceRandomRotation(t *testing.T) {
	e := newServiceEnv(t, nil)
	e.create("app/key", "old-key")
	out := e.rotate("app/key", rotation.BuiltinRandom, true)
	token := out["VersionId"].(string)
	r := e.runner("a")
	if res := pass(t, r); res != (rotation.PassResult{Due: 1, Succeeded: 1}) {
		t.Fatalf("pass = %+v", res)
	}
	id, cur := e.value("app/key", rotation.StageCurrent)
	if id != token || len(cur) != rotation.DefaultPasswordLength {
		t.Fatalf("AWSCURRENT = %s (%d chars), want RotateSecret's version %s", id, len(cur), token)
	}
	if _, prev := e.value("app/key", rotation.StagePrevious); prev != "old-key" {
		t.Fatalf("AWSPREVIOUS = %q", prev)
	}
	d := e.describe("app/key")
	if d["RotationEnabled"] != true || d["LastRotatedDate"] == nil || d["NextRotationDate"] == nil || d["SigilRotationStatus"] != nil {
		t.Fatalf("DescribeSecret = %v", d)
	}
}

func TestServiceRandomJSONField(t *testing.T) {
	e := newServiceEnv(t, nil)
	ctx := context.Background()
	if _, err := e.reg.Put(ctx, rotation.RotatorSpec{Name: "api-token", Type: rotation.TypeRandom,
		Random: &rotation.RandomSpec{Field: "token", PasswordPolicy: rotation.PasswordPolicy{Length: 48, ExcludePunctuation: true}}}); err != nil {
		t.Fatal(err)
	}
	e.create("svc/api", `{"user":"bot","token":"old"}`)
	e.rotate("svc/api", "api-token", true)
	if res := pass(t, e.runner("a")); res.Succeeded != 1 {
		t.Fatalf("pass = %+v", res)
	}
	_, cur := e.value("svc/api", rotation.StageCurrent)
	var m map[string]string
	if err := json.Unmarshal([]byte(cur), &m); err != nil {
		t.Fatal(err)
	}
	if m["user"] != "bot" || len(m["token"]) != 48 || m["token"] == "old" {
		t.Fatalf("AWSCURRENT = %v", m)
	}

	// A value that is not a JSON object fails createSecret and changes nothing.
	e.create("svc/plain", "not json")
	e.rotate("svc/plain", "api-token", true)
	if res := pass(t, e.runner("a")); res.Failed != 1 {
		t.Fatalf("pass = %+v", res)
	}
	if step, cause := e.status("svc/plain"); step != "createSecret" || cause == "" {
		t.Fatalf("status = %q %q", step, cause)
	}
	if _, v := e.value("svc/plain", rotation.StageCurrent); v != "not json" {
		t.Fatalf("AWSCURRENT = %q", v)
	}
}

func TestServiceUnknownRotatorRefusedByRotateSecret(t *testing.T) {
	e := newServiceEnv(t, nil)
	e.create("s", "v")
	_, err := e.call("RotateSecret", map[string]any{"SecretId": "s", "RotationLambdaARN": rotatorARN("nope"),
		"RotationRules": map[string]any{"AutomaticallyAfterDays": 1}})
	var ae *awsproto.Error
	if !errors.As(err, &ae) || ae.Code != "InvalidParameterException" {
		t.Fatalf("RotateSecret with an unknown rotator = %v, want InvalidParameterException", err)
	}
	if d := e.describe("s"); d["RotationEnabled"] == true {
		t.Fatalf("rotation enabled despite the refusal: %v", d)
	}
}

func TestServiceScheduledRotation(t *testing.T) {
	e := newServiceEnv(t, nil)
	e.create("sched", "v0")
	e.rotate("sched", rotation.BuiltinRandom, false)
	next, ok := e.describe("sched")["NextRotationDate"].(float64)
	if !ok {
		t.Fatalf("no NextRotationDate: %v", e.describe("sched"))
	}
	due := time.Unix(0, int64(next*1e9))
	r := e.runner("a")
	if res := pass(t, r); res.Due != 0 {
		t.Fatalf("pass right after RotateSecret = %+v", res)
	}
	e.clock.Advance(due.Add(-time.Second).Sub(e.clock.Now()))
	if res := pass(t, r); res.Due != 0 {
		t.Fatalf("pass a second before %v = %+v", due, res)
	}
	if _, v := e.value("sched", rotation.StageCurrent); v != "v0" {
		t.Fatal("rotated early")
	}
	e.clock.Advance(2 * time.Second)
	if res := pass(t, r); res.Succeeded != 1 {
		t.Fatalf("pass at %v = %+v", due, res)
	}
	if _, v := e.value("sched", rotation.StageCurrent); v == "v0" {
		t.Fatal("not rotated on schedule")
	}
}

func TestServiceFailureAndRetry(t *testing.T) {
	rec := &recorder{inner: &rotation.RandomRotator{}, failAt: rotation.StepTest}
	e := newServiceEnv(t, map[string]rotation.Rotator{"flaky": rec})
	e.create("s", "old")
	token := e.rotate("s", "flaky", true)["VersionId"].(string)
	r := e.runner("a")
	if res := pass(t, r); res.Failed != 1 {
		t.Fatalf("pass = %+v", res)
	}
	if id, v := e.value("s", rotation.StageCurrent); v != "old" || id == token {
		t.Fatalf("AWSCURRENT = %s %q after a failed testSecret", id, v)
	}
	if id, _ := e.value("s", rotation.StagePending); id != token {
		t.Fatalf("AWSPENDING = %q, want kept on %s", id, token)
	}
	if step, cause := e.status("s"); step != "testSecret" || cause != "testSecret: injected testSecret failure" {
		t.Fatalf("status = %q %q", step, cause)
	}
	rec.setFailAt("")
	if res := pass(t, r); res.Due != 0 {
		t.Fatalf("pass during backoff = %+v", res)
	}
	e.clock.Advance(time.Minute)
	if res := pass(t, r); res.Succeeded != 1 {
		t.Fatalf("retry = %+v", res)
	}
	if id, _ := e.value("s", rotation.StageCurrent); id != token {
		t.Fatalf("AWSCURRENT = %s, want the first attempt's token %s", id, token)
	}
	if step, _ := e.status("s"); step != "" {
		t.Fatalf("status after success = %q", step)
	}
}

// TestServiceTwoRunnersRotateOnce runs two runners at once over one
// service whose claims live in the store, each with its own lock (the
// worst case: both think they lead). Every rotation still runs once.
func TestServiceTwoRunnersRotateOnce(t *testing.T) {
	rec := &recorder{inner: &rotation.RandomRotator{}}
	e := newServiceEnv(t, map[string]rotation.Rotator{"counting": rec})
	const n = 12
	for i := range n {
		e.create(secretName(i), "old")
		e.rotate(secretName(i), "counting", true)
	}
	runners := []*rotation.Runner{
		e.runner("a", func(c *rotation.Config) { c.Store, c.Concurrency = openStore(t), 3 }),
		e.runner("b", func(c *rotation.Config) { c.Store, c.Concurrency = openStore(t), 3 }),
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := rotation.PassResult{}
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Pass(context.Background())
			if err != nil {
				t.Errorf("Pass: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			total.Succeeded += res.Succeeded
			total.Failed += res.Failed
		}()
	}
	wg.Wait()
	if total.Succeeded != n || total.Failed != 0 {
		t.Fatalf("total = %+v, want %d successes", total, n)
	}
	for i := range n {
		if c := rec.count(rotation.StepCreate, secretName(i)); c != 1 {
			t.Fatalf("%s: createSecret ran %d times", secretName(i), c)
		}
	}
}

func TestServiceCrashedRotationResumes(t *testing.T) {
	e := newServiceEnv(t, nil)
	ctx := context.Background()
	e.create("s", "old")
	token := e.rotate("s", rotation.BuiltinRandom, true)["VersionId"].(string)
	now := e.clock.Now()
	c, err := e.svc.ClaimRotation(ctx, "s", "dead-replica", now, now.Add(rotation.DefaultClaimTTL))
	if err != nil || c.Token != token {
		t.Fatalf("ClaimRotation = %+v, %v", c, err)
	}
	job := rotation.Job{Name: c.Name, ARN: c.ARN, Token: c.Token, Secrets: e.svc}
	if err := (&rotation.RandomRotator{}).Step(ctx, rotation.StepCreate, job); err != nil {
		t.Fatal(err)
	}
	_, pend := e.value("s", rotation.StagePending)

	r := e.runner("survivor")
	if res := pass(t, r); res.Due != 0 {
		t.Fatalf("pass while the dead claim holds = %+v", res)
	}
	e.clock.Advance(rotation.DefaultClaimTTL)
	if res := pass(t, r); res.Succeeded != 1 {
		t.Fatalf("pass after the claim expired = %+v", res)
	}
	if id, v := e.value("s", rotation.StageCurrent); id != token || v != pend {
		t.Fatalf("AWSCURRENT = %s, want %s with the value the dead runner created", id, token)
	}
}

func TestServiceCancelledRotationIsSkipped(t *testing.T) {
	e := newServiceEnv(t, nil)
	e.create("s", "old")
	e.rotate("s", rotation.BuiltinRandom, true)
	r := e.runner("a")
	ctx := context.Background()
	due, err := e.svc.DueRotations(ctx, e.clock.Now(), 0)
	if err != nil || len(due) != 1 {
		t.Fatalf("DueRotations = %v, %v", due, err)
	}
	e.ok("CancelRotateSecret", map[string]any{"SecretId": "s"})
	if res := pass(t, r); res.Succeeded != 0 {
		t.Fatalf("pass after CancelRotateSecret = %+v", res)
	}
	if _, v := e.value("s", rotation.StageCurrent); v != "old" {
		t.Fatalf("AWSCURRENT = %q", v)
	}
	if _, err := e.svc.ClaimRotation(ctx, "s", "a", e.clock.Now(), e.clock.Now().Add(time.Minute)); !errors.Is(err, secrets.ErrRotationClaimed) {
		t.Fatalf("ClaimRotation after cancel = %v", err)
	}
}
