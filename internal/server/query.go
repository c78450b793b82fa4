package server

import (
	"net/http"
	"time"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/sts"
)

// Query-protocol APIs, told apart by the request's Version.
const (
	iamNamespace = awsproto.IAMNamespace
	stsNamespace = awsproto.STSNamespace
)

// handleQuery serves the query protocol (form-encoded Action=...&Version=...,
// XML responses): IAM (Version 2010-05-08) and STS (2011-06-15).
func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	ri := info(r)
	ri.operation = "query.unknown"
	body, perr := readBody(r)
	if perr != nil {
		s.queryError(w, r, iamNamespace, perr)
		return
	}
	vals, err := awsproto.ParseQuery(body, r)
	if err != nil {
		s.queryError(w, r, iamNamespace, err)
		return
	}
	svc := s.svc.Load()
	switch vals.Version() {
	case iam.APIVersion:
		if iam.KnownAction(vals.Action()) {
			ri.operation = "iam." + vals.Action()
		} else {
			ri.operation = "iam.unknown"
		}
		if svc == nil {
			s.queryError(w, r, iamNamespace, awsproto.Unavailable("the server is sealed: an operator must unseal it"))
			return
		}
		p, aerr := s.authenticate(r.Context(), r, body, "iam", awsproto.ProtocolQuery)
		if aerr != nil {
			s.queryError(w, r, iamNamespace, aerr)
			return
		}
		resp, err := svc.iam.Handle(r.Context(), &iam.Call{
			Action:          vals.Action(),
			Params:          vals,
			Principal:       p,
			RequestID:       ri.id,
			SourceIP:        remoteIP(r),
			UserAgent:       r.UserAgent(),
			SecureTransport: r.TLS != nil,
			Start:           time.Now(),
		})
		if err != nil {
			s.queryError(w, r, iamNamespace, err)
			return
		}
		if err := awsproto.WriteQueryResult(w, iamNamespace, vals.Action(), ri.id, resp); err != nil {
			s.log.Error("writing response", "request_id", ri.id, "operation", ri.operation, "err", err)
		}
		ri.outcome = "ok"
	case sts.APIVersion:
		if sts.KnownAction(vals.Action()) {
			ri.operation = "sts." + vals.Action()
		} else {
			ri.operation = "sts.unknown"
		}
		if svc == nil {
			s.queryError(w, r, stsNamespace, awsproto.Unavailable("the server is sealed: an operator must unseal it"))
			return
		}
		var p *authn.Principal
		if !svc.sts.Unsigned(vals.Action()) {
			var aerr *awsproto.Error
			if p, aerr = s.authenticate(r.Context(), r, body, "sts", awsproto.ProtocolQuery); aerr != nil {
				s.queryError(w, r, stsNamespace, aerr)
				return
			}
		}
		resp, err := svc.sts.Handle(r.Context(), &sts.Call{
			Action:          vals.Action(),
			Form:            vals,
			Principal:       p,
			SessionToken:    ri.sessionToken,
			RequestID:       ri.id,
			SourceIP:        remoteIP(r),
			UserAgent:       r.UserAgent(),
			SecureTransport: r.TLS != nil,
			Start:           time.Now(),
		})
		if err != nil {
			s.queryError(w, r, stsNamespace, err)
			return
		}
		if err := awsproto.WriteQueryResult(w, stsNamespace, vals.Action(), ri.id, resp); err != nil {
			s.log.Error("writing response", "request_id", ri.id, "operation", ri.operation, "err", err)
		}
		ri.outcome = "ok"
	case "":
		s.queryError(w, r, iamNamespace, awsproto.Errorf("MissingParameter", http.StatusBadRequest,
			"The request must contain the parameter Version."))
	default:
		s.queryError(w, r, iamNamespace, awsproto.Errorf("InvalidAction", http.StatusBadRequest,
			"Could not find operation %s for version %s.", truncate(vals.Action(), 64), truncate(vals.Version(), 32)))
	}
}

// queryError writes err in the query protocol's XML error shape, logging
// causes the client must not see.
func (s *Server) queryError(w http.ResponseWriter, r *http.Request, namespace string, err error) {
	e, ok := awsproto.As(err)
	if !ok {
		s.log.Error("request failed", "request_id", info(r).id, "operation", info(r).operation, "err", err)
	}
	info(r).outcome = e.Code
	awsproto.WriteQueryError(w, namespace, e, info(r).id)
}
