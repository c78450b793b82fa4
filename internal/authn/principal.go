// Package authn turns verified request credentials into a [Principal]: the
// account root, an IAM user, or (with STS) an assumed-role session.
//
// Authentication here means "who signed this request"; whether that principal
// may do what it asks is decided elsewhere (package iam). Access keys live in
// the store behind the barrier, so a key's secret half is never on disk in
// plaintext.
package authn

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
	// Tags are the principal's tags (aws:PrincipalTag/*).
	Tags map[string]string
}

// IsRoot reports whether p is the account root.
func (p *Principal) IsRoot() bool { return p != nil && p.Kind == KindRoot }
