package sts

import (
	"compress/flate"
	"context"
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
)

// Session limits, as STS enforces them.
const (
	// minSessionSeconds and maxSessionSeconds bound DurationSeconds.
	minSessionSeconds = 900
	maxSessionSeconds = 43200
	// defaultSessionSeconds is the session length when the request gives
	// none.
	defaultSessionSeconds = 3600
	// chainedSessionSeconds is the longest session a role session may
	// assume another role for (role chaining).
	chainedSessionSeconds = 3600
	// maxPolicyARNs is how many managed session policies one request may
	// pass.
	maxPolicyARNs = 10
	// maxSessionTags is how many session tags a session may carry.
	maxSessionTags = 50
	// packedLimit is the limit, in bytes, of the compressed session
	// policies and tags (what PackedPolicySize is a percentage of), and
	// rawPackedLimit the limit of their uncompressed size, which bounds the
	// size of the session token.
	packedLimit    = 2048
	rawPackedLimit = 8192
)

var (
	roleNamePattern       = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	sessionNamePattern    = regexp.MustCompile(`^[\w+=,.@-]*$`)
	externalIDPattern     = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
	sourceIdentityPattern = regexp.MustCompile(`^[\w+=,.@-]*$`)
)

// policyARNParam is one PolicyArns member (PolicyDescriptorType).
type policyARNParam struct {
	ARN string `query:"arn"`
}

// tagParam is one Tags member.
type tagParam struct {
	Key   string `query:"Key"`
	Value string `query:"Value"`
}

// sessionParams are the members AssumeRole and AssumeRoleWithWebIdentity
// share.
type sessionParams struct {
	RoleArn         string           `query:"RoleArn,required"`
	RoleSessionName string           `query:"RoleSessionName,required"`
	DurationSeconds *int32           `query:"DurationSeconds"`
	Policy          *string          `query:"Policy"`
	PolicyArns      []policyARNParam `query:"PolicyArns"`
}

// check validates the shared members' shapes (not yet against the role).
func (p *sessionParams) check() error {
	if err := checkLength("roleArn", p.RoleArn, 20, 2048); err != nil {
		return err
	}
	if err := checkPattern("roleSessionName", p.RoleSessionName, 2, 64, sessionNamePattern, `[\w+=,.@-]*`); err != nil {
		return err
	}
	if d := p.DurationSeconds; d != nil && (*d < minSessionSeconds || *d > maxSessionSeconds) {
		v := strconv.Itoa(int(*d))
		if *d < minSessionSeconds {
			return awsproto.ConstraintError("durationSeconds", &v, "Member must have value greater than or equal to 900")
		}
		return awsproto.ConstraintError("durationSeconds", &v, "Member must have value less than or equal to 43200")
	}
	if p.Policy != nil {
		if err := checkLength("policy", *p.Policy, 1, iam.MaxSessionPolicySize); err != nil {
			return err
		}
	}
	if len(p.PolicyArns) > maxPolicyARNs {
		return awsproto.ConstraintError("policyArns", nil, "Member must have length less than or equal to 10")
	}
	for i, a := range p.PolicyArns {
		if err := checkLength("policyArns."+strconv.Itoa(i+1)+".member.arn", a.ARN, 20, 2048); err != nil {
			return err
		}
	}
	return nil
}

func checkLength(member, v string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(v)
	switch {
	case n < minLen:
		return awsproto.ConstraintError(member, &v, "Member must have length greater than or equal to "+strconv.Itoa(minLen))
	case n > maxLen:
		return awsproto.ConstraintError(member, &v, "Member must have length less than or equal to "+strconv.Itoa(maxLen))
	}
	return nil
}

func checkPattern(member, v string, minLen, maxLen int, re *regexp.Regexp, spelled string) error {
	if err := checkLength(member, v, minLen, maxLen); err != nil {
		return err
	}
	if !re.MatchString(v) {
		return awsproto.ConstraintError(member, &v, "Member must satisfy regular expression pattern: "+spelled)
	}
	return nil
}

