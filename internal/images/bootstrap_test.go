package images

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goodBootstrap(t testing.TB) *Bootstrap {
	t.Helper()
	b, err := ParseBootstrap(readTestdata(t, "bootstrap_good.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBootstrap(t *testing.T) {
	b := goodBootstrap(t)
	if b.KeyID != "img-abcdefghijklmnopqrstuvwxyz" || len(b.PrivateKey) != ed25519.SeedSize || b.Region != "us-east-1" {
		t.Fatalf("parsed %v", b)
	}
	again, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := ParseBootstrap(again)
	if err != nil || !bytes.Equal(b2.PrivateKey, b.PrivateKey) || b2.Audience != b.Audience {
		t.Fatalf("round trip: %v %v", b2, err)
	}
	seed := base64.StdEncoding.EncodeToString(b.PrivateKey)
	files, _ := filepath.Glob("testdata/bad_bootstrap_*.json")
	if len(files) == 0 {
		t.Fatal("no bad_bootstrap_* testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := ParseBootstrap(readTestdata(t, filepath.Base(f)))
			if !errors.Is(err, ErrBadBootstrap) {
				t.Fatalf("err = %v, want ErrBadBootstrap", err)
			}
			if strings.Contains(err.Error(), seed) || strings.Contains(err.Error(), seed[:12]) {
				t.Errorf("error reveals the private key: %v", err)
			}
		})
	}
}

func TestBootstrapRedacted(t *testing.T) {
	b := goodBootstrap(t)
	seed := base64.StdEncoding.EncodeToString(b.PrivateKey)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("bootstrap", "b", b)
	for _, s := range []string{fmt.Sprint(b), fmt.Sprintf("%+v", b), fmt.Sprintf("%#v", b), logs.String()} {
		if strings.Contains(s, seed) || strings.Contains(s, hex.EncodeToString(b.PrivateKey)) || !strings.Contains(s, "REDACTED") {
			t.Errorf("printed form reveals the key or lacks REDACTED: %s", s)
		}
	}
}

// decodeJWT splits a compact JWS into its decoded header and claims.
func decodeJWT(t *testing.T, tok string) (hdr, claims map[string]any, signing, sig []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := json.Unmarshal(dec(parts[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(dec(parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	return hdr, claims, []byte(parts[0] + "." + parts[1]), dec(parts[2])
}

func TestAssertion(t *testing.T) {
	b := goodBootstrap(t)
	pub := ed25519.NewKeyFromSeed(b.PrivateKey).Public().(ed25519.PublicKey)
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name string
		k8s  string
	}{{"image only", ""}, {"with k8s token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := b.Assertion(AssertionOptions{Now: func() time.Time { return now }, K8sToken: tc.k8s})
			if err != nil {
				t.Fatal(err)
			}
			hdr, c, signing, sig := decodeJWT(t, tok)
			if hdr["alg"] != "EdDSA" || hdr["typ"] != "JWT" || hdr["kid"] != b.KeyID || len(hdr) != 3 {
				t.Errorf("header %v", hdr)
			}
			if c["iss"] != ImageIssuer || c["sub"] != b.KeyID || c["aud"] != b.Audience {
				t.Errorf("claims %v", c)
			}
			iat, exp := int64(c["iat"].(float64)), int64(c["exp"].(float64))
			if iat != now.Unix() || exp <= iat || exp > iat+300 {
				t.Errorf("iat %d exp %d, want iat=now and exp<=iat+300", iat, exp)
			}
			jti, _ := c["jti"].(string)
			if raw, err := hex.DecodeString(jti); err != nil || len(raw) != 16 {
				t.Errorf("jti %q is not 128-bit hex", jti)
			}
			if got, _ := c["k8s"].(string); got != tc.k8s {
				t.Errorf("k8s claim %q, want %q", got, tc.k8s)
			}
			if !ed25519.Verify(pub, signing, sig) {
				t.Error("signature does not verify under the bootstrap public key")
			}
			// The server's parser accepts it and agrees on every field.
			a, err := ParseAssertion(tok)
			if err != nil {
				t.Fatalf("server-side ParseAssertion: %v", err)
			}
			if a.KeyID != b.KeyID || a.Audience != b.Audience || a.JTI != jti || a.Kubernetes != tc.k8s || !a.VerifySignature(pub) {
				t.Errorf("server-side parse %+v disagrees", a)
			}
			tok2, _ := b.Assertion(AssertionOptions{Now: func() time.Time { return now }})
			if _, c2, _, _ := decodeJWT(t, tok2); c2["jti"] == jti {
				t.Error("two assertions share a jti")
			}
		})
	}
}

func TestSealKeyID(t *testing.T) {
	pub := make(ed25519.PublicKey, ed25519.PublicKeySize)
	id := SealKeyID(pub)
	if !ValidKeyID(id) {
		t.Fatalf("SealKeyID = %q is not a valid key id", id)
	}
	pub[0] = 1
	if SealKeyID(pub) == id {
		t.Error("different keys, same id")
	}
}

const stsResponse = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>secretEXAMPLE</SecretAccessKey>
      <SessionToken>tokenEXAMPLE</SessionToken>
      <Expiration>2027-01-01T00:00:00Z</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>img-abcdefghijklmnopqrstuvwxyz</SubjectFromWebIdentityToken>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`

const stsError = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>invalid token</Message></Error>
  <RequestId>r2</RequestId></ErrorResponse>`

func TestExchange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"success", 200, stsResponse, ""},
		{"refused", 400, stsError, "InvalidIdentityToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var form url.Values
			var auth string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				form, _ = url.ParseQuery(string(body))
				auth = r.Header.Get("Authorization")
				w.Header().Set("Content-Type", "text/xml")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			b := goodBootstrap(t)
			b.Endpoint = srv.URL
			creds, err := Exchange(context.Background(), b, ExchangeOptions{Duration: 15 * time.Minute})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %s", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), form.Get("WebIdentityToken")) {
					t.Error("the error carries the assertion")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if form.Get("Action") != "AssumeRoleWithWebIdentity" || form.Get("RoleArn") != b.RoleARN ||
				form.Get("RoleSessionName") != "image-abcdefghijklmnopqrstuvwxyz" || form.Get("DurationSeconds") != "900" {
				t.Errorf("request form %v", form)
			}
			if auth != "" {
				t.Errorf("the exchange was signed: %q", auth)
			}
			if _, c, _, _ := decodeJWT(t, form.Get("WebIdentityToken")); c["sub"] != b.KeyID {
				t.Errorf("token claims %v", c)
			}
			if creds.AccessKeyID != "ASIAEXAMPLE" || creds.SessionToken != "tokenEXAMPLE" || !creds.CanExpire ||
				!creds.Expires.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("credentials %+v", creds)
			}
		})
	}
}

func FuzzParseBootstrap(f *testing.F) {
	files, _ := filepath.Glob("testdata/*bootstrap*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBootstrap(data)
		if err != nil {
			if !errors.Is(err, ErrBadBootstrap) {
				t.Fatalf("error %v is not ErrBadBootstrap", err)
			}
			return
		}
		// Whatever parses re-encodes to an equal file and can sign.
		enc, err := b.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		b2, err := ParseBootstrap(enc)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", enc, err)
		}
		if b2.KeyID != b.KeyID || !bytes.Equal(b2.PrivateKey, b.PrivateKey) || b2.Endpoint != b.Endpoint ||
			b2.RoleARN != b.RoleARN || b2.Audience != b.Audience || b2.Repository != b.Repository || b2.Region != b.Region {
			t.Fatal("round trip changed the file")
		}
		if _, err := b.Assertion(AssertionOptions{}); err != nil {
			t.Fatalf("a valid bootstrap cannot sign: %v", err)
		}
	})
}
