package barrier

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var _ KEKProvider = FileKEK{}
var _ KEKProvider = EnvKEK{}

func TestFileKEKCreatesThenLoads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := FileKEK{Path: filepath.Join(dir, "sigil.kek")}
	key, created, err := p.LoadOrCreate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !created || len(key) != keySize || bytes.Equal(key, make([]byte, keySize)) {
		t.Fatalf("LoadOrCreate = %d bytes, created %v", len(key), created)
	}
	fi, err := os.Stat(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %#o, want 0600", perm)
	}
	contents, err := os.ReadFile(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(contents), keyFileHeader+"\n") {
		t.Errorf("key file does not start with its header line")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file (temporary file left behind?)", len(entries))
	}

	again, created, err := p.LoadOrCreate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if created || !bytes.Equal(again, key) {
		t.Fatalf("second LoadOrCreate: created %v, same key %v", created, bytes.Equal(again, key))
	}
	viaKEK, err := p.KEK(ctx)
	if err != nil || !bytes.Equal(viaKEK, key) {
		t.Fatalf("KEK = same %v, %v", bytes.Equal(viaKEK, key), err)
	}
	if p.Name() != "file" {
		t.Errorf("Name = %q", p.Name())
	}
}

func TestFileKEKConcurrentCreateAgrees(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sigil.kek")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			keys[i], _, errs[i] = FileKEK{Path: path}.LoadOrCreate(ctx)
		}()
	}
	close(start)
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("creator %d got a different key: a key file was overwritten", i)
		}
	}
	onDisk, err := loadKeyFile(path)
	if err != nil || !bytes.Equal(onDisk, keys[0]) {
		t.Fatal("the file does not hold the key every caller got")
	}
}

// writeKeyFile writes contents at a fresh path with mode perm.
func writeKeyFile(t *testing.T, contents []byte, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sigil.kek")
	if err := os.WriteFile(path, contents, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFileKEKRefusesInsecureMode(t *testing.T) {
	valid, err := os.ReadFile(filepath.Join("testdata", "kek_v1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, perm := range []os.FileMode{0o640, 0o644, 0o660, 0o604, 0o606, 0o610, 0o601, 0o666, 0o777} {
		t.Run(fmt.Sprintf("%#o", perm), func(t *testing.T) {
			path := writeKeyFile(t, valid, perm)
			key, created, err := FileKEK{Path: path}.LoadOrCreate(context.Background())
			if !errors.Is(err, ErrInsecureKeyFile) {
				t.Fatalf("LoadOrCreate = %d bytes, %v; want ErrInsecureKeyFile", len(key), err)
			}
			if created || key != nil {
				t.Fatal("key returned for an insecure file")
			}
			msg := err.Error()
			if !strings.Contains(msg, "chmod 600") || !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprintf("%#o", perm)) {
				t.Errorf("error %q should name the file, its mode and the fix", msg)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, valid) {
				t.Fatal("the refused file was modified")
			}
		})
	}
	for _, perm := range []os.FileMode{0o600, 0o400, 0o700} {
		t.Run(fmt.Sprintf("accepts-%#o", perm), func(t *testing.T) {
			path := writeKeyFile(t, valid, perm)
			if _, _, err := (FileKEK{Path: path}).LoadOrCreate(context.Background()); err != nil {
				t.Fatalf("mode %#o refused: %v", perm, err)
			}
		})
	}
}

func TestFileKEKRefusesMalformedFiles(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "bad_kek_*.txt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no bad key files: %v", err)
	}
	cases := map[string][]byte{"too-large": bytes.Repeat([]byte("A"), maxKeyFileSize+1)}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cases[filepath.Base(p)] = b
	}
	for name, contents := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeKeyFile(t, contents, 0o600)
			key, created, err := FileKEK{Path: path}.LoadOrCreate(context.Background())
			if !errors.Is(err, ErrInvalidKEK) {
				t.Fatalf("LoadOrCreate = %d bytes, created %v, %v; want ErrInvalidKEK", len(key), created, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, contents) {
				t.Fatal("a malformed key file was overwritten")
			}
		})
	}
}

