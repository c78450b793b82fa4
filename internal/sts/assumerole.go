package sts

import (
	"context"
	"errors"
	"sort"
	"strings"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
)

// AssumeRole
//
// The caller is an IAM user or a role session (role chaining); the account
// root may not assume roles, as in AWS. Two policies decide, as in AWS for
// one account: the role's trust policy must allow sts:AssumeRole for the
// caller (iam.Policy.AllowsCaller), and then the caller's own policies must
// allow it on the role as far as the trust policy's grant requires
// (iam.Engine.AuthorizeGrant): a trust policy naming the account delegates
// to the caller's identity policies, one naming the caller itself does not,
// and an explicit Deny anywhere refuses. Session tags (request tags and,
// when chaining, the caller's transitive tags) need sts:TagSession, a
// source identity sts:SetSourceIdentity, each decided the same way.
// ExternalId is offered to the trust policy as sts:ExternalId. Chained
// sessions last at most an hour and keep the caller's source identity.

type assumeRoleInput struct {
	sessionParams
	Tags              []tagParam `query:"Tags"`
	TransitiveTagKeys []string   `query:"TransitiveTagKeys"`
	ExternalID        *string    `query:"ExternalId"`
	SerialNumber      *string    `query:"SerialNumber"`
	TokenCode         *string    `query:"TokenCode"`
	SourceIdentity    *string    `query:"SourceIdentity"`
}

func (in *assumeRoleInput) check() error {
	if err := in.sessionParams.check(); err != nil {
		return err
	}
	if in.ExternalID != nil {
		if err := checkPattern("externalId", *in.ExternalID, 2, 1224, externalIDPattern, `[\w+=,.@:\/-]*`); err != nil {
			return err
		}
	}
	if in.SourceIdentity != nil {
		if err := checkPattern("sourceIdentity", *in.SourceIdentity, 2, 64, sourceIdentityPattern, `[\w+=,.@-]*`); err != nil {
			return err
		}
		if strings.HasPrefix(strings.ToLower(*in.SourceIdentity), "aws:") {
			return errInvalidParameter("SourceIdentity cannot start with the reserved prefix aws:.")
		}
	}
	return nil
}

