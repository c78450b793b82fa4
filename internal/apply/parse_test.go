package apply

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testEnv is the environment Parse sees in these tests.
func testEnv(vals map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vals[k]
		return v, ok
	}
}

const envValue = "env-value-7d1c0e"

func parseTestdata(t *testing.T, name string) (*File, error) {
	t.Helper()
	fh, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	return Parse(fh, "testdata", testEnv(map[string]string{"APPLY_TEST_VALUE": envValue}))
}

func TestParseBadFiles(t *testing.T) {
	tests := []struct {
		file string
		line int
		want string
	}{
		{"bad_unknown_key.yaml", 5, `unknown key "maxSession" in a role`},
		{"bad_unknown_top_key.yaml", 2, `unknown key "role" at the top level`},
		{"bad_version.yaml", 2, "version 2 is not supported"},
		{"bad_no_version.yaml", 1, `"version: 1"`},
		{"bad_duplicate.yaml", 4, `user "CI" is declared twice (first at line 3)`},
		{"bad_policy_ref.yaml", 5, `attached policy "nope" is neither an ARN nor the name of a managed policy`},
		{"bad_placeholder.yaml", 5, "unknown placeholder"},
		{"bad_document_json.yaml", 4, "not valid JSON"},
		{"bad_document_merge.yaml", 7, "merge keys"},
		{"bad_document_list.yaml", 5, "must be a map or a string"},
		{"bad_missing_document.yaml", 3, "trustPolicy is required"},
		{"bad_two_values.yaml", 5, "either valueFile or valueEnv"},
		{"bad_missing_value_file.yaml", 4, "does-not-exist.json"},
		{"bad_env_unset.yaml", 4, "APPLY_TEST_UNSET is not set"},
		{"bad_syntax.yaml", 2, "did not find expected"},
		{"bad_two_documents.yaml", 2, "more than one YAML document"},
		{"bad_thumbprint.yaml", 4, "40 hex digits"},
		{"bad_max_session.yaml", 5, "between 3600 and 43200"},
		{"bad_oidc_url.yaml", 3, "must be https://"},
		{"bad_template_later.yaml", 4, "names no secret declared before this one"},
		{"bad_template_unknown.yaml", 4, "placeholder 1 of the value template"},
		{"bad_empty.yaml", 0, "the file is empty"},
		{"bad_roles_not_list.yaml", 3, "a list of roles"},
		{"bad_tags.yaml", 6, `the value of tag "nested" must be a single value`},
		{"bad_names.yaml", 3, `name "has space" may hold only`},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			_, err := parseTestdata(t, tt.file)
			checkBadFile(t, err, tt.line, tt.want)
		})
	}
	checkEveryBadFile(t, "testdata/bad_*.yaml", seen)
}

// checkBadFile asserts that err is an ErrInvalidFile *FileError with a
// problem at line (0: the file as a whole) whose message holds want, that
// the error names that line, and that it holds neither a Go type name nor
// any of leaks.
func checkBadFile(t *testing.T, err error, line int, want string, leaks ...string) {
	t.Helper()
	var fe *FileError
	if !errors.Is(err, ErrInvalidFile) || !errors.As(err, &fe) {
		t.Fatalf("Parse: %v, want an ErrInvalidFile *FileError", err)
	}
	found := false
	for _, p := range fe.Problems {
		if p.Line == line && strings.Contains(p.Message, want) {
			found = true
		}
	}
	if !found {
		t.Fatalf("problems %v: want one at line %d containing %q", fe.Problems, line, want)
	}
	if line > 0 && !strings.Contains(err.Error(), fmt.Sprintf("line %d: ", line)) {
		t.Errorf("message %q does not name line %d", err, line)
	}
	for _, leak := range append([]string{"apply.raw", "apply.y"}, leaks...) {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("message holds %q: %q", leak, err)
		}
	}
}

// checkEveryBadFile fails for each file matching glob that a table of bad
// files did not test (seen holds the base names it did).
func checkEveryBadFile(t *testing.T, glob string, seen map[string]bool) {
	t.Helper()
	files, _ := filepath.Glob(glob)
	if len(files) == 0 {
		t.Fatalf("no files match %s", glob)
	}
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no case in this table", f)
		}
	}
}

