package apply

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The raw shapes of the file as YAML decodes it. Scalars are wrapped to
// remember their line, and every object checks its own keys, so that an
// unknown or misspelt key is an error with its line number (yaml.v3's
// KnownFields applies only to the top level once a type decodes itself).
// Parse turns these into the File types after validating them.

type rawFile struct {
	Version         yInt        `yaml:"version"`
	OIDCProviders   []rawOIDC   `yaml:"oidcProviders"`
	ManagedPolicies []rawPolicy `yaml:"managedPolicies"`
	Roles           []rawRole   `yaml:"roles"`
	Users           []rawUser   `yaml:"users"`
	Secrets         []rawSecret `yaml:"secrets"`
}

type rawOIDC struct {
	URL         yStr     `yaml:"url"`
	ClientIDs   yStrList `yaml:"clientIds"`
	Thumbprints yStrList `yaml:"thumbprints"`
	Tags        yTags    `yaml:"tags"`
	line        int
}

type rawPolicy struct {
	Name        yStr  `yaml:"name"`
	Path        yStr  `yaml:"path"`
	Description yStr  `yaml:"description"`
	Document    yDoc  `yaml:"document"`
	Tags        yTags `yaml:"tags"`
	line        int
}

type rawInline struct {
	Name     yStr `yaml:"name"`
	Document yDoc `yaml:"document"`
	line     int
}

type rawRole struct {
	Name                yStr        `yaml:"name"`
	Path                yStr        `yaml:"path"`
	Description         yStr        `yaml:"description"`
	MaxSessionDuration  yInt        `yaml:"maxSessionDuration"`
	PermissionsBoundary yStr        `yaml:"permissionsBoundary"`
	TrustPolicy         yDoc        `yaml:"trustPolicy"`
	InlinePolicies      []rawInline `yaml:"inlinePolicies"`
	AttachedPolicies    yStrList    `yaml:"attachedPolicies"`
	Tags                yTags       `yaml:"tags"`
	line                int
}

type rawUser struct {
	Name                yStr        `yaml:"name"`
	Path                yStr        `yaml:"path"`
	PermissionsBoundary yStr        `yaml:"permissionsBoundary"`
	InlinePolicies      []rawInline `yaml:"inlinePolicies"`
	AttachedPolicies    yStrList    `yaml:"attachedPolicies"`
	Tags                yTags       `yaml:"tags"`
	line                int
}

type rawSecret struct {
	Name           yStr        `yaml:"name"`
	Description    yStr        `yaml:"description"`
	KmsKeyID       yStr        `yaml:"kmsKeyId"`
	Tags           yTags       `yaml:"tags"`
	ResourcePolicy yDoc        `yaml:"resourcePolicy"`
	ValueFile      yStr        `yaml:"valueFile"`
	ValueEnv       yStr        `yaml:"valueEnv"`
	ValueTemplate  yBool       `yaml:"valueTemplate"`
	Rotation       rawRotation `yaml:"rotation"`
	line           int
}

func (r *rawOIDC) UnmarshalYAML(n *yaml.Node) error {
	type plain rawOIDC
	return decodeObject(n, (*plain)(r), &r.line, "an OIDC provider")
}

func (r *rawPolicy) UnmarshalYAML(n *yaml.Node) error {
	type plain rawPolicy
	return decodeObject(n, (*plain)(r), &r.line, "a managed policy")
}

func (r *rawInline) UnmarshalYAML(n *yaml.Node) error {
	type plain rawInline
	return decodeObject(n, (*plain)(r), &r.line, "an inline policy")
}

func (r *rawRole) UnmarshalYAML(n *yaml.Node) error {
	type plain rawRole
	return decodeObject(n, (*plain)(r), &r.line, "a role")
}

func (r *rawUser) UnmarshalYAML(n *yaml.Node) error {
	type plain rawUser
	return decodeObject(n, (*plain)(r), &r.line, "a user")
}

func (r *rawSecret) UnmarshalYAML(n *yaml.Node) error {
	type plain rawSecret
	return decodeObject(n, (*plain)(r), &r.line, "a secret")
}

// typeError is one problem in yaml.v3's collecting form: decoding goes on
// and every problem is reported.
func typeError(line int, format string, args ...any) *yaml.TypeError {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, args...)}}
}

// kindName names a node's kind for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return "a single value"
	}
	return "something else"
}

// decodeObject decodes mapping n into out (a pointer to a struct with yaml
// tags) after checking that every key is one of its fields. line receives
// the line of the mapping.
func decodeObject(n *yaml.Node, out any, line *int, what string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	*line = n.Line
	if n.Kind != yaml.MappingNode {
		return typeError(n.Line, "%s must be a map of keys, not %s", what, kindName(n))
	}
	known := yamlKeys(reflect.TypeOf(out).Elem())
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode || !slices.Contains(known, k.Value) {
			errs = append(errs, fmt.Sprintf("line %d: unknown key %q in %s (known keys: %s)", k.Line, k.Value, what, strings.Join(known, ", ")))
		}
	}
	if err := n.Decode(out); err != nil {
		te, ok := err.(*yaml.TypeError)
		if !ok {
			return err
		}
		errs = append(errs, te.Errors...)
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

// yamlKeys lists the yaml keys of struct type t.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// scalarNode returns n (an alias resolved) if it is a scalar.
func scalarNode(n *yaml.Node, want string) (*yaml.Node, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return nil, typeError(n.Line, "want %s, not %s", want, kindName(n))
	}
	return n, nil
}

