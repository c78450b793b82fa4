package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
)

// nativeCall is one request to sigil's native /v1/ API: authenticated with
// SigV4 for service "sigil", authorized with a sigil:* action, and audited
// (event source "sigil") like every AWS-protocol call.
type nativeCall struct {
	s        *Server
	w        http.ResponseWriter
	r        *http.Request
	svc      *services
	p        *authn.Principal
	action   string // e.g. "sigil:RotateKey"
	resource string
	readOnly bool
	start    time.Time
	decision iam.Decision
	body     []byte // the request, for the audit record's requestParameters
}

// beginNative reads, authenticates and decodes a native API request into
// in (nil for none). On failure it has written the error and returns nil.
func (s *Server) beginNative(w http.ResponseWriter, r *http.Request, action string, readOnly bool, in any) *nativeCall {
	info(r).operation = action
	start := time.Now()
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
	if in != nil {
		if err := awsproto.DecodeJSON(body, in); err != nil {
			s.jsonError(w, r, err)
			return nil
		}
	}
	return &nativeCall{s: s, w: w, r: r, svc: svc, p: p, action: action, readOnly: readOnly, start: start, body: body}
}

// authorize asks the policy engine about c's action on resource. A denial
// is audited and answered with AccessDeniedException; it returns false.
func (c *nativeCall) authorize(resource string) bool {
	c.resource = resource
	c.decision = c.svc.authz.Authorize(c.r.Context(), iam.Request{Principal: c.p, Action: c.action, Resource: resource, Context: c.conditions()})
	if c.decision.Allowed {
		return true
	}
	e := awsproto.AccessDenied("User: %s is not authorized to perform: %s on resource: %s", c.p.ARN, c.action, resource)
	if err := c.record(e); err != nil {
		c.s.jsonError(c.w, c.r, awsproto.Unavailable("the audit log could not record this request; retry"))
		return false
	}
	c.s.jsonError(c.w, c.r, e)
	return false
}

// permits asks the policy engine about c's action on resource without
// recording anything: for filtering the items of an allowed call.
func (c *nativeCall) permits(resource string) bool {
	return c.svc.authz.Authorize(c.r.Context(), iam.Request{Principal: c.p, Action: c.action, Resource: resource, Context: c.conditions()}).Allowed
}

// conditions is the condition context of a native call.
func (c *nativeCall) conditions() map[string][]string {
	return map[string][]string{
		"aws:SourceIp":        {remoteIP(c.r)},
		"aws:SecureTransport": {boolString(c.r.TLS != nil)},
		"aws:CurrentTime":     {c.start.UTC().Format(time.RFC3339)},
	}
}

// authorizeAs is authorize for another action than the call's own (a
// second permission the operation needs, such as iam:PassRole).
func (c *nativeCall) authorizeAs(action, resource string) bool {
	own := c.action
	c.action = action
	ok := c.authorize(resource)
	c.action = own
	return ok
}

// finish audits the outcome and writes resp or err. When the audit log
// cannot record a change, the change has happened but its answer is
// withheld (ServiceUnavailable), as for every other API.
func (c *nativeCall) finish(resp any, err error) {
	var wireErr *awsproto.Error
	if err != nil {
		wireErr, _ = awsproto.As(err)
	}
	if aerr := c.record(wireErr); aerr != nil && (err == nil || !c.readOnly) {
		c.s.log.Error("recording audit event failed", "request_id", info(c.r).id, "action", c.action, "err", aerr)
		c.s.jsonError(c.w, c.r, awsproto.Unavailable("the audit log could not record this request; its result is withheld, retry"))
		return
	}
	if err != nil {
		c.s.jsonError(c.w, c.r, err)
		return
	}
	c.s.writeJSON(c.w, c.r, resp)
}

func (c *nativeCall) record(e *awsproto.Error) error {
	ev := &audit.Event{
		Time:      c.start,
		RequestID: info(c.r).id,
		SourceIP:  remoteIP(c.r),
		UserAgent: c.r.UserAgent(),
		Principal: c.p,
		Source:    "sigil",
		Action:    c.action[strings.IndexByte(c.action, ':')+1:],
		Allowed:   c.decision.Allowed,
		Reason:    c.decision.Reason,
		Policy:    c.decision.Policy,
		Statement: c.decision.Statement,
		ReadOnly:  c.readOnly,
		Latency:   time.Since(c.start),
	}
	if c.resource != "" && c.resource != "*" {
		ev.Resources = []string{c.resource}
	}
	// Sensitive fields (keys, tokens) are HMAC'd by the audit log.
	if len(c.body) > 0 && c.body[0] == '{' && json.Valid(c.body) {
		ev.RequestParameters = json.RawMessage(c.body)
	}
	if e != nil {
		ev.ErrorCode, ev.ErrorMessage = e.Code, e.Message
	}
	return c.svc.audit.Record(c.r.Context(), ev)
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
