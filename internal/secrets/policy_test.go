package secrets

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// policyFiles returns the policy documents under testdata/policies by name.
func policyFiles(t testing.TB) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "policies", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no policy testdata: %v", err)
	}
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = string(b)
	}
	return out
}

func TestCheckPolicyTestdata(t *testing.T) {
	for name, doc := range policyFiles(t) {
		t.Run(name, func(t *testing.T) {
			rep := checkPolicy(doc)
			switch {
			case strings.HasPrefix(name, "ok_"):
				if len(rep.findings) != 0 || rep.malformed != "" || rep.public {
					t.Fatalf("valid policy refused: %+v", rep)
				}
			case strings.HasPrefix(name, "public_"):
				if rep.syntaxError() != "" || !rep.public {
					t.Fatalf("public policy: %+v", rep)
				}
			case strings.HasPrefix(name, "bad_"):
				msg := rep.syntaxError()
				if msg == "" {
					t.Fatalf("malformed policy accepted: %+v", rep)
				}
				if !strings.HasSuffix(msg, ".") || len(msg) > 300 {
					t.Errorf("message %q is not a short sentence", msg)
				}
			default:
				t.Fatalf("testdata file %s has no ok_/public_/bad_ prefix", name)
			}
		})
	}
}

func TestCheckPolicyMessagesPointAtTheProblem(t *testing.T) {
	files := policyFiles(t)
	tests := []struct {
		file string
		want string
	}{
		{"bad_effect_case.json", "Statement[0].Effect"},
		{"bad_no_principal.json", "Statement[0] has no Principal"},
		{"bad_action_format.json", `"GetSecretValue"`},
		{"bad_condition_value.json", "Statement[0].Condition.StringEquals.k"},
		{"bad_duplicate_key.json", `"Version" appears twice`},
		{"bad_duplicate_sid.json", `Statement[1].Sid "A"`},
		{"bad_too_long.json", "limit is 20480"},
		{"bad_too_deep.json", "nested deeper"},
		{"bad_truncated.json", "ends early"},
		{"bad_unknown_element.json", `"Policy"`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			if msg := checkPolicy(files[tc.file]).syntaxError(); !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q does not contain %q", msg, tc.want)
			}
		})
	}
}

func TestPutResourcePolicyRefusesBadTestdata(t *testing.T) {
	e := newEnv(t)
	e.create("s", "v")
	for name, doc := range policyFiles(t) {
		if !strings.HasPrefix(name, "bad_") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			e.fail("PutResourcePolicy", map[string]any{"SecretId": "s", "ResourcePolicy": doc}, codeMalformedPolicy)
		})
	}
	if out := e.ok("GetResourcePolicy", map[string]any{"SecretId": "s"}); out["ResourcePolicy"] != nil {
		t.Fatalf("a refused policy was stored: %v", out)
	}
}

// FuzzCheckPolicy checks that the policy checker never panics, refuses
// everything that is not JSON, and is deterministic.
func FuzzCheckPolicy(f *testing.F) {
	for _, doc := range policyFiles(f) {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		rep := checkPolicy(doc)
		if rep.malformed == "" && utf8.RuneCountInString(doc) <= maxPolicyLen && !json.Valid([]byte(doc)) {
			t.Fatalf("invalid JSON %q accepted as a document", doc)
		}
		if rep.syntaxError() == "" && rep.malformed == "" {
			// An accepted document must survive a strict re-parse.
			if _, err := parseStrictJSON(doc); err != nil {
				t.Fatalf("accepted %q but re-parse fails: %v", doc, err)
			}
		}
		again := checkPolicy(doc)
		if again.malformed != rep.malformed || len(again.findings) != len(rep.findings) || again.public != rep.public {
			t.Fatalf("checkPolicy is not deterministic for %q", doc)
		}
	})
}
