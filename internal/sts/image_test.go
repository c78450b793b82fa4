package sts_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/images"
	"sigil.dev/sigil/internal/sts"
	"sigil.dev/sigil/internal/testutil"
)

// TestImageSessionRevocation: a session minted for an image carries its
// digest; revoking the digest makes the issuing replica refuse the session
// at once and another replica (its own STS and registry over the same
// store) within a second; a Service without an image verifier refuses
// such sessions outright.
func TestImageSessionRevocation(t *testing.T) {
	h, reg, bi := imageSetup(t, nil)
	ctx := context.Background()
	f := bi.form(t)
	resp, err := h.sts.Handle(ctx, &sts.Call{Action: f.Action(), Form: f})
	mustNoErr(t, err)
	id, token := sts.SessionOf(resp)

	replicaReg, err := images.New(ctx, images.Config{Store: h.store, Roles: h.ents, AccountID: testAccount})
	mustNoErr(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); replicaReg.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	replica := h.newSTS(func(c *sts.Config) { c.Images = replicaReg })
	blind := h.newSTS()

	p, err := replica.Principal(ctx, id, token)
	mustNoErr(t, err)
	k, err := reg.Key(ctx, bi.keyID)
	mustNoErr(t, err)
	if p.Session.ImageDigest != k.Digest || p.Session.FederatedProvider != "sigil:image" {
		t.Fatalf("session %+v does not name the image", p.Session)
	}
	if p.Session.Claims["sigil:ImageKeyId"] != bi.keyID {
		t.Fatalf("session claims %v lack the key id", p.Session.Claims)
	}
	if _, err := blind.Principal(ctx, id, token); !errors.Is(err, sts.ErrRevokedSession) {
		t.Fatalf("a service without images: err = %v, want ErrRevokedSession", err)
	}

	_, err = reg.Revoke(ctx, k.Digest, "test", "root")
	mustNoErr(t, err)
	if _, err := h.sts.Principal(ctx, id, token); !errors.Is(err, sts.ErrRevokedSession) || !errors.Is(err, sts.ErrInvalidSessionToken) {
		t.Fatalf("issuing replica after revoke: err = %v, want ErrRevokedSession", err)
	}
	testutil.WaitFor(t, time.Second, func() bool {
		_, err := replica.Principal(ctx, id, token)
		return errors.Is(err, sts.ErrRevokedSession)
	})
	f = bi.form(t)
	_, err = h.sts.Handle(ctx, &sts.Call{Action: f.Action(), Form: f})
	if e, ok := awsproto.As(err); err == nil || !ok || e.Code != "InvalidIdentityToken" {
		t.Fatalf("an exchange for a revoked digest: err = %v, want InvalidIdentityToken", err)
	}
	if ev := h.audit.last("sts.amazonaws.com"); ev == nil || ev.Allowed || ev.ErrorCode != "InvalidIdentityToken" {
		t.Fatalf("the refused exchange is audited as %+v", ev)
	}
}

// TestImageExchangeAudit: the audit event of an exchange names the image
// digest and the sealed-image provider, and never holds the assertion.
func TestImageExchangeAudit(t *testing.T) {
	h, reg, bi := imageSetup(t, nil)
	ctx := context.Background()
	f := bi.form(t)
	_, err := h.sts.Handle(ctx, &sts.Call{Action: f.Action(), Form: f})
	mustNoErr(t, err)
	k, err := reg.Key(ctx, bi.keyID)
	mustNoErr(t, err)
	ev := h.audit.last("sts.amazonaws.com")
	if ev == nil || !ev.Allowed || ev.ImageDigest != k.Digest || ev.Identity == nil || ev.Identity.IdentityProvider != "sigil:image" {
		t.Fatalf("audit event %+v", ev)
	}
	if strings.Contains(h.logs.String(), f["WebIdentityToken"]) {
		t.Fatal("the log holds the assertion")
	}
}

// TestImageReplayAcrossServices: an assertion accepted by one STS is
// refused by another STS (with its own registry) over the same store.
func TestImageReplayAcrossServices(t *testing.T) {
	h, _, bi := imageSetup(t, nil)
	ctx := context.Background()
	replicaReg, err := images.New(ctx, images.Config{Store: h.store, Roles: h.ents, AccountID: testAccount})
	mustNoErr(t, err)
	replica := h.newSTS(func(c *sts.Config) { c.Images = replicaReg })
	f := bi.form(t)
	_, err = h.sts.Handle(ctx, &sts.Call{Action: f.Action(), Form: f})
	mustNoErr(t, err)
	for name, svc := range map[string]*sts.Service{"same service": h.sts, "other service": replica} {
		_, err := svc.Handle(ctx, &sts.Call{Action: f.Action(), Form: f})
		if e, ok := awsproto.As(err); err == nil || !ok || e.Code != "InvalidIdentityToken" {
			t.Fatalf("%s: replay: err = %v, want InvalidIdentityToken", name, err)
		}
	}
	if !strings.Contains(h.logs.String(), "was already used") {
		t.Fatal("the server log does not say the jti was replayed")
	}
}

// TestImageRevocationStopsChainedSessions: a session that an image's
// session obtained with AssumeRole (role chaining) carries the image's
// digest, so revoking the image stops it too.
func TestImageRevocationStopsChainedSessions(t *testing.T) {
	h, reg, bi := imageSetup(t, nil)
	ctx := context.Background()
	f := bi.form(t)
	resp, err := h.sts.Handle(ctx, &sts.Call{Action: f.Action(), Form: f})
	mustNoErr(t, err)
	id, token := sts.SessionOf(resp)
	p, err := h.sts.Principal(ctx, id, token)
	mustNoErr(t, err)

	next, err := h.ents.CreateRole(ctx, iam.NewRole{Name: "chained", TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
		`"Principal":{"AWS":"` + bi.role + `"},"Action":"sts:AssumeRole"}]}`})
	mustNoErr(t, err)
	form := awsproto.Values{"Action": "AssumeRole", "Version": sts.APIVersion, "RoleArn": next.ARN, "RoleSessionName": "chain"}
	resp, err = h.sts.Handle(ctx, &sts.Call{Action: "AssumeRole", Form: form, Principal: p, SessionToken: token})
	mustNoErr(t, err)
	cid, ctoken := sts.SessionOf(resp)
	cp, err := h.sts.Principal(ctx, cid, ctoken)
	mustNoErr(t, err)
	k, err := reg.Key(ctx, bi.keyID)
	mustNoErr(t, err)
	if cp.Session.ImageDigest != k.Digest {
		t.Fatalf("the chained session names image %q, want %q", cp.Session.ImageDigest, k.Digest)
	}

	_, err = reg.Revoke(ctx, k.Digest, "test", "root")
	mustNoErr(t, err)
	if _, err := h.sts.Principal(ctx, cid, ctoken); !errors.Is(err, sts.ErrRevokedSession) {
		t.Fatalf("the chained session after the image's revocation: err = %v, want ErrRevokedSession", err)
	}
}
