// Package storetest is the conformance suite every [store.Store] backend
// must pass. A backend's own tests call [Run] with a function that opens a
// fresh, empty store, and [RunCrash] with a function that opens the store kept
// at a path:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite checks the contract written in package store: reads and writes,
// store-wide revisions, bytewise ordering, prefix listing with cursors,
// compare-and-swap transactions that change all or nothing, concurrency
// through [store.Update], size and key limits, closed stores and cancelled
// contexts. [RunCrash] checks that every acknowledged write survives kill -9.
//
// A failure names the property that broke, so a backend author can read the
// suite as the specification.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"sigil.dev/sigil/internal/store"
)

// Opener returns a new, empty store for one subtest and arranges (with
// t.Cleanup) to close it. It is called from parallel subtests, so stores it
// returns must not share keys: each call gets its own file, namespace or
// cluster prefix. Closing the store twice must be harmless, since the suite
// closes some stores itself.
type Opener func(t *testing.T) store.Store

// Option adjusts the suite for a backend.
type Option func(*options)

type options struct{ maxValueSize int }

// WithMaxValueSize sets the largest value the backend accepts, for stores
// that wrap another and spend some of its limit on their own framing (the
// barrier's envelope). The default is store.MaxValueSize.
func WithMaxValueSize(n int) Option { return func(o *options) { o.maxValueSize = n } }

// Run runs the whole conformance suite against the backend that open
// creates, one parallel subtest per property.
func Run(t *testing.T, open Opener, opts ...Option) {
	t.Helper()
	o := options{maxValueSize: store.MaxValueSize}
	for _, f := range opts {
		f(&o)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetPutDelete", testGetPutDelete},
		{"EmptyValues", testEmptyValues},
		{"ValuesBelongToCaller", testValuesBelongToCaller},
		{"Revisions", testRevisions},
		{"Ordering", testOrdering},
		{"PrefixIsolation", testPrefixIsolation},
		{"ListCursors", testListCursors},
		{"ListPages", testListPages},
		{"ListPagesWhileWriting", testListPagesWhileWriting},
		{"TxnCompareAndSwap", testTxnCompareAndSwap},
		{"TxnAllOrNothing", testTxnAllOrNothing},
		{"TxnDelete", testTxnDelete},
		{"TxnOpOrder", testTxnOpOrder},
		{"TxnComparesOnly", testTxnComparesOnly},
		{"TxnVisibleAtomically", testTxnVisibleAtomically},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"LargeValues", func(t *testing.T, s store.Store) { testLargeValues(t, s, o.maxValueSize) }},
		{"InvalidKeys", testInvalidKeys},
		{"InvalidOps", testInvalidOps},
		{"Closed", testClosed},
		{"CloseWhileBusy", testCloseWhileBusy},
		{"CanceledContext", testCanceledContext},
		{"UpdateCommits", testUpdateCommits},
		{"UpdateRetriesOnConflict", testUpdateRetriesOnConflict},
		{"UpdateGuardsAbsence", testUpdateGuardsAbsence},
		{"UpdateGuardsList", testUpdateGuardsList},
		{"UpdateErrorAborts", testUpdateErrorAborts},
		{"UpdateReadsOwnWrites", testUpdateReadsOwnWrites},
		{"UpdateWithoutWrites", testUpdateWithoutWrites},
		{"UpdateGivesUp", testUpdateGivesUp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func testGetPutDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing key: err = %v, want ErrNotFound", err)
	}
	r1 := mustPut(t, s, "a", "one")
	if r1 <= 0 {
		t.Fatalf("Put returned revision %d, want > 0", r1)
	}
	expect(t, s, "a", "one", r1)

	r2 := mustPut(t, s, "a", "two")
	if r2 <= r1 {
		t.Fatalf("overwriting Put returned revision %d, want > %d", r2, r1)
	}
	expect(t, s, "a", "two", r2)

	mustDelete(t, s, "a")
	expectAbsent(t, s, "a")
	mustDelete(t, s, "a")     // deleting again is not an error
	mustDelete(t, s, "never") // nor is deleting what never existed
	expectAbsent(t, s, "never")

	r3 := mustPut(t, s, "a", "three")
	if r3 <= r2 {
		t.Fatalf("Put after Delete returned revision %d, want > %d", r3, r2)
	}
	expect(t, s, "a", "three", r3)
}

func testEmptyValues(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"nil", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev, err := s.Put(ctx, "empty/"+tc.name, tc.value)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			expect(t, s, "empty/"+tc.name, "", rev)
		})
	}
	es, _ := mustList(t, s, "empty/", "", 0)
	if got := keysOf(es); !slices.Equal(got, []string{"empty/empty", "empty/nil"}) {
		t.Fatalf("List of empty values = %q, want both keys present", got)
	}
}

