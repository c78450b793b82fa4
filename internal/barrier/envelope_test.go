package barrier

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestEnvelopeKnownAnswers checks the value format against envelopes
// computed independently (testdata/vectors.py, pyca/cryptography): sealing
// with the vector's nonce gives the same bytes, and the barrier opens them.
func TestEnvelopeKnownAnswers(t *testing.T) {
	b := vectorBarrier(t)
	for _, v := range envelopeVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			var k secretKey
			copy(k[:], unhex(t, v.DataKey))
			aead, err := newAEAD(&k)
			if err != nil {
				t.Fatal(err)
			}
			plaintext, want := unhex(t, v.Plaintext), unhex(t, v.Envelope)
			got, err := sealEnvelope(aead, v.Term, bytes.NewReader(unhex(t, v.Nonce)), &aadPool{}, v.StorageKey, plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("sealEnvelope =\n%x\nwant\n%x", got, want)
			}
			mustPut(t, b.inner, v.StorageKey, want)
			if e := mustGet(t, b, v.StorageKey); !bytes.Equal(e.Value, plaintext) {
				t.Fatalf("Get = %x, want %x", e.Value, plaintext)
			}
		})
	}
}

func TestBadEnvelopes(t *testing.T) {
	ctx := context.Background()
	b := vectorBarrier(t)
	for _, c := range badEnvelopes(t) {
		t.Run(c.Name, func(t *testing.T) {
			mustPut(t, b.inner, c.StorageKey, unhex(t, c.Envelope))
			e, err := b.Get(ctx, c.StorageKey)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Get = %x, %v; want ErrDecrypt", e.Value, err)
			}
			if e.Value != nil {
				t.Fatal("a value came back with ErrDecrypt")
			}
		})
	}
}

// FuzzOpenEnvelope mutates genuine envelopes: opening must never panic and
// must succeed only on an envelope exactly as sealed, with its plaintext.
func FuzzOpenEnvelope(f *testing.F) {
	vectors := envelopeVectors(f)
	for _, v := range vectors {
		f.Add(v.StorageKey, unhex(f, v.Envelope))
	}
	for _, c := range badEnvelopes(f) {
		f.Add(c.StorageKey, unhex(f, c.Envelope))
	}
	b := vectorBarrier(f)
	st := b.state.Load()
	f.Fuzz(func(t *testing.T, key string, env []byte) {
		in := bytes.Clone(env) // open decrypts in place
		pt, err := b.open(context.Background(), st, key, in)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v does not wrap ErrDecrypt", err)
			}
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		for _, v := range vectors {
			if key == v.StorageKey && bytes.Equal(env, unhex(t, v.Envelope)) {
				if !bytes.Equal(pt, unhex(t, v.Plaintext)) {
					t.Fatalf("genuine envelope opened to %x", pt)
				}
				return
			}
		}
		t.Fatalf("a mutated envelope opened: key %q, %x", key, env)
	})
}
