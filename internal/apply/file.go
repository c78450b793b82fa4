package apply

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
)

// File is a parsed, validated apply file. Strings may still hold the
// placeholders {{account}} and {{region}}; Plan resolves them. Every object
// records the line of its entry in the file, for messages.
type File struct {
	// OIDCProviders are the OpenID Connect identity providers.
	OIDCProviders []OIDCProvider
	// ManagedPolicies are the customer managed policies.
	ManagedPolicies []ManagedPolicy
	// Roles are the IAM roles.
	Roles []Role
	// Users are the IAM users (without access keys: apply never creates
	// credentials).
	Users []User
	// Databases are the databases registered for dynamic secrets.
	Databases []Database
	// DynamicSecrets are the secrets whose value is a database user issued
	// for each caller.
	DynamicSecrets []DynamicSecret
	// Rotators are the registered rotators that secrets' rotation may
	// name (see plan_rotation.go).
	Rotators []Rotator
	// Secrets are the Secrets Manager secrets.
	Secrets []Secret
}

// Document is the JSON text of a policy document. A document written in the
// file as a YAML map is converted to JSON keeping its key order; one written
// as a string is kept as written.
type Document string

// Tags are an object's tags, key to value. The file's tags are the whole
// set: apply removes tags the file does not list.
type Tags map[string]string

// OIDCProvider is an IAM OpenID Connect provider, identified by its URL.
type OIDCProvider struct {
	// URL is the issuer URL, https://host[/path].
	URL string
	// ClientIDs are the audiences the provider accepts.
	ClientIDs []string
	// Thumbprints are SHA-1 fingerprints (40 hex digits) of the issuer's
	// certificate; may be empty.
	Thumbprints []string
	// Tags are the provider's tags.
	Tags Tags
	// Line is the line of the entry in the file.
	Line int
}

// ManagedPolicy is a customer managed policy.
type ManagedPolicy struct {
	// Name is the policy's name, unique in the account.
	Name string
	// Path is the policy's path; "/" when the file gives none. Immutable.
	Path string
	// Description is set at creation; IAM cannot change it later.
	Description string
	// Document is the policy. A change makes a new default version.
	Document Document
	// Tags are the policy's tags.
	Tags Tags
	// Line is the line of the entry in the file.
	Line int
}

// InlinePolicy is a policy embedded in a role or user.
type InlinePolicy struct {
	// Name is the policy's name within its role or user.
	Name string
	// Document is the policy.
	Document Document
}

// Role is an IAM role.
type Role struct {
	// Name is the role's name.
	Name string
	// Path is the role's path; "/" when the file gives none. Immutable.
	Path string
	// Description is the role's description; empty means none.
	Description string
	// MaxSessionDuration is the longest session, in seconds, that assuming
	// the role grants; 3600 when the file gives none.
	MaxSessionDuration int32
	// PermissionsBoundary is the ARN of the boundary policy; empty means
	// none.
	PermissionsBoundary string
	// TrustPolicy says who may assume the role.
	TrustPolicy Document
	// InlinePolicies are the role's inline policies, all of them: inline
	// policies the file does not list are deleted from the role.
	InlinePolicies []InlinePolicy
	// AttachedPolicies are managed policies attached to the role, all of
	// them, each an ARN or the name of a managed policy in this file.
	AttachedPolicies []string
	// Tags are the role's tags.
	Tags Tags
	// Line is the line of the entry in the file.
	Line int
}

// User is an IAM user. Apply never creates, changes or deletes access keys.
type User struct {
	// Name is the user's name.
	Name string
	// Path is the user's path; "/" when the file gives none. Immutable.
	Path string
	// PermissionsBoundary is the ARN of the boundary policy; empty means
	// none.
	PermissionsBoundary string
	// InlinePolicies are the user's inline policies, all of them.
	InlinePolicies []InlinePolicy
	// AttachedPolicies are managed policies attached to the user, all of
	// them, each an ARN or the name of a managed policy in this file.
	AttachedPolicies []string
	// Tags are the user's tags.
	Tags Tags
	// Line is the line of the entry in the file.
	Line int
}

