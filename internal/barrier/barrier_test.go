package barrier

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/store"
)

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	cases := []struct {
		name  string
		key   string
		value []byte
	}{
		{"json", "secrets/prod/db", []byte(`{"password":"hunter2"}`)},
		{"empty", "secrets/empty", []byte{}},
		{"binary", "secrets/bin", []byte{0, 1, 2, 0xff, 0}},
		{"unicode-key", "secrets/été/clé", []byte("value")},
		{"largest", "secrets/large", bytes.Repeat([]byte{'x'}, MaxValueSize)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rev := mustPut(t, f.b, c.key, c.value)
			e := mustGet(t, f.b, c.key)
			if !bytes.Equal(e.Value, c.value) {
				t.Fatalf("Get = %d bytes, want %d", len(e.Value), len(c.value))
			}
			if e.Revision != rev || e.Key != c.key {
				t.Errorf("Get = key %q rev %d, want %q rev %d", e.Key, e.Revision, c.key, rev)
			}
			raw := mustGet(t, f.inner, c.key)
			if raw.Revision != rev {
				t.Errorf("inner revision %d, barrier revision %d", raw.Revision, rev)
			}
			if len(raw.Value) != len(c.value)+Overhead {
				t.Errorf("stored %d bytes for a %d-byte value, want overhead %d", len(raw.Value), len(c.value), Overhead)
			}
		})
	}
	t.Run("too-large", func(t *testing.T) {
		_, err := f.b.Put(ctx, "secrets/huge", make([]byte, MaxValueSize+1))
		if !errors.Is(err, store.ErrTooLarge) {
			t.Fatalf("Put of MaxValueSize+1: %v, want ErrTooLarge", err)
		}
		_, err = f.b.Txn(ctx, nil, []store.Op{store.Put("secrets/huge", make([]byte, MaxValueSize+1))})
		if !errors.Is(err, store.ErrTooLarge) {
			t.Fatalf("Txn of MaxValueSize+1: %v, want ErrTooLarge", err)
		}
	})
	t.Run("txn", func(t *testing.T) {
		rev, err := f.b.Txn(ctx,
			[]store.Compare{{Key: "txn/a", Revision: store.MustNotExist}},
			[]store.Op{store.Put("txn/a", []byte("A")), store.Put("txn/b", []byte("B")), store.Delete("secrets/bin")})
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"txn/a": "A", "txn/b": "B"} {
			if e := mustGet(t, f.b, k); string(e.Value) != want || e.Revision != rev {
				t.Errorf("%s = %q rev %d, want %q rev %d", k, e.Value, e.Revision, want, rev)
			}
		}
		if _, err := f.b.Get(ctx, "secrets/bin"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted key: %v, want ErrNotFound", err)
		}
		// Compares pass through with the inner store's revisions.
		_, err = f.b.Txn(ctx, []store.Compare{{Key: "txn/a", Revision: rev - 1}}, []store.Op{store.Put("txn/a", []byte("X"))})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale compare: %v, want ErrConflict", err)
		}
		if _, err := f.b.Txn(ctx, []store.Compare{{Key: "txn/a", Revision: rev}}, []store.Op{store.Put("txn/a", []byte("Y"))}); err != nil {
			t.Fatalf("current compare: %v", err)
		}
		if e := mustGet(t, f.b, "txn/a"); string(e.Value) != "Y" {
			t.Errorf("txn/a = %q, want Y", e.Value)
		}
	})
	t.Run("update-helper", func(t *testing.T) {
		_, err := store.Update(ctx, f.b, func(v *store.View) error {
			e, err := v.Get("txn/b")
			if err != nil {
				return err
			}
			v.Put("txn/b", append(e.Value, '!'))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if e := mustGet(t, f.b, "txn/b"); string(e.Value) != "B!" {
			t.Errorf("txn/b = %q, want B!", e.Value)
		}
	})
	t.Run("list", func(t *testing.T) {
		es, next, err := f.b.List(ctx, "txn/", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if next != "" || len(es) != 2 || es[0].Key != "txn/a" || string(es[0].Value) != "Y" || string(es[1].Value) != "B!" {
			t.Fatalf("List = %v, %q", es, next)
		}
	})
	t.Run("not-found", func(t *testing.T) {
		if _, err := f.b.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(nope): %v, want ErrNotFound", err)
		}
	})
}

func TestSameValueEncryptsDifferently(t *testing.T) {
	f := newFixture(t)
	mustPut(t, f.b, "k", []byte("same"))
	first := mustGet(t, f.inner, "k").Value
	mustPut(t, f.b, "k", []byte("same"))
	second := mustGet(t, f.inner, "k").Value
	if bytes.Equal(first[headerSize:payloadStart], second[headerSize:payloadStart]) {
		t.Fatal("two writes used the same nonce")
	}
	if bytes.Equal(first, second) {
		t.Fatal("two writes of the same value produced the same ciphertext")
	}
}

func TestAADBindsStorageKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustPut(t, f.b, "secrets/a", []byte("value of a"))
	mustPut(t, f.b, "secrets/b", []byte("value of b"))
	env := mustGet(t, f.inner, "secrets/a").Value
	for _, dst := range []string{"secrets/b", "secrets/c", "secrets/a2", "secrets/"} {
		t.Run(dst, func(t *testing.T) {
			mustPut(t, f.inner, dst, env)
			e, err := f.b.Get(ctx, dst)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Get(%q) of a copied ciphertext = %q, %v; want ErrDecrypt", dst, e.Value, err)
			}
			if e.Value != nil {
				t.Errorf("value returned with ErrDecrypt")
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", dst)) || !strings.Contains(err.Error(), "failed authentication") {
				t.Errorf("error %q should name the key and say it failed authentication", err)
			}
		})
	}
	if e := mustGet(t, f.b, "secrets/a"); string(e.Value) != "value of a" {
		t.Errorf("original = %q", e.Value)
	}
}