// TestParseReportsEveryProblem checks that problems are not reported one
// run at a time.
func TestParseReportsEveryProblem(t *testing.T) {
	_, err := parseTestdata(t, "bad_names.yaml")
	var fe *FileError
	if !errors.As(err, &fe) || len(fe.Problems) != 3 {
		t.Fatalf("Parse: %v, want 3 problems", err)
	}
	for i, line := range []int{3, 4, 6} {
		if fe.Problems[i].Line != line {
			t.Errorf("problem %d at line %d, want %d (line order)", i, fe.Problems[i].Line, line)
		}
	}
}

func TestParseFull(t *testing.T) {
	f, err := parseTestdata(t, "full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.OIDCProviders) != 1 || len(f.ManagedPolicies) != 2 || len(f.Roles) != 1 || len(f.Users) != 1 || len(f.Secrets) != 4 {
		t.Fatalf("parsed %d/%d/%d/%d/%d objects", len(f.OIDCProviders), len(f.ManagedPolicies), len(f.Roles), len(f.Users), len(f.Secrets))
	}
	o := f.OIDCProviders[0]
	if o.Thumbprints[0] != "9e99a48a9960b14926bb7f3b02e22da2b0ab7280" || len(o.ClientIDs) != 2 || o.Tags["team"] != "platform" || o.Line != 3 {
		t.Errorf("OIDC provider: %+v", o)
	}
	read, boundary := f.ManagedPolicies[0], f.ManagedPolicies[1]
	if read.Path != "/app/" || boundary.Path != "/" {
		t.Errorf("paths %q, %q", read.Path, boundary.Path)
	}
	// A JSON string is kept as written; a YAML map becomes JSON in key
	// order, with unquoted dates as strings and YAML booleans and numbers
	// as JSON's.
	if want := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`; string(read.Document) != want {
		t.Errorf("JSON document: %s", read.Document)
	}
	wantBoundary := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","iam:Get*"],"Resource":"*",` +
		`"Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}}]}`
	if string(boundary.Document) != wantBoundary {
		t.Errorf("YAML document:\n got %s\nwant %s", boundary.Document, wantBoundary)
	}
	r := f.Roles[0]
	if r.MaxSessionDuration != 7200 || r.PermissionsBoundary != "boundary" || r.Path != "/app/" ||
		len(r.InlinePolicies) != 1 || r.InlinePolicies[0].Name != "extra" ||
		strings.Join(r.AttachedPolicies, ",") != "read,arn:aws:iam::{{account}}:policy/elsewhere" || r.Tags["env"] != "{{region}}" {
		t.Errorf("role: %+v", r)
	}
	if !strings.Contains(string(r.TrustPolicy), `"Federated":"arn:aws:iam::{{account}}:oidc-provider/issuer.example.com/cluster"`) {
		t.Errorf("trust policy: %s", r.TrustPolicy)
	}
	if u := f.Users[0]; u.Path != "/" || len(u.Tags) != 0 {
		t.Errorf("user: %+v", u)
	}
	plain, file, pointer, empty := f.Secrets[0], f.Secrets[1], f.Secrets[2], f.Secrets[3]
	if string(plain.Value.b) != envValue || plain.ValueSource != "environment variable APPLY_TEST_VALUE" {
		t.Errorf("env value: source %q", plain.ValueSource)
	}
	if string(file.Value.b) != "file-value-0123\n" || file.KmsKeyID != "alias/custom" || file.ResourcePolicy == nil {
		t.Errorf("file value: %+v", file)
	}
	if !pointer.ValueTemplate || !strings.Contains(string(pointer.Value.b), "{{secretArn:app/from-file}}") {
		t.Errorf("template: %+v", pointer)
	}
	if empty.Value != nil || empty.ResourcePolicy != nil {
		t.Errorf("secret without value: %+v", empty)
	}
}

func TestParseMinimal(t *testing.T) {
	f, err := parseTestdata(t, "minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.OIDCProviders)+len(f.ManagedPolicies)+len(f.Roles)+len(f.Users)+len(f.Secrets) != 0 {
		t.Errorf("minimal file has objects: %+v", f)
	}
}

func TestParseExample(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "ecommerce")
	fh, err := os.Open(filepath.Join(dir, "sigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := Parse(fh, dir, testEnv(map[string]string{"SHOP_DB_ADMIN_PASSWORD": exampleAdminPassword}))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Roles) != 1 || f.Roles[0].Name != "application-role" || len(f.Secrets) != 1 || len(f.Databases) != 1 || len(f.DynamicSecrets) != 1 {
		t.Fatalf("example: %+v", f)
	}
}

