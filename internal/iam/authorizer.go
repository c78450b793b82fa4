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

// Engine is the policy-enforcing Authorizer: the account root is allowed
// everything; every other principal gets exactly what its identity policies
// and the resource's policy allow, under AWS's evaluation logic (explicit
// Deny, then Allow, then implicit deny). Failing to load a principal's
// policies denies.
type Engine struct {
	src PolicySource
	log *slog.Logger

	// resource caches compiled resource policies by document text: the
	// same few documents are evaluated on every request to their secrets.
	mu       sync.RWMutex
	resource map[string]*Policy
}

// maxResourcePolicies bounds Engine's compiled resource-policy cache; past
// it the cache is dropped and refilled on demand.
const maxResourcePolicies = 4096

// NewEngine returns an Engine over src. A nil logger discards.
func NewEngine(src PolicySource, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{src: src, log: log, resource: map[string]*Policy{}}
}

// Authorize implements Authorizer.
func (e *Engine) Authorize(ctx context.Context, req Request) Decision {
	p := req.Principal
	if p.IsRoot() {
		return Decision{Allowed: true, Reason: "root"}
	}
	identity, err := e.src.IdentityPolicies(ctx, p)
	if err != nil {
		e.log.Error("authorization: loading identity policies failed; denying", "principal", p.ARN, "err", err)
		return Decision{Reason: "implicit deny (policies unavailable)"}
	}
	boundary, err := e.src.PermissionsBoundary(ctx, p)
	if err != nil {
		e.log.Error("authorization: loading permissions boundary failed; denying", "principal", p.ARN, "err", err)
		return Decision{Reason: "implicit deny (policies unavailable)"}
	}
	set := PolicySet{Identity: identity, Boundary: boundary}
	if req.ResourcePolicy != "" {
		if rp := e.resourcePolicy(req.ResourcePolicy); rp != nil {
			set.Resource = &NamedPolicy{Name: "resource-policy", Policy: rp}
		}
	}
	return Evaluate(&req, &set)
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
