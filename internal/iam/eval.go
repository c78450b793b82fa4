package iam

// This file decides requests with AWS's single-account evaluation logic.
//
//  1. An explicit Deny in any applicable policy (identity, resource, session,
//     boundary) decides: "explicit deny", naming the policy and statement.
//  2. A resource policy that allows the caller by its own user or session
//     ARN decides: "allow". Such a grant is not limited by session policies
//     or a permissions boundary, as in AWS.
//  3. Otherwise an Allow from an identity policy, or from the resource
//     policy through the caller's role, account or "*", is needed, and then
//     the boundary (if any) and the session policies (if any) must allow too.
//  4. Anything else is an "implicit deny". When the boundary or the session
//     policies are what is missing, the decision names them.
//
// A statement applies when its action, resource, principal (resource and
// trust policies) and every condition match. Actions match
// case-insensitively, resources case-sensitively. Evaluation reads no JSON
// and, for policies without variables, does not allocate.

// Decision reasons.
const (
	reasonAllow        = "allow"
	reasonExplicitDeny = "explicit deny"
	reasonImplicitDeny = "implicit deny"
)

// verdict is what one policy says about a request.
type verdict struct {
	deny, allow *statement
	direct      bool // the allow names the caller itself (resource policies)
}

// Evaluate decides req against set. Root is not special here: callers
// handle the root bypass before asking. A nil set or request is an implicit
// deny.
func Evaluate(req *Request, set *PolicySet) Decision {
	if req == nil || set == nil {
		return Decision{Reason: reasonImplicitDeny}
	}
	var idName string
	var idAllow *statement
	for i := range set.Identity {
		np := &set.Identity[i]
		if np.Policy == nil {
			continue
		}
		v := np.Policy.identityVerdict(req)
		if v.deny != nil {
			return explicitDeny(np.Name, v.deny)
		}
		if v.allow != nil && idAllow == nil {
			idName, idAllow = np.Name, v.allow
		}
	}

	var res verdict
	if rp := set.Resource; rp != nil && rp.Policy != nil {
		c := callerOf(req)
		res = rp.Policy.verdict(req, &c, nil, true)
		if res.deny != nil {
			return explicitDeny(rp.Name, res.deny)
		}
	}

	var sessAllow *statement
	for i := range set.Session {
		np := &set.Session[i]
		if np.Policy == nil {
			continue
		}
		v := np.Policy.identityVerdict(req)
		if v.deny != nil {
			return explicitDeny(np.Name, v.deny)
		}
		if v.allow != nil && sessAllow == nil {
			sessAllow = v.allow
		}
	}

	var bndAllow *statement
	hasBoundary := set.Boundary != nil && set.Boundary.Policy != nil
	if hasBoundary {
		v := set.Boundary.Policy.identityVerdict(req)
		if v.deny != nil {
			return explicitDeny(set.Boundary.Name, v.deny)
		}
		bndAllow = v.allow
	}

	if res.allow != nil && res.direct {
		return allow(set.Resource.Name, res.allow)
	}
	if idAllow == nil && res.allow == nil {
		return Decision{Reason: reasonImplicitDeny}
	}
	if hasBoundary && bndAllow == nil {
		return Decision{Reason: reasonImplicitDeny, Policy: set.Boundary.Name}
	}
	if hasSession(set.Session) && sessAllow == nil {
		return Decision{Reason: reasonImplicitDeny, Policy: firstSessionName(set.Session)}
	}
	if idAllow != nil {
		return allow(idName, idAllow)
	}
	return allow(set.Resource.Name, res.allow)
}

// hasSession reports whether any session policy is set.
func hasSession(s []NamedPolicy) bool {
	for i := range s {
		if s[i].Policy != nil {
			return true
		}
	}
	return false
}

func firstSessionName(s []NamedPolicy) string {
	for i := range s {
		if s[i].Policy != nil {
			return s[i].Name
		}
	}
	return ""
}

func explicitDeny(policy string, s *statement) Decision {
	return Decision{Reason: reasonExplicitDeny, Policy: policy, Statement: s.label}
}

func allow(policy string, s *statement) Decision {
	return Decision{Allowed: true, Reason: reasonAllow, Policy: policy, Statement: s.label}
}

// AllowsPrincipal evaluates a trust policy: whether who may perform
// req.Action (sts:AssumeRole, sts:AssumeRoleWithWebIdentity, sts:TagSession,
// ...) under req.Context. Deny statements that apply win; otherwise a
// matching Allow allows; otherwise the decision is an implicit deny. Trust
// policies have no Resource, so req.Resource is ignored. The decision's
// Statement names the deciding statement; Policy is left empty for the
// caller to fill with the role's name. req.Principal may be nil (web
// identity callers have none); principal-derived keys are then absent.
func (p *Policy) AllowsPrincipal(req *Request, who PrincipalRef) Decision {
	if p == nil || req == nil {
		return Decision{Reason: reasonImplicitDeny}
	}
	var c caller
	if who.Type == PrincipalAWS {
		account := ""
		if req.Principal != nil && req.Principal.ARN == who.ID {
			account = req.Principal.AccountID
		}
		c = newCaller(who.ID, account)
	}
	v := p.verdict(req, &c, &who, false)
	switch {
	case v.deny != nil:
		return explicitDeny("", v.deny)
	case v.allow != nil:
		return allow("", v.allow)
	}
	return Decision{Reason: reasonImplicitDeny}
}

// identityVerdict evaluates an identity-style policy (identity, session,
// boundary): no principal matching.
func (p *Policy) identityVerdict(req *Request) verdict {
	return p.verdict(req, nil, nil, true)
}

// verdict finds the first applicable Deny (which ends the search) and the
// first applicable Allow. With c nil, principals are not checked (identity
// policies have none); otherwise statements apply only to matching
// principals, given as an AWS caller (ref nil or of type AWS) or a
// reference. withResource is false for trust policies.
func (p *Policy) verdict(req *Request, c *caller, ref *PrincipalRef, withResource bool) verdict {
	var v verdict
	for i := range p.statements {
		s := &p.statements[i]
		// A Deny is always worth checking; an Allow only until one is
		// found, or with principals until a direct one is found.
		if !s.deny && v.allow != nil && (c == nil || v.direct) {
			continue
		}
		direct := false
		if c != nil {
			applies, d := s.principalMatch(c, ref)
			if !applies {
				continue
			}
			direct = d
		}
		if !s.matchAction(req.Action) {
			continue
		}
		if withResource && !s.matchResource(req) {
			continue
		}
		if !s.matchConditions(req) {
			continue
		}
		if s.deny {
			v.deny = s
			return v
		}
		if v.allow == nil || direct {
			v.allow, v.direct = s, direct
		}
	}
	return v
}

// matchAction applies Action/NotAction.
func (s *statement) matchAction(action string) bool {
	for i := range s.actions {
		if s.actions[i].match(action) {
			return !s.notAction
		}
	}
	return s.notAction
}

// matchResource applies Resource/NotResource.
func (s *statement) matchResource(req *Request) bool {
	if s.anyResource {
		return true
	}
	for i := range s.resources {
		if s.resources[i].match(req, req.Resource) {
			return !s.notResource
		}
	}
	return s.notResource
}

// matchConditions reports whether every condition holds.
func (s *statement) matchConditions(req *Request) bool {
	for i := range s.conds {
		if !s.conds[i].eval(req) {
			return false
		}
	}
	return true
}
