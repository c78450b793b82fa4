package testutil

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// oidcClient returns an HTTP client that trusts only pemCA.
func oidcClient(t *testing.T, pemCA string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pemCA)) {
		t.Fatal("CAPEM holds no certificate")
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true},
	}
}

// getJSON fetches url and decodes its JSON body into v, returning the TLS
// state of the connection (nil over http).
func getJSON(t *testing.T, c *http.Client, url string, v any) *tls.ConnectionState {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
	return resp.TLS
}

type discoveryDoc struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

func TestOIDCIssuerServesDiscoveryAndJWKS(t *testing.T) {
	tests := []struct {
		name      string
		opts      []OIDCOption
		chainLen  int
		pathInURL string
	}{
		{name: "self-signed", chainLen: 1},
		{name: "intermediate CA", opts: []OIDCOption{WithOIDCIntermediateCA()}, chainLen: 2},
		{name: "with path", opts: []OIDCOption{WithOIDCPath("/id/EXAMPLE")}, chainLen: 1, pathInURL: "/id/EXAMPLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := StartOIDCIssuer(t, tt.opts...)
			if !strings.HasPrefix(iss.URL, "https://127.0.0.1:") || !strings.HasSuffix(iss.URL, tt.pathInURL) {
				t.Fatalf("URL = %q", iss.URL)
			}
			c := oidcClient(t, iss.CAPEM)

			var doc discoveryDoc
			state := getJSON(t, c, iss.URL+"/.well-known/openid-configuration", &doc)
			if doc.Issuer != iss.URL || doc.JWKSURI != iss.URL+"/openid/v1/jwks" {
				t.Fatalf("discovery = %+v", doc)
			}
			if len(state.PeerCertificates) != tt.chainLen || len(iss.Chain) != tt.chainLen {
				t.Fatalf("served %d certificates, Chain has %d, want %d", len(state.PeerCertificates), len(iss.Chain), tt.chainLen)
			}
			for i, c := range state.PeerCertificates {
				if !c.Equal(iss.Chain[i]) {
					t.Fatalf("served certificate %d differs from Chain", i)
				}
			}
			last := sha1.Sum(state.PeerCertificates[len(state.PeerCertificates)-1].Raw)
			if iss.Thumbprint != hex.EncodeToString(last[:]) {
				t.Fatalf("Thumbprint %s is not the SHA-1 of the last served certificate", iss.Thumbprint)
			}

			var set jose.JSONWebKeySet
			getJSON(t, c, doc.JWKSURI, &set)
			if len(set.Keys) != 1 || set.Keys[0].KeyID != iss.KeyID() || !set.Keys[0].IsPublic() {
				t.Fatalf("JWKS = %+v, want one public key %q", set.Keys, iss.KeyID())
			}
			if iss.DiscoveryFetches() != 1 || iss.JWKSFetches() != 1 {
				t.Fatalf("fetch counts = %d discovery, %d JWKS; want 1, 1", iss.DiscoveryFetches(), iss.JWKSFetches())
			}
			if iss.HTTPURL != "" {
				t.Fatalf("HTTPURL = %q without WithOIDCPlainHTTP", iss.HTTPURL)
			}
		})
	}
}

func TestOIDCIssuerUntrustedWithoutCA(t *testing.T) {
	iss := StartOIDCIssuer(t)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(iss.URL + "/.well-known/openid-configuration")
	if err == nil {
		resp.Body.Close()
		t.Fatal("the issuer's certificate is trusted by the system roots")
	}
}

func TestOIDCIssuerPlainHTTP(t *testing.T) {
	iss := StartOIDCIssuer(t, WithOIDCPlainHTTP())
	if !strings.HasPrefix(iss.HTTPURL, "http://127.0.0.1:") {
		t.Fatalf("HTTPURL = %q", iss.HTTPURL)
	}
	var doc discoveryDoc
	getJSON(t, http.DefaultClient, iss.HTTPURL+"/.well-known/openid-configuration", &doc)
	if doc.Issuer != iss.HTTPURL || doc.JWKSURI != iss.HTTPURL+"/openid/v1/jwks" {
		t.Fatalf("http discovery = %+v", doc)
	}
	var set jose.JSONWebKeySet
	getJSON(t, http.DefaultClient, doc.JWKSURI, &set)
	if len(set.Keys) != 1 {
		t.Fatalf("http JWKS has %d keys", len(set.Keys))
	}
}

func TestOIDCIssuerDiscoveryOverride(t *testing.T) {
	iss := StartOIDCIssuer(t, WithOIDCDiscovery(func(doc map[string]any) { doc["issuer"] = "https://elsewhere.example" }))
	var doc discoveryDoc
	getJSON(t, oidcClient(t, iss.CAPEM), iss.URL+"/.well-known/openid-configuration", &doc)
	if doc.Issuer != "https://elsewhere.example" {
		t.Fatalf("issuer = %q", doc.Issuer)
	}
}

