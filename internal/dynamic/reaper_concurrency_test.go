package dynamic

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"sigil.dev/sigil/internal/store"
)

// fakeCountingEngine is a fake Engine (no database) that counts Revoke
// calls per username, tracks how many run at once, and can fail or run a
// hook on chosen calls. It exists because checking "exactly once" over
// hundreds of leases needs a count the database cannot give; the same pass
// against the real PostgreSQL is TestReaperConcurrentPostgres.
type fakeCountingEngine struct {
	mu       sync.Mutex
	next     int
	revokes  map[string]int
	inFlight int
	peak     int
	// fail, if set, makes Revoke of the usernames it returns true for
	// fail.
	fail func(username string) bool
	// onRevoke, if set, runs inside every Revoke (with the call's number,
	// from 1) before it returns.
	onRevoke func(call int)
	calls    int
}

func newFakeCountingEngine() *fakeCountingEngine {
	return &fakeCountingEngine{revokes: map[string]int{}}
}

func (f *fakeCountingEngine) Username(role string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	return fmt.Sprintf("v_%s_%06d", role, f.next), nil
}

func (f *fakeCountingEngine) Create(_ context.Context, c Creation) (Credential, error) {
	return Credential{Username: c.Username, Password: "fake-password-" + c.Username, Expires: c.Expires}, nil
}

func (f *fakeCountingEngine) Renew(context.Context, string, time.Time) error { return nil }

func (f *fakeCountingEngine) Exists(_ context.Context, username string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revokes[username] == 0, nil
}

func (f *fakeCountingEngine) Revoke(_ context.Context, username string) error {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.revokes[username]++
	f.inFlight++
	f.peak = max(f.peak, f.inFlight)
	hook := f.onRevoke
	failed := f.fail != nil && f.fail(username)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if hook != nil {
		hook(call)
	}
	if failed {
		return errors.New("injected revoke failure")
	}
	return nil
}

func (f *fakeCountingEngine) counts() (map[string]int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.revokes))
	for k, v := range f.revokes {
		out[k] = v
	}
	return out, f.peak
}

// issueN issues n leases of secret and returns them.
func issueN(t *testing.T, l *Leases, secret string, n int) []Lease {
	t.Helper()
	out := make([]Lease, 0, n)
	for range n {
		lease, _, err := l.Issue(context.Background(), secret, "")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, lease)
	}
	return out
}