func TestBitFlipsFailAuthentication(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	value := bytes.Repeat([]byte("0123456789"), 20)
	mustPut(t, f.b, "k", value)
	env := mustGet(t, f.inner, "k").Value
	check := func(t *testing.T, name string, mutated []byte) {
		t.Helper()
		mustPut(t, f.inner, "k", mutated)
		e, err := f.b.Get(ctx, "k")
		if !errors.Is(err, ErrDecrypt) || e.Value != nil {
			t.Fatalf("%s: Get = %d bytes, %v; want ErrDecrypt and no value", name, len(e.Value), err)
		}
	}
	for i := range env {
		for bit := 0; bit < 8; bit++ {
			m := bytes.Clone(env)
			m[i] ^= 1 << bit
			check(t, fmt.Sprintf("byte %d bit %d", i, bit), m)
		}
	}
	for n := 0; n < len(env); n++ {
		check(t, fmt.Sprintf("truncated to %d", n), bytes.Clone(env[:n]))
	}
	check(t, "appended byte", append(bytes.Clone(env), 0))
	check(t, "raw plaintext", value)
	mustPut(t, f.inner, "k", env)
	if e := mustGet(t, f.b, "k"); !bytes.Equal(e.Value, value) {
		t.Fatal("the unmodified envelope no longer opens")
	}
}

func TestSealedRefusesEveryMethod(t *testing.T) {
	ctx := context.Background()
	methods := []struct {
		name string
		call func(b *Barrier) error
	}{
		{"Get", func(b *Barrier) error { _, err := b.Get(ctx, "k"); return err }},
		{"List", func(b *Barrier) error { _, _, err := b.List(ctx, "", "", 0); return err }},
		{"Put", func(b *Barrier) error { _, err := b.Put(ctx, "k", []byte("v")); return err }},
		{"Delete", func(b *Barrier) error { return b.Delete(ctx, "k") }},
		{"Txn", func(b *Barrier) error { _, err := b.Txn(ctx, nil, []store.Op{store.Put("k", []byte("v"))}); return err }},
		{"Txn-compare-only", func(b *Barrier) error {
			_, err := b.Txn(ctx, []store.Compare{{Key: "k", Revision: 1}}, nil)
			return err
		}},
		{"Rotate", func(b *Barrier) error { _, err := b.Rotate(ctx); return err }},
	}
	states := []struct {
		name string
		make func(t *testing.T) *fixture
	}{
		{"uninitialized", newSealed},
		{"initialized-then-sealed", func(t *testing.T) *fixture {
			f := newFixture(t)
			mustPut(t, f.b, "k", []byte("v"))
			f.b.Seal()
			return f
		}},
		{"new-barrier-over-initialized-store", func(t *testing.T) *fixture {
			f := newFixture(t)
			mustPut(t, f.b, "k", []byte("v"))
			f.b = f.open(t, f.inner)
			return f
		}},
	}
	for _, s := range states {
		t.Run(s.name, func(t *testing.T) {
			f := s.make(t)
			if !f.b.Sealed() || !f.b.Status().Sealed {
				t.Fatal("barrier is not sealed")
			}
			before := f.inner.all()
			for _, m := range methods {
				if err := m.call(f.b); !errors.Is(err, ErrSealed) {
					t.Errorf("%s while sealed: %v, want ErrSealed", m.name, err)
				}
			}
			if after := f.inner.all(); len(after) != len(before) || after["k"].Revision != before["k"].Revision {
				t.Error("a sealed barrier changed the inner store")
			}
			if err := f.b.Close(); err != nil {
				t.Errorf("Close while sealed: %v", err)
			}
			if _, err := f.inner.Get(ctx, "k"); !errors.Is(err, store.ErrClosed) {
				t.Errorf("inner store not closed: %v", err)
			}
		})
	}
}

