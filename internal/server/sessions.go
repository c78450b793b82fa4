package server

import (
	"errors"
	"net/http"
	"time"

	"sigil.dev/sigil/internal/awsproto"
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
	var req RevokeSessionsRequest
	c := s.beginNative(w, r, "sigil:RevokeSessions", false, &req)
	if c == nil {
		return
	}
	if (req.RoleARN == "") == (req.SessionID == "") {
		s.jsonError(w, r, awsproto.InvalidParameter("give exactly one of roleArn and sessionId"))
		return
	}
	// A role revocation is never shortened by a later one, so a time in
	// the future would refuse every new session of the role until then,
	// with no way to take it back.
	if req.Before != nil && req.Before.After(s.now()) {
		s.jsonError(w, r, awsproto.InvalidParameter("before %s is in the future: a revocation cannot be undone, so it may only name a time that has passed",
			req.Before.UTC().Format(time.RFC3339)))
		return
	}
	resource := req.RoleARN
	if resource == "" {
		resource = "*"
	}
	if !c.authorize(resource) {
		return
	}
	var err error
	resp := RevokeSessionsResponse{RoleARN: req.RoleARN, SessionID: req.SessionID}
	if req.RoleARN != "" {
		resp.Before = s.now().UTC()
		if req.Before != nil {
			resp.Before = req.Before.UTC()
		}
		err = c.svc.sts.RevokeRoleSessions(r.Context(), req.RoleARN, resp.Before)
	} else {
		err = c.svc.sts.RevokeSession(r.Context(), req.SessionID)
	}
	if errors.Is(err, sts.ErrInvalidRevocation) {
		err = awsproto.InvalidParameter("%v", err)
	}
	if err == nil {
		s.log.Info("sessions revoked", "by", c.p.ARN, "role", req.RoleARN, "session", req.SessionID, "before", resp.Before)
	}
	c.finish(resp, err)
}
