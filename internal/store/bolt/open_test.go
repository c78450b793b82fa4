package bolt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"sigil.dev/sigil/internal/store"
)

// makeStore creates a store at a new path holding n keys with 500-byte
// values, closes it and returns the path.
func makeStore(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sigil.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 100 {
		var ops []store.Op
		for j := i; j < min(i+100, n); j++ {
			ops = append(ops, store.Put(testKey(j), testValue(j)))
		}
		if _, err := db.Txn(t.Context(), nil, ops); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func testKey(i int) string { return fmt.Sprintf("secrets/%05d", i) }

func testValue(i int) []byte {
	return bytes.Repeat([]byte{byte('a' + i%26)}, 500)
}

// checkStore opens path and checks that it holds keys 0..n-1.
func checkStore(t *testing.T, path string, n int) {
	t.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	es, _, err := db.List(t.Context(), "secrets/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != n {
		t.Fatalf("store holds %d keys, want %d", len(es), n)
	}
	for i, e := range es {
		if e.Key != testKey(i) || !bytes.Equal(e.Value, testValue(i)) {
			t.Fatalf("entry %d is %q, want %q with its value", i, e.Key, testKey(i))
		}
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sigil.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// expectRefused checks that Open refuses path with an error wrapping want
// that names the file and says what to do, leaves the file byte for byte
// as it was, and releases the file (a second attempt is refused the same
// way, not as locked).
func expectRefused(t *testing.T, path string, want error) error {
	t.Helper()
	before := fileSum(t, path)
	db, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		db.Close()
		t.Fatalf("Open accepted the file, want an error wrapping %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Open = %v, want an error wrapping %v", err, want)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || !(strings.Contains(msg, "restore") || strings.Contains(msg, "sigil release")) {
		t.Errorf("error %q should name the file and say what to do", msg)
	}
	if fileSum(t, path) != before {
		t.Fatal("Open modified a file it refused")
	}
	if _, err := Open(path, Options{Timeout: -1}); !errors.Is(err, want) {
		t.Fatalf("second Open = %v, want %v again (the first must release the file)", err, want)
	}
	return err
}

func TestOpenRefusesNonBoltFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"testdata/bad_random.db", read("bad_random.db")},
		{"testdata/bad_text.db", read("bad_text.db")},
		{"one byte", []byte{0}},
		{"short text", []byte("hello")},
		{"random 100 bytes", random(100)},
		{"random 4 KiB", random(4096)},
		{"random 100 KiB", random(100 << 10)},
		{"zeros 64 KiB", make([]byte, 64<<10)},
		{"sqlite header", append([]byte("SQLite format 3\x00"), make([]byte, 8192)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, writeFile(t, tc.data), ErrCorrupt)
		})
	}
}

func TestOpenEmptyFile(t *testing.T) {
	// bbolt initialises a zero-length file; that is how a store starts.
	path := writeFile(t, nil)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of an empty file: %v", err)
	}
	if _, err := db.Put(t.Context(), testKey(0), testValue(0)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkStore(t, path, 1)
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("new store file has mode %o, want 600", perm)
	}
	if db.Path() != path {
		t.Fatalf("Path() = %q, want %q", db.Path(), path)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "no", "such", "dir", "sigil.db"), Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open in a missing directory = %v, want fs.ErrNotExist", err)
	}
	if errors.Is(err, ErrCorrupt) {
		t.Fatalf("a missing directory is not corruption: %v", err)
	}
}

