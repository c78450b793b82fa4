package dynamic

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sigil.dev/sigil/internal/store"
)

// TestForSessionAcrossReplicas checks the session cache against changes
// made by another replica (a second Leases over the same store): none of
// them may be missed.
func TestForSessionAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	eng := e.engine(t, grantingConfig())
	clock := newFakeClock()
	roles := RoleMap{secretName: {Engine: eng, TTL: time.Hour, MaxTTL: 3 * time.Hour}}
	a := newLeases(t, e, roles, clock) // the replica serving the session
	b := newLeases(t, e, roles, clock) // another replica

	// issue gives session a lease on a and reads it back once, so that a
	// has it cached.
	issue := func(t *testing.T, session string) (Lease, Credential) {
		t.Helper()
		lease, cred, err := a.Issue(ctx, secretName, session)
		if err != nil {
			t.Fatal(err)
		}
		got, _, ok, err := a.ForSession(ctx, secretName, session)
		if err != nil || !ok || got.ID != lease.ID {
			t.Fatalf("ForSession after Issue = %s, %v, %v; want %s", got.ID, ok, err, lease.ID)
		}
		if _, hit := a.sessions.get(secretName, session); !hit {
			t.Fatal("the session's lease was not cached")
		}
		return lease, cred
	}

	t.Run("a lease revoked on another replica is not served", func(t *testing.T) {
		lease, cred := issue(t, "revoked")
		if err := b.Revoke(ctx, lease.ID); err != nil {
			t.Fatal(err)
		}
		if got, _, ok, err := a.ForSession(ctx, secretName, "revoked"); err != nil || ok {
			t.Fatalf("ForSession after a revocation elsewhere = %s, %v, %v; want nothing", got.ID, ok, err)
		}
		next, nextCred, err := a.Issue(ctx, secretName, "revoked")
		if err != nil {
			t.Fatal(err)
		}
		if next.ID == lease.ID || nextCred.Username == cred.Username {
			t.Fatal("Issue handed out the revoked lease again")
		}
		e.mustQuery(t, nextCred.Username, nextCred.Password)
	})

	t.Run("a lease in revocation on another replica is not served", func(t *testing.T) {
		lease, _ := issue(t, "revoking")
		// The first step of a revocation, as Revoke or the reaper writes
		// it before touching the database.
		if _, err := store.Update(ctx, e.st, func(v *store.View) error {
			r, err := getRecord(v, lease.ID)
			if err != nil {
				return err
			}
			r.State = StateRevoking
			return putRecord(v, r)
		}); err != nil {
			t.Fatal(err)
		}
		if _, _, ok, err := a.ForSession(ctx, secretName, "revoking"); err != nil || ok {
			t.Fatalf("ForSession of a revoking lease = %v, %v; want nothing", ok, err)
		}
	})

	t.Run("a purged record is not served", func(t *testing.T) {
		lease, _ := issue(t, "purged")
		if _, err := store.Update(ctx, e.st, func(v *store.View) error { v.Delete(leaseKey(lease.ID)); return nil }); err != nil {
			t.Fatal(err)
		}
		if _, _, ok, err := a.ForSession(ctx, secretName, "purged"); err != nil || ok {
			t.Fatalf("ForSession of a deleted record = %v, %v; want nothing", ok, err)
		}
	})

	t.Run("a renewal on another replica is seen", func(t *testing.T) {
		lease, _ := issue(t, "renewed")
		clock.Advance(30 * time.Minute)
		renewed, err := b.Renew(ctx, lease.ID, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		got, cred, ok, err := a.ForSession(ctx, secretName, "renewed")
		if err != nil || !ok || !got.Expires.Equal(renewed.Expires) || !cred.Expires.Equal(renewed.Expires) {
			t.Fatalf("ForSession after a renewal elsewhere = %v (%v), %v; want expiry %v", got.Expires, ok, err, renewed.Expires)
		}
	})

	t.Run("a lease past reuse gives way to the session's newer lease", func(t *testing.T) {
		old, _ := issue(t, "moved")
		clock.Advance(41 * time.Minute) // past two thirds of the hour
		if _, _, ok, err := a.ForSession(ctx, secretName, "moved"); err != nil || ok {
			t.Fatalf("ForSession past reuse = %v, %v; want nothing", ok, err)
		}
		// Another replica issues the session's next lease; this one must
		// find it through the session key, not keep the old one.
		next, _, err := b.Issue(ctx, secretName, "moved")
		if err != nil {
			t.Fatal(err)
		}
		got, _, ok, err := a.ForSession(ctx, secretName, "moved")
		if err != nil || !ok || got.ID != next.ID || got.ID == old.ID {
			t.Fatalf("ForSession = %s, %v, %v; want the new lease %s", got.ID, ok, err, next.ID)
		}
	})

	t.Run("sessions and secrets do not share leases", func(t *testing.T) {
		l1, _ := issue(t, "one")
		l2, _ := issue(t, "two")
		if l1.ID == l2.ID || l1.Username == l2.Username {
			t.Fatal("two sessions share a lease")
		}
		if _, _, ok, err := a.ForSession(ctx, "other-secret", "one"); err != nil || ok {
			t.Fatalf("ForSession of another secret = %v, %v; want nothing", ok, err)
		}
	})
}

func TestSessionCacheIsBounded(t *testing.T) {
	var c sessionCache
	for i := range sessionCacheMax + 10 {
		c.put("s", fmt.Sprint(i), cachedLease{id: fmt.Sprint(i)})
	}
	if n := len(c.entries); n != sessionCacheMax {
		t.Fatalf("%d entries, want the bound %d", n, sessionCacheMax)
	}
	last := fmt.Sprint(sessionCacheMax + 9)
	if e, ok := c.get("s", last); !ok || e.id != last {
		t.Fatal("the newest entry was evicted")
	}
	c.drop("s", last)
	if _, ok := c.get("s", last); ok {
		t.Fatal("drop left the entry")
	}
}
