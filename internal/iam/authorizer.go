package iam

import (
	"context"
	"log/slog"
	"sync"

	"sigil.dev/sigil/internal/authn"
)

// PolicySource resolves the identity-based policies and permissions
// boundary that apply to a principal. *Entities implements it.
type PolicySource interface {
	IdentityPolicies(ctx context.Context, p *authn.Principal) ([]NamedPolicy, error)
	PermissionsBoundary(ctx context.Context, p *authn.Principal) (*NamedPolicy, error)
}

// SessionPolicySource resolves the managed session policies of an STS
// session by ARN. *Entities implements it. For an ARN that names no
// managed policy the entry must carry that ARN as Name and a nil Policy;
// Engine then denies everything for the session (a session policy that
// has gone away must not widen the session to the whole role).
type SessionPolicySource interface {
	SessionPolicies(ctx context.Context, arns []string) ([]NamedPolicy, error)
}

// MaxSessionPolicySize is STS's limit on an inline session policy, in
// characters without whitespace.
const MaxSessionPolicySize = 2048

// Engine is the policy-enforcing Authorizer: the account root is allowed
// everything; every other principal gets exactly what its identity policies
// and the resource's policy allow, under AWS's evaluation logic (explicit
// Deny, then Allow, then implicit deny). Failing to load a principal's
// policies denies.
//
// For an assumed-role session the identity policies are the role's, and
// the session's policies (authn.Session.Policy, compiled once per distinct
// text, and Session.PolicyARNs, resolved through the source when it is a
// [SessionPolicySource]) limit them: the session may do only what both
// allow. A session policy that no longer resolves or parses denies
// everything, so a session can never end up broader than it was issued.
type Engine struct {
	src     PolicySource
	log     *slog.Logger
	denyAll *Policy
	account string // the account whose root bypasses policy; "" when src does not say

	// mu guards the compiled-document caches, keyed by document text: the
	// same few resource and session policies are evaluated on every
	// request that carries them.
	mu       sync.RWMutex
	resource map[string]*Policy
	session  map[string]*Policy
}

// maxResourcePolicies bounds each of Engine's compiled-document caches;
// past it the cache is dropped and refilled on demand.
const maxResourcePolicies = 4096

// denyAllDocument is what a session policy that cannot be used turns into.
const denyAllDocument = `{"Version":"2012-10-17","Statement":[{"Sid":"UnusableSessionPolicy","Effect":"Deny","Action":"*","Resource":"*"}]}`

// NewEngine returns an Engine over src. A nil logger discards.
func NewEngine(src PolicySource, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	deny, err := ParsePolicy(denyAllDocument, IdentityPolicy)
	if err != nil {
		panic("iam: internal error: the deny-all policy does not parse: " + err.Error())
	}
	e := &Engine{src: src, log: log, denyAll: deny,
		resource: map[string]*Policy{}, session: map[string]*Policy{}}
	if a, ok := src.(interface{ AccountID() string }); ok {
		e.account = a.AccountID()
	}
	return e
}

// root decides for the account root: only this account's root bypasses
// policy. A root key of another account id (say, one orphaned by two
// replicas bootstrapping at once) gets nothing.
func (e *Engine) root(p *authn.Principal) Decision {
	if e.account != "" && p.AccountID != e.account {
		e.log.Warn("authorization: root key of another account refused", "principal", p.ARN)
		return Decision{Reason: "implicit deny (root of another account)"}
	}
	return Decision{Allowed: true, Reason: "root"}
}

// Authorize implements Authorizer.
func (e *Engine) Authorize(ctx context.Context, req Request) Decision {
	if req.Principal.IsRoot() {
		return e.root(req.Principal)
	}
	set, d, ok := e.policySet(ctx, &req)
	if !ok {
		return d
	}
	if req.ResourcePolicy != "" {
		if rp := e.resourcePolicy(req.ResourcePolicy); rp != nil {
			set.Resource = &NamedPolicy{Name: "resource-policy", Policy: rp}
		}
	}
	return Evaluate(&req, set)
}