func TestReopenKeepsDataAndRevision(t *testing.T) {
	path := makeStore(t, 150)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	last, err := db.Get(t.Context(), testKey(149))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := db.Put(t.Context(), "after/reopen", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if rev <= last.Revision {
		t.Fatalf("first Put after reopening got revision %d, want > %d", rev, last.Revision)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkStore(t, path, 150)

	// Opening and closing a healthy store writes nothing.
	before := fileSum(t, path)
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, path) != before {
		t.Fatal("opening and closing a store changed the file")
	}
}

// newestMeta returns the meta page bbolt uses for the file at path.
func newestMeta(t *testing.T, path string) boltMeta {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m0 := readMeta(f, 0)
	if m0.err != nil {
		t.Fatal(m0.err)
	}
	m1 := readMeta(f, int64(m0.pageSize))
	if m1.err == nil && m1.txid > m0.txid {
		return m1
	}
	return m0
}

// highWater returns the page size and the number of pages that the newest
// valid meta page of the file at path says exist.
func highWater(t *testing.T, path string) (pageSize, pages int64) {
	t.Helper()
	m := newestMeta(t, path)
	return int64(m.pageSize), int64(m.pgid)
}

func TestOpenDamagedPagesReadWhileOpening(t *testing.T) {
	// bbolt reads the freelist page and the root page inside bbolt.Open and
	// panics on damage there; Open must refuse such a file cleanly instead.
	tests := []struct {
		name   string
		page   func(m boltMeta) uint64
		offset int
		value  uint16
	}{
		{"freelist page type", func(m boltMeta) uint64 { return m.freelist }, 8, leafPageFlag},
		{"freelist page id", func(m boltMeta) uint64 { return m.freelist }, 0, 0xbeef},
		{"freelist overflow", func(m boltMeta) uint64 { return m.freelist }, 12, 0xffff},
		{"root page type", func(m boltMeta) uint64 { return m.root }, 8, freelistPageFlag},
		{"root page id", func(m boltMeta) uint64 { return m.root }, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := makeStore(t, 100)
			m := newestMeta(t, path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			off := int64(tc.page(m))*int64(m.pageSize) + int64(tc.offset)
			binary.NativeEndian.PutUint16(data[off:], tc.value)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			expectRefused(t, path, ErrCorrupt)
		})
	}
}

func TestOpenTruncated(t *testing.T) {
	src := makeStore(t, 300)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	ps, pages := highWater(t, src)
	need := ps * pages
	if need < 8*ps || need > int64(len(data)) {
		t.Fatalf("test store has %d pages of %d bytes in a %d-byte file; want a larger store", pages, ps, len(data))
	}
	tests := []struct {
		name string
		size int64
	}{
		{"one page short", need - ps},
		{"one byte short", need - 1},
		{"half", need / 2},
		{"meta pages only", 2 * ps},
		{"one page and a byte", ps + 1},
		{"one page", ps},
		{"100 bytes", 100},
		{"1 byte", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := expectRefused(t, writeFile(t, data[:tc.size]), ErrCorrupt)
			if tc.size > 2*minPageSize && !strings.Contains(err.Error(), "truncated") {
				t.Errorf("error %q should say the file was truncated", err)
			}
		})
	}
	t.Run("at the high-water mark", func(t *testing.T) {
		// Pages past the high-water mark are preallocated space: cutting
		// them off loses nothing, and the store must still open.
		path := writeFile(t, data[:need])
		checkStore(t, path, 300)
	})
}

