package images

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// Identity is what a verified assertion proves: the workload runs the
// image Digest from Repository, sealed for RoleARN with key KeyID.
type Identity struct {
	KeyID, Digest, Repository, RoleARN string
	// Audience is the assertion's aud, JTI its id, Expires its exp.
	Audience, JTI string
	Expires       time.Time
	// Kubernetes is the assertion's embedded service-account token, not
	// yet verified (STS verifies it against the registered OIDC
	// providers); empty when absent. Never log it.
	Kubernetes string
}

// ConditionContext returns the trust-policy condition keys of the
// identity: sigil:ImageDigest, sigil:ImageRepository and sigil:ImageKeyId.
func (id *Identity) ConditionContext() map[string][]string {
	return map[string][]string{
		KeyImageDigest:     {id.Digest},
		KeyImageRepository: {id.Repository},
		KeyImageKeyID:      {id.KeyID},
	}
}

// VerifyAssertion verifies an image assertion: its shape (ParseAssertion),
// its signature under the key kid names, that the key has not expired or
// been replaced and its digest not revoked, that aud is this server's
// audience, that exp - iat is at most MaxAssertionLifetime and the
// assertion is current (Skew either side), and finally that its jti was
// never accepted before, on any replica sharing the store. Only then is
// the jti consumed and the key's usage counted. A refusal is an
// *AssertionError (errors.Is with the sentinels); any other error means
// the store failed and nothing was decided.
func (r *Registry) VerifyAssertion(ctx context.Context, token string) (*Identity, error) {
	a, err := ParseAssertion(token)
	if err != nil {
		return nil, err
	}
	k, err := r.Key(ctx, a.KeyID)
	if errors.Is(err, ErrNotFound) {
		return nil, refuse(ErrUnknownKey, "kid "+a.KeyID+" is not registered")
	}
	if err != nil {
		return nil, err
	}
	if !a.VerifySignature(k.PublicKey) {
		return nil, refuse(ErrBadSignature, "signature does not verify under key "+k.ID)
	}
	now := r.now()
	switch {
	case !k.Replaced.IsZero():
		return nil, refuse(ErrKeyRevoked, fmt.Sprintf("key %s was replaced by a reseal at %s", k.ID, k.Replaced.Format(time.RFC3339)))
	case r.DigestRevoked(k.Digest):
		return nil, refuse(ErrKeyRevoked, fmt.Sprintf("digest %s of key %s is revoked", k.Digest, k.ID))
	case !k.Expires.IsZero() && !now.Before(k.Expires):
		return nil, refuse(ErrKeyExpired, fmt.Sprintf("key %s expired at %s", k.ID, k.Expires.Format(time.RFC3339)))
	case subtle.ConstantTimeCompare([]byte(a.Audience), []byte(r.audience)) != 1:
		return nil, refuse(ErrWrongAudience, fmt.Sprintf("aud %q, want %s", truncate(a.Audience), r.audience))
	case a.Expires.Before(a.IssuedAt) || a.Expires.Sub(a.IssuedAt) > MaxAssertionLifetime:
		return nil, refuse(ErrAssertionLifetime, fmt.Sprintf("exp - iat is %s, at most %s", a.Expires.Sub(a.IssuedAt), MaxAssertionLifetime))
	case a.IssuedAt.After(now.Add(Skew)):
		return nil, refuse(ErrAssertionLifetime, "iat is in the future "+a.IssuedAt.UTC().Format(time.RFC3339))
	case !now.Before(a.Expires.Add(Skew)):
		return nil, refuse(ErrAssertionExpired, "exp passed at "+a.Expires.UTC().Format(time.RFC3339))
	}
	if err := r.replay.claim(ctx, a.JTI, a.Expires.Add(Skew)); err != nil {
		if errors.Is(err, ErrReplayed) {
			return nil, refuse(ErrReplayed, "jti "+a.JTI+" was already used")
		}
		return nil, err
	}
	r.noteUse(k.ID, now)
	return &Identity{KeyID: k.ID, Digest: k.Digest, Repository: k.Repository, RoleARN: k.RoleARN,
		Audience: a.Audience, JTI: a.JTI, Expires: a.Expires, Kubernetes: a.Kubernetes}, nil
}
