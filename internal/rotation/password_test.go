package rotation_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/rotation"
)

func TestPasswordPolicyGenerate(t *testing.T) {
	const (
		upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		lower = "abcdefghijklmnopqrstuvwxyz"
		digit = "0123456789"
		punct = "!$()*,-._~"
	)
	tests := []struct {
		name     string
		policy   rotation.PasswordPolicy
		length   int
		allowed  string
		required []string
	}{
		{"zero value", rotation.PasswordPolicy{}, 32, upper + lower + digit + punct, []string{upper, lower, digit, punct}},
		{"long", rotation.PasswordPolicy{Length: 200}, 200, upper + lower + digit + punct, []string{upper, lower, digit, punct}},
		{"letters and digits", rotation.PasswordPolicy{Length: 20, ExcludePunctuation: true}, 20, upper + lower + digit, []string{upper, lower, digit}},
		{"digits only", rotation.PasswordPolicy{Length: 16, ExcludeUppercase: true, ExcludeLowercase: true, ExcludePunctuation: true}, 16, digit, []string{digit}},
		{"excluded characters", rotation.PasswordPolicy{Length: 40, ExcludeCharacters: "aeiouAEIOU01!"}, 40,
			"BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz23456789$()*,-._~", nil},
		{"tiny class is still required", rotation.PasswordPolicy{Length: 8, ExcludeCharacters: "ABCDEFGHIJKLMNOPQRSTUVWXY" + "!$()*,-._"}, 8,
			"Z~" + lower + digit, []string{"Z", "~", lower, digit}},
		{"missing types allowed", rotation.PasswordPolicy{Length: 8, AllowMissingTypes: true}, 8, upper + lower + digit + punct, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				pw, err := tc.policy.Generate(rand.Reader)
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if len(pw) != tc.length {
					t.Fatalf("length %d, want %d", len(pw), tc.length)
				}
				for _, c := range pw {
					if !strings.ContainsRune(tc.allowed, c) {
						t.Fatalf("character %q is not allowed", c)
					}
				}
				for _, cl := range tc.required {
					if !strings.ContainsAny(pw, cl) {
						t.Fatalf("no character of %q", cl)
					}
				}
			}
		})
	}
}

func TestPasswordPolicyInvalid(t *testing.T) {
	tests := []struct {
		name   string
		policy rotation.PasswordPolicy
	}{
		{"too short", rotation.PasswordPolicy{Length: 7}},
		{"too long", rotation.PasswordPolicy{Length: rotation.MaxPasswordLength + 1}},
		{"negative", rotation.PasswordPolicy{Length: -1}},
		{"nothing left", rotation.PasswordPolicy{ExcludeUppercase: true, ExcludeLowercase: true, ExcludeNumbers: true, ExcludePunctuation: true}},
		{"one character left", rotation.PasswordPolicy{ExcludeUppercase: true, ExcludeLowercase: true, ExcludePunctuation: true, ExcludeCharacters: "012345678"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.policy.Validate(); !errors.Is(err, rotation.ErrInvalidRotator) {
				t.Fatalf("Validate = %v, want ErrInvalidRotator", err)
			}
			if _, err := tc.policy.Generate(rand.Reader); !errors.Is(err, rotation.ErrInvalidRotator) {
				t.Fatalf("Generate = %v, want ErrInvalidRotator", err)
			}
		})
	}
}

func TestPasswordGenerateFailsWithoutRandomness(t *testing.T) {
	if _, err := (rotation.PasswordPolicy{}).Generate(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Fatal("Generate succeeded with 10 bytes of randomness")
	}
}

// TestPasswordDeterministic checks that the password is a function of the
// random bytes only, so an injected source makes tests reproducible, and
// that different bytes give different passwords.
func TestPasswordDeterministic(t *testing.T) {
	seed := func(b byte) []byte { return bytes.Repeat([]byte{b, 0x17, 0x99, 0x42, 0x03}, 4000) }
	p := rotation.PasswordPolicy{AllowMissingTypes: true}
	a1, err1 := p.Generate(bytes.NewReader(seed(1)))
	a2, err2 := p.Generate(bytes.NewReader(seed(1)))
	b, err3 := p.Generate(bytes.NewReader(seed(2)))
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if a1 != a2 || a1 == b {
		t.Fatalf("same seed gave %q and %q; other seed gave %q", a1, a2, b)
	}
}