// rewriteMetas applies change to both meta pages of the file at path and
// fixes their checksums if fix is set.
func rewriteMetas(t *testing.T, path string, which []int, fix bool, change func(meta []byte)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := highWater(t, path)
	for _, i := range which {
		meta := data[int64(i)*ps+pageHeaderSize:][:metaSize]
		change(meta)
		if fix {
			h := fnv.New64a()
			h.Write(meta[:checksumOffset])
			binary.NativeEndian.PutUint64(meta[checksumOffset:], h.Sum64())
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDamagedMeta(t *testing.T) {
	tests := []struct {
		name   string
		which  []int
		fix    bool
		change func(meta []byte)
		want   error // nil: the store opens intact
	}{
		{"both magic numbers", []int{0, 1}, false, func(m []byte) { m[0] ^= 0xff }, ErrCorrupt},
		{"both checksums", []int{0, 1}, false, func(m []byte) { m[checksumOffset] ^= 1 }, ErrCorrupt},
		{"both page counts, checksums fixed", []int{0, 1}, true, func(m []byte) { binary.NativeEndian.PutUint64(m[40:], 1<<50) }, ErrCorrupt},
		{"newer bbolt file format", []int{0, 1}, true, func(m []byte) { binary.NativeEndian.PutUint32(m[4:], 3) }, ErrUnsupportedFormat},
		{"first meta page only", []int{0}, false, func(m []byte) { m[0] ^= 0xff }, nil},
		{"second meta page only", []int{1}, false, func(m []byte) { m[checksumOffset] ^= 1 }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := makeStore(t, 100)
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// One more commit, so the two meta pages are two commits apart
			// from the data checked below and either one still describes it.
			if _, err := db.Put(t.Context(), "last", []byte("x")); err != nil {
				t.Fatal(err)
			}
			db.Close()
			rewriteMetas(t, path, tc.which, tc.fix, tc.change)
			if tc.want != nil {
				expectRefused(t, path, tc.want)
				return
			}
			checkStore(t, path, 100)
		})
	}
}

// editBolt changes the file at path through bbolt directly.
func editBolt(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	bdb, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenChecksFormatRecord(t *testing.T) {
	tests := []struct {
		name string
		edit func(tx *bbolt.Tx) error
		want error
		says string
	}{
		{"newer format version", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(formatKey, encodeUint(FormatVersion+1))
		}, ErrUnsupportedFormat, "format version 2"},
		{"format version zero", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(formatKey, encodeUint(0))
		}, ErrUnsupportedFormat, "format version 0"},
		{"format record missing", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Delete(formatKey)
		}, ErrCorrupt, `"format"`},
		{"format record damaged", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(formatKey, []byte{1})
		}, ErrCorrupt, `"format"`},
		{"revision record missing", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Delete(revisionKey)
		}, ErrCorrupt, `"revision"`},
		{"revision impossible", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(revisionKey, encodeUint(1<<63))
		}, ErrCorrupt, `"revision"`},
		{"kv bucket missing", func(tx *bbolt.Tx) error {
			return tx.DeleteBucket(kvBucket)
		}, ErrCorrupt, `"kv"`},
		{"meta bucket missing", func(tx *bbolt.Tx) error {
			return tx.DeleteBucket(metaBucket)
		}, ErrCorrupt, "not a sigil store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := makeStore(t, 10)
			editBolt(t, path, tc.edit)
			err := expectRefused(t, path, tc.want)
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q should mention %s", err, tc.says)
			}
		})
	}
}

func TestOpenRefusesForeignBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	editBolt(t, path, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("users"))
		if err != nil {
			return err
		}
		return b.Put([]byte("alice"), []byte("admin"))
	})
	err := expectRefused(t, path, ErrCorrupt)
	if !strings.Contains(err.Error(), "not a sigil store") || !strings.Contains(err.Error(), `"users"`) {
		t.Errorf("error %q should say it is a bbolt file of something else", err)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sigil.db")
	first, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	for _, timeout := range []time.Duration{-1, 150 * time.Millisecond} {
		_, err := Open(path, Options{Timeout: timeout, Logger: log})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("Open with timeout %s of a file in use = %v, want ErrLocked", timeout, err)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "other sigil process") {
			t.Errorf("error %q should name the file and say what to do", err)
		}
	}
	if !strings.Contains(logs.String(), "locked by another process") {
		t.Errorf("Open did not log that it was waiting for the lock; logs:\n%s", logs.String())
	}
	if _, err := first.Put(t.Context(), "still", []byte("works")); err != nil {
		t.Fatalf("the first DB was disturbed by the refused Opens: %v", err)
	}

	// The lock comes free while the second Open waits.
	done := make(chan error, 1)
	go func() {
		db, err := Open(path, Options{Timeout: time.Minute, Logger: log})
		if err == nil {
			_, err = db.Get(t.Context(), "still")
			db.Close()
		}
		done <- err
	}()
	waitFor(t, func() bool { return strings.Count(logs.String(), "waiting") >= 2 })
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Open waiting for the lock: %v", err)
	}
}

