package audit

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCrashChild is the child process of TestCrashKill9: it writes records
// in sync mode from several goroutines and prints each acknowledged
// sequence number with its request id, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("SIGIL_AUDIT_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process for TestCrashKill9")
	}
	keys, err := LoadOrCreateKeys(filepath.Dir(dir), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, Options{Keys: keys, CheckpointEvery: 50})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	deadline := time.Now().Add(60 * time.Second) // never outlive a lost parent
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				ev := sampleEvent(i)
				ev.RequestID = fmt.Sprintf("crash-%d-%d", g, i)
				seq, err := l.Append(context.Background(), ev)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %s\n", seq, ev.RequestID)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrashKill9 SIGKILLs a process in the middle of writing records and
// checks that every acknowledged record survived, that the log verifies
// (OK, or a torn tail), and that a new writer continues the chain.
func TestCrashKill9(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "audit")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SIGIL_AUDIT_CRASH_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		seq, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("bad child line %q", sc.Text())
		}
		acked[seq] = f[2]
		if len(acked) >= 400 && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", err)
	}

	keys, err := LoadOrCreateKeys(base, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The killed writer left its segment zero-filled past the last
	// record: the verification and restart below read through a zero tail.
	ps := segmentPaths(t, dir)
	data, err := os.ReadFile(ps[len(ps)-1])
	if err != nil {
		t.Fatal(err)
	}
	if end, junk := zeroTail(data); junk >= 0 || end == int64(len(data)) {
		t.Fatalf("killed segment: records end at %d of %d bytes, data after the zeros at %d: want a zero tail only", end, len(data), junk)
	}
	rep := mustVerify(t, dir, keys, false)
	if !rep.OK() {
		t.Fatalf("after kill -9: %v", rep.Problem)
	}
	if rep.Sealed {
		t.Fatal("a killed log claims a clean close")
	}
	t.Logf("killed after %d acks: %d records, last sequence %d, unsigned %d, torn %v", len(acked), rep.Records, rep.LastSequence, rep.Unsigned, rep.Torn)

	found := map[uint64]string{}
	if err := Query(dir, Filter{}, func(r Record) error {
		found[r.AdditionalEventData.Sequence] = r.RequestID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for seq, id := range acked {
		if found[seq] != id {
			t.Fatalf("acknowledged record %d (%s) is missing or different: %q", seq, id, found[seq])
		}
	}

	l, err := Open(dir, Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := l.Append(context.Background(), sampleEvent(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The new segment's header takes sequence LastSequence+1.
	if seq != rep.LastSequence+2 {
		t.Fatalf("first record after restart has sequence %d, want %d", seq, rep.LastSequence+2)
	}
	var hdr *Record
	if err := Query(dir, Filter{IncludeControl: true, AfterSequence: rep.LastSequence}, func(r Record) error {
		if hdr == nil {
			hdr = &r
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if hdr == nil || hdr.EventName != NameSegmentStart || hdr.AdditionalEventData.StartReason != reasonRecover {
		t.Fatalf("first line after restart: %+v", hdr)
	}
	rep2 := mustVerify(t, dir, keys, true)
	if !rep2.OK() || rep2.Records != rep.Records+1 || rep2.Segments != rep.Segments+1 {
		t.Fatalf("after restart: %+v %v", rep2, rep2.Problem)
	}
}
