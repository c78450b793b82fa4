package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestFirstStartWritesRootCredentialsOnce(t *testing.T) {
	srv := testserver.StartServer(t)
	path := filepath.Join(srv.Config.DataDir, server.RootCredentialsFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("root.credentials mode = %04o, want 0600", fi.Mode().Perm())
	}
	if !strings.HasPrefix(srv.AccessKeyID, "AKIA") || len(srv.AccessKeyID) != 20 {
		t.Errorf("root access key id %q is not AKIA + 16 characters", srv.AccessKeyID)
	}
	if len(srv.SecretAccessKey) != 40 {
		t.Errorf("root secret has %d characters, want 40", len(srv.SecretAccessKey))
	}
	dfi, err := os.Stat(srv.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if dfi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %04o, want 0700", dfi.Mode().Perm())
	}
	if !strings.Contains(srv.Logs.String(), path) {
		t.Errorf("the log does not say where root credentials are")
	}
	for _, want := range []string{"sigil.db", "sigil.key"} {
		if _, err := os.Stat(filepath.Join(srv.Config.DataDir, want)); err != nil {
			t.Errorf("data dir lacks %s: %v", want, err)
		}
	}
}

func TestRestartReusesAccountAndKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := startAt(t, dir)
	id, secret := first.AccessKeyID, first.SecretAccessKey
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(first.AWSConfig())
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("restart/kept"), SecretString: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	stop(t, first)
	credPath := filepath.Join(dir, server.RootCredentialsFile)
	before, _ := os.ReadFile(credPath)

	second := startAt(t, dir)
	if second.AccessKeyID != id || second.SecretAccessKey != secret {
		t.Fatalf("restart created a new root key")
	}
	after, _ := os.ReadFile(credPath)
	if string(before) != string(after) {
		t.Errorf("restart rewrote root.credentials")
	}
	sm = secretsmanager.NewFromConfig(second.AWSConfig())
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("restart/kept")})
	if err != nil {
		t.Fatalf("secret lost across restart: %v", err)
	}
	if aws.ToString(out.SecretString) != "v1" {
		t.Errorf("secret value changed across restart")
	}
}

func startAt(t *testing.T, dir string, opts ...testserver.ServerOption) *testserver.Server {
	t.Helper()
	return testserver.StartServer(t, append([]testserver.ServerOption{testserver.WithConfig(func(c *server.Config) { c.DataDir = dir })}, opts...)...)
}

func stop(t *testing.T, s *testserver.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// newServer runs server.New and returns its error, closing it on success.
func newServer(t *testing.T, cfg server.Config) error {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		return err
	}
	s, err := server.New(context.Background(), cfg, server.Options{Logger: discardLogger()})
	if err == nil {
		s.Close()
	}
	return err
}

