package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// buildLog writes a closed log of n events over several segments, with a
// checkpoint every 5 lines.
func buildLog(t *testing.T, n int) (string, *Keys) {
	t.Helper()
	dir := t.TempDir()
	keys := testKeys(t)
	l := openLog(t, dir, Options{Keys: keys, CheckpointEvery: 5, SegmentSize: 6 << 10})
	for i := range n {
		record(t, l, sampleEvent(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, keys
}

// copyDir copies the segment files of src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, p := range segmentPaths(t, src) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// segLines splits a segment into lines (without newlines) and the bytes
// after the last newline.
func segLines(t *testing.T, path string) ([][]byte, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return lines, b
		}
		lines = append(lines, b[:i])
		b = b[i+1:]
	}
}

func writeLines(t *testing.T, path string, lines [][]byte, tail []byte) {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	buf.Write(tail)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// editSegment rewrites segment i (0-based) of dir with fn.
func editSegment(t *testing.T, dir string, i int, fn func([][]byte) [][]byte) {
	t.Helper()
	p := segmentPaths(t, dir)[i]
	lines, tail := segLines(t, p)
	writeLines(t, p, fn(lines), tail)
}

// firstEventLine returns the index of the first event line at or after
// from (skipping control records).
func firstEventLine(lines [][]byte, from int) int {
	for i := from; i < len(lines); i++ {
		if !bytes.HasPrefix(lines[i], []byte(controlPrefix)) {
			return i
		}
	}
	return -1
}

func lineSeq(t *testing.T, line []byte) uint64 {
	t.Helper()
	seq, _, ok := parseChain(line)
	if !ok {
		t.Fatalf("line does not parse: %s", line)
	}
	return seq
}

// relink rewrites line's chain fields to seq and prev.
func relink(t *testing.T, line []byte, seq uint64, prev [32]byte) []byte {
	t.Helper()
	i := bytes.LastIndex(line, []byte(seqField))
	if i < 0 {
		t.Fatal("no sequence field")
	}
	return appendChainSuffix(bytes.Clone(line[:i]), seq, &prev)
}

func TestVerifyTamperMatrix(t *testing.T) {
	src, keys := buildLog(t, 60)
	if n := len(segmentPaths(t, src)); n < 3 {
		t.Fatalf("want at least 3 segments, got %d", n)
	}
	clean := mustVerify(t, src, keys, true)
	if !clean.OK() || clean.Records != 60 || !clean.Sealed {
		t.Fatalf("clean log: %+v %v", clean, clean.Problem)
	}
	other := testKeys(t)
	tests := []struct {
		name     string
		tamper   func(t *testing.T, dir string)
		pub      []byte
		sealed   bool
		kind     ProblemKind
		message  string
		segment  int // index of the segment the problem must name, -1 for none
		sequence uint64
	}{
		{
			name: "edit a byte",
			tamper: func(t *testing.T, dir string) {
				editSegment(t, dir, 0, func(ls [][]byte) [][]byte {
					i := firstEventLine(ls, 2)
					ls[i] = bytes.Replace(ls[i], []byte("aws-sdk-go-v2"), []byte("aws-sdk-go-v3"), 1)
					return ls
				})
			},
			kind: ProblemModified, message: "record 3 was modified", segment: 0, sequence: 3,
		},
		{
			name: "delete a record",
			tamper: func(t *testing.T, dir string) {
				editSegment(t, dir, 1, func(ls [][]byte) [][]byte {
					i := firstEventLine(ls, 2)
					return append(ls[:i:i], ls[i+1:]...)
				})
			},
			kind: ProblemDeleted, message: "was deleted", segment: 1,
		},
		{
			name: "swap two records",
			tamper: func(t *testing.T, dir string) {
				editSegment(t, dir, 0, func(ls [][]byte) [][]byte {
					ls[2], ls[3] = ls[3], ls[2]
					return ls
				})
			},
			kind: ProblemReordered, message: "sequence 4 comes before 3", segment: 0, sequence: 3,
		},
		{
			name: "insert a forged record",
			tamper: func(t *testing.T, dir string) {
				editSegment(t, dir, 0, func(ls [][]byte) [][]byte {
					// A copy of line 2 claiming to be record 3, linked to
					// record 2: the forger can compute the hash, but the
					// real record 3 follows.
					forged := bytes.Replace(ls[1], []byte("req-000000"), []byte("req-FORGED"), 1)
					forged = relink(t, forged, 3, sha256.Sum256(ls[1]))
					return append(ls[:2:2], append([][]byte{forged}, ls[2:]...)...)
				})
			},
			kind: ProblemInserted, message: "sequence 3 appears twice", segment: 0,
		},
		{
			name: "insert a forged record and recompute the chain",
			tamper: func(t *testing.T, dir string) {
				// The forger renumbers and relinks everything after the
				// insertion, but cannot re-sign the next checkpoint.
				editSegment(t, dir, 0, func(ls [][]byte) [][]byte {
					forged := bytes.Replace(ls[1], []byte("req-000000"), []byte("req-FORGED"), 1)
					out := append(ls[:2:2], append([][]byte{forged}, ls[2:]...)...)
					for i := 2; i < len(out); i++ {
						out[i] = relink(t, out[i], uint64(i+1), sha256.Sum256(out[i-1]))
					}
					return out
				})
			},
			kind: ProblemSignature, message: "records 1 to 6 were altered and the chain recomputed", segment: 0, sequence: 7,
		},
		{
			name: "truncate the tail at a record boundary (sealed required)",
			tamper: func(t *testing.T, dir string) {
				ps := segmentPaths(t, dir)
				editSegment(t, dir, len(ps)-1, func(ls [][]byte) [][]byte { return ls[:len(ls)-3] })
			},
			sealed: true,
			kind:   ProblemNotSealed, message: "without the final checkpoint", segment: -1,
		},
		{
			name: "truncate a middle segment",
			tamper: func(t *testing.T, dir string) {
				editSegment(t, dir, 1, func(ls [][]byte) [][]byte { return ls[:len(ls)-2] })
			},
			kind: ProblemTruncated, message: "it was truncated", segment: 1,
		},
		{
			name: "cut a middle segment inside a record",
			tamper: func(t *testing.T, dir string) {
				p := segmentPaths(t, dir)[0]
				b, _ := os.ReadFile(p)
				if err := os.WriteFile(p, b[:len(b)-40], 0o600); err != nil {
					t.Fatal(err)
				}
			},
			kind: ProblemTruncated, message: "it was truncated", segment: 0,
		},
		{
			name: "remove a middle segment",
			tamper: func(t *testing.T, dir string) {
				if err := os.Remove(segmentPaths(t, dir)[1]); err != nil {
					t.Fatal(err)
				}
			},
			kind: ProblemMissingSegment, message: "segment 2 is missing", segment: -1,
		},
		{
			name: "remove the first segment",
			tamper: func(t *testing.T, dir string) {
				if err := os.Remove(segmentPaths(t, dir)[0]); err != nil {
					t.Fatal(err)
				}
			},
			kind: ProblemMissingSegment, message: "segment 1 is missing: the log starts at", segment: -1,
		},
		{
			name: "replace a checkpoint signature",
			tamper: func(t *testing.T, dir string) {
				editSegment(t, dir, 0, func(ls [][]byte) [][]byte {
					var sigs [][]byte
					for _, l := range ls {
						if i := bytes.Index(l, []byte(`"signature":"`)); i >= 0 {
							sigs = append(sigs, l[i:i+13+88])
						}
					}
					for i, l := range ls {
						if bytes.Contains(l, sigs[0]) {
							ls[i] = bytes.Replace(l, sigs[0], sigs[1], 1)
							break
						}
					}
					return ls
				})
			},
			kind: ProblemSignature, message: "signature does not verify: it was replaced", segment: 0, sequence: 6,
		},
		{
			name: "edit the final checkpoint",
			tamper: func(t *testing.T, dir string) {
				ps := segmentPaths(t, dir)
				editSegment(t, dir, len(ps)-1, func(ls [][]byte) [][]byte {
					last := len(ls) - 1
					ls[last] = bytes.Replace(ls[last], []byte(`"awsRegion":"us-east-1"`), []byte(`"awsRegion":"us-west-2"`), 1)
					return ls
				})
			},
			kind: ProblemSignature, message: "signature does not verify", segment: -2,
		},
		{
			name: "reformat the final checkpoint",
			tamper: func(t *testing.T, dir string) {
				ps := segmentPaths(t, dir)
				editSegment(t, dir, len(ps)-1, func(ls [][]byte) [][]byte {
					last := len(ls) - 1
					ls[last] = bytes.Replace(ls[last], []byte(`"readOnly":false`), []byte(`"readOnly": false`), 1)
					return ls
				})
			},
			kind: ProblemMalformed, message: "control record was modified", segment: -2,
		},
		{
			name:   "verify with another key",
			tamper: func(*testing.T, string) {},
			pub:    other.Public(),
			kind:   ProblemSignature, message: "signed with key " + KeyID(keys.Public()), segment: 0,
		},
		{
			name: "rename a segment",
			tamper: func(t *testing.T, dir string) {
				p := segmentPaths(t, dir)[1]
				if err := os.Rename(p, filepath.Join(dir, "audit-000002-000000000999.jsonl")); err != nil {
					t.Fatal(err)
				}
			},
			kind: ProblemMalformed, message: "the file was renamed", segment: -1,
		},
		{
			name: "stray file",
			tamper: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "audit-x.jsonl"), []byte("{}\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			kind: ProblemUnexpectedFile, message: "does not follow", segment: -1,
		},
		{
			name: "garbage line",
			tamper: func(t *testing.T, dir string) {
				editSegment(t, dir, 1, func(ls [][]byte) [][]byte {
					ls[3] = []byte(`{"eventVersion":"1.09"}`)
					return ls
				})
			},
			kind: ProblemMalformed, message: "does not end with the sequence", segment: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, src)
			segs := segmentPaths(t, dir)
			tt.tamper(t, dir)
			pub := keys.Public()
			if tt.pub != nil {
				pub = tt.pub
			}
			rep, err := Verify(dir, VerifyOptions{PublicKey: pub, RequireSealed: tt.sealed})
			if err != nil {
				t.Fatal(err)
			}
			p := rep.Problem
			if p == nil {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			if p.Kind != tt.kind || !strings.Contains(p.Message, tt.message) {
				t.Fatalf("problem %s, want kind %s with %q", p, tt.kind, tt.message)
			}
			switch {
			case tt.segment >= 0 && p.Segment != filepath.Base(segs[tt.segment]):
				t.Fatalf("problem names segment %q, want %q", p.Segment, filepath.Base(segs[tt.segment]))
			case tt.segment == -2 && p.Segment != filepath.Base(segs[len(segs)-1]):
				t.Fatalf("problem names segment %q, want the last one", p.Segment)
			}
			if tt.sequence != 0 && p.Sequence != tt.sequence {
				t.Fatalf("problem at sequence %d, want %d", p.Sequence, tt.sequence)
			}
		})
	}
}

func TestVerifyTruncatedTailIsUnsignedWarning(t *testing.T) {
	src, keys := buildLog(t, 30)
	dir := copyDir(t, src)
	ps := segmentPaths(t, dir)
	editSegment(t, dir, len(ps)-1, func(ls [][]byte) [][]byte { return ls[:len(ls)-3] })
	rep := mustVerify(t, dir, keys, false)
	if !rep.OK() || rep.Sealed || rep.Unsigned == 0 {
		t.Fatalf("cut log without RequireSealed: %+v %v", rep, rep.Problem)
	}
}

// TestVerifyTornTail: a partial last line (a crash in the middle of a
// write) is reported as a torn tail, not tampering; a writer opened
// afterwards leaves it behind, and the next header declares it abandoned.
func TestVerifyTornTail(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	l := openLog(t, dir, Options{Keys: keys, CheckpointEvery: 4})
	for i := range 10 {
		record(t, l, sampleEvent(i))
	}
	// Snapshot the directory as a crash would leave it, then tear the
	// last line.
	crashed := copyDir(t, dir)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	last := segmentPaths(t, crashed)[0]
	partial := sampleEvent(11)
	enc := &encoder{hmacKey: keys.HMAC, now: nil, uuid: func() (string, error) { return "00000000-0000-4000-8000-000000000000", nil }}
	body, err := enc.encodeEvent(partial)
	if err != nil {
		t.Fatal(err)
	}
	// The live segment ends with zeros written ahead of its records: the
	// torn write lands where they start.
	writeAtDataEnd(t, last, body[:len(body)/2])

	rep := mustVerify(t, crashed, keys, false)
	if !rep.OK() || rep.Torn == nil || rep.Torn.Bytes != int64(len(body)/2) || rep.Records != 10 || rep.Sealed {
		t.Fatalf("torn log: %+v %v", rep, rep.Problem)
	}
	if rep := mustVerify(t, crashed, keys, true); rep.Problem == nil || rep.Problem.Kind != ProblemNotSealed {
		t.Fatalf("torn log with RequireSealed: %+v", rep.Problem)
	}

	l2 := openLog(t, crashed, Options{Keys: keys})
	record(t, l2, sampleEvent(12))
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	rep = mustVerify(t, crashed, keys, true)
	if !rep.OK() || rep.Torn != nil || len(rep.Abandoned) != 1 || rep.Abandoned[0].Bytes != int64(len(body)/2) || rep.Abandoned[0].Reason != reasonRecover || rep.Records != 11 {
		t.Fatalf("after restart: %+v %v", rep, rep.Problem)
	}
}

// writeAtDataEnd writes b over the start of a segment's zero tail (or at
// its end when it has none), as the writer would.
func writeAtDataEnd(t *testing.T, path string, b []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end, junk := zeroTail(data)
	if junk >= 0 {
		t.Fatalf("%s has data after its zero tail", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, end); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyErrors(t *testing.T) {
	keys := testKeys(t)
	if _, err := Verify(t.TempDir(), VerifyOptions{PublicKey: keys.Public()}); !errors.Is(err, ErrNoLog) {
		t.Fatalf("empty dir: %v, want ErrNoLog", err)
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "nope"), VerifyOptions{PublicKey: keys.Public()}); err == nil {
		t.Fatal("missing dir verified")
	}
	if _, err := Verify(t.TempDir(), VerifyOptions{}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("no key: %v, want ErrBadKey", err)
	}
}

func TestParseChain(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		line string
		seq  uint64
		ok   bool
	}{
		{`{"a":{"x":1,"sequence":42,"previousHash":"` + h + `"}}`, 42, true},
		{`{"a":{"x":1,"sequence":0,"previousHash":"` + h + `"}}`, 0, true},
		{`{"a":{"x":1,"sequence":042,"previousHash":"` + h + `"}}`, 0, false},
		{`{"a":{"x":1,"sequence":,"previousHash":"` + h + `"}}`, 0, false},
		{`{"a":{"x":1,"sequence":18446744073709551616,"previousHash":"` + h + `"}}`, 0, false},
		{`{"a":{"x":1,"sequence":1,"previousHash":"` + strings.ToUpper(h) + `"}}`, 0, false},
		{`{"a":{"x":1,"sequence":1,"previousHash":"` + h[2:] + `"}}`, 0, false},
		{`{"a":{"x":1,"sequence":1,"previousHash":"` + h + `"} }`, 0, false},
		{`{"a":{"x":1,"seq":1,"previousHash":"` + h + `"}}`, 0, false},
		{``, 0, false},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			seq, prev, ok := parseChain([]byte(tt.line))
			if ok != tt.ok || seq != tt.seq {
				t.Fatalf("parseChain = %d, %v; want %d, %v", seq, ok, tt.seq, tt.ok)
			}
			if ok && hex.EncodeToString(prev[:]) != h {
				t.Fatalf("prev %x", prev)
			}
		})
	}
}

func TestVerifyTornAfterFinalCheckpoint(t *testing.T) {
	src, keys := buildLog(t, 5)
	dir := copyDir(t, src)
	ps := segmentPaths(t, dir)
	f, err := os.OpenFile(ps[len(ps)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"eventVersion":"1.0`)
	f.Close()
	if rep := mustVerify(t, dir, keys, false); !rep.OK() || rep.Sealed || rep.Torn == nil {
		t.Fatalf("without RequireSealed: %+v %v", rep, rep.Problem)
	}
	rep := mustVerify(t, dir, keys, true)
	if rep.Problem == nil || rep.Problem.Kind != ProblemNotSealed || !strings.Contains(rep.Problem.Message, "followed by a partial record") {
		t.Fatalf("with RequireSealed: %v", rep.Problem)
	}
}
