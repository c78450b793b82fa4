package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// segmentTail returns a segment's size and where its records end (its
// zero tail starts), failing the test when data follows the zeros.
func segmentTail(t *testing.T, path string) (size, end int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end, junk := zeroTail(data)
	if junk >= 0 {
		t.Fatalf("%s: data at offset %d after the zero tail at %d", path, junk, end)
	}
	return int64(len(data)), end
}

// writeAt overwrites path at off with b.
func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// lineOffsets returns the offset of every line of a segment's records.
func lineOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := zeroTail(data)
	var offs []int64
	for pos := int64(0); pos < end; {
		i := bytes.IndexByte(data[pos:end], '\n')
		if i < 0 {
			break
		}
		offs = append(offs, pos)
		pos += int64(i) + 1
	}
	return offs
}

// liveLog opens a log, records n events and returns it open with a
// snapshot of its directory as a crash at that moment would leave it.
func liveLog(t *testing.T, n int, o Options) (l *Log, dir, crashed string, keys *Keys) {
	t.Helper()
	dir = t.TempDir()
	keys = testKeys(t)
	o.Keys = keys
	l = openLog(t, dir, o)
	for i := range n {
		record(t, l, sampleEvent(i))
	}
	return l, dir, copyDir(t, dir), keys
}

