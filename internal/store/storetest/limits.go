package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"sigil.dev/sigil/internal/store"
)

func testLargeValues(t *testing.T, s store.Store, max int) {
	ctx := t.Context()
	big := make([]byte, max)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	rev, err := s.Put(ctx, "big/max", big)
	if err != nil {
		t.Fatalf("Put of MaxValueSize bytes: %v", err)
	}
	e, err := s.Get(ctx, "big/max")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Value, big) || e.Revision != rev {
		t.Fatalf("Get of a MaxValueSize value returned %d bytes at revision %d, want the %d bytes written at %d",
			len(e.Value), e.Revision, len(big), rev)
	}

	tooBig := append(big, 0)
	if _, err := s.Put(ctx, "big/over", tooBig); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Put of MaxValueSize+1 bytes = %v, want ErrTooLarge", err)
	}
	expectAbsent(t, s, "big/over")

	if _, err := s.Put(ctx, "big/max", tooBig); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("overwriting with MaxValueSize+1 bytes = %v, want ErrTooLarge", err)
	}
	expectUnchanged(t, s, e)

	_, err = s.Txn(ctx, nil, []store.Op{store.Put("big/small", []byte("fits")), store.Put("big/over", tooBig)})
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Txn with one oversized value = %v, want ErrTooLarge", err)
	}
	expectAbsent(t, s, "big/small")
	expectAbsent(t, s, "big/over")
}

func testInvalidKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	longest := strings.Repeat("k", store.MaxKeySize)
	mustPut(t, s, longest, "the longest key")
	expectValue(t, s, longest, "the longest key")

	bad := []struct{ name, key string }{
		{"empty", ""},
		{"too long", longest + "k"},
		{"invalid UTF-8", "bad/\xff\xfe"},
		{"truncated UTF-8", "bad/\xe6\x97"},
		{"NUL", "bad/a\x00b"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			calls := []struct {
				name string
				call func() error
			}{
				{"Get", func() error { _, err := s.Get(ctx, tc.key); return err }},
				{"Put", func() error { _, err := s.Put(ctx, tc.key, []byte("v")); return err }},
				{"Delete", func() error { return s.Delete(ctx, tc.key) }},
				{"Txn compare", func() error {
					_, err := s.Txn(ctx, []store.Compare{{Key: tc.key}}, []store.Op{store.Put("bad/ok", []byte("v"))})
					return err
				}},
				{"Txn op", func() error {
					_, err := s.Txn(ctx, nil, []store.Op{store.Put("bad/ok", []byte("v")), store.Put(tc.key, []byte("v"))})
					return err
				}},
			}
			for _, c := range calls {
				if err := c.call(); !errors.Is(err, store.ErrInvalidKey) {
					t.Errorf("%s(%q) = %v, want ErrInvalidKey", c.name, tc.key, err)
				}
			}
		})
	}
	es, _ := mustList(t, s, "", "", 0)
	if len(es) != 1 || es[0].Key != longest {
		t.Fatalf("after rejected writes the store holds %d keys, want only the one written before", len(es))
	}
}

func testInvalidOps(t *testing.T, s store.Store) {
	ctx := t.Context()
	before := expectValueAfterPut(t, s, "ops/a", "a")
	tests := []struct {
		name string
		cmps []store.Compare
		ops  []store.Op
	}{
		{"unknown op kind", nil, []store.Op{store.Put("ops/b", []byte("b")), {Kind: 99, Key: "ops/a"}}},
		{"zero op kind", nil, []store.Op{store.Put("ops/b", []byte("b")), {Key: "ops/a"}}},
		{"negative compare revision", []store.Compare{{Key: "ops/a", Revision: -1}}, []store.Op{store.Put("ops/b", []byte("b"))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Txn(ctx, tc.cmps, tc.ops); err == nil {
				t.Fatal("Txn accepted it")
			}
			expectUnchanged(t, s, before)
			expectAbsent(t, s, "ops/b")
		})
	}
}

func expectValueAfterPut(t *testing.T, s store.Store, key, value string) store.Entry {
	t.Helper()
	mustPut(t, s, key, value)
	return expectValue(t, s, key, value)
}

func testClosed(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "closed/a", "a")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "closed/a"); return err }},
		{"List", func() error { _, _, err := s.List(ctx, "", "", 0); return err }},
		{"Put", func() error { _, err := s.Put(ctx, "closed/b", []byte("b")); return err }},
		{"Delete", func() error { return s.Delete(ctx, "closed/a") }},
		{"Txn", func() error { _, err := s.Txn(ctx, nil, []store.Op{store.Put("closed/b", nil)}); return err }},
		{"Update", func() error {
			_, err := store.Update(ctx, s, func(v *store.View) error { v.Put("closed/b", nil); return nil })
			return err
		}},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s on a closed store = %v, want ErrClosed", c.name, err)
		}
	}
}

func testCloseWhileBusy(t *testing.T, s store.Store) {
	// Requests racing with Close either complete or report ErrClosed;
	// none fails otherwise, hangs or crashes.
	ctx := t.Context()
	mustPut(t, s, "busy/a", "a")
	var wg sync.WaitGroup
	started := make(chan struct{}, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var err error
				if w%2 == 0 {
					_, err = s.Get(ctx, "busy/a")
				} else {
					_, err = s.Put(ctx, fmt.Sprintf("busy/%d/%d", w, i), []byte("v"))
				}
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("worker %d: %v, want nil or ErrClosed", w, err)
					return
				}
			}
		}()
	}
	for range 4 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close while busy: %v", err)
	}
	wg.Wait()
}

func testCanceledContext(t *testing.T, s store.Store) {
	mustPut(t, s, "ctx/a", "a")
	ctx := canceled(t)
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "ctx/a"); return err }},
		{"List", func() error { _, _, err := s.List(ctx, "", "", 0); return err }},
		{"Put", func() error { _, err := s.Put(ctx, "ctx/b", []byte("b")); return err }},
		{"Delete", func() error { return s.Delete(ctx, "ctx/a") }},
		{"Txn", func() error { _, err := s.Txn(ctx, nil, []store.Op{store.Put("ctx/b", nil)}); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", c.name, err)
		}
	}
	expectAbsent(t, s, "ctx/b")
	expectValue(t, s, "ctx/a", "a")
}
