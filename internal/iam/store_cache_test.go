package iam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/store"
)

// countingStore counts reads, to show which lookups reach the store.
type countingStore struct {
	store.Store
	gets atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string) (store.Entry, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

type cacheFixture struct {
	ctx   context.Context
	clock *testClock
	store *countingStore
	ents  *Entities
	user  User
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	f := &cacheFixture{ctx: context.Background(), clock: newTestClock(), store: &countingStore{Store: openTestStore(t)}}
	f.ents, _ = newTestEntities(t, f.store, f.clock, 7)
	u, err := f.ents.CreateUser(f.ctx, NewUser{Name: "app"})
	mustNoErr(t, err)
	f.user = u
	mustNoErr(t, f.ents.PutInlinePolicy(f.ctx, UserEntity, "app", "read", allowS3))
	p, err := f.ents.CreatePolicy(f.ctx, NewPolicy{Name: "deny-iam", Document: denyIAM})
	mustNoErr(t, err)
	mustNoErr(t, f.ents.AttachPolicy(f.ctx, UserEntity, "app", p.ARN))
	return f
}

func (f *cacheFixture) principal() *authn.Principal {
	return &authn.Principal{Kind: authn.KindIAMUser, AccountID: testAccount, ARN: "arn:aws:iam::123456789012:user/app", ID: f.user.ID, Name: "app"}
}

func policyNames(nps []NamedPolicy) []string {
	var out []string
	for _, np := range nps {
		if np.Policy == nil {
			out = append(out, np.Name+"(nil)")
			continue
		}
		out = append(out, np.Name)
	}
	return out
}

func decide(p *authn.Principal, ps []NamedPolicy, action string) Decision {
	return Evaluate(&Request{Principal: p, Action: action, Resource: "*"}, &PolicySet{Identity: ps})
}

func TestIdentityPolicies(t *testing.T) {
	f := newCacheFixture(t)
	p := f.principal()
	ps, err := f.ents.IdentityPolicies(f.ctx, p)
	mustNoErr(t, err)
	if got := fmt.Sprint(policyNames(ps)); got != "[user/app/inline/read arn:aws:iam::123456789012:policy/deny-iam]" {
		t.Fatalf("policies %s", got)
	}
	if d := decide(p, ps, "s3:GetObject"); !d.Allowed || d.Policy != "user/app/inline/read" || d.Statement != "Read" {
		t.Fatalf("s3:GetObject: %+v", d)
	}
	if d := decide(p, ps, "iam:CreateUser"); d.Allowed || d.Reason != "explicit deny" {
		t.Fatalf("iam:CreateUser: %+v", d)
	}

	tests := []struct {
		name string
		p    *authn.Principal
	}{
		{"root", rootPrincipal()},
		{"nil", nil},
		{"other account", &authn.Principal{Kind: authn.KindIAMUser, AccountID: "999999999999", ID: f.user.ID, Name: "app"}},
		{"recreated user (other id)", &authn.Principal{Kind: authn.KindIAMUser, AccountID: testAccount, ID: "AIDAOLDOLDOLDOLDOLDOL", Name: "app"}},
		{"unknown user", &authn.Principal{Kind: authn.KindIAMUser, AccountID: testAccount, ID: "AIDAXXXXXXXXXXXXXXXXX", Name: "nobody"}},
		{"malformed session", &authn.Principal{Kind: authn.KindAssumedRole, AccountID: testAccount, ARN: "arn:aws:iam::123456789012:role/x", ID: "AROAX:s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := f.ents.IdentityPolicies(f.ctx, tt.p)
			if err != nil || ps != nil {
				t.Fatalf("got %v, %v; want no policies", policyNames(ps), err)
			}
		})
	}
}

func TestIdentityPoliciesCache(t *testing.T) {
	f := newCacheFixture(t)
	p := f.principal()
	first, err := f.ents.IdentityPolicies(f.ctx, p)
	mustNoErr(t, err)

	// Within the TTL the hot path does not touch the store.
	before := f.store.gets.Load()
	for i := 0; i < 100; i++ {
		if _, err := f.ents.IdentityPolicies(f.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.store.gets.Load() - before; n != 0 {
		t.Fatalf("%d store reads within the TTL", n)
	}

	// After the TTL the records are re-read, but unchanged ones are not
	// re-parsed: the compiled policies are the same objects.
	f.clock.Advance(DefaultPolicyCacheTTL)
	again, err := f.ents.IdentityPolicies(f.ctx, p)
	mustNoErr(t, err)
	if f.store.gets.Load() == before {
		t.Fatal("no store read after the TTL")
	}
	for i := range first {
		if again[i].Policy != first[i].Policy {
			t.Fatalf("policy %s was compiled again", first[i].Name)
		}
	}

	// A local change applies at once, without waiting for the TTL.
	mustNoErr(t, f.ents.PutInlinePolicy(f.ctx, UserEntity, "app", "all", allowAll))
	now, err := f.ents.IdentityPolicies(f.ctx, p)
	mustNoErr(t, err)
	if got := fmt.Sprint(policyNames(now)); got != "[user/app/inline/all user/app/inline/read arn:aws:iam::123456789012:policy/deny-iam]" {
		t.Fatalf("after local change: %s", got)
	}
	if now[2].Policy != first[1].Policy {
		t.Fatal("the unchanged managed policy was compiled again")
	}
}

// TestIdentityPoliciesAcrossReplicas shows the staleness bound: a change by
// another replica applies here once the TTL has passed.
func TestIdentityPoliciesAcrossReplicas(t *testing.T) {
	f := newCacheFixture(t)
	p := f.principal()
	other, _ := newTestEntities(t, f.store.Store, f.clock, 8)
	before, err := f.ents.IdentityPolicies(f.ctx, p)
	mustNoErr(t, err)
	if d := decide(p, before, "kms:Decrypt"); d.Allowed {
		t.Fatalf("kms:Decrypt allowed before the change: %+v", d)
	}

	// The other replica makes a new default version of the attached policy.
	arn := "arn:aws:iam::123456789012:policy/deny-iam"
	_, err = other.CreatePolicyVersion(f.ctx, arn, allowAll, true)
	mustNoErr(t, err)

	f.clock.Advance(DefaultPolicyCacheTTL / 2)
	stale, err := f.ents.IdentityPolicies(f.ctx, p)
	mustNoErr(t, err)
	if d := decide(p, stale, "iam:CreateUser"); d.Allowed {
		t.Fatal("the change applied before the TTL: the cache was bypassed")
	}
	f.clock.Advance(DefaultPolicyCacheTTL / 2)
	fresh, err := f.ents.IdentityPolicies(f.ctx, p)
	mustNoErr(t, err)
	if d := decide(p, fresh, "kms:Decrypt"); !d.Allowed || d.Policy != arn {
		t.Fatalf("after the TTL: %+v", d)
	}

	// A deleted user allows nothing once the TTL has passed.
	mustNoErr(t, other.DeleteInlinePolicy(f.ctx, UserEntity, "app", "read"))
	mustNoErr(t, other.DetachPolicy(f.ctx, UserEntity, "app", arn))
	mustNoErr(t, other.DeleteUser(f.ctx, "app"))
	f.clock.Advance(DefaultPolicyCacheTTL)
	gone, err := f.ents.IdentityPolicies(f.ctx, p)
	if err != nil || gone != nil {
		t.Fatalf("deleted user: %v, %v", policyNames(gone), err)
	}
}

func TestRolePoliciesAndBoundaries(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	ents, _ := newTestEntities(t, openTestStore(t), clock, 3)
	b, err := ents.CreatePolicy(ctx, NewPolicy{Name: "bound", Document: allowS3})
	mustNoErr(t, err)
	r, err := ents.CreateRole(ctx, NewRole{Name: "svc", Path: "/apps/", TrustPolicy: trustEC2, PermissionsBoundary: b.ARN})
	mustNoErr(t, err)
	mustNoErr(t, ents.PutInlinePolicy(ctx, RoleEntity, "svc", "all", allowAll))

	ps, err := ents.RolePolicies(ctx, r.ARN)
	mustNoErr(t, err)
	if fmt.Sprint(policyNames(ps)) != "[role/svc/inline/all]" {
		t.Fatalf("RolePolicies %v", policyNames(ps))
	}
	rb, err := ents.RoleBoundary(ctx, r.ARN)
	mustNoErr(t, err)
	if rb == nil || rb.Name != b.ARN || rb.Policy == nil {
		t.Fatalf("RoleBoundary %+v", rb)
	}
	for _, arn := range []string{"arn:aws:iam::123456789012:role/svc", "arn:aws:iam::123456789012:role/other/svc", "arn:aws:iam::123456789012:user/apps/svc", "nonsense"} {
		ps, err := ents.RolePolicies(ctx, arn)
		if err != nil || ps != nil {
			t.Fatalf("RolePolicies(%s) = %v, %v", arn, policyNames(ps), err)
		}
	}

	session := &authn.Principal{Kind: authn.KindAssumedRole, AccountID: testAccount,
		ARN: "arn:aws:sts::123456789012:assumed-role/svc/worker-1", ID: r.ID + ":worker-1"}
	ps, err = ents.IdentityPolicies(ctx, session)
	mustNoErr(t, err)
	bound, err := ents.PermissionsBoundary(ctx, session)
	mustNoErr(t, err)
	set := &PolicySet{Identity: ps, Boundary: bound}
	if d := Evaluate(&Request{Principal: session, Action: "s3:GetObject", Resource: "*"}, set); !d.Allowed {
		t.Fatalf("s3 inside the boundary: %+v", d)
	}
	if d := Evaluate(&Request{Principal: session, Action: "kms:Decrypt", Resource: "*"}, set); d.Allowed {
		t.Fatalf("kms outside the boundary: %+v", d)
	}
	stale := *session
	stale.ID = "AROAOLDOLDOLDOLDOLDOL:worker-1"
	if ps, err := ents.IdentityPolicies(ctx, &stale); err != nil || ps != nil {
		t.Fatalf("session of a recreated role: %v, %v", policyNames(ps), err)
	}
}

func TestIdentityPoliciesFailClosed(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	s := openTestStore(t)
	ents, _ := newTestEntities(t, s, clock, 4)
	u, err := ents.CreateUser(ctx, NewUser{Name: "u"})
	mustNoErr(t, err)
	p := &authn.Principal{Kind: authn.KindIAMUser, AccountID: testAccount, ID: u.ID, Name: "u"}

	// A stored inline policy that no longer parses is an error, not "no
	// policy" (which would silently drop a Deny).
	rec := entityRecord{Format: recordFormat, Name: "u", Path: "/", ID: u.ID, Created: u.Created,
		Inline: []InlinePolicy{{Name: "bad", Document: `{"Statement":[`}}}
	b, _ := json.Marshal(rec)
	if _, err := s.Put(ctx, entityKey(UserEntity, "u"), b); err != nil {
		t.Fatal(err)
	}
	if _, err := ents.IdentityPolicies(ctx, p); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("corrupt inline policy: %v", err)
	}

	// A boundary that cannot be found is an error, not "no boundary".
	clock.Advance(time.Hour)
	rec.Inline = nil
	rec.Boundary = "arn:aws:iam::123456789012:policy/vanished"
	b, _ = json.Marshal(rec)
	if _, err := s.Put(ctx, entityKey(UserEntity, "u"), b); err != nil {
		t.Fatal(err)
	}
	if _, err := ents.PermissionsBoundary(ctx, p); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("missing boundary: %v", err)
	}

	// An unknown record format is refused.
	if _, err := s.Put(ctx, entityKey(UserEntity, "u"), []byte(`{"v":99}`)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if _, err := ents.IdentityPolicies(ctx, p); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("future format: %v", err)
	}
}

// TestConcurrentAccessKeys shows the per-user key limit holds under
// concurrent creation, through the store's compare-and-swap.
func TestConcurrentAccessKeys(t *testing.T) {
	ctx := context.Background()
	ents, keys := newTestEntities(t, openTestStore(t), newTestClock(), 5)
	_, err := ents.CreateUser(ctx, NewUser{Name: "u"})
	mustNoErr(t, err)
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		go func() {
			_, _, err := ents.CreateAccessKey(ctx, "u")
			errs <- err
		}()
	}
	ok := 0
	for i := 0; i < 6; i++ {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrLimitExceeded), errors.Is(err, store.ErrConflict):
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	infos, err := ents.AccessKeys(ctx, "u")
	mustNoErr(t, err)
	if ok != MaxAccessKeysPerUser || len(infos) != MaxAccessKeysPerUser {
		t.Fatalf("%d creations succeeded, %d keys stored; want %d", ok, len(infos), MaxAccessKeysPerUser)
	}
	for _, k := range infos {
		if _, err := keys.SecretKey(ctx, k.AccessKeyID); err != nil {
			t.Fatalf("key %s: %v", k.AccessKeyID, err)
		}
	}
}

