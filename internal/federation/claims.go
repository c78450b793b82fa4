package federation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Condition keys for Kubernetes service-account tokens, set when the token
// carries the "kubernetes.io" claim. They name what the token says, so a
// trust policy using them must also name the provider (the Federated
// principal): any provider can mint a token with this claim.
const (
	// KeyK8sNamespace is the pod's namespace ("kubernetes.io".namespace).
	KeyK8sNamespace = "sigil:k8s/namespace"
	// KeyK8sServiceAccount is the service account's name
	// ("kubernetes.io".serviceaccount.name).
	KeyK8sServiceAccount = "sigil:k8s/serviceaccount"
	// KeyK8sServiceAccountUID is the service account's UID
	// ("kubernetes.io".serviceaccount.uid), when present.
	KeyK8sServiceAccountUID = "sigil:k8s/serviceaccount-uid"
	// KeyK8sPod is the pod's name ("kubernetes.io".pod.name), for tokens
	// bound to a pod.
	KeyK8sPod = "sigil:k8s/pod"
	// KeyK8sPodUID is the pod's UID ("kubernetes.io".pod.uid), for tokens
	// bound to a pod.
	KeyK8sPodUID = "sigil:k8s/pod-uid"
)

// Session-tag condition keys, as STS sets them for AssumeRoleWithWebIdentity
// with tags (the trust policy must then allow sts:TagSession).
const (
	// KeyRequestTagPrefix prefixes one key per session tag:
	// "aws:RequestTag/<tag key>" with the tag's value.
	KeyRequestTagPrefix = "aws:RequestTag/"
	// KeyTagKeys lists the session tags' keys.
	KeyTagKeys = "aws:TagKeys"
)

// TagsClaim is the claim in which an identity provider passes session tags,
// as AWS documents it:
//
//	"https://aws.amazon.com/tags": {
//	  "principal_tags": {"Project": ["Automation"], "CostCenter": ["987654"]},
//	  "transitive_tag_keys": ["Project"]
//	}
const TagsClaim = "https://aws.amazon.com/tags"

// Limits on session tags, as STS enforces them.
const (
	// MaxSessionTags is the most tags one token may pass.
	MaxSessionTags = 50
	// MaxTagKeyLength is the longest tag key, in characters.
	MaxTagKeyLength = 128
	// MaxTagValueLength is the longest tag value, in characters.
	MaxTagValueLength = 256
)

// Identity is what a verified token proves: who (provider and subject),
// for which audience, until when, and the attributes trust policies
// condition on.
type Identity struct {
	// ProviderURL is the provider's URL, equal to Issuer.
	ProviderURL string
	// ProviderARN is the provider's ARN as given in [Provider.ARN]; empty if
	// it was not set.
	ProviderARN string
	// Issuer is the token's iss claim.
	Issuer string
	// Subject is the token's sub claim (for Kubernetes
	// "system:serviceaccount:<namespace>:<name>").
	Subject string
	// Audience is the first of the token's audiences that is one of the
	// provider's client IDs; STS returns it as Audience.
	Audience string
	// Audiences are all of the token's audiences that are client IDs of the
	// provider, in token order. Audiences that are not registered are
	// dropped: they never appear in a condition key.
	Audiences []string
	// ExpiresAt is the token's exp claim.
	ExpiresAt time.Time
	// IssuedAt is the token's iat claim; zero if absent.
	IssuedAt time.Time
	// NotBefore is the token's nbf claim; zero if absent.
	NotBefore time.Time
	// TokenID is the token's jti claim, for the audit log; empty if absent.
	TokenID string
	// KeyID and Algorithm are the kid and alg of the token's header: which
	// key verified it, for the audit log.
	KeyID     string
	Algorithm string
	// Kubernetes is set for Kubernetes service-account tokens (tokens with
	// a "kubernetes.io" claim), nil otherwise.
	Kubernetes *KubernetesIdentity
	// SessionTags are the tags from the [TagsClaim] claim, sorted by key;
	// nil if the token passes none.
	SessionTags []SessionTag
	// TransitiveTagKeys are the keys the token marks transitive, each one
	// of SessionTags' keys, sorted.
	TransitiveTagKeys []string
}

