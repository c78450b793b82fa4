package iam

import (
	"fmt"
	"strings"

	"sigil.dev/sigil/internal/authn"
)

// This file holds the Principal and NotPrincipal elements of resource and
// trust policies, and how an entry matches a caller.
//
// An AWS entry is "*" (everyone), a 12-digit account id or
// arn:aws:iam::ID:root (any principal of that account), a user or role ARN,
// or an assumed-role session ARN. Users and roles match by account and name
// (IAM names are unique in an account whatever their path; session ARNs
// carry no path), and a role entry matches every session of that role.
// Wildcards inside principal ARNs are rejected, as in AWS: use a condition
// on aws:PrincipalArn instead. Federated entries (OIDC or SAML provider ARNs,
// or well-known providers such as accounts.google.com) and Service entries
// match only [PrincipalRef]s of that type with the same identifier; "*"
// (and {"AWS": "*"}) matches every AWS caller but no federated or service
// principal, so a trust policy must name its identity provider.
// CanonicalUser entries are accepted for compatibility and match nobody.

// PrincipalType is the type of a principal in a policy's Principal element.
type PrincipalType string

// Principal types.
const (
	PrincipalAWS           PrincipalType = "AWS"
	PrincipalFederated     PrincipalType = "Federated"
	PrincipalService       PrincipalType = "Service"
	PrincipalCanonicalUser PrincipalType = "CanonicalUser"
)

// PrincipalRef is the principal a trust policy is asked about: for
// AssumeRole the calling IAM identity (Type AWS, ID its ARN), for
// AssumeRoleWithWebIdentity the identity provider (Type Federated, ID the
// provider ARN, e.g.
// arn:aws:iam::123456789012:oidc-provider/oidc.example.com/cluster).
type PrincipalRef struct {
	Type PrincipalType
	ID   string
}

// AWSPrincipal returns the PrincipalRef of an authenticated caller.
func AWSPrincipal(p *authn.Principal) PrincipalRef {
	if p == nil {
		return PrincipalRef{Type: PrincipalAWS}
	}
	return PrincipalRef{Type: PrincipalAWS, ID: p.ARN}
}

// entryKind classifies an AWS principal entry.
type entryKind uint8

const (
	entryAny     entryKind = iota // "*"
	entryAccount                  // account id or :root ARN
	entryUser                     // arn:...:iam::ID:user/[path/]name
	entryRole                     // arn:...:iam::ID:role/[path/]name
	entryExact                    // other ARNs (sessions, federated users): exact match
	entryID                       // Federated, Service, CanonicalUser: exact identifier
)

// principalEntry is one compiled principal.
type principalEntry struct {
	typ     PrincipalType
	kind    entryKind
	value   string
	account string
	name    string // user or role name
}

// principal compiles Principal/NotPrincipal of a statement per kind.
func (c *docCompiler) principal(path string, n *jnode, s *statement) error {
	v, name, not, err := pickOne(path, n, "Principal", "NotPrincipal")
	if err != nil {
		return err
	}
	switch {
	case v != nil && c.kind == IdentityPolicy:
		return &PolicyError{Path: path + "." + name, Msg: "is not allowed in an identity policy; the principal is the identity the policy is attached to"}
	case v == nil && c.kind == IdentityPolicy:
		return nil
	case v == nil:
		return &PolicyError{Path: path, Msg: fmt.Sprintf("has no Principal; a %s must say whom it applies to", c.kind)}
	case not && c.kind == TrustPolicy:
		return &PolicyError{Path: path + ".NotPrincipal", Msg: "is not allowed in a trust policy"}
	case not && !s.deny:
		return &PolicyError{Path: path + ".NotPrincipal", Msg: `is supported only with "Effect": "Deny"`}
	}
	s.notPrincipal = not
	path += "." + name
	if v.kind == jString {
		if v.s != "*" {
			return &PolicyError{Path: path, Msg: `must be "*" or an object such as {"AWS": "arn:aws:iam::123456789012:root"}`}
		}
		s.principals = []principalEntry{{typ: PrincipalAWS, kind: entryAny, value: "*"}}
		return nil
	}
	if v.kind != jObject || len(v.keys) == 0 {
		return &PolicyError{Path: path, Msg: `must be "*" or a non-empty object such as {"AWS": "arn:aws:iam::123456789012:root"}`}
	}
	for i, k := range v.keys {
		typ := PrincipalType(k)
		switch typ {
		case PrincipalAWS, PrincipalFederated, PrincipalService, PrincipalCanonicalUser:
		default:
			return &PolicyError{Path: path, Msg: fmt.Sprintf("unknown principal type %q; use AWS, Federated, Service or CanonicalUser", k)}
		}
		list, paths, err := stringList(path+"."+k, v.vals[i])
		if err != nil {
			return err
		}
		for j, id := range list {
			e, err := compilePrincipal(typ, id)
			if err != nil {
				return &PolicyError{Path: paths[j], Msg: err.Error()}
			}
			s.principals = append(s.principals, e)
		}
	}
	return nil
}