func (s *Service) assumeRole(ctx context.Context, inv *invocation) (any, error) {
	var in assumeRoleInput
	if err := decode(inv, &in); err != nil {
		return nil, err
	}
	ap := newAuditParams(&in.sessionParams)
	for _, t := range in.Tags {
		ap.Tags = append(ap.Tags, auditTag{Key: t.Key, Value: t.Value})
	}
	ap.TransitiveTagKeys = in.TransitiveTagKeys
	ap.ExternalID = deref(in.ExternalID)
	ap.SourceIdentity = deref(in.SourceIdentity)
	inv.params = ap
	if err := in.check(); err != nil {
		return nil, err
	}
	policy, err := in.sessionPolicy()
	if err != nil {
		return nil, err
	}
	tags, transitive, err := checkTags(in.Tags, in.TransitiveTagKeys)
	if err != nil {
		return nil, err
	}
	caller := inv.c.Principal
	inv.resources = []string{in.RoleArn}
	denied := errAccessDenied("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.ARN, truncate(in.RoleArn))
	switch {
	case caller.IsRoot():
		inv.decide(iam.Decision{Reason: "implicit deny (root may not assume roles)"})
		return nil, errAccessDenied("Roles may not be assumed by root accounts.")
	case in.SerialNumber != nil || in.TokenCode != nil:
		inv.decide(iam.Decision{Reason: "implicit deny (MFA)"})
		return nil, errAccessDenied("MultiFactorAuthentication failed: this service has no MFA devices.")
	}

	chained := caller.Kind == authn.KindAssumedRole && caller.Session != nil
	sourceIdentity := deref(in.SourceIdentity)
	// imageDigest is the sealed image a chain started from: the chained
	// session carries it, so revoking the image stops the whole chain.
	var imageDigest string
	if chained {
		prev, err := s.callerSession(inv.c)
		if err != nil {
			return nil, err
		}
		imageDigest = prev.imageDigest
		inv.imageDigest = imageDigest
		if tags, transitive, err = inheritTags(prev, tags, transitive); err != nil {
			return nil, err
		}
		if prev.sourceIdentity != "" {
			if sourceIdentity != "" && sourceIdentity != prev.sourceIdentity {
				return nil, errInvalidParameter("The source identity of a role chain cannot change: it is %s.", prev.sourceIdentity)
			}
			sourceIdentity = prev.sourceIdentity
		}
	}

	role, err := s.ents.RoleByARN(ctx, in.RoleArn)
	if err != nil {
		if errors.Is(err, iam.ErrNoSuchEntity) || errors.Is(err, iam.ErrInvalidEntityInput) {
			inv.decide(iam.Decision{Reason: "implicit deny (no such role)"})
			s.log.InfoContext(ctx, "sts: assume role refused: no such role", "request_id", inv.c.RequestID, "caller", caller.ARN, "role", in.RoleArn)
			return nil, denied
		}
		return nil, err
	}
	inv.resources = []string{role.ARN}

	keys := inv.baseContext()
	keys["sts:RoleSessionName"] = []string{in.RoleSessionName}
	if in.ExternalID != nil {
		keys["sts:ExternalId"] = []string{*in.ExternalID}
	}
	if sourceIdentity != "" {
		keys["sts:SourceIdentity"] = []string{sourceIdentity}
	}
	if len(tags) > 0 {
		names := make([]string, 0, len(tags))
		for _, t := range tags {
			keys["aws:RequestTag/"+t.key] = []string{t.value}
			names = append(names, t.key)
		}
		keys["aws:TagKeys"] = names
	}
	if len(transitive) > 0 {
		keys["sts:TransitiveTagKeys"] = transitive
	}
	actions := []string{"sts:AssumeRole"}
	if len(tags) > 0 {
		actions = append(actions, "sts:TagSession")
	}
	if sourceIdentity != "" {
		actions = append(actions, "sts:SetSourceIdentity")
	}
	trust := s.trustPolicy(role.TrustPolicy)
	for _, action := range actions {
		req := iam.Request{Principal: caller, Action: action, Resource: role.ARN, Context: keys}
		if !s.allowAssume(ctx, inv, &req, trust, &role) {
			return nil, denied
		}
	}

	duration, err := in.duration(&role, chained)
	if err != nil {
		return nil, err
	}
	arns, err := s.managedPolicies(ctx, &in.sessionParams)
	if err != nil {
		return nil, err
	}
	packed, err := s.checkPacked(policy, arns, tags, transitive)
	if err != nil {
		return nil, err
	}
	is, err := s.issue(inv.now, &issueRequest{role: role, sessionName: in.RoleSessionName,
		sourceIdentity: sourceIdentity, policy: policy, policyARNs: arns, tags: tags, transitive: transitive,
		duration: duration, imageDigest: imageDigest})
	if err != nil {
		return nil, err
	}
	inv.issues = true
	el := is.auditElements(packed)
	el.SourceIdentity = sourceIdentity
	inv.elements = el
	return &assumeRoleResult{Credentials: is.credentials(), AssumedRoleUser: is.user(),
		PackedPolicySize: packed, SourceIdentity: sourceIdentity}, nil
}

// allowAssume decides one action of AssumeRole: the trust policy, then the
// caller's side. It records the deciding decision and logs refusals.
func (s *Service) allowAssume(ctx context.Context, inv *invocation, req *iam.Request, trust *iam.Policy, role *iam.Role) bool {
	td, grant := trust.AllowsCaller(req, iam.AWSPrincipal(req.Principal))
	td.Policy = "role/" + role.Name + "/trust-policy"
	if !td.Allowed {
		inv.decide(td)
		s.log.InfoContext(ctx, "sts: assume role refused by the trust policy", "request_id", inv.c.RequestID,
			"caller", req.Principal.ARN, "role", role.ARN, "action", req.Action, "reason", td.Reason)
		return false
	}
	var id iam.Decision
	if ga, ok := s.authz.(grantAuthorizer); ok {
		id = ga.AuthorizeGrant(ctx, *req, grant)
	} else {
		id = s.authz.Authorize(ctx, *req)
	}
	if !id.Allowed {
		inv.decide(id)
		s.log.InfoContext(ctx, "sts: assume role refused by the caller's policies", "request_id", inv.c.RequestID,
			"caller", req.Principal.ARN, "role", role.ARN, "action", req.Action, "reason", id.Reason, "policy", id.Policy)
		return false
	}
	if id.Policy != "" {
		inv.decide(id)
	} else {
		inv.decide(td)
	}
	return true
}

// inheritTags adds a chaining caller's transitive session tags to the
// request's; a request tag may not override one.
func inheritTags(prev *claims, tags []tag, transitive []string) ([]tag, []string, error) {
	for _, k := range prev.transitive {
		if hasTagFold(tags, k) {
			return nil, nil, errInvalidParameter("The session tag %s is transitive in the calling session and cannot be overridden.", truncate(k))
		}
		for _, t := range prev.tags {
			if t.key == k {
				tags = append(tags, t)
			}
		}
		if !containsFold(transitive, k) {
			transitive = append(transitive, k)
		}
	}
	if len(tags) > maxSessionTags {
		return nil, nil, errInvalidParameter("The session would have more than %d tags.", maxSessionTags)
	}
	sortTags(tags)
	sort.Strings(transitive)
	return tags, transitive, nil
}

func (s *Service) getCallerIdentity(_ context.Context, inv *invocation) (any, error) {
	p := inv.c.Principal
	// Like AWS, GetCallerIdentity needs no permission: no policy can deny
	// a caller its own identity.
	inv.decide(iam.Decision{Allowed: true, Reason: "allow (no permission required)"})
	inv.resources = []string{p.ARN}
	return &callerIdentityResult{UserID: p.ID, Account: p.AccountID, Arn: p.ARN}, nil
}

// decode decodes the call's parameters into the action's input struct.
func decode(inv *invocation, dst any) error {
	if err := awsproto.DecodeQuery(inv.c.Form, dst); err != nil {
		return err
	}
	return nil
}

func sortTags(ts []tag) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].key < ts[j].key })
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