// KubernetesIdentity is the workload a Kubernetes service-account token
// names.
type KubernetesIdentity struct {
	// Namespace is the namespace of the service account and pod. Never
	// empty.
	Namespace string
	// ServiceAccount and ServiceAccountUID name the service account.
	// ServiceAccount is never empty; the UID may be.
	ServiceAccount    string
	ServiceAccountUID string
	// Pod and PodUID name the pod a bound token belongs to; empty for a
	// token not bound to a pod.
	Pod    string
	PodUID string
}

// SessionTag is one session tag passed in the token.
type SessionTag struct {
	Key   string
	Value string
}

// ConditionContext returns the condition keys the identity contributes to
// a trust policy evaluation, each mapped to its values:
//
//	<prefix>:sub                  Subject
//	<prefix>:aud                  Audiences (registered client IDs only)
//	sigil:k8s/namespace           Kubernetes.Namespace        } Kubernetes
//	sigil:k8s/serviceaccount      Kubernetes.ServiceAccount   } tokens only;
//	sigil:k8s/serviceaccount-uid  Kubernetes.ServiceAccountUID} empty values
//	sigil:k8s/pod                 Kubernetes.Pod              } are left
//	sigil:k8s/pod-uid             Kubernetes.PodUID           } out
//	aws:RequestTag/<key>          each session tag's value
//	aws:TagKeys                   the session tags' keys
//
// where <prefix> is [ConditionKeyPrefix] of the provider URL. The map is
// new on every call; the caller may add to it.
func (id *Identity) ConditionContext() map[string][]string {
	prefix := ConditionKeyPrefix(id.ProviderURL)
	ctx := make(map[string][]string, 8+len(id.SessionTags))
	ctx[prefix+":sub"] = []string{id.Subject}
	ctx[prefix+":aud"] = slices.Clone(id.Audiences)
	if k := id.Kubernetes; k != nil {
		set := func(key, value string) {
			if value != "" {
				ctx[key] = []string{value}
			}
		}
		set(KeyK8sNamespace, k.Namespace)
		set(KeyK8sServiceAccount, k.ServiceAccount)
		set(KeyK8sServiceAccountUID, k.ServiceAccountUID)
		set(KeyK8sPod, k.Pod)
		set(KeyK8sPodUID, k.PodUID)
	}
	if len(id.SessionTags) > 0 {
		keys := make([]string, 0, len(id.SessionTags))
		for _, t := range id.SessionTags {
			ctx[KeyRequestTagPrefix+t.Key] = []string{t.Value}
			keys = append(keys, t.Key)
		}
		ctx[KeyTagKeys] = keys
	}
	return ctx
}

// claims is the part of a token's payload sigil reads.
type claims struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"`
	Audience  audience       `json:"aud"`
	Expiry    *numericDate   `json:"exp"`
	NotBefore *numericDate   `json:"nbf"`
	IssuedAt  *numericDate   `json:"iat"`
	ID        string         `json:"jti"`
	K8s       *k8sClaim      `json:"kubernetes.io"`
	Tags      *tagsClaimBody `json:"https://aws.amazon.com/tags"`
}

// k8sClaim is the "kubernetes.io" claim of a service-account token.
type k8sClaim struct {
	Namespace      string     `json:"namespace"`
	ServiceAccount *k8sObject `json:"serviceaccount"`
	Pod            *k8sObject `json:"pod"`
}

// k8sObject is a named Kubernetes object in the claim.
type k8sObject struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// tagsClaimBody is the value of TagsClaim.
type tagsClaimBody struct {
	PrincipalTags     map[string][]string `json:"principal_tags"`
	TransitiveTagKeys []string            `json:"transitive_tag_keys"`
}

// audience is the aud claim: a string or an array of strings.
type audience []string

// UnmarshalJSON accepts a JSON string or an array of strings.
func (a *audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = list
	return nil
}

// numericDate is a JWT NumericDate: seconds since the epoch, possibly
// fractional.
type numericDate struct{ t time.Time }

// maxNumericDate is 9999-12-31T23:59:59Z; later dates are refused.
const maxNumericDate = 253402300799