func TestStartRefusals(t *testing.T) {
	t.Run("data dir open to others", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		err := newServer(t, server.Config{DataDir: dir})
		wantErr(t, err, "chmod 700")
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("refused start still wrote %d files", len(entries))
		}
	})
	t.Run("corrupt store file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		os.Mkdir(dir, 0o700)
		garbage := []byte(strings.Repeat("not a bolt file ", 1024))
		os.WriteFile(filepath.Join(dir, "sigil.db"), garbage, 0o600)
		err := newServer(t, server.Config{DataDir: dir})
		wantErr(t, err, "sigil.db")
		after, _ := os.ReadFile(filepath.Join(dir, "sigil.db"))
		if string(after) != string(garbage) {
			t.Errorf("corrupt store file was modified")
		}
	})
	t.Run("missing key file after init", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		stop(t, startAt(t, dir))
		os.Remove(filepath.Join(dir, "sigil.key"))
		err := newServer(t, server.Config{DataDir: dir})
		wantErr(t, err, "never create a new one")
		if _, err := os.Stat(filepath.Join(dir, "sigil.key")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a replacement key file was created")
		}
	})
	t.Run("wrong key file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		stop(t, startAt(t, dir))
		other := filepath.Join(t.TempDir(), "other")
		stop(t, startAt(t, other))
		key, _ := os.ReadFile(filepath.Join(other, "sigil.key"))
		os.WriteFile(filepath.Join(dir, "sigil.key"), key, 0o600)
		wantErr(t, newServer(t, server.Config{DataDir: dir}), "does not open")
	})
	t.Run("key file readable by others", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		stop(t, startAt(t, dir))
		os.Chmod(filepath.Join(dir, "sigil.key"), 0o644)
		wantErr(t, newServer(t, server.Config{DataDir: dir}), "600")
	})
	t.Run("env key missing", func(t *testing.T) {
		wantErr(t, newServer(t, server.Config{DataDir: filepath.Join(t.TempDir(), "d"), KeyProvider: "env", KeyEnvName: "SIGIL_KEK"}), "SIGIL_KEK")
	})
	t.Run("env key malformed", func(t *testing.T) {
		err := newServer(t, server.Config{DataDir: filepath.Join(t.TempDir(), "d"), KeyProvider: "env", KeyEnvName: "SIGIL_KEK", KeyEnv: "c2hvcnQ="})
		wantErr(t, err, "SIGIL_KEK")
		if strings.Contains(err.Error(), "c2hvcnQ=") {
			t.Errorf("error echoes the key value: %v", err)
		}
	})
	t.Run("account id mismatch", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		stop(t, startAt(t, dir, testserver.WithConfig(func(c *server.Config) { c.AccountID = "111122223333" })))
		wantErr(t, newServer(t, server.Config{DataDir: dir, AccountID: "444455556666"}), "111122223333")
	})
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("start succeeded, want an error mentioning %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not mention %q", err, substr)
	}
	if strings.Count(err.Error(), "\n") > 0 {
		t.Errorf("start-up error is not one line: %q", err)
	}
}

func TestEnvKeyProvider(t *testing.T) {
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	dir := filepath.Join(t.TempDir(), "data")
	srv := startAt(t, dir, testserver.WithConfig(func(c *server.Config) {
		c.KeyProvider, c.KeyEnvName, c.KeyEnv = "env", "SIGIL_KEK", key
	}))
	if code, _ := get(t, srv.URL()+"/readyz"); code != 200 {
		t.Fatalf("readyz = %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "sigil.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("env provider wrote a key file")
	}
	stop(t, srv)
	err := newServer(t, server.Config{DataDir: dir, KeyProvider: "env", KeyEnvName: "SIGIL_KEK",
		KeyEnv: "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="})
	wantErr(t, err, "does not open")
}

func TestHealthReadyMetrics(t *testing.T) {
	srv := testserver.StartServer(t)
	if code, body := get(t, srv.URL()+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz = %d %q", code, body)
	}
	if code, _ := get(t, srv.URL()+"/readyz"); code != 200 {
		t.Errorf("readyz = %d, want 200", code)
	}
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	sm.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{})
	_, _ = sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
	code, body := get(t, srv.URL()+"/metrics")
	if code != 200 {
		t.Fatalf("metrics = %d", code)
	}
	for _, want := range []string{
		`sigil_http_requests_total{operation="secretsmanager.ListSecrets",outcome="ok"} 1`,
		`sigil_http_requests_total{operation="secretsmanager.GetSecretValue",outcome="ResourceNotFoundException"} 1`,
		`sigil_http_request_duration_seconds_bucket{operation="secretsmanager.ListSecrets"`,
		`sigil_store_operation_duration_seconds_count{op="get"}`,
		"sigil_sealed 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRequestIDOnEveryResponse(t *testing.T) {
	srv := testserver.StartServer(t)
	seen := map[string]bool{}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/nope", "/"} {
		resp, err := http.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get("X-Amzn-Requestid")
		if len(id) != 36 || seen[id] {
			t.Errorf("%s: request id %q missing, malformed or repeated", path, id)
		}
		seen[id] = true
	}
}

