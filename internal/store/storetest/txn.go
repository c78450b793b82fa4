package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"sigil.dev/sigil/internal/store"
)

func testTxnCompareAndSwap(t *testing.T, s store.Store) {
	ctx := t.Context()
	ra := mustPut(t, s, "cas/a", "1")

	rev, err := s.Txn(ctx, []store.Compare{{Key: "cas/a", Revision: ra}}, []store.Op{store.Put("cas/a", []byte("2"))})
	if err != nil {
		t.Fatalf("Txn comparing the current revision: %v", err)
	}
	if rev <= ra {
		t.Fatalf("Txn returned revision %d, want > %d", rev, ra)
	}
	expect(t, s, "cas/a", "2", rev)
	current := expectValue(t, s, "cas/a", "2")

	tests := []struct {
		name string
		cmp  store.Compare
	}{
		{"stale revision", store.Compare{Key: "cas/a", Revision: ra}},
		{"future revision", store.Compare{Key: "cas/a", Revision: rev + 1000}},
		{"MustNotExist on an existing key", store.Compare{Key: "cas/a", Revision: store.MustNotExist}},
		{"revision of an absent key", store.Compare{Key: "cas/absent", Revision: ra}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Txn(ctx, []store.Compare{tc.cmp}, []store.Op{store.Put("cas/a", []byte("3")), store.Put("cas/absent", []byte("x"))})
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Txn = %v, want ErrConflict", err)
			}
			expectUnchanged(t, s, current)
			expectAbsent(t, s, "cas/absent")
		})
	}

	rn, err := s.Txn(ctx, []store.Compare{{Key: "cas/new", Revision: store.MustNotExist}}, []store.Op{store.Put("cas/new", []byte("created"))})
	if err != nil {
		t.Fatalf("Txn with MustNotExist on an absent key: %v", err)
	}
	expect(t, s, "cas/new", "created", rn)

	// A deleted key is absent again: MustNotExist holds, its old revision does not.
	mustDelete(t, s, "cas/new")
	if _, err := s.Txn(ctx, []store.Compare{{Key: "cas/new", Revision: rn}}, []store.Op{store.Put("cas/new", []byte("x"))}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Txn comparing a deleted key's old revision = %v, want ErrConflict", err)
	}
	if _, err := s.Txn(ctx, []store.Compare{{Key: "cas/new", Revision: store.MustNotExist}}, []store.Op{store.Put("cas/new", []byte("again"))}); err != nil {
		t.Fatalf("Txn with MustNotExist on a deleted key: %v", err)
	}
	expectValue(t, s, "cas/new", "again")
}

func testTxnAllOrNothing(t *testing.T, s store.Store) {
	ctx := t.Context()
	rx := mustPut(t, s, "atom/x", "x1")
	ry := mustPut(t, s, "atom/y", "y1")
	mustPut(t, s, "atom/w", "w1")
	before := map[string]store.Entry{}
	for _, k := range []string{"atom/x", "atom/y", "atom/w"} {
		e, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		before[k] = e
	}
	ops := []store.Op{
		store.Put("atom/x", []byte("x2")),
		store.Put("atom/y", []byte("y2")),
		store.Put("atom/z", []byte("z")),
		store.Delete("atom/w"),
	}
	tests := []struct {
		name string
		cmps []store.Compare
	}{
		{"first compare fails", []store.Compare{{Key: "atom/x", Revision: rx - 1}, {Key: "atom/y", Revision: ry}}},
		{"last compare fails", []store.Compare{{Key: "atom/x", Revision: rx}, {Key: "atom/y", Revision: ry}, {Key: "atom/z", Revision: 1}}},
		{"same key compared twice, differently", []store.Compare{{Key: "atom/x", Revision: rx}, {Key: "atom/x", Revision: store.MustNotExist}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Txn(ctx, tc.cmps, ops); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Txn = %v, want ErrConflict", err)
			}
			for _, e := range before {
				expectUnchanged(t, s, e)
			}
			expectAbsent(t, s, "atom/z")
		})
	}

	rev, err := s.Txn(ctx, []store.Compare{{Key: "atom/x", Revision: rx}, {Key: "atom/y", Revision: ry}, {Key: "atom/z", Revision: store.MustNotExist}}, ops)
	if err != nil {
		t.Fatalf("Txn whose compares all hold: %v", err)
	}
	expect(t, s, "atom/x", "x2", rev)
	expect(t, s, "atom/y", "y2", rev)
	expect(t, s, "atom/z", "z", rev)
	expectAbsent(t, s, "atom/w")
}

func testTxnDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	rx := mustPut(t, s, "del/x", "x")
	mustPut(t, s, "del/y", "y")
	rev, err := s.Txn(ctx, []store.Compare{{Key: "del/x", Revision: rx}}, []store.Op{store.Delete("del/x"), store.Delete("del/absent"), store.Put("del/y", []byte("y2"))})
	if err != nil {
		t.Fatal(err)
	}
	expectAbsent(t, s, "del/x")
	expectAbsent(t, s, "del/absent")
	expect(t, s, "del/y", "y2", rev)

	// Only deletes, of existing keys.
	mustPut(t, s, "del/a", "a")
	mustPut(t, s, "del/b", "b")
	if _, err := s.Txn(ctx, nil, []store.Op{store.Delete("del/a"), store.Delete("del/b")}); err != nil {
		t.Fatal(err)
	}
	if es, _ := mustList(t, s, "del/", "", 0); len(es) != 1 || es[0].Key != "del/y" {
		t.Fatalf("after deleting del/a and del/b, List = %q, want only del/y", keysOf(es))
	}
}

