package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/store"
)

func TestInvertNameReversesOrder(t *testing.T) {
	const chars = "+-./0123456789=@ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "ab", "a/b", "a-b", "a+", "z", "Z", "0", "abc", "ab+", "ab/"}
	for range 500 {
		n := make([]byte, 1+r.IntN(6))
		for i := range n {
			n[i] = chars[r.IntN(len(chars))]
		}
		names = append(names, string(n))
	}
	for i := range len(names) {
		for j := range len(names) {
			a, b := names[i], names[j]
			if (a < b) != (invertName(a) > invertName(b)) && a != b {
				t.Fatalf("order of %q, %q not reversed: %q vs %q", a, b, invertName(a), invertName(b))
			}
		}
	}
	for _, n := range names {
		if err := store.ValidateKey(prefixListIndex + invertName(n)); err != nil {
			t.Fatalf("inverted %q is not a valid key: %v", n, err)
		}
	}
}

func TestEpochWireFormat(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1523477145, 713_000_000), "1523477145.713"},
		{time.Unix(1523477145, 0), "1523477145.000"},
		{time.Unix(1523477145, 999_999_999), "1523477145.999"},
		{time.Unix(0, 5_000_000), "0.005"},
	}
	for _, tc := range tests {
		b, err := json.Marshal(epoch(tc.t))
		if err != nil || string(b) != tc.want {
			t.Fatalf("marshal %v = %s, %v; want %s", tc.t, b, err, tc.want)
		}
		var back epoch
		if err := json.Unmarshal(b, &back); err != nil || !time.Time(back).Equal(tc.t.Truncate(time.Millisecond)) {
			t.Fatalf("round trip of %s = %v, %v", b, time.Time(back), err)
		}
	}
	if epochOf(0) != nil {
		t.Fatal("epochOf(0) is not nil")
	}
}

func TestWords(t *testing.T) {
	tests := map[string][]string{
		"credsDatabase#892": {"creds", "Database", "892"},
		"My_Secret":         {"My", "Secret"},
		"prod/db-main":      {"prod", "db", "main"},
		"ABC":               {"ABC"},
		"v2beta":            {"v", "2", "beta"},
		"":                  nil,
		"//":                nil,
	}
	for in, want := range tests {
		if got := words(in); !slices.Equal(got, want) {
			t.Errorf("words(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRecordsCarryFormatVersion(t *testing.T) {
	e := newEnv(t)
	e.create("s", "v")
	e.ok("DeleteSecret", map[string]any{"SecretId": "s"})
	e.ok("RestoreSecret", map[string]any{"SecretId": "s"})
	e.ok("ListSecrets", map[string]any{"MaxResults": 1})
	e.create("t", "v")
	e.create("u", "v")
	e.ok("DeleteSecret", map[string]any{"SecretId": "u"}) // a deletion-schedule entry
	e.ok("ListSecrets", map[string]any{"MaxResults": 1})  // seals a token
	kinds := map[string]bool{}
	for _, en := range dump(t, e.store) {
		kinds[en.Key[:len("secrets/x/")]] = true
		var v struct{ V *int }
		if err := json.Unmarshal(en.Value, &v); err != nil || v.V == nil || *v.V != formatVersion {
			t.Fatalf("record %q has no format version", en.Key)
		}
	}
	if len(kinds) != 6 { // n, x, v, i, d, k
		t.Fatalf("checked record kinds %v, want all six", kinds)
	}
	// A record from a future format is refused, not misread.
	if _, err := e.store.Put(context.Background(), nameKey("future"), []byte(`{"v":2,"id":"x","name":"future","arn":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.call("DescribeSecret", map[string]any{"SecretId": "future"}); err == nil || strings.Contains(fmt.Sprint(err), "Exception") {
		t.Fatalf("future record: %v, want an internal error", err)
	}
}

// countingStore counts reads.
type countingStore struct {
	store.Store
	mu          sync.Mutex
	gets, lists int
	listed      int
}

func (c *countingStore) Get(ctx context.Context, key string) (store.Entry, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

func (c *countingStore) List(ctx context.Context, prefix, after string, limit int) ([]store.Entry, string, error) {
	es, next, err := c.Store.List(ctx, prefix, after, limit)
	c.mu.Lock()
	c.lists++
	c.listed += len(es)
	c.mu.Unlock()
	return es, next, err
}

func (c *countingStore) reset() (gets, lists, listed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gets, lists, listed = c.gets, c.lists, c.listed
	c.gets, c.lists, c.listed = 0, 0, 0
	return
}

func TestStoreReadsPerOperation(t *testing.T) {
	cs := &countingStore{Store: openTestStore(t)}
	e := newEnvOn(t, cs)
	for i := range 150 {
		e.create(fmt.Sprintf("n%03d", i), "v")
	}
	arn := e.create("hot", "value")
	e.value("hot") // the first read of the day records LastAccessedDate
	// The record is read from the store on every call; the AWSCURRENT
	// version comes from the version cache once it has been read.
	for _, id := range []string{"hot", arn} {
		cs.reset()
		e.value(id)
		if gets, lists, _ := cs.reset(); gets != 1 || lists != 0 {
			t.Fatalf("GetSecretValue(%s) did %d Gets and %d Lists, want 1 (the record) and 0", id, gets, lists)
		}
	}
	// Without the caches (or on a cold cache), a read is the record and the
	// version.
	cold := newEnvOn(t, cs, func(c *Config) { c.CacheBytes = -1 })
	for _, id := range []string{"hot", arn} {
		cs.reset()
		cold.value(id)
		if gets, lists, _ := cs.reset(); gets != 2 || lists != 0 {
			t.Fatalf("uncached GetSecretValue(%s) did %d Gets and %d Lists, want 2 and 0", id, gets, lists)
		}
	}
	// A ListSecrets page reads a bounded slice of the index, not every
	// secret.
	for _, sortBy := range []string{"name", "created-date"} {
		cs.reset()
		out := okAs[listSecretsOutput](e, "ListSecrets", map[string]any{"MaxResults": 10, "SortBy": sortBy})
		gets, _, listed := cs.reset()
		if len(out.SecretList) != 10 || listed > 20 || gets > 11 {
			t.Fatalf("ListSecrets by %s: %d secrets, %d entries listed, %d Gets", sortBy, len(out.SecretList), listed, gets)
		}
	}
}
