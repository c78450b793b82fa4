package barrier

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

type keyringVector struct {
	Name      string `json:"name"`
	KEK       string `json:"kek"`
	Nonce     string `json:"nonce"`
	Mode      int    `json:"mode"`
	Shares    int    `json:"shares"`
	Threshold int    `json:"threshold"`
	Active    uint32 `json:"active"`
	Keys      []struct {
		Term      uint32 `json:"term"`
		Installed int64  `json:"installed_unix_nano"`
		Key       string `json:"key"`
	} `json:"keys"`
	Plain string `json:"plain"`
	Blob  string `json:"blob"`
}

func keyringVectors(t testing.TB) []keyringVector {
	t.Helper()
	var f struct {
		Vectors []keyringVector `json:"vectors"`
	}
	readJSON(t, "keyring_v1.json", &f)
	if len(f.Vectors) == 0 {
		t.Fatal("no keyring vectors")
	}
	return f.Vectors
}

// TestKeyringKnownAnswers checks the keyring formats against keyrings sealed
// independently (testdata/vectors.py).
func TestKeyringKnownAnswers(t *testing.T) {
	for _, v := range keyringVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			want := &keyring{active: v.Active}
			for _, k := range v.Keys {
				dk := dataKey{term: k.Term, installed: time.Unix(0, k.Installed).UTC()}
				copy(dk.key[:], unhex(t, k.Key))
				want.keys = append(want.keys, dk)
			}
			cfg := shareConfig{shares: v.Shares, threshold: v.Threshold}
			if got := want.encode(); !bytes.Equal(got, unhex(t, v.Plain)) {
				t.Fatalf("encode = %x, want %s", got, v.Plain)
			}
			var kek secretKey
			copy(kek[:], unhex(t, v.KEK))
			blob, err := sealKeyring(&kek, bytes.NewReader(unhex(t, v.Nonce)), cfg, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(blob, unhex(t, v.Blob)) {
				t.Fatalf("sealKeyring =\n%x\nwant\n%s", blob, v.Blob)
			}
			gotCfg, got, err := openKeyring(&kek, unhex(t, v.Blob))
			if err != nil {
				t.Fatal(err)
			}
			if gotCfg != cfg || got.active != want.active || len(got.keys) != len(want.keys) {
				t.Fatalf("openKeyring = %+v active %d, %d keys", gotCfg, got.active, len(got.keys))
			}
			for i := range want.keys {
				g, w := got.keys[i], want.keys[i]
				if g.term != w.term || !g.installed.Equal(w.installed) || g.key != w.key {
					t.Errorf("key %d differs", i)
				}
			}
			wrong := secretKey(testKEK(3))
			if _, _, err := openKeyring(&wrong, unhex(t, v.Blob)); !errors.Is(err, ErrWrongKey) {
				t.Errorf("wrong KEK: %v, want ErrWrongKey", err)
			}
		})
	}
}

func TestDecodeKeyringRejectsMalformed(t *testing.T) {
	entry := func(term uint32, key byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, term)
		b = binary.BigEndian.AppendUint64(b, 1)
		return append(b, bytes.Repeat([]byte{key}, keySize)...)
	}
	ring := func(active, count uint32, entries ...[]byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, active)
		b = binary.BigEndian.AppendUint32(b, count)
		for _, e := range entries {
			b = append(b, e...)
		}
		return b
	}
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short", []byte{0, 0, 0, 1}},
		{"no-keys", ring(1, 0)},
		{"count-too-high", ring(1, 2, entry(1, 1))},
		{"count-too-low", ring(1, 1, entry(1, 1), entry(2, 2))},
		{"trailing-byte", append(ring(1, 1, entry(1, 1)), 0)},
		{"term-zero", ring(0, 1, entry(0, 1))},
		{"duplicate-term", ring(1, 2, entry(1, 1), entry(1, 2))},
		{"decreasing-terms", ring(2, 2, entry(2, 1), entry(1, 2))},
		{"active-missing", ring(3, 2, entry(1, 1), entry(2, 2))},
		{"huge-count", ring(1, 0xffffffff, entry(1, 1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r, err := decodeKeyring(c.in); !errors.Is(err, ErrCorruptKeyring) {
				t.Fatalf("decodeKeyring = %v, %v; want ErrCorruptKeyring", r != nil, err)
			}
		})
	}
	if _, err := decodeKeyring(ring(2, 2, entry(1, 1), entry(2, 2))); err != nil {
		t.Fatalf("a well-formed keyring was refused: %v", err)
	}
}

