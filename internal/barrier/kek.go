package barrier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KEKProvider supplies the 32-byte key-encryption key that seals the
// keyring. The caller (the server's start-up code) asks it once and passes
// the key to Initialize or Unseal, then wipes it.
type KEKProvider interface {
	// Name identifies the provider in logs and errors: "file" or "env".
	Name() string
	// KEK returns a fresh copy of the key-encryption key, which the caller
	// owns and should zero after use. Errors say what is wrong with the
	// source and what to do, and never contain key material.
	KEK(ctx context.Context) ([]byte, error)
}

// Key file format, version 1: a header line, then the key as standard base64
// (with padding) on one line, then an optional final newline.
//
//	# sigil key-encryption key v1. Keep secret; losing it loses all data.
//	3q2+7w0...=
const (
	keyFileHeader = "# sigil key-encryption key v1. Keep secret; losing it loses all data."
	// maxKeyFileSize bounds what a loader reads: a valid file is about 115
	// bytes.
	maxKeyFileSize = 4096
)

// FileKEK keeps the key-encryption key in a file, the default provider of a
// single-node server (the file lives in the data directory, mode 0600).
// Whoever can read the file and the store can read every secret: keep the
// file on a different volume or backup than the store where possible.
type FileKEK struct {
	// Path is the key file. Its directory must exist.
	Path string
	// Rand generates a new key. nil means crypto/rand.Reader.
	Rand io.Reader
}

// Name returns "file".
func (FileKEK) Name() string { return "file" }

// KEK returns the key in Path, creating the file first if it does not
// exist. See LoadOrCreate.
func (f FileKEK) KEK(ctx context.Context) ([]byte, error) {
	key, _, err := f.LoadOrCreate(ctx)
	return key, err
}

// LoadOrCreate reads the key in Path. If there is no file, it generates 32
// random bytes and writes them atomically with mode 0600 (a temporary file
// in the same directory, fsynced, linked into place only if nothing exists
// there yet, then the directory is fsynced); created reports this. An
// existing file is never overwritten: if another process creates Path at
// the same moment, its key is loaded instead.
//
// Loading refuses, with an error wrapping ErrInsecureKeyFile, a file whose
// mode grants group or other users any access, and, with ErrInvalidKEK, a
// file that is not a regular file in the format written here.
func (f FileKEK) LoadOrCreate(ctx context.Context) (key []byte, created bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if f.Path == "" {
		return nil, false, fmt.Errorf("%w: no key file path configured", ErrInvalidKEK)
	}
	key, err = loadKeyFile(f.Path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	r := f.Rand
	if r == nil {
		r = rand.Reader
	}
	return createKeyFile(f.Path, r)
}

func loadKeyFile(path string) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening key file: %w", err)
	}
	defer file.Close()
	// Checking the opened file, not the path, leaves no gap between check
	// and read. Symbolic links are followed: Kubernetes mounts secrets
	// through them.
	fi, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("checking key file %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: key file %q is not a regular file", ErrInvalidKEK, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: key file %q has mode %#o, which gives group or other users access; "+
			"run chmod 600 %q (for a Kubernetes secret volume, set defaultMode: 0400)",
			ErrInsecureKeyFile, path, perm, path)
	}
	buf, err := io.ReadAll(io.LimitReader(file, maxKeyFileSize+1))
	defer clear(buf)
	if err != nil {
		return nil, fmt.Errorf("reading key file %q: %w", path, err)
	}
	if len(buf) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: key file %q is larger than %d bytes; it is not a sigil key file", ErrInvalidKEK, path, maxKeyFileSize)
	}
	key, err := parseKeyFile(buf)
	if err != nil {
		return nil, fmt.Errorf("key file %q: %w", path, err)
	}
	return key, nil
}

// parseKeyFile decodes the key file format. It accepts exactly the header
// line, one base64 line of a 32-byte key, and an optional final newline.
func parseKeyFile(b []byte) ([]byte, error) {
	header, body, ok := bytes.Cut(b, []byte("\n"))
	if !ok || string(header) != keyFileHeader {
		return nil, fmt.Errorf("%w: not a sigil key file (the first line must be %q)", ErrInvalidKEK, keyFileHeader)
	}
	body = bytes.TrimSuffix(body, []byte("\n"))
	if bytes.ContainsAny(body, "\r\n") {
		return nil, fmt.Errorf("%w: the key must be one line after the header", ErrInvalidKEK)
	}
	return decodeKEK(body)
}

