package secrets

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
)

// auditSource is the audit Source of every event this package emits.
const auditSource = "secretsmanager.amazonaws.com"

// invocation carries one call through authorization and audit. Handlers
// create it with begin, call authorize once they know the resource, and
// return through finish, which records the audit event.
type invocation struct {
	s        *Service
	c        *Call
	op       string
	start    time.Time
	now      time.Time
	readOnly bool
	// returnsSecret marks operations whose success carries secret
	// material; sensitive marks those whose response must be withheld when
	// the audit record fails even though they change nothing (generated
	// passwords).
	returnsSecret bool
	sensitive     bool

	reached   bool
	resources []string
	decision  iam.Decision
	decided   time.Time // when the first decision was made
	// extra holds further events (BatchGetSecretValue's per-secret
	// GetSecretValue decisions), recorded before the call's own event.
	extra []*audit.Event

	// resource and ev are the storage of resources and of the call's own
	// audit event, so that they need no allocations of their own.
	resource [1]string
	ev       audit.Event
}

func (s *Service) begin(c *Call, op string, readOnly bool) *invocation {
	now := s.now()
	start := c.Start
	if start.IsZero() {
		start = now
	}
	return &invocation{s: s, c: c, op: op, start: start, now: now, readOnly: readOnly}
}

// nowNanos is the request time as stored timestamps hold it.
func (inv *invocation) nowNanos() int64 { return inv.now.UnixNano() }

// target is what a request is authorized against.
type target struct {
	resource string
	policy   string
	context  map[string][]string
}

// authorize asks the Authorizer whether the caller may run the invocation's
// operation on t, and returns the AccessDeniedException when not. The first
// decision (or the first denial) is the one the audit event reports.
func (inv *invocation) authorize(ctx context.Context, t target) error {
	return inv.authorizeAction(ctx, inv.op, t)
}

// authorizeAction is authorize for another action that the operation also
// requires (TagResource for CreateSecret with tags, ListSecrets for
// BatchGetSecretValue with filters).
func (inv *invocation) authorizeAction(ctx context.Context, op string, t target) error {
	d := inv.s.decide(ctx, inv.c, op, t)
	first := !inv.reached
	inv.reached = true
	if first {
		inv.decided = inv.s.now()
	}
	if first || (!d.Allowed && inv.decision.Allowed) {
		inv.decision = d
	}
	if first {
		inv.resource[0] = t.resource
		inv.resources = inv.resource[:]
	}
	if !d.Allowed {
		return accessDenied(inv.c.Principal, op, t.resource, d)
	}
	return nil
}

// decide runs the Authorizer for one action and resource.
func (s *Service) decide(ctx context.Context, c *Call, op string, t target) iam.Decision {
	if c.Principal == nil {
		return iam.Decision{Reason: "no principal"}
	}
	return s.authz.Authorize(ctx, iam.Request{
		Principal:      c.Principal,
		Action:         s.action(op),
		Resource:       t.resource,
		ResourcePolicy: t.policy,
		Context:        t.context,
	})
}

// action is the IAM action of operation op; an op with a service prefix
// ("lambda:InvokeFunction") is an action of its own.
func (s *Service) action(op string) string {
	if a, ok := s.actions[op]; ok {
		return a
	}
	if strings.IndexByte(op, ':') >= 0 {
		return op
	}
	return "secretsmanager:" + op
}

// accessDenied builds AWS's AccessDeniedException message. It names the
// principal, action and resource, never a secret value.
func accessDenied(p *authn.Principal, op, resource string, d iam.Decision) *awsproto.Error {
	who := "anonymous"
	if p != nil && p.ARN != "" {
		who = p.ARN
	}
	action := "secretsmanager:" + op
	if strings.IndexByte(op, ':') >= 0 {
		action = op
	}
	why := "because no identity-based policy allows the " + action + " action"
	if d.Reason == "explicit deny" {
		why = "with an explicit deny"
	}
	return awsproto.AccessDenied("User: %s is not authorized to perform: %s on resource: %s %s", who, action, resource, why)
}

// event builds an audit event for this call, for a decision made at
// decided.
func (inv *invocation) event(action string, resources []string, d iam.Decision, decided time.Time, err error, returnsSecret bool) *audit.Event {
	ev := new(audit.Event)
	inv.fillEvent(ev, action, resources, d, decided, err, returnsSecret)
	return ev
}

