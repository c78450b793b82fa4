package secrets

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// seeded makes the randomness deterministic so statistical tests cannot
// flake.
func seeded(seed byte) envOption {
	return func(c *Config) {
		var s [32]byte
		s[0] = seed
		c.Rand = rand.NewChaCha8(s)
	}
}

func (e *env) password(req map[string]any) string {
	e.t.Helper()
	return e.ok("GetRandomPassword", req)["RandomPassword"].(string)
}

func TestGetRandomPasswordOptions(t *testing.T) {
	e := newEnv(t, seeded(1))
	has := func(pw, class string) bool { return strings.ContainsAny(pw, class) }
	tests := []struct {
		name     string
		req      map[string]any
		length   int
		never    string   // characters that must not appear
		always   []string // classes each password must contain
		someTime string   // characters that must appear in some password
	}{
		{"defaults", map[string]any{}, 32, " ", []string{classUpper, classLower, classDigits, classPunctuation}, ""},
		{"length", map[string]any{"PasswordLength": 4096}, 4096, " ", []string{classUpper, classLower, classDigits, classPunctuation}, ""},
		{"length 1 without requirements", map[string]any{"PasswordLength": 1, "RequireEachIncludedType": false}, 1, " ", nil, ""},
		{"exactly one per class", map[string]any{"PasswordLength": 4}, 4, " ", []string{classUpper, classLower, classDigits, classPunctuation}, ""},
		{"no numbers", map[string]any{"ExcludeNumbers": true}, 32, classDigits, []string{classUpper, classLower, classPunctuation}, ""},
		{"no punctuation", map[string]any{"ExcludePunctuation": true}, 32, classPunctuation, []string{classUpper, classLower, classDigits}, ""},
		{"no uppercase", map[string]any{"ExcludeUppercase": true}, 32, classUpper, []string{classLower, classDigits, classPunctuation}, ""},
		{"no lowercase", map[string]any{"ExcludeLowercase": true}, 32, classLower, []string{classUpper, classDigits, classPunctuation}, ""},
		{"digits only", map[string]any{"ExcludeUppercase": true, "ExcludeLowercase": true, "ExcludePunctuation": true, "PasswordLength": 6}, 6,
			classUpper + classLower + classPunctuation + " ", []string{classDigits}, ""},
		{"exclude characters", map[string]any{"ExcludeCharacters": `"'\/@ ` + "`" + "0Oo1lI"}, 32, `"'\/@` + "`0Oo1lI ", []string{classUpper, classLower, classDigits, classPunctuation}, ""},
		{"one digit left", map[string]any{"ExcludeCharacters": "012345678", "PasswordLength": 4}, 4, "012345678", []string{"9", classUpper, classLower, classPunctuation}, ""},
		{"include space", map[string]any{"IncludeSpace": true, "PasswordLength": 64}, 64, "", []string{classUpper, classLower, classDigits, classPunctuation}, " "},
		{"space excluded wins", map[string]any{"IncludeSpace": true, "ExcludeCharacters": " "}, 32, " ", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := ""
			for range 200 {
				pw := e.password(tc.req)
				if len(pw) != tc.length {
					t.Fatalf("length %d, want %d", len(pw), tc.length)
				}
				if i := strings.IndexAny(pw, tc.never); i >= 0 {
					t.Fatalf("password %q has excluded character %q", pw, pw[i])
				}
				for _, class := range tc.always {
					if !has(pw, class) {
						t.Fatalf("password %q has no character of %q", pw, class)
					}
				}
				seen += pw
			}
			if tc.someTime != "" && !strings.Contains(seen, tc.someTime) {
				t.Fatalf("no password contains %q", tc.someTime)
			}
		})
	}
}

func TestGetRandomPasswordErrors(t *testing.T) {
	e := newEnv(t)
	for name, req := range map[string]map[string]any{
		"zero length":             {"PasswordLength": 0},
		"too long":                {"PasswordLength": 4097},
		"nothing left":            {"ExcludeUppercase": true, "ExcludeLowercase": true, "ExcludeNumbers": true, "ExcludePunctuation": true},
		"everything excluded":     {"ExcludeCharacters": classUpper + classLower + classDigits + classPunctuation},
		"shorter than the types":  {"PasswordLength": 3},
		"exclusion list too long": {"ExcludeCharacters": strings.Repeat("a", 4097)},
	} {
		t.Run(name, func(t *testing.T) { e.fail("GetRandomPassword", req, codeInvalidParameter) })
	}
	e.fail("GetRandomPassword", `{"PasswordLength": "long"}`, "SerializationException")
}

// TestGetRandomPasswordUniform checks, with a chi-squared test over a fixed
// seed, that characters are drawn uniformly from the pool: modulo bias (94
// characters do not divide 256) would give the first 68 characters half as
// much weight again and fail by orders of magnitude.
func TestGetRandomPasswordUniform(t *testing.T) {
	e := newEnv(t, seeded(7))
	pool := classUpper + classLower + classDigits + classPunctuation
	counts := map[rune]int{}
	total := 0
	for range 100 {
		for _, r := range e.password(map[string]any{"PasswordLength": 1000, "RequireEachIncludedType": false}) {
			counts[r]++
			total++
		}
	}
	if len(counts) != len(pool) {
		t.Fatalf("%d distinct characters, want %d", len(counts), len(pool))
	}
	expected := float64(total) / float64(len(pool))
	chi2 := 0.0
	for _, r := range pool {
		d := float64(counts[r]) - expected
		chi2 += d * d / expected
	}
	// 93 degrees of freedom: the 99.9th percentile is about 135.
	if chi2 > 135 {
		t.Fatalf("chi-squared = %.1f over %d characters: not uniform", chi2, total)
	}
}

func TestUniformIntnLargeRange(t *testing.T) {
	e := newEnv(t, seeded(3))
	u := &uniform{s: e.svc}
	const n = 1000
	counts := make([]int, n)
	for range 200 * n {
		v, err := u.intn(n)
		if err != nil {
			t.Fatal(err)
		}
		counts[v]++
	}
	chi2 := 0.0
	for _, c := range counts {
		d := float64(c) - 200
		chi2 += d * d / 200
	}
	// 999 degrees of freedom: the 99.9th percentile is about 1143.
	if chi2 > 1143 {
		t.Fatalf("chi-squared = %.1f: intn(%d) is not uniform", chi2, n)
	}
}
