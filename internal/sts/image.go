package sts

import (
	"context"
	"errors"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/federation"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/images"
)

// AssumeRoleWithWebIdentity with a sealed-image assertion
//
// A WebIdentityToken whose (unverified) iss is "sigil:image" is an image
// assertion, verified by Config.Images: signature under the registered
// key, key not expired or replaced, digest not revoked, audience, lifetime,
// and a jti never seen by any replica. When it embeds a Kubernetes
// service-account token (claim "k8s"), that token is verified like any
// web-identity token, against the registered OIDC provider of its issuer,
// as a second proof. The role must be the one the image was sealed for,
// and its trust policy must allow sts:AssumeRoleWithWebIdentity for
// {"Federated": "sigil:image"} under the condition keys sigil:ImageDigest,
// sigil:ImageRepository, sigil:ImageKeyId and, with the second proof, the
// Kubernetes token's keys (<issuer>:sub, sigil:k8s/...). The session
// carries the image digest: once the digest is revoked, Principal refuses
// it (ErrRevokedSession).

// ImageVerifier verifies sealed-image assertions and knows the revoked
// digests; *images.Registry implements it.
type ImageVerifier interface {
	// VerifyAssertion verifies an assertion and consumes its jti; a
	// refusal is an *images.AssertionError.
	VerifyAssertion(ctx context.Context, token string) (*images.Identity, error)
	// DigestRevoked reports whether sessions of the digest must be
	// refused. It must not block: it runs on every request.
	DigestRevoked(digest string) bool
}

// isImageAssertion reports whether a web-identity token claims to be a
// sealed-image assertion; only for routing, nothing is verified.
func isImageAssertion(token string) bool {
	iss, err := federation.IssuerOf(token)
	return err == nil && iss == images.Issuer
}

func (s *Service) assumeRoleWithImage(ctx context.Context, inv *invocation, in *webIdentityInput, policy string) (any, error) {
	if s.images == nil {
		inv.decide(iam.Decision{Reason: "invalid web identity token"})
		return nil, errInvalidIdentityToken("Sealed-image assertions are not accepted by this server.")
	}
	id, err := s.images.VerifyAssertion(ctx, in.WebIdentityToken)
	if err != nil {
		return nil, s.imageError(ctx, inv, err)
	}
	inv.imageDigest = id.Digest
	inv.identity = &audit.UserIdentity{Type: "WebIdentityUser", PrincipalID: images.Issuer + ":" + id.Audience + ":" + id.KeyID,
		UserName: id.KeyID, IdentityProvider: images.Issuer}
	// claims are the verified identity's condition keys, carried into the
	// session for audit; keys adds the request's.
	claims := id.ConditionContext()
	if id.Kubernetes != "" {
		kid, prov, err := s.verifyWebIdentity(ctx, inv, id.Kubernetes)
		if err != nil {
			return nil, err
		}
		if k := kid.Kubernetes; k != nil {
			inv.k8s = &audit.Kubernetes{Namespace: k.Namespace, ServiceAccount: k.ServiceAccount, Pod: k.Pod}
		}
		for k, v := range kid.ConditionContext() {
			// The second proof contributes identity only: session tags
			// come from nowhere in an image exchange.
			if !isTagKey(k) {
				claims[k] = v
			}
		}
		s.log.DebugContext(ctx, "sts: image assertion carries a verified kubernetes token", "request_id", inv.c.RequestID,
			"provider", prov.ARN, "subject", kid.Subject)
	}

	denied := errAccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
	inv.resources = []string{in.RoleArn}
	role, err := s.ents.RoleByARN(ctx, in.RoleArn)
	if err != nil {
		if errors.Is(err, iam.ErrNoSuchEntity) || errors.Is(err, iam.ErrInvalidEntityInput) {
			inv.decide(iam.Decision{Reason: "implicit deny (no such role)"})
			s.log.InfoContext(ctx, "sts: image exchange refused: no such role", "request_id", inv.c.RequestID, "role", in.RoleArn)
			return nil, denied
		}
		return nil, err
	}
	inv.resources = []string{role.ARN}
	if role.ARN != id.RoleARN {
		inv.decide(iam.Decision{Reason: "implicit deny (the image was sealed for another role)"})
		s.log.InfoContext(ctx, "sts: image exchange refused: the image was sealed for another role", "request_id", inv.c.RequestID,
			"role", role.ARN, "sealed_for", id.RoleARN, "key_id", id.KeyID)
		return nil, denied
	}

	keys := inv.baseContext()
	for k, v := range claims {
		keys[k] = v
	}
	keys["sts:RoleSessionName"] = []string{in.RoleSessionName}
	keys["aws:FederatedProvider"] = []string{images.Issuer}
	trust := s.trustPolicy(role.TrustPolicy)
	who := iam.PrincipalRef{Type: iam.PrincipalFederated, ID: images.Issuer}
	d := trust.AllowsPrincipal(&iam.Request{Action: "sts:AssumeRoleWithWebIdentity", Resource: role.ARN, Context: keys}, who)
	d.Policy = "role/" + role.Name + "/trust-policy"
	inv.decide(d)
	if !d.Allowed {
		s.log.InfoContext(ctx, "sts: image exchange refused by the trust policy", "request_id", inv.c.RequestID,
			"role", role.ARN, "key_id", id.KeyID, "digest", id.Digest, "reason", d.Reason)
		return nil, denied
	}

	duration, err := in.duration(&role, false)
	if err != nil {
		return nil, err
	}
	arns, err := s.managedPolicies(ctx, &in.sessionParams)
	if err != nil {
		return nil, err
	}
	packed, err := s.checkPacked(policy, arns, nil, nil)
	if err != nil {
		return nil, err
	}
	fed := make([]tag, 0, len(claims))
	for k, v := range claims {
		if len(v) > 0 {
			fed = append(fed, tag{key: k, value: v[0]})
		}
	}
	sortTags(fed)
	is, err := s.issue(inv.now, &issueRequest{role: role, sessionName: in.RoleSessionName, policy: policy,
		policyARNs: arns, provider: images.Issuer, fedClaims: fed, duration: duration, imageDigest: id.Digest})
	if err != nil {
		return nil, err
	}
	inv.issues = true
	el := is.auditElements(packed)
	el.SubjectFromWebIdentityToken, el.Provider, el.Audience = id.KeyID, images.Issuer, id.Audience
	inv.elements = el
	return &webIdentityResult{Credentials: is.credentials(), SubjectFromWebIdentityToken: id.KeyID,
		AssumedRoleUser: is.user(), PackedPolicySize: packed, Provider: images.Issuer, Audience: id.Audience}, nil
}

// imageError maps a refused assertion to STS's error, logging the precise
// reason; store failures pass through unchanged.
func (s *Service) imageError(ctx context.Context, inv *invocation, err error) error {
	var ae *images.AssertionError
	if !errors.As(err, &ae) {
		return err
	}
	inv.decide(iam.Decision{Reason: "invalid web identity token"})
	s.log.InfoContext(ctx, "sts: image assertion refused", "request_id", inv.c.RequestID, "kind", ae.Kind.Error(), "detail", ae.Detail)
	switch {
	case errors.Is(err, images.ErrAssertionExpired):
		return errExpiredIdentityToken("Token is expired.")
	case errors.Is(err, images.ErrKeyExpired):
		return errInvalidIdentityToken("The image key has expired: seal the image again with a new key.")
	}
	return errInvalidIdentityToken("The web identity token is invalid.")
}