func TestUnsignedAndWronglySignedRequests(t *testing.T) {
	srv := testserver.StartServer(t)
	ctx := context.Background()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL()+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "secretsmanager.ListSecrets")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 || !strings.Contains(string(b), "MissingAuthenticationToken") {
		t.Errorf("unsigned request: %d %s", resp.StatusCode, b)
	}

	bad := secretsmanager.NewFromConfig(testserver.AWSConfigFor(srv.URL(), "us-east-1", srv.AccessKeyID, "wrong-secret-wrong-secret-wrong-secret12", ""))
	_, err = bad.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Errorf("wrong secret: %v, want InvalidSignatureException", err)
	}
	unknown := secretsmanager.NewFromConfig(testserver.AWSConfigFor(srv.URL(), "us-east-1", "AKIAAAAAAAAAAAAAAAAA", "x", ""))
	_, err = unknown.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Errorf("unknown key: %v, want UnrecognizedClientException", err)
	}
	otherRegion := secretsmanager.NewFromConfig(testserver.AWSConfigFor(srv.URL(), "eu-west-1", srv.AccessKeyID, srv.SecretAccessKey, ""))
	_, err = otherRegion.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Errorf("other region: %v, want InvalidSignatureException", err)
	}
	if strings.Contains(srv.Logs.String(), srv.SecretAccessKey) {
		t.Errorf("the server log contains the root secret key")
	}
}

func TestOversizedRequestKeepsServing(t *testing.T) {
	srv := testserver.StartServer(t, testserver.WithConfig(func(c *server.Config) { c.MaxRequestBytes = 64 << 10 }))
	body := strings.NewReader(`{"Name":"x","SecretString":"` + strings.Repeat("a", 70<<10) + `"}`)
	req, _ := http.NewRequest("POST", srv.URL()+"/", body)
	req.Header.Set("X-Amz-Target", "secretsmanager.CreateSecret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "RequestEntityTooLarge") {
		t.Errorf("oversized request: %d %s", resp.StatusCode, b)
	}
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	if _, err := sm.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{}); err != nil {
		t.Errorf("server stopped serving after an oversized request: %v", err)
	}
}

func rawExchange(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

func TestMalformedRequestLine(t *testing.T) {
	srv := testserver.StartServer(t)
	for _, req := range []string{
		"GARBAGE\r\n\r\n",
		"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
	} {
		if line := rawExchange(t, srv.Addr().String(), req); !strings.HasPrefix(line, "HTTP/1.1 4") && !strings.HasPrefix(line, "HTTP/1.1 505") {
			t.Errorf("%q answered %q, want a 4xx", req, line)
		}
	}
	if code, _ := get(t, srv.URL()+"/healthz"); code != 200 {
		t.Errorf("server stopped serving after malformed requests")
	}
}

func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	srv := testserver.StartServer(t, testserver.WithConfig(func(c *server.Config) { c.ReadHeaderTimeout = 300 * time.Millisecond }))
	slow, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // never finishes the headers
	if code, _ := get(t, srv.URL()+"/healthz"); code != 200 {
		t.Errorf("a slow client blocked another: %d", code)
	}
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(slow)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("server did not close the slow connection")
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
		t.Errorf("slow client got %q, want 408 or a closed connection", b)
	}
}

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	srv := testserver.StartServer(t)
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A request whose body is still arriving when shutdown begins.
	body := `{"Name":"drain/me","SecretString":"v"}`
	head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nX-Amz-Target: secretsmanager.ListSecrets\r\nContent-Length: %d\r\n\r\n", srv.Addr(), len(body))
	io.WriteString(c, head+body[:5])
	// Wait until the server counts the request as in flight.
	testutil.WaitFor(t, 5*time.Second, func() bool {
		_, m := get(t, srv.URL()+"/metrics")
		return strings.Contains(m, "sigil_http_requests_in_flight 2") // this scrape + the slow request
	})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	io.WriteString(c, body[5:])
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 ") {
		t.Fatalf("in-flight request got no response during shutdown: %q", line)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestNoPlaintextInDataDir(t *testing.T) {
	srv := testserver.StartServer(t)
	const planted = "planted-9f2c-value-never-on-disk"
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	ctx := context.Background()
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("plant/a"), SecretString: aws.String(planted)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("plant/a"), SecretBinary: []byte(planted + "-bin")}); err != nil {
		t.Fatal(err)
	}
	_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("plant/a"), SecretString: aws.String(planted)})
	var exists *types.ResourceExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("duplicate create: %v", err)
	}
	stop(t, srv)
	testutil.AssertNotInDir(t, srv.Config.DataDir, planted)
	testutil.AssertNotInDir(t, srv.Config.DataDir, srv.SecretAccessKey, server.RootCredentialsFile)
	if strings.Contains(srv.Logs.String(), planted) {
		t.Errorf("the server log contains the planted value")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
