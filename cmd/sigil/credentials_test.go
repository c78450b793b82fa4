package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/images"
)

const cannedSTS = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult><Credentials>
    <AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>secretEXAMPLE</SecretAccessKey>
    <SessionToken>tokenEXAMPLE</SessionToken><Expiration>2027-01-01T00:00:00Z</Expiration>
  </Credentials></AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`

func writeBootstrap(t *testing.T, endpoint string, mode os.FileMode) (string, *images.Bootstrap) {
	t.Helper()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(200 - i)
	}
	b := &images.Bootstrap{Version: 1, Endpoint: endpoint, Region: "us-east-1", RoleARN: "arn:aws:iam::123456789012:role/app",
		KeyID: "img-abcdefghijklmnopqrstuvwxyz", PrivateKey: seed, Issuer: images.ImageIssuer,
		Audience: images.SealAudience("123456789012"), Repository: "registry.example.com/team/app"}
	data, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bootstrap.json")
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestCredentialsCmd(t *testing.T) {
	var form string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form = string(body)
		io.WriteString(w, cannedSTS)
	}))
	t.Cleanup(srv.Close)
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte("k8s.token.value\n"), 0o600)
	for _, tc := range []struct {
		name     string
		mode     os.FileMode
		warn     bool
		k8s      bool
		wantForm string
	}{
		{"mode 0400", 0o400, false, false, "WebIdentityToken="},
		{"mode 0644 warns", 0o644, true, false, "WebIdentityToken="},
		{"mode 0440 warns", 0o440, true, false, "WebIdentityToken="},
		{"with k8s token", 0o400, false, true, "WebIdentityToken="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, b := writeBootstrap(t, srv.URL, tc.mode)
			args := []string{"--bootstrap", path}
			if tc.k8s {
				args = append(args, "--k8s-token-file", tokFile)
			}
			stdout, stderr, err := runCmd(t, newCredentialsCmd(), args...)
			if err != nil {
				t.Fatalf("credentials: %v", err)
			}
			var out map[string]any
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
			}
			if out["Version"] != float64(1) || out["AccessKeyId"] != "ASIAEXAMPLE" || out["SecretAccessKey"] != "secretEXAMPLE" ||
				out["SessionToken"] != "tokenEXAMPLE" || out["Expiration"] != "2027-01-01T00:00:00Z" || len(out) != 5 {
				t.Errorf("credential_process output %v", out)
			}
			if got := strings.Contains(stderr, "warning") && strings.Contains(stderr, "0400"); got != tc.warn {
				t.Errorf("warning printed = %v, want %v (stderr %q)", got, tc.warn, stderr)
			}
			if !strings.Contains(form, "Action=AssumeRoleWithWebIdentity") {
				t.Errorf("STS request %q", form)
			}
			if tc.k8s != strings.Contains(decodeClaims(t, form), "k8s.token.value") {
				t.Errorf("k8s claim present = %v, want %v", !tc.k8s, tc.k8s)
			}
			for _, f := range keyForms(b.PrivateKey) {
				if strings.Contains(stdout+stderr, f) {
					t.Fatal("the private key appears in the output")
				}
			}
		})
	}
	t.Run("bad file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "b.json")
		os.WriteFile(p, []byte(`{"version":1,"privateKey":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="}`), 0o400)
		_, _, err := runCmd(t, newCredentialsCmd(), "--bootstrap", p)
		if err == nil || !strings.Contains(err.Error(), "invalid bootstrap file") || strings.Contains(err.Error(), "c2VjcmV0") {
			t.Fatalf("err = %v", err)
		}
	})
}

// decodeClaims returns the JSON claims of the form's WebIdentityToken.
func decodeClaims(t *testing.T, form string) string {
	t.Helper()
	for _, kv := range strings.Split(form, "&") {
		if v, ok := strings.CutPrefix(kv, "WebIdentityToken="); ok {
			parts := strings.Split(v, ".")
			if len(parts) != 3 {
				t.Fatalf("token %q", v)
			}
			raw, err := base64RawURL(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			return string(raw)
		}
	}
	t.Fatal("no WebIdentityToken in the request")
	return ""
}

func base64RawURL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