// verifyWithJWKS verifies token with go-jose against the issuer's JWKS and
// returns its claims.
func verifyWithJWKS(t *testing.T, iss *OIDCIssuer, token string) (map[string]any, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(iss.JWKS()), &set); err != nil {
		t.Fatalf("parsing JWKS: %v", err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		return nil, err
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		return nil, errNoKey
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, err
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("parsing claims: %v", err)
	}
	return claims, nil
}

var errNoKey = errors.New("no key with that kid")

func TestOIDCIssuerMintTokenVerifies(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, alg := range []string{OIDCAlgRS256, OIDCAlgES256, OIDCAlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			iss := StartOIDCIssuer(t, WithOIDCAlgorithm(alg), WithOIDCClock(func() time.Time { return now }))
			claims, err := verifyWithJWKS(t, iss, iss.MintToken())
			if err != nil {
				t.Fatalf("go-jose rejects the token: %v", err)
			}
			want := map[string]any{
				"iss": iss.URL,
				"sub": "system:serviceaccount:default:default",
				"exp": float64(now.Add(time.Hour).Unix()),
				"iat": float64(now.Unix()),
				"nbf": float64(now.Unix()),
			}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("%s = %v, want %v", k, claims[k], v)
				}
			}
			if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != DefaultOIDCAudience {
				t.Errorf("aud = %v", claims["aud"])
			}
			k8s, _ := claims["kubernetes.io"].(map[string]any)
			sa, _ := k8s["serviceaccount"].(map[string]any)
			pod, _ := k8s["pod"].(map[string]any)
			if k8s["namespace"] != "default" || sa["name"] != "default" || sa["uid"] == "" || pod["name"] != "app-0" || pod["uid"] == "" {
				t.Errorf("kubernetes.io = %v", k8s)
			}
			if jti, _ := claims["jti"].(string); len(jti) != 36 {
				t.Errorf("jti = %v", claims["jti"])
			}
		})
	}
}

// decodeToken returns a token's header and claims without verifying.
func decodeToken(t *testing.T, token string) (header, claims map[string]any, sig []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token of %d parts", len(parts))
	}
	dec := func(s string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("decoding segment: %v", err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("parsing segment: %v", err)
		}
	}
	dec(parts[0], &header)
	dec(parts[1], &claims)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("decoding signature: %v", err)
	}
	return header, claims, sig
}

