package iam

// The IAM entities
//
// sigil keeps the IAM entities its workloads need: roles (with a trust
// policy), IAM users (with access keys), customer managed policies (with up
// to five versions), inline policies of roles and users, and OIDC identity
// providers. [Entities] stores them behind the encryption barrier and
// answers the evaluator's hot-path question "which policies apply to this
// principal" from a cache of compiled policies ([Entities.IdentityPolicies]);
// [API] serves them over IAM's query protocol.
//
// Names of roles, users and policies are unique within the account without
// regard to case, as in IAM ("Admin" and "admin" cannot coexist, and either
// spelling finds the entity). OIDC providers are unique by URL.

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Tag is a key/value tag of a role, user, policy or OIDC provider.
type Tag struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// InlinePolicy is a policy document embedded in a role or user.
type InlinePolicy struct {
	Name     string `json:"name"`
	Document string `json:"doc"`
}

// EntityKind says whether an entity that holds policies is a role or a user.
type EntityKind int

// Entity kinds.
const (
	// RoleEntity is an IAM role.
	RoleEntity EntityKind = iota + 1
	// UserEntity is an IAM user.
	UserEntity
)

// String returns "role" or "user", as the kind appears in ARNs.
func (k EntityKind) String() string {
	if k == RoleEntity {
		return "role"
	}
	return "user"
}

// Role is an IAM role. Times are UTC with second precision, as IAM reports
// them.
type Role struct {
	Name string
	// Path is "/" or "/a/b/"; it is part of the ARN.
	Path    string
	ID      string // AROA + 17 characters
	ARN     string
	Created time.Time
	// Description is free text, "" when unset.
	Description string
	// MaxSessionDuration is the longest session STS may issue, in seconds
	// (3600 to 43200).
	MaxSessionDuration int32
	// TrustPolicy is the assume-role policy document, as given.
	TrustPolicy string
	// PermissionsBoundary is the ARN of the managed policy bounding the
	// role's permissions, "" when none.
	PermissionsBoundary string
	Tags                []Tag
	// InlinePolicies are sorted by name; AttachedPolicies are managed
	// policy ARNs sorted as strings.
	InlinePolicies   []InlinePolicy
	AttachedPolicies []string
}

// User is an IAM user.
type User struct {
	Name                string
	Path                string
	ID                  string // AIDA + 17 characters
	ARN                 string
	Created             time.Time
	PermissionsBoundary string
	Tags                []Tag
	InlinePolicies      []InlinePolicy
	AttachedPolicies    []string
	// AccessKeys are the ids of the user's access keys (at most two); their
	// records, with the secrets, are kept by authn.Keys.
	AccessKeys []string
}

// ManagedPolicy is a customer managed policy.
type ManagedPolicy struct {
	Name        string
	Path        string
	ID          string // ANPA + 17 characters
	ARN         string
	Description string
	Created     time.Time
	// Updated is when the default version last changed.
	Updated time.Time
	// DefaultVersion is the id ("v3") of the version in force.
	DefaultVersion string
	// Versions are sorted by version number; at most MaxPolicyVersions.
	Versions []PolicyVersion
	// AttachmentCount counts the roles and users the policy is attached
	// to; BoundaryUsageCount those it bounds.
	AttachmentCount    int
	BoundaryUsageCount int
	Tags               []Tag
}

// Default returns the default version.
func (p *ManagedPolicy) Default() PolicyVersion {
	for _, v := range p.Versions {
		if v.ID == p.DefaultVersion {
			return v
		}
	}
	panic("iam: internal error: policy " + p.ARN + " has no default version")
}

// PolicyVersion is one version of a managed policy. Versions never change
// once created.
type PolicyVersion struct {
	ID       string    `json:"id"`
	Document string    `json:"doc"`
	Created  time.Time `json:"created"`
}

// OIDCProvider is an OpenID Connect identity provider that roles may trust
// for AssumeRoleWithWebIdentity.
type OIDCProvider struct {
	ARN string
	// URL is the issuer without its scheme ("issuer.example.com/path"), as
	// IAM reports it and as it appears in the ARN and in condition keys.
	URL         string
	ClientIDs   []string
	Thumbprints []string
	Created     time.Time
	Tags        []Tag
}

// IAM quotas that sigil enforces.
const (
	// MaxPolicyVersions is how many versions a managed policy keeps.
	MaxPolicyVersions = 5
	// MaxAccessKeysPerUser is how many access keys a user may have.
	MaxAccessKeysPerUser = 2
	// MaxAttachedPolicies is how many managed policies a role or user may
	// have attached (IAM's default quota).
	MaxAttachedPolicies = 10
	// MaxTags is how many tags an entity may have.
	MaxTags = 50
	// MaxUserInlinePolicySize is IAM's aggregate size limit of a user's
	// inline policies, counted without whitespace; a role's is
	// MaxRoleInlinePolicySize.
	MaxUserInlinePolicySize = 2048
	// MaxClientIDs and MaxThumbprints bound an OIDC provider's lists.
	MaxClientIDs   = 100
	MaxThumbprints = 5
)