func TestLogsNoValues(t *testing.T) {
	var logs syncBuffer
	path := filepath.Join(t.TempDir(), "sigil.db")
	db, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	const planted = "PLANTED-VALUE-3f9a"
	rev, err := db.Put(t.Context(), "k", []byte(planted))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Txn(t.Context(), []store.Compare{{Key: "k", Revision: rev + 1}}, []store.Op{store.Put("k", []byte(planted))})
	if !errors.Is(err, store.ErrConflict) || strings.Contains(err.Error(), planted) {
		t.Fatalf("conflict error = %v; want ErrConflict without the value", err)
	}
	_, err = db.Put(t.Context(), "k", append([]byte(planted), make([]byte, store.MaxValueSize)...))
	if !errors.Is(err, store.ErrTooLarge) || strings.Contains(err.Error(), planted) {
		t.Fatalf("too-large error = %v; want ErrTooLarge without the value", err)
	}
	db.Close()
	if !strings.Contains(logs.String(), "store opened") || !strings.Contains(logs.String(), "store closed") {
		t.Errorf("missing open/close log lines:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), planted) {
		t.Fatalf("a value reached the log:\n%s", logs.String())
	}
}

func TestDamagedEntries(t *testing.T) {
	path := makeStore(t, 3)
	editBolt(t, path, func(tx *bbolt.Tx) error {
		kv := tx.Bucket(kvBucket)
		if err := kv.Put([]byte("bad/short"), []byte{1, 2, 3}); err != nil {
			return err
		}
		return kv.Put([]byte("bad/zero"), make([]byte, revSize+4))
	})
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	for _, key := range []string{"bad/short", "bad/zero"} {
		if _, err := db.Get(ctx, key); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Get(%q) = %v, want ErrCorrupt", key, err)
		}
		if _, err := db.Txn(ctx, []store.Compare{{Key: key, Revision: 1}}, []store.Op{store.Put("x", nil)}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Txn comparing %q = %v, want ErrCorrupt", key, err)
		}
	}
	if _, _, err := db.List(ctx, "bad/", "", 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("List over damaged entries = %v, want ErrCorrupt", err)
	}
	if _, err := db.Get(ctx, testKey(1)); err != nil {
		t.Errorf("healthy entries must stay readable: %v", err)
	}
	if es, _, err := db.List(ctx, "secrets/", "", 0); err != nil || len(es) != 3 {
		t.Errorf("List of healthy entries = %d, %v", len(es), err)
	}
}

// damageLeafPages overwrites the page type of every leaf page of the file
// at path, the kind of damage only reading those pages reveals.
func damageLeafPages(t *testing.T, path string) {
	t.Helper()
	ps, pages := highWater(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const leafPage, flagsOffset = 0x02, 8
	damaged := 0
	for id := int64(2); id < pages; id++ {
		flags := data[id*ps+flagsOffset:]
		if binary.NativeEndian.Uint16(flags) == leafPage {
			binary.NativeEndian.PutUint16(flags, 0x40)
			damaged++
		}
	}
	if damaged == 0 {
		t.Fatal("no leaf page found")
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	path := makeStore(t, 200)
	db, err := Open(path, Options{Verify: true})
	if err != nil {
		t.Fatalf("Open with Verify of a healthy store: %v", err)
	}
	db.Close()

	damageLeafPages(t, path)
	expectRefused(t, path, ErrCorrupt)
}

func TestDamagedPagesFailRequests(t *testing.T) {
	// Without Verify the damage is found when a request reads it: the
	// request fails with ErrCorrupt and the process carries on.
	path := makeStore(t, 200)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	damageLeafPages(t, path)
	db, err = Open(path, Options{})
	if errors.Is(err, ErrCorrupt) {
		return // found while opening: also acceptable
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Get(t.Context(), testKey(150)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get through a damaged page = %v, want ErrCorrupt", err)
	}
	if _, _, err := db.List(t.Context(), "secrets/", "", 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("List through a damaged page = %v, want ErrCorrupt", err)
	}
	if _, err := db.Put(t.Context(), testKey(150), []byte("x")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Put through a damaged page = %v, want ErrCorrupt", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds, failing the test after ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