// TestZeroTailLiveSegment: the segment being written is zero-filled ahead
// of its records; a crash leaves that zero tail, which verifies as the end
// of the log (no torn record, nothing abandoned), and a writer opened
// afterwards continues the chain from the last record before it. A clean
// Close cuts the zeros off.
func TestZeroTailLiveSegment(t *testing.T) {
	l, dir, crashed, keys := liveLog(t, 10, Options{CheckpointEvery: 4})
	seg := segmentPaths(t, crashed)[0]
	size, end := segmentTail(t, seg)
	if size <= end {
		t.Fatalf("live segment is %d bytes with records up to %d: no zero tail was written", size, end)
	}

	rep := mustVerify(t, crashed, keys, false)
	if !rep.OK() || rep.Records != 10 || rep.Torn != nil || rep.Sealed || len(rep.Abandoned) != 0 {
		t.Fatalf("crashed log: %+v %v", rep, rep.Problem)
	}
	if last, err := LastSequence(crashed); err != nil || last != rep.LastSequence {
		t.Fatalf("LastSequence = %d, %v; want %d", last, err, rep.LastSequence)
	}
	n := 0
	if err := Query(crashed, Filter{}, func(Record) error { n++; return nil }); err != nil || n != 10 {
		t.Fatalf("query of the crashed log: %d records, %v", n, err)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if size, end := segmentTail(t, segmentPaths(t, dir)[0]); size != end {
		t.Fatalf("closed segment is %d bytes with records up to %d: the zero tail was not dropped", size, end)
	}
	if rep := mustVerify(t, dir, keys, true); !rep.OK() || !rep.Sealed || rep.Records != 10 {
		t.Fatalf("closed log: %+v %v", rep, rep.Problem)
	}

	l2 := openLog(t, crashed, Options{Keys: keys})
	record(t, l2, sampleEvent(11))
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	rep2 := mustVerify(t, crashed, keys, true)
	if !rep2.OK() || rep2.Records != 11 || rep2.Segments != 2 || len(rep2.Abandoned) != 0 || rep2.Torn != nil {
		t.Fatalf("after restart: %+v %v", rep2, rep2.Problem)
	}
	var hdr *Record
	if err := Query(crashed, Filter{IncludeControl: true, AfterSequence: rep.LastSequence}, func(r Record) error {
		if hdr == nil {
			hdr = &r
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if hdr == nil || hdr.AdditionalEventData.StartReason != reasonRecover {
		t.Fatalf("first line after restart: %+v", hdr)
	}
	if !strings.Contains(string(hdr.Raw), `"previousSegmentBytes":`+strconv.FormatInt(end, 10)+`,`) {
		t.Fatalf("header does not count the %d bytes of records before the zero tail: %s", end, hdr.Raw)
	}
}

// TestZeroTailAfterCleanClose: zeros after the final checkpoint (a close
// whose truncation did not reach the disk) or after the records of a
// rotated segment change nothing: the log is still sealed and reads the
// same.
func TestZeroTailAfterCleanClose(t *testing.T) {
	src, keys := buildLog(t, 60)
	dir := copyDir(t, src)
	ps := segmentPaths(t, dir)
	if len(ps) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(ps))
	}
	for _, p := range []string{ps[0], ps[len(ps)-1]} {
		size, _ := segmentTail(t, p)
		writeAt(t, p, size, make([]byte, 10000))
	}
	rep := mustVerify(t, dir, keys, true)
	if !rep.OK() || !rep.Sealed || rep.Records != 60 || rep.Torn != nil || len(rep.Abandoned) != 0 {
		t.Fatalf("sealed log with zero tails: %+v %v", rep, rep.Problem)
	}
	n := 0
	if err := Query(dir, Filter{}, func(Record) error { n++; return nil }); err != nil || n != 60 {
		t.Fatalf("query: %d records, %v", n, err)
	}
	l := openLog(t, dir, Options{Keys: keys})
	record(t, l, sampleEvent(61))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, dir, keys, true); !rep.OK() || rep.Records != 61 {
		t.Fatalf("after reopening: %+v %v", rep, rep.Problem)
	}
}

// TestZeroTailTampering: zeros end the records of a segment, and nothing
// may follow them: data after zeros, a record replaced by zeros, or the
// last records of a rotated segment replaced by zeros are all found.
func TestZeroTailTampering(t *testing.T) {
	junkLine := []byte(`{"eventVersion":"1.09","eventTime":"2026-01-02T03:04:05Z"}` + "\n")
	tests := []struct {
		name string
		// edit changes the log in dir; live says whether it is the
		// snapshot of an open log rather than a closed one.
		live bool
		edit func(t *testing.T, dir string)
		kind ProblemKind
		msg  string
	}{
		{
			name: "data after the zero tail of the live segment",
			live: true,
			edit: func(t *testing.T, dir string) {
				p := segmentPaths(t, dir)[0]
				_, end := segmentTail(t, p)
				writeAt(t, p, end+100, junkLine)
			},
			kind: ProblemMalformed, msg: "follows the zero-filled end",
		},
		{
			name: "torn record then data after zeros",
			live: true,
			edit: func(t *testing.T, dir string) {
				p := segmentPaths(t, dir)[0]
				_, end := segmentTail(t, p)
				writeAt(t, p, end, []byte(`{"eventVersion":"1.0`))
				writeAt(t, p, end+4096, junkLine)
			},
			kind: ProblemMalformed, msg: "follows the zero-filled end",
		},
		{
			name: "a record of the live segment replaced by zeros",
			live: true,
			edit: func(t *testing.T, dir string) {
				p := segmentPaths(t, dir)[0]
				offs := lineOffsets(t, p)
				writeAt(t, p, offs[3], make([]byte, offs[4]-offs[3]))
			},
			kind: ProblemMalformed, msg: "follows the zero-filled end",
		},
		{
			name: "part of a record of the live segment zeroed",
			live: true,
			edit: func(t *testing.T, dir string) {
				p := segmentPaths(t, dir)[0]
				offs := lineOffsets(t, p)
				writeAt(t, p, offs[3]+10, make([]byte, 5))
			},
			kind: ProblemMalformed, msg: "follows the zero-filled end",
		},
		{
			name: "a record of a rotated segment replaced by zeros",
			edit: func(t *testing.T, dir string) {
				p := segmentPaths(t, dir)[0]
				offs := lineOffsets(t, p)
				writeAt(t, p, offs[2], make([]byte, offs[3]-offs[2]))
			},
			kind: ProblemMalformed, msg: "follows the zero-filled end",
		},
		{
			name: "the last records of a rotated segment replaced by zeros",
			edit: func(t *testing.T, dir string) {
				p := segmentPaths(t, dir)[0]
				offs := lineOffsets(t, p)
				size, _ := segmentTail(t, p)
				writeAt(t, p, offs[len(offs)-2], make([]byte, size-offs[len(offs)-2]))
			},
			kind: ProblemTruncated, msg: "it was truncated",
		},
		{
			name: "data after the zero tail of a rotated segment",
			edit: func(t *testing.T, dir string) {
				p := segmentPaths(t, dir)[0]
				size, _ := segmentTail(t, p)
				writeAt(t, p, size+50, junkLine)
			},
			// The next header counts the records, so what follows them
			// is abandoned, not read: reported, but not tampering.
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dir string
			var keys *Keys
			if tt.live {
				var l *Log
				l, _, dir, keys = liveLog(t, 12, Options{CheckpointEvery: 5})
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				var src string
				src, keys = buildLog(t, 60)
				dir = copyDir(t, src)
			}
			tt.edit(t, dir)
			rep := mustVerify(t, dir, keys, false)
			if tt.kind == "" {
				if !rep.OK() || len(rep.Abandoned) != 1 || rep.Abandoned[0].Bytes != 50+int64(len(junkLine)) {
					t.Fatalf("report %+v, problem %v", rep, rep.Problem)
				}
				return
			}
			if rep.Problem == nil || rep.Problem.Kind != tt.kind || !strings.Contains(rep.Problem.Message, tt.msg) {
				t.Fatalf("problem %v, want %s containing %q", rep.Problem, tt.kind, tt.msg)
			}
			if tt.live && tt.kind == ProblemMalformed && strings.Contains(tt.msg, "zero-filled") {
				// The writer refuses to continue such a log.
				_, err := Open(dir, Options{Keys: keys})
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open after %s: %v, want ErrCorrupt", tt.name, err)
				}
			}
		})
	}
}

