package dynamic

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeGatedEngine is an in-memory engine whose Create can be held at a
// gate and whose Revoke can be made to fail, to replay a slow creation
// racing the reaper.
type fakeGatedEngine struct {
	mu        sync.Mutex
	users     map[string]bool
	gate      chan struct{} // Create waits for it to close, then creates
	entered   chan struct{} // closed when Create reaches the gate
	failNext  int           // Revoke calls that fail before one succeeds
	revokeErr error
	onRevoke  func() // called inside Revoke, without the lock
}

func newFakeGatedEngine() *fakeGatedEngine {
	return &fakeGatedEngine{users: map[string]bool{}, gate: make(chan struct{}), entered: make(chan struct{}),
		revokeErr: errors.New("fake: connection reset")}
}

func (f *fakeGatedEngine) Username(string) (string, error) { return "v_gated_user", nil }

func (f *fakeGatedEngine) Create(ctx context.Context, c Creation) (Credential, error) {
	close(f.entered)
	<-f.gate
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[c.Username] = true
	return Credential{Username: c.Username, Password: "fake-password-000000", Expires: c.Expires}, nil
}

func (f *fakeGatedEngine) Renew(context.Context, string, time.Time) error { return nil }

func (f *fakeGatedEngine) Exists(_ context.Context, u string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users[u], nil
}

