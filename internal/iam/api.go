package iam

// The IAM API
//
// [API] serves the subset of IAM's query protocol that workloads and
// Terraform's aws provider use: roles, users and their access keys, managed
// and inline policies, OIDC providers, and SimulatePrincipalPolicy. The HTTP
// server authenticates the request (SigV4), parses the form with
// awsproto.ParseQuery and hands a [Call] to [API.Handle], which decodes the
// action's parameters, validates them, authorizes "iam:<Action>" on the
// entity's ARN, runs the operation, and records one audit event:
//
//	vals, err := awsproto.ParseQuery(body, r)
//	resp, err := api.Handle(ctx, &iam.Call{Action: vals.Action(), Params: vals, Principal: p, ...})
//	if err != nil { awsproto.WriteQueryError(w, awsproto.IAMNamespace, e, reqID); return }
//	awsproto.WriteQueryResult(w, awsproto.IAMNamespace, vals.Action(), reqID, resp)
//
// Policy documents in responses are URL-encoded, as IAM returns them.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/store"
)

// APIVersion is the only IAM API version sigil serves.
const APIVersion = "2010-05-08"

// auditSource is the audit Source of every event the API records.
const auditSource = "iam.amazonaws.com"

// APIAuthorizer decides whether a request is allowed; every iam
// authorizer (RootOnly, the policy evaluator) satisfies it.
type APIAuthorizer interface {
	Authorize(ctx context.Context, req Request) Decision
}

// APIConfig configures [NewAPI]. Entities, Authorizer and Audit are
// required. The account, clock, randomness and access-key registry are the
// Entities' (see EntitiesConfig).
type APIConfig struct {
	// Entities stores the IAM entities.
	Entities *Entities
	// Authorizer decides every call.
	Authorizer APIAuthorizer
	// Audit receives one event per call; audit.Discard{} drops them.
	Audit audit.Sink
	// Now is the clock for audit timestamps and condition keys; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives internal failures (never secrets); nil discards.
	Logger *slog.Logger
}

// API implements the IAM query-protocol operations. It is safe for
// concurrent use.
type API struct {
	ents  *Entities
	authz APIAuthorizer
	audit audit.Sink
	now   func() time.Time
	log   *slog.Logger
}

