package apply

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits, as IAM and Secrets Manager set them unless noted.
const (
	maxFileBytes      = 4 << 20 // the apply file itself (sigil's bound)
	maxValueBytes     = 65536   // a secret value
	maxTags           = 50
	maxTagKeyLen      = 128
	maxTagValueLen    = 256
	maxEntityNameLen  = 64
	maxPolicyNameLen  = 128
	maxPathLen        = 512
	maxIAMDescLen     = 1000
	maxSecretDescLen  = 2048
	maxSecretNameLen  = 512
	maxKmsKeyIDLen    = 2048
	maxClientIDs      = 100
	maxClientIDLen    = 255
	maxThumbprints    = 5
	maxOIDCURLLen     = 255
	minSessionSeconds = 3600
	maxSessionSeconds = 43200
)

// defaultMaxSession is a role's MaxSessionDuration when the file gives
// none, as in IAM.
const defaultMaxSession = 3600

var (
	entityNamePattern = regexp.MustCompile(`^[\w+=,.@-]+$`)
	pathPattern       = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)
	secretNamePattern = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`)
	thumbprintPattern = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)
	envNamePattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Problem is one thing wrong with a file.
type Problem struct {
	// Line is the line in the file (1-based); 0 when the problem has none.
	Line int
	// Message says what is wrong, never quoting a secret value.
	Message string
}

// String formats the problem as "line 7: message".
func (p Problem) String() string {
	if p.Line > 0 {
		return "line " + strconv.Itoa(p.Line) + ": " + p.Message
	}
	return p.Message
}

// FileError lists every problem Parse found, in line order. It wraps
// ErrInvalidFile.
type FileError struct {
	Problems []Problem
}

// Error lists the problems, one a line when there are several.
func (e *FileError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid apply file: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid apply file (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// Unwrap returns ErrInvalidFile.
func (e *FileError) Unwrap() error { return ErrInvalidFile }

// Parse reads and validates an apply file. Relative valueFile paths are
// resolved against baseDir (the file's directory); valueEnv names are
// looked up with lookupEnv (os.LookupEnv in the CLI; nil allows none).
// Every problem is reported at once, with its line, in a *FileError; a
// secret value is never quoted. Parse does no network I/O.
func Parse(r io.Reader, baseDir string, lookupEnv func(string) (string, bool)) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading apply file: %w", err)
	}
	if len(data) > maxFileBytes {
		return nil, &FileError{Problems: []Problem{{Message: fmt.Sprintf("the file is larger than %d MiB", maxFileBytes>>20)}}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var raw rawTop
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FileError{Problems: []Problem{{Message: "the file is empty; it needs at least \"version: 1\""}}}
		}
		return nil, &FileError{Problems: fixRotationProblems(fixTopProblems(yamlProblems(err)))}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &FileError{Problems: []Problem{{Line: extra.Line, Message: "the file holds more than one YAML document (\"---\"); put everything in one"}}}
	}
	p := &parser{baseDir: baseDir, lookupEnv: lookupEnv}
	f := p.file(&raw)
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
		return nil, &FileError{Problems: p.problems}
	}
	return f, nil
}

// parser validates a rawFile and collects problems.
type parser struct {
	baseDir   string
	lookupEnv func(string) (string, bool)
	problems  []Problem
}

func (p *parser) addf(line int, format string, args ...any) {
	p.problems = append(p.problems, Problem{Line: line, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) file(raw *rawTop) *File {
	switch {
	case !raw.Version.set:
		p.addf(1, "the file must start with \"version: 1\"")
	case raw.Version.v != 1:
		p.addf(raw.Version.line, "version %d is not supported; this sigil reads version 1", raw.Version.v)
	}
	f := &File{}
	seen := map[string]int{}
	for i := range raw.OIDCProviders {
		o := p.oidc(&raw.OIDCProviders[i])
		p.unique(seen, "oidc:"+strings.ToLower(strings.TrimSuffix(o.URL, "/")), "OIDC provider", o.URL, o.Line)
		f.OIDCProviders = append(f.OIDCProviders, o)
	}
	policies := map[string]string{} // name -> path, for references
	for i := range raw.ManagedPolicies {
		mp := p.policy(&raw.ManagedPolicies[i])
		p.unique(seen, "policy:"+strings.ToLower(mp.Name), "managed policy", mp.Name, mp.Line)
		policies[mp.Name] = mp.Path
		f.ManagedPolicies = append(f.ManagedPolicies, mp)
	}
	for i := range raw.Roles {
		r := p.role(&raw.Roles[i], policies)
		p.unique(seen, "role:"+strings.ToLower(r.Name), "role", r.Name, r.Line)
		f.Roles = append(f.Roles, r)
	}
	for i := range raw.Users {
		u := p.user(&raw.Users[i], policies)
		p.unique(seen, "user:"+strings.ToLower(u.Name), "user", u.Name, u.Line)
		f.Users = append(f.Users, u)
	}
	for i := range raw.Databases {
		d := p.database(&raw.Databases[i])
		p.unique(seen, "database:"+d.Name, "database", d.Name, d.Line)
		f.Databases = append(f.Databases, d)
	}
	// Dynamic secrets come before secrets, so that a value template may
	// name one with {{secretArn:NAME}}.
	earlier := map[string]bool{}
	dynamicAt := map[string]int{}
	for i := range raw.DynamicSecrets {
		s := p.dynamicSecret(&raw.DynamicSecrets[i])
		p.unique(seen, "secret:"+s.Name, "dynamic secret", s.Name, s.Line)
		if _, dup := dynamicAt[s.Name]; !dup && s.Name != "" {
			dynamicAt[s.Name] = s.Line
		}
		earlier[s.Name] = true
		f.DynamicSecrets = append(f.DynamicSecrets, s)
	}
	for i := range raw.Rotators {
		r := p.rotator(&raw.Rotators[i])
		p.unique(seen, "rotator:"+r.Name, "rotator", r.Name, r.Line)
		f.Rotators = append(f.Rotators, r)
	}
	for i := range raw.Secrets {
		s := p.secret(&raw.Secrets[i], earlier)
		if line, ok := dynamicAt[s.Name]; ok {
			p.addf(s.Line, "secret %q is also declared under dynamicSecrets (line %d); a secret is either static or dynamic", s.Name, line)
			continue
		}
		p.unique(seen, "secret:"+s.Name, "secret", s.Name, s.Line)
		earlier[s.Name] = true
		f.Secrets = append(f.Secrets, s)
	}
	return f
}

// unique reports an object declared twice. IAM names are unique without
// regard to case.
func (p *parser) unique(seen map[string]int, key, what, name string, line int) {
	if name == "" {
		return
	}
	if first, ok := seen[key]; ok {
		p.addf(line, "%s %q is declared twice (first at line %d)", what, name, first)
		return
	}
	seen[key] = line
}

// text checks an optional free-text field.
func (p *parser) text(s yStr, field string, maxLen int) string {
	if n := utf8.RuneCountInString(s.v); n > maxLen {
		p.addf(s.line, "%s is %d characters long; the limit is %d", field, n, maxLen)
	}
	if !utf8.ValidString(s.v) {
		p.addf(s.line, "%s is not valid UTF-8", field)
	}
	if err := checkPlaceholders(s.v); err != nil {
		p.addf(s.line, "%s: %v", field, err)
	}
	return s.v
}

// entityName checks a required IAM name.
func (p *parser) entityName(s yStr, what string, objLine, maxLen int) string {
	switch {
	case !s.set || s.v == "":
		p.addf(objLine, "%s needs a name", what)
	case len(s.v) > maxLen:
		p.addf(s.line, "name %q is longer than %d characters", s.v, maxLen)
	case !entityNamePattern.MatchString(s.v):
		p.addf(s.line, "name %q may hold only letters, digits and +=,.@_-", s.v)
	}
	return s.v
}

// path checks an optional IAM path; "/" when absent.
func (p *parser) path(s yStr) string {
	if !s.set || s.v == "" {
		return "/"
	}
	if len(s.v) > maxPathLen || !pathPattern.MatchString(s.v) || strings.Contains(s.v, "//") {
		p.addf(s.line, "path %q must be \"/\" or start and end with \"/\" (printable ASCII, no empty segments)", s.v)
	}
	return s.v
}

func (p *parser) tags(t yTags) Tags {
	if len(t.keys) == 0 {
		return nil
	}
	if len(t.keys) > maxTags {
		p.addf(t.line, "%d tags; the limit is %d", len(t.keys), maxTags)
	}
	out := make(Tags, len(t.keys))
	for i, k := range t.keys {
		v := t.vals[i]
		switch {
		case k.v == "":
			p.addf(k.line, "a tag key must not be empty")
		case utf8.RuneCountInString(k.v) > maxTagKeyLen:
			p.addf(k.line, "tag key %q is longer than %d characters", k.v, maxTagKeyLen)
		case strings.HasPrefix(strings.ToLower(k.v), "aws:"):
			p.addf(k.line, "tag key %q: the aws: prefix is reserved", k.v)
		}
		if _, dup := out[k.v]; dup {
			p.addf(k.line, "tag %q appears twice", k.v)
		}
		if utf8.RuneCountInString(v.v) > maxTagValueLen {
			p.addf(v.line, "the value of tag %q is longer than %d characters", k.v, maxTagValueLen)
		}
		for _, s := range []yStr{k, v} {
			if err := checkPlaceholders(s.v); err != nil {
				p.addf(s.line, "tag %q: %v", k.v, err)
			}
		}
		out[k.v] = v.v
	}
	return out
}

// doc checks a policy document; required ones must be present.
func (p *parser) doc(d yDoc, what string, objLine int, required bool) Document {
	if !d.set {
		if required {
			p.addf(objLine, "%s is required", what)
		}
		return ""
	}
	if err := checkPlaceholders(string(d.doc)); err != nil {
		p.addf(d.line, "%s: %v", what, err)
	}
	return d.doc
}

// policyRef resolves an attached policy or boundary: an ARN, or the name of
// a managed policy in the file (kept as the name; Plan makes the ARN).
func (p *parser) policyRef(s yStr, policies map[string]string, what string) string {
	if strings.HasPrefix(s.v, "arn:") {
		if err := checkPlaceholders(s.v); err != nil {
			p.addf(s.line, "%s: %v", what, err)
		}
		return s.v
	}
	if _, ok := policies[s.v]; !ok {
		p.addf(s.line, "%s %q is neither an ARN nor the name of a managed policy in this file", what, s.v)
	}
	return s.v
}

func (p *parser) oidc(r *rawOIDC) OIDCProvider {
	o := OIDCProvider{URL: r.URL.v, Line: r.line, Tags: p.tags(r.Tags)}
	switch {
	case !r.URL.set || r.URL.v == "":
		p.addf(r.line, "an OIDC provider needs a url")
	case len(r.URL.v) > maxOIDCURLLen:
		p.addf(r.URL.line, "url is longer than %d characters", maxOIDCURLLen)
	case !strings.HasPrefix(r.URL.v, "https://") || len(r.URL.v) == len("https://") ||
		strings.ContainsAny(r.URL.v, "?#@ ") || strings.HasPrefix(r.URL.v, "https:///"):
		p.addf(r.URL.line, "url %q must be https://host[/path] without query, fragment or user", r.URL.v)
	}
	if err := checkPlaceholders(r.URL.v); err != nil {
		p.addf(r.URL.line, "url: %v", err)
	}
	if len(r.ClientIDs.items) > maxClientIDs {
		p.addf(r.ClientIDs.line, "%d client ids; the limit is %d", len(r.ClientIDs.items), maxClientIDs)
	}
	for _, c := range r.ClientIDs.items {
		if c.v == "" || len(c.v) > maxClientIDLen {
			p.addf(c.line, "a client id must be 1 to %d characters", maxClientIDLen)
		}
		if slices.Contains(o.ClientIDs, c.v) {
			p.addf(c.line, "client id %q appears twice", c.v)
			continue
		}
		o.ClientIDs = append(o.ClientIDs, p.text(c, "client id", maxClientIDLen))
	}
	if len(r.Thumbprints.items) > maxThumbprints {
		p.addf(r.Thumbprints.line, "%d thumbprints; the limit is %d", len(r.Thumbprints.items), maxThumbprints)
	}
	for _, t := range r.Thumbprints.items {
		if !thumbprintPattern.MatchString(t.v) {
			p.addf(t.line, "thumbprint %q must be 40 hex digits (a SHA-1 fingerprint)", t.v)
		}
		if containsFold(o.Thumbprints, t.v) {
			p.addf(t.line, "thumbprint %q appears twice", t.v)
			continue
		}
		o.Thumbprints = append(o.Thumbprints, strings.ToLower(t.v))
	}
	return o
}

func (p *parser) policy(r *rawPolicy) ManagedPolicy {
	return ManagedPolicy{
		Name:        p.entityName(r.Name, "a managed policy", r.line, maxPolicyNameLen),
		Path:        p.path(r.Path),
		Description: p.text(r.Description, "description", maxIAMDescLen),
		Document:    p.doc(r.Document, "document", r.line, true),
		Tags:        p.tags(r.Tags),
		Line:        r.line,
	}
}

func (p *parser) inline(rs []rawInline) []InlinePolicy {
	var out []InlinePolicy
	seen := map[string]int{}
	for i := range rs {
		r := &rs[i]
		ip := InlinePolicy{
			Name:     p.entityName(r.Name, "an inline policy", r.line, maxPolicyNameLen),
			Document: p.doc(r.Document, "document", r.line, true),
		}
		p.unique(seen, strings.ToLower(ip.Name), "inline policy", ip.Name, r.line)
		out = append(out, ip)
	}
	return out
}

func (p *parser) attached(l yStrList, policies map[string]string) []string {
	var out []string
	for _, s := range l.items {
		ref := p.policyRef(s, policies, "attached policy")
		if slices.Contains(out, ref) {
			p.addf(s.line, "attached policy %q appears twice", ref)
			continue
		}
		out = append(out, ref)
	}
	return out
}

func (p *parser) boundary(s yStr, policies map[string]string) string {
	if !s.set || s.v == "" {
		return ""
	}
	return p.policyRef(s, policies, "permissionsBoundary")
}

func (p *parser) role(r *rawRole, policies map[string]string) Role {
	role := Role{
		Name:                p.entityName(r.Name, "a role", r.line, maxEntityNameLen),
		Path:                p.path(r.Path),
		Description:         p.text(r.Description, "description", maxIAMDescLen),
		MaxSessionDuration:  defaultMaxSession,
		PermissionsBoundary: p.boundary(r.PermissionsBoundary, policies),
		TrustPolicy:         p.doc(r.TrustPolicy, "trustPolicy", r.line, true),
		InlinePolicies:      p.inline(r.InlinePolicies),
		AttachedPolicies:    p.attached(r.AttachedPolicies, policies),
		Tags:                p.tags(r.Tags),
		Line:                r.line,
	}
	if r.MaxSessionDuration.set {
		if v := r.MaxSessionDuration.v; v < minSessionSeconds || v > maxSessionSeconds {
			p.addf(r.MaxSessionDuration.line, "maxSessionDuration %d must be between %d and %d seconds", v, minSessionSeconds, maxSessionSeconds)
		} else {
			role.MaxSessionDuration = int32(v)
		}
	}
	return role
}

func (p *parser) user(r *rawUser, policies map[string]string) User {
	return User{
		Name:                p.entityName(r.Name, "a user", r.line, maxEntityNameLen),
		Path:                p.path(r.Path),
		PermissionsBoundary: p.boundary(r.PermissionsBoundary, policies),
		InlinePolicies:      p.inline(r.InlinePolicies),
		AttachedPolicies:    p.attached(r.AttachedPolicies, policies),
		Tags:                p.tags(r.Tags),
		Line:                r.line,
	}
}

func (p *parser) secret(r *rawSecret, earlier map[string]bool) Secret {
	s := Secret{
		Name:          r.Name.v,
		Description:   p.text(r.Description, "description", maxSecretDescLen),
		KmsKeyID:      p.text(r.KmsKeyID, "kmsKeyId", maxKmsKeyIDLen),
		Tags:          p.tags(r.Tags),
		ValueTemplate: r.ValueTemplate.v,
		Rotation:      p.rotation(&r.Rotation),
		Line:          r.line,
	}
	switch {
	case !r.Name.set || r.Name.v == "":
		p.addf(r.line, "a secret needs a name")
	case len(r.Name.v) > maxSecretNameLen:
		p.addf(r.Name.line, "name %q is longer than %d characters", r.Name.v, maxSecretNameLen)
	case !secretNamePattern.MatchString(r.Name.v):
		p.addf(r.Name.line, "name %q may hold only letters, digits and /_+=.@-", r.Name.v)
	}
	if r.ResourcePolicy.set {
		d := p.doc(r.ResourcePolicy, "resourcePolicy", r.line, false)
		s.ResourcePolicy = &d
	}
	p.value(r, &s, earlier)
	return s
}

// value reads a secret's initial value from its file or environment
// variable. Messages name the source, never the value.
func (p *parser) value(r *rawSecret, s *Secret, earlier map[string]bool) {
	var (
		b    []byte
		line int
	)
	switch {
	case r.ValueFile.set && r.ValueEnv.set:
		p.addf(r.ValueEnv.line, "give either valueFile or valueEnv, not both")
		return
	case r.ValueFile.set:
		line = r.ValueFile.line
		if r.ValueFile.v == "" {
			p.addf(line, "valueFile is empty; name a file")
			return
		}
		path := r.ValueFile.v
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.baseDir, path)
		}
		s.ValueSource = fmt.Sprintf("file %q", r.ValueFile.v)
		info, err := os.Stat(path)
		if err != nil {
			p.addf(line, "valueFile: %v", err)
			return
		}
		if !info.Mode().IsRegular() || info.Size() > maxValueBytes {
			p.addf(line, "valueFile %q must be a regular file of at most %d bytes", r.ValueFile.v, maxValueBytes)
			return
		}
		if b, err = os.ReadFile(path); err != nil {
			p.addf(line, "valueFile: %v", err)
			return
		}
	case r.ValueEnv.set:
		line = r.ValueEnv.line
		name := r.ValueEnv.v
		if !envNamePattern.MatchString(name) {
			p.addf(line, "valueEnv %q is not an environment variable name", name)
			return
		}
		s.ValueSource = "environment variable " + name
		var v string
		ok := false
		if p.lookupEnv != nil {
			v, ok = p.lookupEnv(name)
		}
		if !ok {
			p.addf(line, "valueEnv: environment variable %s is not set", name)
			return
		}
		b = []byte(v)
	default:
		if r.ValueTemplate.v {
			p.addf(r.ValueTemplate.line, "valueTemplate needs a valueFile or valueEnv")
		}
		return
	}
	switch {
	case len(b) == 0:
		p.addf(line, "the value from %s is empty", s.ValueSource)
		return
	case len(b) > maxValueBytes:
		p.addf(line, "the value from %s is larger than %d bytes", s.ValueSource, maxValueBytes)
		return
	}
	binary := !utf8.Valid(b)
	if s.ValueTemplate {
		if binary {
			p.addf(line, "the value from %s is not UTF-8 text, so it cannot be a template", s.ValueSource)
			return
		}
		refs, err := valueRefs(string(b))
		if err != nil {
			p.addf(line, "the value from %s: %v", s.ValueSource, err)
			return
		}
		for i, ref := range refs {
			if !earlier[ref] {
				// The name comes from the value, so it is not quoted.
				p.addf(line, "the value from %s: {{secretArn:...}} placeholder %d names no secret declared before this one", s.ValueSource, i+1)
			}
		}
	}
	s.Value = newValue(b, binary)
	clear(b)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