// Secret is a Secrets Manager secret.
type Secret struct {
	// Name is the secret's name.
	Name string
	// Description is the secret's description; empty means none.
	Description string
	// KmsKeyID names the key that encrypts the secret; empty means the
	// default key.
	KmsKeyID string
	// Tags are the secret's tags.
	Tags Tags
	// ResourcePolicy is the secret's resource policy; nil means none (an
	// existing one is deleted). Public policies are refused.
	ResourcePolicy *Document
	// Value is the initial value, nil when the file gives no value source.
	// It is read when the file is parsed and never printed.
	Value *Value
	// ValueSource says where the value came from, for messages:
	// `file "database-credentials.json"` or `environment variable DB`.
	ValueSource string
	// ValueTemplate marks a value whose placeholders ({{account}},
	// {{region}}, {{secretArn:NAME}}) are expanded when it is written.
	ValueTemplate bool
	// Rotation is the secret's rotation; nil means the file does not
	// manage it, and whatever the server has is left as is.
	Rotation *Rotation
	// Line is the line of the entry in the file.
	Line int
}

// redacted is what a Value prints instead of itself.
const redacted = "REDACTED"

// Value is a secret value. It never prints, logs or marshals its bytes:
// fmt, slog and encoding/json all see REDACTED.
type Value struct {
	b []byte
	// binary is set when the bytes are not UTF-8 text: they are stored as
	// SecretBinary instead of SecretString.
	binary bool
}

// newValue copies b into a Value.
func newValue(b []byte, binary bool) *Value {
	return &Value{b: append([]byte(nil), b...), binary: binary}
}

// String implements fmt.Stringer without the value.
func (v *Value) String() string { return redacted }

// GoString implements fmt.GoStringer without the value.
func (v *Value) GoString() string { return redacted }

// Format implements fmt.Formatter, so that every verb (%x, %q, %v, %+v)
// prints REDACTED.
func (v *Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer without the value.
func (v *Value) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler without the value.
func (v *Value) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText implements encoding.TextMarshaler without the value.
func (v *Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Kind names a type of object apply manages.
type Kind string

// The kinds, in the order apply handles them: each may depend only on the
// kinds before it.
const (
	KindOIDCProvider  Kind = "oidc-provider"
	KindManagedPolicy Kind = "managed-policy"
	KindRole          Kind = "role"
	KindUser          Kind = "user"
	KindDatabase      Kind = "database"
	KindDynamicSecret Kind = "dynamic-secret"
	KindRotator       Kind = "rotator"
	KindSecret        Kind = "secret"
)

// objectName is "role application-role (line 12)", for messages.
func objectName(k Kind, name string, line int) string {
	if line > 0 {
		return string(k) + " " + strconv.Quote(name) + " (line " + strconv.Itoa(line) + ")"
	}
	return string(k) + " " + strconv.Quote(name)
}

// sortedKeys returns the keys of t in order.
func (t Tags) sortedKeys() []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// equal reports whether t and u hold the same tags.
func (t Tags) equal(u Tags) bool {
	if len(t) != len(u) {
		return false
	}
	for k, v := range t {
		if w, ok := u[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// describeTagChange lists what changes from have to want:
// "tags (add team, change env, remove old)".
func describeTagChange(have, want Tags) string {
	var add, change, remove []string
	for _, k := range want.sortedKeys() {
		switch v, ok := have[k]; {
		case !ok:
			add = append(add, k)
		case v != want[k]:
			change = append(change, k)
		}
	}
	for _, k := range have.sortedKeys() {
		if _, ok := want[k]; !ok {
			remove = append(remove, k)
		}
	}
	var parts []string
	if len(add) > 0 {
		parts = append(parts, "add "+strings.Join(add, ", "))
	}
	if len(change) > 0 {
		parts = append(parts, "change "+strings.Join(change, ", "))
	}
	if len(remove) > 0 {
		parts = append(parts, "remove "+strings.Join(remove, ", "))
	}
	return "tags (" + strings.Join(parts, "; ") + ")"
}
