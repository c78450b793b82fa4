package secrets

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/awsproto"
)

// TestNoSecretValueLeaks plants distinctive values, runs every operation
// (including failing ones: oversized values, reused tokens, denied and
// audit-less reads, store failures, malformed bodies) and searches every log
// line, audit event, error message and fmt/slog rendering of responses for
// them.
func TestNoSecretValueLeaks(t *testing.T) {
	const planted = "PLANTED-zq8Xv3-correct-horse-battery"
	plantedB64 := base64.StdEncoding.EncodeToString([]byte(planted))
	fs := &faultyStore{Store: openTestStore(t)}
	e := newEnvOn(t, fs)
	var rendered []string // errors and printed responses
	var passwords []string
	run := func(op string, req any) {
		t.Helper()
		resp, err := e.call(op, req)
		if err != nil {
			rendered = append(rendered, err.Error(), fmt.Sprintf("%+v", err))
		}
		if resp != nil {
			rendered = append(rendered, fmt.Sprintf("%v|%+v|%#v|%s", resp, resp, resp, resp))
			var buf strings.Builder
			slog.New(slog.NewTextHandler(&buf, nil)).Info("resp", "r", resp)
			rendered = append(rendered, buf.String())
			if op == "GetRandomPassword" {
				var out getRandomPasswordOutput
				b, _ := json.Marshal(resp)
				_ = json.Unmarshal(b, &out)
				passwords = append(passwords, out.RandomPassword)
			}
		}
	}
	big := planted + strings.Repeat("x", 70000)
	tok := token("leak")

	run("CreateSecret", map[string]any{"Name": "leak", "SecretString": planted, "ClientRequestToken": tok})
	run("CreateSecret", map[string]any{"Name": "leak", "SecretString": planted})                                  // exists
	run("CreateSecret", map[string]any{"Name": "leak", "SecretString": planted + "!", "ClientRequestToken": tok}) // reused token
	run("CreateSecret", map[string]any{"Name": "big", "SecretString": big})                                       // oversized
	run("CreateSecret", map[string]any{"Name": "both", "SecretString": planted, "SecretBinary": plantedB64})
	run("CreateSecret", map[string]any{"Name": "bin", "SecretBinary": plantedB64})
	run("CreateSecret", `{"Name": 7, "SecretString": "`+planted+`"}`)    // type mismatch
	run("CreateSecret", `{"Name": "x", "SecretString": "`+planted+`"`)   // truncated JSON
	run("CreateSecret", `{"Name": "x", "SecretBinary": "`+planted+`!"}`) // bad base64
	run("PutSecretValue", map[string]any{"SecretId": "leak", "SecretString": planted + "2"})
	run("PutSecretValue", map[string]any{"SecretId": "leak", "SecretString": "different", "ClientRequestToken": tok}) // reused token
	run("PutSecretValue", map[string]any{"SecretId": "leak", "SecretString": big})
	run("PutSecretValue", map[string]any{"SecretId": "missing", "SecretString": planted})
	run("PutSecretValue", map[string]any{"SecretId": "leak", "SecretBinary": plantedB64, "RotationToken": planted})
	run("UpdateSecret", map[string]any{"SecretId": "leak", "SecretString": planted + "3"})
	run("UpdateSecret", map[string]any{"SecretId": "leak", "SecretString": planted + "4", "ClientRequestToken": tok})
	run("GetSecretValue", map[string]any{"SecretId": "leak"})
	run("GetSecretValue", map[string]any{"SecretId": "bin"})
	run("GetSecretValue", map[string]any{"SecretId": "leak", "VersionId": tok})
	run("BatchGetSecretValue", map[string]any{"SecretIdList": []string{"leak", "bin", "missing"}})
	run("BatchGetSecretValue", map[string]any{"Filters": []map[string]any{{"Key": "name", "Values": []string{"le"}}}})
	run("DescribeSecret", map[string]any{"SecretId": "leak"})
	run("ListSecrets", map[string]any{})
	run("ListSecretVersionIds", map[string]any{"SecretId": "leak", "IncludeDeprecated": true})
	run("UpdateSecretVersionStage", map[string]any{"SecretId": "leak", "VersionStage": "AWSCURRENT", "MoveToVersionId": tok})
	run("TagResource", map[string]any{"SecretId": "leak", "Tags": tagList("k", "v")})
	run("UntagResource", map[string]any{"SecretId": "leak", "TagKeys": []string{"k"}})
	run("PutResourcePolicy", map[string]any{"SecretId": "leak", "ResourcePolicy": testPolicy})
	run("GetResourcePolicy", map[string]any{"SecretId": "leak"})
	run("ValidateResourcePolicy", map[string]any{"ResourcePolicy": testPolicy})
	run("ListResourcePolicies", map[string]any{"SecretId": "leak"})
	run("DeleteResourcePolicy", map[string]any{"SecretId": "leak"})
	run("GetRandomPassword", map[string]any{})
	run("GetRandomPassword", map[string]any{"PasswordLength": 64, "IncludeSpace": true})

	// Denied, audit-less and store-less reads.
	e.principal = userPrincipal
	run("GetSecretValue", map[string]any{"SecretId": "leak"})
	run("PutSecretValue", map[string]any{"SecretId": "leak", "SecretString": planted})
	e.principal = rootPrincipal
	e.audit.setFail(true)
	run("GetSecretValue", map[string]any{"SecretId": "leak"})
	run("BatchGetSecretValue", map[string]any{"SecretIdList": []string{"leak"}})
	run("PutSecretValue", map[string]any{"SecretId": "leak", "SecretString": planted + "5"})
	run("GetRandomPassword", map[string]any{})
	e.audit.setFail(false)
	fs.mu.Lock()
	fs.failTxn = errors.New("disk on fire")
	fs.mu.Unlock()
	run("PutSecretValue", map[string]any{"SecretId": "leak", "SecretString": planted + "6"})
	run("CreateSecret", map[string]any{"Name": "new", "SecretString": planted})
	fs.mu.Lock()
	fs.failTxn = nil
	fs.mu.Unlock()
	run("DeleteSecret", map[string]any{"SecretId": "leak"})
	run("GetSecretValue", map[string]any{"SecretId": "leak"})
	run("RestoreSecret", map[string]any{"SecretId": "leak"})
	run("DeleteSecret", map[string]any{"SecretId": "bin", "ForceDeleteWithoutRecovery": true})

	if len(passwords) != 2 {
		t.Fatalf("got %d passwords, want 2", len(passwords))
	}
	needles := append([]string{planted, plantedB64}, passwords...)
	var haystacks []string
	haystacks = append(haystacks, e.logs.String())
	// Events carry the request and response to the audit log, which
	// replaces their secret fields by HMACs before writing: search what
	// the real log writes, and every other field of the events as they are.
	dir := t.TempDir()
	keys, err := audit.NewKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{Keys: keys, Region: "us-east-1", AccountID: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range e.audit.all() {
		if err := alog.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		bare := *ev
		bare.RequestParameters, bare.ResponseElements = nil, nil
		b, err := json.Marshal(bare)
		if err != nil {
			t.Fatal(err)
		}
		haystacks = append(haystacks, string(b), fmt.Sprintf("%+v", bare))
	}
	if err := alog.Close(); err != nil {
		t.Fatal(err)
	}
	var written strings.Builder
	filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			written.Write(b)
		}
		return nil
	})
	haystacks = append(haystacks, written.String())
	if !strings.Contains(written.String(), audit.HashValue(keys.HMAC, []byte(planted))) {
		t.Errorf("the audit log does not hold the planted value's HMAC, so no one could check it was returned")
	}
	haystacks = append(haystacks, rendered...)
	if len(e.audit.all()) < 30 || e.logs.String() == "" {
		t.Fatalf("the test exercised too little: %d audit events, %d bytes of logs", len(e.audit.all()), len(e.logs.String()))
	}
	for _, h := range haystacks {
		for _, n := range needles {
			if strings.Contains(h, n) {
				t.Fatalf("secret material %q leaked into: %.300s", n, h)
			}
		}
	}
	// Sanity: the values really are there to be leaked.
	e.principal = rootPrincipal
	if v := e.value("leak"); !strings.HasPrefix(v, planted) {
		t.Fatalf("planted value not stored: %q", v)
	}
	var ae *awsproto.Error
	_, err = e.call("PutSecretValue", map[string]any{"SecretId": "leak", "SecretString": "x", "ClientRequestToken": tok})
	if !errors.As(err, &ae) || ae.Code != codeResourceExists {
		t.Fatalf("reused token: %v", err)
	}
}
