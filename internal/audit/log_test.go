package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testCounter(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

func TestRecordCloseVerify(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	l := openLog(t, dir, Options{Keys: keys})
	for i := range 10 {
		seq, err := l.Append(context.Background(), sampleEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		// Line 1 is the segment header.
		if want := uint64(i + 2); seq != want {
			t.Fatalf("event %d got sequence %d, want %d", i, seq, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), sampleEvent(99)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v, want ErrClosed", err)
	}
	rep := mustVerify(t, dir, keys, true)
	if !rep.OK() || rep.Records != 10 || rep.Segments != 1 || rep.Checkpoints != 1 || !rep.Sealed || rep.Unsigned != 0 || rep.LastSequence != 12 {
		t.Fatalf("report %+v, problem %v", rep, rep.Problem)
	}
	lines := allLines(t, dir)
	for i, line := range lines {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %d is not JSON: %v", i+1, err)
		}
		if r.AdditionalEventData.Sequence != uint64(i+1) {
			t.Fatalf("line %d has sequence %d", i+1, r.AdditionalEventData.Sequence)
		}
	}
}

func TestReopenContinuesChain(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	for run := range 3 {
		l := openLog(t, dir, Options{Keys: keys})
		record(t, l, sampleEvent(run))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustVerify(t, dir, keys, true)
	if !rep.OK() || rep.Segments != 3 || rep.Records != 3 || rep.Checkpoints != 3 || !rep.Sealed {
		t.Fatalf("report %+v, problem %v", rep, rep.Problem)
	}
	var reasons []string
	err := Query(dir, Filter{IncludeControl: true}, func(r Record) error {
		if r.EventName == NameSegmentStart {
			reasons = append(reasons, r.AdditionalEventData.StartReason)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(reasons) != "[start start start]" {
		t.Fatalf("start reasons %v", reasons)
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openLog(t, dir, Options{})
	if _, err := Open(dir, Options{Keys: testKeys(t)}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestOpenOptionErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"no keys", Options{}, ErrNoKeys},
		{"short hmac key", Options{Keys: &Keys{HMAC: []byte("short"), Signing: testKeys(t).Signing}}, ErrBadKey},
		{"no signing key", Options{Keys: &Keys{HMAC: make([]byte, 32)}}, ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(dir, tt.opts); !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestInvalidEvents(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{})
	big := make([]byte, MaxRecordBytes)
	for i := range big {
		big[i] = 'a'
	}
	tests := []struct {
		name string
		ev   *Event
	}{
		{"nil", nil},
		{"no action", &Event{Source: "sigil"}},
		{"no source", &Event{Action: "X"}},
		{"params not an object", &Event{Source: "sigil", Action: "X", RequestParameters: []string{"a"}}},
		{"params invalid JSON", &Event{Source: "sigil", Action: "X", RequestParameters: json.RawMessage(`{"a":`)}},
		{"too large", &Event{Source: "sigil", Action: "X", RequestParameters: map[string]string{"a": string(big)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Record(context.Background(), tt.ev); !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("Record: %v, want ErrInvalidEvent", err)
			}
		})
	}
	if !l.Healthy() {
		t.Fatal("invalid events made the log unhealthy")
	}
}

// TestGroupCommit shows that concurrent sync-mode records share fsyncs:
// 64 goroutines each wait for their own record, and the log needs far
// fewer Sync calls than records.
func TestGroupCommit(t *testing.T) {
	ffs := &faultyFS{}
	l := openLog(t, t.TempDir(), Options{OpenFile: ffs.open})
	const workers, each = 64, 20
	before := ffs.Syncs()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := l.Record(context.Background(), sampleEvent(w*each+i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	syncs := ffs.Syncs() - before
	if syncs >= workers*each/2 {
		t.Fatalf("%d syncs for %d records: group commit is not batching", syncs, workers*each)
	}
	t.Logf("%d records, %d fsyncs (%.1f records per fsync)", workers*each, syncs, float64(workers*each)/float64(syncs))
}

func TestCheckpointEveryAndRotation(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	l := openLog(t, dir, Options{Keys: keys, CheckpointEvery: 7, SegmentSize: 8 << 10})
	for i := range 200 {
		record(t, l, sampleEvent(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir, keys, true)
	if !rep.OK() || rep.Records != 200 {
		t.Fatalf("report %+v, problem %v", rep, rep.Problem)
	}
	if rep.Segments < 10 {
		t.Fatalf("only %d segments: rotation did not happen", rep.Segments)
	}
	// Every rotated segment ends with a checkpoint, plus one per 7 lines.
	if rep.Checkpoints < 200/7 {
		t.Fatalf("only %d checkpoints", rep.Checkpoints)
	}
	for _, p := range segmentPaths(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 8<<10+4096 {
			t.Fatalf("%s is %d bytes, far past the segment size", p, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", p, fi.Mode().Perm())
		}
	}
}

func TestCheckpointInterval(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	l := openLog(t, dir, Options{Keys: keys, CheckpointInterval: 5 * time.Millisecond})
	record(t, l, sampleEvent(1))
	waitFor(t, "a timed checkpoint", func() bool {
		rep := mustVerify(t, dir, keys, false)
		return rep.OK() && rep.Checkpoints >= 1 && rep.Unsigned == 0
	})
}

func TestAsyncDropsWhenQueueFull(t *testing.T) {
	ffs := &faultyFS{}
	block := make(chan struct{})
	var once sync.Once
	l := openLog(t, t.TempDir(), Options{Mode: ModeAsync, QueueSize: 4, MaxBatch: 1, OpenFile: ffs.open})
	// Stall the writer inside fsync so the queue fills up.
	entered := make(chan struct{})
	ffs.setFail(func(op string) error {
		if op == "sync" {
			once.Do(func() { close(entered) })
			<-block
		}
		return nil
	})
	record(t, l, sampleEvent(0))
	<-entered
	for i := range 20 {
		if err := l.Record(context.Background(), sampleEvent(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	close(block)
	ffs.setFail(nil)
	if got := testCounter(t, l.m.dropped.WithLabelValues("queue_full")); got < 20-4 {
		t.Fatalf("dropped %v records, want at least %d", got, 20-4)
	}
	// A ReturnsSecret event waits even in async mode.
	ev := sampleEvent(100)
	ev.ReturnsSecret = true
	seq, err := l.Append(context.Background(), ev)
	if err != nil || seq == 0 {
		t.Fatalf("ReturnsSecret event in async mode: seq %d, err %v", seq, err)
	}
}

// TestFailClosedFaultyWriter injects write and fsync failures: Record
// fails with ErrUnavailable, Healthy turns false, and the log recovers by
// itself once writing works, continuing one verifiable chain.
func TestFailClosedFaultyWriter(t *testing.T) {
	for _, op := range []string{"write", "sync", "open"} {
		t.Run(op, func(t *testing.T) {
			dir := t.TempDir()
			keys := testKeys(t)
			ffs := &faultyFS{}
			l := openLog(t, dir, Options{Keys: keys, OpenFile: ffs.open, RetryInterval: time.Hour})
			record(t, l, sampleEvent(1))
			ffs.setFail(func(o string) error {
				if o == op || (op == "open" && o == "write") {
					return syscall.ENOSPC
				}
				return nil
			})
			err := l.Record(context.Background(), sampleEvent(2))
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Record with a failing %s: %v, want ErrUnavailable wrapping ENOSPC", op, err)
			}
			if l.Healthy() || !errors.Is(l.Err(), ErrUnavailable) {
				t.Fatalf("Healthy %v, Err %v after a failure", l.Healthy(), l.Err())
			}
			// Still failing: still unavailable.
			if err := l.Record(context.Background(), sampleEvent(3)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("second Record: %v", err)
			}
			ffs.setFail(nil)
			record(t, l, sampleEvent(4))
			if !l.Healthy() || l.Err() != nil {
				t.Fatalf("log did not recover: %v", l.Err())
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep := mustVerify(t, dir, keys, true)
			if !rep.OK() || rep.Records != 2 {
				t.Fatalf("report %+v, problem %v", rep, rep.Problem)
			}
			var ids []string
			if err := Query(dir, Filter{}, func(r Record) error { ids = append(ids, r.RequestID); return nil }); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids) != "[req-000001 req-000004]" {
				t.Fatalf("records after recovery: %v", ids)
			}
		})
	}
}

// TestFailClosedRetriesWithoutTraffic: a log that failed closed becomes
// healthy again on its own (RetryInterval), so /readyz recovers even when
// no request arrives.
func TestFailClosedRetriesWithoutTraffic(t *testing.T) {
	ffs := &faultyFS{}
	l := openLog(t, t.TempDir(), Options{OpenFile: ffs.open, RetryInterval: time.Millisecond})
	ffs.setFail(func(string) error { return syscall.EIO })
	if err := l.Record(context.Background(), sampleEvent(1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Record: %v", err)
	}
	ffs.setFail(nil)
	waitFor(t, "the log to recover", l.Healthy)
}

func TestOpenOnFailingDirIsUnhealthy(t *testing.T) {
	ffs := &faultyFS{}
	ffs.setFail(func(string) error { return syscall.EROFS })
	l := openLog(t, t.TempDir(), Options{OpenFile: ffs.open, RetryInterval: time.Hour})
	if l.Healthy() {
		t.Fatal("a log that could not write its first segment is healthy")
	}
	if err := l.Record(context.Background(), sampleEvent(1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Record: %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	ffs := &faultyFS{}
	block := make(chan struct{})
	l := openLog(t, t.TempDir(), Options{OpenFile: ffs.open})
	ffs.setFail(func(op string) error {
		if op == "sync" {
			<-block
		}
		return nil
	})
	defer close(block)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Record(ctx, sampleEvent(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record with a cancelled context: %v", err)
	}
}
