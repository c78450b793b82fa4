package iam

import (
	"bytes"
	"net/netip"
	"strings"
	"time"
)

// This file evaluates compiled conditions against a request.
//
// For one condition (operator, key, policy values) and the key's values in
// the request context:
//   - A value v passes a positive operator when it matches any policy value
//     (OR), and a negated one (StringNotEquals, NotIpAddress, ArnNotLike,
//     ...) when it matches none of them (NOR). A value of the wrong type
//     (NumericEquals against "abc", IpAddress against a host name) passes
//     neither: the condition is false, not an error.
//   - A missing key (or one present with no values) makes a positive
//     operator false and a negated one true; ...IfExists makes any operator
//     true; ForAllValues is true and ForAnyValue false, whatever the
//     operator.
//   - ForAnyValue needs one passing value, ForAllValues needs every value
//     to pass. Without a qualifier, a positive operator needs one passing
//     value and a negated one needs all of them to pass, so StringNotEquals
//     is exactly the negation of StringEquals on multivalued keys too.
//   - Null {"k": "true"} is true when k is missing or empty, {"k": "false"}
//     when it has a value.
//
// Conditions are ANDed across keys and operators.

// matcher tests one request value against a condition's policy values.
type matcher interface {
	// test reports whether v matches any policy value, and whether v is of
	// the operator's type at all.
	test(req *Request, v string) (matched, ok bool)
}

// eval reports whether the condition holds for req.
func (c *condition) eval(req *Request) bool {
	vals, present := lookup(req, &c.key)
	n := 0
	if present {
		n = vals.n()
	}
	if c.op.fam == famNull {
		if n == 0 {
			return c.nullTrue
		}
		return c.nullFalse
	}
	if n == 0 {
		switch {
		case c.ifExists:
			return true
		case c.set == setAllValues:
			return true
		case c.set == setAnyValue:
			return false
		}
		return c.op.negated
	}
	all := c.set == setAllValues || (c.set == setNone && c.op.negated)
	for i := 0; i < n; i++ {
		pass := c.pass(req, vals.at(i))
		if all && !pass {
			return false
		}
		if !all && pass {
			return true
		}
	}
	return all
}

// pass reports whether one request value passes the condition.
func (c *condition) pass(req *Request, v string) bool {
	var matched, ok bool
	// A type switch rather than a dynamic call keeps req from escaping, so
	// callers may build their Request on the stack.
	switch m := c.m.(type) {
	case *stringMatcher:
		matched, ok = m.test(req, v)
	case *numericMatcher:
		matched, ok = m.test(req, v)
	case *dateMatcher:
		matched, ok = m.test(req, v)
	case *boolMatcher:
		matched, ok = m.test(req, v)
	case *binaryMatcher:
		matched, ok = m.test(req, v)
	case *ipMatcher:
		matched, ok = m.test(req, v)
	case *arnMatcher:
		matched, ok = m.test(req, v)
	default:
		panic("iam: internal error: unknown condition matcher")
	}
	return ok && matched != c.op.negated
}

// stringValue is one policy value of a String operator.
type stringValue struct {
	s   string    // the literal, when static
	g   glob      // the compiled pattern, for StringLike when static
	tpl *template // non-nil when the value has variables
}

// stringMatcher implements the String operators.
type stringMatcher struct {
	cmp  cmpOp
	vals []stringValue
}

func (m *stringMatcher) test(req *Request, v string) (bool, bool) {
	for i := range m.vals {
		sv := &m.vals[i]
		if sv.tpl != nil {
			if m.cmp == cmpLike {
				g, ok := sv.tpl.expandGlob(req, false)
				if ok && g.match(v) {
					return true, true
				}
				continue
			}
			s, ok := sv.tpl.expand(req)
			if ok && stringEq(m.cmp, s, v) {
				return true, true
			}
			continue
		}
		if m.cmp == cmpLike {
			if sv.g.match(v) {
				return true, true
			}
		} else if stringEq(m.cmp, sv.s, v) {
			return true, true
		}
	}
	return false, true
}

func stringEq(cmp cmpOp, policy, v string) bool {
	if cmp == cmpFold {
		return strings.EqualFold(policy, v)
	}
	return policy == v
}

// numericMatcher implements the Numeric operators.
type numericMatcher struct {
	cmp  cmpOp
	vals []float64
}

func (m *numericMatcher) test(_ *Request, v string) (bool, bool) {
	f, ok := parseNumber(v)
	if !ok {
		return false, false
	}
	for _, p := range m.vals {
		if compare(m.cmp, cmp3(f, p)) {
			return true, true
		}
	}
	return false, true
}