// yStr is a string and the line it was written on. An empty YAML value
// (key: with nothing after it) is the empty string.
type yStr struct {
	v    string
	line int
	set  bool
}

func (s *yStr) UnmarshalYAML(n *yaml.Node) error {
	n, err := scalarNode(n, "a string")
	if err != nil {
		return err
	}
	s.line, s.set = n.Line, true
	if n.Tag != "!!null" {
		s.v = n.Value
	}
	return nil
}

// yInt is an integer and its line.
type yInt struct {
	v    int64
	line int
	set  bool
}

func (s *yInt) UnmarshalYAML(n *yaml.Node) error {
	n, err := scalarNode(n, "a whole number")
	if err != nil {
		return err
	}
	v, perr := strconv.ParseInt(n.Value, 10, 64)
	if n.Tag != "!!int" || perr != nil {
		return typeError(n.Line, "want a whole number, not %q", n.Value)
	}
	s.v, s.line, s.set = v, n.Line, true
	return nil
}

// yBool is a boolean.
type yBool struct {
	v    bool
	line int
}

func (s *yBool) UnmarshalYAML(n *yaml.Node) error {
	n, err := scalarNode(n, "true or false")
	if err != nil {
		return err
	}
	if n.Tag != "!!bool" {
		return typeError(n.Line, "want true or false, not %q", n.Value)
	}
	v, _ := strconv.ParseBool(strings.ToLower(n.Value))
	s.v, s.line = v, n.Line
	return nil
}

// yStrList is a list of strings.
type yStrList struct {
	items []yStr
	line  int
}

func (l *yStrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	l.line = n.Line
	if n.Kind != yaml.SequenceNode {
		return typeError(n.Line, "want a list of strings, not %s", kindName(n))
	}
	var errs []string
	for _, c := range n.Content {
		var s yStr
		if err := s.UnmarshalYAML(c); err != nil {
			errs = append(errs, err.(*yaml.TypeError).Errors...)
			continue
		}
		l.items = append(l.items, s)
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

// yTags is a map of tag keys to values, in file order.
type yTags struct {
	keys, vals []yStr
	line       int
	set        bool
}

func (t *yTags) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	t.line, t.set = n.Line, true
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return typeError(n.Line, "tags must be a map of keys to values, not %s", kindName(n))
	}
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		var k, v yStr
		if err := k.UnmarshalYAML(n.Content[i]); err != nil {
			errs = append(errs, fmt.Sprintf("line %d: a tag key must be a single value, not %s", n.Content[i].Line, kindName(n.Content[i])))
		}
		if err := v.UnmarshalYAML(n.Content[i+1]); err != nil {
			errs = append(errs, fmt.Sprintf("line %d: the value of tag %q must be a single value, not %s", n.Content[i+1].Line, k.v, kindName(n.Content[i+1])))
		}
		t.keys, t.vals = append(t.keys, k), append(t.vals, v)
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

// yDoc is a policy document, already converted to JSON.
type yDoc struct {
	doc  Document
	line int
	set  bool
}

func (d *yDoc) UnmarshalYAML(n *yaml.Node) error {
	d.line, d.set = n.Line, true
	doc, line, err := documentFromNode(n)
	if err != nil {
		return typeError(line, "%v", err)
	}
	d.doc = doc
	return nil
}

// problemLine splits yaml.v3's "line N: message" (or "yaml: line N: ...").
var problemLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// friendlyTypes renames the Go types yaml.v3 names in its messages.
var friendlyTypes = strings.NewReplacer(
	"[]apply.rawOIDC", "a list of OIDC providers",
	"[]apply.rawPolicy", "a list of managed policies",
	"[]apply.rawInline", "a list of inline policies",
	"[]apply.rawRole", "a list of roles",
	"[]apply.rawUser", "a list of users",
	"[]apply.rawSecret", "a list of secrets",
	"apply.rawFile", "the top level",
)

// unknownTopKey is yaml.v3's KnownFields message for the top level.
var unknownTopKey = regexp.MustCompile(`^field (.*) not found in type apply\.rawFile$`)

// yamlProblems turns a yaml.v3 error into problems with line numbers.
func yamlProblems(err error) []Problem {
	var msgs []string
	if te, ok := err.(*yaml.TypeError); ok {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	ps := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		p := Problem{Message: m}
		if sm := problemLine.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Message = sm[2]
		}
		if sm := unknownTopKey.FindStringSubmatch(p.Message); sm != nil {
			p.Message = fmt.Sprintf("unknown key %q at the top level (known keys: %s)", sm[1],
				strings.Join(yamlKeys(reflect.TypeOf(rawFile{})), ", "))
		}
		p.Message = strings.TrimPrefix(friendlyTypes.Replace(p.Message), "yaml: ")
		ps = append(ps, p)
	}
	return ps
}