func TestFileKEKErrorsDoNotLeakContents(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xab}, 24)) // valid base64, wrong size
	path := writeKeyFile(t, []byte(keyFileHeader+"\n"+secret+"\n"), 0o600)
	_, _, err := FileKEK{Path: path}.LoadOrCreate(context.Background())
	if !errors.Is(err, ErrInvalidKEK) {
		t.Fatalf("%v, want ErrInvalidKEK", err)
	}
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "24 bytes") {
		t.Fatalf("error %q should give the size and not the contents", err)
	}
}

func TestFileKEKOtherErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, _, err := (FileKEK{Path: dir}).LoadOrCreate(ctx); !errors.Is(err, ErrInvalidKEK) {
			t.Fatalf("%v, want ErrInvalidKEK", err)
		}
	})
	t.Run("missing-directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "such", "sigil.kek")
		_, _, err := FileKEK{Path: path}.LoadOrCreate(ctx)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v, want a not-exist error", err)
		}
	})
	t.Run("no-path", func(t *testing.T) {
		if _, _, err := (FileKEK{}).LoadOrCreate(ctx); !errors.Is(err, ErrInvalidKEK) {
			t.Fatalf("%v, want ErrInvalidKEK", err)
		}
	})
	t.Run("broken-rand", func(t *testing.T) {
		dir := t.TempDir()
		_, _, err := FileKEK{Path: filepath.Join(dir, "k"), Rand: failingRand{}}.LoadOrCreate(ctx)
		if err == nil {
			t.Fatal("created a key without randomness")
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("left %d files behind", len(entries))
		}
	})
	t.Run("symlink-followed", func(t *testing.T) {
		valid, err := os.ReadFile(filepath.Join("testdata", "kek_v1.txt"))
		if err != nil {
			t.Fatal(err)
		}
		target := writeKeyFile(t, valid, 0o400)
		link := filepath.Join(t.TempDir(), "link.kek")
		if err := os.Symlink(target, link); err != nil {
			t.Skipf("symlinks unavailable: %v", err)
		}
		key, created, err := FileKEK{Path: link}.LoadOrCreate(ctx)
		if err != nil || created || len(key) != keySize {
			t.Fatalf("through a symlink: %d bytes, created %v, %v", len(key), created, err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := (FileKEK{Path: filepath.Join(t.TempDir(), "k")}).KEK(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("%v, want context.Canceled", err)
		}
	})
}

func TestParseKeyFileValid(t *testing.T) {
	want := unhex(t, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf")
	for _, name := range []string{"kek_v1.txt", "kek_v1_no_final_newline.txt"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			key, err := parseKeyFile(b)
			if err != nil || !bytes.Equal(key, want) {
				t.Fatalf("parseKeyFile = %x, %v", key, err)
			}
		})
	}
	if got := encodeKeyFile(want); string(got) != mustReadFile(t, "kek_v1.txt") {
		t.Fatalf("encodeKeyFile = %q", got)
	}
}

func mustReadFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzParseKeyFile checks that the key file parser never panics and accepts
// only files that re-encode to themselves (up to the optional final
// newline).
func FuzzParseKeyFile(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*kek*.txt"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		key, err := parseKeyFile(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidKEK) {
				t.Fatalf("error %v does not wrap ErrInvalidKEK", err)
			}
			return
		}
		if len(key) != keySize {
			t.Fatalf("accepted a %d-byte key", len(key))
		}
		canon := encodeKeyFile(key)
		if !bytes.Equal(in, canon) && !bytes.Equal(in, canon[:len(canon)-1]) {
			t.Fatalf("accepted a non-canonical key file %q", in)
		}
	})
}

