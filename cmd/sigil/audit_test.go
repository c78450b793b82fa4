package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
)

const plantedSecret = "planted-cli-secret-c0ffee"

// auditFixture writes a data directory with audit keys and a closed log
// of a few events, one of which returned plantedSecret.
func auditFixture(t *testing.T) (dataDir string, keys *audit.Keys) {
	t.Helper()
	dataDir = t.TempDir()
	keys, err := audit.LoadOrCreateKeys(dataDir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(dataDir, "audit"), audit.Options{Keys: keys, Region: "us-east-1", AccountID: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	user := &authn.Principal{Kind: authn.KindIAMUser, AccountID: "123456789012", ARN: "arn:aws:iam::123456789012:user/ci", ID: "AIDACI"}
	evs := []*audit.Event{
		{Time: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), Principal: user, Source: "secretsmanager.amazonaws.com", Action: "GetSecretValue",
			Resources: []string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}, Allowed: true, Reason: "allow",
			SourceIP: "10.0.0.1", ReturnsSecret: true, ResponseElements: map[string]string{"SecretString": plantedSecret}},
		{Time: time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC), Principal: user, Source: "secretsmanager.amazonaws.com", Action: "DeleteSecret",
			Resources: []string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}, Reason: "implicit deny",
			SourceIP: "10.0.0.2", ErrorCode: "AccessDeniedException"},
		{Time: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), Source: "sts.amazonaws.com", Action: "GetCallerIdentity", Allowed: true, Reason: "root",
			Principal: &authn.Principal{Kind: authn.KindRoot, AccountID: "123456789012", ARN: "arn:aws:iam::123456789012:root", ID: "123456789012"}},
	}
	for _, ev := range evs {
		if err := l.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dataDir, keys
}

// runAudit runs `sigil audit ARGS...` and returns stdout, stderr and the
// process exit code run() would give.
func runAudit(t *testing.T, ctx context.Context, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := newAuditCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	code := 0
	var ee exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		errb.WriteString(err.Error())
		code = 1
	}
	return out.String(), errb.String(), code
}

func TestAuditVerifyCmd(t *testing.T) {
	dataDir, keys := auditFixture(t)
	dir := filepath.Join(dataDir, "audit")
	pubFile := filepath.Join(t.TempDir(), "trusted.pub")
	if err := os.WriteFile(pubFile, []byte(base64.StdEncoding.EncodeToString(keys.Public())), 0o644); err != nil {
		t.Fatal(err)
	}
	tampered := t.TempDir()
	seg, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	b, err := os.ReadFile(seg[0])
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("DeleteSecret"), []byte("DeleteSecreX"), 1)
	if err := os.WriteFile(filepath.Join(tampered, filepath.Base(seg[0])), b, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  string
		stderrs string
	}{
		{"ok with key beside the log", []string{"verify", dir}, 0, "OK: 3 records, 1 checkpoints, 1 segments", ""},
		{"ok sealed with trusted key", []string{"verify", dir, "--pubkey", pubFile, "--sealed"}, 0, "sealed by a clean shutdown", ""},
		{"json", []string{"verify", dir, "--json"}, 0, `"records": 3`, ""},
		{"tampered", []string{"verify", tampered, "--pubkey", pubFile}, 1, "TAMPERED: modified", ""},
		{"no key", []string{"verify", tampered}, 2, "", "no public key"},
		{"missing dir", []string{"verify", filepath.Join(dataDir, "nope"), "--pubkey", pubFile}, 2, "", "cannot verify"},
		{"bad flag", []string{"verify", "--bogus"}, 2, "", "unknown flag"},
		{"two dirs", []string{"verify", "a", "b"}, 2, "", "at most one directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := runAudit(t, context.Background(), "", tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errs, tt.stderrs) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
		})
	}
}

