package sts

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/sigv4"
)

// issueRequest is everything a new session is made of.
type issueRequest struct {
	role           iam.Role
	sessionName    string
	sourceIdentity string
	policy         string
	policyARNs     []string
	tags           []tag // session tags, sorted by key
	transitive     []string
	provider       string
	fedClaims      []tag
	duration       time.Duration
	imageDigest    string // the sealed image's digest, for image exchanges
}

// issued is a new session's credentials and identity.
type issued struct {
	accessKeyID   string
	secret        string
	token         string
	expires       time.Time
	sessionID     string
	arn           string
	assumedRoleID string
}

// issue mints session credentials: a fresh ASIA access key id naming the
// current key, the secret derived from it, and the sealed claim set.
func (s *Service) issue(now time.Time, r *issueRequest) (*issued, error) {
	ring := s.ring.Load()
	k := ring.current
	akid, err := s.newAccessKeyID(k.id)
	if err != nil {
		return nil, err
	}
	rnd, err := s.randomBytes(sessionIDSize + chacha20poly1305.NonceSizeX)
	if err != nil {
		return nil, err
	}
	c := &claims{
		issued:         now.UTC(),
		expires:        now.UTC().Add(r.duration).Truncate(time.Second),
		roleARN:        r.role.ARN,
		roleID:         r.role.ID,
		sessionName:    r.sessionName,
		sourceIdentity: r.sourceIdentity,
		policy:         r.policy,
		policyARNs:     r.policyARNs,
		tags:           r.tags,
		transitive:     r.transitive,
		provider:       r.provider,
		fedClaims:      r.fedClaims,
		imageDigest:    r.imageDigest,
	}
	copy(c.sessionID[:], rnd[:sessionIDSize])
	for _, t := range r.role.Tags {
		c.roleTags = append(c.roleTags, tag{key: t.Key, value: t.Value})
	}
	tok, err := sealToken(k, akid, c, rnd[sessionIDSize:])
	if err != nil {
		return nil, err
	}
	return &issued{
		accessKeyID:   akid,
		secret:        k.secretFor(akid),
		token:         tok,
		expires:       c.expires,
		sessionID:     hex.EncodeToString(c.sessionID[:]),
		arn:           sessionARN(s.account, r.role.Name, r.sessionName),
		assumedRoleID: r.role.ID + ":" + r.sessionName,
	}, nil
}

// sessionARN is arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION (the role's
// path is not part of it, as in AWS).
func sessionARN(account, role, session string) string {
	return "arn:aws:sts::" + account + ":assumed-role/" + role + "/" + session
}

// roleNameOf returns the name in a role ARN (what follows the last '/').
func roleNameOf(roleARN string) string {
	return roleARN[strings.LastIndexByte(roleARN, '/')+1:]
}

// accountOf returns the account of an ARN, "" when it has none.
func accountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// SecretKey returns the secret access key of a session access key id,
// deriving it from the id and the session key the id names: no storage
// read. It implements sigv4.Credentials for session keys; for an id that is
// not a session access key of a known key, the error wraps both
// sigv4.ErrUnknownAccessKey and ErrInvalidSessionToken. That SecretKey
// answers says nothing about whether the session exists: Principal decides
// that from the session token, after the signature proved that the caller
// holds the secret.
func (s *Service) SecretKey(_ context.Context, accessKeyID string) (string, error) {
	kid, ok := accessKeyKeyID(accessKeyID)
	if !ok {
		return "", fmt.Errorf("%w: %w: not a session access key id", sigv4.ErrUnknownAccessKey, ErrInvalidSessionToken)
	}
	k := s.ring.Load().byID[kid]
	if k == nil {
		return "", fmt.Errorf("%w: %w: session key %d is unknown", sigv4.ErrUnknownAccessKey, ErrInvalidSessionToken, kid)
	}
	return k.secretFor(accessKeyID), nil
}

// Principal verifies the session token sent with a session access key id
// and returns the session's principal, without reading the store: the
// token must open under a known session key for exactly this access key
// id, must not have expired (ErrExpiredSessionToken) and its session must
// not be revoked (ErrRevokedSession, as of the last sync), nor its sealed
// image's digest (Config.Images). Every other
// failure wraps ErrInvalidSessionToken; [AuthError] maps them to the wire.
// Call it only after SigV4 verification succeeded with SecretKey's secret.
func (s *Service) Principal(_ context.Context, accessKeyID, sessionToken string) (*authn.Principal, error) {
	c, err := openToken(s.ring.Load(), accessKeyID, sessionToken)
	if err != nil {
		return nil, err
	}
	if now := s.now(); !now.Before(c.expires) {
		return nil, fmt.Errorf("%w: session %x expired at %s", ErrExpiredSessionToken, c.sessionID, c.expires.Format(time.RFC3339))
	}
	if s.revoked.Load().revokes(c) {
		return nil, fmt.Errorf("%w: session %x", ErrRevokedSession, c.sessionID)
	}
	if c.imageDigest != "" && (s.images == nil || s.images.DigestRevoked(c.imageDigest)) {
		// Without an image verifier nothing can say the digest is still
		// good: refuse.
		return nil, fmt.Errorf("%w: session %x of revoked image %s", ErrRevokedSession, c.sessionID, c.imageDigest)
	}
	return s.principalOf(accessKeyID, c), nil
}

