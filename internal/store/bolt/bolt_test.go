package bolt_test

import (
	"path/filepath"
	"testing"

	"sigil.dev/sigil/internal/store"
	"sigil.dev/sigil/internal/store/bolt"
	"sigil.dev/sigil/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "sigil.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return db
	})
}

func TestCrash(t *testing.T) {
	storetest.RunCrash(t, func(path string) (store.Store, error) {
		return bolt.Open(path, bolt.Options{})
	})
}
