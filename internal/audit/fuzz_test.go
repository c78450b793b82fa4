package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The testdata log is a known-answer vector: a closed log written with a
// fixed key, clock and event ids. Old logs must keep verifying.
const (
	testdataLog     = "testdata/log_v1"
	testdataSegment = "audit-000001-000000000001.jsonl"
)

// seedReader is a deterministic io.Reader for keys and event ids.
type seedReader struct{ n byte }

func (r *seedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

// writeTestdataLog regenerates testdata/log_v1 and the bad_* segments
// derived from it (go test -run TestTestdataLog -update).
func writeTestdataLog(t *testing.T) {
	keys, err := NewKeys(&seedReader{})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := openLog(t, tmp, Options{Keys: keys, Rand: &seedReader{n: 7}, CheckpointEvery: 4, Now: func() time.Time { return clock }})
	for i := range 8 {
		record(t, l, sampleEvent(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(testdataLog, 0o755); err != nil {
		t.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join(tmp, testdataSegment))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(testdataLog, testdataSegment), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(testdataLog, PublicKeyFile), MarshalPublicKey(keys.Public()), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(seg, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty piece after the last newline
	join := func(ls [][]byte) []byte { return bytes.Join(ls, nil) }
	swap := append([][]byte{}, lines...)
	swap[2], swap[3] = swap[3], swap[2]
	mod := append([][]byte{}, lines...)
	mod[2] = bytes.Replace(mod[2], []byte("GetSecretValue"), []byte("GetSecretValuf"), 1)
	ck := 1
	for !bytes.HasPrefix(lines[ck], []byte(controlPrefix+NameCheckpoint)) {
		ck++
	}
	sig := append([][]byte{}, lines...)
	sig[ck] = bytes.Replace(sig[ck], []byte(`"signature":"`), []byte(`"signature":"A`), 1)
	sig[ck] = bytes.Replace(sig[ck], []byte(`=="`), []byte(`="`), 1)
	canon := append([][]byte{}, lines...)
	canon[ck] = bytes.Replace(canon[ck], []byte(`"readOnly":false`), []byte(`"readOnly" :false`), 1)
	bad := map[string][]byte{
		"bad_swapped.jsonl":        join(swap),
		"bad_modified.jsonl":       join(mod),
		"bad_deleted.jsonl":        join(append(append([][]byte{}, lines[:3]...), lines[4:]...)),
		"bad_signature.jsonl":      join(sig),
		"bad_not_canonical.jsonl":  join(canon),
		"bad_no_header.jsonl":      join(lines[1:]),
		"bad_garbage.jsonl":        append(join(lines[:4]), []byte("{\"eventVersion\":\"1.09\"}\n")...),
		"bad_truncated_ckpt.jsonl": join(lines[:len(lines)-1]),
	}
	for name, b := range zeroTailSegments(lines) {
		bad[name] = b
	}
	for name, b := range bad {
		if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// zeroTailSegments derives the zero-tail vectors from the lines of the
// testdata segment: ok_* verify (sealed or torn), bad_* do not.
func zeroTailSegments(lines [][]byte) map[string][]byte {
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	zeros := func(n int) []byte { return make([]byte, n) }
	all := join(lines...)
	last := lines[len(lines)-1]
	unsealed := join(lines[:len(lines)-1]...)
	return map[string][]byte{
		"ok_zero_tail.jsonl":         join(all, zeros(4096)),
		"ok_torn_zero_tail.jsonl":    join(unsealed, last[:len(last)/2], zeros(300)),
		"bad_data_after_zeros.jsonl": join(join(lines[:5]...), zeros(64), join(lines[5:]...)),
		"bad_zeroed_record.jsonl":    join(join(lines[:3]...), zeros(len(lines[3])), join(lines[4:]...)),
		"bad_zeroed_bytes.jsonl":     join(join(lines[:3]...), lines[3][:40], zeros(8), lines[3][48:], join(lines[4:]...)),
	}
}

func testdataPub(t testing.TB) ed25519.PublicKey {
	t.Helper()
	pub, err := LoadPublicKey(filepath.Join(testdataLog, PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// verifyBytes verifies one in-memory segment as a whole log.
func verifyBytes(pub ed25519.PublicKey, data []byte, sealed bool) *Report {
	v := newVerifier(VerifyOptions{PublicKey: pub, RequireSealed: sealed})
	_ = v.run([]segmentFile{{name: testdataSegment, num: 1, first: 1}}, func(int) ([]byte, error) { return data, nil })
	return &v.rep
}

func TestTestdataLog(t *testing.T) {
	if *update {
		writeTestdataLog(t)
	}
	pub := testdataPub(t)
	rep, err := Verify(testdataLog, VerifyOptions{PublicKey: pub, RequireSealed: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 8 || !rep.Sealed {
		t.Fatalf("testdata log: %+v %v", rep, rep.Problem)
	}
	bads, _ := filepath.Glob(filepath.Join("testdata", "bad_*.jsonl"))
	if len(bads) == 0 {
		t.Fatal("no bad_* segments")
	}
	for _, p := range bads {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if rep := verifyBytes(pub, data, true); rep.Problem == nil {
				t.Fatalf("%s verified: %+v", p, rep)
			}
		})
	}
	// Zero tails: the sealed log followed by zeros is still sealed; a torn
	// record before zeros is a torn tail of exactly its bytes.
	oks := []struct {
		name   string
		sealed bool
		torn   int64
	}{
		{"ok_zero_tail.jsonl", true, 0},
		{"ok_torn_zero_tail.jsonl", false, -1},
	}
	for _, ok := range oks {
		t.Run(ok.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", ok.name))
			if err != nil {
				t.Fatal(err)
			}
			rep := verifyBytes(pub, data, ok.sealed)
			switch {
			case !rep.OK() || rep.Sealed != ok.sealed:
				t.Fatalf("%s: %+v %v", ok.name, rep, rep.Problem)
			case ok.torn == 0 && rep.Torn != nil:
				t.Fatalf("%s: torn %+v", ok.name, rep.Torn)
			case ok.torn < 0 && (rep.Torn == nil || rep.Torn.Bytes == 0 || bytes.IndexByte(data[rep.Torn.Offset:rep.Torn.Offset+rep.Torn.Bytes], 0) >= 0):
				t.Fatalf("%s: torn %+v, want the partial record without zeros", ok.name, rep.Torn)
			}
		})
	}
}

// fuzzSeeds adds every line and every segment under testdata.
func fuzzSeeds(f *testing.F, lines bool) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.jsonl"))
	paths = append(paths, filepath.Join(testdataLog, testdataSegment))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if !lines {
			f.Add(b)
			continue
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			f.Add(l)
		}
	}
}

// FuzzVerifyLine: the per-line parser never panics, and whatever it
// accepts has the exact chain suffix the writer produces.
func FuzzVerifyLine(f *testing.F) {
	fuzzSeeds(f, true)
	f.Fuzz(func(t *testing.T, line []byte) {
		seq, prev, err := VerifyLine(line)
		if err != nil {
			return
		}
		i := bytes.LastIndex(line, []byte(seqField))
		if i < 0 {
			t.Fatal("accepted a line without a sequence field")
		}
		if again := appendChainSuffix(bytes.Clone(line[:i]), seq, &prev); !bytes.Equal(again, line) {
			t.Fatalf("chain fields do not round-trip:\n%s\n%s", line, again)
		}
	})
}

// FuzzVerifySegment: verifying arbitrary bytes as a segment never panics,
// and no bytes but the original sealed testdata segment, followed by
// nothing but zeros (a zero tail), verify as a sealed log under its key.
func FuzzVerifySegment(f *testing.F) {
	fuzzSeeds(f, false)
	pub := testdataPub(f)
	orig, err := os.ReadFile(filepath.Join(testdataLog, testdataSegment))
	if err != nil {
		f.Fatal(err)
	}
	want := sha256.Sum256(orig)
	f.Add(append(bytes.Clone(orig), "{\"torn"...))
	f.Add(append(bytes.Clone(orig), make([]byte, 100)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep := verifyBytes(pub, data, true)
		if rep.OK() && sha256.Sum256(bytes.TrimRight(data, "\x00")) != want {
			t.Fatalf("a modified segment verifies as sealed: %+v", rep)
		}
	})
}

// FuzzParsePublicKey: the key parser never panics and accepts only 32-byte
// keys.
func FuzzParsePublicKey(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.pub"))
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := ParsePublicKey(b)
		if err == nil && len(pub) != ed25519.PublicKeySize {
			t.Fatalf("accepted a %d-byte key", len(pub))
		}
	})
}

// FuzzRedact: redacting arbitrary JSON never panics, yields valid JSON, and
// leaves no string value under a sensitive key unhashed.
func FuzzRedact(f *testing.F) {
	f.Add([]byte(`{"SecretString":"x","a":[{"Password":"y"}],"b":{"sessionToken":1}}`))
	f.Add([]byte(`{"Secret\u0053tring":"x"}`))
	f.Add([]byte(`{"a":1}`))
	key := bytes.Repeat([]byte{9}, 32)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := redact(json.RawMessage(b), key)
		if err != nil || out == nil {
			return
		}
		var doc any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("redact produced invalid JSON %q: %v", out, err)
		}
		var walk func(v any)
		walk = func(v any) {
			switch t2 := v.(type) {
			case map[string]any:
				for k, val := range t2 {
					if SensitiveKey(k) && val != nil {
						if s, ok := val.(string); !ok || !strings.HasPrefix(s, HashPrefix) {
							t.Fatalf("sensitive key %q kept value %v", k, val)
						}
						continue
					}
					walk(val)
				}
			case []any:
				for _, e := range t2 {
					walk(e)
				}
			}
		}
		walk(doc)
	})
}
