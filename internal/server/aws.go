package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/secrets"
	"sigil.dev/sigil/internal/sigv4"
	"sigil.dev/sigil/internal/sts"
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
	if label, known := secretsOperationLabels[op]; known {
		ri.operation = label
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
		Start:           ri.start,
	})
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if err := writeJSON(w, resp); err != nil {
		s.log.Error("writing response", "request_id", ri.id, "operation", ri.operation, "err", err)
	}
	ri.outcome = "ok"
}

// secretsOperationLabels maps each Secrets Manager operation to its metrics
// label, so labelling a request allocates nothing. It is never modified.
var secretsOperationLabels = func() map[string]string {
	m := map[string]string{}
	for _, op := range secrets.Operations() {
		m[op] = "secretsmanager." + op
	}
	return m
}()

// jsonAppender is a response that encodes itself: AppendJSON appends its
// compact JSON encoding, exactly what encoding/json would produce, to b.
// The secret-value responses implement it.
type jsonAppender interface {
	AppendJSON(b []byte) []byte
}

// writeJSON is awsproto.WriteJSON, except that a jsonAppender is written as
// it encodes itself. That skips encoding/json's validating copy of a
// Marshaler's output, which costs as much as the encoding.
func writeJSON(w http.ResponseWriter, v any) error {
	a, ok := v.(jsonAppender)
	if !ok {
		return awsproto.WriteJSON(w, v)
	}
	b := a.AppendJSON(nil)
	// Both header values in one allocation; the keys are canonical.
	vals := []string{awsproto.JSONContentType, strconv.Itoa(len(b))}
	h := w.Header()
	h["Content-Type"] = vals[0:1:1]
	h["Content-Length"] = vals[1:2:2]
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
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
	svc := s.svc.Load()
	if svc == nil {
		return nil, awsproto.Unavailable("the server is sealed: an operator must unseal it")
	}
	p, err := svc.sts.Resolve(ctx, res, s.keys)
	if err != nil {
		if e := sts.AuthError(err, proto); e != nil {
			s.log.Info("authentication failed", "request_id", info(r).id, "code", e.Code, "cause", err.Error(), "access_key_id", res.AccessKeyID)
			return nil, e
		}
		if errors.Is(err, authn.ErrUnknownAccessKey) {
			return nil, awsproto.AuthError(sigv4.ErrUnknownAccessKey, proto)
		}
		s.log.Error("resolving principal", "request_id", info(r).id, "err", err)
		return nil, awsproto.Internal()
	}
	info(r).sessionToken = res.SessionToken
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

// sigv4Credentials gives sigv4 the secret of any access key: session keys
// (ASIA...) are derived by STS without a store read, long-term keys come
// from the access-key registry.
type sigv4Credentials struct{ s *Server }

func (c sigv4Credentials) SecretKey(ctx context.Context, id string) (string, error) {
	if sts.IsSessionAccessKey(id) {
		svc := c.s.svc.Load()
		if svc == nil {
			return "", fmt.Errorf("%w: the server is sealed", sigv4.ErrUnknownAccessKey)
		}
		return sts.Credentials{Sessions: svc.sts}.SecretKey(ctx, id)
	}
	secret, err := c.s.keys.SecretKey(ctx, id)
	if errors.Is(err, authn.ErrUnknownAccessKey) {
		return "", fmt.Errorf("%w: %w", sigv4.ErrUnknownAccessKey, err)
	}
	return secret, err
}