// UnmarshalJSON accepts a non-negative JSON number no later than year
// 9999.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(b)), 64)
	if err != nil {
		return errors.New("a date claim is not a number")
	}
	if math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return fmt.Errorf("a date claim of %g is out of range", f)
	}
	sec, frac := math.Modf(f)
	d.t = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// time returns the date, or zero for a nil date.
func (d *numericDate) time() time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.t
}

// kubernetes checks and converts the "kubernetes.io" claim.
func (c *k8sClaim) kubernetes() (*KubernetesIdentity, error) {
	if c.Namespace == "" {
		return nil, errors.New("the kubernetes.io claim has no namespace")
	}
	if c.ServiceAccount == nil || c.ServiceAccount.Name == "" {
		return nil, errors.New("the kubernetes.io claim has no service account name")
	}
	k := &KubernetesIdentity{
		Namespace:         c.Namespace,
		ServiceAccount:    c.ServiceAccount.Name,
		ServiceAccountUID: c.ServiceAccount.UID,
	}
	if c.Pod != nil {
		if c.Pod.Name == "" {
			return nil, errors.New("the kubernetes.io claim has a pod without a name")
		}
		k.Pod, k.PodUID = c.Pod.Name, c.Pod.UID
	}
	return k, nil
}

// sessionTags checks the tags claim as STS does: at most MaxSessionTags
// tags, one value each, keys of 1 to 128 and values of at most 256
// characters from STS's character set, no key starting with "aws:", no two
// keys differing only in case (tag keys are case-insensitive), and every
// transitive key one of the tags' keys.
func (t *tagsClaimBody) sessionTags() ([]SessionTag, []string, error) {
	if len(t.PrincipalTags) > MaxSessionTags {
		return nil, nil, fmt.Errorf("%d session tags, at most %d allowed", len(t.PrincipalTags), MaxSessionTags)
	}
	tags := make([]SessionTag, 0, len(t.PrincipalTags))
	folded := make(map[string]string, len(t.PrincipalTags))
	for k, vs := range t.PrincipalTags {
		if n := utf8.RuneCountInString(k); n == 0 || n > MaxTagKeyLength || !tagChars(k) {
			return nil, nil, fmt.Errorf("session tag key %q is not 1 to %d allowed characters", k, MaxTagKeyLength)
		}
		if len(k) >= 4 && strings.EqualFold(k[:4], "aws:") {
			return nil, nil, fmt.Errorf("session tag key %q uses the reserved prefix aws:", k)
		}
		lower := strings.ToLower(k)
		if other, dup := folded[lower]; dup {
			return nil, nil, fmt.Errorf("session tag keys %q and %q differ only in case", other, k)
		}
		folded[lower] = k
		if len(vs) != 1 {
			return nil, nil, fmt.Errorf("session tag %q has %d values, exactly one allowed", k, len(vs))
		}
		v := vs[0]
		if utf8.RuneCountInString(v) > MaxTagValueLength || !tagChars(v) {
			return nil, nil, fmt.Errorf("session tag %q has a value that is not at most %d allowed characters", k, MaxTagValueLength)
		}
		tags = append(tags, SessionTag{Key: k, Value: v})
	}
	slices.SortFunc(tags, func(a, b SessionTag) int { return strings.Compare(a.Key, b.Key) })

	var transitive []string
	for _, k := range t.TransitiveTagKeys {
		if _, ok := t.PrincipalTags[k]; !ok {
			return nil, nil, fmt.Errorf("transitive tag key %q is not one of the session tags", k)
		}
		if !slices.Contains(transitive, k) {
			transitive = append(transitive, k)
		}
	}
	slices.Sort(transitive)
	if len(tags) == 0 {
		tags = nil
	}
	return tags, transitive, nil
}

// tagChars reports whether s holds only characters STS allows in tags:
// letters, spaces (Unicode Z), digits (Unicode N) and _.:/=+-@.
func tagChars(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case unicode.IsLetter(r), unicode.In(r, unicode.Z, unicode.N):
		case strings.ContainsRune("_.:/=+-@", r):
		default:
			return false
		}
	}
	return true
}
