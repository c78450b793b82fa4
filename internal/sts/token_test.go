package sts

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

var update = flag.Bool("update", false, "rewrite the token vectors in testdata")

// The known-answer vector: a fixed key, access key id, nonce and claim set.
const katAccessKeyID = "ASIAABCDEFGHIJKLMNOP" // key id 1 ("AB")

func katKeyring(t testing.TB, seed string) *keyring {
	t.Helper()
	master := sha256.Sum256([]byte(seed))
	r, err := buildKeyring(&keyringRecord{Format: 1, Current: 1, Keys: []keyRecord{{ID: 1, Key: master[:]}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func katClaims() *claims {
	c := &claims{
		keyID:          1,
		issued:         time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC),
		expires:        time.Date(2026, 1, 2, 4, 4, 5, 0, time.UTC),
		roleARN:        "arn:aws:iam::123456789012:role/apps/application-role",
		roleID:         "AROAEXAMPLEEXAMPLE12",
		sessionName:    "my-app-session",
		sourceIdentity: "alice",
		policy:         `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"}]}`,
		policyARNs:     []string{"arn:aws:iam::123456789012:policy/describe"},
		tags:           []tag{{"env", "dev"}, {"team", "payments"}},
		transitive:     []string{"team"},
		roleTags:       []tag{{"owner", "platform"}},
		provider:       "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/cluster",
		fedClaims:      []tag{{"oidc.example.com/cluster:sub", "system:serviceaccount:default:my-app"}},
		imageDigest:    "sha256:" + strings.Repeat("ab", 32),
	}
	copy(c.sessionID[:], "0123456789abcdef")
	return c
}

func katNonce() []byte { return bytes.Repeat([]byte{7}, chacha20poly1305.NonceSizeX) }

func readVector(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("reading vector (regenerate with go test -run TestTokenVectors -update): %v", err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// badVectors are forged or damaged tokens, built from the valid one.
func badVectors(t testing.TB, valid string) map[string]string {
	raw, err := tokenEncoding.DecodeString(valid)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)/2] ^= 1
	format2 := append([]byte(nil), raw...)
	format2[0] = 2
	otherKey, err := sealToken(katKeyring(t, "another key").current, katAccessKeyID, katClaims(), katNonce())
	if err != nil {
		t.Fatal(err)
	}
	otherID, err := sealToken(katKeyring(t, "sigil sts test key").current, "ASIAABZZZZZZZZZZZZZZ", katClaims(), katNonce())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"bad_bitflip.txt":       tokenEncoding.EncodeToString(flipped),
		"bad_truncated.txt":     valid[:len(valid)-8],
		"bad_format.txt":        tokenEncoding.EncodeToString(format2),
		"bad_other_key.txt":     otherKey,
		"bad_other_access.txt":  otherID,
		"bad_linebreak.txt":     valid[:10] + "\n" + valid[10:],
		"bad_padded.txt":        base64.URLEncoding.EncodeToString(raw),
		"bad_not_base64.txt":    "!!" + valid[2:],
		"bad_header_only.txt":   tokenEncoding.EncodeToString(raw[:tokenOverhead-1]),
		"bad_empty_payload.txt": tokenEncoding.EncodeToString(raw[:tokenOverhead]),
	}
}

func TestTokenVectors(t *testing.T) {
	ring := katKeyring(t, "sigil sts test key")
	sealed, err := sealToken(ring.current, katAccessKeyID, katClaims(), katNonce())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		files := badVectors(t, sealed)
		files["token_v1.txt"] = sealed
		for name, tok := range files {
			if err := os.WriteFile(filepath.Join("testdata", name), []byte(tok+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	valid := readVector(t, "token_v1.txt")
	if sealed != valid {
		t.Fatal("sealing the vector's claims no longer gives the stored token: the token format changed")
	}
	got, err := openToken(ring, katAccessKeyID, valid)
	if err != nil {
		t.Fatalf("opening the vector: %v", err)
	}
	if want := katClaims(); !reflect.DeepEqual(got, want) {
		t.Errorf("claims\n got %+v\nwant %+v", got, want)
	}
	entries, err := filepath.Glob(filepath.Join("testdata", "bad_*.txt"))
	if err != nil || len(entries) < 8 {
		t.Fatalf("found %d bad vectors (%v)", len(entries), err)
	}
	for _, path := range entries {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			tok := readVector(t, name)
			if _, err := openToken(ring, katAccessKeyID, tok); !errors.Is(err, ErrInvalidSessionToken) {
				t.Fatalf("opened a bad token: %v", err)
			}
		})
	}
	for _, tt := range []struct{ name, id, tok string }{
		{"empty token", katAccessKeyID, ""},
		{"long-term key id", "AKIAABCDEFGHIJKLMNOP", valid},
		{"other session key id", "ASIAACCDEFGHIJKLMNOP", valid},
		{"key id zero", "ASIAAACDEFGHIJKLMNOP", valid},
		{"lower-case id", "ASIAabcdefghijklmnop", valid},
		{"other access key id", "ASIAABCDEFGHIJKLMNOQ", valid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := openToken(ring, tt.id, tt.tok); !errors.Is(err, ErrInvalidSessionToken) {
				t.Fatalf("opened: %v", err)
			}
		})
	}
}

func TestClaimsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    *claims
	}{
		{"full", katClaims()},
		{"minimal", &claims{keyID: 9, issued: time.Unix(1, 2).UTC(), expires: time.Unix(900, 0).UTC(),
			roleARN: "arn:aws:iam::123456789012:role/r", roleID: "AROAX", sessionName: "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendClaims(nil, tt.c)
			got, err := decodeClaims(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.c) {
				t.Errorf("got %+v\nwant %+v", got, tt.c)
			}
			for i := range b {
				if _, err := decodeClaims(b[:i]); err == nil {
					t.Fatalf("decoded a claim set truncated to %d of %d bytes", i, len(b))
				}
			}
			if _, err := decodeClaims(append(b, 0)); err == nil {
				t.Fatal("decoded a claim set with a trailing byte")
			}
		})
	}
	overlong := appendClaims(nil, katClaims())
	// The session name's length byte, re-encoded as an overlong varint.
	i := bytes.Index(overlong, []byte("my-app-session")) - 1
	overlong = append(overlong[:i:i], append([]byte{overlong[i] | 0x80, 0}, overlong[i+1:]...)...)
	if _, err := decodeClaims(overlong); err == nil {
		t.Error("decoded an overlong varint")
	}
}

