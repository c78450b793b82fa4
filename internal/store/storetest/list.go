package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"sigil.dev/sigil/internal/store"
)

func testOrdering(t *testing.T, s store.Store) {
	// Keys that are prefixes of each other, that differ only after a common
	// prefix, in upper and lower case, and multi-byte UTF-8 whose bytewise
	// order differs from naive rune-by-rune expectations of some languages.
	keys := []string{
		"a", "a/", "a/b", "a/b/c", "a0", "a\x7f", "ab", "a b", "a-b", "a.b",
		"b", "B", "Z", "e", "é", "ẞ", "日本", "日本語", "😀", "~", "\x01", "\u0080", "\uffff",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(keys)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		mustPut(t, s, k, "v:"+k)
	}
	want := slices.Clone(keys)
	slices.Sort(want) // Go compares strings bytewise

	es, next := mustList(t, s, "", "", 0)
	if got := keysOf(es); !slices.Equal(got, want) {
		t.Fatalf("List order:\n got  %q\n want %q (bytewise)", got, want)
	}
	if next != "" {
		t.Fatalf("List with no limit returned next = %q, want \"\"", next)
	}
	for _, e := range es {
		if string(e.Value) != "v:"+e.Key {
			t.Fatalf("List: %q has value %q, want %q", e.Key, e.Value, "v:"+e.Key)
		}
	}
	if got := keysOf(listAll(t, s, "", 1)); !slices.Equal(got, want) {
		t.Fatalf("List one key at a time:\n got  %q\n want %q", got, want)
	}
}

func testPrefixIsolation(t *testing.T, s store.Store) {
	for _, k := range []string{"secret", "secre", "secret/a", "secret/b", "secret/b/c", "secret0", "secrets/x", "other", "Secret/a"} {
		mustPut(t, s, k, k)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"secret/", []string{"secret/a", "secret/b", "secret/b/c"}},
		{"secret/b", []string{"secret/b", "secret/b/c"}},
		{"secret", []string{"secret", "secret/a", "secret/b", "secret/b/c", "secret0", "secrets/x"}},
		{"secrets/", []string{"secrets/x"}},
		{"S", []string{"Secret/a"}},
		{"missing/", nil},
		{"", []string{"Secret/a", "other", "secre", "secret", "secret/a", "secret/b", "secret/b/c", "secret0", "secrets/x"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.prefix), func(t *testing.T) {
			for _, limit := range []int{0, 1, 2, 100} {
				got := keysOf(listAll(t, s, tc.prefix, limit))
				if !slices.Equal(got, tc.want) {
					t.Fatalf("List(%q) with pages of %d = %q, want %q", tc.prefix, limit, got, tc.want)
				}
			}
		})
	}
}

func testListCursors(t *testing.T, s store.Store) {
	for i := range 10 {
		mustPut(t, s, fmt.Sprintf("cur/%02d", i*2), value(i)) // cur/00, cur/02, ... cur/18
	}
	mustPut(t, s, "cup", "before the prefix")
	mustPut(t, s, "cus", "after the prefix")
	tests := []struct {
		name     string
		after    string
		limit    int
		want     []string
		wantNext string
	}{
		{"from the start", "", 3, []string{"cur/00", "cur/02", "cur/04"}, "cur/04"},
		{"strictly after an existing key", "cur/04", 2, []string{"cur/06", "cur/08"}, "cur/08"},
		{"after a key that does not exist", "cur/05", 2, []string{"cur/06", "cur/08"}, "cur/08"},
		{"after a key extending an existing one", "cur/04x", 1, []string{"cur/06"}, "cur/06"},
		{"cursor before the prefix", "cup", 2, []string{"cur/00", "cur/02"}, "cur/02"},
		{"cursor beyond the prefix", "cus", 5, nil, ""},
		{"last page exactly full", "cur/12", 3, []string{"cur/14", "cur/16", "cur/18"}, ""},
		{"last page short", "cur/14", 5, []string{"cur/16", "cur/18"}, ""},
		{"after the last key", "cur/18", 5, nil, ""},
		{"no limit", "cur/10", 0, []string{"cur/12", "cur/14", "cur/16", "cur/18"}, ""},
		{"negative limit", "cur/10", -1, []string{"cur/12", "cur/14", "cur/16", "cur/18"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, next := mustList(t, s, "cur/", tc.after, tc.limit)
			if got := keysOf(es); !slices.Equal(got, tc.want) {
				t.Fatalf("List(cur/, after %q, limit %d) = %q, want %q", tc.after, tc.limit, got, tc.want)
			}
			if next != tc.wantNext {
				t.Fatalf("List(cur/, after %q, limit %d) next = %q, want %q", tc.after, tc.limit, next, tc.wantNext)
			}
		})
	}
}

