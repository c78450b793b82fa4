package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// sysCall sends a JSON request to a /v1/sys endpoint, signed for service
// "sigil" when creds are given, and decodes the answer into out.
func sysCall(t *testing.T, base, path string, in any, out any, creds *aws.Credentials) (int, string) {
	t.Helper()
	body, _ := json.Marshal(in)
	method := "POST"
	if in == nil {
		method, body = "GET", nil
	}
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if creds != nil {
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), *creds, req, hex.EncodeToString(sum[:]), "sigil", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

func TestShamirLifecycle(t *testing.T) {
	dir := t.TempDir() + "/data"
	srv := startAt(t, dir, testserver.WithConfig(func(c *server.Config) { c.KeyProvider = "shamir" }))
	if code, _ := get(t, srv.URL()+"/readyz"); code != 503 {
		t.Fatalf("readyz before init = %d, want 503", code)
	}
	var st server.SealStatus
	sysCall(t, srv.URL(), "/v1/sys/seal-status", nil, &st, nil)
	if st.Initialized || !st.Sealed {
		t.Fatalf("fresh shamir server status %+v", st)
	}
	// Every API call is refused while sealed.
	sm := secretsmanager.NewFromConfig(testserver.AWSConfigFor(srv.URL(), "us-east-1", "AKIAAAAAAAAAAAAAAAAA", "x", ""))
	if _, err := sm.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{}); err == nil || !strings.Contains(err.Error(), "ServiceUnavailable") {
		t.Fatalf("sealed server answered ListSecrets with %v", err)
	}
	if code, body := sysCall(t, srv.URL(), "/v1/sys/init", server.InitRequest{Shares: 5, Threshold: 1}, nil, nil); code != 400 {
		t.Errorf("threshold 1 accepted: %d %s", code, body)
	}
	var initResp server.InitResponse
	if code, body := sysCall(t, srv.URL(), "/v1/sys/init", server.InitRequest{Shares: 5, Threshold: 3}, &initResp, nil); code != 200 {
		t.Fatalf("init: %d %s", code, body)
	}
	if len(initResp.Shares) != 5 {
		t.Fatalf("got %d shares", len(initResp.Shares))
	}
	if code, _ := sysCall(t, srv.URL(), "/v1/sys/init", server.InitRequest{Shares: 5, Threshold: 3}, nil, nil); code != 400 {
		t.Errorf("second init accepted")
	}
	// Init leaves the server unsealed with root credentials written.
	if code, _ := get(t, srv.URL()+"/readyz"); code != 200 {
		t.Fatalf("readyz after init = %d", code)
	}
	id, secret := testserver.ReadCredentials(t, dir+"/"+server.RootCredentialsFile)
	sm = secretsmanager.NewFromConfig(testserver.AWSConfigFor(srv.URL(), "us-east-1", id, secret, ""))
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("shamir/kept"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	stop(t, srv)
	for _, share := range initResp.Shares {
		if strings.Contains(srv.Logs.String(), share) {
			t.Fatalf("a share was logged")
		}
	}

	// After a restart the server is sealed until threshold shares arrive.
	srv = startAt(t, dir, testserver.WithConfig(func(c *server.Config) { c.KeyProvider = "shamir" }))
	if code, _ := get(t, srv.URL()+"/readyz"); code != 503 {
		t.Fatalf("restarted shamir server is not sealed")
	}
	if code, _ := sysCall(t, srv.URL(), "/v1/sys/unseal", server.UnsealRequest{Share: "not-a-share"}, nil, nil); code != 400 {
		t.Errorf("garbage share accepted")
	}
	sysCall(t, srv.URL(), "/v1/sys/unseal", server.UnsealRequest{Share: initResp.Shares[4]}, &st, nil)
	if st.Progress != 1 || st.Threshold != 3 || !st.Sealed {
		t.Fatalf("after one share: %+v", st)
	}
	if code, _ := sysCall(t, srv.URL(), "/v1/sys/unseal", server.UnsealRequest{Share: initResp.Shares[4]}, nil, nil); code != 400 {
		t.Errorf("duplicate share accepted")
	}
	if code, body := sysCall(t, srv.URL(), "/v1/sys/unseal", server.UnsealRequest{Reset: true}, &st, nil); code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	if st.Progress != 0 {
		t.Fatalf("reset left progress %d", st.Progress)
	}
	for _, i := range []int{3, 0, 1} {
		sysCall(t, srv.URL(), "/v1/sys/unseal", server.UnsealRequest{Share: initResp.Shares[i]}, &st, nil)
	}
	if st.Sealed {
		t.Fatalf("threshold shares did not unseal: %+v", st)
	}
	sm = secretsmanager.NewFromConfig(testserver.AWSConfigFor(srv.URL(), "us-east-1", id, secret, ""))
	out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("shamir/kept")})
	if err != nil || aws.ToString(out.SecretString) != "v" {
		t.Fatalf("secret after unseal: %v", err)
	}
}

func TestRotateKey(t *testing.T) {
	srv := testserver.StartServer(t)
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("rot/old"), SecretString: aws.String("before")}); err != nil {
		t.Fatal(err)
	}
	if code, _ := sysCall(t, srv.URL(), "/v1/sys/rotate", struct{}{}, nil, nil); code < 400 {
		t.Fatalf("unsigned rotate accepted")
	}
	other := &aws.Credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: "wrong-wrong-wrong-wrong-wrong-wrong-wron"}
	if code, _ := sysCall(t, srv.URL(), "/v1/sys/rotate", struct{}{}, nil, other); code < 400 {
		t.Fatalf("badly signed rotate accepted")
	}
	root := &aws.Credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey}
	var rr server.RotateResponse
	if code, body := sysCall(t, srv.URL(), "/v1/sys/rotate", struct{}{}, &rr, root); code != 200 || rr.KeyTerm != 2 {
		t.Fatalf("rotate: %d %s", code, body)
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("rot/old")})
	if err != nil || aws.ToString(out.SecretString) != "before" {
		t.Fatalf("old value after rotation: %v", err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("rot/old"), SecretString: aws.String("after")}); err != nil {
		t.Fatal(err)
	}
	rotations := 0
	for _, r := range records(t, srv) {
		if r.EventSource == "sigil" && r.EventName == "RotateKey" && r.AdditionalEventData.Decision == "allow" {
			rotations++
		}
	}
	if rotations != 1 {
		t.Errorf("the audit log has %d RotateKey records, want 1", rotations)
	}
	var st server.SealStatus
	sysCall(t, srv.URL(), "/v1/sys/seal-status", nil, &st, nil)
	if st.KeyTerm != 2 {
		t.Errorf("seal-status key term %d, want 2", st.KeyTerm)
	}
	// A request signed for the native API is not accepted by Secrets
	// Manager and vice versa.
	if code, _ := sysCall(t, srv.URL(), "/v1/sys/rotate", struct{}{}, nil, nil); code != 403 && code != 400 {
		t.Errorf("unsigned rotate: %d", code)
	}
}