func TestReaperConcurrentPassRevokesEachLeaseOnce(t *testing.T) {
	for _, workers := range []int{1, 8} {
		t.Run(fmt.Sprintf("concurrency %d", workers), func(t *testing.T) {
			ctx := context.Background()
			eng := newFakeCountingEngine()
			clock := newFakeClock()
			l, err := NewLeases(Options{Store: openStore(t), Roles: RoleMap{
				"short": {Engine: eng, TTL: time.Hour},
				"long":  {Engine: eng, TTL: 10 * time.Hour},
			}, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			// 330 expiring and 40 lasting leases: three lock renewals'
			// worth ("long/" ids sort before "short/" ones).
			short := issueN(t, l, "short", 330)
			long := issueN(t, l, "long", 40)
			failing := map[string]bool{}
			for i, lease := range short {
				if i%10 == 0 {
					failing[lease.Username] = true
				}
			}
			eng.fail = func(u string) bool { return failing[u] }
			if workers > 1 {
				// The first revocations return only once `workers` of
				// them are in flight together: a pass that revoked one
				// at a time would never get there.
				var (
					mu      sync.Mutex
					waiting int
					release = make(chan struct{})
				)
				eng.onRevoke = func(int) {
					mu.Lock()
					if waiting++; waiting == workers {
						close(release)
					}
					mu.Unlock()
					select {
					case <-release:
					case <-time.After(30 * time.Second):
						t.Errorf("fewer than %d revocations ran at once", workers)
					}
				}
			}
			var (
				mu       sync.Mutex
				notified = map[string]int{}
			)
			r, err := NewReaper(ReaperOptions{Leases: l, ID: "replica", Interval: time.Second, LockTTL: 3 * time.Hour,
				Concurrency: workers, OnRevoke: func(_ context.Context, lease Lease, _ error) {
					mu.Lock()
					defer mu.Unlock()
					notified[lease.ID]++
				}})
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Hour)

			res, err := r.Pass(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := (PassResult{Revoked: len(short) - len(failing), Failed: len(failing)}); res != want {
				t.Fatalf("pass = %+v, want %+v", res, want)
			}
			counts, peak := eng.counts()
			for _, lease := range long {
				if counts[lease.Username] != 0 {
					t.Fatalf("lasting lease %s was revoked", lease.ID)
				}
			}
			for _, lease := range short {
				if counts[lease.Username] != 1 || notified[lease.ID] != 1 {
					t.Fatalf("lease %s: %d revocations and %d OnRevoke calls, want one each", lease.ID, counts[lease.Username], notified[lease.ID])
				}
			}
			if peak != workers {
				t.Fatalf("%d revocations ran at once, want %d", peak, workers)
			}

			// Past the failures' backoff they are retried, each once.
			eng.fail = nil
			clock.Advance(time.Minute)
			res, err = r.Pass(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := (PassResult{Revoked: len(failing)}); res != want {
				t.Fatalf("retry pass = %+v, want %+v", res, want)
			}
			counts, _ = eng.counts()
			leases, err := l.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, lease := range leases {
				want, calls := StateRevoked, 1
				if failing[lease.Username] {
					calls = 2
				}
				if lease.Secret == "long" {
					want, calls = StateActive, 0
				}
				if lease.State != want || counts[lease.Username] != calls {
					t.Fatalf("lease %s is %s after %d revocations, want %s after %d", lease.ID, lease.State, counts[lease.Username], want, calls)
				}
			}
		})
	}
}

func TestReaperConcurrentPassStopsWhenTheLockIsLost(t *testing.T) {
	ctx := context.Background()
	eng := newFakeCountingEngine()
	clock := newFakeClock()
	st := openStore(t)
	l, err := NewLeases(Options{Store: st, Roles: RoleMap{"s": {Engine: eng, TTL: time.Hour}}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	issueN(t, l, "s", 250)
	clock.Advance(time.Hour)
	r, err := NewReaper(ReaperOptions{Leases: l, ID: "replica-1", Interval: time.Second, LockTTL: time.Minute, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	// During the first revocation another replica takes the lock (as if
	// this one had stalled past its TTL). The renewal before the 101st
	// lease must see it and stop the pass.
	var steal sync.Once
	eng.onRevoke = func(int) {
		steal.Do(func() {
			if err := store.ReleaseLock(ctx, st, reaperLockKey, "replica-1"); err != nil {
				t.Error(err)
			}
			if err := store.AcquireLock(ctx, st, reaperLockKey, "replica-2", time.Hour, clock.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	res, err := r.Pass(ctx)
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("pass after losing the lock = %+v, %v; want ErrNotLeader", res, err)
	}
	if res.Revoked != lockRenewEvery || res.Failed != 0 {
		t.Fatalf("pass = %+v, want exactly the %d leases handed out before the renewal", res, lockRenewEvery)
	}
	counts, _ := eng.counts()
	calls := 0
	for _, n := range counts {
		if n != 1 {
			t.Fatalf("a user was revoked %d times", n)
		}
		calls += n
	}
	leases, err := l.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, lease := range leases {
		switch lease.State {
		case StateRevoked:
			revoked++
		case StateActive:
		default:
			t.Fatalf("lease %s left %s", lease.ID, lease.State)
		}
	}
	if calls != res.Revoked || revoked != res.Revoked {
		t.Fatalf("engine saw %d revocations and the store %d revoked leases; the pass counted %d", calls, revoked, res.Revoked)
	}
	if _, err := store.Update(ctx, st, func(v *store.View) error { v.Delete(reaperLockKey); return nil }); err != nil {
		t.Fatal(err)
	}
	res, err = r.Pass(ctx)
	if err != nil || res.Revoked != 250-lockRenewEvery {
		t.Fatalf("pass with the lock back = %+v, %v; want the remaining %d", res, err, 250-lockRenewEvery)
	}
}

func TestReaperConcurrencyValidates(t *testing.T) {
	l, err := NewLeases(Options{Store: openStore(t), Roles: RoleMap{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewReaper(ReaperOptions{Leases: l, ID: "a", Concurrency: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewReaper with negative concurrency = %v, want ErrInvalidConfig", err)
	}
	r, err := NewReaper(ReaperOptions{Leases: l, ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if r.workers != defaultConcurrency {
		t.Fatalf("default concurrency %d, want %d", r.workers, defaultConcurrency)
	}
}

func TestReaperConcurrentPostgres(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		name string
		cfg  PostgresConfig
		// mayConflict: revoking users granted rights on one shared table
		// at once can make PostgreSQL reject a DROP OWNED with "tuple
		// concurrently updated" (ACL updates of one catalog row are not
		// serialized); such a revocation fails, stays revoking and is
		// retried after its backoff.
		mayConflict bool
	}{
		{"default statements", PostgresConfig{UsernamePrefix: "vdef"}, false},
		{"users granted a shared table", PostgresConfig{UsernamePrefix: "vgrant", Creation: grantingConfig().Creation}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := e.engine(t, tt.cfg) // MaxConns 4, fewer than the 8 workers
			clock := newFakeClock()
			l := newLeases(t, e, RoleMap{secretName: {Engine: eng, TTL: time.Hour}}, clock)
			const n = 40
			var creds []Credential
			for range n {
				_, cred, err := l.Issue(ctx, secretName, "")
				if err != nil {
					t.Fatal(err)
				}
				creds = append(creds, cred)
			}
			// Open sessions of some users must be terminated by the
			// revocation.
			var open []*pgx.Conn
			for _, c := range creds[:4] {
				conn, err := e.login(t, c.Username, c.Password)
				if err != nil {
					t.Fatalf("logging in as %s: %v", c.Username, err)
				}
				open = append(open, conn)
			}
			var (
				mu        sync.Mutex
				succeeded = map[string]int{}
				failures  int
			)
			r, err := NewReaper(ReaperOptions{Leases: l, ID: "replica", Interval: time.Second, LockTTL: time.Hour, Concurrency: 8,
				OnRevoke: func(_ context.Context, lease Lease, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failures++
						if !tt.mayConflict || !strings.Contains(err.Error(), "concurrently updated") {
							t.Errorf("revoking %s: %v", lease.Username, err)
						}
						return
					}
					succeeded[lease.ID]++
				}})
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Hour)
			var total PassResult
			for pass := 0; total.Revoked < n; pass++ {
				if pass == 10 {
					t.Fatalf("%d of %d leases revoked after 10 passes", total.Revoked, n)
				}
				res, err := r.Pass(ctx)
				if err != nil {
					t.Fatal(err)
				}
				total.Revoked += res.Revoked
				total.Failed += res.Failed
				clock.Advance(10 * time.Minute) // past any backoff
			}
			if total.Revoked != n || total.Failed != failures || len(succeeded) != n {
				t.Fatalf("passes counted %+v, OnRevoke saw %d revoked leases and %d failures", total, len(succeeded), failures)
			}
			for id, k := range succeeded {
				if k != 1 {
					t.Fatalf("lease %s revoked %d times", id, k)
				}
			}
			if left := e.dynamicRoles(t, tt.cfg.UsernamePrefix); len(left) != 0 {
				t.Fatalf("users left after the passes: %v", left)
			}
			for _, c := range creds {
				if _, err := e.login(t, c.Username, c.Password); err == nil || !isAuthFailure(err) {
					t.Fatalf("revoked user %s logs in: %v", c.Username, err)
				}
			}
			for _, c := range open {
				if _, err := c.Exec(ctx, `SELECT 1`); err == nil {
					t.Fatal("an open session of a revoked user survived")
				}
			}
			if res, err := r.Pass(ctx); err != nil || res.Revoked+res.Failed != 0 {
				t.Fatalf("pass after all were revoked = %+v, %v; want nothing to do", res, err)
			}
		})
	}
}