// TestValueNeverPrints formats a parsed file every way a program might
// and searches the output for the values.
func TestValueNeverPrints(t *testing.T) {
	f, err := parseTestdata(t, "full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		fmt.Fprintf(&out, verb+"\n", f)
		for _, s := range f.Secrets {
			fmt.Fprintf(&out, verb+"\n", s)
			fmt.Fprintf(&out, verb+"\n", s.Value)
		}
	}
	js, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(js)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("file", "file", f, "secret", f.Secrets[0], "value", f.Secrets[0].Value)
	slog.New(slog.NewTextHandler(&out, nil)).Info("file", "value", f.Secrets[1].Value)
	for _, v := range []string{envValue, "file-value-0123", fmt.Sprintf("%x", envValue), fmt.Sprintf("%x", "file-value-0123")} {
		if strings.Contains(out.String(), v) {
			t.Fatalf("a secret value was printed (%q):\n%s", v, out.String())
		}
	}
	if !strings.Contains(out.String(), redacted) {
		t.Fatal("values did not print as REDACTED")
	}
}

// TestDocumentConversion covers scalars a YAML map may hold.
func TestDocumentConversion(t *testing.T) {
	tests := []struct {
		name, yaml, want, err string
	}{
		{"strings and numbers", "document: {a: x, b: 1, c: 1.5, d: -2, e: null, f: true}", `{"a":"x","b":1,"c":1.5,"d":-2,"e":null,"f":true}`, ""},
		{"date stays a string", "document: {Version: 2012-10-17}", `{"Version":"2012-10-17"}`, ""},
		{"hex int", "document: {n: 0x10}", `{"n":16}`, ""},
		{"no html escaping", `document: {c: "a&b<c>"}`, `{"c":"a&b<c>"}`, ""},
		{"alias", "document: {a: &x [1, 2], b: *x}", `{"a":[1,2],"b":[1,2]}`, ""},
		{"infinity", "document: {n: .inf}", "", "not a number JSON can hold"},
		{"binary", "document: {b: !!binary aGk=}", "", "no JSON form"},
		{"duplicate key", "document: {a: 1, a: 2}", "", "appears twice"},
		{"string not object", `document: '[1]'`, "", "must be a JSON object"},
		{"trailing text", `document: '{} {}'`, "", "text after its JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\nmanagedPolicies:\n  - name: p\n    " + tt.yaml + "\n"
			f, err := Parse(strings.NewReader(src), t.TempDir(), nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "line 4") {
					t.Fatalf("Parse: %v, want an error at line 4 containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.ManagedPolicies[0].Document); got != tt.want {
				t.Errorf("document %s, want %s", got, tt.want)
			}
		})
	}
}

// TestAliasBombIsBounded checks that YAML aliases cannot expand a document
// without bound.
func TestAliasBombIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nmanagedPolicies:\n  - name: p\n    document:\n      a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "      a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err := Parse(strings.NewReader(b.String()), t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Parse: %v, want a size error", err)
	}
}

func TestSameDocument(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{`{"a":1,"b":[1,2]}`, "{\n  \"b\": [1, 2],\n  \"a\": 1\n}", true},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{`{"a":"x"}`, `{"a":["x"]}`, false},
		{`not json`, `not json`, true},
	}
	for _, tt := range tests {
		if got := sameDocument(tt.a, tt.b); got != tt.same {
			t.Errorf("sameDocument(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
}

// FuzzParse checks that Parse never panics, that every accepted document
// is one JSON object, and that no accepted placeholder is malformed.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data), "testdata", testEnv(map[string]string{"APPLY_TEST_VALUE": envValue}))
		if err != nil {
			if !errors.Is(err, ErrInvalidFile) {
				t.Fatalf("error %v does not wrap ErrInvalidFile", err)
			}
			return
		}
		var docs []Document
		for _, mp := range file.ManagedPolicies {
			docs = append(docs, mp.Document)
		}
		for _, r := range file.Roles {
			docs = append(docs, r.TrustPolicy)
			for _, ip := range r.InlinePolicies {
				docs = append(docs, ip.Document)
			}
		}
		for _, s := range file.Secrets {
			if s.ResourcePolicy != nil && *s.ResourcePolicy != "" {
				docs = append(docs, *s.ResourcePolicy)
			}
		}
		for _, d := range docs {
			if err := checkJSONObject(string(d)); err != nil {
				t.Fatalf("accepted document is not a JSON object: %v: %s", err, d)
			}
			if err := checkPlaceholders(string(d)); err != nil {
				t.Fatalf("accepted document has a bad placeholder: %s", d)
			}
		}
	})
}
