package iam

import (
	"strings"
	"testing"

	"sigil.dev/sigil/internal/authn"
)

func TestParseTemplate(t *testing.T) {
	req := &Request{
		Principal: &authn.Principal{Kind: authn.KindIAMUser, AccountID: "123456789012", ARN: "arn:aws:iam::123456789012:user/alice", ID: "AIDA1", Name: "alice", Tags: map[string]string{"Team": "pay"}},
		Context:   map[string][]string{"aws:SourceIp": {"203.0.113.9"}, "sigil:Multi": {"a", "b"}, "sigil:Empty": {}},
	}
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"${aws:username}", "alice", true},
		{"${AWS:USERNAME}", "alice", true},
		{"${ aws:username }", "alice", true},
		{"u-${aws:userid}-${aws:PrincipalAccount}", "u-AIDA1-123456789012", true},
		{"${aws:PrincipalTag/team}", "pay", true},
		{"${aws:PrincipalType}", "User", true},
		{"${aws:PrincipalArn}", "arn:aws:iam::123456789012:user/alice", true},
		{"${aws:sourceip}", "203.0.113.9", true},
		{"${sigil:Missing}", "", false},
		{"${sigil:Missing, 'dflt'}", "dflt", true},
		{"${sigil:Missing,'dflt'}", "dflt", true},
		{"${sigil:Missing , 'a b' }", "a b", true},
		{"${sigil:Missing, 'it''s'}", "it's", true},
		{"${sigil:Missing, ''}", "", true},
		{"${sigil:Missing, '${aws:username}'}", "${aws:username}", true},
		{"${sigil:Multi}", "", false},
		{"${sigil:Multi, 'one'}", "one", true},
		{"${sigil:Empty, 'none'}", "none", true},
		{"${aws:username, 'x'}", "alice", true},
		{"a${*}b${?}c${$}d", "a*b?c$d", true},
		{"$x ${$}{aws:username}", "$x ${aws:username}", true},
	}
	for _, tc := range tests {
		tpl, err := parseTemplate(tc.in)
		if err != nil {
			t.Errorf("parseTemplate(%q): %v", tc.in, err)
			continue
		}
		got, ok := tpl.expand(req)
		if ok != tc.ok || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if tpl, err := parseTemplate("no variables $ here"); tpl != nil || err != nil {
		t.Errorf("plain text gave %v, %v", tpl, err)
	}
}

func TestParseTemplateErrors(t *testing.T) {
	tests := map[string]string{
		"${aws:username":          "no closing",
		"${}":                     "no key name",
		"${ }":                    "no key name",
		"${aws:user name}":        "contains a space",
		"${aws:username, dflt}":   "single quotes",
		"${aws:username, 'dflt}":  "no closing quote",
		"${aws:username, 'a' b}":  "followed by '}'",
		"${*, 'x'}":               "takes no default",
		"${a${b}}":                "contains a space, quote, '$' or '{'",
		"x ${aws:username, 'a'":   "followed by '}'",
		"${aws:username, 'a''}":   "no closing quote",
		"${aws:username,":         "single quotes",
		"${aws:username, 'x''y'":  "followed by '}'",
		"${'quoted'}":             "contains a space, quote",
		"ok ${aws:userid} ${":     "no closing",
		"${aws:PrincipalTag/a b}": "contains a space",
	}
	for in, want := range tests {
		_, err := parseTemplate(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseTemplate(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestDerivedKeys(t *testing.T) {
	session := &authn.Principal{Kind: authn.KindAssumedRole, AccountID: "123456789012", ARN: "arn:aws:sts::123456789012:assumed-role/app-role/pod-1", ID: "AROA1:pod-1", Name: "ignored"}
	root := &authn.Principal{Kind: authn.KindRoot, AccountID: "123456789012", ARN: "arn:aws:iam::123456789012:root", ID: "123456789012"}
	tests := []struct {
		p    *authn.Principal
		key  string
		want string
		ok   bool
	}{
		{session, "aws:PrincipalArn", "arn:aws:iam::123456789012:role/app-role", true},
		{session, "aws:PrincipalType", "AssumedRole", true},
		{session, "aws:username", "", false},
		{session, "aws:userid", "AROA1:pod-1", true},
		{session, "aws:PrincipalTag/x", "", false},
		{root, "aws:PrincipalType", "Account", true},
		{root, "aws:PrincipalArn", "arn:aws:iam::123456789012:root", true},
		{root, "aws:principalaccount", "123456789012", true},
		{root, "aws:SourceIp", "", false},
	}
	for _, tc := range tests {
		k := newCondKey(tc.key)
		v, ok := lookup(&Request{Principal: tc.p}, &k)
		got := ""
		if ok && v.n() == 1 {
			got = v.at(0)
		}
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s of %s = %q, %v; want %q, %v", tc.key, tc.p.ARN, got, ok, tc.want, tc.ok)
		}
	}
	k := newCondKey("aws:username")
	if _, ok := lookup(&Request{}, &k); ok {
		t.Error("a request without principal has aws:username")
	}
}

func TestLookupAmbiguousSpellingIsStable(t *testing.T) {
	req := &Request{
		Context:   map[string][]string{"aws:SourceIp": {"10.0.0.1"}, "AWS:SOURCEIP": {"10.0.0.2"}, "Aws:SourceIP": {"10.0.0.3"}},
		Principal: &authn.Principal{Kind: authn.KindIAMUser, Tags: map[string]string{"team": "a", "TEAM": "b"}},
	}
	ip := newCondKey("aws:sourceip")
	tag := newCondKey("aws:PrincipalTag/Team")
	for range 50 {
		if v, ok := lookup(req, &ip); !ok || v.at(0) != "10.0.0.2" {
			t.Fatalf("aws:sourceip = %v, %v; want the value of the smallest spelling", v, ok)
		}
		if v, ok := lookup(req, &tag); !ok || v.at(0) != "b" {
			t.Fatalf("aws:PrincipalTag/Team = %v, %v; want the value of the smallest spelling", v, ok)
		}
	}
	exact := newCondKey("aws:SourceIp")
	if v, _ := lookup(req, &exact); v.at(0) != "10.0.0.1" {
		t.Errorf("the exact spelling lost: %v", v)
	}
}