// fillEvent sets every field of ev as event describes.
func (inv *invocation) fillEvent(ev *audit.Event, action string, resources []string, d iam.Decision, decided time.Time, err error, returnsSecret bool) {
	*ev = audit.Event{
		Time:          inv.now,
		RequestID:     inv.c.RequestID,
		SourceIP:      inv.c.SourceIP,
		UserAgent:     inv.c.UserAgent,
		Principal:     inv.c.Principal,
		Source:        auditSource,
		Action:        action,
		Resources:     resources,
		Allowed:       d.Allowed,
		Reason:        d.Reason,
		Policy:        d.Policy,
		Statement:     d.Statement,
		ReadOnly:      inv.readOnly,
		ReturnsSecret: returnsSecret && err == nil,
		Latency:       decided.Sub(inv.start),
	}
	if err != nil {
		e, _ := awsproto.As(inv.s.clientError(err))
		ev.ErrorCode, ev.ErrorMessage = e.Code, e.Message
	}
}

// auditPayloads returns the request and response for the audit record.
// They carry secret material (SecretString, SecretBinary, passwords); the
// audit log replaces every such field by its HMAC before anything is
// written, which is what lets an operator check whether a value was
// returned (sigil audit hash) without the log holding it.
func auditPayloads(body []byte, resp any, err error) (req, out any) {
	if len(body) > 0 && json.Valid(body) && body[0] == '{' {
		req = json.RawMessage(body)
	}
	if err != nil || resp == nil {
		return req, nil
	}
	if a, ok := resp.(interface{ AppendJSON([]byte) []byte }); ok {
		return req, json.RawMessage(a.AppendJSON(nil))
	}
	return req, resp
}

// finish records the audit event of a call that reached authorization and
// applies the fail-closed rule: when the record fails for a successful call
// that returns secret material or changed state, the response is replaced by
// ServiceUnavailable. Calls that never reached authorization (bad input) are
// not audited.
func (inv *invocation) finish(ctx context.Context, resp any, err error) (any, error) {
	if !inv.reached {
		return resp, err
	}
	var recErr error
	for _, ev := range inv.extra {
		if recErr = inv.s.audit.Record(ctx, ev); recErr != nil {
			break
		}
	}
	if recErr == nil {
		inv.fillEvent(&inv.ev, inv.op, inv.resources, inv.decision, inv.decided, err, inv.returnsSecret)
		inv.ev.RequestParameters, inv.ev.ResponseElements = auditPayloads(inv.c.Body, resp, err)
		recErr = inv.s.audit.Record(ctx, &inv.ev)
	}
	if recErr == nil {
		return resp, err
	}
	inv.s.log.ErrorContext(ctx, "secrets: recording audit event failed", "op", inv.op, "request_id", inv.c.RequestID, "err", recErr)
	if err != nil {
		return nil, err
	}
	switch {
	case !inv.readOnly:
		return nil, awsproto.Unavailable("the audit log could not record this request: the change was applied but its response is withheld; retrying the request is safe")
	case inv.returnsSecret || inv.sensitive:
		return nil, awsproto.Unavailable("the audit log could not record this request, so no secret material was returned; retry the request")
	}
	return resp, nil
}

// Condition context.

// condContext builds a condition context with few allocations: the map is
// sized up front and the one-element value lists share one backing array
// (each capped at its one element, so appending to one never touches
// another).
type condContext struct {
	m    map[string][]string
	vals []string
}

func newCondContext(size int) condContext {
	return condContext{m: make(map[string][]string, size), vals: make([]string, 0, size)}
}

// set makes value the only value of key.
func (b *condContext) set(key, value string) {
	b.vals = append(b.vals, value)
	n := len(b.vals)
	b.m[key] = b.vals[n-1 : n : n]
}

// clockStrings are the aws:CurrentTime and aws:EpochTime values of one
// second, which calls within that second share.
type clockStrings struct {
	unix    int64
	current string // RFC 3339 in UTC, whole seconds
	epoch   string
}

