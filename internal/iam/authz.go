// Package iam holds sigil's authorization model: the IAM policy language, the
// evaluator, and the entities (roles, users, policies, OIDC providers).
//
// Every operation asks an authorizer with a [Request] (principal, action,
// resource ARN, condition context) and acts only on an allowing [Decision].
// Until the policy evaluator lands, [RootOnly] allows the account root and
// denies everyone else, which is the deny-by-default the design requires.
package iam

import (
	"context"

	"sigil.dev/sigil/internal/authn"
)

// Request is one authorization question.
type Request struct {
	// Principal is the authenticated caller; never nil.
	Principal *authn.Principal
	// Action is the IAM action, e.g. "secretsmanager:GetSecretValue".
	Action string
	// Resource is the resource ARN, or "*" for actions without a resource
	// (ListSecrets, GetRandomPassword).
	Resource string
	// ResourcePolicy is the JSON resource policy attached to the resource,
	// if any.
	ResourcePolicy string
	// Context holds condition keys and their values, e.g.
	// "aws:SourceIp" -> {"127.0.0.1"}.
	Context map[string][]string
}

// Decision is the answer to a Request.
type Decision struct {
	// Allowed is true only for an explicit Allow (or root).
	Allowed bool
	// Reason says why, for audit and server logs: "root", "implicit deny",
	// "explicit deny", "allow".
	Reason string
	// Policy and Statement name the deciding policy and statement Sid, when
	// a policy decided.
	Policy    string
	Statement string
}

// Authorizer decides Requests. Implementations must be safe for concurrent
// use and must deny when in doubt.
type Authorizer interface {
	Authorize(ctx context.Context, req Request) Decision
}

// RootOnly is the authorizer used before policies exist: it allows the
// account root and implicitly denies every other principal.
type RootOnly struct{}

// Authorize implements Authorizer.
func (RootOnly) Authorize(_ context.Context, req Request) Decision {
	if req.Principal.IsRoot() {
		return Decision{Allowed: true, Reason: "root"}
	}
	return Decision{Reason: "implicit deny"}
}