// Defaults of a new role.
const (
	// DefaultMaxSessionDuration is a role's MaxSessionDuration when the
	// request gives none (one hour).
	DefaultMaxSessionDuration = 3600
	// DefaultPath is the path of entities created without one.
	DefaultPath = "/"
)

// Storage layout, all under the barrier:
//
//	iam/roles/<lower-case name>      entityRecord (kind role)
//	iam/users/<lower-case name>      entityRecord (kind user)
//	iam/policies/<lower-case name>   policyRecord
//	iam/oidc/<lower-case URL>        oidcRecord
//	iam/accesskeys/<id>              owned by authn.Keys
const (
	rolesPrefix    = "iam/roles/"
	usersPrefix    = "iam/users/"
	policiesPrefix = "iam/policies/"
	oidcPrefix     = "iam/oidc/"
)

// recordFormat is the version of the stored records this build writes.
const recordFormat = 1

// entityRecord is the stored form of a role or user; fields that do not
// apply to the kind stay empty.
type entityRecord struct {
	Format             int            `json:"v"`
	Name               string         `json:"name"`
	Path               string         `json:"path"`
	ID                 string         `json:"id"`
	Created            time.Time      `json:"created"`
	Description        string         `json:"desc,omitempty"`
	MaxSessionDuration int32          `json:"maxSession,omitempty"`
	TrustPolicy        string         `json:"trust,omitempty"`
	Boundary           string         `json:"boundary,omitempty"`
	Tags               []Tag          `json:"tags,omitempty"`
	Inline             []InlinePolicy `json:"inline,omitempty"`
	Attached           []string       `json:"attached,omitempty"`
	AccessKeys         []string       `json:"keys,omitempty"`
}

func (r *entityRecord) role(account string) Role {
	return Role{Name: r.Name, Path: r.Path, ID: r.ID, ARN: entityARN(account, RoleEntity, r.Path, r.Name),
		Created: r.Created, Description: r.Description, MaxSessionDuration: r.MaxSessionDuration,
		TrustPolicy: r.TrustPolicy, PermissionsBoundary: r.Boundary, Tags: cloneSlice(r.Tags),
		InlinePolicies: cloneSlice(r.Inline), AttachedPolicies: cloneSlice(r.Attached)}
}

func (r *entityRecord) user(account string) User {
	return User{Name: r.Name, Path: r.Path, ID: r.ID, ARN: entityARN(account, UserEntity, r.Path, r.Name),
		Created: r.Created, PermissionsBoundary: r.Boundary, Tags: cloneSlice(r.Tags),
		InlinePolicies: cloneSlice(r.Inline), AttachedPolicies: cloneSlice(r.Attached),
		AccessKeys: cloneSlice(r.AccessKeys)}
}