func testTxnOpOrder(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		ops  []store.Op
		want string // "" means absent
	}{
		{"put then delete", []store.Op{store.Put("order/k", []byte("1")), store.Delete("order/k")}, ""},
		{"delete then put", []store.Op{store.Delete("order/k"), store.Put("order/k", []byte("2"))}, "2"},
		{"put twice", []store.Op{store.Put("order/k", []byte("a")), store.Put("order/k", []byte("b"))}, "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustPut(t, s, "order/k", "initial")
			rev, err := s.Txn(t.Context(), nil, tc.ops)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				expectAbsent(t, s, "order/k")
			} else {
				expect(t, s, "order/k", tc.want, rev)
			}
		})
	}
}

func testTxnComparesOnly(t *testing.T, s store.Store) {
	ctx := t.Context()
	ra := mustPut(t, s, "cmp/a", "a")
	if _, err := s.Txn(ctx, []store.Compare{{Key: "cmp/a", Revision: ra}, {Key: "cmp/b", Revision: store.MustNotExist}}, nil); err != nil {
		t.Fatalf("Txn with holding compares and no ops: %v", err)
	}
	if _, err := s.Txn(ctx, []store.Compare{{Key: "cmp/a", Revision: store.MustNotExist}}, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Txn with a failing compare and no ops = %v, want ErrConflict", err)
	}
	if _, err := s.Txn(ctx, nil, nil); err != nil {
		t.Fatalf("empty Txn: %v", err)
	}
	expect(t, s, "cmp/a", "a", ra)
}

func testTxnVisibleAtomically(t *testing.T, s store.Store) {
	// A writer moves two keys together; readers listing both must never see
	// them at different values or revisions.
	ctx := t.Context()
	pair := func(i int) []store.Op {
		v := []byte(strconv.Itoa(i))
		return []store.Op{store.Put("pair/a", v), store.Put("pair/b", v)}
	}
	if _, err := s.Txn(ctx, nil, pair(0)); err != nil {
		t.Fatal(err)
	}
	const writes = 40
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for reads := 0; ; reads++ {
				select {
				case <-done:
					if reads > 0 {
						return
					}
				default:
				}
				es, _, err := s.List(ctx, "pair/", "", 0)
				if err != nil {
					t.Errorf("List: %v", err)
					return
				}
				if len(es) != 2 || string(es[0].Value) != string(es[1].Value) || es[0].Revision != es[1].Revision {
					t.Errorf("List saw a transaction half applied: %+v", es)
					return
				}
			}
		}()
	}
	for i := 1; i <= writes; i++ {
		if _, err := s.Txn(ctx, nil, pair(i)); err != nil {
			t.Error(err)
			break
		}
	}
	close(done)
	wg.Wait()
	expectValue(t, s, "pair/a", strconv.Itoa(writes))
}

func testConcurrentUpdates(t *testing.T, s store.Store) {
	// Goroutines increment one counter through store.Update. Every increment
	// must land exactly once (no lost update), and every commit must get a
	// revision of its own.
	const (
		workers    = 8
		increments = 15
	)
	ctx := t.Context()
	var (
		mu   sync.Mutex
		revs = map[int64]bool{}
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			for i := 0; i < increments; {
				rev, err := store.Update(ctx, s, func(v *store.View) error {
					n := 0
					switch e, err := v.Get("count"); {
					case err == nil:
						if n, err = strconv.Atoi(string(e.Value)); err != nil {
							return err
						}
					case !errors.Is(err, store.ErrNotFound):
						return err
					}
					v.Put("count", []byte(strconv.Itoa(n+1)))
					v.Put(fmt.Sprintf("count/by/%d", w), []byte(strconv.Itoa(i+1)))
					return nil
				})
				if errors.Is(err, store.ErrConflict) {
					continue // Update gave up under contention; the increment did not land
				}
				if err != nil {
					t.Errorf("worker %d: Update: %v", w, err)
					return
				}
				if rev <= last {
					t.Errorf("worker %d: commit revision %d after %d, want increasing", w, rev, last)
				}
				last = rev
				mu.Lock()
				if revs[rev] {
					t.Errorf("two commits got revision %d", rev)
				}
				revs[rev] = true
				mu.Unlock()
				i++
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	expectValue(t, s, "count", strconv.Itoa(workers*increments))
	for w := range workers {
		expectValue(t, s, fmt.Sprintf("count/by/%d", w), strconv.Itoa(increments))
	}
	if len(revs) != workers*increments {
		t.Fatalf("%d distinct commit revisions, want %d", len(revs), workers*increments)
	}
}