func testValuesBelongToCaller(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := []byte("original")
	if _, err := s.Put(ctx, "own/a", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X' // the store must have copied the value
	mustPut(t, s, "own/b", "bbbbbbbb")

	e, err := s.Get(ctx, "own/a")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value) != "original" {
		t.Fatalf("after the caller changed the slice it passed to Put, Get = %q, want %q", e.Value, "original")
	}
	e.Value[0] = 'Y'
	expectValue(t, s, "own/a", "original")

	es, _ := mustList(t, s, "own/", "", 0)
	if len(es) != 2 {
		t.Fatalf("List returned %d entries, want 2", len(es))
	}
	es[0].Value = append(es[0].Value, '!') // must not write into es[1]'s bytes
	es[0].Value[0] = 'Z'
	if string(es[1].Value) != "bbbbbbbb" {
		t.Fatalf("appending to one listed value changed the next one to %q", es[1].Value)
	}
	expectValue(t, s, "own/a", "original")
	expectValue(t, s, "own/b", "bbbbbbbb")
}

func testRevisions(t *testing.T, s store.Store) {
	ctx := t.Context()
	ra := mustPut(t, s, "rev/a", "1")
	rb := mustPut(t, s, "rev/b", "1")
	if rb <= ra {
		t.Fatalf("second Put got revision %d, want > %d", rb, ra)
	}
	expect(t, s, "rev/a", "1", ra) // a write to b leaves a's revision alone

	ra2 := mustPut(t, s, "rev/a", "2")
	if ra2 <= rb {
		t.Fatalf("Put got revision %d, want > %d (revisions are store-wide)", ra2, rb)
	}

	rt, err := s.Txn(ctx, nil, []store.Op{store.Put("rev/c", []byte("c")), store.Put("rev/d", []byte("d"))})
	if err != nil {
		t.Fatal(err)
	}
	if rt <= ra2 {
		t.Fatalf("Txn got revision %d, want > %d", rt, ra2)
	}
	expect(t, s, "rev/c", "c", rt) // every key of one commit gets its revision
	expect(t, s, "rev/d", "d", rt)

	mustDelete(t, s, "rev/b")
	rb2 := mustPut(t, s, "rev/b", "again")
	if rb2 <= rt {
		t.Fatalf("Put after Delete got revision %d, want > %d", rb2, rt)
	}

	es, _ := mustList(t, s, "rev/", "", 0)
	want := map[string]int64{"rev/a": ra2, "rev/b": rb2, "rev/c": rt, "rev/d": rt}
	if len(es) != len(want) {
		t.Fatalf("List returned %d entries, want %d", len(es), len(want))
	}
	for _, e := range es {
		if e.Revision != want[e.Key] {
			t.Errorf("List: %q has revision %d, want %d (as Put or Txn returned)", e.Key, e.Revision, want[e.Key])
		}
	}
}

// mustPut writes a string value and returns the revision.
func mustPut(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Put(t.Context(), key, []byte(value))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return rev
}

func mustDelete(t *testing.T, s store.Store, key string) {
	t.Helper()
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}

func mustList(t *testing.T, s store.Store, prefix, after string, limit int) ([]store.Entry, string) {
	t.Helper()
	es, next, err := s.List(t.Context(), prefix, after, limit)
	if err != nil {
		t.Fatalf("List(%q, %q, %d): %v", prefix, after, limit, err)
	}
	return es, next
}

// expect checks that key holds value at revision rev.
func expect(t *testing.T, s store.Store, key, value string, rev int64) {
	t.Helper()
	e, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if e.Key != key || string(e.Value) != value || e.Revision != rev {
		t.Fatalf("Get(%q) = {%q, %q, %d}, want {%q, %q, %d}", key, e.Key, e.Value, e.Revision, key, value, rev)
	}
}

// expectValue checks that key holds value, at any revision.
func expectValue(t *testing.T, s store.Store, key, value string) store.Entry {
	t.Helper()
	e, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if string(e.Value) != value {
		t.Fatalf("Get(%q) = %q, want %q", key, e.Value, value)
	}
	return e
}

func expectAbsent(t *testing.T, s store.Store, key string) {
	t.Helper()
	if e, err := s.Get(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = {%q, rev %d}, %v; want ErrNotFound", key, e.Value, e.Revision, err)
	}
}

// expectUnchanged checks that an entry still has the value and revision it
// had before.
func expectUnchanged(t *testing.T, s store.Store, before store.Entry) {
	t.Helper()
	e, err := s.Get(t.Context(), before.Key)
	if err != nil {
		t.Fatalf("Get(%q): %v", before.Key, err)
	}
	if !bytes.Equal(e.Value, before.Value) || e.Revision != before.Revision {
		t.Fatalf("%q changed to {%q, rev %d}, want it unchanged at {%q, rev %d}",
			before.Key, e.Value, e.Revision, before.Value, before.Revision)
	}
}

func keysOf(es []store.Entry) []string {
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Key
	}
	return keys
}

// canceled returns a context that is already cancelled.
func canceled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// value returns a deterministic value for index i.
func value(i int) string { return fmt.Sprintf("value-%06d", i) }