// compilePrincipal checks and compiles one principal identifier.
func compilePrincipal(typ PrincipalType, id string) (principalEntry, error) {
	e := principalEntry{typ: typ, value: id, kind: entryID}
	switch {
	case id == "":
		return e, fmt.Errorf("empty principal")
	case id == "*" && typ == PrincipalAWS:
		e.kind = entryAny
		return e, nil
	case strings.ContainsAny(id, "*?"):
		return e, fmt.Errorf("principal %q has a wildcard; only \"*\" alone is allowed (match ARNs with a condition on aws:PrincipalArn)", id)
	case strings.ContainsAny(id, " \t\r\n"):
		return e, fmt.Errorf("principal %q contains whitespace", id)
	}
	if typ != PrincipalAWS {
		if typ == PrincipalFederated && strings.HasPrefix(id, "arn:") {
			a, ok := splitARN(id)
			if !ok || a.service != "iam" || !isAccountID(a.account) ||
				!(strings.HasPrefix(a.resource, "oidc-provider/") || strings.HasPrefix(a.resource, "saml-provider/")) {
				return e, fmt.Errorf("federated principal %q must be an oidc-provider or saml-provider ARN, or a provider name", id)
			}
		}
		return e, nil
	}
	if isAccountID(id) {
		e.kind, e.account = entryAccount, id
		return e, nil
	}
	a, ok := splitARN(id)
	if !ok || a.partition == "" || a.region != "" || !isAccountID(a.account) {
		return e, fmt.Errorf("invalid AWS principal %q; use \"*\", an account id or an IAM user, role or session ARN", id)
	}
	e.account = a.account
	switch {
	case a.service == "iam" && a.resource == "root":
		e.kind = entryAccount
	case a.service == "iam" && strings.HasPrefix(a.resource, "user/"):
		e.kind, e.name = entryUser, lastSegment(a.resource)
	case a.service == "iam" && strings.HasPrefix(a.resource, "role/"):
		e.kind, e.name = entryRole, lastSegment(a.resource)
	case a.service == "sts" && (strings.HasPrefix(a.resource, "assumed-role/") || strings.HasPrefix(a.resource, "federated-user/")):
		e.kind = entryExact
	default:
		return e, fmt.Errorf("invalid AWS principal %q; use \"*\", an account id or an IAM user, role or session ARN", id)
	}
	if e.name == "" && (e.kind == entryUser || e.kind == entryRole) {
		return e, fmt.Errorf("invalid AWS principal %q: the name is empty", id)
	}
	return e, nil
}

// caller is the parsed identity of a requester, for principal matching.
type caller struct {
	arn     string
	account string
	user    string // IAM user name, for user callers
	role    string // role name, for assumed-role sessions
}

// newCaller parses an ARN (and an account id that overrides the ARN's).
func newCaller(arn, account string) caller {
	c := caller{arn: arn, account: account}
	a, ok := splitARN(arn)
	if !ok {
		return c
	}
	if c.account == "" {
		c.account = a.account
	}
	switch {
	case a.service == "iam" && strings.HasPrefix(a.resource, "user/"):
		c.user = lastSegment(a.resource)
	case a.service == "sts" && strings.HasPrefix(a.resource, "assumed-role/"):
		c.role, _, _ = strings.Cut(a.resource[len("assumed-role/"):], "/")
	}
	return c
}

// callerOf returns the caller of a request, or the zero caller (matched only
// by "*") when the request has no principal.
func callerOf(req *Request) caller {
	if req.Principal == nil {
		return caller{}
	}
	return newCaller(req.Principal.ARN, req.Principal.AccountID)
}

// matchAWS reports whether e matches an AWS caller, and whether it names the
// caller directly (its user or session ARN) rather than its role, account or
// everyone; only direct grants in resource policies escape the limits of
// session policies and permissions boundaries.
func (e *principalEntry) matchAWS(c *caller) (match, direct bool) {
	if e.typ != PrincipalAWS {
		return false, false
	}
	switch e.kind {
	case entryAny:
		return true, false
	case entryAccount:
		return c.account != "" && c.account == e.account, false
	case entryUser:
		m := c.user != "" && c.user == e.name && c.account == e.account
		return m, m
	case entryRole:
		return c.role != "" && c.role == e.name && c.account == e.account, false
	}
	m := c.arn != "" && c.arn == e.value
	return m, m
}

// matchRef reports whether e matches a non-AWS principal reference.
func (e *principalEntry) matchRef(ref PrincipalRef) bool {
	return e.typ == ref.Type && e.kind == entryID && e.typ != PrincipalCanonicalUser && e.value == ref.ID
}

// principalMatch applies a statement's Principal or NotPrincipal to an AWS
// caller (ref nil) or a principal reference.
func (s *statement) principalMatch(c *caller, ref *PrincipalRef) (applies, direct bool) {
	matched := false
	for i := range s.principals {
		e := &s.principals[i]
		var m, d bool
		if ref == nil || ref.Type == PrincipalAWS {
			m, d = e.matchAWS(c)
		} else {
			m = e.matchRef(*ref)
		}
		if m {
			matched = true
			direct = direct || d
		}
	}
	if s.notPrincipal {
		return !matched, false
	}
	return matched, direct
}

// arn is an ARN split into its six components; resource holds everything
// after the fifth colon.
type arn struct {
	partition, service, region, account, resource string
}

// splitARN splits s without allocating; ok is false unless s starts with
// "arn:" and has six components.
func splitARN(s string) (arn, bool) {
	var a arn
	rest, ok := strings.CutPrefix(s, "arn:")
	if !ok {
		return a, false
	}
	var f [4]string
	for i := range f {
		j := strings.IndexByte(rest, ':')
		if j < 0 {
			return a, false
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	a.partition, a.service, a.region, a.account, a.resource = f[0], f[1], f[2], f[3], rest
	return a, true
}

// isAccountID reports whether s is a 12-digit account id.
func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// lastSegment returns what follows the last '/'.
func lastSegment(s string) string {
	return s[strings.LastIndexByte(s, '/')+1:]
}