func TestReservedPrefix(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustPut(t, f.b, "a", []byte("A"))
	mustPut(t, f.b, "c", []byte("C"))
	calls := map[string]func() error{
		"Get":         func() error { _, err := f.b.Get(ctx, keyringKey); return err },
		"Put":         func() error { _, err := f.b.Put(ctx, keyringKey, []byte("x")); return err },
		"Put-other":   func() error { _, err := f.b.Put(ctx, "barrier/mine", []byte("x")); return err },
		"Delete":      func() error { return f.b.Delete(ctx, keyringKey) },
		"List":        func() error { _, _, err := f.b.List(ctx, ReservedPrefix, "", 0); return err },
		"Txn-op":      func() error { _, err := f.b.Txn(ctx, nil, []store.Op{store.Delete(keyringKey)}); return err },
		"Txn-compare": func() error { _, err := f.b.Txn(ctx, []store.Compare{{Key: keyringKey}}, nil); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, store.ErrInvalidKey) {
				t.Fatalf("%v, want ErrInvalidKey", err)
			}
		})
	}
	if ok, err := f.b.Initialized(ctx); !ok || err != nil {
		t.Fatal("the keyring was touched")
	}
	t.Run("list-skips-reserved", func(t *testing.T) {
		for _, prefix := range []string{"", "b", "barrier"} {
			es, _, err := f.b.List(ctx, prefix, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if strings.HasPrefix(e.Key, ReservedPrefix) {
					t.Errorf("List(%q) returned %q", prefix, e.Key)
				}
			}
		}
	})
	t.Run("pages-stay-full", func(t *testing.T) {
		// Keys in order: a, barrier/keyring, c.
		es, next, err := f.b.List(ctx, "", "", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[0].Key != "a" || es[1].Key != "c" || string(es[1].Value) != "C" {
			t.Fatalf("List limit 2 = %v, next %q; want a and c", es, next)
		}
		var keys []string
		after := ""
		for {
			es, next, err := f.b.List(ctx, "", after, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				keys = append(keys, e.Key)
			}
			if next == "" {
				break
			}
			after = next
		}
		if strings.Join(keys, ",") != "a,c" {
			t.Fatalf("paging with limit 1 found %v", keys)
		}
	})
}

func TestListFailsWholeOnBadEntry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustPut(t, f.b, "p/1", []byte("one"))
	mustPut(t, f.b, "p/2", []byte("two"))
	mustPut(t, f.inner, "p/3", []byte("not an envelope at all"))
	es, next, err := f.b.List(ctx, "p/", "", 0)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("List: %v, want ErrDecrypt", err)
	}
	if es != nil || next != "" {
		t.Fatalf("List returned %d entries alongside an error", len(es))
	}
}

// TestPlaintextNeverReachesInner plants distinctive values through every
// write path and searches every byte the inner store holds for them and for
// the barrier's keys.
func TestPlaintextNeverReachesInner(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	marker := "sigil-plaintext-marker-" + hex.EncodeToString(testKEK(77)[:8])
	mustPut(t, f.b, "secrets/put", []byte(marker))
	if _, err := f.b.Txn(ctx, nil, []store.Op{store.Put("secrets/txn", []byte("prefix "+marker+" suffix"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	mustPut(t, f.b, "secrets/after-rotate", []byte(marker))
	if _, err := store.Update(ctx, f.b, func(v *store.View) error {
		v.Put("secrets/update", []byte(marker))
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	st := f.b.state.Load()
	needles := map[string][]byte{"marker": []byte(marker), "KEK": f.kek}
	for _, k := range st.ring.keys {
		needles[fmt.Sprintf("data key %d", k.term)] = bytes.Clone(k.key[:])
	}
	for name, n := range needles {
		needles[name+" (hex)"] = []byte(hex.EncodeToString(n))
	}
	all := f.inner.all()
	if len(all) < 5 {
		t.Fatalf("inner store holds %d entries", len(all))
	}
	for key, e := range all {
		for name, n := range needles {
			if bytes.Contains(e.Value, n) || strings.Contains(key, string(n)) {
				t.Errorf("inner entry %q contains the %s", key, name)
			}
		}
	}
	for name, n := range needles {
		if strings.Contains(f.logs.String(), string(n)) {
			t.Errorf("log contains the %s", name)
		}
	}
	if e := mustGet(t, f.b, "secrets/put"); string(e.Value) != marker {
		t.Fatal("planted value does not read back")
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.b.Close(); err != nil {
		t.Fatal(err)
	}
	if !f.b.Sealed() {
		t.Error("Close did not seal")
	}
	if err := f.b.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	calls := map[string]func() error{
		"Get":         func() error { _, err := f.b.Get(ctx, "k"); return err },
		"Put":         func() error { _, err := f.b.Put(ctx, "k", nil); return err },
		"Delete":      func() error { return f.b.Delete(ctx, "k") },
		"List":        func() error { _, _, err := f.b.List(ctx, "", "", 0); return err },
		"Txn":         func() error { _, err := f.b.Txn(ctx, nil, nil); return err },
		"Unseal":      func() error { return f.b.Unseal(ctx, f.kek) },
		"Initialize":  func() error { return f.b.Initialize(ctx, f.kek) },
		"Initialized": func() error { _, err := f.b.Initialized(ctx); return err },
		"Rotate":      func() error { _, err := f.b.Rotate(ctx); return err },
		"NewUnsealer": func() error { _, err := f.b.NewUnsealer(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}
