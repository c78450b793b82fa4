package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
)

// The backend-independent semantics of Update are in the conformance suite
// (package storetest), which every backend runs. These tests cover the
// validators and the parts of Update's contract that concern the View itself,
// against the real embedded backend.

func openStore(t *testing.T) store.Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "sigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"simple", "secrets/prod/db", true},
		{"one byte", "a", true},
		{"longest", strings.Repeat("k", store.MaxKeySize), true},
		{"multi-byte UTF-8 at the limit", strings.Repeat("é", store.MaxKeySize/2), true},
		{"control character", "a\x01b", true},
		{"empty", "", false},
		{"one byte too long", strings.Repeat("k", store.MaxKeySize+1), false},
		{"invalid UTF-8", "\xff", false},
		{"truncated UTF-8", "\xe6\x97", false},
		{"surrogate half", "\xed\xa0\x80", false},
		{"NUL", "a\x00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := store.ValidateKey(tc.key)
			if tc.ok && err != nil {
				t.Fatalf("ValidateKey = %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, store.ErrInvalidKey) {
				t.Fatalf("ValidateKey = %v, want ErrInvalidKey", err)
			}
		})
	}
}

func TestValidateOps(t *testing.T) {
	big := make([]byte, store.MaxValueSize+1)
	tests := []struct {
		name string
		cmps []store.Compare
		ops  []store.Op
		want error // nil: valid; errAny: some error
	}{
		{"empty", nil, nil, nil},
		{"put and delete", []store.Compare{{Key: "a", Revision: 3}, {Key: "b"}}, []store.Op{store.Put("a", []byte("v")), store.Delete("b")}, nil},
		{"largest value", nil, []store.Op{store.Put("a", big[:store.MaxValueSize])}, nil},
		{"value too large", nil, []store.Op{store.Put("a", big)}, store.ErrTooLarge},
		{"delete ignores value size", nil, []store.Op{{Kind: store.OpDelete, Key: "a", Value: big}}, nil},
		{"bad compare key", []store.Compare{{Key: ""}}, nil, store.ErrInvalidKey},
		{"bad op key", nil, []store.Op{store.Put("ok", nil), store.Delete("a\x00")}, store.ErrInvalidKey},
		{"negative revision", []store.Compare{{Key: "a", Revision: -1}}, nil, errAny},
		{"unknown kind", nil, []store.Op{{Kind: 7, Key: "a"}}, errAny},
		{"zero kind", nil, []store.Op{{Key: "a"}}, errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := store.ValidateOps(tc.cmps, tc.ops)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("ValidateOps = %v, want nil", err)
			case tc.want == errAny && err == nil:
				t.Fatal("ValidateOps accepted it")
			case tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("ValidateOps = %v, want %v", err, tc.want)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestUpdateDoesNotRetryFunctionErrors(t *testing.T) {
	// Only a conflict at commit is retried: an error from fn, even one that
	// wraps ErrConflict, is returned at once.
	s := openStore(t)
	calls := 0
	ownConflict := fmt.Errorf("nested: %w", store.ErrConflict)
	_, err := store.Update(t.Context(), s, func(v *store.View) error {
		calls++
		v.Put("k", []byte("v"))
		return ownConflict
	})
	if err != ownConflict || calls != 1 {
		t.Fatalf("Update = %v after %d calls, want fn's error after 1", err, calls)
	}
	if _, err := s.Get(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed Update wrote: %v", err)
	}
}

func TestViewCopiesValues(t *testing.T) {
	s := openStore(t)
	_, err := store.Update(t.Context(), s, func(v *store.View) error {
		in := []byte("written")
		v.Put("k", in)
		in[0] = 'X' // the View must have copied it

		e, err := v.Get("k")
		if err != nil {
			return err
		}
		if string(e.Value) != "written" || e.Revision != 0 {
			t.Errorf("View.Get of a buffered write = {%q, rev %d}, want {\"written\", rev 0}", e.Value, e.Revision)
		}
		e.Value[0] = 'Y' // nor may the caller reach the buffer through Get
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(t.Context(), "k")
	if err != nil || string(e.Value) != "written" {
		t.Fatalf("committed value = %q, %v; want \"written\"", e.Value, err)
	}
}

func TestViewLastWriteWins(t *testing.T) {
	s := openStore(t)
	if _, err := s.Put(t.Context(), "gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err := store.Update(t.Context(), s, func(v *store.View) error {
		v.Put("k", []byte("1"))
		v.Delete("k")
		v.Put("k", []byte("2"))
		v.Put("gone", []byte("y"))
		v.Delete("gone")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := s.Get(t.Context(), "k"); err != nil || string(e.Value) != "2" {
		t.Fatalf("k = %q, %v; want the last buffered write, \"2\"", e.Value, err)
	}
	if _, err := s.Get(t.Context(), "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("gone: %v, want deleted", err)
	}
}

func TestUpdateStopsWhenContextEnds(t *testing.T) {
	s := openStore(t)
	if _, err := s.Put(t.Context(), "k", []byte("0")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	_, err := store.Update(ctx, s, func(v *store.View) error {
		calls++
		if _, err := v.Get("k"); err != nil {
			return err
		}
		// Force a conflict, then end the context: Update must not retry.
		if _, err := s.Put(t.Context(), "k", []byte("other")); err != nil {
			return err
		}
		cancel()
		v.Put("k", []byte("mine"))
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Update = %v after %d calls, want context.Canceled after 1", err, calls)
	}
	if e, err := s.Get(t.Context(), "k"); err != nil || string(e.Value) != "other" {
		t.Fatalf("k = %q, %v; want the interloper's value", e.Value, err)
	}
}

func TestBumpMovesTheRevision(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var revs []int64
	for i := 0; i < 3; i++ {
		if _, err := store.Update(ctx, s, func(v *store.View) error { return store.Bump(v, "gen") }); err != nil {
			t.Fatal(err)
		}
		e, err := s.Get(ctx, "gen")
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Value) != strconv.Itoa(i+1) {
			t.Fatalf("counter = %q, want %d", e.Value, i+1)
		}
		revs = append(revs, e.Revision)
	}
	if !(revs[0] < revs[1] && revs[1] < revs[2]) {
		t.Fatalf("revisions did not move: %v", revs)
	}
	if _, err := s.Put(ctx, "gen", []byte("not a number")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, s, func(v *store.View) error { return store.Bump(v, "gen") }); err == nil {
		t.Fatal("bumping a value that is not a count succeeded")
	}
}
