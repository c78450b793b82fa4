package sts

import (
	"context"
	"errors"
	"unicode/utf8"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/iam"
)

// AssumeRoleWithWebIdentity
//
// The request is unsigned: the web-identity token is the proof. The
// token's (unverified) iss picks the registered OIDC provider; federation
// verifies the token against it (signature by a published key, iss, aud
// among the provider's client IDs, exp, nbf, iat); then the role's trust
// policy must allow sts:AssumeRoleWithWebIdentity for the principal
// {"Federated": <the provider's ARN>} under the token's condition keys
// (<host/path>:sub, :aud, sigil:k8s/*) and the request's. A role may trust
// several providers: each statement names its own. Session tags in the
// token's https://aws.amazon.com/tags claim become the session's tags and
// need sts:TagSession in the trust policy too.

type webIdentityInput struct {
	sessionParams
	WebIdentityToken string  `query:"WebIdentityToken,required"`
	ProviderID       *string `query:"ProviderId"`
}

// maxSubjectLength is the longest subject STS returns
// (SubjectFromWebIdentityToken).
const maxSubjectLength = 255

func (s *Service) assumeRoleWithWebIdentity(ctx context.Context, inv *invocation) (any, error) {
	var in webIdentityInput
	if err := decode(inv, &in); err != nil {
		return nil, err
	}
	ap := newAuditParams(&in.sessionParams)
	if in.ProviderID != nil {
		ap.ProviderID = *in.ProviderID
	}
	inv.params = ap
	if err := in.sessionParams.check(); err != nil {
		return nil, err
	}
	if err := checkLength("webIdentityToken", in.WebIdentityToken, 4, federation.MaxTokenSize); err != nil {
		// Never echo the token: the constraint error would quote it.
		return nil, errValidation("1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and %d", federation.MaxTokenSize)
	}
	policy, err := in.sessionPolicy()
	if err != nil {
		return nil, err
	}
	if isImageAssertion(in.WebIdentityToken) {
		return s.assumeRoleWithImage(ctx, inv, &in, policy)
	}

	id, prov, err := s.verifyWebIdentity(ctx, inv, in.WebIdentityToken)
	if err != nil {
		return nil, err
	}
	inv.identity = &audit.UserIdentity{Type: "WebIdentityUser", PrincipalID: prov.URL + ":" + id.Audience + ":" + id.Subject,
		UserName: id.Subject, IdentityProvider: prov.ARN}
	if k := id.Kubernetes; k != nil {
		inv.k8s = &audit.Kubernetes{Namespace: k.Namespace, ServiceAccount: k.ServiceAccount, Pod: k.Pod}
	}
	if utf8.RuneCountInString(id.Subject) > maxSubjectLength {
		return nil, errIDPRejectedClaim("The web identity token's subject is longer than %d characters.", maxSubjectLength)
	}

	denied := errAccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
	inv.resources = []string{in.RoleArn}
	role, err := s.ents.RoleByARN(ctx, in.RoleArn)
	if err != nil {
		if errors.Is(err, iam.ErrNoSuchEntity) || errors.Is(err, iam.ErrInvalidEntityInput) {
			inv.decide(iam.Decision{Reason: "implicit deny (no such role)"})
			s.log.InfoContext(ctx, "sts: web identity refused: no such role", "request_id", inv.c.RequestID, "role", in.RoleArn)
			return nil, denied
		}
		return nil, err
	}
	inv.resources = []string{role.ARN}

	tags := make([]tag, 0, len(id.SessionTags))
	for _, t := range id.SessionTags {
		tags = append(tags, tag{key: t.Key, value: t.Value})
	}
	keys := id.ConditionContext()
	for k, v := range inv.baseContext() {
		keys[k] = v
	}
	keys["sts:RoleSessionName"] = []string{in.RoleSessionName}
	keys["aws:FederatedProvider"] = []string{prov.ARN}
	if len(id.TransitiveTagKeys) > 0 {
		keys["sts:TransitiveTagKeys"] = id.TransitiveTagKeys
	}
	trust := s.trustPolicy(role.TrustPolicy)
	who := iam.PrincipalRef{Type: iam.PrincipalFederated, ID: prov.ARN}
	actions := []string{"sts:AssumeRoleWithWebIdentity"}
	if len(tags) > 0 {
		actions = append(actions, "sts:TagSession")
	}
	for _, action := range actions {
		d := trust.AllowsPrincipal(&iam.Request{Action: action, Resource: role.ARN, Context: keys}, who)
		d.Policy = "role/" + role.Name + "/trust-policy"
		inv.decide(d)
		if !d.Allowed {
			s.log.InfoContext(ctx, "sts: web identity refused by the trust policy", "request_id", inv.c.RequestID,
				"role", role.ARN, "provider", prov.ARN, "subject", id.Subject, "action", action, "reason", d.Reason)
			return nil, denied
		}
	}

	duration, err := in.duration(&role, false)
	if err != nil {
		return nil, err
	}
	arns, err := s.managedPolicies(ctx, &in.sessionParams)
	if err != nil {
		return nil, err
	}
	packed, err := s.checkPacked(policy, arns, tags, id.TransitiveTagKeys)
	if err != nil {
		return nil, err
	}
	fed := make([]tag, 0, 8)
	for k, v := range id.ConditionContext() {
		if len(v) > 0 && !isTagKey(k) {
			fed = append(fed, tag{key: k, value: v[0]})
		}
	}
	sortTags(fed)
	is, err := s.issue(inv.now, &issueRequest{role: role, sessionName: in.RoleSessionName, policy: policy,
		policyARNs: arns, tags: tags, transitive: id.TransitiveTagKeys, provider: prov.ARN, fedClaims: fed,
		duration: duration})
	if err != nil {
		return nil, err
	}
	inv.issues = true
	el := is.auditElements(packed)
	el.SubjectFromWebIdentityToken, el.Provider, el.Audience = id.Subject, prov.ARN, id.Audience
	inv.elements = el
	return &webIdentityResult{Credentials: is.credentials(), SubjectFromWebIdentityToken: id.Subject,
		AssumedRoleUser: is.user(), PackedPolicySize: packed, Provider: prov.ARN, Audience: id.Audience}, nil
}

