package secrets

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sigil.dev/sigil/internal/iam"
	"strings"
	"unicode/utf8"
)

// This file validates resource policy documents. The policy language is
// IAM's; this package only stores and checks documents (the evaluator lives
// in package iam), but it checks them strictly, so that what is stored is
// unambiguous to every later reader: duplicate keys and unknown elements
// are refused, not ignored.

// Policy check names reported by ValidateResourcePolicy.
const (
	checkSyntax = "SYNTAX_CHECK"
	checkPublic = "PUBLIC_ACCESS_CHECK"
)

// maxPolicyDepth bounds nesting; real policies are four levels deep.
const maxPolicyDepth = 16

// policyFinding is one problem with a policy document.
type policyFinding struct {
	check string
	msg   string
}

// policyReport is the outcome of checking a document.
type policyReport struct {
	// malformed is set when the document is not a JSON object at all.
	malformed string
	findings  []policyFinding
	// public is set when a statement allows everyone without conditions.
	public bool
}

// syntaxError returns the first syntax finding, if any.
func (r *policyReport) syntaxError() string {
	if r.malformed != "" {
		return r.malformed
	}
	for _, f := range r.findings {
		if f.check == checkSyntax {
			return f.msg
		}
	}
	return ""
}

// jsonObject is a JSON object that remembers key order.
type jsonObject struct {
	keys []string
	vals map[string]any
}

// checkPolicy parses and checks a resource policy document.
func checkPolicy(doc string) *policyReport {
	rep := &policyReport{}
	if n := utf8.RuneCountInString(doc); n > maxPolicyLen {
		rep.malformed = fmt.Sprintf("The policy document is %d characters long; the limit is %d.", n, maxPolicyLen)
		return rep
	}
	root, err := parseStrictJSON(doc)
	if err != nil {
		rep.malformed = "The policy document is not valid JSON: " + err.Error() + "."
		return rep
	}
	top, ok := root.(*jsonObject)
	if !ok {
		rep.malformed = "The policy document must be a JSON object."
		return rep
	}
	c := &policyChecker{rep: rep, sids: map[string]bool{}}
	c.document(top)
	if len(rep.findings) == 0 {
		// The evaluator enforces the stored document, so it must accept it
		// too: condition operators, ARN and value syntax, policy variables.
		if _, err := iam.ParsePolicy(doc, iam.ResourcePolicy); err != nil {
			c.fail("%s.", strings.TrimSuffix(strings.TrimPrefix(err.Error(), "iam: "), "."))
		}
	}
	return rep
}

type policyChecker struct {
	rep  *policyReport
	sids map[string]bool
}

func (c *policyChecker) fail(format string, args ...any) {
	c.rep.findings = append(c.rep.findings, policyFinding{check: checkSyntax, msg: fmt.Sprintf(format, args...)})
}

func (c *policyChecker) document(top *jsonObject) {
	for _, k := range top.keys {
		switch k {
		case "Version":
			if v, ok := top.vals[k].(string); !ok || v != "2012-10-17" && v != "2008-10-17" {
				c.fail("Version must be \"2012-10-17\" or \"2008-10-17\".")
			}
		case "Id":
			if _, ok := top.vals[k].(string); !ok {
				c.fail("Id must be a string.")
			}
		case "Statement":
		default:
			c.fail("The policy document has an unknown element %q; allowed are Version, Id and Statement.", k)
		}
	}
	st, ok := top.vals["Statement"]
	if !ok {
		c.fail("The policy document has no Statement.")
		return
	}
	switch st := st.(type) {
	case *jsonObject:
		c.statement("Statement", st)
	case []any:
		if len(st) == 0 {
			c.fail("Statement must not be an empty list.")
		}
		for i, s := range st {
			where := fmt.Sprintf("Statement[%d]", i)
			if o, ok := s.(*jsonObject); ok {
				c.statement(where, o)
			} else {
				c.fail("%s must be an object.", where)
			}
		}
	default:
		c.fail("Statement must be an object or a list of objects.")
	}
}

var (
	actionPattern    = regexp.MustCompile(`^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$`)
	conditionPattern = regexp.MustCompile(`^((ForAllValues|ForAnyValue):)?[A-Za-z]+(IfExists)?$`)
)

func (c *policyChecker) statement(where string, st *jsonObject) {
	for _, k := range st.keys {
		switch k {
		case "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition":
		default:
			c.fail("%s has an unknown element %q.", where, k)
		}
	}
	if v, ok := st.vals["Sid"]; ok {
		sid, ok := v.(string)
		switch {
		case !ok:
			c.fail("%s.Sid must be a string.", where)
		case c.sids[sid] && sid != "":
			c.fail("%s.Sid %q is used by another statement; statement ids must be unique.", where, sid)
		}
		c.sids[sid] = true
	}
	effect, _ := st.vals["Effect"].(string)
	if effect != "Allow" && effect != "Deny" {
		c.fail("%s.Effect must be \"Allow\" or \"Deny\".", where)
	}
	principal, hasP := st.vals["Principal"]
	notPrincipal, hasNP := st.vals["NotPrincipal"]
	switch {
	case hasP && hasNP:
		c.fail("%s has both Principal and NotPrincipal; use one.", where)
	case hasP:
		c.principal(where+".Principal", principal)
	case hasNP:
		c.principal(where+".NotPrincipal", notPrincipal)
	default:
		c.fail("%s has no Principal: a resource policy must say whom it applies to.", where)
	}
	c.exclusive(where, st, "Action", "NotAction", true, func(w, s string) {
		if !actionPattern.MatchString(s) {
			c.fail("%s has the action %q; actions are \"*\" or service:Action, e.g. secretsmanager:GetSecretValue.", w, s)
		}
	})
	c.exclusive(where, st, "Resource", "NotResource", false, func(w, s string) {
		if s != "*" && !strings.HasPrefix(s, "arn:") {
			c.fail("%s has the resource %q; resources are \"*\" or ARNs.", w, s)
		}
	})
	cond, hasCond := st.vals["Condition"]
	if hasCond {
		c.condition(where+".Condition", cond)
	}
	if effect == "Allow" && !hasCond && (hasNP || isPublicPrincipal(principal)) {
		c.rep.public = true
		c.rep.findings = append(c.rep.findings, policyFinding{check: checkPublic,
			msg: where + " allows access to every principal (Principal \"*\" or NotPrincipal) without a condition."})
	}
}

