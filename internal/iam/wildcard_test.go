package iam

import "testing"

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern string
		fold    bool
		text    string
		want    bool
	}{
		{"", false, "", true},
		{"", false, "a", false},
		{"*", false, "", true},
		{"*", false, "anything:at/all", true},
		{"**", false, "x", true},
		{"abc", false, "abc", true},
		{"abc", false, "abcd", false},
		{"abc", false, "ABC", false},
		{"abc", true, "ABC", true},
		{"a*", false, "a", true},
		{"a*", false, "ba", false},
		{"*a", false, "ba", true},
		{"*a", false, "ab", false},
		{"a?c", false, "abc", true},
		{"a?c", false, "ac", false},
		{"a?c", false, "aÄc", true},
		{"a*b*c", false, "a-b-b-c", true},
		{"a*b*c", false, "a-b-b-d", false},
		{"*x*", false, "---x---", true},
		{"*x*", false, "------", false},
		{"a*?", false, "a", false},
		{"a*?", false, "ab", true},
		{"arn:aws:s3:::b/*/x", false, "arn:aws:s3:::b/1/2/x", true},
		{"arn:aws:*:x", false, "arn:aws:s3:us:1:x", true},
		{"*ab*ab*", false, "xabyab", true},
		{"*aab", false, "aaab", true},
		{"secretsmanager:get*", true, "SecretsManager:GetSecretValue", true},
		{"secretsmanager:get*", true, "secretsmanagerx:GetSecretValue", false},
	}
	for _, tc := range tests {
		g := compileGlob(tc.pattern, tc.fold)
		if got := g.match(tc.text); got != tc.want {
			t.Errorf("%q (fold %v) match %q = %v, want %v (shape %d)", tc.pattern, tc.fold, tc.text, got, tc.want, g.shape)
		}
		// The general matcher must agree with every fast path.
		if got := matchToks(g.toks, tc.text, tc.fold); got != tc.want {
			t.Errorf("%q matchToks %q = %v, want %v", tc.pattern, tc.text, got, tc.want)
		}
	}
}

func TestGlobShapes(t *testing.T) {
	tests := map[string]globShape{
		"*":      shapeAny,
		"abc":    shapeExact,
		"abc*":   shapePrefix,
		"*abc":   shapeSuffix,
		"a*c":    shapeGeneral,
		"a?":     shapeGeneral,
		"a**":    shapePrefix,
		"arn:*":  shapePrefix,
		"*a*":    shapeGeneral,
		"":       shapeExact,
		"?":      shapeGeneral,
		"a*b*c*": shapeGeneral,
	}
	for p, want := range tests {
		if got := compileGlob(p, false).shape; got != want {
			t.Errorf("shape of %q = %d, want %d", p, got, want)
		}
	}
}

func TestLiteralTokensAreNotWildcards(t *testing.T) {
	toks := appendLit(tokenize(nil, "pfx/"), "a*?")
	g := globFromToks(toks, false)
	if !g.match("pfx/a*?") {
		t.Error("literal a*? does not match itself")
	}
	if g.match("pfx/abc") {
		t.Error("literal a*? acts as a wildcard")
	}
}

func TestASCIILower(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "abc", "AbC": "abc", "ÄB": "Äb", "S3:Get*": "s3:get*"} {
		if got := asciiLower(in); got != want {
			t.Errorf("asciiLower(%q) = %q, want %q", in, got, want)
		}
	}
}
