package images_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/images"
)

// testdataKey is the key the files in testdata/assertion are signed with:
// the Ed25519 key of the seed 0x42 repeated.
var testdataKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, 32))

func readAssertions(t testing.TB) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "assertion", "*.jwt"))
	mustNoErr(t, err)
	if len(paths) == 0 {
		t.Fatal("no assertions in testdata/assertion")
	}
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		mustNoErr(t, err)
		out[filepath.Base(p)] = strings.TrimSpace(string(b))
	}
	return out
}

// TestAssertionTestdata: every valid_* file parses and verifies under the
// testdata key; every bad_* file fails to parse or to verify.
func TestAssertionTestdata(t *testing.T) {
	pub := testdataKey.Public().(ed25519.PublicKey)
	for name, tok := range readAssertions(t) {
		t.Run(name, func(t *testing.T) {
			a, err := images.ParseAssertion(tok)
			if strings.HasPrefix(name, "valid") {
				mustNoErr(t, err)
				if !a.VerifySignature(pub) {
					t.Fatal("a valid assertion does not verify")
				}
				if a.KeyID != images.KeyIDOf(pub) || a.Audience != "sigil:image:123456789012" ||
					a.Expires.Sub(a.IssuedAt) != 5*time.Minute || a.JTI != "0123456789abcdef0123456789abcdef" {
					t.Fatalf("parsed %+v", a)
				}
				return
			}
			if err == nil && a.VerifySignature(pub) {
				t.Fatal("a bad assertion parses and verifies")
			}
			if err != nil && !errors.Is(err, images.ErrMalformedAssertion) {
				t.Fatalf("err = %v, want ErrMalformedAssertion", err)
			}
		})
	}
}

// FuzzParseAssertion: the parser never panics, what it accepts is
// well-formed, and nothing but the signed seed assertions verifies under
// the testdata key: an assertion cannot be altered undetected.
func FuzzParseAssertion(f *testing.F) {
	seeds := readAssertions(f)
	signed := map[string]bool{}
	for name, tok := range seeds {
		f.Add(tok)
		if strings.HasPrefix(name, "valid") {
			signed[tok] = true
		}
	}
	pub := testdataKey.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, tok string) {
		a, err := images.ParseAssertion(tok)
		if err != nil {
			var ae *images.AssertionError
			if !errors.As(err, &ae) || !errors.Is(err, images.ErrMalformedAssertion) {
				t.Fatalf("error %v is not a malformed-assertion refusal", err)
			}
			return
		}
		if !images.ValidKeyID(a.KeyID) || a.Audience == "" || a.IssuedAt.IsZero() || a.Expires.IsZero() || a.JTI == "" {
			t.Fatalf("accepted an incomplete assertion %+v", a)
		}
		if a.VerifySignature(pub) && !signed[tok] {
			t.Fatalf("an altered assertion verifies: %q", tok)
		}
	})
}