// principalOf builds the principal of a verified session.
func (s *Service) principalOf(accessKeyID string, c *claims) *authn.Principal {
	account := accountOf(c.roleARN)
	p := &authn.Principal{
		Kind:        authn.KindAssumedRole,
		AccountID:   account,
		ARN:         sessionARN(account, roleNameOf(c.roleARN), c.sessionName),
		ID:          c.roleID + ":" + c.sessionName,
		AccessKeyID: accessKeyID,
		Session: &authn.Session{
			ID:                hex.EncodeToString(c.sessionID[:]),
			RoleARN:           c.roleARN,
			RoleID:            c.roleID,
			Name:              c.sessionName,
			SourceIdentity:    c.sourceIdentity,
			Issued:            c.issued,
			Expires:           c.expires,
			Policy:            c.policy,
			PolicyARNs:        c.policyARNs,
			FederatedProvider: c.provider,
			ImageDigest:       c.imageDigest,
		},
	}
	if n := len(c.roleTags) + len(c.tags); n > 0 {
		// Session tags override the role's tags of the same key (tag keys
		// are case-insensitive).
		p.Tags = make(map[string]string, n)
		for _, t := range c.roleTags {
			if !hasTagFold(c.tags, t.key) {
				p.Tags[t.key] = t.value
			}
		}
		for _, t := range c.tags {
			p.Tags[t.key] = t.value
		}
	}
	if len(c.fedClaims) > 0 {
		p.Session.Claims = make(map[string]string, len(c.fedClaims))
		for _, t := range c.fedClaims {
			p.Session.Claims[t.key] = t.value
		}
	}
	return p
}

func hasTagFold(ts []tag, key string) bool {
	for _, t := range ts {
		if strings.EqualFold(t.key, key) {
			return true
		}
	}
	return false
}

// callerSession re-opens the session token of a session caller, for role
// chaining, and checks that it is the caller's.
func (s *Service) callerSession(c *Call) (*claims, error) {
	p := c.Principal
	cl, err := openToken(s.ring.Load(), p.AccessKeyID, c.SessionToken)
	if err != nil {
		return nil, fmt.Errorf("sts: re-reading the caller's session token: %w", err)
	}
	if hex.EncodeToString(cl.sessionID[:]) != p.Session.ID {
		return nil, errors.New("sts: the caller's session token belongs to another session")
	}
	return cl, nil
}

// LongTermKeys resolves long-term access keys to principals; *authn.Keys
// implements it.
type LongTermKeys interface {
	Principal(ctx context.Context, accessKeyID string) (*authn.Principal, error)
}

// Resolve returns the principal of a request whose SigV4 signature res
// verified: for a session access key, the session's (the token is
// verified by Principal); for any other key, keys' principal. A session
// token sent with a long-term key is refused with ErrInvalidSessionToken,
// as AWS refuses it. Errors of keys are returned unchanged.
func (s *Service) Resolve(ctx context.Context, res *sigv4.Result, keys LongTermKeys) (*authn.Principal, error) {
	if IsSessionAccessKey(res.AccessKeyID) {
		return s.Principal(ctx, res.AccessKeyID, res.SessionToken)
	}
	if res.SessionToken != "" {
		return nil, fmt.Errorf("%w: a session token was sent with long-term access key %s", ErrInvalidSessionToken, res.AccessKeyID)
	}
	return keys.Principal(ctx, res.AccessKeyID)
}

// Credentials is the sigv4.Credentials of a server that accepts both long-
// term and session access keys: session access key ids (ASIA...) are
// answered by Sessions, without a storage read, every other id by Keys.
type Credentials struct {
	// Sessions answers for session access keys.
	Sessions *Service
	// Keys answers for every other access key: the long-term key
	// registry, whose not-found error must wrap sigv4.ErrUnknownAccessKey.
	Keys sigv4.Credentials
}

// SecretKey implements sigv4.Credentials.
func (c Credentials) SecretKey(ctx context.Context, accessKeyID string) (string, error) {
	if strings.HasPrefix(accessKeyID, accessKeyPrefix) {
		return c.Sessions.SecretKey(ctx, accessKeyID)
	}
	return c.Keys.SecretKey(ctx, accessKeyID)
}
