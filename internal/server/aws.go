package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/secrets"
	"sigil.dev/sigil/internal/sigv4"
)

// handleAWS routes AWS-protocol requests: JSON 1.1 by X-Amz-Target, and
// (from the STS/IAM issues on) the query protocol by the form's Action.
func (s *Server) handleAWS(w http.ResponseWriter, r *http.Request) {
	ri := info(r)
	target := r.Header.Get("X-Amz-Target")
	if target == "" {
		s.handleQuery(w, r)
		return
	}
	service, op, ok := awsproto.TargetOperation(target)
	if !ok || service != "secretsmanager" {
		ri.operation = "other"
		s.jsonError(w, r, awsproto.Errorf("UnknownOperationException", http.StatusBadRequest,
			"unknown X-Amz-Target %q: sigil serves secretsmanager.<Operation>", truncate(target, 80)))
		return
	}
	if secrets.KnownOperation(op) {
		ri.operation = "secretsmanager." + op
	} else {
		ri.operation = "secretsmanager.unknown"
	}
	body, perr := readBody(r)
	if perr != nil {
		s.jsonError(w, r, perr)
		return
	}
	svc := s.svc.Load()
	if svc == nil {
		s.jsonError(w, r, awsproto.Unavailable("the server is sealed: an operator must unseal it"))
		return
	}
	p, aerr := s.authenticate(r.Context(), r, body, "secretsmanager", awsproto.ProtocolJSON)
	if aerr != nil {
		s.jsonError(w, r, aerr)
		return
	}
	resp, err := svc.secrets.Handle(r.Context(), &secrets.Call{
		Operation:       op,
		Body:            body,
		Principal:       p,
		RequestID:       ri.id,
		SourceIP:        remoteIP(r),
		UserAgent:       r.UserAgent(),
		SecureTransport: r.TLS != nil,
		Start:           time.Now(),
	})
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if err := awsproto.WriteJSON(w, resp); err != nil {
		s.log.Error("writing response", "request_id", ri.id, "operation", ri.operation, "err", err)
	}
	ri.outcome = "ok"
}

// authenticate verifies the SigV4 signature and resolves the principal.
// Failures are vague for the client and precise in the server log.
// service is the SigV4 service the API being called belongs to: a request
// signed for another service is refused, so a signature can never be
// replayed against a different API.
func (s *Server) authenticate(ctx context.Context, r *http.Request, body []byte, service string, proto awsproto.Protocol) (*authn.Principal, *awsproto.Error) {
	res, err := s.verifier.Verify(ctx, r, body)
	if err != nil {
		var se *sigv4.Error
		if !errors.As(err, &se) {
			// The credential lookup itself failed (store, sealed barrier).
			s.log.Error("authentication could not complete", "request_id", info(r).id, "err", err)
			return nil, awsproto.Unavailable("the server could not check the request's credentials; retry")
		}
		e := awsproto.AuthError(err, proto)
		s.log.Info("authentication failed", "request_id", info(r).id, "code", e.Code,
			"cause", se.Kind.Error(), "remote", remoteIP(r))
		s.log.Debug("authentication failure detail", "request_id", info(r).id, "detail", se.Debug)
		return nil, e
	}
	if res.Service != service {
		s.log.Info("authentication failed", "request_id", info(r).id, "cause", "signed for service "+res.Service+", sent to "+service)
		return nil, awsproto.AuthError(&sigv4.Error{Kind: sigv4.ErrScope,
			Message: "Credential should be scoped to correct service: '" + service + "'."}, proto)
	}
	if res.SessionToken != "" {
		// Session credentials arrive with the STS issue; until then no
		// temporary key exists, so a token can only be invalid.
		s.log.Info("authentication failed", "request_id", info(r).id, "cause", "session token presented but sessions are not supported yet", "access_key_id", res.AccessKeyID)
		return nil, awsproto.AuthError(authn.ErrUnknownAccessKey, proto)
	}
	p, err := s.keys.Principal(ctx, res.AccessKeyID)
	if err != nil {
		if !errors.Is(err, authn.ErrUnknownAccessKey) {
			s.log.Error("resolving principal", "request_id", info(r).id, "err", err)
			return nil, awsproto.Internal()
		}
		return nil, awsproto.AuthError(err, proto)
	}
	return p, nil
}

// jsonError writes err in the JSON 1.1 shape, logging causes the client
// must not see.
func (s *Server) jsonError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := awsproto.As(err)
	if !ok {
		s.log.Error("request failed", "request_id", info(r).id, "operation", info(r).operation, "err", err)
	}
	info(r).outcome = e.Code
	awsproto.WriteJSONError(w, e)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// sigv4Credentials adapts the access-key registry to sigv4.Credentials,
// translating its not-found sentinel.
type sigv4Credentials struct{ keys *authn.Keys }

func (c sigv4Credentials) SecretKey(ctx context.Context, id string) (string, error) {
	s, err := c.keys.SecretKey(ctx, id)
	if errors.Is(err, authn.ErrUnknownAccessKey) {
		return "", fmt.Errorf("%w: %w", sigv4.ErrUnknownAccessKey, err)
	}
	return s, err
}
