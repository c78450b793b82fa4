package iam

import (
	"fmt"
	"strings"

	"sigil.dev/sigil/internal/authn"
)

// This file holds condition-key lookup and policy variables.
//
// Condition keys are case-insensitive: a policy testing aws:sourceip reads
// the request's aws:SourceIp. Lookup first tries the key as the policy spells
// it, then its lower-cased form, then a case-insensitive scan of the request
// context, so the common case costs one map probe and nothing allocates.
// Keys describing the principal (aws:PrincipalArn, aws:PrincipalAccount,
// aws:PrincipalType, aws:PrincipalTag/*, aws:userid, aws:username) are
// derived from Request.Principal when the context does not carry them.
//
// Policy variables (Version 2012-10-17 only) are ${key} placeholders in
// Resource/NotResource and in the values of the String and ARN condition
// operators. ${key, 'default'} supplies a value when the key is missing or
// multivalued ('' inside the default is one quote); ${*}, ${?} and ${$} are a
// literal '*', '?' and '$'. Substituted text is always literal: a '*' in a
// user name never acts as a wildcard. A variable without a value and without
// a default makes the policy value it appears in match nothing. Under
// Version 2008-10-17, or with no Version, ${...} is ordinary text.

// derivedKey names a condition key that can be derived from the principal.
type derivedKey uint8

const (
	derivedNone derivedKey = iota
	derivedPrincipalArn
	derivedPrincipalAccount
	derivedPrincipalType
	derivedPrincipalTag
	derivedUserID
	derivedUsername
)

// condKey is a compiled condition-key (or variable) name.
type condKey struct {
	raw     string // as the policy spells it
	lower   string // ASCII lower-cased
	derived derivedKey
	tag     string // the tag key of aws:PrincipalTag/<tag>, as spelled
}

// newCondKey compiles a key name.
func newCondKey(name string) condKey {
	k := condKey{raw: name, lower: asciiLower(name)}
	switch k.lower {
	case "aws:principalarn":
		k.derived = derivedPrincipalArn
	case "aws:principalaccount":
		k.derived = derivedPrincipalAccount
	case "aws:principaltype":
		k.derived = derivedPrincipalType
	case "aws:userid":
		k.derived = derivedUserID
	case "aws:username":
		k.derived = derivedUsername
	default:
		if strings.HasPrefix(k.lower, "aws:principaltag/") {
			k.derived = derivedPrincipalTag
			k.tag = name[len("aws:principaltag/"):]
		}
	}
	return k
}

// values is the set of values a key has in a request, without allocating a
// slice for the single values derived from the principal.
type values struct {
	list   []string
	one    string
	single bool
}

// n returns the number of values.
func (v values) n() int {
	if v.single {
		return 1
	}
	return len(v.list)
}

// at returns value i.
func (v values) at(i int) string {
	if v.single {
		return v.one
	}
	return v.list[i]
}

// lookup returns the values of key in req and whether the key is present.
// A key present with no values is reported as present with n() == 0.
func lookup(req *Request, k *condKey) (values, bool) {
	if ctx := req.Context; ctx != nil {
		if v, ok := ctx[k.raw]; ok {
			return values{list: v}, true
		}
		if k.lower != k.raw {
			if v, ok := ctx[k.lower]; ok {
				return values{list: v}, true
			}
		}
		// A context that spells one key in several cases is ambiguous;
		// the smallest spelling wins so that the answer is at least stable.
		best, found := "", false
		var list []string
		for name, v := range ctx {
			if len(name) == len(k.raw) && strings.EqualFold(name, k.raw) && (!found || name < best) {
				best, list, found = name, v, true
			}
		}
		if found {
			return values{list: list}, true
		}
	}
	if k.derived == derivedNone || req.Principal == nil {
		return values{}, false
	}
	s, ok := derive(req.Principal, k)
	if !ok {
		return values{}, false
	}
	return values{one: s, single: true}, true
}

// derive computes a principal-derived key.
func derive(p *authn.Principal, k *condKey) (string, bool) {
	switch k.derived {
	case derivedPrincipalArn:
		return principalArn(p), p.ARN != ""
	case derivedPrincipalAccount:
		return p.AccountID, p.AccountID != ""
	case derivedPrincipalType:
		t := principalType(p.Kind)
		return t, t != ""
	case derivedUserID:
		return p.ID, p.ID != ""
	case derivedUsername:
		// aws:username exists only for IAM users.
		return p.Name, p.Kind == authn.KindIAMUser && p.Name != ""
	case derivedPrincipalTag:
		if v, ok := p.Tags[k.tag]; ok {
			return v, true
		}
		best, val, found := "", "", false
		for name, v := range p.Tags {
			if strings.EqualFold(name, k.tag) && (!found || name < best) {
				best, val, found = name, v, true
			}
		}
		return val, found
	}
	return "", false
}

// principalArn is aws:PrincipalArn: the caller's ARN, except that a role
// session reports the role's ARN (arn:aws:iam::ACCOUNT:role/NAME), as AWS
// does. The session ARN carries no role path, so neither does the result.
func principalArn(p *authn.Principal) string {
	if p.Kind != authn.KindAssumedRole {
		return p.ARN
	}
	a, ok := splitARN(p.ARN)
	if !ok || a.service != "sts" || !strings.HasPrefix(a.resource, "assumed-role/") {
		return p.ARN
	}
	role, _, _ := strings.Cut(a.resource[len("assumed-role/"):], "/")
	return "arn:" + a.partition + ":iam::" + a.account + ":role/" + role
}

