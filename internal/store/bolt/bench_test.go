package bolt_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
)

// openBench opens a fresh store for a benchmark.
func openBench(b *testing.B) *bolt.DB {
	b.Helper()
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// fill writes n keys under prefix with 200-byte values, 500 per commit.
func fill(b *testing.B, db *bolt.DB, prefix string, n int) {
	b.Helper()
	value := bytes.Repeat([]byte("v"), 200)
	for i := 0; i < n; i += 500 {
		var ops []store.Op
		for j := i; j < min(i+500, n); j++ {
			ops = append(ops, store.Put(fmt.Sprintf("%s%06d", prefix, j), value))
		}
		if _, err := db.Txn(b.Context(), nil, ops); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet reads one 200-byte value from a store of 10,000 keys: the
// cost under every secret read.
func BenchmarkGet(b *testing.B) {
	db := openBench(b)
	fill(b, db, "secrets/", 10000)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := db.Get(ctx, "secrets/004711"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallel is BenchmarkGet from GOMAXPROCS goroutines at once.
func BenchmarkGetParallel(b *testing.B) {
	db := openBench(b)
	fill(b, db, "secrets/", 10000)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.Get(ctx, "secrets/004711"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPut writes one 200-byte value per durable (fsynced) commit.
func BenchmarkPut(b *testing.B) {
	db := openBench(b)
	ctx := b.Context()
	value := bytes.Repeat([]byte("v"), 200)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := db.Put(ctx, fmt.Sprintf("secrets/%08d", i), value); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTxn commits a compare-and-swap of two keys (two compares, two
// puts of 200 bytes), the shape of a typical secret update.
func BenchmarkTxn(b *testing.B) {
	db := openBench(b)
	ctx := b.Context()
	value := bytes.Repeat([]byte("v"), 200)
	rev, err := db.Txn(ctx, nil, []store.Op{store.Put("secrets/a", value), store.Put("secrets/b", value)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rev, err = db.Txn(ctx,
			[]store.Compare{{Key: "secrets/a", Revision: rev}, {Key: "secrets/b", Revision: rev}},
			[]store.Op{store.Put("secrets/a", value), store.Put("secrets/b", value)})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList reads a page of 100 entries of 200 bytes from a prefix of
// 10,000.
func BenchmarkList(b *testing.B) {
	db := openBench(b)
	fill(b, db, "secrets/", 10000)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		es, _, err := db.List(ctx, "secrets/", "secrets/005000", 100)
		if err != nil {
			b.Fatal(err)
		}
		if len(es) != 100 {
			b.Fatalf("got %d entries", len(es))
		}
	}
}
