package sts_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/images"
	"sigil.dev/sigil/internal/sts"
)

// imageSetup is a harness whose STS accepts sealed-image assertions from
// a registry over the same store, records to audit (a real durable log
// when durable is true), and has a role trusting one registered image.
func imageSetup(tb testing.TB, sink func(tb testing.TB) audit.Sink) (*harness, *images.Registry, *benchImage) {
	tb.Helper()
	var reg *images.Registry
	h := newHarness(tb, func(c *sts.Config) {
		var err error
		reg, err = images.New(context.Background(), images.Config{Store: c.Store, Roles: c.Entities, AccountID: c.AccountID, Now: c.Now})
		mustNoErr(tb, err)
		c.Images = reg
		if sink != nil {
			c.Audit = sink(tb)
		}
	})
	ctx := context.Background()
	role, err := h.ents.CreateRole(ctx, iam.NewRole{Name: "image-app", TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
		`"Principal":{"Federated":"sigil:image"},"Action":"sts:AssumeRoleWithWebIdentity",` +
		`"Condition":{"StringEquals":{"sigil:ImageRepository":"registry.example.com/team/app"}}}]}`})
	mustNoErr(tb, err)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	mustNoErr(tb, err)
	var d [32]byte
	_, _ = rand.Read(d[:])
	resp, err := reg.Register(ctx, "ci", &images.RegisterRequest{Digest: "sha256:" + hex.EncodeToString(d[:]),
		Repository: "registry.example.com/team/app", RoleARN: role.ARN, PublicKey: base64.StdEncoding.EncodeToString(pub)})
	mustNoErr(tb, err)
	return h, reg, &benchImage{priv: priv, keyID: resp.KeyID, aud: resp.Audience, role: role.ARN, now: h.clock.Now}
}

// durableAudit opens a real audit log (synchronous, group-committed).
func durableAudit(tb testing.TB) audit.Sink {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "audit")
	keys, err := audit.NewKeys(rand.Reader)
	mustNoErr(tb, err)
	l, err := audit.Open(dir, audit.Options{Keys: keys, AccountID: testAccount, Region: testRegion})
	mustNoErr(tb, err)
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

type benchImage struct {
	priv             ed25519.PrivateKey
	keyID, aud, role string
	now              func() time.Time
}

// form returns the AssumeRoleWithWebIdentity form of a fresh assertion.
func (bi *benchImage) form(tb testing.TB) awsproto.Values {
	var j [16]byte
	_, _ = rand.Read(j[:])
	now := bi.now()
	hb, _ := json.Marshal(map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": bi.keyID})
	cb, _ := json.Marshal(map[string]any{"iss": "sigil:image", "sub": bi.keyID, "aud": bi.aud, "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": hex.EncodeToString(j[:])})
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	tok := in + "." + enc.EncodeToString(ed25519.Sign(bi.priv, []byte(in)))
	return awsproto.Values{"Action": "AssumeRoleWithWebIdentity", "Version": sts.APIVersion,
		"RoleArn": bi.role, "RoleSessionName": "bench", "WebIdentityToken": tok}
}

// BenchmarkImageExchange measures the sealed-image exchange in process:
// assertion parse and Ed25519 verification, key lookup (store read through
// the barrier), revocation check, the jti written to the store (bolt,
// fsync, group-committed), trust policy, session minting and the audit
// record (a real synchronous audit log). Each iteration also signs its
// assertion, as the workload would, so the server-side rate is higher than
// reported.
func BenchmarkImageExchange(b *testing.B) {
	h, _, bi := imageSetup(b, durableAudit)
	ctx := context.Background()
	run := func(b *testing.B) {
		f := bi.form(b)
		if _, err := h.sts.Handle(ctx, &sts.Call{Action: f.Action(), Form: f}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run(b)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				f := bi.form(b)
				if _, err := h.sts.Handle(ctx, &sts.Call{Action: f.Action(), Form: f}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
	})
}

// benchParallelism is goroutines per core in the parallel benchmark:
// exchanges wait on two group commits (jti, audit), so the rate grows
// with the number of concurrent callers, as it does with a server's
// connections.
const benchParallelism = 64