func TestAuditHashCmd(t *testing.T) {
	dataDir, keys := auditFixture(t)
	want := audit.HashValue(keys.HMAC, []byte(plantedSecret))
	dir := filepath.Join(dataDir, "audit")
	// The log never holds the value, only its HMAC.
	segs, _ := filepath.Glob(filepath.Join(dir, "*"))
	found := false
	for _, p := range segs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(plantedSecret)) {
			t.Fatalf("%s holds the secret value", p)
		}
		found = found || bytes.Contains(b, []byte(want))
	}
	if !found {
		t.Fatal("the log does not hold the value's HMAC")
	}
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{"argument", "", []string{"hash", "--data-dir", dataDir, plantedSecret}},
		{"stdin with newline", plantedSecret + "\n", []string{"hash", "--key", filepath.Join(dataDir, audit.HMACKeyFile)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := runAudit(t, context.Background(), tt.stdin, tt.args...)
			if code != 0 || strings.TrimSpace(out) != want {
				t.Fatalf("exit %d, stdout %q (want %q), stderr %s", code, out, want, errs)
			}
		})
	}
	out, errs, code := runAudit(t, context.Background(), plantedSecret, "hash", "--data-dir", dataDir, "--search", dir)
	if code != 0 || !strings.Contains(out, "secretsmanager:GetSecretValue") || strings.Contains(out, plantedSecret) {
		t.Fatalf("search: exit %d\n%s\n%s", code, out, errs)
	}
	if _, errs, code := runAudit(t, context.Background(), "never-returned", "hash", "--data-dir", dataDir, "--search", dir); code != 1 || !strings.Contains(errs, "no record holds this value") {
		t.Fatalf("search for an absent value: exit %d, %s", code, errs)
	}
	if _, errs, code := runAudit(t, context.Background(), "", "hash", "--data-dir", t.TempDir(), "x"); code == 0 || strings.Contains(errs, "x\n") && !strings.Contains(errs, "hint") {
		t.Fatalf("missing key: exit %d, %s", code, errs)
	}
}

func TestAuditPubkeyCmd(t *testing.T) {
	dataDir, keys := auditFixture(t)
	out, errs, code := runAudit(t, context.Background(), "", "pubkey", "--data-dir", dataDir)
	pub, err := audit.ParsePublicKey([]byte(out))
	if code != 0 || err != nil || !pub.Equal(keys.Public()) || !strings.HasPrefix(out, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("pubkey: exit %d, %v\n%s%s", code, err, out, errs)
	}
	// Without the .pub file the key is derived from the signing key.
	os.Remove(filepath.Join(dataDir, audit.PublicKeyFile))
	out, _, code = runAudit(t, context.Background(), "", "pubkey", "--data-dir", dataDir, "--base64")
	if code != 0 || strings.TrimSpace(out) != base64.StdEncoding.EncodeToString(keys.Public()) {
		t.Fatalf("pubkey --base64: exit %d, %q", code, out)
	}
	if _, errs, code := runAudit(t, context.Background(), "", "pubkey", "--data-dir", t.TempDir()); code == 0 || !strings.Contains(errs, "hint") {
		t.Fatalf("no keys: exit %d, %s", code, errs)
	}
}

func TestAuditQueryCmd(t *testing.T) {
	dataDir, _ := auditFixture(t)
	dir := filepath.Join(dataDir, "audit")
	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant []string
	}{
		{"table", []string{"query", dir}, []string{"TIME", "PRINCIPAL", "secretsmanager:GetSecretValue", "AccessDeniedException", "sts:GetCallerIdentity", "arn:aws:iam::123456789012:user/ci"}, []string{plantedSecret}},
		{"deny", []string{"query", dir, "--decision", "deny"}, []string{"DeleteSecret"}, []string{"GetSecretValue", "GetCallerIdentity"}},
		{"principal and action", []string{"query", dir, "--principal", "user/ci", "--action", "secretsmanager:GetSecretValue"}, []string{"GetSecretValue"}, []string{"DeleteSecret"}},
		{"since", []string{"query", dir, "--since", "2026-01-01T11:30:00Z"}, []string{"GetCallerIdentity"}, []string{"GetSecretValue"}},
		{"until and ip", []string{"query", dir, "--until", "2026-01-01T11:30:00Z", "--source-ip", "10.0.0.2"}, []string{"DeleteSecret"}, []string{"GetSecretValue"}},
		{"resource and outcome", []string{"query", dir, "--resource", "secret:db-", "--outcome", "success"}, []string{"GetSecretValue"}, []string{"DeleteSecret"}},
		{"control", []string{"query", dir, "--control", "--limit", "1"}, []string{"sigil:SigilAuditSegmentStart"}, []string{"GetSecretValue"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := runAudit(t, context.Background(), "", tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			mustHave(t, out, tt.want, tt.notWant)
		})
	}

	out, _, code := runAudit(t, context.Background(), "", "query", dir, "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("--json: exit %d, %d lines", code, len(lines))
	}
	for _, l := range lines {
		var r audit.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.EventVersion != "1.09" {
			t.Fatalf("--json line %q: %v", l, err)
		}
	}
	out, _, code = runAudit(t, context.Background(), "", "query", dir, "--cloudtrail")
	var doc struct{ Records []audit.Record }
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || len(doc.Records) != 3 {
		t.Fatalf("--cloudtrail: exit %d, %v, %d records", code, err, len(doc.Records))
	}
	out, _, _ = runAudit(t, context.Background(), "", "query", dir, "--cloudtrail", "--action", "Nothing")
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Records) != 0 {
		t.Fatalf("empty --cloudtrail: %v %q", err, out)
	}
	for _, bad := range [][]string{{"query", dir, "--since", "yesterday"}, {"query", dir, "--decision", "maybe"}, {"query", dir, "--json", "--cloudtrail"}} {
		if _, errs, code := runAudit(t, context.Background(), "", bad...); code == 0 {
			t.Fatalf("%v accepted: %s", bad, errs)
		}
	}
}

