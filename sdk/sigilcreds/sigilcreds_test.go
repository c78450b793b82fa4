package sigilcreds

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"sigil.dev/sigil/internal/images"
)

const response = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult><Credentials>
    <AccessKeyId>ASIA%d</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>
    <SessionToken>token</SessionToken><Expiration>%s</Expiration>
  </Credentials></AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`

// fakeSTS answers AssumeRoleWithWebIdentity with credentials valid for
// lifetime and counts calls and distinct assertions.
func fakeSTS(t *testing.T, lifetime time.Duration) (string, *atomic.Int32, *[]url.Values) {
	t.Helper()
	var calls atomic.Int32
	var forms []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		f, _ := url.ParseQuery(string(body))
		forms = append(forms, f)
		fmt.Fprintf(w, response, n, time.Now().Add(lifetime).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &calls, &forms
}

func bootstrapFile(t *testing.T, endpoint string) string {
	t.Helper()
	b := &images.Bootstrap{Version: 1, Endpoint: endpoint, Region: "us-east-1", RoleARN: "arn:aws:iam::123456789012:role/app",
		KeyID: "img-abcdefghijklmnopqrstuvwxyz", PrivateKey: make([]byte, 32), Issuer: images.ImageIssuer,
		Audience: images.SealAudience("123456789012"), Repository: "registry.example.com/team/app"}
	data, _ := b.MarshalJSON()
	p := filepath.Join(t.TempDir(), "bootstrap.json")
	if err := os.WriteFile(p, data, 0o400); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProviderCache(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lifetime  time.Duration
		wantCalls int32
	}{
		{"long-lived credentials are cached", time.Hour, 1},
		{"credentials inside the refresh window are renewed", 30 * time.Second, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep, calls, forms := fakeSTS(t, tc.lifetime)
			tok := filepath.Join(t.TempDir(), "token")
			os.WriteFile(tok, []byte("sa-token\n"), 0o600)
			p, err := NewProvider(bootstrapFile(t, ep), WithKubernetesTokenFile(tok), WithSessionName("my-app"))
			if err != nil {
				t.Fatal(err)
			}
			if p.Endpoint() != ep || p.Region() != "us-east-1" || strings.Contains(p.String(), "AAAAAAAA") {
				t.Errorf("provider %s", p)
			}
			var cp aws.CredentialsProvider = p.Cache()
			for range 3 {
				c, err := cp.Retrieve(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.SessionToken != "token" || !c.CanExpire {
					t.Fatalf("credentials %+v", c)
				}
			}
			if calls.Load() != tc.wantCalls {
				t.Errorf("%d STS calls, want %d", calls.Load(), tc.wantCalls)
			}
			seen := map[string]bool{}
			for _, f := range *forms {
				if f.Get("RoleSessionName") != "my-app" || seen[f.Get("WebIdentityToken")] {
					t.Errorf("request %v reuses an assertion or lacks the session name", f)
				}
				seen[f.Get("WebIdentityToken")] = true
			}
		})
	}
}

func TestNewProviderErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"version":2}`), 0o400)
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(t.TempDir(), "none")},
		{"invalid", bad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewProvider(tc.path); err == nil || !strings.HasPrefix(err.Error(), "sigilcreds: ") {
				t.Errorf("err = %v", err)
			}
		})
	}
}