// verifyWebIdentity finds the token's provider and verifies the token.
func (s *Service) verifyWebIdentity(ctx context.Context, inv *invocation, token string) (*federation.Identity, *iam.OIDCProvider, error) {
	iss, err := federation.IssuerOf(token)
	if err != nil {
		return nil, nil, s.federationError(ctx, inv, err)
	}
	prov, err := s.ents.OIDCProviderByIssuer(ctx, iss)
	if err != nil {
		if errors.Is(err, iam.ErrNoSuchEntity) {
			s.log.InfoContext(ctx, "sts: web identity refused: unregistered issuer", "request_id", inv.c.RequestID, "issuer", truncate(iss))
			inv.decide(iam.Decision{Reason: "invalid web identity token"})
			return nil, nil, errInvalidIdentityToken("No OpenIDConnect provider found in your account for " + truncate(iss))
		}
		return nil, nil, err
	}
	id, err := s.fed.Verify(ctx, &federation.Provider{URL: "https://" + prov.URL, ClientIDs: prov.ClientIDs,
		Thumbprints: prov.Thumbprints, ARN: prov.ARN}, token)
	if err != nil {
		return nil, nil, s.federationError(ctx, inv, err)
	}
	return id, &prov, nil
}

// federationError maps a federation failure to STS's error, logging the
// precise cause.
func (s *Service) federationError(ctx context.Context, inv *invocation, err error) error {
	var fe *federation.Error
	if !errors.As(err, &fe) {
		return err
	}
	inv.decide(iam.Decision{Reason: "invalid web identity token"})
	s.log.InfoContext(ctx, "sts: web identity token refused", "request_id", inv.c.RequestID, "err", fe)
	switch {
	case errors.Is(err, federation.ErrExpiredToken):
		return errExpiredIdentityToken(fe.Message)
	case errors.Is(err, federation.ErrProviderUnreachable):
		return errIDPCommunication(fe.Message)
	}
	return errInvalidIdentityToken(fe.Message)
}

// isTagKey reports whether a condition key describes session tags, which
// the session carries as tags rather than as claims.
func isTagKey(k string) bool {
	return k == federation.KeyTagKeys || len(k) > len(federation.KeyRequestTagPrefix) && k[:len(federation.KeyRequestTagPrefix)] == federation.KeyRequestTagPrefix
}