func mustHave(t *testing.T, out string, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
	for _, w := range notWant {
		if strings.Contains(out, w) {
			t.Fatalf("output has %q:\n%s", w, out)
		}
	}
}

func TestParseTimeBound(t *testing.T) {
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-01-01T00:00:00Z": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.Add(-7 * 24 * time.Hour),
	} {
		got, err := parseTimeBound(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTimeBound(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "-1h", "xd"} {
		if _, err := parseTimeBound(in, now); err == nil {
			t.Errorf("parseTimeBound(%q) accepted", in)
		}
	}
}

// syncWriter collects output written by a command in another goroutine.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recordUntilShown writes RevokeImage events until a follower's output
// shows one: the follower may start reading after the first ones were
// written, and then rightly skips them as history.
func recordUntilShown(t *testing.T, l *audit.Log, w *syncWriter, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; !strings.Contains(w.String(), `"requestID":"`+id); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("output never showed %s:\n%s", id, w.String())
		}
		if err := l.Record(context.Background(), &audit.Event{Source: "sigil", Action: "RevokeImage", RequestID: fmt.Sprintf("%s-%d", id, i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAuditQueryFollow tails the log while a writer adds records; only
// records written after the start are shown.
func TestAuditQueryFollow(t *testing.T) {
	dataDir, keys := auditFixture(t)
	dir := filepath.Join(dataDir, "audit")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newAuditCmd()
	var out syncWriter
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"query", dir, "-f", "--json", "--interval", "2ms"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	l, err := audit.Open(dir, audit.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recordUntilShown(t, l, &out, "followed")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	if strings.Contains(out.String(), "GetSecretValue") {
		t.Fatal("follow without --since printed old records")
	}
}

// TestAuditQueryEndpoint runs the network path against a stand-in for the
// server's /v1/audit handler built on audit.QueryPage: the request is a
// signed POST, pages are followed, and -f polls for new records.
func TestAuditQueryEndpoint(t *testing.T) {
	dataDir, keys := auditFixture(t)
	dir := filepath.Join(dataDir, "audit")
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/v1/audit" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		var req audit.QueryRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if req.AfterSequence == 0 {
			req.Limit = 1 // force a second page
		}
		resp, err := audit.QueryPage(dir, req)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"__type": "ValidationException", "message": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(resp)
	}))
	defer srv.Close()
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = AKIAAUDITOR\naws_secret_access_key = c2VjcmV0LWF1ZGl0b3Ita2V5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	remote := []string{"--endpoint", srv.URL, "--credentials-file", creds, "--region", "us-east-1"}

	out, errs, code := runAudit(t, context.Background(), "", append([]string{"query", "--json"}, remote...)...)
	if code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("remote query: exit %d\n%s\n%s", code, out, errs)
	}
	mu.Lock()
	if len(auths) < 2 || !strings.HasPrefix(auths[0], "AWS4-HMAC-SHA256 Credential=AKIAAUDITOR/") || !strings.Contains(auths[0], "/sigil/aws4_request") {
		t.Fatalf("requests not signed for sigil: %q", auths)
	}
	mu.Unlock()
	out, _, code = runAudit(t, context.Background(), "", append([]string{"query", "--decision", "deny"}, remote...)...)
	if code != 0 || !strings.Contains(out, "DeleteSecret") || strings.Contains(out, "GetSecretValue") {
		t.Fatalf("remote deny query: exit %d\n%s", code, out)
	}
	if _, errs, code := runAudit(t, context.Background(), "", append([]string{"query", "--outcome", "x"}, remote...)...); code == 0 {
		t.Fatalf("bad filter accepted remotely: %s", errs)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newAuditCmd()
	var fout syncWriter
	cmd.SetOut(&fout)
	cmd.SetErr(&fout)
	cmd.SetArgs(append([]string{"query", "-f", "--json", "--interval", "2ms"}, remote...))
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	l, err := audit.Open(dir, audit.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recordUntilShown(t, l, &fout, "remote-followed")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("remote follow ended with %v", err)
	}
	if strings.Contains(fout.String(), "GetSecretValue") {
		t.Fatal("remote follow printed old records")
	}
}