func (f *fakeGatedEngine) Revoke(_ context.Context, u string) error {
	if f.onRevoke != nil {
		f.onRevoke()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext > 0 {
		f.failNext--
		return f.revokeErr
	}
	delete(f.users, u)
	return nil
}

func (f *fakeGatedEngine) exists(u string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users[u]
}

// A creation slower than the grace period: the reaper revokes the lease
// while the user does not exist yet, the user is then created, activation
// notices and undoes it, and the undo fails. The lease must not stay
// revoked with a live user: it goes back to revoking and the reaper
// removes the user.
func TestSlowCreationRacingTheReaper(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	eng := newFakeGatedEngine()
	l, err := NewLeases(Options{Store: openStore(t), Roles: RoleMap{"app/db": {Engine: eng, TTL: time.Hour}}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReaper(ReaperOptions{Leases: l, ID: "r1", CreatingGrace: time.Minute, MinBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := l.Issue(ctx, "app/db", "s1")
		done <- err
	}()
	<-eng.entered
	clock.Advance(2 * time.Minute)
	if res, err := r.Pass(ctx); err != nil || res.Revoked != 1 {
		t.Fatalf("reaper pass during the creation: %+v, %v", res, err)
	}
	eng.mu.Lock()
	eng.failNext = 1 // the undo's revocation fails
	eng.mu.Unlock()
	close(eng.gate)
	if err := <-done; !errors.Is(err, ErrLeaseNotActive) {
		t.Fatalf("Issue = %v, want ErrLeaseNotActive", err)
	}
	if !eng.exists("v_gated_user") {
		t.Fatal("test setup: the user should exist after the failed undo")
	}
	leases, err := l.List(ctx, "")
	if err != nil || len(leases) != 1 {
		t.Fatalf("leases %+v, %v", leases, err)
	}
	if got := leases[0]; got.State != StateRevoking || got.Attempts != 1 || got.LastError == "" {
		t.Fatalf("after the failed undo the lease is %+v, want revoking with the failure", got)
	}
	clock.Advance(time.Minute)
	if res, err := r.Pass(ctx); err != nil || res.Revoked != 1 {
		t.Fatalf("retry pass: %+v, %v", res, err)
	}
	if eng.exists("v_gated_user") {
		t.Fatal("the user outlived its lease")
	}
	if got, _ := l.Get(ctx, leases[0].ID); got.State != StateRevoked {
		t.Fatalf("lease after the retry: %s", got.State)
	}
}

// A revocation that finds a failure recorded while it ran does not mark
// the lease revoked.
func TestRevokeDoesNotOverwriteARecordedFailure(t *testing.T) {
	ctx := context.Background()
	eng := newFakeGatedEngine()
	close(eng.gate)
	l, err := NewLeases(Options{Store: openStore(t), Roles: RoleMap{"app/db": {Engine: eng, TTL: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	lease, _, err := l.Issue(ctx, "app/db", "")
	if err != nil {
		t.Fatal(err)
	}
	// While the engine revokes, another actor records a failure (an undo
	// whose user was created after this revocation looked).
	eng.onRevoke = func() {
		cur, err := l.Get(ctx, lease.ID)
		if err != nil {
			t.Error(err)
			return
		}
		l.retryLater(ctx, record{Lease: cur}, errors.New("fake: undo failed"))
	}
	if err := l.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	got, err := l.Get(ctx, lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateRevoking || got.Attempts != 1 {
		t.Fatalf("lease after the interleaved failure: %s, %d attempts; want revoking for a retry", got.State, got.Attempts)
	}
	eng.onRevoke = nil
	if err := l.revoke(ctx, lease.ID, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(ctx, lease.ID); got.State != StateRevoked {
		t.Fatalf("the retry left %s", got.State)
	}
}

// After a restart, the leases this replica left creating are undone on the
// first pass, without the grace period; another replica's are not.
func TestRestartUndoesOwnCreatingLeasesAtOnce(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := openStore(t)
	eng := newFakeGatedEngine() // Create blocks: the "crash" happens inside it
	roles := RoleMap{"app/db": {Engine: eng, TTL: time.Hour}}
	issue := func(replica string) {
		l, err := NewLeases(Options{Store: st, Roles: roles, Now: clock.Now, Replica: replica})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _, _ = l.Issue(ctx, "app/db", "") }()
	}
	issue("replica-1")
	<-eng.entered
	eng2 := newFakeGatedEngine()
	roles["app/db"] = Role{Engine: eng2, TTL: time.Hour}
	issue("replica-2")
	<-eng2.entered
	clock.Advance(time.Second)

	// replica-1 restarts: new Leases and Reaper over the same store.
	l, err := NewLeases(Options{Store: st, Roles: RoleMap{"app/db": {Engine: newFakeGatedEngine(), TTL: time.Hour}}, Now: clock.Now, Replica: "replica-1"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReaper(ReaperOptions{Leases: l, ID: "replica-1", CreatingGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.Pass(ctx); err != nil || res.Revoked != 1 {
		t.Fatalf("first pass after the restart: %+v, %v; want the own creating lease undone", res, err)
	}
	leases, err := l.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]State{}
	for _, le := range leases {
		states[le.Creator] = le.State
	}
	if states["replica-1"] != StateRevoked || states["replica-2"] != StateCreating {
		t.Fatalf("states by creator %v: want replica-1's revoked and replica-2's left within its grace", states)
	}
	// A creation of this run is left alone too.
	eng3 := newFakeGatedEngine()
	l.roles = RoleMap{"app/db": {Engine: eng3, TTL: time.Hour}}
	go func() { _, _, _ = l.Issue(ctx, "app/db", "") }()
	<-eng3.entered
	if res, err := r.Pass(ctx); err != nil || res.Revoked != 0 {
		t.Fatalf("pass during this run's own creation: %+v, %v", res, err)
	}
	close(eng.gate)
	close(eng2.gate)
	close(eng3.gate)
}

// A creation that outlives the grace period is undone by the reaper while
// its user does not exist yet; if its process then dies after the database
// committed the user, the lease says revoked but the user lives. Before the
// record (the last trace) is purged, the reaper looks for the user again
// and removes it.
func TestUndoneCreatingLeaseIsRecheckedBeforePurge(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := openStore(t)
	eng := newFakeGatedEngine()
	roles := RoleMap{"app/db": {Engine: eng, TTL: time.Hour}}
	crashed, err := NewLeases(Options{Store: st, Roles: roles, Now: clock.Now, Replica: "replica-2"})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _, _ = crashed.Issue(ctx, "app/db", "") }() // never returns before the end: the "crashed" issuer
	<-eng.entered
	t.Cleanup(func() { close(eng.gate) })

	l, err := NewLeases(Options{Store: st, Roles: roles, Now: clock.Now, Replica: "replica-1"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReaper(ReaperOptions{Leases: l, ID: "replica-1", CreatingGrace: time.Minute, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if res, err := r.Pass(ctx); err != nil || res.Revoked != 1 {
		t.Fatalf("undoing the stale creating lease: %+v, %v", res, err)
	}
	// The database commits the user after all; its issuer is gone.
	eng.mu.Lock()
	eng.users["v_gated_user"] = true
	eng.mu.Unlock()

	clock.Advance(2 * time.Hour)
	if res, err := r.Pass(ctx); err != nil || res.Purged != 1 {
		t.Fatalf("purge pass: %+v, %v", res, err)
	}
	if eng.exists("v_gated_user") {
		t.Fatal("the purge left a user with no lease")
	}
	if ls, _ := l.List(ctx, ""); len(ls) != 0 {
		t.Fatalf("records after the purge: %+v", ls)
	}
}
