package rotation_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/testutil"
)

func TestNewRejectsBadConfig(t *testing.T) {
	e := newRunnerEnv(t)
	ok := rotation.Config{Secrets: e.secrets, Store: e.store, Audit: e.audit, HolderID: "a"}
	tests := []struct {
		name string
		edit func(*rotation.Config)
	}{
		{"no secrets", func(c *rotation.Config) { c.Secrets = nil }},
		{"no store", func(c *rotation.Config) { c.Store = nil }},
		{"no audit", func(c *rotation.Config) { c.Audit = nil }},
		{"no holder", func(c *rotation.Config) { c.HolderID = "" }},
		{"lock ttl below interval", func(c *rotation.Config) { c.Interval, c.LockTTL = time.Minute, time.Second }},
		{"negative concurrency", func(c *rotation.Config) { c.Concurrency = -1 }},
		{"max backoff below min", func(c *rotation.Config) { c.MinBackoff, c.MaxBackoff = time.Hour, time.Minute }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			if _, err := rotation.New(cfg); !errors.Is(err, rotation.ErrInvalidConfig) {
				t.Fatalf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := rotation.New(ok); err != nil {
		t.Fatalf("New with the minimal config: %v", err)
	}
}

func TestRandomRotationThroughRunner(t *testing.T) {
	e := newRunnerEnv(t)
	e.secrets.add("app/token", "old-token", rotation.BuiltinRandom, e.clock.Now())
	r := e.runner(t, "replica-a")

	res := pass(t, r)
	if res != (rotation.PassResult{Due: 1, Succeeded: 1}) {
		t.Fatalf("pass = %+v, want one success", res)
	}
	curID, cur := e.secrets.stageValue(t, "app/token", rotation.StageCurrent)
	prevID, prev := e.secrets.stageValue(t, "app/token", rotation.StagePrevious)
	if prev != "old-token" || prevID != "v0" {
		t.Fatalf("AWSPREVIOUS = %s %q, want v0 old-token", prevID, prev)
	}
	if len(cur) != rotation.DefaultPasswordLength || cur == "old-token" || curID == "v0" {
		t.Fatalf("AWSCURRENT = %s (%d chars), want a new %d-character value", curID, len(cur), rotation.DefaultPasswordLength)
	}
	if strings.ContainsAny(cur, rotation.UnsafeCharacters) {
		t.Fatalf("the new value holds an unsafe character")
	}
	if id, _ := e.secrets.stageValue(t, "app/token", rotation.StagePending); id != "" {
		t.Fatalf("AWSPENDING still on %s after the rotation", id)
	}

	evs := e.audit.all()
	if got := e.audit.names(); strings.Join(got, ",") != "RotationStarted,RotationSucceeded" {
		t.Fatalf("audit events = %v", got)
	}
	s := e.secrets.get(t, "app/token")
	for _, ev := range evs {
		if ev.Source != "secretsmanager.amazonaws.com" || !ev.Allowed || ev.ErrorMessage != "" ||
			len(ev.Resources) != 1 || ev.Resources[0] != s.arn || ev.AccountID != testAccount || ev.Region != testRegion ||
			ev.Identity == nil || ev.Identity.Type != "AWSService" || ev.EventType != audit.EventTypeService {
			t.Fatalf("event %s = %+v", ev.Action, ev)
		}
		b, err := json.Marshal(ev.RequestParameters)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"clientRequestToken":"`+curID+`"`) || strings.Contains(string(b), cur) {
			t.Fatalf("requestParameters of %s = %s", ev.Action, b)
		}
	}
	// Not due again until the next schedule.
	if res := pass(t, r); res.Due != 0 {
		t.Fatalf("second pass = %+v, want nothing due", res)
	}
}

func TestScheduledRotationFiresOnTime(t *testing.T) {
	e := newRunnerEnv(t)
	due := e.clock.Now().Add(24 * time.Hour)
	e.secrets.add("sched", "v", rotation.BuiltinRandom, due)
	rec := &recorder{inner: &rotation.RandomRotator{}}
	r := e.runner(t, "a", e.withBuiltins(t, map[string]rotation.Rotator{rotation.BuiltinRandom: rec}))

	e.clock.Advance(24*time.Hour - time.Second)
	if res := pass(t, r); res.Due != 0 || rec.count(rotation.StepCreate, "sched") != 0 {
		t.Fatalf("a second early: pass = %+v, steps %v", res, rec.steps)
	}
	e.clock.Advance(time.Second)
	if res := pass(t, r); res.Succeeded != 1 {
		t.Fatalf("on time: pass = %+v, want one success", res)
	}
	s := e.secrets.get(t, "sched")
	if !s.rotated.Equal(due) || !s.next.Equal(due.Add(24*time.Hour)) {
		t.Fatalf("rotated %v next %v, want %v and a day later", s.rotated, s.next, due)
	}
	e.clock.Advance(24*time.Hour - time.Second)
	if res := pass(t, r); res.Due != 0 {
		t.Fatalf("before the next schedule: pass = %+v", res)
	}
	e.clock.Advance(time.Second)
	if res := pass(t, r); res.Succeeded != 1 {
		t.Fatalf("at the next schedule: pass = %+v", res)
	}
	if n := rec.count(rotation.StepCreate, "sched"); n != 2 {
		t.Fatalf("createSecret ran %d times, want 2", n)
	}
}

func TestFailedStepKeepsCurrentAndRetriesWithSameToken(t *testing.T) {
	for _, failAt := range []rotation.Step{rotation.StepCreate, rotation.StepSet, rotation.StepTest, rotation.StepFinish} {
		t.Run(string(failAt), func(t *testing.T) {
			e := newRunnerEnv(t)
			e.secrets.add("s", "old", rotation.BuiltinRandom, e.clock.Now())
			rec := &recorder{inner: &rotation.RandomRotator{}, failAt: failAt}
			r := e.runner(t, "a", e.withBuiltins(t, map[string]rotation.Rotator{rotation.BuiltinRandom: rec}))

			if res := pass(t, r); res != (rotation.PassResult{Due: 1, Failed: 1}) {
				t.Fatalf("pass = %+v, want one failure", res)
			}
			s := e.secrets.get(t, "s")
			if id, v := e.secrets.stageValue(t, "s", rotation.StageCurrent); id != "v0" || v != "old" {
				t.Fatalf("AWSCURRENT moved to %s after a failed %s", id, failAt)
			}
			// The recorder fails before the rotator runs, so a failed
			// createSecret leaves no AWSPENDING; every later step finds it
			// kept.
			pendID, pend := e.secrets.stageValue(t, "s", rotation.StagePending)
			if failAt == rotation.StepCreate {
				if pendID != "" {
					t.Fatalf("AWSPENDING = %q after a failed createSecret", pendID)
				}
			} else if pendID != s.token || pend == "" {
				t.Fatalf("AWSPENDING = %q, want kept on token %s", pendID, s.token)
			}
			if s.step != string(failAt) || !strings.Contains(s.cause, "injected "+string(failAt)+" failure") || s.attempts != 1 {
				t.Fatalf("failure record: step %q cause %q attempts %d", s.step, s.cause, s.attempts)
			}
			// Backoff: MinBackoff less at most a quarter of jitter.
			wait := s.next.Sub(e.clock.Now())
			if wait > time.Minute || wait < 45*time.Second {
				t.Fatalf("retry in %v, want within [45s, 1m]", wait)
			}
			evs := e.audit.all()
			last := evs[len(evs)-1]
			if last.Action != "RotationFailed" || last.ErrorMessage != s.cause || last.ErrorCode == "" {
				t.Fatalf("last event = %s %q %q, want RotationFailed with the cause", last.Action, last.ErrorCode, last.ErrorMessage)
			}
			if pend != "" && strings.Contains(last.ErrorMessage, pend) {
				t.Fatal("the audit cause holds the pending value")
			}

			// Not retried before the backoff passes.
			if res := pass(t, r); res.Due != 0 {
				t.Fatalf("pass during backoff = %+v", res)
			}
			e.clock.Advance(wait)
			rec.setFailAt("")
			if res := pass(t, r); res.Succeeded != 1 {
				t.Fatalf("retry = %+v, want success", res)
			}
			id, v := e.secrets.stageValue(t, "s", rotation.StageCurrent)
			if id != s.token || (pend != "" && v != pend) {
				t.Fatalf("AWSCURRENT = %s, want the retried token %s with the value created by the first attempt", id, s.token)
			}
			if n := e.secrets.callCount("PutPendingValue"); n != 1 {
				t.Fatalf("PutPendingValue called %d times, want 1 (createSecret is idempotent)", n)
			}
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	e := newRunnerEnv(t)
	e.secrets.add("s", "old", "always-fails", e.clock.Now())
	rec := &recorder{failAt: rotation.StepSet}
	r := e.runner(t, "a", e.withBuiltins(t, map[string]rotation.Rotator{"always-fails": rec}), func(c *rotation.Config) {
		c.MinBackoff, c.MaxBackoff = time.Minute, 5*time.Minute
	})
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		if res := pass(t, r); res.Failed != 1 {
			t.Fatalf("attempt %d: pass = %+v", i+1, res)
		}
		wait := e.secrets.get(t, "s").next.Sub(e.clock.Now())
		if wait > want || wait < want*3/4 {
			t.Fatalf("attempt %d: retry in %v, want within [%v, %v]", i+1, wait, want*3/4, want)
		}
		e.clock.Advance(wait)
	}
	if s := e.secrets.get(t, "s"); s.attempts != 5 {
		t.Fatalf("attempts = %d, want 5", s.attempts)
	}
}

func TestUnknownRotatorIsAStepFailure(t *testing.T) {
	e := newRunnerEnv(t)
	e.secrets.add("s", "old", "no-such-rotator", e.clock.Now())
	r := e.runner(t, "a")
	if res := pass(t, r); res.Failed != 1 {
		t.Fatalf("pass = %+v, want one failure", res)
	}
	s := e.secrets.get(t, "s")
	if s.step != string(rotation.StepCreate) || !strings.Contains(s.cause, "no built-in or registered rotator is named \"no-such-rotator\"") {
		t.Fatalf("failure = %q %q", s.step, s.cause)
	}
	if id, _ := e.secrets.stageValue(t, "s", rotation.StageCurrent); id != "v0" {
		t.Fatalf("AWSCURRENT moved to %s", id)
	}
}

func TestAuditFailureStopsTheRotation(t *testing.T) {
	e := newRunnerEnv(t)
	e.secrets.add("s", "old", rotation.BuiltinRandom, e.clock.Now())
	rec := &recorder{inner: &rotation.RandomRotator{}}
	r := e.runner(t, "a", e.withBuiltins(t, map[string]rotation.Rotator{rotation.BuiltinRandom: rec}))
	e.audit.setFail(true)
	res, err := r.Pass(context.Background())
	if err == nil || res.Failed != 1 {
		t.Fatalf("pass = %+v, %v; want a failure and an error", res, err)
	}
	if len(rec.steps) != 0 {
		t.Fatalf("steps ran without an audit record: %v", rec.steps)
	}
	if s := e.secrets.get(t, "s"); !strings.Contains(s.cause, "audit log") {
		t.Fatalf("cause = %q", s.cause)
	}
}

func TestNotLeaderDoesNothing(t *testing.T) {
	e := newRunnerEnv(t)
	e.secrets.add("s", "old", rotation.BuiltinRandom, e.clock.Now().Add(time.Hour))
	a := e.runner(t, "a", func(c *rotation.Config) { c.Interval = time.Minute })
	b := e.runner(t, "b", func(c *rotation.Config) { c.Interval = time.Minute })
	pass(t, a)
	_, err := b.Pass(context.Background())
	if !errors.Is(err, rotation.ErrNotLeader) || !errors.Is(err, store.ErrLockHeld) {
		t.Fatalf("b.Pass = %v, want ErrNotLeader", err)
	}
	if n := e.secrets.callCount("DueRotations"); n != 1 {
		t.Fatalf("DueRotations called %d times, want only by the leader", n)
	}
	// a stops renewing; after LockTTL (three intervals) b takes over.
	e.clock.Advance(3 * time.Minute)
	if _, err := b.Pass(context.Background()); err != nil {
		t.Fatalf("b.Pass after a's lock expired = %v", err)
	}
	if _, err := a.Pass(context.Background()); !errors.Is(err, rotation.ErrNotLeader) {
		t.Fatalf("a.Pass after losing the lock = %v, want ErrNotLeader", err)
	}
}

// TestTwoRunnersRotateOnce runs two runners at once over one store, both
// with the shared lock and, to show the claims alone suffice, with a lock
// each (as when a lock expires under a slow leader): every due rotation
// runs exactly once.
func TestTwoRunnersRotateOnce(t *testing.T) {
	for _, shared := range []bool{true, false} {
		name := map[bool]string{true: "shared lock", false: "split lock"}[shared]
		t.Run(name, func(t *testing.T) {
			e := newRunnerEnv(t)
			const n = 20
			for i := range n {
				e.secrets.add(secretName(i), "old", "counting", e.clock.Now())
			}
			rec := &recorder{inner: &rotation.RandomRotator{}}
			lockStore := e.store
			runners := make([]*rotation.Runner, 2)
			for i, holder := range []string{"a", "b"} {
				if !shared {
					lockStore = openStore(t)
				}
				reg, err := rotation.NewRegistry(rotation.RegistryConfig{Store: lockStore, Builtins: map[string]rotation.Rotator{"counting": rec}})
				if err != nil {
					t.Fatal(err)
				}
				st := lockStore
				runners[i] = e.runner(t, holder, func(c *rotation.Config) { c.Store, c.Registry, c.Concurrency = st, reg, 3 })
			}
			var wg sync.WaitGroup
			results := make([]rotation.PassResult, 2)
			for i, r := range runners {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := r.Pass(context.Background())
					if err != nil && !errors.Is(err, rotation.ErrNotLeader) {
						t.Errorf("Pass: %v", err)
					}
					results[i] = res
				}()
			}
			wg.Wait()
			if got := results[0].Succeeded + results[1].Succeeded; got != n {
				t.Fatalf("succeeded %d + %d, want %d in all", results[0].Succeeded, results[1].Succeeded, n)
			}
			for i := range n {
				if c := rec.count(rotation.StepCreate, secretName(i)); c != 1 {
					t.Fatalf("%s: createSecret ran %d times", secretName(i), c)
				}
			}
			if got := e.secrets.callCount("FinishRotation"); got != n {
				t.Fatalf("FinishRotation called %d times, want %d", got, n)
			}
		})
	}
}

func secretName(i int) string { return "svc/" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) }

// TestCrashedRotationResumesWithSameToken simulates a runner that claimed a
// rotation and wrote AWSPENDING, then died: once the claim expires another
// runner finishes the rotation with the same token and the value the dead
// one created.
func TestCrashedRotationResumesWithSameToken(t *testing.T) {
	e := newRunnerEnv(t)
	e.secrets.add("s", "old", rotation.BuiltinRandom, e.clock.Now())
	ctx := context.Background()
	now := e.clock.Now()
	c, err := e.secrets.ClaimRotation(ctx, "s", "dead-replica", now, now.Add(rotation.DefaultClaimTTL))
	if err != nil {
		t.Fatal(err)
	}
	job := rotation.Job{Name: c.Name, ARN: c.ARN, Token: c.Token, Secrets: e.secrets}
	if err := (&rotation.RandomRotator{}).Step(ctx, rotation.StepCreate, job); err != nil {
		t.Fatal(err)
	}
	_, pend := e.secrets.stageValue(t, "s", rotation.StagePending)

	r := e.runner(t, "survivor")
	if res := pass(t, r); res.Due != 0 {
		t.Fatalf("pass while the dead claim holds = %+v", res)
	}
	e.clock.Advance(rotation.DefaultClaimTTL)
	if res := pass(t, r); res.Succeeded != 1 {
		t.Fatalf("pass after the claim expired = %+v", res)
	}
	if id, v := e.secrets.stageValue(t, "s", rotation.StageCurrent); id != c.Token || v != pend {
		t.Fatalf("AWSCURRENT = %s, want the crashed rotation's token %s and value", id, c.Token)
	}
}

func TestRunKickAndRelease(t *testing.T) {
	e := newRunnerEnv(t)
	rec := &recorder{inner: &rotation.RandomRotator{}}
	r := e.runner(t, "a", e.withBuiltins(t, map[string]rotation.Rotator{"rec": rec}), func(c *rotation.Config) {
		c.Interval = time.Hour
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	// The first pass runs at once and takes the lock.
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.secrets.callCount("DueRotations") >= 1 })
	e.secrets.add("kicked", "old", "rec", e.clock.Now())
	r.Kick()
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.secrets.callCount("FinishRotation") == 1 })

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if h, _, err := store.LockHolder(context.Background(), e.store, rotation.LockKey); err != nil || h != "" {
		t.Fatalf("lock holder after Run returned = %q, %v; want released", h, err)
	}
}

func TestManyDueAcrossBatches(t *testing.T) {
	e := newRunnerEnv(t)
	const n = 12
	for i := range n {
		e.secrets.add(secretName(i), "old", rotation.BuiltinRandom, e.clock.Now())
	}
	r := e.runner(t, "a", func(c *rotation.Config) { c.BatchSize, c.Concurrency = 5, 2 })
	if res := pass(t, r); res != (rotation.PassResult{Due: n, Succeeded: n}) {
		t.Fatalf("pass = %+v, want %d successes", res, n)
	}
}

// TestInterruptedRotationIsDueAgainAtOnce stops the runner in the middle of
// a rotation: the attempt is recorded as interrupted, with no backoff, and
// the next pass finishes it with the same token.
func TestInterruptedRotationIsDueAgainAtOnce(t *testing.T) {
	e := newRunnerEnv(t)
	e.secrets.add("s", "old", "stopper", e.clock.Now())
	ctx, cancel := context.WithCancel(context.Background())
	var stop sync.Once
	inner := &rotation.RandomRotator{}
	stopper := rotation.RotatorFunc(func(rctx context.Context, step rotation.Step, job rotation.Job) error {
		if step == rotation.StepSet && ctx.Err() == nil {
			stop.Do(cancel)
			<-rctx.Done()
			return rctx.Err()
		}
		return inner.Step(rctx, step, job)
	})
	r := e.runner(t, "a", e.withBuiltins(t, map[string]rotation.Rotator{"stopper": stopper}))
	res, err := r.Pass(ctx)
	if !errors.Is(err, context.Canceled) || res.Failed != 1 {
		t.Fatalf("interrupted pass = %+v, %v", res, err)
	}
	s := e.secrets.get(t, "s")
	if s.step != "setSecret" || !strings.Contains(s.cause, "interrupted") || !s.next.Equal(e.clock.Now()) {
		t.Fatalf("failure = %q %q, retry at %v (now %v)", s.step, s.cause, s.next, e.clock.Now())
	}
	if res := pass(t, r); res.Succeeded != 1 {
		t.Fatalf("next pass = %+v", res)
	}
	if id, _ := e.secrets.stageValue(t, "s", rotation.StageCurrent); id != s.token {
		t.Fatalf("AWSCURRENT = %s, want %s", id, s.token)
	}
}

// slowRevertable fails testSecret after the test has let another runner
// take the rotation over, and counts Reverts.
type slowRevertable struct {
	entered, release chan struct{}
	mu               sync.Mutex
	reverts          int
}

func (s *slowRevertable) Step(_ context.Context, step rotation.Step, _ rotation.Job) error {
	if step == rotation.StepTest {
		close(s.entered)
		<-s.release
		return errors.New("fake: the new value is refused")
	}
	return nil
}

func (s *slowRevertable) Revert(context.Context, rotation.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reverts++
	return nil
}

// A runner whose steps outlived its claim does not undo setSecret: the
// runner that took the rotation over may be retrying it with the same
// token.
func TestRevertSkippedWhenTheClaimWasLost(t *testing.T) {
	e := newRunnerEnv(t)
	rot := &slowRevertable{entered: make(chan struct{}), release: make(chan struct{})}
	e.secrets.add("s", "old", "slow", e.clock.Now())
	r := e.runner(t, "a", e.withBuiltins(t, map[string]rotation.Rotator{"slow": rot}), func(c *rotation.Config) { c.ClaimTTL = time.Minute })
	done := make(chan rotation.PassResult, 1)
	go func() { done <- pass(t, r) }()
	<-rot.entered
	e.clock.Advance(2 * time.Minute)
	if _, err := e.secrets.ClaimRotation(context.Background(), "s", "b", e.clock.Now(), e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatalf("the second runner's claim after the first expired: %v", err)
	}
	close(rot.release)
	if res := <-done; res.Failed != 1 {
		t.Fatalf("pass = %+v, want the failed rotation", res)
	}
	rot.mu.Lock()
	defer rot.mu.Unlock()
	if rot.reverts != 0 {
		t.Fatalf("Revert ran %d times although another runner held the claim", rot.reverts)
	}
}
