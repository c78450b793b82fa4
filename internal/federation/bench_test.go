package federation_test

import (
	"context"
	"testing"

	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/testutil"
)

// benchVerify measures Verify of one token with the provider's keys
// already cached: the cost STS pays per AssumeRoleWithWebIdentity.
func benchVerify(b *testing.B, alg string, parallel bool) {
	iss := testutil.StartOIDCIssuer(b, testutil.WithOIDCAlgorithm(alg))
	v := federation.NewVerifier(federation.Options{})
	p := providerFor(iss)
	token := iss.MintToken()
	ctx := context.Background()
	if _, err := v.Verify(ctx, p, token); err != nil {
		b.Fatalf("Verify: %v (%s)", err, detail(err))
	}
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, p, token); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if _, err := v.Verify(ctx, p, token); err != nil {
				b.Fatal(err)
			}
		}
	}
	if n := iss.JWKSFetches(); n != 1 {
		b.Fatalf("%d JWKS fetches; the keys were not cached", n)
	}
}

func BenchmarkVerifyRS256(b *testing.B)         { benchVerify(b, testutil.OIDCAlgRS256, false) }
func BenchmarkVerifyRS256Parallel(b *testing.B) { benchVerify(b, testutil.OIDCAlgRS256, true) }
func BenchmarkVerifyES256(b *testing.B)         { benchVerify(b, testutil.OIDCAlgES256, false) }
func BenchmarkVerifyEdDSA(b *testing.B)         { benchVerify(b, testutil.OIDCAlgEdDSA, false) }

// BenchmarkIssuerOf measures the unverified issuer lookup STS does first.
func BenchmarkIssuerOf(b *testing.B) {
	iss := testutil.StartOIDCIssuer(b, testutil.WithOIDCAlgorithm(testutil.OIDCAlgEdDSA))
	token := iss.MintToken()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := federation.IssuerOf(token); err != nil {
			b.Fatal(err)
		}
	}
}