// encodeKeyFile returns the key file contents for key. The caller wipes it.
func encodeKeyFile(key []byte) []byte {
	out := make([]byte, 0, len(keyFileHeader)+base64.StdEncoding.EncodedLen(len(key))+2)
	out = append(out, keyFileHeader...)
	out = append(out, '\n')
	out = base64.StdEncoding.AppendEncode(out, key)
	return append(out, '\n')
}

// decodeKEK decodes standard, padded base64 of exactly 32 bytes. Its errors
// never quote the input.
func decodeKEK(text []byte) ([]byte, error) {
	if len(text) == 0 {
		return nil, fmt.Errorf("%w: the key is empty", ErrInvalidKEK)
	}
	// The decoder would skip line breaks inside the text; refuse them so
	// that only one canonical form is accepted.
	if bytes.ContainsAny(text, "\r\n") {
		return nil, fmt.Errorf("%w: the key contains a line break", ErrInvalidKEK)
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Strict().Decode(key, text)
	if err != nil {
		clear(key)
		return nil, fmt.Errorf("%w: the key is not valid standard base64", ErrInvalidKEK)
	}
	if n != keySize {
		clear(key)
		return nil, fmt.Errorf("%w: the key decodes to %d bytes, want %d", ErrInvalidKEK, n, keySize)
	}
	return key[:n:n], nil
}

func createKeyFile(path string, rand io.Reader) ([]byte, bool, error) {
	key := make([]byte, keySize)
	if _, err := io.ReadFull(rand, key); err != nil {
		return nil, false, fmt.Errorf("generating key-encryption key: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		clear(key)
		return nil, false, fmt.Errorf("creating key file in %q: %w", dir, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // on failure paths; harmless once the file is placed
	contents := encodeKeyFile(key)
	defer clear(contents)
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(contents)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		clear(key)
		return nil, false, fmt.Errorf("writing key file %q: %w", tmpName, err)
	}
	if err := placeNoClobber(tmpName, path); err != nil {
		clear(key)
		if errors.Is(err, fs.ErrExist) {
			// Another process created the key first; use its key.
			k, err := loadKeyFile(path)
			return k, false, err
		}
		return nil, false, fmt.Errorf("creating key file %q: %w", path, err)
	}
	// Drop the temporary name (it remains after a hard link) before making
	// the directory durable, so a crash leaves only the real name.
	if err := os.Remove(tmpName); err != nil && !errors.Is(err, fs.ErrNotExist) {
		clear(key)
		return nil, false, fmt.Errorf("removing temporary key file %q: %w", tmpName, err)
	}
	if err := syncDir(dir); err != nil {
		clear(key)
		return nil, false, fmt.Errorf("syncing directory of key file %q: %w", path, err)
	}
	return key, true, nil
}

// placeNoClobber gives the fully written file tmp the name path, failing
// with fs.ErrExist if path exists. A hard link is atomic and never replaces
// an existing file; on filesystems without hard links it falls back to a
// rename after checking that path is still absent.
func placeNoClobber(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(path); serr == nil {
		return fs.ErrExist
	}
	if rerr := os.Rename(tmp, path); rerr != nil {
		return fmt.Errorf("%w (hard link failed: %v)", rerr, err)
	}
	return nil
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// EnvKEK takes the key-encryption key from an environment variable holding
// the standard, padded base64 encoding of 32 bytes (for example the output
// of `head -c 32 /dev/urandom | base64`). The package never reads the
// environment itself: cmd/sigil passes os.LookupEnv as Lookup.
type EnvKEK struct {
	// Var is the variable's name, used in lookups and messages.
	Var string
	// Lookup returns the value of a variable and whether it is set. It
	// must not be nil.
	Lookup func(name string) (string, bool)
}

// Name returns "env".
func (EnvKEK) Name() string { return "env" }

// KEK returns the decoded key. Surrounding whitespace in the value is
// ignored. Errors wrap ErrInvalidKEK and never contain the value.
func (e EnvKEK) KEK(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.Var == "" || e.Lookup == nil {
		return nil, fmt.Errorf("%w: environment key provider is not configured (no variable name or lookup)", ErrInvalidKEK)
	}
	v, ok := e.Lookup(e.Var)
	if !ok {
		return nil, fmt.Errorf("%w: environment variable %s is not set; set it to the base64 of 32 random bytes (head -c 32 /dev/urandom | base64)", ErrInvalidKEK, e.Var)
	}
	key, err := decodeKEK([]byte(strings.TrimSpace(v)))
	if err != nil {
		return nil, fmt.Errorf("environment variable %s: %w", e.Var, err)
	}
	return key, nil
}