// duration returns the session length the request asks for, checked
// against the role's MaxSessionDuration (and the role-chaining limit).
func (p *sessionParams) duration(role *iam.Role, chained bool) (time.Duration, error) {
	secs := int32(defaultSessionSeconds)
	if p.DurationSeconds != nil {
		secs = *p.DurationSeconds
	}
	limit := role.MaxSessionDuration
	if limit == 0 {
		limit = iam.DefaultMaxSessionDuration
	}
	switch {
	case chained && secs > chainedSessionSeconds:
		return 0, errValidation("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	case secs > limit:
		return 0, errValidation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	return time.Duration(secs) * time.Second, nil
}

// sessionPolicy parses the inline session policy, if any.
func (p *sessionParams) sessionPolicy() (string, error) {
	if p.Policy == nil {
		return "", nil
	}
	if _, err := iam.ParsePolicyLimit(*p.Policy, iam.IdentityPolicy, iam.MaxSessionPolicySize); err != nil {
		var pe *iam.PolicyError
		if errors.As(err, &pe) {
			return "", errMalformedPolicy("%s", pe.Error())
		}
		return "", errMalformedPolicy("The policy is not valid.")
	}
	return *p.Policy, nil
}

// managedPolicies resolves the managed session policies: each must name a
// customer managed policy of the account.
func (s *Service) managedPolicies(ctx context.Context, p *sessionParams) ([]string, error) {
	if len(p.PolicyArns) == 0 {
		return nil, nil
	}
	arns := make([]string, 0, len(p.PolicyArns))
	for _, a := range p.PolicyArns {
		arns = append(arns, a.ARN)
	}
	nps, err := s.ents.SessionPolicies(ctx, arns)
	if err != nil {
		return nil, err
	}
	for _, np := range nps {
		if np.Policy == nil {
			return nil, errInvalidParameter("The policy %s does not exist or is not attachable.", truncate(np.Name))
		}
	}
	return arns, nil
}

// checkTags validates request session tags and returns them sorted by key,
// with the transitive keys (which must be among them) sorted.
func checkTags(in []tagParam, transitive []string) ([]tag, []string, error) {
	if len(in) > maxSessionTags {
		return nil, nil, awsproto.ConstraintError("tags", nil, "Member must have length less than or equal to 50")
	}
	out := make([]tag, 0, len(in))
	for i, t := range in {
		member := "tags." + strconv.Itoa(i+1) + ".member"
		if err := checkLength(member+".key", t.Key, 1, 128); err != nil {
			return nil, nil, err
		}
		if err := checkLength(member+".value", t.Value, 0, 256); err != nil {
			return nil, nil, err
		}
		if !tagChars(t.Key) || !tagChars(t.Value) {
			return nil, nil, awsproto.ConstraintError(member, &t.Key, `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return nil, nil, errInvalidParameter("Tag keys cannot start with the reserved prefix aws:.")
		}
		if hasTagFold(out, t.Key) {
			return nil, nil, errInvalidParameter("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		out = append(out, tag{key: t.Key, value: t.Value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	var keys []string
	for _, k := range transitive {
		if !hasTagFold(out, k) {
			return nil, nil, errInvalidParameter("The transitive tag key %s is not one of the session tags.", truncate(k))
		}
		if !containsFold(keys, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(out) == 0 {
		out = nil
	}
	return out, keys, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// tagChars reports whether s holds only characters STS allows in tags.
func tagChars(s string) bool {
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

// packer measures the packed size of session policies and tags: the
// DEFLATE-compressed size, as AWS packs them, and the raw size. Writers are
// pooled: a flate.Writer is large to create.
type packer struct {
	pool sync.Pool
}

type packState struct {
	w *flate.Writer
	n countWriter
}

type countWriter struct{ n int }

func (c *countWriter) Write(b []byte) (int, error) { c.n += len(b); return len(b), nil }

// percent returns the packed size as a percentage of the limit (the
// larger of the compressed and the raw measure), 0 when there is nothing
// to pack.
func (p *packer) percent(policy string, arns []string, tags []tag, transitive []string) int {
	raw := len(policy)
	for _, a := range arns {
		raw += len(a) + 1
	}
	for _, t := range tags {
		raw += len(t.key) + len(t.value) + 2
	}
	for _, k := range transitive {
		raw += len(k) + 1
	}
	if raw == 0 {
		return 0
	}
	st, _ := p.pool.Get().(*packState)
	if st == nil {
		st = &packState{}
		st.w, _ = flate.NewWriter(&st.n, flate.BestCompression)
	}
	st.n.n = 0
	st.w.Reset(&st.n)
	write := func(s string) { _, _ = st.w.Write([]byte(s)); _, _ = st.w.Write([]byte{0}) }
	write(policy)
	for _, a := range arns {
		write(a)
	}
	for _, t := range tags {
		write(t.key)
		write(t.value)
	}
	for _, k := range transitive {
		write(k)
	}
	_ = st.w.Close()
	packed := st.n.n
	p.pool.Put(st)
	pct := max(ceilDiv(100*packed, packedLimit), ceilDiv(100*raw, rawPackedLimit))
	return max(pct, 1)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// checkPacked refuses sessions whose policies and tags are too large.
func (s *Service) checkPacked(policy string, arns []string, tags []tag, transitive []string) (*int32, error) {
	pct := s.pack.percent(policy, arns, tags, transitive)
	if pct == 0 {
		return nil, nil
	}
	if pct > 100 {
		return nil, errPackedPolicyTooLarge("Packed size of consumed policies and session tags exceeds the limit: %d%% of the allowed size.", pct)
	}
	v := int32(pct)
	return &v, nil
}