func TestAccessKeyIDs(t *testing.T) {
	for _, id := range []uint16{1, 2, 31, 32, 1023} {
		s := &Service{rand: bytes.NewReader(bytes.Repeat([]byte{0xff}, 14))}
		akid, err := s.newAccessKeyID(id)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := accessKeyKeyID(akid); !ok || got != id || len(akid) != 20 || !strings.HasPrefix(akid, "ASIA") {
			t.Errorf("key %d: id %s decodes to %d, %v", id, akid, got, ok)
		}
	}
	k := katKeyring(t, "sigil sts test key").current
	a, b := k.secretFor(katAccessKeyID), k.secretFor("ASIAABCDEFGHIJKLMNOQ")
	if len(a) != 40 || a == b || a != k.secretFor(katAccessKeyID) {
		t.Errorf("secrets %q and %q: want 40 characters, deterministic, distinct per id", a, b)
	}
}

// FuzzSessionToken: the decoder never panics, fails only with
// ErrInvalidSessionToken, and accepts nothing but the exact token sealed.
func FuzzSessionToken(f *testing.F) {
	entries, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, path := range entries {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.TrimSuffix(string(b), "\n"))
	}
	ring := katKeyring(f, "sigil sts test key")
	valid := readVector(f, "token_v1.txt")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := openToken(ring, katAccessKeyID, tok)
		if err != nil {
			if !errors.Is(err, ErrInvalidSessionToken) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if tok != valid {
			t.Fatalf("accepted a token that differs from the sealed one: %q", tok)
		}
		if c.sessionName != "my-app-session" {
			t.Fatalf("claims changed: %+v", c)
		}
	})
}

// FuzzClaims: the claim decoder never panics and accepts only canonical
// encodings.
func FuzzClaims(f *testing.F) {
	f.Add(appendClaims(nil, katClaims()))
	f.Add(appendClaims(nil, &claims{roleARN: "a", roleID: "b", sessionName: "c"}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeClaims(b)
		if err != nil {
			return
		}
		if !bytes.Equal(appendClaims(nil, c), b) {
			t.Fatalf("decoded a non-canonical claim set")
		}
	})
}
