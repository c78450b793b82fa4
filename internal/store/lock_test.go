package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/store"
)

const testLockKey = "test/lock"

// lockClock is a fake clock shared by the contenders of a test.
type lockClock struct{ t time.Time }

func (c *lockClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLockTwoHolders(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clock := &lockClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	const ttl = 30 * time.Second

	acquire := func(holder string) error {
		return store.AcquireLock(ctx, st, testLockKey, holder, ttl, clock.t)
	}
	mustHolder := func(want string) {
		t.Helper()
		got, _, err := store.LockHolder(ctx, st, testLockKey)
		if err != nil {
			t.Fatalf("LockHolder: %v", err)
		}
		if got != want {
			t.Fatalf("holder = %q, want %q", got, want)
		}
	}

	steps := []struct {
		name    string
		advance time.Duration
		do      func() error
		wantErr error
		holder  string
	}{
		{"a takes the free lock", 0, func() error { return acquire("a") }, nil, "a"},
		{"b is refused while a holds it", 0, func() error { return acquire("b") }, store.ErrLockHeld, "a"},
		{"a renews before expiry", ttl - time.Second, func() error { return acquire("a") }, nil, "a"},
		{"b is still refused after the first ttl thanks to the renewal", 2 * time.Second, func() error { return acquire("b") }, store.ErrLockHeld, "a"},
		{"b takes the lock once it expired", ttl, func() error { return acquire("b") }, nil, "b"},
		{"a is refused after losing it", 0, func() error { return acquire("a") }, store.ErrLockHeld, "b"},
		{"a cannot release b's lock", 0, func() error { return store.ReleaseLock(ctx, st, testLockKey, "a") }, store.ErrLockHeld, "b"},
		{"b releases its lock", 0, func() error { return store.ReleaseLock(ctx, st, testLockKey, "b") }, nil, ""},
		{"releasing an absent lock is fine", 0, func() error { return store.ReleaseLock(ctx, st, testLockKey, "b") }, nil, ""},
		{"a takes the released lock at once", 0, func() error { return acquire("a") }, nil, "a"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clock.advance(s.advance)
			err := s.do()
			switch {
			case s.wantErr == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case s.wantErr != nil && !errors.Is(err, s.wantErr):
				t.Fatalf("error = %v, want %v", err, s.wantErr)
			}
			mustHolder(s.holder)
		})
	}
}

func TestLockExpiryIsExclusive(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := store.AcquireLock(ctx, st, testLockKey, "a", time.Minute, start); err != nil {
		t.Fatal(err)
	}
	_, exp, err := store.LockHolder(ctx, st, testLockKey)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(start.Add(time.Minute)) {
		t.Fatalf("expiry = %v, want %v", exp, start.Add(time.Minute))
	}
	if err := store.AcquireLock(ctx, st, testLockKey, "b", time.Minute, exp.Add(-time.Nanosecond)); !errors.Is(err, store.ErrLockHeld) {
		t.Fatalf("acquire just before expiry = %v, want ErrLockHeld", err)
	}
	if err := store.AcquireLock(ctx, st, testLockKey, "b", time.Minute, exp); err != nil {
		t.Fatalf("acquire at expiry = %v, want nil", err)
	}
}

func TestLockRejectsBadArguments(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		holder string
		ttl    time.Duration
	}{
		{"empty holder", "", time.Second},
		{"zero ttl", "a", 0},
		{"negative ttl", "a", -time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := store.AcquireLock(ctx, st, testLockKey, tc.holder, tc.ttl, now)
			if !errors.Is(err, store.ErrInvalidOp) {
				t.Fatalf("AcquireLock = %v, want ErrInvalidOp", err)
			}
			if h, _, _ := store.LockHolder(ctx, st, testLockKey); h != "" {
				t.Fatalf("lock taken by %q despite the error", h)
			}
		})
	}
}

func TestLockCorruptValue(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if _, err := st.Put(ctx, testLockKey, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := store.AcquireLock(ctx, st, testLockKey, "a", time.Second, now); err == nil || errors.Is(err, store.ErrLockHeld) {
		t.Fatalf("AcquireLock over a corrupt value = %v, want a decoding error", err)
	}
	if err := store.ReleaseLock(ctx, st, testLockKey, "a"); err == nil {
		t.Fatal("ReleaseLock over a corrupt value succeeded")
	}
}

// TestLockContention races many contenders for a free lock at the same
// instant: exactly one must win.
func TestLockContention(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []string
		errs []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("replica-%d", i)
			err := store.AcquireLock(ctx, st, testLockKey, holder, time.Minute, now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, holder)
			case !errors.Is(err, store.ErrLockHeld):
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if len(won) != 1 {
		t.Fatalf("winners = %v, want exactly one", won)
	}
	h, _, err := store.LockHolder(ctx, st, testLockKey)
	if err != nil || h != won[0] {
		t.Fatalf("holder = %q, %v; want %q", h, err, won[0])
	}
}