// principalType spells a principal kind as aws:PrincipalType does.
func principalType(k authn.Kind) string {
	switch k {
	case authn.KindRoot:
		return "Account"
	case authn.KindIAMUser:
		return "User"
	case authn.KindAssumedRole:
		return "AssumedRole"
	}
	return string(k)
}

// partKind is the kind of one template part.
type partKind uint8

const (
	partText partKind = iota // policy text; wildcards in it stay wildcards
	partLit                  // an escape (${*}, ${?}, ${$}): literal text
	partVar                  // a variable
)

// part is one piece of a template.
type part struct {
	kind       partKind
	text       string // partText and partLit; the default for partVar
	key        condKey
	hasDefault bool
}

// template is a policy string that contains variables or escapes.
type template struct {
	parts []part
}

// parseTemplate splits s into parts. It returns nil when s has no ${ at all,
// so callers keep the static fast path.
func parseTemplate(s string) (*template, error) {
	if !strings.Contains(s, "${") {
		return nil, nil
	}
	t := &template{}
	for s != "" {
		i := strings.Index(s, "${")
		if i < 0 {
			t.parts = append(t.parts, part{kind: partText, text: s})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{kind: partText, text: s[:i]})
		}
		p, rest, err := parseVariable(s[i+2:])
		if err != nil {
			return nil, err
		}
		t.parts = append(t.parts, p)
		s = rest
	}
	return t, nil
}

// parseVariable parses the inside of ${...} from s (which starts just after
// "${") and returns the part and the text after the closing brace.
func parseVariable(s string) (part, string, error) {
	// The key runs to ',' or '}'; a default is a quoted string.
	end := strings.IndexAny(s, ",}")
	if end < 0 {
		return part{}, "", varError("has no closing '}'")
	}
	name := strings.TrimSpace(s[:end])
	switch name {
	case "*", "?", "$":
		if s[end] != '}' {
			return part{}, "", varError("${%s} takes no default", name)
		}
		return part{kind: partLit, text: name}, s[end+1:], nil
	case "":
		return part{}, "", varError("has no key name")
	}
	if strings.ContainsAny(name, " \t\r\n${'") {
		return part{}, "", varError("key %q contains a space, quote, '$' or '{'", name)
	}
	p := part{kind: partVar, key: newCondKey(name)}
	if s[end] == '}' {
		return p, s[end+1:], nil
	}
	// ", 'default'}"
	rest := strings.TrimLeft(s[end+1:], " \t")
	if rest == "" || rest[0] != '\'' {
		return part{}, "", varError("default for %q must be in single quotes", name)
	}
	var def strings.Builder
	i := 1
	for {
		if i >= len(rest) {
			return part{}, "", varError("default for %q has no closing quote", name)
		}
		if rest[i] == '\'' {
			if i+1 < len(rest) && rest[i+1] == '\'' {
				def.WriteByte('\'')
				i += 2
				continue
			}
			i++
			break
		}
		def.WriteByte(rest[i])
		i++
	}
	rest = strings.TrimLeft(rest[i:], " \t")
	if rest == "" || rest[0] != '}' {
		return part{}, "", varError("default for %q must be followed by '}'", name)
	}
	p.text, p.hasDefault = def.String(), true
	return p, rest[1:], nil
}

// resolve returns the value of a variable part in req: the key's single
// value, else the default. ok is false when neither exists.
func (p *part) resolve(req *Request) (string, bool) {
	if v, ok := lookup(req, &p.key); ok && v.n() == 1 {
		return v.at(0), true
	}
	if p.hasDefault {
		return p.text, true
	}
	return "", false
}

// expand returns the template's text with variables substituted; ok is
// false when a variable has no value.
func (t *template) expand(req *Request) (string, bool) {
	var b strings.Builder
	for i := range t.parts {
		p := &t.parts[i]
		if p.kind != partVar {
			b.WriteString(p.text)
			continue
		}
		v, ok := p.resolve(req)
		if !ok {
			return "", false
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// expandGlob returns the template as pattern tokens: wildcards in policy
// text stay wildcards, escapes and substituted values are literal.
func (t *template) expandGlob(req *Request, fold bool) (glob, bool) {
	toks := make([]tok, 0, 2*len(t.parts))
	for i := range t.parts {
		p := &t.parts[i]
		switch p.kind {
		case partText:
			text := p.text
			if fold {
				text = asciiLower(text)
			}
			toks = tokenize(toks, text)
		case partLit:
			toks = appendLit(toks, p.text)
		case partVar:
			v, ok := p.resolve(req)
			if !ok {
				return glob{}, false
			}
			if fold {
				v = asciiLower(v)
			}
			toks = appendLit(toks, v)
		}
	}
	return globFromToks(toks, fold), true
}

// literalText returns the template's policy text without variables and
// escapes, for validation that must ignore substituted values.
func (t *template) literalText() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.kind == partText {
			b.WriteString(p.text)
		}
	}
	return b.String()
}

// varError describes a malformed policy variable.
func varError(format string, args ...any) error {
	return fmt.Errorf("policy variable "+format, args...)
}
