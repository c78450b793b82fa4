package dynamic

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigil.dev/sigil/internal/store"
)

const secretName = "my-app/database-credentials"

// flakyEngine is a real engine whose Revoke fails while failures > 0.
type flakyEngine struct {
	Engine
	failures atomic.Int32
}

func (f *flakyEngine) Revoke(ctx context.Context, username string) error {
	if f.failures.Add(-1) >= 0 {
		return errors.New("injected revoke failure")
	}
	return f.Engine.Revoke(ctx, username)
}

// hookEngine is a real engine that runs before ahead of every Create.
type hookEngine struct {
	Engine
	before func()
}

func (h *hookEngine) Create(ctx context.Context, c Creation) (Credential, error) {
	h.before()
	return h.Engine.Create(ctx, c)
}

func newLeases(t testing.TB, e *env, roles Roles, clock *fakeClock) *Leases {
	t.Helper()
	l, err := NewLeases(Options{Store: e.st, Roles: roles, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLeases(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	eng := e.engine(t, grantingConfig())
	clock := newFakeClock()
	roles := RoleMap{
		secretName: {Engine: eng, TTL: time.Hour, MaxTTL: 3 * time.Hour},
		"other":    {Engine: eng, TTL: time.Hour},
		"broken": {Engine: e.engine(t, PostgresConfig{Creation: []string{
			DefaultPostgresCreation[0], `GRANT SELECT ON products TO {{name}} ,,`,
		}}), TTL: time.Hour},
	}
	l := newLeases(t, e, roles, clock)

	t.Run("issue, log in and query", func(t *testing.T) {
		lease, cred, err := l.Issue(ctx, secretName, "session-issue")
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		if lease.State != StateActive || lease.Username != cred.Username || !lease.Expires.Equal(clock.Now().Add(time.Hour)) {
			t.Fatalf("lease %+v", lease)
		}
		if !strings.HasPrefix(lease.ID, secretName+"/") {
			t.Errorf("lease id %q does not start with the secret", lease.ID)
		}
		e.mustQuery(t, cred.Username, cred.Password)
	})

	t.Run("one lease per session, reused until two thirds of the TTL", func(t *testing.T) {
		a1, ca1, err := l.Issue(ctx, secretName, "session-a")
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := l.Issue(ctx, secretName, "session-b")
		if err != nil {
			t.Fatal(err)
		}
		if a1.Username == b.Username {
			t.Fatal("two sessions got the same user")
		}
		clock.Advance(39 * time.Minute)
		a2, ca2, err := l.Issue(ctx, secretName, "session-a")
		if err != nil {
			t.Fatal(err)
		}
		if a2.ID != a1.ID || ca2 != ca1 {
			t.Fatalf("same session before 2/3 TTL got a new credential: %s then %s", a1.Username, a2.Username)
		}
		clock.Advance(time.Minute) // exactly 2/3 of an hour
		a3, ca3, err := l.Issue(ctx, secretName, "session-a")
		if err != nil {
			t.Fatal(err)
		}
		if a3.ID == a1.ID || ca3.Username == ca1.Username {
			t.Fatal("same session after 2/3 TTL got the old credential")
		}
		// The old user keeps working until its own expiry.
		e.mustQuery(t, ca1.Username, ca1.Password)
		e.mustQuery(t, ca3.Username, ca3.Password)
		if _, _, ok, err := l.ForSession(ctx, "other", "session-a"); err != nil || ok {
			t.Fatalf("ForSession of another secret = %v, %v", ok, err)
		}
	})

	t.Run("renew moves the expiry, bounded by the max TTL", func(t *testing.T) {
		lease, _, err := l.Issue(ctx, secretName, "")
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(30 * time.Minute)
		renewed, err := l.Renew(ctx, lease.ID, 0)
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		if want := clock.Now().Add(time.Hour); !renewed.Expires.Equal(want) {
			t.Fatalf("Expires = %v, want %v", renewed.Expires, want)
		}
		var until time.Time
		if err := e.admin.QueryRow(ctx, `SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1`, lease.Username).Scan(&until); err != nil {
			t.Fatal(err)
		}
		if !until.Equal(renewed.Expires) {
			t.Fatalf("VALID UNTIL = %v, want %v", until, renewed.Expires)
		}
		capped, err := l.Renew(ctx, lease.ID, 10*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !capped.Expires.Equal(lease.MaxExpires) {
			t.Fatalf("Expires = %v, want the max %v", capped.Expires, lease.MaxExpires)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		lease, cred, err := l.Issue(ctx, secretName, "session-revoke")
		if err != nil {
			t.Fatal(err)
		}
		open, err := e.login(t, cred.Username, cred.Password)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Revoke(ctx, lease.ID); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		got, err := l.Get(ctx, lease.ID)
		if err != nil || got.State != StateRevoked {
			t.Fatalf("after Revoke: %+v, %v", got, err)
		}
		if _, err := e.login(t, cred.Username, cred.Password); !isAuthFailure(err) {
			t.Fatalf("login after revoke: %v", err)
		}
		if err := open.Ping(ctx); err == nil {
			t.Fatal("open session survived revocation")
		}
		if _, _, ok, err := l.ForSession(ctx, secretName, "session-revoke"); err != nil || ok {
			t.Fatalf("ForSession after revoke = %v, %v", ok, err)
		}
		if _, err := l.Renew(ctx, lease.ID, 0); !errors.Is(err, ErrLeaseNotActive) {
			t.Fatalf("Renew of revoked lease: %v", err)
		}
		if err := l.Revoke(ctx, "nope/1"); !errors.Is(err, ErrLeaseNotFound) {
			t.Fatalf("Revoke of unknown lease: %v", err)
		}
	})

	t.Run("revoke prefix and list", func(t *testing.T) {
		var others []Lease
		for i := range 3 {
			lease, _, err := l.Issue(ctx, "other", fmt.Sprint("p", i))
			if err != nil {
				t.Fatal(err)
			}
			others = append(others, lease)
		}
		n, err := l.RevokePrefix(ctx, "other/")
		if err != nil || n != 3 {
			t.Fatalf("RevokePrefix = %d, %v; want 3", n, err)
		}
		for _, o := range others {
			if e.roleExists(t, o.Username) {
				t.Fatalf("role %s survived RevokePrefix", o.Username)
			}
		}
		all, err := l.List(ctx, secretName+"/")
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, lease := range all {
			if lease.Secret != secretName {
				t.Fatalf("List(%q) returned %s", secretName, lease.ID)
			}
			if lease.State == StateActive {
				active++
			}
		}
		if active == 0 {
			t.Fatal("RevokePrefix of another secret revoked this one's leases")
		}
	})

	t.Run("a creation statement with a syntax error leaves no lease and no role", func(t *testing.T) {
		before := e.dynamicRoles(t, "v_broken")
		_, _, err := l.Issue(ctx, "broken", "s")
		if !errors.Is(err, ErrStatement) || !strings.Contains(err.Error(), "syntax error") {
			t.Fatalf("Issue error = %v, want a syntax error wrapping ErrStatement", err)
		}
		leases, err := l.List(ctx, "broken/")
		if err != nil || len(leases) != 0 {
			t.Fatalf("leases after failed issue: %+v, %v", leases, err)
		}
		if after := e.dynamicRoles(t, "v_broken"); len(after) != len(before) {
			t.Fatalf("roles after failed issue: %v", after)
		}
	})

	t.Run("unknown secret", func(t *testing.T) {
		if _, _, err := l.Issue(ctx, "missing", ""); !errors.Is(err, ErrUnknownSecret) {
			t.Fatalf("Issue = %v, want ErrUnknownSecret", err)
		}
	})

	t.Run("passwords stay out of List", func(t *testing.T) {
		_, cred, err := l.Issue(ctx, secretName, "")
		if err != nil {
			t.Fatal(err)
		}
		all, err := l.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprintf("%+v", all); strings.Contains(s, cred.Password) {
			t.Fatal("List exposes a password")
		}
	})
}

func TestReaper(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	eng := e.engine(t, grantingConfig())
	flaky := &flakyEngine{Engine: eng}
	clock := newFakeClock()
	hook := &hookEngine{Engine: eng}
	roles := RoleMap{
		secretName: {Engine: eng, TTL: time.Hour, MaxTTL: 2 * time.Hour},
		"flaky":    {Engine: flaky, TTL: time.Hour},
		"hook":     {Engine: hook, TTL: time.Hour},
	}
	l := newLeases(t, e, roles, clock)
	newReaper := func(id string) *Reaper {
		r, err := NewReaper(ReaperOptions{Leases: l, ID: id, Interval: 10 * time.Millisecond, LockTTL: time.Minute, CreatingGrace: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1, r2 := newReaper("replica-1"), newReaper("replica-2")

	// Every pass below is by r1 unless the lock test hands it to r2; the
	// lock is renewed on each pass, so it never expires between them.
	t.Run("expired leases are revoked", func(t *testing.T) {
		lease, cred, err := l.Issue(ctx, secretName, "s")
		if err != nil {
			t.Fatal(err)
		}
		if res, err := r1.Pass(ctx); err != nil || res.Revoked != 0 {
			t.Fatalf("pass before expiry = %+v, %v", res, err)
		}
		clock.Advance(time.Hour)
		res, err := r1.Pass(ctx)
		if err != nil || res.Revoked != 1 {
			t.Fatalf("pass after expiry = %+v, %v", res, err)
		}
		if e.roleExists(t, lease.Username) {
			t.Fatal("expired user still exists")
		}
		if _, err := e.login(t, cred.Username, cred.Password); err == nil {
			t.Fatal("expired user can log in")
		}
	})

	t.Run("a renewed lease is not reaped at its first expiry", func(t *testing.T) {
		lease, _, err := l.Issue(ctx, secretName, "")
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(50 * time.Minute)
		if _, err := l.Renew(ctx, lease.ID, 0); err != nil {
			t.Fatal(err)
		}
		clock.Advance(20 * time.Minute)
		if res, err := r1.Pass(ctx); err != nil || res.Revoked != 0 {
			t.Fatalf("pass = %+v, %v; want nothing revoked", res, err)
		}
		if !e.roleExists(t, lease.Username) {
			t.Fatal("renewed user was removed")
		}
		clock.Advance(time.Hour)
		if res, err := r1.Pass(ctx); err != nil || res.Revoked != 1 {
			t.Fatalf("pass after renewed expiry = %+v, %v", res, err)
		}
	})

	t.Run("a creation overtaken by the reaper undoes itself", func(t *testing.T) {
		// While Issue creates the user, its lease outlives the grace and
		// the reaper revokes it (no user exists yet). The activation must
		// then fail and remove the user it just created.
		hook.before = func() {
			clock.Advance(2 * time.Minute)
			if res, err := r1.Pass(ctx); err != nil || res.Revoked != 1 {
				t.Errorf("pass during creation = %+v, %v", res, err)
			}
		}
		_, _, err := l.Issue(ctx, "hook", "")
		if !errors.Is(err, ErrLeaseNotActive) {
			t.Fatalf("Issue = %v, want ErrLeaseNotActive", err)
		}
		if roles := e.dynamicRoles(t, "v_hook"); len(roles) != 0 {
			t.Fatalf("overtaken creation left users %v", roles)
		}
		checkConsistent(t, e, l)
	})

	t.Run("failed revocations are retried with backoff", func(t *testing.T) {
		lease, _, err := l.Issue(ctx, "flaky", "")
		if err != nil {
			t.Fatal(err)
		}
		flaky.failures.Store(2)
		clock.Advance(time.Hour)
		for attempt, wait := range []time.Duration{time.Second, 2 * time.Second} {
			res, err := r1.Pass(ctx)
			if err != nil || res.Failed != 1 {
				t.Fatalf("attempt %d: pass = %+v, %v; want one failure", attempt+1, res, err)
			}
			got, _ := l.Get(ctx, lease.ID)
			if got.State != StateRevoking || got.Attempts != attempt+1 || !strings.Contains(got.LastError, "injected") {
				t.Fatalf("attempt %d: lease %+v", attempt+1, got)
			}
			if !got.NextAttempt.Equal(clock.Now().Add(wait)) {
				t.Fatalf("attempt %d: next attempt %v, want now+%v", attempt+1, got.NextAttempt, wait)
			}
			if res, err := r1.Pass(ctx); err != nil || res.Failed+res.Revoked != 0 {
				t.Fatalf("pass within backoff = %+v, %v; want nothing done", res, err)
			}
			clock.Advance(wait)
		}
		res, err := r1.Pass(ctx)
		if err != nil || res.Revoked != 1 {
			t.Fatalf("final pass = %+v, %v", res, err)
		}
		if e.roleExists(t, lease.Username) {
			t.Fatal("user survived the retried revocation")
		}
	})

	t.Run("crash recovery leaves no user without a lease and no lease without a user", func(t *testing.T) {
		// A crash after "lease written", before "user created"; and one
		// after "user created", before "lease active".
		var ids []string
		for _, createUser := range []bool{false, true} {
			u, err := eng.Username(secretName)
			if err != nil {
				t.Fatal(err)
			}
			now := clock.Now()
			r := record{Lease: Lease{ID: fmt.Sprintf("%s/crash%v", secretName, createUser), Secret: secretName,
				Username: u, Issued: now, Expires: now.Add(time.Hour), MaxExpires: now.Add(time.Hour), State: StateCreating}}
			if _, err := store.Update(ctx, e.st, func(v *store.View) error { return putRecord(v, r) }); err != nil {
				t.Fatal(err)
			}
			if createUser {
				if _, err := eng.Create(ctx, Creation{Username: u, Expires: r.Expires}); err != nil {
					t.Fatal(err)
				}
			}
			ids = append(ids, r.ID)
		}
		if res, err := r1.Pass(ctx); err != nil || res.Revoked != 0 {
			t.Fatalf("pass within the creation grace = %+v, %v", res, err)
		}
		clock.Advance(time.Minute)
		if res, err := r1.Pass(ctx); err != nil || res.Revoked != 2 {
			t.Fatalf("pass after the grace = %+v, %v", res, err)
		}
		for _, id := range ids {
			if got, _ := l.Get(ctx, id); got.State != StateRevoked {
				t.Fatalf("lease %s is %s", id, got.State)
			}
		}
		checkConsistent(t, e, l)
	})

	t.Run("revoked records are purged after the retention", func(t *testing.T) {
		r, err := NewReaper(ReaperOptions{Leases: l, ID: "replica-1", Interval: 10 * time.Millisecond, LockTTL: time.Minute, Retention: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		lease, _, err := l.Issue(ctx, secretName, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Revoke(ctx, lease.ID); err != nil {
			t.Fatal(err)
		}
		clock.Advance(59 * time.Minute)
		if _, err := r.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Get(ctx, lease.ID); err != nil {
			t.Fatalf("record purged before the retention: %v", err)
		}
		clock.Advance(time.Minute)
		res, err := r.Pass(ctx)
		if err != nil || res.Purged == 0 {
			t.Fatalf("pass = %+v, %v; want a purge", res, err)
		}
		if _, err := l.Get(ctx, lease.ID); !errors.Is(err, ErrLeaseNotFound) {
			t.Fatalf("Get after purge = %v, want ErrLeaseNotFound", err)
		}
	})

	t.Run("one reaper holds the lock", func(t *testing.T) {
		if _, err := r2.Pass(ctx); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("second reaper pass = %v, want ErrNotLeader", err)
		}
		clock.Advance(time.Minute) // r1's lock expires unrenewed
		if _, err := r2.Pass(ctx); err != nil {
			t.Fatalf("second reaper after the lock expired: %v", err)
		}
		if _, err := r1.Pass(ctx); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("first reaper after takeover = %v, want ErrNotLeader", err)
		}
	})

	t.Run("Run revokes in the background and releases the lock", func(t *testing.T) {
		lease, _, err := l.Issue(ctx, secretName, "run")
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r2.Run(runCtx) }()
		waitFor(t, "the background reaper to revoke", func() bool {
			got, err := l.Get(ctx, lease.ID)
			return err == nil && got.State == StateRevoked
		})
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
		if _, err := r1.Pass(ctx); err != nil {
			t.Fatalf("lock not released by Run: %v", err)
		}
		checkConsistent(t, e, l)
	})
}

// checkConsistent fails unless every lease that is not revoked has its user
// in the database and every dynamic user in the database has such a lease.
func checkConsistent(t *testing.T, e *env, l *Leases) {
	t.Helper()
	leases, err := l.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, lease := range leases {
		if lease.State == StateRevoked {
			continue
		}
		live[lease.Username] = true
		if !e.roleExists(t, lease.Username) {
			t.Errorf("lease %s (%s) has no user %s", lease.ID, lease.State, lease.Username)
		}
	}
	for _, role := range e.dynamicRoles(t, "v") {
		if !live[role] {
			t.Errorf("user %s has no live lease", role)
		}
	}
}

func TestNewReaperValidates(t *testing.T) {
	l, err := NewLeases(Options{Store: openStore(t), Roles: RoleMap{}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts ReaperOptions
	}{
		{"no leases", ReaperOptions{ID: "a"}},
		{"no id", ReaperOptions{Leases: l}},
		{"lock shorter than interval", ReaperOptions{Leases: l, ID: "a", Interval: time.Minute, LockTTL: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewReaper(tt.opts); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewReaper = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := NewLeases(Options{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewLeases = %v, want ErrInvalidConfig", err)
	}
}
