package storetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/store"
)

// CrashChildEnv is the environment variable that makes a test binary act as
// the writing child of [RunCrash]; its value is the path of the store. The
// parent sets it only in the child's environment, together with the name of
// the test that must act as the child, so a stray value in a developer's
// shell does not change what a test run does.
const CrashChildEnv = "SIGIL_STORE_CRASH_CHILD"

// crashTestEnv names the test (t.Name()) that acts as the child.
const crashTestEnv = "SIGIL_STORE_CRASH_TEST"

// PathOpener opens the store kept at path, creating it if it does not exist.
// RunCrash calls it in the child and, after each kill, in the parent.
type PathOpener func(path string) (store.Store, error)

const (
	ackPrefix = "sigil-crash-ack "
	// crashDeadline bounds each round: the child must have acknowledged
	// enough writes by then.
	crashDeadline = time.Minute
	// childLifetime bounds a child whose parent died without killing it.
	childLifetime = 2 * time.Minute

	crashCounter = "crash/counter"
)

// crashRounds is how many acknowledgements the parent waits for in each
// round before it kills the child with SIGKILL.
var crashRounds = []int{150, 40, 220}

// RunCrash checks that every write a backend acknowledged survives kill -9.
// It must be called from the test function itself, as the first thing it
// does: it re-executes the test binary restricted to that test (the standard
// Go pattern of a test acting as its own child process).
//
// The child opens the store at a path and loops: a Txn that creates key
// crash/item/<i> and sets crash/counter to i under compare-and-swap, and
// every third iteration a Put of crash/put/<i> and a Delete of
// crash/put/<i-30>, printing a line after each call returned nil. The
// parent kills the child after a number of acknowledgements, reopens the
// store and checks that every acknowledged write is there with its exact
// value (and every acknowledged delete is gone), that the item keys are
// exactly 0..counter (the Txn was atomic), that revisions kept increasing
// across crashes, and that nothing else appeared. It does this for several
// rounds on the same file, so recovery from one crash is itself crashed.
func RunCrash(t *testing.T, open PathOpener) {
	t.Helper()
	if path := os.Getenv(CrashChildEnv); path != "" && os.Getenv(crashTestEnv) == t.Name() {
		crashChild(t, path, open)
		return
	}
	path := filepath.Join(t.TempDir(), "crash.store")
	st := &crashState{maxTxn: -1, put: map[int]bool{}, del: map[int]bool{}, interrupted: map[int]bool{}}
	for round, acks := range crashRounds {
		runCrashChild(t, path, acks, st)
		if t.Failed() {
			return
		}
		verifyCrash(t, path, open, st, round)
		if t.Failed() {
			return
		}
	}

	s, err := open(path)
	if err != nil {
		t.Fatalf("reopening after the last crash: %v", err)
	}
	defer func() { _ = s.Close() }()
	mustPut(t, s, "crash/after", "still writable")
	expectValue(t, s, "crash/after", "still writable")
}

// crashState is what the parent knows from the children's acknowledgements.
type crashState struct {
	maxTxn      int          // highest acknowledged item index, -1 for none
	put, del    map[int]bool // acknowledged Put and Delete of crash/put/<i>
	interrupted map[int]bool // iterations a kill may have cut short
}

// crashValue is the value of crash/item/<i> and crash/put/<i>: up to 5000
// bytes, so that some values span several pages.
func crashValue(i int) []byte {
	sum := sha256.Sum256([]byte(strconv.Itoa(i)))
	n := 1 + (i*997)%5000
	return bytes.Repeat(sum[:], n/len(sum)+1)[:n]
}

func itemKey(i int) string { return fmt.Sprintf("crash/item/%06d", i) }
func putKey(i int) string  { return fmt.Sprintf("crash/put/%06d", i) }

// crashChild is the child's loop; it runs until it is killed.
func crashChild(t *testing.T, path string, open PathOpener) {
	s, err := open(path)
	if err != nil {
		t.Fatalf("child: opening %s: %v", path, err)
	}
	ctx := context.Background()
	start, counterRev := 0, int64(store.MustNotExist)
	switch e, err := s.Get(ctx, crashCounter); {
	case err == nil:
		n, err := strconv.Atoi(string(e.Value))
		if err != nil {
			t.Fatalf("child: bad counter %q", e.Value)
		}
		start, counterRev = n+1, e.Revision
	case !errors.Is(err, store.ErrNotFound):
		t.Fatalf("child: reading the counter: %v", err)
	}
	ack := func(kind string, i int) { fmt.Fprintf(os.Stdout, "%s%s %d\n", ackPrefix, kind, i) }
	deadline := time.Now().Add(childLifetime)
	for i := start; time.Now().Before(deadline); i++ {
		rev, err := s.Txn(ctx,
			[]store.Compare{{Key: crashCounter, Revision: counterRev}, {Key: itemKey(i), Revision: store.MustNotExist}},
			[]store.Op{store.Put(itemKey(i), crashValue(i)), store.Put(crashCounter, []byte(strconv.Itoa(i)))})
		if err != nil {
			t.Fatalf("child: Txn %d: %v", i, err)
		}
		counterRev = rev
		ack("txn", i)
		if i%3 != 0 {
			continue
		}
		if _, err := s.Put(ctx, putKey(i), crashValue(i)); err != nil {
			t.Fatalf("child: Put %d: %v", i, err)
		}
		ack("put", i)
		if i >= 30 {
			if err := s.Delete(ctx, putKey(i-30)); err != nil {
				t.Fatalf("child: Delete %d: %v", i-30, err)
			}
			ack("del", i-30)
		}
	}
	_ = s.Close()
}

