package iam

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// This file compiles the Condition element: operator names, condition keys
// and values, each value parsed once into its operator's type (numbers,
// dates, CIDRs, ARN components, bytes), so that a malformed literal is
// rejected when the policy is written and evaluation never re-parses it.

// family is an operator family: it decides how values are parsed.
type family uint8

const (
	famString family = iota
	famNumeric
	famDate
	famBool
	famBinary
	famIP
	famArn
	famNull
)

// cmpOp is the comparison an operator performs within its family.
type cmpOp uint8

const (
	cmpEq   cmpOp = iota // equality (also ArnEquals/ArnLike, IpAddress)
	cmpFold              // StringEqualsIgnoreCase
	cmpLike              // StringLike
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

// opInfo describes one base operator.
type opInfo struct {
	fam     family
	cmp     cmpOp
	negated bool // the NotEquals/NotLike/NotIpAddress forms: NOR of the values
}

// operators maps every base operator name to its description.
var operators = map[string]opInfo{
	"StringEquals":              {famString, cmpEq, false},
	"StringNotEquals":           {famString, cmpEq, true},
	"StringEqualsIgnoreCase":    {famString, cmpFold, false},
	"StringNotEqualsIgnoreCase": {famString, cmpFold, true},
	"StringLike":                {famString, cmpLike, false},
	"StringNotLike":             {famString, cmpLike, true},
	"NumericEquals":             {famNumeric, cmpEq, false},
	"NumericNotEquals":          {famNumeric, cmpEq, true},
	"NumericLessThan":           {famNumeric, cmpLt, false},
	"NumericLessThanEquals":     {famNumeric, cmpLe, false},
	"NumericGreaterThan":        {famNumeric, cmpGt, false},
	"NumericGreaterThanEquals":  {famNumeric, cmpGe, false},
	"DateEquals":                {famDate, cmpEq, false},
	"DateNotEquals":             {famDate, cmpEq, true},
	"DateLessThan":              {famDate, cmpLt, false},
	"DateLessThanEquals":        {famDate, cmpLe, false},
	"DateGreaterThan":           {famDate, cmpGt, false},
	"DateGreaterThanEquals":     {famDate, cmpGe, false},
	"Bool":                      {famBool, cmpEq, false},
	"BinaryEquals":              {famBinary, cmpEq, false},
	"IpAddress":                 {famIP, cmpEq, false},
	"NotIpAddress":              {famIP, cmpEq, true},
	"ArnEquals":                 {famArn, cmpEq, false},
	"ArnLike":                   {famArn, cmpEq, false},
	"ArnNotEquals":              {famArn, cmpEq, true},
	"ArnNotLike":                {famArn, cmpEq, true},
	"Null":                      {famNull, cmpEq, false},
}

// setQual is a condition's set operator.
type setQual uint8

const (
	setNone setQual = iota
	setAnyValue
	setAllValues
)

// condition is one compiled (operator, key) pair with its values.
type condition struct {
	op       opInfo
	set      setQual
	ifExists bool
	key      condKey
	m        matcher // nil for Null
	// For Null: which answers the values accept.
	nullTrue, nullFalse bool
}

// parseOperator splits an operator name into qualifier, base and IfExists.
func parseOperator(name string) (opInfo, setQual, bool, error) {
	base, set := name, setNone
	if rest, ok := strings.CutPrefix(base, "ForAnyValue:"); ok {
		base, set = rest, setAnyValue
	} else if rest, ok := strings.CutPrefix(base, "ForAllValues:"); ok {
		base, set = rest, setAllValues
	}
	ifExists := false
	if rest, ok := strings.CutSuffix(base, "IfExists"); ok {
		base, ifExists = rest, true
	}
	info, ok := operators[base]
	if !ok {
		msg := fmt.Sprintf("unknown operator %q", name)
		for known := range operators {
			if strings.EqualFold(known, base) {
				msg += fmt.Sprintf(" (operator names are case-sensitive: %q)", known)
				break
			}
		}
		return info, set, ifExists, fmt.Errorf("%s", msg)
	}
	if info.fam == famNull && ifExists {
		return info, set, ifExists, fmt.Errorf("operator %q: Null has no IfExists form", name)
	}
	if info.fam == famNull && set != setNone {
		return info, set, ifExists, fmt.Errorf("operator %q: Null takes no ForAnyValue/ForAllValues qualifier", name)
	}
	return info, set, ifExists, nil
}

// conditions compiles a Condition element.
func (c *docCompiler) conditions(path string, n *jnode) ([]condition, error) {
	if n.kind != jObject {
		return nil, &PolicyError{Path: path, Msg: "must be an object of condition operators, not " + n.typeName()}
	}
	if len(n.keys) == 0 {
		return nil, &PolicyError{Path: path, Msg: "must not be empty"}
	}
	var out []condition
	for i, opName := range n.keys {
		info, set, ifExists, err := parseOperator(opName)
		if err != nil {
			return nil, &PolicyError{Path: path, Msg: err.Error()}
		}
		block := n.vals[i]
		bpath := path + "." + opName
		if block.kind != jObject || len(block.keys) == 0 {
			return nil, &PolicyError{Path: bpath, Msg: "must be a non-empty object of condition keys"}
		}
		for j, key := range block.keys {
			if !validConditionKey(key) {
				return nil, &PolicyError{Path: bpath, Msg: fmt.Sprintf("condition key %q must be service:name, e.g. \"aws:SourceIp\"", key)}
			}
			cond := condition{op: info, set: set, ifExists: ifExists, key: newCondKey(key)}
			if err := c.conditionValues(bpath+"."+key, block.vals[j], &cond); err != nil {
				return nil, err
			}
			out = append(out, cond)
		}
	}
	return out, nil
}

// validConditionKey reports whether key looks like prefix:name, where the
// prefix may be a service (aws, secretsmanager) or an OIDC issuer
// (oidc.example.com/cluster).
func validConditionKey(key string) bool {
	i := strings.LastIndexByte(key, ':')
	if i <= 0 || i == len(key)-1 {
		return false
	}
	return !strings.ContainsAny(key, " \t\r\n")
}

// conditionValues reads and compiles the values of one condition key.
func (c *docCompiler) conditionValues(path string, n *jnode, cond *condition) error {
	var raw []*jnode
	var paths []string
	switch n.kind {
	case jString, jNumber, jBool:
		raw, paths = []*jnode{n}, []string{path}
	case jArray:
		if len(n.elems) == 0 {
			return &PolicyError{Path: path, Msg: "must not be an empty list"}
		}
		raw = n.elems
		for i := range raw {
			paths = append(paths, path+"["+strconv.Itoa(i)+"]")
		}
	default:
		return &PolicyError{Path: path, Msg: "must be a string, number, boolean or a list of them, not " + n.typeName()}
	}
	vals := make([]string, len(raw))
	for i, e := range raw {
		switch e.kind {
		case jString, jNumber:
			vals[i] = e.s
		case jBool:
			vals[i] = strconv.FormatBool(e.b)
		default:
			return &PolicyError{Path: paths[i], Msg: "must be a string, number or boolean, not " + e.typeName()}
		}
	}
	m, err := c.compileValues(cond, vals, paths)
	if err != nil {
		return err
	}
	cond.m = m
	return nil
}

// compileValues builds the matcher of a condition from its literal values.
func (c *docCompiler) compileValues(cond *condition, vals, paths []string) (matcher, error) {
	bad := func(i int, what string) error {
		return &PolicyError{Path: paths[i], Msg: fmt.Sprintf("%q is not %s", vals[i], what)}
	}
	switch cond.op.fam {
	case famNull:
		for i, v := range vals {
			b, ok := parseBool(v)
			if !ok {
				return nil, bad(i, `"true" or "false"`)
			}
			if b {
				cond.nullTrue = true
			} else {
				cond.nullFalse = true
			}
		}
		return nil, nil
	case famString:
		m := &stringMatcher{cmp: cond.op.cmp, vals: make([]stringValue, len(vals))}
		for i, v := range vals {
			tpl, err := c.template(paths[i], v)
			if err != nil {
				return nil, err
			}
			sv := stringValue{s: v, tpl: tpl}
			if tpl != nil && !tpl.hasVars() {
				sv.s, _ = tpl.expand(nil)
				sv.tpl = nil
			}
			if m.cmp == cmpLike {
				if tpl != nil && sv.tpl == nil {
					sv.g, _ = tpl.expandGlob(nil, false)
				} else if sv.tpl == nil {
					sv.g = compileGlob(v, false)
				}
			}
			m.vals[i] = sv
		}
		return m, nil
	case famNumeric:
		m := &numericMatcher{cmp: cond.op.cmp, vals: make([]float64, len(vals))}
		for i, v := range vals {
			f, ok := parseNumber(v)
			if !ok {
				return nil, bad(i, "a number")
			}
			m.vals[i] = f
		}
		return m, nil
	case famDate:
		m := &dateMatcher{cmp: cond.op.cmp, vals: make([]time.Time, len(vals))}
		for i, v := range vals {
			t, ok := parseDate(v)
			if !ok {
				return nil, bad(i, "a date (ISO 8601, e.g. 2026-01-02T15:04:05Z, or epoch seconds)")
			}
			m.vals[i] = t
		}
		return m, nil
	case famBool:
		m := &boolMatcher{}
		for i, v := range vals {
			b, ok := parseBool(v)
			if !ok {
				return nil, bad(i, `"true" or "false"`)
			}
			if b {
				m.acceptTrue = true
			} else {
				m.acceptFalse = true
			}
		}
		return m, nil
	case famBinary:
		m := &binaryMatcher{vals: make([][]byte, len(vals))}
		for i, v := range vals {
			b, ok := decodeBase64(v)
			if !ok {
				return nil, bad(i, "base64")
			}
			m.vals[i] = b
		}
		return m, nil
	case famIP:
		m := &ipMatcher{vals: make([]netip.Prefix, len(vals))}
		for i, v := range vals {
			p, ok := parseCIDR(v)
			if !ok {
				return nil, bad(i, "an IP address or CIDR block (e.g. 203.0.113.0/24 or 2001:db8::/32)")
			}
			m.vals[i] = p
		}
		return m, nil
	case famArn:
		m := &arnMatcher{vals: make([]arnValue, len(vals))}
		for i, v := range vals {
			tpl, err := c.template(paths[i], v)
			if err != nil {
				return nil, err
			}
			if tpl != nil && tpl.hasVars() {
				m.vals[i] = arnValue{tpl: tpl}
				continue
			}
			var g glob
			if tpl != nil {
				g, _ = tpl.expandGlob(nil, false)
			} else {
				g = compileGlob(v, false)
			}
			av, ok := arnValueFromToks(g.toks)
			if !ok {
				return nil, bad(i, "an ARN (arn:partition:service:region:account:resource)")
			}
			m.vals[i] = av
		}
		return m, nil
	}
	return nil, fmt.Errorf("iam: internal error: unknown operator family %d", cond.op.fam)
}

// parseBool accepts "true" and "false" in any case.
func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// parseNumber accepts decimal integers and floats (no hex, underscores,
// infinities or NaN). It does not allocate on success.
func parseNumber(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// dateLayouts are the ISO 8601 forms accepted besides RFC 3339.
var dateLayouts = []string{
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
	"20060102T150405Z0700",
	"20060102T150405Z",
}

// parseDate accepts ISO 8601 dates and times (a time without zone is UTC)
// and epoch seconds, with or without a fraction.
func parseDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if c := s[0]; c == '-' || ('0' <= c && c <= '9') {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0), true
		}
		if !strings.ContainsAny(s, "-:T") || (s[0] == '-' && !strings.ContainsAny(s[1:], "-:T")) {
			f, ok := parseNumber(s)
			if !ok || math.Abs(f) > 1e15 {
				return time.Time{}, false
			}
			sec, frac := math.Modf(f)
			return time.Unix(int64(sec), int64(frac*1e9)), true
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// decodeBase64 accepts padded and unpadded standard base64.
func decodeBase64(s string) ([]byte, bool) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	return nil, false
}

// parseCIDR accepts a CIDR block or a single address (a /32 or /128).
func parseCIDR(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() {
			a := p.Addr().Unmap()
			if p.Bits() < 96 {
				return netip.Prefix{}, false
			}
			p = netip.PrefixFrom(a, p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}
