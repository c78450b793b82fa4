package sts_test

import (
	"context"
	"fmt"
	"testing"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/sts"
	"sigil.dev/sigil/internal/testutil"
)

// benchSetup registers the issuer and the application role directly in
// the entity store and returns the form of an AssumeRoleWithWebIdentity
// call with a valid RS256 token.
func benchSetup(b *testing.B) (*harness, awsproto.Values) {
	b.Helper()
	h := newHarness(b, func(c *sts.Config) { c.Audit = audit.Discard{} })
	ctx := context.Background()
	prov, err := h.ents.CreateOIDCProvider(ctx, iam.NewOIDCProvider{URL: h.issuer.URL,
		ClientIDs: []string{testutil.DefaultOIDCAudience}, Thumbprints: []string{h.issuer.Thumbprint}})
	mustNoErr(b, err)
	prefix := federation.ConditionKeyPrefix(h.issuer.URL)
	role, err := h.ents.CreateRole(ctx, iam.NewRole{Name: appRole, TrustPolicy: trustWebIdentity(prov.ARN,
		fmt.Sprintf(`{"StringEquals":{"%s:sub":%q}}`, prefix, appSubject))})
	mustNoErr(b, err)
	token := h.issuer.MintToken(testutil.TokenServiceAccount("my-app"))
	form := awsproto.Values{"Action": "AssumeRoleWithWebIdentity", "Version": sts.APIVersion,
		"RoleArn": role.ARN, "RoleSessionName": "bench", "WebIdentityToken": token}
	// Warm the JWKS cache, as a running server has it.
	if _, err := h.sts.Handle(ctx, &sts.Call{Action: form.Action(), Form: form}); err != nil {
		b.Fatal(err)
	}
	return h, form
}

// BenchmarkAssumeRoleWithWebIdentity measures the whole exchange in
// process: token parse and RS256 verification (keys cached), provider and
// role lookups, trust policy, minting and sealing the session.
func BenchmarkAssumeRoleWithWebIdentity(b *testing.B) {
	h, form := benchSetup(b)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.sts.Handle(ctx, &sts.Call{Action: form.Action(), Form: form}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.sts.Handle(ctx, &sts.Call{Action: form.Action(), Form: form}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "assumes/s")
	})
}

// BenchmarkSessionPrincipal measures verifying a session token: decode,
// open, expiry and revocation checks, building the principal.
func BenchmarkSessionPrincipal(b *testing.B) {
	h, form := benchSetup(b)
	ctx := context.Background()
	form["Policy"] = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	resp, err := h.sts.Handle(ctx, &sts.Call{Action: form.Action(), Form: form})
	if err != nil {
		b.Fatal(err)
	}
	id, token := sts.SessionOf(resp)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.sts.Principal(ctx, id, token); err != nil {
			b.Fatal(err)
		}
	}
}
