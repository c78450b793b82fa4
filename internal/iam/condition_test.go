package iam

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	ref := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"2026-03-01T12:00:00Z", "2026-03-01T12:00:00.000Z", "2026-03-01T13:00:00+01:00",
		"2026-03-01T12:00:00+0000", "2026-03-01T12:00:00", "2026-03-01T12:00Z", "2026-03-01T12:00",
		"20260301T120000Z", "1772366400", "1772366400.0",
	} {
		got, ok := parseDate(s)
		if !ok || !got.Equal(ref) {
			t.Errorf("parseDate(%q) = %v, %v; want %v", s, got, ok, ref)
		}
	}
	if got, ok := parseDate("2026-03-01"); !ok || !got.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("parseDate(date only) = %v, %v", got, ok)
	}
	for _, s := range []string{"", "tomorrow", "2026-13-01", "2026-03-01T25:00:00Z", "1e400", "12:00", "--1", "0x10"} {
		if got, ok := parseDate(s); ok {
			t.Errorf("parseDate(%q) = %v, want failure", s, got)
		}
	}
}

func TestParseNumber(t *testing.T) {
	for s, want := range map[string]float64{"0": 0, "-3": -3, "2.5": 2.5, "1e3": 1000, "+7": 7} {
		if got, ok := parseNumber(s); !ok || got != want {
			t.Errorf("parseNumber(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "abc", "0x10", "1_000", "NaN", "Inf", "1e999", " 1"} {
		if _, ok := parseNumber(s); ok {
			t.Errorf("parseNumber(%q) succeeded", s)
		}
	}
}

func TestParseCIDR(t *testing.T) {
	for s, want := range map[string]string{
		"10.0.0.1":            "10.0.0.1/32",
		"10.1.2.3/8":          "10.0.0.0/8",
		"2001:db8::/32":       "2001:db8::/32",
		"::1":                 "::1/128",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
	} {
		p, ok := parseCIDR(s)
		if !ok || p.String() != want {
			t.Errorf("parseCIDR(%q) = %v, %v; want %s", s, p, ok, want)
		}
	}
	for _, s := range []string{"", "10.0.0.0/33", "host", "fe80::1%eth0", "::ffff:10.0.0.0/64", "10.0.0"} {
		if p, ok := parseCIDR(s); ok {
			t.Errorf("parseCIDR(%q) = %v, want failure", s, p)
		}
	}
}

func TestArnValueFromToks(t *testing.T) {
	av, ok := arnValueFromToks(compileGlob("arn:aws:sns:*:1234:topic:a*", false).toks)
	if !ok {
		t.Fatal("split failed")
	}
	var comps [6]string
	for s, want := range map[string]bool{
		"arn:aws:sns:us-east-1:1234:topic:abc": true,
		"arn:aws:sns::1234:topic:a":            true,
		"arn:aws:sns:us:east:1234:topic:a":     false,
		"arn:aws:sns:us-east-1:1234:topic:b":   false,
		"arn:aws:sns:us-east-1:1234:topic:a:b": true,
	} {
		if !splitARN6(s, &comps) {
			t.Fatalf("splitARN6(%q) failed", s)
		}
		if got := av.match(&comps); got != want {
			t.Errorf("match %q = %v, want %v", s, got, want)
		}
	}
	if _, ok := arnValueFromToks(compileGlob("arn:aws:s3", false).toks); ok {
		t.Error("a three-component ARN split into six")
	}
	if splitARN6("arn:aws:s3::", &comps) {
		t.Error("splitARN6 accepted four colons")
	}
}

func TestParseOperator(t *testing.T) {
	tests := []struct {
		name     string
		set      setQual
		ifExists bool
		negated  bool
		fam      family
	}{
		{"StringEquals", setNone, false, false, famString},
		{"ForAnyValue:StringNotLikeIfExists", setAnyValue, true, true, famString},
		{"ForAllValues:ArnNotEquals", setAllValues, false, true, famArn},
		{"NotIpAddressIfExists", setNone, true, true, famIP},
		{"DateGreaterThanEqualsIfExists", setNone, true, false, famDate},
		{"BinaryEqualsIfExists", setNone, true, false, famBinary},
		{"Null", setNone, false, false, famNull},
	}
	for _, tc := range tests {
		info, set, ifExists, err := parseOperator(tc.name)
		if err != nil || set != tc.set || ifExists != tc.ifExists || info.negated != tc.negated || info.fam != tc.fam {
			t.Errorf("parseOperator(%q) = %+v, %d, %v, %v", tc.name, info, set, ifExists, err)
		}
	}
	for _, bad := range []string{"StringEqual", "IfExists", "ForAnyValue:", "forallvalues:StringEquals", "StringEqualsIfExistsIfExists", "ForAnyValue:ForAllValues:StringEquals"} {
		if _, _, _, err := parseOperator(bad); err == nil {
			t.Errorf("parseOperator(%q) succeeded", bad)
		}
	}
}