func cmp3(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compare applies an ordering operator to the result of comparing the
// request value with the policy value.
func compare(op cmpOp, c int) bool {
	switch op {
	case cmpLt:
		return c < 0
	case cmpLe:
		return c <= 0
	case cmpGt:
		return c > 0
	case cmpGe:
		return c >= 0
	}
	return c == 0
}

// dateMatcher implements the Date operators.
type dateMatcher struct {
	cmp  cmpOp
	vals []time.Time
}

func (m *dateMatcher) test(_ *Request, v string) (bool, bool) {
	t, ok := parseDate(v)
	if !ok {
		return false, false
	}
	for _, p := range m.vals {
		if compare(m.cmp, t.Compare(p)) {
			return true, true
		}
	}
	return false, true
}

// boolMatcher implements Bool.
type boolMatcher struct {
	acceptTrue, acceptFalse bool
}

func (m *boolMatcher) test(_ *Request, v string) (bool, bool) {
	b, ok := parseBool(v)
	if !ok {
		return false, false
	}
	return (b && m.acceptTrue) || (!b && m.acceptFalse), true
}

// binaryMatcher implements BinaryEquals: request values are base64 like the
// policy's and compare byte for byte after decoding.
type binaryMatcher struct {
	vals [][]byte
}

func (m *binaryMatcher) test(_ *Request, v string) (bool, bool) {
	b, ok := decodeBase64(v)
	if !ok {
		return false, false
	}
	for _, p := range m.vals {
		if bytes.Equal(b, p) {
			return true, true
		}
	}
	return false, true
}

// ipMatcher implements IpAddress and NotIpAddress.
type ipMatcher struct {
	vals []netip.Prefix
}

func (m *ipMatcher) test(_ *Request, v string) (bool, bool) {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return false, false
	}
	a = a.Unmap().WithZone("")
	for _, p := range m.vals {
		if p.Contains(a) {
			return true, true
		}
	}
	return false, true
}

// arnValue is one policy value of an ARN operator: six component patterns,
// each matched on its own, so a wildcard never spans a ':' between
// components (the last component, the resource, may contain ':').
type arnValue struct {
	comps [6]glob
	tpl   *template // non-nil when the value has variables
}

// arnMatcher implements ArnEquals, ArnLike and their negations; as in AWS,
// ArnEquals and ArnLike both accept wildcards.
type arnMatcher struct {
	vals []arnValue
}

func (m *arnMatcher) test(req *Request, v string) (bool, bool) {
	var comps [6]string
	if !splitARN6(v, &comps) {
		return false, false
	}
	for i := range m.vals {
		av := &m.vals[i]
		if av.tpl != nil {
			g, ok := av.tpl.expandGlob(req, false)
			if !ok {
				continue
			}
			dyn, ok := arnValueFromToks(g.toks)
			if !ok {
				continue
			}
			if dyn.match(&comps) {
				return true, true
			}
			continue
		}
		if av.match(&comps) {
			return true, true
		}
	}
	return false, true
}

// match matches split ARN components.
func (av *arnValue) match(comps *[6]string) bool {
	for i := range av.comps {
		if !av.comps[i].match(comps[i]) {
			return false
		}
	}
	return true
}

// splitARN6 splits an ARN into its six components without allocating.
func splitARN6(s string, out *[6]string) bool {
	for i := 0; i < 5; i++ {
		j := strings.IndexByte(s, ':')
		if j < 0 {
			return false
		}
		out[i], s = s[:j], s[j+1:]
	}
	out[5] = s
	return true
}

// arnValueFromToks splits pattern tokens into six ARN components at the
// first five ':' of literal text.
func arnValueFromToks(toks []tok) (arnValue, bool) {
	var av arnValue
	var cur []tok
	comp := 0
	for _, t := range toks {
		if t.kind != tokLit || comp == 5 {
			cur = append(cur, t)
			continue
		}
		s := t.s
		for comp < 5 {
			j := strings.IndexByte(s, ':')
			if j < 0 {
				break
			}
			cur = appendLit(cur, s[:j])
			av.comps[comp] = globFromToks(cur, false)
			cur, comp, s = nil, comp+1, s[j+1:]
		}
		cur = appendLit(cur, s)
	}
	if comp != 5 {
		return av, false
	}
	av.comps[5] = globFromToks(cur, false)
	return av, true
}
