package iam

import (
	"fmt"
	"strconv"
	"strings"
)

// This file turns the JSON tree of a document into compiled statements:
// the grammar checks (which elements, which values, per kind) and the
// compilation of actions and resources into wildcard matchers.

// Policy versions.
const (
	version2012 = "2012-10-17"
	version2008 = "2008-10-17"
)

// statement is one compiled statement.
type statement struct {
	sid   string
	label string // the Sid, or the statement's path when it has none
	deny  bool

	actions   []glob // lower-cased, matched case-insensitively
	notAction bool

	resources   []resourcePattern
	notResource bool
	anyResource bool // no Resource element (resource and trust policies)

	principals   []principalEntry
	notPrincipal bool

	conds []condition
}

// resourcePattern is one entry of Resource/NotResource.
type resourcePattern struct {
	g   glob
	tpl *template // non-nil when the entry has policy variables
}

// match reports whether the entry matches resource.
func (r *resourcePattern) match(req *Request, resource string) bool {
	if r.tpl == nil {
		return r.g.match(resource)
	}
	g, ok := r.tpl.expandGlob(req, false)
	return ok && g.match(resource)
}

// docCompiler carries the state of compiling one document.
type docCompiler struct {
	kind      PolicyKind
	vars      bool // Version 2012-10-17: policy variables are on
	sids      map[string]string
	variables bool // some element uses a variable
}

var (
	topLevelElements = []string{"Version", "Id", "Statement"}
	statementElems   = []string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)

// compileDocument checks and compiles a whole document.
func compileDocument(root *jnode, kind PolicyKind) (*Policy, error) {
	if root.kind != jObject {
		return nil, &PolicyError{Msg: "the document must be a JSON object, not " + root.typeName()}
	}
	if err := checkElements("", root, topLevelElements); err != nil {
		return nil, err
	}
	p := &Policy{kind: kind}
	if v := root.get("Version"); v != nil {
		if v.kind != jString || (v.s != version2012 && v.s != version2008) {
			return nil, &PolicyError{Path: "Version", Msg: `must be "2012-10-17" or "2008-10-17"`}
		}
		p.version = v.s
	}
	if id := root.get("Id"); id != nil && id.kind != jString {
		return nil, &PolicyError{Path: "Id", Msg: "must be a string, not " + id.typeName()}
	}
	st := root.get("Statement")
	if st == nil {
		return nil, &PolicyError{Msg: "the document has no Statement"}
	}
	c := &docCompiler{kind: kind, vars: p.version == version2012, sids: map[string]string{}}
	switch st.kind {
	case jObject:
		s, err := c.statement("Statement", st)
		if err != nil {
			return nil, err
		}
		p.statements = []statement{s}
	case jArray:
		if len(st.elems) == 0 {
			return nil, &PolicyError{Path: "Statement", Msg: "must not be an empty list"}
		}
		p.statements = make([]statement, 0, len(st.elems))
		for i, e := range st.elems {
			path := "Statement[" + strconv.Itoa(i) + "]"
			if e.kind != jObject {
				return nil, &PolicyError{Path: path, Msg: "must be an object, not " + e.typeName()}
			}
			s, err := c.statement(path, e)
			if err != nil {
				return nil, err
			}
			p.statements = append(p.statements, s)
		}
	default:
		return nil, &PolicyError{Path: "Statement", Msg: "must be an object or a list of objects, not " + st.typeName()}
	}
	p.variables = c.variables
	return p, nil
}

// checkElements rejects keys of n outside allowed, with a hint when only the
// case is wrong.
func checkElements(path string, n *jnode, allowed []string) error {
	for _, k := range n.keys {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}
		if found {
			continue
		}
		msg := fmt.Sprintf("unknown element %q", k)
		for _, a := range allowed {
			if strings.EqualFold(k, a) {
				msg += fmt.Sprintf(" (element names are case-sensitive: use %q)", a)
				break
			}
		}
		return &PolicyError{Path: path, Msg: msg}
	}
	return nil
}