func BenchmarkIdentityPoliciesCached(b *testing.B) {
	ctx := context.Background()
	clock := newTestClock()
	ents, _ := newTestEntities(b, openTestStore(b), clock, 9)
	u, err := ents.CreateUser(ctx, NewUser{Name: "app"})
	mustNoErr(b, err)
	mustNoErr(b, ents.PutInlinePolicy(ctx, UserEntity, "app", "read", allowS3))
	p := &authn.Principal{Kind: authn.KindIAMUser, AccountID: testAccount, ID: u.ID, Name: "app"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ents.IdentityPolicies(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIdentityPoliciesRevalidate(b *testing.B) {
	ctx := context.Background()
	clock := newTestClock()
	ents, _ := newTestEntities(b, openTestStore(b), clock, 9)
	u, err := ents.CreateUser(ctx, NewUser{Name: "app"})
	mustNoErr(b, err)
	mustNoErr(b, ents.PutInlinePolicy(ctx, UserEntity, "app", "read", allowS3))
	p := &authn.Principal{Kind: authn.KindIAMUser, AccountID: testAccount, ID: u.ID, Name: "app"}
	b.ReportAllocs()
	for b.Loop() {
		clock.Advance(DefaultPolicyCacheTTL) // every call re-reads the record
		if _, err := ents.IdentityPolicies(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}