// policySet loads what applies to req's principal: identity policies,
// boundary and session policies. ok is false when they could not be
// loaded; d is then the denial to return.
func (e *Engine) policySet(ctx context.Context, req *Request) (set *PolicySet, d Decision, ok bool) {
	p := req.Principal
	unavailable := Decision{Reason: "implicit deny (policies unavailable)"}
	identity, err := e.src.IdentityPolicies(ctx, p)
	if err != nil {
		e.log.Error("authorization: loading identity policies failed; denying", "principal", p.ARN, "err", err)
		return nil, unavailable, false
	}
	boundary, err := e.src.PermissionsBoundary(ctx, p)
	if err != nil {
		e.log.Error("authorization: loading permissions boundary failed; denying", "principal", p.ARN, "err", err)
		return nil, unavailable, false
	}
	set = &PolicySet{Identity: identity, Boundary: boundary}
	if s := p.Session; p.Kind == authn.KindAssumedRole && s != nil && (s.Policy != "" || len(s.PolicyARNs) > 0) {
		sess, err := e.sessionPolicies(ctx, s)
		if err != nil {
			e.log.Error("authorization: loading session policies failed; denying", "principal", p.ARN, "err", err)
			return nil, unavailable, false
		}
		set.Session = sess
	}
	return set, Decision{}, true
}

// sessionPolicies compiles a session's inline policy and resolves its
// managed ones. Anything unusable becomes the deny-all policy under the
// name it was given.
func (e *Engine) sessionPolicies(ctx context.Context, s *authn.Session) ([]NamedPolicy, error) {
	out := make([]NamedPolicy, 0, 1+len(s.PolicyARNs))
	if s.Policy != "" {
		out = append(out, NamedPolicy{Name: "session-policy", Policy: e.inlineSessionPolicy(s.Policy)})
	}
	if len(s.PolicyARNs) == 0 {
		return out, nil
	}
	src, ok := e.src.(SessionPolicySource)
	if !ok {
		e.log.Warn("authorization: managed session policies cannot be resolved by this policy source; they deny everything", "session", s.ID)
		for _, arn := range s.PolicyARNs {
			out = append(out, NamedPolicy{Name: arn, Policy: e.denyAll})
		}
		return out, nil
	}
	managed, err := src.SessionPolicies(ctx, s.PolicyARNs)
	if err != nil {
		return nil, err
	}
	for _, np := range managed {
		if np.Policy == nil {
			np.Policy = e.denyAll
		}
		out = append(out, np)
	}
	return out, nil
}

// inlineSessionPolicy returns the compiled form of an inline session
// policy; STS validated it when it issued the session, so a document that
// no longer parses (a stricter parser) denies everything.
func (e *Engine) inlineSessionPolicy(doc string) *Policy {
	e.mu.RLock()
	p, ok := e.session[doc]
	e.mu.RUnlock()
	if ok {
		return p
	}
	p, err := ParsePolicyLimit(doc, IdentityPolicy, MaxSessionPolicySize)
	if err != nil {
		e.log.Warn("authorization: a session policy does not parse; the session is denied everything", "err", err)
		p = e.denyAll
	}
	e.mu.Lock()
	if len(e.session) >= maxResourcePolicies {
		e.session = map[string]*Policy{}
	}
	e.session[doc] = p
	e.mu.Unlock()
	return p
}

// resourcePolicy returns the compiled form of a stored resource policy. A
// document that no longer parses (it was validated when stored, so this
// means a newer, stricter parser) grants nothing.
func (e *Engine) resourcePolicy(doc string) *Policy {
	e.mu.RLock()
	p, ok := e.resource[doc]
	e.mu.RUnlock()
	if ok {
		return p
	}
	p, err := ParsePolicy(doc, ResourcePolicy)
	if err != nil {
		e.log.Warn("authorization: stored resource policy does not parse; it grants nothing", "err", err)
		p = nil
	}
	e.mu.Lock()
	if len(e.resource) >= maxResourcePolicies {
		e.resource = map[string]*Policy{}
	}
	e.resource[doc] = p
	e.mu.Unlock()
	return p
}

// Trust grants
//
// In one account a role's trust policy acts as the role's resource-based
// policy, so what else an AWS caller needs to assume the role depends on
// whom the allowing statement names (AWS: "To allow a user to assume a
// role in the same account, you can either attach a policy to the user
// that allows sts:AssumeRole, or add the user as a principal directly in
// the role's trust policy"):
//
//	names the caller's account (id or :root)  its identity policies must allow too
//	names the caller's role, or "*"           no identity Allow needed; the caller's
//	                                          boundary and session policies still limit
//	names the caller itself (user/session)    only an explicit Deny refuses
//
// An explicit Deny in any of the caller's policies always refuses.

