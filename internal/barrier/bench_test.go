package barrier

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"testing"
)

const benchValueSize = 200

func benchAEAD(b *testing.B) *aeadFixture {
	b.Helper()
	var k secretKey
	if _, err := rand.Read(k[:]); err != nil {
		b.Fatal(err)
	}
	aead, err := newAEAD(&k)
	if err != nil {
		b.Fatal(err)
	}
	return &aeadFixture{aead: aead}
}

type aeadFixture struct {
	aead cipher.AEAD
	pool aadPool
}

// BenchmarkSeal measures encrypting one 200-byte value: a nonce from
// crypto/rand, one GCM seal, one allocation for the envelope.
func BenchmarkSeal(b *testing.B) {
	f := benchAEAD(b)
	value := bytes.Repeat([]byte{'v'}, benchValueSize)
	b.ReportAllocs()
	b.SetBytes(benchValueSize)
	for b.Loop() {
		if _, err := sealEnvelope(f.aead, 1, rand.Reader, &f.pool, "secrets/prod/db", value); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures authenticating and decrypting one 200-byte value in
// place (the copy restoring the ciphertext each iteration is included).
func BenchmarkOpen(b *testing.B) {
	f := benchAEAD(b)
	env, err := sealEnvelope(f.aead, 1, rand.Reader, &f.pool, "secrets/prod/db", bytes.Repeat([]byte{'v'}, benchValueSize))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, len(env))
	b.ReportAllocs()
	b.SetBytes(benchValueSize)
	for b.Loop() {
		copy(buf, env)
		if _, err := openEnvelope(f.aead, &f.pool, "secrets/prod/db", buf); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBarrier(b *testing.B) *Barrier {
	b.Helper()
	br := New(newMemStore(), Options{})
	if err := br.Initialize(context.Background(), testKEK(1)); err != nil {
		b.Fatal(err)
	}
	if _, err := br.Put(context.Background(), "secrets/prod/db", bytes.Repeat([]byte{'v'}, benchValueSize)); err != nil {
		b.Fatal(err)
	}
	return br
}

// BenchmarkBarrierGet measures Get of a 200-byte value over the in-memory
// inner store: one inner Get (which copies the value) and one GCM open.
func BenchmarkBarrierGet(b *testing.B) {
	br := benchBarrier(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(benchValueSize)
	for b.Loop() {
		if _, err := br.Get(ctx, "secrets/prod/db"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBarrierGetParallel is BenchmarkBarrierGet from every core at once,
// showing that the read path takes no barrier lock.
func BenchmarkBarrierGetParallel(b *testing.B) {
	br := benchBarrier(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(benchValueSize)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Get(ctx, "secrets/prod/db"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBarrierPut measures Put of a 200-byte value over the in-memory
// inner store.
func BenchmarkBarrierPut(b *testing.B) {
	br := benchBarrier(b)
	ctx := context.Background()
	value := bytes.Repeat([]byte{'v'}, benchValueSize)
	b.ReportAllocs()
	b.SetBytes(benchValueSize)
	for b.Loop() {
		if _, err := br.Put(ctx, "secrets/prod/db", value); err != nil {
			b.Fatal(err)
		}
	}
}