// exclusive checks an element that may appear either plainly or negated
// (Action/NotAction, Resource/NotResource): a string or a non-empty list of
// strings, each checked by each.
func (c *policyChecker) exclusive(where string, st *jsonObject, plain, not string, mandatory bool, each func(where, s string)) {
	v, hasPlain := st.vals[plain]
	nv, hasNot := st.vals[not]
	switch {
	case hasPlain && hasNot:
		c.fail("%s has both %s and %s; use one.", where, plain, not)
		return
	case hasNot:
		v, plain = nv, not
	case !hasPlain:
		if mandatory {
			c.fail("%s has no %s.", where, plain)
		}
		return
	}
	w := where + "." + plain
	list, ok := stringList(v)
	if !ok {
		c.fail("%s must be a string or a non-empty list of strings.", w)
		return
	}
	for _, s := range list {
		each(w, s)
	}
}

func (c *policyChecker) principal(where string, v any) {
	if s, ok := v.(string); ok {
		if s != "*" {
			c.fail("%s must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:root\"}.", where)
		}
		return
	}
	o, ok := v.(*jsonObject)
	if !ok || len(o.keys) == 0 {
		c.fail("%s must be \"*\" or a non-empty object.", where)
		return
	}
	for _, k := range o.keys {
		switch k {
		case "AWS", "Service", "Federated", "CanonicalUser":
		default:
			c.fail("%s has the unknown principal type %q; use AWS, Service, Federated or CanonicalUser.", where, k)
			continue
		}
		list, ok := stringList(o.vals[k])
		if !ok {
			c.fail("%s.%s must be a string or a non-empty list of strings.", where, k)
			continue
		}
		for _, s := range list {
			if s == "" {
				c.fail("%s.%s has an empty principal.", where, k)
			}
		}
	}
}

func (c *policyChecker) condition(where string, v any) {
	o, ok := v.(*jsonObject)
	if !ok {
		c.fail("%s must be an object of condition operators.", where)
		return
	}
	for _, op := range o.keys {
		if !conditionPattern.MatchString(op) {
			c.fail("%s has the invalid condition operator %q.", where, op)
		}
		block, ok := o.vals[op].(*jsonObject)
		if !ok || len(block.keys) == 0 {
			c.fail("%s.%s must be a non-empty object of condition keys.", where, op)
			continue
		}
		for _, key := range block.keys {
			if !conditionValue(block.vals[key]) {
				c.fail("%s.%s.%s must be a string, number, boolean or a non-empty list of them.", where, op, key)
			}
		}
	}
}

func conditionValue(v any) bool {
	switch v := v.(type) {
	case string, json.Number, bool:
		return true
	case []any:
		if len(v) == 0 {
			return false
		}
		for _, e := range v {
			switch e.(type) {
			case string, json.Number, bool:
			default:
				return false
			}
		}
		return true
	}
	return false
}

// isPublicPrincipal reports whether a Principal element names everyone.
func isPublicPrincipal(v any) bool {
	if s, ok := v.(string); ok {
		return s == "*"
	}
	o, ok := v.(*jsonObject)
	if !ok {
		return false
	}
	list, _ := stringList(o.vals["AWS"])
	for _, s := range list {
		if s == "*" {
			return true
		}
	}
	return false
}

// stringList accepts a string or a non-empty list of strings.
func stringList(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		if len(v) == 0 {
			return nil, false
		}
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// parseStrictJSON parses one JSON value, refusing duplicate object keys,
// nesting deeper than maxPolicyDepth and trailing data. Objects become
// *jsonObject, numbers json.Number.
func parseStrictJSON(doc string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the document")
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxPolicyDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxPolicyDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxMessage(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &jsonObject{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, syntaxMessage(err)
				}
				k, _ := kt.(string)
				if _, dup := o.vals[k]; dup {
					return nil, fmt.Errorf("the key %q appears twice in one object", k)
				}
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.keys = append(o.keys, k)
				o.vals[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxMessage(err)
			}
			return o, nil
		case '[':
			var list []any
			for dec.More() {
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxMessage(err)
			}
			if list == nil {
				list = []any{}
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected %q", t)
	default:
		return t, nil
	}
}

// syntaxMessage describes a JSON syntax error by position only.
func syntaxMessage(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("syntax error at byte %d", se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the document ends early")
	}
	return errors.New("malformed JSON")
}
