package testutil

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// WaitFor polls cond until it is true or timeout passes, then fails the
// test. Use it instead of sleeping.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(delay)
	}
}

// AssertNotInDir fails the test if any file under dir contains needle,
// except the files named in allow (base names). It reads every byte of every
// regular file, so it finds a value however it was stored.
func AssertNotInDir(t testing.TB, dir, needle string, allow ...string) {
	t.Helper()
	if needle == "" {
		t.Fatal("AssertNotInDir: empty needle")
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		for _, a := range allow {
			if d.Name() == a {
				return nil
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(b, []byte(needle)) {
			t.Errorf("%s contains the planted value", path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("searching %s: %v", dir, err)
	}
	if files == 0 {
		t.Fatalf("searching %s: no files to search", dir)
	}
}
