package server

import (
	"context"
	"errors"
	"net/http"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/images"
)

// The sealed-image API: POST /v1/images/{register,deregister,list,revoke}
// with the bodies of package images, SigV4-signed for service "sigil" and
// authorized by the policy engine (sigil:RegisterImageKey and
// sigil:RevokeImage on arn:aws:sigil:REGION:ACCOUNT:image/REPOSITORY,
// sigil:ListImages on "*"). Changes are audited with source "sigil".

// imageCall is the authenticated start of an image API request.
type imageCall struct {
	svc  *services
	p    *authn.Principal
	body []byte
}

// beginImageCall reads, authenticates and decodes a request; on failure
// it has answered already and returns nil.
func (s *Server) beginImageCall(w http.ResponseWriter, r *http.Request, op string, req any) *imageCall {
	info(r).operation = op
	body, perr := readBody(r)
	if perr != nil {
		s.jsonError(w, r, perr)
		return nil
	}
	svc := s.svc.Load()
	if svc == nil {
		s.jsonError(w, r, awsproto.Unavailable("the server is sealed"))
		return nil
	}
	p, aerr := s.authenticate(r.Context(), r, body, "sigil", awsproto.ProtocolJSON)
	if aerr != nil {
		s.jsonError(w, r, aerr)
		return nil
	}
	if err := awsproto.DecodeJSON(body, req); err != nil {
		s.jsonError(w, r, err)
		return nil
	}
	return &imageCall{svc: svc, p: p, body: body}
}

// authorizeImage asks the policy engine; on a denial it answers and audits.
func (s *Server) authorizeImage(w http.ResponseWriter, r *http.Request, c *imageCall, action, resource string, params any) (iam.Decision, bool) {
	d := c.svc.authz.Authorize(r.Context(), iam.Request{Principal: c.p, Action: action, Resource: resource,
		Context: map[string][]string{"aws:SourceIp": {remoteIP(r)}}})
	if d.Allowed {
		return d, true
	}
	err := awsproto.AccessDenied("User: %s is not authorized to perform: %s on resource: %s", c.p.ARN, action, resource)
	s.auditImage(r, c, action, resource, d, params, "", err)
	s.jsonError(w, r, err)
	return d, false
}

// auditImage records one image API call; a failure to record is logged
// (these calls return no secret, so they do not fail closed).
func (s *Server) auditImage(r *http.Request, c *imageCall, action, resource string, d iam.Decision, params any, digest string, err error) {
	ev := &audit.Event{Time: s.now(), RequestID: info(r).id, SourceIP: remoteIP(r), UserAgent: r.UserAgent(),
		Principal: c.p, Source: "sigil", Action: action, Resources: []string{resource}, Allowed: d.Allowed && err == nil,
		Reason: d.Reason, Policy: d.Policy, Statement: d.Statement, ReadOnly: action == "sigil:ListImages",
		Latency: s.now().Sub(info(r).start), AccountID: c.svc.account.ID, Region: s.cfg.Region,
		RequestParameters: params, ImageDigest: digest}
	if err != nil {
		if e, ok := awsproto.As(err); ok {
			ev.ErrorCode, ev.ErrorMessage = e.Code, e.Message
		}
	}
	if rerr := c.svc.audit.Record(context.WithoutCancel(r.Context()), ev); rerr != nil {
		s.log.Error("recording an image audit event failed", "request_id", info(r).id, "action", action, "err", rerr)
	}
}

// imageWireError maps the registry's errors to the JSON 1.1 wire.
func imageWireError(err error) error {
	switch {
	case errors.Is(err, images.ErrInvalidDigest), errors.Is(err, images.ErrInvalidKey), errors.Is(err, images.ErrInvalidRequest):
		return awsproto.InvalidParameter("%v", err)
	case errors.Is(err, images.ErrDigestExists):
		return awsproto.Errorf("ResourceExistsException", http.StatusBadRequest, "%v", err)
	case errors.Is(err, images.ErrNotFound):
		return awsproto.ResourceNotFound("%v", err)
	}
	return err
}

