package dynamic

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRandomStringNoModuloBias(t *testing.T) {
	// With a 3-letter alphabet, bytes 255 must be rejected (255 = 3*85),
	// so a stream of 255s followed by 0..2 yields exactly "abc".
	src := bytes.NewReader(append(bytes.Repeat([]byte{255}, 20), 0, 1, 2, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))
	got, err := randomString(src, "abc", 3)
	if err != nil {
		t.Fatal(err)
	}
	if got != "abc" {
		t.Fatalf("randomString = %q, want %q", got, "abc")
	}
}

func TestRandomStringShortRead(t *testing.T) {
	if _, err := randomString(bytes.NewReader(nil), "ab", 4); err == nil {
		t.Fatal("randomString succeeded with no randomness")
	}
}

func TestMakeUsername(t *testing.T) {
	tests := []struct {
		name, prefix, role, wantStart string
	}{
		{name: "plain", prefix: "v", role: "my-app/database-credentials", wantStart: "v_my_app_database_credentials_"},
		{name: "long role is cut", prefix: "v", role: strings.Repeat("x", 200), wantStart: "v_xxxx"},
		{name: "hostile role", prefix: "v", role: `"; DROP ROLE x; --`, wantStart: "v_drop_role_x_"},
		{name: "empty", prefix: "", role: "", wantStart: "v_"},
		{name: "unicode", prefix: "V", role: "Ünïcode", wantStart: "v_n_code_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := bytes.NewReader(bytes.Repeat([]byte{7}, 64))
			u, err := makeUsername(src, tt.prefix, tt.role, PostgresMaxIdentifier)
			if err != nil {
				t.Fatal(err)
			}
			if len(u) > PostgresMaxIdentifier {
				t.Errorf("username %q is %d bytes, over %d", u, len(u), PostgresMaxIdentifier)
			}
			if !strings.HasPrefix(u, tt.wantStart) {
				t.Errorf("username %q does not start with %q", u, tt.wantStart)
			}
			if !strings.HasSuffix(u, "_"+strings.Repeat("h", usernameRandom)) {
				t.Errorf("username %q lacks its random suffix", u)
			}
			for _, c := range u {
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
					t.Errorf("username %q has character %q", u, c)
				}
			}
		})
	}
}

func TestPasswordPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    PasswordPolicy
		ok   bool
	}{
		{name: "zero is default", p: PasswordPolicy{}, ok: true},
		{name: "short", p: PasswordPolicy{Length: 8}},
		{name: "one letter", p: PasswordPolicy{Alphabet: "a"}},
		{name: "repeat", p: PasswordPolicy{Alphabet: "aab"}},
		{name: "space", p: PasswordPolicy{Alphabet: "a b"}},
		{name: "punctuation", p: PasswordPolicy{Length: 40, Alphabet: `ab'"\;$`}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.validate()
			if tt.ok != (err == nil) {
				t.Fatalf("validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("validate() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempts int
		want     string
	}{{1, "1s"}, {2, "2s"}, {3, "4s"}, {10, "8m32s"}, {11, "10m0s"}, {50, "10m0s"}}
	for _, tt := range tests {
		if got := backoff(0, 0, tt.attempts).String(); got != tt.want {
			t.Errorf("backoff(attempt %d) = %s, want %s", tt.attempts, got, tt.want)
		}
	}
}
