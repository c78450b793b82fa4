package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKeys(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKeys(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{HMACKeyFile: 0o600, SigningKeyFile: 0o600, PublicKeyFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	k2, err := LoadOrCreateKeys(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.HMAC, k2.HMAC) || !k1.Signing.Equal(k2.Signing) {
		t.Fatal("second load returned different keys")
	}
	pub, err := LoadPublicKey(filepath.Join(dir, PublicKeyFile))
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("public key file: %v", err)
	}
	// A lost public key file is rewritten.
	os.Remove(filepath.Join(dir, PublicKeyFile))
	if _, err := LoadOrCreateKeys(dir, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, PublicKeyFile)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{k1.String(), mustJSON(t, k1)} {
		if !strings.Contains(s, "REDACTED") {
			t.Fatalf("keys print as %q", s)
		}
	}
}

func mustJSON(t *testing.T, v interface{ MarshalJSON() ([]byte, error) }) string {
	b, err := v.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadOrCreateKeysRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string)
		want  error
	}{
		{"only the HMAC key", func(dir string) { os.Remove(filepath.Join(dir, SigningKeyFile)) }, ErrBadKey},
		{"readable by others", func(dir string) { os.Chmod(filepath.Join(dir, SigningKeyFile), 0o644) }, ErrKeyPermissions},
		{"garbage HMAC key", func(dir string) { os.WriteFile(filepath.Join(dir, HMACKeyFile), []byte("nope"), 0o600) }, ErrBadKey},
		{"garbage signing key", func(dir string) { os.WriteFile(filepath.Join(dir, SigningKeyFile), []byte("nope"), 0o600) }, ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateKeys(dir, rand.Reader); err != nil {
				t.Fatal(err)
			}
			tt.setup(dir)
			if _, err := LoadOrCreateKeys(dir, rand.Reader); !errors.Is(err, tt.want) {
				t.Fatalf("LoadOrCreateKeys: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParsePublicKeyForms(t *testing.T) {
	k := testKeys(t)
	b64 := base64.StdEncoding.EncodeToString(k.Public())
	for _, in := range [][]byte{MarshalPublicKey(k.Public()), []byte(b64 + "\n")} {
		pub, err := ParsePublicKey(in)
		if err != nil || !pub.Equal(k.Public()) {
			t.Fatalf("ParsePublicKey(%q): %v", in, err)
		}
	}
}

// TestKeyTestdata parses the good and bad_* key files in testdata.
func TestKeyTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.pub"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no key testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := LoadPublicKey(f)
			bad := strings.HasPrefix(filepath.Base(f), "bad_")
			if bad && !errors.Is(err, ErrBadKey) {
				t.Fatalf("bad key accepted or wrong error: %v", err)
			}
			if !bad && err != nil {
				t.Fatal(err)
			}
		})
	}
}
