package images_test

import (
	"context"
	"testing"
)

// BenchmarkVerifyAssertion measures the registry's part of an exchange:
// parse, key read through the barrier, Ed25519 verification, revocation
// and time checks, and the jti group-committed to the bolt store (fsync).
// Signing the assertion, the workload's part, is included in each
// iteration.
func BenchmarkVerifyAssertion(b *testing.B) {
	f := newFixture(b)
	k := f.register(b, 0)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.reg.VerifyAssertion(ctx, k.sign(b, k.claims(f.clock.Now()), nil)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(64)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := f.reg.VerifyAssertion(ctx, k.sign(b, k.claims(f.clock.Now()), nil)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
	})
}
