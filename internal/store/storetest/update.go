package storetest

import (
	"errors"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/store"
)

// These tests check store.Update against the backend: its optimistic
// commit relies on Txn reporting ErrConflict exactly when a key read
// through the View changed.

func testUpdateCommits(t *testing.T, s store.Store) {
	rev, err := store.Update(t.Context(), s, func(v *store.View) error {
		if _, err := v.Get("up/a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("View.Get of a missing key = %v, want ErrNotFound", err)
		}
		v.Put("up/a", []byte("a"))
		v.Put("up/b", []byte("b"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rev <= 0 {
		t.Fatalf("Update returned revision %d, want > 0", rev)
	}
	expect(t, s, "up/a", "a", rev)
	expect(t, s, "up/b", "b", rev)
}

func testUpdateRetriesOnConflict(t *testing.T, s store.Store) {
	mustPut(t, s, "up/c", "0")
	calls := 0
	rev, err := store.Update(t.Context(), s, func(v *store.View) error {
		calls++
		e, err := v.Get("up/c")
		if err != nil {
			return err
		}
		if calls == 1 {
			mustPut(t, s, "up/c", "interloper") // changes what this attempt read
		}
		v.Put("up/c", append(e.Value, "+1"...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("fn ran %d times, want 2 (once more after the conflict)", calls)
	}
	expect(t, s, "up/c", "interloper+1", rev)
}

func testUpdateGuardsAbsence(t *testing.T, s store.Store) {
	// A key read as absent is guarded too: if someone creates it before the
	// commit, the function runs again and sees it.
	errExists := errors.New("already exists")
	calls := 0
	_, err := store.Update(t.Context(), s, func(v *store.View) error {
		calls++
		if _, err := v.Get("up/new"); err == nil {
			return errExists
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if calls == 1 {
			mustPut(t, s, "up/new", "theirs")
		}
		v.Put("up/new", []byte("mine"))
		return nil
	})
	if !errors.Is(err, errExists) {
		t.Fatalf("Update = %v, want the function's own error from its second run", err)
	}
	if calls != 2 {
		t.Fatalf("fn ran %d times, want 2", calls)
	}
	expectValue(t, s, "up/new", "theirs")
}

func testUpdateGuardsList(t *testing.T, s store.Store) {
	mustPut(t, s, "up/l/1", "one")
	mustPut(t, s, "up/l/2", "two")
	calls := 0
	_, err := store.Update(t.Context(), s, func(v *store.View) error {
		calls++
		es, _, err := v.List("up/l/", "", 0)
		if err != nil {
			return err
		}
		var vals []string
		for _, e := range es {
			vals = append(vals, string(e.Value))
		}
		if calls == 1 {
			mustPut(t, s, "up/l/2", "changed")
		}
		v.Put("up/sum", []byte(strings.Join(vals, ",")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("fn ran %d times, want 2 (a listed key changed)", calls)
	}
	expectValue(t, s, "up/sum", "one,changed")
}

func testUpdateErrorAborts(t *testing.T, s store.Store) {
	mustPut(t, s, "up/keep", "kept")
	boom := errors.New("boom")
	calls := 0
	rev, err := store.Update(t.Context(), s, func(v *store.View) error {
		calls++
		v.Put("up/x", []byte("x"))
		v.Delete("up/keep")
		return boom
	})
	// Update promises fn's error unchanged, not merely wrapped.
	if err != boom {
		t.Fatalf("Update = %v, want fn's error unchanged", err)
	}
	if rev != 0 || calls != 1 {
		t.Fatalf("Update returned revision %d after %d calls, want 0 after 1", rev, calls)
	}
	expectAbsent(t, s, "up/x")
	expectValue(t, s, "up/keep", "kept")
}

func testUpdateReadsOwnWrites(t *testing.T, s store.Store) {
	mustPut(t, s, "up/k", "stored")
	_, err := store.Update(t.Context(), s, func(v *store.View) error {
		v.Put("up/k", []byte("buffered"))
		if e, err := v.Get("up/k"); err != nil || string(e.Value) != "buffered" {
			t.Errorf("View.Get after View.Put = %q, %v; want the buffered value", e.Value, err)
		}
		if e, err := s.Get(t.Context(), "up/k"); err != nil || string(e.Value) != "stored" {
			t.Errorf("the store saw a buffered write before commit: %q, %v", e.Value, err)
		}
		v.Delete("up/k")
		if _, err := v.Get("up/k"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("View.Get after View.Delete = %v, want ErrNotFound", err)
		}
		v.Put("up/j", []byte("j"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expectAbsent(t, s, "up/k")
	expectValue(t, s, "up/j", "j")
}

func testUpdateWithoutWrites(t *testing.T, s store.Store) {
	ra := mustPut(t, s, "up/r", "r")
	rev, err := store.Update(t.Context(), s, func(v *store.View) error {
		_, err := v.Get("up/r")
		return err
	})
	if err != nil || rev != 0 {
		t.Fatalf("read-only Update = %d, %v; want 0, nil", rev, err)
	}
	expect(t, s, "up/r", "r", ra)
}

func testUpdateGivesUp(t *testing.T, s store.Store) {
	mustPut(t, s, "up/hot", "0")
	calls := 0
	_, err := store.Update(t.Context(), s, func(v *store.View) error {
		calls++
		if _, err := v.Get("up/hot"); err != nil {
			return err
		}
		mustPut(t, s, "up/hot", "interloper") // every attempt conflicts
		v.Put("up/hot", []byte("mine"))
		v.Put("up/side", []byte("side"))
		return nil
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update under permanent contention = %v, want ErrConflict", err)
	}
	if calls != store.MaxAttempts {
		t.Fatalf("fn ran %d times, want MaxAttempts (%d)", calls, store.MaxAttempts)
	}
	expectValue(t, s, "up/hot", "interloper")
	expectAbsent(t, s, "up/side")
}
