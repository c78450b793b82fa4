package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
)

// rotatorHook is a webhook endpoint that records, per path, whether each
// request's signature verified under the key set for that path. It
// answers 503, so that rotations stay pending.
type rotatorHook struct {
	*httptest.Server
	mu       sync.Mutex
	keys     map[string][]byte
	verified map[string]int
	rejected map[string]int
}

func newRotatorHook(t *testing.T) *rotatorHook {
	t.Helper()
	h := &rotatorHook{keys: map[string][]byte{}, verified: map[string]int{}, rejected: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if rotation.VerifySignature(h.keys[r.URL.Path], r.Header.Get(rotation.SignatureHeader), body, time.Now(), rotation.DefaultMaxSkew) == nil {
			h.verified[r.URL.Path]++
		} else {
			h.rejected[r.URL.Path]++
		}
		http.Error(w, "not now", http.StatusServiceUnavailable)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *rotatorHook) setKey(path string, key []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys[path] = key
}

func (h *rotatorHook) counts(path string) (verified, rejected int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.verified[path], h.rejected[path]
}

// generatedKey is the key line put prints for a generated key.
var generatedKey = regexp.MustCompile(`(?m)^  ([A-Za-z0-9+/]{43}=)$`)

func TestRotatorCmd(t *testing.T) {
	srv, conn := applyTestServer(t)
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	hook := newRotatorHook(t)
	dir := t.TempDir()
	fileKey := []byte("file-webhook-key-0123456789abcdef")
	fileKeyB64 := base64.StdEncoding.EncodeToString(fileKey)
	writeFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile := writeFile("hook.key", fileKeyB64+"\n")
	var outputs strings.Builder // everything but put's own output
	cli := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		stdout, stderr, err := runCmd(t, newRotatorCmd(), append(args, conn...)...)
		if err != nil {
			stderr += err.Error()
		}
		return stdout + stderr, err
	}
	must := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := cli(t, args...)
		if err != nil {
			t.Fatalf("%v: %v\nserver log tail:\n%s", args, err, tail(srv.Logs.String()))
		}
		return out
	}

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"missing type", []string{"put", "r"}, "missing --type"},
			{"unknown type", []string{"put", "r", "--type", "lambda"}, `--type "lambda": want "random" or "webhook"`},
			{"webhook without url", []string{"put", "r", "--type", "webhook"}, "missing --url"},
			{"ftp url", []string{"put", "r", "--type", "webhook", "--url", "ftp://rotate.example.com/x"}, "--url: want an absolute http or https URL"},
			{"relative url", []string{"put", "r", "--type", "webhook", "--url", "rotate.example.com/x"}, "--url: want an absolute http or https URL"},
			{"url with user", []string{"put", "r", "--type", "webhook", "--url", "https://u:p@rotate.example.com/x"}, "--url: want an absolute http or https URL"},
			{"random flag on a webhook", []string{"put", "r", "--type", "webhook", "--url", "https://x.example", "--length", "40"}, "--length: only for --type random"},
			{"webhook flag on random", []string{"put", "r", "--type", "random", "--url", "https://x.example"}, "--url: only for --type webhook"},
			{"timeout too long", []string{"put", "r", "--type", "webhook", "--url", "https://x.example", "--timeout", "10m"}, "--timeout 10m0s: want at most 5m0s"},
			{"length too short", []string{"put", "r", "--type", "random", "--length", "4"}, "--length 4: want 8 to 4096"},
			{"key file missing", []string{"put", "r", "--type", "webhook", "--url", "https://x.example", "--key-file", filepath.Join(dir, "nope")}, "reading --key-file"},
			{"key file not base64", []string{"put", "r", "--type", "webhook", "--url", "https://x.example", "--key-file", writeFile("bad.key", "hunter2 is no key\n")}, "is not base64"},
			{"key file too short", []string{"put", "r", "--type", "webhook", "--url", "https://x.example", "--key-file", writeFile("short.key", base64.StdEncoding.EncodeToString([]byte("8 bytes!")))}, "holds a 8-byte key; a key must be 16 to 1024 bytes"},
			{"key file two lines", []string{"put", "r", "--type", "webhook", "--url", "https://x.example", "--key-file", writeFile("two.key", fileKeyB64+"\n"+fileKeyB64+"\n")}, "base64 on one line"},
			{"reserved name", []string{"put", "sigil-mine", "--type", "random"}, "InvalidParameterException"},
			{"bad name", []string{"put", "my.rotator", "--type", "random"}, "InvalidParameterException"},
			{"impossible policy", []string{"put", "r", "--type", "random", "--exclude-uppercase", "--exclude-lowercase", "--exclude-numbers", "--exclude-punctuation"}, "InvalidParameterException"},
			{"get unknown", []string{"get", "nope"}, "ResourceNotFoundException"},
			{"delete unknown", []string{"delete", "nope"}, "ResourceNotFoundException"},
			{"delete built-in", []string{"delete", rotation.BuiltinRandom}, "ResourceNotFoundException"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, err := cli(t, tt.args...)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want one containing %q (output %q)", err, tt.want, out)
				}
				if strings.Contains(out, "hunter2") || strings.Contains(out, fileKeyB64) {
					t.Fatalf("an error quoted a key file: %q", out)
				}
			})
		}
		if out := must(t, "list", "--json"); strings.TrimSpace(out) != `{"rotators":[]}` {
			t.Fatalf("a failed put registered a rotator: %s", out)
		}
		if code := run(append([]string{"rotator", "put", "r", "--type", "lambda"}, conn...)); code == 0 {
			t.Fatal("sigil rotator put with an unknown type exited 0")
		}
	})

	// A random rotator: its ARN is a RotationLambdaARN RotateSecret takes.
	out := must(t, "put", "api-key", "--type", "random", "--field", "apiKey", "--length", "40", "--exclude-punctuation")
	arnLine := regexp.MustCompile(`ARN \(use it as RotationLambdaARN\): (arn:aws:lambda:us-east-1:[0-9]{12}:function:api-key)\n`).FindStringSubmatch(out)
	if !strings.HasPrefix(out, `Registered random rotator api-key (field "apiKey", 40 characters).`) || arnLine == nil {
		t.Fatalf("put printed:\n%s", out)
	}
	apiKeyARN := arnLine[1]
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/api-key"), SecretString: aws.String(`{"apiKey":"k0","user":"svc"}`)}); err != nil {
		t.Fatal(err)
	}
	rotateNow(t, sm, "app/api-key", apiKeyARN)
	testutil.WaitFor(t, 20*time.Second, func() bool {
		v, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/api-key")})
		if err != nil {
			return false
		}
		var m map[string]string
		return json.Unmarshal([]byte(aws.ToString(v.SecretString)), &m) == nil && len(m["apiKey"]) == 40 && m["user"] == "svc"
	})

	out = must(t, "get", "api-key")
	outputs.WriteString(out)
	for _, want := range []string{"Type:", "random", "ARN:", apiKeyARN, "Field:", "apiKey", "Length:", "40", "Excluded:", "punctuation", "Each class required:", "yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("get lacks %q:\n%s", want, out)
		}
	}

	// A webhook with a generated key: put prints it once, base64, and it
	// is the key the server signs with.
	hookOut := must(t, "put", "partner", "--type", "webhook", "--url", hook.URL+"/gen", "--timeout", "10s")
	m := generatedKey.FindStringSubmatch(hookOut)
	if m == nil || !strings.Contains(hookOut, "This is the only time the key is shown") || !strings.Contains(hookOut, "Registered webhook rotator partner ("+hook.URL+"/gen, timeout 10s).") {
		t.Fatalf("webhook put printed:\n%s", hookOut)
	}
	genKeyB64 := m[1]
	genKey, err := base64.StdEncoding.DecodeString(genKeyB64)
	if err != nil || len(genKey) != 32 {
		t.Fatalf("generated key %q: %d bytes, %v", genKeyB64, len(genKey), err)
	}
	hook.setKey("/gen", genKey)
	partnerARN := regexp.MustCompile(`RotationLambdaARN\): (\S+)`).FindStringSubmatch(hookOut)[1]
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/partner"), SecretString: aws.String("p0")}); err != nil {
		t.Fatal(err)
	}
	rotateNow(t, sm, "app/partner", partnerARN)
	waitForHook(t, hook, "/gen")

	// --json put of a generated key carries it (the only way a script can
	// get it); a key from --key-file is never printed, in text or JSON.
	out = must(t, "put", "json-hook", "--type", "webhook", "--url", hook.URL+"/json", "--json")
	var jsonPut server.RotatorResponse
	if err := json.Unmarshal([]byte(out), &jsonPut); err != nil || jsonPut.WebhookKey == "" || jsonPut.ARN == "" {
		t.Fatalf("put --json: %v: %s", err, out)
	}
	for _, args := range [][]string{
		{"put", "file-hook", "--type", "webhook", "--url", hook.URL + "/file", "--key-file", keyFile},
		{"put", "file-hook", "--type", "webhook", "--url", hook.URL + "/file", "--key-file", keyFile, "--json"},
	} {
		out := must(t, args...)
		outputs.WriteString(out)
		if strings.Contains(out, `"webhookKey"`) || generatedKey.MatchString(out) {
			t.Fatalf("put --key-file printed a key:\n%s", out)
		}
	}
	if out := must(t, "put", "file-hook", "--type", "webhook", "--url", hook.URL+"/file", "--key-file", keyFile); !strings.Contains(out, "HMAC key: the one in "+keyFile+" (not shown).") {
		t.Fatalf("put --key-file printed:\n%s", out)
	}
	hook.setKey("/file", fileKey)
	fileARN := strings.Replace(partnerARN, ":function:partner", ":function:file-hook", 1)
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/file"), SecretString: aws.String("f0")}); err != nil {
		t.Fatal(err)
	}
	rotateNow(t, sm, "app/file", fileARN)
	waitForHook(t, hook, "/file")

	// get and list never show a key.
	for _, args := range [][]string{{"get", "partner"}, {"get", "partner", "--json"}, {"list"}, {"list", "--json"}} {
		outputs.WriteString(must(t, args...))
	}
	if out := must(t, "get", "partner"); !strings.Contains(out, "HMAC key:") || !strings.Contains(out, "set (write-only") || !strings.Contains(out, "10s") {
		t.Errorf("get partner:\n%s", out)
	}
	out = must(t, "list")
	for _, want := range []string{"NAME", "api-key", "random", "partner", "webhook", hook.URL + "/gen", partnerARN, "file-hook"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	var list server.RotatorsResponse
	if err := json.Unmarshal([]byte(must(t, "list", "--json")), &list); err != nil || len(list.Rotators) != 4 {
		t.Fatalf("list --json: %v, %+v", err, list)
	}
	outputs.WriteString(srv.Logs.String())
	for _, k := range []string{genKeyB64, jsonPut.WebhookKey, fileKeyB64, string(fileKey)} {
		if strings.Contains(outputs.String(), k) {
			t.Fatalf("a webhook key appeared outside put's output, or in the server log (%q)", k)
		}
	}

	// delete.
	if out := must(t, "delete", "json-hook"); !strings.Contains(out, "Deleted rotator json-hook.") {
		t.Fatalf("delete printed %q", out)
	}
	if out := must(t, "delete", "file-hook", "--json"); strings.TrimSpace(out) != `{"name":"file-hook","deleted":true}` {
		t.Fatalf("delete --json printed %q", out)
	}
	if _, err := cli(t, "get", "json-hook"); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("get after delete: %v", err)
	}
}

// rotateNow enables rotation of secret with rotator arn and starts one at
// once.
func rotateNow(t *testing.T, sm *secretsmanager.Client, secret, arn string) {
	t.Helper()
	_, err := sm.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{
		SecretId: aws.String(secret), RotationLambdaARN: aws.String(arn), RotateImmediately: aws.Bool(true),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err != nil {
		t.Fatalf("RotateSecret %s with %s: %v", secret, arn, err)
	}
}

// waitForHook waits for the first request to path and checks that its
// signature verified.
func waitForHook(t *testing.T, h *rotatorHook, path string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, func() bool {
		v, r := h.counts(path)
		return v+r > 0
	})
	if v, r := h.counts(path); v == 0 || r != 0 {
		t.Fatalf("webhook %s: %d requests verified, %d did not", path, v, r)
	}
}