func TestParseKeyringHeader(t *testing.T) {
	body := make([]byte, nonceSize+tagSize)
	cases := []struct {
		name    string
		header  string
		want    shareConfig
		wantErr bool
	}{
		{"provider", "SGKR\x01\x00\x00\x00", shareConfig{}, false},
		{"shamir", "SGKR\x01\x01\x05\x03", shareConfig{shares: 5, threshold: 3}, false},
		{"shamir-max", "SGKR\x01\x01\xff\xff", shareConfig{shares: 255, threshold: 255}, false},
		{"bad-magic", "SGKX\x01\x00\x00\x00", shareConfig{}, true},
		{"version-2", "SGKR\x02\x00\x00\x00", shareConfig{}, true},
		{"unknown-mode", "SGKR\x01\x02\x00\x00", shareConfig{}, true},
		{"provider-with-counts", "SGKR\x01\x00\x05\x03", shareConfig{}, true},
		{"threshold-1", "SGKR\x01\x01\x05\x01", shareConfig{}, true},
		{"threshold-above-shares", "SGKR\x01\x01\x02\x03", shareConfig{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseKeyringHeader(append([]byte(c.header), body...))
			if c.wantErr {
				if !errors.Is(err, ErrCorruptKeyring) {
					t.Fatalf("parseKeyringHeader = %+v, %v; want ErrCorruptKeyring", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("parseKeyringHeader = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	key := func(term uint32, b byte) dataKey {
		k := dataKey{term: term}
		k.key[0] = b
		return k
	}
	terms := func(r *keyring) []uint32 {
		var out []uint32
		for _, k := range r.keys {
			out = append(out, k.term)
		}
		return out
	}
	a := &keyring{active: 3, keys: []dataKey{key(1, 1), key(3, 3)}}
	b := &keyring{active: 4, keys: []dataKey{key(1, 1), key(2, 2), key(4, 4)}}
	m, err := merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := terms(m); len(got) != 4 || got[0] != 1 || got[1] != 2 || got[2] != 3 || got[3] != 4 || m.active != 4 {
		t.Fatalf("merge = terms %v active %d", got, m.active)
	}
	if m.find(3).key[0] != 3 || m.find(2).key[0] != 2 {
		t.Fatal("merge mixed up keys")
	}
	// The merged ring must not share memory with its inputs: wiping an
	// input leaves it intact.
	a.wipe()
	if m.find(3).key[0] != 3 {
		t.Fatal("merge result aliases its input")
	}
	c := &keyring{active: 1, keys: []dataKey{key(1, 9)}}
	if _, err := merge(b, c); !errors.Is(err, ErrCorruptKeyring) {
		t.Fatalf("conflicting key for term 1: %v, want ErrCorruptKeyring", err)
	}
}

// FuzzKeyring feeds arbitrary bytes to every keyring decoder: the plaintext
// decoder must never panic and must accept only canonical encodings, and a
// mutated sealed keyring must never open.
func FuzzKeyring(f *testing.F) {
	vectors := keyringVectors(f)
	for _, v := range vectors {
		f.Add(unhex(f, v.Plain))
		f.Add(unhex(f, v.Blob))
	}
	var kek secretKey
	copy(kek[:], unhex(f, vectors[0].KEK))
	f.Fuzz(func(t *testing.T, in []byte) {
		if r, err := decodeKeyring(in); err == nil {
			if !bytes.Equal(r.encode(), in) {
				t.Fatalf("decodeKeyring accepted a non-canonical encoding %x", in)
			}
		} else if !errors.Is(err, ErrCorruptKeyring) {
			t.Fatalf("decodeKeyring error %v does not wrap ErrCorruptKeyring", err)
		}
		_, _ = parseKeyringHeader(in)
		if _, _, err := openKeyring(&kek, in); err == nil {
			for _, v := range vectors {
				if bytes.Equal(in, unhex(t, v.Blob)) {
					return
				}
			}
			t.Fatalf("a mutated keyring opened: %x", in)
		}
	})
}
