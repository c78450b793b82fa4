package server

import (
	"encoding/base64"
	"errors"
	"net/http"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/rotation"
)

// Rotators: RotateSecret names its rotator with a RotationLambdaARN,
// arn:aws:lambda:REGION:ACCOUNT:function:NAME. The built-ins
// (sigil-postgresql-single-user, sigil-mysql-single-user, sigil-random)
// always exist; others are registered through POST
// /v1/rotators/{put,get,list,delete}, authorized as sigil:PutRotator,
// sigil:GetRotator, sigil:ListRotators and sigil:DeleteRotator on that ARN.

// RotatorRequest is the body of POST /v1/rotators/put. WebhookKey, when
// given, is the base64 HMAC key; empty means sigil generates one and
// returns it once.
type RotatorRequest struct {
	rotation.RotatorSpec
	WebhookKey string `json:"webhookKey,omitempty"`
}

// RotatorResponse describes a rotator; WebhookKey is set only by put.
type RotatorResponse struct {
	rotation.RotatorSpec
	ARN        string `json:"arn"`
	WebhookKey string `json:"webhookKey,omitempty"`
}

// RotatorsResponse lists registered rotators.
type RotatorsResponse struct {
	Rotators []RotatorResponse `json:"rotators"`
}

func rotationWireError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rotation.ErrInvalidRotator), errors.Is(err, rotation.ErrInvalidARN):
		return awsproto.InvalidParameter("%v", err)
	case errors.Is(err, rotation.ErrUnknownRotator):
		return awsproto.ResourceNotFound("%v", err)
	}
	return err
}

func (s *Server) rotatorARN(account, name string) string {
	return rotation.RotatorARNFor(s.cfg.Region, account, name)
}

func (s *Server) handlePutRotator(w http.ResponseWriter, r *http.Request) {
	var req RotatorRequest
	c := s.beginNative(w, r, "sigil:PutRotator", false, &req)
	if c == nil {
		return
	}
	spec := req.RotatorSpec
	if req.WebhookKey != "" {
		key, err := base64.StdEncoding.DecodeString(req.WebhookKey)
		if err != nil || spec.Webhook == nil {
			s.jsonError(w, r, awsproto.InvalidParameter("webhookKey must be base64 and needs a webhook rotator"))
			return
		}
		spec.Webhook.Key = key
	}
	if !c.authorize(s.rotatorARN(c.svc.account.ID, spec.Name)) {
		return
	}
	key, err := c.svc.rotators.Put(r.Context(), spec)
	if err != nil {
		c.finish(nil, rotationWireError(err))
		return
	}
	stored, err := c.svc.rotators.Get(r.Context(), spec.Name)
	resp := RotatorResponse{RotatorSpec: stored, ARN: s.rotatorARN(c.svc.account.ID, spec.Name)}
	if len(key) > 0 {
		resp.WebhookKey = base64.StdEncoding.EncodeToString(key)
	}
	c.finish(resp, rotationWireError(err))
}

func (s *Server) handleGetRotator(w http.ResponseWriter, r *http.Request) {
	var req NameRequest
	c := s.beginNative(w, r, "sigil:GetRotator", true, &req)
	if c == nil || !c.authorize(s.rotatorARN(c.svc.account.ID, req.Name)) {
		return
	}
	spec, err := c.svc.rotators.Get(r.Context(), req.Name)
	c.finish(RotatorResponse{RotatorSpec: spec, ARN: s.rotatorARN(c.svc.account.ID, req.Name)}, rotationWireError(err))
}

func (s *Server) handleListRotators(w http.ResponseWriter, r *http.Request) {
	c := s.beginNative(w, r, "sigil:ListRotators", true, nil)
	if c == nil || !c.authorize(s.rotatorARN(c.svc.account.ID, "*")) {
		return
	}
	specs, err := c.svc.rotators.List(r.Context())
	out := RotatorsResponse{Rotators: []RotatorResponse{}}
	for _, sp := range specs {
		out.Rotators = append(out.Rotators, RotatorResponse{RotatorSpec: sp, ARN: s.rotatorARN(c.svc.account.ID, sp.Name)})
	}
	c.finish(out, rotationWireError(err))
}

func (s *Server) handleDeleteRotator(w http.ResponseWriter, r *http.Request) {
	var req NameRequest
	c := s.beginNative(w, r, "sigil:DeleteRotator", false, &req)
	if c == nil || !c.authorize(s.rotatorARN(c.svc.account.ID, req.Name)) {
		return
	}
	err := c.svc.rotators.Delete(r.Context(), req.Name)
	c.finish(struct{}{}, rotationWireError(err))
}
