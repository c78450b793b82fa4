// Package authn turns verified request credentials into a [Principal]: the
// account root, an IAM user, or (with STS) an assumed-role session.
//
// Authentication here means "who signed this request"; whether that principal
// may do what it asks is decided elsewhere (package iam). Access keys live in
// the store behind the barrier, so a key's secret half is never on disk in
// plaintext.
package authn

import "time"

// Kind is the type of a principal, spelled as CloudTrail's userIdentity.type.
type Kind string

// Principal kinds.
const (
	KindRoot        Kind = "Root"
	KindIAMUser     Kind = "IAMUser"
	KindAssumedRole Kind = "AssumedRole"
)

// Principal is an authenticated caller. It holds no secret material and is
// safe to log.
type Principal struct {
	// Kind is the principal type.
	Kind Kind
	// AccountID is the 12-digit account the principal belongs to.
	AccountID string
	// ARN is the principal's ARN, e.g. arn:aws:iam::123456789012:root or
	// arn:aws:iam::123456789012:user/ci.
	ARN string
	// ID is the unique principal id (aws:userid): the account id for root,
	// AIDA... for users, AROA...:session for assumed roles.
	ID string
	// Name is the friendly name (aws:username) for IAM users; empty otherwise.
	Name string
	// AccessKeyID is the access key the request was signed with.
	AccessKeyID string
	// Tags are the principal's tags (aws:PrincipalTag/*); for sessions, the
	// session tags.
	Tags map[string]string

	// Session is set for temporary credentials (KindAssumedRole) and nil
	// otherwise.
	Session *Session
}

// Session describes the assumed-role session behind temporary credentials.
// It is decoded from the sealed session token on every request, so it
// needs no storage read.
type Session struct {
	// ID identifies the session, for revocation and audit.
	ID string
	// RoleARN and RoleID name the assumed role (ARN with its path; AROA...).
	RoleARN, RoleID string
	// Name is the RoleSessionName.
	Name string
	// SourceIdentity is the source identity set at assume time, if any.
	SourceIdentity string
	// Issued and Expires bound the session's life.
	Issued, Expires time.Time
	// Policy is the inline session policy document, if any, and PolicyARNs
	// the managed session policies; they intersect with the role's.
	Policy     string
	PolicyARNs []string
	// FederatedProvider is the identity provider that vouched for the
	// caller of AssumeRoleWithWebIdentity (an oidc-provider ARN, or
	// "sigil:image"), empty for AssumeRole.
	FederatedProvider string
	// Claims are the verified web-identity condition keys carried into the
	// session (e.g. <issuer>:sub, sigil:k8s/namespace) for audit.
	Claims map[string]string
	// ImageDigest is the sealed image the session was minted for, if any.
	ImageDigest string
}

// IsRoot reports whether p is the account root.
func (p *Principal) IsRoot() bool { return p != nil && p.Kind == KindRoot }