func TestEnvKEK(t *testing.T) {
	ctx := context.Background()
	raw := bytes.Repeat([]byte{0x5c}, keySize)
	good := base64.StdEncoding.EncodeToString(raw)
	const distinctive = "c2lnaWwtZGlzdGluY3RpdmUtc2VjcmV0LXZhbHVl" // base64 of a 30-byte string
	cases := []struct {
		name    string
		value   string
		set     bool
		wantErr string // substring of the error; "" means success
	}{
		{"valid", good, true, ""},
		{"valid-trailing-newline", good + "\n", true, ""},
		{"valid-surrounding-space", "  " + good + " ", true, ""},
		{"unset", "", false, "is not set"},
		{"empty", "", true, "empty"},
		{"whitespace-only", " \t\n", true, "empty"},
		{"not-base64", "not*base64*at*all", true, "not valid standard base64"},
		{"wrong-size", distinctive, true, "decodes to 30 bytes"},
		{"31-bytes", base64.StdEncoding.EncodeToString(raw[:31]), true, "decodes to 31 bytes"},
		{"33-bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 1)), true, "decodes to 33 bytes"},
		{"unpadded", strings.TrimRight(good, "="), true, "not valid standard base64"},
		{"url-safe", base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, keySize)), true, "not valid standard base64"},
		{"hex", strings.Repeat("5c", keySize), true, "decodes to 48 bytes"},
		{"embedded-newline", good[:20] + "\n" + good[20:], true, "line break"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var asked string
			p := EnvKEK{Var: "SIGIL_KEK", Lookup: func(name string) (string, bool) {
				asked = name
				return c.value, c.set
			}}
			key, err := p.KEK(ctx)
			if asked != "SIGIL_KEK" {
				t.Fatalf("looked up %q", asked)
			}
			if c.wantErr == "" {
				if err != nil || !bytes.Equal(key, raw) {
					t.Fatalf("KEK = %x, %v", key, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKEK) || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("KEK error %v, want ErrInvalidKEK containing %q", err, c.wantErr)
			}
			if !strings.Contains(err.Error(), "SIGIL_KEK") {
				t.Errorf("error %q does not name the variable", err)
			}
			if v := strings.TrimSpace(c.value); v != "" && strings.Contains(err.Error(), v) {
				t.Errorf("error %q echoes the value", err)
			}
		})
	}
	t.Run("no-lookup", func(t *testing.T) {
		if _, err := (EnvKEK{Var: "SIGIL_KEK"}).KEK(ctx); !errors.Is(err, ErrInvalidKEK) {
			t.Fatalf("%v, want ErrInvalidKEK", err)
		}
	})
	if (EnvKEK{}).Name() != "env" {
		t.Error("Name is not env")
	}
}

// TestProvidersUnseal runs the providers end to end: a key file created on
// first start unseals a later barrier over the same store.
func TestProvidersUnseal(t *testing.T) {
	ctx := context.Background()
	inner := newMemStore()
	p := FileKEK{Path: filepath.Join(t.TempDir(), "sigil.kek")}
	kek, err := p.KEK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := New(inner, Options{})
	if err := first.Initialize(ctx, kek); err != nil {
		t.Fatal(err)
	}
	mustPut(t, first, "k", []byte("v"))
	again, err := p.KEK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second := New(inner, Options{})
	if err := second.Unseal(ctx, again); err != nil {
		t.Fatal(err)
	}
	if e := mustGet(t, second, "k"); string(e.Value) != "v" {
		t.Fatalf("read %q", e.Value)
	}
	env := EnvKEK{Var: "K", Lookup: func(string) (string, bool) { return base64.StdEncoding.EncodeToString(kek), true }}
	fromEnv, err := env.KEK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	third := New(inner, Options{})
	if err := third.Unseal(ctx, fromEnv); err != nil {
		t.Fatalf("the same key through the environment: %v", err)
	}
}