// statement checks and compiles one statement.
func (c *docCompiler) statement(path string, n *jnode) (statement, error) {
	var s statement
	if err := checkElements(path, n, statementElems); err != nil {
		return s, err
	}
	s.label = path
	if v := n.get("Sid"); v != nil {
		if err := c.sid(path+".Sid", v); err != nil {
			return s, err
		}
		if v.s != "" {
			s.sid, s.label = v.s, v.s
		}
	}

	eff := n.get("Effect")
	switch {
	case eff == nil:
		return s, &PolicyError{Path: path, Msg: "has no Effect"}
	case eff.kind == jString && eff.s == "Allow":
	case eff.kind == jString && eff.s == "Deny":
		s.deny = true
	default:
		return s, &PolicyError{Path: path + ".Effect", Msg: `must be "Allow" or "Deny"`}
	}

	if err := c.principal(path, n, &s); err != nil {
		return s, err
	}
	if err := c.actions(path, n, &s); err != nil {
		return s, err
	}
	if err := c.resources(path, n, &s); err != nil {
		return s, err
	}
	if cond := n.get("Condition"); cond != nil {
		conds, err := c.conditions(path+".Condition", cond)
		if err != nil {
			return s, err
		}
		s.conds = conds
	}
	return s, nil
}

// sid checks a statement id: a string, unique in the document, and in IAM
// documents (identity and trust policies) ASCII letters and digits only.
func (c *docCompiler) sid(path string, v *jnode) error {
	if v.kind != jString {
		return &PolicyError{Path: path, Msg: "must be a string, not " + v.typeName()}
	}
	if v.s == "" {
		return nil
	}
	if c.kind != ResourcePolicy {
		for i := 0; i < len(v.s); i++ {
			ch := v.s[i]
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9') {
				return &PolicyError{Path: path, Msg: fmt.Sprintf("%q must contain only ASCII letters and digits", v.s)}
			}
		}
	}
	if prev, dup := c.sids[v.s]; dup {
		return &PolicyError{Path: path, Msg: fmt.Sprintf("%q is also the Sid of %s; Sids must be unique", v.s, prev)}
	}
	c.sids[v.s] = strings.TrimSuffix(path, ".Sid")
	return nil
}

// pickOne returns the plain or the negated form of an element, refusing
// both.
func pickOne(path string, n *jnode, plain, not string) (*jnode, string, bool, error) {
	p, q := n.get(plain), n.get(not)
	switch {
	case p != nil && q != nil:
		return nil, "", false, &PolicyError{Path: path, Msg: fmt.Sprintf("has both %s and %s; use one", plain, not)}
	case q != nil:
		return q, not, true, nil
	}
	return p, plain, false, nil
}

// stringList reads a string or a non-empty list of strings.
func stringList(path string, n *jnode) ([]string, []string, error) {
	switch n.kind {
	case jString:
		return []string{n.s}, []string{path}, nil
	case jArray:
		if len(n.elems) == 0 {
			return nil, nil, &PolicyError{Path: path, Msg: "must not be an empty list"}
		}
		out := make([]string, len(n.elems))
		paths := make([]string, len(n.elems))
		for i, e := range n.elems {
			paths[i] = path + "[" + strconv.Itoa(i) + "]"
			if e.kind != jString {
				return nil, nil, &PolicyError{Path: paths[i], Msg: "must be a string, not " + e.typeName()}
			}
			out[i] = e.s
		}
		return out, paths, nil
	}
	return nil, nil, &PolicyError{Path: path, Msg: "must be a string or a list of strings, not " + n.typeName()}
}