func TestOIDCIssuerTokenOptions(t *testing.T) {
	iss := StartOIDCIssuer(t, WithOIDCAlgorithm(OIDCAlgEdDSA))
	exp := time.Unix(2000000000, 0)
	tests := []struct {
		name  string
		opts  []TokenOption
		check func(t *testing.T, header, claims map[string]any)
	}{
		{"namespace and service account make the subject", []TokenOption{TokenNamespace("prod"), TokenServiceAccount("web")},
			func(t *testing.T, _, c map[string]any) {
				k8s := c["kubernetes.io"].(map[string]any)
				if c["sub"] != "system:serviceaccount:prod:web" || k8s["namespace"] != "prod" ||
					k8s["serviceaccount"].(map[string]any)["name"] != "web" {
					t.Errorf("claims = %v", c)
				}
			}},
		{"explicit subject wins", []TokenOption{TokenSubject("user-1"), TokenNamespace("prod")},
			func(t *testing.T, _, c map[string]any) {
				if c["sub"] != "user-1" {
					t.Errorf("sub = %v", c["sub"])
				}
			}},
		{"unbound pod", []TokenOption{TokenPod("")},
			func(t *testing.T, _, c map[string]any) {
				if _, ok := c["kubernetes.io"].(map[string]any)["pod"]; ok {
					t.Errorf("pod present: %v", c["kubernetes.io"])
				}
			}},
		{"pod name", []TokenOption{TokenPod("web-1")},
			func(t *testing.T, _, c map[string]any) {
				if c["kubernetes.io"].(map[string]any)["pod"].(map[string]any)["name"] != "web-1" {
					t.Errorf("pod = %v", c["kubernetes.io"])
				}
			}},
		{"audiences and times", []TokenOption{TokenAudience("a", "b"), TokenExpiry(exp), TokenNotBefore(exp.Add(-time.Minute)), TokenIssuedAt(exp.Add(-time.Hour))},
			func(t *testing.T, _, c map[string]any) {
				aud := c["aud"].([]any)
				if len(aud) != 2 || aud[0] != "a" || aud[1] != "b" || c["exp"] != float64(exp.Unix()) ||
					c["nbf"] != float64(exp.Unix()-60) || c["iat"] != float64(exp.Unix()-3600) {
					t.Errorf("claims = %v", c)
				}
			}},
		{"issuer", []TokenOption{TokenIssuer("https://other.example")},
			func(t *testing.T, _, c map[string]any) {
				if c["iss"] != "https://other.example" {
					t.Errorf("iss = %v", c["iss"])
				}
			}},
		{"claim set and removed", []TokenOption{TokenClaim("aud", "single"), TokenClaim("exp", nil), TokenClaim("kubernetes.io", nil)},
			func(t *testing.T, _, c map[string]any) {
				_, hasExp := c["exp"]
				_, hasK8s := c["kubernetes.io"]
				if c["aud"] != "single" || hasExp || hasK8s {
					t.Errorf("claims = %v", c)
				}
			}},
		{"kid override", []TokenOption{TokenKeyID("other")},
			func(t *testing.T, h, _ map[string]any) {
				if h["kid"] != "other" || h["alg"] != "EdDSA" {
					t.Errorf("header = %v", h)
				}
			}},
		{"no kid", []TokenOption{TokenKeyID("")},
			func(t *testing.T, h, _ map[string]any) {
				if _, ok := h["kid"]; ok {
					t.Errorf("header = %v", h)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c, _ := decodeToken(t, iss.MintToken(tt.opts...))
			tt.check(t, h, c)
		})
	}
}

func TestOIDCIssuerRotateKeys(t *testing.T) {
	iss := StartOIDCIssuer(t, WithOIDCAlgorithm(OIDCAlgES256))
	first := iss.KeyID()
	oldToken := iss.MintToken()

	iss.RotateKeysKeepingOld(t)
	second := iss.KeyID()
	if second == first {
		t.Fatal("rotation kept the kid")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(iss.JWKS()), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0].KeyID != first || set.Keys[1].KeyID != second {
		t.Fatalf("after keeping rotation JWKS = %v", set.Keys)
	}
	if _, err := verifyWithJWKS(t, iss, oldToken); err != nil {
		t.Fatalf("old token with old key kept: %v", err)
	}

	iss.RotateKeys(t)
	third := iss.KeyID()
	if err := json.Unmarshal([]byte(iss.JWKS()), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != third || third == second {
		t.Fatalf("after rotation JWKS = %v", set.Keys)
	}
	if _, err := verifyWithJWKS(t, iss, oldToken); err == nil {
		t.Fatal("old token verifies after its key was removed")
	}
	if _, err := verifyWithJWKS(t, iss, iss.MintToken()); err != nil {
		t.Fatalf("new token: %v", err)
	}
}

func TestOIDCIssuerForgedTokens(t *testing.T) {
	iss := StartOIDCIssuer(t)

	t.Run("alg none", func(t *testing.T) {
		tok := iss.MintUnsignedToken()
		h, c, sig := decodeToken(t, tok)
		if h["alg"] != "none" || h["kid"] != iss.KeyID() || len(sig) != 0 || c["iss"] != iss.URL || !strings.HasSuffix(tok, ".") {
			t.Fatalf("header %v, %d signature bytes", h, len(sig))
		}
	})
	t.Run("HS256 keyed with the public key", func(t *testing.T) {
		tok := iss.MintHS256WithPublicKey()
		h, _, sig := decodeToken(t, tok)
		if h["alg"] != "HS256" || h["kid"] != iss.KeyID() {
			t.Fatalf("header %v", h)
		}
		mac := hmac.New(sha256.New, []byte(iss.PublicKeyPEM()))
		mac.Write([]byte(tok[:strings.LastIndex(tok, ".")]))
		if !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatal("the HMAC is not keyed with the public key PEM")
		}
		if !strings.Contains(iss.PublicKeyPEM(), "BEGIN PUBLIC KEY") {
			t.Fatalf("PublicKeyPEM = %q", iss.PublicKeyPEM())
		}
	})
	t.Run("foreign key", func(t *testing.T) {
		tok := iss.MintTokenWithForeignKey(t)
		h, _, _ := decodeToken(t, tok)
		if h["kid"] != iss.KeyID() || h["alg"] != "RS256" {
			t.Fatalf("header %v", h)
		}
		if _, err := verifyWithJWKS(t, iss, tok); err == nil {
			t.Fatal("a token signed by a foreign key verifies")
		}
	})
	t.Run("tampered payload", func(t *testing.T) {
		orig := iss.MintToken()
		tok := TamperToken(t, orig, func(c map[string]any) { c["sub"] = "system:serviceaccount:kube-system:admin" })
		_, c, _ := decodeToken(t, tok)
		if c["sub"] != "system:serviceaccount:kube-system:admin" {
			t.Fatalf("sub = %v", c["sub"])
		}
		if orig[strings.LastIndex(orig, "."):] != tok[strings.LastIndex(tok, "."):] {
			t.Fatal("the signature changed")
		}
		if _, err := verifyWithJWKS(t, iss, tok); err == nil {
			t.Fatal("a tampered token verifies")
		}
	})
}

func TestOIDCIssuerKeyIDsDiffer(t *testing.T) {
	a, b := StartOIDCIssuer(t), StartOIDCIssuer(t)
	if a.KeyID() == b.KeyID() || a.Thumbprint == b.Thumbprint || a.URL == b.URL {
		t.Fatal("two issuers share a kid, thumbprint or URL")
	}
	ids := []string{a.KeyID(), b.KeyID()}
	if slices.Contains(ids, "") {
		t.Fatal("empty kid")
	}
}