// NewAPI checks cfg and returns an API. It does no I/O.
func NewAPI(cfg APIConfig) (*API, error) {
	switch {
	case cfg.Entities == nil:
		return nil, fmt.Errorf("%w: Entities is required", ErrInvalidEntitiesConfig)
	case cfg.Authorizer == nil:
		return nil, fmt.Errorf("%w: Authorizer is required", ErrInvalidEntitiesConfig)
	case cfg.Audit == nil:
		return nil, fmt.Errorf("%w: Audit is required", ErrInvalidEntitiesConfig)
	}
	a := &API{ents: cfg.Entities, authz: cfg.Authorizer, audit: cfg.Audit, now: cfg.Now, log: cfg.Logger}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Call is one authenticated IAM request, as the HTTP server hands it over.
type Call struct {
	// Action is the form's Action, e.g. "CreateRole".
	Action string
	// Params are the request's parameters from awsproto.ParseQuery
	// (including Action and Version).
	Params awsproto.Values
	// Principal is the authenticated caller.
	Principal *authn.Principal
	// RequestID, SourceIP and UserAgent describe the request for audit and
	// the condition context.
	RequestID, SourceIP, UserAgent string
	// SecureTransport is true when the request arrived over TLS.
	SecureTransport bool
	// Start is when the server received the request; the zero value means
	// the time Handle was called.
	Start time.Time
}

// operation is one IAM action.
type operation struct {
	run func(a *API, ctx context.Context, inv *invocation) (any, error)
	// readOnly marks actions that change nothing; returnsSecret those
	// whose response carries secret material (CreateAccessKey).
	readOnly, returnsSecret bool
}

// KnownAction reports whether action is an IAM action sigil serves.
func KnownAction(action string) bool {
	_, ok := lookupOperation(action)
	return ok
}

// Handle runs one call. It returns the action's result, to be written with
// awsproto.WriteQueryResult (nil for actions without a result element), or
// an *awsproto.Error: every failure, internal ones included, is already in
// IAM's shape (internal causes are logged here and reported as
// ServiceFailure without detail).
func (a *API) Handle(ctx context.Context, c *Call) (any, error) {
	if c == nil {
		return nil, errors.New("iam: nil call")
	}
	op, ok := lookupOperation(c.Action)
	inv := a.begin(c, op)
	var (
		resp any
		err  error
	)
	switch {
	case c.Action == "":
		err = awsproto.Errorf("MissingAction", http.StatusBadRequest, "The request must contain the parameter Action.")
	case !ok:
		err = awsproto.Errorf("InvalidAction", http.StatusBadRequest, "Could not find operation %s for version %s.", truncateParam(c.Action), APIVersion)
	case c.Params.Version() != "" && c.Params.Version() != APIVersion:
		err = awsproto.Errorf("InvalidAction", http.StatusBadRequest, "Could not find operation %s for version %s.", c.Action, truncateParam(c.Params.Version()))
	default:
		resp, err = op.run(a, ctx, inv)
	}
	if err != nil {
		err = a.wireError(ctx, c, err)
		resp = nil
	}
	return inv.finish(ctx, resp, err)
}

func truncateParam(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// invocation carries one call through decoding, authorization and audit.
type invocation struct {
	a     *API
	c     *Call
	op    operation
	start time.Time
	now   time.Time

	reached   bool
	resources []string
	decision  Decision
}

func (a *API) begin(c *Call, op operation) *invocation {
	now := a.now()
	start := c.Start
	if start.IsZero() {
		start = now
	}
	return &invocation{a: a, c: c, op: op, start: start, now: now}
}

// decode decodes the call's parameters into the action's input struct.
func (inv *invocation) decode(dst any) error {
	return awsproto.DecodeQuery(inv.c.Params, dst)
}

// authorize asks whether the caller may run the call's action on resource,
// with extra condition keys, and returns IAM's AccessDenied when not.
func (inv *invocation) authorize(ctx context.Context, resource string, extra map[string][]string) error {
	return inv.authorizeAction(ctx, "iam:"+inv.c.Action, resource, extra)
}

// authorizeAction is authorize for another action the call also needs
// (iam:TagRole for CreateRole with tags). The first decision, or the first
// denial, is the one the audit event reports.
func (inv *invocation) authorizeAction(ctx context.Context, action, resource string, extra map[string][]string) error {
	d := Decision{Reason: "no principal"}
	if inv.c.Principal != nil {
		d = inv.a.authz.Authorize(ctx, Request{Principal: inv.c.Principal, Action: action,
			Resource: resource, Context: inv.conditionContext(extra)})
	}
	first := !inv.reached
	inv.reached = true
	if first || (!d.Allowed && inv.decision.Allowed) {
		inv.decision = d
	}
	if first {
		inv.resources = []string{resource}
	}
	if !d.Allowed {
		return accessDenied(inv.c.Principal, action, resource, d)
	}
	return nil
}

// conditionContext holds the request's global condition keys plus extra.
// Principal keys (aws:PrincipalArn, aws:userid, ...) are derived by the
// evaluator from the principal itself.
func (inv *invocation) conditionContext(extra map[string][]string) map[string][]string {
	c := inv.c
	m := map[string][]string{
		"aws:CurrentTime":     {inv.now.UTC().Format(time.RFC3339)},
		"aws:EpochTime":       {strconv.FormatInt(inv.now.Unix(), 10)},
		"aws:SecureTransport": {strconv.FormatBool(c.SecureTransport)},
	}
	if c.SourceIP != "" {
		m["aws:SourceIp"] = []string{c.SourceIP}
	}
	if c.UserAgent != "" {
		m["aws:UserAgent"] = []string{c.UserAgent}
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// tagContext returns the condition keys of tags a request sets
// (aws:RequestTag/KEY, aws:TagKeys) or removes (aws:TagKeys).
func tagContext(tags []Tag, keys []string) map[string][]string {
	m := map[string][]string{}
	var all []string
	for _, t := range tags {
		m["aws:RequestTag/"+t.Key] = []string{t.Value}
		all = append(all, t.Key)
	}
	all = append(all, keys...)
	if len(all) > 0 {
		m["aws:TagKeys"] = all
	}
	return m
}

// resourceTagContext returns aws:ResourceTag/KEY (and iam:ResourceTag/KEY)
// for the tags of an existing entity.
func resourceTagContext(tags []Tag, into map[string][]string) map[string][]string {
	if into == nil {
		into = map[string][]string{}
	}
	for _, t := range tags {
		into["aws:ResourceTag/"+t.Key] = []string{t.Value}
		into["iam:ResourceTag/"+t.Key] = []string{t.Value}
	}
	return into
}

// finish records the audit event and applies the fail-closed rule: when the
// record fails, a successful change or secret-bearing response is replaced by
// ServiceUnavailable (the change stays applied; retrying is safe for the
// idempotent actions and reports the conflict for the others).
func (inv *invocation) finish(ctx context.Context, resp any, err error) (any, error) {
	ev := &audit.Event{
		Time:          inv.now,
		RequestID:     inv.c.RequestID,
		SourceIP:      inv.c.SourceIP,
		UserAgent:     inv.c.UserAgent,
		Principal:     inv.c.Principal,
		Source:        auditSource,
		Action:        truncateParam(inv.c.Action),
		Resources:     inv.resources,
		Allowed:       inv.decision.Allowed,
		Reason:        inv.decision.Reason,
		Policy:        inv.decision.Policy,
		Statement:     inv.decision.Statement,
		ReadOnly:      inv.op.readOnly,
		ReturnsSecret: inv.op.returnsSecret && err == nil,
		Latency:       inv.a.now().Sub(inv.start),
	}
	if !inv.reached {
		// Refused before authorization: unknown action or invalid input.
		ev.Reason = "invalid request"
	}
	if err != nil {
		e, _ := awsproto.As(err)
		ev.ErrorCode, ev.ErrorMessage = e.Code, e.Message
	}
	recErr := inv.a.audit.Record(ctx, ev)
	if recErr == nil || err != nil {
		if recErr != nil {
			inv.a.log.ErrorContext(ctx, "iam: recording audit event failed", "action", inv.c.Action, "request_id", inv.c.RequestID, "err", recErr)
		}
		return resp, err
	}
	inv.a.log.ErrorContext(ctx, "iam: recording audit event failed", "action", inv.c.Action, "request_id", inv.c.RequestID, "err", recErr)
	switch {
	case inv.op.returnsSecret:
		return nil, awsproto.Unavailable("the audit log could not record this request, so no secret material was returned; delete the access key it created and retry")
	case !inv.op.readOnly:
		return nil, awsproto.Unavailable("the audit log could not record this request: the change was applied but its response is withheld")
	}
	return resp, nil
}

// wireError turns any error into IAM's wire shape, logging internal causes.
func (a *API) wireError(ctx context.Context, c *Call, err error) error {
	var (
		ae *awsproto.Error
		ee *EntityError
		pe *PolicyError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ee):
		return entityWireError(ee)
	case errors.As(err, &pe):
		return errMalformedPolicy(pe.Error())
	case errors.Is(err, ErrMalformedPolicy):
		return errMalformedPolicy(err.Error())
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed):
		return awsproto.Unavailable("the IAM store is unavailable; retry the request")
	case errors.Is(err, store.ErrConflict):
		return awsproto.Errorf("ConcurrentModification", http.StatusConflict, "The entity is being changed concurrently; retry the request.")
	}
	a.log.ErrorContext(ctx, "iam: internal error", "action", c.Action, "request_id", c.RequestID, "err", err)
	return awsproto.Errorf("ServiceFailure", http.StatusInternalServerError, "The request processing has failed because of an unknown error; see the server log for this request id.")
}
