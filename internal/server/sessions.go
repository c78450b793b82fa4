package server

import (
	"errors"
	"net/http"
	"time"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/sts"
)

// RevokeSessionsRequest is the body of POST /v1/sessions/revoke: either
// every session of RoleARN issued before Before (default: now), like AWS's
// "revoke older sessions", or the one session SessionID.
type RevokeSessionsRequest struct {
	RoleARN   string     `json:"roleArn,omitempty"`
	Before    *time.Time `json:"before,omitempty"`
	SessionID string     `json:"sessionId,omitempty"`
}

// RevokeSessionsResponse is the answer to POST /v1/sessions/revoke.
type RevokeSessionsResponse struct {
	RoleARN   string    `json:"roleArn,omitempty"`
	Before    time.Time `json:"before,omitempty"`
	SessionID string    `json:"sessionId,omitempty"`
}

// handleRevokeSessions serves POST /v1/sessions/revoke, authorized as
// sigil:RevokeSessions on the role (or "*" for a single session). A
// revocation applies on this replica at once and on every replica within a
// second.
func (s *Server) handleRevokeSessions(w http.ResponseWriter, r *http.Request) {
	info(r).operation = "sigil.RevokeSessions"
	body, perr := readBody(r)
	if perr != nil {
		s.jsonError(w, r, perr)
		return
	}
	svc := s.svc.Load()
	if svc == nil {
		s.jsonError(w, r, awsproto.Unavailable("the server is sealed"))
		return
	}
	p, aerr := s.authenticate(r.Context(), r, body, "sigil", awsproto.ProtocolJSON)
	if aerr != nil {
		s.jsonError(w, r, aerr)
		return
	}
	var req RevokeSessionsRequest
	if err := awsproto.DecodeJSON(body, &req); err != nil {
		s.jsonError(w, r, err)
		return
	}
	if (req.RoleARN == "") == (req.SessionID == "") {
		s.jsonError(w, r, awsproto.InvalidParameter("give exactly one of roleArn and sessionId"))
		return
	}
	resource := req.RoleARN
	if resource == "" {
		resource = "*"
	}
	d := svc.authz.Authorize(r.Context(), iam.Request{Principal: p, Action: "sigil:RevokeSessions", Resource: resource,
		Context: map[string][]string{"aws:SourceIp": {remoteIP(r)}}})
	if !d.Allowed {
		s.jsonError(w, r, awsproto.AccessDenied("User: %s is not authorized to perform: sigil:RevokeSessions on resource: %s", p.ARN, resource))
		return
	}
	var err error
	resp := RevokeSessionsResponse{RoleARN: req.RoleARN, SessionID: req.SessionID}
	if req.RoleARN != "" {
		resp.Before = s.now().UTC()
		if req.Before != nil {
			resp.Before = req.Before.UTC()
		}
		err = svc.sts.RevokeRoleSessions(r.Context(), req.RoleARN, resp.Before)
	} else {
		err = svc.sts.RevokeSession(r.Context(), req.SessionID)
	}
	if errors.Is(err, sts.ErrInvalidRevocation) {
		s.jsonError(w, r, awsproto.InvalidParameter("%v", err))
		return
	}
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.log.Info("sessions revoked", "by", p.ARN, "role", req.RoleARN, "session", req.SessionID, "before", resp.Before)
	s.writeJSON(w, r, resp)
}
