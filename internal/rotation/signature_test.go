package rotation_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/rotation"
)

// signatureVector is one file of testdata/signature: a header checked
// against body under key at now (Unix seconds) with DefaultMaxSkew. The
// good_ vectors were computed independently of this package (Python's
// hmac module).
type signatureVector struct {
	Key    string `json:"key"`
	Now    int64  `json:"now"`
	Header string `json:"header"`
	Body   string `json:"body"`
	Want   string `json:"want"` // ok, malformed, expired, mismatch
}

func loadSignatureVectors(t testing.TB) map[string]signatureVector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "signature", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no signature vectors: %v", err)
	}
	out := map[string]signatureVector{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v signatureVector
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = v
	}
	return out
}

func TestVerifySignatureVectors(t *testing.T) {
	wants := map[string]error{
		"malformed": rotation.ErrSignatureMalformed,
		"expired":   rotation.ErrSignatureExpired,
		"mismatch":  rotation.ErrSignatureMismatch,
	}
	for name, v := range loadSignatureVectors(t) {
		t.Run(name, func(t *testing.T) {
			key, err := hex.DecodeString(v.Key)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(name, "good_") != (v.Want == "ok") {
				t.Fatalf("vector %s expects %q", name, v.Want)
			}
			err = rotation.VerifySignature(key, v.Header, []byte(v.Body), time.Unix(v.Now, 0), rotation.DefaultMaxSkew)
			if v.Want == "ok" {
				if err != nil {
					t.Fatalf("VerifySignature = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, wants[v.Want]) {
				t.Fatalf("VerifySignature = %v, want %v", err, wants[v.Want])
			}
		})
	}
}

func TestSignMatchesVectors(t *testing.T) {
	v := loadSignatureVectors(t)["good_exact.json"]
	key, _ := hex.DecodeString(v.Key)
	if got := rotation.Sign(key, []byte(v.Body), time.Unix(v.Now, 0)); got != v.Header {
		t.Fatalf("Sign = %q, want %q", got, v.Header)
	}
}

func TestVerifySignatureRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"Step":"setSecret"}`)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	h := rotation.Sign(key, body, now)
	tests := []struct {
		name string
		key  []byte
		body []byte
		at   time.Time
		skew time.Duration
		want error
	}{
		{"fresh", key, body, now, time.Minute, nil},
		{"at the edge of the window", key, body, now.Add(time.Minute), time.Minute, nil},
		{"replayed after the window", key, body, now.Add(time.Minute + time.Second), time.Minute, rotation.ErrSignatureExpired},
		{"other key", []byte("fedcba9876543210fedcba9876543210"), body, now, time.Minute, rotation.ErrSignatureMismatch},
		{"no key", nil, body, now, time.Minute, rotation.ErrSignatureMismatch},
		{"body changed", key, []byte(`{"Step":"finishSecret"}`), now, time.Minute, rotation.ErrSignatureMismatch},
		{"body extended", key, append(append([]byte{}, body...), ' '), now, time.Minute, rotation.ErrSignatureMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := rotation.VerifySignature(tc.key, h, tc.body, tc.at, tc.skew)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
	if err := rotation.VerifySignature(key, strings.Repeat("t=1,", 2000), body, now, time.Minute); !errors.Is(err, rotation.ErrSignatureMalformed) {
		t.Fatalf("oversized header = %v, want ErrSignatureMalformed", err)
	}
}

// FuzzVerifySignature checks that VerifySignature never panics and only
// accepts a header that carries the true signature of the body at a
// timestamp within the window.
func FuzzVerifySignature(f *testing.F) {
	for _, v := range loadSignatureVectors(f) {
		f.Add(v.Header, []byte(v.Body), v.Now)
	}
	key, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	f.Fuzz(func(t *testing.T, header string, body []byte, now int64) {
		at := time.Unix(now, 0)
		err := rotation.VerifySignature(key, header, body, at, rotation.DefaultMaxSkew)
		if err == nil {
			var ts string
			var sigs []string
			for _, part := range strings.Split(header, ",") {
				k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
				switch k {
				case "t":
					ts = v
				case "v1":
					sigs = append(sigs, v)
				}
			}
			want := expectedSig(key, ts, body)
			found := false
			for _, s := range sigs {
				found = found || strings.EqualFold(s, want)
			}
			if !found {
				t.Fatalf("accepted header %q without the true signature", header)
			}
			return
		}
		if !errors.Is(err, rotation.ErrSignatureMalformed) && !errors.Is(err, rotation.ErrSignatureExpired) && !errors.Is(err, rotation.ErrSignatureMismatch) {
			t.Fatalf("error %v wraps none of the signature errors", err)
		}
	})
}

// expectedSig is the hex HMAC-SHA256 of ts + "." + body, computed here
// rather than by the package.
func expectedSig(key []byte, ts string, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(ts + "."))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