// policyRecord is the stored form of a managed policy.
type policyRecord struct {
	Format      int             `json:"v"`
	Name        string          `json:"name"`
	Path        string          `json:"path"`
	ID          string          `json:"id"`
	Description string          `json:"desc,omitempty"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
	Default     string          `json:"default"`
	Versions    []PolicyVersion `json:"versions"`
	NextVersion int             `json:"next"`
	Attachments int             `json:"attachments,omitempty"`
	Boundaries  int             `json:"boundaries,omitempty"`
	Tags        []Tag           `json:"tags,omitempty"`
}

func (r *policyRecord) policy(account string) ManagedPolicy {
	return ManagedPolicy{Name: r.Name, Path: r.Path, ID: r.ID, ARN: policyARN(account, r.Path, r.Name),
		Description: r.Description, Created: r.Created, Updated: r.Updated, DefaultVersion: r.Default,
		Versions: cloneSlice(r.Versions), AttachmentCount: r.Attachments, BoundaryUsageCount: r.Boundaries,
		Tags: cloneSlice(r.Tags)}
}

func (r *policyRecord) version(id string) (PolicyVersion, bool) {
	for _, v := range r.Versions {
		if v.ID == id {
			return v, true
		}
	}
	return PolicyVersion{}, false
}

// oidcRecord is the stored form of an OIDC provider.
type oidcRecord struct {
	Format      int       `json:"v"`
	URL         string    `json:"url"`
	ClientIDs   []string  `json:"clientIds,omitempty"`
	Thumbprints []string  `json:"thumbprints,omitempty"`
	Created     time.Time `json:"created"`
	Tags        []Tag     `json:"tags,omitempty"`
}

func (r *oidcRecord) provider(account string) OIDCProvider {
	return OIDCProvider{ARN: oidcARN(account, r.URL), URL: r.URL, ClientIDs: cloneSlice(r.ClientIDs),
		Thumbprints: cloneSlice(r.Thumbprints), Created: r.Created, Tags: cloneSlice(r.Tags)}
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}

// Storage keys.

func entityKey(kind EntityKind, name string) string {
	if kind == RoleEntity {
		return rolesPrefix + strings.ToLower(name)
	}
	return usersPrefix + strings.ToLower(name)
}

func policyKey(name string) string { return policiesPrefix + strings.ToLower(name) }

func oidcKey(u string) string { return oidcPrefix + strings.ToLower(u) }

// ARNs.

// entityARN is arn:aws:iam::ACCOUNT:role/PATHNAME (or user/...); path is
// "/" or "/a/b/".
func entityARN(account string, kind EntityKind, path, name string) string {
	return "arn:aws:iam::" + account + ":" + kind.String() + path + name
}

func policyARN(account, path, name string) string {
	return "arn:aws:iam::" + account + ":policy" + path + name
}

func oidcARN(account, u string) string {
	return "arn:aws:iam::" + account + ":oidc-provider/" + u
}

// iamResource is an ARN of this account's IAM split into its type ("role",
// "user", "policy", "oidc-provider"), path and name. For OIDC providers
// Name is the whole URL and Path is empty.
type iamResource struct {
	Type, Path, Name string
}

// parseIAMARN splits an IAM ARN of account. ok is false for anything else:
// another partition, service or account, a missing name, or a malformed
// path.
func parseIAMARN(account, arn string) (iamResource, bool) {
	prefix := "arn:aws:iam::" + account + ":"
	if !strings.HasPrefix(arn, prefix) {
		return iamResource{}, false
	}
	rest := arn[len(prefix):]
	typ, tail, ok := strings.Cut(rest, "/")
	if !ok || tail == "" {
		return iamResource{}, false
	}
	if typ == "oidc-provider" {
		return iamResource{Type: typ, Name: tail}, true
	}
	switch typ {
	case "role", "user", "policy":
	default:
		return iamResource{}, false
	}
	i := strings.LastIndexByte(tail, '/')
	name := tail[i+1:]
	path := "/" + tail[:i+1]
	if i < 0 {
		path = "/"
	}
	if name == "" || strings.Contains(path, "//") {
		return iamResource{}, false
	}
	return iamResource{Type: typ, Path: path, Name: name}, true
}

// normalizeOIDCURL checks an issuer URL and returns it without the scheme,
// as IAM stores it. It must be https with a host, and carry no user
// information, query or fragment. Ports are accepted (IAM discourages them,
// but self-hosted issuers often listen on one).
func normalizeOIDCURL(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" ||
		strings.ContainsAny(raw, "?#") {
		return "", false
	}
	if !strings.HasPrefix(raw, "https://") {
		return "", false
	}
	return raw[len("https://"):], true
}

// Unique ids.

// idAlphabet is the alphabet of IAM unique ids (base32's).
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// Unique-id prefixes, as IAM assigns them.
const (
	roleIDPrefix   = "AROA"
	userIDPrefix   = "AIDA"
	policyIDPrefix = "ANPA"
)

// lockedRand serializes reads from the configured randomness, which need not
// be safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedRand) Read(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return io.ReadFull(l.r, b)
}

// newUniqueID returns prefix + 17 characters drawn uniformly from
// idAlphabet (32 symbols, so masking a byte is unbiased).
func newUniqueID(r io.Reader, prefix string) (string, error) {
	buf := make([]byte, 17)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	for i, b := range buf {
		buf[i] = idAlphabet[b&31]
	}
	return prefix + string(buf), nil
}

// Tags.

// mergeTags adds or replaces tags (keys compared without regard to case,
// the stored spelling taking the new one) and returns them sorted by key.
func mergeTags(have, add []Tag) []Tag {
	out := cloneSlice(have)
	for _, t := range add {
		replaced := false
		for i := range out {
			if strings.EqualFold(out[i].Key, t.Key) {
				out[i] = t
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	sortTags(out)
	return out
}

// removeTags drops the tags with the given keys (without regard to case).
func removeTags(have []Tag, keys []string) []Tag {
	var out []Tag
	for _, t := range have {
		drop := false
		for _, k := range keys {
			if strings.EqualFold(t.Key, k) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, t)
		}
	}
	return out
}

func sortTags(ts []Tag) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
}

// policyChars counts a document's characters as IAM's size limits do,
// without whitespace.
func policyChars(doc string) int {
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
