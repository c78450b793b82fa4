package iam

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// The policy language
//
// A policy document is IAM's JSON: {"Version", "Id", "Statement"}, each
// statement {"Sid", "Effect", "Principal"/"NotPrincipal", "Action"/
// "NotAction", "Resource"/"NotResource", "Condition"}. [ParsePolicy] checks
// a document strictly and compiles it once into matchers; [Evaluate] and
// [Policy.AllowsPrincipal] then decide requests without re-reading JSON and,
// for policies without variables, without allocating.
//
// Choices where AWS leaves room, or where sigil is stricter:
//   - Element names, Effect values and operator names are case-sensitive, as
//     IAM spells them; an unknown name is rejected with a hint when only its
//     case is wrong.
//   - Sids must be unique within a document in every kind, since decisions
//     name the deciding statement by Sid. Identity and trust policies (IAM)
//     also require Sids of ASCII letters and digits; resource policies accept
//     any Sid.
//   - Size limits follow IAM: identity policies 6,144 characters and trust
//     policies 4,096 (AWS's default quota is 2,048 and can be raised to
//     4,096; sigil has no quota process, so it accepts the maximum), both
//     counted without whitespace. Resource policies (Secrets Manager) allow
//     20,480 characters counted with whitespace. [ParsePolicyLimit] takes
//     another limit, e.g. 10,240 for the inline policies of a role.
//   - Principal/NotPrincipal are rejected in identity policies; trust
//     policies require Principal and reject NotPrincipal and Resource;
//     NotPrincipal is accepted only in resource policies and only with Deny.
//   - Policy variables work in Resource/NotResource and in the values of the
//     String and ARN operators; elsewhere ${...} in a value fails to parse as
//     a number, date, address or base64 and is rejected.

// PolicyKind says where a policy document is used; it decides which elements
// are allowed and the size limit.
type PolicyKind int

// Policy kinds.
const (
	// IdentityPolicy is attached to a user or role (inline or managed), and
	// is also the kind of session policies and permissions boundaries.
	IdentityPolicy PolicyKind = iota + 1
	// ResourcePolicy is attached to a resource, e.g. a secret.
	ResourcePolicy
	// TrustPolicy is a role's assume-role policy.
	TrustPolicy
)

// Default size limits in characters, per kind.
const (
	// MaxIdentityPolicySize is the limit for identity policies, counted
	// without whitespace.
	MaxIdentityPolicySize = 6144
	// MaxTrustPolicySize is the limit for trust policies, counted without
	// whitespace.
	MaxTrustPolicySize = 4096
	// MaxResourcePolicySize is the limit for resource policies, counted
	// with whitespace.
	MaxResourcePolicySize = 20480
	// MaxRoleInlinePolicySize is IAM's limit for a role's inline policies,
	// for use with ParsePolicyLimit.
	MaxRoleInlinePolicySize = 10240
)

// String returns the kind's name as used in messages.
func (k PolicyKind) String() string {
	switch k {
	case IdentityPolicy:
		return "identity policy"
	case ResourcePolicy:
		return "resource policy"
	case TrustPolicy:
		return "trust policy"
	}
	return "unknown policy kind"
}

// SizeLimit returns the default size limit of the kind in characters.
func (k PolicyKind) SizeLimit() int {
	switch k {
	case ResourcePolicy:
		return MaxResourcePolicySize
	case TrustPolicy:
		return MaxTrustPolicySize
	}
	return MaxIdentityPolicySize
}

// ErrMalformedPolicy is matched (with errors.Is) by every error of
// ParsePolicy: the document is not valid JSON, breaks the grammar, or is too
// large. The protocol edge maps it to MalformedPolicyDocument.
var ErrMalformedPolicy = errors.New("malformed policy document")

// PolicyError is a problem in a policy document. Path locates it, e.g.
// "Statement[2].Condition" (empty for the whole document); Msg says what is
// wrong. The message never contains more of the document than the offending
// name or value.
type PolicyError struct {
	Path string
	Msg  string
}

// Error returns "Path: Msg", or Msg when Path is empty.
func (e *PolicyError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Is makes every PolicyError match ErrMalformedPolicy.
func (e *PolicyError) Is(target error) bool { return target == ErrMalformedPolicy }

// Policy is a parsed, compiled policy document. It is immutable and safe for
// concurrent use.
type Policy struct {
	kind       PolicyKind
	version    string
	doc        string
	statements []statement
	variables  bool
}

// Kind returns the kind the policy was parsed as.
func (p *Policy) Kind() PolicyKind { return p.kind }

// Version returns the document's Version, "" when it has none (which
// behaves as 2008-10-17).
func (p *Policy) Version() string { return p.version }

// Document returns the document text as given to ParsePolicy.
func (p *Policy) Document() string { return p.doc }

// HasVariables reports whether the policy uses policy variables, which makes
// its evaluation allocate.
func (p *Policy) HasVariables() bool { return p.variables }

// NamedPolicy is a policy with a name for decisions and audit, e.g.
// "arn:aws:iam::123456789012:policy/app" or "role/app-role/inline/db".
type NamedPolicy struct {
	Name   string
	Policy *Policy
}

// PolicySet is everything that decides one request. A nil Policy in any
// entry is skipped.
type PolicySet struct {
	// Identity holds the principal's identity-based policies (inline and
	// attached).
	Identity []NamedPolicy
	// Resource is the resource's policy, if any.
	Resource *NamedPolicy
	// Session holds session policies (STS). When non-empty, what identity
	// policies allow is intersected with what the session policies allow
	// (the session policies together, as one policy type: an Allow in any of
	// them counts).
	Session []NamedPolicy
	// Boundary is the permissions boundary, if any.
	Boundary *NamedPolicy
}

// ParsePolicy parses and compiles a policy document of the given kind with
// the kind's default size limit. Every error is a *PolicyError matching
// ErrMalformedPolicy, with a message that points at the problem, e.g.
// `Statement[2].Condition: unknown operator "StringEqual"`.
func ParsePolicy(doc string, kind PolicyKind) (*Policy, error) {
	return ParsePolicyLimit(doc, kind, kind.SizeLimit())
}

// ParsePolicyLimit is ParsePolicy with an explicit size limit in characters,
// counted as for the kind (without whitespace for identity and trust
// policies).
func ParsePolicyLimit(doc string, kind PolicyKind, limit int) (*Policy, error) {
	if kind != IdentityPolicy && kind != ResourcePolicy && kind != TrustPolicy {
		return nil, &PolicyError{Msg: "unknown policy kind"}
	}
	if n := policySize(doc, kind); n > limit {
		return nil, &PolicyError{Msg: sizeMessage(kind, n, limit)}
	}
	root, err := parseJSON(doc)
	if err != nil {
		return nil, err
	}
	p, err := compileDocument(root, kind)
	if err != nil {
		return nil, err
	}
	p.doc = doc
	return p, nil
}

// policySize counts characters as the kind's limit does: IAM ignores
// whitespace, Secrets Manager counts everything.
func policySize(doc string, kind PolicyKind) int {
	if kind == ResourcePolicy {
		return utf8.RuneCountInString(doc)
	}
	n := 0
	for _, r := range doc {
		switch r {
		case ' ', '\t', '\n', '\r':
		default:
			n++
		}
	}
	return n
}

func sizeMessage(kind PolicyKind, n, limit int) string {
	what := "characters"
	if kind != ResourcePolicy {
		what = "characters excluding whitespace"
	}
	return "the " + kind.String() + " has " + strconv.Itoa(n) + " " + what + "; the limit is " + strconv.Itoa(limit)
}
