// Package iam holds sigil's authorization model: the IAM policy language, the
// evaluator, and the entities (roles, users, policies, OIDC providers).
//
// Every operation asks an [Authorizer] with a [Request] (principal, action,
// resource ARN, condition context) and acts only on an allowing [Decision].
//
// The policy language: [ParsePolicy] parses and compiles a document once
// (identity, resource or trust policy; malformed documents are refused with
// a [PolicyError] pointing at the problem); [Evaluate] decides a Request
// against a [PolicySet] with AWS's single-account logic and does not
// allocate in the common case; [Policy.AllowsPrincipal] answers trust
// questions for sts:AssumeRole*. [Engine] is the production Authorizer:
// root bypasses policy, every other principal gets what its policies (from
// [Entities]) and the resource's policy allow, and nothing else.
// [RootOnly] denies everyone but root.
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