// Grant says how a trust policy's Allow reaches an AWS caller; see
// [Policy.AllowsCaller] and [Engine.AuthorizeGrant].
type Grant int

// Grants, from weakest to strongest.
const (
	// GrantNone means no statement allows the caller.
	GrantNone Grant = iota
	// GrantAccount means only statements naming the caller's account
	// allow: the account delegates to the caller's identity policies.
	GrantAccount
	// GrantPrincipal means a statement names the caller's role (the
	// caller being a session of it) or "*".
	GrantPrincipal
	// GrantDirect means a statement names the caller's own user or
	// session ARN.
	GrantDirect
)

// AllowsCaller evaluates a trust policy for an authenticated AWS caller,
// as AllowsPrincipal does, and also reports the strongest [Grant] among the
// applicable Allow statements (GrantNone unless the decision allows). The
// decision's Statement names the statement that gave that grant.
func (p *Policy) AllowsCaller(req *Request, who PrincipalRef) (Decision, Grant) {
	if p == nil || req == nil || who.Type != PrincipalAWS {
		return Decision{Reason: reasonImplicitDeny}, GrantNone
	}
	account := ""
	if req.Principal != nil && req.Principal.ARN == who.ID {
		account = req.Principal.AccountID
	}
	c := newCaller(who.ID, account)
	var best *statement
	grant := GrantNone
	for i := range p.statements {
		s := &p.statements[i]
		if applies, _ := s.principalMatch(&c, &who); !applies {
			continue
		}
		if !s.matchAction(req.Action) || !s.matchConditions(req) {
			continue
		}
		if s.deny {
			return explicitDeny("", s), GrantNone
		}
		if g := s.grantTo(&c); g > grant {
			best, grant = s, g
		}
	}
	if best == nil {
		return Decision{Reason: reasonImplicitDeny}, GrantNone
	}
	return allow("", best), grant
}

// grantTo is the strongest grant an Allow statement's principals give c.
func (s *statement) grantTo(c *caller) Grant {
	g := GrantNone
	for i := range s.principals {
		e := &s.principals[i]
		m, direct := e.matchAWS(c)
		switch {
		case !m:
		case direct:
			return GrantDirect
		case e.kind == entryAccount:
			g = max(g, GrantAccount)
		default:
			g = max(g, GrantPrincipal)
		}
	}
	return g
}

// AuthorizeGrant decides an STS action (sts:AssumeRole, sts:TagSession,
// sts:SetSourceIdentity) on a role for a caller to whom the role's trust
// policy gave grant, with the same-account rules above: GrantAccount is
// plain Authorize; GrantPrincipal needs no identity Allow but the
// boundary and session policies must allow; GrantDirect is refused only by
// an explicit Deny; GrantNone denies. Root is allowed, as in Authorize.
func (e *Engine) AuthorizeGrant(ctx context.Context, req Request, grant Grant) Decision {
	switch {
	case grant == GrantNone:
		return Decision{Reason: reasonImplicitDeny}
	case req.Principal.IsRoot():
		return e.root(req.Principal)
	case grant == GrantAccount:
		return e.Authorize(ctx, req)
	}
	set, d, ok := e.policySet(ctx, &req)
	if !ok {
		return d
	}
	full := Evaluate(&req, set)
	if full.Allowed || full.Reason == reasonExplicitDeny {
		return full
	}
	if grant == GrantPrincipal {
		if b := set.Boundary; b != nil && b.Policy != nil {
			if d := Evaluate(&req, &PolicySet{Identity: []NamedPolicy{*b}}); !d.Allowed {
				return Decision{Reason: reasonImplicitDeny, Policy: b.Name}
			}
		}
		if hasSession(set.Session) {
			if d := Evaluate(&req, &PolicySet{Identity: set.Session}); !d.Allowed {
				return Decision{Reason: reasonImplicitDeny, Policy: firstSessionName(set.Session)}
			}
		}
	}
	return Decision{Allowed: true, Reason: reasonAllow}
}