// TestZeroTailTornTail: a torn record followed by zeros is a torn tail,
// the zeros are not counted in it, and a restart declares exactly the torn
// bytes abandoned.
func TestZeroTailTornTail(t *testing.T) {
	l, _, crashed, keys := liveLog(t, 6, Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	p := segmentPaths(t, crashed)[0]
	size, end := segmentTail(t, p)
	torn := []byte(`{"eventVersion":"1.09","eventTime":"2026-01-02T03:0`)
	if size-end < int64(len(torn))+1 {
		t.Fatalf("no room for the torn record in the zero tail (%d bytes)", size-end)
	}
	writeAt(t, p, end, torn)
	rep := mustVerify(t, crashed, keys, false)
	if !rep.OK() || rep.Torn == nil || rep.Torn.Offset != end || rep.Torn.Bytes != int64(len(torn)) || rep.Records != 6 {
		t.Fatalf("torn log: %+v %v", rep, rep.Problem)
	}
	l2 := openLog(t, crashed, Options{Keys: keys})
	record(t, l2, sampleEvent(7))
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	rep = mustVerify(t, crashed, keys, true)
	if !rep.OK() || rep.Torn != nil || len(rep.Abandoned) != 1 || rep.Abandoned[0].Offset != end || rep.Abandoned[0].Bytes != int64(len(torn)) {
		t.Fatalf("after restart: %+v %v", rep, rep.Problem)
	}
}

// TestZeroTailRotation: segments are zero-filled up to SegmentSize and no
// further, rotated segments keep no zeros, and only the live one has a
// tail.
func TestZeroTailRotation(t *testing.T) {
	const segSize = 160 << 10
	l, dir, _, keys := liveLog(t, 600, Options{SegmentSize: segSize})
	ps := segmentPaths(t, dir)
	if len(ps) < 3 {
		t.Fatalf("only %d segments", len(ps))
	}
	for i, p := range ps {
		size, end := segmentTail(t, p)
		switch {
		case size > segSize+4096:
			t.Fatalf("%s is %d bytes, past the segment size", p, size)
		case i < len(ps)-1 && size != end:
			t.Fatalf("rotated %s kept a zero tail: %d bytes, records up to %d", p, size, end)
		case i == len(ps)-1 && size <= end:
			t.Fatalf("live %s has no zero tail", p)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, dir, keys, true); !rep.OK() || rep.Records != 600 {
		t.Fatalf("report %+v, problem %v", rep, rep.Problem)
	}
}

// TestRecordsHoldNoNUL: the zero tail rule needs records without NUL
// bytes; NULs in every kind of field are escaped.
func TestRecordsHoldNoNUL(t *testing.T) {
	l, dir, _, _ := liveLog(t, 0, Options{})
	ev := sampleEvent(1)
	ev.RequestID = "a\x00b"
	ev.UserAgent = "\x00"
	ev.ErrorCode = "Bad\x00"
	ev.ErrorMessage = "nul \x00 here"
	ev.Resources = []string{"arn:\x00"}
	ev.RequestParameters = map[string]any{"secretId": "x\x00y", "k\x00": []any{"\x00"}}
	ev.ResponseElements = json.RawMessage(`{"name":"\u0000","Password":"\u0000"}`)
	if err := l.Record(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range segmentPaths(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			t.Fatalf("%s holds a NUL byte at %d", filepath.Base(p), i)
		}
		if !bytes.Contains(b, []byte(`a\u0000b`)) {
			t.Fatalf("%s does not hold the escaped request id", filepath.Base(p))
		}
	}
}