// runCrashChild starts the child on path, records its acknowledgements in
// st, and kills it with SIGKILL once it has acknowledged target writes.
func runCrashChild(t *testing.T, path string, target int, st *crashState) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+runPattern(t.Name()), "-test.count=1", "-test.timeout="+(childLifetime+time.Minute).String())
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, CrashChildEnv+"=") && !strings.HasPrefix(kv, crashTestEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, CrashChildEnv+"="+path, crashTestEnv+"="+t.Name())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child: %v", err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	timer := time.NewTimer(crashDeadline)
	defer timer.Stop()
	acks, killed, timedOut := 0, false, false
	var other []string
	kill := func() {
		if !killed {
			killed = true
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("killing the child: %v", err)
			}
		}
	}
	for open := true; open; {
		select {
		case line, ok := <-lines:
			if !ok {
				open = false
				break
			}
			// Lines read after the kill were written before it: they count.
			kind, i, isAck := parseAck(line)
			if !isAck {
				if len(other) < 40 {
					other = append(other, line)
				}
				continue
			}
			switch kind {
			case "txn":
				st.maxTxn = max(st.maxTxn, i)
			case "put":
				st.put[i] = true
			case "del":
				st.del[i] = true
			}
			if acks++; acks >= target {
				kill()
			}
		case <-timer.C:
			timedOut = true
			kill()
		}
	}
	werr := cmd.Wait()
	switch {
	case !killed:
		t.Fatalf("the child exited (%v) after %d of %d acknowledgements\nstdout:\n%s\nstderr:\n%s",
			werr, acks, target, strings.Join(other, "\n"), stderr.String())
	case timedOut:
		t.Fatalf("the child acknowledged only %d of %d writes within %s\nstdout:\n%s\nstderr:\n%s",
			acks, target, crashDeadline, strings.Join(other, "\n"), stderr.String())
	}
}

// parseAck parses a line the child printed after a write returned nil.
func parseAck(line string) (kind string, i int, ok bool) {
	rest, found := strings.CutPrefix(line, ackPrefix)
	if !found {
		return "", 0, false
	}
	kind, num, found := strings.Cut(rest, " ")
	n, err := strconv.Atoi(num)
	if !found || err != nil {
		return "", 0, false
	}
	return kind, n, true
}

// runPattern is a -test.run pattern matching exactly the (sub)test name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// verifyCrash reopens the store after a kill and checks it against st.
func verifyCrash(t *testing.T, path string, open PathOpener, st *crashState, round int) {
	t.Helper()
	s, err := open(path)
	if err != nil {
		t.Fatalf("round %d: reopening after kill -9: %v", round, err)
	}
	defer func() { _ = s.Close() }()
	ctx := t.Context()

	ce, err := s.Get(ctx, crashCounter)
	if err != nil {
		t.Fatalf("round %d: the counter is gone after %d acknowledged transactions: %v", round, st.maxTxn+1, err)
	}
	c, err := strconv.Atoi(string(ce.Value))
	if err != nil {
		t.Fatalf("round %d: counter holds %q", round, ce.Value)
	}
	if c < st.maxTxn {
		t.Fatalf("round %d: acknowledged transaction %d was lost: the store's counter is %d", round, st.maxTxn, c)
	}

	items, _ := mustList(t, s, "crash/item/", "", 0)
	if len(items) != c+1 {
		t.Fatalf("round %d: %d items for counter %d, want %d (a transaction was torn or an item lost)", round, len(items), c, c+1)
	}
	for i, e := range items {
		if e.Key != itemKey(i) || !bytes.Equal(e.Value, crashValue(i)) {
			t.Fatalf("round %d: entry %d is %q with %d bytes, want %q with its %d-byte value", round, i, e.Key, len(e.Value), itemKey(i), len(crashValue(i)))
		}
		if i > 0 && e.Revision <= items[i-1].Revision {
			t.Fatalf("round %d: %q has revision %d, not above the previous item's %d: revisions went backwards across a crash",
				round, e.Key, e.Revision, items[i-1].Revision)
		}
	}
	if last := items[c]; last.Revision != ce.Revision {
		t.Fatalf("round %d: the last item has revision %d but the counter written with it has %d", round, last.Revision, ce.Revision)
	}

	// An iteration is done if a later one started (the child is sequential)
	// and no kill interrupted it; the last one may be cut short anywhere.
	done := func(k int) bool { return k < c && !st.interrupted[k] }
	puts, _ := mustList(t, s, "crash/put/", "", 0)
	present := map[int][]byte{}
	for _, e := range puts {
		var j int
		if _, err := fmt.Sscanf(e.Key, "crash/put/%06d", &j); err != nil || j%3 != 0 || j > c {
			t.Fatalf("round %d: unexpected key %q", round, e.Key)
		}
		present[j] = e.Value
	}
	for j := 0; j <= c; j += 3 {
		v, has := present[j]
		putDone := done(j) || st.put[j]
		delDone := done(j+30) || st.del[j]
		delNotStarted := j+30 > c
		switch {
		case delDone && has:
			t.Fatalf("round %d: %q is present although its Delete was acknowledged or completed", round, putKey(j))
		case putDone && delNotStarted && !has:
			t.Fatalf("round %d: acknowledged Put of %q was lost", round, putKey(j))
		case has && !bytes.Equal(v, crashValue(j)):
			t.Fatalf("round %d: %q holds %d bytes, not the %d written", round, putKey(j), len(v), len(crashValue(j)))
		}
	}
	st.interrupted[c] = true
	st.maxTxn = c
	t.Logf("round %d: %d transactions survived kill -9 intact", round, c+1)
}
