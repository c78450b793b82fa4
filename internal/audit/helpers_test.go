package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/authn"
)

// testKeys returns fresh keys.
func testKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := NewKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openLog opens a log in dir with small test defaults and closes it at
// cleanup unless the test closed it.
func openLog(t testing.TB, dir string, o Options) *Log {
	t.Helper()
	if o.Keys == nil {
		o.Keys = testKeys(t)
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccountID == "" {
		o.AccountID = "123456789012"
	}
	l, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var testPrincipal = &authn.Principal{
	Kind:        authn.KindIAMUser,
	AccountID:   "123456789012",
	ARN:         "arn:aws:iam::123456789012:user/ci",
	ID:          "AIDAEXAMPLE",
	Name:        "ci",
	AccessKeyID: "AKIAEXAMPLE",
}

// sampleEvent returns a realistic GetSecretValue event numbered i.
func sampleEvent(i int) *Event {
	return &Event{
		Time:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		RequestID: fmt.Sprintf("req-%06d", i),
		SourceIP:  "10.0.0.7",
		UserAgent: "aws-sdk-go-v2/1.30 os/linux",
		Principal: testPrincipal,
		Source:    "secretsmanager.amazonaws.com",
		Action:    "GetSecretValue",
		Resources: []string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"},
		Allowed:   true,
		Reason:    "allow",
		Policy:    "arn:aws:iam::123456789012:policy/read-db",
		Statement: "ReadDB",
		ReadOnly:  true,
		Latency:   420 * time.Microsecond,
		RequestParameters: map[string]any{
			"secretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
		},
	}
}

// record appends events and fails the test on error.
func record(t testing.TB, l *Log, evs ...*Event) {
	t.Helper()
	for _, ev := range evs {
		if err := l.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// segmentPaths lists the segment files of dir in order.
func segmentPaths(t testing.TB, dir string) []string {
	t.Helper()
	segs, odd, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(odd) > 0 {
		t.Fatalf("odd files: %v", odd)
	}
	var out []string
	for _, s := range segs {
		out = append(out, filepath.Join(dir, s.name))
	}
	return out
}

// allLines returns every complete line of every segment, in order.
func allLines(t testing.TB, dir string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range segmentPaths(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				break
			}
			out = append(out, b[:i])
			b = b[i+1:]
		}
	}
	return out
}

// mustVerify verifies dir with the log's public key.
func mustVerify(t testing.TB, dir string, keys *Keys, sealed bool) *Report {
	t.Helper()
	rep, err := Verify(dir, VerifyOptions{PublicKey: keys.Public(), RequireSealed: sealed})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// countingFile wraps a real file and counts Sync calls; a non-nil fail
// makes Write or Sync fail while it returns an error.
type countingFile struct {
	f  *os.File
	fs *faultyFS
}

func (c *countingFile) WriteAt(p []byte, off int64) (int, error) {
	if err := c.fs.check("write"); err != nil {
		// A failing write may still have put part of the data on disk.
		n, _ := c.f.WriteAt(p[:len(p)/2], off)
		return n, err
	}
	return c.f.WriteAt(p, off)
}

func (c *countingFile) Truncate(size int64) error { return c.f.Truncate(size) }

func (c *countingFile) Sync() error {
	c.fs.mu.Lock()
	c.fs.syncs++
	c.fs.mu.Unlock()
	if err := c.fs.check("sync"); err != nil {
		return err
	}
	return datasync(c.f)
}

func (c *countingFile) Close() error { return c.f.Close() }

// faultyFS is an Options.OpenFile that counts syncs and injects failures.
type faultyFS struct {
	mu    sync.Mutex
	syncs int
	opens int
	// fail, when set, is consulted before each operation ("open", "write",
	// "sync"); a non-nil result fails it.
	fail func(op string) error
}

func (f *faultyFS) check(op string) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail == nil {
		return nil
	}
	return fail(op)
}

func (f *faultyFS) setFail(fn func(op string) error) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *faultyFS) Syncs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

func (f *faultyFS) open(name string, flag int, perm fs.FileMode) (File, error) {
	if err := f.check("open"); err != nil {
		return nil, err
	}
	file, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.opens++
	f.mu.Unlock()
	return &countingFile{f: file, fs: f}, nil
}

// filesContaining lists the files under dir whose bytes contain needle.
func filesContaining(t testing.TB, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(hits)
	return hits
}

// mustContain fails unless s contains every want.
func mustContain(t testing.TB, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Fatalf("%q does not contain %q", s, w)
		}
	}
}
