package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Key file names that LoadOrCreateKeys uses inside its directory.
const (
	// HMACKeyFile holds the 32-byte HMAC key as PEM block "SIGIL AUDIT HMAC
	// KEY" (mode 0600).
	HMACKeyFile = "audit-hmac.key"
	// SigningKeyFile holds the Ed25519 signing key as PKCS#8 PEM "PRIVATE
	// KEY" (mode 0600).
	SigningKeyFile = "audit-signing.key"
	// PublicKeyFile holds the Ed25519 public key as PKIX PEM "PUBLIC KEY"
	// (mode 0644), what verifiers need.
	PublicKeyFile = "audit-signing.pub"
)

const (
	hmacPEMType = "SIGIL AUDIT HMAC KEY"
	hmacKeySize = 32
)

// Keys are a log's two secrets: the HMAC key that hides sensitive values
// and the Ed25519 key that signs checkpoints. Keys hold secret material:
// they print as REDACTED. Callers that keep keys elsewhere (the encrypted
// store) build Keys themselves and pass them in [Options.Keys].
type Keys struct {
	// HMAC is the key of HashValue; at least 32 bytes.
	HMAC []byte
	// Signing signs checkpoints.
	Signing ed25519.PrivateKey
}

// NewKeys generates fresh keys from rand (crypto/rand.Reader in
// production).
func NewKeys(rand io.Reader) (*Keys, error) {
	h := make([]byte, hmacKeySize)
	if _, err := io.ReadFull(rand, h); err != nil {
		return nil, fmt.Errorf("generating audit HMAC key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generating audit signing key: %w", err)
	}
	return &Keys{HMAC: h, Signing: priv}, nil
}

// Public returns the verification key.
func (k *Keys) Public() ed25519.PublicKey {
	return k.Signing.Public().(ed25519.PublicKey)
}

// validate checks the key sizes.
func (k *Keys) validate() error {
	if len(k.HMAC) < hmacKeySize {
		return fmt.Errorf("%w: HMAC key is %d bytes, want at least %d", ErrBadKey, len(k.HMAC), hmacKeySize)
	}
	if len(k.Signing) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: signing key is %d bytes, want %d", ErrBadKey, len(k.Signing), ed25519.PrivateKeySize)
	}
	return nil
}

// String implements fmt.Stringer without revealing the keys.
func (k *Keys) String() string { return "REDACTED" }

// LogValue implements slog.LogValuer without revealing the keys.
func (k *Keys) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON implements json.Marshaler without revealing the keys.
func (k *Keys) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// KeyID names a public key in checkpoints and messages: the first 8 bytes
// of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// LoadOrCreateKeys reads HMACKeyFile and SigningKeyFile from dir, or
// creates both (and PublicKeyFile) when neither exists. It refuses a
// directory holding only one of them, and private key files readable by
// group or others ([ErrKeyPermissions]). A missing PublicKeyFile is
// rewritten from the signing key.
func LoadOrCreateKeys(dir string, rand io.Reader) (*Keys, error) {
	hp := filepath.Join(dir, HMACKeyFile)
	sp := filepath.Join(dir, SigningKeyFile)
	_, herr := os.Stat(hp)
	_, serr := os.Stat(sp)
	switch {
	case errors.Is(herr, fs.ErrNotExist) && errors.Is(serr, fs.ErrNotExist):
		return createKeys(dir, rand)
	case errors.Is(herr, fs.ErrNotExist) || errors.Is(serr, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s has only one of %s and %s: restore the missing file from a backup, or move both aside to start a new key pair", ErrBadKey, dir, HMACKeyFile, SigningKeyFile)
	}
	k, err := LoadKeys(dir)
	if err != nil {
		return nil, err
	}
	pp := filepath.Join(dir, PublicKeyFile)
	if _, err := os.Stat(pp); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(pp, MarshalPublicKey(k.Public()), 0o644); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// LoadKeys reads HMACKeyFile and SigningKeyFile from dir without creating
// anything: for tools that must not invent keys.
func LoadKeys(dir string) (*Keys, error) {
	h, err := LoadHMACKey(filepath.Join(dir, HMACKeyFile))
	if err != nil {
		return nil, err
	}
	priv, err := loadSigningKey(filepath.Join(dir, SigningKeyFile))
	if err != nil {
		return nil, err
	}
	return &Keys{HMAC: h, Signing: priv}, nil
}

func createKeys(dir string, rand io.Reader) (*Keys, error) {
	k, err := NewKeys(rand)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating key directory %q: %w", dir, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Signing)
	if err != nil {
		return nil, fmt.Errorf("encoding audit signing key: %w", err)
	}
	files := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{HMACKeyFile, pem.EncodeToMemory(&pem.Block{Type: hmacPEMType, Bytes: k.HMAC}), 0o600},
		{SigningKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600},
		{PublicKeyFile, MarshalPublicKey(k.Public()), 0o644},
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// writeFileAtomic writes data to a temporary file, fsyncs it and renames it
// into place, so a crash never leaves half a key.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// readPrivateFile reads a key file after checking that only its owner can
// read it.
func readPrivateFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading audit key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o: run chmod 600 %s", ErrKeyPermissions, path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading audit key: %w", err)
	}
	return b, nil
}

// LoadHMACKey reads an HMAC key file as LoadOrCreateKeys writes it.
func LoadHMACKey(path string) ([]byte, error) {
	b, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseHMACKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParseHMACKey decodes the PEM block "SIGIL AUDIT HMAC KEY" holding at
// least 32 bytes, with nothing but whitespace around it.
func ParseHMACKey(b []byte) ([]byte, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != hmacPEMType || len(bytes.TrimSpace(rest)) != 0 || len(blk.Headers) != 0 {
		return nil, fmt.Errorf("%w: want one PEM block %q", ErrBadKey, hmacPEMType)
	}
	if len(blk.Bytes) < hmacKeySize {
		return nil, fmt.Errorf("%w: HMAC key is %d bytes, want at least %d", ErrBadKey, len(blk.Bytes), hmacKeySize)
	}
	return blk.Bytes, nil
}

func loadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: %s: want one PEM block \"PRIVATE KEY\"", ErrBadKey, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadKey, path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: not an Ed25519 key", ErrBadKey, path)
	}
	return priv, nil
}

// MarshalPublicKey encodes pub as PKIX PEM ("PUBLIC KEY"), the form
// `sigil audit pubkey` prints and PublicKeyFile holds.
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic("audit: internal error: encoding an Ed25519 public key: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKey accepts a public key as PKIX PEM ("PUBLIC KEY") or as the
// standard base64 of its 32 raw bytes (what `sigil audit pubkey --base64`
// prints), with surrounding whitespace.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	t := bytes.TrimSpace(b)
	if bytes.HasPrefix(t, []byte("-----BEGIN")) {
		blk, rest := pem.Decode(t)
		if blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: want one PEM block \"PUBLIC KEY\"", ErrBadKey)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: not an Ed25519 public key", ErrBadKey)
		}
		return pub, nil
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(string(t))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: want PEM or the base64 of %d bytes", ErrBadKey, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// LoadPublicKey reads a public key file in either form ParsePublicKey
// accepts.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading audit public key: %w", err)
	}
	pub, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// syncDir fsyncs a directory so that entries created in it survive a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %q: %w", dir, err)
	}
	return nil
}