func testListPages(t *testing.T, s store.Store) {
	const n = 250
	var want []string
	for i := range n {
		k := fmt.Sprintf("page/%04d", i)
		want = append(want, k)
	}
	// Write in one transaction per 50 keys to keep the test fast on backends
	// that fsync every commit.
	for i := 0; i < n; i += 50 {
		var ops []store.Op
		for _, k := range want[i : i+50] {
			ops = append(ops, store.Put(k, []byte("v:"+k)))
		}
		if _, err := s.Txn(t.Context(), nil, ops); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"page", "pagd", "pagf", "page0"} {
		mustPut(t, s, k, "outside")
	}
	for _, limit := range []int{1, 7, 50, 100, 125, 249, 250, 251, 1000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var got []string
			after, pages := "", 0
			for {
				es, next := mustList(t, s, "page/", after, limit)
				pages++
				if len(es) > limit {
					t.Fatalf("page %d has %d entries, more than the limit %d", pages, len(es), limit)
				}
				for _, e := range es {
					if string(e.Value) != "v:"+e.Key {
						t.Fatalf("%q has value %q", e.Key, e.Value)
					}
				}
				got = append(got, keysOf(es)...)
				if next == "" {
					break
				}
				if len(es) != limit {
					t.Fatalf("page %d has %d entries and a next cursor; only the last page may be short of %d", pages, len(es), limit)
				}
				if next != es[len(es)-1].Key {
					t.Fatalf("page %d: next = %q, want the last key returned, %q", pages, next, es[len(es)-1].Key)
				}
				if pages > n+1 {
					t.Fatal("paging does not terminate")
				}
				after = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pages of %d returned %d keys, want each of the %d exactly once in order", limit, len(got), n)
			}
			if wantPages := (n + limit - 1) / limit; pages != wantPages {
				t.Fatalf("pages of %d took %d calls, want %d (no empty trailing page)", limit, pages, wantPages)
			}
		})
	}
}

func testListPagesWhileWriting(t *testing.T, s store.Store) {
	// Even-numbered keys exist from the start; between pages the test adds an
	// odd key behind the cursor (already passed: must not appear), an odd key
	// ahead of it (must appear), and deletes the cursor key itself (paging
	// must continue after it regardless).
	const n = 60
	var ops []store.Op
	for i := 0; i < n; i += 2 {
		ops = append(ops, store.Put(fmt.Sprintf("walk/%03d", i), []byte("v")))
	}
	if _, err := s.Txn(t.Context(), nil, ops); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	added := map[string]bool{}
	var order []string
	after := ""
	for range n {
		es, next := mustList(t, s, "walk/", after, 5)
		for _, e := range es {
			seen[e.Key]++
			order = append(order, e.Key)
		}
		if next == "" {
			break
		}
		var cur int
		if _, err := fmt.Sscanf(next, "walk/%03d", &cur); err != nil {
			t.Fatalf("unexpected cursor %q", next)
		}
		if cur >= 3 {
			behind := fmt.Sprintf("walk/%03d", cur-3)
			if _, ok := seen[behind]; !ok && (cur-3)%2 == 1 {
				mustPut(t, s, behind, "behind")
			}
		}
		ahead := fmt.Sprintf("walk/%03d", cur+3)
		if (cur+3)%2 == 1 && cur+3 < n {
			mustPut(t, s, ahead, "ahead")
			added[ahead] = true
		}
		mustDelete(t, s, next)
		after = next
	}
	if !slices.IsSorted(order) {
		t.Fatalf("keys across pages are not in order: %q", order)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%q listed %d times, want once", k, c)
		}
	}
	for i := 0; i < n; i += 2 {
		if k := fmt.Sprintf("walk/%03d", i); seen[k] != 1 {
			t.Errorf("%q existed throughout but was skipped", k)
		}
	}
	for k := range added {
		if seen[k] != 1 {
			t.Errorf("%q was added ahead of the cursor but not listed", k)
		}
	}
	for k := range seen {
		var i int
		if _, err := fmt.Sscanf(k, "walk/%03d", &i); err != nil {
			t.Fatalf("unexpected key %q", k)
		}
		if i%2 == 1 && !added[k] {
			t.Errorf("%q was added behind the cursor but listed", k)
		}
	}
}

// listAll pages through prefix with the given page size and returns every
// entry, checking the cursor contract on the way.
func listAll(t *testing.T, s store.Store, prefix string, limit int) []store.Entry {
	t.Helper()
	var all []store.Entry
	after := ""
	for range 100000 {
		es, next := mustList(t, s, prefix, after, limit)
		all = append(all, es...)
		if next == "" {
			return all
		}
		if len(es) == 0 || next != es[len(es)-1].Key {
			t.Fatalf("List(%q, %q, %d) returned %d entries and next %q; next must be the last key returned", prefix, after, limit, len(es), next)
		}
		after = next
	}
	t.Fatalf("List(%q) with pages of %d does not terminate", prefix, limit)
	return nil
}