// actions compiles Action/NotAction.
func (c *docCompiler) actions(path string, n *jnode, s *statement) error {
	v, name, not, err := pickOne(path, n, "Action", "NotAction")
	if err != nil {
		return err
	}
	if v == nil {
		return &PolicyError{Path: path, Msg: "has no Action or NotAction"}
	}
	list, paths, err := stringList(path+"."+name, v)
	if err != nil {
		return err
	}
	s.notAction = not
	s.actions = make([]glob, len(list))
	for i, a := range list {
		if !validAction(a) {
			return &PolicyError{Path: paths[i], Msg: fmt.Sprintf(`action %q must be "*" or service:Action, e.g. "secretsmanager:GetSecretValue"`, a)}
		}
		s.actions[i] = compileGlob(a, true)
	}
	return nil
}

// validAction reports whether a is "*" or vendor:pattern. Policy variables
// are not allowed in actions, and the '$' of one fails this check.
func validAction(a string) bool {
	if a == "*" {
		return true
	}
	vendor, name, ok := strings.Cut(a, ":")
	if !ok || vendor == "" || name == "" {
		return false
	}
	for i := 0; i < len(vendor); i++ {
		ch := vendor[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-') {
			return false
		}
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '*' || ch == '?' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// resources compiles Resource/NotResource.
func (c *docCompiler) resources(path string, n *jnode, s *statement) error {
	v, name, not, err := pickOne(path, n, "Resource", "NotResource")
	if err != nil {
		return err
	}
	switch {
	case v != nil && c.kind == TrustPolicy:
		return &PolicyError{Path: path + "." + name, Msg: "is not allowed in a trust policy"}
	case v == nil && c.kind == IdentityPolicy:
		return &PolicyError{Path: path, Msg: "has no Resource or NotResource; an identity policy must name its resources"}
	case v == nil:
		s.anyResource = true
		return nil
	}
	list, paths, err := stringList(path+"."+name, v)
	if err != nil {
		return err
	}
	s.notResource = not
	s.resources = make([]resourcePattern, len(list))
	for i, r := range list {
		rp, err := c.resource(paths[i], r)
		if err != nil {
			return err
		}
		s.resources[i] = rp
	}
	return nil
}

// resource compiles one resource pattern: "*" or an ARN with six
// components, possibly with wildcards and variables.
func (c *docCompiler) resource(path, r string) (resourcePattern, error) {
	if r == "*" {
		return resourcePattern{g: glob{shape: shapeAny}}, nil
	}
	tpl, err := c.template(path, r)
	if err != nil {
		return resourcePattern{}, err
	}
	text, hasVars := r, false
	if tpl != nil {
		text, hasVars = tpl.literalText(), tpl.hasVars()
	}
	// Six components, unless a wildcard or a variable may stand for the
	// missing ones ("arn:aws:secretsmanager:*" spans the rest).
	if !strings.HasPrefix(r, "arn:") || (!hasVars && strings.Count(text, ":") < 5 && !strings.Contains(text, "*")) {
		return resourcePattern{}, &PolicyError{Path: path, Msg: fmt.Sprintf(`resource %q must be "*" or an ARN (arn:partition:service:region:account:resource)`, r)}
	}
	if tpl == nil {
		return resourcePattern{g: compileGlob(r, false)}, nil
	}
	if !hasVars {
		g, _ := tpl.expandGlob(nil, false)
		return resourcePattern{g: g}, nil
	}
	return resourcePattern{tpl: tpl}, nil
}

// template parses the policy variables of a value when the document's
// version enables them; it returns nil for a value without any.
func (c *docCompiler) template(path, s string) (*template, error) {
	if !c.vars {
		return nil, nil
	}
	tpl, err := parseTemplate(s)
	if err != nil {
		return nil, &PolicyError{Path: path, Msg: err.Error()}
	}
	if tpl != nil && tpl.hasVars() {
		c.variables = true
	}
	return tpl, nil
}

// hasVars reports whether the template has a variable (not only escapes).
func (t *template) hasVars() bool {
	for _, p := range t.parts {
		if p.kind == partVar {
			return true
		}
	}
	return false
}