// clockValues returns the time condition values for t.
func (s *Service) clockValues(t time.Time) *clockStrings {
	unix := t.Unix()
	if cs := s.clock.Load(); cs != nil && cs.unix == unix {
		return cs
	}
	cs := &clockStrings{unix: unix, current: t.UTC().Format(time.RFC3339), epoch: strconv.FormatInt(unix, 10)}
	s.clock.Store(cs)
	return cs
}

// baseContext holds the global condition keys of a call, with room for
// extra more keys.
func (inv *invocation) baseContext(extra int) condContext {
	c := inv.c
	size := 4 + extra
	if c.SourceIP != "" {
		size++
	}
	if c.UserAgent != "" {
		size++
	}
	if p := c.Principal; p != nil {
		size += 4 + len(p.Tags)
		if p.Name != "" {
			size++
		}
	}
	b := newCondContext(size)
	clock := inv.s.clockValues(inv.now)
	b.set("aws:CurrentTime", clock.current)
	b.set("aws:EpochTime", clock.epoch)
	b.set("aws:SecureTransport", strconv.FormatBool(c.SecureTransport))
	b.set("aws:RequestedRegion", inv.s.region)
	if c.SourceIP != "" {
		b.set("aws:SourceIp", c.SourceIP)
	}
	if c.UserAgent != "" {
		b.set("aws:UserAgent", c.UserAgent)
	}
	if p := c.Principal; p != nil {
		b.set("aws:PrincipalArn", p.ARN)
		b.set("aws:PrincipalAccount", p.AccountID)
		b.set("aws:userid", p.ID)
		b.set("aws:PrincipalType", principalType(p.Kind))
		if p.Name != "" {
			b.set("aws:username", p.Name)
		}
		for k, v := range p.Tags {
			b.set("aws:PrincipalTag/"+k, v)
		}
	}
	return b
}

// principalType spells a principal kind as aws:PrincipalType does.
func principalType(k authn.Kind) string {
	switch k {
	case authn.KindRoot:
		return "Account"
	case authn.KindIAMUser:
		return "User"
	}
	return string(k)
}

// secretTarget is the target for an operation on a resolved SecretId: the
// secret's ARN, policy and tags when it exists, the ARN or ARN pattern of
// the SecretId otherwise.
func (inv *invocation) secretTarget(r *resolved) target {
	// Callers add up to two more keys with target.with.
	return inv.secretTargetWith(r, 2)
}

// secretTargetWith is secretTarget with room for extra more keys.
func (inv *invocation) secretTargetWith(r *resolved, extra int) target {
	extra += 3 // the secretsmanager keys, and two per tag
	if r.rec != nil {
		extra += 2 * len(r.rec.Tags)
	}
	b := inv.baseContext(extra)
	b.set("secretsmanager:SecretPrimaryRegion", inv.s.region)
	if rec := r.rec; rec != nil {
		b.set("secretsmanager:SecretId", rec.ARN)
		b.set("secretsmanager:Name", rec.Name)
		for _, t := range rec.Tags {
			b.set("secretsmanager:ResourceTag/"+t.Key, t.Value)
			b.set("aws:ResourceTag/"+t.Key, t.Value)
		}
		return target{resource: rec.ARN, policy: rec.Policy, context: b.m}
	}
	b.set("secretsmanager:SecretId", r.given)
	if r.name != "" {
		b.set("secretsmanager:Name", r.name)
	}
	return target{resource: r.resource, context: b.m}
}

// starTarget is the target of actions without a resource (ListSecrets,
// GetRandomPassword, BatchGetSecretValue itself).
func (inv *invocation) starTarget() target {
	// CreateSecret adds up to four keys with target.with.
	return target{resource: "*", context: inv.baseContext(4).m}
}

// withRequestTags adds aws:RequestTag/<k> and aws:TagKeys for tags carried by
// the request.
func withRequestTags(t target, tags []wireTag) target {
	if len(tags) == 0 {
		return t
	}
	keys := make([]string, 0, len(tags))
	for _, tg := range tags {
		t.context["aws:RequestTag/"+tg.Key] = []string{tg.Value}
		keys = append(keys, tg.Key)
	}
	t.context["aws:TagKeys"] = keys
	return t
}

// with adds one condition key unless value is empty.
func (t target) with(key, value string) target {
	if value != "" {
		t.context[key] = []string{value}
	}
	return t
}
