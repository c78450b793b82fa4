package barrier

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
	"sigil.dev/sigil/internal/store/storetest"
)

// TestNoPlaintextInBoltFiles runs the barrier over a real bolt store laid out
// as `sigil server` lays out its data directory, plants a distinctive value
// through every write path, and then searches every byte of every file in the
// directory for the value and the data keys, raw, hex and base64.
func TestNoPlaintextInBoltFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kek, err := FileKEK{Path: filepath.Join(dir, "sigil.kek")}.KEK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "sigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := New(db, Options{})
	t.Cleanup(func() { b.Close() })
	if err := b.Initialize(ctx, kek); err != nil {
		t.Fatal(err)
	}

	marker := []byte("sigil-bolt-marker-d41d8cd98f00b204-" + hex.EncodeToString(testKEK(88)[:6]))
	value := bytes.Repeat(append(bytes.Clone(marker), ' '), 40) // a longer value too
	mustPut(t, b, "secrets/put", value)
	if _, err := b.Txn(ctx, nil, []store.Op{store.Put("secrets/txn", marker)}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, b, func(v *store.View) error {
		v.Put("secrets/update", marker)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ { // overwrite and delete so that freed pages exist too
		mustPut(t, b, fmt.Sprintf("secrets/churn/%d", i), marker)
	}
	for i := 0; i < 50; i += 2 {
		if err := b.Delete(ctx, fmt.Sprintf("secrets/churn/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if e := mustGet(t, b, "secrets/put"); !bytes.Equal(e.Value, value) {
		t.Fatal("planted value does not read back")
	}

	needles := map[string][]byte{"marker": marker}
	for _, k := range b.state.Load().ring.keys {
		needles[fmt.Sprintf("data key %d", k.term)] = bytes.Clone(k.key[:])
	}
	for name, n := range needles {
		needles[name+" (hex)"] = []byte(hex.EncodeToString(n))
		needles[name+" (base64)"] = []byte(base64.StdEncoding.EncodeToString(n))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s contains the %s", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 2 {
		t.Fatalf("searched %d files; expected the store and the key file", files)
	}
	// The search must be able to fail: the store file is searched as bytes,
	// and an unencrypted value written directly to the inner store is found.
	db, err = bolt.Open(filepath.Join(dir, "sigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, db, "control", marker)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "sigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, marker) {
		t.Fatal("control: a plaintext value written without the barrier was not found in the file, so the search proves nothing")
	}
}

// TestConformanceOverBolt runs the store conformance suite against the
// barrier over a real bolt file: the barrier is a Store like any other.
func TestConformanceOverBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		dir := t.TempDir()
		db, err := bolt.Open(filepath.Join(dir, "sigil.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b := New(db, Options{})
		t.Cleanup(func() { b.Close() })
		if err := b.Initialize(context.Background(), testKEK(7)[:]); err != nil {
			t.Fatal(err)
		}
		return b
	}, storetest.WithMaxValueSize(MaxValueSize))
}