// registerParams is what the audit log records of a registration: the
// public key is not secret, but it is not needed there either.
type registerParams struct {
	Digest     string `json:"digest"`
	Repository string `json:"repository"`
	RoleARN    string `json:"roleArn"`
	TTLSeconds int64  `json:"ttlSeconds,omitempty"`
	Reseal     bool   `json:"reseal,omitempty"`
}

func (s *Server) handleRegisterImage(w http.ResponseWriter, r *http.Request) {
	var req images.RegisterRequest
	c := s.beginImageCall(w, r, "sigil.RegisterImageKey", &req)
	if c == nil {
		return
	}
	const action = "sigil:RegisterImageKey"
	resource := images.ResourceARN(s.cfg.Region, c.svc.account.ID, req.Repository)
	params := registerParams{Digest: req.Digest, Repository: req.Repository, RoleARN: req.RoleARN, TTLSeconds: req.TTLSeconds, Reseal: req.Reseal}
	d, ok := s.authorizeImage(w, r, c, action, resource, params)
	if !ok {
		return
	}
	resp, err := c.svc.images.Register(r.Context(), c.p.ARN, &req)
	err = imageWireError(err)
	s.auditImage(r, c, action, resource, d, params, req.Digest, err)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.writeJSON(w, r, resp)
}

func (s *Server) handleDeregisterImage(w http.ResponseWriter, r *http.Request) {
	var req images.DeregisterRequest
	c := s.beginImageCall(w, r, "sigil.DeregisterImageKey", &req)
	if c == nil {
		return
	}
	const action = "sigil:RegisterImageKey"
	k, err := c.svc.images.Key(r.Context(), req.KeyID)
	if err != nil {
		// Authorize on "*" before saying whether the key exists.
		if _, ok := s.authorizeImage(w, r, c, action, "*", req); !ok {
			return
		}
		s.jsonError(w, r, imageWireError(err))
		return
	}
	resource := images.ResourceARN(s.cfg.Region, c.svc.account.ID, k.Repository)
	d, ok := s.authorizeImage(w, r, c, action, resource, req)
	if !ok {
		return
	}
	err = imageWireError(c.svc.images.Deregister(r.Context(), req.KeyID))
	s.auditImage(r, c, action, resource, d, req, k.Digest, err)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.writeJSON(w, r, struct{}{})
}

func (s *Server) handleListImages(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	c := s.beginImageCall(w, r, "sigil.ListImages", &req)
	if c == nil {
		return
	}
	d, ok := s.authorizeImage(w, r, c, "sigil:ListImages", "*", nil)
	if !ok {
		return
	}
	list, err := c.svc.images.List(r.Context())
	s.auditImage(r, c, "sigil:ListImages", "*", d, nil, "", err)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.writeJSON(w, r, images.ListResponse{Images: list})
}

func (s *Server) handleRevokeImage(w http.ResponseWriter, r *http.Request) {
	var req images.RevokeRequest
	c := s.beginImageCall(w, r, "sigil.RevokeImage", &req)
	if c == nil {
		return
	}
	const action = "sigil:RevokeImage"
	if !images.ValidDigest(req.Digest) {
		s.jsonError(w, r, awsproto.InvalidParameter("digest %q must be sha256: followed by 64 lower-case hex digits", truncate(req.Digest, 80)))
		return
	}
	resource := "*"
	k, kerr := c.svc.images.KeyForDigest(r.Context(), req.Digest)
	if kerr == nil {
		resource = images.ResourceARN(s.cfg.Region, c.svc.account.ID, k.Repository)
	} else if !errors.Is(kerr, images.ErrNotFound) {
		s.jsonError(w, r, kerr)
		return
	}
	d, ok := s.authorizeImage(w, r, c, action, resource, req)
	if !ok {
		return
	}
	resp, err := c.svc.images.Revoke(r.Context(), req.Digest, req.Reason, c.p.ARN)
	err = imageWireError(err)
	s.auditImage(r, c, action, resource, d, req, req.Digest, err)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.writeJSON(w, r, resp)
}
