package iam

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestParseIAMARN(t *testing.T) {
	tests := []struct {
		arn  string
		ok   bool
		want iamResource
	}{
		{"arn:aws:iam::123456789012:role/app", true, iamResource{"role", "/", "app"}},
		{"arn:aws:iam::123456789012:role/a/b/app", true, iamResource{"role", "/a/b/", "app"}},
		{"arn:aws:iam::123456789012:user/ci", true, iamResource{"user", "/", "ci"}},
		{"arn:aws:iam::123456789012:policy/team/read", true, iamResource{"policy", "/team/", "read"}},
		{"arn:aws:iam::123456789012:oidc-provider/issuer.example.com/id/X", true, iamResource{"oidc-provider", "", "issuer.example.com/id/X"}},
		{"arn:aws:iam::999999999999:role/app", false, iamResource{}},
		{"arn:aws:iam::aws:policy/ReadOnlyAccess", false, iamResource{}},
		{"arn:aws:sts::123456789012:assumed-role/r/s", false, iamResource{}},
		{"arn:aws:iam::123456789012:group/g", false, iamResource{}},
		{"arn:aws:iam::123456789012:role/", false, iamResource{}},
		{"arn:aws:iam::123456789012:role/a//b", false, iamResource{}},
		{"arn:aws:iam::123456789012:role/a/", false, iamResource{}},
		{"arn:aws:iam::123456789012:role", false, iamResource{}},
		{"", false, iamResource{}},
	}
	for _, tt := range tests {
		t.Run(tt.arn, func(t *testing.T) {
			got, ok := parseIAMARN(testAccount, tt.arn)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("parseIAMARN = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzParseIAMARN checks that an ARN that parses is exactly the ARN its
// parts build, so two spellings never name one entity.
func FuzzParseIAMARN(f *testing.F) {
	for _, s := range []string{
		"arn:aws:iam::123456789012:role/app",
		"arn:aws:iam::123456789012:role/a/b/app",
		"arn:aws:iam::123456789012:policy/p",
		"arn:aws:iam::123456789012:user/x/y",
		"arn:aws:iam::123456789012:oidc-provider/h/p",
		"arn:aws:iam::123456789012:role/a//b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arn string) {
		res, ok := parseIAMARN(testAccount, arn)
		if !ok {
			return
		}
		var rebuilt string
		switch res.Type {
		case "role":
			rebuilt = entityARN(testAccount, RoleEntity, res.Path, res.Name)
		case "user":
			rebuilt = entityARN(testAccount, UserEntity, res.Path, res.Name)
		case "policy":
			rebuilt = policyARN(testAccount, res.Path, res.Name)
		case "oidc-provider":
			rebuilt = oidcARN(testAccount, res.Name)
		default:
			t.Fatalf("unexpected type %q", res.Type)
		}
		if rebuilt != arn {
			t.Fatalf("%q parsed to %+v, which rebuilds as %q", arn, res, rebuilt)
		}
		if res.Type != "oidc-provider" && (strings.Contains(res.Name, "/") || !strings.HasPrefix(res.Path, "/") || !strings.HasSuffix(res.Path, "/")) {
			t.Fatalf("%q parsed to %+v", arn, res)
		}
	})
}

func TestNormalizeOIDCURL(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://issuer.example.com", "issuer.example.com", true},
		{"https://oidc.eks.us-east-1.amazonaws.com/id/ABC", "oidc.eks.us-east-1.amazonaws.com/id/ABC", true},
		{"https://127.0.0.1:8443/realms/x", "127.0.0.1:8443/realms/x", true},
		{"http://issuer.example.com", "", false},
		{"HTTPS://issuer.example.com", "", false},
		{"https://issuer.example.com?x=1", "", false},
		{"https://issuer.example.com/?", "", false},
		{"https://issuer.example.com#f", "", false},
		{"https://user@issuer.example.com", "", false},
		{"https://", "", false},
		{"https:issuer", "", false},
		{"issuer.example.com", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := normalizeOIDCURL(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("normalizeOIDCURL(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestNewUniqueID(t *testing.T) {
	// Every alphabet symbol is reachable and nothing else appears.
	r := bytes.NewReader(bytes.Repeat([]byte{0, 1, 31, 32, 255, 200, 7}, 10))
	seen := map[rune]bool{}
	for i := 0; i < 4; i++ {
		id, err := newUniqueID(r, roleIDPrefix)
		mustNoErr(t, err)
		if len(id) != 21 || !strings.HasPrefix(id, "AROA") || strings.Trim(id[4:], idAlphabet) != "" {
			t.Fatalf("id %q", id)
		}
		for _, c := range id[4:] {
			seen[c] = true
		}
	}
	for _, c := range "AB7" {
		if !seen[c] {
			t.Fatalf("symbol %c never drawn: %v", c, seen)
		}
	}
	if _, err := newUniqueID(bytes.NewReader(make([]byte, 5)), userIDPrefix); err == nil {
		t.Fatal("short randomness accepted")
	}
}

func TestTags(t *testing.T) {
	have := []Tag{{"b", "1"}, {"a", "2"}}
	got := mergeTags(have, []Tag{{"B", "3"}, {"c", "4"}})
	if fmt.Sprint(got) != "[{B 3} {a 2} {c 4}]" {
		t.Fatalf("mergeTags = %v", got)
	}
	if fmt.Sprint(have) != "[{b 1} {a 2}]" {
		t.Fatalf("mergeTags changed its input: %v", have)
	}
	if got := removeTags(got, []string{"A", "zz"}); fmt.Sprint(got) != "[{B 3} {c 4}]" {
		t.Fatalf("removeTags = %v", got)
	}
}

func TestPageOf(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	var got []string
	p := Page{MaxItems: 2}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		page, next, err := pageOf(items, id, p)
		mustNoErr(t, err)
		got = append(got, page...)
		if next == "" {
			break
		}
		p.Marker = next
	}
	if fmt.Sprint(got) != "[a b c d e]" {
		t.Fatalf("pages %v", got)
	}
	all, next, err := pageOf(items, id, Page{})
	if err != nil || next != "" || len(all) != 5 {
		t.Fatalf("default page %v %q %v", all, next, err)
	}
	if _, _, err := pageOf(items, id, Page{Marker: "***"}); !isInvalidInput(err) {
		t.Fatalf("bad marker: %v", err)
	}
}

func isInvalidInput(err error) bool {
	ee, ok := err.(*EntityError)
	return ok && ee.Err == ErrInvalidEntityInput
}

func TestPolicyChars(t *testing.T) {
	if n := policyChars("{ \"a\" :\n\t\"b c\" }\r"); n != 10 {
		t.Fatalf("policyChars = %d", n)
	}
}
